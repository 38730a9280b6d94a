//! Which state owns the stack on its host.
//!
//! The host records the lineage of the state that deploys the stack there (beside the
//! host lock, keyed on the stack: see `stackctl_host::HOST_RECORDS_DIRECTORY`), written
//! under the host lock at each apply. A state with recorded resources of another lineage
//! — a copy of state that went its own way, another checkout's state — would fight over
//! the same containers, each apply undoing the other's; it is refused before anything
//! is planned. An empty state (a first apply, or a lost state starting over) may adopt
//! the stack and becomes its owner, so losing state still converges in one apply.
//!
//! The record is read with the refresh's own read of the stack's files (no command of its
//! own over SSH), and again under the host lock, in the lock's command, at each apply.

use super::{Session, SessionError};

impl Session {
    /// Refuses a state with recorded resources whose lineage is not the one that deployed
    /// the stack on the target. Called once live state was read from every provider; a
    /// host that cannot be read is not a refusal: the plan says what it could not read,
    /// and the apply checks again under the host lock.
    pub async fn check_owner(&self) -> Result<(), SessionError> {
        let (Some(host), Some(state)) = (&self.backends.host, self.recorded_state()) else {
            return Ok(());
        };
        if state.resources.is_empty() {
            return Ok(());
        }
        let droplet_address = self.droplet_address();
        let Ok(Some(host_lineage)) = host
            .deployed_lineage(self.stack(), droplet_address.as_deref())
            .await
        else {
            return Ok(());
        };
        if host_lineage == state.lineage {
            return Ok(());
        }
        Err(SessionError::ForeignLineage {
            stack: self.stack().to_string(),
            host: host
                .key_name()
                .map(|name| format!("`{name}`"))
                .unwrap_or_else(|| "this machine".to_string()),
            state_path: self.store.state_path().display().to_string(),
            state_lineage: state.lineage.clone(),
            host_lineage,
        })
    }
}
