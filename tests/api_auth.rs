//! End-to-end tests of the account endpoints against the real server over HTTP: every endpoint
//! of the contract, every error status and code, and the error envelope on all of them.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use common::*;
use serde_json::{Value, json};

const REGISTER: &str = "/api/v1/auth/register";
const LOGIN: &str = "/api/v1/auth/login";
const LOGOUT: &str = "/api/v1/auth/logout";
const ME: &str = "/api/v1/me";
const PASSWORD_PATH: &str = "/api/v1/me/password";

/// The built-in list of common passwords, read from the source so the test follows the list.
const COMMON_PASSWORDS: &str = include_str!("../src/service/common_passwords.txt");

/// Registers `email` with `password` (and an optional display name); returns status and body.
async fn register_with(
    srv: &TestServer,
    email: &str,
    password: &str,
    display_name: Option<&str>,
) -> (u16, Value) {
    let mut body = json!({"email": email, "password": password});
    if let Some(name) = display_name {
        body["display_name"] = json!(name);
    }
    srv.call("POST", REGISTER, None, Some(body)).await
}

/// Posts raw bytes with a content type to `path`.
async fn post_bytes(
    srv: &TestServer,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let mut req = srv.client.post(srv.url(path)).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let r = send(req).await;
    (r.status, r.json)
}

/// Sends a request with a raw `Authorization` header value.
async fn with_authorization(
    srv: &TestServer,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = srv.request(method, path, None, body);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let r = send(req).await;
    (r.status, r.json)
}

fn allow_set(r: &Reply) -> BTreeSet<String> {
    r.header("allow")
        .unwrap_or_else(|| panic!("405 without Allow: {}", r.text))
        .split(',')
        .map(|m| m.trim().to_owned())
        .collect()
}

fn set(methods: &[&str]) -> BTreeSet<String> {
    methods.iter().map(|m| m.to_string()).collect()
}

// ----- the happy paths -----------------------------------------------------------------------

#[tokio::test]
async fn healthz_answers_ok() {
    let srv = TestServer::start().await;
    let r = srv.reply("GET", "/healthz", None, None).await;
    assert_eq!((r.status, &r.json), (200, &json!({"status": "ok"})));
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    srv.stop().await;
}

#[tokio::test]
async fn register_login_me_logout() {
    let srv = TestServer::start().await;
    let before = SystemTime::now() - Duration::from_secs(1);
    let (s, user) = srv
        .call(
            "POST",
            REGISTER,
            None,
            Some(
                json!({"email":" Alice@Example.test ","password":PASSWORD,"display_name":"  Alice  "}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{user}");
    assert_eq!(user["email"], "Alice@Example.test", "trimmed, case kept");
    assert_eq!(user["display_name"], "Alice", "trimmed");
    assert!(user["id"].as_str().is_some_and(|id| !id.is_empty()));
    let created = rfc3339(&user["created_at"]);
    assert!(created >= before && created <= SystemTime::now() + Duration::from_secs(1));
    let keys: BTreeSet<_> = user.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        set(&["created_at", "display_name", "email", "id"]),
        "no hash, no token: {user}"
    );

    let (s, login) = srv.try_login("ALICE@example.TEST", PASSWORD).await;
    assert_eq!(s, 200, "login is case-insensitive: {login}");
    let keys: BTreeSet<_> = login.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, set(&["expires_at", "token", "token_type", "user"]));
    assert_eq!(login["token_type"], "Bearer");
    assert_eq!(login["user"], user);
    let token = login["token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 43, "at least 256 bits: {token}");
    let ttl = test_config().service.session_ttl;
    let expires = rfc3339(&login["expires_at"]);
    let now = SystemTime::now();
    assert!(
        expires > now + ttl - Duration::from_secs(60) && expires <= now + ttl,
        "expires_at {expires:?} is not about {ttl:?} from now"
    );

    let (s, me) = srv.call("GET", ME, Some(&token), None).await;
    assert_eq!((s, &me), (200, &user));

    let (s, body) = srv.call("POST", LOGOUT, Some(&token), None).await;
    assert_eq!((s, body), (204, Value::Null));
    assert_error(
        &srv.call("GET", ME, Some(&token), None).await,
        401,
        "invalid_token",
    );
    srv.stop().await;
}

#[tokio::test]
async fn display_name_defaults_to_empty_and_ids_differ() {
    let srv = TestServer::start().await;
    let a = srv.register("a@example.test").await;
    let b = srv.register("b@example.test").await;
    assert_eq!(a["display_name"], "");
    assert_ne!(a["id"], b["id"]);
    srv.stop().await;
}

#[tokio::test]
async fn each_login_gets_its_own_token_and_logout_ends_only_that_one() {
    let srv = TestServer::start().await;
    let t1 = srv.user("alice@example.test").await;
    let t2 = srv.login("alice@example.test").await;
    assert_ne!(t1, t2);
    let (s, _) = srv.call("POST", LOGOUT, Some(&t1), None).await;
    assert_eq!(s, 204);
    assert_error(
        &srv.call("GET", ME, Some(&t1), None).await,
        401,
        "invalid_token",
    );
    assert_error(
        &srv.call("POST", LOGOUT, Some(&t1), None).await,
        401,
        "invalid_token",
    );
    let (s, me) = srv.call("GET", ME, Some(&t2), None).await;
    assert_eq!((s, me["email"].as_str()), (200, Some("alice@example.test")));
    srv.stop().await;
}

#[tokio::test]
async fn patch_me_changes_the_display_name() {
    let srv = TestServer::start().await;
    let token = srv.user("alice@example.test").await;
    let (_, before) = srv.call("GET", ME, Some(&token), None).await;
    let (s, after) = srv
        .call(
            "PATCH",
            ME,
            Some(&token),
            Some(json!({"display_name": " Zoë Ñandú "})),
        )
        .await;
    assert_eq!(s, 200, "{after}");
    assert_eq!(after["display_name"], "Zoë Ñandú");
    for k in ["id", "email", "created_at"] {
        assert_eq!(after[k], before[k], "{k} unchanged");
    }
    let (_, me) = srv.call("GET", ME, Some(&token), None).await;
    assert_eq!(me, after);
    let (_, login) = srv.try_login("alice@example.test", PASSWORD).await;
    assert_eq!(login["user"], after);
    // An empty name is allowed: it clears the name.
    let (s, cleared) = srv
        .call("PATCH", ME, Some(&token), Some(json!({"display_name": ""})))
        .await;
    assert_eq!((s, &cleared["display_name"]), (200, &json!("")));
    srv.stop().await;
}

#[tokio::test]
async fn password_change_revokes_other_tokens_and_keeps_the_current_one() {
    let srv = TestServer::start().await;
    let email = "alice@example.test";
    let current = srv.user(email).await;
    let others = [srv.login(email).await, srv.login(email).await];
    let bob = srv.user("bob@example.test").await;
    let new_password = "a brand new passphrase";

    let (s, body) = srv
        .call(
            "POST",
            PASSWORD_PATH,
            Some(&current),
            Some(json!({"current_password": PASSWORD, "new_password": new_password})),
        )
        .await;
    assert_eq!((s, body), (204, Value::Null));

    let (s, _) = srv.call("GET", ME, Some(&current), None).await;
    assert_eq!(s, 200, "the token that changed the password still works");
    for t in &others {
        assert_error(
            &srv.call("GET", ME, Some(t), None).await,
            401,
            "invalid_token",
        );
    }
    let (s, _) = srv.call("GET", ME, Some(&bob), None).await;
    assert_eq!(s, 200, "other users keep their sessions");
    assert_error(
        &srv.try_login(email, PASSWORD).await,
        401,
        "invalid_credentials",
    );
    let (s, _) = srv.try_login(email, new_password).await;
    assert_eq!(s, 200);
    srv.stop().await;
}

#[tokio::test]
async fn password_change_with_wrong_current_or_weak_new_changes_nothing() {
    let srv = TestServer::start().await;
    let email = "alice@example.test";
    let current = srv.user(email).await;
    let other = srv.login(email).await;

    let got = srv
        .call(
            "POST",
            PASSWORD_PATH,
            Some(&current),
            Some(json!({"current_password": "not the password", "new_password": "a brand new passphrase"})),
        )
        .await;
    assert_error(&got, 401, "invalid_credentials");

    for weak in ["short", email, "password1"] {
        let got = srv
            .call(
                "POST",
                PASSWORD_PATH,
                Some(&current),
                Some(json!({"current_password": PASSWORD, "new_password": weak})),
            )
            .await;
        assert_field_error(&got, 422, "weak_password", "new_password");
    }

    let (s, _) = srv.call("GET", ME, Some(&other), None).await;
    assert_eq!(s, 200, "nothing was revoked");
    srv.login(email).await;
    srv.stop().await;
}

#[tokio::test]
async fn delete_me_needs_the_password_then_removes_everything() {
    let srv = TestServer::start().await;
    let email = "alice@example.test";
    let user = srv.register(email).await;
    let token = srv.login(email).await;
    let other = srv.login(email).await;

    let got = srv
        .call(
            "DELETE",
            ME,
            Some(&token),
            Some(json!({"password": "not the password"})),
        )
        .await;
    assert_error(&got, 401, "invalid_credentials");
    let (s, _) = srv.call("GET", ME, Some(&token), None).await;
    assert_eq!(s, 200, "a wrong password deletes nothing");

    let (s, body) = srv
        .call(
            "DELETE",
            ME,
            Some(&token),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!((s, body), (204, Value::Null));
    for t in [&token, &other] {
        assert_error(
            &srv.call("GET", ME, Some(t), None).await,
            401,
            "invalid_token",
        );
    }
    let wrong_user = srv.try_login(email, PASSWORD).await;
    assert_error(&wrong_user, 401, "invalid_credentials");
    let unknown = srv.try_login("nobody@example.test", PASSWORD).await;
    assert_eq!(wrong_user, unknown, "a deleted account looks like none");

    // The address is free again, for a new account whose sessions are its own.
    let again = srv.register(email).await;
    assert_ne!(again["id"], user["id"]);
    let fresh = srv.login(email).await;
    let (s, me) = srv.call("GET", ME, Some(&fresh), None).await;
    assert_eq!((s, &me), (200, &again));
    assert_error(
        &srv.call("GET", ME, Some(&token), None).await,
        401,
        "invalid_token",
    );
    srv.stop().await;
}

#[tokio::test]
async fn data_and_sessions_survive_a_restart_on_the_same_dir() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start_with(test_config(), Some(dir.path())).await;
    let user = srv.register("alice@example.test").await;
    let token = srv.login("alice@example.test").await;
    srv.stop().await;

    let srv = TestServer::start_with(test_config(), Some(dir.path())).await;
    let (s, me) = srv.call("GET", ME, Some(&token), None).await;
    assert_eq!((s, &me), (200, &user), "the session survived");
    srv.login("alice@example.test").await;
    assert_error(
        &register_with(&srv, "ALICE@example.test", PASSWORD, None).await,
        409,
        "email_taken",
    );
    srv.stop().await;
}

// ----- tokens --------------------------------------------------------------------------------

#[tokio::test]
async fn protected_endpoints_need_a_bearer_token() {
    let srv = TestServer::start().await;
    let token = srv.user("alice@example.test").await;
    let endpoints: [(&str, &str, Option<Value>); 5] = [
        ("POST", LOGOUT, None),
        ("GET", ME, None),
        ("PATCH", ME, Some(json!({"display_name": "A"}))),
        ("DELETE", ME, Some(json!({"password": PASSWORD}))),
        (
            "POST",
            PASSWORD_PATH,
            Some(json!({"current_password": PASSWORD, "new_password": "another passphrase"})),
        ),
    ];
    let basic = "Basic YWxpY2VAZXhhbXBsZS50ZXN0OmNvcnJlY3QgaG9yc2UgYmF0dGVyeQ==".to_owned();
    let wrong_scheme = format!("Token {token}");
    let bare = "Bearer".to_owned();
    for (method, path, body) in &endpoints {
        for auth in [None, Some(&basic), Some(&wrong_scheme), Some(&bare)] {
            let got =
                with_authorization(&srv, method, path, auth.map(String::as_str), body.clone())
                    .await;
            assert_error(&got, 401, "missing_token");
        }
        for bad in [
            "Bearer fm_0000000000000000000000000000000000000000000000000000000000000000",
            "Bearer not-a-token",
        ] {
            let got = with_authorization(&srv, method, path, Some(bad), body.clone()).await;
            assert_error(&got, 401, "invalid_token");
        }
        // The real token with one character changed is refused.
        let mut altered = token.clone();
        let last = altered.pop().unwrap();
        altered.push(if last == '0' { '1' } else { '0' });
        let got = srv.call(method, path, Some(&altered), body.clone()).await;
        assert_error(&got, 401, "invalid_token");
    }
    // The scheme is case-insensitive (RFC 9110).
    let got = with_authorization(&srv, "GET", ME, Some(&format!("bearer {token}")), None).await;
    assert_eq!(got.0, 200, "{}", got.1);
    // Nothing above changed the account: the password is still the old one.
    srv.login("alice@example.test").await;
    srv.stop().await;
}

#[tokio::test]
async fn auth_is_checked_before_the_body() {
    let srv = TestServer::start().await;
    for body in ["{not json", r#"{"display_name": 5}"#] {
        let req = srv
            .client
            .patch(srv.url(ME))
            .header("content-type", "application/json")
            .body(body);
        let r = send(req).await;
        assert_error(&(r.status, r.json), 401, "missing_token");
    }
    // Without a content type too: 401, not 415.
    let r = send(srv.client.delete(srv.url(ME)).body("x")).await;
    assert_error(&(r.status, r.json), 401, "missing_token");
    srv.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let mut config = test_config();
    config.service.session_ttl = Duration::from_secs(1);
    let srv = TestServer::start_with(config, None).await;
    let token = srv.user("alice@example.test").await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_error(
        &srv.call("GET", ME, Some(&token), None).await,
        401,
        "invalid_token",
    );
    assert_error(
        &srv.call("POST", LOGOUT, Some(&token), None).await,
        401,
        "invalid_token",
    );
    // A new login still works, and its token does until it expires too.
    let fresh = srv.login("alice@example.test").await;
    let (s, _) = srv.call("GET", ME, Some(&fresh), None).await;
    assert_eq!(s, 200);
    srv.stop().await;
}

// ----- login failures ------------------------------------------------------------------------

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let srv = TestServer::start().await;
    srv.register("alice@example.test").await;
    let unknown = srv
        .reply(
            "POST",
            LOGIN,
            None,
            Some(json!({"email": "bob@example.test", "password": PASSWORD})),
        )
        .await;
    let wrong = srv
        .reply(
            "POST",
            LOGIN,
            None,
            Some(json!({"email": "alice@example.test", "password": "not the password"})),
        )
        .await;
    assert_error(
        &(wrong.status, wrong.json.clone()),
        401,
        "invalid_credentials",
    );
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(unknown.text, wrong.text, "byte-identical bodies");
    for h in [
        "content-type",
        "content-length",
        "retry-after",
        "www-authenticate",
    ] {
        assert_eq!(unknown.header(h), wrong.header(h), "header {h}");
    }
    srv.stop().await;
}

/// Fails `n` logins for `email`, each a 401 `invalid_credentials`.
async fn fail_logins(srv: &TestServer, email: &str, n: usize) {
    for _ in 0..n {
        let got = srv.try_login(email, "not the password").await;
        assert_error(&got, 401, "invalid_credentials");
    }
}

#[track_caller]
fn assert_locked(r: &Reply) {
    assert_error(&(r.status, r.json.clone()), 429, "too_many_attempts");
    let secs: u64 = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("429 without Retry-After: {}", r.text))
        .parse()
        .expect("Retry-After in seconds");
    assert!(
        (1..=15 * 60).contains(&secs),
        "Retry-After {secs} is not within the 15-minute window"
    );
}

#[tokio::test]
async fn five_failures_lock_the_account_even_for_the_right_password() {
    let srv = TestServer::start().await;
    srv.register("alice@example.test").await;
    srv.register("bob@example.test").await;
    fail_logins(&srv, "alice@example.test", 5).await;

    let login = |email: &'static str, password: &'static str| {
        srv.reply(
            "POST",
            LOGIN,
            None,
            Some(json!({"email": email, "password": password})),
        )
    };
    assert_locked(&login("alice@example.test", "not the password").await);
    assert_locked(&login("alice@example.test", PASSWORD).await);
    assert_locked(&login(" ALICE@Example.TEST ", PASSWORD).await);
    // Other accounts are not affected.
    let (s, _) = srv.try_login("bob@example.test", PASSWORD).await;
    assert_eq!(s, 200);
    srv.stop().await;
}

#[tokio::test]
async fn unknown_addresses_lock_like_real_ones() {
    let srv = TestServer::start().await;
    fail_logins(&srv, "nobody@example.test", 5).await;
    let r = srv
        .reply(
            "POST",
            LOGIN,
            None,
            Some(json!({"email": "nobody@example.test", "password": PASSWORD})),
        )
        .await;
    assert_locked(&r);
    srv.stop().await;
}

#[tokio::test]
async fn a_successful_login_clears_earlier_failures() {
    let srv = TestServer::start().await;
    srv.register("alice@example.test").await;
    fail_logins(&srv, "alice@example.test", 4).await;
    srv.login("alice@example.test").await;
    // The count starts again: five more failures are answered as such.
    fail_logins(&srv, "alice@example.test", 5).await;
    let r = srv
        .reply(
            "POST",
            LOGIN,
            None,
            Some(json!({"email": "alice@example.test", "password": PASSWORD})),
        )
        .await;
    assert_locked(&r);
    srv.stop().await;
}

// ----- registration rules --------------------------------------------------------------------

#[tokio::test]
async fn invalid_emails_are_refused() {
    let srv = TestServer::start().await;
    for email in [
        "",
        "   ",
        "plain",
        "alice@",
        "@example.test",
        "al ice@example.test",
        "alice@@example.test",
        "alice@example..test",
        "alice@-example.test",
        ".alice@example.test",
        "alice\n@example.test",
    ] {
        let got = register_with(&srv, email, PASSWORD, None).await;
        assert_field_error(&got, 422, "invalid_email", "email");
    }
    let long = format!("{}@example.test", "a".repeat(65));
    assert_field_error(
        &register_with(&srv, &long, PASSWORD, None).await,
        422,
        "invalid_email",
        "email",
    );
    srv.stop().await;
}

#[tokio::test]
async fn emails_are_unique_case_insensitively() {
    let srv = TestServer::start().await;
    srv.register("Bob@Example.test").await;
    for dup in ["Bob@Example.test", "bob@example.test", " BOB@EXAMPLE.TEST "] {
        let got = register_with(&srv, dup, "another passphrase", None).await;
        assert_error(&got, 409, "email_taken");
    }
    // The first account is untouched: its password is still the first one.
    srv.login("bob@example.test").await;
    // Non-ASCII letters too.
    srv.register("zoë@bücher.example").await;
    let got = register_with(&srv, "ZOË@BÜCHER.EXAMPLE", "another passphrase", None).await;
    assert_error(&got, 409, "email_taken");
    srv.login("ZOË@bücher.example").await;
    srv.stop().await;
}

#[tokio::test]
async fn concurrent_registrations_of_one_address_create_one_account() {
    let srv = TestServer::start().await;
    let attempts = (0..8).map(|i| {
        let email = if i % 2 == 0 {
            "carol@example.test"
        } else {
            "CAROL@example.test"
        };
        register_with(&srv, email, PASSWORD, None)
    });
    let results = futures_util::future::join_all(attempts).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(created, 1, "{results:?}");
    for got in results.iter().filter(|(s, _)| *s != 201) {
        assert_error(got, 409, "email_taken");
    }
    srv.stop().await;
}

#[tokio::test]
async fn password_length_counts_characters_not_bytes() {
    let srv = TestServer::start().await;
    let seven = "é".repeat(7); // 14 bytes
    let got = register_with(&srv, "a@example.test", &seven, None).await;
    assert_field_error(&got, 422, "weak_password", "password");
    let msg = got.1["error"]["message"].as_str().unwrap();
    assert!(msg.contains('8'), "names the rule: {msg}");

    let (s, body) = register_with(&srv, "a@example.test", &"é".repeat(8), None).await;
    assert_eq!(s, 201, "8 characters are enough: {body}");

    let long = "ü".repeat(257);
    let got = register_with(&srv, "b@example.test", &long, None).await;
    assert_field_error(&got, 422, "weak_password", "password");
    let msg = got.1["error"]["message"].as_str().unwrap();
    assert!(msg.contains("256"), "names the rule: {msg}");

    let longest = "ü".repeat(256); // 512 bytes
    let (s, body) = register_with(&srv, "b@example.test", &longest, None).await;
    assert_eq!(s, 201, "256 characters are allowed: {body}");
    let (s, _) = srv.try_login("b@example.test", &longest).await;
    assert_eq!(s, 200);
    srv.stop().await;
}

#[tokio::test]
async fn password_must_not_be_the_email() {
    let srv = TestServer::start().await;
    for (email, password) in [
        ("alice@example.test", "alice@example.test"),
        ("alice@example.test", "ALICE@Example.Test"),
        (" alice@example.test ", "alice@example.test"),
        ("zoë@bücher.example", "ZOË@BÜCHER.EXAMPLE"),
    ] {
        let got = register_with(&srv, email, password, None).await;
        assert_field_error(&got, 422, "weak_password", "password");
        let msg = got.1["error"]["message"].as_str().unwrap();
        assert!(msg.contains("email"), "names the rule: {msg}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn common_passwords_are_refused() {
    let srv = TestServer::start().await;
    let list: Vec<&str> = COMMON_PASSWORDS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert!(list.len() > 100, "the list is there");
    let picks = [
        list[0].to_owned(),
        list[list.len() / 2].to_uppercase(),
        list[list.len() - 1].to_owned(),
    ];
    for p in &picks {
        let got = register_with(&srv, "alice@example.test", p, None).await;
        assert_field_error(&got, 422, "weak_password", "password");
        let msg = got.1["error"]["message"].as_str().unwrap();
        assert!(msg.contains("common"), "names the rule: {msg}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn display_names_are_checked_on_register_and_patch() {
    let srv = TestServer::start().await;
    let token = srv.user("alice@example.test").await;
    let long = "é".repeat(101);
    for bad in ["line\nbreak", "tab\there", "bell\u{7}", "del\u{7f}", &long] {
        let got = register_with(&srv, "bob@example.test", PASSWORD, Some(bad)).await;
        assert_field_error(&got, 422, "invalid_display_name", "display_name");
        let got = srv
            .call(
                "PATCH",
                ME,
                Some(&token),
                Some(json!({"display_name": bad})),
            )
            .await;
        assert_field_error(&got, 422, "invalid_display_name", "display_name");
    }
    let (_, me) = srv.call("GET", ME, Some(&token), None).await;
    assert_eq!(me["display_name"], "", "nothing was changed");

    let longest = "é".repeat(100); // 200 bytes
    let (s, user) = register_with(&srv, "bob@example.test", PASSWORD, Some(&longest)).await;
    assert_eq!((s, &user["display_name"]), (201, &json!(longest)));
    srv.stop().await;
}

// ----- request bodies ------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_is_a_400() {
    let srv = TestServer::start().await;
    for body in [
        "",
        "{",
        r#"{"email":"a@example.test","password":"#,
        "{'email':'a@example.test'}",
        r#"{"email":"a@example.test","password":"correct horse battery"} trailing"#,
    ] {
        let got = post_bytes(&srv, REGISTER, Some("application/json"), body).await;
        assert_error(&got, 400, "malformed_json");
    }
    srv.stop().await;
}

#[tokio::test]
async fn invalid_utf8_is_a_400() {
    let srv = TestServer::start().await;
    let body =
        b"{\"email\":\"a\xff@example.test\",\"password\":\"correct horse battery\"}".to_vec();
    let got = post_bytes(&srv, REGISTER, Some("application/json"), body).await;
    assert_error(&got, 400, "malformed_json");
    srv.stop().await;
}

#[tokio::test]
async fn wrong_shapes_are_a_422_naming_the_field() {
    let srv = TestServer::start().await;
    let token = srv.user("alice@example.test").await;
    let cases: [(&str, &str, Value, &str); 9] = [
        (
            "POST",
            REGISTER,
            json!({"email": 5, "password": PASSWORD}),
            "email",
        ),
        (
            "POST",
            REGISTER,
            json!({"email": "b@example.test"}),
            "password",
        ),
        (
            "POST",
            REGISTER,
            json!({"email": null, "password": PASSWORD}),
            "email",
        ),
        (
            "POST",
            REGISTER,
            json!({"email": "b@example.test", "password": PASSWORD, "display_name": ["B"]}),
            "display_name",
        ),
        (
            "POST",
            REGISTER,
            json!({"email": "b@example.test", "password": PASSWORD, "admin": true}),
            "admin",
        ),
        ("POST", LOGIN, json!({"password": PASSWORD}), "email"),
        ("PATCH", ME, json!({"display_name": 7}), "display_name"),
        ("DELETE", ME, json!({}), "password"),
        (
            "POST",
            PASSWORD_PATH,
            json!({"current_password": PASSWORD, "new_password": false}),
            "new_password",
        ),
    ];
    for (method, path, body, field) in cases {
        let got = srv
            .call(method, path, Some(&token), Some(body.clone()))
            .await;
        assert_field_error(&got, 422, "invalid_body", field);
    }
    // Not an object at all.
    for body in [json!([1, 2]), json!("text"), json!(null)] {
        let got = srv.call("POST", LOGIN, None, Some(body)).await;
        assert_error(&got, 422, "invalid_body");
    }
    let (s, _) = srv.call("GET", ME, Some(&token), None).await;
    assert_eq!(s, 200, "the account survived every bad request");
    srv.stop().await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let srv = TestServer::start().await;
    let token = srv.user("alice@example.test").await;
    let body = json!({"email": "b@example.test", "password": PASSWORD}).to_string();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        for path in [REGISTER, LOGIN] {
            let got = post_bytes(&srv, path, ct, body.clone()).await;
            assert_error(&got, 415, "unsupported_media_type");
        }
        let mut req = srv
            .client
            .patch(srv.url(ME))
            .bearer_auth(&token)
            .body(r#"{"display_name":"A"}"#);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let r = send(req).await;
        assert_error(&(r.status, r.json), 415, "unsupported_media_type");
    }
    // A charset parameter and upper case are fine.
    let got = post_bytes(
        &srv,
        REGISTER,
        Some("Application/JSON; charset=utf-8"),
        body,
    )
    .await;
    assert_eq!(got.0, 201, "{}", got.1);
    srv.stop().await;
}

/// A register body of exactly `len` bytes: valid JSON padded with spaces.
fn padded_register_body(email: &str, len: usize) -> Vec<u8> {
    let mut body = json!({"email": email, "password": PASSWORD})
        .to_string()
        .into_bytes();
    assert!(body.len() <= len);
    body.resize(len, b' ');
    body
}

fn register_head(framing: &str) -> String {
    format!(
        "POST {REGISTER} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Connection: close\r\n{framing}"
    )
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in body.chunks(64 << 10) {
        out.extend(format!("{:x}\r\n", c.len()).into_bytes());
        out.extend_from_slice(c);
        out.extend(b"\r\n");
    }
    out.extend(b"0\r\n\r\n");
    out
}

#[tokio::test]
async fn bodies_over_one_mib_are_a_413_with_or_without_content_length() {
    let srv = TestServer::start().await;
    let limit = test_config().max_body_size as usize;
    assert_eq!(limit, 1 << 20, "the default limit is 1 MiB");

    // Exactly at the limit is accepted, both ways.
    let at = padded_register_body("a@example.test", limit);
    let r = raw(
        srv.addr,
        &register_head(&format!("Content-Length: {limit}")),
        at,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let at = padded_register_body("b@example.test", limit);
    let r = raw(
        srv.addr,
        &register_head("Transfer-Encoding: chunked"),
        chunked(&at),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);

    // One byte more is refused, both ways.
    let over = padded_register_body("c@example.test", limit + 1);
    let r = raw(
        srv.addr,
        &register_head(&format!("Content-Length: {}", limit + 1)),
        over.clone(),
    )
    .await;
    assert_error(&(r.status, r.json), 413, "payload_too_large");
    let r = raw(
        srv.addr,
        &register_head("Transfer-Encoding: chunked"),
        chunked(&over),
    )
    .await;
    assert_error(&(r.status, r.json), 413, "payload_too_large");

    // A huge declared length is refused before anything is read.
    let r = raw(
        srv.addr,
        &register_head("Content-Length: 10000000000"),
        Vec::new(),
    )
    .await;
    assert_error(&(r.status, r.json), 413, "payload_too_large");

    let (s, _) = srv.try_login("c@example.test", PASSWORD).await;
    assert_eq!(s, 401, "the oversize registration did not happen");
    srv.stop().await;
}

// ----- routing -------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_routes_are_a_json_404() {
    let srv = TestServer::start().await;
    // `/` is the web UI's page (tests/ui.rs); its unknown paths are JSON 404s too.
    for (method, path) in [
        ("GET", "/index.html"),
        ("GET", "/ui/nope.js"),
        ("GET", "/nope"),
        ("GET", "/api/v1"),
        ("POST", "/api/v1/auth/nope"),
        ("GET", "/api/v1/me/nope"),
        ("GET", "/api/v2/me"),
        ("POST", "/api/v1/auth/register/extra"),
        ("GET", "/healthz/extra"),
    ] {
        let got = srv.call(method, path, None, None).await;
        assert_error(&got, 404, "not_found");
    }
    srv.stop().await;
}

#[tokio::test]
async fn wrong_methods_are_a_json_405_with_allow() {
    let srv = TestServer::start().await;
    let token = srv.user("alice@example.test").await;
    let cases: [(&str, &str, &[&str]); 10] = [
        ("POST", "/healthz", &["GET", "HEAD"]),
        ("DELETE", "/healthz", &["GET", "HEAD"]),
        ("GET", REGISTER, &["POST"]),
        ("PUT", REGISTER, &["POST"]),
        ("GET", LOGIN, &["POST"]),
        ("DELETE", LOGOUT, &["POST"]),
        ("PUT", ME, &["GET", "PATCH", "DELETE"]),
        ("POST", ME, &["GET", "PATCH", "DELETE"]),
        ("GET", PASSWORD_PATH, &["POST"]),
        ("PATCH", PASSWORD_PATH, &["POST"]),
    ];
    for (method, path, allowed) in cases {
        // With and without a token: the method is wrong either way.
        for t in [None, Some(token.as_str())] {
            let r = srv.reply(method, path, t, None).await;
            assert_error(&(r.status, r.json.clone()), 405, "method_not_allowed");
            assert_eq!(allow_set(&r), set(allowed), "{method} {path}");
        }
    }
    srv.stop().await;
}

#[tokio::test]
async fn a_non_ascii_authorization_header_is_an_invalid_token() {
    let srv = TestServer::start().await;
    for raw_value in [&b"Bearer fm_\xe9\xe9"[..], b"\xe9\xe9 token"] {
        let value = reqwest::header::HeaderValue::from_bytes(raw_value).unwrap();
        let r = send(srv.client.get(srv.url(ME)).header("authorization", value)).await;
        assert_error(&(r.status, r.json), 401, "invalid_token");
    }
    srv.stop().await;
}

#[tokio::test]
async fn changing_the_iteration_count_keeps_old_hashes_working() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start_with(test_config(), Some(dir.path())).await;
    srv.register("old@example.test").await;
    srv.stop().await;

    let mut config = test_config();
    config.service.password_iterations = 2_000;
    let srv = TestServer::start_with(config, Some(dir.path())).await;
    srv.login("old@example.test").await;
    srv.register("new@example.test").await;
    srv.login("new@example.test").await;
    srv.stop().await;

    let store = open_store(dir.path());
    let hash = |email| store.user_by_email(email).unwrap().unwrap().password_hash;
    assert!(hash("old@example.test").starts_with("$pbkdf2-sha256$i=1000,"));
    assert!(hash("new@example.test").starts_with("$pbkdf2-sha256$i=2000,"));
}
