//! Running a plan: the executor, the run folder, and redaction.

pub mod executor;
pub mod memory;
pub mod redact;
pub mod runs;
pub mod security_report;

use std::collections::BTreeMap;
use std::sync::Arc;

use stackctl_provider::{Address, KindSchema, Provider, ProviderError, Resource};

pub use executor::{
    execute, execute_actions, ActionOutcome, ApplyOptions, ApplyReport, Event, Executed,
    InterruptSignal, Interruption, Status,
};

/// The providers of a run, by name.
#[derive(Clone, Default)]
pub struct ProviderSet {
    providers: BTreeMap<String, Arc<dyn Provider>>,
}

impl ProviderSet {
    pub fn new(providers: impl IntoIterator<Item = Arc<dyn Provider>>) -> Self {
        ProviderSet {
            providers: providers
                .into_iter()
                .map(|provider| (provider.name().to_string(), provider))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.providers.values()
    }

    /// The one-off containers and host files of the provider that runs containers on
    /// the target host, if one does (backups use them).
    pub fn host_tasks(&self) -> Option<&dyn stackctl_provider::HostTasks> {
        self.providers
            .values()
            .find_map(|provider| provider.host_tasks())
    }

    pub fn schemas(&self) -> Vec<KindSchema> {
        self.providers
            .values()
            .flat_map(|provider| provider.kinds())
            .collect()
    }

    /// Lets each provider derive attributes (rendered files) before planning. Returns the
    /// resources whose provider prepares them after the refresh instead
    /// ([`Provider::prepare_waits_for_refresh`]), left as lowered (and checked).
    pub fn prepare(&self, resources: &mut [Resource]) -> Result<Vec<Address>, ProviderError> {
        let mut waiting = Vec::new();
        for resource in resources.iter_mut() {
            if let Some(provider) = self.providers.get(&resource.provider) {
                if provider.prepare_waits_for_refresh(resource)? {
                    waiting.push(resource.address.clone());
                } else {
                    provider.prepare(resource)?;
                }
            }
        }
        Ok(waiting)
    }
}
