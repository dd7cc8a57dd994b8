//! The web UI's side of the API, end to end: browser sessions in cookies (a user's and the
//! operator's), the CSRF rules for requests a cookie authenticates, and a message's HTML for a
//! sandboxed frame, with its Content-Security-Policy and inline images.

mod common;

use common::*;
use serde_json::{Value, json};

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";
const USER_SESSION: &str = "/api/v1/auth/session";
const ADMIN_SESSION: &str = "/api/v1/admin/session";

/// The header that marks a request as the UI's own.
const UI: (&str, &str) = ("x-requested-with", "fakemail");

/// The Content-Security-Policy of a message's HTML, without and with remote content.
const HTML_POLICY: &str = "sandbox allow-popups allow-popups-to-escape-sandbox; \
    default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; \
    frame-ancestors 'self'; base-uri 'none'; form-action 'none'";
const REMOTE_HTML_POLICY: &str = "sandbox allow-popups allow-popups-to-escape-sandbox; \
    default-src 'none'; img-src data: http: https:; style-src 'unsafe-inline' http: https:; \
    font-src data: http: https:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'";

/// The 1x1 PNG of `tests/fixtures/inline_image.eml`, as its source has it.
const LOGO: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

/// Sends a request with an optional bearer token and body, and extra headers.
async fn call(
    srv: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = srv.request(method, path, token, body);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    send(req).await
}

/// A `Cookie` header for the `name=value` pair a `Set-Cookie` gave.
fn cookie_header(pair: &str) -> (&'static str, &str) {
    ("cookie", pair)
}

/// A `Set-Cookie` header split into its `name=value` pair and its attributes.
#[track_caller]
fn set_cookie(r: &Reply) -> (String, Vec<String>) {
    let all: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(all.len(), 1, "one Set-Cookie: {all:?}");
    let mut parts = all[0].split(';').map(|p| p.trim().to_owned());
    let pair = parts.next().unwrap();
    (pair, parts.collect())
}

/// Logs `email` in through the browser endpoint; returns the `name=value` of the cookie.
async fn browser_login(srv: &TestServer, email: &str) -> String {
    let body = json!({"email": email, "password": PASSWORD});
    let r = call(srv, "POST", USER_SESSION, None, Some(body), &[UI]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    set_cookie(&r).0
}

#[track_caller]
fn assert_code(r: &Reply, status: u16, code: &str) {
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (status, Some(code)),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn a_browser_logs_in_with_a_cookie_and_out_again() {
    let srv = TestServer::start().await;
    srv.register(ALICE).await;
    let bearer = srv.login(ALICE).await;
    let body = json!({"email": ALICE, "password": PASSWORD});

    // Opening a session needs the UI's header too, and the right password.
    let r = call(&srv, "POST", USER_SESSION, None, Some(body.clone()), &[]).await;
    assert_code(&r, 403, "csrf");
    assert!(r.headers.get("set-cookie").is_none());
    let wrong = json!({"email": ALICE, "password": "not the password"});
    let r = call(&srv, "POST", USER_SESSION, None, Some(wrong), &[UI]).await;
    assert_code(&r, 401, "invalid_credentials");

    let r = call(&srv, "POST", USER_SESSION, None, Some(body), &[UI]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (me_status, me) = srv.call("GET", "/api/v1/me", Some(&bearer), None).await;
    assert_eq!(me_status, 200);
    assert_eq!(
        r.json, me,
        "the answer is the account, as GET /api/v1/me shows it"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let (pair, attributes) = set_cookie(&r);
    let token = pair.strip_prefix("fakemail_session=").expect("the cookie");
    assert!(token.starts_with("fm_") && token.len() > 60, "{pair}");
    assert!(!r.text.contains(token), "the token is only in the cookie");
    for attribute in ["Path=/api/", "HttpOnly", "SameSite=Strict", "Max-Age=86400"] {
        assert!(
            attributes.iter().any(|a| a == attribute),
            "{attribute} in {attributes:?}"
        );
    }
    let cookie = cookie_header(&pair);

    // Reading needs nothing more.
    let r = call(&srv, "GET", "/api/v1/me", None, None, &[cookie]).await;
    assert_eq!((r.status, &r.json), (200, &me), "{}", r.text);
    let r = call(&srv, "GET", "/api/v1/mailboxes", None, None, &[cookie]).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Changing something needs the UI's header.
    let rename = json!({"display_name": "Alice"});
    let r = call(
        &srv,
        "PATCH",
        "/api/v1/me",
        None,
        Some(rename.clone()),
        &[cookie],
    )
    .await;
    assert_code(&r, 403, "csrf");
    let r = call(
        &srv,
        "PATCH",
        "/api/v1/me",
        None,
        Some(rename),
        &[cookie, UI],
    )
    .await;
    assert_eq!((r.status, &r.json["display_name"]), (200, &json!("Alice")));
    let mailbox = json!({"name": "Receipts"});
    let r = call(
        &srv,
        "POST",
        "/api/v1/mailboxes",
        None,
        Some(mailbox.clone()),
        &[cookie],
    )
    .await;
    assert_code(&r, 403, "csrf");
    let wrong_value = ("x-requested-with", "XMLHttpRequest");
    let r = call(
        &srv,
        "POST",
        "/api/v1/mailboxes",
        None,
        Some(mailbox.clone()),
        &[cookie, wrong_value],
    )
    .await;
    assert_code(&r, 403, "csrf");
    let r = call(
        &srv,
        "POST",
        "/api/v1/mailboxes",
        None,
        Some(mailbox),
        &[cookie, UI],
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let receipts = "/api/v1/mailboxes/Receipts";
    let r = call(&srv, "DELETE", receipts, None, None, &[cookie]).await;
    assert_code(&r, 403, "csrf");
    let r = call(&srv, "DELETE", receipts, None, None, &[cookie, UI]).await;
    assert_eq!(r.status, 204, "{}", r.text);

    // Another origin may not even read, when the browser says where a request comes from.
    for site in ["cross-site", "same-site"] {
        let r = call(
            &srv,
            "GET",
            "/api/v1/me",
            None,
            None,
            &[cookie, ("sec-fetch-site", site)],
        )
        .await;
        assert_code(&r, 403, "csrf");
        let r = call(
            &srv,
            "PATCH",
            "/api/v1/me",
            None,
            Some(json!({"display_name": "X"})),
            &[cookie, UI, ("sec-fetch-site", site)],
        )
        .await;
        assert_code(&r, 403, "csrf");
    }
    for site in ["same-origin", "none"] {
        let r = call(
            &srv,
            "GET",
            "/api/v1/me",
            None,
            None,
            &[cookie, ("sec-fetch-site", site)],
        )
        .await;
        assert_eq!(r.status, 200, "{site}: {}", r.text);
    }

    // An Authorization header wins over the cookie, and needs no CSRF marks.
    srv.register(BOB).await;
    let bob = srv.login(BOB).await;
    let r = call(
        &srv,
        "GET",
        "/api/v1/me",
        Some(&bob),
        None,
        &[cookie, ("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_eq!(
        (r.status, &r.json["email"]),
        (200, &json!(BOB)),
        "{}",
        r.text
    );
    let r = call(
        &srv,
        "PATCH",
        "/api/v1/me",
        Some(&bob),
        Some(json!({"display_name": "Bob"})),
        &[cookie],
    )
    .await;
    assert_eq!(
        (r.status, &r.json["email"]),
        (200, &json!(BOB)),
        "{}",
        r.text
    );
    let r = call(
        &srv,
        "GET",
        "/api/v1/me",
        Some("fm_not-a-token"),
        None,
        &[cookie],
    )
    .await;
    assert_code(&r, 401, "invalid_token");

    // A cookie that is no session is a bad token; the operator's cookie is no user's.
    for bad in [
        "fakemail_session=fm_not-a-token",
        "fakemail_session=\"fm_quoted\"",
        "fakemail_session=a=b",
    ] {
        let r = call(&srv, "GET", "/api/v1/me", None, None, &[("cookie", bad)]).await;
        assert_code(&r, 401, "invalid_token");
    }
    let r = call(
        &srv,
        "GET",
        "/api/v1/me",
        None,
        None,
        &[("cookie", "fakemail_admin=fm_x; theme=dark")],
    )
    .await;
    assert_code(&r, 401, "missing_token");

    // Logging out ends the cookie's session (and only it) and deletes the cookie.
    let r = call(&srv, "DELETE", USER_SESSION, None, None, &[cookie]).await;
    assert_code(&r, 403, "csrf");
    let r = call(&srv, "DELETE", USER_SESSION, None, None, &[cookie, UI]).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let (pair, attributes) = set_cookie(&r);
    assert_eq!(pair, "fakemail_session=");
    assert!(
        attributes.iter().any(|a| a == "Max-Age=0"),
        "{attributes:?}"
    );
    assert!(
        attributes.iter().any(|a| a == "Path=/api/"),
        "{attributes:?}"
    );
    let r = call(&srv, "GET", "/api/v1/me", None, None, &[cookie]).await;
    assert_code(&r, 401, "invalid_token");
    let r = call(&srv, "DELETE", USER_SESSION, None, None, &[cookie, UI]).await;
    assert_code(&r, 401, "invalid_token");
    assert_eq!(
        srv.call("GET", "/api/v1/me", Some(&bearer), None).await.0,
        200
    );

    // The endpoint also ends a bearer session.
    let r = call(&srv, "DELETE", USER_SESSION, Some(&bearer), None, &[]).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        srv.call("GET", "/api/v1/me", Some(&bearer), None).await.0,
        401
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_browser_login_is_a_login_with_its_checks_and_limits() {
    let srv = TestServer::start().await;
    srv.register(ALICE).await;
    // Failed attempts count across both endpoints.
    let wrong = json!({"email": ALICE, "password": "not the password"});
    for _ in 0..2 {
        let (s, v) = srv.try_login(ALICE, "not the password").await;
        assert_eq!(s, 401, "{v}");
    }
    for _ in 0..3 {
        let r = call(&srv, "POST", USER_SESSION, None, Some(wrong.clone()), &[UI]).await;
        assert_code(&r, 401, "invalid_credentials");
    }
    let right = json!({"email": ALICE, "password": PASSWORD});
    let r = call(&srv, "POST", USER_SESSION, None, Some(right), &[UI]).await;
    assert_code(&r, 429, "too_many_attempts");
    assert!(r.header("retry-after").is_some());
    assert_eq!(srv.try_login(ALICE, PASSWORD).await.0, 429);

    // The body as login's: JSON of its shape, within --max-body-size.
    let r = call(
        &srv,
        "POST",
        USER_SESSION,
        None,
        Some(json!({"email": ALICE})),
        &[UI],
    )
    .await;
    assert_code(&r, 422, "invalid_body");
    let r = send(
        srv.request("POST", USER_SESSION, None, None)
            .header(UI.0, UI.1)
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_code(&r, 400, "malformed_json");
    let big = json!({"email": ALICE, "password": "x".repeat(2 << 20)});
    let r = call(&srv, "POST", USER_SESSION, None, Some(big), &[UI]).await;
    assert_code(&r, 413, "payload_too_large");
    srv.stop().await;
}

#[tokio::test]
async fn an_operator_session_stands_in_for_the_admin_token() {
    let srv = TestServer::start_chaos(false).await;
    let user = srv.user(ALICE).await;
    let user_cookie = browser_login(&srv, ALICE).await;

    // Only the admin token opens one, and only with the UI's header.
    for token in [None, Some("wrong-token"), Some(user.as_str())] {
        let r = call(&srv, "POST", ADMIN_SESSION, token, None, &[UI]).await;
        assert_code(&r, 401, "admin_token_required");
    }
    let r = call(&srv, "POST", ADMIN_SESSION, Some(CHAOS_ADMIN), None, &[]).await;
    assert_code(&r, 403, "csrf");
    let r = call(&srv, "POST", ADMIN_SESSION, Some(CHAOS_ADMIN), None, &[UI]).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let (pair, attributes) = set_cookie(&r);
    let id = pair.strip_prefix("fakemail_admin=").expect("the cookie");
    assert!(
        id.len() > 60 && !id.contains(CHAOS_ADMIN),
        "a random id, not the token: {id}"
    );
    for attribute in [
        "Path=/api/v1/admin",
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=43200",
    ] {
        assert!(
            attributes.iter().any(|a| a == attribute),
            "{attribute} in {attributes:?}"
        );
    }
    let cookie = cookie_header(&pair);

    // It works on the admin endpoints, under the same CSRF rules.
    let r = call(&srv, "GET", "/api/v1/admin/stats", None, None, &[cookie]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = call(
        &srv,
        "GET",
        "/api/v1/admin/stats",
        None,
        None,
        &[cookie, ("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_code(&r, 403, "csrf");
    let r = call(
        &srv,
        "DELETE",
        "/api/v1/admin/messages",
        None,
        None,
        &[cookie],
    )
    .await;
    assert_code(&r, 403, "csrf");
    let r = call(
        &srv,
        "DELETE",
        "/api/v1/admin/messages",
        None,
        None,
        &[cookie, UI],
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    // A session cannot renew itself: opening another takes the token.
    let r = call(&srv, "POST", ADMIN_SESSION, None, None, &[cookie, UI]).await;
    assert_code(&r, 401, "admin_token_required");

    // Each cookie works where it belongs only.
    let r = call(&srv, "GET", "/api/v1/me", None, None, &[cookie]).await;
    assert_code(&r, 401, "missing_token");
    let user_cookie = cookie_header(&user_cookie);
    let r = call(
        &srv,
        "GET",
        "/api/v1/admin/stats",
        None,
        None,
        &[user_cookie],
    )
    .await;
    assert_code(&r, 401, "admin_token_required");
    let r = call(
        &srv,
        "GET",
        "/api/v1/admin/stats",
        None,
        None,
        &[("cookie", "fakemail_admin=fm_made-up")],
    )
    .await;
    assert_code(&r, 401, "admin_token_required");
    // An Authorization header wins.
    let r = call(
        &srv,
        "GET",
        "/api/v1/admin/stats",
        Some("wrong-token"),
        None,
        &[cookie],
    )
    .await;
    assert_code(&r, 401, "admin_token_required");

    // Closing it forgets the id and deletes the cookie.
    let r = call(&srv, "DELETE", ADMIN_SESSION, None, None, &[cookie]).await;
    assert_code(&r, 403, "csrf");
    let r = call(&srv, "DELETE", ADMIN_SESSION, None, None, &[cookie, UI]).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let (pair, attributes) = set_cookie(&r);
    assert_eq!(pair, "fakemail_admin=");
    assert!(
        attributes.iter().any(|a| a == "Max-Age=0"),
        "{attributes:?}"
    );
    assert!(
        attributes.iter().any(|a| a == "Path=/api/v1/admin"),
        "{attributes:?}"
    );
    let r = call(&srv, "GET", "/api/v1/admin/stats", None, None, &[cookie]).await;
    assert_code(&r, 401, "admin_token_required");
    // The token itself may close (nothing, here) and still works.
    let r = call(&srv, "DELETE", ADMIN_SESSION, Some(CHAOS_ADMIN), None, &[]).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(srv.admin("GET", "/api/v1/admin/stats", None).await.0, 200);
    srv.stop().await;
}

#[tokio::test]
async fn a_message_shows_its_inline_images_and_remote_content() {
    let srv = TestServer::start_chaos(false).await;
    let bob = srv.user(BOB).await;
    let alice = srv.user(ALICE).await;
    let message = deliver(&srv, fixture("inline_image.eml"), &[BOB]).await;
    let id = newest_in_inbox(&srv, &bob).await;

    // The message JSON says what the HTML holds.
    let path = format!("/api/v1/messages/{id}");
    let (s, m) = srv.call("GET", &path, Some(&bob), None).await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["remote_content"], true);
    let attachments = m["attachments"].as_array().unwrap();
    assert_eq!(
        (&attachments[0]["content_id"], &attachments[0]["inline"]),
        (&json!("logo@shop.example.test"), &json!(true)),
        "{m}"
    );
    assert_eq!(
        (&attachments[1]["content_id"], &attachments[1]["inline"]),
        (&Value::Null, &json!(false)),
        "{m}"
    );
    let (_, admin_view) = srv
        .admin("GET", &format!("/api/v1/admin/messages/{message}"), None)
        .await;
    assert_eq!(admin_view["remote_content"], true);
    assert_eq!(admin_view["attachments"], m["attachments"]);

    // The HTML, its inline image a data: URI, confined by its policy.
    let html = format!("{path}/html");
    let r = call(&srv, "GET", &html, Some(&bob), None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("content-security-policy"), Some(HTML_POLICY));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(r.header("cache-control"), Some("private, no-cache"));
    let inlined = format!(r#"<img src="data:image/png;base64,{LOGO}" alt="Spring Shop">"#);
    assert!(r.text.contains(&inlined), "{}", r.text);
    assert!(!r.text.contains("cid:"), "{}", r.text);
    // Its links open in a new tab.
    assert!(r.text.contains(r#"<base target="_blank">"#), "{}", r.text);
    assert!(
        r.text.contains("https://tracker.example.test/open.gif"),
        "{}",
        r.text
    );
    let body = r.text;

    for query in ["remote=true", "remote=1"] {
        let r = call(
            &srv,
            "GET",
            &format!("{html}?{query}"),
            Some(&bob),
            None,
            &[],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.header("content-security-policy"),
            Some(REMOTE_HTML_POLICY)
        );
        assert_eq!(r.text, body);
    }
    let r = call(
        &srv,
        "GET",
        &format!("{html}?remote=false"),
        Some(&bob),
        None,
        &[],
    )
    .await;
    assert_eq!(r.header("content-security-policy"), Some(HTML_POLICY));
    let r = call(
        &srv,
        "GET",
        &format!("{html}?remote=yes"),
        Some(&bob),
        None,
        &[],
    )
    .await;
    assert_code(&r, 422, "invalid_query");

    // As a frame of the UI loads it: with the cookie, from the same origin.
    let cookie = browser_login(&srv, BOB).await;
    let frame = [
        cookie_header(&cookie),
        ("sec-fetch-site", "same-origin"),
        ("sec-fetch-dest", "iframe"),
    ];
    let r = call(&srv, "GET", &html, None, None, &frame).await;
    assert_eq!((r.status, &r.text), (200, &body));
    let r = call(
        &srv,
        "GET",
        &html,
        None,
        None,
        &[cookie_header(&cookie), ("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_code(&r, 403, "csrf");

    // Somebody else's copy is not found; a message without HTML has none to give.
    let r = call(&srv, "GET", &html, Some(&alice), None, &[]).await;
    assert_code(&r, 404, "not_found");
    let r = call(
        &srv,
        "GET",
        "/api/v1/messages/999999/html",
        Some(&bob),
        None,
        &[],
    )
    .await;
    assert_code(&r, 404, "not_found");
    let plain = deliver(&srv, fixture("attachments.eml"), &[BOB]).await;
    let plain_copy = newest_in_inbox(&srv, &bob).await;
    let r = call(
        &srv,
        "GET",
        &format!("/api/v1/messages/{plain_copy}/html"),
        Some(&bob),
        None,
        &[],
    )
    .await;
    assert_code(&r, 404, "no_html");
    let (_, m) = srv
        .call(
            "GET",
            &format!("/api/v1/messages/{plain_copy}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(m["remote_content"], false);

    // The operator's view, by message id.
    let admin_html = format!("/api/v1/admin/messages/{message}/html");
    let r = call(&srv, "GET", &admin_html, Some(CHAOS_ADMIN), None, &[]).await;
    assert_eq!((r.status, &r.text), (200, &body));
    assert_eq!(r.header("content-security-policy"), Some(HTML_POLICY));
    let r = call(
        &srv,
        "GET",
        &format!("{admin_html}?remote=true"),
        Some(CHAOS_ADMIN),
        None,
        &[],
    )
    .await;
    assert_eq!(
        r.header("content-security-policy"),
        Some(REMOTE_HTML_POLICY)
    );
    let r = call(&srv, "GET", &admin_html, Some(&bob), None, &[]).await;
    assert_code(&r, 401, "admin_token_required");
    let r = call(
        &srv,
        "GET",
        &format!("/api/v1/admin/messages/{plain}/html"),
        Some(CHAOS_ADMIN),
        None,
        &[],
    )
    .await;
    assert_code(&r, 404, "no_html");
    let r = call(
        &srv,
        "GET",
        "/api/v1/admin/messages/999999/html",
        Some(CHAOS_ADMIN),
        None,
        &[],
    )
    .await;
    assert_code(&r, 404, "not_found");
    srv.stop().await;
}

#[tokio::test]
async fn inline_images_stop_at_the_message_size_limit() {
    // One image referred to over and over would make an answer of any size: the data: URIs
    // stop at --max-message-size, and later references stay cid: URLs.
    let mut config = test_config();
    config.service.max_message_size = 3_000;
    let srv = TestServer::start_with(config, None).await;
    let bob = srv.user(BOB).await;
    let raw = String::from_utf8(fixture("inline_image.eml"))
        .unwrap()
        .replace(
            r#"<p><img src="cid:logo@shop.example.test" alt="Spring Shop"></p>"#,
            &r#"<img src="cid:logo@shop.example.test">"#.repeat(30),
        );
    deliver(&srv, raw.into_bytes(), &[BOB]).await;
    let id = newest_in_inbox(&srv, &bob).await;
    let r = call(
        &srv,
        "GET",
        &format!("/api/v1/messages/{id}/html"),
        Some(&bob),
        None,
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let uri = format!("data:image/png;base64,{LOGO}");
    let inlined = r.text.matches(&uri).count();
    assert_eq!(inlined, 3_000 / uri.len(), "{}", r.text);
    assert_eq!(
        r.text.matches("cid:logo@shop.example.test").count(),
        30 - inlined
    );
    srv.stop().await;
}

#[tokio::test]
async fn session_tokens_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let admin = "fm_the-operators-own-admin-token";
    let mut cmd = serve_cmd(dir.path());
    cmd.args(["--log-level", "trace", "--admin-token", admin]);
    let mut p = Process::start(cmd);
    let client = reqwest::Client::new();
    let register = json!({"email": ALICE, "password": PASSWORD});
    let r = send(
        client
            .post(format!("{}/api/v1/auth/register", p.base))
            .json(&register),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = send(
        client
            .post(format!("{}{USER_SESSION}", p.base))
            .header(UI.0, UI.1)
            .json(&register),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (user_pair, _) = set_cookie(&r);
    let r = send(
        client
            .post(format!("{}{ADMIN_SESSION}", p.base))
            .bearer_auth(admin)
            .header(UI.0, UI.1),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let (admin_pair, _) = set_cookie(&r);
    let both = format!("{user_pair}; {admin_pair}");
    for path in [
        "/api/v1/me",
        "/api/v1/admin/stats",
        "/api/v1/admin/messages",
    ] {
        let r = send(
            client
                .get(format!("{}{path}", p.base))
                .header("cookie", &both),
        )
        .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
    let r = send(
        client
            .delete(format!("{}{USER_SESSION}", p.base))
            .header("cookie", &both)
            .header(UI.0, UI.1),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    p.stop_with("TERM");
    let mut logs = p.stderr();
    for entry in std::fs::read_dir(&p.log_dir).unwrap() {
        logs.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }
    assert!(logs.contains("logged in"), "the log is there: {logs}");
    let user_token = user_pair.split_once('=').unwrap().1;
    let admin_id = admin_pair.split_once('=').unwrap().1;
    for secret in [
        user_token,
        admin_id,
        admin,
        &user_token[3..20],
        &admin_id[3..20],
    ] {
        assert!(!logs.contains(secret), "{secret} is in the log:\n{logs}");
    }
}
