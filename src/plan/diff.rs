//! Attribute-by-attribute comparison of two resources' attributes.

use stackctl_provider::{AttributeChange, Attributes, KindSchema, Value};

/// The changes from `before` to `after`, sorted by attribute. Computed attributes are
/// compared only when `after` has them (desired attributes never do).
pub fn changes(
    before: &Attributes,
    after: &Attributes,
    schema: Option<&KindSchema>,
) -> Vec<AttributeChange> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    let mut found = Vec::new();
    for name in names {
        let computed = schema.is_some_and(|schema| schema.is_computed(name));
        if computed && !after.contains_key(name) {
            continue;
        }
        let old = before.get(name);
        let new = after.get(name);
        if old == new {
            continue;
        }
        found.push(change(name, old, new, schema));
    }
    found
}

pub fn change(
    name: &str,
    before: Option<&Value>,
    after: Option<&Value>,
    schema: Option<&KindSchema>,
) -> AttributeChange {
    let sensitive = schema.is_some_and(|schema| schema.is_sensitive(name))
        || before.is_some_and(Value::contains_secret)
        || after.is_some_and(Value::contains_secret);
    AttributeChange {
        attribute: name.to_string(),
        before: before.cloned(),
        after: after.cloned(),
        forces_replace: schema.is_some_and(|schema| schema.forces_replace(name)),
        sensitive,
    }
}

/// What changed outside stackctl: attributes present on both sides that differ, and
/// attributes the resource leaves unset (meaning the provider's default, see
/// [`KindSchema::unset_means_default`]) that now have a live value — a command added by
/// hand to a service that declares none, say.
pub fn drifted(
    recorded: &Attributes,
    live: &Attributes,
    schema: Option<&KindSchema>,
) -> Vec<String> {
    live.iter()
        .filter(|(name, value)| match recorded.get(*name) {
            Some(recorded) => recorded != *value,
            None => schema.is_some_and(|schema| schema.unset_means_default(name)),
        })
        .map(|(name, _)| name.clone())
        .collect()
}
