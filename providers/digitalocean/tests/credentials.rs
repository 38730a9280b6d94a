//! Proves a missing or rejected token fails before any cloud action, naming the variable.

mod common;

use common::*;
use stackctl_digitalocean::ssh_fingerprint;
use stackctl_provider::{Action, ActionKind, Provider, ProviderError, ReadRequest, Reason};

fn droplet_create() -> Action {
    let resource = droplet_resource(
        "s-1vcpu-1gb",
        &ssh_fingerprint(PUBLIC_KEY).unwrap_or_default(),
    );
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

fn assert_credentials_error(error: ProviderError) {
    match error {
        ProviderError::Credentials { message, hint } => {
            assert!(
                message.contains("DIGITALOCEAN_TOKEN") || hint.contains("DIGITALOCEAN_TOKEN"),
                "names the variable: {message} / {hint}"
            );
            assert!(!message.contains(TOKEN) && !hint.contains(TOKEN));
        }
        other => panic!("expected a credentials error, got {other:?}"),
    }
}

#[tokio::test]
async fn missing_token_fails_before_any_request() {
    let emulator = start_emulator().await;
    let provider = provider_with_token(&emulator, None);
    assert_credentials_error(
        provider
            .begin_apply(&context())
            .await
            .expect_err("no token"),
    );
    assert_credentials_error(
        provider
            .apply(&droplet_create(), &context())
            .await
            .expect_err("no token"),
    );
    let request = ReadRequest {
        stack: STACK.into(),
        salt: "salt".into(),
        desired: vec![ssh_key_resource()],
        recorded: vec![],
    };
    assert_credentials_error(provider.read(&request).await.expect_err("no token"));
    assert!(
        emulator.exchanges().is_empty(),
        "nothing was sent without a token"
    );
}

#[tokio::test]
async fn rejected_token_fails_before_any_change() {
    let emulator = start_emulator().await;
    let provider = provider_with_token(&emulator, Some("dop_v1_not_the_right_token"));
    assert_credentials_error(
        provider
            .apply(&droplet_create(), &context())
            .await
            .expect_err("refused"),
    );
    let exchanges = emulator.exchanges();
    assert_eq!(
        exchanges.len(),
        1,
        "only the credentials check was sent: {exchanges:#?}"
    );
    assert_eq!(
        (exchanges[0].method.as_str(), exchanges[0].path.as_str()),
        ("GET", "/v2/account")
    );
    assert_eq!(exchanges[0].status, Some(401));
    assert_eq!(droplet_count(&emulator), 0);
    assert_contract(&emulator);
}

#[tokio::test]
async fn a_valid_token_is_checked_once() {
    let emulator = start_emulator().await;
    let provider = provider(&emulator);
    provider.begin_apply(&context()).await.expect("valid");
    provider.begin_apply(&context()).await.expect("valid");
    let checks = emulator
        .exchanges()
        .iter()
        .filter(|exchange| exchange.path == "/v2/account")
        .count();
    assert_eq!(checks, 1);
}
