//! The real `stackctl` binary in a sealed directory: the plan of the reference stack in
//! every format, every kind of bad input, saved plans, locks and state commands.

mod support;

use support::{repository, TestEnvironment};

const ENV_FILE: &str = ".env.example";

fn plan(environment: &TestEnvironment, format: &str) -> support::Run {
    environment.run(&[
        "plan",
        "--offline",
        "--env-file",
        ENV_FILE,
        "--format",
        format,
    ])
}

#[test]
fn plan_of_the_reference_stack_creates_everything_in_dependency_order_as_text() {
    let environment = TestEnvironment::reference();
    let run = plan(&environment, "text");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("note: live state was not read"),
        "the plan says live state was not read"
    );
    assert!(run
        .stdout
        .contains("Plan: 36 to create, 0 to update, 0 to replace, 0 to delete"));
    insta::assert_snapshot!("plan_reference_text", environment.filter(&run.stdout));
}

#[test]
fn plan_of_the_reference_stack_as_json_and_markdown() {
    let environment = TestEnvironment::reference();
    let json = plan(&environment, "json");
    assert_eq!(json.code, 0, "{}", json.stderr);
    let document: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(document["format_version"], 1);
    assert_eq!(document["live_state"]["read"], false);
    assert_eq!(document["summary"]["create"], 36);
    insta::assert_snapshot!("plan_reference_json", environment.filter(&json.stdout));
    let markdown = plan(&environment, "markdown");
    assert_eq!(markdown.code, 0, "{}", markdown.stderr);
    assert!(markdown.stdout.len() < 60_000);
    insta::assert_snapshot!(
        "plan_reference_markdown",
        environment.filter(&markdown.stdout)
    );
}

#[test]
fn plan_output_is_byte_identical_across_runs() {
    let first = TestEnvironment::reference();
    let second = TestEnvironment::reference();
    for format in ["text", "json", "markdown"] {
        let one = plan(&first, format);
        let two = plan(&first, format);
        let elsewhere = plan(&second, format);
        assert_eq!(one.stdout, two.stdout, "{format} differs between two runs");
        assert_eq!(
            first.filter(&one.stdout),
            second.filter(&elsewhere.stdout),
            "{format} depends on the directory"
        );
    }
}

#[test]
fn resources_are_listed_after_what_they_depend_on() {
    let environment = TestEnvironment::reference();
    let run = plan(&environment, "json");
    let document: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let actions = document["actions"].as_array().unwrap();
    let position = |address: &str| {
        actions
            .iter()
            .position(|action| action["address"] == address)
            .unwrap()
    };
    for action in actions {
        for dependency in action["depends_on"].as_array().unwrap() {
            assert!(
                position(dependency.as_str().unwrap())
                    < position(action["address"].as_str().unwrap())
            );
        }
    }
    assert!(position("droplet.web-1") < position("service.api"));
    assert!(position("service.postgres") < position("service.api"));
}

#[test]
fn detailed_exitcode_is_2_when_there_are_changes() {
    let environment = TestEnvironment::reference();
    let run = environment.run(&[
        "plan",
        "--offline",
        "--env-file",
        ENV_FILE,
        "--detailed-exitcode",
    ]);
    assert_eq!(run.code, 2);
}

#[test]
fn rollback_with_no_recorded_apply_is_refused_and_the_empty_history_says_so() {
    let environment = TestEnvironment::reference();
    let list = environment.run(&["rollback", "--list", "--env-file", ENV_FILE]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    insta::assert_snapshot!("rollback_list_empty", list.stdout);
    let refused = environment.run(&["rollback", "--yes", "--env-file", ENV_FILE]);
    assert_eq!(refused.code, 1);
    insta::assert_snapshot!(
        "rollback_without_history",
        environment.filter(&refused.stderr)
    );
}

#[test]
fn secrets_never_appear_in_any_plan_format() {
    let environment = TestEnvironment::reference();
    let secrets = [
        ("POSTGRES_PASSWORD", "pg-Secret-4711"),
        ("FLOWER_PASSWORD", "flower-Secret-4711"),
        ("DJANGO_SECRET_KEY", "django-Secret-4711"),
    ];
    for format in ["text", "json", "markdown"] {
        let run = environment.run_with_env(
            &[
                "plan",
                "--offline",
                "--env-file",
                ENV_FILE,
                "--format",
                format,
                "--out",
                "saved.json",
            ],
            &secrets,
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        let saved = environment.read("saved.json");
        for (_, secret) in &secrets {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "{secret} leaked into the {format} plan"
            );
            assert!(
                !saved.contains(secret),
                "{secret} leaked into the saved plan"
            );
        }
        assert!(run.stdout.contains("sensitive"));
    }
}

fn bad_input(name: &str, stack: &str) {
    let environment = TestEnvironment::new();
    environment.write("stack.toml", stack);
    let run = environment.run(&["validate"]);
    assert_eq!(run.code, 1, "{name}: expected exit 1\n{}", run.stderr);
    assert!(
        run.stderr.contains("stack.toml:"),
        "{name}: no file:line:column in\n{}",
        run.stderr
    );
    insta::assert_snapshot!(name, run.stderr);
}

const BASE: &str = "[stack]\nname = \"shop\"\n\n[target]\nhost = \"local\"\n";

#[test]
fn unknown_key_names_the_place_and_the_nearest_key() {
    bad_input(
        "error_unknown_key",
        &format!("{BASE}\n[services.api]\nimage = \"api:1\"\nprot = 8000\n"),
    );
}

#[test]
fn wrong_type_says_what_was_expected() {
    bad_input(
        "error_wrong_type",
        &format!("{BASE}\n[services.api]\nimage = \"api:1\"\nport = \"eight thousand\"\n"),
    );
}

#[test]
fn missing_required_field() {
    bad_input("error_missing_field", "[stack]\nenv_file = \".env\"\n");
}

#[test]
fn dangling_reference() {
    bad_input("error_dangling_reference", &format!("{BASE}\n[services.api]\nimage = \"api:1\"\ndepends_on = [\"postgress\"]\n\n[services.postgres]\nimage = \"postgres:16\"\n"));
}

#[test]
fn dependency_cycle_names_every_member() {
    bad_input(
        "error_cycle",
        &format!("{BASE}\n[services.a]\nimage = \"x\"\ndepends_on = [\"b\"]\n\n[services.b]\nimage = \"x\"\ndepends_on = [\"c\"]\n\n[services.c]\nimage = \"x\"\ndepends_on = [\"a\"]\n"),
    );
}

#[test]
fn unresolved_variable() {
    bad_input("error_unresolved_variable", &format!("{BASE}\n[services.api]\nimage = \"api:1\"\nenv = {{ DATABASE_URL = \"postgres://app:${{DB_PASSWORD}}@db/app\" }}\n"));
}

#[test]
fn a_port_published_by_a_service_other_than_the_edge() {
    bad_input(
        "error_published_port",
        &format!("{BASE}\n[services.django]\nimage = \"django:1\"\nports = [\"8000:8000\"]\n"),
    );
}

#[test]
fn production_certificates_need_an_explicit_allowance() {
    bad_input(
        "error_production_resolver",
        &format!("{BASE}\n[edge]\nimage = \"traefik:v3.3\"\ntls = {{ resolver = \"le\", email = \"ops@example.com\", ca = \"production\" }}\n"),
    );
}

#[test]
fn a_dashboard_route_needs_basic_auth_and_an_allowlist() {
    bad_input(
        "error_dashboard_route",
        &format!("{BASE}\n[edge]\nimage = \"traefik:v3.3\"\n\n[services.flower]\nimage = \"flower:2\"\nport = 5555\ndashboard = true\n\n[routes.flower]\nhost = \"flower.example.com\"\nservice = \"flower\"\n"),
    );
}

#[test]
fn malformed_toml_is_reported_not_a_panic() {
    bad_input("error_malformed_toml", "[stack\nname = \"shop\"\n");
    for text in [
        "",
        "=",
        "[[[",
        "a = [1, 2",
        "[stack]\nname = 1\n[stack]\n",
        "x = \"\\u{zz}\"",
        "[services.a]\nimage = { }\n",
        "\u{0}",
    ] {
        let environment = TestEnvironment::new();
        environment.write("stack.toml", text);
        let run = environment.run(&["validate"]);
        assert_eq!(run.code, 1, "{text:?}: {}", run.stderr);
        assert!(
            !run.stderr.contains("panicked"),
            "{text:?} panicked: {}",
            run.stderr
        );
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let environment = TestEnvironment::new();
    environment.write("stack.toml", &format!("{BASE}\n[services.api]\nimage = \"api:1\"\nprot = 1\nmemroy = \"1g\"\nrestart = \"sometimes\"\n"));
    let run = environment.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr.matches("error:").count(),
        4,
        "three problems and the summary line:\n{}",
        run.stderr
    );
}

#[test]
fn validate_as_json_lists_problems_with_locations() {
    let environment = TestEnvironment::new();
    environment.write(
        "stack.toml",
        &format!("{BASE}\n[services.api]\nimage = \"api:1\"\nprot = 8000\n"),
    );
    let run = environment.run(&["validate", "--format", "json"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!("validate_json", run.stdout);
}

#[test]
fn the_reference_stack_and_every_example_validate_and_plan() {
    let mut stacks = Vec::new();
    for entry in std::fs::read_dir(repository().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.join("stack.toml").exists() {
            stacks.push(path);
        }
    }
    assert!(stacks.len() >= 3, "at least three examples");
    stacks.push(repository());
    for directory in stacks {
        // Each example sits where it does in the repository, beside a copy of apps/ (the
        // shop builds `../../apps/*`).
        let (environment, stack_file, env_file) = if directory == repository() {
            (
                TestEnvironment::reference(),
                "stack.toml".to_string(),
                ENV_FILE.to_string(),
            )
        } else {
            let environment = TestEnvironment::new();
            let name = directory
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let example = format!("examples/{name}");
            support::copy_tree(&directory, &environment.path().join(&example));
            for generated in ["runs", "state"] {
                std::fs::remove_dir_all(environment.path().join(&example).join(generated)).ok();
            }
            support::copy_sources(&repository().join("apps"), &environment.path().join("apps"));
            (
                environment,
                format!("{example}/stack.toml"),
                format!("{example}/{ENV_FILE}"),
            )
        };
        let run = |command: &[&str]| {
            let mut arguments = vec!["-c", stack_file.as_str()];
            arguments.extend(command);
            arguments.extend(["--env-file", env_file.as_str()]);
            environment.run(&arguments)
        };
        let validate = run(&["validate", "--strict"]);
        assert_eq!(
            validate.code,
            0,
            "{}: {}",
            directory.display(),
            validate.stderr
        );
        let plan = run(&["plan", "--offline"]);
        assert_eq!(plan.code, 0, "{}: {}", directory.display(), plan.stderr);
        assert!(plan.stdout.contains("to create"), "{}", directory.display());
    }
}

/// docs/examples/swarm is not under examples/: every stack on a swarm carries the warning
/// that Engine API 1.41 has no `no-new-privileges` for services, so `--strict` refuses it.
/// Here it validates with that warning alone, and plans the swarm and its services.
#[test]
fn the_swarm_example_validates_with_only_the_swarm_hardening_warning_and_plans() {
    let environment = TestEnvironment::new();
    let example = "docs/examples/swarm";
    support::copy_tree(
        &repository().join(example),
        &environment.path().join(example),
    );
    let stack_file = format!("{example}/stack.toml");
    let env_file = format!("{example}/{ENV_FILE}");
    let run = |command: &[&str]| {
        let mut arguments = vec!["-c", stack_file.as_str()];
        arguments.extend(command);
        arguments.extend(["--env-file", env_file.as_str()]);
        environment.run(&arguments)
    };
    let validate = run(&["validate", "--format", "json"]);
    assert_eq!(validate.code, 0, "{}{}", validate.stdout, validate.stderr);
    let report: serde_json::Value = serde_json::from_str(&validate.stdout).expect("JSON");
    let codes: Vec<&str> = report["diagnostics"]
        .as_array()
        .expect("a list of diagnostics")
        .iter()
        .map(|diagnostic| diagnostic["code"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(codes, ["swarm-hardening-limits"], "{}", validate.stdout);
    let plan = run(&["plan", "--offline"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    for address in [
        "swarm.cluster",
        "swarm_node.web-1",
        "swarm_node.web-3",
        "swarm_service.app",
        "swarm_service.cache",
    ] {
        assert!(plan.stdout.contains(address), "{address}: {}", plan.stdout);
    }
    // Its `[files]` entry reaches the app's tasks as a Swarm config named after the
    // content, at the path the app mounts it.
    let configs = plan
        .stdout
        .lines()
        .find(|line| line.contains("configs"))
        .unwrap_or_else(|| panic!("no config in the plan: {}", plan.stdout));
    assert!(
        configs.contains("/etc/blog/settings.toml") && configs.contains("blog_app_blog-settings_"),
        "{configs}"
    );
}

/// On a swarm, a secret env value is planned like on one host (its digest, shown as
/// sensitive), no longer refused: the docker provider mounts it as a Swarm secret file.
#[test]
fn a_secret_in_a_swarm_services_env_is_planned_as_sensitive_never_shown() {
    let environment = TestEnvironment::new();
    let example = "docs/examples/swarm";
    let directory = environment.path().join(example);
    support::copy_tree(&repository().join(example), &directory);
    let stack_path = directory.join("stack.toml");
    let stack = std::fs::read_to_string(&stack_path).unwrap().replace(
        r#"env = { CACHE_URL = "redis://cache:6379/0" }"#,
        r#"env = { CACHE_URL = "redis://cache:6379/0", SESSION_SECRET = "${SESSION_SECRET}" }"#,
    );
    assert!(
        stack.contains("SESSION_SECRET"),
        "the example's app env moved"
    );
    std::fs::write(&stack_path, stack).unwrap();
    let env_path = directory.join(ENV_FILE);
    let mut env_file = std::fs::read_to_string(&env_path).unwrap();
    env_file.push_str("SESSION_SECRET=\n");
    std::fs::write(&env_path, env_file).unwrap();
    let value = "a-swarm-session-secret-value-of-the-test";
    let plan = environment.run_with_env(
        &[
            "-c",
            &format!("{example}/stack.toml"),
            "plan",
            "--offline",
            "--env-file",
            &format!("{example}/{ENV_FILE}"),
        ],
        &[("SESSION_SECRET", value)],
    );
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("swarm_service.app"), "{}", plan.stdout);
    let secret_line = plan
        .stdout
        .lines()
        .find(|line| line.contains("SESSION_SECRET"))
        .unwrap_or_else(|| panic!("no SESSION_SECRET in the plan: {}", plan.stdout));
    assert!(secret_line.contains("(sensitive)"), "{secret_line}");
    assert!(!plan.stdout.contains(value) && !plan.stderr.contains(value));
}

#[test]
fn the_committed_json_schema_is_fresh() {
    let committed =
        std::fs::read_to_string(repository().join("docs/stack.schema.json")).unwrap_or_default();
    let environment = TestEnvironment::new();
    let run = environment.run(&["schema"]);
    assert_eq!(run.code, 0);
    assert!(
        committed == run.stdout,
        "docs/stack.schema.json is stale: run `cargo run -- schema > docs/stack.schema.json`"
    );
}

#[test]
fn a_saved_plan_is_refused_after_the_state_serial_moved() {
    let environment = TestEnvironment::reference();
    let store = stackctl::state::StateStore::new(environment.path().join("state"), "shop");
    let mut state = stackctl::state::State::new("shop");
    store.save(&mut state).unwrap();
    let saved = environment.run(&[
        "plan",
        "--offline",
        "--env-file",
        ENV_FILE,
        "--out",
        "plan.json",
    ]);
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    store.save(&mut state).unwrap();
    let run = environment.run(&["apply", "plan.json", "--env-file", ENV_FILE]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!("error_stale_plan", run.stderr);
    let show = environment.run(&["show", "plan.json"]);
    assert_eq!(show.code, 0);
    assert!(show.stdout.contains("droplet.web-1"));
}

#[test]
fn a_saved_plan_is_refused_after_the_config_changed() {
    let environment = TestEnvironment::reference();
    let saved = environment.run(&[
        "plan",
        "--offline",
        "--env-file",
        ENV_FILE,
        "--out",
        "plan.json",
    ]);
    assert_eq!(saved.code, 0);
    let stack = environment
        .read("stack.toml")
        .replace("s-2vcpu-4gb", "s-4vcpu-8gb");
    environment.write("stack.toml", &stack);
    let run = environment.run(&["apply", "plan.json", "--env-file", ENV_FILE]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("what would be applied changed since the plan was made"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_second_apply_fails_naming_the_lock_holder() {
    let environment = TestEnvironment::reference();
    let store = stackctl::state::StateStore::new(environment.path().join("state"), "shop");
    let _held = store.lock("stackctl apply").unwrap();
    let run = environment.run(&["apply", "--yes", "--env-file", ENV_FILE]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("error: state `shop` is locked by"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("pid {}", std::process::id())),
        "{}",
        run.stderr
    );
    assert!(run
        .stderr
        .contains("hint: wait for that run to finish: the lock is released when its process ends"));
    drop(_held);
    let run = environment.run(&["state", "unlock", "--env-file", ENV_FILE]);
    assert_eq!(run.code, 0);
}

#[test]
fn a_backup_takes_the_state_lock_like_restore() {
    let environment = TestEnvironment::reference();
    let store = stackctl::state::StateStore::new(environment.path().join("state"), "shop");
    let held = store.lock("stackctl apply").unwrap();
    let run = environment.run(&["backup", "--env-file", ENV_FILE]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("error: state `shop` is locked by"),
        "{}",
        run.stderr
    );
    drop(held);
}

#[test]
fn plan_mentions_a_held_state_lock_and_a_killed_runs_lock_needs_no_unlock() {
    let environment = TestEnvironment::reference();
    let store = stackctl::state::StateStore::new(environment.path().join("state"), "shop");
    let held = store.lock("stackctl apply").unwrap();
    let plan = environment.run(&["plan", "--offline", "--env-file", ENV_FILE]);
    assert!(
        plan.stderr.contains("note: the state is locked by")
            && plan.stderr.contains(&format!("pid {}", std::process::id())),
        "{}",
        plan.stderr
    );
    drop(held);
    // What a run killed with -9 leaves: its name in the file, no kernel lock.
    let gone = stackctl::state::LockHolder {
        pid: 999_999,
        ..stackctl::state::LockHolder::current("stackctl apply")
    };
    std::fs::write(store.lock_path(), serde_json::to_string(&gone).unwrap()).unwrap();
    let plan = environment.run(&["plan", "--offline", "--env-file", ENV_FILE]);
    assert!(!plan.stderr.contains("locked"), "{}", plan.stderr);
    let _taken = store
        .lock("stackctl apply")
        .expect("taken over, no unlock needed");
}

#[test]
fn state_commands_list_show_and_forget_resources() {
    let environment = TestEnvironment::reference();
    let store = stackctl::state::StateStore::new(environment.path().join("state"), "shop");
    let mut state = stackctl::state::State::new("shop");
    let resource = stackctl_provider::Resource::new(
        stackctl_provider::Address::new("network", "edge"),
        "docker",
    )
    .with("name", "shop_edge");
    state.resources.insert(
        resource.address.clone(),
        stackctl_provider::RecordedResource::from_desired(&resource, Some("n1".into())),
    );
    store.save(&mut state).unwrap();
    let list = environment.run(&["state", "list", "--env-file", ENV_FILE]);
    assert!(
        list.stdout.contains("network.edge\tdocker\tn1"),
        "{}",
        list.stdout
    );
    let show = environment.run(&["state", "show", "network.edge", "--env-file", ENV_FILE]);
    assert!(show.stdout.contains("\"shop_edge\""));
    let missing = environment.run(&["state", "show", "network.nope", "--env-file", ENV_FILE]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("`network.nope` is not in state"));
    let forget = environment.run(&["state", "rm", "network.edge", "--env-file", ENV_FILE]);
    assert_eq!(forget.code, 0, "{}", forget.stderr);
    assert!(store.read().unwrap().unwrap().resources.is_empty());
}

#[test]
fn graph_renders_dot_and_mermaid() {
    let environment = TestEnvironment::reference();
    let dot = environment.run(&["graph", "--env-file", ENV_FILE]);
    assert!(
        dot.stdout
            .contains("\"service.api\" -> \"service.postgres\";"),
        "{}",
        dot.stdout
    );
    let mermaid = environment.run(&["graph", "--format", "mermaid", "--env-file", ENV_FILE]);
    assert!(mermaid.stdout.starts_with("graph LR"));
}

fn user_error(name: &str, environment: &TestEnvironment, arguments: &[&str]) {
    let run = environment.run(arguments);
    assert_eq!(run.code, 1, "{name}: {}", run.stderr);
    assert!(run.stderr.starts_with("error: "), "{name}: {}", run.stderr);
    insta::assert_snapshot!(name, environment.filter(&run.stderr));
}

#[test]
fn other_user_facing_errors_say_what_happened_and_what_to_do() {
    let environment = TestEnvironment::reference();
    user_error(
        "error_no_stack_file",
        &environment,
        &["-c", "missing.toml", "plan"],
    );
    user_error(
        "error_bad_target_address",
        &environment,
        &[
            "plan",
            "--offline",
            "--env-file",
            ENV_FILE,
            "--target",
            "api",
        ],
    );
    environment.write("not-a-plan.json", "{\"hello\": 1}");
    user_error(
        "error_not_a_saved_plan",
        &environment,
        &["show", "not-a-plan.json"],
    );
    environment.write("state/shop.json", "{ this is not json");
    user_error(
        "error_corrupt_state",
        &environment,
        &["plan", "--offline", "--env-file", ENV_FILE],
    );
    environment.write("state/shop.json", "{\"format_version\": 99}");
    user_error(
        "error_newer_state_format",
        &environment,
        &["plan", "--offline", "--env-file", ENV_FILE],
    );
}

#[test]
fn a_saved_plan_is_refused_when_the_environment_or_a_build_context_changed() {
    let environment = TestEnvironment::reference();
    let saved = environment.run(&[
        "plan",
        "--offline",
        "--env-file",
        ENV_FILE,
        "--out",
        "plan.json",
    ]);
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    // The process environment wins over the env file: a different password is a different apply.
    let overridden = environment.run_with_env(
        &["apply", "plan.json", "--env-file", ENV_FILE],
        &[("POSTGRES_PASSWORD", "not-what-was-reviewed")],
    );
    assert_eq!(overridden.code, 1);
    assert!(
        overridden
            .stderr
            .contains("what would be applied changed since the plan was made"),
        "{}",
        overridden.stderr
    );
    assert!(!overridden.stderr.contains("not-what-was-reviewed"));
    environment.write("apps/api/app/main.py", "print('unreviewed')\n");
    let edited = environment.run(&["apply", "plan.json", "--env-file", ENV_FILE]);
    assert_eq!(edited.code, 1);
    assert!(
        edited
            .stderr
            .contains("what would be applied changed since the plan was made"),
        "{}",
        edited.stderr
    );
}

#[test]
fn a_secret_in_a_field_shown_in_plain_text_is_refused() {
    bad_input(
        "error_secret_in_plain_field",
        &format!("{BASE}\n[services.redis]\nimage = \"redis:7\"\ncommand = [\"redis-server\", \"--requirepass\", \"${{REDIS_PASSWORD}}\"]\n"),
    );
}

#[test]
fn two_dns_records_of_one_name_and_type_are_refused() {
    bad_input(
        "error_duplicate_dns_record",
        "[stack]\nname = \"shop\"\n\n[dns]\ndomain = \"example.com\"\nrecords = [\n  { type = \"TXT\", name = \"@\", data = \"v=spf1 -all\" },\n  { type = \"TXT\", name = \"@\", data = \"verify=1\" },\n]\n",
    );
}

#[test]
fn a_stale_state_lock_can_be_cleared_without_a_loadable_stack() {
    let environment = TestEnvironment::reference();
    let store = stackctl::state::StateStore::new(environment.path().join("state"), "shop");
    // What a killed run leaves: the file naming its holder, and no kernel lock.
    let gone = stackctl::state::LockHolder {
        pid: 999_999,
        ..stackctl::state::LockHolder::current("stackctl apply")
    };
    std::fs::create_dir_all(environment.path().join("state")).unwrap();
    std::fs::write(store.lock_path(), serde_json::to_string(&gone).unwrap()).unwrap();
    // No env file: `${VAR}`s do not resolve, yet the lock can be cleared.
    let run = environment.run(&["state", "unlock"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("Cleared the lock left by") && run.stdout.contains("pid 999999"),
        "{}",
        run.stdout
    );
    assert_eq!(std::fs::read_to_string(store.lock_path()).unwrap(), "");
}

#[test]
fn an_unknown_target_is_an_error_with_the_nearest_address() {
    let environment = TestEnvironment::reference();
    let run = environment.run(&[
        "plan",
        "--offline",
        "--env-file",
        ENV_FILE,
        "--target",
        "service.apu",
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("`--target service.apu`: no such resource"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `service.api`?"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_relative_bind_mount_is_refused() {
    bad_input("error_relative_bind", &format!("{BASE}\n[services.web]\nimage = \"nginx:1\"\nvolumes = [\"./site:/usr/share/nginx/html:ro\"]\n"));
}

/// Records everything the reference stack's plan would create as applied, so the next
/// plan shows only what a change to stack.toml does.
fn record_the_reference_stack_as_applied(environment: &TestEnvironment) {
    let store = stackctl::state::StateStore::new(environment.path().join("state"), "shop");
    let mut state = stackctl::state::State::new("shop");
    store.save(&mut state).unwrap();
    let saved = environment.run(&[
        "plan",
        "--offline",
        "--env-file",
        ENV_FILE,
        "--out",
        "plan.json",
    ]);
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    let saved: stackctl::plan::SavedPlan =
        serde_json::from_str(&environment.read("plan.json")).unwrap();
    for action in &saved.plan.actions {
        let desired = action.desired.as_ref().expect("a create has its resource");
        state.resources.insert(
            desired.address.clone(),
            stackctl_provider::RecordedResource::from_desired(desired, None),
        );
    }
    store.save(&mut state).unwrap();
}

#[test]
fn a_change_to_the_public_surface_comes_first_in_every_format() {
    let environment = TestEnvironment::reference();
    record_the_reference_stack_as_applied(&environment);
    let unchanged = plan(&environment, "text");
    assert!(
        unchanged.stdout.contains("No changes."),
        "recorded state matches stack.toml: {}",
        unchanged.stdout
    );

    // Django's admin gets a route with nothing in front of it, Flower's allowlist opens to
    // everyone, the API's rate limit is raised, and the frontend's route goes away.
    let stack = environment
        .read("stack.toml")
        .replace(
            "[routes.api]",
            "[routes.admin]\nhost = \"admin.${WEBSITE_DOMAIN}\"\nservice = \"django\"\n\n[routes.api]",
        )
        .replace("average = 50\nburst = 100", "average = 200\nburst = 400")
        .replace(
            "[routes.frontend]\nhost = \"${WEBSITE_DOMAIN}\"\nservice = \"react-app\"\nmiddlewares = [\"secure-headers\"]\n",
            "",
        );
    environment.write("stack.toml", &stack);
    let env_file = environment
        .read(ENV_FILE)
        .replace("ADMIN_CIDR=203.0.113.0/24", "ADMIN_CIDR=0.0.0.0/0");
    environment.write(ENV_FILE, &env_file);

    let text = plan(&environment, "text");
    assert_eq!(text.code, 0, "{}", text.stderr);
    insta::assert_snapshot!(
        "plan_exposure_change_text",
        environment.filter(&text.stdout)
    );
    let markdown = plan(&environment, "markdown");
    insta::assert_snapshot!(
        "plan_exposure_change_markdown",
        environment.filter(&markdown.stdout)
    );
    let json: serde_json::Value = serde_json::from_str(&plan(&environment, "json").stdout).unwrap();
    insta::assert_snapshot!(
        "plan_exposure_change_json_changes",
        serde_json::to_string_pretty(&json["exposure"]["changes"]).unwrap()
    );
}

#[test]
fn a_change_that_touches_nothing_public_says_exposure_is_unchanged() {
    let environment = TestEnvironment::reference();
    record_the_reference_stack_as_applied(&environment);
    // A new secret for Django: its container changes, nothing a client reaches does.
    let env_file = environment
        .read(ENV_FILE)
        .replace("DJANGO_SECRET_KEY=change-me", "DJANGO_SECRET_KEY=changed");
    environment.write(ENV_FILE, &env_file);
    let text = plan(&environment, "text");
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout
            .contains("\nExposure: unchanged.\n\nStack `shop`:"),
        "{}",
        text.stdout
    );
    let markdown = plan(&environment, "markdown");
    assert!(
        markdown.stdout.contains("\n**Exposure:** unchanged.\n\n"),
        "{}",
        markdown.stdout
    );
}

/// A stack that validates, with one route and its service; `{ROUTE}` takes the route's
/// matcher fields and `{MIDDLEWARES}` extra tables.
fn gated_stack(route: &str, middlewares: &str) -> String {
    format!("{BASE}\n[edge]\nimage = \"traefik:v3.3\"\n\n[services.web]\nimage = \"nginx:1\"\nport = 80\n\n[routes.web]\nservice = \"web\"\n{route}{middlewares}")
}

/// `validate` refuses what `plan` would: a CI gate running `validate` is not fooled.
fn refused_by_validate_and_plan(stack: &str, code: &str) -> support::Run {
    let environment = TestEnvironment::new();
    environment.write("stack.toml", stack);
    let validate = environment.run(&["validate"]);
    assert_eq!(validate.code, 1, "validate passed:\n{}", validate.stderr);
    let json = environment.run(&["validate", "--format", "json"]);
    assert!(
        json.stdout.contains(&format!("\"{code}\"")),
        "{code} not in\n{}",
        json.stdout
    );
    assert!(
        validate.stderr.contains("stack.toml:"),
        "no file:line:column:\n{}",
        validate.stderr
    );
    let plan = environment.run(&["plan", "--offline"]);
    assert_eq!(plan.code, 1, "plan passed:\n{}", plan.stdout);
    validate
}

#[test]
fn an_invalid_cidr_fails_validate_not_only_plan() {
    let middleware =
        "\n[middlewares.office]\ntype = \"ip_allow_list\"\nsource_range = [\"203.0.113.0/33\"]\n";
    let run = refused_by_validate_and_plan(
        &gated_stack(
            "host = \"example.test\"\nmiddlewares = [\"office\"]\n",
            middleware,
        ),
        "invalid-cidr",
    );
    assert!(
        run.stderr
            .contains("`203.0.113.0/33` is not an IP address or CIDR range"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_secret_in_a_response_header_fails_validate() {
    let environment = TestEnvironment::new();
    let stack = gated_stack(
        "host = \"example.test\"\nmiddlewares = [\"headers\"]\n",
        "\n[middlewares.headers]\ntype = \"headers\"\ncustom_response_headers = { X-Debug-Token = \"${DEBUG_TOKEN}\" }\n",
    )
    .replace("name = \"shop\"\n", "name = \"shop\"\nenv_file = \".env\"\n");
    environment.write("stack.toml", &stack);
    environment.write(".env", "DEBUG_TOKEN=hunter2-token\n");
    environment.write(".env.example", "DEBUG_TOKEN=\n");
    let validate = environment.run(&["validate"]);
    assert_eq!(validate.code, 1, "{}", validate.stderr);
    assert!(
        validate
            .stderr
            .contains("the edge would send it to every client"),
        "{}",
        validate.stderr
    );
    assert!(
        validate.stderr.contains("stack.toml:22:45"),
        "{}",
        validate.stderr
    );
    assert!(!validate.stderr.contains("hunter2"), "{}", validate.stderr);
    let plan = environment.run(&["plan", "--offline"]);
    assert_eq!(plan.code, 1, "{}", plan.stdout);
}

#[test]
fn a_300_character_stack_name_fails_validate() {
    let stack = format!("{BASE}\n[services.web]\nimage = \"nginx:1\"\n")
        .replace("\"shop\"", &format!("\"{}\"", "s".repeat(300)));
    let run = refused_by_validate_and_plan(&stack, "name-too-long");
    assert!(run.stderr.contains("stack.toml:2:8"), "{}", run.stderr);
    assert!(
        run.stderr.contains("DNS labels of at most 63 characters"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_host_that_closes_its_matcher_is_refused_not_a_catch_all() {
    let run = refused_by_validate_and_plan(
        &gated_stack("host = \"example.test`) || PathPrefix(`/\"\n", ""),
        "invalid-rule",
    );
    assert!(run.stderr.contains("stack.toml:16:8"), "{}", run.stderr);
    assert!(
        run.stderr.contains("which a host name cannot hold"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_raw_rule_that_does_not_parse_fails_validate() {
    let run = refused_by_validate_and_plan(
        &gated_stack("rule = \"Host(`example.test`) || PathPrefix(`/`\"\n", ""),
        "invalid-rule",
    );
    assert!(
        run.stderr.contains("is not a Traefik v3 rule"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_secret_file_is_written_0600() {
    let environment = TestEnvironment::new();
    environment.write(
        "stack.toml",
        &format!("{BASE}\n[files.credentials]\npath = \"app/credentials\"\ncontent = \"password=${{APP_PASSWORD}}\"\n\n[files.settings]\npath = \"app/settings\"\ncontent = \"debug=false\"\n")
            .replace("name = \"shop\"\n", "name = \"shop\"\nenv_file = \".env\"\n"),
    );
    environment.write(".env", "APP_PASSWORD=hunter2-file\n");
    environment.write(".env.example", "APP_PASSWORD=\n");
    let run = environment.run(&["plan", "--offline", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let text = plan.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    let mode_of = |address: &str| {
        plan["actions"]
            .as_array()
            .and_then(|actions| actions.iter().find(|action| action["address"] == address))
            .map(|action| action.to_string())
            .unwrap_or_default()
    };
    assert!(
        mode_of("file.credentials").contains("\"0600\""),
        "{}",
        mode_of("file.credentials")
    );
    assert!(
        mode_of("file.settings").contains("\"0644\""),
        "{}",
        mode_of("file.settings")
    );
}

#[test]
fn env_file_errors_name_the_line_and_never_a_value() {
    let environment = TestEnvironment::new();
    environment.write(
        "stack.toml",
        &format!("{BASE}\n[services.flower]\nimage = \"flower:2\"\nenv = {{ FLOWER_PASSWORD = \"${{FLOWER_PASSWORD}}\", OTHER_SECRET = \"${{OTHER_SECRET}}\" }}\n")
            .replace("name = \"shop\"\n", "name = \"shop\"\nenv_file = \".env\"\n"),
    );
    environment.write(".env.example", "FLOWER_PASSWORD=\nOTHER_SECRET=\n");
    environment.write(".env", "# passwords\nFLOWER_PASSWORD=p@$w0rd-hunter2\nOTHER_SECRET=\"never-closed hunter2\nTAIL=hunter2-tail\n");
    let run = environment.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(".env:2:19"), "{}", run.stderr);
    assert!(run.stderr.contains(".env:3:14"), "{}", run.stderr);
    assert!(
        run.stderr.contains("write `$$` for a literal `$`"),
        "{}",
        run.stderr
    );
    for secret in ["hunter2", "w0rd", "never-closed"] {
        assert!(
            !run.stderr.contains(secret),
            "`{secret}` printed:\n{}",
            run.stderr
        );
    }
    // With `$$`, the whole password arrives.
    environment.write(".env", "FLOWER_PASSWORD=p@$$w0rd\nOTHER_SECRET='x'\n");
    let run = environment.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Issue 15, point 4: `secrets generate` fills every secret the stack uses and `.env`
/// lacks — a random value, a TLS key, a certificate for it — prints only names, writes
/// `.env` 0600 keeping its lines, and has git ignore it; `validate` warns about weak
/// secrets without printing them.
#[test]
fn secrets_generate_fills_missing_secrets_privately_and_validate_warns_about_weak_ones() {
    use std::os::unix::fs::PermissionsExt;
    let environment = TestEnvironment::new();
    environment.write(
        "stack.toml",
        &format!(
            "{BASE}\n[services.api]\nimage = \"api:1\"\nenv = {{ DATABASE_URL = \"postgres://app:${{POSTGRES_PASSWORD}}@postgres/app\", DJANGO_SECRET_KEY = \"${{DJANGO_SECRET_KEY}}\", ALLOWED_HOSTS = \"${{WEBSITE_DOMAIN}}\" }}\n\n[files.postgres-key]\npath = \"postgres/server.key\"\ncontent = \"${{POSTGRES_TLS_KEY}}\"\n\n[files.postgres-certificate]\npath = \"postgres/server.crt\"\ncontent = \"${{POSTGRES_TLS_CERT}}\"\n"
        )
        .replace("name = \"shop\"\n", "name = \"shop\"\nenv_file = \".env\"\n"),
    );
    environment.write(
        ".env.example",
        "WEBSITE_DOMAIN=example.com\nPOSTGRES_PASSWORD=change-me\nDJANGO_SECRET_KEY=change-me\nPOSTGRES_TLS_KEY=\nPOSTGRES_TLS_CERT=\n",
    );
    let existing =
        "# my settings\nWEBSITE_DOMAIN=shop.test # the public name\nDJANGO_SECRET_KEY=hunter2\n";
    environment.write(".env", existing);
    let git = |arguments: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(environment.path())
            .args(arguments)
            .output()
            .expect("run git")
    };
    assert!(git(&["init", "--quiet"]).status.success());

    // The short secret is called out, by name only (beside the missing ones).
    let validate = environment.run(&["validate"]);
    assert_eq!(validate.code, 1, "{}", validate.stderr);
    assert!(
        validate
            .stderr
            .contains("`${POSTGRES_PASSWORD}` has no value"),
        "{}",
        validate.stderr
    );
    assert!(
        validate
            .stderr
            .contains("the secret `${DJANGO_SECRET_KEY}` is 7 characters long"),
        "{}",
        validate.stderr
    );
    assert!(!validate.stderr.contains("hunter2"), "{}", validate.stderr);

    let run = environment.run(&["secrets", "generate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let written = environment.read(".env");
    assert!(
        written.starts_with(existing),
        "existing lines kept:\n{written}"
    );
    let values = stackctl::config::parse_env_file(&written, &Default::default())
        .expect("the env file still parses");
    let password = &values["POSTGRES_PASSWORD"];
    assert_eq!(password.len(), 32);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(
        values["DJANGO_SECRET_KEY"], "hunter2",
        "present values stay"
    );
    assert!(values["POSTGRES_TLS_KEY"].starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(values["POSTGRES_TLS_CERT"].starts_with("-----BEGIN CERTIFICATE-----\n"));
    let output = format!("{}{}", run.stdout, run.stderr);
    for name in ["POSTGRES_PASSWORD", "POSTGRES_TLS_KEY", "POSTGRES_TLS_CERT"] {
        assert!(
            run.stdout.contains(&format!("  {name}\n")),
            "{}",
            run.stdout
        );
    }
    assert!(!output.contains("WEBSITE_DOMAIN\n"), "{output}");
    for secret in [password.as_str(), "BEGIN"] {
        assert!(!output.contains(secret), "a value was printed:\n{output}");
    }
    let mode = std::fs::metadata(environment.path().join(".env"))
        .expect(".env")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        git(&["check-ignore", "--quiet", ".env"]).status.success(),
        ".gitignore: {}",
        environment.read(".gitignore")
    );
    // A second run has nothing to do and changes nothing.
    let again = environment.run(&["secrets", "generate"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("nothing generated"),
        "{}",
        again.stdout
    );
    assert_eq!(environment.read(".env"), written);
    assert_eq!(
        environment.read(".gitignore").matches("/.env").count(),
        1,
        "added once"
    );

    // The generated secrets are strong; the placeholder is called out.
    environment.write(
        ".env",
        &written.replace("DJANGO_SECRET_KEY=hunter2", "DJANGO_SECRET_KEY=change-me"),
    );
    let validate = environment.run(&["validate"]);
    assert_eq!(validate.code, 0, "{}", validate.stderr);
    assert!(
        validate.stderr.contains(
            "the secret `${DJANGO_SECRET_KEY}` is the placeholder `.env.example` shows everyone"
        ),
        "{}",
        validate.stderr
    );
    assert!(
        !validate.stderr.contains("POSTGRES_PASSWORD}` "),
        "{}",
        validate.stderr
    );
    let strict = environment.run(&["validate", "--strict"]);
    assert_eq!(strict.code, 1, "{}", strict.stderr);
}
