//! Recording a successful apply in the release history, and pruning the images no kept
//! entry runs. Both follow an apply whose every action succeeded: a partial apply is not
//! a version anyone could roll back to.

use std::collections::BTreeSet;

use super::{apply_run::RunObserver, Session, SessionError};
use crate::plan::{Plan, PlanMode};
use crate::state::{
    change_lines, recorded_images, History, HistoryEntry, LockHolder, State, DEFAULT_KEPT_IMAGES,
};

impl Session {
    /// The release history of the recorded state (empty before the first apply).
    pub fn history(&self) -> Result<History, SessionError> {
        let Some(state) = self.state.as_ref() else {
            return Ok(History::new(self.stack(), ""));
        };
        Ok(self.store.read_history(&state.lineage)?)
    }

    /// How many applies keep their images: `[stack] keep_images`, else the default.
    pub fn kept_images(&self) -> usize {
        self.loaded
            .config
            .stack
            .keep_images
            .map_or(DEFAULT_KEPT_IMAGES, |count| count.max(1) as usize)
    }

    /// Records `plan`, applied in full, as the newest history entry, then prunes the
    /// stack's images that none of the last `keep_images` entries runs. Failures here
    /// change nothing already done, so they are warnings.
    pub(super) async fn record_release(
        &self,
        plan: &Plan,
        state: &State,
        context: &stackctl_provider::ApplyContext,
        observer: &mut dyn RunObserver,
    ) {
        // A `--target` apply changed part of the stack: not a version to go back to.
        if plan.mode != PlanMode::Apply || !plan.targets.is_empty() || !plan.has_changes() {
            return;
        }
        let mut history = match self.store.read_history(&state.lineage) {
            Ok(history) => history,
            Err(error) => {
                observer.warning(&format!(
                    "the release history was not updated, so `stackctl rollback` cannot return to this apply: {error}"
                ));
                return;
            }
        };
        let holder = LockHolder::current("");
        let id = history.record(HistoryEntry {
            id: 0,
            time: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            who: format!("{}@{}", holder.user, holder.host),
            command: if self.rolling_back_to.is_some() {
                "rollback".to_string()
            } else {
                "apply".to_string()
            },
            rolled_back_to: self.rolling_back_to,
            state_serial: state.serial,
            fingerprint: super::desired_fingerprint(&self.desired),
            changes: change_lines(&plan.actions),
            images: recorded_images(state),
            resources: self.desired.clone(),
        });
        if let Err(error) = self.store.save_history(&history) {
            observer.warning(&format!(
                "the release history was not updated, so `stackctl rollback` cannot return to this apply: {error}"
            ));
            return;
        }
        observer.note(&format!(
            "Recorded as history entry {id} (`stackctl rollback --list`)."
        ));
        let keep = history.kept_image_ids(self.kept_images());
        self.prune_images(&keep, context, observer).await;
    }

    /// After a destroy: the images kept for rollback go too (the stack is gone).
    pub(super) async fn remove_kept_images(
        &self,
        context: &stackctl_provider::ApplyContext,
        observer: &mut dyn RunObserver,
    ) {
        self.prune_images(&BTreeSet::new(), context, observer).await;
    }

    async fn prune_images(
        &self,
        keep: &BTreeSet<String>,
        context: &stackctl_provider::ApplyContext,
        observer: &mut dyn RunObserver,
    ) {
        for provider in self.backends.providers.all() {
            match provider.prune_images(context, keep).await {
                Ok(removed) if !removed.is_empty() => observer.note(&format!(
                    "Removed {} image{} {}: {}.",
                    removed.len(),
                    if removed.len() == 1 { "" } else { "s" },
                    if keep.is_empty() {
                        "kept for rollback".to_string()
                    } else {
                        format!(
                            "of older applies (keeping those of the last {})",
                            self.kept_images()
                        )
                    },
                    removed
                        .iter()
                        .map(|name| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Ok(_) => {}
                Err(error) => observer.warning(&format!(
                    "the images of older applies were not pruned ({} provider): {error}",
                    provider.name()
                )),
            }
        }
    }
}
