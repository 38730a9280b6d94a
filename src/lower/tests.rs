//! Lowering, one behaviour per test: a small stack.toml in, the resources, attributes
//! and dependency edges that matter out. (The whole reference plan is snapshot-tested
//! in tests/cli.rs; these name what each part of lowering promises.)

use stackctl_provider::{Address, ReplaceOrder, Resource, Value};

use crate::config::{load_text, LoadOptions, LoadedConfig, SourceFile};
use crate::context::ExternalInputs;

const LOCAL: &str = "[stack]\nname = \"shop\"\n\n[target]\nhost = \"local\"\n";
const ON_A_DROPLET: &str = r#"
[stack]
name = "shop"

[droplets.web]
region = "fra1"
size = "s-1vcpu-1gb"
image = "docker-20-04"
ssh_keys = ["deploy"]

[ssh_keys.deploy]
public_key = "ssh-ed25519 AAAA deploy@example "
"#;

/// Loads `text` as stack.toml (validated: a test stack must be a valid one).
fn load(text: &str) -> LoadedConfig {
    // An empty directory: no `.env.example` or env file of this repository interferes.
    let directory = tempfile::tempdir().expect("a temporary directory");
    let source = SourceFile {
        name: "stack.toml".to_string(),
        text: text.to_string(),
    };
    let options = LoadOptions {
        process_environment: [("DB_PASSWORD".to_string(), "hunter2".to_string())].into(),
        ..LoadOptions::default()
    };
    match load_text(source, directory.path(), &options) {
        Ok(loaded) => loaded,
        Err(errors) => panic!("the test stack is invalid: {:#?}", errors.diagnostics),
    }
}

fn lowered(text: &str) -> Vec<Resource> {
    crate::lower::lower(&load(text), &ExternalInputs::default(), "salt")
}

fn find<'a>(resources: &'a [Resource], address: &str) -> &'a Resource {
    resources
        .iter()
        .find(|resource| resource.address.to_string() == address)
        .unwrap_or_else(|| panic!("no `{address}` among {:?}", addresses(resources)))
}

fn addresses(resources: &[Resource]) -> Vec<String> {
    resources
        .iter()
        .map(|resource| resource.address.to_string())
        .collect()
}

fn attribute<'a>(resource: &'a Resource, name: &str) -> &'a Value {
    resource
        .attributes
        .get(name)
        .unwrap_or_else(|| panic!("`{}` has no `{name}`", resource.address))
}

fn dependencies(resource: &Resource) -> Vec<String> {
    resource
        .dependencies
        .iter()
        .map(Address::to_string)
        .collect()
}

fn json(value: &Value) -> serde_json::Value {
    value.to_json()
}

#[test]
fn a_service_implies_its_image_network_and_volume_sorted_by_address() {
    let resources = lowered(&format!(
        "{LOCAL}\n[services.db]\nimage = \"postgres:16\"\nvolumes = [\"pgdata:/var/lib/postgresql/data\"]\n"
    ));
    assert_eq!(
        addresses(&resources),
        ["image.db", "network.backend", "service.db", "volume.pgdata"]
    );
    let service = find(&resources, "service.db");
    assert_eq!(
        dependencies(service),
        ["image.db", "network.backend", "volume.pgdata"]
    );
    assert_eq!(json(attribute(service, "image")), "postgres:16");
    assert_eq!(json(attribute(service, "container_name")), "shop-db");
    assert_eq!(
        json(attribute(service, "networks")),
        serde_json::json!({ "shop_backend": ["db"] })
    );
    // A named volume makes the service stateful: never two containers on one volume.
    assert_eq!(json(attribute(service, "stateful")), true);
    assert_eq!(service.replace_order, ReplaceOrder::DestroyBeforeCreate);
    assert_eq!(
        json(attribute(find(&resources, "volume.pgdata"), "name")),
        "shop_pgdata"
    );
}

#[test]
fn services_with_one_build_share_one_image() {
    let resources = lowered(&format!(
        "{LOCAL}\n[services.api]\nbuild = \"./apps/api/\"\n\n[services.worker]\nbuild = \"./apps/api/\"\n"
    ));
    let images: Vec<String> = addresses(&resources)
        .into_iter()
        .filter(|address| address.starts_with("image."))
        .collect();
    assert_eq!(images, ["image.api"]);
    let image = find(&resources, "image.api");
    assert_eq!(json(attribute(image, "context")), "apps/api");
    assert_eq!(json(attribute(image, "dockerfile")), "Dockerfile");
    assert!(!image.attributes.contains_key("key"), "{image:?}");
    let worker = find(&resources, "service.worker");
    assert_eq!(dependencies(worker), ["image.api", "network.backend"]);
    assert_eq!(
        attribute(worker, "image"),
        attribute(image, "tag"),
        "the worker runs the shared build's tag"
    );
}

#[test]
fn build_arguments_are_part_of_the_image_and_its_tag() {
    let stack = |base: &str| {
        format!("{LOCAL}\n[services.api]\nbuild = \"apps/api\"\nbuild_args = {{ BASE = \"{base}\" }}\n\n[services.worker]\nbuild = \"apps/api\"\n")
    };
    let inputs = ExternalInputs {
        context_hashes: [(
            "apps/api".to_string(),
            "sha256:abcdef0123456789".to_string(),
        )]
        .into(),
        ..ExternalInputs::default()
    };
    let lower = |text: &str| crate::lower::lower(&load(text), &inputs, "salt");
    let resources = lower(&stack("local/bookworm:1"));
    // The same context with other arguments is another image.
    let api = find(&resources, "image.api");
    let worker = find(&resources, "image.worker");
    assert_eq!(
        json(attribute(api, "build_args")),
        serde_json::json!({ "BASE": "local/bookworm:1" })
    );
    assert!(!worker.attributes.contains_key("build_args"), "{worker:?}");
    assert_eq!(json(attribute(worker, "tag")), "shop/worker:abcdef012345");
    assert_ne!(attribute(api, "tag"), attribute(worker, "tag"));
    // Changing an argument changes the tag: a new build and an update of its services.
    let changed = lower(&stack("debian:bookworm-slim"));
    assert_ne!(
        attribute(find(&changed, "image.api"), "tag"),
        attribute(api, "tag")
    );
    assert_eq!(
        attribute(find(&changed, "service.api"), "image"),
        attribute(find(&changed, "image.api"), "tag")
    );
}

#[test]
fn service_limits_health_and_bind_mounts() {
    let resources = lowered(&format!(
        r#"{LOCAL}
[services.api]
image = "api:1"
port = 8000
memory = "512m"
cpus = 0.5
restart = "on-failure"
volumes = ["/srv/media:/media:ro"]
health = {{ http = "/health", interval = "10s", start_period = "1m" }}
"#
    ));
    let service = find(&resources, "service.api");
    assert_eq!(json(attribute(service, "memory")), 512 * 1024 * 1024);
    assert_eq!(json(attribute(service, "cpus")), "0.5");
    assert_eq!(json(attribute(service, "restart")), "on-failure");
    assert_eq!(json(attribute(service, "ports")), serde_json::json!([]));
    assert_eq!(json(attribute(service, "stateful")), false);
    assert_eq!(service.replace_order, ReplaceOrder::default());
    assert_eq!(
        json(attribute(service, "volumes")),
        serde_json::json!([{ "kind": "bind", "source": "/srv/media", "target": "/media", "read_only": true }])
    );
    let url = "http://127.0.0.1:8000/health";
    assert_eq!(
        json(attribute(service, "health")),
        serde_json::json!({
            "test": ["CMD-SHELL", format!("curl -fsS {url} >/dev/null || wget -qO- {url} >/dev/null || exit 1")],
            "interval_seconds": 10,
            "timeout_seconds": 3,
            "retries": 10,
            "start_period_seconds": 60,
        })
    );
}

#[test]
fn how_a_service_stops_is_lowered_only_when_written() {
    let resources = lowered(&format!(
        r#"{LOCAL}
[services.api]
image = "api:1"
stop_grace_period = "1m30s"
drain = "1500ms"

[services.worker]
image = "api:1"
stop_grace_period = "500ms"
"#
    ));
    let api = find(&resources, "service.api");
    assert_eq!(json(attribute(api, "stop_grace_seconds")), 90);
    assert_eq!(json(attribute(api, "drain_milliseconds")), 1500);
    // Docker counts whole seconds: a part of one is rounded up, never down to a kill.
    let worker = find(&resources, "service.worker");
    assert_eq!(json(attribute(worker, "stop_grace_seconds")), 1);
    assert!(!worker.attributes.contains_key("drain_milliseconds"));
    // Unset: Docker's default, and no attribute, so earlier states plan no change.
    let plain = lowered(&format!(
        "{LOCAL}
[services.api]
image = \"api:1\"
"
    ));
    let plain = find(&plain, "service.api");
    assert!(!plain.attributes.contains_key("stop_grace_seconds"));
    assert!(!plain.attributes.contains_key("drain_milliseconds"));
}

#[test]
fn a_file_gets_its_path_under_the_root_and_its_mounting_service_depends_on_it() {
    let resources = lowered(&format!(
        r#"{LOCAL}
[files.nginx]
path = "nginx/site.conf"
content = "server {{}}"
mode = "0600"

[services.web]
image = "nginx:1"
volumes = ["/var/lib/stackctl/shop/files/nginx:/etc/nginx/conf.d:ro"]
"#
    ));
    let file = find(&resources, "file.nginx");
    assert_eq!(
        json(attribute(file, "path")),
        "/var/lib/stackctl/shop/files/nginx/site.conf"
    );
    assert_eq!(json(attribute(file, "mode")), "0600");
    assert_eq!(
        dependencies(find(&resources, "service.web")),
        ["file.nginx", "image.web", "network.backend"]
    );
}

#[test]
fn a_secret_variable_makes_the_value_secret() {
    let resources = lowered(&format!(
        "{LOCAL}\n[services.db]\nimage = \"postgres:16\"\nenv = {{ POSTGRES_PASSWORD = \"${{DB_PASSWORD}}\", POSTGRES_USER = \"shop\" }}\n"
    ));
    let env = attribute(find(&resources, "service.db"), "env");
    let Value::Map(env) = env else {
        panic!("env is not a map: {env:?}");
    };
    assert!(
        matches!(env["POSTGRES_PASSWORD"], Value::Secret(_)),
        "{env:?}"
    );
    assert_eq!(env["POSTGRES_USER"], Value::text("shop"));
    assert!(!format!("{env:?}").contains("hunter2"));
}

#[test]
fn on_a_droplet_everything_on_the_host_waits_for_the_droplet() {
    let resources = lowered(&format!(
        "{ON_A_DROPLET}\n[services.api]\nimage = \"api:1\"\n\n[dns]\ndomain = \"example.test\"\nrecords = [{{ type = \"A\", name = \"@\" }}, {{ type = \"A\", name = \"www\", data = \"203.0.113.7\" }}]\n"
    ));
    for address in ["image.api", "network.backend", "service.api"] {
        assert!(
            dependencies(find(&resources, address)).contains(&"droplet.web".to_string()),
            "{address} does not wait for the droplet"
        );
    }
    let droplet = find(&resources, "droplet.web");
    assert_eq!(dependencies(droplet), ["ssh_key.deploy"]);
    assert_eq!(droplet.replace_order, ReplaceOrder::DestroyBeforeCreate);
    assert_eq!(
        json(attribute(droplet, "tags")),
        serde_json::json!(["stackctl:shop"])
    );
    assert_eq!(
        json(attribute(find(&resources, "ssh_key.deploy"), "public_key")),
        "ssh-ed25519 AAAA deploy@example"
    );
    // A record without data takes the droplet's address, known after apply.
    let apex = find(&resources, "dns_record.apex");
    assert!(matches!(attribute(apex, "data"), Value::Unknown(_)));
    assert_eq!(dependencies(apex), ["droplet.web"]);
    let www = find(&resources, "dns_record.www");
    assert_eq!(json(attribute(www, "data")), "203.0.113.7");
    assert_eq!(json(attribute(www, "ttl")), 1800);
    assert!(dependencies(www).is_empty());
}

#[test]
fn dns_records_sharing_a_name_are_told_apart_by_type() {
    let resources = lowered(&format!(
        "{LOCAL}\n[dns]\ndomain = \"example.test\"\nrecords = [{{ type = \"A\", name = \"mail.eu\", data = \"203.0.113.7\" }}, {{ type = \"TXT\", name = \"mail.eu\", data = \"v=spf1\" }}]\n"
    ));
    assert_eq!(
        addresses(&resources),
        ["dns_record.mail-eu-a", "dns_record.mail-eu-txt"]
    );
}

#[test]
fn a_firewall_without_outbound_rules_lets_everything_out() {
    let resources = lowered(&format!(
        "{ON_A_DROPLET}\n[firewalls.web]\ndroplets = [\"web\"]\ninbound = [{{ protocol = \"tcp\", ports = \"22\", sources = [\"10.0.0.0/8\"] }}, {{ protocol = \"tcp\", ports = \"443\" }}]\n"
    ));
    let firewall = find(&resources, "firewall.web");
    assert_eq!(json(attribute(firewall, "name")), "shop-web");
    assert_eq!(
        json(attribute(firewall, "inbound_rules")),
        serde_json::json!([
            { "protocol": "tcp", "ports": "22", "sources": ["10.0.0.0/8"] },
            { "protocol": "tcp", "ports": "443", "sources": ["0.0.0.0/0", "::/0"] },
        ])
    );
    let everyone = serde_json::json!(["0.0.0.0/0", "::/0"]);
    assert_eq!(
        json(attribute(firewall, "outbound_rules")),
        serde_json::json!([
            { "protocol": "tcp", "ports": "all", "destinations": everyone },
            { "protocol": "udp", "ports": "all", "destinations": everyone },
            { "protocol": "icmp", "ports": "all", "destinations": everyone },
        ])
    );
    assert_eq!(dependencies(firewall), ["droplet.web"]);
}

const EDGE_STACK: &str = r#"
[edge]
image = "traefik:v3.3"
admin_port = 8081
tls = { resolver = "le", email = "ops@example.test" }

[services.web]
image = "web:1"
port = 3000
networks = ["front"]

[routes.web]
host = "example.test"
path_prefix = "/app"
service = "web"
middlewares = ["guard"]

[middlewares.headers]
type = "headers"
hsts_seconds = 300
remove_server_headers = true

[middlewares.guard]
type = "chain"
middlewares = ["headers"]
"#;

#[test]
fn the_edge_joins_the_routed_services_networks_and_alone_publishes_ports() {
    let resources = lowered(&format!("{LOCAL}{EDGE_STACK}"));
    let edge = find(&resources, "service.edge");
    assert_eq!(
        json(attribute(edge, "networks")),
        serde_json::json!({ "shop_front": ["edge"] })
    );
    assert_eq!(
        json(attribute(edge, "ports")),
        serde_json::json!([
            { "host_ip": "0.0.0.0", "host_port": 80, "container_port": 80, "protocol": "tcp" },
            { "host_ip": "0.0.0.0", "host_port": 443, "container_port": 443, "protocol": "tcp" },
            { "host_ip": "127.0.0.1", "host_port": 8081, "container_port": 8080, "protocol": "tcp" },
        ])
    );
    assert_eq!(
        dependencies(edge),
        [
            "file.traefik-static",
            "image.edge",
            "network.front",
            "volume.edge-acme"
        ]
    );
    assert_eq!(edge.replace_order, ReplaceOrder::DestroyBeforeCreate);
    assert_eq!(json(attribute(edge, "stateful")), true);
    assert_eq!(
        json(attribute(find(&resources, "image.edge"), "reference")),
        "traefik:v3.3"
    );
}

#[test]
fn certificates_come_from_staging_by_default() {
    let resources = lowered(&format!("{LOCAL}{EDGE_STACK}"));
    let static_file = find(&resources, "file.traefik-static");
    assert_eq!(
        json(attribute(static_file, "resolver")),
        serde_json::json!({
            "name": "le",
            "email": "ops@example.test",
            "ca_server": "https://acme-staging-v02.api.letsencrypt.org/directory",
            "staging": true,
            "storage": "/acme/acme.json",
        })
    );
    assert_eq!(
        json(attribute(static_file, "path")),
        "/var/lib/stackctl/shop/traefik/traefik.yml"
    );
}

#[test]
fn a_route_builds_its_rule_and_waits_for_its_service_and_middlewares() {
    let resources = lowered(&format!("{LOCAL}{EDGE_STACK}"));
    let route = find(&resources, "route.web");
    assert_eq!(
        json(attribute(route, "rule")),
        "Host(`example.test`) && PathPrefix(`/app`)"
    );
    assert_eq!(json(attribute(route, "tls_resolver")), "le");
    assert_eq!(
        json(attribute(route, "path")),
        "/var/lib/stackctl/shop/traefik/dynamic/route-web.yml"
    );
    assert_eq!(dependencies(route), ["middleware.guard", "service.web"]);
    assert_eq!(
        dependencies(find(&resources, "middleware.guard")),
        ["middleware.headers"]
    );
    // The routed service says where its backend file goes, and nothing about the edge.
    assert_eq!(
        json(attribute(find(&resources, "service.web"), "route_backend")),
        serde_json::json!({
            "file": "/var/lib/stackctl/shop/traefik/dynamic/backend-web.yml",
            "temp_dir": "/var/lib/stackctl/shop/traefik/.tmp",
            "service": "web",
        })
    );
}

#[test]
fn the_edges_admin_port_changes_no_routed_service() {
    let published = lowered(&format!("{LOCAL}{EDGE_STACK}"));
    let unpublished = lowered(&format!(
        "{LOCAL}{}",
        EDGE_STACK.replace("admin_port = 8081\n", "")
    ));
    assert_ne!(
        find(&published, "service.edge").attributes,
        find(&unpublished, "service.edge").attributes,
        "the admin port is published by the edge alone"
    );
    assert_eq!(
        find(&published, "service.web").attributes,
        find(&unpublished, "service.web").attributes
    );
}

#[test]
fn middleware_settings_use_the_traefik_providers_names() {
    let resources = lowered(&format!("{LOCAL}{EDGE_STACK}"));
    let headers = find(&resources, "middleware.headers");
    assert_eq!(json(attribute(headers, "type")), "headers");
    let settings = json(attribute(headers, "settings"));
    assert_eq!(settings["sts_seconds"], 300);
    assert_eq!(
        settings["remove_headers"],
        serde_json::json!(["Server", "X-Powered-By"])
    );
    assert_eq!(settings["referrer_policy"], "");
}

#[test]
fn the_edge_is_linked_to_its_static_file_once_rendered() {
    let mut resources = lowered(&format!("{LOCAL}{EDGE_STACK}"));
    crate::lower::link_edge_to_static_config(&mut resources);
    assert!(
        !find(&resources, "service.edge")
            .attributes
            .contains_key("config_hash"),
        "no content rendered yet, nothing to link"
    );
    let static_file = resources
        .iter_mut()
        .find(|resource| resource.address == Address::new("file", "traefik-static"))
        .expect("the static file");
    static_file
        .attributes
        .insert("content".to_string(), Value::text("entryPoints: {}"));
    crate::lower::link_edge_to_static_config(&mut resources);
    let hash = attribute(find(&resources, "service.edge"), "config_hash");
    let expected = stackctl_provider::sha256_hex(b"\"entryPoints: {}\"");
    assert_eq!(hash, &Value::Text(expected));
}

#[test]
fn where_the_stack_lives_and_runs() {
    let local = load(LOCAL).config;
    assert!(crate::lower::targets_local(&local));
    assert_eq!(crate::lower::host_root(&local), "/var/lib/stackctl/shop");
    let droplet = load(ON_A_DROPLET).config;
    assert!(!crate::lower::targets_local(&droplet));
    let rooted = load(&format!("{LOCAL}root = \"/srv/shop\"\n")).config;
    assert_eq!(crate::lower::host_root(&rooted), "/srv/shop");
}

#[test]
fn lowering_is_deterministic() {
    let text = format!("{LOCAL}{EDGE_STACK}");
    assert_eq!(lowered(&text), lowered(&text));
}

#[test]
fn a_swarm_target_lowers_to_the_swarm_and_one_node_per_droplet_on_the_first_manager() {
    let resources = lowered(
        r#"
[stack]
name = "shop"

[target.swarm]
managers = ["web-1"]
workers = ["web-2"]
labels = { web-2 = { zone = "a" } }

[droplets.web-1]
region = "fra1"
size = "s-1vcpu-1gb"
image = "docker-20-04"

[droplets.web-2]
region = "fra1"
size = "s-1vcpu-1gb"
image = "docker-20-04"

[services.api]
image = "api:1"
"#,
    );
    let cluster = find(&resources, "swarm.cluster");
    assert_eq!(cluster.provider, "swarm");
    assert_eq!(cluster.attributes["manager"], Value::text("web-1"));
    assert_eq!(cluster.dependencies, [Address::new("droplet", "web-1")]);
    let worker = find(&resources, "swarm_node.web-2");
    assert_eq!(worker.attributes["role"], Value::text("worker"));
    assert_eq!(worker.attributes["availability"], Value::text("active"));
    assert_eq!(worker.attributes["status"], Value::text("ready"));
    assert_eq!(
        worker.attributes["labels"],
        Value::Map(
            [
                ("stackctl.node".to_string(), Value::text("web-2")),
                ("zone".to_string(), Value::text("a"))
            ]
            .into()
        ),
        "each node carries its name, for stackctl's own pins, beside its labels"
    );
    assert_eq!(
        worker.dependencies,
        [
            Address::new("droplet", "web-2"),
            Address::new("swarm", "cluster")
        ]
    );
    let manager = find(&resources, "swarm_node.web-1");
    assert_eq!(manager.attributes["role"], Value::text("manager"));
    assert_eq!(
        manager.attributes["labels"],
        Value::Map([("stackctl.node".to_string(), Value::text("web-1"))].into())
    );
    // The stack's services are swarm services, created through the first manager once
    // the swarm is formed there.
    let api = &find(&resources, "swarm_service.api").dependencies;
    assert!(api.contains(&Address::new("droplet", "web-1")), "{api:?}");
    assert!(api.contains(&Address::new("swarm", "cluster")), "{api:?}");
}

#[test]
fn moving_a_single_droplet_stack_to_a_swarm_adds_the_nodes_and_turns_containers_into_swarm_services(
) {
    let body = r#"
[droplets.web-1]
region = "fra1"
size = "s-1vcpu-1gb"
image = "docker-20-04"

[services.api]
image = "api:1"
networks = ["backend"]
"#;
    let single = lowered(&format!(
        "[stack]\nname = \"shop\"\n\n[target]\ndroplet = \"web-1\"\n{body}"
    ));
    let swarm = lowered(&format!(
        "[stack]\nname = \"shop\"\n\n[target.swarm]\nmanagers = [\"web-1\"]\nworkers = [\"web-2\"]\n{body}\n[droplets.web-2]\nregion = \"fra1\"\nsize = \"s-1vcpu-1gb\"\nimage = \"docker-20-04\"\n"
    ));
    // The droplet that was the target and the image stay as they are; the network becomes
    // an overlay of the same name (a replace), and the container becomes a swarm service:
    // the move plans the new droplet, the swarm, its nodes, and those replacements.
    for unchanged in ["droplet.web-1", "image.api"] {
        let before = find(&single, unchanged);
        let after = find(&swarm, unchanged);
        assert_eq!(after.attributes, before.attributes, "{unchanged}");
        assert_eq!(after.hash(), before.hash(), "{unchanged}");
    }
    let network = find(&swarm, "network.backend");
    assert_eq!(network.attributes["driver"], Value::text("overlay"));
    assert_eq!(
        network.attributes["name"],
        find(&single, "network.backend").attributes["name"]
    );
    let added: Vec<String> = addresses(&swarm)
        .into_iter()
        .filter(|address| !addresses(&single).contains(address))
        .collect();
    assert_eq!(
        added,
        [
            "droplet.web-2",
            "swarm.cluster",
            "swarm_node.web-1",
            "swarm_node.web-2",
            "swarm_service.api"
        ]
    );
    let gone: Vec<String> = addresses(&single)
        .into_iter()
        .filter(|address| !addresses(&swarm).contains(address))
        .collect();
    assert_eq!(gone, ["service.api"]);
}

const ON_A_SWARM: &str = r#"
[stack]
name = "shop"

[target]
swarm = { managers = ["web-1"], workers = ["web-2"] }

[droplets.web-1]
region = "fra1"
size = "s-1vcpu-1gb"
image = "docker-20-04"

[droplets.web-2]
region = "fra1"
size = "s-1vcpu-1gb"
image = "docker-20-04"

[edge]
image = "traefik:v3.3"

[services.web]
image = "web:1"
port = 8080
replicas = 2
endpoint_mode = "dnsrr"
networks = ["edge", "backend"]
depends_on = ["db"]
tmpfs = ["/tmp", "/run:size=16m"]
placement = { constraints = ["node.labels.zone != b"], preferences = [{ spread = "node.labels.zone" }] }
update = { parallelism = 2, failure_action = "pause", monitor = "10s" }

[services.db]
image = "postgres:16"
volumes = ["pgdata:/var/lib/postgresql/data"]
update = { order = "stop-first" }
release = { command = ["migrate"] }

[routes.web]
host = "shop.example"
service = "web"
"#;

#[test]
fn on_a_swarm_services_lower_to_swarm_services_with_their_placement_and_update() {
    let resources = lowered(ON_A_SWARM);
    let web = find(&resources, "swarm_service.web");
    insta::assert_json_snapshot!(
        "swarm_service_web",
        json(&Value::Map(web.attributes.clone()))
    );
    assert_eq!(
        dependencies(web),
        [
            "droplet.web-1",
            "image.web",
            "network.backend",
            "network.edge",
            "swarm.cluster",
            // Every node, with its labels, before Swarm places the tasks.
            "swarm_node.web-1",
            "swarm_node.web-2",
            "swarm_service.db"
        ]
    );
    assert_eq!(web.replace_order, ReplaceOrder::CreateBeforeDestroy);
    // The route waits for the swarm service it sends traffic to.
    assert_eq!(
        dependencies(find(&resources, "route.web")),
        ["droplet.web-1", "swarm.cluster", "swarm_service.web"]
    );
    assert!(!addresses(&resources).contains(&"service.web".to_string()));
}

#[test]
fn on_a_swarm_a_service_with_a_named_volume_is_pinned_to_the_first_manager_and_stops_first() {
    let resources = lowered(ON_A_SWARM);
    let db = find(&resources, "swarm_service.db");
    assert_eq!(
        json(attribute(db, "placement")),
        serde_json::json!({ "constraints": ["node.labels.stackctl.node == web-1"], "spread": [] })
    );
    assert_eq!(json(attribute(db, "update"))["order"], "stop-first");
    assert_eq!(json(attribute(db, "replicas")), 1);
    assert_eq!(json(attribute(db, "endpoint_mode")), "vip");
    assert_eq!(db.replace_order, ReplaceOrder::DestroyBeforeCreate);
    // Its release task is a one-off container, hardened as one, and the service waits
    // for it.
    let release = find(&resources, "release.db");
    assert_eq!(json(attribute(release, "no_new_privileges")), true);
    assert_eq!(
        json(attribute(release, "container_name")),
        "shop-db-release"
    );
    assert!(dependencies(db).contains(&"release.db".to_string()));
    // Kept as written when the constraints already name the node (another node is
    // refused by validate: the volume is made on the first manager).
    let pinned = lowered(&ON_A_SWARM.replace(
        "update = { order = \"stop-first\" }",
        "placement = { constraints = [\"node.role == manager\", \"node.hostname == web-1\"] }",
    ));
    assert_eq!(
        json(attribute(find(&pinned, "swarm_service.db"), "placement"))["constraints"],
        serde_json::json!(["node.role == manager", "node.hostname == web-1"])
    );
}

#[test]
fn on_a_swarm_networks_are_attachable_overlays_and_on_one_host_they_are_unchanged() {
    let resources = lowered(ON_A_SWARM);
    let backend = find(&resources, "network.backend");
    assert_eq!(json(attribute(backend, "driver")), "overlay");
    assert_eq!(json(attribute(backend, "attachable")), true);
    assert_eq!(json(attribute(backend, "internal")), false);
    let local = lowered(&format!("{LOCAL}\n[services.web]\nimage = \"web:1\"\n"));
    let network = find(&local, "network.backend");
    assert!(!network.attributes.contains_key("driver"));
    assert!(!network.attributes.contains_key("attachable"));
}

#[test]
fn on_a_swarm_a_routed_service_names_its_http_health_path_for_the_edge() {
    let checked = ON_A_SWARM.replace(
        "replicas = 2\n",
        "replicas = 2\nhealth = { http = \"/health\", command = [\"CMD\", \"/server\", \"health\"] }\n",
    );
    let resources = lowered(&checked);
    let web = find(&resources, "swarm_service.web");
    assert_eq!(
        json(attribute(web, "route_backend"))["health_path"],
        "/health"
    );
    // Docker's own check is the command.
    assert_eq!(
        json(attribute(web, "health"))["test"],
        serde_json::json!(["CMD", "/server", "health"])
    );
    // Without `health.http` the edge checks nothing (the snapshot's route_backend).
    let unchecked = lowered(ON_A_SWARM);
    let route_backend = json(attribute(
        find(&unchecked, "swarm_service.web"),
        "route_backend",
    ));
    assert!(
        route_backend.get("health_path").is_none(),
        "{route_backend}"
    );
}

#[test]
fn on_a_swarm_a_mounted_file_is_a_swarm_config_or_secret_named_after_its_content_and_pins_nothing()
{
    let files = r#"
[files.app]
path = "app.conf"
content = "greeting = hello"
owner = "10001:10001"

[files.key]
path = "key.pem"
content = "${DB_PASSWORD}"

[services.worker]
image = "worker:1"
volumes = ["/var/lib/stackctl/shop/files/app.conf:/etc/worker/app.conf:ro"]

[services.api]
image = "api:1"
volumes = ["/var/lib/stackctl/shop/files/app.conf:/etc/api/app.conf:ro", "/var/lib/stackctl/shop/files/key.pem:/etc/api/key.pem:ro"]
"#;
    let resources = lowered(&format!("{ON_A_SWARM}{files}"));
    let digest = stackctl_provider::sha256_hex(b"greeting = hello");
    let worker = find(&resources, "swarm_service.worker");
    assert_eq!(
        json(attribute(worker, "configs")),
        serde_json::json!({ "/etc/worker/app.conf": {
            "name": format!("shop_worker_app_{}", &digest[7..15]),
            "owner": "10001:10001",
            "mode": "0444",
        } })
    );
    // Not a bind mount of the node's host, so not pinned to the first manager; it still
    // waits for the file, whose recorded content the config is made from.
    assert_eq!(json(attribute(worker, "volumes")), serde_json::json!([]));
    assert_eq!(
        json(attribute(worker, "placement")),
        serde_json::json!({ "constraints": [], "spread": [] })
    );
    assert!(dependencies(worker).contains(&"file.app".to_string()));
    // A file holding a secret is a Swarm secret at its path: the content as the secret
    // (its digest in state and plans), named after the salted digest. It pins nothing.
    let api = find(&resources, "swarm_service.api");
    let configs = json(attribute(api, "configs"));
    assert_eq!(
        configs.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["/etc/api/app.conf"]
    );
    let Value::Map(secret_files) = attribute(api, "secret_files") else {
        panic!("no secret_files");
    };
    let Some(Value::Map(key)) = secret_files.get("/etc/api/key.pem") else {
        panic!("{secret_files:?}");
    };
    let Some(Value::Secret(content)) = key.get("content") else {
        panic!("{key:?}");
    };
    assert_eq!(content.expose(), Some("hunter2"));
    assert_eq!(
        key.get("name"),
        Some(&Value::text(format!(
            "shop_api_key_{}",
            &content.digest()[7..15]
        )))
    );
    assert_eq!(key.get("mode"), Some(&Value::text("0444")));
    assert_eq!(json(attribute(api, "volumes")), serde_json::json!([]));
    assert_eq!(
        json(attribute(api, "placement"))["constraints"],
        serde_json::json!([])
    );
    // The mode written on the file is the config's; a new content is a new config.
    let changed = lowered(&format!(
        "{ON_A_SWARM}{}",
        files
            .replace("greeting = hello", "greeting = bonjour")
            .replace("owner = \"10001:10001\"", "mode = \"0440\"")
    ));
    let changed = json(attribute(find(&changed, "swarm_service.worker"), "configs"));
    let entry = &changed["/etc/worker/app.conf"];
    assert_eq!(entry["mode"], "0440");
    assert_eq!(entry["owner"], "0:0");
    assert_ne!(
        entry["name"],
        format!("shop_worker_app_{}", &digest[7..15]).as_str()
    );
    // A service without one keeps the attributes (and the hash) it had.
    assert!(!find(&resources, "swarm_service.web")
        .attributes
        .contains_key("configs"));
}

#[test]
fn a_mounted_files_name_fits_swarms_limit_and_characters() {
    use crate::lower::swarm_services::swarm_object_name;
    let hex = "0123456789abcdef";
    let name = swarm_object_name("shop", "web", "app", hex);
    assert_eq!(name, "shop_web_app_01234567");
    let long = swarm_object_name(&"s".repeat(40), &"w".repeat(40), "a b", hex);
    assert_eq!(long.len(), 64, "{long}");
    assert!(long.ends_with("_01234567"), "{long}");
    assert_eq!(
        swarm_object_name("shop", "web", "a b/c", hex),
        "shop_web_a-b-c_01234567"
    );
}
