//! `plan --out FILE` and `apply FILE`: a plan saved for review and applied exactly.
//!
//! The file holds the plan (secrets only as salted digests) and the salt it was made
//! with. Applying it re-reads stack.toml and state and refuses, saying why, when the
//! state's lineage or serial or the config's fingerprint moved since the plan was made.

use serde::{Deserialize, Serialize};

use super::Plan;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Always `stackctl-plan`: tells a saved plan from other JSON.
    pub kind: String,
    pub plan: Plan,
    /// The salt secrets were hashed with; becomes the state's salt when there is none.
    pub salt: String,
}

pub const SAVED_PLAN_KIND: &str = "stackctl-plan";

/// Why a saved plan cannot be applied any more.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StalePlan {
    #[error("the plan was made for stack `{planned}`, but the config is for `{current}`")]
    OtherStack { planned: String, current: String },
    #[error("the plan was made against another state (lineage {planned}, now {current})")]
    OtherLineage { planned: String, current: String },
    #[error("the state changed since the plan was made (serial {planned}, now {current}): another apply ran")]
    StateMoved { planned: u64, current: u64 },
    #[error("what would be applied changed since the plan was made (stack.toml, the env file or environment, a build context or a file it reads)")]
    ConfigMoved,
}

impl SavedPlan {
    pub fn new(plan: Plan, salt: String) -> Self {
        SavedPlan {
            kind: SAVED_PLAN_KIND.to_string(),
            plan,
            salt,
        }
    }

    /// Checks that the plan still describes the world: same stack, state and config.
    pub fn check_current(
        &self,
        stack: &str,
        lineage: Option<&str>,
        serial: u64,
        config_fingerprint: &str,
    ) -> Result<(), StalePlan> {
        let planned = &self.plan.state;
        if self.plan.stack != stack {
            return Err(StalePlan::OtherStack {
                planned: self.plan.stack.clone(),
                current: stack.to_string(),
            });
        }
        if planned.lineage.as_deref() != lineage {
            return Err(StalePlan::OtherLineage {
                planned: planned.lineage.clone().unwrap_or_else(|| "none".into()),
                current: lineage.unwrap_or("none").to_string(),
            });
        }
        if planned.serial != serial {
            return Err(StalePlan::StateMoved {
                planned: planned.serial,
                current: serial,
            });
        }
        if self.plan.config_fingerprint != config_fingerprint {
            return Err(StalePlan::ConfigMoved);
        }
        Ok(())
    }
}
