//! What a read works through for one kind: each address with its desired resource
//! and recorded state, whichever of the two exist.

use std::collections::BTreeMap;

use stackctl_provider::{Address, Attributes, ReadRequest, RecordedResource, Resource};

pub(super) struct Entry<'a> {
    pub(super) address: &'a Address,
    pub(super) desired: Option<&'a Resource>,
    pub(super) recorded: Option<&'a RecordedResource>,
}

impl Entry<'_> {
    /// What live attributes are shaped after: state when there is one, else stack.toml.
    pub(super) fn reference(&self) -> Option<&Attributes> {
        self.recorded
            .map(|recorded| &recorded.attributes)
            .or(self.desired.map(|desired| &desired.attributes))
    }
}

pub(super) fn entries_of_kind<'a>(request: &'a ReadRequest, kind: &str) -> Vec<Entry<'a>> {
    let mut entries: BTreeMap<&Address, Entry<'a>> = BTreeMap::new();
    for desired in request
        .desired
        .iter()
        .filter(|desired| desired.address.kind() == kind)
    {
        entries.insert(
            &desired.address,
            Entry {
                address: &desired.address,
                desired: Some(desired),
                recorded: None,
            },
        );
    }
    for recorded in request
        .recorded
        .iter()
        .filter(|recorded| recorded.address.kind() == kind)
    {
        entries
            .entry(&recorded.address)
            .or_insert(Entry {
                address: &recorded.address,
                desired: None,
                recorded: None,
            })
            .recorded = Some(recorded);
    }
    entries.into_values().collect()
}
