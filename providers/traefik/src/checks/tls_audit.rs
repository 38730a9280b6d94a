//! The TLS audit of the edge: every version below the configured minimum is offered on
//! its own and must be refused ([`super::tls_probe`]), one normal HTTPS request reports
//! what a current client negotiates (version, cipher suite, certificate issuer), and its
//! answer must carry HSTS with at least the `max-age` the stack promises.

use std::time::Duration;

use stackctl_provider::{EdgeTlsReport, HstsFinding, NegotiatedTls, VersionProbe};

use super::tls_probe::{probe_version, TlsVersion};
use super::{parse_target, resolve_address, run_check, Check, CheckOptions, StatusExpectation};

/// What to audit.
#[derive(Clone, Debug)]
pub struct TlsAuditTarget {
    /// An HTTPS URL a route serves (its host is the SNI and `Host`).
    pub url: String,
    /// The edge's configured minimum.
    pub minimum: TlsVersion,
    /// The `max-age` the route's headers middleware promises, if it promises HSTS.
    pub expected_hsts_max_age: Option<u64>,
}

/// Probes the edge (see the module documentation). `options` decide where requests go
/// (`resolve`), certificate trust, and the retries of the normal request, which runs
/// first so the probes meet an edge that is already answering.
pub async fn audit_tls(target: &TlsAuditTarget, options: &CheckOptions) -> EdgeTlsReport {
    let check = Check::get("tls", target.url.clone(), 200).expecting(StatusExpectation::Any);
    let result = run_check(&check, options).await;
    let negotiated = match &result.tls {
        Some(tls) => NegotiatedTls {
            version: tls.protocol.as_deref().map(protocol_label),
            cipher_suite: tls.cipher_suite.clone(),
            certificate_subject: tls.subject.clone(),
            certificate_issuer: tls.issuer.clone(),
            certificate_not_after: tls.not_after.clone(),
            self_signed: tls.self_signed,
            trusted: tls.trusted,
            error: result.error.clone(),
        },
        None => NegotiatedTls {
            error: result.error.clone(),
            ..NegotiatedTls::default()
        },
    };
    let hsts = hsts_finding(
        result
            .headers
            .get("strict-transport-security")
            .map(String::as_str),
        target.expected_hsts_max_age,
    );

    let parsed = parse_target(&target.url);
    let mut endpoint = String::new();
    let mut server_name = String::new();
    let mut below_minimum = Vec::new();
    let mut failures = Vec::new();
    match parsed {
        Ok(parsed) => {
            server_name = parsed.host.clone();
            match resolve_address(&parsed, &options.resolve).await {
                Ok(destination) => {
                    endpoint = destination.to_string();
                    for version in target.minimum.below() {
                        let (refused, answer) = probe_version(
                            destination,
                            &parsed.host,
                            version,
                            options.timeout.min(Duration::from_secs(10)),
                        )
                        .await;
                        below_minimum.push(VersionProbe {
                            version: version.label().to_string(),
                            refused,
                            passed: refused,
                            answer,
                        });
                    }
                }
                Err(error) => failures.push(error),
            }
        }
        Err(error) => failures.push(error),
    }

    for probe in &below_minimum {
        if !probe.passed {
            failures.push(format!(
                "{} is below the minimum {} but was not refused: {}",
                probe.version,
                target.minimum.label(),
                probe.answer
            ));
        }
    }
    if let Some(error) = &negotiated.error {
        failures.push(format!("no HTTPS answer from {}: {error}", target.url));
    } else if negotiated
        .version
        .as_deref()
        .and_then(version_from_label)
        .is_some_and(|version| version < target.minimum)
    {
        failures.push(format!(
            "a current client negotiated {}, below the minimum {}",
            negotiated.version.as_deref().unwrap_or("?"),
            target.minimum.label()
        ));
    }
    let mut warnings = Vec::new();
    match (&hsts.header, hsts.expected_max_age, hsts.passed) {
        (_, _, true) => {}
        (None, None, _) => warnings.push(format!(
            "{} has no Strict-Transport-Security header: browsers may still try plain HTTP first; add a headers middleware with `hsts_seconds` to the route",
            target.url
        )),
        (None, Some(expected), _) => failures.push(format!(
            "{} has no Strict-Transport-Security header, though the stack promises max-age={expected}",
            target.url
        )),
        (Some(header), expected, _) => failures.push(format!(
            "{} sends Strict-Transport-Security `{header}`, expected max-age={}",
            target.url,
            expected.unwrap_or(1)
        )),
    }
    EdgeTlsReport {
        endpoint,
        server_name,
        minimum_version: target.minimum.label().to_string(),
        passed: failures.is_empty(),
        below_minimum,
        negotiated,
        hsts,
        failures,
        warnings,
    }
}

/// rustls' `TLSv1_3` as `TLS 1.3`.
fn protocol_label(protocol: &str) -> String {
    match protocol {
        "TLSv1_0" => "TLS 1.0",
        "TLSv1_1" => "TLS 1.1",
        "TLSv1_2" => "TLS 1.2",
        "TLSv1_3" => "TLS 1.3",
        other => other,
    }
    .to_string()
}

fn version_from_label(label: &str) -> Option<TlsVersion> {
    [
        TlsVersion::Tls10,
        TlsVersion::Tls11,
        TlsVersion::Tls12,
        TlsVersion::Tls13,
    ]
    .into_iter()
    .find(|version| version.label() == label)
}

/// Reads a `Strict-Transport-Security` value against the promised `max-age`: it passes
/// when present with at least that age (any positive age when nothing is promised).
pub fn hsts_finding(header: Option<&str>, expected_max_age: Option<u64>) -> HstsFinding {
    let mut finding = HstsFinding {
        header: header.map(str::to_string),
        expected_max_age,
        ..HstsFinding::default()
    };
    let Some(header) = header else {
        return finding;
    };
    for directive in header.split(';') {
        let directive = directive.trim();
        let lower = directive.to_ascii_lowercase();
        if let Some(age) = lower.strip_prefix("max-age=") {
            finding.max_age = age.trim_matches('"').parse().ok();
        } else if lower == "includesubdomains" {
            finding.include_subdomains = true;
        } else if lower == "preload" {
            finding.preload = true;
        }
    }
    finding.passed = finding
        .max_age
        .is_some_and(|age| age >= expected_max_age.unwrap_or(1));
    finding
}

/// One line per finding for people: (passed, line without the `ok`/`FAIL` marker).
pub fn report_lines(report: &EdgeTlsReport) -> Vec<(bool, String)> {
    let mut lines = Vec::new();
    for probe in &report.below_minimum {
        let verb = if probe.refused {
            "refused"
        } else {
            "NOT refused"
        };
        lines.push((
            probe.passed,
            format!(
                "tls: {} {verb} by {} ({})",
                probe.version, report.endpoint, probe.answer
            ),
        ));
    }
    let negotiated = &report.negotiated;
    let negotiated_line = match &negotiated.error {
        Some(error) => format!(
            "tls: no HTTPS handshake with {}: {error}",
            report.server_name
        ),
        None => format!(
            "tls: {} negotiates {} with {}, certificate {} issued by {}{}",
            report.server_name,
            negotiated.version.as_deref().unwrap_or("?"),
            negotiated.cipher_suite.as_deref().unwrap_or("?"),
            negotiated.certificate_subject.as_deref().unwrap_or("?"),
            negotiated.certificate_issuer.as_deref().unwrap_or("?"),
            if negotiated.trusted {
                ""
            } else {
                " (not publicly trusted)"
            }
        ),
    };
    let negotiated_ok = negotiated.error.is_none()
        && !report
            .failures
            .iter()
            .any(|failure| failure.starts_with("a current client negotiated"));
    lines.push((negotiated_ok, negotiated_line));
    let hsts = &report.hsts;
    let hsts_ok = hsts.passed || (hsts.header.is_none() && hsts.expected_max_age.is_none());
    let hsts_line = match &hsts.header {
        Some(header) => format!("tls: HSTS `{header}`"),
        None => "tls: no HSTS header".to_string(),
    };
    lines.push((hsts_ok, hsts_line));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsts_is_read_and_held_to_the_promised_age() {
        let finding = hsts_finding(
            Some("max-age=31536000; includeSubDomains; preload"),
            Some(31536000),
        );
        assert!(finding.passed && finding.include_subdomains && finding.preload);
        assert_eq!(finding.max_age, Some(31536000));
        assert!(!hsts_finding(Some("max-age=60"), Some(31536000)).passed);
        assert!(!hsts_finding(Some("max-age=0"), None).passed);
        assert!(hsts_finding(Some("max-age=60"), None).passed);
        let missing = hsts_finding(None, Some(60));
        assert!(!missing.passed && missing.max_age.is_none());
    }

    #[test]
    fn protocol_names_read_as_people_write_them() {
        assert_eq!(protocol_label("TLSv1_3"), "TLS 1.3");
        assert_eq!(version_from_label("TLS 1.2"), Some(TlsVersion::Tls12));
    }
}
