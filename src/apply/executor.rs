//! The apply executor.
//!
//! Actions form a graph (each names the actions it waits for). An action starts once
//! every action it depends on succeeded; independent actions run in parallel, at most
//! `parallelism` at a time. A failed action skips only its dependents — the rest of the
//! plan goes on — and a failed repair of drift (an update in place that would have put
//! back what changed outside stackctl) not even those: the resource is as it was when
//! they last ran with it. A provider whose target cannot be reached has its remaining actions
//! skipped (the run is "partial", exit code 3) while other providers finish.
//!
//! Every completed action is appended to the state journal (fsynced, O(1)) as it
//! completes, so an interrupted apply loses nothing; the caller folds the journal into
//! the state file once at the end.
//!
//! A front end can interrupt a run through [`ApplyOptions::interrupt`]: at
//! [`Interruption::Stop`] no action starts any more and the running ones finish (and are
//! recorded); at [`Interruption::Abort`] the running ones are dropped where they are. Either
//! way every action not completed is [`Status::Interrupted`], the providers are released
//! (their locks with them) and the report is returned like any other.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use stackctl_provider::{
    Action, ActionKind, Address, ApplyContext, ApplyOutcome, Attributes, Provider, ProviderError,
    Reason, Reference, Resource, Value,
};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::ProviderSet;
use crate::plan::Plan;
use crate::state::{Journal, JournalEntry, State, StateError};

#[derive(Clone, Debug)]
pub struct ApplyOptions {
    pub parallelism: usize,
    pub health_timeout: Duration,
    pub allow_data_loss: bool,
    /// Watched for Ctrl-C (or any reason a front end has to stop the run).
    pub interrupt: InterruptSignal,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            parallelism: 10,
            health_timeout: Duration::from_secs(120),
            allow_data_loss: false,
            interrupt: InterruptSignal::never(),
        }
    }
}

/// How far a front end asked a run to stop. Only ever goes up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Interruption {
    #[default]
    None,
    /// Start nothing more; let the running actions finish.
    Stop,
    /// Drop the running actions too.
    Abort,
}

/// The executor's end of an interrupt: the front end keeps the [`watch::Sender`] and
/// raises the [`Interruption`] (Ctrl-C once: stop; twice: abort).
#[derive(Clone, Debug)]
pub struct InterruptSignal(watch::Receiver<Interruption>);

impl InterruptSignal {
    pub fn new() -> (watch::Sender<Interruption>, InterruptSignal) {
        let (sender, receiver) = watch::channel(Interruption::None);
        (sender, InterruptSignal(receiver))
    }

    /// A signal that is never raised.
    pub fn never() -> InterruptSignal {
        InterruptSignal::new().1
    }

    pub fn current(&self) -> Interruption {
        *self.0.borrow()
    }

    /// Waits until the interruption is raised further; never returns once the sender is
    /// gone.
    async fn raised(&mut self) -> Interruption {
        match self.0.changed().await {
            Ok(()) => *self.0.borrow_and_update(),
            Err(_) => std::future::pending().await,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    Succeeded,
    Failed {
        message: String,
        detail: Option<String>,
        hint: Option<String>,
    },
    /// Not run because `because` failed or was skipped.
    Skipped {
        because: String,
    },
    /// Not run because the provider's target could not be reached.
    Unreachable {
        target: String,
        cause: String,
    },
    /// Not completed because the run was interrupted: never started, or (after a second
    /// interrupt) dropped while running — then its effect is unknown until the next plan.
    Interrupted {
        because: String,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct ActionOutcome {
    pub address: Address,
    pub action: ActionKind,
    pub status: Status,
    /// Milliseconds since the apply started; absent when it never started.
    pub started_ms: Option<u64>,
    pub duration_ms: Option<u64>,
}

/// One line of the run's event log.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub at_ms: u64,
    pub address: String,
    pub event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ApplyReport {
    /// In plan order.
    pub outcomes: Vec<ActionOutcome>,
    pub events: Vec<Event>,
    pub duration_ms: u64,
    /// How far the run was interrupted (`none` when it ran to its end).
    pub interruption: Interruption,
}

impl ApplyReport {
    pub fn succeeded(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|outcome| outcome.status == Status::Succeeded)
            .count()
    }

    pub fn failed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|outcome| matches!(outcome.status, Status::Failed { .. }))
            .count()
    }

    pub fn skipped(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|outcome| matches!(outcome.status, Status::Skipped { .. }))
            .count()
    }

    pub fn unreachable(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|outcome| matches!(outcome.status, Status::Unreachable { .. }))
            .count()
    }

    pub fn interrupted(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|outcome| matches!(outcome.status, Status::Interrupted { .. }))
            .count()
    }
}

struct Finished {
    index: usize,
    result: Result<ApplyOutcome, ProviderError>,
    started_ms: u64,
    duration_ms: u64,
}

/// Runs `plan`. `desired` holds the freshly lowered resources (with secret plaintexts),
/// used in place of the plan's copies, which carry digests only. `state` is updated in
/// memory and every change is appended to `journal` as it happens.
pub async fn execute(
    plan: &Plan,
    desired: &BTreeMap<Address, Resource>,
    providers: &ProviderSet,
    state: &mut State,
    journal: &mut Journal,
    options: &ApplyOptions,
    on_event: &mut (dyn FnMut(&Event) + Send),
) -> Result<ApplyReport, StateError> {
    let executed = execute_actions(
        plan,
        desired,
        providers,
        state,
        journal,
        options,
        BTreeMap::new(),
        on_event,
    )
    .await?;
    Ok(executed.end_providers(on_event).await)
}

/// The actions of a run are done (recorded in `state` and the journal); the providers
/// that began are not ended yet: their clean-up (containers a replace left behind,
/// stopping beside the actions) may still be running, and they hold the host lock.
/// What decides nothing about the actions — the release history, the security report's
/// reads — can run beside [`Executed::end_providers`] instead of after it.
pub struct Executed {
    report: ApplyReport,
    begun: Vec<(String, Arc<dyn Provider>)>,
    context: ApplyContext,
    started: Instant,
}

impl Executed {
    /// The report so far: every action's outcome; its events and duration grow when the
    /// providers end.
    pub fn report(&self) -> &ApplyReport {
        &self.report
    }

    /// Ends every provider that began, one after the other in name order (the host lock
    /// is released by the first to end, after its clean-up), and returns the full report.
    /// A provider whose end failed (a replaced container that could not be removed) adds
    /// a warning event: its actions succeeded all the same.
    pub async fn end_providers(mut self, on_event: &mut (dyn FnMut(&Event) + Send)) -> ApplyReport {
        let elapsed = || self.started.elapsed().as_millis() as u64;
        for (name, provider) in &self.begun {
            let ended = provider.end_apply(&self.context).await;
            tracing::debug!(provider = %name, "provider ended (clean-up finished, host lock released)");
            if let Err(error) = ended {
                let event = Event {
                    at_ms: elapsed(),
                    address: format!("provider.{name}"),
                    event: "warning",
                    duration_ms: None,
                    message: Some(error.to_string()),
                };
                on_event(&event);
                self.report.events.push(event);
            }
        }
        self.report.duration_ms = elapsed();
        self.report
    }
}

/// Runs the actions of `plan` (see [`execute`]) and returns before the providers end:
/// the caller ends them with [`Executed::end_providers`]. When the journal cannot be
/// written, the providers are ended here and the error is returned.
///
/// `begun_early` holds the providers the caller already began (beside the refresh, see
/// `Session::plan_to_apply`) and how: they are not begun again, a failure to begin is told
/// on their first action as if it had happened here, and every one that began is ended
/// with the others, actions or not.
#[allow(clippy::too_many_arguments)]
pub async fn execute_actions(
    plan: &Plan,
    desired: &BTreeMap<Address, Resource>,
    providers: &ProviderSet,
    state: &mut State,
    journal: &mut Journal,
    options: &ApplyOptions,
    begun_early: BTreeMap<String, Result<(), ProviderError>>,
    on_event: &mut (dyn FnMut(&Event) + Send),
) -> Result<Executed, StateError> {
    let started = Instant::now();
    let elapsed = || started.elapsed().as_millis() as u64;
    let actions = &plan.actions;
    let index_of: BTreeMap<&Address, usize> = actions
        .iter()
        .enumerate()
        .map(|(index, action)| (&action.address, index))
        .collect();
    let mut waiting: Vec<usize> = vec![0; actions.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); actions.len()];
    for (index, action) in actions.iter().enumerate() {
        for dependency in &action.depends_on {
            if let Some(&dependency_index) = index_of.get(dependency) {
                waiting[index] += 1;
                dependents[dependency_index].push(index);
            }
        }
    }
    let mut outcomes: Vec<Option<ActionOutcome>> = vec![None; actions.len()];
    let mut events: Vec<Event> = Vec::new();
    let mut emit = |event: Event, events: &mut Vec<Event>| {
        on_event(&event);
        events.push(event);
    };
    let recorded: Arc<RwLock<BTreeMap<Address, Attributes>>> =
        Arc::new(RwLock::new(state.attributes_by_address()));
    let context = ApplyContext {
        stack: plan.stack.clone(),
        lineage: state.lineage.clone(),
        state_was_empty: state.resources.is_empty(),
        salt: state.salt.clone(),
        health_timeout: options.health_timeout,
        allow_data_loss: options.allow_data_loss,
        recorded: recorded.clone(),
    };
    // Providers stream a running action's progress (build and pull lines) here; the loop
    // below turns each line into a `progress` event.
    let (progress_sender, mut progress) =
        tokio::sync::mpsc::unbounded_channel::<(Address, String)>();
    let sink: stackctl_provider::ProgressSink = Arc::new(move |address: &Address, line: &str| {
        let _ = progress_sender.send((address.clone(), line.to_string()));
    });
    for provider in providers.all() {
        provider.report_progress_to(sink.clone());
    }
    drop(sink);
    let mut ready: VecDeque<usize> = (0..actions.len())
        .filter(|index| waiting[*index] == 0)
        .collect();
    let mut running: JoinSet<Finished> = JoinSet::new();
    // Which action each task runs, so a panicking provider is reported on its action.
    let mut task_actions: BTreeMap<tokio::task::Id, (usize, u64)> = BTreeMap::new();
    // Set when the journal cannot be written: nothing new starts, running actions finish,
    // providers are released, and the error is returned.
    let mut stopped: Option<StateError> = None;
    let mut begun: BTreeMap<String, Result<(), ProviderError>> = begun_early;
    let mut unreachable: BTreeMap<String, (String, String)> = BTreeMap::new();
    // The first action of each provider whose `begin_apply` failed.
    let mut failed_to_begin: BTreeMap<String, String> = BTreeMap::new();
    let parallelism = options.parallelism.max(1);
    let mut interrupt = options.interrupt.clone();
    let mut interruption = interrupt.current();

    loop {
        while running.len() < parallelism && stopped.is_none() && interruption == Interruption::None
        {
            let Some(index) = ready.pop_front() else {
                break;
            };
            let action = &actions[index];
            let provider = providers.get(&action.provider).cloned();
            // Begin a provider once, before its first action — unless its target is
            // already known to be unreachable.
            if let Some(provider) = &provider {
                if !unreachable.contains_key(&action.provider)
                    && !begun.contains_key(&action.provider)
                {
                    let result = provider.begin_apply(&context).await;
                    tracing::debug!(provider = %action.provider, "provider begun (host lock taken)");
                    begun.insert(action.provider.clone(), result);
                }
            }
            let not_run = if let Some((target, cause)) = unreachable.get(&action.provider) {
                Some(Status::Unreachable {
                    target: target.clone(),
                    cause: cause.clone(),
                })
            } else if provider.is_none() {
                Some(Status::Failed {
                    message: format!(
                        "no provider named `{}` is available for `{}`",
                        action.provider, action.address
                    ),
                    detail: None,
                    hint: None,
                })
            } else if let Some(Err(error)) = begun.get(&action.provider) {
                if let ProviderError::Unreachable { target, cause } = error {
                    unreachable.insert(action.provider.clone(), (target.clone(), cause.clone()));
                }
                // The cause (a held lock, with its holder) is told once, on the first
                // action; the provider's other actions point at it.
                match failed_to_begin.get(&action.provider) {
                    Some(first) if !unreachable.contains_key(&action.provider) => {
                        Some(Status::Skipped {
                            because: format!(
                                "the {} provider could not start (see `{first}`)",
                                action.provider
                            ),
                        })
                    }
                    _ => {
                        failed_to_begin.insert(action.provider.clone(), action.address.to_string());
                        Some(status_of_error(error))
                    }
                }
            } else {
                None
            };
            let provider = match (not_run, provider) {
                (None, Some(provider)) => provider,
                (status, _) => {
                    let status = status.unwrap_or_else(|| Status::Failed {
                        message: format!("`{}` could not start", action.address),
                        detail: None,
                        hint: None,
                    });
                    finish_without_running(
                        index,
                        status,
                        actions,
                        &dependents,
                        &mut outcomes,
                        &mut events,
                        &mut emit,
                        elapsed(),
                    );
                    continue;
                }
            };
            let mut runnable = action.clone();
            if let Some(fresh) = desired.get(&action.address) {
                runnable.desired = Some(fresh.clone());
            }
            if let Some(resource) = runnable.desired.as_mut() {
                resolve_from(resource, &recorded);
            }
            let context = context.clone();
            let started_ms = elapsed();
            emit(
                Event {
                    at_ms: started_ms,
                    address: action.address.to_string(),
                    event: "started",
                    duration_ms: None,
                    message: Some(action.kind.verb().to_string()),
                },
                &mut events,
            );
            let handle = running.spawn(async move {
                let clock = Instant::now();
                let result = provider.apply(&runnable, &context).await;
                Finished {
                    index,
                    result,
                    started_ms,
                    duration_ms: clock.elapsed().as_millis() as u64,
                }
            });
            task_actions.insert(handle.id(), (index, started_ms));
        }
        let joined = tokio::select! {
            joined = running.join_next_with_id() => joined,
            Some((address, line)) = progress.recv() => {
                emit(
                    Event {
                        at_ms: elapsed(),
                        address: address.to_string(),
                        event: "progress",
                        duration_ms: None,
                        message: Some(line),
                    },
                    &mut events,
                );
                continue;
            }
            raised = interrupt.raised() => {
                interruption = interruption.max(raised);
                if interruption == Interruption::Abort {
                    running.abort_all();
                }
                continue;
            }
        };
        let Some(joined) = joined else {
            break;
        };
        let finished = match joined {
            Ok((_, finished)) => finished,
            Err(error) => {
                let Some((index, started_ms)) = task_actions.get(&error.id()).copied() else {
                    continue;
                };
                if error.is_cancelled() {
                    // Dropped by a second interrupt: its dependents stay not run, and
                    // become interrupted below.
                    let status = Status::Interrupted {
                        because: "aborted while running by a second interrupt; the next plan shows what it did".into(),
                    };
                    emit(
                        Event {
                            at_ms: elapsed(),
                            address: actions[index].address.to_string(),
                            event: event_name(&status),
                            duration_ms: Some(elapsed().saturating_sub(started_ms)),
                            message: None,
                        },
                        &mut events,
                    );
                    outcomes[index] = Some(ActionOutcome {
                        address: actions[index].address.clone(),
                        action: actions[index].kind,
                        status,
                        started_ms: Some(started_ms),
                        duration_ms: Some(elapsed().saturating_sub(started_ms)),
                    });
                    continue;
                }
                Finished {
                    index,
                    result: Err(ProviderError::Failed {
                        message: format!("the {} provider stopped unexpectedly: {error}", actions[index].provider),
                        detail: None,
                        hint: Some("this is a bug in stackctl; completed actions are recorded, so `stackctl apply` can be run again".into()),
                    }),
                    started_ms,
                    duration_ms: elapsed().saturating_sub(started_ms),
                }
            }
        };
        let action = &actions[finished.index];
        match finished.result {
            Ok(outcome) => {
                let entry = match outcome {
                    ApplyOutcome::Recorded(resource) => {
                        if let Ok(mut recorded) = recorded.write() {
                            recorded.insert(resource.address.clone(), resource.attributes.clone());
                        }
                        JournalEntry::Put { resource }
                    }
                    ApplyOutcome::Deleted => {
                        if let Ok(mut recorded) = recorded.write() {
                            recorded.remove(&action.address);
                        }
                        JournalEntry::Remove {
                            address: action.address.clone(),
                        }
                    }
                };
                if let Err(error) = journal.append(&entry) {
                    stopped.get_or_insert(error);
                }
                state.apply_entry(&entry);
                outcomes[finished.index] = Some(ActionOutcome {
                    address: action.address.clone(),
                    action: action.kind,
                    status: Status::Succeeded,
                    started_ms: Some(finished.started_ms),
                    duration_ms: Some(finished.duration_ms),
                });
                emit(
                    Event {
                        at_ms: elapsed(),
                        address: action.address.to_string(),
                        event: "succeeded",
                        duration_ms: Some(finished.duration_ms),
                        message: None,
                    },
                    &mut events,
                );
                for &dependent in &dependents[finished.index] {
                    waiting[dependent] -= 1;
                    if waiting[dependent] == 0 && outcomes[dependent].is_none() {
                        ready.push_back(dependent);
                    }
                }
            }
            Err(error) => {
                let status = match &error {
                    ProviderError::Unreachable { target, cause } => {
                        unreachable
                            .insert(action.provider.clone(), (target.clone(), cause.clone()));
                        Status::Unreachable {
                            target: target.clone(),
                            cause: cause.clone(),
                        }
                    }
                    other => status_of_error(other),
                };
                outcomes[finished.index] = Some(ActionOutcome {
                    address: action.address.clone(),
                    action: action.kind,
                    status: status.clone(),
                    started_ms: Some(finished.started_ms),
                    duration_ms: Some(finished.duration_ms),
                });
                emit(
                    Event {
                        at_ms: elapsed(),
                        address: action.address.to_string(),
                        event: event_name(&status),
                        duration_ms: Some(finished.duration_ms),
                        message: Some(error.to_string()),
                    },
                    &mut events,
                );
                if failed_repair_leaves_it_as_it_was(action, &status) {
                    for &dependent in &dependents[finished.index] {
                        waiting[dependent] -= 1;
                        if waiting[dependent] == 0 && outcomes[dependent].is_none() {
                            ready.push_back(dependent);
                        }
                    }
                } else {
                    skip_dependents(
                        finished.index,
                        actions,
                        &dependents,
                        &mut outcomes,
                        &mut events,
                        &mut emit,
                        elapsed(),
                    );
                }
            }
        }
    }
    let begun: Vec<(String, Arc<dyn Provider>)> = begun
        .iter()
        .filter(|(_, result)| result.is_ok())
        .filter_map(|(name, _)| Some((name.clone(), providers.get(name)?.clone())))
        .collect();
    if let Some(error) = stopped {
        let executed = Executed {
            report: ApplyReport {
                outcomes: Vec::new(),
                events,
                duration_ms: elapsed(),
                interruption,
            },
            begun,
            context,
            started,
        };
        executed.end_providers(on_event).await;
        return Err(error);
    }
    let mut completed = Vec::with_capacity(actions.len());
    for (index, outcome) in outcomes.into_iter().enumerate() {
        let outcome = match outcome {
            Some(outcome) => outcome,
            None if interruption != Interruption::None => {
                let status = Status::Interrupted {
                    because: "the apply was interrupted before it started".into(),
                };
                emit(
                    Event {
                        at_ms: elapsed(),
                        address: actions[index].address.to_string(),
                        event: event_name(&status),
                        duration_ms: None,
                        message: None,
                    },
                    &mut events,
                );
                ActionOutcome {
                    address: actions[index].address.clone(),
                    action: actions[index].kind,
                    status,
                    started_ms: None,
                    duration_ms: None,
                }
            }
            None => ActionOutcome {
                address: actions[index].address.clone(),
                action: actions[index].kind,
                status: Status::Skipped {
                    because: "a dependency never completed".into(),
                },
                started_ms: None,
                duration_ms: None,
            },
        };
        completed.push(outcome);
    }
    Ok(Executed {
        report: ApplyReport {
            outcomes: completed,
            events,
            duration_ms: elapsed(),
            interruption,
        },
        begun,
        context,
        started,
    })
}

fn event_name(status: &Status) -> &'static str {
    match status {
        Status::Succeeded => "succeeded",
        Status::Failed { .. } => "failed",
        Status::Skipped { .. } => "skipped",
        Status::Unreachable { .. } => "unreachable",
        Status::Interrupted { .. } => "interrupted",
    }
}

fn status_of_error(error: &ProviderError) -> Status {
    match error {
        ProviderError::Failed {
            message,
            detail,
            hint,
        } => Status::Failed {
            message: message.clone(),
            detail: detail.clone(),
            hint: hint.clone(),
        },
        ProviderError::Credentials { message, hint } => Status::Failed {
            message: message.clone(),
            detail: None,
            hint: Some(hint.clone()),
        },
        ProviderError::Unreachable { target, cause } => Status::Unreachable {
            target: target.clone(),
            cause: cause.clone(),
        },
        ProviderError::ConnectionLost { .. } => Status::Failed {
            message: error.to_string(),
            detail: None,
            hint: Some(
                "the next `stackctl plan` reads what happened on the host; `stackctl apply` carries on from there".into(),
            ),
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn finish_without_running(
    index: usize,
    status: Status,
    actions: &[Action],
    dependents: &[Vec<usize>],
    outcomes: &mut [Option<ActionOutcome>],
    events: &mut Vec<Event>,
    emit: &mut impl FnMut(Event, &mut Vec<Event>),
    now: u64,
) {
    let message = match &status {
        Status::Unreachable { target, cause } => Some(format!("cannot reach {target}: {cause}")),
        Status::Failed { message, .. } => Some(message.clone()),
        _ => None,
    };
    emit(
        Event {
            at_ms: now,
            address: actions[index].address.to_string(),
            event: event_name(&status),
            duration_ms: None,
            message,
        },
        events,
    );
    outcomes[index] = Some(ActionOutcome {
        address: actions[index].address.clone(),
        action: actions[index].kind,
        status,
        started_ms: None,
        duration_ms: None,
    });
    skip_dependents(index, actions, dependents, outcomes, events, emit, now);
}

/// Whether a failed action leaves its resource as it was before the apply: an update in
/// place that only repairs drift (a swarm node whose daemon is down, say). Its dependents
/// ran with it as it was, so they go on; any other failure (a create, a replace, an
/// update for a stack.toml change, an unreachable target) skips them.
fn failed_repair_leaves_it_as_it_was(action: &Action, status: &Status) -> bool {
    action.kind == ActionKind::Update
        && matches!(action.reason, Reason::Drift { .. })
        && matches!(status, Status::Failed { .. })
}

/// Marks every transitive dependent of `failed` as skipped, naming the cause.
fn skip_dependents(
    failed: usize,
    actions: &[Action],
    dependents: &[Vec<usize>],
    outcomes: &mut [Option<ActionOutcome>],
    events: &mut Vec<Event>,
    emit: &mut impl FnMut(Event, &mut Vec<Event>),
    now: u64,
) {
    let mut pending: Vec<usize> = dependents[failed].clone();
    let mut seen: BTreeSet<usize> = BTreeSet::new();
    let cause = actions[failed].address.to_string();
    // Behind an unreachable target, dependents are unreachable too (a partial run, not a
    // failure); behind a failure they are skipped.
    let unreachable = match outcomes[failed].as_ref().map(|outcome| &outcome.status) {
        Some(Status::Unreachable { target, cause }) => Some((target.clone(), cause.clone())),
        _ => None,
    };
    while let Some(index) = pending.pop() {
        if !seen.insert(index) || outcomes[index].is_some() {
            continue;
        }
        let because = format!("`{cause}` did not complete");
        let status = match &unreachable {
            Some((target, cause)) => Status::Unreachable {
                target: target.clone(),
                cause: cause.clone(),
            },
            None => Status::Skipped {
                because: because.clone(),
            },
        };
        emit(
            Event {
                at_ms: now,
                address: actions[index].address.to_string(),
                event: event_name(&status),
                duration_ms: None,
                message: Some(because.clone()),
            },
            events,
        );
        outcomes[index] = Some(ActionOutcome {
            address: actions[index].address.clone(),
            action: actions[index].kind,
            status,
            started_ms: None,
            duration_ms: None,
        });
        pending.extend(dependents[index].iter().copied());
    }
}

/// Fills in values known only after apply from what has been recorded so far.
fn resolve_from(resource: &mut Resource, recorded: &Arc<RwLock<BTreeMap<Address, Attributes>>>) {
    let Ok(recorded) = recorded.read() else {
        return;
    };
    let lookup = |reference: &Reference| -> Option<Value> {
        recorded
            .get(&reference.address)?
            .get(&reference.attribute)
            .cloned()
    };
    for value in resource.attributes.values_mut() {
        if value.contains_unknown() {
            *value = value.resolve(&lookup);
        }
    }
}
