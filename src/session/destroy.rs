//! What `destroy` removes beyond the recorded state: every container, network and volume
//! labelled as the stack's (`stackctl.stack=<name>`) that state does not know — left by
//! an apply killed between creating an object and recording it. Each becomes a record
//! made from what live state shows, so the planner deletes it like a recorded one, in
//! reverse dependency order (containers before the networks they are attached to).

use std::collections::BTreeMap;

use stackctl_provider::{Address, KindSchema, RecordedResource, Resource};

use crate::plan::LiveSnapshot;

/// The kinds a sweep removes: the stack's own objects on the host. Images are left
/// alone (a referenced image is shared with the rest of the machine).
const SWEPT_KINDS: &[&str] = &["service", "swarm_service", "network", "volume"];

/// `recorded` plus a record for every live object labelled as the stack's that it lacks.
/// `desired` gives an unrecorded object its dependencies (so it is deleted before what it
/// uses); `schemas` name the provider of each kind.
pub fn with_unrecorded_owned(
    recorded: &BTreeMap<Address, RecordedResource>,
    live: &LiveSnapshot,
    desired: &[Resource],
    schemas: &[KindSchema],
) -> BTreeMap<Address, RecordedResource> {
    let mut records = recorded.clone();
    for (address, found) in &live.resources {
        if !found.owned || records.contains_key(address) || !SWEPT_KINDS.contains(&address.kind()) {
            continue;
        }
        let planned = desired.iter().find(|resource| &resource.address == address);
        let provider = planned
            .map(|resource| resource.provider.clone())
            .or_else(|| {
                schemas
                    .iter()
                    .find(|schema| schema.kind == address.kind())
                    .map(|schema| schema.provider.to_string())
            });
        let Some(provider) = provider else {
            continue;
        };
        records.insert(
            address.clone(),
            RecordedResource {
                address: address.clone(),
                provider,
                id: found.id.clone(),
                hash: String::new(),
                attributes: found.attributes.clone(),
                dependencies: planned
                    .map(|resource| resource.dependencies.clone())
                    .unwrap_or_default(),
            },
        );
    }
    records
}
