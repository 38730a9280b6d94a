//! One SSH connection per swarm node. The first manager's is the run's shared host
//! connection (the docker and traefik providers use the same one, so everything they do
//! happens there); every other node gets its own, made on first use with the same key,
//! known_hosts and pinning rules, at its droplet's public IPv4.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use stackctl_host::{HostConnector, SshOptions, Target};
use stackctl_provider::ProviderError;

use crate::api::DockerClient;
use crate::provider_error::from_host;

/// How the swarm provider reaches each node.
pub struct NodeConnections {
    first_manager: String,
    manager: Arc<HostConnector>,
    /// The options every other node is reached with (its address filled in per node).
    template: SshOptions,
    /// Host key fingerprints pinned in state, by `droplet.<name>`.
    pinned: BTreeMap<String, String>,
    others: Mutex<BTreeMap<String, Arc<HostConnector>>>,
    clients: tokio::sync::Mutex<BTreeMap<String, DockerClient>>,
}

impl NodeConnections {
    /// `manager` is the run's shared connection to `first_manager`; `template` the SSH
    /// options of the target (user, port, key files, known_hosts, accepting new keys).
    pub fn new(
        first_manager: impl Into<String>,
        manager: Arc<HostConnector>,
        template: SshOptions,
        pinned: BTreeMap<String, String>,
    ) -> Self {
        NodeConnections {
            first_manager: first_manager.into(),
            manager,
            template,
            pinned,
            others: Mutex::default(),
            clients: tokio::sync::Mutex::default(),
        }
    }

    /// The node stackctl talks to the swarm through.
    pub fn first_manager(&self) -> &str {
        &self.first_manager
    }

    /// The SSH user every node is reached as (for messages saying what to run there).
    pub fn user(&self) -> &str {
        &self.template.user
    }

    /// The shared connection of the first manager (the host lock is taken on it).
    pub fn manager_connector(&self) -> &HostConnector {
        &self.manager
    }

    fn connector(&self, node: &str) -> Arc<HostConnector> {
        if node == self.first_manager {
            return self.manager.clone();
        }
        let mut others = self
            .others
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        others
            .entry(node.to_string())
            .or_insert_with(|| {
                let mut options = self.template.clone();
                options.pinned_fingerprint = self.pinned.get(&format!("droplet.{node}")).cloned();
                Arc::new(HostConnector::new(Target::Droplet {
                    droplet: node.to_string(),
                    options,
                }))
            })
            .clone()
    }

    /// A Docker client on `node`, reached at `address` (its droplet's public IPv4).
    pub async fn client(&self, node: &str, address: &str) -> Result<DockerClient, ProviderError> {
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(node) {
            return Ok(client.clone());
        }
        let host = self
            .connector(node)
            .connect(Some(address))
            .await
            .map_err(from_host)?;
        // A node that is down must not hold a plan for two minutes.
        let client = DockerClient::new(host).with_timeout(std::time::Duration::from_secs(30));
        clients.insert(node.to_string(), client.clone());
        Ok(client)
    }

    /// The host keys the other nodes presented on this run, by `droplet.<name>`, for the
    /// engine to pin as it pins the first manager's.
    pub fn presented_keys(&self) -> Vec<(String, stackctl_host::HostKey)> {
        let others = self
            .others
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        others
            .iter()
            .filter_map(|(node, connector)| {
                connector
                    .host_key()
                    .map(|key| (format!("droplet.{node}"), key))
            })
            .collect()
    }
}
