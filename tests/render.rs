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
