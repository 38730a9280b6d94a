use async_trait::async_trait;

use crate::{Host, HostError, Stream};

/// This machine (`target = "local"`): demos and tests.
#[derive(Clone, Debug)]
pub struct LocalHost {
    docker_socket: String,
}

impl LocalHost {
    pub fn new() -> Self {
        LocalHost {
            docker_socket: std::env::var("STACKCTL_DOCKER_SOCKET")
                .unwrap_or_else(|_| "/var/run/docker.sock".to_string()),
        }
    }

    /// This machine, with the Docker daemon at `socket` (a second daemon, or a test's).
    pub fn with_docker_socket(socket: impl Into<String>) -> Self {
        LocalHost {
            docker_socket: socket.into(),
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
        match tokio::fs::create_dir(path).await {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = tokio::fs::read_to_string(format!("{path}/details"))
                    .await
                    .unwrap_or_else(|_| "an unknown holder (no details file)".to_string());
                return Err(HostError::Locked {
                    path: path.to_string(),
                    holder: holder.trim().to_string(),
                });
            }
            Err(error) => return Err(self.operation_error(&format!("create lock {path}"), error)),
        }
        tokio::fs::write(format!("{path}/details"), details)
            .await
            .map_err(|error| self.operation_error(&format!("write {path}/details"), error))
    }

    async fn unlock(&self, path: &str) -> Result<(), HostError> {
        match tokio::fs::remove_dir_all(path).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(self.operation_error(&format!("remove lock {path}"), error))
            }
            _ => Ok(()),
        }
    }
}
