//! Renderers: the markdown comment stays under GitHub's limit, secrets and unknown values
//! render as markers in every format, and malformed stack files never panic the parser.

use stackctl::plan::{plan, PlanInput, PlanMode, SchemaSet, StateIdentity};
use stackctl_provider::{Address, Reference, Resource, Secret, Value};

fn big_plan(count: usize) -> stackctl::plan::Plan {
    let desired: Vec<Resource> = (0..count)
        .map(|index| {
            Resource::new(
                Address::new("service", format!("service-{index:05}")),
                "docker",
            )
            .with("image", format!("example/app:{index}"))
            .with("content", "line one\nline two\nline three\n")
        })
        .collect();
    let recorded = Default::default();
    plan(&PlanInput {
        stack: "big",
        desired: &desired,
        recorded: &recorded,
        state: StateIdentity {
            lineage: None,
            serial: 0,
        },
        config_fingerprint: String::new(),
        live: Err("--offline".into()),
        schemas: &SchemaSet::default(),
        targets: &[],
        mode: PlanMode::Apply,
    })
}

#[test]
fn markdown_stays_under_the_limit_and_says_what_it_left_out() {
    let plan = big_plan(2_000);
    let markdown = stackctl::render::markdown::render(&plan);
    assert!(
        markdown.len() <= stackctl::render::markdown::LIMIT_BYTES,
        "{} bytes",
        markdown.len()
    );
    assert!(markdown.starts_with("### stackctl plan for `big`: 2000 to create"));
    assert!(markdown.contains("left out to keep this comment under 60 KB"));
    let small = stackctl::render::markdown::render(&big_plan(3));
    assert!(!small.contains("left out"));
    assert_eq!(small.matches("<details>").count(), 3);
}

#[test]
fn secrets_and_unknown_values_render_as_markers_in_every_format() {
    let desired = vec![
        Resource::new(Address::new("dns_record", "apex"), "digitalocean")
            .with(
                "data",
                Value::Unknown(Reference {
                    address: Address::new("droplet", "web-1"),
                    attribute: "ipv4".into(),
                }),
            )
            .with(
                "token",
                Value::Secret(Secret::new("very-Secret-value", "salt")),
            ),
    ];
    let recorded = Default::default();
    let the_plan = plan(&PlanInput {
        stack: "shop",
        desired: &desired,
        recorded: &recorded,
        state: StateIdentity {
            lineage: None,
            serial: 0,
        },
        config_fingerprint: String::new(),
        live: Err("--offline".into()),
        schemas: &SchemaSet::default(),
        targets: &[],
        mode: PlanMode::Apply,
    });
    let text = stackctl::render::text::render(&the_plan, false);
    let json = stackctl::render::json::render(&the_plan);
    let markdown = stackctl::render::markdown::render(&the_plan);
    for rendering in [&text, &json, &markdown] {
        assert!(!rendering.contains("very-Secret-value"));
    }
    assert!(
        text.contains("+ data  = (known after apply)") && text.contains("+ token = (sensitive)"),
        "{text}"
    );
    assert!(
        json.contains("\"known_after_apply\": \"droplet.web-1.ipv4\"")
            && json.contains("\"sensitive\": true"),
        "{json}"
    );
    assert!(markdown.contains("+ token = (sensitive)"));
}

#[test]
fn colour_only_when_asked() {
    let plan = big_plan(1);
    assert!(!stackctl::render::text::render(&plan, false).contains('\u{1b}'));
    assert!(stackctl::render::text::render(&plan, true).contains("\u{1b}[32m"));
}

#[test]
fn mangled_stack_files_give_diagnostics_never_a_panic() {
    let reference =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/stack.toml")).unwrap();
    let bytes = reference.as_bytes();
    // A deterministic walk over cuts, duplications and swapped characters (bounded).
    let mut seed: u64 = 0x5eed;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..400 {
        let mut mangled = bytes.to_vec();
        let position = (next() as usize) % mangled.len();
        match round % 4 {
            0 => {
                let length = (next() as usize % 40).min(mangled.len() - position);
                mangled.drain(position..position + length);
            }
            1 => mangled.insert(position, b"[]{}=\"',\n#"[next() as usize % 10]),
            2 => {
                let other = (next() as usize) % mangled.len();
                mangled.swap(position, other);
            }
            _ => mangled.truncate(position),
        }
        let text = String::from_utf8_lossy(&mangled).into_owned();
        let source = stackctl::config::SourceFile {
            name: "stack.toml".into(),
            text,
        };
        let options = stackctl::config::LoadOptions::default();
        let outcome = std::panic::catch_unwind(|| {
            stackctl::config::load_text(source, std::path::Path::new("."), &options).map(|_| ())
        });
        assert!(outcome.is_ok(), "round {round} panicked");
    }
}

// ---------------------------------------------------------------------------------------
// A plan with every kind of action, built from hand-made desired, recorded and live
// resources (the CLI cannot produce an adopt or a replace without a running target):
//
// | resource                 | change                                   | action     |
// |--------------------------|------------------------------------------|------------|
// | `route.docs`             | new route                                | create     |
// | `middleware.api-limit`   | rate limit raised                        | update     |
// | `service.api`            | env changed (stateless, routed)          | replace +/- |
// | `service.postgres`       | image 16 → 17 (holds `pgdata`)           | replace -/+ |
// | `file.traefik-static`    | resolver staging → production            | update     |
// | `service.edge`           | restarts to read the static file         | replace -/+ |
// | `route.dashboard`        | removed                                  | delete     |
// | `service.uploads`        | removed (holds `uploads`, which stays)   | delete     |
// | `volume.cache`           | removed                                  | delete     |
// | `network.backend`        | running with our labels, not in state    | adopt      |
// | `image.api`, `volume.uploads` | nothing                             | unchanged  |

use std::collections::BTreeMap;

use stackctl::plan::{LiveSnapshot, WarningKind};
use stackctl_provider::{
    ActionKind, AttributeSchema, KindSchema, LiveResource, RecordedResource, ReplaceOrder,
};

const ROOT: &str = "/var/lib/stackctl/shop";

fn route(name: &str, rule: &str, service: &str, middlewares: &[&str]) -> Resource {
    let mut content = format!(
        "# Managed by stackctl (stack shop, route.{name}). Hand edits are reported as drift and replaced by apply.\nhttp:\n  routers:\n    {name}:\n      rule: \"{rule}\"\n      entryPoints:\n        - \"websecure\"\n      service: \"{service}\"\n"
    );
    if !middlewares.is_empty() {
        content.push_str("      middlewares:\n");
        for middleware in middlewares {
            content.push_str(&format!("        - \"{middleware}\"\n"));
        }
    }
    content.push_str("      tls:\n        certResolver: \"le\"\n");
    Resource::new(Address::new("route", name), "traefik")
        .with("content", content)
        .with("rule", rule)
        .with("service", service)
        .with(
            "middlewares",
            Value::List(middlewares.iter().map(|name| Value::text(*name)).collect()),
        )
        .with("path", format!("{ROOT}/traefik/dynamic/route-{name}.yml"))
        .with("temp_dir", format!("{ROOT}/traefik/.tmp"))
        .depends_on(Address::new("service", service))
}

fn rate_limit(average: i64) -> Resource {
    Resource::new(Address::new("middleware", "api-limit"), "traefik")
        .with("type", "rate_limit")
        .with(
            "settings",
            Value::Map(BTreeMap::from([
                ("average".to_string(), Value::Integer(average)),
                ("burst".to_string(), Value::Integer(average * 2)),
            ])),
        )
        .with(
            "content",
            format!("# Managed by stackctl (stack shop, middleware.api-limit). Hand edits are reported as drift and replaced by apply.\nhttp:\n  middlewares:\n    api-limit:\n      rateLimit:\n        average: {average}\n        burst: {}\n        period: \"1s\"\n", average * 2),
        )
        .with("path", format!("{ROOT}/traefik/dynamic/middleware-api-limit.yml"))
        .with("temp_dir", format!("{ROOT}/traefik/.tmp"))
}

fn service(name: &str, image: &str, env: &[(&str, &str)]) -> Resource {
    Resource::new(Address::new("service", name), "docker")
        .with("container_name", format!("shop-{name}"))
        .with("image", image)
        .with(
            "env",
            Value::Map(
                env.iter()
                    .map(|(key, value)| (key.to_string(), Value::text(*value)))
                    .collect(),
            ),
        )
        .with("stateful", false)
        .with("volumes", Value::List(Vec::new()))
}

fn stateful_service(name: &str, image: &str, volume: &str) -> Resource {
    let mut resource = service(name, image, &[])
        .with("stateful", true)
        .with(
            "volumes",
            Value::List(vec![Value::Map(BTreeMap::from([
                ("kind".to_string(), Value::text("volume")),
                ("source".to_string(), Value::text(format!("shop_{volume}"))),
                ("target".to_string(), Value::text("/data")),
            ]))]),
        )
        .depends_on(Address::new("volume", volume));
    resource.replace_order = ReplaceOrder::DestroyBeforeCreate;
    resource
}

fn static_file(staging: bool) -> Resource {
    let server = if staging {
        "https://acme-staging-v02.api.letsencrypt.org/directory"
    } else {
        "https://acme-v02.api.letsencrypt.org/directory"
    };
    Resource::new(Address::new("file", "traefik-static"), "traefik")
        .with(
            "content",
            format!("# Managed by stackctl (stack shop, file.traefik-static). Hand edits are reported as drift and replaced by apply.\nentryPoints:\n  websecure:\n    address: \":443\"\ncertificatesResolvers:\n  le:\n    acme:\n      email: \"ops@example.com\"\n      storage: \"/acme/acme.json\"\n      caServer: \"{server}\"\n"),
        )
        .with(
            "resolver",
            Value::Map(BTreeMap::from([
                ("name".to_string(), Value::text("le")),
                ("ca_server".to_string(), Value::text(server)),
                ("staging".to_string(), Value::Bool(staging)),
            ])),
        )
        .with("path", format!("{ROOT}/traefik/traefik.yml"))
        .with("temp_dir", format!("{ROOT}/traefik/.tmp"))
        .with("dynamic_dir", "/etc/traefik/dynamic")
}

fn edge(config_hash: &str) -> Resource {
    let port = |port: i64| {
        Value::Map(BTreeMap::from([
            ("host_ip".to_string(), Value::text("0.0.0.0")),
            ("host_port".to_string(), Value::Integer(port)),
            ("container_port".to_string(), Value::Integer(port)),
        ]))
    };
    let mut resource = service("edge", "traefik:v3.3", &[])
        .with("stateful", true)
        .with("ports", Value::List(vec![port(80), port(443)]))
        .with("config_hash", config_hash)
        .depends_on(Address::new("file", "traefik-static"));
    resource.replace_order = ReplaceOrder::DestroyBeforeCreate;
    resource
}

fn review_schemas() -> SchemaSet {
    SchemaSet::new([
        KindSchema {
            kind: "service",
            provider: "docker",
            attributes: vec![
                AttributeSchema::replaces("image"),
                AttributeSchema::replaces("env"),
                AttributeSchema::replaces("volumes"),
                AttributeSchema::replaces("config_hash"),
                AttributeSchema::computed("container_id"),
            ],
        },
        KindSchema {
            kind: "volume",
            provider: "docker",
            attributes: vec![AttributeSchema::replaces("name")],
        },
    ])
}

fn recorded_as(resource: &Resource) -> RecordedResource {
    RecordedResource::from_desired(resource, Some(format!("id-{}", resource.address.name())))
}

fn live_as(record: &RecordedResource) -> LiveResource {
    LiveResource {
        address: record.address.clone(),
        id: record.id.clone(),
        attributes: record.attributes.clone(),
        owned: true,
    }
}

/// Every kind of action: create, update, both replace orders, delete, adopt.
fn review_plan() -> stackctl::plan::Plan {
    let api = |hosts: &str| {
        service(
            "api",
            "shop/api:3a5ad1994102",
            &[
                ("ALLOWED_HOSTS", hosts),
                ("REDIS_URL", "redis://redis:6379/0"),
            ],
        )
        .with("port", 8000i64)
        .with(
            "route_backend",
            Value::Map(BTreeMap::from([
                (
                    "file".to_string(),
                    Value::text(format!("{ROOT}/traefik/dynamic/backend-api.yml")),
                ),
                ("service".to_string(), Value::text("api")),
            ])),
        )
        .depends_on(Address::new("service", "postgres"))
    };
    let image =
        Resource::new(Address::new("image", "api"), "docker").with("tag", "shop/api:3a5ad1994102");
    let uploads_volume =
        Resource::new(Address::new("volume", "uploads"), "docker").with("name", "shop_uploads");
    let cache_volume =
        Resource::new(Address::new("volume", "cache"), "docker").with("name", "shop_cache");
    let network =
        Resource::new(Address::new("network", "backend"), "docker").with("name", "shop_backend");

    let before = vec![
        image.clone(),
        rate_limit(50),
        api("example.com"),
        stateful_service("postgres", "postgres:16-alpine", "pgdata"),
        static_file(true),
        edge("sha256:1111"),
        route(
            "dashboard",
            "Host(`traefik.example.com`)",
            "edge",
            &["admin-only"],
        ),
        stateful_service("uploads", "shop/uploads:1", "uploads"),
        uploads_volume.clone(),
        cache_volume,
    ];
    let desired = vec![
        image,
        rate_limit(100),
        api("example.com,www.example.com"),
        stateful_service("postgres", "postgres:17-alpine", "pgdata"),
        static_file(false),
        edge("sha256:2222"),
        route(
            "docs",
            "Host(`example.com`) && PathPrefix(`/docs`)",
            "api",
            &["secure-headers"],
        ),
        uploads_volume,
        network.clone(),
    ];
    let recorded: BTreeMap<Address, RecordedResource> = before
        .iter()
        .map(|resource| (resource.address.clone(), recorded_as(resource)))
        .collect();
    let mut live = LiveSnapshot {
        resources: recorded
            .values()
            .map(|record| (record.address.clone(), live_as(record)))
            .collect(),
        read_providers: ["docker".to_string(), "traefik".to_string()].into(),
        unread: Vec::new(),
    };
    let found = live_as(&recorded_as(&network));
    live.resources.insert(found.address.clone(), found);
    plan(&PlanInput {
        stack: "shop",
        desired: &desired,
        recorded: &recorded,
        state: StateIdentity {
            lineage: Some("0f3c".into()),
            serial: 7,
        },
        config_fingerprint: "fingerprint".into(),
        live: Ok(&live),
        schemas: &review_schemas(),
        targets: &[],
        mode: PlanMode::Apply,
    })
}

#[test]
fn the_review_plan_has_every_kind_of_action() {
    let plan = review_plan();
    let kind_of = |address: &str| {
        plan.actions
            .iter()
            .find(|action| action.address.to_string() == address)
            .map(|action| action.kind)
    };
    assert_eq!(kind_of("route.docs"), Some(ActionKind::Create));
    assert_eq!(kind_of("middleware.api-limit"), Some(ActionKind::Update));
    assert_eq!(
        kind_of("service.api"),
        Some(ActionKind::ReplaceCreateBeforeDestroy)
    );
    assert_eq!(
        kind_of("service.postgres"),
        Some(ActionKind::ReplaceDestroyBeforeCreate)
    );
    assert_eq!(kind_of("route.dashboard"), Some(ActionKind::Delete));
    assert_eq!(kind_of("network.backend"), Some(ActionKind::Adopt));
    assert_eq!(kind_of("volume.cache"), Some(ActionKind::Delete));
    assert_eq!(
        plan.unchanged,
        vec![
            Address::new("image", "api"),
            Address::new("volume", "uploads")
        ]
    );
}

#[test]
fn warnings_name_data_loss_failing_requests_and_production_certificates_never_a_swap() {
    let plan = review_plan();
    let warnings: Vec<(WarningKind, String)> = plan
        .risks
        .iter()
        .map(|warning| (warning.kind, warning.address.to_string()))
        .collect();
    assert_eq!(
        warnings,
        vec![
            (WarningKind::DataLoss, "service.uploads".to_string()),
            (WarningKind::DataLoss, "volume.cache".to_string()),
            (WarningKind::ExposureWidened, "route.docs".to_string()),
            (WarningKind::ExposureWidened, "service.api".to_string()),
            (WarningKind::RequestsFail, "service.edge".to_string()),
            (WarningKind::RequestsFail, "service.postgres".to_string()),
            (
                WarningKind::ProductionCertificates,
                "file.traefik-static".to_string()
            ),
        ],
        "{:#?}",
        plan.risks
    );
    // The create-before-destroy swap of the stateless api drops no request: no warning
    // about its replacement (only that the new `docs` route makes it reachable).
    assert!(!plan
        .risks
        .iter()
        .any(|warning| warning.address.name() == "api"
            && warning.kind != WarningKind::ExposureWidened));
    let edge = plan
        .risks
        .iter()
        .find(|warning| warning.address.name() == "edge")
        .unwrap();
    assert!(
        edge.why.contains("`file.traefik-static`") && edge.why.contains("80, 443"),
        "{}",
        edge.why
    );
    let postgres = plan
        .risks
        .iter()
        .find(|warning| warning.address.name() == "postgres")
        .unwrap();
    assert!(postgres.why.contains("`service.api`"), "{}", postgres.why);
}

#[test]
fn the_review_plan_as_text() {
    insta::assert_snapshot!(
        "review_plan_text",
        stackctl::render::text::render(&review_plan(), false)
    );
}

#[test]
fn the_review_plan_as_json() {
    insta::assert_snapshot!(
        "review_plan_json",
        stackctl::render::json::render(&review_plan())
    );
}

#[test]
fn the_review_plan_as_markdown() {
    insta::assert_snapshot!(
        "review_plan_markdown",
        stackctl::render::markdown::render(&review_plan())
    );
}

/// The markdown as GitHub would render it: Debian's `cmark-gfm`, with GitHub's extensions.
/// `--unsafe` keeps raw HTML (`<details>`, `<summary>`, `<code>`), which cmark-gfm drops by
/// default and GitHub keeps (its sanitizer allows those tags). A missing renderer fails the
/// test rather than skipping it: a skipped check is no check.
fn rendered_by_cmark_gfm(markdown: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("cmark-gfm")
        .args([
            "--extension",
            "table",
            "--extension",
            "autolink",
            "--extension",
            "strikethrough",
            "--unsafe",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => panic!(
            "cannot run `cmark-gfm` ({error}): this test renders the pull-request comment as GitHub would. \
             `.ci/run` installs it in its \"packages\" step; on Debian or Ubuntu run `apt-get install cmark-gfm`"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(markdown.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "cmark-gfm failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The text of every `<tag>…</tag>` element in `html` (not nested in itself).
fn elements<'a>(html: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        let Some(length) = rest[start..].find(&close) else {
            break;
        };
        found.push(&rest[start..start + length]);
        rest = &rest[start + length + close.len()..];
    }
    found
}

#[test]
fn markdown_renders_on_github_as_a_table_with_readable_code_and_sections_in_order() {
    let html = rendered_by_cmark_gfm(&stackctl::render::markdown::render(&review_plan()));

    assert!(html.contains("<table>"), "no table in:\n{html}");
    for tag in ["pre", "code"] {
        for element in elements(&html, tag) {
            assert!(
                !element.contains("\\n"),
                "an escaped newline inside <{tag}>; multi-line values should render as lines:\n{element}"
            );
        }
    }
    // Summaries are HTML: code there is a <code> tag; a backtick would show as-is.
    for summary in elements(&html, "summary") {
        assert!(
            !summary.contains('`'),
            "a backtick inside <summary>: {summary}"
        );
    }
    // Sections in the order a reviewer needs them: title, risks, table, diffs.
    let position = |needle: &str| {
        html.find(needle)
            .unwrap_or_else(|| panic!("`{needle}` not found in:\n{html}"))
    };
    let title = position("<h3>");
    let risks = position("Applying this plan risks");
    let table = position("<table>");
    // The first collapsed block after the table is a resource's diff (the exposure
    // section above the table has one of its own).
    let diffs = table
        + html[table..]
            .find("<details>")
            .unwrap_or_else(|| panic!("no diff after the table in:\n{html}"));
    assert!(title < risks && risks < table && table < diffs, "{html}");
    // The exposure diff (issue 14, point 1), once there, comes before the table.
    if let Some(exposure) = html.to_lowercase().find("exposure") {
        assert!(
            exposure < table,
            "the exposure section comes after the table:\n{html}"
        );
    }
}

/// 300 resources: 100 routes created, 100 changed, 100 deleted, each with a rendered
/// file, the way a large stack's first or last deploy looks.
fn plan_of_300_resources() -> stackctl::plan::Plan {
    let routes = |range: std::ops::Range<usize>, service: &str| -> Vec<Resource> {
        range
            .map(|index| {
                route(
                    &format!("site-{index:03}"),
                    &format!("Host(`site-{index:03}.example.com`)"),
                    service,
                    &["secure-headers", "api-limit"],
                )
            })
            .collect()
    };
    let before: Vec<Resource> = routes(100..300, "api");
    let desired: Vec<Resource> = routes(0..100, "api")
        .into_iter()
        .chain(routes(100..200, "api-v2"))
        .collect();
    let recorded: BTreeMap<Address, RecordedResource> = before
        .iter()
        .map(|resource| (resource.address.clone(), recorded_as(resource)))
        .collect();
    plan(&PlanInput {
        stack: "shop",
        desired: &desired,
        recorded: &recorded,
        state: StateIdentity {
            lineage: Some("0f3c".into()),
            serial: 7,
        },
        config_fingerprint: String::new(),
        live: Err("--offline".into()),
        schemas: &review_schemas(),
        targets: &[],
        mode: PlanMode::Apply,
    })
}

#[test]
fn a_300_resource_plan_stays_under_githubs_comment_limit_and_points_at_the_whole_plan() {
    let plan = plan_of_300_resources();
    assert_eq!(plan.actions.len(), 300);
    let markdown = stackctl::render::markdown::render(&plan);
    // GitHub counts characters; 65,536 is its limit for a comment.
    assert!(
        markdown.chars().count() < 65_536,
        "{} characters",
        markdown.chars().count()
    );
    assert!(markdown.len() <= stackctl::render::markdown::LIMIT_BYTES);
    assert!(
        markdown.contains("left out to keep this comment under 60 KB"),
        "{markdown}"
    );
    assert!(
        markdown.contains("`stackctl plan --format json`"),
        "{markdown}"
    );
    assert!(
        markdown.contains("`plan.txt` and `plan.json`"),
        "{markdown}"
    );
    // Every action keeps its row: only diffs were left out.
    assert_eq!(markdown.matches("\n| `").count(), 300);
    assert_eq!(
        markdown,
        stackctl::render::markdown::render(&plan),
        "deterministic"
    );
    // What is left still renders as GitHub would: no block left open by the cut.
    let html = rendered_by_cmark_gfm(&markdown);
    assert_eq!(
        html.matches("<details>").count(),
        html.matches("</details>").count()
    );
}

/// Django's image and a secret in its env changed: the release task (`migrate`) runs
/// between the image build and the service's replacement, which waits for it.
fn release_plan() -> stackctl::plan::Plan {
    use stackctl_provider::{Provider, RecordedResource};
    let django = |tag: &str, password: &str| {
        let env = Value::Map(
            [
                (
                    "DJANGO_SETTINGS_MODULE".to_string(),
                    Value::text("shop.settings"),
                ),
                (
                    "DATABASE_PASSWORD".to_string(),
                    Value::Secret(Secret::new(password, "salt")),
                ),
            ]
            .into(),
        );
        let image = Resource::new(Address::new("image", "django"), "docker")
            .with("tag", format!("shop/django:{tag}"))
            .with("context", "apps/django")
            .with("context_hash", format!("sha256:{tag}"))
            .with("dockerfile", "Dockerfile");
        let release = Resource::new(Address::new("release", "django"), "docker")
            .with("container_name", "shop-django-release")
            .with("image", format!("shop/django:{tag}"))
            .with(
                "command",
                Value::List(
                    ["python", "manage.py", "migrate", "--noinput"]
                        .map(Value::text)
                        .to_vec(),
                ),
            )
            .with("env", env.clone())
            .with("timeout_seconds", 600i64)
            .depends_on(Address::new("image", "django"));
        let service = Resource::new(Address::new("service", "django"), "docker")
            .with("container_name", "shop-django")
            .with("image", format!("shop/django:{tag}"))
            .with("env", env)
            .depends_on(Address::new("image", "django"))
            .depends_on(Address::new("release", "django"));
        vec![image, release, service]
    };
    let before = django("aaaa", "old-Secret-1");
    let after = django("bbbb", "new-Secret-2");
    let recorded = before
        .iter()
        .map(|resource| {
            (
                resource.address.clone(),
                RecordedResource::from_desired(resource, None),
            )
        })
        .collect();
    let connector = std::sync::Arc::new(stackctl_host::HostConnector::local());
    let docker = stackctl_docker::DockerProvider::new(connector, "shop");
    plan(&PlanInput {
        stack: "shop",
        desired: &after,
        recorded: &recorded,
        state: StateIdentity {
            lineage: Some("lineage".into()),
            serial: 4,
        },
        config_fingerprint: "fingerprint".into(),
        live: Err("--offline".into()),
        schemas: &SchemaSet::new(docker.kinds()),
        targets: &[],
        mode: PlanMode::Apply,
    })
}

#[test]
fn a_plan_with_a_release_task_in_every_format() {
    let plan = release_plan();
    let text = stackctl::render::text::render(&plan, false);
    let json = stackctl::render::json::render(&plan);
    let markdown = stackctl::render::markdown::render(&plan);
    for rendered in [&text, &json, &markdown] {
        assert!(!rendered.contains("Secret-"), "{rendered}");
    }
    insta::assert_snapshot!("release_plan_text", text);
    insta::assert_snapshot!("release_plan_json", json);
    insta::assert_snapshot!("release_plan_markdown", markdown);
}
