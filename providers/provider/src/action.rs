use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Address, RecordedResource, Resource, Value};

/// What an action does to one resource. The glyphs are the plan's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// `+` make a new resource.
    Create,
    /// `~` change attributes in place.
    Update,
    /// `+/-` a new one first, then the old one goes (no gap in service).
    ReplaceCreateBeforeDestroy,
    /// `-/+` the old one goes first (it holds data the new one will mount).
    ReplaceDestroyBeforeCreate,
    /// `-` remove a resource no longer in stack.toml.
    Delete,
    /// `<=` record a live resource that is already ours, without touching it.
    Adopt,
    /// `>` run a one-off task (a release task: Django's `migrate`) before its service's
    /// new version takes traffic.
    Run,
}

impl ActionKind {
    pub fn glyph(self) -> &'static str {
        match self {
            ActionKind::Create => "+",
            ActionKind::Update => "~",
            ActionKind::ReplaceCreateBeforeDestroy => "+/-",
            ActionKind::ReplaceDestroyBeforeCreate => "-/+",
            ActionKind::Delete => "-",
            ActionKind::Adopt => "<=",
            ActionKind::Run => ">",
        }
    }

    /// The verb shown in plans: "create", "update in place", …
    pub fn verb(self) -> &'static str {
        match self {
            ActionKind::Create => "create",
            ActionKind::Update => "update in place",
            ActionKind::ReplaceCreateBeforeDestroy => "replace (create before destroy)",
            ActionKind::ReplaceDestroyBeforeCreate => "replace (destroy before create)",
            ActionKind::Delete => "delete",
            ActionKind::Adopt => "adopt",
            ActionKind::Run => "run",
        }
    }

    pub fn is_replace(self) -> bool {
        matches!(
            self,
            ActionKind::ReplaceCreateBeforeDestroy | ActionKind::ReplaceDestroyBeforeCreate
        )
    }

    /// True when the action removes something that exists now.
    pub fn destroys(self) -> bool {
        self.is_replace() || self == ActionKind::Delete
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.verb())
    }
}

/// The order a replacement runs in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplaceOrder {
    #[default]
    CreateBeforeDestroy,
    DestroyBeforeCreate,
}

/// Why an action is in the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Reason {
    /// In stack.toml, not in state, not found live.
    New,
    /// stack.toml changed attributes that can change in place.
    ConfigChanged,
    /// stack.toml changed attributes that cannot change in place.
    ReplaceForced { attributes: Vec<String> },
    /// The live resource differs from what the last apply recorded.
    Drift { attributes: Vec<String> },
    /// In state, but gone from the target.
    Vanished,
    /// In state, no longer in stack.toml.
    RemovedFromConfig,
    /// Found live, labelled as this stack's, but not in state.
    FoundUnrecorded,
    /// Its host (a droplet) is created or replaced: what was on the old one is gone.
    HostRenewed { host: Address },
    /// The registry serves another image for the tag than the one recorded (`pull =
    /// "always"`): the new one is pulled.
    TagMoved,
    /// A release task runs: for the first time (`attributes` empty), or because what it
    /// runs with changed (the service's image, env, the task's command).
    ReleaseTask { attributes: Vec<String> },
    /// `stackctl rollback`: back to what history entry `entry` applied.
    RollingBack { entry: u64 },
    /// The target was rolled back to history entry `entry` and stack.toml asks for
    /// something else: the user reverts the commit, or applies to deploy it again.
    RolledBack { entry: u64 },
    /// The user asked for it to be replaced (`--replace ADDRESS`), nothing changed.
    ReplaceRequested,
}

impl fmt::Display for Reason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::New => formatter.write_str("new in stack.toml"),
            Reason::ConfigChanged => formatter.write_str("stack.toml changed"),
            Reason::ReplaceForced { attributes } => write!(
                formatter,
                "stack.toml changed {}, which cannot change in place",
                backticked(attributes)
            ),
            Reason::Drift { attributes } => write!(
                formatter,
                "drift: {} changed outside stackctl",
                backticked(attributes)
            ),
            Reason::Vanished => {
                formatter.write_str("vanished: recorded in state but gone from the target")
            }
            Reason::RemovedFromConfig => formatter.write_str("no longer in stack.toml"),
            Reason::HostRenewed { host } => write!(
                formatter,
                "its host `{host}` is new or replaced, so everything on it is created again"
            ),
            Reason::TagMoved => formatter
                .write_str("its tag moved in the registry: the image it serves now is pulled"),
            Reason::ReleaseTask { attributes } if attributes.is_empty() => {
                formatter.write_str("release task: first run for this service")
            }
            Reason::ReleaseTask { attributes } => write!(
                formatter,
                "release task: {} changed",
                backticked(attributes)
            ),
            Reason::RollingBack { entry } => {
                write!(formatter, "rollback: back to what history entry {entry} applied")
            }
            Reason::RolledBack { entry } => write!(
                formatter,
                "rolled back to history entry {entry} by `stackctl rollback`; stack.toml differs"
            ),
            Reason::FoundUnrecorded => {
                formatter.write_str("found on the target as this stack's (labelled, or a shared image) but not in state")
            }
            Reason::ReplaceRequested => formatter.write_str("requested with `--replace`"),
        }
    }
}

fn backticked(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One attribute's before → after. `None` means absent on that side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeChange {
    pub attribute: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// This change alone would force a replacement.
    #[serde(default)]
    pub forces_replace: bool,
    /// Show as `(sensitive)` whatever the value.
    #[serde(default)]
    pub sensitive: bool,
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub address: Address,
    pub provider: String,
    pub kind: ActionKind,
    pub reason: Reason,
    /// Attribute changes, sorted by attribute name.
    pub changes: Vec<AttributeChange>,
    /// Actions (by address) that must succeed before this one starts.
    pub depends_on: Vec<Address>,
    /// What the resource should become; absent for a delete.
    pub desired: Option<Resource>,
    /// What state recorded before; absent for a create or an adopt.
    pub prior: Option<RecordedResource>,
    /// The live resource's id, for an adopt (and for a repair where live moved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_id: Option<String>,
}
