//! stackctl's DigitalOcean provider: droplets, SSH keys, cloud firewalls and DNS records
//! through the v2 API ([`client`]), the [`Provider`](stackctl_provider::Provider)
//! implementation that reconciles them ([`DigitalOceanProvider`]), and a stateful API
//! emulator held to DigitalOcean's contract ([`emulator`], also the
//! `stackctl-do-emulator` binary) for tests, demos and CI.

pub mod api;
pub mod client;
pub mod emulator;
mod fingerprint;
mod provider;

pub use client::{Client, ClientConfig, ClientError, PollPolicy, RetryPolicy, Token};
pub use emulator::{Emulator, EmulatorConfig, Faults};
pub use fingerprint::ssh_fingerprint;
pub use provider::{DigitalOceanProvider, ProviderOptions, PROVIDER_NAME};
