//! Edge policy: the Traefik knowledge behind the edge's rules, in one place.
//!
//! - a route to a dashboard-type service (Flower, say) must pass through basic auth
//!   **and** an IP allowlist, directly or inside a chain
//!   ([`missing_dashboard_protections`]);
//! - certificates come from Let's Encrypt staging unless production was explicitly
//!   allowed ([`production_certificates_refused`]).
//!
//! `stackctl validate` applies those two rules to stack.toml through the functions
//! named above and words the messages itself, since only the engine knows the
//! `file:line:column` each route came from.
//!
//! [`check_resources`] applies the same rules to lowered resources, plus what only
//! lowered resources show: every middleware a route or chain names exists, a route's
//! certificate resolver is the one the edge defines (Traefik otherwise drops the route,
//! or silently serves its self-signed certificate), and middleware order, as observed
//! in Traefik 3.7 (`headers` must come first or 401/403/429 answers go out without HSTS
//! and friends; an allowlist placed after basic auth lets outsiders try passwords —
//! warnings, not errors). The engine does not run it yet: its findings carry no
//! position in stack.toml. A production resolver is reported there as a warning,
//! because in lowered resources `staging = false` is itself the explicit allowance
//! ([`crate::spec::StaticSpec::from_attributes`] refuses a production `ca_server`
//! without it).
//!
//! Middleware names that point outside the file provider (`x@internal`) are not
//! resolved and count as neither auth nor allowlist.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use stackctl_provider::{Address, Resource};

use crate::provider::STATIC_FILE_NAME;
use crate::spec::{MiddlewareKind, MiddlewareSpec, RouteSpec, StaticSpec};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// One policy finding about one resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub address: Address,
    pub severity: Severity,
    /// A stable code for tests and JSON output (`dashboard-unprotected`, …).
    pub code: &'static str,
    pub message: String,
}

/// What a route's middlewares do, in the order requests meet them (chains expanded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteProtection {
    /// Middleware types in request order, e.g. `["headers", "ip_allow_list", "basic_auth"]`.
    pub order: Vec<&'static str>,
}

impl RouteProtection {
    pub fn has(&self, type_name: &str) -> bool {
        self.order.contains(&type_name)
    }

    fn position(&self, type_name: &str) -> Option<usize> {
        self.order.iter().position(|found| *found == type_name)
    }
}

/// The middleware types a route to a dashboard must apply: dashboards leak task
/// arguments and can revoke work, so a password alone (guessable) or an allowlist
/// alone (shared office networks) is not enough.
pub const DASHBOARD_PROTECTIONS: [&str; 2] = ["basic_auth", "ip_allow_list"];

/// The [`DASHBOARD_PROTECTIONS`] a route to a dashboard lacks, in that order; empty
/// when it is protected.
pub fn missing_dashboard_protections(protection: &RouteProtection) -> Vec<&'static str> {
    DASHBOARD_PROTECTIONS
        .into_iter()
        .filter(|type_name| !protection.has(type_name))
        .collect()
}

/// True when a stack asks Let's Encrypt production for certificates without allowing
/// it explicitly. Staging is the default so that a misconfigured stack cannot burn
/// through production's strict rate limits.
pub fn production_certificates_refused(
    asks_for_production: bool,
    explicitly_allowed: bool,
) -> bool {
    asks_for_production && !explicitly_allowed
}

/// Expands a route's middleware list through chains (bounded depth; unknown names and
/// other providers' middlewares are skipped).
pub fn route_protection(
    route_middlewares: &[String],
    middlewares: &BTreeMap<String, MiddlewareKind>,
) -> RouteProtection {
    fn expand(
        names: &[String],
        middlewares: &BTreeMap<String, MiddlewareKind>,
        depth: usize,
        order: &mut Vec<&'static str>,
    ) {
        if depth > 8 {
            return;
        }
        for name in names {
            let name = name.strip_suffix("@file").unwrap_or(name);
            match middlewares.get(name) {
                Some(MiddlewareKind::Chain { middlewares: inner }) => {
                    expand(inner, middlewares, depth + 1, order)
                }
                Some(kind) => order.push(kind.type_name()),
                None => {}
            }
        }
    }
    let mut order = Vec::new();
    expand(route_middlewares, middlewares, 0, &mut order);
    RouteProtection { order }
}

/// Checks the edge's resources. `dashboard_services` names the services marked as
/// dashboards in stack.toml. Resources that do not parse are left to `prepare`, which
/// reports them with the setting's name.
pub fn check_resources(resources: &[Resource], dashboard_services: &[String]) -> Vec<Finding> {
    let mut middlewares = BTreeMap::new();
    let mut middleware_names = BTreeSet::new();
    let mut chains = Vec::new();
    let mut resolver_name = None;
    let mut routes = Vec::new();
    let mut findings = Vec::new();
    for resource in resources {
        let address = &resource.address;
        match address.kind() {
            "middleware" => {
                middleware_names.insert(address.name().to_string());
                if let Ok(spec) =
                    MiddlewareSpec::from_attributes(address.name(), &resource.attributes)
                {
                    if let MiddlewareKind::Chain { middlewares: inner } = &spec.kind {
                        chains.push((address.clone(), inner.clone()));
                    }
                    middlewares.insert(spec.name, spec.kind);
                }
            }
            "route" => {
                if let Ok(spec) = RouteSpec::from_attributes(address.name(), &resource.attributes) {
                    routes.push((address.clone(), spec));
                }
            }
            "file" if address.name() == STATIC_FILE_NAME => {
                if let Ok(edge) = StaticSpec::from_attributes(&resource.attributes) {
                    resolver_name =
                        Some(edge.resolver.as_ref().map(|resolver| resolver.name.clone()));
                    if let Some(resolver) = edge.resolver.filter(|resolver| !resolver.staging) {
                        findings.push(Finding {
                            address: address.clone(),
                            severity: Severity::Warning,
                            code: "production-certificates",
                            message: format!(
                                "resolver `{}` requests production certificates from {} (allowed by `staging = false`)",
                                resolver.name, resolver.ca_server
                            ),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    // A reference Traefik cannot resolve drops the router (404) or leaves a chain
    // broken; names with `@` belong to other providers and are not checked.
    let unknown = |names: &[String]| -> Vec<String> {
        names
            .iter()
            .filter(|name| !name.contains('@') && !middleware_names.contains(name.as_str()))
            .cloned()
            .collect()
    };
    for (address, inner) in &chains {
        for missing in unknown(inner) {
            findings.push(Finding {
                address: address.clone(),
                severity: Severity::Error,
                code: "unknown-middleware",
                message: format!(
                    "chain `{}` names `{missing}`, which is not a middleware of this stack",
                    address.name()
                ),
            });
        }
    }
    for (address, route) in &routes {
        for missing in unknown(&route.middlewares) {
            findings.push(Finding {
                address: address.clone(),
                severity: Severity::Error,
                code: "unknown-middleware",
                message: format!(
                    "route `{}` names `{missing}`, which is not a middleware of this stack; Traefik would drop the route (404)",
                    route.name
                ),
            });
        }
        // Only checked when the static file is among the resources.
        if let (Some(wanted), Some(defined)) = (&route.tls_resolver, &resolver_name) {
            if defined.as_deref() != Some(wanted.as_str()) {
                findings.push(Finding {
                    address: address.clone(),
                    severity: Severity::Error,
                    code: "unknown-resolver",
                    message: format!(
                        "route `{}` asks for certificates from resolver `{wanted}`, but the edge defines {}; Traefik would serve its self-signed default certificate",
                        route.name,
                        match defined {
                            Some(name) => format!("only `{name}`"),
                            None => "no resolver".to_string(),
                        }
                    ),
                });
            }
        }
    }
    for (address, route) in routes {
        let protection = route_protection(&route.middlewares, &middlewares);
        if dashboard_services.contains(&route.service) {
            let missing = missing_dashboard_protections(&protection);
            if !missing.is_empty() {
                findings.push(Finding {
                    address: address.clone(),
                    severity: Severity::Error,
                    code: "dashboard-unprotected",
                    message: format!(
                        "route `{}` leads to the dashboard service `{}` but has no {} middleware; a dashboard route needs both basic_auth and ip_allow_list",
                        route.name,
                        route.service,
                        missing.join(" and no ")
                    ),
                });
            }
        }
        if let Some(headers) = protection.position("headers") {
            if headers > 0 {
                findings.push(Finding {
                    address: address.clone(),
                    severity: Severity::Warning,
                    code: "headers-not-first",
                    message: format!(
                        "route `{}` runs `{}` before its headers middleware, so answers it rejects (401/403/429) go out without the security headers; put the headers middleware first",
                        route.name,
                        protection.order[..headers].join(", ")
                    ),
                });
            }
        }
        if let (Some(auth), Some(allow)) = (
            protection.position("basic_auth"),
            protection.position("ip_allow_list"),
        ) {
            if auth < allow {
                findings.push(Finding {
                    address,
                    severity: Severity::Warning,
                    code: "auth-before-allowlist",
                    message: format!(
                        "route `{}` asks for a password before checking the allowlist, so clients outside it can still try passwords; put ip_allow_list before basic_auth",
                        route.name
                    ),
                });
            }
        }
    }
    findings.sort_by(|left, right| {
        (&left.address, left.severity, left.code).cmp(&(&right.address, right.severity, right.code))
    });
    findings
}
