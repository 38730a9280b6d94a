//! The path of every request: authentication, the admin endpoints, the rate limit,
//! injected faults, routing, then the common headers, the exchange record, and the
//! dropped or delayed answers that fault injection asks for.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value as Json;

use super::handled::error;
use super::{Exchange, Reply, State, MAX_EXCHANGES};

impl State {
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
