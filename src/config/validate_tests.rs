//! Validation, one row per rule: a stack.toml snippet in, the diagnostics out with
//! their code, message and `line:column`. (tests/cli.rs snapshots how the CLI renders
//! some of them; these pin what each rule finds and where it points.)

use super::{load_text, LoadOptions, SourceFile};

const BASE: &str = "[stack]\nname = \"shop\"\n\n[target]\nhost = \"local\"\n";
const EDGE: &str = "\n[edge]\nimage = \"traefik:v3.3\"\n";
const FLOWER: &str = "\n[services.flower]\nimage = \"flower:2\"\nport = 5555\ndashboard = true\n";

/// A problem found: (code, message, line, column).
type Problem<Message> = (&'static str, Message, usize, usize);

/// Every problem validation finds in `BASE` + `snippet`.
fn problems(snippet: &str) -> Vec<Problem<String>> {
    problems_in(&format!("{BASE}{snippet}"))
}

fn problems_in(text: &str) -> Vec<Problem<String>> {
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
