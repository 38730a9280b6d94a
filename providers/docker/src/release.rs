//! Release tasks (`release.<service>`): a one-off container run from the service's new
//! image, with its new env, networks, volumes and user, before the service's new version
//! takes traffic (Django's `migrate`). The planner orders the service's replacement after
//! it, so a task that fails leaves the old version serving.
//!
//! The container carries the stack's labels (a crash leaves nothing `destroy` cannot
//! find), never restarts, publishes nothing and has no health check. Whatever happens, it
//! is removed once it has exited; its whole log is kept for the run folder (the engine
//! redacts it there) and its last lines are the error's detail when it fails. State
//! records the task only once it exited 0: a crash before that runs it again next apply.

use std::time::Duration;

use stackctl_provider::{Action, ActionKind, ApplyOutcome, ProviderError, Value};

use crate::api::{self, DockerClient};
use crate::attributes::{desired_of, recorded_with};
use crate::http::demultiplex_logs;
use crate::provider::DockerProvider;
use crate::provider_error::failed;
use crate::spec::ServiceSpec;

/// The most of a task's log kept for the run folder.
const KEPT_LOG_BYTES: usize = 1024 * 1024;

impl DockerProvider {
    pub(crate) async fn apply_release(
        &self,
        client: &DockerClient,
        action: &Action,
    ) -> Result<ApplyOutcome, ProviderError> {
        let address = &action.address;
        // A task container left by an interrupted run goes before anything else.
        for leftover in self.service_containers(client, address).await? {
            let _ = client.send_raw(api::remove_container(&leftover.id)).await;
        }
        if action.kind == ActionKind::Delete {
            return Ok(ApplyOutcome::Deleted);
        }
        let desired = desired_of(action)?;
        let mut spec = ServiceSpec::from_attributes(address.name(), &desired.attributes)
            .map_err(|message| failed(format!("`{address}`: {message}"), None))?;
        spec.restart = "no".to_string();
        let timeout = Duration::from_secs(
            desired
                .attributes
                .get("timeout_seconds")
                .and_then(Value::as_integer)
                .unwrap_or(600)
                .max(1) as u64,
        );
        let labels = self.labels(address, &desired.hash());
        let id = self
            .create_container(client, address, &spec, &labels, &spec.container_name)
            .await?;

        let waited = client
            .with_timeout(timeout)
            .send_json(api::wait_container(&id))
            .await;
        let exit_code = match &waited {
            Ok(answer) => answer["StatusCode"].as_i64(),
            Err(_) => None,
        };
        let log = match client.send(api::all_container_logs(&id)).await {
            Ok(response) => demultiplex_logs(&response.body),
            Err(error) => format!("(the task's log could not be read: {error})\n"),
        };
        let _ = client.send_raw(api::remove_container(&id)).await;
        self.keep_release_log(address.name(), &log);

        let tail = last_lines(&log, self.options.log_lines as usize);
        let kept = "the service was not replaced: its previous version keeps serving";
        match (waited, exit_code) {
            (Ok(_), Some(0)) => Ok(ApplyOutcome::Recorded(recorded_with(desired, None, &[]))),
            (Ok(_), code) => Err(ProviderError::Failed {
                message: format!(
                    "the release task `{}` exited with {}; {kept}",
                    spec.command.unwrap_or_default().join(" "),
                    code.map_or("an unknown status".to_string(), |code| code.to_string())
                ),
                detail: Some(tail),
                hint: Some(format!(
                    "its whole log is in the run folder (`docker/release-{}.log`); fix the task and apply again",
                    address.name()
                )),
            }),
            (Err(error), _) => Err(ProviderError::Failed {
                message: format!(
                    "the release task of `{address}` did not finish within {}s ({error}); it was stopped and {kept}",
                    timeout.as_secs()
                ),
                detail: Some(tail),
                hint: Some("raise `timeout` under `[services.<name>.release]` if it needs longer".into()),
            }),
        }
    }

    /// Keeps the task's log (at most [`KEPT_LOG_BYTES`], its end) for the run folder.
    fn keep_release_log(&self, service: &str, log: &str) {
        let bytes = log.as_bytes();
        let kept = &bytes[bytes.len().saturating_sub(KEPT_LOG_BYTES)..];
        if let Ok(mut logs) = self.release_logs.lock() {
            logs.push((format!("release-{service}.log"), kept.to_vec()));
        }
    }
}

/// The last `count` lines of `text`, with a heading saying how many there are.
fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let shown = &lines[lines.len().saturating_sub(count)..];
    let mut tail = format!("last {} log lines of the release task:\n", shown.len());
    for line in shown {
        tail.push_str(line);
        tail.push('\n');
    }
    tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_the_last_lines() {
        let tail = last_lines("one\ntwo\nthree\n", 2);
        assert_eq!(tail, "last 2 log lines of the release task:\ntwo\nthree\n");
        assert_eq!(last_lines("", 5), "last 0 log lines of the release task:\n");
    }
}
