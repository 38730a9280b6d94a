//! The edge's TLS, as probed from the outside: which protocol versions below the
//! configured minimum the edge refuses, what a normal client negotiates (version, cipher
//! suite, certificate issuer), and whether HTTPS answers carry HSTS.
//!
//! The edge provider fills it during verification; the engine writes it to the run folder
//! (`tls.json`) and prints it. It is plain data with serde both ways so that other
//! reports (a per-run security report) can embed it as it is.

use serde::{Deserialize, Serialize};

/// What the TLS probe of the edge found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeTlsReport {
    /// Where the probes connected, `address:port`.
    pub endpoint: String,
    /// The name sent as SNI (a routed host).
    pub server_name: String,
    /// The configured minimum, e.g. `TLS 1.2`.
    pub minimum_version: String,
    /// Every probe passed (a missing HSTS the configuration does not promise is a warning,
    /// not a failure).
    pub passed: bool,
    /// One handshake per version below the minimum, each expected to be refused.
    pub below_minimum: Vec<VersionProbe>,
    /// A normal handshake and request, as a browser would make it.
    pub negotiated: NegotiatedTls,
    pub hsts: HstsFinding,
    /// Why `passed` is false, one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// What a person should know that is not a failure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One handshake offering only `version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionProbe {
    /// `TLS 1.0`, `TLS 1.1`, `TLS 1.2`.
    pub version: String,
    /// The edge refused it (a `protocol_version` or `insufficient_security` alert; a
    /// closed connection or another alert proves nothing).
    pub refused: bool,
    /// Refused, as it must be.
    pub passed: bool,
    /// What the edge answered: `alert protocol_version`, `ServerHello TLS 1.0 with …`.
    pub answer: String,
}

/// The handshake a current client makes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NegotiatedTls {
    /// `TLS 1.3`; absent when no handshake completed.
    pub version: Option<String>,
    /// `TLS13_AES_128_GCM_SHA256`.
    pub cipher_suite: Option<String>,
    pub certificate_subject: Option<String>,
    /// `CN=(STAGING) …` for Let's Encrypt's staging CA, `CN=TRAEFIK DEFAULT CERT` for
    /// Traefik's self-signed default.
    pub certificate_issuer: Option<String>,
    pub certificate_not_after: Option<String>,
    pub self_signed: bool,
    /// Chains to a public root and names the host.
    pub trusted: bool,
    /// The transport error when the handshake or request failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The `Strict-Transport-Security` header on an HTTPS answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HstsFinding {
    /// The header as sent; absent when the answer had none.
    pub header: Option<String>,
    pub max_age: Option<u64>,
    pub include_subdomains: bool,
    pub preload: bool,
    /// The `max-age` the stack's headers middleware promises, if any.
    pub expected_max_age: Option<u64>,
    /// Present with at least the promised `max-age` (or, when nothing is promised,
    /// present at all).
    pub passed: bool,
}
