//! Which service can reach what: the edge (shares a network with `service.edge`, so the
//! edge can forward to it), the internet (joins a network that is not `internal`), and
//! the other services on its networks. Read from `service.*` `networks` and `network.*`
//! `name` and `internal`, as the rest of the surface is.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use stackctl_provider::{Address, Attributes, Value};

use super::surface::AttributesByAddress;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceReach {
    /// The service's name (`edge` for the edge itself).
    pub service: String,
    /// The Docker networks it joins, each `(internal)` or not.
    pub networks: Vec<ReachNetwork>,
    /// Joins a network with a way out.
    pub internet: bool,
    /// Shares a network with the edge (false for the edge itself).
    pub edge: bool,
    /// The other services on its networks, sorted.
    pub peers: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReachNetwork {
    pub name: String,
    pub internal: bool,
}

/// Every service's reach, by service name.
pub fn read(resources: &AttributesByAddress<'_>) -> Vec<ServiceReach> {
    // Docker network name → internal. A network no resource describes (an older record)
    // counts as not internal: Docker's default.
    let internal: BTreeMap<&str, bool> = resources
        .iter()
        .filter(|(address, _)| address.kind() == "network")
        .filter_map(|(_, attributes)| {
            let name = attributes.get("name")?.as_text()?;
            let internal = attributes
                .get("internal")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            Some((name, internal))
        })
        .collect();
    let joined: BTreeMap<&str, BTreeSet<&str>> = resources
        .iter()
        .filter(|(address, _)| address.kind() == "service")
        .map(|(address, attributes)| (address.name(), network_names(attributes)))
        .collect();
    let edge = joined
        .get(Address::new("service", "edge").name())
        .cloned()
        .unwrap_or_default();
    joined
        .iter()
        .map(|(service, networks)| ServiceReach {
            service: service.to_string(),
            networks: networks
                .iter()
                .map(|name| ReachNetwork {
                    name: name.to_string(),
                    internal: internal.get(name).copied().unwrap_or(false),
                })
                .collect(),
            internet: networks
                .iter()
                .any(|name| !internal.get(name).copied().unwrap_or(false)),
            edge: *service != "edge" && !networks.is_disjoint(&edge),
            peers: joined
                .iter()
                .filter(|(other, theirs)| other != &service && !networks.is_disjoint(theirs))
                .map(|(other, _)| other.to_string())
                .collect(),
        })
        .collect()
}

fn network_names(attributes: &Attributes) -> BTreeSet<&str> {
    attributes
        .get("networks")
        .and_then(Value::as_map)
        .map(|networks| networks.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(name: &str, internal: bool) -> Attributes {
        Attributes::from([
            ("name".to_string(), Value::text(name)),
            ("internal".to_string(), Value::Bool(internal)),
        ])
    }

    fn service(networks: &[&str]) -> Attributes {
        Attributes::from([(
            "networks".to_string(),
            Value::Map(
                networks
                    .iter()
                    .map(|name| (name.to_string(), Value::List(Vec::new())))
                    .collect(),
            ),
        )])
    }

    #[test]
    fn an_internal_backend_keeps_the_database_off_the_internet() {
        let addresses = [
            Address::new("network", "edge"),
            Address::new("network", "backend"),
            Address::new("service", "edge"),
            Address::new("service", "api"),
            Address::new("service", "postgres"),
        ];
        let attributes = [
            network("shop_edge", false),
            network("shop_backend", true),
            service(&["shop_edge"]),
            service(&["shop_edge", "shop_backend"]),
            service(&["shop_backend"]),
        ];
        let resources: AttributesByAddress<'_> = addresses.iter().zip(attributes.iter()).collect();
        let reach = read(&resources);
        let of = |name: &str| reach.iter().find(|reach| reach.service == name).unwrap();
        assert!(!of("postgres").internet);
        assert!(!of("postgres").edge);
        assert_eq!(of("postgres").peers, vec!["api"]);
        assert!(of("api").internet);
        assert!(of("api").edge);
        assert_eq!(of("api").peers, vec!["edge", "postgres"]);
        assert!(of("edge").internet);
        assert!(!of("edge").edge);
    }
}
