//! Proves polling slows down when `ratelimit-remaining` runs low, and that a spent
//! budget (429 without `retry-after`) is waited out until `ratelimit-reset`, bounded.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use stackctl_do_emulator::EmulatorConfig;

async fn polls_until_ready(rate_limit_per_hour: u32) -> usize {
    let emulator = start_emulator_with(EmulatorConfig {
        rate_limit_per_hour,
        activation_delay: Duration::from_millis(400),
        ..emulator_config()
    })
    .await;
    let client = client(&emulator);
    let (droplet, _) = client
        .create_droplet(&json!({"name": "web-1", "size": "s-1vcpu-1gb", "image": "docker-20-04", "region": "fra1"}))
        .await
        .expect("created");
    client
        .wait_for_droplet_ready(droplet.id, &fast_poll())
        .await
        .expect("ready");
    assert_contract(&emulator);
    emulator
        .exchanges()
        .iter()
        .filter(|exchange| exchange.path == format!("/v2/droplets/{}", droplet.id))
        .count()
}

#[tokio::test]
async fn polling_slows_down_when_the_budget_runs_low() {
    let plentiful = polls_until_ready(5000).await;
    let scarce = polls_until_ready(80).await;
    assert!(
        scarce * 2 < plentiful,
        "low budget polled {scarce} times, normal {plentiful}"
    );
}

#[tokio::test]
async fn a_spent_budget_is_reported_after_a_bounded_wait() {
    let emulator = start_emulator_with(EmulatorConfig {
        rate_limit_per_hour: 2,
        ..emulator_config()
    })
    .await;
    let mut config = client_config(&emulator, Some(TOKEN));
    config.retry.max_rate_limit_wait = Duration::from_millis(200);
    config.retry.max_total = Duration::from_secs(1);
    let client = stackctl_digitalocean::Client::new(config).expect("client");
    client.list_firewalls().await.expect("first");
    client.list_firewalls().await.expect("second");
    // The third is refused until the oldest request leaves the hour window: far beyond
    // the test policy's bounds, so the client gives up instead of hanging.
    let started = std::time::Instant::now();
    let error = client.list_firewalls().await.expect_err("budget spent");
    assert_eq!(error.status(), Some(429));
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "bounded: {:?}",
        started.elapsed()
    );
    assert_eq!(client.remaining_budget(), Some(0));
    assert_contract(&emulator);
}
