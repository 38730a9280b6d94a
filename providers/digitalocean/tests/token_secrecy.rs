//! Proves the API token never appears in Debug or Display output, in errors, or in log
//! lines, even at trace level and through retries and refusals.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use stackctl_digitalocean::client::{Client, ClientConfig, Token};
use stackctl_digitalocean::ssh_fingerprint;
use stackctl_do_emulator::Faults;
use stackctl_provider::{Action, ActionKind, Provider, Reason};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'writer> tracing_subscriber::fmt::MakeWriter<'writer> for Captured {
    type Writer = Captured;
    fn make_writer(&'writer self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn the_token_never_appears_in_debug_display_errors_or_logs() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let emulator = start_emulator().await;
    let mut rendered = Vec::new();

    // Configuration and client objects.
    let config = client_config(&emulator, Some(TOKEN));
    rendered.push(format!("{config:?}"));
    rendered.push(format!("{} {:?}", Token::new(TOKEN), Token::new(TOKEN)));
    let client = Client::new(config).expect("client");
    rendered.push(format!("{client:?}"));

    // Retries (logged at debug) and an ambiguous create (logged at warn).
    emulator.set_faults(Faults {
        server_errors: 2,
        drop_after_commit: 1,
        only: Some("POST /v2/droplets".into()),
        ..Faults::default()
    });
    let provider = provider(&emulator);
    let context = context();
    let fingerprint = ssh_fingerprint(PUBLIC_KEY).expect("fingerprint");
    for resource in [
        ssh_key_resource(),
        droplet_resource("s-1vcpu-1gb", &fingerprint),
    ] {
        let action = Action {
            address: resource.address.clone(),
            provider: "digitalocean".into(),
            kind: ActionKind::Create,
            reason: Reason::New,
            changes: vec![],
            depends_on: vec![],
            desired: Some(resource),
            prior: None,
            live_id: None,
        };
        let outcome = provider.apply(&action, &context).await;
        rendered.push(format!("{outcome:?}"));
    }

    // Errors: exhausted retries, and a refused token.
    emulator.set_faults(Faults {
        server_errors: 100,
        ..Faults::default()
    });
    let error = client.list_firewalls().await.expect_err("exhausted");
    rendered.push(format!("{error} {error:?}"));
    emulator.set_faults(Faults::default());
    let wrong = Client::new(ClientConfig::new(
        emulator.base_url(),
        Some(Token::new(format!("{TOKEN}-wrong"))),
    ))
    .expect("client");
    let refused = wrong.check_credentials().await.expect_err("refused");
    rendered.push(format!("{refused} {refused:?}"));
    let provider_error = stackctl_digitalocean::DigitalOceanProvider::new(
        ClientConfig::new(
            emulator.base_url(),
            Some(Token::new(format!("{TOKEN}-wrong"))),
        ),
        Default::default(),
    )
    .expect("provider")
    .check_credentials()
    .await
    .expect_err("refused");
    rendered.push(format!("{provider_error} {provider_error:?}"));

    let logs =
        String::from_utf8(captured.0.lock().expect("log buffer").clone()).expect("utf-8 logs");
    assert!(
        logs.contains("retrying DigitalOcean request"),
        "the logs were captured: {logs}"
    );
    assert!(logs.contains("create may have happened"), "{logs}");
    for text in rendered.iter().chain(std::iter::once(&logs)) {
        assert!(!text.contains(TOKEN), "the token leaked into: {text}");
        assert!(
            !text.contains("emulator_token"),
            "part of the token leaked into: {text}"
        );
    }
}
