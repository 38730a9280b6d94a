//! Raw arguments + environment → the settled values commands run with. Commands never
//! read clap types or environment variables themselves.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use super::args::{ColorChoice, GlobalArgs};

#[derive(Clone, Debug)]
pub struct Settings {
    pub config_path: PathBuf,
    pub env_file: Option<PathBuf>,
    pub state_directory: PathBuf,
    pub runs_directory: PathBuf,
    /// Colour on stdout.
    pub color: bool,
    /// Colour on stderr.
    pub color_errors: bool,
    pub process_environment: BTreeMap<String, String>,
    pub interactive: bool,
    /// `--lock-timeout`: how long to wait for the state and host locks.
    pub lock_timeout: std::time::Duration,
    /// The ssh config file for a host target: `STACKCTL_SSH_CONFIG`, else `~/.ssh/config`.
    pub ssh_config: Option<PathBuf>,
}

impl Settings {
    pub fn resolve(global: &GlobalArgs) -> Settings {
        let base = global
            .config
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        let wants = |terminal: bool| match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && !no_color,
        };
        Settings {
            config_path: global.config.clone(),
            env_file: global.env_file.clone(),
            state_directory: global
                .state_dir
                .clone()
                .unwrap_or_else(|| base.join("state")),
            runs_directory: global.runs_dir.clone().unwrap_or_else(|| base.join("runs")),
            color: wants(std::io::stdout().is_terminal()),
            color_errors: wants(std::io::stderr().is_terminal()),
            process_environment: std::env::vars().collect(),
            // Prompts go to stderr and answers come from stdin; stdout may be piped to a log.
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
            lock_timeout: global.lock_timeout.unwrap_or_default(),
            ssh_config: std::env::var_os("STACKCTL_SSH_CONFIG")
                .filter(|path| !path.is_empty())
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME")
                        .filter(|home| !home.is_empty())
                        .map(|home| PathBuf::from(home).join(".ssh").join("config"))
                }),
        }
    }
}
