//! Docker Swarm, driven through the Engine API of its nodes.
//!
//! # Forming and keeping the swarm
//!
//! [`SwarmProvider`] owns `swarm.cluster` (the swarm, formed on the first manager) and
//! `swarm_node.<name>` (each node: role, labels, availability, status). It reaches every
//! node over its own SSH connection ([`NodeConnections`]): the first manager's is the
//! run's shared host connection, so the docker and traefik providers, the host lock and
//! the stack's files all live there, exactly as on a single droplet.
//!
//! Refresh costs one pipelined batch on the manager (`/info`, `/swarm`, `/nodes`,
//! `/tasks`, `/services`) and one `GET /info` per other node, in parallel. A node is
//! matched to its stack.toml name by the id its own daemon reports (or, when that daemon
//! does not answer, the id recorded in state), never by host name.
//!
//! - A node whose daemon stopped is still listed by the manager, as `down`: its `status`
//!   drifts from `ready`, and the plan says so. Its repair fails with what to do on it.
//! - A node whose labels or availability were changed by hand drifts; apply puts
//!   stack.toml's back.
//! - A node that left the swarm (its own daemon says `inactive`) is gone: apply joins it
//!   again and removes the stale entry the manager kept.
//! - A node that left stack.toml is drained, then leaves, then is removed; its
//!   `services` (read only) say in the plan which services had tasks on it.
//!
//! Join tokens are secrets: see [`cluster::JoinToken`].
//!
//! # Where things are
//!
//! `connections.rs` (a connection per node), `requests.rs` (the requests, pure),
//! `view.rs` (answers parsed, pure), `cluster.rs` (the swarm and its tokens),
//! `node.rs` (joining, keeping, draining and removing a node).

mod cluster;
mod connections;
mod node;
pub mod requests;
pub mod view;

use std::collections::BTreeSet;

use async_trait::async_trait;
use stackctl_provider::{
    ActionKind, Address, ApplyContext, ApplyOutcome, AttributeSchema, KindSchema, LiveResource,
    Provider, ProviderError, ReadRequest,
};

pub use cluster::JoinToken;
pub use connections::NodeConnections;

use crate::api::DockerClient;
use crate::provider_error::{failed, from_client, from_host};
use view::{parse_nodes, services_by_node, LocalView, SERVICES_ATTRIBUTE};

/// The provider name swarm resources carry.
pub const PROVIDER_NAME: &str = "swarm";
/// `swarm.<CLUSTER>`: the swarm itself.
pub const CLUSTER: &str = "cluster";

/// Owns `swarm.cluster` and `swarm_node.*`.
pub struct SwarmProvider {
    connections: NodeConnections,
}

impl SwarmProvider {
    pub fn new(connections: NodeConnections) -> Self {
        SwarmProvider { connections }
    }

    /// The nodes' connections (the CLI asks them for the host keys to pin).
    pub fn connections(&self) -> &NodeConnections {
        &self.connections
    }

    /// The public IPv4 of a node's droplet, as recorded right now.
    fn node_address(&self, name: &str, context: &ApplyContext) -> Result<String, ProviderError> {
        context
            .droplet_address(name)
            .ok_or_else(|| ProviderError::Unreachable {
                target: format!("swarm node `{name}`"),
                cause: format!("droplet `{name}` has no public IPv4 address yet"),
            })
    }

    /// Reads the swarm as the manager sees it, and each node's own view.
    async fn read_swarm(&self, request: &ReadRequest) -> Result<Vec<LiveResource>, ProviderError> {
        let first_manager = self.connections.first_manager().to_string();
        let Some(manager_address) = request.droplet_address(&first_manager) else {
            // No manager droplet yet: nothing of the swarm can exist.
            return Ok(Vec::new());
        };
        let manager = self
            .connections
            .client(&first_manager, &manager_address)
            .await?;
        let mut connection = manager.connect().await.map_err(from_client)?;
        let answers = connection
            .batch(&[
                requests::info(),
                requests::inspect_swarm(),
                requests::list_nodes(),
                requests::running_tasks(),
                requests::list_services(),
            ])
            .await
            .map_err(from_client)?;
        // An answer that failed is an error, never "nothing there": a manager that lost its
        // quorum answers 503, and reading that as no swarm or no nodes would plan to form
        // the swarm again or to join every node anew.
        for (index, path) in ["/info", "/swarm", "/nodes", "/tasks", "/services"]
            .iter()
            .enumerate()
        {
            let Some(answer) = answers.get(index) else {
                return Err(failed(
                    format!("the first manager `{first_manager}` sent no answer to GET {path}"),
                    None,
                ));
            };
            // Before the swarm is formed, /swarm, /nodes, /tasks and /services refuse
            // (503: not a swarm manager); /info says so and that is read below.
            let before_the_swarm = index > 0
                && answers.first().is_some_and(|info| {
                    info.is_success()
                        && !LocalView::parse(&info.json().unwrap_or_default()).in_swarm()
                });
            if !answer.is_success() && !before_the_swarm {
                return Err(failed(
                    format!(
                        "the first manager `{first_manager}` could not describe the swarm (GET {path}): {}",
                        answer.error_message()
                    ),
                    None,
                ));
            }
        }
        let json = |index: usize| -> serde_json::Value {
            answers
                .get(index)
                .filter(|answer| answer.is_success())
                .and_then(|answer| answer.json().ok())
                .unwrap_or(serde_json::Value::Null)
        };
        let local = LocalView::parse(&json(0));
        if !(local.in_swarm() && local.manager) {
            return Ok(Vec::new());
        }
        let mut live = Vec::new();
        // Only the id: the join tokens in the same answer are dropped with it.
        let swarm_id = json(1)["ID"].as_str().map(str::to_string);
        live.push(LiveResource {
            address: Address::new("swarm", CLUSTER),
            id: swarm_id,
            attributes: [(
                "manager".to_string(),
                stackctl_provider::Value::text(first_manager.clone()),
            )]
            .into(),
            owned: true,
        });
        let nodes = parse_nodes(&json(2));
        let services = services_by_node(&json(3), &json(4));
        let names: BTreeSet<String> = request
            .desired
            .iter()
            .map(|resource| &resource.address)
            .chain(
                request
                    .recorded
                    .iter()
                    .filter(|recorded| recorded.provider == PROVIDER_NAME)
                    .map(|recorded| &recorded.address),
            )
            .filter(|address| address.kind() == "swarm_node")
            .map(|address| address.name().to_string())
            .collect();
        // Together, so that one node's timeout does not add to the next one's.
        let views = futures::future::join_all(
            names
                .iter()
                .map(|name| self.own_view(name, request, &first_manager, &local)),
        )
        .await;
        for (name, own) in names.iter().zip(views) {
            let recorded_id = request
                .recorded
                .iter()
                .find(|recorded| recorded.address == Address::new("swarm_node", name))
                .and_then(|recorded| recorded.id.clone());
            let id = match &own {
                // Its own daemon says it left: whatever the manager still lists is stale.
                Some(view) if !view.in_swarm() => continue,
                Some(view) => view.node_id.clone(),
                None => recorded_id,
            };
            let Some(node) = id.and_then(|id| nodes.iter().find(|node| node.id == id)) else {
                continue;
            };
            live.push(LiveResource {
                address: Address::new("swarm_node", name),
                id: Some(node.id.clone()),
                attributes: node.attributes(&services.get(&node.id).cloned().unwrap_or_default()),
                owned: true,
            });
        }
        Ok(live)
    }

    /// A node's own `GET /info`, or `None` when its daemon cannot be asked (stopped, no
    /// address yet, unreachable).
    async fn own_view(
        &self,
        name: &str,
        request: &ReadRequest,
        first_manager: &str,
        manager_view: &LocalView,
    ) -> Option<LocalView> {
        if name == first_manager {
            return Some(manager_view.clone());
        }
        let address = request.droplet_address(name)?;
        let client: DockerClient = self.connections.client(name, &address).await.ok()?;
        let info = client.send_json(requests::info()).await.ok()?;
        Some(LocalView::parse(&info))
    }
}

#[async_trait]
impl Provider for SwarmProvider {
    fn name(&self) -> &'static str {
        PROVIDER_NAME
    }

    fn kinds(&self) -> Vec<KindSchema> {
        vec![
            KindSchema {
                kind: "swarm",
                provider: PROVIDER_NAME,
                attributes: vec![AttributeSchema::replaces("manager")],
            },
            KindSchema {
                kind: "swarm_node",
                provider: PROVIDER_NAME,
                attributes: vec![
                    AttributeSchema::plain("role"),
                    AttributeSchema::plain("labels"),
                    AttributeSchema::plain("availability"),
                    AttributeSchema::plain("status"),
                    AttributeSchema::computed(SERVICES_ATTRIBUTE),
                ],
            },
        ]
    }

    async fn read(&self, request: &ReadRequest) -> Result<Vec<LiveResource>, ProviderError> {
        self.read_swarm(request).await
    }

    async fn begin_apply(&self, context: &ApplyContext) -> Result<(), ProviderError> {
        // The same host lock as the docker provider's, on the same connection: one
        // lock per run on the first manager, whichever provider acts first.
        let first_manager = self.connections.first_manager().to_string();
        let address = self.node_address(&first_manager, context)?;
        let client = self.connections.client(&first_manager, &address).await?;
        self.connections
            .manager_connector()
            .take_lock(
                client.host().as_ref(),
                &context.stack,
                &context.lineage,
                context.state_was_empty,
            )
            .await
            .map_err(from_host)
    }

    async fn end_apply(&self, context: &ApplyContext) -> Result<(), ProviderError> {
        let first_manager = self.connections.first_manager().to_string();
        let address = self.node_address(&first_manager, context)?;
        let client = self.connections.client(&first_manager, &address).await?;
        self.connections
            .manager_connector()
            .release_lock(client.host().as_ref())
            .await
            .map_err(from_host)
    }

    async fn apply(
        &self,
        action: &stackctl_provider::Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        let kind = action.address.kind();
        match (kind, &action.kind) {
            ("swarm", ActionKind::Delete) => self.delete_cluster(context).await,
            ("swarm", _) => self.create_cluster(action, context).await,
            ("swarm_node", ActionKind::Delete) => self.delete_node(action, context).await,
            ("swarm_node", ActionKind::Create) | ("swarm_node", ActionKind::Adopt) => {
                self.create_node(action, context).await
            }
            ("swarm_node", _) => self.update_node(action, context).await,
            _ => Err(failed(
                format!("the swarm provider does not manage `{}`; it owns swarm.{CLUSTER} and swarm_node.*", action.address),
                None,
            )),
        }
    }
}
