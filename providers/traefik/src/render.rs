//! Rendering Traefik's configuration files: pure functions from typed specs to YAML text.
//!
//! The edge is configured by one static file, read once when Traefik starts, and by a
//! directory of dynamic files that Traefik's file provider watches and merges. stackctl
//! writes one dynamic file per route, per middleware and per backend service, plus one
//! for the TLS options (TLS options are dynamic configuration in Traefik v3, so the
//! static file cannot hold them). One file per object makes each of them a resource with
//! its own hash, its own diff in a plan and its own drift report.
//!
//! Everything here is a pure function, so a plan can show exactly the bytes apply will
//! write, and the snapshot tests pin those bytes. The rules that shape the output come
//! from Traefik 3.7 as observed (`shared/reference/traefik/README.md`):
//!
//! - **Empty sections are left out.** An empty `middlewares: {}` or `http: {}` makes the
//!   file provider reject the whole directory, so a section is emitted only when it has
//!   content. (A router's `tls: {}` is the exception Traefik accepts, and it means
//!   "terminate TLS with the default certificate".)
//! - **Dynamic files are Go templates.** The file provider runs every dynamic file
//!   through `text/template` before parsing YAML, comments included, so a literal `{{`
//!   from a rule or a header value would break the whole directory. Dynamic output goes
//!   through [`escape_template`], which turns each `{{` into a template action printing
//!   `{{`. The static file is not a template and is left alone.
//! - **Every string is double-quoted** by the emitter, so a rule with backticks and
//!   `&&`, a bcrypt hash with `$`, or a value like `no` reaches Traefik unchanged.
//! - **Redirect ports are strings**, and the static redirect's `to` is `:<port>` when
//!   the public HTTPS port is not 443, so `Location` carries the port the client must
//!   use; with 443 it names the `websecure` entry point and `Location` has no port.
//! - **ACME defaults to Let's Encrypt staging**; production needs `staging = false`
//!   (see [`crate::spec::ResolverSpec`]).
//! - **Basic-auth passwords are written as bcrypt hashes**, never as plaintext. The
//!   salt is derived from the password secret's digest, so the same password renders
//!   the same file on every plan: a plan shows no change unless the password changed.
//!   Because the file still carries credential hashes, its content is treated as
//!   sensitive by the provider.
//!
//! Each file starts with a comment naming stackctl and the resource, which is also how
//! `read` tells a file stackctl wrote from a stranger's.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::spec::{
    BasicAuthSpec, HeadersSpec, IpAllowListSpec, MiddlewareKind, MiddlewareSpec, Password,
    RateLimitSpec, RedirectHttpsSpec, RouteSpec, SpecError, StaticSpec, TlsOptionsSpec,
};
use crate::yaml::Yaml;

/// Every file stackctl writes starts with this.
pub const MANAGED_MARKER: &str = "# Managed by stackctl";

/// bcrypt's work factor: 10 is the common default (tens of milliseconds per check in
/// Traefik), a balance between brute-force cost and per-request latency.
pub const BCRYPT_COST: u32 = 10;

/// How long Traefik waits after applying a configuration change before it applies the
/// next (`providers.providersThrottleDuration`).
pub const PROVIDERS_THROTTLE_DURATION: &str = "200ms";

/// The first line of every file: who wrote it and what a hand edit will meet.
pub fn header(subject: &str) -> String {
    format!(
        "{MANAGED_MARKER} ({subject}). Hand edits are reported as drift and replaced by apply.\n"
    )
}

/// Makes text safe for Traefik's Go-template pass: each `{{` becomes `{{"{{"}}`, an
/// action that prints `{{`. `}}` alone is plain text to the template engine.
pub fn escape_template(text: &str) -> String {
    text.replace("{{", "{{\"{{\"}}")
}

fn dynamic_document(subject: &str, body: Yaml) -> String {
    escape_template(&format!("{}{}", header(subject), body.to_document()))
}

/// The static configuration (`traefik.yml`).
pub fn render_static(spec: &StaticSpec, subject: &str) -> String {
    // aliasHeadersStrategy: 3.7 warns when it is unset, and `delete` drops `X_Foo`-style
    // aliases that could otherwise spoof `X-Foo` headers a backend trusts.
    let entrypoint_http = || Yaml::map().with("aliasHeadersStrategy", Yaml::text("delete"));

    let mut web_http = entrypoint_http();
    if spec.redirect_https {
        let to = if spec.https_port == 443 {
            "websecure".to_string()
        } else {
            format!(":{}", spec.https_port)
        };
        web_http.insert(
            "redirections",
            Yaml::map().with(
                "entryPoint",
                Yaml::map()
                    .with("to", Yaml::text(to))
                    .with("scheme", Yaml::text("https"))
                    .with("permanent", Yaml::Bool(true)),
            ),
        );
    }

    let entrypoints = Yaml::map()
        .with(
            "web",
            Yaml::map()
                .with("address", Yaml::text(&spec.web_address))
                .with("http", web_http),
        )
        .with(
            "websecure",
            Yaml::map()
                .with("address", Yaml::text(&spec.websecure_address))
                .with("http", entrypoint_http()),
        )
        .with(
            // Ping and the API live on their own entry point, which the edge publishes on
            // the host's loopback only; `api.insecure` serves the API there and nowhere else.
            "traefik",
            Yaml::map()
                .with("address", Yaml::text(&spec.admin_address))
                .with("http", entrypoint_http()),
        );

    let mut document = Yaml::map()
        .with(
            "global",
            Yaml::map()
                .with("checkNewVersion", Yaml::Bool(false))
                .with("sendAnonymousUsage", Yaml::Bool(false)),
        )
        .with("entryPoints", entrypoints)
        .with(
            "providers",
            Yaml::map()
                // Traefik applies a change at once, then ignores the next ones for this
                // long (default 2 s): a swap right after another change would wait it out.
                // 200 ms still folds a burst of writes (a first deploy's files) into a
                // few reloads; measured in bench/README.md ("Traefik's throttle").
                .with(
                    "providersThrottleDuration",
                    Yaml::text(PROVIDERS_THROTTLE_DURATION),
                )
                .with(
                    "file",
                    Yaml::map()
                        .with("directory", Yaml::text(&spec.dynamic_dir))
                        .with("watch", Yaml::Bool(true)),
                ),
        )
        .with(
            "ping",
            Yaml::map().with("entryPoint", Yaml::text("traefik")),
        )
        .with(
            "api",
            Yaml::map()
                .with("insecure", Yaml::Bool(true))
                // Traefik's default is `true`: it must be turned off explicitly.
                .with("dashboard", Yaml::Bool(spec.dashboard)),
        )
        .with(
            "log",
            Yaml::map()
                .with("level", Yaml::text(&spec.log_level))
                .with("format", Yaml::text("common"))
                .with("noColor", Yaml::Bool(true)),
        );
    if spec.access_log {
        // No filePath: the access log goes to stdout, into the container's log.
        document.insert("accessLog", Yaml::map().with("format", Yaml::text("json")));
    }
    if let Some(resolver) = &spec.resolver {
        document.insert(
            "certificatesResolvers",
            Yaml::map().with(
                resolver.name.clone(),
                Yaml::map().with(
                    "acme",
                    Yaml::map()
                        .with("email", Yaml::text(&resolver.email))
                        .with("storage", Yaml::text(&resolver.storage))
                        .with("caServer", Yaml::text(&resolver.ca_server))
                        .with(
                            "httpChallenge",
                            Yaml::map().with("entryPoint", Yaml::text("web")),
                        ),
                ),
            ),
        );
    }
    format!("{}{}", header(subject), document.to_document())
}

/// The dynamic file holding the default TLS options (applied to every TLS router that
/// names no other options) and, when the stack has one, the default certificate — so
/// that Traefik does not build a new one on every reload (`default_certificate.rs`).
pub fn render_tls_options(spec: &TlsOptionsSpec, subject: &str) -> String {
    let mut tls = Yaml::map().with(
        "options",
        Yaml::map().with(
            "default",
            Yaml::map().with("minVersion", Yaml::text(&spec.min_version)),
        ),
    );
    if let Some((certificate, key)) = &spec.default_certificate {
        tls = tls.with(
            "stores",
            Yaml::map().with(
                "default",
                Yaml::map().with(
                    "defaultCertificate",
                    Yaml::map()
                        .with("certFile", Yaml::text(certificate))
                        .with("keyFile", Yaml::text(key)),
                ),
            ),
        );
    }
    dynamic_document(subject, Yaml::map().with("tls", tls))
}

/// One router in its own dynamic file.
pub fn render_route(spec: &RouteSpec, subject: &str) -> String {
    let mut router = Yaml::map()
        .with("rule", Yaml::text(&spec.rule))
        .with("entryPoints", Yaml::texts(spec.entrypoints.iter().cloned()))
        .with("service", Yaml::text(&spec.service));
    if !spec.middlewares.is_empty() {
        router.insert("middlewares", Yaml::texts(spec.middlewares.iter().cloned()));
    }
    if let Some(priority) = spec.priority {
        router.insert("priority", Yaml::Integer(priority));
    }
    // A router on the HTTPS entry point must say `tls`, or it would serve plain HTTP
    // there; without a resolver, `tls: {}` serves Traefik's default certificate.
    let terminates_tls =
        spec.tls_resolver.is_some() || spec.entrypoints.iter().any(|name| name == "websecure");
    if terminates_tls {
        let tls = match &spec.tls_resolver {
            Some(resolver) => Yaml::map().with("certResolver", Yaml::text(resolver)),
            None => Yaml::map(),
        };
        router.insert("tls", tls);
    }
    let body = Yaml::map().with(
        "http",
        Yaml::map().with("routers", Yaml::map().with(spec.name.clone(), router)),
    );
    dynamic_document(subject, body)
}

/// A middleware file. `sensitive` is true when it holds credential hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedMiddleware {
    pub text: String,
    pub sensitive: bool,
}

/// One middleware in its own dynamic file. Fails only when a basic-auth password cannot
/// be hashed (its plaintext is not available in this process).
pub fn render_middleware(
    spec: &MiddlewareSpec,
    subject: &str,
) -> Result<RenderedMiddleware, SpecError> {
    render_middleware_with(spec, subject, &Hashes::Computed)
}

/// Where the password hashes of a basic-auth file come from.
#[derive(Clone, Copy, Debug)]
pub enum Hashes<'a> {
    /// Computed with bcrypt (tens of milliseconds per password).
    Computed,
    /// Taken by user name from this map where present, computed otherwise. The map holds
    /// hashes read back from the host; the caller trusts the result only if it is the
    /// file state recorded (see the provider's `prepare_with_live`).
    Known(&'a BTreeMap<String, String>),
    /// A placeholder instead of each hash: every other setting is checked (and a password
    /// over bcrypt's 72 bytes refused) without the cost, for a file rendered again later.
    Placeholder,
}

/// [`render_middleware`], with the basic-auth hashes from `hashes`.
pub fn render_middleware_with(
    spec: &MiddlewareSpec,
    subject: &str,
    hashes: &Hashes,
) -> Result<RenderedMiddleware, SpecError> {
    let (body, sensitive) = match &spec.kind {
        MiddlewareKind::RedirectHttps(redirect) => (redirect_scheme(redirect), false),
        MiddlewareKind::Headers(headers) => (headers_middleware(&spec.name, headers)?, false),
        MiddlewareKind::RateLimit(limit) => (rate_limit(limit), false),
        MiddlewareKind::BasicAuth(auth) => (basic_auth(&spec.name, auth, hashes)?, true),
        MiddlewareKind::IpAllowList(allow) => (ip_allow_list(allow), false),
        MiddlewareKind::StripPrefix { prefixes } => (
            Yaml::map().with(
                "stripPrefix",
                Yaml::map().with("prefixes", Yaml::texts(prefixes.iter().cloned())),
            ),
            false,
        ),
        MiddlewareKind::Chain { middlewares } => (
            Yaml::map().with(
                "chain",
                Yaml::map().with("middlewares", Yaml::texts(middlewares.iter().cloned())),
            ),
            false,
        ),
    };
    let document = Yaml::map().with(
        "http",
        Yaml::map().with("middlewares", Yaml::map().with(spec.name.clone(), body)),
    );
    Ok(RenderedMiddleware {
        text: dynamic_document(subject, document),
        sensitive,
    })
}

/// The backend file for a routed service: a Traefik service named after the stackctl
/// service with one server. The docker provider writes it when it creates or swaps the
/// service's container (`backend-<service>.yml`), through [`crate::TraefikFormats`].
pub fn render_backend(service: &str, url: &str) -> String {
    render_backend_servers(service, &[url.to_string()], None)
}

/// How often Traefik asks each server of a checked backend for its health path, and how
/// long it waits for the answer: a dead replica is marked `DOWN` (and gets no traffic)
/// within about one interval, which `stackctl verify` reads back per replica.
pub const BACKEND_HEALTH_INTERVAL: &str = "2s";
pub const BACKEND_HEALTH_TIMEOUT: &str = "1s";

/// The backend file of a service served by several servers at once (a swarm service's
/// tasks), balanced round robin by Traefik. With `health_path`, Traefik checks each
/// server on that path (a 2xx or 3xx answer is healthy) and stops sending traffic to one
/// that fails.
pub fn render_backend_servers(service: &str, urls: &[String], health_path: Option<&str>) -> String {
    let servers = urls
        .iter()
        .map(|url| Yaml::map().with("url", Yaml::text(url.clone())))
        .collect();
    let mut load_balancer = Yaml::map().with("servers", Yaml::List(servers));
    if let Some(path) = health_path {
        load_balancer = load_balancer.with(
            "healthCheck",
            Yaml::map()
                .with("path", Yaml::text(path))
                .with("interval", Yaml::text(BACKEND_HEALTH_INTERVAL))
                .with("timeout", Yaml::text(BACKEND_HEALTH_TIMEOUT)),
        );
    }
    let body = Yaml::map().with(
        "http",
        Yaml::map().with(
            "services",
            Yaml::map().with(
                service.to_string(),
                Yaml::map().with("loadBalancer", load_balancer),
            ),
        ),
    );
    dynamic_document(&format!("backend of service {service}"), body)
}

fn redirect_scheme(spec: &RedirectHttpsSpec) -> Yaml {
    let mut redirect = Yaml::map().with("scheme", Yaml::text("https"));
    if let Some(port) = spec.port {
        // Traefik reads this port as a string; with "443" it leaves the port out of
        // Location.
        redirect.insert("port", Yaml::text(port.to_string()));
    }
    redirect.insert("permanent", Yaml::Bool(spec.permanent));
    Yaml::map().with("redirectScheme", redirect)
}

fn headers_middleware(name: &str, spec: &HeadersSpec) -> Result<Yaml, SpecError> {
    let mut headers = Yaml::map();
    if spec.sts_seconds > 0 {
        headers.insert("stsSeconds", Yaml::Integer(spec.sts_seconds));
        headers.insert(
            "stsIncludeSubdomains",
            Yaml::Bool(spec.sts_include_subdomains),
        );
        headers.insert("stsPreload", Yaml::Bool(spec.sts_preload));
        headers.insert("forceSTSHeader", Yaml::Bool(spec.force_sts_header));
    }
    if spec.content_type_nosniff {
        headers.insert("contentTypeNosniff", Yaml::Bool(true));
    }
    if spec.frame_deny {
        headers.insert("frameDeny", Yaml::Bool(true));
    }
    if let Some(value) = &spec.custom_frame_options {
        headers.insert("customFrameOptionsValue", Yaml::text(value));
    }
    if spec.browser_xss_filter {
        headers.insert("browserXssFilter", Yaml::Bool(true));
    }
    if let Some(policy) = &spec.referrer_policy {
        headers.insert("referrerPolicy", Yaml::text(policy));
    }
    if let Some(policy) = &spec.content_security_policy {
        headers.insert("contentSecurityPolicy", Yaml::text(policy));
    }
    if let Some(policy) = &spec.permissions_policy {
        headers.insert("permissionsPolicy", Yaml::text(policy));
    }
    // Traefik removes a response header whose custom value is the empty string. A
    // header both set and removed is removed: removal is the safer reading.
    let mut response_headers: BTreeMap<String, String> = spec.custom_response_headers.clone();
    for name in &spec.remove_headers {
        response_headers.insert(name.clone(), String::new());
    }
    if !response_headers.is_empty() {
        headers.insert(
            "customResponseHeaders",
            Yaml::Map(
                response_headers
                    .into_iter()
                    .map(|(name, value)| (name, Yaml::Text(value)))
                    .collect(),
            ),
        );
    }
    if headers.is_empty_map() {
        // An empty `headers` section would make Traefik reject the whole directory.
        return Err(SpecError {
            setting: format!("middleware.{name} settings"),
            message: "every header is turned off, so this middleware would do nothing; remove it or turn a header on".to_string(),
        });
    }
    Ok(Yaml::map().with("headers", headers))
}

fn rate_limit(spec: &RateLimitSpec) -> Yaml {
    let mut limit = Yaml::map()
        .with("average", Yaml::Integer(spec.average))
        .with("burst", Yaml::Integer(spec.burst));
    if let Some(period) = &spec.period {
        limit.insert("period", Yaml::text(period));
    }
    if let Some(depth) = spec.source_depth {
        limit.insert(
            "sourceCriterion",
            Yaml::map().with(
                "ipStrategy",
                Yaml::map().with("depth", Yaml::Integer(depth)),
            ),
        );
    }
    Yaml::map().with("rateLimit", limit)
}

fn basic_auth(name: &str, spec: &BasicAuthSpec, hashes: &Hashes) -> Result<Yaml, SpecError> {
    let mut users = Vec::with_capacity(spec.users.len());
    for (user, password) in &spec.users {
        users.push(format!(
            "{user}:{}",
            htpasswd_hash_with(name, user, password, hashes)?
        ));
    }
    let mut auth = Yaml::map().with("users", Yaml::texts(users));
    if let Some(realm) = &spec.realm {
        auth.insert("realm", Yaml::text(realm));
    }
    auth.insert("removeHeader", Yaml::Bool(spec.remove_header));
    Ok(Yaml::map().with("basicAuth", auth))
}

/// True for a value that is already an htpasswd hash Traefik understands.
fn is_password_hash(text: &str) -> bool {
    ["$2a$", "$2b$", "$2y$", "$apr1$", "{SHA}"]
        .iter()
        .any(|prefix| text.starts_with(prefix))
}

/// The htpasswd hash of one user's password: bcrypt (`$2y$`) with a salt derived from
/// the password's salted digest, so that equal inputs give equal files; a value that is
/// already a hash is written as it is.
pub fn htpasswd_hash(
    middleware: &str,
    user: &str,
    password: &Password,
) -> Result<String, SpecError> {
    htpasswd_hash_with(middleware, user, password, &Hashes::Computed)
}

/// The user names and hashes of a basic-auth file as rendered here (`- "user:hash"` lines),
/// for the bcrypt hashes only; a line in any other shape is left out.
pub fn rendered_bcrypt_hashes(file: &str) -> BTreeMap<String, String> {
    file.lines()
        .filter_map(|line| {
            let entry = line.trim().strip_prefix("- \"")?.strip_suffix('"')?;
            let (user, hash) = entry.split_once(':')?;
            hash.starts_with("$2y$")
                .then(|| (user.to_string(), hash.to_string()))
        })
        .collect()
}

/// [`htpasswd_hash`], with the hash from `hashes`.
fn htpasswd_hash_with(
    middleware: &str,
    user: &str,
    password: &Password,
    hashes: &Hashes,
) -> Result<String, SpecError> {
    let problem = |message: String| SpecError {
        setting: format!("middleware.{middleware} settings `users`"),
        message,
    };
    let (plaintext, salt_source) = match password {
        Password::Secret(secret) => {
            let plaintext = secret.expose().ok_or_else(|| {
                problem(format!(
                    "the password of `{user}` is known only by its digest here (from state or a saved plan); set its variable so it can be hashed"
                ))
            })?;
            (plaintext, secret.digest().to_string())
        }
        Password::Text(text) => (
            text.as_str(),
            format!("text:{}", hex::encode(Sha256::digest(text))),
        ),
    };
    if is_password_hash(plaintext) {
        return Ok(plaintext.to_string());
    }
    match hashes {
        Hashes::Known(known) => {
            if let Some(hash) = known.get(user) {
                return Ok(hash.clone());
            }
        }
        Hashes::Placeholder => {
            // bcrypt's own limit: 72 bytes with the terminating NUL it adds.
            if plaintext.len() + 1 > 72 {
                let error = bcrypt::BcryptError::Truncation(plaintext.len() + 1);
                return Err(problem(format!(
                    "cannot hash the password of `{user}`: {error}"
                )));
            }
            return Ok(format!("$2y${BCRYPT_COST:02}$(hashed later)"));
        }
        Hashes::Computed => {}
    }
    let mut hasher = Sha256::new();
    hasher.update(b"stackctl-traefik basic-auth salt\0");
    hasher.update(user.as_bytes());
    hasher.update([0u8]);
    hasher.update(salt_source.as_bytes());
    let digest = hasher.finalize();
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&digest[..16]);
    // The non-truncating variant refuses passwords over bcrypt's 72 bytes instead of
    // silently ignoring their tail.
    let parts = bcrypt::non_truncating_hash_with_salt(plaintext, BCRYPT_COST, salt)
        .map_err(|error| problem(format!("cannot hash the password of `{user}`: {error}")))?;
    Ok(parts.format_for_version(bcrypt::Version::TwoY))
}

fn ip_allow_list(spec: &IpAllowListSpec) -> Yaml {
    let mut allow = Yaml::map().with(
        "sourceRange",
        Yaml::texts(spec.source_range.iter().cloned()),
    );
    if let Some(depth) = spec.source_depth {
        allow.insert(
            "ipStrategy",
            Yaml::map().with("depth", Yaml::Integer(depth)),
        );
    }
    if let Some(status) = spec.reject_status_code {
        allow.insert("rejectStatusCode", Yaml::Integer(status));
    }
    Yaml::map().with("ipAllowList", allow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checked_backend_asks_traefik_to_check_each_server_on_the_health_path() {
        let urls = [
            "http://10.0.1.5:8080".to_string(),
            "http://10.0.1.6:8080".to_string(),
        ];
        let checked = render_backend_servers("web", &urls, Some("/health"));
        let body = checked.split_once('\n').map_or("", |(_, body)| body);
        assert_eq!(
            body,
            "http:\n  services:\n    web:\n      loadBalancer:\n        servers:\n          - url: \"http://10.0.1.5:8080\"\n          - url: \"http://10.0.1.6:8080\"\n        healthCheck:\n          path: \"/health\"\n          interval: \"2s\"\n          timeout: \"1s\"\n"
        );
        // Without a path, and for one container, the file is as before.
        assert!(!render_backend_servers("web", &urls, None).contains("healthCheck"));
        assert_eq!(
            render_backend("web", "http://shop-web-1:8080"),
            render_backend_servers("web", &["http://shop-web-1:8080".to_string()], None)
        );
    }

    #[test]
    fn escapes_every_template_opening() {
        assert_eq!(escape_template("a {{b}} c"), "a {{\"{{\"}}b}} c");
        assert_eq!(escape_template("{{{"), "{{\"{{\"}}{");
        assert_eq!(escape_template("no braces }}"), "no braces }}");
    }
}
