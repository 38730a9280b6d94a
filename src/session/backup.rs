//! Backups and restores: `stackctl backup`, `stackctl backups`, `stackctl restore`, and
//! the backup an apply makes before an action that deletes data. What runs and where the
//! dumps go is decided in `crate::backup` (pure); this file carries it out through the
//! host's [`HostTasks`] and this machine's files. A dump's bytes are read only to check
//! and copy them; they are never logged, and a dump's record holds no data.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use stackctl_provider::{Address, HostTasks, OneOffResult, ProviderError};

use super::{RunObserver, Session, SessionError};
use crate::backup::{self, Backup, DumpRecord};
use crate::plan::Plan;
use crate::state::State;

/// A dump made by [`Session::back_up`].
#[derive(Clone, Debug)]
pub struct MadeDump {
    pub record: DumpRecord,
    /// Its path on the host, when kept there.
    pub on_host: Option<String>,
    /// Its copy on this machine, when the backup has a `local_directory`.
    pub local_copy: Option<PathBuf>,
    /// Older dumps removed to keep `keep`.
    pub pruned: Vec<String>,
}

/// One dump found by [`Session::list_dumps`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedDump {
    pub backup: String,
    pub file: String,
    /// From the dump's record; `None` when it has none (a dump copied by hand).
    pub record: Option<DumpRecord>,
    pub on_host: bool,
    pub local_copy: Option<PathBuf>,
}

/// What a restore will do, shown before it is confirmed.
#[derive(Clone, Debug)]
pub struct RestorePlan {
    pub backup: Backup,
    pub file: String,
    /// What the restore replaces, in words.
    pub replaces: String,
    pub record: Option<DumpRecord>,
    /// A dump on this machine, uploaded to the host's dump directory first.
    pub upload_from: Option<PathBuf>,
    /// Services stopped while it runs and started again after.
    pub stops: Vec<Address>,
}

impl Session {
    /// The stack's `[backups.*]`, resolved.
    pub fn backups(&self) -> Vec<Backup> {
        backup::backups(&self.loaded.config, &self.loaded.base_directory)
    }

    fn backup_named(&self, name: &str) -> Result<Backup, SessionError> {
        let backups = self.backups();
        if let Some(found) = backups.iter().find(|backup| backup.name == name) {
            return Ok(found.clone());
        }
        let names: Vec<&str> = backups.iter().map(|backup| backup.name.as_str()).collect();
        let hint = crate::config::diagnostic::did_you_mean(name, names.iter().copied())
            .unwrap_or_else(|| match names.is_empty() {
                true => "declare one in stack.toml: `[backups.db]` with `service = \"postgres\"` or `volume = \"media\"`".to_string(),
                false => format!("the backups are {}", quoted(&names)),
            });
        Err(SessionError::Backup {
            message: format!("stack.toml has no backup `{name}`"),
            hint,
        })
    }

    /// The host's one-off containers and files, connected.
    async fn host_tasks(&self) -> Result<&dyn HostTasks, SessionError> {
        let tasks = self
            .backends
            .providers
            .host_tasks()
            .ok_or_else(|| SessionError::NoProvider("docker".to_string()))?;
        tasks
            .connect(self.droplet_address().as_deref())
            .await
            .map_err(|error| SessionError::provider("cannot reach the host", error))?;
        Ok(tasks)
    }

    /// Dumps the named backups (every one when `names` is empty), one after the other.
    pub async fn back_up(&self, names: &[String]) -> Result<Vec<MadeDump>, SessionError> {
        let chosen = match names.is_empty() {
            true => self.backups(),
            false => names
                .iter()
                .map(|name| self.backup_named(name))
                .collect::<Result<_, _>>()?,
        };
        if chosen.is_empty() {
            return Err(SessionError::Backup {
                message: "stack.toml declares no backups".to_string(),
                hint: "declare one: `[backups.db]` with `service = \"postgres\"` (a pg_dump) or `volume = \"media\"` (a tar)".to_string(),
            });
        }
        let tasks = self.host_tasks().await?;
        let mut made = Vec::new();
        for backup in &chosen {
            made.push(self.back_up_one(tasks, backup).await?);
        }
        Ok(made)
    }

    async fn back_up_one(
        &self,
        tasks: &dyn HostTasks,
        backup: &Backup,
    ) -> Result<MadeDump, SessionError> {
        let failed = |error: ProviderError| {
            SessionError::provider(format!("the backup `{}` failed", backup.name), error)
        };
        let now = SystemTime::now();
        let file = backup.file_name(now);
        let result = tasks
            .run_one_off(&backup.dump_task(&file))
            .await
            .map_err(failed)?;
        check_exit(&result, backup, "dump").map_err(failed)?;
        let host_path = format!("{}/{file}", backup.host_directory);
        // Size and sha256 come from the host: a dump is read only to copy it here.
        let (size, sha256) = backup::dump_digest(&result.log).ok_or_else(|| {
            failed(ProviderError::failed(format!(
                "the dump finished but did not report its size and sha256 (is `sha256sum` in the image of `{}`?); it is at `{host_path}` on the host",
                backup.service_address()
            )))
        })?;
        let record = DumpRecord {
            backup: backup.name.clone(),
            file: file.clone(),
            source: backup.describe(),
            created: humantime::format_rfc3339_seconds(now).to_string(),
            size,
            sha256,
        };
        let record_json = serde_json::to_vec_pretty(&record).expect("a record serialises");
        let record_path = format!("{}/{}", backup.host_directory, backup::record_file(&file));
        let mut local_copy = None;
        let mut pruned = Vec::new();
        if let Some(directory) = &backup.local_directory {
            let bytes = tasks
                .read_file(&host_path)
                .await
                .map_err(failed)?
                .ok_or_else(|| {
                    failed(ProviderError::failed(format!(
                        "the dump finished but `{host_path}` is not on the host"
                    )))
                })?;
            if bytes.len() as u64 != record.size
                || stackctl_provider::sha256_hex(&bytes) != record.sha256
            {
                return Err(failed(ProviderError::failed(format!(
                    "the copy of `{host_path}` does not match the dump's size and sha256 on the host; it was not kept here"
                ))));
            }
            write_private(&directory.join(&file), &bytes)?;
            write_private(&directory.join(backup::record_file(&file)), &record_json)?;
            local_copy = Some(directory.join(&file));
            pruned.extend(prune_local(backup, directory)?);
        }
        let on_host = if backup.on_host {
            tasks
                .write_file(&record_path, &record_json)
                .await
                .map_err(failed)?;
            let files = tasks
                .list_files(&backup.host_directory)
                .await
                .map_err(failed)?;
            for old in backup.to_prune(&files) {
                for path in [&old, &backup::record_file(&old)] {
                    tasks
                        .remove_file(&format!("{}/{path}", backup.host_directory))
                        .await
                        .map_err(failed)?;
                }
                if !pruned.contains(&old) {
                    pruned.push(old);
                }
            }
            Some(host_path)
        } else {
            tasks.remove_file(&host_path).await.map_err(failed)?;
            None
        };
        Ok(MadeDump {
            record,
            on_host,
            local_copy,
            pruned,
        })
    }

    /// The dumps of one backup (or of every one), on the host and on this machine,
    /// oldest first.
    pub async fn list_dumps(&self, name: Option<&str>) -> Result<Vec<ListedDump>, SessionError> {
        let chosen = match name {
            Some(name) => vec![self.backup_named(name)?],
            None => self.backups(),
        };
        let tasks = self.host_tasks().await?;
        let mut listed = Vec::new();
        for backup in &chosen {
            let failed = |error: ProviderError| {
                SessionError::provider(format!("cannot list the dumps of `{}`", backup.name), error)
            };
            let on_host = backup.dumps_among(
                &tasks
                    .list_files(&backup.host_directory)
                    .await
                    .map_err(failed)?,
            );
            let local = match &backup.local_directory {
                Some(directory) => backup.dumps_among(&local_files(directory)),
                None => Vec::new(),
            };
            let mut files: Vec<String> = on_host.iter().chain(&local).cloned().collect();
            files.sort();
            files.dedup();
            for file in files {
                let local_copy = backup
                    .local_directory
                    .as_ref()
                    .filter(|_| local.contains(&file))
                    .map(|directory| directory.join(&file));
                let record = match &local_copy {
                    Some(path) => read_local_record(path),
                    None => tasks
                        .read_file(&format!(
                            "{}/{}",
                            backup.host_directory,
                            backup::record_file(&file)
                        ))
                        .await
                        .map_err(failed)?
                        .and_then(|bytes| serde_json::from_slice(&bytes).ok()),
                };
                listed.push(ListedDump {
                    backup: backup.name.clone(),
                    on_host: on_host.contains(&file),
                    file,
                    record,
                    local_copy,
                });
            }
        }
        Ok(listed)
    }

    /// Finds the dump `from` of backup `name` — a dump's file name (on the host, or in
    /// the backup's local directory) or the path of a dump file on this machine — and
    /// says what restoring it replaces. Changes nothing.
    pub async fn prepare_restore(
        &self,
        name: &str,
        from: &str,
    ) -> Result<RestorePlan, SessionError> {
        let backup = self.backup_named(name)?;
        let tasks = self.host_tasks().await?;
        let failed = |error: ProviderError| {
            SessionError::provider(format!("cannot find the dump `{from}`"), error)
        };
        let path = Path::new(from);
        let file_name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default()
            .to_string();
        if backup.dump_time(&file_name).is_none() {
            return Err(SessionError::Backup {
                message: format!("`{from}` is not a dump of backup `{name}`"),
                hint: format!(
                    "its dumps are named `{name}-<time>.{}`; `stackctl backups {name}` lists them",
                    backup.extension()
                ),
            });
        }
        let plain = backup::is_plain_file_name(from);
        let on_host = plain
            && tasks
                .list_files(&backup.host_directory)
                .await
                .map_err(failed)?
                .contains(&file_name);
        let (record, upload_from) = if on_host {
            let record = tasks
                .read_file(&format!(
                    "{}/{}",
                    backup.host_directory,
                    backup::record_file(&file_name)
                ))
                .await
                .map_err(failed)?
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
            (record, None)
        } else {
            let local = match (&backup.local_directory, plain) {
                (Some(directory), true) if directory.join(&file_name).is_file() => {
                    directory.join(&file_name)
                }
                _ if path.is_file() => path.to_path_buf(),
                _ => {
                    return Err(SessionError::Backup {
                        message: format!(
                            "no dump `{from}` of backup `{name}`: not on the host in `{}`{}",
                            backup.host_directory,
                            match &backup.local_directory {
                                Some(directory) => format!(", nor in `{}`", directory.display()),
                                None => String::new(),
                            }
                        ),
                        hint: format!("`stackctl backups {name}` lists the dumps"),
                    })
                }
            };
            (read_local_record(&local), Some(local))
        };
        Ok(RestorePlan {
            replaces: backup.describe(),
            stops: backup.stopped_for_restore(&self.loaded.config),
            backup,
            file: file_name,
            record,
            upload_from,
        })
    }

    /// Restores a dump as [`Session::prepare_restore`] found it: uploads it when it is on
    /// this machine, stops what depends on the data, restores, and starts them again
    /// (also when the restore failed). Returns the services stopped and started.
    pub async fn restore(&self, plan: &RestorePlan) -> Result<Vec<Address>, SessionError> {
        let backup = &plan.backup;
        let tasks = self.host_tasks().await?;
        let failed = |error: ProviderError| {
            SessionError::provider(format!("the restore of `{}` failed", backup.name), error)
        };
        let host_path = format!("{}/{}", backup.host_directory, plan.file);
        if let Some(local) = &plan.upload_from {
            let bytes = std::fs::read(local).map_err(|error| SessionError::Backup {
                message: format!("cannot read `{}`: {error}", local.display()),
                hint: "check the path and its permissions".to_string(),
            })?;
            tasks.write_file(&host_path, &bytes).await.map_err(failed)?;
        }
        // Whatever happens from here on, every container stopped is started again
        // before this returns: a failed stop, a failed restore, a lost connection.
        let stopping = tasks.stop_services(&plan.stops).await;
        let stopped = stopping.services();
        let result = match stopping.error {
            Some(error) => Err(ProviderError::Failed {
                message: format!(
                    "cannot stop {} before the restore; nothing was restored",
                    quoted(&names(&plan.stops))
                ),
                detail: Some(error.to_string()),
                hint: None,
            }),
            None => {
                let mut task = backup.restore_task(&plan.file, plan.record.as_ref());
                // The service that lends image and env may be one the restore stopped.
                task.beside_container = stopping
                    .containers
                    .iter()
                    .find(|container| container.service == task.beside)
                    .map(|container| container.id.clone());
                tasks.run_one_off(&task).await
            }
            .and_then(|result| check_exit(&result, backup, "restore")),
        };
        let mut starting = stopping.containers.clone();
        starting.reverse();
        let started = match starting.is_empty() {
            true => Ok(()),
            false => tasks.start_containers(&starting).await,
        };
        if plan.upload_from.is_some() && !backup.on_host {
            let _ = tasks.remove_file(&host_path).await;
        }
        let services = quoted(&names(&stopped));
        match (result, started) {
            (Ok(()), Ok(())) => Ok(stopped),
            (Ok(()), Err(error)) => Err(SessionError::provider(
                format!(
                    "`{}` was restored, but starting {services} again failed: start them with `stackctl apply`",
                    backup.name
                ),
                error,
            )),
            (Err(error), Ok(())) => Err(SessionError::provider(
                match stopped.is_empty() {
                    true => format!("the restore of `{}` failed", backup.name),
                    false => format!(
                        "the restore of `{}` failed ({services} started again)",
                        backup.name
                    ),
                },
                error,
            )),
            (Err(error), Err(start_error)) => Err(SessionError::provider(
                format!(
                    "the restore of `{}` failed, and starting {services} again failed too ({start_error}): start them with `stackctl apply`",
                    backup.name
                ),
                error,
            )),
        }
    }

    /// Before an apply runs an action the plan marks as data loss (a volume or a droplet
    /// deleted or replaced), dumps every backup of that data; a failure refuses the apply.
    pub(super) async fn back_up_before_data_loss(
        &self,
        plan: &Plan,
        state: &State,
        observer: &mut dyn RunObserver,
    ) -> Result<(), SessionError> {
        let losing: Vec<Address> = plan
            .data_loss()
            .iter()
            .map(|action| action.address.clone())
            .collect();
        let config = &self.loaded.config;
        let needed: Vec<(Backup, Address)> = self
            .backups()
            .into_iter()
            .filter_map(|backup| {
                let lost = losing
                    .iter()
                    .find(|address| {
                        backup.protects(address, config)
                            || recorded_as_mounting(state, backup.service(), address)
                    })?
                    .clone();
                Some((backup, lost))
            })
            .collect();
        if needed.is_empty() {
            return Ok(());
        }
        for (backup, lost) in &needed {
            if lost.kind() == "droplet" && backup.local_directory.is_none() {
                return Err(SessionError::Backup {
                    message: format!(
                        "refusing to apply: `{lost}` is destroyed, and the backup `{}` keeps its dumps only on it",
                        backup.name
                    ),
                    hint: format!(
                        "set `local_directory` under `[backups.{}]` so that a copy is kept on this machine; nothing was changed",
                        backup.name
                    ),
                });
            }
        }
        let tasks = self.host_tasks().await?;
        for (backup, lost) in &needed {
            observer.note(&format!(
                "backing up `{}` ({}) before `{lost}` loses it",
                backup.name,
                backup.describe()
            ));
            let made = self
                .back_up_one(tasks, backup)
                .await
                .map_err(|error| match error {
                    SessionError::Provider { error, .. } => SessionError::Provider {
                        context: format!(
                            "refusing to apply: the backup `{}` before `{lost}` loses its data failed (nothing was changed)",
                            backup.name
                        ),
                        error,
                    },
                    other => other,
                })?;
            observer.note(&format!(
                "backed up `{}` to {} ({})",
                backup.name,
                made.on_host
                    .clone()
                    .or(made
                        .local_copy
                        .as_ref()
                        .map(|path| path.display().to_string()))
                    .unwrap_or_default(),
                backup::human_size(made.record.size)
            ));
        }
        Ok(())
    }
}

/// Whether state records `service.<service>` as using `volume` (stack.toml may have moved
/// it to another volume: the plan then deletes the one holding its data).
fn recorded_as_mounting(state: &State, service: &str, volume: &Address) -> bool {
    volume.kind() == "volume"
        && state
            .resources
            .get(&Address::new("service", service))
            .is_some_and(|recorded| recorded.dependencies.contains(volume))
}

/// A dump or restore that exited with anything but 0 failed; its log's last lines (the
/// tool's messages, never the dump, which goes to a file) say why.
fn check_exit(result: &OneOffResult, backup: &Backup, what: &str) -> Result<(), ProviderError> {
    match result.exit_code {
        Some(0) => Ok(()),
        code => {
            let lines: Vec<&str> = result.log.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            Err(ProviderError::Failed {
                message: match code {
                    Some(code) => format!(
                        "the {what} of {} exited with {code}",
                        backup.describe()
                    ),
                    None => format!(
                        "the {what} of {} did not finish within {}s and was stopped",
                        backup.describe(),
                        backup.timeout.as_secs()
                    ),
                },
                detail: (!tail.is_empty()).then_some(tail),
                hint: Some(match code {
                    Some(backup::DAMAGED_DUMP_EXIT) => format!("the dump does not match its record or does not read: restore another one (`stackctl backups {}` lists them)", backup.name),
                    Some(_) => format!("the `{}` service must be running, and its image must have `sh` (and `pg_dump`/`pg_restore` or `tar`)", backup.service()),
                    None => format!("raise `timeout` under `[backups.{}]`", backup.name),
                }),
            })
        }
    }
}

fn names(addresses: &[Address]) -> Vec<String> {
    addresses.iter().map(Address::to_string).collect()
}

fn quoted(names: &[impl AsRef<str>]) -> String {
    names
        .iter()
        .map(|name| format!("`{}`", name.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes a file readable by its owner only (a dump holds the database), creating its
/// directory.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), SessionError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let failure = |error: std::io::Error| SessionError::Backup {
        message: format!("cannot write `{}`: {error}", path.display()),
        hint: "check `local_directory` under `[backups.*]` and its permissions".to_string(),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(failure)?;
    }
    let partial = path.with_extension("partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(failure)?;
    file.write_all(contents).map_err(failure)?;
    file.sync_all().map_err(failure)?;
    std::fs::rename(&partial, path).map_err(failure)
}

fn local_files(directory: &Path) -> Vec<String> {
    std::fs::read_dir(directory)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn read_local_record(dump: &Path) -> Option<DumpRecord> {
    let name = dump.file_name()?.to_str()?;
    let bytes = std::fs::read(dump.with_file_name(backup::record_file(name))).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Removes the local dumps beyond `keep`; returns their names.
fn prune_local(backup: &Backup, directory: &Path) -> Result<Vec<String>, SessionError> {
    let old = backup.to_prune(&local_files(directory));
    for file in &old {
        for path in [
            directory.join(file),
            directory.join(backup::record_file(file)),
        ] {
            if let Err(error) = std::fs::remove_file(&path) {
                if error.kind() != std::io::ErrorKind::NotFound {
                    return Err(SessionError::Backup {
                        message: format!(
                            "cannot remove the old dump `{}`: {error}",
                            path.display()
                        ),
                        hint: "check the directory's permissions".to_string(),
                    });
                }
            }
        }
    }
    Ok(old)
}
