//! `stackctl verify`, and printing the checks that run after apply.

use crate::cli::args::ReportFormat;
use crate::cli::providers::ProviderOptions;
use crate::cli::report::{CliError, Outcome};
use crate::cli::settings::Settings;
use crate::session::{Access, VerifyReport};

use super::{open_session, print};

pub async fn run(settings: &Settings, format: ReportFormat) -> Result<Outcome, CliError> {
    let session = open_session(settings, &ProviderOptions::default(), Access::Read, None)?;
    let report = session.verify().await?;
    show(&report, format == ReportFormat::Json)
}

/// Prints the results (the JSON document, or a line per check) and fails when a check
/// failed.
pub fn show(report: &VerifyReport, json: bool) -> Result<Outcome, CliError> {
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if json {
        // The checks as in `checks.json`, beside the TLS probe as in `tls.json`.
        let checks: serde_json::Value =
            serde_json::from_str(&report.document).unwrap_or(serde_json::Value::Null);
        let document = serde_json::json!({ "checks": checks, "tls": report.tls });
        print(&(serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"));
    } else {
        let mut text = String::from("\nChecks through the edge:\n");
        for line in &report.lines {
            text.push_str(&format!("  {line}\n"));
        }
        print(&text);
    }
    outcome(report)
}

/// Fails when a check failed.
pub fn outcome(report: &VerifyReport) -> Result<Outcome, CliError> {
    if report.failed > 0 {
        return Err(CliError::new(format!("{} of {} checks failed", report.failed, report.total)).hint("each failure above says what was expected; `stackctl verify --format json` shows the full responses"));
    }
    Ok(Outcome::Success)
}
