//! What the Engine API says about a swarm, parsed (pure): a node's own view (`GET /info`)
//! and the manager's view of every node (`GET /nodes`, `GET /tasks`, `GET /services`).
//! Join tokens, which `GET /swarm` returns beside the swarm's id, are never kept here.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value as Json};
use stackctl_provider::{Attributes, Value};

/// A node's own answer to `GET /info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalView {
    /// `inactive`, `pending`, `active`, `error` or `locked`.
    pub state: String,
    /// Its node id, once it is in a swarm.
    pub node_id: Option<String>,
    /// Whether it is a manager of its swarm.
    pub manager: bool,
}

impl LocalView {
    pub fn parse(info: &Json) -> LocalView {
        let swarm = &info["Swarm"];
        LocalView {
            state: swarm["LocalNodeState"]
                .as_str()
                .unwrap_or("inactive")
                .to_string(),
            node_id: swarm["NodeID"]
                .as_str()
                .filter(|id| !id.is_empty())
                .map(str::to_string),
            manager: swarm["ControlAvailable"].as_bool().unwrap_or(false),
        }
    }

    pub fn in_swarm(&self) -> bool {
        self.state == "active"
    }
}

/// One node as the manager lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedNode {
    pub id: String,
    pub version: u64,
    pub hostname: String,
    /// The whole spec, as Docker wants it back on an update.
    pub spec: Json,
    /// `ready`, `down`, `unknown` or `disconnected`.
    pub status: String,
    /// The manager's last word on it (why it is down).
    pub message: String,
    pub address: String,
}

impl ManagedNode {
    pub fn parse(node: &Json) -> Option<ManagedNode> {
        Some(ManagedNode {
            id: node["ID"].as_str()?.to_string(),
            version: node["Version"]["Index"].as_u64().unwrap_or(0),
            hostname: node["Description"]["Hostname"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            spec: node["Spec"].clone(),
            status: node["Status"]["State"]
                .as_str()
                .unwrap_or("unknown")
                .to_string(),
            message: node["Status"]["Message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            address: node["Status"]["Addr"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        })
    }

    pub fn role(&self) -> &str {
        self.spec["Role"].as_str().unwrap_or("worker")
    }

    pub fn availability(&self) -> &str {
        self.spec["Availability"].as_str().unwrap_or("active")
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        self.spec["Labels"]
            .as_object()
            .map(|labels| {
                labels
                    .iter()
                    .map(|(key, value)| {
                        (key.clone(), value.as_str().unwrap_or_default().to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The node's attributes as read: its role, labels, availability and status, and the
    /// services that have tasks on it (`services`, read only: a delete shows what moves).
    pub fn attributes(&self, services: &BTreeSet<String>) -> Attributes {
        let mut attributes = Attributes::new();
        attributes.insert("role".into(), Value::text(self.role()));
        attributes.insert(
            "labels".into(),
            Value::Map(
                self.labels()
                    .into_iter()
                    .map(|(key, value)| (key, Value::Text(value)))
                    .collect(),
            ),
        );
        attributes.insert("availability".into(), Value::text(self.availability()));
        attributes.insert("status".into(), Value::text(self.status.clone()));
        attributes.insert(
            SERVICES_ATTRIBUTE.into(),
            Value::List(services.iter().cloned().map(Value::Text).collect()),
        );
        attributes
    }
}

/// The read-only attribute naming the services with tasks on a node.
pub const SERVICES_ATTRIBUTE: &str = "services";

/// Every node the manager lists.
pub fn parse_nodes(nodes: &Json) -> Vec<ManagedNode> {
    nodes
        .as_array()
        .map(|nodes| nodes.iter().filter_map(ManagedNode::parse).collect())
        .unwrap_or_default()
}

/// Service names by node id, from `GET /tasks` (desired running) and `GET /services`.
pub fn services_by_node(tasks: &Json, services: &Json) -> BTreeMap<String, BTreeSet<String>> {
    let names: BTreeMap<&str, &str> = services
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|service| Some((service["ID"].as_str()?, service["Spec"]["Name"].as_str()?)))
        .collect();
    let mut by_node: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for task in tasks.as_array().into_iter().flatten() {
        let (Some(node), Some(service)) = (task["NodeID"].as_str(), task["ServiceID"].as_str())
        else {
            continue;
        };
        let name = names.get(service).copied().unwrap_or(service);
        by_node
            .entry(node.to_string())
            .or_default()
            .insert(name.to_string());
    }
    by_node
}

/// Tasks still placed on a node that have not stopped: what a drain waits for.
pub fn unfinished_tasks(tasks: &Json) -> usize {
    const FINISHED: [&str; 6] = [
        "complete", "shutdown", "failed", "rejected", "orphaned", "remove",
    ];
    tasks
        .as_array()
        .into_iter()
        .flatten()
        .filter(|task| {
            let state = task["Status"]["State"].as_str().unwrap_or_default();
            !FINISHED.contains(&state)
        })
        .count()
}

/// The spec a node should have: `current` with stack.toml's role, labels and
/// availability (Docker replaces the whole spec, so its name and anything else stay).
pub fn desired_spec(
    current: &Json,
    role: &str,
    availability: &str,
    labels: &BTreeMap<String, String>,
) -> Json {
    let mut spec = if current.is_object() {
        current.clone()
    } else {
        json!({})
    };
    spec["Role"] = json!(role);
    spec["Availability"] = json!(availability);
    spec["Labels"] = json!(labels);
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> Json {
        json!({
            "ID": "n1",
            "Version": {"Index": 17},
            "Description": {"Hostname": "web-2"},
            "Spec": {"Name": "keep", "Role": "worker", "Availability": "active", "Labels": {"zone": "a"}},
            "Status": {"State": "down", "Message": "heartbeat failure", "Addr": "10.0.0.3"}
        })
    }

    #[test]
    fn a_node_is_read_with_its_status_and_the_services_it_runs() {
        let parsed = ManagedNode::parse(&node()).expect("a node");
        assert_eq!(parsed.version, 17);
        let services = BTreeSet::from(["api".to_string()]);
        let attributes = parsed.attributes(&services);
        assert_eq!(attributes["status"], Value::text("down"));
        assert_eq!(attributes["role"], Value::text("worker"));
        assert_eq!(
            attributes["labels"],
            Value::Map([("zone".to_string(), Value::text("a"))].into())
        );
        assert_eq!(
            attributes["services"],
            Value::List(vec![Value::text("api")])
        );
    }

    #[test]
    fn the_desired_spec_keeps_what_stack_toml_does_not_say() {
        let labels = BTreeMap::from([("zone".to_string(), "b".to_string())]);
        let spec = desired_spec(&node()["Spec"], "worker", "drain", &labels);
        assert_eq!(
            spec,
            json!({"Name": "keep", "Role": "worker", "Availability": "drain", "Labels": {"zone": "b"}})
        );
    }

    #[test]
    fn tasks_are_grouped_by_node_and_named_by_service() {
        let tasks = json!([
            {"NodeID": "n1", "ServiceID": "s1"},
            {"NodeID": "n1", "ServiceID": "s2"},
            {"NodeID": "n2", "ServiceID": "s1"},
        ]);
        let services = json!([
            {"ID": "s1", "Spec": {"Name": "shop_api"}},
            {"ID": "s2", "Spec": {"Name": "shop_web"}},
        ]);
        let grouped = services_by_node(&tasks, &services);
        assert_eq!(
            grouped["n1"],
            BTreeSet::from(["shop_api".to_string(), "shop_web".to_string()])
        );
        assert_eq!(grouped["n2"], BTreeSet::from(["shop_api".to_string()]));
        let draining = json!([
            {"Status": {"State": "running"}},
            {"Status": {"State": "shutdown"}},
        ]);
        assert_eq!(unfinished_tasks(&draining), 1);
    }

    #[test]
    fn a_nodes_own_view_says_whether_it_is_in_a_swarm() {
        let info = json!({"Swarm": {"LocalNodeState": "active", "NodeID": "n1", "ControlAvailable": true}});
        let view = LocalView::parse(&info);
        assert!(view.in_swarm() && view.manager);
        assert_eq!(view.node_id.as_deref(), Some("n1"));
        let alone =
            LocalView::parse(&json!({"Swarm": {"LocalNodeState": "inactive", "NodeID": ""}}));
        assert!(!alone.in_swarm());
        assert_eq!(alone.node_id, None);
    }
}
