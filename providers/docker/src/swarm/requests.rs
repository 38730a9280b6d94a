//! The Engine API requests that form and keep a swarm, built by pure functions (checked
//! by string equality below, like `crate::api`). A join token travels only in the body of
//! [`join`]: never in a path or a query, which Docker's errors and logs repeat.

use serde_json::{json, Value as Json};

use crate::http::{percent_encode, Request};

/// The port managers listen on for the swarm's control plane.
pub const SWARM_PORT: u16 = 2377;

/// `GET /info`: the node's own view (`Swarm.LocalNodeState`, `Swarm.NodeID`).
pub fn info() -> Request {
    Request::new("GET", "/info")
}

/// `GET /swarm` (managers only): the swarm's id and, in the same answer, its join tokens.
pub fn inspect_swarm() -> Request {
    Request::new("GET", "/swarm")
}

/// `GET /nodes` (managers only): every node with its spec, status and version.
pub fn list_nodes() -> Request {
    Request::new("GET", "/nodes")
}

/// `GET /nodes/{id}`.
pub fn inspect_node(id: &str) -> Request {
    Request::new("GET", format!("/nodes/{}", percent_encode(id)))
}

/// `GET /tasks` that the swarm wants running (on any node; grouped by the caller).
pub fn running_tasks() -> Request {
    Request::new("GET", "/tasks").query(
        "filters",
        json!({ "desired-state": ["running"] }).to_string(),
    )
}

/// `GET /tasks` still placed on one node (those running or on their way out).
pub fn tasks_on_node(id: &str) -> Request {
    Request::new("GET", "/tasks").query("filters", json!({ "node": [id] }).to_string())
}

/// `GET /services`: to name the services whose tasks a node runs.
pub fn list_services() -> Request {
    Request::new("GET", "/services")
}

/// `POST /swarm/init` on the first manager, advertising its own address.
pub fn init(advertise_address: &str) -> Request {
    Request::new("POST", "/swarm/init").json(json!({
        "ListenAddr": format!("0.0.0.0:{SWARM_PORT}"),
        "AdvertiseAddr": format!("{advertise_address}:{SWARM_PORT}"),
        "ForceNewCluster": false,
        "Spec": {},
    }))
}

/// `POST /swarm/join` on a new node: its own address, the manager's, and the token (in
/// the body only).
pub fn join(advertise_address: &str, manager_address: &str, token: &str) -> Request {
    Request::new("POST", "/swarm/join").json(json!({
        "ListenAddr": format!("0.0.0.0:{SWARM_PORT}"),
        "AdvertiseAddr": format!("{advertise_address}:{SWARM_PORT}"),
        "RemoteAddrs": [format!("{manager_address}:{SWARM_PORT}")],
        "JoinToken": token,
    }))
}

/// `POST /swarm/leave` on the node leaving; `force` for the last manager.
pub fn leave(force: bool) -> Request {
    Request::new("POST", "/swarm/leave").query("force", if force { "true" } else { "false" })
}

/// `POST /nodes/{id}/update?version=N`: the node's whole spec (Docker replaces it).
pub fn update_node(id: &str, version: u64, spec: &Json) -> Request {
    Request::new("POST", format!("/nodes/{}/update", percent_encode(id)))
        .query("version", version.to_string())
        .json(spec.clone())
}

/// `DELETE /nodes/{id}` on a manager, once the node has left (`force` when it never
/// could: its host is gone).
pub fn remove_node(id: &str, force: bool) -> Request {
    Request::new("DELETE", format!("/nodes/{}", percent_encode(id)))
        .query("force", if force { "true" } else { "false" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::API_VERSION;
    use crate::http::Body;

    #[test]
    fn init_advertises_the_managers_address_on_the_swarm_port() {
        let request = init("10.0.0.2");
        assert_eq!(request.method, "POST");
        assert_eq!(request.target(API_VERSION), "/v1.41/swarm/init");
        assert_eq!(
            request.body,
            Body::Json(json!({
                "ListenAddr": "0.0.0.0:2377",
                "AdvertiseAddr": "10.0.0.2:2377",
                "ForceNewCluster": false,
                "Spec": {},
            }))
        );
    }

    #[test]
    fn the_join_token_travels_in_the_body_only() {
        let request = join("10.0.0.3", "10.0.0.2", "SWMTKN-1-secret");
        assert_eq!(request.target(API_VERSION), "/v1.41/swarm/join");
        assert!(!request.target(API_VERSION).contains("SWMTKN"));
        assert_eq!(
            request.body,
            Body::Json(json!({
                "ListenAddr": "0.0.0.0:2377",
                "AdvertiseAddr": "10.0.0.3:2377",
                "RemoteAddrs": ["10.0.0.2:2377"],
                "JoinToken": "SWMTKN-1-secret",
            }))
        );
    }

    #[test]
    fn node_requests_name_the_node_and_its_version() {
        assert_eq!(
            update_node("abc", 42, &json!({"Role": "worker"})).target(API_VERSION),
            "/v1.41/nodes/abc/update?version=42"
        );
        assert_eq!(
            remove_node("abc", false).target(API_VERSION),
            "/v1.41/nodes/abc?force=false"
        );
        assert_eq!(
            leave(true).target(API_VERSION),
            "/v1.41/swarm/leave?force=true"
        );
        assert_eq!(
            tasks_on_node("abc").target(API_VERSION),
            "/v1.41/tasks?filters=%7B%22node%22%3A%5B%22abc%22%5D%7D"
        );
    }
}
