//! `stackctl ps`: what runs now, read by the same refresh as a plan (one batch per
//! provider, so the same few round trips): each service's container, image, state,
//! health, since when it runs, how often it restarted, and the routes whose files the
//! edge loads that send traffic to it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use stackctl_provider::{Attributes, Value};

use super::{Session, SessionError};
use crate::plan::LiveSnapshot;

/// The version of `stackctl ps --format json`.
pub const STATUS_FORMAT_VERSION: u32 = 1;

/// The stack as it runs now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StackStatus {
    /// The version of this JSON document (`stackctl ps --format json`).
    pub format_version: u32,
    pub stack: String,
    /// Every service stack.toml or state knows, by name.
    pub services: Vec<ServiceStatus>,
    /// Providers whose live state could not be read, with why.
    pub unread: Vec<String>,
}

/// One service as it runs now; everything but `service` read from the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    /// The container's name, `None` when no container runs for it.
    pub container: Option<String>,
    pub container_id: Option<String>,
    pub image: Option<String>,
    /// Docker's state (`running`, `exited`, `restarting`…), or `absent`.
    pub state: String,
    /// `healthy`, `unhealthy`, `starting`, or `none` without a health check.
    pub health: Option<String>,
    /// When the container last started (RFC 3339, as the daemon says it).
    pub started_at: Option<String>,
    pub restart_count: Option<i64>,
    /// The routes in the edge's loaded configuration that send traffic to this service.
    pub routes: Vec<RouteStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteStatus {
    pub route: String,
    /// The router's rule as the file on the host says it.
    pub rule: String,
}

impl Session {
    /// Reads what runs now. Fails only when no provider could be read at all.
    pub async fn status(&self) -> Result<StackStatus, SessionError> {
        let snapshot = self.read_live().await;
        if snapshot.read_providers.is_empty() {
            return Err(SessionError::LiveUnreadable {
                reasons: snapshot.unread.clone(),
            });
        }
        let mut names: BTreeSet<String> = self
            .desired
            .iter()
            .filter(|resource| resource.address.kind() == "service")
            .map(|resource| resource.address.name().to_string())
            .collect();
        if let Some(state) = self.recorded_state() {
            names.extend(
                state
                    .resources
                    .keys()
                    .filter(|address| address.kind() == "service")
                    .map(|address| address.name().to_string()),
            );
        }
        Ok(stack_status(self.stack(), &names, &snapshot))
    }
}

/// The status of `services` from a live snapshot (pure).
pub fn stack_status(
    stack: &str,
    services: &BTreeSet<String>,
    snapshot: &LiveSnapshot,
) -> StackStatus {
    let mut routes: BTreeMap<String, Vec<RouteStatus>> = BTreeMap::new();
    for (address, route) in &snapshot.resources {
        if address.kind() != "route" {
            continue;
        }
        // Only a file the edge can load counts: its content as read from the host.
        let Some(Value::Text(content)) = route.attributes.get("content") else {
            continue;
        };
        let (Some(rule), Some(service)) = (field(content, "rule"), field(content, "service"))
        else {
            continue;
        };
        routes.entry(service).or_default().push(RouteStatus {
            route: address.name().to_string(),
            rule,
        });
    }
    let services = services
        .iter()
        .map(|name| {
            let live = snapshot
                .resources
                .get(&stackctl_provider::Address::new("service", name));
            let attributes = live.map(|live| &live.attributes);
            let text = |name: &str| attribute_text(attributes, name);
            let runtime = attributes
                .and_then(|attributes| attributes.get("runtime"))
                .and_then(Value::as_map);
            let runtime_text = |name: &str| {
                runtime
                    .and_then(|runtime| runtime.get(name))
                    .and_then(Value::as_text)
                    .map(str::to_string)
            };
            ServiceStatus {
                service: name.clone(),
                container: text("container"),
                container_id: live.and_then(|live| live.id.clone()),
                image: text("image"),
                state: text("state").unwrap_or_else(|| "absent".to_string()),
                health: runtime_text("health"),
                started_at: runtime_text("started_at").filter(|time| !time.starts_with("0001-")),
                restart_count: runtime
                    .and_then(|runtime| runtime.get("restart_count"))
                    .and_then(Value::as_integer),
                routes: routes.remove(name).unwrap_or_default(),
            }
        })
        .collect();
    StackStatus {
        format_version: STATUS_FORMAT_VERSION,
        stack: stack.to_string(),
        services,
        unread: snapshot.unread.clone(),
    }
}

fn attribute_text(attributes: Option<&Attributes>, name: &str) -> Option<String> {
    attributes?.get(name)?.as_text().map(str::to_string)
}

/// The first `name: "value"` line of a router in a Traefik dynamic file, unquoted.
fn field(content: &str, name: &str) -> Option<String> {
    content.lines().find_map(|line| {
        let value = line.trim().strip_prefix(name)?.strip_prefix(':')?.trim();
        let unquoted = value
            .strip_prefix('"')
            .and_then(|value| value.strip_suffix('"'))
            .unwrap_or(value);
        Some(unquoted.replace("\\\"", "\""))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stackctl_provider::{Address, LiveResource};

    #[test]
    fn a_service_shows_its_container_health_and_the_routes_the_edge_loads_for_it() {
        let mut snapshot = LiveSnapshot::default();
        let service = LiveResource {
            address: Address::new("service", "web"),
            id: Some("abc123".into()),
            attributes: [
                ("container".to_string(), Value::text("shop-web-1a2b")),
                ("image".to_string(), Value::text("shop/web:0123")),
                ("state".to_string(), Value::text("running")),
                (
                    "runtime".to_string(),
                    Value::Map(
                        [
                            ("health".to_string(), Value::text("healthy")),
                            (
                                "started_at".to_string(),
                                Value::text("2026-11-30T05:00:00Z"),
                            ),
                            ("restart_count".to_string(), Value::Integer(2)),
                        ]
                        .into(),
                    ),
                ),
            ]
            .into(),
            owned: true,
        };
        let route = LiveResource {
            address: Address::new("route", "site"),
            id: None,
            attributes: [(
                "content".to_string(),
                Value::text("# Managed by stackctl\nhttp:\n  routers:\n    site:\n      rule: \"Host(`example.com`)\"\n      service: \"web\"\n"),
            )]
            .into(),
            owned: true,
        };
        snapshot.resources.insert(service.address.clone(), service);
        snapshot.resources.insert(route.address.clone(), route);
        let names: BTreeSet<String> = ["web".to_string(), "worker".to_string()].into();
        let status = stack_status("shop", &names, &snapshot);
        let web = &status.services[0];
        assert_eq!(web.service, "web");
        assert_eq!(web.health.as_deref(), Some("healthy"));
        assert_eq!(web.restart_count, Some(2));
        assert_eq!(
            web.routes,
            vec![RouteStatus {
                route: "site".into(),
                rule: "Host(`example.com`)".into()
            }]
        );
        let worker = &status.services[1];
        assert_eq!(
            (worker.service.as_str(), worker.state.as_str()),
            ("worker", "absent")
        );
        assert!(worker.container.is_none());
    }
}
