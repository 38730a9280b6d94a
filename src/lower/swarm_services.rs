//! Services on a swarm target: `swarm_service.<name>`, a Docker Swarm service instead of
//! a container. It is lowered from the same container attributes as on one host
//! (`services.rs` stays the one place that says what a service runs with), then turned
//! into what a service spec carries:
//!
//! - `container_name` becomes `service_name` (`<stack>-<name>`); services still reach
//!   each other by the service's name, an alias on each overlay network;
//! - `replicas`, `placement`, `endpoint_mode` and `update` are added, with their
//!   defaults written out so the plan shows what Swarm will do;
//! - a bind mount of a `[files]` entry becomes a Swarm config mounted at the same path
//!   (`configs`: path → the config's name, owner and mode) — or a Swarm secret
//!   (`secret_files`, the same with the content as a secret) when the content holds one —
//!   so every task has the file wherever it runs; the name ends with the content's
//!   digest, so a new content is a new object and the service rolls out to it;
//! - a service holding a named volume is pinned to one node (the first manager unless
//!   its constraints name one): a local volume lives on one node, and a task started
//!   elsewhere would find an empty one. It updates stop-first for the same reason. A
//!   built image and any other bind mount (a directory) pin it to the first manager too,
//!   where stackctl makes them;
//! - what a service spec cannot carry on Engine API 1.41 is left out here rather than
//!   shown and not done: `no_new_privileges`, `privileged` (validation refuses it) and
//!   the tmpfs options other than the size.

use std::collections::BTreeMap;

use stackctl_provider::{Address, ReplaceOrder, Resource, Value};

use super::{map, texts, Lowering};
use crate::config::derived::{binds_first_manager_path, files_entry_at};
use crate::config::parse::{file_mode, memory_bytes, Mount};
use crate::config::{FailureAction, ServiceConfig, SwarmTarget, UpdateOrder};

/// The kind of a service on a swarm target.
pub const SWARM_SERVICE: &str = "swarm_service";

/// Swarm's defaults for a rolling update, written out in the plan.
const DEFAULT_PARALLELISM: i64 = 1;
const DEFAULT_MONITOR_MILLISECONDS: i64 = 5_000;

/// Swarm's limit on a config's (and a secret's) name.
const OBJECT_NAME_LIMIT: usize = 64;

/// A mounted file's mode when its `[files]` entry sets none: readable by the task's user,
/// whoever it is, and by no one else's container (a config or secret is mounted into its
/// task's container alone); never writable. Docker's own default.
const DEFAULT_FILE_MODE: i64 = 0o444;

/// Attributes of a container that a swarm service does not have.
const NOT_ON_A_SWARM: &[&str] = &["container_name", "no_new_privileges", "privileged"];

impl Lowering<'_> {
    /// The swarm the services run on, when the target is one.
    pub(super) fn swarm(&self) -> Option<&SwarmTarget> {
        self.config
            .target
            .as_ref()
            .and_then(|target| target.swarm.as_ref())
    }

    /// The address of service `name`: `swarm_service.<name>` on a swarm, else
    /// `service.<name>`.
    pub(super) fn service_address(&self, name: &str) -> Address {
        if self.swarm().is_some() {
            Address::new(SWARM_SERVICE, name)
        } else {
            Address::new("service", name)
        }
    }

    /// Turns the container resource of service `name` into its swarm service.
    pub(super) fn swarm_service(
        &self,
        swarm: &SwarmTarget,
        name: &str,
        service: &ServiceConfig,
        container: Resource,
    ) -> Resource {
        let mut resource = Resource::new(Address::new(SWARM_SERVICE, name), &container.provider);
        resource.dependencies = container.dependencies.clone();
        // Swarm places tasks once, among the nodes it has then (it never moves a running
        // task to a node that joins later): the service waits for every node to have
        // joined with its labels, so that its placement sees them all.
        for node in swarm.managers.iter().chain(&swarm.workers) {
            resource = resource.depends_on(Address::new("swarm_node", node));
        }
        for (attribute, value) in &container.attributes {
            if NOT_ON_A_SWARM.contains(&attribute.as_str()) {
                continue;
            }
            let value = if attribute == "tmpfs" {
                tmpfs_sizes(value)
            } else {
                value.clone()
            };
            resource.attributes.insert(attribute.clone(), value);
        }
        let files = self.mounted_files(name, service);
        // The file reaches the task as a config or secret, not as a path of the node's host.
        if let Some(Value::List(mounts)) = resource.attributes.get_mut("volumes") {
            mounts.retain(|mount| {
                let target = mount
                    .as_map()
                    .and_then(|mount| mount.get("target"))
                    .and_then(Value::as_text);
                !target.is_some_and(|target| files.holds(target))
            });
        }
        // Only when there are some: a service without one keeps the hash it had.
        for (attribute, entries) in [
            ("configs", files.configs),
            ("secret_files", files.secret_files),
        ] {
            if !entries.is_empty() {
                resource
                    .attributes
                    .insert(attribute.to_string(), Value::Map(entries));
            }
        }
        let stateful = container
            .attributes
            .get("stateful")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let update = service.update.clone().unwrap_or_default();
        let order = match (stateful, update.order) {
            (true, _) => UpdateOrder::StopFirst,
            (false, Some(order)) => order,
            (false, None) => UpdateOrder::StartFirst,
        };
        let monitor = update
            .monitor
            .as_deref()
            .and_then(crate::config::parse::duration_milliseconds)
            .unwrap_or(DEFAULT_MONITOR_MILLISECONDS);
        resource = resource
            .with("service_name", format!("{}-{name}", self.stack))
            .with("replicas", i64::from(service.replicas.unwrap_or(1)))
            // What refresh counts: a task missing (killed, its node down) is drift.
            .with("running_replicas", i64::from(service.replicas.unwrap_or(1)))
            .with("placement", self.placement(swarm, service, stateful))
            .with(
                "endpoint_mode",
                service.endpoint_mode.unwrap_or_default().as_str(),
            )
            .with(
                "update",
                map([
                    (
                        "parallelism",
                        Value::Integer(update.parallelism.map_or(DEFAULT_PARALLELISM, i64::from)),
                    ),
                    ("order", Value::text(order.as_str())),
                    (
                        "failure_action",
                        Value::text(
                            update
                                .failure_action
                                .unwrap_or(FailureAction::Rollback)
                                .as_str(),
                        ),
                    ),
                    ("monitor_milliseconds", Value::Integer(monitor)),
                ]),
            );
        if let Some(Value::Map(backend)) = resource.attributes.get_mut("route_backend") {
            // The backend file lists task addresses, not a name: they must be on a network
            // the edge joins, whichever network sorts first.
            let edge_networks = self.edge_networks();
            if let Some(shared) = service
                .network_names()
                .into_iter()
                .find(|network| edge_networks.contains(network))
            {
                backend.insert(
                    "network".to_string(),
                    Value::text(format!("{}_{shared}", self.stack)),
                );
            }
            // The edge checks each task on the service's HTTP health path: a replica
            // that fails it gets no traffic, and `verify` reports it.
            if let Some(path) = service
                .health
                .as_ref()
                .and_then(|health| health.http.as_ref())
            {
                backend.insert("health_path".to_string(), Value::text(self.text(path)));
            }
        }
        // A routed service is switched through the edge: its successor (a new swarm
        // service) is ready before the old one goes. A stateful one is updated by Swarm,
        // stop-first, never two at once.
        resource.replace_order = if stateful {
            ReplaceOrder::DestroyBeforeCreate
        } else {
            ReplaceOrder::CreateBeforeDestroy
        };
        resource
    }

    /// `placement`: the constraints as written, and for a service holding a named volume
    /// a pin to the first manager when none names a node.
    fn placement(&self, swarm: &SwarmTarget, service: &ServiceConfig, stateful: bool) -> Value {
        let written = service.placement.clone().unwrap_or_default();
        let mut constraints: Vec<String> = written
            .constraints
            .iter()
            .map(|constraint| self.text(constraint))
            .collect();
        // A named volume, a bind-mounted host path and a built image exist on the first
        // manager only (stackctl makes them there): the tasks must run there too. A
        // `[files]` entry carried as a Swarm config or secret does not pin it.
        let first_manager_only =
            stateful || service.build.is_some() || binds_first_manager_path(self.config, service);
        if first_manager_only && !crate::config::placement::pins_to_one_node(&constraints) {
            if let Some(first_manager) = swarm.managers.first() {
                constraints.push(crate::config::placement::on_node(first_manager));
            }
        }
        let preferences: Vec<String> = written
            .preferences
            .iter()
            .map(|preference| preference.spread.clone())
            .collect();
        map([
            ("constraints", texts(&constraints)),
            ("spread", texts(&preferences)),
        ])
    }
}

/// A service's bind mounts of `[files]` entries on a swarm, by path in the task: the
/// plain ones as Swarm configs, the ones holding a secret as Swarm secrets.
#[derive(Default)]
struct MountedFiles {
    configs: BTreeMap<String, Value>,
    secret_files: BTreeMap<String, Value>,
}

impl MountedFiles {
    fn holds(&self, target: &str) -> bool {
        self.configs.contains_key(target) || self.secret_files.contains_key(target)
    }
}

impl Lowering<'_> {
    /// The service's bind mounts of `[files]` entries, as the Swarm objects that carry
    /// them: path in the task → `{ name, owner, mode }` for a config, and the same with
    /// `content` (the secret, for the apply to create it; state and plans see its digest)
    /// for a secret.
    fn mounted_files(&self, service_name: &str, service: &ServiceConfig) -> MountedFiles {
        let mut mounted = MountedFiles::default();
        for mount in service.volumes.iter().filter_map(|text| Mount::parse(text)) {
            let Some(file_name) = files_entry_at(self.config, &mount.source) else {
                continue;
            };
            let Some(file) = self.config.files.get(file_name) else {
                continue;
            };
            let mode = file
                .mode
                .as_deref()
                .and_then(file_mode)
                .unwrap_or(DEFAULT_FILE_MODE);
            let entry = |name: String| {
                BTreeMap::from([
                    ("name".to_string(), Value::text(name)),
                    (
                        "owner".to_string(),
                        Value::text(file.owner.as_deref().unwrap_or("0:0")),
                    ),
                    ("mode".to_string(), Value::text(format!("{mode:04o}"))),
                ])
            };
            match self.file_content(file) {
                // Named after the salted digest, as state records it: never a plain
                // digest of a secret, which a guess could be checked against.
                Value::Secret(secret) => {
                    let hex = secret.digest().strip_prefix("sha256:").unwrap_or("");
                    let mut entry =
                        entry(swarm_object_name(self.stack, service_name, file_name, hex));
                    entry.insert("content".to_string(), Value::Secret(secret));
                    mounted
                        .secret_files
                        .insert(mount.target.clone(), Value::Map(entry));
                }
                content => {
                    let digest =
                        stackctl_provider::sha256_hex(content.as_text().unwrap_or("").as_bytes());
                    let hex = digest.strip_prefix("sha256:").unwrap_or("");
                    let name = swarm_object_name(self.stack, service_name, file_name, hex);
                    mounted
                        .configs
                        .insert(mount.target.clone(), Value::Map(entry(name)));
                }
            }
        }
        mounted
    }
}

/// `<stack>_<service>_<file>_<8 hex>`: the Swarm config or secret carrying
/// `[files].<file>` into the tasks of `<service>`, named after the first 8 hex digits of
/// the content's digest (`hex`: the sha256 of a config's content, the salted digest of a
/// secret's), so a new content is a new object (Swarm's cannot change) and the provider
/// can tell which content a name stands for. Characters Swarm refuses become `-`, and the
/// part before the digest is cut to fit Swarm's 64.
pub(crate) fn swarm_object_name(stack: &str, service: &str, file: &str, hex: &str) -> String {
    let mut prefix: String = format!("{stack}_{service}_{file}")
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || "-_.".contains(character) {
                character
            } else {
                '-'
            }
        })
        .collect();
    prefix.truncate(OBJECT_NAME_LIMIT - 9);
    format!("{prefix}_{}", &hex[..hex.len().min(8)])
}

/// `/tmp` → its size in bytes: a service spec's tmpfs carries a size and nothing else
/// of the options (Engine API 1.41), so the plan shows only that. No size: 0 (unlimited,
/// as Swarm takes it).
fn tmpfs_sizes(value: &Value) -> Value {
    let Some(mounts) = value.as_map() else {
        return value.clone();
    };
    let sizes: BTreeMap<String, Value> = mounts
        .iter()
        .map(|(path, options)| {
            let size = options
                .as_text()
                .unwrap_or("")
                .split(',')
                .find_map(|option| option.strip_prefix("size="))
                .and_then(memory_bytes)
                .unwrap_or(0);
            (path.clone(), Value::Integer(size))
        })
        .collect();
    Value::Map(sizes)
}
