//! The harness of `bench/swarm` (issue 13, point 6): the same stack deployed and updated
//! on a three-node swarm, a one-node swarm and a plain single droplet, timed. Not a
//! test: it is `#[ignore]`d, so `cargo test` never runs it; `bench/swarm` runs it with
//! `--ignored` and reads its table from standard output.
//!
//! The stack: the test server as a routed service (`web`, 2 replicas on a swarm, spread
//! by Swarm over the nodes; one container on a single droplet, which has no replicas),
//! one unrouted service (`worker`), and the Traefik edge on the first manager. Each run:
//!
//! 1. full deploy: `stackctl apply --yes --skip-checks` from nothing (the emulator's
//!    droplets, the swarm, the networks, the services, the edge), until every task runs;
//! 2. one-service update of the unrouted service (its env changes): Swarm's rolling
//!    update on a swarm, a container replaced on a droplet;
//! 3. one-service update of the routed service (its env changes): the exact switch
//!    through the edge (a successor service, or a successor container on a droplet);
//! 4. `stackctl destroy --yes --allow-data-loss` (the swarm is dissolved, the droplets
//!    deleted from the emulator), timed too.
//!
//! Each stackctl command must succeed and each update's plan be exactly one action, or
//! the bench fails saying which.
//!
//! The droplet hosts (`SwarmHosts`, links 245-247) and the DigitalOcean emulator are
//! started once and shared by every scenario and run: destroy leaves each node out of
//! any swarm and each daemon without the stack.
//!
//! Settings, from the environment: `BENCH_SWARM_RUNS` (default 3) and
//! `BENCH_SWARM_SCENARIOS` (default `swarm-3,swarm-1,droplet,move`; `move` runs once: a
//! single-droplet stack deployed, then moved to the three-node swarm — its plan is
//! printed for the README and its apply timed).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use stackctl_do_emulator::{Emulator, EmulatorConfig};
use stackctl_host::testing::SwarmHosts;

use support::{repository, Run, TestEnvironment};

const TOKEN: &str = "dop_v1_bench_swarm_token_0123456789abcdef01";
const SERVER_IMAGE: &str = "stackctl-test/server:latest";
const TRAEFIK_IMAGE: &str = "stackctl-test/traefik:3.7.15";
const NODES: [&str; 3] = ["web-1", "web-2", "web-3"];
/// Links 10.210.245-247 (`DropletHost::start(` and `start_hosts(` name the others'; the
/// verify test of `tests/e2e_swarm_verify.rs` uses 248-249).
const FIRST_INDEX: u8 = 245;

#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    /// `[target.swarm]` with one manager and two workers.
    ThreeNodes,
    /// `[target.swarm]` with one manager and nothing else.
    OneNode,
    /// `[target] droplet`: containers, no swarm.
    Droplet,
}

impl Scenario {
    fn parse(name: &str) -> Scenario {
        match name.trim() {
            "swarm-3" => Scenario::ThreeNodes,
            "swarm-1" => Scenario::OneNode,
            "droplet" => Scenario::Droplet,
            other => panic!("unknown scenario `{other}`: one of swarm-3, swarm-1, droplet, move"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Scenario::ThreeNodes => "swarm, 3 nodes",
            Scenario::OneNode => "swarm, 1 node",
            Scenario::Droplet => "single droplet",
        }
    }

    fn stack_name(self) -> &'static str {
        match self {
            Scenario::ThreeNodes => "bench-swarm-3",
            Scenario::OneNode => "bench-swarm-1",
            Scenario::Droplet => "bench-swarm-droplet",
        }
    }
}

/// One run's wall times, in seconds.
struct Timings {
    deploy: f64,
    update_unrouted: f64,
    update_routed: f64,
    destroy: f64,
}

fn build_images() {
    let status = Command::new("bash")
        .arg(repository().join("testing/build-images.sh"))
        .status()
        .expect("run testing/build-images.sh (needs bash)");
    assert!(
        status.success(),
        "testing/build-images.sh failed: dockerd must be running and Traefik installed"
    );
}

fn explain(run: &Run) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        run.code, run.stdout, run.stderr
    )
}

/// The stack for `scenario`; `version` goes into each service's env, so changing one
/// of them is a one-service update.
fn stack_text(
    scenario: Scenario,
    name: &str,
    hosts: &SwarmHosts,
    root: &std::path::Path,
    web_version: u32,
    worker_version: u32,
) -> String {
    let nodes: &[&str] = match scenario {
        Scenario::ThreeNodes => &NODES,
        Scenario::OneNode | Scenario::Droplet => &NODES[..1],
    };
    let target = match scenario {
        Scenario::ThreeNodes => {
            "[target.swarm]\nmanagers = [\"web-1\"]\nworkers = [\"web-2\", \"web-3\"]\n"
        }
        Scenario::OneNode => "[target.swarm]\nmanagers = [\"web-1\"]\n",
        Scenario::Droplet => "",
    };
    let droplet = if scenario == Scenario::Droplet {
        "droplet = \"web-1\"\n"
    } else {
        ""
    };
    // Replicas and the endpoint mode exist on a swarm only (this kernel has no IPVS).
    let swarm_keys = if scenario == Scenario::Droplet {
        ""
    } else {
        "replicas = 2\nendpoint_mode = \"dnsrr\"\n"
    };
    let droplets: String = nodes
        .iter()
        .map(|node| {
            format!(
                "\n[droplets.{node}]\nregion = \"fra1\"\nsize = \"s-1vcpu-2gb\"\nimage = \"docker-20-04\"\nssh_keys = [\"deploy\"]\n"
            )
        })
        .collect();
    format!(
        r#"[stack]
name = "{name}"

[target]
{droplet}identity_file = "{identity}"
known_hosts = "{known_hosts}"
root = "{root}"

{target}{droplets}
[ssh_keys.deploy]
public_key_file = "{identity}.pub"

[edge]
image = "{TRAEFIK_IMAGE}"
pull = false
http_port = 80
https_port = 443
admin_port = 8081

[services.web]
image = "{SERVER_IMAGE}"
pull = false
port = 8080
env = {{ NAME = "web", VERSION = "{web_version}" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}
networks = ["edge"]
read_only = true
{swarm_keys}
[services.worker]
image = "{SERVER_IMAGE}"
pull = false
env = {{ NAME = "worker", VERSION = "{worker_version}" }}
health = {{ command = ["CMD", "/server", "health"], interval = "1s", retries = 30 }}
read_only = true

[routes.web]
host = "{name}.test"
service = "web"
"#,
        identity = hosts.client_key.display(),
        known_hosts = hosts.known_hosts.display(),
        root = root.display(),
    )
}

struct Bench<'a> {
    hosts: &'a SwarmHosts,
    emulator: &'a Emulator,
}

impl Bench<'_> {
    fn stackctl(&self, environment: &TestEnvironment, arguments: &[&str]) -> Run {
        environment.run_with_env(
            arguments,
            &[
                ("DIGITALOCEAN_API_URL", self.emulator.base_url().as_str()),
                ("DIGITALOCEAN_TOKEN", TOKEN),
                ("STACKCTL_DO_POLL_INTERVAL_MS", "50"),
                ("STACKCTL_DO_READY_TIMEOUT_SECONDS", "60"),
            ],
        )
    }

    /// Runs `arguments`, fails the bench unless it succeeds, and returns its wall time.
    fn timed(&self, environment: &TestEnvironment, what: &str, arguments: &[&str]) -> f64 {
        let started = Instant::now();
        let run = self.stackctl(environment, arguments);
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(
            run.code,
            0,
            "{what}: {}\n{}",
            explain(&run),
            self.hosts.logs()
        );
        seconds
    }

    /// The plan after a one-service change is exactly one action, on that service.
    fn expect_one_action(&self, environment: &TestEnvironment, service: &str) {
        let plan = self.stackctl(environment, &["plan", "--detailed-exitcode"]);
        assert_eq!(plan.code, 2, "a change is planned: {}", explain(&plan));
        let summary = plan
            .stdout
            .lines()
            .find(|line| line.starts_with("Plan: "))
            .unwrap_or_else(|| panic!("no summary line: {}", explain(&plan)));
        // "Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 0 to adopt; …"
        let actions: u32 = summary
            .split(';')
            .next()
            .unwrap_or_default()
            .split(',')
            .filter_map(|part| {
                part.split_whitespace()
                    .find_map(|word| word.parse::<u32>().ok())
            })
            .sum();
        assert!(
            actions == 1 && plan.stdout.contains(&format!("service.{service}")),
            "one action, on {service}: {}",
            plan.stdout
        );
    }

    /// Moves a single-droplet stack to a three-node swarm, once: deploys the droplet's
    /// stack, prints the plan of the move (the same stack name, services and versions,
    /// for the README), applies it (timed: the stack's services are down meanwhile),
    /// checks the plan is then empty, and destroys the swarm's stack.
    fn move_once(&self) -> (f64, f64) {
        let environment = TestEnvironment::new();
        let root = environment.path().join("manager-files");
        let name = Scenario::Droplet.stack_name();
        let write = |scenario: Scenario| {
            environment.write(
                "stack.toml",
                &stack_text(scenario, name, self.hosts, &root, 0, 0),
            )
        };
        write(Scenario::Droplet);
        self.timed(
            &environment,
            "the droplet's deploy before the move",
            &["apply", "--yes", "--accept-new-host-key", "--skip-checks"],
        );
        write(Scenario::ThreeNodes);
        let plan = self.stackctl(&environment, &["plan"]);
        assert!(plan.code == 0, "the plan of the move: {}", explain(&plan));
        println!("BENCH-SWARM-MOVE-PLAN-BEGIN");
        print!("{}", environment.filter(&plan.stdout));
        println!("BENCH-SWARM-MOVE-PLAN-END");
        let moved = self.timed(
            &environment,
            "the move to a swarm",
            &["apply", "--yes", "--accept-new-host-key", "--skip-checks"],
        );
        let settled = self.stackctl(&environment, &["plan", "--detailed-exitcode"]);
        assert_eq!(
            settled.code,
            0,
            "settled after the move: {}",
            explain(&settled)
        );
        let destroyed = self.timed(
            &environment,
            "destroy after the move",
            &["destroy", "--yes", "--allow-data-loss"],
        );
        (moved, destroyed)
    }

    fn run_once(&self, scenario: Scenario) -> Timings {
        let environment = TestEnvironment::new();
        let root = environment.path().join("manager-files");
        let write = |web: u32, worker: u32| {
            environment.write(
                "stack.toml",
                &stack_text(
                    scenario,
                    scenario.stack_name(),
                    self.hosts,
                    &root,
                    web,
                    worker,
                ),
            )
        };
        write(0, 0);
        let deploy = self.timed(
            &environment,
            "full deploy",
            &["apply", "--yes", "--accept-new-host-key", "--skip-checks"],
        );
        write(0, 1);
        self.expect_one_action(&environment, "worker");
        let update_unrouted = self.timed(
            &environment,
            "unrouted update",
            &["apply", "--yes", "--skip-checks"],
        );
        write(1, 1);
        self.expect_one_action(&environment, "web");
        let update_routed = self.timed(
            &environment,
            "routed update",
            &["apply", "--yes", "--skip-checks"],
        );
        let settled = self.stackctl(&environment, &["plan", "--detailed-exitcode"]);
        assert_eq!(settled.code, 0, "settled: {}", explain(&settled));
        let destroy = self.timed(
            &environment,
            "destroy",
            &["destroy", "--yes", "--allow-data-loss"],
        );
        Timings {
            deploy,
            update_unrouted,
            update_routed,
            destroy,
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

fn seconds(values: &[f64]) -> String {
    values
        .iter()
        .map(|value| format!("{value:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: bench/swarm runs it"]
async fn bench_swarm() {
    let runs: usize = std::env::var("BENCH_SWARM_RUNS")
        .ok()
        .map(|value| value.parse().expect("BENCH_SWARM_RUNS is a number"))
        .unwrap_or(3);
    assert!((1..=50).contains(&runs), "BENCH_SWARM_RUNS: 1 to 50");
    let names = std::env::var("BENCH_SWARM_SCENARIOS")
        .unwrap_or_else(|_| "swarm-3,swarm-1,droplet,move".to_string());
    let with_move = names.split(',').any(|name| name.trim() == "move");
    let scenarios: Vec<Scenario> = names
        .split(',')
        .filter(|name| name.trim() != "move")
        .map(Scenario::parse)
        .collect();

    build_images();
    let started = Instant::now();
    let names: Vec<String> = (1..=3).map(|number| format!("bsw-{number}")).collect();
    let specs: Vec<(&str, u8)> = names
        .iter()
        .enumerate()
        .map(|(offset, name)| (name.as_str(), FIRST_INDEX + offset as u8))
        .collect();
    let hosts = SwarmHosts::start(&specs).unwrap_or_else(|error| {
        panic!("the droplet hosts did not start: {error} (needs root, iproute2, iptables, dockerd, sshd)")
    });
    hosts
        .load_images(&[SERVER_IMAGE, TRAEFIK_IMAGE])
        .unwrap_or_else(|error| panic!("{error}"));
    eprintln!(
        "bench/swarm: 3 droplet hosts up with the images in {:.1?}",
        started.elapsed()
    );
    let emulator = Emulator::start(EmulatorConfig {
        token: TOKEN.to_string(),
        public_ipv4_by_name: NODES
            .iter()
            .zip(&hosts.hosts)
            .map(|(node, host)| (node.to_string(), host.address.to_string()))
            .collect(),
        activation_delay: Duration::from_millis(150),
        action_delay: Duration::from_millis(50),
        ..EmulatorConfig::default()
    })
    .await
    .expect("the emulator starts on 127.0.0.1");
    let bench = Bench {
        hosts: &hosts,
        emulator: &emulator,
    };

    let mut rows = Vec::new();
    for scenario in &scenarios {
        let mut all = Vec::new();
        for run in 1..=runs {
            let timings = tokio::task::block_in_place(|| bench.run_once(*scenario));
            eprintln!(
                "bench/swarm: {} run {run}: deploy {:.2} s, unrouted update {:.2} s, routed update {:.2} s, destroy {:.2} s",
                scenario.label(),
                timings.deploy,
                timings.update_unrouted,
                timings.update_routed,
                timings.destroy
            );
            all.push(timings);
        }
        rows.push((*scenario, all));
    }
    let moved = with_move.then(|| tokio::task::block_in_place(|| bench.move_once()));

    let mut table = String::new();
    table.push_str(&format!(
        "{:<16} {:>12} {:>16} {:>15} {:>9}\n",
        "target", "full deploy", "update unrouted", "update routed", "destroy"
    ));
    table.push_str(&format!("{}\n", "-".repeat(72)));
    let mut details = String::new();
    for (scenario, all) in &rows {
        let column = |pick: fn(&Timings) -> f64| all.iter().map(pick).collect::<Vec<f64>>();
        let deploy = column(|timings| timings.deploy);
        let unrouted = column(|timings| timings.update_unrouted);
        let routed = column(|timings| timings.update_routed);
        let destroy = column(|timings| timings.destroy);
        table.push_str(&format!(
            "{:<16} {:>10.2} s {:>14.2} s {:>13.2} s {:>7.2} s\n",
            scenario.label(),
            median(deploy.clone()),
            median(unrouted.clone()),
            median(routed.clone()),
            median(destroy.clone()),
        ));
        details.push_str(&format!(
            "{}: deploy {}; update unrouted {}; update routed {}; destroy {} (s)\n",
            scenario.label(),
            seconds(&deploy),
            seconds(&unrouted),
            seconds(&routed),
            seconds(&destroy)
        ));
    }
    println!("BENCH-SWARM-TABLE-BEGIN");
    print!("{table}");
    println!();
    print!("{details}");
    if let Some((moved, destroyed)) = moved {
        println!(
            "move of the deployed single-droplet stack to the 3-node swarm (once): apply {moved:.2} s, then destroy {destroyed:.2} s"
        );
    }
    println!("BENCH-SWARM-TABLE-END");
}
