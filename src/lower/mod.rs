//! Config → desired resources with dependency edges. Pure: everything read from disk
//! arrives in [`ExternalInputs`]; `${VAR}` is resolved here, and a value that used a
//! secret variable becomes a [`Secret`] from here on. The attribute names per kind are
//! the contract with the providers, written down in `docs/resources.md`.
//!
//! One file per group of kinds: [`cloud`] (droplets, SSH keys, firewalls, DNS),
//! [`host_objects`] (networks, volumes, files), [`images`], [`services`] and [`edge`]
//! (the Traefik container, its static file, routes and middlewares). This file holds
//! the entry point and what they share.

mod cloud;
mod edge;
mod host_objects;
mod images;
mod releases;
mod services;
mod swarm;
mod swarm_services;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use stackctl_provider::{Address, Reference, Resource, Secret, Value};

use crate::config::derived::target_droplet;
use crate::config::{Config, Environment, HostTarget, LoadedConfig};
use crate::context::ExternalInputs;

pub use edge::link_edge_to_static_config;
pub use swarm::CLUSTER as SWARM_CLUSTER;
pub use swarm_services::SWARM_SERVICE;

pub const DIGITALOCEAN: &str = "digitalocean";
pub const DOCKER: &str = "docker";
pub const TRAEFIK: &str = "traefik";
pub const SWARM: &str = "swarm";

/// Lowers a loaded stack. `salt` is the state's salt (secrets enter only as salted digests).
pub fn lower(loaded: &LoadedConfig, inputs: &ExternalInputs, salt: &str) -> Vec<Resource> {
    let lowering = Lowering {
        config: &loaded.config,
        environment: &loaded.environment,
        inputs,
        salt,
        stack: &loaded.config.stack.name,
        root: host_root(&loaded.config),
        base_directory: loaded.base_directory.to_string_lossy().to_string(),
    };
    let mut resources = Vec::new();
    lowering.ssh_keys(&mut resources);
    lowering.droplets(&mut resources);
    lowering.firewalls(&mut resources);
    lowering.dns_records(&mut resources);
    lowering.swarm_cluster_and_nodes(&mut resources);

    let edge_networks = lowering.edge_networks();
    lowering.networks_and_volumes(&edge_networks, &mut resources);
    let file_paths = lowering.files(&mut resources);
    let images = lowering.images(&mut resources);
    lowering.services(&images, &file_paths, &mut resources);
    if let Some(edge) = &loaded.config.edge {
        lowering.edge(edge, &edge_networks, &mut resources);
    }
    resources.sort_by(|left, right| left.address.cmp(&right.address));
    resources
}

pub use crate::config::derived::host_root;

/// True when the services run on this machine.
pub fn targets_local(config: &Config) -> bool {
    match &config.target {
        Some(target) => matches!(&target.host, Some(HostTarget::Local(_))),
        None => config.droplets.is_empty(),
    }
}

/// What every part of lowering reads: the config, how to resolve its strings, and the
/// names derived once from it.
struct Lowering<'a> {
    config: &'a Config,
    environment: &'a Environment,
    inputs: &'a ExternalInputs,
    salt: &'a str,
    stack: &'a str,
    root: String,
    base_directory: String,
}

impl Lowering<'_> {
    /// A config string with `${VAR}` resolved; a secret if any variable in it is one.
    fn value(&self, raw: &str) -> Value {
        let resolved = self.environment.interpolate(raw);
        if resolved.secret {
            Value::Secret(Secret::new(&resolved.text, self.salt))
        } else {
            Value::Text(resolved.text)
        }
    }

    /// A config string that must be plain text (a host name, a CIDR).
    fn text(&self, raw: &str) -> String {
        self.environment.interpolate(raw).text
    }

    /// Each config string of a list, resolved as plain text.
    fn resolved_texts(&self, raw: &[String]) -> Value {
        texts(&raw.iter().map(|part| self.text(part)).collect::<Vec<_>>())
    }

    /// A resource on the target host waits for the droplet that is the host, if any; on
    /// a swarm, also for the swarm (formed on that droplet, the first manager), so that
    /// what needs a swarm finds one and goes before it is dissolved.
    fn on_host(&self, resource: Resource) -> Resource {
        let resource = match target_droplet(self.config) {
            Some(droplet) => resource.depends_on(Address::new("droplet", droplet)),
            None => resource,
        };
        let on_a_swarm = self
            .config
            .target
            .as_ref()
            .is_some_and(|target| target.swarm.is_some());
        if on_a_swarm {
            resource.depends_on(Address::new("swarm", swarm::CLUSTER))
        } else {
            resource
        }
    }

    /// The services some route sends traffic to.
    fn routed_services(&self) -> BTreeSet<&str> {
        self.config
            .routes
            .values()
            .map(|route| route.service.as_str())
            .collect()
    }

    /// The path of a Traefik dynamic file on the host, e.g. `route-web.yml`.
    fn dynamic_file(&self, file_name: &str) -> String {
        format!("{}/traefik/dynamic/{file_name}", self.root)
    }

    /// Where the Traefik provider stages files before moving them into place.
    fn traefik_temp_dir(&self) -> String {
        format!("{}/traefik/.tmp", self.root)
    }
}

/// A value known only after another resource is applied (a droplet's IP, say).
fn unknown(kind: &str, name: &str, attribute: &str) -> Value {
    Value::Unknown(Reference {
        address: Address::new(kind, name),
        attribute: attribute.to_string(),
    })
}

fn texts(items: &[String]) -> Value {
    Value::List(items.iter().map(|item| Value::text(item.clone())).collect())
}

fn map(entries: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect(),
    )
}

/// A host port published by a container, as the Docker provider takes it.
fn published_port(host_ip: &str, host_port: u16, container_port: i64) -> Value {
    map([
        ("host_ip", Value::text(host_ip)),
        ("host_port", Value::Integer(i64::from(host_port))),
        ("container_port", Value::Integer(container_port)),
        ("protocol", Value::text("tcp")),
    ])
}

/// One mount of a container, as the Docker provider takes it.
fn container_mount(kind: &str, source: String, target: &str, read_only: bool) -> Value {
    map([
        ("kind", Value::text(kind)),
        ("source", Value::text(source)),
        ("target", Value::text(target)),
        ("read_only", Value::Bool(read_only)),
    ])
}

/// The networks a container joins, as the Docker provider takes them: the stack's
/// Docker network name → the container's aliases on it.
fn network_attachments(stack: &str, networks: &[String], alias: &str) -> Value {
    let attached: BTreeMap<String, Value> = networks
        .iter()
        .map(|network| {
            (
                format!("{stack}_{network}"),
                Value::List(vec![Value::text(alias)]),
            )
        })
        .collect();
    Value::Map(attached)
}
