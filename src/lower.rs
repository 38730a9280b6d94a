//! Config → desired resources with dependency edges. Pure: everything read from disk
//! arrives in [`ExternalInputs`]; `${VAR}` is resolved here, and a value that used a
//! secret variable becomes a [`Secret`] from here on. The attribute names per kind are
//! the contract with the providers, written down in `docs/resources.md`.

use std::collections::{BTreeMap, BTreeSet};

use stackctl_provider::{Address, Reference, ReplaceOrder, Resource, Secret, Value};

use crate::config::validate::{parse_memory, parse_volume, target_droplet};
use crate::config::{
    CertificateAuthority, Config, Environment, HostTarget, LoadedConfig, MiddlewareConfig,
    ServiceConfig, TlsVersion,
};
use crate::context::{resolve_path, ExternalInputs};

pub const DIGITALOCEAN: &str = "digitalocean";
pub const DOCKER: &str = "docker";
pub const TRAEFIK: &str = "traefik";

const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// The container-side ports of the edge; the host ports come from `[edge]`.
const EDGE_HTTP_PORT: i64 = 80;
const EDGE_HTTPS_PORT: i64 = 443;
const EDGE_ADMIN_PORT: i64 = 8080;

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
    lowering.cloud(&mut resources);
    lowering.host(&mut resources);
    resources.sort_by(|left, right| left.address.cmp(&right.address));
    resources
}

/// Ties the edge container to its static Traefik file, after providers rendered it:
/// Traefik reads the static file only when it starts, so a change to it must replace
/// the edge. (Dynamic files are reloaded live and need no such link.)
pub fn link_edge_to_static_config(resources: &mut [Resource]) {
    let content = resources
        .iter()
        .find(|resource| resource.address == Address::new("file", "traefik-static"))
        .and_then(|resource| resource.attributes.get("content"))
        .map(|content| stackctl_provider::sha256_hex(content.to_json().to_string().as_bytes()));
    if let Some(hash) = content {
        if let Some(edge) = resources
            .iter_mut()
            .find(|resource| resource.address == Address::new("service", "edge"))
        {
            edge.attributes
                .insert("config_hash".to_string(), Value::Text(hash));
        }
    }
}

/// The directory on the host holding the stack's files and its lock.
pub fn host_root(config: &Config) -> String {
    config
        .target
        .as_ref()
        .and_then(|target| target.root.clone())
        .unwrap_or_else(|| format!("/var/lib/stackctl/{}", config.stack.name))
}

/// True when the services run on this machine.
pub fn targets_local(config: &Config) -> bool {
    match &config.target {
        Some(target) => matches!(&target.host, Some(HostTarget::Local(_))),
        None => config.droplets.is_empty(),
    }
}

struct Lowering<'a> {
    config: &'a Config,
    environment: &'a Environment,
    inputs: &'a ExternalInputs,
    salt: &'a str,
    stack: &'a str,
    root: String,
    base_directory: String,
}

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

    fn host_dependency(&self) -> Option<Address> {
        target_droplet(self.config).map(|droplet| Address::new("droplet", droplet))
    }

    fn cloud(&self, resources: &mut Vec<Resource>) {
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
        for (name, droplet) in &self.config.droplets {
            let mut tags: BTreeSet<String> =
                droplet.tags.iter().map(|tag| self.text(tag)).collect();
            tags.insert(format!("stackctl:{}", self.stack));
            let mut resource = Resource::new(Address::new("droplet", name), DIGITALOCEAN)
                .with("name", name.clone())
                .with("region", self.text(&droplet.region))
                .with("size", self.text(&droplet.size))
                .with("image", self.text(&droplet.image))
                .with(
                    "ssh_keys",
                    Value::List(
                        droplet
                            .ssh_keys
                            .iter()
                            .map(|key| unknown("ssh_key", key, "fingerprint"))
                            .collect(),
                    ),
                )
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
            resources.push(resource);
        }
        for (name, firewall) in &self.config.firewalls {
            let everyone = vec!["0.0.0.0/0".to_string(), "::/0".to_string()];
            // One rule as DigitalOcean takes it: the peers are `sources` inbound and
            // `destinations` outbound; absent ports mean all, absent peers everyone.
            let rule = |protocol: &str,
                        ports: &Option<String>,
                        peers_key: &'static str,
                        peers: &Option<Vec<String>>| {
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
            };
            let inbound = firewall
                .inbound
                .iter()
                .map(|inbound| {
                    rule(
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
                        rule(
                            outbound.protocol.as_str(),
                            &outbound.ports,
                            "destinations",
                            &outbound.destinations,
                        )
                    })
                    .collect(),
                None => ["tcp", "udp", "icmp"]
                    .into_iter()
                    .map(|protocol| rule(protocol, &None, "destinations", &None))
                    .collect(),
            };
            let mut resource = Resource::new(Address::new("firewall", name), DIGITALOCEAN)
                .with("name", format!("{}-{name}", self.stack))
                .with("inbound_rules", Value::List(inbound))
                .with("outbound_rules", Value::List(outbound))
                .with(
                    "droplet_ids",
                    Value::List(
                        firewall
                            .droplets
                            .iter()
                            .map(|droplet| unknown("droplet", droplet, "id"))
                            .collect(),
                    ),
                );
            for droplet in &firewall.droplets {
                resource = resource.depends_on(Address::new("droplet", droplet));
            }
            resources.push(resource);
        }
        if let Some(dns) = &self.config.dns {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for record in &dns.records {
                *counts.entry(record.name.as_str()).or_default() += 1;
            }
            for record in &dns.records {
                let base = if record.name == "@" {
                    "apex".to_string()
                } else {
                    record.name.replace('.', "-")
                };
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

    fn host(&self, resources: &mut Vec<Resource>) {
        let on_host = |resource: Resource| match self.host_dependency() {
            Some(droplet) => resource.depends_on(droplet),
            None => resource,
        };
        let routed: BTreeSet<&str> = self
            .config
            .routes
            .values()
            .map(|route| route.service.as_str())
            .collect();
        let service_networks = |service: &ServiceConfig| {
            service
                .networks
                .clone()
                .unwrap_or_else(|| vec!["backend".to_string()])
        };

        // Networks and volumes are implied by the services (and the edge) that use them.
        let mut networks: BTreeSet<String> = BTreeSet::new();
        let mut volumes: BTreeSet<String> = BTreeSet::new();
        for service in self.config.services.values() {
            networks.extend(service_networks(service));
            for volume in &service.volumes {
                if let Some((source, _, _)) = parse_volume(volume) {
                    if !is_bind_source(&source) {
                        volumes.insert(source);
                    }
                }
            }
        }
        let edge_networks: Vec<String> = match self
            .config
            .edge
            .as_ref()
            .and_then(|edge| edge.networks.clone())
        {
            Some(networks) => networks,
            None => {
                let mut joined: BTreeSet<String> = BTreeSet::new();
                for name in &routed {
                    if let Some(service) = self.config.services.get(*name) {
                        joined.extend(service_networks(service));
                    }
                }
                if joined.is_empty() {
                    joined.insert("edge".to_string());
                }
                joined.into_iter().collect()
            }
        };
        if self.config.edge.is_some() {
            networks.extend(edge_networks.iter().cloned());
            volumes.insert("edge-acme".to_string());
        }
        for network in &networks {
            resources.push(on_host(
                Resource::new(Address::new("network", network), DOCKER)
                    .with("name", format!("{}_{network}", self.stack))
                    .with("internal", false),
            ));
        }
        for volume in &volumes {
            resources.push(on_host(
                Resource::new(Address::new("volume", volume), DOCKER)
                    .with("name", format!("{}_{volume}", self.stack)),
            ));
        }

        // Files first: services that bind-mount one depend on it.
        let mut file_paths: BTreeMap<String, Address> = BTreeMap::new();
        for (name, file) in &self.config.files {
            let path = if file.path.starts_with('/') {
                file.path.clone()
            } else {
                format!("{}/files/{}", self.root, file.path)
            };
            let content = match (&file.content, &file.source) {
                (Some(inline), _) => self.value(inline),
                (None, Some(source)) => {
                    Value::Text(self.inputs.files.get(source).cloned().unwrap_or_default())
                }
                (None, None) => Value::Text(String::new()),
            };
            let mode = file
                .mode
                .as_deref()
                .and_then(crate::config::validate::parse_mode)
                .unwrap_or(0o644);
            let address = Address::new("file", name);
            file_paths.insert(path.clone(), address.clone());
            resources.push(on_host(
                Resource::new(address, DOCKER)
                    .with("path", path)
                    .with("content", content)
                    .with("mode", format!("{mode:04o}"))
                    .with("temp_dir", format!("{}/.tmp", self.root)),
            ));
        }

        // One image per distinct build (several services may share a context) or reference.
        let mut image_of_service: BTreeMap<String, String> = BTreeMap::new();
        let mut images: BTreeMap<String, Resource> = BTreeMap::new();
        // Grouping key → the image resource's name: a lookup, not a scan of every image
        // per service (which made lowering quadratic in the number of services).
        let mut image_by_key: BTreeMap<String, String> = BTreeMap::new();
        for (name, service) in &self.config.services {
            let key = match (&service.build, &service.image) {
                (Some(context), _) => format!(
                    "build:{context}:{}",
                    service.dockerfile.as_deref().unwrap_or("Dockerfile")
                ),
                (None, Some(reference)) => format!("image:{}", self.text(reference)),
                (None, None) => continue,
            };
            let existing = image_by_key.get(&key).cloned();
            let image_name = match existing {
                Some(image_name) => image_name,
                None => {
                    let mut image =
                        Resource::new(Address::new("image", name), DOCKER).with("key", key.clone());
                    match (&service.build, &service.image) {
                        (Some(context), _) => {
                            let hash = self
                                .inputs
                                .context_hashes
                                .get(context)
                                .cloned()
                                .unwrap_or_default();
                            let short = hash
                                .trim_start_matches("sha256:")
                                .chars()
                                .take(12)
                                .collect::<String>();
                            image = image
                                .with("tag", format!("{}/{name}:{short}", self.stack))
                                .with("context", clean_relative(context))
                                .with("context_hash", hash)
                                .with(
                                    "dockerfile",
                                    service
                                        .dockerfile
                                        .clone()
                                        .unwrap_or_else(|| "Dockerfile".into()),
                                );
                        }
                        (None, Some(reference)) => {
                            image = image
                                .with("reference", self.text(reference))
                                .with("pull", service.pull.unwrap_or(true));
                        }
                        (None, None) => {}
                    }
                    images.insert(name.clone(), image);
                    image_by_key.insert(key, name.clone());
                    name.clone()
                }
            };
            image_of_service.insert(name.clone(), image_name);
        }
        if let Some(edge) = &self.config.edge {
            images.insert(
                "edge".to_string(),
                Resource::new(Address::new("image", "edge"), DOCKER)
                    .with("key", format!("image:{}", self.text(&edge.image)))
                    .with("reference", self.text(&edge.image))
                    .with("pull", edge.pull.unwrap_or(true)),
            );
        }
        for (_, mut image) in images {
            // The grouping key was only for finding shared builds.
            image.attributes.remove("key");
            resources.push(on_host(image));
        }
        // What a service runs: its image resource's tag (a build) or reference, looked up
        // by name (the first resource with that address, as a scan would find).
        let mut image_values: BTreeMap<&str, Option<&Value>> = BTreeMap::new();
        for resource in resources.iter() {
            if resource.address.kind() == "image" {
                image_values
                    .entry(resource.address.name())
                    .or_insert_with(|| {
                        resource
                            .attributes
                            .get("tag")
                            .or_else(|| resource.attributes.get("reference"))
                    });
            }
        }
        let image_values: BTreeMap<String, Value> = image_values
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_string(), value?.clone())))
            .collect();

        for (name, service) in &self.config.services {
            let Some(image_name) = image_of_service.get(name) else {
                continue;
            };
            let image = image_values.get(image_name).cloned().unwrap_or(Value::Null);
            let mut resource = Resource::new(Address::new("service", name), DOCKER)
                .with("container_name", format!("{}-{name}", self.stack))
                .with("image", image)
                .depends_on(Address::new("image", image_name));
            if let Some(command) = &service.command {
                resource = resource.with(
                    "command",
                    texts(
                        &command
                            .iter()
                            .map(|part| self.text(part))
                            .collect::<Vec<_>>(),
                    ),
                );
            }
            if let Some(entrypoint) = &service.entrypoint {
                resource = resource.with(
                    "entrypoint",
                    texts(
                        &entrypoint
                            .iter()
                            .map(|part| self.text(part))
                            .collect::<Vec<_>>(),
                    ),
                );
            }
            let env: BTreeMap<String, Value> = service
                .env
                .iter()
                .map(|(key, raw)| (key.clone(), self.value(raw)))
                .collect();
            resource = resource.with("env", Value::Map(env));
            let mut attached = BTreeMap::new();
            for network in service_networks(service) {
                attached.insert(
                    format!("{}_{network}", self.stack),
                    Value::List(vec![Value::text(name.clone())]),
                );
                resource = resource.depends_on(Address::new("network", &network));
            }
            resource = resource.with("networks", Value::Map(attached));
            let mut mounts = Vec::new();
            let mut stateful = false;
            for volume in &service.volumes {
                let Some((source, target, read_only)) = parse_volume(volume) else {
                    continue;
                };
                if let Some(file) = file_paths
                    .iter()
                    .find(|(path, _)| {
                        path.as_str() == source
                            || path.starts_with(&format!("{}/", source.trim_end_matches('/')))
                    })
                    .map(|(_, address)| address.clone())
                {
                    resource = resource.depends_on(file);
                }
                if is_bind_source(&source) {
                    let absolute =
                        resolve_path(std::path::Path::new(&self.base_directory), &source)
                            .to_string_lossy()
                            .to_string();
                    mounts.push(map([
                        ("kind", Value::text("bind")),
                        ("source", Value::text(absolute)),
                        ("target", Value::text(target)),
                        ("read_only", Value::Bool(read_only)),
                    ]));
                } else {
                    stateful = true;
                    resource = resource.depends_on(Address::new("volume", &source));
                    mounts.push(map([
                        ("kind", Value::text("volume")),
                        ("source", Value::text(format!("{}_{source}", self.stack))),
                        ("target", Value::text(target)),
                        ("read_only", Value::Bool(read_only)),
                    ]));
                }
            }
            resource = resource
                .with("volumes", Value::List(mounts))
                .with("stateful", stateful);
            if let Some(user) = &service.user {
                resource = resource.with("user", self.text(user));
            }
            if let Some(memory) = service.memory.as_deref().and_then(parse_memory) {
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
            if let Some(health) = &service.health {
                let test = match (&health.command, &health.http) {
                    (Some(command), _) => command.iter().map(|part| self.text(part)).collect(),
                    (None, Some(path)) => {
                        let url = format!(
                            "http://127.0.0.1:{}{}",
                            service.port.unwrap_or(80),
                            self.text(path)
                        );
                        vec!["CMD-SHELL".to_string(), format!("curl -fsS {url} >/dev/null || wget -qO- {url} >/dev/null || exit 1")]
                    }
                    (None, None) => Vec::new(),
                };
                let seconds = |text: &Option<String>, default: i64| {
                    text.as_deref()
                        .and_then(|text| humantime::parse_duration(text).ok())
                        .map_or(default, |duration| duration.as_secs() as i64)
                };
                resource = resource.with(
                    "health",
                    map([
                        ("test", texts(&test)),
                        (
                            "interval_seconds",
                            Value::Integer(seconds(&health.interval, 5)),
                        ),
                        (
                            "timeout_seconds",
                            Value::Integer(seconds(&health.timeout, 3)),
                        ),
                        (
                            "retries",
                            Value::Integer(i64::from(health.retries.unwrap_or(10))),
                        ),
                        (
                            "start_period_seconds",
                            Value::Integer(seconds(&health.start_period, 0)),
                        ),
                    ]),
                );
            }
            if routed.contains(name.as_str()) {
                let mut backend = vec![
                    (
                        "file",
                        Value::text(format!("{}/traefik/dynamic/backend-{name}.yml", self.root)),
                    ),
                    (
                        "temp_dir",
                        Value::text(format!("{}/traefik/.tmp", self.root)),
                    ),
                    ("service", Value::text(name.clone())),
                ];
                // With Traefik's API reachable on the host, a swap waits until Traefik
                // serves the new container instead of sleeping a fixed time.
                if let Some(admin_port) = self.config.edge.as_ref().and_then(|edge| edge.admin_port)
                {
                    backend.push((
                        "admin_url",
                        Value::text(format!("http://127.0.0.1:{admin_port}")),
                    ));
                }
                resource = resource.with("route_backend", map(backend));
            }
            for dependency in &service.depends_on {
                resource = resource.depends_on(Address::new("service", dependency));
            }
            if stateful {
                resource.replace_order = ReplaceOrder::DestroyBeforeCreate;
            }
            resources.push(on_host(resource));
        }
        if let Some(edge) = &self.config.edge {
            self.edge(edge, &edge_networks, resources);
        }
    }

    fn edge(
        &self,
        edge: &crate::config::EdgeConfig,
        networks: &[String],
        resources: &mut Vec<Resource>,
    ) {
        let on_host = |resource: Resource| match self.host_dependency() {
            Some(droplet) => resource.depends_on(droplet),
            None => resource,
        };
        let temp_dir = format!("{}/traefik/.tmp", self.root);
        let mut static_file = Resource::new(Address::new("file", "traefik-static"), TRAEFIK)
            .with("path", format!("{}/traefik/traefik.yml", self.root))
            .with("temp_dir", temp_dir.clone())
            .with("dynamic_dir", "/etc/traefik/dynamic")
            .with("http_port", i64::from(edge.http_port))
            .with("https_port", i64::from(edge.https_port))
            .with("redirect_https", edge.redirect_https)
            .with(
                "min_tls_version",
                match edge.min_tls_version {
                    Some(TlsVersion::Tls13) => "VersionTLS13",
                    _ => "VersionTLS12",
                },
            )
            .with("dashboard", edge.dashboard)
            .with("access_log", edge.access_log)
            .with("admin_port", EDGE_ADMIN_PORT);
        if let Some(tls) = &edge.tls {
            let staging = tls.ca != Some(CertificateAuthority::Production);
            static_file = static_file.with(
                "resolver",
                map([
                    ("name", Value::text(self.text(&tls.resolver))),
                    ("email", Value::text(self.text(&tls.email))),
                    (
                        "ca_server",
                        Value::text(if staging {
                            LETS_ENCRYPT_STAGING
                        } else {
                            LETS_ENCRYPT_PRODUCTION
                        }),
                    ),
                    ("staging", Value::Bool(staging)),
                    ("storage", Value::text("/acme/acme.json")),
                ]),
            );
        }
        resources.push(on_host(static_file));

        let bind = edge
            .bind_address
            .clone()
            .unwrap_or_else(|| "0.0.0.0".to_string());
        let port = |host_ip: &str, host_port: u16, container_port: i64| {
            map([
                ("host_ip", Value::text(host_ip)),
                ("host_port", Value::Integer(i64::from(host_port))),
                ("container_port", Value::Integer(container_port)),
                ("protocol", Value::text("tcp")),
            ])
        };
        let mut ports = vec![
            port(&bind, edge.http_port, EDGE_HTTP_PORT),
            port(&bind, edge.https_port, EDGE_HTTPS_PORT),
        ];
        if let Some(admin_port) = edge.admin_port {
            ports.push(port("127.0.0.1", admin_port, EDGE_ADMIN_PORT));
        }
        let mut attached = BTreeMap::new();
        let mut service = Resource::new(Address::new("service", "edge"), DOCKER)
            .with("container_name", format!("{}-edge", self.stack))
            .with("image", self.text(&edge.image))
            .with(
                "command",
                texts(&["--configfile=/etc/traefik/traefik.yml".to_string()]),
            )
            .with("env", Value::Map(BTreeMap::new()))
            .with("ports", Value::List(ports))
            .with(
                "volumes",
                Value::List(vec![
                    map([
                        ("kind", Value::text("bind")),
                        ("source", Value::text(format!("{}/traefik", self.root))),
                        ("target", Value::text("/etc/traefik")),
                        ("read_only", Value::Bool(true)),
                    ]),
                    map([
                        ("kind", Value::text("volume")),
                        ("source", Value::text(format!("{}_edge-acme", self.stack))),
                        ("target", Value::text("/acme")),
                        ("read_only", Value::Bool(false)),
                    ]),
                ]),
            )
            .with("restart", "unless-stopped")
            .with("read_only", false)
            .with("stateful", true)
            .depends_on(Address::new("image", "edge"))
            .depends_on(Address::new("file", "traefik-static"))
            .depends_on(Address::new("volume", "edge-acme"));
        for network in networks {
            attached.insert(
                format!("{}_{network}", self.stack),
                Value::List(vec![Value::text("edge")]),
            );
            service = service.depends_on(Address::new("network", network));
        }
        service = service.with("networks", Value::Map(attached));
        // Two Traefiks cannot hold ports 80 and 443 at once.
        service.replace_order = ReplaceOrder::DestroyBeforeCreate;
        resources.push(on_host(service));

        for (name, middleware) in &self.config.middlewares {
            let (type_name, settings) = self.middleware_settings(middleware);
            let mut resource = Resource::new(Address::new("middleware", name), TRAEFIK)
                .with("type", type_name)
                .with("settings", settings)
                .with(
                    "path",
                    format!("{}/traefik/dynamic/middleware-{name}.yml", self.root),
                )
                .with("temp_dir", temp_dir.clone());
            if let MiddlewareConfig::Chain { middlewares } = middleware {
                for member in middlewares {
                    resource = resource.depends_on(Address::new("middleware", member));
                }
            }
            resources.push(on_host(resource));
        }
        for (name, route) in &self.config.routes {
            let rule = match (&route.rule, &route.host) {
                (Some(rule), _) => self.text(rule),
                (None, Some(host)) => {
                    let mut rule = format!("Host(`{}`)", self.text(host));
                    if let Some(prefix) = &route.path_prefix {
                        rule.push_str(&format!(" && PathPrefix(`{}`)", self.text(prefix)));
                    }
                    rule
                }
                (None, None) => String::new(),
            };
            let mut resource = Resource::new(Address::new("route", name), TRAEFIK)
                .with("rule", rule)
                .with("service", route.service.clone())
                .with("middlewares", texts(&route.middlewares))
                .with("entrypoints", texts(&["websecure".to_string()]))
                .with(
                    "path",
                    format!("{}/traefik/dynamic/route-{name}.yml", self.root),
                )
                .with("temp_dir", temp_dir.clone())
                .depends_on(Address::new("service", &route.service));
            if let Some(priority) = route.priority {
                resource = resource.with("priority", priority);
            }
            if let Some(tls) = &edge.tls {
                resource = resource.with("tls_resolver", self.text(&tls.resolver));
            }
            for middleware in &route.middlewares {
                resource = resource.depends_on(Address::new("middleware", middleware));
            }
            resources.push(on_host(resource));
        }
    }

    fn middleware_settings(&self, middleware: &MiddlewareConfig) -> (&'static str, Value) {
        let settings = match middleware {
            MiddlewareConfig::RedirectHttps { permanent } => {
                map([("permanent", Value::Bool(*permanent))])
            }
            MiddlewareConfig::Headers {
                hsts_seconds,
                hsts_include_subdomains,
                hsts_preload,
                content_type_nosniff,
                frame_deny,
                referrer_policy,
                remove_server_headers,
                custom_response_headers,
            } => {
                // The Traefik provider's setting names (providers/traefik/README.md).
                let removed: Vec<String> = if *remove_server_headers {
                    vec!["Server".to_string(), "X-Powered-By".to_string()]
                } else {
                    Vec::new()
                };
                let mut entries = vec![
                    ("sts_seconds", Value::Integer(*hsts_seconds as i64)),
                    (
                        "sts_include_subdomains",
                        Value::Bool(*hsts_include_subdomains),
                    ),
                    ("sts_preload", Value::Bool(*hsts_preload)),
                    ("content_type_nosniff", Value::Bool(*content_type_nosniff)),
                    ("frame_deny", Value::Bool(*frame_deny)),
                    ("remove_headers", texts(&removed)),
                    (
                        "custom_response_headers",
                        Value::Map(
                            custom_response_headers
                                .iter()
                                .map(|(key, value)| (key.clone(), self.value(value)))
                                .collect(),
                        ),
                    ),
                ];
                entries.push((
                    "referrer_policy",
                    Value::text(
                        referrer_policy
                            .as_deref()
                            .map(|policy| self.text(policy))
                            .unwrap_or_default(),
                    ),
                ));
                map(entries)
            }
            MiddlewareConfig::RateLimit {
                average,
                burst,
                period,
            } => {
                let mut entries = vec![("average", Value::Integer(*average as i64))];
                if let Some(burst) = burst {
                    entries.push(("burst", Value::Integer(*burst as i64)));
                }
                entries.push((
                    "period",
                    Value::text(period.clone().unwrap_or_else(|| "1s".into())),
                ));
                map(entries)
            }
            MiddlewareConfig::BasicAuth { users, realm } => {
                let users = users
                    .iter()
                    .map(|(user, password)| {
                        let resolved = self.environment.interpolate(password);
                        // A password is a secret whatever its variable is called.
                        (
                            self.text(user),
                            Value::Secret(Secret::new(&resolved.text, self.salt)),
                        )
                    })
                    .collect();
                let mut entries = vec![("users", Value::Map(users))];
                if let Some(realm) = realm {
                    entries.push(("realm", Value::text(self.text(realm))));
                }
                map(entries)
            }
            MiddlewareConfig::IpAllowList { source_range } => map([(
                "source_range",
                texts(
                    &source_range
                        .iter()
                        .map(|range| self.text(range))
                        .collect::<Vec<_>>(),
                ),
            )]),
            MiddlewareConfig::StripPrefix { prefixes } => map([("prefixes", texts(prefixes))]),
            MiddlewareConfig::Chain { middlewares } => map([("middlewares", texts(middlewares))]),
        };
        (middleware.type_name(), settings)
    }
}

/// A build context as written, relative to the stack file (so moving the checkout does
/// not change hashes): `./apps/api/` → `apps/api`.
fn clean_relative(path: &str) -> String {
    let trimmed = path.trim_start_matches("./").trim_end_matches('/');
    if trimmed.is_empty() {
        ".".to_string()
    } else {
        trimmed.to_string()
    }
}

fn is_bind_source(source: &str) -> bool {
    source.starts_with('/') || source.starts_with('.') || source.starts_with('~')
}
