//! Drift: what changed on the target behind stackctl's back, and accepting it — recording
//! the live values as the new state without touching the target.

use stackctl_provider::{canonical_json, sha256_hex};

use super::{identity, Session, SessionError};
use crate::plan::{LiveSnapshot, Plan};
use crate::state::JournalEntry;

/// Drift found by comparing recorded with live state.
pub struct DriftReport {
    /// The drift as a plan (one repair action per drifted resource).
    pub plan: Plan,
    /// Providers whose live state could not be read, with why.
    pub unread: Vec<String>,
    snapshot: LiveSnapshot,
}

impl DriftReport {
    pub fn has_drift(&self) -> bool {
        self.plan.has_changes()
    }
}

impl Session {
    /// Compares recorded with live state. `None` when nothing is recorded yet.
    pub async fn drift(&self) -> Result<Option<DriftReport>, SessionError> {
        let Some(state) = self.state.as_ref() else {
            return Ok(None);
        };
        let snapshot = self.read_live().await;
        if snapshot.unread.is_empty() {
            self.check_owner().await?;
        }
        if snapshot.read_providers.is_empty() {
            return Err(SessionError::LiveUnreadable {
                reasons: snapshot.unread.clone(),
            });
        }
        let plan = crate::plan::drift::detect(
            self.stack(),
            &state.resources,
            &snapshot,
            &self.schemas(),
            identity(Some(state)),
        );
        Ok(Some(DriftReport {
            plan,
            unread: snapshot.unread.clone(),
            snapshot,
        }))
    }

    /// Records the live state of every drifted resource as its new recorded state (the
    /// session must have been opened for writing). Returns the new serial.
    pub fn accept_drift(&mut self, report: &DriftReport) -> Result<u64, SessionError> {
        let Some(state) = self.state.as_mut() else {
            return Ok(0);
        };
        for action in &report.plan.actions {
            let entry = match report.snapshot.resources.get(&action.address) {
                Some(live) => {
                    let mut resource = state
                        .resources
                        .get(&action.address)
                        .cloned()
                        .ok_or_else(|| SessionError::VanishedFromState(action.address.clone()))?;
                    for (name, value) in &live.attributes {
                        if resource.attributes.contains_key(name) {
                            resource.attributes.insert(name.clone(), value.clone());
                        }
                    }
                    resource.id = live.id.clone().or(resource.id);
                    // The recorded hash no longer describes what stack.toml asked for, so the
                    // next plan compares the config with the accepted values.
                    resource.hash = sha256_hex(canonical_json(&resource.attributes).as_bytes());
                    JournalEntry::Put { resource }
                }
                None => JournalEntry::Remove {
                    address: action.address.clone(),
                },
            };
            state.apply_entry(&entry);
        }
        self.store.save(state)?;
        Ok(state.serial)
    }
}
