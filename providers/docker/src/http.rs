//! A small HTTP/1.1 exchange over any byte stream, with pipelining.
//!
//! Why not hyper: the Engine API is reached over a unix socket locally and over an SSH
//! channel remotely, and refresh must cost a constant number of *network* round trips
//! whatever the number of containers. HTTP/1.1 pipelining gives that on one stream:
//! write N requests in one go, then read N responses in order (Docker's Go server answers
//! pipelined requests one after another). hyper's client does not pipeline, and the
//! subset of HTTP the daemon speaks (Content-Length or chunked bodies, no upgrades for
//! what we use) is small enough to implement and test here.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use stackctl_host::Stream;

/// What a request carries after its headers.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Empty,
    Json(serde_json::Value),
    /// A tar archive (a build context).
    Tar(Vec<u8>),
}

/// One Engine API request, built by pure functions in [`crate::api`].
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub method: &'static str,
    /// The path after the API version prefix, segments already percent-encoded.
    pub path: String,
    /// Query parameters, encoded when the request is written.
    pub query: Vec<(String, String)>,
    pub body: Body,
    /// Prefixed with `/v<api version>`; only the version question itself is not.
    pub versioned: bool,
    /// `X-Registry-Auth` (a pull, a registry digest): registry credentials, which print as
    /// `[redacted]` and are written nowhere but into this header.
    pub registry_auth: Option<stackctl_provider::Secret>,
}

impl Request {
    pub fn new(method: &'static str, path: impl Into<String>) -> Self {
        Request {
            method,
            path: path.into(),
            query: Vec::new(),
            body: Body::Empty,
            versioned: true,
            registry_auth: None,
        }
    }

    /// Sends registry credentials (`X-Registry-Auth`, already encoded) with the request.
    pub fn registry_auth(mut self, header: Option<stackctl_provider::Secret>) -> Self {
        self.registry_auth = header;
        self
    }

    /// Sent without the `/v<api version>` prefix (`GET /version`, asked before a version
    /// is known).
    pub fn unversioned(mut self) -> Self {
        self.versioned = false;
        self
    }

    pub fn query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.query.push((name.to_string(), value.into()));
        self
    }

    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Body::Json(body);
        self
    }

    /// The request target: `/v1.41/containers/json?all=1&filters=…`.
    pub fn target(&self, api_version: &str) -> String {
        let mut target = if self.versioned {
            format!("/v{api_version}{}", self.path)
        } else {
            self.path.clone()
        };
        for (index, (name, value)) in self.query.iter().enumerate() {
            target.push(if index == 0 { '?' } else { '&' });
            target.push_str(&percent_encode(name));
            target.push('=');
            target.push_str(&percent_encode(value));
        }
        target
    }

    /// The bytes on the wire. The connection stays open for the next request.
    pub fn to_bytes(&self, api_version: &str) -> Vec<u8> {
        let (content_type, payload): (Option<&str>, Vec<u8>) = match &self.body {
            Body::Empty => (None, Vec::new()),
            Body::Json(value) => (Some("application/json"), value.to_string().into_bytes()),
            Body::Tar(bytes) => (Some("application/x-tar"), bytes.clone()),
        };
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: docker\r\nUser-Agent: stackctl\r\n",
            self.method,
            self.target(api_version)
        );
        if let Some(content_type) = content_type {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        if let Some(header) = self
            .registry_auth
            .as_ref()
            .and_then(|secret| secret.expose())
        {
            head.push_str(&format!("X-Registry-Auth: {header}\r\n"));
        }
        if !payload.is_empty() || matches!(self.method, "POST" | "PUT") {
            head.push_str(&format!("Content-Length: {}\r\n", payload.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&payload);
        bytes
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so names holding
/// `$(…)`, backticks, `;`, spaces or `/` travel as data and never as syntax.
pub fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// A response read in full.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json(&self) -> Result<serde_json::Value, InvalidJson> {
        if self.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// The daemon's error message (`{"message": "…"}`), or the body as text.
    pub fn error_message(&self) -> String {
        match self.json() {
            Ok(value) => match value.get("message").and_then(|message| message.as_str()) {
                Some(message) => message.to_string(),
                None => String::from_utf8_lossy(&self.body).trim().to_string(),
            },
            Err(_) => String::from_utf8_lossy(&self.body).trim().to_string(),
        }
    }
}

/// A response body that is not JSON where the daemon should have answered JSON.
#[derive(Debug, thiserror::Error)]
#[error("the daemon answered with invalid JSON: {0}")]
pub struct InvalidJson(#[from] serde_json::Error);

/// Why an exchange failed at the HTTP level.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("connection to the Docker daemon failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the Docker daemon sent a malformed response: {0}")]
    Malformed(String),
}

/// Responses larger than this are refused (a runaway build log, a wrong endpoint).
const MAXIMUM_BODY: usize = 256 * 1024 * 1024;

/// One keep-alive connection to the daemon.
pub struct Connection {
    stream: BufReader<Box<dyn Stream>>,
    api_version: String,
}

impl Connection {
    /// Speaks `api_version` from now on (after asking the daemon which one).
    pub fn use_api_version(&mut self, api_version: &str) {
        self.api_version = api_version.to_string();
    }

    pub fn new(stream: Box<dyn Stream>, api_version: &str) -> Self {
        Connection {
            stream: BufReader::new(stream),
            api_version: api_version.to_string(),
        }
    }

    /// Sends one request and hands each line of its body to `on_line` as it arrives.
    pub async fn exchange_streaming(
        &mut self,
        request: &Request,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Response, HttpError> {
        self.stream
            .get_mut()
            .write_all(&request.to_bytes(&self.api_version))
            .await?;
        self.stream.get_mut().flush().await?;
        read_response_with(&mut self.stream, request.method == "HEAD", on_line).await
    }

    /// Sends every request in one write, then reads the responses in order: one network
    /// round trip for the whole batch.
    pub async fn exchange(&mut self, requests: &[Request]) -> Result<Vec<Response>, HttpError> {
        let mut wire = Vec::new();
        for request in requests {
            wire.extend_from_slice(&request.to_bytes(&self.api_version));
        }
        self.stream.get_mut().write_all(&wire).await?;
        self.stream.get_mut().flush().await?;
        let mut responses = Vec::with_capacity(requests.len());
        for request in requests {
            responses.push(read_response(&mut self.stream, request.method == "HEAD").await?);
        }
        Ok(responses)
    }
}

/// Reads one response: status line, headers, then a body framed by Content-Length,
/// chunked encoding, or the end of the stream.
pub async fn read_response<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    head_only: bool,
) -> Result<Response, HttpError> {
    read_response_with(reader, head_only, &mut |_| {}).await
}

/// [`read_response`], handing each line of the body to `on_line` as soon as it arrived:
/// the JSON-lines progress of a build or a pull, shown while the daemon still works.
pub async fn read_response_with<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    head_only: bool,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<Response, HttpError> {
    let status_line = read_line(reader).await?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| HttpError::Malformed(format!("status line `{status_line}`")))?;
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    loop {
        let line = read_line(reader).await?;
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => {
                    content_length =
                        Some(value.parse().map_err(|_| {
                            HttpError::Malformed(format!("Content-Length `{value}`"))
                        })?)
                }
                "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                _ => {}
            }
        }
    }
    let no_body = head_only || status == 204 || status == 304 || (100..200).contains(&status);
    let mut lines = LineSplitter::default();
    let body = if no_body {
        Vec::new()
    } else if chunked {
        read_chunked(reader, &mut lines, on_line).await?
    } else {
        if content_length.is_some_and(|length| length > MAXIMUM_BODY) {
            return Err(HttpError::Malformed(format!(
                "a body of {} bytes",
                content_length.unwrap_or_default()
            )));
        }
        // Framed by its length, or by the end of the stream: read as it comes.
        let limit = content_length.unwrap_or(MAXIMUM_BODY);
        let mut body = Vec::new();
        let mut piece = vec![0u8; 64 * 1024];
        while body.len() < limit {
            let wanted = piece.len().min(limit - body.len());
            let read = reader.read(&mut piece[..wanted]).await?;
            if read == 0 {
                if content_length.is_some() {
                    return Err(HttpError::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the daemon closed the connection inside a response",
                    )));
                }
                break;
            }
            body.extend_from_slice(&piece[..read]);
            lines.feed(&body, on_line);
        }
        body
    };
    lines.finish(&body, on_line);
    Ok(Response { status, body })
}

/// Hands the complete lines of a growing body to a callback, each once.
#[derive(Default)]
struct LineSplitter {
    emitted: usize,
}

impl LineSplitter {
    fn feed(&mut self, body: &[u8], on_line: &mut (dyn FnMut(&str) + Send)) {
        while let Some(end) = body[self.emitted..].iter().position(|byte| *byte == b'\n') {
            let line = &body[self.emitted..self.emitted + end];
            self.emitted += end + 1;
            let text = String::from_utf8_lossy(line);
            let text = text.trim_end_matches('\r');
            if !text.is_empty() {
                on_line(text);
            }
        }
    }

    /// The last line, when the body does not end with a line break.
    fn finish(&mut self, body: &[u8], on_line: &mut (dyn FnMut(&str) + Send)) {
        self.feed(body, on_line);
        if self.emitted < body.len() {
            let text = String::from_utf8_lossy(&body[self.emitted..]).into_owned();
            self.emitted = body.len();
            if !text.trim().is_empty() {
                on_line(text.trim_end());
            }
        }
    }
}

async fn read_chunked<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    lines: &mut LineSplitter,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    loop {
        let size_line = read_line(reader).await?;
        let size_text = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| HttpError::Malformed(format!("chunk size `{size_line}`")))?;
        if size == 0 {
            // Trailers, if any, end with an empty line.
            loop {
                if read_line(reader).await?.is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAXIMUM_BODY {
            return Err(HttpError::Malformed(
                "a chunked body over the size limit".into(),
            ));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).await?;
        lines.feed(&body, on_line);
        let ending = read_line(reader).await?;
        if !ending.is_empty() {
            return Err(HttpError::Malformed("chunk without its line ending".into()));
        }
    }
}

/// Reads a CRLF-terminated line without the terminator; end of stream is an error.
pub(crate) async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> Result<String, HttpError> {
    let mut line = Vec::new();
    let read = reader.read_until(b'\n', &mut line).await?;
    if read == 0 {
        return Err(HttpError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the daemon closed the connection",
        )));
    }
    while line
        .last()
        .is_some_and(|byte| *byte == b'\n' || *byte == b'\r')
    {
        line.pop();
    }
    String::from_utf8(line)
        .map_err(|_| HttpError::Malformed("a header line that is not UTF-8".into()))
}

/// Splits Docker's multiplexed log stream (8-byte frame headers: stream, 0, 0, 0, size)
/// into text. A body that is not framed (a TTY container) is returned as it is.
pub fn demultiplex_logs(bytes: &[u8]) -> String {
    let mut text = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 8 && rest[0] <= 2 && rest[1..4] == [0, 0, 0] {
        let size = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let end = (8 + size).min(rest.len());
        text.extend_from_slice(&rest[8..end]);
        rest = &rest[end..];
    }
    text.extend_from_slice(rest);
    String::from_utf8_lossy(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_hostile_query_values_as_data() {
        let request = Request::new("POST", "/containers/create").query("name", "a$(touch x);`b` c");
        assert_eq!(
            request.target("1.41"),
            "/v1.41/containers/create?name=a%24%28touch%20x%29%3B%60b%60%20c"
        );
    }

    #[test]
    fn writes_json_bodies_with_length() {
        let bytes = Request::new("POST", "/networks/create")
            .json(serde_json::json!({"Name": "n"}))
            .to_bytes("1.41");
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("POST /v1.41/networks/create HTTP/1.1\r\n"));
        assert!(text.contains(
            "Content-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"Name\":\"n\"}"
        ));
    }

    #[tokio::test]
    async fn reads_pipelined_responses_of_every_framing() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]\
HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n\
HTTP/1.1 204 No Content\r\n\r\n\
HTTP/1.1 404 Not Found\r\nContent-Length: 23\r\n\r\n{\"message\":\"no such x\"}";
        let mut reader = tokio::io::BufReader::new(&wire[..]);
        let first = read_response(&mut reader, false).await.unwrap();
        assert_eq!((first.status, first.body.as_slice()), (200, &b"[]"[..]));
        let second = read_response(&mut reader, false).await.unwrap();
        assert_eq!(second.json().unwrap(), serde_json::json!({"a": 1}));
        let third = read_response(&mut reader, false).await.unwrap();
        assert_eq!((third.status, third.body.len()), (204, 0));
        let fourth = read_response(&mut reader, false).await.unwrap();
        assert_eq!(fourth.error_message(), "no such x");
    }

    #[tokio::test]
    async fn a_truncated_response_is_an_error_not_a_hang() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        let mut reader = tokio::io::BufReader::new(&wire[..]);
        assert!(read_response(&mut reader, false).await.is_err());
    }

    #[test]
    fn demultiplexes_log_frames() {
        let mut bytes = vec![1, 0, 0, 0, 0, 0, 0, 3];
        bytes.extend_from_slice(b"out");
        bytes.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 4]);
        bytes.extend_from_slice(b"err\n");
        assert_eq!(demultiplex_logs(&bytes), "outerr\n");
    }
}
