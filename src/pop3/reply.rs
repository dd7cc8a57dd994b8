//! POP3 responses (RFC 1939 3): `+OK` or `-ERR` with a text, optionally followed by a
//! dot-stuffed multi-line body; response codes from RFC 2449 8 and RFC 3206 (`[AUTH]`,
//! `[SYS/TEMP]`, `[IN-USE]`), and the one place that turns a domain [`Error`] into a response.

use tracing::error;

use crate::error::Error;

/// The status indicator a response starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `+OK`.
    Ok,
    /// `-ERR`.
    Err,
    /// `+`: a SASL challenge, in the middle of AUTH (RFC 5034 4).
    Challenge,
}

/// One POP3 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: Status,
    /// The text after the status indicator (may be empty).
    pub text: String,
    /// The lines of a multi-line response (CAPA, LIST and UIDL without an argument), without
    /// their line ends; `None` for a single-line one.
    pub lines: Option<Vec<String>>,
}

impl Reply {
    /// `+OK text`.
    pub fn ok(text: impl Into<String>) -> Reply {
        Reply {
            status: Status::Ok,
            text: text.into(),
            lines: None,
        }
    }

    /// `-ERR text`.
    pub fn err(text: impl Into<String>) -> Reply {
        Reply {
            status: Status::Err,
            text: text.into(),
            lines: None,
        }
    }

    /// `+OK text` followed by `lines` and the terminating `.`.
    pub fn multi(text: impl Into<String>, lines: Vec<String>) -> Reply {
        Reply {
            status: Status::Ok,
            text: text.into(),
            lines: Some(lines),
        }
    }

    /// `+ ` with an empty challenge: the client sends its PLAIN response next.
    pub fn challenge() -> Reply {
        Reply {
            status: Status::Challenge,
            text: String::new(),
            lines: None,
        }
    }

    /// Whether it is `+OK`.
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// The response on the wire, every line ending in CRLF, lines of a multi-line body
    /// dot-stuffed.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(match self.status {
            Status::Ok => b"+OK".as_slice(),
            Status::Err => b"-ERR",
            Status::Challenge => b"+",
        });
        if !self.text.is_empty() || self.status == Status::Challenge {
            out.push(b' ');
            out.extend_from_slice(self.text.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if let Some(lines) = &self.lines {
            for line in lines {
                stuff_line(&mut out, line.as_bytes());
            }
            out.extend_from_slice(b".\r\n");
        }
        out
    }

    // ----- the responses given in more than one place -----------------------------------------

    /// A command that needs a logged-in session.
    pub fn log_in_first() -> Reply {
        Reply::err("log in first")
    }

    /// A line over the length limit (its bytes were dropped unread).
    pub fn line_too_long() -> Reply {
        Reply::err("line too long")
    }

    /// The server is shutting down; the connection closes without the UPDATE state.
    pub fn shutting_down() -> Reply {
        Reply::err("[SYS/TEMP] the server is shutting down; try again later")
    }

    /// The client was silent for too long (RFC 1939 3: the autologout timer).
    pub fn idle() -> Reply {
        Reply::err("idle for too long, closing the connection; no messages deleted")
    }

    /// Too many connections at once.
    pub fn too_many_connections() -> Reply {
        Reply::err("[SYS/TEMP] too many connections; try again later")
    }
}

/// Appends one line of a multi-line body: a leading `.` doubled (RFC 1939 3), CRLF at its end.
fn stuff_line(out: &mut Vec<u8>, line: &[u8]) {
    if line.first() == Some(&b'.') {
        out.push(b'.');
    }
    out.extend_from_slice(line);
    out.extend_from_slice(b"\r\n");
}

/// A message's source as the body of a RETR or TOP response: every line dot-stuffed and
/// ended with CRLF (a bare LF becomes CRLF; a last line without a line end gets one), then the
/// terminating `.`. With `top`, only the header, the blank line after it and that many lines of
/// the body (RFC 1939 7, TOP).
pub fn message_body(raw: &[u8], top: Option<usize>) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32 + 8);
    let mut in_body = false;
    let mut body_lines = 0usize;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if let Some(max) = top
            && in_body
        {
            if body_lines == max {
                break;
            }
            body_lines += 1;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        stuff_line(&mut out, text);
        if text.is_empty() {
            in_body = true;
        }
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The response to a domain error.
pub fn for_error(e: &Error) -> Reply {
    match e {
        Error::InvalidCredentials => Reply::err("[AUTH] invalid user name or password"),
        Error::TooManyAttempts { retry_after } => Reply::err(format!(
            "[AUTH] too many failed logins for this address; try again in {} s",
            retry_after.as_secs().max(1)
        )),
        Error::NotFound(_) => Reply::err("no such message"),
        other => {
            error!(error = %other, "POP3: the service failed");
            Reply::err("[SYS/TEMP] the server cannot do that now; try again later")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multi_line_responses() {
        assert_eq!(Reply::ok("").to_wire(), b"+OK\r\n");
        assert_eq!(Reply::err("no").to_wire(), b"-ERR no\r\n");
        assert_eq!(Reply::challenge().to_wire(), b"+ \r\n");
        let r = Reply::multi("2 messages", vec!["1 10".into(), ".dot".into()]);
        assert_eq!(r.to_wire(), b"+OK 2 messages\r\n1 10\r\n..dot\r\n.\r\n");
    }

    #[test]
    fn message_bodies_are_stuffed_with_crlf_line_ends() {
        let raw = b"Subject: x\r\n\r\n.leading\r\nbare lf\nlast";
        assert_eq!(
            message_body(raw, None),
            b"Subject: x\r\n\r\n..leading\r\nbare lf\r\nlast\r\n.\r\n"
        );
        assert_eq!(message_body(b"", None), b".\r\n");
        assert_eq!(message_body(b"A: b\r\n\r\n", None), b"A: b\r\n\r\n.\r\n");
    }

    #[test]
    fn top_gives_the_header_and_n_body_lines() {
        let raw = b"A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\n\r\nfour\r\n";
        assert_eq!(message_body(raw, Some(0)), b"A: 1\r\nB: 2\r\n\r\n.\r\n");
        assert_eq!(
            message_body(raw, Some(3)),
            b"A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\n\r\n.\r\n"
        );
        assert_eq!(message_body(raw, Some(99)), message_body(raw, None));
    }

    #[test]
    fn errors_map_to_response_codes() {
        assert!(
            for_error(&Error::InvalidCredentials)
                .text
                .starts_with("[AUTH]")
        );
        let limited = Error::TooManyAttempts {
            retry_after: std::time::Duration::from_secs(30),
        };
        assert!(for_error(&limited).text.contains("30 s"));
    }
}
