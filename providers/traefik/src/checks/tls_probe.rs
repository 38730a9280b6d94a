//! Probing whether the edge refuses an old TLS version.
//!
//! rustls speaks only TLS 1.2 and 1.3, and a client that can speak 1.3 cannot show that a
//! server refuses 1.2. So this probe does not complete handshakes: it sends one
//! ClientHello record offering exactly one version (built by [`client_hello`], a pure
//! function) and reads the server's first record ([`read_server_answer`], a pure parser).
//! A `protocol_version` or `insufficient_security` alert means the version is refused; a
//! ServerHello choosing the old version means it was accepted. Any other answer proves
//! nothing either way and is reported as such, so that neither a malformed hello nor an
//! edge that is restarting (it closes or resets connections) can pass for a refusal:
//! `handshake_failure` names no reason (no cipher suite or certificate in common sends it
//! too), and a connection closed or reset without an answer says nothing about versions.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TLS protocol version as it appears on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// The version's code in hellos and records (`0x0301` is TLS 1.0).
    pub fn wire(self) -> u16 {
        match self {
            TlsVersion::Tls10 => 0x0301,
            TlsVersion::Tls11 => 0x0302,
            TlsVersion::Tls12 => 0x0303,
            TlsVersion::Tls13 => 0x0304,
        }
    }

    pub fn from_wire(code: u16) -> Option<TlsVersion> {
        [
            TlsVersion::Tls10,
            TlsVersion::Tls11,
            TlsVersion::Tls12,
            TlsVersion::Tls13,
        ]
        .into_iter()
        .find(|version| version.wire() == code)
    }

    /// `TLS 1.2`.
    pub fn label(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLS 1.0",
            TlsVersion::Tls11 => "TLS 1.1",
            TlsVersion::Tls12 => "TLS 1.2",
            TlsVersion::Tls13 => "TLS 1.3",
        }
    }

    /// Reads Traefik's names (`VersionTLS12`).
    pub fn from_traefik(name: &str) -> Option<TlsVersion> {
        match name {
            "VersionTLS10" => Some(TlsVersion::Tls10),
            "VersionTLS11" => Some(TlsVersion::Tls11),
            "VersionTLS12" => Some(TlsVersion::Tls12),
            "VersionTLS13" => Some(TlsVersion::Tls13),
            _ => None,
        }
    }

    /// The versions a server with this minimum must refuse, oldest first.
    pub fn below(self) -> Vec<TlsVersion> {
        [TlsVersion::Tls10, TlsVersion::Tls11, TlsVersion::Tls12]
            .into_iter()
            .filter(|version| *version < self)
            .collect()
    }
}

/// Cipher suites a TLS 1.0/1.1 server can choose: ECDHE and plain RSA with AES-CBC, so
/// that a server that still allows the version has something to agree on.
const LEGACY_SUITES: [u16; 7] = [0xC013, 0xC014, 0xC009, 0xC00A, 0x002F, 0x0035, 0x000A];
/// Added for TLS 1.2: the AEAD suites every current server prefers.
const TLS12_SUITES: [u16; 6] = [0xC02F, 0xC030, 0xC02B, 0xC02C, 0xCCA8, 0xCCA9];

/// One TLS record holding a ClientHello that offers only `version`, with SNI
/// `server_name` (left out for an IP address, which SNI cannot carry). `random` is the
/// hello's 32 random bytes, given by the caller so the bytes are reproducible in tests.
pub fn client_hello(version: TlsVersion, server_name: &str, random: [u8; 32]) -> Vec<u8> {
    let mut suites: Vec<u16> = LEGACY_SUITES.to_vec();
    if version >= TlsVersion::Tls12 {
        suites.splice(0..0, TLS12_SUITES);
    }

    let mut extensions = Vec::new();
    if server_name.parse::<std::net::IpAddr>().is_err() && !server_name.is_empty() {
        let name = server_name.as_bytes();
        let mut entry = vec![0u8]; // host_name
        push_u16_prefixed(&mut entry, name);
        let mut list = Vec::new();
        push_u16_prefixed(&mut list, &entry);
        push_extension(&mut extensions, 0x0000, &list);
    }
    // supported_groups: x25519, secp256r1, secp384r1 (ECDHE needs a group).
    let mut groups = Vec::new();
    for group in [0x001Du16, 0x0017, 0x0018] {
        groups.extend(group.to_be_bytes());
    }
    let mut groups_body = Vec::new();
    push_u16_prefixed(&mut groups_body, &groups);
    push_extension(&mut extensions, 0x000A, &groups_body);
    // ec_point_formats: uncompressed.
    push_extension(&mut extensions, 0x000B, &[0x01, 0x00]);
    if version >= TlsVersion::Tls12 {
        // signature_algorithms exists from TLS 1.2 on.
        let mut schemes = Vec::new();
        for scheme in [
            0x0403u16, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601, 0x0201, 0x0203,
        ] {
            schemes.extend(scheme.to_be_bytes());
        }
        let mut schemes_body = Vec::new();
        push_u16_prefixed(&mut schemes_body, &schemes);
        push_extension(&mut extensions, 0x000D, &schemes_body);
    }
    // renegotiation_info, empty: a client that would not send it looks broken to some servers.
    push_extension(&mut extensions, 0xFF01, &[0x00]);

    let mut body = Vec::new();
    body.extend(version.wire().to_be_bytes());
    body.extend(random);
    body.push(0); // no session id
    let mut suite_bytes = Vec::new();
    for suite in suites {
        suite_bytes.extend(suite.to_be_bytes());
    }
    push_u16_prefixed(&mut body, &suite_bytes);
    body.extend([0x01, 0x00]); // compression: null only
    push_u16_prefixed(&mut body, &extensions);

    let mut handshake = vec![0x01]; // client_hello
    handshake.extend(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend(body);

    // Record version 0x0301: what clients send in a first record whatever they offer.
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

fn push_u16_prefixed(buffer: &mut Vec<u8>, bytes: &[u8]) {
    buffer.extend((bytes.len() as u16).to_be_bytes());
    buffer.extend(bytes);
}

fn push_extension(buffer: &mut Vec<u8>, kind: u16, body: &[u8]) {
    buffer.extend(kind.to_be_bytes());
    push_u16_prefixed(buffer, body);
}

/// The server's first record, as far as the probe cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerAnswer {
    Alert {
        level: u8,
        description: u8,
    },
    /// The version the server chose (from `supported_versions` when present) and its
    /// cipher suite.
    ServerHello {
        version: u16,
        cipher_suite: u16,
    },
    /// Anything else (plain HTTP on a TLS port, another handshake message first).
    Unexpected(String),
    /// The connection ended before a whole record came: closed, or reset when `reset`.
    Ended {
        reset: bool,
    },
}

/// The largest record TLS allows (2^14 plus room for compression and padding).
const MAX_RECORD: usize = 16384 + 2048;

/// Reads the first record in `bytes`: `None` while more bytes are needed.
pub fn read_server_answer(bytes: &[u8]) -> Option<ServerAnswer> {
    if bytes.len() >= 5 && bytes.starts_with(b"HTTP/") {
        return Some(ServerAnswer::Unexpected(
            "the port answered plain HTTP, not TLS".to_string(),
        ));
    }
    let header = bytes.get(..5)?;
    let content_type = header[0];
    let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
    if header[1] != 0x03 || length > MAX_RECORD {
        return Some(ServerAnswer::Unexpected(format!(
            "the answer is not a TLS record (it starts with {})",
            hex::encode(header)
        )));
    }
    let body = bytes.get(5..5 + length)?;
    match content_type {
        0x15 if body.len() >= 2 => Some(ServerAnswer::Alert {
            level: body[0],
            description: body[1],
        }),
        0x16 => Some(read_server_hello(body)),
        other => Some(ServerAnswer::Unexpected(format!(
            "a record of content type {other} came first"
        ))),
    }
}

/// A handshake record's first message, expected to be a ServerHello.
fn read_server_hello(record: &[u8]) -> ServerAnswer {
    let unexpected = |what: &str| ServerAnswer::Unexpected(what.to_string());
    let Some((&message_type, rest)) = record.split_first() else {
        return unexpected("an empty handshake record");
    };
    if message_type != 0x02 {
        return ServerAnswer::Unexpected(format!(
            "handshake message {message_type} came first, not a ServerHello"
        ));
    }
    let mut reader = Reader {
        bytes: rest.get(3..).unwrap_or_default(),
    };
    let parsed = (|| {
        let legacy_version = reader.u16()?;
        reader.skip(32)?; // random
        let session_id_length = usize::from(reader.u8()?);
        reader.skip(session_id_length)?;
        let cipher_suite = reader.u16()?;
        reader.skip(1)?; // compression
        let mut version = legacy_version;
        // Extensions are optional in a TLS 1.0–1.2 ServerHello.
        if let Some(extensions_length) = reader.u16() {
            let mut extensions = Reader {
                bytes: reader.take(usize::from(extensions_length))?,
            };
            while let (Some(kind), Some(length)) = (extensions.u16(), extensions.u16()) {
                let data = extensions.take(usize::from(length))?;
                // supported_versions: the version TLS 1.3 servers actually chose.
                if kind == 0x002B && data.len() == 2 {
                    version = u16::from_be_bytes([data[0], data[1]]);
                }
            }
        }
        Some((version, cipher_suite))
    })();
    match parsed {
        Some((version, cipher_suite)) => ServerAnswer::ServerHello {
            version,
            cipher_suite,
        },
        None => unexpected("a ServerHello too short to read"),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < count {
            return None;
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Some(taken)
    }
    fn skip(&mut self, count: usize) -> Option<()> {
        self.take(count).map(|_| ())
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|bytes| bytes[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2)
            .map(|bytes| u16::from_be_bytes([bytes[0], bytes[1]]))
    }
}

/// How an answer to a hello offering `offered` reads: (refused, in words). Only the
/// alerts a server sends for an unacceptable version count as a refusal:
/// `protocol_version` (70) and `insufficient_security` (71).
pub fn judge(offered: TlsVersion, answer: &ServerAnswer) -> (bool, String) {
    match answer {
        ServerAnswer::Alert { description, .. } => {
            let name = alert_name(*description);
            if matches!(description, 70 | 71) {
                (true, format!("alert {name}"))
            } else if *description == 40 {
                (
                    false,
                    format!(
                        "alert {name}: the edge ended the handshake without naming the version as the reason (no cipher suite or certificate in common sends it too), so the refusal is not proven"
                    ),
                )
            } else {
                (
                    false,
                    format!("alert {name}: not a refusal of the version, so nothing is proven"),
                )
            }
        }
        ServerAnswer::ServerHello {
            version,
            cipher_suite,
        } => {
            let chosen = TlsVersion::from_wire(*version)
                .map(|version| version.label().to_string())
                .unwrap_or_else(|| format!("version 0x{version:04x}"));
            if *version <= offered.wire() {
                (
                    false,
                    format!(
                        "accepted: ServerHello {chosen} with {}",
                        cipher_suite_name(*cipher_suite)
                    ),
                )
            } else {
                (
                    false,
                    format!(
                        "ServerHello {chosen}, which the hello did not offer: the edge does not speak TLS correctly"
                    ),
                )
            }
        }
        ServerAnswer::Unexpected(what) => (false, what.clone()),
        ServerAnswer::Ended { reset } => (
            false,
            format!(
                "connection {} without an answer: the refusal is not proven (an edge that is restarting does this too)",
                if *reset { "reset" } else { "closed" }
            ),
        ),
    }
}

fn alert_name(description: u8) -> String {
    match description {
        0 => "close_notify".to_string(),
        10 => "unexpected_message".to_string(),
        40 => "handshake_failure".to_string(),
        47 => "illegal_parameter".to_string(),
        50 => "decode_error".to_string(),
        70 => "protocol_version".to_string(),
        71 => "insufficient_security".to_string(),
        80 => "internal_error".to_string(),
        112 => "unrecognized_name".to_string(),
        other => format!("{other}"),
    }
}

/// The IANA name of the suites a probe offers; others in hex.
pub fn cipher_suite_name(suite: u16) -> String {
    let name = match suite {
        0xC013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xC014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0xC009 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xC00A => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0x002F => "TLS_RSA_WITH_AES_128_CBC_SHA",
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA",
        0x000A => "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        0xC02F => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xC030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0xC02B => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xC02C => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xCCA8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xCCA9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        other => return format!("cipher suite 0x{other:04x}"),
    };
    name.to_string()
}

/// Sends a hello offering only `version` to `destination` and reads the first record,
/// within `timeout`: (refused, what the edge answered).
pub async fn probe_version(
    destination: SocketAddr,
    server_name: &str,
    version: TlsVersion,
    timeout: Duration,
) -> (bool, String) {
    let mut random = [0u8; 32];
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    if provider.secure_random.fill(&mut random).is_err() {
        return (false, "no random bytes for the hello".to_string());
    }
    let hello = client_hello(version, server_name, random);
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(destination)
            .await
            .map_err(|error| format!("cannot connect to {destination}: {error}"))?;
        stream
            .write_all(&hello)
            .await
            .map_err(|error| format!("cannot send the hello: {error}"))?;
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            if let Some(answer) = read_server_answer(&received) {
                return Ok(answer);
            }
            if received.len() > MAX_RECORD + 5 {
                return Ok(ServerAnswer::Unexpected(
                    "an answer longer than a TLS record".to_string(),
                ));
            }
            match stream.read(&mut buffer).await {
                Ok(0) => return Ok(ServerAnswer::Ended { reset: false }),
                Ok(count) => received.extend_from_slice(&buffer[..count]),
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Ok(ServerAnswer::Ended { reset: true })
                }
                Err(error) => return Err(format!("cannot read the answer: {error}")),
            }
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(answer)) => judge(version, &answer),
        Ok(Err(error)) => (false, error),
        Err(_) => (
            false,
            format!("no answer within {timeout:?}: nothing is proven"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TLS 1.0 hello, byte by byte where it matters.
    #[test]
    fn a_tls10_hello_offers_only_tls10() {
        let hello = client_hello(TlsVersion::Tls10, "shop.test", [7; 32]);
        assert_eq!(&hello[..3], &[0x16, 0x03, 0x01], "handshake record");
        let record_length = usize::from(u16::from_be_bytes([hello[3], hello[4]]));
        assert_eq!(record_length, hello.len() - 5);
        assert_eq!(hello[5], 0x01, "client_hello");
        let message_length = u32::from_be_bytes([0, hello[6], hello[7], hello[8]]) as usize;
        assert_eq!(message_length, hello.len() - 9);
        assert_eq!(&hello[9..11], &[0x03, 0x01], "client_version TLS 1.0");
        assert_eq!(&hello[11..43], &[7; 32]);
        assert_eq!(hello[43], 0, "no session id");
        let suites_length = usize::from(u16::from_be_bytes([hello[44], hello[45]]));
        assert_eq!(suites_length, LEGACY_SUITES.len() * 2);
        assert_eq!(&hello[46..48], &[0xC0, 0x13]);
        let after_suites = 46 + suites_length;
        assert_eq!(&hello[after_suites..after_suites + 2], &[0x01, 0x00]);
        // SNI: type 0, then the name.
        let extensions = &hello[after_suites + 4..];
        assert_eq!(&extensions[..2], &[0x00, 0x00]);
        assert!(hello.windows(9).any(|window| window == b"shop.test"));
        // No signature_algorithms (TLS 1.2 only) and no supported_versions (TLS 1.3).
        assert!(!contains_extension(extensions, 0x000D));
        assert!(!contains_extension(extensions, 0x002B));
    }

    #[test]
    fn a_tls12_hello_adds_aead_suites_and_signature_algorithms_but_not_tls13() {
        let hello = client_hello(TlsVersion::Tls12, "shop.test", [0; 32]);
        assert_eq!(&hello[9..11], &[0x03, 0x03]);
        assert_eq!(&hello[46..48], &[0xC0, 0x2F]);
        let suites_length = usize::from(u16::from_be_bytes([hello[44], hello[45]]));
        let extensions = &hello[46 + suites_length + 4..];
        assert!(contains_extension(extensions, 0x000D));
        assert!(!contains_extension(extensions, 0x002B));
    }

    #[test]
    fn an_ip_address_is_not_sent_as_sni() {
        let hello = client_hello(TlsVersion::Tls11, "127.0.0.1", [0; 32]);
        let suites_length = usize::from(u16::from_be_bytes([hello[44], hello[45]]));
        let extensions = &hello[46 + suites_length + 4..];
        assert!(!contains_extension(extensions, 0x0000));
        assert_eq!(&hello[9..11], &[0x03, 0x02]);
    }

    fn contains_extension(mut extensions: &[u8], wanted: u16) -> bool {
        while extensions.len() >= 4 {
            let kind = u16::from_be_bytes([extensions[0], extensions[1]]);
            let length = usize::from(u16::from_be_bytes([extensions[2], extensions[3]]));
            if kind == wanted {
                return true;
            }
            extensions = &extensions[(4 + length).min(extensions.len())..];
        }
        false
    }

    #[test]
    fn a_protocol_version_alert_is_a_refusal() {
        // What Go's crypto/tls (Traefik) sends for a version below its minimum.
        let alert = [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46];
        let answer = read_server_answer(&alert).expect("complete");
        assert_eq!(
            answer,
            ServerAnswer::Alert {
                level: 2,
                description: 70
            }
        );
        assert_eq!(
            judge(TlsVersion::Tls10, &answer),
            (true, "alert protocol_version".to_string())
        );
        let insufficient_security = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x47];
        let answer = read_server_answer(&insufficient_security).expect("complete");
        assert_eq!(
            judge(TlsVersion::Tls12, &answer),
            (true, "alert insufficient_security".to_string())
        );
    }

    #[test]
    fn a_handshake_failure_alert_is_not_proof_of_a_refusal() {
        let handshake_failure = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];
        let answer = read_server_answer(&handshake_failure).expect("complete");
        let (refused, words) = judge(TlsVersion::Tls12, &answer);
        assert!(!refused, "{words}");
        assert!(
            words.starts_with("alert handshake_failure: ") && words.contains("not proven"),
            "{words}"
        );
    }

    /// A listener on loopback that reads the hello and closes without answering, as an
    /// edge going down does: the probe must not call that a refusal.
    #[tokio::test]
    async fn a_probe_answered_by_a_close_fails() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buffer = [0u8; 512];
            let _ = stream.read(&mut buffer).await;
        });
        let (refused, words) = probe_version(
            address,
            "shop.test",
            TlsVersion::Tls10,
            Duration::from_secs(5),
        )
        .await;
        server.await.unwrap();
        assert!(!refused, "{words}");
        assert!(
            words.starts_with("connection closed without an answer"),
            "{words}"
        );
    }

    #[test]
    fn a_connection_closed_or_reset_without_an_answer_proves_nothing() {
        // A part of a record, then the end: what a restarting edge may leave.
        assert_eq!(read_server_answer(&[0x15, 0x03, 0x01]), None);
        for (reset, word) in [(false, "closed"), (true, "reset")] {
            let (refused, words) = judge(TlsVersion::Tls10, &ServerAnswer::Ended { reset });
            assert!(!refused, "{words}");
            assert!(
                words.starts_with(&format!("connection {word} without an answer")),
                "{words}"
            );
        }
    }

    #[test]
    fn other_alerts_prove_nothing() {
        let decode_error = [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x32];
        let answer = read_server_answer(&decode_error).expect("complete");
        let (refused, words) = judge(TlsVersion::Tls10, &answer);
        assert!(!refused);
        assert!(words.contains("decode_error"), "{words}");
    }

    /// A ServerHello choosing TLS 1.0 and ECDHE-RSA-AES128-SHA, as a server that still
    /// allows TLS 1.0 answers.
    fn server_hello(version: [u8; 2], suite: [u8; 2], extensions: &[u8]) -> Vec<u8> {
        let mut body = version.to_vec();
        body.extend([0x11; 32]);
        body.push(0x20);
        body.extend([0x22; 32]);
        body.extend(suite);
        body.push(0x00);
        if !extensions.is_empty() {
            body.extend((extensions.len() as u16).to_be_bytes());
            body.extend(extensions);
        }
        let mut handshake = vec![0x02];
        handshake.extend(&(body.len() as u32).to_be_bytes()[1..]);
        handshake.extend(body);
        let mut record = vec![0x16, 0x03, 0x01];
        record.extend((handshake.len() as u16).to_be_bytes());
        record.extend(handshake);
        record
    }

    #[test]
    fn a_server_hello_with_the_old_version_is_an_acceptance() {
        let record = server_hello([0x03, 0x01], [0xC0, 0x13], &[0xFF, 0x01, 0x00, 0x01, 0x00]);
        // Byte by byte, the parser waits for the whole record.
        for end in 0..record.len() {
            assert_eq!(read_server_answer(&record[..end]), None, "at {end}");
        }
        let answer = read_server_answer(&record).expect("complete");
        assert_eq!(
            answer,
            ServerAnswer::ServerHello {
                version: 0x0301,
                cipher_suite: 0xC013
            }
        );
        let (refused, words) = judge(TlsVersion::Tls10, &answer);
        assert!(!refused);
        assert_eq!(
            words,
            "accepted: ServerHello TLS 1.0 with TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
        );
    }

    #[test]
    fn supported_versions_names_the_chosen_version() {
        let record = server_hello(
            [0x03, 0x03],
            [0x13, 0x01],
            &[0x00, 0x2B, 0x00, 0x02, 0x03, 0x04],
        );
        assert_eq!(
            read_server_answer(&record),
            Some(ServerAnswer::ServerHello {
                version: 0x0304,
                cipher_suite: 0x1301
            })
        );
    }

    #[test]
    fn plain_http_and_garbage_are_unexpected() {
        assert!(matches!(
            read_server_answer(b"HTTP/1.1 400 Bad Request\r\n"),
            Some(ServerAnswer::Unexpected(_))
        ));
        assert!(matches!(
            read_server_answer(&[0x48, 0x00, 0x00, 0x00, 0x00]),
            Some(ServerAnswer::Unexpected(_))
        ));
        assert!(matches!(
            read_server_answer(&[0x17, 0x03, 0x03, 0x00, 0x01, 0x00]),
            Some(ServerAnswer::Unexpected(_))
        ));
    }

    #[test]
    fn versions_below_a_minimum() {
        assert_eq!(
            TlsVersion::Tls12.below(),
            vec![TlsVersion::Tls10, TlsVersion::Tls11]
        );
        assert_eq!(
            TlsVersion::Tls13.below(),
            vec![TlsVersion::Tls10, TlsVersion::Tls11, TlsVersion::Tls12]
        );
        assert_eq!(
            TlsVersion::from_traefik("VersionTLS13"),
            Some(TlsVersion::Tls13)
        );
    }
}
