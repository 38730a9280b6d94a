//! `stackctl-bench STACK.toml [PARALLELISM]`: the apply half of `bench/plan-scale`.
//!
//! Loads a stack with the library (config → external inputs → lowering), plans it against
//! an empty state, then executes the plan through in-memory providers named `docker`,
//! `traefik` and `digitalocean` — no Docker, no network — with the state in a temporary
//! directory and the real journal (one fsynced line per action, folded into the state
//! file once at the end). Prints one JSON object of timings on stdout.
//!
//! Not a test and not a user command: it exists so the benchmark measures the engine's
//! executor and journal, not a provider.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use stackctl::apply::memory::MemoryProvider;
use stackctl::apply::{execute, ApplyOptions, ProviderSet};
use stackctl::config::{self, LoadOptions};
use stackctl::plan::{plan, PlanInput, PlanMode, SchemaSet, StateIdentity};
use stackctl::state::{State, StateStore};
use stackctl_provider::{Address, Provider, Resource};

/// Every kind lowering produces, by provider.
const DOCKER_KINDS: &[&str] = &["network", "volume", "image", "service"];
const TRAEFIK_KINDS: &[&str] = &["file", "route", "middleware"];
const CLOUD_KINDS: &[&str] = &["droplet", "ssh_key", "firewall", "dns_record"];

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

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("stackctl-bench: {message}");
    std::process::exit(1)
}

fn seconds(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut arguments = std::env::args().skip(1);
    let Some(stack) = arguments.next() else {
        fail("usage: stackctl-bench STACK.toml [PARALLELISM]");
    };
    let parallelism: usize = arguments
        .next()
        .map(|text| {
            text.parse()
                .unwrap_or_else(|_| fail("PARALLELISM is a number"))
        })
        .unwrap_or(ApplyOptions::default().parallelism);

    let total = Instant::now();
    let loaded =
        config::load(Path::new(&stack), &LoadOptions::default()).unwrap_or_else(|errors| {
            fail(config::diagnostic::render(
                &errors.diagnostics,
                &errors.sources,
                false,
            ))
        });
    let load_s = seconds(total);
    let inputs = stackctl::context::gather(&loaded).unwrap_or_else(|diagnostics| {
        fail(config::diagnostic::render(
            &diagnostics,
            &loaded.sources,
            false,
        ))
    });

    let scratch = Scratch::new().unwrap_or_else(|error| fail(error));
    let store = StateStore::new(&scratch.0, &loaded.config.stack.name);
    let mut state = State::new(&loaded.config.stack.name);
    store.save(&mut state).unwrap_or_else(|error| fail(error));

    let lowering = Instant::now();
    let desired: Vec<Resource> = stackctl::lower::lower(&loaded, &inputs, &state.salt);
    let lower_s = seconds(lowering);

    let providers: Vec<Arc<MemoryProvider>> = vec![
        Arc::new(MemoryProvider::new("docker", DOCKER_KINDS)),
        Arc::new(MemoryProvider::new("traefik", TRAEFIK_KINDS)),
        Arc::new(MemoryProvider::new("digitalocean", CLOUD_KINDS)),
    ];
    let providers = ProviderSet::new(
        providers
            .iter()
            .map(|provider| provider.clone() as Arc<dyn Provider>),
    );
    let schemas = SchemaSet::new(providers.schemas());

    let planning = Instant::now();
    let recorded = BTreeMap::new();
    let the_plan = plan(&PlanInput {
        stack: &loaded.config.stack.name,
        desired: &desired,
        recorded: &recorded,
        state: StateIdentity {
            lineage: Some(state.lineage.clone()),
            serial: state.serial,
        },
        config_fingerprint: loaded.fingerprint.clone(),
        live: Err("benchmark: in-memory providers, nothing live".into()),
        schemas: &schemas,
        targets: &[],
        mode: PlanMode::Apply,
    });
    let plan_only_s = seconds(planning);
    let plan_s = seconds(total);

    let by_address: BTreeMap<Address, Resource> = desired
        .iter()
        .map(|resource| (resource.address.clone(), resource.clone()))
        .collect();
    let options = ApplyOptions {
        parallelism,
        ..ApplyOptions::default()
    };

    let applying = Instant::now();
    let mut journal = store
        .start_journal(&state)
        .unwrap_or_else(|error| fail(error));
    let report = execute(
        &the_plan,
        &by_address,
        &providers,
        &mut state,
        &mut journal,
        &options,
        &mut |_| {},
    )
    .await
    .unwrap_or_else(|error| fail(error));
    let execute_s = seconds(applying);
    let folding = Instant::now();
    store
        .finish_journal(journal, &mut state)
        .unwrap_or_else(|error| fail(error));
    let fold_s = seconds(folding);
    let apply_s = seconds(applying);

    if report.succeeded() != the_plan.actions.len() {
        fail(format!(
            "{} of {} actions succeeded ({} failed, {} skipped)",
            report.succeeded(),
            the_plan.actions.len(),
            report.failed(),
            report.skipped()
        ));
    }
    let state_bytes = std::fs::metadata(store.state_path())
        .map(|metadata| metadata.len())
        .unwrap_or_default();
    let summary = serde_json::json!({
        "stack": stack,
        "resources": desired.len(),
        "actions": the_plan.actions.len(),
        "parallelism": parallelism,
        "load_s": load_s,
        "lower_s": lower_s,
        "plan_only_s": plan_only_s,
        "plan_s": plan_s,
        "execute_s": execute_s,
        "fold_s": fold_s,
        "apply_s": apply_s,
        "succeeded": report.succeeded(),
        "recorded": state.resources.len(),
        "state_bytes": state_bytes,
    });
    println!("{summary}");
}
