//! `stackctl drift [--accept]`.

use crate::cli::args::PlanFormat;
use crate::cli::providers::ProviderOptions;
use crate::cli::report::{CliError, Outcome};
use crate::cli::settings::Settings;
use crate::state::JournalEntry;

use super::{identity, print, Session};

pub async fn run(
    settings: &Settings,
    format: PlanFormat,
    accept: bool,
) -> Result<Outcome, CliError> {
    let session = Session::open(settings, &ProviderOptions::default())?;
    let lock = if accept {
        Some(session.store.lock("stackctl drift --accept")?)
    } else {
        None
    };
    let Some(mut state) = (if accept {
        session.store.load_for_write()?
    } else {
        session.store.read()?
    }) else {
        print("No recorded state: nothing can have drifted. Run `stackctl apply` first.\n");
        return Ok(Outcome::Success);
    };
    let desired = session.desired(&state.salt)?;
    let snapshot = session.read_live(&desired, Some(&state)).await;
    if snapshot.read_providers.is_empty() {
        return Err(
            CliError::new("cannot read live state, so drift cannot be known")
                .cause(snapshot.unread.join("; "))
                .hint("check credentials and that the target is reachable"),
        );
    }
    let report = crate::plan::drift::detect(
        session.stack(),
        &state.resources,
        &snapshot,
        &session.schemas(),
        identity(Some(&state)),
    );
    print(&super::plan::render(&report, format, settings.color));
    if accept && report.has_changes() {
        for action in &report.actions {
            let entry = match snapshot.resources.get(&action.address) {
                Some(live) => {
                    let mut resource =
                        state
                            .resources
                            .get(&action.address)
                            .cloned()
                            .ok_or_else(|| {
                                CliError::new(format!("`{}` vanished from state", action.address))
                            })?;
                    for (name, value) in &live.attributes {
                        if resource.attributes.contains_key(name) {
                            resource.attributes.insert(name.clone(), value.clone());
                        }
                    }
                    resource.id = live.id.clone().or(resource.id);
                    // The recorded hash no longer describes what stack.toml asked for, so the
                    // next plan compares the config with the accepted values.
                    resource.hash = stackctl_provider::sha256_hex(
                        stackctl_provider::canonical_json(&resource.attributes).as_bytes(),
                    );
                    JournalEntry::Put { resource }
                }
                None => JournalEntry::Remove {
                    address: action.address.clone(),
                },
            };
            state.apply_entry(&entry);
        }
        session.store.save(&mut state)?;
        eprintln!(
            "Recorded the live state as the new state (serial {}); the target was not touched.",
            state.serial
        );
        drop(lock);
        return Ok(Outcome::Success);
    }
    if !snapshot.unread.is_empty() && !report.has_changes() {
        return Ok(Outcome::Partial);
    }
    Ok(if report.has_changes() {
        Outcome::Changes
    } else {
        Outcome::Success
    })
}
