//! `[backups.<name>]`: what a backup names must exist, and what becomes a path must stay
//! in its directory.

use super::super::document::child_path;
use super::super::parse::{duration_seconds, Mount};
use super::super::types::Config;
use super::{is_file_safe_name, Checks};

impl Checks<'_> {
    pub(super) fn backups(&mut self, config: &Config) {
        let volumes: std::collections::BTreeMap<String, ()> = config
            .services
            .values()
            .flat_map(|service| service.volumes.iter())
            .filter_map(|text| Mount::parse(text))
            .filter(|mount| !mount.is_bind())
            .map(|mount| (mount.source, ()))
            .collect();
        for (name, backup) in &config.backups {
            let base = child_path("backups", name);
            if !is_file_safe_name(name) {
                self.error(
                    "invalid-name",
                    &base,
                    format!("backup name `{name}` is not valid: it names a directory of dumps"),
                    "ASCII letters, digits, `-`, `_` and `.`, starting with a letter or digit",
                );
            }
            match (&backup.service, &backup.volume) {
                (Some(service), None) => {
                    self.reference(
                        &child_path(&base, "service"),
                        "service",
                        service,
                        &config.services,
                    );
                }
                (None, Some(volume)) => {
                    self.reference(&child_path(&base, "volume"), "volume", volume, &volumes);
                }
                _ => {
                    self.error(
                        "invalid-backup",
                        &base,
                        format!("backup `{name}` needs exactly one of `service` and `volume`"),
                        "`service = \"postgres\"` (a pg_dump) or `volume = \"media\"` (a tar)",
                    );
                }
            }
            if backup.database.is_some() && backup.service.is_none() {
                self.error(
                    "invalid-backup",
                    &child_path(&base, "database"),
                    format!("backup `{name}` backs up a volume: `database` means nothing there"),
                    "`database` only with `service`",
                );
            }
            if backup.keep == Some(0) {
                self.error(
                    "invalid-value",
                    &child_path(&base, "keep"),
                    "`keep = 0` would remove every dump as soon as it is made".to_string(),
                    "how many dumps to keep, at least 1",
                );
            }
            if !backup.on_host && backup.local_directory.is_none() {
                self.error(
                    "invalid-backup",
                    &child_path(&base, "on_host"),
                    format!("backup `{name}` keeps its dumps nowhere"),
                    "`local_directory = \"backups\"`, or `on_host = true`",
                );
            }
            if let Some(directory) = &backup.local_directory {
                if directory.is_empty() || directory.contains('\0') {
                    self.error(
                        "invalid-value",
                        &child_path(&base, "local_directory"),
                        format!("`{directory}` is not a directory"),
                        "a directory on this machine, relative to stack.toml",
                    );
                }
            }
            if let Some(text) = &backup.timeout {
                if duration_seconds(text).is_none_or(|seconds| seconds <= 0) {
                    self.error(
                        "invalid-value",
                        &child_path(&base, "timeout"),
                        format!("`{text}` is not a duration"),
                        "a duration such as `30m` or `90s`",
                    );
                }
            }
        }
    }
}
