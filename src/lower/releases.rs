//! Release tasks: `[services.<name>.release]` becomes `release.<name>`, a one-off
//! container run from the service's new image, with its new env, networks, volumes and
//! user, before the service's new version takes traffic (Django's `migrate`). The service
//! depends on it, so a task that fails leaves the old version serving.
//!
//! What it runs with decides when it runs again: a change of `image` (a build's tag
//! carries its context's hash; `image_digest` follows a moved tag with `pull = "always"`),
//! `env`, or the task's own `command` or `entrypoint` runs
//! it; a change of `user`, `networks`, `volumes`, `read_only` or `timeout_seconds` alone
//! does not (they are inert in the docker provider's schema and apply at its next run),
//! nor does anything that only concerns the running service (limits, health, port,
//! routes).

use std::collections::BTreeMap;

use stackctl_provider::{Address, Resource, Value};

use super::{Lowering, DOCKER};
use crate::config::parse::duration_seconds;
use crate::config::ReleaseConfig;

/// How long a release task may run when stack.toml does not say.
const DEFAULT_TIMEOUT_SECONDS: i64 = 10 * 60;

/// The attributes a release task copies from its service's container.
const FROM_SERVICE: &[&str] = &[
    "image",
    "image_digest",
    "entrypoint",
    "env",
    "user",
    "volumes",
    "read_only",
    "tmpfs",
    "cap_drop",
    "cap_add",
    "no_new_privileges",
    "privileged",
    "pids_limit",
];

impl Lowering<'_> {
    /// The release task of service `name`, built from the service's lowered resource.
    pub(super) fn release_task(
        &self,
        name: &str,
        release: &ReleaseConfig,
        service: &Resource,
    ) -> Resource {
        let mut task = Resource::new(Address::new("release", name), DOCKER)
            .with("container_name", format!("{}-{name}-release", self.stack))
            .with("command", self.resolved_texts(&release.command))
            .with(
                "timeout_seconds",
                release
                    .timeout
                    .as_deref()
                    .and_then(duration_seconds)
                    .unwrap_or(DEFAULT_TIMEOUT_SECONDS),
            );
        for attribute in FROM_SERVICE {
            if let Some(value) = service.attributes.get(*attribute) {
                task = task.with(attribute, value.clone());
            }
        }
        // The same networks without the service's aliases: the service's name must not
        // resolve to the task's container.
        if let Some(Value::Map(networks)) = service.attributes.get("networks") {
            let unaliased: BTreeMap<String, Value> = networks
                .keys()
                .map(|network| (network.clone(), Value::List(Vec::new())))
                .collect();
            task = task.with("networks", Value::Map(unaliased));
        }
        // What the service waits for (its image, networks, volumes, files and the services
        // it depends on, such as the database a migration changes), the task waits for.
        task.dependencies = service.dependencies.clone();
        task
    }
}
