//! End to end: backups and restores on this machine's real Docker daemon with the real
//! Postgres image (`stackctl-local/postgres`, built by testing/build-shop-images.sh), through
//! the real `stackctl` binary. Rows are written, dumped with `pg_dump` in a one-off
//! container, deleted, and restored: exactly the dump's rows come back. A volume is
//! tarred and restored; old dumps are pruned; a restore without confirmation changes
//! nothing; an apply that deletes the database's volume dumps it first, and refuses when
//! that dump fails. `.ci/run` builds the images first; without them this test fails, it
//! never skips.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::TestEnvironment;

const STACK: &str = "e2e-backup";
/// The stack of the test over SSH (its own containers and volumes).
const SSH_STACK: &str = "e2e-backup-ssh";
const PASSWORD: &str = "e2e-backup-Secret-90210";
/// A value only the rows hold: it must never appear in stackctl's output.
const ROW_MARKER: &str = "row-payload-quokka";

fn docker(arguments: &[&str]) -> (bool, String) {
    let output = Command::new("timeout")
        .arg("60")
        .arg("docker")
        .args(arguments)
        .output()
        .expect("timeout and the docker CLI");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    )
}

/// Removes every container and volume labelled as this test's stack.
fn remove_leftovers() {
    remove_leftovers_of(STACK);
}

fn remove_leftovers_of(stack: &str) {
    let label = format!("label=stackctl.stack={stack}");
    for id in docker(&["ps", "-a", "-q", "--filter", &label])
        .1
        .split_whitespace()
    {
        docker(&["rm", "-f", id]);
    }
    for kind in ["network", "volume"] {
        for name in docker(&[kind, "ls", "-q", "--filter", &label])
            .1
            .split_whitespace()
        {
            docker(&[kind, "rm", name]);
        }
    }
}

struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        remove_leftovers();
    }
}

fn write_stack(environment: &TestEnvironment, pgdata: &str) {
    environment.write(
        "stack.toml",
        &format!(
            r#"#:schema ../docs/stack.schema.json
[stack]
name = "{STACK}"

[target]
host = "local"
root = "{root}"

[services.postgres]
image = "stackctl-local/postgres:latest"
pull = "never"
env = {{ POSTGRES_USER = "app", POSTGRES_DB = "app", POSTGRES_PASSWORD = "${{POSTGRES_PASSWORD}}" }}
volumes = ["{pgdata}:/var/lib/postgresql/data"]
health = {{ command = ["CMD", "pg_isready", "-U", "app"], interval = "1s", retries = 60 }}

[services.api]
image = "stackctl-test/server:latest"
pull = "never"
port = 8080
depends_on = ["postgres"]
env = {{ NAME = "api" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}

[services.files]
image = "stackctl-local/postgres:latest"
pull = "never"
entrypoint = ["sleep", "infinity"]
volumes = ["media:/srv/media"]
stop_grace_period = "1s"

[backups.db]
service = "postgres"
keep = 2
local_directory = "dumps"

[backups.media]
volume = "media"
timeout = "2m"
"#,
            root = environment.path().join("host-root").display(),
        ),
    );
}

fn stackctl(environment: &TestEnvironment, arguments: &[&str]) -> support::Run {
    let run = environment.run_with_env(arguments, &[("POSTGRES_PASSWORD", PASSWORD)]);
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(PASSWORD), "the password leaked: {text}");
        assert!(!text.contains(ROW_MARKER), "a dump's data leaked: {text}");
    }
    run
}

fn ok(run: &support::Run, what: &str) {
    assert_eq!(
        run.code, 0,
        "{what} failed:\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
}

fn psql(sql: &str) -> String {
    psql_in(STACK, sql)
}

fn psql_in(stack: &str, sql: &str) -> String {
    let container = format!("{stack}-postgres");
    let (success, output) = docker(&[
        "exec",
        &container,
        "psql",
        "-U",
        "app",
        "-d",
        "app",
        "-At",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        sql,
    ]);
    assert!(success, "psql `{sql}` failed: {output}");
    output
}

fn rows() -> String {
    rows_in(STACK)
}

fn rows_in(stack: &str) -> String {
    psql_in(stack, "SELECT id || ':' || name FROM items ORDER BY id")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Waits (bounded) until Postgres accepts connections as the container's main process:
/// on a new volume the image's entrypoint first runs a temporary server to create the
/// database, which answers `pg_isready` too and then shuts down.
fn wait_for_postgres() {
    wait_for_postgres_in(STACK);
}

fn wait_for_postgres_in(stack: &str) {
    let container = format!("{stack}-postgres");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let (ready, _) = docker(&[
            "exec",
            &container,
            "sh",
            "-c",
            "pg_isready -q -U app && [ \"$(head -n 1 \"$PGDATA/postmaster.pid\")\" = 1 ]",
        ]);
        if ready {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("Postgres did not become ready within 60 s");
}

fn files(directory: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
                .filter(|name| name.ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn files_exec(script: &str) -> String {
    let (success, output) = docker(&[
        "exec",
        "-u",
        "0",
        &format!("{STACK}-files"),
        "sh",
        "-c",
        script,
    ]);
    assert!(success, "`{script}` failed: {output}");
    output
}

fn running(service: &str) -> bool {
    docker(&[
        "inspect",
        "--format",
        "{{.State.Running}}",
        &format!("{STACK}-{service}"),
    ])
    .1 == "true"
}

#[test]
fn e2e_backup_and_restore_with_real_postgres_and_a_volume() {
    remove_leftovers();
    let _cleanup = Cleanup;
    let environment = TestEnvironment::new();
    write_stack(&environment, "pgdata");
    let host_dumps = environment.path().join("host-root/backups/db");
    let local_dumps = environment.path().join("dumps/db");

    ok(
        &stackctl(&environment, &["apply", "--yes"]),
        "the first apply",
    );
    wait_for_postgres();
    psql(&format!(
        "CREATE TABLE items (id int PRIMARY KEY, name text); \
         INSERT INTO items VALUES (1, 'apple'), (2, 'pear'), (3, '{ROW_MARKER}')"
    ));
    let written = rows();
    assert_eq!(written, format!("1:apple 2:pear 3:{ROW_MARKER}"));

    // A dump with pg_dump beside the service: on the host and copied here, private.
    let backup = stackctl(&environment, &["backup", "db"]);
    ok(&backup, "backup db");
    assert!(
        backup.stdout.contains("Backed up `db`"),
        "{}",
        backup.stdout
    );
    let dumps = files(&host_dumps, ".dump");
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    let dump = dumps[0].clone();
    assert_eq!(files(&local_dumps, ".dump"), dumps);
    use std::os::unix::fs::PermissionsExt;
    for path in [host_dumps.join(&dump), local_dumps.join(&dump)] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    let bytes = std::fs::read(host_dumps.join(&dump)).unwrap();
    assert!(
        bytes.starts_with(b"PGDMP"),
        "not a pg_dump custom-format file"
    );
    assert_eq!(bytes, std::fs::read(local_dumps.join(&dump)).unwrap());
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(host_dumps.join(format!("{dump}.json"))).unwrap())
            .unwrap();
    assert_eq!(record["size"], bytes.len());
    // Computed on the host by the dump's container, checked here independently.
    let sha256sum = Command::new("sha256sum")
        .arg(host_dumps.join(&dump))
        .output()
        .expect("sha256sum");
    let hex = String::from_utf8_lossy(&sha256sum.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(record["sha256"], format!("sha256:{hex}"));

    // Rows change after the dump.
    psql("DELETE FROM items WHERE id > 1; INSERT INTO items VALUES (99, 'after the dump')");
    let changed = rows();
    assert_eq!(changed, "1:apple 99:after the dump");

    // Without confirmation (no terminal, no --yes) nothing is restored.
    let refused = stackctl(&environment, &["restore", "db", "--from", &dump]);
    assert_ne!(refused.code, 0);
    assert!(
        refused
            .stderr
            .contains("not restoring without confirmation"),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stdout
            .contains("replaces the database of `service.postgres`"),
        "{}",
        refused.stdout
    );
    assert!(
        refused.stdout.contains("`service.api`"),
        "{}",
        refused.stdout
    );
    assert_eq!(rows(), changed);
    assert!(running("api"));

    // An older, stopped container of `api` (as a swap may leave) is not started by the
    // restore: only the containers it stopped are.
    let older_api = format!("{STACK}-api-older");
    let (created, output) = docker(&[
        "create",
        "--name",
        &older_api,
        "--label",
        &format!("stackctl.stack={STACK}"),
        "--label",
        "stackctl.resource=service.api",
        "stackctl-test/server:latest",
    ]);
    assert!(created, "{output}");
    // With it, exactly the dump's rows come back; the dependant was stopped and started.
    let restored = stackctl(&environment, &["restore", "db", "--from", &dump, "--yes"]);
    ok(&restored, "restore db");
    assert!(
        restored
            .stdout
            .contains("Stopped and started again: `service.api`"),
        "{}",
        restored.stdout
    );
    assert_eq!(rows(), written);
    assert!(running("api"), "the dependant was not started again");
    assert_eq!(
        docker(&["inspect", "--format", "{{.State.Running}}", &older_api]).1,
        "false",
        "the restore started a container it had not stopped"
    );
    docker(&["rm", "-f", &older_api]);

    // A damaged dump is refused before anything is dropped: its sha256 is checked on the
    // host against its record, and the data and the stopped services are as they were.
    let good = std::fs::read(host_dumps.join(&dump)).unwrap();
    let mut damaged = good.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    std::fs::write(host_dumps.join(&dump), &damaged).unwrap();
    psql("DELETE FROM items WHERE id = 2");
    let before_damaged = rows();
    let refused = stackctl(&environment, &["restore", "db", "--from", &dump, "--yes"]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("sha256") && refused.stderr.contains("nothing was changed"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        rows(),
        before_damaged,
        "a damaged dump changed the database"
    );
    assert!(running("api"), "the dependant was not started again");
    std::fs::write(host_dumps.join(&dump), &good).unwrap();
    psql("INSERT INTO items VALUES (2, 'pear')");

    // Retention: `keep = 2` on the host and here.
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(20));
        ok(&stackctl(&environment, &["backup", "db"]), "another backup");
    }
    let kept = files(&host_dumps, ".dump");
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(!kept.contains(&dump), "the oldest dump was not pruned");
    assert_eq!(files(&local_dumps, ".dump"), kept);
    assert_eq!(files(&host_dumps, ".json").len(), 2);
    let listed = stackctl(&environment, &["backups", "db"]);
    ok(&listed, "backups db");
    for file in &kept {
        assert!(listed.stdout.contains(file.as_str()), "{}", listed.stdout);
    }
    assert_eq!(listed.stdout.lines().count(), 3, "{}", listed.stdout);

    // A dump on this machine only (the host's copy is gone) is uploaded, then restored.
    std::fs::remove_file(host_dumps.join(&kept[0])).unwrap();
    psql("DELETE FROM items");
    let local_path = format!("dumps/db/{}", kept[0]);
    let uploaded = stackctl(
        &environment,
        &["restore", "db", "--from", &local_path, "--yes"],
    );
    ok(&uploaded, "restore from a local dump");
    assert!(
        uploaded.stdout.contains("copied to the host first"),
        "{}",
        uploaded.stdout
    );
    assert_eq!(rows(), written);
    let not_a_dump = stackctl(
        &environment,
        &["restore", "db", "--from", "../etc/passwd", "--yes"],
    );
    assert_ne!(not_a_dump.code, 0);
    assert!(
        not_a_dump.stderr.contains("is not a dump of backup `db`"),
        "{}",
        not_a_dump.stderr
    );

    // A volume: tarred read-only, restored exactly (files added since are gone).
    files_exec("mkdir -p /srv/media/sub && echo apple > /srv/media/a.txt && echo pear > /srv/media/sub/b.txt");
    ok(
        &stackctl(&environment, &["backup", "media"]),
        "backup media",
    );
    let tars = files(&environment.path().join("host-root/backups/media"), ".tar");
    assert_eq!(tars.len(), 1, "{tars:?}");
    // A tar that does not read (and has no record to check against) is refused before
    // the volume is emptied.
    let media_dumps = environment.path().join("host-root/backups/media");
    let good_tar = std::fs::read(media_dumps.join(&tars[0])).unwrap();
    let record_of_tar = media_dumps.join(format!("{}.json", tars[0]));
    let good_record = std::fs::read(&record_of_tar).unwrap();
    std::fs::remove_file(&record_of_tar).unwrap();
    std::fs::write(media_dumps.join(&tars[0]), b"not a tar archive at all").unwrap();
    let refused = stackctl(
        &environment,
        &["restore", "media", "--from", &tars[0], "--yes"],
    );
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("not a readable tar archive"),
        "{}",
        refused.stderr
    );
    assert!(running("files"), "`files` was not started again");
    assert_eq!(
        files_exec("cd /srv/media && find . -type f | sort"),
        "./a.txt\n./sub/b.txt"
    );
    std::fs::write(media_dumps.join(&tars[0]), &good_tar).unwrap();
    std::fs::write(&record_of_tar, &good_record).unwrap();
    files_exec("rm /srv/media/a.txt && echo later > /srv/media/c.txt");
    let restored = stackctl(
        &environment,
        &["restore", "media", "--from", &tars[0], "--yes"],
    );
    ok(&restored, "restore media");
    assert!(
        restored.stdout.contains("`service.files`"),
        "{}",
        restored.stdout
    );
    assert!(running("files"));
    assert_eq!(
        files_exec("cd /srv/media && find . -type f | sort && cat a.txt sub/b.txt"),
        "./a.txt\n./sub/b.txt\napple\npear"
    );

    // An apply that deletes the database's volume dumps it first, and refuses when the
    // dump fails: here Postgres is down, so pg_dump cannot connect.
    write_stack(&environment, "pgdata2");
    docker(&["stop", &format!("{STACK}-postgres")]);
    let refused = stackctl(&environment, &["apply", "--yes", "--allow-data-loss"]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused
            .stderr
            .contains("refusing to apply: the backup `db`"),
        "{}",
        refused.stderr
    );
    assert!(
        docker(&["volume", "inspect", &format!("{STACK}_pgdata")]).0,
        "the volume was deleted although its backup failed"
    );
    docker(&["start", &format!("{STACK}-postgres")]);
    wait_for_postgres();
    let before = files(&host_dumps, ".dump");
    let applied = stackctl(&environment, &["apply", "--yes", "--allow-data-loss"]);
    ok(&applied, "the apply that deletes `volume.pgdata`");
    let notes = format!("{}{}", applied.stdout, applied.stderr);
    assert!(notes.contains("backing up `db`"), "{notes}");
    let after = files(&host_dumps, ".dump");
    let automatic = after.last().expect("a dump").clone();
    assert!(
        !before.contains(&automatic),
        "no new dump: {before:?} {after:?}"
    );
    assert!(
        !docker(&["volume", "inspect", &format!("{STACK}_pgdata")]).0,
        "the old volume should be gone"
    );
    // The new, empty database gets the rows back from the dump made before the loss.
    wait_for_postgres();
    ok(
        &stackctl(
            &environment,
            &["restore", "db", "--from", &automatic, "--yes"],
        ),
        "restore of the automatic dump",
    );
    assert_eq!(rows(), written);
}

struct CleanupOf(&'static str);

impl Drop for CleanupOf {
    fn drop(&mut self) {
        remove_leftovers_of(self.0);
    }
}

/// Over SSH: the one-off containers run through the Engine API forwarded over the SSH
/// connection, and the dump is read back (for its checksum and the local copy) and a local
/// dump uploaded through the same connection.
#[test]
fn e2e_backup_and_restore_over_ssh() {
    remove_leftovers_of(SSH_STACK);
    let _cleanup = CleanupOf(SSH_STACK);
    let sshd = stackctl_host::testing::TestSshd::start().unwrap_or_else(|error| {
        panic!("cannot start the test sshd: {error} (.ci/run installs openssh-server and creates /run/sshd)")
    });
    let environment = TestEnvironment::new();
    let root = environment.path().join("host-root");
    environment.write(
        "stack.toml",
        &format!(
            r#"[stack]
name = "{SSH_STACK}"

[target]
host = {{ address = "127.0.0.1", port = {port}, user = "{user}" }}
identity_file = "{identity}"
known_hosts = "{known_hosts}"
root = "{root}"

[services.postgres]
image = "stackctl-local/postgres:latest"
pull = "never"
env = {{ POSTGRES_USER = "app", POSTGRES_DB = "app", POSTGRES_PASSWORD = "${{POSTGRES_PASSWORD}}" }}
volumes = ["pgdata:/var/lib/postgresql/data"]
health = {{ command = ["CMD", "pg_isready", "-U", "app"], interval = "1s", retries = 60 }}

[backups.db]
service = "postgres"
local_directory = "dumps"
on_host = false
"#,
            port = sshd.port,
            user = sshd.user,
            identity = sshd.client_key.display(),
            known_hosts = sshd.known_hosts.display(),
            root = root.display(),
        ),
    );
    ok(
        &stackctl(&environment, &["apply", "--yes"]),
        "the apply over SSH",
    );
    wait_for_postgres_in(SSH_STACK);
    psql_in(
        SSH_STACK,
        &format!("CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'fig'), (2, '{ROW_MARKER}')"),
    );
    let written = rows_in(SSH_STACK);

    let backup = stackctl(&environment, &["backup"]);
    ok(&backup, "backup over SSH");
    let local = files(&environment.path().join("dumps/db"), ".dump");
    assert_eq!(local.len(), 1, "{local:?}");
    // `on_host = false`: only the copy here is kept.
    assert_eq!(
        files(&root.join("backups/db"), ".dump"),
        Vec::<String>::new()
    );
    let bytes = std::fs::read(environment.path().join("dumps/db").join(&local[0])).unwrap();
    assert!(bytes.starts_with(b"PGDMP"));

    psql_in(SSH_STACK, "DELETE FROM items");
    let restored = stackctl(
        &environment,
        &["restore", "db", "--from", &local[0], "--yes"],
    );
    ok(&restored, "restore over SSH");
    assert!(
        restored.stdout.contains("copied to the host first"),
        "{}",
        restored.stdout
    );
    assert_eq!(rows_in(SSH_STACK), written);
    // The uploaded dump does not stay on the host either.
    assert_eq!(
        files(&root.join("backups/db"), ".dump"),
        Vec::<String>::new()
    );
    drop(sshd);
}
