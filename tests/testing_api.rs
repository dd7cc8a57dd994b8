//! `fakemail::testing` as another crate's tests use it: a server started in-process, mail sent
//! to it over real SMTP, and the server's answers read back through the module's API (and
//! its HTTP API, to check the addresses and the admin token it hands out).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{SmtpClient, TIMEOUT};
use fakemail::testing::{Error, Match, TestServer};

/// Sends one message over SMTP; the server must accept it (250).
async fn send(smtp: SocketAddr, from: &str, to: &str, subject: &str, body: &str) {
    let mut c = SmtpClient::connect(smtp).await;
    c.expect("EHLO client.test", 250).await;
    let message = format!("From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n{body}\r\n");
    let r = c.mail(from, &[to], &message).await;
    assert_eq!(r.code, 250, "{r:?}");
    c.expect("QUIT", 221).await;
}

/// Waits until nothing listens on `addr` any more.
async fn refused(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr} still accepts connections"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn the_server_and_its_errors_can_cross_threads() {
    fn sendable<T: Send + Sync + 'static>() {}
    sendable::<TestServer>();
    sendable::<Error>();
}

#[tokio::test]
async fn wait_for_answers_at_once_with_a_message_already_there() {
    let server = TestServer::start().await.unwrap();
    send(
        server.smtp_addr(),
        "shop@example.test",
        "bob@example.test",
        "Your order",
        "Your confirmation code is 482913.\r\nTrack it at https://shop.example.test/t/1",
    )
    .await;
    // No time to wait at all: only a message already stored can answer.
    let msg = server
        .wait_for(
            Match::to("BOB@example.test").subject("your ORDER"),
            Duration::ZERO,
        )
        .await
        .unwrap();
    assert_eq!(msg.subject, "Your order");
    assert_eq!(msg.envelope_from, "shop@example.test");
    assert_eq!(msg.recipients, ["bob@example.test"]);
    assert_eq!(msg.from.address, "shop@example.test");
    assert_eq!(msg.to[0].to_string(), "bob@example.test");
    assert!(msg.text.as_deref().unwrap().contains("482913"));
    assert_eq!(msg.codes, ["482913"]);
    assert_eq!(msg.links, ["https://shop.example.test/t/1"]);
    assert_eq!(msg.header("subject"), Some("Your order"));
    assert!(msg.raw.starts_with(b"Received: "), "the server's trace");
    assert!(msg.html.is_none());
    for m in [
        Match::to("bob@example.test").from("shop@example.test"),
        Match::any().containing("482913"),
        Match::any().subject("order"),
    ] {
        let again = server.wait_for(m, Duration::ZERO).await.unwrap();
        assert_eq!(again.id, msg.id);
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn wait_for_answers_with_a_message_that_arrives_while_it_waits() {
    let server = std::sync::Arc::new(TestServer::start().await.unwrap());
    send(
        server.smtp_addr(),
        "shop@example.test",
        "carol@example.test",
        "Your order",
        "Not for bob.",
    )
    .await;
    let waiting = tokio::spawn({
        let server = server.clone();
        async move {
            server
                .wait_for(Match::to("bob@example.test"), TIMEOUT)
                .await
        }
    });
    // Give the wait time to find nothing and listen (were it slower, the store would answer
    // it instead, and the test still holds).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "no message for bob yet");
    send(
        server.smtp_addr(),
        "shop@example.test",
        "bob@example.test",
        "Sign-in code",
        "Your code: 771204",
    )
    .await;
    let msg = waiting.await.unwrap().unwrap();
    assert_eq!(msg.subject, "Sign-in code");
    assert_eq!(msg.codes, ["771204"]);
}

#[tokio::test]
async fn a_wait_that_times_out_names_its_filter_and_what_arrived_instead() {
    let server = TestServer::start().await.unwrap();
    let filter = Match::to("bob@example.test").subject("Your order");
    let e = server
        .wait_for(filter.clone(), Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "no message matching Match::to(\"bob@example.test\").subject(\"Your order\") \
         arrived within 50ms; the server holds no message"
    );
    send(
        server.smtp_addr(),
        "shop@example.test",
        "carol@example.test",
        "Your order",
        "For carol.",
    )
    .await;
    let e = server
        .wait_for(filter.clone(), Duration::from_millis(50))
        .await
        .unwrap_err();
    match &e {
        Error::Timeout {
            filter: f,
            waited,
            captured,
            more,
        } => {
            assert_eq!(**f, filter);
            assert_eq!(*waited, Duration::from_millis(50));
            assert_eq!(
                captured,
                &["\"Your order\" from shop@example.test to carol@example.test"]
            );
            assert!(!more);
        }
        other => panic!("not a timeout: {other}"),
    }
    // What a test that returns the error with `?` prints.
    assert!(
        format!("{e:?}").ends_with(
            "the server holds 1 message: \"Your order\" from shop@example.test to carol@example.test"
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn messages_are_listed_newest_first_and_clear_removes_them() {
    let server = TestServer::start().await.unwrap();
    assert!(server.messages().await.unwrap().is_empty());
    for i in 1..=3 {
        send(
            server.smtp_addr(),
            "app@example.test",
            &format!("user{i}@example.test"),
            &format!("message {i}"),
            "Hello.",
        )
        .await;
    }
    let all = server.messages().await.unwrap();
    let subjects: Vec<&str> = all.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(subjects, ["message 3", "message 2", "message 1"]);
    assert!(all[0].id > all[1].id && all[1].id > all[2].id);
    assert_eq!(all[2].recipients, ["user1@example.test"]);

    // The HTTP API the server hands out shows the same mail with the same token.
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/admin/messages", server.http_url());
    let res = client
        .get(&url)
        .bearer_auth(server.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page: serde_json::Value = res.json().await.unwrap();
    let ids: Vec<String> = all.iter().map(|m| m.id.to_string()).collect();
    let listed: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ids);
    let res = client.get(&url).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(res.status(), 401);

    assert_eq!(server.clear().await.unwrap(), 3);
    assert!(server.messages().await.unwrap().is_empty());
    assert!(matches!(
        server.wait_for(Match::any(), Duration::ZERO).await,
        Err(Error::Timeout { .. })
    ));
    assert_eq!(server.clear().await.unwrap(), 0);
    // Still serving: mail after a clear is captured as before.
    send(
        server.smtp_addr(),
        "app@example.test",
        "user4@example.test",
        "message 4",
        "Hello.",
    )
    .await;
    let after = server.messages().await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].subject, "message 4");
}

#[tokio::test]
async fn a_fault_injection_rule_makes_smtp_answer_the_fault() {
    let server = TestServer::builder().chaos(true).start().await.unwrap();
    let id = server.add_rule("rcpt:451:4.3.0:next=1").unwrap();
    let mut c = SmtpClient::connect(server.smtp_addr()).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("MAIL FROM:<app@example.test>", 250).await;
    let r = c.expect("RCPT TO:<bob@example.test>", 451).await;
    assert_eq!(r.status(), Some("4.3.0"), "{r:?}");
    // `next=1`: only the first.
    c.expect("RCPT TO:<bob@example.test>", 250).await;
    c.expect("RSET", 250).await;

    server.remove_rule(id).unwrap();
    server.add_rule("mail:550:5.7.1:text=go away").unwrap();
    let r = c.expect("MAIL FROM:<app@example.test>", 550).await;
    assert!(r.text().contains("go away"), "{r:?}");
    server.clear_rules().unwrap();
    c.expect("MAIL FROM:<app@example.test>", 250).await;

    let e = server.add_rule("nonsense").unwrap_err();
    assert!(
        matches!(&e, Error::Rule { rule, .. } if rule == "nonsense"),
        "{e}"
    );
}

#[tokio::test]
async fn rules_given_at_start_are_in_force_and_need_fault_injection() {
    let server = TestServer::builder()
        .rule("mail:452:4.3.1")
        .start()
        .await
        .unwrap();
    let mut c = SmtpClient::connect(server.smtp_addr()).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("MAIL FROM:<app@example.test>", 452).await;

    let e = TestServer::builder()
        .rule("mail:999")
        .start()
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("fault-injection rule `mail:999` refused: "),
        "{e}"
    );

    let off = TestServer::start().await.unwrap();
    let e = off.add_rule("mail:452").unwrap_err();
    assert!(e.to_string().contains("--chaos"), "{e}");
    assert!(off.clear_rules().is_err());
}

#[tokio::test]
async fn dropping_the_server_stops_it_and_removes_its_store() {
    let server = TestServer::start().await.unwrap();
    let (http, smtp) = (server.http_addr(), server.smtp_addr());
    let pop3 = server.pop3_addr().expect("POP3 is on");
    let dir = server.data_dir().to_path_buf();
    assert!(dir.is_dir());
    tokio::net::TcpStream::connect(smtp).await.unwrap();
    tokio::net::TcpStream::connect(pop3).await.unwrap();
    drop(server);
    refused(http).await;
    refused(smtp).await;
    refused(pop3).await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while dir.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{dir:?} is still there"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn shutdown_returns_once_the_server_has_stopped_and_flushed() {
    let server = TestServer::builder()
        .admin_token("a-token-of-the-test's-own")
        .start()
        .await
        .unwrap();
    assert_eq!(server.admin_token(), "a-token-of-the-test's-own");
    send(
        server.smtp_addr(),
        "app@example.test",
        "bob@example.test",
        "last",
        "Bye.",
    )
    .await;
    let (http, smtp) = (server.http_addr(), server.smtp_addr());
    let dir = server.data_dir().to_path_buf();
    server.shutdown().await.unwrap();
    // No polling: by now the listeners are closed, the store flushed and its dir removed
    // (which the server does only after the final flush).
    assert!(tokio::net::TcpStream::connect(http).await.is_err());
    assert!(tokio::net::TcpStream::connect(smtp).await.is_err());
    assert!(!dir.exists(), "{dir:?}");
}

#[tokio::test]
async fn the_test_server_serves_imap_too() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let server = TestServer::start().await.unwrap();
    let imap = server.imap_addr().expect("IMAP is on");
    let mut greeting = String::new();
    let stream = tokio::net::TcpStream::connect(imap).await.unwrap();
    tokio::time::timeout(TIMEOUT, BufReader::new(stream).read_line(&mut greeting))
        .await
        .unwrap()
        .unwrap();
    assert!(greeting.starts_with("* OK [CAPABILITY IMAP4"), "{greeting}");
}
