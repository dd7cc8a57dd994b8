//! Reading SMTP input: lines with a length limit that never buffer more than the limit, and
//! the assembly of a DATA body (dot-unstuffing, CRLF line ends, the size limit).
//!
//! A line ends at LF; a CR before it is dropped with it. An over-long line is read to its end
//! and thrown away, so the connection stays in step with the client and survives.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Longest command line, CRLF included (RFC 5321 4.5.3.1.4 text line).
pub const MAX_LINE: usize = 1000;
/// Longest AUTH line (the command with an initial response, or a response to a challenge),
/// CRLF included (RFC 4954 4).
pub const MAX_AUTH_LINE: usize = 12_288;

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

/// Whether `buf` holds a whole line: if not, the next read waits for the client, so replies
/// held back for pipelining must be sent first.
pub fn has_line(buf: &[u8]) -> bool {
    buf.contains(&b'\n')
}

/// A DATA body being received.
#[derive(Debug)]
pub struct Body {
    data: Vec<u8>,
    limit: usize,
    too_big: bool,
}

impl Body {
    /// An empty body that may grow to `limit` bytes (as stored: unstuffed, CRLF line ends).
    pub fn new(limit: u64) -> Body {
        Body {
            data: Vec::new(),
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            too_big: false,
        }
    }

    /// The longest line worth reading next, line end included: a longer one could not fit.
    /// Past the limit, lines are still read (to find the end) but kept short.
    pub fn next_line_limit(&self) -> usize {
        if self.too_big {
            return MAX_LINE;
        }
        // A stuffing dot, and LF read where CRLF is stored.
        (self.limit.saturating_sub(self.data.len())).saturating_add(2)
    }

    /// Adds a line of the body; returns `true` at the terminating `.` line.
    pub fn push(&mut self, line: Line) -> bool {
        let line = match line {
            Line::Complete(l) => l,
            Line::TooLong => {
                self.too_big = true;
                return false;
            }
            Line::Eof => return false,
        };
        if line == b"." {
            return true;
        }
        if self.too_big {
            return false;
        }
        // RFC 5321 4.5.2: a leading dot was doubled by the client.
        let text = line.strip_prefix(b".").unwrap_or(&line);
        if self.data.len() + text.len() + 2 > self.limit {
            self.too_big = true;
            self.data = Vec::new();
            return false;
        }
        self.data.extend_from_slice(text);
        self.data.extend_from_slice(b"\r\n");
        false
    }

    /// The message, or `None` when it grew over the limit.
    pub fn finish(self) -> Option<Vec<u8>> {
        (!self.too_big).then_some(self.data)
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
        let got = lines(&input, MAX_LINE).await;
        assert_eq!(
            got,
            vec![Line::TooLong, Line::Complete(b"NOOP".to_vec()), Line::Eof]
        );
        // Exactly at the limit, CRLF included, is fine; one more byte is not.
        let mut exact = vec![b'y'; 998];
        exact.extend_from_slice(b"\r\n");
        assert_eq!(
            lines(&exact, MAX_LINE).await[0],
            Line::Complete(vec![b'y'; 998])
        );
        let mut over = vec![b'y'; 999];
        over.extend_from_slice(b"\r\n");
        assert_eq!(lines(&over, MAX_LINE).await[0], Line::TooLong);
    }

    fn body(lines: &[&[u8]], limit: u64) -> (bool, Option<Vec<u8>>) {
        let mut b = Body::new(limit);
        let mut ended = false;
        for l in lines {
            ended = b.push(Line::Complete(l.to_vec()));
        }
        (ended, b.finish())
    }

    #[test]
    fn bodies_are_unstuffed_and_end_at_a_lone_dot() {
        let (ended, data) = body(&[b"Subject: x", b"", b"..hidden dot", b".", b"after"], 100);
        assert!(!ended, "lines after the end are not part of this body");
        assert_eq!(data.unwrap(), b"Subject: x\r\n\r\n.hidden dot\r\nafter\r\n");
        let (ended, data) = body(&[b"a", b".."], 100);
        assert!(!ended);
        assert_eq!(data.unwrap(), b"a\r\n.\r\n");
        let (ended, data) = body(&[b"a", b"."], 100);
        assert!(ended);
        assert_eq!(data.unwrap(), b"a\r\n");
    }

    #[test]
    fn bodies_over_the_limit_are_refused_but_read_to_the_end() {
        let (ended, data) = body(&[b"12345678", b"12345678", b"."], 19);
        assert!(ended);
        assert_eq!(data, None, "10 + 9 bytes fit, 10 + 10 do not");
        let (_, data) = body(&[b"12345678", b"123456"], 19);
        assert_eq!(data.unwrap().len(), 18);
        let mut b = Body::new(10);
        assert!(!b.push(Line::TooLong));
        assert!(b.push(Line::Complete(b".".to_vec())));
        assert_eq!(b.finish(), None);
    }
}
