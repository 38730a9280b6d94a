//! What a session runs against: the providers, and the target host's connection as far
//! as the engine needs to know it (which SSH key it presented, how to clear its lock).
//!
//! The engine never names a concrete provider: a front end hands the session a
//! [`BackendFactory`] (the CLI's builds Docker, Traefik and DigitalOcean; the benchmark's
//! wraps them in memory), so every front end runs the same use cases.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::SessionError;
use crate::apply::ProviderSet;
use crate::config::LoadedConfig;

/// The key a host presented on this run's connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentedHostKey {
    pub fingerprint: String,
    pub key_type: String,
}

/// The target host's connection, as the engine sees it.
#[async_trait]
pub trait TargetHost: Send + Sync {
    /// Under which name the host's key is pinned in state (`droplet.web-1`,
    /// `203.0.113.7:22`); `None` for this machine.
    fn key_name(&self) -> Option<String>;

    /// The key the host presented, once a connection was made during this run.
    fn presented_key(&self) -> Option<PresentedHostKey>;

    /// The keys other hosts of the target presented during this run (the other nodes of
    /// a swarm), by the name each is pinned under (`droplet.<name>`).
    fn other_presented_keys(&self) -> Vec<(String, PresentedHostKey)> {
        Vec::new()
    }

    /// The lineage of the state that deployed `stack` on the host, if one is recorded
    /// there: as this run's refresh read it beside the stack's files, else read now (one
    /// round trip on the run's connection).
    async fn deployed_lineage(
        &self,
        stack: &str,
        droplet_address: Option<&str>,
    ) -> Result<Option<String>, SessionError>;

    /// Clears what a gone holder of `stack`'s host lock left behind (`stackctl state
    /// unlock --host`); returns a sentence saying what was found and done where.
    /// `droplet_address` is the droplet's recorded IPv4 when the target is a droplet.
    async fn unlock(
        &self,
        stack: &str,
        droplet_address: Option<&str>,
    ) -> Result<String, SessionError>;

    /// The host's containers, for logs and exec (`None` where there are none to reach).
    /// `droplet_address` is the droplet's recorded IPv4 when the target is a droplet.
    fn console(&self, droplet_address: Option<String>) -> Option<Box<dyn super::ContainerConsole>> {
        let _ = droplet_address;
        None
    }
}

/// The providers of a run and their shared host connection.
pub struct Backends {
    pub providers: ProviderSet,
    /// `None` when nothing runs on a host (tests, benchmarks).
    pub host: Option<Box<dyn TargetHost>>,
}

/// Builds the backends for a loaded stack.
pub trait BackendFactory {
    /// `pinned_host_keys` are the fingerprints pinned in state, by
    /// [`TargetHost::key_name`]: every command that reaches the host must trust them.
    /// `recorded_swarm_manager` is the first manager of a swarm state records (its
    /// `swarm.cluster`): a swarm stack.toml no longer has must still be reachable to be
    /// dissolved.
    fn build(
        &self,
        loaded: &LoadedConfig,
        pinned_host_keys: &BTreeMap<String, String>,
        recorded_swarm_manager: Option<&str>,
    ) -> Result<Backends, SessionError>;
}
