//! Refresh and plan: reading every provider's live state (one batch each, concurrently)
//! and planning desired × recorded × live.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use stackctl_provider::{Address, ProviderError, ReadRequest, Resource};

use super::{desired_fingerprint, identity, Session, SessionError};
use crate::plan::{LiveSnapshot, Plan, PlanInput, PlanMode};
use crate::state::State;

/// How long reading one provider's live state may take before the plan goes on without it.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

impl Session {
    /// The recorded state plans are made against: none before the first apply.
    pub(super) fn recorded_state(&self) -> Option<&State> {
        self.state.as_ref().filter(|state| state.serial > 0)
    }

    /// Reads every provider's live state, one batch per provider, concurrently. A provider
    /// that cannot be read is listed in `unread` with why; the plan goes on without it.
    pub async fn read_live(&self) -> LiveSnapshot {
        let state = self.recorded_state();
        let desired = &self.desired;
        let recorded: Vec<_> = state
            .map(|state| state.resources.values().cloned().collect())
            .unwrap_or_default();
        // The salt the desired secrets were hashed with (a new stack's when there is no
        // state): live secrets hashed with another would all look changed on adoption.
        let salt = self.salt.clone();
        let mut names: BTreeSet<String> = desired
            .iter()
            .map(|resource| resource.provider.clone())
            .collect();
        names.extend(recorded.iter().map(|resource| resource.provider.clone()));
        let mut reads = Vec::new();
        for name in names {
            let Some(provider) = self.backends.providers.get(&name).cloned() else {
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

    /// Makes the plan of `mode` against the recorded state, reading live state unless
    /// `offline`. Refuses a state that did not deploy the stack on its host
    /// ([`Session::check_owner`]).
    pub async fn plan(
        &self,
        offline: bool,
        targets: &[Address],
        mode: PlanMode,
    ) -> Result<Plan, SessionError> {
        let state = self.recorded_state();
        let empty = BTreeMap::new();
        let recorded = state.map(|state| &state.resources).unwrap_or(&empty);
        let snapshot;
        let live = if offline {
            Err("--offline".to_string())
        } else {
            snapshot = self.read_live().await;
            tracing::debug!("live state read");
            // After the read, and only when every provider answered: an unreachable host
            // is not asked twice (each costing the connect timeout), and the apply
            // checks again under the host lock anyway.
            if snapshot.unread.is_empty() {
                self.check_owner().await?;
                tracing::debug!("owner checked");
            }
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
        // The resources that waited for the refresh are prepared with what it read.
        let finished = self.finished_desired(live.as_ref().ok().copied())?;
        let desired: &[Resource] = if mode == PlanMode::Destroy {
            &[]
        } else {
            finished
        };
        // Destroy also removes what an interrupted apply created but never recorded.
        let swept;
        let recorded = match (&live, mode) {
            (Ok(snapshot), PlanMode::Destroy) => {
                swept = super::destroy::with_unrecorded_owned(
                    recorded,
                    snapshot,
                    finished,
                    &self.backends.providers.schemas(),
                );
                &swept
            }
            _ => recorded,
        };
        let mut plan = crate::plan::plan(&PlanInput {
            stack: self.stack(),
            desired,
            recorded,
            state: identity(state),
            config_fingerprint: desired_fingerprint(desired),
            live,
            schemas: &schemas,
            targets,
            mode,
        });
        self.explain_rollback(&mut plan);
        Ok(plan)
    }
}

fn unread_reason(error: &ProviderError) -> String {
    match error {
        ProviderError::Credentials { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
