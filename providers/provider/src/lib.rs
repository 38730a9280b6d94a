//! The contract between the stackctl engine and its providers.
//!
//! The engine lowers `stack.toml` into [`Resource`]s, plans [`Action`]s against recorded
//! and live state, and hands each action to the [`Provider`] that owns its kind. Nothing
//! in this crate knows about the engine, the CLI or any concrete provider, so a provider
//! depends on this crate alone.

mod action;
mod address;
pub mod build_context;
mod edge_formats;
mod one_off;
mod provider;
mod resource;
mod schema;
mod secret;
mod tls_report;
mod value;
mod verify;

pub use action::{Action, ActionKind, AttributeChange, Reason, ReplaceOrder};
pub use address::{Address, AddressError};
pub use edge_formats::{EdgeFormatError, EdgeFormats};
pub use one_off::{
    EnvFrom, HostTasks, MountSource, OneOffMount, OneOffResult, OneOffTask, Stopped,
    StoppedContainer,
};
pub use provider::{
    ApplyContext, ApplyOutcome, LiveResource, ProgressSink, Provider, ProviderError, ReadRequest,
    DROPLET_ADDRESS_ATTRIBUTE,
};
pub use resource::{canonical_json, sha256_hex, Attributes, RecordedResource, Resource};
pub use schema::{AttributeSchema, KindSchema};
pub use secret::Secret;
pub use tls_report::{EdgeTlsReport, HstsFinding, NegotiatedTls, VersionProbe};
pub use value::{Reference, Value};
pub use verify::{DashboardLogin, UserCheck, Verification, VerifyError, VerifyRequest};
