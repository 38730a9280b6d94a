//! End to end: the flags people script against — `apply --json` streaming events as they
//! happen, `--replace`, `--lock-timeout` on the state lock and on the host lock —
//! against this machine's real Docker daemon, through the real binary. `.ci/run` starts
//! dockerd and builds the test images; without them these tests fail, never skip.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stackctl_host::{host_lock_path, Host, LocalHost, HOST_RECORDS_DIRECTORY};
use support::{repository, Run, TestEnvironment};

const SECRET: &str = "automation-Secret-5521";

fn build_images() {
    let status = Command::new("bash")
        .arg(repository().join("testing/build-images.sh"))
        .env("SKIP_TRAEFIK", "1")
        .status()
        .expect("run testing/build-images.sh");
    assert!(
        status.success(),
        "testing/build-images.sh failed: is dockerd running? (.ci/run starts it)"
    );
}

fn docker(arguments: &[&str]) -> String {
    let output = Command::new("docker")
        .args(arguments)
        .output()
        .expect("the docker CLI");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A one-service stack on this machine, named for this test and process; on drop
/// (a failed test included) its containers, networks and host records are removed.
struct Stack {
    name: String,
    environment: TestEnvironment,
}

impl Stack {
    /// `start_delay_ms`: how long the service takes before it listens (and is healthy).
    fn new(test: &str, start_delay_ms: u64) -> Stack {
        build_images();
        let name = format!("e2e-auto-{test}-{}", std::process::id());
        let environment = TestEnvironment::new();
        environment.write(
            "stack.toml",
            &format!(
                "[stack]\nname = \"{name}\"\n\n[target]\nhost = \"local\"\nroot = {root:?}\n\n\
                 [services.web]\n\
                 image = \"stackctl-test/server:latest\"\n\
                 pull = false\n\
                 port = 8080\n\
                 env = {{ NAME = \"web\", START_DELAY_MS = \"{start_delay_ms}\", API_TOKEN = \"${{API_TOKEN}}\" }}\n\
                 health = {{ command = [\"CMD\", \"/server\", \"health\"], interval = \"1s\", retries = 60 }}\n",
                root = environment.path().join("host-root").display().to_string(),
            ),
        );
        Stack { name, environment }
    }

    fn command(&self, arguments: &[&str]) -> Command {
        let mut command = self.environment.command(arguments);
        command.env("API_TOKEN", SECRET);
        command
    }

    fn run(&self, arguments: &[&str]) -> Run {
        let output = self.command(arguments).output().expect("run stackctl");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.run(&["destroy", "--yes"]);
        let label = format!("label=stackctl.stack={}", self.name);
        for id in docker(&["ps", "-aq", "--filter", &label]).lines() {
            docker(&["rm", "-f", id]);
        }
        for id in docker(&["network", "ls", "-q", "--filter", &label]).lines() {
            docker(&["network", "rm", id]);
        }
        for suffix in ["lock", "lock.holder", "lineage"] {
            let _ = std::fs::remove_file(
                std::path::Path::new(HOST_RECORDS_DIRECTORY)
                    .join(format!("{}.{suffix}", self.name)),
            );
        }
    }
}

fn assert_code(run: &Run, code: i32, what: &str) {
    assert_eq!(
        run.code, code,
        "{what}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
}

#[test]
fn apply_json_lines_parse_and_arrive_before_the_run_ends() {
    // The service takes 4 s to become healthy: the apply lasts at least that long.
    let stack = Stack::new("json", 4000);
    let started = Instant::now();
    let mut apply = stack
        .command(&["apply", "--json", "--auto-approve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stackctl apply --json");
    let stdout = BufReader::new(apply.stdout.take().unwrap());
    let mut events = Vec::new();
    let mut running_when_action_started = None;
    for line in stdout.lines() {
        let line = line.expect("a line of stdout");
        assert!(
            !line.contains(SECRET),
            "a secret in the event stream: {line}"
        );
        let event: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
        if event["type"] == "action"
            && event["event"] == "started"
            && event["address"] == "service.web"
        {
            running_when_action_started = Some(apply.try_wait().unwrap().is_none());
        }
        events.push(event);
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "apply --json ran for over 2 minutes"
        );
    }
    let status = apply.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut apply.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "apply --json failed:\n{stderr}");
    assert!(!stderr.contains(SECRET));
    assert_eq!(
        running_when_action_started,
        Some(true),
        "the `started` event of service.web arrived while the apply still ran"
    );

    let types: Vec<&str> = events
        .iter()
        .filter_map(|event| event["type"].as_str())
        .collect();
    assert_eq!(types.first(), Some(&"started"), "{types:?}");
    assert_eq!(types.last(), Some(&"apply_summary"), "{types:?}");
    assert!(
        types.contains(&"planned_change") && types.contains(&"change_summary"),
        "{types:?}"
    );
    let web = events
        .iter()
        .find(|event| event["type"] == "planned_change" && event["address"] == "service.web")
        .expect("service.web is planned");
    assert_eq!(web["action"], "create");
    let finished = events
        .iter()
        .find(|event| {
            event["type"] == "action"
                && event["address"] == "service.web"
                && event["event"] == "succeeded"
        })
        .expect("service.web succeeded");
    assert!(
        finished["duration_ms"].as_u64().unwrap() >= 3000,
        "{finished}"
    );
    let summary = events.last().unwrap();
    assert_eq!(summary["failed"].as_u64(), Some(0), "{summary}");
    assert!(summary["succeeded"].as_u64() >= Some(1), "{summary}");

    // The action events are exactly the run folder's events.jsonl, with a type.
    let folder = std::path::PathBuf::from(summary["run_folder"].as_str().unwrap());
    let folder = if folder.is_absolute() {
        folder
    } else {
        stack.environment.path().join(folder)
    };
    let logged: Vec<serde_json::Value> = std::fs::read_to_string(folder.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let streamed: Vec<serde_json::Value> = events
        .iter()
        .filter(|event| event["type"] == "action")
        .map(|event| {
            let mut event = event.clone();
            event.as_object_mut().unwrap().remove("type");
            event
        })
        .collect();
    assert_eq!(streamed, logged);

    // plan --json of the applied stack: no changes, as lines.
    let plan = stack.run(&["plan", "--json"]);
    assert_code(&plan, 0, "plan --json");
    let lines: Vec<serde_json::Value> = plan
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", plan.stdout);
    assert_eq!(lines[1]["type"], "change_summary");
    assert_eq!(lines[1]["has_changes"], false);
}

#[test]
fn replace_plans_and_applies_a_replace_of_an_unchanged_service() {
    let stack = Stack::new("replace", 0);
    assert_code(&stack.run(&["apply", "--auto-approve"]), 0, "first apply");
    let before = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=stackctl.stack={}", stack.name),
    ]);

    let plan = stack.run(&["plan", "--replace", "service.web"]);
    assert_code(&plan, 0, "plan --replace");
    assert!(
        plan.stdout.contains("+/- service.web")
            && plan.stdout.contains("requested with `--replace`"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("1 to replace"), "{}", plan.stdout);

    let unknown = stack.run(&["plan", "--replace", "service.wbe"]);
    assert_code(&unknown, 1, "plan --replace of an unknown address");
    assert!(
        unknown
            .stderr
            .contains("`--replace service.wbe`: no such resource in stack.toml"),
        "{}",
        unknown.stderr
    );
    assert!(
        unknown.stderr.contains("did you mean `service.web`?"),
        "{}",
        unknown.stderr
    );

    let apply = stack.run(&["apply", "--replace", "service.web", "--yes"]);
    assert_code(&apply, 0, "apply --replace");
    let after = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=stackctl.stack={}", stack.name),
    ]);
    assert!(
        !after.is_empty() && after != before,
        "a new container runs: {before} → {after}"
    );
    let again = stack.run(&["plan", "--detailed-exitcode"]);
    assert_code(&again, 0, "the plan after a forced replace is empty");
}

#[tokio::test]
async fn lock_timeout_waits_for_held_state_and_host_locks_then_proceeds_or_times_out_naming_the_holder(
) {
    let stack = Stack::new("locks", 0);

    // The state lock, held by another holder (this test process).
    let lock_path = stack
        .environment
        .path()
        .join("state")
        .join(format!("{}.lock", stack.name));
    let held = stackctl::state::StateLock::acquire(
        &lock_path,
        &stack.name,
        "stackctl apply (test holder)",
    )
    .expect("hold the state lock");
    let timed_out = stack.run(&["apply", "--yes", "--lock-timeout", "1s"]);
    assert_code(&timed_out, 1, "apply while the state lock is held");
    assert!(
        timed_out.stderr.contains("waiting up to 1s"),
        "{}",
        timed_out.stderr
    );
    assert!(
        timed_out.stderr.contains("`stackctl apply (test holder)`"),
        "{}",
        timed_out.stderr
    );
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        drop(held);
    });
    let waited = stack.run(&["apply", "--yes", "--lock-timeout", "60s"]);
    release.join().unwrap();
    assert_code(&waited, 0, "apply once the state lock is released");
    assert!(
        waited.stderr.contains("waiting up to 1m"),
        "{}",
        waited.stderr
    );

    // The host lock, held by another holder on the host (this machine).
    let host = LocalHost::new();
    let host_lock = host_lock_path(&stack.name);
    host.lock(
        &host_lock,
        "{\"who\": \"tester@elsewhere\", \"command\": \"stackctl apply (test holder)\"}\n",
    )
    .await
    .expect("hold the host lock");
    let replace = ["apply", "--yes", "--replace", "service.web"];
    let mut arguments = replace.to_vec();
    arguments.extend(["--lock-timeout", "1s"]);
    let timed_out = stack.run(&arguments);
    assert_ne!(
        timed_out.code, 0,
        "apply while the host lock is held:\n{}",
        timed_out.stderr
    );
    let output = format!("{}{}", timed_out.stdout, timed_out.stderr);
    assert!(
        output.contains("tester@elsewhere"),
        "the holder is named:\n{output}"
    );
    assert!(output.contains("waiting up to 1s"), "{output}");

    let mut arguments = replace.to_vec();
    arguments.extend(["--lock-timeout", "60s"]);
    let waiting = stack
        .command(&arguments)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stackctl apply");
    tokio::time::sleep(Duration::from_secs(3)).await;
    host.unlock(&host_lock)
        .await
        .expect("release the host lock");
    let output = tokio::task::spawn_blocking(move || waiting.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "apply once the host lock is released:\n{stderr}"
    );
    assert!(
        stderr.contains("tester@elsewhere") && stderr.contains("waiting up to 1m"),
        "{stderr}"
    );

    // `rollback` waits for the host lock as long as `--lock-timeout` says, too (a memory
    // limit added, which a rollback takes back; env it keeps as it is).
    let toml = std::fs::read_to_string(stack.environment.path().join("stack.toml")).unwrap();
    stack
        .environment
        .write("stack.toml", &format!("{toml}memory = \"64m\"\n"));
    assert_code(
        &stack.run(&["apply", "--yes"]),
        0,
        "an apply that adds a memory limit",
    );
    host.lock(
        &host_lock,
        "{\"who\": \"tester@elsewhere\", \"command\": \"stackctl apply (test holder)\"}\n",
    )
    .await
    .expect("hold the host lock again");
    let refused = stack.run(&["rollback", "--yes", "--lock-timeout", "1s"]);
    assert_ne!(
        refused.code, 0,
        "rollback while the host lock is held:\n{}{}",
        refused.stdout, refused.stderr
    );
    let output = format!("{}{}", refused.stdout, refused.stderr);
    assert!(
        output.contains("tester@elsewhere") && output.contains("waiting up to 1s"),
        "{output}"
    );
    host.unlock(&host_lock)
        .await
        .expect("release the host lock");
}
