//! What the run folder keeps of the host after an apply: the stack's containers (the
//! fields an operator looks at) and the edge's log. Evidence never fails a run.

use serde_json::{json, Value as Json};
use stackctl_provider::ProviderError;

use crate::api;
use crate::http::demultiplex_logs;
use crate::provider::DockerProvider;
use crate::provider_error::from_client;

impl DockerProvider {
    /// The live containers of the stack as JSON, for the run folder; not those a replace
    /// left behind that are being stopped and removed beside this read.
    pub async fn container_list(&self) -> Result<Json, ProviderError> {
        let client = self.client(None).await?;
        let retiring = self.background.retiring();
        let mut list = client
            .send_json(api::list_containers(&self.stack, None))
            .await
            .map_err(from_client)?;
        if let Some(containers) = list.as_array_mut() {
            containers.retain(|container| {
                !container["Id"]
                    .as_str()
                    .is_some_and(|id| retiring.contains(id))
            });
        }
        Ok(container_list_evidence(&list))
    }
}

/// Turns `GET /containers/json` into the run folder's container list: one entry per
/// container, sorted by name, with the fields an operator looks at.
pub fn container_list_evidence(list: &Json) -> Json {
    let mut entries: Vec<Json> = list
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|container| {
            let name = container["Names"][0]
                .as_str()
                .unwrap_or("")
                .trim_start_matches('/');
            let ports: Vec<String> = container["Ports"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .filter(|port| port.get("PublicPort").is_some())
                .map(|port| {
                    format!(
                        "{}:{}->{}/{}",
                        port["IP"].as_str().unwrap_or(""),
                        port["PublicPort"],
                        port["PrivatePort"],
                        port["Type"].as_str().unwrap_or("tcp")
                    )
                })
                .collect();
            json!({
                "name": name,
                "id": container["Id"].as_str().unwrap_or("").chars().take(12).collect::<String>(),
                "image": container["Image"],
                "state": container["State"],
                "status": container["Status"],
                "resource": container["Labels"][api::LABEL_RESOURCE],
                "hash": container["Labels"][api::LABEL_HASH],
                "published_ports": ports,
            })
        })
        .collect();
    entries.sort_by(|left, right| left["name"].as_str().cmp(&right["name"].as_str()));
    Json::Array(entries)
}
impl DockerProvider {
    /// What the run folder keeps of the host: the container list and the edge's log.
    pub(crate) async fn collect_evidence(&self) -> Vec<(String, Vec<u8>)> {
        // The container list and the edge's log are asked for at once: the run folder
        // decides nothing, so it should cost one round trip, not two.
        let (list, edge_log) = tokio::join!(self.container_list(), self.edge_log());
        // Evidence must not fail the run: an unreachable host gives a note instead.
        let contents = match list {
            Ok(list) => serde_json::to_vec_pretty(&list).unwrap_or_default(),
            Err(error) => json!({ "error": error.to_string() })
                .to_string()
                .into_bytes(),
        };
        let mut evidence = vec![("containers.json".to_string(), contents)];
        if let Some(log) = edge_log {
            evidence.push(("traefik.log".to_string(), log.into_bytes()));
        }
        evidence
    }

    /// The edge's log, which is Traefik's: access lines and configuration errors.
    async fn edge_log(&self) -> Option<String> {
        let client = self.client(None).await.ok()?;
        let edge = format!("{}-edge", self.stack);
        let response = client.send(api::container_logs(&edge, 500)).await.ok()?;
        (response.status == 200).then(|| demultiplex_logs(&response.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_lists_containers_by_name() {
        let list = json!([
            {"Names": ["/shop-web"], "Id": "0123456789abcdef", "Image": "img", "State": "running", "Status": "Up 3 seconds",
             "Labels": {"stackctl.resource": "service.web", "stackctl.hash": "sha256:1"}, "Ports": []},
            {"Names": ["/shop-edge"], "Id": "fedcba9876543210", "Image": "traefik", "State": "running", "Status": "Up",
             "Labels": {"stackctl.resource": "service.edge", "stackctl.hash": "sha256:2"},
             "Ports": [{"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 18080, "Type": "tcp"}, {"PrivatePort": 8080, "Type": "tcp"}]}
        ]);
        let evidence = container_list_evidence(&list);
        assert_eq!(evidence[0]["name"], "shop-edge");
        assert_eq!(
            evidence[0]["published_ports"],
            json!(["127.0.0.1:18080->80/tcp"])
        );
        assert_eq!(evidence[1]["id"], "0123456789ab");
        assert_eq!(evidence[1]["resource"], "service.web");
    }
}
