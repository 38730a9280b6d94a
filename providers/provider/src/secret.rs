use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// A value that must never be shown or stored: a password, a token, a connection string
/// with a password in it.
///
/// It carries a salted digest, which is what plans compare and what state stores, and —
/// only while the process runs, and only when it came from the config or the environment —
/// the plaintext, which providers read through [`Secret::expose`] at apply time. `Debug`
/// and `Display` print `[redacted]`, and serialisation writes the digest alone, so a secret
/// cannot reach a plan, a log, an error or a state file by accident.
#[derive(Clone)]
pub struct Secret {
    digest: String,
    plaintext: Option<Arc<str>>,
}

impl Secret {
    /// Wraps a plaintext value; `salt` is the state's salt, so equal secrets in two stacks
    /// have unrelated digests.
    pub fn new(plaintext: &str, salt: &str) -> Self {
        Secret {
            digest: Self::digest_of(plaintext, salt),
            plaintext: Some(Arc::from(plaintext)),
        }
    }

    /// A secret known only by its digest (read back from state or from a saved plan).
    pub fn from_digest(digest: impl Into<String>) -> Self {
        Secret {
            digest: digest.into(),
            plaintext: None,
        }
    }

    /// Returns the salted digest, `sha256:<hex>`.
    pub fn digest_of(plaintext: &str, salt: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(salt.as_bytes());
        hasher.update([0u8]);
        hasher.update(plaintext.as_bytes());
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }

    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Returns the plaintext, for a provider that must hand it to the target.
    pub fn expose(&self) -> Option<&str> {
        self.plaintext.as_deref()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let secret = Secret::new("hunter2", "salt");
        assert_eq!(format!("{secret} {secret:?}"), "[redacted] [redacted]");
        assert!(!secret.digest().contains("hunter2"));
        assert_eq!(secret.expose(), Some("hunter2"));
    }

    #[test]
    fn compares_by_salted_digest() {
        assert_eq!(
            Secret::new("a", "s"),
            Secret::from_digest(Secret::digest_of("a", "s"))
        );
        assert_ne!(Secret::new("a", "s"), Secret::new("a", "t"));
    }
}
