//! Edge policy findings.

mod common;

use common::*;
use stackctl_provider::Value;
use stackctl_traefik::policy::{
    check_resources, missing_dashboard_protections, production_certificates_refused,
    RouteProtection, Severity,
};

const ROOT: &str = "/srv/shop";

fn codes(findings: &[stackctl_traefik::policy::Finding]) -> Vec<(String, &'static str)> {
    findings
        .iter()
        .map(|finding| (finding.address.to_string(), finding.code))
        .collect()
}

#[test]
fn the_users_stack_passes() {
    let mut resources = vec![static_file(ROOT)];
    resources.extend(middlewares(ROOT, "10.0.0.0/8", 50, 100));
    resources.extend(routes(ROOT, "example.test"));
    let findings = check_resources(&resources, &["flower".to_string()]);
    assert!(findings.is_empty(), "{findings:?}");
}

#[test]
fn a_dashboard_route_needs_basic_auth_and_an_allowlist() {
    let mut resources = middlewares(ROOT, "10.0.0.0/8", 50, 100);
    resources.push(route(
        ROOT,
        "flower",
        "Host(`flower.example.test`)",
        "flower",
        &["secure-headers", "flower-auth"],
    ));
    let findings = check_resources(&resources, &["flower".to_string()]);
    assert_eq!(
        codes(&findings),
        vec![("route.flower".to_string(), "dashboard-unprotected")]
    );
    assert_eq!(findings[0].severity, Severity::Error);
    assert!(
        findings[0].message.contains("ip_allow_list"),
        "{}",
        findings[0].message
    );

    // Both, reached through a chain, are enough.
    resources.push(middleware(
        ROOT,
        "flower-guard",
        "chain",
        map(&[("middlewares", texts(&["flower-allow", "flower-auth"]))]),
    ));
    resources.push(route(
        ROOT,
        "guarded",
        "Host(`f.example.test`)",
        "flower",
        &["secure-headers", "flower-guard"],
    ));
    let findings = check_resources(&resources, &["flower".to_string()]);
    assert!(
        !codes(&findings).contains(&("route.guarded".to_string(), "dashboard-unprotected")),
        "{findings:?}"
    );
}

#[test]
fn middleware_order_is_warned_about() {
    let mut resources = middlewares(ROOT, "10.0.0.0/8", 50, 100);
    resources.push(route(
        ROOT,
        "flower",
        "Host(`flower.example.test`)",
        "flower",
        &["flower-auth", "flower-allow", "secure-headers"],
    ));
    let findings = check_resources(&resources, &["flower".to_string()]);
    assert_eq!(
        codes(&findings),
        vec![
            ("route.flower".to_string(), "auth-before-allowlist"),
            ("route.flower".to_string(), "headers-not-first"),
        ]
    );
    assert!(findings
        .iter()
        .all(|finding| finding.severity == Severity::Warning));
}

#[test]
fn production_certificates_are_reported() {
    let mut file = static_file(ROOT);
    file.attributes.insert(
        "resolver".into(),
        map(&[
            ("email", Value::text("ops@example.test")),
            ("staging", Value::Bool(false)),
        ]),
    );
    let findings = check_resources(&[file], &[]);
    assert_eq!(
        codes(&findings),
        vec![("file.traefik-static".to_string(), "production-certificates")]
    );
}

#[test]
fn unknown_middlewares_and_resolvers_are_errors() {
    let mut resources = vec![static_file(ROOT)];
    resources.extend(middlewares(ROOT, "10.0.0.0/8", 50, 100));
    resources.push(middleware(
        ROOT,
        "broken-chain",
        "chain",
        map(&[("middlewares", texts(&["nope"]))]),
    ));
    let mut typo = route(
        ROOT,
        "typo",
        "Host(`t.example.test`)",
        "frontend",
        &["secure-header", "noop@internal"],
    );
    typo.attributes
        .insert("tls_resolver".into(), Value::text("le"));
    resources.push(typo);
    let mut good = route(
        ROOT,
        "good",
        "Host(`g.example.test`)",
        "frontend",
        &["secure-headers"],
    );
    good.attributes
        .insert("tls_resolver".into(), Value::text("le-staging"));
    resources.push(good);
    let findings = check_resources(&resources, &[]);
    assert_eq!(
        codes(&findings),
        vec![
            ("middleware.broken-chain".to_string(), "unknown-middleware"),
            ("route.typo".to_string(), "unknown-middleware"),
            ("route.typo".to_string(), "unknown-resolver"),
        ]
    );
    assert!(findings
        .iter()
        .all(|finding| finding.severity == Severity::Error));
    assert!(
        findings[1].message.contains("`secure-header`"),
        "{}",
        findings[1].message
    );
}

#[test]
fn a_dashboard_route_lacks_the_guards_it_does_not_apply() {
    let cases: [(&[&'static str], &[&str]); 4] = [
        (&[], &["basic_auth", "ip_allow_list"]),
        (&["headers", "basic_auth"], &["ip_allow_list"]),
        (&["ip_allow_list"], &["basic_auth"]),
        (&["headers", "ip_allow_list", "basic_auth"], &[]),
    ];
    for (order, missing) in cases {
        let protection = RouteProtection {
            order: order.to_vec(),
        };
        assert_eq!(
            missing_dashboard_protections(&protection),
            missing,
            "{order:?}"
        );
    }
}

#[test]
fn production_certificates_need_an_explicit_allowance() {
    assert!(production_certificates_refused(true, false));
    assert!(!production_certificates_refused(true, true));
    assert!(!production_certificates_refused(false, false));
}
