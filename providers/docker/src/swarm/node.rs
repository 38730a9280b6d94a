//! `swarm_node.<name>`: one node of the swarm. Created by joining it (tokens read from the
//! manager, used once), kept by updating its spec on the manager (role, labels,
//! availability), and removed by draining it first: availability `drain`, a bounded wait
//! until its tasks are gone (the swarm starts them elsewhere), then `POST /swarm/leave`
//! on the node and `DELETE /nodes/{id}` on the manager.
//!
//! A node whose daemon stopped is listed `down` by the manager: no API call can start a
//! daemon on another machine, so its repair fails with what to do there.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use stackctl_provider::{
    Action, ApplyContext, ApplyOutcome, ProviderError, RecordedResource, Resource,
};

use super::cluster::JoinToken;
use super::requests;
use super::view::{desired_spec, parse_nodes, unfinished_tasks, LocalView, ManagedNode};
use super::SwarmProvider;
use crate::api::{ClientError, DockerClient};
use crate::provider_error::{failed, from_client};

/// Pure: a node's failed join (`error` already without the token), with the ports the
/// swarm needs between the droplets: a firewall that lets in only 22, 80 and 443 is the
/// usual cause.
fn join_failure(name: &str, address: &str, manager_address: &str, error: &str) -> ProviderError {
    ProviderError::Failed {
        message: format!(
            "node `{name}` ({address}) could not join the swarm at {manager_address}:{}: {error}",
            requests::SWARM_PORT
        ),
        detail: None,
        hint: Some(format!(
            "the swarm needs 2377/tcp, 7946/tcp and udp, and 4789/udp open between the nodes: check the firewalls in front of {address} and {manager_address} (a `[firewalls.<name>]` over the nodes needs inbound rules for them, with the nodes' addresses as sources)"
        )),
    }
}

/// What became of a removed node's own `POST /swarm/leave`.
#[derive(Debug)]
enum Leaving {
    Left,
    /// Its host could not be reached (gone, or its SSH down): why.
    Unreachable(String),
    /// Its daemon answered and is still in the swarm: what it said.
    Refused(String),
}

impl Leaving {
    /// Which of the three it was, for the log.
    fn outcome(&self) -> &'static str {
        match self {
            Leaving::Left => "left the swarm",
            Leaving::Unreachable(_) => "could not be reached to leave the swarm",
            Leaving::Refused(_) => "refused to leave the swarm",
        }
    }
}

/// Pure: what a node's `POST /swarm/leave` that failed (`leave_error`) came to, from the
/// `GET /info` asked of the same daemon right after (`probe`: whether it is still in a
/// swarm). Out of any swarm (left by hand meanwhile): as good as left. Still in one, or
/// the daemon answering the probe with an error: it refused. The probe not answered at
/// all (the host or its SSH gone, a timeout): unreachable, like a host never reached.
fn after_failed_leave(leave_error: String, probe: Result<bool, ClientError>) -> Leaving {
    match probe {
        Ok(false) => Leaving::Left,
        Ok(true) => Leaving::Refused(leave_error),
        Err(error @ (ClientError::Status { .. } | ClientError::Version(_))) => {
            Leaving::Refused(format!("{leave_error} (and then: {error})"))
        }
        Err(error) => Leaving::Unreachable(format!(
            "{leave_error}; asking whether it is still in the swarm failed too: {error}"
        )),
    }
}

/// Pure: whether the removal goes on, with a warning to show (`Ok(Some)`), or fails.
/// A host that cannot be reached is most likely gone: the manager forgets it anyway, but
/// should it come back, its Docker still believes it is in the swarm. A daemon that
/// refused to leave is an error: the node stays drained, listed by the manager, until it
/// leaves.
fn leaving_verdict(
    name: &str,
    user: &str,
    leaving: &Leaving,
) -> Result<Option<String>, ProviderError> {
    match leaving {
        Leaving::Left => Ok(None),
        Leaving::Unreachable(cause) => Ok(Some(format!(
            "node `{name}` could not be reached to leave the swarm ({cause}); the manager removes it anyway. If that host comes back, run `docker swarm leave --force` on it before it joins a swarm again"
        ))),
        Leaving::Refused(error) => Err(ProviderError::Failed {
            message: format!("node `{name}` was drained but did not leave the swarm: {error}"),
            detail: None,
            hint: Some(format!(
                "run `docker swarm leave` on {name} (as {user}), then `stackctl apply` again; it stays drained, with no task, until then"
            )),
        }),
    }
}

/// How long a joined node may take to be listed `ready` by the manager.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a drained node's tasks may take to stop (the swarm starts them elsewhere).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(250);
/// How many times a node's update is made again from a newer version (see `update_spec`).
const UPDATE_ATTEMPTS: u32 = 5;

/// What stack.toml wants of a node.
struct NodeWish {
    role: String,
    availability: String,
    labels: BTreeMap<String, String>,
}

impl NodeWish {
    fn of(desired: &Resource) -> NodeWish {
        let text = |name: &str, default: &str| {
            desired
                .attributes
                .get(name)
                .and_then(|value| value.as_text())
                .unwrap_or(default)
                .to_string()
        };
        let labels = match desired.attributes.get("labels") {
            Some(stackctl_provider::Value::Map(labels)) => labels
                .iter()
                .map(|(key, value)| (key.clone(), value.as_text().unwrap_or_default().to_string()))
                .collect(),
            _ => BTreeMap::new(),
        };
        NodeWish {
            role: text("role", "worker"),
            availability: text("availability", "active"),
            labels,
        }
    }
}

impl SwarmProvider {
    /// Joins the node (unless it is already a member: the first manager after `init`),
    /// waits until the manager lists it ready, and gives it its role and labels.
    pub(super) async fn create_node(
        &self,
        action: &Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        let desired = desired_of(action)?;
        let name = action.address.name().to_string();
        let wish = NodeWish::of(desired);
        let manager = self.manager_client(context).await?;
        let id = self.join(&name, &wish.role, &manager, context).await?;
        // The entry a node left behind when it left the swarm by hand (listed `down`)
        // goes: the node is back under a new id.
        let stale = action
            .prior
            .as_ref()
            .and_then(|prior| prior.id.clone())
            .or_else(|| action.live_id.clone())
            .filter(|old| *old != id);
        if let Some(old) = stale {
            let listed = list(&manager).await?;
            if listed.iter().any(|node| node.id == old) {
                manager
                    .send(requests::remove_node(&old, true))
                    .await
                    .map_err(from_client)?;
            }
        }
        let node = wait_until_ready(&manager, &name, &id).await?;
        update_spec(&manager, &node, &wish).await?;
        Ok(ApplyOutcome::Recorded(RecordedResource::from_desired(
            desired,
            Some(id),
        )))
    }

    /// Puts the node's role, labels and availability back as stack.toml says; a node
    /// that left the swarm by itself joins again; a node that is down is reported.
    pub(super) async fn update_node(
        &self,
        action: &Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        let desired = desired_of(action)?;
        let name = action.address.name().to_string();
        let id = node_id(action)?;
        let manager = self.manager_client(context).await?;
        let listed = list(&manager).await?;
        let Some(node) = listed.into_iter().find(|node| node.id == id) else {
            return self.create_node(action, context).await;
        };
        if node.status != "ready" {
            return Err(self.down_node_error(&name, &node, context).await);
        }
        update_spec(&manager, &node, &NodeWish::of(desired)).await?;
        Ok(ApplyOutcome::Recorded(RecordedResource::from_desired(
            desired,
            Some(id),
        )))
    }

    /// Drains the node, waits (bounded) until its tasks have stopped, makes it leave, and
    /// removes it from the manager's list.
    pub(super) async fn delete_node(
        &self,
        action: &Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        let name = action.address.name().to_string();
        if name == self.connections.first_manager() {
            // The swarm lives on it: `swarm.cluster`'s delete, which comes next,
            // dissolves the swarm there (Docker refuses to demote the last manager).
            return Ok(ApplyOutcome::Deleted);
        }
        let id = node_id(action)?;
        let manager = self.manager_client(context).await?;
        let Some(node) = list(&manager).await?.into_iter().find(|node| node.id == id) else {
            return Ok(ApplyOutcome::Deleted);
        };
        let leaving = NodeWish {
            // A manager is demoted before it leaves, so the others keep their majority.
            role: "worker".into(),
            availability: "drain".into(),
            labels: node.labels(),
        };
        update_spec(&manager, &node, &leaving).await?;
        let started = Instant::now();
        loop {
            let tasks = manager
                .send_json(requests::tasks_on_node(&id))
                .await
                .map_err(from_client)?;
            let left = unfinished_tasks(&tasks);
            if left == 0 {
                break;
            }
            if started.elapsed() > DRAIN_TIMEOUT {
                return Err(ProviderError::Failed {
                    message: format!("node `{name}` was drained, but {left} of its tasks still run after {DRAIN_TIMEOUT:?}"),
                    detail: Some(describe_tasks(&tasks)),
                    hint: Some(format!("`docker node ps {id}` on the manager shows them; the node stays in the swarm (drained) until they stop, then run `stackctl apply` again")),
                });
            }
            tokio::time::sleep(POLL).await;
        }
        let leaving = match self.node_client(&name, context).await {
            Err(error) => Leaving::Unreachable(error.to_string()),
            Ok(client) => match client.send(requests::leave(false)).await {
                Ok(_) => Leaving::Left,
                Err(error) => {
                    let probe = client
                        .send_json(requests::info())
                        .await
                        .map(|info| LocalView::parse(&info).in_swarm());
                    after_failed_leave(from_client(error).to_string(), probe)
                }
            },
        };
        tracing::info!(node = %name, outcome = leaving.outcome(), "node drained; it {}", leaving.outcome());
        if let Some(warning) = leaving_verdict(&name, self.connections.user(), &leaving)? {
            tracing::warn!("{warning}");
        }
        manager
            .send(requests::remove_node(&id, true))
            .await
            .map_err(from_client)?;
        Ok(ApplyOutcome::Deleted)
    }

    /// Makes `name` a member of the swarm, returning its node id.
    async fn join(
        &self,
        name: &str,
        role: &str,
        manager: &DockerClient,
        context: &ApplyContext,
    ) -> Result<String, ProviderError> {
        let address = self.node_address(name, context)?;
        let client = self.node_client(name, context).await?;
        let local = LocalView::parse(
            &client
                .send_json(requests::info())
                .await
                .map_err(from_client)?,
        );
        if local.in_swarm() {
            let id = local.node_id.clone().unwrap_or_default();
            if list(manager).await?.iter().any(|node| node.id == id) {
                return Ok(id);
            }
            return Err(ProviderError::Failed {
                message: format!("node `{name}` ({address}) is already in another swarm"),
                detail: None,
                hint: Some(format!(
                    "if that swarm is not needed, run `docker swarm leave --force` on {name}, then `stackctl apply` again"
                )),
            });
        }
        let manager_address = self.node_address(self.connections.first_manager(), context)?;
        let token = JoinToken::read(manager, role).await?;
        client
            .send(requests::join(&address, &manager_address, token.expose()))
            .await
            .map_err(|error| {
                join_failure(
                    name,
                    &address,
                    &manager_address,
                    &token.redact(&error.to_string()),
                )
            })?;
        drop(token);
        let local = LocalView::parse(
            &client
                .send_json(requests::info())
                .await
                .map_err(from_client)?,
        );
        local
            .node_id
            .ok_or_else(|| failed(format!("node `{name}` joined but reports no node id"), None))
    }

    /// Why a node the manager lists as down cannot be repaired from here, and what to do.
    async fn down_node_error(
        &self,
        name: &str,
        node: &ManagedNode,
        context: &ApplyContext,
    ) -> ProviderError {
        let address = self
            .node_address(name, context)
            .unwrap_or_else(|_| node.address.clone());
        let answers = match self.node_client(name, context).await {
            Ok(client) => client.send(requests::info()).await.is_ok(),
            Err(_) => false,
        };
        let user = self.connections.user();
        let reason = if node.message.is_empty() {
            String::new()
        } else {
            format!(" ({})", node.message)
        };
        let (message, hint) = if answers {
            (
                format!("node `{name}` is listed `{}` by the swarm's manager{reason}, yet its Docker daemon answers", node.status),
                "it is probably reconnecting: wait a few seconds, then run `stackctl plan` again".to_string(),
            )
        } else {
            (
                format!("node `{name}` is `{}`: the swarm's manager has not heard from its Docker daemon{reason}, and stackctl cannot start a daemon on another machine", node.status),
                format!("start Docker on {name} (`ssh {user}@{address} systemctl start docker`), then run `stackctl apply` again; meanwhile the swarm runs its services' tasks on the other nodes"),
            )
        };
        ProviderError::Failed {
            message,
            detail: None,
            hint: Some(hint),
        }
    }

    async fn manager_client(&self, context: &ApplyContext) -> Result<DockerClient, ProviderError> {
        let name = self.connections.first_manager().to_string();
        self.node_client(&name, context).await
    }

    async fn node_client(
        &self,
        name: &str,
        context: &ApplyContext,
    ) -> Result<DockerClient, ProviderError> {
        let address = self.node_address(name, context)?;
        self.connections.client(name, &address).await
    }
}

/// One line per task: its id, current and desired state (a drain that did not finish).
fn describe_tasks(tasks: &serde_json::Value) -> String {
    tasks
        .as_array()
        .into_iter()
        .flatten()
        .map(|task| {
            format!(
                "task {}: {} (desired {})",
                task["ID"].as_str().unwrap_or("?"),
                task["Status"]["State"].as_str().unwrap_or("?"),
                task["DesiredState"].as_str().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn desired_of(action: &Action) -> Result<&Resource, ProviderError> {
    action.desired.as_ref().ok_or_else(|| {
        failed(
            format!("`{}` has no desired attributes", action.address),
            None,
        )
    })
}

/// The node's id: as found live, else as recorded.
fn node_id(action: &Action) -> Result<String, ProviderError> {
    action
        .live_id
        .clone()
        .or_else(|| action.prior.as_ref().and_then(|prior| prior.id.clone()))
        .ok_or_else(|| {
            failed(
                format!("`{}` has no recorded node id", action.address),
                None,
            )
        })
}

async fn list(manager: &DockerClient) -> Result<Vec<ManagedNode>, ProviderError> {
    let nodes = manager
        .send_json(requests::list_nodes())
        .await
        .map_err(from_client)?;
    Ok(parse_nodes(&nodes))
}

/// Waits (bounded) until the manager lists node `id` as ready.
async fn wait_until_ready(
    manager: &DockerClient,
    name: &str,
    id: &str,
) -> Result<ManagedNode, ProviderError> {
    let started = Instant::now();
    loop {
        let found = list(manager).await?.into_iter().find(|node| node.id == id);
        match found {
            Some(node) if node.status == "ready" => return Ok(node),
            found if started.elapsed() > READY_TIMEOUT => {
                let status = found.map_or("not listed".to_string(), |node| {
                    format!("`{}`", node.status)
                });
                return Err(failed(
                    format!("node `{name}` joined the swarm but the manager lists it {status} after {READY_TIMEOUT:?}"),
                    None,
                ));
            }
            _ => tokio::time::sleep(POLL).await,
        }
    }
}

/// Sends the node's spec with stack.toml's role, labels and availability, unless it
/// already has them.
///
/// An update names the version of the node it was made from, and Swarm refuses it once
/// that version has moved on: a node's own reports bump it (most often in the seconds
/// after it joined). So a refused update whose node has a newer version by now is made
/// again from that one, a bounded number of times; any other refusal is the error.
async fn update_spec(
    manager: &DockerClient,
    node: &ManagedNode,
    wish: &NodeWish,
) -> Result<(), ProviderError> {
    let mut node = node.clone();
    let mut attempt = 1;
    loop {
        let spec = desired_spec(&node.spec, &wish.role, &wish.availability, &wish.labels);
        if spec == node.spec {
            return Ok(());
        }
        let refused = match manager
            .send(requests::update_node(&node.id, node.version, &spec))
            .await
        {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        let newer = list(manager)
            .await?
            .into_iter()
            .find(|listed| listed.id == node.id && listed.version != node.version);
        match newer {
            Some(newer) if attempt < UPDATE_ATTEMPTS => {
                tracing::debug!(node = %node.hostname, from = node.version, to = newer.version, "the node changed meanwhile: updating it again from its new version");
                node = newer;
                attempt += 1;
            }
            _ => return Err(from_client(refused)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_that_failed_names_the_ports_the_swarm_needs() {
        let error = join_failure(
            "web-2",
            "203.0.113.8",
            "203.0.113.7",
            "timeout: context deadline exceeded",
        );
        let ProviderError::Failed { message, hint, .. } = error else {
            panic!("not a failure: {error:?}");
        };
        assert_eq!(
            message,
            "node `web-2` (203.0.113.8) could not join the swarm at 203.0.113.7:2377: timeout: context deadline exceeded"
        );
        let hint = hint.expect("a hint");
        for port in ["2377/tcp", "7946/tcp and udp", "4789/udp"] {
            assert!(hint.contains(port), "{port}: {hint}");
        }
    }

    #[test]
    fn a_failed_leave_is_told_apart_by_what_the_probe_after_it_says() {
        let leave_error =
            || "Docker answered 503 to POST /swarm/leave: context deadline exceeded".to_string();
        assert!(matches!(
            after_failed_leave(leave_error(), Ok(false)),
            Leaving::Left
        ));
        let refused = after_failed_leave(leave_error(), Ok(true));
        assert!(
            matches!(&refused, Leaving::Refused(why) if why == &leave_error()),
            "{refused:?}"
        );
        assert_eq!(refused.outcome(), "refused to leave the swarm");
        // The daemon answered the probe, with an error: it is there, and did not leave.
        let answered = after_failed_leave(
            leave_error(),
            Err(ClientError::Status {
                method: "GET",
                path: "/info".into(),
                status: 500,
                message: "internal".into(),
            }),
        );
        assert!(matches!(answered, Leaving::Refused(_)), "{answered:?}");
        // No answer at all: the host is as good as gone, a warning, not a failure.
        let unreachable = after_failed_leave(
            leave_error(),
            Err(ClientError::Timeout(Duration::from_secs(30))),
        );
        let Leaving::Unreachable(why) = &unreachable else {
            panic!("not unreachable: {unreachable:?}");
        };
        assert!(
            why.contains("context deadline exceeded") && why.contains("did not answer within 30s"),
            "{why}"
        );
        assert_eq!(
            unreachable.outcome(),
            "could not be reached to leave the swarm"
        );
        assert!(leaving_verdict("web-3", "root", &unreachable)
            .unwrap()
            .is_some());
        assert_eq!(Leaving::Left.outcome(), "left the swarm");
    }

    #[test]
    fn a_node_that_refused_to_leave_fails_and_an_unreachable_one_is_a_warning() {
        assert_eq!(
            leaving_verdict("web-3", "root", &Leaving::Left).unwrap(),
            None
        );
        let warning = leaving_verdict(
            "web-3",
            "root",
            &Leaving::Unreachable("connection refused".into()),
        )
        .unwrap()
        .expect("a warning");
        assert!(
            warning.starts_with("node `web-3` could not be reached to leave the swarm (connection refused); the manager removes it anyway")
                && warning.contains("docker swarm leave --force"),
            "{warning}"
        );
        let error = leaving_verdict(
            "web-3",
            "root",
            &Leaving::Refused("503: context deadline exceeded".into()),
        )
        .unwrap_err();
        let ProviderError::Failed { message, hint, .. } = error else {
            panic!("not a failure: {error:?}");
        };
        assert_eq!(
            message,
            "node `web-3` was drained but did not leave the swarm: 503: context deadline exceeded"
        );
        assert!(hint.is_some_and(|hint| hint.contains("`docker swarm leave` on web-3 (as root)")),);
    }
}
