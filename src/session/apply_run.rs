//! Applying a plan: everything between "yes" and the exit code.
//!
//! Credentials first (a refused token changes nothing), then the data-loss gate, then the
//! journal and the executor, the host key pinned on first contact, the run folder with
//! the plan, the events, each provider's evidence, the failures and the summary, and
//! finally the checks through the edge. The state lock is the session's, held
//! throughout.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::{Session, SessionError, VerifyReport};
use crate::apply::runs::RunFolder;
use crate::apply::{execute_actions, ApplyOptions, ApplyReport, Event, Interruption, Status};
use crate::plan::Plan;
use crate::state::{JournalEntry, State};

/// What a front end hears while a plan is applied, in order.
pub trait RunObserver: Send {
    /// An action started, finished, failed… (the progress display).
    fn event(&mut self, event: &Event);
    /// Something went wrong that does not change the outcome (a run-folder file that
    /// could not be written).
    fn warning(&mut self, message: &str);
    /// Something done that the user should know (a host key pinned in state).
    fn note(&mut self, message: &str);
    /// The end-of-run summary, redacted, shown before the checks run.
    fn summary(&mut self, text: &str);
}

/// What an apply did.
pub struct ApplyRun {
    pub report: ApplyReport,
    /// `runs/<UTC time>/`.
    pub folder: PathBuf,
    /// The checks through the edge, when they ran (every action succeeded, the stack has
    /// an edge, and checks were not skipped).
    pub checks: Option<Result<VerifyReport, SessionError>>,
}

impl Session {
    /// Applies `plan`, recording every completed action, and writes the run folder.
    pub async fn apply(
        &mut self,
        plan: &Plan,
        options: &ApplyOptions,
        run_checks: bool,
        observer: &mut dyn RunObserver,
    ) -> Result<ApplyRun, SessionError> {
        let mut state = self.state.take().unwrap_or_else(|| State {
            salt: self.salt.clone(),
            ..State::new(self.stack())
        });
        // Providers begun beside the refresh go to the executor; if the run stops before
        // it, they are ended here.
        let mut begun_early = self.begun_early.take();
        let result = self
            .apply_with_state(
                plan,
                &mut state,
                options,
                run_checks,
                &mut begun_early,
                observer,
            )
            .await;
        if let Some(begun) = begun_early {
            self.end_begun(begun).await;
        }
        self.state = Some(state);
        result
    }

    async fn apply_with_state(
        &self,
        plan: &Plan,
        state: &mut State,
        options: &ApplyOptions,
        run_checks: bool,
        begun_early: &mut Option<super::plan_to_apply::BegunEarly>,
        observer: &mut dyn RunObserver,
    ) -> Result<ApplyRun, SessionError> {
        self.preflight(plan).await?;
        let losing = plan.data_loss();
        if !losing.is_empty() && !options.allow_data_loss {
            return Err(SessionError::DataLoss {
                addresses: losing.iter().map(|action| action.address.clone()).collect(),
            });
        }
        // The data about to be lost is dumped first; if that fails, nothing is changed.
        self.back_up_before_data_loss(plan, state, observer).await?;
        let desired: BTreeMap<_, _> = self
            .finished_desired(None)?
            .iter()
            .map(|resource| (resource.address.clone(), resource.clone()))
            .collect();
        if state.serial == 0 {
            // The journal extends a saved state: give a new stack one before the first action.
            self.store.save(state)?;
        }
        let folder =
            RunFolder::create(&self.runs_directory, self.secrets.clone()).map_err(|error| {
                SessionError::RunFolder {
                    directory: self.runs_directory.display().to_string(),
                    cause: error.to_string(),
                }
            })?;
        let write = |observer: &mut dyn RunObserver, name: &str, contents: &[u8]| {
            if let Err(error) = folder.write(name, contents) {
                observer.warning(&format!("cannot write `{name}` in the run folder: {error}"));
            }
        };
        write(
            observer,
            "plan.txt",
            crate::render::text::render(plan, false).as_bytes(),
        );
        write(
            observer,
            "plan.json",
            crate::render::json::render(plan).as_bytes(),
        );

        let mut journal = self.store.start_journal(state)?;
        let executed = {
            let mut on_event = |event: &Event| observer.event(event);
            execute_actions(
                plan,
                &desired,
                &self.backends.providers,
                state,
                &mut journal,
                options,
                begun_early
                    .take()
                    .map(|begun| begun.providers)
                    .unwrap_or_default(),
                &mut on_event,
            )
            .await?
        };
        for (entry, key_type) in self.host_keys_to_pin(state) {
            journal.append(&entry)?;
            state.apply_entry(&entry);
            if let JournalEntry::PinHostKey { host, fingerprint } = &entry {
                observer.note(&format!(
                    "Pinned the SSH host key of `{host}` in state: {fingerprint} ({key_type})."
                ));
            }
        }
        self.store.finish_journal(journal, state)?;
        tracing::debug!("state saved");

        // Ending the providers (after a replace, the old containers stop and go) decides
        // nothing more about the actions. Beside it: the release history is written and
        // the old images pruned, and the host is read for the run folder and the security
        // report (the providers leave out what they are still retiring). None of it
        // decides another's result.
        let all_done = {
            let report = executed.report();
            report.failed() == 0
                && report.skipped() == 0
                && report.unreachable() == 0
                && report.interrupted() == 0
        };
        let release = if all_done {
            self.release_entry(plan, state)
        } else {
            None
        };
        let context = stackctl_provider::ApplyContext {
            stack: plan.stack.clone(),
            lineage: state.lineage.clone(),
            state_was_empty: state.resources.is_empty(),
            salt: state.salt.clone(),
            health_timeout: options.health_timeout,
            allow_data_loss: options.allow_data_loss,
            recorded: std::sync::Arc::new(std::sync::RwLock::new(state.attributes_by_address())),
        };
        // The prune is decided from the image list beside the end too; the docker provider
        // removes only once the replaced containers are gone, so that an image only one of
        // them used goes in this run.
        let (report, (saved_release, pruned), evidence, security_facts) = {
            let mut on_event = |event: &Event| observer.event(event);
            let lineage = state.lineage.as_str();
            let context = &context;
            let history_and_prune = async {
                let saved = match release {
                    Some(entry) => Some(self.save_release(entry, lineage).await),
                    None => None,
                };
                let pruned = match (all_done, plan.mode, &saved) {
                    (true, crate::plan::PlanMode::Apply, Some(Ok((_, keep)))) => {
                        self.prune_images(keep, context).await
                    }
                    (true, crate::plan::PlanMode::Destroy, _) => {
                        self.remove_kept_images(context).await
                    }
                    _ => Vec::new(),
                };
                (saved, pruned)
            };
            let evidence = futures::future::join_all(self.backends.providers.all().map(
                |provider| async move { (provider.name(), provider.evidence(context).await) },
            ));
            tokio::join!(
                executed.end_providers(&mut on_event),
                history_and_prune,
                evidence,
                self.read_security_facts()
            )
        };
        tracing::debug!(
            "providers ended; release history written; images pruned; evidence and security facts read"
        );

        let events: String = report
            .events
            .iter()
            .map(|event| serde_json::to_string(event).unwrap_or_default() + "\n")
            .collect();
        write(observer, "events.jsonl", events.as_bytes());
        write(
            observer,
            "outcome.json",
            (serde_json::to_string_pretty(&report.outcomes).unwrap_or_default() + "\n").as_bytes(),
        );
        for (provider, files) in evidence {
            for (name, contents) in files {
                write(observer, &format!("{provider}/{name}"), &contents);
            }
        }
        for outcome in &report.outcomes {
            if let Status::Failed {
                message, detail, ..
            } = &outcome.status
            {
                let log = format!(
                    "{}: {message}\n\n{}",
                    outcome.address,
                    detail.as_deref().unwrap_or("")
                );
                write(
                    observer,
                    &format!("failures/{}.log", outcome.address),
                    log.as_bytes(),
                );
            }
        }
        let summary_json = serde_json::json!({
            "stack": plan.stack,
            "duration_ms": report.duration_ms,
            "succeeded": report.succeeded(),
            "failed": report.failed(),
            "skipped": report.skipped(),
            "unreachable": report.unreachable(),
            "interrupted": report.interrupted(),
            "interruption": report.interruption,
            "state_serial": state.serial,
            "outcomes": report.outcomes,
        });
        write(
            observer,
            "summary.json",
            (serde_json::to_string_pretty(&summary_json).unwrap_or_default() + "\n").as_bytes(),
        );
        let summary = crate::apply::redact::redact(&summarize(&report), &self.secrets);
        write(observer, "summary.txt", summary.as_bytes());
        observer.summary(&summary);
        tracing::debug!("run folder written");
        match saved_release {
            Some(Ok((id, _))) => observer.note(&format!(
                "Recorded as history entry {id} (`stackctl rollback --list`)."
            )),
            Some(Err(warning)) => observer.warning(&warning),
            None => {}
        }
        for message in pruned {
            match message {
                Ok(note) => observer.note(&note),
                Err(warning) => observer.warning(&warning),
            }
        }

        let checks = if run_checks && all_done && self.loaded.config.edge.is_some() {
            Some(self.verify_with_state(Some(state), Some(&folder)).await)
        } else {
            None
        };
        // Read from the target, not from stack.toml: what the containers run with, and
        // the edge's TLS as the checks just probed it.
        let tls = match &checks {
            Some(Ok(verified)) => verified.tls.as_ref(),
            _ => None,
        };
        let security =
            security_facts.and_then(|facts| self.write_security_report_of(&folder, &facts, tls));
        if let Err(message) = security {
            write(observer, "security.txt", format!("{message}\n").as_bytes());
        }
        tracing::debug!("security report written");
        Ok(ApplyRun {
            report,
            folder: folder.path().to_path_buf(),
            checks,
        })
    }

    /// Credentials first: a missing or refused token stops the run before any change.
    async fn preflight(&self, plan: &Plan) -> Result<(), SessionError> {
        let acting: BTreeSet<&str> = plan
            .actions
            .iter()
            .map(|action| action.provider.as_str())
            .collect();
        for name in acting {
            if let Some(provider) = self.backends.providers.get(name) {
                provider.preflight().await.map_err(|error| {
                    SessionError::provider(format!("the {name} provider is not ready"), error)
                })?;
            }
        }
        Ok(())
    }

    /// The journal entries that pin the host's key on first contact (and, on a swarm,
    /// every other node's), with each key's type, so that a changed key is refused on
    /// every later run.
    fn host_keys_to_pin(&self, state: &State) -> Vec<(JournalEntry, String)> {
        let Some(host) = self.backends.host.as_ref() else {
            return Vec::new();
        };
        let target = host.key_name().zip(host.presented_key());
        target
            .into_iter()
            .chain(host.other_presented_keys())
            .filter(|(name, key)| state.host_keys.get(name) != Some(&key.fingerprint))
            .map(|(name, key)| {
                (
                    JournalEntry::PinHostKey {
                        host: name,
                        fingerprint: key.fingerprint,
                    },
                    key.key_type,
                )
            })
            .collect()
    }
}

/// The end-of-run summary: counts, then each failure with its evidence.
pub fn summarize(report: &ApplyReport) -> String {
    let mut text = format!(
        "\nApply {} {:.1}s: {} succeeded, {} failed, {} skipped, {} unreachable",
        if report.interruption == Interruption::None {
            "finished in"
        } else {
            "interrupted after"
        },
        report.duration_ms as f64 / 1000.0,
        report.succeeded(),
        report.failed(),
        report.skipped(),
        report.unreachable()
    );
    if report.interruption == Interruption::None {
        text.push_str(".\n");
    } else {
        text.push_str(&format!(
            ", {} not done.\nEvery completed action is recorded in state and the locks are released: `stackctl apply` carries on from here.\n",
            report.interrupted()
        ));
    }
    for outcome in &report.outcomes {
        match &outcome.status {
            Status::Failed {
                message,
                detail,
                hint,
            } => {
                text.push_str(&format!("  failed: {}: {message}\n", outcome.address));
                if let Some(detail) = detail {
                    for line in detail.lines() {
                        text.push_str(&format!("      {line}\n"));
                    }
                }
                if let Some(hint) = hint {
                    text.push_str(&format!("    hint: {hint}\n"));
                }
            }
            Status::Unreachable { target, cause } => {
                text.push_str(&format!(
                    "  warning: {} skipped: cannot reach {target}: {cause}\n",
                    outcome.address
                ));
            }
            Status::Skipped { because } => {
                text.push_str(&format!("  skipped: {}: {because}\n", outcome.address))
            }
            Status::Interrupted { because } => {
                text.push_str(&format!("  not done: {}: {because}\n", outcome.address))
            }
            Status::Succeeded => {}
        }
    }
    text
}
