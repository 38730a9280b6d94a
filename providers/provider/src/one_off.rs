//! One-off containers beside a running service, and the host files they leave: what
//! backups and restores need from the host (`stackctl backup`, `stackctl restore`, the
//! backup before an apply that deletes data). The engine decides what runs and where the
//! files go; a provider that runs containers carries it out.

use std::time::Duration;

use async_trait::async_trait;

use crate::{Address, ProviderError};

/// A container run once to completion, from the image a service's container runs, with
/// that container's environment (its secrets included) on its networks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneOffTask {
    /// What the container is labelled as (`backup.db`), so that a leftover is found.
    pub label: Address,
    /// The service (`service.postgres`) whose running container lends image, env and
    /// networks.
    pub beside: Address,
    /// The container to borrow from instead, by id: the service's own container that a
    /// restore stopped (a volume's restore stops the service that mounts it).
    pub beside_container: Option<String>,
    /// The command; it runs as the image's entrypoint would not (the entrypoint is this).
    pub argv: Vec<String>,
    /// Variables set on top of the service's environment.
    pub env: Vec<(String, EnvFrom)>,
    /// The user to run as (`0`: root, which can write the dump directory).
    pub user: Option<String>,
    pub mounts: Vec<OneOffMount>,
    /// Stopped and counted as failed after this long.
    pub timeout: Duration,
}

/// Where a one-off container's variable comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvFrom {
    Text(String),
    /// The first of these variables that the service's container has, else `default`
    /// (`PGPASSWORD` from `POSTGRES_PASSWORD`): the value never passes through the engine.
    ServiceVariable {
        names: Vec<String>,
        default: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneOffMount {
    pub source: MountSource,
    /// The absolute path inside the container.
    pub target: String,
    pub read_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountSource {
    /// A directory on the host (created when missing).
    HostDirectory(String),
    /// A volume of the stack, by its name in stack.toml.
    Volume(String),
}

/// How a one-off container ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneOffResult {
    /// `None` when it did not finish in time (it was stopped).
    pub exit_code: Option<i64>,
    /// Its output (error messages of `pg_dump`, say; never the dump, which goes to a file).
    pub log: String,
}

/// A container a restore stopped: exactly this one is started again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoppedContainer {
    pub service: Address,
    pub id: String,
}

/// What [`HostTasks::stop_services`] stopped, also when it failed partway: the caller
/// starts `containers` again whatever happened.
#[derive(Debug, Default)]
pub struct Stopped {
    pub containers: Vec<StoppedContainer>,
    /// Why it did not stop everything it was asked to.
    pub error: Option<ProviderError>,
}

impl Stopped {
    /// The services stopped, each once, in the order they stopped.
    pub fn services(&self) -> Vec<Address> {
        let mut services: Vec<Address> = Vec::new();
        for container in &self.containers {
            if !services.contains(&container.service) {
                services.push(container.service.clone());
            }
        }
        services
    }
}

/// What backups need from the host the stack runs on.
#[async_trait]
pub trait HostTasks: Send + Sync {
    /// Connects to the host (a droplet at its recorded address) before any other call.
    async fn connect(&self, droplet_address: Option<&str>) -> Result<(), ProviderError>;

    /// Runs `task` to completion and removes its container, whatever happens.
    async fn run_one_off(&self, task: &OneOffTask) -> Result<OneOffResult, ProviderError>;

    /// Stops the running containers of these services in their grace periods; returns
    /// the containers it stopped (to be started again) even when it fails partway.
    async fn stop_services(&self, services: &[Address]) -> Stopped;

    /// Starts exactly these containers again; tries every one before it reports a failure.
    async fn start_containers(&self, containers: &[StoppedContainer]) -> Result<(), ProviderError>;

    /// Writes a file on the host (readable by its owner only), creating its directory.
    async fn write_file(&self, path: &str, contents: &[u8]) -> Result<(), ProviderError>;

    /// Reads a file on the host; `None` when it does not exist.
    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, ProviderError>;

    /// The names of the files in a directory on the host, sorted (empty when it is missing).
    async fn list_files(&self, directory: &str) -> Result<Vec<String>, ProviderError>;

    /// Removes a file on the host; a missing file is not an error.
    async fn remove_file(&self, path: &str) -> Result<(), ProviderError>;
}
