//! The emulator's account: objects, actions, rate-limit windows, faults, and the
//! request handlers that change them. Everything here is synchronous and runs under
//! one lock, so each request sees and leaves a consistent account.
//!
//! One file per kind of object (droplets, SSH keys, firewalls, domains), and one per
//! step of the request pipeline (rate limit, faults, admin endpoints, routing).

mod admin;
mod domain;
mod droplet;
mod faults;
mod fields;
mod firewall;
mod handled;
mod pipeline;
mod rate_limit;
mod routes;
mod ssh_key;
mod timestamp;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::{json, Value as Json};

use crate::config::{EmulatorConfig, Faults};
use domain::Domain;
use droplet::{Action, Droplet, Effect};
use firewall::Firewall;
use ssh_key::SshKey;
use timestamp::now_text;

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
}
