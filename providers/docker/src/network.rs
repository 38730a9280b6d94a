//! Applying a `network.*` resource: create it labelled as the stack's (taking over only
//! one that already is), remove it when it goes.
//!
//! A network is replaced when `internal` changes. Docker cannot remove a network that
//! containers are attached to, and the containers stay as they are (their attributes name
//! the network, not how it is made): so a replace detaches them, makes the network
//! again, and attaches them with the aliases they had. They lose that network for the
//! moment in between, nothing else.

use stackctl_provider::{Action, ActionKind, ApplyOutcome, ProviderError, Value};

use crate::api::{self, DockerClient};
use crate::attributes::{desired_of, recorded_with, text_attribute};
use crate::labels::label;
use crate::provider::DockerProvider;
use crate::provider_error::{failed, from_client};

impl DockerProvider {
    pub(crate) async fn apply_network(
        &self,
        client: &DockerClient,
        action: &Action,
    ) -> Result<ApplyOutcome, ProviderError> {
        let prior_name = action
            .prior
            .as_ref()
            .and_then(|prior| text_attribute(&prior.attributes, "name").map(str::to_string));
        let mut attached = Vec::new();
        if action.kind.destroys() {
            if let Some(name) = &prior_name {
                if action.kind != ActionKind::Delete {
                    attached = self.detach_all(client, name).await?;
                }
                self.remove_network(client, name).await?;
            }
            if action.kind == ActionKind::Delete {
                return Ok(ApplyOutcome::Deleted);
            }
        }
        let desired = desired_of(action)?;
        let name = text_attribute(&desired.attributes, "name")
            .ok_or_else(|| failed(format!("`{}` has no `name`", action.address), None))?;
        let internal = desired
            .attributes
            .get("internal")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let labels = self.labels(&action.address, &desired.hash());
        let response = client
            .send_raw(api::create_network(name, internal, &labels))
            .await
            .map_err(from_client)?;
        let id = if response.is_success() {
            response
                .json()
                .ok()
                .and_then(|json| json["Id"].as_str().map(str::to_string))
        } else if response.status == 409 {
            // Already there: fine if it is ours (an adopt or a retried apply).
            let existing = client
                .send_json(api::inspect_network(name))
                .await
                .map_err(from_client)?;
            if label(&existing, api::LABEL_STACK) != Some(self.stack.as_str()) {
                return Err(failed(
                    format!(
                        "a network named `{name}` exists on the host and is not stack `{}`'s",
                        self.stack
                    ),
                    Some("remove it, or rename the network in stack.toml".into()),
                ));
            }
            existing["Id"].as_str().map(str::to_string)
        } else {
            return Err(failed(
                format!(
                    "cannot create network `{name}`: {}",
                    response.error_message()
                ),
                None,
            ));
        };
        for (container, aliases) in &attached {
            client
                .send(api::connect_network(name, container, aliases))
                .await
                .map_err(from_client)?;
        }
        Ok(ApplyOutcome::Recorded(recorded_with(desired, id, &[])))
    }

    /// Detaches every container from network `name`; returns each container's id with
    /// the aliases it had there, to attach it again to the network made anew.
    async fn detach_all(
        &self,
        client: &DockerClient,
        name: &str,
    ) -> Result<Vec<(String, Vec<String>)>, ProviderError> {
        let response = client
            .send_raw(api::inspect_network(name))
            .await
            .map_err(from_client)?;
        if response.status == 404 {
            return Ok(Vec::new());
        }
        let network = response.json().unwrap_or_default();
        let ids: Vec<String> = network["Containers"]
            .as_object()
            .map(|containers| containers.keys().cloned().collect())
            .unwrap_or_default();
        let mut attached = Vec::new();
        for id in ids {
            let container = client
                .send_json(api::inspect_container(&id))
                .await
                .map_err(from_client)?;
            let aliases = own_aliases(&container["NetworkSettings"]["Networks"][name], &id);
            client
                .send(api::disconnect_network(name, &id))
                .await
                .map_err(from_client)?;
            attached.push((id, aliases));
        }
        Ok(attached)
    }

    async fn remove_network(&self, client: &DockerClient, name: &str) -> Result<(), ProviderError> {
        let response = client
            .send_raw(api::remove_network(name))
            .await
            .map_err(from_client)?;
        if response.is_success() || response.status == 404 {
            Ok(())
        } else {
            Err(failed(
                format!(
                    "cannot remove network `{name}`: {}",
                    response.error_message()
                ),
                None,
            ))
        }
    }
}

/// The aliases an endpoint was given, without the short container id Docker adds itself.
fn own_aliases(endpoint: &serde_json::Value, container_id: &str) -> Vec<String> {
    endpoint["Aliases"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(serde_json::Value::as_str)
        .filter(|alias| !container_id.starts_with(alias))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reattached_container_keeps_its_own_aliases() {
        let endpoint = serde_json::json!({"Aliases": ["postgres", "0123456789ab"]});
        assert_eq!(
            own_aliases(&endpoint, "0123456789abcdef"),
            vec!["postgres".to_string()]
        );
        assert!(own_aliases(&serde_json::Value::Null, "x").is_empty());
    }
}
