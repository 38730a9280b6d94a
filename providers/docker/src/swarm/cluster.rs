//! `swarm.cluster`: the swarm itself, formed on the first manager (`POST /swarm/init`,
//! advertising the manager's own address) and read back as the swarm's id. The join
//! tokens live here too, as [`JoinToken`]: read from the manager when a node joins, handed
//! to that node's `POST /swarm/join` body, and nowhere else (not in the plan, a log,
//! state, the run folder or an error).

use stackctl_provider::{Action, ApplyOutcome, ProviderError, RecordedResource};

use super::requests;
use super::view::LocalView;
use super::SwarmProvider;
use crate::api::DockerClient;
use crate::provider_error::{failed, from_client};

/// A join token: prints as `[redacted]`; its text is taken out only for the join request.
pub struct JoinToken(String);

impl JoinToken {
    /// The token for `role` (`manager` or `worker`), from the manager's `GET /swarm`.
    pub async fn read(manager: &DockerClient, role: &str) -> Result<JoinToken, ProviderError> {
        let swarm = manager
            .send_json(requests::inspect_swarm())
            .await
            .map_err(from_client)?;
        let key = if role == "manager" {
            "Manager"
        } else {
            "Worker"
        };
        swarm["JoinTokens"][key]
            .as_str()
            .filter(|token| !token.is_empty())
            .map(|token| JoinToken(token.to_string()))
            .ok_or_else(|| failed("the swarm's manager returned no join token", None))
    }

    pub(super) fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with the token replaced by `[redacted]` (an error Docker might word with it).
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.0, "[redacted]")
    }
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("[redacted]")
    }
}

impl SwarmProvider {
    /// Forms the swarm on the first manager, or takes over the one it already manages.
    pub(super) async fn create_cluster(
        &self,
        action: &Action,
        context: &stackctl_provider::ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        let desired = action
            .desired
            .as_ref()
            .ok_or_else(|| failed("creating the swarm needs its desired attributes", None))?;
        let manager_name = self.connections.first_manager().to_string();
        let address = self.node_address(&manager_name, context)?;
        let manager = self.connections.client(&manager_name, &address).await?;
        let local = LocalView::parse(
            &manager
                .send_json(requests::info())
                .await
                .map_err(from_client)?,
        );
        match (local.in_swarm(), local.manager) {
            (true, true) => {}
            (true, false) => {
                return Err(ProviderError::Failed {
                    message: format!("`{manager_name}` is a worker of another swarm, so the swarm cannot be formed on it"),
                    detail: None,
                    hint: Some(format!("if that swarm is not needed, run `docker swarm leave` on {manager_name} ({address}), then `stackctl apply` again")),
                })
            }
            (false, _) => {
                manager
                    .send(requests::init(&address))
                    .await
                    .map_err(|error| {
                        failed(
                            format!("forming the swarm on `{manager_name}` ({address}) failed: {}", from_client(error)),
                            None,
                        )
                    })?;
            }
        }
        let swarm = manager
            .send_json(requests::inspect_swarm())
            .await
            .map_err(from_client)?;
        // Only the id is kept; the tokens in the same answer are dropped here.
        let id = swarm["ID"].as_str().map(str::to_string);
        Ok(ApplyOutcome::Recorded(RecordedResource::from_desired(
            desired, id,
        )))
    }

    /// Dissolves the swarm: the first manager leaves it (its nodes left before, in
    /// reverse dependency order).
    pub(super) async fn delete_cluster(
        &self,
        context: &stackctl_provider::ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        let manager_name = self.connections.first_manager().to_string();
        let address = self.node_address(&manager_name, context)?;
        let manager = self.connections.client(&manager_name, &address).await?;
        let local = LocalView::parse(
            &manager
                .send_json(requests::info())
                .await
                .map_err(from_client)?,
        );
        if local.in_swarm() {
            manager
                .send(requests::leave(true))
                .await
                .map_err(from_client)?;
        }
        Ok(ApplyOutcome::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_token_never_prints() {
        let token = JoinToken("SWMTKN-1-abc".to_string());
        assert_eq!(format!("{token:?}"), "[redacted]");
        assert_eq!(
            token.redact("join with SWMTKN-1-abc failed"),
            "join with [redacted] failed"
        );
    }
}
