//! A plan you can trust (issue 9): whatever stackctl wrote on the host is read back, so a
//! hand edit, a deleted file or a lost state is never "No changes" while the site is down
//! or exposed. Each test deploys `examples/local` (its own stack name, root and ports) on
//! the real Docker daemon with the real Traefik, through the real `stackctl` binary, plays
//! the operator who changes something by hand, and checks that `drift` tells and one
//! `apply` repairs. `.ci/run` starts dockerd, installs Traefik and builds the test images;
//! without them these tests fail, they never skip.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::edge::{get_with_auth, wait_for};
use support::{repository, TestEnvironment};

const SECRETS: [(&str, &str); 2] = [
    ("API_SECRET_KEY", "trust-api-Secret-4417"),
    ("FLOWER_PASSWORD", "trust-flower-Secret-4417"),
];
/// Requests reach a containerised Traefik from Docker's gateway: allow every source.
const ANYONE: &str = "0.0.0.0/0";

fn build_images() {
    let status = Command::new("bash")
        .arg(repository().join("testing/build-images.sh"))
        .status()
        .expect("run testing/build-images.sh");
    assert!(
        status.success(),
        "testing/build-images.sh failed: is dockerd running and Traefik installed? (.ci/run does both)"
    );
}

fn docker(arguments: &[&str]) -> String {
    let output = Command::new("docker")
        .args(arguments)
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A loopback port for the edge to publish. Port 0 would hand out one of the kernel's
/// ephemeral ports (32768–60999), which any outgoing connection can hold by the time
/// Docker binds it (seen in CI: `address already in use`); the ports below that range are
/// only ever bound on purpose. A counter keeps this process's tests apart; the process id
/// spreads test runs.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const FIRST: u32 = 26000;
    const COUNT: u32 = 1000;
    let offset = std::process::id() % COUNT;
    for _ in 0..COUNT {
        let port = FIRST + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % COUNT;
        let port = u16::try_from(port).expect("the range fits in u16");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in 26000–26999");
}

/// One deployed copy of examples/local; dropping it removes everything labelled with its
/// stack name (even when the test panics) — the host root goes with the temp directory.
struct Deployment {
    name: String,
    environment: TestEnvironment,
    https: u16,
}

impl Deployment {
    /// A copy of examples/local with its own stack name, host root and free ports.
    fn new(test: &str) -> Deployment {
        build_images();
        let name = format!("trust-{test}-{}", std::process::id());
        remove_everything_of(&name);
        let environment = TestEnvironment::new();
        support::copy_tree(&repository().join("examples/local"), environment.path());
        let root = environment.path().join("host-root");
        let (http, https, admin) = (free_port(), free_port(), free_port());
        let text = environment
            .read("stack.toml")
            .replace("name = \"local-demo\"", &format!("name = \"{name}\""))
            .replace(
                "root = \"/tmp/stackctl/local-demo\"",
                &format!("root = \"{}\"", root.display()),
            )
            .replace("18080", &http.to_string())
            .replace("18443", &https.to_string())
            .replace("18081", &admin.to_string());
        environment.write("stack.toml", &text);
        Deployment {
            name,
            environment,
            https,
        }
    }

    fn stackctl(&self, arguments: &[&str]) -> support::Run {
        let mut variables: Vec<(&str, &str)> = SECRETS.to_vec();
        variables.push(("ADMIN_CIDR", ANYONE));
        let mut all = arguments.to_vec();
        all.extend(["--env-file", ".env.example"]);
        self.environment.run_with_env(&all, &variables)
    }

    /// `apply --yes`, asserting it succeeds; returns its output.
    fn apply(&self) -> String {
        let applied = self.stackctl(&["apply", "--yes"]);
        assert_eq!(
            applied.code, 0,
            "apply failed:\n{}\n{}",
            applied.stdout, applied.stderr
        );
        applied.stdout
    }

    /// Asserts `plan --detailed-exitcode` finds nothing to do.
    fn assert_no_changes(&self) {
        let plan = self.stackctl(&["plan", "--detailed-exitcode"]);
        assert_eq!(
            plan.code, 0,
            "the plan should be empty:\n{}{}",
            plan.stdout, plan.stderr
        );
        assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);
    }

    fn dynamic_file(&self, name: &str) -> PathBuf {
        self.environment
            .path()
            .join("host-root/traefik/dynamic")
            .join(name)
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.https)
    }

    /// Waits until `/` on example.test answers 200 from the web service.
    async fn assert_web_answers(&self) {
        let answer = wait_for(&self.url("example.test", "/"), |answer| {
            answer.status == Some(200) && answer.body_excerpt.contains(r#""backend":"web""#)
        })
        .await;
        assert_eq!(answer.status, Some(200), "{answer:?}");
        assert!(
            answer.body_excerpt.contains(r#""backend":"web""#),
            "{answer:?}"
        );
    }

    /// The name of the container serving `service` now.
    fn container_of(&self, service: &str) -> String {
        docker(&[
            "ps",
            "--format",
            "{{.Names}}",
            "--filter",
            &format!("label=stackctl.stack={}", self.name),
            "--filter",
            &format!("label=stackctl.resource=service.{service}"),
        ])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        remove_everything_of(&self.name);
        // The host lock and the owner record of the stack on this machine.
        let records = std::path::Path::new(stackctl_host::HOST_RECORDS_DIRECTORY);
        for suffix in ["lock", "lock.holder", "lineage"] {
            let _ = std::fs::remove_file(records.join(format!("{}.{suffix}", self.name)));
        }
    }
}

/// The lineage recorded in the state file of `stack` in `directory`.
fn lineage_in(directory: &std::path::Path, stack: &str) -> String {
    let text = std::fs::read_to_string(directory.join(format!("{stack}.json"))).unwrap();
    let state: serde_json::Value = serde_json::from_str(&text).unwrap();
    state["lineage"].as_str().unwrap().to_string()
}

/// Removes the containers, networks and volumes labelled as `stack`'s.
fn remove_everything_of(stack: &str) {
    let label = format!("label=stackctl.stack={stack}");
    for id in docker(&["ps", "-a", "-q", "--filter", &label]).split_whitespace() {
        docker(&["rm", "-f", id]);
    }
    for kind in ["network", "volume"] {
        for item in docker(&[kind, "ls", "-q", "--filter", &label]).split_whitespace() {
            docker(&[kind, "rm", item]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edited_backend_file_is_drift_and_apply_restores_it() {
    let deployment = Deployment::new("edit");
    deployment.apply();
    deployment.assert_no_changes();
    let backend = deployment.dynamic_file("backend-web.yml");
    let written = std::fs::read_to_string(&backend).expect("the backend file of web");
    let web = deployment.container_of("web");
    let flower = deployment.container_of("flower");
    assert!(written.contains(&web), "{written}");

    // Point web's route at the dashboard container, bypassing its authentication.
    std::fs::write(&backend, written.replace(&web, &flower)).unwrap();
    let hijacked = wait_for(&deployment.url("example.test", "/"), |answer| {
        answer.body_excerpt.contains(r#""backend":"flower""#)
    })
    .await;
    assert!(
        hijacked.body_excerpt.contains(r#""backend":"flower""#),
        "the hand edit took effect: {hijacked:?}"
    );

    let drift = deployment.stackctl(&["drift"]);
    assert_eq!(drift.code, 2, "{}{}", drift.stdout, drift.stderr);
    assert!(
        drift.stdout.contains("service.web") && drift.stdout.contains("backend_file"),
        "{}",
        drift.stdout
    );
    assert!(
        drift.stdout.contains(&flower),
        "the diff names it: {}",
        drift.stdout
    );
    let plan = deployment.stackctl(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(
        !plan.stdout.contains("forces replacement"),
        "repairing the file keeps the container:\n{}",
        plan.stdout
    );

    deployment.apply();
    assert_eq!(std::fs::read_to_string(&backend).unwrap(), written);
    assert_eq!(deployment.container_of("web"), web, "the container stays");
    deployment.assert_web_answers().await;
    deployment.assert_no_changes();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_backend_file_is_drift_and_apply_restores_it() {
    let deployment = Deployment::new("delete");
    deployment.apply();
    let backend = deployment.dynamic_file("backend-web.yml");
    let written = std::fs::read_to_string(&backend).expect("the backend file of web");

    std::fs::remove_file(&backend).unwrap();
    let gone = wait_for(&deployment.url("example.test", "/"), |answer| {
        answer.status == Some(404)
    })
    .await;
    assert_eq!(gone.status, Some(404), "no backend, no route: {gone:?}");

    let drift = deployment.stackctl(&["drift"]);
    assert_eq!(drift.code, 2, "{}{}", drift.stdout, drift.stderr);
    assert!(
        drift.stdout.contains("service.web") && drift.stdout.contains("backend_file"),
        "{}",
        drift.stdout
    );

    deployment.apply();
    assert_eq!(std::fs::read_to_string(&backend).unwrap(), written);
    deployment.assert_web_answers().await;
    deployment.assert_no_changes();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_losing_state_one_apply_converges_and_routes_answer() {
    let deployment = Deployment::new("lost");
    deployment.apply();
    let state = deployment.environment.path().join("state");
    std::fs::remove_dir_all(&state).expect("remove state/");
    // What a crash between a container's start and its backend file looks like too.
    std::fs::remove_file(deployment.dynamic_file("backend-web.yml")).unwrap();

    let adopted = deployment.apply();
    assert!(adopted.contains("to adopt"), "{adopted}");
    assert!(
        !adopted.contains("forces replacement"),
        "adopting replaces nothing:\n{adopted}"
    );
    // Live secrets are hashed with the new state's salt, like the desired ones.
    assert!(
        !adopted.contains("env.API_SECRET_KEY"),
        "no false change of a secret:\n{adopted}"
    );
    deployment.assert_no_changes();
    deployment.assert_web_answers().await;
    let dashboard = get_with_auth(
        &deployment.url("flower.example.test", "/"),
        "admin",
        SECRETS[1].1,
    )
    .await;
    assert_eq!(dashboard.status, Some(200), "{dashboard:?}");
    let drift = deployment.stackctl(&["drift"]);
    assert_eq!(drift.code, 0, "{}{}", drift.stdout, drift.stderr);
}

/// The host records which state lineage deploys the stack. A state with resources of
/// another lineage (a copy that went its own way) is refused by `plan`, `apply` and
/// `drift`, naming both lineages, the state file and what to do; an empty state adopts
/// the stack and becomes its owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_of_another_lineage_is_refused_and_an_empty_state_adopts() {
    let deployment = Deployment::new("lineage");
    deployment.apply();
    let directory = deployment.environment.path();
    let first_state = directory.join("state-first");
    std::fs::rename(directory.join("state"), &first_state).unwrap();
    let first_lineage = lineage_in(&first_state, &deployment.name);

    // An empty state adopts what runs, and its lineage now owns the stack.
    let adopted = deployment.apply();
    assert!(adopted.contains("to adopt"), "{adopted}");
    let owner_lineage = lineage_in(&directory.join("state"), &deployment.name);
    assert_ne!(owner_lineage, first_lineage);
    deployment.assert_no_changes();

    // The first state still has its resources, but no longer deploys the stack.
    let first_state_argument = first_state.display().to_string();
    for command in [&["plan"][..], &["apply", "--yes"][..], &["drift"][..]] {
        let mut arguments = command.to_vec();
        arguments.extend(["--state-dir", &first_state_argument]);
        let refused = deployment.stackctl(&arguments);
        assert_eq!(
            refused.code, 1,
            "{command:?}:\n{}{}",
            refused.stdout, refused.stderr
        );
        let said = &refused.stderr;
        assert!(
            said.contains(&first_lineage)
                && said.contains(&owner_lineage)
                && said.contains(&format!("{}.json", deployment.name))
                && said.contains("did not deploy stack"),
            "{command:?} names both lineages and the state file:\n{said}"
        );
        assert!(
            said.contains("fresh `--state-dir`") && said.contains("stackctl import"),
            "and says what to do:\n{said}"
        );
    }
    // Nothing was changed by the refused runs.
    deployment.assert_no_changes();
    deployment.assert_web_answers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_dropped_into_the_watched_directory_is_reported_and_removed() {
    let deployment = Deployment::new("stray");
    deployment.apply();
    // A router of its own to the dashboard's service, around its authentication.
    let stray = deployment.dynamic_file("zz-stray.yml");
    std::fs::write(
        &stray,
        "http:\n  routers:\n    stray:\n      rule: \"Host(`stray.example.test`)\"\n      entryPoints: [\"websecure\"]\n      service: flower\n      tls: {}\n",
    )
    .unwrap();
    let stray_url = deployment.url("stray.example.test", "/");
    let open = wait_for(&stray_url, |answer| answer.status == Some(200)).await;
    assert_eq!(
        open.status,
        Some(200),
        "Traefik loaded the stray file: {open:?}"
    );

    let drift = deployment.stackctl(&["drift"]);
    assert_eq!(drift.code, 2, "{}{}", drift.stdout, drift.stderr);
    assert!(
        drift.stdout.contains("file.traefik-static")
            && drift.stdout.contains("unmanaged_files")
            && drift.stdout.contains("zz-stray.yml"),
        "{}",
        drift.stdout
    );
    let plan = deployment.stackctl(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(plan.stdout.contains("zz-stray.yml"), "{}", plan.stdout);
    assert!(
        !plan.stdout.contains("requests fail"),
        "removing a stray file does not restart the edge:\n{}",
        plan.stdout
    );

    deployment.apply();
    assert!(!stray.exists(), "apply removes the stray file");
    let closed = wait_for(&stray_url, |answer| answer.status == Some(404)).await;
    assert_eq!(closed.status, Some(404), "{closed:?}");
    deployment.assert_web_answers().await;
    deployment.assert_no_changes();
}

/// `django` declares no command and no ports, and runs as user 10001. Its container is
/// replaced by hand with one that runs another command, as another user, with an extra
/// env var and a published port (and none of the hardening): each is drift with its own
/// line in `drift` and `plan` (the desired side being what stackctl builds), and one
/// apply removes them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_env_var_user_and_port_added_by_hand_are_drift_and_apply_removes_them() {
    let deployment = Deployment::new("added");
    deployment.apply();
    let container = deployment.container_of("django");
    let inspect = |format: &str| docker(&["inspect", "-f", format, &container]);
    let labels: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&inspect("{{json .Config.Labels}}")).expect("labels");
    let env: Vec<String> = serde_json::from_str(&inspect("{{json .Config.Env}}")).expect("env");
    let image = inspect("{{.Config.Image}}");
    docker(&["rm", "-f", &container]);
    let port = free_port();
    let binding = format!("127.0.0.1:{port}:8080");
    let network = format!("{}_backend", deployment.name);
    let mut arguments: Vec<String> = [
        "run",
        "-d",
        "--name",
        &container,
        "--network",
        &network,
        "--network-alias",
        "django",
        "-p",
        &binding,
        "-u",
        "4242",
        "-e",
        "ADDED_BY_HAND=yes",
    ]
    .map(str::to_string)
    .to_vec();
    for (key, value) in &labels {
        arguments.extend(["--label".to_string(), format!("{key}={value}")]);
    }
    for entry in &env {
        arguments.extend(["-e".to_string(), entry.clone()]);
    }
    arguments.push(image);
    arguments.extend(["serve", "--name", "by-hand"].map(str::to_string));
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    assert!(!docker(&arguments).is_empty(), "docker run by hand");

    let drift = deployment.stackctl(&["drift"]);
    assert_eq!(drift.code, 2, "{}{}", drift.stdout, drift.stderr);
    let plan = deployment.stackctl(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    for (what, output) in [("drift", &drift.stdout), ("plan", &plan.stdout)] {
        assert!(output.contains("service.django"), "{what}:\n{output}");
        for attribute in ["command", "env", "user", "ports"] {
            assert!(
                output.contains(&format!("`{attribute}`"))
                    || output.contains(&format!(" {attribute} ")),
                "{what} names `{attribute}`:\n{output}"
            );
        }
        assert!(
            output.contains("by-hand")
                && output.contains("4242")
                && output.contains(&port.to_string()),
            "{what} shows the hand-added values:\n{output}"
        );
    }

    deployment.apply();
    let container = deployment.container_of("django");
    let inspect = |format: &str| docker(&["inspect", "-f", format, &container]);
    assert_eq!(
        inspect("{{.Config.User}}"),
        "10001",
        "the declared user after apply"
    );
    assert!(!inspect("{{json .Config.Cmd}}").contains("by-hand"));
    assert!(!inspect("{{json .Config.Env}}").contains("ADDED_BY_HAND"));
    assert_eq!(docker(&["port", &container]), "", "no port after apply");
    deployment.assert_no_changes();
    let drift = deployment.stackctl(&["drift"]);
    assert_eq!(drift.code, 0, "{}{}", drift.stdout, drift.stderr);
}

/// The docker-level test (`providers/docker/tests/docker.rs`) shows the live read; this
/// one the whole loop through the binary: drift names the port, the plan replaces the
/// container, and after apply nothing listens on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_published_by_hand_is_drift_and_the_plan_replaces_the_container_without_it() {
    let deployment = Deployment::new("port");
    deployment.apply();
    let container = deployment.container_of("django");
    let inspect = |format: &str| docker(&["inspect", "-f", format, &container]);
    let labels: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&inspect("{{json .Config.Labels}}")).expect("labels");
    let env: Vec<String> = serde_json::from_str(&inspect("{{json .Config.Env}}")).expect("env");
    let image = inspect("{{.Config.Image}}");
    docker(&["rm", "-f", &container]);
    let port = free_port();
    let binding = format!("127.0.0.1:{port}:8080");
    let network = format!("{}_backend", deployment.name);
    let mut arguments: Vec<String> = [
        "run",
        "-d",
        "--name",
        &container,
        "--network",
        &network,
        "--network-alias",
        "django",
        "-p",
        &binding,
    ]
    .map(str::to_string)
    .to_vec();
    for (key, value) in &labels {
        arguments.extend(["--label".to_string(), format!("{key}={value}")]);
    }
    for entry in &env {
        arguments.extend(["-e".to_string(), entry.clone()]);
    }
    arguments.push(image);
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    assert!(!docker(&arguments).is_empty(), "docker run by hand");

    let drift = deployment.stackctl(&["drift"]);
    assert_eq!(drift.code, 2, "{}{}", drift.stdout, drift.stderr);
    assert!(
        drift.stdout.contains("service.django")
            && drift.stdout.contains("ports")
            && drift.stdout.contains(&port.to_string()),
        "{}",
        drift.stdout
    );
    let plan = deployment.stackctl(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(
        plan.stdout.contains("service.django") && plan.stdout.contains("replace"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(&format!(
            "warning (exposure widened): `service.django` publishes 127.0.0.1:{port} → 8080/tcp on the host"
        )),
        "the plan calls the port out:\n{}",
        plan.stdout
    );

    deployment.apply();
    let container = deployment.container_of("django");
    assert_eq!(docker(&["port", &container]), "", "no port after apply");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still answers"
    );
    deployment.assert_no_changes();
}
