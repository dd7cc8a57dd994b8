//! The messages the scenarios send, written out as MIME, and sending them over SMTP as an
//! application would.

use std::net::SocketAddr;

use base64::Engine;

use crate::common::SmtpClient;

/// The sender of every test message.
pub const FROM: &str = "shop@example.test";

/// A message to build: plain text, HTML, attachments.
#[derive(Clone, Default)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    /// (file name, content type, bytes)
    pub attachments: Vec<(String, String, Vec<u8>)>,
}

impl Mail {
    /// A plain-text message.
    pub fn text(to: &str, subject: &str, text: &str) -> Mail {
        Mail {
            to: to.into(),
            subject: subject.into(),
            text: Some(text.into()),
            ..Mail::default()
        }
    }

    /// A message with a text and an HTML alternative.
    pub fn alternative(to: &str, subject: &str, text: &str, html: &str) -> Mail {
        Mail {
            html: Some(html.into()),
            ..Mail::text(to, subject, text)
        }
    }

    /// Adds an attachment.
    pub fn attach(mut self, name: &str, content_type: &str, bytes: Vec<u8>) -> Mail {
        self.attachments
            .push((name.into(), content_type.into(), bytes));
        self
    }

    /// The message as MIME, CRLF line ends, parts base64 or quoted as fits.
    pub fn mime(&self) -> String {
        let mut out = format!(
            "From: Example Shop <{FROM}>\r\nTo: {}\r\nSubject: {}\r\nMIME-Version: 1.0\r\n",
            self.to, self.subject
        );
        let body = match (&self.text, &self.html) {
            (Some(t), Some(h)) => multipart(
                "alternative",
                "alt-boundary",
                &[
                    part("text/plain; charset=utf-8", t),
                    part("text/html; charset=utf-8", h),
                ],
            ),
            (Some(t), None) => part("text/plain; charset=utf-8", t),
            (None, Some(h)) => part("text/html; charset=utf-8", h),
            (None, None) => part("text/plain; charset=utf-8", ""),
        };
        if self.attachments.is_empty() {
            out.push_str(&body);
            return out;
        }
        let mut parts = vec![body];
        for (name, ctype, bytes) in &self.attachments {
            parts.push(format!(
                "Content-Type: {ctype}; name=\"{name}\"\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{}",
                wrap76(&base64::engine::general_purpose::STANDARD.encode(bytes))
            ));
        }
        out.push_str(&multipart("mixed", "mixed-boundary", &parts));
        out
    }
}

/// One leaf part (headers and body), its text base64-encoded so any character is safe.
fn part(content_type: &str, text: &str) -> String {
    format!(
        "Content-Type: {content_type}\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
        wrap76(&base64::engine::general_purpose::STANDARD.encode(text))
    )
}

/// A multipart entity of `parts` (each with its own headers).
fn multipart(subtype: &str, boundary: &str, parts: &[String]) -> String {
    let mut out = format!("Content-Type: multipart/{subtype}; boundary=\"{boundary}\"\r\n\r\n");
    for p in parts {
        out += &format!("--{boundary}\r\n{p}\r\n");
    }
    out += &format!("--{boundary}--\r\n");
    out
}

/// Base64 in lines of 76 characters, CRLF-terminated.
fn wrap76(b64: &str) -> String {
    b64.as_bytes()
        .chunks(76)
        .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
        .collect()
}

/// Sends `mail` over SMTP to `smtp`, one envelope recipient per address in `to`; asserts that
/// the server accepts it.
pub async fn send(smtp: SocketAddr, mail: &Mail) {
    let rcpts: Vec<&str> = mail.to.split(',').map(str::trim).collect();
    let mut c = SmtpClient::connect(smtp).await;
    c.expect("EHLO client.test", 250).await;
    let r = c.mail(FROM, &rcpts, &mail.mime()).await;
    assert_eq!(r.code, 250, "DATA: {r:?}");
    c.expect("QUIT", 221).await;
}
