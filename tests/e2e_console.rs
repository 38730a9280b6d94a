//! End to end: `stackctl logs` and `stackctl exec` against services deployed on this
//! machine's real Docker daemon by the real binary, and `exec` again over a real OpenSSH
//! server on loopback (`TestSshd`) reaching the same daemon. `.ci/run` starts dockerd,
//! installs sshd and builds the test images; without them these tests fail, never skip.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stackctl_host::testing::TestSshd;
use support::{repository, Run, TestEnvironment};

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

/// A stack of two services (`alpha`, `beta`) on this machine, named for this test and
/// process; removed (containers, networks) on drop, a failed test included.
struct Deployed {
    name: String,
    environment: TestEnvironment,
}

impl Deployed {
    fn new(test: &str) -> Deployed {
        build_images();
        let name = format!("e2e-console-{test}-{}", std::process::id());
        let environment = TestEnvironment::new();
        environment.write(
            "stack.toml",
            &two_services(
                &name,
                &format!(
                    "host = \"local\"\nroot = {}",
                    quoted(&environment.path().join("host-root"))
                ),
            ),
        );
        let deployed = Deployed { name, environment };
        let apply = deployed.stackctl(&["apply", "--auto-approve"]);
        assert_code(&apply, 0, "apply");
        deployed
    }

    fn stackctl(&self, arguments: &[&str]) -> Run {
        self.environment.run(arguments)
    }

    fn container(&self, service: &str) -> String {
        docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=stackctl.stack={}", self.name),
            "--filter",
            &format!("label=stackctl.resource=service.{service}"),
        ])
    }
}

impl Drop for Deployed {
    fn drop(&mut self) {
        let _ = self.environment.run(&["destroy", "--yes"]);
        let label = format!("label=stackctl.stack={}", self.name);
        for id in docker(&["ps", "-aq", "--filter", &label]).lines() {
            docker(&["rm", "-f", id]);
        }
        for id in docker(&["network", "ls", "-q", "--filter", &label]).lines() {
            docker(&["network", "rm", id]);
        }
        // The host lock and owner record stackctl keeps for the stack on this machine.
        for suffix in ["lock", "lock.holder", "lineage"] {
            let _ = std::fs::remove_file(
                Path::new(stackctl_host::HOST_RECORDS_DIRECTORY)
                    .join(format!("{}.{suffix}", self.name)),
            );
        }
    }
}

fn quoted(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

fn two_services(name: &str, target: &str) -> String {
    let service = |service: &str| {
        format!(
            "[services.{service}]\n\
             image = \"stackctl-test/server:latest\"\n\
             pull = false\n\
             port = 8080\n\
             user = \"10001\"\n\
             memory = \"64m\"\n\
             cpus = 0.5\n\
             env = {{ NAME = \"{service}\", LOG_LINES = \"hello from {service}\" }}\n\
             health = {{ command = [\"CMD\", \"/server\", \"health\"], interval = \"1s\", retries = 30 }}\n"
        )
    };
    format!(
        "[stack]\nname = \"{name}\"\n\n[target]\n{target}\n\n{}\n{}",
        service("alpha"),
        service("beta")
    )
}

fn assert_code(run: &Run, code: i32, what: &str) {
    assert_eq!(
        run.code, code,
        "{what}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
}

#[test]
fn logs_of_two_services_are_prefixed_and_tail_and_since_select_lines() {
    let deployed = Deployed::new("logs");

    // The test server writes to stderr: so do the logs, each line with its service.
    let both = deployed.stackctl(&["logs", "alpha", "beta"]);
    assert_code(&both, 0, "logs alpha beta");
    assert!(
        both.stderr.contains("alpha | hello from alpha\n"),
        "{}",
        both.stderr
    );
    assert!(
        both.stderr.contains("beta  | hello from beta\n"),
        "{}",
        both.stderr
    );
    assert!(
        both.stderr
            .contains("alpha | testserver alpha listening on port 8080"),
        "{}",
        both.stderr
    );
    assert!(
        !both.stderr.contains("alpha | hello from beta"),
        "{}",
        both.stderr
    );

    // One service: no prefix, the lines as the container wrote them.
    let one = deployed.stackctl(&["logs", "beta"]);
    assert_code(&one, 0, "logs beta");
    assert!(
        one.stderr.starts_with("hello from beta\n"),
        "{}",
        one.stderr
    );

    // --tail 1: only the last line (the listening line, not the first one).
    let tail = deployed.stackctl(&["logs", "--tail", "1", "alpha"]);
    assert_code(&tail, 0, "logs --tail 1");
    assert_eq!(tail.stderr.lines().count(), 1, "{}", tail.stderr);
    assert!(
        tail.stderr.contains("listening on port 8080"),
        "{}",
        tail.stderr
    );

    // --since an hour ago shows everything; --since a moment after they were written,
    // nothing.
    let hour = deployed.stackctl(&["logs", "--since", "1h", "alpha"]);
    assert!(hour.stderr.contains("hello from alpha"), "{}", hour.stderr);
    std::thread::sleep(Duration::from_millis(1100));
    let later = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let since = deployed.stackctl(&["logs", "--since", &later, "alpha"]);
    assert_code(&since, 0, "logs --since now");
    assert_eq!(since.stderr, "", "nothing was written since");

    let bad = deployed.stackctl(&["logs", "--since", "yesterday", "alpha"]);
    assert_code(&bad, 1, "logs --since yesterday");
    assert!(
        bad.stderr.contains("is neither a duration nor a time"),
        "{}",
        bad.stderr
    );
}

#[test]
fn logs_follow_shows_a_line_written_after_it_started_and_stops_cleanly_on_ctrl_c() {
    let deployed = Deployed::new("follow");

    // Follow alpha; once its first lines arrived, stop its container: the line it writes
    // while terminating arrives, and the stream ends with the container.
    let mut follow = deployed
        .environment
        .command(&["logs", "-f", "alpha"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stackctl logs -f");
    let lines = read_lines_in_background(follow.stderr.take().unwrap());
    wait_for_line(&lines, "listening on port 8080", Duration::from_secs(20));
    let container = deployed.container("alpha");
    assert!(!container.is_empty(), "alpha is running");
    let stop = Command::new("docker")
        .args(["stop", "-t", "10", &container])
        .output()
        .unwrap();
    assert!(stop.status.success(), "{stop:?}");
    wait_for_line(
        &lines,
        "testserver alpha: terminating",
        Duration::from_secs(20),
    );
    let status = wait_for_exit(&mut follow, Duration::from_secs(20));
    assert_eq!(status, Some(0), "logs -f ends with the container");

    // A service whose container is not running: a clear error.
    let gone = deployed.stackctl(&["logs", "alpha"]);
    assert_code(&gone, 1, "logs of a stopped service");
    assert!(
        gone.stderr
            .contains("service `alpha` has no running container on local"),
        "{}",
        gone.stderr
    );

    // Ctrl-C (SIGINT) stops a follow at once, exit 130, nothing left behind.
    let mut follow = deployed
        .environment
        .command(&["logs", "--follow", "beta"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stackctl logs -f");
    let lines = read_lines_in_background(follow.stderr.take().unwrap());
    wait_for_line(&lines, "hello from beta", Duration::from_secs(20));
    let interrupt = Command::new("kill")
        .args(["-INT", &follow.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    assert_eq!(
        wait_for_exit(&mut follow, Duration::from_secs(10)),
        Some(130),
        "Ctrl-C ends a follow with 130"
    );
}

#[test]
fn exec_passes_stdin_and_the_exit_code_through_locally_and_over_ssh() {
    let deployed = Deployed::new("exec");
    let command = [
        "/server",
        "task",
        "--print-file",
        "/dev/stdin",
        "--exit",
        "7",
    ];

    let local = exec_with_stdin(&deployed.environment, "alpha", &command, "piped through\n");
    assert_code(&local, 7, "exec locally");
    assert_eq!(local.stdout, "/dev/stdin: piped through\n");

    let success = deployed.stackctl(&[
        "exec",
        "beta",
        "--",
        "/server",
        "task",
        "--print-env",
        "NAME",
    ]);
    assert_code(&success, 0, "exec printing the environment");
    assert_eq!(success.stdout, "NAME=beta\n");

    let unknown = deployed.stackctl(&["exec", "alpah", "--", "/server"]);
    assert_code(&unknown, 1, "exec in an unknown service");
    assert!(
        unknown
            .stderr
            .contains("there is no service `alpah` in stack.toml"),
        "{}",
        unknown.stderr
    );
    assert!(
        unknown.stderr.contains("did you mean `alpha`?"),
        "{}",
        unknown.stderr
    );

    // The same containers reached over SSH: the test sshd on loopback forwards to this
    // machine's Docker socket. Only the target differs.
    let sshd =
        TestSshd::start().unwrap_or_else(|error| panic!("cannot start the test sshd: {error}"));
    let remote = TestEnvironment::new();
    remote.write(
        "stack.toml",
        &two_services(
            &deployed.name,
            &format!(
                "host = {{ address = \"127.0.0.1\", port = {}, user = \"{}\" }}\nidentity_file = {}\nknown_hosts = {}\nroot = {}",
                sshd.port,
                sshd.user,
                quoted(&sshd.client_key),
                quoted(&sshd.known_hosts),
                quoted(&deployed.environment.path().join("host-root")),
            ),
        ),
    );
    let over_ssh = exec_with_stdin(&remote, "alpha", &command, "over ssh\n");
    assert_code(&over_ssh, 7, "exec over SSH");
    assert_eq!(over_ssh.stdout, "/dev/stdin: over ssh\n");

    let logs = remote.run(&["logs", "--tail", "1", "beta"]);
    assert_code(&logs, 0, "logs over SSH");
    assert!(
        logs.stderr.contains("testserver beta listening"),
        "{}",
        logs.stderr
    );
}

/// With a terminal on stdin and stdout the command gets one: `script` gives stackctl a
/// pseudo-terminal, and the command's output comes back through the container's own
/// terminal, whose line discipline turns "\n" into "\r\n" (piped, as in the test above,
/// it stays "\n"). The exit code still passes through.
#[test]
fn exec_with_a_terminal_gives_the_command_a_terminal_and_passes_its_exit_code() {
    let deployed = Deployed::new("tty");
    let command_line = format!(
        "{} exec alpha -- /server task --print-env NAME --exit 3",
        env!("CARGO_BIN_EXE_stackctl")
    );
    let mut child = Command::new("script")
        .args([
            "--quiet",
            "--return",
            "--command",
            &command_line,
            "/dev/null",
        ])
        .current_dir(deployed.environment.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", deployed.environment.path())
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start script (util-linux)");
    let stdout = read_all_in_background(child.stdout.take().unwrap());
    let stderr = read_all_in_background(child.stderr.take().unwrap());
    let code = wait_for_exit_or_kill(&mut child, Duration::from_secs(60));
    let stdout = stdout
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_default();
    let stderr = stderr
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_default();
    assert_eq!(code, Some(3), "stdout: {stdout:?}\nstderr: {stderr}");
    assert!(
        stdout.contains("NAME=alpha\r\n"),
        "the command wrote to a terminal: {stdout:?}"
    );
}

fn exec_with_stdin(
    environment: &TestEnvironment,
    service: &str,
    command: &[&str],
    input: &str,
) -> Run {
    let mut arguments = vec!["exec", service, "--"];
    arguments.extend_from_slice(command);
    let mut child = environment
        .command(&arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stackctl exec");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    // Bounded: a command whose stdin never closes would otherwise hang the suite.
    let stdout = read_all_in_background(child.stdout.take().unwrap());
    let stderr = read_all_in_background(child.stderr.take().unwrap());
    let code = wait_for_exit_or_kill(&mut child, Duration::from_secs(60));
    Run {
        code: code.unwrap_or(-1),
        stdout: stdout
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default(),
        stderr: stderr
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default(),
    }
}

fn read_lines_in_background(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

fn wait_for_line(lines: &mpsc::Receiver<String>, wanted: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(wanted) => return,
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    panic!(
        "no line with `{wanted}` within {limit:?}; saw:\n{}",
        seen.join("\n")
    );
}

fn read_all_in_background(
    mut stream: impl std::io::Read + Send + 'static,
) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        let _ = sender.send(text);
    });
    receiver
}

/// The exit code, or `None` (and the process killed) when it outlives `limit`.
fn wait_for_exit_or_kill(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn wait_for_exit(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("stackctl did not exit within {limit:?}");
}
