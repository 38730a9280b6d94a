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
//! Pure naming and bodies first, then the two steps of an apply: creating the secrets a
//! service needs, and removing the ones it no longer mounts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value as Json};
use stackctl_provider::{ProviderError, Secret};

use crate::api::{DockerClient, LABEL_RESOURCE, LABEL_STACK};
use crate::http::{percent_encode, Request};
use crate::provider::DockerProvider;
use crate::provider_error::{failed, from_client};

/// Where the files are mounted in a task.
pub const SECRETS_DIRECTORY: &str = "/run/secrets";
/// `VAR` → `VAR_FILE`, the variable naming the file.
pub const FILE_SUFFIX: &str = "_FILE";
/// `r--r--r--`, owned by root (see the module's essay).
pub const FILE_MODE: u32 = 0o444;
/// Swarm refuses longer secret names.
pub const NAME_LIMIT: usize = 64;
/// How long a secret Swarm still calls in use is retried before it is left for the next
/// apply.
const REMOVAL_WAIT: Duration = Duration::from_secs(10);

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

/// Why Swarm would refuse `name` (its rule: at most 64 letters, digits, `-`, `_`, `.`,
/// starting and ending with a letter or digit), or `None`.
pub fn invalid_name(name: &str) -> Option<String> {
    if name.len() > NAME_LIMIT {
        return Some(format!(
            "{} characters, and Swarm allows {NAME_LIMIT}",
            name.len()
        ));
    }
    let allowed = |character: char| character.is_ascii_alphanumeric() || "-_.".contains(character);
    if let Some(character) = name.chars().find(|character| !allowed(*character)) {
        return Some(format!(
            "`{character}` is not a letter, a digit, `-`, `_` or `.`"
        ));
    }
    let edges_alphanumeric = name.starts_with(|character: char| character.is_ascii_alphanumeric())
        && name.ends_with(|character: char| character.is_ascii_alphanumeric());
    (!edges_alphanumeric).then(|| "it must start and end with a letter or digit".to_string())
}

/// The labels of a service's secrets: the stack's and the resource's, so an apply finds the
/// ones it made and removes those no longer mounted (the value is in the name's digest).
fn secret_labels(stack: &str, resource: &str) -> Json {
    json!({ LABEL_STACK: stack, LABEL_RESOURCE: resource })
}

/// The secrets one resource of the stack made.
pub fn list_secrets_of(stack: &str, resource: &str) -> Request {
    Request::new("GET", "/secrets").query(
        "filters",
        json!({ "label": [format!("{LABEL_STACK}={stack}"), format!("{LABEL_RESOURCE}={resource}")] })
            .to_string(),
    )
}

/// `POST /secrets/create`: the value travels base64-encoded in `Data`, in this body only.
pub fn create_secret(name: &str, stack: &str, resource: &str, plaintext: &str) -> Request {
    Request::new("POST", "/secrets/create").json(json!({
        "Name": name,
        "Labels": secret_labels(stack, resource),
        "Data": base64::engine::general_purpose::STANDARD.encode(plaintext.as_bytes()),
    }))
}

pub fn remove_secret(id: &str) -> Request {
    Request::new("DELETE", format!("/secrets/{}", percent_encode(id)))
}

/// Which of a resource's listed secrets (`GET /secrets`) no wanted secret names: their
/// ids and names.
pub fn unused_secrets(listed: &[Json], wanted: &[SecretFile]) -> Vec<(String, String)> {
    listed
        .iter()
        .filter_map(|secret| {
            let id = secret["ID"].as_str()?;
            let name = secret["Spec"]["Name"].as_str()?;
            (!wanted.iter().any(|file| file.name == name))
                .then(|| (id.to_string(), name.to_string()))
        })
        .collect()
}

impl DockerProvider {
    /// Creates the secrets of `wanted` that do not exist yet; returns every wanted secret's
    /// id by name. A secret that exists is never created again: its name says its value.
    pub(crate) async fn ensure_swarm_secrets(
        &self,
        client: &DockerClient,
        resource: &str,
        wanted: &[SecretFile],
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        let mut ids = BTreeMap::new();
        if wanted.is_empty() {
            return Ok(ids);
        }
        let listed = self.swarm_secrets_of(client, resource).await?;
        for secret in &listed {
            if let (Some(id), Some(name)) = (secret["ID"].as_str(), secret["Spec"]["Name"].as_str())
            {
                ids.insert(name.to_string(), id.to_string());
            }
        }
        for file in wanted {
            if ids.contains_key(&file.name) {
                continue;
            }
            let plaintext = file.value.expose().ok_or_else(|| {
                failed(
                    format!(
                        "`{resource}`: the value of env `{}` is not available to create its Swarm secret",
                        file.variable
                    ),
                    None,
                )
            })?;
            let response = client
                .send_raw(create_secret(&file.name, &self.stack, resource, plaintext))
                .await
                .map_err(from_client)?;
            if !response.is_success() {
                // Never the request in the message: it carries the value.
                return Err(ProviderError::Failed {
                    message: format!(
                        "`{resource}`: Swarm refused the secret `{}` for env `{}`: {}",
                        file.name,
                        file.variable,
                        response.error_message()
                    ),
                    detail: None,
                    hint: (response.status == 409).then(|| format!(
                        "a secret of that name exists but is not labelled as this stack's: if nothing uses it, `docker secret rm {}` on a manager", file.name
                    )),
                });
            }
            let created = response
                .json()
                .map_err(|error| failed(error.to_string(), None))?;
            let id = created["ID"]
                .as_str()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| failed("the daemon created a secret without an id", None))?;
            ids.insert(file.name.clone(), id.to_string());
        }
        Ok(ids)
    }

    /// Removes the resource's secrets no wanted one names (all of them once the service
    /// is deleted). Swarm refuses to remove a secret a service still mounts: that one is
    /// tried again for a bounded while, then left (with a warning) for the next apply, which
    /// removes it — the service itself is already as stack.toml says.
    pub(crate) async fn remove_unused_swarm_secrets(
        &self,
        client: &DockerClient,
        resource: &str,
        wanted: &[SecretFile],
    ) -> Result<(), ProviderError> {
        let listed = self.swarm_secrets_of(client, resource).await?;
        let deadline = Instant::now() + REMOVAL_WAIT;
        for (id, name) in unused_secrets(&listed, wanted) {
            loop {
                let response = client
                    .send_raw(remove_secret(&id))
                    .await
                    .map_err(from_client)?;
                if response.is_success() || response.status == 404 {
                    break;
                }
                if Instant::now() >= deadline {
                    tracing::warn!(
                        secret = %name,
                        reason = %response.error_message(),
                        "an old Swarm secret of `{resource}` could not be removed yet; the next apply removes it"
                    );
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Ok(())
    }

    /// After Swarm refused the first service of `resource`: its secrets, made just before,
    /// are mounted by nothing, and no delete comes for a service that never existed (not
    /// `destroy`, not removing it from stack.toml), so they go now. The refusal is the
    /// error to report; a secret that cannot be removed is a warning, and the next apply
    /// reuses it.
    pub(crate) async fn forget_secrets_of_refused_service(
        &self,
        client: &DockerClient,
        resource: &str,
    ) {
        if let Err(error) = self
            .remove_unused_swarm_secrets(client, resource, &[])
            .await
        {
            tracing::warn!(
                "the Swarm secrets made for `{resource}`, whose service Swarm refused, could not be removed: {error}"
            );
        }
    }

    async fn swarm_secrets_of(
        &self,
        client: &DockerClient,
        resource: &str,
    ) -> Result<Vec<Json>, ProviderError> {
        let listed = client
            .send_json(list_secrets_of(&self.stack, resource))
            .await
            .map_err(from_client)?;
        Ok(listed.as_array().cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::API_VERSION;

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
    fn names_swarm_would_refuse_are_named_with_why() {
        assert_eq!(
            invalid_name(&"a".repeat(65)).unwrap(),
            "65 characters, and Swarm allows 64"
        );
        assert_eq!(
            invalid_name("shop_db_A/B_01234567").unwrap(),
            "`/` is not a letter, a digit, `-`, `_` or `.`"
        );
        assert!(invalid_name("_shop_db_A_01234567").is_some());
        assert_eq!(invalid_name(&"a".repeat(64)), None);
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

    #[test]
    fn the_value_travels_base64_in_the_create_body_only() {
        let request = create_secret("shop_db_P_01234567", "shop", "swarm_service.db", "hunter2");
        assert_eq!(request.target(API_VERSION), "/v1.41/secrets/create");
        assert_eq!(
            request.body,
            crate::http::Body::Json(json!({
                "Name": "shop_db_P_01234567",
                "Labels": { "stackctl.stack": "shop", "stackctl.resource": "swarm_service.db" },
                "Data": "aHVudGVyMg==",
            }))
        );
        assert_eq!(
            list_secrets_of("shop", "swarm_service.db").target(API_VERSION),
            "/v1.41/secrets?filters=%7B%22label%22%3A%5B%22stackctl.stack%3Dshop%22%2C%22stackctl.resource%3Dswarm_service.db%22%5D%7D"
        );
        assert_eq!(
            remove_secret("sid").target(API_VERSION),
            "/v1.41/secrets/sid"
        );
    }

    #[test]
    fn secrets_no_wanted_one_names_are_unused() {
        let kept = file("DB_PASSWORD", "new");
        let listed = [
            json!({ "ID": "s1", "Spec": { "Name": kept.name } }),
            json!({ "ID": "s2", "Spec": { "Name": "shop_db_DB_PASSWORD_00000000" } }),
        ];
        assert_eq!(
            unused_secrets(&listed, std::slice::from_ref(&kept)),
            [("s2".to_string(), "shop_db_DB_PASSWORD_00000000".to_string())]
        );
        assert_eq!(unused_secrets(&listed, &[]).len(), 2);
    }
}
