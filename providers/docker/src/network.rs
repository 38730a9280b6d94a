//! Applying a `network.*` resource: create it labelled as the stack's (taking over only
//! one that already is), remove it when it goes.
//!
//! A network is replaced when `internal` changes. Docker cannot remove a network that
//! containers are attached to, and the containers stay as they are (their attributes name
//! the network, not how it is made): so a replace detaches them, makes the network
//! again, and attaches them with the aliases they had. They lose that network for the
//! moment in between, nothing else. Should a step after the detach fail, the detached
//! containers are attached again to whichever of the two networks is there (the old one
//! when its removal failed, the new one when only attaching failed), so that a failed
//! apply does not leave Postgres unreachable until the next one; the error says which
//! containers are back and which are not.

use stackctl_provider::{Action, ActionKind, ApplyOutcome, ProviderError, Value};

/// A container detached from a network being replaced, with the aliases it had there.
type Detached = (String, Vec<String>);

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
        // Containers detached and not attached again yet.
        let mut detached = Vec::new();
        let result = self
            .replace_network(client, action, prior_name.as_deref(), &mut detached)
            .await;
        match result {
            Err(error) if !detached.is_empty() => {
                let desired_name = desired_of(action)
                    .ok()
                    .and_then(|desired| text_attribute(&desired.attributes, "name"))
                    .map(str::to_string);
                let candidates: Vec<&str> = [desired_name.as_deref(), prior_name.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                let outcome = self.reattach(client, &candidates, &detached).await;
                Err(with_note(error, &outcome.summary()))
            }
            other => other,
        }
    }

    /// Removes the prior network when the action destroys it, and makes the desired one;
    /// `detached` holds the containers taken off the prior network and not yet back.
    async fn replace_network(
        &self,
        client: &DockerClient,
        action: &Action,
        prior_name: Option<&str>,
        detached: &mut Vec<Detached>,
    ) -> Result<ApplyOutcome, ProviderError> {
        if action.kind.destroys() {
            if let Some(name) = prior_name {
                if action.kind != ActionKind::Delete {
                    self.detach_all(client, name, detached).await?;
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
        let driver = text_attribute(&desired.attributes, "driver").unwrap_or("bridge");
        let attachable = desired
            .attributes
            .get("attachable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let labels = self.labels(&action.address, &desired.hash());
        let response = client
            .send_raw(api::create_network_of(
                name, driver, internal, attachable, &labels,
            ))
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
        while let Some((container, aliases)) = detached.first() {
            client
                .send(api::connect_network(name, container, aliases))
                .await
                .map_err(from_client)?;
            detached.remove(0);
        }
        Ok(ApplyOutcome::Recorded(recorded_with(desired, id, &[])))
    }

    /// Detaches every container from network `name`, adding to `detached` each
    /// container's id with the aliases it had there, to attach it again to the network
    /// made anew (or, on a failure, to whichever network is there).
    async fn detach_all(
        &self,
        client: &DockerClient,
        name: &str,
        detached: &mut Vec<Detached>,
    ) -> Result<(), ProviderError> {
        let response = client
            .send_raw(api::inspect_network(name))
            .await
            .map_err(from_client)?;
        if response.status == 404 {
            return Ok(());
        }
        let network = response.json().unwrap_or_default();
        let ids: Vec<String> = network["Containers"]
            .as_object()
            .map(|containers| {
                containers
                    .keys()
                    // An overlay lists its load balancer's endpoint on this node as
                    // `lb-<network>`: no container, it goes with the network.
                    .filter(|id| !id.starts_with("lb-"))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
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
            detached.push((id, aliases));
        }
        Ok(())
    }

    /// After a failed replace: attaches `detached` to the first of `candidates` that
    /// exists and is this stack's, as best it can.
    async fn reattach(
        &self,
        client: &DockerClient,
        candidates: &[&str],
        detached: &[Detached],
    ) -> Reattached {
        let mut network = None;
        for candidate in candidates {
            if let Ok(existing) = client.send_json(api::inspect_network(candidate)).await {
                if label(&existing, api::LABEL_STACK) == Some(self.stack.as_str()) {
                    network = Some(candidate.to_string());
                    break;
                }
            }
        }
        let mut outcome = Reattached {
            network: network.clone(),
            ..Reattached::default()
        };
        for (container, aliases) in detached {
            let Some(network) = &network else {
                outcome.missed.push((container.clone(), None));
                continue;
            };
            match client
                .send(api::connect_network(network, container, aliases))
                .await
            {
                Ok(_) => outcome.back.push(container.clone()),
                Err(error) => outcome
                    .missed
                    .push((container.clone(), Some(error.to_string()))),
            }
        }
        outcome
    }

    async fn remove_network(&self, client: &DockerClient, name: &str) -> Result<(), ProviderError> {
        let response = client
            .send_raw(api::remove_network(name))
            .await
            .map_err(from_client)?;
        if response.status == 404 {
            return Ok(());
        }
        if response.is_success() {
            return self.wait_until_gone(client, name).await;
        }
        Err(failed(
            format!(
                "cannot remove network `{name}`: {}",
                response.error_message()
            ),
            None,
        ))
    }

    /// Waits (bounded) until no network answers to `name`. A swarm's overlay goes from a
    /// node a moment after the manager removed it; a network made anew under its name
    /// meanwhile would be taken for it.
    async fn wait_until_gone(
        &self,
        client: &DockerClient,
        name: &str,
    ) -> Result<(), ProviderError> {
        let deadline = std::time::Instant::now() + NETWORK_GONE_TIMEOUT;
        loop {
            let response = client
                .send_raw(api::inspect_network(name))
                .await
                .map_err(from_client)?;
            if response.status == 404 {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(failed(
                    format!("network `{name}` is still there {NETWORK_GONE_TIMEOUT:?} after Docker accepted its removal"),
                    Some(format!("`docker network inspect {name}` shows what still holds it; run `stackctl apply` again once it is gone")),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// How long a removed network may still answer to its name.
const NETWORK_GONE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// What attaching the detached containers again after a failed replace did.
#[derive(Debug, Default)]
struct Reattached {
    /// The network they were attached to; `None` when neither is there (or ours).
    network: Option<String>,
    back: Vec<String>,
    /// Containers left detached, with the daemon's error when there was an attempt.
    missed: Vec<(String, Option<String>)>,
}

impl Reattached {
    /// One sentence for the error, naming every container by its short id.
    fn summary(&self) -> String {
        let short = |id: &str| id.chars().take(12).collect::<String>();
        let mut parts = Vec::new();
        if let Some(network) = &self.network {
            if !self.back.is_empty() {
                let back: Vec<String> = self.back.iter().map(|id| short(id)).collect();
                parts.push(format!(
                    "attached again to network `{network}`: {}",
                    back.join(", ")
                ));
            }
        }
        if !self.missed.is_empty() {
            let missed: Vec<String> = self
                .missed
                .iter()
                .map(|(id, error)| match error {
                    Some(error) => format!("{} ({error})", short(id)),
                    None => short(id),
                })
                .collect();
            let why = if self.network.is_none() {
                " (no network of the stack's to attach them to: the old one is removed, the new one not made)"
            } else {
                ""
            };
            parts.push(format!(
                "left detached until the next apply: {}{why}",
                missed.join(", ")
            ));
        }
        format!("containers detached for the replace: {}", parts.join("; "))
    }
}

/// `error` with `note` added to what it says (its kind is kept: an unreachable host
/// stays unreachable for the engine).
fn with_note(error: ProviderError, note: &str) -> ProviderError {
    match error {
        ProviderError::Unreachable { target, cause } => ProviderError::Unreachable {
            target,
            cause: format!("{cause} ({note})"),
        },
        ProviderError::ConnectionLost { target, cause } => ProviderError::ConnectionLost {
            target,
            cause: format!("{cause} ({note})"),
        },
        ProviderError::Credentials { message, hint } => ProviderError::Credentials {
            message: format!("{message} ({note})"),
            hint,
        },
        ProviderError::Failed {
            message,
            detail,
            hint,
        } => ProviderError::Failed {
            message: format!("{message} ({note})"),
            detail,
            hint,
        },
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

    #[test]
    fn a_failed_replace_names_the_containers_attached_again_and_those_left_detached() {
        let outcome = Reattached {
            network: Some("shop-backend".into()),
            back: vec!["0123456789abcdef".into()],
            missed: vec![("fedcba9876543210".into(), Some("no such container".into()))],
        };
        let error = with_note(
            failed("cannot create network `shop-backend`: boom", None),
            &outcome.summary(),
        );
        assert_eq!(
            error.to_string(),
            "cannot create network `shop-backend`: boom (containers detached for the replace: \
             attached again to network `shop-backend`: 0123456789ab; \
             left detached until the next apply: fedcba987654 (no such container))"
        );
        let nowhere = Reattached {
            network: None,
            back: Vec::new(),
            missed: vec![("0123456789abcdef".into(), None)],
        };
        assert_eq!(
            nowhere.summary(),
            "containers detached for the replace: left detached until the next apply: \
             0123456789ab (no network of the stack's to attach them to: the old one is removed, the new one not made)"
        );
        let unreachable = with_note(
            ProviderError::Unreachable {
                target: "local".into(),
                cause: "gone".into(),
            },
            "note",
        );
        assert!(matches!(
            unreachable,
            ProviderError::Unreachable { ref cause, .. } if cause == "gone (note)"
        ));
    }
}
