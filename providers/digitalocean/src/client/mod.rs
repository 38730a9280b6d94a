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

mod config;
mod dns_record;
mod droplet;
mod error;
mod exchange;
mod firewall;
mod poll;
mod retry;
mod ssh_key;
mod token;

use std::future::Future;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Instant;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

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

pub use config::ClientConfig;
pub use error::{ApiError, ClientError};
pub use exchange::Answer;
pub use poll::PollPolicy;
pub use retry::{Idempotence, RetryPolicy};
pub use token::Token;

/// TLS with aws-lc-rs and the public web roots: the crypto stackctl links once for SSH,
/// the checks and this client. Any other reqwest client in the process (the tests') must
/// be built with it too: reqwest has no crypto provider of its own here.
pub fn tls_config() -> Result<rustls::ClientConfig, ClientError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| ClientError::Failed(format!("cannot set up TLS: {error}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

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
            .use_preconfigured_tls(tls_config()?)
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
