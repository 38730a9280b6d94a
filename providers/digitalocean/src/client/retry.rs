//! Retries: how hard the client tries ([`RetryPolicy`], exponential back-off with
//! jitter), which requests may be repeated at all ([`Idempotence`]), how long the server
//! asks us to wait (`retry-after`, `ratelimit-reset`), and the loop in [`Client::send`].

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value as Json;

use super::{Answer, Client, ClientError};

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
    pub(super) fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let full = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        full.mul_f64(0.5 + fastrand::f64() * 0.5)
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

impl Client {
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
}

/// How long a 429 (or a 503 with `retry-after`) asks the client to wait:
/// `retry-after` seconds, else until `ratelimit-reset` when the budget is spent.
pub(super) fn wait_requested(headers: &HeaderMap, status: StatusCode) -> Option<Duration> {
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
}
