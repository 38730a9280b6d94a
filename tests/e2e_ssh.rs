//! End to end over SSH: the real `stackctl` binary reaches a real OpenSSH `sshd` on
//! loopback (`TestSshd`, throw-away host and client keys) and, through it, this
//! machine's real Docker daemon. `.ci/run` installs `openssh-server`, creates `/run/sshd`,
//! starts dockerd, installs Traefik and builds the FROM scratch test images; without
//! them these tests fail with a message saying so, they never skip.
//!
//! Every test uses its own stack name, its own host root under a temporary directory and
//! (where an edge is deployed) ports distinct from `e2e_local`'s, so the two suites can run
//! side by side. Tests that deploy containers take `DEPLOYMENTS` so that, on a small
//! machine, health waits are not starved by another test's deploy.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use stackctl_host::testing::TestSshd;
use stackctl_host::{host_lock_path, Host, SshHost};
use support::edge::wait_for;
use support::{repository, Run, TestEnvironment};

// The edge's ports sit below the kernel's ephemeral range (32768-60999): a port in it
// can be held by any outgoing connection (an SSH session of a test running beside this
// one held 38080 for the whole of a CI run here, and the edge could not start).
const HTTP: u16 = 23080;
const HTTPS: u16 = 23443;
const ADMIN: u16 = 23081;
const SECRETS: [(&str, &str); 3] = [
    ("API_SECRET_KEY", "e2e-ssh-api-Secret-4417"),
    ("FLOWER_PASSWORD", "e2e-ssh-flower-Secret-4417"),
    ("ADMIN_CIDR", "203.0.113.0/24"),
];

/// Serialises the tests that create containers (see the module notes).
static DEPLOYMENTS: Mutex<()> = Mutex::new(());

fn deployment_slot() -> MutexGuard<'static, ()> {
    // A failed test poisons the mutex; the others should still run and report their own
    // result.
    DEPLOYMENTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn build_images() {
    let status = Command::new("bash")
        .arg(repository().join("testing/build-images.sh"))
        .status()
        .expect("run testing/build-images.sh");
    assert!(
        status.success(),
        "testing/build-images.sh failed: is dockerd running and Traefik installed at \
         /usr/local/bin/traefik? (.ci/run starts the one and installs the other)"
    );
}

fn start_sshd() -> TestSshd {
    TestSshd::start().unwrap_or_else(|error| {
        panic!(
            "cannot start the test sshd: {error}\n.ci/run should have installed \
             `openssh-server` (/usr/sbin/sshd) and `openssh-client` (ssh-keygen) and \
             created /run/sshd"
        )
    })
}

fn docker(arguments: &[&str]) -> String {
    let output = Command::new("docker")
        .args(arguments)
        .output()
        .expect("the docker CLI (package `docker.io`, installed by .ci/run)");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// `name id` of every container labelled with the stack, one per line, sorted.
fn container_ids(stack: &str) -> Vec<(String, String)> {
    let listing = docker(&[
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        &format!("label=stackctl.stack={stack}"),
        "--format",
        "{{.Names}} {{.ID}}",
    ]);
    let mut pairs: Vec<(String, String)> = listing
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(name, id)| (name.to_string(), id.to_string()))
        .collect();
    pairs.sort();
    pairs
}

/// Containers, networks and volumes that still carry the stack's label.
fn leftovers(stack: &str) -> String {
    let label = format!("label=stackctl.stack={stack}");
    [
        docker(&["ps", "-a", "-q", "--filter", &label]),
        docker(&["network", "ls", "-q", "--filter", &label]),
        docker(&["volume", "ls", "-q", "--filter", &label]),
    ]
    .join("\n")
    .trim()
    .to_string()
}

/// The stack name for one test in this process. The pid makes concurrent runs of this
/// suite on one machine (several engineers, one Docker daemon) use disjoint names.
/// On drop (a failed test included), removes the host lock and owner record of the stack
/// that stackctl keeps on the host (this machine, behind the test sshd).
struct HostRecords(String);

impl Drop for HostRecords {
    fn drop(&mut self) {
        let records = Path::new(stackctl_host::HOST_RECORDS_DIRECTORY);
        for suffix in ["lock", "lock.holder", "lineage"] {
            let _ = std::fs::remove_file(records.join(format!("{}.{suffix}", self.0)));
        }
    }
}

fn stack_name(test: &str) -> String {
    format!("{PREFIX}{test}-{}", std::process::id())
}

const PREFIX: &str = "e2e-ssh-";

/// Removes what earlier runs of this suite left behind when they died halfway: every
/// container, network and volume whose stack label is one of ours and names a process
/// that no longer exists. Live runs (other pids) and other stacks are left alone.
fn remove_leftovers_of_dead_runs() {
    let listings = [
        (
            "container",
            docker(&[
                "ps",
                "-a",
                "--format",
                "{{.ID}} {{.Label \"stackctl.stack\"}}",
            ]),
        ),
        (
            "network",
            docker(&[
                "network",
                "ls",
                "--format",
                "{{.ID}} {{.Label \"stackctl.stack\"}}",
            ]),
        ),
        (
            "volume",
            docker(&[
                "volume",
                "ls",
                "--format",
                "{{.Name}} {{.Label \"stackctl.stack\"}}",
            ]),
        ),
    ];
    for (kind, listing) in listings {
        for (id, stack) in listing.lines().filter_map(|line| line.split_once(' ')) {
            let Some(pid) = stack
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.rsplit_once('-'))
                .and_then(|(_, pid)| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            let _ = match kind {
                "container" => Command::new("docker").args(["rm", "-f", id]).output(),
                other => Command::new("docker").args([other, "rm", id]).output(),
            };
        }
    }
}

/// The `[target]` table that reaches `sshd` with its client key and known_hosts.
fn ssh_target(sshd: &TestSshd, root: &Path, known_hosts: &Path) -> String {
    format!(
        "host = {{ address = \"127.0.0.1\", port = {port}, user = \"{user}\" }}\n\
         identity_file = \"{identity}\"\n\
         known_hosts = \"{known_hosts}\"\n\
         root = {root}",
        port = sshd.port,
        user = sshd.user,
        identity = sshd.client_key.display(),
        known_hosts = known_hosts.display(),
        root = toml_string(&root.display().to_string()),
    )
}

/// A TOML basic string holding `text` exactly (quotes, backslashes, controls escaped).
fn toml_string(text: &str) -> String {
    let mut quoted = String::from("\"");
    for character in text.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            control if control.is_control() => {
                quoted.push_str(&format!("\\u{:04X}", control as u32))
            }
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

/// A copy of examples/local that deploys over SSH: its own stack name, host root and
/// edge ports, and the `web` service carries `extra_env` (for the hostile values).
fn example_over_ssh(name: &str, sshd: &TestSshd, extra_env: &str) -> TestEnvironment {
    let environment = TestEnvironment::new();
    support::copy_tree(&repository().join("examples/local"), environment.path());
    let root = environment.path().join("host-root");
    let original = environment.read("stack.toml");
    let local_target = "host = \"local\"\nroot = \"/tmp/stackctl/local-demo\"";
    assert!(
        original.contains(local_target) && original.contains("env = { NAME = \"web\" }"),
        "examples/local/stack.toml changed shape; update this test's rewrite"
    );
    let text = original
        .replace("name = \"local-demo\"", &format!("name = \"{name}\""))
        .replace(local_target, &ssh_target(sshd, &root, &sshd.known_hosts))
        .replace(
            "env = { NAME = \"web\" }",
            &format!("env = {{ NAME = \"web\"{extra_env} }}"),
        )
        .replace("18080", &HTTP.to_string())
        .replace("18443", &HTTPS.to_string())
        .replace("18081", &ADMIN.to_string());
    environment.write("stack.toml", &text);
    environment
}

/// One service, no edge: the smallest stack that makes the host do real work, for the
/// tests about connecting, locking and quoting.
fn small_stack(name: &str, target: &str, service_env: &str) -> String {
    format!(
        "[stack]\n\
         name = \"{name}\"\n\
         \n\
         [target]\n\
         {target}\n\
         \n\
         [services.echo]\n\
         image = \"stackctl-test/server:latest\"\n\
         pull = false\n\
         port = 8080\n\
         env = {{ NAME = \"echo\"{service_env} }}\n\
         health = {{ command = [\"CMD\", \"/server\", \"health\"], interval = \"1s\", retries = 30 }}\n"
    )
}

fn stackctl(environment: &TestEnvironment, arguments: &[&str]) -> Run {
    let mut all = arguments.to_vec();
    if environment.path().join(".env.example").exists() {
        all.extend(["--env-file", ".env.example"]);
    }
    environment.run_with_env(&all, &SECRETS)
}

fn assert_code(run: &Run, code: i32, what: &str) {
    assert_eq!(
        run.code, code,
        "{what}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
}

/// A plan that could not reach the host falls back to recorded state and says so; the
/// tests here need it to have compared with what really runs.
fn assert_live_state_read(run: &Run) {
    let output = format!("{}{}", run.stdout, run.stderr);
    assert!(
        !output.contains("live state was not read"),
        "the host was not read:\n{output}"
    );
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// A loopback port nothing listens on: bound, then released.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().unwrap().port()
}

fn run_folders(directory: &Path) -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(directory)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect();
    folders.sort();
    folders
}

/// A file an injected `$(touch …)` would create: unique to this process and value.
fn pwned_marker(tag: &str) -> PathBuf {
    PathBuf::from(format!("/tmp/stackctl-pwned-{}-{tag}", std::process::id()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The guard serialises this whole test with the others that deploy; held across awaits
// on purpose.
#[allow(clippy::await_holding_lock)]
async fn over_ssh_the_stack_applies_plans_nothing_updates_one_service_repairs_drift_and_is_destroyed(
) {
    build_images();
    let _slot = deployment_slot();
    let sshd = start_sshd();
    remove_leftovers_of_dead_runs();
    let name = &stack_name("scenario");
    let marker = pwned_marker("web");
    let _ = std::fs::remove_file(&marker);
    // Shell metacharacters in a value that must reach the container byte for byte.
    let hostile = format!(
        "$(touch {}) `touch {}` ; 'q' \"d\"",
        marker.display(),
        marker.display()
    );
    let environment = example_over_ssh(
        name,
        &sshd,
        &format!(", HOSTILE = {}", toml_string(&hostile)),
    );

    // Apply from nothing, over SSH.
    let first = stackctl(&environment, &["apply", "--yes"]);
    assert_code(
        &first,
        0,
        &format!("first apply (sshd log:\n{})", sshd.log()),
    );
    assert!(
        first
            .stdout
            .contains("Plan: 18 to create, 0 to update, 0 to replace, 0 to delete, 2 to adopt"),
        "{}",
        first.stdout
    );
    assert!(first.stdout.contains("ok   checks[1]"), "{}", first.stdout);
    let state = read_json(&environment.path().join(format!("state/{name}.json")));
    assert_eq!(
        state["host_keys"][format!("127.0.0.1:{}", sshd.port)],
        sshd.host_key_fingerprint.as_str(),
        "the known host key is pinned in state: {}",
        state["host_keys"]
    );

    // The hostile value reached the container literally (the test server echoes it
    // through the edge) and nothing ran it.
    let echoed = wait_for(
        &format!("https://example.test:{HTTPS}/env/HOSTILE"),
        |result| result.status == Some(200),
    )
    .await;
    assert_eq!(echoed.status, Some(200), "{echoed:?}");
    let answer: serde_json::Value =
        serde_json::from_str(&echoed.body_excerpt).expect("the test server answers JSON");
    assert_eq!(
        answer["value"],
        hostile.as_str(),
        "the value arrives unchanged"
    );
    assert!(
        !marker.exists(),
        "{} was created: a value was executed",
        marker.display()
    );

    // A second plan has nothing to do.
    let again = stackctl(&environment, &["plan", "--detailed-exitcode"]);
    assert_code(&again, 0, "a plan right after apply");
    assert_live_state_read(&again);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);

    // One service's env changes: exactly one action, and only its container is new.
    let before = container_ids(name);
    assert_eq!(before.len(), 6, "six containers: {before:?}");
    let text = environment.read("stack.toml").replace(
        "env = { NAME = \"django\" }",
        "env = { NAME = \"django\", ECHO_ENV = \"v2\" }",
    );
    environment.write("stack.toml", &text);
    let planned = stackctl(&environment, &["plan", "--format", "json"]);
    assert_code(&planned, 0, "plan --format json");
    let document: serde_json::Value = serde_json::from_str(&planned.stdout).expect("a JSON plan");
    let actions = document["actions"].as_array().expect("actions");
    assert_eq!(
        actions.len(),
        1,
        "one action for one changed service: {actions:#?}"
    );
    assert_eq!(actions[0]["address"], "service.django");
    let update = stackctl(&environment, &["apply", "--yes", "--skip-checks"]);
    assert_code(&update, 0, "apply of one changed service");
    let after = container_ids(name);
    assert_eq!(after.len(), before.len(), "{after:?}");
    for ((name_before, id_before), (name_after, id_after)) in before.iter().zip(&after) {
        assert_eq!(name_before, name_after);
        if name_after.ends_with("-django") {
            assert_ne!(
                id_before, id_after,
                "the changed service's container is new"
            );
        } else {
            assert_eq!(id_before, id_after, "{name_after} was not touched");
        }
    }

    // A container stopped by hand is drift (exit 2); apply starts it again.
    docker(&["stop", "--time", "1", &format!("{name}-cache")]);
    let drift = stackctl(&environment, &["drift"]);
    assert_code(&drift, 2, "drift after `docker stop`");
    assert!(
        drift.stdout.contains("service.cache") && drift.stdout.contains("running: true → false"),
        "{}",
        drift.stdout
    );
    let repair = stackctl(&environment, &["apply", "--yes", "--skip-checks"]);
    assert_code(&repair, 0, "repairing apply");
    let running = docker(&[
        "inspect",
        "--format",
        "{{.State.Running}}",
        &format!("{name}-cache"),
    ]);
    assert_eq!(running, "true", "the stopped service runs again");
    let clean = stackctl(&environment, &["drift"]);
    assert_code(&clean, 0, "drift after the repair");

    // No secret value in state or in any run artifact, over SSH too.
    let mut files = vec![environment.path().join(format!("state/{name}.json"))];
    collect(&environment.path().join("runs"), &mut files);
    for path in &files {
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
        for (variable, secret) in &SECRETS[..2] {
            assert!(
                !text.contains(secret),
                "{variable} found in {}",
                path.display()
            );
        }
    }

    // Destroy leaves nothing with the stack's label.
    let destroyed = stackctl(&environment, &["destroy", "--yes", "--allow-data-loss"]);
    assert_code(&destroyed, 0, "destroy");
    assert_eq!(
        leftovers(name),
        "",
        "containers, networks or volumes left behind"
    );
    assert!(!marker.exists(), "{} was created", marker.display());
}

#[test]
fn a_changed_host_key_is_refused_with_both_fingerprints_and_nothing_changes() {
    let sshd = start_sshd();
    let name = &stack_name("changed-key");
    let environment = TestEnvironment::new();
    // known_hosts names another key for the server's address: a man in the middle, or a
    // reinstalled host.
    let other_key = sshd
        .generate_other_key("impostor_host_key")
        .expect("ssh-keygen");
    let other_public = PathBuf::from(format!("{}.pub", other_key.display()));
    let other_fingerprint = stackctl_host::testing::ssh_keygen_fingerprint(&other_public)
        .expect("fingerprint of the other key");
    let known_hosts = environment.path().join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!(
            "[127.0.0.1]:{} {}",
            sshd.port,
            std::fs::read_to_string(&other_public).unwrap()
        ),
    )
    .unwrap();
    let root = environment.path().join("host-root");
    environment.write(
        "stack.toml",
        &small_stack(name, &ssh_target(&sshd, &root, &known_hosts), ""),
    );

    let refused = stackctl(&environment, &["apply", "--yes", "--accept-new-host-key"]);
    assert_code(&refused, 1, "apply against a changed host key");
    let output = format!("{}{}", refused.stdout, refused.stderr);
    assert!(output.contains("CHANGED"), "{output}");
    assert!(
        output.contains(&sshd.host_key_fingerprint) && output.contains(&other_fingerprint),
        "both fingerprints ({} seen, {} expected) are shown:\n{output}",
        sshd.host_key_fingerprint,
        other_fingerprint
    );
    assert_eq!(leftovers(name), "", "nothing was created");
    assert!(!root.exists(), "nothing was written on the host");
    let state_file = environment.path().join(format!("state/{name}.json"));
    if state_file.exists() {
        let state = read_json(&state_file);
        assert!(
            state["host_keys"]
                .as_object()
                .is_none_or(|keys| keys.is_empty()),
            "a refused key is never pinned: {}",
            state["host_keys"]
        );
    }
}

#[test]
fn an_unknown_host_key_is_refused_until_accepted_and_is_then_pinned_in_state() {
    build_images();
    let _slot = deployment_slot();
    let sshd = start_sshd();
    remove_leftovers_of_dead_runs();
    let name = &stack_name("new-key");
    let environment = TestEnvironment::new();
    let known_hosts = environment.path().join("known_hosts");
    std::fs::write(&known_hosts, "").unwrap();
    let root = environment.path().join("host-root");
    environment.write(
        "stack.toml",
        &small_stack(name, &ssh_target(&sshd, &root, &known_hosts), ""),
    );

    let refused = stackctl(&environment, &["apply", "--yes"]);
    assert_code(&refused, 1, "apply to a host whose key is unknown");
    let output = format!("{}{}", refused.stdout, refused.stderr);
    assert!(
        output.contains("not known") && output.contains(&sshd.host_key_fingerprint),
        "the refusal shows the key it saw:\n{output}"
    );
    assert_eq!(leftovers(name), "", "nothing was created");

    let accepted = stackctl(&environment, &["apply", "--yes", "--accept-new-host-key"]);
    assert_code(&accepted, 0, "apply with --accept-new-host-key");
    let state = read_json(&environment.path().join(format!("state/{name}.json")));
    assert_eq!(
        state["host_keys"][format!("127.0.0.1:{}", sshd.port)],
        sshd.host_key_fingerprint.as_str(),
        "the accepted key is pinned: {}",
        state["host_keys"]
    );
    assert!(docker(&["ps", "--format", "{{.Names}}"])
        .lines()
        .any(|line| line == format!("{name}-echo")));

    // Pinned: later runs need no flag and known_hosts still does not know the key.
    let planned = stackctl(&environment, &["plan", "--detailed-exitcode"]);
    assert_code(&planned, 0, "plan against the pinned key");
    assert_live_state_read(&planned);
    assert!(planned.stdout.contains("No changes."), "{}", planned.stdout);

    let destroyed = stackctl(&environment, &["destroy", "--yes", "--allow-data-loss"]);
    assert_code(&destroyed, 0, "destroy");
    assert_eq!(leftovers(name), "");
}

/// Over SSH, `ps` reads the live container through the same connection as a plan, and
/// `rollback` goes back to the previous build (kept on the host), then `plan` says so; the
/// stack's images stackctl built go with `destroy`.
#[test]
fn over_ssh_ps_shows_the_live_container_and_rollback_restores_the_previous_build() {
    build_images();
    let _slot = deployment_slot();
    let sshd = start_sshd();
    remove_leftovers_of_dead_runs();
    let name = &stack_name("rollback");
    let _host_records = HostRecords(name.clone());
    let environment = TestEnvironment::new();
    let root = environment.path().join("host-root");
    let write = |version: &str| {
        environment.write(
            "app/Dockerfile",
            &format!("FROM stackctl-test/server:latest\nENV ECHO_ENV={version}\n"),
        );
        let text = small_stack(name, &ssh_target(&sshd, &root, &sshd.known_hosts), "").replace(
            "image = \"stackctl-test/server:latest\"\npull = false\n",
            "build = \"app\"\n",
        );
        environment.write("stack.toml", &text);
    };
    let running_image = || {
        docker(&[
            "ps",
            "--filter",
            &format!("label=stackctl.stack={name}"),
            "--filter",
            "label=stackctl.resource=service.echo",
            "--format",
            "{{.Image}}",
        ])
    };
    write("v1");
    assert_code(&stackctl(&environment, &["apply", "--yes"]), 0, "apply v1");
    let v1 = running_image();
    write("v2");
    assert_code(&stackctl(&environment, &["apply", "--yes"]), 0, "apply v2");
    let v2 = running_image();
    assert!(
        v1.starts_with(&format!("{name}/echo:")) && v1 != v2,
        "{v1} {v2}"
    );

    let ps = stackctl(&environment, &["ps", "--format", "json"]);
    assert_code(&ps, 0, "ps over SSH");
    let document: serde_json::Value = serde_json::from_str(&ps.stdout).unwrap();
    let echo = &document["services"][0];
    assert_eq!(echo["service"], "echo");
    assert_eq!(echo["image"], v2.as_str());
    assert_eq!(echo["state"], "running");
    let live_id = docker(&["inspect", "--format", "{{.Id}}", &format!("{name}-echo")]);
    assert_eq!(echo["container_id"], live_id.as_str());

    let rollback = stackctl(&environment, &["rollback", "--yes"]);
    assert_code(&rollback, 0, "rollback over SSH");
    assert_eq!(running_image(), v1, "v1 runs again");
    let plan = stackctl(&environment, &["plan", "--detailed-exitcode"]);
    assert_code(&plan, 2, "plan after the rollback");
    assert_live_state_read(&plan);
    assert!(
        plan.stdout.contains("rolled back to history entry 1"),
        "{}",
        plan.stdout
    );

    let destroyed = stackctl(&environment, &["destroy", "--yes", "--allow-data-loss"]);
    assert_code(&destroyed, 0, "destroy");
    assert_eq!(leftovers(name), "");
    assert_eq!(
        docker(&[
            "image",
            "ls",
            "-q",
            "--filter",
            &format!("label=stackctl.stack={name}")
        ]),
        "",
        "the images kept for rollback go with the stack"
    );
}

/// The host lock is keyed on the stack (not on `[target].root`) and is a kernel lock held
/// by a process that lives as long as the SSH session holding it: a second operator is
/// refused naming the holder, even from another state directory with another root; when
/// the holder's connection ends without unlocking (kill -9, a cut network), the next
/// apply takes the lock over by itself, with a warning naming the gone holder.
#[test]
fn the_host_lock_is_keyed_on_the_stack_and_dies_with_the_ssh_session_holding_it() {
    build_images();
    let _slot = deployment_slot();
    let sshd = start_sshd();
    remove_leftovers_of_dead_runs();
    let name = &stack_name("host-lock");
    let _host_records = HostRecords(name.clone());
    let environment = TestEnvironment::new();
    let root = environment.path().join("host-root");
    environment.write(
        "stack.toml",
        &small_stack(name, &ssh_target(&sshd, &root, &sshd.known_hosts), ""),
    );
    // The same stack, from another state directory, with another root on the host.
    let other_root = environment.path().join("other-root");
    environment.write(
        "other.toml",
        &small_stack(name, &ssh_target(&sshd, &other_root, &sshd.known_hosts), ""),
    );
    let other_state = environment.path().join("other-operator-state");
    let other_state_argument = other_state.display().to_string();
    let other_apply = [
        "apply",
        "--yes",
        "--config",
        "other.toml",
        "--state-dir",
        &other_state_argument,
    ];

    // Another operator's run holds the stack's lock over a real SSH session.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let alice = runtime
        .block_on(SshHost::connect(sshd.ssh_options()))
        .unwrap_or_else(|error| panic!("{error}\n{}", sshd.log()));
    let holder = r#"{"who":"alice@laptop","pid":4242,"when":"2026-05-02T10:14:03Z","command":"stackctl apply"}"#;
    runtime
        .block_on(alice.lock(&host_lock_path(name), holder))
        .unwrap();

    for arguments in [&["apply", "--yes"][..], &other_apply[..]] {
        let refused = stackctl(&environment, arguments);
        assert_code(&refused, 1, "apply while another holds the host lock");
        let output = format!("{}{}", refused.stdout, refused.stderr);
        assert!(
            output.contains("host lock") && output.contains("alice@laptop"),
            "the refusal names the holder:\n{output}"
        );
        assert!(
            output.contains("releases the lock by itself"),
            "and says that a gone run needs no manual step:\n{output}"
        );
    }
    assert_eq!(leftovers(name), "", "nothing was created");

    // Alice's connection ends without an unlock. Her lock goes with it: the next apply
    // (from the other root) takes it over, without `state unlock --host`.
    drop(alice);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let applied = loop {
        let run = stackctl(&environment, &other_apply);
        if run.code == 0 || std::time::Instant::now() > deadline {
            break run;
        }
        assert!(
            run.stderr.contains("another apply holds the host lock"),
            "apply failed for another reason:\n{}\n{}",
            run.stdout,
            run.stderr
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_code(&applied, 0, "apply once the holder's session ended");
    assert!(
        applied.stderr.contains("took over the host lock")
            && applied.stderr.contains("alice@laptop"),
        "the take-over is a warning naming the gone holder:\n{}",
        applied.stderr
    );

    // Released at the end of the run: nothing to clear, and `state unlock --host` says so.
    let unlocked = stackctl(
        &environment,
        &[
            "state",
            "unlock",
            "--host",
            "--config",
            "other.toml",
            "--state-dir",
            &other_state_argument,
        ],
    );
    assert_code(&unlocked, 0, "state unlock --host");
    assert!(
        unlocked.stdout.contains("is free; nothing to clear"),
        "{}",
        unlocked.stdout
    );
    let destroyed = stackctl(
        &environment,
        &[
            "destroy",
            "--yes",
            "--allow-data-loss",
            "--config",
            "other.toml",
            "--state-dir",
            &other_state_argument,
        ],
    );
    assert_code(&destroyed, 0, "destroy");
    assert_eq!(leftovers(name), "");
}

/// The SSH connection is cut in the middle of an apply (every `sshd` process serving
/// it killed while `web` waits to become healthy; the server itself goes on listening):
/// the run fails cleanly, naming the actions whose outcome is unknown; the state is
/// valid; nothing needs unlocking (the host lock died with the session); the next apply
/// converges, the plan is then empty and `verify` passes.
#[test]
fn an_ssh_connection_cut_mid_apply_fails_cleanly_and_the_next_apply_converges() {
    use std::io::{BufRead, BufReader};
    build_images();
    let _slot = deployment_slot();
    let sshd = start_sshd();
    remove_leftovers_of_dead_runs();
    let name = &stack_name("cut");
    let _host_records = HostRecords(name.clone());
    // `web` takes ~4 s to become healthy: the cut lands while the run waits for it.
    let environment = example_over_ssh(name, &sshd, ", START_DELAY_MS = \"4000\"");

    let mut command = environment.command(&["apply", "--yes", "--env-file", ".env.example"]);
    for (variable, value) in SECRETS {
        command.env(variable, value);
    }
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("start stackctl apply");
    let stdout = child.stdout.take().unwrap();
    let stdout_reader =
        std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let (lines, received) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut progress = String::new();
    let mut cut = 0;
    while std::time::Instant::now() < deadline {
        match received.recv_timeout(std::time::Duration::from_millis(200)) {
            Ok(line) => {
                progress.push_str(&line);
                progress.push('\n');
                // Progress lines off a terminal: `[<time>] service.web: started …`.
                if cut == 0 && line.contains("service.web") && line.contains("Z] ") {
                    std::thread::sleep(std::time::Duration::from_millis(1500));
                    cut = sshd.cut_connections();
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if std::time::Instant::now() >= deadline {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait for stackctl apply");
    let _ = stderr_reader.join();
    let stdout = stdout_reader.join().unwrap_or_default();
    let said = format!("{stdout}\n{progress}");
    assert!(
        cut > 0,
        "the connection was cut (no sshd process found):\n{said}"
    );
    assert!(
        std::time::Instant::now() < deadline,
        "the apply ended on its own after the cut:\n{said}"
    );
    assert_ne!(status.code(), Some(0), "the cut run fails:\n{said}");
    assert!(
        said.lines().any(|line| line.contains("failed: service.web: outcome unknown: the connection to")),
        "it names the actions whose outcome is unknown (`web` was waiting to become healthy):\n{said}"
    );

    // The state is valid and nobody holds its lock.
    let store = stackctl::state::StateStore::new(environment.path().join("state"), name);
    store
        .read()
        .unwrap_or_else(|error| panic!("the state does not load: {error}"));
    assert_eq!(stackctl::state::StateLock::holder(&store.lock_path()), None);

    // No manual step: the next apply reconnects and converges.
    let converged = stackctl(&environment, &["apply", "--yes"]);
    assert_code(
        &converged,
        0,
        &format!("the apply after the cut (sshd log:\n{})", sshd.log()),
    );
    assert!(
        !format!("{}{}", converged.stdout, converged.stderr).contains("another apply holds"),
        "the host lock died with the cut session"
    );
    let planned = stackctl(&environment, &["plan", "--detailed-exitcode"]);
    assert_code(&planned, 0, "plan after converging");
    let verified = stackctl(&environment, &["verify"]);
    assert_code(&verified, 0, "verify after converging");

    let destroyed = stackctl(&environment, &["destroy", "--yes", "--allow-data-loss"]);
    assert_code(&destroyed, 0, "destroy");
    assert_eq!(leftovers(name), "");
}

#[test]
fn an_unreachable_target_gives_exit_3_and_a_run_folder_naming_address_and_cause() {
    let name = &stack_name("unreachable");
    let environment = TestEnvironment::new();
    let port = closed_port();
    let target = format!(
        "host = {{ address = \"127.0.0.1\", port = {port}, user = \"root\" }}\n\
         root = {}",
        toml_string(&environment.path().join("host-root").display().to_string())
    );
    environment.write("stack.toml", &small_stack(name, &target, ""));

    let run = stackctl(&environment, &["apply", "--yes"]);
    assert_code(&run, 3, "apply to a closed port");
    let address = format!("127.0.0.1:{port}");
    assert!(
        run.stdout.contains(&address) || run.stderr.contains(&address),
        "the warning names the address:\n{}{}",
        run.stdout,
        run.stderr
    );
    let folders = run_folders(&environment.path().join("runs"));
    assert_eq!(folders.len(), 1, "one run folder: {folders:?}");
    let summary = std::fs::read_to_string(folders[0].join("summary.txt"))
        .expect("the run folder has summary.txt");
    assert!(
        summary.contains(&address),
        "summary names the address:\n{summary}"
    );
    assert!(
        summary.to_lowercase().contains("connection refused"),
        "summary names the cause:\n{summary}"
    );
    assert!(folders[0].join("plan.json").exists(), "the plan is kept");
    assert_eq!(leftovers(name), "");
}

#[test]
fn hostile_values_and_paths_reach_the_host_literally_and_hostile_names_are_rejected() {
    build_images();
    let _slot = deployment_slot();
    let sshd = start_sshd();
    remove_leftovers_of_dead_runs();
    let name = &stack_name("hostile");
    let environment = TestEnvironment::new();
    let markers: Vec<PathBuf> = ["value", "backtick", "root", "name"]
        .iter()
        .map(|tag| pwned_marker(tag))
        .collect();
    for marker in &markers {
        let _ = std::fs::remove_file(marker);
    }
    let value = format!(
        "$(touch {}) ; 'single' \"double\"\nsecond line",
        markers[0].display()
    );
    let backticks = format!("`touch {}`", markers[1].display());
    // The host root goes into the remote scripts that create directories and write
    // files (a `[files]` entry below): it gets every metacharacter too.
    let root = environment
        .path()
        .join(format!("root $(touch {}) `id` ;'\"", markers[2].display()));
    let target = ssh_target(&sshd, &root, &sshd.known_hosts);
    environment.write(
        "stack.toml",
        &small_stack(
            name,
            &target,
            &format!(
                ", INJECTED = {}, BACKTICKS = {}",
                toml_string(&value),
                toml_string(&backticks)
            ),
        ),
    );
    // A file under the root, so that something is written below the hostile path.
    let mut text = environment.read("stack.toml");
    text.push_str("\n[files.note]\npath = \"note.txt\"\ncontent = \"written literally\"\n");
    environment.write("stack.toml", &text);

    let applied = stackctl(&environment, &["apply", "--yes"]);
    assert_code(&applied, 0, "apply with hostile values");
    let environment_json = docker(&[
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        &format!("{name}-echo"),
    ]);
    let variables: Vec<String> =
        serde_json::from_str(&environment_json).expect("the container's env as JSON");
    assert!(
        variables.contains(&format!("INJECTED={value}")),
        "the value arrives byte for byte: {variables:?}"
    );
    assert!(
        variables.contains(&format!("BACKTICKS={backticks}")),
        "{variables:?}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("files/note.txt"))
            .ok()
            .as_deref(),
        Some("written literally"),
        "the host root is used under its literal name"
    );

    // A hostile service name never reaches a shell or Docker: validation rejects it.
    let hostile_name = format!("echo$(touch {})", markers[3].display());
    environment.write(
        "stack.toml",
        &small_stack(name, &target, "").replace(
            "[services.echo]",
            &format!("[services.{}]", toml_string(&hostile_name)),
        ),
    );
    let rejected = stackctl(&environment, &["plan"]);
    assert_code(&rejected, 1, "plan with a hostile service name");
    assert!(
        rejected.stderr.contains("error"),
        "a clear error: {}",
        rejected.stderr
    );

    environment.write("stack.toml", &small_stack(name, &target, ""));
    let destroyed = stackctl(&environment, &["destroy", "--yes", "--allow-data-loss"]);
    assert_code(&destroyed, 0, "destroy");
    assert_eq!(leftovers(name), "");
    for marker in &markers {
        assert!(
            !marker.exists(),
            "{} was created: something was executed",
            marker.display()
        );
    }
}

fn collect(directory: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
