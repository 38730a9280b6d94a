//! The droplet-shaped host (`stackctl_host::testing::DropletHost`): a network namespace
//! with its own address, sshd on port 22 and dockerd, reached through the real SSH
//! transport, and torn down leaving nothing behind — also after a run that crashed.
//!
//! Needs root, `iproute2`, `util-linux`, `iptables`, `docker.io` and `openssh-server`
//! (all installed by `.ci/run`); without them these tests fail saying so.

use std::time::Duration;

use serde_json::Value as Json;
use stackctl_host::testing::DropletHost;
use stackctl_host::{Host, LocalHost, SshHost};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn start(name: &str, index: u8) -> DropletHost {
    DropletHost::start(name, index).unwrap_or_else(|error| {
        panic!("the droplet host did not start: {error}. .ci/run installs iproute2, iptables, docker.io and openssh-server")
    })
}

/// `GET /info` of the Engine API over a stream the host opened: the daemon's identity.
async fn docker_info(host: &dyn Host) -> Json {
    let mut stream = host
        .docker_stream()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    stream
        .write_all(b"GET /info HTTP/1.0\r\nHost: docker\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the Engine API answers within 10 s")
        .unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    assert!(text.starts_with("HTTP/1.0 200"), "{text}");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    // HTTP/1.0: Docker answers with a plain body, not chunks.
    serde_json::from_str(body.trim()).unwrap_or_else(|error| panic!("{error}: {text}"))
}

/// `GET /` over plain TCP, retried for up to 10 s while the container starts.
fn http_get(address: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    while std::time::Instant::now() < deadline {
        if let Ok(mut stream) =
            std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1))
        {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.write_all(b"GET / HTTP/1.0\r\nHost: probe\r\n\r\n");
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.starts_with("HTTP/") {
                return answer;
            }
            last = answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    format!("no answer from {address} within 10 s (last: {last:?})")
}

fn network_namespaces() -> String {
    let output = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip (iproute2)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn assert_gone(host_name: &str, namespace: &str, pids: &[u32]) {
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // A zombie (state Z) of a forgotten child has no resources left; anything else
        // is a process still running.
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        assert!(
            state.is_none() || state == Some('Z'),
            "process {pid} of {host_name} still runs: {stat}"
        );
    }
    assert!(
        !network_namespaces().contains(namespace),
        "the namespace {namespace} is gone"
    );
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        !mounts.contains(&format!("stackctl-droplet-{host_name}")),
        "no mount of the host is left:\n{mounts}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_logs_in_on_port_22_of_the_droplet_address_and_reaches_a_docker_daemon_of_its_own_and_a_stop_with_a_running_container_leaves_nothing(
) {
    let droplet = start("host-test", 201);
    assert_eq!(droplet.address.to_string(), "10.210.201.2");
    assert!(droplet.startup < Duration::from_secs(60));

    let host = SshHost::connect(droplet.ssh_options())
        .await
        .unwrap_or_else(|error| panic!("{error}\n{}", droplet.logs()));
    assert_eq!(host.describe(), "root@10.210.201.2:22");
    // stackctl's own transport forwards /var/run/docker.sock on the droplet: it must be
    // the droplet's daemon, not this machine's.
    let remote = docker_info(&host).await;
    let local = docker_info(&LocalHost::new()).await;
    assert_ne!(
        remote["ID"], local["ID"],
        "the droplet's /var/run/docker.sock is its own daemon"
    );
    assert_eq!(
        remote["Name"], "host-test",
        "the droplet has its own hostname"
    );
    assert_eq!(remote["DockerRootDir"], "/var/lib/docker");
    assert_eq!(remote["Containers"], 0, "a fresh daemon: {remote:#}");
    let direct = droplet
        .docker(&["info", "--format", "{{.ID}}"])
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        Json::String(direct),
        remote["ID"],
        "the test's own socket reaches the same daemon"
    );
    drop(host);

    // A container publishing a port is reached from this machine through the droplet's
    // address (DNAT in its namespace), and is still running when the host is stopped.
    droplet
        .load_images(&["stackctl-test/server:latest"])
        .unwrap_or_else(|error| {
            panic!("{error}: testing/build-images.sh builds the image (.ci/run runs it)")
        });
    droplet
        .docker(&[
            "run",
            "--detach",
            "--name",
            "probe",
            "--publish",
            "8080:8080",
            "--env",
            "NAME=probe",
            "stackctl-test/server:latest",
        ])
        .unwrap_or_else(|error| panic!("{error}\n{}", droplet.logs()));
    let answer = http_get((droplet.address, 8080).into());
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("\"backend\":\"probe\""),
        "{answer}"
    );

    let pids = droplet.processes();
    let names: Vec<String> = pids
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok())
        .map(|name| name.trim().to_string())
        .collect();
    for daemon in ["sshd", "dockerd", "containerd", "server"] {
        assert!(
            names.iter().any(|name| name == daemon),
            "{daemon} is one of the host's processes: {names:?}"
        );
    }
    let namespace = droplet.namespace.clone();
    let teardown = droplet.stop();
    assert!(
        teardown.leftovers.is_empty(),
        "nothing is left: {:?}",
        teardown.leftovers
    );
    assert!(teardown.duration < Duration::from_secs(45));
    assert_gone("host-test", &namespace, &pids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_run_is_torn_down_by_the_next_start_under_the_same_name() {
    let crashed = start("host-crash", 202);
    let pids = crashed.processes();
    assert!(!pids.is_empty());
    // A crash: nothing runs the teardown, the daemons and the namespace stay.
    std::mem::forget(crashed);
    assert!(network_namespaces().contains("stackctl-host-crash"));

    let again = start("host-crash", 202);
    assert!(
        pids.iter().all(|pid| !again.processes().contains(pid)),
        "the earlier daemons are gone"
    );
    let namespace = again.namespace.clone();
    let teardown = again.stop();
    assert!(
        teardown.leftovers.is_empty(),
        "nothing is left: {:?}",
        teardown.leftovers
    );
    assert_gone("host-crash", &namespace, &pids);
}

#[test]
fn a_name_or_index_outside_the_rules_is_refused_before_anything_is_made() {
    let error = DropletHost::start("Web_1", 5).err().expect("refused");
    assert!(error.contains("a-z, 0-9"), "{error}");
    let error = DropletHost::start("web", 0).err().expect("refused");
    assert!(error.contains("1 to 254"), "{error}");
}
