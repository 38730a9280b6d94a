//! Recording a successful apply in the release history, and pruning the images no kept
//! entry runs. Both follow an apply whose every action succeeded: a partial apply is not
//! a version anyone could roll back to. Both run while the providers end (replaced
//! containers stopping beside them): the prune is decided from the image list at once, and
//! the docker provider removes images only once the replaced containers are gone, so that
//! an image only one of them used goes in the same run.

use std::collections::BTreeSet;

use super::{Session, SessionError};
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

    /// The history entry of `plan`, applied in full with `state` as its result; `None`
    /// when the apply is not a version to go back to (a `--target` apply changed part of
    /// the stack; a plan with no change).
    pub(super) fn release_entry(&self, plan: &Plan, state: &State) -> Option<HistoryEntry> {
        if plan.mode != PlanMode::Apply || !plan.targets.is_empty() || !plan.has_changes() {
            return None;
        }
        // Prepared in full by the plan (or the apply) already.
        let desired = self.finished_desired(None).ok()?;
        let holder = LockHolder::current("");
        Some(HistoryEntry {
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
            fingerprint: super::desired_fingerprint(desired),
            changes: change_lines(&plan.actions),
            images: recorded_images(state),
            resources: desired.to_vec(),
        })
    }

    /// Appends `entry` to the release history of `lineage` and saves it, on a blocking
    /// thread so that the file's writes and syncs overlap the end of the apply (the
    /// replaced containers stopping) instead of following it. Returns the entry's id and
    /// the image ids the last `keep_images` entries run, or why the history was not
    /// updated.
    pub(super) async fn save_release(
        &self,
        entry: HistoryEntry,
        lineage: &str,
    ) -> Result<(u64, BTreeSet<String>), String> {
        let store = self.store.clone();
        let lineage = lineage.to_string();
        let keep = self.kept_images();
        let saved = tokio::task::spawn_blocking(move || {
            let mut history = store.read_history(&lineage)?;
            let id = history.record(entry);
            store.save_history(&history)?;
            Ok::<_, crate::state::StateError>((id, history.kept_image_ids(keep)))
        })
        .await;
        let failure = |error: &dyn std::fmt::Display| {
            format!(
                "the release history was not updated, so `stackctl rollback` cannot return to this apply: {error}"
            )
        };
        match saved {
            Ok(Ok(saved)) => Ok(saved),
            Ok(Err(error)) => Err(failure(&error)),
            Err(error) => Err(failure(&error)),
        }
    }

    /// After a destroy: the images kept for rollback go too (the stack is gone).
    pub(super) async fn remove_kept_images(
        &self,
        context: &stackctl_provider::ApplyContext,
    ) -> Vec<Result<String, String>> {
        self.prune_images(&BTreeSet::new(), context).await
    }

    /// Prunes the stack's images that no image id in `keep` names (those of the kept
    /// history entries), every provider at once. Returns what to tell, in provider order:
    /// `Ok` a note per provider that removed something, `Err` a warning per provider that
    /// failed (nothing already done changes, so it is no error).
    pub(super) async fn prune_images(
        &self,
        keep: &BTreeSet<String>,
        context: &stackctl_provider::ApplyContext,
    ) -> Vec<Result<String, String>> {
        let pruned =
            futures::future::join_all(self.backends.providers.all().map(|provider| async {
                (provider.name(), provider.prune_images(context, keep).await)
            }))
            .await;
        let mut messages = Vec::new();
        for (name, result) in pruned {
            match result {
                Ok(removed) if !removed.is_empty() => messages.push(Ok(format!(
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
                ))),
                Ok(_) => {}
                Err(error) => messages.push(Err(format!(
                    "the images of older applies were not pruned ({name} provider): {error}"
                ))),
            }
        }
        messages
    }
}
