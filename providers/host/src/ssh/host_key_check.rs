//! Deciding on the server's host key during the handshake: the pinned fingerprint
//! first, then known_hosts; unknown keys only with the caller's consent, changed keys
//! never.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use russh::client;
use russh::keys::{Algorithm, PublicKey, PublicKeyOrCertificate};

use super::home_directory;
use crate::known_hosts::{self, KnownHostsVerdict};
use crate::{HostError, HostKey, HostKeyTrust, SshOptions};

/// What the handler knows to decide on the server's key.
pub(super) struct HostKeyPolicy {
    target: String,
    address: String,
    port: u16,
    pinned_fingerprint: Option<String>,
    known_hosts_path: Option<PathBuf>,
    known_hosts: String,
    accept_new: bool,
}

impl HostKeyPolicy {
    pub(super) fn load(options: &SshOptions, target: &str) -> Result<HostKeyPolicy, HostError> {
        let known_hosts_path = options
            .known_hosts
            .clone()
            .or_else(|| home_directory().map(|home| home.join(".ssh").join("known_hosts")));
        let known_hosts = match &known_hosts_path {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(contents) => contents,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(error) => {
                    return Err(HostError::Refused {
                        message: format!(
                            "cannot read the known hosts file {}: {error}",
                            path.display()
                        ),
                        hint: None,
                    })
                }
            },
            None => String::new(),
        };
        Ok(HostKeyPolicy {
            target: target.to_string(),
            address: options.address.clone(),
            port: options.port,
            pinned_fingerprint: options
                .pinned_fingerprint
                .clone()
                .map(|pinned| normalize_fingerprint(&pinned)),
            known_hosts_path,
            known_hosts,
            accept_new: options.accept_new_host_key,
        })
    }

    /// The default algorithm list with the types recorded for this host moved first.
    pub(super) fn preferred_key_algorithms(&self, defaults: &[Algorithm]) -> Vec<Algorithm> {
        let recorded: Vec<Algorithm> =
            known_hosts::entries_for_host(&self.known_hosts, &self.address, self.port)
                .into_iter()
                .filter(|entry| !entry.revoked)
                .map(|entry| entry.key.algorithm())
                .collect();
        let mut ordered: Vec<Algorithm> = defaults
            .iter()
            .filter(|algorithm| recorded.contains(algorithm))
            .cloned()
            .collect();
        ordered.extend(
            defaults
                .iter()
                .filter(|algorithm| !recorded.contains(algorithm))
                .cloned(),
        );
        ordered
    }

    fn known_hosts_display(&self) -> String {
        self.known_hosts_path
            .as_deref()
            .map(|path| path.display().to_string())
            .unwrap_or_else(|| "known_hosts (no home directory)".to_string())
    }

    /// Decides on `key`: the trusted [`HostKey`], or the refusal to report.
    fn decide(&self, key: &PublicKey) -> Result<HostKey, HostError> {
        let fingerprint = known_hosts::fingerprint(key);
        let key_type = known_hosts::key_type_label(&key.algorithm());
        let presented = known_hosts::describe_key(key);
        let trusted = |trust| HostKey {
            fingerprint: fingerprint.clone(),
            key_type: key_type.clone(),
            trust,
        };
        if let Some(pinned) = &self.pinned_fingerprint {
            if *pinned == fingerprint {
                return Ok(trusted(HostKeyTrust::Pinned));
            }
            return Err(HostError::Refused {
                message: format!(
                    "the host key of {} has CHANGED: expected {pinned} (pinned in state), got {presented}",
                    self.target
                ),
                hint: Some(
                    "this is what a man-in-the-middle attack looks like; if the host was rebuilt on purpose, \
                     check the new fingerprint on the host (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`) \
                     and replace the pinned fingerprint in state"
                        .to_string(),
                ),
            });
        }
        let known_hosts_name = known_hosts::known_hosts_name(&self.address, self.port);
        match known_hosts::check(&self.known_hosts, &self.address, self.port, key) {
            KnownHostsVerdict::Known { line } => Ok(trusted(HostKeyTrust::KnownHosts {
                path: self.known_hosts_path.clone().unwrap_or_default(),
                line,
            })),
            KnownHostsVerdict::Revoked { line } => Err(HostError::Refused {
                message: format!(
                    "the host key of {} is revoked ({}:{line}): {presented}",
                    self.target,
                    self.known_hosts_display()
                ),
                hint: None,
            }),
            KnownHostsVerdict::Changed { recorded } => {
                let expected: Vec<String> = recorded
                    .iter()
                    .map(|entry| {
                        format!(
                            "{} ({}:{})",
                            known_hosts::describe_key(&entry.key),
                            self.known_hosts_display(),
                            entry.line
                        )
                    })
                    .collect();
                Err(HostError::Refused {
                    message: format!(
                        "the host key of {} has CHANGED: expected {}, got {presented}",
                        self.target,
                        expected.join(" or ")
                    ),
                    hint: Some(format!(
                        "this is what a man-in-the-middle attack looks like; if the host's key was changed on purpose, \
                         check the new fingerprint on the host, then remove the old entry with \
                         `ssh-keygen -R '{known_hosts_name}' -f {}`",
                        self.known_hosts_display()
                    )),
                })
            }
            KnownHostsVerdict::Unknown if self.accept_new => Ok(trusted(HostKeyTrust::NewlyAccepted)),
            KnownHostsVerdict::Unknown => Err(HostError::Refused {
                message: format!(
                    "the host key of {} is not known: {presented} is neither pinned in state nor in {}",
                    self.target,
                    self.known_hosts_display()
                ),
                hint: Some(
                    "compare it with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the host, then accept it \
                     explicitly (the accept-new-host-key option), which pins it in state"
                        .to_string(),
                ),
            }),
        }
    }
}

/// `SHA256:abc=` and `abc` both mean `SHA256:abc` (ssh-keygen prints no padding).
fn normalize_fingerprint(fingerprint: &str) -> String {
    let trimmed = fingerprint.trim().trim_end_matches('=');
    if trimmed.starts_with("SHA256:") {
        trimmed.to_string()
    } else {
        format!("SHA256:{trimmed}")
    }
}

/// The russh handler: it only decides on the host key, and leaves its verdict where
/// [`connect_and_authenticate`] can read it (russh itself reports just `UnknownKey`).
pub(super) struct TrustingHandler {
    pub(super) policy: HostKeyPolicy,
    pub(super) verdict: Arc<Mutex<Option<Result<HostKey, HostError>>>>,
}

impl client::Handler for TrustingHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let decision = match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self.policy.decide(key),
            PublicKeyOrCertificate::Certificate(_) => Err(HostError::Refused {
                message: format!(
                    "{} presented a host certificate; stackctl trusts host keys only",
                    self.policy.target
                ),
                hint: None,
            }),
        };
        let accepted = decision.is_ok();
        if let Ok(mut verdict) = self.verdict.lock() {
            // Only the first key exchange decides; a re-key presents the same key and
            // russh checks that itself.
            if verdict.is_none() {
                *verdict = Some(decision);
            }
        }
        Ok(accepted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_fingerprints_are_normalized() {
        assert_eq!(normalize_fingerprint("SHA256:abc"), "SHA256:abc");
        assert_eq!(normalize_fingerprint(" abc= "), "SHA256:abc");
    }
}
