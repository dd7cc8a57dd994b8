//! The MIME fixtures in `tests/fixtures/*.eml` parse to the fields the API shows: addresses,
//! decoded subjects, dates, bodies in every transfer encoding and charset, attachments, links
//! and codes; and a malformed message still yields what can be read from it.

use fakemail::service::mime::{self, AttachmentInfo};
use fakemail::store::mail::Mailbox;
use fakemail::time::Timestamp;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn mailbox(name: Option<&str>, address: &str) -> Mailbox {
    Mailbox {
        name: name.map(str::to_owned),
        address: address.to_owned(),
    }
}

/// Seconds since the epoch of an RFC 3339 time.
fn at(rfc3339: &str) -> Option<Timestamp> {
    let t = humantime::parse_rfc3339(rfc3339).unwrap();
    Some(Timestamp::from_system(t))
}

#[test]
fn multipart_alternative() {
    let raw = fixture("alternative.eml");
    let s = mime::summarize(&raw);
    assert_eq!(
        s.from,
        Some(mailbox(Some("Example Shop"), "noreply@shop.example.test"))
    );
    assert_eq!(
        s.to,
        [
            mailbox(Some("Bob"), "bob@example.test"),
            mailbox(None, "carol@example.test")
        ]
    );
    assert_eq!(s.cc, [mailbox(None, "dave@example.test")]);
    assert_eq!(
        s.reply_to,
        [mailbox(Some("Support"), "support@shop.example.test")]
    );
    assert_eq!(s.subject, "Welcome to Example Shop, Zoë!");
    assert_eq!(s.message_id.as_deref(), Some("welcome-1@shop.example.test"));
    assert!(
        s.snippet.starts_with("Hi Bob, confirm your address:"),
        "{}",
        s.snippet
    );
    assert!(!s.has_attachments);

    let c = mime::content(&raw);
    assert_eq!(
        c.date,
        at("2026-11-24T20:15:01Z"),
        "the +0100 offset applied"
    );
    assert!(c.text.as_deref().unwrap().contains("code is 482913."));
    assert!(c.html.as_deref().unwrap().starts_with("<p>Hi Bob,</p>"));
    assert_eq!(
        c.links,
        [
            "https://shop.example.test/confirm?token=abc123",
            "https://shop.example.test/help?a=1&b=2"
        ]
    );
    assert_eq!(c.codes, ["482913"], "not the year 2026");
    assert!(c.attachments.is_empty());
    assert_eq!(
        c.headers[0],
        ("Return-Path".into(), "<noreply@shop.example.test>".into())
    );
}

#[test]
fn attachments_base64_rfc2231_names_latin1_text_and_a_nested_message() {
    let raw = fixture("attachments.eml");
    assert!(mime::summarize(&raw).has_attachments);
    let c = mime::content(&raw);
    assert_eq!(
        c.text.as_deref().map(str::trim_end),
        Some("Two files and a forwarded message are attached.")
    );
    let pdf = {
        let mut v = b"%PDF-1.4\n".to_vec();
        v.extend(0..=255u8);
        v.extend(b"\n%%EOF\n");
        v
    };
    // The line break before a boundary belongs to the boundary (RFC 2046 5.1.1).
    let resume = "Résumé: café, naïve.";
    assert_eq!(
        c.attachments,
        [
            AttachmentInfo {
                index: 0,
                filename: Some("invoice-2026.pdf".into()),
                content_type: "application/pdf".into(),
                size: pdf.len() as u64,
                content_id: None,
                inline: false,
            },
            AttachmentInfo {
                index: 1,
                filename: Some("résumé.txt".into()),
                content_type: "text/plain".into(),
                size: resume.len() as u64,
                content_id: None,
                inline: false,
            },
            AttachmentInfo {
                index: 2,
                filename: None,
                content_type: "message/rfc822".into(),
                size: c.attachments[2].size,
                content_id: None,
                inline: false,
            },
        ]
    );
    let a = mime::attachment(&raw, 0).unwrap();
    assert_eq!(
        (a.data, a.utf8),
        (pdf, false),
        "base64 decoded byte for byte"
    );
    let a = mime::attachment(&raw, 1).unwrap();
    assert_eq!(
        (String::from_utf8(a.data).unwrap(), a.utf8),
        (resume.to_owned(), true),
        "quoted-printable ISO-8859-1 served as UTF-8"
    );
    let a = mime::attachment(&raw, 2).unwrap();
    assert!(
        String::from_utf8_lossy(&a.data).contains("Subject: The forwarded one"),
        "the nested message's source"
    );
    assert_eq!(a.info.size, a.data.len() as u64);
    assert!(mime::attachment(&raw, 3).is_none());
    assert!(mime::attachment(&raw, usize::MAX).is_none());
}

#[test]
fn quoted_printable_with_soft_breaks_in_a_link() {
    let raw = fixture("quoted_printable.eml");
    let s = mime::summarize(&raw);
    assert_eq!(s.subject, "Reset your password, Zoë");
    assert_eq!(s.from, Some(mailbox(None, "accounts@app.example.test")));
    let c = mime::content(&raw);
    assert_eq!(c.date, at("2026-11-26T14:30:00Z"));
    let text = c.text.unwrap();
    assert!(text.starts_with("Hello Zoë,"), "{text}");
    let url = format!(
        "https://app.example.test/reset-password?token={}&user=bob",
        "x".repeat(60)
    );
    assert_eq!(c.links, [url], "the soft line break is gone");
    assert_eq!(c.codes, ["90210778"]);
}

#[test]
fn base64_html_only() {
    let raw = fixture("base64.eml");
    let s = mime::summarize(&raw);
    assert_eq!(s.subject, "Code de connexion — Example");
    assert_eq!(
        s.from,
        Some(mailbox(Some("Sécurité"), "security@example.test"))
    );
    let c = mime::content(&raw);
    assert_eq!(c.text, None, "no text part: no text made up");
    assert!(
        c.html
            .as_deref()
            .unwrap()
            .contains("<strong>7F3K9Q</strong>")
    );
    assert_eq!(c.links, ["https://login.example.test/magic?k=42"]);
    assert_eq!(
        c.codes,
        ["7F3K9Q"],
        "found in the HTML as text; 2026 is no code"
    );
}

#[test]
fn iso_8859_1_body_and_headers() {
    let raw = fixture("latin1.eml");
    let s = mime::summarize(&raw);
    assert_eq!(s.subject, "Déjà vu");
    assert_eq!(
        s.from,
        Some(mailbox(Some("François Pérez"), "francois@example.test"))
    );
    let c = mime::content(&raw);
    assert_eq!(
        c.text.as_deref(),
        Some("Voilà, ça coûte 12,50 EUR? Non: 12,50 EUR.\nÀ bientôt, François")
    );
    assert!(c.codes.is_empty() && c.links.is_empty());
}

#[test]
fn rfc2047_words_in_several_charsets() {
    let raw = fixture("rfc2047.eml");
    let s = mime::summarize(&raw);
    assert_eq!(s.subject, "日本語 café and more");
    assert_eq!(s.from, Some(mailbox(Some("山田太郎"), "taro@example.test")));
    let c = mime::content(&raw);
    assert_eq!(
        c.text.as_deref().map(str::trim_end),
        Some("こんにちは、ボブさん。"),
        "ISO-2022-JP body"
    );
    assert_eq!(c.date, at("2026-11-29T03:00:00Z"));
}

#[test]
fn malformed_message_still_yields_what_can_be_read() {
    let raw = fixture("malformed.eml");
    let s = mime::summarize(&raw);
    assert!(s.subject.starts_with("unterminated"), "{:?}", s.subject);
    assert!(s.to.is_empty());
    let c = mime::content(&raw);
    assert_eq!(c.date, None, "an unreadable date is no date");
    assert!(
        c.headers
            .contains(&("X-Bin".into(), "\u{fffd}\u{fffd} raw bytes".into())),
        "{:?}",
        c.headers
    );
    for i in 0..c.attachments.len() {
        let a = mime::attachment(&raw, i).unwrap();
        assert_eq!(a.info, c.attachments[i]);
    }
}

#[test]
fn any_bytes_parse_without_panicking() {
    let mut inputs: Vec<Vec<u8>> = vec![
        vec![],
        b"\r\n\r\n".to_vec(),
        b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n--\r\n".to_vec(),
        vec![0xff; 300],
    ];
    for name in [
        "alternative.eml",
        "attachments.eml",
        "quoted_printable.eml",
        "base64.eml",
        "latin1.eml",
        "rfc2047.eml",
        "malformed.eml",
    ] {
        let raw = fixture(name);
        // Every prefix of every fixture: truncated headers, parts and encoded words.
        for cut in (0..raw.len()).step_by(7) {
            inputs.push(raw[..cut].to_vec());
        }
    }
    for raw in &inputs {
        let _ = mime::summarize(raw);
        let c = mime::content(raw);
        for i in 0..=c.attachments.len() {
            let _ = mime::attachment(raw, i);
        }
    }
}

#[test]
fn inline_images_and_remote_content() {
    let raw = fixture("inline_image.eml");
    let c = mime::content(&raw);
    assert!(c.remote_content, "the HTML loads a tracking pixel");
    let logo = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    assert_eq!(
        c.attachments,
        [
            AttachmentInfo {
                index: 0,
                filename: None,
                content_type: "image/png".into(),
                size: 70,
                content_id: Some("logo@shop.example.test".into()),
                inline: true,
            },
            AttachmentInfo {
                index: 1,
                filename: Some("prices.csv".into()),
                content_type: "text/csv".into(),
                size: c.attachments[1].size,
                content_id: None,
                inline: false,
            },
        ]
    );
    let html = mime::html_inlined(&raw, 1 << 20).unwrap();
    assert!(
        html.contains(&format!(
            r#"<img src="data:image/png;base64,{logo}" alt="Spring Shop">"#
        )),
        "{html}"
    );
    assert!(!html.contains("cid:"), "{html}");
    assert!(
        html.contains("https://tracker.example.test/open.gif"),
        "{html}"
    );
    // Over the budget, the reference stays as it was.
    let html = mime::html_inlined(&raw, 10).unwrap();
    assert!(
        html.contains(r#"src="cid:logo@shop.example.test""#),
        "{html}"
    );

    // Links alone are no remote content; a message without HTML has none to give.
    assert!(!mime::content(&fixture("alternative.eml")).remote_content);
    assert_eq!(
        mime::html_inlined(&fixture("attachments.eml"), 1 << 20),
        None
    );
}
