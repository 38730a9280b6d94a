//! Helpers for the tests against the real Docker daemon at /var/run/docker.sock.
//!
//! Every test uses its own stack name, so tests run in parallel without seeing each
//! other, and a [`Cleanup`] guard removes everything carrying that stack's label even
//! when the test panics. Images come from `testing/build-images.sh` (built once per test
//! binary, FROM scratch, never pulled).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once, RwLock};
use std::time::Duration;

use stackctl_docker::{DockerOptions, DockerProvider};
use stackctl_host::HostConnector;
use stackctl_provider::{
    Action, ActionKind, Address, ApplyContext, ApplyOutcome, LiveResource, Provider, ReadRequest,
    Reason, RecordedResource, ReplaceOrder, Resource, Secret, Value,
};

pub const SERVER_IMAGE: &str = "stackctl-test/server:latest";
pub const TRAEFIK_IMAGE: &str = "stackctl-test/traefik:3.7.15";
pub const SALT: &str = "test-salt";

static IMAGES: Once = Once::new();

/// Builds the test images (fast when they exist). Traefik only when its binary is there.
pub fn ensure_images() {
    IMAGES.call_once(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testing/build-images.sh");
        let traefik_present = std::env::var("TRAEFIK_BIN")
            .map(|path| std::path::Path::new(&path).exists())
            .unwrap_or(false)
            || Command::new("sh")
                .args(["-c", "command -v traefik"])
                .output()
                .map(|output| output.status.success())
                .unwrap_or(false);
        let mut command = Command::new("bash");
        command.arg(script);
        if !traefik_present && image_exists(TRAEFIK_IMAGE) {
            command.env("SKIP_TRAEFIK", "1");
        }
        let status = command.status().expect("run testing/build-images.sh");
        assert!(status.success(), "testing/build-images.sh failed");
    });
}

pub fn image_exists(image: &str) -> bool {
    docker(&["image", "inspect", image]).is_some()
}

/// Runs the docker CLI (argv, no shell) and returns stdout on success. Tests use it to
/// play the operator who changes things by hand.
pub fn docker(arguments: &[&str]) -> Option<String> {
    let output = Command::new("docker").args(arguments).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A stack name unique to this test run: lower case, short, valid in Docker names.
pub fn unique_stack(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{}x{}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        nanos % 100_000
    )
}

/// Removes every container, network and volume labelled with the stack, on drop.
pub struct Cleanup {
    pub stack: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let filter = format!("label=stackctl.stack={}", self.stack);
        let names_filter = format!("name={}-", self.stack);
        for query in [
            vec!["ps", "-aq", "--filter", filter.as_str()],
            vec!["ps", "-aq", "--filter", names_filter.as_str()],
        ] {
            if let Some(ids) = docker(&query) {
                for id in ids.lines().filter(|line| !line.is_empty()) {
                    docker(&["rm", "-f", "-v", id]);
                }
            }
        }
        if let Some(ids) = docker(&["network", "ls", "-q", "--filter", &filter]) {
            for id in ids.lines().filter(|line| !line.is_empty()) {
                docker(&["network", "rm", id]);
            }
        }
        if let Some(names) = docker(&["volume", "ls", "-q", "--filter", &filter]) {
            for name in names.lines().filter(|line| !line.is_empty()) {
                docker(&["volume", "rm", "-f", name]);
            }
        }
        if let Some(ids) = docker(&["image", "ls", "-q", "--filter", &filter]) {
            for id in ids.lines().filter(|line| !line.is_empty()) {
                docker(&["image", "rm", "-f", id]);
            }
        }
        let root = std::env::temp_dir().join(format!("stackctl-docker-test-{}", self.stack));
        let _ = std::fs::remove_dir_all(root);
    }
}

pub fn provider(stack: &str, root: &str) -> DockerProvider {
    provider_with_settle(stack, root, Duration::from_millis(1500))
}

/// A test provider whose swaps wait `settle` when they cannot ask Traefik.
pub fn provider_with_settle(stack: &str, root: &str, settle: Duration) -> DockerProvider {
    DockerProvider::with_options(Arc::new(HostConnector::local()), stack, {
        let mut options = test_options(root);
        options.settle = settle;
        options
    })
}

/// A test provider whose swaps ask Traefik on the host's `127.0.0.1:<admin_port>`, as
/// the front end wires `[edge] admin_port`.
pub fn provider_asking_the_admin_port(stack: &str, root: &str, admin_port: u16) -> DockerProvider {
    DockerProvider::with_options(Arc::new(HostConnector::local()), stack, {
        let mut options = test_options(root);
        options.edge_published_admin_port = Some(admin_port);
        options
    })
}

fn test_options(root: &str) -> DockerOptions {
    DockerOptions {
        root: Some(root.to_string()),
        settle: Duration::from_millis(1500),
        // As the front end wires it: routed services are swapped with Traefik's formats.
        edge_formats: Some(Arc::new(stackctl_traefik::TraefikFormats)),
        ..DockerOptions::default()
    }
}

pub fn context(stack: &str) -> ApplyContext {
    ApplyContext {
        stack: stack.to_string(),
        lineage: "lineage-of-the-test".to_string(),
        state_was_empty: true,
        salt: SALT.to_string(),
        health_timeout: Duration::from_secs(30),
        allow_data_loss: false,
        recorded: Arc::new(RwLock::new(BTreeMap::new())),
    }
}

pub fn temp_root(stack: &str) -> String {
    let root = std::env::temp_dir().join(format!("stackctl-docker-test-{stack}"));
    std::fs::create_dir_all(&root).expect("create temp root");
    root.display().to_string()
}

pub fn network(stack: &str, name: &str) -> Resource {
    Resource::new(Address::new("network", name), "docker")
        .with("name", format!("{stack}_{name}"))
        .with("internal", false)
}

pub fn volume(stack: &str, name: &str) -> Resource {
    Resource::new(Address::new("volume", name), "docker").with("name", format!("{stack}_{name}"))
}

pub fn text_list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|item| Value::text(*item)).collect())
}

/// A service running the test server on the stack's `net` network.
pub fn service(stack: &str, name: &str, env: &[(&str, &str)]) -> Resource {
    let mut variables = BTreeMap::from([("NAME".to_string(), Value::text(name))]);
    for (key, value) in env {
        variables.insert(key.to_string(), Value::text(*value));
    }
    Resource::new(Address::new("service", name), "docker")
        .with("container_name", format!("{stack}-{name}"))
        .with("image", SERVER_IMAGE)
        .with("env", Value::Map(variables))
        .with(
            "networks",
            Value::Map(BTreeMap::from([(
                format!("{stack}_net"),
                text_list(&[name]),
            )])),
        )
        .with("restart", "no")
        .with(
            "health",
            Value::Map(BTreeMap::from([
                ("test".to_string(), text_list(&["CMD", "/server", "health"])),
                ("interval_seconds".to_string(), Value::Integer(1)),
                ("timeout_seconds".to_string(), Value::Integer(2)),
                ("retries".to_string(), Value::Integer(2)),
            ])),
        )
        .with("port", 8080i64)
}

pub fn with_secret(mut resource: Resource, key: &str, plaintext: &str) -> Resource {
    if let Some(Value::Map(env)) = resource.attributes.get_mut("env") {
        env.insert(key.to_string(), Value::Secret(Secret::new(plaintext, SALT)));
    }
    resource
}

pub fn with_env(mut resource: Resource, key: &str, value: &str) -> Resource {
    if let Some(Value::Map(env)) = resource.attributes.get_mut("env") {
        env.insert(key.to_string(), Value::text(value));
    }
    resource
}

/// A route to the service: its backend file is `<traefik_dir>/dynamic/backend-<name>.yml`,
/// as lowering places it under `<root>/traefik`.
pub fn with_route_backend(resource: Resource, traefik_dir: &str) -> Resource {
    let name = resource.address.name().to_string();
    resource.with(
        "route_backend",
        Value::Map(BTreeMap::from([
            (
                "file".to_string(),
                Value::text(format!("{traefik_dir}/dynamic/backend-{name}.yml")),
            ),
            (
                "temp_dir".to_string(),
                Value::text(format!("{traefik_dir}/.tmp")),
            ),
            ("service".to_string(), Value::text(name)),
        ])),
    )
}

pub fn with_volume(resource: Resource, source: &str, target: &str) -> Resource {
    let mut resource = resource
        .with(
            "volumes",
            Value::List(vec![Value::Map(BTreeMap::from([
                ("source".to_string(), Value::text(source)),
                ("target".to_string(), Value::text(target)),
                ("read_only".to_string(), Value::Bool(false)),
                ("kind".to_string(), Value::text("volume")),
            ]))]),
        )
        .with("stateful", true);
    resource.replace_order = ReplaceOrder::DestroyBeforeCreate;
    resource
}

pub fn action(
    kind: ActionKind,
    desired: Option<Resource>,
    prior: Option<RecordedResource>,
) -> Action {
    let address = desired
        .as_ref()
        .map(|resource| resource.address.clone())
        .or_else(|| prior.as_ref().map(|prior| prior.address.clone()))
        .expect("an action needs a desired or a prior resource");
    Action {
        address,
        provider: "docker".into(),
        kind,
        reason: Reason::New,
        changes: Vec::new(),
        depends_on: Vec::new(),
        desired,
        prior,
        live_id: None,
    }
}

/// Applies and returns the recorded resource (panics with the provider's error detail).
pub async fn apply(
    provider: &DockerProvider,
    action: Action,
    context: &ApplyContext,
) -> RecordedResource {
    let address = action.address.clone();
    let outcome = provider.apply(&action, context).await;
    // As the engine's `end_apply` does: a replaced container is retired beside the next
    // actions, and the apply ends once it is gone.
    provider
        .finish_background_work()
        .await
        .unwrap_or_else(|error| panic!("{address}: retiring the replaced container: {error}"));
    match outcome {
        Ok(ApplyOutcome::Recorded(recorded)) => recorded,
        Ok(ApplyOutcome::Deleted) => panic!("{address}: expected a recorded resource, got deleted"),
        Err(error) => panic!("{address}: {error}: {error:?}"),
    }
}

pub async fn create(
    provider: &DockerProvider,
    resource: Resource,
    context: &ApplyContext,
) -> RecordedResource {
    apply(
        provider,
        action(ActionKind::Create, Some(resource), None),
        context,
    )
    .await
}

pub async fn read(
    provider: &DockerProvider,
    stack: &str,
    desired: &[Resource],
    recorded: &[RecordedResource],
) -> Vec<LiveResource> {
    provider
        .read(&ReadRequest {
            stack: stack.to_string(),
            salt: SALT.to_string(),
            desired: desired.to_vec(),
            recorded: recorded.to_vec(),
        })
        .await
        .expect("read")
}

pub fn find<'a>(live: &'a [LiveResource], address: &str) -> Option<&'a LiveResource> {
    live.iter()
        .find(|resource| resource.address.to_string() == address)
}

/// The container's IP on a network, from `docker inspect`.
pub fn container_ip(container: &str, network: &str) -> String {
    let format = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
    docker(&["inspect", "-f", &format, container]).expect("inspect container IP")
}

/// One HTTP GET with a fresh connection; `None` on any transport failure.
pub fn http_get(address: &str, path: &str) -> Option<(u16, String)> {
    let socket: std::net::SocketAddr = address.parse().ok()?;
    let mut stream = std::net::TcpStream::connect_timeout(&socket, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// [`http_get`] with a read timeout long enough for `/slow` (10 s).
pub fn http_get_slowly(address: &str, path: &str) -> Option<(u16, String)> {
    let socket: std::net::SocketAddr = address.parse().ok()?;
    let mut stream = std::net::TcpStream::connect_timeout(&socket, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// A loopback port for the edge to publish. Port 0 would hand out one of the kernel's
/// ephemeral ports (32768–60999), which any outgoing connection can hold by the time
/// Docker binds it (seen in CI: `address already in use`); the ports below that range are
/// only ever bound on purpose. A counter keeps this process's tests apart; the process id
/// spreads test runs.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const FIRST: u32 = 27000;
    const COUNT: u32 = 1000;
    let offset = std::process::id() % COUNT;
    for _ in 0..COUNT {
        let port = FIRST + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % COUNT;
        let port = u16::try_from(port).expect("the range fits in u16");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in 27000–27999");
}
