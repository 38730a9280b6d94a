//! Public-key authentication: configured key files, then an ssh-agent, then the
//! default key files; a refusal lists every key tried and what became of it.

use std::path::Path;
use std::sync::Arc;

use russh::client::Handle;
use russh::keys::PrivateKeyWithHashAlg;

use super::host_key_check::TrustingHandler;
use super::{describe_russh_error, home_directory};
use crate::known_hosts;
use crate::{HostError, SshOptions};

pub(super) async fn authenticate(
    handle: &mut Handle<TrustingHandler>,
    options: &SshOptions,
    target: &str,
) -> Result<(), HostError> {
    let mut tried: Vec<String> = Vec::new();
    match try_every_key(handle, options, &mut tried).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(HostError::Refused {
            message: format!(
                "{target} refused public-key authentication as `{}`",
                options.user
            ),
            hint: Some(authentication_hint(&tried, &options.user)),
        }),
        // Typically "Too many authentication failures": the server hangs up after
        // `MaxAuthTries` rejected keys.
        Err(cause) => Err(HostError::Refused {
            message: format!(
                "{target} closed the connection while authenticating as `{}`: {cause}",
                options.user
            ),
            hint: Some(authentication_hint(&tried, &options.user)),
        }),
    }
}

fn authentication_hint(tried: &[String], user: &str) -> String {
    format!(
        "keys tried: {}; add the public half of one of them to `~/.ssh/authorized_keys` of `{user}` on the host, \
         or name the right private key in the target's identity files",
        if tried.is_empty() { "none".to_string() } else { tried.join("; ") },
    )
}

/// Offers the configured identity files, then the agent's keys, then the default key
/// files (only when none were configured). `Ok(true)` once one is accepted; `Err` when
/// the connection broke.
async fn try_every_key(
    handle: &mut Handle<TrustingHandler>,
    options: &SshOptions,
    tried: &mut Vec<String>,
) -> Result<bool, String> {
    for path in &options.identity_files {
        if try_identity_file(handle, &options.user, path, tried).await? {
            return Ok(true);
        }
    }
    if try_agent(handle, &options.user, tried).await? {
        return Ok(true);
    }
    if options.identity_files.is_empty() {
        if let Some(home) = home_directory() {
            for name in ["id_ed25519", "id_ecdsa"] {
                let path = home.join(".ssh").join(name);
                if try_identity_file(handle, &options.user, &path, tried).await? {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// Tries one private key file; records what happened in `tried`. `Ok(true)` when the
/// server accepted it.
async fn try_identity_file(
    handle: &mut Handle<TrustingHandler>,
    user: &str,
    path: &Path,
    tried: &mut Vec<String>,
) -> Result<bool, String> {
    let key = match russh::keys::load_secret_key(path, None) {
        Ok(key) => key,
        Err(russh::keys::Error::IO(error)) if error.kind() == std::io::ErrorKind::NotFound => {
            tried.push(format!("{} (not found)", path.display()));
            return Ok(false);
        }
        Err(russh::keys::Error::KeyIsEncrypted) => {
            tried.push(format!(
                "{} (encrypted; add it to ssh-agent with `ssh-add {}`)",
                path.display(),
                path.display()
            ));
            return Ok(false);
        }
        Err(error) => {
            tried.push(format!("{} (unusable: {error})", path.display()));
            return Ok(false);
        }
    };
    let described = known_hosts::fingerprint(key.public_key());
    let result = handle
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), None))
        .await
        .map_err(|error| describe_russh_error(&error))?;
    if result.success() {
        return Ok(true);
    }
    tried.push(format!(
        "{} ({described}, rejected by the server)",
        path.display()
    ));
    Ok(false)
}

/// Tries every key of the agent at `SSH_AUTH_SOCK`, if there is one.
async fn try_agent(
    handle: &mut Handle<TrustingHandler>,
    user: &str,
    tried: &mut Vec<String>,
) -> Result<bool, String> {
    if std::env::var_os("SSH_AUTH_SOCK").is_none() {
        return Ok(false);
    }
    let mut agent = match russh::keys::agent::client::AgentClient::connect_env().await {
        Ok(agent) => agent,
        Err(error) => {
            tried.push(format!("ssh-agent (cannot connect: {error})"));
            return Ok(false);
        }
    };
    let identities = match agent.request_identities().await {
        Ok(identities) => identities,
        Err(error) => {
            tried.push(format!("ssh-agent (cannot list keys: {error})"));
            return Ok(false);
        }
    };
    if identities.is_empty() {
        tried.push("ssh-agent (holds no keys)".to_string());
    }
    for identity in identities {
        let russh::keys::agent::AgentIdentity::PublicKey { key, comment } = identity else {
            continue;
        };
        let described = format!("ssh-agent key {} {comment}", known_hosts::fingerprint(&key));
        match handle
            .authenticate_publickey_with(user, key, None, &mut agent)
            .await
        {
            Ok(result) if result.success() => return Ok(true),
            Ok(_) => tried.push(format!("{} (rejected by the server)", described.trim_end())),
            Err(error) => tried.push(format!(
                "{} (agent could not sign: {error})",
                described.trim_end()
            )),
        }
    }
    Ok(false)
}
