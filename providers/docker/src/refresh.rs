//! Refresh: what is live on the host, read in a constant number of round trips.
//!
//! One stream, two pipelined batches: first the three lists (every container, the
//! stack's networks, the stack's volumes), then one inspect per chosen container and per
//! image of interest. Each live object is described with the attributes of the same
//! shape as desired ones, so the planner compares like with like.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;
use stackctl_provider::{Address, Attributes, LiveResource, ProviderError, ReadRequest, Value};

use crate::api;
use crate::attributes::{image_reference, text_attribute};
use crate::backend_file::BACKEND_FILE;
use crate::image::{repo_digest, PullPolicy};
use crate::labels::{container_names, container_resource, label};
use crate::provider::DockerProvider;
use crate::provider_error::{failed, from_client};
use crate::spec::{live_service_attributes, RouteBackend};
use crate::swarm_service::SWARM_SERVICE;

/// Backend files read by a refresh, by the address of their service (`None`: no file).
pub(crate) type BackendFilesRead = BTreeMap<Address, Option<Vec<u8>>>;

impl DockerProvider {
    /// Every live object of the stack: containers, networks, volumes and images in two
    /// round trips, and beside them the stack's files with the host's record of the
    /// stack's owner (over SSH one command, which overlaps the Docker reads instead of
    /// following them).
    /// Returns the live objects, and the backend files of the routed swarm services (by
    /// address; `None`: no file), which the swarm services read beside this compare.
    pub(crate) async fn refresh(
        &self,
        request: &ReadRequest,
    ) -> Result<(Vec<LiveResource>, BackendFilesRead), ProviderError> {
        // The edge's backend file of each routed service (a swarm service's too): read
        // with the stack's files. Where it is comes from the recorded (else desired)
        // service, as live does.
        let routed = |kind: &str| kind == "service" || kind == SWARM_SERVICE;
        let mut backend_files: BTreeMap<Address, String> = BTreeMap::new();
        for resource in &request.desired {
            if routed(resource.address.kind()) {
                if let Ok(Some(backend)) =
                    RouteBackend::from_attributes(resource.address.name(), &resource.attributes)
                {
                    backend_files.insert(resource.address.clone(), backend.file);
                }
            }
        }
        for recorded in &request.recorded {
            if routed(recorded.address.kind()) {
                match RouteBackend::from_attributes(recorded.address.name(), &recorded.attributes) {
                    Ok(Some(backend)) => {
                        backend_files.insert(recorded.address.clone(), backend.file);
                    }
                    _ => {
                        backend_files.remove(&recorded.address);
                    }
                }
            }
        }
        // Files: recorded attributes win (live is compared with what the last apply left).
        let mut files: BTreeMap<Address, Attributes> = BTreeMap::new();
        for resource in request
            .desired
            .iter()
            .filter(|resource| resource.address.kind() == "file")
        {
            files.insert(resource.address.clone(), resource.attributes.clone());
        }
        for recorded in request
            .recorded
            .iter()
            .filter(|recorded| recorded.address.kind() == "file")
        {
            files.insert(recorded.address.clone(), recorded.attributes.clone());
        }
        // One read for every file, the stack's and the backend files, and in it the
        // host's record of which state deployed the stack (the plan's owner check).
        let files: Vec<(Address, Attributes)> = files.into_iter().collect();
        let mut paths = crate::files::paths(&files);
        paths.extend(backend_files.values().cloned());
        let read_files = async {
            let client = self.client(self.recorded_droplet_ip(request)).await?;
            self.connector
                .read_files_noting_owner(client.host().as_ref(), &request.stack, &paths)
                .await
                .map_err(|error| failed(format!("cannot read the stack's files: {error}"), None))
        };
        let (live, contents) = tokio::join!(self.read_live(request), read_files);
        let (mut live, mut contents) = (live?, contents?);
        let mut backend_contents: BackendFilesRead = backend_files
            .keys()
            .cloned()
            .zip(contents.split_off(files.len()))
            .collect();
        for resource in &mut live {
            let Some(content) = backend_contents.get(&resource.address) else {
                continue;
            };
            if resource.address.kind() != "service" {
                continue;
            }
            // What the edge loads for this service: a file edited or removed by hand is
            // drift of `backend_file`, which an update in place rewrites.
            let value = content
                .as_ref()
                .map(|bytes| Value::Text(String::from_utf8_lossy(bytes).into_owned()))
                .unwrap_or(Value::Null);
            resource.attributes.insert(BACKEND_FILE.into(), value);
        }
        live.extend(crate::files::described(&files, contents, &request.salt));
        backend_contents.retain(|address, _| address.kind() == SWARM_SERVICE);
        Ok((live, backend_contents))
    }

    /// The target droplet's address as recorded (the engine passes the droplet's record
    /// along with this provider's own), when the target is a droplet.
    pub(crate) fn recorded_droplet_ip(&self, request: &ReadRequest) -> Option<String> {
        request.droplet_address(self.droplet_name()?)
    }

    async fn read_live(&self, request: &ReadRequest) -> Result<Vec<LiveResource>, ProviderError> {
        let client = self.client(self.recorded_droplet_ip(request)).await?;
        let stack = request.stack.as_str();

        // What state and stack.toml say, by address: the reference for each live shape.
        let mut references: BTreeMap<Address, Attributes> = BTreeMap::new();
        for resource in &request.desired {
            references.insert(resource.address.clone(), resource.attributes.clone());
        }
        for recorded in &request.recorded {
            // Recorded wins: live is compared with what the last apply left.
            references.insert(recorded.address.clone(), recorded.attributes.clone());
        }
        let recorded_ids: BTreeMap<&Address, &str> = request
            .recorded
            .iter()
            .filter_map(|recorded| recorded.id.as_deref().map(|id| (&recorded.address, id)))
            .collect();
        let mut service_by_container_name: BTreeMap<String, Address> = BTreeMap::new();
        for (address, attributes) in &references {
            if address.kind() == "service" {
                if let Some(name) = text_attribute(attributes, "container_name") {
                    service_by_container_name.insert(name.to_string(), address.clone());
                }
            }
        }

        let mut connection = client.connect().await.map_err(from_client)?;
        tracing::debug!("docker stream open");
        // Round trip 1: the lists.
        let lists = connection
            .batch(&[
                api::list_all_containers(),
                api::list_networks(stack),
                api::list_volumes(stack),
            ])
            .await
            .map_err(from_client)?;
        let mut parsed = Vec::new();
        for (response, what) in lists.into_iter().zip(["containers", "networks", "volumes"]) {
            let response = api::check("GET", what, response).map_err(from_client)?;
            parsed.push(
                response
                    .json()
                    .map_err(|error| failed(error.to_string(), None))?,
            );
        }
        let (containers, networks, volumes) = (&parsed[0], &parsed[1], &parsed[2]);
        tracing::debug!("docker lists read");

        // Which containers matter: this stack's, and any holding a service's name.
        let mut candidates: BTreeMap<Address, Vec<&Json>> = BTreeMap::new();
        for container in containers.as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let address = container_resource(container, stack)
                .and_then(|text| Address::parse(&text).ok())
                .or_else(|| {
                    container_names(container)
                        .iter()
                        .find_map(|name| service_by_container_name.get(name).cloned())
                });
            // A release task's container lives only while the task runs (or after a
            // crash, until the next run removes it): it is never a service.
            if let Some(address) = address.filter(|address| address.kind() != "release") {
                candidates.entry(address).or_default().push(container);
            }
        }
        // One container per service: the recorded one, else the newest running one.
        let mut chosen: Vec<(Address, String, String)> = Vec::new();
        for (address, containers) in &candidates {
            let recorded = recorded_ids.get(address).copied();
            let pick = containers
                .iter()
                .find(|container| Some(container["Id"].as_str().unwrap_or("")) == recorded)
                .or_else(|| {
                    containers
                        .iter()
                        .filter(|container| container["State"] == "running")
                        .max_by_key(|container| container["Created"].as_i64().unwrap_or(0))
                })
                .or_else(|| {
                    containers
                        .iter()
                        .max_by_key(|container| container["Created"].as_i64().unwrap_or(0))
                });
            if let Some(container) = pick {
                let id = container["Id"].as_str().unwrap_or("").to_string();
                let image = container["Image"].as_str().unwrap_or("").to_string();
                chosen.push((address.clone(), id, image));
            }
        }
        let mut images: BTreeSet<String> =
            chosen.iter().map(|(_, _, image)| image.clone()).collect();
        for (address, attributes) in &references {
            if address.kind() == "image" {
                if let Some(reference) = image_reference(attributes) {
                    images.insert(reference.to_string());
                }
            }
        }
        images.remove("");
        let images: Vec<String> = images.into_iter().collect();

        // Images that follow their registry (`pull = "always"`): the registry's digest is
        // asked in the same round trip, with the user's credentials for it.
        let mut followed: Vec<String> = request
            .desired
            .iter()
            .filter(|resource| resource.address.kind() == "image")
            .filter(|resource| {
                PullPolicy::of(resource.attributes.get("pull")) == PullPolicy::Always
            })
            .filter_map(|resource| text_attribute(&resource.attributes, "reference"))
            .map(str::to_string)
            .collect();
        followed.sort();
        followed.dedup();
        let mut digest_questions = Vec::new();
        for reference in &followed {
            let auth = self.registry_auth(reference).await?;
            digest_questions.push(api::registry_digest(reference).registry_auth(auth));
        }

        // Round trip 2: every inspect (and registry digest) at once.
        let mut inspects: Vec<_> = chosen
            .iter()
            .map(|(_, id, _)| api::inspect_container(id))
            .collect();
        inspects.extend(images.iter().map(|image| api::inspect_image(image)));
        inspects.extend(digest_questions);
        let mut answers = connection.batch(&inspects).await.map_err(from_client)?;
        tracing::debug!(inspects = inspects.len(), "docker inspects read");
        let digest_answers = answers.split_off(chosen.len() + images.len());
        let (registry_digests, unanswered) = registry_digests(&followed, &digest_answers);
        // The plan then compares with the image on the host: say so, since a tag that moved
        // in the registry would not show.
        for (reference, reason) in unanswered {
            tracing::warn!(
                "cannot ask the registry for the digest of `{reference}` (`pull = \"always\"`): {reason}; the plan compares with the image on the host, so a tag that moved in the registry does not show"
            );
        }
        let (container_answers, image_answers) = answers.split_at(chosen.len());
        let image_details: BTreeMap<&str, Json> = images
            .iter()
            .zip(image_answers)
            .filter(|(_, response)| response.is_success())
            .filter_map(|(image, response)| response.json().ok().map(|json| (image.as_str(), json)))
            .collect();

        let mut live = Vec::new();
        for ((address, id, image), response) in chosen.iter().zip(container_answers) {
            if !response.is_success() {
                // Removed between the list and the inspect: absent.
                continue;
            }
            let inspect = response
                .json()
                .map_err(|error| failed(error.to_string(), None))?;
            let image_config = image_details
                .get(image.as_str())
                .map(|details| &details["Config"])
                .unwrap_or(&Json::Null);
            let attributes = live_service_attributes(
                &inspect,
                image_config,
                references.get(address),
                &request.salt,
            );
            live.push(LiveResource {
                address: address.clone(),
                id: Some(id.clone()),
                attributes,
                owned: label(&inspect["Config"], api::LABEL_STACK) == Some(stack),
            });
        }
        for network in networks.as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let Some(address) =
                container_resource(network, stack).and_then(|text| Address::parse(&text).ok())
            else {
                continue;
            };
            let mut attributes = references.get(&address).cloned().unwrap_or_default();
            attributes.insert(
                "name".into(),
                Value::text(network["Name"].as_str().unwrap_or("")),
            );
            attributes.insert(
                "internal".into(),
                Value::Bool(network["Internal"].as_bool().unwrap_or(false)),
            );
            // Only a swarm's networks say how they are made (overlay, attachable): a
            // single host's keep the attributes they always had.
            if attributes.contains_key("driver") {
                attributes.insert(
                    "driver".into(),
                    Value::text(network["Driver"].as_str().unwrap_or("")),
                );
            }
            if attributes.contains_key("attachable") {
                attributes.insert(
                    "attachable".into(),
                    Value::Bool(network["Attachable"].as_bool().unwrap_or(false)),
                );
            }
            live.push(LiveResource {
                address,
                id: network["Id"].as_str().map(str::to_string),
                attributes,
                owned: true,
            });
        }
        for volume in volumes["Volumes"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let Some(address) =
                container_resource(volume, stack).and_then(|text| Address::parse(&text).ok())
            else {
                continue;
            };
            let name = volume["Name"].as_str().unwrap_or("").to_string();
            let mut attributes = references.get(&address).cloned().unwrap_or_default();
            attributes.insert("name".into(), Value::text(name.clone()));
            live.push(LiveResource {
                address,
                id: Some(name),
                attributes,
                owned: true,
            });
        }
        for (address, attributes) in &references {
            if address.kind() != "image" {
                continue;
            }
            let Some(details) =
                image_reference(attributes).and_then(|reference| image_details.get(reference))
            else {
                continue;
            };
            let mut attributes = attributes.clone();
            let image_id = details["Id"].as_str().unwrap_or("").to_string();
            attributes.insert("image_id".into(), Value::text(image_id.clone()));
            if let Some(reference) = text_attribute(&attributes, "reference") {
                // What the image is now: the registry's digest for an image that follows
                // it (so a moved tag shows, to be pulled), else the one pulled here.
                let digest = match registry_digests.get(reference) {
                    Some(digest) => Value::text(digest.clone()),
                    None => repo_digest(details),
                };
                attributes.insert("digest".into(), digest);
            }
            let built_from = label(&details["Config"], api::LABEL_CONTEXT_HASH);
            if attributes.contains_key("context_hash") {
                attributes.insert(
                    "context_hash".into(),
                    built_from.map(Value::text).unwrap_or(Value::Null),
                );
            }
            if attributes.contains_key("build_args") {
                let built_with = label(&details["Config"], api::LABEL_BUILD_ARGS)
                    .and_then(|json| serde_json::from_str::<Json>(json).ok());
                attributes.insert(
                    "build_args".into(),
                    built_with
                        .as_ref()
                        .map(Value::from_json)
                        .unwrap_or(Value::Null),
                );
            }
            // A referenced image (`image = "postgres:16"`) is shared, never this stack's
            // alone: finding it present is what stackctl wants, so it is adopted as is.
            let referenced = !attributes.contains_key("tag");
            live.push(LiveResource {
                address: address.clone(),
                id: Some(image_id),
                attributes,
                owned: referenced || label(&details["Config"], api::LABEL_STACK) == Some(stack),
            });
        }
        // A release task leaves nothing on the host once it ran: what it last ran for is
        // what state recorded, so it is found as recorded (and runs again only when
        // stack.toml changes what it runs with).
        for recorded in &request.recorded {
            if recorded.address.kind() == "release" {
                live.push(LiveResource {
                    address: recorded.address.clone(),
                    id: None,
                    attributes: recorded.attributes.clone(),
                    owned: true,
                });
            }
        }
        live.sort_by(|left, right| left.address.cmp(&right.address));
        Ok(live)
    }
}

/// The registry's digest of each followed reference whose question was answered, and for
/// the others why not (the daemon's error: registry unreachable, credentials refused, …).
fn registry_digests<'a>(
    followed: &'a [String],
    answers: &[crate::http::Response],
) -> (BTreeMap<&'a str, String>, Vec<(&'a str, String)>) {
    let mut digests = BTreeMap::new();
    let mut unanswered = Vec::new();
    for (reference, response) in followed.iter().zip(answers) {
        let digest = response
            .json()
            .ok()
            .filter(|_| response.is_success())
            .and_then(|json| json["Descriptor"]["digest"].as_str().map(str::to_string));
        match digest {
            Some(digest) => {
                digests.insert(reference.as_str(), digest);
            }
            None if response.is_success() => {
                unanswered.push((reference.as_str(), "the answer names no digest".to_string()))
            }
            None => unanswered.push((
                reference.as_str(),
                format!(
                    "the daemon answered {}: {}",
                    response.status,
                    response.error_message()
                ),
            )),
        }
    }
    (digests, unanswered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_digest_that_cannot_be_read_is_named_with_the_daemons_reason() {
        let followed = vec![
            "ghcr.io/acme/api:1".to_string(),
            "ghcr.io/acme/web:2".to_string(),
        ];
        let answers = [
            crate::http::Response {
                status: 200,
                body: br#"{"Descriptor":{"digest":"sha256:abc"}}"#.to_vec(),
            },
            crate::http::Response {
                status: 500,
                body: br#"{"message":"Get https://ghcr.io/v2/: dial tcp: lookup ghcr.io: no such host"}"#.to_vec(),
            },
        ];
        let (digests, unanswered) = registry_digests(&followed, &answers);
        assert_eq!(
            digests.get("ghcr.io/acme/api:1").map(String::as_str),
            Some("sha256:abc")
        );
        assert_eq!(unanswered.len(), 1);
        assert_eq!(unanswered[0].0, "ghcr.io/acme/web:2");
        assert!(
            unanswered[0].1.contains("500") && unanswered[0].1.contains("no such host"),
            "{unanswered:?}"
        );
    }
}
