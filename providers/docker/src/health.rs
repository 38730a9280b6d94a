//! When a new container is ready to take traffic, decided by stackctl itself, and the
//! evidence a failure carries: the container's last log lines, Docker's health log and
//! the last readiness probe's output.
//!
//! # Why stackctl probes instead of waiting for Docker
//!
//! Docker keeps the health check (restart policies, `docker ps`, drift all read it), but
//! Docker 20.10 runs the first check one whole `interval` after the start (`start_interval`
//! needs Engine ≥ 25): with the reference stack's `interval = "5s"` a container that
//! answers after 200 ms would hold a swap for 5 s. So while a container starts, stackctl
//! runs the container's own health check itself every `poll_interval` (100 ms): the test
//! Docker would run (`Config.Healthcheck.Test`: the command, or `/bin/sh -c` for a
//! `CMD-SHELL` test such as the curl/wget of `health.http`), through the Engine API's
//! exec (`POST /containers/{id}/exec`, then start it and read its exit code).
//!
//! Exec and not an HTTP request from this machine: the Engine API is the one channel
//! that reaches the container the same way on every target — the local socket, or over
//! SSH the forwarded Docker socket — while a container's address is reachable from here
//! only locally (over SSH it would need TCP forwarding, and not at all on an `internal`
//! network). And it tests exactly what Docker's own check tests, so a container stackctl
//! calls ready is one Docker soon calls healthy.
//!
//! The wait is bounded by the run's health timeout and by the check's own budget, the
//! time Docker would take to call it unhealthy (`start_period + retries × (interval +
//! timeout)`); one probe may take the check's `timeout`. Docker's verdict still counts:
//! `healthy` is ready, `unhealthy` fails, an exited container fails at once. A container
//! without a health check is ready once it runs.

use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::api::{self, ClientError, DockerClient};
use crate::http::demultiplex_logs;
use crate::provider::DockerProvider;

/// Why a container did not become ready; the service's error says it after the
/// service's address.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HealthError {
    /// The daemon could not be asked.
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the container exited (code {code})")]
    Exited { code: Json },
    #[error("Docker reports it unhealthy")]
    Unhealthy {
        /// The last probe that ran, when one did.
        last_probe: Option<ProbeResult>,
    },
    #[error("not healthy after {waited:.0?}")]
    NotHealthyInTime {
        waited: Duration,
        /// The last probe that ran, when one did.
        last_probe: Option<ProbeResult>,
    },
}

impl HealthError {
    /// The last readiness probe's exit code and output, for the failure's evidence.
    pub(crate) fn last_probe(&self) -> Option<&ProbeResult> {
        match self {
            HealthError::NotHealthyInTime { last_probe, .. }
            | HealthError::Unhealthy { last_probe } => last_probe.as_ref(),
            _ => None,
        }
    }
}

/// What decided that a container is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// No health check: ready once running.
    Started,
    /// stackctl's own run of the health check passed.
    Probed,
    /// Docker reported it healthy first.
    DockerHealthy,
}

/// A container's health check as Docker runs it, read from `Config.Healthcheck`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HealthCheck {
    /// What to exec: the test's command, or `/bin/sh -c <test>` for `CMD-SHELL`.
    pub command: Vec<String>,
    /// How long one run may take.
    pub timeout: Duration,
    /// How long Docker would take to call a failing container unhealthy.
    pub budget: Duration,
}

/// Docker's defaults when a health check leaves a field at zero.
const DOCKER_INTERVAL: Duration = Duration::from_secs(30);
const DOCKER_TIMEOUT: Duration = Duration::from_secs(30);
const DOCKER_RETRIES: u32 = 3;

impl HealthCheck {
    /// The check in an inspected container's `Config.Healthcheck` (the service's own or
    /// the image's); `None` when there is none or it is disabled (`NONE`).
    pub(crate) fn of(healthcheck: &Json) -> Option<HealthCheck> {
        let test: Vec<&str> = healthcheck["Test"]
            .as_array()?
            .iter()
            .filter_map(Json::as_str)
            .collect();
        let command = match test.split_first()? {
            (&"CMD", arguments) if !arguments.is_empty() => arguments
                .iter()
                .map(|argument| argument.to_string())
                .collect(),
            (&"CMD-SHELL", [script]) => {
                vec!["/bin/sh".to_string(), "-c".to_string(), script.to_string()]
            }
            _ => return None,
        };
        let duration = |field: &str, default: Duration| match healthcheck[field].as_u64() {
            Some(nanos) if nanos > 0 => Duration::from_nanos(nanos),
            _ => default,
        };
        let interval = duration("Interval", DOCKER_INTERVAL);
        let timeout = duration("Timeout", DOCKER_TIMEOUT);
        let start_period = duration("StartPeriod", Duration::ZERO);
        let retries = match healthcheck["Retries"].as_u64() {
            Some(retries) if retries > 0 => u32::try_from(retries).unwrap_or(u32::MAX),
            _ => DOCKER_RETRIES,
        };
        Some(HealthCheck {
            command,
            timeout,
            budget: start_period + (interval + timeout) * retries,
        })
    }
}

/// One run of the health check: its exit code and what it printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProbeResult {
    pub exit_code: i64,
    pub output: String,
}

impl DockerProvider {
    /// Waits until the container is ready: its health check passes when stackctl runs
    /// it, or Docker reports it healthy, or — without a health check — it runs.
    pub(crate) async fn wait_ready(
        &self,
        client: &DockerClient,
        id: &str,
        timeout: Duration,
    ) -> Result<Readiness, HealthError> {
        let started = Instant::now();
        let mut deadline = started + timeout;
        let mut check: Option<Option<HealthCheck>> = None;
        let mut last_probe = None;
        loop {
            let inspect = client.send_json(api::inspect_container(id)).await?;
            let state = &inspect["State"];
            let status = state["Status"].as_str().unwrap_or("");
            if matches!(status, "exited" | "dead") {
                return Err(HealthError::Exited {
                    code: state["ExitCode"].clone(),
                });
            }
            let check = check.get_or_insert_with(|| {
                let check = HealthCheck::of(&inspect["Config"]["Healthcheck"]);
                if let Some(check) = &check {
                    deadline = deadline.min(started + check.budget);
                }
                check
            });
            match state["Health"]["Status"].as_str() {
                Some("healthy") => return Ok(Readiness::DockerHealthy),
                Some("unhealthy") => return Err(HealthError::Unhealthy { last_probe }),
                None if status == "running" && check.is_none() => return Ok(Readiness::Started),
                _ => {}
            }
            if let (Some(check), "running") = (check.as_ref(), status) {
                let probe = self.probe(client, id, check).await;
                if probe.exit_code == 0 {
                    tracing::debug!(container = id, after = ?started.elapsed(), "ready: its health check passed when run by stackctl");
                    return Ok(Readiness::Probed);
                }
                last_probe = Some(probe);
            }
            if Instant::now() >= deadline {
                return Err(HealthError::NotHealthyInTime {
                    waited: started.elapsed(),
                    last_probe,
                });
            }
            tokio::time::sleep(self.options.poll_interval).await;
        }
    }

    /// Runs the health check once inside the container. Any failure to run it (the
    /// daemon refused, the check outlived its timeout) is a failed probe whose output
    /// says why: readiness waits for a pass, whatever stood in the way.
    async fn probe(&self, client: &DockerClient, id: &str, check: &HealthCheck) -> ProbeResult {
        match tokio::time::timeout(check.timeout, exec(client, id, &check.command)).await {
            Ok(Ok(result)) => result,
            Ok(Err(error)) => ProbeResult {
                exit_code: -1,
                output: format!("the check could not run: {error}"),
            },
            Err(_) => ProbeResult {
                exit_code: -1,
                output: format!(
                    "the check took longer than its timeout ({:?})",
                    check.timeout
                ),
            },
        }
    }

    /// The container's last log lines, Docker's health log and the last readiness
    /// probe, for an error's detail.
    pub(crate) async fn failure_evidence(
        &self,
        client: &DockerClient,
        id: &str,
        last_probe: Option<&ProbeResult>,
    ) -> String {
        let mut detail = String::new();
        match client
            .send(api::container_logs(id, self.options.log_lines))
            .await
        {
            Ok(response) => {
                detail.push_str(&format!("last {} log lines:\n", self.options.log_lines));
                detail.push_str(&demultiplex_logs(&response.body));
            }
            Err(error) => detail.push_str(&format!("logs unavailable: {error}\n")),
        }
        if let Some(probe) = last_probe {
            detail.push_str(&format!(
                "\nlast readiness probe (the health check run by stackctl): exit {}: {}\n",
                probe.exit_code,
                probe.output.trim()
            ));
        }
        if let Ok(inspect) = client.send_json(api::inspect_container(id)).await {
            let log = inspect["State"]["Health"]["Log"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !log.is_empty() {
                detail.push_str("\nhealth log:\n");
                for entry in log {
                    detail.push_str(&format!(
                        "  exit {}: {}\n",
                        entry["ExitCode"],
                        entry["Output"].as_str().unwrap_or("").trim()
                    ));
                }
            }
        }
        detail
    }
}

/// Runs `command` in the container through the Engine API and returns its exit code and
/// output. Starting the exec streams the output until the command exits; its exit code
/// is read afterwards (asked again briefly while the daemon still reports it running).
async fn exec(
    client: &DockerClient,
    container: &str,
    command: &[String],
) -> Result<ProbeResult, ClientError> {
    let created = client
        .send_json(api::create_exec(container, command))
        .await?;
    let exec_id = created["Id"].as_str().unwrap_or_default().to_string();
    let output = client.send(api::start_exec(&exec_id)).await?;
    let output = demultiplex_logs(&output.body);
    for _ in 0..50 {
        let state = client.send_json(api::inspect_exec(&exec_id)).await?;
        if state["Running"].as_bool() != Some(true) {
            return Ok(ProbeResult {
                exit_code: state["ExitCode"].as_i64().unwrap_or(-1),
                output,
            });
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(ProbeResult {
        exit_code: -1,
        output: format!("{output}(the daemon still reports the check running)"),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn health_errors_say_why_in_a_few_words() {
        let exited = HealthError::Exited { code: json!(3) };
        assert_eq!(exited.to_string(), "the container exited (code 3)");
        assert_eq!(
            HealthError::Unhealthy { last_probe: None }.to_string(),
            "Docker reports it unhealthy"
        );
        let late = HealthError::NotHealthyInTime {
            waited: Duration::from_secs(90),
            last_probe: None,
        };
        assert_eq!(late.to_string(), "not healthy after 90s");
    }

    #[test]
    fn the_probe_runs_the_test_docker_runs_within_dockers_budget() {
        let command = HealthCheck::of(&json!({
            "Test": ["CMD", "/server", "health"],
            "Interval": 5_000_000_000u64, "Timeout": 3_000_000_000u64, "Retries": 10
        }))
        .unwrap();
        assert_eq!(command.command, ["/server", "health"]);
        assert_eq!(command.timeout, Duration::from_secs(3));
        assert_eq!(command.budget, Duration::from_secs(80));

        // `health.http` lowers to a CMD-SHELL test; a start period adds to the budget.
        let shell = HealthCheck::of(&json!({
            "Test": ["CMD-SHELL", "curl -fsS http://127.0.0.1:8000/api/health >/dev/null"],
            "Interval": 1_000_000_000u64, "Retries": 2, "StartPeriod": 4_000_000_000u64
        }))
        .unwrap();
        assert_eq!(
            shell.command,
            [
                "/bin/sh",
                "-c",
                "curl -fsS http://127.0.0.1:8000/api/health >/dev/null"
            ]
        );
        // Docker's 30 s default timeout where none is set.
        assert_eq!(shell.budget, Duration::from_secs(4 + 2 * (1 + 30)));
    }

    #[test]
    fn no_check_and_a_disabled_check_mean_ready_when_running() {
        assert_eq!(HealthCheck::of(&Json::Null), None);
        assert_eq!(HealthCheck::of(&json!({"Test": ["NONE"]})), None);
        assert_eq!(HealthCheck::of(&json!({"Test": []})), None);
        assert_eq!(HealthCheck::of(&json!({"Test": ["CMD"]})), None);
    }
}
