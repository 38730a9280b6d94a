//! Applying a `swarm_service.*` resource: create, update in place (Swarm's rolling update
//! with the service's `update` policy), delete; each waits until Swarm has done it.
//!
//! "Done" is read from the tasks, not assumed: an apply returns when as many tasks as
//! `replicas` run the service's current spec (a task with a health check runs only once
//! healthy: Swarm keeps it `starting` until then), and no task of an older spec is still
//! wanted, and a rolling update this apply started is `completed` (Swarm watches the
//! tasks for the policy's `monitor` after the last one, and may still roll back until
//! then: the old secrets and configs are removed only after it, and never those of the
//! previous spec, which a later rollback mounts). An update Swarm rolled back or paused fails with Swarm's own message and the
//! failed tasks' errors; so does a service whose tasks do not all run in the health
//! timeout (not placeable, image missing on a node, crashing).

use std::time::{Duration, Instant};

use serde_json::Value as Json;
use stackctl_provider::{
    Action, ActionKind, ApplyContext, ApplyOutcome, AttributeChange, ProviderError, Value,
};

use super::live::{BACKEND_SERVERS, LIVE_NAME, SERVICE_ID};
use super::requests;
use super::secrets::SecretFile;
use super::spec::{MountedObjectIds, SwarmServiceSpec, SwarmSpecError};
use super::swarm_objects::{mounted_by_previous_spec, SwarmObjectKind, WantedObject};
use crate::api::{CountedConnection, DockerClient};
use crate::attributes::{desired_of, recorded_with};
use crate::backend_file::BACKEND_FILE;
use crate::http::{Request, Response};
use crate::provider::DockerProvider;
use crate::provider_error::{failed, from_client};
use crate::swap::backend_servers_contents;

/// The least time between two reads of a service converging: a task changes state on
/// Swarm's scale of seconds, not the 100 ms a container's health probe uses.
const LEAST_POLL: Duration = Duration::from_millis(250);

/// How long a removed service's tasks may take to stop (beyond their grace period).
const REMOVAL_TIMEOUT: Duration = Duration::from_secs(60);

/// The states of an update that Swarm will not finish by itself.
const UPDATE_GAVE_UP: &[&str] = &[
    "paused",
    "rollback_started",
    "rollback_paused",
    "rollback_completed",
];

impl DockerProvider {
    pub(crate) async fn apply_swarm_service(
        &self,
        client: &DockerClient,
        action: &Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        let resource = action.address.to_string();
        let existing = self.swarm_services_of(client, &resource).await?;
        if action.kind == ActionKind::Delete {
            for service in &existing {
                self.remove_swarm_service(client, service).await?;
            }
            // Its tasks are gone: nothing mounts its secrets and configs any more.
            for kind in [SwarmObjectKind::Secret, SwarmObjectKind::Config] {
                self.remove_unused_swarm_objects(client, kind, &resource, &[])
                    .await?;
            }
            return Ok(ApplyOutcome::Deleted);
        }
        let desired = desired_of(action)?;
        let spec = SwarmServiceSpec::from_attributes(
            &self.stack,
            action.address.name(),
            &desired.attributes,
        )
        .map_err(|error| failed(format!("`{}`: {error}", action.address), None))?;
        let labels = self.labels(&action.address, &desired.hash());
        let address = action.address.to_string();
        let invalid = |error: SwarmSpecError| failed(format!("`{address}`: {error}"), None);
        // Secrets and configs first: the service's spec names them by id.
        let ids = self
            .ensure_mounted_objects(client, &address, &spec, context)
            .await?;
        // The one to keep: the recorded one if it is still there, else the newest.
        let recorded_id = action.prior.as_ref().and_then(|prior| prior.id.clone());
        let kept = existing
            .iter()
            .find(|service| service["ID"].as_str() == recorded_id.as_deref())
            .or_else(|| {
                existing
                    .iter()
                    .max_by_key(|service| service["CreatedAt"].as_str().unwrap_or("").to_string())
            })
            .cloned();
        // Decided from the service as the refresh read it, not as state recorded it: a
        // hand change state does not know of (another env, more tasks) would otherwise be
        // rolled back over tasks the edge sends requests to.
        let switch = spec.task.route_backend.is_some()
            && kept.is_some()
            && action.prior.as_ref().is_some_and(|prior| {
                let live = live_view(&prior.attributes, &action.changes);
                needs_new_service(&live, &desired.attributes)
            });
        if switch {
            return self
                .switch_swarm_service(client, action, context, (&spec, &ids), &labels, &existing)
                .await;
        }
        // An update Swarm gave up before this one is not this one's failure.
        let mut previous_update = None;
        let id = match &kept {
            Some(service) => {
                previous_update = service["UpdateStatus"]["StartedAt"]
                    .as_str()
                    .map(str::to_string);
                let id = service_id(service)?;
                let version = service["Version"]["Index"].as_u64().unwrap_or(0);
                // Swarm does not rename a service: a switched one keeps its suffixed name.
                let name = service["Spec"]["Name"]
                    .as_str()
                    .unwrap_or(&spec.service_name);
                let body = spec.body(name, &labels, &ids).map_err(invalid)?;
                client
                    .send(requests::update_service(&id, version, body))
                    .await
                    .map_err(|error| {
                        failed(
                            format!(
                                "`{address}`: Swarm refused the update: {}",
                                from_client(error)
                            ),
                            None,
                        )
                    })?;
                id
            }
            None => {
                let body = spec
                    .body(&spec.service_name, &labels, &ids)
                    .map_err(invalid)?;
                match self.create_swarm_service(client, &address, body).await {
                    Ok(id) => id,
                    Err(error) => {
                        self.forget_objects_of_refused_service(client, &address)
                            .await;
                        return Err(error);
                    }
                }
            }
        };
        // Others labelled as this resource (left by an interrupted switch) go.
        for service in existing
            .iter()
            .filter(|service| service["ID"].as_str() != Some(id.as_str()))
        {
            self.remove_swarm_service(client, service).await?;
        }
        let (service, tasks) = self
            .wait_converged(
                client,
                &address,
                &id,
                (spec.replicas, previous_update.as_deref()),
                context.health_timeout,
            )
            .await?;
        // A routed service's tasks may have moved (new addresses): the edge follows.
        let servers = match &spec.task.route_backend {
            Some(backend) => {
                let servers = task_urls(&tasks, &spec.task);
                let formats = self.edge_formats(&spec.task)?;
                self.switch_backend_servers(client, formats, backend, &servers, kept.is_some())
                    .await?;
                let written = backend_servers_contents(formats, backend, &servers);
                Some((servers, written))
            }
            None => None,
        };
        // The update is done (Swarm no longer monitors it): secrets and configs of earlier
        // contents are mounted by no task Swarm wants, and those of the previous spec stay
        // for a rollback.
        self.remove_unmounted_objects(client, &address, &spec, &service)
            .await?;
        Ok(record(desired, &service, servers))
    }

    /// Creates a service; returns its id.
    async fn create_swarm_service(
        &self,
        client: &DockerClient,
        address: &str,
        body: Json,
    ) -> Result<String, ProviderError> {
        let created = client
            .send_json(requests::create_service(body))
            .await
            .map_err(|error| {
                failed(
                    format!(
                        "`{address}`: Swarm refused the service: {}",
                        from_client(error)
                    ),
                    None,
                )
            })?;
        service_id(&created)
    }

    /// The zero-downtime switch of a routed service whose tasks change: its successor is a
    /// new swarm service (`<service_name>-<short hash>`) beside the old one; once all its
    /// tasks run (healthy), the backend file lists their addresses and Traefik is asked
    /// until it serves exactly those; then, after the service's `drain`, the old service
    /// is removed (its tasks get SIGTERM and their stop grace period). Should the new one
    /// not become ready, it is removed and the old one keeps serving.
    async fn switch_swarm_service(
        &self,
        client: &DockerClient,
        action: &Action,
        context: &ApplyContext,
        (spec, ids): (&SwarmServiceSpec, &MountedObjectIds),
        labels: &crate::api::Labels,
        existing: &[Json],
    ) -> Result<ApplyOutcome, ProviderError> {
        let desired = desired_of(action)?;
        let address = action.address.to_string();
        let formats = self.edge_formats(&spec.task)?;
        let Some(backend) = &spec.task.route_backend else {
            return Err(failed(format!("`{address}` has no route"), None));
        };
        // Never the name of one that exists: a repair of drift keeps the desired hash, so
        // the service serving now may carry its first name. A successor an interrupted
        // switch left goes with the old ones below.
        let taken: Vec<&str> = existing
            .iter()
            .filter_map(|service| service["Spec"]["Name"].as_str())
            .collect();
        let name = successor_name(&spec.service_name, &desired.hash(), &taken);
        let body = spec
            .body(&name, labels, ids)
            .map_err(|error| failed(format!("`{address}`: {error}"), None))?;
        let id = self.create_swarm_service(client, &address, body).await?;
        let ready = self
            .wait_converged(
                client,
                &address,
                &id,
                (spec.replicas, None),
                context.health_timeout,
            )
            .await;
        let (service, tasks) = match ready {
            Ok(ready) => ready,
            Err(error) => {
                let successor = serde_json::json!({ "ID": id });
                if let Err(cleanup) = self.remove_swarm_service(client, &successor).await {
                    tracing::warn!(%cleanup, "removing the successor that did not become ready failed");
                }
                return Err(error);
            }
        };
        let servers = task_urls(&tasks, &spec.task);
        self.switch_backend_servers(client, formats, backend, &servers, true)
            .await?;
        let written = backend_servers_contents(formats, backend, &servers);
        if !spec.task.drain.is_zero() {
            tokio::time::sleep(spec.task.drain).await;
        }
        for old in existing
            .iter()
            .filter(|service| service["Spec"]["Name"].as_str() != Some(name.as_str()))
        {
            self.remove_swarm_service(client, old).await?;
        }
        self.remove_unmounted_objects(client, &address, spec, &service)
            .await?;
        Ok(record(desired, &service, Some((servers, written))))
    }

    /// Makes the secrets and configs the service mounts that do not exist yet; returns
    /// their ids. A config's content is the recorded `[files]` resource's (see
    /// [`super::mounted_files`]).
    async fn ensure_mounted_objects(
        &self,
        client: &DockerClient,
        address: &str,
        spec: &SwarmServiceSpec,
        context: &ApplyContext,
    ) -> Result<MountedObjectIds, ProviderError> {
        let (secrets, configs): (Vec<WantedObject>, Vec<WantedObject>) = {
            let recorded = context
                .recorded
                .read()
                .map_err(|_| failed("the run's recorded state is unreadable", None))?;
            (
                spec.secrets
                    .iter()
                    .map(SecretFile::wanted)
                    .chain(spec.secret_files.iter().map(|file| file.wanted(&recorded)))
                    .collect(),
                spec.configs
                    .iter()
                    .map(|config| config.wanted(&recorded))
                    .collect(),
            )
        };
        Ok(MountedObjectIds {
            secrets: self
                .ensure_swarm_objects(client, SwarmObjectKind::Secret, address, &secrets)
                .await?,
            configs: self
                .ensure_swarm_objects(client, SwarmObjectKind::Config, address, &configs)
                .await?,
        })
    }

    /// Removes the resource's secrets and configs that neither the service's spec nor
    /// the live `service`'s previous spec (Swarm's rollback target) mounts.
    async fn remove_unmounted_objects(
        &self,
        client: &DockerClient,
        address: &str,
        spec: &SwarmServiceSpec,
        service: &Json,
    ) -> Result<(), ProviderError> {
        let previous_secrets = mounted_by_previous_spec(service, SwarmObjectKind::Secret);
        let secrets: Vec<&str> = spec
            .secrets
            .iter()
            .map(|file| file.name.as_str())
            .chain(spec.secret_files.iter().map(|file| file.name.as_str()))
            .chain(previous_secrets.iter().map(String::as_str))
            .collect();
        self.remove_unused_swarm_objects(client, SwarmObjectKind::Secret, address, &secrets)
            .await?;
        let previous_configs = mounted_by_previous_spec(service, SwarmObjectKind::Config);
        let configs: Vec<&str> = spec
            .configs
            .iter()
            .map(|file| file.name.as_str())
            .chain(previous_configs.iter().map(String::as_str))
            .collect();
        self.remove_unused_swarm_objects(client, SwarmObjectKind::Config, address, &configs)
            .await
    }

    /// The swarm services labelled as `resource` of this stack.
    async fn swarm_services_of(
        &self,
        client: &DockerClient,
        resource: &str,
    ) -> Result<Vec<Json>, ProviderError> {
        let listed = client
            .send_json(requests::list_services_of(&self.stack, resource))
            .await
            .map_err(from_client)?;
        Ok(listed.as_array().cloned().unwrap_or_default())
    }

    /// Removes a service and waits until its tasks are gone (each stopped in its grace
    /// period) and, on the first manager, their containers too, so that what it used (a
    /// network, a volume) may go next: the manager forgets a task before the node has
    /// removed its container, and a volume a container still holds cannot be removed.
    pub(crate) async fn remove_swarm_service(
        &self,
        client: &DockerClient,
        service: &Json,
    ) -> Result<(), ProviderError> {
        let id = service_id(service)?;
        let response = client
            .send_raw(requests::remove_service(&id))
            .await
            .map_err(from_client)?;
        if !response.is_success() && response.status != 404 {
            return Err(failed(
                format!(
                    "cannot remove swarm service `{id}`: {}",
                    response.error_message()
                ),
                None,
            ));
        }
        let grace = service["Spec"]["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"]
            .as_u64()
            .map(Duration::from_nanos)
            .unwrap_or(Duration::from_secs(10))
            // Read from the live service: a grace period set by hand must not make this
            // wait unbounded.
            .min(Duration::from_secs(600));
        let deadline = Instant::now() + grace + REMOVAL_TIMEOUT;
        let mut connection = None;
        loop {
            // Every task, matched here: a filter naming a removed service is refused.
            let mut answers = poll(
                client,
                &mut connection,
                &[
                    requests::list_all_tasks(),
                    requests::list_task_containers(&id),
                ],
            )
            .await?
            .into_iter();
            let mut listed = |path: &str| -> Result<Vec<Json>, ProviderError> {
                let answer = answers
                    .next()
                    .ok_or_else(|| failed("the daemon sent no answer", None))?;
                let body = crate::api::check("GET", path, answer)
                    .map_err(from_client)?
                    .json()
                    .map_err(|error| failed(error.to_string(), None))?;
                Ok(body.as_array().cloned().unwrap_or_default())
            };
            let tasks = listed("/tasks")?;
            let containers = listed("/containers/json")?;
            let remaining = tasks
                .iter()
                .filter(|task| task["ServiceID"].as_str() == Some(id.as_str()))
                .count();
            if remaining == 0 && containers.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(failed(
                    format!(
                        "swarm service `{id}` was removed but its tasks (or their containers on the first manager) are still there after {:?}",
                        grace + REMOVAL_TIMEOUT
                    ),
                    None,
                ));
            }
            tokio::time::sleep(LEAST_POLL.max(self.options.poll_interval)).await;
        }
    }

    /// Waits until `replicas` tasks run the service's current spec and no task of an
    /// older one is wanted; returns the service and its tasks as last read.
    async fn wait_converged(
        &self,
        client: &DockerClient,
        address: &str,
        id: &str,
        (replicas, previous_update): (i64, Option<&str>),
        timeout: Duration,
    ) -> Result<(Json, Vec<Json>), ProviderError> {
        let deadline = Instant::now() + timeout;
        let ids = [id.to_string()];
        let mut connection = None;
        loop {
            let answers = poll(
                client,
                &mut connection,
                &[requests::inspect_service(id), requests::list_tasks_of(&ids)],
            )
            .await?;
            let mut parsed = Vec::new();
            for answer in answers {
                let answer = crate::api::check("GET", "/services", answer).map_err(from_client)?;
                parsed.push(
                    answer
                        .json()
                        .map_err(|error| failed(error.to_string(), None))?,
                );
            }
            let tasks: Vec<Json> = parsed[1].as_array().cloned().unwrap_or_default();
            let service = parsed.swap_remove(0);
            let convergence = convergence(&service, &tasks, replicas, previous_update);
            match convergence {
                Convergence::Done => return Ok((service, tasks)),
                Convergence::GaveUp(why) => {
                    return Err(ProviderError::Failed {
                        message: format!("`{address}`: Swarm gave the update up: {why}"),
                        detail: task_errors(&tasks),
                        hint: Some("`docker service ps --no-trunc <service>` on a manager shows each task's error".into()),
                    })
                }
                Convergence::Waiting(what) if Instant::now() >= deadline => {
                    return Err(ProviderError::Failed {
                        message: format!("`{address}`: not ready after {timeout:?}: {what}"),
                        detail: task_errors(&tasks),
                        hint: Some("`docker service ps --no-trunc <service>` on a manager shows where each task is and why".into()),
                    })
                }
                Convergence::Waiting(_) => {}
            }
            tokio::time::sleep(LEAST_POLL.max(self.options.poll_interval)).await;
        }
    }
}

/// A swarm service's id, as the daemon sent it; without one, no request can name it.
fn service_id(service: &Json) -> Result<String, ProviderError> {
    service["ID"]
        .as_str()
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or_else(|| failed("the daemon described a swarm service without an id", None))
}

/// What state records: the desired attributes, the service's id and live name, and for
/// a routed service the servers the edge was given and the backend file written for them.
fn record(
    desired: &stackctl_provider::Resource,
    service: &Json,
    routed: Option<(Vec<String>, String)>,
) -> ApplyOutcome {
    let id = service["ID"].as_str().unwrap_or("").to_string();
    let mut extra = vec![
        (SERVICE_ID, Value::text(id.clone())),
        (
            LIVE_NAME,
            Value::text(service["Spec"]["Name"].as_str().unwrap_or("")),
        ),
    ];
    if let Some((servers, written)) = routed {
        extra.push((
            BACKEND_SERVERS,
            Value::List(servers.into_iter().map(Value::Text).collect()),
        ));
        extra.push((BACKEND_FILE, Value::Text(written)));
    }
    ApplyOutcome::Recorded(recorded_with(desired, Some(id), &extra))
}

/// Attributes a routed service changes in place: more tasks (added, then given to the
/// edge), how a later update would roll, and what only stackctl reads. Anything else
/// replaces or removes tasks the edge still sends requests to (new task spec, placement,
/// fewer replicas), so it is a switch to a successor service.
const CHANGED_IN_PLACE: &[&str] = &[
    "replicas",
    "running_replicas",
    "update",
    "route_backend",
    "drain_milliseconds",
    "security_reason",
    BACKEND_SERVERS,
    BACKEND_FILE,
    SERVICE_ID,
    LIVE_NAME,
    super::live::TASKS,
];

/// Pure: the service's attributes as the plan saw it live: what state recorded, with
/// each planned change's "before" over it (the planner puts there what the refresh read
/// wherever the live service drifted from state).
pub fn live_view(
    recorded: &stackctl_provider::Attributes,
    changes: &[AttributeChange],
) -> stackctl_provider::Attributes {
    let mut live = recorded.clone();
    for change in changes {
        match &change.before {
            Some(value) => {
                live.insert(change.attribute.clone(), value.clone());
            }
            None => {
                live.remove(&change.attribute);
            }
        }
    }
    live
}

/// Pure: whether going from `live` (see [`live_view`]) to `desired` removes or replaces
/// tasks of a routed service (a new task spec, another placement, fewer replicas).
pub fn needs_new_service(
    live: &stackctl_provider::Attributes,
    desired: &stackctl_provider::Attributes,
) -> bool {
    let relevant = |attributes: &stackctl_provider::Attributes| {
        attributes
            .iter()
            .filter(|(name, _)| !CHANGED_IN_PLACE.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let replicas = |attributes: &stackctl_provider::Attributes| {
        attributes
            .get("replicas")
            .and_then(Value::as_integer)
            .unwrap_or(1)
    };
    relevant(live) != relevant(desired) || replicas(desired) < replicas(live)
}

/// `shop-web` → `shop-web-1a2b3c4d`: the successor's name, from the desired hash; the
/// next 8 digits (and so on) when a service of the swarm is already `taken` that name.
pub fn successor_name(service_name: &str, hash: &str, taken: &[&str]) -> String {
    let digest = hash.strip_prefix("sha256:").unwrap_or(hash);
    let candidates: Vec<String> = digest
        .as_bytes()
        .chunks(8)
        .map(|chunk| format!("{service_name}-{}", String::from_utf8_lossy(chunk)))
        .collect();
    candidates
        .iter()
        .find(|candidate| !taken.contains(&candidate.as_str()))
        .or(candidates.first())
        .cloned()
        .unwrap_or_else(|| service_name.to_string())
}

/// The URLs the edge sends a routed service's traffic to: each running task's address
/// on the network the edge shares with it (lowering names it in `route_backend`), at its
/// port.
pub fn task_urls(tasks: &[Json], task: &crate::spec::ServiceSpec) -> Vec<String> {
    let shared = task
        .route_backend
        .as_ref()
        .and_then(|backend| backend.network.as_ref());
    let Some(network) = shared.or_else(|| task.first_network().map(|(network, _)| network)) else {
        return Vec::new();
    };
    let port = task.port.unwrap_or(80);
    let mut urls: Vec<String> = tasks
        .iter()
        .filter(|task| task["DesiredState"] == "running" && task["Status"]["State"] == "running")
        .filter_map(|task| task_address(task, network))
        .map(|address| format!("http://{address}:{port}"))
        .collect();
    urls.sort();
    urls
}

/// A task's IPv4 address on `network` (by name), from its `NetworksAttachments`.
pub fn task_address(task: &Json, network: &str) -> Option<String> {
    task["NetworksAttachments"]
        .as_array()?
        .iter()
        .find(|attachment| attachment["Network"]["Spec"]["Name"].as_str() == Some(network))?
        ["Addresses"]
        .as_array()?
        .iter()
        .filter_map(Json::as_str)
        .filter_map(|cidr| cidr.split('/').next())
        .find(|address| address.parse::<std::net::Ipv4Addr>().is_ok())
        .map(str::to_string)
}

/// One poll of a wait: on the stream of the previous one (over SSH one channel for the
/// whole wait, not one per poll), or on a new one when the daemon closed it meanwhile.
async fn poll(
    client: &DockerClient,
    connection: &mut Option<CountedConnection>,
    batch: &[Request],
) -> Result<Vec<Response>, ProviderError> {
    if let Some(open) = connection.as_mut() {
        if let Ok(answers) = open.batch(batch).await {
            return Ok(answers);
        }
    }
    let mut fresh = client.connect().await.map_err(from_client)?;
    let answers = fresh.batch(batch).await.map_err(from_client)?;
    *connection = Some(fresh);
    Ok(answers)
}

/// Where a service stands against what was asked of it.
#[derive(Debug, PartialEq, Eq)]
pub enum Convergence {
    Done,
    /// Still on its way: what is missing.
    Waiting(String),
    /// Swarm stopped the update (rolled back or paused): its message.
    GaveUp(String),
}

/// Pure: whether `replicas` tasks run the service's current container spec, no task of
/// another spec is still wanted, and the update (if any) neither paused nor rolled back.
/// `previous_update` is when the update Swarm reported before this one started
/// (`UpdateStatus.StartedAt`): a status still from then says nothing of this one.
///
/// A rolling update this apply started (its `StartedAt` differs from `previous_update`)
/// is done only once Swarm calls it `completed`: after the last task Swarm still watches
/// the tasks for the policy's `monitor`, and may roll back to the previous spec until
/// then. (An update of nothing the tasks run starts no rolling update: Swarm then leaves
/// `UpdateStatus` empty, and the tasks alone say it is done.)
pub fn convergence(
    service: &Json,
    tasks: &[Json],
    replicas: i64,
    previous_update: Option<&str>,
) -> Convergence {
    let update = &service["UpdateStatus"];
    let this_update = update["StartedAt"].as_str() != previous_update || previous_update.is_none();
    let started_here = update["StartedAt"]
        .as_str()
        .is_some_and(|started| Some(started) != previous_update);
    if let Some(state) = update["State"].as_str().filter(|_| this_update) {
        if UPDATE_GAVE_UP.contains(&state) {
            return Convergence::GaveUp(format!(
                "{state}: {}",
                update["Message"].as_str().unwrap_or("no message")
            ));
        }
    }
    let current = &service["Spec"]["TaskTemplate"]["ContainerSpec"];
    let wanted: Vec<&Json> = tasks
        .iter()
        .filter(|task| task["DesiredState"] == "running")
        .collect();
    let stale = wanted
        .iter()
        .filter(|task| &task["Spec"]["ContainerSpec"] != current)
        .count();
    let running = wanted
        .iter()
        .filter(|task| {
            &task["Spec"]["ContainerSpec"] == current && task["Status"]["State"] == "running"
        })
        .count() as i64;
    let monitored = update["State"].as_str().unwrap_or("no state");
    if running >= replicas && stale == 0 {
        if started_here && monitored != "completed" {
            Convergence::Waiting(format!(
                "{running} of {replicas} tasks run the current spec; Swarm has not completed the update yet ({monitored}: it watches the tasks for the update's `monitor` and may still roll back)"
            ))
        } else {
            Convergence::Done
        }
    } else {
        Convergence::Waiting(format!(
            "{running} of {replicas} tasks run the current spec, {stale} of an older one still wanted"
        ))
    }
}

/// The errors of the service's failed tasks, one line each, for a failure's detail.
fn task_errors(tasks: &[Json]) -> Option<String> {
    let lines: Vec<String> = tasks
        .iter()
        .filter_map(|task| {
            let error = task["Status"]["Err"]
                .as_str()
                .filter(|error| !error.is_empty())?;
            Some(format!(
                "task {} (slot {}): {} — {}",
                task["ID"].as_str().unwrap_or("?"),
                task["Slot"].as_i64().unwrap_or(0),
                task["Status"]["State"].as_str().unwrap_or("?"),
                error
            ))
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service(image: &str, update_state: Option<&str>) -> Json {
        let mut service =
            json!({ "Spec": { "TaskTemplate": { "ContainerSpec": { "Image": image } } } });
        if let Some(state) = update_state {
            service["UpdateStatus"] = json!({ "State": state, "Message": "update rolled back due to failure or early termination of task x" });
        }
        service
    }

    fn task(image: &str, state: &str, desired: &str) -> Json {
        json!({
            "Spec": { "ContainerSpec": { "Image": image } },
            "DesiredState": desired,
            "Status": { "State": state },
        })
    }

    #[test]
    fn a_service_is_done_when_its_replicas_run_the_current_spec_and_no_older_one_is_wanted() {
        let current = service("web:2", Some("updating"));
        let during = [
            task("web:2", "running", "running"),
            task("web:1", "running", "running"),
        ];
        assert_eq!(
            convergence(&current, &during, 1, None),
            Convergence::Waiting(
                "1 of 1 tasks run the current spec, 1 of an older one still wanted".into()
            )
        );
        let starting = [
            task("web:2", "starting", "running"),
            task("web:1", "shutdown", "shutdown"),
        ];
        assert!(matches!(
            convergence(&current, &starting, 1, None),
            Convergence::Waiting(_)
        ));
        let done = [
            task("web:2", "running", "running"),
            task("web:1", "shutdown", "shutdown"),
        ];
        assert_eq!(convergence(&current, &done, 1, None), Convergence::Done);
    }

    #[test]
    fn a_rolled_back_update_is_given_up_with_swarms_message() {
        let rolled_back = service("web:2", Some("rollback_completed"));
        let Convergence::GaveUp(why) = convergence(&rolled_back, &[], 1, None) else {
            panic!("not given up");
        };
        assert!(
            why.starts_with("rollback_completed: update rolled back"),
            "{why}"
        );
        // The same status, from an update before this one: not this update's failure.
        let mut earlier = rolled_back.clone();
        earlier["UpdateStatus"]["StartedAt"] = json!("2026-11-30T07:00:00Z");
        assert!(matches!(
            convergence(&earlier, &[], 1, Some("2026-11-30T07:00:00Z")),
            Convergence::Waiting(_)
        ));
    }

    #[test]
    fn a_rolling_update_this_apply_started_is_done_only_once_swarm_completes_it() {
        let tasks = [task("web:2", "running", "running")];
        let with_status = |state: &str, started: &str| {
            let mut updated = service("web:2", Some(state));
            updated["UpdateStatus"]["StartedAt"] = json!(started);
            updated
        };
        let before = Some("2026-11-30T07:00:00Z");
        // Every task runs the new spec, but Swarm still monitors them: it may roll back.
        let Convergence::Waiting(why) = convergence(
            &with_status("updating", "2026-11-30T08:00:00Z"),
            &tasks,
            1,
            before,
        ) else {
            panic!("done while Swarm still monitors the update");
        };
        assert!(why.contains("updating"), "{why}");
        // A first update of a service that never had one is this apply's too.
        assert!(matches!(
            convergence(
                &with_status("updating", "2026-11-30T08:00:00Z"),
                &tasks,
                1,
                None
            ),
            Convergence::Waiting(_)
        ));
        assert_eq!(
            convergence(
                &with_status("completed", "2026-11-30T08:00:00Z"),
                &tasks,
                1,
                before
            ),
            Convergence::Done
        );
        // Rolled back or paused while monitored: the apply fails with Swarm's message.
        for state in ["rollback_started", "rollback_completed", "paused"] {
            let Convergence::GaveUp(why) = convergence(
                &with_status(state, "2026-11-30T08:00:00Z"),
                &tasks,
                1,
                before,
            ) else {
                panic!("{state} not given up");
            };
            assert!(why.starts_with(state), "{why}");
        }
        // No rolling update started (nothing the tasks run changed): the status is the
        // earlier update's, or none; the tasks decide.
        assert_eq!(
            convergence(
                &with_status("updating", "2026-11-30T07:00:00Z"),
                &tasks,
                1,
                before
            ),
            Convergence::Done
        );
        assert_eq!(
            convergence(&service("web:2", None), &tasks, 1, before),
            Convergence::Done
        );
    }

    /// One planned change of `attribute`, `before` as the refresh read it live.
    fn change(attribute: &str, before: Value, after: Value) -> AttributeChange {
        AttributeChange {
            attribute: attribute.to_string(),
            before: Some(before),
            after: Some(after),
            forces_replace: false,
            sensitive: false,
        }
    }

    #[test]
    fn only_a_change_of_what_the_tasks_run_makes_a_routed_service_switch() {
        let prior = super::super::spec::tests::web_attributes();
        let mut scaled = prior.clone();
        scaled.insert("replicas".into(), Value::Integer(5));
        scaled.insert("running_replicas".into(), Value::Integer(5));
        assert!(
            !needs_new_service(&prior, &scaled),
            "more tasks: added in place"
        );
        // Fewer tasks: Swarm would stop some the edge still sends requests to.
        assert!(needs_new_service(&scaled, &prior));
        let mut moved = prior.clone();
        moved.insert("placement".into(), Value::Map(Default::default()));
        assert!(
            needs_new_service(&prior, &moved),
            "tasks that move get new addresses"
        );
        let mut changed = prior.clone();
        changed.insert("image".into(), Value::text("web:2"));
        assert!(needs_new_service(&prior, &changed));
        let mut rolled_otherwise = prior.clone();
        rolled_otherwise.insert("update".into(), Value::Map(Default::default()));
        assert!(!needs_new_service(&prior, &rolled_otherwise));
    }

    #[test]
    fn a_hand_change_read_live_is_a_switch_though_state_never_saw_it() {
        // stack.toml and state agree: only the refresh saw the hand change, and the plan
        // carries it as the "before" of its changes.
        let recorded = super::super::spec::tests::web_attributes();
        let desired = recorded.clone();
        assert!(!needs_new_service(&live_view(&recorded, &[]), &desired));
        // `docker service update --env-add MODE=slow`: rolling back would replace tasks
        // the edge sends requests to.
        let mut hand_env = recorded["env"].as_map().unwrap().clone();
        hand_env.insert("MODE".into(), Value::text("slow"));
        let env_changed = [change("env", Value::Map(hand_env), recorded["env"].clone())];
        assert!(needs_new_service(
            &live_view(&recorded, &env_changed),
            &desired
        ));
        // `docker service scale web=4`, stack.toml says 2: Swarm would stop two.
        let scaled = [change(
            "replicas",
            Value::Integer(4),
            recorded["replicas"].clone(),
        )];
        assert!(needs_new_service(&live_view(&recorded, &scaled), &desired));
        // A task missing, the backend file edited, a task moved: only the edge follows.
        let edge_only = [
            change("running_replicas", Value::Integer(1), Value::Integer(2)),
            change(BACKEND_FILE, Value::text("edited"), Value::text("written")),
            change(
                BACKEND_SERVERS,
                Value::List(vec![Value::text("http://10.0.1.5:8080")]),
                Value::List(vec![Value::text("http://10.0.1.7:8080")]),
            ),
        ];
        assert!(!needs_new_service(
            &live_view(&recorded, &edge_only),
            &desired
        ));
        // An attribute the live service lacks (`before` absent) is gone from its view.
        let unset = [AttributeChange {
            attribute: "user".into(),
            before: None,
            after: Some(Value::text("10001")),
            forces_replace: false,
            sensitive: false,
        }];
        assert!(!live_view(&recorded, &unset).contains_key("user"));
        assert!(needs_new_service(&live_view(&recorded, &unset), &desired));
    }

    #[test]
    fn a_successor_never_takes_the_name_of_a_service_that_exists() {
        let hash = "sha256:1a2b3c4d5e6f7a8b9c0d";
        assert_eq!(successor_name("shop-web", hash, &[]), "shop-web-1a2b3c4d");
        // A repair of drift: the desired hash is the one the serving service was named by.
        assert_eq!(
            successor_name("shop-web", hash, &["shop-web-1a2b3c4d"]),
            "shop-web-5e6f7a8b"
        );
        assert_eq!(
            successor_name(
                "shop-web",
                hash,
                &["shop-web-1a2b3c4d", "shop-web-5e6f7a8b"]
            ),
            "shop-web-9c0d"
        );
    }

    #[test]
    fn the_edges_servers_are_the_running_tasks_addresses_on_the_first_network() {
        let attributes = super::super::spec::tests::web_attributes();
        let spec = SwarmServiceSpec::from_attributes("shop", "web", &attributes).unwrap();
        let task = |address: &str, state: &str| {
            json!({
                "DesiredState": "running",
                "Status": { "State": state },
                "NetworksAttachments": [
                    { "Network": { "Spec": { "Name": "ingress" } }, "Addresses": ["10.255.0.9/16"] },
                    { "Network": { "Spec": { "Name": "shop_backend" } }, "Addresses": [address] },
                ],
            })
        };
        let tasks = [
            task("10.0.1.7/24", "running"),
            task("10.0.1.5/24", "running"),
            task("10.0.1.9/24", "starting"),
        ];
        assert_eq!(
            task_urls(&tasks, &spec.task),
            ["http://10.0.1.5:8080", "http://10.0.1.7:8080"]
        );
    }
}
