//! The public surface of a stack, read from resources' attributes: what a client on the
//! internet can reach and what stands in its way.
//!
//! It is read from the attributes the lowering produces (src/lower.rs), not from
//! stack.toml, so the same function reads recorded state (the surface now) and the
//! resources a plan leaves behind (the surface after apply):
//!
//! - `file.traefik-static`: the edge's entry points (`http_port` → `web`, `https_port` →
//!   `websecure`, `admin_port` → `traefik`), `dashboard`, and `resolver` (`staging`,
//!   `ca_server`) for certificates;
//! - `service.*` `ports`: host ports a container publishes (only the edge should);
//! - `firewall.*` `inbound_rules`: which addresses the cloud firewall lets in, per port;
//! - `route.*`: `rule`, `entrypoints`, `service`, and `middlewares` by name;
//! - `middleware.*`: `type` and `settings`; a `chain` is flattened into its members.
//!
//! Basic auth passwords are never read: only the user names (the keys of `users`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use stackctl_provider::{Address, Attributes, Value};

/// Resources' attributes by address: recorded state, or what a plan leaves behind.
pub type AttributesByAddress<'a> = BTreeMap<&'a Address, &'a Attributes>;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Surface {
    /// The edge's entry points, in the order `web`, `websecure`, `traefik`.
    pub entrypoints: Vec<Entrypoint>,
    /// Whether Traefik serves its dashboard (on the `traefik` entry point).
    pub dashboard: bool,
    /// The ACME resolver the edge gets certificates from, if any.
    pub certificates: Option<Certificates>,
    /// Host ports published by any service, by service then port.
    pub published_ports: Vec<PublishedPort>,
    /// What the cloud firewalls let in, by firewall, protocol and ports.
    pub firewall_rules: Vec<FirewallRule>,
    /// Routes by name.
    pub routes: Vec<Route>,
    /// Names of the services some route leads to, sorted.
    pub reachable_services: Vec<String>,
    /// What each service can reach (the edge, the internet, other services), by name.
    /// Absent from plans saved before it existed.
    #[serde(default)]
    pub reach: Vec<super::reach::ServiceReach>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entrypoint {
    /// `web` (HTTP), `websecure` (HTTPS) or `traefik` (ping and the admin API).
    pub name: String,
    /// The port inside the edge's container; `published_ports` says what the host maps.
    pub port: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificates {
    pub resolver: String,
    pub authority: CertificateAuthority,
    pub ca_server: String,
}

/// Staging certificates are not trusted by browsers; production ones are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateAuthority {
    Staging,
    Production,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublishedPort {
    /// The service's name (`edge` for `service.edge`).
    pub service: String,
    pub host_port: i64,
    pub protocol: String,
    /// `0.0.0.0` for every interface, `127.0.0.1` for the host's loopback only.
    pub host_ip: String,
    pub container_port: i64,
}

impl PublishedPort {
    /// Reachable from the host alone, not from the network.
    pub fn is_loopback(&self) -> bool {
        self.host_ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
            || self.host_ip == "localhost"
    }
}

/// One inbound rule of a cloud firewall.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallRule {
    /// The firewall's name (`web` for `firewall.web`).
    pub firewall: String,
    pub protocol: String,
    /// `22`, `8000-8100` or `all`.
    pub ports: String,
    /// Address ranges let in: `0.0.0.0/0` and `::/0` mean everyone.
    pub sources: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The route's name (`api` for `route.api`).
    pub name: String,
    /// The Traefik rule as written to the route's file.
    pub rule: String,
    /// The host and path prefix when the rule is the plain `Host(…) && PathPrefix(…)`
    /// that `host` and `path_prefix` in stack.toml lower to; absent for a raw rule.
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    pub entrypoints: Vec<String>,
    /// The name of the service the route leads to.
    pub service: String,
    /// In the order a request meets them, chains flattened into their members.
    pub middlewares: Vec<Middleware>,
}

/// One middleware as a reviewer needs it. `name` is the middleware's own name (a chain's
/// member keeps its name).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Middleware {
    BasicAuth {
        name: String,
        /// User names only: passwords never leave the middleware's resource.
        users: Vec<String>,
    },
    IpAllowList {
        name: String,
        source_range: Vec<String>,
    },
    RateLimit {
        name: String,
        average: i64,
        burst: Option<i64>,
        period: String,
    },
    Headers {
        name: String,
        /// `Strict-Transport-Security` max-age; 0 means no HSTS.
        sts_seconds: i64,
        sts_include_subdomains: bool,
        frame_deny: bool,
        content_type_nosniff: bool,
    },
    RedirectHttps {
        name: String,
    },
    StripPrefix {
        name: String,
        prefixes: Vec<String>,
    },
    /// Named by a route or chain but not among the resources, or of a type this
    /// description does not know.
    Unknown {
        name: String,
    },
}

impl Middleware {
    pub fn name(&self) -> &str {
        match self {
            Middleware::BasicAuth { name, .. }
            | Middleware::IpAllowList { name, .. }
            | Middleware::RateLimit { name, .. }
            | Middleware::Headers { name, .. }
            | Middleware::RedirectHttps { name }
            | Middleware::StripPrefix { name, .. }
            | Middleware::Unknown { name } => name,
        }
    }
}

impl Route {
    /// Users basic auth admits, or `None` when the route has no basic auth.
    pub fn basic_auth_users(&self) -> Option<BTreeSet<String>> {
        let mut found: Option<BTreeSet<String>> = None;
        for middleware in &self.middlewares {
            if let Middleware::BasicAuth { users, .. } = middleware {
                found
                    .get_or_insert_with(BTreeSet::new)
                    .extend(users.iter().cloned());
            }
        }
        found
    }

    /// The ranges the route's IP allowlists admit, or `None` without an allowlist.
    pub fn allowed_ranges(&self) -> Option<Vec<String>> {
        let mut found: Option<Vec<String>> = None;
        for middleware in &self.middlewares {
            if let Middleware::IpAllowList { source_range, .. } = middleware {
                found
                    .get_or_insert_with(Vec::new)
                    .extend(source_range.iter().cloned());
            }
        }
        found
    }

    /// The first rate limit a request meets.
    pub fn rate_limit(&self) -> Option<&Middleware> {
        self.middlewares
            .iter()
            .find(|middleware| matches!(middleware, Middleware::RateLimit { .. }))
    }

    /// HSTS max-age of the first headers middleware that sets one; 0 without.
    pub fn hsts_seconds(&self) -> i64 {
        self.middlewares
            .iter()
            .find_map(|middleware| match middleware {
                Middleware::Headers { sts_seconds, .. } if *sts_seconds > 0 => Some(*sts_seconds),
                _ => None,
            })
            .unwrap_or(0)
    }
}

/// Reads the public surface from resources' attributes.
pub fn read(resources: &AttributesByAddress<'_>) -> Surface {
    let of_kind = |kind: &'static str| {
        resources
            .iter()
            .filter(move |(address, _)| address.kind() == kind)
    };
    let middlewares: BTreeMap<&str, &Attributes> = of_kind("middleware")
        .map(|(address, attributes)| (address.name(), *attributes))
        .collect();

    let mut surface = Surface {
        reach: super::reach::read(resources),
        ..Surface::default()
    };
    if let Some(static_file) = resources.get(&Address::new("file", "traefik-static")) {
        for (name, attribute) in [
            ("web", "http_port"),
            ("websecure", "https_port"),
            ("traefik", "admin_port"),
        ] {
            if let Some(port) = integer(static_file, attribute) {
                surface.entrypoints.push(Entrypoint {
                    name: name.to_string(),
                    port,
                });
            }
        }
        surface.dashboard = static_file
            .get("dashboard")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        surface.certificates = static_file.get("resolver").and_then(certificates);
    }
    for (address, attributes) in of_kind("service") {
        for port in attributes
            .get("ports")
            .and_then(Value::as_list)
            .unwrap_or_default()
        {
            if let Some(port) = published_port(address.name(), port) {
                surface.published_ports.push(port);
            }
        }
    }
    surface.published_ports.sort();
    for (address, attributes) in of_kind("firewall") {
        for rule in attributes
            .get("inbound_rules")
            .and_then(Value::as_list)
            .unwrap_or_default()
        {
            if let Some(rule) = rule.as_map() {
                surface.firewall_rules.push(FirewallRule {
                    firewall: address.name().to_string(),
                    protocol: text(rule, "protocol"),
                    ports: text(rule, "ports"),
                    sources: texts(rule, "sources"),
                });
            }
        }
    }
    // Ports by number (`80` before `443`), then as written (`all`, ranges).
    surface.firewall_rules.sort_by_key(|rule| {
        let first_port: u32 = rule
            .ports
            .split('-')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or(u32::MAX);
        (
            rule.firewall.clone(),
            rule.protocol.clone(),
            first_port,
            rule.ports.clone(),
        )
    });
    for (address, attributes) in of_kind("route") {
        surface
            .routes
            .push(route(address.name(), attributes, &middlewares));
    }
    surface.reachable_services = surface
        .routes
        .iter()
        .map(|route| route.service.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    surface
}

fn certificates(resolver: &Value) -> Option<Certificates> {
    let resolver = resolver.as_map()?;
    let text = |name: &str| {
        resolver
            .get(name)
            .and_then(Value::as_text)
            .unwrap_or_default()
            .to_string()
    };
    let ca_server = text("ca_server");
    // `staging` says it outright; an older record may only have the CA's address.
    let staging = match resolver.get("staging").and_then(Value::as_bool) {
        Some(staging) => staging,
        None => ca_server.contains("staging"),
    };
    Some(Certificates {
        resolver: text("name"),
        authority: if staging {
            CertificateAuthority::Staging
        } else {
            CertificateAuthority::Production
        },
        ca_server,
    })
}

fn published_port(service: &str, port: &Value) -> Option<PublishedPort> {
    let port = port.as_map()?;
    let number = |name: &str| port.get(name).and_then(Value::as_integer);
    let text = |name: &str, default: &str| {
        port.get(name)
            .and_then(Value::as_text)
            .unwrap_or(default)
            .to_string()
    };
    Some(PublishedPort {
        service: service.to_string(),
        host_port: number("host_port")?,
        protocol: text("protocol", "tcp"),
        host_ip: text("host_ip", "0.0.0.0"),
        container_port: number("container_port").unwrap_or_default(),
    })
}

fn route(name: &str, attributes: &Attributes, middlewares: &BTreeMap<&str, &Attributes>) -> Route {
    let rule = text(attributes, "rule");
    let (host, path_prefix) = match host_and_path(&rule) {
        Some((host, path_prefix)) => (Some(host), path_prefix),
        None => (None, None),
    };
    let mut flattened = Vec::new();
    for middleware in texts(attributes, "middlewares") {
        flatten(&middleware, middlewares, &mut Vec::new(), &mut flattened);
    }
    Route {
        name: name.to_string(),
        rule,
        host,
        path_prefix,
        entrypoints: texts(attributes, "entrypoints"),
        service: text(attributes, "service"),
        middlewares: flattened,
    }
}

/// `Host(`example.com`)` or `Host(`example.com`) && PathPrefix(`/api`)`: what `host` and
/// `path_prefix` lower to. Any other rule is kept raw.
fn host_and_path(rule: &str) -> Option<(String, Option<String>)> {
    let rest = rule.strip_prefix("Host(`")?;
    let (host, rest) = rest.split_once("`)")?;
    if host.contains('`') {
        return None;
    }
    if rest.is_empty() {
        return Some((host.to_string(), None));
    }
    let path = rest.strip_prefix(" && PathPrefix(`")?.strip_suffix("`)")?;
    if path.contains('`') {
        return None;
    }
    Some((host.to_string(), Some(path.to_string())))
}

/// Appends `name`'s description to `found`, a chain's members in its place. `visiting`
/// holds the chains being expanded, so a chain that names itself ends instead of looping.
fn flatten(
    name: &str,
    middlewares: &BTreeMap<&str, &Attributes>,
    visiting: &mut Vec<String>,
    found: &mut Vec<Middleware>,
) {
    let unknown = || Middleware::Unknown {
        name: name.to_string(),
    };
    let Some(attributes) = middlewares.get(name) else {
        found.push(unknown());
        return;
    };
    let empty = Attributes::new();
    let settings = attributes
        .get("settings")
        .and_then(Value::as_map)
        .unwrap_or(&empty);
    let name = name.to_string();
    let described = match text(attributes, "type").as_str() {
        "chain" => {
            if visiting.contains(&name) {
                found.push(Middleware::Unknown { name });
                return;
            }
            visiting.push(name);
            for member in texts(settings, "middlewares") {
                flatten(&member, middlewares, visiting, found);
            }
            visiting.pop();
            return;
        }
        "basic_auth" => Middleware::BasicAuth {
            name,
            users: settings
                .get("users")
                .and_then(Value::as_map)
                .map(|users| users.keys().cloned().collect())
                .unwrap_or_default(),
        },
        "ip_allow_list" => Middleware::IpAllowList {
            name,
            source_range: texts(settings, "source_range"),
        },
        "rate_limit" => Middleware::RateLimit {
            name,
            average: integer(settings, "average").unwrap_or_default(),
            burst: integer(settings, "burst"),
            period: settings
                .get("period")
                .and_then(Value::as_text)
                .unwrap_or("1s")
                .to_string(),
        },
        "headers" => Middleware::Headers {
            name,
            sts_seconds: integer(settings, "sts_seconds").unwrap_or_default(),
            sts_include_subdomains: flag(settings, "sts_include_subdomains"),
            frame_deny: flag(settings, "frame_deny"),
            content_type_nosniff: flag(settings, "content_type_nosniff"),
        },
        "redirect_https" => Middleware::RedirectHttps { name },
        "strip_prefix" => Middleware::StripPrefix {
            name,
            prefixes: texts(settings, "prefixes"),
        },
        _ => Middleware::Unknown { name },
    };
    found.push(described);
}

fn text(attributes: &Attributes, name: &str) -> String {
    attributes
        .get(name)
        .and_then(Value::as_text)
        .unwrap_or_default()
        .to_string()
}

fn texts(attributes: &Attributes, name: &str) -> Vec<String> {
    attributes
        .get(name)
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_text)
        .map(str::to_string)
        .collect()
}

fn integer(attributes: &Attributes, name: &str) -> Option<i64> {
    attributes.get(name).and_then(Value::as_integer)
}

fn flag(attributes: &Attributes, name: &str) -> bool {
    attributes
        .get(name)
        .and_then(Value::as_bool)
        .unwrap_or(false)
}
