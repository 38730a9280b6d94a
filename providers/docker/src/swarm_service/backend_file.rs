//! The edge's backend file of a routed swarm service, read back: a hand edit is drift.
//!
//! The file lists the overlay addresses of the service's running tasks (`apply.rs` writes
//! it after every create, update and switch, and records what it wrote as the computed
//! attribute `backend_file`). Refresh reads the live file with the stack's other files
//! (`refresh.rs` at the crate's root, the same single read) and compares it with what
//! stackctl would write for the tasks running now:
//!
//! - the tasks did not move (what stackctl would write now is what it recorded): the live
//!   file is shown as it is, so a file edited or removed by hand drifts from the recorded
//!   one, with a diff line by line, and an update rewrites it;
//! - the tasks moved (Swarm rescheduled one): `backend_servers` already drifts and the
//!   repair rewrites the file for the tasks running then, so the file is shown as
//!   recorded — showing the recorded content as what apply puts back would be a lie, as
//!   apply writes the new addresses.

use std::collections::BTreeMap;

use stackctl_provider::{Address, LiveResource, ReadRequest, Value};

use super::live::BACKEND_SERVERS;
use super::SWARM_SERVICE;
use crate::backend_file::BACKEND_FILE;
use crate::provider::DockerProvider;
use crate::spec::RouteBackend;
use crate::swap::backend_servers_contents;

/// Pure: the live value of `backend_file`, from the file `found` on the host (`None`: no
/// file), what stackctl would write for the tasks running now, and what it recorded
/// (see the module's essay). `None`: nothing to compare with (an older state recorded no
/// content), so no attribute.
pub fn live_backend_file(
    found: Option<&[u8]>,
    expected_now: &str,
    recorded: Option<&Value>,
) -> Option<Value> {
    match recorded {
        Some(Value::Text(recorded)) if recorded == expected_now => Some(match found {
            Some(bytes) => Value::Text(String::from_utf8_lossy(bytes).into_owned()),
            None => Value::Null,
        }),
        other => other.cloned(),
    }
}

impl DockerProvider {
    /// Puts `backend_file` into each live routed swarm service, from the backend files
    /// refresh read (`found`: by address, `None` when the file is missing).
    pub(crate) fn compare_swarm_backend_files(
        &self,
        live: &mut [LiveResource],
        found: &BTreeMap<Address, Option<Vec<u8>>>,
        request: &ReadRequest,
    ) {
        let Some(formats) = self.options.edge_formats.as_ref() else {
            return;
        };
        for resource in live
            .iter_mut()
            .filter(|resource| resource.address.kind() == SWARM_SERVICE)
        {
            let Some(content) = found.get(&resource.address) else {
                continue;
            };
            let Ok(Some(backend)) =
                RouteBackend::from_attributes(resource.address.name(), &resource.attributes)
            else {
                continue;
            };
            let servers: Vec<String> = resource
                .attributes
                .get(BACKEND_SERVERS)
                .and_then(Value::as_list)
                .unwrap_or(&[])
                .iter()
                .filter_map(Value::as_text)
                .map(str::to_string)
                .collect();
            let expected_now = backend_servers_contents(formats.as_ref(), &backend, &servers);
            let recorded = request
                .recorded
                .iter()
                .find(|recorded| recorded.address == resource.address)
                .and_then(|recorded| recorded.attributes.get(BACKEND_FILE));
            match live_backend_file(content.as_deref(), &expected_now, recorded) {
                Some(value) => {
                    resource.attributes.insert(BACKEND_FILE.into(), value);
                }
                None => {
                    resource.attributes.remove(BACKEND_FILE);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRITTEN: &str = "http:\n  services:\n    web:\n      loadBalancer:\n        servers:\n          - url: http://10.0.1.5:8080\n";

    #[test]
    fn a_file_edited_or_removed_by_hand_shows_as_it_is_on_the_host() {
        let recorded = Value::text(WRITTEN);
        let edited = WRITTEN.replace("10.0.1.5", "10.0.1.99");
        assert_eq!(
            live_backend_file(Some(edited.as_bytes()), WRITTEN, Some(&recorded)),
            Some(Value::text(edited.clone()))
        );
        assert_eq!(
            live_backend_file(None, WRITTEN, Some(&recorded)),
            Some(Value::Null)
        );
        // Untouched: the same as recorded, no drift.
        assert_eq!(
            live_backend_file(Some(WRITTEN.as_bytes()), WRITTEN, Some(&recorded)),
            Some(recorded.clone())
        );
    }

    #[test]
    fn after_swarm_moved_a_task_the_file_is_shown_as_recorded_since_apply_writes_the_new_one() {
        let recorded = Value::text(WRITTEN);
        let moved = WRITTEN.replace("10.0.1.5", "10.0.1.7");
        let edited = WRITTEN.replace("10.0.1.5", "10.0.1.99");
        assert_eq!(
            live_backend_file(Some(edited.as_bytes()), &moved, Some(&recorded)),
            Some(recorded.clone())
        );
        assert_eq!(
            live_backend_file(Some(edited.as_bytes()), &moved, None),
            None
        );
    }
}
