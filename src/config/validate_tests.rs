//! Validation, one row per rule: a stack.toml snippet in, the diagnostics out with
//! their code, message and `line:column`. (tests/cli.rs snapshots how the CLI renders
//! some of them; these pin what each rule finds and where it points.)

use super::{load_text, LoadOptions, SourceFile};

const BASE: &str = "[stack]\nname = \"shop\"\n\n[target]\nhost = \"local\"\n";
const EDGE: &str = "\n[edge]\nimage = \"traefik:v3.3\"\n";
const FLOWER: &str = "\n[services.flower]\nimage = \"flower:2\"\nport = 5555\ndashboard = true\n";

/// A problem found: (code, message, line, column).
type Problem<Message> = (&'static str, Message, usize, usize);

/// The hardening policy every service is held to (a non-root user, memory and CPU
/// limits): the snippets of the other rules leave them out for brevity, so these rows
/// ignore them, and `every_service_is_held_to_the_hardening_policy` pins them.
const HARDENING_POLICY: &[&str] = &["policy-unhardened-service"];

/// Every problem validation finds in `BASE` + `snippet`, but the hardening policy's.
fn problems(snippet: &str) -> Vec<Problem<String>> {
    problems_in(&format!("{BASE}{snippet}"))
}

fn problems_in(text: &str) -> Vec<Problem<String>> {
    every_problem_in(text)
        .into_iter()
        .filter(|(code, ..)| !HARDENING_POLICY.contains(code))
        .collect()
}

fn every_problem_in(text: &str) -> Vec<Problem<String>> {
    // An empty directory: no `.env.example` of this repository interferes.
    let directory = tempfile::tempdir().expect("a temporary directory");
    let source = SourceFile {
        name: "stack.toml".to_string(),
        text: text.to_string(),
    };
    let diagnostics = match load_text(source, directory.path(), &LoadOptions::default()) {
        Ok(loaded) => loaded.warnings,
        Err(errors) => errors.diagnostics,
    };
    diagnostics
        .into_iter()
        .map(|diagnostic| {
            let (line, column) = diagnostic
                .location
                .map_or((0, 0), |location| (location.line, location.column));
            (diagnostic.code, diagnostic.message, line, column)
        })
        .collect()
}

#[test]
fn each_rule_reports_its_problem_where_it_is() {
    let cases: Vec<(&str, String, Vec<Problem<&str>>)> = vec![
        (
            "only the edge publishes ports",
            "\n[services.api]\nimage = \"api:1\"\nports = [\"8000:8000\"]\n".into(),
            vec![(
                "policy-published-port",
                "service `api` publishes host ports; only the edge may",
                9,
                9,
            )],
        ),
        (
            "production certificates need an explicit allowance",
            format!("{EDGE}tls = {{ resolver = \"le\", email = \"ops@example.test\", ca = \"production\" }}\n"),
            vec![(
                "policy-production-certificates",
                "the edge asks Let's Encrypt production for certificates, which is not allowed for this stack",
                9,
                59,
            )],
        ),
        (
            "a dashboard route with no middlewares lacks both guards",
            format!("{EDGE}{FLOWER}\n[routes.flower]\nhost = \"flower.example.test\"\nservice = \"flower\"\n"),
            vec![(
                "policy-dashboard-exposed",
                "route `flower` exposes the dashboard `flower` without basic_auth and ip_allow_list",
                15,
                1,
            )],
        ),
        (
            "a dashboard route with basic auth alone lacks the allowlist",
            format!("{EDGE}{FLOWER}\n[routes.flower]\nhost = \"flower.example.test\"\nservice = \"flower\"\nmiddlewares = [\"auth\"]\n\n[middlewares.auth]\ntype = \"basic_auth\"\nusers = {{ admin = \"secret\" }}\n"),
            vec![(
                "policy-dashboard-exposed",
                "route `flower` exposes the dashboard `flower` without ip_allow_list",
                18,
                15,
            )],
        ),
        (
            "a reference to a service that does not exist",
            "\n[services.api]\nimage = \"api:1\"\ndepends_on = [\"dbb\"]\n\n[services.db]\nimage = \"postgres:16\"\n".into(),
            vec![(
                "dangling-reference",
                "`services.api.depends_on[0]` refers to service `dbb`, which is not defined",
                9,
                15,
            )],
        ),
        (
            "a dependency cycle",
            "\n[services.a]\nimage = \"a:1\"\ndepends_on = [\"b\"]\n\n[services.b]\nimage = \"b:1\"\ndepends_on = [\"a\"]\n".into(),
            vec![(
                "cycle",
                "service dependency cycle: `a` → `b` → `a`",
                9,
                14,
            )],
        ),
        (
            "a relative bind mount",
            "\n[services.api]\nimage = \"api:1\"\nvolumes = [\"./data:/data\"]\n".into(),
            vec![(
                "invalid-volume",
                "bind source `./data` is relative: it would point into this checkout, not at the host",
                9,
                12,
            )],
        ),
        (
            "a volume of another shape",
            "\n[services.api]\nimage = \"api:1\"\nvolumes = [\"data\"]\n".into(),
            vec![(
                "invalid-volume",
                "volume `data` is not `source:/path[:ro]`",
                9,
                12,
            )],
        ),
        (
            "a memory limit that is not a size",
            "\n[services.api]\nimage = \"api:1\"\nmemory = \"lots\"\n".into(),
            vec![(
                "invalid-value",
                "memory limit `lots` is not understood",
                9,
                10,
            )],
        ),
        (
            "a health interval that is not a duration",
            "\n[services.api]\nimage = \"api:1\"\nhealth = { command = [\"CMD\", \"true\"], interval = \"often\" }\n".into(),
            vec![(
                "invalid-value",
                "`often` is not a duration",
                9,
                50,
            )],
        ),
        (
            "a stop grace period and a drain that are not durations",
            "\n[services.api]\nimage = \"api:1\"\nstop_grace_period = \"a while\"\ndrain = \"-2s\"\n".into(),
            vec![
                (
                    "invalid-value",
                    "`a while` is not a duration",
                    9,
                    21,
                ),
                ("invalid-value", "`-2s` is not a duration", 10, 9),
            ],
        ),
        (
            "a file mode that is not octal",
            "\n[files.app]\npath = \"app.conf\"\ncontent = \"x\"\nmode = \"0999\"\n".into(),
            vec![(
                "invalid-value",
                "`0999` is not an octal file mode",
                10,
                8,
            )],
        ),
        (
            "a rate limit period that is not a duration",
            "\n[middlewares.slow]\ntype = \"rate_limit\"\naverage = 10\nperiod = \"soon\"\n".into(),
            vec![(
                "invalid-value",
                "`soon` is not a duration",
                10,
                10,
            )],
        ),
        (
            "two DNS records that would share an address",
            "\n[dns]\ndomain = \"example.test\"\nrecords = [{ type = \"A\", name = \"www.eu\", data = \"203.0.113.7\" }, { type = \"A\", name = \"www-eu\", data = \"203.0.113.8\" }]\n".into(),
            vec![(
                "duplicate-record",
                "records `www.eu` and `www-eu` would share the address `dns_record.www-eu`",
                9,
                67,
            )],
        ),
        (
            "routes without an edge",
            "\n[services.web]\nimage = \"web:1\"\nport = 80\n\n[routes.web]\nhost = \"example.test\"\nservice = \"web\"\n".into(),
            vec![(
                "missing-edge",
                "routes need an `[edge]`: nothing else may publish ports",
                11,
                2,
            )],
        ),
        (
            "a service may not take the edge's name",
            "\n[services.edge]\nimage = \"nginx:1\"\n".into(),
            vec![(
                "reserved-name",
                "`services.edge` is reserved for the Traefik edge; configure it in `[edge]`",
                7,
                1,
            )],
        ),
    ];
    // Every row is checked before failing, so one run shows every rule that moved.
    let mut wrong = Vec::new();
    for (case, snippet, expected) in cases {
        let expected: Vec<Problem<String>> = expected
            .into_iter()
            .map(|(code, message, line, column)| (code, message.to_string(), line, column))
            .collect();
        let found = problems(&snippet);
        if found != expected {
            wrong.push(format!(
                "{case}:\n  found    {found:?}\n  expected {expected:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn guarded_and_allowed_stacks_pass() {
    let allowed = BASE.replace(
        "name = \"shop\"\n",
        "name = \"shop\"\nallow_production_certificates = true\n",
    );
    let cases: Vec<(&str, String)> = vec![
        (
            "production certificates, explicitly allowed",
            format!("{allowed}{EDGE}tls = {{ resolver = \"le\", email = \"ops@example.test\", ca = \"production\" }}\n"),
        ),
        (
            "a dashboard route guarded by both, through a chain",
            format!("{BASE}{EDGE}{FLOWER}\n[routes.flower]\nhost = \"flower.example.test\"\nservice = \"flower\"\nmiddlewares = [\"guard\"]\n\n[middlewares.guard]\ntype = \"chain\"\nmiddlewares = [\"allow\", \"auth\"]\n\n[middlewares.allow]\ntype = \"ip_allow_list\"\nsource_range = [\"10.0.0.0/8\"]\n\n[middlewares.auth]\ntype = \"basic_auth\"\nusers = {{ admin = \"secret\" }}\n"),
        ),
    ];
    for (case, text) in cases {
        let found = problems_in(&text);
        assert!(found.is_empty(), "{case}: {found:#?}");
    }
}

/// The codes of the problems found in `BASE` + `snippet`, with their line.
fn codes(snippet: &str) -> Vec<(&'static str, usize)> {
    problems(snippet)
        .into_iter()
        .map(|(code, _, line, _)| (code, line))
        .collect()
}

#[test]
fn route_and_middleware_names_cannot_leave_their_directory() {
    let route = |name: &str| {
        format!("{EDGE}\n[services.web]\nimage = \"web:1\"\nport = 80\n\n[routes.\"{name}\"]\nhost = \"example.test\"\nservice = \"web\"\n")
    };
    for name in [
        "../../etc/cron.d/x",
        "a/b",
        "..",
        "x@file",
        "with space",
        ".hidden",
    ] {
        assert_eq!(
            codes(&route(name)),
            vec![("invalid-name", 14)],
            "route `{name}`"
        );
        let middleware =
            format!("\n[middlewares.\"{name}\"]\ntype = \"strip_prefix\"\nprefixes = [\"/x\"]\n");
        assert_eq!(
            codes(&middleware),
            vec![("invalid-name", 7)],
            "middleware `{name}`"
        );
        let file = format!("\n[files.\"{name}\"]\npath = \"app.conf\"\ncontent = \"x\"\n");
        assert_eq!(codes(&file), vec![("invalid-name", 7)], "file `{name}`");
    }
    assert!(codes(&route("web.v2_blue-1")).is_empty());
    let long = "r".repeat(250);
    assert_eq!(codes(&route(&long)), vec![("name-too-long", 14)]);
}

#[test]
fn a_file_path_outside_the_root_is_refused() {
    let file = |path: &str, extra: &str| {
        format!("\n[files.conf]\npath = \"{path}\"\ncontent = \"x\"\n{extra}")
    };
    for path in [
        "../../../etc/cron.d/evil",
        "conf/../../x",
        "/etc/cron.d/evil",
        "/var/lib/stackctl/shop/../other/x",
    ] {
        assert_eq!(
            codes(&file(path, "")),
            vec![("path-outside-root", 8)],
            "{path}"
        );
    }
    // Under the root, absolute or relative, and outside it when explicitly allowed.
    for (path, extra) in [
        ("nginx/app.conf", ""),
        ("/var/lib/stackctl/shop/files/app.conf", ""),
        ("/etc/app/app.conf", "allow_outside_root = true\n"),
    ] {
        assert!(codes(&file(path, extra)).is_empty(), "{path}");
    }
    // `..` stays refused even when outside paths are allowed: it names no place clearly.
    assert_eq!(
        codes(&file("/etc/../root/x", "allow_outside_root = true\n")),
        vec![("path-outside-root", 8)]
    );
}

#[test]
fn hosts_path_prefixes_and_rules_are_checked_as_traefik_rules() {
    let route = |fields: &str| {
        format!("{EDGE}\n[services.web]\nimage = \"web:1\"\nport = 80\n\n[routes.web]\nservice = \"web\"\n{fields}")
    };
    for (fields, line) in [
        ("host = \"example.com`) || PathPrefix(`/\"\n", 16),
        (
            "host = \"example.com\"\npath_prefix = \"/api`) || Host(`x\"\n",
            17,
        ),
        ("host = \"example.com\"\npath_prefix = \"api\"\n", 17),
        ("rule = \"Host(`example.com`) ||\"\n", 16),
        ("rule = \"Host(`example.com`) || Hots(`x`)\"\n", 16),
        ("rule = \"Host(`a.example`) PathPrefix(`/`)\"\n", 16),
    ] {
        assert_eq!(
            codes(&route(fields)),
            vec![("invalid-rule", line)],
            "{fields}"
        );
    }
    let found = problems(&route("rule = \"Host(`example.com`\"\n"));
    assert!(
        found[0].1.contains("at character 19 of the rule"),
        "{found:?}"
    );
    assert!(codes(&route(
        "rule = \"Host(`a.example`) && (PathPrefix(`/api`) || Method(`POST`))\"\n"
    ))
    .is_empty());
}

#[test]
fn a_secret_looking_value_under_an_unusual_name_is_warned_about() {
    let service = |env: &str| format!("\n[services.api]\nimage = \"api:1\"\nenv = {{ {env} }}\n");
    let directory = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(
        directory.path().join(".env"),
        "SECRET_KEY_BASE=a\nPASSWORD=b\nAPI_TOKENS=c\ndb_password=d\nSESSION=kX9#mQ2$$vL7%pR4!zz\nDOMAIN=example.com\n",
    )
    .expect("the env file");
    let load = |text: String| {
        let options = LoadOptions {
            env_file: Some(directory.path().join(".env")),
            ..LoadOptions::default()
        };
        let source = SourceFile {
            name: "stack.toml".into(),
            text: format!("{BASE}{text}"),
        };
        match load_text(source, directory.path(), &options) {
            Ok(loaded) => loaded.warnings,
            Err(errors) => errors.diagnostics,
        }
    };
    for name in [
        "SECRET_KEY_BASE",
        "PASSWORD",
        "API_TOKENS",
        "db_password",
        "SESSION",
    ] {
        let found = load(service(&format!("X = \"${{{name}}}\"")));
        let warning = found
            .iter()
            .find(|found| found.code == "secret-not-declared")
            .unwrap_or_else(|| panic!("{name}: {found:#?}"));
        assert!(!warning.is_error());
        assert_eq!(warning.location.as_ref().map(|at| at.line), Some(9));
        assert!(
            warning
                .hint
                .as_deref()
                .unwrap_or_default()
                .contains(&format!("secrets = [\"{name}\"]")),
            "{warning:?}"
        );
    }
    // Declared, it is a secret and the warning goes.
    let text = format!("{BASE}{}", service("X = \"${SECRET_KEY_BASE}\"")).replace(
        "name = \"shop\"\n",
        "name = \"shop\"\nsecrets = [\"SECRET_KEY_BASE\"]\n",
    );
    let options = LoadOptions {
        env_file: Some(directory.path().join(".env")),
        ..LoadOptions::default()
    };
    let loaded = load_text(
        SourceFile {
            name: "stack.toml".into(),
            text,
        },
        directory.path(),
        &options,
    );
    let warnings = loaded.map(|loaded| loaded.warnings).unwrap_or_default();
    assert!(
        !warnings
            .iter()
            .any(|found| found.code == "secret-not-declared"),
        "{warnings:#?}"
    );
    // A plain value under a plain name is left alone.
    assert!(!load(service("X = \"${DOMAIN}\""))
        .iter()
        .any(|found| found.code == "secret-not-declared"));
    // A literal under a secret-looking key in stack.toml.
    let literal = load(service("RAILS_SECRET_KEY_BASE = \"deadbeef\""));
    let warning = literal
        .iter()
        .find(|found| found.code == "secret-literal")
        .unwrap_or_else(|| panic!("{literal:#?}"));
    assert!(warning
        .hint
        .as_deref()
        .unwrap_or_default()
        .contains("secrets = [\"RAILS_SECRET_KEY_BASE\"]"));
    assert!(!warning.message.contains("deadbeef"));
}

#[test]
fn a_fifo_as_env_file_is_refused_not_read() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let fifo = directory.path().join(".env");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo failed");
    let (sender, receiver) = std::sync::mpsc::channel();
    let base = directory.path().to_path_buf();
    std::thread::spawn(move || {
        let options = LoadOptions {
            env_file: Some(base.join(".env")),
            ..LoadOptions::default()
        };
        let source = SourceFile {
            name: "stack.toml".into(),
            text: BASE.into(),
        };
        let _ = sender.send(load_text(source, &base, &options).err());
    });
    // Reading a FIFO with no writer would block forever; refusing it takes no time.
    let errors = receiver
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("loading returned instead of hanging on the FIFO")
        .expect("a FIFO as env file is an error");
    let message = &errors.diagnostics[0].message;
    assert!(message.contains("not a regular file"), "{message}");
}

#[test]
fn gates_that_plan_applied_are_in_validate() {
    let allow = |range: &str| {
        format!("\n[middlewares.office]\ntype = \"ip_allow_list\"\nsource_range = [\"{range}\"]\n")
    };
    assert_eq!(codes(&allow("10.0.0.0/33")), vec![("invalid-cidr", 9)]);
    assert_eq!(codes(&allow("office")), vec![("invalid-cidr", 9)]);
    assert!(codes(&allow("2001:db8::/32")).is_empty());
    let header = "\n[services.api]\nimage = \"api:1\"\nenv = { A = \"${HEADER_TOKEN}\" }\n\n[middlewares.h]\ntype = \"headers\"\ncustom_response_headers = { X-Token = \"${HEADER_TOKEN}\" }\n";
    assert!(
        codes(header).contains(&("policy-secret-in-response-header", 13)),
        "{:?}",
        codes(header)
    );
    let long = format!(
        "[stack]\nname = \"{}\"\n\n[target]\nhost = \"local\"\n",
        "s".repeat(300)
    );
    assert_eq!(
        problems_in(&long)
            .into_iter()
            .map(|(code, _, line, _)| (code, line))
            .collect::<Vec<_>>(),
        vec![("name-too-long", 2)]
    );
    let service = format!("\n[services.{}]\nimage = \"x:1\"\n", "s".repeat(60));
    assert_eq!(codes(&service), vec![("name-too-long", 7)]);
}

#[test]
fn build_arguments_refuse_secrets_and_need_a_build() {
    let service = |body: &str| format!("\n[services.api]\n{body}\n");
    // Plain build arguments of a build are fine.
    assert!(codes(&service(
        "build = \"./api\"\nbuild_args = { BASE = \"debian:bookworm-slim\", PYTHON_VERSION = \"3.11\" }"
    ))
    .is_empty());
    // A secret variable would stay in the image's history: refused, where it is used.
    let secret = service("build = \"./api\"\nbuild_args = { TOKEN = \"${NPM_TOKEN}\" }");
    let found = problems(&secret);
    let (_, message, line, _) = found
        .iter()
        .find(|(code, ..)| *code == "policy-secret-in-build-args")
        .unwrap_or_else(|| panic!("refused: {found:#?}"));
    assert_eq!(*line, 9, "{found:#?}");
    assert!(message.contains("image's history"), "{message}");
    // So would a literal under a secret's name, unless the stack says it is not secret.
    assert_eq!(
        codes(&service(
            "build = \"./api\"\nbuild_args = { NPM_TOKEN = \"abc\" }"
        )),
        vec![("policy-secret-in-build-args", 9)]
    );
    assert!(problems_in(&format!(
        "[stack]\nname = \"shop\"\nnot_secrets = [\"SIGNING_KEY\"]\n\n[target]\nhost = \"local\"\n{}",
        service("build = \"./api\"\nbuild_args = { SIGNING_KEY = \"public\" }")
    ))
    .is_empty());
    // Nothing to build, and names a Dockerfile's ARG cannot have.
    assert_eq!(
        codes(&service("image = \"api:1\"\nbuild_args = { BASE = \"x\" }")),
        vec![("build-args-without-build", 9)]
    );
    assert_eq!(
        codes(&service(
            "build = \"./api\"\nbuild_args = { \"1BASE\" = \"x\" }"
        )),
        vec![("invalid-name", 9)]
    );
}

#[test]
fn a_malformed_regexp_matcher_fails_validate_as_go_would_compile_it() {
    let route = |rule: &str| {
        format!("{EDGE}\n[services.web]\nimage = \"web:1\"\nport = 80\n\n[routes.web]\nservice = \"web\"\nrule = '{rule}'\n")
    };
    // Refused by Go's regexp package: an unclosed group, a backreference, lookahead,
    // `\Z` (Go has only `\z`), a count above 1000.
    for (rule, character) in [
        ("HostRegexp(`^(api|web\\.example\\.com$`)", 14),
        ("Host(`example.com`) && PathRegexp(`^/(a)\\1`)", 41),
        ("PathRegexp(`^/x(?=y)`)", 16),
        ("HeaderRegexp(`X-Id`, `^\\d+\\Z`)", 27),
        ("QueryRegexp(`id`, `^[0-9]{1001}$`)", 26),
    ] {
        let found = problems(&route(rule));
        assert_eq!(found.len(), 1, "{rule}: {found:?}");
        let (code, message, line, column) = &found[0];
        assert_eq!(
            (*code, *line, *column),
            ("invalid-rule", 16, 8),
            "{rule}: {found:?}"
        );
        assert!(message.contains("Go (RE2) regexp"), "{message}");
        assert!(
            message.contains(&format!("at character {character} of the rule")),
            "{rule}: {message}"
        );
    }
    assert!(codes(&route(
        "HostRegexp(`^[a-z]+\\.example\\.com$`) && PathRegexp(`^/api/v[0-9]{1,3}/`)"
    ))
    .is_empty());
}

#[test]
fn every_service_is_held_to_the_hardening_policy() {
    let codes_of = |service: &str| -> Vec<(&'static str, usize, usize)> {
        every_problem_in(&format!(
            "{BASE}\n[services.db]\nimage = \"postgres:16\"\n{service}"
        ))
        .into_iter()
        .map(|(code, _, line, column)| (code, line, column))
        .collect()
    };
    // Nothing set: one finding at the service's table, naming each missing piece.
    assert_eq!(codes_of(""), vec![("policy-unhardened-service", 7, 1)]);
    let found = every_problem_in(&format!(
        "{BASE}\n[services.db]\nimage = \"postgres:16\"\nuser = \"postgres\"\n"
    ));
    assert_eq!(
        found[0].1,
        "service `db` runs without a memory limit and a CPU limit: a leak, a busy loop or an exploit reaches the whole host"
    );
    let limited = "user = \"postgres\"\nmemory = \"256m\"\ncpus = 0.5\n";
    assert!(codes_of(limited).is_empty());
    // Root by name or number, at the `user` setting.
    assert_eq!(
        codes_of("user = \"0:0\"\nmemory = \"256m\"\ncpus = 0.5\n"),
        vec![("policy-root-user", 9, 8)]
    );
    // Exceptions need a reason; privileged is called out unless one is given.
    let unexplained =
        format!("{limited}\n[services.db.security]\ncap_add = [\"chown\"]\nprivileged = true\n");
    assert_eq!(
        codes_of(&unexplained),
        vec![
            ("policy-security-reason", 13, 1),
            ("policy-privileged", 15, 14)
        ]
    );
    let explained = format!("{unexplained}reason = \"the vendor's entrypoint needs it\"\n");
    assert!(codes_of(&explained).is_empty());
    // Settings that cannot mean anything are errors.
    assert_eq!(
        codes_of(&format!(
            "{limited}pids_limit = 0\ntmpfs = [\"tmp\"]\n\n[services.db.security]\ncap_add = [\"SETUIDX\"]\nreason = \"x\"\n"
        )),
        vec![
            ("invalid-value", 12, 14),
            ("invalid-value", 13, 10),
            ("invalid-value", 16, 12),
        ]
    );
}

#[test]
fn a_network_setting_names_a_network_some_service_joins() {
    let stack = "\n[services.db]\nimage = \"postgres:16\"\n\n[networks.backend]\ninternal = true\n\n[networks.bakend]\ninternal = true\n";
    let found = problems(stack);
    assert_eq!(found.len(), 1, "{found:?}");
    let (code, message, line, _) = &found[0];
    assert_eq!(*code, "unused-network");
    assert_eq!(
        message,
        "`[networks.bakend]` sets a network no service joins"
    );
    assert_eq!(*line, 13);
}

#[test]
fn a_tmpfs_path_names_one_directory_plainly() {
    let stack = "\n[services.db]\nimage = \"postgres:16\"\ntmpfs = [\"/tmp\", \"/\", \"/tmp/../etc\", \"run\", \"/run//app\"]\n";
    let found = problems(stack);
    let rows: Vec<(&str, &str, usize, usize)> = found
        .iter()
        .map(|(code, message, line, column)| (*code, message.as_str(), *line, *column))
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "invalid-value",
                "tmpfs mount `/` of `db` is refused: a tmpfs over `/` would hide the whole image",
                9,
                18
            ),
            (
                "invalid-value",
                "tmpfs mount `/tmp/../etc` of `db` is refused: the path has a `..` segment; write the directory it means",
                9,
                23
            ),
            (
                "invalid-value",
                "tmpfs mount `run` of `db` is refused: the path is not absolute",
                9,
                38
            ),
            (
                "invalid-value",
                "tmpfs mount `/run//app` of `db` is refused: the path has an empty segment (`//`)",
                9,
                45
            ),
        ]
    );
}

/// Three droplets for the swarm rows below.
const SWARM_DROPLETS: &str = "\n[droplets.web-1]\nregion = \"fra1\"\nsize = \"s-1vcpu-1gb\"\nimage = \"docker-20-04\"\n\n[droplets.web-2]\nregion = \"fra1\"\nsize = \"s-1vcpu-1gb\"\nimage = \"docker-20-04\"\n\n[droplets.web-3]\nregion = \"fra1\"\nsize = \"s-1vcpu-1gb\"\nimage = \"docker-20-04\"\n";

#[test]
fn a_swarm_target_is_checked_where_it_is_written() {
    let swarm = |target: &str| {
        problems_in(&format!(
            "[stack]\nname = \"shop\"\n\n[target]\n{target}\n{SWARM_DROPLETS}"
        ))
    };
    let cases: Vec<(&str, String, Vec<Problem<&str>>)> = vec![
        (
            "a valid swarm",
            "swarm = { managers = [\"web-1\"], workers = [\"web-2\", \"web-3\"], labels = { web-2 = { zone = \"a\" } } }".into(),
            vec![],
        ),
        (
            "swarm and droplet exclude each other",
            "droplet = \"web-1\"\nswarm = { managers = [\"web-1\"] }".into(),
            vec![(
                "conflicting-target",
                "`[target]` names a swarm and also a droplet or a host",
                6,
                9,
            )],
        ),
        (
            "a node must be a droplet",
            "swarm = { managers = [\"web-1\"], workers = [\"web-9\"] }".into(),
            vec![(
                "dangling-reference",
                "`target.swarm.workers[0]` refers to droplet `web-9`, which is not defined",
                5,
                44,
            )],
        ),
        (
            "a node is listed once",
            "swarm = { managers = [\"web-1\"], workers = [\"web-2\", \"web-1\"] }".into(),
            vec![(
                "duplicate-node",
                "node `web-1` is listed twice in the swarm (first as `target.swarm.managers[0]`)",
                5,
                53,
            )],
        ),
        (
            "a swarm has a manager",
            "swarm = { managers = [], workers = [\"web-2\"] }".into(),
            vec![(
                "missing-manager",
                "the swarm has no manager: a swarm is formed on its first manager",
                5,
                22,
            )],
        ),
        (
            "labels only for nodes of the swarm",
            "swarm = { managers = [\"web-1\"], labels = { web-3 = { zone = \"b\" } } }".into(),
            vec![(
                "dangling-reference",
                "`target.swarm.labels` names node `web-3`, which is not in the swarm",
                5,
                52,
            )],
        ),
        (
            "stackctl's node label is its own",
            "swarm = { managers = [\"web-1\"], labels = { web-1 = { \"stackctl.node\" = \"web-2\" } } }".into(),
            vec![(
                "reserved-label",
                "the node label `stackctl.node` is stackctl's own: every node carries its name from stack.toml there",
                5,
                72,
            )],
        ),
        (
            "an even number of managers is a warning",
            "swarm = { managers = [\"web-1\", \"web-2\"] }".into(),
            vec![(
                "even-manager-count",
                "the swarm has 2 managers: it keeps working only while a majority of them is up, so 2 survive no more failures than 1",
                5,
                22,
            )],
        ),
    ];
    for (name, target, expected) in cases {
        let found = swarm(&target);
        let found: Vec<Problem<&str>> = found
            .iter()
            .map(|(code, message, line, column)| (*code, message.as_str(), *line, *column))
            .collect();
        assert_eq!(found, expected, "{name}");
    }
}

/// Swarm-only keys of a service: errors on one host, checked as Swarm takes them on a swarm.
#[test]
fn swarm_service_keys_are_refused_on_one_host_and_checked_on_a_swarm() {
    let on_one_host =
        problems("\n[services.api]\nimage = \"api:1\"\nreplicas = 3\nendpoint_mode = \"dnsrr\"\n");
    let codes: Vec<(&str, usize, usize)> = on_one_host
        .iter()
        .map(|(code, _, line, column)| (*code, *line, *column))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("swarm-only-setting", 9, 12),
            ("swarm-only-setting", 10, 17)
        ],
        "{on_one_host:?}"
    );
    assert!(on_one_host[0].1.contains("`replicas` of service `api`"));

    let swarm = "[stack]\nname = \"shop\"\n\n[target]\nswarm = { managers = [\"web-1\"] }\n\n[droplets.web-1]\nregion = \"fra1\"\nsize = \"s-1vcpu-1gb\"\nimage = \"docker-20-04\"\n";
    let found = problems_in(&format!(
        "{swarm}\n[services.db]\nimage = \"postgres:16\"\nvolumes = [\"pgdata:/data\"]\nreplicas = 2\nplacement = {{ constraints = [\"node.role == manager\", \"nodes.hostname == x\", \"zone\"], preferences = [{{ spread = \"zone\" }}] }}\nupdate = {{ order = \"start-first\", monitor = \"soon\" }}\n"
    ));
    let codes: Vec<(&str, usize, usize)> = found
        .iter()
        .filter(|(code, ..)| *code != "missing-field")
        .map(|(code, _, line, column)| (*code, *line, *column))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("swarm-hardening-limits", 5, 9),
            ("stateful-replicas", 15, 12),
            ("stateful-unpinned", 16, 29),
            ("invalid-value", 16, 54),
            ("invalid-value", 16, 77),
            ("invalid-value", 16, 112),
            ("invalid-value", 17, 20),
            ("invalid-value", 17, 45),
        ],
        "{found:#?}"
    );
}

/// A volume, a host file or a built image exists on the first manager only: pinning the
/// service to another node is refused where the constraint is written.
#[test]
fn on_a_swarm_what_lives_on_the_first_manager_cannot_be_pinned_elsewhere() {
    let swarm = "[stack]\nname = \"shop\"\n\n[target]\nswarm = { managers = [\"web-1\"], workers = [\"web-2\"] }\n\n[droplets.web-1]\nregion = \"fra1\"\nsize = \"s-1vcpu-1gb\"\nimage = \"docker-20-04\"\n\n[droplets.web-2]\nregion = \"fra1\"\nsize = \"s-1vcpu-1gb\"\nimage = \"docker-20-04\"\n";
    let found = problems_in(&format!(
        "{swarm}\n[services.db]\nimage = \"postgres:16\"\nvolumes = [\"pgdata:/data\"]\nplacement = {{ constraints = [\"node.hostname == web-2\"] }}\n\n[services.cache]\nimage = \"redis:7\"\nvolumes = [\"pgdata:/data\"]\nplacement = {{ constraints = [\"node.hostname == web-1\"] }}\n"
    ));
    let pinned: Vec<(&str, usize, usize)> = found
        .iter()
        .filter(|(code, ..)| *code == "first-manager-only")
        .map(|(code, _, line, column)| (*code, *line, *column))
        .collect();
    assert_eq!(pinned, vec![("first-manager-only", 20, 30)], "{found:#?}");
    let message = &found
        .iter()
        .find(|(code, ..)| *code == "first-manager-only")
        .unwrap()
        .1;
    assert!(
        message.contains("`db` holds a named volume") && message.contains("pinned to `web-2`"),
        "{message}"
    );
}

/// A `[files]` entry reaches every node as a Swarm config (or secret, when it holds one):
/// a service mounting one may run anywhere. A host directory is on the first manager only.
#[test]
fn on_a_swarm_a_files_entry_may_go_anywhere_and_a_host_directory_stays_on_the_first_manager() {
    let swarm = "[stack]\nname = \"shop\"\n\n[target]\nswarm = { managers = [\"web-1\"], workers = [\"web-2\"] }\n\n[droplets.web-1]\nregion = \"fra1\"\nsize = \"s-1vcpu-1gb\"\nimage = \"docker-20-04\"\n\n[droplets.web-2]\nregion = \"fra1\"\nsize = \"s-1vcpu-1gb\"\nimage = \"docker-20-04\"\n";
    let found = problems_in(&format!(
        "{swarm}\n[files.app]\npath = \"app.conf\"\ncontent = \"greeting = hello\"\n\n[files.key]\npath = \"key.pem\"\ncontent = \"${{APP_PASSWORD}}\"\n\n[services.web]\nimage = \"web:1\"\nvolumes = [\"/var/lib/stackctl/shop/files/app.conf:/etc/app.conf:ro\"]\nplacement = {{ constraints = [\"node.hostname == web-2\"] }}\n\n[services.api]\nimage = \"api:1\"\nvolumes = [\"/var/lib/stackctl/shop/files/key.pem:/etc/key.pem:ro\"]\nplacement = {{ constraints = [\"node.hostname == web-2\"] }}\n\n[services.cache]\nimage = \"cache:1\"\nvolumes = [\"/srv/cache:/cache\"]\nplacement = {{ constraints = [\"node.hostname == web-2\"] }}\n"
    ));
    let pinned: Vec<(&str, usize, usize)> = found
        .iter()
        .filter(|(code, ..)| *code == "first-manager-only")
        .map(|(code, _, line, column)| (*code, *line, *column))
        .collect();
    assert_eq!(pinned, vec![("first-manager-only", 38, 30)], "{found:#?}");
    let message = &found
        .iter()
        .find(|(code, ..)| *code == "first-manager-only")
        .unwrap()
        .1;
    assert!(
        message.contains("service `cache`") && message.contains("not a `[files]` entry"),
        "{message}"
    );
}

#[test]
fn both_health_checks_only_on_a_swarm_and_at_least_one() {
    let both = "\n[services.api]\nimage = \"api:1\"\nport = 8000\nhealth = { http = \"/health\", command = [\"CMD\", \"true\"] }\n";
    let on_one_host = problems(both);
    assert!(
        on_one_host
            .iter()
            .any(|(code, message, ..)| *code == "invalid-health"
                && message.contains("both only on a swarm")),
        "{on_one_host:?}"
    );
    let neither = problems("\n[services.api]\nimage = \"api:1\"\nhealth = { interval = \"5s\" }\n");
    assert!(
        neither
            .iter()
            .any(|(code, message, ..)| *code == "invalid-health"
                && message.contains("needs `http` or `command`")),
        "{neither:?}"
    );
    let swarm = "[stack]\nname = \"shop\"\n\n[target]\nswarm = { managers = [\"web-1\"] }\n\n[droplets.web-1]\nregion = \"fra1\"\nsize = \"s-1vcpu-1gb\"\nimage = \"docker-20-04\"\n";
    let on_a_swarm = problems_in(&format!("{swarm}{both}"));
    assert!(
        !on_a_swarm
            .iter()
            .any(|(code, ..)| *code == "invalid-health"),
        "{on_a_swarm:?}"
    );
}

/// (line, column) of the first `needle` in `text`: where a diagnostic should point.
fn position_of(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).expect("the needle is in the text");
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |newline| newline + 1) + 1;
    (line, column)
}

/// A `[files]` entry a swarm service mounts is a Swarm config (or secret), whose data
/// Swarm refuses empty or at its limit (1000 KiB for a config, 500 KiB for a secret):
/// refused at the entry's content, not halfway through an apply. An entry no service
/// mounts is written on the first manager alone, as on one host, and not held to them.
#[test]
fn on_a_swarm_a_mounted_file_must_fit_what_swarm_takes() {
    let swarm = "[stack]\nname = \"shop\"\n\n[target]\nswarm = { managers = [\"web-1\"] }\n\n[droplets.web-1]\nregion = \"fra1\"\nsize = \"s-1vcpu-1gb\"\nimage = \"docker-20-04\"\n";
    let big = "x".repeat(1000 * 1024);
    let big_secret = "y".repeat(500 * 1024);
    let text = format!(
        "{swarm}\n[files.empty]\npath = \"empty.conf\"\ncontent = \"\"\n\n[files.big]\npath = \"big.conf\"\ncontent = \"{big}\"\n\n[files.key]\npath = \"key.pem\"\ncontent = \"${{APP_PASSWORD:-{big_secret}}}\"\n\n[files.fine]\npath = \"fine.conf\"\ncontent = \"{}\"\n\n[files.unmounted]\npath = \"unmounted.conf\"\ncontent = \"\"\n\n[services.web]\nimage = \"web:1\"\nvolumes = [\"/var/lib/stackctl/shop/files/empty.conf:/etc/empty.conf:ro\", \"/var/lib/stackctl/shop/files/big.conf:/etc/big.conf:ro\", \"/var/lib/stackctl/shop/files/key.pem:/etc/key.pem:ro\", \"/var/lib/stackctl/shop/files/fine.conf:/etc/fine.conf:ro\"]\n",
        "z".repeat(1000 * 1024 - 1)
    );
    let found = problems_in(&text);
    let sizes: Vec<(&str, usize, usize)> = found
        .iter()
        .filter(|(code, ..)| *code == "swarm-file-size")
        .map(|(code, _, line, column)| (*code, *line, *column))
        .collect();
    let at = |needle: &str| {
        let (line, column) = position_of(&text, needle);
        ("swarm-file-size", line, column + "content = ".len())
    };
    assert_eq!(
        sizes,
        vec![
            at("content = \"\"\n\n[files.big]"),
            at("content = \"xxx"),
            at("content = \"${APP_PASSWORD"),
        ],
        "{found:#?}"
    );
    let messages: Vec<&String> = found
        .iter()
        .filter(|(code, ..)| *code == "swarm-file-size")
        .map(|(_, message, ..)| message)
        .collect();
    assert!(
        messages[0].contains("file `empty` is mounted by swarm service `web` as a Swarm config")
            && messages[0].contains("it is empty, and Swarm refuses a config without data"),
        "{}",
        messages[0]
    );
    assert!(
        messages[1].contains("file `big`")
            && messages[1].contains(
                "1024000 bytes, and Swarm takes a config of less than 1024000 bytes (1000 KiB)"
            ),
        "{}",
        messages[1]
    );
    assert!(
        messages[2].contains("as a Swarm secret")
            && messages[2].contains("less than 512000 bytes (500 KiB)"),
        "{}",
        messages[2]
    );
    // On one host the same entries are plain files: nothing to refuse.
    let on_one_host = problems(
        "\n[files.empty]\npath = \"empty.conf\"\ncontent = \"\"\n\n[services.web]\nimage = \"web:1\"\nvolumes = [\"/var/lib/stackctl/shop/files/empty.conf:/etc/empty.conf:ro\"]\n",
    );
    assert!(
        on_one_host
            .iter()
            .all(|(code, ..)| *code != "swarm-file-size"),
        "{on_one_host:?}"
    );
}

/// A swarm service's secret env value `VAR` is mounted at `/run/secrets/VAR`: a secret
/// `[files]` entry mounted there too would take its place (and read back as the env's).
#[test]
fn on_a_swarm_a_secret_file_cannot_take_the_path_of_a_secret_env_value() {
    let swarm = "[stack]\nname = \"shop\"\n\n[target]\nswarm = { managers = [\"web-1\"] }\n\n[droplets.web-1]\nregion = \"fra1\"\nsize = \"s-1vcpu-1gb\"\nimage = \"docker-20-04\"\n";
    let text = format!(
        "{swarm}\n[files.token]\npath = \"token.txt\"\ncontent = \"${{APP_TOKEN:-t0k3n-value-9f8e7d}}\"\n\n[services.api]\nimage = \"api:1\"\nenv = {{ APP_TOKEN = \"${{APP_TOKEN:-t0k3n-value-9f8e7d}}\", CERT_FILE = \"/run/secrets/CERT\" }}\nvolumes = [\"/var/lib/stackctl/shop/files/token.txt:/run/secrets/APP_TOKEN:ro\", \"/var/lib/stackctl/shop/files/token.txt:/run/secrets/CERT:ro\"]\n"
    );
    let found = problems_in(&text);
    let taken: Vec<(&str, usize, usize)> = found
        .iter()
        .filter(|(code, ..)| *code == "swarm-secret-path-taken")
        .map(|(code, _, line, column)| (*code, *line, *column))
        .collect();
    let (line, column) = position_of(
        &text,
        "\"/var/lib/stackctl/shop/files/token.txt:/run/secrets/APP_TOKEN",
    );
    // Only the env secret's path: `CERT` is no secret env value, so `/run/secrets/CERT`
    // is the file's to take.
    assert_eq!(
        taken,
        vec![("swarm-secret-path-taken", line, column)],
        "{found:#?}"
    );
    let message = &found
        .iter()
        .find(|(code, ..)| *code == "swarm-secret-path-taken")
        .unwrap()
        .1;
    assert!(
        message.contains("service `api` mounts secret file `token` at `/run/secrets/APP_TOKEN`")
            && message.contains("`APP_TOKEN_FILE`"),
        "{message}"
    );
}
