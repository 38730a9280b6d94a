//! Applying a `swarm_service.*` resource: create, update in place (Swarm's rolling update
//! with the service's `update` policy), delete; each waits until Swarm has done it.
//!
//! "Done" is read from the tasks, not assumed: an apply returns when as many tasks as
//! `replicas` run the service's current spec (a task with a health check runs only once
//! healthy: Swarm keeps it `starting` until then), and no task of an older spec is still
//! wanted. An update Swarm rolled back or paused fails with Swarm's own message and the
//! failed tasks' errors; so does a service whose tasks do not all run in the health
//! timeout (not placeable, image missing on a node, crashing).

use std::time::{Duration, Instant};

use serde_json::Value as Json;
use stackctl_provider::{Action, ActionKind, ApplyContext, ApplyOutcome, ProviderError, Value};

use super::live::{task_states, LIVE_NAME, SERVICE_ID, TASKS};
use super::requests;
use super::spec::SwarmServiceSpec;
use crate::api::{CountedConnection, DockerClient};
use crate::attributes::{desired_of, recorded_with};
use crate::http::{Request, Response};
use crate::provider::DockerProvider;
use crate::provider_error::{failed, from_client};

/// The least time between two reads of a service converging: a task changes state on
/// Swarm's scale of seconds, not the 100 ms a container's health probe uses.
const LEAST_POLL: Duration = Duration::from_millis(250);

/// How long a removed service's tasks may take to stop (beyond their grace period).
const REMOVAL_TIMEOUT: Duration = Duration::from_secs(60);

/// The states of an update that Swarm will not finish by itself.
const UPDATE_GAVE_UP: &[&str] = &[
    "paused",
    "rollback_started",
    "rollback_paused",
    "rollback_completed",
];

impl DockerProvider {
    pub(crate) async fn apply_swarm_service(
        &self,
        client: &DockerClient,
        action: &Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        let resource = action.address.to_string();
        let existing = self.swarm_services_of(client, &resource).await?;
        if action.kind == ActionKind::Delete {
            for service in &existing {
                self.remove_swarm_service(client, service).await?;
            }
            return Ok(ApplyOutcome::Deleted);
        }
        let desired = desired_of(action)?;
        let spec = SwarmServiceSpec::from_attributes(action.address.name(), &desired.attributes)
            .map_err(|error| failed(format!("`{}`: {error}", action.address), None))?;
        let labels = self.labels(&action.address, &desired.hash());
        let body = spec
            .body(&spec.service_name, &labels)
            .map_err(|error| failed(format!("`{}`: {error}", action.address), None))?;
        // The one to keep: the recorded one if it is still there, else the newest.
        let recorded_id = action.prior.as_ref().and_then(|prior| prior.id.clone());
        let kept = existing
            .iter()
            .find(|service| service["ID"].as_str() == recorded_id.as_deref())
            .or_else(|| {
                existing
                    .iter()
                    .max_by_key(|service| service["CreatedAt"].as_str().unwrap_or("").to_string())
            });
        // An update Swarm gave up before this one is not this one's failure.
        let mut previous_update = None;
        let id = match kept {
            Some(service) => {
                previous_update = service["UpdateStatus"]["StartedAt"]
                    .as_str()
                    .map(str::to_string);
                let id = service["ID"].as_str().unwrap_or("").to_string();
                let version = service["Version"]["Index"].as_u64().unwrap_or(0);
                client
                    .send(requests::update_service(&id, version, body))
                    .await
                    .map_err(|error| {
                        failed(
                            format!(
                                "`{}`: Swarm refused the update: {}",
                                action.address,
                                from_client(error)
                            ),
                            None,
                        )
                    })?;
                id
            }
            None => {
                let created = client
                    .send_json(requests::create_service(body))
                    .await
                    .map_err(|error| {
                        failed(
                            format!(
                                "`{}`: Swarm refused the service: {}",
                                action.address,
                                from_client(error)
                            ),
                            None,
                        )
                    })?;
                created["ID"].as_str().unwrap_or("").to_string()
            }
        };
        // Others labelled as this resource (left by an interrupted switch) go.
        for service in existing
            .iter()
            .filter(|service| service["ID"].as_str() != Some(id.as_str()))
        {
            self.remove_swarm_service(client, service).await?;
        }
        let (service, tasks) = self
            .wait_converged(
                client,
                &action.address.to_string(),
                &id,
                (spec.replicas, previous_update.as_deref()),
                context.health_timeout,
            )
            .await?;
        let task_refs: Vec<&Json> = tasks.iter().collect();
        let (_, described) = task_states(&task_refs, &Default::default());
        Ok(ApplyOutcome::Recorded(recorded_with(
            desired,
            Some(id.clone()),
            &[
                (SERVICE_ID, Value::text(id)),
                (
                    LIVE_NAME,
                    Value::text(service["Spec"]["Name"].as_str().unwrap_or("")),
                ),
                (TASKS, Value::List(described)),
            ],
        )))
    }

    /// The swarm services labelled as `resource` of this stack.
    async fn swarm_services_of(
        &self,
        client: &DockerClient,
        resource: &str,
    ) -> Result<Vec<Json>, ProviderError> {
        let listed = client
            .send_json(requests::list_services_of(&self.stack, resource))
            .await
            .map_err(from_client)?;
        Ok(listed.as_array().cloned().unwrap_or_default())
    }

    /// Removes a service and waits until its tasks are gone (each stopped in its grace
    /// period), so that what it used (a network, a volume) may go next.
    pub(crate) async fn remove_swarm_service(
        &self,
        client: &DockerClient,
        service: &Json,
    ) -> Result<(), ProviderError> {
        let id = service["ID"].as_str().unwrap_or("").to_string();
        let response = client
            .send_raw(requests::remove_service(&id))
            .await
            .map_err(from_client)?;
        if !response.is_success() && response.status != 404 {
            return Err(failed(
                format!(
                    "cannot remove swarm service `{id}`: {}",
                    response.error_message()
                ),
                None,
            ));
        }
        let grace = service["Spec"]["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"]
            .as_u64()
            .map(Duration::from_nanos)
            .unwrap_or(Duration::from_secs(10));
        let deadline = Instant::now() + grace + REMOVAL_TIMEOUT;
        let mut connection = None;
        loop {
            // Every task, matched here: a filter naming a removed service is refused.
            let answer = poll(client, &mut connection, &[requests::list_all_tasks()])
                .await?
                .pop()
                .ok_or_else(|| failed("the daemon sent no answer", None))?;
            let tasks = crate::api::check("GET", "/tasks", answer)
                .map_err(from_client)?
                .json()
                .map_err(|error| failed(error.to_string(), None))?;
            let remaining = tasks
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .filter(|task| task["ServiceID"].as_str() == Some(id.as_str()))
                .count();
            if remaining == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(failed(
                    format!(
                        "swarm service `{id}` was removed but its tasks are still there after {:?}",
                        grace + REMOVAL_TIMEOUT
                    ),
                    None,
                ));
            }
            tokio::time::sleep(LEAST_POLL.max(self.options.poll_interval)).await;
        }
    }

    /// Waits until `replicas` tasks run the service's current spec and no task of an
    /// older one is wanted; returns the service and its tasks as last read.
    async fn wait_converged(
        &self,
        client: &DockerClient,
        address: &str,
        id: &str,
        (replicas, previous_update): (i64, Option<&str>),
        timeout: Duration,
    ) -> Result<(Json, Vec<Json>), ProviderError> {
        let deadline = Instant::now() + timeout;
        let ids = [id.to_string()];
        let mut connection = None;
        loop {
            let answers = poll(
                client,
                &mut connection,
                &[requests::inspect_service(id), requests::list_tasks_of(&ids)],
            )
            .await?;
            let mut parsed = Vec::new();
            for answer in answers {
                let answer = crate::api::check("GET", "/services", answer).map_err(from_client)?;
                parsed.push(
                    answer
                        .json()
                        .map_err(|error| failed(error.to_string(), None))?,
                );
            }
            let tasks: Vec<Json> = parsed[1].as_array().cloned().unwrap_or_default();
            let service = parsed.swap_remove(0);
            let convergence = convergence(&service, &tasks, replicas, previous_update);
            match convergence {
                Convergence::Done => return Ok((service, tasks)),
                Convergence::GaveUp(why) => {
                    return Err(ProviderError::Failed {
                        message: format!("`{address}`: Swarm gave the update up: {why}"),
                        detail: task_errors(&tasks),
                        hint: Some("`docker service ps --no-trunc <service>` on a manager shows each task's error".into()),
                    })
                }
                Convergence::Waiting(what) if Instant::now() >= deadline => {
                    return Err(ProviderError::Failed {
                        message: format!("`{address}`: not ready after {timeout:?}: {what}"),
                        detail: task_errors(&tasks),
                        hint: Some("`docker service ps --no-trunc <service>` on a manager shows where each task is and why".into()),
                    })
                }
                Convergence::Waiting(_) => {}
            }
            tokio::time::sleep(LEAST_POLL.max(self.options.poll_interval)).await;
        }
    }
}

/// One poll of a wait: on the stream of the previous one (over SSH one channel for the
/// whole wait, not one per poll), or on a new one when the daemon closed it meanwhile.
async fn poll(
    client: &DockerClient,
    connection: &mut Option<CountedConnection>,
    batch: &[Request],
) -> Result<Vec<Response>, ProviderError> {
    if let Some(open) = connection.as_mut() {
        if let Ok(answers) = open.batch(batch).await {
            return Ok(answers);
        }
    }
    let mut fresh = client.connect().await.map_err(from_client)?;
    let answers = fresh.batch(batch).await.map_err(from_client)?;
    *connection = Some(fresh);
    Ok(answers)
}

/// Where a service stands against what was asked of it.
#[derive(Debug, PartialEq, Eq)]
pub enum Convergence {
    Done,
    /// Still on its way: what is missing.
    Waiting(String),
    /// Swarm stopped the update (rolled back or paused): its message.
    GaveUp(String),
}

/// Pure: whether `replicas` tasks run the service's current container spec, no task of
/// another spec is still wanted, and the update (if any) neither paused nor rolled back.
/// `previous_update` is when the update Swarm reported before this one started
/// (`UpdateStatus.StartedAt`): a status still from then says nothing of this one.
pub fn convergence(
    service: &Json,
    tasks: &[Json],
    replicas: i64,
    previous_update: Option<&str>,
) -> Convergence {
    let update = &service["UpdateStatus"];
    let this_update = update["StartedAt"].as_str() != previous_update || previous_update.is_none();
    if let Some(state) = update["State"].as_str().filter(|_| this_update) {
        if UPDATE_GAVE_UP.contains(&state) {
            return Convergence::GaveUp(format!(
                "{state}: {}",
                update["Message"].as_str().unwrap_or("no message")
            ));
        }
    }
    let current = &service["Spec"]["TaskTemplate"]["ContainerSpec"];
    let wanted: Vec<&Json> = tasks
        .iter()
        .filter(|task| task["DesiredState"] == "running")
        .collect();
    let stale = wanted
        .iter()
        .filter(|task| &task["Spec"]["ContainerSpec"] != current)
        .count();
    let running = wanted
        .iter()
        .filter(|task| {
            &task["Spec"]["ContainerSpec"] == current && task["Status"]["State"] == "running"
        })
        .count() as i64;
    if running >= replicas && stale == 0 {
        Convergence::Done
    } else {
        Convergence::Waiting(format!(
            "{running} of {replicas} tasks run the current spec, {stale} of an older one still wanted"
        ))
    }
}

/// The errors of the service's failed tasks, one line each, for a failure's detail.
fn task_errors(tasks: &[Json]) -> Option<String> {
    let lines: Vec<String> = tasks
        .iter()
        .filter_map(|task| {
            let error = task["Status"]["Err"]
                .as_str()
                .filter(|error| !error.is_empty())?;
            Some(format!(
                "task {} (slot {}): {} — {}",
                task["ID"].as_str().unwrap_or("?"),
                task["Slot"].as_i64().unwrap_or(0),
                task["Status"]["State"].as_str().unwrap_or("?"),
                error
            ))
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service(image: &str, update_state: Option<&str>) -> Json {
        let mut service =
            json!({ "Spec": { "TaskTemplate": { "ContainerSpec": { "Image": image } } } });
        if let Some(state) = update_state {
            service["UpdateStatus"] = json!({ "State": state, "Message": "update rolled back due to failure or early termination of task x" });
        }
        service
    }

    fn task(image: &str, state: &str, desired: &str) -> Json {
        json!({
            "Spec": { "ContainerSpec": { "Image": image } },
            "DesiredState": desired,
            "Status": { "State": state },
        })
    }

    #[test]
    fn a_service_is_done_when_its_replicas_run_the_current_spec_and_no_older_one_is_wanted() {
        let current = service("web:2", Some("updating"));
        let during = [
            task("web:2", "running", "running"),
            task("web:1", "running", "running"),
        ];
        assert_eq!(
            convergence(&current, &during, 1, None),
            Convergence::Waiting(
                "1 of 1 tasks run the current spec, 1 of an older one still wanted".into()
            )
        );
        let starting = [
            task("web:2", "starting", "running"),
            task("web:1", "shutdown", "shutdown"),
        ];
        assert!(matches!(
            convergence(&current, &starting, 1, None),
            Convergence::Waiting(_)
        ));
        let done = [
            task("web:2", "running", "running"),
            task("web:1", "shutdown", "shutdown"),
        ];
        assert_eq!(convergence(&current, &done, 1, None), Convergence::Done);
    }

    #[test]
    fn a_rolled_back_update_is_given_up_with_swarms_message() {
        let rolled_back = service("web:2", Some("rollback_completed"));
        let Convergence::GaveUp(why) = convergence(&rolled_back, &[], 1, None) else {
            panic!("not given up");
        };
        assert!(
            why.starts_with("rollback_completed: update rolled back"),
            "{why}"
        );
        // The same status, from an update before this one: not this update's failure.
        let mut earlier = rolled_back.clone();
        earlier["UpdateStatus"]["StartedAt"] = json!("2026-11-30T07:00:00Z");
        assert!(matches!(
            convergence(&earlier, &[], 1, Some("2026-11-30T07:00:00Z")),
            Convergence::Waiting(_)
        ));
    }
}
