//! End to end on a Docker Swarm of three droplet-shaped hosts: the DigitalOcean emulator
//! hands out the addresses of three network namespaces the test builds
//! (`stackctl_host::testing::SwarmHosts`: each its own `eth0` address, sshd on port 22
//! for root and dockerd, and forwarding between them for the swarm's ports), and
//! `[target] swarm` forms the swarm over them. The real `stackctl` binary is driven, as a
//! user would, over SSH to each node.
//!
//! What these tests cover (issue 13, points 4 and 5): forming the swarm (init on the
//! first manager, joins with tokens that never show), node labels, every node's host key
//! pinned, the edge on the first manager, the routed `web` as a Swarm service of two
//! dnsrr replicas spread over the two workers (requests through the edge reach both), a
//! rolling update of it under load with no failed request, drift of a node (labels and
//! availability changed by hand, a daemon stopped — its task missing, then started again
//! elsewhere by `apply` — a worker that left by hand), drift of the routed service (its
//! backend file edited by hand, repaired in place; a hand scale-up, repaired by a switch
//! with no failed request), the run's security report listing each swarm task with its
//! node, a worker leaving stack.toml (drained, then removed) and `destroy`. In the last
//! test a global service made by hand stands for tasks on every node. Point 2 through the
//! binary: an unrouted service's limits, update settings and placement as Swarm holds
//! them, its secret env value as a Swarm secret file no inspect shows, attachable
//! overlays, a service holding a volume pinned to the first manager (by stackctl's node
//! label, whatever the host name) with a data-loss warning when its placement changes, a
//! hand scale and a hand env change as drift, and `destroy` waiting for the task's
//! container before it removes the volume. A `[files]` entry reaches each task as a Swarm
//! config (issue 13, point 2). What `bench/swarm` measures (point 6) runs here too: a full
//! deploy and a one-service update of its stack on a 1-node and a 3-node swarm.
//!
//! Prerequisites, all installed and started by `.ci/run`: root, `iproute2`, `iptables`,
//! `dockerd`, `openssh-server`, `ssh-keygen`, and the FROM scratch test images from
//! `testing/build-images.sh`. Without them these tests fail saying so; they never skip.
//!
//! They talk only to 127.0.0.1 (the emulator) and the namespaces they create; every wait
//! is bounded in count and time.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use stackctl_do_emulator::{Emulator, EmulatorConfig};
use stackctl_host::testing::SwarmHosts;
use stackctl_traefik::checks::{
    run_check, Check, CheckOptions, CheckResult, ResolveOverride, StatusExpectation, TlsTrust,
};

use support::shop::{files_under, run_folders};
use support::{repository, Run, TestEnvironment};

const TOKEN: &str = "dop_v1_e2e_swarm_token_0123456789abcdef01";
const SERVER_IMAGE: &str = "stackctl-test/server:latest";
const TRAEFIK_IMAGE: &str = "stackctl-test/traefik:3.7.15";
const NODES: [&str; 3] = ["web-1", "web-2", "web-3"];

/// Three daemons per test: one test at a time keeps the machine's two cores within the
/// tests' bounds. (A failed test releases it like a passed one.)
static HOSTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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

/// Three droplet hosts named `<prefix>-1..3` on the links `10.210.<first_index + 0..2>`.
/// This file uses 161-169, 181-183, 231-236, 241-243 and 248, 249, 244 (unique among the repository's
/// droplet hosts: `DropletHost::start(`, `start_hosts(` and `start_hosts_on(` name the
/// others).
fn start_hosts(prefix: &str, first_index: u8) -> SwarmHosts {
    start_hosts_on(prefix, [first_index, first_index + 1, first_index + 2])
}

/// Three droplet hosts named `<prefix>-1..3` on the links `10.210.<index>`.
fn start_hosts_on(prefix: &str, indexes: [u8; 3]) -> SwarmHosts {
    let names: Vec<String> = (1..=3).map(|number| format!("{prefix}-{number}")).collect();
    let hosts: Vec<(&str, u8)> = names
        .iter()
        .zip(indexes)
        .map(|(name, index)| (name.as_str(), index))
        .collect();
    SwarmHosts::start(&hosts).unwrap_or_else(|error| {
        panic!("the swarm's hosts did not start: {error}. .ci/run installs iproute2, iptables, docker.io and openssh-server")
    })
}

async fn start_emulator(hosts: &SwarmHosts) -> Emulator {
    Emulator::start(EmulatorConfig {
        token: TOKEN.to_string(),
        public_ipv4_by_name: NODES
            .iter()
            .zip(&hosts.hosts)
            .map(|(node, host)| (node.to_string(), host.address.to_string()))
            .collect(),
        activation_delay: Duration::from_millis(150),
        action_delay: Duration::from_millis(50),
        ..EmulatorConfig::default()
    })
    .await
    .expect("the emulator starts on 127.0.0.1")
}

fn stackctl(environment: &TestEnvironment, emulator: &Emulator, arguments: &[&str]) -> Run {
    environment.run_with_env(
        arguments,
        &[
            ("DIGITALOCEAN_API_URL", emulator.base_url().as_str()),
            ("DIGITALOCEAN_TOKEN", TOKEN),
            ("STACKCTL_DO_POLL_INTERVAL_MS", "50"),
            ("STACKCTL_DO_READY_TIMEOUT_SECONDS", "60"),
        ],
    )
}

fn explain(run: &Run) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        run.code, run.stdout, run.stderr
    )
}

/// A stack on a swarm of `web-1` (manager), `web-2` and `web-3` (workers, unless
/// `workers` says otherwise), with labels on the workers; `extra` is appended (the edge
/// and a service).
fn write_stack(
    environment: &TestEnvironment,
    hosts: &SwarmHosts,
    name: &str,
    workers: &[&str],
    extra: &str,
) {
    // Labels only for the workers listed (validation refuses others).
    let labels: String = workers
        .iter()
        .map(|worker| {
            let zone = if *worker == "web-2" { "a" } else { "b" };
            format!("\n[target.swarm.labels.{worker}]\nzone = \"{zone}\"\n")
        })
        .collect();
    let workers = workers
        .iter()
        .map(|worker| format!("\"{worker}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let droplets: String = NODES
        .iter()
        .map(|node| {
            format!(
                "\n[droplets.{node}]\nregion = \"fra1\"\nsize = \"s-1vcpu-2gb\"\nimage = \"docker-20-04\"\nssh_keys = [\"deploy\"]\n"
            )
        })
        .collect();
    environment.write(
        "stack.toml",
        &format!(
            r#"[stack]
name = "{name}"

[target]
identity_file = "{identity}"
known_hosts = "{known_hosts}"
root = "{root}"

[target.swarm]
managers = ["web-1"]
workers = [{workers}]
{labels}{droplets}
[ssh_keys.deploy]
public_key_file = "{identity}.pub"
{extra}"#,
            identity = hosts.client_key.display(),
            known_hosts = hosts.known_hosts.display(),
            root = environment.path().join("manager-files").display(),
        ),
    );
}

/// `docker node ls` on the manager: (hostname, status, availability, manager status).
fn node_list(hosts: &SwarmHosts, manager: &str) -> Vec<(String, String, String, String)> {
    let listed = hosts
        .host(manager)
        .docker(&[
            "node",
            "ls",
            "--format",
            "{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}",
        ])
        .unwrap_or_else(|error| panic!("{error}"));
    let mut nodes: Vec<_> = listed
        .lines()
        .map(|line| {
            let parts: Vec<&str> = line.split('\t').collect();
            (
                parts[0].to_string(),
                parts.get(1).unwrap_or(&"").to_string(),
                parts.get(2).unwrap_or(&"").to_string(),
                parts.get(3).unwrap_or(&"").to_string(),
            )
        })
        .collect();
    nodes.sort();
    nodes
}

/// Waits (bounded) until the manager lists `hostname` with `status`.
fn wait_for_node_status(hosts: &SwarmHosts, manager: &str, hostname: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let nodes = node_list(hosts, manager);
        if nodes
            .iter()
            .any(|node| node.0 == hostname && node.1 == status)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the manager did not list {hostname} as {status} within 90 s: {nodes:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn node_labels(hosts: &SwarmHosts, manager: &str, hostname: &str) -> String {
    hosts
        .host(manager)
        .docker(&[
            "node",
            "inspect",
            hostname,
            "--format",
            "{{json .Spec.Labels}}",
        ])
        .unwrap_or_else(|error| panic!("{error}"))
}

/// The edge on the first manager and `web`, the routed test server: two dnsrr replicas
/// on the workers, spread over their `zone` label (web-2 is `a`, web-3 `b`), so one runs
/// on each. `version` is what every answer echoes as `env`.
fn routed_web(name: &str, version: &str) -> String {
    format!(
        r#"
[edge]
image = "{TRAEFIK_IMAGE}"
pull = false
http_port = 80
https_port = 443
admin_port = 8081

[services.web]
image = "{SERVER_IMAGE}"
pull = false
port = 8080
env = {{ NAME = "web", ECHO_ENV = "{version}" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}
networks = ["edge"]
read_only = true
replicas = 2
endpoint_mode = "dnsrr"
placement = {{ constraints = ["node.role == worker"], preferences = [{{ spread = "node.labels.zone" }}] }}

[routes.web]
host = "{name}.test"
service = "web"
"#
    )
}

/// The name of the stack's one swarm service as the manager lists it (a routed service
/// switched to its successor carries a suffix).
fn live_service_name(hosts: &SwarmHosts, manager: &str, stack: &str) -> String {
    let listed = hosts
        .host(manager)
        .docker(&[
            "service",
            "ls",
            "--filter",
            &format!("label=stackctl.stack={stack}"),
            "--format",
            "{{.Name}}",
        ])
        .unwrap_or_else(|error| panic!("{error}"));
    let names: Vec<&str> = listed.lines().collect();
    assert_eq!(names.len(), 1, "one swarm service of {stack}: {listed}");
    names[0].to_string()
}

/// The nodes (host names, sorted) where the manager says `service`'s tasks run now:
/// meant to run, and running.
fn running_task_nodes(hosts: &SwarmHosts, manager: &str, service: &str) -> Vec<String> {
    let listed = hosts
        .host(manager)
        .docker(&[
            "service",
            "ps",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Node}}\t{{.CurrentState}}",
            service,
        ])
        .unwrap_or_else(|error| panic!("{error}"));
    let mut nodes: Vec<String> = listed
        .lines()
        .filter(|line| line.contains("\tRunning"))
        .map(|line| line.split('\t').next().unwrap_or("").to_string())
        .collect();
    nodes.sort();
    nodes
}

/// The running containers of `service`'s tasks on every host whose daemon answers:
/// container id (the server's `HOSTNAME`) → host name.
fn task_containers(hosts: &SwarmHosts, service: &str) -> BTreeMap<String, String> {
    let mut containers = BTreeMap::new();
    for host in &hosts.hosts {
        let Ok(listed) = host.docker(&[
            "ps",
            "--filter",
            &format!("label=com.docker.swarm.service.name={service}"),
            "--format",
            "{{.ID}}",
        ]) else {
            continue;
        };
        for id in listed.lines() {
            containers.insert(id.to_string(), host.name.clone());
        }
    }
    containers
}

/// Asserts that no host's daemon is in a swarm any more.
fn assert_no_host_in_a_swarm(hosts: &SwarmHosts) {
    for host in &hosts.hosts {
        let state = host
            .docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"])
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(state, "inactive", "{} is in no swarm", host.name);
    }
}

/// One request through the edge: to the first manager's address, whatever the URL's name.
async fn through_edge(hosts: &SwarmHosts, url: &str) -> CheckResult {
    let check = Check::get("probe", url, 200).expecting(StatusExpectation::Any);
    let options = CheckOptions {
        resolve: vec![ResolveOverride::all_to(hosts.hosts[0].address.into())],
        tls: TlsTrust::AcceptUntrusted,
        timeout: Duration::from_secs(5),
        ..CheckOptions::default()
    };
    run_check(&check, &options).await
}

/// The `HOSTNAME`s (task container ids) that answer `https://<stack>.test/env/HOSTNAME`
/// through the edge over 20 requests; every request must succeed.
async fn served_hostnames(hosts: &SwarmHosts, stack: &str) -> BTreeSet<String> {
    let mut served = BTreeSet::new();
    for _ in 0..20 {
        let answer = through_edge(hosts, &format!("https://{stack}.test/env/HOSTNAME")).await;
        assert_eq!(
            answer.status,
            Some(200),
            "through the edge: {:?} {}",
            answer.failures,
            answer.body_excerpt
        );
        let body: serde_json::Value = serde_json::from_str(&answer.body_excerpt)
            .unwrap_or_else(|error| panic!("{error}: {}", answer.body_excerpt));
        served.insert(body["value"].as_str().unwrap_or("").to_string());
    }
    served
}

/// Asserts that the edge sends requests to every running task of the stack's service, and
/// only to them (Traefik round-robins over the backend file's servers).
async fn assert_edge_reaches_every_task(hosts: &SwarmHosts, stack: &str, service: &str) {
    let containers = task_containers(hosts, service);
    let expected: BTreeSet<String> = containers.keys().cloned().collect();
    let served = served_hostnames(hosts, stack).await;
    assert_eq!(
        served, expected,
        "requests through the edge reach each task (containers: {containers:?})"
    );
}

/// What the load generator saw: requests sent, and each failure.
struct Load {
    sent: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<Option<String>>>,
}

impl Load {
    /// Four clients GET `https://<stack>.test/` through the edge every 50 ms, each for
    /// at most 5 minutes.
    fn start(hosts: &SwarmHosts, stack: &str) -> Load {
        let sent = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let address = hosts.hosts[0].address;
        let url = format!("https://{stack}.test/");
        let clients = (0..4)
            .map(|_| {
                let (sent, failures, stop, url) =
                    (sent.clone(), failures.clone(), stop.clone(), url.clone());
                tokio::spawn(async move {
                    let started = Instant::now();
                    let check = Check::get("load", &url, 200).expecting(StatusExpectation::Any);
                    let options = CheckOptions {
                        resolve: vec![ResolveOverride::all_to(address.into())],
                        tls: TlsTrust::AcceptUntrusted,
                        timeout: Duration::from_secs(5),
                        ..CheckOptions::default()
                    };
                    let mut last_body = None;
                    while !stop.load(Ordering::Relaxed)
                        && started.elapsed() < Duration::from_secs(300)
                    {
                        let result = run_check(&check, &options).await;
                        sent.fetch_add(1, Ordering::Relaxed);
                        if result.status == Some(200) {
                            last_body = Some(result.body_excerpt);
                        } else {
                            failures.lock().unwrap().push(format!(
                                "{:?} {:?} {}",
                                result.status, result.failures, result.body_excerpt
                            ));
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    last_body
                })
            })
            .collect();
        Load {
            sent,
            failures,
            stop,
            clients,
        }
    }

    /// Stops the clients; returns how many requests were sent, the failures, and the last
    /// answer each client had.
    async fn finish(self) -> (usize, Vec<String>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut last = Vec::new();
        for client in self.clients {
            if let Some(body) = client.await.expect("a load client") {
                last.push(body);
            }
        }
        let failures = self.failures.lock().unwrap().clone();
        (self.sent.load(Ordering::Relaxed), failures, last)
    }
}

/// Runs the real binary off the async runtime (the load clients keep running meanwhile).
async fn stackctl_in_background(
    environment: &TestEnvironment,
    emulator: &Emulator,
    arguments: &[&str],
) -> Run {
    let mut command = environment.command(arguments);
    for (name, value) in [
        ("DIGITALOCEAN_API_URL", emulator.base_url().to_string()),
        ("DIGITALOCEAN_TOKEN", TOKEN.to_string()),
        ("STACKCTL_DO_POLL_INTERVAL_MS", "50".to_string()),
        ("STACKCTL_DO_READY_TIMEOUT_SECONDS", "60".to_string()),
    ] {
        command.env(name, value);
    }
    let output = tokio::task::spawn_blocking(move || command.output().expect("run stackctl"))
        .await
        .expect("the stackctl thread");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_apply_forms_a_three_node_swarm_and_serves_two_replicas_spread_over_two_nodes() {
    let _guard = HOSTS.lock().await;
    build_images();
    let name = "e2e-swarm-form";
    let hosts = start_hosts("swa", 231);
    // The edge runs on the first manager, the service's tasks on the workers: each node
    // runs what Swarm gives it from its own images (no registry).
    hosts
        .load_images(&[SERVER_IMAGE, TRAEFIK_IMAGE])
        .unwrap_or_else(|error| panic!("{error}"));
    let emulator = start_emulator(&hosts).await;
    let environment = TestEnvironment::new();
    write_stack(
        &environment,
        &hosts,
        name,
        &["web-2", "web-3"],
        &routed_web(name, "v1"),
    );

    let plan = stackctl(&environment, &emulator, &["plan"]);
    assert_eq!(plan.code, 0, "the first plan: {}", explain(&plan));
    for address in [
        "swarm.cluster",
        "swarm_node.web-1",
        "swarm_node.web-2",
        "swarm_node.web-3",
        "swarm_service.web",
    ] {
        assert!(
            plan.stdout.contains(address),
            "the plan creates {address}: {}",
            explain(&plan)
        );
    }
    assert!(
        plan.stdout.contains("replicas") && plan.stdout.contains("node.labels.zone"),
        "the plan shows the replicas and their placement: {}",
        explain(&plan)
    );

    let applied = stackctl(
        &environment,
        &emulator,
        &["apply", "--yes", "--accept-new-host-key"],
    );
    println!("apply: {}", explain(&applied));
    assert_eq!(
        applied.code,
        0,
        "the first apply: {}\n{}",
        explain(&applied),
        hosts.logs()
    );

    // Three nodes, all ready and active; web-1 leads; the workers carry their labels.
    let nodes = node_list(&hosts, "swa-1");
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    for (index, node) in nodes.iter().enumerate() {
        assert_eq!(node.0, format!("swa-{}", index + 1), "{nodes:?}");
        assert_eq!(
            (node.1.as_str(), node.2.as_str()),
            ("Ready", "Active"),
            "{nodes:?}"
        );
    }
    assert_eq!(nodes[0].3, "Leader", "{nodes:?}");
    assert_eq!(nodes[1].3, "", "web-2 is a worker: {nodes:?}");
    assert_eq!(
        node_labels(&hosts, "swa-1", "swa-2"),
        r#"{"stackctl.node":"web-2","zone":"a"}"#,
        "stack.toml's labels, and stackctl's own node name"
    );
    assert_eq!(
        node_labels(&hosts, "swa-1", "swa-3"),
        r#"{"stackctl.node":"web-3","zone":"b"}"#,
        "stack.toml's labels, and stackctl's own node name"
    );

    // `web` is a Swarm service of two dnsrr replicas, one on each worker (spread over the
    // zones), none on the manager, which runs the edge.
    let service = live_service_name(&hosts, "swa-1", name);
    assert_eq!(service, format!("{name}-web"));
    let mode = hosts.hosts[0]
        .docker(&[
            "service",
            "inspect",
            "--format",
            "{{.Spec.Mode.Replicated.Replicas}} {{.Spec.EndpointSpec.Mode}}",
            &service,
        ])
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(mode, "2 dnsrr");
    assert_eq!(
        running_task_nodes(&hosts, "swa-1", &service),
        ["swa-2", "swa-3"],
        "two tasks, on two different nodes: {}",
        hosts.hosts[0]
            .docker(&["service", "ps", "--no-trunc", &service])
            .unwrap_or_else(|error| error)
    );
    let edge = hosts.hosts[0]
        .docker(&[
            "ps",
            "--filter",
            &format!("name=^{name}-edge$"),
            "--format",
            "{{.Names}}",
        ])
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(edge, format!("{name}-edge"), "the edge runs on the manager");
    let containers = task_containers(&hosts, &service);
    assert_eq!(
        containers.values().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from(["swa-2".to_string(), "swa-3".to_string()]),
        "{containers:?}"
    );
    // Through the edge on the manager, over the overlay network, both tasks answer.
    assert_edge_reaches_every_task(&hosts, name, &service).await;

    // The run's security report lists the swarm service as the manager shows it: each
    // running task with its node and container, and the policy checked against the live
    // spec (Engine API 1.41 has no `no-new-privileges` for a service: a finding).
    let run = run_folders(environment.path())
        .last()
        .cloned()
        .expect("the apply's run folder");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("security.json")).expect("security.json"),
    )
    .expect("security.json is JSON");
    let web = report["swarm_services"]
        .as_array()
        .and_then(|services| {
            services
                .iter()
                .find(|entry| entry["resource"] == "swarm_service.web")
        })
        .unwrap_or_else(|| panic!("the report lists swarm_service.web: {report:#}"));
    assert_eq!(web["name"], service.as_str(), "{web:#}");
    assert_eq!(web["read_only_root"], true, "{web:#}");
    assert_eq!(web["replicas"], 2, "{web:#}");
    // Who the tasks run as is known: the spec's user, or the image's USER read on the
    // first manager (where the image is loaded).
    assert!(
        web["runs_as_root"].is_boolean()
            && !web["user"]
                .as_str()
                .unwrap_or("unknown")
                .starts_with("unknown"),
        "{web:#}"
    );
    let mut task_nodes: Vec<&str> = web["tasks"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|task| task["node"].as_str())
        .collect();
    task_nodes.sort();
    assert_eq!(task_nodes, ["swa-2", "swa-3"], "{web:#}");
    for task in web["tasks"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let container = task["container"].as_str().unwrap_or("");
        assert!(
            containers
                .keys()
                .any(|short| !short.is_empty() && container.starts_with(short.as_str())),
            "task {task} runs one of {containers:?}"
        );
    }
    assert!(
        report["findings"]
            .as_array()
            .is_some_and(|findings| findings
                .iter()
                .any(|finding| finding["container"] == service.as_str()
                    && finding["code"] == "policy-new-privileges")),
        "{report:#}"
    );
    let text = std::fs::read_to_string(run.join("security.txt")).expect("security.txt");
    assert!(text.contains("Swarm services"), "{text}");

    // Every node's SSH host key is pinned in state, as a single droplet's is.
    let state: serde_json::Value =
        serde_json::from_str(&environment.read(&format!("state/{name}.json")))
            .expect("the state file is JSON");
    for (node, host) in NODES.iter().zip(&hosts.hosts) {
        assert_eq!(
            state["host_keys"][format!("droplet.{node}")],
            host.host_key_fingerprint.as_str(),
            "{:#}",
            state["host_keys"]
        );
    }

    // Nothing left to do.
    let again = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "a second plan is empty: {}", explain(&again));

    // Labels and availability changed by hand show as drift, and apply puts them back.
    hosts.hosts[0]
        .docker(&[
            "node",
            "update",
            "--label-add",
            "zone=x",
            "--availability",
            "pause",
            "swa-2",
        ])
        .unwrap_or_else(|error| panic!("{error}"));
    let drift = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    assert_eq!(drift.code, 2, "the hand edits show: {}", explain(&drift));
    assert!(
        drift.stdout.contains("swarm_node.web-2")
            && drift.stdout.contains("availability")
            && drift.stdout.contains("labels"),
        "{}",
        explain(&drift)
    );
    let repaired = stackctl(&environment, &emulator, &["apply", "--yes"]);
    assert_eq!(repaired.code, 0, "the repair: {}", explain(&repaired));
    assert_eq!(
        node_labels(&hosts, "swa-1", "swa-2"),
        r#"{"stackctl.node":"web-2","zone":"a"}"#,
        "stack.toml's labels, and stackctl's own node name"
    );
    let nodes = node_list(&hosts, "swa-1");
    assert_eq!(nodes[1].2, "Active", "{nodes:?}");
    let settled = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    assert_eq!(settled.code, 0, "repaired: {}", explain(&settled));

    // The edge's backend file edited by hand on the manager (its tasks' port swapped for
    // one nothing listens on) is drift, shown as a diff; apply writes it again for the
    // tasks running now, in place: the service and its tasks stay as they are.
    let backend_path = "manager-files/traefik/dynamic/backend-web.yml";
    let written = environment.read(backend_path);
    assert!(written.contains(":8080"), "{written}");
    environment.write(backend_path, &written.replace(":8080", ":9999"));
    let edited = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    println!("plan of a hand-edited backend file: {}", explain(&edited));
    assert_eq!(edited.code, 2, "the hand edit shows: {}", explain(&edited));
    let drifted = stackctl(&environment, &emulator, &["drift"]);
    assert_eq!(drifted.code, 2, "drift finds it: {}", explain(&drifted));
    assert!(
        drifted.stdout.contains("backend_file") && drifted.stdout.contains(":9999"),
        "{}",
        explain(&drifted)
    );
    let edited_lines: Vec<&str> = edited.stdout.lines().map(str::trim_start).collect();
    assert!(
        edited.stdout.contains("swarm_service.web")
            && edited.stdout.contains("backend_file")
            && edited_lines
                .iter()
                .any(|line| line.starts_with('-') && line.contains(":9999"))
            && edited_lines
                .iter()
                .any(|line| line.starts_with('+') && line.contains(":8080")),
        "the plan shows the edit line by line: {}",
        explain(&edited)
    );
    let rewritten = stackctl(&environment, &emulator, &["apply", "--yes"]);
    assert_eq!(rewritten.code, 0, "the repair: {}", explain(&rewritten));
    assert_eq!(environment.read(backend_path), written);
    assert_eq!(
        live_service_name(&hosts, "swa-1", name),
        service,
        "the file alone was repaired: no successor service"
    );
    assert_edge_reaches_every_task(&hosts, name, &service).await;
    let repaired_file = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        repaired_file.code,
        0,
        "the file repaired: {}",
        explain(&repaired_file)
    );

    // The join tokens never left the daemons: not in any output, state, run folder or
    // file stackctl wrote.
    let mut tokens = Vec::new();
    for role in ["worker", "manager"] {
        let token = hosts.hosts[0]
            .docker(&["swarm", "join-token", "-q", role])
            .unwrap_or_else(|error| panic!("{error}"));
        assert!(token.starts_with("SWMTKN-"), "{token}");
        tokens.push(token);
    }
    let outputs = [
        &plan,
        &applied,
        &again,
        &drift,
        &repaired,
        &settled,
        &edited,
        &drifted,
        &rewritten,
        &repaired_file,
    ];
    for token in &tokens {
        // The secret part of a token is its last field.
        let secret = token.rsplit('-').next().unwrap_or(token);
        for run in outputs {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "a join token was printed"
            );
        }
        for (path, text) in files_under(environment.path()) {
            assert!(
                !text.contains(secret),
                "a join token was written to {}",
                path.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_of_the_routed_service_under_load_has_no_failed_request() {
    let _guard = HOSTS.lock().await;
    build_images();
    let name = "e2e-swarm-roll";
    // The first test's links, free again: one test holds hosts at a time.
    let hosts = start_hosts("swd", 231);
    hosts
        .load_images(&[SERVER_IMAGE, TRAEFIK_IMAGE])
        .unwrap_or_else(|error| panic!("{error}"));
    let emulator = start_emulator(&hosts).await;
    let environment = TestEnvironment::new();
    write_stack(
        &environment,
        &hosts,
        name,
        &["web-2", "web-3"],
        &routed_web(name, "v1"),
    );
    let applied = stackctl(
        &environment,
        &emulator,
        &["apply", "--yes", "--accept-new-host-key"],
    );
    assert_eq!(
        applied.code,
        0,
        "the first apply: {}\n{}",
        explain(&applied),
        hosts.logs()
    );
    let first = live_service_name(&hosts, "swd-1", name);
    let v1 = through_edge(&hosts, &format!("https://{name}.test/")).await;
    assert!(v1.body_excerpt.contains(r#""env":"v1""#), "{v1:?}");

    // The service's env changes: the plan says so, and apply runs while four clients
    // send requests through the edge.
    write_stack(
        &environment,
        &hosts,
        name,
        &["web-2", "web-3"],
        &routed_web(name, "v2"),
    );
    let plan = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", explain(&plan));
    assert!(
        plan.stdout.contains("swarm_service.web") && plan.stdout.contains("ECHO_ENV"),
        "{}",
        explain(&plan)
    );
    // The edge's servers are stackctl's to find once the new tasks run, not a change.
    assert!(
        !plan.stdout.contains("backend_servers"),
        "{}",
        explain(&plan)
    );
    let load = Load::start(&hosts, name);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let updated = stackctl_in_background(&environment, &emulator, &["apply", "--yes"]).await;
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (sent, failures, last) = load.finish().await;
    println!(
        "update in {took:.2?} under load: {sent} requests, {} failed\n{}",
        failures.len(),
        explain(&updated)
    );
    assert_eq!(
        updated.code,
        0,
        "the update: {}\n{}",
        explain(&updated),
        hosts.logs()
    );
    assert!(sent > 40, "the load ran: {sent} requests");
    assert_eq!(
        failures,
        Vec::<String>::new(),
        "no request failed during the update ({sent} sent)"
    );
    assert!(
        !last.is_empty() && last.iter().all(|body| body.contains(r#""env":"v2""#)),
        "the new version serves at the end: {last:?}"
    );

    // The successor runs two tasks spread as before, the old service is gone, and the
    // edge sends requests to the new tasks only.
    let successor = live_service_name(&hosts, "swd-1", name);
    assert_ne!(successor, first, "a successor service took over");
    assert_eq!(
        running_task_nodes(&hosts, "swd-1", &successor),
        ["swd-2", "swd-3"]
    );
    assert_edge_reaches_every_task(&hosts, name, &successor).await;
    for _ in 0..5 {
        let answer = through_edge(&hosts, &format!("https://{name}.test/")).await;
        assert!(answer.body_excerpt.contains(r#""env":"v2""#), "{answer:?}");
    }
    let settled = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    assert_eq!(settled.code, 0, "nothing left to do: {}", explain(&settled));

    // Scaled up by hand: stack.toml and state agree on 2 replicas, the live service runs
    // 3. Going back to 2 would stop a task, so the choice is made from what the refresh
    // read: a switch to another successor (never the serving one's name), under load.
    hosts
        .host("swd-1")
        .docker(&[
            "service",
            "scale",
            "--detach=false",
            &format!("{successor}=3"),
        ])
        .unwrap_or_else(|error| panic!("{error}"));
    let scaled = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    assert_eq!(scaled.code, 2, "the hand scale shows: {}", explain(&scaled));
    assert!(
        scaled
            .stdout
            .lines()
            .any(|line| line.contains("replicas") && line.contains("3") && line.contains("2")),
        "{}",
        explain(&scaled)
    );
    let load = Load::start(&hosts, name);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let repaired = stackctl_in_background(&environment, &emulator, &["apply", "--yes"]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (sent, failures, _) = load.finish().await;
    println!(
        "repair of a hand scale under load: {sent} requests, {} failed\n{}",
        failures.len(),
        explain(&repaired)
    );
    assert_eq!(repaired.code, 0, "the repair: {}", explain(&repaired));
    assert_eq!(
        failures,
        Vec::<String>::new(),
        "no request failed during the repair ({sent} sent)"
    );
    let third = live_service_name(&hosts, "swd-1", name);
    assert_ne!(third, successor, "another successor took over");
    assert_eq!(
        running_task_nodes(&hosts, "swd-1", &third),
        ["swd-2", "swd-3"]
    );
    assert_edge_reaches_every_task(&hosts, name, &third).await;
    let after_repair = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        after_repair.code,
        0,
        "nothing left to do: {}",
        explain(&after_repair)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_dockerd_stopped_shows_in_the_plan_and_apply_reschedules() {
    let _guard = HOSTS.lock().await;
    build_images();
    let name = "e2e-swarm-down";
    let mut hosts = start_hosts("swb", 241);
    hosts
        .load_images(&[SERVER_IMAGE, TRAEFIK_IMAGE])
        .unwrap_or_else(|error| panic!("{error}"));
    let emulator = start_emulator(&hosts).await;
    let environment = TestEnvironment::new();
    write_stack(
        &environment,
        &hosts,
        name,
        &["web-2", "web-3"],
        &routed_web(name, "v1"),
    );
    let applied = stackctl(
        &environment,
        &emulator,
        &["apply", "--yes", "--accept-new-host-key"],
    );
    assert_eq!(
        applied.code,
        0,
        "the first apply: {}\n{}",
        explain(&applied),
        hosts.logs()
    );
    let service = live_service_name(&hosts, "swb-1", name);
    assert_eq!(
        running_task_nodes(&hosts, "swb-1", &service),
        ["swb-2", "swb-3"],
        "a replica runs on web-3"
    );

    // web-3's daemon stops: the manager lists it down, and the plan says so, and that
    // `web` misses the task that ran there (Swarm restarts it elsewhere only after its
    // restart delay, 5 s by default, and the task's start).
    hosts
        .host_mut("swb-3")
        .stop_docker_daemon()
        .unwrap_or_else(|error| panic!("{error}"));
    wait_for_node_status(&hosts, "swb-1", "swb-3", "Down");
    let plan = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    println!("plan with a node down: {}", explain(&plan));
    assert_eq!(plan.code, 2, "the node down shows: {}", explain(&plan));
    assert!(
        plan.stdout.contains("swarm_node.web-3") && plan.stdout.contains("\"down\""),
        "the plan says web-3 is down: {}",
        explain(&plan)
    );
    assert!(
        plan.stdout.contains("swarm_service.web") && plan.stdout.contains("running_replicas"),
        "the plan says a task of web is missing: {}",
        explain(&plan)
    );
    // The edge's servers change: to addresses Swarm gives the new task, not back to the
    // recorded ones.
    assert!(
        plan.stdout
            .lines()
            .any(|line| line.contains("backend_servers") && line.contains("(known after apply)")),
        "{}",
        explain(&plan)
    );
    let drift = stackctl(&environment, &emulator, &["drift"]);
    assert_eq!(drift.code, 2, "drift sees it: {}", explain(&drift));
    assert!(
        drift.stdout.contains("swarm_node.web-3"),
        "{}",
        explain(&drift)
    );

    // apply cannot start a daemon on another machine, and says what to do; the service's
    // repair goes on beside it: it returns once Swarm runs both replicas on the nodes
    // left, and the edge is given the new task's address.
    let failed = stackctl(&environment, &emulator, &["apply", "--yes"]);
    println!("apply with a node down: {}", explain(&failed));
    assert_eq!(failed.code, 1, "{}", explain(&failed));
    let words = format!("{}{}", failed.stdout, failed.stderr);
    assert!(
        words.contains("cannot start a daemon on another machine")
            && words.contains("systemctl start docker")
            && words.contains(&hosts.host("swb-3").address.to_string()),
        "the failure says what to do: {}",
        explain(&failed)
    );
    assert_eq!(
        running_task_nodes(&hosts, "swb-1", &service),
        ["swb-2", "swb-2"],
        "both replicas run on the worker left: {}",
        hosts.hosts[0]
            .docker(&["service", "ps", "--no-trunc", &service])
            .unwrap_or_else(|error| error)
    );
    assert_edge_reaches_every_task(&hosts, name, &service).await;
    let backend = environment.read("manager-files/traefik/dynamic/backend-web.yml");
    let addresses: Vec<String> = task_containers(&hosts, &service)
        .keys()
        .map(|container| {
            hosts
                .host("swb-2")
                .docker(&[
                    "inspect",
                    "--format",
                    &format!("{{{{(index .NetworkSettings.Networks \"{name}_edge\").IPAddress}}}}"),
                    container,
                ])
                .unwrap_or_else(|error| panic!("{error}"))
        })
        .collect();
    assert_eq!(addresses.len(), 2, "{addresses:?}");
    for address in &addresses {
        assert!(
            backend.contains(&format!("http://{address}:8080")),
            "the backend file lists {address}: {backend}"
        );
    }
    let after = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    assert_eq!(after.code, 2, "{}", explain(&after));
    assert!(
        !after.stdout.contains("swarm_service.web"),
        "only the node is left to repair: {}",
        explain(&after)
    );

    // Its daemon back, the node rejoins by itself and the plan is empty again (Swarm
    // does not move running tasks back: both stay on web-2).
    hosts
        .host_mut("swb-3")
        .start_docker_daemon()
        .unwrap_or_else(|error| panic!("{error}"));
    wait_for_node_status(&hosts, "swb-1", "swb-3", "Ready");
    let converged = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    assert_eq!(converged.code, 0, "converged: {}", explain(&converged));

    // A worker that left the swarm by hand is gone from the plan's view (its own daemon
    // says so); apply joins it again and removes the entry the manager kept. web-3, whose
    // task Swarm started on web-2: no task of `web` moves, the plan is the node alone.
    hosts
        .host("swb-3")
        .docker(&["swarm", "leave"])
        .unwrap_or_else(|error| panic!("{error}"));
    let left = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    println!("plan after web-3 left: {}", explain(&left));
    assert_eq!(left.code, 2, "{}", explain(&left));
    assert!(
        left.stdout.contains("swarm_node.web-3  create"),
        "web-3 joins again: {}",
        explain(&left)
    );
    let rejoined = stackctl(&environment, &emulator, &["apply", "--yes"]);
    assert_eq!(rejoined.code, 0, "{}", explain(&rejoined));
    let nodes = node_list(&hosts, "swb-1");
    assert_eq!(
        nodes
            .iter()
            .map(|node| (node.0.as_str(), node.1.as_str()))
            .collect::<Vec<_>>(),
        [("swb-1", "Ready"), ("swb-2", "Ready"), ("swb-3", "Ready")],
        "one entry per node, the stale one removed: {nodes:?}"
    );
    assert_eq!(
        node_labels(&hosts, "swb-1", "swb-3"),
        r#"{"stackctl.node":"web-3","zone":"b"}"#,
        "stack.toml's labels, and stackctl's own node name"
    );
    let settled = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    assert_eq!(settled.code, 0, "settled: {}", explain(&settled));
    assert_edge_reaches_every_task(&hosts, name, &service).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_removed_from_stack_toml_is_drained_then_removed() {
    let _guard = HOSTS.lock().await;
    build_images();
    let name = "e2e-swarm-leave";
    let hosts = start_hosts("swc", 234);
    hosts
        .load_images(&[SERVER_IMAGE])
        .unwrap_or_else(|error| panic!("{error}"));
    let emulator = start_emulator(&hosts).await;
    let environment = TestEnvironment::new();
    write_stack(&environment, &hosts, name, &["web-2", "web-3"], "");
    let applied = stackctl(
        &environment,
        &emulator,
        &["apply", "--yes", "--accept-new-host-key"],
    );
    assert_eq!(
        applied.code,
        0,
        "the first apply: {}\n{}",
        explain(&applied),
        hosts.logs()
    );

    // A global service made by hand puts a task on every node (this stack has none of
    // its own, so the plan names a service stackctl does not manage, as it would any):
    // web-3's must move away before it leaves. By image id, which no node tries to pull
    // from a registry first.
    let image_id = hosts.hosts[0]
        .docker(&["image", "inspect", "--format", "{{.Id}}", SERVER_IMAGE])
        .unwrap_or_else(|error| panic!("{error}"));
    hosts.hosts[0]
        .docker(&[
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--name",
            "hand-made",
            "--mode",
            "global",
            "--endpoint-mode",
            "dnsrr",
            &image_id,
        ])
        .unwrap_or_else(|error| panic!("{error}"));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let tasks = hosts.hosts[0]
            .docker(&[
                "service",
                "ps",
                "hand-made",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.Node}} {{.CurrentState}} {{.Error}}",
            ])
            .unwrap_or_else(|error| panic!("{error}"));
        if tasks
            .lines()
            .filter(|line| line.contains("Running"))
            .count()
            == 3
        {
            break;
        }
        if Instant::now() > deadline {
            let every = hosts.hosts[0].docker(&["service", "ps", "--no-trunc", "hand-made"]);
            panic!(
                "the global service runs on every node: {tasks}\n{every:?}\n{:?}\n{}",
                node_list(&hosts, "swc-1"),
                hosts.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }

    // web-3 leaves stack.toml (its droplet stays): the plan removes the node and names
    // the service whose task moves.
    write_stack(&environment, &hosts, name, &["web-2"], "");
    let plan = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    println!("plan without web-3: {}", explain(&plan));
    assert_eq!(plan.code, 2, "{}", explain(&plan));
    assert!(
        plan.stdout.contains("swarm_node.web-3") && plan.stdout.contains("hand-made"),
        "the plan removes web-3 and says what runs there: {}",
        explain(&plan)
    );
    assert!(
        !plan.stdout.contains("droplet.web-3"),
        "the droplet stays: {}",
        explain(&plan)
    );

    let removed = stackctl(&environment, &emulator, &["apply", "--yes"]);
    println!("apply without web-3: {}", explain(&removed));
    assert_eq!(removed.code, 0, "{}", explain(&removed));
    let nodes = node_list(&hosts, "swc-1");
    assert_eq!(
        nodes.iter().map(|node| node.0.as_str()).collect::<Vec<_>>(),
        ["swc-1", "swc-2"],
        "web-3 is no longer a node: {nodes:?}"
    );
    let state = hosts
        .host("swc-3")
        .docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"])
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(state, "inactive", "web-3 left the swarm itself");
    // Drained first: its task was shut down by the swarm (desired state `Shutdown`),
    // not lost with a node that vanished.
    let history = hosts.hosts[0]
        .docker(&[
            "service",
            "ps",
            "hand-made",
            "--format",
            "{{.Node}} {{.DesiredState}}",
        ])
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(
        !history
            .lines()
            .any(|line| line.ends_with("Running") && line.contains("swc-3")),
        "no task of web-3 is meant to run: {history}"
    );
    let settled = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    assert_eq!(settled.code, 0, "nothing left to do: {}", explain(&settled));

    hosts.hosts[0]
        .docker(&["service", "rm", "hand-made"])
        .unwrap_or_else(|error| panic!("{error}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    for host in &hosts.hosts {
        loop {
            let containers = host
                .docker(&[
                    "ps",
                    "-a",
                    "-q",
                    "--filter",
                    "label=com.docker.swarm.service.name=hand-made",
                ])
                .unwrap_or_else(|error| panic!("{error}"));
            if containers.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the hand-made service's containers are gone from {}",
                host.name
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    // Destroy: the workers are drained and leave, the swarm is dissolved on the manager,
    // the droplets go.
    let destroyed = stackctl(
        &environment,
        &emulator,
        &["destroy", "--yes", "--allow-data-loss"],
    );
    println!("destroy: {}", explain(&destroyed));
    assert_eq!(destroyed.code, 0, "{}", explain(&destroyed));
    assert!(emulator.droplets().is_empty());
    assert_no_host_in_a_swarm(&hosts);

    // The harness leaves nothing: no forwarding rule, no namespace.
    let links: Vec<String> = hosts
        .hosts
        .iter()
        .map(|host| host.link().to_string())
        .collect();
    let namespaces: Vec<String> = hosts
        .hosts
        .iter()
        .map(|host| host.namespace.clone())
        .collect();
    drop(hosts);
    let rules = Command::new("iptables")
        .args(["-w", "5", "-S", "DOCKER-USER"])
        .output()
        .expect("iptables");
    let rules = String::from_utf8_lossy(&rules.stdout);
    let listed = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    let listed = String::from_utf8_lossy(&listed.stdout);
    for (link, namespace) in links.iter().zip(&namespaces) {
        assert!(
            !rules.contains(&format!("{link} ")),
            "no rule for {link} is left: {rules}"
        );
        assert!(
            !listed.contains(namespace.as_str()),
            "{namespace} is gone: {listed}"
        );
    }
}

/// The `replica …` lines of a `verify` run: (server URL, passed).
fn replica_lines(run: &Run) -> Vec<(String, bool)> {
    run.stdout
        .lines()
        .map(str::trim)
        .filter_map(|line| {
            let (passed, rest) = if let Some(rest) = line.strip_prefix("ok   replica ") {
                (true, rest)
            } else {
                (false, line.strip_prefix("FAIL replica ")?)
            };
            let url = rest.split(' ').next()?.to_string();
            Some((url, passed))
        })
        .collect()
}

/// The address of a task's container on the stack's `edge` overlay: what the backend
/// file lists for it.
fn overlay_address(hosts: &SwarmHosts, host: &str, container: &str, network: &str) -> String {
    hosts
        .host(host)
        .docker(&[
            "inspect",
            "--format",
            &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
            container,
        ])
        .unwrap_or_else(|error| panic!("{error}"))
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_checks_each_replica_of_a_routed_service() {
    let _guard = HOSTS.lock().await;
    build_images();
    let name = "e2e-swarm-replicas";
    let hosts = start_hosts_on("swv", [248, 249, 244]);
    hosts
        .load_images(&[SERVER_IMAGE, TRAEFIK_IMAGE])
        .unwrap_or_else(|error| panic!("{error}"));
    let emulator = start_emulator(&hosts).await;
    let environment = TestEnvironment::new();
    // Docker checks the scratch image with its own command; the edge checks each task
    // on `/health`, which the test server answers.
    let web = routed_web(name, "v1").replace(
        "health = { command",
        "health = { http = \"/health\", command",
    );
    write_stack(&environment, &hosts, name, &["web-2", "web-3"], &web);
    let applied = stackctl(
        &environment,
        &emulator,
        &["apply", "--yes", "--accept-new-host-key"],
    );
    assert_eq!(
        applied.code,
        0,
        "the apply: {}\n{}",
        explain(&applied),
        hosts.logs()
    );
    let service = live_service_name(&hosts, "swv-1", name);
    let containers = task_containers(&hosts, &service);
    assert_eq!(containers.len(), 2, "two tasks run: {containers:?}");
    let network = format!("{name}_edge");
    let addresses: BTreeMap<String, (String, String)> = containers
        .iter()
        .map(|(container, host)| {
            let url = format!(
                "http://{}:8080",
                overlay_address(&hosts, host, container, &network)
            );
            (url, (container.clone(), host.clone()))
        })
        .collect();

    // Both replicas are checked through the edge's view of them, and pass.
    let verified = stackctl(&environment, &emulator, &["verify"]);
    println!("verify with both replicas up: {}", explain(&verified));
    assert_eq!(verified.code, 0, "verify passes: {}", explain(&verified));
    let replicas = replica_lines(&verified);
    let expected: Vec<(String, bool)> = addresses.keys().map(|url| (url.clone(), true)).collect();
    assert_eq!(
        replicas,
        expected,
        "one passing line per task: {}",
        explain(&verified)
    );
    assert!(
        verified.stdout.contains("of `web`: UP"),
        "{}",
        explain(&verified)
    );

    // One replica's process dies. Swarm starts another task in its place, but the edge
    // still balances over the dead one's address until the next apply: its health check
    // marks it DOWN, and verify names it.
    let (dead_url, (dead_container, dead_host)) = addresses
        .iter()
        .next()
        .map(|(url, task)| (url.clone(), task.clone()))
        .expect("a task");
    hosts
        .host(&dead_host)
        .docker(&["kill", &dead_container])
        .unwrap_or_else(|error| panic!("{error}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let failed = loop {
        // Traefik checks every 2 s; give it an interval before asking.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let run = stackctl(&environment, &emulator, &["verify"]);
        if run.code != 0 || Instant::now() >= deadline {
            break run;
        }
    };
    println!("verify with {dead_url} killed: {}", explain(&failed));
    assert_ne!(failed.code, 0, "verify fails: {}", explain(&failed));
    let replicas = replica_lines(&failed);
    assert!(
        replicas.contains(&(dead_url.clone(), false)),
        "the dead replica {dead_url} fails: {}",
        explain(&failed)
    );
    assert!(
        failed
            .stdout
            .contains(&format!("FAIL replica {dead_url} of `web`: DOWN")),
        "{}",
        explain(&failed)
    );
    let alive: Vec<&String> = addresses.keys().filter(|url| **url != dead_url).collect();
    for url in &alive {
        assert!(
            replicas.contains(&((*url).clone(), true)),
            "the live replica {url} passes: {}",
            explain(&failed)
        );
    }

    // The JSON carries one result per replica with Traefik's status.
    let json = stackctl(&environment, &emulator, &["verify", "--format", "json"]);
    assert_ne!(json.code, 0, "{}", explain(&json));
    let document: serde_json::Value = serde_json::from_str(&json.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", explain(&json)));
    let results: Vec<&serde_json::Value> = document["checks"]
        .as_array()
        .expect("a list of checks")
        .iter()
        .filter(|check| check["service"] == "web" && check["server"].is_string())
        .collect();
    let dead = results
        .iter()
        .find(|check| check["server"] == dead_url.as_str())
        .unwrap_or_else(|| panic!("the dead replica is in the JSON: {}", json.stdout));
    assert_eq!(dead["status"], "DOWN", "{dead}");
    assert_eq!(dead["passed"], false, "{dead}");
    for url in &alive {
        let live = results
            .iter()
            .find(|check| check["server"] == url.as_str())
            .unwrap_or_else(|| panic!("{url} is in the JSON: {}", json.stdout));
        assert_eq!(live["status"], "UP", "{live}");
        assert_eq!(live["passed"], true, "{live}");
    }

    let destroyed = stackctl(
        &environment,
        &emulator,
        &["destroy", "--yes", "--allow-data-loss"],
    );
    assert_eq!(destroyed.code, 0, "{}", explain(&destroyed));
}

/// `docker service inspect --format TEMPLATE SERVICE` on the first manager.
fn service_field(hosts: &SwarmHosts, service: &str, template: &str) -> String {
    hosts.hosts[0]
        .docker(&["service", "inspect", "--format", template, service])
        .unwrap_or_else(|error| panic!("{error}"))
}

/// An unrouted `app` with two dnsrr replicas on the workers, limits, Swarm's update
/// settings and a secret in its env; a stateful `store` holding a named volume, with
/// `store_placement` as its placement (if any).
fn services_with_a_secret_and_a_volume(store_placement: &str) -> String {
    format!(
        r#"
[services.app]
image = "{SERVER_IMAGE}"
pull = false
env = {{ NAME = "app", API_TOKEN = "${{API_TOKEN}}" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}
read_only = true
memory = "64m"
cpus = 0.25
replicas = 2
endpoint_mode = "dnsrr"
placement = {{ constraints = ["node.role == worker"] }}
update = {{ parallelism = 1, order = "start-first", failure_action = "rollback", monitor = "2s" }}

[services.store]
image = "{SERVER_IMAGE}"
pull = false
env = {{ NAME = "store" }}
volumes = ["storedata:/data"]
endpoint_mode = "dnsrr"
{store_placement}
"#
    )
}

/// Issue 13, points 2 and 4 through the binary: every service becomes a Swarm service with
/// its replicas, placement, limits and update settings; networks are attachable overlays;
/// a secret env value is a Swarm secret file that no inspect shows; the stateful service
/// is pinned to the first manager, where its volume is, and the plan warns when its
/// placement changes; a hand scale and a hand env change are drift that `apply` repairs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_become_swarm_services_with_limits_update_settings_secret_files_and_a_pinned_volume(
) {
    let _guard = HOSTS.lock().await;
    build_images();
    let name = "e2e-swarm-svc";
    let token_value = "e2e-swarm-api-token-7f3a9c1d5b";
    let hosts = start_hosts("swe", 161);
    hosts
        .load_images(&[SERVER_IMAGE])
        .unwrap_or_else(|error| panic!("{error}"));
    let emulator = start_emulator(&hosts).await;
    let environment = TestEnvironment::new();
    write_stack(
        &environment,
        &hosts,
        name,
        &["web-2", "web-3"],
        &services_with_a_secret_and_a_volume(""),
    );
    let run = |arguments: &[&str]| {
        environment.run_with_env(
            arguments,
            &[
                ("DIGITALOCEAN_API_URL", emulator.base_url().as_str()),
                ("DIGITALOCEAN_TOKEN", TOKEN),
                ("STACKCTL_DO_POLL_INTERVAL_MS", "50"),
                ("STACKCTL_DO_READY_TIMEOUT_SECONDS", "60"),
                ("API_TOKEN", token_value),
            ],
        )
    };

    let plan = run(&["plan"]);
    assert_eq!(plan.code, 0, "the first plan: {}", explain(&plan));
    assert!(
        plan.stdout.contains("swarm_service.app") && plan.stdout.contains("swarm_service.store"),
        "{}",
        explain(&plan)
    );
    let applied = run(&["apply", "--yes", "--accept-new-host-key"]);
    println!("apply: {}", explain(&applied));
    assert_eq!(
        applied.code,
        0,
        "the first apply: {}\n{}",
        explain(&applied),
        hosts.logs()
    );

    // `app`: two replicas on the two workers, with the limits and update settings of
    // stack.toml as Swarm holds them.
    let app = format!("{name}-app");
    assert_eq!(
        running_task_nodes(&hosts, "swe-1", &app),
        ["swe-2", "swe-3"]
    );
    assert_eq!(
        service_field(
            &hosts,
            &app,
            "{{.Spec.Mode.Replicated.Replicas}} {{.Spec.EndpointSpec.Mode}} {{json .Spec.TaskTemplate.Placement.Constraints}}"
        ),
        r#"2 dnsrr ["node.role == worker"]"#
    );
    assert_eq!(
        service_field(
            &hosts,
            &app,
            "{{.Spec.TaskTemplate.Resources.Limits.MemoryBytes}} {{.Spec.TaskTemplate.Resources.Limits.NanoCPUs}}"
        ),
        "67108864 250000000"
    );
    assert_eq!(
        service_field(
            &hosts,
            &app,
            "{{.Spec.UpdateConfig.Parallelism}} {{.Spec.UpdateConfig.Order}} {{.Spec.UpdateConfig.FailureAction}} {{.Spec.UpdateConfig.Monitor}}"
        ),
        "1 start-first rollback 2s"
    );

    // The secret is a file in each task, named by `API_TOKEN_FILE`; neither the service's
    // nor a task container's inspect shows the value, nor anything stackctl printed or wrote.
    let service_inspect = hosts.hosts[0]
        .docker(&["service", "inspect", &app])
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(
        service_inspect.contains("API_TOKEN_FILE=/run/secrets/API_TOKEN"),
        "{service_inspect}"
    );
    assert!(!service_inspect.contains(token_value), "{service_inspect}");
    let containers = task_containers(&hosts, &app);
    assert_eq!(containers.len(), 2, "{containers:?}");
    for (container, host) in &containers {
        let node = hosts.host(host);
        let printed = node
            .docker(&[
                "exec",
                container,
                "/server",
                "task",
                "--print-file",
                "/run/secrets/API_TOKEN",
            ])
            .unwrap_or_else(|error| panic!("{error}"));
        assert!(printed.contains(token_value), "{host}: {printed}");
        let container_inspect = node
            .docker(&["inspect", container])
            .unwrap_or_else(|error| panic!("{error}"));
        assert!(!container_inspect.contains(token_value), "{host}");
    }
    for run in [&plan, &applied] {
        assert!(
            !run.stdout.contains(token_value) && !run.stderr.contains(token_value),
            "the secret was printed"
        );
    }
    for (path, text) in files_under(environment.path()) {
        assert!(
            !text.contains(token_value),
            "the secret was written to {}",
            path.display()
        );
    }

    // The networks are attachable overlays.
    let networks = hosts.hosts[0]
        .docker(&[
            "network",
            "ls",
            "--filter",
            &format!("label=stackctl.stack={name}"),
            "--format",
            "{{.Name}}",
        ])
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(!networks.is_empty(), "the stack has networks");
    for network in networks.lines() {
        let shape = hosts.hosts[0]
            .docker(&[
                "network",
                "inspect",
                "--format",
                "{{.Driver}} {{.Attachable}}",
                network,
            ])
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(shape, "overlay true", "{network}");
    }

    // `store` holds a volume: it runs on the first manager, where stackctl made the volume.
    let store = format!("{name}-store");
    assert_eq!(running_task_nodes(&hosts, "swe-1", &store), ["swe-1"]);
    let mounts = service_field(
        &hosts,
        &store,
        "{{json .Spec.TaskTemplate.ContainerSpec.Mounts}}",
    );
    assert!(mounts.contains("storedata"), "{mounts}");

    let empty = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(empty.code, 0, "nothing left to do: {}", explain(&empty));

    // A placement that may move the stateful service to another node: the plan warns that
    // its data stays behind.
    write_stack(
        &environment,
        &hosts,
        name,
        &["web-2", "web-3"],
        &services_with_a_secret_and_a_volume(
            r#"placement = { constraints = ["node.labels.zone == a"] }"#,
        ),
    );
    let moving = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(moving.code, 2, "{}", explain(&moving));
    let words = format!("{}{}", moving.stdout, moving.stderr);
    assert!(
        words.contains("data loss") && words.contains("storedata") && words.contains("placement"),
        "the plan warns that the data stays behind: {}",
        explain(&moving)
    );
    write_stack(
        &environment,
        &hosts,
        name,
        &["web-2", "web-3"],
        &services_with_a_secret_and_a_volume(""),
    );

    // Scaled and changed by hand: drift, repaired by apply.
    hosts.hosts[0]
        .docker(&["service", "scale", "--detach", &format!("{app}=3")])
        .unwrap_or_else(|error| panic!("{error}"));
    hosts.hosts[0]
        .docker(&[
            "service",
            "update",
            "--detach",
            "--env-add",
            "HAND_MADE=yes",
            &store,
        ])
        .unwrap_or_else(|error| panic!("{error}"));
    let drift = run(&["drift"]);
    println!("drift after hand changes: {}", explain(&drift));
    assert_eq!(drift.code, 2, "{}", explain(&drift));
    assert!(
        drift.stdout.contains("swarm_service.app") && drift.stdout.contains("replicas"),
        "the hand scale shows: {}",
        explain(&drift)
    );
    assert!(
        drift.stdout.contains("swarm_service.store") && drift.stdout.contains("HAND_MADE"),
        "the hand env change shows: {}",
        explain(&drift)
    );
    let repaired = run(&["apply", "--yes"]);
    assert_eq!(
        repaired.code,
        0,
        "the repair: {}\n{}",
        explain(&repaired),
        hosts.logs()
    );
    assert_eq!(
        service_field(&hosts, &app, "{{.Spec.Mode.Replicated.Replicas}}"),
        "2"
    );
    assert!(!service_field(
        &hosts,
        &store,
        "{{json .Spec.TaskTemplate.ContainerSpec.Env}}"
    )
    .contains("HAND_MADE"));
    let settled = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(settled.code, 0, "repaired: {}", explain(&settled));
    for run in [&moving, &drift, &repaired, &settled] {
        assert!(
            !run.stdout.contains(token_value) && !run.stderr.contains(token_value),
            "the secret was printed"
        );
    }

    let destroyed = run(&["destroy", "--yes", "--allow-data-loss"]);
    assert_eq!(destroyed.code, 0, "{}", explain(&destroyed));
    let secrets = hosts.hosts[0]
        .docker(&["secret", "ls", "--format", "{{.Name}}"])
        .unwrap_or_else(|error| error);
    assert!(
        !secrets.contains(name),
        "destroy removes the secret: {secrets}"
    );
}

/// `app`, the test server with two `[files]` entries mounted: a configuration file and one
/// holding the secret `${APP_TOKEN}`; two replicas spread over the manager (no `zone`
/// label) and the worker `web-2` (zone `a`); the files are owned by the task's user and
/// readable by it alone.
fn service_with_files(root: &std::path::Path, greeting: &str) -> String {
    format!(
        r#"
[files.app]
path = "app.conf"
content = "greeting = {greeting}\nsecond line"
owner = "10001:10001"
mode = "0440"

[files.token]
path = "token.txt"
content = "${{APP_TOKEN}}"
owner = "10001:10001"
mode = "0400"

[services.app]
image = "{SERVER_IMAGE}"
pull = false
env = {{ NAME = "app" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}
volumes = ["{root}/files/app.conf:/etc/app/app.conf:ro", "{root}/files/token.txt:/etc/app/token.txt:ro"]
user = "10001"
read_only = true
replicas = 2
endpoint_mode = "dnsrr"
placement = {{ preferences = [{{ spread = "node.labels.zone" }}] }}
"#,
        root = root.display()
    )
}

/// The name of the config the live spec of `service` mounts.
fn configs_of_spec(hosts: &SwarmHosts, service: &str) -> String {
    let inspected = hosts
        .host("swf-1")
        .docker(&[
            "service",
            "inspect",
            service,
            "--format",
            "{{json .Spec.TaskTemplate.ContainerSpec.Configs}}",
        ])
        .unwrap_or_else(|error| panic!("{error}"));
    let configs: serde_json::Value = serde_json::from_str(&inspected).expect("JSON");
    configs[0]["ConfigName"]
        .as_str()
        .unwrap_or_else(|| panic!("a config is mounted: {configs}"))
        .to_string()
}

/// What each running task of `service` reads at `/etc/app/app.conf` and
/// `/etc/app/token.txt`, asked on the node it runs on: container → (host name, the test
/// server's `path: content` lines).
fn files_seen_by_each_task(
    hosts: &SwarmHosts,
    service: &str,
) -> BTreeMap<String, (String, String)> {
    task_containers(hosts, service)
        .into_iter()
        .map(|(container, host)| {
            let seen = hosts
                .host(&host)
                .docker(&[
                    "exec",
                    &container,
                    "/server",
                    "task",
                    "--print-file",
                    "/etc/app/app.conf",
                    "--print-file",
                    "/etc/app/token.txt",
                ])
                // A container of the previous spec may be stopping: said, and asked again.
                .unwrap_or_else(|error| format!("unreadable: {error}"));
            (container, (host, seen))
        })
        .collect()
}

/// The stack's Swarm configs or secrets (`kind`), as the manager lists them.
fn swarm_objects(hosts: &SwarmHosts, manager: &str, kind: &str, stack: &str) -> Vec<String> {
    let listed = hosts
        .host(manager)
        .docker(&[
            kind,
            "ls",
            "--filter",
            &format!("label=stackctl.stack={stack}"),
            "--format",
            "{{.Name}}",
        ])
        .unwrap_or_else(|error| panic!("{error}"));
    let mut names: Vec<String> = listed.lines().map(str::to_string).collect();
    names.sort();
    names
}

/// Waits (bounded) until there are two running task containers of `service` and each
/// sees `expected`; returns the nodes they run on. (Right after an update the previous
/// spec's containers may still be stopping on a node: `docker ps` lists them a moment
/// longer.)
fn wait_for_files_on_every_task(hosts: &SwarmHosts, service: &str, expected: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = files_seen_by_each_task(hosts, service);
        if seen.len() == 2 && seen.values().all(|(_, text)| text == expected) {
            let mut nodes: Vec<String> = seen.into_values().map(|(host, _)| host).collect();
            nodes.sort();
            return nodes;
        }
        assert!(
            Instant::now() < deadline,
            "every task of {service} did not see {expected:?} within 60 s: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Issue 13, point 2's Swarm configs: a `[files]` entry a service bind-mounts reaches every
/// task as a Swarm config, on the worker too (no bind mount of the manager's host, no pin
/// to the first manager), with its owner and mode; one holding a secret as a Swarm secret
/// at its path, its value in no output, state or run folder. A new content is a new
/// config (and secret) the service rolls out to, the old ones removed; a config removed
/// by hand is drift that apply puts back; removing the service removes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_file_reaches_every_replica_as_a_swarm_config_and_a_change_rolls_out() {
    let _guard = HOSTS.lock().await;
    build_images();
    let name = "e2e-swarm-configs";
    let hosts = start_hosts("swf", 181);
    hosts
        .load_images(&[SERVER_IMAGE])
        .unwrap_or_else(|error| panic!("{error}"));
    let emulator = start_emulator(&hosts).await;
    let environment = TestEnvironment::new();
    let root = environment.path().join("manager-files");
    let tokens = ["v1-token-Zq8wXk2LmP4rT9sB", "v2-token-Hc3nVy7JdQ1gW5eA"];
    let run = |arguments: &[&str], token: &str| {
        environment.run_with_env(
            arguments,
            &[
                ("DIGITALOCEAN_API_URL", emulator.base_url().as_str()),
                ("DIGITALOCEAN_TOKEN", TOKEN),
                ("STACKCTL_DO_POLL_INTERVAL_MS", "50"),
                ("STACKCTL_DO_READY_TIMEOUT_SECONDS", "60"),
                ("APP_TOKEN", token),
            ],
        )
    };
    write_stack(
        &environment,
        &hosts,
        name,
        &["web-2"],
        &service_with_files(&root, "v1"),
    );
    let applied = run(&["apply", "--yes", "--accept-new-host-key"], tokens[0]);
    assert_eq!(
        applied.code,
        0,
        "the apply: {}\n{}",
        explain(&applied),
        hosts.logs()
    );
    let service = live_service_name(&hosts, "swf-1", name);
    assert_eq!(service, format!("{name}-app"));
    // The spec mounts a config and a secret, not paths of the manager's host, and pins
    // nothing; it does not hold the secret's value.
    let inspected = hosts
        .host("swf-1")
        .docker(&["service", "inspect", &service, "--format", "{{json .Spec}}"])
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(!inspected.contains(tokens[0]), "{inspected}");
    let spec: serde_json::Value = serde_json::from_str(&inspected).expect("the spec is JSON");
    let container = &spec["TaskTemplate"]["ContainerSpec"];
    let old_config = container["Configs"][0]["ConfigName"]
        .as_str()
        .unwrap_or_else(|| panic!("a config is mounted: {container}"))
        .to_string();
    assert_eq!(
        container["Configs"][0]["File"],
        serde_json::json!({ "Name": "/etc/app/app.conf", "UID": "10001", "GID": "10001", "Mode": 0o440 })
    );
    assert_eq!(
        container["Secrets"][0]["File"],
        serde_json::json!({ "Name": "/etc/app/token.txt", "UID": "10001", "GID": "10001", "Mode": 0o400 })
    );
    assert!(
        !container["Mounts"].to_string().contains("/etc/app/"),
        "no bind mount of the files: {container}"
    );
    let constraints = &spec["TaskTemplate"]["Placement"]["Constraints"];
    assert!(
        constraints.is_null() || constraints == &serde_json::json!([]),
        "not pinned to the first manager: {spec}"
    );
    // Two tasks on two nodes, one the worker; each reads exactly the files' contents.
    assert_eq!(
        running_task_nodes(&hosts, "swf-1", &service),
        ["swf-1", "swf-2"]
    );
    let expected = format!(
        "/etc/app/app.conf: greeting = v1\nsecond line\n/etc/app/token.txt: {}",
        tokens[0]
    );
    assert_eq!(
        wait_for_files_on_every_task(&hosts, &service, &expected),
        ["swf-1", "swf-2"]
    );
    assert_eq!(
        swarm_objects(&hosts, "swf-1", "config", name),
        std::slice::from_ref(&old_config)
    );
    let old_secrets = swarm_objects(&hosts, "swf-1", "secret", name);
    assert_eq!(old_secrets.len(), 1, "{old_secrets:?}");
    let settled = run(&["plan", "--detailed-exitcode"], tokens[0]);
    assert_eq!(
        settled.code,
        0,
        "a second plan is empty: {}",
        explain(&settled)
    );

    // A new content of both: the plan shows the file's diff and the service's new config,
    // and the secret only as changed.
    write_stack(
        &environment,
        &hosts,
        name,
        &["web-2"],
        &service_with_files(&root, "v2"),
    );
    let plan = run(&["plan", "--detailed-exitcode"], tokens[1]);
    println!("the plan of a new content: {}", explain(&plan));
    assert_eq!(plan.code, 2, "{}", explain(&plan));
    let config_line = plan
        .stdout
        .lines()
        .find(|line| line.contains("configs./etc/app/app.conf.name"))
        .unwrap_or_else(|| panic!("the config's change is shown: {}", explain(&plan)));
    assert!(
        config_line.contains(&format!("\"{old_config}\" →")),
        "{config_line}"
    );
    assert!(
        plan.stdout.contains("file.app")
            && plan
                .stdout
                .lines()
                .any(|line| line.trim() == "- greeting = v1")
            && plan
                .stdout
                .lines()
                .any(|line| line.trim() == "+ greeting = v2"),
        "the file's content diff is shown: {}",
        explain(&plan)
    );
    assert!(
        plan.stdout.lines().any(
            |line| line.contains("secret_files./etc/app/token.txt.content")
                && line.contains("(sensitive value changed)")
        ),
        "{}",
        explain(&plan)
    );
    let rolled = run(&["apply", "--yes"], tokens[1]);
    assert_eq!(rolled.code, 0, "the update: {}", explain(&rolled));
    let expected = format!(
        "/etc/app/app.conf: greeting = v2\nsecond line\n/etc/app/token.txt: {}",
        tokens[1]
    );
    // Both tasks read the new contents. Where they run is Swarm's choice after a
    // start-first update (the spread counts the old tasks still running while a new one
    // is placed, and the manager has no zone label): the worker was shown above.
    let nodes = wait_for_files_on_every_task(&hosts, &service, &expected);
    assert_eq!(nodes.len(), 2, "two tasks: {nodes:?}");
    // The old config and secret stay while the previous spec (Swarm's rollback target)
    // mounts them; the next apply that updates the service removes them.
    let new_config = configs_of_spec(&hosts, &service);
    assert_ne!(new_config, old_config);
    assert!(
        config_line.ends_with(&format!("\"{new_config}\"")),
        "{config_line}"
    );
    let configs = swarm_objects(&hosts, "swf-1", "config", name);
    assert_eq!(
        configs.len(),
        2,
        "the new config and the rollback target's: {configs:?}"
    );
    assert!(configs.contains(&old_config), "{configs:?}");
    let secrets = swarm_objects(&hosts, "swf-1", "secret", name);
    assert!(
        secrets.len() == 2 && old_secrets.iter().all(|old| secrets.contains(old)),
        "the new secret and the rollback target's: {secrets:?}"
    );
    let settled = run(&["plan", "--detailed-exitcode"], tokens[1]);
    assert_eq!(
        settled.code,
        0,
        "the plan after is empty: {}",
        explain(&settled)
    );

    // The config removed from the service by hand is drift, read from the live spec, and
    // apply mounts it again.
    hosts
        .host("swf-1")
        .docker(&[
            "service",
            "update",
            "--detach",
            "--config-rm",
            &new_config,
            &service,
        ])
        .unwrap_or_else(|error| panic!("{error}"));
    let drift = run(&["drift"], tokens[1]);
    println!("drift of a config removed by hand: {}", explain(&drift));
    assert_eq!(drift.code, 2, "drift sees it: {}", explain(&drift));
    assert!(
        drift.stdout.contains("swarm_service.app") && drift.stdout.contains("configs"),
        "{}",
        explain(&drift)
    );
    let repaired = run(&["apply", "--yes"], tokens[1]);
    assert_eq!(repaired.code, 0, "the repair: {}", explain(&repaired));
    wait_for_files_on_every_task(&hosts, &service, &expected);
    let settled = run(&["plan", "--detailed-exitcode"], tokens[1]);
    assert_eq!(settled.code, 0, "repaired: {}", explain(&settled));
    // That update made the hand-edited spec the previous one: the first contents' config
    // and secret are mounted by neither spec any more, and are gone.
    assert_eq!(
        swarm_objects(&hosts, "swf-1", "config", name),
        std::slice::from_ref(&new_config)
    );
    let secrets = swarm_objects(&hosts, "swf-1", "secret", name);
    assert!(
        secrets.len() == 1 && secrets != old_secrets,
        "only the new secret is left: {secrets:?}"
    );

    // The service removed from stack.toml: its config and secret go with it.
    write_stack(&environment, &hosts, name, &["web-2"], "");
    let removed = run(&["apply", "--yes"], tokens[1]);
    assert_eq!(removed.code, 0, "the removal: {}", explain(&removed));
    assert_eq!(
        swarm_objects(&hosts, "swf-1", "config", name),
        Vec::<String>::new()
    );
    assert_eq!(
        swarm_objects(&hosts, "swf-1", "secret", name),
        Vec::<String>::new()
    );

    // The secret's values: in no output, nor in state or the run folders (the file
    // itself, on the manager, holds it by design).
    for output in [
        &applied, &settled, &plan, &rolled, &drift, &repaired, &removed,
    ] {
        for token in tokens {
            assert!(
                !output.stdout.contains(token) && !output.stderr.contains(token),
                "a secret value was printed: {}",
                explain(output)
            );
        }
    }
    for (path, text) in files_under(environment.path()) {
        if path.starts_with(&root) {
            continue;
        }
        for token in tokens {
            assert!(
                !text.contains(token),
                "a secret value was written to {}",
                path.display()
            );
        }
    }

    let destroyed = stackctl(
        &environment,
        &emulator,
        &["destroy", "--yes", "--allow-data-loss"],
    );
    assert_eq!(destroyed.code, 0, "{}", explain(&destroyed));
}

/// The routed test server and the edge on one droplet, `web-1`: the stack of
/// [`routed_web`] without the swarm.
fn on_one_droplet(environment: &TestEnvironment, hosts: &SwarmHosts, name: &str) {
    environment.write(
        "stack.toml",
        &format!(
            r#"[stack]
name = "{name}"

[target]
droplet = "web-1"
identity_file = "{identity}"
known_hosts = "{known_hosts}"
root = "{root}"

[droplets.web-1]
region = "fra1"
size = "s-1vcpu-2gb"
image = "docker-20-04"
ssh_keys = ["deploy"]

[ssh_keys.deploy]
public_key_file = "{identity}.pub"

[edge]
image = "{TRAEFIK_IMAGE}"
pull = false
http_port = 80
https_port = 443
admin_port = 8081

[services.web]
image = "{SERVER_IMAGE}"
pull = false
port = 8080
env = {{ NAME = "web", ECHO_ENV = "one-droplet" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}
networks = ["edge"]
read_only = true

[routes.web]
host = "{name}.test"
service = "web"
"#,
            identity = hosts.client_key.display(),
            known_hosts = hosts.known_hosts.display(),
            root = environment.path().join("manager-files").display(),
        ),
    );
}

/// Back to one droplet: `[target] swarm` replaced by `droplet = "web-1"` (the first
/// manager) and the workers' droplets dropped. The plan dissolves the swarm — its services
/// deleted, the workers drained and gone, the manager leaving — and runs the service as a
/// container again; afterwards no node is in a swarm and the plan is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_swarm_from_stack_toml_dissolves_it_and_runs_the_stack_on_the_first_manager() {
    let _guard = HOSTS.lock().await;
    build_images();
    let name = "e2e-swarm-back";
    let hosts = start_hosts("swm", 164);
    hosts
        .load_images(&[SERVER_IMAGE, TRAEFIK_IMAGE])
        .unwrap_or_else(|error| panic!("{error}"));
    let emulator = start_emulator(&hosts).await;
    let environment = TestEnvironment::new();
    write_stack(
        &environment,
        &hosts,
        name,
        &["web-2", "web-3"],
        &routed_web(name, "v1"),
    );
    let applied = stackctl(
        &environment,
        &emulator,
        &["apply", "--yes", "--accept-new-host-key"],
    );
    assert_eq!(
        applied.code,
        0,
        "the first apply: {}\n{}",
        explain(&applied),
        hosts.logs()
    );

    on_one_droplet(&environment, &hosts, name);
    let plan = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    println!("plan back to one droplet: {}", explain(&plan));
    assert_eq!(plan.code, 2, "{}", explain(&plan));
    for line in [
        "swarm.cluster  delete",
        "swarm_node.web-2  delete",
        "swarm_node.web-3  delete",
        "swarm_service.web  delete",
        "service.web  create",
        "droplet.web-3  delete",
    ] {
        assert!(plan.stdout.contains(line), "{line}: {}", explain(&plan));
    }
    // The workers' droplets go with their disks: the apply says so and needs consent.
    // Its checks are skipped: see below.
    let moved = stackctl(
        &environment,
        &emulator,
        &["apply", "--yes", "--allow-data-loss", "--skip-checks"],
    );
    println!("apply back to one droplet: {}", explain(&moved));
    assert_eq!(
        moved.code,
        0,
        "the move back: {}\n{}",
        explain(&moved),
        hosts.logs()
    );
    assert_no_host_in_a_swarm(&hosts);
    let containers = hosts.hosts[0]
        .docker(&["ps", "--format", "{{.Names}} {{.Networks}}"])
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(
        containers.contains(&format!("{name}-edge {name}_edge"))
            && containers.contains(&format!("{name}-web-")),
        "the edge and the web container run on the bridge network: {containers}"
    );
    // Docker 20.10 on the former manager no longer resolves container names for the edge
    // once it left the swarm (the edge's requests to the new container hang), until its
    // daemon restarts: the README's known gap, and the step it tells users to take.
    let mut hosts = hosts;
    let manager = hosts.hosts[0].name.clone();
    hosts
        .host_mut(&manager)
        .stop_docker_daemon()
        .unwrap_or_else(|error| panic!("{error}"));
    hosts
        .host_mut(&manager)
        .start_docker_daemon()
        .unwrap_or_else(|error| panic!("{error}"));
    let verified = stackctl(&environment, &emulator, &["verify"]);
    println!("verify after the daemon restarted: {}", explain(&verified));
    let answer = through_edge(&hosts, &format!("https://{name}.test/")).await;
    assert!(
        answer.status == Some(200) && answer.body_excerpt.contains(r#""env":"one-droplet""#),
        "the container serves through the edge: {answer:?}"
    );
    assert_eq!(verified.code, 0, "{}", explain(&verified));
    let settled = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    assert_eq!(settled.code, 0, "nothing left: {}", explain(&settled));
}

/// The benchmark's stack (`bench/swarm`): the edge, the routed `web` with two dnsrr
/// replicas placed by Swarm alone, and an unrouted `worker` whose env says `version`.
fn benchmark_stack(name: &str, version: &str) -> String {
    format!(
        r#"
[edge]
image = "{TRAEFIK_IMAGE}"
pull = false
http_port = 80
https_port = 443

[services.web]
image = "{SERVER_IMAGE}"
pull = false
port = 8080
env = {{ NAME = "web" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}
networks = ["edge"]
read_only = true
replicas = 2
endpoint_mode = "dnsrr"

[services.worker]
image = "{SERVER_IMAGE}"
pull = false
env = {{ NAME = "worker", VERSION = "{version}" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}
read_only = true
endpoint_mode = "dnsrr"

[routes.web]
host = "{name}.test"
service = "web"
"#
    )
}

/// Issue 13, point 6, as CI runs it: what `bench/swarm` measures — a full deploy and a
/// one-service update of the same stack on a 1-node and on a 3-node swarm — works and is
/// timed (printed; the benchmark, not this test, reports the figures). The update is
/// exactly one action; each swarm is destroyed (dissolved) before the next is formed on
/// the same hosts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmarks_deploy_and_one_service_update_run_on_one_node_and_on_three() {
    let _guard = HOSTS.lock().await;
    build_images();
    let name = "e2e-swarm-bench";
    let hosts = start_hosts("swn", 167);
    hosts
        .load_images(&[SERVER_IMAGE, TRAEFIK_IMAGE])
        .unwrap_or_else(|error| panic!("{error}"));
    let emulator = start_emulator(&hosts).await;
    let environment = TestEnvironment::new();
    let mut timings = Vec::new();
    for (nodes, workers) in [(1, &[][..]), (3, &["web-2", "web-3"][..])] {
        write_stack(
            &environment,
            &hosts,
            name,
            workers,
            &benchmark_stack(name, "1"),
        );
        let started = Instant::now();
        let deployed = stackctl(
            &environment,
            &emulator,
            &["apply", "--yes", "--accept-new-host-key", "--skip-checks"],
        );
        let deploy = started.elapsed();
        assert_eq!(
            deployed.code,
            0,
            "the full deploy on {nodes} node(s): {}\n{}",
            explain(&deployed),
            hosts.logs()
        );
        let swarm_nodes = node_list(&hosts, "swn-1");
        assert_eq!(swarm_nodes.len(), nodes, "{swarm_nodes:?}");
        assert_eq!(
            running_task_nodes(&hosts, "swn-1", &format!("{name}-web")).len(),
            2,
            "two replicas of web run"
        );

        write_stack(
            &environment,
            &hosts,
            name,
            workers,
            &benchmark_stack(name, "2"),
        );
        let plan = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
        assert_eq!(plan.code, 2, "{}", explain(&plan));
        assert!(
            plan.stdout.contains("swarm_service.worker")
                && plan
                    .stdout
                    .contains("Plan: 0 to create, 1 to update, 0 to replace, 0 to delete"),
            "the update is one action: {}",
            explain(&plan)
        );
        let started = Instant::now();
        let updated = stackctl(
            &environment,
            &emulator,
            &["apply", "--yes", "--skip-checks"],
        );
        let update = started.elapsed();
        assert_eq!(
            updated.code,
            0,
            "the one-service update on {nodes} node(s): {}\n{}",
            explain(&updated),
            hosts.logs()
        );
        let settled = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
        assert_eq!(settled.code, 0, "{}", explain(&settled));

        let destroyed = stackctl(
            &environment,
            &emulator,
            &["destroy", "--yes", "--allow-data-loss"],
        );
        assert_eq!(destroyed.code, 0, "{}", explain(&destroyed));
        assert_no_host_in_a_swarm(&hosts);
        timings.push((nodes, deploy, update));
    }
    for (nodes, deploy, update) in timings {
        println!("{nodes} node(s): full deploy {deploy:.2?}, one-service update {update:.2?}");
    }
}
