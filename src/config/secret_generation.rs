//! What `stackctl secrets generate` fills in, and how the env file is extended — pure
//! functions; the random bytes, the certificates and the file writes are the caller's.
//!
//! Every secret variable the stack uses (see [`super::Environment::is_secret`]) that the
//! env file lacks, or has empty (a copied `.env.example`), gets a value. Most secrets are passwords and keys of no particular
//! shape: 32 characters of `A–Z a–z 0–9` (about 190 bits), safe unquoted in a URL
//! (`postgres://app:${POSTGRES_PASSWORD}@…`), a shell and the env file. Two names have a
//! format:
//!
//! - `*_TLS_KEY`: a private key (ECDSA P-256, PKCS#8 PEM) for a server's certificate;
//! - `*_TLS_CERT` (not secret): a self-signed certificate for the key of the same prefix,
//!   its common name the prefix in lower case (`POSTGRES_TLS_CERT` → `postgres`).
//!
//! Basic-auth passwords (`[middlewares.*] users`) are plain values too: stackctl writes
//! their bcrypt hashes itself, so no `htpasswd` format is ever needed in the env file.
//! Variables that are not secret (a domain, an e-mail address) cannot be invented and are
//! listed for the user to set.

use std::collections::{BTreeMap, BTreeSet};

use super::Environment;

/// The shape of a generated value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretFormat {
    /// 32 alphanumeric characters.
    Random,
    /// A PEM private key.
    TlsKey,
    /// A self-signed PEM certificate for the key in `key_variable`, named `common_name`.
    TlsCertificate {
        key_variable: String,
        common_name: String,
    },
}

/// What generation will do for one env file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenerationPlan {
    /// Variables to fill, in the order they are written; a certificate after its key.
    pub fill: Vec<(String, SecretFormat)>,
    /// Variables the stack uses that have no value and cannot be generated.
    pub left_to_user: Vec<String>,
}

/// Which of `used` to generate, given the names `present` in the env file.
pub fn plan_generation(
    used: &BTreeSet<String>,
    present: &BTreeSet<String>,
    environment: &Environment,
) -> GenerationPlan {
    let mut plan = GenerationPlan::default();
    let mut certificates = Vec::new();
    for name in used {
        if present.contains(name) {
            continue;
        }
        if let Some(prefix) = name.strip_suffix("_TLS_CERT") {
            certificates.push((
                name.clone(),
                SecretFormat::TlsCertificate {
                    key_variable: format!("{prefix}_TLS_KEY"),
                    common_name: prefix.to_ascii_lowercase().replace('_', "-"),
                },
            ));
        } else if name.ends_with("_TLS_KEY") && environment.is_secret(name) {
            plan.fill.push((name.clone(), SecretFormat::TlsKey));
        } else if environment.is_secret(name) {
            plan.fill.push((name.clone(), SecretFormat::Random));
        } else {
            plan.left_to_user.push(name.clone());
        }
    }
    plan.fill.extend(certificates);
    plan
}

/// Characters of [`SecretFormat::Random`] values.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Length of [`SecretFormat::Random`] values: log2(62) × 32 ≈ 190 bits.
pub const RANDOM_LENGTH: usize = 32;

/// Maps random bytes to alphanumeric characters without bias: a byte is used only when
/// it is below the largest multiple of 62 (248); others are skipped. Returns `None` when
/// `bytes` ran out before `length` characters.
pub fn alphanumeric(bytes: &[u8], length: usize) -> Option<String> {
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let text: String = bytes
        .iter()
        .filter(|byte| **byte < limit)
        .take(length)
        .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
        .collect();
    (text.len() == length).then_some(text)
}

/// `NAME="value"` with the env file's double-quote escapes, so a multi-line PEM stays on
/// one line.
pub fn env_line(name: &str, value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '$' => escaped.push_str("\\$"),
            other => escaped.push(other),
        }
    }
    format!("{name}=\"{escaped}\"")
}

/// `existing` with each `(name, line)` written in: in place of an empty assignment of
/// that name (`NAME=`, as a copied `.env.example` has), else appended under a comment.
/// Every other line and comment is kept as it was.
pub fn filled_env_file(existing: &str, lines: &[(String, String)], when: &str) -> String {
    let mut pending: Vec<&(String, String)> = lines.iter().collect();
    let mut text = String::with_capacity(existing.len());
    for line in existing.split_inclusive('\n') {
        let position = pending
            .iter()
            .position(|(name, _)| is_empty_assignment(line, name));
        match position {
            Some(index) => {
                let (_, replacement) = pending.remove(index);
                text.push_str(replacement);
                text.push('\n');
            }
            None => text.push_str(line),
        }
    }
    if pending.is_empty() {
        return text;
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&format!(
        "# Generated by `stackctl secrets generate` on {when}.\n"
    ));
    for (_, line) in pending {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// `NAME=`, `export NAME = ""`, `NAME=  # comment`: an assignment of nothing to `name`.
fn is_empty_assignment(line: &str, name: &str) -> bool {
    let line = line.trim();
    let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
    let Some(rest) = line.strip_prefix(name) else {
        return false;
    };
    let Some(value) = rest.trim_start().strip_prefix('=') else {
        return false;
    };
    // An inline comment (` #`, or `#` right after `=`) is not part of the value.
    let value = value.split(" #").next().unwrap_or_default().trim();
    value.is_empty() || value == "\"\"" || value == "''" || value.starts_with('#')
}

/// The names an env file gives a value (an empty one counts as missing).
pub fn names_with_values(values: &BTreeMap<String, String>) -> BTreeSet<String> {
    values
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, _)| name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment() -> Environment {
        Environment::new(
            BTreeMap::new(),
            &BTreeMap::new(),
            &["SESSION".to_string()],
            &["DEPLOY_SSH_PUBLIC_KEY".to_string()],
        )
    }

    #[test]
    fn secrets_are_filled_by_format_and_the_rest_left_to_the_user() {
        let used: BTreeSet<String> = [
            "POSTGRES_PASSWORD",
            "POSTGRES_TLS_CERT",
            "POSTGRES_TLS_KEY",
            "DJANGO_SECRET_KEY",
            "SESSION",
            "WEBSITE_DOMAIN",
            "DEPLOY_SSH_PUBLIC_KEY",
            "FLOWER_PASSWORD",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let present: BTreeSet<String> = ["FLOWER_PASSWORD".to_string()].into_iter().collect();
        let plan = plan_generation(&used, &present, &environment());
        assert_eq!(
            plan.fill,
            vec![
                ("DJANGO_SECRET_KEY".to_string(), SecretFormat::Random),
                ("POSTGRES_PASSWORD".to_string(), SecretFormat::Random),
                ("POSTGRES_TLS_KEY".to_string(), SecretFormat::TlsKey),
                ("SESSION".to_string(), SecretFormat::Random),
                (
                    "POSTGRES_TLS_CERT".to_string(),
                    SecretFormat::TlsCertificate {
                        key_variable: "POSTGRES_TLS_KEY".to_string(),
                        common_name: "postgres".to_string(),
                    }
                ),
            ]
        );
        assert_eq!(
            plan.left_to_user,
            vec!["DEPLOY_SSH_PUBLIC_KEY", "WEBSITE_DOMAIN"]
        );
    }

    #[test]
    fn random_values_are_alphanumeric_and_unbiased() {
        let bytes: Vec<u8> = (0..=255).collect();
        let text = alphanumeric(&bytes, 62).expect("enough bytes");
        assert_eq!(text, String::from_utf8(ALPHABET.to_vec()).unwrap());
        // 248..=255 are skipped rather than folded onto the first characters.
        assert_eq!(alphanumeric(&[248, 255, 0], 1).as_deref(), Some("A"));
        assert_eq!(alphanumeric(&[250, 251], 1), None);
    }

    #[test]
    fn env_lines_escape_what_the_env_file_would_read_otherwise() {
        assert_eq!(
            env_line("K", "-----BEGIN\nabc\n-----END\n"),
            "K=\"-----BEGIN\\nabc\\n-----END\\n\""
        );
        assert_eq!(env_line("K", "a$b\"c\\"), "K=\"a\\$b\\\"c\\\\\"");
        // What the env file parser reads back is the value itself.
        let line = env_line("K", "-----BEGIN\nx$y\"z\\\n");
        let parsed = crate::config::parse_env_file(&line, &BTreeMap::new()).expect("parses");
        assert_eq!(parsed["K"], "-----BEGIN\nx$y\"z\\\n");
    }

    fn line(name: &str, value: &str) -> (String, String) {
        (name.to_string(), env_line(name, value))
    }

    #[test]
    fn the_env_file_keeps_its_lines_and_comments() {
        let existing =
            "# mine\nWEBSITE_DOMAIN=example.com # inline\n\nEMPTY=\nSECRET_X=\"\" # fill\nKEPT=1";
        let filled = filled_env_file(
            existing,
            &[line("EMPTY", "e"), line("A", "1"), line("SECRET_X", "x")],
            "2026-11-30",
        );
        assert_eq!(
            filled,
            "# mine\nWEBSITE_DOMAIN=example.com # inline\n\nEMPTY=\"e\"\nSECRET_X=\"x\"\nKEPT=1\n\n# Generated by `stackctl secrets generate` on 2026-11-30.\nA=\"1\"\n"
        );
        assert_eq!(filled_env_file("X=1\n", &[], "now"), "X=1\n");
        assert_eq!(
            filled_env_file("", &[line("A", "1")], "now"),
            "# Generated by `stackctl secrets generate` on now.\nA=\"1\"\n"
        );
        // A name that only starts like another is not its assignment.
        assert!(!is_empty_assignment("EMPTY_TOO=", "EMPTY"));
        assert!(is_empty_assignment("export EMPTY = ''", "EMPTY"));
        assert!(!is_empty_assignment("EMPTY=value", "EMPTY"));
    }
}
