//! The Traefik edge: its static file, its container (the only one publishing host
//! ports), and one dynamic file per middleware and route. Traefik's paths inside the
//! container are known here and nowhere else in lowering; Let's Encrypt's directories
//! are the traefik crate's.

use std::collections::BTreeMap;

use stackctl_provider::{Address, ReplaceOrder, Resource, Secret, Value};

use super::host_objects::EDGE_ACME_VOLUME;
use super::services::{hardened, Hardening};
use super::{
    container_mount, map, network_attachments, published_port, texts, Lowering, DOCKER, TRAEFIK,
};
use crate::config::hardening::DEFAULT_PIDS_LIMIT;
use crate::config::{
    CertificateAuthority, EdgeConfig, MiddlewareConfig, RouteConfig, TlsConfig, TlsVersion,
};

use stackctl_traefik::spec::{LETS_ENCRYPT_PRODUCTION, LETS_ENCRYPT_STAGING};

/// The container-side ports of the edge; the host ports come from `[edge]`.
const EDGE_HTTP_PORT: i64 = 80;
const EDGE_HTTPS_PORT: i64 = 443;
/// Why the edge keeps one capability: Traefik runs as root in its image and listens on
/// 80 and 443 inside the container, which needs `NET_BIND_SERVICE` once all are dropped.
const EDGE_SECURITY_REASON: &str = "Traefik listens on ports 80 and 443 inside its container";
/// Traefik's API (ping, routers) inside the container: the traefik crate's port.
const EDGE_ADMIN_PORT: i64 = stackctl_traefik::API_PORT as i64;

/// The static file's address name, and where the container reads it.
const STATIC_FILE: &str = "traefik-static";
const STATIC_FILE_IN_CONTAINER: &str = "/etc/traefik/traefik.yml";

/// Ties the edge container to its static Traefik file, after providers rendered it:
/// Traefik reads the static file only when it starts, so a change to it must replace
/// the edge. (Dynamic files are reloaded live and need no such link.)
pub fn link_edge_to_static_config(resources: &mut [Resource]) {
    let content = resources
        .iter()
        .find(|resource| resource.address == Address::new("file", STATIC_FILE))
        .and_then(|resource| resource.attributes.get("content"))
        .map(|content| stackctl_provider::sha256_hex(content.to_json().to_string().as_bytes()));
    if let Some(hash) = content {
        if let Some(edge) = resources
            .iter_mut()
            .find(|resource| resource.address == Address::new("service", "edge"))
        {
            edge.attributes
                .insert("config_hash".to_string(), Value::Text(hash));
        }
    }
}

impl Lowering<'_> {
    pub(super) fn edge(
        &self,
        edge: &EdgeConfig,
        networks: &[String],
        resources: &mut Vec<Resource>,
    ) {
        resources.push(self.on_host(self.static_file(edge)));
        resources.push(self.on_host(self.edge_service(edge, networks)));
        for (name, middleware) in &self.config.middlewares {
            resources.push(self.on_host(self.middleware(name, middleware)));
        }
        for (name, route) in &self.config.routes {
            resources.push(self.on_host(self.route(name, route, edge)));
        }
    }

    /// `traefik.yml`: entrypoints, TLS floor, dashboard, access log, ACME resolver.
    fn static_file(&self, edge: &EdgeConfig) -> Resource {
        let min_tls_version = match edge.min_tls_version {
            Some(TlsVersion::Tls13) => "VersionTLS13",
            _ => "VersionTLS12",
        };
        let mut static_file = Resource::new(Address::new("file", STATIC_FILE), TRAEFIK)
            .with("path", format!("{}/traefik/traefik.yml", self.root))
            .with("temp_dir", self.traefik_temp_dir())
            .with("dynamic_dir", "/etc/traefik/dynamic")
            .with("http_port", i64::from(edge.http_port))
            .with("https_port", i64::from(edge.https_port))
            .with("redirect_https", edge.redirect_https)
            .with("min_tls_version", min_tls_version)
            .with("dashboard", edge.dashboard)
            .with("access_log", edge.access_log)
            .with("admin_port", EDGE_ADMIN_PORT)
            .with("default_certificate", self.default_certificate());
        if let Some(tls) = &edge.tls {
            static_file = static_file.with("resolver", self.resolver(tls));
        }
        static_file
    }

    /// The edge's self-signed default certificate, generated once on the host: without
    /// one Traefik builds a new certificate on every reload, which slows every swap. The
    /// host's `<root>/traefik` is the container's `/etc/traefik`.
    fn default_certificate(&self) -> Value {
        map([
            (
                "certificate",
                Value::text(format!(
                    "{}/traefik/certs/default-certificate.pem",
                    self.root
                )),
            ),
            (
                "key",
                Value::text(format!("{}/traefik/certs/default-key.pem", self.root)),
            ),
            (
                "certificate_in_edge",
                Value::text("/etc/traefik/certs/default-certificate.pem"),
            ),
            (
                "key_in_edge",
                Value::text("/etc/traefik/certs/default-key.pem"),
            ),
        ])
    }

    /// The ACME resolver: Let's Encrypt staging unless production was asked for
    /// (validation refuses that unless the stack allows it).
    fn resolver(&self, tls: &TlsConfig) -> Value {
        let staging = tls.ca != Some(CertificateAuthority::Production);
        let ca_server = if staging {
            LETS_ENCRYPT_STAGING
        } else {
            LETS_ENCRYPT_PRODUCTION
        };
        map([
            ("name", Value::text(self.text(&tls.resolver))),
            ("email", Value::text(self.text(&tls.email))),
            ("ca_server", Value::text(ca_server)),
            ("staging", Value::Bool(staging)),
            ("storage", Value::text("/acme/acme.json")),
        ])
    }

    /// The Traefik container: HTTP and HTTPS on the bind address, the admin port on
    /// loopback only, the static and dynamic files read-only, certificates in a volume.
    fn edge_service(&self, edge: &EdgeConfig, networks: &[String]) -> Resource {
        let bind = edge
            .bind_address
            .clone()
            .unwrap_or_else(|| "0.0.0.0".to_string());
        let mut ports = vec![
            published_port(&bind, edge.http_port, EDGE_HTTP_PORT),
            published_port(&bind, edge.https_port, EDGE_HTTPS_PORT),
        ];
        if let Some(admin_port) = edge.admin_port {
            ports.push(published_port("127.0.0.1", admin_port, EDGE_ADMIN_PORT));
        }
        let volumes = vec![
            container_mount(
                "bind",
                format!("{}/traefik", self.root),
                "/etc/traefik",
                true,
            ),
            container_mount(
                "volume",
                format!("{}_{EDGE_ACME_VOLUME}", self.stack),
                "/acme",
                false,
            ),
        ];
        let mut service = Resource::new(Address::new("service", "edge"), DOCKER)
            .with("container_name", format!("{}-edge", self.stack))
            .with("image", self.text(&edge.image))
            .with(
                "command",
                texts(&[format!("--configfile={STATIC_FILE_IN_CONTAINER}")]),
            )
            .with("env", Value::Map(BTreeMap::new()))
            .with("ports", Value::List(ports))
            .with("volumes", Value::List(volumes))
            .with("restart", "unless-stopped")
            .with("read_only", false)
            .with("stateful", true)
            .with(
                "networks",
                network_attachments(self.stack, networks, "edge"),
            )
            .depends_on(Address::new("image", "edge"))
            .depends_on(Address::new("file", STATIC_FILE))
            .depends_on(Address::new("volume", EDGE_ACME_VOLUME));
        for network in networks {
            service = service.depends_on(Address::new("network", network));
        }
        let mut service = hardened(
            service,
            &Hardening {
                cap_add: vec!["NET_BIND_SERVICE".to_string()],
                privileged: false,
                no_new_privileges: true,
                pids_limit: DEFAULT_PIDS_LIMIT,
                tmpfs: Vec::new(),
                reason: Some(EDGE_SECURITY_REASON.to_string()),
            },
        );
        // Two Traefiks cannot hold ports 80 and 443 at once.
        service.replace_order = ReplaceOrder::DestroyBeforeCreate;
        service
    }

    fn middleware(&self, name: &str, middleware: &MiddlewareConfig) -> Resource {
        let mut resource = Resource::new(Address::new("middleware", name), TRAEFIK)
            .with("type", middleware.type_name())
            .with("settings", self.middleware_settings(middleware))
            .with("path", self.dynamic_file(&format!("middleware-{name}.yml")))
            .with("temp_dir", self.traefik_temp_dir());
        if let MiddlewareConfig::Chain { middlewares } = middleware {
            for member in middlewares {
                resource = resource.depends_on(Address::new("middleware", member));
            }
        }
        resource
    }

    fn route(&self, name: &str, route: &RouteConfig, edge: &EdgeConfig) -> Resource {
        let mut resource = Resource::new(Address::new("route", name), TRAEFIK)
            .with("rule", self.route_rule(route))
            .with("service", route.service.clone())
            .with("middlewares", texts(&route.middlewares))
            .with("entrypoints", texts(&["websecure".to_string()]))
            .with("path", self.dynamic_file(&format!("route-{name}.yml")))
            .with("temp_dir", self.traefik_temp_dir())
            .depends_on(self.service_address(&route.service));
        if let Some(priority) = route.priority {
            resource = resource.with("priority", priority);
        }
        if let Some(tls) = &edge.tls {
            resource = resource.with("tls_resolver", self.text(&tls.resolver));
        }
        for middleware in &route.middlewares {
            resource = resource.depends_on(Address::new("middleware", middleware));
        }
        resource
    }

    /// The Traefik rule: the raw `rule`, or one built from `host` and `path_prefix`.
    fn route_rule(&self, route: &RouteConfig) -> String {
        match (&route.rule, &route.host) {
            (Some(rule), _) => self.text(rule),
            (None, Some(host)) => {
                let mut rule = format!("Host(`{}`)", self.text(host));
                if let Some(prefix) = &route.path_prefix {
                    rule.push_str(&format!(" && PathPrefix(`{}`)", self.text(prefix)));
                }
                rule
            }
            (None, None) => String::new(),
        }
    }

    /// A middleware's settings under the Traefik provider's names
    /// (providers/traefik/README.md).
    fn middleware_settings(&self, middleware: &MiddlewareConfig) -> Value {
        match middleware {
            MiddlewareConfig::RedirectHttps { permanent } => {
                map([("permanent", Value::Bool(*permanent))])
            }
            MiddlewareConfig::Headers { .. } => self.headers_settings(middleware),
            MiddlewareConfig::RateLimit {
                average,
                burst,
                period,
            } => {
                let mut entries = vec![("average", Value::Integer(*average as i64))];
                if let Some(burst) = burst {
                    entries.push(("burst", Value::Integer(*burst as i64)));
                }
                entries.push((
                    "period",
                    Value::text(period.clone().unwrap_or_else(|| "1s".into())),
                ));
                map(entries)
            }
            MiddlewareConfig::BasicAuth { users, realm } => {
                let users = users
                    .iter()
                    .map(|(user, password)| {
                        let resolved = self.environment.interpolate(password);
                        // A password is a secret whatever its variable is called.
                        (
                            self.text(user),
                            Value::Secret(Secret::new(&resolved.text, self.salt)),
                        )
                    })
                    .collect();
                let mut entries = vec![("users", Value::Map(users))];
                if let Some(realm) = realm {
                    entries.push(("realm", Value::text(self.text(realm))));
                }
                map(entries)
            }
            MiddlewareConfig::IpAllowList { source_range } => {
                map([("source_range", self.resolved_texts(source_range))])
            }
            MiddlewareConfig::StripPrefix { prefixes } => map([("prefixes", texts(prefixes))]),
            MiddlewareConfig::Chain { middlewares } => map([("middlewares", texts(middlewares))]),
        }
    }

    fn headers_settings(&self, middleware: &MiddlewareConfig) -> Value {
        let MiddlewareConfig::Headers {
            hsts_seconds,
            hsts_include_subdomains,
            hsts_preload,
            content_type_nosniff,
            frame_deny,
            referrer_policy,
            remove_server_headers,
            custom_response_headers,
        } = middleware
        else {
            return Value::Null;
        };
        let removed: Vec<String> = if *remove_server_headers {
            vec!["Server".to_string(), "X-Powered-By".to_string()]
        } else {
            Vec::new()
        };
        let custom: BTreeMap<String, Value> = custom_response_headers
            .iter()
            .map(|(key, value)| (key.clone(), self.value(value)))
            .collect();
        let referrer_policy = referrer_policy
            .as_deref()
            .map(|policy| self.text(policy))
            .unwrap_or_default();
        map([
            ("sts_seconds", Value::Integer(*hsts_seconds as i64)),
            (
                "sts_include_subdomains",
                Value::Bool(*hsts_include_subdomains),
            ),
            ("sts_preload", Value::Bool(*hsts_preload)),
            ("content_type_nosniff", Value::Bool(*content_type_nosniff)),
            ("frame_deny", Value::Bool(*frame_deny)),
            ("remove_headers", texts(&removed)),
            ("custom_response_headers", Value::Map(custom)),
            ("referrer_policy", Value::text(referrer_policy)),
        ])
    }
}
