//! The checks a stack's routes imply, derived by a pure function.
//!
//! The user writes `[[checks]]` for what only they know (`/api/health` answers 200);
//! the routes already say enough for the rest:
//!
//! - every route answers: its host and path prefix give a status that is neither 404
//!   (no router matched) nor a gateway error (502/503/504: the backend is not there).
//!   A 401 from basic auth or a 403 from an allowlist still counts as answering;
//! - plain HTTP redirects to HTTPS (301 or 308, `Location: https://…`), once per host;
//! - the security headers a route's `headers` middleware promises (directly or through
//!   a chain) are on its answers, and the headers it removes are absent;
//! - a service no route names is not reachable through the edge: a request for
//!   `<service>.<domain>` gets 404.
//!
//! The URLs use the public names and ports; the caller points them at the edge with a
//! [`super::ResolveOverride`] (every host to the edge's address).

use std::collections::{BTreeMap, BTreeSet};

use stackctl_provider::Resource;

use super::{Check, HeaderExpectation, HeaderRule, StatusExpectation};
use crate::provider::STATIC_FILE_NAME;
use crate::spec::{HeadersSpec, MiddlewareKind, MiddlewareSpec, RouteSpec, SpecError, StaticSpec};

/// What the implied checks are derived from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeFacts {
    /// Public ports.
    pub http_port: u16,
    pub https_port: u16,
    /// The HTTP entry point redirects to HTTPS.
    pub redirect_https: bool,
    pub routes: Vec<RouteFacts>,
    /// Services with a container but no route (`django`).
    pub unrouted_services: Vec<String>,
}

/// One route as the checks see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteFacts {
    pub name: String,
    /// From the rule's first `Host(...)`; a route without one gets no checks, since no
    /// single URL represents it.
    pub host: Option<String>,
    /// From the rule's first `PathPrefix(...)` or `Path(...)`.
    pub path: Option<String>,
    /// The headers middleware on the route, resolved through chains.
    pub headers: Option<HeadersSpec>,
}

impl EdgeFacts {
    /// Gathers the facts from prepared (or merely lowered) resources: `file.traefik-static`
    /// for ports and redirection, `route.*` and `middleware.*` for the rest.
    pub fn from_resources(
        resources: &[Resource],
        unrouted_services: &[String],
    ) -> Result<EdgeFacts, SpecError> {
        let mut edge = None;
        let mut routes = Vec::new();
        let mut middlewares = BTreeMap::new();
        for resource in resources {
            let address = &resource.address;
            match address.kind() {
                "file" if address.name() == STATIC_FILE_NAME => {
                    edge = Some(StaticSpec::from_attributes(&resource.attributes)?);
                }
                "route" => routes.push(RouteSpec::from_attributes(
                    address.name(),
                    &resource.attributes,
                )?),
                "middleware" => {
                    let spec =
                        MiddlewareSpec::from_attributes(address.name(), &resource.attributes)?;
                    middlewares.insert(spec.name.clone(), spec.kind);
                }
                _ => {}
            }
        }
        let (http_port, https_port, redirect_https) = match &edge {
            Some(edge) => (edge.http_port, edge.https_port, edge.redirect_https),
            None => (80, 443, false),
        };
        Ok(EdgeFacts {
            http_port,
            https_port,
            redirect_https,
            routes: routes
                .iter()
                .map(|route| RouteFacts {
                    name: route.name.clone(),
                    host: rule_argument(&route.rule, "Host"),
                    path: rule_argument(&route.rule, "PathPrefix")
                        .or_else(|| rule_argument(&route.rule, "Path")),
                    headers: headers_of(&route.middlewares, &middlewares, 0),
                })
                .collect(),
            unrouted_services: unrouted_services.to_vec(),
        })
    }
}

/// The first `Name(`value`)` argument in a v3 rule.
fn rule_argument(rule: &str, matcher: &str) -> Option<String> {
    let mut search_from = 0;
    while let Some(found) = rule[search_from..].find(matcher) {
        let start = search_from + found;
        // A whole matcher name: `Host` must not match inside `HostRegexp` or `XHost`.
        let preceded_by_name = rule[..start]
            .chars()
            .next_back()
            .is_some_and(|character| character.is_ascii_alphanumeric());
        let rest = &rule[start + matcher.len()..];
        if !preceded_by_name {
            if let Some(argument) = rest.trim_start().strip_prefix('(') {
                let argument = argument.trim_start();
                let quote = argument
                    .chars()
                    .next()
                    .filter(|quote| matches!(quote, '`' | '"'))?;
                let inner = &argument[1..];
                let end = inner.find(quote)?;
                return Some(inner[..end].to_string());
            }
        }
        search_from = start + matcher.len();
    }
    None
}

/// The first headers middleware in `names`, looking inside chains (bounded depth: a
/// chain cycle is a configuration error Traefik reports; here it just ends the search).
fn headers_of(
    names: &[String],
    middlewares: &BTreeMap<String, MiddlewareKind>,
    depth: usize,
) -> Option<HeadersSpec> {
    if depth > 8 {
        return None;
    }
    names.iter().find_map(|name| {
        let name = name.strip_suffix("@file").unwrap_or(name);
        match middlewares.get(name)? {
            MiddlewareKind::Headers(headers) => Some(headers.clone()),
            MiddlewareKind::Chain { middlewares: inner } => {
                headers_of(inner, middlewares, depth + 1)
            }
            _ => None,
        }
    })
}

fn url(scheme: &str, host: &str, port: u16, path: &str) -> String {
    let default_port = if scheme == "https" { 443 } else { 80 };
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    if port == default_port {
        format!("{scheme}://{host}{path}")
    } else {
        format!("{scheme}://{host}:{port}{path}")
    }
}

/// The header expectations a headers middleware implies.
fn header_expectations(headers: &HeadersSpec) -> Vec<HeaderExpectation> {
    let mut expectations = Vec::new();
    if headers.sts_seconds > 0 {
        expectations.push(HeaderExpectation::new(
            "Strict-Transport-Security",
            HeaderRule::StartsWith(format!("max-age={}", headers.sts_seconds)),
        ));
    }
    if headers.content_type_nosniff {
        expectations.push(HeaderExpectation::new(
            "X-Content-Type-Options",
            HeaderRule::Equals("nosniff".to_string()),
        ));
    }
    match (&headers.custom_frame_options, headers.frame_deny) {
        (Some(value), _) => expectations.push(HeaderExpectation::new(
            "X-Frame-Options",
            HeaderRule::Equals(value.clone()),
        )),
        (None, true) => expectations.push(HeaderExpectation::new(
            "X-Frame-Options",
            HeaderRule::Equals("DENY".to_string()),
        )),
        (None, false) => {}
    }
    if let Some(policy) = &headers.referrer_policy {
        expectations.push(HeaderExpectation::new(
            "Referrer-Policy",
            HeaderRule::Equals(policy.clone()),
        ));
    }
    for removed in &headers.remove_headers {
        expectations.push(HeaderExpectation::new(removed.clone(), HeaderRule::Absent));
    }
    expectations
}

/// The checks implied by the edge's routes (see the module documentation).
pub fn implied_checks(facts: &EdgeFacts) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut hosts = BTreeSet::new();
    for route in &facts.routes {
        let Some(host) = &route.host else { continue };
        hosts.insert(host.clone());
        let path = route.path.as_deref().unwrap_or("/");
        let address = url("https", host, facts.https_port, path);
        checks.push(
            Check::get(
                format!("route {} answers", route.name),
                address.clone(),
                200,
            )
            .expecting(StatusExpectation::NoneOf(vec![404, 502, 503, 504])),
        );
        if let Some(headers) = &route.headers {
            let mut check = Check::get(
                format!("route {} sends security headers", route.name),
                address,
                200,
            )
            .expecting(StatusExpectation::Any);
            check.expect_headers = header_expectations(headers);
            if !check.expect_headers.is_empty() {
                checks.push(check);
            }
        }
    }
    if facts.redirect_https {
        for host in &hosts {
            checks.push(
                Check::get(
                    format!("http://{host} redirects to https"),
                    url("http", host, facts.http_port, "/"),
                    301,
                )
                .expecting(StatusExpectation::AnyOf(vec![301, 308]))
                .with_header(HeaderExpectation::new(
                    "Location",
                    HeaderRule::StartsWith("https://".to_string()),
                )),
            );
        }
    }
    // The apex is the shortest routed host (`example.com` rather than `flower.example.com`).
    let apex = hosts
        .iter()
        .min_by_key(|host| (host.len(), host.to_string()))
        .cloned();
    for service in &facts.unrouted_services {
        let host = match &apex {
            Some(apex) => format!("{service}.{apex}"),
            None => service.clone(),
        };
        checks.push(Check::get(
            format!("service {service} is not reachable through the edge"),
            url("https", &host, facts.https_port, "/"),
            404,
        ));
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rule_arguments() {
        let rule = "Host(`example.test`) && PathPrefix(`/api`)";
        assert_eq!(rule_argument(rule, "Host").as_deref(), Some("example.test"));
        assert_eq!(rule_argument(rule, "PathPrefix").as_deref(), Some("/api"));
        assert_eq!(rule_argument(rule, "Path"), None);
        assert_eq!(rule_argument("HostRegexp(`^.+$`)", "Host"), None);
        assert_eq!(
            rule_argument("Host( \"a.test\" )", "Host").as_deref(),
            Some("a.test")
        );
    }
}
