//! Snapshot tests of every rendered file, and the rules the renderers promise.

mod common;

use std::sync::Arc;

use common::*;
use stackctl_host::HostConnector;
use stackctl_provider::{Provider, Resource, Value};
use stackctl_traefik::checks::{implied_checks, EdgeFacts};
use stackctl_traefik::render_backend;
use stackctl_traefik::TraefikProvider;

const ROOT: &str = "/var/lib/stackctl/shop";

fn provider() -> TraefikProvider {
    TraefikProvider::new(Arc::new(HostConnector::local()), STACK)
}

fn prepared(mut resource: Resource) -> Resource {
    provider()
        .prepare(&mut resource)
        .unwrap_or_else(|error| panic!("prepare {}: {error}", resource.address));
    resource
}

fn content(resource: &Resource, attribute: &str) -> String {
    match resource.attributes.get(attribute) {
        Some(Value::Text(text)) => text.clone(),
        Some(Value::Secret(secret)) => secret
            .expose()
            .expect("rendered with plaintext")
            .to_string(),
        other => panic!("{} has no {attribute}: {other:?}", resource.address),
    }
}

fn prepare_error(mut resource: Resource) -> String {
    match provider().prepare(&mut resource) {
        Ok(()) => panic!("{} should not prepare", resource.address),
        Err(error) => error.to_string(),
    }
}

#[test]
fn static_file_for_a_production_edge() {
    let file = prepared(static_file(ROOT));
    insta::assert_snapshot!("static_production", content(&file, "content"));
    insta::assert_snapshot!("tls_options", content(&file, "tls_content"));
    assert_eq!(
        file.attributes.get("tls_path"),
        Some(&Value::text(format!(
            "{ROOT}/traefik/dynamic/tls-options.yml"
        )))
    );
}

#[test]
fn static_file_on_a_non_standard_https_port_redirects_to_that_port() {
    let mut file = static_file(ROOT);
    file.attributes
        .insert("https_port".into(), Value::Integer(18443));
    file.attributes
        .insert("http_port".into(), Value::Integer(18080));
    file.attributes
        .insert("dashboard".into(), Value::Bool(true));
    file.attributes
        .insert("access_log".into(), Value::Bool(false));
    file.attributes.remove("resolver");
    let text = content(&prepared(file), "content");
    insta::assert_snapshot!("static_port_18443_dashboard_no_resolver", text);
    assert!(text.contains("to: \":18443\""));
    assert!(!text.contains("certificatesResolvers"));
    assert!(!text.contains("accessLog"));
}

#[test]
fn acme_is_staging_unless_production_is_explicit() {
    let staging = content(&prepared(static_file(ROOT)), "content");
    assert!(
        staging.contains("caServer: \"https://acme-staging-v02.api.letsencrypt.org/directory\"")
    );

    let mut production = static_file(ROOT);
    production.attributes.insert(
        "resolver".into(),
        map(&[
            ("name", Value::text("le")),
            ("email", Value::text("ops@example.test")),
            ("staging", Value::Bool(false)),
        ]),
    );
    let production = content(&prepared(production), "content");
    assert!(production.contains("caServer: \"https://acme-v02.api.letsencrypt.org/directory\""));

    let mut sneaky = static_file(ROOT);
    sneaky.attributes.insert(
        "resolver".into(),
        map(&[
            ("email", Value::text("ops@example.test")),
            (
                "ca_server",
                Value::text("https://acme-v02.api.letsencrypt.org/directory"),
            ),
        ]),
    );
    let error = prepare_error(sneaky);
    assert!(error.contains("staging"), "{error}");
}

#[test]
fn every_middleware_type_renders() {
    for middleware in middlewares(ROOT, "127.0.0.1/32", 20, 40) {
        let name = middleware.address.name().to_string();
        let file = prepared(middleware);
        insta::assert_snapshot!(format!("middleware_{name}"), content(&file, "content"));
    }
}

#[test]
fn headers_middleware_defaults_and_removals() {
    let file = prepared(middleware(
        ROOT,
        "plain-headers",
        "headers",
        map(&[
            ("referrer_policy", Value::text("no-referrer")),
            ("custom_frame_options", Value::text("SAMEORIGIN")),
            ("remove_headers", texts(&["Server"])),
            (
                "custom_response_headers",
                map(&[("X-Served-By", Value::text("edge"))]),
            ),
        ]),
    ));
    insta::assert_snapshot!("middleware_headers_customised", content(&file, "content"));
}

#[test]
fn basic_auth_is_hashed_sensitive_and_stable() {
    let auth = || {
        middlewares(ROOT, "127.0.0.1/32", 20, 40)
            .into_iter()
            .find(|resource| resource.address.name() == "flower-auth")
            .expect("fixture has flower-auth")
    };
    let first = prepared(auth());
    let second = prepared(auth());
    // Shown as (sensitive) in plans, and equal on every plan for an unchanged password.
    assert!(matches!(
        first.attributes.get("content"),
        Some(Value::Secret(_))
    ));
    assert_eq!(
        first.attributes.get("content"),
        second.attributes.get("content")
    );
    assert_eq!(first.hash(), second.hash());

    let text = content(&first, "content");
    assert!(!text.contains("s3cret"), "plaintext must never be written");
    let line = text
        .lines()
        .find(|line| line.contains("admin:$2y$10$"))
        .expect("a bcrypt line");
    let hash = line
        .trim()
        .trim_start_matches("- ")
        .trim_matches('"')
        .trim_start_matches("admin:");
    assert!(bcrypt::verify("s3cret", hash).expect("a valid bcrypt hash"));

    let mut changed = auth();
    changed.attributes.insert(
        "settings".into(),
        map(&[
            ("users", map(&[("admin", secret("another"))])),
            ("realm", Value::text("flower")),
        ]),
    );
    let changed = prepared(changed);
    assert_ne!(
        first.attributes.get("content"),
        changed.attributes.get("content")
    );
}

#[test]
fn routes_render_with_and_without_optional_parts() {
    for route in routes(ROOT, "example.test") {
        let name = route.address.name().to_string();
        insta::assert_snapshot!(
            format!("route_{name}"),
            content(&prepared(route), "content")
        );
    }
    let mut bare = route(ROOT, "bare", "Host(`bare.test`)", "bare", &[]);
    bare.attributes
        .insert("tls_resolver".into(), Value::text("le-staging"));
    let text = content(&prepared(bare), "content");
    insta::assert_snapshot!("route_bare_with_resolver", text);
    assert!(!text.contains("middlewares"), "an empty list is left out");
}

#[test]
fn literal_template_braces_are_escaped_in_dynamic_files() {
    let route = route(
        ROOT,
        "braces",
        "Host(`a.test`) && Path(`/{{x}}`)",
        "svc",
        &[],
    );
    let text = content(&prepared(route), "content");
    insta::assert_snapshot!("route_with_template_braces", text);
    assert!(!text.replace("{{\"{{\"}}", "").contains("{{"));
}

#[test]
fn backend_file() {
    insta::assert_snapshot!("backend_api", render_backend("api", "http://shop-api:8000"));
}

#[test]
fn mistakes_name_the_setting() {
    let typo = prepare_error(middleware(
        ROOT,
        "limit",
        "rate_limit",
        map(&[("averge", Value::Integer(5))]),
    ));
    assert!(
        typo.contains("middleware.limit settings `averge`"),
        "{typo}"
    );
    assert!(typo.contains("average"), "{typo}");
    let no_range = prepare_error(middleware(ROOT, "allow", "ip_allow_list", map(&[])));
    assert!(no_range.contains("source_range"), "{no_range}");
    let kind = prepare_error(middleware(ROOT, "odd", "compress", map(&[])));
    assert!(kind.contains("not a middleware type"), "{kind}");
    let file = prepare_error(Resource::new(
        stackctl_provider::Address::new("file", "other"),
        "traefik",
    ));
    assert!(file.contains("does not manage"), "{file}");
}

#[test]
fn implied_checks_from_the_stack() {
    let mut resources = vec![static_file(ROOT)];
    resources.extend(middlewares(ROOT, "127.0.0.1/32", 20, 40));
    resources.extend(routes(ROOT, "example.test"));
    let facts = EdgeFacts::from_resources(&resources, &["django".to_string()]).expect("facts");
    let checks = implied_checks(&facts);
    insta::assert_json_snapshot!("implied_checks", checks);
}
