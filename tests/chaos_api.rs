//! Fault injection over the admin API and at REST send, against the real server.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, assert_error, assert_field_error};
use serde_json::{Value, json};

async fn send(srv: &TestServer, token: &str, to: &[&str]) -> (u16, Value) {
    srv.call(
        "POST",
        "/api/v1/messages",
        Some(token),
        Some(json!({"to": to, "subject": "chaos", "text": "hello"})),
    )
    .await
}

#[tokio::test]
async fn chaos_is_off_unless_the_server_allows_it() {
    let srv = TestServer::start_chaos(false).await;
    for (method, path, body) in [
        ("GET", "/api/v1/admin/chaos", None),
        ("PUT", "/api/v1/admin/chaos", Some(json!({"rules": []}))),
        ("DELETE", "/api/v1/admin/chaos", None),
        (
            "POST",
            "/api/v1/admin/chaos/rules",
            Some(json!({"rule": "rcpt:451"})),
        ),
        ("DELETE", "/api/v1/admin/chaos/rules/1", None),
    ] {
        let got = srv.admin(method, path, body).await;
        assert_error(&got, 403, "chaos_disabled");
    }
    // The admin token is still checked first.
    let got = srv.call("GET", "/api/v1/admin/chaos", None, None).await;
    assert_eq!(got.0, 401, "{got:?}");
    srv.stop().await;
}

#[tokio::test]
async fn rules_are_added_listed_replaced_and_removed() {
    let srv = TestServer::start_chaos(true).await;
    let (s, v) = srv.admin("GET", "/api/v1/admin/chaos", None).await;
    assert_eq!(
        (s, v["enabled"].clone(), v["rules"].clone()),
        (200, json!(true), json!([]))
    );

    let (s, a) = srv
        .admin(
            "POST",
            "/api/v1/admin/chaos/rules",
            Some(json!({"rule": "rcpt:451:4.3.0:50%:seed=9"})),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["stage"], "rcpt");
    assert_eq!(a["code"], 451);
    assert_eq!(a["enhanced_code"], "4.3.0");
    assert_eq!(a["probability"], 50.0);
    assert_eq!(a["rule"], "rcpt:451:4.3.0:50%:seed=9");
    let (s, b) = srv
        .admin(
            "POST",
            "/api/v1/admin/chaos/rules",
            Some(json!({"stage": "data", "action": "delay", "delay": "2s"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_ne!(a["id"], b["id"]);

    let (_, v) = srv.admin("GET", "/api/v1/admin/chaos", None).await;
    let listed: Vec<Value> = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(listed, [a["id"].clone(), b["id"].clone()]);

    let path = format!("/api/v1/admin/chaos/rules/{}", a["id"]);
    assert_eq!(srv.admin("DELETE", &path, None).await.0, 204);
    assert_error(&srv.admin("DELETE", &path, None).await, 404, "not_found");
    assert_error(
        &srv.admin("DELETE", "/api/v1/admin/chaos/rules/abc", None)
            .await,
        404,
        "not_found",
    );

    let (s, v) = srv
        .admin(
            "PUT",
            "/api/v1/admin/chaos",
            Some(
                json!({"rules": [{"rule": "connect:disconnect:next=3"}, {"rule": "api_send:503"}]}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let texts: Vec<&str> = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["connect:disconnect:next=3", "api_send:503"]);

    assert_eq!(
        srv.admin("DELETE", "/api/v1/admin/chaos", None).await.0,
        204
    );
    let (_, v) = srv.admin("GET", "/api/v1/admin/chaos", None).await;
    assert_eq!(v["rules"], json!([]));

    let got = srv.admin("PATCH", "/api/v1/admin/chaos", None).await;
    assert_error(&got, 405, "method_not_allowed");
    srv.stop().await;
}

#[tokio::test]
async fn invalid_rules_are_refused_with_the_field() {
    let srv = TestServer::start_chaos(true).await;
    for (rule, field) in [
        (
            json!({"stage": "smtp", "action": "reply", "code": 451}),
            "stage",
        ),
        (
            json!({"stage": "rcpt", "action": "reply", "code": 250}),
            "code",
        ),
        (
            json!({"stage": "rcpt", "action": "reply", "code": 700}),
            "code",
        ),
        (
            json!({"stage": "rcpt", "action": "reply", "code": 451, "probability": 101}),
            "probability",
        ),
        (json!({"stage": "rcpt", "action": "explode"}), "action"),
        (json!({"rule": "rcpt:451:150%"}), "probability"),
    ] {
        let got = srv
            .admin("POST", "/api/v1/admin/chaos/rules", Some(rule.clone()))
            .await;
        assert_field_error(&got, 422, "invalid_rule", field);
    }
    let got = srv.admin("PUT",
        "/api/v1/admin/chaos",
        Some(json!({"rules": [{"rule": "rcpt:451"}, {"stage": "data", "action": "reply", "code": 99}]})),
    )
    .await;
    assert_field_error(&got, 422, "invalid_rule", "rules[1].code");
    // Nothing was replaced by the refused PUT.
    let (_, v) = srv.admin("GET", "/api/v1/admin/chaos", None).await;
    assert_eq!(v["rules"], json!([]));
    let got = srv
        .admin(
            "POST",
            "/api/v1/admin/chaos/rules",
            Some(json!({"stage": 5})),
        )
        .await;
    assert_error(&got, 422, "invalid_body");
    srv.stop().await;
}

#[tokio::test]
async fn rest_send_answers_the_injected_status_next_n_times() {
    let srv = TestServer::start_chaos(true).await;
    let token = srv.user("sender@example.test").await;
    srv.add_rule("api_send:503:next=2:text=Mail service busy")
        .await;
    for _ in 0..2 {
        let got = send(&srv, &token, &["bob@example.test"]).await;
        assert_error(&got, 503, "injected_fault");
        assert_eq!(got.1["error"]["message"], "Mail service busy");
    }
    let (s, v) = send(&srv, &token, &["bob@example.test"]).await;
    assert_eq!(s, 201, "{v}");
    // The refused sends stored nothing: the sent mailbox holds only the third.
    let (_, page) = srv
        .call("GET", "/api/v1/mailboxes/sent/messages", Some(&token), None)
        .await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    // Validation still comes first: a bad request is a 422 whatever the rules say.
    srv.set_rules(&["api_send:500"]).await;
    let got = send(&srv, &token, &["not an address"]).await;
    assert_eq!(got.0, 422, "{got:?}");
    let (_, v) = srv.admin("GET", "/api/v1/admin/chaos", None).await;
    assert_eq!(v["faults"], 2, "{v}");
    let (_, stats) = srv.admin("GET", "/api/v1/admin/stats", None).await;
    assert_eq!(stats["chaos"]["faults"], 2, "{stats}");
    assert_eq!(stats["chaos"]["by_stage"]["api_send"], 2, "{stats}");
    srv.stop().await;
}

#[tokio::test]
async fn a_recipient_glob_touches_only_matching_mail() {
    let srv = TestServer::start_chaos(true).await;
    let token = srv.user("sender@example.test").await;
    srv.add_rule("api_send:550:to=*@bounce.test").await;
    assert_error(
        &send(&srv, &token, &["x@Bounce.test"]).await,
        550,
        "injected_fault",
    );
    assert_error(
        &send(&srv, &token, &["ok@example.test", "y@bounce.test"]).await,
        550,
        "injected_fault",
    );
    assert_eq!(send(&srv, &token, &["ok@example.test"]).await.0, 201);
    srv.stop().await;
}

#[tokio::test]
async fn a_delay_holds_the_send_back() {
    let srv = TestServer::start_chaos(true).await;
    let token = srv.user("sender@example.test").await;
    srv.add_rule("api_send:delay=700ms:next=1").await;
    let t = Instant::now();
    assert_eq!(send(&srv, &token, &["bob@example.test"]).await.0, 201);
    assert!(
        t.elapsed() >= Duration::from_millis(700),
        "the delayed send came back after {:?}",
        t.elapsed()
    );
    srv.stop().await;
}

#[tokio::test]
async fn the_same_seed_replays_the_same_sequence() {
    let srv = TestServer::start_chaos(true).await;
    let token = srv.user("sender@example.test").await;
    let mut runs = Vec::new();
    for _ in 0..2 {
        srv.set_rules(&["api_send:451:50%:seed=1234"]).await;
        let mut seq = Vec::new();
        for _ in 0..16 {
            seq.push(send(&srv, &token, &["bob@example.test"]).await.0);
        }
        runs.push(seq);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(
        runs[0].contains(&451) && runs[0].contains(&201),
        "{:?}",
        runs[0]
    );
    srv.stop().await;
}

#[test]
fn bad_command_line_rules_are_usage_errors() {
    for (args, needle) in [
        (
            vec!["--chaos", "--chaos-rule", "rcpt:451:150%"],
            "probability",
        ),
        (vec!["--chaos", "--chaos-rule", "smtp:451"], "not a stage"),
        (vec!["--chaos-rule", "rcpt:451"], "--chaos"),
    ] {
        let mut cmd = common::fakemail();
        cmd.arg("serve").arg("--temporary").args(&args);
        let out = common::run(cmd);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
}
