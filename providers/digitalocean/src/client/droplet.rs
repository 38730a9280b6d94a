//! Droplet endpoints: list by tag or name, get, create, delete, actions, waiting for a
//! new droplet to be ready, and tagging through the tags API.

use std::time::Instant;

use reqwest::Method;
use serde_json::Value as Json;

use super::{decode_key, Client, ClientError, Idempotence, PollPolicy};
use crate::api::{Action, Droplet};

impl Client {
    pub async fn list_droplets_by_tag(&self, tag: &str) -> Result<Vec<Droplet>, ClientError> {
        self.list_all("/v2/droplets", &[("tag_name", tag)], "droplets")
            .await
    }

    pub async fn list_droplets_by_name(&self, name: &str) -> Result<Vec<Droplet>, ClientError> {
        self.list_all("/v2/droplets", &[("name", name)], "droplets")
            .await
    }

    pub async fn get_droplet(&self, id: i64) -> Result<Option<Droplet>, ClientError> {
        self.find_object(&format!("/v2/droplets/{id}"), "droplet")
            .await
    }

    /// One create attempt. Returns the droplet and the id of its `create` action.
    pub async fn create_droplet(&self, body: &Json) -> Result<(Droplet, Option<i64>), ClientError> {
        let path = "/v2/droplets";
        let answer = self
            .send(Method::POST, path, Some(body), Idempotence::NotIdempotent)
            .await?;
        let droplet = decode_key(&answer.body, "droplet", "POST", path)?;
        let action_id = answer
            .body
            .pointer("/links/actions/0/id")
            .and_then(Json::as_i64);
        Ok((droplet, action_id))
    }

    /// Returns false when the droplet was already gone.
    pub async fn delete_droplet(&self, id: i64) -> Result<bool, ClientError> {
        self.delete(&format!("/v2/droplets/{id}"), None).await
    }

    /// Starts a droplet action (`power_off`, `resize`, …). A lost answer is not retried
    /// here: a second action on a droplet still running the first is refused (422), so
    /// the caller watches the droplet instead.
    pub async fn droplet_action(&self, id: i64, body: &Json) -> Result<Action, ClientError> {
        let path = format!("/v2/droplets/{id}/actions");
        let answer = self
            .send(Method::POST, &path, Some(body), Idempotence::NotIdempotent)
            .await?;
        decode_key(&answer.body, "action", "POST", &path)
    }

    pub async fn get_action(&self, id: i64) -> Result<Action, ClientError> {
        self.get_object(&format!("/v2/actions/{id}"), "action")
            .await
    }

    /// Polls a droplet until it is active with a public IPv4 address.
    pub async fn wait_for_droplet_ready(
        &self,
        id: i64,
        poll: &PollPolicy,
    ) -> Result<Droplet, ClientError> {
        let started = Instant::now();
        loop {
            let droplet = self.get_droplet(id).await?.ok_or_else(|| {
                ClientError::Failed(format!("droplet {id} disappeared while starting"))
            })?;
            if droplet.status == "active" && droplet.public_ipv4().is_some() {
                return Ok(droplet);
            }
            let pause = self.poll_pause(poll);
            if started.elapsed() + pause > poll.timeout {
                return Err(ClientError::Timeout(format!(
                    "droplet {id} is still `{}` without a public IPv4 address after {:?}",
                    droplet.status,
                    started.elapsed()
                )));
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Adds or removes one tag on a droplet through the tags API (outside the contract
    /// subset). Creating a tag that exists is harmless, so it is always created first.
    pub async fn tag_droplet(
        &self,
        tag: &str,
        droplet_id: i64,
        add: bool,
    ) -> Result<(), ClientError> {
        if add {
            let body = serde_json::json!({ "name": tag });
            self.send(
                Method::POST,
                "/v2/tags",
                Some(&body),
                Idempotence::Idempotent,
            )
            .await?;
        }
        let path = format!(
            "/v2/tags/{}/resources",
            form_urlencoded::byte_serialize(tag.as_bytes()).collect::<String>()
        );
        let body = serde_json::json!({
            "resources": [{ "resource_id": droplet_id.to_string(), "resource_type": "droplet" }]
        });
        let method = if add { Method::POST } else { Method::DELETE };
        self.send(method, &path, Some(&body), Idempotence::Idempotent)
            .await?;
        Ok(())
    }
}
