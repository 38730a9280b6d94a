//! `stackctl logs` and `stackctl exec`: a service's live containers, reached through the
//! run's connection to the target host.
//!
//! A service name is checked against stack.toml, then resolved to the containers that
//! carry its labels on the host — never to a container name guessed from the stack's
//! naming scheme, which a hand-made container could have taken. The engine does not
//! know Docker: the front end's [`TargetHost`](super::TargetHost) hands it a
//! [`ContainerConsole`] for the host.

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::Session;

/// Which of a process's streams some output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleStream {
    Stdout,
    Stderr,
}

/// Output of a service's container, as it arrived (any size, not cut at line ends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleOutput {
    pub service: String,
    pub stream: ConsoleStream,
    pub bytes: Vec<u8>,
}

/// A running container of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningContainer {
    pub id: String,
    pub name: String,
}

/// What part of the logs to show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogSelection {
    pub follow: bool,
    /// Unix seconds.
    pub since: Option<i64>,
    pub tail: Option<u64>,
}

/// A command to run in a service's container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecCommand {
    pub command: Vec<String>,
    /// Give it a terminal (stdin is one here).
    pub tty: bool,
    /// The terminal's rows and columns.
    pub size: Option<(u16, u16)>,
}

/// What flows into an exec while it runs: stdin (its end closes the process's stdin) and
/// new terminal sizes.
pub struct ExecInput {
    pub stdin: mpsc::Receiver<Vec<u8>>,
    pub resizes: mpsc::Receiver<(u16, u16)>,
}

/// Receives output pieces as they arrive.
pub type OutputSink<'a> = &'a mut (dyn FnMut(ConsoleStream, &[u8]) + Send);

/// The containers on the target host, as logs and exec need them.
#[async_trait]
pub trait ContainerConsole: Send + Sync {
    /// The host, for messages (`local`, `root@203.0.113.7:22`).
    async fn describe(&self) -> Result<String, String>;

    /// The running containers labelled as `service` of `stack`, newest first.
    async fn running_containers(
        &self,
        stack: &str,
        service: &str,
    ) -> Result<Vec<RunningContainer>, String>;

    /// Streams a container's log to `sink` until it ends.
    async fn logs(
        &self,
        container: &str,
        selection: &LogSelection,
        sink: OutputSink<'_>,
    ) -> Result<(), String>;

    /// Runs a command in a container; returns its exit code.
    async fn exec(
        &self,
        container: &str,
        command: &ExecCommand,
        input: ExecInput,
        sink: OutputSink<'_>,
    ) -> Result<i64, String>;
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("there is no service `{service}` in stack.toml")]
    UnknownService {
        service: String,
        nearest: Option<String>,
        known: Vec<String>,
    },
    #[error("service `{service}` has no running container on {host}")]
    NoRunningContainer { service: String, host: String },
    #[error("this stack has no target host to read containers from")]
    NoHost,
    #[error("{0}")]
    Host(String),
}

impl Session {
    /// Streams the logs of `services` into `output` until every log ended (at once
    /// without `follow`). Every name is checked and resolved before any log is read.
    pub async fn logs(
        &self,
        services: &[String],
        selection: &LogSelection,
        output: mpsc::UnboundedSender<ConsoleOutput>,
    ) -> Result<(), ConsoleError> {
        let console = self.console()?;
        let mut resolved = Vec::new();
        for service in services {
            resolved.push((
                service.clone(),
                self.newest_container(console.as_ref(), service).await?,
            ));
        }
        let streams = resolved.into_iter().map(|(service, container)| {
            let console = console.as_ref();
            let output = output.clone();
            async move {
                let mut sink = |stream: ConsoleStream, bytes: &[u8]| {
                    let _ = output.send(ConsoleOutput {
                        service: service.clone(),
                        stream,
                        bytes: bytes.to_vec(),
                    });
                };
                console
                    .logs(&container.id, selection, &mut sink)
                    .await
                    .map_err(|cause| {
                        ConsoleError::Host(format!(
                            "cannot read the logs of `{service}` (container {}): {cause}",
                            container.name
                        ))
                    })
            }
        });
        for result in futures::future::join_all(streams).await {
            result?;
        }
        Ok(())
    }

    /// Runs `command` in the newest running container of `service`, its output into
    /// `output`; returns the command's exit code.
    pub async fn exec(
        &self,
        service: &str,
        command: &ExecCommand,
        input: ExecInput,
        output: mpsc::UnboundedSender<ConsoleOutput>,
    ) -> Result<i64, ConsoleError> {
        let console = self.console()?;
        let container = self.newest_container(console.as_ref(), service).await?;
        let mut sink = |stream: ConsoleStream, bytes: &[u8]| {
            let _ = output.send(ConsoleOutput {
                service: service.to_string(),
                stream,
                bytes: bytes.to_vec(),
            });
        };
        console
            .exec(&container.id, command, input, &mut sink)
            .await
            .map_err(|cause| {
                ConsoleError::Host(format!(
                    "cannot run the command in `{service}` (container {}): {cause}",
                    container.name
                ))
            })
    }

    fn console(&self) -> Result<Box<dyn ContainerConsole>, ConsoleError> {
        self.backends
            .host
            .as_ref()
            .and_then(|host| host.console(self.droplet_address()))
            .ok_or(ConsoleError::NoHost)
    }

    /// The newest running container of a service that stack.toml declares.
    async fn newest_container(
        &self,
        console: &dyn ContainerConsole,
        service: &str,
    ) -> Result<RunningContainer, ConsoleError> {
        let services = &self.loaded.config.services;
        if !services.contains_key(service) {
            return Err(ConsoleError::UnknownService {
                service: service.to_string(),
                nearest: crate::config::diagnostic::did_you_mean(
                    service,
                    services.keys().map(String::as_str),
                ),
                known: services.keys().cloned().collect(),
            });
        }
        let containers = console
            .running_containers(self.stack(), service)
            .await
            .map_err(ConsoleError::Host)?;
        match containers.into_iter().next() {
            Some(container) => Ok(container),
            None => Err(ConsoleError::NoRunningContainer {
                service: service.to_string(),
                host: console.describe().await.map_err(ConsoleError::Host)?,
            }),
        }
    }
}
