//! The one place that names the concrete providers and builds them from the stack.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use stackctl_digitalocean::DigitalOceanProvider;
use stackctl_docker::{DockerOptions, DockerProvider};
use stackctl_host::{HostConnector, SshOptions, Target};
use stackctl_provider::{Provider, Secret};
use stackctl_traefik::checks::{
    self, Check, CheckOptions, EdgeFacts, HeaderExpectation, HeaderRule, ResolveOverride, TlsTrust,
};
use stackctl_traefik::TraefikProvider;

use super::commands::{print, Session};
use super::report::{CliError, Outcome};
use super::settings::Settings;
use crate::apply::ProviderSet;
use crate::config::{HostTarget, LoadedConfig};
use crate::lower::{host_root, targets_local};
use crate::state::State;

/// What the CLI tells providers beyond the stack itself.
#[derive(Clone, Debug, Default)]
pub struct ProviderOptions {
    /// `--accept-new-host-key`.
    pub accept_new_host_key: bool,
    /// Host key fingerprints pinned in state, by [`host_key_name`].
    pub pinned_host_keys: BTreeMap<String, String>,
}

/// The providers of a run and the host connection they share.
pub struct BuiltProviders {
    pub set: ProviderSet,
    pub connector: Arc<HostConnector>,
    /// Under which name the host's key is pinned in state.
    pub host_key_name: Option<String>,
}

pub fn build(loaded: &LoadedConfig, options: &ProviderOptions) -> Result<BuiltProviders, CliError> {
    let config = &loaded.config;
    let stack = config.stack.name.clone();
    let key_name = host_key_name(loaded);
    let pinned = key_name
        .as_ref()
        .and_then(|name| options.pinned_host_keys.get(name).cloned());
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
    let connector = Arc::new(HostConnector::new(target));
    let docker = DockerProvider::with_options(
        connector.clone(),
        stack.clone(),
        DockerOptions {
            root: Some(host_root(config)),
            build_directory: Some(loaded.base_directory.clone()),
            ..DockerOptions::default()
        },
    );
    let traefik = TraefikProvider::with_root(connector.clone(), stack, host_root(config));
    let digitalocean = DigitalOceanProvider::from_env().map_err(|error| {
        super::commands::provider_error("cannot set up the DigitalOcean provider", error)
    })?;
    let providers: Vec<Arc<dyn Provider>> =
        vec![Arc::new(docker), Arc::new(traefik), Arc::new(digitalocean)];
    Ok(BuiltProviders {
        set: ProviderSet::new(providers),
        connector,
        host_key_name: key_name,
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

/// Clears a stale lock on the target host (`stackctl state unlock --host`).
pub async fn unlock_host(loaded: &LoadedConfig, state: Option<&State>) -> Result<String, CliError> {
    let options = ProviderOptions {
        pinned_host_keys: state
            .map(|state| state.host_keys.clone())
            .unwrap_or_default(),
        ..ProviderOptions::default()
    };
    let built = build(loaded, &options)?;
    let droplet_address = droplet_ipv4(&loaded.config, state);
    let host = built
        .connector
        .connect(droplet_address.as_deref())
        .await
        .map_err(|error| CliError::new(error.to_string()))?;
    let path = format!("{}/lock", host_root(&loaded.config));
    host.unlock(&path)
        .await
        .map_err(|error| CliError::new(error.to_string()))?;
    Ok(format!(
        "Removed the host lock `{path}` on {}.",
        host.describe()
    ))
}

/// Runs the stack's `[[checks]]` and the checks the routes imply, through the edge.
/// `folder`, when given, receives every result (with headers) as `checks.json`.
pub async fn verify(
    session: &Session,
    settings: &Settings,
    json: bool,
    folder: Option<&crate::apply::runs::RunFolder>,
) -> Result<Outcome, CliError> {
    let state = session.store.read()?;
    let salt = state
        .as_ref()
        .map(|state| state.salt.clone())
        .unwrap_or_default();
    let desired = session.desired(&salt)?;
    let config = &session.loaded.config;
    let mut list: Vec<Check> = Vec::new();
    for (index, check) in config.checks.iter().enumerate() {
        let url = session.loaded.environment.interpolate(&check.url).text;
        let mut item = Check::get(format!("checks[{index}]"), url, check.expect_status);
        for (name, value) in &check.expect_headers {
            let rule = if value == "*" {
                HeaderRule::Present
            } else {
                HeaderRule::Equals(session.loaded.environment.interpolate(value).text)
            };
            item = item.with_header(HeaderExpectation::new(name.clone(), rule));
        }
        list.push(item);
    }
    let routed: Vec<&String> = config.routes.values().map(|route| &route.service).collect();
    let unrouted: Vec<String> = config
        .services
        .keys()
        .filter(|name| !routed.contains(name))
        .cloned()
        .collect();
    if config.edge.is_some() {
        let facts = EdgeFacts::from_resources(&desired, &unrouted)
            .map_err(|error| CliError::new(format!("cannot derive the edge checks: {error}")))?;
        list.extend(checks::implied_checks(&facts));
    }
    // Dashboard routes: credentials come from the basic-auth secret in the config.
    for check in &mut list {
        if let Some(credentials) = dashboard_credentials(session, &check.url) {
            if check.name.contains("answers") {
                check.basic_auth = Some(credentials);
            }
        }
    }
    wait_for_edge(session, state.as_ref(), &desired).await;
    let edge_address = edge_address(session, state.as_ref());
    let options = CheckOptions {
        resolve: edge_address
            .map(|address| vec![ResolveOverride::all_to(address)])
            .unwrap_or_default(),
        // A fresh edge presents Traefik's own or a staging certificate: accepted, and
        // reported as untrusted in every result.
        tls: TlsTrust::AcceptUntrusted,
        retry_for: Duration::from_secs(20),
        ..CheckOptions::default()
    };
    let results = checks::run_checks(&list, &options).await;
    let document = super::report::redacted(
        &(serde_json::to_string_pretty(&results).unwrap_or_default() + "\n"),
    );
    if let Some(folder) = folder {
        let _ = folder.write("checks.json", document.as_bytes());
    }
    if json {
        print(&document);
    } else {
        let mut text = String::from("\nChecks through the edge:\n");
        for result in &results {
            text.push_str(&format!("  {}\n", result.summary()));
            if let Some(tls) = &result.tls {
                if !tls.trusted {
                    text.push_str(&format!(
                        "       certificate not trusted: {} (issued by {})\n",
                        tls.subject.as_deref().unwrap_or("?"),
                        tls.issuer.as_deref().unwrap_or("?")
                    ));
                }
            }
        }
        print(&super::report::redacted(&text));
    }
    let _ = settings;
    let failed = results.iter().filter(|result| !result.passed).count();
    if failed > 0 {
        return Err(CliError::new(format!("{failed} of {} checks failed", results.len())).hint("each failure above says what was expected; `stackctl verify --format json` shows the full responses"));
    }
    Ok(Outcome::Success)
}

fn dashboard_credentials(session: &Session, url: &str) -> Option<checks::Credentials> {
    let config = &session.loaded.config;
    for route in config.routes.values() {
        let service = config.services.get(&route.service)?;
        let host = session
            .loaded
            .environment
            .interpolate(route.host.as_deref().unwrap_or_default())
            .text;
        if !service.dashboard || host.is_empty() || !url.contains(&format!("//{host}")) {
            continue;
        }
        for middleware in
            crate::config::validate::flatten_middlewares(&route.middlewares, &config.middlewares)
        {
            if let crate::config::MiddlewareConfig::BasicAuth { users, .. } = middleware {
                let (user, password) = users.iter().next()?;
                let password = session.loaded.environment.interpolate(password).text;
                return Some(checks::Credentials {
                    user: user.clone(),
                    password: Secret::new(&password, "checks"),
                });
            }
        }
    }
    None
}

/// Where the edge listens: this machine, the host's address, or the droplet's IP.
fn edge_address(session: &Session, state: Option<&State>) -> Option<IpAddr> {
    let config = &session.loaded.config;
    if let Some(bind) = config
        .edge
        .as_ref()
        .and_then(|edge| edge.bind_address.as_ref())
    {
        if let Ok(address) = bind.parse::<IpAddr>() {
            if !address.is_unspecified() {
                return Some(address);
            }
        }
    }
    match config
        .target
        .as_ref()
        .and_then(|target| target.host.as_ref())
    {
        Some(HostTarget::Local(_)) => return "127.0.0.1".parse().ok(),
        Some(HostTarget::Remote(remote)) => return remote.address.parse().ok(),
        None => {}
    }
    droplet_ipv4(config, state)?.parse().ok()
}

/// Waits (bounded) until Traefik has loaded every route with its current rule, so checks
/// see the new configuration rather than the last one. Traefik throttles reloads by 2 s;
/// without its API (no `[edge] admin_port`) that window is simply waited out.
async fn wait_for_edge(
    session: &Session,
    state: Option<&State>,
    desired: &[stackctl_provider::Resource],
) {
    const RELOAD_WINDOW: Duration = Duration::from_millis(2500);
    let Some(admin_port) = session
        .loaded
        .config
        .edge
        .as_ref()
        .and_then(|edge| edge.admin_port)
    else {
        tokio::time::sleep(RELOAD_WINDOW).await;
        return;
    };
    let routes: Vec<(String, Option<String>)> = desired
        .iter()
        .filter(|resource| resource.address.kind() == "route")
        .map(|resource| {
            (
                resource.address.name().to_string(),
                resource
                    .attributes
                    .get("rule")
                    .and_then(|rule| rule.as_text())
                    .map(str::to_string),
            )
        })
        .collect();
    let names: Vec<String> = routes.iter().map(|(name, _)| name.clone()).collect();
    let droplet_address = droplet_ipv4(&session.loaded.config, state);
    let Ok(host) = session.connector.connect(droplet_address.as_deref()).await else {
        tokio::time::sleep(RELOAD_WINDOW).await;
        return;
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut waiting = String::new();
    while std::time::Instant::now() < deadline {
        if let Ok(stream) = host.connect_tcp("127.0.0.1", admin_port).await {
            if let Ok(states) = stackctl_traefik::admin::routers(stream).await {
                let mut unready = stackctl_traefik::admin::unready_routers(&states, &names);
                for (name, rule) in &routes {
                    let live = states
                        .iter()
                        .find(|state| state.name == format!("{name}@file"))
                        .and_then(|state| state.rule.clone());
                    if rule.is_some() && live.is_some() && &live != rule {
                        unready.insert(name.clone(), "still serving the previous rule".to_string());
                    }
                }
                if unready.is_empty() {
                    // Middlewares reload in the same batch; a short pause covers a
                    // middleware-only change landing in the next throttle window.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    return;
                }
                waiting = unready
                    .iter()
                    .map(|(name, reason)| format!("{name} ({reason})"))
                    .collect::<Vec<_>>()
                    .join(", ");
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if !waiting.is_empty() {
        eprintln!("warning: Traefik has not loaded every route after 20 s: {waiting}");
    }
}

/// The target droplet's public IPv4 address as recorded in state, if there is one.
fn droplet_ipv4(config: &crate::config::Config, state: Option<&State>) -> Option<String> {
    let droplet = crate::config::validate::target_droplet(config)?;
    let recorded = state?
        .resources
        .get(&stackctl_provider::Address::new("droplet", droplet))?;
    recorded
        .attributes
        .get("ipv4")?
        .as_text()
        .map(str::to_string)
}
