//! A service's lifecycle: create (connect, start), update in place, replace, delete.
//!
//! How a service is replaced depends on what it is: a routed one swaps with zero
//! downtime (`swap.rs`); a stateful one (a named volume) loses its old container first,
//! so two processes never share the data directory; any other starts beside the old one
//! under a temporary name, becomes ready (`health.rs`), and takes the name from the old
//! one. A container that never becomes ready is removed and the old one keeps serving.
//!
//! The container a replace leaves behind is retired beside the next actions
//! (`background.rs`): after the service's minimum `drain` (routed services only), it is
//! stopped with SIGTERM in its own grace period (`stop_grace_period`) — the app finishes
//! its requests in flight and exits, and Docker answers as soon as it does — then removed.
//!
//! A route added, changed or removed changes `route_backend` alone: the container stays and
//! only the edge's backend file follows (`backend_file.rs`).

use std::time::Duration;

use stackctl_provider::{
    Action, ActionKind, Address, ApplyContext, ApplyOutcome, ProviderError, ReplaceOrder, Resource,
    Value,
};

use crate::api::{self, DockerClient, Labels};
use crate::attributes::{desired_of, recorded_with};
use crate::backend_file::{recorded_backend, BACKEND_FILE};
use crate::labels::{container_names, label};
use crate::provider::DockerProvider;
use crate::provider_error::{failed, from_client};
use crate::spec::ServiceSpec;

/// The service attributes that a container cannot change in place: a change to any of
/// them replaces the container (the others are updated live). `route_backend` is not
/// one: which route reaches a service is the edge's business, and the backend file
/// follows it without touching the container.
/// Service attributes stack.toml may leave unset, meaning the container's default (the
/// image's command, entrypoint and health check; no user; no memory or CPU limit). Env,
/// networks, volumes, ports, restart and read-only root are always set by lowering, so a
/// hand-added value of those is already a difference from the recorded one.
pub(crate) const SERVICE_DEFAULT_WHEN_UNSET: &[&str] = &[
    "command",
    "entrypoint",
    "health",
    "user",
    "memory",
    "cpus",
    // Set by lowering since stacks are hardened; unset in what earlier versions recorded,
    // where a value shown is a hand change.
    "cap_drop",
    "cap_add",
    "no_new_privileges",
    "privileged",
    "pids_limit",
    "tmpfs",
];

pub(crate) const SERVICE_FORCES_REPLACE: &[&str] = &[
    "container_name",
    "image",
    // The registry digest of an image with `pull = "always"`: a moved tag.
    "image_digest",
    "command",
    "entrypoint",
    "env",
    "networks",
    "volumes",
    "user",
    "read_only",
    "tmpfs",
    // What the container may do: Docker cannot change these on a live container.
    "cap_drop",
    "cap_add",
    "no_new_privileges",
    "privileged",
    "health",
    "ports",
    "port",
    "stateful",
    // The container's `StopTimeout`, which Docker cannot change on a live container.
    "stop_grace_seconds",
    // The hash of the edge's static Traefik file: Traefik reads it only at start.
    "config_hash",
];

fn short_hash(hash: &str) -> String {
    hash.trim_start_matches("sha256:").chars().take(8).collect()
}

fn short_id(id: &str) -> String {
    id.chars().take(12).collect()
}

/// Stops a container in its own grace period (`stop_grace_period`: SIGTERM, then
/// SIGKILL once it has passed; Docker answers as soon as the app exits) and removes it.
async fn stop_and_remove(client: &DockerClient, id: &str) -> Result<(), ProviderError> {
    let _ = client
        .send_raw(api::stop_container_in_its_grace_period(id))
        .await;
    tracing::debug!(container = id, "stopped");
    let response = client
        .send_raw(api::remove_container(id))
        .await
        .map_err(from_client)?;
    if response.is_success() || response.status == 404 {
        tracing::debug!(container = id, "removed");
        Ok(())
    } else {
        Err(failed(
            format!("cannot remove container {id}: {}", response.error_message()),
            None,
        ))
    }
}

/// A container of this service found on the host.
#[derive(Clone, Debug)]
pub(crate) struct Existing {
    pub(crate) id: String,
    name: String,
}

impl DockerProvider {
    /// Every container labelled as this resource of this stack.
    pub(crate) async fn service_containers(
        &self,
        client: &DockerClient,
        address: &Address,
    ) -> Result<Vec<Existing>, ProviderError> {
        let list = client
            .send_json(api::list_containers(
                &self.stack,
                Some(&address.to_string()),
            ))
            .await
            .map_err(from_client)?;
        Ok(list
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|container| Existing {
                id: container["Id"].as_str().unwrap_or("").to_string(),
                name: container_names(container)
                    .into_iter()
                    .next()
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// Creates, connects and starts a container; returns its id.
    pub(crate) async fn create_container(
        &self,
        client: &DockerClient,
        address: &Address,
        spec: &ServiceSpec,
        labels: &Labels,
        name: &str,
    ) -> Result<String, ProviderError> {
        let body = spec
            .create_body(labels)
            .map_err(|message| failed(format!("`{address}`: {message}"), None))?;
        let mut response = client
            .send_raw(api::create_container(name, body.clone()))
            .await
            .map_err(from_client)?;
        if response.status == 409 {
            // The name is taken. A leftover of this very resource (a failed earlier run)
            // may go; anything else is someone's container and stays.
            let existing = client
                .send_json(api::inspect_container(name))
                .await
                .map_err(from_client)?;
            let ours = label(&existing["Config"], api::LABEL_STACK) == Some(self.stack.as_str())
                && label(&existing["Config"], api::LABEL_RESOURCE)
                    == Some(address.to_string().as_str());
            if !ours {
                return Err(ProviderError::Failed {
                    message: format!(
                        "a container named `{name}` exists and is not `{address}` of stack `{}`",
                        self.stack
                    ),
                    detail: None,
                    hint: Some("remove or rename that container, then apply again".into()),
                });
            }
            let id = existing["Id"].as_str().unwrap_or(name).to_string();
            client
                .send(api::remove_container(&id))
                .await
                .map_err(from_client)?;
            response = client
                .send_raw(api::create_container(name, body))
                .await
                .map_err(from_client)?;
        }
        if !response.is_success() {
            return Err(failed(
                format!(
                    "cannot create container `{name}` for `{address}`: {}",
                    response.error_message()
                ),
                None,
            ));
        }
        let id = response
            .json()
            .ok()
            .and_then(|json| json["Id"].as_str().map(str::to_string))
            .ok_or_else(|| failed("Docker did not return the new container's id", None))?;
        for (network, aliases) in spec.networks.iter().skip(1) {
            if let Err(error) = client
                .send(api::connect_network(network, &id, aliases))
                .await
            {
                let _ = client.send_raw(api::remove_container(&id)).await;
                return Err(failed(
                    format!("cannot connect `{name}` to network `{network}`: {error}"),
                    None,
                ));
            }
        }
        tracing::debug!(container = %name, "created");
        if let Err(error) = client.send(api::start_container(&id)).await {
            let evidence = self.failure_evidence(client, &id, None).await;
            let _ = client.send_raw(api::remove_container(&id)).await;
            return Err(failed(
                format!("cannot start `{name}`: {error}"),
                Some(evidence),
            ));
        }
        tracing::debug!(container = %name, "started");
        Ok(id)
    }

    /// Retires a container that a replace took the service from, beside the next actions
    /// (`background.rs`): after `drain` it is stopped in its own grace period — SIGTERM,
    /// so that the app finishes its requests in flight and exits — and removed.
    fn retire_in_background(&self, client: &DockerClient, container: Existing, drain: Duration) {
        let client = client.clone();
        self.background
            .spawn_retiring(container.id.clone(), async move {
                if !drain.is_zero() {
                    tokio::time::sleep(drain).await;
                }
                stop_and_remove(&client, &container.id).await
            });
    }

    pub(crate) async fn apply_service(
        &self,
        client: &DockerClient,
        action: &Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        let address = &action.address;
        let recorded_backend = recorded_backend(
            address,
            action.prior.as_ref().map(|prior| &prior.attributes),
        )?;
        if action.kind == ActionKind::Delete {
            for container in self.service_containers(client, address).await? {
                stop_and_remove(client, &container.id).await?;
            }
            self.remove_stale_backend_file(client, recorded_backend.as_ref(), None)
                .await?;
            return Ok(ApplyOutcome::Deleted);
        }
        let desired = desired_of(action)?;
        let spec = ServiceSpec::from_attributes(address.name(), &desired.attributes)
            .map_err(|message| failed(format!("`{address}`: {message}"), None))?;
        if spec.route_backend.is_some() {
            // Before any container is touched: a swap could not steer the edge.
            self.edge_formats(&spec)?;
        }
        let existing = self.service_containers(client, address).await?;

        if action.kind == ActionKind::Update {
            let forced_change = action.prior.as_ref().is_some_and(|prior| {
                SERVICE_FORCES_REPLACE
                    .iter()
                    .any(|name| prior.attributes.get(*name) != desired.attributes.get(*name))
            });
            let current = existing
                .iter()
                .find(|container| {
                    Some(&container.id) == action.prior.as_ref().and_then(|prior| prior.id.as_ref())
                })
                .or_else(|| {
                    existing
                        .iter()
                        .find(|container| Some(&container.id) == action.live_id.as_ref())
                })
                .or_else(|| existing.first());
            if let (Some(current), false) = (current, forced_change) {
                let outcome = self
                    .update_in_place(client, address, desired, &spec, current, context)
                    .await?;
                self.update_backend_file(client, recorded_backend.as_ref(), &spec, &current.name)
                    .await?;
                return Ok(outcome);
            }
        }
        let destroy_first = action.kind == ActionKind::ReplaceDestroyBeforeCreate
            || desired.replace_order == ReplaceOrder::DestroyBeforeCreate
            || spec.stateful;
        let labels = self.labels(address, &desired.hash());
        // A container that took the service's name by hand and was recorded or seen live as
        // this service (the plan's repair) goes too; other strangers are never touched.
        let mut old = existing.clone();
        for id in [
            action.live_id.as_ref(),
            action.prior.as_ref().and_then(|prior| prior.id.as_ref()),
        ]
        .into_iter()
        .flatten()
        {
            if !old.iter().any(|container| &container.id == id) {
                if let Ok(inspect) = client.send_json(api::inspect_container(id)).await {
                    let name = inspect["Name"]
                        .as_str()
                        .unwrap_or("")
                        .trim_start_matches('/')
                        .to_string();
                    if name == spec.container_name
                        || name.starts_with(&format!("{}-", spec.container_name))
                    {
                        old.push(Existing {
                            id: id.clone(),
                            name,
                        });
                    }
                }
            }
        }

        if destroy_first {
            for container in &old {
                stop_and_remove(client, &container.id).await?;
            }
            let id = self
                .create_container(client, address, &spec, &labels, &spec.container_name)
                .await?;
            if let Err(reason) = self.wait_ready(client, &id, context.health_timeout).await {
                let evidence = self
                    .failure_evidence(client, &id, reason.last_probe())
                    .await;
                return Err(failed(
                    format!("`{address}` did not become healthy: {reason}"),
                    Some(evidence),
                ));
            }
            self.switch_backend(client, &spec, &spec.container_name, !old.is_empty())
                .await?;
            self.remove_stale_backend_file(
                client,
                recorded_backend.as_ref(),
                spec.route_backend.as_ref(),
            )
            .await?;
            return Ok(self.record_service(desired, &id, &spec.container_name));
        }

        let routed = spec.route_backend.is_some();
        let name_taken = |name: &str| old.iter().any(|container| container.name == name);
        let mut new_name = if routed || name_taken(&spec.container_name) {
            format!("{}-{}", spec.container_name, short_hash(&desired.hash()))
        } else {
            spec.container_name.clone()
        };
        if name_taken(&new_name) {
            // The same hash again (a repair): keep both names distinct.
            let nonce = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_millis() % 100_000)
                .unwrap_or(0);
            new_name = format!("{new_name}-{nonce}");
        }
        let id = self
            .create_container(client, address, &spec, &labels, &new_name)
            .await?;
        if let Err(reason) = self.wait_ready(client, &id, context.health_timeout).await {
            let evidence = self
                .failure_evidence(client, &id, reason.last_probe())
                .await;
            // The old container was never touched and keeps serving.
            let _ = client.send_raw(api::remove_container(&id)).await;
            let kept = if old.is_empty() {
                String::new()
            } else {
                format!("; the previous container `{}` keeps serving", old[0].name)
            };
            return Err(failed(
                format!("`{address}`: the new container `{new_name}` did not become healthy: {reason}{kept}"),
                Some(evidence),
            ));
        }
        let mut drain = Duration::ZERO;
        if routed {
            // Returns once the edge serves the new container alone: from then on no new
            // request reaches the old ones, and what they still serve finishes in their
            // shutdown.
            self.switch_backend(client, &spec, &new_name, !old.is_empty())
                .await?;
            drain = spec.drain;
        }
        let mut final_name = new_name.clone();
        if !routed && new_name != spec.container_name {
            // The old container gives up the service's name first (renaming a running
            // container leaves it running), so the new one takes it now and the old one
            // stops beside the next actions instead of before them.
            for container in old
                .iter()
                .filter(|container| container.name == spec.container_name)
            {
                let retired = format!(
                    "{}-replaced-{}",
                    spec.container_name,
                    short_id(&container.id)
                );
                client
                    .send(api::rename_container(&container.id, &retired))
                    .await
                    .map_err(from_client)?;
            }
            client
                .send(api::rename_container(&id, &spec.container_name))
                .await
                .map_err(from_client)?;
            final_name = spec.container_name.clone();
        }
        for container in old {
            self.retire_in_background(client, container, drain);
        }
        // The route went (or its file moved) in the same change that replaced the container.
        self.remove_stale_backend_file(
            client,
            recorded_backend.as_ref(),
            spec.route_backend.as_ref(),
        )
        .await?;
        Ok(self.record_service(desired, &id, &final_name))
    }

    async fn update_in_place(
        &self,
        client: &DockerClient,
        address: &Address,
        desired: &Resource,
        spec: &ServiceSpec,
        current: &Existing,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        let nano = match &spec.cpus {
            Some(cpus) => Some(
                crate::spec::nano_cpus(cpus).map_err(|error| failed(error.to_string(), None))?,
            ),
            None => None,
        };
        client
            .send(api::update_container(
                &current.id,
                spec.memory,
                nano,
                spec.hardening.pids_limit,
                &spec.restart,
            ))
            .await
            .map_err(from_client)?;
        let inspect = client
            .send_json(api::inspect_container(&current.id))
            .await
            .map_err(from_client)?;
        if inspect["State"]["Running"].as_bool() != Some(true) {
            // A container stopped by hand: start it again and gate on health.
            client
                .send(api::start_container(&current.id))
                .await
                .map_err(from_client)?;
            if let Err(reason) = self
                .wait_ready(client, &current.id, context.health_timeout)
                .await
            {
                let evidence = self
                    .failure_evidence(client, &current.id, reason.last_probe())
                    .await;
                return Err(failed(
                    format!("`{address}` did not become healthy again: {reason}"),
                    Some(evidence),
                ));
            }
        }
        Ok(self.record_service(desired, &current.id, &current.name))
    }

    pub(crate) fn record_service(&self, desired: &Resource, id: &str, name: &str) -> ApplyOutcome {
        let mut computed = vec![
            ("container_id", Value::text(id)),
            ("container", Value::text(name)),
            ("running", Value::Bool(true)),
            ("state", Value::text("running")),
            ("label_hash", Value::text(desired.hash())),
        ];
        // What the edge's backend file says now, so that an edit by hand shows as drift.
        let expected = ServiceSpec::from_attributes(desired.address.name(), &desired.attributes)
            .ok()
            .and_then(|spec| self.expected_backend_file(&spec, name));
        if let Some(content) = expected {
            computed.push((BACKEND_FILE, Value::Text(content)));
        }
        ApplyOutcome::Recorded(recorded_with(desired, Some(id.to_string()), &computed))
    }
}
