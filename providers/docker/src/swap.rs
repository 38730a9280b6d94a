//! The zero-downtime swap of a routed service: the Traefik backend file is rewritten to
//! name the new container (temp file outside the watched directory, then rename), and
//! the provider waits until Traefik's API lists it — at the published admin port, or
//! else on the edge container's own addresses — before the old one drains. When Traefik
//! cannot be asked, a fixed settle time stands in.

use std::time::{Duration, Instant};

use serde_json::Value as Json;
use stackctl_host::HostError;
use stackctl_provider::ProviderError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api::{self, DockerClient};
use crate::provider::DockerProvider;
use crate::provider_error::from_host;
use crate::spec::ServiceSpec;

/// The edge's resource address: `lower.rs` lowers `[edge]` to this Traefik container.
const EDGE_RESOURCE: &str = "service.edge";

/// How long one question to Traefik's API may take. A container address that drops
/// packets (an `internal` network) would otherwise hold a swap until the kernel gives up.
const EDGE_ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

impl DockerProvider {
    /// Rewrites the backend file so that Traefik sends the service's traffic to `container`.
    ///
    /// When `replacing` (another container served the service until now), it then waits
    /// until Traefik serves from the new one, so that the old one's drain starts only once
    /// no new request goes to it. A first create does not wait: no traffic has to move,
    /// Traefik loads the file on its own (or reads it when it starts), and the post-apply
    /// checks wait for the edge before asking it anything.
    pub(crate) async fn switch_backend(
        &self,
        client: &DockerClient,
        spec: &ServiceSpec,
        container: &str,
        replacing: bool,
    ) -> Result<(), ProviderError> {
        let (Some(backend), Some(contents)) = (&spec.route_backend, spec.backend_file(container))
        else {
            return Ok(());
        };
        client
            .host()
            .write_file(&backend.file, contents.as_bytes(), 0o644, &backend.temp_dir)
            .await
            .map_err(from_host)?;
        if !replacing {
            return Ok(());
        }
        let expected = format!("http://{container}:{}", spec.port.unwrap_or(80));
        let path = format!(
            "/api/http/services/{}@file",
            crate::http::percent_encode(&backend.service)
        );
        // A published admin port was asked for by the user: keep asking it until the
        // deadline. Without one, Traefik's API still listens inside the edge container, on
        // the container's own addresses, which the Docker host can reach (Linux bridges).
        let (mut candidates, configured) = match &backend.admin_url {
            Some(admin_url) => (vec![admin_url.clone()], true),
            None => (self.edge_admin_urls(client).await, false),
        };
        if candidates.is_empty() {
            tracing::debug!(service = %backend.service, "no running edge container to ask; waiting the settle time");
            tokio::time::sleep(self.options.settle).await;
            return Ok(());
        }
        let started = Instant::now();
        let deadline = started + self.options.edge_wait;
        let mut reached: Option<String> = None;
        while Instant::now() < deadline {
            for base in &candidates {
                let answer = tokio::time::timeout(
                    EDGE_ANSWER_TIMEOUT,
                    http_get_via_host(client, base, &path),
                )
                .await;
                if let Ok(Ok(body)) = answer {
                    reached = Some(base.clone());
                    if body.contains(&expected) {
                        return Ok(());
                    }
                    break;
                }
            }
            match &reached {
                // Ask only the address that answered from now on.
                Some(base) => candidates = vec![base.clone()],
                None if !configured => {
                    // Not reachable from the host (Docker Desktop, forwarding refused over
                    // SSH, an internal network): the fixed settle time is all that is left.
                    tracing::debug!(service = %backend.service, "the edge container's API is not reachable; waiting the settle time");
                    tokio::time::sleep(self.options.settle.saturating_sub(started.elapsed())).await;
                    return Ok(());
                }
                None => {}
            }
            tokio::time::sleep(self.options.poll_interval).await;
        }
        tracing::warn!(service = %backend.service, "Traefik did not report the new backend in time; going on");
        Ok(())
    }

    /// Traefik's API on each address of the stack's running edge container; empty when
    /// there is no such container (an edge being replaced in the same run, or none).
    async fn edge_admin_urls(&self, client: &DockerClient) -> Vec<String> {
        match client
            .send_json(api::list_containers(&self.stack, Some(EDGE_RESOURCE)))
            .await
        {
            Ok(list) => edge_admin_urls(&list, self.options.edge_admin_port),
            Err(error) => {
                tracing::debug!(%error, "cannot list the edge container");
                Vec::new()
            }
        }
    }
}

/// `http://<address>:<port>` for every IPv4 address, on any network, of a running
/// container in a `/containers/json` answer (the edge's); ordered by network name.
fn edge_admin_urls(list: &Json, port: u16) -> Vec<String> {
    let mut urls = Vec::new();
    for container in list.as_array().map(Vec::as_slice).unwrap_or(&[]) {
        if container["State"].as_str() != Some("running") {
            continue;
        }
        let Some(networks) = container["NetworkSettings"]["Networks"].as_object() else {
            continue;
        };
        let mut names: Vec<&String> = networks.keys().collect();
        names.sort();
        for name in names {
            let address = networks[name.as_str()]["IPAddress"].as_str().unwrap_or("");
            if address.parse::<std::net::Ipv4Addr>().is_ok() {
                let url = format!("http://{address}:{port}");
                if !urls.contains(&url) {
                    urls.push(url);
                }
            }
        }
    }
    urls
}

/// Why a question to Traefik's API got no answer. A swap only tells "answered" from "did
/// not", so these are never shown; they name the cause for whoever debugs one.
#[derive(Debug, thiserror::Error)]
enum EdgeQueryError {
    #[error("`{base}` is not http://address:port")]
    NotAnAddress { base: String },
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    TimedOut,
}

/// A plain `GET` through the host (so it also works over SSH): `base` is `http://ip:port`.
async fn http_get_via_host(
    client: &DockerClient,
    base: &str,
    path: &str,
) -> Result<String, EdgeQueryError> {
    let authority = base.trim_start_matches("http://").trim_end_matches('/');
    let (address, port) = authority
        .rsplit_once(':')
        .and_then(|(address, port)| port.parse::<u16>().ok().map(|port| (address, port)))
        .ok_or_else(|| EdgeQueryError::NotAnAddress {
            base: base.to_string(),
        })?;
    let mut stream = client.host().connect_tcp(address, port).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut body = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(2),
        stream.take(1 << 20).read_to_end(&mut body),
    )
    .await
    .map_err(|_| EdgeQueryError::TimedOut)??;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn edge_admin_urls_name_every_ipv4_address_of_a_running_edge() {
        let list = json!([
            {"Names": ["/shop-edge"], "State": "running",
             "NetworkSettings": {"Networks": {
                 "shop_public": {"IPAddress": "172.20.0.3", "GlobalIPv6Address": "fd00::3"},
                 "shop_backend": {"IPAddress": "172.21.0.2"},
                 "shop_pending": {"IPAddress": ""}
             }}},
            {"Names": ["/shop-edge-old"], "State": "exited",
             "NetworkSettings": {"Networks": {"shop_public": {"IPAddress": "172.20.0.9"}}}}
        ]);
        assert_eq!(
            edge_admin_urls(&list, 8080),
            vec![
                "http://172.21.0.2:8080".to_string(),
                "http://172.20.0.3:8080".to_string()
            ]
        );
    }

    #[test]
    fn edge_admin_urls_are_empty_without_a_running_edge() {
        assert!(edge_admin_urls(&json!([]), 8080).is_empty());
        assert!(edge_admin_urls(&json!({"message": "error"}), 8080).is_empty());
        let host_network = json!([
            {"State": "running", "NetworkSettings": {"Networks": {"host": {"IPAddress": ""}}}}
        ]);
        assert!(edge_admin_urls(&host_network, 8080).is_empty());
    }
}
