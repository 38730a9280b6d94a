//! The security facts of a stack's swarm services, read from the manager (the service's
//! spec and its tasks, `GET /services` and `GET /tasks`), never from stack.toml: who the
//! tasks run as, what they may do, their limits, the networks they join, the ports the
//! service publishes, and where each task runs. A task runs on whichever node Swarm
//! picks; its container follows the service's spec, so one entry per service covers
//! every node's containers, and each task is listed with its node.
//!
//! A spec without `User` runs its tasks as the image's `USER`, which the spec does not
//! say: it is read from the image on the first manager (`GET /images/{image}/json`,
//! `Config.User`). When that image is not there to read, the user is reported unknown
//! (`runs_as_root: null`), neither root nor not.
//!
//! Pure. The shape is a container's in the report (`security.rs` at the crate's root),
//! plus `kind`, `replicas` and `tasks`, so the engine checks the same policy on both.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use super::live::capability;
use crate::api;

/// The images of `services` whose spec sets no `User`: theirs is the image's, to be read
/// from the image itself. Each once, as the spec names it.
pub fn images_without_user(services: &[Json]) -> Vec<String> {
    let mut images: Vec<String> = services
        .iter()
        .map(|service| &service["Spec"]["TaskTemplate"]["ContainerSpec"])
        .filter(|container| container["User"].as_str().unwrap_or("").is_empty())
        .filter_map(|container| container["Image"].as_str())
        .map(str::to_string)
        .collect();
    images.sort();
    images.dedup();
    images
}

/// The names to inspect an image by, first the best: the reference as the spec has it
/// (`web:1@sha256:…` once Swarm pinned the digest), then without the digest (an image
/// loaded rather than pulled has no repository digest to be found by).
pub fn image_lookups(image: &str) -> Vec<String> {
    let mut lookups = vec![image.to_string()];
    if let Some((name, _digest)) = image.split_once('@') {
        lookups.push(name.to_string());
    }
    lookups
}

/// Who a service's tasks run as: the spec's `User`, else the image's `USER` (`image_user`:
/// `Some` once read from the image, where `""` means root), else unknown. Returns the
/// text the report shows and whether that is root (`None`: not known).
pub fn effective_user(
    spec_user: &str,
    image: &str,
    image_user: Option<&str>,
) -> (String, Option<bool>) {
    let is_root = |user: &str| matches!(user.split(':').next().unwrap_or(""), "" | "0" | "root");
    if !spec_user.is_empty() {
        return (spec_user.to_string(), Some(is_root(spec_user)));
    }
    match image_user {
        Some("") => ("root (the image's default)".to_string(), Some(true)),
        Some(user) => (format!("{user} (the image's USER)"), Some(is_root(user))),
        None => (
            format!("unknown: the spec sets none, so the image's USER, and image `{image}` could not be read on the first manager"),
            None,
        ),
    }
}

/// Each of the stack's swarm services (`services`, as `GET /services` lists them) with
/// its tasks Swarm wants running (`tasks`: `GET /tasks`), the nodes' host names (`nodes`:
/// `GET /nodes`), the stack's networks (`GET /networks`: names and `internal`) and the
/// `USER` of each image read on the first manager (`image_users`, by the spec's image
/// reference), sorted by name.
pub fn swarm_security_facts(
    services: &[Json],
    tasks: &[Json],
    nodes: &[Json],
    networks: &Json,
    image_users: &BTreeMap<String, String>,
) -> Vec<Json> {
    let node_names: BTreeMap<&str, &str> = nodes
        .iter()
        .filter_map(|node| {
            Some((
                node["ID"].as_str()?,
                node["Description"]["Hostname"].as_str()?,
            ))
        })
        .collect();
    let networks_by_id: BTreeMap<&str, (&str, bool)> = networks
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|network| {
            Some((
                network["Id"].as_str()?,
                (
                    network["Name"].as_str()?,
                    network["Internal"].as_bool().unwrap_or(false),
                ),
            ))
        })
        .collect();
    let mut facts: Vec<Json> = services
        .iter()
        .map(|service| service_facts(service, tasks, &node_names, &networks_by_id, image_users))
        .collect();
    facts.sort_by(|left, right| left["name"].as_str().cmp(&right["name"].as_str()));
    facts
}

fn service_facts(
    service: &Json,
    tasks: &[Json],
    node_names: &BTreeMap<&str, &str>,
    networks_by_id: &BTreeMap<&str, (&str, bool)>,
    image_users: &BTreeMap<String, String>,
) -> Json {
    let spec = &service["Spec"];
    let template = &spec["TaskTemplate"];
    let container = &template["ContainerSpec"];
    let limits = &template["Resources"]["Limits"];
    let image = container["Image"].as_str().unwrap_or("");
    let (user, runs_as_root) = effective_user(
        container["User"].as_str().unwrap_or(""),
        image,
        image_users.get(image).map(String::as_str),
    );
    let positive = |json: &Json| json.as_i64().filter(|number| *number > 0);
    let names = |json: &Json| -> Vec<String> {
        json.as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .filter_map(Json::as_str)
            .map(capability)
            .collect()
    };
    let networks: Vec<Json> = template["Networks"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|network| network["Target"].as_str())
        .map(|target| {
            let (name, internal) = networks_by_id
                .get(target)
                .copied()
                .unwrap_or((target, false));
            json!({ "name": name, "internal": internal })
        })
        .collect();
    let mut ports: Vec<String> = spec["EndpointSpec"]["Ports"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|port| {
            format!(
                "{} {}->{}/{}",
                port["PublishMode"].as_str().unwrap_or("ingress"),
                port["PublishedPort"].as_i64().unwrap_or(0),
                port["TargetPort"].as_i64().unwrap_or(0),
                port["Protocol"].as_str().unwrap_or("tcp"),
            )
        })
        .collect();
    ports.sort();
    let tmpfs: BTreeMap<String, Json> = container["Mounts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter(|mount| mount["Type"] == "tmpfs")
        .map(|mount| {
            (
                mount["Target"].as_str().unwrap_or("").to_string(),
                mount["TmpfsOptions"]["SizeBytes"].clone(),
            )
        })
        .collect();
    let id = service["ID"].as_str().unwrap_or("");
    let mut own_tasks: Vec<&Json> = tasks
        .iter()
        .filter(|task| task["ServiceID"].as_str() == Some(id) && task["DesiredState"] == "running")
        .collect();
    own_tasks.sort_by_key(|task| {
        (
            task["Slot"].as_i64().unwrap_or(0),
            task["ID"].as_str().unwrap_or("").to_string(),
        )
    });
    let tasks: Vec<Json> = own_tasks
        .iter()
        .map(|task| {
            let node_id = task["NodeID"].as_str().unwrap_or("");
            json!({
                "id": task["ID"],
                "slot": task["Slot"],
                "node": node_names.get(node_id).copied().unwrap_or(node_id),
                "state": task["Status"]["State"],
                "container": task["Status"]["ContainerStatus"]["ContainerID"],
            })
        })
        .collect();
    json!({
        "kind": "swarm_service",
        "name": spec["Name"],
        "resource": spec["Labels"][api::LABEL_RESOURCE],
        "image": container["Image"],
        "replicas": spec["Mode"]["Replicated"]["Replicas"],
        "user": user,
        "runs_as_root": runs_as_root,
        "capabilities": { "dropped": names(&container["CapabilityDrop"]), "added": names(&container["CapabilityAdd"]) },
        // Engine API 1.41 has neither for a service: its tasks never have them.
        "no_new_privileges": false,
        "privileged": false,
        "read_only_root": container["ReadOnly"].as_bool().unwrap_or(false),
        "tmpfs": tmpfs,
        "pids_limit": positive(&limits["Pids"]),
        "memory_bytes": positive(&limits["MemoryBytes"]),
        "cpus": positive(&limits["NanoCPUs"]).map(|nanos| nanos as f64 / 1e9),
        "networks": networks,
        "published_ports": ports,
        "tasks": tasks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_what_the_manager_says_of_the_service_and_each_running_task() {
        let service = json!({
            "ID": "svc1",
            "Spec": {
                "Name": "shop-web",
                "Labels": { "stackctl.stack": "shop", "stackctl.resource": "swarm_service.web" },
                "TaskTemplate": {
                    "ContainerSpec": {
                        "Image": "web:1@sha256:0123", "User": "10001", "ReadOnly": true,
                        "CapabilityDrop": ["ALL"], "CapabilityAdd": ["CAP_NET_BIND_SERVICE"],
                        "Mounts": [{ "Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": { "SizeBytes": 1024 } }],
                    },
                    "Resources": { "Limits": { "MemoryBytes": 268435456, "NanoCPUs": 500000000, "Pids": 256 } },
                    "Networks": [{ "Target": "n1d", "Aliases": ["web"] }],
                },
                "Mode": { "Replicated": { "Replicas": 2 } },
                "EndpointSpec": { "Mode": "dnsrr" },
            },
        });
        let task = |id: &str, slot: i64, node: &str, state: &str, desired: &str| {
            json!({
                "ID": id, "ServiceID": "svc1", "Slot": slot, "NodeID": node,
                "DesiredState": desired,
                "Status": { "State": state, "ContainerStatus": { "ContainerID": format!("c-{id}") } },
            })
        };
        let tasks = [
            task("t2", 2, "node3", "running", "running"),
            task("t1", 1, "node2", "running", "running"),
            task("t0", 1, "node2", "shutdown", "shutdown"),
            json!({ "ID": "other", "ServiceID": "svc9", "DesiredState": "running" }),
        ];
        let nodes = [
            json!({ "ID": "node2", "Description": { "Hostname": "web-2" } }),
            json!({ "ID": "node3", "Description": { "Hostname": "web-3" } }),
        ];
        let networks = json!([{ "Id": "n1d", "Name": "shop_edge", "Internal": false }]);
        let facts = swarm_security_facts(&[service], &tasks, &nodes, &networks, &BTreeMap::new());
        assert_eq!(facts.len(), 1);
        let web = &facts[0];
        assert_eq!(web["name"], "shop-web");
        assert_eq!(web["resource"], "swarm_service.web");
        assert_eq!(web["kind"], "swarm_service");
        assert_eq!(web["user"], "10001");
        assert_eq!(web["runs_as_root"], false);
        assert_eq!(
            web["capabilities"],
            json!({ "dropped": ["ALL"], "added": ["NET_BIND_SERVICE"] })
        );
        assert_eq!(web["read_only_root"], true);
        assert_eq!(web["tmpfs"], json!({ "/tmp": 1024 }));
        assert_eq!(web["pids_limit"], 256);
        assert_eq!(web["memory_bytes"], 268435456);
        assert_eq!(web["cpus"], 0.5);
        assert_eq!(
            web["networks"],
            json!([{ "name": "shop_edge", "internal": false }])
        );
        assert_eq!(web["published_ports"], json!([]));
        assert_eq!(
            web["tasks"],
            json!([
                { "id": "t1", "slot": 1, "node": "web-2", "state": "running", "container": "c-t1" },
                { "id": "t2", "slot": 2, "node": "web-3", "state": "running", "container": "c-t2" },
            ])
        );
    }

    #[test]
    fn a_published_port_and_a_root_user_are_read_as_the_service_has_them() {
        let service = json!({
            "ID": "svc1",
            "Spec": {
                "Name": "shop-admin",
                "TaskTemplate": { "ContainerSpec": { "Image": "admin:1" } },
                "EndpointSpec": { "Ports": [
                    { "Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host" },
                ] },
            },
        });
        let image_users = BTreeMap::from([("admin:1".to_string(), String::new())]);
        let facts = swarm_security_facts(&[service], &[], &[], &json!([]), &image_users);
        assert_eq!(facts[0]["published_ports"], json!(["host 8080->80/tcp"]));
        assert_eq!(facts[0]["user"], "root (the image's default)");
        assert_eq!(facts[0]["runs_as_root"], true);
        assert_eq!(facts[0]["memory_bytes"], Json::Null);
        assert_eq!(facts[0]["capabilities"]["dropped"], json!([]));
        assert_eq!(facts[0]["tasks"], json!([]));
    }

    #[test]
    fn a_spec_without_user_runs_as_the_images_user_or_an_unknown_one() {
        let service = |image: &str, user: Option<&str>| {
            let mut service = json!({
                "ID": image,
                "Spec": { "Name": image, "TaskTemplate": { "ContainerSpec": { "Image": image } } },
            });
            if let Some(user) = user {
                service["Spec"]["TaskTemplate"]["ContainerSpec"]["User"] = json!(user);
            }
            service
        };
        let services = [
            service("app:1@sha256:0a1b", None),
            service("root:1", None),
            service("gone:1", None),
            service("set:1", Some("root")),
        ];
        assert_eq!(
            images_without_user(&services),
            ["app:1@sha256:0a1b", "gone:1", "root:1"]
        );
        assert_eq!(
            image_lookups("app:1@sha256:0a1b"),
            ["app:1@sha256:0a1b", "app:1"]
        );
        let image_users = BTreeMap::from([
            ("app:1@sha256:0a1b".to_string(), "10001:10001".to_string()),
            ("root:1".to_string(), String::new()),
        ]);
        let facts = swarm_security_facts(&services, &[], &[], &json!([]), &image_users);
        let by_name = |name: &str| {
            facts
                .iter()
                .find(|facts| facts["name"] == name)
                .unwrap()
                .clone()
        };
        let app = by_name("app:1@sha256:0a1b");
        assert_eq!(app["user"], "10001:10001 (the image's USER)");
        assert_eq!(app["runs_as_root"], false);
        let root = by_name("root:1");
        assert_eq!(root["user"], "root (the image's default)");
        assert_eq!(root["runs_as_root"], true);
        // Not readable on the first manager: unknown, neither root nor not.
        let gone = by_name("gone:1");
        assert!(
            gone["user"].as_str().unwrap().starts_with("unknown"),
            "{gone}"
        );
        assert_eq!(gone["runs_as_root"], Json::Null);
        // The spec's own user wins over the image's.
        assert_eq!(by_name("set:1")["runs_as_root"], true);
    }
}
