//! Fault injection on the SMTP listener, against the real server on 127.0.0.1:0: every stage
//! (connect, EHLO/HELO, AUTH, MAIL, RCPT, DATA) and every action (reply, delay, disconnect,
//! throttle), the triggers (`next=N`, a seeded probability, `max_per_minute`), the address
//! globs, the admin stats, and the log line. Raw dialogues where the exact bytes matter, lettre
//! where a real client's view does. Delays are a few hundred milliseconds and every timing is
//! asserted as a lower bound only.

mod common;

use std::time::{Duration, Instant};

use common::*;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Value, json};

/// The injected delay of the tests that wait.
const DELAY: Duration = Duration::from_millis(250);

/// A server with `--chaos` and `rules`, set over the admin API.
async fn chaos_server(rules: &[&str]) -> TestServer {
    let srv = TestServer::start_chaos(true).await;
    srv.set_rules(rules).await;
    srv
}

/// A client that has said EHLO.
async fn ehlo(srv: &TestServer) -> SmtpClient {
    let mut c = SmtpClient::connect(srv.smtp).await;
    c.expect("EHLO client.test", 250).await;
    c
}

/// Asserts a reply's code and its text after the code (enhanced code included).
#[track_caller]
fn assert_reply(r: &SmtpReply, code: u16, text: &str) {
    assert_eq!((r.code, r.text().as_str()), (code, text), "{r:?}");
}

/// Sends the body of a message after a 354 and returns the reply to it.
async fn body(c: &mut SmtpClient, text: &str) -> SmtpReply {
    c.send(format!("{text}\r\n.\r\n")).await;
    c.reply().await
}

/// Every stored message as the operator view lists it, newest first.
async fn stored(srv: &TestServer) -> Vec<Value> {
    stored_for(srv, "").await
}

/// The stored messages that went to `to` (`""`: all), from the operator view.
async fn stored_for(srv: &TestServer, to: &str) -> Vec<Value> {
    let path = format!("/api/v1/admin/messages?to={to}");
    let (s, page) = srv.admin("GET", &path, None).await;
    assert_eq!(s, 200, "{page}");
    page["messages"].as_array().unwrap().clone()
}

/// lettre, a real SMTP client, on the server's SMTP port (plain text, no pooling).
fn mailer(srv: &TestServer) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(srv.smtp.port())
        .timeout(Some(TIMEOUT))
        .build()
}

fn email(to: &str, subject: &str) -> Message {
    Message::builder()
        .from("alice@example.test".parse().unwrap())
        .to(to.parse().unwrap())
        .subject(subject)
        .body(String::from("Sent through fault injection.\n"))
        .unwrap()
}

// ----- RCPT and addresses ----------------------------------------------------------------------

#[tokio::test]
async fn a_4xx_at_rcpt_refuses_one_recipient_and_the_others_get_the_message() {
    let srv = chaos_server(&["rcpt:451:4.2.1:to=bob@example.test:text=mailbox busy"]).await;
    let mut c = ehlo(&srv).await;
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    let refused = c.cmd("RCPT TO:<bob@example.test>").await;
    assert_reply(&refused, 451, "4.2.1 mailbox busy");
    c.expect("RCPT TO:<carol@example.test>", 250).await;
    c.expect("RCPT TO:<dave@example.test>", 250).await;
    c.expect("DATA", 354).await;
    let r = body(&mut c, "Subject: one refused\r\n\r\nhi").await;
    assert_eq!(r.code, 250, "{r:?}");
    c.expect("QUIT", 221).await;

    assert_eq!(stored_for(&srv, "carol@example.test").await.len(), 1);
    assert!(
        stored_for(&srv, "bob@example.test").await.is_empty(),
        "bob was refused"
    );
    let messages = stored(&srv).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0]["recipients"],
        json!(["carol@example.test", "dave@example.test"])
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_recipient_glob_touches_only_matching_recipients() {
    let srv = chaos_server(&["rcpt:550:5.1.1:to=*@bounce.test:text=no such user"]).await;
    let mut c = ehlo(&srv).await;
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    for refused in ["a@bounce.test", "B@Bounce.TEST"] {
        let r = c.cmd(&format!("RCPT TO:<{refused}>")).await;
        assert_reply(&r, 550, "5.1.1 no such user");
    }
    c.expect("RCPT TO:<ok@example.test>", 250).await;
    c.expect("RCPT TO:<c@bounce.test.org>", 250).await;
    c.expect("DATA", 354).await;
    assert_eq!(body(&mut c, "Subject: glob\r\n\r\nhi").await.code, 250);
    assert_eq!(
        stored(&srv).await[0]["recipients"],
        json!(["ok@example.test", "c@bounce.test.org"])
    );
    srv.stop().await;
}

// ----- the other stages, each with a reply ------------------------------------------------------

#[tokio::test]
async fn connect_replies_554_and_waits_for_quit_or_421_and_closes() {
    let srv = chaos_server(&[
        "connect:554:5.7.1:next=1:text=no service here",
        "connect:421:4.3.2:next=1",
    ])
    .await;
    let mut c = SmtpClient::connect_raw(srv.smtp).await;
    assert_reply(&c.reply().await, 554, "5.7.1 no service here");
    // RFC 5321 3.1: after a 554 greeting, 503 to everything but QUIT.
    c.expect("EHLO client.test", 503).await;
    c.expect("MAIL FROM:<alice@example.test>", 503).await;
    c.expect("QUIT", 221).await;
    assert!(c.closed().await);

    let mut c = SmtpClient::connect_raw(srv.smtp).await;
    assert_reply(
        &c.reply().await,
        421,
        "4.3.2 fault injected by chaos rule 2",
    );
    assert!(c.closed().await, "421 closes the connection");

    // Both rules are spent: the third connection is greeted.
    ehlo(&srv).await.expect("QUIT", 221).await;
    srv.stop().await;
}

#[tokio::test]
async fn ehlo_and_helo_refused_then_greeted() {
    let srv = chaos_server(&["ehlo:421:4.3.2:next=1", "ehlo:550:5.7.1:next=1"]).await;
    let mut c = SmtpClient::connect(srv.smtp).await;
    assert_eq!(c.cmd("EHLO client.test").await.code, 421);
    assert!(c.closed().await, "421 closes the connection");
    let mut c = SmtpClient::connect(srv.smtp).await;
    let r = c.cmd("HELO client.test").await;
    assert_reply(&r, 550, "5.7.1 fault injected by chaos rule 2");
    c.expect("MAIL FROM:<alice@example.test>", 503).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    srv.stop().await;
}

#[tokio::test]
async fn auth_refused_before_the_credentials_then_accepted() {
    let mut config = chaos_config(true);
    config.smtp.auth = fakemail::cli::SmtpAuth::Optional;
    config.service.chaos_rules =
        vec![fakemail::service::chaos::RuleSpec::parse("auth:454:4.7.0:next=1").unwrap()];
    let srv = TestServer::start_with(config, None).await;
    srv.register("alice@example.test").await;
    let mut c = ehlo(&srv).await;
    use base64::Engine as _;
    let plain = base64::engine::general_purpose::STANDARD
        .encode(format!("\0alice@example.test\0{PASSWORD}"));
    let r = c.cmd(&format!("AUTH PLAIN {plain}")).await;
    assert_reply(&r, 454, "4.7.0 fault injected by chaos rule 1");
    c.expect(&format!("AUTH PLAIN {plain}"), 235).await;
    srv.stop().await;
}

#[tokio::test]
async fn mail_refused_for_matching_senders_only() {
    let srv = chaos_server(&["mail:553:5.7.1:from=*@spam.test:text=sender blocked"]).await;
    let mut c = ehlo(&srv).await;
    let r = c.cmd("MAIL FROM:<bulk@SPAM.test>").await;
    assert_reply(&r, 553, "5.7.1 sender blocked");
    c.expect("RCPT TO:<bob@example.test>", 503).await;
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    srv.stop().await;
}

#[tokio::test]
async fn a_5xx_at_data_refuses_the_message_for_a_real_client() {
    let srv = chaos_server(&["data:554:5.6.0:text=content refused"]).await;
    let err = mailer(&srv)
        .send(email("bob@example.test", "refused"))
        .await
        .expect_err("the DATA is refused");
    assert!(err.is_permanent(), "{err}");
    assert_eq!(err.status().map(|c| c.to_string()), Some("554".into()));

    let mut c = ehlo(&srv).await;
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    c.expect("RCPT TO:<bob@example.test>", 250).await;
    assert_reply(&c.cmd("DATA").await, 554, "5.6.0 content refused");
    // The refusal ended the transaction, as a refused body does.
    c.expect("RCPT TO:<bob@example.test>", 503).await;
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    assert!(stored(&srv).await.is_empty());
    srv.stop().await;
}

// ----- delay, disconnect, throttle ------------------------------------------------------------

#[tokio::test]
async fn a_delay_holds_back_the_answer_and_then_it_comes() {
    let srv = chaos_server(&[
        "connect:delay=250ms:next=1",
        "rcpt:delay=250ms:next=1",
        "data:delay=250ms:next=1",
    ])
    .await;
    let t = Instant::now();
    let mut c = SmtpClient::connect(srv.smtp).await;
    assert!(t.elapsed() >= DELAY, "greeted after {:?}", t.elapsed());
    c.expect("EHLO client.test", 250).await;
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    let t = Instant::now();
    c.expect("RCPT TO:<bob@example.test>", 250).await;
    assert!(
        t.elapsed() >= DELAY,
        "RCPT answered after {:?}",
        t.elapsed()
    );
    c.expect("QUIT", 221).await;

    // A real client waits and the message goes through.
    let t = Instant::now();
    mailer(&srv)
        .send(email("bob@example.test", "late"))
        .await
        .expect("a delay is no failure");
    assert!(t.elapsed() >= DELAY, "sent after {:?}", t.elapsed());
    assert_eq!(stored(&srv).await[0]["subject"], "late");
    srv.stop().await;
}

#[tokio::test]
async fn a_disconnect_closes_with_no_reply() {
    let srv = chaos_server(&["connect:disconnect:next=1", "rcpt:disconnect:to=gone@*"]).await;
    let mut c = SmtpClient::connect_raw(srv.smtp).await;
    assert!(c.closed().await, "end of stream with no greeting");

    let mut c = ehlo(&srv).await;
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    c.send("RCPT TO:<gone@example.test>\r\n").await;
    assert!(c.closed().await, "end of stream with no reply to RCPT");

    let err = mailer(&srv)
        .send(email("gone@example.test", "lost"))
        .await
        .expect_err("the server hung up");
    assert_eq!(err.status(), None, "no reply code: {err}");
    mailer(&srv)
        .send(email("kept@example.test", "kept"))
        .await
        .expect("other recipients are untouched");
    let subjects: Vec<Value> = stored(&srv)
        .await
        .iter()
        .map(|m| m["subject"].clone())
        .collect();
    assert_eq!(subjects, [json!("kept")]);
    srv.stop().await;
}

#[tokio::test]
async fn a_throttle_slows_the_data_down_to_its_rate() {
    const RATE: u64 = 4_000;
    let srv = chaos_server(&[&format!("data:throttle={RATE}")]).await;
    let mut c = ehlo(&srv).await;
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    c.expect("RCPT TO:<bob@example.test>", 250).await;
    let mut text = String::from("Subject: slow link\r\n");
    while text.len() < 1_200 {
        text.push_str("\r\nSome text that takes its time over a slow link.");
    }
    // What goes over the wire after the 354: the text, CRLF, and the final dot line.
    let bytes = text.len() + 5;
    let t = Instant::now();
    c.expect("DATA", 354).await;
    assert_eq!(body(&mut c, &text).await.code, 250);
    let least = Duration::from_secs_f64(bytes as f64 / RATE as f64);
    assert!(
        t.elapsed() >= least,
        "{bytes} bytes at {RATE} B/s took {:?}, less than {least:?}",
        t.elapsed()
    );
    assert_eq!(stored(&srv).await[0]["subject"], "slow link");
    srv.stop().await;
}

// ----- triggers ---------------------------------------------------------------------------------

#[tokio::test]
async fn next_n_fails_exactly_n_times_then_succeeds() {
    let srv = chaos_server(&["mail:451:4.3.0:next=3"]).await;
    let mut c = ehlo(&srv).await;
    for _ in 0..3 {
        let r = c.cmd("MAIL FROM:<alice@example.test>").await;
        assert_eq!((r.code, r.status()), (451, Some("4.3.0")), "{r:?}");
    }
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    c.expect("RSET", 250).await;
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    let (_, v) = srv.admin("GET", "/api/v1/admin/chaos", None).await;
    assert_eq!(v["rules"][0]["fired"], 3, "{v}");
    srv.stop().await;
}

#[tokio::test]
async fn the_same_seed_gives_the_same_sequence_twice() {
    let srv = TestServer::start_chaos(true).await;
    let mut runs = Vec::new();
    for _ in 0..2 {
        // Setting the rules again starts the generator afresh from its seed.
        srv.set_rules(&["rcpt:451:50%:seed=42"]).await;
        let mut c = ehlo(&srv).await;
        c.expect("MAIL FROM:<alice@example.test>", 250).await;
        let mut codes = Vec::new();
        for i in 0..24 {
            codes.push(c.cmd(&format!("RCPT TO:<r{i}@example.test>")).await.code);
        }
        runs.push(codes);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(
        runs[0].contains(&451) && runs[0].contains(&250),
        "{:?}",
        runs[0]
    );
    srv.stop().await;
}

#[tokio::test]
async fn the_rate_limit_answers_421_above_its_figure_and_closes() {
    let srv = chaos_server(&["mail:max_per_minute=2"]).await;
    let mut c = ehlo(&srv).await;
    for _ in 0..2 {
        c.expect("MAIL FROM:<alice@example.test>", 250).await;
        c.expect("RSET", 250).await;
    }
    let r = c.cmd("MAIL FROM:<alice@example.test>").await;
    assert_eq!((r.code, r.status()), (421, Some("4.7.0")), "{r:?}");
    assert!(c.closed().await, "421 closes the connection");
    // Still within the minute, on a new connection too.
    let mut c = ehlo(&srv).await;
    assert_eq!(c.cmd("MAIL FROM:<alice@example.test>").await.code, 421);
    srv.stop().await;
}

// ----- stats and logs ---------------------------------------------------------------------------

#[tokio::test]
async fn admin_stats_count_the_faults_by_stage() {
    let off = TestServer::start_chaos(false).await;
    let (_, stats) = off.admin("GET", "/api/v1/admin/stats", None).await;
    let zero = json!({"connect": 0, "ehlo": 0, "auth": 0, "mail": 0, "rcpt": 0, "data": 0,
                      "api_send": 0});
    assert_eq!(
        stats["chaos"],
        json!({"enabled": false, "rules": 0, "faults": 0, "by_stage": zero})
    );
    off.stop().await;

    let srv = chaos_server(&[
        "connect:554:next=1",
        "rcpt:451:to=x@*",
        "data:554",
        "api_send:503:next=1",
    ])
    .await;
    let mut c = SmtpClient::connect_raw(srv.smtp).await;
    assert_eq!(c.reply().await.code, 554);
    c.expect("QUIT", 221).await;
    let mut c = ehlo(&srv).await;
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    c.expect("RCPT TO:<x@example.test>", 451).await;
    c.expect("RCPT TO:<y@example.test>", 250).await;
    c.expect("DATA", 554).await;
    let token = srv.user("alice@example.test").await;
    let body = json!({"to": ["bob@example.test"], "subject": "s", "text": "t"});
    let (s, _) = srv
        .call("POST", "/api/v1/messages", Some(&token), Some(body))
        .await;
    assert_eq!(s, 503);

    let (_, stats) = srv.admin("GET", "/api/v1/admin/stats", None).await;
    assert_eq!(
        stats["chaos"],
        json!({"enabled": true, "rules": 4, "faults": 4, "by_stage": {
            "connect": 1, "ehlo": 0, "auth": 0, "mail": 0, "rcpt": 1, "data": 1, "api_send": 1
        }})
    );
    assert_eq!(
        stats["smtp"]["rejected"], 2,
        "the refused RCPT and DATA: {stats}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_command_line_rule_fires_and_the_fault_is_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = serve_cmd(dir.path());
    cmd.args(["--chaos", "--chaos-rule", "connect:554:5.7.1:next=1"]);
    let mut p = Process::start(cmd);
    let mut c = SmtpClient::connect_raw(p.smtp).await;
    assert_eq!(c.reply().await.code, 554);
    let line = p.wait_for_log("chaos: fault injected");
    for field in ["connect", "rule=1", "connect:554:5.7.1:next=1"] {
        assert!(line.contains(field), "{field}: {line}");
    }
    c.expect("QUIT", 221).await;
    let mut c = SmtpClient::connect(p.smtp).await;
    c.expect("QUIT", 221).await;
    p.stop_with("TERM");
    assert_eq!(
        p.stderr().matches("fault injected").count(),
        1,
        "{}",
        p.stderr()
    );
}
