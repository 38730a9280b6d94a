//! Recorded state: what the last apply left, in `state/<stack>.json`.
//!
//! The file carries a format version, the stack name, a lineage (a uuid fixed when the
//! state is born, so a plan made against one state is never applied to another), a serial
//! (+1 per write), a salt (secrets are stored only as digests salted with it) and one
//! record per resource. No secret value is ever written: [`stackctl_provider::Secret`]
//! serialises as its digest.
//!
//! Writes are atomic (temporary file, fsync, rename, fsync of the directory) and keep the
//! previous version as `<stack>.json.backup`. During an apply every completed action is
//! appended to `<stack>.journal` and fsynced — O(1) per action — and the journal is folded
//! into the state file once at the end, or on the next start after a crash. Rewriting the
//! whole file per action would make apply quadratic.

mod history;
mod lock;
mod store;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stackctl_provider::{Address, RecordedResource};

pub use history::{
    change_lines, images_by_address, recorded_images, History, HistoryEntry, ImageRecord,
    RollbackTargetError, DEFAULT_KEPT_IMAGES,
};
pub use lock::{LockHolder, StateLock};
pub use store::{Journal, JournalEntry, StateStore, WriteStep};

/// The newest state format this build reads and writes.
pub const STATE_FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub format_version: u32,
    pub stack: String,
    pub lineage: String,
    pub serial: u64,
    pub salt: String,
    /// SSH host key fingerprints pinned on first contact, by `address:port`.
    #[serde(default)]
    pub host_keys: BTreeMap<String, String>,
    pub resources: BTreeMap<Address, RecordedResource>,
}

impl State {
    /// A new, empty state with a fresh lineage and salt.
    pub fn new(stack: &str) -> Self {
        State {
            format_version: STATE_FORMAT_VERSION,
            stack: stack.to_string(),
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            salt: format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
            host_keys: BTreeMap::new(),
            resources: BTreeMap::new(),
        }
    }

    /// Every resource's recorded attributes, as providers see them in an `ApplyContext`.
    pub fn attributes_by_address(&self) -> BTreeMap<Address, stackctl_provider::Attributes> {
        self.resources
            .iter()
            .map(|(address, resource)| (address.clone(), resource.attributes.clone()))
            .collect()
    }

    pub fn apply_entry(&mut self, entry: &JournalEntry) {
        match entry {
            JournalEntry::Put { resource } => {
                self.resources
                    .insert(resource.address.clone(), resource.clone());
            }
            JournalEntry::Remove { address } => {
                self.resources.remove(address);
            }
            JournalEntry::PinHostKey { host, fingerprint } => {
                self.host_keys.insert(host.clone(), fingerprint.clone());
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot {operation} `{path}`: {source}")]
    Io {
        operation: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("`{path}` is not a valid state file: {message}")]
    Corrupt { path: String, message: String },
    #[error(
        "`{path}` has state format {found}, newer than this stackctl understands ({supported})"
    )]
    NewerFormat {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error("state `{stack}` is locked by {holder}")]
    Locked {
        stack: String,
        holder: Box<LockHolder>,
        path: String,
    },
    #[error("the journal `{path}` belongs to another state (lineage {journal_lineage}, serial {journal_serial}; the state has lineage {state_lineage}, serial {state_serial})")]
    JournalMismatch {
        path: String,
        journal_lineage: String,
        journal_serial: u64,
        state_lineage: String,
        state_serial: u64,
    },
}
