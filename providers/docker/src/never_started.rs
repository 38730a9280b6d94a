//! A container an interrupted apply created but never started (killed between creating
//! it, connecting it to its networks and starting it). Adopting it as it is would record
//! a service that does not run — and may lack a network — while the plan says "no
//! changes". It never ran, so nothing is lost by creating the service afresh instead.

use stackctl_provider::{Action, ActionKind, ApplyContext, ApplyOutcome, ProviderError};

use crate::api::{self, DockerClient};
use crate::provider::DockerProvider;
use crate::provider_error::from_client;

impl DockerProvider {
    /// Adopts what `action` names, unless it is a service container that never started:
    /// that one is removed and the service created as stack.toml says.
    pub(crate) async fn adopt_unless_never_started(
        &self,
        client: &DockerClient,
        action: &Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        if action.address.kind() == "service" {
            if let Some(live_id) = action.live_id.as_deref() {
                let inspect = client
                    .send_json(api::inspect_container(live_id))
                    .await
                    .map_err(from_client)?;
                if inspect["State"]["Status"].as_str() == Some("created") {
                    client
                        .send(api::remove_container(live_id))
                        .await
                        .map_err(from_client)?;
                    let create = Action {
                        kind: ActionKind::Create,
                        live_id: None,
                        ..action.clone()
                    };
                    return self.apply_service(client, &create, context).await;
                }
            }
        }
        self.adopt(client, action).await
    }
}
