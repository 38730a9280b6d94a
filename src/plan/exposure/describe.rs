//! The surface in words, for exposure messages and the markdown listing: a route as
//! "`example.com/api` → service `api`" with its middlewares in order, a middleware with
//! the settings a reviewer weighs (user names, never passwords; ranges; limits).

use std::fmt;

use super::surface::{CertificateAuthority, Certificates, Middleware, PublishedPort, Route};

/// `text` as inline code, with a fence longer than any backtick run inside (a raw rule
/// such as ``Host(`a`) || Host(`b`)`` holds backticks).
pub fn code(text: &str) -> String {
    let longest_run = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    if longest_run == 0 {
        return format!("`{text}`");
    }
    let fence = "`".repeat(longest_run + 1);
    format!("{fence} {text} {fence}")
}

/// Names as a list of inline code: `a`, `b`.
pub fn names<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    names
        .into_iter()
        .map(|name| code(name))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Route {
    /// Where the route answers: `example.com/api`, `example.com`, or its raw rule.
    pub fn place(&self) -> String {
        match (&self.host, &self.path_prefix) {
            (Some(host), Some(path)) => code(&format!("{host}{path}")),
            (Some(host), None) => code(host),
            _ => format!("rule {}", code(&self.rule)),
        }
    }

    /// "`example.com/api` → service `api`, open to everyone; through headers …".
    pub fn summary(&self) -> String {
        let mut text = format!("{} → service {}", self.place(), code(&self.service));
        if self.basic_auth_users().is_none() && self.allowed_ranges().is_none() {
            text.push_str(", open to everyone (no basic auth, no IP allowlist)");
        }
        if self.middlewares.is_empty() {
            text.push_str("; no middlewares");
        } else {
            text.push_str("; through ");
            text.push_str(
                &self
                    .middlewares
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        text
    }
}

impl fmt::Display for Middleware {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Middleware::BasicAuth { name, users } => {
                let who = match users.len() {
                    0 => "no users".to_string(),
                    1 => format!("user {}", names(users)),
                    _ => format!("users {}", names(users)),
                };
                write!(formatter, "basic auth {} ({who})", code(name))
            }
            Middleware::IpAllowList { name, source_range } => write!(
                formatter,
                "IP allowlist {} ({})",
                code(name),
                source_range.join(", ")
            ),
            Middleware::RateLimit { name, .. } => {
                write!(formatter, "rate limit {} ({})", code(name), rate(self))
            }
            Middleware::Headers {
                name,
                sts_seconds,
                sts_include_subdomains,
                frame_deny,
                content_type_nosniff,
            } => {
                let mut parts = Vec::new();
                if *sts_seconds > 0 {
                    let scope = if *sts_include_subdomains {
                        " with subdomains"
                    } else {
                        ""
                    };
                    parts.push(format!("HSTS {sts_seconds} s{scope}"));
                } else {
                    parts.push("no HSTS".to_string());
                }
                if *frame_deny {
                    parts.push("frame deny".to_string());
                }
                if *content_type_nosniff {
                    parts.push("nosniff".to_string());
                }
                write!(formatter, "headers {} ({})", code(name), parts.join(", "))
            }
            Middleware::RedirectHttps { name } => {
                write!(formatter, "redirect to HTTPS {}", code(name))
            }
            Middleware::StripPrefix { name, prefixes } => write!(
                formatter,
                "strip prefix {} ({})",
                code(name),
                prefixes.join(", ")
            ),
            Middleware::Unknown { name } => {
                write!(
                    formatter,
                    "middleware {} (not known to stackctl)",
                    code(name)
                )
            }
        }
    }
}

/// "50 per 1s with burst 100" for a rate limit; empty for anything else.
pub fn rate(middleware: &Middleware) -> String {
    match middleware {
        Middleware::RateLimit {
            average,
            burst,
            period,
            ..
        } => match burst {
            Some(burst) => format!("{average} per {period} with burst {burst}"),
            None => format!("{average} per {period}"),
        },
        _ => String::new(),
    }
}

impl fmt::Display for PublishedPort {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scope = if self.is_loopback() {
            " (loopback only)"
        } else {
            ""
        };
        write!(
            formatter,
            "host port {}/{} on {}{scope} → container port {}",
            self.host_port, self.protocol, self.host_ip, self.container_port
        )
    }
}

impl Certificates {
    /// "staging certificates from resolver `le`".
    pub fn origin(&self) -> String {
        let kind = match self.authority {
            CertificateAuthority::Staging => "staging",
            CertificateAuthority::Production => "production",
        };
        format!("{kind} certificates from resolver {}", code(&self.resolver))
    }
}

impl fmt::Display for Certificates {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let trust = match self.authority {
            CertificateAuthority::Staging => "browsers do not trust them",
            CertificateAuthority::Production => "browsers trust them",
        };
        write!(formatter, "{} ({trust})", self.origin())
    }
}
