//! Injected faults at the front of the pipeline: which requests they apply to, and the
//! 429s and 500s that answer before anything happens.

use serde_json::{json, Value as Json};

use super::handled::{error, Handled};
use super::State;

impl State {
    pub(super) fn fault_applies(&self, method: &str, path: &str) -> bool {
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
    pub(super) fn injected_fault(&mut self, method: &str, path: &str) -> Option<Handled> {
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
}
