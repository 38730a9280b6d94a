//! The SSH transport: one russh connection per run, many channels on it.
//!
//! # Why it is built this way
//!
//! A run talks to the host constantly: a refresh reads every container and file of the
//! stack, an apply starts and watches containers. Opening an SSH connection costs a TCP
//! handshake, a key exchange and authentication, so [`SshHost`] opens exactly one and
//! multiplexes everything over channels on it. Channels are cheap, but OpenSSH limits
//! the *session* channels (exec, shell) of one connection to `MaxSessions` (10 by
//! default) and frees a slot only some time after the channel closes; a client that
//! opens exactly ten races those frees. So at most [`MAX_CONCURRENT_CHANNELS`] (8)
//! channels are opened or running a command at once (a semaphore), and a refused
//! channel open is retried a few times with a short backoff.
//!
//! Docker is not driven through its CLI: [`Host::docker_stream`] opens a
//! `direct-streamlocal` channel to `/var/run/docker.sock` and hands the caller a raw
//! byte stream on which it speaks the Engine API's HTTP. No shell, no process and no
//! quoting per Docker operation. Servers that forbid socket forwarding
//! (`AllowStreamLocalForwarding no`) refuse that channel as "administratively
//! prohibited"; then, and from then on, the stream is an exec of
//! `docker system dial-stdio`, which proxies the same socket through stdin/stdout.
//!
//! Files and the host lock still need commands. Each operation is one exec of a small
//! POSIX script (see [`crate::remote_script`]) because every command pays a round trip
//! plus the user's login shell, which can be slow when `~/.bashrc` is heavy. All paths
//! in those scripts are quoted by [`crate::quote`]; contents go over stdin.
//!
//! The host lock is a kernel lock (`flock`) held by a command on the host that runs for
//! the whole apply on a channel of its own and waits on its stdin: when stackctl ends —
//! cleanly, by kill -9, or because the connection is cut — sshd closes the channel, the
//! command sees end of file and exits, and the kernel releases the lock. No lock is ever
//! left behind for a person to clear.
//!
//! # Trust
//!
//! The server's host key is checked during the handshake, before any credential is
//! offered: first against a fingerprint pinned in state, else against `known_hosts`
//! (hashed entries and `[host]:port` names included). An unknown key is refused unless
//! the caller explicitly accepts new keys, in which case the connection reports the
//! fingerprint ([`SshHost::host_key`]) so the engine pins it and later runs check it.
//! A key that differs from the pinned or recorded one is refused whatever the flags
//! say, with both fingerprints in the message, written as `ssh-keygen -lf` writes them
//! so the user can compare them with the host's own output.
//!
//! Authentication is by public key only: the configured identity files, an agent at
//! `SSH_AUTH_SOCK` if there is one, then `~/.ssh/id_ed25519` and `~/.ssh/id_ecdsa`. A
//! refusal names every key tried and what happened to it.
//!
//! # Time
//!
//! Connecting (TCP, handshake and authentication) is bounded by
//! [`SshOptions::connect_timeout`], each operation by
//! [`SshOptions::operation_timeout`]; a zero duration means the defaults below. A
//! command that outlives its timeout is also killed on the host (`timeout -s KILL`),
//! because closing its channel alone would leave it running and holding a session. TCP
//! nodelay is on: without it every small request waits for Nagle's algorithm (~40 ms).

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use russh::client::{self, Handle, Msg};
use russh::{Channel, ChannelMsg, ChannelOpenFailure};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::remote_script::{self, FileRead};
use crate::{Host, HostError, HostKey, LockedWithReads, SshOptions, Stream, Unlocked};

mod authentication;
mod dial_stdio;
mod host_key_check;

use authentication::authenticate;
use dial_stdio::DialStdioStream;
use host_key_check::{HostKeyPolicy, TrustingHandler};

/// Channels opened or running a command at once on one connection: below OpenSSH's
/// default `MaxSessions` of 10, with room for the server's delayed slot release.
pub const MAX_CONCURRENT_CHANNELS: usize = 8;
/// Used when [`SshOptions::connect_timeout`] is zero.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Used when [`SshOptions::operation_timeout`] is zero.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
/// The Docker daemon's socket on the host.
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// A refused session channel is retried (within the operation timeout) this many
/// times, waiting a little longer each time up to the cap: a server with a lower
/// `MaxSessions` than ours still gets every command through, just more slowly.
const CHANNEL_OPEN_ATTEMPTS: u32 = 60;
const CHANNEL_OPEN_BACKOFF_STEP: Duration = Duration::from_millis(20);
const CHANNEL_OPEN_BACKOFF_CAP: Duration = Duration::from_millis(250);
/// Scripts longer than this are split over several commands, far below both the
/// server's packet limit and the kernel's argument limit.
const MAX_SCRIPT_BYTES: usize = 64 * 1024;

/// A host reached over SSH. Cheap to share: every method takes `&self`, and
/// concurrent calls run on concurrent channels of the one connection.
pub struct SshHost {
    handle: Handle<TrustingHandler>,
    target: String,
    operation_timeout: Duration,
    channels: Arc<Semaphore>,
    host_key: HostKey,
    /// Set once the server refused socket forwarding, so later streams go straight to
    /// `docker system dial-stdio`.
    streamlocal_refused: AtomicBool,
    /// Whether scripts run under `timeout` on the host; cleared when it has none.
    remote_time_limit: AtomicBool,
    /// The host locks this run holds, by path: each a channel whose command holds the
    /// kernel lock on the host until the channel closes.
    held_locks: Mutex<std::collections::BTreeMap<String, HeldLock>>,
    /// The `ProxyJump` host whose channel carries this connection: kept as long as it.
    _jump: Option<Box<SshHost>>,
}

/// A host lock held by a command on the host (see [`remote_script::hold_lock_script`]).
struct HeldLock {
    channel: Channel<Msg>,
    _slot: OwnedSemaphorePermit,
}

impl std::fmt::Debug for SshHost {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SshHost")
            .field("target", &self.target)
            .field("host_key", &self.host_key)
            .finish_non_exhaustive()
    }
}

impl SshHost {
    /// Connects, verifies the host key and authenticates, all within
    /// `options.connect_timeout`.
    pub async fn connect(options: SshOptions) -> Result<SshHost, HostError> {
        let options = resolve_defaults(options);
        let target = format!("{}@{}:{}", options.user, options.address, options.port);
        let connect_timeout = options.connect_timeout;
        match tokio::time::timeout(connect_timeout, connect_and_authenticate(&options, &target))
            .await
        {
            Ok(result) => result,
            Err(_) => Err(HostError::Unreachable {
                target,
                cause: format!(
                    "no SSH session within {} (connect timeout)",
                    humanize(connect_timeout)
                ),
            }),
        }
    }

    /// The host key this connection trusted; pin [`HostKey::fingerprint`] in state when
    /// its trust is [`crate::HostKeyTrust::NewlyAccepted`].
    pub fn host_key(&self) -> &HostKey {
        &self.host_key
    }

    /// `SHA256:…`, as `ssh-keygen -lf` prints it.
    pub fn host_key_fingerprint(&self) -> &str {
        &self.host_key.fingerprint
    }

    fn operation_error(&self, operation: &str, cause: impl ToString) -> HostError {
        HostError::Operation {
            target: self.target.clone(),
            operation: operation.to_string(),
            cause: cause.to_string(),
        }
    }

    fn timeout_error(&self, operation: &str) -> HostError {
        self.operation_error(
            operation,
            format!(
                "no answer within {} (operation timeout)",
                humanize(self.operation_timeout)
            ),
        )
    }

    /// Waits for one of the channel slots.
    async fn channel_slot(&self) -> Result<OwnedSemaphorePermit, HostError> {
        self.channels
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| self.operation_error("open a channel", "the connection is shutting down"))
    }

    /// Opens a channel with `open`, retrying refusals that a busy server gives (all
    /// failures for session channels, where `MaxSessions` answers "administratively
    /// prohibited"; only resource shortage for forwarding channels, whose other
    /// refusals are final).
    async fn open_channel<F, Fut>(
        &self,
        kind: ChannelKind,
        open: F,
    ) -> Result<Channel<Msg>, russh::Error>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Channel<Msg>, russh::Error>>,
    {
        let mut attempt = 1;
        loop {
            match open().await {
                Err(russh::Error::ChannelOpenFailure(reason))
                    if attempt < CHANNEL_OPEN_ATTEMPTS && kind.is_retryable(&reason) =>
                {
                    tracing::debug!(target = %self.target, ?reason, attempt, "channel open refused; retrying");
                    tokio::time::sleep(
                        (CHANNEL_OPEN_BACKOFF_STEP * attempt).min(CHANNEL_OPEN_BACKOFF_CAP),
                    )
                    .await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Runs `command` in one session channel, feeding `stdin`, and collects its output.
    async fn exec(
        &self,
        operation: &str,
        command: &str,
        stdin: &[u8],
    ) -> Result<ExecOutput, HostError> {
        let started = tokio::time::Instant::now();
        let deadline = started + self.operation_timeout;
        let run = async {
            let _slot = self.channel_slot().await?;
            let mut channel = self
                .open_channel(ChannelKind::Session, || self.handle.channel_open_session())
                .await
                .map_err(|error| self.operation_error(operation, describe_russh_error(&error)))?;
            match tokio::time::timeout_at(deadline, converse(&mut channel, command, stdin)).await {
                Ok(Ok(output)) => Ok(output),
                Ok(Err(cause)) => Err(self.operation_error(operation, cause)),
                Err(_) => {
                    // Dropping a russh channel does not close it, so close it and ask
                    // for the command to be killed (OpenSSH ignores that for root; the
                    // `timeout` wrapper of `sh_command` covers that case).
                    let cleanup = async {
                        let _ = channel.signal(russh::Sig::KILL).await;
                        let _ = channel.close().await;
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(1), cleanup).await;
                    Err(self.timeout_error(operation))
                }
            }
        };
        // Also bounds waiting for a slot and opening the channel.
        let result = tokio::time::timeout_at(deadline + Duration::from_secs(2), run)
            .await
            .unwrap_or_else(|_| Err(self.timeout_error(operation)));
        tracing::debug!(target = %self.target, operation, took = ?started.elapsed(), "command ran");
        result
    }

    /// Runs one of the [`remote_script`] scripts and fails unless it exits with 0 (or
    /// one of `accepted` statuses).
    async fn run_script(
        &self,
        operation: &str,
        script: &str,
        stdin: &[u8],
        accepted: &[u32],
    ) -> Result<ExecOutput, HostError> {
        let limited = self.remote_time_limit.load(Ordering::Relaxed);
        let command = remote_script::sh_command(script, limited.then_some(self.operation_timeout))
            .map_err(|error| self.operation_error(operation, error))?;
        let mut output = self.exec(operation, &command, stdin).await?;
        if limited && remote_script::timeout_program_missing(output.exit_status, &output.stderr) {
            tracing::info!(target = %self.target, "the host has no `timeout` program; commands run without a time limit there");
            self.remote_time_limit.store(false, Ordering::Relaxed);
            let command = remote_script::sh_command(script, None)
                .map_err(|error| self.operation_error(operation, error))?;
            output = self.exec(operation, &command, stdin).await?;
        }
        match output.exit_status {
            Some(0) => Ok(output),
            Some(status) if accepted.contains(&status) => Ok(output),
            _ => Err(self.operation_error(operation, output.failure_cause())),
        }
    }

    async fn read_files_batch(&self, paths: &[String]) -> Result<Vec<Option<Vec<u8>>>, HostError> {
        let operation = format!("read {}", describe_paths(paths));
        let nonce = remote_script::nonce();
        let script = remote_script::read_files_script(paths, &nonce)
            .map_err(|error| self.operation_error(&operation, error))?;
        let output = self.run_script(&operation, &script, &[], &[]).await?;
        let reads = remote_script::parse_read_files(&output.stdout, paths.len(), &nonce)
            .map_err(|cause| self.operation_error(&operation, cause))?;
        self.file_reads(reads, paths, &output.stderr)
    }

    /// What a read script said of each of `paths` → its contents, `None` when missing; a
    /// file that exists but could not be read fails with the script's `stderr`.
    fn file_reads(
        &self,
        reads: Vec<FileRead>,
        paths: &[String],
        stderr: &[u8],
    ) -> Result<Vec<Option<Vec<u8>>>, HostError> {
        reads
            .into_iter()
            .zip(paths)
            .map(|(read, path)| match read {
                FileRead::Contents(contents) => Ok(Some(contents)),
                FileRead::Missing => Ok(None),
                FileRead::Failed => Err(self.operation_error(
                    &format!("read {path}"),
                    non_empty_or(
                        &String::from_utf8_lossy(stderr),
                        "it exists but cannot be read",
                    ),
                )),
            })
            .collect()
    }

    async fn dial_stdio_stream(&self) -> Result<Box<dyn Stream>, HostError> {
        let operation = "start `docker system dial-stdio`";
        let open = async {
            // The slot is held for the stream's whole life: an exec channel counts
            // against the server's `MaxSessions` until it closes.
            let slot = self.channel_slot().await?;
            let channel = self
                .open_channel(ChannelKind::Session, || self.handle.channel_open_session())
                .await
                .map_err(|error| self.operation_error(operation, describe_russh_error(&error)))?;
            channel
                .exec(false, "exec docker system dial-stdio")
                .await
                .map_err(|error| self.operation_error(operation, describe_russh_error(&error)))?;
            Ok(Box::new(DialStdioStream::new(channel, slot)) as Box<dyn Stream>)
        };
        tokio::time::timeout(self.operation_timeout, open)
            .await
            .unwrap_or_else(|_| Err(self.timeout_error(operation)))
    }
}

#[async_trait]
impl Host for SshHost {
    fn describe(&self) -> String {
        self.target.clone()
    }

    async fn docker_stream(&self) -> Result<Box<dyn Stream>, HostError> {
        if self.streamlocal_refused.load(Ordering::Relaxed) {
            return self.dial_stdio_stream().await;
        }
        let operation = format!("open the Docker socket {DOCKER_SOCKET}");
        let open = async {
            // Forwarding channels do not count against `MaxSessions`, so the slot only
            // bounds how many are being opened at once.
            let _slot = self.channel_slot().await?;
            Ok(self
                .open_channel(ChannelKind::Forwarding, || {
                    self.handle.channel_open_direct_streamlocal(DOCKER_SOCKET)
                })
                .await)
        };
        let opened = tokio::time::timeout(self.operation_timeout, open)
            .await
            .unwrap_or_else(|_| Err(self.timeout_error(&operation)))?;
        match opened {
            Ok(channel) => Ok(Box::new(channel.into_stream())),
            // OpenSSH 9.2 answers "connect failed" both when `AllowStreamLocalForwarding
            // no` forbids the channel and when the socket is missing, so either way try
            // the other road; if Docker is really down, dial-stdio's own error says so.
            Err(russh::Error::ChannelOpenFailure(reason)) => {
                tracing::info!(
                    target = %self.target,
                    ?reason,
                    "the server did not forward the Docker socket; using `docker system dial-stdio`"
                );
                self.streamlocal_refused.store(true, Ordering::Relaxed);
                self.dial_stdio_stream().await
            }
            Err(error) => Err(self.operation_error(&operation, describe_russh_error(&error))),
        }
    }

    async fn connect_tcp(&self, address: &str, port: u16) -> Result<Box<dyn Stream>, HostError> {
        let operation = format!("connect to {address}:{port} from the host");
        let open = async {
            let _slot = self.channel_slot().await?;
            self.open_channel(ChannelKind::Forwarding, || {
                self.handle
                    .channel_open_direct_tcpip(address, u32::from(port), "127.0.0.1", 0)
            })
            .await
            .map_err(|error| self.operation_error(&operation, describe_russh_error(&error)))
        };
        let channel = tokio::time::timeout(self.operation_timeout, open)
            .await
            .unwrap_or_else(|_| Err(self.timeout_error(&operation)))?;
        Ok(Box::new(channel.into_stream()))
    }

    async fn write_file(
        &self,
        path: &str,
        contents: &[u8],
        mode: u32,
        temp_dir: &str,
    ) -> Result<(), HostError> {
        self.write_file_owned(path, contents, mode, None, temp_dir)
            .await
    }

    async fn write_file_owned(
        &self,
        path: &str,
        contents: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
        temp_dir: &str,
    ) -> Result<(), HostError> {
        let operation = format!("write {path}");
        let script =
            remote_script::write_file_script(path, mode, owner, temp_dir, &remote_script::nonce())
                .map_err(|error| self.operation_error(&operation, error))?;
        self.run_script(&operation, &script, contents, &[])
            .await
            .map(drop)
    }

    async fn read_files(&self, paths: &[String]) -> Result<Vec<Option<Vec<u8>>>, HostError> {
        // One command for the usual handful of files; a huge list is split so that no
        // command line grows past the server's limits, and the parts run concurrently.
        let mut batches: Vec<&[String]> = Vec::new();
        let mut start = 0;
        let mut batch_bytes = 0;
        for (index, path) in paths.iter().enumerate() {
            let cost = path.len() + 120;
            if index > start && batch_bytes + cost > MAX_SCRIPT_BYTES {
                batches.push(&paths[start..index]);
                start = index;
                batch_bytes = 0;
            }
            batch_bytes += cost;
        }
        if start < paths.len() {
            batches.push(&paths[start..]);
        }
        let results = join_all(
            batches
                .into_iter()
                .map(|batch| self.read_files_batch(batch)),
        )
        .await;
        let mut contents = Vec::with_capacity(paths.len());
        for result in results {
            contents.extend(result?);
        }
        Ok(contents)
    }

    async fn remove_file(&self, path: &str) -> Result<(), HostError> {
        let operation = format!("remove {path}");
        let script = remote_script::remove_file_script(path)
            .map_err(|error| self.operation_error(&operation, error))?;
        self.run_script(&operation, &script, &[], &[])
            .await
            .map(drop)
    }

    async fn list_files(&self, directory: &str) -> Result<Vec<String>, HostError> {
        let operation = format!("list {directory}");
        let nonce = remote_script::nonce();
        let script = remote_script::list_files_script(directory, &nonce)
            .map_err(|error| self.operation_error(&operation, error))?;
        let output = self.run_script(&operation, &script, &[], &[]).await?;
        remote_script::parse_list_files(&output.stdout, &nonce)
            .map_err(|cause| self.operation_error(&operation, cause))
    }

    async fn lock(&self, path: &str, details: &str) -> Result<Option<String>, HostError> {
        self.lock_with_record(path, details, None, None)
            .await
            .map(|(previous, _, _)| previous)
    }

    async fn lock_reading(
        &self,
        path: &str,
        details: &str,
        record: &str,
    ) -> Result<(Option<String>, Option<Vec<u8>>), HostError> {
        self.lock_with_record(path, details, Some(record), None)
            .await
            .map(|(previous, record, _)| (previous, record))
    }

    async fn lock_reading_and_list(
        &self,
        path: &str,
        details: &str,
        record: &str,
        paths: &[String],
        directories: &[String],
    ) -> Result<LockedWithReads, HostError> {
        let size: usize = paths
            .iter()
            .chain(directories)
            .map(|path| path.len() + 120)
            .sum();
        if size > MAX_SCRIPT_BYTES {
            // A huge list: the lock alone; the caller reads apart (in batches).
            let (previous, record) = self.lock_reading(path, details, record).await?;
            return Ok((previous, record, None));
        }
        self.lock_with_record(path, details, Some(record), Some((paths, directories)))
            .await
    }

    async fn read_and_list(
        &self,
        paths: &[String],
        directories: &[String],
    ) -> Result<(Vec<Option<Vec<u8>>>, Vec<Vec<String>>), HostError> {
        let size: usize = paths
            .iter()
            .chain(directories)
            .map(|path| path.len() + 120)
            .sum();
        if size > MAX_SCRIPT_BYTES {
            // A huge list: the files in batches, the listings beside them.
            let listings = join_all(
                directories
                    .iter()
                    .map(|directory| self.list_files(directory)),
            );
            let (contents, listings) = tokio::join!(self.read_files(paths), listings);
            return Ok((contents?, listings.into_iter().collect::<Result<_, _>>()?));
        }
        let operation = format!(
            "read {} and list {}",
            describe_paths(paths),
            describe_paths(directories)
        );
        let nonce = remote_script::nonce();
        let script = remote_script::read_and_list_script(paths, directories, &nonce)
            .map_err(|error| self.operation_error(&operation, error))?;
        let output = self.run_script(&operation, &script, &[], &[]).await?;
        let (reads, listings) = remote_script::parse_read_and_list(
            &output.stdout,
            paths.len(),
            directories.len(),
            &nonce,
        )
        .map_err(|cause| self.operation_error(&operation, cause))?;
        let contents = self.file_reads(reads, paths, &output.stderr)?;
        Ok((contents, listings))
    }

    async fn unlock(&self, path: &str) -> Result<Unlocked, HostError> {
        let mine = self
            .held_locks
            .lock()
            .ok()
            .and_then(|mut locks| locks.remove(path));
        if let Some(held) = mine {
            let operation = format!("release the lock {path}");
            let HeldLock { mut channel, _slot } = held;
            let release = async {
                // `release` tells the holder to remove its details; end of file ends it,
                // and with it the kernel lock.
                channel
                    .data(&b"release\n"[..])
                    .await
                    .map_err(|error| describe_russh_error(&error))?;
                let _ = channel.eof().await;
                let mut status = None;
                while let Some(message) = channel.wait().await {
                    match message {
                        ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                        ChannelMsg::Close => break,
                        _ => {}
                    }
                }
                match status {
                    Some(0) => Ok(()),
                    Some(status) => Err(format!("the lock holder exited with status {status}")),
                    None => Err("the lock holder ended without an exit status".to_string()),
                }
            };
            return match tokio::time::timeout(self.operation_timeout, release).await {
                Ok(Ok(())) => Ok(Unlocked::Released),
                Ok(Err(cause)) => Err(self.operation_error(&operation, cause)),
                Err(_) => Err(self.timeout_error(&operation)),
            };
        }
        let operation = format!("clear the lock {path}");
        let nonce = remote_script::nonce();
        let script = remote_script::clear_stale_lock_script(path, &nonce)
            .map_err(|error| self.operation_error(&operation, error))?;
        let output = self
            .run_script(&operation, &script, &[], &[remote_script::LOCK_HELD_STATUS])
            .await?;
        let details = remote_script::after_begin_marker(&output.stdout, &nonce)
            .map_err(|cause| self.operation_error(&operation, cause))?;
        let holder = String::from_utf8_lossy(details).trim().to_string();
        if output.exit_status == Some(remote_script::LOCK_HELD_STATUS) {
            return Err(HostError::Locked {
                path: path.to_string(),
                holder: non_empty_or(&holder, "an unknown holder (no details written yet)"),
            });
        }
        Ok(if holder.is_empty() {
            Unlocked::NotHeld
        } else {
            Unlocked::ClearedStaleDetails { holder }
        })
    }

    async fn connection_lost(&self) -> bool {
        if self.handle.is_closed() {
            return true;
        }
        // The session task may not have seen the end of the connection yet: a channel
        // open is answered at once by a live server, and fails at once on a dead one.
        match tokio::time::timeout(Duration::from_secs(2), self.handle.channel_open_session()).await
        {
            Ok(Ok(channel)) => {
                let _ = channel.close().await;
                false
            }
            Ok(Err(russh::Error::ChannelOpenFailure(_))) => false,
            Ok(Err(_)) | Err(_) => true,
        }
    }

    fn host_key(&self) -> Option<HostKey> {
        Some(self.host_key.clone())
    }
}

impl SshHost {
    /// Takes the host lock `path` and, in the same command, reads `record` under it, and
    /// the files and listings of `reads` (`None` for those when their output cannot be
    /// used: the caller reads them apart).
    async fn lock_with_record(
        &self,
        path: &str,
        details: &str,
        record: Option<&str>,
        reads: Option<(&[String], &[String])>,
    ) -> Result<LockedWithReads, HostError> {
        let operation = format!("take the lock {path}");
        let started = tokio::time::Instant::now();
        let nonce = remote_script::nonce();
        let reads_nonce = remote_script::nonce();
        // No `timeout` wrapper: the script holds the lock for as long as its channel lives.
        let command = remote_script::hold_lock_script(
            path,
            details,
            record,
            reads.map(|(paths, directories)| (paths, directories, reads_nonce.as_str())),
            &nonce,
        )
        .and_then(|script| remote_script::sh_command(&script, None))
        .map_err(|error| self.operation_error(&operation, error))?;
        let take = async {
            // The slot is kept while the lock is held: the channel counts against the
            // server's `MaxSessions` until it closes.
            let slot = self.channel_slot().await?;
            let mut channel = self
                .open_channel(ChannelKind::Session, || self.handle.channel_open_session())
                .await
                .map_err(|error| self.operation_error(&operation, describe_russh_error(&error)))?;
            channel
                .exec(true, command.as_str())
                .await
                .map_err(|error| self.operation_error(&operation, describe_russh_error(&error)))?;
            let mut output = ExecOutput::default();
            loop {
                if let remote_script::LockOutput::Taken {
                    previous_holder,
                    record,
                    reads: read_output,
                } = remote_script::parse_lock_output(&output.stdout, &nonce)
                {
                    // Reads that went wrong (a file that cannot be read) are left to the
                    // caller to make apart, for an error of their own.
                    let contents =
                        reads
                            .zip(read_output)
                            .and_then(|((paths, directories), read_output)| {
                                let (files, listings) = remote_script::parse_read_and_list(
                                    &read_output,
                                    paths.len(),
                                    directories.len(),
                                    &reads_nonce,
                                )
                                .ok()?;
                                let contents =
                                    self.file_reads(files, paths, &output.stderr).ok()?;
                                Some((contents, listings))
                            });
                    return Ok((
                        HeldLock {
                            channel,
                            _slot: slot,
                        },
                        previous_holder,
                        record,
                        contents,
                    ));
                }
                match channel.wait().await {
                    Some(ChannelMsg::Data { data }) => output.stdout.extend_from_slice(&data),
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                        output.stderr.extend_from_slice(&data)
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => {
                        output.exit_status = Some(exit_status)
                    }
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                        output.signal = Some(format!("{signal_name:?}"));
                    }
                    Some(ChannelMsg::Failure) => {
                        return Err(self
                            .operation_error(&operation, "the server refused to run the command"))
                    }
                    Some(ChannelMsg::Close) | None => break,
                    Some(_) => {}
                }
            }
            if output.exit_status == Some(remote_script::LOCK_HELD_STATUS) {
                let details = remote_script::after_begin_marker(&output.stdout, &nonce)
                    .map_err(|cause| self.operation_error(&operation, cause))?;
                let holder = String::from_utf8_lossy(details).trim().to_string();
                return Err(HostError::Locked {
                    path: path.to_string(),
                    holder: non_empty_or(&holder, "an unknown holder (no details written yet)"),
                });
            }
            Err(self.operation_error(&operation, output.failure_cause()))
        };
        let (held, previous_holder, record, contents) =
            tokio::time::timeout(self.operation_timeout, take)
                .await
                .unwrap_or_else(|_| Err(self.timeout_error(&operation)))?;
        if let Ok(mut locks) = self.held_locks.lock() {
            locks.insert(path.to_string(), held);
        }
        tracing::debug!(target = %self.target, took = ?started.elapsed(), with_reads = contents.is_some(), "lock taken");
        Ok((previous_holder, record, contents))
    }
}

/// Starts `command` on an open session channel, feeds it `stdin`, and collects its
/// output until the server closes the channel.
async fn converse(
    channel: &mut Channel<Msg>,
    command: &str,
    stdin: &[u8],
) -> Result<ExecOutput, String> {
    channel
        .exec(true, command)
        .await
        .map_err(|error| describe_russh_error(&error))?;
    if !stdin.is_empty() {
        // A command that exits without reading its input (the lock is held) closes the
        // channel under us; its exit status tells the story, so go on.
        let _ = channel.data(stdin).await;
    }
    let _ = channel.eof().await;
    let mut output = ExecOutput::default();
    while let Some(message) = channel.wait().await {
        match message {
            ChannelMsg::Data { data } => output.stdout.extend_from_slice(&data),
            ChannelMsg::ExtendedData { data, ext: 1 } => output.stderr.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => output.exit_status = Some(exit_status),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                output.signal = Some(format!("{signal_name:?}"));
            }
            ChannelMsg::Failure => return Err("the server refused to run the command".to_string()),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    Ok(output)
}

/// Runs futures concurrently and returns their outputs in order (a small `join_all`,
/// to avoid a dependency for one call site).
async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|context| {
        let mut pending = false;
        for (future, result) in futures.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match future.as_mut().poll(context) {
                    Poll::Ready(output) => *result = Some(output),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

#[derive(Clone, Copy, Debug)]
enum ChannelKind {
    Session,
    Forwarding,
}

impl ChannelKind {
    fn is_retryable(self, reason: &ChannelOpenFailure) -> bool {
        match self {
            ChannelKind::Session => true,
            ChannelKind::Forwarding => matches!(reason, ChannelOpenFailure::ResourceShortage),
        }
    }
}

#[derive(Debug, Default)]
struct ExecOutput {
    exit_status: Option<u32>,
    signal: Option<String>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl ExecOutput {
    fn failure_cause(&self) -> String {
        let stderr = String::from_utf8_lossy(&self.stderr).trim().to_string();
        let status = match (&self.exit_status, &self.signal) {
            (Some(status), _) => format!("exit status {status}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "the channel closed without an exit status".to_string(),
        };
        if stderr.is_empty() {
            status
        } else {
            format!("{stderr} ({status})")
        }
    }
}

// ---------------------------------------------------------------------------------
// Connecting
// ---------------------------------------------------------------------------------

/// Fills what the caller left unset: port 22, the local user name, the default
/// timeouts.
fn resolve_defaults(mut options: SshOptions) -> SshOptions {
    if options.port == 0 {
        options.port = 22;
    }
    if options.user.is_empty() {
        options.user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "root".to_string());
    }
    if options.connect_timeout.is_zero() {
        options.connect_timeout = DEFAULT_CONNECT_TIMEOUT;
    }
    if options.operation_timeout.is_zero() {
        options.operation_timeout = DEFAULT_OPERATION_TIMEOUT;
    }
    options
}

fn home_directory() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
}

async fn connect_and_authenticate(
    options: &SshOptions,
    target: &str,
) -> Result<SshHost, HostError> {
    let unreachable = |cause: String| HostError::Unreachable {
        target: target.to_string(),
        cause,
    };
    let policy = HostKeyPolicy::load(options, target)?;

    // Through a jump host: its own SSH connection (its key checked against known_hosts,
    // its own authentication), then a `direct-tcpip` channel to the target that carries
    // this session, as `ssh -J` does.
    let (socket, jump): (Box<dyn Stream>, Option<Box<SshHost>>) = match &options.jump {
        Some(jump) => {
            let jump_host = Box::pin(SshHost::connect((**jump).clone())).await?;
            let channel = jump_host
                .handle
                .channel_open_direct_tcpip(
                    options.address.as_str(),
                    u32::from(options.port),
                    "127.0.0.1",
                    0,
                )
                .await
                .map_err(|error| {
                    unreachable(format!(
                        "the jump host {} could not open a connection to it: {}",
                        jump_host.target,
                        describe_russh_error(&error)
                    ))
                })?;
            (Box::new(channel.into_stream()), Some(Box::new(jump_host)))
        }
        None => {
            let socket = tokio::net::TcpStream::connect((options.address.as_str(), options.port))
                .await
                .map_err(|error| unreachable(error.to_string()))?;
            // Small requests and answers go back and forth all the time; Nagle's
            // algorithm would hold each one for up to ~40 ms.
            socket
                .set_nodelay(true)
                .map_err(|error| unreachable(format!("cannot set TCP_NODELAY: {error}")))?;
            (Box::new(socket), None)
        }
    };

    let mut preferred = russh::Preferred::default();
    // Ask for the key type known_hosts already has, as OpenSSH does: otherwise a host
    // with both an RSA and an ed25519 key, recorded by its RSA key, would look changed.
    preferred.key = policy.preferred_key_algorithms(&preferred.key).into();
    let config = client::Config {
        nodelay: true,
        preferred,
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 3,
        ..Default::default()
    };
    let verdict = Arc::new(Mutex::new(None));
    let handler = TrustingHandler {
        policy,
        verdict: verdict.clone(),
    };
    let handshake = client::connect_stream(Arc::new(config), socket, handler).await;
    let taken_verdict = verdict.lock().ok().and_then(|mut verdict| verdict.take());
    let (mut handle, host_key) = match (handshake, taken_verdict) {
        (Ok(handle), Some(Ok(host_key))) => (handle, host_key),
        (Ok(_), _) => {
            return Err(HostError::Refused {
                message: format!(
                    "the SSH handshake with {target} finished without a host key check"
                ),
                hint: None,
            })
        }
        // The handler's own refusal says more than russh's `UnknownKey`.
        (Err(_), Some(Err(refusal))) => return Err(refusal),
        (Err(error), _) => {
            return Err(unreachable(format!(
                "SSH handshake failed: {}",
                describe_russh_error(&error)
            )))
        }
    };
    authenticate(&mut handle, options, target).await?;
    tracing::debug!(%target, fingerprint = %host_key.fingerprint, "connected");
    Ok(SshHost {
        handle,
        target: target.to_string(),
        operation_timeout: options.operation_timeout,
        channels: Arc::new(Semaphore::new(MAX_CONCURRENT_CHANNELS)),
        host_key,
        streamlocal_refused: AtomicBool::new(false),
        remote_time_limit: AtomicBool::new(true),
        held_locks: Mutex::default(),
        _jump: jump,
    })
}

// ---------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------

fn describe_russh_error(error: &russh::Error) -> String {
    match error {
        russh::Error::ChannelOpenFailure(reason) => format!(
            "the server refused to open a channel ({})",
            match reason {
                ChannelOpenFailure::AdministrativelyProhibited =>
                    "administratively prohibited".to_string(),
                ChannelOpenFailure::ConnectFailed => "connect failed".to_string(),
                ChannelOpenFailure::UnknownChannelType => "unknown channel type".to_string(),
                ChannelOpenFailure::ResourceShortage => "resource shortage".to_string(),
                ChannelOpenFailure::Other { code, reason } => format!("{reason}, code {code}"),
            }
        ),
        russh::Error::Disconnect => "the server closed the connection".to_string(),
        russh::Error::SendError => "the SSH connection is closed".to_string(),
        russh::Error::IO(error) => error.to_string(),
        other => other.to_string(),
    }
}

fn describe_paths(paths: &[String]) -> String {
    match paths {
        [only] => only.clone(),
        _ => format!("{} files", paths.len()),
    }
}

fn non_empty_or(text: &str, fallback: &str) -> String {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        fallback.to_string()
    } else {
        trimmed.to_string()
    }
}

fn humanize(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_port_user_and_timeouts() {
        let options = resolve_defaults(SshOptions {
            address: "203.0.113.7".to_string(),
            user: "deploy".to_string(),
            ..Default::default()
        });
        assert_eq!(options.port, 22);
        assert_eq!(options.user, "deploy");
        assert_eq!(options.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(options.operation_timeout, DEFAULT_OPERATION_TIMEOUT);
    }

    #[test]
    fn session_channels_retry_every_refusal_and_forwarding_only_shortage() {
        assert!(ChannelKind::Session.is_retryable(&ChannelOpenFailure::AdministrativelyProhibited));
        assert!(ChannelKind::Forwarding.is_retryable(&ChannelOpenFailure::ResourceShortage));
        assert!(
            !ChannelKind::Forwarding.is_retryable(&ChannelOpenFailure::AdministrativelyProhibited)
        );
        assert!(!ChannelKind::Forwarding.is_retryable(&ChannelOpenFailure::ConnectFailed));
    }

    #[test]
    fn exec_failures_name_status_and_stderr() {
        let output = ExecOutput {
            exit_status: Some(1),
            stderr: b"mv: cannot move\n".to_vec(),
            ..Default::default()
        };
        assert_eq!(output.failure_cause(), "mv: cannot move (exit status 1)");
        assert_eq!(
            ExecOutput::default().failure_cause(),
            "the channel closed without an exit status"
        );
    }

    #[tokio::test]
    async fn join_all_keeps_order() {
        let outputs = join_all((0..5u64).map(|index| async move {
            tokio::time::sleep(Duration::from_millis(10 * (5 - index))).await;
            index
        }))
        .await;
        assert_eq!(outputs, vec![0, 1, 2, 3, 4]);
    }
}
