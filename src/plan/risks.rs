//! What applying a plan risks, one warning per resource: data lost, a window where
//! requests fail, production certificates, exposure widened.
//!
//! A warning that fires on every deploy is a warning reviewers learn to skip, so only
//! these four kinds exist, and a create-before-destroy swap of a stateless service (the
//! usual deploy: the new container is healthy before the old one goes) is none of them.
//! Computed from the actions and the desired resources alone: pure, no I/O.

use serde::{Deserialize, Serialize};
use stackctl_provider::{Action, ActionKind, Address, Attributes, Reason, Resource, Value};

/// One thing a reviewer should know before approving: what, where, and why in one line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanWarning {
    pub kind: WarningKind,
    pub address: Address,
    /// One line, read after the address: "is deleted with everything in it".
    pub why: String,
}

/// Declared from most to least severe: warnings are listed in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// Data is deleted: a volume, a droplet's disk, or a service holding data goes.
    DataLoss,
    /// More of the stack answers the internet than before (a route without
    /// authentication, a wider allowlist, a published port). Computed with the exposure
    /// diff, except for ports a service was found publishing by hand, which [`risks`]
    /// reports from the drift repair (the exposure diff compares recorded with desired).
    ExposureWidened,
    /// Requests fail for a while: a service that serves traffic is stopped before its
    /// successor starts, or the edge restarts.
    RequestsFail,
    /// The edge asks Let's Encrypt's production CA for real certificates.
    ProductionCertificates,
}

impl WarningKind {
    /// A short label, as shown before the address.
    pub fn label(self) -> &'static str {
        match self {
            WarningKind::DataLoss => "data loss",
            WarningKind::ExposureWidened => "exposure widened",
            WarningKind::RequestsFail => "requests fail",
            WarningKind::ProductionCertificates => "production certificates",
        }
    }
}

const EDGE: (&str, &str) = ("service", "edge");
const STATIC_FILE: (&str, &str) = ("file", "traefik-static");

/// The warnings for `actions`, most severe kind first, then in plan order. `desired` is
/// every resource stack.toml wants (acting or not): it says who depends on a service.
pub fn risks(actions: &[Action], desired: &[Resource]) -> Vec<PlanWarning> {
    let mut warnings = Vec::new();
    for action in actions {
        data_loss(action, actions, &mut warnings);
        requests_fail(action, actions, desired, &mut warnings);
        production_certificates(action, &mut warnings);
        ports_published_by_hand(action, &mut warnings);
    }
    // A stable sort: within a kind, plan order stays.
    warnings.sort_by_key(|warning| warning.kind);
    warnings
}

/// One warning per resource whose change widens the public surface, with the first
/// widening said in words (the exposure section lists them all) — except for resources
/// `already` warned about (production certificates say it better).
pub fn exposure_widened(
    exposure: &super::exposure::Exposure,
    already: &[PlanWarning],
) -> Vec<PlanWarning> {
    let mut warnings: Vec<PlanWarning> = Vec::new();
    for change in &exposure.changes {
        if change.direction != super::exposure::Direction::Widens {
            continue;
        }
        let Ok(address) = Address::parse(&change.subject) else {
            continue;
        };
        let warned = |warning: &PlanWarning| warning.address == address;
        if warnings.iter().any(warned) || already.iter().any(warned) {
            continue;
        }
        warnings.push(PlanWarning {
            kind: WarningKind::ExposureWidened,
            address,
            why: format!("widens what the internet reaches: {}", change.message),
        });
    }
    warnings
}

fn data_loss(action: &Action, actions: &[Action], warnings: &mut Vec<PlanWarning>) {
    placement_moves_data(action, warnings);
    let deleted = action.kind == ActionKind::Delete;
    let replaced = action.kind.is_replace();
    if !deleted && !replaced {
        return;
    }
    let why = match action.address.kind() {
        "volume" if deleted => "is deleted with everything in it".to_string(),
        "volume" => "is replaced: the old volume is deleted with its data, the new one starts empty"
            .to_string(),
        "droplet" if deleted => "is destroyed with everything on its disk".to_string(),
        "droplet" => "is replaced: the old droplet is destroyed with everything on its disk".to_string(),
        // When its volumes go too, their own warnings say it: one warning per loss.
        "service" if deleted && !keeps_a_volume(action, actions) => return,
        "service" if deleted => match attributes(action) {
            Some(attributes) if is_stateful(attributes) => format!(
                "is removed while it holds data in {}: the volume is kept, but nothing serves its data any more",
                named_volumes(attributes)
            ),
            _ => return,
        },
        _ => return,
    };
    warnings.push(warning(WarningKind::DataLoss, action, why));
}

/// A swarm service holding a named volume whose placement changes: a local volume lives
/// on one node, so its task may start on another node, with that node's empty volume.
fn placement_moves_data(action: &Action, warnings: &mut Vec<PlanWarning>) {
    // A create places a service for the first time: no data is anywhere yet.
    if action.address.kind() != "swarm_service"
        || matches!(action.kind, ActionKind::Delete | ActionKind::Create)
    {
        return;
    }
    let Some(change) = action
        .changes
        .iter()
        .find(|change| change.attribute == "placement")
    else {
        return;
    };
    if !attributes(action).is_some_and(is_stateful) {
        return;
    }
    let constraints = |value: &Option<Value>| {
        value
            .as_ref()
            .and_then(Value::as_map)
            .and_then(|placement| placement.get("constraints"))
            .and_then(Value::as_list)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_text)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    warnings.push(warning(
        WarningKind::DataLoss,
        action,
        format!(
            "holds data in {} and its placement changes ({} → {}): its task may start on another node, where that volume is empty (the data stays on the old node)",
            attributes(action).map(named_volumes).unwrap_or_default(),
            constraints(&change.before),
            constraints(&change.after),
        ),
    ));
}

fn requests_fail(
    action: &Action,
    actions: &[Action],
    desired: &[Resource],
    warnings: &mut Vec<PlanWarning>,
) {
    let acting_on = |(kind, name): (&str, &str)| {
        actions.iter().find(|other| {
            other.address.kind() == kind
                && other.address.name() == name
                && other.kind != ActionKind::Adopt
        })
    };
    let is_edge = action.address.kind() == EDGE.0 && action.address.name() == EDGE.1;
    let is_static_file =
        action.address.kind() == STATIC_FILE.0 && action.address.name() == STATIC_FILE.1;

    // Removing files dropped by hand into the watched directory, the TLS options file and
    // the default certificate change nothing Traefik reads at start: it reloads them live
    // and the edge keeps running.
    const RELOADED_LIVE: &[&str] = &[
        "unmanaged_files",
        "tls_path",
        "tls_content",
        "default_certificate",
        "default_certificate_files",
    ];
    let reloaded_live_only = !action.changes.is_empty()
        && action
            .changes
            .iter()
            .all(|change| RELOADED_LIVE.contains(&change.attribute.as_str()));
    if is_static_file
        && !reloaded_live_only
        && (action.kind == ActionKind::Update || action.kind.is_replace())
    {
        // The edge's own warning covers it when the edge is replaced in this plan.
        if acting_on(EDGE).is_some_and(|edge| edge.kind.is_replace()) {
            return;
        }
        warnings.push(warning(
            WarningKind::RequestsFail,
            action,
            "changes, and Traefik reads it only when it starts: `service.edge` restarts and requests fail while it does".to_string(),
        ));
        return;
    }
    if action.address.kind() != "service" || action.kind != ActionKind::ReplaceDestroyBeforeCreate {
        return;
    }
    let Some(attributes) = attributes(action) else {
        return;
    };
    let ports = published_ports(attributes);
    let why = if is_edge {
        let cause = if acting_on(STATIC_FILE).is_some() {
            "restarts to read the changed `file.traefik-static`"
        } else {
            "is stopped before its replacement starts"
        };
        let requests = if ports.is_empty() {
            "every request through it".to_string()
        } else {
            format!("every request to ports {ports}")
        };
        format!("{cause}: {requests} fails until Traefik is back")
    } else if !ports.is_empty() {
        format!("is stopped before its replacement starts: requests to ports {ports} fail until it is back")
    } else {
        let dependents = dependents(&action.address, desired);
        if !dependents.is_empty() {
            format!(
                "is stopped before its replacement starts: requests from {} fail until the new container is healthy",
                dependents.join(", ")
            )
        } else if attributes.contains_key("port") {
            "is stopped before its replacement starts: requests to it fail until the new container is healthy".to_string()
        } else {
            // Serves nobody: stopping it first costs no request.
            return;
        }
    };
    warnings.push(warning(WarningKind::RequestsFail, action, why));
}

fn production_certificates(action: &Action, warnings: &mut Vec<PlanWarning>) {
    let is_static_file =
        action.address.kind() == STATIC_FILE.0 && action.address.name() == STATIC_FILE.1;
    if !is_static_file || matches!(action.kind, ActionKind::Delete | ActionKind::Adopt) {
        return;
    }
    let Some(after) = action
        .desired
        .as_ref()
        .and_then(|resource| resolver(&resource.attributes))
    else {
        return;
    };
    let before_was_production = action
        .prior
        .as_ref()
        .and_then(|prior| resolver(&prior.attributes))
        .is_some_and(|before| !before.staging);
    // Already production before this plan: the reviewer approved that once.
    if after.staging || before_was_production {
        return;
    }
    warnings.push(warning(
        WarningKind::ProductionCertificates,
        action,
        format!(
            "points resolver `{}` at Let's Encrypt's production CA: real certificates, under rate limits (5 failed validations an hour, 5 identical certificates a week) that make a mistake slow to undo",
            after.name
        ),
    ));
}

/// A service other than the edge found publishing host ports (a container replaced or
/// run by hand): the live stack answers more than anything approved. The repair removes
/// them; the reviewer should still know the host was exposed.
fn ports_published_by_hand(action: &Action, warnings: &mut Vec<PlanWarning>) {
    let is_edge = action.address.kind() == EDGE.0 && action.address.name() == EDGE.1;
    if action.address.kind() != "service" || is_edge {
        return;
    }
    let Reason::Drift { .. } = action.reason else {
        return;
    };
    let Some(live) = action
        .changes
        .iter()
        .find(|change| change.attribute == "ports")
        .and_then(|change| change.before.as_ref())
    else {
        return;
    };
    let bindings: Vec<String> = live
        .as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_map)
        .map(|port| {
            let text = |name: &str| port.get(name).and_then(Value::as_text).unwrap_or("?");
            let number = |name: &str| {
                port.get(name)
                    .and_then(Value::as_integer)
                    .map_or("?".to_string(), |number| number.to_string())
            };
            format!(
                "{}:{} → {}/{}",
                text("host_ip"),
                number("host_port"),
                number("container_port"),
                text("protocol")
            )
        })
        .collect();
    if bindings.is_empty() {
        return;
    }
    warnings.push(warning(
        WarningKind::ExposureWidened,
        action,
        format!(
            "publishes {} on the host, which no apply made (only `service.edge` may publish ports): this plan replaces the container without them",
            bindings.join(", ")
        ),
    ));
}

fn warning(kind: WarningKind, action: &Action, why: String) -> PlanWarning {
    PlanWarning {
        kind,
        address: action.address.clone(),
        why,
    }
}

/// What the resource will be, or for a delete what it was.
fn attributes(action: &Action) -> Option<&Attributes> {
    action
        .desired
        .as_ref()
        .map(|resource| &resource.attributes)
        .or(action.prior.as_ref().map(|prior| &prior.attributes))
}

/// True when a volume the deleted service used is not deleted by this plan.
fn keeps_a_volume(service: &Action, actions: &[Action]) -> bool {
    let deleted = |volume: &Address| {
        actions
            .iter()
            .any(|other| &other.address == volume && other.kind == ActionKind::Delete)
    };
    service
        .prior
        .iter()
        .flat_map(|prior| &prior.dependencies)
        .any(|dependency| dependency.kind() == "volume" && !deleted(dependency))
}

fn is_stateful(attributes: &Attributes) -> bool {
    attributes.get("stateful").and_then(Value::as_bool) == Some(true)
}

/// `` `shop_pgdata` `` or `` `a`, `b` ``: the named volumes a service mounts.
fn named_volumes(attributes: &Attributes) -> String {
    let names: Vec<String> = attributes
        .get("volumes")
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_map)
        .filter(|mount| mount.get("kind").and_then(Value::as_text) == Some("volume"))
        .filter_map(|mount| mount.get("source").and_then(Value::as_text))
        .map(|source| format!("`{source}`"))
        .collect();
    if names.is_empty() {
        "its volumes".to_string()
    } else {
        names.join(", ")
    }
}

/// `80, 443`: host ports published on addresses other than loopback.
fn published_ports(attributes: &Attributes) -> String {
    attributes
        .get("ports")
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_map)
        .filter(|port| port.get("host_ip").and_then(Value::as_text) != Some("127.0.0.1"))
        .filter_map(|port| port.get("host_port").and_then(Value::as_integer))
        .map(|port| port.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `` `route.api`, `service.django` ``: desired resources that depend on `address`.
fn dependents(address: &Address, desired: &[Resource]) -> Vec<String> {
    desired
        .iter()
        .filter(|resource| resource.dependencies.contains(address))
        .map(|resource| format!("`{}`", resource.address))
        .collect()
}

struct Resolver {
    name: String,
    staging: bool,
}

fn resolver(attributes: &Attributes) -> Option<Resolver> {
    let resolver = attributes.get("resolver")?.as_map()?;
    Some(Resolver {
        name: resolver
            .get("name")
            .and_then(Value::as_text)
            .unwrap_or_default()
            .to_string(),
        // Lowering always writes `staging`; anything else is treated as production.
        staging: resolver.get("staging").and_then(Value::as_bool) == Some(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stackctl_provider::AttributeChange;

    fn static_file_update(attribute: &str) -> Action {
        Action {
            address: Address::new(STATIC_FILE.0, STATIC_FILE.1),
            provider: "traefik".into(),
            kind: ActionKind::Update,
            reason: Reason::Drift {
                attributes: vec![attribute.to_string()],
            },
            changes: vec![AttributeChange {
                attribute: attribute.to_string(),
                before: Some(Value::List(vec![Value::text("stray.yml")])),
                after: Some(Value::List(Vec::new())),
                forces_replace: false,
                sensitive: false,
            }],
            depends_on: Vec::new(),
            desired: None,
            prior: None,
            live_id: None,
        }
    }

    #[test]
    fn a_port_published_by_hand_on_a_service_is_called_out() {
        let port = Value::Map(std::collections::BTreeMap::from([
            ("container_port".to_string(), Value::Integer(8080)),
            ("host_ip".to_string(), Value::text("127.0.0.1")),
            ("host_port".to_string(), Value::Integer(5999)),
            ("protocol".to_string(), Value::text("tcp")),
        ]));
        let mut repair = static_file_update("ports");
        repair.address = Address::new("service", "django");
        repair.kind = ActionKind::ReplaceCreateBeforeDestroy;
        repair.changes[0].before = Some(Value::List(vec![port]));
        let found = risks(&[repair.clone()], &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, WarningKind::ExposureWidened);
        assert!(
            found[0]
                .why
                .starts_with("publishes 127.0.0.1:5999 → 8080/tcp on the host"),
            "{}",
            found[0].why
        );
        // The edge publishes ports by design.
        repair.address = Address::new("service", "edge");
        assert_eq!(risks(&[repair], &[]), vec![]);
    }

    #[test]
    fn a_placement_change_of_a_swarm_service_with_a_volume_warns_that_data_may_move() {
        let placement = |node: &str| {
            Value::Map(std::collections::BTreeMap::from([
                (
                    "constraints".to_string(),
                    Value::List(vec![Value::text(format!("node.hostname == {node}"))]),
                ),
                ("spread".to_string(), Value::List(Vec::new())),
            ]))
        };
        let mut desired = Resource::new(Address::new("swarm_service", "db"), "docker")
            .with("stateful", true)
            .with("placement", placement("web-2"));
        desired.attributes.insert(
            "volumes".into(),
            Value::List(vec![Value::Map(std::collections::BTreeMap::from([
                ("kind".to_string(), Value::text("volume")),
                ("source".to_string(), Value::text("shop_pgdata")),
                ("target".to_string(), Value::text("/data")),
                ("read_only".to_string(), Value::Bool(false)),
            ]))]),
        );
        let mut moved = static_file_update("placement");
        moved.address = Address::new("swarm_service", "db");
        moved.provider = "docker".into();
        moved.changes[0].before = Some(placement("web-1"));
        moved.changes[0].after = Some(placement("web-2"));
        moved.desired = Some(desired.clone());
        let found = risks(&[moved.clone()], &[desired.clone()]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, WarningKind::DataLoss);
        assert!(
            found[0]
                .why
                .contains("(node.hostname == web-1 → node.hostname == web-2)"),
            "{}",
            found[0].why
        );
        // A service without a volume moves freely.
        let mut stateless = moved.clone();
        stateless.desired = Some(desired.with("stateful", false));
        assert_eq!(risks(&[stateless], &[]), vec![]);
    }

    #[test]
    fn removing_a_file_dropped_into_the_watched_directory_does_not_restart_the_edge() {
        assert_eq!(risks(&[static_file_update("unmanaged_files")], &[]), vec![]);
        let restart = risks(&[static_file_update("content")], &[]);
        assert_eq!(restart.len(), 1);
        assert_eq!(restart[0].kind, WarningKind::RequestsFail);
    }
}
