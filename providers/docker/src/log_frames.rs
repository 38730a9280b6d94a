//! Docker's multiplexed output stream, decoded as it arrives.
//!
//! A container without a TTY (and an exec without one) sends its stdout and stderr over
//! one connection in frames: an 8-byte header — the stream (0 stdin, 1 stdout, 2
//! stderr), three zero bytes, the payload's size as a big-endian u32 — then the payload.
//! A network read can end anywhere, inside a header or a payload, so the decoder keeps
//! what it has not yet been able to use and hands out whole payloads only. With a TTY
//! there are no frames: every byte is the terminal's output.

/// Which of the process's streams a piece of output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// Some bytes of output, as the process wrote them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputChunk {
    pub stream: OutputStream,
    pub bytes: Vec<u8>,
}

/// Turns the bytes of a log or exec stream, in pieces of any size, into output chunks.
#[derive(Debug)]
pub struct LogFrameDecoder {
    multiplexed: bool,
    pending: Vec<u8>,
}

const HEADER_SIZE: usize = 8;

impl LogFrameDecoder {
    /// `multiplexed` is false for a container or exec with a TTY (its output is raw).
    pub fn new(multiplexed: bool) -> Self {
        LogFrameDecoder {
            multiplexed,
            pending: Vec::new(),
        }
    }

    /// Takes the next bytes read from the daemon; returns every chunk now complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<OutputChunk> {
        if !self.multiplexed {
            if bytes.is_empty() {
                return Vec::new();
            }
            return vec![OutputChunk {
                stream: OutputStream::Stdout,
                bytes: bytes.to_vec(),
            }];
        }
        self.pending.extend_from_slice(bytes);
        let mut chunks = Vec::new();
        let mut start = 0;
        while self.pending.len() - start >= HEADER_SIZE {
            let header = &self.pending[start..start + HEADER_SIZE];
            let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            if self.pending.len() - start - HEADER_SIZE < size {
                break;
            }
            // Stdin (0) is never sent back; anything but stderr is treated as stdout.
            let stream = if header[0] == 2 {
                OutputStream::Stderr
            } else {
                OutputStream::Stdout
            };
            let payload = &self.pending[start + HEADER_SIZE..start + HEADER_SIZE + size];
            if !payload.is_empty() {
                chunks.push(OutputChunk {
                    stream,
                    bytes: payload.to_vec(),
                });
            }
            start += HEADER_SIZE + size;
        }
        self.pending.drain(..start);
        chunks
    }

    /// Bytes left over at the end of the stream (a frame cut short): how many.
    pub fn leftover(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![stream, 0, 0, 0];
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    fn chunk(stream: OutputStream, text: &str) -> OutputChunk {
        OutputChunk {
            stream,
            bytes: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn whole_frames_become_chunks_of_their_stream() {
        let mut wire = frame(1, b"out\n");
        wire.extend(frame(2, b"err\n"));
        let mut decoder = LogFrameDecoder::new(true);
        assert_eq!(
            decoder.feed(&wire),
            vec![
                chunk(OutputStream::Stdout, "out\n"),
                chunk(OutputStream::Stderr, "err\n")
            ]
        );
        assert_eq!(decoder.leftover(), 0);
    }

    #[test]
    fn frames_split_anywhere_are_reassembled_one_byte_at_a_time() {
        let mut wire = frame(1, b"hello ");
        wire.extend(frame(2, b"world\n"));
        wire.extend(frame(1, b""));
        let mut decoder = LogFrameDecoder::new(true);
        let mut chunks = Vec::new();
        for byte in &wire {
            chunks.extend(decoder.feed(std::slice::from_ref(byte)));
        }
        assert_eq!(
            chunks,
            vec![
                chunk(OutputStream::Stdout, "hello "),
                chunk(OutputStream::Stderr, "world\n")
            ]
        );
        assert_eq!(decoder.leftover(), 0);
    }

    #[test]
    fn a_header_cut_short_waits_for_the_rest() {
        let wire = frame(2, b"abc");
        let mut decoder = LogFrameDecoder::new(true);
        assert!(decoder.feed(&wire[..5]).is_empty());
        assert_eq!(decoder.leftover(), 5);
        assert_eq!(
            decoder.feed(&wire[5..]),
            vec![chunk(OutputStream::Stderr, "abc")]
        );
    }

    #[test]
    fn a_tty_stream_is_passed_through_as_stdout() {
        let mut decoder = LogFrameDecoder::new(false);
        assert_eq!(
            decoder.feed(b"\x01\x00raw bytes"),
            vec![chunk(OutputStream::Stdout, "\x01\x00raw bytes")]
        );
        assert!(decoder.feed(b"").is_empty());
    }
}
