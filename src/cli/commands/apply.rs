//! `stackctl apply [PLAN]` and `stackctl destroy`.

use crate::apply::{ApplyOptions, Event, Interruption};
use crate::cli::args::ApplyArgs;
use crate::cli::interrupt::InterruptHandler;
use crate::cli::progress::Progress;
use crate::cli::providers::ProviderOptions;
use crate::cli::report::{CliError, Outcome};
use crate::cli::settings::Settings;
use crate::plan::{Plan, PlanMode};
use crate::session::{Access, RunObserver, Session, SessionError};

use super::json_events::JsonEvents;
use super::plan::read_saved;
use super::{confirm, open_session, parse_targets, print};
use crate::render::events;

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
        ..ApplyOptions::default()
    };
    let saved = arguments.plan.as_deref().map(read_saved).transpose()?;
    let targets = parse_targets(&arguments.targets)?;

    let mut session = open_session(
        settings,
        &ProviderOptions {
            accept_new_host_key: arguments.accept_new_host_key,
            lock_timeout: settings.lock_timeout,
            ..ProviderOptions::default()
        },
        Access::Write {
            command: "stackctl apply".to_string(),
        },
        saved.as_ref().map(|saved| saved.salt.as_str()),
    )?;

    let plan = match saved {
        Some(saved) => {
            if !targets.is_empty() {
                return Err(SessionError::SavedPlanNarrowed.into());
            }
            if !arguments.replace.is_empty() {
                return Err(CliError::new(
                    "`--replace` cannot change a saved plan: it is applied exactly as reviewed",
                )
                .hint("make a new plan with `stackctl plan --replace ADDRESS --out FILE`"));
            }
            let path = arguments
                .plan
                .as_deref()
                .map(|path| path.display().to_string())
                .unwrap_or_default();
            session.check_saved_plan(&saved, &path)?;
            saved.plan
        }
        None => {
            session.check_targets(&targets)?;
            let replace = super::replace_addresses(&session, &arguments.replace)?;
            if arguments.json {
                JsonEvents::new(session.secret_values().to_vec())
                    .emit(&events::started(session.stack(), "apply"));
            }
            // With `--yes` the apply follows the plan at once: the host lock is taken
            // beside the refresh. With a question to ask, only after the answer.
            let mut plan = if arguments.yes {
                session
                    .plan_to_apply(&targets, PlanMode::Apply, &options)
                    .await?
            } else {
                session.plan(false, &targets, PlanMode::Apply).await?
            };
            tracing::debug!(actions = plan.actions.len(), "plan made");
            session.force_replace(&mut plan, &replace);
            if arguments.json {
                let json = JsonEvents::new(session.secret_values().to_vec());
                events::plan(&plan)
                    .iter()
                    .for_each(|event| json.emit(event));
            } else {
                print(&crate::render::text::render(&plan, settings.color));
            }
            if !plan.has_changes() {
                session.end_begun_early().await;
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
            plan
        }
    };
    run_plan(
        &mut session,
        &plan,
        &options,
        settings,
        !arguments.skip_checks,
        arguments.json,
    )
    .await
}

pub async fn destroy(
    settings: &Settings,
    yes: bool,
    allow_data_loss: bool,
    parallelism: usize,
) -> Result<Outcome, CliError> {
    let mut session = open_session(
        settings,
        &ProviderOptions {
            lock_timeout: settings.lock_timeout,
            ..ProviderOptions::default()
        },
        Access::Write {
            command: "stackctl destroy".to_string(),
        },
        None,
    )?;
    if session.state().is_none() {
        print("Nothing to destroy: there is no recorded state.\n");
        return Ok(Outcome::Success);
    }
    let options = ApplyOptions {
        parallelism,
        allow_data_loss,
        ..ApplyOptions::default()
    };
    // As for `apply --yes`: with no question to ask, the host lock is taken beside the
    // refresh (`Session::plan_to_apply`); with one, only after the answer.
    let plan = if yes {
        session
            .plan_to_apply(&[], PlanMode::Destroy, &options)
            .await?
    } else {
        session.plan(false, &[], PlanMode::Destroy).await?
    };
    print(&crate::render::text::render(&plan, settings.color));
    if !plan.has_changes() {
        session.end_begun_early().await;
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
    run_plan(&mut session, &plan, &options, settings, false, false).await
}

/// Prints progress, notes and the summary as the session applies, then the checks.
struct Terminal {
    progress: Progress,
}

impl RunObserver for Terminal {
    fn event(&mut self, event: &Event) {
        self.progress.event(event);
    }

    fn warning(&mut self, message: &str) {
        eprintln!("warning: {message}");
    }

    fn note(&mut self, message: &str) {
        eprintln!("{message}");
    }

    fn summary(&mut self, text: &str) {
        print(text);
    }
}

/// Streams the run as JSON lines (`apply --json`): the executor's events as they happen,
/// warnings and notes; the summary is written from the report afterwards.
struct JsonObserver {
    events: JsonEvents,
}

impl RunObserver for JsonObserver {
    fn event(&mut self, event: &Event) {
        self.events.emit(&events::action(event));
    }

    fn warning(&mut self, message: &str) {
        self.events.emit(&events::message("warning", message));
    }

    fn note(&mut self, message: &str) {
        self.events.emit(&events::message("note", message));
    }

    fn summary(&mut self, _text: &str) {}
}

/// Applies the plan through the session and turns its outcome into an exit code.
pub(super) async fn run_plan(
    session: &mut Session,
    plan: &Plan,
    options: &ApplyOptions,
    settings: &Settings,
    run_checks: bool,
    json: bool,
) -> Result<Outcome, CliError> {
    let mut terminal = Terminal {
        progress: Progress::new(settings.color_errors, session.secret_values().to_vec()),
    };
    let mut json_observer = JsonObserver {
        events: JsonEvents::new(session.secret_values().to_vec()),
    };
    let observer: &mut dyn RunObserver = if json {
        &mut json_observer
    } else {
        &mut terminal
    };
    let (handler, interrupt) = InterruptHandler::install();
    let options = ApplyOptions {
        interrupt,
        ..options.clone()
    };
    let run = session.apply(plan, &options, run_checks, observer).await;
    drop(handler);
    let run = run?;
    if json {
        json_observer.events.emit(&events::apply_summary(
            &run.report,
            &run.folder.display().to_string(),
        ));
    }
    let checks = run.checks.map(|checks| {
        checks.map_err(CliError::from).and_then(|report| {
            if json {
                for warning in &report.warnings {
                    json_observer
                        .events
                        .emit(&events::message("warning", warning));
                }
                json_observer.events.emit(&events::checks(&report.document));
                super::verify::outcome(&report)
            } else {
                super::verify::show(&report, false)
            }
        })
    });
    eprintln!("Run folder: {}", run.folder.display());
    if let Some(Err(error)) = checks {
        return Err(error);
    }
    let report = &run.report;
    if report.interruption != Interruption::None {
        return Ok(Outcome::Interrupted);
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
