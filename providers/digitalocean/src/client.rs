//! A small DigitalOcean v2 API client, built for a reconciler that must never do the
//! same thing twice by accident.
//!
//! Every call goes through [`Client::send`], which owns three concerns:
//!
//! * **Authentication.** The token lives in a [`Token`] whose `Debug` and `Display`
//!   print `[redacted]`, and the `Authorization` header is marked sensitive so that
//!   neither reqwest nor hyper will ever format it. Log lines name the method and the
//!   path, never the headers.
//! * **Retries.** DigitalOcean answers `429` when a token's budget is spent (with
//!   `retry-after` on the per-minute burst limit, and always `ratelimit-reset`), and
//!   occasionally `5xx` or nothing at all. Retrying is safe only where repeating the
//!   request cannot duplicate its effect: reads, `PUT` and `DELETE` are retried on
//!   429, 5xx, timeouts and dropped connections; a `POST` is retried only when the
//!   server certainly did not act on it (a 429, which is a rejection before processing,
//!   or a connection that never opened). Any other `POST` failure is *ambiguous*: the
//!   object may exist. Callers resolve that by looking the object up before trying
//!   again ([`Client::create_without_duplicates`]). Every loop is bounded both in
//!   attempts and in total time ([`RetryPolicy`]); the delay grows exponentially, with
//!   jitter so that parallel applies do not retry in lockstep, and never undercuts the
//!   server's `retry-after`.
//! * **Errors.** A non-2xx answer is decoded into DigitalOcean's error body (`id`,
//!   `message`, `request_id`) and returned as [`ClientError::Api`]; a body that is not
//!   JSON is kept as the message, so nothing the server said is lost.
//!
//! Lists are paginated by following `links.pages.next`, but always against the
//! configured base URL: only `page`/`per_page` and the filters are taken from the link,
//! so that a test emulator and the real API behave alike.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::api::{
    Action, Domain, DomainRecord, DomainRecordRequest, Droplet, Firewall, FirewallRequest, SshKey,
};

/// The public API; overridden by `DIGITALOCEAN_API_URL`.
pub const DEFAULT_BASE_URL: &str = "https://api.digitalocean.com";
/// The variable users are told to set.
pub const TOKEN_VARIABLE: &str = "DIGITALOCEAN_TOKEN";
/// Accepted too, because doctl and Terraform's provider read it.
pub const ALTERNATE_TOKEN_VARIABLE: &str = "DIGITALOCEAN_ACCESS_TOKEN";
pub const BASE_URL_VARIABLE: &str = "DIGITALOCEAN_API_URL";

/// The largest page DigitalOcean serves; fewer pages means fewer rate-limited calls.
const PAGE_SIZE: u32 = 200;
/// A list longer than this many pages is treated as a server bug, not followed forever.
const MAX_PAGES: u32 = 500;

/// An API token. It can only be read through [`Token::expose`], and prints as `[redacted]`.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Self {
        Token(token.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[redacted]")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[redacted]")
    }
}

/// How hard the client tries before giving up.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts per call, the first one included.
    pub max_attempts: u32,
    /// The delay before the first retry; it doubles with every further one.
    pub initial_backoff: Duration,
    /// No single back-off is longer than this (a server's `retry-after` still wins).
    pub max_backoff: Duration,
    /// A call gives up rather than start a wait that would end after this much time.
    pub max_total: Duration,
    /// The longest wait for `ratelimit-reset` when a 429 carries no `retry-after`.
    pub max_rate_limit_wait: Duration,
    /// How long one HTTP request may take before it counts as timed out.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_total: Duration::from_secs(300),
            max_rate_limit_wait: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Short waits for tests against the local emulator.
    pub fn fast() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(200),
            max_total: Duration::from_secs(30),
            max_rate_limit_wait: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
        }
    }

    /// Exponential back-off for retry number `retry` (1-based), with jitter in [50%, 100%].
    fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let full = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        full.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// Where the client talks to and as whom.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub base_url: String,
    /// `None` when no token was configured: every call then fails with
    /// [`ClientError::MissingToken`] before touching the network.
    pub token: Option<Token>,
    pub retry: RetryPolicy,
    /// Items per list page (DigitalOcean allows 1 to 200).
    pub page_size: u32,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, token: Option<Token>) -> Self {
        ClientConfig {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            token,
            retry: RetryPolicy::default(),
            page_size: PAGE_SIZE,
        }
    }

    /// Reads `DIGITALOCEAN_TOKEN` (or `DIGITALOCEAN_ACCESS_TOKEN`) and
    /// `DIGITALOCEAN_API_URL`. A missing token is not an error here: it is reported, with
    /// the variable to set, by the first call that needs it.
    pub fn from_env() -> Self {
        let token = [TOKEN_VARIABLE, ALTERNATE_TOKEN_VARIABLE]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .map(|value| value.trim().to_string())
            .find(|value| !value.is_empty())
            .map(Token::new);
        let base_url = std::env::var(BASE_URL_VARIABLE)
            .ok()
            .filter(|value| !value.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        ClientConfig::new(base_url, token)
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// DigitalOcean's error body, with the request that earned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// DigitalOcean's snake_case error name: `not_found`, `unauthorized`, …
    pub id: String,
    pub message: String,
    pub request_id: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "DigitalOcean answered {} {} with {} {}: {}",
            self.method, self.path, self.status, self.id, self.message
        )?;
        if let Some(request_id) = &self.request_id {
            write!(formatter, " (request id {request_id})")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no DigitalOcean API token: set {TOKEN_VARIABLE} (or {ALTERNATE_TOKEN_VARIABLE})")]
    MissingToken,
    #[error("{0}")]
    Api(Box<ApiError>),
    /// No HTTP answer. `ambiguous` is true when the request may have reached the server
    /// (a timeout, a connection dropped mid-exchange), false when it certainly did not.
    #[error("{method} {path}: {message}")]
    Transport {
        method: String,
        path: String,
        message: String,
        ambiguous: bool,
    },
    #[error("unexpected response to {method} {path}: {message}")]
    Decode {
        method: String,
        path: String,
        message: String,
    },
    #[error("gave up after {attempts} attempts over {elapsed:?}; last error: {last}")]
    RetriesExhausted {
        attempts: u32,
        elapsed: Duration,
        last: Box<ClientError>,
    },
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Failed(String),
}

impl ClientError {
    /// The innermost error (unwrapping [`ClientError::RetriesExhausted`]).
    pub fn root(&self) -> &ClientError {
        match self {
            ClientError::RetriesExhausted { last, .. } => last.root(),
            other => other,
        }
    }

    pub fn api(&self) -> Option<&ApiError> {
        match self.root() {
            ClientError::Api(error) => Some(error.as_ref()),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        self.api().map(|error| error.status)
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The token is missing or DigitalOcean refused it.
    pub fn is_credentials(&self) -> bool {
        matches!(self.root(), ClientError::MissingToken) || matches!(self.status(), Some(401 | 403))
    }

    /// The request may or may not have taken effect: a create must look before retrying.
    pub fn is_ambiguous(&self) -> bool {
        match self.root() {
            ClientError::Transport { ambiguous, .. } => *ambiguous,
            ClientError::Api(error) => error.status >= 500,
            _ => false,
        }
    }
}

/// Whether repeating a request could duplicate its effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotence {
    /// GET, PUT, DELETE: retried on anything transient.
    Idempotent,
    /// POST: retried only when the server certainly did not act on it.
    NotIdempotent,
}

/// A successful answer: status and JSON body (`Null` for 204).
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Json,
}

/// Timing of the loops that wait for DigitalOcean to finish something.
#[derive(Clone, Debug)]
pub struct PollPolicy {
    pub interval: Duration,
    /// The whole wait (an action, a droplet becoming active) gives up after this.
    pub timeout: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            interval: Duration::from_secs(3),
            timeout: Duration::from_secs(600),
        }
    }
}

/// Below this many remaining requests in the hourly budget, polling slows down.
const LOW_BUDGET: i64 = 100;

/// The DigitalOcean v2 client.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    config: ClientConfig,
    /// The last `ratelimit-remaining` seen (-1 before any answer), shared by clones.
    remaining_budget: Arc<AtomicI64>,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(config.retry.request_timeout)
            .connect_timeout(config.retry.request_timeout)
            .user_agent(concat!("stackctl-digitalocean/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                ClientError::Failed(format!("cannot build the HTTP client: {error}"))
            })?;
        Ok(Client {
            http,
            config,
            remaining_budget: Arc::new(AtomicI64::new(-1)),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn base_url(&self) -> &str {
        &self.config.base_url
    }

    fn headers(&self) -> Result<HeaderMap, ClientError> {
        let token = self
            .config
            .token
            .as_ref()
            .ok_or(ClientError::MissingToken)?;
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                ClientError::Failed(format!(
                    "the value of {TOKEN_VARIABLE} is not a valid header value"
                ))
            })?;
        // Sensitive headers are never formatted by the http stack, even at trace level.
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value);
        Ok(headers)
    }

    /// Sends one logical request, retrying as the module documentation describes.
    /// `path` starts with `/v2/` and may carry a query string.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Json>,
        idempotence: Idempotence,
    ) -> Result<Answer, ClientError> {
        let headers = self.headers()?;
        let policy = &self.config.retry;
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let outcome = self.send_once(&method, path, body, headers.clone()).await;
            let (error, server_wait) = match outcome {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            let retriable = match (&error, idempotence) {
                (ClientError::Api(api), _) if api.status == 429 => true,
                (ClientError::Api(api), Idempotence::Idempotent) => api.status >= 500,
                (ClientError::Transport { .. }, Idempotence::Idempotent) => true,
                (
                    ClientError::Transport {
                        ambiguous: false, ..
                    },
                    Idempotence::NotIdempotent,
                ) => true,
                _ => false,
            };
            if !retriable {
                return Err(error);
            }
            let mut delay = policy.backoff(attempt);
            if let Some(wait) = server_wait {
                // Never retry before the server said we may; a little jitter on top keeps
                // parallel callers from arriving in the same instant.
                delay = wait.min(policy.max_rate_limit_wait)
                    + Duration::from_millis(fastrand::u64(0..100));
            }
            let elapsed = started.elapsed();
            if attempt >= policy.max_attempts || elapsed + delay > policy.max_total {
                return Err(ClientError::RetriesExhausted {
                    attempts: attempt,
                    elapsed,
                    last: Box::new(error),
                });
            }
            tracing::debug!(
                method = %method,
                path,
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "retrying DigitalOcean request"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One HTTP exchange. On failure, also returns how long the server asked us to wait.
    async fn send_once(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Json>,
        headers: HeaderMap,
    ) -> Result<Answer, (ClientError, Option<Duration>)> {
        let url = format!("{}{}", self.config.base_url, path);
        let mut request = self.http.request(method.clone(), &url).headers(headers);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|error| {
            // A connect failure means the request never left; anything later (a timeout,
            // a connection closed before the answer) may have been acted upon.
            let ambiguous = !error.is_connect();
            (
                ClientError::Transport {
                    method: method.to_string(),
                    path: path.to_string(),
                    message: describe_transport_error(&error),
                    ambiguous,
                },
                None,
            )
        })?;
        let status = response.status();
        let server_wait = wait_requested(response.headers(), status);
        if let Some(remaining) = response
            .headers()
            .get("ratelimit-remaining")
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.trim().parse::<i64>().ok())
        {
            self.remaining_budget.store(remaining, Ordering::Relaxed);
        }
        let text = response.text().await.map_err(|error| {
            (
                ClientError::Transport {
                    method: method.to_string(),
                    path: path.to_string(),
                    message: describe_transport_error(&error),
                    ambiguous: true,
                },
                None,
            )
        })?;
        tracing::debug!(method = %method, path, status = status.as_u16(), "DigitalOcean request");
        if status.is_success() {
            let body = if text.trim().is_empty() {
                Json::Null
            } else {
                serde_json::from_str(&text).map_err(|error| {
                    (
                        ClientError::Decode {
                            method: method.to_string(),
                            path: path.to_string(),
                            message: format!("the body is not JSON: {error}"),
                        },
                        None,
                    )
                })?
            };
            return Ok(Answer {
                status: status.as_u16(),
                body,
            });
        }
        Err((api_error(method, path, status, &text), server_wait))
    }

    /// The last `ratelimit-remaining` DigitalOcean reported, if any answer carried one.
    pub fn remaining_budget(&self) -> Option<i64> {
        let remaining = self.remaining_budget.load(Ordering::Relaxed);
        (remaining >= 0).then_some(remaining)
    }

    /// The pause between two polls: four times longer when the hourly budget runs low,
    /// so that waiting for a droplet never starves the rest of an apply.
    fn poll_pause(&self, poll: &PollPolicy) -> Duration {
        match self.remaining_budget() {
            Some(remaining) if remaining < LOW_BUDGET => poll.interval.saturating_mul(4),
            _ => poll.interval,
        }
    }

    /// GET and decode the object under `key`.
    async fn get_object<T: DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
    ) -> Result<T, ClientError> {
        let answer = self
            .send(Method::GET, path, None, Idempotence::Idempotent)
            .await?;
        decode_key(&answer.body, key, "GET", path)
    }

    /// GET that maps 404 to `None`.
    async fn find_object<T: DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
    ) -> Result<Option<T>, ClientError> {
        match self.get_object(path, key).await {
            Ok(found) => Ok(Some(found)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Every item of a paginated list. `query` holds the filters; paging is added here.
    pub async fn list_all<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        key: &str,
    ) -> Result<Vec<T>, ClientError> {
        let mut items = Vec::new();
        let mut page_query: Vec<(String, String)> = query
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        page_query.push((
            "per_page".into(),
            self.config.page_size.clamp(1, PAGE_SIZE).to_string(),
        ));
        for _ in 0..MAX_PAGES {
            let full_path = format!("{path}?{}", encode_query(&page_query));
            let answer = self
                .send(Method::GET, &full_path, None, Idempotence::Idempotent)
                .await?;
            let page: Vec<T> = decode_key(&answer.body, key, "GET", &full_path)?;
            items.extend(page);
            let next = answer
                .body
                .pointer("/links/pages/next")
                .and_then(Json::as_str)
                .map(str::to_string);
            match next {
                // Only the query of `next` is used: the host and path stay ours.
                Some(next) => match next.split_once('?') {
                    Some((_, next_query)) => {
                        page_query = form_urlencoded::parse(next_query.as_bytes())
                            .map(|(name, value)| (name.into_owned(), value.into_owned()))
                            .collect();
                    }
                    None => break,
                },
                None => return Ok(items),
            }
        }
        Err(ClientError::Failed(format!(
            "GET {path} returned more than {MAX_PAGES} pages; refusing to follow further"
        )))
    }

    /// `GET /v2/account`: the cheapest call that proves the token works.
    pub async fn check_credentials(&self) -> Result<(), ClientError> {
        self.send(Method::GET, "/v2/account", None, Idempotence::Idempotent)
            .await
            .map(|_| ())
    }

    // ----- droplets -------------------------------------------------------------------

    pub async fn list_droplets_by_tag(&self, tag: &str) -> Result<Vec<Droplet>, ClientError> {
        self.list_all("/v2/droplets", &[("tag_name", tag)], "droplets")
            .await
    }

    pub async fn list_droplets_by_name(&self, name: &str) -> Result<Vec<Droplet>, ClientError> {
        self.list_all("/v2/droplets", &[("name", name)], "droplets")
            .await
    }

    pub async fn get_droplet(&self, id: i64) -> Result<Option<Droplet>, ClientError> {
        self.find_object(&format!("/v2/droplets/{id}"), "droplet")
            .await
    }

    /// One create attempt. Returns the droplet and the id of its `create` action.
    pub async fn create_droplet(&self, body: &Json) -> Result<(Droplet, Option<i64>), ClientError> {
        let path = "/v2/droplets";
        let answer = self
            .send(Method::POST, path, Some(body), Idempotence::NotIdempotent)
            .await?;
        let droplet = decode_key(&answer.body, "droplet", "POST", path)?;
        let action_id = answer
            .body
            .pointer("/links/actions/0/id")
            .and_then(Json::as_i64);
        Ok((droplet, action_id))
    }

    /// Returns false when the droplet was already gone.
    pub async fn delete_droplet(&self, id: i64) -> Result<bool, ClientError> {
        self.delete(&format!("/v2/droplets/{id}"), None).await
    }

    /// Starts a droplet action (`power_off`, `resize`, …). A lost answer is not retried
    /// here: a second action on a droplet still running the first is refused (422), so
    /// the caller watches the droplet instead.
    pub async fn droplet_action(&self, id: i64, body: &Json) -> Result<Action, ClientError> {
        let path = format!("/v2/droplets/{id}/actions");
        let answer = self
            .send(Method::POST, &path, Some(body), Idempotence::NotIdempotent)
            .await?;
        decode_key(&answer.body, "action", "POST", &path)
    }

    pub async fn get_action(&self, id: i64) -> Result<Action, ClientError> {
        self.get_object(&format!("/v2/actions/{id}"), "action")
            .await
    }

    /// Polls an action until it completes; `errored` and running out of time are failures.
    pub async fn wait_for_action(&self, id: i64, poll: &PollPolicy) -> Result<Action, ClientError> {
        let started = Instant::now();
        loop {
            let action = self.get_action(id).await?;
            match action.status.as_str() {
                "completed" => return Ok(action),
                "errored" => {
                    return Err(ClientError::Failed(format!(
                        "DigitalOcean action {id} ({}) errored",
                        action.kind
                    )))
                }
                _ => {}
            }
            let pause = self.poll_pause(poll);
            if started.elapsed() + pause > poll.timeout {
                return Err(ClientError::Timeout(format!(
                    "DigitalOcean action {id} ({}) still {} after {:?}",
                    action.kind,
                    action.status,
                    started.elapsed()
                )));
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Polls a droplet until it is active with a public IPv4 address.
    pub async fn wait_for_droplet_ready(
        &self,
        id: i64,
        poll: &PollPolicy,
    ) -> Result<Droplet, ClientError> {
        let started = Instant::now();
        loop {
            let droplet = self.get_droplet(id).await?.ok_or_else(|| {
                ClientError::Failed(format!("droplet {id} disappeared while starting"))
            })?;
            if droplet.status == "active" && droplet.public_ipv4().is_some() {
                return Ok(droplet);
            }
            let pause = self.poll_pause(poll);
            if started.elapsed() + pause > poll.timeout {
                return Err(ClientError::Timeout(format!(
                    "droplet {id} is still `{}` without a public IPv4 address after {:?}",
                    droplet.status,
                    started.elapsed()
                )));
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Adds or removes one tag on a droplet through the tags API (outside the contract
    /// subset). Creating a tag that exists is harmless, so it is always created first.
    pub async fn tag_droplet(
        &self,
        tag: &str,
        droplet_id: i64,
        add: bool,
    ) -> Result<(), ClientError> {
        if add {
            let body = serde_json::json!({ "name": tag });
            self.send(
                Method::POST,
                "/v2/tags",
                Some(&body),
                Idempotence::Idempotent,
            )
            .await?;
        }
        let path = format!(
            "/v2/tags/{}/resources",
            form_urlencoded::byte_serialize(tag.as_bytes()).collect::<String>()
        );
        let body = serde_json::json!({
            "resources": [{ "resource_id": droplet_id.to_string(), "resource_type": "droplet" }]
        });
        let method = if add { Method::POST } else { Method::DELETE };
        self.send(method, &path, Some(&body), Idempotence::Idempotent)
            .await?;
        Ok(())
    }

    // ----- SSH keys -------------------------------------------------------------------

    /// By integer id or by fingerprint; `None` when there is no such key.
    pub async fn get_ssh_key(
        &self,
        id_or_fingerprint: &str,
    ) -> Result<Option<SshKey>, ClientError> {
        self.find_object(&format!("/v2/account/keys/{id_or_fingerprint}"), "ssh_key")
            .await
    }

    pub async fn list_ssh_keys(&self) -> Result<Vec<SshKey>, ClientError> {
        self.list_all("/v2/account/keys", &[], "ssh_keys").await
    }

    pub async fn create_ssh_key(
        &self,
        name: &str,
        public_key: &str,
    ) -> Result<SshKey, ClientError> {
        let path = "/v2/account/keys";
        let body = serde_json::json!({ "name": name, "public_key": public_key });
        let answer = self
            .send(Method::POST, path, Some(&body), Idempotence::NotIdempotent)
            .await?;
        decode_key(&answer.body, "ssh_key", "POST", path)
    }

    /// Renames a key (`PUT /v2/account/keys/{id}`, outside the contract subset).
    pub async fn rename_ssh_key(&self, id: i64, name: &str) -> Result<SshKey, ClientError> {
        let path = format!("/v2/account/keys/{id}");
        let body = serde_json::json!({ "name": name });
        let answer = self
            .send(Method::PUT, &path, Some(&body), Idempotence::Idempotent)
            .await?;
        decode_key(&answer.body, "ssh_key", "PUT", &path)
    }

    pub async fn delete_ssh_key(&self, id_or_fingerprint: &str) -> Result<bool, ClientError> {
        self.delete(&format!("/v2/account/keys/{id_or_fingerprint}"), None)
            .await
    }

    // ----- firewalls ------------------------------------------------------------------

    pub async fn list_firewalls(&self) -> Result<Vec<Firewall>, ClientError> {
        self.list_all("/v2/firewalls", &[], "firewalls").await
    }

    pub async fn get_firewall(&self, id: &str) -> Result<Option<Firewall>, ClientError> {
        self.find_object(&format!("/v2/firewalls/{id}"), "firewall")
            .await
    }

    pub async fn create_firewall(
        &self,
        request: &FirewallRequest,
    ) -> Result<Firewall, ClientError> {
        let path = "/v2/firewalls";
        let body = to_json(request)?;
        let answer = self
            .send(Method::POST, path, Some(&body), Idempotence::NotIdempotent)
            .await?;
        decode_key(&answer.body, "firewall", "POST", path)
    }

    /// Whole-object replacement: anything not in `request` is reset by DigitalOcean.
    pub async fn update_firewall(
        &self,
        id: &str,
        request: &FirewallRequest,
    ) -> Result<Firewall, ClientError> {
        let path = format!("/v2/firewalls/{id}");
        let body = to_json(request)?;
        let answer = self
            .send(Method::PUT, &path, Some(&body), Idempotence::Idempotent)
            .await?;
        decode_key(&answer.body, "firewall", "PUT", &path)
    }

    pub async fn delete_firewall(&self, id: &str) -> Result<bool, ClientError> {
        self.delete(&format!("/v2/firewalls/{id}"), None).await
    }

    // ----- domains and records --------------------------------------------------------

    pub async fn get_domain(&self, name: &str) -> Result<Option<Domain>, ClientError> {
        self.find_object(&format!("/v2/domains/{name}"), "domain")
            .await
    }

    /// Creating a domain twice fails with 422 rather than duplicating it, so a retry
    /// after an ambiguous failure is harmless; the caller re-reads on any error.
    pub async fn create_domain(&self, name: &str) -> Result<Domain, ClientError> {
        let path = "/v2/domains";
        let body = serde_json::json!({ "name": name });
        let answer = self
            .send(Method::POST, path, Some(&body), Idempotence::NotIdempotent)
            .await?;
        decode_key(&answer.body, "domain", "POST", path)
    }

    pub async fn delete_domain(&self, name: &str) -> Result<bool, ClientError> {
        self.delete(&format!("/v2/domains/{name}"), None).await
    }

    /// Every record of a domain; `None` when the domain does not exist.
    pub async fn list_records(
        &self,
        domain: &str,
    ) -> Result<Option<Vec<DomainRecord>>, ClientError> {
        match self
            .list_all(
                &format!("/v2/domains/{domain}/records"),
                &[],
                "domain_records",
            )
            .await
        {
            Ok(records) => Ok(Some(records)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Records of one type and relative name (the filter takes the fully qualified name).
    pub async fn find_records(
        &self,
        domain: &str,
        kind: &str,
        relative_name: &str,
    ) -> Result<Vec<DomainRecord>, ClientError> {
        let fully_qualified = if relative_name == "@" {
            domain.to_string()
        } else {
            format!("{relative_name}.{domain}")
        };
        self.list_all(
            &format!("/v2/domains/{domain}/records"),
            &[("type", kind), ("name", &fully_qualified)],
            "domain_records",
        )
        .await
    }

    pub async fn get_record(
        &self,
        domain: &str,
        id: i64,
    ) -> Result<Option<DomainRecord>, ClientError> {
        self.find_object(
            &format!("/v2/domains/{domain}/records/{id}"),
            "domain_record",
        )
        .await
    }

    pub async fn create_record(
        &self,
        domain: &str,
        request: &DomainRecordRequest,
    ) -> Result<DomainRecord, ClientError> {
        let path = format!("/v2/domains/{domain}/records");
        let body = to_json(request)?;
        let answer = self
            .send(Method::POST, &path, Some(&body), Idempotence::NotIdempotent)
            .await?;
        decode_key(&answer.body, "domain_record", "POST", &path)
    }

    pub async fn update_record(
        &self,
        domain: &str,
        id: i64,
        request: &DomainRecordRequest,
    ) -> Result<DomainRecord, ClientError> {
        let path = format!("/v2/domains/{domain}/records/{id}");
        let body = to_json(request)?;
        let answer = self
            .send(Method::PUT, &path, Some(&body), Idempotence::Idempotent)
            .await?;
        decode_key(&answer.body, "domain_record", "PUT", &path)
    }

    pub async fn delete_record(&self, domain: &str, id: i64) -> Result<bool, ClientError> {
        self.delete(&format!("/v2/domains/{domain}/records/{id}"), None)
            .await
    }

    /// DELETE that treats 404 as "already gone" (returns false then).
    async fn delete(&self, path: &str, body: Option<&Json>) -> Result<bool, ClientError> {
        match self
            .send(Method::DELETE, path, body, Idempotence::Idempotent)
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if error.is_not_found() => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Creates an object so that an ambiguous failure never leaves two of them.
    ///
    /// `create` is attempted; if it fails in a way that may have taken effect (a dropped
    /// connection, a timeout, a 5xx), `find` is asked whether the object now exists, and
    /// only when it does not is the create tried again. Bounded by the retry policy.
    pub async fn create_without_duplicates<T, CreateFuture, FindFuture>(
        &self,
        what: &str,
        mut create: impl FnMut() -> CreateFuture,
        mut find: impl FnMut() -> FindFuture,
    ) -> Result<(T, bool), ClientError>
    where
        CreateFuture: Future<Output = Result<T, ClientError>>,
        FindFuture: Future<Output = Result<Option<T>, ClientError>>,
    {
        let policy = &self.config.retry;
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match create().await {
                Ok(created) => return Ok((created, true)),
                Err(error) if error.is_ambiguous() => error,
                Err(error) => return Err(error),
            };
            tracing::warn!(what, attempt, error = %error, "create may have happened; looking before retrying");
            let delay = policy.backoff(attempt);
            if attempt >= policy.max_attempts || started.elapsed() + delay > policy.max_total {
                return Err(ClientError::RetriesExhausted {
                    attempts: attempt,
                    elapsed: started.elapsed(),
                    last: Box::new(error),
                });
            }
            tokio::time::sleep(delay).await;
            // The lookup itself is an idempotent read, retried inside `send`.
            if let Some(existing) = find().await? {
                tracing::info!(
                    what,
                    "the earlier create had succeeded; using the existing object"
                );
                return Ok((existing, false));
            }
        }
    }
}

fn to_json(value: &impl serde::Serialize) -> Result<Json, ClientError> {
    serde_json::to_value(value)
        .map_err(|error| ClientError::Failed(format!("cannot encode a request body: {error}")))
}

fn decode_key<T: DeserializeOwned>(
    body: &Json,
    key: &str,
    method: &str,
    path: &str,
) -> Result<T, ClientError> {
    let value = body.get(key).cloned().ok_or_else(|| ClientError::Decode {
        method: method.to_string(),
        path: path.to_string(),
        message: format!("no `{key}` in the body"),
    })?;
    serde_json::from_value(value).map_err(|error| ClientError::Decode {
        method: method.to_string(),
        path: path.to_string(),
        message: format!("`{key}`: {error}"),
    })
}

pub fn encode_query(pairs: &[(String, String)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

/// reqwest's own message plus its source chain, which is where "connection closed
/// before message completed" lives.
fn describe_transport_error(error: &reqwest::Error) -> String {
    let mut message = if error.is_timeout() {
        "timed out".to_string()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    message
}

fn api_error(method: &Method, path: &str, status: StatusCode, text: &str) -> ClientError {
    let parsed: Option<Json> = serde_json::from_str(text).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|body| body.get(name))
            .and_then(Json::as_str)
            .map(str::to_string)
    };
    ClientError::Api(Box::new(ApiError {
        method: method.to_string(),
        path: path.to_string(),
        status: status.as_u16(),
        id: field("id").unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("error")
                .to_lowercase()
                .replace(' ', "_")
        }),
        message: field("message").unwrap_or_else(|| {
            let trimmed = text.trim();
            if trimmed.is_empty() {
                "(empty body)".to_string()
            } else {
                trimmed.chars().take(500).collect()
            }
        }),
        request_id: field("request_id"),
    }))
}

/// How long a 429 (or a 503 with `retry-after`) asks the client to wait:
/// `retry-after` seconds, else until `ratelimit-reset` when the budget is spent.
fn wait_requested(headers: &HeaderMap, status: StatusCode) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.trim().parse::<u64>().ok())
    };
    if let Some(seconds) = number("retry-after") {
        return Some(Duration::from_secs(seconds));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        if let Some(reset) = number("ratelimit-reset") {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            return Some(Duration::from_secs(reset.saturating_sub(now)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            ..RetryPolicy::default()
        };
        assert!(policy.backoff(1) <= Duration::from_millis(100));
        assert!(policy.backoff(1) >= Duration::from_millis(50));
        assert!(policy.backoff(10) <= Duration::from_millis(400));
        assert!(policy.backoff(10) >= Duration::from_millis(200));
    }

    #[test]
    fn token_is_redacted() {
        let token = Token::new("dop_v1_secret");
        assert_eq!(format!("{token} {token:?}"), "[redacted] [redacted]");
        let config = ClientConfig::new("http://127.0.0.1:1", Some(token));
        assert!(!format!("{config:?}").contains("dop_v1_secret"));
    }

    #[test]
    fn error_body_is_decoded_or_kept_raw() {
        let error = api_error(
            &Method::GET,
            "/v2/droplets/1",
            StatusCode::NOT_FOUND,
            r#"{"id":"not_found","message":"gone","request_id":"r-1"}"#,
        );
        assert!(error.is_not_found());
        assert_eq!(
            error.api().and_then(|api| api.request_id.clone()),
            Some("r-1".into())
        );
        let raw = api_error(
            &Method::GET,
            "/v2/x",
            StatusCode::BAD_GATEWAY,
            "<html>bad gateway</html>",
        );
        assert_eq!(
            raw.api().map(|api| api.message.as_str()),
            Some("<html>bad gateway</html>")
        );
        assert!(raw.is_ambiguous());
    }
}
