//! `docker system dial-stdio` as a byte stream: the road to the Docker socket when the
//! server does not forward unix sockets.

use std::pin::Pin;
use std::task::{Context, Poll};

use russh::client::Msg;
use russh::{Channel, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;

type WaitForMessage =
    Pin<Box<dyn std::future::Future<Output = (ChannelReadHalf, Option<ChannelMsg>)> + Send>>;

/// The stdin/stdout of `docker system dial-stdio` as a byte stream.
///
/// Unlike russh's own channel stream it watches stderr and the exit status: when the
/// command fails before sending anything (no Docker CLI, daemon down), the reader gets
/// an error carrying the command's message instead of a bare end of stream. It keeps
/// its channel slot until dropped, and closes the channel then.
pub(super) struct DialStdioStream {
    reader: Option<ChannelReadHalf>,
    waiting: Option<WaitForMessage>,
    pending: Vec<u8>,
    pending_offset: usize,
    received_data: bool,
    finished: bool,
    stderr: Vec<u8>,
    exit_status: Option<u32>,
    writer: Pin<Box<dyn AsyncWrite + Send>>,
    closer: Option<ChannelWriteHalf<Msg>>,
    _slot: OwnedSemaphorePermit,
}

impl DialStdioStream {
    pub(super) fn new(channel: Channel<Msg>, slot: OwnedSemaphorePermit) -> DialStdioStream {
        let (reader, writer) = channel.split();
        DialStdioStream {
            reader: Some(reader),
            waiting: None,
            pending: Vec::new(),
            pending_offset: 0,
            received_data: false,
            finished: false,
            stderr: Vec::new(),
            exit_status: None,
            writer: Box::pin(writer.make_writer()),
            closer: Some(writer),
            _slot: slot,
        }
    }

    fn failure(&self) -> Option<std::io::Error> {
        let failed =
            !self.stderr.is_empty() || matches!(self.exit_status, Some(status) if status != 0);
        if self.received_data || !failed {
            return None;
        }
        let stderr = String::from_utf8_lossy(&self.stderr).trim().to_string();
        let status = self
            .exit_status
            .map(|status| format!(" (exit status {status})"))
            .unwrap_or_default();
        Some(std::io::Error::other(format!(
            "`docker system dial-stdio` on the host failed: {stderr}{status}"
        )))
    }

    fn handle(&mut self, message: Option<ChannelMsg>) {
        match message {
            Some(ChannelMsg::Data { data }) => {
                self.received_data = true;
                self.pending = data.to_vec();
                self.pending_offset = 0;
            }
            Some(ChannelMsg::ExtendedData { data, .. }) => self.stderr.extend_from_slice(&data),
            Some(ChannelMsg::ExitStatus { exit_status }) => self.exit_status = Some(exit_status),
            // After a normal answer the end of stdout is the end of the stream; before
            // any data, keep reading to the close to collect stderr and the status.
            Some(ChannelMsg::Eof) => self.finished = self.received_data,
            Some(ChannelMsg::Close) | None => self.finished = true,
            Some(_) => {}
        }
    }
}

impl AsyncRead for DialStdioStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if self.pending_offset < self.pending.len() {
                let available = &self.pending[self.pending_offset..];
                let count = available.len().min(buffer.remaining());
                buffer.put_slice(&available[..count]);
                self.pending_offset += count;
                return Poll::Ready(Ok(()));
            }
            if self.finished {
                return Poll::Ready(self.failure().map_or(Ok(()), Err));
            }
            let mut waiting = match self.waiting.take() {
                Some(waiting) => waiting,
                None => match self.reader.take() {
                    Some(mut reader) => Box::pin(async move {
                        let message = reader.wait().await;
                        (reader, message)
                    }) as WaitForMessage,
                    None => return Poll::Ready(Ok(())),
                },
            };
            match waiting.as_mut().poll(context) {
                Poll::Pending => {
                    self.waiting = Some(waiting);
                    return Poll::Pending;
                }
                Poll::Ready((reader, message)) => {
                    self.reader = Some(reader);
                    self.handle(message);
                }
            }
        }
    }
}

impl AsyncWrite for DialStdioStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.writer.as_mut().poll_write(context, buffer)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.writer.as_mut().poll_flush(context)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.writer.as_mut().poll_shutdown(context)
    }
}

impl Drop for DialStdioStream {
    fn drop(&mut self) {
        // Closing the channel ends `docker system dial-stdio` on the host; otherwise it
        // would live as long as the connection.
        if let (Some(closer), Ok(runtime)) =
            (self.closer.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(async move {
                let _ = closer.close().await;
            });
        }
    }
}
