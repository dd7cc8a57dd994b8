//! Reading messages: the one place that parses RFC 5322/MIME (with `mail-parser`). A message
//! that does not parse is still stored; its fields are then simply empty.

use mail_parser::{Address, MessageParser};

use crate::store::mail::Mailbox;

/// Longest snippet, in characters.
pub const SNIPPET_CHARS: usize = 160;

/// The fields a listing shows, decoded once at delivery.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub subject: String,
    pub snippet: String,
    pub message_id: Option<String>,
    pub has_attachments: bool,
}

/// The bodies and headers a full message shows, decoded on read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Content {
    /// Line breaks are `\n`, as a sender gives them, not the CRLF of the source.
    pub text: Option<String>,
    /// Line breaks as in `text`.
    pub html: Option<String>,
    /// Every top-level header in order: name as written, value unfolded.
    pub headers: Vec<(String, String)>,
}

fn mailboxes(a: Option<&Address<'_>>) -> Vec<Mailbox> {
    a.map(|a| {
        a.iter()
            .filter_map(|m| {
                Some(Mailbox {
                    name: m.name().map(str::to_owned).filter(|n| !n.trim().is_empty()),
                    address: m.address()?.to_owned(),
                })
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Collapses runs of whitespace and cuts to `max` characters.
fn snippet(text: &str, max: usize) -> String {
    let mut out = String::new();
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() >= max {
            break;
        }
    }
    out.chars().take(max).collect()
}

/// Decodes the listing fields of a message.
pub fn summarize(raw: &[u8]) -> Summary {
    let Some(m) = MessageParser::default().parse(raw) else {
        return Summary::default();
    };
    Summary {
        from: mailboxes(m.from()).into_iter().next(),
        to: mailboxes(m.to()),
        cc: mailboxes(m.cc()),
        reply_to: mailboxes(m.reply_to()),
        subject: m.subject().unwrap_or_default().to_owned(),
        snippet: m
            .body_preview(SNIPPET_CHARS * 4)
            .map(|p| snippet(&p, SNIPPET_CHARS))
            .unwrap_or_default(),
        message_id: m.message_id().map(str::to_owned),
        has_attachments: m.attachment_count() > 0,
    }
}

/// Decodes the bodies and headers of a message.
pub fn content(raw: &[u8]) -> Content {
    let Some(m) = MessageParser::default().parse(raw) else {
        return Content::default();
    };
    let headers = m
        .headers_raw()
        .map(|(name, value)| (name.to_owned(), unfold(value)))
        .collect();
    // A multipart's boundaries take the CRLF before them; a single part ends with a CRLF
    // of its own, which is no more part of the text.
    let single = !m.root_part().is_multipart();
    let body = |s: &str| {
        let s = if single {
            s.strip_suffix("\r\n").unwrap_or(s)
        } else {
            s
        };
        s.replace("\r\n", "\n")
    };
    Content {
        // Only real parts: mail-parser would otherwise make HTML out of text and vice versa.
        text: m
            .text_part(0)
            .filter(|p| p.is_text() && !p.is_text_html())
            .and_then(|p| p.text_contents())
            .map(body),
        html: m
            .html_part(0)
            .filter(|p| p.is_text_html())
            .and_then(|p| p.text_contents())
            .map(body),
        headers,
    }
}

/// Removes every top-level `Bcc` header (with its folded lines), as a submission server does
/// (RFC 5321 7.2; Postfix's cleanup): the message is stored once for every recipient, so a
/// `Bcc` header left in it would show the blind recipients to all of them.
pub fn strip_bcc(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    let mut dropping = false;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        if line == b"\r\n" || line == b"\n" {
            // The end of the header section: the body is kept as it is.
            out.extend_from_slice(rest);
            return out;
        }
        let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !folded {
            dropping = line
                .iter()
                .position(|&b| b == b':')
                .is_some_and(|colon| line[..colon].trim_ascii().eq_ignore_ascii_case(b"bcc"));
        }
        if !dropping {
            out.extend_from_slice(line);
        }
        rest = tail;
    }
    out
}

/// Unfolds a raw header value (RFC 5322 2.2.3) and trims it.
fn unfold(value: &str) -> String {
    value
        .replace("\r\n", "")
        .replace('\n', "")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIMPLE: &[u8] = b"From: \"Alice A.\" <alice@example.test>\r\n\
To: bob@example.test, Carol <carol@example.test>\r\n\
Cc: dave@example.test\r\n\
Subject: =?UTF-8?B?SGVsbG8gWm/Dqw==?=\r\n\
Message-ID: <m1@example.test>\r\n\
X-Long: one\r\n two\r\n\
\r\n\
Hello   there,\r\n  world\r\n";

    #[test]
    fn summarizes_addresses_subject_and_snippet() {
        let s = summarize(SIMPLE);
        assert_eq!(
            s.from,
            Some(Mailbox {
                name: Some("Alice A.".into()),
                address: "alice@example.test".into()
            })
        );
        assert_eq!(s.to.len(), 2);
        assert_eq!(s.to[1].name.as_deref(), Some("Carol"));
        assert_eq!(s.cc[0].address, "dave@example.test");
        assert_eq!(s.subject, "Hello Zoë");
        assert_eq!(s.snippet, "Hello there, world");
        assert_eq!(s.message_id.as_deref(), Some("m1@example.test"));
        assert!(!s.has_attachments);
    }

    #[test]
    fn content_has_text_and_unfolded_headers() {
        let c = content(SIMPLE);
        assert_eq!(c.text.as_deref(), Some("Hello   there,\n  world"));
        assert_eq!(c.html, None);
        assert!(
            c.headers.contains(&("X-Long".into(), "one two".into())),
            "{:?}",
            c.headers
        );
        assert_eq!(c.headers[0].0, "From");
    }

    #[test]
    fn garbage_still_yields_a_summary() {
        let s = summarize(b"\xff\xfe not a message");
        assert!(s.from.is_none());
        let _ = content(b"");
    }

    #[test]
    fn bcc_headers_go_and_nothing_else_changes() {
        let raw = b"From: a@x.test\r\nBcc: b@x.test,\r\n c@x.test\r\nTo: d@x.test\r\n\
bcc : e@x.test\r\nSubject: s\r\n\r\nBcc: in the body stays\r\n";
        assert_eq!(
            strip_bcc(raw),
            b"From: a@x.test\r\nTo: d@x.test\r\nSubject: s\r\n\r\nBcc: in the body stays\r\n"
        );
        let plain = b"From: a@x.test\r\nSubject: s\r\n\r\nbody\r\n";
        assert_eq!(strip_bcc(plain), plain);
        assert_eq!(strip_bcc(b"Bcc: x@y.z"), b"");
        assert_eq!(strip_bcc(b""), b"");
    }

    #[test]
    fn snippet_is_bounded() {
        assert_eq!(snippet(&"word ".repeat(100), 12), "word word wo");
    }
}
