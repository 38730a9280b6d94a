//! Drift: what changed on the target since the last apply, whatever stack.toml says now.
//! Each drifted resource becomes an action whose changes run from the recorded value to
//! the live one, so the same renderers show it.

use std::collections::BTreeMap;

use stackctl_provider::{Action, ActionKind, Address, Reason, RecordedResource};

use super::diff::{change, drifted};
use super::{
    LiveSnapshot, LiveStatus, Plan, PlanMode, SchemaSet, StateIdentity, PLAN_FORMAT_VERSION,
};

pub fn detect(
    stack: &str,
    recorded: &BTreeMap<Address, RecordedResource>,
    live: &LiveSnapshot,
    schemas: &SchemaSet,
    state: StateIdentity,
) -> Plan {
    let mut actions = Vec::new();
    let mut unchanged = Vec::new();
    for (address, record) in recorded {
        if !live.read_providers.contains(&record.provider) {
            continue;
        }
        let schema = schemas.get(&record.provider, address.kind());
        match live.resources.get(address) {
            None => actions.push(Action {
                address: address.clone(),
                provider: record.provider.clone(),
                kind: ActionKind::Create,
                reason: Reason::Vanished,
                changes: Vec::new(),
                depends_on: Vec::new(),
                desired: None,
                prior: Some(record.clone()),
                live_id: None,
            }),
            Some(found) => {
                let attributes = drifted(&record.attributes, &found.attributes, schema);
                if attributes.is_empty() {
                    unchanged.push(address.clone());
                    continue;
                }
                let changes: Vec<_> = attributes
                    .iter()
                    .map(|name| {
                        change(
                            name,
                            record.attributes.get(name),
                            found.attributes.get(name),
                            schema,
                        )
                    })
                    .collect();
                let forces = changes.iter().any(|change| change.forces_replace);
                actions.push(Action {
                    address: address.clone(),
                    provider: record.provider.clone(),
                    kind: if forces {
                        ActionKind::ReplaceCreateBeforeDestroy
                    } else {
                        ActionKind::Update
                    },
                    reason: Reason::Drift { attributes },
                    changes,
                    depends_on: Vec::new(),
                    desired: None,
                    prior: Some(record.clone()),
                    live_id: found.id.clone(),
                });
            }
        }
    }
    Plan {
        format_version: PLAN_FORMAT_VERSION,
        mode: PlanMode::Drift,
        stack: stack.to_string(),
        live: if live.unread.is_empty() {
            LiveStatus::Read
        } else {
            LiveStatus::Partial {
                unread: live.unread.clone(),
            }
        },
        state,
        config_fingerprint: String::new(),
        targets: Vec::new(),
        actions,
        unchanged,
        warnings: Vec::new(),
        // A drift report says what changed on the target, not what a change proposes.
        exposure: None,
        // A drift report changes nothing by itself: the plan that repairs it warns.
        risks: Vec::new(),
    }
}
