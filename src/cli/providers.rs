//! The one place that names the concrete providers and builds them from the stack.

use crate::apply::ProviderSet;
use crate::config::LoadedConfig;

use super::report::CliError;

/// What the CLI tells providers beyond the stack itself.
#[derive(Clone, Debug, Default)]
pub struct ProviderOptions {
    /// `--accept-new-host-key`.
    pub accept_new_host_key: bool,
    /// Host key fingerprints pinned in state, by `address:port`.
    pub pinned_host_keys: std::collections::BTreeMap<String, String>,
}

pub fn build(_loaded: &LoadedConfig, _options: &ProviderOptions) -> Result<ProviderSet, CliError> {
    Ok(ProviderSet::default())
}

/// Clears a stale lock on the target host (`stackctl state unlock --host`).
pub async fn unlock_host(
    _loaded: &LoadedConfig,
    _state: Option<&crate::state::State>,
) -> Result<String, CliError> {
    Err(CliError::new(
        "clearing the host lock needs the host transport, which this build does not include yet",
    ))
}

/// Runs the stack's checks and the implied edge checks; writes results to `run_folder`.
pub async fn verify(
    _session: &super::commands::Session,
    _settings: &super::settings::Settings,
    _json: bool,
    _run_folder: Option<&crate::apply::runs::RunFolder>,
) -> Result<super::report::Outcome, CliError> {
    Err(CliError::new(
        "checks need the Traefik provider, which this build does not include yet",
    ))
}
