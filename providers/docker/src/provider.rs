//! [`DockerProvider`]: the Provider trait for `network`, `volume`, `image` and `service`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{json, Value as Json};
use stackctl_host::{HostConnector, HostError, Target};
use stackctl_provider::{
    Action, ActionKind, Address, ApplyContext, ApplyOutcome, AttributeSchema, Attributes,
    KindSchema, LiveResource, Provider, ProviderError, ReadRequest, RecordedResource, ReplaceOrder,
    Resource, Value,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::api::{self, ClientCounters, ClientError, DockerClient, Labels};
use crate::http::{demultiplex_logs, Response};
use crate::spec::{live_service_attributes, ServiceSpec};

/// Timings and places the engine may change; the defaults suit production.
#[derive(Clone, Debug)]
pub struct DockerOptions {
    /// The stack's directory on the host (`[target].root`); the lock lives in it.
    pub root: Option<String>,
    /// The directory of stack.toml on this machine: relative build contexts start there.
    pub build_directory: Option<std::path::PathBuf>,
    /// How long the old container of a routed service keeps serving after the switch.
    pub drain: Duration,
    /// How long a swap waits after rewriting a backend file when Traefik cannot be asked
    /// (no edge container found, or none of its addresses answers from the host).
    pub settle: Duration,
    /// How long Traefik may take to report the new backend before the swap goes on.
    pub edge_wait: Duration,
    /// The port of Traefik's `traefik` entry point (ping and API) inside the edge
    /// container: `lower.rs` always renders it there, published on the host or not.
    pub edge_admin_port: u16,
    /// SIGTERM grace when stopping a container.
    pub stop_grace_seconds: u32,
    /// How many log lines a failure carries.
    pub log_lines: u32,
    pub poll_interval: Duration,
}

impl Default for DockerOptions {
    fn default() -> Self {
        DockerOptions {
            root: None,
            build_directory: None,
            drain: Duration::from_secs(3),
            settle: Duration::from_millis(1500),
            edge_wait: Duration::from_secs(10),
            edge_admin_port: 8080,
            stop_grace_seconds: 10,
            log_lines: 30,
            poll_interval: Duration::from_millis(200),
        }
    }
}

/// The docker provider of one stack on one host.
pub struct DockerProvider {
    connector: Arc<HostConnector>,
    stack: String,
    options: DockerOptions,
    client: Mutex<Option<DockerClient>>,
}

const SERVICE_FORCES_REPLACE: &[&str] = &[
    "container_name",
    "image",
    "command",
    "entrypoint",
    "env",
    "networks",
    "volumes",
    "user",
    "read_only",
    "health",
    "ports",
    "port",
    "route_backend",
    "stateful",
    // The hash of the edge's static Traefik file: Traefik reads it only at start.
    "config_hash",
];

/// The edge's resource address: `lower.rs` lowers `[edge]` to this Traefik container.
const EDGE_RESOURCE: &str = "service.edge";

/// How long one question to Traefik's API may take. A container address that drops
/// packets (an `internal` network) would otherwise hold a swap until the kernel gives up.
const EDGE_ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

fn failed(message: impl Into<String>, detail: Option<String>) -> ProviderError {
    ProviderError::Failed {
        message: message.into(),
        detail,
        hint: None,
    }
}

fn from_client(error: ClientError) -> ProviderError {
    match error {
        ClientError::Host(HostError::Unreachable { target, cause }) => {
            ProviderError::Unreachable { target, cause }
        }
        other => failed(other.to_string(), None),
    }
}

fn from_host(error: HostError) -> ProviderError {
    from_client(ClientError::Host(error))
}

impl DockerProvider {
    pub fn new(connector: Arc<HostConnector>, stack: impl Into<String>) -> Self {
        DockerProvider::with_options(connector, stack, DockerOptions::default())
    }

    pub fn with_options(
        connector: Arc<HostConnector>,
        stack: impl Into<String>,
        options: DockerOptions,
    ) -> Self {
        DockerProvider {
            connector,
            stack: stack.into(),
            options,
            client: Mutex::new(None),
        }
    }

    /// `<root>`: `[target].root`, default `/var/lib/stackctl/<stack>`.
    pub fn root(&self) -> String {
        self.options
            .root
            .clone()
            .unwrap_or_else(|| format!("/var/lib/stackctl/{}", self.stack))
    }

    /// Requests, round trips and streams spent so far (for tests and the run log).
    pub async fn client_counters(&self) -> ClientCounters {
        match &*self.client.lock().await {
            Some(client) => client.counters(),
            None => ClientCounters::default(),
        }
    }

    fn droplet_address(&self) -> Option<Address> {
        match self.connector.target() {
            Target::Droplet { droplet, .. } => Some(Address::new("droplet", droplet.clone())),
            _ => None,
        }
    }

    async fn client(&self, droplet_ip: Option<String>) -> Result<DockerClient, ProviderError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = &*slot {
            return Ok(client.clone());
        }
        let host = self
            .connector
            .connect(droplet_ip.as_deref())
            .await
            .map_err(from_host)?;
        let client = DockerClient::new(host);
        *slot = Some(client.clone());
        Ok(client)
    }

    async fn client_for_apply(
        &self,
        context: &ApplyContext,
    ) -> Result<DockerClient, ProviderError> {
        let ip = self
            .droplet_address()
            .and_then(|droplet| context.recorded_attribute(&droplet, "ipv4"))
            .and_then(|value| value.as_text().map(str::to_string));
        self.client(ip).await
    }

    /// The live containers of the stack as JSON, for the run folder.
    pub async fn container_list(&self) -> Result<Json, ProviderError> {
        let client = self.client(None).await?;
        let list = client
            .send_json(api::list_containers(&self.stack, None))
            .await
            .map_err(from_client)?;
        Ok(container_list_evidence(&list))
    }

    fn labels(&self, address: &Address, hash: &str) -> Labels {
        Labels {
            stack: self.stack.clone(),
            resource: address.to_string(),
            hash: hash.to_string(),
        }
    }
}

/// Turns `GET /containers/json` into the run folder's container list: one entry per
/// container, sorted by name, with the fields an operator looks at.
pub fn container_list_evidence(list: &Json) -> Json {
    let mut entries: Vec<Json> = list
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|container| {
            let name = container["Names"][0]
                .as_str()
                .unwrap_or("")
                .trim_start_matches('/');
            let ports: Vec<String> = container["Ports"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .filter(|port| port.get("PublicPort").is_some())
                .map(|port| {
                    format!(
                        "{}:{}->{}/{}",
                        port["IP"].as_str().unwrap_or(""),
                        port["PublicPort"],
                        port["PrivatePort"],
                        port["Type"].as_str().unwrap_or("tcp")
                    )
                })
                .collect();
            json!({
                "name": name,
                "id": container["Id"].as_str().unwrap_or("").chars().take(12).collect::<String>(),
                "image": container["Image"],
                "state": container["State"],
                "status": container["Status"],
                "resource": container["Labels"][api::LABEL_RESOURCE],
                "hash": container["Labels"][api::LABEL_HASH],
                "published_ports": ports,
            })
        })
        .collect();
    entries.sort_by(|left, right| left["name"].as_str().cmp(&right["name"].as_str()));
    Json::Array(entries)
}

// ---- small helpers over JSON -----------------------------------------------------------

fn label<'a>(object: &'a Json, name: &str) -> Option<&'a str> {
    object["Labels"][name].as_str()
}

fn text_attribute<'a>(attributes: &'a Attributes, name: &str) -> Option<&'a str> {
    attributes.get(name).and_then(Value::as_text)
}

fn short_hash(hash: &str) -> String {
    hash.trim_start_matches("sha256:").chars().take(8).collect()
}

/// Which resource a container belongs to, when it is this stack's.
fn container_resource(container: &Json, stack: &str) -> Option<String> {
    if label(container, api::LABEL_STACK) == Some(stack) {
        label(container, api::LABEL_RESOURCE).map(str::to_string)
    } else {
        None
    }
}

fn container_names(container: &Json) -> Vec<String> {
    container["Names"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|name| name.as_str())
        .map(|name| name.trim_start_matches('/').to_string())
        .collect()
}

/// The image reference a resource names: the build tag or the reference.
fn image_reference(attributes: &Attributes) -> Option<&str> {
    text_attribute(attributes, "tag").or_else(|| text_attribute(attributes, "reference"))
}

// ---- read ------------------------------------------------------------------------------

impl DockerProvider {
    /// The target droplet's address as recorded (the engine passes the droplet's record
    /// along with this provider's own), when the target is a droplet.
    fn recorded_droplet_ip(&self, request: &ReadRequest) -> Option<String> {
        let droplet = self.droplet_address()?;
        let recorded = request
            .recorded
            .iter()
            .find(|recorded| recorded.address == droplet)?;
        text_attribute(&recorded.attributes, "ipv4").map(str::to_string)
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
            parsed.push(response.json().map_err(|message| failed(message, None))?);
        }
        let (containers, networks, volumes) = (&parsed[0], &parsed[1], &parsed[2]);

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
            if let Some(address) = address {
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

        // Round trip 2: every inspect at once.
        let mut inspects: Vec<_> = chosen
            .iter()
            .map(|(_, id, _)| api::inspect_container(id))
            .collect();
        inspects.extend(images.iter().map(|image| api::inspect_image(image)));
        let answers = connection.batch(&inspects).await.map_err(from_client)?;
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
            let inspect = response.json().map_err(|message| failed(message, None))?;
            let image_env: Vec<String> = image_details
                .get(image.as_str())
                .and_then(|details| details["Config"]["Env"].as_array())
                .map(|env| {
                    env.iter()
                        .filter_map(|item| item.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let attributes = live_service_attributes(
                &inspect,
                &image_env,
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
            let built_from = label(&details["Config"], api::LABEL_CONTEXT_HASH);
            if attributes.contains_key("context_hash") {
                attributes.insert(
                    "context_hash".into(),
                    built_from.map(Value::text).unwrap_or(Value::Null),
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
        live.sort_by(|left, right| left.address.cmp(&right.address));
        Ok(live)
    }
}

// ---- apply: networks, volumes, images ------------------------------------------------------

fn desired_of(action: &Action) -> Result<&Resource, ProviderError> {
    action.desired.as_ref().ok_or_else(|| {
        failed(
            format!("`{}`: the action has no desired resource", action.address),
            None,
        )
    })
}

fn recorded_with(
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

impl DockerProvider {
    async fn apply_network(
        &self,
        client: &DockerClient,
        action: &Action,
    ) -> Result<ApplyOutcome, ProviderError> {
        let prior_name = action
            .prior
            .as_ref()
            .and_then(|prior| text_attribute(&prior.attributes, "name").map(str::to_string));
        if action.kind.destroys() {
            if let Some(name) = &prior_name {
                self.remove_network(client, name).await?;
            }
            if action.kind == ActionKind::Delete {
                return Ok(ApplyOutcome::Deleted);
            }
        }
        let desired = desired_of(action)?;
        let name = text_attribute(&desired.attributes, "name")
            .ok_or_else(|| failed(format!("`{}` has no `name`", action.address), None))?;
        let internal = desired
            .attributes
            .get("internal")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let labels = self.labels(&action.address, &desired.hash());
        let response = client
            .send_raw(api::create_network(name, internal, &labels))
            .await
            .map_err(from_client)?;
        let id = if response.is_success() {
            response
                .json()
                .ok()
                .and_then(|json| json["Id"].as_str().map(str::to_string))
        } else if response.status == 409 {
            // Already there: fine if it is ours (an adopt or a retried apply).
            let existing = client
                .send_json(api::inspect_network(name))
                .await
                .map_err(from_client)?;
            if label(&existing, api::LABEL_STACK) != Some(self.stack.as_str()) {
                return Err(failed(
                    format!(
                        "a network named `{name}` exists on the host and is not stack `{}`'s",
                        self.stack
                    ),
                    Some("remove it, or rename the network in stack.toml".into()),
                ));
            }
            existing["Id"].as_str().map(str::to_string)
        } else {
            return Err(failed(
                format!(
                    "cannot create network `{name}`: {}",
                    response.error_message()
                ),
                None,
            ));
        };
        Ok(ApplyOutcome::Recorded(recorded_with(desired, id, &[])))
    }

    async fn remove_network(&self, client: &DockerClient, name: &str) -> Result<(), ProviderError> {
        let response = client
            .send_raw(api::remove_network(name))
            .await
            .map_err(from_client)?;
        if response.is_success() || response.status == 404 {
            Ok(())
        } else {
            Err(failed(
                format!(
                    "cannot remove network `{name}`: {}",
                    response.error_message()
                ),
                None,
            ))
        }
    }

    async fn apply_volume(
        &self,
        client: &DockerClient,
        action: &Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        if action.kind.destroys() {
            let prior_name = action
                .prior
                .as_ref()
                .and_then(|prior| text_attribute(&prior.attributes, "name").map(str::to_string));
            if let Some(name) = prior_name {
                if !context.allow_data_loss {
                    return Err(ProviderError::Failed {
                        message: format!(
                            "refusing to {} `{}`: removing volume `{name}` deletes its data",
                            action.kind.verb(),
                            action.address
                        ),
                        detail: None,
                        hint: Some("pass --allow-data-loss if the data may go".into()),
                    });
                }
                let response = client
                    .send_raw(api::remove_volume(&name))
                    .await
                    .map_err(from_client)?;
                if !response.is_success() && response.status != 404 {
                    return Err(failed(
                        format!(
                            "cannot remove volume `{name}`: {}",
                            response.error_message()
                        ),
                        None,
                    ));
                }
            }
            if action.kind == ActionKind::Delete {
                return Ok(ApplyOutcome::Deleted);
            }
        }
        let desired = desired_of(action)?;
        let name = text_attribute(&desired.attributes, "name")
            .ok_or_else(|| failed(format!("`{}` has no `name`", action.address), None))?;
        let labels = self.labels(&action.address, &desired.hash());
        // Creating an existing volume returns it unchanged: check that it is ours.
        let volume = client
            .send_json(api::create_volume(name, &labels))
            .await
            .map_err(from_client)?;
        if label(&volume, api::LABEL_STACK) != Some(self.stack.as_str()) {
            return Err(failed(
                format!(
                    "a volume named `{name}` exists on the host and is not stack `{}`'s",
                    self.stack
                ),
                Some("stackctl does not take over volumes it did not create".into()),
            ));
        }
        Ok(ApplyOutcome::Recorded(recorded_with(
            desired,
            Some(name.to_string()),
            &[],
        )))
    }

    async fn apply_image(
        &self,
        client: &DockerClient,
        action: &Action,
    ) -> Result<ApplyOutcome, ProviderError> {
        if action.kind == ActionKind::Delete {
            // Built images are this stack's and go; referenced ones may be shared and stay.
            if let Some(prior) = &action.prior {
                if let Some(tag) = text_attribute(&prior.attributes, "tag") {
                    // 404 (already gone) and 409 (still used) are both fine here.
                    let _ = client
                        .send_raw(api::remove_image(tag))
                        .await
                        .map_err(from_client)?;
                }
            }
            return Ok(ApplyOutcome::Deleted);
        }
        let desired = desired_of(action)?;
        let attributes = &desired.attributes;
        let image_id = if let Some(tag) = text_attribute(attributes, "tag") {
            let context_hash = text_attribute(attributes, "context_hash").unwrap_or("");
            let existing = client
                .send_raw(api::inspect_image(tag))
                .await
                .map_err(from_client)?;
            let existing = existing
                .is_success()
                .then(|| existing.json().ok())
                .flatten();
            match existing {
                Some(image)
                    if label(&image["Config"], api::LABEL_CONTEXT_HASH) == Some(context_hash) =>
                {
                    image["Id"].as_str().unwrap_or("").to_string()
                }
                _ => {
                    self.build_image(client, &action.address, desired, tag, context_hash)
                        .await?
                }
            }
        } else if let Some(reference) = text_attribute(attributes, "reference") {
            let existing = client
                .send_raw(api::inspect_image(reference))
                .await
                .map_err(from_client)?;
            if existing.is_success() {
                existing
                    .json()
                    .ok()
                    .and_then(|json| json["Id"].as_str().map(str::to_string))
                    .unwrap_or_default()
            } else if attributes.get("pull").and_then(Value::as_bool) == Some(true) {
                let response = client
                    .with_timeout(Duration::from_secs(30 * 60))
                    .send(api::pull_image(reference))
                    .await
                    .map_err(from_client)?;
                if let Some(error) = stream_error(&response) {
                    return Err(failed(format!("cannot pull `{reference}`: {error}"), None));
                }
                let image = client
                    .send_json(api::inspect_image(reference))
                    .await
                    .map_err(from_client)?;
                image["Id"].as_str().unwrap_or("").to_string()
            } else {
                return Err(ProviderError::Failed {
                    message: format!("image `{reference}` is not on the host and `pull = false`"),
                    detail: None,
                    hint: Some("load or build the image on the host, or set `pull = true`".into()),
                });
            }
        } else {
            return Err(failed(
                format!("`{}` has neither `tag` nor `reference`", action.address),
                None,
            ));
        };
        Ok(ApplyOutcome::Recorded(recorded_with(
            desired,
            Some(image_id.clone()),
            &[("image_id", Value::text(image_id))],
        )))
    }

    async fn build_image(
        &self,
        client: &DockerClient,
        address: &Address,
        desired: &Resource,
        tag: &str,
        context_hash: &str,
    ) -> Result<String, ProviderError> {
        let written = text_attribute(&desired.attributes, "context")
            .ok_or_else(|| failed(format!("`{address}` has no `context`"), None))?;
        // Contexts are recorded relative to the stack file, so moving the checkout does
        // not change hashes; resolve them against the stack's directory here.
        let context = match &self.options.build_directory {
            Some(base) if std::path::Path::new(written).is_relative() => {
                base.join(written).to_string_lossy().to_string()
            }
            _ => written.to_string(),
        };
        let dockerfile = text_attribute(&desired.attributes, "dockerfile")
            .unwrap_or("Dockerfile")
            .to_string();
        let packed_dockerfile = dockerfile.clone();
        let tarball = tokio::task::spawn_blocking(move || {
            api::context_tarball(std::path::Path::new(&context), &packed_dockerfile)
        })
        .await
        .map_err(|error| failed(format!("packing the build context failed: {error}"), None))?
        .map_err(|error| {
            failed(
                format!("cannot pack the build context of `{address}`: {error}"),
                None,
            )
        })?;
        let labels = BTreeMap::from([
            (api::LABEL_STACK.to_string(), self.stack.clone()),
            (api::LABEL_RESOURCE.to_string(), address.to_string()),
            (
                api::LABEL_CONTEXT_HASH.to_string(),
                context_hash.to_string(),
            ),
        ]);
        // Builds may take long; the build's own output is the progress.
        let response = client
            .with_timeout(Duration::from_secs(30 * 60))
            .send(api::build_image(tag, &dockerfile, &labels, tarball))
            .await
            .map_err(from_client)?;
        if let Some(error) = stream_error(&response) {
            return Err(failed(
                format!("building `{tag}` failed: {error}"),
                Some(
                    String::from_utf8_lossy(&response.body)
                        .chars()
                        .rev()
                        .take(4000)
                        .collect::<String>()
                        .chars()
                        .rev()
                        .collect(),
                ),
            ));
        }
        let image = client
            .send_json(api::inspect_image(tag))
            .await
            .map_err(from_client)?;
        Ok(image["Id"].as_str().unwrap_or("").to_string())
    }
}

/// The first `error` in a JSON-lines progress stream (build, pull).
fn stream_error(response: &Response) -> Option<String> {
    String::from_utf8_lossy(&response.body)
        .lines()
        .filter_map(|line| serde_json::from_str::<Json>(line).ok())
        .find_map(|line| line["error"].as_str().map(str::to_string))
}

// ---- apply: services ---------------------------------------------------------------------

/// A container of this service found on the host.
#[derive(Clone, Debug)]
struct Existing {
    id: String,
    name: String,
}

impl DockerProvider {
    /// Every container labelled as this resource of this stack.
    async fn service_containers(
        &self,
        client: &DockerClient,
        address: &Address,
    ) -> Result<Vec<Existing>, ProviderError> {
        let list = client
            .send_json(api::list_containers(
                &self.stack,
                Some(&address.to_string()),
            ))
            .await
            .map_err(from_client)?;
        Ok(list
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|container| Existing {
                id: container["Id"].as_str().unwrap_or("").to_string(),
                name: container_names(container)
                    .into_iter()
                    .next()
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// Creates, connects and starts a container; returns its id.
    async fn create_container(
        &self,
        client: &DockerClient,
        address: &Address,
        spec: &ServiceSpec,
        labels: &Labels,
        name: &str,
    ) -> Result<String, ProviderError> {
        let body = spec
            .create_body(labels)
            .map_err(|message| failed(format!("`{address}`: {message}"), None))?;
        let mut response = client
            .send_raw(api::create_container(name, body.clone()))
            .await
            .map_err(from_client)?;
        if response.status == 409 {
            // The name is taken. A leftover of this very resource (a failed earlier run)
            // may go; anything else is someone's container and stays.
            let existing = client
                .send_json(api::inspect_container(name))
                .await
                .map_err(from_client)?;
            let ours = label(&existing["Config"], api::LABEL_STACK) == Some(self.stack.as_str())
                && label(&existing["Config"], api::LABEL_RESOURCE)
                    == Some(address.to_string().as_str());
            if !ours {
                return Err(ProviderError::Failed {
                    message: format!(
                        "a container named `{name}` exists and is not `{address}` of stack `{}`",
                        self.stack
                    ),
                    detail: None,
                    hint: Some("remove or rename that container, then apply again".into()),
                });
            }
            let id = existing["Id"].as_str().unwrap_or(name).to_string();
            client
                .send(api::remove_container(&id))
                .await
                .map_err(from_client)?;
            response = client
                .send_raw(api::create_container(name, body))
                .await
                .map_err(from_client)?;
        }
        if !response.is_success() {
            return Err(failed(
                format!(
                    "cannot create container `{name}` for `{address}`: {}",
                    response.error_message()
                ),
                None,
            ));
        }
        let id = response
            .json()
            .ok()
            .and_then(|json| json["Id"].as_str().map(str::to_string))
            .ok_or_else(|| failed("Docker did not return the new container's id", None))?;
        for (network, aliases) in spec.networks.iter().skip(1) {
            if let Err(error) = client
                .send(api::connect_network(network, &id, aliases))
                .await
            {
                let _ = client.send_raw(api::remove_container(&id)).await;
                return Err(failed(
                    format!("cannot connect `{name}` to network `{network}`: {error}"),
                    None,
                ));
            }
        }
        if let Err(error) = client.send(api::start_container(&id)).await {
            let evidence = self.failure_evidence(client, &id).await;
            let _ = client.send_raw(api::remove_container(&id)).await;
            return Err(failed(
                format!("cannot start `{name}`: {error}"),
                Some(evidence),
            ));
        }
        Ok(id)
    }

    /// Waits until Docker reports the container healthy (or running, without a health
    /// check). Returns the reason on failure.
    async fn wait_healthy(
        &self,
        client: &DockerClient,
        id: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let inspect = client
                .send_json(api::inspect_container(id))
                .await
                .map_err(|error| error.to_string())?;
            let state = &inspect["State"];
            let status = state["Status"].as_str().unwrap_or("");
            if matches!(status, "exited" | "dead") {
                return Err(format!("the container exited (code {})", state["ExitCode"]));
            }
            match state["Health"]["Status"].as_str() {
                Some("healthy") => return Ok(()),
                Some("unhealthy") => return Err("Docker reports it unhealthy".into()),
                None if status == "running" => return Ok(()),
                _ => {}
            }
            if started.elapsed() >= timeout {
                return Err(format!("not healthy after {:.0?}", timeout));
            }
            tokio::time::sleep(self.options.poll_interval).await;
        }
    }

    /// The container's last log lines and its health log, for an error's detail.
    async fn failure_evidence(&self, client: &DockerClient, id: &str) -> String {
        let mut detail = String::new();
        match client
            .send(api::container_logs(id, self.options.log_lines))
            .await
        {
            Ok(response) => {
                detail.push_str(&format!("last {} log lines:\n", self.options.log_lines));
                detail.push_str(&demultiplex_logs(&response.body));
            }
            Err(error) => detail.push_str(&format!("logs unavailable: {error}\n")),
        }
        if let Ok(inspect) = client.send_json(api::inspect_container(id)).await {
            let log = inspect["State"]["Health"]["Log"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !log.is_empty() {
                detail.push_str("\nhealth log:\n");
                for entry in log {
                    detail.push_str(&format!(
                        "  exit {}: {}\n",
                        entry["ExitCode"],
                        entry["Output"].as_str().unwrap_or("").trim()
                    ));
                }
            }
        }
        detail
    }

    async fn stop_and_remove(&self, client: &DockerClient, id: &str) -> Result<(), ProviderError> {
        let _ = client
            .send_raw(api::stop_container(id, self.options.stop_grace_seconds))
            .await;
        let response = client
            .send_raw(api::remove_container(id))
            .await
            .map_err(from_client)?;
        if response.is_success() || response.status == 404 {
            Ok(())
        } else {
            Err(failed(
                format!("cannot remove container {id}: {}", response.error_message()),
                None,
            ))
        }
    }

    /// Rewrites the backend file so that Traefik sends the service's traffic to `container`.
    ///
    /// When `replacing` (another container served the service until now), it then waits
    /// until Traefik serves from the new one, so that the old one's drain starts only once
    /// no new request goes to it. A first create does not wait: no traffic has to move,
    /// Traefik loads the file on its own (or reads it when it starts), and the post-apply
    /// checks wait for the edge before asking it anything.
    async fn switch_backend(
        &self,
        client: &DockerClient,
        spec: &ServiceSpec,
        container: &str,
        replacing: bool,
    ) -> Result<(), ProviderError> {
        let (Some(backend), Some(contents)) = (&spec.route_backend, spec.backend_file(container))
        else {
            return Ok(());
        };
        client
            .host()
            .write_file(&backend.file, contents.as_bytes(), 0o644, &backend.temp_dir)
            .await
            .map_err(from_host)?;
        if !replacing {
            return Ok(());
        }
        let expected = format!("http://{container}:{}", spec.port.unwrap_or(80));
        let path = format!(
            "/api/http/services/{}@file",
            crate::http::percent_encode(&backend.service)
        );
        // A published admin port was asked for by the user: keep asking it until the
        // deadline. Without one, Traefik's API still listens inside the edge container, on
        // the container's own addresses, which the Docker host can reach (Linux bridges).
        let (mut candidates, configured) = match &backend.admin_url {
            Some(admin_url) => (vec![admin_url.clone()], true),
            None => (self.edge_admin_urls(client).await, false),
        };
        if candidates.is_empty() {
            tracing::debug!(service = %backend.service, "no running edge container to ask; waiting the settle time");
            tokio::time::sleep(self.options.settle).await;
            return Ok(());
        }
        let started = Instant::now();
        let deadline = started + self.options.edge_wait;
        let mut reached: Option<String> = None;
        while Instant::now() < deadline {
            for base in &candidates {
                let answer = tokio::time::timeout(
                    EDGE_ANSWER_TIMEOUT,
                    http_get_via_host(client, base, &path),
                )
                .await;
                if let Ok(Ok(body)) = answer {
                    reached = Some(base.clone());
                    if body.contains(&expected) {
                        return Ok(());
                    }
                    break;
                }
            }
            match &reached {
                // Ask only the address that answered from now on.
                Some(base) => candidates = vec![base.clone()],
                None if !configured => {
                    // Not reachable from the host (Docker Desktop, forwarding refused over
                    // SSH, an internal network): the fixed settle time is all that is left.
                    tracing::debug!(service = %backend.service, "the edge container's API is not reachable; waiting the settle time");
                    tokio::time::sleep(self.options.settle.saturating_sub(started.elapsed())).await;
                    return Ok(());
                }
                None => {}
            }
            tokio::time::sleep(self.options.poll_interval).await;
        }
        tracing::warn!(service = %backend.service, "Traefik did not report the new backend in time; going on");
        Ok(())
    }

    /// Traefik's API on each address of the stack's running edge container; empty when
    /// there is no such container (an edge being replaced in the same run, or none).
    async fn edge_admin_urls(&self, client: &DockerClient) -> Vec<String> {
        match client
            .send_json(api::list_containers(&self.stack, Some(EDGE_RESOURCE)))
            .await
        {
            Ok(list) => edge_admin_urls(&list, self.options.edge_admin_port),
            Err(error) => {
                tracing::debug!(%error, "cannot list the edge container");
                Vec::new()
            }
        }
    }

    async fn apply_service(
        &self,
        client: &DockerClient,
        action: &Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        let address = &action.address;
        if action.kind == ActionKind::Delete {
            for container in self.service_containers(client, address).await? {
                self.stop_and_remove(client, &container.id).await?;
            }
            if let Some(file) = action
                .prior
                .as_ref()
                .and_then(|prior| prior.attributes.get("route_backend"))
                .and_then(Value::as_map)
                .and_then(|backend| backend.get("file"))
                .and_then(Value::as_text)
            {
                client.host().remove_file(file).await.map_err(from_host)?;
            }
            return Ok(ApplyOutcome::Deleted);
        }
        let desired = desired_of(action)?;
        let spec = ServiceSpec::from_attributes(address.name(), &desired.attributes)
            .map_err(|message| failed(format!("`{address}`: {message}"), None))?;
        let existing = self.service_containers(client, address).await?;

        if action.kind == ActionKind::Update {
            let forced_change = action.prior.as_ref().is_some_and(|prior| {
                SERVICE_FORCES_REPLACE
                    .iter()
                    .any(|name| prior.attributes.get(*name) != desired.attributes.get(*name))
            });
            let current = existing
                .iter()
                .find(|container| {
                    Some(&container.id) == action.prior.as_ref().and_then(|prior| prior.id.as_ref())
                })
                .or_else(|| {
                    existing
                        .iter()
                        .find(|container| Some(&container.id) == action.live_id.as_ref())
                })
                .or_else(|| existing.first());
            if let (Some(current), false) = (current, forced_change) {
                return self
                    .update_in_place(client, address, desired, &spec, current, context)
                    .await;
            }
        }
        let destroy_first = action.kind == ActionKind::ReplaceDestroyBeforeCreate
            || desired.replace_order == ReplaceOrder::DestroyBeforeCreate
            || spec.stateful;
        let labels = self.labels(address, &desired.hash());
        // A container that took the service's name by hand and was recorded or seen live as
        // this service (the plan's repair) goes too; other strangers are never touched.
        let mut old = existing.clone();
        for id in [
            action.live_id.as_ref(),
            action.prior.as_ref().and_then(|prior| prior.id.as_ref()),
        ]
        .into_iter()
        .flatten()
        {
            if !old.iter().any(|container| &container.id == id) {
                if let Ok(inspect) = client.send_json(api::inspect_container(id)).await {
                    let name = inspect["Name"]
                        .as_str()
                        .unwrap_or("")
                        .trim_start_matches('/')
                        .to_string();
                    if name == spec.container_name
                        || name.starts_with(&format!("{}-", spec.container_name))
                    {
                        old.push(Existing {
                            id: id.clone(),
                            name,
                        });
                    }
                }
            }
        }

        if destroy_first {
            for container in &old {
                self.stop_and_remove(client, &container.id).await?;
            }
            let id = self
                .create_container(client, address, &spec, &labels, &spec.container_name)
                .await?;
            if let Err(reason) = self.wait_healthy(client, &id, context.health_timeout).await {
                let evidence = self.failure_evidence(client, &id).await;
                return Err(failed(
                    format!("`{address}` did not become healthy: {reason}"),
                    Some(evidence),
                ));
            }
            self.switch_backend(client, &spec, &spec.container_name, !old.is_empty())
                .await?;
            return Ok(self.record_service(desired, &id, &spec.container_name));
        }

        let routed = spec.route_backend.is_some();
        let name_taken = |name: &str| old.iter().any(|container| container.name == name);
        let mut new_name = if routed || name_taken(&spec.container_name) {
            format!("{}-{}", spec.container_name, short_hash(&desired.hash()))
        } else {
            spec.container_name.clone()
        };
        if name_taken(&new_name) {
            // The same hash again (a repair): keep both names distinct.
            let nonce = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_millis() % 100_000)
                .unwrap_or(0);
            new_name = format!("{new_name}-{nonce}");
        }
        let id = self
            .create_container(client, address, &spec, &labels, &new_name)
            .await?;
        if let Err(reason) = self.wait_healthy(client, &id, context.health_timeout).await {
            let evidence = self.failure_evidence(client, &id).await;
            // The old container was never touched and keeps serving.
            let _ = client.send_raw(api::remove_container(&id)).await;
            let kept = if old.is_empty() {
                String::new()
            } else {
                format!("; the previous container `{}` keeps serving", old[0].name)
            };
            return Err(failed(
                format!("`{address}`: the new container `{new_name}` did not become healthy: {reason}{kept}"),
                Some(evidence),
            ));
        }
        if routed {
            self.switch_backend(client, &spec, &new_name, !old.is_empty())
                .await?;
            if !old.is_empty() {
                tokio::time::sleep(self.options.drain).await;
            }
        }
        for container in &old {
            self.stop_and_remove(client, &container.id).await?;
        }
        let mut final_name = new_name.clone();
        if !routed && new_name != spec.container_name {
            client
                .send(api::rename_container(&id, &spec.container_name))
                .await
                .map_err(from_client)?;
            final_name = spec.container_name.clone();
        }
        Ok(self.record_service(desired, &id, &final_name))
    }

    async fn update_in_place(
        &self,
        client: &DockerClient,
        address: &Address,
        desired: &Resource,
        spec: &ServiceSpec,
        current: &Existing,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        let nano = match &spec.cpus {
            Some(cpus) => {
                Some(crate::spec::nano_cpus(cpus).map_err(|message| failed(message, None))?)
            }
            None => None,
        };
        client
            .send(api::update_container(
                &current.id,
                spec.memory,
                nano,
                &spec.restart,
            ))
            .await
            .map_err(from_client)?;
        let inspect = client
            .send_json(api::inspect_container(&current.id))
            .await
            .map_err(from_client)?;
        if inspect["State"]["Running"].as_bool() != Some(true) {
            // A container stopped by hand: start it again and gate on health.
            client
                .send(api::start_container(&current.id))
                .await
                .map_err(from_client)?;
            if let Err(reason) = self
                .wait_healthy(client, &current.id, context.health_timeout)
                .await
            {
                let evidence = self.failure_evidence(client, &current.id).await;
                return Err(failed(
                    format!("`{address}` did not become healthy again: {reason}"),
                    Some(evidence),
                ));
            }
        }
        Ok(self.record_service(desired, &current.id, &current.name))
    }

    /// Records a live resource that is already this stack's, without changing it.
    async fn adopt(
        &self,
        client: &DockerClient,
        action: &Action,
    ) -> Result<ApplyOutcome, ProviderError> {
        let desired = desired_of(action)?;
        let live_id = action.live_id.as_deref().ok_or_else(|| {
            failed(
                format!("`{}`: adopt needs the live id", action.address),
                None,
            )
        })?;
        match action.address.kind() {
            "service" => {
                let inspect = client
                    .send_json(api::inspect_container(live_id))
                    .await
                    .map_err(from_client)?;
                let name = inspect["Name"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches('/');
                let id = inspect["Id"].as_str().unwrap_or(live_id);
                let running = inspect["State"]["Running"].as_bool().unwrap_or(false);
                let ApplyOutcome::Recorded(mut recorded) = self.record_service(desired, id, name)
                else {
                    return Err(failed("adopt produced no record", None));
                };
                // The label hash is what the container carries, so drift stays visible.
                let label_hash = label(&inspect["Config"], api::LABEL_HASH);
                recorded.attributes.insert(
                    "label_hash".into(),
                    label_hash.map(Value::text).unwrap_or(Value::Null),
                );
                recorded
                    .attributes
                    .insert("running".into(), Value::Bool(running));
                recorded.attributes.insert(
                    "state".into(),
                    Value::text(inspect["State"]["Status"].as_str().unwrap_or("unknown")),
                );
                Ok(ApplyOutcome::Recorded(recorded))
            }
            "image" => {
                let image_id = image_reference(&desired.attributes)
                    .unwrap_or(live_id)
                    .to_string();
                let image = client
                    .send_json(api::inspect_image(&image_id))
                    .await
                    .map_err(from_client)?;
                let id = image["Id"].as_str().unwrap_or(live_id).to_string();
                Ok(ApplyOutcome::Recorded(recorded_with(
                    desired,
                    Some(id.clone()),
                    &[("image_id", Value::text(id))],
                )))
            }
            _ => Ok(ApplyOutcome::Recorded(recorded_with(
                desired,
                Some(live_id.to_string()),
                &[],
            ))),
        }
    }

    fn record_service(&self, desired: &Resource, id: &str, name: &str) -> ApplyOutcome {
        ApplyOutcome::Recorded(recorded_with(
            desired,
            Some(id.to_string()),
            &[
                ("container_id", Value::text(id)),
                ("container", Value::text(name)),
                ("running", Value::Bool(true)),
                ("state", Value::text("running")),
                ("label_hash", Value::text(desired.hash())),
            ],
        ))
    }
}

/// `http://<address>:<port>` for every IPv4 address, on any network, of a running
/// container in a `/containers/json` answer (the edge's); ordered by network name.
fn edge_admin_urls(list: &Json, port: u16) -> Vec<String> {
    let mut urls = Vec::new();
    for container in list.as_array().map(Vec::as_slice).unwrap_or(&[]) {
        if container["State"].as_str() != Some("running") {
            continue;
        }
        let Some(networks) = container["NetworkSettings"]["Networks"].as_object() else {
            continue;
        };
        let mut names: Vec<&String> = networks.keys().collect();
        names.sort();
        for name in names {
            let address = networks[name.as_str()]["IPAddress"].as_str().unwrap_or("");
            if address.parse::<std::net::Ipv4Addr>().is_ok() {
                let url = format!("http://{address}:{port}");
                if !urls.contains(&url) {
                    urls.push(url);
                }
            }
        }
    }
    urls
}

/// A plain `GET` through the host (so it also works over SSH): `base` is `http://ip:port`.
async fn http_get_via_host(
    client: &DockerClient,
    base: &str,
    path: &str,
) -> Result<String, String> {
    let authority = base.trim_start_matches("http://").trim_end_matches('/');
    let (address, port) = authority
        .rsplit_once(':')
        .and_then(|(address, port)| port.parse::<u16>().ok().map(|port| (address, port)))
        .ok_or_else(|| format!("`{base}` is not http://address:port"))?;
    let mut stream = client
        .host()
        .connect_tcp(address, port)
        .await
        .map_err(|error| error.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|error| error.to_string())?;
    let mut body = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(2),
        stream.take(1 << 20).read_to_end(&mut body),
    )
    .await
    .map_err(|_| "timed out".to_string())?
    .map_err(|error| error.to_string())?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

// ---- the trait -------------------------------------------------------------------------

#[async_trait]
impl Provider for DockerProvider {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn kinds(&self) -> Vec<KindSchema> {
        let mut service: Vec<AttributeSchema> = SERVICE_FORCES_REPLACE
            .iter()
            .map(|name| AttributeSchema::replaces(name))
            .collect();
        service.extend(["memory", "cpus", "restart"].map(AttributeSchema::plain));
        service.extend(
            [
                "container_id",
                "container",
                "running",
                "state",
                "label_hash",
            ]
            .map(AttributeSchema::computed),
        );
        vec![
            KindSchema {
                kind: "network",
                provider: "docker",
                attributes: vec![
                    AttributeSchema::replaces("name"),
                    AttributeSchema::replaces("internal"),
                ],
            },
            KindSchema {
                kind: "volume",
                provider: "docker",
                attributes: vec![AttributeSchema::replaces("name")],
            },
            KindSchema {
                kind: "image",
                provider: "docker",
                attributes: vec![
                    AttributeSchema::plain("tag"),
                    AttributeSchema::plain("context"),
                    AttributeSchema::plain("context_hash"),
                    AttributeSchema::plain("dockerfile"),
                    AttributeSchema::plain("reference"),
                    AttributeSchema::plain("pull"),
                    AttributeSchema::computed("image_id"),
                ],
            },
            KindSchema {
                kind: "service",
                provider: "docker",
                attributes: service,
            },
            KindSchema {
                kind: "file",
                provider: "docker",
                attributes: vec![
                    AttributeSchema::replaces("path"),
                    AttributeSchema::plain("content"),
                    AttributeSchema::plain("mode"),
                    AttributeSchema::plain("temp_dir"),
                ],
            },
        ]
    }

    fn prepare(&self, desired: &mut Resource) -> Result<(), ProviderError> {
        // Checked before planning, so a bad service fails `plan`, not halfway through apply.
        if desired.address.kind() == "service" {
            let mut checked = desired.attributes.clone();
            // The image may be known only after the image resource is applied.
            checked
                .entry("image".into())
                .or_insert_with(|| Value::text("(known after apply)"));
            if matches!(checked.get("image"), Some(Value::Unknown(_))) {
                checked.insert("image".into(), Value::text("(known after apply)"));
            }
            if let Err(message) = ServiceSpec::from_attributes(desired.address.name(), &checked) {
                if !message.contains("not known yet") {
                    return Err(failed(format!("`{}`: {message}", desired.address), None));
                }
            }
        }
        Ok(())
    }

    async fn read(&self, request: &ReadRequest) -> Result<Vec<LiveResource>, ProviderError> {
        let mut live = self.read_live(request).await?;
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
        if !files.is_empty() {
            let client = self.client(self.recorded_droplet_ip(request)).await?;
            let files: Vec<(Address, Attributes)> = files.into_iter().collect();
            live.extend(crate::files::read(client.host().as_ref(), &files, &request.salt).await?);
        }
        Ok(live)
    }

    async fn begin_apply(&self, context: &ApplyContext) -> Result<(), ProviderError> {
        let client = self.client_for_apply(context).await?;
        let path = format!("{}/lock", self.root());
        match self.connector.take_lock(client.host().as_ref(), &path, &context.stack).await {
            Ok(()) => Ok(()),
            Err(HostError::Locked { path, holder }) => Err(ProviderError::Failed {
                message: format!("another apply holds the host lock `{path}`"),
                detail: Some(holder),
                hint: Some("wait for it to finish, or clear a stale lock with `stackctl state unlock --host`".into()),
            }),
            Err(error) => Err(from_host(error)),
        }
    }

    async fn end_apply(&self, context: &ApplyContext) -> Result<(), ProviderError> {
        let client = self.client_for_apply(context).await?;
        self.connector
            .release_lock(client.host().as_ref())
            .await
            .map_err(from_host)
    }

    async fn import(
        &self,
        address: &Address,
        id: &str,
        desired: Option<&Resource>,
        context: &ApplyContext,
    ) -> Result<RecordedResource, ProviderError> {
        let client = self.client_for_apply(context).await?;
        let request = match address.kind() {
            "service" => api::inspect_container(id),
            "network" => api::inspect_network(id),
            "volume" => api::inspect_volume(id),
            "image" => api::inspect_image(id),
            other => {
                return Err(failed(
                    format!("the docker provider has no kind `{other}`"),
                    None,
                ))
            }
        };
        let found = client.send_json(request).await.map_err(from_client)?;
        let found_id = found["Id"]
            .as_str()
            .or(found["Name"].as_str())
            .unwrap_or(id)
            .to_string();
        let resource = desired
            .cloned()
            .unwrap_or_else(|| Resource::new(address.clone(), "docker"));
        Ok(RecordedResource::from_desired(&resource, Some(found_id)))
    }

    async fn evidence(&self, _context: &ApplyContext) -> Vec<(String, Vec<u8>)> {
        // Evidence must not fail the run: an unreachable host gives a note instead.
        let contents = match self.container_list().await {
            Ok(list) => serde_json::to_vec_pretty(&list).unwrap_or_default(),
            Err(error) => json!({ "error": error.to_string() })
                .to_string()
                .into_bytes(),
        };
        let mut evidence = vec![("containers.json".to_string(), contents)];
        // The edge's log is Traefik's log: access lines and configuration errors.
        if let Ok(client) = self.client(None).await {
            let edge = format!("{}-edge", self.stack);
            if let Ok(response) = client.send(api::container_logs(&edge, 500)).await {
                if response.status == 200 {
                    evidence.push((
                        "traefik.log".to_string(),
                        demultiplex_logs(&response.body).into_bytes(),
                    ));
                }
            }
        }
        evidence
    }

    async fn apply(
        &self,
        action: &Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        let client = self.client_for_apply(context).await?;
        // A file found on the host is adopted by writing what stack.toml says into it.
        if action.kind == ActionKind::Adopt && action.address.kind() != "file" {
            return self.adopt(&client, action).await;
        }
        match action.address.kind() {
            "network" => self.apply_network(&client, action).await,
            "volume" => self.apply_volume(&client, action, context).await,
            "image" => self.apply_image(&client, action).await,
            "service" => self.apply_service(&client, action, context).await,
            "file" => crate::files::apply(client.host().as_ref(), action).await,
            other => Err(failed(
                format!("the docker provider has no kind `{other}`"),
                None,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_lists_containers_by_name() {
        let list = json!([
            {"Names": ["/shop-web"], "Id": "0123456789abcdef", "Image": "img", "State": "running", "Status": "Up 3 seconds",
             "Labels": {"stackctl.resource": "service.web", "stackctl.hash": "sha256:1"}, "Ports": []},
            {"Names": ["/shop-edge"], "Id": "fedcba9876543210", "Image": "traefik", "State": "running", "Status": "Up",
             "Labels": {"stackctl.resource": "service.edge", "stackctl.hash": "sha256:2"},
             "Ports": [{"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 18080, "Type": "tcp"}, {"PrivatePort": 8080, "Type": "tcp"}]}
        ]);
        let evidence = container_list_evidence(&list);
        assert_eq!(evidence[0]["name"], "shop-edge");
        assert_eq!(
            evidence[0]["published_ports"],
            json!(["127.0.0.1:18080->80/tcp"])
        );
        assert_eq!(evidence[1]["id"], "0123456789ab");
        assert_eq!(evidence[1]["resource"], "service.web");
    }

    #[test]
    fn edge_admin_urls_name_every_ipv4_address_of_a_running_edge() {
        let list = json!([
            {"Names": ["/shop-edge"], "State": "running",
             "NetworkSettings": {"Networks": {
                 "shop_public": {"IPAddress": "172.20.0.3", "GlobalIPv6Address": "fd00::3"},
                 "shop_backend": {"IPAddress": "172.21.0.2"},
                 "shop_pending": {"IPAddress": ""}
             }}},
            {"Names": ["/shop-edge-old"], "State": "exited",
             "NetworkSettings": {"Networks": {"shop_public": {"IPAddress": "172.20.0.9"}}}}
        ]);
        assert_eq!(
            edge_admin_urls(&list, 8080),
            vec![
                "http://172.21.0.2:8080".to_string(),
                "http://172.20.0.3:8080".to_string()
            ]
        );
    }

    #[test]
    fn edge_admin_urls_are_empty_without_a_running_edge() {
        assert!(edge_admin_urls(&json!([]), 8080).is_empty());
        assert!(edge_admin_urls(&json!({"message": "error"}), 8080).is_empty());
        let host_network = json!([
            {"State": "running", "NetworkSettings": {"Networks": {"host": {"IPAddress": ""}}}}
        ]);
        assert!(edge_admin_urls(&host_network, 8080).is_empty());
    }

    #[test]
    fn schemas_mark_replacement_and_computed_attributes() {
        let provider = DockerProvider::new(Arc::new(HostConnector::local()), "shop");
        let kinds = provider.kinds();
        let service = kinds.iter().find(|kind| kind.kind == "service").unwrap();
        assert!(service.forces_replace("env"));
        assert!(!service.forces_replace("memory"));
        assert!(service.is_computed("running"));
        let volume = kinds.iter().find(|kind| kind.kind == "volume").unwrap();
        assert!(volume.forces_replace("name"));
    }
}
