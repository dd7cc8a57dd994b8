//! Building RFC 5322 messages for REST send: what a real mail client would have put on the
//! wire, so `/raw` serves what a receiving server would have had. Non-ASCII header text is
//! RFC 2047 encoded; bodies are 7bit when they can be, quoted-printable otherwise.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;

/// Longest header line we write before folding (RFC 5322 says SHOULD be at most 78).
const FOLD_AT: usize = 78;

/// The parts of a message to build.
#[derive(Debug, Clone, Default)]
pub struct Outgoing<'a> {
    pub from_name: &'a str,
    pub from: &'a str,
    pub to: &'a [String],
    pub cc: &'a [String],
    pub reply_to: Option<&'a str>,
    pub subject: &'a str,
    pub text: Option<&'a str>,
    pub html: Option<&'a str>,
    /// Extra headers, already validated (names are tokens, values have no CR/LF).
    pub headers: &'a [(String, String)],
    /// Without angle brackets.
    pub message_id: &'a str,
    pub date: Option<SystemTime>,
    /// Multipart boundary (random in production, fixed in tests).
    pub boundary: &'a str,
}

/// Builds the message source with CRLF line endings.
pub fn build(m: &Outgoing<'_>) -> Vec<u8> {
    let mut out = String::new();
    let date = m.date.unwrap_or_else(SystemTime::now);
    header(&mut out, "Message-ID", &format!("<{}>", m.message_id));
    header(&mut out, "Date", &rfc5322_date(date));
    header(&mut out, "From", &mailbox(m.from_name, m.from));
    address_list(&mut out, "To", m.to);
    address_list(&mut out, "Cc", m.cc);
    if let Some(r) = m.reply_to {
        header(&mut out, "Reply-To", r);
    }
    header(&mut out, "Subject", &encode_words(m.subject));
    header(&mut out, "MIME-Version", "1.0");
    for (name, value) in m.headers {
        header(&mut out, name, &encode_words(value));
    }
    match (m.text, m.html) {
        (Some(text), Some(html)) => {
            let b = m.boundary;
            header(
                &mut out,
                "Content-Type",
                &format!("multipart/alternative; boundary=\"{b}\""),
            );
            out.push_str("\r\n");
            out.push_str("This is a multi-part message in MIME format.\r\n");
            for (ct, body) in [("text/plain", text), ("text/html", html)] {
                let _ = write!(out, "\r\n--{b}\r\n");
                // The CRLF before the next boundary belongs to the boundary (RFC 2046 5.1.1),
                // so the part ends exactly as the body does.
                part(&mut out, ct, body);
            }
            let _ = write!(out, "\r\n--{b}--\r\n");
        }
        // A single part ends with a CRLF of its own, as it would on the wire: a body that ends
        // with a line break ends with two. Reading it, `mime::content` takes that one away.
        (None, Some(html)) => {
            part(&mut out, "text/html", html);
            out.push_str("\r\n");
        }
        (text, None) => {
            part(&mut out, "text/plain", text.unwrap_or(""));
            out.push_str("\r\n");
        }
    }
    out.into_bytes()
}

/// A part's headers and its encoded body, exactly as long as the body.
fn part(out: &mut String, content_type: &str, body: &str) {
    let (cte, encoded) = encode_body(body);
    header(
        out,
        "Content-Type",
        &format!("{content_type}; charset=utf-8"),
    );
    header(out, "Content-Transfer-Encoding", cte);
    out.push_str("\r\n");
    out.push_str(&encoded);
}

/// Writes `Name: value` with CRLF, folding long values at spaces.
fn header(out: &mut String, name: &str, value: &str) {
    let mut line_len = name.len() + 2;
    let _ = write!(out, "{name}: ");
    let mut first = true;
    for word in value.split(' ') {
        if !first {
            if line_len + 1 + word.len() > FOLD_AT {
                out.push_str("\r\n ");
                line_len = 1;
            } else {
                out.push(' ');
                line_len += 1;
            }
        }
        out.push_str(word);
        line_len += word.len();
        first = false;
    }
    out.push_str("\r\n");
}

fn address_list(out: &mut String, name: &str, addrs: &[String]) {
    if !addrs.is_empty() {
        header(out, name, &addrs.join(", "));
    }
}

/// `"Display Name" <address>`, or the bare address without a name.
pub fn mailbox(name: &str, address: &str) -> String {
    let name = name.trim();
    if name.is_empty() {
        return address.to_owned();
    }
    if !name.is_ascii() {
        return format!("{} <{address}>", encode_words(name));
    }
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " !#$%&'*+-/=?^_`{|}~".contains(c))
    {
        return format!("{name} <{address}>");
    }
    let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{quoted}\" <{address}>")
}

/// RFC 2047 `B` encoded words for non-ASCII text (each at most 75 characters, split on
/// character boundaries); ASCII text unchanged.
pub fn encode_words(text: &str) -> String {
    if text.is_ascii() {
        return text.to_owned();
    }
    // 45 input bytes -> 60 base64 characters + 12 of framing = 72 <= 75.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Chooses a transfer encoding: `7bit` for ASCII with short lines, else quoted-printable.
/// Line endings become CRLF either way.
fn encode_body(body: &str) -> (&'static str, String) {
    let lines: Vec<&str> = body
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let plain = body.is_ascii() && lines.iter().all(|l| l.len() <= 998 && !l.contains('\r'));
    if plain {
        return ("7bit", lines.join("\r\n"));
    }
    let encoded: Vec<String> = lines
        .iter()
        .map(|l| quoted_printable_line(l.as_bytes()))
        .collect();
    ("quoted-printable", encoded.join("\r\n"))
}

/// Quoted-printable (RFC 2045 6.7) of one line, with soft breaks keeping lines <= 76.
fn quoted_printable_line(line: &[u8]) -> String {
    let mut out = String::new();
    let mut len = 0;
    for (i, &b) in line.iter().enumerate() {
        let last = i + 1 == line.len();
        let literal = (b == b' ' || b == b'\t') && !last || (33..=126).contains(&b) && b != b'=';
        let piece = if literal {
            (b as char).to_string()
        } else {
            format!("={b:02X}")
        };
        if len + piece.len() > 75 {
            out.push_str("=\r\n");
            len = 0;
        }
        len += piece.len();
        out.push_str(&piece);
    }
    out
}

/// An RFC 5322 date in UTC, e.g. `Tue, 24 Nov 2026 17:19:14 +0000`.
pub fn rfc5322_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {d} {} {y} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(at(0)), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(at(951_782_400)),
            "Tue, 29 Feb 2000 00:00:00 +0000"
        );
        assert_eq!(
            rfc5322_date(at(1_795_542_354)),
            "Tue, 24 Nov 2026 17:45:54 +0000"
        );
    }

    #[test]
    fn display_names_are_quoted_or_encoded() {
        assert_eq!(mailbox("", "a@b.c"), "a@b.c");
        assert_eq!(mailbox("Alice", "a@b.c"), "Alice <a@b.c>");
        assert_eq!(mailbox("Smith, John", "a@b.c"), "\"Smith, John\" <a@b.c>");
        assert_eq!(mailbox("say \"hi\"", "a@b.c"), "\"say \\\"hi\\\"\" <a@b.c>");
        assert_eq!(mailbox("Zoë", "a@b.c"), "=?UTF-8?B?Wm/Dqw==?= <a@b.c>");
    }

    #[test]
    fn long_non_ascii_text_splits_into_short_words() {
        let s = "ü".repeat(100);
        let enc = encode_words(&s);
        assert!(
            enc.split(' ')
                .all(|w| w.len() <= 75 && w.starts_with("=?UTF-8?B?")),
            "{enc}"
        );
        assert_eq!(encode_words("plain"), "plain");
    }

    #[test]
    fn bodies_pick_an_encoding_and_use_crlf() {
        assert_eq!(encode_body("a\nb"), ("7bit", "a\r\nb".to_owned()));
        let (cte, qp) = encode_body("café = 1 \n");
        assert_eq!(cte, "quoted-printable");
        assert_eq!(qp, "caf=C3=A9 =3D 1=20\r\n");
        let long = "x".repeat(200) + "é";
        let (_, qp) = encode_body(&long);
        assert!(qp.split("\r\n").all(|l| l.len() <= 76), "{qp}");
    }

    #[test]
    fn builds_multipart_alternative_with_headers() {
        let to = vec![
            "bob@example.test".to_owned(),
            "carol@example.test".to_owned(),
        ];
        let headers = vec![("X-Campaign".to_owned(), "spring".to_owned())];
        let raw = build(&Outgoing {
            from_name: "Alice",
            from: "alice@example.test",
            to: &to,
            subject: "Hello",
            text: Some("hi"),
            html: Some("<p>hi</p>"),
            headers: &headers,
            message_id: "abc@example.test",
            date: Some(at(0)),
            boundary: "BOUNDARY",
            ..Default::default()
        });
        let s = String::from_utf8(raw).unwrap();
        for needle in [
            "Message-ID: <abc@example.test>\r\n",
            "Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n",
            "From: Alice <alice@example.test>\r\n",
            "To: bob@example.test, carol@example.test\r\n",
            "Subject: Hello\r\n",
            "MIME-Version: 1.0\r\n",
            "X-Campaign: spring\r\n",
            "Content-Type: multipart/alternative; boundary=\"BOUNDARY\"\r\n",
            "--BOUNDARY\r\nContent-Type: text/plain; charset=utf-8\r\n",
            "--BOUNDARY\r\nContent-Type: text/html; charset=utf-8\r\n",
            "\r\n--BOUNDARY--\r\n",
        ] {
            assert!(s.contains(needle), "missing {needle:?} in\n{s}");
        }
        assert!(!s.contains("Cc:"));
        assert!(!s.replace("\r\n", "").contains('\n'), "bare LF");
    }

    #[test]
    fn a_single_part_ends_with_a_crlf_of_its_own() {
        let source = |text: &str| {
            let raw = build(&Outgoing {
                from: "a@b.c",
                text: Some(text),
                message_id: "x@y",
                ..Default::default()
            });
            let s = String::from_utf8(raw).unwrap();
            s.split_once("\r\n\r\n").unwrap().1.to_owned()
        };
        assert_eq!(source("a\nb"), "a\r\nb\r\n");
        assert_eq!(
            source("a\nb\n"),
            "a\r\nb\r\n\r\n",
            "the body's own line break stays"
        );
        assert_eq!(source(""), "\r\n");
    }

    #[test]
    fn long_recipient_lists_fold() {
        let to: Vec<String> = (0..10)
            .map(|i| format!("recipient{i}@example.test"))
            .collect();
        let raw = build(&Outgoing {
            from: "a@b.c",
            to: &to,
            message_id: "x@y",
            ..Default::default()
        });
        let s = String::from_utf8(raw).unwrap();
        assert!(s.lines().all(|l| l.trim_end().len() <= FOLD_AT), "{s}");
        assert!(s.contains("recipient9@example.test"));
    }
}
