use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;

use crate::{Action, Address, Attributes, KindSchema, RecordedResource, Resource};

/// A resource as found on the target right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveResource {
    pub address: Address,
    pub id: Option<String>,
    /// The attributes the provider could read back, in the same shape as desired ones.
    /// Secrets read from the target are hashed with the state's salt and dropped.
    pub attributes: Attributes,
    /// Carries this stack's labels or tags (so it may be adopted, never touched otherwise).
    pub owned: bool,
}

/// What a provider needs to read live state in one batch.
#[derive(Clone, Debug)]
pub struct ReadRequest {
    pub stack: String,
    pub salt: String,
    pub desired: Vec<Resource>,
    pub recorded: Vec<RecordedResource>,
}

/// The attribute a droplet's public IPv4 address is recorded under: the host transport
/// reaches a droplet target at it. Every provider and the engine look it up through
/// [`ReadRequest::droplet_address`], [`ApplyContext::droplet_address`] or this name.
pub const DROPLET_ADDRESS_ATTRIBUTE: &str = "ipv4";

impl ReadRequest {
    /// The recorded public IPv4 address of `droplet.<droplet>`, if the engine passed it.
    pub fn droplet_address(&self, droplet: &str) -> Option<String> {
        let address = Address::new("droplet", droplet);
        let recorded = self
            .recorded
            .iter()
            .find(|recorded| recorded.address == address)?;
        recorded
            .attributes
            .get(DROPLET_ADDRESS_ATTRIBUTE)?
            .as_text()
            .map(str::to_string)
    }
}

/// What every apply call shares.
#[derive(Clone, Debug)]
pub struct ApplyContext {
    pub stack: String,
    /// The lineage of the state this run writes (recorded with the host lock, and as the
    /// stack's owner on the host).
    pub lineage: String,
    /// The run's state recorded nothing when the run began (a first apply, or a lost
    /// state starting over): such a run may adopt what it finds on a host. Resources
    /// recorded during the run (a droplet created moments ago) do not change it.
    pub state_was_empty: bool,
    pub salt: String,
    /// How long a service may take to become healthy before the action fails.
    pub health_timeout: Duration,
    /// Deleting volumes (data) was explicitly allowed.
    pub allow_data_loss: bool,
    /// Attributes of every resource as recorded so far in this run, including those
    /// completed moments ago (a droplet's new IP address for the host transport).
    pub recorded: Arc<RwLock<BTreeMap<Address, Attributes>>>,
}

impl ApplyContext {
    /// Returns one attribute of another resource as recorded right now.
    pub fn recorded_attribute(&self, address: &Address, attribute: &str) -> Option<crate::Value> {
        let recorded = self.recorded.read().ok()?;
        recorded.get(address)?.get(attribute).cloned()
    }

    /// The public IPv4 address of `droplet.<droplet>` as recorded right now (also one
    /// created moments ago in this run).
    pub fn droplet_address(&self, droplet: &str) -> Option<String> {
        self.recorded_attribute(&Address::new("droplet", droplet), DROPLET_ADDRESS_ATTRIBUTE)?
            .as_text()
            .map(str::to_string)
    }
}

/// Where a provider reports a running action's progress as it happens (a build's or a
/// pull's lines): the resource's address and one line. The engine shows each line on the
/// progress display and keeps it in the run's event log, redacted.
pub type ProgressSink = Arc<dyn Fn(&Address, &str) + Send + Sync>;

/// The result of one applied action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The resource exists as recorded here (create, update, replace, adopt).
    Recorded(RecordedResource),
    /// The resource is gone (delete).
    Deleted,
}

/// Why a provider could not read or apply.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The target could not be reached (no IP yet, SSH refused or timed out). The engine
    /// skips the provider's remaining actions and exits 3 ("partial").
    #[error("cannot reach {target}: {cause}")]
    Unreachable { target: String, cause: String },
    /// The connection to the target was lost while the action ran: whether it took
    /// effect is unknown until the next plan reads the live state.
    #[error("outcome unknown: the connection to {target} was lost while it ran ({cause})")]
    ConnectionLost { target: String, cause: String },
    /// Credentials are missing or were rejected.
    #[error("{message}")]
    Credentials { message: String, hint: String },
    /// The action failed; `detail` carries evidence (container logs, an API error body).
    #[error("{message}")]
    Failed {
        message: String,
        detail: Option<String>,
        hint: Option<String>,
    },
}

impl ProviderError {
    pub fn failed(message: impl Into<String>) -> Self {
        ProviderError::Failed {
            message: message.into(),
            detail: None,
            hint: None,
        }
    }
}

/// A provider owns some kinds of resources. The engine calls `read` once per plan with
/// every resource of those kinds (one batch, so refresh costs a constant number of round
/// trips) and `apply` once per action.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The name resources carry in their `provider` field.
    fn name(&self) -> &'static str;

    /// The kinds this provider owns, with their attribute rules.
    fn kinds(&self) -> Vec<KindSchema>;

    /// Fills in attributes derived from the others, with no I/O: a Traefik route's rendered
    /// file, say, so that plans show (and hash) exactly what will be written. Called on
    /// every desired resource of the provider's kinds, online or offline.
    fn prepare(&self, _desired: &mut Resource) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Whether `prepare` of this resource waits for the refresh, because what the refresh
    /// reads can spare it a costly derivation (a basic-auth file's bcrypt hashes, tens of
    /// milliseconds each): the session then calls [`Provider::prepare_with_live`] once the
    /// live state is read (or without it, offline). Checks the resource as `prepare` would,
    /// so a bad setting still fails before anything is read. Default: never waits.
    fn prepare_waits_for_refresh(&self, _desired: &Resource) -> Result<bool, ProviderError> {
        Ok(false)
    }

    /// [`Provider::prepare`] for a resource that waited for the refresh: `live` is the
    /// resource as the refresh read it and `recorded` as state has it (each `None` when
    /// there is none, or no refresh). The result must be what `prepare` alone would give.
    fn prepare_with_live(
        &self,
        desired: &mut Resource,
        _live: Option<&LiveResource>,
        _recorded: Option<&RecordedResource>,
    ) -> Result<(), ProviderError> {
        self.prepare(desired)
    }

    /// Reads every live resource of the stack that this provider owns.
    async fn read(&self, request: &ReadRequest) -> Result<Vec<LiveResource>, ProviderError>;

    /// Checks credentials and anything else that must hold before an apply changes
    /// anything, with no side effects: called for every provider with actions before the
    /// plan is confirmed, so a missing token fails first and changes nothing.
    async fn preflight(&self) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Hands the provider the sink for the progress of the actions it runs (called once
    /// per apply, before any action). Providers with nothing to stream ignore it.
    fn report_progress_to(&self, _sink: ProgressSink) {}

    /// Called once before the first action of an apply that touches this provider's
    /// kinds: connect, check credentials, take a lock on the host.
    async fn begin_apply(&self, _context: &ApplyContext) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Called once after the last action (also after failures): release locks, close.
    async fn end_apply(&self, _context: &ApplyContext) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Adopts an existing resource, found by the provider's own `id`, into state without
    /// changing it (`stackctl import droplet.web-1 <id>`). `desired` is the resource as
    /// stack.toml describes it, when it does.
    async fn import(
        &self,
        address: &Address,
        _id: &str,
        _desired: Option<&Resource>,
        _context: &ApplyContext,
    ) -> Result<RecordedResource, ProviderError> {
        Err(ProviderError::failed(format!(
            "the {} provider cannot import `{address}`",
            self.name()
        )))
    }

    /// Evidence for the run folder after an apply (container list, rendered files, logs):
    /// file name → contents. The engine redacts every secret value before writing.
    async fn evidence(&self, _context: &ApplyContext) -> Vec<(String, Vec<u8>)> {
        Vec::new()
    }

    /// Removes the images this provider built for the stack that no image id in `keep`
    /// names (called after a successful apply, so the images of the last few applies stay
    /// for `stackctl rollback`). Only images carrying the stack's own label go; an image
    /// a container still uses is left. Returns what was removed, for the run's notes.
    async fn prune_images(
        &self,
        _context: &ApplyContext,
        _keep: &std::collections::BTreeSet<String>,
    ) -> Result<Vec<String>, ProviderError> {
        Ok(Vec::new())
    }

    /// How locked down the stack's running containers are, read from the target itself
    /// for the run's security report: `{"containers": [...], "networks": [...]}` (see the
    /// Docker provider's `security.rs`). `None` for providers that run no containers.
    async fn security_facts(&self) -> Option<Result<serde_json::Value, ProviderError>> {
        None
    }

    /// Checks the live stack through what this provider serves, when it serves traffic
    /// (the edge): `None` for providers with nothing to check from the outside.
    async fn verify(
        &self,
        _request: &crate::VerifyRequest,
    ) -> Option<Result<crate::Verification, crate::VerifyError>> {
        None
    }

    /// The provider's one-off containers and host files, when it runs containers on the
    /// target host (backups and restores use them).
    fn host_tasks(&self) -> Option<&dyn crate::HostTasks> {
        None
    }

    /// Carries out one action. `action.desired` has every reference resolved that could be.
    async fn apply(
        &self,
        action: &Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError>;
}
