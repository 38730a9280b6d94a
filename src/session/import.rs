//! Import: adopting an existing resource, found by its provider's id, into state without
//! changing it (`stackctl import droplet.web-1 <id>`).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use stackctl_provider::{Address, ApplyContext};

use super::{Session, SessionError};
use crate::state::{JournalEntry, State};

impl Session {
    /// Records `address` as the live resource `id`; the session must have been opened for
    /// writing.
    pub async fn import(&mut self, address: &Address, id: &str) -> Result<(), SessionError> {
        let wanted = self
            .finished_desired(None)?
            .iter()
            .find(|resource| &resource.address == address)
            .cloned()
            .ok_or_else(|| SessionError::NotInStack(address.clone()))?;
        let provider = self
            .backends
            .providers
            .get(&wanted.provider)
            .cloned()
            .ok_or_else(|| SessionError::NoProvider(wanted.provider.clone()))?;
        let mut state = self.state.take().unwrap_or_else(|| State {
            salt: self.salt.clone(),
            ..State::new(self.stack())
        });
        let context = ApplyContext {
            stack: self.stack().to_string(),
            lineage: state.lineage.clone(),
            state_was_empty: state.resources.is_empty(),
            salt: state.salt.clone(),
            health_timeout: Duration::from_secs(60),
            allow_data_loss: false,
            recorded: Arc::new(RwLock::new(state.attributes_by_address())),
        };
        let result = match provider.import(address, id, Some(&wanted), &context).await {
            Ok(recorded) => {
                state.apply_entry(&JournalEntry::Put { resource: recorded });
                self.store.save(&mut state).map_err(SessionError::from)
            }
            Err(error) => Err(SessionError::provider(
                format!("cannot import `{address}`"),
                error,
            )),
        };
        self.state = Some(state);
        result
    }
}
