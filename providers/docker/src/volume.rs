//! Applying a `volume.*` resource. Removing (or replacing) a volume deletes its data, so
//! it needs `allow_data_loss`; a volume of the same name that is not the stack's is never
//! taken over.

use stackctl_provider::{Action, ActionKind, ApplyContext, ApplyOutcome, ProviderError};

use crate::api::{self, DockerClient};
use crate::attributes::{desired_of, recorded_with, text_attribute};
use crate::labels::label;
use crate::provider::DockerProvider;
use crate::provider_error::{failed, from_client};

impl DockerProvider {
    pub(crate) async fn apply_volume(
        &self,
        client: &DockerClient,
        action: &Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        if action.kind.destroys() {
            let prior_name = action
                .prior
                .as_ref()
                .and_then(|prior| text_attribute(&prior.attributes, "name").map(str::to_string));
            if let Some(name) = prior_name {
                if !context.allow_data_loss {
                    return Err(ProviderError::Failed {
                        message: format!(
                            "refusing to {} `{}`: removing volume `{name}` deletes its data",
                            action.kind.verb(),
                            action.address
                        ),
                        detail: None,
                        hint: Some("pass --allow-data-loss if the data may go".into()),
                    });
                }
                let response = client
                    .send_raw(api::remove_volume(&name))
                    .await
                    .map_err(from_client)?;
                if !response.is_success() && response.status != 404 {
                    return Err(failed(
                        format!(
                            "cannot remove volume `{name}`: {}",
                            response.error_message()
                        ),
                        None,
                    ));
                }
            }
            if action.kind == ActionKind::Delete {
                return Ok(ApplyOutcome::Deleted);
            }
        }
        let desired = desired_of(action)?;
        let name = text_attribute(&desired.attributes, "name")
            .ok_or_else(|| failed(format!("`{}` has no `name`", action.address), None))?;
        let labels = self.labels(&action.address, &desired.hash());
        // Creating an existing volume returns it unchanged: check that it is ours.
        let volume = client
            .send_json(api::create_volume(name, &labels))
            .await
            .map_err(from_client)?;
        if label(&volume, api::LABEL_STACK) != Some(self.stack.as_str()) {
            return Err(failed(
                format!(
                    "a volume named `{name}` exists on the host and is not stack `{}`'s",
                    self.stack
                ),
                Some("stackctl does not take over volumes it did not create".into()),
            ));
        }
        Ok(ApplyOutcome::Recorded(recorded_with(
            desired,
            Some(name.to_string()),
            &[],
        )))
    }
}
