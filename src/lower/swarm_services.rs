//! Services on a swarm target: `swarm_service.<name>`, a Docker Swarm service instead of
//! a container. It is lowered from the same container attributes as on one host
//! (`services.rs` stays the one place that says what a service runs with), then turned
//! into what a service spec carries:
//!
//! - `container_name` becomes `service_name` (`<stack>-<name>`); services still reach
//!   each other by the service's name, an alias on each overlay network;
//! - `replicas`, `placement`, `endpoint_mode` and `update` are added, with their
//!   defaults written out so the plan shows what Swarm will do;
//! - a service holding a named volume is pinned to one node (the first manager unless
//!   its constraints name one): a local volume lives on one node, and a task started
//!   elsewhere would find an empty one. It updates stop-first for the same reason;
//! - what a service spec cannot carry on Engine API 1.41 is left out here rather than
//!   shown and not done: `no_new_privileges`, `privileged` (validation refuses it) and
//!   the tmpfs options other than the size.

use std::collections::BTreeMap;

use stackctl_provider::{Address, ReplaceOrder, Resource, Value};

use super::{map, texts, Lowering};
use crate::config::parse::memory_bytes;
use crate::config::{FailureAction, ServiceConfig, SwarmTarget, UpdateOrder};

/// The kind of a service on a swarm target.
pub const SWARM_SERVICE: &str = "swarm_service";

/// Swarm's defaults for a rolling update, written out in the plan.
const DEFAULT_PARALLELISM: i64 = 1;
const DEFAULT_MONITOR_MILLISECONDS: i64 = 5_000;

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
        // A named volume, a bind-mounted file and a built image exist on the first
        // manager only (stackctl makes them there): the tasks must run there too.
        let first_manager_only = stateful || service.build.is_some() || has_bind_mount(service);
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

/// Whether service mounts a path of the host (a `[files]` entry or a directory), which
/// exists on the node stackctl wrote it to and nowhere else.
pub(crate) fn has_bind_mount(service: &ServiceConfig) -> bool {
    service
        .volumes
        .iter()
        .filter_map(|text| crate::config::parse::Mount::parse(text))
        .any(|mount| mount.is_bind())
}
