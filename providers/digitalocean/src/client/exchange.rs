//! One HTTP exchange with DigitalOcean: the request, the `ratelimit-remaining` it
//! reports, and its answer decoded as JSON or as DigitalOcean's error body.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value as Json;

use super::error::api_error;
use super::retry::wait_requested;
use super::{Client, ClientError};

/// A successful answer: status and JSON body (`Null` for 204).
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Json,
}

impl Client {
    /// One HTTP exchange. On failure, also returns how long the server asked us to wait.
    pub(super) async fn send_once(
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
