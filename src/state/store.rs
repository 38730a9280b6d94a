//! The state file on disk: atomic writes with a backup, and the journal of completed
//! actions that an interrupted apply leaves behind.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stackctl_provider::{Address, RecordedResource};

use super::{State, StateError, StateLock, STATE_FORMAT_VERSION};

/// One completed change, appended to the journal as one JSON line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum JournalEntry {
    Put { resource: RecordedResource },
    Remove { address: Address },
    PinHostKey { host: String, fingerprint: String },
}

/// The first line of a journal: which state it extends.
#[derive(Debug, Serialize, Deserialize)]
struct JournalHeader {
    lineage: String,
    serial: u64,
}

/// The steps of an atomic write, so tests can stop between any two of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteStep {
    TemporaryWritten,
    TemporarySynced,
    BackupWritten,
    Renamed,
}

/// Where a stack's state lives: `<directory>/<stack>.json` and its companions.
#[derive(Clone, Debug)]
pub struct StateStore {
    directory: PathBuf,
    stack: String,
}

fn io_error<'a>(
    operation: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        operation,
        path: path.display().to_string(),
        source,
    }
}

impl StateStore {
    pub fn new(directory: impl Into<PathBuf>, stack: &str) -> Self {
        StateStore {
            directory: directory.into(),
            stack: stack.to_string(),
        }
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    pub fn stack(&self) -> &str {
        &self.stack
    }

    pub fn state_path(&self) -> PathBuf {
        self.directory.join(format!("{}.json", self.stack))
    }

    pub fn backup_path(&self) -> PathBuf {
        self.directory.join(format!("{}.json.backup", self.stack))
    }

    pub fn journal_path(&self) -> PathBuf {
        self.directory.join(format!("{}.journal", self.stack))
    }

    pub fn lock_path(&self) -> PathBuf {
        self.directory.join(format!("{}.lock", self.stack))
    }

    pub fn lock(&self, command: &str) -> Result<StateLock, StateError> {
        StateLock::acquire(&self.lock_path(), &self.stack, command)
    }

    /// [`StateStore::lock`], waiting up to `timeout` for a live holder (`--lock-timeout`).
    pub fn lock_waiting(
        &self,
        command: &str,
        timeout: std::time::Duration,
    ) -> Result<StateLock, StateError> {
        StateLock::acquire_waiting(&self.lock_path(), &self.stack, command, timeout)
    }

    /// Reads the state file, without folding a journal (for plans, which never write).
    /// Returns the state a pending journal would produce, so plans see completed work.
    pub fn read(&self) -> Result<Option<State>, StateError> {
        let Some(mut state) = self.read_file()? else {
            return Ok(None);
        };
        if let Some(entries) = self.read_journal(&state)? {
            for entry in &entries {
                state.apply_entry(entry);
            }
        }
        Ok(Some(state))
    }

    /// Reads the state and, if an interrupted apply left a journal, folds it into the
    /// file (one atomic write) and removes it. Call with the lock held.
    pub fn load_for_write(&self) -> Result<Option<State>, StateError> {
        let Some(mut state) = self.read_file()? else {
            return Ok(None);
        };
        if let Some(entries) = self.read_journal(&state)? {
            // An empty journal (nothing completed, or folded already) changes nothing, and
            // leaves the serial alone so saved plans stay valid.
            if !entries.is_empty() {
                for entry in &entries {
                    state.apply_entry(entry);
                }
                self.save(&mut state)?;
            }
            self.remove_journal()?;
        }
        Ok(Some(state))
    }

    fn read_file(&self) -> Result<Option<State>, StateError> {
        let path = self.state_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io_error("read", &path)(source)),
        };
        let version: serde_json::Value =
            serde_json::from_str(&text).map_err(|error| StateError::Corrupt {
                path: path.display().to_string(),
                message: error.to_string(),
            })?;
        let found = version
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0) as u32;
        if found > STATE_FORMAT_VERSION {
            return Err(StateError::NewerFormat {
                path: path.display().to_string(),
                found,
                supported: STATE_FORMAT_VERSION,
            });
        }
        // Version 1 is the first format; later versions upgrade older files here.
        let state: State =
            serde_json::from_value(version).map_err(|error| StateError::Corrupt {
                path: path.display().to_string(),
                message: error.to_string(),
            })?;
        // A state file copied from another stack would make the plan delete or adopt
        // that stack's resources under this one's name.
        if state.stack != self.stack {
            return Err(StateError::Corrupt {
                path: path.display().to_string(),
                message: format!(
                    "it records the stack `{}`, not `{}` (copied from another stack?); move it aside, or name the stack it belongs to in `[stack] name`",
                    state.stack, self.stack
                ),
            });
        }
        Ok(Some(state))
    }

    /// The journal's entries, if there is one for this state. A torn last line (a crash
    /// mid-append) is dropped: that action's completion was never acknowledged.
    fn read_journal(&self, state: &State) -> Result<Option<Vec<JournalEntry>>, StateError> {
        let path = self.journal_path();
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io_error("read", &path)(source)),
        };
        let mut lines = std::io::BufReader::new(file).lines();
        let Some(Ok(first)) = lines.next() else {
            return Ok(Some(Vec::new()));
        };
        let Ok(header) = serde_json::from_str::<JournalHeader>(&first) else {
            return Ok(Some(Vec::new()));
        };
        if header.lineage == state.lineage && header.serial < state.serial {
            // Folded already: the process stopped between writing the state and removing
            // the journal. Its entries are in the state; the file is left for removal.
            return Ok(Some(Vec::new()));
        }
        if header.lineage != state.lineage || header.serial != state.serial {
            return Err(StateError::JournalMismatch {
                path: path.display().to_string(),
                journal_lineage: header.lineage,
                journal_serial: header.serial,
                state_lineage: state.lineage.clone(),
                state_serial: state.serial,
            });
        }
        let mut entries = Vec::new();
        let mut torn: Option<String> = None;
        for line in lines {
            if let Some(message) = torn.take() {
                return Err(StateError::Corrupt {
                    path: path.display().to_string(),
                    message: format!("a journal line before the last is unreadable: {message}"),
                });
            }
            let line = line.map_err(io_error("read", &path))?;
            match serde_json::from_str::<JournalEntry>(&line) {
                Ok(entry) => entries.push(entry),
                // Only the last line can be torn (a crash mid-append); it was never
                // acknowledged, so it is dropped. A bad line before it is corruption.
                Err(error) => torn = Some(error.to_string()),
            }
        }
        Ok(Some(entries))
    }

    fn remove_journal(&self) -> Result<(), StateError> {
        let path = self.journal_path();
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(io_error("remove", &path)(error))
            }
            _ => Ok(()),
        }
    }

    /// Writes `state` with serial + 1, atomically, keeping the previous file as a backup.
    pub fn save(&self, state: &mut State) -> Result<(), StateError> {
        self.save_stopping_after(state, None)
    }

    /// [`StateStore::save`] that stops after `stop` — a crash, for tests.
    pub fn save_stopping_after(
        &self,
        state: &mut State,
        stop: Option<WriteStep>,
    ) -> Result<(), StateError> {
        state.serial += 1;
        state.format_version = STATE_FORMAT_VERSION;
        let mut text =
            serde_json::to_string_pretty(state).map_err(|error| StateError::Corrupt {
                path: self.state_path().display().to_string(),
                message: error.to_string(),
            })?;
        text.push('\n');
        write_atomically(
            &self.state_path(),
            &self.backup_path(),
            text.as_bytes(),
            stop,
        )
    }

    /// Starts the journal of an apply against `state` (which must be saved already).
    pub fn start_journal(&self, state: &State) -> Result<Journal, StateError> {
        let path = self.journal_path();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(io_error("create", &path))?;
        let header = serde_json::to_string(&JournalHeader {
            lineage: state.lineage.clone(),
            serial: state.serial,
        })
        .unwrap_or_default();
        writeln!(file, "{header}")
            .and_then(|()| file.sync_data())
            .map_err(io_error("write", &path))?;
        sync_directory(&self.directory).map_err(io_error("sync", &self.directory))?;
        Ok(Journal { file, path })
    }

    /// Folds a finished journal: writes the state once and removes the journal.
    pub fn finish_journal(&self, journal: Journal, state: &mut State) -> Result<(), StateError> {
        drop(journal);
        self.save(state)?;
        self.remove_journal()
    }
}

/// An open journal. Each [`Journal::append`] is durable when it returns.
pub struct Journal {
    file: std::fs::File,
    path: PathBuf,
}

impl Journal {
    pub fn append(&mut self, entry: &JournalEntry) -> Result<(), StateError> {
        let line = serde_json::to_string(entry).unwrap_or_default();
        // One write per line keeps a torn append at the end, where reading drops it.
        self.file
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(io_error("append to", &self.path))
    }
}

pub(super) fn write_atomically(
    path: &Path,
    backup: &Path,
    bytes: &[u8],
    stop: Option<WriteStep>,
) -> Result<(), StateError> {
    let directory = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(directory).map_err(io_error("create", directory))?;
    let temporary = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&temporary).map_err(io_error("create", &temporary))?;
    file.write_all(bytes)
        .map_err(io_error("write", &temporary))?;
    if stop == Some(WriteStep::TemporaryWritten) {
        return Ok(());
    }
    file.sync_all().map_err(io_error("sync", &temporary))?;
    drop(file);
    if stop == Some(WriteStep::TemporarySynced) {
        return Ok(());
    }
    if path.exists() {
        // Copy rather than rename: the state file must exist at every instant.
        std::fs::copy(path, backup).map_err(io_error("back up", path))?;
    }
    if stop == Some(WriteStep::BackupWritten) {
        return Ok(());
    }
    std::fs::rename(&temporary, path).map_err(io_error("rename into", path))?;
    if stop == Some(WriteStep::Renamed) {
        return Ok(());
    }
    sync_directory(directory).map_err(io_error("sync", directory))
}

fn sync_directory(directory: &Path) -> std::io::Result<()> {
    std::fs::File::open(directory)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use stackctl_provider::{Resource, Secret, Value};

    fn resource(name: &str) -> RecordedResource {
        let desired = Resource::new(Address::new("service", name), "docker")
            .with("image", "busybox")
            .with(
                "env",
                Value::Map(
                    [(
                        "PASSWORD".to_string(),
                        Value::Secret(Secret::new("hunter2", "salt")),
                    )]
                    .into(),
                ),
            );
        RecordedResource::from_desired(&desired, Some(format!("id-{name}")))
    }

    #[test]
    fn a_crash_at_any_write_step_leaves_the_old_or_the_new_state() {
        for step in [
            WriteStep::TemporaryWritten,
            WriteStep::TemporarySynced,
            WriteStep::BackupWritten,
            WriteStep::Renamed,
        ] {
            let directory = tempfile::tempdir().unwrap();
            let store = StateStore::new(directory.path(), "shop");
            let mut state = State::new("shop");
            store.save(&mut state).unwrap();
            let old = store.read().unwrap().unwrap();
            let mut next = old.clone();
            next.resources
                .insert(Address::new("service", "api"), resource("api"));
            store.save_stopping_after(&mut next, Some(step)).unwrap();
            let found = store.read().unwrap().unwrap();
            assert!(found == old || found == next, "torn state after {step:?}");
        }
    }

    #[test]
    fn the_previous_version_is_kept_as_a_backup() {
        let directory = tempfile::tempdir().unwrap();
        let store = StateStore::new(directory.path(), "shop");
        let mut state = State::new("shop");
        store.save(&mut state).unwrap();
        state
            .resources
            .insert(Address::new("service", "api"), resource("api"));
        store.save(&mut state).unwrap();
        let backup: State =
            serde_json::from_str(&std::fs::read_to_string(store.backup_path()).unwrap()).unwrap();
        assert_eq!(backup.serial, 1);
        assert!(backup.resources.is_empty());
    }

    #[test]
    fn a_journal_left_by_a_crash_is_folded_on_the_next_start_and_a_torn_line_dropped() {
        let directory = tempfile::tempdir().unwrap();
        let store = StateStore::new(directory.path(), "shop");
        let mut state = State::new("shop");
        store.save(&mut state).unwrap();
        let mut journal = store.start_journal(&state).unwrap();
        journal
            .append(&JournalEntry::Put {
                resource: resource("api"),
            })
            .unwrap();
        journal
            .append(&JournalEntry::Put {
                resource: resource("web"),
            })
            .unwrap();
        drop(journal);
        // A crash in the middle of the third append.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(store.journal_path())
            .unwrap();
        file.write_all(b"{\"op\":\"put\",\"resou").unwrap();
        let folded = store.load_for_write().unwrap().unwrap();
        assert_eq!(folded.resources.len(), 2);
        assert_eq!(folded.serial, 2);
        assert!(!store.journal_path().exists());
    }

    #[test]
    fn a_journal_folded_before_a_crash_is_removed_without_blocking_the_next_run() {
        let directory = tempfile::tempdir().unwrap();
        let store = StateStore::new(directory.path(), "shop");
        let mut state = State::new("shop");
        store.save(&mut state).unwrap();
        let mut journal = store.start_journal(&state).unwrap();
        journal
            .append(&JournalEntry::Put {
                resource: resource("api"),
            })
            .unwrap();
        drop(journal);
        // The fold wrote the state (serial 2), then the process died before removing the journal.
        let mut folded = state.clone();
        folded.apply_entry(&JournalEntry::Put {
            resource: resource("api"),
        });
        store.save(&mut folded).unwrap();
        assert!(store.journal_path().exists());
        let loaded = store.load_for_write().unwrap().unwrap();
        assert_eq!(loaded.serial, 2);
        assert_eq!(loaded.resources.len(), 1);
        assert!(!store.journal_path().exists());
    }

    #[test]
    fn no_secret_value_reaches_the_state_file() {
        let directory = tempfile::tempdir().unwrap();
        let store = StateStore::new(directory.path(), "shop");
        let mut state = State::new("shop");
        state
            .resources
            .insert(Address::new("service", "api"), resource("api"));
        store.save(&mut state).unwrap();
        let text = std::fs::read_to_string(store.state_path()).unwrap();
        assert!(!text.contains("hunter2"));
        assert!(text.contains("$secret"));
    }

    #[test]
    fn a_state_file_of_another_stack_is_refused() {
        let directory = tempfile::tempdir().unwrap();
        let other = StateStore::new(directory.path(), "other");
        other.save(&mut State::new("other")).unwrap();
        // Copied over this stack's state file, as a careless `cp` would.
        let store = StateStore::new(directory.path(), "shop");
        std::fs::copy(other.state_path(), store.state_path()).unwrap();
        for error in [
            store.read().unwrap_err(),
            store.load_for_write().unwrap_err(),
        ] {
            let message = error.to_string();
            assert!(matches!(error, StateError::Corrupt { .. }), "{message}");
            assert!(
                message.contains("records the stack `other`, not `shop`"),
                "{message}"
            );
        }
        assert!(
            other.read().unwrap().is_some(),
            "its own stack still reads it"
        );
    }

    #[test]
    fn a_second_writer_fails_naming_the_holder() {
        let directory = tempfile::tempdir().unwrap();
        let store = StateStore::new(directory.path(), "shop");
        let _held = store.lock("stackctl apply").unwrap();
        let error = store.lock("stackctl apply").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("locked by"), "{message}");
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        assert!(message.contains("`stackctl apply`"), "{message}");
    }
}
