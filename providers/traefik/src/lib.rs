//! The Traefik edge of stackctl.
//!
//! - [`render`]: pure renderers of Traefik's static file and of one dynamic file per
//!   route, middleware and backend service (snapshot-tested).
//! - [`spec`]: typed specs read from lowered resource attributes, with defaults and
//!   errors that name the setting.
//! - [`TraefikProvider`]: the `traefik` provider (`file.traefik-static`, `middleware.*`,
//!   `route.*`) writing those files on the target host.
//! - [`policy`]: edge policy for `validate` (dashboard routes protected, middleware
//!   order, production certificates).
//! - [`admin`]: Traefik's API over any stream (routers applied, a service's servers),
//!   for readiness and for the zero-downtime swap.
//! - [`TraefikFormats`]: this crate's backend file and servers API, handed by the front
//!   end to the docker provider (as `stackctl_provider::EdgeFormats`), whose swap steers
//!   the edge. This crate is the one owner of Traefik's formats: the docker provider
//!   knows none of them and does not depend on this crate.
//! - [`scratch`]: validating dynamic files with a throw-away Traefik process (Traefik
//!   has no check command).
//! - [`checks`]: HTTP(S) checks through the edge, and the checks implied by the routes;
//!   `verify.rs` runs them for the engine's `verify` (the provider's `verify`).

pub mod admin;
pub mod checks;
pub mod default_certificate;
mod edge_formats;
pub mod policy;
pub mod provider;
pub mod render;
pub mod replicas;
pub mod scratch;
pub mod spec;
mod verify;
mod yaml;

pub use admin::API_PORT;
pub use edge_formats::TraefikFormats;
pub use provider::{TraefikProvider, PROVIDER_NAME};
pub use render::{render_backend, render_backend_servers};
