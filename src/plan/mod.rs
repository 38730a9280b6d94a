//! Plans: what `apply` will do, why, and to which attributes.
//!
//! The planner ([`planner::plan`]) is a pure function of the desired resources, the
//! recorded state and — when it could be read — the live state. It follows the three-way
//! table in DESIGN.md; every action carries its [`Reason`] and per-attribute changes.

pub mod diff;
pub mod drift;
pub mod exposure;
pub mod planner;
pub mod replace;
pub mod risks;
pub mod saved;

use serde::{Deserialize, Serialize};
use stackctl_provider::{Action, ActionKind, Address};

pub use planner::{plan, LiveSnapshot, PlanInput, SchemaSet};
pub use risks::{PlanWarning, WarningKind};
pub use saved::{SavedPlan, StalePlan};

/// The version of the JSON form of a plan (`plan --format json`, `plan --out`).
pub const PLAN_FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    /// What the plan is for: an apply, a destroy, or a drift report.
    pub mode: PlanMode,
    pub stack: String,
    /// Whether live state was read; when not, the plan came from recorded state alone.
    pub live: LiveStatus,
    /// The state the plan was made against.
    pub state: StateIdentity,
    /// Hash of stack.toml and the env file the plan was made from.
    pub config_fingerprint: String,
    /// `--target` addresses, if the plan is limited to them.
    pub targets: Vec<Address>,
    /// In the order they may run: dependencies first, deletes last in reverse order.
    pub actions: Vec<Action>,
    /// Resources that need nothing.
    pub unchanged: Vec<Address>,
    /// Notes on how the plan was made: a `--target` plan, a dependency cycle, a live
    /// resource that is not ours.
    pub warnings: Vec<String>,
    /// What the plan does to the public surface; `None` for drift reports (and for plans
    /// saved before exposure existed).
    #[serde(default)]
    pub exposure: Option<exposure::Exposure>,
    /// What applying the plan risks, per resource (data loss, requests failing,
    /// production certificates, exposure widened); see [`risks`]. Absent from plans
    /// saved before it existed.
    #[serde(default)]
    pub risks: Vec<PlanWarning>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanMode {
    Apply,
    Destroy,
    Drift,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LiveStatus {
    /// Every provider's live state was read.
    Read,
    /// Nothing was read (`--offline`, or no credentials/target).
    NotRead { reason: String },
    /// Some providers could not be read; their resources were planned from state.
    Partial { unread: Vec<String> },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateIdentity {
    /// Absent when there is no state yet.
    pub lineage: Option<String>,
    pub serial: u64,
}

/// Counts per action kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub adopt: usize,
    /// Release tasks to run.
    pub run: usize,
    pub unchanged: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut summary = Summary {
            unchanged: self.unchanged.len(),
            ..Summary::default()
        };
        for action in &self.actions {
            match action.kind {
                ActionKind::Create => summary.create += 1,
                ActionKind::Update => summary.update += 1,
                ActionKind::ReplaceCreateBeforeDestroy | ActionKind::ReplaceDestroyBeforeCreate => {
                    summary.replace += 1
                }
                ActionKind::Delete => summary.delete += 1,
                ActionKind::Adopt => summary.adopt += 1,
                ActionKind::Run => summary.run += 1,
            }
        }
        summary
    }

    pub fn has_changes(&self) -> bool {
        !self.actions.is_empty()
    }

    /// Actions that destroy data: deleting or replacing a volume or a droplet (a droplet
    /// holds everything on it).
    pub fn data_loss(&self) -> Vec<&Action> {
        self.actions
            .iter()
            .filter(|action| {
                action.kind.destroys() && matches!(action.address.kind(), "volume" | "droplet")
            })
            .collect()
    }
}
