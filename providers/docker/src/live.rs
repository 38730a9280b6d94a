//! Docker → attributes: what a container read back from Docker means as attributes of
//! a `service.*` resource, the same shape as desired ones (`spec.rs` is the other way).
//!
//! Pure. `live_service_attributes` turns `GET /containers/{id}/json` back into
//! attributes so the planner compares like with like: values Docker adds on its own (the
//! image's env, the container id as an alias) are left out, and secret values are hashed
//! with the state's salt and dropped.

use std::collections::BTreeMap;

use serde_json::Value as Json;
use stackctl_provider::{Attributes, Secret, Value};

use crate::hardening::ContainerHardening;
use crate::spec::{nano_cpus, number, seconds_to_nanos, text_list, DOCKER_STOP_GRACE_SECONDS};

/// What a container read back means as attributes (the same shape as desired ones).
///
/// Everything Docker can show is read from `inspect`, never copied: image, command,
/// entrypoint, env, health check, published ports, networks, mounts, user, limits,
/// capabilities and privileges, restart policy, read-only root and the label hash, so that any change by hand is
/// drift of the attribute it touched.
///
/// `reference` is the resource as recorded (or desired, when nothing is recorded): it
/// says which env keys are secrets, and supplies the attributes Docker cannot show (the
/// route backend, the container port, the minimum drain of a swap). `image_config` is the image's own `Config`:
/// Docker copies its env, command, entrypoint and health check into every container, so
/// those are left out unless the resource sets them or the container differs from them.
/// The computed attribute holding how the container is doing right now (its health,
/// since when it runs, how often it restarted): what `stackctl ps` shows. Never recorded,
/// so never drift.
pub const RUNTIME: &str = "runtime";

/// `runtime`: `health` (`healthy`, `unhealthy`, `starting`, or `none` without a health
/// check), `started_at` (RFC 3339 as the daemon says it) and `restart_count`.
fn runtime(state: &Json, restart_count: &Json) -> Value {
    let health = state["Health"]["Status"].as_str().unwrap_or("none");
    Value::Map(BTreeMap::from([
        ("health".to_string(), Value::text(health)),
        (
            "started_at".to_string(),
            Value::text(state["StartedAt"].as_str().unwrap_or_default()),
        ),
        (
            "restart_count".to_string(),
            Value::Integer(restart_count.as_i64().unwrap_or(0)),
        ),
    ]))
}

pub fn live_service_attributes(
    inspect: &Json,
    image_config: &Json,
    reference: Option<&Attributes>,
    salt: &str,
) -> Attributes {
    let mut attributes = reference.cloned().unwrap_or_default();
    // Computed values of a previous apply are replaced by what is live now.
    for computed in ["container_id", "running", "state", "label_hash", RUNTIME] {
        attributes.remove(computed);
    }
    let config = &inspect["Config"];
    let host_config = &inspect["HostConfig"];
    let reference_env = reference
        .and_then(|attributes| attributes.get("env"))
        .and_then(Value::as_map);

    if let Some(name) = inspect["Name"].as_str() {
        // A swapped routed service keeps its `container_name` attribute; the live name
        // carries the hash suffix and is shown separately.
        attributes.insert(
            "container".into(),
            Value::text(name.trim_start_matches('/')),
        );
    }
    if let Some(image) = config["Image"].as_str() {
        attributes.insert("image".into(), Value::text(image));
    }

    read_command(
        &mut attributes,
        "command",
        &config["Cmd"],
        &image_config["Cmd"],
    );
    read_command(
        &mut attributes,
        "entrypoint",
        &config["Entrypoint"],
        &image_config["Entrypoint"],
    );
    read_health(
        &mut attributes,
        &config["Healthcheck"],
        &image_config["Healthcheck"],
    );
    read_ports(&mut attributes, &host_config["PortBindings"]);

    let image_env: BTreeMap<&str, &str> = image_config["Env"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|entry| entry.as_str()?.split_once('='))
        .collect();
    let mut env = BTreeMap::new();
    for entry in config["Env"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let Some((key, value)) = entry.as_str().and_then(|entry| entry.split_once('=')) else {
            continue;
        };
        let declared = reference_env.and_then(|entries| entries.get(key));
        if declared.is_none() && image_env.get(key) == Some(&value) {
            continue;
        }
        // Plain only when the resource says so; anything else could be a secret.
        let live = match declared {
            Some(Value::Text(_)) | Some(Value::Integer(_)) | Some(Value::Bool(_)) => match declared
            {
                Some(Value::Integer(number)) if number.to_string() == value => {
                    Value::Integer(*number)
                }
                Some(Value::Bool(flag)) if flag.to_string() == value => Value::Bool(*flag),
                _ => Value::text(value),
            },
            _ => Value::Secret(Secret::from_digest(Secret::digest_of(value, salt))),
        };
        env.insert(key.to_string(), live);
    }
    if !env.is_empty() || attributes.contains_key("env") {
        attributes.insert("env".into(), Value::Map(env));
    }

    let container_id = inspect["Id"].as_str().unwrap_or_default();
    let short_id: String = container_id.chars().take(12).collect();
    let mut networks = BTreeMap::new();
    if let Some(entries) = inspect["NetworkSettings"]["Networks"].as_object() {
        for (network, endpoint) in entries {
            let mut aliases: Vec<String> = endpoint["Aliases"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .filter_map(|alias| alias.as_str())
                .filter(|alias| *alias != short_id && !container_id.starts_with(alias))
                .map(str::to_string)
                .collect();
            let declared: Option<Vec<String>> = attributes
                .get("networks")
                .and_then(Value::as_map)
                .and_then(|map| map.get(network))
                .and_then(|value| text_list(value, "networks").ok());
            // Keep the declared order when the sets agree; sort otherwise.
            match declared {
                Some(mut declared_sorted) => {
                    let original = declared_sorted.clone();
                    declared_sorted.sort();
                    aliases.sort();
                    if declared_sorted == aliases {
                        aliases = original;
                    }
                }
                None => aliases.sort(),
            }
            networks.insert(
                network.clone(),
                Value::List(aliases.into_iter().map(Value::Text).collect()),
            );
        }
    }
    // The default bridge (a container created with no network) is not declared anywhere.
    networks.remove("bridge");
    if !networks.is_empty() || attributes.contains_key("networks") {
        attributes.insert("networks".into(), Value::Map(networks));
    }

    let mut mounts: Vec<Value> = Vec::new();
    for mount in inspect["Mounts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let kind = mount["Type"].as_str().unwrap_or("volume");
        let source = if kind == "volume" {
            mount["Name"].as_str()
        } else {
            mount["Source"].as_str()
        };
        mounts.push(Value::Map(BTreeMap::from([
            ("kind".to_string(), Value::text(kind)),
            (
                "read_only".to_string(),
                Value::Bool(!mount["RW"].as_bool().unwrap_or(true)),
            ),
            (
                "source".to_string(),
                Value::text(source.unwrap_or_default()),
            ),
            (
                "target".to_string(),
                Value::text(mount["Destination"].as_str().unwrap_or_default()),
            ),
        ])));
    }
    let declared_mounts = attributes
        .get("volumes")
        .and_then(Value::as_list)
        .map(<[Value]>::to_vec);
    match declared_mounts {
        Some(declared) if same_items(&declared, &mounts) => {}
        Some(_) => {
            attributes.insert("volumes".into(), Value::List(mounts));
        }
        None if !mounts.is_empty() => {
            attributes.insert("volumes".into(), Value::List(mounts));
        }
        None => {}
    }

    // Docker copies the image's `USER` into the container: that is the default, not a
    // value to show, unless the resource sets a user.
    let image_user = image_config["User"].as_str().unwrap_or_default();
    match config["User"].as_str() {
        Some(user)
            if !user.is_empty() && (attributes.contains_key("user") || user != image_user) =>
        {
            attributes.insert("user".into(), Value::text(user));
        }
        _ => {
            attributes.remove("user");
        }
    }
    match host_config["Memory"].as_i64() {
        Some(memory) if memory > 0 => {
            attributes.insert("memory".into(), Value::Integer(memory));
        }
        _ => {
            attributes.remove("memory");
        }
    }
    match host_config["NanoCpus"].as_i64() {
        Some(nanos) if nanos > 0 => {
            let same = attributes
                .get("cpus")
                .and_then(Value::as_text)
                .and_then(|text| nano_cpus(text).ok())
                == Some(nanos);
            if !same {
                attributes.insert("cpus".into(), Value::text(format_cpus(nanos)));
            }
        }
        _ => {
            attributes.remove("cpus");
        }
    }
    ContainerHardening::of_container(host_config).read_into(&mut attributes);
    // Defaults stay implicit when the resource left them out, so that an omitted
    // attribute and Docker's default compare equal.
    let restart = match host_config["RestartPolicy"]["Name"].as_str() {
        None | Some("") => "no",
        Some(name) => name,
    };
    if attributes.contains_key("restart") || restart != "unless-stopped" {
        attributes.insert("restart".into(), Value::text(restart));
    }
    let read_only = host_config["ReadonlyRootfs"].as_bool().unwrap_or(false);
    if attributes.contains_key("read_only") || read_only {
        attributes.insert("read_only".into(), Value::Bool(read_only));
    }
    // The stop grace period: Docker's default of 10 s stays implicit when the resource
    // leaves it out (containers made before the setting existed carry 10 too).
    let stop_grace = config["StopTimeout"]
        .as_i64()
        .unwrap_or(DOCKER_STOP_GRACE_SECONDS);
    if attributes.contains_key("stop_grace_seconds") || stop_grace != DOCKER_STOP_GRACE_SECONDS {
        attributes.insert("stop_grace_seconds".into(), Value::Integer(stop_grace));
    }

    let state = inspect["State"]["Status"].as_str().unwrap_or("unknown");
    attributes.insert("state".into(), Value::text(state));
    attributes.insert(
        "running".into(),
        Value::Bool(inspect["State"]["Running"].as_bool().unwrap_or(false)),
    );
    attributes.insert("container_id".into(), Value::text(container_id));
    attributes.insert(
        RUNTIME.into(),
        runtime(&inspect["State"], &inspect["RestartCount"]),
    );
    let label_hash = config["Labels"][crate::api::LABEL_HASH].as_str();
    attributes.insert(
        "label_hash".into(),
        label_hash.map(Value::text).unwrap_or(Value::Null),
    );
    attributes
}

/// `command` or `entrypoint` (`name`) as the container runs it. Left out when the
/// resource does not set it and the container runs the image's own (or none).
fn read_command(attributes: &mut Attributes, name: &str, live: &Json, image: &Json) {
    let texts = |json: &Json| -> Vec<String> {
        json.as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .filter_map(|item| item.as_str().map(str::to_string))
            .collect()
    };
    let running = texts(live);
    let declared = matches!(attributes.get(name), Some(value) if *value != Value::Null);
    if !declared && (running.is_empty() || running == texts(image)) {
        attributes.remove(name);
        return;
    }
    attributes.insert(
        name.into(),
        Value::List(running.into_iter().map(Value::Text).collect()),
    );
}

/// The health check as the container runs it, in the resource's shape (seconds). Left
/// out when the resource sets none and the container runs the image's own (or none).
fn read_health(attributes: &mut Attributes, live: &Json, image: &Json) {
    let declared = attributes.get("health").and_then(Value::as_map).cloned();
    if declared.is_none() && (live.is_null() || live == image) {
        attributes.remove("health");
        return;
    }
    let declared = declared.unwrap_or_default();
    let mut health = BTreeMap::new();
    let test: Vec<Value> = live["Test"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|item| item.as_str().map(Value::text))
        .collect();
    health.insert("test".to_string(), Value::List(test));
    for (key, field, is_duration) in [
        ("interval_seconds", "Interval", true),
        ("timeout_seconds", "Timeout", true),
        ("retries", "Retries", false),
        ("start_period_seconds", "StartPeriod", true),
    ] {
        let raw = live[field].as_i64().unwrap_or(0);
        let stated = declared.get(key);
        if raw == 0 && stated.is_none() {
            continue;
        }
        let value = if !is_duration {
            Value::Integer(raw)
        } else {
            let seconds = raw as f64 / 1e9;
            match stated {
                // The declared spelling when it means the same duration.
                Some(stated) if number(stated).map(seconds_to_nanos) == Some(raw) => stated.clone(),
                _ if raw % 1_000_000_000 == 0 => Value::Integer(raw / 1_000_000_000),
                _ => Value::text(format!("{seconds}")),
            }
        };
        health.insert(key.to_string(), value);
    }
    attributes.insert("health".into(), Value::Map(health));
}

/// Host ports the container publishes (`HostConfig.PortBindings`), in the resource's
/// shape. Only the edge declares any: on any other service a binding is drift, and
/// repairing it replaces the container without it.
fn read_ports(attributes: &mut Attributes, bindings: &Json) {
    let mut ports = Vec::new();
    for (key, hosts) in bindings.as_object().into_iter().flatten() {
        let (container_port, protocol) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let container_port: i64 = container_port.parse().unwrap_or(0);
        for host in hosts.as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let host_ip = match host["HostIp"].as_str() {
                None | Some("") => "0.0.0.0",
                Some(ip) => ip,
            };
            let host_port: i64 = host["HostPort"]
                .as_str()
                .and_then(|port| port.parse().ok())
                .unwrap_or(0);
            ports.push(Value::Map(BTreeMap::from([
                ("container_port".to_string(), Value::Integer(container_port)),
                ("host_ip".to_string(), Value::text(host_ip)),
                ("host_port".to_string(), Value::Integer(host_port)),
                ("protocol".to_string(), Value::text(protocol)),
            ])));
        }
    }
    let declared = attributes
        .get("ports")
        .and_then(Value::as_list)
        .map(<[Value]>::to_vec);
    match declared {
        // The declared order (and spelling) when the bindings are the same.
        Some(declared) if same_items(&normalized_ports(&declared), &ports) => {}
        Some(_) => {
            attributes.insert("ports".into(), Value::List(ports));
        }
        None if !ports.is_empty() => {
            attributes.insert("ports".into(), Value::List(ports));
        }
        None => {}
    }
}

/// Declared ports with the defaults Docker fills in, to compare with what it shows.
fn normalized_ports(declared: &[Value]) -> Vec<Value> {
    declared
        .iter()
        .map(|item| {
            let map = item.as_map().cloned().unwrap_or_default();
            let integer =
                |name: &str| Value::Integer(map.get(name).and_then(number).unwrap_or(0.0) as i64);
            let text = |name: &str, default: &str| {
                Value::text(map.get(name).and_then(Value::as_text).unwrap_or(default))
            };
            Value::Map(BTreeMap::from([
                ("container_port".to_string(), integer("container_port")),
                ("host_ip".to_string(), text("host_ip", "0.0.0.0")),
                ("host_port".to_string(), integer("host_port")),
                ("protocol".to_string(), text("protocol", "tcp")),
            ]))
        })
        .collect()
}

fn same_items(left: &[Value], right: &[Value]) -> bool {
    let key = |value: &Value| value.to_json().to_string();
    let mut left: Vec<String> = left.iter().map(key).collect();
    let mut right: Vec<String> = right.iter().map(key).collect();
    left.sort();
    right.sort();
    left == right
}

fn format_cpus(nanos: i64) -> String {
    let text = format!("{:.3}", nanos as f64 / 1e9);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use stackctl_provider::Value;

    use super::*;
    use crate::spec::tests::attributes;

    #[test]
    fn live_attributes_match_desired_when_nothing_changed() {
        let desired = attributes();
        let inspect = json!({
            "Id": "0123456789abcdef0123",
            "Name": "/shop-api",
            "Config": {
                "Image": "stackctl-test/server:latest",
                "Env": ["NAME=api", "PASSWORD=hunter2", "PORT=8080"],
                "User": "10001",
                "Labels": {"stackctl.hash": "sha256:h"},
                "Cmd": ["/server"],
                "Healthcheck": {"Test": ["CMD", "/server", "health"], "Interval": 1_000_000_000i64, "Retries": 3}
            },
            "HostConfig": {"Memory": 64 << 20, "NanoCpus": 500_000_000, "RestartPolicy": {"Name": "unless-stopped"}, "ReadonlyRootfs": true},
            "NetworkSettings": {"Networks": {
                "shop_backend": {"Aliases": ["api", "0123456789ab"]},
                "shop_edge": {"Aliases": ["backend-api", "api"]}
            }},
            "Mounts": [{"Type": "volume", "Name": "shop_data", "Source": "/var/lib/docker/volumes/shop_data/_data", "Destination": "/data", "RW": true}],
            "State": {"Status": "running", "Running": true}
        });
        let live = live_service_attributes(
            &inspect,
            &json!({"Env": ["PORT=8080"], "Cmd": ["/server"]}),
            Some(&desired),
            "salt",
        );
        for name in [
            "image",
            "env",
            "networks",
            "volumes",
            "user",
            "memory",
            "cpus",
            "restart",
            "read_only",
            "health",
            "port",
            "command",
            "entrypoint",
            "ports",
        ] {
            assert_eq!(live.get(name), desired.get(name), "{name}");
        }
        assert_eq!(live["running"], Value::Bool(true));
        assert_eq!(live["label_hash"], Value::text("sha256:h"));
        // The secret is compared by digest and its plaintext is not kept.
        let Value::Secret(secret) = &live["env"].as_map().unwrap()["PASSWORD"] else {
            panic!("not a secret")
        };
        assert_eq!(secret.expose(), None);
    }

    #[test]
    fn the_stop_grace_period_is_read_from_the_container() {
        let inspect = |stop_timeout: Option<i64>| {
            let mut config = json!({"Image": "stackctl-test/server:latest", "Labels": {}});
            if let Some(seconds) = stop_timeout {
                config["StopTimeout"] = json!(seconds);
            }
            json!({"Id": "abc", "Name": "/shop-api", "Config": config, "HostConfig": {},
                   "State": {"Status": "running", "Running": true}})
        };
        let mut declared = attributes();
        declared.insert("stop_grace_seconds".into(), Value::Integer(30));
        declared.insert("drain_milliseconds".into(), Value::Integer(2000));
        let live = live_service_attributes(&inspect(Some(30)), &json!({}), Some(&declared), "salt");
        assert_eq!(live["stop_grace_seconds"], Value::Integer(30));
        // Docker cannot show the drain (how stackctl retires the container): it is kept.
        assert_eq!(live["drain_milliseconds"], Value::Integer(2000));
        // Changed by hand (another StopTimeout): drift of the attribute.
        let live = live_service_attributes(&inspect(Some(5)), &json!({}), Some(&declared), "salt");
        assert_eq!(live["stop_grace_seconds"], Value::Integer(5));
        // Not declared: Docker's 10 s, written by stackctl before the setting existed, stays
        // implicit; anything else shows.
        let plain = attributes();
        for stop_timeout in [Some(10), None] {
            let live =
                live_service_attributes(&inspect(stop_timeout), &json!({}), Some(&plain), "salt");
            assert!(!live.contains_key("stop_grace_seconds"), "{stop_timeout:?}");
        }
        let live = live_service_attributes(&inspect(Some(60)), &json!({}), Some(&plain), "salt");
        assert_eq!(live["stop_grace_seconds"], Value::Integer(60));
    }

    #[test]
    fn live_attributes_show_changed_env_and_a_stopped_container() {
        let desired = attributes();
        let inspect = json!({
            "Id": "abc", "Name": "/shop-api",
            "Config": {"Image": "other:1", "Env": ["NAME=changed", "PASSWORD=hunter2", "EXTRA=1"], "Labels": {}},
            "HostConfig": {},
            "NetworkSettings": {"Networks": {}},
            "State": {"Status": "exited", "Running": false}
        });
        let live = live_service_attributes(&inspect, &Json::Null, Some(&desired), "salt");
        assert_eq!(live["image"], Value::text("other:1"));
        let env = live["env"].as_map().unwrap();
        assert_eq!(env["NAME"], Value::text("changed"));
        assert!(
            matches!(env["EXTRA"], Value::Secret(_)),
            "unknown keys are treated as secrets"
        );
        assert_eq!(live["running"], Value::Bool(false));
        assert_eq!(live["state"], Value::text("exited"));
        assert_eq!(live["label_hash"], Value::Null);
        assert_eq!(live["networks"], Value::Map(BTreeMap::new()));
    }

    #[test]
    fn a_port_published_by_hand_is_read_back_as_drift() {
        let mut desired = attributes();
        desired.insert("ports".into(), Value::List(Vec::new()));
        let inspect = json!({
            "Id": "abc", "Name": "/shop-api",
            "Config": {"Image": "stackctl-test/server:latest", "Env": [], "Labels": {}},
            "HostConfig": {"PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "5999"}]}},
            "NetworkSettings": {"Networks": {}},
            "State": {"Status": "running", "Running": true}
        });
        let live = live_service_attributes(&inspect, &Json::Null, Some(&desired), "salt");
        assert_eq!(
            live["ports"].to_json(),
            json!([{"container_port": 8080, "host_ip": "127.0.0.1", "host_port": 5999, "protocol": "tcp"}])
        );
        // The edge's declared ports read back unchanged, whatever Docker's spelling.
        let mut edge = attributes();
        edge.insert(
            "ports".into(),
            Value::List(vec![Value::Map(BTreeMap::from([
                ("host_ip".to_string(), Value::text("0.0.0.0")),
                ("host_port".to_string(), Value::Integer(80)),
                ("container_port".to_string(), Value::Integer(8000)),
                ("protocol".to_string(), Value::text("tcp")),
            ]))]),
        );
        let inspect = json!({
            "Id": "abc", "Name": "/shop-edge",
            "Config": {"Image": "traefik", "Labels": {}},
            "HostConfig": {"PortBindings": {"8000/tcp": [{"HostIp": "", "HostPort": "80"}]}},
            "State": {"Status": "running", "Running": true}
        });
        let live = live_service_attributes(&inspect, &Json::Null, Some(&edge), "salt");
        assert_eq!(live["ports"], edge["ports"]);
    }

    #[test]
    fn a_hand_changed_command_entrypoint_or_health_check_is_read_back() {
        let mut desired = attributes();
        desired.insert("command".into(), Value::List(vec![Value::text("/server")]));
        let inspect = json!({
            "Id": "abc", "Name": "/shop-api",
            "Config": {
                "Image": "stackctl-test/server:latest", "Labels": {},
                "Cmd": ["/bin/sh", "-c", "sleep 1d"],
                "Entrypoint": ["/init"],
                "Healthcheck": {"Test": ["NONE"]}
            },
            "HostConfig": {},
            "State": {"Status": "running", "Running": true}
        });
        let image = json!({"Cmd": ["/server"]});
        let live = live_service_attributes(&inspect, &image, Some(&desired), "salt");
        assert_eq!(
            live["command"].to_json(),
            json!(["/bin/sh", "-c", "sleep 1d"])
        );
        assert_eq!(live["entrypoint"].to_json(), json!(["/init"]));
        assert_eq!(
            live["health"].to_json(),
            json!({"test": ["NONE"], "interval_seconds": 0, "retries": 0})
        );
        // What the image says is not the resource's when the resource leaves it out.
        let mut plain = attributes();
        plain.remove("health");
        let inspect = json!({
            "Id": "abc", "Name": "/shop-api",
            "Config": {"Image": "x", "Labels": {}, "Cmd": ["/server"], "Healthcheck": {"Test": ["CMD", "/server", "health"]}},
            "HostConfig": {},
            "State": {"Status": "running", "Running": true}
        });
        let image =
            json!({"Cmd": ["/server"], "Healthcheck": {"Test": ["CMD", "/server", "health"]}});
        let live = live_service_attributes(&inspect, &image, Some(&plain), "salt");
        assert!(!live.contains_key("command"));
        assert!(!live.contains_key("entrypoint"));
        assert!(!live.contains_key("health"));
    }
}
