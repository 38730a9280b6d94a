use std::path::Path;

use crate::cli::args::{PlanArgs, PlanFormat};
use crate::cli::providers::ProviderOptions;
use crate::cli::report::{CliError, Outcome};
use crate::cli::settings::Settings;
use crate::plan::{Plan, PlanMode, SavedPlan};
use crate::session::Access;

use super::{open_session, parse_targets, print};

pub async fn run(settings: &Settings, arguments: &PlanArgs) -> Result<Outcome, CliError> {
    let targets = parse_targets(&arguments.targets)?;
    let session = open_session(settings, &ProviderOptions::default(), Access::Read, None)?;
    session.check_targets(&targets)?;
    let replace = super::replace_addresses(&session, &arguments.replace)?;
    if let Some(holder) = session.lock_holder() {
        eprintln!(
            "note: the state is locked by {holder}: this plan may change when that run finishes"
        );
    }
    let events = arguments
        .json
        .then(|| super::json_events::JsonEvents::new(session.secret_values().to_vec()));
    if let Some(events) = &events {
        events.emit(&crate::render::events::started(session.stack(), "plan"));
    }
    let mut plan = session
        .plan(arguments.offline, &targets, PlanMode::Apply)
        .await?;
    session.force_replace(&mut plan, &replace);
    match &events {
        Some(events) => crate::render::events::plan(&plan)
            .iter()
            .for_each(|event| events.emit(event)),
        None => print(&render(&plan, arguments.format, settings.color)),
    }
    if let Some(out) = &arguments.out {
        write_saved(
            out,
            &SavedPlan::new(plan.clone(), session.salt().to_string()),
        )?;
        eprintln!(
            "Saved the plan to `{}`. Apply exactly this plan with `stackctl apply {}`.",
            out.display(),
            out.display()
        );
    }
    Ok(if arguments.detailed_exitcode && plan.has_changes() {
        Outcome::Changes
    } else {
        Outcome::Success
    })
}

pub fn render(plan: &Plan, format: PlanFormat, color: bool) -> String {
    match format {
        PlanFormat::Text => crate::render::text::render(plan, color),
        PlanFormat::Json => crate::render::json::render(plan),
        PlanFormat::Markdown => crate::render::markdown::render(plan),
    }
}

fn write_saved(path: &Path, saved: &SavedPlan) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(saved)
        .map_err(|error| CliError::new(format!("cannot encode the plan: {error}")))?;
    std::fs::write(path, text + "\n")
        .map_err(|error| CliError::new(format!("cannot write `{}`: {error}", path.display())))
}

pub fn read_saved(path: &Path) -> Result<SavedPlan, CliError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        CliError::new(format!(
            "cannot read the saved plan `{}`: {error}",
            path.display()
        ))
    })?;
    let saved: SavedPlan = serde_json::from_str(&text).map_err(|error| {
        CliError::new(format!(
            "`{}` is not a plan saved by `stackctl plan --out`",
            path.display()
        ))
        .cause(error.to_string())
    })?;
    if saved.kind != crate::plan::saved::SAVED_PLAN_KIND
        || saved.plan.format_version != crate::plan::PLAN_FORMAT_VERSION
    {
        return Err(CliError::new(format!(
            "`{}` was saved by another version of stackctl",
            path.display()
        ))
        .hint("make a new plan with `stackctl plan --out`"));
    }
    Ok(saved)
}

pub fn show(path: &Path, format: PlanFormat, settings: &Settings) -> Result<Outcome, CliError> {
    let saved = read_saved(path)?;
    print(&render(&saved.plan, format, settings.color));
    Ok(Outcome::Success)
}
