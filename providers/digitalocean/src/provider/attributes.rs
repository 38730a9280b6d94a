//! Shared attribute plumbing: reading texts and lists out of attributes, keeping live
//! lists in the order of the recorded (or desired) value so the planner sees only real
//! differences, resolving references, and building recorded resources.

use std::collections::BTreeSet;

use stackctl_provider::{
    canonical_json, sha256_hex, Address, ApplyContext, Attributes, ProviderError, RecordedResource,
    Resource, Value,
};

use super::{COMPUTED, PROVIDER_NAME};

/// A text attribute; a secret's plaintext when it is one.
pub(super) fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Text(text) => Some(text.clone()),
        Value::Integer(number) => Some(number.to_string()),
        Value::Secret(secret) => secret.expose().map(str::to_string),
        _ => None,
    }
}

pub(super) fn text_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_list)
        .into_iter()
        .flatten()
        .filter_map(|item| text_of(Some(item)))
        .collect()
}

pub(super) fn texts(items: impl IntoIterator<Item = String>) -> Value {
    Value::List(items.into_iter().map(Value::Text).collect())
}

/// `live` in the order of `reference` when both hold the same items (order is not
/// meaningful for tags or ids), otherwise sorted, so that a real change shows clearly.
pub(super) fn ordered_like(mut live: Vec<String>, reference: Option<&Value>) -> Value {
    let reference = text_list(reference);
    let live_set: BTreeSet<&String> = live.iter().collect();
    let reference_set: BTreeSet<&String> = reference.iter().collect();
    if live_set == reference_set && live.len() == reference.len() {
        return texts(reference);
    }
    live.sort();
    texts(live)
}

/// Replaces every value still unknown with what the run has recorded so far.
pub(super) fn resolve(
    resource: &Resource,
    context: &ApplyContext,
) -> Result<Resource, ProviderError> {
    let mut resolved = resource.clone();
    for value in resolved.attributes.values_mut() {
        *value = value.resolve(&|reference| {
            context.recorded_attribute(&reference.address, &reference.attribute)
        });
    }
    let mut pending = Vec::new();
    for value in resolved.attributes.values() {
        value.references(&mut pending);
    }
    if let Some(reference) = pending.first() {
        return Err(ProviderError::failed(format!(
            "`{}` needs `{reference}`, which is not known yet",
            resource.address
        )));
    }
    Ok(resolved)
}

/// What an import or adoption records: the live attributes, hashed as a desired
/// resource would be, so that an unchanged resource plans no action afterwards.
pub(super) fn recorded_from_live(
    address: &Address,
    id: String,
    live: Attributes,
    desired: Option<&Resource>,
) -> RecordedResource {
    let comparable: Attributes = live
        .iter()
        .filter(|(name, _)| !COMPUTED.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let hash = match desired {
        Some(desired) if desired.attributes == comparable => desired.hash(),
        _ => sha256_hex(canonical_json(&comparable).as_bytes()),
    };
    RecordedResource {
        address: address.clone(),
        provider: PROVIDER_NAME.to_string(),
        id: Some(id),
        hash,
        attributes: live,
        dependencies: desired
            .map(|desired| desired.dependencies.clone())
            .unwrap_or_default(),
    }
}

pub(super) fn with_computed(
    desired: &Resource,
    id: String,
    computed: Attributes,
) -> RecordedResource {
    let mut recorded = RecordedResource::from_desired(desired, Some(id));
    recorded.attributes.extend(computed);
    recorded
}
