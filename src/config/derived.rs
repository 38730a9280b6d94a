//! Facts that follow from a whole [`Config`] and that several stages need (validation,
//! lowering, the CLI's provider setup): which droplet runs the services, and what a
//! route's middlewares expand to. Kept apart from validation so that lowering does not
//! depend on the checker.

use std::collections::{BTreeMap, BTreeSet};

use super::parse::Mount;
use super::types::{Config, FileConfig, MiddlewareConfig, ServiceConfig};

/// The droplet that runs the services, if any. On a swarm, the first manager: stackctl
/// reaches the swarm's Engine API there, runs the edge there and keeps the stack's files
/// there, exactly as on a single droplet.
pub fn target_droplet(config: &Config) -> Option<&str> {
    match &config.target {
        Some(target) => match (&target.droplet, &target.swarm) {
            (Some(droplet), _) => Some(droplet.as_str()),
            (None, Some(swarm)) => swarm.managers.first().map(String::as_str),
            (None, None) => None,
        },
        None if config.droplets.len() == 1 => config.droplets.keys().next().map(String::as_str),
        None => None,
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

/// Where a `[files]` entry is written on the host: its absolute `path`, or a relative one
/// under `<root>/files/`.
pub fn file_host_path(config: &Config, file: &FileConfig) -> String {
    if file.path.starts_with('/') {
        file.path.clone()
    } else {
        format!("{}/files/{}", host_root(config), file.path)
    }
}

/// The `[files]` entry that a bind mount's source is exactly, if any. On a swarm, that
/// mount reaches every task wherever it runs: as a Swarm config, or as a Swarm secret when
/// the content holds a secret.
pub fn files_entry_at<'a>(config: &'a Config, source: &str) -> Option<&'a str> {
    config
        .files
        .iter()
        .find(|(_, file)| file_host_path(config, file) == source)
        .map(|(name, _)| name.as_str())
}

/// Whether a swarm service mounts a path that exists on the first manager alone: a bind
/// mount that is not a `[files]` entry (a directory, another host path).
pub fn binds_first_manager_path(config: &Config, service: &ServiceConfig) -> bool {
    service
        .volumes
        .iter()
        .filter_map(|text| Mount::parse(text))
        .any(|mount| mount.is_bind() && files_entry_at(config, &mount.source).is_none())
}

/// The middlewares a route applies, with chains expanded (each once, cycles cut).
pub fn flatten_middlewares<'a>(
    names: &[String],
    all: &'a BTreeMap<String, MiddlewareConfig>,
) -> Vec<&'a MiddlewareConfig> {
    let mut seen = BTreeSet::new();
    let mut result = Vec::new();
    let mut stack: Vec<&str> = names.iter().rev().map(String::as_str).collect();
    while let Some(name) = stack.pop() {
        if !seen.insert(name.to_string()) {
            continue;
        }
        if let Some(middleware) = all.get(name) {
            if let MiddlewareConfig::Chain { middlewares } = middleware {
                stack.extend(middlewares.iter().rev().map(String::as_str));
            }
            result.push(middleware);
        }
    }
    result
}
