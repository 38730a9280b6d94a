use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::{FilesAndListings, Host, HostError, HostKey, LocalHost, SshHost};

/// Where the stack runs, as the CLI resolved it from `[target]`.
#[derive(Clone, Debug)]
pub enum Target {
    /// This machine's Docker daemon.
    Local,
    /// A host reached over SSH at a known address.
    Ssh(SshOptions),
    /// The droplet named here; its address is known only once it exists (after apply).
    Droplet {
        droplet: String,
        options: SshOptions,
    },
}

/// How to reach a host over SSH. `address` is empty for a droplet until its IP is known.
#[derive(Clone, Debug, Default)]
pub struct SshOptions {
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Private key files to try, in order; empty means `~/.ssh/id_ed25519` and friends.
    pub identity_files: Vec<std::path::PathBuf>,
    /// `~/.ssh/known_hosts` unless overridden.
    pub known_hosts: Option<std::path::PathBuf>,
    /// A host key fingerprint (`SHA256:…`) pinned in state; checked before known_hosts.
    pub pinned_fingerprint: Option<String>,
    /// Accept (and report, so it can be pinned) a host key seen for the first time.
    pub accept_new_host_key: bool,
    pub connect_timeout: std::time::Duration,
    pub operation_timeout: std::time::Duration,
    /// `ProxyJump`: reach the host through this one (a `direct-tcpip` channel on a
    /// connection to it carries the SSH session), as `ssh -J` does.
    pub jump: Option<Box<SshOptions>>,
}

impl SshOptions {
    /// Options for `user@address:port` with the default key files, `~/.ssh/known_hosts`,
    /// no pinned key, and the default timeouts (a zero timeout means the default).
    pub fn new(address: impl Into<String>, port: u16, user: impl Into<String>) -> Self {
        SshOptions {
            address: address.into(),
            port,
            user: user.into(),
            connect_timeout: crate::ssh::DEFAULT_CONNECT_TIMEOUT,
            operation_timeout: crate::ssh::DEFAULT_OPERATION_TIMEOUT,
            ..Default::default()
        }
    }
}

/// Connects to the target once per run, on first use, and hands the same connection to
/// every provider that needs the host (docker, traefik).
pub struct HostConnector {
    target: Target,
    host: OnceCell<Arc<dyn Host>>,
    /// The host lock this run holds, if any: one lock per run, however many providers
    /// (docker, traefik) change the host.
    held_lock: tokio::sync::Mutex<Option<String>>,
    /// How long [`HostConnector::take_lock`] waits for a live holder; zero fails at once.
    lock_timeout: std::time::Duration,
    /// The lineage that deployed a stack (stack, lineage), as a refresh of this run read
    /// it beside the stack's files: [`HostConnector::deployed_lineage`] answers from it
    /// once instead of asking the host again.
    noted_lineage: std::sync::Mutex<Option<(String, Option<String>)>>,
    /// The reads gathered into one command right now, see [`HostConnector::read_and_list`].
    read_batch: std::sync::Mutex<Option<Arc<ReadBatch>>>,
}

/// How long the first read of a batch waits for the others of the same refresh (every
/// provider starts its read the moment the connection is up).
const READ_BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(3);

/// Reads gathered into one command: the paths and directories of every reader, in the
/// order they joined, and the answer once it came (an error as its text: each reader
/// then asks again alone, for an error of its own).
struct ReadBatch {
    requests: std::sync::Mutex<(Vec<String>, Vec<String>)>,
    /// The host lock, when it is taken at the same moment: the reads are then made under
    /// it, in the lock's own command (see [`HostConnector::take_lock`]).
    lock: std::sync::Mutex<Option<LockRequest>>,
    answer: tokio::sync::watch::Sender<Option<Result<FilesAndListings, String>>>,
}

/// The host lock asked for in a batch of reads, and where its answer goes.
struct LockRequest {
    path: String,
    details: String,
    record: String,
    answer: tokio::sync::oneshot::Sender<Result<LockTaken, HostError>>,
}

/// What taking the host lock answers: the details a gone holder left, and the record read
/// under the lock.
type LockTaken = (Option<String>, Option<Vec<u8>>);

impl HostConnector {
    pub fn new(target: Target) -> Self {
        HostConnector {
            target,
            host: OnceCell::new(),
            held_lock: tokio::sync::Mutex::new(None),
            lock_timeout: std::time::Duration::ZERO,
            noted_lineage: std::sync::Mutex::new(None),
            read_batch: std::sync::Mutex::new(None),
        }
    }

    /// Waits up to `timeout` for the host lock held by another run (`--lock-timeout`).
    pub fn with_lock_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    pub fn local() -> Self {
        HostConnector::new(Target::Local)
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The SSH host key of the connection, once [`HostConnector::connect`] succeeded
    /// (`None` before, and for the local target). When its trust is
    /// [`crate::HostKeyTrust::NewlyAccepted`], the engine should pin its fingerprint in
    /// state.
    pub fn host_key(&self) -> Option<HostKey> {
        self.host.get().and_then(|host| host.host_key())
    }

    /// Shorthand for the fingerprint (`SHA256:…`) of [`HostConnector::host_key`].
    pub fn host_key_fingerprint(&self) -> Option<String> {
        self.host_key().map(|key| key.fingerprint)
    }

    /// Returns the connected host. `droplet_address` is the droplet's public IPv4 when
    /// the target is a droplet (from state, or from an action completed in this run).
    pub async fn connect(&self, droplet_address: Option<&str>) -> Result<Arc<dyn Host>, HostError> {
        let host = self
            .host
            .get_or_try_init(|| async {
                match &self.target {
                    Target::Local => Ok(Arc::new(LocalHost::new()) as Arc<dyn Host>),
                    Target::Ssh(options) => connect_ssh(options.clone()).await,
                    Target::Droplet { droplet, options } => {
                        let address = droplet_address.ok_or_else(|| HostError::Unreachable {
                            target: format!("droplet `{droplet}`"),
                            cause: "it has no public IPv4 address yet".to_string(),
                        })?;
                        let mut options = options.clone();
                        options.address = address.to_string();
                        connect_ssh(options).await
                    }
                }
            })
            .await?;
        Ok(host.clone())
    }
}

impl HostConnector {
    /// Takes the host lock of `stack` for this run, once: every provider that changes the
    /// host calls this before its first action, so two operators on two machines (or two
    /// state directories with different roots) cannot apply the same stack at once —
    /// whichever kinds of resources they touch. `lineage` is the state's, recorded in the
    /// holder's details.
    ///
    /// A lock whose holder is gone (killed, its connection cut) is taken over with a
    /// warning naming that holder.
    ///
    /// Under the lock, the stack's owner on the host is settled: a run whose state has
    /// recorded resources (`state_is_empty` false) must be of the lineage that deployed
    /// the stack there ([`HostError::ForeignLineage`] otherwise, and the lock is released
    /// again); an empty state (a first apply, or a lost state starting over) adopts the
    /// stack and its lineage becomes the owner.
    pub async fn take_lock(
        &self,
        host: &dyn Host,
        stack: &str,
        lineage: &str,
        state_is_empty: bool,
    ) -> Result<(), HostError> {
        let path = crate::host_lock_path(stack);
        let mut held = self.held_lock.lock().await;
        if held.as_deref() == Some(path.as_str()) {
            return Ok(());
        }
        // The lineage recorded on the host is read under the lock, in the same command.
        let (previous, recorded) = self
            .lock_waiting(
                host,
                &path,
                &lock_details(stack, lineage),
                &crate::host_lineage_path(stack),
            )
            .await?;
        if let Some(previous) = previous {
            tracing::warn!(
                "took over the host lock `{path}` on {}: its last holder ended without releasing it (killed, or its connection was cut): {}",
                host.describe(),
                one_line(&previous)
            );
        }
        let recorded = recorded.and_then(|bytes| lineage_of(&bytes));
        if let Err(error) = record_owner(host, stack, lineage, state_is_empty, recorded).await {
            let _ = host.unlock(&path).await;
            return Err(error);
        }
        *held = Some(path);
        Ok(())
    }

    /// [`Host::lock_reading`], tried again while a live run holds it, until the lock
    /// timeout: the pause grows from 0.1 s to 2 s, and each new holder is named once.
    async fn lock_waiting(
        &self,
        host: &dyn Host,
        path: &str,
        details: &str,
        record: &str,
    ) -> Result<(Option<String>, Option<Vec<u8>>), HostError> {
        // A timeout too long for the clock to add waits without a deadline.
        let deadline = tokio::time::Instant::now().checked_add(self.lock_timeout);
        let mut pause = std::time::Duration::from_millis(100);
        let mut announced: Option<String> = None;
        // Over SSH the first try goes in the command of the reads of the moment, if any.
        let mut first = !matches!(self.target, Target::Local);
        loop {
            let attempt = if std::mem::take(&mut first) {
                self.lock_reading_with_reads(host, path, details, record)
                    .await
            } else {
                host.lock_reading(path, details, record).await
            };
            match attempt {
                Err(HostError::Locked { holder, .. })
                    if deadline.is_none_or(|deadline| tokio::time::Instant::now() < deadline) =>
                {
                    if announced.as_deref() != Some(holder.as_str()) {
                        tracing::warn!(
                            "the host lock `{path}` on {} is held by {}; waiting up to {} for it (`--lock-timeout`)",
                            host.describe(),
                            one_line(&holder),
                            humantime::format_duration(self.lock_timeout)
                        );
                        announced = Some(holder);
                    }
                    let wake = tokio::time::Instant::now() + pause;
                    tokio::time::sleep_until(deadline.map_or(wake, |deadline| wake.min(deadline)))
                        .await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(2));
                }
                other => return other,
            }
        }
    }

    /// Releases the lock taken by [`HostConnector::take_lock`], if this run holds it.
    pub async fn release_lock(&self, host: &dyn Host) -> Result<(), HostError> {
        let mut held = self.held_lock.lock().await;
        if let Some(path) = held.take() {
            host.unlock(&path).await?;
        }
        Ok(())
    }
}

impl HostConnector {
    /// [`Host::read_files`] of `paths` and, in the same round trip, the host's record of
    /// which state lineage deployed `stack`, kept for [`HostConnector::deployed_lineage`]:
    /// the plan's owner check after a refresh then costs no command of its own. When the
    /// record cannot be read (a user without access to it), the files are read alone and
    /// the owner check asks for itself.
    pub async fn read_files_noting_owner(
        &self,
        host: &dyn Host,
        stack: &str,
        paths: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, HostError> {
        let mut with_record = paths.to_vec();
        with_record.push(crate::host_lineage_path(stack));
        match self.read_and_list(host, &with_record, &[]).await {
            Ok((mut contents, _)) => {
                let lineage = contents
                    .pop()
                    .flatten()
                    .and_then(|bytes| lineage_of(&bytes));
                if let Ok(mut noted) = self.noted_lineage.lock() {
                    *noted = Some((stack.to_string(), lineage));
                }
                Ok(contents)
            }
            Err(_) => host.read_files(paths).await,
        }
    }

    /// [`Host::read_and_list`], gathered over SSH with the other reads that start at the
    /// same moment into one command. A refresh reads the host's files from two providers
    /// at once (docker: the stack's files and the backend files; traefik: its files and
    /// two listings); each command costs a session and the user's login shell on the
    /// host, and beside the host lock's own command they competed for its CPU. When the
    /// gathered command fails, each reader asks again alone, so that an error (a file
    /// that cannot be read) is its own, as without gathering.
    pub async fn read_and_list(
        &self,
        host: &dyn Host,
        paths: &[String],
        directories: &[String],
    ) -> Result<FilesAndListings, HostError> {
        if matches!(self.target, Target::Local) {
            // Nothing to save on this machine: no session, no shell.
            return host.read_and_list(paths, directories).await;
        }
        let (batch, (first_path, first_directory), opened) =
            self.join_read_batch(paths, directories);
        if opened {
            self.run_read_batch(host, &batch).await;
        }
        let mut answers = batch.answer.subscribe();
        let mine = match answers.wait_for(Option::is_some).await {
            Ok(answer) => match answer.as_ref() {
                Some(Ok((contents, listings))) => contents
                    .get(first_path..first_path + paths.len())
                    .zip(listings.get(first_directory..first_directory + directories.len()))
                    .map(|(contents, listings)| (contents.to_vec(), listings.to_vec())),
                _ => None,
            },
            Err(_) => None,
        };
        match mine {
            Some(mine) => Ok(mine),
            None => host.read_and_list(paths, directories).await,
        }
    }

    /// Lets the other reads of the moment join `batch`, closes it and makes it: with the
    /// host lock when one joined (one command for both), else alone.
    async fn run_read_batch(&self, host: &dyn Host, batch: &ReadBatch) {
        tokio::time::sleep(READ_BATCH_WINDOW).await;
        {
            let mut current = lock(&self.read_batch);
            if current
                .as_ref()
                .is_some_and(|current| std::ptr::eq(Arc::as_ptr(current), batch))
            {
                *current = None;
            }
        }
        let (all_paths, all_directories) = lock(&batch.requests).clone();
        let lock_request = lock(&batch.lock).take();
        let answer = match lock_request {
            None => host
                .read_and_list(&all_paths, &all_directories)
                .await
                .map_err(|error| error.to_string()),
            Some(request) => {
                let taken = host
                    .lock_reading_and_list(
                        &request.path,
                        &request.details,
                        &request.record,
                        &all_paths,
                        &all_directories,
                    )
                    .await;
                match taken {
                    Ok((previous, record, reads)) => {
                        let _ = request.answer.send(Ok((previous, record)));
                        reads.ok_or_else(|| "not read under the lock".to_string())
                    }
                    Err(error) => {
                        let _ = request.answer.send(Err(error));
                        Err("the lock was not taken".to_string())
                    }
                }
            }
        };
        batch.answer.send_replace(Some(answer));
    }

    /// [`Host::lock_reading`] over SSH, in the command of the reads that start at the same
    /// moment (a refresh beside which an apply takes the lock): one command, one login
    /// shell on the host, for both.
    async fn lock_reading_with_reads(
        &self,
        host: &dyn Host,
        path: &str,
        details: &str,
        record: &str,
    ) -> Result<(Option<String>, Option<Vec<u8>>), HostError> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let request = LockRequest {
            path: path.to_string(),
            details: details.to_string(),
            record: record.to_string(),
            answer: sender,
        };
        // `Some(Some(batch))`: this lock opened `batch`; `Some(None)`: it joined one;
        // `None`: a batch already carries a lock (never within one run), so apart.
        let joined = {
            let mut current = lock(&self.read_batch);
            match current.as_ref() {
                Some(batch) => {
                    let mut slot = lock(&batch.lock);
                    if slot.is_some() {
                        None
                    } else {
                        *slot = Some(request);
                        Some(None)
                    }
                }
                None => {
                    let batch = Arc::new(ReadBatch {
                        requests: std::sync::Mutex::new((Vec::new(), Vec::new())),
                        lock: std::sync::Mutex::new(Some(request)),
                        answer: tokio::sync::watch::channel(None).0,
                    });
                    *current = Some(batch.clone());
                    Some(Some(batch))
                }
            }
        };
        match joined {
            None => return host.lock_reading(path, details, record).await,
            Some(Some(batch)) => self.run_read_batch(host, &batch).await,
            Some(None) => {}
        }
        receiver.await.unwrap_or_else(|_| {
            Err(HostError::Operation {
                target: host.describe(),
                operation: format!("take the lock {path}"),
                cause: "the command taking it was cancelled".to_string(),
            })
        })
    }

    /// Adds a read to the open batch, or opens one; returns the batch, where this read's
    /// paths and directories start in it, and whether this read opened it.
    fn join_read_batch(
        &self,
        paths: &[String],
        directories: &[String],
    ) -> (Arc<ReadBatch>, (usize, usize), bool) {
        let mut current = lock(&self.read_batch);
        if let Some(batch) = current.as_ref() {
            let mut requests = lock(&batch.requests);
            let offsets = (requests.0.len(), requests.1.len());
            requests.0.extend_from_slice(paths);
            requests.1.extend_from_slice(directories);
            return (batch.clone(), offsets, false);
        }
        let batch = Arc::new(ReadBatch {
            requests: std::sync::Mutex::new((paths.to_vec(), directories.to_vec())),
            lock: std::sync::Mutex::new(None),
            answer: tokio::sync::watch::channel(None).0,
        });
        *current = Some(batch.clone());
        (batch, (0, 0), true)
    }

    /// The lineage of the state that deploys `stack` on the host: as a refresh of this run
    /// read it (once), else read now.
    pub async fn deployed_lineage(
        &self,
        host: &dyn Host,
        stack: &str,
    ) -> Result<Option<String>, HostError> {
        let noted = self
            .noted_lineage
            .lock()
            .ok()
            .and_then(|mut noted| noted.take());
        match noted {
            Some((noted_stack, lineage)) if noted_stack == stack => Ok(lineage),
            _ => read_deployed_lineage(host, stack).await,
        }
    }
}

/// The lineage of the state that deploys `stack` on the host, if one is recorded there.
pub async fn read_deployed_lineage(
    host: &dyn Host,
    stack: &str,
) -> Result<Option<String>, HostError> {
    let path = crate::host_lineage_path(stack);
    let contents = host.read_files(std::slice::from_ref(&path)).await?;
    Ok(contents
        .into_iter()
        .next()
        .flatten()
        .and_then(|bytes| lineage_of(&bytes)))
}

/// The guarded value, also after a panic elsewhere (each change is one assignment).
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A lineage file's contents → the lineage, `None` when empty.
fn lineage_of(bytes: &[u8]) -> Option<String> {
    Some(String::from_utf8_lossy(bytes).trim().to_string()).filter(|lineage| !lineage.is_empty())
}

/// Checks this run's lineage against the one `recorded` on the host (read under the lock)
/// and records it when the run may own the stack (see [`HostConnector::take_lock`]).
async fn record_owner(
    host: &dyn Host,
    stack: &str,
    lineage: &str,
    state_is_empty: bool,
    recorded: Option<String>,
) -> Result<(), HostError> {
    match recorded {
        Some(recorded) if recorded == lineage => return Ok(()),
        Some(recorded) if !state_is_empty => {
            return Err(HostError::ForeignLineage {
                stack: stack.to_string(),
                host: host.describe(),
                recorded,
                ours: lineage.to_string(),
            })
        }
        Some(recorded) => tracing::warn!(
            "an empty state adopts stack `{stack}` on {}: it was deployed by the state of lineage {recorded}, and from now on only this state (lineage {lineage}) may change it",
            host.describe()
        ),
        None => {}
    }
    host.write_file(
        &crate::host_lineage_path(stack),
        format!("{lineage}\n").as_bytes(),
        0o644,
        crate::HOST_RECORDS_DIRECTORY,
    )
    .await
}

/// Details as one line, for a warning.
fn one_line(details: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(details) {
        Ok(value) => value.to_string(),
        Err(_) => details.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// Who holds a host lock: user and machine, process, time, command line, stack, and the
/// lineage of the state the run writes.
pub fn lock_details(stack: &str, lineage: &str) -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let machine = std::fs::read_to_string("/etc/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let details = serde_json::json!({
        "who": format!("{user}@{machine}"),
        "pid": std::process::id(),
        "when": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "stack": stack,
        "lineage": lineage,
    });
    format!("{details:#}\n")
}

async fn connect_ssh(options: SshOptions) -> Result<Arc<dyn Host>, HostError> {
    Ok(Arc::new(SshHost::connect(options).await?))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::{Stream, Unlocked};

    /// This machine, counting the reads that reach it.
    struct Counted {
        inner: LocalHost,
        reads: AtomicUsize,
        locks_with_reads: AtomicUsize,
    }

    #[async_trait]
    impl Host for Counted {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        async fn docker_stream(&self) -> Result<Box<dyn Stream>, HostError> {
            self.inner.docker_stream().await
        }
        async fn connect_tcp(
            &self,
            address: &str,
            port: u16,
        ) -> Result<Box<dyn Stream>, HostError> {
            self.inner.connect_tcp(address, port).await
        }
        async fn write_file(
            &self,
            path: &str,
            contents: &[u8],
            mode: u32,
            temp_dir: &str,
        ) -> Result<(), HostError> {
            self.inner.write_file(path, contents, mode, temp_dir).await
        }
        async fn write_file_owned(
            &self,
            path: &str,
            contents: &[u8],
            mode: u32,
            owner: Option<(u32, u32)>,
            temp_dir: &str,
        ) -> Result<(), HostError> {
            self.inner
                .write_file_owned(path, contents, mode, owner, temp_dir)
                .await
        }
        async fn read_files(&self, paths: &[String]) -> Result<Vec<Option<Vec<u8>>>, HostError> {
            self.inner.read_files(paths).await
        }
        async fn read_and_list(
            &self,
            paths: &[String],
            directories: &[String],
        ) -> Result<FilesAndListings, HostError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.inner.read_and_list(paths, directories).await
        }
        async fn lock_reading_and_list(
            &self,
            path: &str,
            details: &str,
            record: &str,
            paths: &[String],
            directories: &[String],
        ) -> Result<crate::LockedWithReads, HostError> {
            // One command over SSH: counted as one lock taken with its reads.
            self.locks_with_reads.fetch_add(1, Ordering::SeqCst);
            let (previous, record) = self.inner.lock_reading(path, details, record).await?;
            let reads = self.inner.read_and_list(paths, directories).await?;
            Ok((previous, record, Some(reads)))
        }
        async fn remove_file(&self, path: &str) -> Result<(), HostError> {
            self.inner.remove_file(path).await
        }
        async fn list_files(&self, directory: &str) -> Result<Vec<String>, HostError> {
            self.inner.list_files(directory).await
        }
        async fn lock(&self, path: &str, details: &str) -> Result<Option<String>, HostError> {
            self.inner.lock(path, details).await
        }
        async fn unlock(&self, path: &str) -> Result<Unlocked, HostError> {
            self.inner.unlock(path).await
        }
    }

    #[tokio::test]
    async fn reads_that_start_together_are_one_read_and_a_failed_one_is_asked_again_alone() {
        let directory = tempfile::tempdir().unwrap();
        let path = |name: &str| directory.path().join(name).to_string_lossy().into_owned();
        std::fs::write(path("a"), "alpha").unwrap();
        std::fs::write(path("b"), "beta").unwrap();
        std::fs::create_dir(path("dynamic")).unwrap();
        std::fs::write(path("dynamic/x.yml"), "").unwrap();
        let host = Counted {
            inner: LocalHost::new(),
            reads: AtomicUsize::new(0),
            locks_with_reads: AtomicUsize::new(0),
        };
        // Over SSH (never connected here: the reads go to the host handed in).
        let connector = HostConnector::new(Target::Ssh(SshOptions::new("192.0.2.1", 22, "root")));

        let (first_files, first_directories) = ([path("a"), path("missing")], [path("dynamic")]);
        let second_files = [path("b")];
        let (traefik, docker) = tokio::join!(
            connector.read_and_list(&host, &first_files, &first_directories),
            connector.read_and_list(&host, &second_files, &[]),
        );
        assert_eq!(
            traefik.unwrap(),
            (
                vec![Some(b"alpha".to_vec()), None],
                vec![vec!["x.yml".to_string()]]
            )
        );
        assert_eq!(docker.unwrap(), (vec![Some(b"beta".to_vec())], vec![]));
        assert_eq!(host.reads.load(Ordering::SeqCst), 1, "one read for both");

        // A directory read as a file fails the gathered read: each asks again alone, and
        // only the reader of the directory gets the error.
        let (directory_as_file, file) = ([path("dynamic")], [path("a")]);
        let (failing, fine) = tokio::join!(
            connector.read_and_list(&host, &directory_as_file, &[]),
            connector.read_and_list(&host, &file, &[]),
        );
        assert!(failing.is_err());
        assert_eq!(fine.unwrap().0, vec![Some(b"alpha".to_vec())]);
        assert_eq!(host.reads.load(Ordering::SeqCst), 4);

        // A read alone is a read of its own.
        let alone = connector
            .read_and_list(&host, &[path("b")], &[])
            .await
            .unwrap();
        assert_eq!(alone.0, vec![Some(b"beta".to_vec())]);
        assert_eq!(host.reads.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn the_host_lock_taken_beside_a_refresh_carries_its_reads_in_one_command() {
        let directory = tempfile::tempdir().unwrap();
        let path = |name: &str| directory.path().join(name).to_string_lossy().into_owned();
        std::fs::write(path("a"), "alpha").unwrap();
        let host = Counted {
            inner: LocalHost::new(),
            reads: AtomicUsize::new(0),
            locks_with_reads: AtomicUsize::new(0),
        };
        let connector = HostConnector::new(Target::Ssh(SshOptions::new("192.0.2.1", 22, "root")));
        let lock = path("locks/stack.lock");
        let record = path("locks/stack.lineage");
        let files = [path("a")];
        let (taken, read) = tokio::join!(
            connector.lock_waiting(&host, &lock, "details", &record),
            connector.read_and_list(&host, &files, &[]),
        );
        assert_eq!(taken.unwrap(), (None, None));
        assert_eq!(read.unwrap().0, vec![Some(b"alpha".to_vec())]);
        assert_eq!(host.locks_with_reads.load(Ordering::SeqCst), 1);
        assert_eq!(host.reads.load(Ordering::SeqCst), 0, "read under the lock");
        // The lock is held: another run is refused, naming it.
        let other = LocalHost::new();
        assert!(matches!(
            other.lock(&lock, "other").await,
            Err(HostError::Locked { .. })
        ));
        host.unlock(&lock).await.unwrap();
    }
}
