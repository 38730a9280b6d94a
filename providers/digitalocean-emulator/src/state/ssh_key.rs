//! SSH keys of the account: upload (refusing a key already there, by fingerprint),
//! lookup by id or fingerprint, and rendering.

use serde_json::{json, Value as Json};

use super::handled::{ok, unprocessable, Handled};
use super::State;
use crate::fingerprint::ssh_fingerprint;

pub(super) struct SshKey {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) public_key: String,
    pub(super) fingerprint: String,
}

impl State {
    pub(super) fn render_key(key: &SshKey) -> Json {
        json!({"id": key.id, "fingerprint": key.fingerprint, "public_key": key.public_key, "name": key.name})
    }

    pub(super) fn key_id(&self, identifier: &str) -> Option<i64> {
        match identifier.parse::<i64>() {
            Ok(id) => self.keys.contains_key(&id).then_some(id),
            Err(_) => self
                .keys
                .values()
                .find(|key| key.fingerprint == identifier)
                .map(|key| key.id),
        }
    }

    pub(super) fn create_key(&mut self, body: &Json) -> Handled {
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
}
