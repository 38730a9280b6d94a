//! Which Engine API version to speak: the highest that both stackctl and the daemon
//! support, asked of the daemon once per client.
//!
//! A daemon answers an unversioned `GET /version` with its newest (`ApiVersion`) and
//! oldest (`MinAPIVersion`) API version, and refuses any versioned path below the oldest
//! ("client version 1.41 is too old", Docker Engine 25 and later raised the minimum; 29
//! accepts 1.44 and newer). So a client pinned to one version breaks on a current droplet.
//! stackctl builds its requests against 1.41 (Docker 20.10) and uses nothing that later
//! versions removed or changed, so it speaks any version from [`OLDEST`] to [`NEWEST`]:
//! the highest the daemon accepts.

use serde_json::Value as Json;

/// The oldest Engine API stackctl speaks: Docker 20.10.
pub const OLDEST: ApiVersion = ApiVersion {
    major: 1,
    minor: 41,
};
/// The newest Engine API stackctl knows to be compatible with its requests: Docker 29.
pub const NEWEST: ApiVersion = ApiVersion {
    major: 1,
    minor: 52,
};

/// An Engine API version, `1.41`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    /// `1.44` → 1.44; anything else is `None`.
    pub fn parse(text: &str) -> Option<ApiVersion> {
        let (major, minor) = text.trim().split_once('.')?;
        Some(ApiVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}.{}", self.major, self.minor)
    }
}

/// Why stackctl and a daemon have no API version in common.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("the Docker daemon (Docker {engine}) speaks Engine API {newest} at most; stackctl needs {OLDEST} or newer (Docker 20.10 or later)")]
    DaemonTooOld { engine: String, newest: ApiVersion },
    #[error("the Docker daemon (Docker {engine}) accepts Engine API {oldest} and newer only; this stackctl speaks {NEWEST} at most: upgrade stackctl")]
    DaemonTooNew { engine: String, oldest: ApiVersion },
    #[error("the Docker daemon's answer to GET /version names no API version: {0}")]
    Unreadable(String),
}

/// The version to speak with a daemon whose `/version` answer is `answer`.
pub fn negotiate(answer: &Json) -> Result<ApiVersion, VersionError> {
    let engine = answer["Version"].as_str().unwrap_or("unknown").to_string();
    let newest = answer["ApiVersion"]
        .as_str()
        .and_then(ApiVersion::parse)
        .ok_or_else(|| VersionError::Unreadable(answer.to_string()))?;
    // Daemons before API 1.25 did not say; they accept what they speak.
    let oldest = answer["MinAPIVersion"]
        .as_str()
        .and_then(ApiVersion::parse)
        .unwrap_or(newest);
    if newest < OLDEST {
        return Err(VersionError::DaemonTooOld { engine, newest });
    }
    if oldest > NEWEST {
        return Err(VersionError::DaemonTooNew { engine, oldest });
    }
    Ok(newest.min(NEWEST))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn version(text: &str) -> ApiVersion {
        ApiVersion::parse(text).unwrap()
    }

    #[test]
    fn the_highest_version_both_sides_speak_is_chosen() {
        let cases = [
            // Docker 20.10 (this machine): its own version.
            (
                json!({"Version": "20.10.24", "ApiVersion": "1.41", "MinAPIVersion": "1.12"}),
                "1.41",
            ),
            // Docker 29: refuses 1.41, speaks up to 1.52.
            (
                json!({"Version": "29.0.0", "ApiVersion": "1.52", "MinAPIVersion": "1.44"}),
                "1.52",
            ),
            // A daemon newer than stackctl knows: stackctl's newest, which it still accepts.
            (
                json!({"Version": "31.0.0", "ApiVersion": "1.55", "MinAPIVersion": "1.44"}),
                "1.52",
            ),
            // Docker 24: between the two.
            (
                json!({"Version": "24.0.7", "ApiVersion": "1.43", "MinAPIVersion": "1.12"}),
                "1.43",
            ),
        ];
        for (answer, expected) in cases {
            assert_eq!(negotiate(&answer), Ok(version(expected)), "{answer}");
        }
    }

    #[test]
    fn a_daemon_with_no_version_in_common_is_refused_with_the_reason() {
        let too_old = json!({"Version": "19.03.15", "ApiVersion": "1.40", "MinAPIVersion": "1.12"});
        let error = negotiate(&too_old).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the Docker daemon (Docker 19.03.15) speaks Engine API 1.40 at most; stackctl needs 1.41 or newer (Docker 20.10 or later)"
        );
        let too_new = json!({"Version": "40.0.0", "ApiVersion": "1.70", "MinAPIVersion": "1.60"});
        let error = negotiate(&too_new).unwrap_err();
        assert!(error.to_string().contains("upgrade stackctl"), "{error}");
        assert!(matches!(
            negotiate(&json!({"message": "page not found"})),
            Err(VersionError::Unreadable(_))
        ));
    }

    #[test]
    fn versions_compare_as_numbers_not_text() {
        assert!(version("1.9") < version("1.41"));
        assert!(version("1.100") > version("1.52"));
        assert_eq!(version("1.41").to_string(), "1.41");
        assert_eq!(ApiVersion::parse("latest"), None);
    }
}
