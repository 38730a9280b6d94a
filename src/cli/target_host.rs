//! The target host's connection as the engine sees it ([`TargetHost`]): the key it
//! presented, and clearing its lock.

use std::sync::Arc;

use async_trait::async_trait;
use stackctl_docker::swarm::SwarmProvider;
use stackctl_host::{host_lock_path, HostConnector, Unlocked};

use super::container_console::DockerConsole;
use crate::session::{ContainerConsole, PresentedHostKey, SessionError, TargetHost};

/// The run's shared SSH (or local) connection, and the name its key is pinned under.
/// On a swarm target, also the other nodes' connections (their keys are pinned too).
pub struct ConnectedHost {
    connector: Arc<HostConnector>,
    key_name: Option<String>,
    swarm: Option<Arc<SwarmProvider>>,
}

impl ConnectedHost {
    pub fn new(
        connector: Arc<HostConnector>,
        key_name: Option<String>,
        swarm: Option<Arc<SwarmProvider>>,
    ) -> Self {
        ConnectedHost {
            connector,
            key_name,
            swarm,
        }
    }
}

#[async_trait]
impl TargetHost for ConnectedHost {
    fn key_name(&self) -> Option<String> {
        self.key_name.clone()
    }

    fn presented_key(&self) -> Option<PresentedHostKey> {
        self.connector.host_key().map(|key| PresentedHostKey {
            fingerprint: key.fingerprint,
            key_type: key.key_type,
        })
    }

    fn other_presented_keys(&self) -> Vec<(String, PresentedHostKey)> {
        let Some(swarm) = &self.swarm else {
            return Vec::new();
        };
        swarm
            .connections()
            .presented_keys()
            .into_iter()
            .map(|(name, key)| {
                (
                    name,
                    PresentedHostKey {
                        fingerprint: key.fingerprint,
                        key_type: key.key_type,
                    },
                )
            })
            .collect()
    }

    async fn deployed_lineage(
        &self,
        stack: &str,
        droplet_address: Option<&str>,
    ) -> Result<Option<String>, SessionError> {
        let host = self
            .connector
            .connect(droplet_address)
            .await
            .map_err(|error| SessionError::Host(error.to_string()))?;
        self.connector
            .deployed_lineage(host.as_ref(), stack)
            .await
            .map_err(|error| SessionError::Host(error.to_string()))
    }

    async fn unlock(
        &self,
        stack: &str,
        droplet_address: Option<&str>,
    ) -> Result<String, SessionError> {
        let host = self
            .connector
            .connect(droplet_address)
            .await
            .map_err(|error| SessionError::Host(error.to_string()))?;
        let path = host_lock_path(stack);
        let unlocked = host
            .unlock(&path)
            .await
            .map_err(|error| SessionError::Host(error.to_string()))?;
        let place = host.describe();
        Ok(match unlocked {
            Unlocked::ClearedStaleDetails { holder } => format!(
                "The host lock `{path}` on {place} was free: its holder ({}) is gone, and the kernel released the lock when its SSH session ended. Removed the details it left behind; nothing else was needed.",
                holder.split_whitespace().collect::<Vec<_>>().join(" ")
            ),
            Unlocked::NotHeld | Unlocked::Released => format!(
                "The host lock `{path}` on {place} is free; nothing to clear. (A run that is killed or loses its connection releases it by itself.)"
            ),
        })
    }

    fn console(&self, droplet_address: Option<String>) -> Option<Box<dyn ContainerConsole>> {
        Some(Box::new(DockerConsole::new(
            self.connector.clone(),
            droplet_address,
        )))
    }
}
