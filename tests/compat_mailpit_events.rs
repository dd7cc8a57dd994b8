//! The Mailpit API's websocket (`/api/events`) and its read flags, end to end against the real
//! server on 127.0.0.1:0: every event type in Mailpit's `{"Type","Data"}` shape, under the
//! `/mailpit` prefix and at the root of `--mailpit-port`, its credentials and origin check,
//! and read flags that last across a restart and are what `is:read` searches.

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use base64::Engine as _;
use common::*;
use fakemail::config::{CompatAuth, Config};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const TOKEN: &str = "mailpit-events-admin-token";

fn config() -> Config {
    let mut c = test_config();
    c.admin_token = Some(TOKEN.into());
    c.compat.mailpit_addr = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    c
}

fn basic() -> String {
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("anyone:{TOKEN}"));
    format!("Basic {pair}")
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the websocket at `url` with `headers`; the handshake's HTTP status on refusal.
async fn open(url: &str, headers: &[(&str, &str)]) -> Result<Socket, u16> {
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        let name: tokio_tungstenite::tungstenite::http::HeaderName = k.parse().unwrap();
        req.headers_mut()
            .insert(name, HeaderValue::from_str(v).unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("websocket {url}: {e}"),
    }
}

/// The next event of a given type, skipping others (`stats` come after every change).
async fn next_of(ws: &mut Socket, kind: &str) -> Value {
    loop {
        let msg = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} event in time"))
            .expect("socket open")
            .expect("a frame");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["Type"] == kind {
                return v;
            }
        }
    }
}

async fn call(srv: &TestServer, method: &str, path: &str, body: Option<Value>) -> Reply {
    compat_call(srv, TOKEN, method, &format!("/mailpit{path}"), body).await
}

fn mail(subject: &str) -> String {
    format!("From: carol@example.test\r\nTo: x@example.test\r\nSubject: {subject}\r\n\r\nHi.\r\n")
}

#[tokio::test]
async fn the_websocket_sends_every_event_in_mailpits_shape() {
    let srv = TestServer::start_with(config(), None).await;
    let url = format!("ws://{}/mailpit/api/events", srv.addr);
    let mut ws = open(&url, &[("authorization", &basic())]).await.unwrap();

    send_smtp(
        &srv,
        "carol@example.test",
        &["x@example.test"],
        &mail("first"),
    )
    .await;
    let new = next_of(&mut ws, "new").await;
    assert_eq!(new["Data"]["Subject"], "first", "{new}");
    assert_eq!(new["Data"]["Read"], false);
    assert_eq!(new["Data"]["From"]["Address"], "carol@example.test");
    let id = new["Data"]["ID"].as_str().unwrap().to_owned();
    let stats = next_of(&mut ws, "stats").await;
    assert_eq!(stats["Data"]["Total"], 1, "{stats}");
    assert_eq!(stats["Data"]["Unread"], 1);
    assert_eq!(stats["Data"]["Version"], env!("CARGO_PKG_VERSION"));

    // Reading it through the API: an update, then fresh stats.
    let r = call(&srv, "GET", &format!("/api/v1/message/{id}"), None).await;
    assert_eq!(r.status, 200);
    let update = next_of(&mut ws, "update").await;
    assert_eq!(update["Data"], json!({"ID": id, "Read": true}));
    let stats = next_of(&mut ws, "stats").await;
    assert_eq!(stats["Data"]["Unread"], 0, "{stats}");

    let r = call(
        &srv,
        "PUT",
        "/api/v1/tags",
        Some(json!({"IDs": [id], "Tags": ["Blue", "green"]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let update = next_of(&mut ws, "update").await;
    assert_eq!(update["Data"], json!({"ID": id, "Tags": ["Blue", "green"]}));

    let r = call(
        &srv,
        "DELETE",
        "/api/v1/messages",
        Some(json!({"IDs": [id]})),
    )
    .await;
    assert_eq!(r.status, 200);
    let delete = next_of(&mut ws, "delete").await;
    assert_eq!(delete["Data"], json!({"ID": id}));

    // Mail from any front-end is announced: REST through the operator's own port too.
    let own = format!("ws://{}/api/events", srv.mailpit.unwrap());
    let mut ws2 = open(&own, &[("authorization", &format!("Bearer {TOKEN}"))])
        .await
        .unwrap();
    send_smtp(
        &srv,
        "carol@example.test",
        &["x@example.test"],
        &mail("second"),
    )
    .await;
    for ws in [&mut ws, &mut ws2] {
        let new = next_of(ws, "new").await;
        assert_eq!(new["Data"]["Subject"], "second");
    }
    let r = call(&srv, "DELETE", "/api/v1/messages", None).await;
    assert_eq!(r.status, 200);
    let truncate = next_of(&mut ws2, "truncate").await;
    assert_eq!(truncate["Data"], Value::Null);
    let stats = next_of(&mut ws2, "stats").await;
    assert_eq!(stats["Data"]["Total"], 0, "{stats}");

    // The server closes the socket when it stops.
    drop(ws2);
    let stopping = tokio::spawn(srv.stop());
    let end = tokio::time::timeout(TIMEOUT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the socket ends at shutdown");
    stopping.await.unwrap();
}

#[tokio::test]
async fn the_websocket_needs_credentials_and_a_same_origin_page() {
    let srv = TestServer::start_with(config(), None).await;
    let url = format!("ws://{}/mailpit/api/events", srv.addr);
    assert_eq!(open(&url, &[]).await.err(), Some(401));
    let wrong = base64::engine::general_purpose::STANDARD.encode("a:wrong");
    assert_eq!(
        open(&url, &[("authorization", &format!("Basic {wrong}"))])
            .await
            .err(),
        Some(401)
    );
    let auth = basic();
    assert_eq!(
        open(
            &url,
            &[("authorization", &auth), ("origin", "https://evil.example")]
        )
        .await
        .err(),
        Some(403)
    );
    let same = format!("http://{}", srv.addr);
    let ws = open(&url, &[("authorization", &auth), ("origin", &same)]).await;
    assert!(ws.is_ok(), "a page of the server's own origin may open it");
    // Not a websocket request: a clear 400, not a 404.
    let r = call(&srv, "GET", "/api/events", None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    // MailHog's API has no such websocket.
    let hog = format!("ws://{}/mailhog/api/events", srv.addr);
    assert_eq!(
        open(&hog, &[("authorization", &auth)]).await.err(),
        Some(404)
    );
    srv.stop().await;

    // Without credentials under `--compat-auth none`.
    let mut c = config();
    c.compat.auth = CompatAuth::None;
    let srv = TestServer::start_with(c, None).await;
    let url = format!("ws://{}/mailpit/api/events", srv.addr);
    assert!(open(&url, &[]).await.is_ok());
    assert_eq!(
        open(&url, &[("origin", "http://evil.example")]).await.err(),
        Some(403),
        "no credentials needed is no reason to let other sites read the events"
    );
    srv.stop().await;
}

#[tokio::test]
async fn read_flags_last_across_a_restart_and_are_what_is_read_finds() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start_with(config(), Some(dir.path())).await;
    for s in ["alpha", "beta", "gamma"] {
        send_smtp(&srv, "carol@example.test", &["x@example.test"], &mail(s)).await;
    }
    let r = call(&srv, "GET", "/api/v1/search?query=subject:beta", None).await;
    let beta = r.json["messages"][0]["ID"].as_str().unwrap().to_owned();
    let r = call(&srv, "GET", &format!("/api/v1/message/{beta}"), None).await;
    assert_eq!(r.status, 200);
    let r = call(&srv, "GET", "/api/v1/search?query=is:read", None).await;
    assert_eq!(r.json["messages_count"], 1, "{}", r.json);
    assert_eq!(r.json["messages"][0]["Subject"], "beta");
    assert_eq!(r.json["messages"][0]["Read"], true);
    assert_eq!(r.json["unread"], 2);
    let r = call(&srv, "GET", "/api/v1/search?query=is:unread", None).await;
    assert_eq!(r.json["messages_count"], 2);
    assert_eq!(r.json["messages_unread"], 2);
    srv.stop().await;

    let srv = TestServer::start_with(config(), Some(dir.path())).await;
    let r = call(&srv, "GET", "/api/v1/messages", None).await;
    assert_eq!(
        (r.json["total"].as_u64(), r.json["unread"].as_u64()),
        (Some(3), Some(2))
    );
    let read: Vec<&str> = r.json["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["Read"] == true)
        .map(|m| m["Subject"].as_str().unwrap())
        .collect();
    assert_eq!(read, ["beta"], "the flag outlived the restart");
    let r = call(&srv, "GET", "/api/v1/info", None).await;
    assert_eq!(
        (r.json["Messages"].as_u64(), r.json["Unread"].as_u64()),
        (Some(3), Some(2))
    );

    // Marking all read and unread, then deleting a read message, keep the counts true.
    let r = call(&srv, "PUT", "/api/v1/messages", Some(json!({"Read": true}))).await;
    assert_eq!(r.status, 200);
    let r = call(&srv, "GET", "/api/v1/messages", None).await;
    assert_eq!(r.json["unread"], 0);
    let r = call(
        &srv,
        "DELETE",
        "/api/v1/messages",
        Some(json!({"IDs": [beta]})),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = call(
        &srv,
        "PUT",
        "/api/v1/messages",
        Some(json!({"Read": false})),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = call(&srv, "GET", "/api/v1/messages", None).await;
    assert_eq!(
        (r.json["total"].as_u64(), r.json["unread"].as_u64()),
        (Some(2), Some(2))
    );
    let r = call(&srv, "GET", "/api/v1/search?query=is:read", None).await;
    assert_eq!(r.json["messages_count"], 0);
    srv.stop().await;
}
