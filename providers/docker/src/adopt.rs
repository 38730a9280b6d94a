//! Taking over what already exists: `adopt` records a live object that is already the
//! stack's without changing it; `import` records an object named by its id.

use stackctl_provider::{
    Action, Address, ApplyContext, ApplyOutcome, ProviderError, RecordedResource, Resource, Value,
};

use crate::api::{self, DockerClient};
use crate::attributes::{desired_of, image_reference, recorded_with};
use crate::labels::label;
use crate::provider::DockerProvider;
use crate::provider_error::{failed, from_client};
use crate::spec::ServiceSpec;

impl DockerProvider {
    /// Records a live resource that is already this stack's, without changing it.
    pub(crate) async fn adopt(
        &self,
        client: &DockerClient,
        action: &Action,
    ) -> Result<ApplyOutcome, ProviderError> {
        let desired = desired_of(action)?;
        let live_id = action.live_id.as_deref().ok_or_else(|| {
            failed(
                format!("`{}`: adopt needs the live id", action.address),
                None,
            )
        })?;
        match action.address.kind() {
            "service" => {
                let inspect = client
                    .send_json(api::inspect_container(live_id))
                    .await
                    .map_err(from_client)?;
                let name = inspect["Name"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches('/');
                let id = inspect["Id"].as_str().unwrap_or(live_id);
                let running = inspect["State"]["Running"].as_bool().unwrap_or(false);
                // Adopting means the edge finds it too: write its backend file if needed.
                let spec =
                    ServiceSpec::from_attributes(action.address.name(), &desired.attributes).ok();
                if let Some(spec) = spec.filter(|spec| spec.route_backend.is_some() && running) {
                    self.adopt_backend_file(client, &spec, name).await?;
                }
                let ApplyOutcome::Recorded(mut recorded) = self.record_service(desired, id, name)
                else {
                    return Err(failed("adopt produced no record", None));
                };
                // The label hash is what the container carries, so drift stays visible.
                let label_hash = label(&inspect["Config"], api::LABEL_HASH);
                recorded.attributes.insert(
                    "label_hash".into(),
                    label_hash.map(Value::text).unwrap_or(Value::Null),
                );
                recorded
                    .attributes
                    .insert("running".into(), Value::Bool(running));
                recorded.attributes.insert(
                    "state".into(),
                    Value::text(inspect["State"]["Status"].as_str().unwrap_or("unknown")),
                );
                Ok(ApplyOutcome::Recorded(recorded))
            }
            "image" => {
                let image_id = image_reference(&desired.attributes)
                    .unwrap_or(live_id)
                    .to_string();
                let image = client
                    .send_json(api::inspect_image(&image_id))
                    .await
                    .map_err(from_client)?;
                let id = image["Id"].as_str().unwrap_or(live_id).to_string();
                Ok(ApplyOutcome::Recorded(recorded_with(
                    desired,
                    Some(id.clone()),
                    &[("image_id", Value::text(id))],
                )))
            }
            _ => Ok(ApplyOutcome::Recorded(recorded_with(
                desired,
                Some(live_id.to_string()),
                &[],
            ))),
        }
    }

    /// Records an object found on the host by its id (`stackctl import`).
    pub(crate) async fn import_existing(
        &self,
        address: &Address,
        id: &str,
        desired: Option<&Resource>,
        context: &ApplyContext,
    ) -> Result<RecordedResource, ProviderError> {
        let client = self.client_for_apply(context).await?;
        let request = match address.kind() {
            "service" => api::inspect_container(id),
            "network" => api::inspect_network(id),
            "volume" => api::inspect_volume(id),
            "image" => api::inspect_image(id),
            other => {
                return Err(failed(
                    format!("the docker provider has no kind `{other}`"),
                    None,
                ))
            }
        };
        let found = client.send_json(request).await.map_err(from_client)?;
        let found_id = found["Id"]
            .as_str()
            .or(found["Name"].as_str())
            .unwrap_or(id)
            .to_string();
        let resource = desired
            .cloned()
            .unwrap_or_else(|| Resource::new(address.clone(), "docker"));
        Ok(RecordedResource::from_desired(&resource, Some(found_id)))
    }
}
