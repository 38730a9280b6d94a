//! Shared test harness: an emulator on 127.0.0.1, a provider and client pointed at it
//! with short timings, and the contract checker that validates every recorded exchange
//! against DigitalOcean's OpenAPI subset.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use serde_json::{json, Value as Json};
use stackctl_digitalocean::client::{Client, ClientConfig, PollPolicy, RetryPolicy, Token};
use stackctl_digitalocean::{DigitalOceanProvider, ProviderOptions};
use stackctl_do_emulator::{Emulator, EmulatorConfig, Exchange};
use stackctl_provider::{Address, ApplyContext, Resource, Value};

pub const TOKEN: &str = "dop_v1_emulator_token_0123456789abcdef";
pub const STACK: &str = "shop";
pub const PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJxXbX1WgTgD5mMsm6CS2wEr+/zH6iK3v2b7p6gE0f2g deploy@ci";

pub fn emulator_config() -> EmulatorConfig {
    EmulatorConfig {
        token: TOKEN.to_string(),
        activation_delay: Duration::from_millis(100),
        action_delay: Duration::from_millis(30),
        ..EmulatorConfig::default()
    }
}

pub async fn start_emulator() -> Emulator {
    start_emulator_with(emulator_config()).await
}

pub async fn start_emulator_with(config: EmulatorConfig) -> Emulator {
    Emulator::start(config)
        .await
        .expect("the emulator starts on 127.0.0.1")
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 8,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        max_total: Duration::from_secs(20),
        max_rate_limit_wait: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
    }
}

pub fn fast_poll() -> PollPolicy {
    PollPolicy {
        interval: Duration::from_millis(20),
        timeout: Duration::from_secs(10),
    }
}

pub fn client_config(emulator: &Emulator, token: Option<&str>) -> ClientConfig {
    ClientConfig::new(emulator.base_url(), token.map(Token::new)).with_retry(fast_retry())
}

pub fn client(emulator: &Emulator) -> Client {
    Client::new(client_config(emulator, Some(TOKEN))).expect("client")
}

pub fn provider(emulator: &Emulator) -> DigitalOceanProvider {
    provider_with_token(emulator, Some(TOKEN))
}

pub fn provider_with_token(emulator: &Emulator, token: Option<&str>) -> DigitalOceanProvider {
    DigitalOceanProvider::new(
        client_config(emulator, token),
        ProviderOptions { poll: fast_poll() },
    )
    .expect("provider")
}

pub fn context() -> ApplyContext {
    ApplyContext {
        stack: STACK.to_string(),
        lineage: "lineage-of-the-test".to_string(),
        state_was_empty: true,
        salt: "salt".to_string(),
        health_timeout: Duration::from_secs(5),
        allow_data_loss: false,
        recorded: Arc::new(RwLock::new(BTreeMap::new())),
    }
}

fn texts(items: &[&str]) -> Value {
    Value::List(items.iter().map(|item| Value::text(*item)).collect())
}

pub fn ssh_key_resource() -> Resource {
    Resource::new(Address::new("ssh_key", "deploy"), "digitalocean")
        .with("name", format!("{STACK}-deploy"))
        .with("public_key", PUBLIC_KEY)
}

pub fn droplet_resource(size: &str, fingerprint: &str) -> Resource {
    Resource::new(Address::new("droplet", "web-1"), "digitalocean")
        .with("name", "web-1")
        .with("region", "fra1")
        .with("size", size)
        .with("image", "docker-20-04")
        .with("ssh_keys", texts(&[fingerprint]))
        .with("tags", texts(&[&format!("stackctl:{STACK}")]))
        .with("monitoring", false)
        .with("ipv6", false)
        .depends_on(Address::new("ssh_key", "deploy"))
}

fn rule(protocol: &str, ports: &str, key: &str, targets: &[&str]) -> Value {
    Value::Map(BTreeMap::from([
        ("protocol".to_string(), Value::text(protocol)),
        ("ports".to_string(), Value::text(ports)),
        (key.to_string(), texts(targets)),
    ]))
}

pub fn firewall_resource(droplet_id: &str) -> Resource {
    Resource::new(Address::new("firewall", "web"), "digitalocean")
        .with("name", format!("{STACK}-web"))
        .with(
            "inbound_rules",
            Value::List(vec![
                rule("tcp", "22", "sources", &["203.0.113.0/24"]),
                rule("tcp", "80", "sources", &["0.0.0.0/0", "::/0"]),
                rule("tcp", "443", "sources", &["0.0.0.0/0", "::/0"]),
            ]),
        )
        .with(
            "outbound_rules",
            Value::List(vec![
                rule("tcp", "all", "destinations", &["0.0.0.0/0", "::/0"]),
                rule("udp", "0", "destinations", &["0.0.0.0/0", "::/0"]),
                rule("icmp", "all", "destinations", &["0.0.0.0/0", "::/0"]),
            ]),
        )
        .with("droplet_ids", texts(&[droplet_id]))
}

pub fn record_resource(name: &str, data: &str) -> Resource {
    let address_name = if name == "@" { "apex" } else { name };
    Resource::new(Address::new("dns_record", address_name), "digitalocean")
        .with("domain", "example.com")
        .with("type", "A")
        .with("name", name)
        .with("data", data)
        .with("ttl", 1800i64)
}

// ----- the contract -------------------------------------------------------------------

/// The OpenAPI subset, found beside the repository as CI lays it out.
pub fn contract_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/digitalocean/openapi-subset.json")
}

pub fn spec() -> &'static Json {
    static SPEC: OnceLock<Json> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = contract_path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!("cannot read the contract at {}: {error}", path.display())
        });
        serde_json::from_str(&text).expect("the contract is JSON")
    })
}

/// OpenAPI 3.0 schema → JSON Schema draft 4: `nullable` becomes a `null` type (or an
/// `anyOf` with null when there is no `type`), and examples are dropped so that no
/// example value can be taken for a keyword.
fn to_json_schema(schema: &Json) -> Json {
    match schema {
        Json::Object(object) => {
            let mut converted = serde_json::Map::new();
            for (key, value) in object {
                if matches!(
                    key.as_str(),
                    "example"
                        | "examples"
                        | "nullable"
                        | "discriminator"
                        | "readOnly"
                        | "writeOnly"
                        | "xml"
                ) {
                    continue;
                }
                let value = if key == "properties" {
                    // Property names are data, not keywords: convert only their schemas.
                    Json::Object(
                        value
                            .as_object()
                            .into_iter()
                            .flatten()
                            .map(|(name, property)| (name.clone(), to_json_schema(property)))
                            .collect(),
                    )
                } else {
                    to_json_schema(value)
                };
                converted.insert(key.clone(), value);
            }
            if object.get("nullable") == Some(&Json::Bool(true)) {
                match converted.get("type").cloned() {
                    Some(Json::String(kind)) => {
                        converted.insert("type".into(), json!([kind, "null"]));
                        if let Some(Json::Array(values)) = converted.get_mut("enum") {
                            values.push(Json::Null);
                        }
                    }
                    _ => return json!({ "anyOf": [{ "type": "null" }, Json::Object(converted)] }),
                }
            }
            Json::Object(converted)
        }
        Json::Array(items) => Json::Array(items.iter().map(to_json_schema).collect()),
        other => other.clone(),
    }
}

fn converted_schemas() -> &'static Json {
    static SCHEMAS: OnceLock<Json> = OnceLock::new();
    SCHEMAS.get_or_init(|| to_json_schema(&spec()["components"]["schemas"]))
}

/// Validates `instance` against an OpenAPI schema whose `$ref`s point into
/// `#/components/schemas`. Returns every error, as text.
pub fn schema_errors(schema: &Json, instance: &Json) -> Vec<String> {
    let root = json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "components": { "schemas": converted_schemas() },
        "allOf": [to_json_schema(schema)],
    });
    let validator = jsonschema::draft4::new(&root).expect("the contract's schemas compile");
    validator
        .iter_errors(instance)
        .map(|error| format!("{error} at {}", error.instance_path))
        .collect()
}

fn resolve_ref(value: &Json) -> &Json {
    match value.get("$ref").and_then(Json::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            spec()
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {reference}"))
        }
        None => value,
    }
}

/// Finds the operation for a concrete path; returns it with the path parameters.
pub fn find_operation(
    method: &str,
    path: &str,
) -> Option<(&'static Json, BTreeMap<String, String>)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    for (template, operations) in spec()["paths"].as_object()? {
        let template_segments: Vec<&str> = template.trim_matches('/').split('/').collect();
        if template_segments.len() != segments.len() {
            continue;
        }
        let mut parameters = BTreeMap::new();
        let matches = template_segments
            .iter()
            .zip(&segments)
            .all(|(pattern, actual)| {
                if pattern.starts_with('{') {
                    parameters.insert(
                        pattern.trim_matches(|c| c == '{' || c == '}').to_string(),
                        actual.to_string(),
                    );
                    true
                } else {
                    pattern == actual
                }
            });
        if matches {
            if let Some(operation) = operations.get(method.to_lowercase()) {
                return Some((operation, parameters));
            }
        }
    }
    None
}

/// Endpoints stackctl uses that DigitalOcean has but the subset leaves out. Their
/// answers are checked only for the error body.
const OUTSIDE_SUBSET: &[(&str, &str)] = &[
    ("GET", "/v2/account"),
    ("PUT", "/v2/account/keys/"),
    ("POST", "/v2/tags"),
    ("DELETE", "/v2/tags/"),
];

fn parameter_value(schema: &Json, text: &str) -> Json {
    let schema = resolve_ref(schema);
    let wants_integer = schema.get("type").and_then(Json::as_str) == Some("integer")
        || schema
            .get("anyOf")
            .and_then(Json::as_array)
            .is_some_and(|branches| {
                branches.iter().any(|branch| {
                    resolve_ref(branch).get("type").and_then(Json::as_str) == Some("integer")
                })
            });
    match text.parse::<i64>() {
        Ok(number) if wants_integer => json!(number),
        _ => json!(text),
    }
}

/// Every problem with one exchange, against the contract.
pub fn contract_violations(exchange: &Exchange) -> Vec<String> {
    let mut problems = Vec::new();
    let label = format!("{} {}?{}", exchange.method, exchange.path, exchange.query);
    let Some((operation, path_parameters)) = find_operation(&exchange.method, &exchange.path)
    else {
        let known_extension = OUTSIDE_SUBSET.iter().any(|(method, prefix)| {
            *method == exchange.method && exchange.path.starts_with(prefix)
        });
        if !known_extension {
            problems.push(format!("{label}: no such operation in the contract"));
        } else if let (Some(status), Some(body)) = (exchange.status, &exchange.response_body) {
            if status >= 400 {
                for error in schema_errors(&json!({"$ref": "#/components/schemas/error"}), body) {
                    problems.push(format!("{label}: error body: {error}"));
                }
            }
        }
        return problems;
    };
    // Parameters: every one sent must be declared, and valid.
    let declared: Vec<&Json> = operation
        .get("parameters")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .map(resolve_ref)
        .collect();
    let query: Vec<(String, String)> = form_urlencoded::parse(exchange.query.as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    for (location, name, text) in query
        .iter()
        .map(|(name, value)| ("query", name.clone(), value.clone()))
        .chain(
            path_parameters
                .iter()
                .map(|(name, value)| ("path", name.clone(), value.clone())),
        )
    {
        match declared
            .iter()
            .find(|parameter| parameter["in"] == location && parameter["name"] == name.as_str())
        {
            None => problems.push(format!(
                "{label}: {location} parameter `{name}` is not in the contract"
            )),
            Some(parameter) => {
                let value = parameter_value(&parameter["schema"], &text);
                for error in schema_errors(&parameter["schema"], &value) {
                    problems.push(format!("{label}: {location} parameter `{name}`: {error}"));
                }
            }
        }
    }
    // The request body.
    let request_schema = operation.pointer("/requestBody/content/application~1json/schema");
    match (&exchange.request_body, request_schema) {
        (Some(body), Some(schema)) => {
            for error in schema_errors(schema, body) {
                problems.push(format!("{label}: request body: {error}"));
            }
        }
        (Some(body), None) => problems.push(format!(
            "{label}: a body ({body}) where the contract has none"
        )),
        (None, Some(_))
            if operation.pointer("/requestBody/required") == Some(&Json::Bool(true)) =>
        {
            problems.push(format!("{label}: the contract requires a body"))
        }
        _ => {}
    }
    // The response (none at all when the connection was dropped on purpose).
    let Some(status) = exchange.status else {
        return problems;
    };
    let responses = &operation["responses"];
    let Some(response) = responses
        .get(status.to_string())
        .or_else(|| responses.get("default"))
    else {
        problems.push(format!("{label}: status {status} is not in the contract"));
        return problems;
    };
    let response = resolve_ref(response);
    for (name, _) in response
        .get("headers")
        .and_then(Json::as_object)
        .into_iter()
        .flatten()
    {
        if !exchange.response_headers.contains_key(&name.to_lowercase()) {
            problems.push(format!(
                "{label}: response {status} lacks the `{name}` header"
            ));
        }
    }
    match (
        response.pointer("/content/application~1json/schema"),
        &exchange.response_body,
    ) {
        (Some(schema), Some(body)) => {
            for error in schema_errors(schema, body) {
                problems.push(format!("{label}: response {status}: {error}"));
            }
        }
        (Some(_), None) => problems.push(format!("{label}: response {status} has no body")),
        (None, Some(body)) => problems.push(format!(
            "{label}: response {status} has a body ({body}) the contract does not"
        )),
        (None, None) => {}
    }
    problems
}

/// Fails the test with every contract violation among the emulator's exchanges.
pub fn assert_contract(emulator: &Emulator) {
    let exchanges = emulator.exchanges();
    assert!(!exchanges.is_empty(), "no exchanges were recorded");
    let problems: Vec<String> = exchanges.iter().flat_map(contract_violations).collect();
    assert!(
        problems.is_empty(),
        "{} contract violation(s) in {} exchanges:\n{}",
        problems.len(),
        exchanges.len(),
        problems.join("\n")
    );
}

/// The number of droplets the emulator holds.
pub fn droplet_count(emulator: &Emulator) -> usize {
    emulator.droplets().len()
}
