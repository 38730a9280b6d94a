//! Cloud firewall endpoints: list, get, create, whole-object update, delete.

use reqwest::Method;

use super::{decode_key, to_json, Client, ClientError, Idempotence};
use crate::api::{Firewall, FirewallRequest};

impl Client {
    pub async fn list_firewalls(&self) -> Result<Vec<Firewall>, ClientError> {
        self.list_all("/v2/firewalls", &[], "firewalls").await
    }

    pub async fn get_firewall(&self, id: &str) -> Result<Option<Firewall>, ClientError> {
        self.find_object(&format!("/v2/firewalls/{id}"), "firewall")
            .await
    }

    pub async fn create_firewall(
        &self,
        request: &FirewallRequest,
    ) -> Result<Firewall, ClientError> {
        let path = "/v2/firewalls";
        let body = to_json(request)?;
        let answer = self
            .send(Method::POST, path, Some(&body), Idempotence::NotIdempotent)
            .await?;
        decode_key(&answer.body, "firewall", "POST", path)
    }

    /// Whole-object replacement: anything not in `request` is reset by DigitalOcean.
    pub async fn update_firewall(
        &self,
        id: &str,
        request: &FirewallRequest,
    ) -> Result<Firewall, ClientError> {
        let path = format!("/v2/firewalls/{id}");
        let body = to_json(request)?;
        let answer = self
            .send(Method::PUT, &path, Some(&body), Idempotence::Idempotent)
            .await?;
        decode_key(&answer.body, "firewall", "PUT", &path)
    }

    pub async fn delete_firewall(&self, id: &str) -> Result<bool, ClientError> {
        self.delete(&format!("/v2/firewalls/{id}"), None).await
    }
}
