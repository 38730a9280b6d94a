//! DNS records: read back per domain, created (with their zone when it is missing,
//! remembered so the zone can go again with the last record) and updated in place.

use std::collections::BTreeMap;

use stackctl_provider::{
    Attributes, LiveResource, ProviderError, ReadRequest, RecordedResource, Resource, Value,
};

use super::attributes::{text_of, with_computed};
use super::entries::{entries_of_kind, Entry};
use super::{failed, DigitalOceanProvider, DNS_RECORD};
use crate::api::DomainRecordRequest;

pub(super) fn record_attributes(
    domain: &str,
    record: &crate::api::DomainRecord,
    reference: Option<&Attributes>,
) -> Attributes {
    let mut attributes = Attributes::new();
    attributes.insert("domain".into(), Value::text(domain));
    attributes.insert("type".into(), Value::text(&record.kind));
    attributes.insert("name".into(), Value::text(&record.name));
    attributes.insert("data".into(), Value::text(&record.data));
    attributes.insert("ttl".into(), Value::Integer(record.ttl.unwrap_or(1800)));
    attributes.insert("id".into(), Value::text(record.id.to_string()));
    if let Some(flag) = reference.and_then(|reference| reference.get("domain_created")) {
        attributes.insert("domain_created".into(), flag.clone());
    }
    attributes
}

pub(super) fn record_request(
    desired: &Resource,
) -> Result<(String, DomainRecordRequest), ProviderError> {
    let attributes = &desired.attributes;
    let required = |name: &str| {
        text_of(attributes.get(name))
            .ok_or_else(|| ProviderError::failed(format!("`{}` has no `{name}`", desired.address)))
    };
    let kind = required("type")?.to_uppercase();
    if !["A", "AAAA", "CNAME", "TXT"].contains(&kind.as_str()) {
        return Err(ProviderError::failed(format!(
            "`{}`: record type `{kind}` is not supported (A, AAAA, CNAME, TXT)",
            desired.address
        )));
    }
    Ok((
        required("domain")?,
        DomainRecordRequest {
            kind,
            name: required("name")?,
            data: required("data")?,
            ttl: attributes
                .get("ttl")
                .and_then(Value::as_integer)
                .unwrap_or(1800),
        },
    ))
}

/// Which live record an address refers to: its recorded id, else the record of the
/// same type and name (preferring the same data when several share a name).
pub(super) fn pick_record<'a>(
    records: &'a [crate::api::DomainRecord],
    recorded_id: Option<&str>,
    desired: Option<&Attributes>,
) -> Option<&'a crate::api::DomainRecord> {
    if let Some(id) = recorded_id.and_then(|id| id.parse::<i64>().ok()) {
        return records.iter().find(|record| record.id == id);
    }
    let desired = desired?;
    let kind = text_of(desired.get("type"))?.to_uppercase();
    let name = text_of(desired.get("name"))?;
    let data = text_of(desired.get("data"));
    let candidates: Vec<_> = records
        .iter()
        .filter(|record| record.kind == kind && record.name == name)
        .collect();
    candidates
        .iter()
        .find(|record| Some(&record.data) == data.as_ref())
        .or(candidates.first())
        .copied()
}

/// Accepts `<domain>/<id>` or a bare id (the domain then comes from stack.toml).
pub(super) fn split_record_id(
    id: &str,
    desired: Option<&Resource>,
) -> Result<(String, i64), ProviderError> {
    let (domain, number) = match id.split_once('/') {
        Some((domain, number)) => (domain.to_string(), number),
        None => (
            desired
                .and_then(|desired| text_of(desired.attributes.get("domain")))
                .ok_or_else(|| {
                    ProviderError::failed(format!("import a record as `<domain>/<id>`; got `{id}`"))
                })?,
            id,
        ),
    };
    let number = number
        .parse::<i64>()
        .map_err(|_| ProviderError::failed(format!("`{number}` is not a record id")))?;
    Ok((domain, number))
}

impl DigitalOceanProvider {
    pub(super) async fn read_records(
        &self,
        request: &ReadRequest,
        found: &mut Vec<LiveResource>,
    ) -> Result<(), ProviderError> {
        let entries = entries_of_kind(request, DNS_RECORD);
        let mut by_domain: BTreeMap<String, Vec<Entry<'_>>> = BTreeMap::new();
        for entry in entries {
            let Some(domain) = entry
                .reference()
                .and_then(|reference| text_of(reference.get("domain")))
            else {
                continue;
            };
            by_domain.entry(domain).or_default().push(entry);
        }
        for (domain, entries) in by_domain {
            let Some(records) =
                self.client.list_records(&domain).await.map_err(|error| {
                    failed(&format!("cannot list the records of {domain}"), error)
                })?
            else {
                continue;
            };
            for entry in entries {
                let recorded_id = entry.recorded.and_then(|recorded| recorded.id.as_deref());
                let desired = entry.desired.map(|desired| &desired.attributes);
                if let Some(record) = pick_record(&records, recorded_id, desired) {
                    found.push(LiveResource {
                        address: entry.address.clone(),
                        id: Some(record.id.to_string()),
                        attributes: record_attributes(&domain, record, entry.reference()),
                        // The stack declares this name in its domain; records carry no tags.
                        owned: true,
                    });
                }
            }
        }
        Ok(())
    }

    /// Makes sure the zone exists; true when this call created it.
    pub(super) async fn ensure_domain(&self, domain: &str) -> Result<bool, ProviderError> {
        let exists = self
            .client
            .get_domain(domain)
            .await
            .map_err(|error| failed(&format!("cannot read domain {domain}"), error))?;
        if exists.is_some() {
            return Ok(false);
        }
        match self.client.create_domain(domain).await {
            Ok(_) => Ok(true),
            // Lost answer or a parallel creator: the domain may exist now, which is fine.
            Err(error) => match self.client.get_domain(domain).await {
                Ok(Some(_)) => Ok(true),
                _ => Err(failed(&format!("cannot create domain {domain}"), error)),
            },
        }
    }

    pub(super) async fn create_record(
        &self,
        desired: &Resource,
    ) -> Result<RecordedResource, ProviderError> {
        let (domain, request) = record_request(desired)?;
        let domain_created = self.ensure_domain(&domain).await?;
        let (record, _) = self
            .client
            .create_without_duplicates(
                "dns record",
                || self.client.create_record(&domain, &request),
                || async {
                    let records = self
                        .client
                        .find_records(&domain, &request.kind, &request.name)
                        .await?;
                    Ok(records
                        .into_iter()
                        .find(|record| record.data == request.data))
                },
            )
            .await
            .map_err(|error| {
                failed(
                    &format!(
                        "cannot create {} record `{}` in {domain}",
                        request.kind, request.name
                    ),
                    error,
                )
            })?;
        let mut computed =
            Attributes::from([("id".to_string(), Value::text(record.id.to_string()))]);
        if domain_created {
            computed.insert("domain_created".into(), Value::Bool(true));
        }
        Ok(with_computed(desired, record.id.to_string(), computed))
    }

    pub(super) async fn update_record(
        &self,
        desired: &Resource,
        prior: Option<&RecordedResource>,
        id: i64,
    ) -> Result<RecordedResource, ProviderError> {
        let (domain, request) = record_request(desired)?;
        let record = self
            .client
            .update_record(&domain, id, &request)
            .await
            .map_err(|error| failed(&format!("cannot update record {id} in {domain}"), error))?;
        let mut computed =
            Attributes::from([("id".to_string(), Value::text(record.id.to_string()))]);
        if let Some(flag) = prior.and_then(|prior| prior.attributes.get("domain_created")) {
            computed.insert("domain_created".into(), flag.clone());
        }
        Ok(with_computed(desired, record.id.to_string(), computed))
    }

    /// Removes a zone stackctl created once only DigitalOcean's own NS/SOA records remain.
    pub(super) async fn delete_domain_if_empty(&self, domain: &str) -> Result<(), ProviderError> {
        let records = self
            .client
            .list_records(domain)
            .await
            .map_err(|error| failed(&format!("cannot list the records of {domain}"), error))?;
        let only_own = records
            .unwrap_or_default()
            .iter()
            .all(|record| record.kind == "NS" || record.kind == "SOA");
        if only_own {
            self.client
                .delete_domain(domain)
                .await
                .map_err(|error| failed(&format!("cannot delete domain {domain}"), error))?;
        }
        Ok(())
    }
}
