//! End-to-end tests of mail against the real server over HTTP: sending with to, cc and bcc,
//! every recipient's own copy, mail that waits for its address, paging while mail arrives,
//! filters, isolation between users, every send validation error, mailboxes and their counts,
//! retention across a restart, and `fakemail purge` as a process.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::*;
use fakemail::time::Timestamp;
use serde_json::{Value, json};

const MESSAGES: &str = "/api/v1/messages";
const MAILBOXES: &str = "/api/v1/mailboxes";

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";
const CAROL: &str = "carol@example.test";
const DAVE: &str = "dave@example.test";

/// The keys of a summary, as the contract lists them.
const SUMMARY_KEYS: [&str; 13] = [
    "cc",
    "from",
    "has_attachments",
    "id",
    "mailbox",
    "read",
    "received_at",
    "size",
    "snippet",
    "starred",
    "subject",
    "tags",
    "to",
];

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn summary_keys() -> BTreeSet<String> {
    SUMMARY_KEYS.iter().map(|k| k.to_string()).collect()
}

/// Sends a message as the owner of `token`; it must be accepted. Returns the sender's copy.
async fn send_mail(srv: &TestServer, token: &str, body: Value) -> Value {
    let (s, v) = srv.call("POST", MESSAGES, Some(token), Some(body)).await;
    assert_eq!(s, 201, "send: {v}");
    v
}

/// Sends a plain text message to `to`.
async fn send_text(srv: &TestServer, token: &str, to: &str, subject: &str) -> Value {
    send_mail(
        srv,
        token,
        json!({"to": [to], "subject": subject, "text": format!("body of {subject}")}),
    )
    .await
}

/// One page of a mailbox (`query` without the `?`); it must answer 200.
async fn page(srv: &TestServer, token: &str, mailbox: &str, query: &str) -> Value {
    let path = format!("{MAILBOXES}/{mailbox}/messages?{query}");
    let (s, v) = srv.call("GET", &path, Some(token), None).await;
    assert_eq!(s, 200, "GET {path}: {v}");
    v
}

/// Every message of a mailbox (one page of at most 500).
async fn list(srv: &TestServer, token: &str, mailbox: &str) -> Vec<Value> {
    let v = page(srv, token, mailbox, "limit=500").await;
    assert_eq!(v["next_cursor"], Value::Null);
    v["messages"].as_array().unwrap().clone()
}

fn ids(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

fn subjects(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_owned())
        .collect()
}

/// `GET /api/v1/messages/{id}`.
async fn get_message(srv: &TestServer, token: &str, id: &str) -> (u16, Value) {
    srv.call("GET", &format!("{MESSAGES}/{id}"), Some(token), None)
        .await
}

/// `PATCH /api/v1/messages/{id}`.
async fn patch(srv: &TestServer, token: &str, id: &str, body: Value) -> (u16, Value) {
    srv.call(
        "PATCH",
        &format!("{MESSAGES}/{id}"),
        Some(token),
        Some(body),
    )
    .await
}

/// The mailboxes of a user as (name, total, unread).
async fn mailboxes(srv: &TestServer, token: &str) -> Vec<(String, u64, u64)> {
    let (s, v) = srv.call("GET", MAILBOXES, Some(token), None).await;
    assert_eq!(s, 200, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| {
            assert_eq!(keys(b).len(), 3, "{b}");
            (
                b["name"].as_str().unwrap().to_owned(),
                b["total"].as_u64().unwrap(),
                b["unread"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// (total, unread) of one mailbox.
async fn counts(srv: &TestServer, token: &str, name: &str) -> (u64, u64) {
    mailboxes(srv, token)
        .await
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, t, u)| (t, u))
        .unwrap_or_else(|| panic!("no mailbox {name}"))
}

fn owned(list: &[(&str, u64, u64)]) -> Vec<(String, u64, u64)> {
    list.iter()
        .map(|(n, t, u)| (n.to_string(), *t, *u))
        .collect()
}

/// Registers `email` with a display name, logs in, returns the token.
async fn named_user(srv: &TestServer, email: &str, display_name: &str) -> String {
    let (s, v) = srv
        .call(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(json!({"email": email, "password": PASSWORD, "display_name": display_name})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    srv.login(email).await
}

// ----- sending: every recipient's own copy ---------------------------------------------------

#[tokio::test]
async fn to_cc_and_bcc_recipients_each_get_an_independent_copy() {
    let srv = TestServer::start().await;
    let alice = named_user(&srv, ALICE, "Alice Example").await;
    let bob = srv.user(BOB).await;
    let carol = srv.user(CAROL).await;
    let dave = srv.user(DAVE).await;

    let sent = send_mail(
        &srv,
        &alice,
        json!({
            "to": [BOB], "cc": [CAROL], "bcc": [DAVE],
            "subject": "Lunch on Friday?",
            "text": "Hi Bob,\nnoon?", "html": "<p>Hi Bob,</p><p>noon?</p>",
            "headers": {"X-Campaign": "spring"}
        }),
    )
    .await;
    assert_eq!(sent["mailbox"], "sent");
    assert_eq!(sent["read"], true, "the sender's copy starts read");
    assert_eq!(sent["starred"], false);
    assert_eq!(
        sent["from"],
        json!({"name": "Alice Example", "address": ALICE})
    );
    assert_eq!(sent["to"], json!([{"name": null, "address": BOB}]));
    assert_eq!(sent["cc"], json!([{"name": null, "address": CAROL}]));
    assert_eq!(
        sent["bcc"],
        json!([{"name": null, "address": DAVE}]),
        "only the sender's copy lists the Bcc"
    );
    assert_eq!(sent["subject"], "Lunch on Friday?");
    assert_eq!(sent["html"], "<p>Hi Bob,</p><p>noon?</p>");
    let mut full_keys = summary_keys();
    full_keys
        .extend(["message_id", "reply_to", "text", "html", "headers", "bcc"].map(str::to_owned));
    full_keys
        .extend(["date", "attachments", "links", "codes", "remote_content"].map(str::to_owned));
    assert_eq!(keys(&sent), full_keys, "{sent}");
    assert!(
        sent["headers"]
            .as_array()
            .unwrap()
            .contains(&json!(["X-Campaign", "spring"]))
    );

    // Every recipient has a copy of their own in their inbox, unread, with an id of its own.
    let mut copies = Vec::new();
    for (who, token) in [(BOB, &bob), (CAROL, &carol), (DAVE, &dave)] {
        let inbox = list(&srv, token, "inbox").await;
        assert_eq!(inbox.len(), 1, "{who}: {inbox:?}");
        let copy = &inbox[0];
        assert_eq!(keys(copy), summary_keys(), "{copy}");
        assert_eq!(
            (&copy["mailbox"], &copy["read"], &copy["starred"]),
            (&json!("inbox"), &json!(false), &json!(false)),
            "{who}"
        );
        assert_eq!(copy["subject"], "Lunch on Friday?");
        assert_eq!(copy["size"], sent["size"], "one message, stored once");
        assert!(list(&srv, token, "sent").await.is_empty(), "{who}");
        copies.push(copy["id"].as_str().unwrap().to_owned());
    }
    let sent_id = sent["id"].as_str().unwrap().to_owned();
    let distinct: BTreeSet<_> = copies.iter().chain([&sent_id]).collect();
    assert_eq!(distinct.len(), 4, "every copy has its own id: {copies:?}");
    assert_eq!(
        ids(&list(&srv, &alice, "sent").await),
        [sent["id"].as_str().unwrap()]
    );
    assert!(list(&srv, &alice, "inbox").await.is_empty());

    // The Bcc appears in no recipient's copy: not in the JSON, not in the source.
    for (token, id) in [
        (&bob, &copies[0]),
        (&carol, &copies[1]),
        (&dave, &copies[2]),
    ] {
        let (s, full) = get_message(&srv, token, id).await;
        assert_eq!(s, 200, "{full}");
        assert!(full.get("bcc").is_none(), "{full}");
        assert!(!full.to_string().contains(DAVE), "the Bcc leaks: {full}");
        assert_eq!(full["text"], sent["text"]);
        assert_eq!(full["message_id"], sent["message_id"]);
        let raw = srv
            .reply("GET", &format!("{MESSAGES}/{id}/raw"), Some(token), None)
            .await;
        assert_eq!(raw.status, 200);
        assert!(!raw.text.contains(DAVE), "the Bcc leaks: {}", raw.text);
        assert!(
            !raw.text.to_ascii_lowercase().contains("\nbcc:"),
            "{}",
            raw.text
        );
    }
    // Nor in the headers of the sender's own copy.
    let raw = srv
        .reply(
            "GET",
            &format!("{MESSAGES}/{}/raw", sent["id"].as_str().unwrap()),
            Some(&alice),
            None,
        )
        .await;
    assert!(!raw.text.contains(DAVE), "{}", raw.text);

    // Flags belong to each copy.
    let (s, v) = patch(
        &srv,
        &bob,
        &copies[0],
        json!({"read": true, "starred": true}),
    )
    .await;
    assert_eq!(
        (s, &v["read"], &v["starred"]),
        (200, &json!(true), &json!(true))
    );
    for (token, id) in [(&carol, &copies[1]), (&dave, &copies[2])] {
        let (_, full) = get_message(&srv, token, id).await;
        assert_eq!(
            (&full["read"], &full["starred"]),
            (&json!(false), &json!(false))
        );
    }
    let (_, mine) = get_message(&srv, &alice, sent["id"].as_str().unwrap()).await;
    assert_eq!(
        (&mine["read"], &mine["starred"]),
        (&json!(true), &json!(false))
    );

    // Bob deletes his copy: to trash, then for good. The others keep theirs.
    let path = format!("{MESSAGES}/{}", copies[0]);
    assert_eq!(
        srv.call("DELETE", &path, Some(&bob), None).await,
        (204, Value::Null)
    );
    let (s, v) = get_message(&srv, &bob, &copies[0]).await;
    assert_eq!((s, &v["mailbox"]), (200, &json!("trash")));
    assert_eq!(
        srv.call("DELETE", &path, Some(&bob), None).await,
        (204, Value::Null)
    );
    assert_error(&get_message(&srv, &bob, &copies[0]).await, 404, "not_found");
    assert!(list(&srv, &bob, "trash").await.is_empty());
    for (token, id) in [
        (&carol, copies[1].as_str()),
        (&dave, copies[2].as_str()),
        (&alice, sent["id"].as_str().unwrap()),
    ] {
        let (s, v) = get_message(&srv, token, id).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["subject"], "Lunch on Friday?");
    }
    srv.stop().await;
}

/// The header block of a source, and whether every line ends with CRLF.
fn header_block(raw: &str) -> Vec<(String, String)> {
    let (head, _) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no blank line after the headers: {raw:?}"));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            headers.last_mut().expect("a folded first line").1 += line;
        } else {
            let (name, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("not a header line: {line:?}"));
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    headers
}

#[tokio::test]
async fn the_raw_source_is_an_rfc_5322_message() {
    let srv = TestServer::start().await;
    let alice = named_user(&srv, ALICE, "Alice Example").await;
    let bob = srv.user(BOB).await;
    let sent = send_mail(
        &srv,
        &alice,
        json!({"to": [BOB], "cc": [CAROL], "subject": "Grüße", "text": "one\ntwo",
               "reply_to": "replies@example.test"}),
    )
    .await;
    let id = ids(&list(&srv, &bob, "inbox").await).remove(0);
    let r = srv
        .reply("GET", &format!("{MESSAGES}/{id}/raw"), Some(&bob), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("message/rfc822"));
    assert!(
        !r.text.replace("\r\n", "").contains(['\r', '\n']),
        "a bare CR or LF: {:?}",
        r.text
    );
    assert_eq!(
        r.text.len() as u64,
        sent["size"].as_u64().unwrap(),
        "size is the source's"
    );
    let headers = header_block(&r.text);
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
    };
    assert_eq!(
        get("Message-ID"),
        format!("<{}>", sent["message_id"].as_str().unwrap())
    );
    assert!(
        sent["message_id"]
            .as_str()
            .unwrap()
            .ends_with("@example.test"),
        "at the sender's domain: {}",
        sent["message_id"]
    );
    assert_eq!(get("From"), "Alice Example <alice@example.test>");
    assert_eq!(get("To"), BOB);
    assert_eq!(get("Cc"), CAROL);
    assert_eq!(get("Reply-To"), "replies@example.test");
    assert_eq!(get("MIME-Version"), "1.0");
    assert!(
        get("Subject").starts_with("=?UTF-8?B?"),
        "RFC 2047: {}",
        get("Subject")
    );
    assert_eq!(sent["subject"], "Grüße", "decoded in the JSON");
    assert!(get("Content-Type").starts_with("text/plain"));
    // The Date is when the message was made, in RFC 5322 form (checked against the server's
    // own clock through received_at, allowing for a slow machine).
    let received = rfc3339(&sent["received_at"]);
    let date = get("Date");
    let matches = (0..120u64).any(|back| {
        fakemail::service::compose::rfc5322_date(received - Duration::from_secs(back)) == date
    });
    assert!(
        matches,
        "Date {date:?} is not just before {}",
        sent["received_at"]
    );
    assert_eq!(
        sent["reply_to"],
        json!([{"name": null, "address": "replies@example.test"}])
    );
    srv.stop().await;
}

#[tokio::test]
async fn bodies_read_back_as_they_were_sent() {
    let srv = TestServer::start().await;
    let alice = srv.user(ALICE).await;
    let bob = srv.user(BOB).await;
    // (text, html) as sent; what reads back, where a CRLF sent comes back as LF.
    let cases = [
        (Some("a\nb"), None, Some("a\nb"), None),
        (Some("a\nb\n"), None, Some("a\nb\n"), None),
        (Some("a\n\nb\n\n"), None, Some("a\n\nb\n\n"), None),
        (Some(""), None, Some(""), None),
        (Some("crlf\r\nsent"), None, Some("crlf\nsent"), None),
        (Some("Grüße\naus Köln"), None, Some("Grüße\naus Köln"), None),
        (None, Some("<p>\nhi\n</p>"), None, Some("<p>\nhi\n</p>")),
        (
            Some("x\ny"),
            Some("<p>x</p>\n"),
            Some("x\ny"),
            Some("<p>x</p>\n"),
        ),
        (
            Some("x\ny\n"),
            Some("<p>x</p>"),
            Some("x\ny\n"),
            Some("<p>x</p>"),
        ),
    ];
    for (i, (text, html, want_text, want_html)) in cases.into_iter().enumerate() {
        let mut body = json!({"to": [BOB], "subject": format!("case {i}")});
        if let Some(t) = text {
            body["text"] = json!(t);
        }
        if let Some(h) = html {
            body["html"] = json!(h);
        }
        let sent = send_mail(&srv, &alice, body).await;
        assert_eq!(
            (&sent["text"], &sent["html"]),
            (&json!(want_text), &json!(want_html)),
            "case {i}, the sender's copy"
        );
        let id = ids(&list(&srv, &bob, "inbox").await).remove(0);
        let (_, full) = get_message(&srv, &bob, &id).await;
        assert_eq!(
            (&full["text"], &full["html"]),
            (&json!(want_text), &json!(want_html)),
            "case {i}, the recipient's copy"
        );
        // The source keeps CRLF, as RFC 5322 wants.
        let raw = srv
            .reply("GET", &format!("{MESSAGES}/{id}/raw"), Some(&bob), None)
            .await;
        assert!(
            !raw.text.replace("\r\n", "").contains(['\r', '\n']),
            "case {i}: {:?}",
            raw.text
        );
    }
    srv.stop().await;
}

// ----- mail to addresses without an account --------------------------------------------------

#[tokio::test]
async fn mail_to_an_unregistered_address_waits_for_whoever_registers_it() {
    let srv = TestServer::start().await;
    let alice = srv.user(ALICE).await;
    let first = send_mail(
        &srv,
        &alice,
        json!({"to": ["Erin@Example.TEST", "ERIN@example.test"], "subject": "before"}),
    )
    .await;
    assert_eq!(
        first["to"].as_array().unwrap().len(),
        2,
        "the header keeps both"
    );

    let erin = srv.user("erin@example.test").await;
    send_text(&srv, &alice, "erin@EXAMPLE.test", "after").await;
    let inbox = list(&srv, &erin, "inbox").await;
    assert_eq!(
        subjects(&inbox),
        ["after", "before"],
        "one copy per address, compared case-insensitively"
    );
    assert!(inbox.iter().all(|m| m["read"] == false));
    assert_eq!(counts(&srv, &erin, "inbox").await, (2, 2));
    srv.stop().await;
}

// ----- paging and filters --------------------------------------------------------------------

#[tokio::test]
async fn paging_while_mail_arrives_never_repeats_or_skips_a_message() {
    let srv = TestServer::start().await;
    let alice = srv.user(ALICE).await;
    let bob = srv.user(BOB).await;
    for i in 0..11 {
        send_text(&srv, &alice, BOB, &format!("m{i}")).await;
    }
    let at_start = list(&srv, &bob, "inbox").await;
    let expected: Vec<String> = (0..11).rev().map(|i| format!("m{i}")).collect();
    assert_eq!(subjects(&at_start), expected, "newest first");

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("limit=4&cursor={c}"),
            None => "limit=4".to_owned(),
        };
        let v = page(&srv, &bob, "inbox", &query).await;
        pages += 1;
        let messages = v["messages"].as_array().unwrap();
        assert!(messages.len() <= 4, "{v}");
        seen.extend(messages.iter().cloned());
        // New mail between page fetches.
        send_text(&srv, &alice, BOB, &format!("new after page {pages}")).await;
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(subjects(&seen), expected, "no repeat, no gap, newest first");
    assert_eq!(ids(&seen), ids(&at_start));

    // The new mail comes first in a new listing.
    let v = page(&srv, &bob, "inbox", "limit=3").await;
    assert_eq!(
        subjects(v["messages"].as_array().unwrap()),
        ["new after page 3", "new after page 2", "new after page 1"]
    );

    // A mailbox that fills its last page exactly: that page has no cursor.
    let carol = srv.user(CAROL).await;
    for i in 0..4 {
        send_text(&srv, &alice, CAROL, &format!("c{i}")).await;
    }
    let first = page(&srv, &carol, "inbox", "limit=2").await;
    let cursor = first["next_cursor"].as_str().expect("a cursor").to_owned();
    let last = page(&srv, &carol, "inbox", &format!("limit=2&cursor={cursor}")).await;
    assert_eq!(subjects(last["messages"].as_array().unwrap()), ["c1", "c0"]);
    assert_eq!(last["next_cursor"], Value::Null);
    srv.stop().await;
}

#[tokio::test]
async fn unread_and_starred_filter_a_listing() {
    let srv = TestServer::start().await;
    let alice = srv.user(ALICE).await;
    let bob = srv.user(BOB).await;
    for i in 0..6 {
        send_text(&srv, &alice, BOB, &format!("m{i}")).await;
    }
    let inbox = list(&srv, &bob, "inbox").await;
    let id_of = |subject: &str| {
        inbox.iter().find(|m| m["subject"] == subject).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // m0, m1: read; m1, m2: starred.
    for (subject, body) in [
        ("m0", json!({"read": true})),
        ("m1", json!({"read": true, "starred": true})),
        ("m2", json!({"starred": true})),
    ] {
        assert_eq!(patch(&srv, &bob, &id_of(subject), body).await.0, 200);
    }
    let filtered = |query: &'static str| {
        let srv = &srv;
        let bob = &bob;
        async move {
            let v = page(srv, bob, "inbox", query).await;
            subjects(v["messages"].as_array().unwrap())
        }
    };
    assert_eq!(filtered("unread=true").await, ["m5", "m4", "m3", "m2"]);
    assert_eq!(filtered("unread=1").await, ["m5", "m4", "m3", "m2"]);
    assert_eq!(filtered("unread=false").await, ["m1", "m0"]);
    assert_eq!(filtered("starred=true").await, ["m2", "m1"]);
    assert_eq!(filtered("starred=0").await, ["m5", "m4", "m3", "m0"]);
    assert_eq!(filtered("unread=true&starred=true").await, ["m2"]);
    assert_eq!(filtered("unread=false&starred=false").await, ["m0"]);

    // Paging keeps the filter.
    let mut seen = Vec::new();
    let mut query = "unread=true&limit=1".to_owned();
    loop {
        let v = page(&srv, &bob, "inbox", &query).await;
        seen.extend(subjects(v["messages"].as_array().unwrap()));
        match v["next_cursor"].as_str() {
            Some(c) => query = format!("unread=true&limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["m5", "m4", "m3", "m2"]);

    for bad in ["unread=maybe", "starred=yes"] {
        let field = bad.split('=').next().unwrap();
        let got = srv
            .call(
                "GET",
                &format!("{MAILBOXES}/inbox/messages?{bad}"),
                Some(&bob),
                None,
            )
            .await;
        assert_field_error(&got, 422, "invalid_query", field);
    }
    srv.stop().await;
}

#[tokio::test]
async fn q_searches_a_mailbox_and_pages_like_a_listing() {
    let srv = TestServer::start().await;
    let alice = named_user(&srv, ALICE, "Alice Liddell").await;
    let bob = srv.user(BOB).await;
    send_mail(
        &srv,
        &alice,
        json!({"to": [BOB], "subject": "Lunch", "text": "Shall we try the NEW place?"}),
    )
    .await;
    send_mail(
        &srv,
        &alice,
        json!({"to": [BOB], "subject": "Invoice 7", "text": "Amount due: 10 EUR"}),
    )
    .await;
    send_mail(
        &srv,
        &alice,
        json!({"to": [BOB], "subject": "Party", "html": "<p>Bring a <b>lantern</b></p>"}),
    )
    .await;
    // Far into the text, past the snippet: only the body tells.
    let long = format!("{} needle", "hay ".repeat(100));
    send_mail(
        &srv,
        &alice,
        json!({"to": [BOB], "subject": "Long", "text": long}),
    )
    .await;
    let found = |query: &'static str| {
        let (srv, bob) = (&srv, &bob);
        async move {
            let v = page(srv, bob, "inbox", query).await;
            subjects(v["messages"].as_array().unwrap())
        }
    };
    assert_eq!(found("q=new%20place").await, ["Lunch"]);
    assert_eq!(found("q=INVOICE").await, ["Invoice 7"]);
    assert_eq!(found("q=lantern").await, ["Party"], "the HTML as text");
    assert_eq!(found("q=needle").await, ["Long"], "beyond the snippet");
    assert_eq!(
        found("q=liddell").await,
        ["Long", "Party", "Invoice 7", "Lunch"]
    );
    assert_eq!(found("q=nothing%20like%20it").await, Vec::<String>::new());
    assert_eq!(found("q=%20").await.len(), 4, "blank is no filter");
    assert_eq!(found("q=").await.len(), 4);
    // With the flags.
    let lunch = list(&srv, &bob, "inbox").await;
    let lunch = lunch.iter().find(|m| m["subject"] == "Lunch").unwrap();
    let id = lunch["id"].as_str().unwrap();
    assert_eq!(patch(&srv, &bob, id, json!({"starred": true})).await.0, 200);
    assert_eq!(found("q=liddell&starred=true").await, ["Lunch"]);
    assert_eq!(found("q=lunch&unread=false").await, Vec::<String>::new());
    // Pages keep the search.
    let mut seen = Vec::new();
    let mut query = "q=alice&limit=1".to_owned();
    loop {
        let v = page(&srv, &bob, "inbox", &query).await;
        seen.extend(subjects(v["messages"].as_array().unwrap()));
        match v["next_cursor"].as_str() {
            Some(c) => query = format!("q=alice&limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["Long", "Party", "Invoice 7", "Lunch"]);
    // Alice's own copies are hers: her `sent`, never bob's inbox.
    let v = page(&srv, &alice, "sent", "q=lantern").await;
    assert_eq!(subjects(v["messages"].as_array().unwrap()), ["Party"]);
    let v = page(&srv, &alice, "inbox", "q=lantern").await;
    assert_eq!(v["messages"], json!([]));
    srv.stop().await;
}

#[tokio::test]
async fn limits_and_cursors_out_of_range_are_refused() {
    let srv = TestServer::start().await;
    let alice = srv.user(ALICE).await;
    let bob = srv.user(BOB).await;
    send_text(&srv, &alice, BOB, "hello").await;
    let path = |q: &str| format!("{MAILBOXES}/inbox/messages?{q}");
    for q in ["limit=0", "limit=501", "limit=-1", "limit=ten", "limit="] {
        let got = srv.call("GET", &path(q), Some(&bob), None).await;
        assert_field_error(&got, 422, "invalid_limit", "limit");
    }
    for q in ["limit=1", "limit=500"] {
        assert_eq!(
            page(&srv, &bob, "inbox", q).await["messages"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
    for cursor in ["garbage", "0123456789abcdeg", "00", "%FF%FE"] {
        let got = srv
            .call("GET", &path(&format!("cursor={cursor}")), Some(&bob), None)
            .await;
        assert_field_error(&got, 422, "invalid_cursor", "cursor");
    }
    srv.expect_error(
        "GET",
        &format!("{MAILBOXES}/nowhere/messages"),
        Some(&bob),
        None,
        404,
        "not_found",
    )
    .await;
    srv.stop().await;
}

// ----- isolation -----------------------------------------------------------------------------

#[tokio::test]
async fn another_users_message_is_not_found_never_forbidden() {
    let srv = TestServer::start().await;
    let alice = srv.user(ALICE).await;
    let bob = srv.user(BOB).await;
    let carol = srv.user(CAROL).await;
    let sent = send_text(&srv, &alice, BOB, "for bob only").await;
    let alices = sent["id"].as_str().unwrap().to_owned();
    let bobs = ids(&list(&srv, &bob, "inbox").await).remove(0);

    for (token, id) in [
        (&carol, &bobs),
        (&alice, &bobs),
        (&bob, &alices),
        (&carol, &alices),
    ] {
        let path = format!("{MESSAGES}/{id}");
        srv.expect_error("GET", &path, Some(token), None, 404, "not_found")
            .await;
        srv.expect_error(
            "PATCH",
            &path,
            Some(token),
            Some(json!({"read": true})),
            404,
            "not_found",
        )
        .await;
        srv.expect_error(
            "PATCH",
            &path,
            Some(token),
            Some(json!({"mailbox": "trash"})),
            404,
            "not_found",
        )
        .await;
        srv.expect_error("DELETE", &path, Some(token), None, 404, "not_found")
            .await;
        srv.expect_error(
            "DELETE",
            &format!("{path}?permanent=true"),
            Some(token),
            None,
            404,
            "not_found",
        )
        .await;
        srv.expect_error(
            "GET",
            &format!("{path}/raw"),
            Some(token),
            None,
            404,
            "not_found",
        )
        .await;
    }
    for id in ["999999999", "0", "abc", "-1"] {
        assert_error(&get_message(&srv, &bob, id).await, 404, "not_found");
    }

    // Nothing changed: bob's copy is unread in his inbox, alice's in her sent.
    let (_, mine) = get_message(&srv, &bob, &bobs).await;
    assert_eq!(
        (&mine["mailbox"], &mine["read"]),
        (&json!("inbox"), &json!(false))
    );
    let (_, hers) = get_message(&srv, &alice, &alices).await;
    assert_eq!(hers["mailbox"], "sent");

    // Bob's token lists only bob's mail; carol's none.
    assert!(list(&srv, &bob, "sent").await.is_empty());
    for name in ["inbox", "sent", "archive", "trash"] {
        assert!(list(&srv, &carol, name).await.is_empty(), "{name}");
        if name != "inbox" {
            assert!(list(&srv, &bob, name).await.is_empty(), "{name}");
        }
    }
    assert_eq!(
        mailboxes(&srv, &carol).await,
        owned(&[
            ("inbox", 0, 0),
            ("sent", 0, 0),
            ("archive", 0, 0),
            ("trash", 0, 0)
        ])
    );
    // Another user's custom mailbox is not there for carol either.
    assert_eq!(
        srv.call(
            "POST",
            MAILBOXES,
            Some(&bob),
            Some(json!({"name": "Private"}))
        )
        .await
        .0,
        201
    );
    srv.expect_error(
        "GET",
        &format!("{MAILBOXES}/Private/messages"),
        Some(&carol),
        None,
        404,
        "not_found",
    )
    .await;
    srv.expect_error(
        "DELETE",
        &format!("{MAILBOXES}/Private"),
        Some(&carol),
        None,
        404,
        "not_found",
    )
    .await;
    // Without a token, nothing at all.
    srv.expect_error("GET", MAILBOXES, None, None, 401, "missing_token")
        .await;
    srv.expect_error(
        "GET",
        &format!("{MESSAGES}/{bobs}"),
        Some("fm_nope"),
        None,
        401,
        "invalid_token",
    )
    .await;
    srv.stop().await;
}

// ----- send validation -----------------------------------------------------------------------

#[tokio::test]
async fn every_send_validation_error() {
    let mut config = test_config();
    config.service.max_recipients = 3;
    config.service.max_message_size = 4096;
    let srv = TestServer::start_with(config, None).await;
    let alice = srv.user(ALICE).await;
    let bob = srv.user(BOB).await;
    let try_send = |body: Value| {
        let srv = &srv;
        let alice = &alice;
        async move { srv.call("POST", MESSAGES, Some(alice), Some(body)).await }
    };
    let mut accepted = 0;

    for body in [
        json!({"subject": "x"}),
        json!({"to": [], "cc": [], "bcc": [], "subject": "x"}),
    ] {
        assert_field_error(&try_send(body).await, 422, "no_recipients", "to");
    }
    for (body, field) in [
        (
            json!({"to": [BOB, "not an address"], "subject": "x"}),
            "to[1]",
        ),
        (
            json!({"to": [BOB], "cc": ["@example.test"], "subject": "x"}),
            "cc[0]",
        ),
        (
            json!({"to": [BOB], "bcc": [BOB, BOB, "bob@"], "subject": "x"}),
            "bcc[2]",
        ),
        (
            json!({"to": [BOB], "reply_to": "nobody", "subject": "x"}),
            "reply_to",
        ),
        (
            json!({"to": ["Bob <bob@example.test>"], "subject": "x"}),
            "to[0]",
        ),
    ] {
        assert_field_error(&try_send(body).await, 422, "invalid_address", field);
    }

    // --max-recipients counts to, cc and bcc together.
    let four =
        json!({"to": [BOB, CAROL], "cc": [DAVE], "bcc": ["erin@example.test"], "subject": "x"});
    assert_field_error(&try_send(four).await, 422, "too_many_recipients", "to");
    let three = json!({"to": [BOB, CAROL], "cc": [DAVE], "subject": "three"});
    assert_eq!(try_send(three).await.0, 201);
    accepted += 1;

    // Subject: at most 998 characters.
    let long = "s".repeat(999);
    assert_field_error(
        &try_send(json!({"to": [BOB], "subject": long})).await,
        422,
        "invalid_header",
        "subject",
    );
    assert_eq!(
        try_send(json!({"to": [BOB], "subject": "é".repeat(998)}))
            .await
            .0,
        201
    );
    accepted += 1;

    // Header injection: no CR or LF in any header value.
    for subject in ["Hi\r\nBcc: evil@example.test", "a\nb", "a\rb"] {
        assert_field_error(
            &try_send(json!({"to": [BOB], "subject": subject})).await,
            422,
            "invalid_header",
            "subject",
        );
    }
    for value in [
        "a\r\nBcc: evil@example.test",
        "a\nb",
        "x".repeat(999).as_str(),
    ] {
        assert_field_error(
            &try_send(json!({"to": [BOB], "subject": "x", "headers": {"X-Test": value}})).await,
            422,
            "invalid_header",
            "headers.X-Test",
        );
    }
    for name in ["Bad Name", "Bad:Name", "", "Bcc", "subject", "Content-Type"] {
        let got = try_send(json!({"to": [BOB], "subject": "x", "headers": {name: "v"}})).await;
        assert_error(&got, 422, "invalid_header");
    }
    assert_field_error(
        &try_send(json!({"to": [BOB], "subject": "x",
                         "reply_to": "r@example.test\r\nBcc: evil@example.test"}))
        .await,
        422,
        "invalid_address",
        "reply_to",
    );
    for to in [
        "bob@example.test\r\nBcc: evil@example.test",
        "bob@example.test\n",
    ] {
        let got = try_send(json!({"to": [to], "subject": "x"})).await;
        // A trailing line break is trimmed like any surrounding space; an inner one is refused.
        if to.trim() == BOB {
            assert_eq!(got.0, 201, "{}", got.1);
            accepted += 1;
        } else {
            assert_field_error(&got, 422, "invalid_address", "to[0]");
        }
    }

    // --max-message-size: the built message, headers and encoding included.
    let big = "x".repeat(4096);
    assert_error(
        &try_send(json!({"to": [BOB], "subject": "big", "text": big})).await,
        413,
        "message_too_large",
    );
    let fits = "x".repeat(3000);
    assert_eq!(
        try_send(json!({"to": [BOB], "subject": "fits", "text": fits}))
            .await
            .0,
        201
    );
    accepted += 1;

    // Wrong types and shapes.
    for (body, field) in [
        (json!({"to": BOB, "subject": "x"}), "to"),
        (json!({"to": [BOB], "subject": 5}), "subject"),
        (json!({"to": [BOB]}), "subject"),
        (json!({"to": [7], "subject": "x"}), "to[0]"),
        (json!({"to": [BOB], "subject": "x", "text": ["a"]}), "text"),
        (
            json!({"to": [BOB], "subject": "x", "headers": ["X-A", "b"]}),
            "headers",
        ),
        (json!({"to": [BOB], "subject": "x", "attachments": []}), ""),
    ] {
        let got = try_send(body.clone()).await;
        if field.is_empty() {
            assert_error(&got, 422, "invalid_body");
        } else {
            assert_field_error(&got, 422, "invalid_body", field);
        }
    }
    let malformed = srv
        .client
        .post(srv.url(MESSAGES))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body(r#"{"to":["bob@example.test"],"subject":"#);
    let r = send(malformed).await;
    assert_error(&(r.status, r.json), 400, "malformed_json");

    // Nothing refused was stored.
    assert_eq!(list(&srv, &alice, "sent").await.len(), accepted);
    assert_eq!(list(&srv, &bob, "inbox").await.len(), accepted);
    srv.stop().await;
}

// ----- mailboxes -----------------------------------------------------------------------------

#[tokio::test]
async fn mailbox_counts_follow_reads_and_moves() {
    let srv = TestServer::start().await;
    let alice = srv.user(ALICE).await;
    let bob = srv.user(BOB).await;
    let system = owned(&[
        ("inbox", 0, 0),
        ("sent", 0, 0),
        ("archive", 0, 0),
        ("trash", 0, 0),
    ]);
    assert_eq!(
        mailboxes(&srv, &bob).await,
        system,
        "a new user has the system mailboxes"
    );
    for i in 0..3 {
        send_text(&srv, &alice, BOB, &format!("m{i}")).await;
    }
    assert_eq!(counts(&srv, &bob, "inbox").await, (3, 3));
    assert_eq!(
        counts(&srv, &alice, "sent").await,
        (3, 0),
        "the sender's copies are read"
    );
    let inbox = ids(&list(&srv, &bob, "inbox").await);

    assert_eq!(
        patch(&srv, &bob, &inbox[0], json!({"read": true})).await.0,
        200
    );
    assert_eq!(counts(&srv, &bob, "inbox").await, (3, 2));
    // Setting a flag to what it is already changes nothing.
    assert_eq!(
        patch(&srv, &bob, &inbox[0], json!({"read": true})).await.0,
        200
    );
    assert_eq!(counts(&srv, &bob, "inbox").await, (3, 2));
    assert_eq!(
        patch(&srv, &bob, &inbox[1], json!({"mailbox": "ARCHIVE"}))
            .await
            .0,
        200
    );
    assert_eq!(
        mailboxes(&srv, &bob).await,
        owned(&[
            ("inbox", 2, 1),
            ("sent", 0, 0),
            ("archive", 1, 1),
            ("trash", 0, 0)
        ])
    );
    assert_eq!(
        patch(&srv, &bob, &inbox[1], json!({"read": true})).await.0,
        200
    );
    assert_eq!(counts(&srv, &bob, "archive").await, (1, 0));
    let path = format!("{MESSAGES}/{}", inbox[2]);
    assert_eq!(srv.call("DELETE", &path, Some(&bob), None).await.0, 204);
    assert_eq!(
        mailboxes(&srv, &bob).await,
        owned(&[
            ("inbox", 1, 0),
            ("sent", 0, 0),
            ("archive", 1, 0),
            ("trash", 1, 1)
        ])
    );
    // A move keeps the copy's place in arrival order.
    assert_eq!(
        patch(&srv, &bob, &inbox[1], json!({"mailbox": "inbox"}))
            .await
            .0,
        200
    );
    assert_eq!(ids(&list(&srv, &bob, "inbox").await), inbox[..2]);
    srv.stop().await;
}

#[tokio::test]
async fn custom_mailboxes_are_made_checked_and_deleted() {
    let srv = TestServer::start().await;
    let alice = srv.user(ALICE).await;
    let bob = srv.user(BOB).await;
    let create = |name: Value| {
        let srv = &srv;
        let bob = &bob;
        async move {
            srv.call("POST", MAILBOXES, Some(bob), Some(json!({ "name": name })))
                .await
        }
    };
    assert_eq!(
        create(json!("Receipts")).await,
        (201, json!({"name": "Receipts", "total": 0, "unread": 0}))
    );
    for dup in ["receipts", "RECEIPTS", " Receipts ", "inbox", "Trash"] {
        assert_error(&create(json!(dup)).await, 409, "mailbox_exists");
    }
    let too_long = "x".repeat(65);
    for bad in [
        "",
        "   ",
        too_long.as_str(),
        "/a",
        "a/",
        "a//b",
        "a/ /b",
        "a\u{7}b",
        "a\nb",
        "tab\there",
    ] {
        assert_field_error(
            &create(json!(bad)).await,
            422,
            "invalid_mailbox_name",
            "name",
        );
    }
    assert_error(&create(json!(5)).await, 422, "invalid_body");
    let longest = "é".repeat(64);
    assert_eq!(
        create(json!(longest)).await.0,
        201,
        "64 characters, not bytes"
    );
    assert_eq!(create(json!("Receipts 2026")).await.0, 201);
    let names: Vec<String> = mailboxes(&srv, &bob)
        .await
        .into_iter()
        .map(|b| b.0)
        .collect();
    assert_eq!(
        names,
        [
            "inbox",
            "sent",
            "archive",
            "trash",
            "Receipts",
            "Receipts 2026",
            longest.as_str()
        ],
        "system mailboxes first, then the user's by name"
    );

    // Moving by PATCH, to a name in any case.
    for i in 0..2 {
        send_text(&srv, &alice, BOB, &format!("invoice {i}")).await;
    }
    let inbox = ids(&list(&srv, &bob, "inbox").await);
    for id in &inbox {
        let (s, v) = patch(&srv, &bob, id, json!({"mailbox": "receipts"})).await;
        assert_eq!((s, &v["mailbox"]), (200, &json!("Receipts")), "{v}");
        assert_eq!(keys(&v), summary_keys());
    }
    assert_field_error(
        &patch(&srv, &bob, &inbox[0], json!({"mailbox": "Nowhere"})).await,
        422,
        "unknown_mailbox",
        "mailbox",
    );
    assert_eq!(counts(&srv, &bob, "Receipts").await, (2, 2));
    assert_eq!(ids(&list(&srv, &bob, "Receipts").await), inbox);
    assert_eq!(
        ids(&list(&srv, &bob, "receipts").await),
        inbox,
        "any case in a path"
    );
    let spaced = format!("{MAILBOXES}/Receipts%202026/messages");
    assert_eq!(srv.call("GET", &spaced, Some(&bob), None).await.0, 200);

    // Deleting mailboxes.
    srv.expect_error(
        "DELETE",
        &format!("{MAILBOXES}/Receipts"),
        Some(&bob),
        None,
        409,
        "mailbox_not_empty",
    )
    .await;
    for system in ["inbox", "sent", "archive", "trash", "INBOX"] {
        assert_field_error(
            &srv.call("DELETE", &format!("{MAILBOXES}/{system}"), Some(&bob), None)
                .await,
            422,
            "system_mailbox",
            "name",
        );
    }
    srv.expect_error(
        "DELETE",
        &format!("{MAILBOXES}/Nowhere"),
        Some(&bob),
        None,
        404,
        "not_found",
    )
    .await;

    // Emptying a mailbox moves everything to trash; emptying trash deletes for good.
    let empty = |name: &str| format!("{MAILBOXES}/{name}/messages");
    assert_eq!(
        srv.call("DELETE", &empty("Receipts"), Some(&bob), None)
            .await,
        (204, Value::Null)
    );
    assert_eq!(counts(&srv, &bob, "Receipts").await, (0, 0));
    assert_eq!(counts(&srv, &bob, "trash").await, (2, 2));
    assert_eq!(ids(&list(&srv, &bob, "trash").await), inbox);
    assert_eq!(
        srv.call("DELETE", &format!("{MAILBOXES}/receipts"), Some(&bob), None)
            .await,
        (204, Value::Null)
    );
    assert!(
        !mailboxes(&srv, &bob)
            .await
            .iter()
            .any(|b| b.0 == "Receipts")
    );
    srv.expect_error(
        "GET",
        &empty("Receipts"),
        Some(&bob),
        None,
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        srv.call("DELETE", &empty("trash"), Some(&bob), None)
            .await
            .0,
        204
    );
    assert_eq!(counts(&srv, &bob, "trash").await, (0, 0));
    for id in &inbox {
        assert_error(&get_message(&srv, &bob, id).await, 404, "not_found");
    }
    assert_eq!(
        list(&srv, &alice, "sent").await.len(),
        2,
        "the sender's copies stay"
    );
    // A deleted name can be made again, empty.
    assert_eq!(create(json!("receipts")).await.1["total"], 0);
    srv.stop().await;
}

#[tokio::test]
async fn mailbox_names_match_trimmed_everywhere() {
    let srv = TestServer::start().await;
    let alice = srv.user(ALICE).await;
    let bob = srv.user(BOB).await;
    let (s, made) = srv
        .call(
            "POST",
            MAILBOXES,
            Some(&bob),
            Some(json!({"name": "Work "})),
        )
        .await;
    assert_eq!(
        (s, &made["name"]),
        (201, &json!("Work")),
        "trimmed when made"
    );
    send_text(&srv, &alice, BOB, "task").await;
    let copy = ids(&list(&srv, &bob, "inbox").await).remove(0);

    // "Work ", " work" and "WORK" all name the mailbox "Work": in a move, a listing, emptying
    // and deleting it, as when it was made.
    let (s, v) = patch(&srv, &bob, &copy, json!({"mailbox": "work "})).await;
    assert_eq!((s, &v["mailbox"]), (200, &json!("Work")), "{v}");
    assert_eq!(ids(&list(&srv, &bob, "%20work").await), [copy.as_str()]);
    assert_eq!(ids(&list(&srv, &bob, "WORK%20").await), [copy.as_str()]);
    let (s, v) = patch(&srv, &bob, &copy, json!({"mailbox": " inbox "})).await;
    assert_eq!((s, &v["mailbox"]), (200, &json!("inbox")), "{v}");
    assert_eq!(ids(&list(&srv, &bob, "%20Inbox%20").await), [copy.as_str()]);
    assert_eq!(
        patch(&srv, &bob, &copy, json!({"mailbox": "Work"})).await.0,
        200
    );
    let empty = format!("{MAILBOXES}/%20Work%20/messages");
    assert_eq!(srv.call("DELETE", &empty, Some(&bob), None).await.0, 204);
    assert_eq!(counts(&srv, &bob, "trash").await, (1, 1));
    srv.expect_error(
        "DELETE",
        &format!("{MAILBOXES}/%20trash"),
        Some(&bob),
        None,
        422,
        "system_mailbox",
    )
    .await;
    let delete = format!("{MAILBOXES}/work%20");
    assert_eq!(srv.call("DELETE", &delete, Some(&bob), None).await.0, 204);
    assert!(!mailboxes(&srv, &bob).await.iter().any(|b| b.0 == "Work"));
    srv.stop().await;
}

#[tokio::test]
async fn reading_leaves_read_alone_and_patch_answers_the_summary() {
    let srv = TestServer::start().await;
    let alice = srv.user(ALICE).await;
    let bob = srv.user(BOB).await;
    send_text(&srv, &alice, BOB, "hello").await;
    let id = ids(&list(&srv, &bob, "inbox").await).remove(0);
    for _ in 0..2 {
        let (s, full) = get_message(&srv, &bob, &id).await;
        assert_eq!((s, &full["read"]), (200, &json!(false)));
        let raw = srv
            .reply("GET", &format!("{MESSAGES}/{id}/raw"), Some(&bob), None)
            .await;
        assert_eq!(raw.status, 200);
    }
    assert_eq!(counts(&srv, &bob, "inbox").await, (1, 1));

    let (s, v) = patch(&srv, &bob, &id, json!({"read": true})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        keys(&v),
        summary_keys(),
        "a summary, not the full message: {v}"
    );
    assert_eq!(
        (&v["id"], &v["read"], &v["starred"]),
        (&json!(id), &json!(true), &json!(false))
    );
    let (_, v) = patch(&srv, &bob, &id, json!({"starred": true})).await;
    assert_eq!(
        (&v["read"], &v["starred"]),
        (&json!(true), &json!(true)),
        "read kept"
    );
    let (_, v) = patch(&srv, &bob, &id, json!({"read": false})).await;
    assert_eq!(
        (&v["read"], &v["starred"]),
        (&json!(false), &json!(true)),
        "starred kept"
    );
    let (s, same) = patch(&srv, &bob, &id, json!({})).await;
    assert_eq!((s, &same), (200, &v), "an empty patch changes nothing");
    let (_, full) = get_message(&srv, &bob, &id).await;
    assert_eq!(
        (&full["read"], &full["starred"]),
        (&json!(false), &json!(true))
    );

    assert_field_error(
        &patch(&srv, &bob, &id, json!({"read": "yes"})).await,
        422,
        "invalid_body",
        "read",
    );
    assert_error(
        &patch(&srv, &bob, &id, json!({"flagged": true})).await,
        422,
        "invalid_body",
    );
    srv.stop().await;
}

// ----- the message cap -----------------------------------------------------------------------

#[tokio::test]
async fn the_message_cap_never_removes_the_message_being_sent() {
    // A message stamped an hour from now, as after the clock was set back: by arrival time it
    // is newer than anything sent now, yet the cap must make room by removing it, not the
    // message just sent.
    let dir = tempfile::tempdir().unwrap();
    let now = Timestamp::now();
    {
        let store = open_store(dir.path());
        let bob = store.ensure_owner(BOB).unwrap();
        stored_message(&store, Timestamp(now.0 - 60), bob, None, 10);
        stored_message(&store, now.after(Duration::from_secs(3600)), bob, None, 10);
        store.flush().unwrap();
    }
    let mut config = test_config();
    config.service.max_messages = 1;
    // Only the start-up sweep, which trims the store to the cap before anything is sent.
    config.sweep_interval = Duration::from_secs(3600);
    let srv = TestServer::start_with(config, Some(dir.path())).await;
    let alice = srv.user(ALICE).await;
    let bob = srv.user(BOB).await;
    wait_until("the start-up sweep trims the store to the cap", || async {
        list(&srv, &bob, "inbox").await.len() == 1
    })
    .await;
    let sent = send_text(&srv, &alice, BOB, "kept").await;
    assert_eq!(
        (&sent["subject"], &sent["mailbox"]),
        (&json!("kept"), &json!("sent"))
    );
    let (s, v) = get_message(&srv, &alice, sent["id"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(subjects(&list(&srv, &bob, "inbox").await), ["kept"]);
    srv.stop().await;
}

#[tokio::test]
async fn concurrent_sends_under_a_cap_all_answer_with_their_copy() {
    let mut config = test_config();
    config.service.max_messages = 2;
    let srv = TestServer::start_with(config, None).await;
    let alice = srv.user(ALICE).await;
    let bob = srv.user(BOB).await;
    let sends = (0..12).map(|i| {
        srv.call(
            "POST",
            MESSAGES,
            Some(&alice),
            Some(json!({"to": [BOB], "subject": format!("m{i}")})),
        )
    });
    let answers = futures_util::future::join_all(sends).await;
    for (i, (s, v)) in answers.iter().enumerate() {
        assert_eq!(*s, 201, "send {i}: {v}");
        assert_eq!(v["subject"], format!("m{i}"));
    }
    // Every delivery trimmed the store to the cap before it answered.
    assert_eq!(list(&srv, &bob, "inbox").await.len(), 2);
    assert_eq!(list(&srv, &alice, "sent").await.len(), 2);
    srv.stop().await;
}

#[tokio::test]
async fn a_lower_message_cap_takes_effect_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start_with(test_config(), Some(dir.path())).await;
    let alice = srv.user(ALICE).await;
    let bob = srv.user(BOB).await;
    for i in 0..5 {
        send_text(&srv, &alice, BOB, &format!("m{i}")).await;
    }
    srv.stop().await;

    // No mail arrives: the cap must still be applied, keeping the newest.
    let mut config = test_config();
    config.service.max_messages = 2;
    config.retention = None;
    let srv = TestServer::start_with(config, Some(dir.path())).await;
    wait_until("the store is trimmed to the cap", || async {
        list(&srv, &bob, "inbox").await.len() == 2
    })
    .await;
    assert_eq!(subjects(&list(&srv, &bob, "inbox").await), ["m4", "m3"]);
    assert_eq!(subjects(&list(&srv, &alice, "sent").await), ["m4", "m3"]);
    assert_eq!(counts(&srv, &bob, "inbox").await, (2, 2));
    srv.stop().await;
}

// ----- retention -----------------------------------------------------------------------------

#[tokio::test]
async fn retention_removes_old_mail_and_it_stays_gone_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start_with(test_config(), Some(dir.path())).await;
    let alice = srv.user(ALICE).await;
    let bob = srv.user(BOB).await;
    let sent = [
        send_text(&srv, &alice, BOB, "old 1").await,
        send_text(&srv, &alice, BOB, "old 2").await,
    ];
    let bobs = ids(&list(&srv, &bob, "inbox").await);
    srv.stop().await;

    let mut config = test_config();
    config.retention = Some(Duration::from_secs(2));
    config.sweep_interval = Duration::from_secs(1);
    let srv = TestServer::start_with(config, Some(dir.path())).await;
    wait_until("the sweeper removes the expired messages", || async {
        list(&srv, &bob, "inbox").await.is_empty() && list(&srv, &alice, "sent").await.is_empty()
    })
    .await;
    for id in &bobs {
        assert_error(&get_message(&srv, &bob, id).await, 404, "not_found");
    }
    assert_eq!(counts(&srv, &bob, "inbox").await, (0, 0));
    srv.stop().await;

    // Gone for good: a server that keeps mail forever finds nothing of it.
    let mut config = test_config();
    config.retention = None;
    let srv = TestServer::start_with(config, Some(dir.path())).await;
    assert!(list(&srv, &bob, "inbox").await.is_empty());
    assert_eq!(counts(&srv, &bob, "inbox").await, (0, 0));
    assert_eq!(counts(&srv, &alice, "sent").await, (0, 0));
    for m in &sent {
        let (s, _) = get_message(&srv, &alice, m["id"].as_str().unwrap()).await;
        assert_eq!(s, 404);
    }
    // New mail is kept.
    send_text(&srv, &alice, BOB, "new").await;
    assert_eq!(subjects(&list(&srv, &bob, "inbox").await), ["new"]);
    srv.stop().await;

    let store = open_store(dir.path());
    assert_eq!(store.message_count().unwrap(), 1);
}

#[tokio::test]
async fn the_admin_purge_endpoint_needs_the_admin_token() {
    const ADMIN: &str = "fm_the-admin-token-of-this-test";
    const PURGE: &str = "/api/v1/admin/purge";
    let mut config = test_config();
    config.admin_token = Some(ADMIN.to_owned());
    let srv = TestServer::start_with(config, None).await;
    let alice = srv.user(ALICE).await;
    let bob = srv.user(BOB).await;
    for i in 0..2 {
        send_text(&srv, &alice, BOB, &format!("m{i}")).await;
    }
    let bytes = total_size(&list(&srv, &bob, "inbox").await);
    let all = json!({"older_than": "0s"});
    for token in [None, Some(alice.as_str()), Some("fm_wrong")] {
        srv.expect_error(
            "POST",
            PURGE,
            token,
            Some(all.clone()),
            401,
            "admin_token_required",
        )
        .await;
    }
    for bad in ["soon", "", "-1s"] {
        let got = srv
            .call("POST", PURGE, Some(ADMIN), Some(json!({"older_than": bad})))
            .await;
        assert_field_error(&got, 422, "invalid_duration", "older_than");
    }
    let dry = json!({"older_than": "0s", "dry_run": true});
    assert_eq!(
        srv.call("POST", PURGE, Some(ADMIN), Some(dry)).await,
        (200, json!({"deleted": 2, "bytes": bytes, "dry_run": true}))
    );
    let young = json!({"older_than": "1h"});
    assert_eq!(
        srv.call("POST", PURGE, Some(ADMIN), Some(young)).await,
        (200, json!({"deleted": 0, "bytes": 0, "dry_run": false}))
    );
    assert_eq!(list(&srv, &bob, "inbox").await.len(), 2);
    assert_eq!(
        srv.call("POST", PURGE, Some(ADMIN), Some(all)).await,
        (200, json!({"deleted": 2, "bytes": bytes, "dry_run": false}))
    );
    assert!(list(&srv, &bob, "inbox").await.is_empty());
    assert!(list(&srv, &alice, "sent").await.is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn a_bad_authorization_header_on_the_admin_endpoint_is_a_401_like_elsewhere() {
    let mut config = test_config();
    config.admin_token = Some("fm_admin-of-this-test".to_owned());
    let srv = TestServer::start_with(config, None).await;
    let body = json!({"older_than": "1d"});
    for raw_value in [&b"Bearer fm_\xe9\xe9"[..], b"\xe9\xe9 token"] {
        let value = reqwest::header::HeaderValue::from_bytes(raw_value).unwrap();
        let admin = srv
            .request("POST", "/api/v1/admin/purge", None, Some(body.clone()))
            .header("authorization", value.clone());
        let r = send(admin).await;
        assert_error(&(r.status, r.json), 401, "admin_token_required");
        let user = srv
            .request("GET", MAILBOXES, None, None)
            .header("authorization", value);
        let r = send(user).await;
        assert_error(&(r.status, r.json), 401, "invalid_token");
    }
    srv.stop().await;
}

// ----- fakemail purge, as a process ----------------------------------------------------------

/// `fakemail purge --data-dir <dir> <args>`, run to completion.
fn purge(dir: &Path, args: &[&str]) -> Finished {
    let mut cmd = fakemail();
    cmd.arg("purge").arg("--data-dir").arg(dir).args(args);
    run(cmd)
}

#[track_caller]
fn assert_purged(out: &Finished, expected_stdout: &str) {
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, format!("{expected_stdout}\n"), "{out:?}");
}

/// Asserts that a purge failed with exit status 1, an error line naming every one of
/// `needles`, and nothing on stdout.
#[track_caller]
fn assert_purge_failed(out: &Finished, needles: &[&str]) {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.starts_with("fakemail: error: "), "{out:?}");
    for needle in needles {
        assert!(
            out.stderr.contains(needle),
            "no {needle:?} in {}",
            out.stderr
        );
    }
    assert_eq!(out.stdout, "", "{out:?}");
}

/// Total size of the messages in a user's mailbox.
fn total_size(messages: &[Value]) -> u64 {
    messages.iter().map(|m| m["size"].as_u64().unwrap()).sum()
}

#[tokio::test]
async fn purge_of_a_stopped_store() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start_with(test_config(), Some(dir.path())).await;
    let alice = srv.user(ALICE).await;
    let bob = srv.user(BOB).await;
    for i in 0..3 {
        send_text(&srv, &alice, BOB, &format!("m{i}")).await;
    }
    let bytes = total_size(&list(&srv, &bob, "inbox").await);
    srv.stop().await;

    assert_purged(
        &purge(dir.path(), &["--older-than", "1h"]),
        "deleted 0 messages, 0 bytes",
    );
    assert_purged(
        &purge(dir.path(), &["--older-than", "0s", "--dry-run"]),
        &format!("would delete 3 messages, {bytes} bytes"),
    );
    let srv = TestServer::start_with(test_config(), Some(dir.path())).await;
    assert_eq!(
        list(&srv, &bob, "inbox").await.len(),
        3,
        "a dry run deletes nothing"
    );
    srv.stop().await;

    assert_purged(
        &purge(dir.path(), &["--older-than", "0s"]),
        &format!("deleted 3 messages, {bytes} bytes"),
    );
    let srv = TestServer::start_with(test_config(), Some(dir.path())).await;
    assert!(list(&srv, &bob, "inbox").await.is_empty());
    assert!(list(&srv, &alice, "sent").await.is_empty());
    assert_eq!(counts(&srv, &bob, "inbox").await, (0, 0));
    srv.login(BOB).await;
    srv.stop().await;
}

/// The inbox of a user of a running process.
async fn inbox_of(p: &Process, token: &str) -> Vec<Value> {
    let (s, v) = p
        .call(
            "GET",
            &format!("{MAILBOXES}/inbox/messages"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v["messages"].as_array().unwrap().clone()
}

#[tokio::test]
async fn purge_through_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Process::start(serve_cmd(dir.path()));
    let alice = p.user(ALICE).await;
    let bob = p.user(BOB).await;
    for i in 0..2 {
        let (s, v) = p
            .call(
                "POST",
                MESSAGES,
                Some(&alice),
                Some(json!({"to": [BOB], "subject": format!("m{i}")})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let bytes = total_size(&inbox_of(&p, &bob).await);
    let via = format!(" (through the running server at {})", p.base);

    assert_purged(
        &purge(dir.path(), &["--older-than", "0s", "--dry-run"]),
        &format!("would delete 2 messages, {bytes} bytes{via}"),
    );
    assert_eq!(
        inbox_of(&p, &bob).await.len(),
        2,
        "a dry run deletes nothing"
    );
    assert_purged(
        &purge(dir.path(), &["--older-than", "1d"]),
        &format!("deleted 0 messages, 0 bytes{via}"),
    );
    assert_purged(
        &purge(dir.path(), &["--older-than", "0s"]),
        &format!("deleted 2 messages, {bytes} bytes{via}"),
    );
    assert!(inbox_of(&p, &bob).await.is_empty());
    p.stop_with("TERM");
    let logs = p.stderr();
    assert!(logs.contains("purge requested over the API"), "{logs}");
}

#[tokio::test]
async fn purge_reaches_a_server_started_with_an_admin_token_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    // A first start without --admin-token leaves a token file behind...
    let mut p = Process::start(serve_cmd(dir.path()));
    p.stop_with("TERM");
    assert!(dir.path().join("admin-token").is_file());
    // ...which a server given a token of its own does not use.
    let given = "fm_chosen-by-whoever-runs-the-server";
    let mut cmd = serve_cmd(dir.path());
    cmd.env("FAKEMAIL_ADMIN_TOKEN", given);
    let mut p = Process::start(cmd);
    let alice = p.user(ALICE).await;
    for i in 0..2 {
        let body = json!({"to": [BOB], "subject": format!("m{i}")});
        assert_eq!(
            p.call("POST", MESSAGES, Some(&alice), Some(body)).await.0,
            201
        );
    }
    let via = format!(" (through the running server at {})", p.base);

    // Purge needs no token: the server says which one it takes.
    let out = purge(dir.path(), &["--older-than", "0s", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stdout.starts_with("would delete 2 messages, "),
        "{out:?}"
    );
    assert!(out.stdout.ends_with(&format!("{via}\n")), "{out:?}");
    // The same token given to purge, by flag or variable, works too.
    let out = purge(
        dir.path(),
        &["--older-than", "0s", "--dry-run", "--admin-token", given],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mut cmd = fakemail();
    cmd.args(["purge", "--older-than", "1d", "--data-dir"])
        .arg(dir.path())
        .env("FAKEMAIL_ADMIN_TOKEN", given);
    assert_purged(&run(cmd), &format!("deleted 0 messages, 0 bytes{via}"));
    // A wrong one is refused, and nothing is deleted.
    let out = purge(
        dir.path(),
        &["--older-than", "0s", "--admin-token", "fm_wrong"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("the server at {} refused the purge (401)", p.base)),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains(given),
        "the token is shown: {}",
        out.stderr
    );
    let out = purge(dir.path(), &["--older-than", "0s"]);
    assert!(out.stdout.starts_with("deleted 2 messages, "), "{out:?}");
    p.stop_with("TERM");
    assert!(!p.stderr().contains(given), "the token is logged");
    assert!(
        !dir.path().join("server.json").exists(),
        "removed at a clean stop"
    );
}

#[test]
fn purge_needs_an_existing_data_dir_and_an_age() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let out = purge(&missing, &["--older-than", "1d"]);
    assert_purge_failed(&out, &[&missing.display().to_string()]);
    assert!(!missing.exists(), "purge made the data dir");

    for args in [&[][..], &["--older-than", "soon"][..]] {
        let out = purge(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(out.stderr.contains("--older-than"), "{}", out.stderr);
    }
}

#[tokio::test]
async fn sub_second_ages_are_refused_not_rounded_down_to_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config();
    config.admin_token = Some("fm_admin-of-this-test".to_owned());
    let srv = TestServer::start_with(config.clone(), Some(dir.path())).await;
    let alice = srv.user(ALICE).await;
    let bob = srv.user(BOB).await;
    for i in 0..2 {
        send_text(&srv, &alice, BOB, &format!("m{i}")).await;
    }
    for age in ["500ms", "1500ms", "1s 1ns"] {
        let got = srv
            .call(
                "POST",
                "/api/v1/admin/purge",
                Some("fm_admin-of-this-test"),
                Some(json!({"older_than": age})),
            )
            .await;
        assert_field_error(&got, 422, "invalid_duration", "older_than");
    }
    srv.stop().await;

    for age in ["500ms", "999ms", "2500ms"] {
        let out = purge(dir.path(), &["--older-than", age]);
        assert_eq!(out.status.code(), Some(2), "{age}: {out:?}");
        assert!(
            out.stderr.contains("--older-than") && out.stderr.contains("whole"),
            "{}",
            out.stderr
        );
    }
    let srv = TestServer::start_with(config, Some(dir.path())).await;
    assert_eq!(
        list(&srv, &bob, "inbox").await.len(),
        2,
        "nothing was deleted"
    );
    srv.stop().await;
}

#[test]
fn purge_counts_in_the_singular_and_the_plural() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open_store(dir.path());
        let bob = store.ensure_owner(BOB).unwrap();
        stored_message(&store, Timestamp(1_700_000_000), bob, None, 1);
        stored_message(&store, Timestamp(1_700_001_000), bob, None, 2);
        store.flush().unwrap();
    }
    // An age whose cutoff falls between the two, with room for the clock to move on.
    let first_only = format!("{}s", Timestamp::now().0 - 1_700_000_500);
    assert_purged(
        &purge(dir.path(), &["--older-than", &first_only, "--dry-run"]),
        "would delete 1 message, 1 byte",
    );
    assert_purged(
        &purge(dir.path(), &["--older-than", "0s", "--dry-run"]),
        "would delete 2 messages, 3 bytes",
    );
    assert_purged(
        &purge(dir.path(), &["--older-than", &first_only]),
        "deleted 1 message, 1 byte",
    );
    assert_purged(
        &purge(dir.path(), &["--older-than", "0s"]),
        "deleted 1 message, 2 bytes",
    );
    assert_purged(
        &purge(dir.path(), &["--older-than", "0s"]),
        "deleted 0 messages, 0 bytes",
    );
}

#[test]
fn purge_refuses_a_directory_that_holds_no_store() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a store").unwrap();
    let out = purge(dir.path(), &["--older-than", "1d"]);
    assert_purge_failed(&out, &[&dir.path().display().to_string(), "no store"]);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["notes.txt"], "purge made something");
}
