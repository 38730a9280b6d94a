//! Gating a new container on Docker's health status, and the evidence a failure carries:
//! the container's last log lines and its health log.

use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::api::{self, ClientError, DockerClient};
use crate::http::demultiplex_logs;
use crate::provider::DockerProvider;

/// Why a container did not become healthy; the service's error says it after the
/// service's address.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HealthError {
    /// The daemon could not be asked.
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the container exited (code {code})")]
    Exited { code: Json },
    #[error("Docker reports it unhealthy")]
    Unhealthy,
    #[error("not healthy after {timeout:.0?}")]
    NotHealthyInTime { timeout: Duration },
}

impl DockerProvider {
    /// Waits until Docker reports the container healthy (or running, without a health
    /// check). Returns the reason on failure.
    pub(crate) async fn wait_healthy(
        &self,
        client: &DockerClient,
        id: &str,
        timeout: Duration,
    ) -> Result<(), HealthError> {
        let started = Instant::now();
        loop {
            let inspect = client.send_json(api::inspect_container(id)).await?;
            let state = &inspect["State"];
            let status = state["Status"].as_str().unwrap_or("");
            if matches!(status, "exited" | "dead") {
                return Err(HealthError::Exited {
                    code: state["ExitCode"].clone(),
                });
            }
            match state["Health"]["Status"].as_str() {
                Some("healthy") => return Ok(()),
                Some("unhealthy") => return Err(HealthError::Unhealthy),
                None if status == "running" => return Ok(()),
                _ => {}
            }
            if started.elapsed() >= timeout {
                return Err(HealthError::NotHealthyInTime { timeout });
            }
            tokio::time::sleep(self.options.poll_interval).await;
        }
    }

    /// The container's last log lines and its health log, for an error's detail.
    pub(crate) async fn failure_evidence(&self, client: &DockerClient, id: &str) -> String {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn health_errors_say_why_in_a_few_words() {
        let exited = HealthError::Exited { code: json!(3) };
        assert_eq!(exited.to_string(), "the container exited (code 3)");
        assert_eq!(
            HealthError::Unhealthy.to_string(),
            "Docker reports it unhealthy"
        );
        let late = HealthError::NotHealthyInTime {
            timeout: Duration::from_secs(90),
        };
        assert_eq!(late.to_string(), "not healthy after 90s");
    }
}
