//! Planning for an apply that follows at once (`apply --yes`): the providers begin — the
//! host lock is taken — beside the refresh instead of after the plan.
//!
//! Over SSH the host lock is one command on the host (a session and the user's login
//! shell, 100–300 ms). Taken after the plan, it sat in series between the refresh's reads
//! and the first action of every apply; taken beside the reads, it costs no time of its
//! own. Terraform holds its lock from the plan to the end of the apply the same way;
//! `stackctl plan` alone still takes none.
//!
//! Only with recorded state: the lock records the state's lineage (and, under it, the
//! host's owner is checked), and a first apply makes its lineage only when it starts. A
//! provider whose target cannot be reached yet (a droplet the plan creates again) begins
//! again before its first action, as before; one that could not take the lock (another
//! run holds it) fails its first action with that reason, as it would have then.
//!
//! Whatever comes next, what began here is ended: by the apply (the executor ends every
//! provider that began, actions or not), or by [`Session::end_begun_early`] when no apply
//! follows (nothing to change, an error before it). Ctrl-C before the apply ends the
//! process, and the kernel releases the host lock with it, as it does the state lock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use stackctl_provider::{Address, ApplyContext, ProviderError};

use super::{Session, SessionError};
use crate::apply::ApplyOptions;
use crate::plan::{Plan, PlanMode};

/// The providers a session began before its apply, and the context they began with.
pub(super) struct BegunEarly {
    pub(super) providers: BTreeMap<String, Result<(), ProviderError>>,
    pub(super) context: ApplyContext,
}

impl Session {
    /// [`Session::plan`] (never offline) for an apply that follows without a question:
    /// every provider of the stack begins beside the refresh. The apply takes them over;
    /// when none follows, call [`Session::end_begun_early`].
    pub async fn plan_to_apply(
        &mut self,
        targets: &[Address],
        mode: PlanMode,
        options: &ApplyOptions,
    ) -> Result<Plan, SessionError> {
        let Some(state) = self.recorded_state() else {
            return self.plan(false, targets, mode).await;
        };
        let context = ApplyContext {
            stack: self.stack().to_string(),
            lineage: state.lineage.clone(),
            state_was_empty: state.resources.is_empty(),
            salt: state.salt.clone(),
            health_timeout: options.health_timeout,
            allow_data_loss: options.allow_data_loss,
            recorded: Arc::new(RwLock::new(state.attributes_by_address())),
        };
        let begin = async {
            // A destroy touches only what state records: a provider of stack.toml with
            // nothing recorded must not connect, lock, or mark a host as this stack's.
            let mut names: BTreeSet<&str> = match mode {
                PlanMode::Destroy => BTreeSet::new(),
                _ => self
                    .desired
                    .iter()
                    .map(|resource| resource.provider.as_str())
                    .collect(),
            };
            names.extend(
                state
                    .resources
                    .values()
                    .map(|resource| resource.provider.as_str()),
            );
            let begins = names.into_iter().filter_map(|name| {
                let provider = self.backends.providers.get(name)?.clone();
                let context = &context;
                Some(async move {
                    let result = provider.begin_apply(context).await;
                    match &result {
                        Ok(()) => tracing::debug!(
                            provider = name,
                            "provider begun beside the refresh (host lock taken)"
                        ),
                        Err(error) => tracing::debug!(
                            provider = name,
                            %error,
                            "provider could not begin beside the refresh"
                        ),
                    }
                    (name.to_string(), result)
                })
            });
            futures::future::join_all(begins)
                .await
                .into_iter()
                .collect::<BTreeMap<_, _>>()
        };
        let (plan, mut providers) = tokio::join!(self.plan(false, targets, mode), begin);
        // A target not reachable yet (a droplet the plan creates again) is tried again
        // when the provider's first action starts, as without this early start.
        providers.retain(|_, result| !matches!(result, Err(ProviderError::Unreachable { .. })));
        self.begun_early = Some(BegunEarly { providers, context });
        if plan.is_err() {
            self.end_begun_early().await;
        }
        plan
    }

    /// Ends the providers [`Session::plan_to_apply`] began when no apply took them over
    /// (the plan had nothing to change, or failed): the host lock is released.
    pub async fn end_begun_early(&mut self) {
        if let Some(begun) = self.begun_early.take() {
            self.end_begun(begun).await;
        }
    }

    /// Ends every provider of `begun` that began. A failure to end is only logged: the
    /// host lock goes with the connection when the process ends anyway.
    pub(super) async fn end_begun(&self, begun: BegunEarly) {
        for (name, result) in &begun.providers {
            let Some(provider) = self.backends.providers.get(name) else {
                continue;
            };
            if result.is_ok() {
                if let Err(error) = provider.end_apply(&begun.context).await {
                    tracing::warn!("the {name} provider did not end cleanly: {error}");
                }
            }
        }
    }
}
