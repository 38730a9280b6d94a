//! One run of stackctl: the engine's use cases, in one place, for every front end.
//!
//! A [`Session`] loads the stack (stack.toml, `.env`, build contexts), reads the recorded
//! state (under the state lock when it will write), builds the providers through the
//! front end's [`BackendFactory`], and computes the desired resources **once** — lowered,
//! prepared by their providers, the edge linked to its static file. Every use case then
//! works on that one set:
//!
//! - [`Session::plan`] and [`Session::read_live`] (`refresh.rs`): desired × recorded ×
//!   live → a plan;
//! - [`Session::apply`] (`apply_run.rs`): preflight, the data-loss gate, the journal, the
//!   executor, the host-key pin, the run folder with its evidence, the summary and the
//!   checks;
//! - [`Session::drift`] and [`Session::accept_drift`] (`drift.rs`);
//! - [`Session::verify`] (`verify.rs`): the checks through the edge;
//! - [`Session::import`] (`import.rs`) and [`Session::unlock_host`];
//! - [`Session::logs`] and [`Session::exec`] (`console.rs`): a service's live containers.
//!
//! The CLI turns arguments into [`SessionSettings`], calls these, and prints what they
//! return; the session itself never prints. Progress and notes reach the front end
//! through a [`RunObserver`].

mod apply_run;
mod backends;
mod backup;
mod console;
mod destroy;
mod drift;
mod error;
mod history;
mod import;
mod owner;
mod refresh;
mod replace;
mod rollback;
mod secrets;
mod security;
mod status;
mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use stackctl_provider::{Address, Resource, Value};

pub use apply_run::{summarize, ApplyRun, RunObserver};
pub use backends::{BackendFactory, Backends, PresentedHostKey, TargetHost};
pub use backup::{ListedDump, MadeDump, RestorePlan};
pub use console::{
    ConsoleError, ConsoleOutput, ConsoleStream, ContainerConsole, ExecCommand, ExecInput,
    LogSelection, OutputSink, RunningContainer,
};
pub use drift::DriftReport;
pub use error::{GoneImage, SessionError};
pub use replace::UnknownReplace;
pub use rollback::RollbackPlan;
pub use secrets::{generate_secrets, GeneratedSecrets, SecretsError};
pub use status::{RouteStatus, ServiceStatus, StackStatus};
pub use verify::VerifyReport;

use crate::config::{self, Diagnostic, LoadOptions, LoadedConfig};
use crate::context::{self, ExternalInputs};
use crate::plan::{SavedPlan, SchemaSet, StateIdentity};
use crate::state::{State, StateLock, StateStore};

/// Where a session finds its inputs and keeps its records.
#[derive(Clone, Debug, Default)]
pub struct SessionSettings {
    pub config_path: PathBuf,
    /// `--env-file`; `[stack] env_file` otherwise.
    pub env_file: Option<PathBuf>,
    /// The process environment: it wins over the env file.
    pub process_environment: BTreeMap<String, String>,
    pub state_directory: PathBuf,
    pub runs_directory: PathBuf,
    /// How long to wait for the state lock held by another run (`--lock-timeout`); zero
    /// fails at once.
    pub lock_timeout: std::time::Duration,
}

/// Whether the session will write state.
#[derive(Clone, Debug)]
pub enum Access {
    /// Reads state as it is (plan, drift, verify, graph).
    Read,
    /// Takes the state lock for `command` (`stackctl apply`) and folds a journal left by
    /// an interrupted run before reading.
    Write { command: String },
}

/// Counts the times a session computed its desired resources (tests prove it is once).
static DESIRED_COMPUTATIONS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// How many times any session in this process computed its desired resources.
pub fn desired_computations() -> usize {
    DESIRED_COMPUTATIONS.load(std::sync::atomic::Ordering::SeqCst)
}

pub struct Session {
    loaded: LoadedConfig,
    inputs: ExternalInputs,
    store: StateStore,
    /// Held for the whole session when it writes; released on drop.
    _lock: Option<StateLock>,
    /// The recorded state, `None` before the first apply.
    state: Option<State>,
    /// The salt secrets are hashed with: the state's, or a new stack's.
    salt: String,
    backends: Backends,
    /// Lowered, prepared and linked: computed once, in [`Session::open`].
    desired: Vec<Resource>,
    secrets: Vec<String>,
    runs_directory: PathBuf,
    /// Set by [`Session::prepare_rollback`]: the history entry the desired resources were
    /// taken from, instead of stack.toml.
    rolling_back_to: Option<u64>,
}

impl Session {
    /// Loads the stack and its state and computes the desired resources. `saved_salt` is
    /// the salt of a saved plan being applied, used when there is no state yet so that
    /// the plan's hashes can be checked.
    pub fn open(
        settings: &SessionSettings,
        factory: &dyn BackendFactory,
        access: Access,
        saved_salt: Option<&str>,
    ) -> Result<Session, SessionError> {
        let loaded = load(settings, false)?;
        Session::open_loaded(loaded, settings, factory, access, saved_salt)
    }

    /// [`Session::open`] for a stack file already loaded (so that a front end can show
    /// its warnings first).
    pub fn open_loaded(
        loaded: LoadedConfig,
        settings: &SessionSettings,
        factory: &dyn BackendFactory,
        access: Access,
        saved_salt: Option<&str>,
    ) -> Result<Session, SessionError> {
        let inputs = context::gather(&loaded).map_err(|diagnostics| {
            SessionError::Config(config::ConfigErrors {
                diagnostics,
                sources: loaded.sources.clone(),
            })
        })?;
        let stack = loaded.config.stack.name.clone();
        let store = StateStore::new(&settings.state_directory, &stack);
        let (lock, state) = match &access {
            Access::Read => (None, store.read()?),
            Access::Write { command } => {
                let lock = store.lock_waiting(command, settings.lock_timeout)?;
                (Some(lock), store.load_for_write()?)
            }
        };
        let salt = match (&state, saved_salt) {
            (Some(state), _) => state.salt.clone(),
            (None, Some(saved)) => saved.to_string(),
            (None, None) => State::new(&stack).salt,
        };
        let pinned = state
            .as_ref()
            .map(|state| state.host_keys.clone())
            .unwrap_or_default();
        let recorded_swarm_manager = state.as_ref().and_then(|state| {
            state
                .resources
                .get(&Address::new("swarm", crate::lower::SWARM_CLUSTER))
                .and_then(|cluster| cluster.attributes.get("manager"))
                .and_then(Value::as_text)
                .map(str::to_string)
        });
        let backends = factory.build(&loaded, &pinned, recorded_swarm_manager.as_deref())?;
        let (desired, secrets) = compute_desired(&loaded, &inputs, &backends, &salt)?;
        tracing::debug!(resources = desired.len(), "desired resources computed");
        Ok(Session {
            loaded,
            inputs,
            store,
            _lock: lock,
            state,
            salt,
            backends,
            desired,
            secrets,
            runs_directory: settings.runs_directory.clone(),
            rolling_back_to: None,
        })
    }

    pub fn stack(&self) -> &str {
        &self.loaded.config.stack.name
    }

    pub fn loaded(&self) -> &LoadedConfig {
        &self.loaded
    }

    /// Warnings found while loading stack.toml (shown, never fatal without `--strict`).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.loaded.warnings
    }

    /// The desired resources of this run: lowered, prepared, linked — computed once.
    pub fn desired(&self) -> &[Resource] {
        &self.desired
    }

    /// The salt the desired resources' secrets are hashed with.
    pub fn salt(&self) -> &str {
        &self.salt
    }

    /// The recorded state, if there is one.
    pub fn state(&self) -> Option<&State> {
        self.state.as_ref()
    }

    /// The run whose state lock this one took over: it ended without releasing it
    /// (killed, or its machine lost power). The front end warns about it.
    pub fn lock_taken_over_from(&self) -> Option<&crate::state::LockHolder> {
        self._lock.as_ref().and_then(StateLock::taken_over_from)
    }

    /// Who holds the state lock right now, if a live run does (`plan` mentions it).
    pub fn lock_holder(&self) -> Option<crate::state::LockHolder> {
        StateLock::holder(&self.store.lock_path())
    }

    pub fn store(&self) -> &StateStore {
        &self.store
    }

    pub fn inputs(&self) -> &ExternalInputs {
        &self.inputs
    }

    pub fn schemas(&self) -> SchemaSet {
        SchemaSet::new(self.backends.providers.schemas())
    }

    /// Every secret value the stack uses, for redaction.
    pub fn secret_values(&self) -> &[String] {
        &self.secrets
    }

    /// The state's lineage and serial, as plans carry them.
    pub fn identity(&self) -> StateIdentity {
        identity(self.state.as_ref())
    }

    /// Refuses `--target` addresses that neither stack.toml nor state knows.
    pub fn check_targets(&self, targets: &[Address]) -> Result<(), SessionError> {
        for target in targets {
            let known = self
                .desired
                .iter()
                .any(|resource| &resource.address == target)
                || self
                    .state
                    .as_ref()
                    .is_some_and(|state| state.resources.contains_key(target));
            if !known {
                let names: Vec<String> = self
                    .desired
                    .iter()
                    .map(|resource| resource.address.to_string())
                    .collect();
                return Err(SessionError::UnknownTarget {
                    target: target.clone(),
                    nearest: config::diagnostic::did_you_mean(
                        &target.to_string(),
                        names.iter().map(String::as_str),
                    ),
                });
            }
        }
        Ok(())
    }

    /// Refuses a saved plan when state or anything that changes what would be applied
    /// moved since it was made. `path` names the file in the error.
    pub fn check_saved_plan(&self, saved: &SavedPlan, path: &str) -> Result<(), SessionError> {
        let fingerprint = desired_fingerprint(&self.desired);
        saved
            .check_current(
                self.stack(),
                self.state.as_ref().map(|state| state.lineage.as_str()),
                self.state.as_ref().map_or(0, |state| state.serial),
                &fingerprint,
            )
            .map_err(|stale| SessionError::SavedPlanStale {
                path: path.to_string(),
                reason: stale.to_string(),
            })
    }

    /// Clears what a gone holder left beside the target host's lock (`stackctl state
    /// unlock --host`); the lock itself dies with its holder's SSH session.
    pub async fn unlock_host(&self) -> Result<String, SessionError> {
        let Some(host) = &self.backends.host else {
            return Err(SessionError::Host(
                "this stack has no target host to unlock".to_string(),
            ));
        };
        host.unlock(self.stack(), self.droplet_address().as_deref())
            .await
    }

    /// The target droplet's public IPv4 address as recorded in state, if there is one.
    pub fn droplet_address(&self) -> Option<String> {
        droplet_address(&self.loaded.config, self.state.as_ref())
    }
}

/// The state's lineage and serial, as plans carry them.
pub fn identity(state: Option<&State>) -> StateIdentity {
    StateIdentity {
        lineage: state.map(|state| state.lineage.clone()),
        serial: state.map_or(0, |state| state.serial),
    }
}

/// Loads and validates stack.toml with the settings' env file and environment.
pub fn load(settings: &SessionSettings, strict: bool) -> Result<LoadedConfig, SessionError> {
    Ok(config::load(
        &settings.config_path,
        &LoadOptions {
            env_file: settings.env_file.clone(),
            process_environment: settings.process_environment.clone(),
            strict,
        },
    )?)
}

/// What a saved plan must still match to be applied: every desired resource's address and
/// hash. It covers stack.toml, the env file *and* the process environment, build contexts,
/// key files and file sources — anything that changes what would be applied. Secrets enter
/// only as salted digests.
pub fn desired_fingerprint(desired: &[Resource]) -> String {
    let mut text = String::new();
    for resource in desired {
        text.push_str(&format!("{}={}\n", resource.address, resource.hash()));
    }
    stackctl_provider::sha256_hex(text.as_bytes())
}

/// The target droplet's public IPv4 address as recorded in state, if there is one: the
/// one place that knows where a droplet's address is recorded.
pub fn droplet_address(config: &crate::config::Config, state: Option<&State>) -> Option<String> {
    let droplet = crate::config::validate::target_droplet(config)?;
    let recorded = state?.resources.get(&Address::new("droplet", droplet))?;
    recorded
        .attributes
        .get(stackctl_provider::DROPLET_ADDRESS_ATTRIBUTE)?
        .as_text()
        .map(str::to_string)
}

/// Lowers the stack, lets each provider derive its attributes, and links the edge to its
/// static file. Also returns the secret values the stack uses, for redaction.
fn compute_desired(
    loaded: &LoadedConfig,
    inputs: &ExternalInputs,
    backends: &Backends,
    salt: &str,
) -> Result<(Vec<Resource>, Vec<String>), SessionError> {
    DESIRED_COMPUTATIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut resources = crate::lower::lower(loaded, inputs, salt);
    // Secrets are collected before providers derive their files: a derived value (a
    // bcrypt digest) is not itself a secret.
    let secrets = secret_values(loaded, &resources);
    backends
        .providers
        .prepare(&mut resources)
        .map_err(|error| SessionError::provider("cannot prepare the resources", error))?;
    crate::lower::link_edge_to_static_config(&mut resources);
    Ok((resources, secrets))
}

/// Every secret value the stack uses: the environment's secret variables that stack.toml
/// names, and every value lowering made a secret whatever its variable is called (a
/// basic-auth password, an env value built from a secret).
fn secret_values(loaded: &LoadedConfig, desired: &[Resource]) -> Vec<String> {
    let mut used = BTreeSet::new();
    let text = loaded
        .sources
        .first()
        .map(|source| source.text.as_str())
        .unwrap_or_default();
    used.extend(config::environment::variables_in(text));
    let mut values = loaded.environment.secret_values(&used);
    for resource in desired {
        collect_plaintexts(resource.attributes.values(), &mut values);
    }
    values.sort();
    values.dedup();
    values
}

fn collect_plaintexts<'a>(values: impl Iterator<Item = &'a Value>, found: &mut Vec<String>) {
    for value in values {
        match value {
            Value::Secret(secret) => found.extend(secret.expose().map(str::to_string)),
            Value::List(items) => collect_plaintexts(items.iter(), found),
            Value::Map(entries) => collect_plaintexts(entries.values(), found),
            _ => {}
        }
    }
}
