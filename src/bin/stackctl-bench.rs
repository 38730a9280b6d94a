//! `stackctl-bench STACK.toml [PARALLELISM]`: the apply half of `bench/plan-scale`.
//! `stackctl-bench --plan-json STACK.toml`: the offline plan it makes, as JSON.
//!
//! Runs the same session as the CLI (config → external inputs → desired resources,
//! lowered and prepared by the real providers → plan against an empty state), then applies
//! the plan through in-memory providers that imitate `docker`, `traefik` and
//! `digitalocean` — no Docker, no network — with the state in a temporary directory, the
//! real journal (one fsynced line per action, folded into the state file once at the end)
//! and the real run folder. Prints one JSON object of timings on stdout.
//!
//! Not a test and not a user command: it exists so the benchmark measures the engine's
//! executor and journal, not a provider; `--plan-json` lets a test show that it plans
//! exactly what `stackctl plan --offline` plans.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use stackctl::apply::memory::MemoryProvider;
use stackctl::apply::{ApplyOptions, Event, ProviderSet};
use stackctl::cli::providers::ProviderOptions;
use stackctl::config::LoadedConfig;
use stackctl::plan::PlanMode;
use stackctl::session::{
    self, Access, BackendFactory, Backends, RunObserver, Session, SessionError, SessionSettings,
};
use stackctl_provider::Provider;

/// A temporary directory removed on drop (the library has no tempfile dependency).
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        let path =
            std::env::temp_dir().join(format!("stackctl-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The CLI's providers, each wrapped so that it plans like the real one and applies in
/// memory.
struct InMemory;

impl BackendFactory for InMemory {
    fn build(
        &self,
        loaded: &LoadedConfig,
        pinned_host_keys: &BTreeMap<String, String>,
        recorded_swarm_manager: Option<&str>,
    ) -> Result<Backends, SessionError> {
        let real = stackctl::cli::providers::build(
            loaded,
            &ProviderOptions::default(),
            pinned_host_keys,
            recorded_swarm_manager,
        )?;
        let imitations = real.providers.all().map(|provider| {
            Arc::new(MemoryProvider::imitating(provider.clone())) as Arc<dyn Provider>
        });
        Ok(Backends {
            providers: ProviderSet::new(imitations),
            host: None,
        })
    }
}

/// The benchmark shows nothing while it applies.
struct Silent;

impl RunObserver for Silent {
    fn event(&mut self, _event: &Event) {}
    fn warning(&mut self, message: &str) {
        eprintln!("stackctl-bench: warning: {message}");
    }
    fn note(&mut self, _message: &str) {}
    fn summary(&mut self, _text: &str) {}
}

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("stackctl-bench: {message}");
    std::process::exit(1)
}

fn seconds(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}

fn describe(error: SessionError) -> String {
    match error {
        SessionError::Config(errors) => {
            stackctl::config::diagnostic::render(&errors.diagnostics, &errors.sources, false)
        }
        other => other.to_string(),
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let (plan_only, arguments) = match arguments.split_first() {
        Some((first, rest)) if first == "--plan-json" => (true, rest.to_vec()),
        _ => (false, arguments),
    };
    let mut arguments = arguments.into_iter();
    let Some(stack) = arguments.next() else {
        fail("usage: stackctl-bench [--plan-json] STACK.toml [PARALLELISM]");
    };
    let parallelism: usize = arguments
        .next()
        .map(|text| {
            text.parse()
                .unwrap_or_else(|_| fail("PARALLELISM is a number"))
        })
        .unwrap_or(ApplyOptions::default().parallelism);

    let scratch = Scratch::new().unwrap_or_else(|error| fail(error));
    let settings = SessionSettings {
        config_path: PathBuf::from(&stack),
        env_file: None,
        process_environment: BTreeMap::new(),
        state_directory: scratch.0.join("state"),
        runs_directory: scratch.0.join("runs"),
        lock_timeout: std::time::Duration::ZERO,
    };

    let total = Instant::now();
    let loaded = session::load(&settings, false).unwrap_or_else(|error| fail(describe(error)));
    let load_s = seconds(total);
    let lowering = Instant::now();
    let access = if plan_only {
        Access::Read
    } else {
        Access::Write {
            command: "stackctl-bench".to_string(),
        }
    };
    let mut session = Session::open_loaded(loaded, &settings, &InMemory, access, None)
        .unwrap_or_else(|error| fail(describe(error)));
    let lower_s = seconds(lowering);

    let planning = Instant::now();
    let the_plan = session
        .plan(true, &[], PlanMode::Apply)
        .await
        .unwrap_or_else(|error| fail(describe(error)));
    let plan_only_s = seconds(planning);
    let plan_s = seconds(total);
    if plan_only {
        print!("{}", stackctl::render::json::render(&the_plan));
        return;
    }

    let options = ApplyOptions {
        parallelism,
        ..ApplyOptions::default()
    };
    let applying = Instant::now();
    let run = session
        .apply(&the_plan, &options, false, &mut Silent)
        .await
        .unwrap_or_else(|error| fail(describe(error)));
    let apply_s = seconds(applying);
    let execute_s = run.report.duration_ms as f64 / 1000.0;
    let report = &run.report;

    if report.succeeded() != the_plan.actions.len() {
        fail(format!(
            "{} of {} actions succeeded ({} failed, {} skipped)",
            report.succeeded(),
            the_plan.actions.len(),
            report.failed(),
            report.skipped()
        ));
    }
    let recorded = session
        .state()
        .map(|state| state.resources.len())
        .unwrap_or_default();
    let state_bytes = std::fs::metadata(session.store().state_path())
        .map(|metadata| metadata.len())
        .unwrap_or_default();
    let summary = serde_json::json!({
        "stack": stack,
        "resources": session.desired().len(),
        "actions": the_plan.actions.len(),
        "parallelism": parallelism,
        "load_s": load_s,
        "lower_s": lower_s,
        "plan_only_s": plan_only_s,
        "plan_s": plan_s,
        "execute_s": execute_s,
        // Folding the journal into the state file, and writing the run folder.
        "fold_s": (apply_s - execute_s).max(0.0),
        "apply_s": apply_s,
        "succeeded": report.succeeded(),
        "recorded": recorded,
        "state_bytes": state_bytes,
    });
    println!("{summary}");
}
