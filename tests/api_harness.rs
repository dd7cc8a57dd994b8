//! End-to-end tests of what a test harness reads from fakemail over real HTTP: attachments,
//! links and codes of a message, the operator (admin) view, wait-for-message and the event
//! streams. Messages come in through REST send and, for MIME the REST API cannot make,
//! through `Service::deliver` in-process from the fixtures in `tests/fixtures`.

mod common;

use common::*;
use fakemail::time::Timestamp;
use serde_json::{Value, json};
use std::time::Duration;

// ----- MIME over the user API ----------------------------------------------------------------

#[tokio::test]
async fn a_sent_message_shows_its_links_codes_and_date() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice@example.test").await;
    let bob = srv.user("bob@example.test").await;
    let (s, sent) = srv
        .call(
            "POST",
            "/api/v1/messages",
            Some(&alice),
            Some(json!({
                "to": ["bob@example.test"],
                "subject": "Welcome! Your code is 482913",
                "text": "Confirm here: https://app.example.test/confirm?t=abc.\nYour verification code is 482913.\nSee you in 2026.",
                "html": "<a href=\"https://app.example.test/confirm?t=abc\">Confirm</a> <a href=\"https://app.example.test/u?a=1&amp;b=2\">unsubscribe</a>",
            })),
        )
        .await;
    assert_eq!(s, 201, "{sent}");
    let id = newest_in_inbox(&srv, &bob).await;
    let (s, m) = srv
        .call("GET", &format!("/api/v1/messages/{id}"), Some(&bob), None)
        .await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(
        m["links"],
        json!([
            "https://app.example.test/confirm?t=abc",
            "https://app.example.test/u?a=1&b=2"
        ])
    );
    assert_eq!(m["codes"], json!(["482913"]));
    assert_eq!(m["attachments"], json!([]));
    rfc3339(&m["date"]);
    assert_eq!(
        sent["codes"], m["codes"],
        "the sender's copy shows them too"
    );
    srv.stop().await;
}

#[tokio::test]
async fn attachments_are_listed_and_served_with_their_type_and_name() {
    let srv = TestServer::start().await;
    let bob = srv.user("bob@example.test").await;
    let alice = srv.user("alice@example.test").await;
    deliver(&srv, fixture("attachments.eml"), &["bob@example.test"]).await;
    let id = newest_in_inbox(&srv, &bob).await;
    let (s, m) = srv
        .call("GET", &format!("/api/v1/messages/{id}"), Some(&bob), None)
        .await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["has_attachments"], true);
    let list = m["attachments"].as_array().unwrap();
    assert_eq!(list.len(), 3, "{m}");
    assert_eq!(
        list[0],
        json!({
            "index": 0, "filename": "invoice-2026.pdf", "content_type": "application/pdf",
            "size": 272, "content_id": null, "inline": false
        })
    );
    assert_eq!(list[1]["filename"], "résumé.txt");
    assert_eq!(list[2]["content_type"], "message/rfc822");

    let base = format!("/api/v1/messages/{id}/attachments");
    let (s, h, body) = get_bytes(&srv, &format!("{base}/0"), &bob).await;
    assert_eq!(s, 200);
    assert_eq!(header(&h, "content-type"), "application/pdf");
    assert_eq!(
        header(&h, "content-disposition"),
        "attachment; filename=\"invoice-2026.pdf\"; filename*=UTF-8''invoice-2026.pdf"
    );
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    assert_eq!(body.len(), 272);
    assert!(body.starts_with(b"%PDF-1.4\n\x00\x01\x02"), "decoded bytes");

    let (s, h, body) = get_bytes(&srv, &format!("{base}/1"), &bob).await;
    assert_eq!(s, 200);
    assert_eq!(header(&h, "content-type"), "text/plain; charset=utf-8");
    assert_eq!(
        header(&h, "content-disposition"),
        "attachment; filename=\"r_sum_.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"
    );
    assert_eq!(String::from_utf8(body).unwrap(), "Résumé: café, naïve.");

    let (s, h, _) = get_bytes(&srv, &format!("{base}/2"), &bob).await;
    assert_eq!((s, header(&h, "content-disposition")), (200, "attachment"));

    for bad in ["3", "x", "-1", "18446744073709551616"] {
        assert_error(
            &srv.call("GET", &format!("{base}/{bad}"), Some(&bob), None)
                .await,
            404,
            "not_found",
        );
    }
    assert_error(
        &srv.call("GET", &format!("{base}/0"), Some(&alice), None)
            .await,
        404,
        "not_found",
    );
    assert_error(
        &srv.call("GET", &format!("{base}/0"), None, None).await,
        401,
        "missing_token",
    );
    let r = srv
        .reply("POST", &format!("{base}/0"), Some(&bob), None)
        .await;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
    srv.stop().await;
}

#[tokio::test]
async fn a_malformed_message_is_stored_and_its_source_served_byte_for_byte() {
    let srv = TestServer::start().await;
    let bob = srv.user("bob@example.test").await;
    let raw = fixture("malformed.eml");
    deliver(&srv, raw.clone(), &["bob@example.test"]).await;
    let id = newest_in_inbox(&srv, &bob).await;
    let (s, m) = srv
        .call("GET", &format!("/api/v1/messages/{id}"), Some(&bob), None)
        .await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["date"], Value::Null);
    assert!(
        m["subject"].as_str().unwrap().starts_with("unterminated"),
        "{m}"
    );
    let (s, h, body) = get_bytes(&srv, &format!("/api/v1/messages/{id}/raw"), &bob).await;
    assert_eq!((s, header(&h, "content-type")), (200, "message/rfc822"));
    assert_eq!(body, raw);
    srv.stop().await;
}

// ----- the operator view ------------------------------------------------------------------------

const ADMIN: &str = "fm_harness_test_admin_token";

/// A server whose admin token is [`ADMIN`].
async fn admin_server() -> TestServer {
    let srv = TestServer::start().await;
    srv.service.set_admin_token(ADMIN);
    srv
}

/// Sends a message over REST as `token`.
async fn send_mail(srv: &TestServer, token: &str, body: Value) -> Value {
    let (s, v) = srv
        .call("POST", "/api/v1/messages", Some(token), Some(body))
        .await;
    assert_eq!(s, 201, "{v}");
    v
}

/// Sends `subject` with no body from `token` to one address.
async fn mail(srv: &TestServer, token: &str, to: &str, subject: impl Into<String>) -> Value {
    let subject: String = subject.into();
    send_mail(srv, token, json!({"to": [to], "subject": subject})).await
}

/// The operator listing with `query`; asserts 200.
async fn admin_list(srv: &TestServer, query: &str) -> Value {
    let (s, v) = srv
        .call(
            "GET",
            &format!("/api/v1/admin/messages{query}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(s, 200, "{query}: {v}");
    v
}

fn subjects(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_operator_lists_all_mail_newest_first_filtered_and_paged() {
    let srv = admin_server().await;
    let alice = srv.user("alice@example.test").await;
    srv.user("bob@example.test").await;
    for i in 1..=3 {
        send_mail(
            &srv,
            &alice,
            json!({"to": ["bob@example.test"], "subject": format!("Invoice {i}"), "text": "Amount due"}),
        )
        .await;
    }
    let long = format!("{} the needle is here", "padding ".repeat(40));
    send_mail(
        &srv,
        &alice,
        json!({"to": ["carol@example.test"], "cc": ["dave@example.test"], "bcc": ["eve@example.test"],
               "subject": "Party", "text": long}),
    )
    .await;
    deliver(&srv, fixture("alternative.eml"), &["bob@example.test"]).await;

    let all = admin_list(&srv, "").await;
    assert_eq!(
        subjects(&all),
        [
            "Welcome to Example Shop, Zoë!",
            "Party",
            "Invoice 3",
            "Invoice 2",
            "Invoice 1"
        ]
    );
    assert_eq!(all["next_cursor"], Value::Null);
    let party = &all["messages"][1];
    assert_eq!(
        party["recipients"],
        json!([
            "carol@example.test",
            "dave@example.test",
            "eve@example.test"
        ]),
        "the operator sees Bcc recipients: {party}"
    );
    for key in [
        "id",
        "from",
        "to",
        "cc",
        "snippet",
        "received_at",
        "size",
        "has_attachments",
    ] {
        assert!(party.get(key).is_some(), "{key} in {party}");
    }
    assert!(
        party.get("mailbox").is_none() && party.get("read").is_none(),
        "no copy fields"
    );

    for (query, want) in [
        (
            "?to=BOB@example.test",
            vec![
                "Welcome to Example Shop, Zoë!",
                "Invoice 3",
                "Invoice 2",
                "Invoice 1",
            ],
        ),
        ("?to=eve@example.test", vec!["Party"]),
        (
            "?to=dave@example.test&from=alice@example.test",
            vec!["Party"],
        ),
        ("?to=bob", vec![]),
        (
            "?from=noreply@shop.example.test",
            vec!["Welcome to Example Shop, Zoë!"],
        ),
        ("?subject=INVOICE%202", vec!["Invoice 2"]),
        ("?q=needle", vec!["Party"]),
        ("?q=482913", vec!["Welcome to Example Shop, Zoë!"]),
        (
            "?q=example%20SHOP&subject=welcome",
            vec!["Welcome to Example Shop, Zoë!"],
        ),
        (
            "?to=&from=&subject=&q=&cursor=",
            vec![
                "Welcome to Example Shop, Zoë!",
                "Party",
                "Invoice 3",
                "Invoice 2",
                "Invoice 1",
            ],
        ),
    ] {
        assert_eq!(subjects(&admin_list(&srv, query).await), want, "{query}");
    }

    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let page = admin_list(&srv, &query).await;
        assert!(page["messages"].as_array().unwrap().len() <= 2);
        seen.extend(subjects(&page));
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, subjects(&all), "pages add up to the whole list");
    let page = admin_list(&srv, "?subject=invoice&limit=1").await;
    assert_eq!(subjects(&page), ["Invoice 3"]);
    let next = page["next_cursor"].as_str().unwrap();
    let page = admin_list(&srv, &format!("?subject=invoice&limit=5&cursor={next}")).await;
    assert_eq!(subjects(&page), ["Invoice 2", "Invoice 1"]);

    for (q, code, field) in [
        ("?limit=0", "invalid_limit", "limit"),
        ("?limit=501", "invalid_limit", "limit"),
        ("?limit=x", "invalid_limit", "limit"),
        ("?cursor=nope", "invalid_cursor", "cursor"),
        ("?subjct=x", "invalid_query", "subjct"),
    ] {
        let got = srv
            .call(
                "GET",
                &format!("/api/v1/admin/messages{q}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_field_error(&got, 422, code, field);
    }
    srv.stop().await;
}

#[tokio::test]
async fn the_operator_reads_a_message_its_source_and_its_attachments() {
    let srv = admin_server().await;
    let raw = fixture("attachments.eml");
    let id = deliver(
        &srv,
        raw.clone(),
        &["bob@example.test", "Carol@example.test"],
    )
    .await;
    let path = format!("/api/v1/admin/messages/{id}");
    let (s, m) = srv.call("GET", &path, Some(ADMIN), None).await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["id"], id.to_string());
    assert_eq!(m["subject"], "Invoice and CV");
    assert_eq!(m["message_id"], "att-1@example.test");
    assert_eq!(m["date"], "2026-11-25T08:00:00Z");
    assert_eq!(
        m["recipients"],
        json!(["bob@example.test", "Carol@example.test"])
    );
    assert_eq!(m["attachments"].as_array().unwrap().len(), 3);
    assert!(m["text"].as_str().unwrap().starts_with("Two files"));

    let (s, h, body) = get_bytes(&srv, &format!("{path}/raw"), ADMIN).await;
    assert_eq!((s, header(&h, "content-type")), (200, "message/rfc822"));
    assert_eq!(body, raw, "byte for byte");
    let (s, h, body) = get_bytes(&srv, &format!("{path}/attachments/0"), ADMIN).await;
    assert_eq!((s, header(&h, "content-type")), (200, "application/pdf"));
    assert_eq!(body.len(), 272);

    for p in [
        "/api/v1/admin/messages/999999".to_owned(),
        "/api/v1/admin/messages/abc".to_owned(),
        "/api/v1/admin/messages/999999/raw".to_owned(),
        format!("{path}/attachments/3"),
        format!("{path}/attachments/x"),
    ] {
        assert_error(
            &srv.call("GET", &p, Some(ADMIN), None).await,
            404,
            "not_found",
        );
    }
    for (method, p, allow) in [
        ("POST", path.clone(), "GET, DELETE"),
        ("DELETE", format!("{path}/raw"), "GET"),
        ("PUT", format!("{path}/attachments/0"), "GET"),
        ("POST", "/api/v1/admin/messages".to_owned(), "GET, DELETE"),
        ("POST", "/api/v1/admin/stats".to_owned(), "GET"),
    ] {
        let r = srv.reply(method, &p, Some(ADMIN), None).await;
        assert_eq!(
            (r.status, r.header("allow")),
            (405, Some(allow)),
            "{method} {p}"
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn the_operator_deletes_one_message_or_everything() {
    let srv = admin_server().await;
    let alice = srv.user("alice@example.test").await;
    let bob = srv.user("bob@example.test").await;
    for i in 1..=3 {
        send_mail(
            &srv,
            &alice,
            json!({"to": ["bob@example.test"], "subject": format!("Note {i}")}),
        )
        .await;
    }
    let page = admin_list(&srv, "?subject=note%202").await;
    let id = page["messages"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/admin/messages/{id}");
    assert_eq!(
        srv.call("DELETE", &path, Some(ADMIN), None).await,
        (204, Value::Null)
    );
    assert_error(
        &srv.call("GET", &path, Some(ADMIN), None).await,
        404,
        "not_found",
    );
    assert_error(
        &srv.call("DELETE", &path, Some(ADMIN), None).await,
        404,
        "not_found",
    );
    assert_eq!(subjects(&admin_list(&srv, "").await), ["Note 3", "Note 1"]);
    for (token, mailbox) in [(&bob, "inbox"), (&alice, "sent")] {
        let (_, p) = srv
            .call(
                "GET",
                &format!("/api/v1/mailboxes/{mailbox}/messages"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(subjects(&p), ["Note 3", "Note 1"], "every copy went");
    }

    assert_eq!(
        srv.call("DELETE", "/api/v1/admin/messages", Some(ADMIN), None)
            .await,
        (204, Value::Null)
    );
    assert_eq!(subjects(&admin_list(&srv, "").await), Vec::<String>::new());
    let (s, boxes) = srv.call("GET", "/api/v1/mailboxes", Some(&bob), None).await;
    assert_eq!(s, 200);
    assert_eq!(boxes[0], json!({"name": "inbox", "total": 0, "unread": 0}));
    let (_, stats) = srv
        .call("GET", "/api/v1/admin/stats", Some(ADMIN), None)
        .await;
    assert_eq!(
        (&stats["messages"], &stats["bytes"], &stats["users"]),
        (&json!(0), &json!(0), &json!(2))
    );
    srv.stop().await;
}

#[tokio::test]
async fn stats_count_messages_bytes_users_and_smtp() {
    let srv = admin_server().await;
    let (s, stats) = srv
        .call("GET", "/api/v1/admin/stats", Some(ADMIN), None)
        .await;
    assert_eq!(s, 200, "{stats}");
    assert_eq!(stats["messages"], 0);
    assert_eq!(
        stats["smtp"],
        json!({"connections": 0, "accepted": 0, "rejected": 0})
    );
    assert!(stats["uptime_seconds"].as_u64().is_some());
    let alice = srv.user("alice@example.test").await;
    srv.user("bob@example.test").await;
    let sent = mail(&srv, &alice, "bob@example.test", "Hi").await;
    srv.service.stats().smtp_connection();
    srv.service.stats().smtp_accepted();
    srv.service.stats().smtp_rejected();
    srv.service.stats().smtp_rejected();
    let (_, stats) = srv
        .call("GET", "/api/v1/admin/stats", Some(ADMIN), None)
        .await;
    assert_eq!(stats["messages"], 1, "one message, however many copies");
    assert_eq!(stats["bytes"], sent["size"]);
    assert_eq!(stats["users"], 2);
    assert_eq!(
        stats["smtp"],
        json!({"connections": 1, "accepted": 1, "rejected": 2})
    );
    srv.stop().await;
}

#[tokio::test]
async fn every_operator_endpoint_needs_the_admin_token() {
    let srv = admin_server().await;
    let alice = srv.user("alice@example.test").await;
    let id = deliver(&srv, fixture("alternative.eml"), &["bob@example.test"]).await;
    let endpoints = [
        ("GET", "/api/v1/admin/messages".to_owned()),
        ("DELETE", "/api/v1/admin/messages".to_owned()),
        ("GET", format!("/api/v1/admin/messages/{id}")),
        ("DELETE", format!("/api/v1/admin/messages/{id}")),
        ("GET", format!("/api/v1/admin/messages/{id}/raw")),
        ("GET", format!("/api/v1/admin/messages/{id}/attachments/0")),
        ("GET", "/api/v1/admin/stats".to_owned()),
    ];
    for (method, path) in &endpoints {
        for token in [None, Some("wrong"), Some(alice.as_str())] {
            assert_error(
                &srv.call(method, path, token, None).await,
                401,
                "admin_token_required",
            );
        }
    }
    let (s, _) = srv
        .call(
            "GET",
            &format!("/api/v1/admin/messages/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(s, 200, "nothing was deleted without the token");
    srv.stop().await;
}

// ----- wait-for-message -------------------------------------------------------------------------

/// An RFC 3339 time `secs` seconds ago.
fn seconds_ago(secs: u64) -> String {
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[tokio::test]
async fn a_wait_answers_with_a_message_stored_after_it_began() {
    let srv = admin_server().await;
    let alice = srv.user("alice@example.test").await;
    mail(&srv, &alice, "bob@example.test", "Old").await;
    let waiting = spawn_call(
        &srv,
        "/api/v1/admin/wait?to=bob@example.test&timeout=2m",
        ADMIN,
    );
    listeners(&srv, 1).await;
    // From another task, a moment later: the wait is already listening.
    let sender = {
        let req = srv.request(
            "POST",
            "/api/v1/messages",
            Some(&alice),
            Some(json!({"to": ["carol@example.test", "bob@example.test"], "subject": "Confirm",
                        "text": "Your verification code is 482913: https://app.example.test/c?t=1"})),
        );
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            send(req).await.status
        })
    };
    let (s, m) = waiting.await.unwrap();
    assert_eq!(sender.await.unwrap(), 201);
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["subject"], "Confirm", "not the message already there");
    assert_eq!(m["codes"], json!(["482913"]));
    assert_eq!(m["links"], json!(["https://app.example.test/c?t=1"]));
    assert_eq!(
        m["recipients"],
        json!(["carol@example.test", "bob@example.test"])
    );
    assert!(m["cursor"].as_str().is_some_and(|c| c.len() == 16), "{m}");
    listeners(&srv, 0).await;
    srv.stop().await;
}

#[tokio::test]
async fn a_wait_answers_at_once_for_mail_already_there_oldest_first_then_times_out() {
    let srv = admin_server().await;
    let alice = srv.user("alice@example.test").await;
    let since = seconds_ago(120);
    for subject in ["One", "Two", "Three"] {
        mail(&srv, &alice, "bob@example.test", subject).await;
    }
    mail(&srv, &alice, "carol@example.test", "Other").await;
    let wait = |after: String| {
        let srv = &srv;
        async move {
            srv.call(
                "GET",
                &format!("/api/v1/admin/wait?to=BOB@example.test&after={after}&timeout=1m"),
                Some(ADMIN),
                None,
            )
            .await
        }
    };
    let mut after = since;
    for want in ["One", "Two", "Three"] {
        let (s, m) = wait(after).await;
        assert_eq!((s, m["subject"].as_str()), (200, Some(want)), "{m}");
        after = m["cursor"].as_str().unwrap().to_owned();
    }
    let got = srv
        .call(
            "GET",
            &format!("/api/v1/admin/wait?to=bob@example.test&after={after}&timeout=1s"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_error(&got, 408, "timeout");
    let got = srv
        .call(
            "GET",
            "/api/v1/admin/wait?subject=never&timeout=0",
            Some(ADMIN),
            None,
        )
        .await;
    assert_error(&got, 408, "timeout");
    let (s, m) = srv
        .call(
            "GET",
            &format!(
                "/api/v1/admin/wait?subject=other&after={}",
                seconds_ago(60).replace('Z', "%2B00:00")
            ),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(
        (s, m["subject"].as_str()),
        (200, Some("Other")),
        "offset time: {m}"
    );
    listeners(&srv, 0).await;
    srv.stop().await;
}

#[tokio::test]
async fn wait_parameters_and_tokens_are_checked() {
    let srv = admin_server().await;
    let bob = srv.user("bob@example.test").await;
    for (query, code, field) in [
        ("timeout=301", "invalid_timeout", "timeout"),
        ("timeout=6m", "invalid_timeout", "timeout"),
        ("timeout=soon", "invalid_timeout", "timeout"),
        ("after=yesterday", "invalid_after", "after"),
        ("after=2026-11-24", "invalid_after", "after"),
        ("q=colour:red", "invalid_search", "q"),
        ("q=larger:big", "invalid_search", "q"),
        ("limit=1", "invalid_query", "limit"),
    ] {
        for (path, token) in [
            ("/api/v1/admin/wait", ADMIN),
            ("/api/v1/mailboxes/inbox/wait", bob.as_str()),
        ] {
            let got = srv
                .call("GET", &format!("{path}?{query}"), Some(token), None)
                .await;
            assert_field_error(&got, 422, code, field);
        }
    }
    for token in [None, Some("wrong"), Some(bob.as_str())] {
        let got = srv
            .call("GET", "/api/v1/admin/wait?timeout=0", token, None)
            .await;
        assert_error(&got, 401, "admin_token_required");
    }
    let got = srv
        .call("GET", "/api/v1/mailboxes/inbox/wait", None, None)
        .await;
    assert_error(&got, 401, "missing_token");
    let got = srv
        .call(
            "GET",
            "/api/v1/mailboxes/nope/wait?timeout=0",
            Some(&bob),
            None,
        )
        .await;
    assert_error(&got, 404, "not_found");
    let r = srv
        .reply("POST", "/api/v1/admin/wait", Some(ADMIN), None)
        .await;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
    let r = srv
        .reply("DELETE", "/api/v1/mailboxes/inbox/wait", Some(&bob), None)
        .await;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
    assert_eq!(srv.service.events().listeners(), 0);
    srv.stop().await;
}

#[tokio::test]
async fn a_users_wait_sees_only_their_own_copies() {
    let srv = admin_server().await;
    let alice = srv.user("alice@example.test").await;
    let bob = srv.user("bob@example.test").await;
    srv.user("carol@example.test").await;
    let bobs = spawn_call(&srv, "/api/v1/mailboxes/inbox/wait?timeout=2m", &bob);
    let alices = spawn_call(&srv, "/api/v1/mailboxes/SENT/wait?timeout=2m", &alice);
    listeners(&srv, 2).await;
    let to_carol = mail(&srv, &alice, "carol@example.test", "For Carol").await;
    mail(&srv, &alice, "bob@example.test", "For Bob").await;
    let (s, m) = bobs.await.unwrap();
    assert_eq!((s, m["subject"].as_str()), (200, Some("For Bob")), "{m}");
    assert_eq!(m["mailbox"], "inbox");
    assert!(
        m.get("recipients").is_none(),
        "a user's copy, not the operator view: {m}"
    );
    let (s, page) = srv
        .call("GET", "/api/v1/mailboxes/inbox/messages", Some(&bob), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(m["id"], page["messages"][0]["id"], "bob's own copy");
    let (s, m) = alices.await.unwrap();
    assert_eq!((s, &m["id"]), (200, &to_carol["id"]), "her sent copy: {m}");

    // Blind copies: bob cannot find out who else was one.
    send_mail(
        &srv,
        &alice,
        json!({"to": ["bob@example.test"], "bcc": ["dave@example.test"], "subject": "Secret"}),
    )
    .await;
    let since = seconds_ago(120);
    let got = srv
        .call(
            "GET",
            &format!("/api/v1/mailboxes/inbox/wait?to=dave@example.test&after={since}&timeout=1s"),
            Some(&bob),
            None,
        )
        .await;
    assert_error(&got, 408, "timeout");
    let (s, m) = srv
        .call(
            "GET",
            &format!("/api/v1/mailboxes/sent/wait?to=dave@example.test&after={since}&timeout=1s"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(
        (s, m["subject"].as_str()),
        (200, Some("Secret")),
        "the sender knows: {m}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_waiting_client_that_goes_away_costs_nothing() {
    let srv = admin_server().await;
    let bob = srv.user("bob@example.test").await;
    let admin = spawn_call(&srv, "/api/v1/admin/wait?timeout=5m", ADMIN);
    let user = spawn_call(&srv, "/api/v1/mailboxes/inbox/wait?timeout=5m", &bob);
    listeners(&srv, 2).await;
    admin.abort();
    user.abort();
    // The server notices the closed connections and drops both waits with their subscriptions.
    listeners(&srv, 0).await;
    srv.stop().await;
}

#[tokio::test]
async fn shutdown_ends_the_waits() {
    let srv = admin_server().await;
    let waiting = spawn_call(&srv, "/api/v1/admin/wait?timeout=5m", ADMIN);
    listeners(&srv, 1).await;
    srv.stop().await;
    let got = waiting.await.unwrap();
    assert_error(&got, 503, "not_ready");
}

// ----- event streams ---------------------------------------------------------------------------

#[tokio::test]
async fn the_operator_stream_tells_of_messages_received_and_deleted() {
    let srv = admin_server().await;
    let alice = srv.user("alice@example.test").await;
    let bob = srv.user("bob@example.test").await;
    let mut events = Sse::open(&srv, "/api/v1/admin/events", ADMIN, None).await;

    mail(&srv, &alice, "bob@example.test", "One").await;
    let e = events.next().await;
    assert_eq!(e.event, "message.received");
    assert_eq!(e.data["subject"], "One");
    assert_eq!(e.data["recipients"], json!(["bob@example.test"]));
    let one = e.data["id"].as_str().unwrap().to_owned();
    assert!(e.id.as_ref().is_some_and(|c| c.len() == 16), "{e:?}");
    assert_eq!(
        srv.call(
            "DELETE",
            &format!("/api/v1/admin/messages/{one}"),
            Some(ADMIN),
            None
        )
        .await
        .0,
        204
    );
    let e = events.next().await;
    assert_eq!(
        (e.event.as_str(), &e.data["id"]),
        ("message.deleted", &json!(one))
    );
    assert_eq!(e.id, None, "a deletion does not move the stream's place");

    let sent = mail(&srv, &alice, "bob@example.test", "Two").await;
    let two = events.next().await;
    assert_eq!(two.data["subject"], "Two");
    // One copy going is no news to the operator; the message going with its last copy is.
    let (s, _) = srv
        .call(
            "DELETE",
            &format!(
                "/api/v1/messages/{}?permanent=true",
                sent["id"].as_str().unwrap()
            ),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, 204);
    mail(&srv, &alice, "carol@example.test", "Three").await;
    let e = events.next().await;
    assert_eq!(
        (e.event.as_str(), &e.data["subject"]),
        ("message.received", &json!("Three"))
    );
    let bobs = newest_in_inbox(&srv, &bob).await;
    let (s, _) = srv
        .call(
            "DELETE",
            &format!("/api/v1/messages/{bobs}?permanent=true"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let e = events.next().await;
    assert_eq!(
        (e.event.as_str(), &e.data["subject"]),
        ("message.deleted", &json!("Two"))
    );

    // An event id is a cursor: a wait after it finds what came next.
    let (s, m) = srv
        .call(
            "GET",
            &format!("/api/v1/admin/wait?after={}&timeout=0", two.id.unwrap()),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!((s, m["subject"].as_str()), (200, Some("Three")), "{m}");
    srv.stop().await;
}

#[tokio::test]
async fn a_users_stream_shows_only_their_own_copies() {
    let srv = admin_server().await;
    let alice = srv.user("alice@example.test").await;
    let bob = srv.user("bob@example.test").await;
    let carol = srv.user("carol@example.test").await;
    let mut bobs = Sse::open(&srv, "/api/v1/events", &bob, None).await;
    let mut carols = Sse::open(&srv, "/api/v1/events", &carol, None).await;
    let mut alices = Sse::open(&srv, "/api/v1/events", &alice, None).await;

    let sent = send_mail(
        &srv,
        &alice,
        json!({"to": ["carol@example.test"], "bcc": ["dave@example.test"], "subject": "For Carol"}),
    )
    .await;
    mail(&srv, &alice, "bob@example.test", "For Bob").await;

    let e = bobs.next().await;
    assert_eq!(
        (e.event.as_str(), &e.data["subject"]),
        ("message.received", &json!("For Bob"))
    );
    assert_eq!(e.data["mailbox"], "inbox");
    assert!(
        e.data.get("recipients").is_none(),
        "a user's summary: {}",
        e.data
    );
    let bobs_copy = newest_in_inbox(&srv, &bob).await;
    assert_eq!(e.data["id"], bobs_copy);
    let e = carols.next().await;
    assert_eq!(e.data["subject"], "For Carol");
    let e = alices.next().await;
    assert_eq!(
        (&e.data["id"], &e.data["mailbox"]),
        (&sent["id"], &json!("sent"))
    );
    assert_eq!(alices.next().await.data["subject"], "For Bob");

    // Bob deletes his copy: moved to trash (no event), then for good.
    let path = format!("/api/v1/messages/{bobs_copy}");
    assert_eq!(srv.call("DELETE", &path, Some(&bob), None).await.0, 204);
    assert_eq!(srv.call("DELETE", &path, Some(&bob), None).await.0, 204);
    let e = bobs.next().await;
    assert_eq!(
        (e.event.as_str(), &e.data["mailbox"]),
        ("message.deleted", &json!("trash"))
    );
    // Carol's next event is her own next message, not bob's deletion.
    mail(&srv, &alice, "carol@example.test", "Again").await;
    assert_eq!(carols.next().await.data["subject"], "Again");
    srv.stop().await;
}

#[tokio::test]
async fn a_stream_reconnecting_with_last_event_id_gets_what_it_missed() {
    let srv = admin_server().await;
    let alice = srv.user("alice@example.test").await;
    let mut events = Sse::open(&srv, "/api/v1/admin/events", ADMIN, None).await;
    mail(&srv, &alice, "bob@example.test", "Seen").await;
    let last = events.next().await.id.unwrap();
    drop(events);
    for subject in ["Missed 1", "Missed 2"] {
        mail(&srv, &alice, "bob@example.test", subject).await;
    }
    let mut events = Sse::open(&srv, "/api/v1/admin/events", ADMIN, Some(&last)).await;
    assert_eq!(events.next().await.data["subject"], "Missed 1");
    assert_eq!(events.next().await.data["subject"], "Missed 2");
    mail(&srv, &alice, "bob@example.test", "Live").await;
    assert_eq!(events.next().await.data["subject"], "Live");
    srv.stop().await;
}

#[tokio::test]
async fn event_streams_need_their_tokens() {
    let srv = admin_server().await;
    let bob = srv.user("bob@example.test").await;
    for token in [None, Some("wrong"), Some(bob.as_str())] {
        let got = srv.call("GET", "/api/v1/admin/events", token, None).await;
        assert_error(&got, 401, "admin_token_required");
    }
    assert_error(
        &srv.call("GET", "/api/v1/events", None, None).await,
        401,
        "missing_token",
    );
    assert_error(
        &srv.call("GET", "/api/v1/events", Some(ADMIN), None).await,
        401,
        "invalid_token",
    );
    for path in ["/api/v1/events", "/api/v1/admin/events"] {
        let r = srv.reply("POST", path, Some(ADMIN), None).await;
        assert_eq!((r.status, r.header("allow")), (405, Some("GET")), "{path}");
    }
    assert_eq!(srv.service.events().listeners(), 0);
    srv.stop().await;
}

#[tokio::test]
async fn streams_end_when_their_client_goes_or_the_server_stops() {
    let srv = admin_server().await;
    let bob = srv.user("bob@example.test").await;
    let gone = Sse::open(&srv, "/api/v1/admin/events", ADMIN, None).await;
    let staying = Sse::open(&srv, "/api/v1/events", &bob, None).await;
    listeners(&srv, 2).await;
    drop(gone);
    // Noticed at the latest when the stream next writes (an event or a keep-alive comment).
    listeners(&srv, 1).await;
    srv.stop().await;
    staying.ends().await;
}

#[tokio::test]
async fn a_wait_or_stream_outliving_its_session_shows_nothing_more() {
    let srv = admin_server().await;
    let alice = srv.user("alice@example.test").await;
    let bob = srv.user("bob@example.test").await;
    let waiting = spawn_call(&srv, "/api/v1/mailboxes/inbox/wait?timeout=2m", &bob);
    let stream = Sse::open(&srv, "/api/v1/events", &bob, None).await;
    listeners(&srv, 2).await;
    let (s, _) = srv
        .call("POST", "/api/v1/auth/logout", Some(&bob), None)
        .await;
    assert_eq!(s, 204);
    mail(&srv, &alice, "bob@example.test", "After logout").await;
    assert_error(&waiting.await.unwrap(), 401, "invalid_token");
    stream.ends().await;
    listeners(&srv, 0).await;
    srv.stop().await;
}

#[tokio::test]
async fn retention_the_cap_and_purges_announce_what_they_delete() {
    let mut config = test_config();
    config.retention = Some(Duration::from_secs(3600));
    config.sweep_interval = Duration::from_millis(200);
    config.service.max_messages = 2;
    let srv = TestServer::start_with(config, None).await;
    srv.service.set_admin_token(ADMIN);
    let alice = srv.user("alice@example.test").await;
    let bob = srv.user("bob@example.test").await;
    let mut operator = Sse::open(&srv, "/api/v1/admin/events", ADMIN, None).await;
    let mut bobs = Sse::open(&srv, "/api/v1/events", &bob, None).await;
    let received = |e: SseEvent, subject: &str| {
        assert_eq!(
            (e.event.as_str(), &e.data["subject"]),
            ("message.received", &json!(subject))
        );
    };
    let deleted = |e: SseEvent, subject: &str| {
        assert_eq!(
            (e.event.as_str(), &e.data["subject"]),
            ("message.deleted", &json!(subject)),
            "{e:?}"
        );
    };

    // The cap: a third message pushes out the first.
    for subject in ["One", "Two", "Three"] {
        mail(&srv, &alice, "bob@example.test", subject).await;
    }
    for subject in ["One", "Two", "Three"] {
        received(operator.next().await, subject);
        received(bobs.next().await, subject);
    }
    deleted(operator.next().await, "One");
    deleted(bobs.next().await, "One");

    // The admin purge of everything older than 0 s.
    let (s, body) = srv
        .call(
            "POST",
            "/api/v1/admin/purge",
            Some(ADMIN),
            Some(json!({"older_than": "0s"})),
        )
        .await;
    assert_eq!((s, &body["deleted"]), (200, &json!(2)), "{body}");
    for subject in ["Two", "Three"] {
        deleted(operator.next().await, subject);
        deleted(bobs.next().await, subject);
    }

    // The sweeper: a message stored two hours back (straight into the store, so unannounced)
    // goes at its next pass.
    let store = srv.service.store();
    let owner = store.ensure_owner("bob@example.test").unwrap();
    let two_hours_ago = Timestamp(Timestamp::now().0 - 7200);
    let old = stored_message(store, two_hours_ago, owner, None, 100);
    let subject = format!("message {old}");
    deleted(operator.next().await, &subject);
    deleted(bobs.next().await, &subject);
    srv.stop().await;
}
