//! Backups, as pure decisions: which `[backups.<name>]` protect what, the one-off
//! containers that dump and restore them, how dumps are named, and which are pruned. The
//! session (`session/backup.rs`) carries them out through the host's [`HostTasks`].
//!
//! A dump is made in a one-off container beside the service: `pg_dump --format=custom`
//! for a Postgres service (from the image its container runs, with its env and on its
//! network), or `tar` of a volume mounted read-only. It is written under a hidden
//! temporary name in `<root>/backups/<name>/`, readable by its owner only, and renamed
//! when complete, so a failed dump never looks like a dump.
//!
//! [`HostTasks`]: stackctl_provider::HostTasks

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use stackctl_provider::{Address, EnvFrom, MountSource, OneOffMount, OneOffTask};

use crate::config::parse::{duration_seconds, Mount};
use crate::config::{BackupConfig, Config};

/// How many dumps are kept when `keep` is not set.
pub const DEFAULT_KEEP: usize = 7;

/// How long a dump or a restore may run when `timeout` is not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Where a dump directory is mounted in the one-off container.
const DUMPS_IN_CONTAINER: &str = "/backup";

/// Where a backed-up volume is mounted in the one-off container.
const VOLUME_IN_CONTAINER: &str = "/volume";

/// `sh -c` scripts: `$1` is the dump's file name. The dump is written under a hidden
/// name, readable by its owner only, and renamed once complete.
/// The dump's size and sha256 are computed here, on the host, and printed on a line of
/// their own ([`DIGEST_MARKER`]): stackctl never reads a dump to learn them.
const PG_DUMP_SCRIPT: &str = r#"umask 077; partial="/backup/.$1.partial"; if pg_dump --format=custom --no-owner --file="$partial" && size=$(wc -c < "$partial") && sum=$(sha256sum "$partial") && mv "$partial" "/backup/$1"; then echo "stackctl-dump-digest $size ${sum%% *}"; else status=$?; rm -f "$partial"; exit "$status"; fi"#;
const TAR_SCRIPT: &str = r#"umask 077; partial="/backup/.$1.partial"; if tar -cf "$partial" -C /volume . && size=$(wc -c < "$partial") && sum=$(sha256sum "$partial") && mv "$partial" "/backup/$1"; then echo "stackctl-dump-digest $size ${sum%% *}"; else status=$?; rm -f "$partial"; exit "$status"; fi"#;

/// Starts the line a dump script prints with the dump's size and sha256.
const DIGEST_MARKER: &str = "stackctl-dump-digest ";

/// The size and `sha256:<hex>` a dump script printed in its log, if it did.
pub fn dump_digest(log: &str) -> Option<(u64, String)> {
    let line = log
        .lines()
        .rev()
        .find_map(|line| line.trim_end().strip_prefix(DIGEST_MARKER))?;
    let (size, sha256) = line.split_once(' ')?;
    let valid = sha256.len() == 64 && sha256.chars().all(|c| c.is_ascii_hexdigit());
    Some((size.trim().parse().ok()?, format!("sha256:{sha256}"))).filter(|_| valid)
}

/// The checks every restore makes before it touches anything: `$2` and `$3` are the
/// sha256 and size the dump's record holds (empty when it has none). Exit status 65
/// means the dump is damaged and nothing was changed.
const CHECK_DUMP_SCRIPT: &str = r#"dump="/backup/$1"; if [ ! -f "$dump" ]; then echo "stackctl: $dump is not on the host; nothing was changed" >&2; exit 65; fi; if [ -n "$3" ]; then size=$(wc -c < "$dump"); if [ "$size" -ne "$3" ]; then echo "stackctl: the dump is $size bytes but its record says $3: it is incomplete or damaged; nothing was changed" >&2; exit 65; fi; fi; if [ -n "$2" ]; then sum=$(sha256sum "$dump" | cut -d " " -f 1); if [ "$sum" != "$2" ]; then echo "stackctl: the dump's sha256 is $sum but its record says $2: it is damaged; nothing was changed" >&2; exit 65; fi; fi; "#;
/// Checked (the archive's table of contents reads), then one transaction: a restore
/// that fails halfway leaves the database as it was.
const PG_RESTORE_SCRIPT: &str = r#"if ! pg_restore --list "$dump" > /dev/null; then echo "stackctl: the dump is not a readable pg_dump archive; nothing was changed" >&2; exit 65; fi; exec pg_restore --clean --if-exists --no-owner --single-transaction --exit-on-error --dbname="$PGDATABASE" "$dump""#;
/// Checked (the whole tar reads), and only then the volume is emptied and holds exactly
/// what the tar holds (owners and modes too).
const TAR_RESTORE_SCRIPT: &str = r#"if ! tar -tf "$dump" > /dev/null; then echo "stackctl: the dump is not a readable tar archive; nothing was changed" >&2; exit 65; fi; set -e; find /volume -mindepth 1 -delete; tar -xpf "$dump" -C /volume"#;

/// The exit status of a restore that refused a damaged dump before changing anything.
pub const DAMAGED_DUMP_EXIT: i64 = 65;

/// What one backup dumps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackupSource {
    /// A Postgres service's database (`None`: the service's own default).
    Postgres {
        service: String,
        database: Option<String>,
    },
    /// A named volume; `service` mounts it and lends its image (which has `sh` and `tar`).
    Volume { volume: String, service: String },
}

/// `[backups.<name>]`, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    pub name: String,
    pub source: BackupSource,
    pub keep: usize,
    pub on_host: bool,
    /// `<root>/backups/<name>` on the host.
    pub host_directory: String,
    /// `<local_directory>/<name>` on this machine.
    pub local_directory: Option<PathBuf>,
    pub timeout: Duration,
}

/// Every `[backups.*]` of a validated stack, by name.
pub fn backups(config: &Config, base_directory: &Path) -> Vec<Backup> {
    let root = crate::lower::host_root(config);
    config
        .backups
        .iter()
        .filter_map(|(name, backup)| resolve(config, &root, base_directory, name, backup))
        .collect()
}

fn resolve(
    config: &Config,
    root: &str,
    base_directory: &Path,
    name: &str,
    backup: &BackupConfig,
) -> Option<Backup> {
    let source = match (&backup.service, &backup.volume) {
        (Some(service), _) => BackupSource::Postgres {
            service: service.clone(),
            database: backup.database.clone(),
        },
        (None, Some(volume)) => BackupSource::Volume {
            volume: volume.clone(),
            service: services_mounting(config, volume).into_iter().next()?,
        },
        (None, None) => return None,
    };
    Some(Backup {
        name: name.to_string(),
        source,
        keep: backup
            .keep
            .map_or(DEFAULT_KEEP, |keep| keep.max(1) as usize),
        on_host: backup.on_host,
        host_directory: format!("{}/backups/{name}", root.trim_end_matches('/')),
        local_directory: backup
            .local_directory
            .as_ref()
            .map(|directory| crate::context::resolve_path(base_directory, directory).join(name)),
        timeout: backup
            .timeout
            .as_deref()
            .and_then(duration_seconds)
            .map_or(DEFAULT_TIMEOUT, |seconds| {
                Duration::from_secs(seconds.max(1) as u64)
            }),
    })
}

/// The services that mount `volume`, by name.
pub fn services_mounting(config: &Config, volume: &str) -> Vec<String> {
    config
        .services
        .iter()
        .filter(|(_, service)| {
            service
                .volumes
                .iter()
                .filter_map(|text| Mount::parse(text))
                .any(|mount| !mount.is_bind() && mount.source == volume)
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// The services that depend on `service`, directly or through others, by name.
pub fn dependants(config: &Config, service: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut frontier = vec![service.to_string()];
    while let Some(current) = frontier.pop() {
        for (name, other) in &config.services {
            if other.depends_on.contains(&current) && !found.contains(name) && name != service {
                found.push(name.clone());
                frontier.push(name.clone());
            }
        }
    }
    found.sort();
    found
}

impl Backup {
    /// `dump` for `pg_dump`'s custom format, `tar` for a volume.
    pub fn extension(&self) -> &'static str {
        match self.source {
            BackupSource::Postgres { .. } => "dump",
            BackupSource::Volume { .. } => "tar",
        }
    }

    /// The service whose container lends image, env and network.
    pub fn service(&self) -> &str {
        match &self.source {
            BackupSource::Postgres { service, .. } | BackupSource::Volume { service, .. } => {
                service
            }
        }
    }

    /// In words, for listings and the restore's question: what a restore replaces.
    pub fn describe(&self) -> String {
        match &self.source {
            BackupSource::Postgres { service, database } => match database {
                Some(database) => format!("database `{database}` of `service.{service}`"),
                None => format!("the database of `service.{service}`"),
            },
            BackupSource::Volume { volume, service } => {
                format!("volume `{volume}` (mounted by `service.{service}`)")
            }
        }
    }

    /// `<name>-<UTC time>.<extension>`: sorting names sorts dumps by time.
    pub fn file_name(&self, at: SystemTime) -> String {
        let time = humantime::format_rfc3339_millis(at)
            .to_string()
            .replace(['-', ':'], "");
        format!("{}-{time}.{}", self.name, self.extension())
    }

    /// When `file` was made, if it is one of this backup's dumps (`20261130T042033.123Z`).
    pub fn dump_time<'a>(&self, file: &'a str) -> Option<&'a str> {
        let time = file
            .strip_prefix(&self.name)?
            .strip_prefix('-')?
            .strip_suffix(self.extension())?
            .strip_suffix('.')?;
        let shape_ok = time.len() == 20
            && time.char_indices().all(|(index, c)| match index {
                8 => c == 'T',
                15 => c == '.',
                19 => c == 'Z',
                _ => c.is_ascii_digit(),
            });
        shape_ok.then_some(time)
    }

    /// This backup's dumps among `files`, oldest first.
    pub fn dumps_among(&self, files: &[String]) -> Vec<String> {
        let mut dumps: Vec<String> = files
            .iter()
            .filter(|file| self.dump_time(file).is_some())
            .cloned()
            .collect();
        dumps.sort();
        dumps
    }

    /// The dumps to remove so that the newest `keep` remain.
    pub fn to_prune(&self, files: &[String]) -> Vec<String> {
        let dumps = self.dumps_among(files);
        let excess = dumps.len().saturating_sub(self.keep);
        dumps.into_iter().take(excess).collect()
    }

    /// The service as an address.
    pub fn service_address(&self) -> Address {
        Address::new("service", self.service())
    }

    fn label(&self) -> Address {
        Address::new("backup", &self.name)
    }

    fn dumps_mount(&self, read_only: bool) -> OneOffMount {
        OneOffMount {
            source: MountSource::HostDirectory(self.host_directory.clone()),
            target: DUMPS_IN_CONTAINER.to_string(),
            read_only,
        }
    }

    fn task(&self, script: &str, arguments: &[&str], mounts: Vec<OneOffMount>) -> OneOffTask {
        let mut env = Vec::new();
        if let BackupSource::Postgres { service, database } = &self.source {
            env = postgres_env(service, database.as_deref());
        }
        OneOffTask {
            label: self.label(),
            beside: self.service_address(),
            beside_container: None,
            argv: ["sh", "-c", script, "sh"]
                .iter()
                .chain(arguments)
                .map(|argument| argument.to_string())
                .collect(),
            env,
            // Root can write the dump directory and read the volume whatever its owners.
            user: Some("0".into()),
            mounts,
            timeout: self.timeout,
        }
    }

    /// The one-off container that writes the dump `file` into the host directory.
    pub fn dump_task(&self, file: &str) -> OneOffTask {
        match &self.source {
            BackupSource::Postgres { .. } => {
                self.task(PG_DUMP_SCRIPT, &[file], vec![self.dumps_mount(false)])
            }
            BackupSource::Volume { volume, .. } => self.task(
                TAR_SCRIPT,
                &[file],
                vec![self.dumps_mount(false), volume_mount(volume, true)],
            ),
        }
    }

    /// The one-off container that restores the dump `file` from the host directory. It
    /// first checks the dump against `record` (its size and sha256, on the host) and
    /// reads the archive through; only then does it replace anything.
    pub fn restore_task(&self, file: &str, record: Option<&DumpRecord>) -> OneOffTask {
        // The record holds `sha256:<hex>`; `sha256sum` prints the hex alone.
        let sha256 = record.map_or(String::new(), |record| {
            record.sha256.trim_start_matches("sha256:").to_string()
        });
        let size = record.map_or(String::new(), |record| record.size.to_string());
        let arguments = [file, sha256.as_str(), size.as_str()];
        match &self.source {
            BackupSource::Postgres { .. } => self.task(
                &format!("{CHECK_DUMP_SCRIPT}{PG_RESTORE_SCRIPT}"),
                &arguments,
                vec![self.dumps_mount(true)],
            ),
            BackupSource::Volume { volume, .. } => self.task(
                &format!("{CHECK_DUMP_SCRIPT}{TAR_RESTORE_SCRIPT}"),
                &arguments,
                vec![self.dumps_mount(true), volume_mount(volume, false)],
            ),
        }
    }

    /// The services stopped while a restore runs, in the order they stop: what depends
    /// on the database; for a volume, what mounts it and what depends on those.
    pub fn stopped_for_restore(&self, config: &Config) -> Vec<Address> {
        let mut services = match &self.source {
            BackupSource::Postgres { service, .. } => dependants(config, service),
            BackupSource::Volume { volume, .. } => {
                let mounting = services_mounting(config, volume);
                let mut all: Vec<String> = mounting
                    .iter()
                    .flat_map(|service| dependants(config, service))
                    .filter(|service| !mounting.contains(service))
                    .collect();
                all.sort();
                all.dedup();
                all.extend(mounting);
                all
            }
        };
        services.dedup();
        services
            .iter()
            .map(|service| Address::new("service", service))
            .collect()
    }

    /// Whether losing `address` (a volume or a droplet the plan deletes or replaces)
    /// loses this backup's data.
    pub fn protects(&self, address: &Address, config: &Config) -> bool {
        match address.kind() {
            "droplet" => true,
            "volume" => match &self.source {
                BackupSource::Volume { volume, .. } => volume == address.name(),
                BackupSource::Postgres { service, .. } => {
                    services_mounting(config, address.name()).contains(service)
                }
            },
            _ => false,
        }
    }
}

fn volume_mount(volume: &str, read_only: bool) -> OneOffMount {
    OneOffMount {
        source: MountSource::Volume(volume.to_string()),
        target: VOLUME_IN_CONTAINER.to_string(),
        read_only,
    }
}

/// libpq's variables from the service's own, as the Postgres image reads them: the
/// password is copied inside the container, never through stackctl.
fn postgres_env(service: &str, database: Option<&str>) -> Vec<(String, EnvFrom)> {
    let from = |names: &[&str], default: Option<&str>| EnvFrom::ServiceVariable {
        names: names.iter().map(|name| name.to_string()).collect(),
        default: default.map(str::to_string),
    };
    vec![
        ("PGHOST".into(), EnvFrom::Text(service.to_string())),
        ("PGUSER".into(), from(&["POSTGRES_USER"], Some("postgres"))),
        ("PGPASSWORD".into(), from(&["POSTGRES_PASSWORD"], None)),
        (
            "PGDATABASE".into(),
            match database {
                Some(database) => EnvFrom::Text(database.to_string()),
                None => from(&["POSTGRES_DB", "POSTGRES_USER"], Some("postgres")),
            },
        ),
    ]
}

/// What is known about one dump, kept beside it as `<dump>.json` (no data, no secrets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpRecord {
    pub backup: String,
    pub file: String,
    /// What it holds, in words (`database of service.postgres`).
    pub source: String,
    /// RFC 3339, UTC.
    pub created: String,
    pub size: u64,
    pub sha256: String,
}

/// The file the record of `dump` is kept in.
pub fn record_file(dump: &str) -> String {
    format!("{dump}.json")
}

/// A name given on the command line (`--from`) that may be looked up in a dump
/// directory: one plain file name, no path.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `1.4 MB`, `512 B`: sizes as people read them.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        toml::from_str(text).unwrap()
    }

    const STACK: &str = r#"
[stack]
name = "shop"
[target]
host = "local"
root = "/srv/shop/"
[services.postgres]
image = "postgres"
volumes = ["pgdata:/var/lib/postgresql/data"]
[services.api]
image = "api"
depends_on = ["postgres"]
[services.worker]
image = "api"
depends_on = ["api"]
[services.web]
image = "web"
[backups.db]
service = "postgres"
keep = 2
local_directory = "dumps"
[backups.data]
volume = "pgdata"
timeout = "2m"
"#;

    fn shop() -> (Config, Vec<Backup>) {
        let config = config(STACK);
        let backups = backups(&config, Path::new("/checkout"));
        (config, backups)
    }

    #[test]
    fn backups_resolve_with_their_directories_and_defaults() {
        let (_, backups) = shop();
        let data = &backups[0];
        assert_eq!(data.name, "data");
        assert_eq!(
            data.source,
            BackupSource::Volume {
                volume: "pgdata".into(),
                service: "postgres".into()
            }
        );
        assert_eq!(data.keep, DEFAULT_KEEP);
        assert_eq!(data.timeout, Duration::from_secs(120));
        assert_eq!(data.host_directory, "/srv/shop/backups/data");
        assert_eq!(data.local_directory, None);
        let db = &backups[1];
        assert_eq!(db.keep, 2);
        assert_eq!(
            db.local_directory,
            Some(PathBuf::from("/checkout/dumps/db"))
        );
        assert_eq!(db.extension(), "dump");
    }

    #[test]
    fn dump_names_sort_by_time_and_nothing_else_is_taken_for_a_dump() {
        let (_, backups) = shop();
        let db = &backups[1];
        let at = humantime::parse_rfc3339("2026-11-30T04:20:33.123Z").unwrap();
        assert_eq!(db.file_name(at), "db-20261130T042033.123Z.dump");
        assert_eq!(
            db.dump_time("db-20261130T042033.123Z.dump"),
            Some("20261130T042033.123Z")
        );
        for other in [
            "db-20261130T042033.123Z.dump.json",
            ".db-20261130T042033.123Z.dump.partial",
            "db-2-20261130T042033.123Z.dump",
            "db-20261130T042033.123Z.tar",
            "db-latest.dump",
        ] {
            assert_eq!(db.dump_time(other), None, "{other}");
        }
        let files: Vec<String> = [
            "db-20261130T042033.123Z.dump",
            "db-20261129T000000.000Z.dump",
            "db-20261129T000000.000Z.dump.json",
            "db-20261201T000000.000Z.dump",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(db.to_prune(&files), vec!["db-20261129T000000.000Z.dump"]);
    }

    #[test]
    fn a_postgres_dump_runs_pg_dump_beside_the_service_with_its_credentials() {
        let (_, backups) = shop();
        let task = backups[1].dump_task("db-x.dump");
        assert_eq!(task.beside, Address::new("service", "postgres"));
        assert_eq!(task.label, Address::new("backup", "db"));
        assert_eq!(task.argv[..2], ["sh", "-c"]);
        assert!(task.argv[2].contains("pg_dump --format=custom"));
        assert_eq!(task.argv[4], "db-x.dump");
        assert!(task.env.contains(&(
            "PGPASSWORD".to_string(),
            EnvFrom::ServiceVariable {
                names: vec!["POSTGRES_PASSWORD".into()],
                default: None
            }
        )));
        assert_eq!(
            task.mounts,
            vec![OneOffMount {
                source: MountSource::HostDirectory("/srv/shop/backups/db".into()),
                target: "/backup".into(),
                read_only: false
            }]
        );
        let restore = backups[1].restore_task("db-x.dump", None);
        assert!(restore.argv[2].contains("pg_restore --clean"));
        assert!(restore.mounts[0].read_only);
    }

    #[test]
    fn a_volume_is_read_only_for_its_dump_and_writable_for_its_restore() {
        let (_, backups) = shop();
        let dump = backups[0].dump_task("data-x.tar");
        assert_eq!(dump.mounts[1].source, MountSource::Volume("pgdata".into()));
        assert!(dump.mounts[1].read_only);
        assert!(dump.env.is_empty());
        let restore = backups[0].restore_task("data-x.tar", None);
        assert!(!restore.mounts[1].read_only);
        assert!(restore.argv[2].contains("find /volume -mindepth 1 -delete"));
    }

    #[test]
    fn a_restore_checks_the_dump_against_its_record_before_it_replaces_anything() {
        let (_, backups) = shop();
        let record = DumpRecord {
            backup: "data".into(),
            file: "data-x.tar".into(),
            source: "volume".into(),
            created: "2026-11-30T04:20:33Z".into(),
            size: 10240,
            sha256: format!("sha256:{}", "ab".repeat(32)),
        };
        let restore = backups[0].restore_task("data-x.tar", Some(&record));
        assert_eq!(restore.argv[4..], ["data-x.tar", &"ab".repeat(32), "10240"]);
        let script = &restore.argv[2];
        let first_change = script.find("find /volume -mindepth 1 -delete").unwrap();
        for check in ["sha256sum", "wc -c", "tar -tf"] {
            assert!(script.find(check).unwrap() < first_change, "{check}");
        }
        let database = backups[1].restore_task("db-x.dump", Some(&record)).argv[2].clone();
        let first_change = database.find("pg_restore --clean").unwrap();
        for check in ["sha256sum", "pg_restore --list"] {
            assert!(database.find(check).unwrap() < first_change, "{check}");
        }
        // Without a record, the archive is still read through first.
        let unrecorded = backups[0].restore_task("data-x.tar", None);
        assert_eq!(unrecorded.argv[5..], ["", ""]);
    }

    #[test]
    fn a_restore_stops_what_depends_on_the_data() {
        let (config, backups) = shop();
        let names = |addresses: Vec<Address>| -> Vec<String> {
            addresses.iter().map(Address::to_string).collect()
        };
        assert_eq!(
            names(backups[1].stopped_for_restore(&config)),
            ["service.api", "service.worker"]
        );
        assert_eq!(
            names(backups[0].stopped_for_restore(&config)),
            ["service.api", "service.worker", "service.postgres"]
        );
    }

    #[test]
    fn losing_a_volume_or_the_droplet_calls_for_the_backups_of_its_data() {
        let (config, backups) = shop();
        let pgdata = Address::new("volume", "pgdata");
        assert!(backups[0].protects(&pgdata, &config));
        assert!(backups[1].protects(&pgdata, &config));
        assert!(!backups[1].protects(&Address::new("volume", "media"), &config));
        assert!(backups[1].protects(&Address::new("droplet", "web"), &config));
        assert!(!backups[1].protects(&Address::new("service", "postgres"), &config));
    }

    #[test]
    fn only_plain_file_names_are_looked_up() {
        assert!(is_plain_file_name("db-20261130T042033.123Z.dump"));
        for bad in ["", "../x", "a/b", ".hidden", "x y"] {
            assert!(!is_plain_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_dump_script_reports_size_and_sha256_computed_on_the_host() {
        let (_, backups) = shop();
        for task in [backups[0].dump_task("x"), backups[1].dump_task("x")] {
            assert!(task.argv[2].contains("sha256sum"), "{}", task.argv[2]);
            assert!(task.argv[2].contains(DIGEST_MARKER.trim_end()));
        }
        let hex = "0123456789abcdef".repeat(4);
        let log = format!("pg_dump: warning: something\nstackctl-dump-digest 1536 {hex}\n");
        assert_eq!(dump_digest(&log), Some((1536, format!("sha256:{hex}"))));
        for bad in [
            "".to_string(),
            "stackctl-dump-digest 1536 \n".to_string(),
            "stackctl-dump-digest many {hex}".to_string(),
            format!("stackctl-dump-digest 12 {}", &hex[1..]),
        ] {
            assert_eq!(dump_digest(&bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1_400_000), "1.4 MB");
    }
}
