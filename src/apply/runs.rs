//! The run folder: `runs/<UTC time>/` with the plan, the event log, the outcome, and
//! each provider's evidence — every file redacted before it is written.

use std::path::{Path, PathBuf};

use super::redact::redact;

/// A folder for one run's evidence.
pub struct RunFolder {
    path: PathBuf,
    secrets: Vec<String>,
}

impl RunFolder {
    /// Creates `<root>/<UTC time>` (with a suffix if two runs start in the same second).
    pub fn create(root: &Path, secrets: Vec<String>) -> std::io::Result<RunFolder> {
        let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            .to_string()
            .replace(':', "-");
        std::fs::create_dir_all(root)?;
        for attempt in 0..100 {
            let name = if attempt == 0 {
                stamp.clone()
            } else {
                format!("{stamp}-{attempt}")
            };
            let path = root.join(name);
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(RunFolder { path, secrets }),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(error),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "too many runs in one second",
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `name` (may contain `/`), with every secret value replaced by `[redacted]`.
    pub fn write(&self, name: &str, contents: &[u8]) -> std::io::Result<()> {
        let target = self.path.join(name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text = String::from_utf8_lossy(contents);
        std::fs::write(target, redact(&text, &self.secrets))
    }
}
