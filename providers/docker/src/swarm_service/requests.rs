//! The Engine API requests of swarm services and their tasks (API 1.41), built by pure
//! functions like the container ones in `api.rs`, and checked the same way.

use serde_json::{json, Value as Json};

use crate::api::{stack_filter, LABEL_RESOURCE, LABEL_STACK};
use crate::http::{percent_encode, Request};

/// The stack's swarm services (every one carries the stack's label).
pub fn list_services(stack: &str) -> Request {
    Request::new("GET", "/services").query("filters", stack_filter(stack))
}

/// The swarm services of one resource: during a switch, the old and its successor.
pub fn list_services_of(stack: &str, resource: &str) -> Request {
    Request::new("GET", "/services").query(
        "filters",
        json!({ "label": [format!("{LABEL_STACK}={stack}"), format!("{LABEL_RESOURCE}={resource}")] })
            .to_string(),
    )
}

/// The tasks of the given services (by id or name), whatever their state.
pub fn list_tasks_of(services: &[String]) -> Request {
    Request::new("GET", "/tasks").query("filters", json!({ "service": services }).to_string())
}

/// Every task of the swarm: refresh matches them to the stack's services by id, in the
/// same round trip as the services themselves.
pub fn list_all_tasks() -> Request {
    Request::new("GET", "/tasks")
}

/// The containers of one service's tasks on the node this client talks to (Swarm labels
/// each task's container with its service's id), stopped ones included.
pub fn list_task_containers(service_id: &str) -> Request {
    Request::new("GET", "/containers/json")
        .query("all", "1")
        .query(
            "filters",
            json!({ "label": [format!("com.docker.swarm.service.id={service_id}")] }).to_string(),
        )
}

/// The swarm's nodes (a manager answers): node ids → host names in what refresh shows.
pub fn list_nodes() -> Request {
    Request::new("GET", "/nodes")
}

/// `body` comes from [`super::spec::SwarmServiceSpec::body`].
pub fn create_service(body: Json) -> Request {
    Request::new("POST", "/services/create").json(body)
}

pub fn inspect_service(id_or_name: &str) -> Request {
    Request::new("GET", format!("/services/{}", percent_encode(id_or_name)))
}

/// Replaces the service's spec; `version` is the `Version.Index` it was read at, so a
/// change made meanwhile by someone else fails instead of being overwritten.
pub fn update_service(id: &str, version: u64, body: Json) -> Request {
    Request::new("POST", format!("/services/{}/update", percent_encode(id)))
        .query("version", version.to_string())
        .json(body)
}

/// Removes the service: Swarm stops its tasks (SIGTERM, then SIGKILL after the stop grace
/// period) and removes them.
pub fn remove_service(id: &str) -> Request {
    Request::new("DELETE", format!("/services/{}", percent_encode(id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::API_VERSION;

    #[test]
    fn requests_have_their_exact_paths() {
        assert_eq!(
            list_services("shop").target(API_VERSION),
            "/v1.41/services?filters=%7B%22label%22%3A%5B%22stackctl.stack%3Dshop%22%5D%7D"
        );
        assert_eq!(
            update_service("abc", 42, json!({})).target(API_VERSION),
            "/v1.41/services/abc/update?version=42"
        );
        assert_eq!(
            remove_service("abc").target(API_VERSION),
            "/v1.41/services/abc"
        );
        assert_eq!(remove_service("abc").method, "DELETE");
        assert_eq!(
            list_tasks_of(&["abc".into()]).target(API_VERSION),
            "/v1.41/tasks?filters=%7B%22service%22%3A%5B%22abc%22%5D%7D"
        );
        assert_eq!(
            create_service(json!({})).target(API_VERSION),
            "/v1.41/services/create"
        );
    }
}
