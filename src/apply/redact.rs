//! Every file stackctl writes about a run passes through here: each known secret value
//! — and its URL-encoded and base64 forms, as they appear in connection strings and
//! `Authorization` headers — is replaced by `[redacted]`.

use base64::Engine as _;

/// The forms a secret takes in logs and responses.
fn forms(secret: &str) -> Vec<String> {
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let json_escaped = serde_json::to_string(secret).unwrap_or_default();
    let json_escaped = json_escaped.trim_matches('"').to_string();
    let mut found = vec![secret.to_string(), percent_encode(secret), json_escaped];
    for engine in engines {
        found.push(engine.encode(secret.as_bytes()));
    }
    found.sort();
    found.dedup();
    found
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
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
