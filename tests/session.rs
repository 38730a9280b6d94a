//! The engine's session: one computation of the desired resources per run, and the same
//! plan from every front end (the CLI and the benchmark binary).

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use stackctl::apply::memory::MemoryProvider;
use stackctl::apply::{ApplyOptions, Event, ProviderSet};
use stackctl::config::LoadedConfig;
use stackctl::plan::PlanMode;
use stackctl::session::{
    self, Access, BackendFactory, Backends, RunObserver, Session, SessionError, SessionSettings,
};
use stackctl_provider::Provider;
use support::TestEnvironment;

/// In-memory providers under the real providers' names.
struct InMemory;

impl BackendFactory for InMemory {
    fn build(
        &self,
        _loaded: &LoadedConfig,
        _pinned_host_keys: &BTreeMap<String, String>,
        _recorded_swarm_manager: Option<&str>,
    ) -> Result<Backends, SessionError> {
        let providers: Vec<Arc<dyn Provider>> = vec![
            Arc::new(MemoryProvider::new(
                "docker",
                &["network", "volume", "image", "service"],
            )),
            Arc::new(MemoryProvider::new(
                "traefik",
                &["file", "route", "middleware"],
            )),
            Arc::new(MemoryProvider::new(
                "digitalocean",
                &["droplet", "ssh_key", "firewall", "dns_record"],
            )),
        ];
        Ok(Backends {
            providers: ProviderSet::new(providers),
            host: None,
        })
    }
}

struct Quiet;

impl RunObserver for Quiet {
    fn event(&mut self, _event: &Event) {}
    fn warning(&mut self, message: &str) {
        panic!("unexpected warning: {message}");
    }
    fn note(&mut self, _message: &str) {}
    fn summary(&mut self, _text: &str) {}
}

#[tokio::test]
async fn a_run_computes_the_desired_resources_exactly_once() {
    let environment = TestEnvironment::reference();
    let settings = SessionSettings {
        config_path: environment.path().join("stack.toml"),
        env_file: Some(environment.path().join(".env.example")),
        process_environment: BTreeMap::new(),
        state_directory: environment.path().join("state"),
        runs_directory: environment.path().join("runs"),
        lock_timeout: std::time::Duration::ZERO,
    };
    let before = session::desired_computations();
    let mut session = Session::open(
        &settings,
        &InMemory,
        Access::Write {
            command: "test".to_string(),
        },
        None,
    )
    .expect("the reference stack opens");
    // Every use case of an apply run: plan (offline and live), apply, drift, verify.
    let offline = session.plan(true, &[], PlanMode::Apply).await.unwrap();
    let plan = session.plan(false, &[], PlanMode::Apply).await.unwrap();
    assert_eq!(offline.actions.len(), plan.actions.len());
    assert!(plan.has_changes());
    let run = session
        .apply(&plan, &ApplyOptions::default(), false, &mut Quiet)
        .await
        .expect("the apply runs");
    assert_eq!(run.report.succeeded(), plan.actions.len());
    let drift = session.drift().await.expect("drift reads").expect("state");
    assert!(
        !drift.has_drift(),
        "nothing changed behind the session's back"
    );
    assert_eq!(
        session::desired_computations() - before,
        1,
        "one session computed its desired resources once"
    );
}

#[test]
fn the_benchmark_binary_and_the_cli_plan_the_same_stack_identically() {
    let environment = TestEnvironment::reference();
    std::fs::copy(
        environment.path().join(".env.example"),
        environment.path().join(".env"),
    )
    .unwrap();
    let cli = environment.run(&["plan", "--offline", "--format", "json"]);
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    let bench = Command::new(env!("CARGO_BIN_EXE_stackctl-bench"))
        .args(["--plan-json", "stack.toml"])
        .current_dir(environment.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", environment.path())
        .output()
        .expect("run stackctl-bench");
    assert!(
        bench.status.success(),
        "{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    let bench = String::from_utf8(bench.stdout).unwrap();
    assert!(cli.stdout.contains("\"actions\""), "a JSON plan");
    assert_eq!(cli.stdout, bench, "the benchmark plans what the CLI plans");
}
