//! Every file stackctl writes about a run passes through here: each known secret value
//! is replaced by `[redacted]`.

/// Replaces every occurrence of every secret (longest first, so a secret containing
/// another is replaced whole). Empty and one-character secrets are skipped: replacing
/// them would shred the text without protecting anything.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut ordered: Vec<&String> = secrets.iter().filter(|secret| secret.len() > 1).collect();
    ordered.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
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
    #[test]
    fn replaces_every_secret_longest_first() {
        let secrets = vec![
            "hunter2".to_string(),
            "postgres://app:hunter2@db".to_string(),
        ];
        assert_eq!(
            super::redact("url=postgres://app:hunter2@db pw=hunter2", &secrets),
            "url=[redacted] pw=[redacted]"
        );
    }
}
