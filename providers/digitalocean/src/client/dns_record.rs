//! Domain and DNS record endpoints: domains (get, create, delete) and their records
//! (list, find by type and name, get, create, update, delete).

use reqwest::Method;

use super::{decode_key, to_json, Client, ClientError, Idempotence};
use crate::api::{Domain, DomainRecord, DomainRecordRequest};

impl Client {
    pub async fn get_domain(&self, name: &str) -> Result<Option<Domain>, ClientError> {
        self.find_object(&format!("/v2/domains/{name}"), "domain")
            .await
    }

    /// Creating a domain twice fails with 422 rather than duplicating it, so a retry
    /// after an ambiguous failure is harmless; the caller re-reads on any error.
    pub async fn create_domain(&self, name: &str) -> Result<Domain, ClientError> {
        let path = "/v2/domains";
        let body = serde_json::json!({ "name": name });
        let answer = self
            .send(Method::POST, path, Some(&body), Idempotence::NotIdempotent)
            .await?;
        decode_key(&answer.body, "domain", "POST", path)
    }

    pub async fn delete_domain(&self, name: &str) -> Result<bool, ClientError> {
        self.delete(&format!("/v2/domains/{name}"), None).await
    }

    /// Every record of a domain; `None` when the domain does not exist.
    pub async fn list_records(
        &self,
        domain: &str,
    ) -> Result<Option<Vec<DomainRecord>>, ClientError> {
        match self
            .list_all(
                &format!("/v2/domains/{domain}/records"),
                &[],
                "domain_records",
            )
            .await
        {
            Ok(records) => Ok(Some(records)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Records of one type and relative name (the filter takes the fully qualified name).
    pub async fn find_records(
        &self,
        domain: &str,
        kind: &str,
        relative_name: &str,
    ) -> Result<Vec<DomainRecord>, ClientError> {
        let fully_qualified = if relative_name == "@" {
            domain.to_string()
        } else {
            format!("{relative_name}.{domain}")
        };
        self.list_all(
            &format!("/v2/domains/{domain}/records"),
            &[("type", kind), ("name", &fully_qualified)],
            "domain_records",
        )
        .await
    }

    pub async fn get_record(
        &self,
        domain: &str,
        id: i64,
    ) -> Result<Option<DomainRecord>, ClientError> {
        self.find_object(
            &format!("/v2/domains/{domain}/records/{id}"),
            "domain_record",
        )
        .await
    }

    pub async fn create_record(
        &self,
        domain: &str,
        request: &DomainRecordRequest,
    ) -> Result<DomainRecord, ClientError> {
        let path = format!("/v2/domains/{domain}/records");
        let body = to_json(request)?;
        let answer = self
            .send(Method::POST, &path, Some(&body), Idempotence::NotIdempotent)
            .await?;
        decode_key(&answer.body, "domain_record", "POST", &path)
    }

    pub async fn update_record(
        &self,
        domain: &str,
        id: i64,
        request: &DomainRecordRequest,
    ) -> Result<DomainRecord, ClientError> {
        let path = format!("/v2/domains/{domain}/records/{id}");
        let body = to_json(request)?;
        let answer = self
            .send(Method::PUT, &path, Some(&body), Idempotence::Idempotent)
            .await?;
        decode_key(&answer.body, "domain_record", "PUT", &path)
    }

    pub async fn delete_record(&self, domain: &str, id: i64) -> Result<bool, ClientError> {
        self.delete(&format!("/v2/domains/{domain}/records/{id}"), None)
            .await
    }
}
