//! `[target] swarm`: the swarm itself (`swarm.cluster`, formed on the first manager) and
//! one `swarm_node.<name>` per node, with its role, its labels and the state stackctl
//! keeps it in (taking tasks, and up). Each node waits for its droplet (it is reached
//! at the droplet's address) and for the swarm (it joins it).

use std::collections::BTreeMap;

use stackctl_provider::{Address, Resource, Value};

use super::{Lowering, SWARM};
use crate::config::placement::NODE_NAME_LABEL;
use crate::config::SwarmTarget;

/// The address of the swarm itself.
pub const CLUSTER: &str = "cluster";

impl Lowering<'_> {
    pub(super) fn swarm_cluster_and_nodes(&self, resources: &mut Vec<Resource>) {
        let Some(swarm) = self
            .config
            .target
            .as_ref()
            .and_then(|target| target.swarm.as_ref())
        else {
            return;
        };
        let Some(first_manager) = swarm.managers.first() else {
            return;
        };
        let cluster = Address::new("swarm", CLUSTER);
        resources.push(
            Resource::new(cluster.clone(), SWARM)
                .with("manager", first_manager.clone())
                .depends_on(Address::new("droplet", first_manager)),
        );
        for (name, role) in nodes(swarm) {
            let mut labels: BTreeMap<String, Value> = swarm
                .labels
                .get(name)
                .map(|labels| {
                    labels
                        .iter()
                        .map(|(key, value)| (key.clone(), Value::Text(self.text(value))))
                        .collect()
                })
                .unwrap_or_default();
            // stackctl's own pins (a service holding a volume stays on the first manager)
            // name nodes by this label, not by a host name that can change.
            labels.insert(NODE_NAME_LABEL.to_string(), Value::Text(name.clone()));
            resources.push(
                Resource::new(Address::new("swarm_node", name), SWARM)
                    .with("role", role)
                    .with("labels", Value::Map(labels))
                    // A node stackctl keeps takes tasks; `drain` is how it leaves.
                    .with("availability", "active")
                    // What the manager must report: a node that is `down` shows in the plan.
                    .with("status", "ready")
                    .depends_on(Address::new("droplet", name))
                    .depends_on(cluster.clone()),
            );
        }
    }
}

/// Every node of the swarm with its role, managers first.
fn nodes(swarm: &SwarmTarget) -> impl Iterator<Item = (&String, &'static str)> {
    swarm
        .managers
        .iter()
        .map(|name| (name, "manager"))
        .chain(swarm.workers.iter().map(|name| (name, "worker")))
}
