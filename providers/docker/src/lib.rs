//! The docker provider: networks, volumes, images and services (containers) on the
//! stack's host, driven through Docker's Engine API.
//!
//! # How it reaches Docker
//!
//! The host transport ([`stackctl_host::Host`]) hands out byte streams to the daemon's
//! socket: the local unix socket, or over SSH a channel to the remote one. This crate
//! speaks HTTP/1.1 over such a stream ([`http`]), with requests built by pure functions
//! ([`api`]) so that their exact form is unit-tested without a daemon, and so that no
//! name or value ever passes through a shell: a value like `$(reboot)` is JSON data.
//!
//! # Refresh in a constant number of round trips
//!
//! `read` (`refresh.rs`) opens one stream and sends two pipelined batches: first the
//! three lists (every container, the stack's networks, the stack's volumes), then one
//! inspect per container and per image of interest. Two network round trips whatever the
//! number of services; `tests/docker.rs` counts them for 2 and for 20 services.
//!
//! # Apply
//!
//! Every object carries the labels `stackctl.stack`, `stackctl.resource` and
//! `stackctl.hash` (`labels.rs`), so refresh and clean-up find them by label and never
//! touch anything else. A service (`service.rs`) is started and gated on readiness
//! (`health.rs`): its own health check, run by stackctl through the Engine API's exec
//! every 100 ms instead of waiting for Docker's first check one interval later; on failure
//! the error carries the new container's last log lines, the last probe's output and
//! Docker's health log, and the old container is left serving. How a service is replaced
//! depends on what it is:
//!
//! - routed (`route_backend`): zero-downtime swap (`swap.rs`). The new container starts beside the old
//!   one as `<container_name>-<short hash>`, becomes ready, the Traefik backend file is
//!   rewritten to name it (temp file outside the watched directory, then rename), the
//!   provider asks Traefik's API until the service's servers are the new one alone — at
//!   the published admin port, or else on the edge container's own address, at the API
//!   port — (a settle time only when neither answers), and the old one is retired beside
//!   the next actions (`background.rs`): the service's optional `drain`, then SIGTERM in
//!   its `stop_grace_period` (the app finishes what is in flight), then removal. A first
//!   create writes the file and does not wait: there is no traffic to move. A route
//!   added, changed or removed is not a replace: the container stays, and the backend
//!   file is written, moved or removed in place (`backend_file.rs`);
//! - stateful (a named volume): the old container goes first, so two processes never
//!   share the data directory;
//! - otherwise: new beside old under a temporary name, ready, old renamed out of the way,
//!   new renamed to the service's name, old retired beside the next actions.
//!
//! # Who owns the edge's formats
//!
//! Not this crate. The backend file, the API path of a service's servers, the parser of
//! the API's answer and the API port are Traefik's formats, owned by the traefik crate
//! (`stackctl_traefik::TraefikFormats`) and handed to this provider by the front end as a
//! [`stackctl_provider::EdgeFormats`] in [`DockerOptions::edge_formats`]. This crate does
//! not depend on the traefik crate (its tests do, to show the swap writes exactly what
//! Traefik's renderer renders); a routed service applied without the formats fails.
//!
//! Deleting (or replacing) a volume destroys data and needs `allow_data_loss`
//! (`volume.rs`). `begin_apply` takes the host lock (keyed on the stack, see
//! `stackctl_host::HOST_RECORDS_DIRECTORY`), `end_apply` releases
//! it (`provider.rs`).
//!
//! # Where things are
//!
//! - `provider.rs`: [`DockerProvider`] and [`DockerOptions`], the client, the host lock,
//!   and the `Provider` trait, which hands each use to the file of its concept;
//! - `refresh.rs`: reading live state; `evidence.rs`: what the run folder keeps;
//! - `network.rs`, `volume.rs`, `image.rs`, `service.rs`, `files.rs`: applying each kind;
//!   `health.rs` and `swap.rs`: readiness and the zero-downtime swap of a service;
//!   `background.rs`: retiring replaced containers beside the next actions;
//!   `backend_file.rs`: the backend file following a route that comes, moves or goes;
//!   `adopt.rs`: taking over what already exists (adopt, import);
//! - `labels.rs`, `attributes.rs`, `provider_error.rs`: small shared helpers;
//! - [`spec`]: attributes ↔ container, pure; [`api`] and [`http`]: requests and the wire;
//! - [`swarm_service`]: services on a Docker Swarm (`swarm_service.*`).

mod adopt;
pub mod api;
pub mod api_version;
mod attributes;
mod backend_file;
mod background;
pub mod console;
mod evidence;
mod files;
mod hardening;
mod health;
pub mod http;
mod image;
mod labels;
mod live;
pub mod log_frames;
mod network;
mod never_started;
mod one_off;
mod provider;
mod provider_error;
mod prune;
mod refresh;
pub mod registry_auth;
mod release;
mod security;
mod service;
pub mod spec;
pub mod streaming_body;
mod swap;
pub mod swarm;
pub mod swarm_service;
mod volume;

pub use api::{ClientCounters, DockerClient};
pub use evidence::container_list_evidence;
pub use provider::{DockerOptions, DockerProvider};
