//! The engine's [`ContainerConsole`] on the Docker Engine API of the target host, over
//! the run's one connection (the unix socket here, an SSH channel to it there).

use std::sync::Arc;

use async_trait::async_trait;
use stackctl_docker::console::{self, ExecRequest, LogOptions};
use stackctl_docker::log_frames::{OutputChunk, OutputStream};
use stackctl_docker::DockerClient;
use stackctl_host::HostConnector;

use crate::session::{
    ConsoleStream, ContainerConsole, ExecCommand, ExecInput, LogSelection, OutputSink,
    RunningContainer,
};

pub struct DockerConsole {
    connector: Arc<HostConnector>,
    droplet_address: Option<String>,
    client: tokio::sync::OnceCell<DockerClient>,
}

impl DockerConsole {
    pub fn new(connector: Arc<HostConnector>, droplet_address: Option<String>) -> Self {
        DockerConsole {
            connector,
            droplet_address,
            client: tokio::sync::OnceCell::new(),
        }
    }

    async fn client(&self) -> Result<&DockerClient, String> {
        self.client
            .get_or_try_init(|| async {
                let host = self
                    .connector
                    .connect(self.droplet_address.as_deref())
                    .await
                    .map_err(|error| error.to_string())?;
                Ok(DockerClient::new(host))
            })
            .await
    }
}

fn forward(sink: OutputSink<'_>) -> impl FnMut(OutputChunk) + Send + '_ {
    move |chunk: OutputChunk| {
        let stream = match chunk.stream {
            OutputStream::Stdout => ConsoleStream::Stdout,
            OutputStream::Stderr => ConsoleStream::Stderr,
        };
        sink(stream, &chunk.bytes)
    }
}

#[async_trait]
impl ContainerConsole for DockerConsole {
    async fn describe(&self) -> Result<String, String> {
        Ok(self.client().await?.host().describe())
    }

    async fn running_containers(
        &self,
        stack: &str,
        service: &str,
    ) -> Result<Vec<RunningContainer>, String> {
        let client = self.client().await?;
        let containers = console::running_containers(client, stack, service)
            .await
            .map_err(|error| error.to_string())?;
        Ok(containers
            .into_iter()
            .map(|container| RunningContainer {
                id: container.id,
                name: container.name,
            })
            .collect())
    }

    async fn logs(
        &self,
        container: &str,
        selection: &LogSelection,
        sink: OutputSink<'_>,
    ) -> Result<(), String> {
        let client = self.client().await?;
        let options = LogOptions {
            follow: selection.follow,
            since: selection.since,
            tail: selection.tail,
        };
        console::stream_logs(client, container, &options, &mut forward(sink))
            .await
            .map_err(|error| error.to_string())
    }

    async fn exec(
        &self,
        container: &str,
        command: &ExecCommand,
        input: ExecInput,
        sink: OutputSink<'_>,
    ) -> Result<i64, String> {
        let client = self.client().await?;
        let request = ExecRequest {
            command: command.command.clone(),
            tty: command.tty,
            size: command.size,
        };
        console::run_exec(
            client,
            container,
            &request,
            input.stdin,
            input.resizes,
            &mut forward(sink),
        )
        .await
        .map_err(|error| error.to_string())
    }
}
