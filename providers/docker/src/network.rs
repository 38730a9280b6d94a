//! Applying a `network.*` resource: create it labelled as the stack's (taking over only
//! one that already is), remove it when it goes.

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
        if action.kind.destroys() {
            if let Some(name) = &prior_name {
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
        Ok(ApplyOutcome::Recorded(recorded_with(desired, id, &[])))
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
