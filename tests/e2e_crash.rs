//! Crash injection on this machine's Docker: a real `stackctl apply` of a copy of
//! `examples/local` is killed (SIGKILL, or interrupted with SIGINT) when its progress
//! shows its Nth event, at ten points spread over the run — networks and volumes, images,
//! services starting and becoming healthy, the edge's files. After each kill:
//!
//! - the state file is valid JSON that loads;
//! - nothing needs a manual step (no `state unlock`, no `state unlock --host`);
//! - one `apply --yes` converges, and then `plan --detailed-exitcode` exits 0;
//! - `verify` passes (the routes answer through the edge);
//! - `destroy --yes` leaves no container, network or volume labelled with the stack.
//!
//! Each test has its own stack name and ports, so the two can run at the same time (and
//! beside other engineers' tests on the same daemon). Needs dockerd and the test images
//! (`testing/build-images.sh`); without them it fails, it never skips.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{repository, TestEnvironment};

const SECRETS: [(&str, &str); 3] = [
    ("API_SECRET_KEY", "crash-api-Secret-5113"),
    ("FLOWER_PASSWORD", "crash-flower-Secret-5113"),
    ("ADMIN_CIDR", "203.0.113.0/24"),
];

/// How many event lines to let through before the kill: spread over a fresh apply's
/// ~40 lines (a `started` and an outcome per action).
const KILL_POINTS: [usize; 10] = [1, 3, 5, 8, 11, 14, 18, 22, 27, 32];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kill {
    Sigkill,
    Sigint,
}

impl Kill {
    fn name(self) -> &'static str {
        match self {
            Kill::Sigkill => "KILL",
            Kill::Sigint => "INT",
        }
    }
}

#[test]
fn sigkill_at_ten_points_leaves_nothing_that_needs_a_manual_step() {
    crash_at_ten_points("e2e-crash-kill", 23180, Kill::Sigkill);
}

#[test]
fn sigint_at_ten_points_exits_130_records_and_unlocks() {
    crash_at_ten_points("e2e-crash-int", 23280, Kill::Sigint);
}

fn crash_at_ten_points(name: &str, first_port: u16, kill: Kill) {
    build_images();
    remove_leftovers(name);
    let environment = stack(name, first_port);
    let started = Instant::now();
    for (round, &point) in KILL_POINTS.iter().enumerate() {
        let context = format!("{name}, round {round}, {} after event {point}", kill.name());
        let killed = apply_killed_after(&environment, point, kill, &context);

        let store = stackctl::state::StateStore::new(environment.path().join("state"), name);
        if let Ok(text) = std::fs::read_to_string(store.state_path()) {
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|error| panic!("{context}: the state file is not JSON: {error}"));
        }
        store
            .read()
            .unwrap_or_else(|error| panic!("{context}: the state does not load: {error}"));
        assert_eq!(
            stackctl::state::StateLock::holder(&store.lock_path()),
            None,
            "{context}: nobody holds the state lock"
        );

        if kill == Kill::Sigint {
            assert_eq!(
                killed.code, 130,
                "{context}: an interrupted apply exits 130\n{}\n{}",
                killed.stdout, killed.stderr
            );
            assert!(
                killed.stdout.contains("Apply interrupted after"),
                "{context}: the summary says it was interrupted\n{}",
                killed.stdout
            );
            let folder = killed
                .stderr
                .lines()
                .find_map(|line| line.strip_prefix("Run folder: "))
                .unwrap_or_else(|| panic!("{context}: no run folder\n{}", killed.stderr));
            // Relative to the stack's directory, or absolute (then `join` keeps it).
            let summary =
                std::fs::read_to_string(environment.path().join(folder).join("summary.json"))
                    .unwrap_or_else(|error| panic!("{context}: summary.json: {error}"));
            assert!(
                summary.contains("\"interruption\": \"stop\""),
                "{context}: {summary}"
            );
        }

        // No manual step: the next apply just runs, and converges.
        let converged = run(&environment, &["apply", "--yes"]);
        assert_eq!(
            converged.code, 0,
            "{context}: the next apply converges\n{}\n{}",
            converged.stdout, converged.stderr
        );
        assert!(
            !converged.stderr.contains("locked by") && !converged.stdout.contains("host lock"),
            "{context}: no lock is in the way\n{}{}",
            converged.stdout,
            converged.stderr
        );
        if kill == Kill::Sigkill {
            assert!(
                converged
                    .stderr
                    .contains("took over the state lock left by"),
                "{context}: the lock of the killed run is taken over with a warning\n{}",
                converged.stderr
            );
        }
        let plan = run(&environment, &["plan", "--detailed-exitcode"]);
        assert_eq!(
            plan.code, 0,
            "{context}: one apply converged\n{}\n{}",
            plan.stdout, plan.stderr
        );
        let verify = run(&environment, &["verify"]);
        assert_eq!(
            verify.code, 0,
            "{context}: the routes answer\n{}\n{}",
            verify.stdout, verify.stderr
        );

        // Start the next round from nothing, so that its kill lands among creations.
        let destroyed = run(&environment, &["destroy", "--yes", "--allow-data-loss"]);
        assert_eq!(
            destroyed.code, 0,
            "{context}: destroy\n{}\n{}",
            destroyed.stdout, destroyed.stderr
        );
        assert_eq!(
            labelled(name),
            "",
            "{context}: destroy left labelled objects"
        );
    }
    remove_leftovers(name);
    eprintln!("{name}: ten rounds in {:?}", started.elapsed());
}

/// Destroy right after a kill (no converging apply in between) removes the containers the
/// killed run created but never recorded, containers before networks.
#[test]
fn destroy_after_an_interrupted_apply_removes_every_labelled_object() {
    let name = "e2e-crash-destroy";
    build_images();
    remove_leftovers(name);
    let environment = stack(name, 23380);
    // Late enough that networks are recorded and containers are being created.
    apply_killed_after(&environment, 14, Kill::Sigkill, name);
    let destroyed = run(&environment, &["destroy", "--yes", "--allow-data-loss"]);
    let left = labelled(name);
    remove_leftovers(name);
    assert_eq!(
        destroyed.code, 0,
        "destroy after a kill\n{}\n{}",
        destroyed.stdout, destroyed.stderr
    );
    assert!(
        !destroyed.stderr.contains("active endpoints"),
        "{}",
        destroyed.stderr
    );
    assert_eq!(
        left, "",
        "destroy left labelled objects\n{}\n{}",
        destroyed.stdout, destroyed.stderr
    );
}

struct Killed {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `apply --yes` and sends `kill` once its progress has shown `point` event lines.
fn apply_killed_after(
    environment: &TestEnvironment,
    point: usize,
    kill: Kill,
    context: &str,
) -> Killed {
    let mut command = command(environment, &["apply", "--yes"]);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("start stackctl apply");
    let pid = child.id().to_string();
    let stderr = child.stderr.take().expect("stderr");
    let stdout = child.stdout.take().expect("stdout");
    let (lines, received) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut stderr_text = String::new();
    let mut events = 0;
    let mut sent = false;
    while Instant::now() < deadline {
        match received.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                // Progress lines off a terminal: `[<time>] <address>: <words>`.
                if line.starts_with("[20") && line.contains("Z] ") {
                    events += 1;
                }
                stderr_text.push_str(&line);
                stderr_text.push('\n');
                if !sent && events >= point {
                    signal(&pid, kill);
                    sent = true;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if Instant::now() >= deadline {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait for stackctl apply");
    if kill == Kill::Sigkill {
        // The daemon finishes a request the killed process had already sent (a network
        // being created): let it land, as it would before anyone typed the next command.
        std::thread::sleep(Duration::from_secs(1));
    }
    let _ = reader.join();
    let stdout_text = out_reader.join().unwrap_or_default();
    assert!(
        sent,
        "{context}: the apply ended before event {point}\n{stdout_text}\n{stderr_text}"
    );
    Killed {
        code: status.code().unwrap_or(-1),
        stdout: stdout_text,
        stderr: stderr_text,
    }
}

fn signal(pid: &str, kill: Kill) {
    let status = Command::new("kill")
        .args([&format!("-{}", kill.name()), pid])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{} {pid}", kill.name());
}

fn command(environment: &TestEnvironment, arguments: &[&str]) -> Command {
    let mut all = arguments.to_vec();
    all.extend(["--env-file", ".env.example"]);
    let mut command = environment.command(&all);
    for (key, value) in SECRETS {
        command.env(key, value);
    }
    command
}

fn run(environment: &TestEnvironment, arguments: &[&str]) -> support::Run {
    let mut all = arguments.to_vec();
    all.extend(["--env-file", ".env.example"]);
    environment.run_with_env(&all, &SECRETS)
}

/// A copy of examples/local with its own stack name, host root and ports.
fn stack(name: &str, first_port: u16) -> TestEnvironment {
    let environment = TestEnvironment::new();
    support::copy_tree(&repository().join("examples/local"), environment.path());
    let root = environment.path().join("host-root");
    let text = environment
        .read("stack.toml")
        .replace("name = \"local-demo\"", &format!("name = \"{name}\""))
        .replace(
            "root = \"/tmp/stackctl/local-demo\"",
            &format!("root = \"{}\"", root.display()),
        )
        .replace("18080", &first_port.to_string())
        .replace("18443", &(first_port + 1).to_string())
        .replace("18081", &(first_port + 2).to_string());
    environment.write("stack.toml", &text);
    environment
}

fn build_images() {
    let status = Command::new("bash")
        .arg(repository().join("testing/build-images.sh"))
        .status()
        .expect("run testing/build-images.sh");
    assert!(
        status.success(),
        "testing/build-images.sh failed: is dockerd running and Traefik installed?"
    );
}

fn docker(arguments: &[&str]) -> String {
    let output = Command::new("docker")
        .args(arguments)
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Every container, network and volume labelled with the stack, one per line.
fn labelled(stack: &str) -> String {
    let filter = format!("label=stackctl.stack={stack}");
    let mut found = Vec::new();
    for listing in [
        docker(&[
            "ps",
            "-a",
            "--filter",
            &filter,
            "--format",
            "container {{.Names}}",
        ]),
        docker(&[
            "network",
            "ls",
            "--filter",
            &filter,
            "--format",
            "network {{.Name}}",
        ]),
        docker(&[
            "volume",
            "ls",
            "--filter",
            &filter,
            "--format",
            "volume {{.Name}}",
        ]),
    ] {
        found.extend(listing.lines().map(str::to_string));
    }
    found.join("\n")
}

fn remove_leftovers(stack: &str) {
    let filter = format!("label=stackctl.stack={stack}");
    for id in docker(&["ps", "-a", "-q", "--filter", &filter]).split_whitespace() {
        docker(&["rm", "-f", id]);
    }
    for kind in ["network", "volume"] {
        for item in docker(&[kind, "ls", "-q", "--filter", &filter]).split_whitespace() {
            docker(&[kind, "rm", item]);
        }
    }
}
