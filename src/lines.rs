//! The line-oriented side of the text mail protocols (SMTP, POP3): reading lines with a length
//! limit that never buffers more than the limit, and a connection that holds back output while
//! the client has pipelined commands buffered, sends it before every read that would wait, and
//! gives up on a silent client or when the server stops.
//!
//! A line ends at LF; a CR before it is dropped with it. An over-long line is read to its end
//! and thrown away, so the connection stays in step with the client and survives.

use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::watch;

/// Held-back output past this size is sent at once, even while commands are buffered.
const FLUSH_AT: usize = 64 * 1024;

/// One line of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A line without its line end.
    Complete(Vec<u8>),
    /// A line longer than the limit; its bytes were dropped.
    TooLong,
    /// The client closed the connection (a partial last line is dropped).
    Eof,
}

/// Reads one line of at most `max` bytes, line end included.
///
/// # Errors
/// I/O errors of the connection.
pub async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::Eof);
        }
        let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let n = chunk.len();
        if !too_long && line.len() + n <= max {
            line.extend_from_slice(chunk);
        } else {
            too_long = true;
            line = Vec::new();
        }
        r.consume(n);
        if found {
            if too_long {
                return Ok(Line::TooLong);
            }
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Line::Complete(line));
        }
    }
}

/// Whether `buf` holds a whole line: if not, the next read waits for the client, so output
/// held back for pipelining must be sent first.
pub fn has_line(buf: &[u8]) -> bool {
    buf.contains(&b'\n')
}

/// Why [`LineConn::line`] gave no line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoLine {
    /// The client closed the connection or it failed: nothing more to send.
    Gone,
    /// The client was silent for the idle timeout.
    Idle,
    /// The server is stopping: answer with the protocol's goodbye and close.
    Stopping,
}

/// A stream with its read buffer and the output not yet sent.
pub struct LineConn<S> {
    /// The stream and what has been read from it but not yet taken.
    pub io: BufReader<S>,
    pending: Vec<u8>,
    idle: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> LineConn<S> {
    /// A connection over `stream` that gives up on a client silent for `idle`.
    pub fn new(stream: S, idle: Duration) -> Self {
        LineConn {
            io: BufReader::new(stream),
            pending: Vec::new(),
            idle,
        }
    }

    /// Queues output, sent at the next read that would wait, or [`LineConn::flush`].
    pub fn queue(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// Sends the held-back output.
    ///
    /// # Errors
    /// [`NoLine::Gone`] when the write fails or takes longer than the idle timeout.
    pub async fn flush(&mut self) -> Result<(), NoLine> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.pending);
        let write = async {
            self.io.write_all(&out).await?;
            self.io.flush().await
        };
        match tokio::time::timeout(self.idle, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(NoLine::Gone),
        }
    }

    /// Sends whatever is held back, then closes.
    pub async fn close(&mut self) {
        if self.flush().await.is_ok() {
            let _ = tokio::time::timeout(self.idle, self.io.shutdown()).await;
        }
    }

    /// The next line of at most `max` bytes. Sends held-back output first when the client
    /// may be waiting for it; gives up after the idle timeout and, when `stop` is given, when
    /// the server shuts down (only between commands: pipelined commands already received are
    /// still answered).
    ///
    /// # Errors
    /// [`NoLine`]: why there is no line.
    pub async fn line(
        &mut self,
        max: usize,
        stop: Option<&mut watch::Receiver<bool>>,
    ) -> Result<Line, NoLine> {
        let buffered = has_line(self.io.buffer());
        if !buffered || self.pending.len() >= FLUSH_AT {
            self.flush().await?;
        }
        let read = tokio::time::timeout(self.idle, read_line(&mut self.io, max));
        let stopping = async {
            match stop {
                Some(rx) if !buffered => {
                    let _ = rx.wait_for(|s| *s).await;
                }
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            // Once the server stops, no new command is started, even one that arrived.
            biased;
            () = stopping => Err(NoLine::Stopping),
            r = read => match r {
                Ok(Ok(Line::Eof)) | Ok(Err(_)) => Err(NoLine::Gone),
                Ok(Ok(line)) => Ok(line),
                Err(_) => Err(NoLine::Idle),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Line> {
        // A tiny buffer, so lines arrive in pieces.
        let mut r = tokio::io::BufReader::with_capacity(3, input);
        let mut out = Vec::new();
        loop {
            let l = read_line(&mut r, max).await.unwrap();
            let eof = l == Line::Eof;
            out.push(l);
            if eof {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn lines_end_at_lf_with_an_optional_cr() {
        let got = lines(b"NOOP\r\nQUIT\nlast", 100).await;
        assert_eq!(
            got,
            vec![
                Line::Complete(b"NOOP".to_vec()),
                Line::Complete(b"QUIT".to_vec()),
                Line::Eof
            ]
        );
    }

    #[tokio::test]
    async fn an_over_long_line_is_dropped_and_the_next_one_read() {
        let mut input = vec![b'x'; 2500];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        let got = lines(&input, 1000).await;
        assert_eq!(
            got,
            vec![Line::TooLong, Line::Complete(b"NOOP".to_vec()), Line::Eof]
        );
        // Exactly at the limit, CRLF included, is fine; one more byte is not.
        let mut exact = vec![b'y'; 998];
        exact.extend_from_slice(b"\r\n");
        assert_eq!(
            lines(&exact, 1000).await[0],
            Line::Complete(vec![b'y'; 998])
        );
        let mut over = vec![b'y'; 999];
        over.extend_from_slice(b"\r\n");
        assert_eq!(lines(&over, 1000).await[0], Line::TooLong);
    }
}
