//! Pruning the stack's old images after a successful apply: the images of the last few
//! applies stay on the host for `stackctl rollback`; older ones stackctl built for this
//! stack (labelled `stackctl.stack=<stack>`) go. Images of other stacks, and images
//! stackctl did not build (a pulled `postgres:16`), are never listed, so never removed.

use std::collections::BTreeSet;

use serde_json::Value as Json;
use stackctl_provider::{ApplyContext, ProviderError};

use crate::api;
use crate::labels::label;
use crate::provider::DockerProvider;
use crate::provider_error::{failed, from_client};

impl DockerProvider {
    pub(crate) async fn prune_stack_images(
        &self,
        context: &ApplyContext,
        keep: &BTreeSet<String>,
    ) -> Result<Vec<String>, ProviderError> {
        let client = self.client_for_apply(context).await?;
        let listed = client
            .send_json(api::list_stack_images(&context.stack))
            .await
            .map_err(from_client)?;
        // Decided beside the retirement of replaced containers, removed after it: an image
        // only a replaced container used can then go in this run.
        self.background.until_retired().await;
        let mut removed = Vec::new();
        for (id, name) in images_to_prune(&listed, &context.stack, keep) {
            let response = client
                .send_raw(api::remove_image_by_id(&id))
                .await
                .map_err(from_client)?;
            // 409: a container (a stopped one kept for evidence, say) still uses it; it
            // stays, and the next apply tries again.
            if response.is_success() {
                removed.push(name);
            } else if response.status != 404 && response.status != 409 {
                return Err(failed(
                    format!(
                        "cannot remove the old image `{name}`: the daemon answered {}: {}",
                        response.status,
                        response.error_message()
                    ),
                    None,
                ));
            }
        }
        Ok(removed)
    }
}

/// The images of `listed` (`GET /images/json`) to remove: labelled as this stack's, and
/// not among `keep`. Each with its id and a name to show (its first tag, else its id).
fn images_to_prune(listed: &Json, stack: &str, keep: &BTreeSet<String>) -> Vec<(String, String)> {
    listed
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        // The daemon filtered by label already; checked again, since removing another
        // stack's image would be the one unforgivable mistake here.
        .filter(|image| label(image, api::LABEL_STACK) == Some(stack))
        .filter_map(|image| {
            let id = image["Id"].as_str()?.to_string();
            if keep.contains(&id) {
                return None;
            }
            let name = image["RepoTags"]
                .as_array()
                .and_then(|tags| tags.first())
                .and_then(Json::as_str)
                .filter(|tag| *tag != "<none>:<none>")
                .map_or_else(|| id.clone(), str::to_string);
            Some((id, name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_stacks_images_outside_the_kept_ones_are_pruned() {
        let listed = serde_json::json!([
            {"Id": "sha256:new", "RepoTags": ["shop/web:new"], "Labels": {"stackctl.stack": "shop"}},
            {"Id": "sha256:old", "RepoTags": ["shop/web:old"], "Labels": {"stackctl.stack": "shop"}},
            {"Id": "sha256:untagged", "RepoTags": ["<none>:<none>"], "Labels": {"stackctl.stack": "shop"}},
            {"Id": "sha256:other", "RepoTags": ["blog/web:1"], "Labels": {"stackctl.stack": "blog"}},
            {"Id": "sha256:pulled", "RepoTags": ["postgres:16"], "Labels": null}
        ]);
        let keep: BTreeSet<String> = ["sha256:new".to_string()].into();
        assert_eq!(
            images_to_prune(&listed, "shop", &keep),
            vec![
                ("sha256:old".to_string(), "shop/web:old".to_string()),
                ("sha256:untagged".to_string(), "sha256:untagged".to_string()),
            ]
        );
    }
}
