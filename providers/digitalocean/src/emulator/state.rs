//! The emulator's account: objects, actions, rate-limit windows, faults, and the
//! request handlers that change them. Everything here is synchronous and runs under
//! one lock, so each request sees and leaves a consistent account.

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value as Json};

use super::catalog;
use super::{EmulatorConfig, Faults};
use crate::fingerprint::ssh_fingerprint;

/// At most this many exchanges are kept, so a long-running emulator stays small.
const MAX_EXCHANGES: usize = 20_000;

/// One API request and what the emulator did with it.
#[derive(Clone, Debug, Serialize)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The request body as JSON; `None` when empty, `Some(String)` when not JSON.
    pub request_body: Option<Json>,
    /// `None` when the connection was dropped instead of answered.
    pub status: Option<u16>,
    pub response_headers: BTreeMap<String, String>,
    pub response_body: Option<Json>,
}

pub enum Reply {
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Option<Json>,
        /// Hold the answer back this long (fault injection: a timeout after the work).
        delay: Duration,
    },
    /// Close the connection without answering (fault injection).
    Drop,
}

/// What a handler produced, before the common headers are added.
pub(super) struct Handled {
    status: u16,
    body: Option<Json>,
    /// A 204 whose contract declares a `content-type` header.
    content_type_on_empty: bool,
}

fn ok(status: u16, body: Json) -> Handled {
    Handled {
        status,
        body: Some(body),
        content_type_on_empty: false,
    }
}

fn no_content() -> Handled {
    Handled {
        status: 204,
        body: None,
        content_type_on_empty: false,
    }
}

fn error(status: u16, id: &str, message: impl Into<String>) -> Handled {
    Handled {
        status,
        body: Some(json!({ "id": id, "message": message.into(), "request_id": request_id() })),
        content_type_on_empty: false,
    }
}

fn not_found() -> Handled {
    error(
        404,
        "not_found",
        "The resource you were accessing could not be found.",
    )
}

fn unprocessable(message: impl Into<String>) -> Handled {
    error(422, "unprocessable_entity", message)
}

fn request_id() -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..0x1000),
        fastrand::u16(..0x1000),
        fastrand::u64(..0x1_0000_0000_0000)
    )
}

/// ISO 8601 UTC, second precision, as DigitalOcean writes timestamps.
pub fn timestamp(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + if month <= 2 { 1 } else { 0 };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

fn now_text() -> String {
    timestamp(SystemTime::now())
}

fn epoch_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

struct Droplet {
    id: i64,
    name: String,
    size_slug: String,
    region: String,
    image: Json,
    tags: Vec<String>,
    features: Vec<String>,
    status: String,
    created_at: String,
    /// Set once the create action completes.
    networked: bool,
    private_octet: i64,
}

#[derive(Clone)]
enum Effect {
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

struct Action {
    id: i64,
    kind: String,
    droplet_id: i64,
    region: String,
    started: Instant,
    started_at: String,
    duration: Duration,
    status: &'static str,
    completed_at: Option<String>,
    effect: Effect,
}

struct SshKey {
    id: i64,
    name: String,
    public_key: String,
    fingerprint: String,
}

struct Firewall {
    id: String,
    name: String,
    created_at: String,
    /// `waiting` until read once, then `succeeded`.
    applied: bool,
    inbound_rules: Json,
    outbound_rules: Json,
    droplet_ids: Vec<i64>,
    tags: Vec<String>,
}

struct Domain {
    name: String,
    ttl: i64,
    records: BTreeMap<i64, Json>,
}

pub struct State {
    config: EmulatorConfig,
    base_url: String,
    next_id: i64,
    droplets: BTreeMap<i64, Droplet>,
    actions: BTreeMap<i64, Action>,
    keys: BTreeMap<i64, SshKey>,
    firewalls: Vec<Firewall>,
    domains: BTreeMap<String, Domain>,
    /// When each request of the last hour arrived (monotonic, and wall-clock for the header).
    window: VecDeque<(Instant, SystemTime)>,
    key_list_window: VecDeque<Instant>,
    pub faults: Faults,
    pub exchanges: Vec<Exchange>,
}

impl State {
    pub fn new(config: EmulatorConfig, base_url: String) -> Self {
        let faults = config.faults.clone();
        State {
            config,
            base_url,
            next_id: 1000,
            droplets: BTreeMap::new(),
            actions: BTreeMap::new(),
            keys: BTreeMap::new(),
            firewalls: Vec::new(),
            domains: BTreeMap::new(),
            window: VecDeque::new(),
            key_list_window: VecDeque::new(),
            faults,
            exchanges: Vec::new(),
        }
    }

    fn new_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// Completes every action whose time has come and applies its effect.
    pub fn advance(&mut self) {
        let now = Instant::now();
        let mut finished = Vec::new();
        for action in self.actions.values_mut() {
            if action.status == "in-progress"
                && now.duration_since(action.started) >= action.duration
            {
                action.status = "completed";
                action.completed_at = Some(now_text());
                finished.push((action.droplet_id, action.effect.clone()));
            }
        }
        for (droplet_id, effect) in finished {
            let Some(droplet) = self.droplets.get_mut(&droplet_id) else {
                continue;
            };
            match effect {
                Effect::Create => {
                    droplet.status = "active".into();
                    droplet.networked = true;
                }
                Effect::PowerOff => droplet.status = "off".into(),
                Effect::PowerOn => droplet.status = "active".into(),
                Effect::Resize(size) => droplet.size_slug = size,
                Effect::Rebuild(image) => droplet.image = image,
                Effect::Rename(name) => droplet.name = name,
                Effect::EnableFeature(feature) => {
                    if !droplet.features.iter().any(|existing| existing == feature) {
                        droplet.features.push(feature.to_string());
                    }
                }
                Effect::DisableFeature(feature) => {
                    droplet.features.retain(|existing| existing != feature)
                }
                Effect::Nothing => {}
            }
        }
    }

    fn droplet_locked(&self, droplet_id: i64) -> bool {
        self.actions
            .values()
            .any(|action| action.droplet_id == droplet_id && action.status == "in-progress")
    }

    fn render_droplet(&self, droplet: &Droplet) -> Json {
        let size = catalog::size(&droplet.size_slug).unwrap_or(Json::Null);
        let region = catalog::region(&droplet.region).unwrap_or(Json::Null);
        let (v4, v6) = if droplet.networked {
            let mut v4 = vec![
                json!({"ip_address": self.config.public_ipv4, "netmask": "255.255.240.0", "gateway": "127.0.0.254", "type": "public"}),
                json!({"ip_address": format!("10.110.0.{}", droplet.private_octet), "netmask": "255.255.240.0", "gateway": "nil", "type": "private"}),
            ];
            if self.config.public_ipv4.parse::<Ipv4Addr>().is_err() {
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

    fn render_action(&self, action: &Action) -> Json {
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

    fn render_key(key: &SshKey) -> Json {
        json!({"id": key.id, "fingerprint": key.fingerprint, "public_key": key.public_key, "name": key.name})
    }

    fn render_firewall(firewall: &Firewall) -> Json {
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

    fn render_domain(domain: &Domain) -> Json {
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

    /// The whole account, for `GET /_emulator/state` and tests.
    pub fn snapshot(&mut self) -> Json {
        self.advance();
        json!({
            "droplets": self.rendered_droplets(),
            "actions": self.actions.values().map(|action| self.render_action(action)).collect::<Vec<_>>(),
            "ssh_keys": self.keys.values().map(Self::render_key).collect::<Vec<_>>(),
            "firewalls": self.firewalls.iter().map(Self::render_firewall).collect::<Vec<_>>(),
            "domains": self.domains.values().map(|domain| json!({
                "name": domain.name,
                "records": domain.records.values().cloned().collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "faults": self.faults,
            "requests_in_window": self.window.len(),
        })
    }

    pub(super) fn resize_out_of_band(
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

    // ----- the request pipeline -----------------------------------------------------

    pub fn handle(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Reply {
        let request_body: Option<Json> = if body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(
                serde_json::from_slice(body)
                    .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(body).into_owned())),
            )
        };
        let authorized = authorization == Some(format!("Bearer {}", self.config.token).as_str());
        let is_admin = path.starts_with("/_emulator/");

        let handled = if !authorized {
            error(401, "unauthorized", "Unable to authenticate you")
        } else if is_admin {
            self.handle_admin(method, path, request_body.as_ref())
        } else if let Some(rejection) = self.spend_rate_limit(method, path) {
            rejection
        } else if let Some(fault) = self.injected_fault(method, path) {
            fault
        } else {
            self.advance();
            let query_pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect();
            let decoded: Vec<String> = path
                .trim_matches('/')
                .split('/')
                .map(percent_decode)
                .collect();
            let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
            match request_body.as_ref() {
                Some(Json::String(_)) => error(400, "bad_request", "error parsing request body"),
                _ => self.route(method, &segments, &query_pairs, request_body.as_ref()),
            }
        };

        // A mutation that succeeded may be "lost in transit" on request.
        let committed = handled.status < 300 && method != "GET" && !is_admin && authorized;
        if committed && self.faults.drop_after_commit > 0 && self.fault_applies(method, path) {
            self.faults.drop_after_commit -= 1;
            self.record(
                method,
                path,
                query,
                request_body,
                None,
                BTreeMap::new(),
                None,
            );
            return Reply::Drop;
        }

        // A slow answer: the work is done, the client may give up before it hears so.
        let mut delay = Duration::ZERO;
        if authorized
            && !is_admin
            && self.faults.slow_responses > 0
            && self.fault_applies(method, path)
        {
            self.faults.slow_responses -= 1;
            delay = Duration::from_millis(self.faults.slow_response_ms);
        }

        let mut headers = self.rate_limit_headers();
        if handled.status == 429 {
            if let Some(retry_after) = handled
                .body
                .as_ref()
                .and_then(|body| body.get("retry_after"))
                .and_then(Json::as_u64)
            {
                headers.push(("retry-after".into(), retry_after.to_string()));
            }
        }
        let body = handled.body.map(|mut body| {
            // The retry hint travels in a header, not in the contract's error body.
            if let Some(object) = body.as_object_mut() {
                if handled.status == 429 {
                    object.remove("retry_after");
                }
            }
            body
        });
        if body.is_some() || handled.content_type_on_empty {
            headers.push((
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            ));
        }
        if !is_admin {
            let header_map = headers.iter().cloned().collect();
            self.record(
                method,
                path,
                query,
                request_body,
                Some(handled.status),
                header_map,
                body.clone(),
            );
        }
        Reply::Answer {
            status: handled.status,
            headers,
            body,
            delay,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        request_body: Option<Json>,
        status: Option<u16>,
        response_headers: BTreeMap<String, String>,
        response_body: Option<Json>,
    ) {
        if self.exchanges.len() >= MAX_EXCHANGES {
            self.exchanges.remove(0);
        }
        self.exchanges.push(Exchange {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            request_body,
            status,
            response_headers,
            response_body,
        });
    }

    fn fault_applies(&self, method: &str, path: &str) -> bool {
        match self.faults.only.as_deref().map(str::trim) {
            None | Some("") => true,
            Some(filter) => match filter.split_once(' ') {
                Some((wanted_method, prefix)) => {
                    wanted_method.eq_ignore_ascii_case(method) && path.starts_with(prefix.trim())
                }
                None => path.starts_with(filter),
            },
        }
    }

    /// 429s first (a rejection before anything happens), then 500s.
    fn injected_fault(&mut self, method: &str, path: &str) -> Option<Handled> {
        if !self.fault_applies(method, path) {
            return None;
        }
        if self.faults.rate_limited > 0 {
            self.faults.rate_limited -= 1;
            let mut rejection = error(429, "too_many_requests", "API rate limit exceeded.");
            if let Some(Json::Object(body)) = rejection.body.as_mut() {
                body.insert("retry_after".into(), json!(self.faults.retry_after_seconds));
            }
            return Some(rejection);
        }
        if self.faults.server_errors > 0 {
            self.faults.server_errors -= 1;
            return Some(error(500, "server_error", "Unexpected server-side error"));
        }
        None
    }

    /// Counts the request against the hourly budget (and the key-list minute budget).
    fn spend_rate_limit(&mut self, method: &str, path: &str) -> Option<Handled> {
        let now = Instant::now();
        while let Some((oldest, _)) = self.window.front() {
            if now.duration_since(*oldest) >= Duration::from_secs(3600) {
                self.window.pop_front();
            } else {
                break;
            }
        }
        if self.window.len() as u32 >= self.config.rate_limit_per_hour {
            return Some(error(429, "too_many_requests", "API rate limit exceeded."));
        }
        if method == "GET" && path.trim_end_matches('/') == "/v2/account/keys" {
            while let Some(oldest) = self.key_list_window.front() {
                if now.duration_since(*oldest) >= Duration::from_secs(60) {
                    self.key_list_window.pop_front();
                } else {
                    break;
                }
            }
            if self.key_list_window.len() as u32 >= self.config.ssh_key_list_per_minute {
                let wait = self
                    .key_list_window
                    .front()
                    .map(|oldest| {
                        60u64
                            .saturating_sub(now.duration_since(*oldest).as_secs())
                            .max(1)
                    })
                    .unwrap_or(60);
                let mut rejection = error(429, "too_many_requests", "API rate limit exceeded.");
                if let Some(Json::Object(body)) = rejection.body.as_mut() {
                    body.insert("retry_after".into(), json!(wait));
                }
                return Some(rejection);
            }
            self.key_list_window.push_back(now);
        }
        self.window.push_back((now, SystemTime::now()));
        None
    }

    fn rate_limit_headers(&self) -> Vec<(String, String)> {
        let limit = self.config.rate_limit_per_hour;
        let remaining = limit.saturating_sub(self.window.len() as u32);
        let reset = self
            .window
            .front()
            .map(|(_, wall)| epoch_seconds(*wall) + 3600)
            .unwrap_or_else(|| epoch_seconds(SystemTime::now()));
        vec![
            ("ratelimit-limit".into(), limit.to_string()),
            ("ratelimit-remaining".into(), remaining.to_string()),
            ("ratelimit-reset".into(), reset.to_string()),
        ]
    }

    // ----- admin ----------------------------------------------------------------------

    fn handle_admin(&mut self, method: &str, path: &str, body: Option<&Json>) -> Handled {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            ("GET", ["_emulator", "state"]) => ok(200, self.snapshot()),
            ("GET", ["_emulator", "faults"]) => ok(200, json!({ "faults": self.faults })),
            ("POST", ["_emulator", "faults"]) => match body.cloned().map(serde_json::from_value::<Faults>) {
                Some(Ok(faults)) => {
                    self.faults = faults;
                    ok(200, json!({ "faults": self.faults }))
                }
                _ => error(400, "bad_request", "expected {server_errors, rate_limited, retry_after_seconds, drop_after_commit, only}"),
            },
            ("GET", ["_emulator", "exchanges"]) => ok(200, json!({ "exchanges": self.exchanges })),
            ("POST", ["_emulator", "reset"]) => {
                let config = self.config.clone();
                let base_url = self.base_url.clone();
                *self = State::new(config, base_url);
                ok(200, json!({ "reset": true }))
            }
            ("POST", ["_emulator", "droplets", id, operation]) => {
                let Ok(droplet_id) = id.parse::<i64>() else {
                    return not_found();
                };
                let done = match *operation {
                    "resize-out-of-band" => {
                        let size = body.and_then(|body| body.get("size")).and_then(Json::as_str).unwrap_or("");
                        match self.resize_out_of_band(droplet_id, size) {
                            Ok(()) => true,
                            Err(failure) => return failure,
                        }
                    }
                    "power-off-out-of-band" => self.power_off_out_of_band(droplet_id),
                    "retag-out-of-band" => {
                        let tags = string_list(body.and_then(|body| body.get("tags")));
                        self.retag_out_of_band(droplet_id, tags)
                    }
                    _ => return not_found(),
                };
                if !done {
                    return not_found();
                }
                self.advance();
                match self.droplets.get(&droplet_id) {
                    Some(droplet) => ok(200, json!({ "droplet": self.render_droplet(droplet) })),
                    None => not_found(),
                }
            }
            _ => not_found(),
        }
    }

    // ----- the public API -------------------------------------------------------------

    fn route(
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
    fn page(&self, key: &str, items: Vec<Json>, path: &str, query: &[(String, String)]) -> Handled {
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
            format!(
                "{}{}?{}",
                self.base_url,
                path,
                crate::client::encode_query(&pairs)
            )
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

    fn droplet_id(&self, text: &str) -> Option<i64> {
        text.parse::<i64>()
            .ok()
            .filter(|id| self.droplets.contains_key(id))
    }

    fn key_id(&self, identifier: &str) -> Option<i64> {
        match identifier.parse::<i64>() {
            Ok(id) => self.keys.contains_key(&id).then_some(id),
            Err(_) => self
                .keys
                .values()
                .find(|key| key.fingerprint == identifier)
                .map(|key| key.id),
        }
    }

    fn list_droplets(&self, query: &[(String, String)]) -> Handled {
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

    fn create_droplets(&mut self, body: &Json) -> Handled {
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

    fn droplet_action(&mut self, droplet_id: i64, body: &Json) -> Handled {
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
    fn tag_resources(&mut self, tag: &str, add: bool, body: &Json) -> Handled {
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

    fn create_key(&mut self, body: &Json) -> Handled {
        let (Some(name), Some(public_key)) = (
            body.get("name").and_then(Json::as_str),
            body.get("public_key").and_then(Json::as_str),
        ) else {
            return unprocessable("name and public_key are required");
        };
        let Some(fingerprint) = ssh_fingerprint(public_key) else {
            return unprocessable("Key invalid type, we support 'ssh-rsa', 'ssh-dss', 'ecdsa-sha2-nistp' or 'ssh-ed25519'");
        };
        if self.keys.values().any(|key| key.fingerprint == fingerprint) {
            return unprocessable("SSH Key is already in use on your account");
        }
        let id = self.new_id();
        let key = SshKey {
            id,
            name: name.to_string(),
            public_key: public_key.to_string(),
            fingerprint,
        };
        let rendered = Self::render_key(&key);
        self.keys.insert(id, key);
        ok(201, json!({ "ssh_key": rendered }))
    }

    /// Create (`existing_id` = None) or whole-object replacement (`PUT`).
    fn write_firewall(&mut self, existing_id: Option<&str>, body: &Json) -> Handled {
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

    fn firewall_droplets(&mut self, id: &str, add: bool, body: &Json) -> Handled {
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

    fn create_domain(&mut self, body: &Json) -> Handled {
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

    fn list_records(&self, domain_name: &str, query: &[(String, String)]) -> Handled {
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
    fn write_record(
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

fn record_json(id: i64, kind: &str, name: &str, data: &str, ttl: i64) -> Json {
    json!({
        "id": id, "type": kind, "name": name, "data": data,
        "priority": null, "port": null, "ttl": ttl, "weight": null, "flags": null, "tag": null,
    })
}

fn string_list(value: Option<&Json>) -> Vec<String> {
    value
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .map(str::to_string)
        .collect()
}

/// Decodes `%XX` escapes in one path segment (`stackctl%3Ashop` → `stackctl:shop`).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%' && index + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[index + 1..index + 3]).ok())
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn valid_tag(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '-' || c == '_')
}

fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso_8601_utc() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
    }
}
