//! `stackctl state list|show|rm|unlock` and `stackctl import`.

use stackctl_provider::Address;

use crate::cli::args::StateCommand;
use crate::cli::providers::ProviderOptions;
use crate::cli::report::{CliError, Outcome};
use crate::cli::settings::Settings;
use crate::session::Access;
use crate::state::{JournalEntry, State, StateLock, StateStore};

use super::{open_session, print};

pub async fn run(settings: &Settings, command: StateCommand) -> Result<Outcome, CliError> {
    if let StateCommand::Unlock { host: true } = command {
        let session = open_session(settings, &ProviderOptions::default(), Access::Read, None)?;
        let message = session.unlock_host().await?;
        print(&format!("{message}\n"));
        return Ok(Outcome::Success);
    }
    // Repairing state must work when the stack cannot be loaded (a missing `.env` at
    // 2 a.m.): only the stack's name is needed.
    let stack = stack_name(settings)?;
    let store = StateStore::new(&settings.state_directory, &stack);
    match command {
        StateCommand::List => {
            let state = store.read()?;
            let Some(state) = state else {
                print("No recorded state yet.\n");
                return Ok(Outcome::Success);
            };
            let mut text = format!(
                "# state `{}`: lineage {}, serial {}\n",
                state.stack, state.lineage, state.serial
            );
            for (address, resource) in &state.resources {
                text.push_str(&format!(
                    "{address}\t{}\t{}\n",
                    resource.provider,
                    resource.id.as_deref().unwrap_or("-")
                ));
            }
            print(&text);
            Ok(Outcome::Success)
        }
        StateCommand::Show { address } => {
            let address = parse(&address)?;
            let state = store.read()?.unwrap_or_else(|| State::new(&stack));
            let resource = state
                .resources
                .get(&address)
                .ok_or_else(|| not_in_state(&address))?;
            print(&format!(
                "{}\n",
                serde_json::to_string_pretty(resource).unwrap_or_default()
            ));
            Ok(Outcome::Success)
        }
        StateCommand::Rm { address } => {
            let address = parse(&address)?;
            let _lock = store.lock("stackctl state rm")?;
            let mut state = store
                .load_for_write()?
                .ok_or_else(|| not_in_state(&address))?;
            if !state.resources.contains_key(&address) {
                return Err(not_in_state(&address));
            }
            state.apply_entry(&JournalEntry::Remove {
                address: address.clone(),
            });
            store.save(&mut state)?;
            print(&format!("Forgot `{address}` (serial {}). It still exists on the target; `stackctl import` adopts it again.\n", state.serial));
            Ok(Outcome::Success)
        }
        // `--host` was handled above: it needs the whole stack, to reach the target.
        StateCommand::Unlock { .. } => {
            match StateLock::force_unlock(&store.lock_path(), &stack)? {
                Some(holder) => print(&format!(
                    "Cleared the lock left by {holder}, a run that is gone.\n"
                )),
                None => print("The state was not locked.\n"),
            }
            Ok(Outcome::Success)
        }
    }
}

pub async fn import(settings: &Settings, address: &str, id: &str) -> Result<Outcome, CliError> {
    let address = parse(address)?;
    let mut session = open_session(
        settings,
        &ProviderOptions::default(),
        Access::Write {
            command: "stackctl import".to_string(),
        },
        None,
    )?;
    session.import(&address, id).await?;
    print(&format!("Imported `{address}` (id {id}) into state; run `stackctl plan` to see any remaining differences.\n"));
    Ok(Outcome::Success)
}

fn parse(address: &str) -> Result<Address, CliError> {
    Address::parse(address).map_err(|error| CliError::new(error.to_string()))
}

fn not_in_state(address: &Address) -> CliError {
    CliError::new(format!("`{address}` is not in state"))
        .hint("`stackctl state list` shows what is recorded")
}

/// The stack's name: from the validated stack file, or — when it does not validate — read
/// straight from its `[stack] name`.
fn stack_name(settings: &Settings) -> Result<String, CliError> {
    match super::load(settings, false) {
        Ok(loaded) => Ok(loaded.config.stack.name),
        Err(errors) => {
            let name = std::fs::read_to_string(&settings.config_path)
                .ok()
                .and_then(|text| text.parse::<toml::Table>().ok())
                .and_then(|table| {
                    table
                        .get("stack")?
                        .get("name")?
                        .as_str()
                        .map(str::to_string)
                });
            name.ok_or(errors)
        }
    }
}
