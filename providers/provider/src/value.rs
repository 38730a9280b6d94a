use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::json;

use crate::{Address, Secret};

/// An attribute value of a resource.
///
/// Plain JSON-like data, plus two cases plans need: a [`Secret`] (compared and stored by
/// its salted digest only) and an `Unknown` value that is known only after another
/// resource is applied (a droplet's IP address flowing into a DNS record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Null,
    Bool(bool),
    Integer(i64),
    Text(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Secret(Secret),
    Unknown(Reference),
}

/// Points at an attribute of another resource, for values known only after apply.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    pub address: Address,
    pub attribute: String,
}

impl fmt::Display for Reference {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}.{}", self.address, self.attribute)
    }
}

impl Value {
    pub fn text(text: impl Into<String>) -> Value {
        Value::Text(text.into())
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Value::Integer(number) => Some(*number),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(flag) => Some(*flag),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// True when this value, or anything inside it, is a secret.
    pub fn contains_secret(&self) -> bool {
        match self {
            Value::Secret(_) => true,
            Value::List(items) => items.iter().any(Value::contains_secret),
            Value::Map(entries) => entries.values().any(Value::contains_secret),
            _ => false,
        }
    }

    /// True when this value, or anything inside it, is known only after apply.
    pub fn contains_unknown(&self) -> bool {
        match self {
            Value::Unknown(_) => true,
            Value::List(items) => items.iter().any(Value::contains_unknown),
            Value::Map(entries) => entries.values().any(Value::contains_unknown),
            _ => false,
        }
    }

    /// Every reference inside this value.
    pub fn references(&self, found: &mut Vec<Reference>) {
        match self {
            Value::Unknown(reference) => found.push(reference.clone()),
            Value::List(items) => items.iter().for_each(|item| item.references(found)),
            Value::Map(entries) => entries.values().for_each(|item| item.references(found)),
            _ => {}
        }
    }

    /// Replaces every reference that `lookup` can answer; the rest stay unknown.
    pub fn resolve(&self, lookup: &dyn Fn(&Reference) -> Option<Value>) -> Value {
        match self {
            Value::Unknown(reference) => lookup(reference).unwrap_or_else(|| self.clone()),
            Value::List(items) => {
                Value::List(items.iter().map(|item| item.resolve(lookup)).collect())
            }
            Value::Map(entries) => Value::Map(
                entries
                    .iter()
                    .map(|(key, item)| (key.clone(), item.resolve(lookup)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// The JSON form used in state files, saved plans and hashes. Secrets become
    /// `{"$secret": "<salted digest>"}`, unknowns `{"$unknown": "<reference>"}`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(flag) => json!(flag),
            Value::Integer(number) => json!(number),
            Value::Text(text) => json!(text),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(key, item)| (key.clone(), item.to_json()))
                    .collect(),
            ),
            Value::Secret(secret) => json!({ "$secret": secret.digest() }),
            Value::Unknown(reference) => json!({ "$unknown": reference.to_string() }),
        }
    }

    /// The inverse of [`Value::to_json`]. Floats become text: no attribute needs them.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(flag) => Value::Bool(*flag),
            serde_json::Value::Number(number) => match number.as_i64() {
                Some(integer) => Value::Integer(integer),
                None => Value::Text(number.to_string()),
            },
            serde_json::Value::String(text) => Value::Text(text.clone()),
            serde_json::Value::Array(items) => {
                Value::List(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(entries) => {
                if entries.len() == 1 {
                    if let Some(serde_json::Value::String(digest)) = entries.get("$secret") {
                        return Value::Secret(Secret::from_digest(digest.clone()));
                    }
                    if let Some(serde_json::Value::String(text)) = entries.get("$unknown") {
                        if let Some(reference) = parse_reference(text) {
                            return Value::Unknown(reference);
                        }
                    }
                }
                Value::Map(
                    entries
                        .iter()
                        .map(|(key, item)| (key.clone(), Value::from_json(item)))
                        .collect(),
                )
            }
        }
    }
}

/// `droplet.web-1.ipv4` → address `droplet.web-1`, attribute `ipv4` (the last dot splits).
fn parse_reference(text: &str) -> Option<Reference> {
    let (address, attribute) = text.rsplit_once('.')?;
    Some(Reference {
        address: Address::parse(address).ok()?,
        attribute: attribute.to_string(),
    })
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::Text(text.to_string())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::Text(text)
    }
}

impl From<i64> for Value {
    fn from(number: i64) -> Value {
        Value::Integer(number)
    }
}

impl From<bool> for Value {
    fn from(flag: bool) -> Value {
        Value::Bool(flag)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = serde_json::Value::deserialize(deserializer)?;
        Ok(Value::from_json(&json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_secrets_as_digests() {
        let value = Value::Map(BTreeMap::from([
            (
                "password".to_string(),
                Value::Secret(Secret::new("hunter2", "salt")),
            ),
            (
                "ip".to_string(),
                Value::Unknown(Reference {
                    address: Address::new("droplet", "web-1"),
                    attribute: "ipv4".into(),
                }),
            ),
            ("port".to_string(), Value::Integer(8000)),
        ]));
        let text = serde_json::to_string(&value).unwrap();
        assert!(!text.contains("hunter2"));
        assert!(text.contains("\"$unknown\":\"droplet.web-1.ipv4\""));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
