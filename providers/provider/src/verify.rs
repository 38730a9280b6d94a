//! Verification: checking the live stack from the outside, as a user would reach it.
//!
//! The engine owns the use case (`stackctl verify`, and the checks after an apply); the
//! provider that serves the stack's traffic — the edge — owns the how: which requests its
//! routes imply, where the edge listens, when it has loaded the new configuration. The
//! engine hands it the user's `[[checks]]` already interpolated, and receives results it
//! can write to the run folder and print, without knowing the edge's formats.

use std::net::IpAddr;

use crate::{EdgeTlsReport, Resource, Secret};

/// A check the user wrote in `[[checks]]`, with every `${VAR}` already resolved.
#[derive(Clone, Debug)]
pub struct UserCheck {
    /// `checks[0]`, …: the label results carry.
    pub name: String,
    pub url: String,
    pub expect_status: u16,
    /// Header name → expected value; `None` when the header need only be present.
    pub expect_headers: Vec<(String, Option<String>)>,
}

/// The credentials that open a dashboard route (basic auth), so that the check "the
/// dashboard answers" can log in.
#[derive(Clone, Debug)]
pub struct DashboardLogin {
    /// The route's host name, as requests name it.
    pub host: String,
    pub user: String,
    pub password: Secret,
}

/// What a provider needs to verify the stack.
#[derive(Clone, Debug)]
pub struct VerifyRequest {
    pub stack: String,
    /// The desired resources of this run (prepared), every provider's.
    pub desired: Vec<Resource>,
    /// The stack has an edge (`[edge]`): the checks its routes imply are added.
    pub has_edge: bool,
    /// Where requests must go whatever their URL names (the edge's bind address, the
    /// host's address, the droplet's IP), like curl's `--resolve`; `None` lets DNS decide.
    pub edge_address: Option<IpAddr>,
    /// The droplet's recorded IPv4, to reach a droplet target over SSH.
    pub droplet_address: Option<String>,
    /// The edge's API port published on the host's loopback (`[edge] admin_port`).
    pub edge_admin_port: Option<u16>,
    pub user_checks: Vec<UserCheck>,
    /// Services no route names: they must not be reachable through the edge.
    pub unrouted_services: Vec<String>,
    pub dashboard_logins: Vec<DashboardLogin>,
}

/// The results of one provider's verification.
#[derive(Clone, Debug)]
pub struct Verification {
    /// Every result with its evidence (status, headers, certificate), as JSON for the run
    /// folder and `--format json`.
    pub document: serde_json::Value,
    /// One line per result for people, indented under a heading the caller prints.
    pub lines: Vec<String>,
    pub total: usize,
    pub failed: usize,
    /// Something a person should know that is not a check result (the edge had not
    /// loaded every route when the checks ran).
    pub warnings: Vec<String>,
    /// The edge's TLS as probed (versions below the minimum refused, what is negotiated,
    /// HSTS); `None` from a provider that is not the edge, or a stack without one.
    pub tls: Option<EdgeTlsReport>,
}

/// Why verification could not run at all (as opposed to checks that failed).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct VerifyError(pub String);
