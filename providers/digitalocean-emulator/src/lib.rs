//! A stateful stand-in for the DigitalOcean v2 API, for tests, demos and CI.
//!
//! stackctl's DigitalOcean provider is only as trustworthy as the double it is tested
//! against, so the emulator is held to DigitalOcean's published contract
//! (`reference/digitalocean/openapi-subset.yaml`): every endpoint of that subset is
//! served with the documented status codes, wrapping keys, required fields, pagination
//! (`links.pages` + `meta.total`), bearer authentication, the error body
//! `{id, message, request_id}` and the three `ratelimit-*` headers on every answer.
//! The contract tests in `tests/` validate each exchange against the schemas.
//!
//! It is *stateful* where the real service is: a created droplet is `new` with no
//! network, and becomes `active` with a public IPv4 address (configurable, so that a
//! test sshd on 127.0.0.1 can play the droplet) once its `create` action completes
//! after a configurable delay. Power and resize actions lock the droplet while they run;
//! a resize of a running droplet is refused with 422, as DigitalOcean's documentation
//! requires powering off first. Firewalls go `waiting` → `succeeded`; domains come
//! with their NS records; deleting a droplet detaches it from firewalls.
//!
//! Time only moves when a request arrives: state is advanced lazily against a monotonic
//! clock, so there are no background tasks to race with and tests stay deterministic.
//!
//! Faults are injected to prove the client's resilience, either at start (flags or
//! environment of the `stackctl-do-emulator` binary) or at runtime through the admin
//! endpoints under `/_emulator/`:
//!
//! * `server_errors: N` — the next N matching requests get a 500 before doing anything;
//! * `rate_limited: N` — the next N get a 429 with `retry-after` (a burst-limit trip);
//! * `drop_after_commit: N` — the next N matching mutations are carried out, then the
//!   connection is closed without an answer: the client cannot know it succeeded;
//! * `slow_responses: N` — the next N matching requests are carried out, and answered
//!   only after `slow_response_ms` (a client timeout after the work was done);
//! * `only: "POST /v2/droplets"` restricts the faults to one method and path prefix.
//!
//! Admin endpoints (same bearer token): `GET /_emulator/state`, `GET|POST
//! /_emulator/faults`, `GET /_emulator/exchanges`, `POST /_emulator/reset`, and drift
//! makers `POST /_emulator/droplets/{id}/resize-out-of-band {"size"}`,
//! `.../power-off-out-of-band`, `.../retag-out-of-band {"tags"}`.
//!
//! The emulator listens on loopback only: it has one token, no TLS and no persistence.

mod catalog;
mod config;
mod fingerprint;
mod server;
mod state;

pub use config::{ConfigError, EmulatorConfig, Faults};
pub use server::Emulator;
pub use state::Exchange;
