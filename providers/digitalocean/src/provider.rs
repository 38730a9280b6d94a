//! `DigitalOceanProvider`: reconciles `ssh_key`, `droplet`, `firewall` and `dns_record`
//! resources (attributes as docs/resources.md defines them) through [`Client`].
//!
//! Reading costs a constant number of calls per kind: one tagged droplet list, one
//! firewall list, one record list per domain, and one fingerprint lookup per key (the
//! key *list* has its own 10-per-minute limit). Live attributes come back in exactly
//! the shape lowering produces, with lists in the order of the recorded (or desired)
//! value whenever they hold the same items, so the planner sees a difference only
//! where one exists.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value as Json};
use stackctl_provider::{
    canonical_json, sha256_hex, Action, ActionKind, Address, ApplyContext, ApplyOutcome,
    AttributeSchema, Attributes, KindSchema, LiveResource, Provider, ProviderError, ReadRequest,
    RecordedResource, Resource, Value,
};
use tokio::sync::Mutex;

use crate::api::{
    DomainRecordRequest, Droplet, Firewall, FirewallRequest, FirewallTarget, InboundRule,
    OutboundRule,
};
use crate::client::{Client, ClientConfig, ClientError, PollPolicy, TOKEN_VARIABLE};
use crate::fingerprint::ssh_fingerprint;

pub const PROVIDER_NAME: &str = "digitalocean";

const SSH_KEY: &str = "ssh_key";
const DROPLET: &str = "droplet";
const FIREWALL: &str = "firewall";
const DNS_RECORD: &str = "dns_record";

/// Attributes the provider computes, per kind: never part of the desired hash.
const COMPUTED: &[&str] = &["id", "ipv4", "status", "fingerprint", "domain_created"];

/// Tunables that tests and the emulator want shorter than production.
#[derive(Clone, Debug, Default)]
pub struct ProviderOptions {
    /// How often and how long to poll actions and a starting droplet.
    pub poll: PollPolicy,
}

impl ProviderOptions {
    /// `STACKCTL_DO_POLL_INTERVAL_MS` and `STACKCTL_DO_READY_TIMEOUT_SECONDS` override
    /// the defaults (3 s, 600 s): against the emulator, 50 ms polling keeps applies fast.
    pub fn from_env() -> Self {
        let mut options = ProviderOptions::default();
        if let Some(milliseconds) = env_number("STACKCTL_DO_POLL_INTERVAL_MS") {
            options.poll.interval = Duration::from_millis(milliseconds);
        }
        if let Some(seconds) = env_number("STACKCTL_DO_READY_TIMEOUT_SECONDS") {
            options.poll.timeout = Duration::from_secs(seconds);
        }
        options
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

pub struct DigitalOceanProvider {
    client: Client,
    options: ProviderOptions,
    /// Set once `GET /v2/account` succeeded, so credentials are checked once per run.
    credentials_checked: Mutex<bool>,
}

impl DigitalOceanProvider {
    pub fn new(config: ClientConfig, options: ProviderOptions) -> Result<Self, ProviderError> {
        let client = Client::new(config)
            .map_err(|error| failed("cannot set up the DigitalOcean client", error))?;
        Ok(DigitalOceanProvider {
            client,
            options,
            credentials_checked: Mutex::new(false),
        })
    }

    /// Token, API URL and polling from the environment. A missing token is reported
    /// by the first call that needs the API, as [`ProviderError::Credentials`].
    pub fn from_env() -> Result<Self, ProviderError> {
        DigitalOceanProvider::new(ClientConfig::from_env(), ProviderOptions::from_env())
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Fails with [`ProviderError::Credentials`] when the token is missing or refused.
    /// Called before any read, import or change.
    pub async fn check_credentials(&self) -> Result<(), ProviderError> {
        let mut checked = self.credentials_checked.lock().await;
        if *checked {
            return Ok(());
        }
        self.client
            .check_credentials()
            .await
            .map_err(|error| failed("cannot verify the DigitalOcean token", error))?;
        *checked = true;
        Ok(())
    }

    fn stack_tag(stack: &str) -> String {
        format!("stackctl:{stack}")
    }
}

/// Maps a client error to the engine's vocabulary; credentials problems name the variable.
fn failed(context: &str, error: ClientError) -> ProviderError {
    if matches!(error.root(), ClientError::MissingToken) {
        return ProviderError::Credentials {
            message: format!("no DigitalOcean API token: set {TOKEN_VARIABLE}"),
            hint: format!(
                "export {TOKEN_VARIABLE}=<a personal access token with read and write scope> \
                 (DIGITALOCEAN_ACCESS_TOKEN is read too); nothing was changed"
            ),
        };
    }
    if error.is_credentials() {
        return ProviderError::Credentials {
            message: format!("DigitalOcean rejected the token in {TOKEN_VARIABLE}: {error}"),
            hint: format!("set {TOKEN_VARIABLE} to a valid token with read and write scope; nothing was changed"),
        };
    }
    let detail = error.api().map(|api| {
        format!(
            "status {}, id `{}`, message `{}`{}",
            api.status,
            api.id,
            api.message,
            api.request_id
                .as_ref()
                .map(|request_id| format!(", request id {request_id}"))
                .unwrap_or_default()
        )
    });
    ProviderError::Failed {
        message: format!("{context}: {error}"),
        detail,
        hint: None,
    }
}

// ----- attribute helpers ------------------------------------------------------------

/// A text attribute; a secret's plaintext when it is one.
fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Text(text) => Some(text.clone()),
        Value::Integer(number) => Some(number.to_string()),
        Value::Secret(secret) => secret.expose().map(str::to_string),
        _ => None,
    }
}

fn text_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_list)
        .into_iter()
        .flatten()
        .filter_map(|item| text_of(Some(item)))
        .collect()
}

fn texts(items: impl IntoIterator<Item = String>) -> Value {
    Value::List(items.into_iter().map(Value::Text).collect())
}

/// `live` in the order of `reference` when both hold the same items (order is not
/// meaningful for tags or ids), otherwise sorted, so that a real change shows clearly.
fn ordered_like(mut live: Vec<String>, reference: Option<&Value>) -> Value {
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
fn resolve(resource: &Resource, context: &ApplyContext) -> Result<Resource, ProviderError> {
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
fn recorded_from_live(
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

fn with_computed(desired: &Resource, id: String, computed: Attributes) -> RecordedResource {
    let mut recorded = RecordedResource::from_desired(desired, Some(id));
    recorded.attributes.extend(computed);
    recorded
}

// ----- droplets -----------------------------------------------------------------------

/// The live droplet in desired shape. `reference` supplies what cannot be read back
/// (ssh keys, the user-data hash) and the preferred list order.
fn droplet_attributes(droplet: &Droplet, reference: Option<&Attributes>) -> Attributes {
    let mut attributes = Attributes::new();
    let get = |name: &str| reference.and_then(|reference| reference.get(name));
    attributes.insert("name".into(), Value::text(&droplet.name));
    if let Some(region) = droplet.region_slug() {
        attributes.insert("region".into(), Value::text(region));
    }
    attributes.insert("size".into(), Value::text(&droplet.size_slug));
    if let Some(image) = droplet.image_text() {
        attributes.insert("image".into(), Value::text(image));
    }
    attributes.insert(
        "tags".into(),
        ordered_like(droplet.tags.clone(), get("tags")),
    );
    let has = |feature: &str| droplet.features.iter().any(|existing| existing == feature);
    attributes.insert("monitoring".into(), Value::Bool(has("monitoring")));
    attributes.insert("ipv6".into(), Value::Bool(has("ipv6")));
    // Not readable from the API: carried over so they never show as drift.
    for unreadable in ["ssh_keys", "user_data_hash"] {
        if let Some(value) = get(unreadable) {
            attributes.insert(unreadable.into(), value.clone());
        }
    }
    attributes.insert("id".into(), Value::text(droplet.id.to_string()));
    attributes.insert("status".into(), Value::text(&droplet.status));
    if let Some(ipv4) = droplet.public_ipv4() {
        attributes.insert("ipv4".into(), Value::text(ipv4));
    }
    attributes
}

fn droplet_create_body(desired: &Resource, stack_tag: &str) -> Result<Json, ProviderError> {
    let attributes = &desired.attributes;
    let required = |name: &str| {
        text_of(attributes.get(name))
            .ok_or_else(|| ProviderError::failed(format!("`{}` has no `{name}`", desired.address)))
    };
    let image = required("image")?;
    let mut tags = text_list(attributes.get("tags"));
    if !tags.iter().any(|tag| tag == stack_tag) {
        tags.push(stack_tag.to_string());
    }
    let mut body = json!({
        "name": required("name")?,
        "region": required("region")?,
        "size": required("size")?,
        // A numeric image is an id (a snapshot); anything else is a slug.
        "image": image.parse::<i64>().map(Json::from).unwrap_or(Json::String(image)),
        "ssh_keys": text_list(attributes.get("ssh_keys")),
        "tags": tags,
        "monitoring": attributes.get("monitoring").and_then(Value::as_bool).unwrap_or(false),
        "ipv6": attributes.get("ipv6").and_then(Value::as_bool).unwrap_or(false),
    });
    if let Some(user_data) = text_of(attributes.get("user_data")) {
        body["user_data"] = Json::String(user_data);
    }
    Ok(body)
}

fn droplet_id(text: &str, address: &Address) -> Result<i64, ProviderError> {
    text.parse::<i64>().map_err(|_| {
        ProviderError::failed(format!("`{text}` is not a droplet id (for `{address}`)"))
    })
}

// ----- firewalls ----------------------------------------------------------------------

/// A rule target as the text list lowering uses: addresses as they are, other kinds
/// of target prefixed so they survive a round trip (`droplet:123`, `tag:web`).
fn target_texts(target: &FirewallTarget) -> Vec<String> {
    let mut items: Vec<String> = target.addresses.clone().unwrap_or_default();
    items.extend(
        target
            .droplet_ids
            .iter()
            .flatten()
            .map(|id| format!("droplet:{id}")),
    );
    items.extend(target.tags.iter().flatten().map(|tag| format!("tag:{tag}")));
    items.extend(
        target
            .load_balancer_uids
            .iter()
            .flatten()
            .map(|uid| format!("load_balancer:{uid}")),
    );
    items.extend(
        target
            .kubernetes_ids
            .iter()
            .flatten()
            .map(|id| format!("kubernetes:{id}")),
    );
    items
}

fn target_from_texts(items: &[String]) -> FirewallTarget {
    let mut target = FirewallTarget::default();
    let mut addresses = Vec::new();
    for item in items {
        if let Some(id) = item.strip_prefix("droplet:").and_then(|id| id.parse().ok()) {
            target.droplet_ids.get_or_insert_with(Vec::new).push(id);
        } else if let Some(tag) = item.strip_prefix("tag:") {
            target
                .tags
                .get_or_insert_with(Vec::new)
                .push(tag.to_string());
        } else if let Some(uid) = item.strip_prefix("load_balancer:") {
            target
                .load_balancer_uids
                .get_or_insert_with(Vec::new)
                .push(uid.to_string());
        } else if let Some(id) = item.strip_prefix("kubernetes:") {
            target
                .kubernetes_ids
                .get_or_insert_with(Vec::new)
                .push(id.to_string());
        } else {
            addresses.push(item.clone());
        }
    }
    if !addresses.is_empty() {
        target.addresses = Some(addresses);
    }
    target
}

/// A rule as lowering writes it: `{protocol, ports, <targets_key>: [text]}`.
fn rule_value(protocol: &str, ports: &str, targets_key: &str, targets: Vec<String>) -> Value {
    Value::Map(BTreeMap::from([
        ("protocol".to_string(), Value::text(protocol)),
        ("ports".to_string(), Value::text(ports)),
        (targets_key.to_string(), texts(targets)),
    ]))
}

/// What makes two rules the same: protocol, ports ("0", "all" and "" mean every port;
/// ICMP has none) and the set of targets.
fn rule_identity(rule: &Value, targets_key: &str) -> (String, String, BTreeSet<String>) {
    let map = rule.as_map();
    let field = |name: &str| text_of(map.and_then(|map| map.get(name))).unwrap_or_default();
    let protocol = field("protocol").to_lowercase();
    let mut ports = field("ports");
    if protocol == "icmp" || ports.is_empty() || ports.eq_ignore_ascii_case("all") {
        ports = "0".into();
    }
    let targets = text_list(map.and_then(|map| map.get(targets_key)))
        .into_iter()
        .collect();
    (protocol, ports, targets)
}

/// Live rules, shown in the reference's form and order where they match it; rules the
/// reference lacks come after, so an added rule reads as one added item.
fn rules_like(live: Vec<Value>, reference: Option<&Value>, targets_key: &str) -> Value {
    let mut remaining: Vec<Option<Value>> = live.into_iter().map(Some).collect();
    let mut ordered = Vec::new();
    for wanted in reference.and_then(Value::as_list).into_iter().flatten() {
        let identity = rule_identity(wanted, targets_key);
        if let Some(slot) = remaining.iter_mut().find(|slot| {
            slot.as_ref()
                .is_some_and(|rule| rule_identity(rule, targets_key) == identity)
        }) {
            slot.take();
            ordered.push(wanted.clone());
        }
    }
    ordered.extend(remaining.into_iter().flatten());
    Value::List(ordered)
}

fn firewall_attributes(firewall: &Firewall, reference: Option<&Attributes>) -> Attributes {
    let get = |name: &str| reference.and_then(|reference| reference.get(name));
    let inbound: Vec<Value> = firewall
        .inbound_rules
        .iter()
        .flatten()
        .map(|rule| {
            let mut sources = target_texts(&rule.sources);
            sources.sort();
            rule_value(&rule.protocol, &rule.ports, "sources", sources)
        })
        .collect();
    let outbound: Vec<Value> = firewall
        .outbound_rules
        .iter()
        .flatten()
        .map(|rule| {
            let mut destinations = target_texts(&rule.destinations);
            destinations.sort();
            rule_value(&rule.protocol, &rule.ports, "destinations", destinations)
        })
        .collect();
    let mut attributes = Attributes::new();
    attributes.insert("name".into(), Value::text(&firewall.name));
    attributes.insert(
        "inbound_rules".into(),
        rules_like(inbound, get("inbound_rules"), "sources"),
    );
    attributes.insert(
        "outbound_rules".into(),
        rules_like(outbound, get("outbound_rules"), "destinations"),
    );
    let droplet_ids = firewall
        .droplet_ids
        .iter()
        .flatten()
        .map(|id| id.to_string())
        .collect();
    attributes.insert(
        "droplet_ids".into(),
        ordered_like(droplet_ids, get("droplet_ids")),
    );
    attributes.insert("id".into(), Value::text(&firewall.id));
    attributes
}

fn firewall_request(desired: &Resource) -> Result<FirewallRequest, ProviderError> {
    let attributes = &desired.attributes;
    let name = text_of(attributes.get("name"))
        .ok_or_else(|| ProviderError::failed(format!("`{}` has no `name`", desired.address)))?;
    let rules = |key: &str, targets_key: &str| -> Vec<(String, String, Vec<String>)> {
        attributes
            .get(key)
            .and_then(Value::as_list)
            .into_iter()
            .flatten()
            .map(|rule| {
                let map = rule.as_map();
                let field =
                    |name: &str| text_of(map.and_then(|map| map.get(name))).unwrap_or_default();
                let protocol = field("protocol").to_lowercase();
                let mut ports = field("ports");
                if protocol == "icmp" || ports.is_empty() || ports.eq_ignore_ascii_case("all") {
                    ports = "0".into();
                }
                (
                    protocol,
                    ports,
                    text_list(map.and_then(|map| map.get(targets_key))),
                )
            })
            .collect()
    };
    let inbound_rules = rules("inbound_rules", "sources")
        .into_iter()
        .map(|(protocol, ports, sources)| InboundRule {
            protocol,
            ports,
            sources: target_from_texts(&sources),
        })
        .collect();
    let outbound_rules = rules("outbound_rules", "destinations")
        .into_iter()
        .map(|(protocol, ports, destinations)| OutboundRule {
            protocol,
            ports,
            destinations: target_from_texts(&destinations),
        })
        .collect();
    let mut droplet_ids = Vec::new();
    for text in text_list(attributes.get("droplet_ids")) {
        droplet_ids.push(droplet_id(&text, &desired.address)?);
    }
    Ok(FirewallRequest {
        name,
        inbound_rules,
        outbound_rules,
        droplet_ids,
        tags: Vec::new(),
    })
}

// ----- DNS records --------------------------------------------------------------------

fn record_attributes(
    domain: &str,
    record: &crate::api::DomainRecord,
    reference: Option<&Attributes>,
) -> Attributes {
    let mut attributes = Attributes::new();
    attributes.insert("domain".into(), Value::text(domain));
    attributes.insert("type".into(), Value::text(&record.kind));
    attributes.insert("name".into(), Value::text(&record.name));
    attributes.insert("data".into(), Value::text(&record.data));
    attributes.insert("ttl".into(), Value::Integer(record.ttl.unwrap_or(1800)));
    attributes.insert("id".into(), Value::text(record.id.to_string()));
    if let Some(flag) = reference.and_then(|reference| reference.get("domain_created")) {
        attributes.insert("domain_created".into(), flag.clone());
    }
    attributes
}

fn record_request(desired: &Resource) -> Result<(String, DomainRecordRequest), ProviderError> {
    let attributes = &desired.attributes;
    let required = |name: &str| {
        text_of(attributes.get(name))
            .ok_or_else(|| ProviderError::failed(format!("`{}` has no `{name}`", desired.address)))
    };
    let kind = required("type")?.to_uppercase();
    if !["A", "AAAA", "CNAME", "TXT"].contains(&kind.as_str()) {
        return Err(ProviderError::failed(format!(
            "`{}`: record type `{kind}` is not supported (A, AAAA, CNAME, TXT)",
            desired.address
        )));
    }
    Ok((
        required("domain")?,
        DomainRecordRequest {
            kind,
            name: required("name")?,
            data: required("data")?,
            ttl: attributes
                .get("ttl")
                .and_then(Value::as_integer)
                .unwrap_or(1800),
        },
    ))
}

/// Which live record an address refers to: its recorded id, else the record of the
/// same type and name (preferring the same data when several share a name).
fn pick_record<'a>(
    records: &'a [crate::api::DomainRecord],
    recorded_id: Option<&str>,
    desired: Option<&Attributes>,
) -> Option<&'a crate::api::DomainRecord> {
    if let Some(id) = recorded_id.and_then(|id| id.parse::<i64>().ok()) {
        return records.iter().find(|record| record.id == id);
    }
    let desired = desired?;
    let kind = text_of(desired.get("type"))?.to_uppercase();
    let name = text_of(desired.get("name"))?;
    let data = text_of(desired.get("data"));
    let candidates: Vec<_> = records
        .iter()
        .filter(|record| record.kind == kind && record.name == name)
        .collect();
    candidates
        .iter()
        .find(|record| Some(&record.data) == data.as_ref())
        .or(candidates.first())
        .copied()
}

/// Accepts `<domain>/<id>` or a bare id (the domain then comes from stack.toml).
fn split_record_id(id: &str, desired: Option<&Resource>) -> Result<(String, i64), ProviderError> {
    let (domain, number) = match id.split_once('/') {
        Some((domain, number)) => (domain.to_string(), number),
        None => (
            desired
                .and_then(|desired| text_of(desired.attributes.get("domain")))
                .ok_or_else(|| {
                    ProviderError::failed(format!("import a record as `<domain>/<id>`; got `{id}`"))
                })?,
            id,
        ),
    };
    let number = number
        .parse::<i64>()
        .map_err(|_| ProviderError::failed(format!("`{number}` is not a record id")))?;
    Ok((domain, number))
}

// ----- the provider ---------------------------------------------------------------------

struct Entry<'a> {
    address: &'a Address,
    desired: Option<&'a Resource>,
    recorded: Option<&'a RecordedResource>,
}

impl Entry<'_> {
    /// What live attributes are shaped after: state when there is one, else stack.toml.
    fn reference(&self) -> Option<&Attributes> {
        self.recorded
            .map(|recorded| &recorded.attributes)
            .or(self.desired.map(|desired| &desired.attributes))
    }
}

fn entries_of_kind<'a>(request: &'a ReadRequest, kind: &str) -> Vec<Entry<'a>> {
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

impl DigitalOceanProvider {
    async fn read_droplets(
        &self,
        request: &ReadRequest,
        found: &mut Vec<LiveResource>,
    ) -> Result<(), ProviderError> {
        let entries = entries_of_kind(request, DROPLET);
        if entries.is_empty() {
            return Ok(());
        }
        let tag = Self::stack_tag(&request.stack);
        let tagged = self
            .client
            .list_droplets_by_tag(&tag)
            .await
            .map_err(|error| failed("cannot list droplets", error))?;
        for entry in entries {
            let recorded_id = entry.recorded.and_then(|recorded| recorded.id.clone());
            let droplet = match &recorded_id {
                Some(id) => match tagged.iter().find(|droplet| droplet.id.to_string() == *id) {
                    Some(droplet) => Some(droplet.clone()),
                    // Retagged outside stackctl: still ours by id, so look it up directly.
                    None => match id.parse::<i64>() {
                        Ok(number) => self
                            .client
                            .get_droplet(number)
                            .await
                            .map_err(|error| failed("cannot read a droplet", error))?,
                        Err(_) => None,
                    },
                },
                None => {
                    let name = entry
                        .desired
                        .and_then(|desired| text_of(desired.attributes.get("name")));
                    tagged
                        .iter()
                        .find(|droplet| Some(&droplet.name) == name.as_ref())
                        .cloned()
                }
            };
            if let Some(droplet) = droplet {
                found.push(LiveResource {
                    address: entry.address.clone(),
                    id: Some(droplet.id.to_string()),
                    attributes: droplet_attributes(&droplet, entry.reference()),
                    owned: droplet.tags.contains(&tag),
                });
            }
        }
        Ok(())
    }

    async fn read_ssh_keys(
        &self,
        request: &ReadRequest,
        found: &mut Vec<LiveResource>,
    ) -> Result<(), ProviderError> {
        for entry in entries_of_kind(request, SSH_KEY) {
            let identifier = match entry.recorded.and_then(|recorded| recorded.id.clone()) {
                Some(id) => Some(id),
                None => entry
                    .desired
                    .and_then(|desired| text_of(desired.attributes.get("public_key")))
                    .and_then(|public_key| ssh_fingerprint(&public_key)),
            };
            let Some(identifier) = identifier else {
                continue;
            };
            let key = self
                .client
                .get_ssh_key(&identifier)
                .await
                .map_err(|error| failed("cannot read an SSH key", error))?;
            if let Some(key) = key {
                found.push(LiveResource {
                    address: entry.address.clone(),
                    id: Some(key.id.to_string()),
                    attributes: key_attributes(&key, entry.reference()),
                    // The same fingerprint is the same key: adopt it rather than upload a twin.
                    owned: true,
                });
            }
        }
        Ok(())
    }

    async fn read_firewalls(
        &self,
        request: &ReadRequest,
        found: &mut Vec<LiveResource>,
    ) -> Result<(), ProviderError> {
        let entries = entries_of_kind(request, FIREWALL);
        if entries.is_empty() {
            return Ok(());
        }
        let firewalls = self
            .client
            .list_firewalls()
            .await
            .map_err(|error| failed("cannot list firewalls", error))?;
        for entry in entries {
            let firewall = match entry.recorded.and_then(|recorded| recorded.id.as_ref()) {
                Some(id) => firewalls.iter().find(|firewall| firewall.id == *id),
                None => {
                    let name = entry
                        .desired
                        .and_then(|desired| text_of(desired.attributes.get("name")));
                    firewalls
                        .iter()
                        .find(|firewall| Some(&firewall.name) == name.as_ref())
                }
            };
            if let Some(firewall) = firewall {
                found.push(LiveResource {
                    address: entry.address.clone(),
                    id: Some(firewall.id.clone()),
                    attributes: firewall_attributes(firewall, entry.reference()),
                    owned: firewall.name.starts_with(&format!("{}-", request.stack)),
                });
            }
        }
        Ok(())
    }

    async fn read_records(
        &self,
        request: &ReadRequest,
        found: &mut Vec<LiveResource>,
    ) -> Result<(), ProviderError> {
        let entries = entries_of_kind(request, DNS_RECORD);
        let mut by_domain: BTreeMap<String, Vec<Entry<'_>>> = BTreeMap::new();
        for entry in entries {
            let Some(domain) = entry
                .reference()
                .and_then(|reference| text_of(reference.get("domain")))
            else {
                continue;
            };
            by_domain.entry(domain).or_default().push(entry);
        }
        for (domain, entries) in by_domain {
            let Some(records) =
                self.client.list_records(&domain).await.map_err(|error| {
                    failed(&format!("cannot list the records of {domain}"), error)
                })?
            else {
                continue;
            };
            for entry in entries {
                let recorded_id = entry.recorded.and_then(|recorded| recorded.id.as_deref());
                let desired = entry.desired.map(|desired| &desired.attributes);
                if let Some(record) = pick_record(&records, recorded_id, desired) {
                    found.push(LiveResource {
                        address: entry.address.clone(),
                        id: Some(record.id.to_string()),
                        attributes: record_attributes(&domain, record, entry.reference()),
                        // The stack declares this name in its domain; records carry no tags.
                        owned: true,
                    });
                }
            }
        }
        Ok(())
    }

    // ----- apply, per kind -------------------------------------------------------------

    async fn find_droplet(
        &self,
        name: &str,
        tag: &str,
        except: Option<i64>,
    ) -> Result<Option<Droplet>, ClientError> {
        let droplets = self.client.list_droplets_by_name(name).await?;
        Ok(droplets.into_iter().find(|droplet| {
            droplet.tags.iter().any(|existing| existing == tag) && Some(droplet.id) != except
        }))
    }

    async fn create_droplet(
        &self,
        desired: &Resource,
        context: &ApplyContext,
        except: Option<i64>,
    ) -> Result<RecordedResource, ProviderError> {
        let tag = Self::stack_tag(&context.stack);
        let body = droplet_create_body(desired, &tag)?;
        let name = body["name"].as_str().unwrap_or_default().to_string();
        let ((droplet, action_id), _created) = self
            .client
            .create_without_duplicates(
                "droplet",
                || self.client.create_droplet(&body),
                || async {
                    Ok(self
                        .find_droplet(&name, &tag, except)
                        .await?
                        .map(|droplet| (droplet, None)))
                },
            )
            .await
            .map_err(|error| failed(&format!("cannot create droplet `{name}`"), error))?;
        if let Some(action_id) = action_id {
            self.client
                .wait_for_action(action_id, &self.options.poll)
                .await
                .map_err(|error| {
                    failed(&format!("droplet `{name}` did not finish starting"), error)
                })?;
        }
        let ready = self
            .client
            .wait_for_droplet_ready(droplet.id, &self.options.poll)
            .await
            .map_err(|error| {
                failed(
                    &format!("droplet `{name}` (id {}) did not become ready", droplet.id),
                    error,
                )
            })?;
        Ok(self.droplet_record(desired, &ready))
    }

    fn droplet_record(&self, desired: &Resource, droplet: &Droplet) -> RecordedResource {
        let live = droplet_attributes(droplet, Some(&desired.attributes));
        let computed = live
            .into_iter()
            .filter(|(name, _)| ["id", "ipv4", "status"].contains(&name.as_str()))
            .collect();
        with_computed(desired, droplet.id.to_string(), computed)
    }

    /// Runs one droplet action and waits for it. An action is a POST: if its answer is
    /// lost (or the droplet reports a pending event because the lost one is running),
    /// the droplet is watched until it is unlocked and `done` decides whether the
    /// action took effect, instead of sending it again blindly.
    async fn run_action(
        &self,
        id: i64,
        body: Json,
        what: &str,
        done: impl Fn(&Droplet) -> bool,
    ) -> Result<(), ProviderError> {
        let error = match self.client.droplet_action(id, &body).await {
            Ok(action) => {
                return self
                    .client
                    .wait_for_action(action.id, &self.options.poll)
                    .await
                    .map(|_| ())
                    .map_err(|error| failed(&format!("cannot {what} droplet {id}"), error));
            }
            Err(error) if error.is_ambiguous() || error.status() == Some(422) => error,
            Err(error) => return Err(failed(&format!("cannot {what} droplet {id}"), error)),
        };
        tracing::warn!(droplet = id, what, error = %error, "droplet action outcome unknown; watching the droplet");
        let started = std::time::Instant::now();
        loop {
            let droplet = self
                .client
                .get_droplet(id)
                .await
                .map_err(|error| failed(&format!("cannot read droplet {id}"), error))?
                .ok_or_else(|| {
                    ProviderError::failed(format!("droplet {id} disappeared during {what}"))
                })?;
            if !droplet.locked {
                if done(&droplet) {
                    return Ok(());
                }
                return Err(failed(&format!("cannot {what} droplet {id}"), error));
            }
            if started.elapsed() + self.options.poll.interval > self.options.poll.timeout {
                return Err(failed(
                    &format!("droplet {id} stayed locked during {what}"),
                    error,
                ));
            }
            tokio::time::sleep(self.options.poll.interval).await;
        }
    }

    /// In-place changes: a resize (power off, resize, power on), powering a stopped
    /// droplet back on, a rename, IPv6. Anything else cannot change in place.
    async fn update_droplet(
        &self,
        desired: &Resource,
        id: i64,
    ) -> Result<RecordedResource, ProviderError> {
        let current = self
            .client
            .get_droplet(id)
            .await
            .map_err(|error| failed("cannot read the droplet to update", error))?
            .ok_or_else(|| {
                ProviderError::failed(format!(
                    "droplet {id} of `{}` no longer exists",
                    desired.address
                ))
            })?;
        let attributes = &desired.attributes;
        let live = droplet_attributes(&current, Some(attributes));
        let mut unsupported = Vec::new();
        for name in ["region", "image", "monitoring"] {
            if let (Some(wanted), Some(have)) = (attributes.get(name), live.get(name)) {
                if wanted != have {
                    unsupported.push(name);
                }
            }
        }
        if !unsupported.is_empty() {
            return Err(ProviderError::Failed {
                message: format!(
                    "`{}`: {} cannot change in place on DigitalOcean",
                    desired.address,
                    unsupported.join(", ")
                ),
                detail: None,
                hint: Some(
                    "replace the droplet (region and image force a replacement in the plan)".into(),
                ),
            });
        }
        // Tags through the tags API: add what is missing, remove what is extra.
        if attributes.contains_key("tags") {
            let wanted: BTreeSet<String> = text_list(attributes.get("tags")).into_iter().collect();
            let have: BTreeSet<String> = current.tags.iter().cloned().collect();
            for tag in wanted.difference(&have) {
                self.client
                    .tag_droplet(tag, id, true)
                    .await
                    .map_err(|error| {
                        failed(&format!("cannot tag droplet {id} with `{tag}`"), error)
                    })?;
            }
            for tag in have.difference(&wanted) {
                self.client
                    .tag_droplet(tag, id, false)
                    .await
                    .map_err(|error| {
                        failed(&format!("cannot untag `{tag}` from droplet {id}"), error)
                    })?;
            }
        }
        let mut powered_on = current.status == "active";
        if let Some(size) =
            text_of(attributes.get("size")).filter(|size| *size != current.size_slug)
        {
            if powered_on {
                self.run_action(id, json!({"type": "power_off"}), "power off", |droplet| {
                    droplet.status == "off"
                })
                .await?;
                powered_on = false;
            }
            let resized = |droplet: &Droplet| droplet.size_slug == size;
            self.run_action(
                id,
                json!({"type": "resize", "size": size, "disk": false}),
                "resize",
                resized,
            )
            .await?;
        }
        if let Some(name) = text_of(attributes.get("name")).filter(|name| *name != current.name) {
            let renamed = |droplet: &Droplet| droplet.name == name;
            self.run_action(
                id,
                json!({"type": "rename", "name": name}),
                "rename",
                renamed,
            )
            .await?;
        }
        if attributes.get("ipv6").and_then(Value::as_bool) == Some(true)
            && !current.features.iter().any(|feature| feature == "ipv6")
        {
            self.run_action(
                id,
                json!({"type": "enable_ipv6"}),
                "enable IPv6 on",
                |droplet| droplet.features.iter().any(|feature| feature == "ipv6"),
            )
            .await?;
        }
        if !powered_on {
            self.run_action(id, json!({"type": "power_on"}), "power on", |droplet| {
                droplet.status == "active"
            })
            .await?;
        }
        let ready = self
            .client
            .wait_for_droplet_ready(id, &self.options.poll)
            .await
            .map_err(|error| failed(&format!("droplet {id} did not come back"), error))?;
        Ok(self.droplet_record(desired, &ready))
    }

    async fn create_ssh_key(&self, desired: &Resource) -> Result<RecordedResource, ProviderError> {
        let name = text_of(desired.attributes.get("name"))
            .ok_or_else(|| ProviderError::failed(format!("`{}` has no `name`", desired.address)))?;
        let public_key = text_of(desired.attributes.get("public_key")).ok_or_else(|| {
            ProviderError::failed(format!("`{}` has no `public_key`", desired.address))
        })?;
        let fingerprint = ssh_fingerprint(&public_key).ok_or_else(|| {
            ProviderError::failed(format!(
                "`{}`: `public_key` is not an OpenSSH public key",
                desired.address
            ))
        })?;
        // DigitalOcean refuses a second key with one fingerprint; adopt the existing one.
        let existing = self
            .client
            .get_ssh_key(&fingerprint)
            .await
            .map_err(|error| failed("cannot look up the SSH key", error))?;
        let key = match existing {
            Some(key) if key.name == name => key,
            Some(key) => self
                .client
                .rename_ssh_key(key.id, &name)
                .await
                .map_err(|error| failed("cannot rename the existing SSH key", error))?,
            None => {
                self.client
                    .create_without_duplicates(
                        "ssh key",
                        || self.client.create_ssh_key(&name, &public_key),
                        || self.client.get_ssh_key(&fingerprint),
                    )
                    .await
                    .map_err(|error| failed(&format!("cannot upload SSH key `{name}`"), error))?
                    .0
            }
        };
        Ok(with_computed(
            desired,
            key.id.to_string(),
            Attributes::from([
                ("id".to_string(), Value::text(key.id.to_string())),
                ("fingerprint".to_string(), Value::text(&key.fingerprint)),
            ]),
        ))
    }

    async fn create_firewall(&self, desired: &Resource) -> Result<RecordedResource, ProviderError> {
        let request = firewall_request(desired)?;
        let (firewall, _) = self
            .client
            .create_without_duplicates(
                "firewall",
                || self.client.create_firewall(&request),
                || async {
                    let firewalls = self.client.list_firewalls().await?;
                    Ok(firewalls
                        .into_iter()
                        .find(|firewall| firewall.name == request.name))
                },
            )
            .await
            .map_err(|error| {
                failed(&format!("cannot create firewall `{}`", request.name), error)
            })?;
        Ok(with_computed(
            desired,
            firewall.id.clone(),
            Attributes::from([("id".to_string(), Value::text(&firewall.id))]),
        ))
    }

    async fn update_firewall(
        &self,
        desired: &Resource,
        id: &str,
    ) -> Result<RecordedResource, ProviderError> {
        let request = firewall_request(desired)?;
        let firewall = self
            .client
            .update_firewall(id, &request)
            .await
            .map_err(|error| {
                failed(&format!("cannot update firewall `{}`", request.name), error)
            })?;
        Ok(with_computed(
            desired,
            firewall.id.clone(),
            Attributes::from([("id".to_string(), Value::text(&firewall.id))]),
        ))
    }

    /// Makes sure the zone exists; true when this call created it.
    async fn ensure_domain(&self, domain: &str) -> Result<bool, ProviderError> {
        let exists = self
            .client
            .get_domain(domain)
            .await
            .map_err(|error| failed(&format!("cannot read domain {domain}"), error))?;
        if exists.is_some() {
            return Ok(false);
        }
        match self.client.create_domain(domain).await {
            Ok(_) => Ok(true),
            // Lost answer or a parallel creator: the domain may exist now, which is fine.
            Err(error) => match self.client.get_domain(domain).await {
                Ok(Some(_)) => Ok(true),
                _ => Err(failed(&format!("cannot create domain {domain}"), error)),
            },
        }
    }

    async fn create_record(&self, desired: &Resource) -> Result<RecordedResource, ProviderError> {
        let (domain, request) = record_request(desired)?;
        let domain_created = self.ensure_domain(&domain).await?;
        let (record, _) = self
            .client
            .create_without_duplicates(
                "dns record",
                || self.client.create_record(&domain, &request),
                || async {
                    let records = self
                        .client
                        .find_records(&domain, &request.kind, &request.name)
                        .await?;
                    Ok(records
                        .into_iter()
                        .find(|record| record.data == request.data))
                },
            )
            .await
            .map_err(|error| {
                failed(
                    &format!(
                        "cannot create {} record `{}` in {domain}",
                        request.kind, request.name
                    ),
                    error,
                )
            })?;
        let mut computed =
            Attributes::from([("id".to_string(), Value::text(record.id.to_string()))]);
        if domain_created {
            computed.insert("domain_created".into(), Value::Bool(true));
        }
        Ok(with_computed(desired, record.id.to_string(), computed))
    }

    async fn update_record(
        &self,
        desired: &Resource,
        prior: Option<&RecordedResource>,
        id: i64,
    ) -> Result<RecordedResource, ProviderError> {
        let (domain, request) = record_request(desired)?;
        let record = self
            .client
            .update_record(&domain, id, &request)
            .await
            .map_err(|error| failed(&format!("cannot update record {id} in {domain}"), error))?;
        let mut computed =
            Attributes::from([("id".to_string(), Value::text(record.id.to_string()))]);
        if let Some(flag) = prior.and_then(|prior| prior.attributes.get("domain_created")) {
            computed.insert("domain_created".into(), flag.clone());
        }
        Ok(with_computed(desired, record.id.to_string(), computed))
    }

    /// Deletes whatever `prior` recorded. A resource already gone counts as deleted.
    async fn delete(&self, prior: &RecordedResource) -> Result<(), ProviderError> {
        let Some(id) = prior.id.as_deref() else {
            return Ok(());
        };
        let address = &prior.address;
        let result = match address.kind() {
            DROPLET => self.client.delete_droplet(droplet_id(id, address)?).await,
            SSH_KEY => self.client.delete_ssh_key(id).await,
            FIREWALL => self.client.delete_firewall(id).await,
            DNS_RECORD => {
                let domain = text_of(prior.attributes.get("domain")).ok_or_else(|| {
                    ProviderError::failed(format!("`{address}` has no recorded domain"))
                })?;
                let number = id
                    .parse::<i64>()
                    .map_err(|_| ProviderError::failed(format!("`{id}` is not a record id")))?;
                let deleted = self.client.delete_record(&domain, number).await;
                if deleted.is_ok()
                    && prior.attributes.get("domain_created") == Some(&Value::Bool(true))
                {
                    self.delete_domain_if_empty(&domain).await?;
                }
                deleted
            }
            other => {
                return Err(ProviderError::failed(format!(
                    "the digitalocean provider does not own `{other}`"
                )))
            }
        };
        result
            .map(|_| ())
            .map_err(|error| failed(&format!("cannot delete `{address}` ({id})"), error))
    }

    /// Removes a zone stackctl created once only DigitalOcean's own NS/SOA records remain.
    async fn delete_domain_if_empty(&self, domain: &str) -> Result<(), ProviderError> {
        let records = self
            .client
            .list_records(domain)
            .await
            .map_err(|error| failed(&format!("cannot list the records of {domain}"), error))?;
        let only_own = records
            .unwrap_or_default()
            .iter()
            .all(|record| record.kind == "NS" || record.kind == "SOA");
        if only_own {
            self.client
                .delete_domain(domain)
                .await
                .map_err(|error| failed(&format!("cannot delete domain {domain}"), error))?;
        }
        Ok(())
    }

    async fn create(
        &self,
        desired: &Resource,
        context: &ApplyContext,
        except: Option<i64>,
    ) -> Result<RecordedResource, ProviderError> {
        match desired.address.kind() {
            DROPLET => self.create_droplet(desired, context, except).await,
            SSH_KEY => self.create_ssh_key(desired).await,
            FIREWALL => self.create_firewall(desired).await,
            DNS_RECORD => self.create_record(desired).await,
            other => Err(ProviderError::failed(format!(
                "the digitalocean provider does not own `{other}`"
            ))),
        }
    }

    async fn update(
        &self,
        desired: &Resource,
        prior: Option<&RecordedResource>,
        live_id: Option<&str>,
    ) -> Result<RecordedResource, ProviderError> {
        let id = live_id
            .map(str::to_string)
            .or_else(|| prior.and_then(|prior| prior.id.clone()))
            .ok_or_else(|| {
                ProviderError::failed(format!("`{}` has no id to update", desired.address))
            })?;
        match desired.address.kind() {
            DROPLET => {
                self.update_droplet(desired, droplet_id(&id, &desired.address)?)
                    .await
            }
            SSH_KEY => {
                let name = text_of(desired.attributes.get("name")).unwrap_or_default();
                let number = id
                    .parse::<i64>()
                    .map_err(|_| ProviderError::failed(format!("`{id}` is not an SSH key id")))?;
                let key = self
                    .client
                    .rename_ssh_key(number, &name)
                    .await
                    .map_err(|error| failed("cannot rename the SSH key", error))?;
                Ok(with_computed(
                    desired,
                    key.id.to_string(),
                    Attributes::from([
                        ("id".to_string(), Value::text(key.id.to_string())),
                        ("fingerprint".to_string(), Value::text(&key.fingerprint)),
                    ]),
                ))
            }
            FIREWALL => self.update_firewall(desired, &id).await,
            DNS_RECORD => {
                let number = id
                    .parse::<i64>()
                    .map_err(|_| ProviderError::failed(format!("`{id}` is not a record id")))?;
                self.update_record(desired, prior, number).await
            }
            other => Err(ProviderError::failed(format!(
                "the digitalocean provider does not own `{other}`"
            ))),
        }
    }
}

fn key_attributes(key: &crate::api::SshKey, reference: Option<&Attributes>) -> Attributes {
    let reference_key = reference.and_then(|reference| text_of(reference.get("public_key")));
    // The key material is what matters; a different comment or spacing is not drift.
    let public_key = match reference_key {
        Some(text) if ssh_fingerprint(&text).as_deref() == Some(key.fingerprint.as_str()) => text,
        _ => key.public_key.clone(),
    };
    Attributes::from([
        ("name".to_string(), Value::text(&key.name)),
        ("public_key".to_string(), Value::text(public_key)),
        ("fingerprint".to_string(), Value::text(&key.fingerprint)),
        ("id".to_string(), Value::text(key.id.to_string())),
    ])
}

#[async_trait]
impl Provider for DigitalOceanProvider {
    fn name(&self) -> &'static str {
        PROVIDER_NAME
    }

    fn kinds(&self) -> Vec<KindSchema> {
        let kind = |kind: &'static str, attributes: Vec<AttributeSchema>| KindSchema {
            kind,
            provider: PROVIDER_NAME,
            attributes,
        };
        vec![
            kind(
                SSH_KEY,
                vec![
                    AttributeSchema::plain("name"),
                    AttributeSchema::replaces("public_key"),
                    AttributeSchema::computed("fingerprint"),
                    AttributeSchema::computed("id"),
                ],
            ),
            kind(
                DROPLET,
                vec![
                    AttributeSchema::plain("name"),
                    AttributeSchema::replaces("region"),
                    AttributeSchema::plain("size"),
                    AttributeSchema::replaces("image"),
                    // Installed only at creation: a change needs a new droplet.
                    AttributeSchema::replaces("ssh_keys"),
                    AttributeSchema::replaces("user_data_hash"),
                    AttributeSchema::plain("tags"),
                    AttributeSchema::plain("monitoring"),
                    AttributeSchema::plain("ipv6"),
                    AttributeSchema::computed("id"),
                    AttributeSchema::computed("ipv4"),
                    AttributeSchema::computed("status"),
                ],
            ),
            kind(
                FIREWALL,
                vec![
                    AttributeSchema::plain("name"),
                    AttributeSchema::plain("inbound_rules"),
                    AttributeSchema::plain("outbound_rules"),
                    AttributeSchema::plain("droplet_ids"),
                    AttributeSchema::computed("id"),
                ],
            ),
            kind(
                DNS_RECORD,
                vec![
                    AttributeSchema::replaces("domain"),
                    AttributeSchema::replaces("type"),
                    AttributeSchema::replaces("name"),
                    AttributeSchema::plain("data"),
                    AttributeSchema::plain("ttl"),
                    AttributeSchema::computed("id"),
                    AttributeSchema::computed("domain_created"),
                ],
            ),
        ]
    }

    async fn read(&self, request: &ReadRequest) -> Result<Vec<LiveResource>, ProviderError> {
        self.check_credentials().await?;
        let mut found = Vec::new();
        self.read_ssh_keys(request, &mut found).await?;
        self.read_droplets(request, &mut found).await?;
        self.read_firewalls(request, &mut found).await?;
        self.read_records(request, &mut found).await?;
        Ok(found)
    }

    async fn preflight(&self) -> Result<(), ProviderError> {
        self.check_credentials().await
    }

    async fn begin_apply(&self, _context: &ApplyContext) -> Result<(), ProviderError> {
        self.check_credentials().await
    }

    async fn import(
        &self,
        address: &Address,
        id: &str,
        desired: Option<&Resource>,
        _context: &ApplyContext,
    ) -> Result<RecordedResource, ProviderError> {
        self.check_credentials().await?;
        let reference = desired.map(|desired| &desired.attributes);
        let not_found = || {
            ProviderError::failed(format!(
                "no {} with id `{id}` to import as `{address}`",
                address.kind()
            ))
        };
        let (live_id, attributes) = match address.kind() {
            DROPLET => {
                let droplet = self
                    .client
                    .get_droplet(droplet_id(id, address)?)
                    .await
                    .map_err(|error| failed("cannot read the droplet", error))?
                    .ok_or_else(not_found)?;
                (
                    droplet.id.to_string(),
                    droplet_attributes(&droplet, reference),
                )
            }
            SSH_KEY => {
                let key = self
                    .client
                    .get_ssh_key(id)
                    .await
                    .map_err(|error| failed("cannot read the SSH key", error))?
                    .ok_or_else(not_found)?;
                (key.id.to_string(), key_attributes(&key, reference))
            }
            FIREWALL => {
                let firewall = self
                    .client
                    .get_firewall(id)
                    .await
                    .map_err(|error| failed("cannot read the firewall", error))?
                    .ok_or_else(not_found)?;
                (
                    firewall.id.clone(),
                    firewall_attributes(&firewall, reference),
                )
            }
            DNS_RECORD => {
                let (domain, number) = split_record_id(id, desired)?;
                let record = self
                    .client
                    .get_record(&domain, number)
                    .await
                    .map_err(|error| failed("cannot read the record", error))?
                    .ok_or_else(not_found)?;
                (
                    record.id.to_string(),
                    record_attributes(&domain, &record, reference),
                )
            }
            other => {
                return Err(ProviderError::failed(format!(
                    "the digitalocean provider does not own `{other}`"
                )))
            }
        };
        Ok(recorded_from_live(address, live_id, attributes, desired))
    }

    async fn apply(
        &self,
        action: &Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        self.check_credentials().await?;
        let desired = match &action.desired {
            Some(desired) => Some(resolve(desired, context)?),
            None => None,
        };
        let need_desired = || {
            desired.as_ref().ok_or_else(|| {
                ProviderError::failed(format!(
                    "`{}`: the action carries no desired resource",
                    action.address
                ))
            })
        };
        let prior = action.prior.as_ref();
        match action.kind {
            ActionKind::Create => Ok(ApplyOutcome::Recorded(
                self.create(need_desired()?, context, None).await?,
            )),
            ActionKind::Update => Ok(ApplyOutcome::Recorded(
                self.update(need_desired()?, prior, action.live_id.as_deref())
                    .await?,
            )),
            ActionKind::Delete => {
                if let Some(prior) = prior {
                    self.delete(prior).await?;
                }
                Ok(ApplyOutcome::Deleted)
            }
            ActionKind::Adopt => {
                let id = action.live_id.as_deref().ok_or_else(|| {
                    ProviderError::failed(format!("`{}`: nothing found to adopt", action.address))
                })?;
                Ok(ApplyOutcome::Recorded(
                    self.import(&action.address, id, desired.as_ref(), context)
                        .await?,
                ))
            }
            ActionKind::ReplaceCreateBeforeDestroy | ActionKind::ReplaceDestroyBeforeCreate => {
                let desired = need_desired()?;
                let prior_id = prior.and_then(|prior| prior.id.as_deref());
                // Two keys with one fingerprint cannot coexist: such a key goes first.
                let same_key = desired.address.kind() == SSH_KEY
                    && prior
                        .and_then(|prior| text_of(prior.attributes.get("public_key")))
                        .and_then(|key| ssh_fingerprint(&key))
                        == text_of(desired.attributes.get("public_key"))
                            .and_then(|key| ssh_fingerprint(&key));
                let destroy_first =
                    action.kind == ActionKind::ReplaceDestroyBeforeCreate || same_key;
                if destroy_first {
                    if let Some(prior) = prior {
                        self.delete(prior).await?;
                    }
                    return Ok(ApplyOutcome::Recorded(
                        self.create(desired, context, None).await?,
                    ));
                }
                let except = prior_id.and_then(|id| id.parse::<i64>().ok());
                let recorded = self.create(desired, context, except).await?;
                if let Some(prior) = prior {
                    self.delete(prior).await?;
                }
                Ok(ApplyOutcome::Recorded(recorded))
            }
        }
    }
}
