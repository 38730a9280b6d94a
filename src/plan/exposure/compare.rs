//! What widened and what narrowed between two surfaces.
//!
//! "Widens" means more clients can reach more of the stack, or with less in their way: a
//! new route, host, published port or firewall opening; a firewall rule that lets in
//! addresses it did not; a route on another entry point; a route that lost basic auth, an
//! allowlist, a rate limit or HSTS; an allowlist range that admits addresses it did not
//! (by CIDR containment); a higher rate limit; production certificates; the dashboard
//! turned on; a service newly reachable through the edge. "Narrows" is the opposite.
//! When a change cannot be ranked (a raw rule rewritten, a route moved to another
//! service) it counts as widening: a reviewer should look rather than be reassured.

use std::collections::BTreeMap;

use super::describe::{code, names, rate};
use super::ip_range::all_contained;
use super::surface::{
    CertificateAuthority, Certificates, FirewallRule, Middleware, PublishedPort, Route, Surface,
};
use super::{Change, Direction, ExposureChange};

/// The changes from `before` to `after`: widenings first, each group in surface order
/// (certificates, dashboard, ports, firewall rules, routes, reachable services). Entry
/// points are not compared: they listen inside the edge's container, and what the host
/// publishes of them shows in the published ports.
pub fn compare(before: &Surface, after: &Surface) -> Vec<ExposureChange> {
    let mut changes = Vec::new();
    certificates(
        before.certificates.as_ref(),
        after.certificates.as_ref(),
        &mut changes,
    );
    dashboard(before.dashboard, after.dashboard, &mut changes);
    published_ports(
        &before.published_ports,
        &after.published_ports,
        &mut changes,
    );
    firewall_rules(&before.firewall_rules, &after.firewall_rules, &mut changes);
    routes(&before.routes, &after.routes, &mut changes);
    reachable_services(before, after, &mut changes);
    internet_reach(before, after, &mut changes);
    // A stable sort keeps the surface order inside each direction.
    changes.sort_by_key(|change| change.direction);
    changes
}

fn push(
    changes: &mut Vec<ExposureChange>,
    direction: Direction,
    change: Change,
    subject: String,
    message: String,
) {
    changes.push(ExposureChange {
        direction,
        change,
        subject,
        message,
    });
}

const STATIC_FILE: &str = "file.traefik-static";

fn certificates(
    before: Option<&Certificates>,
    after: Option<&Certificates>,
    changes: &mut Vec<ExposureChange>,
) {
    // No certificates < staging < production: the further right, the more clients trust
    // what answers.
    let trust = |certificates: Option<&Certificates>| match certificates {
        None => 0,
        Some(certificates) if certificates.authority == CertificateAuthority::Staging => 1,
        Some(_) => 2,
    };
    let subject = STATIC_FILE.to_string();
    match (before, after) {
        (None, None) => {}
        (None, Some(after)) => push(
            changes,
            Direction::Widens,
            Change::Added,
            subject,
            format!("the edge gets {after}"),
        ),
        (Some(before), None) => push(
            changes,
            Direction::Narrows,
            Change::Removed,
            subject,
            format!(
                "the edge no longer gets certificates (it had {})",
                before.origin()
            ),
        ),
        (Some(before), Some(after)) if before.authority != after.authority => push(
            changes,
            if trust(Some(after)) > trust(Some(before)) {
                Direction::Widens
            } else {
                Direction::Narrows
            },
            Change::Changed,
            subject,
            format!("the edge moves to {after}"),
        ),
        (Some(_), Some(_)) => {}
    }
}

fn dashboard(before: bool, after: bool, changes: &mut Vec<ExposureChange>) {
    let subject = STATIC_FILE.to_string();
    match (before, after) {
        (false, true) => push(
            changes,
            Direction::Widens,
            Change::Added,
            subject,
            "the Traefik dashboard is turned on (entry point `traefik`)".to_string(),
        ),
        (true, false) => push(
            changes,
            Direction::Narrows,
            Change::Removed,
            subject,
            "the Traefik dashboard is turned off".to_string(),
        ),
        _ => {}
    }
}

fn published_ports(
    before: &[PublishedPort],
    after: &[PublishedPort],
    changes: &mut Vec<ExposureChange>,
) {
    let keyed = |ports: &[PublishedPort]| -> BTreeMap<(String, i64, String), PublishedPort> {
        ports
            .iter()
            .map(|port| {
                (
                    (port.service.clone(), port.host_port, port.protocol.clone()),
                    port.clone(),
                )
            })
            .collect()
    };
    let (before, after) = (keyed(before), keyed(after));
    for (key, port) in &after {
        let subject = format!("service.{}", port.service);
        let service = code(&port.service);
        match before.get(key) {
            None => {
                let warning = if port.service == "edge" {
                    ""
                } else {
                    "; only the edge should publish ports"
                };
                push(
                    changes,
                    Direction::Widens,
                    Change::Added,
                    subject,
                    format!("service {service} publishes {port}{warning}"),
                );
            }
            Some(old) if old.host_ip != port.host_ip => push(
                changes,
                if reach(port) >= reach(old) {
                    Direction::Widens
                } else {
                    Direction::Narrows
                },
                Change::Changed,
                subject,
                format!(
                    "service {service} publishes host port {}/{} on {} instead of {}",
                    port.host_port, port.protocol, port.host_ip, old.host_ip
                ),
            ),
            Some(_) => {}
        }
    }
    for (key, port) in &before {
        if !after.contains_key(key) {
            push(
                changes,
                Direction::Narrows,
                Change::Removed,
                format!("service.{}", port.service),
                format!(
                    "service {} no longer publishes host port {}/{}",
                    code(&port.service),
                    port.host_port,
                    port.protocol
                ),
            );
        }
    }
}

/// How far a published port reaches: the loopback, one address, every interface.
fn reach(port: &PublishedPort) -> u8 {
    if port.is_loopback() {
        0
    } else if matches!(port.host_ip.as_str(), "0.0.0.0" | "::" | "") {
        2
    } else {
        1
    }
}

fn firewall_rules(
    before: &[FirewallRule],
    after: &[FirewallRule],
    changes: &mut Vec<ExposureChange>,
) {
    // Rules are matched by firewall, protocol and ports, and reported in surface order.
    let same_opening = |left: &FirewallRule, right: &FirewallRule| {
        left.firewall == right.firewall
            && left.protocol == right.protocol
            && left.ports == right.ports
    };
    let find = |rules: &[FirewallRule], wanted: &FirewallRule| -> Option<FirewallRule> {
        rules
            .iter()
            .find(|rule| same_opening(rule, wanted))
            .cloned()
    };
    let ports = |rule: &FirewallRule| {
        if rule.ports == "all" {
            format!("all {} ports", rule.protocol)
        } else {
            format!("{} port {}", rule.protocol, rule.ports)
        }
    };
    for rule in after {
        let subject = format!("firewall.{}", rule.firewall);
        match find(before, rule) {
            None => push(
                changes,
                Direction::Widens,
                Change::Added,
                subject,
                format!(
                    "firewall {} lets {} in from {}",
                    code(&rule.firewall),
                    ports(rule),
                    rule.sources.join(", ")
                ),
            ),
            Some(old) if old.sources != rule.sources => push(
                changes,
                if all_contained(&rule.sources, &old.sources) {
                    Direction::Narrows
                } else {
                    Direction::Widens
                },
                Change::Changed,
                subject,
                format!(
                    "firewall {} lets {} in from {} instead of {}",
                    code(&rule.firewall),
                    ports(rule),
                    rule.sources.join(", "),
                    old.sources.join(", ")
                ),
            ),
            Some(_) => {}
        }
    }
    for rule in before {
        if find(after, rule).is_none() {
            push(
                changes,
                Direction::Narrows,
                Change::Removed,
                format!("firewall.{}", rule.firewall),
                format!(
                    "firewall {} no longer lets {} in (it let in {})",
                    code(&rule.firewall),
                    ports(rule),
                    rule.sources.join(", ")
                ),
            );
        }
    }
}

fn routes(before: &[Route], after: &[Route], changes: &mut Vec<ExposureChange>) {
    let named = |routes: &[Route]| -> BTreeMap<String, Route> {
        routes
            .iter()
            .map(|route| (route.name.clone(), route.clone()))
            .collect()
    };
    let (before, after) = (named(before), named(after));
    for (name, route) in &after {
        match before.get(name) {
            None => push(
                changes,
                Direction::Widens,
                Change::Added,
                format!("route.{name}"),
                format!("new route {}: {}", code(name), route.summary()),
            ),
            Some(old) => route_changes(old, route, changes),
        }
    }
    for (name, route) in &before {
        if !after.contains_key(name) {
            push(
                changes,
                Direction::Narrows,
                Change::Removed,
                format!("route.{name}"),
                format!(
                    "route {} is removed: {} no longer answers",
                    code(name),
                    route.place()
                ),
            );
        }
    }
}

/// What changed about one route that both surfaces have.
fn route_changes(before: &Route, after: &Route, changes: &mut Vec<ExposureChange>) {
    let subject = format!("route.{}", after.name);
    let route = code(&after.name);
    let mut found = |direction: Direction, message: String| {
        push(
            changes,
            direction,
            Change::Changed,
            subject.clone(),
            message,
        )
    };

    if before.rule != after.rule {
        found(
            answers_more(before, after),
            format!(
                "route {route} answers {} instead of {}",
                after.place(),
                before.place()
            ),
        );
    }
    for entrypoint in &after.entrypoints {
        if !before.entrypoints.contains(entrypoint) {
            found(
                Direction::Widens,
                format!(
                    "route {route} also answers on entry point {}",
                    code(entrypoint)
                ),
            );
        }
    }
    for entrypoint in &before.entrypoints {
        if !after.entrypoints.contains(entrypoint) {
            found(
                Direction::Narrows,
                format!(
                    "route {route} no longer answers on entry point {}",
                    code(entrypoint)
                ),
            );
        }
    }
    if before.service != after.service {
        found(
            Direction::Widens,
            format!(
                "route {route} leads to service {} instead of {}",
                code(&after.service),
                code(&before.service)
            ),
        );
    }

    match (before.basic_auth_users(), after.basic_auth_users()) {
        (Some(users), None) => found(
            Direction::Widens,
            format!(
                "route {route} lost basic auth (it admitted {})",
                names(&users)
            ),
        ),
        (None, Some(users)) => found(
            Direction::Narrows,
            format!("route {route} is now behind basic auth ({})", names(&users)),
        ),
        (Some(old), Some(new)) => {
            let added: Vec<&String> = new.difference(&old).collect();
            let removed: Vec<&String> = old.difference(&new).collect();
            if !added.is_empty() {
                found(
                    Direction::Widens,
                    format!(
                        "basic auth on route {route} now also admits {}",
                        names(added)
                    ),
                );
            }
            if !removed.is_empty() {
                found(
                    Direction::Narrows,
                    format!(
                        "basic auth on route {route} no longer admits {}",
                        names(removed)
                    ),
                );
            }
        }
        (None, None) => {}
    }

    match (before.allowed_ranges(), after.allowed_ranges()) {
        (Some(ranges), None) => found(
            Direction::Widens,
            format!(
                "route {route} lost its IP allowlist (it admitted only {}): every address gets through",
                ranges.join(", ")
            ),
        ),
        (None, Some(ranges)) => found(
            Direction::Narrows,
            format!(
                "route {route} now admits only {} (IP allowlist)",
                ranges.join(", ")
            ),
        ),
        (Some(old), Some(new)) if old != new => {
            let (direction, verb) = if all_contained(&new, &old) {
                (Direction::Narrows, "narrowed")
            } else {
                (Direction::Widens, "widened")
            };
            found(
                direction,
                format!(
                    "IP allowlist on route {route} {verb} from {} to {}",
                    old.join(", "),
                    new.join(", ")
                ),
            );
        }
        _ => {}
    }

    match (before.rate_limit(), after.rate_limit()) {
        (Some(limit), None) => found(
            Direction::Widens,
            format!("route {route} lost its rate limit ({})", rate(limit)),
        ),
        (None, Some(limit)) => found(
            Direction::Narrows,
            format!("route {route} is now rate limited ({})", rate(limit)),
        ),
        (Some(old), Some(new)) if rate(old) != rate(new) => {
            let (direction, verb) = if rate_raised(old, new) {
                (Direction::Widens, "raised")
            } else {
                (Direction::Narrows, "lowered")
            };
            found(
                direction,
                format!(
                    "rate limit on route {route} {verb} from {} to {}",
                    rate(old),
                    rate(new)
                ),
            );
        }
        _ => {}
    }

    match (before.hsts_seconds(), after.hsts_seconds()) {
        (old, 0) if old > 0 => found(
            Direction::Widens,
            format!("route {route} no longer sends HSTS (it sent {old} s)"),
        ),
        (0, new) if new > 0 => found(
            Direction::Narrows,
            format!("route {route} now sends HSTS ({new} s)"),
        ),
        _ => {}
    }
}

/// Whether a rewritten rule answers more requests. Only a path prefix shortened on the
/// same host is known to answer more, and only one lengthened is known to answer less;
/// anything else (another host, a raw rule) counts as answering more.
fn answers_more(before: &Route, after: &Route) -> Direction {
    if let (Some(old_host), Some(new_host)) = (&before.host, &after.host) {
        if old_host == new_host {
            let old_path = before.path_prefix.as_deref().unwrap_or("");
            let new_path = after.path_prefix.as_deref().unwrap_or("");
            if new_path.starts_with(old_path) {
                return Direction::Narrows;
            }
        }
    }
    Direction::Widens
}

/// True when `after` lets more through than `before`: a higher rate or a larger burst.
/// A period stackctl cannot read counts as raised.
fn rate_raised(before: &Middleware, after: &Middleware) -> bool {
    let (
        Middleware::RateLimit {
            average: old_average,
            burst: old_burst,
            period: old_period,
            ..
        },
        Middleware::RateLimit {
            average: new_average,
            burst: new_burst,
            period: new_period,
            ..
        },
    ) = (before, after)
    else {
        return true;
    };
    let (Some(old_millis), Some(new_millis)) = (milliseconds(old_period), milliseconds(new_period))
    else {
        return true;
    };
    // Compares new/new_period with old/old_period without dividing.
    let faster = i128::from(*new_average) * old_millis > i128::from(*old_average) * new_millis;
    // Traefik's default burst is 1.
    let larger_burst = new_burst.unwrap_or(1) > old_burst.unwrap_or(1);
    faster || larger_burst
}

/// A Traefik duration such as `1s`, `500ms`, `1m` or `1h30m`, in milliseconds.
fn milliseconds(duration: &str) -> Option<i128> {
    let mut total: i128 = 0;
    let mut rest = duration.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let number: i128 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_length = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_length] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_length..];
    }
    Some(total)
}

/// A service that gains a way out to the internet (a network no longer internal, or a
/// new network with egress) widens; one that loses it narrows. New services count from
/// nothing, so a database created on an internal network says nothing.
fn internet_reach(before: &Surface, after: &Surface, changes: &mut Vec<ExposureChange>) {
    let had: BTreeMap<&str, bool> = before
        .reach
        .iter()
        .map(|reach| (reach.service.as_str(), reach.internet))
        .collect();
    for reach in &after.reach {
        let before = had.get(reach.service.as_str()).copied();
        let subject = format!("service.{}", reach.service);
        match (before, reach.internet) {
            (Some(false), true) => push(
                changes,
                Direction::Widens,
                Change::Changed,
                subject,
                format!(
                    "service {} can now reach the internet",
                    code(&reach.service)
                ),
            ),
            (Some(true), false) => push(
                changes,
                Direction::Narrows,
                Change::Changed,
                subject,
                format!(
                    "service {} can no longer reach the internet",
                    code(&reach.service)
                ),
            ),
            _ => {}
        }
    }
}

fn reachable_services(before: &Surface, after: &Surface, changes: &mut Vec<ExposureChange>) {
    for service in &after.reachable_services {
        if !before.reachable_services.contains(service) {
            push(
                changes,
                Direction::Widens,
                Change::Added,
                format!("service.{service}"),
                format!(
                    "service {} becomes reachable through the edge",
                    code(service)
                ),
            );
        }
    }
    for service in &before.reachable_services {
        if !after.reachable_services.contains(service) {
            push(
                changes,
                Direction::Narrows,
                Change::Removed,
                format!("service.{service}"),
                format!(
                    "service {} is no longer reachable through the edge",
                    code(service)
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::milliseconds;

    #[test]
    fn traefik_durations_read_as_milliseconds() {
        assert_eq!(milliseconds("1s"), Some(1_000));
        assert_eq!(milliseconds("500ms"), Some(500));
        assert_eq!(milliseconds("1m"), Some(60_000));
        assert_eq!(milliseconds("1h30m"), Some(5_400_000));
        assert_eq!(milliseconds("soon"), None);
        assert_eq!(milliseconds(""), None);
    }
}
