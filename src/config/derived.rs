//! Facts that follow from a whole [`Config`] and that several stages need (validation,
//! lowering, the CLI's provider setup): which droplet runs the services, and what a
//! route's middlewares expand to. Kept apart from validation so that lowering does not
//! depend on the checker.

use std::collections::{BTreeMap, BTreeSet};

use super::types::{Config, MiddlewareConfig};

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
