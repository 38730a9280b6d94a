//! The Swarm objects a service mounts as files — secrets ([`super::secrets`]) and configs
//! ([`super::mounted_files`]) — share one life: Swarm never changes one (`Data` is fixed at
//! create), so each is named after its content (a new content is a new object, and the
//! service is updated to mount it), labelled with the stack and the resource that mounts
//! it, created before the service's spec names it by id, and removed once neither the
//! service's spec nor its previous one (which Swarm rolls back to) mounts it. Swarm refuses to remove one a task still uses, right after an update
//! too: that removal is retried for a bounded while, then left for the next apply.
//!
//! Pure request builders first, then the two steps of an apply.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value as Json};
use stackctl_provider::ProviderError;

use crate::api::{DockerClient, LABEL_RESOURCE, LABEL_STACK};
use crate::http::{percent_encode, Request};
use crate::provider::DockerProvider;
use crate::provider_error::{failed, from_client};

/// Swarm refuses longer secret and config names.
pub const NAME_LIMIT: usize = 64;
/// How long an object Swarm still calls in use is retried before it is left for the next
/// apply.
const REMOVAL_WAIT: Duration = Duration::from_secs(10);

/// Which of the two kinds: they live under their own paths of the Engine API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwarmObjectKind {
    Secret,
    Config,
}

impl SwarmObjectKind {
    /// `secret`, `config`: the word in messages and in Docker's CLI.
    pub fn noun(self) -> &'static str {
        match self {
            SwarmObjectKind::Secret => "secret",
            SwarmObjectKind::Config => "config",
        }
    }

    /// Where a service's container spec lists the mounted objects of this kind, and the
    /// field naming each: `Secrets`/`SecretName`, `Configs`/`ConfigName`.
    fn in_container_spec(self) -> (&'static str, &'static str) {
        match self {
            SwarmObjectKind::Secret => ("Secrets", "SecretName"),
            SwarmObjectKind::Config => ("Configs", "ConfigName"),
        }
    }

    fn collection(self) -> &'static str {
        match self {
            SwarmObjectKind::Secret => "/secrets",
            SwarmObjectKind::Config => "/configs",
        }
    }
}

/// One object a service needs: its name, what it carries (for messages: "env
/// `DB_PASSWORD`", "file `/etc/app.conf`"), and its data, or why the data is not at hand.
/// The data is needed only when the object does not exist yet.
pub struct WantedObject {
    pub name: String,
    pub carries: String,
    pub data: Result<Vec<u8>, String>,
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

/// The objects of one kind that one resource of the stack made.
pub fn list_objects_of(kind: SwarmObjectKind, stack: &str, resource: &str) -> Request {
    Request::new("GET", kind.collection()).query(
        "filters",
        json!({ "label": [format!("{LABEL_STACK}={stack}"), format!("{LABEL_RESOURCE}={resource}")] })
            .to_string(),
    )
}

/// `POST /secrets/create` or `/configs/create`: the data travels base64-encoded in
/// `Data`, in this body only. The labels let an apply find the objects it made.
pub fn create_object(
    kind: SwarmObjectKind,
    name: &str,
    stack: &str,
    resource: &str,
    data: &[u8],
) -> Request {
    Request::new("POST", format!("{}/create", kind.collection())).json(json!({
        "Name": name,
        "Labels": { LABEL_STACK: stack, LABEL_RESOURCE: resource },
        "Data": base64::engine::general_purpose::STANDARD.encode(data),
    }))
}

pub fn remove_object(kind: SwarmObjectKind, id: &str) -> Request {
    Request::new(
        "DELETE",
        format!("{}/{}", kind.collection(), percent_encode(id)),
    )
}

/// The names of the objects of `kind` a live service's previous spec mounts. Swarm rolls
/// back to that spec (an update that fails while Swarm monitors it, or `docker service
/// rollback`), and it refuses to delete an object only while the *current* spec uses it:
/// one of these removed now would make that rollback fail. They go at a later apply.
pub fn mounted_by_previous_spec(service: &Json, kind: SwarmObjectKind) -> Vec<String> {
    let (list, field) = kind.in_container_spec();
    service["PreviousSpec"]["TaskTemplate"]["ContainerSpec"][list]
        .as_array()
        .map(|mounted| {
            mounted
                .iter()
                .filter_map(|object| object[field].as_str())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Which of a resource's listed objects no wanted name names: their ids and names.
pub fn unused_objects(listed: &[Json], wanted: &[&str]) -> Vec<(String, String)> {
    listed
        .iter()
        .filter_map(|object| {
            let id = object["ID"].as_str()?;
            let name = object["Spec"]["Name"].as_str()?;
            (!wanted.contains(&name)).then(|| (id.to_string(), name.to_string()))
        })
        .collect()
}

impl DockerProvider {
    /// Creates the wanted objects that do not exist yet; returns every wanted object's id
    /// by name. One that exists is never created again: its name says its content.
    pub(crate) async fn ensure_swarm_objects(
        &self,
        client: &DockerClient,
        kind: SwarmObjectKind,
        resource: &str,
        wanted: &[WantedObject],
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        let mut ids = BTreeMap::new();
        if wanted.is_empty() {
            return Ok(ids);
        }
        for object in self.swarm_objects_of(client, kind, resource).await? {
            if let (Some(id), Some(name)) = (object["ID"].as_str(), object["Spec"]["Name"].as_str())
            {
                ids.insert(name.to_string(), id.to_string());
            }
        }
        let noun = kind.noun();
        for object in wanted {
            if ids.contains_key(&object.name) {
                continue;
            }
            let data = object.data.as_ref().map_err(|why| {
                failed(
                    format!(
                        "`{resource}`: cannot create the Swarm {noun} `{}` for {}: {why}",
                        object.name, object.carries
                    ),
                    None,
                )
            })?;
            let response = client
                .send_raw(create_object(
                    kind,
                    &object.name,
                    &self.stack,
                    resource,
                    data,
                ))
                .await
                .map_err(from_client)?;
            if !response.is_success() {
                // Never the request in the message: it carries the data.
                return Err(ProviderError::Failed {
                    message: format!(
                        "`{resource}`: Swarm refused the {noun} `{}` for {}: {}",
                        object.name,
                        object.carries,
                        response.error_message()
                    ),
                    detail: None,
                    hint: (response.status == 409).then(|| format!(
                        "a {noun} of that name exists but is not labelled as this stack's: if nothing uses it, `docker {noun} rm {}` on a manager", object.name
                    )),
                });
            }
            let created = response
                .json()
                .map_err(|error| failed(error.to_string(), None))?;
            let id = created["ID"]
                .as_str()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| {
                    failed(format!("the daemon created a {noun} without an id"), None)
                })?;
            ids.insert(object.name.clone(), id.to_string());
        }
        Ok(ids)
    }

    /// After Swarm refused a service's first create: the secrets and configs made for it
    /// are mounted by nothing, and no delete comes for a service that never existed (not
    /// `destroy`, not removing it from stack.toml), so they go now. The refusal is the
    /// error to report; an object that cannot be removed is a warning, and the next apply
    /// reuses it.
    pub(crate) async fn forget_objects_of_refused_service(
        &self,
        client: &DockerClient,
        resource: &str,
    ) {
        for kind in [SwarmObjectKind::Secret, SwarmObjectKind::Config] {
            if let Err(error) = self
                .remove_unused_swarm_objects(client, kind, resource, &[])
                .await
            {
                tracing::warn!(
                    "the Swarm {}s made for `{resource}`, whose service Swarm refused, could not be removed: {error}",
                    kind.noun()
                );
            }
        }
    }

    /// Removes the resource's objects of `kind` that no wanted name names (all of them
    /// once the service is deleted). One Swarm still calls in use is tried again for a
    /// bounded while, then left (with a warning) for the next apply, which removes it —
    /// the service itself is already as stack.toml says.
    pub(crate) async fn remove_unused_swarm_objects(
        &self,
        client: &DockerClient,
        kind: SwarmObjectKind,
        resource: &str,
        wanted: &[&str],
    ) -> Result<(), ProviderError> {
        let listed = self.swarm_objects_of(client, kind, resource).await?;
        let deadline = Instant::now() + REMOVAL_WAIT;
        for (id, name) in unused_objects(&listed, wanted) {
            loop {
                let response = client
                    .send_raw(remove_object(kind, &id))
                    .await
                    .map_err(from_client)?;
                if response.is_success() || response.status == 404 {
                    break;
                }
                if Instant::now() >= deadline {
                    tracing::warn!(
                        object = %name,
                        reason = %response.error_message(),
                        "an old Swarm {} of `{resource}` could not be removed yet; the next apply removes it",
                        kind.noun()
                    );
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Ok(())
    }

    async fn swarm_objects_of(
        &self,
        client: &DockerClient,
        kind: SwarmObjectKind,
        resource: &str,
    ) -> Result<Vec<Json>, ProviderError> {
        let listed = client
            .send_json(list_objects_of(kind, &self.stack, resource))
            .await
            .map_err(from_client)?;
        Ok(listed.as_array().cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::API_VERSION;

    #[test]
    fn objects_the_previous_spec_mounts_are_kept_for_a_rollback() {
        let service = json!({
            "Spec": { "TaskTemplate": { "ContainerSpec": {
                "Configs": [{ "ConfigName": "shop_app_conf_22222222" }],
            } } },
            "PreviousSpec": { "TaskTemplate": { "ContainerSpec": {
                "Configs": [{ "ConfigName": "shop_app_conf_11111111", "ConfigID": "c1" }],
                "Secrets": [{ "SecretName": "shop_app_TOKEN_33333333", "SecretID": "s1" }],
            } } },
        });
        assert_eq!(
            mounted_by_previous_spec(&service, SwarmObjectKind::Config),
            ["shop_app_conf_11111111"]
        );
        assert_eq!(
            mounted_by_previous_spec(&service, SwarmObjectKind::Secret),
            ["shop_app_TOKEN_33333333"]
        );
        // A service never updated has no previous spec: nothing more is kept.
        assert!(
            mounted_by_previous_spec(&json!({ "Spec": {} }), SwarmObjectKind::Config).is_empty()
        );
        // What `remove_unmounted_objects` then asks: the old config is wanted, so kept.
        let listed = [
            json!({ "ID": "c1", "Spec": { "Name": "shop_app_conf_11111111" } }),
            json!({ "ID": "c0", "Spec": { "Name": "shop_app_conf_00000000" } }),
        ];
        let previous = mounted_by_previous_spec(&service, SwarmObjectKind::Config);
        let mut wanted = vec!["shop_app_conf_22222222"];
        wanted.extend(previous.iter().map(String::as_str));
        assert_eq!(
            unused_objects(&listed, &wanted),
            [("c0".to_string(), "shop_app_conf_00000000".to_string())]
        );
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
    fn the_data_travels_base64_in_the_create_body_only() {
        let request = create_object(
            SwarmObjectKind::Secret,
            "shop_db_P_01234567",
            "shop",
            "swarm_service.db",
            b"hunter2",
        );
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
            list_objects_of(SwarmObjectKind::Secret, "shop", "swarm_service.db")
                .target(API_VERSION),
            "/v1.41/secrets?filters=%7B%22label%22%3A%5B%22stackctl.stack%3Dshop%22%2C%22stackctl.resource%3Dswarm_service.db%22%5D%7D"
        );
        assert_eq!(
            remove_object(SwarmObjectKind::Secret, "sid").target(API_VERSION),
            "/v1.41/secrets/sid"
        );
    }

    #[test]
    fn configs_live_under_their_own_path() {
        let request = create_object(
            SwarmObjectKind::Config,
            "shop_web_app_01234567",
            "shop",
            "swarm_service.web",
            b"greeting = hello\n",
        );
        assert_eq!(request.target(API_VERSION), "/v1.41/configs/create");
        assert_eq!(
            list_objects_of(SwarmObjectKind::Config, "shop", "swarm_service.web")
                .target(API_VERSION),
            "/v1.41/configs?filters=%7B%22label%22%3A%5B%22stackctl.stack%3Dshop%22%2C%22stackctl.resource%3Dswarm_service.web%22%5D%7D"
        );
        assert_eq!(
            remove_object(SwarmObjectKind::Config, "cid").target(API_VERSION),
            "/v1.41/configs/cid"
        );
    }

    #[test]
    fn objects_no_wanted_name_names_are_unused() {
        let listed = [
            json!({ "ID": "s1", "Spec": { "Name": "shop_db_DB_PASSWORD_11111111" } }),
            json!({ "ID": "s2", "Spec": { "Name": "shop_db_DB_PASSWORD_00000000" } }),
        ];
        assert_eq!(
            unused_objects(&listed, &["shop_db_DB_PASSWORD_11111111"]),
            [("s2".to_string(), "shop_db_DB_PASSWORD_00000000".to_string())]
        );
        assert_eq!(unused_objects(&listed, &[]).len(), 2);
    }
}
