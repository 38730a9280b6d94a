//! A swarm service's secret env values as Swarm secrets, mounted as files.
//!
//! A swarm service's env is shown by `docker service inspect` on every manager (and the
//! task's container's by `docker inspect` on its node), so a secret value never goes
//! there. Each secret env value `VAR` of `swarm_service.<service>` becomes a Swarm secret
//! named `<stack>_<service>_<VAR>_<8 hex>`, mounted in every task as the file
//! `/run/secrets/VAR`, and the env gets `VAR_FILE=/run/secrets/VAR` instead: the `_FILE`
//! convention of the official Postgres image (`POSTGRES_PASSWORD_FILE`) and many others.
//!
//! Swarm secrets are immutable, so the name's 8 hex digits are the start of the value's
//! salted digest (the digest state already records): a changed value is a new secret, the
//! service is updated to mount it, and the old one is removed once the update is done. The
//! same digits let refresh tell, with no value at hand, which value a service mounts.
//!
//! The file is owned by root with mode 0444: a task often runs as a non-root user (the
//! hardened default), which must read it, and the file lives in a tmpfs mounted into that
//! task's container alone, so "everyone" is the task's own processes. (Docker's own
//! default for `--secret` is the same.)
//!
//! The lifecycle (create before the service, remove once unused, retried while in use)
//! is the one every content-named Swarm object has: [`super::swarm_objects`].

use serde_json::{json, Value as Json};
use stackctl_provider::Secret;

use super::swarm_objects::WantedObject;

/// Where the files are mounted in a task.
pub const SECRETS_DIRECTORY: &str = "/run/secrets";
/// `VAR` → `VAR_FILE`, the variable naming the file.
pub const FILE_SUFFIX: &str = "_FILE";
/// `r--r--r--`, owned by root (see the module's essay).
pub const FILE_MODE: u32 = 0o444;

/// One secret env value as the Swarm secret that carries it into the tasks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretFile {
    /// The env variable (`DB_PASSWORD`).
    pub variable: String,
    /// The Swarm secret's name, from [`secret_name`].
    pub name: String,
    pub value: Secret,
}

impl SecretFile {
    /// `/run/secrets/DB_PASSWORD`.
    pub fn path(&self) -> String {
        format!("{SECRETS_DIRECTORY}/{}", self.variable)
    }

    /// `DB_PASSWORD_FILE`.
    pub fn file_variable(&self) -> String {
        file_variable(&self.variable)
    }

    /// The entry of `TaskTemplate.ContainerSpec.Secrets` mounting the secret `id`.
    pub fn reference(&self, id: &str) -> Json {
        json!({
            "File": { "Name": self.path(), "UID": "0", "GID": "0", "Mode": FILE_MODE },
            "SecretID": id,
            "SecretName": self.name,
        })
    }

    /// The secret as the object an apply makes when it does not exist yet.
    pub fn wanted(&self) -> WantedObject {
        WantedObject {
            name: self.name.clone(),
            carries: format!("env `{}`", self.variable),
            data: self
                .value
                .expose()
                .map(|plaintext| plaintext.as_bytes().to_vec())
                .ok_or_else(|| "the value is not available to this run".to_string()),
        }
    }
}

pub fn file_variable(variable: &str) -> String {
    format!("{variable}{FILE_SUFFIX}")
}

/// The first 8 hex digits of a salted digest (`sha256:1a2b3c4d…` → `1a2b3c4d`).
pub fn digest_prefix(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(8)]
}

/// `shop_db_POSTGRES_PASSWORD_1a2b3c4d`: the stack, the service (its address name), the
/// variable and the start of the value's salted digest.
pub fn secret_name(stack: &str, service: &str, variable: &str, digest: &str) -> String {
    format!("{stack}_{service}_{variable}_{}", digest_prefix(digest))
}

#[cfg(test)]
mod tests {
    use super::super::swarm_objects::invalid_name;
    use super::*;

    fn file(variable: &str, plaintext: &str) -> SecretFile {
        let value = Secret::new(plaintext, "salt");
        SecretFile {
            variable: variable.into(),
            name: secret_name("shop", "db", variable, value.digest()),
            value,
        }
    }

    #[test]
    fn a_secrets_name_says_its_stack_service_variable_and_value() {
        let secret = Secret::new("hunter2", "salt");
        let name = secret_name("shop", "db", "POSTGRES_PASSWORD", secret.digest());
        assert_eq!(
            name,
            format!("shop_db_POSTGRES_PASSWORD_{}", &secret.digest()[7..15])
        );
        // A changed value is another secret; the same value in another stack's state (its
        // own salt) too.
        assert_ne!(
            name,
            secret_name(
                "shop",
                "db",
                "POSTGRES_PASSWORD",
                Secret::new("hunter3", "salt").digest()
            )
        );
        assert_ne!(
            name,
            secret_name(
                "shop",
                "db",
                "POSTGRES_PASSWORD",
                Secret::new("hunter2", "other").digest()
            )
        );
        assert!(!name.contains("hunter2"));
        assert_eq!(digest_prefix("sha256:0123456789abcdef"), "01234567");
        assert_eq!(invalid_name(&name), None);
    }

    #[test]
    fn the_mount_is_a_root_owned_read_only_file_under_run_secrets() {
        let file = file("DB_PASSWORD", "hunter2");
        assert_eq!(file.path(), "/run/secrets/DB_PASSWORD");
        assert_eq!(file.file_variable(), "DB_PASSWORD_FILE");
        assert_eq!(
            file.reference("sid"),
            json!({
                "File": { "Name": "/run/secrets/DB_PASSWORD", "UID": "0", "GID": "0", "Mode": 0o444 },
                "SecretID": "sid",
                "SecretName": file.name,
            })
        );
    }
}
