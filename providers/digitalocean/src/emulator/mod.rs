//! A stateful stand-in for the DigitalOcean v2 API, for tests, demos and CI.
//!
//! stackctl's DigitalOcean provider is only as trustworthy as the double it is tested
//! against, so the emulator is held to DigitalOcean's published contract
//! (`reference/digitalocean/openapi-subset.yaml`): every endpoint of that subset is
//! served with the documented status codes, wrapping keys, required fields, pagination
//! (`links.pages` + `meta.total`), bearer authentication, the error body
//! `{id, message, request_id}` and the three `ratelimit-*` headers on every answer.
//! The contract tests in `tests/` validate each exchange against the schemas.
//!
//! It is *stateful* where the real service is: a created droplet is `new` with no
//! network, and becomes `active` with a public IPv4 address (configurable, so that a
//! test sshd on 127.0.0.1 can play the droplet) once its `create` action completes
//! after a configurable delay. Power and resize actions lock the droplet while they run;
//! a resize of a running droplet is refused with 422, as DigitalOcean's documentation
//! requires powering off first. Firewalls go `waiting` → `succeeded`; domains come
//! with their NS records; deleting a droplet detaches it from firewalls.
//!
//! Time only moves when a request arrives: state is advanced lazily against a monotonic
//! clock, so there are no background tasks to race with and tests stay deterministic.
//!
//! Faults are injected to prove the client's resilience, either at start (flags or
//! environment of the `stackctl-do-emulator` binary) or at runtime through the admin
//! endpoints under `/_emulator/`:
//!
//! * `server_errors: N` — the next N matching requests get a 500 before doing anything;
//! * `rate_limited: N` — the next N get a 429 with `retry-after` (a burst-limit trip);
//! * `drop_after_commit: N` — the next N matching mutations are carried out, then the
//!   connection is closed without an answer: the client cannot know it succeeded;
//! * `slow_responses: N` — the next N matching requests are carried out, and answered
//!   only after `slow_response_ms` (a client timeout after the work was done);
//! * `only: "POST /v2/droplets"` restricts the faults to one method and path prefix.
//!
//! Admin endpoints (same bearer token): `GET /_emulator/state`, `GET|POST
//! /_emulator/faults`, `GET /_emulator/exchanges`, `POST /_emulator/reset`, and drift
//! makers `POST /_emulator/droplets/{id}/resize-out-of-band {"size"}`,
//! `.../power-off-out-of-band`, `.../retag-out-of-band {"tags"}`.
//!
//! The emulator listens on loopback only: it has one token, no TLS and no persistence.

mod catalog;
mod state;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use state::Exchange;
use state::{Reply, State};

/// Everything the emulator can be told at start.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Must be a loopback address; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The only bearer token accepted.
    pub token: String,
    /// The public IPv4 address every droplet gets when it becomes active.
    pub public_ipv4: String,
    /// How long a droplet stays `new` before its create action completes.
    pub activation_delay: Duration,
    /// How long power, resize and other droplet actions take.
    pub action_delay: Duration,
    /// Requests per hour per token before 429 (DigitalOcean: 5000).
    pub rate_limit_per_hour: u32,
    /// `GET /v2/account/keys` per minute (DigitalOcean: 10).
    pub ssh_key_list_per_minute: u32,
    /// Refuse `resize` with 422 unless the droplet is off.
    pub resize_requires_power_off: bool,
    pub faults: Faults,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: "test-token".to_string(),
            public_ipv4: "127.0.0.1".to_string(),
            activation_delay: Duration::from_millis(200),
            action_delay: Duration::from_millis(50),
            rate_limit_per_hour: 5000,
            ssh_key_list_per_minute: 10,
            resize_requires_power_off: true,
            faults: Faults::default(),
        }
    }
}

/// Faults to inject; counters go down as faults fire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    #[serde(default)]
    pub server_errors: u32,
    #[serde(default)]
    pub rate_limited: u32,
    /// The `retry-after` sent with injected 429s, in seconds.
    #[serde(default = "default_retry_after")]
    pub retry_after_seconds: u64,
    #[serde(default)]
    pub drop_after_commit: u32,
    /// The next N matching requests are carried out but answered only after
    /// `slow_response_ms`: long enough, by default, for a client to time out.
    #[serde(default)]
    pub slow_responses: u32,
    #[serde(default = "default_slow_response_ms")]
    pub slow_response_ms: u64,
    /// `"METHOD /path-prefix"` or `"/path-prefix"`: the requests the faults apply to.
    #[serde(default)]
    pub only: Option<String>,
}

fn default_retry_after() -> u64 {
    1
}

fn default_slow_response_ms() -> u64 {
    2000
}

impl EmulatorConfig {
    /// Reads `--flag value` pairs, falling back to `STACKCTL_DO_EMULATOR_*` variables.
    /// Returns an error naming the flag when a value does not parse.
    pub fn from_args(
        args: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let mut config = EmulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8089)),
            ..EmulatorConfig::default()
        };
        let mut values: std::collections::BTreeMap<String, String> =
            std::collections::BTreeMap::new();
        for (flag, variable) in FLAGS {
            if let Some(value) = env(variable) {
                values.insert(flag.to_string(), value);
            }
        }
        let mut index = 0;
        while index < args.len() {
            let flag = args[index].trim_start_matches("--").to_string();
            if !FLAGS.iter().any(|(known, _)| *known == flag) {
                return Err(format!(
                    "unknown flag `{}`; known flags: {}",
                    args[index],
                    flag_list()
                ));
            }
            if flag == "allow-resize-while-on" {
                values.insert(flag, "true".into());
                index += 1;
                continue;
            }
            let value = args
                .get(index + 1)
                .ok_or_else(|| format!("`--{flag}` needs a value"))?;
            values.insert(flag, value.clone());
            index += 2;
        }
        fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
            text.parse()
                .map_err(|_| format!("`--{flag}` expects a number, got `{text}`"))
        }
        for (flag, value) in &values {
            match flag.as_str() {
                "listen" => {
                    config.listen = value
                        .parse()
                        .map_err(|_| format!("`--listen` expects host:port, got `{value}`"))?
                }
                "token" => config.token = value.clone(),
                "public-ipv4" => config.public_ipv4 = value.clone(),
                "activation-delay-ms" => {
                    config.activation_delay = Duration::from_millis(number(flag, value)?)
                }
                "action-delay-ms" => {
                    config.action_delay = Duration::from_millis(number(flag, value)?)
                }
                "rate-limit" => config.rate_limit_per_hour = number(flag, value)?,
                "ssh-key-list-limit" => config.ssh_key_list_per_minute = number(flag, value)?,
                "fail-500" => config.faults.server_errors = number(flag, value)?,
                "burst-429" => config.faults.rate_limited = number(flag, value)?,
                "retry-after" => config.faults.retry_after_seconds = number(flag, value)?,
                "drop-after-create" => config.faults.drop_after_commit = number(flag, value)?,
                "slow-responses" => config.faults.slow_responses = number(flag, value)?,
                "slow-response-ms" => config.faults.slow_response_ms = number(flag, value)?,
                "fault-only" => config.faults.only = Some(value.clone()),
                "allow-resize-while-on" => config.resize_requires_power_off = value != "true",
                _ => {}
            }
        }
        Ok(config)
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            server_errors: 0,
            rate_limited: 0,
            retry_after_seconds: default_retry_after(),
            drop_after_commit: 0,
            slow_responses: 0,
            slow_response_ms: default_slow_response_ms(),
            only: None,
        }
    }
}

/// Command-line flags and the environment variables that set them too.
const FLAGS: &[(&str, &str)] = &[
    ("listen", "STACKCTL_DO_EMULATOR_LISTEN"),
    ("token", "STACKCTL_DO_EMULATOR_TOKEN"),
    ("public-ipv4", "STACKCTL_DO_EMULATOR_PUBLIC_IPV4"),
    (
        "activation-delay-ms",
        "STACKCTL_DO_EMULATOR_ACTIVATION_DELAY_MS",
    ),
    ("action-delay-ms", "STACKCTL_DO_EMULATOR_ACTION_DELAY_MS"),
    ("rate-limit", "STACKCTL_DO_EMULATOR_RATE_LIMIT"),
    (
        "ssh-key-list-limit",
        "STACKCTL_DO_EMULATOR_SSH_KEY_LIST_LIMIT",
    ),
    ("fail-500", "STACKCTL_DO_EMULATOR_FAIL_500"),
    ("burst-429", "STACKCTL_DO_EMULATOR_BURST_429"),
    ("retry-after", "STACKCTL_DO_EMULATOR_RETRY_AFTER"),
    (
        "drop-after-create",
        "STACKCTL_DO_EMULATOR_DROP_AFTER_CREATE",
    ),
    ("slow-responses", "STACKCTL_DO_EMULATOR_SLOW_RESPONSES"),
    ("slow-response-ms", "STACKCTL_DO_EMULATOR_SLOW_RESPONSE_MS"),
    ("fault-only", "STACKCTL_DO_EMULATOR_FAULT_ONLY"),
    (
        "allow-resize-while-on",
        "STACKCTL_DO_EMULATOR_ALLOW_RESIZE_WHILE_ON",
    ),
];

fn flag_list() -> String {
    FLAGS
        .iter()
        .map(|(flag, _)| format!("--{flag}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the connection task shares with the handle.
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in one handler must not take the whole emulator down with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    address: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Returned instead of an answer to make hyper close the connection unanswered.
#[derive(Debug)]
struct DroppedConnection;

impl std::fmt::Display for DroppedConnection {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("connection dropped on purpose by fault injection")
    }
}

impl std::error::Error for DroppedConnection {}

impl Emulator {
    /// Binds and starts serving in the background of the current tokio runtime.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Emulator> {
        if !config.listen.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "the emulator listens on loopback only; {} is not a loopback address",
                    config.listen
                ),
            ));
        }
        let listener = TcpListener::bind(config.listen).await?;
        let address = listener.local_addr()?;
        let base_url = format!("http://{address}");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(config, base_url)),
        });
        let (stop, mut stopped) = watch::channel(false);
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let connection_shared = serving.clone();
                        let mut connection_stopped = stopped.clone();
                        tokio::spawn(async move {
                            let service = service_fn(move |request| {
                                let shared = connection_shared.clone();
                                async move { answer(shared, request).await }
                            });
                            let connection = http1::Builder::new()
                                .keep_alive(true)
                                .serve_connection(TokioIo::new(stream), service);
                            tokio::select! {
                                _ = connection => {}
                                _ = connection_stopped.changed() => {}
                            }
                        });
                    }
                    _ = stopped.changed() => break,
                }
            }
        });
        Ok(Emulator {
            address,
            shared,
            stop,
            task: Some(task),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:<port>`: what `DIGITALOCEAN_API_URL` should be set to.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.clone()
    }

    /// Everything the emulator holds, as `GET /_emulator/state` shows it.
    pub fn state(&self) -> Json {
        self.shared.lock().snapshot()
    }

    /// Every API request and its answer since start (admin calls excluded).
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.shared.lock().exchanges.clone()
    }

    pub fn clear_exchanges(&self) {
        self.shared.lock().exchanges.clear();
    }

    /// Droplets that exist now, in id order (rendered as the API would).
    pub fn droplets(&self) -> Vec<Json> {
        let mut state = self.shared.lock();
        state.advance();
        state.rendered_droplets()
    }

    /// Changes a droplet's size behind stackctl's back. False if there is no such droplet.
    pub fn resize_out_of_band(&self, droplet_id: i64, size: &str) -> bool {
        self.shared
            .lock()
            .resize_out_of_band(droplet_id, size)
            .is_ok()
    }

    pub fn power_off_out_of_band(&self, droplet_id: i64) -> bool {
        self.shared.lock().power_off_out_of_band(droplet_id)
    }

    pub fn retag_out_of_band(&self, droplet_id: i64, tags: Vec<String>) -> bool {
        self.shared.lock().retag_out_of_band(droplet_id, tags)
    }

    /// Stops serving and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn answer(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DroppedConnection> {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let authorization = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(DroppedConnection),
    };
    let reply = {
        let mut state = shared.lock();
        state.handle(&method, &path, &query, authorization.as_deref(), &body)
    };
    match reply {
        Reply::Drop => Err(DroppedConnection),
        Reply::Answer {
            status,
            headers,
            body,
            delay,
        } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut response = Response::builder()
                .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
            for (name, value) in headers {
                response = response.header(name, value);
            }
            let bytes = match body {
                Some(json) => Bytes::from(json.to_string()),
                None => Bytes::new(),
            };
            response
                .body(Full::new(bytes))
                .or_else(|_| Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))))
                .map_err(|never| match never {})
        }
    }
}
