//! The three-way planner.
//!
//! For every address in desired ∪ recorded ∪ live it picks one row of this table
//! (DESIGN.md), never more:
//!
//! | desired | recorded | live                          | action |
//! |---------|----------|-------------------------------|--------|
//! | yes     | no       | absent (or not read)          | create, reason `new` |
//! | yes     | yes      | matches recorded, same hash   | nothing |
//! | yes     | yes      | matches recorded, other hash  | update, or replace when a changed attribute forces it |
//! | yes     | yes      | differs from recorded         | repair (update/replace), reason `drift` |
//! | yes     | yes      | absent                        | create, reason `vanished` |
//! | no      | yes      | present (or not read)         | delete, in reverse dependency order |
//! | yes     | no       | present, labelled as ours     | adopt, without recreating |
//!
//! Values known only after apply (a droplet's IP) are resolved from recorded state when
//! the resource holding them is not being created or replaced; otherwise they stay
//! `(known after apply)`. The planner is pure: no I/O, same inputs → same plan.

use std::collections::{BTreeMap, BTreeSet};

use stackctl_provider::{
    Action, ActionKind, Address, AttributeChange, Attributes, KindSchema, LiveResource, Reason,
    RecordedResource, Reference, ReplaceOrder, Resource, Value,
};

use super::diff::{change, changes, drifted};
use super::exposure;
use super::{LiveStatus, Plan, PlanMode, StateIdentity, PLAN_FORMAT_VERSION};
use crate::graph;

/// Attribute rules per `(provider, kind)`.
#[derive(Clone, Debug, Default)]
pub struct SchemaSet {
    kinds: BTreeMap<(String, String), KindSchema>,
}

impl SchemaSet {
    pub fn new(schemas: impl IntoIterator<Item = KindSchema>) -> Self {
        SchemaSet {
            kinds: schemas
                .into_iter()
                .map(|schema| {
                    (
                        (schema.provider.to_string(), schema.kind.to_string()),
                        schema,
                    )
                })
                .collect(),
        }
    }

    pub fn get(&self, provider: &str, kind: &str) -> Option<&KindSchema> {
        self.kinds.get(&(provider.to_string(), kind.to_string()))
    }
}

/// What providers found on the target. Resources of a provider not in `read_providers`
/// were not read (offline, or the target was unreachable).
#[derive(Clone, Debug, Default)]
pub struct LiveSnapshot {
    pub resources: BTreeMap<Address, LiveResource>,
    pub read_providers: BTreeSet<String>,
    pub unread: Vec<String>,
}

pub struct PlanInput<'a> {
    pub stack: &'a str,
    pub desired: &'a [Resource],
    pub recorded: &'a BTreeMap<Address, RecordedResource>,
    pub state: StateIdentity,
    pub config_fingerprint: String,
    /// `None`: live state was not read; the string says why.
    pub live: Result<&'a LiveSnapshot, String>,
    pub schemas: &'a SchemaSet,
    /// `--target`: limit the plan to these and what they depend on.
    pub targets: &'a [Address],
    pub mode: PlanMode,
}

pub fn plan(input: &PlanInput<'_>) -> Plan {
    let desired: BTreeMap<&Address, &Resource> = input
        .desired
        .iter()
        .map(|resource| (&resource.address, resource))
        .collect();
    let live = input.live.as_ref().ok();
    let mut warnings = Vec::new();

    // Order: desired resources by their edges, recorded-only ones by their recorded edges.
    let mut edges: BTreeMap<Address, Vec<Address>> = BTreeMap::new();
    for resource in input.desired {
        edges.insert(resource.address.clone(), resource.dependencies.clone());
    }
    for (address, recorded) in input.recorded {
        edges
            .entry(address.clone())
            .or_insert_with(|| recorded.dependencies.clone());
    }
    let order = match graph::dependency_order(&edges) {
        Ok(order) => order,
        Err(cycles) => {
            for members in &cycles {
                warnings.push(format!(
                    "dependency cycle among {}; those resources are ordered by name",
                    members
                        .iter()
                        .map(|member| format!("`{member}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            edges.keys().cloned().collect()
        }
    };

    let mut actions: Vec<Action> = Vec::new();
    let mut deletes: Vec<Action> = Vec::new();
    let mut unchanged = Vec::new();
    // Resources whose computed values will be new after this apply.
    let mut renewed: BTreeSet<Address> = BTreeSet::new();

    for address in &order {
        let recorded = input.recorded.get(address);
        let provider = desired
            .get(address)
            .map(|resource| resource.provider.as_str())
            .or(recorded.map(|recorded| recorded.provider.as_str()))
            .unwrap_or_default();
        let was_read = live.is_some_and(|live| live.read_providers.contains(provider));
        let live_resource = live.and_then(|live| live.resources.get(address));
        let schema = input.schemas.get(provider, address.kind());

        let Some(resource) = desired.get(address) else {
            if let Some(recorded) = recorded {
                deletes.push(Action {
                    address: address.clone(),
                    provider: recorded.provider.clone(),
                    kind: ActionKind::Delete,
                    reason: Reason::RemovedFromConfig,
                    // What state recorded, and what the live resource reports that is
                    // never recorded (a swarm node's `services`: what moves when it goes).
                    changes: recorded
                        .attributes
                        .iter()
                        .chain(
                            live_resource
                                .into_iter()
                                .flat_map(|live| live.attributes.iter())
                                .filter(|(name, _)| {
                                    !recorded.attributes.contains_key(*name)
                                        && schema.is_some_and(|schema| schema.is_computed(name))
                                }),
                        )
                        .map(|(name, value)| change(name, Some(value), None, schema))
                        .collect(),
                    depends_on: Vec::new(),
                    desired: None,
                    prior: Some(recorded.clone()),
                    live_id: live_resource.and_then(|live| live.id.clone()),
                });
            }
            continue;
        };
        let resolved = resolve_references(resource, input.recorded, &renewed);
        // A resource on a droplet that is created or replaced is gone with the old one,
        // whatever live state (read from the old droplet, if at all) says.
        let renewed_host = resource
            .dependencies
            .iter()
            .find(|dependency| dependency.kind() == "droplet" && renewed.contains(*dependency));
        let action = match (renewed_host, recorded) {
            (Some(host), Some(recorded)) => Some(Action {
                address: address.clone(),
                provider: resource.provider.clone(),
                kind: ActionKind::Create,
                reason: Reason::HostRenewed { host: host.clone() },
                changes: changes(&Attributes::new(), &resolved.attributes, schema),
                depends_on: Vec::new(),
                desired: Some(resolved.clone()),
                prior: Some(recorded.clone()),
                live_id: None,
            }),
            _ => decide(
                &resolved,
                recorded,
                was_read,
                live_resource,
                schema,
                &mut warnings,
            ),
        };
        let action = action.map(|action| as_release_task(action, schema));
        match action {
            Some(action) => {
                // A moved tag renews the image's digest, which its services follow.
                if matches!(action.kind, ActionKind::Create)
                    || action.kind.is_replace()
                    || action.reason == Reason::TagMoved
                {
                    renewed.insert(address.clone());
                }
                actions.push(action);
            }
            None => unchanged.push(address.clone()),
        }
    }

    // Live resources labelled as ours that neither stack.toml nor state knows.
    if let Some(live) = live {
        for (address, found) in &live.resources {
            if found.owned
                && !desired.contains_key(address)
                && !input.recorded.contains_key(address)
            {
                warnings.push(format!(
                    "`{address}` is running with this stack's labels but is neither in stack.toml nor in state; left alone"
                ));
            }
        }
    }

    // Dependencies between actions.
    let acting: BTreeSet<Address> = actions
        .iter()
        .map(|action| action.address.clone())
        .collect();
    for action in &mut actions {
        if let Some(resource) = desired.get(&action.address) {
            action.depends_on = resource
                .dependencies
                .iter()
                .filter(|dependency| acting.contains(*dependency))
                .cloned()
                .collect();
        }
    }
    // A delete waits for whatever depended on the resource: their deletes, or their updates
    // that move them off it.
    let deleting: BTreeSet<Address> = deletes
        .iter()
        .map(|action| action.address.clone())
        .collect();
    for delete in &mut deletes {
        let mut waits: BTreeSet<Address> = BTreeSet::new();
        for (other, recorded) in input.recorded {
            if recorded.dependencies.contains(&delete.address)
                && (deleting.contains(other) || acting.contains(other))
            {
                waits.insert(other.clone());
            }
        }
        delete.depends_on = waits.into_iter().collect();
    }
    deletes.reverse();
    actions.extend(deletes);

    let mut targets = input.targets.to_vec();
    targets.sort();
    if !targets.is_empty() {
        let wanted = with_dependencies(&targets, &edges);
        actions.retain(|action| wanted.contains(&action.address));
        for action in &mut actions {
            action
                .depends_on
                .retain(|dependency| wanted.contains(dependency));
        }
        unchanged.retain(|address| wanted.contains(address));
        warnings.push(format!(
            "the plan is limited to {} and what they depend on: other changes are left out; run a full `stackctl plan` afterwards",
            targets.iter().map(|target| format!("`{target}`")).collect::<Vec<_>>().join(", ")
        ));
    }

    let live_status = match &input.live {
        Err(reason) => LiveStatus::NotRead {
            reason: reason.clone(),
        },
        Ok(live) if live.unread.is_empty() => LiveStatus::Read,
        Ok(live) => LiveStatus::Partial {
            unread: live.unread.clone(),
        },
    };
    let exposure = exposure::of_plan(input.recorded, &actions);
    let mut risks = super::risks::risks(&actions, input.desired);
    let widened = super::risks::exposure_widened(&exposure, &risks);
    risks.extend(widened);
    risks.sort_by_key(|warning| warning.kind);
    Plan {
        format_version: PLAN_FORMAT_VERSION,
        mode: input.mode,
        stack: input.stack.to_string(),
        live: live_status,
        state: input.state.clone(),
        config_fingerprint: input.config_fingerprint.clone(),
        targets,
        actions,
        unchanged,
        warnings,
        exposure: Some(exposure),
        risks,
    }
}

/// One row of the table for a resource stack.toml wants.
fn decide(
    resource: &Resource,
    recorded: Option<&RecordedResource>,
    was_read: bool,
    live: Option<&LiveResource>,
    schema: Option<&KindSchema>,
    warnings: &mut Vec<String>,
) -> Option<Action> {
    let action = |kind: ActionKind,
                  reason: Reason,
                  changes,
                  prior: Option<&RecordedResource>,
                  live_id: Option<String>| Action {
        address: resource.address.clone(),
        provider: resource.provider.clone(),
        kind,
        reason,
        changes,
        depends_on: Vec::new(),
        desired: Some(resource.clone()),
        prior: prior.cloned(),
        live_id,
    };
    let everything_new = || changes(&Attributes::new(), &resource.attributes, schema);
    let replace_kind = match resource.replace_order {
        ReplaceOrder::CreateBeforeDestroy => ActionKind::ReplaceCreateBeforeDestroy,
        ReplaceOrder::DestroyBeforeCreate => ActionKind::ReplaceDestroyBeforeCreate,
    };

    let Some(recorded) = recorded else {
        return match live {
            Some(found) if was_read && found.owned => Some(action(
                ActionKind::Adopt,
                Reason::FoundUnrecorded,
                changes(
                    &found.attributes,
                    &comparable(&resource.attributes, &found.attributes),
                    schema,
                ),
                None,
                found.id.clone(),
            )),
            Some(_) if was_read => {
                warnings.push(format!(
                    "`{}` exists on the target without this stack's labels; creating it may collide",
                    resource.address
                ));
                Some(action(
                    ActionKind::Create,
                    Reason::New,
                    everything_new(),
                    None,
                    None,
                ))
            }
            _ => Some(action(
                ActionKind::Create,
                Reason::New,
                everything_new(),
                None,
                None,
            )),
        };
    };

    if was_read && live.is_none() {
        return Some(action(
            ActionKind::Create,
            Reason::Vanished,
            everything_new(),
            Some(recorded),
            None,
        ));
    }

    // Drift: what changed on the target since the last apply.
    let drift = live
        .map(|live| drifted(&recorded.attributes, &live.attributes, schema))
        .unwrap_or_default();
    // What moved at a source the resource follows (a tag in its registry) is news to
    // follow, not drift to repair.
    let (moved, drift): (Vec<String>, Vec<String>) = drift
        .into_iter()
        .partition(|name| schema.is_some_and(|schema| schema.is_upstream(name)));
    let config_changed = resource.hash() != recorded.hash;
    if drift.is_empty() && moved.is_empty() && !config_changed {
        return None;
    }

    let mut found = if config_changed {
        changes(
            &desired_view(&recorded.attributes, schema),
            &resource.attributes,
            schema,
        )
    } else {
        Vec::new()
    };
    if let Some(live) = live {
        for name in &drift {
            // An attribute found anew by every apply (a swarm service's servers: its
            // tasks' addresses) is not put back as recorded: its new value is found then.
            let unknown = Value::Unknown(Reference {
                address: resource.address.clone(),
                attribute: name.clone(),
            });
            let target = resource.attributes.get(name).or_else(|| {
                if schema.is_some_and(|schema| schema.is_found_by_apply(name)) {
                    Some(&unknown)
                } else {
                    recorded.attributes.get(name)
                }
            });
            found.retain(|existing| &existing.attribute != name);
            found.push(change(name, live.attributes.get(name), target, schema));
        }
    }
    if let Some(live) = live {
        for name in &moved {
            found.push(change(
                name,
                recorded.attributes.get(name),
                live.attributes.get(name),
                schema,
            ));
        }
    }
    found.sort_by(|left, right| left.attribute.cmp(&right.attribute));
    found.retain(|change| change.before != change.after);
    let inert =
        |change: &AttributeChange| schema.is_some_and(|schema| schema.is_inert(&change.attribute));
    if drift.is_empty() && !found.is_empty() && found.iter().all(inert) {
        // Only attributes that take effect at the next apply changed: nothing to do now.
        return None;
    }
    if found.is_empty() && drift.is_empty() {
        // The hash moved but no attribute shows it (a reference resolved differently):
        // re-apply in place so the recorded hash catches up.
        return Some(action(
            ActionKind::Update,
            Reason::ConfigChanged,
            found,
            Some(recorded),
            None,
        ));
    }
    let forcing: Vec<String> = found
        .iter()
        .filter(|change| change.forces_replace)
        .map(|change| change.attribute.clone())
        .collect();
    let kind = if forcing.is_empty() {
        ActionKind::Update
    } else {
        replace_kind
    };
    let reason = if !drift.is_empty() {
        Reason::Drift { attributes: drift }
    } else if !config_changed {
        Reason::TagMoved
    } else if forcing.is_empty() {
        Reason::ConfigChanged
    } else {
        Reason::ReplaceForced {
            attributes: forcing,
        }
    };
    Some(action(
        kind,
        reason,
        found,
        Some(recorded),
        live.and_then(|live| live.id.clone()),
    ))
}

/// A release task (`release.*`) is not created or updated: it runs, once per change of
/// what it runs with. Any planned action on one but its delete becomes a run, whose
/// reason names the attributes that changed (none: its first run).
fn as_release_task(mut action: Action, schema: Option<&KindSchema>) -> Action {
    if action.address.kind() != "release" || action.kind == ActionKind::Delete {
        return action;
    }
    let first_run = matches!(
        action.reason,
        Reason::New | Reason::Vanished | Reason::HostRenewed { .. }
    );
    let attributes = if first_run {
        Vec::new()
    } else {
        action
            .changes
            .iter()
            .filter(|change| !schema.is_some_and(|schema| schema.is_inert(&change.attribute)))
            .map(|change| change.attribute.clone())
            .collect()
    };
    action.kind = ActionKind::Run;
    action.reason = Reason::ReleaseTask { attributes };
    action
}

/// Recorded attributes without computed ones: what the config could have said.
fn desired_view(recorded: &Attributes, schema: Option<&KindSchema>) -> Attributes {
    recorded
        .iter()
        .filter(|(name, _)| !schema.is_some_and(|schema| schema.is_computed(name)))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// The desired attributes that live state reports, for an adopt's diff.
fn comparable(desired: &Attributes, live: &Attributes) -> Attributes {
    desired
        .iter()
        .filter(|(name, _)| live.contains_key(*name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// Replaces references that recorded state answers, unless the referenced resource is
/// being created or replaced in this plan (its values will be new).
fn resolve_references(
    resource: &Resource,
    recorded: &BTreeMap<Address, RecordedResource>,
    renewed: &BTreeSet<Address>,
) -> Resource {
    let lookup = |reference: &Reference| -> Option<Value> {
        if renewed.contains(&reference.address) {
            return None;
        }
        recorded
            .get(&reference.address)?
            .attributes
            .get(&reference.attribute)
            .cloned()
    };
    let mut resolved = resource.clone();
    for value in resolved.attributes.values_mut() {
        if value.contains_unknown() {
            *value = value.resolve(&lookup);
        }
    }
    resolved
}

fn with_dependencies(
    targets: &[Address],
    edges: &BTreeMap<Address, Vec<Address>>,
) -> BTreeSet<Address> {
    let mut wanted = BTreeSet::new();
    let mut pending: Vec<Address> = targets.to_vec();
    while let Some(address) = pending.pop() {
        if wanted.insert(address.clone()) {
            pending.extend(edges.get(&address).into_iter().flatten().cloned());
        }
    }
    wanted
}
