//! [`DockerProvider`]: the Provider trait for `network`, `volume`, `image`, `service` and
//! `file`. This file holds the provider itself (its options, its one client per run, the
//! host lock) and the trait, which hands each use to the file of its concept: refresh to
//! `refresh.rs`, each kind's apply to `network.rs`, `volume.rs`, `image.rs`,
//! `service.rs` and `files.rs`, adopt and import to `adopt.rs`, the run folder's
//! evidence to `evidence.rs`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use stackctl_host::{HostConnector, Target};
use stackctl_provider::{
    Action, ActionKind, Address, ApplyContext, ApplyOutcome, AttributeSchema, EdgeFormats,
    KindSchema, LiveResource, Provider, ProviderError, ReadRequest, RecordedResource, Resource,
    Value,
};
use tokio::sync::Mutex;

use crate::api::{ClientCounters, DockerClient};
use crate::provider_error::{failed, from_host};
use crate::service::{SERVICE_DEFAULT_WHEN_UNSET, SERVICE_FORCES_REPLACE};
use crate::spec::{ServiceSpec, SpecError};

/// Timings and places the engine may change; the defaults suit production.
#[derive(Clone, Debug)]
pub struct DockerOptions {
    /// The stack's directory on the host (`[target].root`).
    pub root: Option<String>,
    /// The directory of stack.toml on this machine: relative build contexts start there.
    pub build_directory: Option<std::path::PathBuf>,
    /// How long a swap waits after rewriting a backend file when Traefik cannot be asked
    /// (no edge container found, or none of its addresses answers from the host).
    pub settle: Duration,
    /// How long Traefik may take to report the new backend before the swap goes on.
    pub edge_wait: Duration,
    /// The port of Traefik's `traefik` entry point (ping and API) inside the edge
    /// container, published on the host or not. `None`: the port of `edge_formats`, where
    /// `lower.rs` always renders it.
    pub edge_admin_port: Option<u16>,
    /// `[edge].admin_port`: the host port (on the host's 127.0.0.1) where that entry point
    /// is published. When set, a swap asks Traefik there whether it serves the new
    /// container, and keeps asking until `edge_wait`; when not, it asks the edge
    /// container's own addresses. An option of the run, not an attribute of each routed
    /// service, so that publishing the port replaces no container but the edge.
    pub edge_published_admin_port: Option<u16>,
    /// The edge's file and API formats, which the swap of a routed service writes and
    /// reads. The front end passes the traefik crate's; without them, applying a routed
    /// service fails (`swap.rs`).
    pub edge_formats: Option<Arc<dyn EdgeFormats>>,
    /// How many log lines a failure carries.
    pub log_lines: u32,
    /// The user's Docker configuration directory (`$DOCKER_CONFIG`, `~/.docker`): where
    /// registry credentials are found (`registry_auth.rs`). `None`: pull anonymously.
    pub docker_config: Option<std::path::PathBuf>,
    /// How often a new container's readiness is probed (its health check run through
    /// the Engine API, `health.rs`) and its state read.
    pub poll_interval: Duration,
}

impl Default for DockerOptions {
    fn default() -> Self {
        DockerOptions {
            root: None,
            build_directory: None,
            settle: Duration::from_millis(1500),
            edge_wait: Duration::from_secs(10),
            edge_admin_port: None,
            edge_published_admin_port: None,
            edge_formats: None,
            log_lines: 30,
            docker_config: None,
            poll_interval: Duration::from_millis(100),
        }
    }
}

/// The docker provider of one stack on one host.
pub struct DockerProvider {
    pub(crate) connector: Arc<HostConnector>,
    pub(crate) stack: String,
    pub(crate) options: DockerOptions,
    client: Mutex<Option<DockerClient>>,
    /// The logs of the release tasks run so far (file name → log), for the run folder.
    pub(crate) release_logs: std::sync::Mutex<Vec<(String, Vec<u8>)>>,
    /// Work that decides no action's success (stopping and removing replaced
    /// containers), running beside the next actions; `end_apply` waits for all of it.
    pub(crate) background: crate::background::BackgroundWork,
    /// Where build and pull progress goes, once the engine gave a sink.
    progress: std::sync::Mutex<Option<stackctl_provider::ProgressSink>>,
}

impl DockerProvider {
    pub fn new(connector: Arc<HostConnector>, stack: impl Into<String>) -> Self {
        DockerProvider::with_options(connector, stack, DockerOptions::default())
    }

    pub fn with_options(
        connector: Arc<HostConnector>,
        stack: impl Into<String>,
        options: DockerOptions,
    ) -> Self {
        DockerProvider {
            connector,
            stack: stack.into(),
            options,
            client: Mutex::new(None),
            release_logs: std::sync::Mutex::default(),
            background: crate::background::BackgroundWork::default(),
            progress: std::sync::Mutex::default(),
        }
    }

    /// `<root>`: `[target].root`, default `/var/lib/stackctl/<stack>`.
    pub fn root(&self) -> String {
        self.options
            .root
            .clone()
            .unwrap_or_else(|| format!("/var/lib/stackctl/{}", self.stack))
    }

    /// Requests, round trips and streams spent so far (for tests and the run log).
    pub async fn client_counters(&self) -> ClientCounters {
        match &*self.client.lock().await {
            Some(client) => client.counters(),
            None => ClientCounters::default(),
        }
    }

    /// The target droplet's name, when the target is a droplet.
    pub(crate) fn droplet_name(&self) -> Option<&str> {
        match self.connector.target() {
            Target::Droplet { droplet, .. } => Some(droplet),
            _ => None,
        }
    }

    pub(crate) async fn client(
        &self,
        droplet_ip: Option<String>,
    ) -> Result<DockerClient, ProviderError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = &*slot {
            return Ok(client.clone());
        }
        let host = self
            .connector
            .connect(droplet_ip.as_deref())
            .await
            .map_err(from_host)?;
        let client = DockerClient::new(host);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Sends a build or a pull, showing each line of its JSON progress as it arrives.
    pub(crate) async fn send_with_progress(
        &self,
        client: &DockerClient,
        address: &Address,
        request: crate::http::Request,
    ) -> Result<crate::http::Response, crate::api::ClientError> {
        let sink = self.progress.lock().ok().and_then(|slot| slot.clone());
        let mut on_line = |line: &str| {
            if let (Some(sink), Some(text)) = (&sink, progress_text(line)) {
                sink(address, &text);
            }
        };
        client
            .with_timeout(Duration::from_secs(30 * 60))
            .send_streaming(request, &mut on_line)
            .await
    }

    /// The `X-Registry-Auth` header for `reference`, from the user's Docker
    /// configuration; `None` when it has no credentials for that registry.
    pub(crate) async fn registry_auth(
        &self,
        reference: &str,
    ) -> Result<Option<stackctl_provider::Secret>, ProviderError> {
        let Some(directory) = self.options.docker_config.clone() else {
            return Ok(None);
        };
        let reference = reference.to_string();
        tokio::task::spawn_blocking(move || {
            crate::registry_auth::header_for(&directory, &reference)
        })
        .await
        .map_err(|error| failed(format!("reading registry credentials failed: {error}"), None))?
        .map_err(|error| ProviderError::Credentials {
            message: error.to_string(),
            hint: "fix the Docker configuration (or its credential helper), as `docker login` would need it".into(),
        })
    }

    pub(crate) async fn client_for_apply(
        &self,
        context: &ApplyContext,
    ) -> Result<DockerClient, ProviderError> {
        let ip = self
            .droplet_name()
            .and_then(|droplet| context.droplet_address(droplet));
        self.client(ip).await
    }
}

/// The words of one line of Docker's JSON progress: a build's output (`stream`), a pull's
/// `status` (with its layer `id`), or an `error`; `None` for an empty one.
fn progress_text(line: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(line).ok()?;
    let text = if let Some(stream) = json["stream"].as_str() {
        stream.trim().to_string()
    } else if let Some(status) = json["status"].as_str() {
        match json["id"].as_str() {
            Some(id) => format!("{id}: {status}"),
            None => status.to_string(),
        }
    } else {
        json["error"].as_str()?.to_string()
    };
    (!text.is_empty()).then_some(text)
}

// ---- the trait -------------------------------------------------------------------------

#[async_trait]
impl Provider for DockerProvider {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn kinds(&self) -> Vec<KindSchema> {
        // Left unset, these are what a container gets by default (the image's command,
        // entrypoint and health check, no user, no limits); `live.rs` reads them back only
        // when the container differs, so a value there is a hand edit.
        let default_when_unset = |schema: AttributeSchema| {
            if SERVICE_DEFAULT_WHEN_UNSET.contains(&schema.name) {
                schema.unset_means_default()
            } else {
                schema
            }
        };
        let mut service: Vec<AttributeSchema> = SERVICE_FORCES_REPLACE
            .iter()
            .map(|name| AttributeSchema::replaces(name))
            .collect();
        // `route_backend` too: a route added, changed or removed rewrites or removes the
        // edge's backend file and leaves the container as it is (`backend_file.rs`).
        service.extend(
            [
                "memory",
                "cpus",
                // `docker update --pids-limit`: changed on the live container.
                "pids_limit",
                "restart",
                "route_backend",
                // How a later swap drains this container: nothing to change on it now.
                "drain_milliseconds",
            ]
            .map(AttributeSchema::plain),
        );
        // Why the service relaxes the hardened default: shown beside the exceptions, and
        // no reason to touch the container when only the words change.
        service.push(AttributeSchema::inert("security_reason"));
        let mut service: Vec<AttributeSchema> =
            service.into_iter().map(default_when_unset).collect();
        service.extend(
            [
                "container_id",
                "container",
                "running",
                "state",
                "label_hash",
                "backend_file",
                crate::live::RUNTIME,
            ]
            .map(AttributeSchema::computed),
        );
        let mut kinds = vec![
            KindSchema {
                kind: "network",
                provider: "docker",
                attributes: vec![
                    AttributeSchema::replaces("name"),
                    AttributeSchema::replaces("internal"),
                    AttributeSchema::replaces("driver"),
                    AttributeSchema::replaces("attachable"),
                ],
            },
            KindSchema {
                kind: "volume",
                provider: "docker",
                attributes: vec![AttributeSchema::replaces("name")],
            },
            KindSchema {
                kind: "image",
                provider: "docker",
                attributes: vec![
                    AttributeSchema::plain("tag"),
                    AttributeSchema::plain("context"),
                    AttributeSchema::plain("context_hash"),
                    AttributeSchema::plain("dockerfile"),
                    AttributeSchema::plain("build_args"),
                    AttributeSchema::plain("reference"),
                    AttributeSchema::plain("pull"),
                    AttributeSchema::computed("image_id"),
                    AttributeSchema::upstream("digest"),
                ],
            },
            KindSchema {
                kind: "service",
                provider: "docker",
                attributes: service,
            },
            // What a release task runs with. A change of its image, env, command or
            // entrypoint runs it again; the others are inert (`lower/releases.rs`).
            KindSchema {
                kind: "release",
                provider: "docker",
                attributes: vec![
                    AttributeSchema::plain("image"),
                    AttributeSchema::plain("image_digest"),
                    AttributeSchema::plain("env"),
                    AttributeSchema::plain("command"),
                    AttributeSchema::plain("entrypoint"),
                    AttributeSchema::inert("container_name"),
                    AttributeSchema::inert("user"),
                    AttributeSchema::inert("networks"),
                    AttributeSchema::inert("volumes"),
                    AttributeSchema::inert("read_only"),
                    AttributeSchema::inert("tmpfs"),
                    AttributeSchema::inert("cap_drop"),
                    AttributeSchema::inert("cap_add"),
                    AttributeSchema::inert("no_new_privileges"),
                    AttributeSchema::inert("privileged"),
                    AttributeSchema::inert("pids_limit"),
                    AttributeSchema::inert("timeout_seconds"),
                ],
            },
            KindSchema {
                kind: "file",
                provider: "docker",
                attributes: vec![
                    AttributeSchema::replaces("path"),
                    AttributeSchema::plain("content"),
                    AttributeSchema::plain("mode"),
                    AttributeSchema::plain("owner"),
                    AttributeSchema::plain("temp_dir"),
                ],
            },
        ];
        // Services on a Docker Swarm (`swarm_service/`).
        kinds.push(crate::swarm_service::kind_schema());
        kinds
    }

    fn prepare(&self, desired: &mut Resource) -> Result<(), ProviderError> {
        // Checked before planning, so a bad service fails `plan`, not halfway through apply.
        if matches!(desired.address.kind(), "service" | "release") {
            let mut checked = desired.attributes.clone();
            // The image may be known only after the image resource is applied.
            checked
                .entry("image".into())
                .or_insert_with(|| Value::text("(known after apply)"));
            if matches!(checked.get("image"), Some(Value::Unknown(_))) {
                checked.insert("image".into(), Value::text("(known after apply)"));
            }
            match ServiceSpec::from_attributes(desired.address.name(), &checked) {
                // An env value another resource produces: known after apply, fine for now.
                Ok(_) | Err(SpecError::EnvNotKnownYet { .. }) => {}
                Err(error) => {
                    return Err(failed(format!("`{}`: {error}", desired.address), None));
                }
            }
        }
        if desired.address.kind() == crate::swarm_service::SWARM_SERVICE {
            crate::swarm_service::spec::check_before_planning(&self.stack, desired)?;
        }
        Ok(())
    }

    async fn read(&self, request: &ReadRequest) -> Result<Vec<LiveResource>, ProviderError> {
        // Swarm services beside the containers (none asked when the stack has none).
        let (live, swarm_services) =
            tokio::join!(self.refresh(request), self.read_swarm_services(request));
        let (mut live, backend_files) = live?;
        let mut swarm_services = swarm_services?;
        self.compare_swarm_backend_files(&mut swarm_services, &backend_files, request);
        live.extend(swarm_services);
        live.sort_by(|left, right| left.address.cmp(&right.address));
        Ok(live)
    }

    fn report_progress_to(&self, sink: stackctl_provider::ProgressSink) {
        if let Ok(mut slot) = self.progress.lock() {
            *slot = Some(sink);
        }
    }

    async fn begin_apply(&self, context: &ApplyContext) -> Result<(), ProviderError> {
        let client = self.client_for_apply(context).await?;
        self.connector
            .take_lock(
                client.host().as_ref(),
                &context.stack,
                &context.lineage,
                context.state_was_empty,
            )
            .await
            .map_err(from_host)
    }

    async fn end_apply(&self, context: &ApplyContext) -> Result<(), ProviderError> {
        // The apply ends only when the replaced containers are gone, and the host lock
        // is held until then.
        let finished = self.finish_background_work().await;
        let client = self.client_for_apply(context).await?;
        self.connector
            .release_lock(client.host().as_ref())
            .await
            .map_err(from_host)?;
        finished
    }

    async fn import(
        &self,
        address: &Address,
        id: &str,
        desired: Option<&Resource>,
        context: &ApplyContext,
    ) -> Result<RecordedResource, ProviderError> {
        self.import_existing(address, id, desired, context).await
    }

    fn host_tasks(&self) -> Option<&dyn stackctl_provider::HostTasks> {
        Some(self)
    }

    async fn security_facts(&self) -> Option<Result<serde_json::Value, ProviderError>> {
        Some(self.read_security_facts().await)
    }

    async fn evidence(&self, _context: &ApplyContext) -> Vec<(String, Vec<u8>)> {
        let mut evidence = self.collect_evidence().await;
        if let Ok(logs) = self.release_logs.lock() {
            evidence.extend(logs.iter().cloned());
        }
        evidence
    }

    async fn prune_images(
        &self,
        context: &ApplyContext,
        keep: &std::collections::BTreeSet<String>,
    ) -> Result<Vec<String>, ProviderError> {
        self.prune_stack_images(context, keep).await
    }

    async fn apply(
        &self,
        action: &Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        let client = self.client_for_apply(context).await?;
        match self.apply_action(&client, action, context).await {
            Err(error @ (ProviderError::Failed { .. } | ProviderError::Credentials { .. }))
                if client.host().connection_lost().await =>
            {
                Err(ProviderError::ConnectionLost {
                    target: client.host().describe(),
                    cause: error.to_string(),
                })
            }
            result => result,
        }
    }
}

impl DockerProvider {
    /// Carries out one action (see [`Provider::apply`]).
    async fn apply_action(
        &self,
        client: &DockerClient,
        action: &Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        // A swarm service is applied whole by `swarm_service/apply.rs` (adopting one found
        // labelled as ours is updating it to what stack.toml says).
        if action.address.kind() == crate::swarm_service::SWARM_SERVICE {
            return self.apply_swarm_service(client, action, context).await;
        }
        // A file found on the host is adopted by writing what stack.toml says into it.
        if action.kind == ActionKind::Adopt && action.address.kind() != "file" {
            return self
                .adopt_unless_never_started(client, action, context)
                .await;
        }
        match action.address.kind() {
            "network" => self.apply_network(client, action).await,
            "volume" => self.apply_volume(client, action, context).await,
            "image" => self.apply_image(client, action).await,
            "service" => self.apply_service(client, action, context).await,
            "release" => self.apply_release(client, action).await,
            "file" => crate::files::apply(client.host().as_ref(), action).await,
            other => Err(failed(
                format!("the docker provider has no kind `{other}`"),
                None,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use stackctl_provider::Reference;

    use super::*;

    #[test]
    fn schemas_mark_replacement_and_computed_attributes() {
        let provider = DockerProvider::new(Arc::new(HostConnector::local()), "shop");
        let kinds = provider.kinds();
        let service = kinds.iter().find(|kind| kind.kind == "service").unwrap();
        assert!(service.forces_replace("env"));
        assert!(!service.forces_replace("memory"));
        assert!(!service.forces_replace("route_backend"));
        assert!(service.is_computed("running"));
        let volume = kinds.iter().find(|kind| kind.kind == "volume").unwrap();
        assert!(volume.forces_replace("name"));
    }

    fn service_with(name: &str, value: Value) -> Resource {
        let mut resource = Resource::new(Address::new("service", "api"), "docker");
        resource
            .attributes
            .insert("container_name".into(), Value::text("shop-api"));
        resource.attributes.insert(name.into(), value);
        resource
    }

    #[test]
    fn prepare_lets_env_known_after_apply_through_and_names_the_service_otherwise() {
        let provider = DockerProvider::new(Arc::new(HostConnector::local()), "shop");
        let reference = Reference {
            address: Address::new("service", "db"),
            attribute: "container".into(),
        };
        let env = Value::Map(BTreeMap::from([(
            "DB_HOST".to_string(),
            Value::Unknown(reference),
        )]));
        assert!(provider.prepare(&mut service_with("env", env)).is_ok());
        let error = provider
            .prepare(&mut service_with("restart", Value::text("sometimes")))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "`service.api`: `restart` = `sometimes` is not a Docker restart policy"
        );
    }
}
