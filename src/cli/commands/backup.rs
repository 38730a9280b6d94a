//! `stackctl backup`, `stackctl backups` and `stackctl restore`.

use crate::backup::human_size;
use crate::cli::args::{BackupArgs, RestoreArgs};
use crate::cli::interrupt::RestoreInterruptHandler;
use crate::cli::providers::ProviderOptions;
use crate::cli::report::{CliError, Outcome};
use crate::cli::settings::Settings;
use crate::session::{Access, ListedDump, RestorePlan};

use super::{confirm, open_session, print};

pub async fn back_up(settings: &Settings, arguments: &BackupArgs) -> Result<Outcome, CliError> {
    if arguments.list {
        return list(settings, arguments.name.as_deref()).await;
    }
    // The state lock keeps an apply (or a restore) from stopping or replacing the
    // service while its dump is being made.
    let session = open_session(
        settings,
        &ProviderOptions::default(),
        Access::Write {
            command: "stackctl backup".to_string(),
        },
        None,
    )?;
    let names: Vec<String> = arguments.name.iter().cloned().collect();
    let made = session.back_up(&names).await?;
    let mut text = String::new();
    for dump in &made {
        let mut places = Vec::new();
        if let Some(path) = &dump.on_host {
            places.push(format!("on the host at {path}"));
        }
        if let Some(path) = &dump.local_copy {
            places.push(format!("here at {}", path.display()));
        }
        text.push_str(&format!(
            "Backed up `{}` ({}): {} ({}, sha256 {}), {}.\n",
            dump.record.backup,
            dump.record.source,
            dump.record.file,
            human_size(dump.record.size),
            &dump.record.sha256[..12.min(dump.record.sha256.len())],
            places.join(" and ")
        ));
        if !dump.pruned.is_empty() {
            text.push_str(&format!(
                "  Removed {} older dump(s) beyond `keep`: {}\n",
                dump.pruned.len(),
                dump.pruned.join(", ")
            ));
        }
    }
    print(&text);
    Ok(Outcome::Success)
}

pub async fn list(settings: &Settings, name: Option<&str>) -> Result<Outcome, CliError> {
    let session = open_session(settings, &ProviderOptions::default(), Access::Read, None)?;
    let dumps = session.list_dumps(name).await?;
    print(&listing(&dumps));
    Ok(Outcome::Success)
}

/// One line per dump, oldest first, in aligned columns.
fn listing(dumps: &[ListedDump]) -> String {
    if dumps.is_empty() {
        return "No dumps yet; `stackctl backup` makes one.\n".to_string();
    }
    let mut rows = vec![[
        "BACKUP".to_string(),
        "DUMP".to_string(),
        "CREATED".to_string(),
        "SIZE".to_string(),
        "WHERE".to_string(),
    ]];
    for dump in dumps {
        let mut places = Vec::new();
        if dump.on_host {
            places.push("host".to_string());
        }
        if let Some(path) = &dump.local_copy {
            places.push(path.display().to_string());
        }
        rows.push([
            dump.backup.clone(),
            dump.file.clone(),
            dump.record
                .as_ref()
                .map_or("?".to_string(), |record| record.created.clone()),
            dump.record
                .as_ref()
                .map_or("?".to_string(), |record| human_size(record.size)),
            places.join(", "),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        text.push_str(line.join("  ").trim_end());
        text.push('\n');
    }
    text
}

pub async fn restore(settings: &Settings, arguments: &RestoreArgs) -> Result<Outcome, CliError> {
    // The state lock keeps an apply from changing the services while they are stopped.
    let session = open_session(
        settings,
        &ProviderOptions::default(),
        Access::Write {
            command: "stackctl restore".to_string(),
        },
        None,
    )?;
    let plan = session
        .prepare_restore(&arguments.name, &arguments.from)
        .await?;
    print(&describe(&plan));
    if !arguments.yes {
        if !settings.interactive {
            return Err(
                CliError::new("not restoring without confirmation; nothing was changed").hint(
                    "pass `--yes` once you are sure: the restore replaces the data shown above",
                ),
            );
        }
        if !confirm("Replace it with this dump?") {
            return Err(CliError::new("restore cancelled; nothing was changed"));
        }
    }
    let stopped = match plan.stops.is_empty() {
        true => "no service".to_string(),
        false => plan
            .stops
            .iter()
            .map(|address| format!("`{address}`"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    // Installed only now: before (the question) Ctrl-C ends the process, nothing changed.
    let handler = RestoreInterruptHandler::install(stopped);
    let restored = session.restore(&plan).await;
    drop(handler);
    let restarted = restored?;
    let mut text = format!("Restored `{}` from {}.\n", plan.backup.name, plan.file);
    if !restarted.is_empty() {
        text.push_str(&format!(
            "Stopped and started again: {}.\n",
            restarted
                .iter()
                .map(|address| format!("`{address}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    print(&text);
    Ok(Outcome::Success)
}

/// What the restore replaces, with what, and what stops meanwhile.
fn describe(plan: &RestorePlan) -> String {
    let mut text = format!(
        "Restore `{}`: replaces {} with the dump {}\n",
        plan.backup.name, plan.replaces, plan.file
    );
    match &plan.record {
        Some(record) => text.push_str(&format!(
            "  made {}, {}\n",
            record.created,
            human_size(record.size)
        )),
        None => {
            text.push_str("  (the dump has no record beside it: its time and size are unknown)\n")
        }
    }
    match &plan.upload_from {
        Some(path) => text.push_str(&format!(
            "  from this machine ({}), copied to the host first\n",
            path.display()
        )),
        None => text.push_str(&format!(
            "  on the host in {}\n",
            plan.backup.host_directory
        )),
    }
    if plan.stops.is_empty() {
        text.push_str("  nothing else is stopped\n");
    } else {
        text.push_str(&format!(
            "  stops meanwhile, then starts again: {}\n",
            plan.stops
                .iter()
                .map(|address| format!("`{address}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    text.push_str("Everything written since the dump was made is lost.\n");
    text
}
