//! Every file stackctl writes about a run passes through here: each known secret value
//! — and the forms it takes in connection strings, JSON bodies, form posts and
//! `Authorization` headers — is replaced by `[redacted]`.
//!
//! The forms: the value itself; JSON-escaped once and twice (a JSON document inside a
//! JSON string); percent-encoded with upper- and lower-case hex, and with `+` for spaces
//! (HTML forms); base64 (standard and URL-safe alphabets) of the value alone and of the
//! value at each of the three alignments inside a longer encoded text (`user:secret` in
//! a basic-auth header, where the user name's length decides the alignment).

use base64::Engine as _;

/// The forms a secret takes in logs and responses.
fn forms(secret: &str) -> Vec<String> {
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let escaped_once = json_escape(secret);
    let escaped_twice = json_escape(&escaped_once);
    let mut found = vec![
        secret.to_string(),
        percent_encode(secret, Hex::Upper, false),
        percent_encode(secret, Hex::Lower, false),
        percent_encode(secret, Hex::Upper, true),
        percent_encode(secret, Hex::Lower, true),
        escaped_once,
        escaped_twice,
    ];
    for engine in engines {
        found.push(engine.encode(secret.as_bytes()));
    }
    found.extend(base64_cores(secret.as_bytes()));
    found.sort();
    found.dedup();
    found
}

/// The text of a JSON string holding `text`, without its quotes.
fn json_escape(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted[1..quoted.len().saturating_sub(1).max(1)].to_string()
}

#[derive(Clone, Copy)]
enum Hex {
    Upper,
    Lower,
}

/// RFC 3986 percent-encoding of everything but unreserved characters; with
/// `plus_for_space`, the `application/x-www-form-urlencoded` variant.
fn percent_encode(text: &str, hex: Hex, plus_for_space: bool) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(byte as char);
        } else if byte == b' ' && plus_for_space {
            encoded.push('+');
        } else {
            match hex {
                Hex::Upper => encoded.push_str(&format!("%{byte:02X}")),
                Hex::Lower => encoded.push_str(&format!("%{byte:02x}")),
            }
        }
    }
    encoded
}

/// The base64 characters that depend on the secret's bytes alone, for each of the three
/// positions it can start at inside a longer encoded text (`base64("user:" + secret)`):
/// whatever surrounds it, those characters appear as they are, in both alphabets.
fn base64_cores(secret: &[u8]) -> Vec<String> {
    let mut cores = Vec::new();
    for offset in 0..3usize {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(secret);
        // A character covers 6 bits; the secret covers bits [8·offset, 8·(offset+len)).
        let first = (8 * offset).div_ceil(6);
        let end = (8 * (offset + secret.len())) / 6;
        for engine in [
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            let encoded = engine.encode(&padded);
            if let Some(core) = encoded.get(first..end.min(encoded.len())) {
                if core.len() >= 4 {
                    cores.push(core.to_string());
                }
            }
        }
    }
    cores
}

/// Replaces every occurrence of every form of every secret (longest first, so a secret
/// containing another is replaced whole). Secrets shorter than four characters are
/// skipped: replacing them would shred the text without protecting anything.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut ordered: Vec<String> = secrets
        .iter()
        .filter(|secret| secret.chars().count() >= 4)
        .flat_map(|secret| forms(secret))
        .collect();
    ordered.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    ordered.dedup();
    let mut result = text.to_string();
    for secret in ordered {
        if result.contains(secret.as_str()) {
            result = result.replace(secret.as_str(), "[redacted]");
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_secret_longest_first() {
        let secrets = vec![
            "hunter2".to_string(),
            "postgres://app:hunter2@db".to_string(),
        ];
        assert_eq!(
            redact("url=postgres://app:hunter2@db pw=hunter2", &secrets),
            "url=[redacted] pw=[redacted]"
        );
    }

    /// One row per encoding: the text a run folder might hold, holding the secret
    /// `p@ss "w/1"\x` in that encoding, must not keep it.
    #[test]
    fn redaction_covers_every_encoding() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let secret = "p@ss \"w/1\"\\x";
        let twice = serde_json::to_string(
            &serde_json::to_string(&serde_json::json!({ "password": secret })).unwrap(),
        )
        .unwrap();
        let cases: Vec<(&str, String)> = vec![
            ("plain", format!("password={secret}")),
            (
                "JSON-escaped",
                serde_json::json!({ "password": secret }).to_string(),
            ),
            ("JSON-escaped twice", twice),
            (
                "percent-encoded, upper-case hex",
                "pw=p%40ss%20%22w%2F1%22%5Cx&".into(),
            ),
            (
                "percent-encoded, lower-case hex",
                "pw=p%40ss%20%22w%2f1%22%5cx&".into(),
            ),
            (
                "form-encoded, + for spaces",
                "pw=p%40ss+%22w%2F1%22%5Cx&".into(),
            ),
            (
                "form-encoded, lower-case hex",
                "pw=p%40ss+%22w%2f1%22%5cx&".into(),
            ),
            ("base64", format!("x {} y", STANDARD.encode(secret))),
            (
                "base64, URL-safe",
                format!("x {} y", URL_SAFE_NO_PAD.encode(secret)),
            ),
            (
                "basic auth, user of 3",
                format!("Basic {}", STANDARD.encode(format!("bob:{secret}"))),
            ),
            (
                "basic auth, user of 4",
                format!("Basic {}", STANDARD.encode(format!("anna:{secret}"))),
            ),
            (
                "basic auth, user of 5",
                format!("Basic {}", STANDARD.encode(format!("admin:{secret}"))),
            ),
            (
                "basic auth, URL-safe",
                format!("t={}", URL_SAFE_NO_PAD.encode(format!("root:{secret}"))),
            ),
        ];
        let plain_forms = [secret.to_string(), STANDARD.encode(secret), "p%40ss".into()];
        for (encoding, text) in cases {
            let redacted = redact(&text, &[secret.to_string()]);
            assert!(
                redacted.contains("[redacted]"),
                "{encoding}: {text} → {redacted}"
            );
            // The marker replaced the bulk of the encoded secret (a base64 core leaves at
            // most two characters at each end, each holding a few of its bits).
            let removed = text.len() + "[redacted]".len() - redacted.len();
            assert!(
                removed >= secret.len() - 2,
                "{encoding}: {text} → {redacted}"
            );
            // What is left around the marker is at most a few bits of the secret: never
            // a readable run of it.
            for form in &plain_forms {
                assert!(!redacted.contains(form.as_str()), "{encoding}: {redacted}");
            }
            assert!(
                !redacted.contains("w/1") && !redacted.contains("w%2"),
                "{encoding}: {redacted}"
            );
        }
    }

    #[test]
    fn url_encoded_and_base64_forms_are_redacted_too() {
        let secrets = vec!["p@ss word/1".to_string()];
        let encoded = format!(
            "q=p%40ss%20word%2F1 b64={} url={}",
            base64::engine::general_purpose::STANDARD.encode("p@ss word/1"),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("p@ss word/1")
        );
        assert_eq!(
            redact(&encoded, &secrets),
            "q=[redacted] b64=[redacted] url=[redacted]"
        );
    }
}
