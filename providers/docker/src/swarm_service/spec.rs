//! Attributes → Swarm: what a `swarm_service.*` resource means as the `ServiceSpec` of
//! `POST /services/create` and `POST /services/{id}/update` (Engine API 1.41).
//!
//! Pure. What each task runs (image, env, command, mounts, health, limits, user,
//! capabilities) is read by the container's own [`ServiceSpec`], so a swarm service and a
//! container never disagree on what an attribute means; this file adds what only a swarm
//! service has (replicas, placement, endpoint mode, update policy) and writes the body.
//! Secret env values become Swarm secrets mounted as files ([`super::secrets`]): the env
//! names the file (`VAR_FILE=/run/secrets/VAR`), never the value. `[files]` entries
//! become Swarm configs mounted at their paths ([`super::mounted_files`]).

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};
use stackctl_provider::{Attributes, Value};

use super::mounted_files::{mounted_files, MountedFile, MountedFileError, CONFIGS, SECRET_FILES};
use super::secrets::{file_variable, secret_name, SecretFile};
use super::swarm_objects::invalid_name;
use crate::api::Labels;
use crate::spec::{nano_cpus, seconds_to_nanos, text_list, EnvValue, ServiceSpec, SpecError};

/// How Swarm replaces a service's tasks on an update (and rolls back).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdatePolicy {
    pub parallelism: i64,
    /// `start-first` or `stop-first`.
    pub order: String,
    /// `rollback` or `pause`.
    pub failure_action: String,
    pub monitor_milliseconds: i64,
}

/// A `swarm_service.*` resource as the service it becomes.
#[derive(Clone, Debug, PartialEq)]
pub struct SwarmServiceSpec {
    /// What each task runs, read as a container is.
    pub task: ServiceSpec,
    /// `<stack>-<name>`: the service's name (a routed one's successor adds a suffix).
    pub service_name: String,
    pub replicas: i64,
    pub constraints: Vec<String>,
    /// Node labels the tasks spread over, in order.
    pub spread: Vec<String>,
    /// `vip` or `dnsrr`.
    pub endpoint_mode: String,
    pub update: UpdatePolicy,
    /// tmpfs path → size in bytes (0: no limit); a service spec carries no other option.
    pub tmpfs: BTreeMap<String, i64>,
    /// The secret env values, as the Swarm secrets mounted in each task, by variable.
    pub secrets: Vec<SecretFile>,
    /// The `[files]` entries, as the Swarm configs mounted in each task, by path.
    pub configs: Vec<MountedFile>,
    /// The `[files]` entries holding a secret, as the Swarm secrets mounted in each task,
    /// by path.
    pub secret_files: Vec<MountedFile>,
}

/// The ids of the Swarm objects a service's spec mounts, by name: they exist before the
/// spec names them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountedObjectIds {
    pub secrets: BTreeMap<String, String>,
    pub configs: BTreeMap<String, String>,
}

/// Why a swarm service's attributes cannot become a service.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SwarmSpecError {
    #[error(transparent)]
    Task(#[from] SpecError),
    #[error("`{setting}` is missing")]
    Missing { setting: &'static str },
    #[error("`{setting}` = `{value}` is not one of {expected}")]
    NotOneOf {
        setting: &'static str,
        value: String,
        expected: &'static str,
    },
    /// A secret env value `VAR` is passed as `VAR_FILE`, which the env must not set too.
    #[error("env `{key}` is a secret, mounted as a file that `{file_key}` names, and env sets `{file_key}` too")]
    FileVariableTaken { key: String, file_key: String },
    #[error("env `{key}` is a secret, and its Swarm secret's name `{name}` is refused: {why}")]
    SecretName {
        key: String,
        name: String,
        why: String,
    },
    /// An apply creates the secrets before the body is written; one it lacks is a bug.
    #[error("the Swarm secret `{name}` was not created before the service")]
    SecretNotCreated { name: String },
    #[error(transparent)]
    MountedFile(#[from] MountedFileError),
    #[error("the Swarm config `{name}` was not created before the service")]
    ConfigNotCreated { name: String },
}

/// Swarm's restart condition for a Docker restart policy.
pub fn restart_condition(restart: &str) -> &'static str {
    match restart {
        "no" => "none",
        "on-failure" => "on-failure",
        _ => "any",
    }
}

impl SwarmServiceSpec {
    /// Reads a `swarm_service.*` resource's attributes. `service` is the address name;
    /// `stack` names its secrets.
    pub fn from_attributes(
        stack: &str,
        service: &str,
        attributes: &Attributes,
    ) -> Result<SwarmServiceSpec, SwarmSpecError> {
        let service_name = attributes
            .get("service_name")
            .and_then(Value::as_text)
            .ok_or(SwarmSpecError::Missing {
                setting: "service_name",
            })?
            .to_string();
        // The task is read as a container named like the service; tmpfs sizes are ours.
        let mut task_attributes = attributes.clone();
        task_attributes.insert("container_name".into(), Value::text(service_name.clone()));
        let tmpfs_value = task_attributes.remove("tmpfs");
        let configs = mounted_files(CONFIGS, task_attributes.remove(CONFIGS).as_ref())?;
        let secret_files =
            mounted_files(SECRET_FILES, task_attributes.remove(SECRET_FILES).as_ref())?;
        for (attribute, files) in [(CONFIGS, &configs), (SECRET_FILES, &secret_files)] {
            for file in files {
                if let Some(why) = invalid_name(&file.name) {
                    return Err(MountedFileError {
                        attribute,
                        target: file.target.clone(),
                        why: format!("the Swarm object's name `{}` is refused: {why}", file.name),
                    }
                    .into());
                }
            }
        }
        let task = ServiceSpec::from_attributes(service, &task_attributes)?;
        let mut secrets = Vec::new();
        for (key, value) in &task.env {
            let EnvValue::Secret(value) = value else {
                continue;
            };
            let file_key = file_variable(key);
            if task.env.contains_key(&file_key) {
                return Err(SwarmSpecError::FileVariableTaken {
                    key: key.clone(),
                    file_key,
                });
            }
            let name = secret_name(stack, service, key, value.digest());
            if let Some(why) = invalid_name(&name) {
                return Err(SwarmSpecError::SecretName {
                    key: key.clone(),
                    name,
                    why,
                });
            }
            secrets.push(SecretFile {
                variable: key.clone(),
                name,
                value: value.clone(),
            });
        }
        let mut tmpfs = BTreeMap::new();
        if let Some(entries) = tmpfs_value.as_ref().and_then(Value::as_map) {
            for (path, size) in entries {
                tmpfs.insert(path.clone(), size.as_integer().unwrap_or(0));
            }
        }
        let placement = attributes.get("placement").and_then(Value::as_map);
        let placement_list = |name: &'static str| -> Result<Vec<String>, SpecError> {
            match placement.and_then(|map| map.get(name)) {
                None => Ok(Vec::new()),
                Some(value) => text_list(value, name),
            }
        };
        let endpoint_mode = attributes
            .get("endpoint_mode")
            .and_then(Value::as_text)
            .unwrap_or("vip")
            .to_string();
        if !matches!(endpoint_mode.as_str(), "vip" | "dnsrr") {
            return Err(SwarmSpecError::NotOneOf {
                setting: "endpoint_mode",
                value: endpoint_mode,
                expected: "`vip` and `dnsrr`",
            });
        }
        let update = attributes.get("update").and_then(Value::as_map);
        let update_text = |name: &str, default: &str| {
            update
                .and_then(|map| map.get(name))
                .and_then(Value::as_text)
                .unwrap_or(default)
                .to_string()
        };
        let update_integer = |name: &str, default: i64| {
            update
                .and_then(|map| map.get(name))
                .and_then(Value::as_integer)
                .unwrap_or(default)
        };
        let update = UpdatePolicy {
            parallelism: update_integer("parallelism", 1),
            order: update_text("order", "start-first"),
            failure_action: update_text("failure_action", "rollback"),
            monitor_milliseconds: update_integer("monitor_milliseconds", 5_000),
        };
        if !matches!(update.order.as_str(), "start-first" | "stop-first") {
            return Err(SwarmSpecError::NotOneOf {
                setting: "update.order",
                value: update.order,
                expected: "`start-first` and `stop-first`",
            });
        }
        if !matches!(update.failure_action.as_str(), "rollback" | "pause") {
            return Err(SwarmSpecError::NotOneOf {
                setting: "update.failure_action",
                value: update.failure_action,
                expected: "`rollback` and `pause`",
            });
        }
        Ok(SwarmServiceSpec {
            task,
            service_name,
            replicas: attributes
                .get("replicas")
                .and_then(Value::as_integer)
                .unwrap_or(1),
            constraints: placement_list("constraints")?,
            spread: placement_list("spread")?,
            endpoint_mode,
            update,
            tmpfs,
            secrets,
            configs,
            secret_files,
        })
    }

    /// The `ServiceSpec` body for a service named `name` (the service's own name, or its
    /// successor's during a switch), carrying `labels` so refresh finds it. `ids` maps
    /// the name of each of [`Self::secrets`] and [`Self::configs`] to its id (they exist
    /// first).
    pub fn body(
        &self,
        name: &str,
        labels: &Labels,
        ids: &MountedObjectIds,
    ) -> Result<Json, SwarmSpecError> {
        let task = &self.task;
        // A secret's value never: the variable naming its file instead.
        let mut env: BTreeMap<String, String> = task
            .env
            .iter()
            .filter_map(|(key, value)| match value {
                EnvValue::Plain(text) => Some((key.clone(), text.clone())),
                EnvValue::Secret(_) => None,
            })
            .collect();
        let mut secret_references = Vec::new();
        for file in &self.secrets {
            let id =
                ids.secrets
                    .get(&file.name)
                    .ok_or_else(|| SwarmSpecError::SecretNotCreated {
                        name: file.name.clone(),
                    })?;
            env.insert(file.file_variable(), file.path());
            secret_references.push(file.reference(id));
        }
        for file in &self.secret_files {
            let id =
                ids.secrets
                    .get(&file.name)
                    .ok_or_else(|| SwarmSpecError::SecretNotCreated {
                        name: file.name.clone(),
                    })?;
            secret_references.push(file.reference(id));
        }
        let env: Vec<String> = env
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        let mut mounts: Vec<Json> = task
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
        for (path, size) in &self.tmpfs {
            let mut mount = json!({ "Type": "tmpfs", "Target": path });
            if *size > 0 {
                mount["TmpfsOptions"] = json!({ "SizeBytes": size });
            }
            mounts.push(mount);
        }
        let mut container = json!({
            "Image": task.image,
            "Env": env,
            "Mounts": mounts,
            "ReadOnly": task.read_only,
            "StopGracePeriod": seconds_to_nanos(task.stop_grace_seconds as f64),
        });
        // Swarm's `Command` is the image's entrypoint, its `Args` the command.
        if let Some(entrypoint) = &task.entrypoint {
            container["Command"] = json!(entrypoint);
        }
        if let Some(command) = &task.command {
            container["Args"] = json!(command);
        }
        if let Some(user) = &task.user {
            container["User"] = json!(user);
        }
        if !secret_references.is_empty() {
            container["Secrets"] = json!(secret_references);
        }
        if !self.configs.is_empty() {
            let mut config_references = Vec::new();
            for config in &self.configs {
                let id = ids.configs.get(&config.name).ok_or_else(|| {
                    SwarmSpecError::ConfigNotCreated {
                        name: config.name.clone(),
                    }
                })?;
                config_references.push(config.reference(id));
            }
            container["Configs"] = json!(config_references);
        }
        if !task.hardening.cap_drop.is_empty() {
            container["CapabilityDrop"] = json!(task.hardening.cap_drop);
        }
        if !task.hardening.cap_add.is_empty() {
            container["CapabilityAdd"] = json!(task.hardening.cap_add);
        }
        if let Some(health) = &task.health {
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
            container["Healthcheck"] = check;
        }
        let mut limits = serde_json::Map::new();
        if let Some(memory) = task.memory {
            limits.insert("MemoryBytes".into(), json!(memory));
        }
        if let Some(cpus) = &task.cpus {
            limits.insert("NanoCPUs".into(), json!(nano_cpus(cpus)?));
        }
        if let Some(pids) = task.hardening.pids_limit {
            limits.insert("Pids".into(), json!(pids));
        }
        let networks: Vec<Json> = task
            .networks
            .iter()
            .map(|(network, aliases)| json!({ "Target": network, "Aliases": aliases }))
            .collect();
        let preferences: Vec<Json> = self
            .spread
            .iter()
            .map(|label| json!({ "Spread": { "SpreadDescriptor": label } }))
            .collect();
        let update = json!({
            "Parallelism": self.update.parallelism,
            "Order": self.update.order,
            "FailureAction": self.update.failure_action,
            "Monitor": self.update.monitor_milliseconds * 1_000_000,
        });
        Ok(json!({
            "Name": name,
            "Labels": labels.to_json(),
            "TaskTemplate": {
                "ContainerSpec": container,
                "Resources": { "Limits": limits },
                "RestartPolicy": { "Condition": restart_condition(&task.restart) },
                "Placement": { "Constraints": self.constraints, "Preferences": preferences },
                "Networks": networks,
            },
            "Mode": { "Replicated": { "Replicas": self.replicas } },
            "UpdateConfig": update,
            "RollbackConfig": {
                "Parallelism": self.update.parallelism,
                "Order": self.update.order,
            },
            "EndpointSpec": { "Mode": self.endpoint_mode },
        }))
    }
}

/// Checks a desired swarm service before planning, so a bad one fails `plan`, not
/// halfway through apply. Values known only after apply (the image of a build, an env
/// value another resource produces) pass for now.
pub fn check_before_planning(
    stack: &str,
    desired: &stackctl_provider::Resource,
) -> Result<(), stackctl_provider::ProviderError> {
    let mut checked = desired.attributes.clone();
    if !matches!(checked.get("image"), Some(Value::Text(_))) {
        checked.insert("image".into(), Value::text("(known after apply)"));
    }
    match SwarmServiceSpec::from_attributes(stack, desired.address.name(), &checked) {
        Ok(_) | Err(SwarmSpecError::Task(SpecError::EnvNotKnownYet { .. })) => Ok(()),
        Err(error @ SwarmSpecError::FileVariableTaken { .. }) => Err(stackctl_provider::ProviderError::Failed {
            message: format!("`{}`: {error}", desired.address),
            detail: None,
            hint: Some("on a swarm, a secret `VAR` reaches the task as the file `/run/secrets/VAR` named by `VAR_FILE`: remove the `_FILE` variable from env".into()),
        }),
        Err(error @ SwarmSpecError::SecretName { .. }) => Err(stackctl_provider::ProviderError::Failed {
            message: format!("`{}`: {error}", desired.address),
            detail: None,
            hint: Some("the name is `<stack>_<service>_<VAR>_<8 hex>`: a shorter stack, service or variable name fits".into()),
        }),
        Err(error) => Err(stackctl_provider::ProviderError::failed(format!(
            "`{}`: {error}",
            desired.address
        ))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use stackctl_provider::Secret;

    use super::*;

    /// A routed web service of two dnsrr replicas, as lowering writes it on a swarm.
    pub(crate) fn web_attributes() -> Attributes {
        let mut attributes = Attributes::new();
        let mut put = |name: &str, value: Value| {
            attributes.insert(name.to_string(), value);
        };
        let texts =
            |items: &[&str]| Value::List(items.iter().map(|item| Value::text(*item)).collect());
        put("service_name", Value::text("shop-web"));
        put("image", Value::text("web:1"));
        put(
            "env",
            Value::Map(BTreeMap::from([("MODE".into(), Value::text("fast"))])),
        );
        put("command", texts(&["serve", "--port", "8080"]));
        put(
            "networks",
            Value::Map(BTreeMap::from([("shop_backend".into(), texts(&["web"]))])),
        );
        put("volumes", Value::List(Vec::new()));
        put("user", Value::text("10001"));
        put("memory", Value::Integer(256 * 1024 * 1024));
        put("cpus", Value::text("0.5"));
        put("restart", Value::text("unless-stopped"));
        put("read_only", Value::Bool(true));
        put("port", Value::Integer(8080));
        put("cap_drop", texts(&["ALL"]));
        put("cap_add", texts(&["NET_BIND_SERVICE"]));
        put("pids_limit", Value::Integer(256));
        put(
            "tmpfs",
            Value::Map(BTreeMap::from([(
                "/tmp".into(),
                Value::Integer(67_108_864),
            )])),
        );
        put("stop_grace_seconds", Value::Integer(20));
        put("replicas", Value::Integer(2));
        put("endpoint_mode", Value::text("dnsrr"));
        put(
            "placement",
            Value::Map(BTreeMap::from([
                ("constraints".into(), texts(&["node.role == manager"])),
                ("spread".into(), texts(&["node.labels.zone"])),
            ])),
        );
        put(
            "update",
            Value::Map(BTreeMap::from([
                ("parallelism".into(), Value::Integer(1)),
                ("order".into(), Value::text("start-first")),
                ("failure_action".into(), Value::text("rollback")),
                ("monitor_milliseconds".into(), Value::Integer(5_000)),
            ])),
        );
        attributes
    }

    fn labels() -> Labels {
        Labels {
            stack: "shop".into(),
            resource: "swarm_service.web".into(),
            hash: "sha256:abc".into(),
        }
    }

    #[test]
    fn the_body_is_a_service_spec_of_api_1_41() {
        let spec = SwarmServiceSpec::from_attributes("shop", "web", &web_attributes()).unwrap();
        let body = spec
            .body("shop-web", &labels(), &MountedObjectIds::default())
            .unwrap();
        assert_eq!(
            body,
            json!({
                "Name": "shop-web",
                "Labels": {
                    "stackctl.stack": "shop",
                    "stackctl.resource": "swarm_service.web",
                    "stackctl.hash": "sha256:abc",
                },
                "TaskTemplate": {
                    "ContainerSpec": {
                        "Image": "web:1",
                        "Env": ["MODE=fast"],
                        "Args": ["serve", "--port", "8080"],
                        "Mounts": [{
                            "Type": "tmpfs",
                            "Target": "/tmp",
                            "TmpfsOptions": { "SizeBytes": 67_108_864 },
                        }],
                        "ReadOnly": true,
                        "User": "10001",
                        "StopGracePeriod": 20_000_000_000_i64,
                        "CapabilityDrop": ["ALL"],
                        "CapabilityAdd": ["NET_BIND_SERVICE"],
                    },
                    "Resources": { "Limits": {
                        "MemoryBytes": 268_435_456,
                        "NanoCPUs": 500_000_000,
                        "Pids": 256,
                    } },
                    "RestartPolicy": { "Condition": "any" },
                    "Placement": {
                        "Constraints": ["node.role == manager"],
                        "Preferences": [{ "Spread": { "SpreadDescriptor": "node.labels.zone" } }],
                    },
                    "Networks": [{ "Target": "shop_backend", "Aliases": ["web"] }],
                },
                "Mode": { "Replicated": { "Replicas": 2 } },
                "UpdateConfig": {
                    "Parallelism": 1,
                    "Order": "start-first",
                    "FailureAction": "rollback",
                    "Monitor": 5_000_000_000_i64,
                },
                "RollbackConfig": { "Parallelism": 1, "Order": "start-first" },
                "EndpointSpec": { "Mode": "dnsrr" },
            })
        );
    }

    fn with_secret_env(plaintext: &str) -> Attributes {
        let mut attributes = web_attributes();
        attributes.insert(
            "env".into(),
            Value::Map(BTreeMap::from([
                ("MODE".into(), Value::text("fast")),
                (
                    "DB_PASSWORD".into(),
                    Value::Secret(Secret::new(plaintext, "salt")),
                ),
            ])),
        );
        attributes
    }

    #[test]
    fn a_secret_in_env_is_a_swarm_secret_mounted_as_a_file_its_env_names() {
        let spec =
            SwarmServiceSpec::from_attributes("shop", "web", &with_secret_env("hunter2")).unwrap();
        let digest = Secret::digest_of("hunter2", "salt");
        let name = format!("shop_web_DB_PASSWORD_{}", &digest[7..15]);
        assert_eq!(spec.secrets.len(), 1);
        assert_eq!(spec.secrets[0].variable, "DB_PASSWORD");
        assert_eq!(spec.secrets[0].name, name);
        let ids = MountedObjectIds {
            secrets: BTreeMap::from([(name.clone(), "secret-id-1".to_string())]),
            ..MountedObjectIds::default()
        };
        let body = spec.body("shop-web", &labels(), &ids).unwrap();
        let container = &body["TaskTemplate"]["ContainerSpec"];
        assert_eq!(
            container["Env"],
            json!(["DB_PASSWORD_FILE=/run/secrets/DB_PASSWORD", "MODE=fast"])
        );
        assert_eq!(
            container["Secrets"],
            json!([{
                "File": { "Name": "/run/secrets/DB_PASSWORD", "UID": "0", "GID": "0", "Mode": 0o444 },
                "SecretID": "secret-id-1",
                "SecretName": name,
            }])
        );
        assert!(!body.to_string().contains("hunter2"), "{body}");
        // The secrets are made before the body: one missing is named, not left out.
        assert_eq!(
            spec.body("shop-web", &labels(), &MountedObjectIds::default())
                .unwrap_err(),
            SwarmSpecError::SecretNotCreated { name }
        );
        // A changed value is another secret.
        let changed =
            SwarmServiceSpec::from_attributes("shop", "web", &with_secret_env("hunter3")).unwrap();
        assert_ne!(changed.secrets[0].name, spec.secrets[0].name);
    }

    #[test]
    fn a_file_is_a_swarm_config_mounted_at_its_path_and_not_a_bind_mount() {
        let mut attributes = web_attributes();
        attributes.insert(
            "configs".into(),
            Value::Map(BTreeMap::from([(
                "/etc/web/app.conf".to_string(),
                Value::Map(BTreeMap::from([
                    ("name".to_string(), Value::text("shop_web_app_1a2b3c4d")),
                    ("owner".to_string(), Value::text("0:0")),
                    ("mode".to_string(), Value::text("0444")),
                ])),
            )])),
        );
        let spec = SwarmServiceSpec::from_attributes("shop", "web", &attributes).unwrap();
        let ids = MountedObjectIds {
            configs: BTreeMap::from([("shop_web_app_1a2b3c4d".to_string(), "cid".to_string())]),
            ..MountedObjectIds::default()
        };
        let body = spec.body("shop-web", &labels(), &ids).unwrap();
        let container = &body["TaskTemplate"]["ContainerSpec"];
        assert_eq!(
            container["Configs"],
            json!([{
                "File": { "Name": "/etc/web/app.conf", "UID": "0", "GID": "0", "Mode": 0o444 },
                "ConfigID": "cid",
                "ConfigName": "shop_web_app_1a2b3c4d",
            }])
        );
        // Only the tmpfs: the file is not a mount of the node's host.
        assert_eq!(container["Mounts"].as_array().unwrap().len(), 1);
        assert_eq!(
            spec.body("shop-web", &labels(), &MountedObjectIds::default())
                .unwrap_err(),
            SwarmSpecError::ConfigNotCreated {
                name: "shop_web_app_1a2b3c4d".into()
            }
        );
        // A name Swarm would refuse fails the plan, naming the path.
        if let Some(Value::Map(configs)) = attributes.get_mut("configs") {
            if let Some(Value::Map(entry)) = configs.get_mut("/etc/web/app.conf") {
                entry.insert("name".into(), Value::text("a/b_1a2b3c4d"));
            }
        }
        let error = SwarmServiceSpec::from_attributes("shop", "web", &attributes).unwrap_err();
        assert!(
            error.to_string().starts_with(
                "`configs./etc/web/app.conf`: the Swarm object's name `a/b_1a2b3c4d` is refused"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_secrets_file_variable_set_in_env_too_or_a_name_too_long_is_refused() {
        let mut attributes = with_secret_env("hunter2");
        if let Some(Value::Map(env)) = attributes.get_mut("env") {
            env.insert("DB_PASSWORD_FILE".into(), Value::text("/elsewhere"));
        }
        let error = SwarmServiceSpec::from_attributes("shop", "web", &attributes).unwrap_err();
        assert_eq!(
            error.to_string(),
            "env `DB_PASSWORD` is a secret, mounted as a file that `DB_PASSWORD_FILE` names, and env sets `DB_PASSWORD_FILE` too"
        );
        let long_stack = "a-stack-whose-name-is-long-enough-to-matter";
        let error =
            SwarmServiceSpec::from_attributes(long_stack, "web", &with_secret_env("hunter2"))
                .unwrap_err();
        assert!(
            matches!(&error, SwarmSpecError::SecretName { key, .. } if key == "DB_PASSWORD"),
            "{error}"
        );
        assert!(!error.to_string().contains("hunter2"));
    }

    #[test]
    fn a_secret_passes_the_check_before_planning_and_a_clash_fails_it_with_a_hint() {
        let resource = |attributes: Attributes| {
            let mut resource = stackctl_provider::Resource::new(
                stackctl_provider::Address::new("swarm_service", "web"),
                "docker",
            );
            resource.attributes = attributes;
            resource
        };
        assert!(check_before_planning("shop", &resource(with_secret_env("hunter2"))).is_ok());
        let mut clashing = with_secret_env("hunter2");
        if let Some(Value::Map(env)) = clashing.get_mut("env") {
            env.insert("DB_PASSWORD_FILE".into(), Value::text("/elsewhere"));
        }
        let Err(stackctl_provider::ProviderError::Failed { message, hint, .. }) =
            check_before_planning("shop", &resource(clashing))
        else {
            panic!("a clash passed");
        };
        assert!(
            message.starts_with("`swarm_service.web`: env `DB_PASSWORD` is a secret"),
            "{message}"
        );
        assert!(hint.unwrap().contains("remove the `_FILE` variable"));
    }

    #[test]
    fn unknown_modes_are_named() {
        let mut attributes = web_attributes();
        attributes.insert("endpoint_mode".into(), Value::text("ipvs"));
        assert_eq!(
            SwarmServiceSpec::from_attributes("shop", "web", &attributes)
                .unwrap_err()
                .to_string(),
            "`endpoint_mode` = `ipvs` is not one of `vip` and `dnsrr`"
        );
    }

    #[test]
    fn restart_policies_become_swarm_conditions() {
        assert_eq!(restart_condition("unless-stopped"), "any");
        assert_eq!(restart_condition("always"), "any");
        assert_eq!(restart_condition("on-failure"), "on-failure");
        assert_eq!(restart_condition("no"), "none");
    }
}
