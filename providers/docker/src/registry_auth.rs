//! Registry credentials from the user's Docker configuration, found as the docker CLI
//! finds them: `config.json` in `$DOCKER_CONFIG` (default `~/.docker`), then for the
//! image's registry its credential helper (`credHelpers`), else the credential store
//! (`credsStore`), else its `auths` entry. A helper is run as `docker-credential-<name>
//! get` with the registry on stdin and answers `{"Username", "Secret"}` on stdout.
//!
//! The credentials become the `X-Registry-Auth` header of a pull or a registry-digest
//! question (base64url JSON, the Engine API's form), held as a [`Secret`] so that they
//! print as `[redacted]`; they are never logged, recorded or written anywhere.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;
use stackctl_provider::Secret;

/// The key Docker Hub's credentials are stored under.
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// Why credentials could not be read. Messages name files and helpers, never a value.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot read the Docker configuration `{path}`: {cause}")]
    Config { path: String, cause: String },
    #[error("the Docker credential helper `docker-credential-{helper}` could not be run: {cause}")]
    Helper { helper: String, cause: String },
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    /// base64 of `user:password`.
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// The directory of the user's Docker configuration: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn default_config_directory() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(directory) if !directory.is_empty() => Some(PathBuf::from(directory)),
        _ => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")),
    }
}

/// The registry an image reference is pulled from: its first component when that looks
/// like a host (`ghcr.io/acme/api`, `localhost:5000/x`), else Docker Hub.
pub fn registry_of(reference: &str) -> String {
    match reference.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => DOCKER_HUB.to_string(),
    }
}

/// The `X-Registry-Auth` header for pulling `reference`, or `None` when the user has no
/// credentials for its registry (a public image).
pub fn header_for(
    config_directory: &Path,
    reference: &str,
) -> Result<Option<Secret>, CredentialError> {
    let path = config_directory.join("config.json");
    let config: DockerConfig = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| CredentialError::Config {
            path: path.display().to_string(),
            // serde's message names a line and column, never the value.
            cause: error.to_string(),
        })?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(CredentialError::Config {
                path: path.display().to_string(),
                cause: error.to_string(),
            })
        }
    };
    let registry = registry_of(reference);
    let helper = config
        .cred_helpers
        .get(&registry)
        .or(config.creds_store.as_ref());
    let credentials = match helper {
        Some(helper) => from_helper(helper, &registry)?,
        None => from_auths(&config.auths, &registry),
    };
    Ok(credentials.map(|credentials| credentials.header(&registry)))
}

enum Credentials {
    Password { username: String, password: String },
    IdentityToken(String),
}

impl Credentials {
    /// The Engine API's `X-Registry-Auth`: base64url of the auth configuration's JSON.
    fn header(&self, registry: &str) -> Secret {
        let json = match self {
            Credentials::Password { username, password } => serde_json::json!({
                "username": username,
                "password": password,
                "serveraddress": registry,
            }),
            Credentials::IdentityToken(token) => serde_json::json!({
                "identitytoken": token,
                "serveraddress": registry,
            }),
        };
        let encoded = base64::engine::general_purpose::URL_SAFE.encode(json.to_string());
        Secret::new(&encoded, "registry-auth")
    }
}

/// Runs `docker-credential-<helper> get`; no credentials stored is `None`.
fn from_helper(helper: &str, registry: &str) -> Result<Option<Credentials>, CredentialError> {
    let failed = |cause: String| CredentialError::Helper {
        helper: helper.to_string(),
        cause,
    };
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| failed(error.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(registry.as_bytes())
            .map_err(|error| failed(error.to_string()))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|error| failed(error.to_string()))?;
    if !output.status.success() {
        // The helpers' protocol: this message means nothing is stored for the registry.
        if String::from_utf8_lossy(&output.stdout).contains("credentials not found") {
            return Ok(None);
        }
        return Err(failed(format!("it exited with {}", output.status)));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout)
        .map_err(|_| failed("its answer is not the helpers' JSON".to_string()))?;
    Ok(Some(if answer.username == "<token>" {
        Credentials::IdentityToken(answer.secret)
    } else {
        Credentials::Password {
            username: answer.username,
            password: answer.secret,
        }
    }))
}

/// The `auths` entry of `registry`, under any of the keys the docker CLI writes for it.
fn from_auths(auths: &BTreeMap<String, AuthEntry>, registry: &str) -> Option<Credentials> {
    let bare = |key: &str| {
        key.trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("")
            .to_string()
    };
    let wanted = bare(registry);
    let entry = auths.get(registry).or_else(|| {
        auths
            .iter()
            .find(|(key, _)| bare(key) == wanted)
            .map(|(_, entry)| entry)
    })?;
    if let Some(token) = &entry.identitytoken {
        return Some(Credentials::IdentityToken(token.clone()));
    }
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Some(Credentials::Password {
            username: username.clone(),
            password: password.clone(),
        });
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(entry.auth.as_deref()?.trim())
        .ok()?;
    let (username, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(Credentials::Password {
        username: username.to_string(),
        password: password.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(header: &Secret) -> serde_json::Value {
        let bytes = base64::engine::general_purpose::URL_SAFE
            .decode(header.expose().unwrap())
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn the_registry_is_the_first_component_when_it_names_a_host() {
        assert_eq!(registry_of("ghcr.io/acme/api:1"), "ghcr.io");
        assert_eq!(registry_of("localhost:5000/api"), "localhost:5000");
        assert_eq!(registry_of("postgres:16"), DOCKER_HUB);
        assert_eq!(registry_of("acme/api"), DOCKER_HUB);
    }

    #[test]
    fn an_auths_entry_becomes_the_header_and_prints_redacted() {
        let directory = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("deploy:auths-Secret-1");
        std::fs::write(
            directory.path().join("config.json"),
            format!(r#"{{"auths": {{"https://ghcr.io": {{"auth": "{auth}"}}}}}}"#),
        )
        .unwrap();
        let header = header_for(directory.path(), "ghcr.io/acme/api:1")
            .unwrap()
            .expect("credentials for ghcr.io");
        assert_eq!(
            decoded(&header),
            serde_json::json!({"username": "deploy", "password": "auths-Secret-1", "serveraddress": "ghcr.io"})
        );
        assert_eq!(format!("{header:?} {header}"), "[redacted] [redacted]");
        // Another registry, or no configuration at all: no credentials.
        assert!(header_for(directory.path(), "quay.io/x/y")
            .unwrap()
            .is_none());
        let empty = tempfile::tempdir().unwrap();
        assert!(header_for(empty.path(), "ghcr.io/acme/api")
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_broken_configuration_is_an_error_naming_the_file_and_never_its_content() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(
            directory.path().join("config.json"),
            r#"{"auths": {"ghcr.io": {"auth": "broken-Secret-2"#,
        )
        .unwrap();
        let error = header_for(directory.path(), "ghcr.io/a/b").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("config.json"), "{message}");
        assert!(!message.contains("broken-Secret-2"), "{message}");
    }
}
