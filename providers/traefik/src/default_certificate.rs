//! The edge's default certificate: a self-signed ECDSA P-256 certificate generated once
//! per stack on the host, and named in the TLS options file as
//! `tls.stores.default.defaultCertificate`.
//!
//! Why: without a configured default certificate Traefik builds a new RSA-2048 one on
//! every reload of its dynamic configuration, and a reload then takes 120–265 ms here
//! instead of 8–13 ms (`../shared/reference/traefik/README.md`). A swap waits for that
//! reload, so the certificate is on the swap's critical path.
//!
//! The key is generated in memory, written once to the host (mode 0600, staged outside the
//! watched directory and renamed in), and never kept anywhere else: not in the plan, the
//! state, the log or the run folder. Refresh only lists the directory to see that both
//! files are there (the key is never read back); a missing file is drift, repaired by
//! generating a new pair.
//!
//! The DER below is the minimum X.509 v3 certificate Go's `crypto/x509` accepts: version,
//! serial, signature algorithm, issuer = subject (one common name), validity, the P-256
//! public key; no extensions. Clients never trust it (it is not meant to be trusted: it
//! answers a name no route claims, as Traefik's own default does).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use base64::Engine as _;

use crate::spec::SpecError;
use stackctl_provider::{Attributes, Value};

/// The static file's attribute naming the certificate's files (lowering sets it).
pub const DEFAULT_CERTIFICATE: &str = "default_certificate";
/// The static file's computed attribute: whether both files are on the host.
pub const DEFAULT_CERTIFICATE_FILES: &str = "default_certificate_files";
/// [`DEFAULT_CERTIFICATE_FILES`] when both files are there.
pub const PRESENT: &str = "present";

/// How long a generated certificate is valid. A swap never needs a new one; a stack
/// older than this gets a new pair when the files are removed.
const VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Where the default certificate's files are: on the host (written by the provider) and
/// inside the edge container (named in the TLS options file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultCertificateFiles {
    pub certificate: String,
    pub key: String,
    pub certificate_in_edge: String,
    pub key_in_edge: String,
}

impl DefaultCertificateFiles {
    /// The files named by `default_certificate` of `file.traefik-static`; `None` when the
    /// stack sets none (then Traefik generates its own on every reload).
    pub fn from_attributes(
        attributes: &Attributes,
    ) -> Result<Option<DefaultCertificateFiles>, SpecError> {
        let Some(value) = attributes.get(DEFAULT_CERTIFICATE) else {
            return Ok(None);
        };
        let Value::Map(map) = value else {
            return Err(error("is not a table"));
        };
        let field = |name: &str| match map.get(name) {
            Some(Value::Text(path)) if path.starts_with('/') => Ok(path.clone()),
            _ => Err(error(&format!("needs an absolute path `{name}`"))),
        };
        Ok(Some(DefaultCertificateFiles {
            certificate: field("certificate")?,
            key: field("key")?,
            certificate_in_edge: field("certificate_in_edge")?,
            key_in_edge: field("key_in_edge")?,
        }))
    }

    /// The host directory holding both files (listed by refresh).
    pub fn directory(&self) -> String {
        std::path::Path::new(&self.certificate)
            .parent()
            .map(|parent| parent.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".to_string())
    }

    /// Whether a listing of [`Self::directory`] holds both files.
    pub fn both_listed(&self, listed: &[String]) -> bool {
        [&self.certificate, &self.key].iter().all(|path| {
            let name = std::path::Path::new(path.as_str())
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            listed.contains(&name)
        })
    }
}

fn error(message: &str) -> SpecError {
    SpecError {
        setting: format!("file.traefik-static `{DEFAULT_CERTIFICATE}`"),
        message: message.to_string(),
    }
}

/// A generated certificate and its key, both PEM. The key is written to the host and
/// dropped; it is never shown.
pub struct GeneratedCertificate {
    pub certificate_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for GeneratedCertificate {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("GeneratedCertificate")
            .field("certificate_pem", &self.certificate_pem)
            .field("key_pem", &"(not shown)")
            .finish()
    }
}

/// A new key pair and a self-signed certificate for `common_name`, valid from an hour
/// before `now` (clocks differ) for ten years.
pub fn generate(common_name: &str, now: SystemTime) -> Result<GeneratedCertificate, String> {
    let random = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &random)
        .map_err(|_| "cannot generate a P-256 key".to_string())?;
    let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
        .map_err(|_| "cannot read the generated P-256 key".to_string())?;
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).map_err(|_| "no random bytes for the serial".to_string())?;
    // A positive, non-zero serial (RFC 5280 §4.1.2.2).
    serial[0] = (serial[0] & 0x7f) | 0x01;
    let not_before = now
        .checked_sub(Duration::from_secs(3600))
        .unwrap_or(UNIX_EPOCH);
    let not_after = now + VALIDITY;
    let tbs = to_be_signed(
        common_name,
        &serial,
        not_before,
        not_after,
        key_pair.public_key().as_ref(),
    );
    let signature = key_pair
        .sign(&random, &tbs)
        .map_err(|_| "cannot sign the certificate".to_string())?;
    let certificate = sequence(&[tbs, ecdsa_with_sha256(), bit_string(signature.as_ref())]);
    Ok(GeneratedCertificate {
        certificate_pem: pem("CERTIFICATE", &certificate),
        key_pem: pem("PRIVATE KEY", pkcs8.as_ref()),
    })
}

/// The certificate's `TBSCertificate`: what the signature covers.
fn to_be_signed(
    common_name: &str,
    serial: &[u8],
    not_before: SystemTime,
    not_after: SystemTime,
    public_point: &[u8],
) -> Vec<u8> {
    // id-ecPublicKey (1.2.840.10045.2.1) on prime256v1 (1.2.840.10045.3.1.7).
    let algorithm = sequence(&[
        der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]),
        der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
    ]);
    sequence(&[
        // [0] EXPLICIT version v3 (2).
        der(0xa0, &der(0x02, &[0x02])),
        der(0x02, serial),
        ecdsa_with_sha256(),
        name(common_name),
        sequence(&[time(not_before), time(not_after)]),
        name(common_name),
        sequence(&[algorithm, bit_string(public_point)]),
    ])
}

/// `AlgorithmIdentifier` ecdsa-with-SHA256 (1.2.840.10045.4.3.2), no parameters.
fn ecdsa_with_sha256() -> Vec<u8> {
    sequence(&[der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02])])
}

/// A `Name` of one common name (2.5.4.3) as a UTF8String.
fn name(common_name: &str) -> Vec<u8> {
    let attribute = sequence(&[
        der(0x06, &[0x55, 0x04, 0x03]),
        der(0x0c, common_name.as_bytes()),
    ]);
    sequence(&[der(0x31, &attribute)])
}

/// UTCTime up to 2049, GeneralizedTime after (RFC 5280 §4.1.2.5).
fn time(at: SystemTime) -> Vec<u8> {
    let seconds = at
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let (year, month, day) = civil_date(seconds / 86_400);
    let of_day = seconds % 86_400;
    let clock = format!(
        "{month:02}{day:02}{:02}{:02}{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    );
    if year < 2050 {
        der(0x17, format!("{:02}{clock}", year % 100).as_bytes())
    } else {
        der(0x18, format!("{year:04}{clock}").as_bytes())
    }
}

/// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian calendar).
fn civil_date(days: u64) -> (u64, u64, u64) {
    // Days since 0000-03-01, in 400-year eras of 146,097 days.
    let days = days + 719_468;
    let era = days / 146_097;
    let of_era = days % 146_097;
    let year_of_era = (of_era - of_era / 1460 + of_era / 36_524 - of_era / 146_096) / 365;
    let day_of_year = of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    der(0x30, &parts.concat())
}

/// A BIT STRING with no unused bits.
fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(bytes.len() + 1);
    content.push(0);
    content.extend_from_slice(bytes);
    der(0x03, &content)
}

/// One DER tag-length-value.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let length = content.len();
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes: Vec<u8> = length
            .to_be_bytes()
            .into_iter()
            .skip_while(|byte| *byte == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn pem(label: &str, der: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};

    use super::*;

    /// The DER element starting at `at`: (tag, content range, end).
    fn element(bytes: &[u8], at: usize) -> (u8, std::ops::Range<usize>, usize) {
        let tag = bytes[at];
        let first = bytes[at + 1] as usize;
        let (length, header) = if first < 0x80 {
            (first, 2)
        } else {
            let count = first & 0x7f;
            let length = bytes[at + 2..at + 2 + count]
                .iter()
                .fold(0usize, |length, byte| length << 8 | *byte as usize);
            (length, 2 + count)
        };
        let start = at + header;
        (tag, start..start + length, start + length)
    }

    fn der_of(pem_text: &str) -> Vec<u8> {
        let body: String = pem_text
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    }

    #[test]
    fn dates_are_the_calendars() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(20_787), (2026, 11, 30));
        let at = UNIX_EPOCH + Duration::from_secs(20_787 * 86_400 + 4 * 3600 + 5 * 60 + 6);
        assert_eq!(time(at), der(0x17, b"261130040506Z"));
        let late = UNIX_EPOCH + Duration::from_secs(2_556_143_999); // 2050-12-31T23:59:59Z
        assert_eq!(time(late), der(0x18, b"20501231235959Z"));
    }

    #[test]
    fn the_certificate_is_signed_by_the_key_beside_it() {
        let generated = generate("stackctl default certificate (shop)", SystemTime::now()).unwrap();
        assert!(generated
            .key_pem
            .starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(!format!("{generated:?}").contains("BEGIN PRIVATE KEY"));
        let certificate = der_of(&generated.certificate_pem);
        let (tag, content, end) = element(&certificate, 0);
        assert_eq!((tag, end), (0x30, certificate.len()));
        let (tbs_tag, tbs_content, tbs_end) = element(&certificate, content.start);
        assert_eq!(tbs_tag, 0x30);
        let tbs = &certificate[content.start..tbs_end];
        let (_, _, algorithm_end) = element(&certificate, tbs_end);
        let (signature_tag, signature, _) = element(&certificate, algorithm_end);
        assert_eq!(signature_tag, 0x03);
        // The public key is the TBS's last element: SEQUENCE { algorithm, BIT STRING }.
        let mut at = tbs_content.start;
        let mut last = at;
        while at < tbs_content.end {
            last = at;
            at = element(&certificate, at).2;
        }
        let (_, key_info, _) = element(&certificate, last);
        let (_, _, key_algorithm_end) = element(&certificate, key_info.start);
        let (_, point, _) = element(&certificate, key_algorithm_end);
        let point = &certificate[point.start + 1..point.end];
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
            .verify(tbs, &certificate[signature.start + 1..signature.end])
            .expect("the signature verifies with the certificate's own key");
        let again = generate("stackctl default certificate (shop)", SystemTime::now()).unwrap();
        assert_ne!(
            again.certificate_pem, generated.certificate_pem,
            "a new pair each time"
        );
    }

    #[test]
    fn the_files_are_read_from_the_static_files_attributes() {
        let attributes = Attributes::from([(
            DEFAULT_CERTIFICATE.to_string(),
            Value::Map(std::collections::BTreeMap::from([
                (
                    "certificate".to_string(),
                    Value::text("/srv/shop/traefik/certs/default.crt"),
                ),
                (
                    "key".to_string(),
                    Value::text("/srv/shop/traefik/certs/default.key"),
                ),
                (
                    "certificate_in_edge".to_string(),
                    Value::text("/etc/traefik/certs/default.crt"),
                ),
                (
                    "key_in_edge".to_string(),
                    Value::text("/etc/traefik/certs/default.key"),
                ),
            ])),
        )]);
        let files = DefaultCertificateFiles::from_attributes(&attributes)
            .unwrap()
            .unwrap();
        assert_eq!(files.directory(), "/srv/shop/traefik/certs");
        assert!(files.both_listed(&["default.crt".into(), "default.key".into()]));
        assert!(!files.both_listed(&["default.crt".into()]));
        assert_eq!(
            DefaultCertificateFiles::from_attributes(&Attributes::new()).unwrap(),
            None
        );
    }
}
