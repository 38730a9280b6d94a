//! SSH keys: read back by fingerprint (the key list has its own 10-per-minute limit),
//! and uploaded, or adopted and renamed when the account already holds the key.

use stackctl_provider::{
    Attributes, LiveResource, ProviderError, ReadRequest, RecordedResource, Resource, Value,
};

use super::attributes::{text_of, with_computed};
use super::entries::entries_of_kind;
use super::{failed, DigitalOceanProvider, SSH_KEY};
use crate::fingerprint::ssh_fingerprint;

impl DigitalOceanProvider {
    pub(super) async fn read_ssh_keys(
        &self,
        request: &ReadRequest,
        found: &mut Vec<LiveResource>,
    ) -> Result<(), ProviderError> {
        for entry in entries_of_kind(request, SSH_KEY) {
            let identifier = match entry.recorded.and_then(|recorded| recorded.id.clone()) {
                Some(id) => Some(id),
                None => entry
                    .desired
                    .and_then(|desired| text_of(desired.attributes.get("public_key")))
                    .and_then(|public_key| ssh_fingerprint(&public_key)),
            };
            let Some(identifier) = identifier else {
                continue;
            };
            let key = self
                .client
                .get_ssh_key(&identifier)
                .await
                .map_err(|error| failed("cannot read an SSH key", error))?;
            if let Some(key) = key {
                found.push(LiveResource {
                    address: entry.address.clone(),
                    id: Some(key.id.to_string()),
                    attributes: key_attributes(&key, entry.reference()),
                    // The same fingerprint is the same key: adopt it rather than upload a twin.
                    owned: true,
                });
            }
        }
        Ok(())
    }

    pub(super) async fn create_ssh_key(
        &self,
        desired: &Resource,
    ) -> Result<RecordedResource, ProviderError> {
        let name = text_of(desired.attributes.get("name"))
            .ok_or_else(|| ProviderError::failed(format!("`{}` has no `name`", desired.address)))?;
        let public_key = text_of(desired.attributes.get("public_key")).ok_or_else(|| {
            ProviderError::failed(format!("`{}` has no `public_key`", desired.address))
        })?;
        let fingerprint = ssh_fingerprint(&public_key).ok_or_else(|| {
            ProviderError::failed(format!(
                "`{}`: `public_key` is not an OpenSSH public key",
                desired.address
            ))
        })?;
        // DigitalOcean refuses a second key with one fingerprint; adopt the existing one.
        let existing = self
            .client
            .get_ssh_key(&fingerprint)
            .await
            .map_err(|error| failed("cannot look up the SSH key", error))?;
        let key = match existing {
            Some(key) if key.name == name => key,
            Some(key) => self
                .client
                .rename_ssh_key(key.id, &name)
                .await
                .map_err(|error| failed("cannot rename the existing SSH key", error))?,
            None => {
                self.client
                    .create_without_duplicates(
                        "ssh key",
                        || self.client.create_ssh_key(&name, &public_key),
                        || self.client.get_ssh_key(&fingerprint),
                    )
                    .await
                    .map_err(|error| failed(&format!("cannot upload SSH key `{name}`"), error))?
                    .0
            }
        };
        Ok(with_computed(
            desired,
            key.id.to_string(),
            Attributes::from([
                ("id".to_string(), Value::text(key.id.to_string())),
                ("fingerprint".to_string(), Value::text(&key.fingerprint)),
            ]),
        ))
    }
}

pub(super) fn key_attributes(
    key: &crate::api::SshKey,
    reference: Option<&Attributes>,
) -> Attributes {
    let reference_key = reference.and_then(|reference| text_of(reference.get("public_key")));
    // The key material is what matters; a different comment or spacing is not drift.
    let public_key = match reference_key {
        Some(text) if ssh_fingerprint(&text).as_deref() == Some(key.fingerprint.as_str()) => text,
        _ => key.public_key.clone(),
    };
    Attributes::from([
        ("name".to_string(), Value::text(&key.name)),
        ("public_key".to_string(), Value::text(public_key)),
        ("fingerprint".to_string(), Value::text(&key.fingerprint)),
        ("id".to_string(), Value::text(key.id.to_string())),
    ])
}
