//! Host key trust: fingerprints in `ssh-keygen -lf` form and an OpenSSH `known_hosts`
//! reader.
//!
//! The reader follows `sshd(8)`'s "SSH_KNOWN_HOSTS FILE FORMAT": each line is an
//! optional marker (`@revoked`, `@cert-authority`), a comma-separated host pattern
//! list, the key type and the base64 key. A host on a port other than 22 is written
//! `[host]:port`. Patterns may use `*` and `?`, may be negated with `!`, and may be
//! hashed (`|1|salt|hmac-sha1(salt, name)`, what `HashKnownHosts yes` writes). A line
//! whose key cannot be parsed is skipped rather than failing the whole file, as
//! OpenSSH does.
//!
//! The verdict distinguishes a key that was never seen (the user may accept it once)
//! from a key that differs from the recorded one (never accepted: that is exactly what
//! a man in the middle looks like).

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::{Algorithm, HashAlg, PublicKey};
use sha1::Sha1;

/// Returns the key's SHA256 fingerprint exactly as `ssh-keygen -lf` prints it:
/// `SHA256:` followed by unpadded base64.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Returns the key type the way `ssh-keygen -lf` shows it in parentheses: `ED25519`,
/// `ECDSA`, `RSA`…
pub fn key_type_label(algorithm: &Algorithm) -> String {
    match algorithm {
        Algorithm::Ed25519 => "ED25519".to_string(),
        Algorithm::Ecdsa { .. } => "ECDSA".to_string(),
        Algorithm::Rsa { .. } => "RSA".to_string(),
        Algorithm::Dsa => "DSA".to_string(),
        Algorithm::SkEd25519 => "ED25519-SK".to_string(),
        Algorithm::SkEcdsaSha2NistP256 => "ECDSA-SK".to_string(),
        other => other.as_str().to_uppercase(),
    }
}

/// Returns `SHA256:… (ED25519)`: the fingerprint and key type of `ssh-keygen -lf`.
pub fn describe_key(key: &PublicKey) -> String {
    format!(
        "{} ({})",
        fingerprint(key),
        key_type_label(&key.algorithm())
    )
}

/// The name under which `known_hosts` records a host: `host`, or `[host]:port` when
/// the port is not 22.
pub fn known_hosts_name(address: &str, port: u16) -> String {
    if port == 22 {
        address.to_string()
    } else {
        format!("[{address}]:{port}")
    }
}

/// One `known_hosts` line that applies to the host being checked.
#[derive(Clone, Debug)]
pub struct KnownHostEntry {
    /// 1-based line number, for messages (`known_hosts:12`).
    pub line: usize,
    pub revoked: bool,
    pub key: PublicKey,
}

/// What `known_hosts` says about a presented host key.
#[derive(Clone, Debug)]
pub enum KnownHostsVerdict {
    /// The key is recorded for this host on `line`.
    Known { line: usize },
    /// The key is marked `@revoked` on `line`.
    Revoked { line: usize },
    /// The host is recorded, but with other keys: these.
    Changed { recorded: Vec<KnownHostEntry> },
    /// The host is not recorded at all.
    Unknown,
}

/// Returns the entries of `contents` (a `known_hosts` file) that apply to `address`
/// on `port`, in file order. `@cert-authority` lines are left out: stackctl does not
/// trust host certificates.
pub fn entries_for_host(contents: &str, address: &str, port: u16) -> Vec<KnownHostEntry> {
    let name = known_hosts_name(address, port);
    let mut entries = Vec::new();
    for (index, raw_line) in contents.lines().enumerate() {
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let Some(mut first) = fields.next() else {
            continue;
        };
        let mut revoked = false;
        if let Some(marker) = first.strip_prefix('@') {
            match marker {
                "revoked" => revoked = true,
                // Certificate authorities and unknown markers do not vouch for a plain key.
                _ => continue,
            }
            let Some(patterns) = fields.next() else {
                continue;
            };
            first = patterns;
        }
        let (Some(key_type), Some(key_base64)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !patterns_match(first, &name) {
            continue;
        }
        let Ok(key) = PublicKey::from_openssh(&format!("{key_type} {key_base64}")) else {
            continue;
        };
        entries.push(KnownHostEntry {
            line: index + 1,
            revoked,
            key,
        });
    }
    entries
}

/// Checks `presented` against the entries of `contents` for `address` on `port`.
pub fn check(contents: &str, address: &str, port: u16, presented: &PublicKey) -> KnownHostsVerdict {
    let entries = entries_for_host(contents, address, port);
    let same_key = |entry: &&KnownHostEntry| entry.key.key_data() == presented.key_data();
    if let Some(entry) = entries.iter().filter(|entry| entry.revoked).find(same_key) {
        return KnownHostsVerdict::Revoked { line: entry.line };
    }
    if let Some(entry) = entries.iter().filter(|entry| !entry.revoked).find(same_key) {
        return KnownHostsVerdict::Known { line: entry.line };
    }
    let recorded: Vec<KnownHostEntry> =
        entries.into_iter().filter(|entry| !entry.revoked).collect();
    if recorded.is_empty() {
        KnownHostsVerdict::Unknown
    } else {
        KnownHostsVerdict::Changed { recorded }
    }
}

/// Whether a comma-separated pattern list matches `name`: some positive pattern
/// matches and no negated one does.
fn patterns_match(patterns: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if pattern_matches(negated, name) {
                return false;
            }
        } else if pattern_matches(pattern, name) {
            matched = true;
        }
    }
    matched
}

fn pattern_matches(pattern: &str, name: &str) -> bool {
    if let Some(hashed) = pattern.strip_prefix("|1|") {
        return hashed_pattern_matches(hashed, name);
    }
    // OpenSSH compares host names case-insensitively.
    glob_matches(
        pattern.to_ascii_lowercase().as_bytes(),
        name.to_ascii_lowercase().as_bytes(),
    )
}

/// `salt|hash`, both base64: the entry matches when HMAC-SHA1 keyed with the salt over
/// the name equals the hash.
fn hashed_pattern_matches(hashed: &str, name: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (
        BASE64.decode(salt.as_bytes()),
        BASE64.decode(hash.as_bytes()),
    ) else {
        return false;
    };
    let Ok(mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.chain_update(name.as_bytes())
        .verify_slice(&hash)
        .is_ok()
}

/// `*` matches any run of bytes, `?` any one byte, everything else itself. Iterative
/// with one backtrack point, so it is linear in practice and never recurses.
fn glob_matches(pattern: &[u8], name: &[u8]) -> bool {
    let (mut pattern_index, mut name_index) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while name_index < name.len() {
        match pattern.get(pattern_index) {
            Some(b'*') => {
                backtrack = Some((pattern_index, name_index));
                pattern_index += 1;
            }
            Some(&expected) if expected == b'?' || expected == name[name_index] => {
                pattern_index += 1;
                name_index += 1;
            }
            _ => match backtrack {
                Some((star_index, star_name_index)) => {
                    pattern_index = star_index + 1;
                    name_index = star_name_index + 1;
                    backtrack = Some((star_index, star_name_index + 1));
                }
                None => return false,
            },
        }
    }
    pattern[pattern_index..].iter().all(|&byte| byte == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    // Two throw-away ed25519 public keys (generated with `ssh-keygen -t ed25519`).
    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC3+cl+KUn5ihbNvrEx7U/TPzhRoBQXAUM5Iym1zGX83";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDjvLJJ3YzscTTeOw2dB+iBTAKgIUvNRpcs66KpfU+io";

    fn key(text: &str) -> PublicKey {
        PublicKey::from_openssh(text).unwrap()
    }

    #[test]
    fn names_on_port_22_are_bare_and_others_bracketed() {
        assert_eq!(known_hosts_name("203.0.113.7", 22), "203.0.113.7");
        assert_eq!(known_hosts_name("127.0.0.1", 2222), "[127.0.0.1]:2222");
    }

    #[test]
    fn a_recorded_key_is_known() {
        let file = format!("# comment\n\nexample.org,203.0.113.7 {KEY_A} root@example\n");
        assert!(matches!(
            check(&file, "203.0.113.7", 22, &key(KEY_A)),
            KnownHostsVerdict::Known { line: 3 }
        ));
    }

    #[test]
    fn a_bracketed_entry_only_matches_its_port() {
        let file = format!("[127.0.0.1]:2222 {KEY_A}\n");
        assert!(matches!(
            check(&file, "127.0.0.1", 2222, &key(KEY_A)),
            KnownHostsVerdict::Known { .. }
        ));
        assert!(matches!(
            check(&file, "127.0.0.1", 22, &key(KEY_A)),
            KnownHostsVerdict::Unknown
        ));
        assert!(matches!(
            check(&file, "127.0.0.1", 2223, &key(KEY_A)),
            KnownHostsVerdict::Unknown
        ));
    }

    #[test]
    fn a_different_key_for_a_recorded_host_is_a_change() {
        let file = format!("example.org {KEY_A}\n");
        match check(&file, "example.org", 22, &key(KEY_B)) {
            KnownHostsVerdict::Changed { recorded } => {
                assert_eq!(recorded.len(), 1);
                assert_eq!(recorded[0].line, 1);
                assert_eq!(fingerprint(&recorded[0].key), fingerprint(&key(KEY_A)));
            }
            other => panic!("expected a change, got {other:?}"),
        }
    }

    #[test]
    fn hashed_entries_match_by_hmac() {
        // Salt and HMAC-SHA1("[127.0.0.1]:2222") as `ssh-keygen -H` writes them,
        // computed here with the same primitives to keep the test self-contained.
        let salt = [7u8; 20];
        let mut mac = Hmac::<Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"[127.0.0.1]:2222");
        let hash = mac.finalize().into_bytes();
        let file = format!(
            "|1|{}|{} {KEY_A}\n",
            BASE64.encode(&salt),
            BASE64.encode(&hash)
        );
        assert!(matches!(
            check(&file, "127.0.0.1", 2222, &key(KEY_A)),
            KnownHostsVerdict::Known { .. }
        ));
        assert!(matches!(
            check(&file, "127.0.0.1", 2223, &key(KEY_A)),
            KnownHostsVerdict::Unknown
        ));
    }

    #[test]
    fn wildcards_and_negation_follow_openssh() {
        let file = format!("*.example.org,!bad.example.org {KEY_A}\n");
        assert!(matches!(
            check(&file, "web.example.org", 22, &key(KEY_A)),
            KnownHostsVerdict::Known { .. }
        ));
        assert!(matches!(
            check(&file, "bad.example.org", 22, &key(KEY_A)),
            KnownHostsVerdict::Unknown
        ));
        assert!(glob_matches(b"10.0.0.?", b"10.0.0.7"));
        assert!(!glob_matches(b"10.0.0.?", b"10.0.0.17"));
        assert!(glob_matches(b"*", b""));
        assert!(glob_matches(b"a*b*c", b"aXXbYYc"));
        assert!(!glob_matches(b"a*b*c", b"aXXbYY"));
    }

    #[test]
    fn revoked_keys_are_reported_and_cert_authorities_ignored() {
        let file = format!("@revoked example.org {KEY_A}\n@cert-authority example.org {KEY_B}\n");
        assert!(matches!(
            check(&file, "example.org", 22, &key(KEY_A)),
            KnownHostsVerdict::Revoked { line: 1 }
        ));
        assert!(matches!(
            check(&file, "example.org", 22, &key(KEY_B)),
            KnownHostsVerdict::Unknown
        ));
    }

    #[test]
    fn broken_lines_are_skipped() {
        let file =
            format!("example.org ssh-ed25519 not-base64\nexample.org\n\texample.org  {KEY_A}  \n");
        assert!(matches!(
            check(&file, "example.org", 22, &key(KEY_A)),
            KnownHostsVerdict::Known { line: 3 }
        ));
    }

    #[test]
    fn fingerprints_read_like_ssh_keygen() {
        // `ssh-keygen -lf` on KEY_A printed:
        // 256 SHA256:4nN3qrrNLyws3G404DHKUM/kYlok5y6DBqKjiwhH6OY root@vm (ED25519)
        assert_eq!(
            fingerprint(&key(KEY_A)),
            "SHA256:4nN3qrrNLyws3G404DHKUM/kYlok5y6DBqKjiwhH6OY"
        );
        let described = describe_key(&key(KEY_A));
        assert!(described.starts_with("SHA256:"), "{described}");
        assert!(described.ends_with(" (ED25519)"), "{described}");
        assert!(
            !fingerprint(&key(KEY_A)).ends_with('='),
            "unpadded base64 like ssh-keygen"
        );
    }
}
