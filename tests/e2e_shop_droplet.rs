//! The seed's verification, end to end: from an empty emulated DigitalOcean account, one
//! `stackctl apply` of the reference stack (a temporary copy of `stack.toml` and `apps/`)
//! creates the SSH key, the droplet, the firewall and the records, builds every image of
//! the real shop on the droplet, runs Django's migrations as a release task and starts
//! everything behind the real Traefik; the checks then pass through the droplet's address.
//!
//! The droplet is a droplet-shaped host (`stackctl_host::testing::DropletHost`: a network
//! namespace with its own address, sshd on port 22 for root, its own dockerd) whose address
//! the emulator hands out, so stackctl reaches it over SSH exactly as a real droplet. No
//! registry: the Debian bases `testing/build-shop-images.sh` made with mmdebstrap and the
//! Traefik image are loaded into the droplet's daemon (`docker save | docker load`), and the
//! stack's Dockerfiles get them as `build_args = { BASE = ... }`.
//!
//! Then, on the same droplet: a change to the api's code is one build and the api's swap
//! (its Celery worker and beat run the same image and are replaced too) with no failed
//! request under load; a Django model change builds, runs `migrate`, then swaps Django;
//! rows written before survive both; a migration that raises leaves the old Django serving
//! and the apply exits 1 with the task's log. Destroy leaves nothing on the droplet's
//! daemon, and the host's teardown nothing on this machine.
//!
//! Prerequisites, all installed and started by `.ci/run`: root, `iproute2`, `iptables`,
//! `dockerd`, `openssh-server`, `curl`, Traefik, `mmdebstrap`, `npm`, pip. Without them
//! this test fails saying so; it never skips. It talks only to 127.0.0.1 (the emulator) and
//! the namespace it creates; every wait is bounded in count and time.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stackctl_do_emulator::{Emulator, EmulatorConfig};
use stackctl_host::testing::DropletHost;
use stackctl_traefik::checks::{
    run_check, Check, CheckOptions, CheckResult, ResolveOverride, StatusExpectation, TlsTrust,
};

use support::shop::{
    assert_seed_artifacts, assert_staging_resolver, build_images, copy_apps, files_under,
    json_field, plan_actions, run_folders,
};
use support::{repository, Run, TestEnvironment};

const TOKEN: &str = "dop_v1_e2e_shop_droplet_token_0123456789abcd";
const NAME: &str = "e2e-shop-droplet";
/// The droplet host's link is 10.210.<index>.0/29; unique among this repository's tests.
const HOST_INDEX: u8 = 221;
const DOMAIN: &str = "shop-droplet.test";
const SECRETS: [(&str, &str); 3] = [
    ("POSTGRES_PASSWORD", "e2e-shop-droplet-postgres-Secret-7731"),
    ("DJANGO_SECRET_KEY", "e2e-shop-droplet-django-Secret-7731"),
    ("FLOWER_PASSWORD", "e2e-shop-droplet-flower-Secret-7731"),
];
const PYTHON_BASE: &str = "stackctl-local/bookworm-python:latest";
const SERVICES_BASE: &str = "stackctl-local/bookworm-services:latest";
const TRAEFIK: &str = "stackctl-test/traefik:3.7.15";
/// Each app's base, as `testing/build-shop-images.sh` builds them.
const BASES: [(&str, &str); 6] = [
    ("api", PYTHON_BASE),
    ("django", PYTHON_BASE),
    ("flower", PYTHON_BASE),
    ("postgres", SERVICES_BASE),
    ("redis", SERVICES_BASE),
    ("react-app", SERVICES_BASE),
];
const FAILING_MIGRATION_MESSAGE: &str = "e2e: this migration refuses on purpose";

fn explain(run: &Run) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        run.code, run.stdout, run.stderr
    )
}

/// The reference stack and its apps, copied, with what a test droplet needs: its own
/// name, files under the test's directory (the droplet host shares this machine's file
/// system outside `/run` and Docker's directories), the local Traefik image, the local
/// bases as each build's `BASE`, the operator's address as the admin allowlist, and the
/// droplet host's client key as the deploy key.
fn write_stack(environment: &TestEnvironment, droplet: &DropletHost) {
    copy_apps(&repository().join("apps"), &environment.path().join("apps"));
    let ssh = environment.path().join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::copy(&droplet.client_key, ssh.join("id_ed25519")).unwrap();
    let public_key =
        std::fs::read_to_string(format!("{}.pub", droplet.client_key.display())).unwrap();
    std::fs::write(ssh.join("id_ed25519.pub"), &public_key).unwrap();

    let reference = std::fs::read_to_string(repository().join("stack.toml")).unwrap();
    let mut text = replace_once(&reference, "name = \"shop\"", &format!("name = \"{NAME}\""));
    text = replace_once(
        &text,
        "droplet = \"web-1\"\n",
        &format!(
            "droplet = \"web-1\"\nroot = \"{}\"\n",
            environment.path().join("droplet-files").display()
        ),
    );
    // The files Postgres mounts (its TLS key and certificate, pg_hba.conf) live under the
    // root too.
    text = text.replace(
        "/var/lib/stackctl/shop/",
        &format!("{}/", environment.path().join("droplet-files").display()),
    );
    text = replace_once(
        &text,
        "image = \"traefik:v3.3\"\n",
        &format!("image = \"{TRAEFIK}\"\npull = false\n"),
    );
    for (app, base) in BASES {
        let build = format!("build = \"apps/{app}\"\n");
        assert!(
            text.contains(&build),
            "the reference stack builds apps/{app}"
        );
        text = text.replace(
            &build,
            &format!("{build}build_args = {{ BASE = \"{base}\" }}\n"),
        );
    }
    environment.write("stack.toml", &text);
    std::fs::copy(
        repository().join(".env.example"),
        environment.path().join(".env.example"),
    )
    .unwrap();
    let [(_, postgres), (_, django), (_, flower)] = SECRETS;
    environment.write(
        ".env",
        &format!(
            "WEBSITE_DOMAIN={DOMAIN}\nACME_EMAIL=ops@{DOMAIN}\nADMIN_CIDR={}/32\n\
             DEPLOY_SSH_PUBLIC_KEY=\"{}\"\nPOSTGRES_PASSWORD={postgres}\n\
             DJANGO_SECRET_KEY={django}\nFLOWER_PASSWORD={flower}\n",
            droplet.operator_address,
            public_key.trim()
        ),
    );
    // Postgres's TLS key and certificate, as an operator makes them.
    let generated = environment.run(&["secrets", "generate"]);
    assert_eq!(generated.code, 0, "{}", explain(&generated));
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the reference stack has `{from}` once"
    );
    text.replace(from, to)
}

fn stackctl(environment: &TestEnvironment, emulator: &Emulator, arguments: &[&str]) -> Run {
    let variables = emulator_variables(emulator);
    let variables: Vec<(&str, &str)> = variables
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    environment.run_with_env(arguments, &variables)
}

fn emulator_variables(emulator: &Emulator) -> Vec<(&'static str, String)> {
    vec![
        ("DIGITALOCEAN_API_URL", emulator.base_url().to_string()),
        ("DIGITALOCEAN_TOKEN", TOKEN.to_string()),
        ("STACKCTL_DO_POLL_INTERVAL_MS", "50".to_string()),
        ("STACKCTL_DO_READY_TIMEOUT_SECONDS", "60".to_string()),
    ]
}

fn url(host: &str, path: &str) -> String {
    format!("https://{host}{path}")
}

/// One GET from this machine (the operator's address) to the droplet's address, whatever
/// the URL's name; any status is accepted (the caller asserts).
async fn get(droplet_address: std::net::Ipv4Addr, url: &str) -> CheckResult {
    let check = Check::get("probe", url, 200).expecting(StatusExpectation::Any);
    let options = CheckOptions {
        resolve: vec![ResolveOverride::all_to(droplet_address.into())],
        tls: TlsTrust::AcceptUntrusted,
        timeout: Duration::from_secs(5),
        ..CheckOptions::default()
    };
    run_check(&check, &options).await
}

/// One HTTPS request with curl to the droplet from `source` (an address of this machine;
/// curl can choose it, which is the point for the allowlist); returns the status and body.
fn curl(
    droplet: &DropletHost,
    source: &str,
    host: &str,
    path: &str,
    arguments: &[&str],
) -> (Option<u16>, String) {
    let output = Command::new("curl")
        .args(["--silent", "--insecure", "--max-time", "10"])
        .args(["--interface", source])
        .args(["--resolve", &format!("{host}:443:{}", droplet.address)])
        .args(["--write-out", "\n%{http_code}"])
        .args(arguments)
        .arg(url(host, path))
        .output()
        .expect("curl (installed by .ci/run)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.trim().parse().ok(), body.to_string())
}

/// Enqueues `a + b` through the api and waits (bounded) for the worker's result.
async fn celery_round_trip(droplet: &DropletHost, a: i64, b: i64) -> String {
    let operator = droplet.operator_address.to_string();
    let (status, body) = curl(
        droplet,
        &operator,
        DOMAIN,
        "/api/tasks",
        &[
            "--header",
            "content-type: application/json",
            "--data",
            &format!("{{\"a\": {a}, \"b\": {b}}}"),
        ],
    );
    assert_eq!(status, Some(202), "POST /api/tasks: {body}");
    let id = json_field(&body, "id")
        .as_str()
        .expect("a task id")
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let result = get(droplet.address, &url(DOMAIN, &format!("/api/tasks/{id}"))).await;
        if result.status == Some(200)
            && json_field(&result.body_excerpt, "result") == serde_json::json!(a + b)
        {
            return id;
        }
        assert!(
            Instant::now() < deadline,
            "the worker did not compute task {id} within 60 s: {result:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Django's answer through the api (`/api/whoami`, which asks Django over the backend
/// network).
async fn whoami(droplet: &DropletHost) -> serde_json::Value {
    let answer = get(droplet.address, &url(DOMAIN, "/api/whoami")).await;
    assert_eq!(answer.status, Some(200), "/api/whoami: {answer:?}");
    json_field(&answer.body_excerpt, "django")
}

fn docker(droplet: &DropletHost, arguments: &[&str]) -> String {
    droplet
        .docker(arguments)
        .unwrap_or_else(|error| panic!("docker {arguments:?} on the droplet: {error}"))
}

/// The id of the container running `service` on the droplet.
fn container_of(droplet: &DropletHost, service: &str) -> String {
    let ids = docker(
        droplet,
        &[
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=stackctl.stack={NAME}"),
            "--filter",
            &format!("label=stackctl.resource=service.{service}"),
        ],
    );
    assert_eq!(
        ids.lines().count(),
        1,
        "one container runs {service}: {ids}"
    );
    ids.trim().to_string()
}

/// One SQL query in the stack's Postgres on the droplet, its rows unaligned.
fn sql(droplet: &DropletHost, query: &str) -> String {
    let postgres = container_of(droplet, "postgres");
    docker(
        droplet,
        &[
            "exec", &postgres, "psql", "-U", "app", "-d", "app", "-tAc", query,
        ],
    )
}

/// Adds a Django app with a model and its migration to the copy of apps/django (and, with
/// `failing`, a second migration that raises). It lives in the `shop` package, the one the
/// Dockerfile copies into the image (app label `catalog`).
fn add_django_model(directory: &Path, failing: bool) {
    let django = directory.join("apps/django");
    let catalog = django.join("shop/catalog");
    std::fs::create_dir_all(catalog.join("migrations")).unwrap();
    std::fs::write(catalog.join("__init__.py"), "").unwrap();
    std::fs::write(catalog.join("migrations/__init__.py"), "").unwrap();
    std::fs::write(
        catalog.join("models.py"),
        "from django.db import models\n\n\nclass Product(models.Model):\n    name = models.CharField(max_length=100)\n",
    )
    .unwrap();
    std::fs::write(
        catalog.join("migrations/0001_initial.py"),
        r#"from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Product",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100)),
            ],
        ),
    ]
"#,
    )
    .unwrap();
    let settings = django.join("shop/settings.py");
    let text = std::fs::read_to_string(&settings).unwrap();
    if !text.contains("\"shop.catalog\",") {
        let changed = text.replace(
            "    \"django.contrib.messages\",\n]",
            "    \"django.contrib.messages\",\n    \"shop.catalog\",\n]",
        );
        assert!(
            changed.contains("\"shop.catalog\","),
            "settings.py lists its apps"
        );
        std::fs::write(&settings, changed).unwrap();
    }
    if failing {
        std::fs::write(
            catalog.join("migrations/0002_refuse.py"),
            format!(
                r#"from django.db import migrations


def refuse(apps, schema_editor):
    raise RuntimeError("{FAILING_MIGRATION_MESSAGE}")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(refuse)]
"#
            ),
        )
        .unwrap();
    }
}

/// Runs `apply` while four clients GET `/api/health` through the droplet's address every
/// 100 ms (40/s, under the api's rate limit); returns the apply and every failed request.
async fn apply_under_load(
    environment: &TestEnvironment,
    emulator: &Emulator,
    droplet: &DropletHost,
) -> (Run, usize, Vec<String>) {
    let sent = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let address = droplet.address;
    let loads: Vec<_> = (0..4)
        .map(|_| {
            let (sent, failures, stop) = (sent.clone(), failures.clone(), stop.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(600)
                {
                    let result = get(address, &url(DOMAIN, "/api/health")).await;
                    sent.fetch_add(1, Ordering::Relaxed);
                    if result.status != Some(200) {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{:?} {}", result.status, result.body_excerpt));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut command = environment.command(&["apply", "--yes", "--skip-checks"]);
    for (name, value) in emulator_variables(emulator) {
        command.env(name, value);
    }
    let applied = tokio::task::spawn_blocking(move || command.output().expect("apply"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for load in loads {
        load.await.unwrap();
    }
    let run = Run {
        code: applied.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&applied.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&applied.stderr).into_owned(),
    };
    let failures = failures.lock().unwrap().clone();
    (run, sent.load(Ordering::Relaxed), failures)
}

/// Where `address` first appears in the plan's text (its line order is the apply's).
fn line_of(plan: &str, address: &str) -> usize {
    plan.lines()
        .position(|line| line.split_whitespace().any(|word| word == address))
        .unwrap_or_else(|| panic!("{address} is not in the plan:\n{plan}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_seed_from_an_empty_account_to_a_droplet_serves_swaps_migrates_and_survives_a_failing_migration(
) {
    let started = Instant::now();
    build_images();
    let droplet = DropletHost::start(NAME, HOST_INDEX).unwrap_or_else(|error| {
        panic!("the droplet host did not start: {error}. .ci/run installs iproute2, iptables, docker.io and openssh-server")
    });
    let loaded = droplet
        .load_images(&[PYTHON_BASE, SERVICES_BASE, TRAEFIK])
        .unwrap_or_else(|error| panic!("{error}"));
    eprintln!("the bases and Traefik loaded into the droplet's daemon in {loaded:.2?}");
    let emulator = Emulator::start(EmulatorConfig {
        token: TOKEN.to_string(),
        public_ipv4_by_name: [("web-1".to_string(), droplet.address.to_string())].into(),
        activation_delay: Duration::from_millis(150),
        action_delay: Duration::from_millis(50),
        ..EmulatorConfig::default()
    })
    .await
    .expect("the emulator starts on 127.0.0.1");
    let environment = TestEnvironment::new();
    write_stack(&environment, &droplet);
    let address = droplet.address.to_string();
    let operator = droplet.operator_address.to_string();
    let outside = droplet.outside_address.to_string();

    // One apply from an empty account: the account's resources, every image built on the
    // droplet, the migrations, every service; the checks pass through the droplet.
    let first_started = Instant::now();
    let first = stackctl(
        &environment,
        &emulator,
        &["apply", "--yes", "--accept-new-host-key"],
    );
    eprintln!(
        "first apply in {:.1?}:\n{}",
        first_started.elapsed(),
        first.stdout
    );
    assert_eq!(
        first.code,
        0,
        "the first apply: {}\n{}",
        explain(&first),
        droplet.logs()
    );
    for planned in [
        "ssh_key.deploy",
        "droplet.web-1",
        "firewall.web",
        "dns_record.apex",
        "dns_record.flower",
        "image.api",
        "image.django",
        "image.flower",
        "image.postgres",
        "image.redis",
        "image.react-app",
        "release.django",
        "service.django",
    ] {
        assert!(
            first.stdout.contains(planned),
            "the first apply plans {planned}: {}",
            first.stdout
        );
    }
    assert!(
        line_of(&first.stdout, "release.django") < line_of(&first.stdout, "service.django"),
        "the migrations run before Django starts: {}",
        first.stdout
    );
    assert!(first.stdout.contains("ok   checks[1]"), "{}", first.stdout);
    let state = emulator.state();
    assert_eq!(emulator.droplets().len(), 1);
    assert_eq!(
        emulator.droplets()[0]["networks"]["v4"][0]["ip_address"],
        address.as_str()
    );
    for kind in ["ssh_keys", "firewalls"] {
        assert_eq!(state[kind].as_array().map_or(0, Vec::len), 1, "{state:#}");
    }
    let records: Vec<&serde_json::Value> = state["domains"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|domain| domain["records"].as_array().into_iter().flatten())
        .filter(|record| record["type"] == "A")
        .collect();
    assert_eq!(records.len(), 2, "{state:#}");
    assert!(records
        .iter()
        .all(|record| record["data"] == address.as_str()));
    // Every image was built on the droplet, none on this machine.
    let built = docker(
        &droplet,
        &[
            "image",
            "ls",
            "--format",
            "{{.Repository}}",
            &format!("{NAME}/*"),
        ],
    );
    assert_eq!(
        built.lines().count(),
        6,
        "six images built on the droplet: {built}"
    );
    let here = Command::new("docker")
        .args(["image", "ls", "-q", &format!("{NAME}/*")])
        .output()
        .expect("the docker CLI");
    assert!(here.stdout.is_empty(), "nothing built on this machine");
    // The migrations ran: Django's tables exist in Postgres.
    assert_eq!(
        sql(
            &droplet,
            "select count(*) > 0 from django_migrations where app = 'auth'"
        ),
        "t"
    );
    let again = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "a second plan is empty: {}", explain(&again));

    // The React front end with the security headers, staging's (untrusted) certificate.
    let front = get(droplet.address, &url(DOMAIN, "/")).await;
    assert_eq!(front.status, Some(200), "{front:?}");
    assert!(front.body_excerpt.contains("/app.js"), "{front:?}");
    assert_eq!(front.source_address.as_deref(), Some(operator.as_str()));
    for (header, value) in [
        ("strict-transport-security", "max-age=31536000"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
    ] {
        assert!(
            front
                .headers
                .get(header)
                .is_some_and(|found| found.contains(value)),
            "{header}: {:?}",
            front.headers
        );
    }
    assert!(!front.tls.as_ref().expect("a TLS connection").trusted);

    // HTTP redirects to HTTPS.
    let redirect = get(droplet.address, &format!("http://{DOMAIN}/some/path")).await;
    assert!(matches!(redirect.status, Some(301 | 308)), "{redirect:?}");
    assert!(redirect
        .headers
        .get("location")
        .is_some_and(|location| location.starts_with(&format!("https://{DOMAIN}/"))));

    // The api is healthy only with Postgres and Redis up, and says so.
    let health = get(droplet.address, &url(DOMAIN, "/api/health")).await;
    assert_eq!(health.status, Some(200), "{health:?}");
    assert_eq!(json_field(&health.body_excerpt, "postgres"), "ok");
    assert_eq!(json_field(&health.body_excerpt, "redis"), "ok");

    // A Celery round trip, written to Postgres by the worker.
    let kept_task = celery_round_trip(&droplet, 20, 22).await;

    // Django: not through the edge, but from the api over the backend network.
    for host in [DOMAIN.to_string(), format!("django.{DOMAIN}")] {
        let through_edge = get(droplet.address, &url(&host, "/internal/users/me")).await;
        assert_eq!(through_edge.status, Some(404), "{host}: {through_edge:?}");
        assert!(!through_edge.body_excerpt.contains("users_in_database"));
    }
    let django = whoami(&droplet).await;
    assert_eq!(django["users_in_database"], 0, "{django}");
    assert_eq!(django["authenticated"], false);
    // A row in a Django table, written before the changes below.
    let django_container = container_of(&droplet, "django");
    docker(
        &droplet,
        &[
            "exec",
            &django_container,
            "python3",
            "manage.py",
            "shell",
            "-c",
            "from django.contrib.auth.models import User; User.objects.create_user('kept-user')",
        ],
    );
    assert_eq!(whoami(&droplet).await["users_in_database"], 1);

    // Flower: 401 without credentials, 200 with, 403 from outside the allowlist.
    let flower = format!("flower.{DOMAIN}");
    let login = format!("admin:{}", SECRETS[2].1);
    let status =
        |source: &str, arguments: &[&str]| curl(&droplet, source, &flower, "/", arguments).0;
    assert_eq!(status(&operator, &[]), Some(401));
    assert_eq!(status(&operator, &["--user", &login]), Some(200));
    assert_eq!(status(&operator, &["--user", "admin:wrong"]), Some(401));
    assert_eq!(status(&outside, &["--user", &login]), Some(403));
    assert_eq!(status(&outside, &[]), Some(403));

    // Only the edge publishes ports, on the droplet's daemon; nothing runs here.
    let containers = docker(
        &droplet,
        &[
            "ps",
            "--filter",
            &format!("label=stackctl.stack={NAME}"),
            "--format",
            "{{.Names}}\t{{.Ports}}",
        ],
    );
    assert_eq!(containers.lines().count(), 9, "{containers}");
    for line in containers.lines() {
        let (name, ports) = line.split_once('\t').unwrap_or((line, ""));
        assert_eq!(
            ports.contains("->"),
            name == format!("{NAME}-edge"),
            "only the edge publishes ports: {line}"
        );
    }
    let local = Command::new("docker")
        .args([
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("label=stackctl.stack={NAME}"),
        ])
        .output()
        .expect("the docker CLI");
    assert!(
        local.stdout.is_empty(),
        "nothing of the stack on this machine's Docker"
    );

    // The resolver is Let's Encrypt's staging directory.
    assert_staging_resolver(&environment.path().join("droplet-files/traefik/traefik.yml"));

    // The first run's folder holds the seed's artifacts.
    let first_run = run_folders(environment.path())[0].clone();
    assert_seed_artifacts(
        &first_run,
        &["docker/release-django.log"],
        &url(DOMAIN, "/"),
        &url(DOMAIN, "/api/health"),
    );

    // (a) A change to the api's code: one image build and the api's swap; the Celery worker
    // and beat run the same image, so they are replaced too. Nothing else.
    let main = environment.path().join("apps/api/app/main.py");
    let code = std::fs::read_to_string(&main).unwrap().replace(
        "return {\"status\": \"ok\", \"postgres\": \"ok\", \"redis\": \"ok\"}",
        "return {\"status\": \"ok\", \"postgres\": \"ok\", \"redis\": \"ok\", \"version\": 2}",
    );
    assert!(code.contains("\"version\": 2"));
    std::fs::write(&main, code).unwrap();
    let planned = stackctl(&environment, &emulator, &["plan", "--format", "json"]);
    let first_api_build = previous_tag(&planned.stdout, "image.api");
    let actions = plan_actions(&planned.stdout);
    let addresses: Vec<&str> = actions
        .iter()
        .map(|(address, _)| address.as_str())
        .collect();
    assert_eq!(
        addresses,
        [
            "image.api",
            "service.api",
            "service.celery-beat",
            "service.celery-worker"
        ],
        "one build, the api swapped, its worker and beat replaced: {actions:?}"
    );
    assert!(
        actions.contains(&(
            "service.api".to_string(),
            "replace_create_before_destroy".to_string()
        )),
        "the routed api is swapped create-before-destroy: {actions:?}"
    );
    let (swap, sent, failures) = apply_under_load(&environment, &emulator, &droplet).await;
    assert_eq!(swap.code, 0, "the api swap: {}", explain(&swap));
    eprintln!(
        "api swap under load: {sent} requests to /api/health, {} failed",
        failures.len()
    );
    assert!(sent > 20, "the load ran ({sent} requests)");
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed during the swap: {failures:?}",
        failures.len()
    );
    let swapped = get(droplet.address, &url(DOMAIN, "/api/health")).await;
    assert_eq!(
        json_field(&swapped.body_excerpt, "version"),
        2,
        "{swapped:?}"
    );

    // (b) A Django model change: the build, `release.django` (migrate), then Django's
    // replacement, in that order.
    add_django_model(environment.path(), false);
    let planned = stackctl(&environment, &emulator, &["plan"]);
    assert_eq!(planned.code, 0, "{}", explain(&planned));
    let text_plan = planned.stdout.clone();
    let planned = stackctl(&environment, &emulator, &["plan", "--format", "json"]);
    let first_django_build = previous_tag(&planned.stdout, "image.django");
    let actions = plan_actions(&planned.stdout);
    let addresses: Vec<&str> = actions
        .iter()
        .map(|(address, _)| address.as_str())
        .collect();
    assert_eq!(
        addresses,
        ["image.django", "release.django", "service.django"],
        "{actions:?}"
    );
    assert!(actions.contains(&("release.django".to_string(), "run".to_string())));
    assert!(
        line_of(&text_plan, "image.django") < line_of(&text_plan, "release.django")
            && line_of(&text_plan, "release.django") < line_of(&text_plan, "service.django"),
        "build, migrate, swap:\n{text_plan}"
    );
    let old_django = container_of(&droplet, "django");
    let migrated = stackctl(&environment, &emulator, &["apply", "--yes"]);
    assert_eq!(
        migrated.code,
        0,
        "the Django change: {}",
        explain(&migrated)
    );
    let new_django = container_of(&droplet, "django");
    let second_django_build = docker(
        &droplet,
        &["inspect", "--format", "{{.Config.Image}}", &new_django],
    );
    assert_ne!(old_django, new_django, "Django was replaced");
    // The migration was applied before the new Django started.
    let started_at = docker(
        &droplet,
        &["inspect", "--format", "{{.State.StartedAt}}", &new_django],
    );
    let started_at = truncate_to_microseconds(&started_at);
    assert_eq!(
        sql(
            &droplet,
            &format!(
                "select applied < timestamptz '{started_at}' from django_migrations \
                 where app = 'catalog' and name = '0001_initial'"
            )
        ),
        "t",
        "catalog's migration ran before Django {new_django} started at {started_at}"
    );
    assert_eq!(
        sql(&droplet, "select count(*) from catalog_product"),
        "0",
        "the new model's table exists"
    );

    // (c) What was written before survives both: the task row (read by the new api),
    // Django's user, and the new worker computes.
    let kept = get(
        droplet.address,
        &url(DOMAIN, &format!("/api/tasks/{kept_task}")),
    )
    .await;
    assert_eq!(kept.status, Some(200), "{kept:?}");
    assert_eq!(json_field(&kept.body_excerpt, "a"), 20);
    assert_eq!(json_field(&kept.body_excerpt, "b"), 22);
    assert_eq!(whoami(&droplet).await["users_in_database"], 1);
    celery_round_trip(&droplet, 1, 2).await;
    let settled = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    assert_eq!(settled.code, 0, "{}", explain(&settled));

    // (d) A migration that raises: apply exits 1 with the task's log, the old Django keeps
    // serving, and the state stays valid (the next plan still has the task and the swap).
    add_django_model(environment.path(), true);
    let failed = stackctl(&environment, &emulator, &["apply", "--yes"]);
    assert_eq!(failed.code, 1, "a failing migration: {}", explain(&failed));
    assert!(
        format!("{}{}", failed.stdout, failed.stderr).contains(FAILING_MIGRATION_MESSAGE),
        "the task's log is shown: {}",
        explain(&failed)
    );
    assert_eq!(
        container_of(&droplet, "django"),
        new_django,
        "Django was not replaced"
    );
    assert_eq!(whoami(&droplet).await["users_in_database"], 1);
    let last_run = run_folders(environment.path()).last().unwrap().clone();
    let task_log = std::fs::read_to_string(last_run.join("docker/release-django.log"))
        .expect("the task's log in the run folder");
    assert!(task_log.contains(FAILING_MIGRATION_MESSAGE), "{task_log}");
    let state_text = environment.read(&format!("state/{NAME}.json"));
    serde_json::from_str::<serde_json::Value>(&state_text).expect("the state is JSON");
    let pending = stackctl(&environment, &emulator, &["plan", "--format", "json"]);
    let actions = plan_actions(&pending.stdout);
    assert_eq!(
        actions,
        [
            ("release.django".to_string(), "run".to_string()),
            (
                "service.django".to_string(),
                "replace_create_before_destroy".to_string()
            ),
        ],
        "the new image is built and recorded; the migration and the swap are still to do: {actions:?}"
    );

    // No secret value in state or in any run artifact.
    let mut files = files_under(&environment.path().join("runs"));
    files.push((environment.path().join("state"), state_text));
    assert!(files.len() > 10);
    for (path, text) in &files {
        for (_, secret) in SECRETS {
            assert!(
                !text.contains(secret),
                "{secret} found in {}",
                path.display()
            );
        }
    }

    // Destroy empties the account and leaves nothing of the stack on the droplet's daemon.
    // The builds of the last successful applies stay on the droplet for a rollback
    // (`keep_images`, default 3): the first api, the first Django and the Django that
    // kept serving when the migration failed.
    let kept = docker(
        &droplet,
        &[
            "image",
            "ls",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            &format!("{NAME}/*"),
        ],
    );
    for build in [&first_api_build, &first_django_build, &second_django_build] {
        assert!(
            kept.lines().any(|image| image == build.as_str()),
            "{build} is kept for a rollback: {kept}"
        );
    }
    let destroyed = stackctl(
        &environment,
        &emulator,
        &["destroy", "--yes", "--allow-data-loss"],
    );
    assert_eq!(destroyed.code, 0, "destroy: {}", explain(&destroyed));
    assert!(emulator.droplets().is_empty());
    let label = format!("label=stackctl.stack={NAME}");
    for kind in [["ps", "-a"], ["network", "ls"], ["volume", "ls"]] {
        let left = docker(&droplet, &[kind[0], kind[1], "-q", "--filter", &label]);
        assert_eq!(left, "", "no {} of the stack on the droplet", kind[0]);
    }
    let images = docker(
        &droplet,
        &[
            "image",
            "ls",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            &format!("{NAME}/*"),
        ],
    );
    // Destroy removes every image the stack built, the ones kept for a rollback too.
    assert_eq!(images, "", "no image of the stack is left on the droplet");

    // The droplet host leaves nothing behind on this machine.
    let namespace = droplet.namespace.clone();
    let teardown = droplet.stop();
    eprintln!("droplet host torn down in {:.2?}", teardown.duration);
    assert!(
        teardown.leftovers.is_empty(),
        "nothing is left: {:?}",
        teardown.leftovers
    );
    let namespaces = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    assert!(!String::from_utf8_lossy(&namespaces.stdout).contains(&namespace));
    eprintln!("the whole test took {:.1?}", started.elapsed());
}

/// The tag an image had before the change `plan_json` plans for it.
fn previous_tag(plan_json: &str, address: &str) -> String {
    let document: serde_json::Value = serde_json::from_str(plan_json).expect("a JSON plan");
    document["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|action| action["address"] == address)
        .and_then(|action| {
            action["changes"]
                .as_array()?
                .iter()
                .find(|change| change["attribute"] == "tag")
        })
        .and_then(|change| change["before"].as_str())
        .unwrap_or_else(|| panic!("{address}'s tag changes: {plan_json}"))
        .to_string()
}

/// Docker's RFC 3339 time with nanoseconds, cut to Postgres's microseconds.
fn truncate_to_microseconds(time: &str) -> String {
    let time = time.trim();
    match time.split_once('.') {
        Some((seconds, fraction)) => {
            let digits: String = fraction.chars().take_while(char::is_ascii_digit).collect();
            let zone = &fraction[digits.len()..];
            format!("{seconds}.{}{zone}", &digits[..digits.len().min(6)])
        }
        None => time.to_string(),
    }
}
