//! DigitalOcean's request budgets: 5000 an hour per token, 10 SSH-key listings a
//! minute, and the three `ratelimit-*` headers on every answer.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value as Json};

use super::handled::{error, Handled};
use super::timestamp::epoch_seconds;
use super::State;

impl State {
    /// Counts the request against the hourly budget (and the key-list minute budget).
    pub(super) fn spend_rate_limit(&mut self, method: &str, path: &str) -> Option<Handled> {
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

    pub(super) fn rate_limit_headers(&self) -> Vec<(String, String)> {
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
}
