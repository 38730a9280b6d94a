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

/// Held by the tests that open sessions: the count of desired computations is the
/// process's.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The access of a session that applies.
fn write_access() -> Access {
    Access::Write {
        command: "test".to_string(),
    }
}

/// A session over the test environment's stack.toml, state and runs directories.
fn settings_for(environment: &TestEnvironment) -> SessionSettings {
    SessionSettings {
        config_path: environment.path().join("stack.toml"),
        env_file: Some(environment.path().join(".env.example")),
        process_environment: BTreeMap::new(),
        state_directory: environment.path().join("state"),
        runs_directory: environment.path().join("runs"),
        lock_timeout: std::time::Duration::ZERO,
    }
}

#[tokio::test]
async fn a_run_computes_the_desired_resources_exactly_once() {
    let _alone = ALONE.lock().await;
    let environment = TestEnvironment::reference();
    let settings = settings_for(&environment);
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

/// Counts how often each provider of a run began and ended (the host lock taken and
/// released, for the providers that reach a host).
#[derive(Default)]
struct Counts {
    begun: std::sync::atomic::AtomicUsize,
    ended: std::sync::atomic::AtomicUsize,
}

/// A [`MemoryProvider`] whose begins and ends are counted.
struct Counted {
    inner: MemoryProvider,
    counts: Arc<Counts>,
}

#[async_trait::async_trait]
impl Provider for Counted {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn kinds(&self) -> Vec<stackctl_provider::KindSchema> {
        self.inner.kinds()
    }

    async fn read(
        &self,
        request: &stackctl_provider::ReadRequest,
    ) -> Result<Vec<stackctl_provider::LiveResource>, stackctl_provider::ProviderError> {
        self.inner.read(request).await
    }

    async fn begin_apply(
        &self,
        _context: &stackctl_provider::ApplyContext,
    ) -> Result<(), stackctl_provider::ProviderError> {
        self.counts
            .begun
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    async fn end_apply(
        &self,
        _context: &stackctl_provider::ApplyContext,
    ) -> Result<(), stackctl_provider::ProviderError> {
        self.counts
            .ended
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    async fn apply(
        &self,
        action: &stackctl_provider::Action,
        context: &stackctl_provider::ApplyContext,
    ) -> Result<stackctl_provider::ApplyOutcome, stackctl_provider::ProviderError> {
        self.inner.apply(action, context).await
    }
}

/// In-memory providers whose begins and ends are counted together; the same ones for
/// every session, so that what one applied the next one reads.
struct CountedInMemory {
    providers: Vec<Arc<dyn Provider>>,
}

impl CountedInMemory {
    fn new(counts: &Arc<Counts>) -> Self {
        let counted = |name: &'static str, kinds: &[&'static str]| -> Arc<dyn Provider> {
            Arc::new(Counted {
                inner: MemoryProvider::new(name, kinds),
                counts: counts.clone(),
            })
        };
        CountedInMemory {
            providers: vec![
                counted("docker", &["network", "volume", "image", "service"]),
                counted("traefik", &["file", "route", "middleware"]),
                counted(
                    "digitalocean",
                    &["droplet", "ssh_key", "firewall", "dns_record"],
                ),
            ],
        }
    }
}

impl BackendFactory for CountedInMemory {
    fn build(
        &self,
        _loaded: &LoadedConfig,
        _pinned_host_keys: &BTreeMap<String, String>,
        _recorded_swarm_manager: Option<&str>,
    ) -> Result<Backends, SessionError> {
        Ok(Backends {
            providers: ProviderSet::new(self.providers.iter().cloned()),
            host: None,
        })
    }
}

#[tokio::test]
async fn an_apply_without_a_question_begins_its_providers_beside_the_refresh_and_ends_each_once() {
    use std::sync::atomic::Ordering::SeqCst;
    let environment = TestEnvironment::reference();
    let settings = settings_for(&environment);
    let _alone = ALONE.lock().await;
    let counts = Arc::new(Counts::default());
    let factory = CountedInMemory::new(&counts);
    let options = ApplyOptions::default();

    // A first apply: no recorded state, no lineage to lock with yet, so the providers
    // begin only when the apply starts.
    let mut session = Session::open(&settings, &factory, write_access(), None).unwrap();
    let plan = session
        .plan_to_apply(&[], PlanMode::Apply, &options)
        .await
        .unwrap();
    assert!(plan.has_changes());
    assert_eq!(
        counts.begun.load(SeqCst),
        0,
        "nothing begins before a first apply"
    );
    session
        .apply(&plan, &options, false, &mut Quiet)
        .await
        .unwrap();
    assert_eq!(counts.begun.load(SeqCst), 3);
    assert_eq!(counts.ended.load(SeqCst), 3);
    drop(session);

    // `plan` alone begins nothing.
    let session = Session::open(&settings, &factory, Access::Read, None).unwrap();
    session.plan(false, &[], PlanMode::Apply).await.unwrap();
    assert_eq!(counts.begun.load(SeqCst), 3, "a plan takes no lock");
    drop(session);

    // With recorded state, every provider begins beside the refresh; with nothing to
    // change, the front end ends them.
    let mut session = Session::open(&settings, &factory, write_access(), None).unwrap();
    let plan = session
        .plan_to_apply(&[], PlanMode::Apply, &options)
        .await
        .unwrap();
    assert!(!plan.has_changes(), "{plan:?}");
    assert_eq!(
        counts.begun.load(SeqCst),
        6,
        "begun before the plan returned"
    );
    assert_eq!(counts.ended.load(SeqCst), 3);
    session.end_begun_early().await;
    assert_eq!(counts.ended.load(SeqCst), 6, "each ended once");
    session.end_begun_early().await;
    assert_eq!(counts.ended.load(SeqCst), 6, "never twice");
    drop(session);

    // The apply takes over what began beside the refresh: nothing begins twice, and every
    // provider that began ends, whether it had actions or not.
    let mut session = Session::open(&settings, &factory, write_access(), None).unwrap();
    let plan = session
        .plan_to_apply(&[], PlanMode::Apply, &options)
        .await
        .unwrap();
    session
        .apply(&plan, &options, false, &mut Quiet)
        .await
        .unwrap();
    assert_eq!(counts.begun.load(SeqCst), 9);
    assert_eq!(counts.ended.load(SeqCst), 9);
}

#[tokio::test]
async fn a_destroy_without_a_question_begins_only_the_providers_that_state_records() {
    use std::sync::atomic::Ordering::SeqCst;
    let environment = TestEnvironment::reference();
    let settings = settings_for(&environment);
    let _alone = ALONE.lock().await;
    let counts = Arc::new(Counts::default());
    let factory = CountedInMemory::new(&counts);
    let options = ApplyOptions {
        allow_data_loss: true,
        ..ApplyOptions::default()
    };

    // State records one network and what it stands on (the droplet and its key): the
    // docker and digitalocean providers' resources, none of traefik's.
    let network = stackctl_provider::Address::parse("network.edge").unwrap();
    let mut session = Session::open(&settings, &factory, write_access(), None).unwrap();
    let plan = session
        .plan_to_apply(std::slice::from_ref(&network), PlanMode::Apply, &options)
        .await
        .unwrap();
    session
        .apply(&plan, &options, false, &mut Quiet)
        .await
        .unwrap();
    let begun_by_the_first_apply = counts.begun.load(SeqCst);
    drop(session);

    // The destroy begins docker and digitalocean beside its refresh, and not traefik,
    // which stack.toml names but which holds nothing of this stack yet.
    let mut session = Session::open(&settings, &factory, write_access(), None).unwrap();
    let plan = session
        .plan_to_apply(&[], PlanMode::Destroy, &options)
        .await
        .unwrap();
    let providers: std::collections::BTreeSet<&str> = plan
        .actions
        .iter()
        .map(|action| action.provider.as_str())
        .collect();
    assert_eq!(providers, ["digitalocean", "docker"].into(), "{plan:?}");
    assert_eq!(
        counts.begun.load(SeqCst) - begun_by_the_first_apply,
        2,
        "only the providers state records begin"
    );
    session
        .apply(&plan, &options, false, &mut Quiet)
        .await
        .unwrap();
    assert_eq!(
        counts.begun.load(SeqCst) - begun_by_the_first_apply,
        2,
        "nothing begins twice"
    );
    assert_eq!(counts.ended.load(SeqCst), counts.begun.load(SeqCst));
}
