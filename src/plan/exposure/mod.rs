//! Exposure: what a plan does to the stack's public surface.
//!
//! A reviewer's first question about a change is rarely "which containers restart" but
//! "does this open anything": a route without basic auth, an allowlist widened to
//! `0.0.0.0/0`, a port published past the edge, production certificates. The exposure of
//! a plan answers it: the surface before (recorded state) and after (recorded state with
//! the plan's actions applied: desired attributes for what it creates, updates or
//! replaces, nothing for what it deletes), and each change that widens or narrows it.
//!
//! Pure: no network, no live state. Drift plans have no exposure (they report what
//! changed on the target, not what a change proposes); destroy plans narrow everything.

mod compare;
pub mod describe;
mod ip_range;
pub mod reach;
pub mod surface;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stackctl_provider::{Action, ActionKind, Address, RecordedResource};

pub use compare::compare;
pub use surface::{AttributesByAddress, Surface};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exposure {
    pub before: Surface,
    pub after: Surface,
    /// Widenings first, then narrowings.
    pub changes: Vec<ExposureChange>,
}

/// One way the surface changed, in a sentence a reviewer reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposureChange {
    pub direction: Direction,
    pub change: Change,
    /// The address of the resource the change is about: `route.api`, `service.edge`,
    /// `file.traefik-static`.
    pub subject: String,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// More clients reach more, or with less in their way.
    Widens,
    /// The opposite.
    Narrows,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Added,
    Removed,
    Changed,
}

impl Change {
    /// `+`, `-`, `~`, as in the rest of the plan.
    pub fn glyph(self) -> &'static str {
        match self {
            Change::Added => "+",
            Change::Removed => "-",
            Change::Changed => "~",
        }
    }
}

impl Exposure {
    /// Compares two surfaces.
    pub fn between(before: Surface, after: Surface) -> Exposure {
        let changes = compare(&before, &after);
        Exposure {
            before,
            after,
            changes,
        }
    }

    pub fn widens(&self) -> bool {
        self.count(Direction::Widens) > 0
    }

    pub fn is_unchanged(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn count(&self, direction: Direction) -> usize {
        self.changes
            .iter()
            .filter(|change| change.direction == direction)
            .count()
    }
}

/// The exposure of a plan's actions against recorded state.
pub fn of_plan(recorded: &BTreeMap<Address, RecordedResource>, actions: &[Action]) -> Exposure {
    let before: AttributesByAddress<'_> = recorded
        .iter()
        .map(|(address, record)| (address, &record.attributes))
        .collect();
    let mut after = before.clone();
    for action in actions {
        match (&action.desired, action.kind) {
            (_, ActionKind::Delete) => {
                after.remove(&action.address);
            }
            (Some(desired), _) => {
                after.insert(&action.address, &desired.attributes);
            }
            (None, _) => {}
        }
    }
    Exposure::between(surface::read(&before), surface::read(&after))
}

#[cfg(test)]
mod tests;
