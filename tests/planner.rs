//! The three-way planning table of DESIGN.md, one named test per row, plus the rules
//! around it (replace order, references, deletes in reverse order, --target, offline).

use std::collections::BTreeMap;

use stackctl::plan::{plan, LiveSnapshot, Plan, PlanInput, PlanMode, SchemaSet, StateIdentity};
use stackctl_provider::{
    ActionKind, Address, AttributeSchema, KindSchema, LiveResource, Reason, RecordedResource,
    Reference, ReplaceOrder, Resource, Secret, Value,
};

fn address(text: &str) -> Address {
    Address::parse(text).unwrap()
}

fn service(name: &str, image: &str) -> Resource {
    Resource::new(address(&format!("service.{name}")), "docker")
        .with("image", image)
        .with("memory", 512i64)
}

fn schemas() -> SchemaSet {
    SchemaSet::new([
        KindSchema {
            kind: "service",
            provider: "docker",
            attributes: vec![
                AttributeSchema::replaces("image"),
                AttributeSchema::computed("container_id"),
                AttributeSchema::found_by_apply("servers"),
            ],
        },
        KindSchema {
            kind: "droplet",
            provider: "digitalocean",
            attributes: vec![AttributeSchema::replaces("region")],
        },
    ])
}

fn recorded(resource: &Resource) -> RecordedResource {
    let mut record =
        RecordedResource::from_desired(resource, Some(format!("id-{}", resource.address.name())));
    record
        .attributes
        .insert("container_id".into(), Value::text("c0ffee"));
    record
}

fn live_of(record: &RecordedResource) -> LiveResource {
    LiveResource {
        address: record.address.clone(),
        id: record.id.clone(),
        attributes: record.attributes.clone(),
        owned: true,
    }
}

fn snapshot(resources: Vec<LiveResource>) -> LiveSnapshot {
    LiveSnapshot {
        resources: resources
            .into_iter()
            .map(|resource| (resource.address.clone(), resource))
            .collect(),
        read_providers: ["docker".to_string()].into(),
        unread: Vec::new(),
    }
}

fn run(desired: &[Resource], state: &[RecordedResource], live: Option<&LiveSnapshot>) -> Plan {
    run_with_targets(desired, state, live, &[])
}

fn run_with_targets(
    desired: &[Resource],
    state: &[RecordedResource],
    live: Option<&LiveSnapshot>,
    targets: &[Address],
) -> Plan {
    let recorded: BTreeMap<Address, RecordedResource> = state
        .iter()
        .map(|record| (record.address.clone(), record.clone()))
        .collect();
    plan(&PlanInput {
        stack: "shop",
        desired,
        recorded: &recorded,
        state: StateIdentity {
            lineage: Some("lineage".into()),
            serial: 3,
        },
        config_fingerprint: "fingerprint".into(),
        live: live.ok_or_else(|| "--offline".to_string()),
        schemas: &schemas(),
        targets,
        mode: PlanMode::Apply,
    })
}

fn only_action(plan: &Plan) -> &stackctl_provider::Action {
    assert_eq!(
        plan.actions.len(),
        1,
        "expected one action, got {:#?}",
        plan.actions
    );
    &plan.actions[0]
}

#[test]
fn row_1_desired_not_recorded_not_live_is_created() {
    let api = service("api", "api:1");
    let plan = run(&[api], &[], Some(&snapshot(vec![])));
    let action = only_action(&plan);
    assert_eq!(action.kind, ActionKind::Create);
    assert_eq!(action.reason, Reason::New);
    assert!(action.changes.iter().all(|change| change.before.is_none()));
}

#[test]
fn row_2_recorded_matches_live_and_hash_is_a_no_op() {
    let api = service("api", "api:1");
    let record = recorded(&api);
    let plan = run(
        &[api],
        std::slice::from_ref(&record),
        Some(&snapshot(vec![live_of(&record)])),
    );
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
    assert_eq!(plan.unchanged, vec![address("service.api")]);
}

#[test]
fn row_3_config_change_updates_in_place() {
    let record = recorded(&service("api", "api:1"));
    let changed = service("api", "api:1").with("memory", 1024i64);
    let plan = run(
        &[changed],
        std::slice::from_ref(&record),
        Some(&snapshot(vec![live_of(&record)])),
    );
    let action = only_action(&plan);
    assert_eq!(action.kind, ActionKind::Update);
    assert_eq!(action.reason, Reason::ConfigChanged);
    assert_eq!(action.changes.len(), 1);
    assert_eq!(action.changes[0].attribute, "memory");
    assert_eq!(action.changes[0].before, Some(Value::Integer(512)));
    assert_eq!(action.changes[0].after, Some(Value::Integer(1024)));
}

#[test]
fn row_3_config_change_of_a_forcing_attribute_replaces_create_before_destroy() {
    let record = recorded(&service("api", "api:1"));
    let plan = run(
        &[service("api", "api:2")],
        std::slice::from_ref(&record),
        Some(&snapshot(vec![live_of(&record)])),
    );
    let action = only_action(&plan);
    assert_eq!(action.kind, ActionKind::ReplaceCreateBeforeDestroy);
    assert_eq!(
        action.reason,
        Reason::ReplaceForced {
            attributes: vec!["image".into()]
        }
    );
    assert!(action.changes[0].forces_replace);
}

#[test]
fn row_3_a_stateful_resource_is_replaced_destroy_before_create() {
    let mut old = service("postgres", "postgres:15");
    old.replace_order = ReplaceOrder::DestroyBeforeCreate;
    let record = recorded(&old);
    let mut new = service("postgres", "postgres:16");
    new.replace_order = ReplaceOrder::DestroyBeforeCreate;
    let plan = run(
        &[new],
        std::slice::from_ref(&record),
        Some(&snapshot(vec![live_of(&record)])),
    );
    assert_eq!(
        only_action(&plan).kind,
        ActionKind::ReplaceDestroyBeforeCreate
    );
}

#[test]
fn row_4_live_differs_from_recorded_is_repaired_with_reason_drift() {
    let api = service("api", "api:1");
    let record = recorded(&api);
    let mut live = live_of(&record);
    live.attributes.insert("memory".into(), Value::Integer(64));
    let plan = run(&[api], &[record], Some(&snapshot(vec![live])));
    let action = only_action(&plan);
    assert_eq!(action.kind, ActionKind::Update);
    assert_eq!(
        action.reason,
        Reason::Drift {
            attributes: vec!["memory".into()]
        }
    );
    assert_eq!(
        action.changes[0].before,
        Some(Value::Integer(64)),
        "before is what is live"
    );
    assert_eq!(
        action.changes[0].after,
        Some(Value::Integer(512)),
        "after is what stack.toml wants"
    );
    assert!(action.reason.to_string().starts_with("drift:"));
}

#[test]
fn row_4_drift_on_a_forcing_attribute_replaces() {
    let api = service("api", "api:1");
    let record = recorded(&api);
    let mut live = live_of(&record);
    live.attributes
        .insert("image".into(), Value::text("someone-elses:latest"));
    let plan = run(&[api], &[record], Some(&snapshot(vec![live])));
    let action = only_action(&plan);
    assert_eq!(action.kind, ActionKind::ReplaceCreateBeforeDestroy);
    assert!(matches!(action.reason, Reason::Drift { .. }));
}

#[test]
fn row_5_recorded_but_absent_live_is_recreated_as_vanished() {
    let api = service("api", "api:1");
    let record = recorded(&api);
    let plan = run(&[api], &[record], Some(&snapshot(vec![])));
    let action = only_action(&plan);
    assert_eq!(action.kind, ActionKind::Create);
    assert_eq!(action.reason, Reason::Vanished);
}

#[test]
fn row_6_recorded_but_no_longer_desired_is_deleted_in_reverse_dependency_order() {
    let network = Resource::new(address("network.edge"), "docker").with("name", "shop_edge");
    let api = service("api", "api:1").depends_on(address("network.edge"));
    let records = vec![recorded(&network), recorded(&api)];
    let live: Vec<_> = records.iter().map(live_of).collect();
    let plan = run(&[], &records, Some(&snapshot(live)));
    let order: Vec<String> = plan
        .actions
        .iter()
        .map(|action| action.address.to_string())
        .collect();
    assert_eq!(order, ["service.api", "network.edge"]);
    assert!(plan
        .actions
        .iter()
        .all(|action| action.kind == ActionKind::Delete
            && action.reason == Reason::RemovedFromConfig));
    assert_eq!(
        plan.actions[1].depends_on,
        vec![address("service.api")],
        "the network waits for the service's delete"
    );
}

#[test]
fn row_6_a_delete_also_shows_the_computed_facts_only_the_live_resource_reports() {
    // A swarm node's `services` (what moves when it goes) is read live and never
    // recorded; a plain live-only attribute (not computed) is not shown.
    let api = service("api", "api:1");
    let record = recorded(&api);
    let mut live = live_of(&record);
    live.attributes
        .insert("container_id".into(), Value::text("c0ffee"));
    let plan = run(
        &[],
        std::slice::from_ref(&record),
        Some(&snapshot(vec![live.clone()])),
    );
    let shown: Vec<&str> = only_action(&plan)
        .changes
        .iter()
        .map(|change| change.attribute.as_str())
        .collect();
    assert_eq!(
        shown,
        ["container_id", "image", "memory"],
        "what state recorded"
    );

    let mut record_without = record.clone();
    record_without.attributes.remove("container_id");
    live.attributes.insert("unread".into(), Value::text("x"));
    let plan = run(&[], &[record_without], Some(&snapshot(vec![live])));
    let action = only_action(&plan);
    let container = action
        .changes
        .iter()
        .find(|change| change.attribute == "container_id")
        .expect("the live-only computed attribute is shown");
    assert_eq!(container.before, Some(Value::text("c0ffee")));
    assert_eq!(container.after, None);
    assert!(
        !action
            .changes
            .iter()
            .any(|change| change.attribute == "unread"),
        "only computed attributes come from the live resource"
    );
}

#[test]
fn row_7_live_and_labelled_ours_but_not_recorded_is_adopted() {
    let api = service("api", "api:1");
    let found = LiveResource {
        address: api.address.clone(),
        id: Some("c1".into()),
        attributes: api.attributes.clone(),
        owned: true,
    };
    let plan = run(&[api], &[], Some(&snapshot(vec![found])));
    let action = only_action(&plan);
    assert_eq!(action.kind, ActionKind::Adopt);
    assert_eq!(action.reason, Reason::FoundUnrecorded);
    assert_eq!(action.live_id.as_deref(), Some("c1"));
    assert!(
        action.changes.is_empty(),
        "nothing to change: adopted as is"
    );
}

#[test]
fn live_but_not_ours_is_created_with_a_warning() {
    let api = service("api", "api:1");
    let found = LiveResource {
        address: api.address.clone(),
        id: Some("c1".into()),
        attributes: api.attributes.clone(),
        owned: false,
    };
    let plan = run(&[api], &[], Some(&snapshot(vec![found])));
    assert_eq!(only_action(&plan).kind, ActionKind::Create);
    assert!(plan.warnings[0].contains("without this stack's labels"));
}

#[test]
fn offline_plans_from_recorded_state_and_says_so() {
    let api = service("api", "api:1");
    let record = recorded(&api);
    let plan = run(&[api, service("web", "web:1")], &[record], None);
    assert_eq!(
        plan.live,
        stackctl::plan::LiveStatus::NotRead {
            reason: "--offline".into()
        }
    );
    let action = only_action(&plan);
    assert_eq!(action.address, address("service.web"));
}

#[test]
fn values_known_after_apply_resolve_from_state_unless_their_source_is_renewed() {
    let droplet =
        Resource::new(address("droplet.web-1"), "digitalocean").with("size", "s-1vcpu-1gb");
    let record_droplet = {
        let mut record = RecordedResource::from_desired(&droplet, Some("42".into()));
        record
            .attributes
            .insert("ipv4".into(), Value::text("203.0.113.7"));
        record
    };
    let reference = Value::Unknown(Reference {
        address: address("droplet.web-1"),
        attribute: "ipv4".into(),
    });
    let record_dns = Resource::new(address("dns_record.apex"), "digitalocean")
        .with("data", "203.0.113.7")
        .depends_on(address("droplet.web-1"));
    let dns = Resource::new(address("dns_record.apex"), "digitalocean")
        .with("data", reference.clone())
        .depends_on(address("droplet.web-1"));

    // The droplet stays: the record's data resolves to its recorded IP, so nothing changes.
    let unchanged = run(
        &[droplet.clone(), dns.clone()],
        &[
            record_droplet.clone(),
            RecordedResource::from_desired(&record_dns, None),
        ],
        None,
    );
    assert!(unchanged.actions.is_empty(), "{:#?}", unchanged.actions);

    // A new droplet: the record's data is known only after apply.
    let fresh = run(&[droplet, dns], &[], None);
    let record_action = fresh
        .actions
        .iter()
        .find(|action| action.address == address("dns_record.apex"))
        .unwrap();
    let data = record_action
        .changes
        .iter()
        .find(|change| change.attribute == "data")
        .unwrap();
    assert_eq!(data.after, Some(reference));
    assert_eq!(record_action.depends_on, vec![address("droplet.web-1")]);
}

#[test]
fn a_changed_secret_is_a_sensitive_change() {
    let old = service("api", "api:1").with(
        "env",
        Value::Map(
            [(
                "PASSWORD".to_string(),
                Value::Secret(Secret::new("first-pa55word", "salt")),
            )]
            .into(),
        ),
    );
    let new = service("api", "api:1").with(
        "env",
        Value::Map(
            [(
                "PASSWORD".to_string(),
                Value::Secret(Secret::new("second-pa55word", "salt")),
            )]
            .into(),
        ),
    );
    let plan = run(&[new], &[recorded(&old)], None);
    let change = &only_action(&plan).changes[0];
    assert!(change.sensitive);
    let text = stackctl::render::text::render(&plan, false);
    assert!(
        text.contains("env.PASSWORD: (sensitive value changed)"),
        "{text}"
    );
    assert!(!text.contains("pa55word"), "{text}");
}

#[test]
fn target_limits_the_plan_to_the_address_and_its_dependencies_with_a_warning() {
    let network = Resource::new(address("network.edge"), "docker").with("name", "shop_edge");
    let api = service("api", "api:1").depends_on(address("network.edge"));
    let web = service("web", "web:1");
    let plan = run_with_targets(&[network, api, web], &[], None, &[address("service.api")]);
    let addresses: Vec<String> = plan
        .actions
        .iter()
        .map(|action| action.address.to_string())
        .collect();
    assert_eq!(addresses, ["network.edge", "service.api"]);
    assert!(plan
        .warnings
        .iter()
        .any(|warning| warning.contains("limited to `service.api`")));
}

#[test]
fn creates_come_in_dependency_order() {
    let volume = Resource::new(address("volume.pgdata"), "docker");
    let postgres = service("postgres", "postgres:16").depends_on(address("volume.pgdata"));
    let api = service("api", "api:1").depends_on(address("service.postgres"));
    let plan = run(&[api, postgres, volume], &[], None);
    let order: Vec<String> = plan
        .actions
        .iter()
        .map(|action| action.address.to_string())
        .collect();
    assert_eq!(order, ["volume.pgdata", "service.postgres", "service.api"]);
}

#[test]
fn everything_on_a_replaced_droplet_is_created_again() {
    let old_droplet =
        Resource::new(address("droplet.web-1"), "digitalocean").with("region", "fra1");
    let mut new_droplet =
        Resource::new(address("droplet.web-1"), "digitalocean").with("region", "ams3");
    new_droplet.replace_order = ReplaceOrder::DestroyBeforeCreate;
    let api = service("api", "api:1").depends_on(address("droplet.web-1"));
    let recorded_droplet = RecordedResource::from_desired(&old_droplet, Some("42".into()));
    let plan = run(
        &[new_droplet, api.clone()],
        &[recorded_droplet, recorded(&api)],
        None,
    );
    let kinds: Vec<(String, ActionKind)> = plan
        .actions
        .iter()
        .map(|action| (action.address.to_string(), action.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "droplet.web-1".to_string(),
                ActionKind::ReplaceDestroyBeforeCreate
            ),
            ("service.api".to_string(), ActionKind::Create)
        ]
    );
    assert_eq!(
        plan.actions[1].reason,
        Reason::HostRenewed {
            host: address("droplet.web-1")
        }
    );
    assert_eq!(
        plan.data_loss().len(),
        1,
        "replacing a droplet loses what is on it: --allow-data-loss is required"
    );
}

// ---- routes and the services they reach, with the real lowering and schemas -------------

/// A local stack with an edge and two services on one network; `routes` are appended.
fn routed_stack(routes: &str) -> String {
    format!(
        r#"
[stack]
name = "shop"

[target]
host = "local"

[edge]
image = "traefik:v3.3"

[services.web]
image = "web:1"
port = 3000
networks = ["front"]

[services.admin]
image = "admin:1"
port = 4000
networks = ["front"]

[routes.web]
host = "example.test"
service = "web"
{routes}"#
    )
}

const ADMIN_ROUTE: &str = r#"
[routes.admin]
host = "admin.example.test"
service = "admin"
"#;

/// `text` as stack.toml, lowered as the CLI lowers it.
fn lowered_stack(text: &str) -> Vec<Resource> {
    lowered_stack_with(text, BTreeMap::new())
}

/// `text` as stack.toml with `environment` as the process environment.
fn lowered_stack_with(text: &str, environment: BTreeMap<String, String>) -> Vec<Resource> {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let source = stackctl::config::SourceFile {
        name: "stack.toml".to_string(),
        text: text.to_string(),
    };
    let options = stackctl::config::LoadOptions {
        process_environment: environment,
        ..Default::default()
    };
    let loaded = stackctl::config::load_text(source, directory.path(), &options)
        .unwrap_or_else(|errors| panic!("the test stack is invalid: {:#?}", errors.diagnostics));
    stackctl::lower::lower(
        &loaded,
        &stackctl::context::ExternalInputs::default(),
        "salt",
    )
}

/// The schemas of the real Docker and Traefik providers, which say what forces a replace.
fn provider_schemas() -> SchemaSet {
    use stackctl_provider::Provider;
    let connector = std::sync::Arc::new(stackctl_host::HostConnector::local());
    let docker = stackctl_docker::DockerProvider::new(connector.clone(), "shop");
    let traefik = stackctl_traefik::TraefikProvider::new(connector, "shop");
    SchemaSet::new(docker.kinds().into_iter().chain(traefik.kinds()))
}

/// What the first apply of `desired` records: each resource as desired.
fn applied(desired: &[Resource]) -> Vec<RecordedResource> {
    desired
        .iter()
        .map(|resource| {
            RecordedResource::from_desired(resource, Some(format!("id-{}", resource.address)))
        })
        .collect()
}

/// The offline plan of `desired` against `state`, with the real providers' schemas.
fn offline_plan(desired: &[Resource], state: &[RecordedResource]) -> Vec<(String, ActionKind)> {
    offline_full_plan(desired, state)
        .actions
        .iter()
        .map(|action| (action.address.to_string(), action.kind))
        .collect()
}

fn offline_full_plan(desired: &[Resource], state: &[RecordedResource]) -> Plan {
    let recorded: BTreeMap<Address, RecordedResource> = state
        .iter()
        .map(|record| (record.address.clone(), record.clone()))
        .collect();
    plan(&PlanInput {
        stack: "shop",
        desired,
        recorded: &recorded,
        state: StateIdentity {
            lineage: Some("lineage".into()),
            serial: 1,
        },
        config_fingerprint: "fingerprint".into(),
        live: Err("--offline".to_string()),
        schemas: &provider_schemas(),
        targets: &[],
        mode: PlanMode::Apply,
    })
}

#[test]
fn adding_or_removing_a_route_updates_the_service_in_place_never_replaces_it() {
    let with_admin_route = lowered_stack(&routed_stack(ADMIN_ROUTE));
    let without_admin_route = lowered_stack(&routed_stack(""));

    // Removed: the route's file goes, the service it reached is updated, nothing replaced.
    let removed = offline_plan(&without_admin_route, &applied(&with_admin_route));
    assert_eq!(
        removed,
        [
            ("service.admin".to_string(), ActionKind::Update),
            ("route.admin".to_string(), ActionKind::Delete),
        ]
    );

    // Added back: the route is created, the service is updated, nothing replaced.
    let added = offline_plan(&with_admin_route, &applied(&without_admin_route));
    assert_eq!(
        added,
        [
            ("service.admin".to_string(), ActionKind::Update),
            ("route.admin".to_string(), ActionKind::Create),
        ]
    );

    // Changed (another host): the route alone changes; its service is not touched.
    let moved_host = lowered_stack(&routed_stack(
        &ADMIN_ROUTE.replace("admin.example.test", "backoffice.example.test"),
    ));
    let changed = offline_plan(&moved_host, &applied(&with_admin_route));
    assert_eq!(changed, [("route.admin".to_string(), ActionKind::Update)]);
}

/// A local stack with Postgres and a Django whose release task migrates; `django` is
/// appended to Django's table, `release` to its release table.
fn django_stack(django: &str, release: &str) -> String {
    format!(
        r#"
[stack]
name = "shop"

[target]
host = "local"

[services.postgres]
image = "postgres:16"
volumes = ["pgdata:/var/lib/postgresql/data"]

[services.django]
image = "django:1"
depends_on = ["postgres"]
env = {{ DATABASE_URL = "postgres://app:${{POSTGRES_PASSWORD}}@postgres/app" }}
{django}

[services.django.release]
command = ["python", "manage.py", "migrate", "--noinput"]
{release}
"#
    )
}

fn lowered_django(django: &str, release: &str, password: &str) -> Vec<Resource> {
    lowered_stack_with(
        &django_stack(django, release),
        BTreeMap::from([("POSTGRES_PASSWORD".to_string(), password.to_string())]),
    )
}

fn action_on<'a>(plan: &'a Plan, address_text: &str) -> Option<&'a stackctl_provider::Action> {
    plan.actions
        .iter()
        .find(|action| action.address == address(address_text))
}

#[test]
fn a_release_task_runs_on_the_first_deploy_before_its_service_and_after_what_it_needs() {
    let desired = lowered_django("", "", "first");
    let plan = offline_full_plan(&desired, &[]);
    let task = action_on(&plan, "release.django").expect("the release task is planned");
    assert_eq!(task.kind, ActionKind::Run);
    assert_eq!(task.reason, Reason::ReleaseTask { attributes: vec![] });
    assert_eq!(
        task.reason.to_string(),
        "release task: first run for this service"
    );
    // It waits for the image and the database it migrates; the service waits for it.
    assert!(task.depends_on.contains(&address("image.django")));
    assert!(task.depends_on.contains(&address("service.postgres")));
    let django = action_on(&plan, "service.django").unwrap();
    assert!(django.depends_on.contains(&address("release.django")));
    // Its env is the service's, its secret shown as sensitive and never in plain text.
    let env = task
        .changes
        .iter()
        .find(|change| change.attribute == "env")
        .unwrap();
    assert!(!format!("{:?}", env.after).contains("first"));
    assert_eq!(plan.summary().run, 1);
}

#[test]
fn a_release_task_runs_again_when_the_image_changes_and_the_replace_waits_for_it() {
    let before = lowered_django("", "", "same");
    let after: Vec<Resource> = lowered_stack_with(
        &django_stack("", "").replace("django:1", "django:2"),
        BTreeMap::from([("POSTGRES_PASSWORD".to_string(), "same".to_string())]),
    );
    let plan = offline_full_plan(&after, &applied(&before));
    let task = action_on(&plan, "release.django").expect("the image changed: the task runs");
    assert_eq!(task.kind, ActionKind::Run);
    assert_eq!(
        task.reason,
        Reason::ReleaseTask {
            attributes: vec!["image".to_string()]
        }
    );
    assert_eq!(task.reason.to_string(), "release task: `image` changed");
    let django = action_on(&plan, "service.django").unwrap();
    assert!(django.kind.is_replace());
    assert!(django.depends_on.contains(&address("release.django")));
    assert!(action_on(&plan, "service.postgres").is_none());
}

#[test]
fn a_release_task_runs_again_when_the_env_changes_even_a_secret_alone() {
    let before = lowered_django("", "", "old-password");
    let after = lowered_django("", "", "new-password");
    let plan = offline_full_plan(&after, &applied(&before));
    let task = action_on(&plan, "release.django").expect("the env changed: the task runs");
    assert_eq!(
        task.reason,
        Reason::ReleaseTask {
            attributes: vec!["env".to_string()]
        }
    );
    let rendered = stackctl::render::json::render(&plan);
    assert!(!rendered.contains("new-password") && !rendered.contains("old-password"));
}

#[test]
fn no_release_task_on_a_no_op_or_when_only_the_services_limits_or_the_tasks_inert_settings_change()
{
    let before = lowered_django("", "", "same");
    assert!(offline_full_plan(&before, &applied(&before))
        .actions
        .is_empty());

    let limits = lowered_django("memory = \"1g\"\nrestart = \"always\"", "", "same");
    let plan = offline_full_plan(&limits, &applied(&before));
    assert!(
        action_on(&plan, "release.django").is_none(),
        "{:#?}",
        plan.actions
    );
    assert_eq!(
        action_on(&plan, "service.django").map(|action| action.kind),
        Some(ActionKind::Update)
    );

    // The task's own timeout (and user, networks, volumes) apply at its next run.
    let timeout = lowered_django("", "timeout = \"20m\"", "same");
    assert!(offline_full_plan(&timeout, &applied(&before))
        .actions
        .is_empty());

    // Its command is what it runs: a new command runs.
    let command = lowered_stack_with(
        &django_stack("", "").replace("\"--noinput\"]", "\"--noinput\", \"-v\", \"2\"]"),
        BTreeMap::from([("POSTGRES_PASSWORD".to_string(), "same".to_string())]),
    );
    let plan = offline_full_plan(&command, &applied(&before));
    assert_eq!(
        action_on(&plan, "release.django").map(|action| action.reason.clone()),
        Some(Reason::ReleaseTask {
            attributes: vec!["command".to_string()]
        })
    );
}

#[test]
fn removing_a_release_task_deletes_its_record_and_touches_no_container() {
    let before = lowered_django("", "", "same");
    let without = lowered_stack_with(&django_stack("", "").replace(
        "[services.django.release]\ncommand = [\"python\", \"manage.py\", \"migrate\", \"--noinput\"]",
        "",
    ), BTreeMap::from([("POSTGRES_PASSWORD".to_string(), "same".to_string())]));
    let plan = offline_full_plan(&without, &applied(&before));
    assert_eq!(
        action_on(&plan, "release.django").map(|action| action.kind),
        Some(ActionKind::Delete)
    );
}

/// What an apply of `desired` records when the registry served `digest` for every image
/// with `pull = "always"`: the image's digest, and its services' `image_digest` resolved.
fn applied_with_digest(desired: &[Resource], digest: &str) -> Vec<RecordedResource> {
    desired
        .iter()
        .map(|resource| {
            let mut resolved = resource.clone();
            if let Some(Value::Unknown(_)) = resolved.attributes.get("image_digest") {
                resolved
                    .attributes
                    .insert("image_digest".into(), Value::text(digest));
            }
            let mut record = RecordedResource::from_desired(&resolved, None);
            if resource.address.kind() == "image" {
                record
                    .attributes
                    .insert("digest".into(), Value::text(digest));
            }
            record
        })
        .collect()
}

#[test]
fn a_moved_tag_with_pull_always_is_an_update_with_both_digests_and_replaces_its_services() {
    let desired = lowered_django("pull = \"always\"", "", "same");
    let state = applied_with_digest(&desired, "sha256:old");
    // Live: the registry now serves another digest for `django:1`; everything else as
    // recorded.
    let live: Vec<LiveResource> = state
        .iter()
        .map(|record| {
            let mut found = live_of(record);
            if record.address == address("image.django") {
                found
                    .attributes
                    .insert("digest".into(), Value::text("sha256:new"));
            }
            found
        })
        .collect();
    let recorded: BTreeMap<Address, RecordedResource> = state
        .iter()
        .map(|record| (record.address.clone(), record.clone()))
        .collect();
    let plan = plan(&PlanInput {
        stack: "shop",
        desired: &desired,
        recorded: &recorded,
        state: StateIdentity {
            lineage: Some("lineage".into()),
            serial: 2,
        },
        config_fingerprint: "fingerprint".into(),
        live: Ok(&snapshot(live.clone())),
        schemas: &provider_schemas(),
        targets: &[],
        mode: PlanMode::Apply,
    });
    let image = action_on(&plan, "image.django").expect("the moved tag is planned");
    assert_eq!(image.kind, ActionKind::Update);
    assert_eq!(image.reason, Reason::TagMoved);
    let digest = image
        .changes
        .iter()
        .find(|change| change.attribute == "digest")
        .unwrap();
    assert_eq!(digest.before, Some(Value::text("sha256:old")));
    assert_eq!(digest.after, Some(Value::text("sha256:new")));
    // Its service follows (replaced after the pull), its release task runs first.
    let django = action_on(&plan, "service.django").expect("the service follows");
    assert!(django.kind.is_replace(), "{django:#?}");
    assert!(django.depends_on.contains(&address("image.django")));
    let task = action_on(&plan, "release.django").expect("the task runs for the new image");
    assert_eq!(
        task.reason,
        Reason::ReleaseTask {
            attributes: vec!["image_digest".to_string()]
        }
    );
    // The same digest live as recorded: nothing to do.
    let unchanged: Vec<LiveResource> = state.iter().map(live_of).collect();
    let quiet = plan_with_live(&desired, &recorded, &unchanged);
    assert!(quiet.actions.is_empty(), "{:#?}", quiet.actions);
}

fn plan_with_live(
    desired: &[Resource],
    recorded: &BTreeMap<Address, RecordedResource>,
    live: &[LiveResource],
) -> Plan {
    plan(&PlanInput {
        stack: "shop",
        desired,
        recorded,
        state: StateIdentity {
            lineage: Some("lineage".into()),
            serial: 2,
        },
        config_fingerprint: "fingerprint".into(),
        live: Ok(&snapshot(live.to_vec())),
        schemas: &provider_schemas(),
        targets: &[],
        mode: PlanMode::Apply,
    })
}

#[test]
fn a_replace_requested_for_unchanged_services_is_planned_after_their_dependencies() {
    let database = service("db", "postgres:16");
    let api = service("api", "api:1").depends_on(address("service.db"));
    let worker = service("worker", "worker:1");
    let state = [
        recorded(&service("db", "postgres:15")),
        recorded(&api),
        recorded(&worker),
    ];
    let live = snapshot(state.iter().map(live_of).collect());
    let desired = [database, api.clone(), worker];
    let mut the_plan = run(&desired, &state, Some(&live));
    assert_eq!(the_plan.actions.len(), 1, "only db changed");
    let recorded_map: BTreeMap<Address, RecordedResource> = state
        .iter()
        .map(|record| (record.address.clone(), record.clone()))
        .collect();
    let schemas = schemas();
    stackctl::plan::replace::force_replace(
        &mut the_plan,
        &[address("service.api"), address("service.worker")],
        &desired,
        &recorded_map,
        &|resource| schemas.get(&resource.provider, resource.address.kind()),
    );
    let order: Vec<(String, ActionKind)> = the_plan
        .actions
        .iter()
        .map(|action| (action.address.to_string(), action.kind))
        .collect();
    assert_eq!(
        order,
        vec![
            (
                "service.worker".to_string(),
                ActionKind::ReplaceCreateBeforeDestroy
            ),
            (
                "service.db".to_string(),
                ActionKind::ReplaceCreateBeforeDestroy
            ),
            (
                "service.api".to_string(),
                ActionKind::ReplaceCreateBeforeDestroy
            ),
        ]
    );
    let api_action = &the_plan.actions[2];
    assert_eq!(api_action.reason, Reason::ReplaceRequested);
    assert_eq!(api_action.depends_on, vec![address("service.db")]);
    assert!(
        api_action
            .changes
            .iter()
            .all(|change| change.attribute == "container_id"),
        "only the computed container id is new: {:?}",
        api_action.changes
    );
    assert!(the_plan.unchanged.is_empty(), "{:?}", the_plan.unchanged);
}

#[test]
fn row_4_a_drifted_attribute_found_by_apply_is_known_after_apply_not_put_back() {
    // Like a swarm service's servers (its tasks' addresses): the provider finds them again
    // while repairing; they are not put back as recorded.
    let api = service("api", "api:1");
    let record = recorded(&api);
    let mut live = live_of(&record);
    let mut record = record;
    record
        .attributes
        .insert("servers".into(), Value::text("10.0.1.2"));
    live.attributes = record.attributes.clone();
    live.attributes
        .insert("servers".into(), Value::text("10.0.1.3"));
    live.attributes
        .insert("container_id".into(), Value::text("beef"));
    live.attributes.insert("memory".into(), Value::Integer(64));
    let plan = run(&[api], &[record], Some(&snapshot(vec![live])));
    let action = only_action(&plan);
    assert_eq!(action.kind, ActionKind::Update);
    let change = |name: &str| {
        action
            .changes
            .iter()
            .find(|change| change.attribute == name)
            .unwrap_or_else(|| panic!("no change of {name}: {:#?}", action.changes))
    };
    assert_eq!(change("servers").before, Some(Value::text("10.0.1.3")));
    assert_eq!(
        change("servers").after,
        Some(Value::Unknown(Reference {
            address: address("service.api"),
            attribute: "servers".into(),
        }))
    );
    // Any other computed attribute's drift is put back as recorded.
    assert_eq!(change("container_id").after, Some(Value::text("c0ffee")));
    assert_eq!(change("memory").after, Some(Value::Integer(512)));
}
