//! The TLS side of checks: a certificate verifier that records what the server
//! presented and whether it is trusted, and a small reader of X.509 names and dates.
//!
//! A check against a fresh edge meets Traefik's self-signed default certificate, or a
//! Let's Encrypt *staging* certificate, neither of which chains to a public root. The
//! verifier here always runs the normal WebPKI verification (Mozilla's roots) and keeps
//! the verdict; only when the caller explicitly chose [`super::TlsTrust::AcceptUntrusted`]
//! does it let an untrusted handshake continue, and the report then says so. The
//! handshake signatures are verified either way, so the connection is still bound to the
//! certificate that is reported.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// What the verifier saw during one handshake.
#[derive(Clone, Debug)]
pub(crate) struct Observation {
    pub end_entity: Vec<u8>,
    /// `Err` carries the reason the certificate is not trusted.
    pub verdict: Result<(), String>,
}

#[derive(Debug)]
pub(crate) struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    accept_untrusted: bool,
    observed: Mutex<Option<Observation>>,
}

impl RecordingVerifier {
    pub fn new(provider: Arc<CryptoProvider>, accept_untrusted: bool) -> Result<Self, String> {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|error| format!("cannot build the certificate verifier: {error}"))?;
        Ok(RecordingVerifier {
            inner,
            accept_untrusted,
            observed: Mutex::new(None),
        })
    }

    pub fn observation(&self) -> Option<Observation> {
        self.observed
            .lock()
            .ok()
            .and_then(|observed| observed.clone())
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if let Ok(mut observed) = self.observed.lock() {
            *observed = Some(Observation {
                end_entity: end_entity.as_ref().to_vec(),
                verdict: verdict
                    .as_ref()
                    .map(|_| ())
                    .map_err(|error| error.to_string()),
            });
        }
        match verdict {
            Ok(verified) => Ok(verified),
            Err(_) if self.accept_untrusted => Ok(ServerCertVerified::assertion()),
            Err(error) => Err(error),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The parts of a certificate a person reads to recognise it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateSummary {
    /// `CN=TRAEFIK DEFAULT CERT`, `CN=example.com`, in the order the certificate lists them.
    pub subject: String,
    pub issuer: String,
    /// RFC 3339 UTC, e.g. `2026-11-26T19:45:33Z`.
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    /// Serial number in hex.
    pub serial: String,
}

/// Reads subject, issuer, validity and serial from a DER certificate; `None` when the
/// bytes are not a certificate this reader understands.
pub fn summarize_certificate(der: &[u8]) -> Option<CertificateSummary> {
    let (certificate, _) = read_element(der, 0x30)?;
    let (tbs, _) = read_element(certificate, 0x30)?;
    let mut rest = tbs;
    // version [0] EXPLICIT, optional.
    if rest.first() == Some(&0xA0) {
        rest = read_element(rest, 0xA0)?.1;
    }
    let (serial, after_serial) = read_element(rest, 0x02)?;
    let (_signature_algorithm, after_algorithm) = read_element(after_serial, 0x30)?;
    let (issuer, after_issuer) = read_element(after_algorithm, 0x30)?;
    let (validity, after_validity) = read_element(after_issuer, 0x30)?;
    let (subject, _) = read_element(after_validity, 0x30)?;
    let (not_before, after_not_before) = read_time(validity)?;
    let (not_after, _) = read_time(after_not_before)?;
    Some(CertificateSummary {
        subject: read_name(subject)?,
        issuer: read_name(issuer)?,
        not_before,
        not_after,
        serial: hex::encode(serial),
    })
}

/// Reads one DER element with the expected tag: its contents and what follows it.
fn read_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, contents, rest) = read_any(input)?;
    (found == tag).then_some((contents, rest))
}

/// Reads one DER element of any tag: (tag, contents, rest).
fn read_any(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    let first_length = *input.get(1)?;
    let (length, header) = if first_length < 0x80 {
        (usize::from(first_length), 2)
    } else {
        let count = usize::from(first_length & 0x7F);
        // Certificates never need more than four length bytes; refusing more keeps the
        // arithmetic below from overflowing.
        if count == 0 || count > 4 {
            return None;
        }
        let mut length = 0usize;
        for position in 0..count {
            length = (length << 8) | usize::from(*input.get(2 + position)?);
        }
        (length, 2 + count)
    };
    let end = header.checked_add(length)?;
    if end > input.len() {
        return None;
    }
    Some((tag, &input[header..end], &input[end..]))
}

fn read_time(input: &[u8]) -> Option<(Option<String>, &[u8])> {
    let (tag, contents, rest) = read_any(input)?;
    let text = std::str::from_utf8(contents).ok()?;
    let digits = text.strip_suffix('Z').unwrap_or(text);
    // Only plain ASCII digits are sliced below (a multi-byte character would not split).
    if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Some((None, rest));
    }
    let formatted = match (tag, digits.len()) {
        // UTCTime YYMMDDHHMMSS: years 50–99 are 19xx (RFC 5280).
        (0x17, 12) => {
            let year: u32 = digits[0..2].parse().ok()?;
            let century = if year >= 50 { 1900 } else { 2000 };
            Some(format_time(century + year, &digits[2..]))
        }
        // GeneralizedTime YYYYMMDDHHMMSS.
        (0x18, 14) => Some(format_time(digits[0..4].parse().ok()?, &digits[4..])),
        _ => None,
    };
    Some((formatted, rest))
}

fn format_time(year: u32, rest: &str) -> String {
    format!(
        "{year:04}-{}-{}T{}:{}:{}Z",
        &rest[0..2],
        &rest[2..4],
        &rest[4..6],
        &rest[6..8],
        &rest[8..10]
    )
}

/// A distinguished name as `CN=…, O=…`, in certificate order.
fn read_name(mut input: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    while !input.is_empty() {
        let (set, rest) = read_element(input, 0x31)?;
        input = rest;
        let mut attributes = set;
        while !attributes.is_empty() {
            let (attribute, rest) = read_element(attributes, 0x30)?;
            attributes = rest;
            let (oid, value_part) = read_element(attribute, 0x06)?;
            let (value_tag, value, _) = read_any(value_part)?;
            let text = match value_tag {
                // BMPString: UTF-16 big-endian.
                0x1E => String::from_utf16_lossy(
                    &value
                        .chunks(2)
                        .map(|pair| u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]))
                        .collect::<Vec<_>>(),
                ),
                _ => String::from_utf8_lossy(value).into_owned(),
            };
            parts.push(format!("{}={text}", attribute_name(oid)));
        }
    }
    Some(parts.join(", "))
}

fn attribute_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".to_string(),
        [0x55, 0x04, 0x06] => "C".to_string(),
        [0x55, 0x04, 0x07] => "L".to_string(),
        [0x55, 0x04, 0x08] => "ST".to_string(),
        [0x55, 0x04, 0x0A] => "O".to_string(),
        [0x55, 0x04, 0x0B] => "OU".to_string(),
        [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x01] => "emailAddress".to_string(),
        other => dotted_oid(other),
    }
}

fn dotted_oid(oid: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut value: u64 = 0;
    for (position, byte) in oid.iter().enumerate() {
        value = (value << 7) | u64::from(byte & 0x7F);
        if byte & 0x80 == 0 {
            if parts.is_empty() {
                let first = (value / 40).min(2);
                parts.push(first.to_string());
                parts.push((value - first * 40).to_string());
            } else {
                parts.push(value.to_string());
            }
            value = 0;
        }
        // Absurdly long arcs: stop rather than overflow.
        if position > 64 {
            break;
        }
    }
    parts.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_oids_and_rejects_truncated_input() {
        assert_eq!(
            dotted_oid(&[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D]),
            "1.2.840.113549"
        );
        assert_eq!(summarize_certificate(&[0x30, 0x82, 0xFF]), None);
        assert_eq!(summarize_certificate(&[]), None);
    }
}
