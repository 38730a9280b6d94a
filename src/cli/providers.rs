//! The one place that names the concrete providers and builds them from the stack.

use std::collections::BTreeMap;
use std::sync::Arc;

use stackctl_digitalocean::DigitalOceanProvider;
use stackctl_docker::swarm::{NodeConnections, SwarmProvider};
use stackctl_docker::{DockerOptions, DockerProvider};
use std::path::{Path, PathBuf};

use stackctl_host::ssh_config::{self, SshConfigHost};
use stackctl_host::{HostConnector, SshOptions, Target};
use stackctl_provider::Provider;
use stackctl_traefik::TraefikProvider;

use super::target_host::ConnectedHost;
use crate::apply::ProviderSet;
use crate::config::{HostTarget, LoadedConfig};
use crate::lower::{host_root, targets_local};
use crate::session::{BackendFactory, Backends, SessionError};

/// The CLI's providers: Docker and Traefik on the target host, DigitalOcean in the cloud.
#[derive(Clone, Debug, Default)]
pub struct ProviderOptions {
    /// `--accept-new-host-key`.
    pub accept_new_host_key: bool,
    /// `--lock-timeout`: how long to wait for the host lock held by another run.
    pub lock_timeout: std::time::Duration,
    /// The ssh config file consulted for a host target (`~/.ssh/config`, or
    /// `STACKCTL_SSH_CONFIG`).
    pub ssh_config: Option<std::path::PathBuf>,
}

impl BackendFactory for ProviderOptions {
    fn build(
        &self,
        loaded: &LoadedConfig,
        pinned_host_keys: &BTreeMap<String, String>,
        recorded_swarm_manager: Option<&str>,
    ) -> Result<Backends, SessionError> {
        build(loaded, self, pinned_host_keys, recorded_swarm_manager)
    }
}

/// Builds the providers of a run around one shared host connection. A swarm that state
/// records but stack.toml no longer has still gets its provider (reached at its
/// recorded first manager), so that the plan can dissolve it.
pub fn build(
    loaded: &LoadedConfig,
    options: &ProviderOptions,
    pinned_host_keys: &BTreeMap<String, String>,
    recorded_swarm_manager: Option<&str>,
) -> Result<Backends, SessionError> {
    let config = &loaded.config;
    let stack = config.stack.name.clone();
    let key_name = host_key_name(loaded);
    let pinned = key_name
        .as_ref()
        .and_then(|name| pinned_host_keys.get(name).cloned());
    let ssh = |address: String, port: u16, user: String| {
        let mut ssh = SshOptions::new(address, port, user);
        if let Some(identity) = config
            .target
            .as_ref()
            .and_then(|target| target.identity_file.as_ref())
        {
            ssh.identity_files = vec![crate::context::resolve_path(
                &loaded.base_directory,
                identity,
            )];
        }
        if let Some(known_hosts) = config
            .target
            .as_ref()
            .and_then(|target| target.known_hosts.as_ref())
        {
            ssh.known_hosts = Some(crate::context::resolve_path(
                &loaded.base_directory,
                known_hosts,
            ));
        }
        ssh.pinned_fingerprint = pinned.clone();
        ssh.accept_new_host_key = options.accept_new_host_key;
        ssh
    };
    let user = config
        .target
        .as_ref()
        .and_then(|target| target.user.clone())
        .unwrap_or_else(|| "root".to_string());
    let target = match (
        &config.target,
        crate::config::validate::target_droplet(config),
    ) {
        (Some(target), _) if matches!(target.host, Some(HostTarget::Remote(_))) => {
            match &target.host {
                Some(HostTarget::Remote(remote)) => {
                    let from_file = options
                        .ssh_config
                        .as_deref()
                        .and_then(|path| ssh_config_host(path, &remote.address));
                    let from_file = from_file.unwrap_or_default();
                    let explicit_user = remote.user.clone().or_else(|| target.user.clone());
                    let mut ssh_options = ssh(
                        from_file
                            .host_name
                            .clone()
                            .unwrap_or_else(|| remote.address.clone()),
                        remote.port.or(from_file.port).unwrap_or(22),
                        explicit_user
                            .or_else(|| from_file.user.clone())
                            .unwrap_or_else(|| user.clone()),
                    );
                    if target.identity_file.is_none() && !from_file.identity_files.is_empty() {
                        ssh_options.identity_files = from_file.identity_files.clone();
                    }
                    ssh_options.jump = from_file.proxy_jump.as_deref().map(|hop| {
                        Box::new(jump_options(
                            hop,
                            &ssh_options,
                            options.ssh_config.as_deref(),
                        ))
                    });
                    Target::Ssh(ssh_options)
                }
                _ => Target::Local,
            }
        }
        (_, Some(droplet)) => Target::Droplet {
            droplet: droplet.to_string(),
            options: ssh(
                String::new(),
                config
                    .target
                    .as_ref()
                    .and_then(|target| target.port)
                    .unwrap_or(22),
                user,
            ),
        },
        _ if targets_local(config) => Target::Local,
        _ => Target::Local,
    };
    let (node_template, target_droplet) = match &target {
        Target::Droplet { options, droplet } => (Some(options.clone()), Some(droplet.clone())),
        _ => (None, None),
    };
    let connector = Arc::new(HostConnector::new(target).with_lock_timeout(options.lock_timeout));
    let docker = DockerProvider::with_options(
        connector.clone(),
        stack.clone(),
        DockerOptions {
            root: Some(host_root(config)),
            build_directory: Some(loaded.base_directory.clone()),
            edge_formats: Some(Arc::new(stackctl_traefik::TraefikFormats)),
            edge_published_admin_port: config.edge.as_ref().and_then(|edge| edge.admin_port),
            // Registry credentials as `docker login` left them (`$DOCKER_CONFIG`,
            // `~/.docker`), like the DigitalOcean token from the environment below.
            docker_config: stackctl_docker::registry_auth::default_config_directory(),
            ..DockerOptions::default()
        },
    );
    let traefik = TraefikProvider::new(connector.clone(), stack);
    let digitalocean = DigitalOceanProvider::from_env().map_err(|error| {
        SessionError::provider("cannot set up the DigitalOcean provider", error)
    })?;
    let mut providers: Vec<Arc<dyn Provider>> =
        vec![Arc::new(docker), Arc::new(traefik), Arc::new(digitalocean)];
    // On a swarm, the target above is its first manager; every node gets a connection
    // of its own, made with the same options.
    let first_manager = config
        .target
        .as_ref()
        .and_then(|target| target.swarm.as_ref())
        .and_then(|swarm| swarm.managers.first().cloned())
        .or_else(|| recorded_swarm_manager.map(str::to_string));
    let swarm = match (first_manager, node_template) {
        (Some(first_manager), Some(template)) => {
            // The target is the first manager, unless the swarm is being dissolved from
            // another droplet: then the manager gets a connection of its own.
            let manager = if target_droplet.as_deref() == Some(first_manager.as_str()) {
                connector.clone()
            } else {
                let mut options = template.clone();
                options.pinned_fingerprint = pinned_host_keys
                    .get(&format!("droplet.{first_manager}"))
                    .cloned();
                Arc::new(HostConnector::new(Target::Droplet {
                    droplet: first_manager.clone(),
                    options,
                }))
            };
            Some(Arc::new(SwarmProvider::new(NodeConnections::new(
                first_manager,
                manager,
                template,
                pinned_host_keys.clone(),
            ))))
        }
        _ => None,
    };
    if let Some(swarm) = &swarm {
        providers.push(swarm.clone());
    }
    Ok(Backends {
        providers: ProviderSet::new(providers),
        host: Some(Box::new(ConnectedHost::new(connector, key_name, swarm))),
    })
}

/// What the ssh config file says about `alias`; `None` when there is no such file. Its
/// problems are warnings, named by file and line.
fn ssh_config_host(path: &Path, alias: &str) -> Option<SshConfigHost> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            eprintln!(
                "warning: cannot read the ssh config `{}`: {error}",
                path.display()
            );
            return None;
        }
    };
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let (host, problems) = ssh_config::resolve(&text, alias, home.as_deref());
    for problem in problems {
        eprintln!(
            "warning: {}:{}: {}",
            path.display(),
            problem.line,
            problem.message
        );
    }
    Some(host)
}

/// The options of a `ProxyJump` hop (`[user@]host[:port]`, itself looked up in the ssh
/// config): its key is checked against the target's known_hosts, and the target's key
/// files are offered unless the config names the hop's own.
fn jump_options(hop: &str, target: &SshOptions, ssh_config_path: Option<&Path>) -> SshOptions {
    let (user, alias, port) = ssh_config::parse_jump(hop);
    let from_file = ssh_config_path
        .and_then(|path| ssh_config_host(path, &alias))
        .unwrap_or_default();
    let mut jump = SshOptions::new(
        from_file.host_name.clone().unwrap_or(alias),
        port.or(from_file.port).unwrap_or(22),
        user.or(from_file.user.clone()).unwrap_or_default(),
    );
    jump.identity_files = if from_file.identity_files.is_empty() {
        target.identity_files.clone()
    } else {
        from_file.identity_files
    };
    jump.known_hosts = target.known_hosts.clone();
    jump
}

/// The name a host's SSH key is pinned under in state: `droplet.<name>` or `address:port`.
pub fn host_key_name(loaded: &LoadedConfig) -> Option<String> {
    let config = &loaded.config;
    if let Some(HostTarget::Remote(remote)) = config
        .target
        .as_ref()
        .and_then(|target| target.host.as_ref())
    {
        return Some(format!("{}:{}", remote.address, remote.port.unwrap_or(22)));
    }
    crate::config::validate::target_droplet(config).map(|droplet| format!("droplet.{droplet}"))
}
