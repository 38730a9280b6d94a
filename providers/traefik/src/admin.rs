//! Reading Traefik's API on the `traefik` entry point (ping and API, loopback only).
//!
//! The edge's admin port is published on the host's loopback, so callers reach it
//! through whatever stream they have: a local TCP connection, or
//! `Host::connect_tcp("127.0.0.1", admin_port)` over SSH. Every function here takes such
//! a stream, sends one HTTP/1.1 request and reads one JSON answer, so the same code
//! serves a local test and a remote droplet.
//!
//! Two questions matter to stackctl:
//!
//! - **Has Traefik applied the files?** `/ping` answers before the file provider's
//!   routers exist, so readiness is "the expected routers are listed and enabled"
//!   ([`routers`]); a router Traefik refused shows up with `status: disabled` and its
//!   error, which is the evidence a failed apply should show.
//! - **Which servers does a service send traffic to?** During a zero-downtime swap the
//!   docker provider rewrites `backend-<service>.yml` and must wait until Traefik routes
//!   to the new container before draining the old one. This file owns that question's
//!   format: the path ([`service_servers_path`]) and the one parser of the answer
//!   ([`parse_service_servers`]). [`service_servers`] asks it over a stream; the docker
//!   provider, which has its own HTTP client and does not depend on this crate, gets the
//!   same two functions through [`crate::TraefikFormats`].

use std::collections::BTreeMap;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};

/// The port of the `traefik` entry point (ping and API) inside the edge container, when
/// the stack does not choose another.
pub const API_PORT: u16 = 8080;

/// The most of an API answer that is read (the router list of a big stack is a few
/// hundred kilobytes at most).
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Why a question to Traefik's API got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("HTTP handshake with Traefik's API failed: {0}")]
    Handshake(String),
    #[error("cannot build the request for {path}: {cause}")]
    Request { path: String, cause: String },
    #[error("Traefik's API did not answer {path}: {cause}")]
    NoAnswer { path: String, cause: String },
    #[error("reading {path} failed: {cause}")]
    Read { path: String, cause: String },
    #[error("the answer to {path} is larger than {MAX_ANSWER_BYTES} bytes")]
    TooLarge { path: String },
    /// Not a 200: a service that is not loaded yet answers 404.
    #[error("Traefik's API answered {path} with {status}: {excerpt}")]
    Status {
        path: String,
        status: u16,
        excerpt: String,
    },
    #[error("the answer to {path} is not JSON: {cause}")]
    NotJson { path: String, cause: String },
}

/// One router as Traefik's API reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouterState {
    /// `api@file`, `web-to-websecure@internal`, …
    pub name: String,
    /// `enabled`, `disabled` or `warning`.
    pub status: String,
    pub rule: Option<String>,
    pub service: Option<String>,
    /// What Traefik could not resolve (a missing middleware, a bad rule).
    pub errors: Vec<String>,
}

/// `GET path` on the stream; the decoded JSON answer of a 200.
pub async fn get_json<S>(stream: S, path: &str) -> Result<serde_json::Value, AdminError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| AdminError::Handshake(error.to_string()))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = hyper::Request::builder()
        .method(hyper::Method::GET)
        .uri(path)
        .header(hyper::header::HOST, "127.0.0.1")
        .header(hyper::header::ACCEPT, "application/json")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|error| AdminError::Request {
            path: path.to_string(),
            cause: error.to_string(),
        })?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| AdminError::NoAnswer {
            path: path.to_string(),
            cause: error.to_string(),
        })?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| AdminError::Read {
            path: path.to_string(),
            cause: error.to_string(),
        })?;
        if let Some(data) = frame.data_ref() {
            bytes.extend_from_slice(data);
        }
        if bytes.len() > MAX_ANSWER_BYTES {
            driver.abort();
            return Err(AdminError::TooLarge {
                path: path.to_string(),
            });
        }
    }
    driver.abort();
    if status != 200 {
        let excerpt = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
        return Err(AdminError::Status {
            path: path.to_string(),
            status,
            excerpt: excerpt.trim().to_string(),
        });
    }
    serde_json::from_slice(&bytes).map_err(|error| AdminError::NotJson {
        path: path.to_string(),
        cause: error.to_string(),
    })
}

/// Every HTTP router Traefik knows, from `/api/http/routers`.
pub async fn routers<S>(stream: S) -> Result<Vec<RouterState>, AdminError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Traefik pages this list (100 per page by default); ask for more than a stack has.
    let json = get_json(stream, "/api/http/routers?per_page=10000").await?;
    Ok(parse_routers(&json))
}

/// The server URLs a service of the file provider balances over, from
/// `/api/http/services/<service>@file`. A 404 (the backend file is not loaded yet)
/// is an error.
pub async fn service_servers<S>(stream: S, service: &str) -> Result<Vec<String>, AdminError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let json = get_json(stream, &service_servers_path(service)).await?;
    Ok(parse_service_servers(&json))
}

/// `/api/http/services/<service>@file`: the API path of a service's servers. A name that
/// already names its provider (`api@docker`) keeps it. The name is percent-encoded, so
/// `/`, `?` or spaces in it travel as data and never as syntax.
pub fn service_servers_path(service: &str) -> String {
    let (name, provider) = service.rsplit_once('@').unwrap_or((service, "file"));
    format!(
        "/api/http/services/{}@{}",
        percent_encode(name),
        percent_encode(provider)
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Router states from the `/api/http/routers` JSON (pure: testable without Traefik).
pub fn parse_routers(json: &serde_json::Value) -> Vec<RouterState> {
    let text = |router: &serde_json::Value, key: &str| {
        router
            .get(key)
            .and_then(|value| value.as_str())
            .map(str::to_string)
    };
    json.as_array()
        .map(|routers| {
            routers
                .iter()
                .map(|router| RouterState {
                    name: text(router, "name").unwrap_or_default(),
                    status: text(router, "status").unwrap_or_default(),
                    rule: text(router, "rule"),
                    service: text(router, "service"),
                    errors: router
                        .get("error")
                        .and_then(|errors| errors.as_array())
                        .map(|errors| {
                            errors
                                .iter()
                                .filter_map(|error| error.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Server URLs from a `/api/http/services/<name>` JSON answer.
pub fn parse_service_servers(json: &serde_json::Value) -> Vec<String> {
    json.pointer("/loadBalancer/servers")
        .and_then(|servers| servers.as_array())
        .map(|servers| {
            servers
                .iter()
                .filter_map(|server| {
                    server
                        .get("url")
                        .and_then(|url| url.as_str())
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Each server of a `/api/http/services/<name>` answer with the status Traefik's health
/// check gives it (`UP`, `DOWN`), in the order the servers are listed. A server the
/// answer gives no status is `None`: Traefik reports statuses only once it has built
/// the service.
pub fn parse_server_statuses(json: &serde_json::Value) -> Vec<(String, Option<String>)> {
    let statuses = json.get("serverStatus").and_then(|map| map.as_object());
    parse_service_servers(json)
        .into_iter()
        .map(|url| {
            let status = statuses
                .and_then(|map| map.get(&url))
                .and_then(|status| status.as_str())
                .map(str::to_string);
            (url, status)
        })
        .collect()
}

/// The routers of `names` (without the `@file` suffix) that are missing or not enabled,
/// keyed by name, with the reason: what "the files are applied" waits on.
pub fn unready_routers(states: &[RouterState], names: &[String]) -> BTreeMap<String, String> {
    names
        .iter()
        .filter_map(|name| {
            let full = format!("{name}@file");
            match states.iter().find(|state| state.name == full) {
                None => Some((name.clone(), "not loaded".to_string())),
                Some(state) if state.status == "enabled" => None,
                Some(state) => Some((
                    name.clone(),
                    if state.errors.is_empty() {
                        state.status.clone()
                    } else {
                        format!("{}: {}", state.status, state.errors.join("; "))
                    },
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_routers_and_servers() {
        let routers = serde_json::json!([
            {"name": "api@file", "status": "enabled", "rule": "Host(`a`)", "service": "api"},
            {"name": "bad@file", "status": "disabled", "error": ["middleware \"x@file\" does not exist"]}
        ]);
        let states = parse_routers(&routers);
        assert_eq!(states.len(), 2);
        let unready = unready_routers(&states, &["api".into(), "bad".into(), "gone".into()]);
        assert_eq!(unready.len(), 2);
        assert!(unready["bad"].contains("does not exist"));
        assert_eq!(unready["gone"], "not loaded");

        let service = serde_json::json!({"loadBalancer": {"servers": [{"url": "http://a:1"}]}});
        assert_eq!(
            parse_service_servers(&service),
            vec!["http://a:1".to_string()]
        );
    }

    #[test]
    fn server_statuses_pair_each_listed_server_with_its_health() {
        let service = serde_json::json!({
            "loadBalancer": {"servers": [{"url": "http://10.0.1.5:8080"}, {"url": "http://10.0.1.6:8080"}, {"url": "http://10.0.1.7:8080"}]},
            "serverStatus": {"http://10.0.1.5:8080": "UP", "http://10.0.1.6:8080": "DOWN"},
            "status": "enabled"
        });
        assert_eq!(
            parse_server_statuses(&service),
            vec![
                ("http://10.0.1.5:8080".to_string(), Some("UP".to_string())),
                ("http://10.0.1.6:8080".to_string(), Some("DOWN".to_string())),
                ("http://10.0.1.7:8080".to_string(), None),
            ]
        );
        assert_eq!(parse_server_statuses(&serde_json::json!({})), vec![]);
    }

    #[test]
    fn the_servers_path_names_the_file_provider_and_encodes_the_name() {
        assert_eq!(service_servers_path("api"), "/api/http/services/api@file");
        assert_eq!(
            service_servers_path("api@docker"),
            "/api/http/services/api@docker"
        );
        assert_eq!(
            service_servers_path("a b/c?$(d)"),
            "/api/http/services/a%20b%2Fc%3F%24%28d%29@file"
        );
    }
}
