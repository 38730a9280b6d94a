//! End to end on a droplet-shaped host: the DigitalOcean emulator hands out the address of
//! a network namespace the test builds (`stackctl_host::testing::DropletHost`: its own
//! `eth0` address, sshd on port 22 for root, its own dockerd), so `[target] droplet =
//! "web-1"` reaches it as it would a real droplet — over SSH, with no port override, to
//! a Docker daemon that is not this machine's. The edge's ports are published on that
//! daemon with iptables DNAT and no userland proxy, so requests from this machine keep
//! their own source address and the IP allowlist is tested with a client outside it.
//!
//! Prerequisites, all installed and started by `.ci/run`: root, `iproute2`, `iptables`,
//! `dockerd`, `openssh-server`, `ssh-keygen`, `curl`, and the FROM scratch test images
//! from `testing/build-images.sh`. Without them this test fails saying so; it never skips.
//!
//! It talks only to 127.0.0.1 (the emulator) and the namespace it creates; every wait is
//! bounded in count and time.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value as Json;
use stackctl_do_emulator::{Emulator, EmulatorConfig};
use stackctl_host::testing::DropletHost;
use stackctl_traefik::checks::{
    run_check, Check, CheckOptions, CheckResult, ResolveOverride, StatusExpectation, TlsTrust,
};

use support::{repository, Run, TestEnvironment};

const TOKEN: &str = "dop_v1_e2e_droplet_host_token_0123456789ab";
const NAME: &str = "e2e-droplet-host";
/// The droplet host's link is 10.210.<index>.0/29; unique among this repository's tests.
const HOST_INDEX: u8 = 211;
const FLOWER_PASSWORD: &str = "e2e-droplet-host-Flower-8812";
const IMAGES: [&str; 2] = [
    "stackctl-test/server:latest",
    "stackctl-test/traefik:3.7.15",
];

fn build_images() {
    let status = Command::new("bash")
        .arg(repository().join("testing/build-images.sh"))
        .status()
        .expect("run testing/build-images.sh (needs bash)");
    assert!(
        status.success(),
        "testing/build-images.sh failed: dockerd must be running and Traefik installed (.ci/run does both)"
    );
}

fn explain(run: &Run) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        run.code, run.stdout, run.stderr
    )
}

/// The stack of tests/e2e_droplet.rs, deployed the way a user deploys to a droplet:
/// the SSH key and known_hosts in `~/.ssh`, ports 80 and 443 on every address, and
/// nothing in `[target]` but the droplet. Only `root` is set: the droplet host shares
/// this machine's file system outside `/run`, `/var/lib/docker` and `/etc/docker`, so its
/// files go to the test's directory rather than `/var/lib/stackctl`.
fn write_stack(environment: &TestEnvironment, droplet: &DropletHost) {
    let ssh = environment.path().join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::copy(&droplet.client_key, ssh.join("id_ed25519")).unwrap();
    let public_key = format!("{}.pub", droplet.client_key.display());
    std::fs::copy(public_key, ssh.join("id_ed25519.pub")).unwrap();
    let root = environment.path().join("droplet-files");
    environment.write(
        "stack.toml",
        &format!(
            r#"[stack]
name = "{NAME}"
env_file = ".env"

[target]
droplet = "web-1"
root = "{root}"

[droplets.web-1]
region = "fra1"
size = "s-1vcpu-2gb"
image = "docker-20-04"
ssh_keys = ["deploy"]

[ssh_keys.deploy]
public_key_file = "~/.ssh/id_ed25519.pub"

[firewalls.web]
droplets = ["web-1"]
inbound = [
  {{ protocol = "tcp", ports = "22", sources = ["${{ADMIN_CIDR}}"] }},
  {{ protocol = "tcp", ports = "80" }},
  {{ protocol = "tcp", ports = "443" }},
]

[dns]
domain = "{NAME}.test"
records = [
  {{ type = "A", name = "@" }},
  {{ type = "A", name = "flower" }},
]

[edge]
image = "stackctl-test/traefik:3.7.15"
pull = false
http_port = 80
https_port = 443
admin_port = 8081

[services.web]
image = "stackctl-test/server:latest"
pull = false
port = 8080
env = {{ NAME = "web" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}
networks = ["edge"]
read_only = true

[services.api]
image = "stackctl-test/server:latest"
pull = false
port = 8080
env = {{ NAME = "api", HEALTH_PATH = "/api/health" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}
networks = ["edge", "backend"]
depends_on = ["cache"]

[services.cache]
image = "stackctl-test/server:latest"
pull = false
env = {{ NAME = "cache" }}
volumes = ["cachedata:/data"]
networks = ["backend"]

[services.flower]
image = "stackctl-test/server:latest"
pull = false
port = 8080
env = {{ NAME = "flower" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}
networks = ["edge"]
dashboard = true

[routes.web]
host = "{NAME}.test"
service = "web"
middlewares = ["secure-headers"]

[routes.api]
host = "{NAME}.test"
path_prefix = "/api"
service = "api"
middlewares = ["secure-headers"]

[routes.flower]
host = "flower.{NAME}.test"
service = "flower"
middlewares = ["secure-headers", "admins", "flower-auth"]

[middlewares.secure-headers]
type = "headers"
hsts_seconds = 31536000
content_type_nosniff = true
frame_deny = true

[middlewares.admins]
type = "ip_allow_list"
source_range = ["${{ADMIN_CIDR}}"]

[middlewares.flower-auth]
type = "basic_auth"
users = {{ admin = "${{FLOWER_PASSWORD}}" }}
realm = "flower"

[[checks]]
url = "https://{NAME}.test/"
expect_status = 200

[[checks]]
url = "https://{NAME}.test/api/health"
expect_status = 200
"#,
            root = root.display(),
        ),
    );
    environment.write(
        ".env.example",
        "ADMIN_CIDR=203.0.113.0/24\nFLOWER_PASSWORD=change-me\n",
    );
    // The operator (this machine's first address on the link) is the only admin.
    environment.write(
        ".env",
        &format!(
            "ADMIN_CIDR={}/32\nFLOWER_PASSWORD={FLOWER_PASSWORD}\n",
            droplet.operator_address
        ),
    );
}

fn stackctl(environment: &TestEnvironment, emulator: &Emulator, arguments: &[&str]) -> Run {
    environment.run_with_env(
        arguments,
        &[
            ("DIGITALOCEAN_API_URL", emulator.base_url().as_str()),
            ("DIGITALOCEAN_TOKEN", TOKEN),
            ("STACKCTL_DO_POLL_INTERVAL_MS", "50"),
            ("STACKCTL_DO_READY_TIMEOUT_SECONDS", "60"),
        ],
    )
}

/// One request from this machine to the droplet's address, whatever the URL's name.
async fn get(droplet: &DropletHost, url: &str) -> CheckResult {
    let check = Check::get("probe", url, 200).expecting(StatusExpectation::Any);
    let options = CheckOptions {
        resolve: vec![ResolveOverride::all_to(droplet.address.into())],
        tls: TlsTrust::AcceptUntrusted,
        timeout: Duration::from_secs(5),
        ..CheckOptions::default()
    };
    run_check(&check, &options).await
}

/// The status of one HTTPS request to the droplet from `source` (an address of this
/// machine), with or without the dashboard's credentials: curl can choose its source
/// address, which is the point of this request.
fn status_from(droplet: &DropletHost, source: &str, url_host: &str, login: bool) -> String {
    let mut command = Command::new("curl");
    command
        .args(["--silent", "--insecure", "--max-time", "10"])
        .args(["--output", "/dev/null", "--write-out", "%{http_code}"])
        .args(["--interface", source])
        .args(["--resolve", &format!("{url_host}:443:{}", droplet.address)]);
    if login {
        command.args(["--user", &format!("admin:{FLOWER_PASSWORD}")]);
    }
    let output = command
        .arg(format!("https://{url_host}/"))
        .output()
        .expect("curl (installed by .ci/run)");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn process_names(pids: &[u32]) -> Vec<String> {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok())
        .map(|name| name.trim().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_apply_from_an_empty_account_deploys_to_a_droplet_shaped_host_and_the_allowlist_refuses_an_outside_client(
) {
    build_images();
    let droplet = DropletHost::start(NAME, HOST_INDEX).unwrap_or_else(|error| {
        panic!("the droplet host did not start: {error}. .ci/run installs iproute2, iptables, docker.io and openssh-server")
    });
    let loaded = droplet
        .load_images(&IMAGES)
        .unwrap_or_else(|error| panic!("{error}"));
    println!("images loaded into the droplet's daemon in {loaded:.2?}");
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

    // One apply from an empty account: key, droplet, firewall, records, then the stack
    // on the droplet, reached at its own address on port 22 as root; its new host key
    // is accepted once and pinned, as for a droplet made a minute ago.
    let applied = stackctl(
        &environment,
        &emulator,
        &["apply", "--yes", "--accept-new-host-key"],
    );
    println!("apply: {}", explain(&applied));
    assert_eq!(
        applied.code,
        0,
        "the first apply: {}\n{}",
        explain(&applied),
        droplet.logs()
    );
    assert!(
        applied.stdout.contains("ok   checks[1]"),
        "the checks pass through the droplet's address: {}",
        explain(&applied)
    );
    assert!(
        !format!("{}{}", applied.stdout, applied.stderr).contains("has not loaded every route"),
        "Traefik's API answered over SSH inside the droplet: {}",
        explain(&applied)
    );
    let state = emulator.state();
    let droplets = emulator.droplets();
    assert_eq!(droplets.len(), 1, "{droplets:#?}");
    assert_eq!(
        droplets[0]["networks"]["v4"][0]["ip_address"], address,
        "the emulator handed out the droplet host's address"
    );
    for kind in ["ssh_keys", "firewalls"] {
        assert_eq!(state[kind].as_array().map_or(0, Vec::len), 1, "{state:#}");
    }
    let records: Vec<&Json> = state["domains"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|domain| domain["records"].as_array().into_iter().flatten())
        .filter(|record| record["type"] == "A")
        .collect();
    assert_eq!(records.len(), 2, "{state:#}");
    assert!(
        records
            .iter()
            .all(|record| record["data"] == address.as_str()),
        "{records:#?}"
    );

    // The stack runs on the droplet's daemon and not on this machine's, and only the
    // edge publishes ports.
    let containers = droplet
        .docker(&[
            "ps",
            "--filter",
            &format!("label=stackctl.stack={NAME}"),
            "--format",
            "{{.Names}}\t{{.Ports}}",
        ])
        .unwrap_or_else(|error| panic!("{error}"));
    println!("containers on the droplet:\n{containers}");
    assert_eq!(containers.lines().count(), 5, "{containers}");
    for line in containers.lines() {
        let (name, ports) = line.split_once('\t').unwrap_or((line, ""));
        if name == format!("{NAME}-edge") {
            for published in ["0.0.0.0:80->", "0.0.0.0:443->", "127.0.0.1:8081->"] {
                assert!(
                    ports.contains(published),
                    "the edge publishes {published}: {line}"
                );
            }
        } else {
            // `8080/tcp` is an exposed port; a published one reads `address:port->`.
            assert!(
                !ports.contains("->"),
                "only the edge publishes ports: {line}"
            );
        }
    }
    let here = Command::new("docker")
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
        here.stdout.is_empty(),
        "nothing of the stack runs on this machine's Docker"
    );
    // Published ports are DNAT rules in the droplet's namespace, with no proxy process.
    let rules = Command::new("ip")
        .args([
            "netns",
            "exec",
            &droplet.namespace,
            "iptables",
            "-t",
            "nat",
            "-S",
            "DOCKER",
        ])
        .output()
        .expect("ip netns exec iptables");
    let rules = String::from_utf8_lossy(&rules.stdout);
    assert!(
        rules.contains("--dport 443 -j DNAT"),
        "a DNAT rule for 443 in the droplet: {rules}"
    );
    let names = process_names(&droplet.processes());
    assert!(
        !names.iter().any(|name| name == "docker-proxy"),
        "no userland proxy: {names:?}"
    );

    // Through the droplet's address: HTTP redirects to HTTPS, routes answer, and the
    // edge sees this machine's own address.
    let redirect = get(&droplet, &format!("http://{NAME}.test/some/path")).await;
    assert!(matches!(redirect.status, Some(301 | 308)), "{redirect:?}");
    assert!(
        redirect
            .headers
            .get("location")
            .is_some_and(|location| location.starts_with(&format!("https://{NAME}.test/"))),
        "{:?}",
        redirect.headers
    );
    let web = get(&droplet, &format!("https://{NAME}.test/")).await;
    assert_eq!(web.status, Some(200), "{web:?}");
    assert!(web.body_excerpt.contains("\"backend\":\"web\""), "{web:?}");
    assert_eq!(
        web.connected_to.as_deref(),
        Some(format!("{address}:443").as_str())
    );
    assert_eq!(
        web.source_address,
        Some(droplet.operator_address.to_string()),
        "{web:?}"
    );
    let api = get(&droplet, &format!("https://{NAME}.test/api/health")).await;
    assert_eq!(api.status, Some(200), "{api:?}");
    assert!(api.body_excerpt.contains("\"backend\":\"api\""), "{api:?}");

    // The dashboard: basic auth for the operator, 403 for a client outside the
    // allowlist even with the right password.
    let flower = format!("flower.{NAME}.test");
    let operator = droplet.operator_address.to_string();
    let outside = droplet.outside_address.to_string();
    assert_eq!(status_from(&droplet, &operator, &flower, false), "401");
    assert_eq!(status_from(&droplet, &operator, &flower, true), "200");
    assert_eq!(status_from(&droplet, &outside, &flower, true), "403");
    assert_eq!(status_from(&droplet, &outside, &flower, false), "403");

    // Nothing left to do.
    let again = stackctl(&environment, &emulator, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        again.code,
        0,
        "a second plan should be empty: {}",
        explain(&again)
    );
    assert!(
        !again.stdout.contains("could not be read"),
        "the plan read the droplet over SSH: {}",
        explain(&again)
    );

    // Destroy empties the account and the droplet's daemon.
    let destroyed = stackctl(
        &environment,
        &emulator,
        &["destroy", "--yes", "--allow-data-loss"],
    );
    assert_eq!(destroyed.code, 0, "destroy: {}", explain(&destroyed));
    assert!(emulator.droplets().is_empty());
    let label = format!("label=stackctl.stack={NAME}");
    for kind in [["ps", "-a"], ["network", "ls"], ["volume", "ls"]] {
        let left = droplet
            .docker(&[kind[0], kind[1], "-q", "--filter", &label])
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(left, "", "no {} of the stack on the droplet", kind[0]);
    }

    // The host leaves nothing behind: no process, namespace, link, mount or directory.
    let pids = droplet.processes();
    let namespace = droplet.namespace.clone();
    let teardown = droplet.stop();
    println!("droplet host torn down in {:.2?}", teardown.duration);
    assert!(
        teardown.leftovers.is_empty(),
        "nothing is left: {:?}",
        teardown.leftovers
    );
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z"),
            "process {pid} is gone: {stat}"
        );
    }
    let namespaces = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    assert!(!String::from_utf8_lossy(&namespaces.stdout).contains(&namespace));
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains("stackctl-droplet-"), "{mounts}");
}
