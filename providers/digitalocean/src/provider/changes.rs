//! Create, update and delete, dispatched to the kind that owns the address.

use stackctl_provider::{
    ApplyContext, Attributes, ProviderError, RecordedResource, Resource, Value,
};

use super::attributes::{text_of, with_computed};
use super::droplet::droplet_id;
use super::{failed, DigitalOceanProvider, DNS_RECORD, DROPLET, FIREWALL, SSH_KEY};

impl DigitalOceanProvider {
    /// Deletes whatever `prior` recorded. A resource already gone counts as deleted.
    pub(super) async fn delete(&self, prior: &RecordedResource) -> Result<(), ProviderError> {
        let Some(id) = prior.id.as_deref() else {
            return Ok(());
        };
        let address = &prior.address;
        let result = match address.kind() {
            DROPLET => self.client.delete_droplet(droplet_id(id, address)?).await,
            SSH_KEY => self.client.delete_ssh_key(id).await,
            FIREWALL => self.client.delete_firewall(id).await,
            DNS_RECORD => {
                let domain = text_of(prior.attributes.get("domain")).ok_or_else(|| {
                    ProviderError::failed(format!("`{address}` has no recorded domain"))
                })?;
                let number = id
                    .parse::<i64>()
                    .map_err(|_| ProviderError::failed(format!("`{id}` is not a record id")))?;
                let deleted = self.client.delete_record(&domain, number).await;
                if deleted.is_ok()
                    && prior.attributes.get("domain_created") == Some(&Value::Bool(true))
                {
                    self.delete_domain_if_empty(&domain).await?;
                }
                deleted
            }
            other => {
                return Err(ProviderError::failed(format!(
                    "the digitalocean provider does not own `{other}`"
                )))
            }
        };
        result
            .map(|_| ())
            .map_err(|error| failed(&format!("cannot delete `{address}` ({id})"), error))
    }

    pub(super) async fn create(
        &self,
        desired: &Resource,
        context: &ApplyContext,
        except: Option<i64>,
    ) -> Result<RecordedResource, ProviderError> {
        match desired.address.kind() {
            DROPLET => self.create_droplet(desired, context, except).await,
            SSH_KEY => self.create_ssh_key(desired).await,
            FIREWALL => self.create_firewall(desired).await,
            DNS_RECORD => self.create_record(desired).await,
            other => Err(ProviderError::failed(format!(
                "the digitalocean provider does not own `{other}`"
            ))),
        }
    }

    pub(super) async fn update(
        &self,
        desired: &Resource,
        prior: Option<&RecordedResource>,
        live_id: Option<&str>,
    ) -> Result<RecordedResource, ProviderError> {
        let id = live_id
            .map(str::to_string)
            .or_else(|| prior.and_then(|prior| prior.id.clone()))
            .ok_or_else(|| {
                ProviderError::failed(format!("`{}` has no id to update", desired.address))
            })?;
        match desired.address.kind() {
            DROPLET => {
                self.update_droplet(desired, droplet_id(&id, &desired.address)?)
                    .await
            }
            SSH_KEY => {
                let name = text_of(desired.attributes.get("name")).unwrap_or_default();
                let number = id
                    .parse::<i64>()
                    .map_err(|_| ProviderError::failed(format!("`{id}` is not an SSH key id")))?;
                let key = self
                    .client
                    .rename_ssh_key(number, &name)
                    .await
                    .map_err(|error| failed("cannot rename the SSH key", error))?;
                Ok(with_computed(
                    desired,
                    key.id.to_string(),
                    Attributes::from([
                        ("id".to_string(), Value::text(key.id.to_string())),
                        ("fingerprint".to_string(), Value::text(&key.fingerprint)),
                    ]),
                ))
            }
            FIREWALL => self.update_firewall(desired, &id).await,
            DNS_RECORD => {
                let number = id
                    .parse::<i64>()
                    .map_err(|_| ProviderError::failed(format!("`{id}` is not a record id")))?;
                self.update_record(desired, prior, number).await
            }
            other => Err(ProviderError::failed(format!(
                "the digitalocean provider does not own `{other}`"
            ))),
        }
    }
}
