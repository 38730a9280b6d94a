//! Droplets: the live attributes read back from a droplet, the create body, reading
//! the stack's tagged droplets, creating one without ever making a duplicate, and the
//! actions (power, resize, rebuild, retag…) an update runs.

use std::collections::BTreeSet;

use serde_json::{json, Value as Json};
use stackctl_provider::{
    Address, ApplyContext, Attributes, LiveResource, ProviderError, ReadRequest, RecordedResource,
    Resource, Value,
};

use super::attributes::{ordered_like, text_list, text_of, with_computed};
use super::entries::entries_of_kind;
use super::{failed, DigitalOceanProvider, DROPLET};
use crate::api::Droplet;
use crate::client::ClientError;

/// The live droplet in desired shape. `reference` supplies what cannot be read back
/// (ssh keys, the user-data hash) and the preferred list order.
pub(super) fn droplet_attributes(droplet: &Droplet, reference: Option<&Attributes>) -> Attributes {
    let mut attributes = Attributes::new();
    let get = |name: &str| reference.and_then(|reference| reference.get(name));
    attributes.insert("name".into(), Value::text(&droplet.name));
    if let Some(region) = droplet.region_slug() {
        attributes.insert("region".into(), Value::text(region));
    }
    attributes.insert("size".into(), Value::text(&droplet.size_slug));
    if let Some(image) = droplet.image_text() {
        attributes.insert("image".into(), Value::text(image));
    }
    attributes.insert(
        "tags".into(),
        ordered_like(droplet.tags.clone(), get("tags")),
    );
    let has = |feature: &str| droplet.features.iter().any(|existing| existing == feature);
    attributes.insert("monitoring".into(), Value::Bool(has("monitoring")));
    attributes.insert("ipv6".into(), Value::Bool(has("ipv6")));
    // Not readable from the API: carried over so they never show as drift.
    for unreadable in ["ssh_keys", "user_data_hash"] {
        if let Some(value) = get(unreadable) {
            attributes.insert(unreadable.into(), value.clone());
        }
    }
    attributes.insert("id".into(), Value::text(droplet.id.to_string()));
    attributes.insert("status".into(), Value::text(&droplet.status));
    if let Some(ipv4) = droplet.public_ipv4() {
        attributes.insert("ipv4".into(), Value::text(ipv4));
    }
    attributes
}

pub(super) fn droplet_create_body(
    desired: &Resource,
    stack_tag: &str,
) -> Result<Json, ProviderError> {
    let attributes = &desired.attributes;
    let required = |name: &str| {
        text_of(attributes.get(name))
            .ok_or_else(|| ProviderError::failed(format!("`{}` has no `{name}`", desired.address)))
    };
    let image = required("image")?;
    let mut tags = text_list(attributes.get("tags"));
    if !tags.iter().any(|tag| tag == stack_tag) {
        tags.push(stack_tag.to_string());
    }
    let mut body = json!({
        "name": required("name")?,
        "region": required("region")?,
        "size": required("size")?,
        // A numeric image is an id (a snapshot); anything else is a slug.
        "image": image.parse::<i64>().map(Json::from).unwrap_or(Json::String(image)),
        "ssh_keys": text_list(attributes.get("ssh_keys")),
        "tags": tags,
        "monitoring": attributes.get("monitoring").and_then(Value::as_bool).unwrap_or(false),
        "ipv6": attributes.get("ipv6").and_then(Value::as_bool).unwrap_or(false),
    });
    if let Some(user_data) = text_of(attributes.get("user_data")) {
        body["user_data"] = Json::String(user_data);
    }
    Ok(body)
}

pub(super) fn droplet_id(text: &str, address: &Address) -> Result<i64, ProviderError> {
    text.parse::<i64>().map_err(|_| {
        ProviderError::failed(format!("`{text}` is not a droplet id (for `{address}`)"))
    })
}

impl DigitalOceanProvider {
    pub(super) async fn read_droplets(
        &self,
        request: &ReadRequest,
        found: &mut Vec<LiveResource>,
    ) -> Result<(), ProviderError> {
        let entries = entries_of_kind(request, DROPLET);
        if entries.is_empty() {
            return Ok(());
        }
        let tag = Self::stack_tag(&request.stack);
        let tagged = self
            .client
            .list_droplets_by_tag(&tag)
            .await
            .map_err(|error| failed("cannot list droplets", error))?;
        for entry in entries {
            let recorded_id = entry.recorded.and_then(|recorded| recorded.id.clone());
            let droplet = match &recorded_id {
                Some(id) => match tagged.iter().find(|droplet| droplet.id.to_string() == *id) {
                    Some(droplet) => Some(droplet.clone()),
                    // Retagged outside stackctl: still ours by id, so look it up directly.
                    None => match id.parse::<i64>() {
                        Ok(number) => self
                            .client
                            .get_droplet(number)
                            .await
                            .map_err(|error| failed("cannot read a droplet", error))?,
                        Err(_) => None,
                    },
                },
                None => {
                    let name = entry
                        .desired
                        .and_then(|desired| text_of(desired.attributes.get("name")));
                    tagged
                        .iter()
                        .find(|droplet| Some(&droplet.name) == name.as_ref())
                        .cloned()
                }
            };
            if let Some(droplet) = droplet {
                found.push(LiveResource {
                    address: entry.address.clone(),
                    id: Some(droplet.id.to_string()),
                    attributes: droplet_attributes(&droplet, entry.reference()),
                    owned: droplet.tags.contains(&tag),
                });
            }
        }
        Ok(())
    }

    pub(super) async fn find_droplet(
        &self,
        name: &str,
        tag: &str,
        except: Option<i64>,
    ) -> Result<Option<Droplet>, ClientError> {
        let droplets = self.client.list_droplets_by_name(name).await?;
        Ok(droplets.into_iter().find(|droplet| {
            droplet.tags.iter().any(|existing| existing == tag) && Some(droplet.id) != except
        }))
    }

    pub(super) async fn create_droplet(
        &self,
        desired: &Resource,
        context: &ApplyContext,
        except: Option<i64>,
    ) -> Result<RecordedResource, ProviderError> {
        let tag = Self::stack_tag(&context.stack);
        let body = droplet_create_body(desired, &tag)?;
        let name = body["name"].as_str().unwrap_or_default().to_string();
        let ((droplet, action_id), _created) = self
            .client
            .create_without_duplicates(
                "droplet",
                || self.client.create_droplet(&body),
                || async {
                    Ok(self
                        .find_droplet(&name, &tag, except)
                        .await?
                        .map(|droplet| (droplet, None)))
                },
            )
            .await
            .map_err(|error| failed(&format!("cannot create droplet `{name}`"), error))?;
        if let Some(action_id) = action_id {
            self.client
                .wait_for_action(action_id, &self.options.poll)
                .await
                .map_err(|error| {
                    failed(&format!("droplet `{name}` did not finish starting"), error)
                })?;
        }
        let ready = self
            .client
            .wait_for_droplet_ready(droplet.id, &self.options.poll)
            .await
            .map_err(|error| {
                failed(
                    &format!("droplet `{name}` (id {}) did not become ready", droplet.id),
                    error,
                )
            })?;
        Ok(self.droplet_record(desired, &ready))
    }

    pub(super) fn droplet_record(&self, desired: &Resource, droplet: &Droplet) -> RecordedResource {
        let live = droplet_attributes(droplet, Some(&desired.attributes));
        let computed = live
            .into_iter()
            .filter(|(name, _)| ["id", "ipv4", "status"].contains(&name.as_str()))
            .collect();
        with_computed(desired, droplet.id.to_string(), computed)
    }

    /// Runs one droplet action and waits for it. An action is a POST: if its answer is
    /// lost (or the droplet reports a pending event because the lost one is running),
    /// the droplet is watched until it is unlocked and `done` decides whether the
    /// action took effect, instead of sending it again blindly.
    pub(super) async fn run_action(
        &self,
        id: i64,
        body: Json,
        what: &str,
        done: impl Fn(&Droplet) -> bool,
    ) -> Result<(), ProviderError> {
        let error = match self.client.droplet_action(id, &body).await {
            Ok(action) => {
                return self
                    .client
                    .wait_for_action(action.id, &self.options.poll)
                    .await
                    .map(|_| ())
                    .map_err(|error| failed(&format!("cannot {what} droplet {id}"), error));
            }
            Err(error) if error.is_ambiguous() || error.status() == Some(422) => error,
            Err(error) => return Err(failed(&format!("cannot {what} droplet {id}"), error)),
        };
        tracing::warn!(droplet = id, what, error = %error, "droplet action outcome unknown; watching the droplet");
        let started = std::time::Instant::now();
        loop {
            let droplet = self
                .client
                .get_droplet(id)
                .await
                .map_err(|error| failed(&format!("cannot read droplet {id}"), error))?
                .ok_or_else(|| {
                    ProviderError::failed(format!("droplet {id} disappeared during {what}"))
                })?;
            if !droplet.locked {
                if done(&droplet) {
                    return Ok(());
                }
                return Err(failed(&format!("cannot {what} droplet {id}"), error));
            }
            if started.elapsed() + self.options.poll.interval > self.options.poll.timeout {
                return Err(failed(
                    &format!("droplet {id} stayed locked during {what}"),
                    error,
                ));
            }
            tokio::time::sleep(self.options.poll.interval).await;
        }
    }

    /// In-place changes: a resize (power off, resize, power on), powering a stopped
    /// droplet back on, a rename, IPv6. Anything else cannot change in place.
    pub(super) async fn update_droplet(
        &self,
        desired: &Resource,
        id: i64,
    ) -> Result<RecordedResource, ProviderError> {
        let current = self
            .client
            .get_droplet(id)
            .await
            .map_err(|error| failed("cannot read the droplet to update", error))?
            .ok_or_else(|| {
                ProviderError::failed(format!(
                    "droplet {id} of `{}` no longer exists",
                    desired.address
                ))
            })?;
        let attributes = &desired.attributes;
        let live = droplet_attributes(&current, Some(attributes));
        let mut unsupported = Vec::new();
        for name in ["region", "image", "monitoring"] {
            if let (Some(wanted), Some(have)) = (attributes.get(name), live.get(name)) {
                if wanted != have {
                    unsupported.push(name);
                }
            }
        }
        if !unsupported.is_empty() {
            return Err(ProviderError::Failed {
                message: format!(
                    "`{}`: {} cannot change in place on DigitalOcean",
                    desired.address,
                    unsupported.join(", ")
                ),
                detail: None,
                hint: Some(
                    "replace the droplet (region and image force a replacement in the plan)".into(),
                ),
            });
        }
        // Tags through the tags API: add what is missing, remove what is extra.
        if attributes.contains_key("tags") {
            let wanted: BTreeSet<String> = text_list(attributes.get("tags")).into_iter().collect();
            let have: BTreeSet<String> = current.tags.iter().cloned().collect();
            for tag in wanted.difference(&have) {
                self.client
                    .tag_droplet(tag, id, true)
                    .await
                    .map_err(|error| {
                        failed(&format!("cannot tag droplet {id} with `{tag}`"), error)
                    })?;
            }
            for tag in have.difference(&wanted) {
                self.client
                    .tag_droplet(tag, id, false)
                    .await
                    .map_err(|error| {
                        failed(&format!("cannot untag `{tag}` from droplet {id}"), error)
                    })?;
            }
        }
        let mut powered_on = current.status == "active";
        if let Some(size) =
            text_of(attributes.get("size")).filter(|size| *size != current.size_slug)
        {
            if powered_on {
                self.run_action(id, json!({"type": "power_off"}), "power off", |droplet| {
                    droplet.status == "off"
                })
                .await?;
                powered_on = false;
            }
            let resized = |droplet: &Droplet| droplet.size_slug == size;
            self.run_action(
                id,
                json!({"type": "resize", "size": size, "disk": false}),
                "resize",
                resized,
            )
            .await?;
        }
        if let Some(name) = text_of(attributes.get("name")).filter(|name| *name != current.name) {
            let renamed = |droplet: &Droplet| droplet.name == name;
            self.run_action(
                id,
                json!({"type": "rename", "name": name}),
                "rename",
                renamed,
            )
            .await?;
        }
        if attributes.get("ipv6").and_then(Value::as_bool) == Some(true)
            && !current.features.iter().any(|feature| feature == "ipv6")
        {
            self.run_action(
                id,
                json!({"type": "enable_ipv6"}),
                "enable IPv6 on",
                |droplet| droplet.features.iter().any(|feature| feature == "ipv6"),
            )
            .await?;
        }
        if !powered_on {
            self.run_action(id, json!({"type": "power_on"}), "power on", |droplet| {
                droplet.status == "active"
            })
            .await?;
        }
        let ready = self
            .client
            .wait_for_droplet_ready(id, &self.options.poll)
            .await
            .map_err(|error| failed(&format!("droplet {id} did not come back"), error))?;
        Ok(self.droplet_record(desired, &ready))
    }
}
