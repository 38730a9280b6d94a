//! The target host's connection as the engine sees it ([`TargetHost`]): the key it
//! presented, and clearing its lock.

use std::sync::Arc;

use async_trait::async_trait;
use stackctl_host::HostConnector;

use crate::session::{PresentedHostKey, SessionError, TargetHost};

/// The run's shared SSH (or local) connection, and the name its key is pinned under.
pub struct ConnectedHost {
    connector: Arc<HostConnector>,
    key_name: Option<String>,
}

impl ConnectedHost {
    pub fn new(connector: Arc<HostConnector>, key_name: Option<String>) -> Self {
        ConnectedHost {
            connector,
            key_name,
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

    async fn unlock(
        &self,
        path: &str,
        droplet_address: Option<&str>,
    ) -> Result<String, SessionError> {
        let host = self
            .connector
            .connect(droplet_address)
            .await
            .map_err(|error| SessionError::Host(error.to_string()))?;
        host.unlock(path)
            .await
            .map_err(|error| SessionError::Host(error.to_string()))?;
        Ok(format!(
            "Removed the host lock `{path}` on {}.",
            host.describe()
        ))
    }
}
