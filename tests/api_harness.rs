//! End-to-end tests of what a test harness reads from fakemail over real HTTP: attachments,
//! links and codes of a message, the operator (admin) view, wait-for-message and the event
//! streams. Messages come in through REST send and, for MIME the REST API cannot make,
//! through `Service::deliver` in-process from the fixtures in `tests/fixtures`.

mod common;

use common::*;
use fakemail::service::mail::{Delivery, Envelope};
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Delivers `raw` to `to` as SMTP would (no sender copy), through the one delivery path.
async fn deliver(srv: &TestServer, raw: Vec<u8>, to: &[&str]) -> u64 {
    let svc = srv.service.clone();
    let d = Delivery {
        raw,
        envelope: Envelope {
            from: "sender@example.test".into(),
            to: to.iter().map(|s| s.to_string()).collect(),
        },
        sender: None,
    };
    tokio::task::spawn_blocking(move || svc.deliver(d))
        .await
        .unwrap()
        .expect("deliver")
        .message
}

/// The id of the newest message in a user's inbox.
async fn newest_in_inbox(srv: &TestServer, token: &str) -> String {
    let (s, page) = srv
        .call(
            "GET",
            "/api/v1/mailboxes/inbox/messages?limit=1",
            Some(token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{page}");
    page["messages"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {page}"))
        .to_owned()
}

/// GET with a token, the body as bytes.
async fn get_bytes(
    srv: &TestServer,
    path: &str,
    token: &str,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let res = tokio::time::timeout(
        TIMEOUT,
        srv.client.get(srv.url(path)).bearer_auth(token).send(),
    )
    .await
    .expect("answer in time")
    .expect("request");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.unwrap().to_vec())
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header in {h:?}"))
}

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
        json!({"index": 0, "filename": "invoice-2026.pdf", "content_type": "application/pdf", "size": 272})
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
