//! `stackctl verify`, and the checks that run after apply.

use crate::cli::args::ReportFormat;
use crate::cli::providers::{self, ProviderOptions};
use crate::cli::report::{CliError, Outcome};
use crate::cli::settings::Settings;

use super::Session;

pub async fn run(settings: &Settings, format: ReportFormat) -> Result<Outcome, CliError> {
    let session = Session::open(settings, &ProviderOptions::default())?;
    providers::verify(&session, settings, format == ReportFormat::Json, None).await
}
