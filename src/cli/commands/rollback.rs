//! `stackctl rollback [--to ID] [--yes]` and `stackctl rollback --list`.

use crate::apply::ApplyOptions;
use crate::cli::args::RollbackArgs;
use crate::cli::providers::ProviderOptions;
use crate::cli::report::{CliError, Outcome};
use crate::cli::settings::Settings;
use crate::session::Access;
use crate::state::History;

use super::apply::run_plan;
use super::{confirm, open_session, print};

pub async fn run(settings: &Settings, arguments: &RollbackArgs) -> Result<Outcome, CliError> {
    if arguments.list {
        return list(settings);
    }
    let health_timeout = humantime::parse_duration(&arguments.health_timeout).map_err(|_| {
        CliError::new(format!(
            "`--health-timeout {}` is not a duration",
            arguments.health_timeout
        ))
        .hint("for example `90s` or `5m`")
    })?;
    let mut session = open_session(
        settings,
        &ProviderOptions {
            // `--lock-timeout` waits for the host lock too, as in apply and destroy.
            lock_timeout: settings.lock_timeout,
            ..ProviderOptions::default()
        },
        Access::Write {
            command: "stackctl rollback".to_string(),
        },
        None,
    )?;
    let rollback = session.plan_rollback(arguments.to).await?;
    let entry = &rollback.entry;
    print(&format!(
        "Rolling back to history entry {} ({} by {}: {}).\n\n",
        entry.id,
        entry.time,
        entry.who,
        summary(&entry.changes)
    ));
    print(&crate::render::text::render(&rollback.plan, settings.color));
    if !rollback.plan.has_changes() {
        eprintln!(
            "Nothing to roll back: what runs already matches history entry {} with today's secrets and env (a rollback keeps those as they are; revert them in stack.toml).",
            entry.id
        );
        return Ok(Outcome::Success);
    }
    if !arguments.yes {
        if !settings.interactive {
            return Err(CliError::new(
                "not rolling back without confirmation; nothing was changed",
            )
            .hint("pass `--yes` to roll back without a prompt"));
        }
        if !confirm(&format!("Roll back to history entry {}?", entry.id)) {
            return Err(CliError::new("rollback cancelled; nothing was changed"));
        }
    }
    let options = ApplyOptions {
        health_timeout,
        allow_data_loss: arguments.allow_data_loss,
        ..ApplyOptions::default()
    };
    let outcome = run_plan(
        &mut session,
        &rollback.plan,
        &options,
        settings,
        !arguments.skip_checks,
        false,
    )
    .await?;
    eprintln!(
        "Rolled back to history entry {}. `stackctl plan` now shows how stack.toml differs: revert the commit to keep this version, or apply to deploy stack.toml again.",
        entry.id
    );
    Ok(outcome)
}

fn list(settings: &Settings) -> Result<Outcome, CliError> {
    let session = open_session(settings, &ProviderOptions::default(), Access::Read, None)?;
    let history = session.history()?;
    let state_serial = session.state().map_or(0, |state| state.serial);
    print(&render_history(
        &history,
        session.kept_images(),
        state_serial,
    ));
    Ok(Outcome::Success)
}

/// The history as a table, newest first, marking what runs now and which entries are
/// older than `keep_images` (their images may have been pruned). `state_serial` is the
/// recorded state's: beyond the newest entry's, state changed after that apply (one that
/// failed part-way, a `--target` apply, a hand repair), so the newest entry is only the
/// last version applied in full.
pub fn render_history(history: &History, kept: usize, state_serial: u64) -> String {
    if history.entries.is_empty() {
        return "No successful apply is recorded yet: `stackctl rollback` needs two.\n".to_string();
    }
    let newest = history.entries.len();
    let mut rows: Vec<Vec<String>> = vec![["ID", "TIME", "WHO", "COMMAND", "CHANGES"]
        .map(str::to_string)
        .to_vec()];
    for (position, entry) in history.entries.iter().enumerate().rev() {
        let command = match entry.rolled_back_to {
            Some(target) => format!("rollback to {target}"),
            None => entry.command.clone(),
        };
        let note = if position + 1 == newest && state_serial > entry.state_serial {
            format!(
                "  (the last apply made in full; state changed since: `rollback --to {}` returns to it)",
                entry.id
            )
        } else if position + 1 == newest {
            "  (running now)".to_string()
        } else if newest - position > kept {
            "  (older than `keep_images`: its images may be gone)".to_string()
        } else {
            String::new()
        };
        rows.push(vec![
            entry.id.to_string(),
            entry.time.clone(),
            entry.who.clone(),
            command,
            format!("{}{note}", summary(&entry.changes)),
        ]);
    }
    super::table::render(&rows)
}

/// What an entry changed, in one line.
fn summary(changes: &[String]) -> String {
    const SHOWN: usize = 4;
    if changes.is_empty() {
        return "no changes".to_string();
    }
    let mut text = changes
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if changes.len() > SHOWN {
        text.push_str(&format!(" and {} more", changes.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::HistoryEntry;

    fn entry(changes: &[&str], rolled_back_to: Option<u64>) -> HistoryEntry {
        HistoryEntry {
            id: 0,
            time: "2026-11-30T05:00:00Z".into(),
            who: "alice@laptop".into(),
            command: if rolled_back_to.is_some() {
                "rollback"
            } else {
                "apply"
            }
            .into(),
            rolled_back_to,
            state_serial: 1,
            fingerprint: format!("{changes:?}"),
            changes: changes.iter().map(|line| line.to_string()).collect(),
            images: Vec::new(),
            resources: Vec::new(),
        }
    }

    #[test]
    fn the_history_lists_newest_first_with_what_runs_now_and_what_may_be_pruned() {
        let mut history = History::new("shop", "lineage");
        history.record(entry(
            &[
                "+ service.web",
                "+ image.web",
                "+ route.web",
                "+ network.edge",
                "+ volume.data",
            ],
            None,
        ));
        history.record(entry(&["~ image.web", "+/- service.web"], None));
        history.record(entry(&["~ image.web", "+/- service.web"], Some(1)));
        assert_eq!(
            render_history(&history, 2, 1),
            "ID  TIME                  WHO           COMMAND        CHANGES\n\
             3   2026-11-30T05:00:00Z  alice@laptop  rollback to 1  ~ image.web, +/- service.web  (running now)\n\
             2   2026-11-30T05:00:00Z  alice@laptop  apply          ~ image.web, +/- service.web\n\
             1   2026-11-30T05:00:00Z  alice@laptop  apply          + service.web, + image.web, + route.web, + network.edge and 1 more  (older than `keep_images`: its images may be gone)\n"
        );
        // An apply after entry 3 failed part-way: entry 3 no longer says what runs.
        assert!(render_history(&history, 2, 2).contains(
            "(the last apply made in full; state changed since: `rollback --to 3` returns to it)"
        ));
    }
}
