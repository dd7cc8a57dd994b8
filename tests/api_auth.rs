//! End-to-end tests of the account endpoints against the real server over HTTP.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn register_login_me_logout() {
    let srv = TestServer::start().await;
    let (s, user) = srv
        .call(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(
                json!({"email":" Alice@Example.test ","password":PASSWORD,"display_name":"Alice"}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{user}");
    assert_eq!(user["email"], "Alice@Example.test");
    assert_eq!(user["display_name"], "Alice");
    assert!(user["id"].is_string());
    assert_eq!(
        user.as_object().unwrap().len(),
        4,
        "no hash, no token: {user}"
    );

    let token = srv.login("alice@example.test").await;
    let (s, me) = srv.call("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!((s, &me), (200, &user));

    let (s, _) = srv
        .call("POST", "/api/v1/auth/logout", Some(&token), None)
        .await;
    assert_eq!(s, 204);
    assert_error(
        &srv.call("GET", "/api/v1/me", Some(&token), None).await,
        401,
        "invalid_token",
    );
    srv.stop().await;
}
