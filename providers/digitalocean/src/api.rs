//! The DigitalOcean objects stackctl reads, as serde types.
//!
//! Only the fields stackctl uses are declared; every other field in a response is
//! ignored (the contract has no `additionalProperties: false`, so DigitalOcean may add
//! fields at any time). Fields that the contract marks nullable or that an older
//! response may omit default to empty values rather than failing the whole decode.

use serde::{Deserialize, Serialize};

/// A droplet as returned by `GET /v2/droplets[/{id}]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Droplet {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub locked: bool,
    #[serde(default)]
    pub size_slug: String,
    #[serde(default)]
    pub region: Option<RegionReference>,
    #[serde(default)]
    pub image: Option<ImageReference>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub networks: Option<Networks>,
}

impl Droplet {
    /// The public IPv4 address, once DigitalOcean has assigned one.
    pub fn public_ipv4(&self) -> Option<&str> {
        self.networks
            .as_ref()?
            .v4
            .iter()
            .find(|network| network.kind == "public")
            .map(|network| network.ip_address.as_str())
    }

    pub fn region_slug(&self) -> Option<&str> {
        self.region.as_ref().map(|region| region.slug.as_str())
    }

    /// The image's slug, or its numeric id as text for images without a slug (snapshots).
    pub fn image_text(&self) -> Option<String> {
        let image = self.image.as_ref()?;
        match (&image.slug, image.id) {
            (Some(slug), _) => Some(slug.clone()),
            (None, Some(id)) => Some(id.to_string()),
            (None, None) => None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct RegionReference {
    pub slug: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ImageReference {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub slug: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct Networks {
    #[serde(default)]
    pub v4: Vec<NetworkV4>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct NetworkV4 {
    pub ip_address: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// An action (`create`, `power_off`, `resize`, …) and where it stands.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Action {
    pub id: i64,
    #[serde(default)]
    pub status: String,
    #[serde(rename = "type", default)]
    pub kind: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct SshKey {
    pub id: i64,
    pub fingerprint: String,
    pub public_key: String,
    pub name: String,
}

/// Where a firewall rule lets traffic come from or go to. Every list is optional in the
/// contract, and DigitalOcean answers `null`, `[]` or nothing interchangeably.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct FirewallTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub droplet_ids: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_uids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct InboundRule {
    pub protocol: String,
    #[serde(default)]
    pub ports: String,
    #[serde(default)]
    pub sources: FirewallTarget,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct OutboundRule {
    pub protocol: String,
    #[serde(default)]
    pub ports: String,
    #[serde(default)]
    pub destinations: FirewallTarget,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Firewall {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub inbound_rules: Option<Vec<InboundRule>>,
    #[serde(default)]
    pub outbound_rules: Option<Vec<OutboundRule>>,
    #[serde(default)]
    pub droplet_ids: Option<Vec<i64>>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// The body of a firewall create or a whole-object update (`PUT` resets anything left out,
/// so every field is always sent).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FirewallRequest {
    pub name: String,
    pub inbound_rules: Vec<InboundRule>,
    pub outbound_rules: Vec<OutboundRule>,
    pub droplet_ids: Vec<i64>,
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Domain {
    pub name: String,
    #[serde(default)]
    pub ttl: Option<i64>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct DomainRecord {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub data: String,
    #[serde(default)]
    pub ttl: Option<i64>,
}

/// The body of a record create or update: the fields stackctl manages.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DomainRecordRequest {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub data: String,
    pub ttl: i64,
}
