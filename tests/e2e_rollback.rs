//! End to end: `stackctl rollback` and `stackctl ps` on this machine's real Docker daemon
//! and a real Traefik, through the real `stackctl` binary. A routed service is built from
//! a context (`FROM stackctl-test/server:latest` with its version in `ECHO_ENV`, which the
//! test server echoes in every answer), deployed as v1, then as a bad v2; the rollback
//! brings v1 back through the same swap, under load through the edge, with no failed
//! request. `.ci/run` starts dockerd and builds the test images first; without them this
//! test fails, it never skips.

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::edge::{get, wait_for};
use support::TestEnvironment;

const STACK: &str = "e2e-rollback";
const HTTP: u16 = 29480;
const HTTPS: u16 = 29843;
const ADMIN: u16 = 29481;
const SECRET: &str = "rollback-Secret-27182818";

fn docker(arguments: &[&str]) -> String {
    let output = Command::new("docker")
        .args(arguments)
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// `.ci/run` builds the test images (testing/build-images.sh) before the tests.
fn require_the_test_images() {
    for image in [
        "stackctl-test/server:latest",
        "stackctl-test/traefik:3.7.15",
    ] {
        assert!(
            !docker(&["image", "ls", "-q", image]).is_empty(),
            "`{image}` is missing: run testing/build-images.sh"
        );
    }
}

/// Removes every container, network, volume and image labelled as this test's stack.
fn remove_leftovers() {
    let label = format!("label=stackctl.stack={STACK}");
    for id in docker(&["ps", "-a", "-q", "--filter", &label]).split_whitespace() {
        docker(&["rm", "-f", id]);
    }
    for kind in ["network", "volume"] {
        for name in docker(&[kind, "ls", "-q", "--filter", &label]).split_whitespace() {
            docker(&[kind, "rm", name]);
        }
    }
    for image in stack_images() {
        docker(&["image", "rm", "-f", &image]);
    }
}

/// The ids of the images labelled as this stack's, sorted.
fn stack_images() -> Vec<String> {
    let label = format!("label=stackctl.stack={STACK}");
    let mut ids: Vec<String> = docker(&["image", "ls", "-q", "--no-trunc", "--filter", &label])
        .split_whitespace()
        .map(str::to_string)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The stack, serving `version` (baked into the image, so only a rebuild changes it).
fn write_stack(environment: &TestEnvironment, version: &str) {
    environment.write(
        "app/Dockerfile",
        &format!("FROM stackctl-test/server:latest\nENV ECHO_ENV={version}\n"),
    );
    environment.write(
        "stack.toml",
        &format!(
            r#"
[stack]
name = "{STACK}"
keep_images = 2

[target]
host = "local"
root = "{root}"

[edge]
image = "stackctl-test/traefik:3.7.15"
pull = false
bind_address = "127.0.0.1"
http_port = {HTTP}
https_port = {HTTPS}
admin_port = {ADMIN}

[services.web]
build = "app"
port = 8080
env = {{ NAME = "web", API_SECRET_KEY = "${{API_SECRET_KEY}}" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}
networks = ["edge"]

[routes.web]
host = "example.test"
service = "web"
"#,
            root = environment.path().join("host-root").display(),
        ),
    );
}

fn stackctl(environment: &TestEnvironment, arguments: &[&str]) -> support::Run {
    environment.run_with_env(arguments, &[("API_SECRET_KEY", SECRET)])
}

fn url(path: &str) -> String {
    format!("https://example.test:{HTTPS}{path}")
}

/// The history file as JSON.
fn history(environment: &TestEnvironment) -> serde_json::Value {
    serde_json::from_str(&environment.read(&format!("state/{STACK}.history.json")))
        .expect("the history file is JSON")
}

/// The tag and image id entry `id` ran for `image.web`.
fn web_image_of(environment: &TestEnvironment, id: u64) -> (String, String) {
    let history = history(environment);
    let entry = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["id"] == id)
        .unwrap_or_else(|| panic!("no history entry {id}: {history:#}"));
    let image = entry["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|image| image["address"] == "image.web")
        .unwrap();
    (
        image["reference"].as_str().unwrap().to_string(),
        image["image_id"].as_str().unwrap().to_string(),
    )
}

fn apply(environment: &TestEnvironment) {
    let run = stackctl(environment, &["apply", "--yes"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollback_restores_the_previous_version_under_load_ps_shows_what_runs_and_old_images_are_pruned(
) {
    require_the_test_images();
    remove_leftovers();
    let environment = TestEnvironment::new();

    // v1, then nothing earlier to roll back to.
    write_stack(&environment, "v1");
    apply(&environment);
    let served = wait_for(&url("/"), |result| result.body_excerpt.contains("\"v1\"")).await;
    assert!(served.body_excerpt.contains("\"env\":\"v1\""), "{served:?}");
    let nothing = stackctl(&environment, &["rollback", "--yes"]);
    assert_eq!(nothing.code, 1, "{}\n{}", nothing.stdout, nothing.stderr);
    assert!(
        nothing
            .stderr
            .contains("there is no earlier apply to roll back to"),
        "{}",
        nothing.stderr
    );

    // A bad v2 passes its health check and serves the wrong body.
    write_stack(&environment, "v2-bad");
    apply(&environment);
    let served = wait_for(&url("/"), |result| result.body_excerpt.contains("v2-bad")).await;
    assert!(served.body_excerpt.contains("v2-bad"), "{served:?}");

    // `ps`: the live containers with health, uptime, restarts and the route reaching web.
    // Docker's own health check reports `starting` until its first probe (1s interval).
    let deadline = Instant::now() + Duration::from_secs(30);
    let ps = loop {
        let ps = stackctl(&environment, &["ps"]);
        assert_eq!(ps.code, 0, "{}\n{}", ps.stdout, ps.stderr);
        if ps.stdout.contains(" healthy ") || Instant::now() > deadline {
            break ps;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let web_line = ps
        .stdout
        .lines()
        .find(|line| line.starts_with("web "))
        .unwrap_or_else(|| panic!("{}", ps.stdout));
    assert!(
        web_line.contains("running")
            && web_line.contains("healthy")
            && web_line.contains("web: Host(`example.test`)"),
        "{}",
        ps.stdout
    );
    let ps_json = stackctl(&environment, &["ps", "--format", "json"]);
    assert_eq!(ps_json.code, 0, "{}", ps_json.stderr);
    let document: serde_json::Value = serde_json::from_str(&ps_json.stdout).unwrap();
    let (v2_tag, _) = web_image_of(&environment, 2);
    let web = document["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|service| service["service"] == "web")
        .unwrap();
    assert_eq!(web["image"], v2_tag.as_str());
    let live_id = docker(&[
        "inspect",
        "--format",
        "{{.Id}}",
        web["container"].as_str().unwrap(),
    ]);
    assert_eq!(
        web["container_id"],
        live_id.as_str(),
        "read from the daemon"
    );
    insta::assert_snapshot!("ps_json", stable_ps(&ps_json.stdout, &v2_tag));

    // The history lists both applies, with who and what changed.
    let list = stackctl(&environment, &["rollback", "--list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(
        list.stdout.contains("running now") && list.stdout.contains("~ image.web"),
        "{}",
        list.stdout
    );
    assert!(!environment
        .read(&format!("state/{STACK}.history.json"))
        .contains(SECRET));

    // Rollback under load through the edge: every request answered 200.
    let sent = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (sent, failed, stop) = (sent.clone(), failed.clone(), stop.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let mut last_body = String::new();
            while !stop.load(Ordering::Relaxed)
                && sent.load(Ordering::Relaxed) < 20_000
                && started.elapsed() < Duration::from_secs(120)
            {
                let result = get(&url("/")).await;
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
    let mut command = environment.command(&["rollback", "--yes"]);
    command.env("API_SECRET_KEY", SECRET);
    let rollback = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("rollback");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let last_body = load.await.unwrap();
    let stdout = String::from_utf8_lossy(&rollback.stdout);
    let stderr = String::from_utf8_lossy(&rollback.stderr);
    assert!(rollback.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("rollback: back to what history entry 1 applied"),
        "{stdout}"
    );
    assert!(
        stdout.contains("secret values and each service's env are the current ones"),
        "{stdout}"
    );
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
    assert!(sent.load(Ordering::Relaxed) > 20, "the load loop ran");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during the rollback ({} sent)",
        sent.load(Ordering::Relaxed)
    );
    assert!(
        last_body.contains("\"env\":\"v1\""),
        "v1 serves: {last_body}"
    );
    let (v1_tag, v1_id) = web_image_of(&environment, 1);
    assert_eq!(
        docker(&[
            "ps",
            "--filter",
            &format!("label=stackctl.stack={STACK}"),
            "--filter",
            "label=stackctl.resource=service.web",
            "--format",
            "{{.Image}}",
        ]),
        v1_tag,
        "one web container, running v1's image"
    );

    // Afterwards the plan shows how stack.toml differs, saying the target was rolled back.
    let plan = stackctl(&environment, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout
            .contains("rolled back to history entry 1 by `stackctl rollback`"),
        "{}",
        plan.stdout
    );
    let plan_json = stackctl(&environment, &["plan", "--format", "json"]);
    let document: serde_json::Value = serde_json::from_str(&plan_json.stdout).unwrap();
    let reasons: Vec<&serde_json::Value> = document["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|action| &action["reason"])
        .collect();
    assert!(
        reasons.iter().any(|reason| reason["code"] == "rolled_back"
            && reason["message"]
                .as_str()
                .is_some_and(|message| message.contains("history entry 1"))),
        "{reasons:?}"
    );

    // Pruning keeps exactly the images of the last 2 applies (`keep_images = 2`).
    write_stack(&environment, "v3");
    apply(&environment);
    let (_, v3_id) = web_image_of(&environment, 4);
    let mut expected = vec![v1_id.clone(), v3_id.clone()];
    expected.sort();
    assert_eq!(stack_images(), expected, "entries 3 (v1 again) and 4 (v3)");
    write_stack(&environment, "v4");
    apply(&environment);
    let (_, v4_id) = web_image_of(&environment, 5);
    let mut expected = vec![v3_id.clone(), v4_id];
    expected.sort();
    assert_eq!(stack_images(), expected, "entries 4 (v3) and 5 (v4)");

    // A rollback to an apply whose image was pruned is refused, naming the image.
    let pruned = stackctl(&environment, &["rollback", "--to", "2", "--yes"]);
    assert_eq!(pruned.code, 1, "{}\n{}", pruned.stdout, pruned.stderr);
    assert!(
        pruned
            .stderr
            .contains("cannot roll back to history entry 2")
            && pruned.stderr.contains(&v2_tag),
        "{}",
        pruned.stderr
    );
    // And so is one whose image was removed by hand; nothing changes either way.
    let (v3_tag, _) = web_image_of(&environment, 4);
    docker(&["image", "rm", &v3_tag]);
    let removed = stackctl(&environment, &["rollback", "--yes"]);
    assert_eq!(removed.code, 1, "{}\n{}", removed.stdout, removed.stderr);
    assert!(
        removed
            .stderr
            .contains("cannot roll back to history entry 4")
            && removed.stderr.contains(&v3_tag)
            && removed.stderr.contains("image.web"),
        "{}",
        removed.stderr
    );
    let served = get(&url("/")).await;
    assert!(served.body_excerpt.contains("\"env\":\"v4\""), "{served:?}");

    let destroy = stackctl(&environment, &["destroy", "--yes", "--allow-data-loss"]);
    assert_eq!(destroy.code, 0, "{}\n{}", destroy.stdout, destroy.stderr);
    assert_eq!(
        stack_images(),
        Vec::<String>::new(),
        "the images kept for rollback go with the stack"
    );
    remove_leftovers();
}

/// `ps --format json` with what changes from run to run (ids, times, the build's tag)
/// replaced, so the document's shape and values are compared.
fn stable_ps(text: &str, web_tag: &str) -> String {
    let mut document: serde_json::Value = serde_json::from_str(text).unwrap();
    for service in document["services"].as_array_mut().unwrap() {
        for (field, placeholder) in [("container_id", "[CONTAINER ID]"), ("started_at", "[TIME]")] {
            if service[field].is_string() {
                service[field] = serde_json::Value::from(placeholder);
            }
        }
        // A swapped routed service's container carries a hash suffix.
        if let Some(container) = service["container"].as_str() {
            if container.starts_with(&format!("{STACK}-web")) {
                service["container"] = serde_json::Value::from(format!("{STACK}-web[-SUFFIX]"));
            }
        }
    }
    serde_json::to_string_pretty(&document)
        .unwrap()
        .replace(web_tag, "[WEB TAG]")
}
