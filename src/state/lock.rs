//! `state/<stack>.lock`: one writer at a time. The file is created exclusively and names
//! its holder, so a second writer fails with who holds it and since when; `stackctl state
//! unlock` removes a lock whose run is gone.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StateError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub pid: u32,
    pub host: String,
    pub user: String,
    pub command: String,
    /// RFC 3339, UTC.
    pub since: String,
}

impl LockHolder {
    pub fn current(command: &str) -> Self {
        LockHolder {
            pid: std::process::id(),
            host: gethostname::gethostname().to_string_lossy().to_string(),
            user: whoami::username(),
            command: command.to_string(),
            since: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
    }
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{}@{} (pid {}, `{}`, since {})",
            self.user, self.host, self.pid, self.command, self.since
        )
    }
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct StateLock {
    path: PathBuf,
}

impl StateLock {
    pub fn acquire(path: &Path, stack: &str, command: &str) -> Result<StateLock, StateError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| StateError::Io {
                operation: "create",
                path: parent.display().to_string(),
                source,
            })?;
        }
        let holder = LockHolder::current(command);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(mut file) => {
                let text = serde_json::to_string_pretty(&holder).unwrap_or_default();
                file.write_all(text.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|source| StateError::Io {
                        operation: "write",
                        path: path.display().to_string(),
                        source,
                    })?;
                Ok(StateLock {
                    path: path.to_path_buf(),
                })
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(StateError::Locked {
                    stack: stack.to_string(),
                    holder: Box::new(Self::holder(path).unwrap_or(LockHolder {
                        pid: 0,
                        host: "unknown".into(),
                        user: "unknown".into(),
                        command: "unknown".into(),
                        since: "unknown".into(),
                    })),
                    path: path.display().to_string(),
                })
            }
            Err(source) => Err(StateError::Io {
                operation: "create",
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Who holds the lock at `path`, if anyone.
    pub fn holder(path: &Path) -> Option<LockHolder> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Removes a lock left by a run that is gone. Returns who held it.
    pub fn force_unlock(path: &Path) -> Result<Option<LockHolder>, StateError> {
        let holder = Self::holder(path);
        match std::fs::remove_file(path) {
            Ok(()) => Ok(holder),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Io {
                operation: "remove",
                path: path.display().to_string(),
                source,
            }),
        }
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
