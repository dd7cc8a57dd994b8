//! The Mailpit API end to end, against the real server on 127.0.0.1:0: every route, Mailpit's
//! JSON shapes checked field by field against a multipart message sent over SMTP, both
//! `--compat-auth` modes, the `/mailpit` prefix and the API's own port (`--mailpit-port`),
//! doubled slashes, read flags, send, and the features fakemail lacks refused with 501. The
//! websocket is in `compat_mailpit_events.rs`.

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use common::*;
use fakemail::config::{CompatAuth, Config};
use serde_json::{Value, json};

/// The admin token of these tests.
const TOKEN: &str = "mailpit-test-admin-token";

fn config() -> Config {
    let mut c = test_config();
    c.admin_token = Some(TOKEN.into());
    c.compat.mailpit_addr = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    c
}

async fn start() -> TestServer {
    TestServer::start_with(config(), None).await
}

/// A multipart message: text, HTML, and a base64 attachment.
const MULTIPART: &str = "From: Alice <alice@example.test>\r\n\
To: Bob <bob@example.test>\r\n\
Cc: carol@example.test\r\n\
Reply-To: Replies <replies@example.test>\r\n\
Subject: Report attached\r\n\
Message-ID: <report@example.test>\r\n\
X-Tags: work, urgent\r\n\
List-Unsubscribe: <https://example.test/unsub>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: multipart/alternative; boundary=\"b2\"\r\n\
\r\n\
--b2\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello Bob, the report is attached.\r\n\
--b2\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Hello Bob, <script>alert(1)</script>the report is attached.</p>\r\n\
--b2--\r\n\
--b1\r\n\
Content-Type: application/octet-stream; name=\"report.bin\"\r\n\
Content-Disposition: attachment; filename=\"report.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
AAECAwQ=\r\n\
--b1--\r\n";

fn simple(subject: &str, to: &str) -> String {
    format!(
        "From: carol@example.test\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nBody of {subject}.\r\n"
    )
}

async fn call(srv: &TestServer, method: &str, path: &str, body: Option<Value>) -> Reply {
    compat_call(srv, TOKEN, method, &format!("/mailpit{path}"), body).await
}

async fn get(srv: &TestServer, path: &str) -> (u16, Value) {
    let r = call(srv, "GET", path, None).await;
    (r.status, r.json)
}

#[tokio::test]
async fn messages_have_mailpits_shape_field_by_field() {
    let srv = start().await;
    send_smtp(
        &srv,
        "alice@example.test",
        &["bob@example.test", "carol@example.test"],
        MULTIPART,
    )
    .await;
    let (s, page) = get(&srv, "/api/v1/messages").await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["total"], 1);
    assert_eq!(page["unread"], 1);
    assert_eq!(page["messages_count"], 1);
    assert_eq!(page["messages_unread"], 1);
    assert_eq!(page["start"], 0);
    assert_eq!(page["tags"], json!(["urgent", "work"]));
    let m = &page["messages"][0];
    let id = m["ID"].as_str().expect("ID is a string").to_owned();
    assert_eq!(m["MessageID"], "report@example.test");
    assert_eq!(m["Read"], false);
    assert_eq!(
        m["From"],
        json!({"Name": "Alice", "Address": "alice@example.test"})
    );
    assert_eq!(
        m["To"],
        json!([{"Name": "Bob", "Address": "bob@example.test"}])
    );
    assert_eq!(
        m["Cc"],
        json!([{"Name": "", "Address": "carol@example.test"}])
    );
    assert_eq!(m["Bcc"], json!([]));
    assert_eq!(
        m["ReplyTo"],
        json!([{"Name": "Replies", "Address": "replies@example.test"}])
    );
    assert_eq!(m["Subject"], "Report attached");
    rfc3339(&m["Created"]);
    assert_eq!(m["Attachments"], 1);
    assert_eq!(m["Tags"], json!(["work", "urgent"]));
    assert!(m["Size"].as_u64().unwrap() > MULTIPART.len() as u64 / 2);
    assert!(m["Snippet"].as_str().unwrap().contains("Hello Bob"), "{m}");

    // The whole message; reading it marks it read.
    let (s, full) = get(&srv, &format!("/api/v1/message/{id}")).await;
    assert_eq!(s, 200, "{full}");
    assert_eq!(full["ID"], id.as_str());
    assert_eq!(full["MessageID"], "report@example.test");
    assert_eq!(full["From"], m["From"]);
    assert_eq!(full["To"], m["To"]);
    assert_eq!(full["Cc"], m["Cc"]);
    assert_eq!(full["ReplyTo"], m["ReplyTo"]);
    assert_eq!(full["Subject"], "Report attached");
    assert_eq!(full["Tags"], json!(["work", "urgent"]));
    assert_eq!(
        full["ListUnsubscribe"]["Header"],
        "<https://example.test/unsub>"
    );
    assert_eq!(full["Text"], "Hello Bob, the report is attached.");
    assert!(full["HTML"].as_str().unwrap().contains("<p>Hello Bob"));
    rfc3339(&full["Date"]);
    assert_eq!(full["Size"], m["Size"]);
    assert_eq!(full["Inline"], json!([]));
    let a = &full["Attachments"][0];
    assert_eq!(a["PartID"], "0");
    assert_eq!(a["FileName"], "report.bin");
    assert_eq!(a["ContentType"], "application/octet-stream");
    assert_eq!(a["ContentID"], "");
    assert_eq!(a["Size"], 5);
    assert!(a["Checksums"].is_object());
    let (_, page) = get(&srv, "/api/v1/messages").await;
    assert_eq!(page["unread"], 0);
    assert_eq!(page["messages"][0]["Read"], true);

    // Headers: a map of arrays, names as Go writes them.
    let (s, h) = get(&srv, &format!("/api/v1/message/{id}/headers")).await;
    assert_eq!(s, 200);
    assert_eq!(h["Subject"], json!(["Report attached"]));
    assert_eq!(h["Message-Id"], json!(["<report@example.test>"]));

    // Raw: the source; `dl=1` asks for a download.
    let r = call(&srv, "GET", &format!("/api/v1/message/{id}/raw"), None).await;
    assert_eq!(r.status, 200);
    assert!(r.text.ends_with(MULTIPART));
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let r = call(&srv, "GET", &format!("/api/v1/message/{id}/raw?dl=1"), None).await;
    assert!(r.header("content-disposition").unwrap().contains(".eml"));

    // A part, decoded; its thumbnail is the part itself.
    for suffix in ["", "/thumb"] {
        let res = srv
            .client
            .get(srv.url(&format!("/mailpit/api/v1/message/{id}/part/0{suffix}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers()["content-type"],
            "application/octet-stream",
            "{suffix}"
        );
        assert_eq!(res.bytes().await.unwrap().as_ref(), &[0, 1, 2, 3, 4]);
    }
    let (s, _) = get(&srv, &format!("/api/v1/message/{id}/part/9")).await;
    assert_eq!(s, 404);

    // The views: HTML with the native sandboxing policy, and the text.
    let r = call(&srv, "GET", &format!("/view/{id}.html"), None).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.starts_with("sandbox"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let r = call(&srv, "GET", &format!("//view/{id}.txt"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text, "Hello Bob, the report is attached.");
    srv.stop().await;
}

#[tokio::test]
async fn latest_read_flags_paging_search_and_delete() {
    let srv = start().await;
    for s in ["one", "two", "three"] {
        send_smtp(
            &srv,
            "carol@example.test",
            &["x@example.test"],
            &simple(s, "x@example.test"),
        )
        .await;
    }
    let (_, latest) = get(&srv, "/api/v1/message/latest").await;
    assert_eq!(latest["Subject"], "three");
    let (_, page) = get(&srv, "/api/v1/messages?start=1&limit=1").await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["unread"], 2);
    assert_eq!(page["start"], 1);
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    assert_eq!(page["messages"][0]["Subject"], "two");
    let two = page["messages"][0]["ID"].as_str().unwrap().to_owned();

    // PUT: read and unread, listed or all.
    let r = call(
        &srv,
        "PUT",
        "/api/v1/messages",
        Some(json!({"IDs": [two], "Read": true})),
    )
    .await;
    assert_eq!((r.status, r.text.as_str()), (200, "ok"));
    let (_, page) = get(&srv, "/api/v1/messages").await;
    assert_eq!(page["unread"], 1);
    let r = call(
        &srv,
        "PUT",
        "/api/v1/messages",
        Some(json!({"Read": false})),
    )
    .await;
    assert_eq!(r.status, 200);
    let (_, page) = get(&srv, "/api/v1/messages").await;
    assert_eq!(page["unread"], 3);
    let r = call(
        &srv,
        "PUT",
        "/api/v1/messages?search=subject:one",
        Some(json!({"Read": true})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (_, page) = get(&srv, "/api/v1/messages").await;
    assert_eq!(page["unread"], 2, "only the searched message is read");
    let r = call(
        &srv,
        "PUT",
        "/api/v1/messages",
        Some(json!({"Read": false})),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = call(&srv, "PUT", "/api/v1/messages", Some(json!({"IDs": "x"}))).await;
    assert_eq!(r.status, 400);

    // Search: the search grammar, dates in the zone of `tz`.
    let (s, found) = get(&srv, "/api/v1/search?query=subject:two%20-subject:one").await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(found["messages_count"], 1);
    assert_eq!(found["total"], 3);
    assert_eq!(found["messages"][0]["Subject"], "two");
    let (s, _) = get(&srv, "/api/v1/search").await;
    assert_eq!(s, 400);
    let (s, e) = get(&srv, "/api/v1/search?query=nosuchkey:x").await;
    assert_eq!(s, 422, "{e}");
    let (s, found) = get(&srv, "/api/v1/search?query=after:2000-01-01&tz=%2B02:00").await;
    assert_eq!(
        (s, found["messages_count"].as_u64()),
        (200, Some(3)),
        "{found}"
    );
    let (s, found) = get(
        &srv,
        "/api/v1/search?query=after:2000-01-01%20before:2999-01-01&tz=Europe/Berlin",
    )
    .await;
    assert_eq!(
        (s, found["messages_count"].as_u64()),
        (200, Some(3)),
        "{found}"
    );
    let (s, _) = get(&srv, "/api/v1/search?query=two&tz=Mars/Olympus").await;
    assert_eq!(s, 400);
    let r = call(&srv, "DELETE", "/api/v1/search?query=two", None).await;
    assert_eq!(r.status, 200);
    let (_, page) = get(&srv, "/api/v1/messages").await;
    assert_eq!(page["total"], 2);

    // DELETE: listed, then all.
    let one = page["messages"][1]["ID"].as_str().unwrap().to_owned();
    assert_eq!(page["messages"][1]["Subject"], "one");
    let r = call(
        &srv,
        "DELETE",
        "/api/v1/messages",
        Some(json!({"IDs": [one]})),
    )
    .await;
    assert_eq!(r.status, 200);
    let (_, page) = get(&srv, "/api/v1/messages").await;
    assert_eq!(page["total"], 1);
    let (s, _) = get(&srv, &format!("/api/v1/message/{one}")).await;
    assert_eq!(s, 404);
    let r = call(&srv, "DELETE", "/api/v1/messages", None).await;
    assert_eq!(r.status, 200);
    let (_, page) = get(&srv, "/api/v1/messages").await;
    assert_eq!(page["total"], 0);
    let (s, _) = get(&srv, "/api/v1/message/latest").await;
    assert_eq!(s, 404);
    srv.stop().await;
}

#[tokio::test]
async fn send_info_webui_health_and_what_fakemail_lacks() {
    let srv = start().await;
    let r = call(
        &srv,
        "POST",
        "/api/v1/send",
        Some(json!({
            "From": {"Name": "Sender", "Email": "sender@example.test"},
            "To": [{"Name": "Rcpt", "Email": "rcpt@example.test"}],
            "Bcc": ["hidden@example.test"],
            "Subject": "Sent over the API",
            "Text": "plain body",
            "HTML": "<b>html body</b>",
            "Tags": ["api"],
            "Headers": {"X-Custom": "yes"}
        })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json["ID"].as_str().expect("ID").to_owned();
    let (s, m) = get(&srv, &format!("/api/v1/message/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(m["Subject"], "Sent over the API");
    assert_eq!(
        m["From"],
        json!({"Name": "Sender", "Address": "sender@example.test"})
    );
    assert_eq!(m["Text"], "plain body");
    assert_eq!(m["HTML"], "<b>html body</b>");
    assert_eq!(m["Tags"], json!(["api"]));
    let (_, h) = get(&srv, &format!("/api/v1/message/{id}/headers")).await;
    assert_eq!(h["X-Custom"], json!(["yes"]));
    let r = call(
        &srv,
        "POST",
        "/api/v1/send",
        Some(json!({"From": {"Email": "a@b.test"}})),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = call(&srv, "POST", "/api/v1/send", Some(json!({"From": {"Email": "a@b.test"}, "To": [{"Email": "c@d.test"}], "Attachments": [{"Content": "aGk=", "Filename": "hi.txt"}]}))).await;
    assert_eq!(r.status, 501);

    let (s, info) = get(&srv, "/api/v1/info").await;
    assert_eq!(s, 200);
    assert_eq!(info["Messages"], 1);
    assert_eq!(info["Unread"], 0);
    assert!(info["Version"].is_string());
    assert!(info["RuntimeStats"]["Uptime"].is_u64());
    assert_eq!(info["RuntimeStats"]["SMTPAccepted"], 0, "sent over the API");
    send_smtp(
        &srv,
        "carol@example.test",
        &["x@example.test"],
        &simple("over SMTP", "x@example.test"),
    )
    .await;
    let (_, info) = get(&srv, "/api/v1/info").await;
    assert_eq!(info["Messages"], 2);
    assert_eq!(info["RuntimeStats"]["SMTPAccepted"], 1);
    let (s, ui) = get(&srv, "/api/v1/webui").await;
    assert_eq!(s, 200);
    assert_eq!(ui["MessageRelay"]["Enabled"], false);
    assert_eq!(ui["SpamAssassin"], false);
    assert_eq!(ui["ChaosEnabled"], false);

    for path in ["/livez", "/readyz"] {
        let r = call(&srv, "GET", path, None).await;
        assert_eq!(r.status, 200, "{path}");
    }
    for (method, path) in [
        ("GET", format!("/api/v1/message/{id}/html-check")),
        ("GET", format!("/api/v1/message/{id}/link-check")),
        ("GET", format!("/api/v1/message/{id}/sa-check")),
        ("POST", format!("/api/v1/message/{id}/release")),
    ] {
        let r = call(&srv, method, &path, None).await;
        assert_eq!(r.status, 501, "{path}");
        assert_eq!(r.json["error"]["code"], "not_supported");
    }
    let r = call(&srv, "GET", "/api/v1/nothing", None).await;
    assert_eq!(r.status, 404);
    let r = call(&srv, "PATCH", "/api/v1/messages", None).await;
    assert_eq!(r.status, 405);
    srv.stop().await;
}

#[tokio::test]
async fn both_auth_modes_the_prefix_and_the_own_port() {
    let srv = start().await;
    let url = srv.url("/mailpit/api/v1/messages");
    let unauthorized = |r: Reply| {
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"fakemail\"")
        );
    };
    unauthorized(send(srv.client.get(&url)).await);
    unauthorized(send(srv.client.get(&url).basic_auth("a", Some("wrong"))).await);
    assert_eq!(
        send(srv.client.get(&url).bearer_auth(TOKEN)).await.status,
        200
    );
    assert_eq!(
        send(srv.client.get(&url).basic_auth("x", Some(TOKEN)))
            .await
            .status,
        200
    );
    let port = srv.mailpit.expect("--mailpit-port");
    assert_ne!(port, srv.addr);
    unauthorized(send(srv.client.get(format!("http://{port}/api/v1/messages"))).await);
    let r = send(
        srv.client
            .get(format!("http://{port}//api/v1/messages"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["total"], 0);
    srv.stop().await;

    let mut c = config();
    c.compat.auth = CompatAuth::None;
    let srv = TestServer::start_with(c, None).await;
    let r = send(srv.client.get(srv.url("/mailpit/api/v1/info"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let port = srv.mailpit.unwrap();
    let r = send(srv.client.get(format!("http://{port}/livez"))).await;
    assert_eq!(r.status, 200);
    srv.stop().await;
}

#[tokio::test]
async fn chaos_triggers_become_fault_injection_rules() {
    // Without --chaos: a clear error.
    let srv = start().await;
    let (s, e) = get(&srv, "/api/v1/chaos").await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("chaos_disabled")),
        "{e}"
    );
    srv.stop().await;

    let mut c = config();
    c.service.chaos = true;
    let srv = TestServer::start_with(c, None).await;
    let (s, t) = get(&srv, "/api/v1/chaos").await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(
        t,
        json!({
            "Sender": {"ErrorCode": 451, "Probability": 0},
            "Recipient": {"ErrorCode": 451, "Probability": 0},
            "Authentication": {"ErrorCode": 535, "Probability": 0},
        })
    );
    let r = call(
        &srv,
        "PUT",
        "/api/v1/chaos",
        Some(json!({"Recipient": {"ErrorCode": 452, "Probability": 100}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json["Recipient"],
        json!({"ErrorCode": 452, "Probability": 100})
    );
    assert_eq!(
        r.json["Sender"],
        json!({"ErrorCode": 451, "Probability": 0})
    );
    let (_, t) = get(&srv, "/api/v1/chaos").await;
    assert_eq!(t, r.json);
    let (_, chaos) = srv
        .call("GET", "/api/v1/admin/chaos", Some(TOKEN), None)
        .await;
    assert_eq!(chaos["rules"].as_array().unwrap().len(), 3, "{chaos}");
    let mut c = SmtpClient::connect(srv.smtp).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("MAIL FROM:<a@example.test>", 250).await;
    let r = c.cmd("RCPT TO:<b@example.test>").await;
    assert_eq!(r.code, 452, "{r:?}");
    c.expect("QUIT", 221).await;
    // A PUT replaces the rules; a bad code or chance is a 400.
    let r = call(&srv, "PUT", "/api/v1/chaos", Some(json!({}))).await;
    assert_eq!(r.status, 200);
    let (_, chaos) = srv
        .call("GET", "/api/v1/admin/chaos", Some(TOKEN), None)
        .await;
    assert_eq!(chaos["rules"].as_array().unwrap().len(), 3, "{chaos}");
    for bad in [
        json!({"Sender": {"ErrorCode": 200, "Probability": 1}}),
        json!({"Sender": {"ErrorCode": 451, "Probability": 101}}),
    ] {
        let r = call(&srv, "PUT", "/api/v1/chaos", Some(bad)).await;
        assert_eq!(r.status, 400, "{}", r.text);
    }
    srv.stop().await;
}

#[tokio::test]
async fn tags_are_set_listed_renamed_deleted_and_searched() {
    let srv = start().await;
    for s in ["one", "two"] {
        send_smtp(
            &srv,
            "carol@example.test",
            &["x@example.test"],
            &simple(s, "x@example.test"),
        )
        .await;
    }
    let (_, page) = get(&srv, "/api/v1/messages").await;
    let ids: Vec<String> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ID"].as_str().unwrap().to_owned())
        .collect();
    let (s, tags) = get(&srv, "/api/v1/tags").await;
    assert_eq!((s, tags), (200, json!([])));
    let r = call(
        &srv,
        "PUT",
        "/api/v1/tags",
        Some(json!({"IDs": ids, "Tags": ["Alpha", "beta"]})),
    )
    .await;
    assert_eq!((r.status, r.text.as_str()), (200, "ok"));
    let (_, tags) = get(&srv, "/api/v1/tags").await;
    assert_eq!(tags, json!(["Alpha", "beta"]));
    let (_, m) = get(&srv, &format!("/api/v1/message/{}", ids[0])).await;
    assert_eq!(m["Tags"], json!(["Alpha", "beta"]));
    let (_, found) = get(&srv, "/api/v1/search?query=tag:alpha").await;
    assert_eq!(found["messages_count"], 2);

    let r = call(
        &srv,
        "PUT",
        "/api/v1/tags/Alpha",
        Some(json!({"Name": "Gamma"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (_, tags) = get(&srv, "/api/v1/tags").await;
    assert_eq!(tags, json!(["beta", "Gamma"]));
    let r = call(&srv, "DELETE", "/api/v1/tags/beta", None).await;
    assert_eq!(r.status, 200);
    let (_, page) = get(&srv, "/api/v1/messages").await;
    assert_eq!(page["tags"], json!(["Gamma"]));
    assert_eq!(page["messages"][0]["Tags"], json!(["Gamma"]));
    // An empty list removes a message's tags; a bad tag is refused.
    let r = call(
        &srv,
        "PUT",
        "/api/v1/tags",
        Some(json!({"IDs": [ids[0]], "Tags": []})),
    )
    .await;
    assert_eq!(r.status, 200);
    let (_, m) = get(&srv, &format!("/api/v1/message/{}", ids[0])).await;
    assert_eq!(m["Tags"], json!([]));
    let r = call(
        &srv,
        "PUT",
        "/api/v1/tags",
        Some(json!({"IDs": [ids[0]], "Tags": ["a,b"]})),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    srv.stop().await;
}
