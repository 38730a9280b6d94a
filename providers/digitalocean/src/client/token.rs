//! The API token: readable only through [`Token::expose`], printed as `[redacted]`, so
//! that no log line or debug dump can leak it.

use std::fmt;

/// An API token. It can only be read through [`Token::expose`], and prints as `[redacted]`.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Self {
        Token(token.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[redacted]")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientConfig;

    #[test]
    fn token_is_redacted() {
        let token = Token::new("dop_v1_secret");
        assert_eq!(format!("{token} {token:?}"), "[redacted] [redacted]");
        let config = ClientConfig::new("http://127.0.0.1:1", Some(token));
        assert!(!format!("{config:?}").contains("dop_v1_secret"));
    }
}
