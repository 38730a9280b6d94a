//! One module per command; each takes settled [`Settings`], calls the engine's
//! [`Session`], prints what it returns, and gives back an [`Outcome`]. The use cases
//! themselves live in `crate::session`.

pub mod apply;
pub mod backup;
pub mod drift;
pub mod exec;
pub mod graph;
pub mod json_events;
pub mod logs;
pub mod plan;
pub mod ps;
pub mod rollback;
pub mod secrets;
pub mod state;
pub mod table;
pub mod validate;
pub mod verify;

use std::io::Write;

use stackctl_provider::Address;

use super::providers::ProviderOptions;
use super::report::CliError;
use super::settings::Settings;
use crate::config;
use crate::session::{Access, Session, SessionSettings};

/// Opens the session of a command: loads the stack and its state, builds the providers,
/// computes the desired resources once. Shows the stack file's warnings and remembers
/// its secrets, so that nothing printed later can show one.
pub fn open_session(
    settings: &Settings,
    options: &ProviderOptions,
    access: Access,
    saved_salt: Option<&str>,
) -> Result<Session, CliError> {
    let loaded = load(settings, false)?;
    tracing::debug!("configuration loaded");
    for warning in &loaded.warnings {
        eprint!(
            "{}",
            config::diagnostic::render(
                std::slice::from_ref(warning),
                &loaded.sources,
                settings.color_errors
            )
        );
    }
    let options = ProviderOptions {
        ssh_config: settings.ssh_config.clone(),
        ..options.clone()
    };
    let session = Session::open_loaded(
        loaded,
        &session_settings(settings),
        &options,
        access,
        saved_salt,
    )?;
    super::report::remember_secrets(session.secret_values().to_vec());
    if let Some(holder) = session.lock_taken_over_from() {
        eprintln!(
            "warning: took over the state lock left by {holder}: that run ended without releasing it (killed?); completed actions it recorded are kept"
        );
    }
    Ok(session)
}

/// The part of the settings the engine needs.
pub fn session_settings(settings: &Settings) -> SessionSettings {
    SessionSettings {
        config_path: settings.config_path.clone(),
        env_file: settings.env_file.clone(),
        process_environment: settings.process_environment.clone(),
        state_directory: settings.state_directory.clone(),
        runs_directory: settings.runs_directory.clone(),
        lock_timeout: settings.lock_timeout,
    }
}

pub fn load(settings: &Settings, strict: bool) -> Result<config::LoadedConfig, CliError> {
    Ok(crate::session::load(&session_settings(settings), strict)?)
}

pub fn parse_targets(targets: &[String]) -> Result<Vec<Address>, CliError> {
    targets
        .iter()
        .map(|target| {
            Address::parse(target).map_err(|error| {
                CliError::new(error.to_string())
                    .hint("addresses look like `service.api`; `stackctl state list` shows them")
            })
        })
        .collect()
}

/// Parses `--replace` addresses and checks them against stack.toml.
pub fn replace_addresses(session: &Session, replace: &[String]) -> Result<Vec<Address>, CliError> {
    let addresses = parse_targets(replace)?;
    session.check_replace(&addresses).map_err(|error| {
        let hint = if error.nearest.is_empty() {
            "addresses look like `service.api`; `stackctl state list` shows them".to_string()
        } else {
            format!(
                "did you mean {}?",
                error
                    .nearest
                    .iter()
                    .map(|name| format!("`{name}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        };
        CliError::new(error.to_string()).hint(hint)
    })?;
    Ok(addresses)
}

/// Writes to stdout, ignoring a closed pipe (`stackctl plan | head`).
pub fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Asks on the terminal; anything but `yes`/`y` declines.
pub fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
