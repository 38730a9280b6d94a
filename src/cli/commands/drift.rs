//! `stackctl drift [--accept]`.

use crate::cli::args::PlanFormat;
use crate::cli::providers::ProviderOptions;
use crate::cli::report::{CliError, Outcome};
use crate::cli::settings::Settings;
use crate::session::Access;

use super::{open_session, print};

pub async fn run(
    settings: &Settings,
    format: PlanFormat,
    accept: bool,
) -> Result<Outcome, CliError> {
    let access = if accept {
        Access::Write {
            command: "stackctl drift --accept".to_string(),
        }
    } else {
        Access::Read
    };
    let mut session = open_session(settings, &ProviderOptions::default(), access, None)?;
    let Some(report) = session.drift().await? else {
        print("No recorded state: nothing can have drifted. Run `stackctl apply` first.\n");
        return Ok(Outcome::Success);
    };
    print(&super::plan::render(&report.plan, format, settings.color));
    if accept && report.has_drift() {
        let serial = session.accept_drift(&report)?;
        eprintln!(
            "Recorded the live state as the new state (serial {serial}); the target was not touched."
        );
        return Ok(Outcome::Success);
    }
    if !report.unread.is_empty() && !report.has_drift() {
        return Ok(Outcome::Partial);
    }
    Ok(if report.has_drift() {
        Outcome::Changes
    } else {
        Outcome::Success
    })
}
