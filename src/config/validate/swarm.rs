//! `[target] swarm`: its nodes are droplets of this stack, each named once, at least one
//! of them a manager; labels are for listed nodes only; an even number of managers is
//! legal but cannot survive losing half of them, so it is a warning.

use std::collections::BTreeMap;

use super::super::diagnostic::Diagnostic;
use super::super::document::{child_path, index_path};
use super::super::placement::NODE_NAME_LABEL;
use super::super::types::{DropletConfig, SwarmTarget};
use super::Checks;

impl Checks<'_> {
    pub(super) fn swarm(
        &mut self,
        swarm: &SwarmTarget,
        droplets: &BTreeMap<String, DropletConfig>,
    ) {
        let base = "target.swarm";
        if swarm.managers.is_empty() {
            self.error(
                "missing-manager",
                &child_path(base, "managers"),
                "the swarm has no manager: a swarm is formed on its first manager".into(),
                "at least one node, e.g. `managers = [\"web-1\"]`",
            );
        }
        let mut seen: BTreeMap<&str, String> = BTreeMap::new();
        for (role, nodes) in [("managers", &swarm.managers), ("workers", &swarm.workers)] {
            for (index, node) in nodes.iter().enumerate() {
                let path = index_path(&child_path(base, role), index);
                self.reference(&path, "droplet", node, droplets);
                if let Some(first) = seen.get(node.as_str()) {
                    self.error(
                        "duplicate-node",
                        &path,
                        format!("node `{node}` is listed twice in the swarm (first as `{first}`)"),
                        "each node once, either as a manager or as a worker",
                    );
                } else {
                    seen.insert(node, path.clone());
                }
            }
        }
        for (node, labels) in &swarm.labels {
            if labels.contains_key(NODE_NAME_LABEL) {
                self.error(
                    "reserved-label",
                    &child_path(&child_path(&child_path(base, "labels"), node), NODE_NAME_LABEL),
                    format!("the node label `{NODE_NAME_LABEL}` is stackctl's own: every node carries its name from stack.toml there"),
                    "another label key, e.g. `zone`",
                );
            }
            if !seen.contains_key(node.as_str()) {
                let mut listed: Vec<&str> = seen.keys().copied().collect();
                listed.sort_unstable();
                self.error(
                    "dangling-reference",
                    &child_path(&child_path(base, "labels"), node),
                    format!("`target.swarm.labels` names node `{node}`, which is not in the swarm"),
                    &format!(
                        "one of the swarm's nodes: {}",
                        listed
                            .iter()
                            .map(|name| format!("`{name}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        let managers = swarm.managers.len();
        if managers > 0 && managers.is_multiple_of(2) {
            self.found.push(
                Diagnostic::warning(
                    "even-manager-count",
                    format!(
                        "the swarm has {managers} managers: it keeps working only while a majority of them is up, so {managers} survive no more failures than {}",
                        managers - 1
                    ),
                )
                .at(self.map.value(&child_path(base, "managers")))
                .expected("an odd number of managers (1, 3 or 5)")
                .hint(format!(
                    "make one manager a worker, or add a manager: {} or {} managers",
                    managers - 1,
                    managers + 1
                )),
            );
        }
    }
}
