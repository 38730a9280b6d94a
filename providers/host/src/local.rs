use std::collections::BTreeMap;
use std::fs::TryLockError;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::{Host, HostError, Stream};

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
        tokio::fs::write(&temporary, contents)
            .await
            .map_err(|error| self.operation_error(&format!("write {temporary}"), error))?;
        tokio::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode))
            .await
            .map_err(|error| self.operation_error(&format!("chmod {temporary}"), error))?;
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

    async fn lock(&self, path: &str, details: &str) -> Result<(), HostError> {
        if let Some(parent) = std::path::Path::new(path).parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|error| {
                self.operation_error(&format!("create {}", parent.display()), error)
            })?;
        }
        if let Some(holder) = directory_lock_holder(path).await {
            return Err(HostError::Locked {
                path: path.to_string(),
                holder,
            });
        }
        let mut file = open_lock_file(path)
            .map_err(|error| self.operation_error(&format!("open lock {path}"), error))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(HostError::Locked {
                    path: path.to_string(),
                    holder: read_details(&mut file),
                })
            }
            Err(TryLockError::Error(error)) => {
                return Err(self.operation_error(&format!("lock {path}"), error))
            }
        }
        replace_contents(&mut file, details.as_bytes())
            .map_err(|error| self.operation_error(&format!("write {path}"), error))?;
        if let Ok(mut held) = self.held_locks.lock() {
            held.insert(path.to_string(), file);
        }
        Ok(())
    }

    async fn unlock(&self, path: &str) -> Result<(), HostError> {
        let mine = self
            .held_locks
            .lock()
            .ok()
            .and_then(|mut held| held.remove(path));
        if let Some(mut file) = mine {
            // Empty means free; closing the file releases the kernel lock.
            let _ = replace_contents(&mut file, b"");
            return Ok(());
        }
        // A lock directory left by an older stackctl: nothing but its existence holds it.
        if directory_lock_holder(path).await.is_some() {
            return tokio::fs::remove_dir_all(path)
                .await
                .map_err(|error| self.operation_error(&format!("remove lock {path}"), error));
        }
        let mut file = match open_lock_file(path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(self.operation_error(&format!("open lock {path}"), error)),
        };
        match file.try_lock() {
            Ok(()) => replace_contents(&mut file, b"")
                .map_err(|error| self.operation_error(&format!("clear lock {path}"), error)),
            // A live run holds it: clearing its lock would let a second writer in.
            Err(TryLockError::WouldBlock) => Err(HostError::Locked {
                path: path.to_string(),
                holder: read_details(&mut file),
            }),
            Err(TryLockError::Error(error)) => {
                Err(self.operation_error(&format!("lock {path}"), error))
            }
        }
    }
}

/// The holder named by a lock directory an older stackctl left at `path`, if there is one.
async fn directory_lock_holder(path: &str) -> Option<String> {
    let metadata = tokio::fs::metadata(path).await.ok()?;
    if !metadata.is_dir() {
        return None;
    }
    let holder = tokio::fs::read_to_string(format!("{path}/details"))
        .await
        .unwrap_or_else(|_| "an unknown holder (no details file)".to_string());
    Some(holder.trim().to_string())
}

fn open_lock_file(path: &str) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

fn read_details(file: &mut std::fs::File) -> String {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_string(&mut text);
    if text.trim().is_empty() {
        "an unknown holder (no details written yet)".to_string()
    } else {
        text.trim().to_string()
    }
}

fn replace_contents(file: &mut std::fs::File, contents: &[u8]) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(contents)
}
