//! Services on a Docker Swarm: the `swarm_service` kind.
//!
//! On a swarm target, lowering turns each service into `swarm_service.<name>`, and this
//! provider, talking to the first manager's Engine API, keeps one Swarm service per
//! resource, labelled like every other object (`stackctl.stack`, `stackctl.resource`,
//! `stackctl.hash`) so that refresh and clean-up find it and nothing else.
//!
//! What each task runs is read by the container's own spec (`spec.rs` at the crate's
//! root), so an attribute means the same on one host and on a swarm; what only a swarm
//! service has (replicas, placement, endpoint mode, update policy) is added in
//! [`spec`]. The reverse, a service and its tasks read back, is [`live`]: a hand scale,
//! a changed env or image, and a missing task are drift.
//!
//! Applying ([`apply`]) creates or updates the service (Swarm's rolling update, with the
//! service's `update` policy: start-first by default, stop-first for a service holding a
//! named volume) and returns once the tasks run the new spec, health-gated by Swarm
//! itself (a task with a health check is `starting` until healthy). A delete waits until
//! the tasks are gone, so a network or volume they used may go next.
//!
//! Secret env values never go into a swarm service's env (`docker service inspect` on any
//! manager shows it): each becomes a Swarm secret mounted as a file, which the env names
//! (`VAR_FILE=/run/secrets/VAR`), see [`secrets`]. A `[files]` entry the service
//! bind-mounts becomes a Swarm config (a Swarm secret, when it holds a secret) mounted at
//! the same path, see [`mounted_files`]; all share the lifecycle of [`swarm_objects`].
//!
//! - [`spec`]: attributes → the `ServiceSpec` body (pure);
//! - [`live`]: service and tasks → attributes (pure);
//! - [`requests`]: the Engine API requests (pure);
//! - [`apply`]: create, update, delete, waiting for convergence;
//! - [`backend_file`]: the edge's backend file read back (a hand edit is drift);
//! - [`security`]: the services and their tasks as the security report's facts (pure);
//! - [`secrets`]: secret env values as Swarm secrets (names, mounts);
//! - [`mounted_files`]: `[files]` entries as Swarm configs or secrets (mounts, where the
//!   content comes from, read back);
//! - [`swarm_objects`]: secrets and configs made before the service, removed once unused;
//! - [`refresh`]: every swarm service of the stack in one round trip.

pub mod apply;
pub mod backend_file;
pub mod live;
pub mod mounted_files;
pub mod refresh;
pub mod requests;
pub mod secrets;
pub mod security;
pub mod spec;
pub mod swarm_objects;

/// The kind lowering gives services on a swarm target.
pub const SWARM_SERVICE: &str = "swarm_service";

use stackctl_provider::{AttributeSchema, KindSchema};

/// How the planner treats a swarm service's attributes: everything is changed in place by
/// a service update (Swarm rolls it over the tasks; a routed service's successor takes
/// over through the edge), but its name.
pub fn kind_schema() -> KindSchema {
    let mut attributes = vec![AttributeSchema::replaces("service_name")];
    attributes.extend(
        [
            "image",
            "image_digest",
            "command",
            "entrypoint",
            "env",
            "networks",
            "volumes",
            "user",
            "memory",
            "cpus",
            "restart",
            "read_only",
            "port",
            "ports",
            "stateful",
            "cap_drop",
            "cap_add",
            "pids_limit",
            "tmpfs",
            "health",
            "stop_grace_seconds",
            "route_backend",
            "replicas",
            live::RUNNING_REPLICAS,
            "placement",
            "endpoint_mode",
            "update",
        ]
        .map(AttributeSchema::plain),
    );
    // Configs and secret files mounted by hand on a service that declares none are drift.
    attributes.extend(
        [mounted_files::CONFIGS, mounted_files::SECRET_FILES]
            .map(|name| AttributeSchema::plain(name).unset_means_default()),
    );
    attributes.extend(["drain_milliseconds", "security_reason"].map(AttributeSchema::inert));
    attributes
        .extend([live::SERVICE_ID, live::LIVE_NAME, live::TASKS].map(AttributeSchema::computed));
    // The edge's servers are known only once the tasks run: never in stack.toml, so not a
    // change an update plans (`- backend_servers` would read as taking them away); a
    // task Swarm moved shows as drift, repaired with the addresses of the tasks then.
    attributes.push(AttributeSchema::found_by_apply(live::BACKEND_SERVERS));
    // What the edge's backend file says (recorded as written, read live): a hand edit.
    attributes.push(AttributeSchema::computed(crate::backend_file::BACKEND_FILE));
    KindSchema {
        kind: SWARM_SERVICE,
        provider: "docker",
        attributes,
    }
}
