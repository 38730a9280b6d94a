//! Verifying the stack through the edge: the user's `[[checks]]` and the checks the
//! routes imply, sent to where the edge listens once Traefik has loaded every route.
//!
//! The engine decides *when* to verify (`stackctl verify`, after an apply) and where the
//! results go; this file knows what only the Traefik side knows: which requests a route
//! implies, how to tell that Traefik serves the current rules (its API), which check
//! needs the dashboard's login, and which route and minimum TLS version the TLS probe of
//! the edge uses.

use std::time::Duration;

use stackctl_provider::{Resource, Verification, VerifyError, VerifyRequest};

use crate::admin;
use crate::checks::tls_probe::TlsVersion;
use crate::checks::{
    self, Check, CheckOptions, Credentials, EdgeFacts, HeaderExpectation, HeaderRule,
    ResolveOverride, RouteFacts, TlsAuditTarget, TlsTrust,
};
use crate::provider::STATIC_FILE_NAME;
use crate::replicas::{self, ReplicaResult};
use crate::spec::TlsOptionsSpec;
use crate::TraefikProvider;

/// Traefik throttles reloads by 2 s; without its API that window is simply waited out.
const RELOAD_WINDOW: Duration = Duration::from_millis(2500);
/// How long Traefik may take to load every route before the checks go ahead anyway.
const LOAD_DEADLINE: Duration = Duration::from_secs(20);
/// How long a routed swarm service's servers may take to show in Traefik's API with a
/// status each.
const SERVER_STATUS_DEADLINE: Duration = Duration::from_secs(10);

impl TraefikProvider {
    /// Runs the user's checks and the checks the routes imply through the edge.
    pub async fn verify_edge(&self, request: &VerifyRequest) -> Result<Verification, VerifyError> {
        let mut list: Vec<Check> = request
            .user_checks
            .iter()
            .map(|user_check| {
                let mut check = Check::get(
                    user_check.name.clone(),
                    user_check.url.clone(),
                    user_check.expect_status,
                );
                for (name, value) in &user_check.expect_headers {
                    let rule = match value {
                        None => HeaderRule::Present,
                        Some(value) => HeaderRule::Equals(value.clone()),
                    };
                    check = check.with_header(HeaderExpectation::new(name.clone(), rule));
                }
                check
            })
            .collect();
        if request.has_edge {
            let facts = EdgeFacts::from_resources(&request.desired, &request.unrouted_services)
                .map_err(|error| VerifyError(format!("cannot derive the edge checks: {error}")))?;
            list.extend(checks::implied_checks(&facts));
        }
        // A dashboard's "answers" check logs in with the route's basic-auth user.
        for check in &mut list {
            let login = request
                .dashboard_logins
                .iter()
                .find(|login| check.url.contains(&format!("//{}", login.host)));
            if let Some(login) = login {
                if check.name.contains("answers") {
                    check.basic_auth = Some(Credentials {
                        user: login.user.clone(),
                        password: login.password.clone(),
                    });
                }
            }
        }
        let warnings: Vec<String> = self.wait_for_routes(request).await.into_iter().collect();
        let options = CheckOptions {
            resolve: request
                .edge_address
                .map(|address| vec![ResolveOverride::all_to(address)])
                .unwrap_or_default(),
            // A fresh edge presents Traefik's own or a staging certificate: accepted, and
            // reported as untrusted in every result.
            tls: TlsTrust::AcceptUntrusted,
            retry_for: Duration::from_secs(20),
            ..CheckOptions::default()
        };
        let results = checks::run_checks(&list, &options).await;
        // The edge's TLS, probed once the checks have seen it answer.
        let audit_target = if request.has_edge {
            tls_audit_target(&request.desired)
        } else {
            None
        };
        let tls = match audit_target {
            Some(target) => Some(checks::audit_tls(&target, &options).await),
            None => None,
        };
        let mut lines = Vec::new();
        let mut document: Vec<serde_json::Value> = results
            .iter()
            .filter_map(|result| serde_json::to_value(result).ok())
            .collect();
        for result in &results {
            lines.push(result.summary());
            if let Some(tls) = &result.tls {
                if !tls.trusted {
                    lines.push(format!(
                        "     certificate not trusted: {} (issued by {})",
                        tls.subject.as_deref().unwrap_or("?"),
                        tls.issuer.as_deref().unwrap_or("?")
                    ));
                }
            }
        }
        let (replica_results, replica_warning) = self.check_replicas(request).await;
        for result in &replica_results {
            lines.push(result.summary());
        }
        let mut total = results.len() + replica_results.len();
        let mut failed = results.iter().filter(|result| !result.passed).count()
            + replica_results
                .iter()
                .filter(|result| !result.passed)
                .count();
        let mut warnings = warnings;
        warnings.extend(replica_warning);
        document.extend(
            replica_results
                .iter()
                .filter_map(|result| serde_json::to_value(result).ok()),
        );
        if let Some(report) = &tls {
            for (passed, line) in checks::report_lines(report) {
                total += 1;
                if !passed {
                    failed += 1;
                }
                lines.push(format!("{} {line}", if passed { "ok  " } else { "FAIL" }));
            }
            warnings.extend(report.warnings.iter().cloned());
        }
        Ok(Verification {
            warnings,
            document: serde_json::Value::Array(document),
            lines,
            total,
            failed,
            tls,
        })
    }

    /// One result per replica of each routed swarm service, from Traefik's API: the
    /// status its health check gives each task's address, and whether it balances over
    /// as many servers as the service has replicas. The task addresses are on an overlay
    /// the manager cannot reach, so the edge's view is the one there is. Without a
    /// published admin port there is no API to ask: a warning says so.
    async fn check_replicas(
        &self,
        request: &VerifyRequest,
    ) -> (Vec<ReplicaResult>, Option<String>) {
        let backends = replicas::replicated_backends(&request.desired);
        if backends.is_empty() || !request.has_edge {
            return (Vec::new(), None);
        }
        let Some(admin_port) = request.edge_admin_port else {
            return (
                Vec::new(),
                Some(
                    "each replica is not checked: reading Traefik's API needs `[edge] admin_port`"
                        .to_string(),
                ),
            );
        };
        let host = match self
            .connector()
            .connect(request.droplet_address.as_deref())
            .await
        {
            Ok(host) => host,
            Err(error) => {
                return (
                    Vec::new(),
                    Some(format!(
                        "each replica is not checked: cannot reach the edge's host: {error}"
                    )),
                )
            }
        };
        let mut results = Vec::new();
        for backend in &backends {
            let path = admin::service_servers_path(&backend.traefik_service);
            let deadline = std::time::Instant::now() + SERVER_STATUS_DEADLINE;
            // A backend file written moments ago may not be loaded yet (404), and a new
            // server has no status until Traefik built it: ask again until the deadline.
            let last = loop {
                let answer = match host.connect_tcp("127.0.0.1", admin_port).await {
                    Ok(stream) => admin::get_json(stream, &path)
                        .await
                        .map(|json| admin::parse_server_statuses(&json))
                        .map_err(|error| error.to_string()),
                    Err(error) => Err(format!("cannot reach Traefik's API: {error}")),
                };
                let complete = answer.as_ref().is_ok_and(|servers| {
                    !servers.is_empty() && servers.iter().all(|(_, status)| status.is_some())
                });
                if complete || std::time::Instant::now() >= deadline {
                    break answer;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            };
            match last {
                Ok(servers) => results.extend(replicas::replica_results(backend, &servers)),
                Err(cause) => results.push(ReplicaResult {
                    name: format!("replicas of `{}`", backend.service),
                    service: backend.service.clone(),
                    server: None,
                    status: None,
                    passed: false,
                    message: format!("cannot read each replica's status: {cause}"),
                }),
            }
        }
        (results, None)
    }

    /// Waits (bounded) until Traefik has loaded every route with its current rule, so
    /// checks see the new configuration rather than the last one. Returns a warning when
    /// some route was still not served after the deadline.
    async fn wait_for_routes(&self, request: &VerifyRequest) -> Option<String> {
        let Some(admin_port) = request.edge_admin_port else {
            tokio::time::sleep(RELOAD_WINDOW).await;
            return None;
        };
        let routes = route_rules(&request.desired);
        let names: Vec<String> = routes.iter().map(|(name, _)| name.clone()).collect();
        let Ok(host) = self
            .connector()
            .connect(request.droplet_address.as_deref())
            .await
        else {
            tokio::time::sleep(RELOAD_WINDOW).await;
            return None;
        };
        let deadline = std::time::Instant::now() + LOAD_DEADLINE;
        let mut waiting = String::new();
        while std::time::Instant::now() < deadline {
            if let Ok(stream) = host.connect_tcp("127.0.0.1", admin_port).await {
                if let Ok(states) = admin::routers(stream).await {
                    let mut unready = admin::unready_routers(&states, &names);
                    for (name, rule) in &routes {
                        let live = states
                            .iter()
                            .find(|state| state.name == format!("{name}@file"))
                            .and_then(|state| state.rule.clone());
                        if rule.is_some() && live.is_some() && &live != rule {
                            unready.insert(
                                name.clone(),
                                "still serving the previous rule".to_string(),
                            );
                        }
                    }
                    if unready.is_empty() {
                        // Middlewares reload in the same batch; a short pause covers a
                        // middleware-only change landing in the next throttle window.
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        return None;
                    }
                    waiting = unready
                        .iter()
                        .map(|(name, reason)| format!("{name} ({reason})"))
                        .collect::<Vec<_>>()
                        .join(", ");
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if waiting.is_empty() {
            None
        } else {
            Some(format!(
                "Traefik has not loaded every route after 20 s: {waiting}"
            ))
        }
    }
}

/// What the TLS audit probes: the edge's minimum version, and a route's HTTPS URL
/// (preferring one whose headers promise HSTS, so the promise is checked too). `None`
/// when no route names a host: no URL would reach a router.
fn tls_audit_target(desired: &[Resource]) -> Option<TlsAuditTarget> {
    let static_file = desired.iter().find(|resource| {
        resource.address.kind() == "file" && resource.address.name() == STATIC_FILE_NAME
    })?;
    let minimum = TlsOptionsSpec::from_attributes(&static_file.attributes)
        .ok()
        .and_then(|options| TlsVersion::from_traefik(&options.min_version))?;
    let facts = EdgeFacts::from_resources(desired, &[]).ok()?;
    let mut routes: Vec<&RouteFacts> = facts
        .routes
        .iter()
        .filter(|route| route.host.is_some())
        .collect();
    routes.sort_by_key(|route| {
        let promises_hsts = route
            .headers
            .as_ref()
            .is_some_and(|headers| headers.sts_seconds > 0);
        (!promises_hsts, route.name.clone())
    });
    let route = routes.first()?;
    let host = route.host.as_deref()?;
    let path = route.path.as_deref().unwrap_or("/");
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let url = if facts.https_port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{}{path}", facts.https_port)
    };
    Some(TlsAuditTarget {
        url,
        minimum,
        expected_hsts_max_age: route
            .headers
            .as_ref()
            .map(|headers| headers.sts_seconds)
            .filter(|seconds| *seconds > 0)
            .and_then(|seconds| u64::try_from(seconds).ok()),
    })
}

/// Each route's name and the rule it should be served with.
fn route_rules(desired: &[Resource]) -> Vec<(String, Option<String>)> {
    desired
        .iter()
        .filter(|resource| resource.address.kind() == "route")
        .map(|resource| {
            (
                resource.address.name().to_string(),
                resource
                    .attributes
                    .get("rule")
                    .and_then(|rule| rule.as_text())
                    .map(str::to_string),
            )
        })
        .collect()
}
