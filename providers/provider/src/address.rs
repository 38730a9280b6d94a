use std::fmt;

use serde::{Deserialize, Serialize};

/// The stable name of a resource: `kind.name`, for example `service.api` or
/// `droplet.web-1`. The kind says which provider owns it; the name comes from stack.toml.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Address {
    kind: String,
    name: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{text}` is not a resource address; expected `kind.name`, for example `service.api`")]
pub struct AddressError {
    pub text: String,
}

impl Address {
    pub fn new(kind: impl Into<String>, name: impl Into<String>) -> Self {
        Address {
            kind: kind.into(),
            name: name.into(),
        }
    }

    /// Parses `kind.name`. The kind never contains a dot; the name may (`file.traefik.yml`
    /// is kind `file`, name `traefik.yml`).
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        match text.split_once('.') {
            Some((kind, name))
                if !kind.is_empty()
                    && !name.is_empty()
                    && kind.chars().all(|c| c.is_ascii_lowercase() || c == '_') =>
            {
                Ok(Address::new(kind, name))
            }
            _ => Err(AddressError {
                text: text.to_string(),
            }),
        }
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for Address {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}.{}", self.kind, self.name)
    }
}

impl TryFrom<String> for Address {
    type Error = AddressError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Address::parse(&text)
    }
}

impl From<Address> for String {
    fn from(address: Address) -> String {
        address.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kind_and_name() {
        let address = Address::parse("file.traefik.yml").unwrap();
        assert_eq!(address.kind(), "file");
        assert_eq!(address.name(), "traefik.yml");
        assert_eq!(address.to_string(), "file.traefik.yml");
    }

    #[test]
    fn rejects_text_without_a_kind() {
        assert!(Address::parse("api").is_err());
        assert!(Address::parse(".api").is_err());
        assert!(Address::parse("Service.api").is_err());
    }
}
