//! A real SMTP client (lettre) sends plain, multipart/alternative and attachment mail to the
//! real server on 127.0.0.1:0; each message is read back through the user API and the
//! operator (admin) API: the parsed fields, every attachment's bytes and type, and the source
//! byte for byte as lettre put it on the wire, behind the `Received:` header fakemail adds.
//! Then wait-for-message, answered by mail that arrives over SMTP.

mod common;

use common::*;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart};
use lettre::{AsyncTransport, Message};
use serde_json::{Value, json};

const ADMIN: &str = "fm_smtp_mime_test_admin_token";

/// A server whose admin token is [`ADMIN`], with bob's account; returns bob's token.
async fn server() -> (TestServer, String) {
    let srv = TestServer::start().await;
    srv.service.set_admin_token(ADMIN);
    let bob = srv.user("bob@example.test").await;
    (srv, bob)
}

/// A message from alice to bob with a copy for an address without an account.
fn from_alice(subject: &str) -> lettre::message::MessageBuilder {
    Message::builder()
        .from("Alice Example <alice@example.test>".parse().unwrap())
        .to("Bob <bob@example.test>".parse().unwrap())
        .cc("captured@example.test".parse().unwrap())
        .subject(subject)
}

/// A plain message from alice to carol alone.
fn to_carol(subject: &str) -> Message {
    Message::builder()
        .from("alice@example.test".parse().unwrap())
        .to("carol@example.test".parse().unwrap())
        .subject(subject)
        .body(String::from("For Carol.\r\n"))
        .unwrap()
}

/// What lettre sent, as fakemail should store it.
struct Sent {
    /// The message id from the `250` (the operator view's id).
    id: String,
    /// The source after the `Received:` header.
    source: Vec<u8>,
}

/// Sends `email` with lettre; `hidden` are `Bcc:` header lines that lettre kept on the wire
/// (`keep_bcc`) and fakemail must remove.
async fn send(srv: &TestServer, email: Message, hidden: &[&str]) -> Sent {
    // lettre writes the formatted message dot-stuffed, then CRLF . CRLF: the CRLF before the
    // dot ends the last line, so the server stores the message with one more CRLF.
    let mut source = email.formatted();
    for line in hidden {
        let at = source
            .windows(line.len())
            .position(|w| w == line.as_bytes())
            .unwrap_or_else(|| panic!("{line:?} is not on the wire"));
        source.drain(at..at + line.len());
    }
    source.extend_from_slice(b"\r\n");
    let response = lettre_mailer(srv.smtp)
        .build()
        .send(email)
        .await
        .expect("lettre sends");
    assert_eq!(response.code().to_string(), "250");
    let text: String = response.message().collect::<Vec<_>>().join(" ");
    let id = text
        .strip_prefix("2.0.0 OK: stored as message ")
        .unwrap_or_else(|| panic!("250 {text}"))
        .to_owned();
    Sent { id, source }
}

/// Asserts that `got` is the `Received:` header fakemail adds for lettre's session, then
/// exactly `rest`.
#[track_caller]
fn assert_source(got: &[u8], rest: &[u8]) {
    let text = String::from_utf8_lossy(got);
    let head =
        "Received: from client.test ([127.0.0.1])\r\n\tby localhost (fakemail) with ESMTP;\r\n\t";
    assert!(text.starts_with(head), "{text}");
    let end = head.len()
        + got[head.len()..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap();
    let date = std::str::from_utf8(&got[head.len()..end]).unwrap();
    let stamped = mail_parser::DateTime::parse_rfc822(date)
        .unwrap_or_else(|| panic!("not an RFC 5322 date: {date:?}"))
        .to_timestamp();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - 300..=now + 1).contains(&stamped), "{date}");
    assert!(
        &got[end + 2..] == rest,
        "the source after the Received: header differs from what was sent:\n{}\n---- sent:\n{}",
        String::from_utf8_lossy(&got[end + 2..]),
        String::from_utf8_lossy(rest)
    );
}

/// An attachment as served: its content type and bytes.
type Served = (String, Vec<u8>);

/// A message read back through both APIs.
struct ReadBack {
    /// The user's copy.
    user: Value,
    /// The operator view of the message.
    admin: Value,
    /// Each attachment, as both APIs serve it.
    attachments: Vec<Served>,
}

/// GETs `path` (200, `message/rfc822`) and checks the source against `sent`.
async fn check_raw(srv: &TestServer, path: &str, token: &str, sent: &Sent) {
    let (s, h, body) = get_bytes(srv, path, token).await;
    assert_eq!((s, header(&h, "content-type")), (200, "message/rfc822"));
    assert_source(&body, &sent.source);
}

/// GETs an attachment (200); its content type and bytes.
async fn attachment(srv: &TestServer, path: &str, token: &str) -> Served {
    let (s, h, body) = get_bytes(srv, path, token).await;
    assert_eq!(s, 200, "{path}: {}", String::from_utf8_lossy(&body));
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    (header(&h, "content-type").to_owned(), body)
}

/// GETs JSON (200).
async fn get_json(srv: &TestServer, path: &str, token: &str) -> Value {
    let (s, v) = srv.call("GET", path, Some(token), None).await;
    assert_eq!(s, 200, "{path}: {v}");
    v
}

/// Reads `sent` back as the owner of `token` (the newest message in its inbox) and as the
/// operator: both sources byte for byte, both views alike, both attachment lists served alike.
async fn read_back(srv: &TestServer, token: &str, sent: &Sent) -> ReadBack {
    let copy = inbox(srv, token).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let user_path = format!("/api/v1/messages/{copy}");
    let admin_path = format!("/api/v1/admin/messages/{}", sent.id);
    let user = get_json(srv, &user_path, token).await;
    let admin = get_json(srv, &admin_path, ADMIN).await;
    check_raw(srv, &format!("{user_path}/raw"), token, sent).await;
    check_raw(srv, &format!("{admin_path}/raw"), ADMIN, sent).await;
    for key in [
        "from",
        "to",
        "cc",
        "subject",
        "snippet",
        "size",
        "has_attachments",
        "message_id",
        "reply_to",
        "date",
        "text",
        "html",
        "headers",
        "attachments",
        "links",
        "codes",
    ] {
        assert_eq!(
            user[key], admin[key],
            "{key}: the user's and the operator's view"
        );
    }
    let mut attachments = Vec::new();
    for (i, a) in user["attachments"].as_array().unwrap().iter().enumerate() {
        assert_eq!(a["index"], i);
        let mine = attachment(srv, &format!("{user_path}/attachments/{i}"), token).await;
        let operators = attachment(srv, &format!("{admin_path}/attachments/{i}"), ADMIN).await;
        assert_eq!(mine, operators, "attachment {i}");
        assert_eq!(a["size"], mine.1.len(), "the listed size of attachment {i}");
        attachments.push(mine);
    }
    ReadBack {
        user,
        admin,
        attachments,
    }
}

// ----- plain, multipart/alternative, attachments -------------------------------------------------

#[tokio::test]
async fn lettre_plain_mail_reads_back_byte_for_byte_through_both_apis() {
    let (srv, bob) = server().await;
    // A lone dot and a leading dot on the wire are dot-stuffed by lettre and unstuffed here;
    // the Bcc header lettre keeps is removed by fakemail.
    let text = "Hi Bob,\r\n.\r\n.leading dot\r\nConfirm: https://app.example.test/confirm?t=abc\r\nYour verification code is 482913.\r\n";
    let email = from_alice("Café ☕: confirm your account")
        .bcc("hidden@example.test".parse().unwrap())
        .keep_bcc()
        .reply_to("support@example.test".parse().unwrap())
        .message_id(Some("<plain-1@example.test>".into()))
        .header(ContentType::TEXT_PLAIN)
        .body(text.to_owned())
        .unwrap();
    let wire = String::from_utf8(email.formatted()).unwrap();
    assert!(wire.contains("\r\nSubject: =?utf-8?"), "RFC 2047: {wire}");
    assert!(
        wire.ends_with(&format!("\r\n\r\n{text}")),
        "7bit, as written: {wire}"
    );
    let sent = send(&srv, email, &["Bcc: hidden@example.test\r\n"]).await;
    let got = read_back(&srv, &bob, &sent).await;
    let m = &got.user;
    assert_eq!(m["subject"], "Café ☕: confirm your account");
    assert_eq!(
        m["from"],
        json!({"name": "Alice Example", "address": "alice@example.test"})
    );
    assert_eq!(
        m["to"],
        json!([{"name": "Bob", "address": "bob@example.test"}])
    );
    assert_eq!(
        m["cc"],
        json!([{"name": null, "address": "captured@example.test"}])
    );
    assert_eq!(
        m["reply_to"],
        json!([{"name": null, "address": "support@example.test"}])
    );
    assert_eq!(m["message_id"], "plain-1@example.test");
    rfc3339(&m["date"]);
    // The APIs give line breaks as `\n`; the source keeps the CRLF.
    assert_eq!(m["text"], text.replace("\r\n", "\n"));
    assert_eq!(m["html"], Value::Null);
    assert_eq!(
        (&m["has_attachments"], &m["attachments"]),
        (&json!(false), &json!([]))
    );
    assert_eq!(
        m["links"],
        json!(["https://app.example.test/confirm?t=abc"])
    );
    assert_eq!(m["codes"], json!(["482913"]));
    assert!(m.get("bcc").is_none(), "a recipient's copy: {m}");
    assert!(!m.to_string().contains("hidden"), "{m}");
    assert_eq!(
        got.admin["recipients"],
        json!([
            "bob@example.test",
            "captured@example.test",
            "hidden@example.test"
        ]),
        "the operator sees the envelope"
    );

    // The captured address, and the blind one, have the same source once they sign up.
    for address in ["captured@example.test", "hidden@example.test"] {
        let token = srv.user(address).await;
        let again = read_back(&srv, &token, &sent).await;
        assert_eq!(again.user["subject"], m["subject"]);
    }
    srv.stop().await;
}

#[tokio::test]
async fn lettre_multipart_alternative_reads_back_with_both_bodies_decoded() {
    let (srv, bob) = server().await;
    // Non-ASCII text: lettre sends it quoted-printable or base64, and the APIs decode it.
    let text = "Grüße, Bob!\r\nYour sign-in code: K7QX2P\r\nhttps://app.example.test/welcome\r\n";
    let html = "<p>Grüße, Bob!</p>\r\n<p>Your sign-in code: <b>K7QX2P</b></p>\r\n\
                <a href=\"https://app.example.test/welcome\">Welcome</a> \
                <a href=\"https://app.example.test/prefs?a=1&amp;b=2\">preferences</a>\r\n";
    let email = from_alice("Welcome aboard")
        .multipart(MultiPart::alternative_plain_html(
            text.to_owned(),
            html.to_owned(),
        ))
        .unwrap();
    let wire = String::from_utf8(email.formatted()).unwrap();
    assert!(wire.contains("multipart/alternative"), "{wire}");
    assert!(
        !wire.contains("Grüße"),
        "the bodies are encoded on the wire: {wire}"
    );
    let sent = send(&srv, email, &[]).await;
    let m = read_back(&srv, &bob, &sent).await.user;
    assert_eq!(m["subject"], "Welcome aboard");
    assert_eq!(m["text"], text.replace("\r\n", "\n"));
    assert_eq!(m["html"], html.replace("\r\n", "\n"));
    assert_eq!(m["attachments"], json!([]));
    assert_eq!(
        m["links"],
        json!([
            "https://app.example.test/welcome",
            "https://app.example.test/prefs?a=1&b=2"
        ])
    );
    assert_eq!(m["codes"], json!(["K7QX2P"]));
    assert!(
        m["snippet"].as_str().unwrap().starts_with("Grüße, Bob!"),
        "{m}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn lettre_attachments_are_served_as_the_bytes_attached() {
    let (srv, bob) = server().await;
    let every_byte: Vec<u8> = (0..=255).collect();
    let notes = "Notes: naïve café, 100 €.\r\n".as_bytes().to_vec();
    let pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\n%%EOF\n".to_vec();
    let email = from_alice("Files for you")
        .multipart(
            MultiPart::mixed()
                .multipart(MultiPart::alternative_plain_html(
                    String::from("Three files attached.\r\n"),
                    String::from("<p>Three files attached.</p>\r\n"),
                ))
                .singlepart(Attachment::new("every-byte.bin".into()).body(
                    every_byte.clone(),
                    ContentType::parse("application/octet-stream").unwrap(),
                ))
                .singlepart(Attachment::new("notes.txt".into()).body(
                    notes.clone(),
                    ContentType::parse("text/plain; charset=utf-8").unwrap(),
                ))
                .singlepart(
                    Attachment::new("résumé 2026.pdf".into())
                        .body(pdf.clone(), ContentType::parse("application/pdf").unwrap()),
                ),
        )
        .unwrap();
    let sent = send(&srv, email, &[]).await;
    let got = read_back(&srv, &bob, &sent).await;
    let m = &got.user;
    assert_eq!(m["has_attachments"], true);
    assert_eq!(m["text"], "Three files attached.\n");
    assert_eq!(m["html"], "<p>Three files attached.</p>\n");
    assert_eq!(
        m["attachments"],
        json!([
            {"index": 0, "filename": "every-byte.bin", "content_type": "application/octet-stream",
             "size": 256, "content_id": null, "inline": false},
            {"index": 1, "filename": "notes.txt", "content_type": "text/plain",
             "size": notes.len(), "content_id": null, "inline": false},
            {"index": 2, "filename": "résumé 2026.pdf", "content_type": "application/pdf",
             "size": pdf.len(), "content_id": null, "inline": false},
        ])
    );
    assert_eq!(
        got.attachments,
        [
            ("application/octet-stream".to_owned(), every_byte),
            ("text/plain; charset=utf-8".to_owned(), notes),
            ("application/pdf".to_owned(), pdf),
        ]
    );
    let (s, h, _) = get_bytes(
        &srv,
        &format!("/api/v1/admin/messages/{}/attachments/2", sent.id),
        ADMIN,
    )
    .await;
    assert_eq!(
        (s, header(&h, "content-disposition")),
        (
            200,
            "attachment; filename=\"r_sum_ 2026.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%202026.pdf"
        )
    );
    srv.stop().await;
}

// ----- waiting for mail that comes over SMTP -----------------------------------------------------

#[tokio::test]
async fn an_operator_wait_answers_with_the_message_sent_over_smtp() {
    let (srv, _bob) = server().await;
    let waiting = spawn_call(
        &srv,
        "/api/v1/admin/wait?to=captured@example.test&timeout=1m",
        ADMIN,
    );
    listeners(&srv, 1).await;
    // Mail for someone else first: the wait goes on.
    send(&srv, to_carol("Not this one"), &[]).await;
    let email = from_alice("Your code")
        .body(String::from("Your verification code is 482913.\r\n"))
        .unwrap();
    let sent = send(&srv, email, &[]).await;
    let (s, m) = tokio::time::timeout(TIMEOUT, waiting)
        .await
        .expect("the wait answers")
        .unwrap();
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["id"], sent.id, "the message of the second 250: {m}");
    assert_eq!(m["subject"], "Your code");
    assert_eq!(m["codes"], json!(["482913"]));
    assert_eq!(
        m["recipients"],
        json!(["bob@example.test", "captured@example.test"])
    );
    listeners(&srv, 0).await;
    srv.stop().await;
}

#[tokio::test]
async fn a_users_inbox_wait_wakes_only_for_their_own_mail_over_smtp() {
    let (srv, bob) = server().await;
    let carol = srv.user("carol@example.test").await;
    let waiting = spawn_call(&srv, "/api/v1/mailboxes/inbox/wait?timeout=1m", &bob);
    listeners(&srv, 1).await;
    send(&srv, to_carol("For Carol"), &[]).await;
    assert_eq!(inbox(&srv, &carol).await.len(), 1);
    // The events hub heard of Carol's message before her 250: a wait it woke would answer now.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "Carol's mail woke Bob's wait");
    let email = from_alice("For Bob")
        .body(String::from("Yours.\r\n"))
        .unwrap();
    send(&srv, email, &[]).await;
    let (s, m) = tokio::time::timeout(TIMEOUT, waiting)
        .await
        .expect("the wait answers")
        .unwrap();
    assert_eq!((s, m["subject"].as_str()), (200, Some("For Bob")), "{m}");
    assert_eq!(m["mailbox"], "inbox");
    assert_eq!(m["id"], inbox(&srv, &bob).await[0]["id"], "Bob's own copy");
    assert!(m.get("recipients").is_none(), "not the operator view: {m}");
    srv.stop().await;
}
