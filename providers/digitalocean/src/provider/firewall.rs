//! Cloud firewalls: rules converted between stackctl's attribute shape and the API's,
//! compared by identity so reordering is not drift, read back, created and updated.

use std::collections::{BTreeMap, BTreeSet};

use stackctl_provider::{
    Attributes, LiveResource, ProviderError, ReadRequest, RecordedResource, Resource, Value,
};

use super::attributes::{ordered_like, text_list, text_of, texts, with_computed};
use super::droplet::droplet_id;
use super::entries::entries_of_kind;
use super::{failed, DigitalOceanProvider, FIREWALL};
use crate::api::{Firewall, FirewallRequest, FirewallTarget, InboundRule, OutboundRule};

/// A rule target as the text list lowering uses: addresses as they are, other kinds
/// of target prefixed so they survive a round trip (`droplet:123`, `tag:web`).
pub(super) fn target_texts(target: &FirewallTarget) -> Vec<String> {
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

pub(super) fn target_from_texts(items: &[String]) -> FirewallTarget {
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
pub(super) fn rule_value(
    protocol: &str,
    ports: &str,
    targets_key: &str,
    targets: Vec<String>,
) -> Value {
    Value::Map(BTreeMap::from([
        ("protocol".to_string(), Value::text(protocol)),
        ("ports".to_string(), Value::text(ports)),
        (targets_key.to_string(), texts(targets)),
    ]))
}

/// What makes two rules the same: protocol, ports ("0", "all" and "" mean every port;
/// ICMP has none) and the set of targets.
pub(super) fn rule_identity(rule: &Value, targets_key: &str) -> (String, String, BTreeSet<String>) {
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
pub(super) fn rules_like(live: Vec<Value>, reference: Option<&Value>, targets_key: &str) -> Value {
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

pub(super) fn firewall_attributes(
    firewall: &Firewall,
    reference: Option<&Attributes>,
) -> Attributes {
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

pub(super) fn firewall_request(desired: &Resource) -> Result<FirewallRequest, ProviderError> {
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

impl DigitalOceanProvider {
    pub(super) async fn read_firewalls(
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

    pub(super) async fn create_firewall(
        &self,
        desired: &Resource,
    ) -> Result<RecordedResource, ProviderError> {
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

    pub(super) async fn update_firewall(
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
}
