//! The run's security report: every provider's live facts, the stack's reasons for its
//! exceptions, written to the run folder as `security.json` and `security.txt`.

use std::collections::BTreeMap;

use stackctl_provider::{EdgeTlsReport, Value};

use super::Session;
use crate::apply::runs::RunFolder;
use crate::apply::security_report::{build, SecurityReport};

impl Session {
    /// Reads the facts from every provider that runs containers and writes the report,
    /// with the edge's TLS as probed in this run (`tls`), into `folder`. Returns the report, or why it could not be made (the daemon did not
    /// answer, a file could not be written): a report never fails the run that makes it.
    pub(super) async fn write_security_report(
        &self,
        folder: &RunFolder,
        tls: Option<&EdgeTlsReport>,
    ) -> Result<SecurityReport, String> {
        let facts = self.read_security_facts().await?;
        self.write_security_report_of(folder, &facts, tls)
    }

    /// Every provider's security facts (those that run containers), read at once.
    pub(super) async fn read_security_facts(&self) -> Result<Vec<serde_json::Value>, String> {
        let read = futures::future::join_all(
            self.backends
                .providers
                .all()
                .map(|provider| async { (provider.name(), provider.security_facts().await) }),
        )
        .await;
        let mut facts = Vec::new();
        for (name, result) in read {
            if let Some(result) = result {
                facts.push(result.map_err(|error| {
                    format!("the security report could not read the {name} target: {error}")
                })?);
            }
        }
        Ok(facts)
    }

    /// Writes the report made of `facts` (read by [`Session::read_security_facts`]) and
    /// the stack's reasons for its exceptions into `folder`.
    pub(super) fn write_security_report_of(
        &self,
        folder: &RunFolder,
        facts: &[serde_json::Value],
        tls: Option<&EdgeTlsReport>,
    ) -> Result<SecurityReport, String> {
        let reasons: BTreeMap<String, String> = self
            .desired
            .iter()
            .filter_map(|resource| {
                let reason = resource
                    .attributes
                    .get("security_reason")
                    .and_then(Value::as_text)?;
                Some((resource.address.to_string(), reason.to_string()))
            })
            .collect();
        let report = build(self.stack(), facts, &reasons, tls);
        let json = serde_json::to_string_pretty(&report.document).unwrap_or_default() + "\n";
        for (name, contents) in [
            ("security.json", json.as_str()),
            ("security.txt", report.text.as_str()),
        ] {
            folder
                .write(name, contents.as_bytes())
                .map_err(|error| format!("cannot write `{name}` in the run folder: {error}"))?;
        }
        Ok(report)
    }
}
