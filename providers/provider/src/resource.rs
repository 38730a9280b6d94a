use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Address, ReplaceOrder, Value};

/// A resource's attributes, sorted by name so that every rendering is deterministic.
pub type Attributes = BTreeMap<String, Value>;

/// A resource as stack.toml wants it: produced by lowering, consumed by the planner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub address: Address,
    /// The provider that owns this kind, e.g. `docker`, `traefik`, `digitalocean`.
    pub provider: String,
    pub attributes: Attributes,
    /// Resources that must exist before this one; sorted, without duplicates.
    pub dependencies: Vec<Address>,
    /// How a replacement is ordered. Lowering decides: a service holding a named volume
    /// is destroyed before its successor starts; a routed stateless one is not.
    pub replace_order: ReplaceOrder,
}

impl Resource {
    pub fn new(address: Address, provider: &str) -> Self {
        Resource {
            address,
            provider: provider.to_string(),
            attributes: Attributes::new(),
            dependencies: Vec::new(),
            replace_order: ReplaceOrder::CreateBeforeDestroy,
        }
    }

    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.attributes.insert(name.to_string(), value.into());
        self
    }

    pub fn depends_on(mut self, address: Address) -> Self {
        if !self.dependencies.contains(&address) {
            self.dependencies.push(address);
            self.dependencies.sort();
        }
        self
    }

    /// Returns sha256 over the canonical JSON of the attributes. Secrets enter as their
    /// salted digests, unknown values as their references.
    pub fn hash(&self) -> String {
        hash_attributes(&self.attributes)
    }
}

pub fn hash_attributes(attributes: &Attributes) -> String {
    sha256_hex(canonical_json(attributes).as_bytes())
}

/// Compact JSON with object keys sorted (attributes are `BTreeMap`s all the way down).
pub fn canonical_json(attributes: &Attributes) -> String {
    let json: serde_json::Map<String, serde_json::Value> = attributes
        .iter()
        .map(|(key, value)| (key.clone(), value.to_json()))
        .collect();
    serde_json::Value::Object(json).to_string()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A resource as the last apply left it: what `state/<stack>.json` records per resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedResource {
    pub address: Address,
    pub provider: String,
    /// The provider's own identifier (container id, droplet id), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The hash of the desired attributes this resource was applied from.
    pub hash: String,
    /// Desired attributes as applied, plus computed ones (an IP address, an image id).
    pub attributes: Attributes,
    #[serde(default)]
    pub dependencies: Vec<Address>,
}

impl RecordedResource {
    /// What a provider records after applying `desired`, before adding computed values.
    pub fn from_desired(desired: &Resource, id: Option<String>) -> Self {
        RecordedResource {
            address: desired.address.clone(),
            provider: desired.provider.clone(),
            id,
            hash: desired.hash(),
            attributes: desired.attributes.clone(),
            dependencies: desired.dependencies.clone(),
        }
    }
}
