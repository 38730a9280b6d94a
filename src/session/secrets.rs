//! `stackctl secrets generate`: fills the secret variables the stack uses and the env
//! file lacks with strong random values (what is generated, and in which format, is
//! decided by [`crate::config::secret_generation`]).
//!
//! This use case runs before a session can open — a session loads the config, which
//! needs every variable — so it is a function of the stack file's path, not a `Session`
//! method. The values never leave this function except into the env file: the result
//! names the variables, never their values. The env file is replaced atomically (a
//! private temporary file beside it, fsync, rename), mode 0600, its existing lines and
//! comments kept; in a git work tree it is added to `.gitignore` unless git already
//! ignores it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::config::secret_generation::{
    alphanumeric, env_line, filled_env_file, names_with_values, plan_generation, SecretFormat,
    RANDOM_LENGTH,
};
use crate::config::{self, ConfigErrors};

/// What generation did, by name only.
#[derive(Clone, Debug, Default)]
pub struct GeneratedSecrets {
    pub env_file: PathBuf,
    /// The variables that received a value, in the order written.
    pub filled: Vec<String>,
    /// Used by the stack, without a value (absent or empty), and not something a program
    /// can invent (a domain, an e-mail address).
    pub left_to_user: Vec<String>,
    /// The `.gitignore` that received the env file's name, if one did.
    pub ignored_in: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("the stack file is not valid")]
    Config(ConfigErrors),
    #[error("the stack names no env file")]
    NoEnvFile,
    #[error("cannot {operation} `{path}`: {cause}")]
    Io {
        operation: &'static str,
        path: String,
        cause: std::io::Error,
    },
    /// The env file does not parse; the message names the line, never a value.
    #[error("`{path}` cannot be read as an env file: {message}")]
    EnvFile { path: String, message: String },
    #[error("cannot generate `{name}`: {message}")]
    Generate { name: String, message: String },
}

/// Generates the missing secrets of the stack at `config_path` into its env file
/// (`env_file` overrides `[stack].env_file`).
pub fn generate_secrets(
    config_path: &Path,
    env_file: Option<&Path>,
    process_environment: &BTreeMap<String, String>,
) -> Result<GeneratedSecrets, SecretsError> {
    let variables = config::stack_variables(config_path, env_file).map_err(SecretsError::Config)?;
    let env_path = variables.env_file.clone().ok_or(SecretsError::NoEnvFile)?;
    let io = |operation: &'static str, path: &Path| {
        let path = path.display().to_string();
        move |cause| SecretsError::Io {
            operation,
            path,
            cause,
        }
    };
    let existing = match std::fs::read_to_string(&env_path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(io("read", &env_path)(error)),
    };
    let values = config::parse_env_file(&existing, process_environment).map_err(|errors| {
        SecretsError::EnvFile {
            path: env_path.display().to_string(),
            message: errors
                .iter()
                .map(|error| format!("line {}:{}: {}", error.line, error.column, error.message))
                .collect::<Vec<_>>()
                .join("; "),
        }
    })?;
    let present: BTreeSet<String> = names_with_values(&values);
    let plan = plan_generation(&variables.used, &present, &variables.rules);

    let mut generated: BTreeMap<String, String> = BTreeMap::new();
    for (name, format) in &plan.fill {
        let value = match format {
            SecretFormat::Random => random_value(name)?,
            SecretFormat::TlsKey => rcgen::KeyPair::generate()
                .map_err(|error| SecretsError::Generate {
                    name: name.clone(),
                    message: error.to_string(),
                })?
                .serialize_pem(),
            SecretFormat::TlsCertificate {
                key_variable,
                common_name,
            } => {
                let key = generated
                    .get(key_variable)
                    .or_else(|| values.get(key_variable).filter(|key| !key.is_empty()))
                    .ok_or_else(|| SecretsError::Generate {
                        name: name.clone(),
                        message: format!(
                            "its key `{key_variable}` has no value; the stack must use `${{{key_variable}}}` too"
                        ),
                    })?;
                self_signed_certificate(name, key, common_name)?
            }
        };
        generated.insert(name.clone(), value);
    }
    let lines: Vec<(String, String)> = plan
        .fill
        .iter()
        .map(|(name, _)| (name.clone(), env_line(name, &generated[name])))
        .collect();
    if !lines.is_empty() {
        let when = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        write_private_atomically(&env_path, &filled_env_file(&existing, &lines, &when))?;
    }
    let ignored_in = ignore_in_git(&env_path)?;
    Ok(GeneratedSecrets {
        env_file: env_path,
        filled: plan.fill.into_iter().map(|(name, _)| name).collect(),
        left_to_user: plan.left_to_user,
        ignored_in,
    })
}

/// 32 alphanumeric characters from the operating system's random source.
fn random_value(name: &str) -> Result<String, SecretsError> {
    // 3× the length: a byte is skipped with probability 8/256, so running out is
    // practically impossible, and is an error rather than a short value if it happens.
    let mut bytes = [0u8; RANDOM_LENGTH * 3];
    getrandom::fill(&mut bytes).map_err(|error| SecretsError::Generate {
        name: name.to_string(),
        message: format!("no random bytes from the operating system: {error}"),
    })?;
    alphanumeric(&bytes, RANDOM_LENGTH).ok_or_else(|| SecretsError::Generate {
        name: name.to_string(),
        message: "the random source gave too few usable bytes".to_string(),
    })
}

/// A certificate for `key_pem` naming `common_name` (also its DNS name), valid from the
/// start of this year for ten years. Clients that only require TLS (`sslmode=require`)
/// do not check it; one that verifies must be given this certificate as its CA.
fn self_signed_certificate(
    name: &str,
    key_pem: &str,
    common_name: &str,
) -> Result<String, SecretsError> {
    let failure = |message: String| SecretsError::Generate {
        name: name.to_string(),
        message,
    };
    let key = rcgen::KeyPair::from_pem(key_pem)
        .map_err(|error| failure(format!("its key is not a PEM private key: {error}")))?;
    let mut parameters = rcgen::CertificateParams::new(vec![common_name.to_string()])
        .map_err(|error| failure(error.to_string()))?;
    let mut distinguished_name = rcgen::DistinguishedName::new();
    distinguished_name.push(rcgen::DnType::CommonName, common_name);
    parameters.distinguished_name = distinguished_name;
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    // 31 556 952 s is the mean Gregorian year: this gives the current year (at worst
    // the previous one on New Year's Day), which is all a validity start needs.
    let year = 1970 + (seconds / 31_556_952) as i32;
    parameters.not_before = rcgen::date_time_ymd(year, 1, 1);
    parameters.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
    let certificate = parameters
        .self_signed(&key)
        .map_err(|error| failure(error.to_string()))?;
    Ok(certificate.pem())
}

/// Replaces `path` with `text`: a 0600 temporary file beside it, fsync, rename, fsync of
/// the directory. The temporary file is private from its creation, so no other user ever
/// sees the secrets.
fn write_private_atomically(path: &Path, text: &str) -> Result<(), SecretsError> {
    let directory = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".env".to_string());
    let temporary = directory.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let io = |operation: &'static str, at: &Path| {
        let at = at.display().to_string();
        move |cause| SecretsError::Io {
            operation,
            path: at,
            cause,
        }
    };
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(io("write", &temporary)(error));
    }
    std::fs::rename(&temporary, path).map_err(|error| {
        let _ = std::fs::remove_file(&temporary);
        io("replace", path)(error)
    })?;
    if let Ok(handle) = std::fs::File::open(directory) {
        let _ = handle.sync_all();
    }
    Ok(())
}

/// In a git work tree, adds the env file to the `.gitignore` beside it unless git already
/// ignores it. Returns the `.gitignore` written, if any.
fn ignore_in_git(env_path: &Path) -> Result<Option<PathBuf>, SecretsError> {
    let directory = env_path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let in_work_tree = directory
        .canonicalize()
        .ok()
        .is_some_and(|absolute| absolute.ancestors().any(|dir| dir.join(".git").exists()));
    if !in_work_tree {
        return Ok(None);
    }
    let file_name = env_path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".env".to_string());
    // `git check-ignore` knows every rule (global excludes, parent directories); exit 0
    // means ignored, 1 not ignored. Without git, the `.gitignore` beside it decides.
    let checked = std::process::Command::new("git")
        .arg("-C")
        .arg(directory)
        .args(["check-ignore", "--quiet", "--", &file_name])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let gitignore = directory.join(".gitignore");
    let existing = std::fs::read_to_string(&gitignore).unwrap_or_default();
    let line = format!("/{file_name}");
    let ignored = match checked.map(|status| status.code()) {
        Ok(Some(0)) => true,
        Ok(Some(1)) => false,
        _ => existing
            .lines()
            .any(|entry| entry.trim() == line || entry.trim() == file_name),
    };
    if ignored {
        return Ok(None);
    }
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "# Secrets (added by `stackctl secrets generate`)\n{line}\n"
    ));
    std::fs::write(&gitignore, text).map_err(|cause| SecretsError::Io {
        operation: "write",
        path: gitignore.display().to_string(),
        cause,
    })?;
    Ok(Some(gitignore))
}
