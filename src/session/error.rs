//! Why a use case of the session stopped. Typed, so that the front end (the CLI) alone
//! chooses the words of the hint and the exit code.

use stackctl_provider::{Address, ProviderError};

use crate::config::ConfigErrors;
use crate::state::{RollbackTargetError, StateError};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// stack.toml (or its inputs: `.env`, build contexts, key files) has problems.
    #[error("the stack file has problems")]
    Config(ConfigErrors),
    #[error(transparent)]
    State(#[from] StateError),
    /// A provider refused or failed outside an action; `context` says what was being done.
    #[error("{context}: {error}")]
    Provider {
        context: String,
        error: ProviderError,
    },
    /// `--target ADDR` names nothing in stack.toml or in state.
    #[error("`--target {target}`: no such resource in stack.toml or in state")]
    UnknownTarget {
        target: Address,
        /// The nearest known address, if one is close.
        nearest: Option<String>,
    },
    /// `--target` given with a saved plan, which is applied exactly as reviewed.
    #[error("`--target` cannot narrow a saved plan: it is applied exactly as reviewed")]
    SavedPlanNarrowed,
    /// The saved plan no longer matches state or stack.toml.
    #[error("refusing to apply `{path}`: {reason}")]
    SavedPlanStale { path: String, reason: String },
    /// The plan deletes data and that was not allowed.
    #[error("the plan deletes data: {}", addresses.iter().map(|address| format!("`{address}`")).collect::<Vec<_>>().join(", "))]
    DataLoss { addresses: Vec<Address> },
    /// The run folder could not be created.
    #[error("cannot create a run folder in `{directory}`: {cause}")]
    RunFolder { directory: String, cause: String },
    /// Live state could not be read at all, so drift cannot be known.
    #[error("cannot read live state, so drift cannot be known")]
    LiveUnreadable { reasons: Vec<String> },
    /// Verification could not run (as opposed to checks that failed).
    #[error("{0}")]
    Verify(String),
    /// `import` of an address stack.toml does not describe.
    #[error("`{0}` is not in stack.toml")]
    NotInStack(Address),
    /// No provider owns the resource's kind in this run.
    #[error("no `{0}` provider is available")]
    NoProvider(String),
    /// A recorded resource vanished from state while accepting drift.
    #[error("`{0}` vanished from state")]
    VanishedFromState(Address),
    /// A backup or a restore cannot be done as asked (an unknown backup, a dump that is
    /// not there, one that would be lost with the droplet).
    #[error("{message}")]
    Backup { message: String, hint: String },
    /// Reaching the host outside an apply (unlocking it) failed.
    #[error("{0}")]
    Host(String),
    /// `stackctl rollback` has no entry to go back to.
    #[error("cannot roll back: {0}")]
    RollbackTarget(RollbackTargetError),
    /// An image the rollback's entry ran is gone from the host (pruned, or removed by
    /// hand): a rollback never rebuilds from today's sources under yesterday's name.
    #[error("cannot roll back to history entry {entry}: {} gone from the host: {}", if images.len() == 1 { "its image is" } else { "its images are" }, images.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    RollbackImagesGone { entry: u64, images: Vec<GoneImage> },
    /// A secret the rollback's entry used is no longer provided by stack.toml (secret
    /// values are never kept in history, so the current ones are used).
    #[error("cannot roll back to history entry {entry}: `{address}` needs the secret `{attribute}`, which stack.toml no longer provides (history keeps no secret values)")]
    RollbackSecretGone {
        entry: u64,
        address: Address,
        attribute: String,
    },
    /// The stack on the target was deployed by a state of another lineage than the one
    /// at `state_path`, which has recorded resources of its own.
    #[error("the state `{state_path}` (lineage {state_lineage}) did not deploy stack `{stack}` on {host}: the state of lineage {host_lineage} did")]
    ForeignLineage {
        stack: String,
        host: String,
        state_path: String,
        state_lineage: String,
        host_lineage: String,
    },
}

/// An image a rollback needs that is no longer on the host as that apply left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoneImage {
    pub address: Address,
    pub reference: String,
    pub image_id: String,
}

impl std::fmt::Display for GoneImage {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "`{}` ({}, image {})",
            self.reference, self.address, self.image_id
        )
    }
}

impl From<ConfigErrors> for SessionError {
    fn from(errors: ConfigErrors) -> Self {
        SessionError::Config(errors)
    }
}

impl SessionError {
    pub fn provider(context: impl Into<String>, error: ProviderError) -> Self {
        SessionError::Provider {
            context: context.into(),
            error,
        }
    }
}
