//! Interrupting the executor (what Ctrl-C does through the CLI): the first interrupt
//! starts nothing more and lets the running actions finish and be recorded; the second
//! drops the running ones. Either way what did not complete is `interrupted`, and what
//! completed is in state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stackctl::apply::memory::{Behaviour, MemoryProvider};
use stackctl::apply::{
    execute, ApplyOptions, ApplyReport, InterruptSignal, Interruption, ProviderSet, Status,
};
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

/// Applies network.a → service.slow (taking `slow`) → service.after, raising each of
/// `raises` at its time after the start. Returns the report, the state after the journal
/// was folded, and how long the run took.
async fn interrupted_apply(
    slow: Duration,
    raises: &[(u64, Interruption)],
) -> (ApplyReport, State, Duration) {
    let desired = vec![
        resource("network.a", &[]),
        resource("service.slow", &["network.a"]),
        resource("service.after", &["service.slow"]),
    ];
    let provider = Arc::new(MemoryProvider::new("memory", &["service", "network"]));
    provider.script(
        &address("service.slow"),
        Behaviour {
            delay: slow,
            ..Behaviour::default()
        },
    );
    let providers = ProviderSet::new([provider as Arc<dyn stackctl_provider::Provider>]);
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
    let (sender, interrupt) = InterruptSignal::new();
    let options = ApplyOptions {
        interrupt,
        ..ApplyOptions::default()
    };
    let mut journal = store.start_journal(&state).unwrap();
    let started = Instant::now();
    let raising = async {
        for (after, level) in raises {
            tokio::time::sleep_until((started + Duration::from_millis(*after)).into()).await;
            sender.send(*level).unwrap();
        }
    };
    let mut on_event = |_: &stackctl::apply::Event| {};
    let applying = execute(
        &the_plan,
        &by_address,
        &providers,
        &mut state,
        &mut journal,
        &options,
        &mut on_event,
    );
    let (report, ()) = tokio::join!(applying, raising);
    let report = report.unwrap();
    let took = started.elapsed();
    store.finish_journal(journal, &mut state).unwrap();
    let reloaded = store.read().unwrap().unwrap();
    assert_eq!(reloaded.resources.len(), state.resources.len());
    (report, reloaded, took)
}

fn status<'a>(report: &'a ApplyReport, text: &str) -> &'a Status {
    &report
        .outcomes
        .iter()
        .find(|outcome| outcome.address == address(text))
        .unwrap()
        .status
}

#[tokio::test]
async fn a_first_interrupt_lets_the_running_action_finish_records_it_and_starts_nothing_more() {
    let (report, state, _) =
        interrupted_apply(Duration::from_millis(400), &[(100, Interruption::Stop)]).await;
    assert_eq!(report.interruption, Interruption::Stop);
    assert_eq!(status(&report, "network.a"), &Status::Succeeded);
    assert_eq!(
        status(&report, "service.slow"),
        &Status::Succeeded,
        "the running action finished"
    );
    assert!(
        matches!(status(&report, "service.after"), Status::Interrupted { because } if because.contains("before it started")),
        "{:?}",
        status(&report, "service.after")
    );
    assert_eq!(report.interrupted(), 1);
    assert!(state.resources.contains_key(&address("service.slow")));
    assert!(!state.resources.contains_key(&address("service.after")));
}

#[tokio::test]
async fn a_second_interrupt_aborts_the_running_action_and_still_records_what_completed() {
    let (report, state, took) = interrupted_apply(
        Duration::from_secs(30),
        &[(100, Interruption::Stop), (200, Interruption::Abort)],
    )
    .await;
    assert!(
        took < Duration::from_secs(5),
        "the run ended at once: {took:?}"
    );
    assert_eq!(report.interruption, Interruption::Abort);
    assert_eq!(status(&report, "network.a"), &Status::Succeeded);
    assert!(
        matches!(status(&report, "service.slow"), Status::Interrupted { because } if because.contains("aborted")),
        "{:?}",
        status(&report, "service.slow")
    );
    assert!(matches!(
        status(&report, "service.after"),
        Status::Interrupted { .. }
    ));
    assert!(state.resources.contains_key(&address("network.a")));
    assert!(!state.resources.contains_key(&address("service.slow")));
}
