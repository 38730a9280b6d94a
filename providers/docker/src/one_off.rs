//! One-off containers beside a service (backups and restores) and the host files they
//! leave: [`HostTasks`] for the docker provider.
//!
//! The container is made from what the service's container runs right now — its image,
//! its environment (secrets included, read from the container, never from the engine)
//! and its first network — so `pg_dump` finds the database under the service's name with
//! the service's password. It carries the stack's labels (a crash leaves nothing
//! `destroy` cannot find), never restarts, and is removed once it has exited or timed
//! out.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{json, Value as Json};
use stackctl_provider::{
    Address, EnvFrom, HostTasks, MountSource, OneOffResult, OneOffTask, ProviderError, Stopped,
    StoppedContainer,
};

use crate::api::{self, DockerClient, Labels};
use crate::http::demultiplex_logs;
use crate::provider::DockerProvider;
use crate::provider_error::{failed, from_client, from_host};

/// What a one-off container borrows from the service's container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Borrowed {
    pub(crate) image: String,
    pub(crate) env: Vec<String>,
    pub(crate) network: Option<String>,
}

impl Borrowed {
    /// From `GET /containers/{id}/json`.
    pub(crate) fn from_inspect(container: &Json) -> Borrowed {
        Borrowed {
            image: container["Image"].as_str().unwrap_or_default().to_string(),
            env: container["Config"]["Env"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .filter_map(|entry| entry.as_str().map(str::to_string))
                .collect(),
            network: container["NetworkSettings"]["Networks"]
                .as_object()
                .and_then(|networks| networks.keys().next().cloned()),
        }
    }
}

/// The body of `POST /containers/create` for `task` beside a container that lends
/// `borrowed`. Pure, so the container's shape is tested without a daemon.
pub(crate) fn one_off_body(
    task: &OneOffTask,
    borrowed: &Borrowed,
    stack: &str,
    labels: &Labels,
) -> Result<Json, String> {
    let (program, arguments) = task
        .argv
        .split_first()
        .ok_or_else(|| "the one-off task has an empty command".to_string())?;
    let mut env: BTreeMap<String, String> = borrowed
        .env
        .iter()
        .filter_map(|entry| entry.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    let service_env = env.clone();
    for (key, source) in &task.env {
        let value = match source {
            EnvFrom::Text(text) => Some(text.clone()),
            EnvFrom::ServiceVariable { names, default } => names
                .iter()
                .find_map(|name| service_env.get(name).cloned())
                .or_else(|| default.clone()),
        };
        match value {
            Some(value) => env.insert(key.clone(), value),
            None => env.remove(key),
        };
    }
    let mut binds = Vec::new();
    let mut mounts = Vec::new();
    for mount in &task.mounts {
        match &mount.source {
            // A bind in `Binds` form: Docker creates a missing host directory.
            MountSource::HostDirectory(directory) => binds.push(format!(
                "{directory}:{}:{}",
                mount.target,
                if mount.read_only { "ro" } else { "rw" }
            )),
            MountSource::Volume(volume) => mounts.push(json!({
                "Type": "volume",
                "Source": format!("{stack}_{volume}"),
                "Target": mount.target,
                "ReadOnly": mount.read_only,
            })),
        }
    }
    let mut body = json!({
        "Image": borrowed.image,
        "Entrypoint": [program],
        "Cmd": arguments,
        "Env": env.iter().map(|(key, value)| format!("{key}={value}")).collect::<Vec<_>>(),
        "Labels": labels.to_json(),
        "HostConfig": {
            "RestartPolicy": { "Name": "no" },
            "Binds": binds,
            "Mounts": mounts,
        },
    });
    if let Some(user) = &task.user {
        body["User"] = json!(user);
    }
    if let Some(network) = &borrowed.network {
        body["HostConfig"]["NetworkMode"] = json!(network);
    }
    Ok(body)
}

impl DockerProvider {
    async fn connected(&self) -> Result<DockerClient, ProviderError> {
        // `connect` made the client; this returns it.
        self.client(None).await
    }

    /// The ids of the service's running containers. Stopped ones (an older container kept
    /// by a swap, say) are neither borrowed from nor stopped and started by a restore.
    async fn running_containers(
        &self,
        client: &DockerClient,
        service: &Address,
    ) -> Result<Vec<String>, ProviderError> {
        let list = client
            .send_json(api::list_containers(
                &self.stack,
                Some(&service.to_string()),
            ))
            .await
            .map_err(from_client)?;
        Ok(running_ids(&list))
    }

    /// The service's running container, inspected.
    async fn inspect_service(
        &self,
        client: &DockerClient,
        service: &Address,
    ) -> Result<Json, ProviderError> {
        let Some(id) = self
            .running_containers(client, service)
            .await?
            .into_iter()
            .next()
        else {
            return Err(ProviderError::Failed {
                message: format!("`{service}` has no running container on the host"),
                detail: None,
                hint: Some(format!(
                    "the one-off container borrows image, environment and network from `{service}`'s running container: start it (`stackctl apply`) and try again"
                )),
            });
        };
        client
            .send_json(api::inspect_container(&id))
            .await
            .map_err(from_client)
    }
}

/// The exit code from `POST /containers/{id}/wait`, `None` when it ran out of time (it
/// is then stopped and reported as a timeout), or the transport's error when the
/// connection failed: a dropped connection is not a timeout.
fn wait_outcome(
    waited: Result<Json, api::ClientError>,
    name: &str,
) -> Result<Option<i64>, ProviderError> {
    match waited {
        Ok(answer) => Ok(answer["StatusCode"].as_i64()),
        Err(api::ClientError::Timeout(_)) => Ok(None),
        // It may still be running: a leftover is removed by the next run.
        Err(error) => Err(ProviderError::Failed {
            message: format!("lost the connection to the host while `{name}` ran: {error}"),
            detail: None,
            hint: Some(format!(
                "it may still be running on the host (`docker ps --filter name={name}`); run the command again once the host is reachable"
            )),
        }),
    }
}

/// The ids of the running containers in a `GET /containers/json?all=1` answer.
fn running_ids(list: &Json) -> Vec<String> {
    list.as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter(|container| container["State"].as_str() == Some("running"))
        .filter_map(|container| container["Id"].as_str().map(str::to_string))
        .collect()
}

#[async_trait]
impl HostTasks for DockerProvider {
    async fn connect(&self, droplet_address: Option<&str>) -> Result<(), ProviderError> {
        self.client(droplet_address.map(str::to_string))
            .await
            .map(drop)
    }

    async fn run_one_off(&self, task: &OneOffTask) -> Result<OneOffResult, ProviderError> {
        let client = self.connected().await?;
        let name = format!(
            "{}-{}",
            self.stack,
            task.label.to_string().replace('.', "-")
        );
        // A container left by an interrupted run goes first; only this stack's.
        for leftover in self.service_containers(&client, &task.label).await? {
            let _ = client.send_raw(api::remove_container(&leftover.id)).await;
        }
        let inspected = match &task.beside_container {
            Some(id) => client
                .send_json(api::inspect_container(id))
                .await
                .map_err(from_client)?,
            None => self.inspect_service(&client, &task.beside).await?,
        };
        let borrowed = Borrowed::from_inspect(&inspected);
        let labels = self.labels(&task.label, "one-off");
        let body = one_off_body(task, &borrowed, &self.stack, &labels)
            .map_err(|message| failed(format!("`{}`: {message}", task.label), None))?;
        let response = client
            .send_raw(api::create_container(&name, body))
            .await
            .map_err(from_client)?;
        if !response.is_success() {
            return Err(failed(
                format!(
                    "cannot create the one-off container `{name}`: {}",
                    response.error_message()
                ),
                None,
            ));
        }
        let id = response
            .json()
            .ok()
            .and_then(|json| json["Id"].as_str().map(str::to_string))
            .ok_or_else(|| failed("Docker did not return the new container's id", None))?;
        if let Err(error) = client.send(api::start_container(&id)).await {
            let _ = client.send_raw(api::remove_container(&id)).await;
            return Err(failed(format!("cannot start `{name}`: {error}"), None));
        }
        let waited = client
            .with_timeout(task.timeout)
            .send_json(api::wait_container(&id))
            .await;
        let exit_code = wait_outcome(waited, &name)?;
        let log = match client.send(api::all_container_logs(&id)).await {
            Ok(response) => demultiplex_logs(&response.body),
            Err(error) => format!("(the log could not be read: {error})\n"),
        };
        let _ = client.send_raw(api::remove_container(&id)).await;
        Ok(OneOffResult { exit_code, log })
    }

    async fn stop_services(&self, services: &[Address]) -> Stopped {
        let mut stopped = Stopped::default();
        let client = match self.connected().await {
            Ok(client) => client,
            Err(error) => {
                stopped.error = Some(error);
                return stopped;
            }
        };
        for service in services {
            let ids = match self.running_containers(&client, service).await {
                Ok(ids) => ids,
                Err(error) => {
                    stopped.error = Some(error);
                    return stopped;
                }
            };
            for id in ids {
                let stopping = client
                    .send(api::stop_container_in_its_grace_period(&id))
                    .await;
                // A stop that failed may still have stopped it: start it again too.
                stopped.containers.push(StoppedContainer {
                    service: service.clone(),
                    id,
                });
                if let Err(error) = stopping {
                    stopped.error = Some(from_client(error));
                    return stopped;
                }
            }
        }
        stopped
    }

    async fn start_containers(&self, containers: &[StoppedContainer]) -> Result<(), ProviderError> {
        let client = self.connected().await?;
        let mut failures = Vec::new();
        for container in containers {
            if let Err(error) = client.send(api::start_container(&container.id)).await {
                failures.push(format!("`{}`: {error}", container.service));
            }
        }
        match failures.is_empty() {
            true => Ok(()),
            false => Err(failed(
                format!("cannot start again {}", failures.join("; ")),
                None,
            )),
        }
    }

    async fn write_file(&self, path: &str, contents: &[u8]) -> Result<(), ProviderError> {
        let client = self.connected().await?;
        // The temporary file sits beside the dump: a rename across file systems fails.
        let directory = path
            .rsplit_once('/')
            .map_or(".", |(directory, _)| directory);
        client
            .host()
            .write_file(path, contents, 0o600, directory)
            .await
            .map_err(from_host)
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, ProviderError> {
        let client = self.connected().await?;
        let mut contents = client
            .host()
            .read_files(&[path.to_string()])
            .await
            .map_err(from_host)?;
        Ok(contents.pop().flatten())
    }

    async fn list_files(&self, directory: &str) -> Result<Vec<String>, ProviderError> {
        let client = self.connected().await?;
        client.host().list_files(directory).await.map_err(from_host)
    }

    async fn remove_file(&self, path: &str) -> Result<(), ProviderError> {
        let client = self.connected().await?;
        client.host().remove_file(path).await.map_err(from_host)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use stackctl_provider::OneOffMount;

    use super::*;

    fn task() -> OneOffTask {
        OneOffTask {
            label: Address::new("backup", "db"),
            beside: Address::new("service", "postgres"),
            beside_container: None,
            argv: vec!["pg_dump".into(), "--file=/backup/db.dump".into()],
            env: vec![
                ("PGHOST".into(), EnvFrom::Text("postgres".into())),
                (
                    "PGPASSWORD".into(),
                    EnvFrom::ServiceVariable {
                        names: vec!["POSTGRES_PASSWORD".into()],
                        default: None,
                    },
                ),
                (
                    "PGDATABASE".into(),
                    EnvFrom::ServiceVariable {
                        names: vec!["POSTGRES_DB".into(), "POSTGRES_USER".into()],
                        default: Some("postgres".into()),
                    },
                ),
            ],
            user: Some("0".into()),
            mounts: vec![
                OneOffMount {
                    source: MountSource::HostDirectory("/srv/shop/backups/db".into()),
                    target: "/backup".into(),
                    read_only: false,
                },
                OneOffMount {
                    source: MountSource::Volume("pgdata".into()),
                    target: "/volume".into(),
                    read_only: true,
                },
            ],
            timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_container_borrows_the_services_image_env_and_network() {
        let borrowed = Borrowed {
            image: "sha256:abc".into(),
            env: vec!["POSTGRES_USER=app".into(), "POSTGRES_PASSWORD=p=w".into()],
            network: Some("shop_backend".into()),
        };
        let labels = Labels {
            stack: "shop".into(),
            resource: "backup.db".into(),
            hash: "one-off".into(),
        };
        let body = one_off_body(&task(), &borrowed, "shop", &labels).unwrap();
        assert_eq!(body["Image"], "sha256:abc");
        assert_eq!(body["Entrypoint"], json!(["pg_dump"]));
        assert_eq!(body["Cmd"], json!(["--file=/backup/db.dump"]));
        assert_eq!(
            body["Env"],
            json!([
                "PGDATABASE=app",
                "PGHOST=postgres",
                "PGPASSWORD=p=w",
                "POSTGRES_PASSWORD=p=w",
                "POSTGRES_USER=app"
            ])
        );
        assert_eq!(body["User"], "0");
        assert_eq!(body["HostConfig"]["NetworkMode"], "shop_backend");
        assert_eq!(body["HostConfig"]["RestartPolicy"]["Name"], "no");
        assert_eq!(
            body["HostConfig"]["Binds"],
            json!(["/srv/shop/backups/db:/backup:rw"])
        );
        assert_eq!(
            body["HostConfig"]["Mounts"][0],
            json!({"Type": "volume", "Source": "shop_pgdata", "Target": "/volume", "ReadOnly": true})
        );
    }

    #[test]
    fn only_running_containers_are_borrowed_from_stopped_and_started() {
        let list = json!([
            {"Id": "old", "State": "exited"},
            {"Id": "current", "State": "running"},
            {"Id": "made", "State": "created"},
        ]);
        assert_eq!(running_ids(&list), vec!["current".to_string()]);
        assert!(running_ids(&json!([])).is_empty());
    }

    #[test]
    fn a_dropped_connection_is_not_reported_as_a_timeout() {
        assert_eq!(
            wait_outcome(Ok(json!({"StatusCode": 3})), "shop-backup-db").unwrap(),
            Some(3)
        );
        let timeout = api::ClientError::Timeout(Duration::from_secs(60));
        assert_eq!(wait_outcome(Err(timeout), "shop-backup-db").unwrap(), None);
        let dropped = api::ClientError::Http(crate::http::HttpError::Malformed(
            "the connection closed before the answer".into(),
        ));
        let error = wait_outcome(Err(dropped), "shop-backup-db").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("lost the connection to the host"),
            "{error}"
        );
    }

    #[test]
    fn an_empty_command_is_refused() {
        let mut task = task();
        task.argv.clear();
        let borrowed = Borrowed {
            image: "i".into(),
            env: vec![],
            network: None,
        };
        let labels = Labels {
            stack: "s".into(),
            resource: "backup.db".into(),
            hash: "h".into(),
        };
        assert!(one_off_body(&task, &borrowed, "s", &labels).is_err());
    }
}
