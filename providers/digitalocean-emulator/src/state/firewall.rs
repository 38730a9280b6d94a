//! Cloud firewalls: creation and whole-object replacement with their rule checks,
//! adding and removing droplets, and the `waiting` → `succeeded` status.

use serde_json::{json, Value as Json};

use super::fields::string_list;
use super::handled::{error, no_content, not_found, ok, unprocessable, Handled};
use super::timestamp::now_text;
use super::State;

pub(super) struct Firewall {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) created_at: String,
    /// `waiting` until read once, then `succeeded`.
    pub(super) applied: bool,
    pub(super) inbound_rules: Json,
    pub(super) outbound_rules: Json,
    pub(super) droplet_ids: Vec<i64>,
    pub(super) tags: Vec<String>,
}

impl State {
    pub(super) fn render_firewall(firewall: &Firewall) -> Json {
        json!({
            "id": firewall.id,
            "name": firewall.name,
            "status": if firewall.applied { "succeeded" } else { "waiting" },
            "created_at": firewall.created_at,
            "pending_changes": [],
            "inbound_rules": firewall.inbound_rules,
            "outbound_rules": firewall.outbound_rules,
            "droplet_ids": firewall.droplet_ids,
            "tags": firewall.tags,
        })
    }

    /// Create (`existing_id` = None) or whole-object replacement (`PUT`).
    pub(super) fn write_firewall(&mut self, existing_id: Option<&str>, body: &Json) -> Handled {
        let Some(name) = body.get("name").and_then(Json::as_str) else {
            return error(400, "bad_request", "name is required");
        };
        let name_ok = name
            .chars()
            .next()
            .is_some_and(|first| first.is_ascii_alphanumeric())
            && name.len() >= 2
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !name_ok {
            return error(400, "bad_request", "name must start with a letter or digit and hold only letters, digits, dots and dashes");
        }
        let inbound = body.get("inbound_rules").cloned().unwrap_or(Json::Null);
        let outbound = body.get("outbound_rules").cloned().unwrap_or(Json::Null);
        let rules_given = [&inbound, &outbound]
            .iter()
            .any(|rules| rules.as_array().is_some_and(|rules| !rules.is_empty()));
        if !rules_given {
            return error(
                400,
                "bad_request",
                "at least one inbound or outbound rule is required",
            );
        }
        for (rules, target_key) in [(&inbound, "sources"), (&outbound, "destinations")] {
            for rule in rules.as_array().into_iter().flatten() {
                let protocol_ok = matches!(
                    rule.get("protocol").and_then(Json::as_str),
                    Some("tcp" | "udp" | "icmp")
                );
                let ports_ok = rule.get("ports").is_some_and(Json::is_string)
                    || rule.get("protocol").and_then(Json::as_str) == Some("icmp");
                if !protocol_ok || !ports_ok || !rule.get(target_key).is_some_and(Json::is_object) {
                    return error(
                        400,
                        "bad_request",
                        format!("each rule needs protocol, ports and {target_key}"),
                    );
                }
            }
        }
        let normalize = |rules: &Json| -> Json {
            Json::Array(
                rules
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|rule| {
                        let mut rule = rule.clone();
                        if rule.get("protocol").and_then(Json::as_str) == Some("icmp") {
                            rule["ports"] = json!("0");
                        }
                        rule
                    })
                    .collect(),
            )
        };
        let droplet_ids: Vec<i64> = body
            .get("droplet_ids")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_i64)
            .collect();
        if let Some(missing) = droplet_ids
            .iter()
            .find(|id| !self.droplets.contains_key(id))
        {
            return unprocessable(format!("droplet {missing} does not exist"));
        }
        let tags = string_list(body.get("tags"));
        match existing_id {
            None => {
                let id = uuid_like();
                let firewall = Firewall {
                    id,
                    name: name.to_string(),
                    created_at: now_text(),
                    applied: false,
                    inbound_rules: normalize(&inbound),
                    outbound_rules: normalize(&outbound),
                    droplet_ids,
                    tags,
                };
                let rendered = Self::render_firewall(&firewall);
                self.firewalls.push(firewall);
                ok(202, json!({ "firewall": rendered }))
            }
            Some(id) => match self.firewalls.iter_mut().find(|firewall| firewall.id == id) {
                Some(firewall) => {
                    firewall.name = name.to_string();
                    firewall.inbound_rules = normalize(&inbound);
                    firewall.outbound_rules = normalize(&outbound);
                    firewall.droplet_ids = droplet_ids;
                    firewall.tags = tags;
                    firewall.applied = false;
                    ok(200, json!({ "firewall": Self::render_firewall(firewall) }))
                }
                None => not_found(),
            },
        }
    }

    pub(super) fn firewall_droplets(&mut self, id: &str, add: bool, body: &Json) -> Handled {
        let Some(ids) = body.get("droplet_ids").and_then(Json::as_array) else {
            return error(400, "bad_request", "droplet_ids is required");
        };
        let ids: Vec<i64> = ids.iter().filter_map(Json::as_i64).collect();
        if add {
            if let Some(missing) = ids.iter().find(|id| !self.droplets.contains_key(id)) {
                return unprocessable(format!("droplet {missing} does not exist"));
            }
        }
        let Some(firewall) = self.firewalls.iter_mut().find(|firewall| firewall.id == id) else {
            return not_found();
        };
        if add {
            for droplet_id in ids {
                if !firewall.droplet_ids.contains(&droplet_id) {
                    firewall.droplet_ids.push(droplet_id);
                }
            }
        } else {
            firewall
                .droplet_ids
                .retain(|existing| !ids.contains(existing));
        }
        firewall.applied = false;
        no_content()
    }
}

fn uuid_like() -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..0x1000),
        0x8000 | fastrand::u16(..0x4000),
        fastrand::u64(..0x1_0000_0000_0000)
    )
}
