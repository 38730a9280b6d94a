//! `stackctl rollback`: a plan back to what an earlier successful apply deployed.
//!
//! The rollback's desired resources are the history entry's, with two things taken from
//! today instead: **secret values** (history keeps only their salted digests, so the
//! current ones are the only ones there are) and each service's **env** (as Kamal does:
//! configuration is today's, code is the entry's). From there it is an ordinary plan —
//! the same planner, the same executor, the same swap and health gates, the same run
//! folder — whose reasons say it rolls back.
//!
//! Images are never rebuilt: today's build context is not the entry's. Every image the
//! entry ran must still be on the host with the id it had, or the rollback is refused
//! naming it, before anything changes.
//!
//! Release tasks run by their usual rule: the rolled-back image is a changed image, so
//! `release.<service>` runs again, with the old image. That is the honest thing for a
//! task like Django's `migrate`, which applies what the old code knows and never reverses
//! what a newer release applied; a schema change the old version cannot live with has to
//! be reversed by hand first (`manage.py migrate app 0041`). The plan says so.
//!
//! Afterwards, the history's newest entry is the rollback, and every plan explains the
//! differences to stack.toml that the rollback made with a reason naming the entry, until
//! the user reverts the commit or applies stack.toml again.

use std::collections::BTreeMap;

use stackctl_provider::{Address, ReadRequest, Reason, RecordedResource, Resource, Value};

use super::{GoneImage, Session, SessionError};
use crate::plan::{Plan, PlanMode};
use crate::state::{images_by_address, HistoryEntry};

/// A rollback, planned: the entry it goes back to and the plan that does it.
pub struct RollbackPlan {
    pub entry: HistoryEntry,
    pub plan: Plan,
}

impl Session {
    /// Makes the plan back to history entry `to` (default: the previous successful
    /// apply). From then on this session's desired resources are the entry's, so
    /// [`Session::apply`] applies the rollback and records it in the history.
    pub async fn plan_rollback(&mut self, to: Option<u64>) -> Result<RollbackPlan, SessionError> {
        let history = self.history()?;
        let state_serial = self.state.as_ref().map_or(0, |state| state.serial);
        let entry = history
            .rollback_target(to, state_serial)
            .map_err(SessionError::RollbackTarget)?
            .clone();
        let desired = rollback_desired(&entry, self.finished_desired(None)?)?;
        let gone = self.gone_images(&entry).await?;
        if !gone.is_empty() {
            return Err(SessionError::RollbackImagesGone {
                entry: entry.id,
                images: gone,
            });
        }
        self.desired = desired;
        self.waiting.clear();
        self.finished = std::sync::OnceLock::new();
        self.rolling_back_to = Some(entry.id);
        let plan = self.plan(false, &[], PlanMode::Apply).await?;
        Ok(RollbackPlan { entry, plan })
    }

    /// The images of `entry` that are not on the host as that apply left them: absent,
    /// or their tag now names another image. One read per provider owning images.
    async fn gone_images(&self, entry: &HistoryEntry) -> Result<Vec<GoneImage>, SessionError> {
        let images: Vec<&Resource> = entry
            .resources
            .iter()
            .filter(|resource| resource.address.kind() == "image")
            .collect();
        // The host transport finds a droplet target at its recorded address.
        let droplets: Vec<RecordedResource> = self
            .state
            .as_ref()
            .map(|state| {
                state
                    .resources
                    .values()
                    .filter(|resource| resource.address.kind() == "droplet")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let mut by_provider: BTreeMap<&str, Vec<Resource>> = BTreeMap::new();
        for image in &images {
            by_provider
                .entry(image.provider.as_str())
                .or_default()
                .push((*image).clone());
        }
        let mut live_ids: BTreeMap<Address, Option<String>> = BTreeMap::new();
        for (name, desired) in by_provider {
            let Some(provider) = self.backends.providers.get(name) else {
                return Err(SessionError::NoProvider(name.to_string()));
            };
            let request = ReadRequest {
                stack: self.stack().to_string(),
                salt: self.salt.clone(),
                desired,
                recorded: droplets.clone(),
            };
            let live = provider.read(&request).await.map_err(|error| {
                SessionError::provider(
                    "cannot check that the rollback's images are on the host",
                    error,
                )
            })?;
            for resource in live {
                let id = resource
                    .attributes
                    .get("image_id")
                    .and_then(Value::as_text)
                    .map(str::to_string);
                live_ids.insert(resource.address, id);
            }
        }
        let records = images_by_address(entry);
        Ok(images
            .iter()
            .filter_map(|image| {
                let record = records.get(&image.address)?;
                let present = match live_ids.get(&image.address) {
                    None => false,
                    Some(live) => {
                        record.image_id.is_empty() || live.as_deref() == Some(&record.image_id)
                    }
                };
                (!present).then(|| GoneImage {
                    address: image.address.clone(),
                    reference: record.reference.clone(),
                    image_id: record.image_id.clone(),
                })
            })
            .collect())
    }

    /// Says in `plan` what a rollback means: while rolling back, its stack.toml-shaped
    /// reasons become "rollback to entry X" and the plan notes what is today's (secrets,
    /// env) and what release tasks do; after one, the differences the rollback made say
    /// the target was rolled back, until stack.toml is applied again.
    pub(super) fn explain_rollback(&self, plan: &mut Plan) {
        if plan.mode != PlanMode::Apply {
            return;
        }
        if let Some(entry) = self.rolling_back_to {
            for action in &mut plan.actions {
                if is_config_reason(&action.reason) {
                    action.reason = Reason::RollingBack { entry };
                }
            }
            plan.warnings.push(format!(
                "this plan rolls back to history entry {entry}: images and configuration as that apply left them; secret values and each service's env are the current ones (history keeps no secret values)"
            ));
            if plan
                .actions
                .iter()
                .any(|action| action.address.kind() == "release")
            {
                plan.warnings.push(
                    "release tasks run again with the rolled-back image, by the usual rule: they do not undo what a newer release did (Django's `migrate` never reverses a migration); reverse such a change by hand first if the old version needs it".to_string(),
                );
            }
            return;
        }
        let history = match self.history() {
            Ok(history) => history,
            Err(error) => {
                plan.warnings.push(format!(
                    "cannot read the release history, so a rollback would not be explained: {error}"
                ));
                return;
            }
        };
        let Some(rollback) = history.rolled_back() else {
            return;
        };
        let Some(entry) = rollback.rolled_back_to else {
            return;
        };
        let changed: Vec<&str> = rollback
            .changes
            .iter()
            .filter_map(|line| line.split_once(' ').map(|(_, address)| address))
            .collect();
        let mut explained = false;
        for action in &mut plan.actions {
            if is_config_reason(&action.reason)
                && changed.contains(&action.address.to_string().as_str())
            {
                action.reason = Reason::RolledBack { entry };
                explained = true;
            }
        }
        if explained {
            plan.warnings.push(format!(
                "the target was rolled back to history entry {entry} by {} at {} (history entry {}): revert the commit to keep that version, or apply to deploy stack.toml again",
                rollback.who, rollback.time, rollback.id
            ));
        }
    }
}

/// The reasons that say "stack.toml asks for something else" (as opposed to drift).
fn is_config_reason(reason: &Reason) -> bool {
    matches!(
        reason,
        Reason::New
            | Reason::ConfigChanged
            | Reason::ReplaceForced { .. }
            | Reason::RemovedFromConfig
    )
}

/// The desired resources of a rollback to `entry`: the entry's, with each service's and
/// release task's `env` taken from `current` (today's stack.toml) and every secret filled
/// in with today's value at the same place. Refuses when a secret has no value today.
pub(crate) fn rollback_desired(
    entry: &HistoryEntry,
    current: &[Resource],
) -> Result<Vec<Resource>, SessionError> {
    let current: BTreeMap<&Address, &Resource> = current
        .iter()
        .map(|resource| (&resource.address, resource))
        .collect();
    let mut desired = Vec::with_capacity(entry.resources.len());
    for resource in &entry.resources {
        let today = current.get(&resource.address).copied();
        let mut resource = resource.clone();
        if matches!(resource.address.kind(), "service" | "release") {
            if let Some(env) = today.and_then(|today| today.attributes.get("env")) {
                resource.attributes.insert("env".to_string(), env.clone());
            }
        }
        let mut filled = BTreeMap::new();
        for (name, value) in &resource.attributes {
            let today_value = today.and_then(|today| today.attributes.get(name));
            let value = with_current_secrets(value, today_value, name).map_err(|attribute| {
                SessionError::RollbackSecretGone {
                    entry: entry.id,
                    address: resource.address.clone(),
                    attribute,
                }
            })?;
            filled.insert(name.clone(), value);
        }
        resource.attributes = filled;
        desired.push(resource);
    }
    Ok(desired)
}

/// `value` with every secret known only by its digest replaced by the secret at the same
/// place in `today`; `Err(path)` names the first that has none.
fn with_current_secrets(value: &Value, today: Option<&Value>, path: &str) -> Result<Value, String> {
    match value {
        Value::Secret(secret) if secret.expose().is_none() => match today {
            Some(Value::Secret(current)) if current.expose().is_some() => {
                Ok(Value::Secret(current.clone()))
            }
            _ => Err(path.to_string()),
        },
        Value::Map(entries) => {
            let today = today.and_then(Value::as_map);
            let mut filled = BTreeMap::new();
            for (key, item) in entries {
                let today_item = today.and_then(|today| today.get(key));
                filled.insert(
                    key.clone(),
                    with_current_secrets(item, today_item, &format!("{path}.{key}"))?,
                );
            }
            Ok(Value::Map(filled))
        }
        Value::List(items) => {
            let today = today.and_then(Value::as_list);
            items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    let today_item = today.and_then(|today| today.get(index));
                    with_current_secrets(item, today_item, &format!("{path}[{index}]"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List)
        }
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stackctl_provider::Secret;

    fn entry(resources: Vec<Resource>) -> HistoryEntry {
        HistoryEntry {
            id: 4,
            time: "2026-11-30T05:00:00Z".into(),
            who: "alice@laptop".into(),
            command: "apply".into(),
            rolled_back_to: None,
            state_serial: 9,
            fingerprint: "sha256:old".into(),
            changes: Vec::new(),
            images: Vec::new(),
            // As read back from the file: secrets by digest only.
            resources: serde_json::from_value(serde_json::to_value(resources).unwrap()).unwrap(),
        }
    }

    fn service(image: &str, env: &[(&str, Value)]) -> Resource {
        Resource::new(Address::new("service", "web"), "docker")
            .with("image", image)
            .with(
                "env",
                Value::Map(
                    env.iter()
                        .map(|(key, value)| (key.to_string(), value.clone()))
                        .collect(),
                ),
            )
    }

    #[test]
    fn the_image_is_the_entrys_and_the_env_with_its_secrets_is_todays() {
        let old = service(
            "shop/web:old",
            &[
                ("MODE", Value::text("v1")),
                ("KEY", Value::Secret(Secret::new("old", "salt"))),
            ],
        );
        let today = service(
            "shop/web:new",
            &[
                ("MODE", Value::text("v2")),
                ("KEY", Value::Secret(Secret::new("new", "salt"))),
            ],
        );
        let desired = rollback_desired(&entry(vec![old]), std::slice::from_ref(&today)).unwrap();
        assert_eq!(desired[0].attributes["image"], Value::text("shop/web:old"));
        assert_eq!(desired[0].attributes["env"], today.attributes["env"]);
        let Value::Map(env) = &desired[0].attributes["env"] else {
            panic!()
        };
        let Value::Secret(key) = &env["KEY"] else {
            panic!()
        };
        assert_eq!(
            key.expose(),
            Some("new"),
            "the secret can be handed to Docker"
        );
    }

    #[test]
    fn a_secret_outside_env_takes_todays_value_at_the_same_place() {
        let users = |password: &str| {
            Resource::new(Address::new("middleware", "auth"), "traefik").with(
                "users",
                Value::Map(
                    [(
                        "admin".to_string(),
                        Value::Secret(Secret::new(password, "s")),
                    )]
                    .into(),
                ),
            )
        };
        let desired = rollback_desired(&entry(vec![users("old")]), &[users("today")]).unwrap();
        let Value::Map(map) = &desired[0].attributes["users"] else {
            panic!()
        };
        let Value::Secret(secret) = &map["admin"] else {
            panic!()
        };
        assert_eq!(secret.expose(), Some("today"));
    }

    #[test]
    fn a_secret_stack_toml_no_longer_provides_refuses_the_rollback_naming_it() {
        let users = Resource::new(Address::new("middleware", "auth"), "traefik").with(
            "users",
            Value::Map([("admin".to_string(), Value::Secret(Secret::new("old", "s")))].into()),
        );
        let error = rollback_desired(&entry(vec![users]), &[]).unwrap_err();
        let SessionError::RollbackSecretGone {
            entry,
            address,
            attribute,
        } = error
        else {
            panic!("{error}")
        };
        assert_eq!(
            (entry, address.to_string(), attribute.as_str()),
            (4, "middleware.auth".to_string(), "users.admin")
        );
    }

    #[test]
    fn stack_toml_reasons_become_rollback_reasons_and_drift_stays_drift() {
        assert!(is_config_reason(&Reason::ConfigChanged));
        assert!(is_config_reason(&Reason::RemovedFromConfig));
        assert!(!is_config_reason(&Reason::Drift {
            attributes: vec!["image".into()]
        }));
        assert!(!is_config_reason(&Reason::ReleaseTask {
            attributes: vec!["image".into()]
        }));
    }
}
