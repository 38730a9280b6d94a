//! The Docker Engine API client: pure request builders and a thin executor.
//!
//! Every request the provider sends is built here by a pure function (method, path,
//! query, JSON body) so that the exact wire form can be unit-tested with no daemon, and
//! so that every name and value travels as JSON data or percent-encoded query text: a
//! name like `$(reboot)` reaches Docker as those characters, and Docker's own validation
//! answers for it. Nothing here builds a shell string.
//!
//! [`DockerClient`] sends requests over [`stackctl_host::Host::docker_stream`], one stream
//! per call, and several requests per stream when they are independent (pipelined, see
//! [`crate::http`]). It counts streams and round trips so tests can prove that a refresh
//! costs the same for 2 services as for 20.
//!
//! Every path is prefixed with the API version agreed with the daemon on the client's
//! first stream (`api_version.rs`): 1.41 with Docker 20.10, up to 1.52 with Docker 29.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value as Json};
use stackctl_host::{Host, HostError};

use crate::api_version::{self, ApiVersion, VersionError};
use crate::http::{percent_encode, Body, Connection, HttpError, Request, Response};
pub use stackctl_provider::build_context::{self, glob_match, IgnoreRules};

/// The oldest API version, as the request builders' tests write paths.
pub const API_VERSION: &str = "1.41";

pub const LABEL_STACK: &str = "stackctl.stack";
pub const LABEL_RESOURCE: &str = "stackctl.resource";
pub const LABEL_HASH: &str = "stackctl.hash";
/// On built images: the context hash they were built from (skip unchanged builds).
pub const LABEL_CONTEXT_HASH: &str = "stackctl.context_hash";
/// On built images: the build arguments they were built with, as canonical JSON.
pub const LABEL_BUILD_ARGS: &str = "stackctl.build_args";

/// The labels every object the provider creates carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labels {
    pub stack: String,
    pub resource: String,
    pub hash: String,
}

impl Labels {
    pub fn to_json(&self) -> Json {
        json!({
            LABEL_STACK: self.stack,
            LABEL_RESOURCE: self.resource,
            LABEL_HASH: self.hash,
        })
    }
}

/// `{"label": ["stackctl.stack=<stack>"]}`, encoded as Docker's `filters` parameter.
pub fn stack_filter(stack: &str) -> String {
    json!({ "label": [format!("{LABEL_STACK}={stack}")] }).to_string()
}

fn segment(name: &str) -> String {
    percent_encode(name)
}

// ---- lists (refresh) -------------------------------------------------------------

/// Every container on the host, running or not. Unfiltered on purpose: a container that
/// took a service's name by hand (no labels) must be seen too; it is one request either way.
pub fn list_all_containers() -> Request {
    Request::new("GET", "/containers/json").query("all", "1")
}

/// The containers carrying this stack's label (and one resource's, when given).
pub fn list_containers(stack: &str, resource: Option<&str>) -> Request {
    let mut labels = vec![format!("{LABEL_STACK}={stack}")];
    if let Some(resource) = resource {
        labels.push(format!("{LABEL_RESOURCE}={resource}"));
    }
    Request::new("GET", "/containers/json")
        .query("all", "1")
        .query("filters", json!({ "label": labels }).to_string())
}

pub fn list_networks(stack: &str) -> Request {
    Request::new("GET", "/networks").query("filters", stack_filter(stack))
}

pub fn list_volumes(stack: &str) -> Request {
    Request::new("GET", "/volumes").query("filters", stack_filter(stack))
}

// ---- containers ------------------------------------------------------------------

pub fn inspect_container(id_or_name: &str) -> Request {
    Request::new("GET", format!("/containers/{}/json", segment(id_or_name)))
}

/// `body` comes from [`crate::spec::ServiceSpec::create_body`].
pub fn create_container(name: &str, body: Json) -> Request {
    Request::new("POST", "/containers/create")
        .query("name", name)
        .json(body)
}

pub fn connect_network(network: &str, container: &str, aliases: &[String]) -> Request {
    Request::new("POST", format!("/networks/{}/connect", segment(network))).json(json!({
        "Container": container,
        "EndpointConfig": { "Aliases": aliases },
    }))
}

/// Detaches a container from a network, also a running one (`Force`).
pub fn disconnect_network(network: &str, container: &str) -> Request {
    Request::new("POST", format!("/networks/{}/disconnect", segment(network)))
        .json(json!({ "Container": container, "Force": true }))
}

pub fn start_container(id: &str) -> Request {
    Request::new("POST", format!("/containers/{}/start", segment(id)))
}

/// Stops with a grace period in seconds (SIGTERM, then SIGKILL).
pub fn stop_container(id: &str, grace_seconds: u32) -> Request {
    Request::new("POST", format!("/containers/{}/stop", segment(id)))
        .query("t", grace_seconds.to_string())
}

/// Stops with the container's own grace period (its `StopTimeout`, the service's
/// `stop_grace_period` when it was created): SIGTERM, then SIGKILL once it has passed.
/// Docker answers as soon as the process exits.
pub fn stop_container_in_its_grace_period(id: &str) -> Request {
    Request::new("POST", format!("/containers/{}/stop", segment(id)))
}

/// Prepares `command` to run inside a running container, its output captured
/// (`docker exec`); [`start_exec`] runs it.
pub fn create_exec(container: &str, command: &[String]) -> Request {
    Request::new("POST", format!("/containers/{}/exec", segment(container))).json(json!({
        "Cmd": command,
        "AttachStdin": false,
        "AttachStdout": true,
        "AttachStderr": true,
        "Tty": false,
    }))
}

/// Runs a prepared exec and streams its output until it exits; the daemon then closes
/// the connection, which ends the response (no length is sent).
pub fn start_exec(exec_id: &str) -> Request {
    Request::new("POST", format!("/exec/{}/start", segment(exec_id)))
        .json(json!({ "Detach": false, "Tty": false }))
}

/// An exec's state: `Running` and `ExitCode`.
pub fn inspect_exec(exec_id: &str) -> Request {
    Request::new("GET", format!("/exec/{}/json", segment(exec_id)))
}

/// Removes a container, stopping it first (`force`), with its anonymous volumes. Named
/// volumes are never removed here.
pub fn remove_container(id: &str) -> Request {
    Request::new("DELETE", format!("/containers/{}", segment(id)))
        .query("force", "1")
        .query("v", "1")
}

pub fn rename_container(id: &str, new_name: &str) -> Request {
    Request::new("POST", format!("/containers/{}/rename", segment(id))).query("name", new_name)
}

/// Changes the resources Docker can change on a live container.
pub fn update_container(
    id: &str,
    memory: Option<i64>,
    nano_cpus: Option<i64>,
    pids_limit: Option<i64>,
    restart: &str,
) -> Request {
    let mut body = json!({ "RestartPolicy": { "Name": restart } });
    // Docker reads 0 or -1 as "no limit": a limit removed from stack.toml is lifted.
    body["PidsLimit"] = json!(pids_limit.unwrap_or(-1));
    if let Some(memory) = memory {
        body["Memory"] = json!(memory);
        body["MemorySwap"] = json!(-1);
    }
    if let Some(nano_cpus) = nano_cpus {
        body["NanoCpus"] = json!(nano_cpus);
    }
    Request::new("POST", format!("/containers/{}/update", segment(id))).json(body)
}

/// The last `lines` lines of stdout and stderr.
pub fn container_logs(id: &str, lines: u32) -> Request {
    Request::new("GET", format!("/containers/{}/logs", segment(id)))
        .query("stdout", "1")
        .query("stderr", "1")
        .query("tail", lines.to_string())
}

/// Every line of stdout and stderr (a release task's log, kept in the run folder).
pub fn all_container_logs(id: &str) -> Request {
    Request::new("GET", format!("/containers/{}/logs", segment(id)))
        .query("stdout", "1")
        .query("stderr", "1")
        .query("tail", "all")
}

/// Waits until the container exits; answers `{"StatusCode": n}`.
pub fn wait_container(id: &str) -> Request {
    Request::new("POST", format!("/containers/{}/wait", segment(id)))
}

// ---- networks and volumes ----------------------------------------------------------

pub fn create_network(name: &str, internal: bool, labels: &Labels) -> Request {
    create_network_of(name, "bridge", internal, false, labels)
}

/// A network of `driver` (`bridge` on one host, `overlay` across a swarm's nodes);
/// `attachable` lets plain containers (the edge, a release task) join an overlay.
pub fn create_network_of(
    name: &str,
    driver: &str,
    internal: bool,
    attachable: bool,
    labels: &Labels,
) -> Request {
    Request::new("POST", "/networks/create").json(json!({
        "Name": name,
        "CheckDuplicate": true,
        "Driver": driver,
        "Internal": internal,
        "Attachable": attachable,
        "Labels": labels.to_json(),
    }))
}

pub fn inspect_network(name: &str) -> Request {
    Request::new("GET", format!("/networks/{}", segment(name)))
}

pub fn remove_network(name: &str) -> Request {
    Request::new("DELETE", format!("/networks/{}", segment(name)))
}

pub fn create_volume(name: &str, labels: &Labels) -> Request {
    Request::new("POST", "/volumes/create").json(json!({
        "Name": name,
        "Driver": "local",
        "Labels": labels.to_json(),
    }))
}

pub fn inspect_volume(name: &str) -> Request {
    Request::new("GET", format!("/volumes/{}", segment(name)))
}

pub fn remove_volume(name: &str) -> Request {
    Request::new("DELETE", format!("/volumes/{}", segment(name)))
}

// ---- images ----------------------------------------------------------------------

pub fn inspect_image(reference: &str) -> Request {
    Request::new("GET", format!("/images/{}/json", image_path(reference)))
}

/// Image references contain `/`, `:` and `@`, which the daemon's router accepts inside
/// the name; they are left as they are and everything else is encoded.
fn image_path(reference: &str) -> String {
    reference
        .split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/")
        .replace("%3A", ":")
        .replace("%40", "@")
}

/// Builds `tag` from a tarred context with the legacy builder. `labels` mark the image as
/// this stack's and record the context hash it came from; `build_args` fill the
/// Dockerfile's `ARG`s (sent only when there are some).
pub fn build_image(
    tag: &str,
    dockerfile: &str,
    labels: &BTreeMap<String, String>,
    build_args: &BTreeMap<String, String>,
    context_tar: Vec<u8>,
) -> Request {
    let mut request = Request::new("POST", "/build")
        .query("t", tag)
        .query("dockerfile", dockerfile)
        .query("labels", json!(labels).to_string());
    if !build_args.is_empty() {
        request = request.query("buildargs", json!(build_args).to_string());
    }
    let mut request = request.query("rm", "1").query("forcerm", "1");
    request.body = Body::Tar(context_tar);
    request
}

/// Pulls `reference` (`name:tag`): an image absent with `pull = "missing"`, or any with
/// `pull = "always"`.
pub fn pull_image(reference: &str) -> Request {
    let (name, tag) = split_reference(reference);
    Request::new("POST", "/images/create")
        .query("fromImage", name)
        .query("tag", tag)
}

/// Asks the daemon which manifest digest the registry serves for `reference` now
/// (`{"Descriptor": {"digest": "sha256:…"}}`); the daemon asks the registry.
pub fn registry_digest(reference: &str) -> Request {
    Request::new(
        "GET",
        format!("/distribution/{}/json", image_path(reference)),
    )
}

/// `registry:5000/a/b:tag` → (`registry:5000/a/b`, `tag`); no tag → `latest`.
pub fn split_reference(reference: &str) -> (String, String) {
    let last_slash = reference.rfind('/').map(|index| index + 1).unwrap_or(0);
    match reference[last_slash..].rfind(':') {
        Some(colon) if !reference.contains('@') => {
            let split = last_slash + colon;
            (
                reference[..split].to_string(),
                reference[split + 1..].to_string(),
            )
        }
        _ => (reference.to_string(), "latest".to_string()),
    }
}

/// The images carrying this stack's label: the ones stackctl built for it.
pub fn list_stack_images(stack: &str) -> Request {
    Request::new("GET", "/images/json").query("filters", stack_filter(stack))
}

/// Removes an image by id with every tag it has, never forcibly: an image a container
/// still uses answers 409 and stays.
pub fn remove_image_by_id(id: &str) -> Request {
    Request::new("DELETE", format!("/images/{}", image_path(id)))
}

/// Removes an image tag; an image still used by a container is left (409 is tolerated).
pub fn remove_image(reference: &str) -> Request {
    let mut request = inspect_image(reference);
    request.method = "DELETE";
    request.path = request.path.trim_end_matches("/json").to_string();
    request
}

/// Makes a build context tarball from a directory: exactly the entries
/// [`build_context::walk`] lists (the same walk the engine hashes), so what is hashed is
/// what is built.
pub fn context_tarball(context: &std::path::Path, dockerfile: &str) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    for entry in build_context::walk(context, dockerfile)? {
        if entry.is_directory {
            builder.append_dir(&entry.relative, &entry.path)?;
        } else {
            builder.append_path_with_name(&entry.path, &entry.relative)?;
        }
    }
    builder.into_inner()
}

// ---- the executor ----------------------------------------------------------------

/// Why a call to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The daemon did not answer in time (a hung daemon or transport must not hang a run).
    #[error("the Docker daemon did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// stackctl and the daemon have no Engine API version in common.
    #[error(transparent)]
    Version(#[from] VersionError),
    /// The daemon answered with an error status.
    #[error("Docker answered {status} to {method} {path}: {message}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        message: String,
    },
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Sends requests to the daemon of one host.
#[derive(Clone)]
pub struct DockerClient {
    host: Arc<dyn Host>,
    /// Agreed with the daemon on the first stream, then reused by every clone.
    api_version: Arc<tokio::sync::OnceCell<ApiVersion>>,
    streams_opened: Arc<AtomicUsize>,
    round_trips: Arc<AtomicUsize>,
    requests_sent: Arc<AtomicUsize>,
    timeout: std::time::Duration,
}

/// How long one batch may take unless a caller says otherwise (a build says otherwise).
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// What a client has cost so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientCounters {
    pub streams_opened: usize,
    pub round_trips: usize,
    pub requests_sent: usize,
}

impl DockerClient {
    pub fn new(host: Arc<dyn Host>) -> Self {
        DockerClient {
            host,
            api_version: Arc::default(),
            streams_opened: Arc::default(),
            round_trips: Arc::default(),
            requests_sent: Arc::default(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same client (same host, same counters) with another per-batch timeout.
    pub fn with_timeout(&self, timeout: std::time::Duration) -> DockerClient {
        DockerClient {
            timeout,
            ..self.clone()
        }
    }

    pub fn host(&self) -> &Arc<dyn Host> {
        &self.host
    }

    /// How long one batch may take (the operation timeout).
    pub fn timeout(&self) -> std::time::Duration {
        self.timeout
    }

    pub fn counters(&self) -> ClientCounters {
        ClientCounters {
            streams_opened: self.streams_opened.load(Ordering::Relaxed),
            round_trips: self.round_trips.load(Ordering::Relaxed),
            requests_sent: self.requests_sent.load(Ordering::Relaxed),
        }
    }

    /// Opens a connection for several batches in a row.
    pub async fn connect(&self) -> Result<CountedConnection, ClientError> {
        let stream = self.host.docker_stream().await?;
        self.streams_opened.fetch_add(1, Ordering::Relaxed);
        let mut connection = CountedConnection {
            connection: Connection::new(stream, API_VERSION),
            client: self.clone(),
        };
        let version = match self.api_version.get() {
            Some(version) => *version,
            None => {
                // Once per client, on the stream just opened: one more round trip.
                let answer = connection
                    .batch(&[Request::new("GET", "/version").unversioned()])
                    .await?
                    .pop()
                    .ok_or_else(|| ClientError::Http(HttpError::Malformed("no response".into())))?;
                let answer = check("GET", "/version", answer)?
                    .json()
                    .map_err(|error| ClientError::Http(HttpError::Malformed(error.to_string())))?;
                let version = api_version::negotiate(&answer)?;
                let _ = self.api_version.set(version);
                version
            }
        };
        connection.connection.use_api_version(&version.to_string());
        Ok(connection)
    }

    /// The Engine API version agreed with the daemon, once a stream was opened.
    pub fn api_version(&self) -> Option<ApiVersion> {
        self.api_version.get().copied()
    }

    /// Sends one request; any status is returned.
    pub async fn send_raw(&self, request: Request) -> Result<Response, ClientError> {
        let mut connection = self.connect().await?;
        let mut responses = connection.batch(std::slice::from_ref(&request)).await?;
        responses
            .pop()
            .ok_or_else(|| ClientError::Http(HttpError::Malformed("no response".into())))
    }

    /// Sends one request whose answer is a stream of lines (a build's or a pull's
    /// progress), handing each line to `on_line` as it arrives; fails on a non-2xx status.
    pub async fn send_streaming(
        &self,
        request: Request,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Response, ClientError> {
        let method = request.method;
        let path = request.path.clone();
        let mut connection = self.connect().await?;
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        self.requests_sent.fetch_add(1, Ordering::Relaxed);
        let exchange = connection.connection.exchange_streaming(&request, on_line);
        let response = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result?,
            Err(_) => return Err(ClientError::Timeout(self.timeout)),
        };
        check(method, &path, response)
    }

    /// Sends one request and fails on a non-2xx status.
    pub async fn send(&self, request: Request) -> Result<Response, ClientError> {
        let method = request.method;
        let path = request.path.clone();
        let response = self.send_raw(request).await?;
        check(method, &path, response)
    }

    /// Sends one request and parses the JSON answer.
    pub async fn send_json(&self, request: Request) -> Result<Json, ClientError> {
        let response = self.send(request).await?;
        response
            .json()
            .map_err(|error| ClientError::Http(HttpError::Malformed(error.to_string())))
    }
}

/// Turns a non-2xx response into [`ClientError::Status`].
pub fn check(
    method: &'static str,
    path: &str,
    response: Response,
) -> Result<Response, ClientError> {
    if response.is_success() {
        Ok(response)
    } else {
        Err(ClientError::Status {
            method,
            path: path.to_string(),
            status: response.status,
            message: response.error_message(),
        })
    }
}

/// A connection whose batches are counted on its client.
pub struct CountedConnection {
    connection: Connection,
    client: DockerClient,
}

impl CountedConnection {
    /// Sends every request in one write and reads every response: one round trip.
    pub async fn batch(&mut self, requests: &[Request]) -> Result<Vec<Response>, ClientError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        self.client.round_trips.fetch_add(1, Ordering::Relaxed);
        self.client
            .requests_sent
            .fetch_add(requests.len(), Ordering::Relaxed);
        let timeout = self.client.timeout;
        match tokio::time::timeout(timeout, self.connection.exchange(requests)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(ClientError::Timeout(timeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        Labels {
            stack: "shop".into(),
            resource: "network.backend".into(),
            hash: "sha256:ab".into(),
        }
    }

    #[test]
    fn the_stacks_images_are_listed_by_label_and_removed_by_id_without_force() {
        assert_eq!(
            list_stack_images("shop").target(API_VERSION),
            "/v1.41/images/json?filters=%7B%22label%22%3A%5B%22stackctl.stack%3Dshop%22%5D%7D"
        );
        let remove = remove_image_by_id("sha256:0123abcd");
        assert_eq!(remove.method, "DELETE");
        assert_eq!(remove.target(API_VERSION), "/v1.41/images/sha256:0123abcd");
    }

    #[test]
    fn lists_filter_by_the_stack_label() {
        let request = list_containers("shop", Some("service.api"));
        assert_eq!(request.method, "GET");
        assert_eq!(
            request.target(API_VERSION),
            "/v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22stackctl.stack%3Dshop%22%2C%22stackctl.resource%3Dservice.api%22%5D%7D"
        );
        assert_eq!(list_networks("shop").path, "/networks");
        assert_eq!(
            list_volumes("shop").query[0].1,
            r#"{"label":["stackctl.stack=shop"]}"#
        );
    }

    #[test]
    fn creates_networks_and_volumes_with_labels() {
        let request = create_network("shop_backend", true, &labels());
        assert_eq!(
            (request.method, request.path.as_str()),
            ("POST", "/networks/create")
        );
        assert_eq!(
            request.body,
            Body::Json(json!({
                "Name": "shop_backend", "CheckDuplicate": true, "Driver": "bridge",
                "Internal": true, "Attachable": false,
                "Labels": {"stackctl.stack": "shop", "stackctl.resource": "network.backend", "stackctl.hash": "sha256:ab"}
            }))
        );
        let volume = create_volume("shop_pgdata", &labels());
        assert_eq!(
            volume.body,
            Body::Json(
                json!({"Name": "shop_pgdata", "Driver": "local", "Labels": labels().to_json()})
            )
        );
        assert_eq!(remove_volume("shop_pgdata").path, "/volumes/shop_pgdata");
    }

    #[test]
    fn exec_requests_run_a_command_with_its_output_captured() {
        let command = vec!["/server".to_string(), "health".to_string()];
        let create = create_exec("abc", &command);
        assert_eq!(
            (create.method, create.target(API_VERSION).as_str()),
            ("POST", "/v1.41/containers/abc/exec")
        );
        assert_eq!(
            create.body,
            Body::Json(json!({
                "Cmd": ["/server", "health"], "AttachStdin": false, "AttachStdout": true,
                "AttachStderr": true, "Tty": false
            }))
        );
        let start = start_exec("e1");
        assert_eq!(start.target(API_VERSION), "/v1.41/exec/e1/start");
        assert_eq!(
            start.body,
            Body::Json(json!({"Detach": false, "Tty": false}))
        );
        assert_eq!(
            inspect_exec("e1").target(API_VERSION),
            "/v1.41/exec/e1/json"
        );
    }

    #[test]
    fn container_lifecycle_requests() {
        assert_eq!(
            stop_container_in_its_grace_period("abc").target(API_VERSION),
            "/v1.41/containers/abc/stop"
        );
        assert_eq!(start_container("abc").path, "/containers/abc/start");
        assert_eq!(
            stop_container("abc", 5).target(API_VERSION),
            "/v1.41/containers/abc/stop?t=5"
        );
        assert_eq!(
            remove_container("abc").target(API_VERSION),
            "/v1.41/containers/abc?force=1&v=1"
        );
        assert_eq!(
            rename_container("abc", "shop-web").target(API_VERSION),
            "/v1.41/containers/abc/rename?name=shop-web"
        );
        assert_eq!(
            container_logs("abc", 20).target(API_VERSION),
            "/v1.41/containers/abc/logs?stdout=1&stderr=1&tail=20"
        );
        let update = update_container("abc", Some(1 << 20), Some(500_000_000), Some(256), "always");
        assert_eq!(
            update.body,
            Body::Json(
                json!({"RestartPolicy": {"Name": "always"}, "Memory": 1048576, "MemorySwap": -1, "NanoCpus": 500000000, "PidsLimit": 256})
            )
        );
        let unlimited = update_container("abc", None, None, None, "no");
        assert_eq!(
            unlimited.body,
            Body::Json(json!({"RestartPolicy": {"Name": "no"}, "PidsLimit": -1}))
        );
        let disconnect = disconnect_network("shop_edge", "abc");
        assert_eq!(disconnect.path, "/networks/shop_edge/disconnect");
        assert_eq!(
            disconnect.body,
            Body::Json(json!({"Container": "abc", "Force": true}))
        );
        let connect = connect_network("shop_edge", "abc", &["api".to_string()]);
        assert_eq!(connect.path, "/networks/shop_edge/connect");
        assert_eq!(
            connect.body,
            Body::Json(json!({"Container": "abc", "EndpointConfig": {"Aliases": ["api"]}}))
        );
    }

    #[test]
    fn hostile_names_are_encoded_in_paths() {
        assert_eq!(
            inspect_container("x;$(reboot)`id`").path,
            "/containers/x%3B%24%28reboot%29%60id%60/json"
        );
        assert_eq!(remove_network("a/../b").path, "/networks/a%2F..%2Fb");
    }

    #[test]
    fn image_requests() {
        assert_eq!(
            inspect_image("stackctl-test/server:latest").path,
            "/images/stackctl-test/server:latest/json"
        );
        assert_eq!(remove_image("shop/api:0123").path, "/images/shop/api:0123");
        assert_eq!(
            split_reference("traefik:v3.3"),
            ("traefik".into(), "v3.3".into())
        );
        assert_eq!(
            split_reference("registry:5000/a/b"),
            ("registry:5000/a/b".into(), "latest".into())
        );
        assert_eq!(
            split_reference("registry:5000/a/b:1.2"),
            ("registry:5000/a/b".into(), "1.2".into())
        );
        assert_eq!(
            registry_digest("ghcr.io/acme/api:1.4").target(API_VERSION),
            "/v1.41/distribution/ghcr.io/acme/api:1.4/json"
        );
        let pull = pull_image("traefik:v3.3");
        assert_eq!(
            pull.target(API_VERSION),
            "/v1.41/images/create?fromImage=traefik&tag=v3.3"
        );
        let labels = BTreeMap::from([(LABEL_CONTEXT_HASH.to_string(), "sha256:c".to_string())]);
        let build = build_image(
            "shop/api:c",
            "Dockerfile",
            &labels,
            &BTreeMap::new(),
            vec![1, 2],
        );
        assert_eq!(
            build.target(API_VERSION),
            "/v1.41/build?t=shop%2Fapi%3Ac&dockerfile=Dockerfile&labels=%7B%22stackctl.context_hash%22%3A%22sha256%3Ac%22%7D&rm=1&forcerm=1"
        );
        assert_eq!(build.body, Body::Tar(vec![1, 2]));
    }

    #[test]
    fn build_arguments_go_to_the_daemon_as_json() {
        let build_args = BTreeMap::from([
            ("BASE".to_string(), "local/bookworm:1".to_string()),
            ("MODE".to_string(), "a b&c".to_string()),
        ]);
        let build = build_image(
            "shop/api:c",
            "Dockerfile",
            &BTreeMap::new(),
            &build_args,
            vec![],
        );
        assert_eq!(
            build.target(API_VERSION),
            "/v1.41/build?t=shop%2Fapi%3Ac&dockerfile=Dockerfile&labels=%7B%7D&buildargs=%7B%22BASE%22%3A%22local%2Fbookworm%3A1%22%2C%22MODE%22%3A%22a%20b%26c%22%7D&rm=1&forcerm=1"
        );
    }

    #[test]
    fn dockerignore_globs() {
        assert!(glob_match("*.log", "a.log"));
        assert!(!glob_match("*.log", "dir/a.log"));
        assert!(glob_match("**/*.log", "dir/deep/a.log"));
        assert!(glob_match("**/*.log", "a.log"));
        assert!(glob_match("a?c", "abc"));
        let rules = IgnoreRules::parse("node_modules\n!node_modules/keep\n");
        assert!(rules.excludes("node_modules/x/y.js"));
        assert!(!rules.excludes("node_modules/keep"));
        assert!(!rules.excludes("src/main.rs"));
    }

    #[test]
    fn tarball_holds_the_context_files_sorted() {
        let directory =
            std::env::temp_dir().join(format!("stackctl-docker-tar-{}", std::process::id()));
        std::fs::create_dir_all(directory.join("sub")).unwrap();
        std::fs::create_dir_all(directory.join(".git")).unwrap();
        std::fs::write(directory.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(directory.join("sub/b.txt"), "b").unwrap();
        std::fs::write(directory.join(".git/HEAD"), "x").unwrap();
        std::fs::write(directory.join(".env"), "SECRET=1").unwrap();
        std::fs::write(directory.join("sub/c.log"), "c").unwrap();
        std::fs::write(
            directory.join(".dockerignore"),
            "# comment\n.env\n**/*.log\nsub\n!sub/b.txt\nDockerfile\n",
        )
        .unwrap();
        let bytes = context_tarball(&directory, "Dockerfile").unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec![".dockerignore", "Dockerfile", "sub/b.txt"]);
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
