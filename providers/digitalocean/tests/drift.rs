//! Proves changes made outside stackctl read back per field in the desired shape, and
//! that an update repairs them (a resize is power off, resize, power on).

mod common;

use common::*;
use stackctl_digitalocean::api::{DomainRecordRequest, FirewallRequest};
use stackctl_digitalocean::ssh_fingerprint;
use stackctl_provider::{
    Action, ActionKind, ApplyOutcome, Attributes, LiveResource, Provider, ReadRequest, Reason,
    RecordedResource, Resource, Value,
};

fn action(kind: ActionKind, desired: Resource, prior: Option<RecordedResource>) -> Action {
    Action {
        address: desired.address.clone(),
        provider: "digitalocean".into(),
        kind,
        reason: Reason::New,
        changes: vec![],
        depends_on: vec![],
        desired: Some(desired),
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

/// Attribute names whose values differ between live and recorded.
fn drifted(live: &LiveResource, recorded: &RecordedResource) -> Vec<String> {
    let names: std::collections::BTreeSet<&String> = live
        .attributes
        .keys()
        .chain(recorded.attributes.keys())
        .collect();
    names
        .into_iter()
        .filter(|name| live.attributes.get(*name) != recorded.attributes.get(*name))
        .cloned()
        .collect()
}

struct Stack {
    desired: Vec<Resource>,
    recorded: Vec<RecordedResource>,
}

async fn applied_stack(emulator: &stackctl_do_emulator::Emulator) -> Stack {
    let provider = provider(emulator);
    let context = context();
    let fingerprint = ssh_fingerprint(PUBLIC_KEY).expect("fingerprint");
    let mut desired = vec![
        ssh_key_resource(),
        droplet_resource("s-1vcpu-1gb", &fingerprint),
    ];
    let mut recorded_resources = Vec::new();
    for resource in desired.clone() {
        recorded_resources.push(recorded(
            provider
                .apply(&action(ActionKind::Create, resource, None), &context)
                .await
                .expect("created"),
        ));
    }
    let droplet_id = recorded_resources[1].id.clone().expect("id");
    for resource in [
        firewall_resource(&droplet_id),
        record_resource("@", "127.0.0.1"),
    ] {
        recorded_resources.push(recorded(
            provider
                .apply(
                    &action(ActionKind::Create, resource.clone(), None),
                    &context,
                )
                .await
                .expect("created"),
        ));
        desired.push(resource);
    }
    Stack {
        desired,
        recorded: recorded_resources,
    }
}

async fn read(emulator: &stackctl_do_emulator::Emulator, stack: &Stack) -> Vec<LiveResource> {
    provider(emulator)
        .read(&ReadRequest {
            stack: STACK.into(),
            salt: "salt".into(),
            desired: stack.desired.clone(),
            recorded: stack.recorded.clone(),
        })
        .await
        .expect("read")
}

fn find<'a>(live: &'a [LiveResource], address: &str) -> &'a LiveResource {
    live.iter()
        .find(|resource| resource.address.to_string() == address)
        .unwrap_or_else(|| panic!("{address} not read"))
}

#[tokio::test]
async fn out_of_band_changes_read_back_per_field() {
    let emulator = start_emulator().await;
    let stack = applied_stack(&emulator).await;
    let droplet_id: i64 = stack.recorded[1]
        .id
        .as_deref()
        .and_then(|id| id.parse().ok())
        .expect("id");

    // Nothing changed yet: no drift anywhere.
    let live = read(&emulator, &stack).await;
    for (resource, recorded) in live.iter().zip(&stack.recorded) {
        assert!(
            drifted(resource, recorded).is_empty(),
            "{}: {:?}",
            resource.address,
            drifted(resource, recorded)
        );
    }

    assert!(emulator.resize_out_of_band(droplet_id, "s-2vcpu-4gb"));
    assert!(emulator.power_off_out_of_band(droplet_id));
    let client = client(&emulator);
    let firewall_id = stack.recorded[2].id.clone().expect("firewall id");
    let firewall = client
        .get_firewall(&firewall_id)
        .await
        .expect("read")
        .expect("exists");
    let mut inbound = firewall.inbound_rules.clone().unwrap_or_default();
    inbound.push(stackctl_digitalocean::api::InboundRule {
        protocol: "tcp".into(),
        ports: "8080".into(),
        sources: stackctl_digitalocean::api::FirewallTarget {
            addresses: Some(vec!["0.0.0.0/0".into()]),
            ..Default::default()
        },
    });
    client
        .update_firewall(
            &firewall_id,
            &FirewallRequest {
                name: firewall.name.clone(),
                inbound_rules: inbound,
                outbound_rules: firewall.outbound_rules.clone().unwrap_or_default(),
                droplet_ids: firewall.droplet_ids.clone().unwrap_or_default(),
                tags: vec![],
            },
        )
        .await
        .expect("rule added by hand");
    let record_id: i64 = stack.recorded[3]
        .id
        .as_deref()
        .and_then(|id| id.parse().ok())
        .expect("record id");
    client
        .update_record(
            "example.com",
            record_id,
            &DomainRecordRequest {
                kind: "A".into(),
                name: "@".into(),
                data: "198.51.100.7".into(),
                ttl: 300,
            },
        )
        .await
        .expect("record changed by hand");

    let live = read(&emulator, &stack).await;
    let droplet = find(&live, "droplet.web-1");
    assert_eq!(
        drifted(droplet, &stack.recorded[1]),
        vec!["size".to_string(), "status".to_string()]
    );
    assert_eq!(
        droplet.attributes.get("size"),
        Some(&Value::text("s-2vcpu-4gb"))
    );
    assert_eq!(droplet.attributes.get("status"), Some(&Value::text("off")));
    let firewall_live = find(&live, "firewall.web");
    assert_eq!(
        drifted(firewall_live, &stack.recorded[2]),
        vec!["inbound_rules".to_string()]
    );
    let rules = firewall_live
        .attributes
        .get("inbound_rules")
        .and_then(Value::as_list)
        .expect("rules");
    assert_eq!(
        rules.len(),
        4,
        "the three declared rules, then the added one"
    );
    assert_eq!(
        &rules[..3],
        stack.recorded[2]
            .attributes
            .get("inbound_rules")
            .and_then(Value::as_list)
            .expect("recorded")
    );
    let record = find(&live, "dns_record.apex");
    assert_eq!(
        drifted(record, &stack.recorded[3]),
        vec!["data".to_string(), "ttl".to_string()]
    );

    // Retagging: the droplet is still found by its recorded id, and no longer owned.
    assert!(emulator.retag_out_of_band(droplet_id, vec!["hand-made".into()]));
    let live = read(&emulator, &stack).await;
    let droplet = find(&live, "droplet.web-1");
    assert!(drifted(droplet, &stack.recorded[1]).contains(&"tags".to_string()));
    assert!(!droplet.owned);

    // And an update puts the stack's tag back and removes the stray one.
    let mut update = action(
        ActionKind::Update,
        stack.desired[1].clone(),
        Some(stack.recorded[1].clone()),
    );
    update.live_id = Some(droplet_id.to_string());
    provider(&emulator)
        .apply(&update, &context())
        .await
        .expect("repaired");
    assert_eq!(
        emulator.droplets()[0]["tags"],
        serde_json::json!(["stackctl:shop"])
    );
    assert_contract(&emulator);
}

#[tokio::test]
async fn an_update_repairs_a_resize_and_a_power_off() {
    let emulator = start_emulator().await;
    let stack = applied_stack(&emulator).await;
    let droplet_id: i64 = stack.recorded[1]
        .id
        .as_deref()
        .and_then(|id| id.parse().ok())
        .expect("id");
    assert!(emulator.resize_out_of_band(droplet_id, "s-2vcpu-4gb"));

    let provider = provider(&emulator);
    let mut update = action(
        ActionKind::Update,
        stack.desired[1].clone(),
        Some(stack.recorded[1].clone()),
    );
    update.live_id = Some(droplet_id.to_string());
    let repaired = recorded(provider.apply(&update, &context()).await.expect("repaired"));
    assert_eq!(
        repaired.attributes.get("size"),
        Some(&Value::text("s-1vcpu-1gb"))
    );
    assert_eq!(
        repaired.attributes.get("status"),
        Some(&Value::text("active"))
    );
    let droplets = emulator.droplets();
    assert_eq!(droplets[0]["size_slug"], "s-1vcpu-1gb");
    assert_eq!(droplets[0]["status"], "active");
    let actions: Vec<String> = emulator
        .exchanges()
        .iter()
        .filter(|exchange| exchange.path.ends_with("/actions") && exchange.method == "POST")
        .filter_map(|exchange| {
            exchange
                .request_body
                .as_ref()?
                .get("type")?
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(actions, vec!["power_off", "resize", "power_on"]);

    // A droplet merely powered off is powered back on.
    assert!(emulator.power_off_out_of_band(droplet_id));
    let repaired = recorded(
        provider
            .apply(&update, &context())
            .await
            .expect("powered on"),
    );
    assert_eq!(
        repaired.attributes.get("status"),
        Some(&Value::text("active"))
    );

    // And a size change in stack.toml is the same in-place update.
    let mut bigger = stack.desired[1].clone();
    bigger
        .attributes
        .insert("size".into(), Value::text("s-2vcpu-2gb"));
    let mut resize = action(ActionKind::Update, bigger, Some(repaired));
    resize.live_id = Some(droplet_id.to_string());
    let resized = recorded(provider.apply(&resize, &context()).await.expect("resized"));
    assert_eq!(
        resized.attributes.get("size"),
        Some(&Value::text("s-2vcpu-2gb"))
    );
    assert_eq!(
        resized.id.as_deref(),
        Some(droplet_id.to_string().as_str()),
        "same droplet, not a new one"
    );
    assert_eq!(droplet_count(&emulator), 1);
    let _ = Attributes::new();
    assert_contract(&emulator);
}

#[test]
fn droplet_region_and_image_force_replacement() {
    let provider = stackctl_digitalocean::DigitalOceanProvider::new(
        stackctl_digitalocean::ClientConfig::new("http://127.0.0.1:1", None),
        Default::default(),
    )
    .expect("provider");
    let kinds = provider.kinds();
    let droplet = kinds
        .iter()
        .find(|kind| kind.kind == "droplet")
        .expect("droplet kind");
    assert!(droplet.forces_replace("region"));
    assert!(droplet.forces_replace("image"));
    assert!(!droplet.forces_replace("size"));
    for computed in ["id", "ipv4", "status"] {
        assert!(droplet.is_computed(computed));
    }
    let names: Vec<&str> = kinds.iter().map(|kind| kind.kind).collect();
    assert_eq!(names, vec!["ssh_key", "droplet", "firewall", "dns_record"]);
}

#[tokio::test]
async fn a_lost_answer_to_a_droplet_action_is_not_fatal() {
    let emulator = start_emulator().await;
    let stack = applied_stack(&emulator).await;
    let droplet_id: i64 = stack.recorded[1]
        .id
        .as_deref()
        .and_then(|id| id.parse().ok())
        .expect("id");
    assert!(emulator.resize_out_of_band(droplet_id, "s-2vcpu-4gb"));
    // The power-off is carried out, but its answer never arrives.
    emulator.set_faults(stackctl_do_emulator::Faults {
        drop_after_commit: 1,
        only: Some(format!("POST /v2/droplets/{droplet_id}/actions")),
        ..Default::default()
    });
    let mut update = action(
        ActionKind::Update,
        stack.desired[1].clone(),
        Some(stack.recorded[1].clone()),
    );
    update.live_id = Some(droplet_id.to_string());
    let repaired = recorded(
        provider(&emulator)
            .apply(&update, &context())
            .await
            .expect("repaired anyway"),
    );
    assert_eq!(
        repaired.attributes.get("size"),
        Some(&Value::text("s-1vcpu-1gb"))
    );
    assert_eq!(emulator.droplets()[0]["status"], "active");
    let power_offs: Vec<Option<u16>> = emulator
        .exchanges()
        .iter()
        .filter(|exchange| {
            exchange
                .request_body
                .as_ref()
                .and_then(|body| body.get("type"))
                .and_then(|kind| kind.as_str())
                == Some("power_off")
        })
        .map(|exchange| exchange.status)
        .collect();
    assert_eq!(
        power_offs,
        vec![None],
        "one power-off, unanswered, and not sent again"
    );
    assert_contract(&emulator);
}
