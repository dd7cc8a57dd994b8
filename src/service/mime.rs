//! Reading messages: the one place that parses RFC 5322/MIME (with `mail-parser`). A message
//! that does not parse is still stored; its fields are then simply empty.
//!
//! What a listing shows is decoded once, at delivery ([`summarize`], kept in the message
//! record). Everything else, bodies, attachments, links and codes, is decoded from the stored
//! source when a whole message is read ([`content`]): that read parses the source anyway, the
//! stored record keeps its format, and better heuristics apply to old mail too.

use mail_parser::{Address, MessageParser, MessagePart, MimeHeaders, PartType};

use super::{extract, html};
use crate::store::mail::Mailbox;
use crate::time::Timestamp;

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
    /// The tags of the `X-Tags` headers, as [`super::tags::from_header`] reads them.
    pub tags: Vec<String>,
}

/// The bodies and headers a full message shows, decoded on read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Content {
    /// The `Date` header, when it holds a valid date after 1970.
    pub date: Option<Timestamp>,
    /// Line breaks are `\n`, as a sender gives them, not the CRLF of the source.
    pub text: Option<String>,
    /// Line breaks as in `text`.
    pub html: Option<String>,
    /// The HTML body refers to `http`/`https` resources a viewer would load (images, CSS,
    /// fonts): see [`html::references_remote`].
    pub remote_content: bool,
    /// Every top-level header in order: name as written, value unfolded.
    pub headers: Vec<(String, String)>,
    pub attachments: Vec<AttachmentInfo>,
    /// `http`/`https` URLs of the text and HTML bodies, each once, in order.
    pub links: Vec<String>,
    /// One-time codes found near words such as "code" in the subject and text.
    pub codes: Vec<String>,
}

/// One attachment as a full message lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentInfo {
    /// Position among the message's attachments, from 0: the `{index}` of its URL.
    pub index: usize,
    /// The file name (RFC 2231 and RFC 2047 decoded), when the message gives one.
    pub filename: Option<String>,
    /// `type/subtype` in lower case; `application/octet-stream` when absent or unusable.
    pub content_type: String,
    /// Bytes of the decoded content, as [`attachment`] returns it.
    pub size: u64,
    /// The `Content-ID` without angle brackets: the HTML body shows the part with a `cid:`
    /// URL of it.
    pub content_id: Option<String>,
    /// The part asks to be shown within the body rather than offered as a download:
    /// `Content-Disposition: inline`, or no disposition and a `Content-ID`.
    pub inline: bool,
}

/// An attachment with its decoded content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub info: AttachmentInfo,
    pub data: Vec<u8>,
    /// The data is text converted to UTF-8 from the part's charset.
    pub utf8: bool,
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
        tags: super::tags::from_header(m.header_values("X-Tags").filter_map(|v| v.as_text())),
    }
}

/// Decodes the bodies, headers and attachments of a message, and finds its links and codes.
pub fn content(raw: &[u8]) -> Content {
    let Some(m) = MessageParser::default().parse(raw) else {
        return Content::default();
    };
    // Not `headers_raw`, which drops a header whose bytes are not UTF-8: show it lossily.
    let headers = m
        .root_part()
        .headers()
        .iter()
        .map(|h| {
            let value = m
                .raw_message()
                .get(h.offset_start() as usize..h.offset_end() as usize)
                .unwrap_or_default();
            (h.name().to_owned(), unfold(&String::from_utf8_lossy(value)))
        })
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
    // Only real parts: mail-parser would otherwise make HTML out of text and vice versa.
    let text = m
        .text_part(0)
        .filter(|p| p.is_text() && !p.is_text_html())
        .and_then(|p| p.text_contents())
        .map(body);
    let html = m
        .html_part(0)
        .filter(|p| p.is_text_html())
        .and_then(|p| p.text_contents())
        .map(body);
    // Codes are looked for in what a reader sees: the text body, else the HTML one as text.
    let readable = m.body_text(0);
    Content {
        date: m
            .date()
            .filter(|d| d.is_valid())
            .and_then(|d| u64::try_from(d.to_timestamp()).ok())
            .map(Timestamp),
        links: extract::links(text.as_deref(), html.as_deref()),
        codes: extract::codes(m.subject().unwrap_or_default(), readable.as_deref()),
        attachments: m
            .attachments()
            .enumerate()
            .map(|(index, part)| attachment_info(index, part))
            .collect(),
        remote_content: html.as_deref().is_some_and(html::references_remote),
        text,
        html,
        headers,
    }
}

/// The message's HTML body, with every `cid:` reference to a part of the message replaced by a
/// `data:` URI of that part's content, at most `budget` bytes of them in all (see
/// [`html::inline_cids`]), and a `<base target="_blank">` so that its links open in a new tab
/// (see [`html::links_open_in_new_tab`]); `None` when the message has no HTML body.
pub fn html_inlined(raw: &[u8], budget: usize) -> Option<String> {
    let m = MessageParser::default().parse(raw)?;
    let body = m
        .html_part(0)
        .filter(|p| p.is_text_html())
        .and_then(|p| p.text_contents())?;
    let parts: Vec<(String, &MessagePart<'_>)> = m
        .parts
        .iter()
        .filter(|p| !p.is_multipart())
        .filter_map(|p| Some((content_id(p)?, p)))
        .collect();
    let resolve = |id: &str| {
        let (_, part) = parts
            .iter()
            .find(|(cid, _)| cid == id)
            .or_else(|| parts.iter().find(|(cid, _)| cid.eq_ignore_ascii_case(id)))?;
        Some(data_uri(part))
    };
    let inlined = html::inline_cids(body, budget, resolve);
    Some(html::links_open_in_new_tab(&inlined))
}

/// A part's content as a `data:` URI, with its content type (text as UTF-8, which it is once
/// decoded).
fn data_uri(part: &MessagePart<'_>) -> String {
    use base64::Engine as _;
    let charset = match part.body {
        PartType::Text(_) | PartType::Html(_) => ";charset=utf-8",
        _ => "",
    };
    let data = base64::engine::general_purpose::STANDARD.encode(part.contents());
    format!("data:{}{charset};base64,{data}", content_type(part))
}

/// A part's `Content-ID`, trimmed and without angle brackets; `None` when absent or empty.
fn content_id(part: &MessagePart<'_>) -> Option<String> {
    let id = part.content_id()?.trim();
    let id = id.strip_prefix('<').unwrap_or(id);
    let id = id.strip_suffix('>').unwrap_or(id).trim();
    (!id.is_empty()).then(|| id.to_owned())
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

/// The text a reader sees: the text body, else the HTML body as text. For searching.
pub fn readable_text(raw: &[u8]) -> Option<String> {
    let m = MessageParser::default().parse(raw)?;
    m.body_text(0).map(|t| t.into_owned())
}

/// The attachment at `index` (from 0, as [`Content::attachments`] numbers them).
pub fn attachment(raw: &[u8], index: usize) -> Option<Attachment> {
    let m = MessageParser::default().parse(raw)?;
    let part = m.attachment(u32::try_from(index).ok()?)?;
    Some(Attachment {
        info: attachment_info(index, part),
        data: part.contents().to_vec(),
        utf8: matches!(part.body, PartType::Text(_) | PartType::Html(_)),
    })
}

fn attachment_info(index: usize, part: &MessagePart<'_>) -> AttachmentInfo {
    AttachmentInfo {
        index,
        filename: part
            .attachment_name()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        content_type: content_type(part),
        size: part.contents().len() as u64,
        content_id: content_id(part),
        inline: match part.content_disposition() {
            Some(disposition) => disposition.is_inline(),
            None => content_id(part).is_some(),
        },
    }
}

/// `type/subtype` of a part, lower-cased; parts without a usable one are octet streams, and
/// nested messages are `message/rfc822` whatever they say.
fn content_type(part: &MessagePart<'_>) -> String {
    const DEFAULT: &str = "application/octet-stream";
    if part.is_message() {
        return "message/rfc822".into();
    }
    let Some(ct) = part.content_type() else {
        return match part.body {
            PartType::Text(_) => "text/plain".into(),
            _ => DEFAULT.into(),
        };
    };
    // RFC 2045 token characters only, so the value is always a valid HTTP header.
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match ct.subtype() {
        Some(sub) if token(ct.ctype()) && token(sub) => {
            format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase()
        }
        _ => DEFAULT.into(),
    }
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

// ----- structure (IMAP ENVELOPE and BODYSTRUCTURE) ---------------------------------------------

/// A message's envelope fields, as IMAP's ENVELOPE gives them (RFC 3501 7.4.2): decoded
/// header values; `sender` and `reply_to` fall back to `from`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvelopeFields {
    pub date: Option<String>,
    pub subject: Option<String>,
    pub from: Vec<Mailbox>,
    pub sender: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub in_reply_to: Option<String>,
    /// With its angle brackets.
    pub message_id: Option<String>,
}

/// The MIME structure of a message or part (IMAP's BODYSTRUCTURE).
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A part with a body of its own.
    Single {
        /// Lower-cased type and subtype.
        ctype: String,
        subtype: String,
        params: Vec<(String, String)>,
        id: Option<String>,
        description: Option<String>,
        /// The Content-Transfer-Encoding, `7BIT` when none is given.
        encoding: String,
        /// Size of the body as stored (encoded), in bytes.
        size: u32,
        /// Lines of the body, for text and message parts.
        lines: u32,
        /// A `message/rfc822` part's own envelope and structure.
        message: Option<Box<(EnvelopeFields, Shape)>>,
        disposition: Option<(String, Vec<(String, String)>)>,
    },
    /// A multipart part and its parts.
    Multi {
        subtype: String,
        params: Vec<(String, String)>,
        parts: Vec<Shape>,
    },
}

/// The envelope and structure of a message; `None` when it does not parse.
pub fn structure(raw: &[u8]) -> Option<(EnvelopeFields, Shape)> {
    let m = MessageParser::default().parse(raw)?;
    Some(message_structure(&m))
}

fn message_structure(m: &mail_parser::Message<'_>) -> (EnvelopeFields, Shape) {
    let from = mailboxes(m.from());
    let or_from = |v: Vec<Mailbox>| if v.is_empty() { from.clone() } else { v };
    let envelope = EnvelopeFields {
        date: m.header_raw("Date").map(|d| unfold(d).trim().to_owned()),
        subject: m.subject().map(str::to_owned),
        sender: or_from(mailboxes(m.sender())),
        reply_to: or_from(mailboxes(m.reply_to())),
        from: from.clone(),
        to: mailboxes(m.to()),
        cc: mailboxes(m.cc()),
        bcc: mailboxes(m.bcc()),
        in_reply_to: m
            .header_raw("In-Reply-To")
            .map(|v| unfold(v).trim().to_owned()),
        message_id: m.message_id().map(|id| format!("<{id}>")),
    };
    (envelope, part_shape(m, 0))
}

fn params(ct: Option<&mail_parser::ContentType<'_>>) -> Vec<(String, String)> {
    ct.and_then(|c| c.attributes())
        .map(|a| {
            a.iter()
                .map(|x| (x.name.to_string(), x.value.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn part_shape(m: &mail_parser::Message<'_>, id: u32) -> Shape {
    let Some(part) = m.part(id) else {
        return Shape::Multi {
            subtype: "mixed".into(),
            params: vec![],
            parts: vec![],
        };
    };
    let ct = part.content_type();
    let (ctype, subtype) = match ct {
        Some(c) => (
            c.ctype().to_ascii_lowercase(),
            c.subtype().unwrap_or("plain").to_ascii_lowercase(),
        ),
        None => ("text".into(), "plain".into()),
    };
    if let PartType::Multipart(children) = &part.body {
        return Shape::Multi {
            subtype,
            params: params(ct),
            parts: children.iter().map(|c| part_shape(m, *c)).collect(),
        };
    }
    let raw = m.raw_message.as_ref();
    let body = raw
        .get(part.offset_body as usize..part.offset_end as usize)
        .unwrap_or_default();
    let message = match &part.body {
        PartType::Message(inner) => Some(Box::new(message_structure(inner))),
        _ => None,
    };
    Shape::Single {
        ctype,
        subtype,
        params: params(ct),
        id: part.content_id().map(|i| format!("<{i}>")),
        description: part.content_description().map(str::to_owned),
        encoding: part
            .content_transfer_encoding()
            .map_or_else(|| "7BIT".into(), |e| e.to_ascii_uppercase()),
        size: u32::try_from(body.len()).unwrap_or(u32::MAX),
        lines: u32::try_from(body.iter().filter(|b| **b == b'\n').count()).unwrap_or(u32::MAX),
        message,
        disposition: part
            .content_disposition()
            .map(|d| (d.ctype().to_ascii_lowercase(), params(Some(d)))),
    }
}
