//! The typed form of stack.toml. These types are the single source of truth: the JSON
//! Schema (`stackctl schema`), the structural checks with line and column, and
//! deserialisation all come from them. Strings may hold `${VAR}`; they are resolved
//! during lowering, so secrets stay secrets.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A whole stack.toml.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "stack.toml",
    description = "A stackctl stack: the droplet, firewall, DNS, services, routes and middlewares of one small production web stack."
)]
pub struct Config {
    pub stack: StackSection,
    /// Where the services run. Absent: the only droplet, or this machine if there is none.
    #[serde(default)]
    pub target: Option<TargetSection>,
    #[serde(default)]
    pub droplets: BTreeMap<String, DropletConfig>,
    #[serde(default)]
    pub ssh_keys: BTreeMap<String, SshKeyConfig>,
    #[serde(default)]
    pub firewalls: BTreeMap<String, FirewallConfig>,
    #[serde(default)]
    pub dns: Option<DnsConfig>,
    /// The Traefik edge: the only service that publishes host ports.
    #[serde(default)]
    pub edge: Option<EdgeConfig>,
    /// Configuration files written on the host (mount them into services with a bind).
    #[serde(default)]
    pub files: BTreeMap<String, FileConfig>,
    /// Settings of the Docker networks services join (a network named by a service needs
    /// no entry here: it is made with the defaults).
    #[serde(default)]
    pub networks: BTreeMap<String, NetworkConfig>,
    #[serde(default)]
    pub services: BTreeMap<String, ServiceConfig>,
    #[serde(default)]
    pub routes: BTreeMap<String, RouteConfig>,
    #[serde(default)]
    pub middlewares: BTreeMap<String, MiddlewareConfig>,
    /// HTTP checks run after apply and by `stackctl verify`.
    #[serde(default)]
    pub checks: Vec<CheckConfig>,
    /// Dumps of a Postgres service's database or tars of a volume: made by `stackctl
    /// backup`, before any apply that deletes their data, and restored by `stackctl restore`.
    #[serde(default)]
    pub backups: BTreeMap<String, BackupConfig>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StackSection {
    /// Names the state file (`state/<name>.json`) and prefixes every Docker object.
    pub name: String,
    /// File of `KEY=value` lines for `${VAR}`; the process environment wins.
    #[serde(default)]
    pub env_file: Option<String>,
    /// Variables whose values are secrets, besides those named `*_PASSWORD`, `*_SECRET`,
    /// `*_TOKEN` or `*_KEY`.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Variables named like secrets that are not (for example `SSH_PUBLIC_KEY`).
    #[serde(default)]
    pub not_secrets: Vec<String>,
    /// Allows `[edge.tls] ca = "production"`: real Let's Encrypt certificates.
    #[serde(default)]
    pub allow_production_certificates: bool,
    /// How many successful applies keep their images on the host for `stackctl
    /// rollback` (default 3; what runs now always stays). Older images stackctl built for
    /// this stack are removed after each successful apply.
    #[serde(default)]
    pub keep_images: Option<u32>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// Run on this droplet (a key of `[droplets]`), reached over SSH at its public IPv4.
    #[serde(default)]
    pub droplet: Option<String>,
    /// `"local"` for this machine's Docker, or an existing host reached over SSH.
    #[serde(default)]
    pub host: Option<HostTarget>,
    /// Run on a Docker Swarm formed from these nodes (keys of `[droplets]`): stackctl
    /// initialises it on the first manager, joins the others and keeps it as stack.toml says.
    #[serde(default)]
    pub swarm: Option<SwarmTarget>,
    /// SSH user for a droplet target (default `root`).
    #[serde(default)]
    pub user: Option<String>,
    /// SSH port for a droplet target (default 22).
    #[serde(default)]
    pub port: Option<u16>,
    /// The known_hosts file host keys are checked against (default `~/.ssh/known_hosts`).
    #[serde(default)]
    pub known_hosts: Option<String>,
    /// Private key for SSH (default: `~/.ssh/id_ed25519`).
    #[serde(default)]
    pub identity_file: Option<String>,
    /// Directory on the host for the stack's files (default `/var/lib/stackctl/<stack>`); the host lock lives in `/var/lib/stackctl/.locks`.
    #[serde(default)]
    pub root: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwarmTarget {
    /// Nodes that manage the swarm (keys of `[droplets]`). The first one is where stackctl
    /// talks to the swarm, runs the edge and keeps the stack's files.
    pub managers: Vec<String>,
    /// Nodes that only run tasks (keys of `[droplets]`).
    #[serde(default)]
    pub workers: Vec<String>,
    /// Node labels, by node name, for placement constraints (`node.labels.<key> == <value>`).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum HostTarget {
    /// Only `"local"` is accepted.
    Local(String),
    Remote(RemoteHost),
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteHost {
    pub address: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DropletConfig {
    /// A DigitalOcean region slug, e.g. `fra1`. Changing it replaces the droplet.
    pub region: String,
    /// A size slug, e.g. `s-2vcpu-4gb`. Changing it resizes in place.
    pub size: String,
    /// An image slug, e.g. `docker-20-04`. Changing it replaces the droplet.
    pub image: String,
    /// Keys of `[ssh_keys]` installed on the droplet.
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// A cloud-init file; only its hash is recorded.
    #[serde(default)]
    pub user_data_file: Option<String>,
    #[serde(default)]
    pub monitoring: bool,
    #[serde(default)]
    pub ipv6: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshKeyConfig {
    /// Path of the public key (`~` is expanded).
    #[serde(default)]
    pub public_key_file: Option<String>,
    /// The public key itself, instead of a file.
    #[serde(default)]
    pub public_key: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirewallConfig {
    /// Keys of `[droplets]` this firewall guards.
    pub droplets: Vec<String>,
    #[serde(default)]
    pub inbound: Vec<InboundRule>,
    /// Absent: all outbound traffic allowed.
    #[serde(default)]
    pub outbound: Option<Vec<OutboundRule>>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InboundRule {
    pub protocol: Protocol,
    /// A port (`"22"`), a range (`"8000-8100"`) or `"all"`.
    #[serde(default)]
    pub ports: Option<String>,
    /// CIDRs allowed in (default: everyone, `0.0.0.0/0` and `::/0`).
    #[serde(default)]
    pub sources: Option<Vec<String>>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutboundRule {
    pub protocol: Protocol,
    #[serde(default)]
    pub ports: Option<String>,
    #[serde(default)]
    pub destinations: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// The DigitalOcean domain the records live in.
    pub domain: String,
    #[serde(default)]
    pub records: Vec<DnsRecordConfig>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsRecordConfig {
    #[serde(rename = "type")]
    pub record_type: RecordType,
    /// `@` for the domain itself.
    pub name: String,
    /// Absent for `A`: the target droplet's public IPv4 (known after apply).
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub ttl: Option<u32>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum RecordType {
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "CNAME")]
    Cname,
    #[serde(rename = "TXT")]
    Txt,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Txt => "TXT",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// The Traefik image, e.g. `traefik:v3.3`.
    pub image: String,
    /// When to pull the image: `"missing"` (default), `"always"` or `"never"`.
    #[serde(default)]
    pub pull: Option<PullSetting>,
    #[serde(default = "default_http_port")]
    pub http_port: u16,
    #[serde(default = "default_https_port")]
    pub https_port: u16,
    /// Host address the ports are published on (default `0.0.0.0`).
    #[serde(default)]
    pub bind_address: Option<String>,
    /// Publishes Traefik's ping/API entrypoint on `127.0.0.1:<admin_port>` of the host.
    #[serde(default)]
    pub admin_port: Option<u16>,
    /// Redirect every HTTP request to HTTPS (default true).
    #[serde(default = "default_true")]
    pub redirect_https: bool,
    #[serde(default)]
    pub dashboard: bool,
    #[serde(default = "default_true")]
    pub access_log: bool,
    /// Minimum TLS version: `"1.2"` (default) or `"1.3"`.
    #[serde(default)]
    pub min_tls_version: Option<TlsVersion>,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Networks the edge joins (default: every network of a routed service).
    #[serde(default)]
    pub networks: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum TlsVersion {
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate resolver's name, e.g. `le-staging`.
    pub resolver: String,
    /// The ACME account e-mail.
    pub email: String,
    /// `staging` (default) or `production`; production needs
    /// `[stack] allow_production_certificates = true`.
    #[serde(default)]
    pub ca: Option<CertificateAuthority>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CertificateAuthority {
    Staging,
    Production,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where the file goes on the host; a relative path is under `<root>/files/`.
    pub path: String,
    /// A file beside stack.toml to copy (taken as is: no `${VAR}` inside it).
    #[serde(default)]
    pub source: Option<String>,
    /// The content itself; `${VAR}` works, and a secret variable makes the file secret.
    #[serde(default)]
    pub content: Option<String>,
    /// Permissions in octal, e.g. `"0640"` (default `"0644"`, `"0600"` for a file whose
    /// content holds a secret).
    #[serde(default)]
    pub mode: Option<String>,
    /// The file's owner on the host, numeric `"UID:GID"` (default: the user stackctl
    /// writes as, often root). A key a container reads as a non-root user must be owned
    /// by that user's uid, e.g. `"999:999"` for the shop's Postgres.
    #[serde(default)]
    pub owner: Option<String>,
    /// Allows an absolute `path` outside the stack's root directory on the host (files are
    /// written as the SSH user, often root: a path elsewhere must be meant).
    #[serde(default)]
    pub allow_outside_root: bool,
}

/// `[networks.<name>]`: one Docker network of the stack.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// No way out: containers on it reach each other and nothing else (Docker's
    /// `internal`). A service that needs the internet joins a second network that is not
    /// internal. Changing it makes the network again; its containers are attached to the
    /// new one.
    #[serde(default)]
    pub internal: bool,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// An image reference, e.g. `postgres:16`. Exactly one of `image` and `build`.
    #[serde(default)]
    pub image: Option<String>,
    /// A build context directory (with its Dockerfile), relative to stack.toml.
    #[serde(default)]
    pub build: Option<String>,
    #[serde(default)]
    pub dockerfile: Option<String>,
    /// Build arguments (`ARG` in the Dockerfile) for `build`, e.g. `{ BASE = "debian:bookworm-slim" }`.
    /// They are kept in the image's history, so secrets are refused here.
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    /// When to pull `image`: `"missing"` (default: only when the host lacks it),
    /// `"always"` (follow the registry: a moved tag is a planned update) or `"never"`.
    #[serde(default)]
    pub pull: Option<PullSetting>,
    /// The container port the edge forwards to. Never published on the host.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub health: Option<HealthConfig>,
    /// Networks the service joins (default `["backend"]`).
    #[serde(default)]
    pub networks: Option<Vec<String>>,
    /// `volume:/path[:ro]` (a named volume) or `/host/path:/path[:ro]` (a bind).
    #[serde(default)]
    pub volumes: Vec<String>,
    #[serde(default)]
    pub user: Option<String>,
    /// A memory limit such as `512m` or `1g`.
    #[serde(default)]
    pub memory: Option<String>,
    /// A CPU limit such as `0.5`.
    #[serde(default)]
    pub cpus: Option<f64>,
    #[serde(default)]
    pub restart: Option<RestartPolicy>,
    #[serde(default)]
    pub read_only: bool,
    /// Writable in-memory directories, for the paths a read-only root needs: `"/tmp"` or
    /// `"/run:size=16m"` (options as `mount -t tmpfs` takes them; default
    /// `rw,noexec,nosuid,size=64m`).
    #[serde(default)]
    pub tmpfs: Vec<String>,
    /// The most processes and threads the container may run at once (default 256; a fork
    /// bomb stops there).
    #[serde(default)]
    pub pids_limit: Option<i64>,
    /// What the container may do beyond the hardened default (no capabilities, no new
    /// privileges, not privileged); every exception needs a `reason`.
    #[serde(default)]
    pub security: Option<SecurityConfig>,
    /// Host ports. Only the edge may publish: any entry here is a policy error.
    #[serde(default)]
    pub ports: Vec<String>,
    /// An admin dashboard (Flower): a route to it needs basic auth and an IP allowlist.
    #[serde(default)]
    pub dashboard: bool,
    /// A one-off task run before a new version of the service takes traffic (Django's
    /// `migrate`): from the new image, with the new env, networks, volumes and user.
    #[serde(default)]
    pub release: Option<ReleaseConfig>,
    /// How long the container may take to exit after SIGTERM before it is killed, as in
    /// Compose: e.g. `"30s"` (default `10s`, Docker's). Servers such as uvicorn and
    /// gunicorn finish their requests in flight in that time; a replace or delete waits
    /// for them.
    #[serde(default)]
    pub stop_grace_period: Option<String>,
    /// When a replaced routed container gets SIGTERM: at least this long after the edge
    /// stopped sending it new requests, e.g. `"2s"` (default `0s`: at once). For apps
    /// that exit at once on SIGTERM instead of finishing their requests.
    #[serde(default)]
    pub drain: Option<String>,
    /// On a swarm target: how many tasks (containers) run the service, spread over the
    /// nodes its placement allows (default 1).
    #[serde(default)]
    pub replicas: Option<u32>,
    /// On a swarm target: which nodes may run the service's tasks, and how they spread.
    #[serde(default)]
    pub placement: Option<PlacementConfig>,
    /// On a swarm target: how other services reach this one by name. `"vip"` (default):
    /// one virtual IP, balanced by the kernel's IPVS; `"dnsrr"`: the name resolves to
    /// every task's address (for kernels without IPVS).
    #[serde(default)]
    pub endpoint_mode: Option<EndpointMode>,
    /// On a swarm target: how a change rolls over the tasks of a service no route sends
    /// traffic to (a routed one is switched by stackctl through the edge instead).
    #[serde(default)]
    pub update: Option<UpdateConfig>,
}

/// `[services.<name>.placement]`: Swarm's placement of a service's tasks.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacementConfig {
    /// Conditions a node must meet, as Swarm writes them: `"node.hostname == web-2"`,
    /// `"node.role == manager"`, `"node.labels.zone != b"`.
    #[serde(default)]
    pub constraints: Vec<String>,
    /// Spread the tasks evenly over the values of a node label, in order of preference:
    /// `[{ spread = "node.labels.zone" }]`.
    #[serde(default)]
    pub preferences: Vec<PlacementPreference>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacementPreference {
    /// A node label, e.g. `node.labels.zone`.
    pub spread: String,
}

/// How a swarm service is reached by name.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EndpointMode {
    /// One virtual IP for the service (needs IPVS in the nodes' kernels).
    #[default]
    Vip,
    /// DNS round robin: the name resolves to each task's own address.
    Dnsrr,
}

impl EndpointMode {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointMode::Vip => "vip",
            EndpointMode::Dnsrr => "dnsrr",
        }
    }
}

/// `[services.<name>.update]`: Swarm's rolling update of a service no route sends
/// traffic to. Unset fields take the defaults written beside them.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfig {
    /// How many tasks are replaced at once (default 1; 0 replaces all at once).
    #[serde(default)]
    pub parallelism: Option<u32>,
    /// `"start-first"` (default: the new task runs before the old one stops) or
    /// `"stop-first"` (needed when two tasks cannot share what they hold).
    #[serde(default)]
    pub order: Option<UpdateOrder>,
    /// What Swarm does when a new task fails: `"rollback"` (default) or `"pause"`.
    #[serde(default)]
    pub failure_action: Option<FailureAction>,
    /// How long each new task is watched for a failure, e.g. `"10s"` (default `5s`).
    #[serde(default)]
    pub monitor: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    StartFirst,
    StopFirst,
}

impl UpdateOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateOrder::StartFirst => "start-first",
            UpdateOrder::StopFirst => "stop-first",
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    Rollback,
    Pause,
}

impl FailureAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureAction::Rollback => "rollback",
            FailureAction::Pause => "pause",
        }
    }
}

/// `[services.<name>.security]`: the exceptions to the hardened default, each one
/// visible in the plan and the security report with its reason.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// Linux capabilities given back after all are dropped, e.g. `["NET_BIND_SERVICE"]`
    /// (with or without `CAP_`).
    #[serde(default)]
    pub cap_add: Vec<String>,
    /// Runs the container privileged: every capability and every device of the host.
    #[serde(default)]
    pub privileged: bool,
    /// Lets processes gain privileges through setuid binaries (turns `no-new-privileges`
    /// off).
    #[serde(default)]
    pub new_privileges: bool,
    /// Why the service needs the exceptions above; shown in the plan and the report.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `[services.<name>.release]`: runs when the service's image, env or this command
/// changed (and on the first deploy); must exit 0, or the service is not replaced.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseConfig {
    /// The command, in the image's entrypoint, e.g. `["python", "manage.py", "migrate"]`.
    pub command: Vec<String>,
    /// How long it may run before it is stopped and counted as failed (default `10m`).
    #[serde(default)]
    pub timeout: Option<String>,
}

/// `pull`: a policy with Compose's names, or (as earlier versions wrote it) a bool.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(untagged)]
pub enum PullSetting {
    Policy(PullPolicy),
    /// `true` is `"missing"`, `false` is `"never"`.
    Legacy(bool),
}

/// When an image is pulled (Compose's `pull_policy` names and meanings).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PullPolicy {
    /// Only when the host does not have the image.
    #[default]
    Missing,
    /// Whenever the registry serves another image for the tag than the one running.
    Always,
    /// Never: the image must be on the host (built or loaded there).
    Never,
}

impl PullSetting {
    pub fn policy(self) -> PullPolicy {
        match self {
            PullSetting::Policy(policy) => policy,
            PullSetting::Legacy(true) => PullPolicy::Missing,
            PullSetting::Legacy(false) => PullPolicy::Never,
        }
    }
}

impl PullPolicy {
    /// The policy of an optional `pull` setting.
    pub fn of(setting: Option<PullSetting>) -> PullPolicy {
        setting.map(PullSetting::policy).unwrap_or_default()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Missing => "missing",
            PullPolicy::Always => "always",
            PullPolicy::Never => "never",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// An HTTP path checked inside the container on `port` (with curl or wget). On a
    /// swarm the edge also checks each task of a routed service on it; there it may
    /// come with a `command`, which is then Docker's check.
    #[serde(default)]
    pub http: Option<String>,
    /// A command in Docker's form, e.g. `["CMD", "pg_isready"]`.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// e.g. `5s` (default `5s`).
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default)]
    pub start_period: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    No,
    Always,
    UnlessStopped,
    OnFailure,
}

impl RestartPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure => "on-failure",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Matches this host name. With `path_prefix`, or instead use `rule`.
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// A raw Traefik v3 rule, e.g. ``Host(`a.example`) && Path(`/x`)``.
    #[serde(default)]
    pub rule: Option<String>,
    /// The service (a key of `[services]`) that answers.
    pub service: String,
    #[serde(default)]
    pub middlewares: Vec<String>,
    #[serde(default)]
    pub priority: Option<i64>,
}

/// A Traefik middleware; `type` selects which.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum MiddlewareConfig {
    RedirectHttps {
        #[serde(default = "default_true")]
        permanent: bool,
    },
    Headers {
        /// `Strict-Transport-Security` max-age in seconds (0 leaves HSTS out).
        #[serde(default)]
        hsts_seconds: u64,
        #[serde(default)]
        hsts_include_subdomains: bool,
        #[serde(default)]
        hsts_preload: bool,
        #[serde(default)]
        content_type_nosniff: bool,
        #[serde(default)]
        frame_deny: bool,
        #[serde(default)]
        referrer_policy: Option<String>,
        /// Strip `Server` and `X-Powered-By` from responses.
        #[serde(default)]
        remove_server_headers: bool,
        #[serde(default)]
        custom_response_headers: BTreeMap<String, String>,
    },
    RateLimit {
        /// Requests per `period` on average.
        average: u64,
        #[serde(default)]
        burst: Option<u64>,
        /// e.g. `1s` (default) or `1m`.
        #[serde(default)]
        period: Option<String>,
    },
    BasicAuth {
        /// User name → password (normally `${SOME_PASSWORD}`); stored only as bcrypt.
        users: BTreeMap<String, String>,
        #[serde(default)]
        realm: Option<String>,
    },
    IpAllowList {
        /// CIDRs allowed in; everyone else gets 403.
        source_range: Vec<String>,
    },
    StripPrefix {
        prefixes: Vec<String>,
    },
    Chain {
        middlewares: Vec<String>,
    },
}

impl MiddlewareConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            MiddlewareConfig::RedirectHttps { .. } => "redirect_https",
            MiddlewareConfig::Headers { .. } => "headers",
            MiddlewareConfig::RateLimit { .. } => "rate_limit",
            MiddlewareConfig::BasicAuth { .. } => "basic_auth",
            MiddlewareConfig::IpAllowList { .. } => "ip_allow_list",
            MiddlewareConfig::StripPrefix { .. } => "strip_prefix",
            MiddlewareConfig::Chain { .. } => "chain",
        }
    }
}

/// `[backups.<name>]`: exactly one of `service` (a Postgres database, dumped with
/// `pg_dump`) and `volume` (a tar of a named volume). The name becomes a directory name.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// A Postgres service (a key of `[services]`): `pg_dump --format=custom` runs in a
    /// one-off container from the image its container runs, with its env (so its
    /// password), on its network.
    #[serde(default)]
    pub service: Option<String>,
    /// A named volume of a service (`pgdata` in `volumes = ["pgdata:/data"]`): a tar of
    /// it, made in a one-off container from that service's image that mounts it read-only.
    #[serde(default)]
    pub volume: Option<String>,
    /// The database to dump (default: the service's `POSTGRES_DB`, else its
    /// `POSTGRES_USER`, else `postgres`).
    #[serde(default)]
    pub database: Option<String>,
    /// How many dumps to keep; older ones are removed after each new one (default 7).
    #[serde(default)]
    pub keep: Option<u32>,
    /// Keep dumps on the host, in `<root>/backups/<name>/` (default true).
    #[serde(default = "default_true")]
    pub on_host: bool,
    /// A directory on this machine, relative to stack.toml, that each dump is also copied
    /// to (into `<local_directory>/<name>/`); it stays inside the directory of stack.toml
    /// (no `..`, not absolute).
    #[serde(default)]
    pub local_directory: Option<String>,
    /// How long a dump or a restore may run, e.g. `30m` (default `30m`).
    #[serde(default)]
    pub timeout: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    pub url: String,
    #[serde(default = "default_status")]
    pub expect_status: u16,
    /// Header name → expected value (a value of `*` only requires presence).
    #[serde(default)]
    pub expect_headers: BTreeMap<String, String>,
}

fn default_http_port() -> u16 {
    80
}

fn default_https_port() -> u16 {
    443
}

fn default_true() -> bool {
    true
}

fn default_status() -> u16 {
    200
}
