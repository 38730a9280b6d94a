//! `stackctl apply [PLAN]` and `stackctl destroy`.

use std::collections::BTreeMap;

use crate::apply::runs::RunFolder;
use crate::apply::{execute, ApplyOptions, ApplyReport, Event, Status};
use crate::cli::args::ApplyArgs;
use crate::cli::providers::ProviderOptions;
use crate::cli::report::{CliError, Outcome};
use crate::cli::settings::Settings;
use crate::plan::{Plan, PlanMode};
use crate::state::{State, StateLock};

use super::plan::read_saved;
use super::{confirm, parse_targets, print, Session};

pub async fn run(settings: &Settings, arguments: &ApplyArgs) -> Result<Outcome, CliError> {
    let health_timeout = humantime::parse_duration(&arguments.health_timeout).map_err(|_| {
        CliError::new(format!(
            "`--health-timeout {}` is not a duration",
            arguments.health_timeout
        ))
        .hint("for example `90s` or `5m`")
    })?;
    let options = ApplyOptions {
        parallelism: arguments.parallelism,
        health_timeout,
        allow_data_loss: arguments.allow_data_loss,
    };
    let saved = arguments.plan.as_deref().map(read_saved).transpose()?;
    let targets = parse_targets(&arguments.targets)?;

    let session = Session::open(
        settings,
        &ProviderOptions {
            accept_new_host_key: arguments.accept_new_host_key,
            ..ProviderOptions::default()
        },
    )?;
    let lock = session.store.lock("stackctl apply")?;
    let state = session.store.load_for_write()?;

    let (plan, mut state) = match saved {
        Some(saved) => {
            if !targets.is_empty() {
                return Err(CliError::new(
                    "`--target` cannot narrow a saved plan: it is applied exactly as reviewed",
                )
                .hint("make the narrowed plan with `stackctl plan --target ADDR --out FILE`"));
            }
            let salt = state
                .as_ref()
                .map_or(saved.salt.clone(), |state| state.salt.clone());
            let fingerprint = super::desired_fingerprint(&session.desired(&salt)?);
            saved
                .check_current(session.stack(), state.as_ref().map(|state| state.lineage.as_str()), state.as_ref().map_or(0, |state| state.serial), &fingerprint)
                .map_err(|stale| {
                    CliError::new(format!("refusing to apply `{}`: {stale}", arguments.plan.as_deref().map(|path| path.display().to_string()).unwrap_or_default()))
                        .hint("make a new plan with `stackctl plan --out FILE`, review it, and apply that")
                })?;
            let state = state.unwrap_or_else(|| State {
                salt: saved.salt.clone(),
                ..State::new(session.stack())
            });
            (saved.plan, state)
        }
        None => {
            let state = state.unwrap_or_else(|| State::new(session.stack()));
            let desired = session.desired(&state.salt)?;
            super::check_targets(&targets, &desired, Some(&state))?;
            let existing = if state.serial == 0 {
                None
            } else {
                Some(&state)
            };
            let plan = session
                .plan(existing, &desired, false, &targets, PlanMode::Apply)
                .await;
            print(&crate::render::text::render(&plan, settings.color));
            if !plan.has_changes() {
                return Ok(Outcome::Success);
            }
            if !arguments.yes {
                if !settings.interactive {
                    return Err(CliError::new("not applying without confirmation").hint("pass `--yes`, or review with `stackctl plan --out plan.json` and run `stackctl apply plan.json`"));
                }
                if !confirm("Apply these changes?") {
                    return Err(CliError::new("apply cancelled; nothing was changed"));
                }
            }
            (plan, state)
        }
    };
    run_plan(
        &session,
        &plan,
        &mut state,
        &options,
        settings,
        &lock,
        !arguments.skip_checks,
    )
    .await
}

pub async fn destroy(
    settings: &Settings,
    yes: bool,
    allow_data_loss: bool,
    parallelism: usize,
) -> Result<Outcome, CliError> {
    let session = Session::open(settings, &ProviderOptions::default())?;
    let lock = session.store.lock("stackctl destroy")?;
    let Some(mut state) = session.store.load_for_write()? else {
        print("Nothing to destroy: there is no recorded state.\n");
        return Ok(Outcome::Success);
    };
    let desired = session.desired(&state.salt)?;
    let plan = session
        .plan(Some(&state), &desired, false, &[], PlanMode::Destroy)
        .await;
    print(&crate::render::text::render(&plan, settings.color));
    if !plan.has_changes() {
        return Ok(Outcome::Success);
    }
    if !yes {
        if !settings.interactive {
            return Err(
                CliError::new("not destroying without confirmation; nothing was changed")
                    .hint("pass `--yes` to destroy without a prompt"),
            );
        }
        if !confirm("Destroy all of these?") {
            return Err(CliError::new("destroy cancelled; nothing was changed"));
        }
    }
    let options = ApplyOptions {
        parallelism,
        allow_data_loss,
        ..ApplyOptions::default()
    };
    run_plan(
        &session, &plan, &mut state, &options, settings, &lock, false,
    )
    .await
}

/// Runs a plan with the state locked: journal, executor, run folder, summary.
async fn run_plan(
    session: &Session,
    plan: &Plan,
    state: &mut State,
    options: &ApplyOptions,
    settings: &Settings,
    _lock: &StateLock,
    run_checks: bool,
) -> Result<Outcome, CliError> {
    // Credentials first: a missing or refused token stops the run before any change.
    let acting: std::collections::BTreeSet<&str> = plan
        .actions
        .iter()
        .map(|action| action.provider.as_str())
        .collect();
    for name in acting {
        if let Some(provider) = session.providers.get(name) {
            provider.preflight().await.map_err(|error| {
                super::provider_error(&format!("the {name} provider is not ready"), error)
            })?;
        }
    }
    let losing = plan.data_loss();
    if !losing.is_empty() && !options.allow_data_loss {
        return Err(CliError::new(format!(
            "the plan deletes data: {}",
            losing
                .iter()
                .map(|action| format!("`{}`", action.address))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .hint("nothing was changed; pass `--allow-data-loss` if that is really what you want"));
    }
    let desired: BTreeMap<_, _> = session
        .desired(&state.salt)?
        .into_iter()
        .map(|resource| (resource.address.clone(), resource))
        .collect();
    if state.serial == 0 {
        // The journal extends a saved state: give a new stack one before the first action.
        session.store.save(state)?;
    }
    let folder =
        RunFolder::create(&settings.runs_directory, session.secret_values()).map_err(|error| {
            CliError::new(format!(
                "cannot create a run folder in `{}`: {error}",
                settings.runs_directory.display()
            ))
        })?;
    let write = |name: &str, contents: &[u8]| {
        if let Err(error) = folder.write(name, contents) {
            eprintln!("warning: cannot write `{name}` in the run folder: {error}");
        }
    };
    write(
        "plan.txt",
        crate::render::text::render(plan, false).as_bytes(),
    );
    write("plan.json", crate::render::json::render(plan).as_bytes());

    let mut journal = session.store.start_journal(state)?;
    let mut progress =
        crate::cli::progress::Progress::new(settings.color_errors, session.secret_values());
    let mut on_event = move |event: &Event| progress.event(event);
    let report = execute(
        plan,
        &desired,
        &session.providers,
        state,
        &mut journal,
        options,
        &mut on_event,
    )
    .await?;
    if let (Some(name), Some(key)) = (&session.host_key_name, session.connector.host_key()) {
        // Pin the host key on first contact, so a changed key is refused on every later run.
        if state.host_keys.get(name) != Some(&key.fingerprint) {
            let entry = crate::state::JournalEntry::PinHostKey {
                host: name.clone(),
                fingerprint: key.fingerprint.clone(),
            };
            journal.append(&entry)?;
            state.apply_entry(&entry);
            eprintln!(
                "Pinned the SSH host key of `{name}` in state: {} ({}).",
                key.fingerprint, key.key_type
            );
        }
    }
    session.store.finish_journal(journal, state)?;

    let events: String = report
        .events
        .iter()
        .map(|event| serde_json::to_string(event).unwrap_or_default() + "\n")
        .collect();
    write("events.jsonl", events.as_bytes());
    write(
        "outcome.json",
        (serde_json::to_string_pretty(&report.outcomes).unwrap_or_default() + "\n").as_bytes(),
    );
    let context = stackctl_provider::ApplyContext {
        stack: plan.stack.clone(),
        salt: state.salt.clone(),
        health_timeout: options.health_timeout,
        allow_data_loss: options.allow_data_loss,
        recorded: std::sync::Arc::new(std::sync::RwLock::new(state.attributes_by_address())),
    };
    for provider in session.providers.all() {
        for (name, contents) in provider.evidence(&context).await {
            write(&format!("{}/{name}", provider.name()), &contents);
        }
    }
    for outcome in &report.outcomes {
        if let Status::Failed {
            message, detail, ..
        } = &outcome.status
        {
            let log = format!(
                "{}: {message}\n\n{}",
                outcome.address,
                detail.as_deref().unwrap_or("")
            );
            write(&format!("failures/{}.log", outcome.address), log.as_bytes());
        }
    }
    let summary_json = serde_json::json!({
        "stack": plan.stack,
        "duration_ms": report.duration_ms,
        "succeeded": report.succeeded(),
        "failed": report.failed(),
        "skipped": report.skipped(),
        "unreachable": report.unreachable(),
        "state_serial": state.serial,
        "outcomes": report.outcomes,
    });
    write(
        "summary.json",
        (serde_json::to_string_pretty(&summary_json).unwrap_or_default() + "\n").as_bytes(),
    );
    let summary = crate::apply::redact::redact(&summarize(&report), &session.secret_values());
    write("summary.txt", summary.as_bytes());
    print(&summary);
    let all_done = report.failed() == 0 && report.skipped() == 0 && report.unreachable() == 0;
    let checks = if run_checks && all_done && session.loaded.config.edge.is_some() {
        Some(super::super::providers::verify(session, settings, false, Some(&folder)).await)
    } else {
        None
    };
    eprintln!("Run folder: {}", folder.path().display());
    if let Some(Err(error)) = checks {
        return Err(error);
    }
    if report.failed() > 0 || report.skipped() > 0 {
        return Err(CliError::new(format!(
            "{} of {} actions failed; {} skipped",
            report.failed(),
            report.outcomes.len(),
            report.skipped() + report.unreachable()
        ))
        .hint(
            "completed actions are recorded in state; fix the cause and run `stackctl apply` again",
        ));
    }
    if report.unreachable() > 0 {
        return Ok(Outcome::Partial);
    }
    Ok(Outcome::Success)
}

/// The end-of-run summary: counts, then each failure with its evidence.
pub fn summarize(report: &ApplyReport) -> String {
    let mut text = format!(
        "\nApply finished in {:.1}s: {} succeeded, {} failed, {} skipped, {} unreachable.\n",
        report.duration_ms as f64 / 1000.0,
        report.succeeded(),
        report.failed(),
        report.skipped(),
        report.unreachable()
    );
    for outcome in &report.outcomes {
        match &outcome.status {
            Status::Failed {
                message,
                detail,
                hint,
            } => {
                text.push_str(&format!("  failed: {}: {message}\n", outcome.address));
                if let Some(detail) = detail {
                    for line in detail.lines() {
                        text.push_str(&format!("      {line}\n"));
                    }
                }
                if let Some(hint) = hint {
                    text.push_str(&format!("    hint: {hint}\n"));
                }
            }
            Status::Unreachable { target, cause } => {
                text.push_str(&format!(
                    "  warning: {} skipped: cannot reach {target}: {cause}\n",
                    outcome.address
                ));
            }
            Status::Skipped { because } => {
                text.push_str(&format!("  skipped: {}: {because}\n", outcome.address))
            }
            Status::Succeeded => {}
        }
    }
    text
}
