//! Finding stackctl's objects again: every network, volume, image and container carries
//! the labels `stackctl.stack`, `stackctl.resource` and `stackctl.hash`, so refresh and
//! clean-up find them by label and never touch anything else. A container is also known
//! by its names, for a service whose container was replaced by hand.

use serde_json::Value as Json;
use stackctl_provider::Address;

use crate::api::{self, Labels};
use crate::provider::DockerProvider;

impl DockerProvider {
    pub(crate) fn labels(&self, address: &Address, hash: &str) -> Labels {
        Labels {
            stack: self.stack.clone(),
            resource: address.to_string(),
            hash: hash.to_string(),
        }
    }
}

pub(crate) fn label<'a>(object: &'a Json, name: &str) -> Option<&'a str> {
    object["Labels"][name].as_str()
}

/// Which resource a container belongs to, when it is this stack's.
pub(crate) fn container_resource(container: &Json, stack: &str) -> Option<String> {
    if label(container, api::LABEL_STACK) == Some(stack) {
        label(container, api::LABEL_RESOURCE).map(str::to_string)
    } else {
        None
    }
}

pub(crate) fn container_names(container: &Json) -> Vec<String> {
    container["Names"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|name| name.as_str())
        .map(|name| name.trim_start_matches('/').to_string())
        .collect()
}
