//! Attributes → Docker: what a `service.*` resource means as a container.
//!
//! Pure. `ServiceSpec::from_attributes` checks the lowering contract (docs/resources.md)
//! and refuses what must never reach a host, such as published ports on anything but the
//! edge; `create_body` is the container it asks Docker for. The other direction — a
//! container read back as attributes — is `live.rs`.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};
use stackctl_provider::{Attributes, Reference, Secret, Value};

use crate::api::Labels;
pub use crate::hardening::ContainerHardening;

/// One environment value: plain text, or a secret exposed only when the container is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvValue {
    Plain(String),
    Secret(Secret),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// `volume` or `bind`.
    pub kind: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedPort {
    pub host_ip: String,
    pub host_port: i64,
    pub container_port: i64,
    pub protocol: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Health {
    pub test: Vec<String>,
    pub interval_seconds: Option<f64>,
    pub timeout_seconds: Option<f64>,
    pub retries: Option<i64>,
    pub start_period_seconds: Option<f64>,
}

/// Where the edge finds a routed service: the backend file the provider rewrites on a swap.
///
/// Only what the routes decide lives here. How to ask the edge whether it serves a new
/// container (its published admin port) is a setting of the edge, in
/// [`crate::DockerOptions::edge_published_admin_port`]: were it here, changing it would
/// change every routed service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteBackend {
    pub file: String,
    pub temp_dir: String,
    pub service: String,
    /// On a swarm: the network the edge shares with the service, whose task addresses
    /// the backend file lists (a task's address on another network is unreachable from
    /// the edge). Absent on one host, where the container is named instead.
    pub network: Option<String>,
    /// On a swarm: the HTTP path the edge checks each task on (the service's
    /// `health.http`), so a failing replica is taken out and `verify` can name it.
    pub health_path: Option<String>,
}

impl RouteBackend {
    /// Reads a service's `route_backend` attribute; `None` when the service has no route.
    /// `service` is the address name, the default Traefik service name. Keys this
    /// provider no longer uses (`admin_url`, recorded by earlier versions) are ignored.
    pub fn from_attributes(
        service: &str,
        attributes: &Attributes,
    ) -> Result<Option<RouteBackend>, SpecError> {
        let Some(map) = attributes.get("route_backend").and_then(Value::as_map) else {
            return Ok(None);
        };
        let field = |name: &str| map.get(name).and_then(Value::as_text).map(str::to_string);
        Ok(Some(RouteBackend {
            file: field("file").ok_or(SpecError::FieldMissing {
                setting: "route_backend",
                field: "file",
            })?,
            temp_dir: field("temp_dir").ok_or(SpecError::FieldMissing {
                setting: "route_backend",
                field: "temp_dir",
            })?,
            service: field("service").unwrap_or_else(|| service.to_string()),
            network: field("network"),
            health_path: field("health_path"),
        }))
    }
}

/// Docker's stop grace period when a container sets none (`StopTimeout`), in seconds.
pub const DOCKER_STOP_GRACE_SECONDS: i64 = 10;

/// A service as the container it becomes.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceSpec {
    pub service: String,
    pub container_name: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: BTreeMap<String, EnvValue>,
    /// Network name → aliases.
    pub networks: BTreeMap<String, Vec<String>>,
    pub volumes: Vec<Mount>,
    pub user: Option<String>,
    pub memory: Option<i64>,
    pub cpus: Option<String>,
    pub restart: String,
    pub read_only: bool,
    /// Capabilities, privileges, process limit and tmpfs mounts.
    pub hardening: ContainerHardening,
    pub health: Option<Health>,
    pub ports: Vec<PublishedPort>,
    pub port: Option<i64>,
    pub route_backend: Option<RouteBackend>,
    pub stateful: bool,
    /// Seconds between SIGTERM and SIGKILL (`stop_grace_period`), the container's
    /// `StopTimeout`: every stop of it waits this long at most for the app to exit.
    pub stop_grace_seconds: i64,
    /// How long a replaced routed container keeps running after the edge stopped sending
    /// it requests, before its SIGTERM (`drain`; zero: at once).
    pub drain: std::time::Duration,
}

/// Why a service's attributes cannot become a container. The messages name the setting;
/// the provider puts the resource's address in front of them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("`{setting}` is missing")]
    Missing { setting: &'static str },
    #[error("`image` is missing (or not yet known)")]
    ImageMissing,
    /// An env value refers to something another resource produces during apply: not an
    /// error at plan time, where `prepare` lets it through.
    #[error("env `{key}` is not known yet ({reference})")]
    EnvNotKnownYet { key: String, reference: Reference },
    #[error("env `{key}` must be text")]
    EnvNotText { key: String },
    #[error("`{setting}` must be a list of text")]
    NotTextList { setting: String },
    #[error("`{setting}` must be a list of maps")]
    NotListOfMaps { setting: &'static str },
    /// An item of `volumes` or `ports` lacks a field.
    #[error("a {item} has no `{field}`")]
    ItemFieldMissing {
        item: &'static str,
        field: &'static str,
    },
    /// A map setting (`health`, `route_backend`) lacks a field.
    #[error("`{setting}` has no `{field}`")]
    FieldMissing {
        setting: &'static str,
        field: &'static str,
    },
    #[error("service `{service}` publishes host ports, but only `service.edge` may")]
    PublishesPorts { service: String },
    #[error("`cpus` = `{cpus}` is not a number of CPUs")]
    CpusNotANumber { cpus: String },
    #[error("`cpus` = `{cpus}` is out of range")]
    CpusOutOfRange { cpus: String },
    #[error("`restart` = `{restart}` is not a Docker restart policy")]
    RestartPolicy { restart: String },
    #[error("the secret value of env `{key}` is not available in this run (set it in the environment or .env)")]
    SecretUnavailable { key: String },
}

pub(crate) fn text_list(value: &Value, what: &str) -> Result<Vec<String>, SpecError> {
    let not_text_list = || SpecError::NotTextList {
        setting: what.to_string(),
    };
    value
        .as_list()
        .ok_or_else(not_text_list)?
        .iter()
        .map(|item| item.as_text().map(str::to_string).ok_or_else(not_text_list))
        .collect()
}

pub(crate) fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Integer(number) => Some(*number as f64),
        Value::Text(text) => text.parse().ok(),
        _ => None,
    }
}

/// `"0.5"` → 500 000 000 nano-CPUs.
pub fn nano_cpus(cpus: &str) -> Result<i64, SpecError> {
    let parsed: f64 = cpus.trim().parse().map_err(|_| SpecError::CpusNotANumber {
        cpus: cpus.to_string(),
    })?;
    if !(parsed > 0.0 && parsed < 1024.0) {
        return Err(SpecError::CpusOutOfRange {
            cpus: cpus.to_string(),
        });
    }
    Ok((parsed * 1e9).round() as i64)
}

pub(crate) fn seconds_to_nanos(seconds: f64) -> i64 {
    (seconds * 1e9).round() as i64
}

impl ServiceSpec {
    /// Reads a `service.*` resource's attributes. `service` is the address name.
    pub fn from_attributes(
        service: &str,
        attributes: &Attributes,
    ) -> Result<ServiceSpec, SpecError> {
        let text = |name: &str| {
            attributes
                .get(name)
                .and_then(Value::as_text)
                .map(str::to_string)
        };
        let container_name = text("container_name").ok_or(SpecError::Missing {
            setting: "container_name",
        })?;
        let image = text("image").ok_or(SpecError::ImageMissing)?;
        let optional_list = |name: &str| -> Result<Option<Vec<String>>, SpecError> {
            match attributes.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => text_list(value, name).map(Some),
            }
        };
        let mut env = BTreeMap::new();
        if let Some(entries) = attributes.get("env").and_then(Value::as_map) {
            for (key, value) in entries {
                let value = match value {
                    Value::Secret(secret) => EnvValue::Secret(secret.clone()),
                    Value::Text(text) => EnvValue::Plain(text.clone()),
                    Value::Integer(number) => EnvValue::Plain(number.to_string()),
                    Value::Bool(flag) => EnvValue::Plain(flag.to_string()),
                    Value::Unknown(reference) => {
                        return Err(SpecError::EnvNotKnownYet {
                            key: key.clone(),
                            reference: reference.clone(),
                        })
                    }
                    _ => return Err(SpecError::EnvNotText { key: key.clone() }),
                };
                env.insert(key.clone(), value);
            }
        }
        let mut networks = BTreeMap::new();
        if let Some(entries) = attributes.get("networks").and_then(Value::as_map) {
            for (network, aliases) in entries {
                networks.insert(network.clone(), text_list(aliases, "networks")?);
            }
        }
        let mut volumes = Vec::new();
        for item in attributes
            .get("volumes")
            .and_then(Value::as_list)
            .unwrap_or(&[])
        {
            let map = item
                .as_map()
                .ok_or(SpecError::NotListOfMaps { setting: "volumes" })?;
            let field = |name: &str| map.get(name).and_then(Value::as_text).map(str::to_string);
            volumes.push(Mount {
                source: field("source").ok_or(SpecError::ItemFieldMissing {
                    item: "volume",
                    field: "source",
                })?,
                target: field("target").ok_or(SpecError::ItemFieldMissing {
                    item: "volume",
                    field: "target",
                })?,
                read_only: map
                    .get("read_only")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                kind: field("kind").unwrap_or_else(|| "volume".to_string()),
            });
        }
        let mut ports = Vec::new();
        for item in attributes
            .get("ports")
            .and_then(Value::as_list)
            .unwrap_or(&[])
        {
            let map = item
                .as_map()
                .ok_or(SpecError::NotListOfMaps { setting: "ports" })?;
            let integer = |name: &str| map.get(name).and_then(number).map(|value| value as i64);
            ports.push(PublishedPort {
                host_ip: map
                    .get("host_ip")
                    .and_then(Value::as_text)
                    .unwrap_or("0.0.0.0")
                    .to_string(),
                host_port: integer("host_port").ok_or(SpecError::ItemFieldMissing {
                    item: "port",
                    field: "host_port",
                })?,
                container_port: integer("container_port").ok_or(SpecError::ItemFieldMissing {
                    item: "port",
                    field: "container_port",
                })?,
                protocol: map
                    .get("protocol")
                    .and_then(Value::as_text)
                    .unwrap_or("tcp")
                    .to_string(),
            });
        }
        // Defence in depth: lowering gives ports to the edge alone; a bug there must not
        // publish a database on the internet.
        if !ports.is_empty() && service != "edge" {
            return Err(SpecError::PublishesPorts {
                service: service.to_string(),
            });
        }
        let health = match attributes.get("health").and_then(Value::as_map) {
            None => None,
            Some(map) => Some(Health {
                test: text_list(
                    map.get("test").ok_or(SpecError::FieldMissing {
                        setting: "health",
                        field: "test",
                    })?,
                    "health.test",
                )?,
                interval_seconds: map.get("interval_seconds").and_then(number),
                timeout_seconds: map.get("timeout_seconds").and_then(number),
                retries: map.get("retries").and_then(Value::as_integer),
                start_period_seconds: map.get("start_period_seconds").and_then(number),
            }),
        };
        let route_backend = RouteBackend::from_attributes(service, attributes)?;
        let memory = attributes.get("memory").and_then(Value::as_integer);
        let cpus = match attributes.get("cpus") {
            Some(Value::Text(text)) => Some(text.clone()),
            Some(Value::Integer(number)) => Some(number.to_string()),
            _ => None,
        };
        if let Some(cpus) = &cpus {
            nano_cpus(cpus)?;
        }
        let restart = text("restart").unwrap_or_else(|| "unless-stopped".to_string());
        if !matches!(
            restart.as_str(),
            "no" | "always" | "unless-stopped" | "on-failure"
        ) {
            return Err(SpecError::RestartPolicy { restart });
        }
        Ok(ServiceSpec {
            service: service.to_string(),
            container_name,
            image,
            command: optional_list("command")?,
            entrypoint: optional_list("entrypoint")?,
            env,
            networks,
            volumes,
            user: text("user").filter(|user| !user.is_empty()),
            memory,
            cpus,
            restart,
            read_only: attributes
                .get("read_only")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            hardening: ContainerHardening::from_attributes(attributes)?,
            health,
            ports,
            port: attributes.get("port").and_then(Value::as_integer),
            route_backend,
            stateful: attributes
                .get("stateful")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            stop_grace_seconds: attributes
                .get("stop_grace_seconds")
                .and_then(Value::as_integer)
                .unwrap_or(DOCKER_STOP_GRACE_SECONDS),
            drain: std::time::Duration::from_millis(
                attributes
                    .get("drain_milliseconds")
                    .and_then(Value::as_integer)
                    .and_then(|milliseconds| u64::try_from(milliseconds).ok())
                    .unwrap_or(0),
            ),
        })
    }

    /// The first network joins at create time (API 1.41 takes one endpoint there); the
    /// others are connected before the container starts.
    pub fn first_network(&self) -> Option<(&String, &Vec<String>)> {
        self.networks.iter().next()
    }

    /// The body of `POST /containers/create`. Secrets are exposed here and only here.
    pub fn create_body(&self, labels: &Labels) -> Result<Json, SpecError> {
        let mut env = Vec::new();
        for (key, value) in &self.env {
            let text = match value {
                EnvValue::Plain(text) => text,
                EnvValue::Secret(secret) => secret
                    .expose()
                    .ok_or_else(|| SpecError::SecretUnavailable { key: key.clone() })?,
            };
            env.push(format!("{key}={text}"));
        }
        let mut exposed = serde_json::Map::new();
        let mut bindings = serde_json::Map::new();
        for port in &self.ports {
            let key = format!("{}/{}", port.container_port, port.protocol);
            exposed.insert(key.clone(), json!({}));
            let entry = bindings.entry(key).or_insert_with(|| json!([]));
            if let Some(list) = entry.as_array_mut() {
                list.push(
                    json!({ "HostIp": port.host_ip, "HostPort": port.host_port.to_string() }),
                );
            }
        }
        let mounts: Vec<Json> = self
            .volumes
            .iter()
            .map(|mount| {
                json!({
                    "Type": mount.kind,
                    "Source": mount.source,
                    "Target": mount.target,
                    "ReadOnly": mount.read_only,
                })
            })
            .collect();
        let mut host_config = json!({
            "RestartPolicy": { "Name": self.restart },
            "ReadonlyRootfs": self.read_only,
            "Mounts": mounts,
            "PortBindings": bindings,
            "Init": false,
        });
        if let Some(memory) = self.memory {
            host_config["Memory"] = json!(memory);
            host_config["MemorySwap"] = json!(-1);
        }
        if let Some(cpus) = &self.cpus {
            host_config["NanoCpus"] = json!(nano_cpus(cpus)?);
        }
        self.hardening.apply_to(&mut host_config);
        let mut body = json!({
            "Image": self.image,
            "Env": env,
            "Labels": labels.to_json(),
            "ExposedPorts": exposed,
            "HostConfig": host_config,
            "StopTimeout": self.stop_grace_seconds,
        });
        if let Some(command) = &self.command {
            body["Cmd"] = json!(command);
        }
        if let Some(entrypoint) = &self.entrypoint {
            body["Entrypoint"] = json!(entrypoint);
        }
        if let Some(user) = &self.user {
            body["User"] = json!(user);
        }
        if let Some(health) = &self.health {
            let mut check = json!({ "Test": health.test });
            if let Some(seconds) = health.interval_seconds {
                check["Interval"] = json!(seconds_to_nanos(seconds));
            }
            if let Some(seconds) = health.timeout_seconds {
                check["Timeout"] = json!(seconds_to_nanos(seconds));
            }
            if let Some(retries) = health.retries {
                check["Retries"] = json!(retries);
            }
            if let Some(seconds) = health.start_period_seconds {
                check["StartPeriod"] = json!(seconds_to_nanos(seconds));
            }
            body["Healthcheck"] = check;
        }
        if let Some((network, aliases)) = self.first_network() {
            body["HostConfig"]["NetworkMode"] = json!(network);
            body["NetworkingConfig"] =
                json!({ "EndpointsConfig": { network.as_str(): { "Aliases": aliases } } });
        }
        Ok(body)
    }

    /// The server the edge sends a routed service's traffic to when `container` serves
    /// it: `http://<container>:<port>`, on the networks the edge shares with it.
    pub fn backend_url(&self, container: &str) -> String {
        format!("http://{container}:{}", self.port.unwrap_or(80))
    }
}

pub use crate::live::live_service_attributes;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn attributes() -> Attributes {
        let salt = "salt";
        let mut attributes = Attributes::new();
        attributes.insert("container_name".into(), Value::text("shop-api"));
        attributes.insert("image".into(), Value::text("stackctl-test/server:latest"));
        attributes.insert(
            "env".into(),
            Value::Map(BTreeMap::from([
                ("NAME".to_string(), Value::text("api")),
                (
                    "PASSWORD".to_string(),
                    Value::Secret(Secret::new("hunter2", salt)),
                ),
            ])),
        );
        attributes.insert(
            "networks".into(),
            Value::Map(BTreeMap::from([
                (
                    "shop_backend".to_string(),
                    Value::List(vec![Value::text("api")]),
                ),
                (
                    "shop_edge".to_string(),
                    Value::List(vec![Value::text("api"), Value::text("backend-api")]),
                ),
            ])),
        );
        attributes.insert(
            "volumes".into(),
            Value::List(vec![Value::Map(BTreeMap::from([
                ("source".to_string(), Value::text("shop_data")),
                ("target".to_string(), Value::text("/data")),
                ("read_only".to_string(), Value::Bool(false)),
                ("kind".to_string(), Value::text("volume")),
            ]))]),
        );
        attributes.insert("user".into(), Value::text("10001"));
        attributes.insert("memory".into(), Value::Integer(64 << 20));
        attributes.insert("cpus".into(), Value::text("0.5"));
        attributes.insert("restart".into(), Value::text("unless-stopped"));
        attributes.insert("read_only".into(), Value::Bool(true));
        attributes.insert(
            "health".into(),
            Value::Map(BTreeMap::from([
                (
                    "test".to_string(),
                    Value::List(vec![
                        Value::text("CMD"),
                        Value::text("/server"),
                        Value::text("health"),
                    ]),
                ),
                ("interval_seconds".to_string(), Value::Integer(1)),
                ("retries".to_string(), Value::Integer(3)),
            ])),
        );
        attributes.insert("port".into(), Value::Integer(8080));
        attributes
    }

    fn labels() -> Labels {
        Labels {
            stack: "shop".into(),
            resource: "service.api".into(),
            hash: "sha256:h".into(),
        }
    }

    #[test]
    fn create_body_carries_everything_the_service_declares() {
        let spec = ServiceSpec::from_attributes("api", &attributes()).unwrap();
        let body = spec.create_body(&labels()).unwrap();
        assert_eq!(body["Image"], "stackctl-test/server:latest");
        assert_eq!(body["Env"], json!(["NAME=api", "PASSWORD=hunter2"]));
        assert_eq!(body["Labels"]["stackctl.resource"], "service.api");
        assert_eq!(body["User"], "10001");
        assert_eq!(body["HostConfig"]["Memory"], 64 << 20);
        assert_eq!(body["HostConfig"]["NanoCpus"], 500_000_000);
        assert_eq!(
            body["HostConfig"]["RestartPolicy"]["Name"],
            "unless-stopped"
        );
        assert_eq!(body["HostConfig"]["ReadonlyRootfs"], true);
        assert_eq!(
            body["HostConfig"]["Mounts"],
            json!([{"Type": "volume", "Source": "shop_data", "Target": "/data", "ReadOnly": false}])
        );
        assert_eq!(body["HostConfig"]["PortBindings"], json!({}));
        assert_eq!(body["HostConfig"]["NetworkMode"], "shop_backend");
        assert_eq!(
            body["NetworkingConfig"],
            json!({"EndpointsConfig": {"shop_backend": {"Aliases": ["api"]}}})
        );
        assert_eq!(
            body["Healthcheck"],
            json!({"Test": ["CMD", "/server", "health"], "Interval": 1_000_000_000i64, "Retries": 3})
        );
    }

    #[test]
    fn the_container_stops_in_the_services_grace_period() {
        let body = |attributes: &Attributes| {
            ServiceSpec::from_attributes("api", attributes)
                .unwrap()
                .create_body(&labels())
                .unwrap()
        };
        assert_eq!(body(&attributes())["StopTimeout"], 10);
        let mut patient = attributes();
        patient.insert("stop_grace_seconds".into(), Value::Integer(45));
        patient.insert("drain_milliseconds".into(), Value::Integer(1500));
        assert_eq!(body(&patient)["StopTimeout"], 45);
        let spec = ServiceSpec::from_attributes("api", &patient).unwrap();
        assert_eq!(spec.drain, std::time::Duration::from_millis(1500));
    }

    #[test]
    fn only_the_edge_may_publish_ports() {
        let mut attributes = attributes();
        attributes.insert(
            "ports".into(),
            Value::List(vec![Value::Map(BTreeMap::from([
                ("host_ip".to_string(), Value::text("127.0.0.1")),
                ("host_port".to_string(), Value::Integer(18080)),
                ("container_port".to_string(), Value::Integer(80)),
                ("protocol".to_string(), Value::text("tcp")),
            ]))]),
        );
        let error = ServiceSpec::from_attributes("api", &attributes)
            .unwrap_err()
            .to_string();
        assert!(error.contains("only `service.edge` may"), "{error}");
        let edge = ServiceSpec::from_attributes("edge", &attributes).unwrap();
        let body = edge.create_body(&labels()).unwrap();
        assert_eq!(body["ExposedPorts"], json!({"80/tcp": {}}));
        assert_eq!(
            body["HostConfig"]["PortBindings"],
            json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}]})
        );
    }

    #[test]
    fn a_secret_without_plaintext_is_a_clear_error() {
        let mut attributes = attributes();
        attributes.insert(
            "env".into(),
            Value::Map(BTreeMap::from([(
                "TOKEN".to_string(),
                Value::Secret(Secret::from_digest("sha256:x")),
            )])),
        );
        let spec = ServiceSpec::from_attributes("api", &attributes).unwrap();
        assert!(spec
            .create_body(&labels())
            .unwrap_err()
            .to_string()
            .contains("`TOKEN`"));
    }

    #[test]
    fn hostile_values_stay_data() {
        let mut attributes = attributes();
        attributes.insert(
            "env".into(),
            Value::Map(BTreeMap::from([(
                "X".to_string(),
                Value::text("$(reboot); `id`"),
            )])),
        );
        attributes.insert(
            "command".into(),
            Value::List(vec![Value::text("a;b"), Value::text("$(c)")]),
        );
        let body = ServiceSpec::from_attributes("api", &attributes)
            .unwrap()
            .create_body(&labels())
            .unwrap();
        assert_eq!(body["Env"], json!(["X=$(reboot); `id`"]));
        assert_eq!(body["Cmd"], json!(["a;b", "$(c)"]));
    }

    #[test]
    fn backend_url_names_the_container_and_its_port() {
        let spec = ServiceSpec::from_attributes("api", &attributes()).unwrap();
        assert_eq!(
            spec.backend_url("shop-api-0123abcd"),
            "http://shop-api-0123abcd:8080"
        );
        let mut without_port = attributes();
        without_port.remove("port");
        let spec = ServiceSpec::from_attributes("api", &without_port).unwrap();
        assert_eq!(spec.backend_url("shop-api"), "http://shop-api:80");
    }
}
