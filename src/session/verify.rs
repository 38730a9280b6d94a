//! Verify: the user's `[[checks]]` and the checks the routes imply, run by the provider
//! that serves the stack's traffic, with the results kept in the run folder.

use std::net::IpAddr;

use stackctl_provider::{DashboardLogin, EdgeTlsReport, Secret, UserCheck, VerifyRequest};

use super::{droplet_address, Session, SessionError};
use crate::apply::runs::RunFolder;
use crate::config::{HostTarget, MiddlewareConfig};
use crate::state::State;

/// The results of a verification, redacted, ready to print.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    /// Every result with its evidence, as pretty JSON (also `checks.json`).
    pub document: String,
    /// The edge's TLS as probed (also `tls.json`): versions below the minimum refused,
    /// what a current client negotiates, HSTS. `None` without an edge or a routed host.
    pub tls: Option<EdgeTlsReport>,
    /// One line per result for people.
    pub lines: Vec<String>,
    pub total: usize,
    pub failed: usize,
    pub warnings: Vec<String>,
}

impl Session {
    /// Runs the checks against the live stack.
    ///
    /// Its run folder (`runs/<time>/`) keeps the results (`checks.json`) and the security
    /// report read from the target (`security.json`, `security.txt`).
    pub async fn verify(&self) -> Result<VerifyReport, SessionError> {
        let folder =
            RunFolder::create(&self.runs_directory, self.secrets.clone()).map_err(|error| {
                SessionError::RunFolder {
                    directory: self.runs_directory.display().to_string(),
                    cause: error.to_string(),
                }
            })?;
        let mut report = self
            .verify_with_state(self.state.as_ref(), Some(&folder))
            .await?;
        let security = self
            .write_security_report(&folder, report.tls.as_ref())
            .await;
        if let Err(message) = security {
            report.warnings.push(message);
        }
        Ok(report)
    }

    /// Runs the checks, the droplet's address taken from `state` (an apply's, just
    /// written); `folder`, when given, receives every result as `checks.json`.
    pub(super) async fn verify_with_state(
        &self,
        state: Option<&State>,
        folder: Option<&RunFolder>,
    ) -> Result<VerifyReport, SessionError> {
        let request = self.verify_request(state);
        let mut document = Vec::new();
        let mut report = VerifyReport {
            document: String::new(),
            tls: None,
            lines: Vec::new(),
            total: 0,
            failed: 0,
            warnings: Vec::new(),
        };
        for provider in self.backends.providers.all() {
            let Some(result) = provider.verify(&request).await else {
                continue;
            };
            let verification = result.map_err(|error| SessionError::Verify(error.0))?;
            match verification.document {
                serde_json::Value::Array(items) => document.extend(items),
                other => document.push(other),
            }
            report.lines.extend(verification.lines);
            report.total += verification.total;
            report.failed += verification.failed;
            report.warnings.extend(verification.warnings);
            if verification.tls.is_some() {
                report.tls = verification.tls;
            }
        }
        let redact = |text: &str| crate::apply::redact::redact(text, &self.secrets);
        report.document =
            redact(&(serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"));
        report.lines = report.lines.iter().map(|line| redact(line)).collect();
        if let Some(folder) = folder {
            let _ = folder.write("checks.json", report.document.as_bytes());
            if let Some(tls) = &report.tls {
                let text = serde_json::to_string_pretty(tls).unwrap_or_default() + "\n";
                let _ = folder.write("tls.json", redact(&text).as_bytes());
            }
        }
        Ok(report)
    }

    fn verify_request(&self, state: Option<&State>) -> VerifyRequest {
        let config = &self.loaded.config;
        let environment = &self.loaded.environment;
        let user_checks = config
            .checks
            .iter()
            .enumerate()
            .map(|(index, check)| UserCheck {
                name: format!("checks[{index}]"),
                url: environment.interpolate(&check.url).text,
                expect_status: check.expect_status,
                expect_headers: check
                    .expect_headers
                    .iter()
                    .map(|(name, value)| {
                        let expected = (value != "*").then(|| environment.interpolate(value).text);
                        (name.clone(), expected)
                    })
                    .collect(),
            })
            .collect();
        let routed: Vec<&String> = config.routes.values().map(|route| &route.service).collect();
        let unrouted_services = config
            .services
            .keys()
            .filter(|name| !routed.contains(name))
            .cloned()
            .collect();
        VerifyRequest {
            stack: self.stack().to_string(),
            desired: self.desired.clone(),
            user_checks,
            unrouted_services,
            dashboard_logins: self.dashboard_logins(),
            has_edge: config.edge.is_some(),
            edge_address: self.edge_address(state),
            droplet_address: droplet_address(config, state),
            edge_admin_port: config.edge.as_ref().and_then(|edge| edge.admin_port),
        }
    }

    /// The basic-auth login of each dashboard route, from the config.
    fn dashboard_logins(&self) -> Vec<DashboardLogin> {
        let config = &self.loaded.config;
        let environment = &self.loaded.environment;
        let mut logins = Vec::new();
        for route in config.routes.values() {
            let Some(service) = config.services.get(&route.service) else {
                continue;
            };
            let host = environment
                .interpolate(route.host.as_deref().unwrap_or_default())
                .text;
            if !service.dashboard || host.is_empty() {
                continue;
            }
            let middlewares = crate::config::validate::flatten_middlewares(
                &route.middlewares,
                &config.middlewares,
            );
            let first_basic_auth =
                middlewares
                    .into_iter()
                    .find_map(|middleware| match middleware {
                        MiddlewareConfig::BasicAuth { users, .. } => Some(users),
                        _ => None,
                    });
            if let Some((user, password)) = first_basic_auth.and_then(|users| users.iter().next()) {
                let password = environment.interpolate(password).text;
                logins.push(DashboardLogin {
                    host,
                    user: user.clone(),
                    password: Secret::new(&password, "checks"),
                });
            }
        }
        logins
    }

    /// Where the edge listens: its bind address, this machine, the host's address, or
    /// the droplet's IP.
    fn edge_address(&self, state: Option<&State>) -> Option<IpAddr> {
        let config = &self.loaded.config;
        if let Some(bind) = config
            .edge
            .as_ref()
            .and_then(|edge| edge.bind_address.as_ref())
        {
            if let Ok(address) = bind.parse::<IpAddr>() {
                if !address.is_unspecified() {
                    return Some(address);
                }
            }
        }
        match config
            .target
            .as_ref()
            .and_then(|target| target.host.as_ref())
        {
            Some(HostTarget::Local(_)) => return "127.0.0.1".parse().ok(),
            Some(HostTarget::Remote(remote)) => return remote.address.parse().ok(),
            None => {}
        }
        droplet_address(config, state)?.parse().ok()
    }
}
