//! FETCH data items and SEARCH keys over one copy: the parts of a message's source a client
//! asks for (RFC 3501 6.4.5, 6.4.4). The message's structure comes from the service.

use imap_next::imap_types::core::{AString, NString};
use imap_next::imap_types::datetime::DateTime;
use imap_next::imap_types::fetch::{MessageDataItem, MessageDataItemName, Section};
use imap_next::imap_types::search::SearchKey;
use imap_next::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use imap_next::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, MultiPartExtensionData, SinglePartExtensionData,
    SpecificFields,
};
use imap_next::imap_types::core::{IString, Quoted, Vec1};
use imap_next::imap_types::envelope::{Address, Envelope};

use crate::service::imap::{Copy, EnvelopeFields, Shape, Want};
use crate::store::mail::Mailbox;

/// What data items need read besides flags and sizes.
pub fn wants(names: &[MessageDataItemName<'_>]) -> Want {
    let mut want = Want::default();
    for name in names {
        match name {
            MessageDataItemName::BodyExt { .. }
            | MessageDataItemName::Rfc822
            | MessageDataItemName::Rfc822Header
            | MessageDataItemName::Rfc822Text => want.raw = true,
            MessageDataItemName::Envelope
            | MessageDataItemName::Body
            | MessageDataItemName::BodyStructure => want.structure = true,
            _ => {}
        }
    }
    want
}

fn nstr(s: &Option<String>) -> NString<'static> {
    s.as_deref().map_or(NString::NIL, |s| nstring(s.as_bytes()))
}

fn istring(s: &str) -> IString<'static> {
    IString::try_from(s.to_owned()).unwrap_or_else(|_| IString::from(Quoted::unvalidated("")))
}

fn addresses(list: &[Mailbox]) -> Vec<Address<'static>> {
    list.iter()
        .map(|m| {
            let (local, host) = m.address.rsplit_once('@').unwrap_or((&m.address, ""));
            Address {
                name: nstr(&m.name),
                adl: NString::NIL,
                mailbox: nstring(local.as_bytes()),
                host: if host.is_empty() {
                    NString::NIL
                } else {
                    nstring(host.as_bytes())
                },
            }
        })
        .collect()
}

/// ENVELOPE from the service's view of the message.
pub fn envelope(e: &EnvelopeFields) -> Envelope<'static> {
    Envelope {
        date: nstr(&e.date),
        subject: nstr(&e.subject),
        from: addresses(&e.from),
        sender: addresses(&e.sender),
        reply_to: addresses(&e.reply_to),
        to: addresses(&e.to),
        cc: addresses(&e.cc),
        bcc: addresses(&e.bcc),
        in_reply_to: nstr(&e.in_reply_to),
        message_id: nstr(&e.message_id),
    }
}

fn param_list(params: &[(String, String)]) -> Vec<(IString<'static>, IString<'static>)> {
    params
        .iter()
        .map(|(k, v)| (istring(&k.to_ascii_uppercase()), istring(v)))
        .collect()
}

/// BODYSTRUCTURE (`extended`) or BODY from the service's view of the message.
pub fn body_structure(shape: &Shape, extended: bool) -> BodyStructure<'static> {
    match shape {
        Shape::Multi {
            subtype,
            params,
            parts,
        } => {
            let mut bodies: Vec<BodyStructure<'static>> =
                parts.iter().map(|p| body_structure(p, extended)).collect();
            if bodies.is_empty() {
                // A multipart without parts: as one empty text part, which every client reads.
                bodies.push(body_structure(&empty_text(), extended));
            }
            BodyStructure::Multi {
                bodies: Vec1::unvalidated(bodies),
                subtype: istring(&subtype.to_ascii_uppercase()),
                extension_data: extended.then(|| MultiPartExtensionData {
                    parameter_list: param_list(params),
                    tail: None,
                }),
            }
        }
        Shape::Single {
            ctype,
            subtype,
            params,
            id,
            description,
            encoding,
            size,
            lines,
            message,
            disposition,
        } => {
            let basic = BasicFields {
                parameter_list: param_list(params),
                id: nstr(id),
                description: nstr(description),
                content_transfer_encoding: istring(encoding),
                size: *size,
            };
            let specific = match (ctype.as_str(), message) {
                ("message", Some(inner)) => SpecificFields::Message {
                    envelope: Box::new(envelope(&inner.0)),
                    body_structure: Box::new(body_structure(&inner.1, extended)),
                    number_of_lines: *lines,
                },
                ("text", _) => SpecificFields::Text {
                    subtype: istring(&subtype.to_ascii_uppercase()),
                    number_of_lines: *lines,
                },
                _ => SpecificFields::Basic {
                    r#type: istring(&ctype.to_ascii_uppercase()),
                    subtype: istring(&subtype.to_ascii_uppercase()),
                },
            };
            BodyStructure::Single {
                body: Body { basic, specific },
                extension_data: extended.then(|| SinglePartExtensionData {
                    md5: NString::NIL,
                    tail: Some(Disposition {
                        disposition: disposition
                            .as_ref()
                            .map(|(d, p)| (istring(&d.to_ascii_uppercase()), param_list(p))),
                        tail: None,
                    }),
                }),
            }
        }
    }
}

fn empty_text() -> Shape {
    Shape::Single {
        ctype: "text".into(),
        subtype: "plain".into(),
        params: vec![],
        id: None,
        description: None,
        encoding: "7BIT".into(),
        size: 0,
        lines: 0,
        message: None,
        disposition: None,
    }
}

/// Splits a source into its header (with the blank line ending it) and its body.
pub fn split(raw: &[u8]) -> (&[u8], &[u8]) {
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
        .unwrap_or(raw.len());
    raw.split_at(at)
}

/// The header fields of `header` whose names are (`keep`) or are not in `names`, with the
/// blank line that ends a header.
fn header_fields(header: &[u8], names: &[AString<'_>], keep: bool) -> Vec<u8> {
    let wanted = |line: &[u8]| {
        let name = line.split(|b| *b == b':').next().unwrap_or_default();
        names
            .iter()
            .any(|n| n.as_ref().eq_ignore_ascii_case(name.trim_ascii()))
    };
    let mut out = Vec::new();
    let mut taking = false;
    for line in header.split_inclusive(|b| *b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !line.starts_with(b" ") && !line.starts_with(b"\t") {
            taking = wanted(line) == keep;
        }
        if taking {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn nstring(bytes: &[u8]) -> NString<'static> {
    NString::try_from(bytes.to_vec()).unwrap_or(NString::NIL)
}

/// A section of a source, before any partial range.
fn section(raw: &[u8], section: &Option<Section<'_>>) -> Vec<u8> {
    let (header, body) = split(raw);
    match section {
        None => raw.to_vec(),
        Some(Section::Header(None)) => header.to_vec(),
        Some(Section::Text(None)) => body.to_vec(),
        Some(Section::HeaderFields(None, names)) => header_fields(header, names.as_ref(), true),
        Some(Section::HeaderFieldsNot(None, names)) => header_fields(header, names.as_ref(), false),
        // Part 1 of a message that is not multipart is its body (RFC 3501 6.4.5).
        Some(Section::Part(p)) if p.0.as_ref().len() == 1 && p.0.as_ref()[0].get() == 1 => {
            body.to_vec()
        }
        Some(_) => Vec::new(),
    }
}

/// One data item of a copy, other than FLAGS and UID (the session's); `None` for an item
/// this server does not give.
pub fn item(name: &MessageDataItemName<'static>, c: &Copy) -> Option<MessageDataItem<'static>> {
    let raw = c.raw.as_deref().unwrap_or_default();
    Some(match name {
        MessageDataItemName::Rfc822Size => {
            MessageDataItem::Rfc822Size(u32::try_from(c.size).unwrap_or(u32::MAX))
        }
        MessageDataItemName::InternalDate => MessageDataItem::InternalDate(internal_date(c)?),
        MessageDataItemName::Rfc822 => MessageDataItem::Rfc822(nstring(raw)),
        MessageDataItemName::Envelope => MessageDataItem::Envelope(match &c.structure {
            Some((e, _)) => envelope(e),
            None => envelope(&EnvelopeFields::default()),
        }),
        MessageDataItemName::BodyStructure | MessageDataItemName::Body => {
            let extended = matches!(name, MessageDataItemName::BodyStructure);
            let shape = c
                .structure
                .as_ref()
                .map_or_else(empty_text, |s| s.1.clone());
            let b = body_structure(&shape, extended);
            if extended {
                MessageDataItem::BodyStructure(b)
            } else {
                MessageDataItem::Body(b)
            }
        }
        MessageDataItemName::Rfc822Header => MessageDataItem::Rfc822Header(nstring(split(raw).0)),
        MessageDataItemName::Rfc822Text => MessageDataItem::Rfc822Text(nstring(split(raw).1)),
        MessageDataItemName::BodyExt {
            section: s,
            partial,
            ..
        } => {
            let data = self::section(raw, s);
            let (origin, data) = match partial {
                Some((start, len)) => {
                    let from = (*start as usize).min(data.len());
                    let to = from.saturating_add(len.get() as usize).min(data.len());
                    (Some(*start), data[from..to].to_vec())
                }
                None => (None, data),
            };
            MessageDataItem::BodyExt {
                section: s.clone(),
                origin,
                data: nstring(&data),
            }
        }
        _ => return None,
    })
}

fn internal_date(c: &Copy) -> Option<DateTime> {
    let utc = chrono::DateTime::from_timestamp(c.received_at.0 as i64, 0)?;
    DateTime::try_from(utc.fixed_offset()).ok()
}

/// Whether a SEARCH key needs the message's source.
pub fn search_needs_source(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(search_needs_source),
        SearchKey::Not(k) => search_needs_source(k),
        SearchKey::Or(a, b) => search_needs_source(a) || search_needs_source(b),
        SearchKey::Bcc(_)
        | SearchKey::Body(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::Subject(_)
        | SearchKey::Text(_)
        | SearchKey::To(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => true,
        _ => false,
    }
}

/// Where a copy stands in the selected mailbox, for SEARCH.
pub struct SearchCtx {
    pub seq: u32,
    pub largest_seq: u32,
    pub largest_uid: u32,
    pub recent: bool,
}

fn in_set(set: &SequenceSet, n: u32, largest: u32) -> bool {
    let e = |v: &SeqOrUid| match v {
        SeqOrUid::Value(v) => v.get(),
        SeqOrUid::Asterisk => largest,
    };
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(v) => e(v) == n,
        Sequence::Range(a, b) => {
            let (a, b) = (e(a), e(b));
            (a.min(b)..=a.max(b)).contains(&n)
        }
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The unfolded value of every header field `name` in `header`.
fn header_values(header: &[u8], name: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for line in header.split_inclusive(|b| *b == b'\n') {
        let trimmed = line.trim_ascii_end();
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            if let Some(v) = current.as_mut() {
                v.extend_from_slice(trimmed);
            }
            continue;
        }
        out.extend(current.take());
        if let Some(colon) = trimmed.iter().position(|b| *b == b':')
            && trimmed[..colon].trim_ascii().eq_ignore_ascii_case(name)
        {
            current = Some(trimmed[colon + 1..].to_vec());
        }
    }
    out.extend(current);
    out
}

/// Whether a copy matches a SEARCH key. Header and text keys compare bytes of the source,
/// ignoring ASCII case.
pub fn matches(key: &SearchKey<'_>, c: &Copy, ctx: &SearchCtx) -> bool {
    let raw = c.raw.as_deref().unwrap_or_default();
    let in_header = |name: &[u8], value: &[u8]| {
        header_values(split(raw).0, name)
            .iter()
            .any(|v| contains(v, value))
    };
    let day = || {
        chrono::DateTime::from_timestamp(c.received_at.0 as i64, 0)
            .map(|d| d.date_naive())
            .unwrap_or_default()
    };
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().all(|k| matches(k, c, ctx)),
        SearchKey::Or(a, b) => matches(a, c, ctx) || matches(b, c, ctx),
        SearchKey::Not(k) => !matches(k, c, ctx),
        SearchKey::SequenceSet(set) => in_set(set, ctx.seq, ctx.largest_seq),
        SearchKey::Uid(set) => in_set(set, c.uid, ctx.largest_uid),
        SearchKey::All => true,
        SearchKey::Answered => c.flags.answered,
        SearchKey::Unanswered => !c.flags.answered,
        SearchKey::Deleted => c.flags.deleted,
        SearchKey::Undeleted => !c.flags.deleted,
        SearchKey::Draft => c.flags.draft,
        SearchKey::Undraft => !c.flags.draft,
        SearchKey::Flagged => c.starred,
        SearchKey::Unflagged => !c.starred,
        SearchKey::Seen => c.read,
        SearchKey::Unseen => !c.read,
        SearchKey::Recent => ctx.recent,
        SearchKey::New => ctx.recent && !c.read,
        SearchKey::Old => !ctx.recent,
        SearchKey::Keyword(k) => c
            .flags
            .keywords
            .iter()
            .any(|x| x.eq_ignore_ascii_case(k.inner())),
        SearchKey::Unkeyword(k) => !c
            .flags
            .keywords
            .iter()
            .any(|x| x.eq_ignore_ascii_case(k.inner())),
        SearchKey::Larger(n) => c.size > u64::from(*n),
        SearchKey::Smaller(n) => c.size < u64::from(*n),
        SearchKey::Before(d) => day() < *d.as_ref(),
        SearchKey::On(d) => day() == *d.as_ref(),
        SearchKey::Since(d) => day() >= *d.as_ref(),
        SearchKey::From(v) => in_header(b"from", v.as_ref()),
        SearchKey::To(v) => in_header(b"to", v.as_ref()),
        SearchKey::Cc(v) => in_header(b"cc", v.as_ref()),
        SearchKey::Bcc(v) => in_header(b"bcc", v.as_ref()),
        SearchKey::Subject(v) => in_header(b"subject", v.as_ref()),
        SearchKey::Header(name, v) => in_header(name.as_ref(), v.as_ref()),
        SearchKey::Body(v) => contains(split(raw).1, v.as_ref()),
        SearchKey::Text(v) => contains(raw, v.as_ref()),
        _ => false,
    }
}
