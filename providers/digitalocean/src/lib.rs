//! stackctl's DigitalOcean provider: droplets, SSH keys, cloud firewalls and DNS records
//! through the v2 API ([`client`]), and the [`Provider`](stackctl_provider::Provider)
//! implementation that reconciles them ([`DigitalOceanProvider`]).
//!
//! The stateful API emulator the tests run against lives in its own crate,
//! `stackctl-do-emulator`, so that it never ships inside the `stackctl` binary.

pub mod api;
pub mod client;
mod fingerprint;
mod provider;

pub use client::{Client, ClientConfig, ClientError, PollPolicy, RetryPolicy, Token};
pub use fingerprint::ssh_fingerprint;
pub use provider::{DigitalOceanProvider, ProviderOptions, PROVIDER_NAME};
