//! Proves a droplet create retried after an ambiguous failure never makes a second droplet.

mod common;

use common::*;
use stackctl_digitalocean::ssh_fingerprint;
use stackctl_do_emulator::Faults;
use stackctl_provider::{Action, ActionKind, ApplyOutcome, Provider, Reason};

fn create_action(resource: stackctl_provider::Resource) -> Action {
    Action {
        address: resource.address.clone(),
        provider: "digitalocean".into(),
        kind: ActionKind::Create,
        reason: Reason::New,
        changes: vec![],
        depends_on: vec![],
        desired: Some(resource),
        prior: None,
        live_id: None,
    }
}

async fn apply_key_and_droplet(
    emulator: &stackctl_do_emulator::Emulator,
) -> stackctl_provider::RecordedResource {
    let provider = provider(emulator);
    let context = context();
    provider
        .apply(&create_action(ssh_key_resource()), &context)
        .await
        .expect("key created");
    let fingerprint = ssh_fingerprint(PUBLIC_KEY).expect("fingerprint");
    match provider
        .apply(
            &create_action(droplet_resource("s-1vcpu-1gb", &fingerprint)),
            &context,
        )
        .await
        .expect("droplet created")
    {
        ApplyOutcome::Recorded(recorded) => recorded,
        other => panic!("expected a recorded droplet, got {other:?}"),
    }
}

#[tokio::test]
async fn dropped_connection_after_committed_create_leaves_exactly_one_droplet() {
    let emulator = start_emulator().await;
    emulator.set_faults(Faults {
        rate_limited: 1,
        retry_after_seconds: 1,
        drop_after_commit: 1,
        only: Some("POST /v2/droplets".into()),
        ..Faults::default()
    });
    let recorded = apply_key_and_droplet(&emulator).await;
    let droplets = emulator.droplets();
    assert_eq!(droplets.len(), 1, "exactly one droplet: {droplets:#?}");
    assert_eq!(
        recorded.id.as_deref(),
        droplets[0]["id"]
            .as_i64()
            .map(|id| id.to_string())
            .as_deref()
    );
    assert_eq!(
        recorded
            .attributes
            .get("ipv4")
            .and_then(|value| value.as_text()),
        Some("127.0.0.1")
    );
    assert_eq!(droplets[0]["status"], "active");
    // The dropped POST is in the log, unanswered; then a lookup by name found the droplet.
    let exchanges = emulator.exchanges();
    let creates: Vec<_> = exchanges
        .iter()
        .filter(|exchange| exchange.method == "POST" && exchange.path == "/v2/droplets")
        .collect();
    assert_eq!(
        creates
            .iter()
            .map(|exchange| exchange.status)
            .collect::<Vec<_>>(),
        vec![Some(429), None]
    );
    assert!(exchanges
        .iter()
        .any(|exchange| exchange.path == "/v2/droplets" && exchange.query.contains("name=web-1")));
    assert_contract(&emulator);
}

#[tokio::test]
async fn a_500_before_processing_is_followed_by_a_lookup_and_one_create() {
    let emulator = start_emulator().await;
    emulator.set_faults(Faults {
        server_errors: 2,
        only: Some("POST /v2/droplets".into()),
        ..Faults::default()
    });
    apply_key_and_droplet(&emulator).await;
    assert_eq!(droplet_count(&emulator), 1);
    assert_contract(&emulator);
}

#[tokio::test]
async fn a_timeout_after_committed_create_leaves_exactly_one_droplet() {
    let emulator = start_emulator().await;
    let mut config = client_config(&emulator, Some(TOKEN));
    config.retry.request_timeout = std::time::Duration::from_millis(300);
    let provider = stackctl_digitalocean::DigitalOceanProvider::new(
        config,
        stackctl_digitalocean::ProviderOptions { poll: fast_poll() },
    )
    .expect("provider");
    let context = context();
    provider
        .apply(&create_action(ssh_key_resource()), &context)
        .await
        .expect("key created");
    emulator.set_faults(Faults {
        slow_responses: 1,
        slow_response_ms: 1500,
        only: Some("POST /v2/droplets".into()),
        ..Faults::default()
    });
    let fingerprint = ssh_fingerprint(PUBLIC_KEY).expect("fingerprint");
    provider
        .apply(
            &create_action(droplet_resource("s-1vcpu-1gb", &fingerprint)),
            &context,
        )
        .await
        .expect("droplet created");
    assert_eq!(droplet_count(&emulator), 1);
    let creates = emulator
        .exchanges()
        .iter()
        .filter(|exchange| exchange.method == "POST" && exchange.path == "/v2/droplets")
        .count();
    assert_eq!(
        creates, 1,
        "the timed-out create was not repeated: the lookup found it"
    );
    assert_contract(&emulator);
}
