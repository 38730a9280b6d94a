//! The release history: what every successful apply applied, beside the state in
//! `state/<stack>.history.json`, so that `stackctl rollback` can plan back to it.
//!
//! An entry keeps the desired resources exactly as that apply worked from them (secrets
//! only as their salted digests, like the state file: [`stackctl_provider::Secret`]
//! serialises as its digest), the images it ran (reference, image id, registry digest),
//! when, who, and a one-line summary per action. Image *contents* are not here: they stay
//! on the host for the last [`DEFAULT_KEPT_IMAGES`] entries (`[stack] keep_images`), and a
//! rollback to an entry whose image was pruned or removed is refused.
//!
//! The file belongs to one state lineage: a history written for another lineage (a state
//! started over) is not offered for rollback.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use stackctl_provider::{Action, Address, Resource};

use super::{StateError, StateStore};

/// The newest history format this build reads and writes.
pub const HISTORY_FORMAT_VERSION: u32 = 1;

/// How many successful applies keep their images on the host when stack.toml does not say.
pub const DEFAULT_KEPT_IMAGES: usize = 3;

/// How many entries the file keeps; older ones are dropped: their images are long pruned,
/// and each entry is about the size of the state file, which is committed.
const KEPT_ENTRIES: usize = 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub format_version: u32,
    pub stack: String,
    /// The lineage of the state these applies wrote.
    pub lineage: String,
    /// Oldest first.
    pub entries: Vec<HistoryEntry>,
}

/// One successful apply (or rollback).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// 1, 2, 3… in the order of the applies: what `rollback --to` takes.
    pub id: u64,
    /// RFC 3339, UTC.
    pub time: String,
    /// `user@host` of the run.
    pub who: String,
    /// `apply` or `rollback`.
    pub command: String,
    /// For a rollback: the entry it went back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_to: Option<u64>,
    /// The state serial the apply left.
    pub state_serial: u64,
    /// Every desired resource's address and hash, hashed: equal entries applied the same.
    pub fingerprint: String,
    /// What the apply changed, one line per action (`~ service.web`).
    pub changes: Vec<String>,
    /// The images the stack ran after this apply.
    pub images: Vec<ImageRecord>,
    /// The desired resources the apply worked from; secrets as salted digests only.
    pub resources: Vec<Resource>,
}

/// An image as an apply left it on the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub address: Address,
    /// The tag stackctl built, or the reference pulled.
    pub reference: String,
    pub image_id: String,
    /// The registry's digest of a pulled image, when it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// Why there is nothing to roll back to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RollbackTargetError {
    #[error("the history of this stack is empty: no successful apply was recorded yet")]
    Empty,
    #[error("there is no earlier apply to roll back to: entry {current} is the oldest that differs from what runs now")]
    NothingEarlier { current: u64 },
    #[error("the history has no entry {requested} (it has {available})")]
    Unknown { requested: u64, available: String },
    #[error("entry {requested} is what runs now: there is nothing to roll back")]
    Current { requested: u64 },
}

impl History {
    pub fn new(stack: &str, lineage: &str) -> Self {
        History {
            format_version: HISTORY_FORMAT_VERSION,
            stack: stack.to_string(),
            lineage: lineage.to_string(),
            entries: Vec::new(),
        }
    }

    /// The newest entry: what runs now, if the last apply succeeded.
    pub fn current(&self) -> Option<&HistoryEntry> {
        self.entries.last()
    }

    /// Appends `entry` with the next id, dropping the oldest beyond what the file keeps.
    /// Returns the id given.
    pub fn record(&mut self, mut entry: HistoryEntry) -> u64 {
        entry.id = self.entries.last().map_or(1, |last| last.id + 1);
        let id = entry.id;
        self.entries.push(entry);
        if self.entries.len() > KEPT_ENTRIES {
            let excess = self.entries.len() - KEPT_ENTRIES;
            self.entries.drain(..excess);
        }
        id
    }

    pub fn entry(&self, id: u64) -> Option<&HistoryEntry> {
        self.entries.iter().find(|entry| entry.id == id)
    }

    /// The entry `rollback` goes back to: `requested`, or by default the newest one before
    /// what runs now that applied something else. After a rollback to entry X, the default
    /// looks before X, so running `rollback` twice goes further back instead of returning.
    ///
    /// `state_serial` is the recorded state's now. Beyond the newest entry's, state changed
    /// after the last apply made in full — an apply that failed part-way, a `--target`
    /// apply, `drift --accept`, `import`, `state rm` — so what runs may be none of the
    /// entries, and the newest one may be asked for by its id to return to it. (The
    /// default stays the one before it: a failed apply often changed nothing that runs.)
    pub fn rollback_target(
        &self,
        requested: Option<u64>,
        state_serial: u64,
    ) -> Result<&HistoryEntry, RollbackTargetError> {
        let current = self.current().ok_or(RollbackTargetError::Empty)?;
        let changed_since = state_serial > current.state_serial;
        if let Some(requested) = requested {
            let entry = self
                .entry(requested)
                .ok_or_else(|| RollbackTargetError::Unknown {
                    requested,
                    available: self.id_range(),
                })?;
            if entry.fingerprint == current.fingerprint && !changed_since {
                return Err(RollbackTargetError::Current { requested });
            }
            return Ok(entry);
        }
        // Where the running version came from: a rollback's target, else the newest entry.
        let running_since = current.rolled_back_to.unwrap_or(current.id);
        self.entries
            .iter()
            .rev()
            .filter(|entry| entry.id < running_since)
            .find(|entry| entry.fingerprint != current.fingerprint)
            .ok_or(RollbackTargetError::NothingEarlier {
                current: running_since,
            })
    }

    /// The rollback that produced what runs now, if the last successful apply was one.
    pub fn rolled_back(&self) -> Option<&HistoryEntry> {
        self.current()
            .filter(|entry| entry.rolled_back_to.is_some())
    }

    /// The image ids the last `keep` entries ran: the images pruning leaves on the host.
    pub fn kept_image_ids(&self, keep: usize) -> BTreeSet<String> {
        self.entries
            .iter()
            .rev()
            .take(keep.max(1))
            .flat_map(|entry| entry.images.iter())
            .map(|image| image.image_id.clone())
            .filter(|id| !id.is_empty())
            .collect()
    }

    fn id_range(&self) -> String {
        match (self.entries.first(), self.entries.last()) {
            (Some(first), Some(last)) if first.id == last.id => format!("only {}", first.id),
            (Some(first), Some(last)) => format!("{} to {}", first.id, last.id),
            _ => "none".to_string(),
        }
    }
}

/// One line per action of an applied plan: its glyph and address (`+/- service.web`).
pub fn change_lines(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|action| format!("{} {}", action.kind.glyph(), action.address))
        .collect()
}

/// The images a state records: each `image.*` resource's reference and ids.
pub fn recorded_images(state: &super::State) -> Vec<ImageRecord> {
    state
        .resources
        .values()
        .filter(|resource| resource.address.kind() == "image")
        .filter_map(|resource| {
            let text = |name: &str| {
                resource
                    .attributes
                    .get(name)
                    .and_then(|value| value.as_text())
                    .map(str::to_string)
            };
            Some(ImageRecord {
                address: resource.address.clone(),
                reference: text("tag").or_else(|| text("reference"))?,
                image_id: text("image_id").unwrap_or_default(),
                digest: text("digest"),
            })
        })
        .collect()
}

/// The images of an entry by address.
pub fn images_by_address(entry: &HistoryEntry) -> BTreeMap<&Address, &ImageRecord> {
    entry
        .images
        .iter()
        .map(|image| (&image.address, image))
        .collect()
}

impl StateStore {
    pub fn history_path(&self) -> std::path::PathBuf {
        self.directory()
            .join(format!("{}.history.json", self.stack()))
    }

    fn history_backup_path(&self) -> std::path::PathBuf {
        self.directory()
            .join(format!("{}.history.json.backup", self.stack()))
    }

    /// Reads the history of `lineage`: empty when there is none yet, or when the file
    /// belongs to another lineage (a state that started over has no past to go back to).
    pub fn read_history(&self, lineage: &str) -> Result<History, StateError> {
        let path = self.history_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(History::new(self.stack(), lineage))
            }
            Err(source) => {
                return Err(StateError::Io {
                    operation: "read",
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let history: History =
            serde_json::from_str(&text).map_err(|error| StateError::Corrupt {
                path: path.display().to_string(),
                message: error.to_string(),
            })?;
        if history.format_version > HISTORY_FORMAT_VERSION {
            return Err(StateError::NewerFormat {
                path: path.display().to_string(),
                found: history.format_version,
                supported: HISTORY_FORMAT_VERSION,
            });
        }
        if history.lineage != lineage || history.stack != self.stack() {
            return Ok(History::new(self.stack(), lineage));
        }
        Ok(history)
    }

    /// Writes the history atomically, keeping the previous file as a backup.
    pub fn save_history(&self, history: &History) -> Result<(), StateError> {
        let mut text =
            serde_json::to_string_pretty(history).map_err(|error| StateError::Corrupt {
                path: self.history_path().display().to_string(),
                message: error.to_string(),
            })?;
        text.push('\n');
        super::store::write_atomically(
            &self.history_path(),
            &self.history_backup_path(),
            text.as_bytes(),
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fingerprint: &str, image_id: &str) -> HistoryEntry {
        HistoryEntry {
            id: 0,
            time: "2026-11-30T05:00:00Z".into(),
            who: "alice@laptop".into(),
            command: "apply".into(),
            rolled_back_to: None,
            state_serial: 1,
            fingerprint: fingerprint.into(),
            changes: vec!["~ service.web".into()],
            images: vec![ImageRecord {
                address: Address::new("image", "web"),
                reference: format!("shop/web:{image_id}"),
                image_id: image_id.into(),
                digest: None,
            }],
            resources: Vec::new(),
        }
    }

    fn history(fingerprints: &[&str]) -> History {
        let mut history = History::new("shop", "lineage");
        for (index, fingerprint) in fingerprints.iter().enumerate() {
            history.record(entry(fingerprint, &format!("sha256:{index}")));
        }
        history
    }

    #[test]
    fn entries_are_numbered_in_order_and_the_oldest_beyond_the_limit_are_dropped() {
        let many: Vec<String> = (0..KEPT_ENTRIES + 2).map(|n| n.to_string()).collect();
        let names: Vec<&str> = many.iter().map(String::as_str).collect();
        let history = history(&names);
        assert_eq!(history.entries.len(), KEPT_ENTRIES);
        assert_eq!(history.entries[0].id, 3);
        assert_eq!(history.current().unwrap().id, KEPT_ENTRIES as u64 + 2);
    }

    #[test]
    fn the_default_target_is_the_newest_earlier_entry_that_applied_something_else() {
        let history = history(&["v1", "v2", "v2", "v3"]);
        assert_eq!(history.rollback_target(None, 1).unwrap().id, 3);
        // An entry that applied what runs now is skipped.
        let history = self::history(&["v1", "v2", "v3", "v3"]);
        assert_eq!(history.rollback_target(None, 1).unwrap().id, 2);
    }

    #[test]
    fn after_a_rollback_the_default_goes_further_back_not_forward() {
        let mut history = history(&["v1", "v2", "v3"]);
        let mut rollback = entry("v2", "sha256:1");
        rollback.command = "rollback".into();
        rollback.rolled_back_to = Some(2);
        history.record(rollback);
        assert_eq!(history.rolled_back().unwrap().rolled_back_to, Some(2));
        assert_eq!(history.rollback_target(None, 1).unwrap().id, 1);
    }

    #[test]
    fn after_state_changed_past_the_newest_entry_that_entry_may_be_asked_for() {
        // v3's apply failed part-way (or was a `--target` apply): no entry, but the state
        // moved on from v2's serial, so `--to 2` returns to v2, the last version applied
        // in full; the default still goes before it.
        let history = history(&["v1", "v2"]);
        assert_eq!(history.rollback_target(Some(2), 2).unwrap().id, 2);
        assert_eq!(history.rollback_target(None, 2).unwrap().id, 1);
        // Nothing since v2's apply: v2 is what runs.
        assert_eq!(
            history.rollback_target(Some(2), 1),
            Err(RollbackTargetError::Current { requested: 2 })
        );
    }

    #[test]
    fn a_target_that_is_missing_current_or_absent_is_refused_with_the_reason() {
        assert_eq!(
            History::new("shop", "l").rollback_target(None, 1),
            Err(RollbackTargetError::Empty)
        );
        let history = history(&["v1", "v2"]);
        assert_eq!(
            history.rollback_target(Some(7), 1),
            Err(RollbackTargetError::Unknown {
                requested: 7,
                available: "1 to 2".into()
            })
        );
        assert_eq!(
            history.rollback_target(Some(2), 1),
            Err(RollbackTargetError::Current { requested: 2 })
        );
        assert_eq!(history.rollback_target(Some(1), 1).unwrap().id, 1);
        let single = self::history(&["v1"]);
        assert_eq!(
            single.rollback_target(None, 1),
            Err(RollbackTargetError::NothingEarlier { current: 1 })
        );
    }

    #[test]
    fn the_images_of_exactly_the_last_n_entries_are_kept() {
        let history = history(&["v1", "v2", "v3", "v4", "v5"]);
        let kept = history.kept_image_ids(3);
        let expected: BTreeSet<String> = ["sha256:2", "sha256:3", "sha256:4"]
            .map(str::to_string)
            .into();
        assert_eq!(kept, expected);
        assert_eq!(
            history.kept_image_ids(0).len(),
            1,
            "what runs now is never pruned"
        );
    }

    #[test]
    fn a_history_round_trips_and_one_of_another_lineage_is_not_offered() {
        let directory = tempfile::tempdir().unwrap();
        let store = StateStore::new(directory.path(), "shop");
        let mut history = History::new("shop", "lineage-a");
        history.record(entry("v1", "sha256:a"));
        store.save_history(&history).unwrap();
        assert_eq!(store.read_history("lineage-a").unwrap(), history);
        assert!(store.read_history("lineage-b").unwrap().entries.is_empty());
    }
}
