//! Writes `--json` events to stdout, one line each, as soon as they happen, redacted like
//! every file of a run folder.

use crate::render::events;

pub struct JsonEvents {
    secrets: Vec<String>,
}

impl JsonEvents {
    pub fn new(secrets: Vec<String>) -> Self {
        JsonEvents { secrets }
    }

    /// Writes one event and flushes it: a reader sees it before the next one happens.
    pub fn emit(&self, event: &serde_json::Value) {
        super::print(&crate::apply::redact::redact(
            &events::line(event),
            &self.secrets,
        ));
    }
}
