//! End to end: release tasks on this machine's real Docker daemon, through the real
//! `stackctl` binary. A service built from a context (`FROM stackctl-test/server:latest`
//! plus a version file) declares a release task, the test server's `task` subcommand, which
//! prints the env and the image's version file it ran with and exits with the code asked
//! for. `.ci/run` starts dockerd and builds the test images first; without them this test
//! fails, it never skips.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::TestEnvironment;

const STACK: &str = "e2e-release";
const SECRET: &str = "release-Secret-48151623";

fn docker(arguments: &[&str]) -> String {
    let output = Command::new("docker")
        .args(arguments)
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// `.ci/run` builds the test images (testing/build-images.sh) before the tests; the task
/// subcommand must be in the server image, or this test fails saying so.
fn require_the_test_image() {
    // Bounded: an older server image would take `task` for "serve" and never exit.
    let probe = "e2e-release-probe";
    let output = Command::new("timeout")
        .args(["20", "docker", "run", "--rm", "--name", probe])
        .args(["stackctl-test/server:latest", "task", "--exit", "0"])
        .output()
        .expect("timeout and the docker CLI");
    docker(&["rm", "-f", probe]);
    assert!(
        output.status.success(),
        "stackctl-test/server:latest cannot run `task`: run testing/build-images.sh ({})",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Removes every container, network, volume and image labelled as this test's stack.
fn remove_leftovers() {
    let label = format!("label=stackctl.stack={STACK}");
    for id in docker(&["ps", "-a", "-q", "--filter", &label]).split_whitespace() {
        docker(&["rm", "-f", id]);
    }
    for kind in ["network", "volume"] {
        for name in docker(&[kind, "ls", "-q", "--filter", &label]).split_whitespace() {
            docker(&[kind, "rm", name]);
        }
    }
    // Its built images too, so that every run builds (and streams the build).
    for image in docker(&["image", "ls", "-q", "--filter", &label]).split_whitespace() {
        docker(&["image", "rm", "-f", image]);
    }
}

/// The stack: a database stand-in, and `django` built from `app/` whose release task
/// prints `RELEASE`, the secret and `/version.txt`, then exits with `exit_code`.
fn write_stack(environment: &TestEnvironment, version: &str, release: &str, exit_code: u8) {
    environment.write(
        "app/Dockerfile",
        "FROM stackctl-test/server:latest\nCOPY version.txt /version.txt\n",
    );
    environment.write("app/version.txt", version);
    environment.write(
        "stack.toml",
        &format!(
            r#"
[stack]
name = "{STACK}"

[target]
host = "local"
root = "{root}"

[services.db]
image = "stackctl-test/server:latest"
pull = false
port = 8080
env = {{ NAME = "db" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}

[services.django]
build = "app"
port = 8080
depends_on = ["db"]
env = {{ NAME = "django", RELEASE = "{release}", DJANGO_SECRET_KEY = "${{DJANGO_SECRET_KEY}}" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}

[services.django.release]
command = ["task", "--print-env", "RELEASE", "--print-env", "DJANGO_SECRET_KEY", "--print-file", "/version.txt", "--exit", "{exit_code}"]
timeout = "2m"
"#,
            root = environment.path().join("host-root").display(),
        ),
    );
}

fn stackctl(environment: &TestEnvironment, arguments: &[&str]) -> support::Run {
    environment.run_with_env(arguments, &[("DJANGO_SECRET_KEY", SECRET)])
}

/// The run folders, oldest first.
fn run_folders(environment: &TestEnvironment) -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(environment.path().join("runs"))
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    folders.sort();
    folders
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// When `address` had `event` in the run's event log, in milliseconds.
fn event_at(folder: &std::path::Path, address: &str, event: &str) -> Option<u64> {
    read(folder.join("events.jsonl")).lines().find_map(|line| {
        let entry: serde_json::Value = serde_json::from_str(line).ok()?;
        (entry["address"] == address && entry["event"] == event)
            .then(|| entry["at_ms"].as_u64())
            .flatten()
    })
}

fn django_env() -> String {
    docker(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{range .Config.Env}}{{.}} {{end}}",
        &format!("{STACK}-django"),
    ])
}

fn task_containers() -> String {
    docker(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        "label=stackctl.resource=release.django",
        "--filter",
        &format!("label=stackctl.stack={STACK}"),
    ])
}

#[test]
fn a_release_task_runs_before_the_new_version_and_a_failing_one_keeps_the_old_version_serving() {
    require_the_test_image();
    remove_leftovers();
    let environment = TestEnvironment::new();

    // First deploy: the task runs once, before the service, with its image and env.
    write_stack(&environment, "v1", "one", 0);
    let first = stackctl(&environment, &["apply", "--yes"]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert!(
        first.stdout.contains("> release.django") || first.stdout.contains("release.django"),
        "{}",
        first.stdout
    );
    assert!(
        first
            .stdout
            .contains("release task: first run for this service"),
        "{}",
        first.stdout
    );
    // The build's output was streamed to the progress display as it came.
    assert!(
        first.stderr.contains("image.django: Step 1/")
            && first.stderr.contains(": FROM stackctl-test/server:latest"),
        "{}",
        first.stderr
    );
    let folder = run_folders(&environment).pop().expect("a run folder");
    let log = read(folder.join("docker/release-django.log"));
    assert!(log.contains("RELEASE=one"), "{log}");
    assert!(log.contains("/version.txt: v1"), "{log}");
    assert!(log.contains("DJANGO_SECRET_KEY=[redacted]"), "{log}");
    let task_done = event_at(&folder, "release.django", "succeeded").expect("task finished");
    let service_started = event_at(&folder, "service.django", "started").expect("service began");
    assert!(
        task_done <= service_started,
        "the task ran after the service started"
    );
    assert!(
        task_containers().is_empty(),
        "the task's container is removed"
    );

    // No change: no task (neither planned nor run).
    let plan = stackctl(&environment, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    let runs_before = run_folders(&environment).len();
    let again = stackctl(&environment, &["apply", "--yes"]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(!again.stdout.contains("release.django"), "{}", again.stdout);
    assert!(run_folders(&environment)
        .iter()
        .skip(runs_before)
        .all(|folder| !folder.join("docker/release-django.log").exists()));

    // A new image and env: the task runs with both before the new container takes over.
    write_stack(&environment, "v2", "two", 0);
    let second = stackctl(&environment, &["apply", "--yes"]);
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    assert!(
        second
            .stdout
            .contains("release task: `env`, `image` changed"),
        "{}",
        second.stdout
    );
    let folder = run_folders(&environment).pop().unwrap();
    let log = read(folder.join("docker/release-django.log"));
    assert!(
        log.contains("RELEASE=two") && log.contains("/version.txt: v2"),
        "{log}"
    );
    let task_done = event_at(&folder, "release.django", "succeeded").unwrap();
    let swap_started = event_at(&folder, "service.django", "started").unwrap();
    assert!(task_done <= swap_started);
    let serving = django_env();
    assert!(
        serving.starts_with("running") && serving.contains("RELEASE=two"),
        "{serving}"
    );

    // A failing task: apply exits 1 with its log's tail, the old version keeps serving,
    // the run folder keeps the log, and the secret it printed is redacted everywhere.
    write_stack(&environment, "v3", "three", 1);
    let failed = stackctl(&environment, &["apply", "--yes"]);
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    let output = format!("{}{}", failed.stdout, failed.stderr);
    assert!(output.contains("exited with 1"), "{output}");
    assert!(output.contains("RELEASE=three"), "{output}");
    assert!(output.contains("/version.txt: v3"), "{output}");
    assert!(!output.contains(SECRET), "{output}");
    let folder = run_folders(&environment).pop().unwrap();
    for file in ["docker/release-django.log", "failures/release.django.log"] {
        let kept = read(folder.join(file));
        assert!(kept.contains("RELEASE=three"), "{file}: {kept}");
        assert!(
            kept.contains("DJANGO_SECRET_KEY=[redacted]"),
            "{file}: {kept}"
        );
    }
    let serving = django_env();
    assert!(
        serving.starts_with("running") && serving.contains("RELEASE=two"),
        "the old version must keep serving: {serving}"
    );
    assert!(
        task_containers().is_empty(),
        "the failed task's container is removed"
    );
    // Nothing secret reached state either.
    let state = read(environment.path().join(format!("state/{STACK}.json")));
    assert!(!state.contains(SECRET));
    // It was not recorded as run: the next plan runs it again.
    let retry = stackctl(&environment, &["plan"]);
    assert!(retry.stdout.contains("release.django"), "{}", retry.stdout);
    // The history says entry 2 is only the last apply made in full, and how to return.
    let list = stackctl(&environment, &["rollback", "--list"]);
    assert!(
        list.stdout
            .contains("state changed since: `rollback --to 2` returns to it"),
        "{}",
        list.stdout
    );

    // Rollback to the first apply (v1; the failed v3 was never recorded as one): the
    // release task runs again by the usual rule — a changed image — with v1's image and
    // command and today's env, before v1 takes over; the plan says so.
    let rollback = stackctl(&environment, &["rollback", "--yes"]);
    assert_eq!(rollback.code, 0, "{}\n{}", rollback.stdout, rollback.stderr);
    assert!(
        rollback.stdout.contains("Rolling back to history entry 1")
            && rollback
                .stdout
                .contains("release tasks run again with the rolled-back image"),
        "{}",
        rollback.stdout
    );
    let folder = run_folders(&environment).pop().unwrap();
    let log = read(folder.join("docker/release-django.log"));
    assert!(
        log.contains("/version.txt: v1") && log.contains("RELEASE=three"),
        "{log}"
    );
    let task_done = event_at(&folder, "release.django", "succeeded").unwrap();
    let swap_started = event_at(&folder, "service.django", "started").unwrap();
    assert!(task_done <= swap_started);
    let serving = django_env();
    assert!(
        serving.starts_with("running") && serving.contains("RELEASE=three"),
        "v1 runs with today's env: {serving}"
    );

    let destroy = stackctl(&environment, &["destroy", "--yes", "--allow-data-loss"]);
    assert_eq!(destroy.code, 0, "{}\n{}", destroy.stdout, destroy.stderr);
    remove_leftovers();
}
