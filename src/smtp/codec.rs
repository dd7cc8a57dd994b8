//! SMTP's line limits and the assembly of a DATA body (dot-unstuffing, CRLF line ends, the
//! size limit). Lines are read by [`crate::lines`].

use crate::lines::Line;

/// Longest command line, CRLF included (RFC 5321 4.5.3.1.4 text line).
pub const MAX_LINE: usize = 1000;
/// Longest AUTH line (the command with an initial response, or a response to a challenge),
/// CRLF included (RFC 4954 4).
pub const MAX_AUTH_LINE: usize = 12_288;

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
