//! What the emulator can be told at start: [`EmulatorConfig`], the [`Faults`] to inject,
//! and how both are read from the binary's flags and `STACKCTL_DO_EMULATOR_*` variables.
//! A flag that does not parse is a [`ConfigError`] naming it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything the emulator can be told at start.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Must be a loopback address; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The only bearer token accepted.
    pub token: String,
    /// The public IPv4 address every droplet gets when it becomes active, unless
    /// `public_ipv4_by_name` names it.
    pub public_ipv4: String,
    /// Public IPv4 addresses by droplet name: droplets played by hosts of their own (a
    /// network namespace each, `stackctl_host::testing::DropletHost`), so each of several
    /// droplets is reached at its own address.
    pub public_ipv4_by_name: BTreeMap<String, String>,
    /// How long a droplet stays `new` before its create action completes.
    pub activation_delay: Duration,
    /// How long power, resize and other droplet actions take.
    pub action_delay: Duration,
    /// Requests per hour per token before 429 (DigitalOcean: 5000).
    pub rate_limit_per_hour: u32,
    /// `GET /v2/account/keys` per minute (DigitalOcean: 10).
    pub ssh_key_list_per_minute: u32,
    /// Refuse `resize` with 422 unless the droplet is off.
    pub resize_requires_power_off: bool,
    pub faults: Faults,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: "test-token".to_string(),
            public_ipv4: "127.0.0.1".to_string(),
            public_ipv4_by_name: BTreeMap::new(),
            activation_delay: Duration::from_millis(200),
            action_delay: Duration::from_millis(50),
            rate_limit_per_hour: 5000,
            ssh_key_list_per_minute: 10,
            resize_requires_power_off: true,
            faults: Faults::default(),
        }
    }
}

/// Faults to inject; counters go down as faults fire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    #[serde(default)]
    pub server_errors: u32,
    #[serde(default)]
    pub rate_limited: u32,
    /// The `retry-after` sent with injected 429s, in seconds.
    #[serde(default = "default_retry_after")]
    pub retry_after_seconds: u64,
    #[serde(default)]
    pub drop_after_commit: u32,
    /// The next N matching requests are carried out but answered only after
    /// `slow_response_ms`: long enough, by default, for a client to time out.
    #[serde(default)]
    pub slow_responses: u32,
    #[serde(default = "default_slow_response_ms")]
    pub slow_response_ms: u64,
    /// `"METHOD /path-prefix"` or `"/path-prefix"`: the requests the faults apply to.
    #[serde(default)]
    pub only: Option<String>,
}

fn default_retry_after() -> u64 {
    1
}

fn default_slow_response_ms() -> u64 {
    2000
}

/// A flag or variable the emulator cannot make sense of; the binary prints it and exits.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown flag `{flag}`; known flags: {known}")]
    UnknownFlag { flag: String, known: String },
    #[error("`--{flag}` needs a value")]
    MissingValue { flag: String },
    #[error("`--{flag}` expects a number, got `{text}`")]
    NotANumber { flag: String, text: String },
    #[error("`--listen` expects host:port, got `{text}`")]
    NotAnAddress { text: String },
}

impl EmulatorConfig {
    /// The public IPv4 address the droplet named `name` gets.
    pub fn public_ipv4_for(&self, name: &str) -> &str {
        self.public_ipv4_by_name
            .get(name)
            .unwrap_or(&self.public_ipv4)
    }

    /// Reads `--flag value` pairs, falling back to `STACKCTL_DO_EMULATOR_*` variables.
    /// Returns an error naming the flag when a value does not parse.
    pub fn from_args(
        args: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config = EmulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8089)),
            ..EmulatorConfig::default()
        };
        let mut values: std::collections::BTreeMap<String, String> =
            std::collections::BTreeMap::new();
        for (flag, variable) in FLAGS {
            if let Some(value) = env(variable) {
                values.insert(flag.to_string(), value);
            }
        }
        let mut index = 0;
        while index < args.len() {
            let flag = args[index].trim_start_matches("--").to_string();
            if !FLAGS.iter().any(|(known, _)| *known == flag) {
                return Err(ConfigError::UnknownFlag {
                    flag: args[index].clone(),
                    known: flag_list(),
                });
            }
            if flag == "allow-resize-while-on" {
                values.insert(flag, "true".into());
                index += 1;
                continue;
            }
            let value = args
                .get(index + 1)
                .ok_or_else(|| ConfigError::MissingValue { flag: flag.clone() })?;
            values.insert(flag, value.clone());
            index += 2;
        }
        fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, ConfigError> {
            text.parse().map_err(|_| ConfigError::NotANumber {
                flag: flag.to_string(),
                text: text.to_string(),
            })
        }
        for (flag, value) in &values {
            match flag.as_str() {
                "listen" => {
                    config.listen = value.parse().map_err(|_| ConfigError::NotAnAddress {
                        text: value.clone(),
                    })?
                }
                "token" => config.token = value.clone(),
                "public-ipv4" => config.public_ipv4 = value.clone(),
                "activation-delay-ms" => {
                    config.activation_delay = Duration::from_millis(number(flag, value)?)
                }
                "action-delay-ms" => {
                    config.action_delay = Duration::from_millis(number(flag, value)?)
                }
                "rate-limit" => config.rate_limit_per_hour = number(flag, value)?,
                "ssh-key-list-limit" => config.ssh_key_list_per_minute = number(flag, value)?,
                "fail-500" => config.faults.server_errors = number(flag, value)?,
                "burst-429" => config.faults.rate_limited = number(flag, value)?,
                "retry-after" => config.faults.retry_after_seconds = number(flag, value)?,
                "drop-after-create" => config.faults.drop_after_commit = number(flag, value)?,
                "slow-responses" => config.faults.slow_responses = number(flag, value)?,
                "slow-response-ms" => config.faults.slow_response_ms = number(flag, value)?,
                "fault-only" => config.faults.only = Some(value.clone()),
                "allow-resize-while-on" => config.resize_requires_power_off = value != "true",
                _ => {}
            }
        }
        Ok(config)
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            server_errors: 0,
            rate_limited: 0,
            retry_after_seconds: default_retry_after(),
            drop_after_commit: 0,
            slow_responses: 0,
            slow_response_ms: default_slow_response_ms(),
            only: None,
        }
    }
}

/// Command-line flags and the environment variables that set them too.
const FLAGS: &[(&str, &str)] = &[
    ("listen", "STACKCTL_DO_EMULATOR_LISTEN"),
    ("token", "STACKCTL_DO_EMULATOR_TOKEN"),
    ("public-ipv4", "STACKCTL_DO_EMULATOR_PUBLIC_IPV4"),
    (
        "activation-delay-ms",
        "STACKCTL_DO_EMULATOR_ACTIVATION_DELAY_MS",
    ),
    ("action-delay-ms", "STACKCTL_DO_EMULATOR_ACTION_DELAY_MS"),
    ("rate-limit", "STACKCTL_DO_EMULATOR_RATE_LIMIT"),
    (
        "ssh-key-list-limit",
        "STACKCTL_DO_EMULATOR_SSH_KEY_LIST_LIMIT",
    ),
    ("fail-500", "STACKCTL_DO_EMULATOR_FAIL_500"),
    ("burst-429", "STACKCTL_DO_EMULATOR_BURST_429"),
    ("retry-after", "STACKCTL_DO_EMULATOR_RETRY_AFTER"),
    (
        "drop-after-create",
        "STACKCTL_DO_EMULATOR_DROP_AFTER_CREATE",
    ),
    ("slow-responses", "STACKCTL_DO_EMULATOR_SLOW_RESPONSES"),
    ("slow-response-ms", "STACKCTL_DO_EMULATOR_SLOW_RESPONSE_MS"),
    ("fault-only", "STACKCTL_DO_EMULATOR_FAULT_ONLY"),
    (
        "allow-resize-while-on",
        "STACKCTL_DO_EMULATOR_ALLOW_RESIZE_WHILE_ON",
    ),
];

fn flag_list() -> String {
    FLAGS
        .iter()
        .map(|(flag, _)| format!("--{flag}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_for(args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        EmulatorConfig::from_args(&args, &|_| None)
            .expect_err("the flags are wrong")
            .to_string()
    }

    #[test]
    fn a_droplet_named_in_public_ipv4_by_name_gets_its_own_address_the_others_the_default() {
        let config = EmulatorConfig {
            public_ipv4: "127.0.0.1".to_string(),
            public_ipv4_by_name: [("web-1".to_string(), "10.210.7.2".to_string())].into(),
            ..EmulatorConfig::default()
        };
        assert_eq!(config.public_ipv4_for("web-1"), "10.210.7.2");
        assert_eq!(config.public_ipv4_for("web-2"), "127.0.0.1");
    }

    #[test]
    fn each_error_names_the_flag_in_the_words_the_binary_prints() {
        assert!(error_for(&["--bogus"])
            .starts_with("unknown flag `--bogus`; known flags: --listen, --token, "));
        assert_eq!(error_for(&["--token"]), "`--token` needs a value");
        assert_eq!(
            error_for(&["--fail-500", "many"]),
            "`--fail-500` expects a number, got `many`"
        );
        assert_eq!(
            error_for(&["--listen", "here"]),
            "`--listen` expects host:port, got `here`"
        );
    }
}
