//! The command line: the only part of stackctl that knows clap, the terminal, exit codes
//! and the concrete providers.

pub mod args;
mod commands;
mod container_console;
mod interrupt;
mod progress;
pub mod providers;
pub mod report;
pub mod settings;
mod target_host;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
use report::CliError;
use settings::Settings;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    let settings = Settings::resolve(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command, &settings));
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(error) => {
            eprint!("{}", report::redacted(&error.render(settings.color_errors)));
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

async fn run(command: Command, settings: &Settings) -> Result<report::Outcome, CliError> {
    use commands::*;
    match command {
        Command::Validate { strict, format } => validate::run(settings, strict, format),
        Command::Plan(arguments) => plan::run(settings, &arguments).await,
        Command::Apply(arguments) => apply::run(settings, &arguments).await,
        Command::Drift { format, accept } => drift::run(settings, format, accept).await,
        Command::Destroy {
            yes,
            allow_data_loss,
            parallelism,
        } => apply::destroy(settings, yes, allow_data_loss, parallelism).await,
        Command::Show { plan, format } => plan::show(&plan, format, settings),
        Command::Verify { format } => verify::run(settings, format).await,
        Command::Import { address, id } => state::import(settings, &address, &id).await,
        Command::State(command) => state::run(settings, command).await,
        Command::Secrets(command) => secrets::run(settings, command),
        Command::Graph { format } => graph::run(settings, format),
        Command::Rollback(arguments) => rollback::run(settings, &arguments).await,
        Command::Ps { format } => ps::run(settings, format).await,
        Command::Logs(arguments) => logs::run(settings, &arguments).await,
        Command::Exec(arguments) => exec::run(settings, &arguments).await,
        Command::Schema => {
            print!("{}", schema_text());
            Ok(report::Outcome::Success)
        }
        Command::Backup(arguments) => backup::back_up(settings, &arguments).await,
        Command::Backups { name } => backup::list(settings, name.as_deref()).await,
        Command::Restore(arguments) => backup::restore(settings, &arguments).await,
        Command::Man { command } => {
            print!("{}", man_page(command.as_deref())?);
            Ok(report::Outcome::Success)
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "stackctl", &mut std::io::stdout());
            Ok(report::Outcome::Success)
        }
    }
}

/// The JSON Schema of stack.toml, as `stackctl schema` prints it and docs/ commits it.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&crate::config::json_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// The manual page (roff) from the clap definitions: stackctl's (the options, and a
/// SUBCOMMANDS section naming every command with its summary), or `stackctl-<command>`'s
/// with that command's options.
pub fn man_page(subcommand: Option<&str>) -> Result<String, CliError> {
    let mut command = <Cli as clap::CommandFactory>::command();
    command.build();
    let (page_of, title) = match subcommand {
        None => (command, "stackctl".to_string()),
        Some(name) => {
            let names: Vec<String> = command
                .get_subcommands()
                .map(|found| found.get_name().to_string())
                .collect();
            let found = command.find_subcommand(name).cloned().ok_or_else(|| {
                CliError::new(format!("stackctl has no command `{name}`"))
                    .hint(format!("the commands are {}", names.join(", ")))
            })?;
            let title = format!("stackctl-{}", found.get_name());
            (found, title)
        }
    };
    let mut page = Vec::new();
    clap_mangen::Man::new(page_of)
        .title(title)
        .render(&mut page)
        .map_err(|error| CliError::new(format!("cannot render the manual page: {error}")))?;
    Ok(String::from_utf8_lossy(&page).into_owned())
}
