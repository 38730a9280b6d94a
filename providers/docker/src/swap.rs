//! The zero-downtime swap of a routed service: the edge's backend file is rewritten to
//! name the new container — one atomic write: a temp file outside the watched directory,
//! then a rename into it, so Traefik sees one change and never a half-written file — and
//! the provider asks the edge's API every `EDGE_POLL_INTERVAL` until the service's
//! servers are exactly the new one — at the published admin port, or else on the edge
//! container's own addresses. No sleep: the old container is told to stop the moment the
//! edge no longer sends it requests. Only when the edge cannot be asked does a fixed
//! settle time stand in.
//!
//! This file owns the swap's steps and timing, not Traefik's formats: the backend file,
//! the API path and the parser of its answer come from [`EdgeFormats`], which the traefik
//! crate implements and the front end hands over in [`crate::DockerOptions`]. So the file
//! a swap ships is the one the real-Traefik tests load, and this crate does not depend on
//! the traefik crate.

use std::time::{Duration, Instant};

use serde_json::Value as Json;
use stackctl_host::HostError;
use stackctl_provider::{EdgeFormats, ProviderError};
use tokio::io::{AsyncWriteExt, BufReader};

use crate::api::{self, DockerClient};
use crate::http::{read_response, HttpError, Response};
use crate::provider::DockerProvider;
use crate::provider_error::{failed, from_host};
use crate::spec::{RouteBackend, ServiceSpec};

/// The edge's resource address: `lower.rs` lowers `[edge]` to this Traefik container.
const EDGE_RESOURCE: &str = "service.edge";

/// How long one question to Traefik's API may take. A container address that drops
/// packets (an `internal` network) would otherwise hold a swap until the kernel gives up.
const EDGE_ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

/// How often a swap asks the edge whether it serves the new container. Traefik applies a
/// file renamed into its directory in ~10–250 ms here (bench/README.md), so a short
/// interval turns its reload into the swap's time, not the poll's.
const EDGE_POLL_INTERVAL: Duration = Duration::from_millis(20);

impl DockerProvider {
    /// The edge's formats, which a routed service's swap needs. The front end gives them
    /// when it builds the provider; without them a routed service cannot be applied, and
    /// that is the front end's mistake, not the user's.
    pub(crate) fn edge_formats(
        &self,
        spec: &ServiceSpec,
    ) -> Result<&dyn EdgeFormats, ProviderError> {
        match &self.options.edge_formats {
            Some(formats) => Ok(formats.as_ref()),
            None => Err(failed(
                format!(
                    "the docker provider was built without the edge's formats; cannot route `{}`",
                    spec.service
                ),
                None,
            )),
        }
    }

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
        let Some(backend) = &spec.route_backend else {
            return Ok(());
        };
        let formats = self.edge_formats(spec)?;
        let expected = [spec.backend_url(container)];
        self.switch_backend_servers(client, formats, backend, &expected, replacing)
            .await
    }

    /// Rewrites the backend file so that Traefik balances the service's traffic over
    /// `expected` (one container's URL, or a swarm service's tasks), and when
    /// `replacing`, waits until Traefik's servers for it are exactly those.
    pub(crate) async fn switch_backend_servers(
        &self,
        client: &DockerClient,
        formats: &dyn EdgeFormats,
        backend: &RouteBackend,
        expected: &[String],
        replacing: bool,
    ) -> Result<(), ProviderError> {
        let contents = backend_servers_contents(formats, backend, expected);
        client
            .host()
            .write_file(&backend.file, contents.as_bytes(), 0o644, &backend.temp_dir)
            .await
            .map_err(from_host)?;
        tracing::debug!(service = %backend.service, "backend file written");
        if !replacing {
            return Ok(());
        }
        let path = formats.servers_path(&backend.service);
        // A published admin port was asked for by the user: keep asking it until the
        // deadline. Without one, Traefik's API still listens inside the edge container, on
        // the container's own addresses, which the Docker host can reach (Linux bridges).
        let (mut candidates, configured) = match self.options.edge_published_admin_port {
            Some(admin_port) => (vec![format!("http://127.0.0.1:{admin_port}")], true),
            None => {
                let port = self.options.edge_admin_port.unwrap_or(formats.api_port());
                (self.edge_admin_urls(client, port).await, false)
            }
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
                if let Ok(Ok(answer)) = answer {
                    reached = Some(base.clone());
                    if lists_servers(formats, &answer, expected) {
                        tracing::debug!(service = %backend.service, after = ?started.elapsed(), "the edge serves the new container");
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
            tokio::time::sleep(EDGE_POLL_INTERVAL).await;
        }
        tracing::warn!(service = %backend.service, "Traefik did not report the new backend in time; going on");
        Ok(())
    }

    /// Traefik's API on each address of the stack's running edge container; empty when
    /// there is no such container (an edge being replaced in the same run, or none).
    async fn edge_admin_urls(&self, client: &DockerClient, port: u16) -> Vec<String> {
        match client
            .send_json(api::list_containers(&self.stack, Some(EDGE_RESOURCE)))
            .await
        {
            Ok(list) => edge_admin_urls(&list, port),
            Err(error) => {
                tracing::debug!(%error, "cannot list the edge container");
                Vec::new()
            }
        }
    }
}

/// What a swap writes into the backend file: the edge's file sending `backend`'s traffic
/// to `url`.
fn backend_contents(formats: &dyn EdgeFormats, backend: &RouteBackend, url: &str) -> String {
    formats.backend_file(&backend.service, url)
}

/// What the backend file says when the edge balances `backend`'s traffic over `servers`
/// (one container's URL, or a swarm service's tasks): the bytes a switch writes, and
/// what a refresh compares the live file with.
pub(crate) fn backend_servers_contents(
    formats: &dyn EdgeFormats,
    backend: &RouteBackend,
    servers: &[String],
) -> String {
    match (servers, &backend.health_path) {
        ([only], None) => backend_contents(formats, backend, only),
        (servers, health_path) => {
            formats.backend_file_servers(&backend.service, servers, health_path.as_deref())
        }
    }
}

/// Whether the edge's answer lists exactly `expected` as the service's servers: the new
/// container (or tasks) serve and the old ones get no new request. Another status (404
/// while the backend file is not loaded yet) or an unreadable body means "not yet".
fn lists_servers(formats: &dyn EdgeFormats, answer: &Response, expected: &[String]) -> bool {
    let mut expected: Vec<&String> = expected.iter().collect();
    expected.sort();
    answer.is_success()
        && formats.servers_in(&answer.body).is_ok_and(|servers| {
            let mut servers: Vec<&String> = servers.iter().collect();
            servers.sort();
            servers == expected
        })
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
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("timed out")]
    TimedOut,
}

/// A plain `GET` through the host (so it also works over SSH): `base` is `http://ip:port`.
/// The answer is read by the crate's own HTTP/1.1 reader (Content-Length or chunked).
async fn http_get_via_host(
    client: &DockerClient,
    base: &str,
    path: &str,
) -> Result<Response, EdgeQueryError> {
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
    let mut reader = BufReader::new(stream);
    tokio::time::timeout(Duration::from_secs(2), read_response(&mut reader, false))
        .await
        .map_err(|_| EdgeQueryError::TimedOut)?
        .map_err(EdgeQueryError::from)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;
    use stackctl_provider::Value;

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

    fn routed_spec() -> ServiceSpec {
        let mut attributes = stackctl_provider::Attributes::new();
        attributes.insert("container_name".into(), Value::text("shop-api"));
        attributes.insert("image".into(), Value::text("stackctl-test/server:latest"));
        attributes.insert("port".into(), Value::Integer(8000));
        attributes.insert(
            "route_backend".into(),
            Value::Map(BTreeMap::from([
                (
                    "file".to_string(),
                    Value::text("/srv/shop/traefik/dynamic/backend-api.yml"),
                ),
                (
                    "temp_dir".to_string(),
                    Value::text("/srv/shop/traefik/.tmp"),
                ),
                ("service".to_string(), Value::text("api")),
            ])),
        );
        ServiceSpec::from_attributes("api", &attributes).unwrap()
    }

    #[test]
    fn the_backend_file_a_swap_writes_is_the_one_the_traefik_crate_renders() {
        let spec = routed_spec();
        let backend = spec.route_backend.as_ref().unwrap();
        let url = spec.backend_url("shop-api-0123abcd");
        assert_eq!(url, "http://shop-api-0123abcd:8000");
        assert_eq!(
            backend_contents(&stackctl_traefik::TraefikFormats, backend, &url),
            stackctl_traefik::render_backend("api", "http://shop-api-0123abcd:8000")
        );
    }

    #[test]
    fn a_swap_waits_for_the_new_server_in_the_edges_answer() {
        let formats = stackctl_traefik::TraefikFormats;
        let answer = |status: u16, body: &str| Response {
            status,
            body: body.as_bytes().to_vec(),
        };
        let listing = |url: &str| {
            format!(
                r#"{{"loadBalancer": {{"servers": [{{"url": "{url}"}}]}}, "status": "enabled"}}"#
            )
        };
        let expected = &["http://shop-api-2:8000".to_string()];
        assert!(lists_servers(
            &formats,
            &answer(200, &listing(&expected[0])),
            expected
        ));
        assert!(!lists_servers(
            &formats,
            &answer(200, &listing("http://shop-api-1:8000")),
            expected
        ));
        // The URL must be a server, not merely appear in the answer.
        assert!(!lists_servers(
            &formats,
            &answer(200, &listing("http://shop-api-2:80001")),
            expected
        ));
        assert!(!lists_servers(
            &formats,
            &answer(404, "404 page not found\n"),
            expected
        ));
        // Both old and new: the old one may still get new requests.
        let both = r#"{"loadBalancer": {"servers": [{"url": "http://shop-api-1:8000"}, {"url": "http://shop-api-2:8000"}]}}"#;
        assert!(!lists_servers(&formats, &answer(200, both), expected));
        // A swarm service's tasks: all of them, in any order, and no other.
        let tasks = &[
            "http://10.0.1.6:8000".to_string(),
            "http://10.0.1.5:8000".to_string(),
        ];
        let listed = r#"{"loadBalancer": {"servers": [{"url": "http://10.0.1.5:8000"}, {"url": "http://10.0.1.6:8000"}]}}"#;
        assert!(lists_servers(&formats, &answer(200, listed), tasks));
        assert!(!lists_servers(&formats, &answer(200, listed), &tasks[..1]));
    }

    #[tokio::test]
    async fn a_routed_service_without_the_edges_formats_is_refused() {
        let provider = DockerProvider::new(
            std::sync::Arc::new(stackctl_host::HostConnector::local()),
            "shop",
        );
        let error = provider.edge_formats(&routed_spec()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("built without the edge's formats; cannot route `api`"),
            "{error}"
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
