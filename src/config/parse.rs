//! The small value languages inside stack.toml strings: volume mounts, memory sizes,
//! file modes and durations. Validation and lowering both read these strings, so each
//! is parsed here once: what validation accepts is exactly what lowering understands.

use super::types::{DnsRecordConfig, FileConfig, HealthConfig, ServiceConfig};

/// One entry of a service's `volumes`: `source:/target[:ro|:rw]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

impl Mount {
    /// `source:/target[:ro]`; `None` when the text has another shape or the target is
    /// not an absolute path.
    pub fn parse(text: &str) -> Option<Mount> {
        let parts: Vec<&str> = text.split(':').collect();
        let (source, target, read_only) = match parts.as_slice() {
            [source, target] => (*source, *target, false),
            [source, target, "ro"] => (*source, *target, true),
            [source, target, "rw"] => (*source, *target, false),
            _ => return None,
        };
        if source.is_empty() || !target.starts_with('/') {
            return None;
        }
        Some(Mount {
            source: source.to_string(),
            target: target.to_string(),
            read_only,
        })
    }

    /// A source that is a path (`/`, `.` or `~`) mounts a host directory; any other
    /// source names a Docker volume.
    pub fn is_bind(&self) -> bool {
        self.source.starts_with('/') || self.is_relative_bind()
    }

    /// A bind source relative to the checkout (`./x`, `~/x`), which means nothing on
    /// the host.
    pub fn is_relative_bind(&self) -> bool {
        self.source.starts_with('.') || self.source.starts_with('~')
    }
}

/// `512m` → bytes (`k`, `m`, `g`, an optional `b`, any case); zero and negatives are refused.
pub fn memory_bytes(text: &str) -> Option<i64> {
    let text = text.trim().to_ascii_lowercase();
    let text = text.trim_end_matches('b');
    let (digits, multiplier) = match text.chars().last()? {
        'k' => (&text[..text.len() - 1], 1024),
        'm' => (&text[..text.len() - 1], 1024 * 1024),
        'g' => (&text[..text.len() - 1], 1024 * 1024 * 1024),
        _ => (text, 1),
    };
    digits
        .parse::<i64>()
        .ok()
        .filter(|number| *number > 0)
        .map(|number| number * multiplier)
}

/// `"0640"` (or `"0o640"`) → 0o640; at most `0o7777`.
pub fn file_mode(text: &str) -> Option<i64> {
    i64::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|mode| (0..=0o7777).contains(mode))
}

/// `5s`, `1m 30s` → whole seconds.
pub fn duration_seconds(text: &str) -> Option<i64> {
    humantime::parse_duration(text)
        .ok()
        .map(|duration| duration.as_secs() as i64)
}

/// `500ms`, `2s` → milliseconds.
pub fn duration_milliseconds(text: &str) -> Option<i64> {
    humantime::parse_duration(text)
        .ok()
        .and_then(|duration| i64::try_from(duration.as_millis()).ok())
}

impl ServiceConfig {
    /// Whole seconds (Docker's unit, rounded up) the container may take to exit after
    /// SIGTERM, when `stop_grace_period` is set and understood (unset: Docker's 10 s).
    pub fn stop_grace_seconds(&self) -> Option<i64> {
        self.stop_grace_period
            .as_deref()
            .and_then(duration_milliseconds)
            .map(|milliseconds| (milliseconds + 999) / 1000)
    }

    /// The minimum drain of a replaced routed container in milliseconds, when set.
    pub fn drain_milliseconds(&self) -> Option<i64> {
        self.drain.as_deref().and_then(duration_milliseconds)
    }

    /// The networks the service joins: its own list, or `backend`.
    pub fn network_names(&self) -> Vec<String> {
        self.networks
            .clone()
            .unwrap_or_else(|| vec!["backend".to_string()])
    }

    /// The memory limit in bytes, when it is set and understood.
    pub fn memory_bytes(&self) -> Option<i64> {
        self.memory.as_deref().and_then(memory_bytes)
    }
}

impl FileConfig {
    /// The permissions as a number: the `mode` written, or 0600 for a file holding a
    /// secret (no other user of the host may read it) and 0644 for any other.
    pub fn mode_bits(&self, holds_secret: bool) -> i64 {
        let default = if holds_secret { 0o600 } else { 0o644 };
        self.mode.as_deref().and_then(file_mode).unwrap_or(default)
    }
}

impl HealthConfig {
    /// Seconds between checks (default 5).
    pub fn interval_seconds(&self) -> i64 {
        seconds_or(&self.interval, 5)
    }

    /// Seconds one check may take (default 3).
    pub fn timeout_seconds(&self) -> i64 {
        seconds_or(&self.timeout, 3)
    }

    /// Seconds of grace after the container starts (default 0).
    pub fn start_period_seconds(&self) -> i64 {
        seconds_or(&self.start_period, 0)
    }
}

fn seconds_or(text: &Option<String>, default: i64) -> i64 {
    text.as_deref()
        .and_then(duration_seconds)
        .unwrap_or(default)
}

impl DnsRecordConfig {
    /// The name part of the record's address: `@` is `apex`, dots become dashes
    /// (`www.eu` → `www-eu`). Two records may share it; lowering then adds the type.
    pub fn address_base(&self) -> String {
        if self.name == "@" {
            "apex".to_string()
        } else {
            self.name.replace('.', "-")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts() {
        let cases = [
            (
                "pgdata:/var/lib/postgresql/data",
                Some(("pgdata", "/var/lib/postgresql/data", false, false)),
            ),
            (
                "/srv/files:/files:ro",
                Some(("/srv/files", "/files", true, true)),
            ),
            ("./conf:/conf:rw", Some(("./conf", "/conf", false, true))),
            ("~/x:/x", Some(("~/x", "/x", false, true))),
            ("data:relative", None),
            (":/x", None),
            ("a:/b:rx", None),
            ("a", None),
        ];
        for (text, expected) in cases {
            let parsed = Mount::parse(text).map(|mount| {
                (
                    mount.source.clone(),
                    mount.target.clone(),
                    mount.read_only,
                    mount.is_bind(),
                )
            });
            let expected = expected.map(|(source, target, read_only, bind)| {
                (source.to_string(), target.to_string(), read_only, bind)
            });
            assert_eq!(parsed, expected, "{text}");
        }
    }

    #[test]
    fn sizes_modes_and_durations() {
        assert_eq!(memory_bytes("512m"), Some(512 * 1024 * 1024));
        assert_eq!(memory_bytes("1G"), Some(1024 * 1024 * 1024));
        assert_eq!(memory_bytes("64kb"), Some(64 * 1024));
        assert_eq!(memory_bytes("100"), Some(100));
        assert_eq!(memory_bytes("0m"), None);
        assert_eq!(memory_bytes("lots"), None);
        assert_eq!(file_mode("0640"), Some(0o640));
        assert_eq!(file_mode("0o600"), Some(0o600));
        assert_eq!(file_mode("0999"), None);
        assert_eq!(file_mode("17777"), None);
        assert_eq!(duration_seconds("1m 30s"), Some(90));
        assert_eq!(duration_seconds("soon"), None);
        // Compose's duration syntax, with or without spaces.
        assert_eq!(duration_milliseconds("1m30s"), Some(90_000));
        assert_eq!(duration_milliseconds("500ms"), Some(500));
        assert_eq!(duration_milliseconds("10s"), Some(10_000));
        assert_eq!(duration_milliseconds("soon"), None);
    }
}
