//! References and policy: what the schema cannot say. Each check adds diagnostics and
//! carries on, so one run reports every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use petgraph::graphmap::DiGraphMap;
use stackctl_traefik::policy::{
    missing_dashboard_protections, production_certificates_refused, RouteProtection,
};
use stackctl_traefik::spec::is_ip_range;

use super::diagnostic::{did_you_mean, Diagnostic};
use super::document::{child_path, index_path, SourceMap};
use super::env_file::read_regular_file;
use super::environment::{variables_in, Environment};
use super::hardening::{capability_name, tmpfs_mount, KNOWN_CAPABILITIES};
use super::parse::{duration_milliseconds, duration_seconds, file_mode, memory_bytes, Mount};
use super::{secret_hints, traefik_rule};
// Other stages name these by their old home here.
pub use super::derived::{flatten_middlewares, target_droplet};

mod backups;
mod swarm;
mod swarm_files;
mod swarm_services;
use super::types::*;

pub fn validate(
    config: &Config,
    document: &serde_json::Value,
    map: &SourceMap,
    environment: &Environment,
    base_directory: &Path,
    env_path: Option<&Path>,
) -> Vec<Diagnostic> {
    let mut check = Checks {
        map,
        environment,
        found: Vec::new(),
    };
    check.stack(config);
    check.target(config);
    check.cloud(config);
    check.edge(config);
    check.files(config);
    check.services(config);
    check.hardening(config);
    check.networks(config);
    check.routes(config);
    check.middlewares(config);
    check.checks(config);
    check.backups(config);
    check.swarm_services(config);
    check.swarm_files(config, base_directory);
    check.variables(document, environment, base_directory, env_path);
    check.found
}

struct Checks<'a> {
    map: &'a SourceMap,
    environment: &'a Environment,
    found: Vec<Diagnostic>,
}

/// Docker's embedded DNS resolves container names (`<stack>-<service>`) and network
/// aliases, and DigitalOcean droplet names are host names: each is one DNS label, at
/// most 63 characters (RFC 1035). The state file `<stack>.json.backup` and the host root
/// `/var/lib/stackctl/<stack>` are far below the file-name limit at that length.
const DNS_LABEL_MAX: usize = 63;

/// Linux's NAME_MAX: the longest file name (`route-<name>.yml`, `middleware-<name>.yml`).
const FILE_NAME_MAX: usize = 255;

/// A name that becomes part of a file name on the host and a Traefik object name: ASCII
/// letters, digits, `-`, `_` and `.`, starting with a letter or digit. This keeps out `/`
/// and `..` (leaving the directory), `@` (Traefik's provider suffix), spaces, quotes and
/// control characters.
fn is_file_safe_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric())
        && characters.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.contains("..")
}

/// `a`, `a and b`, `a, b and c`.
fn english_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [only] => only.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `root`, `0`, `root:…` or `0:…`: the container's processes run as uid 0.
fn runs_as_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or(user).trim();
    name == "root" || name == "0"
}

/// The stack's directory on the host: `target.root`, else `/var/lib/stackctl/<stack>`
/// (as lowering places it).
fn host_root(config: &Config) -> String {
    config
        .target
        .as_ref()
        .and_then(|target| target.root.clone())
        .unwrap_or_else(|| format!("/var/lib/stackctl/{}", config.stack.name))
}

/// `path` has no `..` component and no NUL: joined under a directory, it stays there.
fn stays_inside(path: &str) -> bool {
    !path.contains('\0') && !path.split('/').any(|component| component == "..")
}

fn is_simple_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first.is_ascii_digit())
        && characters.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Checks<'_> {
    fn error(
        &mut self,
        code: &'static str,
        path: &str,
        message: String,
        expected: &str,
    ) -> &mut Diagnostic {
        self.found.push(
            Diagnostic::error(code, message)
                .at(self.map.value(path))
                .expected(expected),
        );
        self.found.last_mut().expect("just pushed")
    }

    /// `name` must be a key of `known` (a lookup: a scan per reference made validating
    /// 10,000 resources quadratic); otherwise a dangling-reference error listing them.
    fn reference<V>(&mut self, path: &str, kind: &str, name: &str, known: &BTreeMap<String, V>) {
        if known.contains_key(name) {
            return;
        }
        let names: Vec<&str> = known.keys().map(String::as_str).collect();
        let expected = if names.is_empty() {
            format!("a {kind}, but none is defined")
        } else {
            format!(
                "one of {}",
                names
                    .iter()
                    .map(|name| format!("`{name}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let hint = did_you_mean(name, names.iter().copied());
        let diagnostic = self.error(
            "dangling-reference",
            path,
            format!("`{path}` refers to {kind} `{name}`, which is not defined"),
            &expected,
        );
        if let Some(hint) = hint {
            diagnostic.hint = Some(hint);
        }
    }

    fn stack(&mut self, config: &Config) {
        if !is_simple_name(&config.stack.name) {
            self.error(
                "invalid-name",
                "stack.name",
                format!(
                    "stack name `{}` cannot name Docker objects and state files",
                    config.stack.name
                ),
                "lowercase letters, digits, `-` and `_`, starting with a letter or digit",
            );
        }
        let stack = &config.stack.name;
        if stack.chars().count() > DNS_LABEL_MAX {
            self.error(
                "name-too-long",
                "stack.name",
                format!(
                    "the stack name is {} characters long; containers are named `<stack>-<service>` and resolved as DNS labels of at most {DNS_LABEL_MAX} characters",
                    stack.chars().count(),
                ),
                "a short stack name: with a `-` and the longest service name, at most 63 characters",
            );
        }
        for (section, names) in [
            ("services", config.services.keys().collect::<Vec<_>>()),
            ("droplets", config.droplets.keys().collect()),
        ] {
            for name in names {
                if !is_simple_name(name) {
                    self.error(
                        "invalid-name",
                        &child_path(section, name),
                        format!("`{section}.{name}`: the name cannot be used for Docker objects"),
                        "lowercase letters, digits, `-` and `_`",
                    );
                }
                // The container (or droplet) is named `<stack>-<name>`.
                let full = stack.chars().count() + 1 + name.chars().count();
                if full > DNS_LABEL_MAX && stack.chars().count() <= DNS_LABEL_MAX {
                    self.error(
                        "name-too-long",
                        &child_path(section, name),
                        format!("`{stack}-{name}` is {full} characters long; Docker and DigitalOcean use it as a DNS label, at most {DNS_LABEL_MAX}"),
                        &format!("a name of at most {} characters with this stack name", DNS_LABEL_MAX.saturating_sub(stack.chars().count() + 1)),
                    );
                }
            }
        }
        for (section, names, file_prefix) in [
            ("routes", config.routes.keys().collect::<Vec<_>>(), "route-"),
            (
                "middlewares",
                config.middlewares.keys().collect(),
                "middleware-",
            ),
            ("files", config.files.keys().collect(), ""),
        ] {
            for name in names {
                if !is_file_safe_name(name) {
                    self.error(
                        "invalid-name",
                        &child_path(section, name),
                        format!("`{section}.{name}`: the name becomes a file name on the host and a Traefik name, and these characters would leave their directory or mean something else to Traefik"),
                        "letters, digits, `-`, `_` and `.` (no `/`, `..`, `@`, spaces or quotes), starting with a letter or digit",
                    );
                } else if file_prefix.len() + name.len() + ".yml".len() > FILE_NAME_MAX {
                    self.error(
                        "name-too-long",
                        &child_path(section, name),
                        format!("`{section}.{name}` is {} characters long; its file `{file_prefix}<name>.yml` would exceed the file-name limit of {FILE_NAME_MAX} bytes", name.len()),
                        "a shorter name",
                    );
                }
            }
        }
    }

    fn target(&mut self, config: &Config) {
        let Some(target) = &config.target else {
            if config.droplets.len() > 1 {
                self.error(
                    "ambiguous-target",
                    "droplets",
                    "there are several droplets and no `[target]` says which runs the services"
                        .into(),
                    "a `[target]` section",
                )
                .hint = Some("add `[target] droplet = \"<name>\"`".into());
            }
            return;
        };
        if let Some(swarm) = &target.swarm {
            if target.droplet.is_some() || target.host.is_some() {
                self.error(
                    "conflicting-target",
                    "target.swarm",
                    "`[target]` names a swarm and also a droplet or a host".into(),
                    "either `swarm` (its first manager is where stackctl works) or `droplet` or `host`",
                )
                .hint = Some("remove `droplet` and `host` from `[target]`: the swarm's first manager takes their place".into());
            }
            self.swarm(swarm, &config.droplets);
            return;
        }
        match (&target.droplet, &target.host) {
            (Some(_), Some(_)) => {
                self.error(
                    "conflicting-target",
                    "target",
                    "`[target]` names both a droplet and a host".into(),
                    "either `droplet` or `host`",
                );
            }
            (None, None) if target.swarm.is_none() => {
                self.error(
                    "missing-field",
                    "target",
                    "`[target]` names no droplet and no host".into(),
                    "`droplet = \"<name>\"` or `host = \"local\"`",
                );
            }
            (Some(droplet), None) => {
                self.reference("target.droplet", "droplet", droplet, &config.droplets)
            }
            (None, Some(HostTarget::Local(text))) if text != "local" => {
                self.error(
                    "invalid-value",
                    "target.host",
                    format!("`target.host` is \"{text}\""),
                    "\"local\", or a table `{ address = \"…\", user = \"root\", port = 22 }`",
                );
            }
            _ => {}
        }
    }

    fn cloud(&mut self, config: &Config) {
        for (name, droplet) in &config.droplets {
            for (index, key) in droplet.ssh_keys.iter().enumerate() {
                let path = index_path(
                    &child_path(&child_path("droplets", name), "ssh_keys"),
                    index,
                );
                self.reference(&path, "ssh key", key, &config.ssh_keys);
            }
        }
        for (name, key) in &config.ssh_keys {
            if key.public_key.is_some() == key.public_key_file.is_some() {
                self.error(
                    "invalid-ssh-key",
                    &child_path("ssh_keys", name),
                    format!(
                        "`ssh_keys.{name}` needs exactly one of `public_key_file` and `public_key`"
                    ),
                    "`public_key_file = \"~/.ssh/id_ed25519.pub\"`",
                );
            }
        }
        for (name, firewall) in &config.firewalls {
            let base = child_path("firewalls", name);
            for (index, rule) in firewall.inbound.iter().enumerate() {
                let path = index_path(&child_path(&base, "inbound"), index);
                self.ip_ranges(
                    &child_path(&path, "sources"),
                    rule.sources.as_deref().unwrap_or_default(),
                );
            }
            for (index, rule) in firewall.outbound.iter().flatten().enumerate() {
                let path = index_path(&child_path(&base, "outbound"), index);
                self.ip_ranges(
                    &child_path(&path, "destinations"),
                    rule.destinations.as_deref().unwrap_or_default(),
                );
            }
            for (index, droplet) in firewall.droplets.iter().enumerate() {
                let path = index_path(
                    &child_path(&child_path("firewalls", name), "droplets"),
                    index,
                );
                self.reference(&path, "droplet", droplet, &config.droplets);
            }
        }
        if let Some(dns) = &config.dns {
            let target_droplet = target_droplet(config);
            let mut seen: BTreeMap<(String, &str), usize> = BTreeMap::new();
            for (index, record) in dns.records.iter().enumerate() {
                let path = index_path("dns.records", index);
                // Two records of one name and type would share an address (one silently
                // replacing the other); several values for a name need several names.
                let base = record.address_base();
                if let Some(other) = dns
                    .records
                    .iter()
                    .take(index)
                    .find(|other| other.name != record.name && other.address_base() == base)
                {
                    self.error(
                        "duplicate-record",
                        &path,
                        format!(
                            "records `{}` and `{}` would share the address `dns_record.{base}`",
                            other.name, record.name
                        ),
                        "record names that differ in more than `.` and `-`",
                    );
                }
                let key = (
                    record.name.to_ascii_lowercase(),
                    record.record_type.as_str(),
                );
                if let Some(first) = seen.insert(key, index) {
                    self.error(
                        "duplicate-record",
                        &path,
                        format!(
                            "a second {} record named `{}` (the first is `dns.records[{first}]`)",
                            record.record_type.as_str(),
                            record.name
                        ),
                        "one record per name and type",
                    );
                }
                if record.data.is_none() && target_droplet.is_none() {
                    self.error(
                        "missing-field",
                        &path,
                        format!("DNS record `{}` has no `data` and there is no droplet whose address it could take", record.name),
                        "`data = \"203.0.113.7\"`, or a droplet target",
                    );
                }
                if record.data.is_none() && record.record_type != RecordType::A {
                    self.error(
                        "missing-field",
                        &path,
                        format!(
                            "{} record `{}` needs `data`",
                            record.record_type.as_str(),
                            record.name
                        ),
                        "`data = \"…\"`",
                    );
                }
            }
        }
    }

    fn edge(&mut self, config: &Config) {
        let Some(edge) = &config.edge else {
            if !config.routes.is_empty() {
                self.error(
                    "missing-edge",
                    "routes",
                    "routes need an `[edge]`: nothing else may publish ports".into(),
                    "an `[edge]` section with `image`",
                );
            }
            return;
        };
        if let Some(tls) = &edge.tls {
            if production_certificates_refused(
                tls.ca == Some(CertificateAuthority::Production),
                config.stack.allow_production_certificates,
            ) {
                self.error(
                    "policy-production-certificates",
                    "edge.tls.ca",
                    "the edge asks Let's Encrypt production for certificates, which is not allowed for this stack".into(),
                    "\"staging\" (the default) until production is explicitly allowed",
                )
                .hint = Some("production has strict rate limits; set `[stack] allow_production_certificates = true` once staging works".into());
            }
        }
        if let Some(networks) = &edge.networks {
            for (index, network) in networks.iter().enumerate() {
                if !is_simple_name(network) {
                    self.error(
                        "invalid-name",
                        &index_path("edge.networks", index),
                        format!("network name `{network}` is not valid"),
                        "lowercase letters, digits, `-` and `_`",
                    );
                }
            }
        }
    }

    fn files(&mut self, config: &Config) {
        for (name, file) in &config.files {
            let base = child_path("files", name);
            if name == "traefik-static" {
                self.error(
                    "reserved-name",
                    &base,
                    "`files.traefik-static` is the edge's own configuration file".into(),
                    "another file name",
                );
            }
            if file.source.is_some() == file.content.is_some() {
                self.error(
                    "invalid-file",
                    &base,
                    format!("file `{name}` needs exactly one of `source` and `content`"),
                    "`source = \"config/app.conf\"` or `content = \"…\"`",
                );
            }
            let root = host_root(config);
            let path = &file.path;
            if !stays_inside(path) {
                self.error(
                    "path-outside-root",
                    &child_path(&base, "path"),
                    format!("the path of `files.{name}` contains `..`: it would be written outside the directory it names"),
                    "a path without `..` components",
                );
            } else if path.starts_with('/')
                && !file.allow_outside_root
                && !path.starts_with(&format!("{}/", root.trim_end_matches('/')))
            {
                self.error(
                    "path-outside-root",
                    &child_path(&base, "path"),
                    format!("`files.{name}` would be written to `{path}`, outside the stack's directory `{root}` on the host"),
                    "a relative path (under `<root>/files/`), or `allow_outside_root = true` if it must be there",
                )
                .hint = Some("files are written as the SSH user, often root: a path elsewhere (say `/etc/…`) must be meant, so say so with `allow_outside_root = true`".into());
            }
            if let Some(owner) = &file.owner {
                let numeric = owner.split_once(':').is_some_and(|(uid, gid)| {
                    uid.parse::<u32>().is_ok() && gid.parse::<u32>().is_ok()
                });
                if !numeric {
                    self.error(
                        "invalid-value",
                        &child_path(&base, "owner"),
                        format!("`{owner}` is not a numeric owner"),
                        "`\"UID:GID\"` in numbers, e.g. \"999:999\" (the host may have no user of that name)",
                    );
                }
            }
            if let Some(mode) = &file.mode {
                if file_mode(mode).is_none() {
                    self.error(
                        "invalid-value",
                        &child_path(&base, "mode"),
                        format!("`{mode}` is not an octal file mode"),
                        "a mode such as \"0644\" or \"0600\"",
                    );
                }
            }
        }
    }

    fn services(&mut self, config: &Config) {
        let mut graph: DiGraphMap<&str, ()> = DiGraphMap::new();
        for (name, service) in &config.services {
            let base = child_path("services", name);
            graph.add_node(name.as_str());
            if name == "edge" {
                self.error(
                    "reserved-name",
                    &base,
                    "`services.edge` is reserved for the Traefik edge; configure it in `[edge]`"
                        .into(),
                    "another service name",
                );
            }
            if service.image.is_some() == service.build.is_some() {
                self.error(
                    "image-or-build",
                    &base,
                    format!("service `{name}` needs exactly one of `image` and `build`"),
                    "`image = \"postgres:16\"` or `build = \"./api\"`",
                );
            }
            self.build_args(name, service, &base);
            if !service.ports.is_empty() {
                self.error(
                    "policy-published-port",
                    &child_path(&base, "ports"),
                    format!("service `{name}` publishes host ports; only the edge may"),
                    "no `ports`: reach it through a `[routes.*]` entry on the edge, or keep it internal",
                )
                .hint = Some(format!("remove `ports` and add a route with `service = \"{name}\"` if it must be public"));
            }
            for (index, dependency) in service.depends_on.iter().enumerate() {
                let path = index_path(&child_path(&base, "depends_on"), index);
                self.reference(&path, "service", dependency, &config.services);
                if config.services.contains_key(dependency) {
                    graph.add_edge(name.as_str(), dependency.as_str(), ());
                }
            }
            for (index, volume) in service.volumes.iter().enumerate() {
                let mount = Mount::parse(volume);
                if let Some(mount) = &mount {
                    if mount.is_relative_bind() {
                        self.error(
                            "invalid-volume",
                            &index_path(&child_path(&base, "volumes"), index),
                            format!("bind source `{}` is relative: it would point into this checkout, not at the host", mount.source),
                            "an absolute path on the host, or a named volume",
                        )
                        .hint = Some("to ship a file from this repository to the host, use `[files.<name>]` and mount its path".into());
                    }
                }
                if mount.is_none() {
                    self.error(
                        "invalid-volume",
                        &index_path(&child_path(&base, "volumes"), index),
                        format!("volume `{volume}` is not `source:/path[:ro]`"),
                        "`pgdata:/var/lib/postgresql/data` or `/srv/files:/files:ro`",
                    );
                }
            }
            if let Some(memory) = &service.memory {
                if memory_bytes(memory).is_none() {
                    self.error(
                        "invalid-value",
                        &child_path(&base, "memory"),
                        format!("memory limit `{memory}` is not understood"),
                        "a size such as `512m` or `1g`",
                    );
                }
            }
            for (field, value) in [
                ("stop_grace_period", &service.stop_grace_period),
                ("drain", &service.drain),
            ] {
                if let Some(text) = value {
                    if duration_milliseconds(text).is_none() {
                        self.error(
                            "invalid-value",
                            &child_path(&base, field),
                            format!("`{text}` is not a duration"),
                            "a duration such as `10s`, `500ms` or `1m30s`",
                        );
                    }
                }
            }
            if let Some(health) = &service.health {
                let path = child_path(&base, "health");
                // On a swarm both may be given: `command` is Docker's check inside the
                // container (an image without curl), `http` the edge's check of each task.
                let on_swarm = config
                    .target
                    .as_ref()
                    .is_some_and(|target| target.swarm.is_some());
                if health.http.is_none() && health.command.is_none() {
                    self.error(
                        "invalid-health",
                        &path,
                        format!("the health check of `{name}` needs `http` or `command`"),
                        "`http = \"/health\"` or `command = [\"CMD\", …]`",
                    );
                } else if health.http.is_some() && health.command.is_some() && !on_swarm {
                    self.error("invalid-health", &path, format!("the health check of `{name}` needs exactly one of `http` and `command` (both only on a swarm, where the edge checks each task on `http`)"), "`http = \"/health\"` or `command = [\"CMD\", …]`");
                }
                if health.http.is_some() && service.port.is_none() {
                    self.error(
                        "invalid-health",
                        &path,
                        format!("an HTTP health check needs the port `{name}` listens on"),
                        "`port = 8000` on the service",
                    );
                }
                for (field, value) in [
                    ("interval", &health.interval),
                    ("timeout", &health.timeout),
                    ("start_period", &health.start_period),
                ] {
                    if let Some(text) = value {
                        if duration_seconds(text).is_none() {
                            self.error(
                                "invalid-value",
                                &child_path(&path, field),
                                format!("`{text}` is not a duration"),
                                "a duration such as `5s` or `1m`",
                            );
                        }
                    }
                }
            }
            if let Some(release) = &service.release {
                let path = child_path(&base, "release");
                if release.command.is_empty() {
                    self.error(
                        "invalid-value",
                        &child_path(&path, "command"),
                        format!("the release task of `{name}` has an empty command"),
                        "e.g. `command = [\"python\", \"manage.py\", \"migrate\", \"--noinput\"]`",
                    );
                }
                if let Some(text) = &release.timeout {
                    if duration_seconds(text).is_none_or(|seconds| seconds <= 0) {
                        self.error(
                            "invalid-value",
                            &child_path(&path, "timeout"),
                            format!("`{text}` is not a duration"),
                            "a duration such as `10m` or `90s`",
                        );
                    }
                }
            }
            for (index, network) in service.networks.iter().flatten().enumerate() {
                if !is_simple_name(network) {
                    self.error(
                        "invalid-name",
                        &index_path(&child_path(&base, "networks"), index),
                        format!("network name `{network}` is not valid"),
                        "lowercase letters, digits, `-` and `_`",
                    );
                }
            }
        }
        self.cycles(&graph, "services", "depends_on", "service dependency");
    }

    /// The hardened default's settings, and the policy every service is held to: a
    /// non-root user, memory and CPU limits, no privileged mode, and a reason for every
    /// exception. Policy findings are warnings (errors with `--strict`).
    fn hardening(&mut self, config: &Config) {
        for (name, service) in &config.services {
            let base = child_path("services", name);
            if let Some(limit) = service.pids_limit {
                if limit <= 0 {
                    self.error(
                        "invalid-value",
                        &child_path(&base, "pids_limit"),
                        format!("process limit `{limit}` of `{name}` is not a positive number"),
                        "a number such as `256` (the default)",
                    );
                }
            }
            for (index, mount) in service.tmpfs.iter().enumerate() {
                if let Err(reason) = tmpfs_mount(mount) {
                    self.error(
                        "invalid-value",
                        &index_path(&child_path(&base, "tmpfs"), index),
                        format!("tmpfs mount `{mount}` of `{name}` is refused: {reason}"),
                        "`\"/tmp\"` or `\"/run:size=16m\"`",
                    );
                }
            }
            if let Some(security) = &service.security {
                let path = child_path(&base, "security");
                for (index, capability) in security.cap_add.iter().enumerate() {
                    let normalised = capability_name(capability);
                    if !KNOWN_CAPABILITIES.contains(&normalised.as_str()) {
                        let hint = did_you_mean(&normalised, KNOWN_CAPABILITIES.iter().copied());
                        self.error(
                            "invalid-value",
                            &index_path(&child_path(&path, "cap_add"), index),
                            format!("`{capability}` is not a Linux capability"),
                            "a capability such as `NET_BIND_SERVICE` or `CHOWN`",
                        )
                        .hint = hint;
                    }
                }
                if security.relaxes() && service.security_reason().is_none() {
                    self.policy(
                        "policy-security-reason",
                        &path,
                        format!("service `{name}` relaxes the hardened default without saying why"),
                        "a `reason` beside `cap_add`, `privileged` or `new_privileges`",
                        "add `reason = \"…\"` to the section: it is shown in the plan and the security report".into(),
                    );
                }
                if security.privileged && service.security_reason().is_none() {
                    self.policy(
                        "policy-privileged",
                        &child_path(&path, "privileged"),
                        format!("service `{name}` runs privileged: every capability and every device of the host"),
                        "`privileged = false` (the default)",
                        "add only the capabilities it needs to `cap_add`; if it really must be privileged, say why in `reason`".into(),
                    );
                }
            }
            // What is missing, in one finding per service with the lines to add.
            let mut missing = Vec::new();
            let mut lines = Vec::new();
            if service.user.is_none() {
                missing.push("a non-root `user` (its image's may be root)");
                lines.push("user = \"10001\"".to_string());
            }
            if service.memory.is_none() {
                missing.push("a memory limit");
                lines.push("memory = \"256m\"".to_string());
            }
            if service.cpus.is_none() {
                missing.push("a CPU limit");
                lines.push("cpus = 0.5".to_string());
            }
            if !missing.is_empty() {
                self.policy(
                    "policy-unhardened-service",
                    &base,
                    format!(
                        "service `{name}` runs without {}: a leak, a busy loop or an exploit reaches the whole host",
                        english_list(&missing)
                    ),
                    "a non-root `user`, `memory` and `cpus`",
                    format!(
                        "add {} to `[services.{name}]` (with the values it needs; the image's own unprivileged user, such as `\"postgres\"`, is fine)",
                        lines.iter().map(|line| format!("`{line}`")).collect::<Vec<_>>().join(", ")
                    ),
                );
            }
            if let Some(user) = service.user.as_deref().filter(|user| runs_as_root(user)) {
                self.policy(
                    "policy-root-user",
                    &child_path(&base, "user"),
                    format!("service `{name}` runs as root (`user = \"{user}\"`)"),
                    "a non-root `user`",
                    "set an unprivileged user such as `\"10001\"`".into(),
                );
            }
        }
    }

    /// A policy finding: a warning (an error with `--strict`) with its fix.
    fn policy(
        &mut self,
        code: &'static str,
        path: &str,
        message: String,
        expected: &str,
        hint: String,
    ) {
        self.found.push(
            Diagnostic::warning(code, message)
                .at(self.map.value(path))
                .expected(expected)
                .hint(hint),
        );
    }

    /// `[networks.<name>]`: a valid name that some service (or the edge) joins.
    fn networks(&mut self, config: &Config) {
        let mut joined: BTreeSet<String> = config
            .services
            .values()
            .flat_map(ServiceConfig::network_names)
            .collect();
        if let Some(edge) = &config.edge {
            joined.extend(edge.networks.iter().flatten().cloned());
        }
        for name in config.networks.keys() {
            let path = child_path("networks", name);
            if !is_simple_name(name) {
                self.error(
                    "invalid-name",
                    &path,
                    format!("network name `{name}` is not valid"),
                    "lowercase letters, digits, `-` and `_`",
                );
            } else if !(joined.contains(name) || (config.edge.is_some() && name == "edge")) {
                let hint = did_you_mean(name, joined.iter().map(String::as_str));
                self.found.push(
                    Diagnostic::warning(
                        "unused-network",
                        format!("`[networks.{name}]` sets a network no service joins"),
                    )
                    .at(self.map.value(&path))
                    .expected("the name of a network in a service's `networks`")
                    .hint_if(hint),
                );
            }
        }
    }

    fn cycles(&mut self, graph: &DiGraphMap<&str, ()>, section: &str, field: &str, what: &str) {
        for component in petgraph::algo::tarjan_scc(graph) {
            let is_cycle = component.len() > 1 || graph.contains_edge(component[0], component[0]);
            if !is_cycle {
                continue;
            }
            let mut members: Vec<&str> = component.clone();
            members.sort();
            let path = child_path(&child_path(section, members[0]), field);
            let mut loop_text: Vec<String> =
                members.iter().map(|member| format!("`{member}`")).collect();
            loop_text.push(format!("`{}`", members[0]));
            self.error(
                "cycle",
                &path,
                format!("{what} cycle: {}", loop_text.join(" → ")),
                "no cycles: something has to start first",
            )
            .hint = Some(format!("members of the cycle: {}", members.join(", ")));
        }
    }

    fn routes(&mut self, config: &Config) {
        for (name, route) in &config.routes {
            let base = child_path("routes", name);
            self.reference(
                &child_path(&base, "service"),
                "service",
                &route.service,
                &config.services,
            );
            if let Some(service) = config.services.get(&route.service) {
                if service.port.is_none() {
                    self.error(
                        "missing-field",
                        &child_path(&base, "service"),
                        format!(
                            "route `{name}` sends traffic to `{}`, which has no `port`",
                            route.service
                        ),
                        "a service with `port = <container port>`",
                    );
                }
                if service.dashboard {
                    let protection = route_protection(&route.middlewares, &config.middlewares);
                    let missing = missing_dashboard_protections(&protection);
                    if !missing.is_empty() {
                        self.error(
                            "policy-dashboard-exposed",
                            &child_path(&base, "middlewares"),
                            format!("route `{name}` exposes the dashboard `{}` without {}", route.service, missing.join(" and ")),
                            "middlewares including a `basic_auth` and an `ip_allow_list`",
                        )
                        .hint = Some("dashboards leak task arguments and can revoke work: guard them with both".into());
                    }
                }
            }
            if route.rule.is_some() == route.host.is_some() {
                self.error(
                    "invalid-route",
                    &base,
                    format!("route `{name}` needs exactly one of `host` and `rule`"),
                    "`host = \"example.com\"` (with an optional `path_prefix`) or a raw `rule`",
                );
            }
            if route.rule.is_some() && route.path_prefix.is_some() {
                self.error(
                    "invalid-route",
                    &child_path(&base, "path_prefix"),
                    format!("route `{name}`: `path_prefix` goes with `host`, not with `rule`"),
                    "the prefix inside the rule: PathPrefix(`/api`)",
                );
            }
            for (index, middleware) in route.middlewares.iter().enumerate() {
                let path = index_path(&child_path(&base, "middlewares"), index);
                self.reference(&path, "middleware", middleware, &config.middlewares);
            }
            self.route_matchers(name, &base, route);
        }
    }

    /// The route's `host`, `path_prefix` and `rule` as Traefik will read them, variables
    /// resolved: values that stay inside their matcher, and a rule that parses.
    fn route_matchers(&mut self, name: &str, base: &str, route: &RouteConfig) {
        let resolved = |raw: &str| {
            let interpolated = self.environment.interpolate(raw);
            // An unresolved variable is reported on its own.
            interpolated.missing.is_empty().then_some(interpolated.text)
        };
        if let Some(host) = route.host.as_deref().and_then(resolved) {
            if let Err(problem) = traefik_rule::check_host(&host) {
                self.error(
                    "invalid-rule",
                    &child_path(base, "host"),
                    format!("the host of route `{name}` {problem}"),
                    "a host name such as `example.com`",
                )
                .hint = Some("a host is one matcher's value, never rule text; write a raw `rule` to combine matchers".into());
            }
        }
        if let Some(prefix) = route.path_prefix.as_deref().and_then(resolved) {
            if let Err(problem) = traefik_rule::check_path(&prefix) {
                self.error(
                    "invalid-rule",
                    &child_path(base, "path_prefix"),
                    format!("the path prefix of route `{name}` {problem}"),
                    "a path such as `/api`",
                );
            }
        }
        if let Some(rule) = route.rule.as_deref().and_then(resolved) {
            if let Err(error) = traefik_rule::parse(&rule) {
                self.error(
                    "invalid-rule",
                    &child_path(base, "rule"),
                    format!(
                        "the rule of route `{name}` is not a Traefik v3 rule: {} (at character {} of the rule)",
                        error.message,
                        error.offset + 1
                    ),
                    "matchers such as Host(`example.com`) combined with `&&`, `||`, `!` and parentheses",
                );
            }
        }
    }

    fn middlewares(&mut self, config: &Config) {
        let mut graph: DiGraphMap<&str, ()> = DiGraphMap::new();
        for (name, middleware) in &config.middlewares {
            graph.add_node(name.as_str());
            let base = child_path("middlewares", name);
            match middleware {
                MiddlewareConfig::Chain { middlewares } => {
                    for (index, member) in middlewares.iter().enumerate() {
                        let path = index_path(&child_path(&base, "middlewares"), index);
                        self.reference(&path, "middleware", member, &config.middlewares);
                        if config.middlewares.contains_key(member) {
                            graph.add_edge(name.as_str(), member.as_str(), ());
                        }
                    }
                }
                MiddlewareConfig::RateLimit {
                    period: Some(period),
                    ..
                } if duration_seconds(period).is_none() => {
                    self.error(
                        "invalid-value",
                        &child_path(&base, "period"),
                        format!("`{period}` is not a duration"),
                        "a duration such as `1s` or `1m`",
                    );
                }
                MiddlewareConfig::BasicAuth { users, .. } if users.is_empty() => {
                    self.error(
                        "invalid-value",
                        &child_path(&base, "users"),
                        format!("basic auth `{name}` has no users"),
                        "`users = { admin = \"${FLOWER_PASSWORD}\" }`",
                    );
                }
                MiddlewareConfig::BasicAuth { users, .. } => {
                    for user in users.keys() {
                        if user.is_empty()
                            || user.contains(':')
                            || user.chars().any(char::is_whitespace)
                        {
                            self.error(
                                "invalid-value",
                                &child_path(&child_path(&base, "users"), user),
                                format!("`{user}` is not a usable basic-auth user name"),
                                "a user name without `:` or spaces",
                            );
                        }
                    }
                }
                MiddlewareConfig::IpAllowList { source_range } => {
                    let path = child_path(&base, "source_range");
                    if source_range.is_empty() {
                        self.error(
                            "invalid-value",
                            &path,
                            format!("the allow list `{name}` is empty: it would admit nobody"),
                            "at least one address or CIDR, e.g. `203.0.113.0/24`",
                        );
                    }
                    self.ip_ranges(&path, source_range);
                }
                _ => {}
            }
        }
        self.cycles(&graph, "middlewares", "middlewares", "middleware chain");
    }

    /// Each entry, variables resolved, is an IP address or a CIDR range.
    fn ip_ranges(&mut self, path: &str, ranges: &[String]) {
        for (index, raw) in ranges.iter().enumerate() {
            let resolved = self.environment.interpolate(raw);
            if resolved.missing.is_empty() && !is_ip_range(&resolved.text) {
                let shown = if resolved.secret {
                    raw.clone()
                } else {
                    resolved.text
                };
                self.error(
                    "invalid-cidr",
                    &index_path(path, index),
                    format!("`{shown}` is not an IP address or CIDR range"),
                    "an address or range such as `203.0.113.7` or `203.0.113.0/24` (IPv6 too)",
                );
            }
        }
    }

    fn checks(&mut self, config: &Config) {
        for (index, check) in config.checks.iter().enumerate() {
            if !(check.url.starts_with("http://") || check.url.starts_with("https://")) {
                self.error(
                    "invalid-value",
                    &child_path(&index_path("checks", index), "url"),
                    format!("check URL `{}` is not http(s)", check.url),
                    "`https://example.com/health`",
                );
            }
        }
    }

    /// Every `${VAR}` resolves, and `.env.example` lists exactly the variables used.
    fn variables(
        &mut self,
        document: &serde_json::Value,
        environment: &Environment,
        base_directory: &Path,
        env_path: Option<&Path>,
    ) {
        let mut used: BTreeMap<String, String> = BTreeMap::new();
        let mut strings = Vec::new();
        collect_strings(document, "", &mut strings);
        for (path, text) in &strings {
            for name in variables_in(text) {
                used.entry(name.clone()).or_insert_with(|| path.clone());
                if environment.is_secret(&name) && is_build_arg(path) {
                    self.error(
                        "policy-secret-in-build-args",
                        path,
                        format!("the secret `${{{name}}}` is used as a build argument: Docker keeps build arguments in the image's history, readable by anyone who has the image"),
                        "no secrets in `build_args`",
                    )
                    .hint = Some(format!(
                        "give the secret to the running container in `env` instead; if `{name}` is not secret, list it in `[stack] not_secrets`"
                    ));
                } else if environment.is_secret(&name) && is_response_header(path) {
                    self.error(
                        "policy-secret-in-response-header",
                        path,
                        format!("the secret `${{{name}}}` is used in a response header: the edge would send it to every client"),
                        "no secrets in `custom_response_headers`",
                    )
                    .hint = Some(format!("if `{name}` is not secret, list it in `[stack] not_secrets`"));
                } else if environment.is_secret(&name) && !carries_secrets(path) {
                    self.error(
                        "policy-secret-in-plain-field",
                        path,
                        format!("the secret `${{{name}}}` is used in `{path}`, which plans and state show in plain text"),
                        "secrets only in `services.<name>.env`, basic-auth `users` or `files.<name>.content`",
                    )
                    .hint = Some(format!(
                        "pass it to the container in `env` and expand it there (`$${name}` in a shell command); if `{name}` is not secret, list it in `[stack] not_secrets`"
                    ));
                }
                if !environment.is_secret(&name) && !environment.declared_not_secret(&name) {
                    self.secret_looking_variable(&name, path, environment);
                }
                let has_default = text.contains(&format!("${{{name}:-"));
                if environment.get(&name).is_none() && !has_default {
                    let source = env_path
                        .map(|path| format!("`{}`", path.display()))
                        .unwrap_or_else(|| "an env file".into());
                    self.error(
                        "unresolved-variable",
                        path,
                        format!("`${{{name}}}` has no value"),
                        &format!("`{name}` set in {source} or in the environment"),
                    )
                    .hint = Some(format!("add `{name}=…` to {source}, or export it; `.env.example` lists every variable"));
                }
            }
        }
        self.secret_looking_literals(document);
        let example_path = base_directory.join(".env.example");
        let example_text = read_regular_file(&example_path).ok();
        // Validating with `.env.example` itself: its values are placeholders by design.
        let env_is_example = env_path.is_some_and(|env_path| {
            env_path.canonicalize().ok() == example_path.canonicalize().ok()
                && example_text.is_some()
        });
        if !env_is_example {
            let placeholders = example_text
                .as_deref()
                .and_then(|text| super::env_file::parse(text, &BTreeMap::new()).ok())
                .unwrap_or_default();
            self.weak_secrets(&used, environment, &placeholders);
        }
        let Some(example) = example_text else {
            if !used.is_empty() {
                self.found.push(Diagnostic::warning(
                    "env-example-missing",
                    format!("the stack uses {} variables but there is no `.env.example` listing them", used.len()),
                ).hint("add `.env.example` with every variable and a placeholder value"));
            }
            return;
        };
        let listed: BTreeSet<String> = example
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| line.trim_start_matches("export ").split('=').next())
            .map(|name| name.trim().to_string())
            .collect();
        for (name, path) in &used {
            if !listed.contains(name) {
                self.error(
                    "env-example-parity",
                    path,
                    format!("`{name}` is used here but `.env.example` does not list it"),
                    "every variable the stack uses listed in `.env.example`",
                )
                .hint = Some(format!("add `{name}=` to `.env.example`"));
            }
        }
        for name in &listed {
            if !used.contains_key(name) {
                self.found.push(
                    Diagnostic::error(
                        "env-example-parity",
                        format!("`.env.example` lists `{name}`, which the stack never uses"),
                    )
                    .hint(format!(
                        "remove `{name}` from `.env.example`, or use it in stack.toml"
                    )),
                );
            }
        }
    }
}

impl Checks<'_> {
    /// A service's build arguments: only with `build`, named as Docker's `ARG` allows, and
    /// never a literal under a secret's name (Docker keeps build arguments in the image's
    /// history; secrets given as `${VAR}` are refused with the other variables).
    fn build_args(&mut self, name: &str, service: &ServiceConfig, base: &str) {
        let path = child_path(base, "build_args");
        if !service.build_args.is_empty() && service.build.is_none() {
            self.error(
                "build-args-without-build",
                &path,
                format!(
                    "service `{name}` has `build_args` but no `build`: there is nothing to build"
                ),
                "`build = \"./app\"` beside `build_args`, or no `build_args`",
            );
        }
        for (argument, value) in &service.build_args {
            let argument_path = child_path(&path, argument);
            let valid_name = argument
                .chars()
                .next()
                .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
                && argument
                    .chars()
                    .all(|character| character.is_ascii_alphanumeric() || character == '_');
            if !valid_name {
                self.error(
                    "invalid-name",
                    &argument_path,
                    format!("`{argument}` is not a build argument name"),
                    "letters, digits and `_`, not starting with a digit, as in a Dockerfile's `ARG BASE`",
                );
            }
            let declared_not_secret = self.environment.declared_not_secret(argument);
            if !value.contains("${")
                && secret_hints::name_looks_secret(argument)
                && !declared_not_secret
            {
                self.error(
                    "policy-secret-in-build-args",
                    &argument_path,
                    format!("the build argument `{argument}` looks like a secret: Docker keeps build arguments in the image's history, and plans and state show them"),
                    "no secrets in `build_args`",
                )
                .hint = Some(format!(
                    "give the secret to the running container in `env` instead; if `{argument}` is not secret, list it in `[stack] not_secrets`"
                ));
            }
        }
    }

    /// A variable the naming rule does not make secret, but whose name or value looks
    /// like one: plans and state would show it. Warned once per variable.
    /// Secrets that are the `.env.example` placeholder, short, or low in entropy: each a
    /// warning at the first place the stack uses it, naming the weakness, never the value.
    fn weak_secrets(
        &mut self,
        used: &BTreeMap<String, String>,
        environment: &Environment,
        placeholders: &BTreeMap<String, String>,
    ) {
        for (name, path) in used {
            if !environment.is_secret(name) {
                continue;
            }
            let Some(value) = environment.get(name) else {
                continue;
            };
            let Some(weakness) =
                secret_hints::secret_weakness(value, placeholders.get(name).map(String::as_str))
            else {
                continue;
            };
            let why = match weakness {
                secret_hints::Weakness::Placeholder => {
                    "is the placeholder `.env.example` shows everyone".to_string()
                }
                secret_hints::Weakness::Short { length } => format!(
                    "is {length} characters long (at least {} expected)",
                    secret_hints::MINIMUM_SECRET_LENGTH
                ),
                secret_hints::Weakness::LowEntropy { bits } => format!(
                    "carries about {bits:.0} bits of randomness (at least {:.0} expected)",
                    secret_hints::MINIMUM_SECRET_BITS
                ),
            };
            self.found.push(
                Diagnostic::warning(
                    "weak-secret",
                    format!("the secret `${{{name}}}` {why}"),
                )
                .at(self.map.value(path))
                .hint(format!(
                    "delete `{name}` from the env file and run `stackctl secrets generate` to get a strong random value"
                )),
            );
        }
    }

    fn secret_looking_variable(&mut self, name: &str, path: &str, environment: &Environment) {
        let by_name = secret_hints::name_looks_secret(name);
        let by_value = environment
            .get(name)
            .is_some_and(secret_hints::value_looks_secret);
        if !(by_name || by_value) {
            return;
        }
        let already = self.found.iter().any(|found| {
            found.code == "secret-not-declared" && found.message.contains(&format!("`${{{name}}}`"))
        });
        if already {
            return;
        }
        let why = if by_name {
            "its name looks like a secret's"
        } else {
            "its value looks like a generated secret"
        };
        self.found.push(
            Diagnostic::warning(
                "secret-not-declared",
                format!("`${{{name}}}` is not treated as a secret, but {why}: plans would show it and state would store it in plain text"),
            )
            .at(self.map.value(path))
            .expected("a secret declared in `[stack] secrets`")
            .hint(format!("add `secrets = [\"{name}\"]` to `[stack]` (or, if it is not secret, `not_secrets = [\"{name}\"]`)")),
        );
    }

    /// A literal (no `${VAR}`) under a secret-looking key of a service's `env` or a
    /// header: the secret is committed in stack.toml and shown in plans.
    fn secret_looking_literals(&mut self, document: &serde_json::Value) {
        let Some(services) = document
            .get("services")
            .and_then(serde_json::Value::as_object)
        else {
            return;
        };
        for (service, table) in services {
            let Some(env) = table.get("env").and_then(serde_json::Value::as_object) else {
                continue;
            };
            for (key, value) in env {
                let Some(text) = value.as_str() else { continue };
                if text.is_empty() || text.contains("${") || !secret_hints::name_looks_secret(key) {
                    continue;
                }
                let path = child_path(&child_path(&child_path("services", service), "env"), key);
                self.found.push(
                    Diagnostic::warning(
                        "secret-literal",
                        format!("`{path}` holds a literal value under a name that looks secret: it is committed in stack.toml, shown in plans and stored in state"),
                    )
                    .at(self.map.value(&path))
                    .expected(format!("`\"${{{key}}}\"`, with the value in the env file"))
                    .hint(format!("move the value to the env file as `{key}=…`, write `{key} = \"${{{key}}}\"` here, and if the name does not end in _PASSWORD, _SECRET, _TOKEN or _KEY add `secrets = [\"{key}\"]` to `[stack]`")),
                );
            }
        }
    }
}

fn collect_strings(value: &serde_json::Value, path: &str, found: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::String(text) if text.contains('$') => {
            found.push((path.to_string(), text.clone()))
        }
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                collect_strings(item, &index_path(path, index), found);
            }
        }
        serde_json::Value::Object(entries) => {
            for (key, item) in entries {
                collect_strings(item, &child_path(path, key), found);
            }
        }
        _ => {}
    }
}

/// What a route's middlewares do, in the terms of the edge's policy: their types in
/// request order, chains expanded.
fn route_protection(names: &[String], all: &BTreeMap<String, MiddlewareConfig>) -> RouteProtection {
    let order = flatten_middlewares(names, all)
        .into_iter()
        .map(MiddlewareConfig::type_name)
        .filter(|type_name| *type_name != "chain")
        .collect();
    RouteProtection { order }
}

/// A header the edge adds to every response.
fn is_build_arg(path: &str) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    matches!(parts.as_slice(), ["services", _, "build_args", ..])
}

fn is_response_header(path: &str) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    matches!(
        parts.as_slice(),
        ["middlewares", _, "custom_response_headers", ..]
    )
}

/// Where a secret may appear: fields that lowering carries as [`stackctl_provider::Secret`]
/// values (masked in plans, digests in state). Anywhere else its plaintext would show.
fn carries_secrets(path: &str) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    matches!(
        parts.as_slice(),
        ["services", _, "env", ..] | ["middlewares", _, "users", ..] | ["files", _, "content"]
    )
}
