//! What can go wrong talking to DigitalOcean: its decoded error body ([`ApiError`]), and
//! [`ClientError`], which tells credentials problems, not-found and ambiguous failures
//! (the request may have taken effect) apart.

use std::fmt;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value as Json;

use super::{ALTERNATE_TOKEN_VARIABLE, TOKEN_VARIABLE};

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

pub(super) fn api_error(
    method: &Method,
    path: &str,
    status: StatusCode,
    text: &str,
) -> ClientError {
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

#[cfg(test)]
mod tests {
    use super::*;

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
