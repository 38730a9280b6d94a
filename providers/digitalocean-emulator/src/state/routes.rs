//! The public API's routing table (method and path to handler), and pagination with
//! `links.pages` and `meta.total`, shared by every list endpoint.

use serde_json::{json, Value as Json};

use super::fields::valid_tag;
use super::handled::{error, no_content, not_found, ok, unprocessable, Handled};
use super::State;
use crate::catalog;

impl State {
    pub(super) fn route(
        &mut self,
        method: &str,
        segments: &[&str],
        query: &[(String, String)],
        body: Option<&Json>,
    ) -> Handled {
        let empty = json!({});
        let body = body.unwrap_or(&empty);
        match (method, segments) {
            ("GET", ["v2", "account"]) => ok(
                200,
                json!({"account": {
                    "droplet_limit": 25, "floating_ip_limit": 3, "volume_limit": 100,
                    "email": "emulator@example.com", "uuid": "b6fr89dbf6d9156cace5f3c78dc9851d957381ef",
                    "email_verified": true, "status": "active", "status_message": ""
                }}),
            ),
            ("GET", ["v2", "droplets"]) => self.list_droplets(query),
            ("POST", ["v2", "droplets"]) => self.create_droplets(body),
            ("GET", ["v2", "droplets", id]) => match self.droplet_id(id) {
                Some(id) => ok(
                    200,
                    json!({ "droplet": self.render_droplet(&self.droplets[&id]) }),
                ),
                None => not_found(),
            },
            ("DELETE", ["v2", "droplets", id]) => match self.droplet_id(id) {
                Some(id) => {
                    self.droplets.remove(&id);
                    for firewall in &mut self.firewalls {
                        firewall.droplet_ids.retain(|existing| *existing != id);
                    }
                    Handled {
                        status: 204,
                        body: None,
                        content_type_on_empty: true,
                    }
                }
                None => not_found(),
            },
            ("POST", ["v2", "droplets", id, "actions"]) => match self.droplet_id(id) {
                Some(id) => self.droplet_action(id, body),
                None => not_found(),
            },
            ("GET", ["v2", "actions", id]) => {
                match id.parse::<i64>().ok().and_then(|id| self.actions.get(&id)) {
                    Some(action) => ok(200, json!({ "action": self.render_action(action) })),
                    None => not_found(),
                }
            }
            ("GET", ["v2", "account", "keys"]) => {
                let keys = self.keys.values().map(Self::render_key).collect();
                self.page("ssh_keys", keys, "/v2/account/keys", query)
            }
            ("POST", ["v2", "account", "keys"]) => self.create_key(body),
            ("GET", ["v2", "account", "keys", identifier]) => match self.key_id(identifier) {
                Some(id) => ok(200, json!({ "ssh_key": Self::render_key(&self.keys[&id]) })),
                None => not_found(),
            },
            // Outside the contract subset (DigitalOcean's rename endpoint); stackctl uses
            // it to rename an adopted key in place.
            ("PUT", ["v2", "account", "keys", identifier]) => match (
                self.key_id(identifier),
                body.get("name").and_then(Json::as_str),
            ) {
                (Some(id), Some(name)) if !name.is_empty() => match self.keys.get_mut(&id) {
                    Some(key) => {
                        key.name = name.to_string();
                        ok(200, json!({ "ssh_key": Self::render_key(key) }))
                    }
                    None => not_found(),
                },
                (Some(_), _) => unprocessable("name is required"),
                (None, _) => not_found(),
            },
            ("DELETE", ["v2", "account", "keys", identifier]) => match self.key_id(identifier) {
                Some(id) => {
                    self.keys.remove(&id);
                    no_content()
                }
                None => not_found(),
            },
            ("GET", ["v2", "firewalls"]) => {
                let firewalls = self.firewalls.iter().map(Self::render_firewall).collect();
                for firewall in &mut self.firewalls {
                    firewall.applied = true;
                }
                self.page("firewalls", firewalls, "/v2/firewalls", query)
            }
            ("POST", ["v2", "firewalls"]) => self.write_firewall(None, body),
            ("GET", ["v2", "firewalls", id]) => match self
                .firewalls
                .iter_mut()
                .find(|firewall| firewall.id == *id)
            {
                Some(firewall) => {
                    let rendered = Self::render_firewall(firewall);
                    firewall.applied = true;
                    ok(200, json!({ "firewall": rendered }))
                }
                None => not_found(),
            },
            ("PUT", ["v2", "firewalls", id]) => self.write_firewall(Some(id), body),
            ("DELETE", ["v2", "firewalls", id]) => {
                let before = self.firewalls.len();
                self.firewalls.retain(|firewall| firewall.id != *id);
                if self.firewalls.len() == before {
                    not_found()
                } else {
                    no_content()
                }
            }
            (method @ ("POST" | "DELETE"), ["v2", "firewalls", id, "droplets"]) => {
                self.firewall_droplets(id, method == "POST", body)
            }
            ("GET", ["v2", "domains"]) => {
                let domains = self.domains.values().map(Self::render_domain).collect();
                self.page("domains", domains, "/v2/domains", query)
            }
            ("POST", ["v2", "domains"]) => self.create_domain(body),
            ("GET", ["v2", "domains", name]) => match self.domains.get(*name) {
                Some(domain) => ok(200, json!({ "domain": Self::render_domain(domain) })),
                None => not_found(),
            },
            ("DELETE", ["v2", "domains", name]) => match self.domains.remove(*name) {
                Some(_) => no_content(),
                None => not_found(),
            },
            ("GET", ["v2", "domains", name, "records"]) => self.list_records(name, query),
            ("POST", ["v2", "domains", name, "records"]) => {
                self.write_record(name, None, body, false)
            }
            ("GET", ["v2", "domains", name, "records", id]) => {
                match self
                    .domains
                    .get(*name)
                    .and_then(|domain| domain.records.get(&id.parse::<i64>().unwrap_or(-1)))
                {
                    Some(record) => ok(200, json!({ "domain_record": record })),
                    None => not_found(),
                }
            }
            ("PUT", ["v2", "domains", name, "records", id]) => {
                self.write_record(name, Some(id), body, false)
            }
            ("PATCH", ["v2", "domains", name, "records", id]) => {
                self.write_record(name, Some(id), body, true)
            }
            ("DELETE", ["v2", "domains", name, "records", id]) => {
                let id = id.parse::<i64>().unwrap_or(-1);
                match self
                    .domains
                    .get_mut(*name)
                    .and_then(|domain| domain.records.remove(&id))
                {
                    Some(_) => no_content(),
                    None => not_found(),
                }
            }
            // Outside the contract subset: DigitalOcean's tags API, the only way to change
            // an existing droplet's tags (stackctl repairs retagging drift with it).
            ("POST", ["v2", "tags"]) => match body.get("name").and_then(Json::as_str) {
                Some(name) if valid_tag(name) => ok(
                    201,
                    json!({"tag": {"name": name, "resources": {"count": 0, "droplets": {"count": 0}}}}),
                ),
                _ => unprocessable(
                    "a tag name of letters, digits, colons, dashes and underscores is required",
                ),
            },
            (method @ ("POST" | "DELETE"), ["v2", "tags", tag, "resources"]) => {
                self.tag_resources(tag, method == "POST", body)
            }
            ("GET", ["v2", "sizes"]) => self.page("sizes", catalog::sizes(), "/v2/sizes", query),
            ("GET", ["v2", "regions"]) => {
                self.page("regions", catalog::regions(), "/v2/regions", query)
            }
            _ => not_found(),
        }
    }

    /// One page of `items`, with `links.pages` built from our own base URL and the
    /// request's filters kept in every link.
    pub(super) fn page(
        &self,
        key: &str,
        items: Vec<Json>,
        path: &str,
        query: &[(String, String)],
    ) -> Handled {
        let number = |name: &str| {
            query
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.parse::<usize>())
        };
        let per_page = match number("per_page") {
            None => 20,
            Some(Ok(value)) if (1..=200).contains(&value) => value,
            Some(_) => return error(400, "bad_request", "per_page must be between 1 and 200"),
        };
        let page = match number("page") {
            None => 1,
            Some(Ok(value)) if value >= 1 => value,
            Some(_) => return error(400, "bad_request", "page must be 1 or more"),
        };
        let total = items.len();
        let last = total.div_ceil(per_page).max(1);
        let link = |target: usize| {
            let mut pairs: Vec<(String, String)> = query
                .iter()
                .filter(|(name, _)| name != "page" && name != "per_page")
                .cloned()
                .collect();
            pairs.push(("page".into(), target.to_string()));
            pairs.push(("per_page".into(), per_page.to_string()));
            format!("{}{}?{}", self.base_url, path, encode_query(&pairs))
        };
        let mut pages = serde_json::Map::new();
        if page > 1 {
            pages.insert("first".into(), json!(link(1)));
            pages.insert("prev".into(), json!(link(page - 1)));
        }
        if page < last {
            pages.insert("next".into(), json!(link(page + 1)));
            pages.insert("last".into(), json!(link(last)));
        }
        let slice: Vec<Json> = items
            .into_iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .collect();
        let mut body = serde_json::Map::new();
        body.insert(key.into(), Json::Array(slice));
        body.insert("links".into(), json!({ "pages": pages }));
        body.insert("meta".into(), json!({ "total": total }));
        ok(200, Json::Object(body))
    }
}

/// `name=value&…`, form-encoded as DigitalOcean's own pagination links are.
fn encode_query(pairs: &[(String, String)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}
