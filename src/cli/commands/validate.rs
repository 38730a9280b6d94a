use crate::cli::args::ReportFormat;
use crate::cli::report::{CliError, Outcome};
use crate::cli::settings::Settings;
use crate::config::{self, diagnostic, LoadOptions};

use super::print;

pub fn run(settings: &Settings, strict: bool, format: ReportFormat) -> Result<Outcome, CliError> {
    let options = LoadOptions {
        env_file: settings.env_file.clone(),
        process_environment: settings.process_environment.clone(),
        strict,
    };
    let result =
        config::load(&settings.config_path, &options).and_then(
            |loaded| match crate::context::gather(&loaded) {
                Ok(_) => Ok(loaded),
                Err(diagnostics) => Err(config::ConfigErrors {
                    diagnostics,
                    sources: loaded.sources.clone(),
                }),
            },
        );
    match (format, result) {
        (ReportFormat::Json, result) => {
            let (valid, diagnostics) = match &result {
                Ok(loaded) => (true, loaded.warnings.clone()),
                Err(errors) => (false, errors.diagnostics.clone()),
            };
            let document = serde_json::json!({
                "format_version": 1,
                "valid": valid,
                "file": settings.config_path.display().to_string(),
                "diagnostics": diagnostics,
            });
            print(&format!(
                "{}\n",
                serde_json::to_string_pretty(&document).unwrap_or_default()
            ));
            if valid {
                Ok(Outcome::Success)
            } else {
                Err(CliError::new(
                    "the stack file is not valid (details in the JSON above)",
                ))
            }
        }
        (ReportFormat::Text, Ok(loaded)) => {
            if !loaded.warnings.is_empty() {
                eprint!(
                    "{}",
                    diagnostic::render(&loaded.warnings, &loaded.sources, settings.color_errors)
                );
            }
            print(&format!(
                "{} is valid: {} services, {} routes, {} middlewares, {} droplets.\n",
                loaded.path.display(),
                loaded.config.services.len(),
                loaded.config.routes.len(),
                loaded.config.middlewares.len(),
                loaded.config.droplets.len()
            ));
            Ok(Outcome::Success)
        }
        (ReportFormat::Text, Err(errors)) => Err(CliError::Config(errors)),
    }
}
