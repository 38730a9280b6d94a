//! The keys of a service that only a Docker Swarm understands (`replicas`, `placement`,
//! `endpoint_mode`, `update`), and what a swarm service cannot do that a container can.
//!
//! On a single host these keys are errors, not warnings: `replicas = 3` that quietly runs
//! one container is a plan that lies about capacity. On a swarm, the settings are checked
//! as Swarm would take them, and the hardening a service spec cannot carry on the Engine
//! API these hosts speak (1.41, Docker 20.10) is said once per service, not dropped in
//! silence.

use super::super::derived::binds_first_manager_path;
use super::super::diagnostic::Diagnostic;
use super::super::document::{child_path, index_path};
use super::super::parse::{duration_milliseconds, Mount};
use super::super::placement::{named_node, parse_constraint, pins_to_one_node};
use super::super::types::{Config, ServiceConfig, UpdateOrder};
use super::Checks;

/// The left-hand sides Swarm accepts in a placement constraint (`node.labels.<key>` and
/// `engine.labels.<key>` besides).
const CONSTRAINT_ATTRIBUTES: &[&str] = &[
    "node.id",
    "node.hostname",
    "node.role",
    "node.platform.os",
    "node.platform.arch",
];

/// The swarm-only keys of a service, by name, when set.
fn swarm_keys(service: &ServiceConfig) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if service.replicas.is_some() {
        keys.push("replicas");
    }
    if service.placement.is_some() {
        keys.push("placement");
    }
    if service.endpoint_mode.is_some() {
        keys.push("endpoint_mode");
    }
    if service.update.is_some() {
        keys.push("update");
    }
    keys
}

fn known_constraint_attribute(attribute: &str) -> bool {
    CONSTRAINT_ATTRIBUTES.contains(&attribute)
        || label_attribute(attribute, "node.labels.")
        || label_attribute(attribute, "engine.labels.")
}

fn label_attribute(attribute: &str, prefix: &str) -> bool {
    attribute
        .strip_prefix(prefix)
        .is_some_and(|key| !key.is_empty())
}

fn holds_named_volume(service: &ServiceConfig) -> bool {
    service
        .volumes
        .iter()
        .filter_map(|text| Mount::parse(text))
        .any(|mount| !mount.is_bind())
}

impl Checks<'_> {
    pub(super) fn swarm_services(&mut self, config: &Config) {
        let on_swarm = config
            .target
            .as_ref()
            .is_some_and(|target| target.swarm.is_some());
        let routed: std::collections::BTreeSet<&str> = config
            .routes
            .values()
            .map(|route| route.service.as_str())
            .collect();
        for (name, service) in &config.services {
            let base = child_path("services", name);
            if !on_swarm {
                for key in swarm_keys(service) {
                    self.error(
                        "swarm-only-setting",
                        &child_path(&base, key),
                        format!("`{key}` of service `{name}` only means something on a Docker Swarm, and this stack runs on one host"),
                        "no such key on a single-host target",
                    )
                    .hint = Some("remove it, or run the stack on a swarm: `[target] swarm = { managers = [\"web-1\"], workers = [\"web-2\"] }`".into());
                }
                continue;
            }
            let first_manager = config
                .target
                .as_ref()
                .and_then(|target| target.swarm.as_ref())
                .and_then(|swarm| swarm.managers.first())
                .map(String::as_str);
            self.swarm_service(
                config,
                name,
                service,
                &base,
                routed.contains(name.as_str()),
                first_manager,
            );
        }
        // Said once, so that nobody believes the hardened default holds where Engine API
        // 1.41 has no field to carry it.
        if on_swarm && !config.services.is_empty() {
            self.found.push(
                Diagnostic::warning(
                    "swarm-hardening-limits",
                    "on a swarm, services run without `no-new-privileges` and their tmpfs mounts without `noexec,nosuid`: a service spec on Engine API 1.41 (Docker 20.10) has no field for them",
                )
                .at(self.map.value("target.swarm"))
                .hint("capabilities are still dropped, the root file system can still be read-only, and memory, CPU and process limits still apply"),
            );
        }
    }

    /// A service whose named volume, bind-mounted host path or built image stackctl makes
    /// on the first manager alone cannot be pinned to another node: its tasks would start
    /// there without them (an empty volume, a missing file, an image no node can pull). A
    /// `[files]` entry reaches every node as a Swarm config or secret instead.
    fn first_manager_only(
        &mut self,
        config: &Config,
        name: &str,
        service: &ServiceConfig,
        base: &str,
        stateful: bool,
        first_manager: Option<&str>,
    ) {
        let Some(first_manager) = first_manager else {
            return;
        };
        let reason = if stateful {
            "holds a named volume"
        } else if service.build.is_some() {
            "runs an image stackctl builds"
        } else if binds_first_manager_path(config, service) {
            "mounts a host path that is not a `[files]` entry (a directory, say)"
        } else {
            return;
        };
        let Some(placement) = &service.placement else {
            return;
        };
        for (index, constraint) in placement.constraints.iter().enumerate() {
            let Some(node) = named_node(constraint) else {
                continue;
            };
            if node != first_manager {
                self.error(
                    "first-manager-only",
                    &index_path(&child_path(&child_path(base, "placement"), "constraints"), index),
                    format!("service `{name}` {reason}, which stackctl makes on the first manager `{first_manager}` only, but is pinned to `{node}`"),
                    &format!("`\"node.hostname == {first_manager}\"`, or no constraint naming a node"),
                )
                .hint = Some("volumes, host directories and built images are not copied to other nodes yet; use an image from a registry every node can pull, and `[files]` entries for files, to run it elsewhere".into());
            }
        }
    }

    fn swarm_service(
        &mut self,
        config: &Config,
        name: &str,
        service: &ServiceConfig,
        base: &str,
        routed: bool,
        first_manager: Option<&str>,
    ) {
        let stateful = holds_named_volume(service);
        self.first_manager_only(config, name, service, base, stateful, first_manager);
        if let Some(replicas) = service.replicas {
            let path = child_path(base, "replicas");
            if replicas == 0 && routed {
                self.error(
                    "invalid-value",
                    &path,
                    format!("service `{name}` is routed but asks for no replicas: the edge would have nowhere to send its requests"),
                    "at least 1",
                );
            }
            if replicas > 1 && stateful {
                self.error(
                    "stateful-replicas",
                    &path,
                    format!("service `{name}` holds a named volume and asks for {replicas} replicas: each node has its own volume, so the replicas would each see different data"),
                    "`replicas = 1` for a service with a named volume",
                )
                .hint = Some("keep one replica pinned to the node that holds the data; replicate at the application level (a database's own replication) if you need more".into());
            }
        }
        if let Some(placement) = &service.placement {
            let path = child_path(base, "placement");
            for (index, constraint) in placement.constraints.iter().enumerate() {
                let at = index_path(&child_path(&path, "constraints"), index);
                match parse_constraint(constraint) {
                    Some((attribute, _, _)) if known_constraint_attribute(attribute) => {}
                    Some((attribute, _, _)) => {
                        let hint = attribute
                            .strip_prefix("node.label.")
                            .map(|key| format!("did you mean `node.labels.{key}`?"));
                        self.error(
                            "invalid-value",
                            &at,
                            format!("`{attribute}` in placement constraint `{constraint}` is not a node attribute Swarm knows"),
                            "`node.id`, `node.hostname`, `node.role`, `node.platform.os`, `node.platform.arch`, `node.labels.<key>` or `engine.labels.<key>`",
                        )
                        .hint = hint;
                    }
                    None => {
                        self.error(
                            "invalid-value",
                            &at,
                            format!("placement constraint `{constraint}` is not `<attribute> == <value>` or `<attribute> != <value>`"),
                            "e.g. `\"node.hostname == web-1\"` or `\"node.labels.zone != b\"`",
                        );
                    }
                }
            }
            for (index, preference) in placement.preferences.iter().enumerate() {
                if !label_attribute(&preference.spread, "node.labels.")
                    && !label_attribute(&preference.spread, "engine.labels.")
                {
                    self.error(
                        "invalid-value",
                        &child_path(
                            &index_path(&child_path(&path, "preferences"), index),
                            "spread",
                        ),
                        format!(
                            "Swarm spreads tasks over a node label, and `{}` is not one",
                            preference.spread
                        ),
                        "`node.labels.<key>`, e.g. `node.labels.zone`",
                    );
                }
            }
            if stateful
                && !placement.constraints.is_empty()
                && !pins_to_one_node(&placement.constraints)
            {
                self.found.push(
                    Diagnostic::warning(
                        "stateful-unpinned",
                        format!("service `{name}` holds a named volume but its placement allows more than one node: Swarm may start it on another node, with an empty volume"),
                    )
                    .at(self.map.value(&child_path(&path, "constraints")))
                    .expected("a constraint naming one node, e.g. `\"node.hostname == web-1\"`")
                    .hint("add `\"node.hostname == <the node with the data>\"` (with no constraints at all, stackctl pins it to the first manager)"),
                );
            }
        }
        if let Some(update) = &service.update {
            let path = child_path(base, "update");
            if let Some(monitor) = &update.monitor {
                if duration_milliseconds(monitor).is_none() {
                    self.error(
                        "invalid-value",
                        &child_path(&path, "monitor"),
                        format!("`{monitor}` is not a duration"),
                        "a duration such as `5s` or `1m`",
                    );
                }
            }
            if stateful && update.order == Some(UpdateOrder::StartFirst) {
                self.error(
                    "invalid-value",
                    &child_path(&path, "order"),
                    format!("service `{name}` holds a named volume: with `start-first` two tasks would share its data directory for a moment"),
                    "`order = \"stop-first\"` (what stackctl uses for a service with a named volume)",
                );
            }
            if routed {
                self.found.push(
                    Diagnostic::warning(
                        "swarm-update-of-routed-service",
                        format!("service `{name}` is routed: stackctl replaces it through the edge (new service ready, backends switched, old one removed), so its `update` settings are not used"),
                    )
                    .at(self.map.value(&path))
                    .hint("remove `update`, or keep it for when the route goes away"),
                );
            }
        }
        if service.privileged() {
            self.error(
                "swarm-unsupported",
                &child_path(&child_path(base, "security"), "privileged"),
                format!("service `{name}` asks to run privileged, which a Swarm service cannot"),
                "`privileged = false`, with the capabilities it needs in `cap_add`",
            );
        }
    }
}
