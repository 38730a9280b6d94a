//! Proves the client retries transient failures, honours the server's `retry-after`,
//! and gives up within its bounds.

mod common;

use std::time::{Duration, Instant};

use common::*;
use stackctl_digitalocean::client::ClientError;
use stackctl_do_emulator::Faults;

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let emulator = start_emulator().await;
    emulator.set_faults(Faults {
        server_errors: 3,
        only: Some("GET /v2/droplets".into()),
        ..Faults::default()
    });
    let droplets = client(&emulator)
        .list_droplets_by_tag("stackctl:shop")
        .await
        .expect("the fourth attempt succeeds");
    assert!(droplets.is_empty());
    let statuses: Vec<Option<u16>> = emulator
        .exchanges()
        .iter()
        .map(|exchange| exchange.status)
        .collect();
    assert_eq!(statuses, vec![Some(500), Some(500), Some(500), Some(200)]);
    assert_contract(&emulator);
}

#[tokio::test]
async fn a_429_burst_is_waited_out_for_at_least_retry_after() {
    let emulator = start_emulator().await;
    emulator.set_faults(Faults {
        rate_limited: 2,
        retry_after_seconds: 1,
        ..Faults::default()
    });
    let started = Instant::now();
    client(&emulator)
        .list_firewalls()
        .await
        .expect("succeeds after the burst");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2),
        "two 429s with retry-after: 1 took only {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(6),
        "waited far longer than asked: {elapsed:?}"
    );
    let exchanges = emulator.exchanges();
    assert_eq!(exchanges.len(), 3);
    assert_eq!(exchanges[0].status, Some(429));
    assert_eq!(
        exchanges[0]
            .response_headers
            .get("retry-after")
            .map(String::as_str),
        Some("1")
    );
    assert!(exchanges[0]
        .response_headers
        .contains_key("ratelimit-reset"));
    assert_contract(&emulator);
}

#[tokio::test]
async fn a_rejected_post_is_retried_after_a_429() {
    let emulator = start_emulator().await;
    emulator.set_faults(Faults {
        rate_limited: 1,
        retry_after_seconds: 1,
        only: Some("POST /v2/account/keys".into()),
        ..Faults::default()
    });
    let key = client(&emulator)
        .create_ssh_key("deploy", PUBLIC_KEY)
        .await
        .expect("created after the 429");
    assert_eq!(
        emulator.state()["ssh_keys"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(key.name, "deploy");
    assert_contract(&emulator);
}

#[tokio::test]
async fn retries_stop_at_the_attempt_bound() {
    let emulator = start_emulator().await;
    emulator.set_faults(Faults {
        server_errors: 1000,
        ..Faults::default()
    });
    let started = Instant::now();
    let error = client(&emulator)
        .list_firewalls()
        .await
        .expect_err("never succeeds");
    match &error {
        ClientError::RetriesExhausted { attempts, last, .. } => {
            assert_eq!(*attempts, fast_retry().max_attempts);
            let api = last.api().expect("the last error is DigitalOcean's");
            assert_eq!((api.status, api.id.as_str()), (500, "server_error"));
            assert!(
                api.request_id.is_some(),
                "the request id is kept for support tickets"
            );
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
    assert_eq!(emulator.exchanges().len() as u32, fast_retry().max_attempts);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_non_idempotent_500_is_not_blindly_repeated() {
    let emulator = start_emulator().await;
    emulator.set_faults(Faults {
        server_errors: 1,
        only: Some("POST /v2/firewalls".into()),
        ..Faults::default()
    });
    let client = client(&emulator);
    let request = stackctl_digitalocean::api::FirewallRequest {
        name: "shop-web".into(),
        inbound_rules: vec![stackctl_digitalocean::api::InboundRule {
            protocol: "tcp".into(),
            ports: "22".into(),
            sources: stackctl_digitalocean::api::FirewallTarget {
                addresses: Some(vec!["0.0.0.0/0".into()]),
                ..Default::default()
            },
        }],
        outbound_rules: vec![],
        droplet_ids: vec![],
        tags: vec![],
    };
    // A bare POST reports the ambiguity instead of retrying.
    let error = client
        .create_firewall(&request)
        .await
        .expect_err("the 500 is returned");
    assert!(error.is_ambiguous());
    assert_eq!(emulator.exchanges().len(), 1);
    assert_contract(&emulator);
}

#[tokio::test]
async fn a_timed_out_read_is_retried() {
    let emulator = start_emulator().await;
    emulator.set_faults(Faults {
        slow_responses: 1,
        slow_response_ms: 1500,
        only: Some("GET /v2/firewalls".into()),
        ..Faults::default()
    });
    let mut config = client_config(&emulator, Some(TOKEN));
    config.retry.request_timeout = Duration::from_millis(300);
    let client = stackctl_digitalocean::Client::new(config).expect("client");
    let started = Instant::now();
    client
        .list_firewalls()
        .await
        .expect("the second attempt is answered in time");
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "did not wait for the slow answer"
    );
    assert_eq!(emulator.exchanges().len(), 2);
}
