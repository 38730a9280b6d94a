//! The DigitalOcean side of a stack: SSH keys, droplets, firewalls and DNS records.
//! Their attributes are what the DigitalOcean API takes; values only known after an
//! apply (a key's fingerprint, a droplet's id or address) are references.

use std::collections::{BTreeMap, BTreeSet};

use stackctl_provider::{Address, ReplaceOrder, Resource, Value};

use super::{map, texts, unknown, Lowering, DIGITALOCEAN};
use crate::config::derived::target_droplet;
use crate::config::{DropletConfig, FirewallConfig, Protocol};

impl Lowering<'_> {
    pub(super) fn ssh_keys(&self, resources: &mut Vec<Resource>) {
        for (name, key) in &self.config.ssh_keys {
            let public_key = match (&key.public_key, &key.public_key_file) {
                (Some(text), _) => self.text(text),
                (None, Some(file)) => self.inputs.files.get(file).cloned().unwrap_or_default(),
                (None, None) => String::new(),
            };
            resources.push(
                Resource::new(Address::new("ssh_key", name), DIGITALOCEAN)
                    .with("name", format!("{}-{name}", self.stack))
                    .with("public_key", public_key.trim().to_string()),
            );
        }
    }

    pub(super) fn droplets(&self, resources: &mut Vec<Resource>) {
        for (name, droplet) in &self.config.droplets {
            resources.push(self.droplet(name, droplet));
        }
    }

    fn droplet(&self, name: &str, droplet: &DropletConfig) -> Resource {
        let mut tags: BTreeSet<String> = droplet.tags.iter().map(|tag| self.text(tag)).collect();
        tags.insert(format!("stackctl:{}", self.stack));
        let ssh_keys = droplet
            .ssh_keys
            .iter()
            .map(|key| unknown("ssh_key", key, "fingerprint"))
            .collect();
        let mut resource = Resource::new(Address::new("droplet", name), DIGITALOCEAN)
            .with("name", name.to_string())
            .with("region", self.text(&droplet.region))
            .with("size", self.text(&droplet.size))
            .with("image", self.text(&droplet.image))
            .with("ssh_keys", Value::List(ssh_keys))
            .with(
                "tags",
                Value::List(tags.into_iter().map(Value::Text).collect()),
            )
            .with("monitoring", droplet.monitoring)
            .with("ipv6", droplet.ipv6);
        if let Some(file) = &droplet.user_data_file {
            let contents = self.inputs.files.get(file).cloned().unwrap_or_default();
            resource = resource.with(
                "user_data_hash",
                stackctl_provider::sha256_hex(contents.as_bytes()),
            );
        }
        for key in &droplet.ssh_keys {
            resource = resource.depends_on(Address::new("ssh_key", key));
        }
        // A droplet holds everything on it: never create the new one first.
        resource.replace_order = ReplaceOrder::DestroyBeforeCreate;
        resource
    }

    pub(super) fn firewalls(&self, resources: &mut Vec<Resource>) {
        for (name, firewall) in &self.config.firewalls {
            resources.push(self.firewall(name, firewall));
        }
    }

    fn firewall(&self, name: &str, firewall: &FirewallConfig) -> Resource {
        let inbound = firewall
            .inbound
            .iter()
            .map(|inbound| {
                self.firewall_rule(
                    inbound.protocol.as_str(),
                    &inbound.ports,
                    "sources",
                    &inbound.sources,
                )
            })
            .collect();
        let outbound = match &firewall.outbound {
            Some(rules) => rules
                .iter()
                .map(|outbound| {
                    self.firewall_rule(
                        outbound.protocol.as_str(),
                        &outbound.ports,
                        "destinations",
                        &outbound.destinations,
                    )
                })
                .collect(),
            // No outbound rules written: everything may go out.
            None => [Protocol::Tcp, Protocol::Udp, Protocol::Icmp]
                .into_iter()
                .map(|protocol| self.firewall_rule(protocol.as_str(), &None, "destinations", &None))
                .collect(),
        };
        let droplet_ids = firewall
            .droplets
            .iter()
            .map(|droplet| unknown("droplet", droplet, "id"))
            .collect();
        let mut resource = Resource::new(Address::new("firewall", name), DIGITALOCEAN)
            .with("name", format!("{}-{name}", self.stack))
            .with("inbound_rules", Value::List(inbound))
            .with("outbound_rules", Value::List(outbound))
            .with("droplet_ids", Value::List(droplet_ids));
        for droplet in &firewall.droplets {
            resource = resource.depends_on(Address::new("droplet", droplet));
        }
        resource
    }

    /// One rule as DigitalOcean takes it: the peers are `sources` inbound and
    /// `destinations` outbound; absent ports mean all, absent peers everyone.
    fn firewall_rule(
        &self,
        protocol: &str,
        ports: &Option<String>,
        peers_key: &'static str,
        peers: &Option<Vec<String>>,
    ) -> Value {
        let everyone = vec!["0.0.0.0/0".to_string(), "::/0".to_string()];
        let peers: Vec<String> = peers
            .as_ref()
            .unwrap_or(&everyone)
            .iter()
            .map(|peer| self.text(peer))
            .collect();
        map([
            ("protocol", Value::text(protocol)),
            (
                "ports",
                Value::text(ports.clone().unwrap_or_else(|| "all".into())),
            ),
            (peers_key, texts(&peers)),
        ])
    }

    /// One resource per record, named after the record (`@` is `apex`); when several
    /// records share a name, their type tells them apart (`www-a`, `www-aaaa`).
    pub(super) fn dns_records(&self, resources: &mut Vec<Resource>) {
        let Some(dns) = &self.config.dns else {
            return;
        };
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for record in &dns.records {
            *counts.entry(record.name.as_str()).or_default() += 1;
        }
        for record in &dns.records {
            let base = record.address_base();
            let name = if counts[record.name.as_str()] > 1 {
                format!(
                    "{base}-{}",
                    record.record_type.as_str().to_ascii_lowercase()
                )
            } else {
                base
            };
            let mut resource = Resource::new(Address::new("dns_record", &name), DIGITALOCEAN)
                .with("domain", self.text(&dns.domain))
                .with("type", record.record_type.as_str())
                .with("name", self.text(&record.name))
                .with("ttl", i64::from(record.ttl.unwrap_or(1800)));
            // Without `data`, an A record points at the droplet that runs the stack.
            match (&record.data, target_droplet(self.config)) {
                (Some(data), _) => resource = resource.with("data", self.text(data)),
                (None, Some(droplet)) => {
                    resource = resource
                        .with("data", unknown("droplet", droplet, "ipv4"))
                        .depends_on(Address::new("droplet", droplet));
                }
                (None, None) => {}
            }
            resources.push(resource);
        }
    }
}
