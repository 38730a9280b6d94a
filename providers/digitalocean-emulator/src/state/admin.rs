//! The admin endpoints under `/_emulator/`: state, faults, exchanges, reset, and the
//! out-of-band droplet changes that make drift.

use serde_json::{json, Value as Json};

use super::fields::string_list;
use super::handled::{error, not_found, ok, Handled};
use super::State;
use crate::config::Faults;

impl State {
    pub(super) fn handle_admin(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Json>,
    ) -> Handled {
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
}
