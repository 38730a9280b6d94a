//! A response read as the daemon sends it: the head at once, the body piece by piece.
//!
//! [`crate::http`] reads whole bodies (and hands lines of a build's progress to a
//! callback while it does); a followed log never ends, so it must not be kept. Here the
//! body is handed out in the pieces that arrive and nothing is kept. The same head
//! reader serves an upgraded exec connection, whose body is no HTTP body at all but the
//! process's raw, bidirectional stream.

use tokio::io::{AsyncBufRead, AsyncReadExt};

use crate::http::{read_line, HttpError};

/// How a response's body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Content-Length`.
    Length(usize),
    /// Until the connection closes (no length, or an upgraded connection).
    UntilClose,
    /// No body (204, 304, 1xx).
    Empty,
}

/// A status line and the headers that matter here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub framing: Framing,
    pub content_type: Option<String>,
}

/// Reads the status line and headers.
pub async fn read_head<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<ResponseHead, HttpError> {
    let status_line = read_line(reader).await?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| HttpError::Malformed(format!("status line `{status_line}`")))?;
    let mut content_length = None;
    let mut chunked = false;
    let mut content_type = None;
    loop {
        let line = read_line(reader).await?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                content_length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| HttpError::Malformed(format!("Content-Length `{value}`")))?,
                )
            }
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "content-type" => content_type = Some(value.to_string()),
            _ => {}
        }
    }
    let framing = if status == 204 || status == 304 || (100..200).contains(&status) && status != 101
    {
        Framing::Empty
    } else if status == 101 {
        Framing::UntilClose
    } else if chunked {
        Framing::Chunked
    } else if let Some(length) = content_length {
        Framing::Length(length)
    } else {
        Framing::UntilClose
    };
    Ok(ResponseHead {
        status,
        framing,
        content_type,
    })
}

/// Reads a body in the pieces the daemon sends, keeping none of it.
pub struct BodyReader {
    framing: Framing,
    /// Bytes left in the current chunk (chunked) or in the body (length).
    remaining: usize,
    finished: bool,
    buffer: Vec<u8>,
}

impl BodyReader {
    pub fn new(framing: Framing) -> Self {
        BodyReader {
            framing,
            remaining: match framing {
                Framing::Length(length) => length,
                _ => 0,
            },
            finished: matches!(framing, Framing::Empty | Framing::Length(0)),
            buffer: vec![0; 32 * 1024],
        }
    }

    /// The next piece of the body, `None` at its end. A read never waits for more than
    /// what one network read returns.
    pub async fn next<R: AsyncBufRead + Unpin>(
        &mut self,
        reader: &mut R,
    ) -> Result<Option<Vec<u8>>, HttpError> {
        if self.finished {
            return Ok(None);
        }
        match self.framing {
            Framing::Empty => Ok(None),
            Framing::UntilClose => {
                let read = reader.read(&mut self.buffer).await?;
                if read == 0 {
                    self.finished = true;
                    return Ok(None);
                }
                Ok(Some(self.buffer[..read].to_vec()))
            }
            Framing::Length(_) => {
                let wanted = self.remaining.min(self.buffer.len());
                let read = reader.read(&mut self.buffer[..wanted]).await?;
                if read == 0 {
                    return Err(HttpError::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the daemon closed the connection inside a response",
                    )));
                }
                self.remaining -= read;
                self.finished = self.remaining == 0;
                Ok(Some(self.buffer[..read].to_vec()))
            }
            Framing::Chunked => {
                if self.remaining == 0 {
                    let size_line = read_line(reader).await?;
                    let size_text = size_line.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(size_text, 16)
                        .map_err(|_| HttpError::Malformed(format!("chunk size `{size_line}`")))?;
                    if size == 0 {
                        // Trailers, if any, end with an empty line.
                        while !read_line(reader).await?.is_empty() {}
                        self.finished = true;
                        return Ok(None);
                    }
                    self.remaining = size;
                }
                let wanted = self.remaining.min(self.buffer.len());
                let read = reader.read(&mut self.buffer[..wanted]).await?;
                if read == 0 {
                    return Err(HttpError::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the daemon closed the connection inside a chunk",
                    )));
                }
                self.remaining -= read;
                if self.remaining == 0 && !read_line(reader).await?.is_empty() {
                    return Err(HttpError::Malformed("chunk without its line ending".into()));
                }
                Ok(Some(self.buffer[..read].to_vec()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn whole_body(wire: &[u8]) -> (ResponseHead, Vec<u8>, usize) {
        let mut reader = tokio::io::BufReader::new(wire);
        let head = read_head(&mut reader).await.unwrap();
        let mut body = BodyReader::new(head.framing);
        let mut collected = Vec::new();
        let mut pieces = 0;
        while let Some(piece) = body.next(&mut reader).await.unwrap() {
            collected.extend(piece);
            pieces += 1;
        }
        (head, collected, pieces)
    }

    #[tokio::test]
    async fn chunked_bodies_are_handed_out_chunk_by_chunk() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        let (head, body, pieces) = whole_body(wire).await;
        assert_eq!(head.status, 200);
        assert_eq!(
            head.content_type.as_deref(),
            Some("application/vnd.docker.multiplexed-stream")
        );
        assert_eq!((body.as_slice(), pieces), (&b"abcde"[..], 2));
    }

    #[tokio::test]
    async fn length_and_close_framed_bodies_end_where_they_should() {
        let (_, body, _) = whole_body(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nxyzNEXT").await;
        assert_eq!(body, b"xyz");
        let (head, body, _) = whole_body(b"HTTP/1.1 101 UPGRADED\r\nUpgrade: tcp\r\n\r\nraw").await;
        assert_eq!((head.status, head.framing), (101, Framing::UntilClose));
        assert_eq!(body, b"raw");
        let (head, body, _) = whole_body(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        assert_eq!((head.framing, body.len()), (Framing::Empty, 0));
    }

    #[tokio::test]
    async fn a_chunk_cut_short_is_an_error_not_an_end() {
        let mut reader = tokio::io::BufReader::new(
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nabc"[..],
        );
        let head = read_head(&mut reader).await.unwrap();
        let mut body = BodyReader::new(head.framing);
        assert_eq!(body.next(&mut reader).await.unwrap().unwrap(), b"abc");
        assert!(body.next(&mut reader).await.is_err());
    }
}
