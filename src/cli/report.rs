//! One error type for the CLI, mapped to words and an exit code in one place:
//! `error:`, `caused by:`, `hint:` lines, readable without colour.

use std::process::ExitCode;
use std::sync::Mutex;

/// The secret values of the loaded stack: every message printed at the CLI edge is
/// redacted with them (an error can quote a container's log or an API body).
static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub fn remember_secrets(values: Vec<String>) {
    if let Ok(mut secrets) = SECRETS.lock() {
        *secrets = values;
    }
}

/// `text` with every remembered secret replaced by `[redacted]`.
pub fn redacted(text: &str) -> String {
    let secrets = SECRETS
        .lock()
        .map(|secrets| secrets.clone())
        .unwrap_or_default();
    crate::apply::redact::redact(text, &secrets)
}

use stackctl_provider::ProviderError;

use crate::config::{diagnostic, ConfigErrors};
use crate::session::SessionError;
use crate::state::{RollbackTargetError, StateError};

/// How a command ended, when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 0: success, or no changes.
    Success,
    /// 2: changes present (`plan --detailed-exitcode`, `drift` with drift).
    Changes,
    /// 3: partial: remote steps skipped because the target could not be reached.
    Partial,
    /// 130: interrupted (Ctrl-C or SIGTERM) — what completed is recorded, locks released.
    Interrupted,
    /// The exit code of a command run in a container (`stackctl exec`), passed through.
    Exited(u8),
}

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Changes => ExitCode::from(2),
            Outcome::Partial => ExitCode::from(3),
            Outcome::Interrupted => ExitCode::from(130),
            Outcome::Exited(code) => ExitCode::from(code),
        }
    }
}

#[derive(Debug)]
pub enum CliError {
    /// stack.toml problems: rendered as snippets.
    Config(ConfigErrors),
    Message {
        message: String,
        causes: Vec<String>,
        hints: Vec<String>,
    },
}

impl CliError {
    pub fn new(message: impl Into<String>) -> Self {
        CliError::Message {
            message: message.into(),
            causes: Vec::new(),
            hints: Vec::new(),
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        if let CliError::Message { hints, .. } = &mut self {
            hints.push(hint.into());
        }
        self
    }

    pub fn cause(mut self, cause: impl Into<String>) -> Self {
        if let CliError::Message { causes, .. } = &mut self {
            causes.push(cause.into());
        }
        self
    }

    /// The text printed on stderr.
    pub fn render(&self, color: bool) -> String {
        match self {
            CliError::Config(errors) => {
                let mut text = diagnostic::render(&errors.diagnostics, &errors.sources, color);
                if errors
                    .diagnostics
                    .iter()
                    .all(|diagnostic| diagnostic.location.is_none())
                {
                    return text;
                }
                let count = errors
                    .diagnostics
                    .iter()
                    .filter(|diagnostic| diagnostic.is_error())
                    .count();
                text.push_str(&format!(
                    "error: {} problem{} in the stack file; nothing was changed\n",
                    count,
                    if count == 1 { "" } else { "s" }
                ));
                text
            }
            CliError::Message {
                message,
                causes,
                hints,
            } => {
                let mut text = format!("error: {message}\n");
                for cause in causes {
                    text.push_str(&format!("caused by: {cause}\n"));
                }
                for hint in hints {
                    text.push_str(&format!("hint: {hint}\n"));
                }
                text
            }
        }
    }
}

impl From<ConfigErrors> for CliError {
    fn from(errors: ConfigErrors) -> Self {
        CliError::Config(errors)
    }
}

impl From<StateError> for CliError {
    fn from(error: StateError) -> Self {
        let message = error.to_string();
        match error {
            StateError::Locked { .. } => CliError::new(message)
                .hint("wait for that run to finish: the lock is released when its process ends, so a run that is gone never keeps it"),
            StateError::JournalMismatch { .. } => CliError::new(message)
                .hint("the journal belongs to an older state; move it aside after checking it, then run `stackctl plan`"),
            StateError::NewerFormat { .. } => CliError::new(message).hint("upgrade stackctl"),
            StateError::Corrupt { path, .. } => CliError::new(message)
                .hint(format!("the previous version is kept as `{path}.backup`; compare them before restoring")),
            StateError::Io { .. } => CliError::new(message),
        }
    }
}

impl From<SessionError> for CliError {
    fn from(error: SessionError) -> Self {
        let message = error.to_string();
        match error {
            SessionError::Config(errors) => CliError::Config(errors),
            SessionError::State(error) => CliError::from(error),
            SessionError::Provider { context, error } => provider_error(&context, error),
            SessionError::UnknownTarget { nearest, .. } => CliError::new(message).hint(
                nearest.unwrap_or_else(|| "`stackctl graph` lists every address".to_string()),
            ),
            SessionError::SavedPlanNarrowed => CliError::new(message)
                .hint("make the narrowed plan with `stackctl plan --target ADDR --out FILE`"),
            SessionError::SavedPlanStale { .. } => CliError::new(message)
                .hint("make a new plan with `stackctl plan --out FILE`, review it, and apply that"),
            SessionError::DataLoss { .. } => CliError::new(message).hint(
                "nothing was changed; pass `--allow-data-loss` if that is really what you want",
            ),
            SessionError::LiveUnreadable { reasons } => CliError::new(message)
                .cause(reasons.join("; "))
                .hint("check credentials and that the target is reachable"),
            SessionError::ForeignLineage { host_lineage, .. } => CliError::new(message)
                .cause("two states changing one stack would undo each other's work; nothing was changed")
                .hint(format!("use the state of lineage {host_lineage} (its `--state-dir`); if that state is lost, start from an empty state (a fresh `--state-dir`): it adopts what runs with one apply, or take single resources over with `stackctl import`")),
            SessionError::NotInStack(_) => CliError::new(message).hint(
                "import only what stack.toml describes; `stackctl graph` lists the addresses",
            ),
            SessionError::RollbackTarget(RollbackTargetError::Empty) => CliError::new(message)
                .hint("each successful `stackctl apply` is recorded; a rollback goes back to an earlier one"),
            SessionError::RollbackTarget(_) => CliError::new(message)
                .hint("`stackctl rollback --list` shows the recorded applies"),
            SessionError::RollbackImagesGone { .. } => CliError::new(message)
                .cause("nothing was changed; `[stack] keep_images` says how many applies keep their images")
                .hint("roll back to a newer entry (`stackctl rollback --list`), or check out that version's commit and run `stackctl apply`, which builds it again"),
            SessionError::RollbackSecretGone { .. } => CliError::new(message)
                .hint("put the secret back in stack.toml and the environment, or check out that version's commit and run `stackctl apply`"),
            SessionError::Backup { hint, .. } => CliError::new(message).hint(hint),
            SessionError::RunFolder { .. }
            | SessionError::Verify(_)
            | SessionError::NoProvider(_)
            | SessionError::VanishedFromState(_)
            | SessionError::Host(_) => CliError::new(message),
        }
    }
}

/// A provider's error, said in the words of what was being done (`context`).
pub fn provider_error(context: &str, error: ProviderError) -> CliError {
    match error {
        ProviderError::Credentials { message, hint } => CliError::new(message).hint(hint),
        ProviderError::Unreachable { target, cause } => {
            CliError::new(format!("{context}: cannot reach {target}")).cause(cause)
        }
        ProviderError::ConnectionLost { .. } => CliError::new(format!("{context}: {error}")),
        ProviderError::Failed {
            message,
            detail,
            hint,
        } => {
            let mut error = CliError::new(format!("{context}: {message}"));
            if let Some(detail) = detail {
                error = error.cause(detail);
            }
            if let Some(hint) = hint {
                error = error.hint(hint);
            }
            error
        }
    }
}
