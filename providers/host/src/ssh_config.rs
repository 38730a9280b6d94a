//! The part of `~/.ssh/config` that says how to reach a host: `Host` blocks (patterns
//! with `*`, `?` and `!negation`, several per line), `HostName`, `User`, `Port`,
//! `IdentityFile` and `ProxyJump`, as OpenSSH reads them — for each keyword the first
//! value found wins, so specific blocks go first and `Host *` last. `Match` blocks and
//! `Include` are not understood: their lines are skipped (a `Match` block's settings do
//! not apply), never guessed at. Keywords are case-insensitive; `Key=value` works too.

use std::path::{Path, PathBuf};

/// What the config says about one host alias.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshConfigHost {
    pub host_name: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    /// In the order given (OpenSSH offers them in that order); `~` expanded.
    pub identity_files: Vec<PathBuf>,
    /// `ProxyJump`: the first hop's `[user@]host[:port]` (`none` gives `None`).
    pub proxy_jump: Option<String>,
}

/// A line the parser could not use, for a warning: `path:line: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshConfigProblem {
    pub line: usize,
    pub message: String,
}

/// Resolves `alias` in the text of an ssh config file. `home` expands `~/`.
pub fn resolve(
    text: &str,
    alias: &str,
    home: Option<&Path>,
) -> (SshConfigHost, Vec<SshConfigProblem>) {
    let mut host = SshConfigHost::default();
    let mut problems = Vec::new();
    let mut port_set = false;
    let mut proxy_jump_set = false;
    // Before any `Host` line, settings apply to every host.
    let mut applies = true;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((keyword, value)) = split_keyword(line) else {
            problems.push(SshConfigProblem {
                line: number,
                message: format!("`{line}` has no value"),
            });
            continue;
        };
        match keyword.to_ascii_lowercase().as_str() {
            "host" => applies = host_matches(&value, alias),
            "match" => {
                // Not understood: none of its settings apply.
                applies = false;
                problems.push(SshConfigProblem {
                    line: number,
                    message: "`Match` blocks are not supported; their settings are ignored"
                        .to_string(),
                });
            }
            _ if !applies => {}
            "hostname" => {
                host.host_name.get_or_insert_with(|| first_word(&value));
            }
            "user" => {
                host.user.get_or_insert_with(|| first_word(&value));
            }
            "port" if !port_set => {
                port_set = true;
                match first_word(&value).parse::<u16>() {
                    Ok(port) if port > 0 => host.port = Some(port),
                    _ => problems.push(SshConfigProblem {
                        line: number,
                        message: format!("`Port {value}` is not a port number"),
                    }),
                }
            }
            "identityfile" => host
                .identity_files
                .push(expand_home(&unquote(&value), home)),
            "proxyjump" if !proxy_jump_set => {
                proxy_jump_set = true;
                let first_hop = first_word(&value)
                    .split(',')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                if !first_hop.eq_ignore_ascii_case("none") && !first_hop.is_empty() {
                    host.proxy_jump = Some(first_hop);
                }
            }
            "include" => problems.push(SshConfigProblem {
                line: number,
                message: "`Include` is not supported; the included files are not read".to_string(),
            }),
            _ => {}
        }
    }
    (host, problems)
}

/// A `ProxyJump` hop, `[user@]host[:port]`, as (user, host, port).
pub fn parse_jump(hop: &str) -> (Option<String>, String, Option<u16>) {
    let hop = hop.strip_prefix("ssh://").unwrap_or(hop);
    let (user, rest) = match hop.rsplit_once('@') {
        Some((user, rest)) => (Some(user.to_string()), rest),
        None => (None, hop),
    };
    let (host, port) = match rest.strip_prefix('[').and_then(|rest| rest.split_once(']')) {
        Some((host, tail)) => (
            host.to_string(),
            tail.strip_prefix(':').and_then(|port| port.parse().ok()),
        ),
        None => match rest.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => {
                (host.to_string(), port.parse().ok())
            }
            _ => (rest.to_string(), None),
        },
    };
    (user, host, port)
}

fn split_keyword(line: &str) -> Option<(String, String)> {
    let position = line.find(|character: char| character.is_whitespace() || character == '=')?;
    let keyword = &line[..position];
    let value = line[position..]
        .trim_start_matches(|character: char| character.is_whitespace())
        .trim_start_matches('=')
        .trim();
    (!keyword.is_empty() && !value.is_empty()).then(|| (keyword.to_string(), value.to_string()))
}

fn first_word(value: &str) -> String {
    unquote(value.split_whitespace().next().unwrap_or_default())
}

fn unquote(value: &str) -> String {
    value.trim().trim_matches('"').to_string()
}

fn expand_home(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

/// Whether a `Host` line's patterns match: any positive pattern matches and no negated
/// one does.
fn host_matches(patterns: &str, alias: &str) -> bool {
    let mut matched = false;
    for pattern in patterns
        .split_whitespace()
        .map(|pattern| pattern.trim_matches('"'))
    {
        if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard_matches(negated, alias) {
                return false;
            }
        } else if wildcard_matches(pattern, alias) {
            matched = true;
        }
    }
    matched
}

/// `*` any run of characters, `?` one character; case-insensitive, as OpenSSH matches
/// host names.
fn wildcard_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let text: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|character| *character == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
# deploy targets
Host web-prod web-staging
    HostName 203.0.113.7
    User deploy
    Port 2222
    IdentityFile ~/.ssh/deploy_ed25519

Host web-* !web-old
    User=ops
    ProxyJump admin@bastion.example:2200,second-hop

Match exec \"true\"
    User matched

Host *
    User fallback
    IdentityFile ~/.ssh/id_ed25519
    Port 22
";

    #[test]
    fn the_first_value_of_each_keyword_wins_across_matching_blocks() {
        let (host, problems) = resolve(CONFIG, "web-prod", Some(Path::new("/home/me")));
        assert_eq!(
            host,
            SshConfigHost {
                host_name: Some("203.0.113.7".into()),
                user: Some("deploy".into()),
                port: Some(2222),
                identity_files: vec![
                    PathBuf::from("/home/me/.ssh/deploy_ed25519"),
                    PathBuf::from("/home/me/.ssh/id_ed25519")
                ],
                proxy_jump: Some("admin@bastion.example:2200".into()),
            }
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, 12);
    }

    #[test]
    fn patterns_wildcards_and_negations() {
        let (host, _) = resolve(CONFIG, "web-canary", None);
        assert_eq!(host.user.as_deref(), Some("ops"));
        assert_eq!(host.host_name, None);
        let (old, _) = resolve(CONFIG, "web-old", None);
        assert_eq!(
            old.user.as_deref(),
            Some("fallback"),
            "negated out of `web-*`"
        );
        assert_eq!(old.proxy_jump, None);
        assert_eq!(old.port, Some(22));
        assert!(wildcard_matches("db?.example", "DB1.example"));
        assert!(!wildcard_matches("db?.example", "db12.example"));
        assert!(wildcard_matches("*.internal", "a.b.internal"));
    }

    #[test]
    fn jump_hops_name_user_host_and_port() {
        assert_eq!(
            parse_jump("admin@bastion.example:2200"),
            (Some("admin".into()), "bastion.example".into(), Some(2200))
        );
        assert_eq!(parse_jump("bastion"), (None, "bastion".into(), None));
        assert_eq!(parse_jump("[::1]:2022"), (None, "::1".into(), Some(2022)));
    }

    #[test]
    fn a_bad_port_is_reported_with_its_line() {
        let (host, problems) = resolve("Host x\n  Port ssh\n", "x", None);
        assert_eq!(host.port, None);
        assert_eq!(
            problems,
            vec![SshConfigProblem {
                line: 2,
                message: "`Port ssh` is not a port number".into()
            }]
        );
    }
}
