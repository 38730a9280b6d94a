//! Command-line arguments. The doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Plan, apply and watch a small production web stack from one stack.toml.
///
/// `stackctl plan` compares stack.toml with recorded state (state/) and the live
/// droplet, firewall, DNS and Docker host; `stackctl apply` makes it so; `stackctl drift`
/// reports what changed behind your back.
#[derive(Debug, Parser)]
#[command(
    name = "stackctl",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The stack file.
    #[arg(
        short = 'c',
        long = "config",
        global = true,
        default_value = "stack.toml",
        env = "STACKCTL_CONFIG"
    )]
    pub config: PathBuf,
    /// The env file for `${VAR}` (default: `[stack].env_file`, relative to the stack file).
    #[arg(long, global = true)]
    pub env_file: Option<PathBuf>,
    /// Directory of state files (default: `state/` beside the stack file).
    #[arg(long, global = true, env = "STACKCTL_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Directory of run folders (default: `runs/` beside the stack file).
    #[arg(long, global = true, env = "STACKCTL_RUNS_DIR")]
    pub runs_dir: Option<PathBuf>,
    /// When to colour output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Wait this long for the state lock and the host lock held by another run (`30s`,
    /// `5m`), saying who holds them, instead of failing at once.
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_lock_timeout)]
    pub lock_timeout: Option<std::time::Duration>,
    /// More logging (-v info, -vv debug); `RUST_LOG` works too.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check stack.toml: types, references, cycles, `${VAR}`s and policy.
    Validate {
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// Show what apply would do.
    Plan(PlanArgs),
    /// Make the stack match stack.toml (or apply a saved plan exactly).
    Apply(ApplyArgs),
    /// Report what changed on the target since the last apply.
    Drift {
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// Record the live state as the new recorded state, without touching the target.
        #[arg(long)]
        accept: bool,
    },
    /// Remove everything the stack created, in reverse dependency order.
    Destroy {
        /// Do not ask for confirmation.
        #[arg(long, short = 'y', visible_alias = "auto-approve")]
        yes: bool,
        /// Allow deleting volumes and droplets (their data is lost).
        #[arg(long)]
        allow_data_loss: bool,
        #[arg(long, default_value_t = 10)]
        parallelism: usize,
    },
    /// Render a saved plan.
    Show {
        /// A file written by `stackctl plan --out`.
        plan: PathBuf,
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
    },
    /// Run the `[[checks]]` and the implied edge checks against the live stack.
    Verify {
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// Adopt an existing resource into state without changing it.
    Import {
        /// The resource address, e.g. `droplet.web-1`.
        address: String,
        /// The provider's id for it, e.g. a droplet id.
        id: String,
    },
    /// Inspect or repair recorded state.
    #[command(subcommand)]
    State(StateCommand),
    /// Generate the secrets the env file lacks.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Print the resource dependency graph.
    Graph {
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Go back to what an earlier successful apply deployed: a plan like any other,
    /// shown, confirmed and applied with the same swap and health gates.
    Rollback(RollbackArgs),
    /// Show what runs now: each service's container, image, state, health, uptime,
    /// restarts and the routes that reach it.
    Ps {
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// Dump the stack's `[backups.*]` now (every one, or NAME), and prune old dumps.
    Backup(BackupArgs),
    /// List the dumps of every backup (or of NAME): time, size, where they are.
    Backups {
        /// A key of `[backups]`.
        name: Option<String>,
    },
    /// Restore a dump over the live database or volume (asks first; shows what it
    /// replaces and stops what depends on it meanwhile).
    Restore(RestoreArgs),
    /// Show the logs of services, read from their running containers on the target.
    Logs(LogsArgs),
    /// Run a command in a service's running container (`stackctl exec api -- ls /`).
    ///
    /// With a terminal on stdin the command gets one (interactive); otherwise stdin is
    /// piped to it. Its exit code is stackctl's.
    Exec(ExecArgs),
    /// Print the JSON Schema of stack.toml.
    Schema,
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff): `stackctl man > stackctl.1`, or a command's own
    /// page, `stackctl man plan > stackctl-plan.1`.
    Man {
        /// A command (default: the page of stackctl itself).
        command: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// A key of `[backups]` (default: every backup).
    pub name: Option<String>,
    /// List the dumps instead of making one (as `stackctl backups`).
    #[arg(long)]
    pub list: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A key of `[backups]`.
    pub name: String,
    /// The dump: its file name as `stackctl backups` lists it (on the host or in the
    /// backup's local directory), or the path of a dump file on this machine.
    #[arg(long, value_name = "DUMP")]
    pub from: String,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Do not read live state; plan from recorded state alone.
    #[arg(long)]
    pub offline: bool,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Save the plan for `stackctl apply FILE`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Limit the plan to this resource and what it depends on (repeatable).
    #[arg(long = "target", value_name = "ADDRESS")]
    pub targets: Vec<String>,
    /// Replace this resource even though nothing changed (repeatable), e.g. `service.api`.
    #[arg(long = "replace", value_name = "ADDRESS")]
    pub replace: Vec<String>,
    /// Exit 2 when the plan has changes, 0 when it has none.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Stream one JSON event per line on stdout (docs/json-events.md) instead of text.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved by `stackctl plan --out`; applied exactly, or refused if stale.
    pub plan: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y', visible_alias = "auto-approve")]
    pub yes: bool,
    /// Limit the apply to this resource and what it depends on (repeatable).
    #[arg(long = "target", value_name = "ADDRESS")]
    pub targets: Vec<String>,
    /// Replace this resource even though nothing changed (repeatable), e.g. `service.api`.
    #[arg(long = "replace", value_name = "ADDRESS")]
    pub replace: Vec<String>,
    /// At most this many actions at once.
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
    /// Allow deleting volumes and droplets (their data is lost).
    #[arg(long)]
    pub allow_data_loss: bool,
    /// How long a service may take to become healthy, e.g. `90s`.
    #[arg(long, default_value = "120s")]
    pub health_timeout: String,
    /// Accept an SSH host key seen for the first time (it is then pinned in state).
    #[arg(long)]
    pub accept_new_host_key: bool,
    /// Do not run the checks after apply.
    #[arg(long)]
    pub skip_checks: bool,
    /// Stream one JSON event per line on stdout as things happen (docs/json-events.md)
    /// instead of text; progress and prompts stay on stderr.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep showing new lines as they are written (Ctrl-C stops).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only lines written since then: a duration ago (`10m`, `2h`) or a time (`2026-05-02T10:14:03Z`).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only the last N lines of each service.
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,
    /// Services as named in stack.toml; each line is prefixed with its service when
    /// there are several.
    #[arg(required = true, value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The service as named in stack.toml.
    pub service: String,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// List the recorded applies (time, who, what changed) instead of rolling back.
    #[arg(long, conflicts_with_all = ["to", "yes"])]
    pub list: bool,
    /// The history entry to go back to (default: the previous successful apply).
    #[arg(long, value_name = "ID")]
    pub to: Option<u64>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// How long a service may take to become healthy, e.g. `90s`.
    #[arg(long, default_value = "120s")]
    pub health_timeout: String,
    /// Allow deleting volumes and droplets the entry did not have (their data is lost).
    #[arg(long)]
    pub allow_data_loss: bool,
    /// Do not run the checks after the rollback.
    #[arg(long)]
    pub skip_checks: bool,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Fill every secret variable the stack uses and the env file lacks with a strong
    /// random value (`*_TLS_KEY`: a private key; `*_TLS_CERT`: a self-signed certificate
    /// for it). Values are never printed, only the names filled. The env file is written
    /// 0600, its lines and comments kept, and added to `.gitignore` in a git work tree.
    Generate,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List recorded resources.
    List,
    /// Show one recorded resource (secrets as digests only).
    Show { address: String },
    /// Forget a resource without touching it.
    Rm { address: String },
    /// Clear the holder details a gone run left beside the state lock (the lock itself is
    /// the kernel's and ended with that run).
    Unlock {
        /// Clear what a gone run left beside the host lock instead of the state lock (the
        /// host lock itself is released by the kernel when its run's SSH session ends).
        #[arg(long)]
        host: bool,
    },
}

/// The longest `--lock-timeout`: a wait beyond a week is a typo, and a value near what
/// the duration syntax allows (`300000000000y`) would overflow the deadline.
pub const LONGEST_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// `--lock-timeout`: a duration (`30s`, `5m`) of at most [`LONGEST_LOCK_TIMEOUT`].
fn parse_lock_timeout(text: &str) -> Result<std::time::Duration, String> {
    let timeout = humantime::parse_duration(text).map_err(|error| error.to_string())?;
    if timeout > LONGEST_LOCK_TIMEOUT {
        return Err(format!(
            "`{text}` is longer than stackctl waits for a lock (at most {})",
            humantime::format_duration(LONGEST_LOCK_TIMEOUT)
        ));
    }
    Ok(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_timeout_is_a_duration_of_at_most_a_week() {
        assert_eq!(
            parse_lock_timeout("5m"),
            Ok(std::time::Duration::from_secs(300))
        );
        assert_eq!(parse_lock_timeout("7days"), Ok(LONGEST_LOCK_TIMEOUT));
        assert_eq!(
            parse_lock_timeout("300000000000y"),
            Err("`300000000000y` is longer than stackctl waits for a lock (at most 7days)".into())
        );
        assert!(parse_lock_timeout("soon").is_err());
        let parsed = Cli::try_parse_from(["stackctl", "--lock-timeout", "300000000000y", "plan"]);
        let error = parsed.expect_err("a huge timeout is refused").to_string();
        assert!(error.contains("longer than stackctl waits"), "{error}");
    }
}
