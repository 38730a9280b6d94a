//! Resources shaped like lowering's output (docs/resources.md), shared by the tests.

#![allow(dead_code)]

use std::collections::BTreeMap;

use stackctl_provider::{Address, Resource, Secret, Value};

pub const STACK: &str = "shop";
/// The salt of the state these tests pretend to have.
pub const SALT: &str = "test-salt";

pub fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(key, value)| (key.to_string(), value.clone()))
            .collect(),
    )
}

pub fn texts(items: &[&str]) -> Value {
    Value::List(items.iter().map(|item| Value::text(*item)).collect())
}

/// `file.traefik-static` for a production-like edge under `root`.
pub fn static_file(root: &str) -> Resource {
    Resource::new(Address::new("file", "traefik-static"), "traefik")
        .with("path", format!("{root}/traefik/traefik.yml"))
        .with("temp_dir", format!("{root}/traefik/.tmp"))
        .with("dynamic_dir", "/etc/traefik/dynamic")
        .with("http_port", 80i64)
        .with("https_port", 443i64)
        .with("redirect_https", true)
        .with(
            "resolver",
            map(&[
                ("name", Value::text("le-staging")),
                ("email", Value::text("ops@example.test")),
                ("staging", Value::Bool(true)),
            ]),
        )
        .with("min_tls_version", "VersionTLS12")
        .with("dashboard", false)
        .with("access_log", true)
        .with("admin_port", 8080i64)
}

pub fn middleware(root: &str, name: &str, kind: &str, settings: Value) -> Resource {
    Resource::new(Address::new("middleware", name), "traefik")
        .with("type", kind)
        .with("settings", settings)
        .with(
            "path",
            format!("{root}/traefik/dynamic/middleware-{name}.yml"),
        )
        .with("temp_dir", format!("{root}/traefik/.tmp"))
}

pub fn route(root: &str, name: &str, rule: &str, service: &str, middlewares: &[&str]) -> Resource {
    Resource::new(Address::new("route", name), "traefik")
        .with("rule", rule)
        .with("service", service)
        .with("middlewares", texts(middlewares))
        .with("entrypoints", texts(&["websecure"]))
        .with("path", format!("{root}/traefik/dynamic/route-{name}.yml"))
        .with("temp_dir", format!("{root}/traefik/.tmp"))
}

pub fn secret(plaintext: &str) -> Value {
    Value::Secret(Secret::new(plaintext, SALT))
}

/// The user's stack: security headers, an API rate limit, and flower behind an
/// allowlist and basic auth.
pub fn middlewares(root: &str, allow_cidr: &str, average: i64, burst: i64) -> Vec<Resource> {
    vec![
        middleware(
            root,
            "secure-headers",
            "headers",
            map(&[("sts_preload", Value::Bool(true))]),
        ),
        middleware(
            root,
            "api-limit",
            "rate_limit",
            map(&[
                ("average", Value::Integer(average)),
                ("burst", Value::Integer(burst)),
                ("period", Value::text("1s")),
            ]),
        ),
        middleware(
            root,
            "api-chain",
            "chain",
            map(&[("middlewares", texts(&["secure-headers", "api-limit"]))]),
        ),
        middleware(
            root,
            "flower-auth",
            "basic_auth",
            map(&[
                ("users", map(&[("admin", secret("s3cret"))])),
                ("realm", Value::text("flower")),
            ]),
        ),
        middleware(
            root,
            "flower-allow",
            "ip_allow_list",
            map(&[("source_range", texts(&[allow_cidr]))]),
        ),
        middleware(
            root,
            "strip-api",
            "strip_prefix",
            map(&[("prefixes", texts(&["/api"]))]),
        ),
        middleware(
            root,
            "to-https",
            "redirect_https",
            map(&[("port", Value::Integer(18443))]),
        ),
    ]
}

pub fn routes(root: &str, domain: &str) -> Vec<Resource> {
    let mut api = route(
        root,
        "api",
        &format!("Host(`{domain}`) && PathPrefix(`/api`)"),
        "api",
        &["api-chain"],
    );
    api.attributes
        .insert("priority".into(), Value::Integer(100));
    vec![
        route(
            root,
            "frontend",
            &format!("Host(`{domain}`)"),
            "frontend",
            &["secure-headers"],
        ),
        api,
        route(
            root,
            "flower",
            &format!("Host(`flower.{domain}`)"),
            "flower",
            &["secure-headers", "flower-allow", "flower-auth"],
        ),
    ]
}

pub fn settings_of(resource: &Resource) -> BTreeMap<String, Value> {
    resource
        .attributes
        .get("settings")
        .and_then(Value::as_map)
        .cloned()
        .unwrap_or_default()
}
