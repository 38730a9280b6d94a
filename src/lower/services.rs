//! The stack's containers: what each runs, its environment, networks, mounts, limits
//! and health check, and — for a routed service — where the edge's backend file goes.

use std::collections::{BTreeMap, BTreeSet};

use stackctl_provider::{Address, Reference, ReplaceOrder, Resource, Value};

use super::images::ServiceImage;
use super::{container_mount, map, network_attachments, texts, Lowering, DOCKER};
use crate::config::hardening::tmpfs_mount;
use crate::config::parse::Mount;
use crate::config::{HealthConfig, PullPolicy, ServiceConfig};
use crate::context::resolve_path;

impl Lowering<'_> {
    pub(super) fn services(
        &self,
        images: &BTreeMap<String, ServiceImage>,
        file_paths: &BTreeMap<String, Address>,
        resources: &mut Vec<Resource>,
    ) {
        let routed = self.routed_services();
        for (name, service) in &self.config.services {
            let Some(image) = images.get(name) else {
                continue;
            };
            let container = self.service(name, service, image, file_paths, &routed);
            // A release task is a one-off container on a swarm too (on the first manager,
            // on the attachable overlays): it is made from the container's attributes.
            let mut resource = match self.swarm() {
                Some(swarm) => self.swarm_service(swarm, name, service, container.clone()),
                None => container.clone(),
            };
            if let Some(release) = &service.release {
                let task = self.release_task(name, release, &container);
                resource = resource.depends_on(task.address.clone());
                resources.push(self.on_host(task));
            }
            resources.push(self.on_host(resource));
        }
    }

    fn service(
        &self,
        name: &str,
        service: &ServiceConfig,
        image: &ServiceImage,
        file_paths: &BTreeMap<String, Address>,
        routed: &BTreeSet<&str>,
    ) -> Resource {
        let mut resource = Resource::new(Address::new("service", name), DOCKER)
            .with("container_name", format!("{}-{name}", self.stack))
            .with("image", image.value.clone())
            .depends_on(Address::new("image", &image.name));
        // An image that follows its registry: the service follows the digest pulled, so a
        // moved tag replaces the container (and runs its release task).
        if service.build.is_none() && PullPolicy::of(service.pull) == PullPolicy::Always {
            resource = resource.with(
                "image_digest",
                Value::Unknown(Reference {
                    address: Address::new("image", &image.name),
                    attribute: "digest".into(),
                }),
            );
        }
        if let Some(command) = &service.command {
            resource = resource.with("command", self.resolved_texts(command));
        }
        if let Some(entrypoint) = &service.entrypoint {
            resource = resource.with("entrypoint", self.resolved_texts(entrypoint));
        }
        let env: BTreeMap<String, Value> = service
            .env
            .iter()
            .map(|(key, raw)| (key.clone(), self.value(raw)))
            .collect();
        resource = resource.with("env", Value::Map(env));

        let networks = service.network_names();
        resource = resource.with("networks", network_attachments(self.stack, &networks, name));
        for network in &networks {
            resource = resource.depends_on(Address::new("network", network));
        }

        let (resource, stateful) = self.mounts(resource, service, file_paths);
        let mut resource = self.limits(resource, service);
        resource = hardened(
            resource,
            &Hardening {
                cap_add: service.added_capabilities(),
                privileged: service.privileged(),
                no_new_privileges: service.no_new_privileges(),
                pids_limit: service.pids_limit_or_default(),
                tmpfs: service.tmpfs.clone(),
                reason: service.security_reason().map(|reason| self.text(reason)),
            },
        );
        if let Some(health) = &service.health {
            resource = resource.with("health", self.health(health, service));
        }
        if routed.contains(name) {
            resource = resource.with("route_backend", self.route_backend(name));
        }
        for dependency in &service.depends_on {
            resource = resource.depends_on(self.service_address(dependency));
        }
        // A named volume cannot be shared by two containers of one database: the old
        // one stops before the new one starts.
        if stateful {
            resource.replace_order = ReplaceOrder::DestroyBeforeCreate;
        }
        resource
    }

    /// Adds `volumes` and `stateful` (true when a named volume is mounted), and a
    /// dependency on each file or volume mounted. Returns the resource and `stateful`.
    fn mounts(
        &self,
        mut resource: Resource,
        service: &ServiceConfig,
        file_paths: &BTreeMap<String, Address>,
    ) -> (Resource, bool) {
        let mut mounts = Vec::new();
        let mut stateful = false;
        for parsed in service.volumes.iter().filter_map(|text| Mount::parse(text)) {
            if let Some(file) = mounted_file(file_paths, &parsed.source) {
                resource = resource.depends_on(file);
            }
            if parsed.is_bind() {
                let absolute =
                    resolve_path(std::path::Path::new(&self.base_directory), &parsed.source)
                        .to_string_lossy()
                        .to_string();
                mounts.push(container_mount(
                    "bind",
                    absolute,
                    &parsed.target,
                    parsed.read_only,
                ));
            } else {
                stateful = true;
                resource = resource.depends_on(Address::new("volume", &parsed.source));
                let volume = format!("{}_{}", self.stack, parsed.source);
                mounts.push(container_mount(
                    "volume",
                    volume,
                    &parsed.target,
                    parsed.read_only,
                ));
            }
        }
        let resource = resource
            .with("volumes", Value::List(mounts))
            .with("stateful", stateful);
        (resource, stateful)
    }

    /// User, memory and CPU limits, restart policy, read-only root, how it stops; never
    /// host ports.
    fn limits(&self, mut resource: Resource, service: &ServiceConfig) -> Resource {
        if let Some(user) = &service.user {
            resource = resource.with("user", self.text(user));
        }
        if let Some(memory) = service.memory_bytes() {
            resource = resource.with("memory", memory);
        }
        if let Some(cpus) = service.cpus {
            resource = resource.with("cpus", format!("{cpus}"));
        }
        resource = resource
            .with(
                "restart",
                service
                    .restart
                    .map_or("unless-stopped", |policy| policy.as_str()),
            )
            .with("read_only", service.read_only)
            .with("ports", Value::List(Vec::new()));
        if let Some(port) = service.port {
            resource = resource.with("port", i64::from(port));
        }
        // Only when written: absent means Docker's default (10 s) and no drain, so stacks
        // applied before these settings existed plan no change.
        if let Some(seconds) = service.stop_grace_seconds() {
            resource = resource.with("stop_grace_seconds", seconds);
        }
        if let Some(milliseconds) = service.drain_milliseconds() {
            resource = resource.with("drain_milliseconds", milliseconds);
        }
        resource
    }

    /// Docker's health check: the command written, or an HTTP GET of `http` on the
    /// service's port with whichever of curl and wget the image has.
    fn health(&self, health: &HealthConfig, service: &ServiceConfig) -> Value {
        let test = match (&health.command, &health.http) {
            (Some(command), _) => command.iter().map(|part| self.text(part)).collect(),
            (None, Some(path)) => {
                let url = format!(
                    "http://127.0.0.1:{}{}",
                    service.port.unwrap_or(80),
                    self.text(path)
                );
                vec![
                    "CMD-SHELL".to_string(),
                    format!("curl -fsS {url} >/dev/null || wget -qO- {url} >/dev/null || exit 1"),
                ]
            }
            (None, None) => Vec::new(),
        };
        map([
            ("test", texts(&test)),
            (
                "interval_seconds",
                Value::Integer(health.interval_seconds()),
            ),
            ("timeout_seconds", Value::Integer(health.timeout_seconds())),
            (
                "retries",
                Value::Integer(i64::from(health.retries.unwrap_or(10))),
            ),
            (
                "start_period_seconds",
                Value::Integer(health.start_period_seconds()),
            ),
        ])
    }

    /// Where the Traefik backend file of a routed service goes; the Docker provider
    /// rewrites it with the container's address when the container changes, and writes or
    /// removes it in place when a route comes or goes. Nothing here depends on an edge
    /// setting (the published admin port reaches the provider as an option), so changing
    /// `[edge]` replaces no routed container.
    fn route_backend(&self, name: &str) -> Value {
        map([
            (
                "file",
                Value::text(self.dynamic_file(&format!("backend-{name}.yml"))),
            ),
            ("temp_dir", Value::text(self.traefik_temp_dir())),
            ("service", Value::text(name)),
        ])
    }
}

/// How locked down a container is: the hardened default with a service's exceptions.
pub(super) struct Hardening {
    pub cap_add: Vec<String>,
    pub privileged: bool,
    pub no_new_privileges: bool,
    pub pids_limit: i64,
    /// As written: `/path` or `/path:options`.
    pub tmpfs: Vec<String>,
    /// Why the exceptions are needed; shown in the plan beside them.
    pub reason: Option<String>,
}

/// Adds the hardening attributes. Every capability is dropped and the needed ones added
/// back, so that an image cannot widen what the container may do.
pub(super) fn hardened(resource: Resource, hardening: &Hardening) -> Resource {
    let tmpfs: BTreeMap<String, Value> = hardening
        .tmpfs
        .iter()
        .filter_map(|text| tmpfs_mount(text).ok())
        .map(|(path, options)| (path, Value::Text(options)))
        .collect();
    let mut resource = resource
        .with("cap_drop", texts(&["ALL".to_string()]))
        .with("cap_add", texts(&hardening.cap_add))
        .with("no_new_privileges", hardening.no_new_privileges)
        .with("privileged", hardening.privileged)
        .with("pids_limit", hardening.pids_limit)
        .with("tmpfs", Value::Map(tmpfs));
    if let Some(reason) = &hardening.reason {
        resource = resource.with("security_reason", reason.clone());
    }
    resource
}

/// The file resource a bind source is, or lies inside of (a directory of files).
fn mounted_file(file_paths: &BTreeMap<String, Address>, source: &str) -> Option<Address> {
    file_paths
        .iter()
        .find(|(path, _)| {
            path.as_str() == source
                || path.starts_with(&format!("{}/", source.trim_end_matches('/')))
        })
        .map(|(_, address)| address.clone())
}
