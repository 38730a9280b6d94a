//! Small readers of a resource's attributes and the writer of its record, shared by every
//! kind the provider applies.

use stackctl_provider::{Action, Attributes, ProviderError, RecordedResource, Resource, Value};

use crate::provider_error::failed;

pub(crate) fn text_attribute<'a>(attributes: &'a Attributes, name: &str) -> Option<&'a str> {
    attributes.get(name).and_then(Value::as_text)
}

/// The image reference a resource names: the build tag or the reference.
pub(crate) fn image_reference(attributes: &Attributes) -> Option<&str> {
    text_attribute(attributes, "tag").or_else(|| text_attribute(attributes, "reference"))
}

pub(crate) fn desired_of(action: &Action) -> Result<&Resource, ProviderError> {
    action.desired.as_ref().ok_or_else(|| {
        failed(
            format!("`{}`: the action has no desired resource", action.address),
            None,
        )
    })
}

pub(crate) fn recorded_with(
    desired: &Resource,
    id: Option<String>,
    extra: &[(&str, Value)],
) -> RecordedResource {
    let mut recorded = RecordedResource::from_desired(desired, id);
    for (name, value) in extra {
        recorded
            .attributes
            .insert((*name).to_string(), value.clone());
    }
    recorded
}
