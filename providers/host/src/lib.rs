//! How stackctl reaches the machine that runs the stack.
//!
//! A [`Host`] gives byte streams to the Docker Engine API and to TCP ports on the host,
//! and a few file and lock operations. Two transports implement it: SSH (one connection
//! per run, many channels; see the `ssh` module's notes on [`SshHost`]) and this machine
//! (`target = "local"`).
//!
//! The CLI turns `[target]` into a [`Target`] and hands a [`HostConnector`] to the
//! providers, which connect lazily and share one connection:
//!
//! ```no_run
//! # async fn example() -> Result<(), stackctl_host::HostError> {
//! use stackctl_host::{HostConnector, HostKeyTrust, SshOptions, Target};
//!
//! let options = SshOptions {
//!     pinned_fingerprint: None, // or Some("SHA256:…") from state
//!     accept_new_host_key: false, // true only when the user passed the accept flag
//!     ..SshOptions::new("203.0.113.7", 22, "root")
//! };
//! let connector = HostConnector::new(Target::Ssh(options));
//! let host = connector.connect(None).await?;
//! if let Some(key) = connector.host_key() {
//!     if key.trust == HostKeyTrust::NewlyAccepted {
//!         // pin key.fingerprint in state
//!     }
//! }
//! # drop(host); Ok(()) }
//! ```
//!
//! With the `testing` feature, `testing::TestSshd` starts a throw-away OpenSSH
//! server on loopback for tests of any crate.

mod connector;
pub mod known_hosts;
mod local;
pub mod quote;
mod remote_script;
mod ssh;
pub mod ssh_config;
#[cfg(feature = "testing")]
pub mod testing;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

pub use connector::{read_deployed_lineage, HostConnector, SshOptions, Target};
pub use local::LocalHost;
pub use ssh::SshHost;

/// A bidirectional byte stream (a unix socket, a TCP socket, an SSH channel).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The host could not be reached at all (refused, timed out, no route).
    #[error("cannot reach {target}: {cause}")]
    Unreachable { target: String, cause: String },
    /// The host was reached but refused us (host key, authentication).
    #[error("{message}")]
    Refused {
        message: String,
        hint: Option<String>,
    },
    #[error("{operation} failed on {target}: {cause}")]
    Operation {
        target: String,
        operation: String,
        cause: String,
    },
    /// The lock is held by a live run; `holder` is its details file's content.
    #[error("the host lock `{path}` is held by {holder}")]
    Locked { path: String, holder: String },
    /// The stack on the host was deployed by a state of another lineage than this run's
    /// (a copy of state that went its own way, another team's state): applying would
    /// fight over the same containers.
    #[error("stack `{stack}` on {host} was deployed by the state of lineage {recorded}; this run's state has lineage {ours}")]
    ForeignLineage {
        stack: String,
        host: String,
        recorded: String,
        ours: String,
    },
}

/// What to do about [`HostError::ForeignLineage`], for the providers' messages.
pub const FOREIGN_LINEAGE_HINT: &str = "use the state that deployed the stack; to take the stack over from a lost state instead, start from an empty state (a fresh `--state-dir`): it adopts what runs and becomes the owner";

/// What to do about [`HostError::Locked`], for the providers' messages.
pub const LOCKED_HINT: &str = "wait for it to finish; a run that was killed or lost its connection releases the lock by itself";

/// Why the host lock was refused, worded for the user: the providers' error when an
/// apply cannot begin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockRefusal {
    pub message: String,
    pub detail: Option<String>,
    pub hint: &'static str,
}

impl HostError {
    /// The refusal to tell the user when this error kept the host lock from being taken
    /// (another run holds it, or another state owns the stack); `None` for other errors.
    pub fn lock_refusal(&self) -> Option<LockRefusal> {
        match self {
            HostError::Locked { path, holder } => Some(LockRefusal {
                message: format!("another apply holds the host lock `{path}`"),
                detail: Some(holder.clone()),
                hint: LOCKED_HINT,
            }),
            HostError::ForeignLineage { .. } => Some(LockRefusal {
                message: self.to_string(),
                detail: None,
                hint: FOREIGN_LINEAGE_HINT,
            }),
            _ => None,
        }
    }
}

#[async_trait]
pub trait Host: Send + Sync {
    /// A short human name for messages: `local`, `root@203.0.113.7:22`.
    fn describe(&self) -> String;

    /// Opens a stream to the Docker Engine API (`/var/run/docker.sock` on the host).
    async fn docker_stream(&self) -> Result<Box<dyn Stream>, HostError>;

    /// Opens a TCP stream to `address:port` as seen from the host.
    async fn connect_tcp(&self, address: &str, port: u16) -> Result<Box<dyn Stream>, HostError>;

    /// Writes a file atomically: to a temporary path in `temp_dir` (outside any watched
    /// directory), then renamed over `path`; parent directories are created.
    async fn write_file(
        &self,
        path: &str,
        contents: &[u8],
        mode: u32,
        temp_dir: &str,
    ) -> Result<(), HostError>;

    /// [`Host::write_file`], the file owned by `owner` (numeric uid, gid) from the
    /// moment it appears: a key a container reads as its own non-root user.
    async fn write_file_owned(
        &self,
        path: &str,
        contents: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
        temp_dir: &str,
    ) -> Result<(), HostError>;

    /// Reads many files in one round trip; `None` for a file that does not exist.
    async fn read_files(&self, paths: &[String]) -> Result<Vec<Option<Vec<u8>>>, HostError>;

    /// [`Host::read_files`] of `paths` and [`Host::list_files`] of each of `directories`,
    /// in one round trip where the transport allows (one command over SSH).
    async fn read_and_list(
        &self,
        paths: &[String],
        directories: &[String],
    ) -> Result<(Vec<Option<Vec<u8>>>, Vec<Vec<String>>), HostError> {
        let contents = self.read_files(paths).await?;
        let mut listings = Vec::with_capacity(directories.len());
        for directory in directories {
            listings.push(self.list_files(directory).await?);
        }
        Ok((contents, listings))
    }

    /// Removes a file; a missing file is not an error.
    async fn remove_file(&self, path: &str) -> Result<(), HostError>;

    /// The names of the files directly in `directory` (regular files and symbolic links,
    /// not subdirectories), sorted; empty when the directory does not exist. Used to find
    /// files that stackctl did not write in a directory Traefik watches.
    async fn list_files(&self, directory: &str) -> Result<Vec<String>, HostError>;

    /// Takes the kernel lock (`flock`) on the file `path` and writes `details` (who,
    /// when, command, lineage) to the holder file beside it. Fails with
    /// [`HostError::Locked`], naming the holder, if a live run holds it. The lock lives
    /// exactly as long as this run: on this machine it is held by this process, over SSH
    /// by a process on the host that lives as long as the SSH channel, so kill -9 of
    /// stackctl or a cut connection releases it with no manual step.
    ///
    /// Returns the details a holder that is gone left behind when it took the lock over
    /// (for a warning), `None` when the last holder released it cleanly.
    async fn lock(&self, path: &str, details: &str) -> Result<Option<String>, HostError>;

    /// [`Host::lock`], then the file `record` read under the lock (`None` when it does not
    /// exist), in one round trip where the transport allows (one command over SSH). When
    /// the read fails, the lock is released again.
    async fn lock_reading(
        &self,
        path: &str,
        details: &str,
        record: &str,
    ) -> Result<(Option<String>, Option<Vec<u8>>), HostError> {
        let previous = self.lock(path, details).await?;
        match self.read_files(&[record.to_string()]).await {
            Ok(mut contents) => Ok((previous, contents.pop().flatten())),
            Err(error) => {
                let _ = self.unlock(path).await;
                Err(error)
            }
        }
    }

    /// [`Host::lock_reading`], and in the same round trip, under the lock,
    /// [`Host::read_and_list`] of `paths` and `directories`: a refresh's reads and the host
    /// lock of the apply that follows it in one command over SSH. The reads are `None`
    /// when they were not made that way (here by default; over SSH, when one failed): the
    /// caller then makes them apart.
    async fn lock_reading_and_list(
        &self,
        path: &str,
        details: &str,
        record: &str,
        paths: &[String],
        directories: &[String],
    ) -> Result<LockedWithReads, HostError> {
        let _ = (paths, directories);
        let (previous, record) = self.lock_reading(path, details, record).await?;
        Ok((previous, record, None))
    }

    /// Releases the lock this run took with [`Host::lock`]; otherwise, if no live run
    /// holds it, removes the details a holder that is gone left behind
    /// (`stackctl state unlock --host`). Never breaks the lock of a live run.
    async fn unlock(&self, path: &str) -> Result<Unlocked, HostError>;

    /// Whether the connection to the host is gone (a cut network, a server that died):
    /// asked after an operation failed, so that the failure is reported as "outcome
    /// unknown" rather than as the host's answer. Never for this machine.
    async fn connection_lost(&self) -> bool {
        false
    }

    /// The host key this connection trusted, for transports that have one (SSH).
    fn host_key(&self) -> Option<HostKey> {
        None
    }
}

/// What [`Host::read_and_list`] answers: each file's contents (`None` when missing), then
/// each directory's names.
pub type FilesAndListings = (Vec<Option<Vec<u8>>>, Vec<Vec<String>>);

/// What [`Host::lock_reading_and_list`] answers: the details a gone holder left, the
/// record read under the lock, and the reads when they were made in the same command.
pub type LockedWithReads = (Option<String>, Option<Vec<u8>>, Option<FilesAndListings>);

/// What [`Host::unlock`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unlocked {
    /// This run held the lock and released it.
    Released,
    /// No live run held it; the details its last holder (gone) left were removed.
    ClearedStaleDetails { holder: String },
    /// No live run held it and no details were left: nothing to do.
    NotHeld,
}

/// The directory on a host where stackctl keeps, per stack, the host lock
/// (`<stack>.lock`, with `<stack>.lock.holder` beside it) and the lineage of the state
/// that deploys the stack there (`<stack>.lineage`).
///
/// Keyed on the stack's name, not on `[target].root`: containers, networks and volumes
/// are named after the stack, so two state directories with different roots that
/// deploy one stack change the same objects and must exclude each other. Stack names
/// start with a letter or digit, so no stack's default root (`/var/lib/stackctl/<stack>`)
/// can be this directory.
pub const HOST_RECORDS_DIRECTORY: &str = "/var/lib/stackctl/.locks";

/// The host lock of `stack`: see [`HOST_RECORDS_DIRECTORY`].
pub fn host_lock_path(stack: &str) -> String {
    format!("{HOST_RECORDS_DIRECTORY}/{stack}.lock")
}

/// The file naming the state lineage that deploys `stack` on the host: see
/// [`HOST_RECORDS_DIRECTORY`].
pub fn host_lineage_path(stack: &str) -> String {
    format!("{HOST_RECORDS_DIRECTORY}/{stack}.lineage")
}

/// The SSH host key a connection was made with, and why it was trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostKey {
    /// `SHA256:…`, exactly as `ssh-keygen -lf` prints it: the value to pin in state.
    pub fingerprint: String,
    /// `ED25519`, `ECDSA`…, as `ssh-keygen -lf` shows it.
    pub key_type: String,
    pub trust: HostKeyTrust,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKeyTrust {
    /// It matched the fingerprint pinned in state.
    Pinned,
    /// It is recorded in a known_hosts file.
    KnownHosts {
        path: std::path::PathBuf,
        line: usize,
    },
    /// It was seen for the first time and accepted because the user asked to: the
    /// caller should pin [`HostKey::fingerprint`] now.
    NewlyAccepted,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_lock_names_its_holder_and_what_to_do_and_other_errors_are_no_refusal() {
        let held = HostError::Locked {
            path: "/srv/stackctl/.lock".into(),
            holder: "alice@laptop, apply since 12:00".into(),
        };
        assert_eq!(
            held.lock_refusal(),
            Some(LockRefusal {
                message: "another apply holds the host lock `/srv/stackctl/.lock`".into(),
                detail: Some("alice@laptop, apply since 12:00".into()),
                hint: LOCKED_HINT,
            })
        );
        let foreign = HostError::ForeignLineage {
            stack: "shop".into(),
            host: "root@203.0.113.7:22".into(),
            recorded: "aaaa".into(),
            ours: "bbbb".into(),
        };
        let refusal = foreign
            .lock_refusal()
            .expect("a foreign lineage refuses the lock");
        assert_eq!(refusal.message, foreign.to_string());
        assert_eq!(refusal.hint, FOREIGN_LINEAGE_HINT);
        let unreachable = HostError::Unreachable {
            target: "root@203.0.113.7:22".into(),
            cause: "connection refused".into(),
        };
        assert_eq!(unreachable.lock_refusal(), None);
    }
}
