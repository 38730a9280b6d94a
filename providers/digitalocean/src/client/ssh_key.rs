//! SSH key endpoints: get by id or fingerprint, list, upload, rename, delete.

use reqwest::Method;

use super::{decode_key, Client, ClientError, Idempotence};
use crate::api::SshKey;

impl Client {
    /// By integer id or by fingerprint; `None` when there is no such key.
    pub async fn get_ssh_key(
        &self,
        id_or_fingerprint: &str,
    ) -> Result<Option<SshKey>, ClientError> {
        self.find_object(&format!("/v2/account/keys/{id_or_fingerprint}"), "ssh_key")
            .await
    }

    pub async fn list_ssh_keys(&self) -> Result<Vec<SshKey>, ClientError> {
        self.list_all("/v2/account/keys", &[], "ssh_keys").await
    }

    pub async fn create_ssh_key(
        &self,
        name: &str,
        public_key: &str,
    ) -> Result<SshKey, ClientError> {
        let path = "/v2/account/keys";
        let body = serde_json::json!({ "name": name, "public_key": public_key });
        let answer = self
            .send(Method::POST, path, Some(&body), Idempotence::NotIdempotent)
            .await?;
        decode_key(&answer.body, "ssh_key", "POST", path)
    }

    /// Renames a key (`PUT /v2/account/keys/{id}`, outside the contract subset).
    pub async fn rename_ssh_key(&self, id: i64, name: &str) -> Result<SshKey, ClientError> {
        let path = format!("/v2/account/keys/{id}");
        let body = serde_json::json!({ "name": name });
        let answer = self
            .send(Method::PUT, &path, Some(&body), Idempotence::Idempotent)
            .await?;
        decode_key(&answer.body, "ssh_key", "PUT", &path)
    }

    pub async fn delete_ssh_key(&self, id_or_fingerprint: &str) -> Result<bool, ClientError> {
        self.delete(&format!("/v2/account/keys/{id_or_fingerprint}"), None)
            .await
    }
}
