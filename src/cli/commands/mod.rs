//! One module per command; each takes settled [`Settings`] and returns an [`Outcome`].
//! What several commands share — loading the stack, lowering, reading live state,
//! making a plan — lives here.

pub mod apply;
pub mod drift;
pub mod graph;
pub mod plan;
pub mod state;
pub mod validate;
pub mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration;

use stackctl_provider::{Address, ProviderError, ReadRequest, Resource};

use super::providers::{self, ProviderOptions};
use super::report::CliError;
use super::settings::Settings;
use crate::apply::ProviderSet;
use crate::config::{self, LoadOptions, LoadedConfig};
use crate::context::{self, ExternalInputs};
use crate::plan::{LiveSnapshot, Plan, PlanInput, PlanMode, SchemaSet, StateIdentity};
use crate::state::{State, StateStore};

/// How long reading one provider's live state may take before the plan goes on without it.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A loaded stack with its state store and providers.
pub struct Session {
    pub loaded: LoadedConfig,
    pub inputs: ExternalInputs,
    pub store: StateStore,
    pub providers: ProviderSet,
    pub connector: std::sync::Arc<stackctl_host::HostConnector>,
    pub host_key_name: Option<String>,
}

impl Session {
    pub fn open(settings: &Settings, options: &ProviderOptions) -> Result<Session, CliError> {
        let loaded = load(settings, false)?;
        for warning in &loaded.warnings {
            eprint!(
                "{}",
                config::diagnostic::render(
                    std::slice::from_ref(warning),
                    &loaded.sources,
                    settings.color_errors
                )
            );
        }
        let inputs = context::gather(&loaded).map_err(|diagnostics| {
            CliError::Config(config::ConfigErrors {
                diagnostics,
                sources: loaded.sources.clone(),
            })
        })?;
        let store = StateStore::new(&settings.state_directory, &loaded.config.stack.name);
        // A host key accepted once is pinned in state; every command that reaches the host
        // (plan, drift, destroy, verify…) must trust it, not only `apply`.
        let mut options = options.clone();
        if options.pinned_host_keys.is_empty() {
            if let Ok(Some(state)) = store.read() {
                options.pinned_host_keys = state.host_keys;
            }
        }
        let built = providers::build(&loaded, &options)?;
        let session = Session {
            loaded,
            inputs,
            store,
            providers: built.set,
            connector: built.connector,
            host_key_name: built.host_key_name,
        };
        super::report::remember_secrets(session.secret_values());
        Ok(session)
    }

    pub fn stack(&self) -> &str {
        &self.loaded.config.stack.name
    }

    /// Lowered and prepared resources, secrets salted with `salt`.
    pub fn desired(&self, salt: &str) -> Result<Vec<Resource>, CliError> {
        let mut resources = crate::lower::lower(&self.loaded, &self.inputs, salt);
        self.providers
            .prepare(&mut resources)
            .map_err(|error| provider_error("cannot prepare the resources", error))?;
        crate::lower::link_edge_to_static_config(&mut resources);
        Ok(resources)
    }

    /// Reads every provider's live state, one batch per provider, concurrently. A provider
    /// that cannot be read is listed in `unread` with why; the plan goes on without it.
    pub async fn read_live(&self, desired: &[Resource], state: Option<&State>) -> LiveSnapshot {
        let recorded: Vec<_> = state
            .map(|state| state.resources.values().cloned().collect())
            .unwrap_or_default();
        let salt = state.map(|state| state.salt.clone()).unwrap_or_default();
        let mut names: BTreeSet<String> = desired
            .iter()
            .map(|resource| resource.provider.clone())
            .collect();
        names.extend(recorded.iter().map(|resource| resource.provider.clone()));
        let mut reads = Vec::new();
        for name in names {
            let Some(provider) = self.providers.get(&name).cloned() else {
                continue;
            };
            let own_desired: Vec<Resource> = desired
                .iter()
                .filter(|resource| resource.provider == name)
                .cloned()
                .collect();
            let mut own_recorded: Vec<_> = recorded
                .iter()
                .filter(|resource| resource.provider == name)
                .cloned()
                .collect();
            // A provider also sees the recorded resources of other providers that its own
            // depend on: the Docker and Traefik providers reach a droplet target at the
            // `ipv4` recorded for `droplet.<name>`, which the DigitalOcean provider owns.
            let needed: BTreeSet<&Address> = own_desired
                .iter()
                .flat_map(|resource| resource.dependencies.iter())
                .chain(
                    own_recorded
                        .iter()
                        .flat_map(|resource| resource.dependencies.iter()),
                )
                .collect();
            let foreign: Vec<_> = recorded
                .iter()
                .filter(|resource| resource.provider != name && needed.contains(&resource.address))
                .cloned()
                .collect();
            own_recorded.extend(foreign);
            let request = ReadRequest {
                stack: self.stack().to_string(),
                salt: salt.clone(),
                desired: own_desired,
                recorded: own_recorded,
            };
            reads.push(async move {
                let result = tokio::time::timeout(READ_TIMEOUT, provider.read(&request)).await;
                (name, result)
            });
        }
        let mut snapshot = LiveSnapshot::default();
        for (name, result) in futures::future::join_all(reads).await {
            match result {
                Ok(Ok(resources)) => {
                    snapshot.read_providers.insert(name);
                    for resource in resources {
                        snapshot
                            .resources
                            .insert(resource.address.clone(), resource);
                    }
                }
                Ok(Err(error)) => snapshot
                    .unread
                    .push(format!("{name}: {}", unread_reason(&error))),
                Err(_) => snapshot.unread.push(format!(
                    "{name}: no answer within {}s",
                    READ_TIMEOUT.as_secs()
                )),
            }
        }
        snapshot
    }

    pub fn schemas(&self) -> SchemaSet {
        SchemaSet::new(self.providers.schemas())
    }

    /// Makes the plan of `mode` against `state`, reading live state unless `offline`.
    pub async fn plan(
        &self,
        state: Option<&State>,
        desired: &[Resource],
        offline: bool,
        targets: &[Address],
        mode: PlanMode,
    ) -> Plan {
        let empty = BTreeMap::new();
        let recorded = state.map(|state| &state.resources).unwrap_or(&empty);
        let snapshot;
        let live = if offline {
            Err("--offline".to_string())
        } else {
            snapshot = self.read_live(desired, state).await;
            if snapshot.read_providers.is_empty() {
                let reason = if snapshot.unread.is_empty() {
                    "no provider could be read".to_string()
                } else {
                    snapshot.unread.join("; ")
                };
                Err(reason)
            } else {
                Ok(&snapshot)
            }
        };
        let schemas = self.schemas();
        let desired: &[Resource] = if mode == PlanMode::Destroy {
            &[]
        } else {
            desired
        };
        crate::plan::plan(&PlanInput {
            stack: self.stack(),
            desired,
            recorded,
            state: identity(state),
            config_fingerprint: desired_fingerprint(desired),
            live,
            schemas: &schemas,
            targets,
            mode,
        })
    }

    /// Every secret value the stack uses, for redaction.
    pub fn secret_values(&self) -> Vec<String> {
        let mut used = BTreeSet::new();
        let text = self
            .loaded
            .sources
            .first()
            .map(|source| source.text.as_str())
            .unwrap_or_default();
        used.extend(config::environment::variables_in(text));
        let mut values = self.loaded.environment.secret_values(&used);
        // Also every value lowering made a secret whatever its variable is called
        // (a basic-auth password, an env value built from a secret).
        for resource in crate::lower::lower(&self.loaded, &self.inputs, "redaction") {
            collect_plaintexts(resource.attributes.values(), &mut values);
        }
        values.sort();
        values.dedup();
        values
    }
}

pub fn identity(state: Option<&State>) -> StateIdentity {
    StateIdentity {
        lineage: state.map(|state| state.lineage.clone()),
        serial: state.map_or(0, |state| state.serial),
    }
}

pub fn load(settings: &Settings, strict: bool) -> Result<LoadedConfig, CliError> {
    Ok(config::load(
        &settings.config_path,
        &LoadOptions {
            env_file: settings.env_file.clone(),
            process_environment: settings.process_environment.clone(),
            strict,
        },
    )?)
}

fn unread_reason(error: &ProviderError) -> String {
    match error {
        ProviderError::Credentials { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

pub fn provider_error(context: &str, error: ProviderError) -> CliError {
    match error {
        ProviderError::Credentials { message, hint } => CliError::new(message).hint(hint),
        ProviderError::Unreachable { target, cause } => {
            CliError::new(format!("{context}: cannot reach {target}")).cause(cause)
        }
        ProviderError::Failed {
            message,
            detail,
            hint,
        } => {
            let mut error = CliError::new(format!("{context}: {message}"));
            if let Some(detail) = detail {
                error = error.cause(detail);
            }
            if let Some(hint) = hint {
                error = error.hint(hint);
            }
            error
        }
    }
}

pub fn parse_targets(targets: &[String]) -> Result<Vec<Address>, CliError> {
    targets
        .iter()
        .map(|target| {
            Address::parse(target).map_err(|error| {
                CliError::new(error.to_string())
                    .hint("addresses look like `service.api`; `stackctl state list` shows them")
            })
        })
        .collect()
}

/// Writes to stdout, ignoring a closed pipe (`stackctl plan | head`).
pub fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Asks on the terminal; anything but `yes`/`y` declines.
pub fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
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

fn collect_plaintexts<'a>(
    values: impl Iterator<Item = &'a stackctl_provider::Value>,
    found: &mut Vec<String>,
) {
    for value in values {
        match value {
            stackctl_provider::Value::Secret(secret) => {
                found.extend(secret.expose().map(str::to_string))
            }
            stackctl_provider::Value::List(items) => collect_plaintexts(items.iter(), found),
            stackctl_provider::Value::Map(entries) => collect_plaintexts(entries.values(), found),
            _ => {}
        }
    }
}

/// Refuses `--target` addresses that neither stack.toml nor state knows.
pub fn check_targets(
    targets: &[Address],
    desired: &[Resource],
    state: Option<&State>,
) -> Result<(), CliError> {
    for target in targets {
        let known = desired.iter().any(|resource| &resource.address == target)
            || state.is_some_and(|state| state.resources.contains_key(target));
        if !known {
            let names: Vec<String> = desired
                .iter()
                .map(|resource| resource.address.to_string())
                .collect();
            let hint = config::diagnostic::did_you_mean(
                &target.to_string(),
                names.iter().map(String::as_str),
            )
            .unwrap_or_else(|| "`stackctl graph` lists every address".to_string());
            return Err(CliError::new(format!(
                "`--target {target}`: no such resource in stack.toml or in state"
            ))
            .hint(hint));
        }
    }
    Ok(())
}
