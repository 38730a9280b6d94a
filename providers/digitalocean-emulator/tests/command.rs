//! Proves the emulator's documented start command works, its flags and environment
//! variables parse, and it refuses to listen anywhere but loopback.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stackctl_do_emulator::{Emulator, EmulatorConfig};

#[test]
fn flags_and_environment_configure_the_emulator() {
    let args: Vec<String> = [
        "--listen",
        "127.0.0.1:0",
        "--token",
        "t",
        "--public-ipv4",
        "127.0.0.2",
        "--activation-delay-ms",
        "5",
        "--fail-500",
        "2",
        "--burst-429",
        "3",
        "--retry-after",
        "2",
        "--drop-after-create",
        "1",
        "--fault-only",
        "POST /v2/droplets",
        "--allow-resize-while-on",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    let environment =
        |name: &str| (name == "STACKCTL_DO_EMULATOR_RATE_LIMIT").then(|| "40".to_string());
    let config = EmulatorConfig::from_args(&args, &environment).expect("parses");
    assert_eq!(config.token, "t");
    assert_eq!(config.public_ipv4, "127.0.0.2");
    assert_eq!(config.activation_delay, Duration::from_millis(5));
    assert_eq!(config.rate_limit_per_hour, 40);
    assert_eq!(
        (
            config.faults.server_errors,
            config.faults.rate_limited,
            config.faults.retry_after_seconds
        ),
        (2, 3, 2)
    );
    assert_eq!(config.faults.drop_after_commit, 1);
    assert_eq!(config.faults.only.as_deref(), Some("POST /v2/droplets"));
    assert!(!config.resize_requires_power_off);
    assert!(EmulatorConfig::from_args(&["--fail-500".into(), "many".into()], &|_| None).is_err());
    assert!(EmulatorConfig::from_args(&["--bogus".into()], &|_| None).is_err());
}

#[tokio::test]
async fn it_refuses_a_non_loopback_address() {
    let config = EmulatorConfig {
        listen: "0.0.0.0:0".parse().expect("address"),
        ..EmulatorConfig::default()
    };
    assert!(Emulator::start(config).await.is_err());
}

#[test]
fn the_documented_command_starts_a_working_emulator() {
    let binary = env!("CARGO_BIN_EXE_stackctl-do-emulator");
    let mut child = Command::new(binary)
        .args(["--listen", "127.0.0.1:0", "--token", "test-token"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    let started = Instant::now();
    BufReader::new(stdout).read_line(&mut line).expect("a line");
    assert!(started.elapsed() < Duration::from_secs(20));
    let base_url = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(base_url.starts_with("http://127.0.0.1:"), "{line}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let status = runtime.block_on(async {
        http_client()
            .get(format!("{base_url}/v2/account"))
            .bearer_auth("test-token")
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map(|response| response.status().as_u16())
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status.expect("answered"), 200);
}

/// A plain-HTTP client: reqwest has no crypto provider of its own in this workspace, so
/// it is given a TLS configuration (never used against the emulator's `http://`).
fn http_client() -> reqwest::Client {
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .expect("HTTP client")
}
