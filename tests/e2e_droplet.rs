//! End to end with a DigitalOcean account: the emulator (`stackctl_do_emulator::Emulator`,
//! in-process on 127.0.0.1) plays the API, a real OpenSSH server on loopback plays the
//! droplet (every droplet's public IPv4 is 127.0.0.1, and `[target] port` points at the
//! test sshd), and the real Docker daemon behind it runs the test stack with the Traefik
//! edge. The real `stackctl` binary is driven, as a user would.
//!
//! Prerequisites, all installed and started by `.ci/run`: `dockerd`, `openssh-server`
//! (`/usr/sbin/sshd`, `/run/sshd`), `ssh-keygen`, and the FROM scratch test images from
//! `testing/build-images.sh` (which needs the Traefik binary). Without them these tests
//! fail with a message saying so; they never skip.
//!
//! Every test talks to loopback only, and every wait is bounded in count and time.

mod support;

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use stackctl_digitalocean::client::{Client, ClientConfig, Token};
use stackctl_do_emulator::{Emulator, EmulatorConfig, Faults};
use stackctl_host::testing::TestSshd;

use support::{repository, Run, TestEnvironment};

const TOKEN: &str = "dop_v1_e2e_droplet_token_0123456789abcdef";
const ADMIN_CIDR: &str = "198.51.100.0/24";
const SECRETS: [(&str, &str); 2] = [
    ("API_SECRET_KEY", "e2e-droplet-Secret-4471"),
    ("FLOWER_PASSWORD", "e2e-droplet-Flower-4471"),
];
const DESIRED_SIZE: &str = "s-1vcpu-2gb";
const OTHER_SIZE: &str = "s-2vcpu-4gb";

/// The tests that run containers share Docker, the CPU and the images: one at a time
/// keeps their timings (health checks, Traefik reloads) within their bounds.
static DOCKER: Mutex<()> = Mutex::new(());

fn docker_lock() -> std::sync::MutexGuard<'static, ()> {
    // A failed test must not poison the others: the lock only orders them.
    DOCKER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Edge ports of one test: unique per test so a leftover from one never answers another.
#[derive(Clone, Copy)]
struct Ports {
    http: u16,
    https: u16,
    admin: u16,
}

fn build_images() {
    let status = Command::new("bash")
        .arg(repository().join("testing/build-images.sh"))
        .status()
        .expect("run testing/build-images.sh (needs bash)");
    assert!(
        status.success(),
        "testing/build-images.sh failed: dockerd must be running and Traefik installed (.ci/run does both)"
    );
}

fn start_sshd() -> TestSshd {
    TestSshd::start().unwrap_or_else(|error| {
        panic!("the droplet is played by a real sshd on loopback, which did not start: {error}. .ci/run installs openssh-server and creates /run/sshd")
    })
}

async fn start_emulator() -> Emulator {
    Emulator::start(EmulatorConfig {
        token: TOKEN.to_string(),
        // A local sshd plays every droplet.
        public_ipv4: "127.0.0.1".to_string(),
        activation_delay: Duration::from_millis(150),
        action_delay: Duration::from_millis(50),
        ..EmulatorConfig::default()
    })
    .await
    .expect("the emulator starts on 127.0.0.1")
}

/// A stack like examples/local (web, api, django, cache, flower behind the Traefik
/// edge), but on the droplet `web-1` with its key, firewall and DNS records.
struct Stack {
    environment: TestEnvironment,
    name: String,
    api_url: String,
}

impl Stack {
    fn new(
        name: &str,
        emulator: &Emulator,
        ssh_port: u16,
        sshd: Option<&TestSshd>,
        ports: Ports,
    ) -> Stack {
        let environment = TestEnvironment::new();
        let root = environment.path().join("host-root");
        // With no sshd (the "unreachable" case) a key pair of our own still gives the
        // droplet a key and the client an identity.
        let (identity, known_hosts, user) = match sshd {
            // The sshd lets the user running the tests log in with its client key.
            Some(sshd) => (
                sshd.client_key.clone(),
                sshd.known_hosts.clone(),
                sshd.user.clone(),
            ),
            None => {
                let key = environment.path().join("client_ed25519_key");
                let status = Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", "e2e-droplet", "-f"])
                    .arg(&key)
                    .status()
                    .expect("ssh-keygen (package openssh-client, installed by .ci/run)");
                assert!(status.success(), "ssh-keygen failed");
                (
                    key,
                    environment.path().join("known_hosts"),
                    "root".to_string(),
                )
            }
        };
        let public_key_file = format!("{}.pub", identity.display());
        let Ports { http, https, admin } = ports;
        let text = format!(
            r#"[stack]
name = "{name}"
env_file = ".env"

[target]
droplet = "web-1"
user = "{user}"
port = {ssh_port}
identity_file = "{identity}"
known_hosts = "{known_hosts}"
root = "{root}"

[droplets.web-1]
region = "fra1"
size = "{DESIRED_SIZE}"
image = "docker-20-04"
ssh_keys = ["deploy"]
tags = ["e2e"]

[ssh_keys.deploy]
public_key_file = "{public_key_file}"

[firewalls.web]
droplets = ["web-1"]
inbound = [
  {{ protocol = "tcp", ports = "22", sources = ["${{ADMIN_CIDR}}"] }},
  {{ protocol = "tcp", ports = "80" }},
  {{ protocol = "tcp", ports = "443" }},
]

[dns]
domain = "{name}.test"
records = [
  {{ type = "A", name = "@" }},
  {{ type = "A", name = "flower" }},
]

[edge]
image = "stackctl-test/traefik:3.7.15"
pull = false
bind_address = "127.0.0.1"
http_port = {http}
https_port = {https}
admin_port = {admin}

[services.web]
image = "stackctl-test/server:latest"
pull = false
port = 8080
env = {{ NAME = "web" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}
networks = ["edge"]
read_only = true
memory = "64m"

[services.api]
image = "stackctl-test/server:latest"
pull = false
port = 8080
env = {{ NAME = "api", HEALTH_PATH = "/api/health", API_SECRET_KEY = "${{API_SECRET_KEY}}" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}
networks = ["edge", "backend"]
depends_on = ["cache"]
memory = "64m"

[services.django]
image = "stackctl-test/server:latest"
pull = false
port = 8080
env = {{ NAME = "django" }}
networks = ["backend"]

[services.cache]
image = "stackctl-test/server:latest"
pull = false
env = {{ NAME = "cache" }}
volumes = ["cachedata:/data"]
networks = ["backend"]

[services.flower]
image = "stackctl-test/server:latest"
pull = false
port = 8080
env = {{ NAME = "flower" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}
networks = ["edge"]
dashboard = true

[routes.web]
host = "{name}.test"
service = "web"
middlewares = ["secure-headers"]

[routes.api]
host = "{name}.test"
path_prefix = "/api"
service = "api"
middlewares = ["secure-headers", "api-limit"]

[routes.flower]
host = "flower.{name}.test"
service = "flower"
middlewares = ["secure-headers", "admins", "flower-auth"]

[middlewares.secure-headers]
type = "headers"
hsts_seconds = 31536000
content_type_nosniff = true
frame_deny = true
remove_server_headers = true

[middlewares.api-limit]
type = "rate_limit"
average = 20
burst = 40

[middlewares.admins]
type = "ip_allow_list"
source_range = ["${{ADMIN_CIDR}}"]

[middlewares.flower-auth]
type = "basic_auth"
users = {{ admin = "${{FLOWER_PASSWORD}}" }}
realm = "flower"

[[checks]]
url = "https://{name}.test:{https}/"
expect_status = 200

[[checks]]
url = "https://{name}.test:{https}/api/health"
expect_status = 200
expect_headers = {{ strict-transport-security = "*", x-content-type-options = "nosniff" }}
"#,
            identity = identity.display(),
            known_hosts = known_hosts.display(),
            root = root.display(),
        );
        environment.write("stack.toml", &text);
        environment.write(
            ".env",
            &format!(
                "ADMIN_CIDR={ADMIN_CIDR}\nAPI_SECRET_KEY={}\nFLOWER_PASSWORD={}\n",
                SECRETS[0].1, SECRETS[1].1
            ),
        );
        Stack {
            environment,
            name: name.to_string(),
            api_url: emulator.base_url(),
        }
    }

    /// The real binary with the emulator's URL and the token.
    fn stackctl(&self, arguments: &[&str]) -> Run {
        self.stackctl_with_token(arguments, Some(TOKEN))
    }

    fn stackctl_with_token(&self, arguments: &[&str], token: Option<&str>) -> Run {
        let mut variables = vec![
            ("DIGITALOCEAN_API_URL", self.api_url.as_str()),
            // Actions and starting droplets are polled every 50 ms, not every 3 s.
            ("STACKCTL_DO_POLL_INTERVAL_MS", "50"),
            ("STACKCTL_DO_READY_TIMEOUT_SECONDS", "60"),
        ];
        if let Some(token) = token {
            variables.push(("DIGITALOCEAN_TOKEN", token));
        }
        self.environment.run_with_env(arguments, &variables)
    }

    fn containers(&self) -> String {
        docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=stackctl.stack={}", self.name),
            "--format",
            "{{.Names}}",
        ])
    }

    fn run_folders(&self) -> Vec<std::path::PathBuf> {
        let mut folders: Vec<_> = std::fs::read_dir(self.environment.path().join("runs"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.is_dir())
            .collect();
        folders.sort();
        folders
    }
}

fn docker(arguments: &[&str]) -> String {
    let output = Command::new("docker")
        .args(arguments)
        .output()
        .expect("the docker CLI (package docker.io, installed by .ci/run)");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn explain(run: &Run) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        run.code, run.stdout, run.stderr
    )
}

fn droplet_sizes(emulator: &Emulator) -> Vec<String> {
    emulator
        .droplets()
        .iter()
        .map(|droplet| droplet["size_slug"].as_str().unwrap_or("?").to_string())
        .collect()
}

fn only_droplet(emulator: &Emulator) -> Json {
    let droplets = emulator.droplets();
    assert_eq!(droplets.len(), 1, "exactly one droplet: {droplets:#?}");
    droplets[0].clone()
}

/// Records of a domain other than the NS and SOA records DigitalOcean makes itself.
fn records(state: &Json, domain: &str) -> Vec<Json> {
    state["domains"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["name"] == domain)
        .flat_map(|item| item["records"].as_array().cloned().unwrap_or_default())
        .filter(|record| !matches!(record["type"].as_str(), Some("NS" | "SOA")))
        .collect()
}

fn count(state: &Json, key: &str) -> usize {
    state[key].as_array().map_or(0, Vec::len)
}

/// The actions of `plan --format json`, as (address, action).
fn planned_actions(stack: &Stack) -> Vec<(String, String)> {
    let planned = stack.stackctl(&["plan", "--format", "json"]);
    assert!(
        planned.code == 0 || planned.code == 2,
        "plan failed: {}",
        explain(&planned)
    );
    let document: Json = serde_json::from_str(&planned.stdout)
        .unwrap_or_else(|error| panic!("plan JSON ({error}): {}", explain(&planned)));
    document["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|action| {
            (
                action["address"].as_str().unwrap_or_default().to_string(),
                action["action"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Removes whatever a failed test left in Docker, so the next run starts clean.
fn remove_leftovers(stack: &str) {
    let leftovers = docker(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=stackctl.stack={stack}"),
    ]);
    for id in leftovers.lines() {
        docker(&["rm", "-f", id]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The guard serialises this whole test with the others that deploy; held across awaits
// on purpose.
#[allow(clippy::await_holding_lock)]
async fn from_an_empty_account_one_apply_builds_cloud_and_stack_then_drift_is_repaired_and_destroy_empties_the_account(
) {
    let _docker = docker_lock();
    build_images();
    let name = "e2e-droplet";
    remove_leftovers(name);
    let sshd = start_sshd();
    let emulator = start_emulator().await;
    let ports = Ports {
        http: 24080,
        https: 24443,
        admin: 24081,
    };
    let stack = Stack::new(name, &emulator, sshd.port, Some(&sshd), ports);

    // One apply from an empty account: key, droplet, firewall, records and the stack;
    // the droplet's IP reaches the records and the SSH target within the same run.
    let first = stack.stackctl(&["apply", "--yes", "--accept-new-host-key"]);
    assert_eq!(
        first.code,
        0,
        "the first apply: {}\nsshd log:\n{}",
        explain(&first),
        sshd.log()
    );
    assert!(
        first.stdout.contains("ok   checks[1]"),
        "the checks pass: {}",
        explain(&first)
    );
    let state = emulator.state();
    assert_eq!(count(&state, "ssh_keys"), 1, "{state:#}");
    assert_eq!(count(&state, "firewalls"), 1, "{state:#}");
    let droplet = only_droplet(&emulator);
    assert_eq!(droplet["size_slug"], DESIRED_SIZE);
    assert_eq!(droplet["status"], "active");
    let droplet_id = droplet["id"].as_i64().expect("droplet id");
    let firewall = &state["firewalls"][0];
    assert_eq!(firewall["droplet_ids"], json!([droplet_id]), "{firewall:#}");
    let dns = records(&state, &format!("{name}.test"));
    assert_eq!(dns.len(), 2, "{dns:#?}");
    for record in &dns {
        assert_eq!(record["type"], "A");
        assert_eq!(
            record["data"], "127.0.0.1",
            "the droplet's IP flowed into the record: {record:#}"
        );
    }
    let containers = stack.containers();
    for service in ["edge", "web", "api", "django", "cache", "flower"] {
        assert!(
            containers.lines().any(|line| {
                // Routed services carry a hash suffix (they are swapped create-first).
                let prefix = format!("{name}-{service}");
                line == prefix || line.starts_with(&format!("{prefix}-"))
            }),
            "{service} runs on the droplet: {containers}"
        );
    }

    // A second plan has nothing to do.
    let again = stack.stackctl(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        again.code,
        0,
        "a second plan should be empty: {}",
        explain(&again)
    );
    assert!(again.stdout.contains("No changes."), "{}", explain(&again));
    assert!(
        !again.stdout.contains("could not be read"),
        "the plan read the droplet's Docker and files over SSH: {}",
        explain(&again)
    );

    // A resize behind stackctl's back is drift on `size`, and apply resizes it back.
    assert!(emulator.resize_out_of_band(droplet_id, OTHER_SIZE));
    let drift = stack.stackctl(&["drift"]);
    // Shown with the test's output (on failure, or with --nocapture).
    println!("drift: {}", explain(&drift));
    assert_eq!(drift.code, 2, "drift is reported: {}", explain(&drift));
    assert!(
        drift.stdout.contains("droplet.web-1") && drift.stdout.contains("size"),
        "the drift names the droplet's size: {}",
        explain(&drift)
    );
    assert!(drift.stdout.contains(OTHER_SIZE), "{}", explain(&drift));
    let repair = stack.stackctl(&["apply", "--yes", "--skip-checks"]);
    assert_eq!(repair.code, 0, "the repair: {}", explain(&repair));
    assert_eq!(droplet_sizes(&emulator), vec![DESIRED_SIZE.to_string()]);
    assert_eq!(
        only_droplet(&emulator)["id"],
        droplet_id,
        "resized in place, not replaced"
    );
    let clean = stack.stackctl(&["drift"]);
    assert_eq!(
        clean.code,
        0,
        "no drift after the repair: {}",
        explain(&clean)
    );

    // Destroy: nothing left in the account or in Docker.
    let destroyed = stack.stackctl(&["destroy", "--yes", "--allow-data-loss"]);
    assert_eq!(destroyed.code, 0, "destroy: {}", explain(&destroyed));
    let state = emulator.state();
    assert_eq!(count(&state, "droplets"), 0, "{state:#}");
    assert_eq!(count(&state, "ssh_keys"), 0, "{state:#}");
    assert_eq!(count(&state, "firewalls"), 0, "{state:#}");
    assert_eq!(
        count(&state, "domains"),
        0,
        "the zone stackctl created is gone too: {state:#}"
    );
    assert_eq!(
        stack.containers(),
        "",
        "no container with the stack's label"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The guard serialises this whole test with the others that deploy; held across awaits
// on purpose.
#[allow(clippy::await_holding_lock)]
async fn a_429_burst_and_a_dropped_connection_during_droplet_creation_leave_exactly_one_droplet() {
    let _docker = docker_lock();
    build_images();
    let name = "e2e-droplet-faults";
    remove_leftovers(name);
    let sshd = start_sshd();
    let emulator = start_emulator().await;
    let ports = Ports {
        http: 24180,
        https: 24543,
        admin: 24181,
    };
    let stack = Stack::new(name, &emulator, sshd.port, Some(&sshd), ports);
    // Three 429s (retry-after 1 s), then the create is committed and its connection
    // dropped unanswered: the client must find the droplet instead of making another.
    emulator.set_faults(Faults {
        rate_limited: 3,
        retry_after_seconds: 1,
        drop_after_commit: 1,
        only: Some("POST /v2/droplets".to_string()),
        ..Faults::default()
    });
    let applied = stack.stackctl(&["apply", "--yes", "--accept-new-host-key", "--skip-checks"]);
    // Shown with the test's output (on failure, or with --nocapture).
    println!("applied: {}", explain(&applied));
    assert_eq!(
        applied.code,
        0,
        "apply through the faults: {}",
        explain(&applied)
    );
    let faults = emulator.faults();
    assert_eq!(
        faults.rate_limited, 0,
        "the 429 burst was served: {faults:?}"
    );
    assert_eq!(
        faults.drop_after_commit, 0,
        "the connection was dropped: {faults:?}"
    );
    let creates = emulator
        .exchanges()
        .iter()
        .filter(|exchange| exchange.method == "POST" && exchange.path == "/v2/droplets")
        .count();
    assert_eq!(
        creates, 4,
        "three 429s, then the create whose answer was lost; no second create"
    );
    let droplet = only_droplet(&emulator);
    assert_eq!(droplet["status"], "active");
    let again = stack.stackctl(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "the stack is complete: {}", explain(&again));

    let destroyed = stack.stackctl(&["destroy", "--yes", "--allow-data-loss"]);
    assert_eq!(destroyed.code, 0, "destroy: {}", explain(&destroyed));
    assert_eq!(emulator.droplets().len(), 0);
    assert_eq!(stack.containers(), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ssh_unreachable_the_cloud_is_applied_host_actions_are_skipped_and_apply_exits_3() {
    let emulator = start_emulator().await;
    // A port nothing listens on: bound once to get a free number, then released.
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().unwrap().port()
    };
    let ports = Ports {
        http: 24280,
        https: 24643,
        admin: 24281,
    };
    let stack = Stack::new(
        "e2e-droplet-unreachable",
        &emulator,
        closed_port,
        None,
        ports,
    );

    let applied = stack.stackctl(&["apply", "--yes", "--accept-new-host-key"]);
    // Shown with the test's output (on failure, or with --nocapture).
    println!("applied: {}", explain(&applied));
    assert_eq!(applied.code, 3, "a partial apply: {}", explain(&applied));
    let all = format!("{}{}", applied.stdout, applied.stderr);
    let address = format!("127.0.0.1:{closed_port}");
    assert!(
        all.contains("skipped"),
        "host actions are reported skipped: {}",
        explain(&applied)
    );
    assert!(
        all.contains(&address),
        "the warning names the address: {}",
        explain(&applied)
    );
    assert!(
        all.to_ascii_lowercase().contains("refused"),
        "the warning names the cause: {}",
        explain(&applied)
    );
    // The cloud side is complete.
    let state = emulator.state();
    let droplet = only_droplet(&emulator);
    assert_eq!(droplet["status"], "active");
    assert_eq!(count(&state, "ssh_keys"), 1, "{state:#}");
    assert_eq!(count(&state, "firewalls"), 1, "{state:#}");
    let dns = records(&state, "e2e-droplet-unreachable.test");
    assert_eq!(dns.len(), 2, "{dns:#?}");
    assert!(
        dns.iter().all(|record| record["data"] == "127.0.0.1"),
        "{dns:#?}"
    );
    // The evidence of the run is written.
    let folders = stack.run_folders();
    assert_eq!(folders.len(), 1, "one run folder: {folders:?}");
    let summary: Json = serde_json::from_str(
        &std::fs::read_to_string(folders[0].join("summary.json")).unwrap_or_default(),
    )
    .unwrap_or_else(|error| panic!("the run folder holds summary.json ({error}): {folders:?}"));
    assert_eq!(
        (summary["succeeded"].as_u64(), summary["failed"].as_u64()),
        (Some(5), Some(0)),
        "key, droplet, firewall and two records succeeded, nothing failed: {summary:#}"
    );
    assert!(
        summary["unreachable"].as_u64().unwrap_or(0) > 0,
        "host actions are counted unreachable: {summary:#}"
    );
    assert!(
        std::fs::read_to_string(folders[0].join("summary.txt"))
            .unwrap_or_default()
            .contains(&address),
        "the run folder's summary names the address"
    );
    // The droplet and its address are recorded, so the next apply reaches it.
    let recorded: Json =
        serde_json::from_str(&stack.environment.read("state/e2e-droplet-unreachable.json"))
            .expect("state is written");
    assert_eq!(
        recorded["resources"]["droplet.web-1"]["attributes"]["ipv4"],
        "127.0.0.1"
    );
    // Nothing ran on this machine's Docker under the stack's name.
    assert_eq!(stack.containers(), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_refused_token_fails_first_naming_the_variable_and_changes_nothing() {
    let emulator = start_emulator().await;
    let ports = Ports {
        http: 24380,
        https: 24743,
        admin: 24381,
    };
    let stack = Stack::new("e2e-droplet-token", &emulator, 1, None, ports);

    let missing = stack.stackctl_with_token(&["apply", "--yes"], None);
    // Shown with the test's output (on failure, or with --nocapture).
    println!("missing: {}", explain(&missing));
    assert_eq!(missing.code, 1, "{}", explain(&missing));
    assert!(
        missing.stderr.contains("DIGITALOCEAN_TOKEN"),
        "{}",
        explain(&missing)
    );

    let refused =
        stack.stackctl_with_token(&["apply", "--yes"], Some("dop_v1_not_the_right_token"));
    assert_eq!(refused.code, 1, "{}", explain(&refused));
    assert!(
        refused.stderr.contains("DIGITALOCEAN_TOKEN"),
        "{}",
        explain(&refused)
    );

    let state = emulator.state();
    for kind in ["droplets", "ssh_keys", "firewalls", "domains"] {
        assert_eq!(count(&state, kind), 0, "nothing created: {state:#}");
    }
    let mutations: Vec<_> = emulator
        .exchanges()
        .into_iter()
        .filter(|exchange| exchange.method != "GET")
        .map(|exchange| format!("{} {}", exchange.method, exchange.path))
        .collect();
    assert!(
        mutations.is_empty(),
        "no change was attempted: {mutations:?}"
    );
    assert!(
        !stack
            .environment
            .path()
            .join("state/e2e-droplet-token.json")
            .exists()
            || !stack
                .environment
                .read("state/e2e-droplet-token.json")
                .contains("droplet.web-1"),
        "no resource recorded"
    );
    assert_eq!(stack.containers(), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_adopts_an_existing_droplet_and_the_next_plan_does_not_create_it() {
    let emulator = start_emulator().await;
    let name = "e2e-droplet-import";
    let ports = Ports {
        http: 24480,
        https: 24843,
        admin: 24481,
    };
    let stack = Stack::new(name, &emulator, 1, None, ports);

    // A droplet made outside stackctl, as the same settings would make it.
    let client = Client::new(ClientConfig::new(
        emulator.base_url(),
        Some(Token::new(TOKEN)),
    ))
    .expect("a client for the emulator");
    let (created, _) = client
        .create_droplet(&json!({
            "name": "web-1",
            "region": "fra1",
            "size": DESIRED_SIZE,
            "image": "docker-20-04",
            "tags": ["e2e", format!("stackctl:{name}")],
        }))
        .await
        .expect("create a droplet out of band");
    let droplet_id = created.id;
    wait_until_active(&emulator, droplet_id).await;

    let before = planned_actions(&stack);
    assert!(
        before.iter().any(|(address, _)| address == "droplet.web-1"),
        "before the import, the plan has the droplet: {before:?}"
    );

    let imported = stack.stackctl(&["import", "droplet.web-1", &droplet_id.to_string()]);
    // Shown with the test's output (on failure, or with --nocapture).
    println!("imported: {}", explain(&imported));
    assert_eq!(imported.code, 0, "import: {}", explain(&imported));

    let after = planned_actions(&stack);
    assert!(
        !after.iter().any(|(address, _)| address == "droplet.web-1"),
        "after the import, the plan does not touch the droplet: {after:?}"
    );
    assert_eq!(emulator.droplets().len(), 1, "the import made nothing");
}

async fn wait_until_active(emulator: &Emulator, droplet_id: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for _ in 0..200 {
        let active = emulator
            .droplets()
            .iter()
            .any(|droplet| droplet["id"] == droplet_id && droplet["status"] == "active");
        if active {
            return;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("droplet {droplet_id} did not become active within 10 s");
}
