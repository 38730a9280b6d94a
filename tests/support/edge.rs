//! Requests through a deployed edge, for end-to-end tests: each goes to the public URL
//! (so SNI, Host and the rules see the real name) but connects to loopback.

#![allow(dead_code)]

use std::time::Duration;

use stackctl_traefik::checks::{
    run_check, Check, CheckOptions, CheckResult, Credentials, ResolveOverride, StatusExpectation,
    TlsTrust,
};

pub fn options() -> CheckOptions {
    CheckOptions {
        resolve: vec![ResolveOverride::all_to("127.0.0.1".parse().unwrap())],
        tls: TlsTrust::AcceptUntrusted,
        timeout: Duration::from_secs(5),
        ..CheckOptions::default()
    }
}

/// One GET; any status is accepted (the caller asserts).
pub async fn get(url: &str) -> CheckResult {
    let check = Check::get("probe", url, 200).expecting(StatusExpectation::Any);
    run_check(&check, &options()).await
}

pub async fn get_with_auth(url: &str, user: &str, password: &str) -> CheckResult {
    let mut check = Check::get("probe", url, 200).expecting(StatusExpectation::Any);
    check.basic_auth = Some(Credentials {
        user: user.to_string(),
        password: stackctl_provider::Secret::new(password, "test"),
    });
    run_check(&check, &options()).await
}

/// Polls `url` until `accept` holds for its answer (Traefik reloads within ~2 s).
pub async fn wait_for(url: &str, accept: impl Fn(&CheckResult) -> bool) -> CheckResult {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let result = get(url).await;
        if accept(&result) || std::time::Instant::now() > deadline {
            return result;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
