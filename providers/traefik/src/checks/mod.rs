//! Checks: HTTP(S) requests through the edge, compared with what the stack promises.
//!
//! After an apply (and on `stackctl verify`) the engine asks the traefik provider to
//! verify the stack (`verify.rs`), which runs the user's `[[checks]]` plus the checks the
//! routes imply ([`implied_checks`]): every route answers, plain
//! HTTP redirects to HTTPS, the security headers are on the answers, and services that
//! no route names are not reachable. Each check is one request, and its result keeps
//! the evidence a person needs to believe it: status, headers, the start of the body,
//! timings, and the certificate the server presented.
//!
//! Three things make these checks differ from a plain HTTP client call:
//!
//! - **Addressing.** A check names the URL a user would type
//!   (`https://example.test:18443/api/health`), but the request must reach the edge
//!   that was just deployed, before DNS points at it or on loopback in tests.
//!   [`ResolveOverride`] works like curl's `--resolve`: the URL's host and port are kept
//!   (so SNI, `Host` and the router's rule see the real name) while the TCP connection
//!   goes to the given address.
//! - **Source address.** An IP allowlist is checked by binding the client socket to a
//!   chosen local address (127.0.0.2 is "outside" an allowlist of 127.0.0.1/32).
//! - **Trust.** The certificate presented is always verified against the public roots
//!   and always reported (subject, issuer, validity, verdict). A fresh edge presents
//!   Traefik's self-signed `TRAEFIK DEFAULT CERT` or a Let's Encrypt staging certificate;
//!   accepting those takes [`TlsTrust::AcceptUntrusted`], and every result made that way
//!   says `accepted_untrusted: true`. Nothing is trusted silently.
//!
//! Redirects are never followed (a redirect is itself something to check), bodies are
//! read up to a bound, and every request and every retry loop is bounded in time and
//! count. Results serialise with serde for the run folder and `--format json`; a basic
//! auth password never appears in them.

mod implied;
mod tls;
mod tls_audit;
pub mod tls_probe;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use serde::{Serialize, Serializer};
use stackctl_provider::Secret;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};

pub use implied::{implied_checks, EdgeFacts, RouteFacts};
pub use tls::{summarize_certificate, CertificateSummary};
pub use tls_audit::{audit_tls, hsts_finding, report_lines, TlsAuditTarget};

/// One request and what its answer must look like.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// A short label: `route api answers`, `checks[0]`.
    pub name: String,
    pub url: String,
    /// `GET` unless set.
    pub method: String,
    pub expect_status: StatusExpectation,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expect_headers: Vec<HeaderExpectation>,
    /// Sent as `Authorization: Basic`; only the user name is ever serialised.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_credentials"
    )]
    pub basic_auth: Option<Credentials>,
    /// Bind the client socket to this local address (the allowlist case).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_address: Option<IpAddr>,
}

impl Check {
    /// A `GET` expecting `status`.
    pub fn get(name: impl Into<String>, url: impl Into<String>, status: u16) -> Check {
        Check {
            name: name.into(),
            url: url.into(),
            method: "GET".to_string(),
            expect_status: StatusExpectation::Exactly(status),
            expect_headers: Vec::new(),
            basic_auth: None,
            source_address: None,
        }
    }

    pub fn expecting(mut self, status: StatusExpectation) -> Check {
        self.expect_status = status;
        self
    }

    pub fn with_header(mut self, expectation: HeaderExpectation) -> Check {
        self.expect_headers.push(expectation);
        self
    }

    pub fn with_basic_auth(mut self, user: impl Into<String>, password: Secret) -> Check {
        self.basic_auth = Some(Credentials {
            user: user.into(),
            password,
        });
        self
    }

    pub fn from_source(mut self, address: IpAddr) -> Check {
        self.source_address = Some(address);
        self
    }
}

/// Basic-auth credentials: the password is a [`Secret`] and its plaintext is used only
/// to build the request header.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub user: String,
    pub password: Secret,
}

fn serialize_credentials<S: Serializer>(
    credentials: &Option<Credentials>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Shown<'a> {
        user: &'a str,
        password: &'static str,
    }
    credentials
        .as_ref()
        .map(|credentials| Shown {
            user: &credentials.user,
            password: "[redacted]",
        })
        .serialize(serializer)
}

/// Which statuses pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "statuses", rename_all = "snake_case")]
pub enum StatusExpectation {
    Exactly(u16),
    AnyOf(Vec<u16>),
    /// Anything but these (a route "answers": not 404, not a gateway error).
    NoneOf(Vec<u16>),
    /// Any status: the check is about headers.
    Any,
}

impl StatusExpectation {
    pub fn accepts(&self, status: u16) -> bool {
        match self {
            StatusExpectation::Exactly(expected) => status == *expected,
            StatusExpectation::AnyOf(allowed) => allowed.contains(&status),
            StatusExpectation::NoneOf(refused) => !refused.contains(&status),
            StatusExpectation::Any => true,
        }
    }

    pub fn describe(&self) -> String {
        let list = |statuses: &[u16]| {
            statuses
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or ")
        };
        match self {
            StatusExpectation::Exactly(expected) => format!("status {expected}"),
            StatusExpectation::AnyOf(allowed) => format!("status {}", list(allowed)),
            StatusExpectation::NoneOf(refused) => format!("a status other than {}", list(refused)),
            StatusExpectation::Any => "any status".to_string(),
        }
    }
}

/// One header requirement. Header names compare case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeaderExpectation {
    pub name: String,
    pub rule: HeaderRule,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum HeaderRule {
    Present,
    Absent,
    Equals(String),
    StartsWith(String),
    Contains(String),
}

impl HeaderExpectation {
    pub fn new(name: impl Into<String>, rule: HeaderRule) -> Self {
        HeaderExpectation {
            name: name.into(),
            rule,
        }
    }

    /// `None` when satisfied, else what is wrong.
    fn failure(&self, headers: &BTreeMap<String, String>) -> Option<String> {
        let name = self.name.to_ascii_lowercase();
        let value = headers.get(&name);
        match (&self.rule, value) {
            (HeaderRule::Absent, None) => None,
            (HeaderRule::Absent, Some(value)) => {
                Some(format!("header `{name}` should be absent, found `{value}`"))
            }
            (_, None) => Some(format!("header `{name}` is missing")),
            (HeaderRule::Present, Some(_)) => None,
            (HeaderRule::Equals(expected), Some(value)) if value == expected => None,
            (HeaderRule::Equals(expected), Some(value)) => Some(format!(
                "header `{name}` is `{value}`, expected `{expected}`"
            )),
            (HeaderRule::StartsWith(prefix), Some(value)) if value.starts_with(prefix.as_str()) => {
                None
            }
            (HeaderRule::StartsWith(prefix), Some(value)) => Some(format!(
                "header `{name}` is `{value}`, expected it to start with `{prefix}`"
            )),
            (HeaderRule::Contains(part), Some(value)) if value.contains(part.as_str()) => None,
            (HeaderRule::Contains(part), Some(value)) => Some(format!(
                "header `{name}` is `{value}`, expected it to contain `{part}`"
            )),
        }
    }
}

/// Like curl's `--resolve host:port:address`: requests for `host` (any host for `*`)
/// on `port` (any port when `None`) connect to `address`, keeping the URL's port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResolveOverride {
    pub host: String,
    pub port: Option<u16>,
    pub address: IpAddr,
}

impl ResolveOverride {
    /// Every host, every port, to `address` (the edge's IP).
    pub fn all_to(address: IpAddr) -> Self {
        ResolveOverride {
            host: "*".to_string(),
            port: None,
            address,
        }
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        (self.host == "*" || self.host.eq_ignore_ascii_case(host))
            && self.port.is_none_or(|wanted| wanted == port)
    }
}

/// How to treat a certificate that does not chain to a public root.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsTrust {
    /// Fail the check (the certificate is still reported).
    #[default]
    Verify,
    /// Go on with the request, and mark the result `accepted_untrusted`.
    AcceptUntrusted,
}

/// How checks run.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    pub resolve: Vec<ResolveOverride>,
    pub tls: TlsTrust,
    /// For one attempt: connect, handshake, request and body.
    pub timeout: Duration,
    /// Keep retrying a failing check until it passes or this much time has gone by
    /// (Traefik applies a new file within milliseconds to about two seconds).
    pub retry_for: Duration,
    pub retry_interval: Duration,
    /// A bound on attempts whatever the time allows.
    pub max_attempts: u32,
    /// How much of the body a result keeps.
    pub body_excerpt_bytes: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            resolve: Vec::new(),
            tls: TlsTrust::Verify,
            timeout: Duration::from_secs(10),
            retry_for: Duration::ZERO,
            retry_interval: Duration::from_millis(200),
            max_attempts: 50,
            body_excerpt_bytes: 1024,
        }
    }
}

/// The outcome of one check, with its evidence.
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub method: String,
    pub url: String,
    pub passed: bool,
    /// What the check expected, in words.
    pub expected: String,
    /// Why it failed: each unmet expectation, or the transport error.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    pub status: Option<u16>,
    /// Response headers, names in lower case, repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    pub body_excerpt: String,
    /// Bytes of body read (reading stops at a bound).
    pub body_bytes: usize,
    pub body_truncated: bool,
    pub timing: Timing,
    /// Where the TCP connection went, and from where.
    pub connected_to: Option<String>,
    pub source_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsReport>,
    /// Transport-level error (refused, timed out, handshake failed), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub attempts: u32,
}

impl CheckResult {
    /// One line for a terminal: `ok   route api answers: 200 in 5.3 ms` or
    /// `FAIL route api answers: status 404, expected …`.
    pub fn summary(&self) -> String {
        let outcome = match (self.passed, self.status) {
            (true, Some(status)) => format!("{status} in {:.1} ms", self.timing.total_ms),
            (true, None) => format!("passed in {:.1} ms", self.timing.total_ms),
            (false, _) => self.failures.join("; "),
        };
        let mut line = format!(
            "{} {}: {outcome}",
            if self.passed { "ok  " } else { "FAIL" },
            self.name
        );
        if let Some(tls) = self.tls.as_ref().filter(|tls| tls.accepted_untrusted) {
            line.push_str(&format!(
                " (untrusted certificate accepted: {})",
                tls.subject.as_deref().unwrap_or("unreadable subject")
            ));
        }
        line
    }
}

/// Milliseconds from the start of the attempt.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timing {
    pub connect_ms: Option<f64>,
    pub tls_handshake_ms: Option<f64>,
    pub first_byte_ms: Option<f64>,
    pub total_ms: f64,
}

/// The certificate the server presented and what was concluded about it.
#[derive(Clone, Debug, Serialize)]
pub struct TlsReport {
    /// The name sent as SNI and verified against.
    pub server_name: String,
    pub protocol: Option<String>,
    /// The negotiated cipher suite, e.g. `TLS13_AES_128_GCM_SHA256`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher_suite: Option<String>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    pub serial: Option<String>,
    pub self_signed: bool,
    /// Chains to a public root and names this host.
    pub trusted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_error: Option<String>,
    /// The request went on although `trusted` is false, because the caller chose
    /// [`TlsTrust::AcceptUntrusted`].
    pub accepted_untrusted: bool,
}

/// Runs checks one after another (their order is the report's order).
pub async fn run_checks(checks: &[Check], options: &CheckOptions) -> Vec<CheckResult> {
    let mut results = Vec::with_capacity(checks.len());
    for check in checks {
        results.push(run_check(check, options).await);
    }
    results
}

/// Runs one check, retrying while it fails within `retry_for` and `max_attempts`.
pub async fn run_check(check: &Check, options: &CheckOptions) -> CheckResult {
    let started = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let mut result = attempt(check, options).await;
        result.attempts = attempts;
        let out_of_time = started.elapsed() + options.retry_interval > options.retry_for;
        if result.passed || out_of_time || attempts >= options.max_attempts.max(1) {
            return result;
        }
        tokio::time::sleep(options.retry_interval).await;
    }
}

/// The parts of a check's URL.
pub(crate) struct Target {
    https: bool,
    host: String,
    port: u16,
    /// `Host` header: the host, with the port when it is not the scheme's default.
    authority: String,
    path_and_query: String,
}

pub(crate) fn parse_target(url: &str) -> Result<Target, String> {
    let uri: Uri = url
        .parse()
        .map_err(|error| format!("`{url}` is not a URL: {error}"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => {
            return Err(format!(
                "`{url}`: only http:// and https:// URLs can be checked"
            ))
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| format!("`{url}` has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let default_port = if https { 443 } else { 80 };
    let port = uri.port_u16().unwrap_or(default_port);
    let host_for_header = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let authority = if port == default_port {
        host_for_header
    } else {
        format!("{host_for_header}:{port}")
    };
    let path_and_query = uri
        .path_and_query()
        .map(|path| path.as_str().to_string())
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| "/".to_string());
    Ok(Target {
        https,
        host,
        port,
        authority,
        path_and_query,
    })
}

fn milliseconds(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

fn empty_result(check: &Check) -> CheckResult {
    let mut expected = check.expect_status.describe();
    for header in &check.expect_headers {
        expected.push_str(&format!(
            ", header `{}` {}",
            header.name.to_ascii_lowercase(),
            describe_rule(&header.rule)
        ));
    }
    CheckResult {
        name: check.name.clone(),
        method: check.method.clone(),
        url: check.url.clone(),
        passed: false,
        expected,
        failures: Vec::new(),
        status: None,
        headers: BTreeMap::new(),
        body_excerpt: String::new(),
        body_bytes: 0,
        body_truncated: false,
        timing: Timing::default(),
        connected_to: None,
        source_address: check.source_address.map(|address| address.to_string()),
        tls: None,
        error: None,
        attempts: 0,
    }
}

fn describe_rule(rule: &HeaderRule) -> String {
    match rule {
        HeaderRule::Present => "present".to_string(),
        HeaderRule::Absent => "absent".to_string(),
        HeaderRule::Equals(value) => format!("= `{value}`"),
        HeaderRule::StartsWith(value) => format!("starting with `{value}`"),
        HeaderRule::Contains(value) => format!("containing `{value}`"),
    }
}

async fn attempt(check: &Check, options: &CheckOptions) -> CheckResult {
    let mut result = empty_result(check);
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        options.timeout,
        exchange(check, options, &mut result, started),
    )
    .await;
    result.timing.total_ms = milliseconds(started.elapsed());
    let transport_error = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error),
        Err(_) => Some(format!("no complete answer within {:?}", options.timeout)),
    };
    if let Some(error) = transport_error {
        result.failures.push(error.clone());
        result.error = Some(error);
        return result;
    }
    if let Some(status) = result.status {
        if !check.expect_status.accepts(status) {
            result.failures.push(format!(
                "status {status}, expected {}",
                check.expect_status.describe()
            ));
        }
    }
    for expectation in &check.expect_headers {
        if let Some(failure) = expectation.failure(&result.headers) {
            result.failures.push(failure);
        }
    }
    result.passed = result.failures.is_empty();
    result
}

/// Connects, (for https) handshakes and reports the certificate, sends the request and
/// reads the answer into `result`.
async fn exchange(
    check: &Check,
    options: &CheckOptions,
    result: &mut CheckResult,
    started: Instant,
) -> Result<(), String> {
    let target = parse_target(&check.url)?;
    let destination = resolve_address(&target, &options.resolve).await?;
    let stream = connect(destination, check.source_address).await?;
    result.connected_to = Some(destination.to_string());
    if let Ok(local) = stream.local_addr() {
        result.source_address = Some(local.ip().to_string());
    }
    result.timing.connect_ms = Some(milliseconds(started.elapsed()));

    let request = build_request(check, &target)?;
    if target.https {
        let stream = handshake(stream, &target, options.tls, result).await;
        result.timing.tls_handshake_ms = Some(milliseconds(started.elapsed()));
        send(stream?, request, options, result, started).await
    } else {
        send(stream, request, options, result, started).await
    }
}

pub(crate) async fn resolve_address(
    target: &Target,
    overrides: &[ResolveOverride],
) -> Result<SocketAddr, String> {
    if let Some(rule) = overrides
        .iter()
        .find(|rule| rule.matches(&target.host, target.port))
    {
        return Ok(SocketAddr::new(rule.address, target.port));
    }
    if let Ok(address) = target.host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(address, target.port));
    }
    tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|error| format!("cannot resolve `{}`: {error}", target.host))?
        .next()
        .ok_or_else(|| format!("`{}` resolves to no address", target.host))
}

async fn connect(destination: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream, String> {
    let socket = match destination {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|error| format!("cannot open a socket: {error}"))?;
    if let Some(source) = source {
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|error| format!("cannot bind the source address {source}: {error}"))?;
    }
    let stream = socket
        .connect(destination)
        .await
        .map_err(|error| format!("cannot connect to {destination}: {error}"))?;
    stream.set_nodelay(true).ok();
    Ok(stream)
}

async fn handshake(
    stream: TcpStream,
    target: &Target,
    trust: TlsTrust,
    result: &mut CheckResult,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(tls::RecordingVerifier::new(
        provider.clone(),
        trust == TlsTrust::AcceptUntrusted,
    )?);
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("cannot configure TLS: {error}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let server_name = rustls::pki_types::ServerName::try_from(target.host.clone())
        .map_err(|error| format!("`{}` cannot be a TLS server name: {error}", target.host))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let outcome = connector.connect(server_name, stream).await;

    // Report the certificate whether or not the handshake went through.
    let observation = verifier.observation();
    let summary = observation
        .as_ref()
        .and_then(|observed| summarize_certificate(&observed.end_entity));
    let trust_error = observation
        .as_ref()
        .and_then(|observed| observed.verdict.clone().err());
    let protocol = outcome.as_ref().ok().and_then(|stream| {
        stream
            .get_ref()
            .1
            .protocol_version()
            .map(|version| format!("{version:?}"))
    });
    let cipher_suite = outcome.as_ref().ok().and_then(|stream| {
        stream
            .get_ref()
            .1
            .negotiated_cipher_suite()
            .map(|suite| format!("{:?}", suite.suite()))
    });
    if observation.is_some() {
        result.tls = Some(TlsReport {
            server_name: target.host.clone(),
            protocol,
            cipher_suite,
            subject: summary.as_ref().map(|summary| summary.subject.clone()),
            issuer: summary.as_ref().map(|summary| summary.issuer.clone()),
            not_before: summary
                .as_ref()
                .and_then(|summary| summary.not_before.clone()),
            not_after: summary
                .as_ref()
                .and_then(|summary| summary.not_after.clone()),
            serial: summary.as_ref().map(|summary| summary.serial.clone()),
            self_signed: summary
                .as_ref()
                .is_some_and(|summary| summary.subject == summary.issuer),
            trusted: trust_error.is_none(),
            accepted_untrusted: trust_error.is_some()
                && trust == TlsTrust::AcceptUntrusted
                && outcome.is_ok(),
            trust_error: trust_error.clone(),
        });
    }
    outcome.map_err(|error| match (&trust_error, trust) {
        (Some(reason), TlsTrust::Verify) => format!(
            "the certificate presented is not trusted ({reason}); accepting it must be explicit (TlsTrust::AcceptUntrusted)"
        ),
        _ => format!("TLS handshake with {} failed: {error}", target.host),
    })
}

fn build_request(check: &Check, target: &Target) -> Result<hyper::Request<Empty<Bytes>>, String> {
    let method = hyper::Method::from_bytes(check.method.as_bytes())
        .map_err(|_| format!("`{}` is not an HTTP method", check.method))?;
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(target.path_and_query.as_str())
        .header(hyper::header::HOST, target.authority.as_str())
        .header(
            hyper::header::USER_AGENT,
            concat!("stackctl-check/", env!("CARGO_PKG_VERSION")),
        )
        .header(hyper::header::ACCEPT, "*/*")
        .header(hyper::header::CONNECTION, "close");
    if let Some(credentials) = &check.basic_auth {
        let password = credentials.password.expose().ok_or_else(|| {
            format!(
                "the password for `{}` is known only by its digest here; set its variable",
                credentials.user
            )
        })?;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{password}", credentials.user));
        builder = builder.header(hyper::header::AUTHORIZATION, format!("Basic {token}"));
    }
    builder
        .body(Empty::new())
        .map_err(|error| format!("cannot build the request: {error}"))
}

async fn send<S>(
    stream: S,
    request: hyper::Request<Empty<Bytes>>,
    options: &CheckOptions,
    result: &mut CheckResult,
    started: Instant,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("HTTP handshake failed: {error}"))?;
    // The connection task ends with the response or when it is dropped.
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| format!("the request failed: {error}"))?;
    result.timing.first_byte_ms = Some(milliseconds(started.elapsed()));
    result.status = Some(response.status().as_u16());
    for (name, value) in response.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        result
            .headers
            .entry(name.as_str().to_string())
            .and_modify(|existing| {
                existing.push_str(", ");
                existing.push_str(&value);
            })
            .or_insert(value);
    }

    // Read at most a bounded amount: enough for an excerpt and a byte count.
    let limit = options.body_excerpt_bytes.max(1).saturating_mul(64);
    let mut body = response.into_body();
    let mut collected: Vec<u8> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| format!("reading the body failed: {error}"))?;
        if let Some(data) = frame.data_ref() {
            total += data.len();
            let room = options.body_excerpt_bytes.saturating_sub(collected.len());
            collected.extend_from_slice(&data[..data.len().min(room)]);
        }
        if total >= limit {
            result.body_truncated = true;
            break;
        }
    }
    if total > collected.len() {
        result.body_truncated = true;
    }
    result.body_bytes = total;
    result.body_excerpt = String::from_utf8_lossy(&collected).into_owned();
    driver.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets_with_and_without_ports() {
        let target = parse_target("https://example.test:18443/api/health?x=1").unwrap();
        assert!(target.https);
        assert_eq!(target.host, "example.test");
        assert_eq!(target.port, 18443);
        assert_eq!(target.authority, "example.test:18443");
        assert_eq!(target.path_and_query, "/api/health?x=1");
        let target = parse_target("http://example.test").unwrap();
        assert_eq!(
            (
                target.port,
                target.authority.as_str(),
                target.path_and_query.as_str()
            ),
            (80, "example.test", "/")
        );
        assert!(parse_target("ftp://example.test/").is_err());
    }

    #[test]
    fn resolve_overrides_match_host_and_port() {
        let rule = ResolveOverride {
            host: "example.test".into(),
            port: Some(18443),
            address: "127.0.0.1".parse().unwrap(),
        };
        assert!(rule.matches("EXAMPLE.test", 18443));
        assert!(!rule.matches("example.test", 443));
        assert!(ResolveOverride::all_to("127.0.0.1".parse().unwrap()).matches("x", 1));
    }

    #[test]
    fn header_rules_compare_case_insensitively_by_name() {
        let headers = BTreeMap::from([("x-frame-options".to_string(), "DENY".to_string())]);
        assert_eq!(
            HeaderExpectation::new("X-Frame-Options", HeaderRule::Equals("DENY".into()))
                .failure(&headers),
            None
        );
        assert!(HeaderExpectation::new("Server", HeaderRule::Absent)
            .failure(&headers)
            .is_none());
        assert!(
            HeaderExpectation::new("X-Frame-Options", HeaderRule::Absent)
                .failure(&headers)
                .is_some()
        );
        assert!(
            HeaderExpectation::new("Referrer-Policy", HeaderRule::Present)
                .failure(&headers)
                .is_some()
        );
    }

    #[test]
    fn credentials_never_serialise_the_password() {
        let check = Check::get("auth", "https://flower.example.test/", 200)
            .with_basic_auth("admin", Secret::new("s3cret", "salt"));
        let json = serde_json::to_string(&check).unwrap();
        assert!(!json.contains("s3cret"));
        assert!(json.contains("\"user\":\"admin\""));
    }
}
