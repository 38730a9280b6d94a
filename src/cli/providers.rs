//! The one place that names the concrete providers and builds them from the stack.

use std::collections::BTreeMap;
use std::sync::Arc;

use stackctl_digitalocean::DigitalOceanProvider;
use stackctl_docker::{DockerOptions, DockerProvider};
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
}

impl BackendFactory for ProviderOptions {
    fn build(
        &self,
        loaded: &LoadedConfig,
        pinned_host_keys: &BTreeMap<String, String>,
    ) -> Result<Backends, SessionError> {
        build(loaded, self, pinned_host_keys)
    }
}

/// Builds the providers of a run around one shared host connection.
pub fn build(
    loaded: &LoadedConfig,
    options: &ProviderOptions,
    pinned_host_keys: &BTreeMap<String, String>,
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
                Some(HostTarget::Remote(remote)) => Target::Ssh(ssh(
                    remote.address.clone(),
                    remote.port.unwrap_or(22),
                    remote.user.clone().unwrap_or(user),
                )),
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
    let providers: Vec<Arc<dyn Provider>> =
        vec![Arc::new(docker), Arc::new(traefik), Arc::new(digitalocean)];
    Ok(Backends {
        providers: ProviderSet::new(providers),
        host: Some(Box::new(ConnectedHost::new(connector, key_name))),
    })
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
