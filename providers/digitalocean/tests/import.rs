//! Proves `import` adopts existing objects by id, without changing them, recording them
//! so that an unchanged resource plans nothing afterwards (same hash as desired).

mod common;

use common::*;
use serde_json::json;
use stackctl_digitalocean::api::{
    DomainRecordRequest, FirewallRequest, FirewallTarget, InboundRule, OutboundRule,
};
use stackctl_provider::{Address, Provider};

#[tokio::test]
async fn each_kind_is_imported_by_id_with_the_desired_hash() {
    let emulator = start_emulator().await;
    let client = client(&emulator);
    let key = client
        .create_ssh_key("shop-deploy", PUBLIC_KEY)
        .await
        .expect("key");
    let (droplet, _) = client
        .create_droplet(&json!({
            "name": "web-1", "region": "fra1", "size": "s-1vcpu-1gb", "image": "docker-20-04",
            "ssh_keys": [key.fingerprint], "tags": ["stackctl:shop"],
        }))
        .await
        .expect("droplet");
    client
        .wait_for_droplet_ready(droplet.id, &fast_poll())
        .await
        .expect("ready");
    let all = vec!["0.0.0.0/0".to_string(), "::/0".to_string()];
    let everywhere = FirewallTarget {
        addresses: Some(all.clone()),
        ..Default::default()
    };
    let firewall = client
        .create_firewall(&FirewallRequest {
            name: "shop-web".into(),
            inbound_rules: vec![
                InboundRule {
                    protocol: "tcp".into(),
                    ports: "22".into(),
                    sources: FirewallTarget {
                        addresses: Some(vec!["203.0.113.0/24".into()]),
                        ..Default::default()
                    },
                },
                InboundRule {
                    protocol: "tcp".into(),
                    ports: "80".into(),
                    sources: everywhere.clone(),
                },
                InboundRule {
                    protocol: "tcp".into(),
                    ports: "443".into(),
                    sources: everywhere.clone(),
                },
            ],
            outbound_rules: ["tcp", "udp", "icmp"]
                .iter()
                .map(|protocol| OutboundRule {
                    protocol: protocol.to_string(),
                    ports: "0".into(),
                    destinations: everywhere.clone(),
                })
                .collect(),
            droplet_ids: vec![droplet.id],
            tags: vec![],
        })
        .await
        .expect("firewall");
    client.create_domain("example.com").await.expect("domain");
    let record = client
        .create_record(
            "example.com",
            &DomainRecordRequest {
                kind: "A".into(),
                name: "@".into(),
                data: "127.0.0.1".into(),
                ttl: 1800,
            },
        )
        .await
        .expect("record");
    let before = emulator.state();
    emulator.clear_exchanges();

    let provider = provider(&emulator);
    let context = context();
    let cases = [
        (ssh_key_resource(), key.id.to_string()),
        (
            droplet_resource("s-1vcpu-1gb", &key.fingerprint),
            droplet.id.to_string(),
        ),
        (
            firewall_resource(&droplet.id.to_string()),
            firewall.id.clone(),
        ),
        (record_resource("@", "127.0.0.1"), record.id.to_string()),
    ];
    for (desired, id) in cases {
        let imported = provider
            .import(&desired.address, &id, Some(&desired), &context)
            .await
            .expect("imported");
        assert_eq!(imported.id.as_deref(), Some(id.as_str()));
        assert_eq!(
            imported.hash,
            desired.hash(),
            "{}: unchanged, so the next plan is empty",
            desired.address
        );
        assert_eq!(imported.provider, "digitalocean");
    }
    // The record also imports as `<domain>/<id>` with no stack.toml entry.
    let address = Address::new("dns_record", "apex");
    let imported = provider
        .import(
            &address,
            &format!("example.com/{}", record.id),
            None,
            &context,
        )
        .await
        .expect("imported");
    assert_eq!(
        imported
            .attributes
            .get("data")
            .and_then(|value| value.as_text()),
        Some("127.0.0.1")
    );

    // An import changes nothing.
    assert!(emulator
        .exchanges()
        .iter()
        .all(|exchange| exchange.method == "GET"));
    let mut after = emulator.state();
    let mut before = before;
    for state in [&mut before, &mut after] {
        state["requests_in_window"] = json!(0);
        for firewall in state["firewalls"].as_array_mut().into_iter().flatten() {
            firewall["status"] = json!("any");
        }
    }
    assert_eq!(before, after);

    // A missing id is a clear error.
    let error = provider
        .import(&Address::new("droplet", "web-1"), "424242", None, &context)
        .await
        .expect_err("no such droplet");
    assert!(error.to_string().contains("424242"));
    assert_contract(&emulator);
}

#[tokio::test]
async fn an_existing_key_with_the_same_fingerprint_is_adopted_not_duplicated() {
    let emulator = start_emulator().await;
    client(&emulator)
        .create_ssh_key("laptop", PUBLIC_KEY)
        .await
        .expect("pre-existing key");
    let provider = provider(&emulator);
    let desired = ssh_key_resource();
    let action = stackctl_provider::Action {
        address: desired.address.clone(),
        provider: "digitalocean".into(),
        kind: stackctl_provider::ActionKind::Create,
        reason: stackctl_provider::Reason::New,
        changes: vec![],
        depends_on: vec![],
        desired: Some(desired),
        prior: None,
        live_id: None,
    };
    provider.apply(&action, &context()).await.expect("adopted");
    let keys = emulator.state()["ssh_keys"].clone();
    assert_eq!(keys.as_array().map(Vec::len), Some(1), "{keys}");
    assert_eq!(
        keys[0]["name"], "shop-deploy",
        "renamed to the stack's name"
    );
}
