//! Values that look like secrets where the naming rule (`*_PASSWORD`, `*_SECRET`,
//! `*_TOKEN`, `*_KEY`, `*_PASSWD`, or `[stack] secrets`) does not catch them: such a value
//! would be shown in plans and stored in state in plain text, so validation warns and
//! says how to declare it.

/// Words that mark a variable or key as secret wherever they appear in its name.
const SECRET_WORDS: [&str; 8] = [
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "CREDENTIAL",
    "PRIVATE_KEY",
    "API_KEY",
    "ACCESS_KEY",
];

/// A name that reads as a secret in any case: `PASSWORD`, `SECRET_KEY_BASE`,
/// `API_TOKENS`, `db_password`, `stripe_key`.
pub fn name_looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|word| upper.contains(word))
        || upper.ends_with("_KEY")
        || upper == "KEY"
}

/// A value shaped like a generated secret: long, without spaces, drawn from several
/// character classes or a long run of hex/base64, with high entropy per character.
/// Host names, URLs, e-mail addresses, paths and CIDRs are never counted.
pub fn value_looks_secret(value: &str) -> bool {
    if value.len() < 16 || value.chars().any(char::is_whitespace) {
        return false;
    }
    let is_email = value.rsplit_once('@').is_some_and(|(_, domain)| {
        domain.contains('.')
            && domain
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '.' || c == '-')
    });
    if value.contains("://") || value.starts_with('/') || is_email {
        return false;
    }
    let classes = [
        value.chars().any(|c| c.is_ascii_lowercase()),
        value.chars().any(|c| c.is_ascii_uppercase()),
        value.chars().any(|c| c.is_ascii_digit()),
        value.chars().any(|c| !c.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|present| **present)
    .count();
    let dotted_words = value
        .split(['.', '-', '_'])
        .all(|part| part.chars().all(|c| c.is_ascii_lowercase()));
    if dotted_words {
        // `flower.example.com`, `change-me-please-now`.
        return false;
    }
    let entropy = shannon_entropy(value);
    (classes >= 3 && entropy >= 3.5) || (value.len() >= 32 && entropy >= 3.7)
}

/// Why a secret's value is weak.
#[derive(Clone, Debug, PartialEq)]
pub enum Weakness {
    /// It is the value `.env.example` shows everyone.
    Placeholder,
    /// Fewer than [`MINIMUM_SECRET_LENGTH`] characters.
    Short { length: usize },
    /// Its characters carry fewer than [`MINIMUM_SECRET_BITS`] bits by their own
    /// distribution (`aaaaaaaaaaaaaaaaaaaa`, `passwordpassword`).
    LowEntropy { bits: f64 },
}

pub const MINIMUM_SECRET_LENGTH: usize = 16;
pub const MINIMUM_SECRET_BITS: f64 = 48.0;

/// The first weakness of a secret `value`, given the `.env.example` `placeholder` for
/// it. PEM blocks (keys, certificates) are structured, not passwords: never weak here.
pub fn secret_weakness(value: &str, placeholder: Option<&str>) -> Option<Weakness> {
    if placeholder.is_some_and(|placeholder| !placeholder.is_empty() && placeholder == value) {
        return Some(Weakness::Placeholder);
    }
    if value.is_empty() || value.trim_start().starts_with("-----BEGIN ") {
        return None;
    }
    let length = value.chars().count();
    if length < MINIMUM_SECRET_LENGTH {
        return Some(Weakness::Short { length });
    }
    // The sample's own distribution underestimates a short random string a little and
    // overestimates a long dictionary phrase; it is a warning's heuristic, not a proof.
    let bits = shannon_entropy(value) * length as f64;
    (bits < MINIMUM_SECRET_BITS).then_some(Weakness::LowEntropy { bits })
}

/// Bits per character of `text`'s own character distribution.
fn shannon_entropy(text: &str) -> f64 {
    let mut counts = std::collections::BTreeMap::new();
    for character in text.chars() {
        *counts.entry(character).or_insert(0usize) += 1;
    }
    let total = text.chars().count() as f64;
    counts
        .values()
        .map(|count| {
            let share = *count as f64 / total;
            -share * share.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_secrets_are_named_by_their_weakness() {
        assert_eq!(
            secret_weakness("change-me", Some("change-me")),
            Some(Weakness::Placeholder)
        );
        assert_eq!(
            secret_weakness("hunter2", None),
            Some(Weakness::Short { length: 7 })
        );
        assert!(matches!(
            secret_weakness("aaaaaaaaaaaaaaaaaaaaaaaa", None),
            Some(Weakness::LowEntropy { .. })
        ));
        assert!(matches!(
            secret_weakness("passwordpassword", None),
            Some(Weakness::LowEntropy { .. })
        ));
        assert_eq!(secret_weakness("q7Vb2LmX9rTz4NcW8kPe3HsY", Some("")), None);
        assert_eq!(
            secret_weakness("-----BEGIN PRIVATE KEY-----\nMIG\n", None),
            None
        );
        // An empty placeholder matches nothing.
        assert_eq!(secret_weakness("", Some("")), None);
    }

    #[test]
    fn names_and_values_that_look_secret() {
        for name in [
            "SECRET_KEY_BASE",
            "PASSWORD",
            "API_TOKENS",
            "db_password",
            "stripe_key",
        ] {
            assert!(name_looks_secret(name), "{name}");
        }
        for name in ["WEBSITE_DOMAIN", "ADMIN_CIDR", "REDIS_URL", "KEYCLOAK_HOST"] {
            assert!(!name_looks_secret(name), "{name}");
        }
        for value in [
            "kX9#mQ2$vL7@pR4!",
            "Tr0ub4dor&3-horse-Battery",
            "sk_live_51HqLyjWDarjtT1zdp7dc",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ] {
            assert!(value_looks_secret(value), "{value}");
        }
        for value in [
            "example.com",
            "change-me",
            "203.0.113.0/24",
            "ops@example.com",
            "redis://redis:6379/0",
            "flower.example.test",
            "local-demo-password",
        ] {
            assert!(!value_looks_secret(value), "{value}");
        }
    }
}
