//! The exposure diff, one test per way the surface widens or narrows. Each starts from a
//! small recorded stack shaped like the lowering's output (an edge, an API behind a rate
//! limit, Flower behind an allowlist and basic auth), changes one thing in stack.toml's
//! resources, and plans it.

use std::collections::BTreeMap;

use stackctl_provider::{Address, RecordedResource, Resource, Secret, Value};

use super::{Change, Direction, Exposure};
use crate::plan::{plan, Plan, PlanInput, PlanMode, SchemaSet, StateIdentity};

fn text_list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|item| Value::text(*item)).collect())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect(),
    )
}

fn port(host_ip: &str, host_port: i64) -> Value {
    map(vec![
        ("host_ip", Value::text(host_ip)),
        ("host_port", Value::Integer(host_port)),
        ("container_port", Value::Integer(host_port)),
        ("protocol", Value::text("tcp")),
    ])
}

fn static_file(staging: bool) -> Resource {
    let ca_server = if staging {
        "https://acme-staging-v02.api.letsencrypt.org/directory"
    } else {
        "https://acme-v02.api.letsencrypt.org/directory"
    };
    Resource::new(Address::new("file", "traefik-static"), "traefik")
        .with("http_port", 80)
        .with("https_port", 443)
        .with("admin_port", 8080)
        .with("dashboard", false)
        .with(
            "resolver",
            map(vec![
                ("name", Value::text("le")),
                ("ca_server", Value::text(ca_server)),
                ("staging", Value::Bool(staging)),
            ]),
        )
}

fn service(name: &str, ports: Vec<Value>) -> Resource {
    Resource::new(Address::new("service", name), "docker")
        .with("image", format!("example/{name}:1"))
        .with("ports", Value::List(ports))
}

fn middleware(name: &str, kind: &str, settings: Value) -> Resource {
    Resource::new(Address::new("middleware", name), "traefik")
        .with("type", kind)
        .with("settings", settings)
}

fn route(name: &str, rule: &str, service: &str, middlewares: &[&str]) -> Resource {
    Resource::new(Address::new("route", name), "traefik")
        .with("rule", rule)
        .with("service", service)
        .with("middlewares", text_list(middlewares))
        .with("entrypoints", text_list(&["websecure"]))
}

fn allowlist(ranges: &[&str]) -> Resource {
    middleware(
        "admin-only",
        "ip_allow_list",
        map(vec![("source_range", text_list(ranges))]),
    )
}

fn rate_limit(average: i64, burst: i64) -> Resource {
    middleware(
        "api-limit",
        "rate_limit",
        map(vec![
            ("average", Value::Integer(average)),
            ("burst", Value::Integer(burst)),
            ("period", Value::text("1s")),
        ]),
    )
}

/// The recorded stack every test starts from.
fn stack() -> Vec<Resource> {
    vec![
        static_file(true),
        service("edge", vec![port("0.0.0.0", 80), port("0.0.0.0", 443)]),
        service("api", Vec::new()),
        service("flower", Vec::new()),
        middleware(
            "secure-headers",
            "headers",
            map(vec![
                ("sts_seconds", Value::Integer(31_536_000)),
                ("sts_include_subdomains", Value::Bool(true)),
                ("frame_deny", Value::Bool(true)),
                ("content_type_nosniff", Value::Bool(true)),
            ]),
        ),
        allowlist(&["203.0.113.0/24"]),
        middleware(
            "flower-auth",
            "basic_auth",
            map(vec![(
                "users",
                map(vec![(
                    "admin",
                    Value::Secret(Secret::new("hunter2-password", "salt")),
                )]),
            )]),
        ),
        rate_limit(50, 100),
        route(
            "api",
            "Host(`example.com`) && PathPrefix(`/api`)",
            "api",
            &["secure-headers", "api-limit"],
        ),
        route(
            "flower",
            "Host(`flower.example.com`)",
            "flower",
            &["secure-headers", "admin-only", "flower-auth"],
        ),
    ]
}

/// `stack()` with `changed` replacing (or adding) resources of the same address.
fn stack_with(changed: Vec<Resource>) -> Vec<Resource> {
    let mut resources = stack();
    for resource in changed {
        match resources
            .iter_mut()
            .find(|existing| existing.address == resource.address)
        {
            Some(existing) => *existing = resource,
            None => resources.push(resource),
        }
    }
    resources
}

fn planned(recorded: &[Resource], desired: &[Resource], mode: PlanMode) -> Plan {
    let recorded: BTreeMap<Address, RecordedResource> = recorded
        .iter()
        .map(|resource| {
            (
                resource.address.clone(),
                RecordedResource::from_desired(resource, None),
            )
        })
        .collect();
    plan(&PlanInput {
        stack: "shop",
        desired,
        recorded: &recorded,
        state: StateIdentity {
            lineage: Some("lineage".into()),
            serial: 1,
        },
        config_fingerprint: String::new(),
        live: Err("--offline".into()),
        schemas: &SchemaSet::default(),
        targets: &[],
        mode,
    })
}

/// The exposure of changing the recorded `stack()` into `desired`.
fn exposure_of(desired: &[Resource]) -> Exposure {
    planned(&stack(), desired, PlanMode::Apply)
        .exposure
        .expect("an apply plan has an exposure")
}

/// Asserts the exposure holds exactly one change, in `direction`, whose message says
/// `words`.
fn assert_one(exposure: &Exposure, direction: Direction, words: &str) {
    assert_eq!(
        exposure.changes.len(),
        1,
        "expected one change, got {:#?}",
        exposure.changes
    );
    let change = &exposure.changes[0];
    assert_eq!(change.direction, direction, "{change:#?}");
    assert!(
        change.message.contains(words),
        "{:?} does not say {words:?}",
        change.message
    );
}

/// The first paragraph of a rendering after its title and the note that live state was
/// not read (these tests plan offline).
fn first_section(rendered: &str) -> &str {
    rendered
        .split("\n\n")
        .find(|paragraph| {
            !paragraph.starts_with("### ")
                && !paragraph.starts_with("note: live state was not read")
                && !paragraph.starts_with("> [!NOTE]")
        })
        .unwrap_or_default()
}

#[test]
fn an_unchanged_surface_says_so_in_one_line() {
    // The API's image changes: an action, but nothing a client can reach moves.
    let desired = stack_with(vec![
        service("api", Vec::new()).with("image", "example/api:2")
    ]);
    let plan = planned(&stack(), &desired, PlanMode::Apply);
    assert!(plan.has_changes());
    assert!(plan.exposure.as_ref().is_some_and(Exposure::is_unchanged));

    let text = crate::render::text::render(&plan, false);
    assert_eq!(
        first_section(&text),
        "Exposure: unchanged.",
        "the section comes first, in one line:\n{text}"
    );
    let markdown = crate::render::markdown::render(&plan);
    assert_eq!(
        first_section(&markdown),
        "**Exposure:** unchanged.",
        "{markdown}"
    );
    assert!(!markdown.contains("[!CAUTION]"));
}

#[test]
fn a_route_without_basic_auth_widens_exposure() {
    let desired = stack_with(vec![route(
        "flower",
        "Host(`flower.example.com`)",
        "flower",
        &["secure-headers", "admin-only"],
    )]);
    assert_one(
        &exposure_of(&desired),
        Direction::Widens,
        "route `flower` lost basic auth (it admitted `admin`)",
    );
}

#[test]
fn basic_auth_added_to_a_route_narrows_exposure() {
    let desired = stack_with(vec![route(
        "api",
        "Host(`example.com`) && PathPrefix(`/api`)",
        "api",
        &["secure-headers", "api-limit", "flower-auth"],
    )]);
    assert_one(
        &exposure_of(&desired),
        Direction::Narrows,
        "route `api` is now behind basic auth (`admin`)",
    );
}

#[test]
fn a_new_basic_auth_user_widens_exposure_and_no_password_is_ever_shown() {
    let desired = stack_with(vec![middleware(
        "flower-auth",
        "basic_auth",
        map(vec![(
            "users",
            map(vec![
                (
                    "admin",
                    Value::Secret(Secret::new("hunter2-password", "salt")),
                ),
                (
                    "bob",
                    Value::Secret(Secret::new("bobs-own-password", "salt")),
                ),
            ]),
        )]),
    )]);
    let plan = planned(&stack(), &desired, PlanMode::Apply);
    let exposure = plan.exposure.as_ref().expect("exposure");
    assert_one(
        exposure,
        Direction::Widens,
        "basic auth on route `flower` now also admits `bob`",
    );
    for rendered in [
        crate::render::text::render(&plan, false),
        crate::render::json::render(&plan),
        crate::render::markdown::render(&plan),
    ] {
        assert!(!rendered.contains("hunter2-password"));
        assert!(!rendered.contains("bobs-own-password"));
    }
}

#[test]
fn an_allowlist_widened_to_everything_widens_exposure() {
    let desired = stack_with(vec![allowlist(&["0.0.0.0/0"])]);
    assert_one(
        &exposure_of(&desired),
        Direction::Widens,
        "IP allowlist on route `flower` widened from 203.0.113.0/24 to 0.0.0.0/0",
    );
}

#[test]
fn an_allowlist_range_added_outside_the_old_ones_widens_exposure() {
    let desired = stack_with(vec![allowlist(&["203.0.113.0/24", "198.51.100.0/24"])]);
    assert_one(&exposure_of(&desired), Direction::Widens, "widened");
}

#[test]
fn an_allowlist_narrowed_to_a_subnet_narrows_exposure() {
    let desired = stack_with(vec![allowlist(&["203.0.113.128/25"])]);
    assert_one(
        &exposure_of(&desired),
        Direction::Narrows,
        "IP allowlist on route `flower` narrowed from 203.0.113.0/24 to 203.0.113.128/25",
    );
}

#[test]
fn a_route_that_loses_its_allowlist_widens_exposure() {
    let desired = stack_with(vec![route(
        "flower",
        "Host(`flower.example.com`)",
        "flower",
        &["secure-headers", "flower-auth"],
    )]);
    assert_one(
        &exposure_of(&desired),
        Direction::Widens,
        "route `flower` lost its IP allowlist (it admitted only 203.0.113.0/24): every address gets through",
    );
}

#[test]
fn a_removed_rate_limit_widens_exposure() {
    let desired = stack_with(vec![route(
        "api",
        "Host(`example.com`) && PathPrefix(`/api`)",
        "api",
        &["secure-headers"],
    )]);
    assert_one(
        &exposure_of(&desired),
        Direction::Widens,
        "route `api` lost its rate limit (50 per 1s with burst 100)",
    );
}

#[test]
fn a_raised_rate_limit_widens_exposure() {
    let desired = stack_with(vec![rate_limit(100, 200)]);
    assert_one(
        &exposure_of(&desired),
        Direction::Widens,
        "rate limit on route `api` raised from 50 per 1s with burst 100 to 100 per 1s with burst 200",
    );
}

#[test]
fn a_lowered_rate_limit_narrows_exposure() {
    let desired = stack_with(vec![rate_limit(20, 40)]);
    assert_one(&exposure_of(&desired), Direction::Narrows, "lowered");
}

#[test]
fn a_larger_average_over_a_longer_period_is_not_a_raise() {
    // 60 per 2 s is 30 per second: fewer than 50 per second, though the number grew.
    let desired = stack_with(vec![middleware(
        "api-limit",
        "rate_limit",
        map(vec![
            ("average", Value::Integer(60)),
            ("burst", Value::Integer(100)),
            ("period", Value::text("2s")),
        ]),
    )]);
    assert_one(&exposure_of(&desired), Direction::Narrows, "lowered");
}

#[test]
fn headers_without_hsts_widen_exposure() {
    let desired = stack_with(vec![route(
        "api",
        "Host(`example.com`) && PathPrefix(`/api`)",
        "api",
        &["api-limit"],
    )]);
    assert_one(
        &exposure_of(&desired),
        Direction::Widens,
        "route `api` no longer sends HSTS (it sent 31536000 s)",
    );
}

#[test]
fn a_published_port_widens_exposure() {
    let desired = stack_with(vec![service("api", vec![port("0.0.0.0", 8000)])]);
    assert_one(
        &exposure_of(&desired),
        Direction::Widens,
        "service `api` publishes host port 8000/tcp on 0.0.0.0 → container port 8000; only the edge should publish ports",
    );
}

#[test]
fn a_port_moved_from_the_loopback_to_every_interface_widens_exposure() {
    let loopback = stack_with(vec![service(
        "edge",
        vec![port("127.0.0.1", 80), port("0.0.0.0", 443)],
    )]);
    let exposure = planned(&loopback, &stack(), PlanMode::Apply)
        .exposure
        .expect("exposure");
    assert_one(
        &exposure,
        Direction::Widens,
        "service `edge` publishes host port 80/tcp on 0.0.0.0 instead of 127.0.0.1",
    );
}

#[test]
fn an_unpublished_port_narrows_exposure() {
    let desired = stack_with(vec![service("edge", vec![port("0.0.0.0", 443)])]);
    assert_one(
        &exposure_of(&desired),
        Direction::Narrows,
        "service `edge` no longer publishes host port 80/tcp",
    );
}

fn firewall(ssh_sources: &[&str]) -> Resource {
    Resource::new(Address::new("firewall", "web"), "digitalocean").with(
        "inbound_rules",
        Value::List(vec![
            map(vec![
                ("ports", Value::text("22")),
                ("protocol", Value::text("tcp")),
                ("sources", text_list(ssh_sources)),
            ]),
            map(vec![
                ("ports", Value::text("443")),
                ("protocol", Value::text("tcp")),
                ("sources", text_list(&["0.0.0.0/0", "::/0"])),
            ]),
        ]),
    )
}

#[test]
fn ssh_opened_to_everyone_in_the_firewall_widens_exposure() {
    let recorded = stack_with(vec![firewall(&["203.0.113.0/24"])]);
    let desired = stack_with(vec![firewall(&["0.0.0.0/0"])]);
    let exposure = planned(&recorded, &desired, PlanMode::Apply)
        .exposure
        .expect("exposure");
    assert_one(
        &exposure,
        Direction::Widens,
        "firewall `web` lets tcp port 22 in from 0.0.0.0/0 instead of 203.0.113.0/24",
    );
}

#[test]
fn a_firewall_rule_removed_narrows_exposure() {
    let recorded = stack_with(vec![firewall(&["203.0.113.0/24"])]);
    let desired = stack_with(vec![Resource::new(
        Address::new("firewall", "web"),
        "digitalocean",
    )
    .with("inbound_rules", Value::List(Vec::new()))]);
    let exposure = planned(&recorded, &desired, PlanMode::Apply)
        .exposure
        .expect("exposure");
    let messages: Vec<(Direction, &str)> = exposure
        .changes
        .iter()
        .map(|change| (change.direction, change.message.as_str()))
        .collect();
    assert_eq!(
        messages,
        vec![
            (
                Direction::Narrows,
                "firewall `web` no longer lets tcp port 22 in (it let in 203.0.113.0/24)"
            ),
            (
                Direction::Narrows,
                "firewall `web` no longer lets tcp port 443 in (it let in 0.0.0.0/0, ::/0)"
            ),
        ]
    );
}

#[test]
fn production_certificates_widen_exposure() {
    let desired = stack_with(vec![static_file(false)]);
    assert_one(
        &exposure_of(&desired),
        Direction::Widens,
        "the edge moves to production certificates from resolver `le` (browsers trust them)",
    );
}

#[test]
fn staging_certificates_after_production_narrow_exposure() {
    let production = stack_with(vec![static_file(false)]);
    let exposure = planned(&production, &stack(), PlanMode::Apply)
        .exposure
        .expect("exposure");
    assert_one(&exposure, Direction::Narrows, "staging certificates");
}

#[test]
fn the_dashboard_turned_on_widens_exposure() {
    let desired = stack_with(vec![static_file(true).with("dashboard", true)]);
    assert_one(
        &exposure_of(&desired),
        Direction::Widens,
        "the Traefik dashboard is turned on",
    );
}

#[test]
fn a_new_route_widens_exposure_and_says_what_guards_it() {
    let desired = stack_with(vec![
        service("dashboard", Vec::new()),
        route(
            "dashboard",
            "Host(`traefik.example.com`)",
            "dashboard",
            &["admin-only", "flower-auth"],
        ),
    ]);
    let exposure = exposure_of(&desired);
    let messages: Vec<(Direction, Change, &str)> = exposure
        .changes
        .iter()
        .map(|change| (change.direction, change.change, change.message.as_str()))
        .collect();
    assert_eq!(
        messages,
        vec![
            (
                Direction::Widens,
                Change::Added,
                "new route `dashboard`: `traefik.example.com` → service `dashboard`; through IP allowlist `admin-only` (203.0.113.0/24), basic auth `flower-auth` (user `admin`)"
            ),
            (
                Direction::Widens,
                Change::Added,
                "service `dashboard` becomes reachable through the edge"
            ),
        ]
    );
}

#[test]
fn a_new_route_without_guards_says_it_is_open_to_everyone() {
    let desired = stack_with(vec![route(
        "docs",
        "Host(`example.com`) && PathPrefix(`/docs`)",
        "api",
        &[],
    )]);
    assert_one(
        &exposure_of(&desired),
        Direction::Widens,
        "new route `docs`: `example.com/docs` → service `api`, open to everyone (no basic auth, no IP allowlist); no middlewares",
    );
}

#[test]
fn removing_the_dashboard_route_narrows_exposure() {
    let with_dashboard = stack_with(vec![
        service("dashboard", Vec::new()),
        route(
            "dashboard",
            "Host(`traefik.example.com`)",
            "dashboard",
            &["admin-only", "flower-auth"],
        ),
    ]);
    let desired = stack_with(vec![service("dashboard", Vec::new())]);
    let exposure = planned(&with_dashboard, &desired, PlanMode::Apply)
        .exposure
        .expect("exposure");
    let messages: Vec<&str> = exposure
        .changes
        .iter()
        .map(|change| change.message.as_str())
        .collect();
    assert_eq!(
        messages,
        vec![
            "route `dashboard` is removed: `traefik.example.com` no longer answers",
            "service `dashboard` is no longer reachable through the edge",
        ]
    );
    assert!(exposure
        .changes
        .iter()
        .all(|change| change.direction == Direction::Narrows));
}

#[test]
fn a_shorter_path_prefix_widens_exposure_and_a_longer_one_narrows_it() {
    let wider = stack_with(vec![route(
        "api",
        "Host(`example.com`) && PathPrefix(`/`)",
        "api",
        &["secure-headers", "api-limit"],
    )]);
    assert_one(
        &exposure_of(&wider),
        Direction::Widens,
        "route `api` answers `example.com/` instead of `example.com/api`",
    );
    let narrower = stack_with(vec![route(
        "api",
        "Host(`example.com`) && PathPrefix(`/api/v2`)",
        "api",
        &["secure-headers", "api-limit"],
    )]);
    assert_one(&exposure_of(&narrower), Direction::Narrows, "answers");
}

#[test]
fn a_rewritten_raw_rule_counts_as_widening() {
    let desired = stack_with(vec![route(
        "flower",
        "Host(`flower.example.com`) || Host(`celery.example.com`)",
        "flower",
        &["secure-headers", "admin-only", "flower-auth"],
    )]);
    assert_one(
        &exposure_of(&desired),
        Direction::Widens,
        "route `flower` answers rule `` Host(`flower.example.com`) || Host(`celery.example.com`) `` instead of `flower.example.com`",
    );
}

#[test]
fn a_route_moved_to_another_service_widens_exposure() {
    let desired = stack_with(vec![route(
        "flower",
        "Host(`flower.example.com`)",
        "api",
        &["secure-headers", "admin-only", "flower-auth"],
    )]);
    let exposure = exposure_of(&desired);
    let messages: Vec<(Direction, &str)> = exposure
        .changes
        .iter()
        .map(|change| (change.direction, change.message.as_str()))
        .collect();
    assert_eq!(
        messages,
        vec![
            (
                Direction::Widens,
                "route `flower` leads to service `api` instead of `flower`"
            ),
            (
                Direction::Narrows,
                "service `flower` is no longer reachable through the edge"
            ),
        ]
    );
}

#[test]
fn a_chain_is_flattened_into_its_members_in_order() {
    let desired = stack_with(vec![
        middleware(
            "guarded",
            "chain",
            map(vec![(
                "middlewares",
                text_list(&["secure-headers", "admin-only", "flower-auth"]),
            )]),
        ),
        route(
            "flower",
            "Host(`flower.example.com`)",
            "flower",
            &["guarded"],
        ),
    ]);
    let exposure = exposure_of(&desired);
    assert!(exposure.is_unchanged(), "{:#?}", exposure.changes);
    let flower = exposure
        .after
        .routes
        .iter()
        .find(|route| route.name == "flower")
        .expect("route");
    let names: Vec<&str> = flower.middlewares.iter().map(|m| m.name()).collect();
    assert_eq!(names, ["secure-headers", "admin-only", "flower-auth"]);
}

#[test]
fn a_chain_that_names_itself_ends() {
    let desired = stack_with(vec![
        middleware(
            "loop",
            "chain",
            map(vec![(
                "middlewares",
                text_list(&["loop", "secure-headers"]),
            )]),
        ),
        route("loop", "Host(`loop.example.com`)", "api", &["loop"]),
    ]);
    let exposure = exposure_of(&desired);
    let route = exposure
        .after
        .routes
        .iter()
        .find(|route| route.name == "loop")
        .expect("route");
    assert_eq!(route.middlewares.len(), 2);
}

#[test]
fn widenings_come_before_narrowings() {
    let desired = stack_with(vec![
        static_file(false),
        route(
            "api",
            "Host(`example.com`) && PathPrefix(`/api`)",
            "api",
            &["secure-headers", "api-limit", "flower-auth"],
        ),
    ]);
    let directions: Vec<Direction> = exposure_of(&desired)
        .changes
        .iter()
        .map(|change| change.direction)
        .collect();
    assert_eq!(directions, [Direction::Widens, Direction::Narrows]);
}

#[test]
fn a_destroy_plan_narrows_everything() {
    let plan = planned(&stack(), &[], PlanMode::Destroy);
    let exposure = plan.exposure.as_ref().expect("exposure");
    assert!(!exposure.changes.is_empty());
    assert!(exposure
        .changes
        .iter()
        .all(|change| change.direction == Direction::Narrows));
    assert_eq!(exposure.after, super::Surface::default());
    let text = crate::render::text::render(&plan, false);
    assert!(
        first_section(&text).starts_with("Exposure: 7 changes narrow the public surface:\n"),
        "{text}"
    );
}

#[test]
fn a_drift_report_has_no_exposure_section() {
    let recorded: BTreeMap<Address, RecordedResource> = stack()
        .iter()
        .map(|resource| {
            (
                resource.address.clone(),
                RecordedResource::from_desired(resource, None),
            )
        })
        .collect();
    let live = crate::plan::LiveSnapshot::default();
    let report = crate::plan::drift::detect(
        "shop",
        &recorded,
        &live,
        &SchemaSet::default(),
        StateIdentity {
            lineage: None,
            serial: 1,
        },
    );
    assert_eq!(report.exposure, None);
    assert!(!crate::render::text::render(&report, false).contains("Exposure"));
    assert!(crate::render::json::render(&report).contains("\"exposure\": null"));
}

#[test]
fn widening_puts_a_caution_first_in_markdown() {
    let desired = stack_with(vec![allowlist(&["0.0.0.0/0"])]);
    let plan = planned(&stack(), &desired, PlanMode::Apply);
    let markdown = crate::render::markdown::render(&plan);
    assert!(
        first_section(&markdown).starts_with(
            "> [!CAUTION]\n> **Exposure widens:** 1 change widens the public surface.\n"
        ),
        "{markdown}"
    );
    assert!(
        markdown.find("[!CAUTION]") < markdown.find("| | Resource |"),
        "the caution comes above the table"
    );
}

#[test]
fn narrowing_alone_is_listed_without_a_caution() {
    let plan = planned(
        &stack(),
        &stack_with(vec![rate_limit(20, 40)]),
        PlanMode::Apply,
    );
    let markdown = crate::render::markdown::render(&plan);
    assert!(!markdown.contains("[!CAUTION]"));
    assert!(markdown.contains("**Exposure narrows:** 1 change narrows the public surface."));
}

#[test]
fn the_json_form_has_the_changes_and_both_surfaces() {
    let plan = planned(
        &stack(),
        &stack_with(vec![allowlist(&["0.0.0.0/0"])]),
        PlanMode::Apply,
    );
    let json: serde_json::Value =
        serde_json::from_str(&crate::render::json::render(&plan)).expect("json");
    let exposure = &json["exposure"];
    assert_eq!(exposure["widens"], true);
    assert_eq!(exposure["unchanged"], false);
    assert_eq!(exposure["changes"][0]["direction"], "widens");
    assert_eq!(exposure["changes"][0]["change"], "changed");
    assert_eq!(exposure["changes"][0]["subject"], "route.flower");
    let flower_after = &exposure["after"]["routes"][1];
    assert_eq!(flower_after["name"], "flower");
    assert_eq!(flower_after["middlewares"][1]["type"], "ip_allow_list");
    assert_eq!(
        flower_after["middlewares"][1]["source_range"],
        serde_json::json!(["0.0.0.0/0"])
    );
    assert_eq!(
        flower_after["middlewares"][2],
        serde_json::json!({ "type": "basic_auth", "name": "flower-auth", "users": ["admin"] })
    );
    assert_eq!(exposure["before"]["certificates"]["authority"], "staging");
}

#[test]
fn a_plan_saved_before_exposure_existed_still_loads() {
    let plan = planned(&stack(), &stack(), PlanMode::Apply);
    let mut json = serde_json::to_value(&plan).expect("serialize");
    json.as_object_mut().expect("object").remove("exposure");
    let loaded: Plan = serde_json::from_value(json).expect("loads");
    assert_eq!(loaded.exposure, None);
}
