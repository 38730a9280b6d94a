//! Gating a new container on Docker's health status, and the evidence a failure carries:
//! the container's last log lines and its health log.

use std::time::{Duration, Instant};

use crate::api::{self, DockerClient};
use crate::http::demultiplex_logs;
use crate::provider::DockerProvider;

impl DockerProvider {
    /// Waits until Docker reports the container healthy (or running, without a health
    /// check). Returns the reason on failure.
    pub(crate) async fn wait_healthy(
        &self,
        client: &DockerClient,
        id: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let inspect = client
                .send_json(api::inspect_container(id))
                .await
                .map_err(|error| error.to_string())?;
            let state = &inspect["State"];
            let status = state["Status"].as_str().unwrap_or("");
            if matches!(status, "exited" | "dead") {
                return Err(format!("the container exited (code {})", state["ExitCode"]));
            }
            match state["Health"]["Status"].as_str() {
                Some("healthy") => return Ok(()),
                Some("unhealthy") => return Err("Docker reports it unhealthy".into()),
                None if status == "running" => return Ok(()),
                _ => {}
            }
            if started.elapsed() >= timeout {
                return Err(format!("not healthy after {:.0?}", timeout));
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
