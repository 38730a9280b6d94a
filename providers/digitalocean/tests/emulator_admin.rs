//! Proves the emulator's runtime fault control and drift endpoints answer, driven
//! partly through the provider's client (which is why this test lives here and not in
//! the emulator's own crate).

mod common;

use common::*;
use serde_json::{json, Value as Json};

#[tokio::test]
async fn admin_endpoints_control_faults_and_make_drift() {
    let emulator = start_emulator().await;
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(stackctl_digitalocean::client::tls_config().unwrap())
        .build()
        .unwrap();
    let base = emulator.base_url();
    let post = |path: &str, body: Json| {
        http.post(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let response = post("/_emulator/faults", json!({"server_errors": 1}))
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    assert_eq!(emulator.faults().server_errors, 1);
    let status = http
        .get(format!("{base}/v2/regions"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answer")
        .status();
    assert_eq!(status, 500);
    let (droplet, _) = client(&emulator)
        .create_droplet(&json!({"name": "web-1", "size": "s-1vcpu-1gb", "image": "docker-20-04", "region": "fra1"}))
        .await
        .expect("created");
    let resized: Json = post(
        &format!("/_emulator/droplets/{}/resize-out-of-band", droplet.id),
        json!({"size": "s-2vcpu-4gb"}),
    )
    .await
    .expect("answer")
    .json()
    .await
    .expect("json");
    assert_eq!(resized["droplet"]["size_slug"], "s-2vcpu-4gb");
    let state: Json = http
        .get(format!("{base}/_emulator/state"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(state["droplets"][0]["size_slug"], "s-2vcpu-4gb");
    let unauthorized = http
        .get(format!("{base}/_emulator/state"))
        .send()
        .await
        .expect("answer")
        .status();
    assert_eq!(unauthorized, 401);
}
