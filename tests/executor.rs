//! The apply executor with the in-memory provider: parallelism, failure isolation, and
//! state that records exactly what completed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use stackctl::apply::memory::{Behaviour, MemoryProvider};
use stackctl::apply::{execute, ApplyOptions, ProviderSet, Status};
use stackctl::plan::{plan, PlanInput, PlanMode, SchemaSet, StateIdentity};
use stackctl::state::{State, StateStore};
use stackctl_provider::{Address, Resource};

fn address(text: &str) -> Address {
    Address::parse(text).unwrap()
}

fn resource(text: &str, dependencies: &[&str]) -> Resource {
    let mut resource = Resource::new(address(text), "memory").with("image", "x:1");
    for dependency in dependencies {
        resource = resource.depends_on(address(dependency));
    }
    resource
}

struct Run {
    provider: Arc<MemoryProvider>,
    store: StateStore,
    state: State,
    report: stackctl::apply::ApplyReport,
    _directory: tempfile::TempDir,
}

async fn apply(desired: Vec<Resource>, script: &[(&str, Behaviour)], parallelism: usize) -> Run {
    let provider = Arc::new(MemoryProvider::new(
        "memory",
        &["service", "network", "volume"],
    ));
    for (target, behaviour) in script {
        provider.script(&address(target), behaviour.clone());
    }
    let providers = ProviderSet::new([provider.clone() as Arc<dyn stackctl_provider::Provider>]);
    let directory = tempfile::tempdir().unwrap();
    let store = StateStore::new(directory.path(), "shop");
    let mut state = State::new("shop");
    store.save(&mut state).unwrap();
    let schemas = SchemaSet::new(providers.schemas());
    let recorded = BTreeMap::new();
    let the_plan = plan(&PlanInput {
        stack: "shop",
        desired: &desired,
        recorded: &recorded,
        state: StateIdentity {
            lineage: Some(state.lineage.clone()),
            serial: state.serial,
        },
        config_fingerprint: String::new(),
        live: Err("test".into()),
        schemas: &schemas,
        targets: &[],
        mode: PlanMode::Apply,
    });
    let by_address = desired
        .iter()
        .map(|resource| (resource.address.clone(), resource.clone()))
        .collect();
    let mut journal = store.start_journal(&state).unwrap();
    let options = ApplyOptions {
        parallelism,
        ..ApplyOptions::default()
    };
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
    .unwrap();
    store.finish_journal(journal, &mut state).unwrap();
    Run {
        provider,
        store,
        state,
        report,
        _directory: directory,
    }
}

fn slow(milliseconds: u64) -> Behaviour {
    Behaviour {
        delay: Duration::from_millis(milliseconds),
        ..Behaviour::default()
    }
}

#[tokio::test]
async fn independent_actions_overlap_in_time() {
    let desired = vec![
        resource("service.a", &[]),
        resource("service.b", &[]),
        resource("service.c", &[]),
    ];
    let run = apply(
        desired,
        &[
            ("service.a", slow(300)),
            ("service.b", slow(300)),
            ("service.c", slow(300)),
        ],
        10,
    )
    .await;
    let calls = run.provider.calls();
    assert_eq!(calls.len(), 3);
    for left in &calls {
        for right in &calls {
            if left.address != right.address {
                assert!(
                    left.started < right.finished && right.started < left.finished,
                    "{} and {} did not overlap",
                    left.address,
                    right.address
                );
            }
        }
    }
}

#[tokio::test]
async fn parallelism_bounds_how_many_run_at_once() {
    let desired = vec![
        resource("service.a", &[]),
        resource("service.b", &[]),
        resource("service.c", &[]),
    ];
    let run = apply(
        desired,
        &[
            ("service.a", slow(150)),
            ("service.b", slow(150)),
            ("service.c", slow(150)),
        ],
        1,
    )
    .await;
    let mut calls = run.provider.calls();
    calls.sort_by_key(|call| call.started);
    for pair in calls.windows(2) {
        assert!(
            pair[0].finished <= pair[1].started,
            "with --parallelism 1 actions never overlap"
        );
    }
}

#[tokio::test]
async fn an_action_starts_only_after_its_dependencies_succeeded() {
    let desired = vec![
        resource("network.edge", &[]),
        resource("service.api", &["network.edge"]),
    ];
    let run = apply(desired, &[("network.edge", slow(200))], 10).await;
    let calls = run.provider.calls();
    let network = calls
        .iter()
        .find(|call| call.address == address("network.edge"))
        .unwrap();
    let api = calls
        .iter()
        .find(|call| call.address == address("service.api"))
        .unwrap();
    assert!(network.finished <= api.started);
}

#[tokio::test]
async fn a_failed_action_skips_exactly_its_dependents() {
    // db fails: api (needs db) and web (needs api) are skipped; cache and worker (needs
    // cache) are independent and complete.
    let desired = vec![
        resource("service.db", &[]),
        resource("service.api", &["service.db"]),
        resource("service.web", &["service.api"]),
        resource("service.cache", &[]),
        resource("service.worker", &["service.cache"]),
    ];
    let failing = Behaviour {
        fail: Some("disk full".into()),
        ..Behaviour::default()
    };
    let run = apply(
        desired,
        &[("service.db", failing), ("service.cache", slow(100))],
        10,
    )
    .await;
    let status: BTreeMap<String, &Status> = run
        .report
        .outcomes
        .iter()
        .map(|outcome| (outcome.address.to_string(), &outcome.status))
        .collect();
    assert!(
        matches!(status["service.db"], Status::Failed { message, .. } if message == "disk full")
    );
    assert!(
        matches!(status["service.api"], Status::Skipped { because } if because.contains("service.db"))
    );
    assert!(matches!(status["service.web"], Status::Skipped { .. }));
    assert_eq!(status["service.cache"], &Status::Succeeded);
    assert_eq!(status["service.worker"], &Status::Succeeded);
    let called: Vec<String> = run
        .provider
        .calls()
        .iter()
        .map(|call| call.address.to_string())
        .collect();
    assert!(
        !called.contains(&"service.api".to_string())
            && !called.contains(&"service.web".to_string())
    );
}

#[tokio::test]
async fn state_after_a_partial_failure_records_exactly_the_completed_actions() {
    let desired = vec![
        resource("service.db", &[]),
        resource("service.api", &["service.db"]),
        resource("service.cache", &[]),
    ];
    let failing = Behaviour {
        fail: Some("boom".into()),
        ..Behaviour::default()
    };
    let run = apply(desired, &[("service.db", failing)], 10).await;
    let in_memory: Vec<String> = run
        .state
        .resources
        .keys()
        .map(ToString::to_string)
        .collect();
    assert_eq!(in_memory, ["service.cache"]);
    let on_disk = run.store.read().unwrap().unwrap();
    assert_eq!(
        on_disk
            .resources
            .keys()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["service.cache"]
    );
    assert!(
        !run.store.journal_path().exists(),
        "the journal is folded at the end"
    );
}

#[tokio::test]
async fn an_unreachable_target_skips_the_providers_remaining_actions() {
    let desired = vec![
        resource("service.a", &[]),
        resource("service.b", &["service.a"]),
    ];
    let unreachable = Behaviour {
        unreachable: true,
        ..Behaviour::default()
    };
    let run = apply(desired, &[("service.a", unreachable)], 10).await;
    assert_eq!(
        run.report.unreachable(),
        2,
        "the dependent is reported unreachable too: a partial run"
    );
    assert_eq!(run.report.skipped(), 0);
    assert!(run.state.resources.is_empty());
}

#[tokio::test]
async fn a_failed_repair_of_drift_does_not_skip_its_dependents() {
    // A swarm node whose daemon is down: its repair fails, yet the service that waits for
    // it (and drifted too: a task missing) is still repaired.
    let node = resource("volume.node", &[]).with("status", "ready");
    let service = resource("service.web", &["volume.node"]).with("running", 2i64);
    let desired = vec![node.clone(), service.clone()];
    let provider = Arc::new(MemoryProvider::new("memory", &["service", "volume"]));
    provider.script(
        &address("volume.node"),
        Behaviour {
            fail: Some("its daemon is down".into()),
            ..Behaviour::default()
        },
    );
    let providers = ProviderSet::new([provider.clone() as Arc<dyn stackctl_provider::Provider>]);
    let directory = tempfile::tempdir().unwrap();
    let store = StateStore::new(directory.path(), "shop");
    let mut state = State::new("shop");
    store.save(&mut state).unwrap();
    let recorded: BTreeMap<Address, stackctl_provider::RecordedResource> = desired
        .iter()
        .map(|resource| {
            (
                resource.address.clone(),
                stackctl_provider::RecordedResource::from_desired(resource, Some("id".into())),
            )
        })
        .collect();
    let live = |resource: &Resource, name: &str, value: stackctl_provider::Value| {
        let mut attributes = resource.attributes.clone();
        attributes.insert(name.to_string(), value);
        (
            resource.address.clone(),
            stackctl_provider::LiveResource {
                address: resource.address.clone(),
                id: Some("id".into()),
                attributes,
                owned: true,
            },
        )
    };
    let snapshot = stackctl::plan::LiveSnapshot {
        resources: BTreeMap::from([
            live(&node, "status", stackctl_provider::Value::text("down")),
            live(&service, "running", stackctl_provider::Value::Integer(1)),
        ]),
        read_providers: ["memory".to_string()].into(),
        unread: Vec::new(),
    };
    let schemas = SchemaSet::new(providers.schemas());
    let the_plan = plan(&PlanInput {
        stack: "shop",
        desired: &desired,
        recorded: &recorded,
        state: StateIdentity {
            lineage: Some(state.lineage.clone()),
            serial: state.serial,
        },
        config_fingerprint: String::new(),
        live: Ok(&snapshot),
        schemas: &schemas,
        targets: &[],
        mode: PlanMode::Apply,
    });
    assert_eq!(the_plan.actions.len(), 2, "{:#?}", the_plan.actions);
    let by_address = desired
        .iter()
        .map(|resource| (resource.address.clone(), resource.clone()))
        .collect();
    let mut journal = store.start_journal(&state).unwrap();
    let report = execute(
        &the_plan,
        &by_address,
        &providers,
        &mut state,
        &mut journal,
        &ApplyOptions::default(),
        &mut |_| {},
    )
    .await
    .unwrap();
    store.finish_journal(journal, &mut state).unwrap();
    let status: BTreeMap<String, &Status> = report
        .outcomes
        .iter()
        .map(|outcome| (outcome.address.to_string(), &outcome.status))
        .collect();
    assert!(matches!(status["volume.node"], Status::Failed { .. }));
    assert_eq!(status["service.web"], &Status::Succeeded);
}
