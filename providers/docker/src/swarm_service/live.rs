//! A swarm service read back as attributes: its spec (`GET /services`) and its tasks
//! (`GET /tasks`), in the resource's shape so the planner compares like with like.
//!
//! Pure. What drift means for a swarm service:
//!
//! - its spec changed by hand (`docker service scale`, `docker service update --env-add`,
//!   an image swapped): the attribute shows the live value (`replicas`, `env`, `image`);
//! - a task is missing (killed, its node down, not placeable): `running_replicas` counts
//!   the tasks that run now, so fewer than asked shows as `running_replicas: 2 → 1` while
//!   Swarm has not yet replaced it (or cannot);
//! - where each task runs and in which state is `tasks` (computed, kept in state and
//!   shown by `ps`, never a reason to act by itself).
//!
//! The `[files]` entries mounted as Swarm configs read back as `configs` (path → the
//! config's name, owner and mode), those mounted as Swarm secrets as `secret_files`: a
//! service that mounts another config or secret than recorded, or none, shows.
//!
//! Secret values never come back: an env key the resource declares secret is hashed
//! with the state's salt, like a container's. A secret mounted as a file
//! (`VAR_FILE=/run/secrets/VAR` and a Swarm secret at that path) reads back as `VAR`, a
//! secret whose digest is the recorded one when the Swarm secret's name carries its first
//! 8 hex digits, and another one (a changed secret) when it does not.

use std::collections::BTreeMap;

use serde_json::Value as Json;
use stackctl_provider::{Attributes, Secret, Value};

use super::spec::restart_condition;
use super::{mounted_files, secrets};

/// Computed attributes: facts of the live service, never a reason to act.
pub const SERVICE_ID: &str = "service_id";
pub const LIVE_NAME: &str = "service";
pub const TASKS: &str = "tasks";
/// A routed service's servers: recorded as given to the edge, read live from the tasks
/// running now, so a task Swarm moved (a new address the edge does not know) is drift.
pub const BACKEND_SERVERS: &str = "backend_servers";
/// Counted from the tasks: a missing one is drift.
pub const RUNNING_REPLICAS: &str = "running_replicas";

/// What one swarm service and its tasks say. `networks` maps network ids to names (a
/// service's spec names its networks by id once created), `nodes` node ids to host names.
pub fn live_swarm_service_attributes(
    service: &Json,
    tasks: &[&Json],
    networks: &BTreeMap<String, String>,
    nodes: &BTreeMap<String, String>,
    reference: Option<&Attributes>,
    salt: &str,
) -> Attributes {
    let mut attributes = reference.cloned().unwrap_or_default();
    // The backend file is read from the host, not the daemon (`backend_file.rs`): never
    // the recorded copy echoed back as live.
    for computed in [
        SERVICE_ID,
        LIVE_NAME,
        TASKS,
        RUNNING_REPLICAS,
        BACKEND_SERVERS,
        crate::backend_file::BACKEND_FILE,
    ] {
        attributes.remove(computed);
    }
    let spec = &service["Spec"];
    let template = &spec["TaskTemplate"];
    let container = &template["ContainerSpec"];
    let limits = &template["Resources"]["Limits"];

    attributes.insert(
        SERVICE_ID.into(),
        Value::text(service["ID"].as_str().unwrap_or("")),
    );
    attributes.insert(
        LIVE_NAME.into(),
        Value::text(spec["Name"].as_str().unwrap_or("")),
    );
    if let Some(image) = container["Image"].as_str() {
        // Swarm pins the digest it resolved (`web:1@sha256:…`); stack.toml names the tag.
        let declared_digest = reference
            .and_then(|attributes| attributes.get("image"))
            .and_then(Value::as_text)
            .is_some_and(|image| image.contains('@'));
        let shown = if declared_digest {
            image
        } else {
            image.split('@').next().unwrap_or(image)
        };
        attributes.insert("image".into(), Value::text(shown));
    }
    let texts = |json: &Json| -> Option<Vec<String>> {
        json.as_array().map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_string))
                .collect()
        })
    };
    let text_value = |items: Vec<String>| Value::List(items.into_iter().map(Value::Text).collect());
    let put_optional = |attributes: &mut Attributes, name: &str, value: Option<Value>| match value {
        Some(value) => {
            attributes.insert(name.to_string(), value);
        }
        None => {
            attributes.remove(name);
        }
    };
    put_optional(
        &mut attributes,
        "command",
        texts(&container["Args"]).map(text_value),
    );
    put_optional(
        &mut attributes,
        "entrypoint",
        texts(&container["Command"]).map(text_value),
    );
    put_optional(
        &mut attributes,
        "user",
        container["User"]
            .as_str()
            .filter(|user| !user.is_empty())
            .map(Value::text),
    );
    attributes.insert(
        "read_only".into(),
        Value::Bool(container["ReadOnly"].as_bool().unwrap_or(false)),
    );

    // Env: plain only when the resource says so; anything else could be a secret.
    let reference_env = reference
        .and_then(|attributes| attributes.get("env"))
        .and_then(Value::as_map);
    // Mounted secrets: file path → the Swarm secret's name.
    let mounted: BTreeMap<&str, &str> = container["Secrets"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|reference| {
            Some((
                reference["File"]["Name"].as_str()?,
                reference["SecretName"].as_str()?,
            ))
        })
        .collect();
    let mut env = BTreeMap::new();
    for entry in container["Env"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let Some((key, value)) = entry.as_str().and_then(|entry| entry.split_once('=')) else {
            continue;
        };
        if let Some((variable, secret)) = mounted_secret(key, value, &mounted, reference_env, salt)
        {
            env.insert(variable, secret);
            continue;
        }
        let live = match reference_env.and_then(|entries| entries.get(key)) {
            Some(Value::Integer(number)) if number.to_string() == value => Value::Integer(*number),
            Some(Value::Bool(flag)) if flag.to_string() == value => Value::Bool(*flag),
            Some(Value::Text(_) | Value::Integer(_) | Value::Bool(_)) => Value::text(value),
            _ => Value::Secret(Secret::from_digest(Secret::digest_of(value, salt))),
        };
        env.insert(key.to_string(), live);
    }
    attributes.insert("env".into(), Value::Map(env));

    let mut volumes = Vec::new();
    let mut tmpfs = BTreeMap::new();
    for mount in container["Mounts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let kind = mount["Type"].as_str().unwrap_or("");
        let target = mount["Target"].as_str().unwrap_or("").to_string();
        if kind == "tmpfs" {
            tmpfs.insert(
                target,
                Value::Integer(mount["TmpfsOptions"]["SizeBytes"].as_i64().unwrap_or(0)),
            );
            continue;
        }
        volumes.push(Value::Map(BTreeMap::from([
            ("kind".to_string(), Value::text(kind)),
            (
                "source".to_string(),
                Value::text(mount["Source"].as_str().unwrap_or("")),
            ),
            ("target".to_string(), Value::text(target)),
            (
                "read_only".to_string(),
                Value::Bool(mount["ReadOnly"].as_bool().unwrap_or(false)),
            ),
        ])));
    }
    attributes.insert("volumes".into(), Value::List(volumes));
    // Only when mounted or declared: a service with none keeps the shape it always had.
    let configs = mounted_files::live_configs(container);
    if !configs.is_empty() || attributes.contains_key(mounted_files::CONFIGS) {
        attributes.insert(mounted_files::CONFIGS.into(), Value::Map(configs));
    }
    // The env's secrets are the ones its `VAR_FILE` variables name; the others are files.
    let env_secret_paths: Vec<String> = env_file_paths(container, reference_env);
    let secret_files = mounted_files::live_secret_files(
        container,
        &env_secret_paths,
        reference.and_then(|attributes| attributes.get(mounted_files::SECRET_FILES)),
        salt,
    );
    if !secret_files.is_empty() || attributes.contains_key(mounted_files::SECRET_FILES) {
        attributes.insert(mounted_files::SECRET_FILES.into(), Value::Map(secret_files));
    }
    if !tmpfs.is_empty() || attributes.contains_key("tmpfs") {
        attributes.insert("tmpfs".into(), Value::Map(tmpfs));
    }

    put_optional(
        &mut attributes,
        "memory",
        limits["MemoryBytes"]
            .as_i64()
            .filter(|bytes| *bytes > 0)
            .map(Value::Integer),
    );
    put_optional(
        &mut attributes,
        "cpus",
        limits["NanoCPUs"]
            .as_i64()
            .filter(|nanos| *nanos > 0)
            .map(|nanos| Value::text(format!("{}", nanos as f64 / 1e9))),
    );
    let pids = limits["Pids"].as_i64().filter(|pids| *pids > 0);
    if pids.is_some() || attributes.contains_key("pids_limit") {
        put_optional(&mut attributes, "pids_limit", pids.map(Value::Integer));
    }
    for (attribute, field) in [("cap_drop", "CapabilityDrop"), ("cap_add", "CapabilityAdd")] {
        let names: Vec<String> = texts(&container[field])
            .unwrap_or_default()
            .iter()
            .map(|name| capability(name))
            .collect();
        if !names.is_empty() || attributes.contains_key(attribute) {
            attributes.insert(attribute.to_string(), text_value(names));
        }
    }
    let grace = container["StopGracePeriod"]
        .as_i64()
        .map(|nanos| (nanos + 999_999_999) / 1_000_000_000)
        .unwrap_or(crate::spec::DOCKER_STOP_GRACE_SECONDS);
    if attributes.contains_key("stop_grace_seconds")
        || grace != crate::spec::DOCKER_STOP_GRACE_SECONDS
    {
        attributes.insert("stop_grace_seconds".into(), Value::Integer(grace));
    }
    let condition = template["RestartPolicy"]["Condition"]
        .as_str()
        .unwrap_or("any");
    let declared_restart = attributes
        .get("restart")
        .and_then(Value::as_text)
        .unwrap_or("unless-stopped")
        .to_string();
    if restart_condition(&declared_restart) != condition {
        attributes.insert("restart".into(), Value::text(condition));
    }
    read_health(&mut attributes, &container["Healthcheck"]);

    let mut attached = BTreeMap::new();
    for network in template["Networks"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let target = network["Target"].as_str().unwrap_or("");
        let name = networks
            .get(target)
            .cloned()
            .unwrap_or_else(|| target.to_string());
        attached.insert(
            name,
            text_value(texts(&network["Aliases"]).unwrap_or_default()),
        );
    }
    attributes.insert("networks".into(), Value::Map(attached));

    attributes.insert(
        "replicas".into(),
        Value::Integer(spec["Mode"]["Replicated"]["Replicas"].as_i64().unwrap_or(0)),
    );
    let placement = &template["Placement"];
    let spread: Vec<String> = placement["Preferences"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|preference| preference["Spread"]["SpreadDescriptor"].as_str())
        .map(str::to_string)
        .collect();
    attributes.insert(
        "placement".into(),
        Value::Map(BTreeMap::from([
            (
                "constraints".to_string(),
                text_value(texts(&placement["Constraints"]).unwrap_or_default()),
            ),
            ("spread".to_string(), text_value(spread)),
        ])),
    );
    attributes.insert(
        "endpoint_mode".into(),
        Value::text(spec["EndpointSpec"]["Mode"].as_str().unwrap_or("vip")),
    );
    let update = &spec["UpdateConfig"];
    attributes.insert(
        "update".into(),
        Value::Map(BTreeMap::from([
            (
                "parallelism".to_string(),
                Value::Integer(update["Parallelism"].as_i64().unwrap_or(0)),
            ),
            (
                "order".to_string(),
                Value::text(update["Order"].as_str().unwrap_or("stop-first")),
            ),
            (
                "failure_action".to_string(),
                Value::text(update["FailureAction"].as_str().unwrap_or("pause")),
            ),
            (
                "monitor_milliseconds".to_string(),
                Value::Integer(update["Monitor"].as_i64().unwrap_or(0) / 1_000_000),
            ),
        ])),
    );

    if attributes.contains_key("route_backend") {
        let owned: Vec<Json> = tasks.iter().map(|task| (*task).clone()).collect();
        let servers = crate::spec::ServiceSpec::from_attributes("live", &{
            let mut task_attributes = attributes.clone();
            task_attributes.insert("container_name".into(), Value::text("live"));
            task_attributes.remove("tmpfs");
            task_attributes.remove("env");
            task_attributes
        })
        .map(|task| super::apply::task_urls(&owned, &task))
        .unwrap_or_default();
        attributes.insert(
            BACKEND_SERVERS.into(),
            Value::List(servers.into_iter().map(Value::Text).collect()),
        );
    } else {
        attributes.remove(BACKEND_SERVERS);
    }
    let (running, described) = task_states(tasks, nodes);
    attributes.insert(RUNNING_REPLICAS.into(), Value::Integer(running));
    attributes.insert(TASKS.into(), Value::List(described));
    attributes
}

/// The paths the env's secrets are mounted at: those its `VAR_FILE=/run/secrets/VAR`
/// variables name that stand for a secret env value (see [`env_secret_variable`]).
fn env_file_paths(
    container: &Json,
    reference_env: Option<&BTreeMap<String, Value>>,
) -> Vec<String> {
    container["Env"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|entry| entry.as_str()?.split_once('='))
        .filter(|(key, value)| env_secret_variable(key, value, reference_env).is_some())
        .map(|(_, value)| value.to_string())
        .collect()
}

/// `VAR` when the env entry `key=value` is `VAR_FILE=/run/secrets/VAR` standing for the
/// resource's secret env value `VAR`: the resource (desired or recorded) has `VAR` as a
/// secret and no plain `VAR_FILE` of its own. Any other such entry is an env value like
/// the rest (an app's own `_FILE` variable, set in stack.toml), and a secret mounted at
/// its path is a `[files]` one: read as the env's, it would be drift no apply removes.
fn env_secret_variable<'a>(
    key: &'a str,
    value: &str,
    reference_env: Option<&BTreeMap<String, Value>>,
) -> Option<&'a str> {
    let variable = key.strip_suffix(secrets::FILE_SUFFIX)?;
    if value != format!("{}/{variable}", secrets::SECRETS_DIRECTORY) {
        return None;
    }
    let entries = reference_env?;
    let secret_value = matches!(entries.get(variable), Some(Value::Secret(_)));
    let plain_file_variable = entries.contains_key(key);
    (secret_value && !plain_file_variable).then_some(variable)
}

/// `VAR_FILE=/run/secrets/VAR` with a Swarm secret mounted there: `VAR` and the secret it
/// holds, as far as the Swarm secret's name tells (see the module's essay).
fn mounted_secret(
    key: &str,
    value: &str,
    mounted: &BTreeMap<&str, &str>,
    reference_env: Option<&BTreeMap<String, Value>>,
    salt: &str,
) -> Option<(String, Value)> {
    let variable = env_secret_variable(key, value, reference_env)?;
    let name = mounted.get(value)?;
    let recorded = match reference_env.and_then(|entries| entries.get(variable)) {
        Some(Value::Secret(secret))
            if name.ends_with(&format!("_{}", secrets::digest_prefix(secret.digest()))) =>
        {
            Some(Secret::from_digest(secret.digest()))
        }
        _ => None,
    };
    // Not the recorded value (or none was recorded): a digest of the secret's name, which
    // no value's digest equals, so the plan shows a changed secret.
    let live = recorded.unwrap_or_else(|| {
        Secret::from_digest(Secret::digest_of(&format!("swarm secret {name}"), salt))
    });
    Some((variable.to_string(), Value::Secret(live)))
}

/// How many tasks run now (Swarm wants them running and they are), and each task that
/// Swarm still wants running, as `{ slot, node, state, error }`, by slot.
pub fn task_states(tasks: &[&Json], nodes: &BTreeMap<String, String>) -> (i64, Vec<Value>) {
    let mut wanted: Vec<&&Json> = tasks
        .iter()
        .filter(|task| task["DesiredState"] == "running")
        .collect();
    wanted.sort_by_key(|task| {
        (
            task["Slot"].as_i64().unwrap_or(0),
            task["ID"].as_str().unwrap_or("").to_string(),
        )
    });
    let running = wanted
        .iter()
        .filter(|task| task["Status"]["State"] == "running")
        .count() as i64;
    let described = wanted
        .iter()
        .map(|task| {
            let node_id = task["NodeID"].as_str().unwrap_or("");
            let node = nodes.get(node_id).map(String::as_str).unwrap_or(node_id);
            let mut entry = BTreeMap::from([
                (
                    "slot".to_string(),
                    Value::Integer(task["Slot"].as_i64().unwrap_or(0)),
                ),
                ("node".to_string(), Value::text(node)),
                (
                    "state".to_string(),
                    Value::text(task["Status"]["State"].as_str().unwrap_or("")),
                ),
            ]);
            if let Some(error) = task["Status"]["Err"]
                .as_str()
                .filter(|error| !error.is_empty())
            {
                entry.insert("error".to_string(), Value::text(error));
            }
            Value::Map(entry)
        })
        .collect();
    (running, described)
}

fn read_health(attributes: &mut Attributes, check: &Json) {
    let Some(test) = check["Test"].as_array() else {
        attributes.remove("health");
        return;
    };
    let seconds = |field: &str| Value::Integer(check[field].as_i64().unwrap_or(0) / 1_000_000_000);
    let test: Vec<Value> = test
        .iter()
        .filter_map(|part| part.as_str().map(Value::text))
        .collect();
    attributes.insert(
        "health".into(),
        Value::Map(BTreeMap::from([
            ("test".to_string(), Value::List(test)),
            ("interval_seconds".to_string(), seconds("Interval")),
            ("timeout_seconds".to_string(), seconds("Timeout")),
            (
                "retries".to_string(),
                Value::Integer(check["Retries"].as_i64().unwrap_or(0)),
            ),
            ("start_period_seconds".to_string(), seconds("StartPeriod")),
        ])),
    );
}

/// `CAP_NET_RAW` and `net_raw` are the same capability; attributes write `NET_RAW`.
pub(crate) fn capability(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    upper
        .strip_prefix("CAP_")
        .map(str::to_string)
        .unwrap_or(upper)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::spec::tests::web_attributes;
    use super::super::spec::SwarmServiceSpec;
    use super::*;
    use crate::api::Labels;

    /// A service as `GET /services` shows the spec sent: network names become ids, the
    /// image gets its digest.
    fn live_service(body: &Json) -> Json {
        let mut spec = body.clone();
        spec["TaskTemplate"]["ContainerSpec"]["Image"] = json!("web:1@sha256:0123");
        spec["TaskTemplate"]["Networks"][0]["Target"] = json!("n1d");
        json!({ "ID": "svc1", "Version": { "Index": 7 }, "Spec": spec })
    }

    fn task(slot: i64, node: &str, state: &str, desired: &str) -> Json {
        json!({
            "ID": format!("t{slot}{state}"),
            "Slot": slot,
            "NodeID": node,
            "DesiredState": desired,
            "Status": { "State": state, "Err": if state == "failed" { "task: non-zero exit (137)" } else { "" } },
        })
    }

    fn read(service: &Json, tasks: &[Json]) -> Attributes {
        let tasks: Vec<&Json> = tasks.iter().collect();
        live_swarm_service_attributes(
            service,
            &tasks,
            &BTreeMap::from([("n1d".to_string(), "shop_backend".to_string())]),
            &BTreeMap::from([("node1".to_string(), "web-1".to_string())]),
            Some(&web_attributes()),
            "salt",
        )
    }

    fn body() -> Json {
        let labels = Labels {
            stack: "shop".into(),
            resource: "swarm_service.web".into(),
            hash: "h".into(),
        };
        SwarmServiceSpec::from_attributes("shop", "web", &web_attributes())
            .unwrap()
            .body("shop-web", &labels, &Default::default())
            .unwrap()
    }

    /// The attributes drift compares: all but the computed ones.
    fn compared(attributes: &Attributes) -> Attributes {
        let mut attributes = attributes.clone();
        for computed in [SERVICE_ID, LIVE_NAME, TASKS, RUNNING_REPLICAS] {
            attributes.remove(computed);
        }
        attributes
    }

    #[test]
    fn a_service_read_back_as_it_was_sent_shows_no_drift() {
        let live = read(
            &live_service(&body()),
            &[
                task(1, "node1", "running", "running"),
                task(2, "node1", "running", "running"),
            ],
        );
        assert_eq!(compared(&live), web_attributes());
        assert_eq!(live[RUNNING_REPLICAS], Value::Integer(2));
        assert_eq!(live[LIVE_NAME], Value::text("shop-web"));
        assert_eq!(
            live[TASKS].as_list().unwrap()[0],
            Value::Map(BTreeMap::from([
                ("slot".to_string(), Value::Integer(1)),
                ("node".to_string(), Value::text("web-1")),
                ("state".to_string(), Value::text("running")),
            ]))
        );
    }

    #[test]
    fn a_hand_scale_a_changed_env_and_a_missing_task_show() {
        let mut service = live_service(&body());
        service["Spec"]["Mode"]["Replicated"]["Replicas"] = json!(3);
        service["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"] = json!(["MODE=slow", "EXTRA=x"]);
        let live = read(
            &service,
            &[
                task(1, "node1", "running", "running"),
                task(2, "node1", "failed", "shutdown"),
                task(2, "node1", "pending", "running"),
                task(3, "node1", "running", "running"),
            ],
        );
        assert_eq!(live["replicas"], Value::Integer(3));
        assert_eq!(live[RUNNING_REPLICAS], Value::Integer(2));
        let env = live["env"].as_map().unwrap();
        assert_eq!(env["MODE"], Value::text("slow"));
        // Not declared: could be a secret, so only its digest.
        assert!(matches!(env["EXTRA"], Value::Secret(_)));
        let states: Vec<String> = live[TASKS]
            .as_list()
            .unwrap()
            .iter()
            .map(|task| {
                task.as_map().unwrap()["state"]
                    .as_text()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(states, ["running", "pending", "running"]);
    }

    #[test]
    fn a_secret_mounted_as_a_file_reads_back_as_its_variable_and_a_changed_one_shows() {
        let secret = Secret::new("hunter2", "salt");
        let mut attributes = web_attributes();
        if let Some(Value::Map(env)) = attributes.get_mut("env") {
            env.insert("DB_PASSWORD".into(), Value::Secret(secret.clone()));
        }
        let spec = SwarmServiceSpec::from_attributes("shop", "web", &attributes).unwrap();
        let ids = super::super::spec::MountedObjectIds {
            secrets: BTreeMap::from([(spec.secrets[0].name.clone(), "sid".to_string())]),
            ..Default::default()
        };
        let labels = Labels {
            stack: "shop".into(),
            resource: "swarm_service.web".into(),
            hash: "h".into(),
        };
        let service = live_service(&spec.body("shop-web", &labels, &ids).unwrap());
        let read_with = |service: &Json| {
            live_swarm_service_attributes(
                service,
                &[],
                &BTreeMap::from([("n1d".to_string(), "shop_backend".to_string())]),
                &BTreeMap::new(),
                Some(&attributes),
                "salt",
            )
        };
        let live = read_with(&service);
        let env = live["env"].as_map().unwrap();
        assert_eq!(env["DB_PASSWORD"], Value::Secret(secret));
        assert!(!env.contains_key("DB_PASSWORD_FILE"), "{env:?}");
        assert_eq!(compared(&live).get("env"), attributes.get("env"));

        // Another secret mounted by hand (`docker service update --secret-add`): changed.
        let mut swapped = service.clone();
        swapped["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretName"] =
            json!("shop_web_DB_PASSWORD_00000000");
        let live = read_with(&swapped);
        let changed = &live["env"].as_map().unwrap()["DB_PASSWORD"];
        assert!(matches!(changed, Value::Secret(_)));
        assert_ne!(
            Some(changed),
            attributes["env"].as_map().unwrap().get("DB_PASSWORD")
        );

        // The mount removed by hand: the variable names a file nothing is mounted at.
        let mut unmounted = service.clone();
        unmounted["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"] = json!([]);
        let env = read_with(&unmounted)["env"].as_map().unwrap().clone();
        assert!(!env.contains_key("DB_PASSWORD"), "{env:?}");
        assert!(env.contains_key("DB_PASSWORD_FILE"), "{env:?}");
    }

    #[test]
    fn an_apps_own_file_variable_is_an_env_value_and_the_secret_at_its_path_a_file() {
        // stack.toml: `env = { TLS_KEY_FILE = "/run/secrets/TLS_KEY" }` and a `[files]`
        // secret mounted there; `TLS_KEY` itself is no secret env value.
        let mut attributes = web_attributes();
        if let Some(Value::Map(env)) = attributes.get_mut("env") {
            env.insert("TLS_KEY_FILE".into(), Value::text("/run/secrets/TLS_KEY"));
        }
        let mut service = live_service(&body());
        let container = &mut service["Spec"]["TaskTemplate"]["ContainerSpec"];
        let mut env = container["Env"].as_array().cloned().unwrap_or_default();
        env.push(json!("TLS_KEY_FILE=/run/secrets/TLS_KEY"));
        container["Env"] = json!(env);
        container["Secrets"] = json!([{
            "File": { "Name": "/run/secrets/TLS_KEY", "UID": "0", "GID": "0", "Mode": 0o400 },
            "SecretID": "sid",
            "SecretName": "shop_web_tls_key_0a1b2c3d",
        }]);
        let read_with = |reference: &Attributes| {
            live_swarm_service_attributes(
                &service,
                &[],
                &BTreeMap::from([("n1d".to_string(), "shop_backend".to_string())]),
                &BTreeMap::new(),
                Some(reference),
                "salt",
            )
        };
        let live = read_with(&attributes);
        let env = live["env"].as_map().unwrap();
        assert_eq!(env["TLS_KEY_FILE"], Value::text("/run/secrets/TLS_KEY"));
        assert!(!env.contains_key("TLS_KEY"), "{env:?}");
        assert_eq!(compared(&live).get("env"), attributes.get("env"));
        let files = live[mounted_files::SECRET_FILES].as_map().unwrap();
        assert!(files.contains_key("/run/secrets/TLS_KEY"), "{files:?}");
        // `TLS_KEY` a plain value: still not the env's secret.
        let mut plain = web_attributes();
        if let Some(Value::Map(env)) = plain.get_mut("env") {
            env.insert("TLS_KEY".into(), Value::text("inline"));
        }
        let live = read_with(&plain);
        assert!(live["env"].as_map().unwrap().contains_key("TLS_KEY_FILE"));
        assert!(live[mounted_files::SECRET_FILES]
            .as_map()
            .unwrap()
            .contains_key("/run/secrets/TLS_KEY"));
    }

    #[test]
    fn a_config_reads_back_as_recorded_and_another_or_none_shows() {
        let mut attributes = web_attributes();
        let configs = |name: &str| {
            Value::Map(BTreeMap::from([(
                "/etc/web/app.conf".to_string(),
                Value::Map(BTreeMap::from([
                    ("name".to_string(), Value::text(name)),
                    ("owner".to_string(), Value::text("0:0")),
                    ("mode".to_string(), Value::text("0444")),
                ])),
            )]))
        };
        attributes.insert("configs".into(), configs("shop_web_app_11111111"));
        let spec = SwarmServiceSpec::from_attributes("shop", "web", &attributes).unwrap();
        let labels = Labels {
            stack: "shop".into(),
            resource: "swarm_service.web".into(),
            hash: "h".into(),
        };
        let ids = super::super::spec::MountedObjectIds {
            configs: BTreeMap::from([("shop_web_app_11111111".to_string(), "cid".to_string())]),
            ..Default::default()
        };
        let service = live_service(&spec.body("shop-web", &labels, &ids).unwrap());
        let read_with = |service: &Json| {
            live_swarm_service_attributes(
                service,
                &[],
                &BTreeMap::from([("n1d".to_string(), "shop_backend".to_string())]),
                &BTreeMap::new(),
                Some(&attributes),
                "salt",
            )
        };
        assert_eq!(compared(&read_with(&service)), attributes);

        // Another config mounted there by hand (`docker service update --config-rm/--config-add`).
        let mut swapped = service.clone();
        swapped["Spec"]["TaskTemplate"]["ContainerSpec"]["Configs"][0]["ConfigName"] =
            json!("shop_web_app_22222222");
        assert_eq!(
            read_with(&swapped)["configs"],
            configs("shop_web_app_22222222")
        );
        // None at all: an empty map, not the recorded one.
        let mut removed = service.clone();
        removed["Spec"]["TaskTemplate"]["ContainerSpec"]
            .as_object_mut()
            .unwrap()
            .remove("Configs");
        assert_eq!(read_with(&removed)["configs"], Value::Map(BTreeMap::new()));
        // A service that declares none reads back without the attribute.
        assert!(!read(&live_service(&body()), &[]).contains_key("configs"));
    }
}
