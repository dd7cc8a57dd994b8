//! End to end: the search grammar in `q` of both listings and both waits, and tags (from
//! `X-Tags` over SMTP, set, listed, renamed and deleted through the service and the admin
//! routes, and gone with their messages whichever way those go).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const ADMIN: &str = "fm_search_test_admin_token";

async fn admin_server() -> TestServer {
    let srv = TestServer::start().await;
    srv.service.set_admin_token(ADMIN);
    srv
}

/// A message source from `from` to bob with `subject`, extra header lines and a body.
fn source(from: &str, subject: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: Bob <bob@example.test>\r\nSubject: {subject}\r\n{headers}\
         Message-ID: <{subject}@example.test>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// The subjects of an operator listing with `q` (percent-encoded by the caller).
async fn admin_subjects(srv: &TestServer, q: &str) -> Vec<String> {
    let (s, v) = srv
        .call(
            "GET",
            &format!("/api/v1/admin/messages?q={q}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(s, 200, "{q}: {v}");
    subjects(&v)
}

/// The subjects of bob's inbox listing with `q`.
async fn inbox_subjects(srv: &TestServer, bob: &str, q: &str) -> Vec<String> {
    let (s, v) = srv
        .call(
            "GET",
            &format!("/api/v1/mailboxes/inbox/messages?q={q}"),
            Some(bob),
            None,
        )
        .await;
    assert_eq!(s, 200, "{q}: {v}");
    subjects(&v)
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
async fn q_takes_the_search_grammar_on_both_listings() {
    let srv = admin_server().await;
    let bob = srv.user("bob@example.test").await;
    let to = ["bob@example.test"];
    deliver(
        &srv,
        source(
            "Alice <alice@example.test>",
            "Invoice",
            "X-Tags: billing\r\n",
            "Amount due: 10 EUR",
        ),
        &to,
    )
    .await;
    deliver(
        &srv,
        source(
            "Carol <carol@example.test>",
            "École d'été",
            "",
            "Bienvenue à l'ÉCOLE",
        ),
        &to,
    )
    .await;
    deliver(
        &srv,
        source(
            "alice@example.test",
            "Lunch",
            "Cc: dave@example.test\r\n",
            "Friday at noon?",
        ),
        &to,
    )
    .await;
    // Newest first.
    for (q, want) in [
        ("", vec!["Lunch", "École d'été", "Invoice"]),
        ("from:alice", vec!["Lunch", "Invoice"]),
        ("from:alice%20-subject:lunch", vec!["Invoice"]),
        ("!from:alice", vec!["École d'été"]),
        ("%22amount%20due%22", vec!["Invoice"]),
        ("%C3%A9cole", vec!["École d'été"]),
        ("BIENVENUE", vec!["École d'été"]),
        ("cc:dave", vec!["Lunch"]),
        ("tag:BILLING", vec!["Invoice"]),
        ("is:tagged", vec!["Invoice"]),
        ("-is:tagged%20noon", vec!["Lunch"]),
        ("message-id:lunch@", vec!["Lunch"]),
        ("larger:1G", vec![]),
        (
            "smaller:1M%20after:2000-01-01",
            vec!["Lunch", "École d'été", "Invoice"],
        ),
        ("before:2000-01-01", vec![]),
    ] {
        assert_eq!(admin_subjects(&srv, q).await, want, "admin {q}");
        assert_eq!(inbox_subjects(&srv, &bob, q).await, want, "inbox {q}");
    }
    // A user's own flags; the operator's: some copy.
    let id = newest_in_inbox(&srv, &bob).await;
    let (s, _) = srv
        .call(
            "PATCH",
            &format!("/api/v1/messages/{id}"),
            Some(&bob),
            Some(json!({"read": true, "starred": true})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(inbox_subjects(&srv, &bob, "is:read").await, ["Lunch"]);
    assert_eq!(inbox_subjects(&srv, &bob, "is:starred").await, ["Lunch"]);
    assert_eq!(
        inbox_subjects(&srv, &bob, "is:unread").await,
        ["École d'été", "Invoice"]
    );
    assert_eq!(admin_subjects(&srv, "is:read").await, ["Lunch"]);
    assert_eq!(
        admin_subjects(&srv, "is:unread").await,
        ["École d'été", "Invoice"]
    );
    // Malformed: a 422 naming the term, on both.
    for (q, term) in [
        ("colour:red", "colour:red"),
        ("larger:big", "larger:big"),
        ("before:someday", "before:someday"),
        ("%22open", "\"open"),
        ("from:", "from:"),
    ] {
        for (path, token) in [
            ("/api/v1/admin/messages", ADMIN),
            ("/api/v1/mailboxes/inbox/messages", bob.as_str()),
        ] {
            let got = srv
                .call("GET", &format!("{path}?q={q}"), Some(token), None)
                .await;
            assert_field_error(&got, 422, "invalid_search", "q");
            let message = got.1["error"]["message"].as_str().unwrap();
            assert!(message.contains(&format!("`{term}`")), "{message}");
        }
    }
    srv.stop().await;
}

#[tokio::test]
async fn both_waits_take_q() {
    let srv = admin_server().await;
    let bob = srv.user("bob@example.test").await;
    let admin_wait = spawn_call(
        &srv,
        "/api/v1/admin/wait?q=tag:urgent%20%22reset%20code%22&timeout=20",
        ADMIN,
    );
    let user_wait = spawn_call(
        &srv,
        "/api/v1/mailboxes/inbox/wait?q=from:shop%20-subject:newsletter&timeout=20",
        &bob,
    );
    listeners(&srv, 2).await;
    let to = ["bob@example.test"];
    // Neither matches the first; each matches one of the others.
    deliver(
        &srv,
        source("shop@example.test", "Newsletter", "", "reset code"),
        &to,
    )
    .await;
    deliver(
        &srv,
        source(
            "noreply@app.example.test",
            "Your code",
            "X-Tags: urgent\r\n",
            "Your reset code is 1234",
        ),
        &to,
    )
    .await;
    deliver(
        &srv,
        source("shop@example.test", "Order", "", "Shipped"),
        &to,
    )
    .await;
    let (s, v) = admin_wait.await.unwrap();
    assert_eq!((s, v["subject"].as_str()), (200, Some("Your code")), "{v}");
    assert_eq!(v["tags"], json!(["urgent"]));
    let (s, v) = user_wait.await.unwrap();
    assert_eq!((s, v["subject"].as_str()), (200, Some("Order")), "{v}");
    // What is already there is found too, from `after`.
    let (s, v) = srv
        .call(
            "GET",
            "/api/v1/admin/wait?q=subject:newsletter&after=2000-01-01T00:00:00Z&timeout=1",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!((s, v["subject"].as_str()), (200, Some("Newsletter")), "{v}");
    srv.stop().await;
}

#[tokio::test]
async fn tags_come_from_x_tags_over_smtp_and_the_operator_sets_them() {
    let srv = admin_server().await;
    let bob = srv.user("bob@example.test").await;
    let mut c = SmtpClient::connect(srv.smtp).await;
    c.expect("EHLO client.test", 250).await;
    let body = "From: alice@example.test\r\nTo: bob@example.test\r\nSubject: Tagged\r\n\
                X-Tags: Alpha, beta ,ALPHA,,\r\nX-Tags: Gamma\r\n\r\nHello\r\n";
    let r = c
        .mail("alice@example.test", &["bob@example.test"], body)
        .await;
    assert_eq!(r.code, 250, "{r:?}");
    c.expect("QUIT", 221).await;

    let (_, page) = srv
        .call("GET", "/api/v1/admin/messages", Some(ADMIN), None)
        .await;
    let m = &page["messages"][0];
    assert_eq!(m["tags"], json!(["Alpha", "beta", "Gamma"]));
    let id = m["id"].as_str().unwrap().to_owned();
    let (_, full) = srv
        .call(
            "GET",
            &format!("/api/v1/admin/messages/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(full["tags"], json!(["Alpha", "beta", "Gamma"]));
    let copy = &inbox(&srv, &bob).await[0];
    assert_eq!(copy["tags"], json!(["Alpha", "beta", "Gamma"]));
    let (_, one) = srv
        .call(
            "GET",
            &format!("/api/v1/messages/{}", copy["id"].as_str().unwrap()),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(one["tags"], json!(["Alpha", "beta", "Gamma"]));

    // Set: a tag in use keeps its spelling; duplicates in any case merge.
    let path = format!("/api/v1/admin/messages/{id}/tags");
    let (s, v) = srv
        .call(
            "PUT",
            &path,
            Some(ADMIN),
            Some(json!({"tags": [" BETA ", "Delta", "delta"]})),
        )
        .await;
    assert_eq!((s, &v), (200, &json!({"tags": ["beta", "Delta"]})));
    let (s, v) = srv
        .call("GET", "/api/v1/admin/tags", Some(ADMIN), None)
        .await;
    assert_eq!(
        (s, v),
        (
            200,
            json!({"tags": [{"name": "beta", "messages": 1}, {"name": "Delta", "messages": 1}]})
        )
    );
    for (tags, field) in [
        (json!([""]), "tags[0]"),
        (json!(["ok", "a,b"]), "tags[1]"),
        (json!(["ok", "x".repeat(101)]), "tags[1]"),
        (
            json!((0..51).map(|i| i.to_string()).collect::<Vec<_>>()),
            "tags",
        ),
    ] {
        let got = srv
            .call("PUT", &path, Some(ADMIN), Some(json!({ "tags": tags })))
            .await;
        assert_field_error(&got, 422, "invalid_tag", field);
    }
    let got = srv
        .call(
            "PUT",
            "/api/v1/admin/messages/999999/tags",
            Some(ADMIN),
            Some(json!({"tags": []})),
        )
        .await;
    assert_error(&got, 404, "not_found");
    let got = srv
        .call("PUT", &path, Some(&bob), Some(json!({"tags": []})))
        .await;
    assert_eq!(got.0, 401);

    // Rename and delete over HTTP; the search follows.
    let svc = &srv.service;
    let (s, v) = srv
        .call(
            "PUT",
            "/api/v1/admin/tags/DELTA",
            Some(ADMIN),
            Some(json!({"name": "Epsilon"})),
        )
        .await;
    assert_eq!((s, v), (200, json!({"messages": 1})));
    assert_eq!(
        svc.tags_of(id.parse().unwrap()).await.unwrap(),
        ["beta", "Epsilon"]
    );
    assert_eq!(admin_subjects(&srv, "tag:epsilon").await, ["Tagged"]);
    assert!(admin_subjects(&srv, "tag:delta").await.is_empty());
    let (s, v) = srv
        .call(
            "PUT",
            "/api/v1/admin/tags/epsilon",
            Some(ADMIN),
            Some(json!({"name": "BETA"})),
        )
        .await;
    assert_eq!((s, v), (200, json!({"messages": 1})));
    assert_eq!(
        svc.tags_of(id.parse().unwrap()).await.unwrap(),
        ["beta"],
        "merged"
    );
    let got = srv
        .call(
            "PUT",
            "/api/v1/admin/tags/beta",
            Some(ADMIN),
            Some(json!({"name": "a,b"})),
        )
        .await;
    assert_field_error(&got, 422, "invalid_tag", "name");
    let got = srv
        .call("DELETE", "/api/v1/admin/tags/nosuch", Some(ADMIN), None)
        .await;
    assert_error(&got, 404, "not_found");
    let got = srv
        .call("DELETE", "/api/v1/admin/tags/beta", Some(&bob), None)
        .await;
    assert_eq!(got.0, 401);
    let (s, v) = srv
        .call("DELETE", "/api/v1/admin/tags/Beta", Some(ADMIN), None)
        .await;
    assert_eq!((s, v), (200, json!({"messages": 1})));
    assert!(svc.tags().await.unwrap().is_empty());
    assert!(admin_subjects(&srv, "is:tagged").await.is_empty());
    // A tag with a space and non-ASCII letters, percent-encoded in the path.
    let (s, _) = srv
        .call(
            "PUT",
            &path,
            Some(ADMIN),
            Some(json!({"tags": ["Été 2026"]})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = srv
        .call(
            "DELETE",
            "/api/v1/admin/tags/%C3%89t%C3%A9%202026",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!((s, v), (200, json!({"messages": 1})));
    let (s, v) = srv
        .call("PUT", &path, Some(ADMIN), Some(json!({"tags": ["again"]})))
        .await;
    assert_eq!((s, v), (200, json!({"tags": ["again"]})));
    let (s, v) = srv
        .call("PUT", &path, Some(ADMIN), Some(json!({"tags": []})))
        .await;
    assert_eq!((s, v), (200, json!({"tags": []})));
    assert!(svc.tags().await.unwrap().is_empty());
    srv.stop().await;
}

/// Tags in use, as `GET /api/v1/admin/tags` lists them.
async fn tag_names(srv: &TestServer) -> Vec<String> {
    let (_, v) = srv
        .call("GET", "/api/v1/admin/tags", Some(ADMIN), None)
        .await;
    v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn tags_go_with_their_messages_whichever_way_they_go() {
    let srv = admin_server().await;
    let bob = srv.user("bob@example.test").await;
    let to = ["bob@example.test"];
    let tagged = |t: &str| source("alice@example.test", t, &format!("X-Tags: {t}\r\n"), "x");

    // The operator deletes one message.
    let id = deliver(&srv, tagged("one"), &to).await;
    deliver(&srv, tagged("two"), &to).await;
    assert_eq!(tag_names(&srv).await, ["one", "two"]);
    let (s, _) = srv
        .call(
            "DELETE",
            &format!("/api/v1/admin/messages/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(tag_names(&srv).await, ["two"]);

    // The user deletes the last copy for good.
    let copy = newest_in_inbox(&srv, &bob).await;
    let (s, _) = srv
        .call(
            "DELETE",
            &format!("/api/v1/messages/{copy}?permanent=true"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert!(tag_names(&srv).await.is_empty());

    // Delete all.
    deliver(&srv, tagged("three"), &to).await;
    let (s, _) = srv
        .call("DELETE", "/api/v1/admin/messages", Some(ADMIN), None)
        .await;
    assert_eq!(s, 204);
    assert!(tag_names(&srv).await.is_empty());

    // Retention (the sweeper's and the purge's one function).
    deliver(&srv, tagged("four"), &to).await;
    assert_eq!(tag_names(&srv).await, ["four"]);
    let removed = srv.service.purge(Duration::ZERO, false).await.unwrap();
    assert_eq!(removed.messages, 1);
    assert!(tag_names(&srv).await.is_empty());
    srv.stop().await;
}
