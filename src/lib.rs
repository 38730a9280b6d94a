//! stackctl: plan, apply and watch a small production web stack from one stack.toml.
//!
//! The engine is a pipeline of pure functions with I/O at the edges:
//! `config` (stack.toml → Config) → `lower` (→ desired resources) → `plan` (desired ×
//! recorded × live → actions) → `render` (text, JSON, markdown); `state` stores what was
//! applied and `apply` runs a plan through the providers. A `session` is one run: it owns
//! the use cases (plan, apply, drift, verify, import) that every front end calls.

pub mod apply;
pub mod backup;
pub mod cli;
pub mod config;
pub mod context;
pub mod graph;
pub mod lower;
pub mod plan;
pub mod render;
pub mod session;
pub mod state;
