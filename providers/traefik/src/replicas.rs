//! Each replica of a routed swarm service, as the edge sees it.
//!
//! A task's overlay address is reachable only from containers on the overlay, not from
//! the manager where stackctl works; the edge is on it. The backend file of a routed
//! swarm service lists every task's address, and with the service's `health.http` it
//! asks Traefik to check each of them (see [`crate::render::render_backend_servers`]).
//! Traefik's API then reports one status per server (`serverStatus`: `UP` or `DOWN`),
//! which is what `verify` reads: one result per replica, plus one when the edge balances
//! over another number of servers than the service's replicas.

use serde::Serialize;
use stackctl_provider::Resource;

/// The docker provider's kind for a swarm service (its resources come in the desired
/// list with every other provider's).
const SWARM_SERVICE: &str = "swarm_service";

/// A routed swarm service whose replicas `verify` checks through Traefik's API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicatedBackend {
    /// The stackctl service (`web`).
    pub service: String,
    /// The Traefik service the backend file names (the same, unless the lowering says
    /// otherwise).
    pub traefik_service: String,
    /// The replicas the service asks for; `None` for a service Swarm runs on every node.
    pub replicas: Option<i64>,
    /// The path Traefik checks each server on; `None` when the service has no HTTP
    /// health check, so Traefik lists the servers without probing them.
    pub health_path: Option<String>,
}

/// One replica's result (or the count's), for people and for `checks.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReplicaResult {
    /// `replica <url> of `web``, or `replicas of `web``.
    pub name: String,
    pub service: String,
    /// The server URL (the task's overlay address); `None` for the count's result.
    pub server: Option<String>,
    /// Traefik's `serverStatus` for it.
    pub status: Option<String>,
    pub passed: bool,
    pub message: String,
}

impl ReplicaResult {
    /// `ok   replica http://10.0.1.5:8080 of `web`: UP`, or `FAIL …: why`.
    pub fn summary(&self) -> String {
        format!(
            "{} {}: {}",
            if self.passed { "ok  " } else { "FAIL" },
            self.name,
            self.message
        )
    }
}

/// Every routed swarm service among the desired resources, by name.
pub fn replicated_backends(desired: &[Resource]) -> Vec<ReplicatedBackend> {
    desired
        .iter()
        .filter(|resource| resource.address.kind() == SWARM_SERVICE)
        .filter_map(|resource| {
            let backend = resource.attributes.get("route_backend")?.as_map()?;
            let service = resource.address.name().to_string();
            let text = |key: &str| {
                backend
                    .get(key)
                    .and_then(|value| value.as_text())
                    .map(str::to_string)
            };
            Some(ReplicatedBackend {
                traefik_service: text("service").unwrap_or_else(|| service.clone()),
                service,
                replicas: resource
                    .attributes
                    .get("replicas")
                    .and_then(|value| value.as_integer()),
                health_path: text("health_path"),
            })
        })
        .collect()
}

/// The results for one service from Traefik's servers and their statuses
/// ([`crate::admin::parse_server_statuses`]). Pure.
pub fn replica_results(
    backend: &ReplicatedBackend,
    servers: &[(String, Option<String>)],
) -> Vec<ReplicaResult> {
    let service = &backend.service;
    let mut results: Vec<ReplicaResult> = servers
        .iter()
        .map(|(url, status)| {
            let (passed, message) = match (status.as_deref(), &backend.health_path) {
                (Some("UP"), Some(_)) => (true, "UP".to_string()),
                (Some("UP"), None) => (
                    true,
                    "UP (listed; without `health.http` Traefik does not probe it)".to_string(),
                ),
                (Some(other), Some(path)) => (
                    false,
                    format!(
                        "{other}: it fails Traefik's health check on {path}, so the edge sends it no traffic"
                    ),
                ),
                (Some(other), None) => (false, format!("{other} in Traefik's API")),
                (None, _) => (
                    false,
                    "Traefik reports no status for it (the backend is not loaded yet?)"
                        .to_string(),
                ),
            };
            ReplicaResult {
                name: format!("replica {url} of `{service}`"),
                service: service.clone(),
                server: Some(url.clone()),
                status: status.clone(),
                passed,
                message,
            }
        })
        .collect();
    let listed = i64::try_from(servers.len()).unwrap_or(i64::MAX);
    let count_differs = match backend.replicas {
        Some(replicas) => listed != replicas,
        None => listed == 0,
    };
    if count_differs {
        let wanted = backend
            .replicas
            .map_or("at least one".to_string(), |replicas| replicas.to_string());
        results.push(ReplicaResult {
            name: format!("replicas of `{service}`"),
            service: service.clone(),
            server: None,
            status: None,
            passed: false,
            message: format!(
                "the edge balances over {listed} server(s), the service runs {wanted}: `stackctl apply` rewrites the backend file with the running tasks"
            ),
        });
    }
    results
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use stackctl_provider::{Address, Value};

    use super::*;

    fn web(replicas: i64, health_path: Option<&str>) -> ReplicatedBackend {
        ReplicatedBackend {
            service: "web".to_string(),
            traefik_service: "web".to_string(),
            replicas: Some(replicas),
            health_path: health_path.map(str::to_string),
        }
    }

    fn server(url: &str, status: Option<&str>) -> (String, Option<String>) {
        (url.to_string(), status.map(str::to_string))
    }

    #[test]
    fn every_replica_up_passes_one_result_each() {
        let results = replica_results(
            &web(2, Some("/health")),
            &[
                server("http://10.0.1.5:8080", Some("UP")),
                server("http://10.0.1.6:8080", Some("UP")),
            ],
        );
        let lines: Vec<String> = results.iter().map(ReplicaResult::summary).collect();
        assert_eq!(
            lines,
            [
                "ok   replica http://10.0.1.5:8080 of `web`: UP",
                "ok   replica http://10.0.1.6:8080 of `web`: UP",
            ]
        );
    }

    #[test]
    fn a_down_replica_fails_by_its_address_and_the_path_it_fails() {
        let results = replica_results(
            &web(2, Some("/health")),
            &[
                server("http://10.0.1.5:8080", Some("UP")),
                server("http://10.0.1.6:8080", Some("DOWN")),
            ],
        );
        assert!(results[0].passed);
        assert!(!results[1].passed);
        assert_eq!(results[1].server.as_deref(), Some("http://10.0.1.6:8080"));
        assert_eq!(
            results[1].summary(),
            "FAIL replica http://10.0.1.6:8080 of `web`: DOWN: it fails Traefik's health check on /health, so the edge sends it no traffic"
        );
    }

    #[test]
    fn a_server_set_of_another_size_than_the_replicas_fails() {
        let results = replica_results(
            &web(2, Some("/health")),
            &[server("http://10.0.1.5:8080", Some("UP"))],
        );
        assert_eq!(results.len(), 2);
        assert!(results[0].passed);
        assert!(!results[1].passed);
        assert!(
            results[1]
                .summary()
                .contains("over 1 server(s), the service runs 2"),
            "{}",
            results[1].summary()
        );
        let unknown = replica_results(&web(1, None), &[server("http://10.0.1.5:8080", None)]);
        assert_eq!(unknown.len(), 1);
        assert!(!unknown[0].passed);
    }

    #[test]
    fn without_a_health_path_up_only_means_listed() {
        let results = replica_results(&web(1, None), &[server("http://10.0.1.5:8080", Some("UP"))]);
        assert!(results[0].passed);
        assert!(results[0].message.contains("does not probe"));
    }

    #[test]
    fn only_routed_swarm_services_are_replicated_backends() {
        let routed = Resource::new(Address::new("swarm_service", "web"), "docker")
            .with("replicas", 2)
            .with(
                "route_backend",
                Value::Map(BTreeMap::from([
                    ("service".to_string(), Value::text("web")),
                    ("health_path".to_string(), Value::text("/health")),
                ])),
            );
        let unrouted =
            Resource::new(Address::new("swarm_service", "worker"), "docker").with("replicas", 1);
        let container = Resource::new(Address::new("service", "api"), "docker").with(
            "route_backend",
            Value::Map(BTreeMap::from([(
                "service".to_string(),
                Value::text("api"),
            )])),
        );
        assert_eq!(
            replicated_backends(&[routed, unrouted, container]),
            vec![web(2, Some("/health"))]
        );
    }
}
