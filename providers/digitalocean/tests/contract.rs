//! Proves the emulator and the client keep DigitalOcean's contract: the checker itself
//! catches violations, the subset's own examples replay through the emulator with the
//! documented statuses, the response examples decode into the client's types, and a
//! whole provider lifecycle exchanges only contract-valid requests and responses.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Value as Json};
use stackctl_digitalocean::api::{DomainRecord, Droplet};
use stackctl_digitalocean::ssh_fingerprint;
use stackctl_do_emulator::Exchange;
use stackctl_provider::{
    Action, ActionKind, ApplyOutcome, Provider, ReadRequest, Reason, RecordedResource, Resource,
};

fn example(name: &str) -> Json {
    spec()["components"]["examples"][name]["value"].clone()
}

fn request_example(method: &str, path: &str) -> Json {
    spec()["paths"][path][method]["requestBody"]["content"]["application/json"]["example"].clone()
}

#[test]
fn the_checker_catches_a_broken_response_and_request() {
    let broken = Exchange {
        method: "GET".into(),
        path: "/v2/droplets/12".into(),
        query: "per_page=5".into(),
        request_body: None,
        status: Some(200),
        response_headers: BTreeMap::new(),
        response_body: Some(json!({"droplet": {"id": "twelve", "name": "web"}})),
    };
    let problems = contract_violations(&broken);
    assert!(
        problems.iter().any(|problem| problem.contains("per_page")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|problem| problem.contains("ratelimit-limit")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|problem| problem.contains("\"twelve\"")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|problem| problem.contains("memory")),
        "required fields: {problems:#?}"
    );
    let bad_request = Exchange {
        method: "POST".into(),
        path: "/v2/firewalls".into(),
        query: String::new(),
        request_body: Some(
            json!({"name": "x", "inbound_rules": [{"protocol": "sctp", "ports": 22}]}),
        ),
        status: None,
        response_headers: BTreeMap::new(),
        response_body: None,
    };
    assert!(contract_violations(&bad_request).len() >= 2);
}

#[test]
fn response_examples_decode_into_the_client_types() {
    let single: Droplet = serde_json::from_value(example("droplet_single")["droplet"].clone())
        .expect("droplet_single");
    assert!(single.public_ipv4().is_some());
    for name in ["droplets_all", "droplets_tagged"] {
        let droplets: Vec<Droplet> =
            serde_json::from_value(example(name)["droplets"].clone()).expect(name);
        assert!(!droplets.is_empty());
    }
    let created: Droplet =
        serde_json::from_value(example("droplet_create_response")["droplet"].clone())
            .expect("create response");
    assert_eq!(created.status, "new");
    assert_eq!(created.public_ipv4(), None);
    let records: Vec<DomainRecord> =
        serde_json::from_value(example("domain_records_all")["domain_records"].clone())
            .expect("records");
    assert!(records.iter().any(|record| record.kind == "NS"));
    // And every example validates against its own schema with our converted schemas.
    assert!(schema_errors(
        &json!({"$ref": "#/components/schemas/droplet"}),
        &example("droplet_single")["droplet"]
    )
    .is_empty());
}

#[tokio::test]
async fn the_subsets_request_examples_replay_through_the_emulator() {
    let emulator = start_emulator().await;
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(stackctl_digitalocean::client::tls_config().unwrap())
        .build()
        .unwrap();
    let base = emulator.base_url();
    let send = |method: reqwest::Method, path: String, body: Option<Json>| {
        let mut request = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.expect("the emulator answers");
            let status = response.status().as_u16();
            let body: Json = response.json().await.unwrap_or(Json::Null);
            (status, body)
        }
    };
    // The examples name two SSH keys and a droplet that must exist in the account:
    // create stand-ins and point the examples at them (everything else is verbatim).
    let (status, key) = send(
        reqwest::Method::POST,
        "/v2/account/keys".into(),
        Some(json!({"name": "example", "public_key": PUBLIC_KEY})),
    )
    .await;
    assert_eq!(status, 201);
    let key_id = key["ssh_key"]["id"].clone();
    let fingerprint = key["ssh_key"]["fingerprint"].clone();
    let with_keys = |mut body: Json| {
        body["ssh_keys"] = json!([key_id.clone(), fingerprint.clone()]);
        body
    };
    let (status, single) = send(
        reqwest::Method::POST,
        "/v2/droplets".into(),
        Some(with_keys(example("droplet_create_request"))),
    )
    .await;
    assert_eq!(status, 202, "{single}");
    let droplet_id = single["droplet"]["id"].as_i64().expect("id");
    let (status, multi) = send(
        reqwest::Method::POST,
        "/v2/droplets".into(),
        Some(with_keys(example("droplet_multi_create_request"))),
    )
    .await;
    assert_eq!(status, 202, "{multi}");
    assert_eq!(multi["droplets"].as_array().map(Vec::len), Some(2));

    let with_droplet = |mut body: Json| {
        if body.get("droplet_ids").is_some() {
            body["droplet_ids"] = json!([droplet_id]);
        }
        body
    };
    let (status, firewall) = send(
        reqwest::Method::POST,
        "/v2/firewalls".into(),
        Some(with_droplet(request_example("post", "/v2/firewalls"))),
    )
    .await;
    assert_eq!(status, 202, "{firewall}");
    let firewall_id = firewall["firewall"]["id"].as_str().expect("id").to_string();
    let (status, updated) = send(
        reqwest::Method::PUT,
        format!("/v2/firewalls/{firewall_id}"),
        Some(with_droplet(request_example(
            "put",
            "/v2/firewalls/{firewall_id}",
        ))),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["firewall"]["name"], "frontend-firewall");
    let (status, _) = send(
        reqwest::Method::POST,
        format!("/v2/firewalls/{firewall_id}/droplets"),
        Some(with_droplet(request_example(
            "post",
            "/v2/firewalls/{firewall_id}/droplets",
        ))),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = send(
        reqwest::Method::DELETE,
        format!("/v2/firewalls/{firewall_id}/droplets"),
        Some(with_droplet(request_example(
            "delete",
            "/v2/firewalls/{firewall_id}/droplets",
        ))),
    )
    .await;
    assert_eq!(status, 204);

    let (status, _) = send(
        reqwest::Method::POST,
        "/v2/domains".into(),
        Some(request_example("post", "/v2/domains")),
    )
    .await;
    assert_eq!(status, 201);
    let (status, record) = send(
        reqwest::Method::POST,
        "/v2/domains/example.com/records".into(),
        Some(request_example("post", "/v2/domains/{domain_name}/records")),
    )
    .await;
    assert_eq!(status, 201, "{record}");
    let record_id = record["domain_record"]["id"].as_i64().expect("id");
    let record_path = format!("/v2/domains/example.com/records/{record_id}");
    let (status, _) = send(
        reqwest::Method::PUT,
        record_path.clone(),
        Some(request_example(
            "put",
            "/v2/domains/{domain_name}/records/{domain_record_id}",
        )),
    )
    .await;
    assert_eq!(status, 200);
    let (status, patched) = send(
        reqwest::Method::PATCH,
        record_path.clone(),
        Some(request_example(
            "patch",
            "/v2/domains/{domain_name}/records/{domain_record_id}",
        )),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(patched["domain_record"]["name"], "blog");

    // Every read endpoint, each filter, and the deletes.
    for path in [
        "/v2/droplets?page=1&per_page=2".to_string(),
        "/v2/droplets?tag_name=web".to_string(),
        "/v2/droplets?name=example.com".to_string(),
        format!("/v2/droplets/{droplet_id}"),
        format!("/v2/actions/{}", single["links"]["actions"][0]["id"]),
        "/v2/account/keys".to_string(),
        format!("/v2/account/keys/{}", key["ssh_key"]["id"]),
        format!(
            "/v2/account/keys/{}",
            key["ssh_key"]["fingerprint"].as_str().unwrap_or("")
        ),
        "/v2/firewalls".to_string(),
        format!("/v2/firewalls/{firewall_id}"),
        "/v2/domains".to_string(),
        "/v2/domains/example.com".to_string(),
        "/v2/domains/example.com/records?type=NS".to_string(),
        "/v2/domains/example.com/records?name=blog.example.com&type=A".to_string(),
        record_path.clone(),
        "/v2/sizes?per_page=3&page=2".to_string(),
        "/v2/regions".to_string(),
        "/v2/droplets/999999".to_string(),
    ] {
        let (status, body) = send(reqwest::Method::GET, path.clone(), None).await;
        assert!(
            status == 200 || path.ends_with("999999"),
            "{path}: {status} {body}"
        );
    }
    for path in [
        record_path,
        "/v2/domains/example.com".to_string(),
        format!("/v2/firewalls/{firewall_id}"),
        format!("/v2/droplets/{droplet_id}"),
        format!("/v2/account/keys/{}", key["ssh_key"]["id"]),
    ] {
        let (status, _) = send(reqwest::Method::DELETE, path.clone(), None).await;
        assert_eq!(status, 204, "{path}");
    }
    let (status, _) = send(
        reqwest::Method::DELETE,
        format!("/v2/droplets/{droplet_id}"),
        None,
    )
    .await;
    assert_eq!(status, 404, "a repeated delete is a 404");
    assert_contract(&emulator);
}

fn action(kind: ActionKind, desired: Option<Resource>, prior: Option<RecordedResource>) -> Action {
    let address = desired
        .as_ref()
        .map(|desired| desired.address.clone())
        .or(prior.as_ref().map(|prior| prior.address.clone()))
        .expect("an address");
    Action {
        address,
        provider: "digitalocean".into(),
        kind,
        reason: Reason::New,
        changes: vec![],
        depends_on: vec![],
        desired,
        prior,
        live_id: None,
    }
}

fn recorded(outcome: ApplyOutcome) -> RecordedResource {
    match outcome {
        ApplyOutcome::Recorded(recorded) => recorded,
        ApplyOutcome::Deleted => panic!("expected a recorded resource"),
    }
}

#[tokio::test]
async fn a_whole_lifecycle_keeps_the_contract_and_leaves_the_account_empty() {
    let emulator = start_emulator().await;
    let provider = provider(&emulator);
    let context = context();
    let key = recorded(
        provider
            .apply(
                &action(ActionKind::Create, Some(ssh_key_resource()), None),
                &context,
            )
            .await
            .expect("key"),
    );
    let fingerprint = ssh_fingerprint(PUBLIC_KEY).expect("fingerprint");
    assert_eq!(
        key.attributes
            .get("fingerprint")
            .and_then(|value| value.as_text()),
        Some(fingerprint.as_str())
    );
    let droplet = recorded(
        provider
            .apply(
                &action(
                    ActionKind::Create,
                    Some(droplet_resource("s-1vcpu-1gb", &fingerprint)),
                    None,
                ),
                &context,
            )
            .await
            .expect("droplet"),
    );
    let droplet_id = droplet.id.clone().expect("droplet id");
    let firewall = recorded(
        provider
            .apply(
                &action(
                    ActionKind::Create,
                    Some(firewall_resource(&droplet_id)),
                    None,
                ),
                &context,
            )
            .await
            .expect("firewall"),
    );
    let apex = recorded(
        provider
            .apply(
                &action(
                    ActionKind::Create,
                    Some(record_resource("@", "127.0.0.1")),
                    None,
                ),
                &context,
            )
            .await
            .expect("apex record"),
    );
    let flower = recorded(
        provider
            .apply(
                &action(
                    ActionKind::Create,
                    Some(record_resource("flower", "127.0.0.1")),
                    None,
                ),
                &context,
            )
            .await
            .expect("flower record"),
    );

    // A read right after apply shows exactly what was recorded.
    let desired = vec![
        ssh_key_resource(),
        droplet_resource("s-1vcpu-1gb", &fingerprint),
        firewall_resource(&droplet_id),
        record_resource("@", "127.0.0.1"),
        record_resource("flower", "127.0.0.1"),
    ];
    let all_recorded = vec![
        key.clone(),
        droplet.clone(),
        firewall.clone(),
        apex.clone(),
        flower.clone(),
    ];
    let live = provider
        .read(&ReadRequest {
            stack: STACK.into(),
            salt: "salt".into(),
            desired: desired.clone(),
            recorded: all_recorded.clone(),
        })
        .await
        .expect("read");
    assert_eq!(live.len(), 5);
    for resource in &live {
        let state = all_recorded
            .iter()
            .find(|recorded| recorded.address == resource.address)
            .expect("recorded");
        assert_eq!(
            resource.attributes, state.attributes,
            "no drift right after apply for {}",
            resource.address
        );
        assert!(resource.owned);
    }

    // Destroy in reverse dependency order: the account ends empty.
    for prior in [flower, apex, firewall, droplet, key] {
        let outcome = provider
            .apply(&action(ActionKind::Delete, None, Some(prior)), &context)
            .await
            .expect("deleted");
        assert_eq!(outcome, ApplyOutcome::Deleted);
    }
    let state = emulator.state();
    for collection in ["droplets", "ssh_keys", "firewalls", "domains"] {
        assert_eq!(
            state[collection].as_array().map(Vec::len),
            Some(0),
            "{collection} left: {}",
            state[collection]
        );
    }
    assert_contract(&emulator);
}
