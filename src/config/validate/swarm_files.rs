//! The `[files]` entries a swarm service mounts, checked as Swarm takes them: each is a
//! Swarm config (a secret, when its content holds one) whose data Swarm refuses when it
//! is empty or too large, and a secret one must not take the path where the service's
//! secret env value is mounted. Found here, these fail `validate` and `plan` at the entry,
//! not the apply halfway.

use std::collections::BTreeMap;
use std::path::Path;

use super::super::derived::files_entry_at;
use super::super::document::{child_path, index_path};
use super::super::parse::Mount;
use super::super::types::{Config, FileConfig};
use super::Checks;

/// Swarm refuses a config of this many bytes or more (swarmkit's `MaxConfigSize`,
/// manager/controlapi/config.go: 1000 KiB).
pub const CONFIG_SIZE_LIMIT: u64 = 1000 * 1024;
/// Swarm refuses a secret of this many bytes or more (swarmkit's `MaxSecretSize`,
/// api/validation/secrets.go: 500 KiB).
pub const SECRET_SIZE_LIMIT: u64 = 500 * 1024;

/// Where a swarm service's secret env value `VAR` is mounted (see the docker provider's
/// swarm secrets): the service's env then names it in `VAR_FILE`.
const SECRETS_DIRECTORY: &str = "/run/secrets";

/// Why Swarm would refuse `size` bytes as a config (`secret = false`) or secret, or `None`.
pub fn refused_size(size: u64, secret: bool) -> Option<String> {
    let (kind, limit) = if secret {
        ("secret", SECRET_SIZE_LIMIT)
    } else {
        ("config", CONFIG_SIZE_LIMIT)
    };
    if size == 0 {
        Some(format!(
            "it is empty, and Swarm refuses a {kind} without data"
        ))
    } else if size >= limit {
        Some(format!(
            "it is {size} bytes, and Swarm takes a {kind} of less than {limit} bytes ({} KiB)",
            limit / 1024
        ))
    } else {
        None
    }
}

impl Checks<'_> {
    pub(super) fn swarm_files(&mut self, config: &Config, base_directory: &Path) {
        let on_swarm = config
            .target
            .as_ref()
            .is_some_and(|target| target.swarm.is_some());
        if !on_swarm {
            return;
        }
        // Each mounted entry once, with the first service that mounts it (for the message).
        let mut mounted: BTreeMap<&str, &str> = BTreeMap::new();
        for (service_name, service) in &config.services {
            let base = child_path("services", service_name);
            for (index, mount) in service
                .volumes
                .iter()
                .enumerate()
                .filter_map(|(index, text)| Some((index, Mount::parse(text)?)))
            {
                let Some(file_name) = files_entry_at(config, &mount.source) else {
                    continue;
                };
                mounted.entry(file_name).or_insert(service_name);
                let Some(file) = config.files.get(file_name) else {
                    continue;
                };
                let Some(variable) = mount
                    .target
                    .strip_prefix(SECRETS_DIRECTORY)
                    .and_then(|rest| rest.strip_prefix('/'))
                else {
                    continue;
                };
                let env_secret = service
                    .env
                    .get(variable)
                    .is_some_and(|value| self.environment.interpolate(value).secret);
                if env_secret && self.holds_secret(file) {
                    self.error(
                        "swarm-secret-path-taken",
                        &index_path(&child_path(&base, "volumes"), index),
                        format!("service `{service_name}` mounts secret file `{file_name}` at `{}`, where its secret env value `{variable}` is mounted on a swarm (its env names it in `{variable}_FILE`)", mount.target),
                        "another path in the task",
                    )
                    .hint = Some(format!("mount `files.{file_name}` elsewhere, e.g. `/run/secrets/{file_name}`"));
                }
            }
        }
        for (file_name, service_name) in mounted {
            let Some(file) = config.files.get(file_name) else {
                continue;
            };
            let secret = self.holds_secret(file);
            let (key, size) = match (&file.content, &file.source) {
                (Some(content), _) => {
                    let resolved = self.environment.interpolate(content);
                    // A variable without a value is reported where it is used.
                    if !resolved.missing.is_empty() {
                        continue;
                    }
                    ("content", resolved.text.len() as u64)
                }
                (None, Some(source)) => match std::fs::metadata(base_directory.join(source)) {
                    Ok(metadata) => ("source", metadata.len()),
                    Err(_) => continue,
                },
                (None, None) => continue,
            };
            if let Some(why) = refused_size(size, secret) {
                let kind = if secret { "secret" } else { "config" };
                self.error(
                    "swarm-file-size",
                    &child_path(&child_path("files", file_name), key),
                    format!("file `{file_name}` is mounted by swarm service `{service_name}` as a Swarm {kind}, but {why}"),
                    if secret {
                        "between 1 byte and 500 KiB"
                    } else {
                        "between 1 byte and 1000 KiB"
                    },
                )
                .hint = Some("an empty file can hold a newline or a comment; a larger one belongs in the image or a volume".into());
            }
        }
    }

    /// Whether an entry's content holds a secret (a secret variable in `content`): on a
    /// swarm it is then a Swarm secret, not a config.
    fn holds_secret(&self, file: &FileConfig) -> bool {
        file.content
            .as_deref()
            .is_some_and(|content| self.environment.interpolate(content).secret)
    }
}
