//! Droplets and their actions: creation (`new` until the create action completes),
//! power, resize and the other actions that lock a droplet while they run, listing with
//! filters, tagging, and the out-of-band changes tests use to make drift.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use super::fields::{string_list, valid_hostname, valid_tag};
use super::handled::{no_content, not_found, ok, unprocessable, Handled};
use super::timestamp::now_text;
use super::State;
use crate::catalog;

pub(super) struct Droplet {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) size_slug: String,
    pub(super) region: String,
    pub(super) image: Json,
    pub(super) tags: Vec<String>,
    pub(super) features: Vec<String>,
    pub(super) status: String,
    pub(super) created_at: String,
    /// Set once the create action completes.
    pub(super) networked: bool,
    pub(super) private_octet: i64,
}

#[derive(Clone)]
pub(super) enum Effect {
    Create,
    PowerOff,
    PowerOn,
    Resize(String),
    Rebuild(Json),
    Rename(String),
    EnableFeature(&'static str),
    DisableFeature(&'static str),
    Nothing,
}

pub(super) struct Action {
    pub(super) id: i64,
    pub(super) kind: String,
    pub(super) droplet_id: i64,
    pub(super) region: String,
    pub(super) started: Instant,
    pub(super) started_at: String,
    pub(super) duration: Duration,
    pub(super) status: &'static str,
    pub(super) completed_at: Option<String>,
    pub(super) effect: Effect,
}

impl State {
    pub(super) fn droplet_locked(&self, droplet_id: i64) -> bool {
        self.actions
            .values()
            .any(|action| action.droplet_id == droplet_id && action.status == "in-progress")
    }

    pub(super) fn render_droplet(&self, droplet: &Droplet) -> Json {
        let size = catalog::size(&droplet.size_slug).unwrap_or(Json::Null);
        let region = catalog::region(&droplet.region).unwrap_or(Json::Null);
        let (v4, v6) = if droplet.networked {
            let public_ipv4 = self.config.public_ipv4_for(&droplet.name);
            let mut v4 = vec![
                json!({"ip_address": public_ipv4, "netmask": "255.255.240.0", "gateway": "127.0.0.254", "type": "public"}),
                json!({"ip_address": format!("10.110.0.{}", droplet.private_octet), "netmask": "255.255.240.0", "gateway": "nil", "type": "private"}),
            ];
            if public_ipv4.parse::<Ipv4Addr>().is_err() {
                v4.remove(0);
            }
            let v6 = if droplet.features.iter().any(|feature| feature == "ipv6") {
                vec![
                    json!({"ip_address": format!("2001:db8::{:x}", droplet.id), "netmask": 64, "gateway": "2001:db8::1", "type": "public"}),
                ]
            } else {
                vec![]
            };
            (v4, v6)
        } else {
            (vec![], vec![])
        };
        json!({
            "id": droplet.id,
            "name": droplet.name,
            "memory": size.get("memory").cloned().unwrap_or(json!(1024)),
            "vcpus": size.get("vcpus").cloned().unwrap_or(json!(1)),
            "disk": size.get("disk").cloned().unwrap_or(json!(25)),
            "disk_info": [{"type": "local", "size": {"amount": size.get("disk").cloned().unwrap_or(json!(25)), "unit": "gib"}}],
            "locked": self.droplet_locked(droplet.id),
            "status": droplet.status,
            "created_at": droplet.created_at,
            "features": droplet.features,
            "backup_ids": [],
            "next_backup_window": null,
            "snapshot_ids": [],
            "image": droplet.image,
            "volume_ids": [],
            "size": size,
            "size_slug": droplet.size_slug,
            "networks": {"v4": v4, "v6": v6},
            "region": region,
            "tags": droplet.tags,
            "vpc_uuid": "5a4981aa-9653-4bd1-bef5-d6bff52042e4",
        })
    }

    pub fn rendered_droplets(&self) -> Vec<Json> {
        self.droplets
            .values()
            .map(|droplet| self.render_droplet(droplet))
            .collect()
    }

    pub(super) fn render_action(&self, action: &Action) -> Json {
        json!({
            "id": action.id,
            "status": action.status,
            "type": action.kind,
            "started_at": action.started_at,
            "completed_at": action.completed_at,
            "resource_id": action.droplet_id,
            "resource_type": "droplet",
            "region": catalog::region(&action.region),
            "region_slug": action.region,
        })
    }

    pub(crate) fn resize_out_of_band(
        &mut self,
        droplet_id: i64,
        size: &str,
    ) -> Result<(), Handled> {
        if catalog::size(size).is_none() {
            return Err(unprocessable(format!("unknown size `{size}`")));
        }
        let droplet = self.droplets.get_mut(&droplet_id).ok_or_else(not_found)?;
        droplet.size_slug = size.to_string();
        Ok(())
    }

    pub fn power_off_out_of_band(&mut self, droplet_id: i64) -> bool {
        self.advance();
        match self.droplets.get_mut(&droplet_id) {
            Some(droplet) => {
                droplet.status = "off".into();
                true
            }
            None => false,
        }
    }

    pub fn retag_out_of_band(&mut self, droplet_id: i64, tags: Vec<String>) -> bool {
        match self.droplets.get_mut(&droplet_id) {
            Some(droplet) => {
                droplet.tags = tags;
                true
            }
            None => false,
        }
    }

    pub(super) fn droplet_id(&self, text: &str) -> Option<i64> {
        text.parse::<i64>()
            .ok()
            .filter(|id| self.droplets.contains_key(id))
    }

    pub(super) fn list_droplets(&self, query: &[(String, String)]) -> Handled {
        let value = |name: &str| {
            query
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let tag = value("tag_name");
        let name = value("name");
        if tag.is_some() && (name.is_some() || value("type").is_some()) {
            return unprocessable("tag_name cannot be combined with name or type");
        }
        if value("type") == Some("gpus") {
            return self.page("droplets", vec![], "/v2/droplets", query);
        }
        let droplets = self
            .droplets
            .values()
            .filter(|droplet| {
                tag.is_none_or(|tag| droplet.tags.iter().any(|existing| existing == tag))
            })
            .filter(|droplet| name.is_none_or(|name| droplet.name.eq_ignore_ascii_case(name)))
            .map(|droplet| self.render_droplet(droplet))
            .collect();
        self.page("droplets", droplets, "/v2/droplets", query)
    }

    pub(super) fn create_droplets(&mut self, body: &Json) -> Handled {
        let names: Vec<String> = match (body.get("name"), body.get("names")) {
            (Some(Json::String(name)), None) => vec![name.clone()],
            (None, Some(Json::Array(names))) if !names.is_empty() && names.len() <= 10 => names
                .iter()
                .filter_map(Json::as_str)
                .map(str::to_string)
                .collect(),
            (Some(_), Some(_)) => return unprocessable("send either name or names, not both"),
            _ => return unprocessable("name is required"),
        };
        if names.iter().any(|name| !valid_hostname(name)) {
            return unprocessable(
                "Name is invalid: only letters, digits, dots and dashes are allowed",
            );
        }
        let Some(size) = body.get("size").and_then(Json::as_str) else {
            return unprocessable("size is required");
        };
        if catalog::size(size).is_none() {
            return unprocessable(format!(
                "You specified an invalid size for Droplet creation: {size}"
            ));
        }
        let Some(image) = body
            .get("image")
            .filter(|image| image.is_string() || image.is_i64())
        else {
            return unprocessable("image is required");
        };
        let Some(region) = catalog::resolve_region(body.get("region").and_then(Json::as_str))
        else {
            return unprocessable("You specified an invalid region for Droplet creation.");
        };
        for key in body
            .get("ssh_keys")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let known = match key {
                Json::Number(number) => number
                    .as_i64()
                    .is_some_and(|id| self.keys.contains_key(&id)),
                Json::String(text) => self.key_id(text).is_some(),
                _ => false,
            };
            if !known {
                return unprocessable(format!("ssh_keys: {key} is not a key of this account"));
            }
        }
        let tags = string_list(body.get("tags"));
        let mut features = vec![
            "droplet_agent".to_string(),
            "private_networking".to_string(),
        ];
        for (flag, feature) in [
            ("monitoring", "monitoring"),
            ("ipv6", "ipv6"),
            ("backups", "backups"),
        ] {
            if body.get(flag).and_then(Json::as_bool) == Some(true) {
                features.push(feature.to_string());
            }
        }
        let created_at = now_text();
        let mut created = Vec::new();
        for name in names {
            let id = self.new_id();
            let action_id = self.new_id();
            let droplet = Droplet {
                id,
                name,
                size_slug: size.to_string(),
                region: region.to_string(),
                image: catalog::image(image, region, &created_at),
                tags: tags.clone(),
                features: features.clone(),
                status: "new".into(),
                created_at: created_at.clone(),
                networked: false,
                private_octet: (id % 250) + 2,
            };
            self.droplets.insert(id, droplet);
            self.actions.insert(
                action_id,
                Action {
                    id: action_id,
                    kind: "create".into(),
                    droplet_id: id,
                    region: region.to_string(),
                    started: Instant::now(),
                    started_at: created_at.clone(),
                    duration: self.config.activation_delay,
                    status: "in-progress",
                    completed_at: None,
                    effect: Effect::Create,
                },
            );
            created.push((id, action_id));
        }
        let links: Vec<Json> = created
            .iter()
            .map(|(_, action_id)| json!({"id": action_id, "rel": "create", "href": format!("{}/v2/actions/{action_id}", self.base_url)}))
            .collect();
        let rendered: Vec<Json> = created
            .iter()
            .map(|(id, _)| self.render_droplet(&self.droplets[id]))
            .collect();
        if body.get("names").is_some() {
            ok(
                202,
                json!({ "droplets": rendered, "links": { "actions": links } }),
            )
        } else {
            ok(
                202,
                json!({ "droplet": rendered[0], "links": { "actions": links } }),
            )
        }
    }

    pub(super) fn droplet_action(&mut self, droplet_id: i64, body: &Json) -> Handled {
        let Some(kind) = body.get("type").and_then(Json::as_str) else {
            return unprocessable("type is required");
        };
        if self.droplet_locked(droplet_id) {
            return unprocessable("Droplet already has a pending event.");
        }
        let droplet = &self.droplets[&droplet_id];
        let effect = match kind {
            "power_off" | "shutdown" => Effect::PowerOff,
            "power_on" | "reboot" | "power_cycle" => Effect::PowerOn,
            "resize" => {
                let Some(size) = body.get("size").and_then(Json::as_str) else {
                    return unprocessable("size is required to resize");
                };
                if catalog::size(size).is_none() {
                    return unprocessable(format!("invalid size `{size}`"));
                }
                if self.config.resize_requires_power_off && droplet.status != "off" {
                    return unprocessable("Droplet must be powered off before resizing.");
                }
                Effect::Resize(size.to_string())
            }
            "rebuild" => match body.get("image") {
                Some(image) if image.is_string() || image.is_i64() => {
                    Effect::Rebuild(catalog::image(image, &droplet.region, &now_text()))
                }
                _ => return unprocessable("image is required to rebuild"),
            },
            "rename" => match body.get("name").and_then(Json::as_str) {
                Some(name) if valid_hostname(name) => Effect::Rename(name.to_string()),
                _ => return unprocessable("a valid name is required to rename"),
            },
            "enable_ipv6" => Effect::EnableFeature("ipv6"),
            "enable_backups" => Effect::EnableFeature("backups"),
            "disable_backups" => Effect::DisableFeature("backups"),
            "password_reset"
            | "restore"
            | "change_kernel"
            | "snapshot"
            | "change_backup_policy" => Effect::Nothing,
            other => return unprocessable(format!("unknown action type `{other}`")),
        };
        let region = droplet.region.clone();
        let id = self.new_id();
        let action = Action {
            id,
            kind: kind.to_string(),
            droplet_id,
            region,
            started: Instant::now(),
            started_at: now_text(),
            duration: self.config.action_delay,
            status: "in-progress",
            completed_at: None,
            effect,
        };
        let rendered = self.render_action(&action);
        self.actions.insert(id, action);
        ok(201, json!({ "action": rendered }))
    }

    /// `{"resources": [{"resource_id": "123", "resource_type": "droplet"}]}`.
    pub(super) fn tag_resources(&mut self, tag: &str, add: bool, body: &Json) -> Handled {
        if !valid_tag(tag) {
            return not_found();
        }
        let Some(resources) = body.get("resources").and_then(Json::as_array) else {
            return unprocessable("resources is required");
        };
        let mut ids = Vec::new();
        for resource in resources {
            let id = match resource.get("resource_id") {
                Some(Json::String(text)) => text.parse::<i64>().ok(),
                Some(Json::Number(number)) => number.as_i64(),
                _ => None,
            };
            match id.filter(|id| self.droplets.contains_key(id)) {
                Some(id)
                    if resource.get("resource_type").and_then(Json::as_str) == Some("droplet") =>
                {
                    ids.push(id)
                }
                _ => return unprocessable(format!("no such droplet resource: {resource}")),
            }
        }
        for id in ids {
            if let Some(droplet) = self.droplets.get_mut(&id) {
                if add && !droplet.tags.iter().any(|existing| existing == tag) {
                    droplet.tags.push(tag.to_string());
                } else if !add {
                    droplet.tags.retain(|existing| existing != tag);
                }
            }
        }
        no_content()
    }
}
