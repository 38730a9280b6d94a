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
                } else if directory.starts_with('/')
                    || directory.starts_with('~')
                    || !super::stays_inside(directory)
                {
                    self.error(
                        "path-outside-root",
                        &child_path(&base, "local_directory"),
                        format!("`local_directory = \"{directory}\"` of backup `{name}` leaves the directory of stack.toml"),
                        "a relative path without `..`, such as `backups`: dumps are kept beside stack.toml",
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

#[cfg(test)]
mod tests {
    use crate::config::{load_text, LoadOptions, SourceFile};

    const BASE: &str = "[stack]\nname = \"shop\"\n\n[target]\nhost = \"local\"\n\n[services.postgres]\nimage = \"postgres:16\"\nvolumes = [\"pgdata:/var/lib/postgresql/data\"]\n";

    /// (code, message, line, column) of each problem in `BASE` + `snippet`.
    fn problems(snippet: &str) -> Vec<(&'static str, String, usize, usize)> {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let source = SourceFile {
            name: "stack.toml".to_string(),
            text: format!("{BASE}{snippet}"),
        };
        let diagnostics = match load_text(source, directory.path(), &LoadOptions::default()) {
            Ok(loaded) => loaded.warnings,
            Err(errors) => errors.diagnostics,
        };
        // The hardening policy (a user, memory and CPU limits) has tests of its own.
        diagnostics
            .into_iter()
            .filter(|diagnostic| !diagnostic.code.starts_with("policy-"))
            .map(|diagnostic| {
                let (line, column) = diagnostic
                    .location
                    .map_or((0, 0), |location| (location.line, location.column));
                (diagnostic.code, diagnostic.message, line, column)
            })
            .collect()
    }

    #[test]
    fn good_backups_pass() {
        let found = problems(
            "\n[backups.db]\nservice = \"postgres\"\nkeep = 3\nlocal_directory = \"dumps\"\n\n[backups.files]\nvolume = \"pgdata\"\ntimeout = \"5m\"\n",
        );
        assert_eq!(found, vec![]);
    }

    #[test]
    fn each_backup_problem_points_at_its_key() {
        // (snippet, (code, message, line, column)); line 0: located, anywhere in the table.
        type Case<'a> = (&'a str, (&'a str, &'a str, usize, usize));
        let cases: Vec<Case> = vec![
            (
                "\n[backups.db]\nservice = \"postgress\"\n",
                (
                    "dangling-reference",
                    "`backups.db.service` refers to service `postgress`, which is not defined",
                    12,
                    11,
                ),
            ),
            (
                "\n[backups.db]\nvolume = \"media\"\n",
                (
                    "dangling-reference",
                    "`backups.db.volume` refers to volume `media`, which is not defined",
                    12,
                    10,
                ),
            ),
            (
                "\n[backups.db]\nkeep = 2\n",
                (
                    "invalid-backup",
                    "backup `db` needs exactly one of `service` and `volume`",
                    0,
                    0,
                ),
            ),
            (
                "\n[backups.db]\nservice = \"postgres\"\nkeep = 0\n",
                (
                    "invalid-value",
                    "`keep = 0` would remove every dump as soon as it is made",
                    13,
                    8,
                ),
            ),
            (
                "\n[backups.db]\nservice = \"postgres\"\non_host = false\n",
                (
                    "invalid-backup",
                    "backup `db` keeps its dumps nowhere",
                    13,
                    11,
                ),
            ),
            (
                "\n[backups.db]\nservice = \"postgres\"\ntimeout = \"soon\"\n",
                ("invalid-value", "`soon` is not a duration", 13, 11),
            ),
            (
                "\n[backups.db]\nservice = \"postgres\"\nlocal_directory = \"../dumps\"\n",
                (
                    "path-outside-root",
                    "`local_directory = \"../dumps\"` of backup `db` leaves the directory of stack.toml",
                    13,
                    19,
                ),
            ),
            (
                "\n[backups.db]\nservice = \"postgres\"\nlocal_directory = \"/var/dumps\"\n",
                (
                    "path-outside-root",
                    "`local_directory = \"/var/dumps\"` of backup `db` leaves the directory of stack.toml",
                    13,
                    19,
                ),
            ),
            (
                "\n[backups.\"../up\"]\nservice = \"postgres\"\n",
                (
                    "invalid-name",
                    "backup name `../up` is not valid: it names a directory of dumps",
                    0,
                    0,
                ),
            ),
        ];
        for (snippet, (code, message, line, column)) in cases {
            let found = problems(snippet);
            assert_eq!(found.len(), 1, "{snippet}: {found:?}");
            let (found_code, found_message, found_line, found_column) = &found[0];
            assert_eq!(
                (*found_code, found_message.as_str()),
                (code, message),
                "{snippet}"
            );
            if line > 0 {
                assert_eq!((*found_line, *found_column), (line, column), "{snippet}");
            } else {
                assert!(*found_line >= 11, "{snippet}: no location: {found:?}");
            }
        }
    }
}
