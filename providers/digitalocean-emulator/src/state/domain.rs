//! Domains and their records: a new domain comes with its NS records, records are
//! listed with DigitalOcean's fully qualified `name` filter, and updates merge fields.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{json, Value as Json};

use super::fields::valid_hostname;
use super::handled::{not_found, ok, unprocessable, Handled};
use super::State;

pub(super) struct Domain {
    pub(super) name: String,
    pub(super) ttl: i64,
    pub(super) records: BTreeMap<i64, Json>,
}

impl State {
    pub(super) fn render_domain(domain: &Domain) -> Json {
        let mut zone = format!(
            "$ORIGIN {name}.\n$TTL {ttl}\n",
            name = domain.name,
            ttl = domain.ttl
        );
        zone.push_str(&format!(
            "{name}. IN SOA ns1.digitalocean.com. hostmaster.{name}. 1415982609 10800 3600 604800 1800\n",
            name = domain.name
        ));
        for record in domain.records.values() {
            let name = record.get("name").and_then(Json::as_str).unwrap_or("@");
            let owner = if name == "@" {
                format!("{}.", domain.name)
            } else {
                format!("{name}.{}.", domain.name)
            };
            zone.push_str(&format!(
                "{owner} {} IN {} {}\n",
                record
                    .get("ttl")
                    .and_then(Json::as_i64)
                    .unwrap_or(domain.ttl),
                record.get("type").and_then(Json::as_str).unwrap_or(""),
                record.get("data").and_then(Json::as_str).unwrap_or("")
            ));
        }
        json!({"name": domain.name, "ttl": domain.ttl, "zone_file": zone})
    }

    pub(super) fn create_domain(&mut self, body: &Json) -> Handled {
        let Some(name) = body.get("name").and_then(Json::as_str) else {
            return unprocessable("name is required");
        };
        if !name.contains('.') || !valid_hostname(name) {
            return unprocessable(format!("`{name}` is not a valid domain name"));
        }
        if self.domains.contains_key(name) {
            return unprocessable(format!("Domain {name} already exists"));
        }
        let mut domain = Domain {
            name: name.to_string(),
            ttl: 1800,
            records: BTreeMap::new(),
        };
        for server in ["ns1", "ns2", "ns3"] {
            let id = self.new_id();
            domain.records.insert(
                id,
                record_json(id, "NS", "@", &format!("{server}.digitalocean.com"), 1800),
            );
        }
        if let Some(address) = body.get("ip_address").and_then(Json::as_str) {
            let id = self.new_id();
            domain
                .records
                .insert(id, record_json(id, "A", "@", address, 1800));
        }
        self.domains.insert(name.to_string(), domain);
        ok(
            201,
            json!({ "domain": { "name": name, "ttl": 1800, "zone_file": null } }),
        )
    }

    pub(super) fn list_records(&self, domain_name: &str, query: &[(String, String)]) -> Handled {
        let Some(domain) = self.domains.get(domain_name) else {
            return not_found();
        };
        let value = |name: &str| {
            query
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let kind = value("type");
        // The `name` filter is fully qualified; records carry relative names.
        let wanted = value("name").map(|fully_qualified| {
            let fully_qualified = fully_qualified.trim_end_matches('.');
            if fully_qualified.eq_ignore_ascii_case(domain_name) {
                "@".to_string()
            } else {
                fully_qualified
                    .strip_suffix(&format!(".{domain_name}"))
                    .unwrap_or("\u{0}no match")
                    .to_string()
            }
        });
        let records = domain
            .records
            .values()
            .filter(|record| {
                kind.is_none_or(|kind| record.get("type").and_then(Json::as_str) == Some(kind))
            })
            .filter(|record| {
                wanted
                    .as_deref()
                    .is_none_or(|wanted| record.get("name").and_then(Json::as_str) == Some(wanted))
            })
            .cloned()
            .collect();
        self.page(
            "domain_records",
            records,
            &format!("/v2/domains/{domain_name}/records"),
            query,
        )
    }

    /// Create (`id` None), PUT or PATCH a record. Both updates merge the given fields,
    /// as DigitalOcean does; `type` cannot change.
    pub(super) fn write_record(
        &mut self,
        domain_name: &str,
        id: Option<&str>,
        body: &Json,
        _patch: bool,
    ) -> Handled {
        let next_id = self.next_id + 1;
        let Some(domain) = self.domains.get_mut(domain_name) else {
            return not_found();
        };
        let existing = match id {
            None => None,
            Some(text) => match text
                .parse::<i64>()
                .ok()
                .and_then(|id| domain.records.get(&id))
            {
                Some(record) => Some(record.clone()),
                None => return not_found(),
            },
        };
        let field = |name: &str| body.get(name).filter(|value| !value.is_null()).cloned();
        let kind = match (&existing, body.get("type").and_then(Json::as_str)) {
            (Some(record), _) => record
                .get("type")
                .and_then(Json::as_str)
                .unwrap_or("A")
                .to_string(),
            (None, Some(kind)) => kind.to_string(),
            (None, None) => return unprocessable("type is required"),
        };
        if !["A", "AAAA", "CAA", "CNAME", "MX", "NS", "SOA", "SRV", "TXT"].contains(&kind.as_str())
        {
            return unprocessable(format!("unsupported record type `{kind}`"));
        }
        let mut record =
            existing.unwrap_or_else(|| record_json(next_id, &kind, "@", "", domain.ttl));
        for name in [
            "name", "data", "ttl", "priority", "port", "weight", "flags", "tag",
        ] {
            if let Some(value) = field(name) {
                record[name] = value;
            }
        }
        if id.is_none() && (field("name").is_none() && kind != "MX" || field("data").is_none()) {
            return unprocessable("name and data are required");
        }
        let data = record.get("data").and_then(Json::as_str).unwrap_or("");
        let data_ok = match kind.as_str() {
            "A" => data.parse::<Ipv4Addr>().is_ok(),
            "AAAA" => data.parse::<Ipv6Addr>().is_ok(),
            _ => !data.is_empty(),
        };
        if !data_ok {
            return unprocessable(format!("`{data}` is not valid data for a {kind} record"));
        }
        if !record.get("ttl").is_some_and(Json::is_i64) {
            record["ttl"] = json!(domain.ttl);
        }
        let record_id = record.get("id").and_then(Json::as_i64).unwrap_or(next_id);
        domain.records.insert(record_id, record.clone());
        if id.is_none() {
            self.next_id = next_id;
            ok(201, json!({ "domain_record": record }))
        } else {
            ok(200, json!({ "domain_record": record }))
        }
    }
}

pub(super) fn record_json(id: i64, kind: &str, name: &str, data: &str, ttl: i64) -> Json {
    json!({
        "id": id, "type": kind, "name": name, "data": data,
        "priority": null, "port": null, "ttl": ttl, "weight": null, "flags": null, "tag": null,
    })
}
