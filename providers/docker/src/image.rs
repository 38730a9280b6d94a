//! Applying an `image.*` resource: a built image (`tag`) is built from its context once
//! per context hash; a referenced image (`reference`) is pulled by its policy
//! (`pull` = `missing`, `always` or `never`, Compose's names).

use std::collections::BTreeMap;

use serde_json::Value as Json;
use stackctl_provider::{
    Action, ActionKind, Address, ApplyOutcome, ProviderError, Resource, Value,
};

use crate::api::{self, DockerClient};
use crate::attributes::{desired_of, recorded_with, text_attribute};
use crate::http::Response;
use crate::labels::label;
use crate::provider::DockerProvider;
use crate::provider_error::{failed, from_client};

impl DockerProvider {
    pub(crate) async fn apply_image(
        &self,
        client: &DockerClient,
        action: &Action,
    ) -> Result<ApplyOutcome, ProviderError> {
        if action.kind == ActionKind::Delete {
            // Built images are this stack's and go; referenced ones may be shared and stay.
            if let Some(prior) = &action.prior {
                if let Some(tag) = text_attribute(&prior.attributes, "tag") {
                    // 404 (already gone) and 409 (still used) are both fine here.
                    let _ = client
                        .send_raw(api::remove_image(tag))
                        .await
                        .map_err(from_client)?;
                }
            }
            return Ok(ApplyOutcome::Deleted);
        }
        let desired = desired_of(action)?;
        let attributes = &desired.attributes;
        let image_id = if let Some(tag) = text_attribute(attributes, "tag") {
            let context_hash = text_attribute(attributes, "context_hash").unwrap_or("");
            let existing = client
                .send_raw(api::inspect_image(tag))
                .await
                .map_err(from_client)?;
            let existing = existing
                .is_success()
                .then(|| existing.json().ok())
                .flatten();
            let build_args = build_args_of(attributes);
            let build_args_label = build_args_label(&build_args);
            match existing {
                Some(image)
                    if label(&image["Config"], api::LABEL_CONTEXT_HASH) == Some(context_hash)
                        && label(&image["Config"], api::LABEL_BUILD_ARGS).unwrap_or("")
                            == build_args_label =>
                {
                    image["Id"].as_str().unwrap_or("").to_string()
                }
                _ => {
                    self.build_image(client, &action.address, desired, tag, context_hash)
                        .await?
                }
            }
        } else if let Some(reference) = text_attribute(attributes, "reference") {
            return self
                .apply_referenced_image(client, desired, reference)
                .await;
        } else {
            return Err(failed(
                format!("`{}` has neither `tag` nor `reference`", action.address),
                None,
            ));
        };
        Ok(ApplyOutcome::Recorded(recorded_with(
            desired,
            Some(image_id.clone()),
            &[("image_id", Value::text(image_id))],
        )))
    }

    async fn build_image(
        &self,
        client: &DockerClient,
        address: &Address,
        desired: &Resource,
        tag: &str,
        context_hash: &str,
    ) -> Result<String, ProviderError> {
        let written = text_attribute(&desired.attributes, "context")
            .ok_or_else(|| failed(format!("`{address}` has no `context`"), None))?;
        // Contexts are recorded relative to the stack file, so moving the checkout does
        // not change hashes; resolve them against the stack's directory here.
        let context = match &self.options.build_directory {
            Some(base) if std::path::Path::new(written).is_relative() => {
                base.join(written).to_string_lossy().to_string()
            }
            _ => written.to_string(),
        };
        let dockerfile = text_attribute(&desired.attributes, "dockerfile")
            .unwrap_or("Dockerfile")
            .to_string();
        let packed_dockerfile = dockerfile.clone();
        let tarball = tokio::task::spawn_blocking(move || {
            api::context_tarball(std::path::Path::new(&context), &packed_dockerfile)
        })
        .await
        .map_err(|error| failed(format!("packing the build context failed: {error}"), None))?
        .map_err(|error| {
            failed(
                format!("cannot pack the build context of `{address}`: {error}"),
                None,
            )
        })?;
        let build_args = build_args_of(&desired.attributes);
        let mut labels = BTreeMap::from([
            (api::LABEL_STACK.to_string(), self.stack.clone()),
            (api::LABEL_RESOURCE.to_string(), address.to_string()),
            (
                api::LABEL_CONTEXT_HASH.to_string(),
                context_hash.to_string(),
            ),
        ]);
        if !build_args.is_empty() {
            labels.insert(
                api::LABEL_BUILD_ARGS.to_string(),
                build_args_label(&build_args),
            );
        }
        // Builds may take long; the build's own output, streamed, is the progress.
        let response = self
            .send_with_progress(
                client,
                address,
                api::build_image(tag, &dockerfile, &labels, &build_args, tarball),
            )
            .await
            .map_err(from_client)?;
        if let Some(error) = stream_error(&response) {
            return Err(failed(
                format!("building `{tag}` failed: {error}"),
                Some(
                    String::from_utf8_lossy(&response.body)
                        .chars()
                        .rev()
                        .take(4000)
                        .collect::<String>()
                        .chars()
                        .rev()
                        .collect(),
                ),
            ));
        }
        let image = client
            .send_json(api::inspect_image(tag))
            .await
            .map_err(from_client)?;
        Ok(image["Id"].as_str().unwrap_or("").to_string())
    }
}

/// An image resource's `build_args` (name → value); empty when it has none.
pub(crate) fn build_args_of(attributes: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    attributes
        .get("build_args")
        .and_then(Value::as_map)
        .map(|arguments| {
            arguments
                .iter()
                .filter_map(|(name, value)| Some((name.clone(), value.as_text()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The label recording an image's build arguments: canonical JSON, or nothing for none.
pub(crate) fn build_args_label(build_args: &BTreeMap<String, String>) -> String {
    if build_args.is_empty() {
        String::new()
    } else {
        serde_json::to_string(build_args).unwrap_or_default()
    }
}

impl DockerProvider {
    /// A referenced image, by its pull policy (Compose's): `missing` pulls when the host
    /// lacks it, `always` pulls on every apply of the image (the plan shows when the
    /// registry's digest moved), `never` refuses when it is absent.
    async fn apply_referenced_image(
        &self,
        client: &DockerClient,
        desired: &Resource,
        reference: &str,
    ) -> Result<ApplyOutcome, ProviderError> {
        let policy = PullPolicy::of(desired.attributes.get("pull"));
        let existing = client
            .send_raw(api::inspect_image(reference))
            .await
            .map_err(from_client)?;
        let present = existing.is_success();
        let image = match policy {
            PullPolicy::Never | PullPolicy::Missing if present => {
                existing.json().unwrap_or(Json::Null)
            }
            PullPolicy::Never => {
                return Err(ProviderError::Failed {
                    message: format!(
                        "image `{reference}` is not on the host, and `pull = \"never\"` forbids pulling it"
                    ),
                    detail: None,
                    hint: Some(format!(
                        "build or load it on the host (`docker build -t {reference} …`, `docker load`), or set `pull = \"missing\"`"
                    )),
                });
            }
            PullPolicy::Missing | PullPolicy::Always => {
                let auth = self.registry_auth(reference).await?;
                let response = self
                    .send_with_progress(
                        client,
                        &desired.address,
                        api::pull_image(reference).registry_auth(auth),
                    )
                    .await
                    .map_err(from_client)?;
                if let Some(error) = stream_error(&response) {
                    return Err(failed(format!("cannot pull `{reference}`: {error}"), None));
                }
                client
                    .send_json(api::inspect_image(reference))
                    .await
                    .map_err(from_client)?
            }
        };
        let image_id = image["Id"].as_str().unwrap_or("").to_string();
        Ok(ApplyOutcome::Recorded(recorded_with(
            desired,
            Some(image_id.clone()),
            &[
                ("image_id", Value::text(image_id)),
                ("digest", repo_digest(&image)),
            ],
        )))
    }
}

/// How an image is pulled, read from its `pull` attribute (`true`/`false` as recorded by
/// earlier versions mean `missing`/`never`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PullPolicy {
    Missing,
    Always,
    Never,
}

impl PullPolicy {
    pub(crate) fn of(value: Option<&Value>) -> PullPolicy {
        match value {
            Some(Value::Text(text)) if text == "always" => PullPolicy::Always,
            Some(Value::Text(text)) if text == "never" => PullPolicy::Never,
            Some(Value::Bool(false)) => PullPolicy::Never,
            _ => PullPolicy::Missing,
        }
    }
}

/// The registry's digest of a pulled image (`sha256:…` from `RepoDigests`), or null for
/// an image that never came from a registry (built or loaded here).
pub(crate) fn repo_digest(image: &Json) -> Value {
    image["RepoDigests"]
        .as_array()
        .and_then(|digests| digests.first())
        .and_then(Json::as_str)
        .and_then(|text| text.split_once('@'))
        .map_or(Value::Null, |(_, digest)| Value::text(digest))
}

/// The first `error` in a JSON-lines progress stream (build, pull).
fn stream_error(response: &Response) -> Option<String> {
    String::from_utf8_lossy(&response.body)
        .lines()
        .filter_map(|line| serde_json::from_str::<Json>(line).ok())
        .find_map(|line| line["error"].as_str().map(str::to_string))
}
