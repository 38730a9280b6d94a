//! End to end on this machine's Docker daemon: the hardened default every container gets
//! (all capabilities dropped, `no-new-privileges`, a process limit, tmpfs mounts) read
//! back from `docker inspect`, a change by hand shown as drift and repaired, an internal
//! network with no way out, and the security report of a real apply. Needs dockerd and
//! the test and shop images (`.ci/run` sees to them); it never skips.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::TestEnvironment;

/// The shop's Debian base: busybox's `sleep`, `wget` and `ip` for the probes.
const BUSYBOX_IMAGE: &str = "stackctl-local/bookworm-services:latest";

fn docker(arguments: &[&str]) -> (bool, String) {
    let output = Command::new("docker")
        .args(arguments)
        .output()
        .expect("docker CLI");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text.trim().to_string())
}

fn inspect(container: &str, format: &str) -> String {
    let (ok, text) = docker(&["inspect", "--format", format, container]);
    assert!(ok, "docker inspect {container}: {text}");
    text
}

/// The newest run folder's `name`, parsed.
fn latest_run_file(directory: &Path, name: &str) -> serde_json::Value {
    let folders = support::shop::run_folders(directory);
    let folder = folders.last().expect("a run folder");
    let text = std::fs::read_to_string(folder.join(name))
        .unwrap_or_else(|error| panic!("{}/{name}: {error}", folder.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{name} is not JSON ({error}): {text}"))
}

fn stack_toml(name: &str, root: &Path) -> String {
    format!(
        r#"[stack]
name = "{name}"

[target]
host = "local"
root = "{root}"

# A read-only server with tmpfs mounts and its own process limit, reachable from outside.
[services.app]
image = "stackctl-test/server:latest"
pull = false
env = {{ NAME = "app" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}
networks = ["backend", "public"]
user = "10001"
memory = "64m"
cpus = 0.5
read_only = true
tmpfs = ["/tmp", "/run/app:rw,noexec,nosuid,size=8m"]
pids_limit = 64

# Only on the internal network: no way out.
[services.inside]
image = "{busybox}"
pull = false
command = ["busybox", "sleep", "3600"]
networks = ["backend"]
user = "10001"
memory = "32m"
cpus = 0.25
stop_grace_period = "1s"

[services.inside.security]
cap_add = ["NET_BIND_SERVICE"]
reason = "a test of a capability given back"

# On a network with a way out.
[services.outside]
image = "{busybox}"
pull = false
command = ["busybox", "sleep", "3600"]
networks = ["public"]
user = "10001"
memory = "32m"
cpus = 0.25
stop_grace_period = "1s"

[networks.backend]
internal = true
"#,
        root = root.display(),
        busybox = BUSYBOX_IMAGE,
    )
}

/// Removes what an interrupted earlier run of this test left on the daemon.
fn remove_leftovers(stack: &str) {
    let (_, containers) = docker(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=stackctl.stack={stack}"),
    ]);
    for id in containers.split_whitespace() {
        docker(&["rm", "-f", id]);
    }
    for network in ["backend", "public"] {
        docker(&["network", "rm", &format!("{stack}_{network}")]);
    }
}

/// Removes the stack's containers and networks when the test ends, passed or not.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        remove_leftovers(&self.0);
    }
}

#[test]
fn hardened_containers_are_read_back_drift_when_changed_by_hand_and_are_reported() {
    support::shop::build_images();
    let name = format!("e2e-harden-{}", std::process::id());
    remove_leftovers(&name);
    let _cleanup = Cleanup(name.clone());
    let environment = TestEnvironment::new();
    let root = environment.path().join("host-root");
    environment.write("stack.toml", &stack_toml(&name, &root));
    let run = |arguments: &[&str]| environment.run(arguments);

    let validated = run(&["validate", "--strict"]);
    assert_eq!(validated.code, 0, "{}", validated.stderr);
    let planned = run(&["plan"]);
    // Attribute columns are padded per resource: compare with single spaces.
    let words = planned
        .stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for line in [
        "+ cap_drop = [\"ALL\"]",
        "+ cap_add = [\"NET_BIND_SERVICE\"]",
        "+ no_new_privileges = true",
        "+ privileged = false",
        "+ pids_limit = 64",
        "+ security_reason = \"a test of a capability given back\"",
        "+ internal = true",
        "inside edge no, internet no",
    ] {
        assert!(
            words.contains(line),
            "plan lacks `{line}`:\n{}",
            planned.stdout
        );
    }
    let applied = run(&["apply", "--yes"]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);

    // What the daemon runs, read with the docker CLI.
    let app = format!("{name}-app");
    assert_eq!(inspect(&app, "{{json .HostConfig.CapDrop}}"), "[\"ALL\"]");
    assert_eq!(
        inspect(&app, "{{json .HostConfig.SecurityOpt}}"),
        "[\"no-new-privileges:true\"]"
    );
    assert_eq!(inspect(&app, "{{.HostConfig.Privileged}}"), "false");
    assert_eq!(inspect(&app, "{{.HostConfig.PidsLimit}}"), "64");
    assert_eq!(
        inspect(&app, "{{json .HostConfig.Tmpfs}}"),
        "{\"/run/app\":\"rw,noexec,nosuid,size=8m\",\"/tmp\":\"rw,noexec,nosuid,size=64m\"}"
    );
    let inside = format!("{name}-inside");
    assert!(
        inspect(&inside, "{{json .HostConfig.CapAdd}}").contains("NET_BIND_SERVICE"),
        "the capability given back"
    );
    // Inside the container: no capability in the bounding set but the one given back,
    // and no_new_privs set by the kernel.
    let (ok, status) = docker(&["exec", &inside, "busybox", "cat", "/proc/self/status"]);
    assert!(ok, "{status}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert!(
        status.contains("CapBnd:\t0000000000000400"),
        "only NET_BIND_SERVICE (bit 10): {status}"
    );

    // Nothing is drift right after apply: every default reads back as written.
    let again = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "no changes after apply:\n{}", again.stdout);

    // The security report of the apply holds the daemon's values.
    let report = latest_run_file(environment.path(), "security.json");
    let container = |container: &str| -> serde_json::Value {
        report["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["name"] == container)
            .unwrap_or_else(|| panic!("{container} in {report}"))
            .clone()
    };
    let app_facts = container(&app);
    assert_eq!(app_facts["user"], "10001");
    assert_eq!(
        app_facts["capabilities"]["dropped"],
        serde_json::json!(["ALL"])
    );
    assert_eq!(app_facts["no_new_privileges"], true);
    assert_eq!(app_facts["pids_limit"], 64);
    assert_eq!(app_facts["memory_bytes"], 64 << 20);
    assert_eq!(app_facts["read_only_root"], true);
    assert_eq!(app_facts["published_ports"], serde_json::json!([]));
    assert_eq!(
        container(&inside)["reason"],
        "a test of a capability given back"
    );
    let backend = report["networks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|network| network["name"] == format!("{name}_backend"))
        .cloned()
        .expect("the backend network in the report");
    assert_eq!(backend["internal"], true);
    let folders = support::shop::run_folders(environment.path());
    let text = std::fs::read_to_string(folders.last().unwrap().join("security.txt")).unwrap();
    assert!(
        text.contains(&format!("{name}_backend (internal)")),
        "{text}"
    );

    // A process limit raised by hand is drift; apply puts it back in place.
    let (ok, output) = docker(&["update", "--pids-limit", "1000", &app]);
    assert!(ok, "{output}");
    let drift = run(&["drift"]);
    assert_eq!(drift.code, 2, "{}{}", drift.stdout, drift.stderr);
    assert!(drift.stdout.contains("pids_limit"), "{}", drift.stdout);
    let repaired = run(&["apply", "--yes"]);
    assert_eq!(repaired.code, 0, "{}{}", repaired.stdout, repaired.stderr);
    assert_eq!(inspect(&app, "{{.HostConfig.PidsLimit}}"), "64");

    // A container recreated by hand with a capability (and without the hardening) is
    // drift of each setting; apply replaces it with the hardened one.
    let labels = inspect(&inside, "{{json .Config.Labels}}");
    let labels: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&labels).unwrap();
    docker(&["rm", "-f", &inside]);
    let mut arguments = vec![
        "run".to_string(),
        "-d".into(),
        "--name".into(),
        inside.clone(),
        "--network".into(),
        format!("{name}_backend"),
        "--user".into(),
        "10001".into(),
        "--cap-add".into(),
        "SYS_ADMIN".into(),
    ];
    for (key, value) in &labels {
        arguments.push("--label".into());
        arguments.push(format!("{key}={}", value.as_str().unwrap_or("")));
    }
    arguments.extend([
        BUSYBOX_IMAGE.to_string(),
        "busybox".into(),
        "sleep".into(),
        "3600".into(),
    ]);
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    let (ok, output) = docker(&arguments);
    assert!(ok, "{output}");
    let drift = run(&["drift"]);
    assert_eq!(drift.code, 2, "{}{}", drift.stdout, drift.stderr);
    for attribute in ["cap_add", "cap_drop", "no_new_privileges", "pids_limit"] {
        assert!(
            drift.stdout.contains(attribute),
            "{attribute} in:\n{}",
            drift.stdout
        );
    }
    assert!(drift.stdout.contains("SYS_ADMIN"), "{}", drift.stdout);
    let repaired = run(&["apply", "--yes"]);
    assert_eq!(repaired.code, 0, "{}{}", repaired.stdout, repaired.stderr);
    assert_eq!(
        inspect(&inside, "{{json .HostConfig.CapDrop}}"),
        "[\"ALL\"]"
    );
    assert!(!inspect(&inside, "{{json .HostConfig.CapAdd}}").contains("SYS_ADMIN"));

    // `verify` writes the report too, read again from the daemon.
    let verified = run(&["verify"]);
    assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);
    let report = latest_run_file(environment.path(), "security.json");
    assert!(
        report["containers"].as_array().unwrap().len() == 3,
        "{report}"
    );

    // A network made internal is made again; its containers stay, attached to the new
    // one with their aliases.
    let app_before = inspect(&app, "{{.Id}}");
    let mut text = environment.read("stack.toml");
    text.push_str("\n[networks.public]\ninternal = true\n");
    environment.write("stack.toml", &text);
    let planned = run(&["plan"]);
    let words = planned
        .stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for line in [
        "network.public replace (destroy before create)",
        "~ internal: false → true # forces replacement",
        "service `app` can no longer reach the internet",
    ] {
        assert!(
            words.contains(line),
            "plan lacks `{line}`:\n{}",
            planned.stdout
        );
    }
    let applied = run(&["apply", "--yes"]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    let public = format!("{name}_public");
    assert_eq!(inspect(&public, "{{.Internal}}"), "true");
    assert_eq!(inspect(&app, "{{.Id}}"), app_before, "the container stays");
    let aliases = inspect(
        &app,
        &format!("{{{{json (index .NetworkSettings.Networks \"{public}\").Aliases}}}}"),
    );
    assert!(aliases.contains("\"app\""), "{aliases}");
    let again = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "no changes after apply:\n{}", again.stdout);

    let destroyed = run(&["destroy", "--yes"]);
    assert_eq!(
        destroyed.code, 0,
        "{}{}",
        destroyed.stdout, destroyed.stderr
    );
    remove_leftovers(&name);
}

/// A network namespace this test makes to stand for "outside": joined to the host by a
/// veth pair, so that reaching it from a container takes the host's forwarding, as the
/// internet would. A listener inside answers `reached` and prints `accepted` per
/// connection. Removed (listener killed by its PID) when dropped.
struct Outside {
    namespace: String,
    host_link: String,
    address: String,
    listener: std::process::Child,
}

const OUTSIDE_PORT: &str = "8080";

impl Outside {
    fn start() -> Outside {
        let id = std::process::id();
        let namespace = format!("stkegress{id}");
        let host_link = format!("vh{}", id % 100_000);
        let namespace_link = format!("vn{}", id % 100_000);
        let subnet = id % 250 + 1;
        let host_address = format!("10.213.{subnet}.1");
        let address = format!("10.213.{subnet}.2");
        let ip = |arguments: &[&str]| {
            let output = Command::new("ip").args(arguments).output().expect("ip");
            assert!(
                output.status.success(),
                "ip {}: {}",
                arguments.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        };
        ip(&["netns", "add", &namespace]);
        ip(&[
            "link",
            "add",
            &host_link,
            "type",
            "veth",
            "peer",
            "name",
            &namespace_link,
        ]);
        ip(&["link", "set", &namespace_link, "netns", &namespace]);
        ip(&[
            "addr",
            "add",
            &format!("{host_address}/30"),
            "dev",
            &host_link,
        ]);
        ip(&["link", "set", &host_link, "up"]);
        let inside = |arguments: &[&str]| {
            let mut all = vec!["netns", "exec", namespace.as_str(), "ip"];
            all.extend(arguments);
            ip(&all);
        };
        inside(&[
            "addr",
            "add",
            &format!("{address}/30"),
            "dev",
            &namespace_link,
        ]);
        inside(&["link", "set", &namespace_link, "up"]);
        inside(&["link", "set", "lo", "up"]);
        // Answers for 30 s at most, then exits on its own.
        let server = format!(
            "import socket, sys\n\
             s = socket.socket()\n\
             s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('{address}', {OUTSIDE_PORT}))\n\
             s.listen()\n\
             s.settimeout(30)\n\
             while True:\n\
             \x20   try:\n\
             \x20       connection, _ = s.accept()\n\
             \x20   except socket.timeout:\n\
             \x20       break\n\
             \x20   print('accepted', flush=True)\n\
             \x20   connection.sendall(b'reached')\n\
             \x20   connection.close()\n"
        );
        let listener = Command::new("ip")
            .args(["netns", "exec", &namespace, "python3", "-u", "-c", &server])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the listener");
        let outside = Outside {
            namespace,
            host_link,
            address,
            listener,
        };
        // Ready when the host connects (bounded: 5 s).
        let deadline = Instant::now() + Duration::from_secs(5);
        let target = format!("{}:{OUTSIDE_PORT}", outside.address);
        while std::net::TcpStream::connect_timeout(
            &target.parse().unwrap(),
            Duration::from_millis(200),
        )
        .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the listener in {} did not start",
                outside.namespace
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        outside
    }

    /// Stops the listener and returns how many connections it accepted.
    fn accepted(mut self) -> usize {
        let _ = self.listener.kill();
        let _ = self.listener.wait();
        let mut printed = String::new();
        if let Some(mut stdout) = self.listener.stdout.take() {
            let _ = stdout.read_to_string(&mut printed);
        }
        printed.lines().filter(|line| *line == "accepted").count()
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.listener.kill();
        let _ = self.listener.wait();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.namespace])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_link])
            .output();
    }
}

#[test]
fn a_container_on_an_internal_network_cannot_reach_outside_it() {
    support::shop::build_images();
    let name = format!("e2e-egress-{}", std::process::id());
    remove_leftovers(&name);
    let _cleanup = Cleanup(name.clone());
    let environment = TestEnvironment::new();
    let root = environment.path().join("host-root");
    environment.write("stack.toml", &stack_toml(&name, &root));
    let applied = environment.run(&["apply", "--yes"]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);

    // Docker says so.
    let backend = format!("{name}_backend");
    let public = format!("{name}_public");
    assert_eq!(inspect(&backend, "{{.Internal}}"), "true");
    assert_eq!(inspect(&public, "{{.Internal}}"), "false");

    let outside = Outside::start();
    // busybox's `nc` (its `wget` crashes in this Debian build): it prints what the
    // listener answers, and fails when it cannot connect within 3 s.
    let connect = |container: &str| {
        docker(&[
            "exec",
            container,
            "busybox",
            "nc",
            "-w",
            "3",
            &outside.address,
            OUTSIDE_PORT,
        ])
    };
    // The host's own check connection counts as one.
    let (ok, body) = connect(&format!("{name}-outside"));
    assert!(ok && body.contains("reached"), "outside: {body}");
    let inside = format!("{name}-inside");
    let (ok, output) = connect(&inside);
    assert!(!ok, "inside reached {}: {output}", outside.address);
    // The backend still works inside: `inside` reaches `app` there.
    let (ok, output) = docker(&[
        "exec",
        &inside,
        "busybox",
        "nc",
        "-w",
        "3",
        "app",
        "8080",
        "-e",
        "/bin/true",
    ]);
    assert!(
        ok,
        "inside reaches its peer on the internal network: {output}"
    );
    assert_eq!(
        outside.accepted(),
        2,
        "the host's readiness check and `outside`, never `inside`"
    );

    let destroyed = environment.run(&["destroy", "--yes"]);
    assert_eq!(
        destroyed.code, 0,
        "{}{}",
        destroyed.stdout, destroyed.stderr
    );
    remove_leftovers(&name);
}
