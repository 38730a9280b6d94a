//! Typed descriptions of the Traefik resources, read from lowered attributes.
//!
//! Lowering hands the provider loosely typed [`Value`] maps (see docs/resources.md). This
//! module turns them into the structs the renderers take, with defaults filled in and
//! every mistake reported with the setting's name and what was expected, so the
//! renderers themselves never deal with a missing or mistyped value.

use std::collections::BTreeMap;

use stackctl_provider::{Attributes, Secret, Value};

/// Let's Encrypt's staging directory: the default, so a misconfigured stack cannot burn
/// through the production rate limits.
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's production directory, used only when `staging = false`.
pub const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// A setting that is missing, mistyped or out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct SpecError {
    /// Where the problem is, e.g. `middleware.api-limit settings.average`.
    pub setting: String,
    pub message: String,
}

impl SpecError {
    fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            setting: setting.into(),
            message: message.into(),
        }
    }
}

/// `file.traefik-static`: Traefik's static configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticSpec {
    /// The dynamic directory as Traefik sees it (a container path in production).
    pub dynamic_dir: String,
    /// Public ports: the HTTPS one decides the redirect target (`:port` when not 443).
    pub http_port: u16,
    pub https_port: u16,
    /// Entry-point addresses inside the container; tests running Traefik directly set
    /// loopback addresses here.
    pub web_address: String,
    pub websecure_address: String,
    pub admin_address: String,
    pub redirect_https: bool,
    pub resolver: Option<ResolverSpec>,
    pub dashboard: bool,
    pub access_log: bool,
    pub log_level: String,
}

/// An ACME certificate resolver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverSpec {
    pub name: String,
    pub email: String,
    /// The directory URL actually written: staging unless production was explicit.
    pub ca_server: String,
    pub staging: bool,
    /// Where Traefik keeps accounts and certificates; must be writable and mode 600.
    pub storage: String,
}

/// The TLS options file written next to the routes (TLS options are dynamic
/// configuration in Traefik v3; the static file cannot carry them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsOptionsSpec {
    pub min_version: String,
    /// The default certificate's files inside the edge container (certificate, key);
    /// `None`: Traefik generates one on every reload.
    pub default_certificate: Option<(String, String)>,
}

/// `route.<name>`: one router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    pub name: String,
    pub rule: String,
    pub service: String,
    pub middlewares: Vec<String>,
    pub priority: Option<i64>,
    pub entrypoints: Vec<String>,
    pub tls_resolver: Option<String>,
}

/// `middleware.<name>`: one middleware.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiddlewareSpec {
    pub name: String,
    pub kind: MiddlewareKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MiddlewareKind {
    RedirectHttps(RedirectHttpsSpec),
    Headers(HeadersSpec),
    RateLimit(RateLimitSpec),
    BasicAuth(BasicAuthSpec),
    IpAllowList(IpAllowListSpec),
    StripPrefix { prefixes: Vec<String> },
    Chain { middlewares: Vec<String> },
}

impl MiddlewareKind {
    /// The `type` value in stack.toml.
    pub fn type_name(&self) -> &'static str {
        match self {
            MiddlewareKind::RedirectHttps(_) => "redirect_https",
            MiddlewareKind::Headers(_) => "headers",
            MiddlewareKind::RateLimit(_) => "rate_limit",
            MiddlewareKind::BasicAuth(_) => "basic_auth",
            MiddlewareKind::IpAllowList(_) => "ip_allow_list",
            MiddlewareKind::StripPrefix { .. } => "strip_prefix",
            MiddlewareKind::Chain { .. } => "chain",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectHttpsSpec {
    pub permanent: bool,
    /// The public HTTPS port when it is not 443.
    pub port: Option<u16>,
}

/// Security headers. Defaults are the safe choice; every one can be turned off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadersSpec {
    /// `0` leaves HSTS out.
    pub sts_seconds: i64,
    pub sts_include_subdomains: bool,
    /// Off by default: the preload list is a commitment that is slow to undo.
    pub sts_preload: bool,
    /// Send HSTS whatever the request scheme (TLS ends at Traefik, so this is harmless).
    pub force_sts_header: bool,
    pub content_type_nosniff: bool,
    pub frame_deny: bool,
    /// `SAMEORIGIN`, say; overrides `frame_deny` in Traefik.
    pub custom_frame_options: Option<String>,
    pub referrer_policy: Option<String>,
    pub browser_xss_filter: bool,
    pub content_security_policy: Option<String>,
    pub permissions_policy: Option<String>,
    /// Response headers to strip (Traefik removes a header set to "").
    pub remove_headers: Vec<String>,
    /// Response headers to set.
    pub custom_response_headers: BTreeMap<String, String>,
}

impl Default for HeadersSpec {
    fn default() -> Self {
        HeadersSpec {
            sts_seconds: 31_536_000,
            sts_include_subdomains: true,
            sts_preload: false,
            force_sts_header: true,
            content_type_nosniff: true,
            frame_deny: true,
            custom_frame_options: None,
            referrer_policy: Some("strict-origin-when-cross-origin".to_string()),
            browser_xss_filter: false,
            content_security_policy: None,
            permissions_policy: None,
            remove_headers: vec!["Server".to_string(), "X-Powered-By".to_string()],
            custom_response_headers: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitSpec {
    /// Requests per `period` on average.
    pub average: i64,
    pub burst: i64,
    /// A Go duration (`1s`, `1m`); Traefik's default is one second.
    pub period: Option<String>,
    /// Which `X-Forwarded-For` hop is the client; absent means the TCP peer.
    pub source_depth: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicAuthSpec {
    /// User name → password (a secret; or an existing bcrypt/apr1/{SHA} hash).
    pub users: Vec<(String, Password)>,
    pub realm: Option<String>,
    /// Do not forward the `Authorization` header to the backend.
    pub remove_header: bool,
}

/// A basic-auth password as lowering delivers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Password {
    Secret(Secret),
    /// Text in stack.toml: hashed like a secret (plaintext is never written), but the
    /// salt can only come from the text itself.
    Text(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpAllowListSpec {
    pub source_range: Vec<String>,
    pub source_depth: Option<i64>,
    pub reject_status_code: Option<i64>,
}

/// Reads typed values out of one attribute map, naming the resource in errors.
struct Reader<'a> {
    subject: String,
    values: &'a BTreeMap<String, Value>,
}

impl<'a> Reader<'a> {
    fn new(subject: impl Into<String>, values: &'a BTreeMap<String, Value>) -> Self {
        Reader {
            subject: subject.into(),
            values,
        }
    }

    fn error(&self, key: &str, message: impl Into<String>) -> SpecError {
        SpecError::new(format!("{} `{key}`", self.subject), message)
    }

    /// Null counts as absent: lowering may write it for an unset optional key.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.values
            .get(key)
            .filter(|value| !matches!(value, Value::Null))
    }

    fn text(&self, key: &str) -> Result<Option<String>, SpecError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Text(text)) => Ok(Some(text.clone())),
            Some(other) => {
                Err(self.error(key, format!("expected text, found {}", describe(other))))
            }
        }
    }

    fn required_text(&self, key: &str) -> Result<String, SpecError> {
        self.text(key)?
            .ok_or_else(|| self.error(key, "is required"))
    }

    fn integer(&self, key: &str) -> Result<Option<i64>, SpecError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Integer(number)) => Ok(Some(*number)),
            Some(other) => Err(self.error(
                key,
                format!("expected an integer, found {}", describe(other)),
            )),
        }
    }

    fn port(&self, key: &str) -> Result<Option<u16>, SpecError> {
        match self.integer(key)? {
            None => Ok(None),
            Some(number) => u16::try_from(number)
                .ok()
                .filter(|port| *port > 0)
                .map(Some)
                .ok_or_else(|| {
                    self.error(
                        key,
                        format!("expected a port between 1 and 65535, found {number}"),
                    )
                }),
        }
    }

    fn positive(&self, key: &str) -> Result<Option<i64>, SpecError> {
        match self.integer(key)? {
            Some(number) if number <= 0 => {
                Err(self.error(key, format!("expected a positive integer, found {number}")))
            }
            other => Ok(other),
        }
    }

    fn boolean(&self, key: &str, default: bool) -> Result<bool, SpecError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(other) => Err(self.error(
                key,
                format!("expected true or false, found {}", describe(other)),
            )),
        }
    }

    fn texts(&self, key: &str) -> Result<Option<Vec<String>>, SpecError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::List(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Text(text) => Ok(text.clone()),
                    other => Err(self.error(
                        key,
                        format!("expected a list of text, found {} in it", describe(other)),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.error(
                key,
                format!("expected a list of text, found {}", describe(other)),
            )),
        }
    }

    fn text_map(&self, key: &str) -> Result<BTreeMap<String, String>, SpecError> {
        match self.get(key) {
            None => Ok(BTreeMap::new()),
            Some(Value::Map(entries)) => entries
                .iter()
                .map(|(name, value)| match value {
                    Value::Text(text) => Ok((name.clone(), text.clone())),
                    other => Err(self.error(
                        key,
                        format!("expected text for `{name}`, found {}", describe(other)),
                    )),
                })
                .collect(),
            Some(other) => {
                Err(self.error(key, format!("expected a table, found {}", describe(other))))
            }
        }
    }

    /// Fails on any key outside `known`, so a typo in stack.toml is not silently ignored.
    fn only(&self, known: &[&str]) -> Result<(), SpecError> {
        match self
            .values
            .keys()
            .find(|key| !known.contains(&key.as_str()))
        {
            None => Ok(()),
            Some(unknown) => Err(self.error(
                unknown,
                format!(
                    "is not a setting here; expected one of: {}",
                    known.join(", ")
                ),
            )),
        }
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Integer(_) => "an integer",
        Value::Text(_) => "text",
        Value::List(_) => "a list",
        Value::Map(_) => "a table",
        Value::Secret(_) => "a secret",
        Value::Unknown(_) => "a value known only after apply",
    }
}

impl StaticSpec {
    /// Reads `file.traefik-static` attributes (docs/resources.md).
    pub fn from_attributes(attributes: &Attributes) -> Result<StaticSpec, SpecError> {
        let reader = Reader::new("file.traefik-static", attributes);
        let http_port = reader.port("http_port")?.unwrap_or(80);
        let https_port = reader.port("https_port")?.unwrap_or(443);
        let admin_port = reader.port("admin_port")?.unwrap_or(crate::admin::API_PORT);
        let resolver = match reader.get("resolver") {
            None => None,
            Some(Value::Map(entries)) => Some(ResolverSpec::from_settings(entries)?),
            Some(other) => {
                return Err(reader.error(
                    "resolver",
                    format!("expected a table, found {}", describe(other)),
                ))
            }
        };
        let log_level = reader
            .text("log_level")?
            .unwrap_or_else(|| "INFO".to_string());
        const LEVELS: &[&str] = &["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "PANIC"];
        if !LEVELS.contains(&log_level.as_str()) {
            return Err(reader.error(
                "log_level",
                format!("expected one of {}", LEVELS.join(", ")),
            ));
        }
        Ok(StaticSpec {
            dynamic_dir: reader
                .text("dynamic_dir")?
                .unwrap_or_else(|| "/etc/traefik/dynamic".to_string()),
            http_port,
            https_port,
            web_address: reader
                .text("web_address")?
                .unwrap_or_else(|| ":80".to_string()),
            websecure_address: reader
                .text("websecure_address")?
                .unwrap_or_else(|| ":443".to_string()),
            admin_address: reader
                .text("admin_address")?
                .unwrap_or_else(|| format!(":{admin_port}")),
            redirect_https: reader.boolean("redirect_https", true)?,
            resolver,
            dashboard: reader.boolean("dashboard", false)?,
            access_log: reader.boolean("access_log", true)?,
            log_level,
        })
    }
}

impl TlsOptionsSpec {
    /// Reads `min_tls_version` from `file.traefik-static` (default TLS 1.2).
    pub fn from_attributes(attributes: &Attributes) -> Result<TlsOptionsSpec, SpecError> {
        let reader = Reader::new("file.traefik-static", attributes);
        let min_version = reader
            .text("min_tls_version")?
            .unwrap_or_else(|| "VersionTLS12".to_string());
        const VERSIONS: &[&str] = &[
            "VersionTLS10",
            "VersionTLS11",
            "VersionTLS12",
            "VersionTLS13",
        ];
        if !VERSIONS.contains(&min_version.as_str()) {
            return Err(reader.error(
                "min_tls_version",
                format!(
                    "expected one of {}, found `{min_version}`",
                    VERSIONS.join(", ")
                ),
            ));
        }
        let default_certificate =
            crate::default_certificate::DefaultCertificateFiles::from_attributes(attributes)?
                .map(|files| (files.certificate_in_edge, files.key_in_edge));
        Ok(TlsOptionsSpec {
            min_version,
            default_certificate,
        })
    }
}

impl ResolverSpec {
    fn from_settings(settings: &BTreeMap<String, Value>) -> Result<ResolverSpec, SpecError> {
        let reader = Reader::new("file.traefik-static resolver", settings);
        reader.only(&["name", "email", "ca_server", "staging", "storage"])?;
        let staging = reader.boolean("staging", true)?;
        let explicit = reader.text("ca_server")?;
        let ca_server = match (staging, explicit) {
            // Production is allowed only by saying `staging = false`; a production URL
            // slipped in through `ca_server` must not bypass that.
            (true, Some(url)) if url.trim_end_matches('/') == LETS_ENCRYPT_PRODUCTION => {
                return Err(reader.error(
                    "ca_server",
                    "is Let's Encrypt production but `staging` is not false; set `staging = false` to allow production certificates",
                ))
            }
            (_, Some(url)) => url,
            (true, None) => LETS_ENCRYPT_STAGING.to_string(),
            (false, None) => LETS_ENCRYPT_PRODUCTION.to_string(),
        };
        Ok(ResolverSpec {
            name: reader.text("name")?.unwrap_or_else(|| "le".to_string()),
            email: reader.required_text("email")?,
            ca_server,
            staging,
            storage: reader
                .text("storage")?
                .unwrap_or_else(|| "/letsencrypt/acme.json".to_string()),
        })
    }
}

impl RouteSpec {
    /// Reads `route.<name>` attributes.
    pub fn from_attributes(name: &str, attributes: &Attributes) -> Result<RouteSpec, SpecError> {
        let reader = Reader::new(format!("route.{name}"), attributes);
        let rule = reader.required_text("rule")?;
        if rule.trim().is_empty() {
            return Err(reader.error("rule", "is empty"));
        }
        let entrypoints = reader
            .texts("entrypoints")?
            .unwrap_or_else(|| vec!["websecure".to_string()]);
        if entrypoints.is_empty() {
            return Err(reader.error("entrypoints", "names no entry point"));
        }
        Ok(RouteSpec {
            name: name.to_string(),
            rule,
            service: reader.required_text("service")?,
            middlewares: reader.texts("middlewares")?.unwrap_or_default(),
            priority: reader.positive("priority")?,
            entrypoints,
            tls_resolver: reader.text("tls_resolver")?,
        })
    }
}

impl MiddlewareSpec {
    /// Reads `middleware.<name>` attributes: `type` and `settings`.
    pub fn from_attributes(
        name: &str,
        attributes: &Attributes,
    ) -> Result<MiddlewareSpec, SpecError> {
        let subject = format!("middleware.{name}");
        let reader = Reader::new(subject.clone(), attributes);
        let type_name = reader.required_text("type")?;
        let empty = BTreeMap::new();
        let settings = match reader.get("settings") {
            None => &empty,
            Some(Value::Map(entries)) => entries,
            Some(other) => {
                return Err(reader.error(
                    "settings",
                    format!("expected a table, found {}", describe(other)),
                ))
            }
        };
        let settings = Reader::new(format!("{subject} settings"), settings);
        let kind = match type_name.as_str() {
            "redirect_https" => {
                settings.only(&["permanent", "port"])?;
                MiddlewareKind::RedirectHttps(RedirectHttpsSpec {
                    permanent: settings.boolean("permanent", true)?,
                    port: settings.port("port")?,
                })
            }
            "headers" => MiddlewareKind::Headers(headers_from(&settings)?),
            "rate_limit" => {
                settings.only(&["average", "burst", "period", "source_depth"])?;
                let average = settings
                    .positive("average")?
                    .ok_or_else(|| settings.error("average", "is required (requests per period)"))?;
                MiddlewareKind::RateLimit(RateLimitSpec {
                    average,
                    // Traefik's own default burst is 1, which rejects any two requests
                    // arriving together; the average is the sensible floor.
                    burst: settings.positive("burst")?.unwrap_or(average),
                    period: match settings.text("period")? {
                        Some(period) if !is_go_duration(&period) => {
                            return Err(settings.error(
                                "period",
                                format!("`{period}` is not a duration; expected e.g. `1s`, `500ms`, `1m`"),
                            ))
                        }
                        period => period,
                    },
                    source_depth: settings.integer("source_depth")?,
                })
            }
            "basic_auth" => MiddlewareKind::BasicAuth(basic_auth_from(&settings)?),
            "ip_allow_list" => {
                settings.only(&["source_range", "source_depth", "reject_status_code"])?;
                let source_range = settings.texts("source_range")?.unwrap_or_default();
                if let Some(bad) = source_range.iter().find(|range| !is_ip_range(range)) {
                    return Err(settings.error(
                        "source_range",
                        format!("`{bad}` is not an IP address or CIDR range (e.g. `203.0.113.0/24`)"),
                    ));
                }
                if source_range.is_empty() {
                    return Err(settings.error(
                        "source_range",
                        "needs at least one address or CIDR (an empty allowlist admits nobody)",
                    ));
                }
                MiddlewareKind::IpAllowList(IpAllowListSpec {
                    source_range,
                    source_depth: settings.integer("source_depth")?,
                    reject_status_code: settings.integer("reject_status_code")?,
                })
            }
            "strip_prefix" => {
                settings.only(&["prefixes"])?;
                let prefixes = settings.texts("prefixes")?.unwrap_or_default();
                if prefixes.is_empty() {
                    return Err(settings.error("prefixes", "needs at least one prefix"));
                }
                MiddlewareKind::StripPrefix { prefixes }
            }
            "chain" => {
                settings.only(&["middlewares"])?;
                let middlewares = settings.texts("middlewares")?.unwrap_or_default();
                if middlewares.is_empty() {
                    return Err(settings.error("middlewares", "needs at least one middleware"));
                }
                MiddlewareKind::Chain { middlewares }
            }
            other => {
                return Err(reader.error(
                    "type",
                    format!(
                        "`{other}` is not a middleware type; expected one of redirect_https, headers, rate_limit, basic_auth, ip_allow_list, strip_prefix, chain"
                    ),
                ))
            }
        };
        Ok(MiddlewareSpec {
            name: name.to_string(),
            kind,
        })
    }
}

fn headers_from(settings: &Reader<'_>) -> Result<HeadersSpec, SpecError> {
    settings.only(&[
        "sts_seconds",
        "sts_include_subdomains",
        "sts_preload",
        "force_sts_header",
        "content_type_nosniff",
        "frame_deny",
        "custom_frame_options",
        "referrer_policy",
        "browser_xss_filter",
        "content_security_policy",
        "permissions_policy",
        "remove_headers",
        "custom_response_headers",
    ])?;
    let defaults = HeadersSpec::default();
    let sts_seconds = settings
        .integer("sts_seconds")?
        .unwrap_or(defaults.sts_seconds);
    if sts_seconds < 0 {
        return Err(settings.error("sts_seconds", "must not be negative"));
    }
    Ok(HeadersSpec {
        sts_seconds,
        sts_include_subdomains: settings
            .boolean("sts_include_subdomains", defaults.sts_include_subdomains)?,
        sts_preload: settings.boolean("sts_preload", defaults.sts_preload)?,
        force_sts_header: settings.boolean("force_sts_header", defaults.force_sts_header)?,
        content_type_nosniff: settings
            .boolean("content_type_nosniff", defaults.content_type_nosniff)?,
        frame_deny: settings.boolean("frame_deny", defaults.frame_deny)?,
        custom_frame_options: settings.text("custom_frame_options")?,
        referrer_policy: match settings.text("referrer_policy")? {
            // An empty policy turns the header off.
            Some(policy) if policy.is_empty() => None,
            Some(policy) => Some(policy),
            None => defaults.referrer_policy,
        },
        browser_xss_filter: settings.boolean("browser_xss_filter", defaults.browser_xss_filter)?,
        content_security_policy: settings.text("content_security_policy")?,
        permissions_policy: settings.text("permissions_policy")?,
        remove_headers: settings
            .texts("remove_headers")?
            .unwrap_or(defaults.remove_headers),
        custom_response_headers: settings.text_map("custom_response_headers")?,
    })
}

fn basic_auth_from(settings: &Reader<'_>) -> Result<BasicAuthSpec, SpecError> {
    settings.only(&["users", "realm", "remove_header"])?;
    let users = match settings.get("users") {
        Some(Value::Map(entries)) if !entries.is_empty() => entries,
        Some(Value::Map(_)) | None => {
            return Err(settings.error("users", "needs at least one user (name = password secret)"))
        }
        Some(other) => {
            return Err(settings.error(
                "users",
                format!(
                    "expected a table of user = password, found {}",
                    describe(other)
                ),
            ))
        }
    };
    let mut parsed = Vec::with_capacity(users.len());
    for (user, password) in users {
        if user.is_empty() || user.contains(':') || user.chars().any(char::is_whitespace) {
            return Err(settings.error(
                "users",
                format!("`{user}` is not a usable user name (no `:`, no spaces, not empty)"),
            ));
        }
        let password = match password {
            Value::Secret(secret) => Password::Secret(secret.clone()),
            Value::Text(text) if !text.is_empty() => Password::Text(text.clone()),
            other => {
                return Err(settings.error(
                    "users",
                    format!(
                        "expected a password for `{user}`, found {}",
                        describe(other)
                    ),
                ))
            }
        };
        parsed.push((user.clone(), password));
    }
    Ok(BasicAuthSpec {
        users: parsed,
        realm: settings.text("realm")?,
        remove_header: settings.boolean("remove_header", true)?,
    })
}

/// A Go duration as Traefik parses it: one or more `<number><unit>` with units ns, us,
/// µs, ms, s, m, h (`1s`, `1m30s`, `1.5s`).
pub fn is_go_duration(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|character: char| !(character.is_ascii_digit() || character == '.'))
            .unwrap_or(rest.len());
        if digits == 0 || rest[..digits].parse::<f64>().is_err() {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .filter(|unit| rest.starts_with(*unit))
            .max_by_key(|unit| unit.len());
        match unit {
            Some(unit) => rest = &rest[unit.len()..],
            None => return false,
        }
    }
    true
}

/// An IP address or a CIDR range, IPv4 or IPv6.
pub fn is_ip_range(text: &str) -> bool {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let Ok(address) = address.parse::<std::net::IpAddr>() else {
        return false;
    };
    let limit = if address.is_ipv4() { 32 } else { 128 };
    match prefix {
        None => true,
        Some(prefix) => prefix.parse::<u8>().is_ok_and(|bits| bits <= limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ranges() {
        for good in ["1s", "500ms", "1m30s", "1.5s", "2h"] {
            assert!(is_go_duration(good), "{good}");
        }
        for bad in ["", "1", "s", "1 s", "1sec", "-1s"] {
            assert!(!is_go_duration(bad), "{bad}");
        }
        for good in ["127.0.0.1", "10.0.0.0/8", "::1", "2001:db8::/32"] {
            assert!(is_ip_range(good), "{good}");
        }
        for bad in ["10.0.0.0/33", "localhost", "10.0.0/8", "::/129"] {
            assert!(!is_ip_range(bad), "{bad}");
        }
    }
}
