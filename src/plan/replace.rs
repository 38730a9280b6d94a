//! `--replace ADDRESS`: force a replace of a resource through the normal plan.
//!
//! The plan is made as usual first; then each requested resource that the plan would
//! leave alone, or only update or adopt, is replaced instead (in its provider's order:
//! create before destroy, or destroy before create for one holding data), with the
//! reason "replace requested". One already being created, replaced or deleted keeps its
//! action. The replace is placed after its dependencies' actions and before its
//! dependents', and the plan's risks and exposure are worked out again, so a forced
//! replace of a volume is data loss like any other.

use std::collections::BTreeMap;

use stackctl_provider::{
    Action, ActionKind, Address, KindSchema, Reason, RecordedResource, ReplaceOrder, Resource,
};

use super::diff::changes;
use super::Plan;

/// Turns the plan's action for each of `requested` into a replace (see the module notes).
/// `schema` gives a resource's kind schema (for which attributes are sensitive).
pub fn force_replace<'a>(
    plan: &mut Plan,
    requested: &[Address],
    desired: &[Resource],
    recorded: &BTreeMap<Address, RecordedResource>,
    schema: &dyn Fn(&Resource) -> Option<&'a KindSchema>,
) {
    for address in requested {
        let Some(resource) = desired.iter().find(|resource| &resource.address == address) else {
            continue;
        };
        let Some(prior) = recorded.get(address) else {
            // Not deployed yet: the plan creates it anyway.
            continue;
        };
        let kind = match resource.replace_order {
            ReplaceOrder::CreateBeforeDestroy => ActionKind::ReplaceCreateBeforeDestroy,
            ReplaceOrder::DestroyBeforeCreate => ActionKind::ReplaceDestroyBeforeCreate,
        };
        if let Some(existing) = plan
            .actions
            .iter_mut()
            .find(|action| &action.address == address)
        {
            if matches!(existing.kind, ActionKind::Update | ActionKind::Adopt) {
                existing.kind = kind;
                existing.reason = Reason::ReplaceRequested;
            }
            continue;
        }
        let depends_on: Vec<Address> = resource
            .dependencies
            .iter()
            .filter(|dependency| {
                plan.actions
                    .iter()
                    .any(|action| &action.address == *dependency)
            })
            .cloned()
            .collect();
        // After every action it depends on; its dependents come later in dependency order.
        let after_dependencies = plan
            .actions
            .iter()
            .rposition(|action| depends_on.contains(&action.address))
            .map_or(0, |index| index + 1);
        let index = after_dependencies;
        plan.actions.insert(
            index,
            Action {
                address: address.clone(),
                provider: resource.provider.clone(),
                kind,
                reason: Reason::ReplaceRequested,
                changes: changes(&prior.attributes, &resource.attributes, schema(resource)),
                depends_on,
                desired: Some(resource.clone()),
                prior: Some(prior.clone()),
                live_id: None,
            },
        );
        for action in plan.actions.iter_mut().skip(index + 1) {
            let depends = desired
                .iter()
                .find(|other| other.address == action.address)
                .is_some_and(|other| other.dependencies.contains(address));
            if depends && !action.depends_on.contains(address) {
                action.depends_on.push(address.clone());
            }
        }
        plan.unchanged.retain(|unchanged| unchanged != address);
    }
    let exposure = super::exposure::of_plan(recorded, &plan.actions);
    let mut risks = super::risks::risks(&plan.actions, desired);
    let widened = super::risks::exposure_widened(&exposure, &risks);
    risks.extend(widened);
    risks.sort_by_key(|warning| warning.kind);
    plan.exposure = Some(exposure);
    plan.risks = risks;
}
