//! Docker networks and volumes, and the configuration files written on the host.
//! Networks and volumes are implied by the services (and the edge) that use them;
//! `[networks.<name>]` only sets a network's settings (`internal`).

use std::collections::{BTreeMap, BTreeSet};

use stackctl_provider::{Address, ReplaceOrder, Resource, Value};

use super::{Lowering, DOCKER};
use crate::config::derived::file_host_path;
use crate::config::parse::Mount;
use crate::config::FileConfig;

/// The edge's volume for ACME certificates and account keys.
pub(super) const EDGE_ACME_VOLUME: &str = "edge-acme";

impl Lowering<'_> {
    /// The networks the edge joins: the ones `[edge]` names, or else every network of a
    /// routed service (so it can reach them), or else its own `edge` network.
    pub(super) fn edge_networks(&self) -> Vec<String> {
        if let Some(networks) = self
            .config
            .edge
            .as_ref()
            .and_then(|edge| edge.networks.clone())
        {
            return networks;
        }
        let mut joined: BTreeSet<String> = BTreeSet::new();
        for name in self.routed_services() {
            if let Some(service) = self.config.services.get(name) {
                joined.extend(service.network_names());
            }
        }
        if joined.is_empty() {
            joined.insert("edge".to_string());
        }
        joined.into_iter().collect()
    }

    pub(super) fn networks_and_volumes(
        &self,
        edge_networks: &[String],
        resources: &mut Vec<Resource>,
    ) {
        let mut networks: BTreeSet<String> = BTreeSet::new();
        let mut volumes: BTreeSet<String> = BTreeSet::new();
        for service in self.config.services.values() {
            networks.extend(service.network_names());
            for mount in service.volumes.iter().filter_map(|text| Mount::parse(text)) {
                if !mount.is_bind() {
                    volumes.insert(mount.source);
                }
            }
        }
        if self.config.edge.is_some() {
            networks.extend(edge_networks.iter().cloned());
            volumes.insert(EDGE_ACME_VOLUME.to_string());
        }
        for network in &networks {
            let mut resource = Resource::new(Address::new("network", network), DOCKER);
            // One name, one network: the old goes before the new is made (the provider
            // detaches its containers and attaches them to the new one).
            resource.replace_order = ReplaceOrder::DestroyBeforeCreate;
            // On a swarm, a network spans the nodes (overlay), and the edge and release
            // tasks, plain containers on the first manager, may join it (attachable).
            // Only there: a single host's networks keep the hash they always had.
            if self.swarm().is_some() {
                resource = resource.with("driver", "overlay").with("attachable", true);
            }
            resources.push(
                self.on_host(
                    resource
                        .with("name", format!("{}_{network}", self.stack))
                        .with(
                            "internal",
                            self.config
                                .networks
                                .get(network)
                                .is_some_and(|settings| settings.internal),
                        ),
                ),
            );
        }
        for volume in &volumes {
            resources.push(
                self.on_host(
                    Resource::new(Address::new("volume", volume), DOCKER)
                        .with("name", format!("{}_{volume}", self.stack)),
                ),
            );
        }
    }

    /// Lowers `[files]`; returns each file's path on the host → its address, so that a
    /// service bind-mounting one can depend on it.
    pub(super) fn files(&self, resources: &mut Vec<Resource>) -> BTreeMap<String, Address> {
        let mut file_paths: BTreeMap<String, Address> = BTreeMap::new();
        for (name, file) in &self.config.files {
            let path = file_host_path(self.config, file);
            let content = self.file_content(file);
            let address = Address::new("file", name);
            file_paths.insert(path.clone(), address.clone());
            let mut resource = Resource::new(address, DOCKER);
            // Only when set: a file without an owner keeps the hash it always had.
            if let Some(owner) = &file.owner {
                resource = resource.with("owner", owner.as_str());
            }
            resources.push(
                self.on_host(
                    resource
                        .with("path", path)
                        .with(
                            "mode",
                            format!("{:04o}", file.mode_bits(content.contains_secret())),
                        )
                        .with("content", content)
                        .with("temp_dir", format!("{}/.tmp", self.root)),
                ),
            );
        }
        file_paths
    }

    /// A `[files]` entry's content: inline (`${VAR}` resolved; a secret when a variable is
    /// one) or the file beside stack.toml it copies.
    pub(super) fn file_content(&self, file: &FileConfig) -> Value {
        match (&file.content, &file.source) {
            (Some(inline), _) => self.value(inline),
            (None, Some(source)) => {
                Value::Text(self.inputs.files.get(source).cloned().unwrap_or_default())
            }
            (None, None) => Value::Text(String::new()),
        }
    }
}
