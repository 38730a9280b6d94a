//! `stackctl secrets generate`: names what was filled, never a value.

use crate::cli::args::SecretsCommand;
use crate::cli::report::{CliError, Outcome};
use crate::cli::settings::Settings;
use crate::session::{generate_secrets, SecretsError};

use super::print;

pub fn run(settings: &Settings, command: SecretsCommand) -> Result<Outcome, CliError> {
    match command {
        SecretsCommand::Generate => generate(settings),
    }
}

fn generate(settings: &Settings) -> Result<Outcome, CliError> {
    let generated = generate_secrets(
        &settings.config_path,
        settings.env_file.as_deref(),
        &settings.process_environment,
    )
    .map_err(|error| match error {
        SecretsError::Config(errors) => CliError::Config(errors),
        SecretsError::NoEnvFile => CliError::new("the stack names no env file to fill")
            .hint("set `[stack] env_file = \".env\"` in the stack file, or pass `--env-file .env`"),
        other => CliError::new(other.to_string()),
    })?;
    let file = generated.env_file.display();
    let mut text = String::new();
    if generated.filled.is_empty() {
        text.push_str(&format!(
            "{file} already has every secret the stack uses; nothing generated.\n"
        ));
    } else {
        text.push_str(&format!(
            "Generated {} in {file} (mode 0600; values not shown):\n",
            generated.filled.len()
        ));
        for name in &generated.filled {
            text.push_str(&format!("  {name}\n"));
        }
    }
    if let Some(gitignore) = &generated.ignored_in {
        text.push_str(&format!(
            "Added {file} to {} so git never commits it.\n",
            gitignore.display()
        ));
    }
    print(&text);
    if !generated.left_to_user.is_empty() {
        eprintln!(
            "warning: not secrets, so not generated; set them in {file}: {}",
            generated
                .left_to_user
                .iter()
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(Outcome::Success)
}
