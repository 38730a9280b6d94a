use std::collections::BTreeMap;
use std::fs::TryLockError;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::{Host, HostError, Stream, Unlocked};

/// This machine (`target = "local"`): demos and tests.
#[derive(Clone, Debug)]
pub struct LocalHost {
    docker_socket: String,
    /// The host locks this process holds: open files with a kernel lock (`flock`) on
    /// them, released by the kernel when the process ends however it ends.
    held_locks: Arc<Mutex<BTreeMap<String, std::fs::File>>>,
}

impl LocalHost {
    pub fn new() -> Self {
        LocalHost {
            docker_socket: std::env::var("STACKCTL_DOCKER_SOCKET")
                .unwrap_or_else(|_| "/var/run/docker.sock".to_string()),
            held_locks: Arc::default(),
        }
    }

    /// This machine, with the Docker daemon at `socket` (a second daemon, or a test's).
    pub fn with_docker_socket(socket: impl Into<String>) -> Self {
        LocalHost {
            docker_socket: socket.into(),
            held_locks: Arc::default(),
        }
    }

    fn operation_error(&self, operation: &str, cause: impl ToString) -> HostError {
        HostError::Operation {
            target: self.describe(),
            operation: operation.to_string(),
            cause: cause.to_string(),
        }
    }
}

impl Default for LocalHost {
    fn default() -> Self {
        LocalHost::new()
    }
}

#[async_trait]
impl Host for LocalHost {
    fn describe(&self) -> String {
        "local".to_string()
    }

    async fn docker_stream(&self) -> Result<Box<dyn Stream>, HostError> {
        let stream = tokio::net::UnixStream::connect(&self.docker_socket)
            .await
            .map_err(|error| HostError::Unreachable {
                target: format!("the Docker daemon at {}", self.docker_socket),
                cause: error.to_string(),
            })?;
        Ok(Box::new(stream))
    }

    async fn connect_tcp(&self, address: &str, port: u16) -> Result<Box<dyn Stream>, HostError> {
        let stream = tokio::net::TcpStream::connect((address, port))
            .await
            .map_err(|error| {
                self.operation_error(&format!("connect to {address}:{port}"), error)
            })?;
        stream.set_nodelay(true).ok();
        Ok(Box::new(stream))
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
        use std::os::unix::fs::PermissionsExt;
        let target = std::path::Path::new(path);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|error| {
                self.operation_error(&format!("create {}", parent.display()), error)
            })?;
        }
        tokio::fs::create_dir_all(temp_dir)
            .await
            .map_err(|error| self.operation_error(&format!("create {temp_dir}"), error))?;
        let file_name = target
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("file");
        let temporary = format!("{temp_dir}/.{file_name}.{}.tmp", std::process::id());
        // Created readable by its owner only (as the SSH host's `umask 077`): a key or a
        // file of secrets is never readable by others, not even while it is written.
        let write = async {
            use tokio::io::AsyncWriteExt;
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)
                .await?;
            file.write_all(contents).await?;
            file.flush().await
        };
        write
            .await
            .map_err(|error| self.operation_error(&format!("write {temporary}"), error))?;
        tokio::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode))
            .await
            .map_err(|error| self.operation_error(&format!("chmod {temporary}"), error))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&temporary, Some(uid), Some(gid)).map_err(|error| {
                self.operation_error(&format!("chown {uid}:{gid} {temporary}"), error)
            })?;
        }
        tokio::fs::rename(&temporary, path)
            .await
            .map_err(|error| self.operation_error(&format!("rename {temporary} to {path}"), error))
    }

    async fn read_files(&self, paths: &[String]) -> Result<Vec<Option<Vec<u8>>>, HostError> {
        let mut contents = Vec::with_capacity(paths.len());
        for path in paths {
            match tokio::fs::read(path).await {
                Ok(bytes) => contents.push(Some(bytes)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => contents.push(None),
                Err(error) => return Err(self.operation_error(&format!("read {path}"), error)),
            }
        }
        Ok(contents)
    }

    async fn remove_file(&self, path: &str) -> Result<(), HostError> {
        match tokio::fs::remove_file(path).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(self.operation_error(&format!("remove {path}"), error))
            }
            _ => Ok(()),
        }
    }

    async fn list_files(&self, directory: &str) -> Result<Vec<String>, HostError> {
        let failure = |error| self.operation_error(&format!("list {directory}"), error);
        let mut entries = match tokio::fs::read_dir(directory).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(failure(error)),
        };
        let mut names = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(failure)? {
            let kind = entry.file_type().await.map_err(failure)?;
            if !kind.is_dir() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    async fn lock(&self, path: &str, details: &str) -> Result<Option<String>, HostError> {
        if let Some(parent) = std::path::Path::new(path).parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|error| {
                self.operation_error(&format!("create {}", parent.display()), error)
            })?;
        }
        let holder_path = holder_path(path);
        let file = open_lock_file(path)
            .map_err(|error| self.operation_error(&format!("open lock {path}"), error))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(HostError::Locked {
                    path: path.to_string(),
                    holder: read_holder(&holder_path)
                        .unwrap_or_else(|| "an unknown holder (no details written yet)".into()),
                })
            }
            Err(TryLockError::Error(error)) => {
                return Err(self.operation_error(&format!("lock {path}"), error))
            }
        }
        // Details left behind mean their run ended without releasing: it is gone (the
        // kernel released its lock), and the caller warns that it took the lock over.
        let previous_holder = read_holder(&holder_path);
        write_atomically(&holder_path, details.as_bytes())
            .map_err(|error| self.operation_error(&format!("write {holder_path}"), error))?;
        if let Ok(mut held) = self.held_locks.lock() {
            held.insert(path.to_string(), file);
        }
        Ok(previous_holder)
    }

    async fn unlock(&self, path: &str) -> Result<Unlocked, HostError> {
        let holder_path = holder_path(path);
        let remove_details = || match std::fs::remove_file(&holder_path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(self.operation_error(&format!("remove {holder_path}"), error))
            }
            _ => Ok(()),
        };
        let mine = self
            .held_locks
            .lock()
            .ok()
            .and_then(|mut held| held.remove(path));
        if let Some(file) = mine {
            // The details go first, while the lock still keeps others out; closing the
            // file then releases the kernel lock.
            remove_details()?;
            drop(file);
            return Ok(Unlocked::Released);
        }
        let file = match open_existing_lock_file(path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Unlocked::NotHeld)
            }
            Err(error) => return Err(self.operation_error(&format!("open lock {path}"), error)),
        };
        match file.try_lock() {
            Ok(()) => match read_holder(&holder_path) {
                Some(holder) => {
                    remove_details()?;
                    Ok(Unlocked::ClearedStaleDetails { holder })
                }
                None => Ok(Unlocked::NotHeld),
            },
            // A live run holds it: clearing its details would hide who it is.
            Err(TryLockError::WouldBlock) => Err(HostError::Locked {
                path: path.to_string(),
                holder: read_holder(&holder_path)
                    .unwrap_or_else(|| "an unknown holder (no details written yet)".into()),
            }),
            Err(TryLockError::Error(error)) => {
                Err(self.operation_error(&format!("lock {path}"), error))
            }
        }
    }
}

fn holder_path(path: &str) -> String {
    format!("{path}.holder")
}

/// The details in the holder file, if it exists and says something.
fn read_holder(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// Writes `path` through a temporary file renamed over it: a reader sees the old
/// details or the new, never half of them.
fn write_atomically(path: &str, contents: &[u8]) -> std::io::Result<()> {
    let temporary = format!("{path}.{}", std::process::id());
    std::fs::write(&temporary, contents)?;
    std::fs::rename(&temporary, path)
}

fn open_existing_lock_file(path: &str) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
}

fn open_lock_file(path: &str) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}
