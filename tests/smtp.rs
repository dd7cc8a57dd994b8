//! End-to-end SMTP tests against the real server on 127.0.0.1:0: raw dialogues for the
//! protocol (every reply code, pipelining, dot-stuffing, limits, shutdown), a real SMTP client
//! (lettre), the mail read back over the REST API, and durability across `kill -9` of the real
//! binary.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

/// The test config with a small message limit and few recipients, to reach both.
fn small_limits() -> fakemail::config::Config {
    let mut c = test_config();
    c.service.max_message_size = 4096;
    c.service.max_recipients = 3;
    c
}

/// A client that has said EHLO.
async fn ehlo(srv: &TestServer) -> SmtpClient {
    let mut c = SmtpClient::connect(srv.smtp).await;
    c.expect("EHLO client.test", 250).await;
    c
}

/// The source of the newest message in the user's inbox.
async fn newest_source(srv: &TestServer, token: &str) -> String {
    let m = &inbox(srv, token).await[0];
    raw(srv, token, &m["id"]).await
}

/// A user's copy as a full message.
async fn full(srv: &TestServer, token: &str, id: &Value) -> Value {
    let path = format!("/api/v1/messages/{}", id.as_str().unwrap());
    let (s, message) = srv.call("GET", &path, Some(token), None).await;
    assert_eq!(s, 200, "{message}");
    message
}

/// The source of a user's copy.
async fn raw(srv: &TestServer, token: &str, id: &Value) -> String {
    let r = srv
        .reply(
            "GET",
            &format!("/api/v1/messages/{}/raw", id.as_str().unwrap()),
            Some(token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.text
}

const HELLO: &str = "From: Alice <alice@example.test>\r\nTo: bob@example.test\r\n\
Subject: Hello over SMTP\r\nMessage-ID: <hello@example.test>\r\n\r\nHi Bob,\r\nsee you.\r\n";

// ----- the dialogue --------------------------------------------------------------------------

#[tokio::test]
async fn a_message_sent_over_smtp_is_in_the_inbox_over_rest() {
    let srv = TestServer::start().await;
    let bob = srv.user("bob@example.test").await;
    let mut c = SmtpClient::connect(srv.smtp).await;
    let ehlo = c.expect("EHLO client.test", 250).await;
    for ext in [
        "PIPELINING",
        "8BITMIME",
        "SMTPUTF8",
        "SIZE 10485760",
        "ENHANCEDSTATUSCODES",
    ] {
        assert!(ehlo.lines.iter().any(|l| l == ext), "{ext}: {ehlo:?}");
    }
    let r = c
        .mail("alice@example.test", &["bob@example.test"], HELLO)
        .await;
    assert_eq!((r.code, r.status()), (250, Some("2.0.0")), "{r:?}");
    c.expect("QUIT", 221).await;
    assert!(c.closed().await);

    let messages = inbox(&srv, &bob).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(m["subject"], "Hello over SMTP");
    assert_eq!(m["from"]["address"], "alice@example.test");
    assert_eq!(m["read"], false);
    let source = raw(&srv, &bob, &m["id"]).await;
    let (received, rest) = source.split_once("\r\nFrom: ").unwrap();
    assert!(
        received.starts_with("Received: from client.test ([127.0.0.1])\r\n\tby localhost"),
        "{source}"
    );
    assert!(received.contains("with ESMTP;"), "{received}");
    assert_eq!(
        format!("From: {rest}"),
        HELLO,
        "the rest is byte for byte as sent"
    );
    srv.stop().await;
}

#[tokio::test]
async fn helo_vrfy_help_noop_rset_and_quit() {
    let srv = TestServer::start().await;
    let mut c = SmtpClient::connect(srv.smtp).await;
    let helo = c.expect("HELO client.test", 250).await;
    assert_eq!(helo.lines.len(), 1, "HELO lists no extensions: {helo:?}");
    assert_eq!(
        c.expect("VRFY bob@example.test", 252).await.status(),
        Some("2.5.0")
    );
    assert_eq!(c.expect("HELP", 214).await.status(), Some("2.0.0"));
    c.expect("NOOP", 250).await;
    c.expect("MAIL FROM:<a@example.test>", 250).await;
    c.expect("RCPT TO:<b@example.test>", 250).await;
    c.expect("RSET", 250).await;
    c.expect("DATA", 503).await;
    let bye = c.expect("quit", 221).await;
    assert_eq!(bye.status(), Some("2.0.0"));
    assert!(c.closed().await);
    srv.stop().await;
}

#[tokio::test]
async fn every_error_reply_code() {
    let srv = TestServer::start_with(small_limits(), None).await;
    let mut c = SmtpClient::connect(srv.smtp).await;
    let check = |r: SmtpReply, code: u16, status: &str| {
        assert_eq!((r.code, r.status()), (code, Some(status)), "{r:?}");
    };
    // 503: out of sequence.
    check(c.cmd("MAIL FROM:<a@example.test>").await, 503, "5.5.1");
    // 500: unknown command; 501: bad arguments.
    check(c.cmd("FROBNICATE").await, 500, "5.5.2");
    c.expect("EHLO", 501).await;
    c.expect("EHLO client.test", 250).await;
    check(c.cmd("MAIL FROM:<not an address>").await, 501, "5.1.7");
    check(
        c.cmd("MAIL FROM:<a@example.test> SIZE=big").await,
        501,
        "5.5.4",
    );
    // 552: a declared SIZE over the limit.
    check(
        c.cmd("MAIL FROM:<a@example.test> SIZE=4097").await,
        552,
        "5.3.4",
    );
    c.expect("MAIL FROM:<a@example.test> SIZE=4096", 250).await;
    check(c.cmd("RCPT TO:<bob@>").await, 501, "5.1.3");
    check(
        c.cmd("RCPT TO:<b@example.test> NOTIFY=NEVER").await,
        555,
        "5.5.4",
    );
    // 452: too many recipients (3 allowed).
    for n in 0..3 {
        c.expect(&format!("RCPT TO:<r{n}@example.test>"), 250).await;
    }
    check(c.cmd("RCPT TO:<r3@example.test>").await, 452, "4.5.3");
    // 552: a body over the limit, read to its end; the session goes on.
    c.expect("DATA", 354).await;
    c.send(format!("Subject: big\r\n\r\n{}\r\n.\r\n", "x".repeat(5000)))
        .await;
    check(c.reply().await, 552, "5.3.4");
    c.expect("NOOP", 250).await;
    srv.stop().await;
}

#[tokio::test]
async fn the_admin_stats_count_connections_and_accepted_and_refused_messages() {
    let srv = TestServer::start().await;
    srv.service.set_admin_token("stats-admin-token");
    let smtp_stats = || async {
        let (s, stats) = srv
            .call(
                "GET",
                "/api/v1/admin/stats",
                Some("stats-admin-token"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{stats}");
        stats["smtp"].clone()
    };
    assert_eq!(
        smtp_stats().await,
        serde_json::json!({"connections": 0, "accepted": 0, "rejected": 0})
    );
    let mut c = ehlo(&srv).await;
    // Refused: a bad recipient and DATA out of sequence; not counted: the unknown command.
    c.expect("FROBNICATE", 500).await;
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    c.expect("RCPT TO:<bob@>", 501).await;
    c.expect("DATA", 503).await;
    c.expect("RCPT TO:<bob@example.test>", 250).await;
    c.expect("DATA", 354).await;
    c.send(HELLO.to_owned() + ".\r\n").await;
    assert_eq!(c.reply().await.code, 250);
    let mut second = ehlo(&srv).await;
    second.expect("QUIT", 221).await;
    assert_eq!(
        smtp_stats().await,
        serde_json::json!({"connections": 2, "accepted": 1, "rejected": 2})
    );
    assert_eq!(
        srv.service.stats().smtp_replies(),
        [
            (220, 2),
            (221, 1),
            (250, 5),
            (354, 1),
            (500, 1),
            (501, 1),
            (503, 1)
        ],
        "every reply counted by its code, the greetings too"
    );
    srv.stop().await;
}

#[tokio::test]
async fn an_over_long_line_gets_500_and_the_connection_survives() {
    let srv = TestServer::start().await;
    let bob = srv.user("bob@example.test").await;
    let mut c = ehlo(&srv).await;
    let r = c.cmd(&format!("NOOP {}", "x".repeat(5000))).await;
    assert_eq!((r.code, r.status()), (500, Some("5.5.2")), "{r:?}");
    c.expect("NOOP", 250).await;
    // In a body, long lines are accepted (within the size limit).
    let long = "y".repeat(3000);
    let body = format!("Subject: long line\r\n\r\n{long}\r\n");
    let r = c.mail("a@example.test", &["bob@example.test"], &body).await;
    assert_eq!(r.code, 250, "{r:?}");
    assert!(newest_source(&srv, &bob).await.contains(&long));
    srv.stop().await;
}

#[tokio::test]
async fn binary_garbage_gets_error_replies_and_breaks_nothing() {
    let srv = TestServer::start().await;
    let mut c = ehlo(&srv).await;
    let mut garbage: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    garbage.extend_from_slice(b"\r\nNOOP\r\n");
    let lines = garbage.iter().filter(|b| **b == b'\n').count();
    c.send(&garbage).await;
    let mut last = c.reply().await;
    for _ in 1..lines {
        last = c.reply().await;
        assert!(last.code == 250 || last.code >= 500, "{last:?}");
    }
    assert_eq!(last.code, 250, "the NOOP after the garbage: {last:?}");
    let mut other = ehlo(&srv).await;
    other.expect("NOOP", 250).await;
    srv.stop().await;
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let srv = TestServer::start().await;
    let bob = srv.user("bob@example.test").await;
    let carol = srv.user("carol@example.test").await;
    let mut c = SmtpClient::connect(srv.smtp).await;
    // Everything up to DATA in one write (RFC 2920), then the body with the next transaction.
    c.send(
        "EHLO client.test\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<bob@example.test>\r\n\
         RCPT TO:<nobody@>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n",
    )
    .await;
    c.replies(&[250, 250, 250, 501, 250, 354]).await;
    c.send(
        "Subject: one\r\n\r\nfirst\r\n.\r\nMAIL FROM:<a@example.test>\r\n\
         RCPT TO:<bob@example.test>\r\nDATA\r\n",
    )
    .await;
    c.replies(&[250, 250, 250, 354]).await;
    c.send("Subject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n").await;
    c.replies(&[250, 221]).await;
    assert!(c.closed().await);
    let subjects: Vec<_> = inbox(&srv, &bob)
        .await
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(subjects, ["two", "one"]);
    assert_eq!(inbox(&srv, &carol).await.len(), 1);
    srv.stop().await;
}

#[tokio::test]
async fn dot_stuffed_lines_are_unstuffed() {
    let srv = TestServer::start().await;
    let bob = srv.user("bob@example.test").await;
    let mut c = ehlo(&srv).await;
    c.expect("MAIL FROM:<a@example.test>", 250).await;
    c.expect("RCPT TO:<bob@example.test>", 250).await;
    c.expect("DATA", 354).await;
    c.send("Subject: dots\r\n\r\n..\r\n..leading dot\r\n...\r\nnot. the end\r\n.\r\n")
        .await;
    assert_eq!(c.reply().await.code, 250);
    let source = newest_source(&srv, &bob).await;
    assert!(
        source.ends_with("Subject: dots\r\n\r\n.\r\n.leading dot\r\n..\r\nnot. the end\r\n"),
        "{source}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn eight_bit_and_utf8_headers_and_addresses() {
    let srv = TestServer::start().await;
    let zoe = srv.user("zoë@example.test").await;
    let mut c = ehlo(&srv).await;
    c.expect("MAIL FROM:<andré@example.test> SMTPUTF8 BODY=8BITMIME", 250)
        .await;
    c.expect("RCPT TO:<zoë@example.test>", 250).await;
    c.expect("DATA", 354).await;
    c.send(
        "From: André <andré@example.test>\r\nTo: zoë@example.test\r\nSubject: Grüße, 你好\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Ça marche.\r\n.\r\n",
    )
    .await;
    assert_eq!(c.reply().await.code, 250);
    let m = &inbox(&srv, &zoe).await[0];
    assert_eq!(m["subject"], "Grüße, 你好");
    assert_eq!(m["from"]["address"], "andré@example.test");
    let full = full(&srv, &zoe, &m["id"]).await;
    assert_eq!(full["text"].as_str().map(str::trim_end), Some("Ça marche."));
    srv.stop().await;
}

// ----- recipients ----------------------------------------------------------------------------

#[tokio::test]
async fn envelope_only_recipients_get_the_message_and_nobody_sees_them() {
    let srv = TestServer::start().await;
    let bob = srv.user("bob@example.test").await;
    let mut c = ehlo(&srv).await;
    // dave is only in the envelope; the Bcc header a client may leave in is removed.
    let body = "From: alice@example.test\r\nTo: bob@example.test\r\n\
                Bcc: dave@example.test\r\nSubject: secret\r\n\r\nhi\r\n";
    let r = c
        .mail(
            "alice@example.test",
            &["bob@example.test", "dave@example.test"],
            body,
        )
        .await;
    assert_eq!(r.code, 250);
    let dave = srv.user("dave@example.test").await;
    for token in [&bob, &dave] {
        let m = &inbox(&srv, token).await[0];
        assert_eq!(m["subject"], "secret");
        let source = raw(&srv, token, &m["id"]).await;
        assert!(
            !source.contains("dave"),
            "a recipient sees the Bcc: {source}"
        );
        let copy = full(&srv, token, &m["id"]).await;
        assert!(copy.get("bcc").is_none(), "{copy}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn mail_to_addresses_without_accounts_is_kept() {
    let srv = TestServer::start().await;
    let mut c = ehlo(&srv).await;
    let r = c
        .mail(
            "a@example.test",
            &["later@example.test", "Postmaster"],
            HELLO,
        )
        .await;
    assert_eq!(r.code, 250);
    let later = srv.user("later@example.test").await;
    assert_eq!(inbox(&srv, &later).await.len(), 1);
    srv.stop().await;
}

// ----- connections ---------------------------------------------------------------------------

#[tokio::test]
async fn connections_over_the_limit_get_421() {
    let mut config = test_config();
    config.smtp.max_connections = 2;
    let srv = TestServer::start_with(config, None).await;
    let mut first = ehlo(&srv).await;
    let _second = ehlo(&srv).await;
    let mut third = SmtpClient::connect_raw(srv.smtp).await;
    let r = third.reply().await;
    assert_eq!((r.code, r.status()), (421, Some("4.7.0")), "{r:?}");
    assert!(third.closed().await);
    // A slot frees up when a client leaves.
    first.expect("QUIT", 221).await;
    assert!(first.closed().await);
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let mut next = SmtpClient::connect_raw(srv.smtp).await;
        let r = next.reply().await;
        if r.code == 220 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no slot freed: {r:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    srv.stop().await;
}

#[tokio::test]
async fn an_idle_client_gets_421_and_is_disconnected() {
    let mut config = test_config();
    config.smtp.idle_timeout = Duration::from_millis(300);
    let srv = TestServer::start_with(config, None).await;
    let mut c = ehlo(&srv).await;
    let r = c.reply().await;
    assert_eq!((r.code, r.status()), (421, Some("4.4.2")), "{r:?}");
    assert!(c.closed().await);
    srv.stop().await;
}

#[tokio::test]
async fn shutdown_says_421_to_idle_sessions_and_finishes_a_message_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start_with(test_config(), Some(dir.path())).await;
    let mut idle = ehlo(&srv).await;
    let mut busy = ehlo(&srv).await;
    busy.expect("MAIL FROM:<a@example.test>", 250).await;
    busy.expect("RCPT TO:<late@example.test>", 250).await;
    busy.expect("DATA", 354).await;
    busy.send("Subject: in flight\r\n\r\nfirst half\r\n").await;
    let stopping = tokio::spawn(srv.stop());
    let r = idle.reply().await;
    assert_eq!((r.code, r.status()), (421, Some("4.3.2")), "{r:?}");
    assert!(idle.closed().await);
    busy.send("second half\r\n.\r\n").await;
    assert_eq!(
        busy.reply().await.code,
        250,
        "the message in flight is taken"
    );
    let r = busy.cmd("NOOP").await;
    assert_eq!(r.code, 421, "{r:?}");
    stopping.await.unwrap();

    let again = TestServer::start_with(test_config(), Some(dir.path())).await;
    let late = again.user("late@example.test").await;
    assert_eq!(inbox(&again, &late).await[0]["subject"], "in flight");
    again.stop().await;
}

#[tokio::test]
async fn a_rest_send_answered_201_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let p = Process::start(serve_cmd(dir.path()));
    let alice = p.user("alice@example.test").await;
    let body = serde_json::json!({"to": ["durable@example.test"], "subject": "Sent over REST", "text": "Hi"});
    let (s, sent) = p
        .call("POST", "/api/v1/messages", Some(&alice), Some(body))
        .await;
    assert_eq!(s, 201, "{sent}");
    // The 201 alone must mean the message is on disk.
    p.signal("KILL");
    drop(p);

    let again = TestServer::start_with(test_config(), Some(dir.path())).await;
    let token = again.user("durable@example.test").await;
    assert_eq!(inbox(&again, &token).await[0]["subject"], "Sent over REST");
    again.stop().await;
}

// ----- STARTTLS ------------------------------------------------------------------------------

/// A certificate for `localhost` and 127.0.0.1 in PEM files, and a TLS client that trusts it
/// and nothing else.
struct TestCert {
    _dir: tempfile::TempDir,
    files: fakemail::smtp::tls::TlsFiles,
    connector: tokio_rustls::TlsConnector,
}

fn test_cert() -> TestCert {
    use tokio_rustls::rustls;
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = fakemail::smtp::tls::TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    std::fs::write(&files.cert, made.cert.pem()).unwrap();
    std::fs::write(&files.key, made.signing_key.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TestCert {
        _dir: dir,
        files,
        connector: tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)),
    }
}

/// Sends STARTTLS (and whatever `extra` follows it in the same write), does the handshake,
/// verifying the server's certificate, and returns the client over TLS.
async fn starttls(
    mut c: SmtpClient,
    connector: &tokio_rustls::TlsConnector,
    extra: &str,
) -> SmtpClient<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    c.send(format!("STARTTLS\r\n{extra}")).await;
    let r = c.reply().await;
    assert_eq!((r.code, r.status()), (220, Some("2.0.0")), "{r:?}");
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio::time::timeout(TIMEOUT, connector.connect(name, c.into_inner()))
        .await
        .expect("handshake in time")
        .expect("the server's certificate is the configured one");
    SmtpClient::over(tls)
}

#[tokio::test]
async fn starttls_with_the_configured_certificate_then_send() {
    let cert = test_cert();
    let mut config = test_config();
    config.smtp.tls = Some(cert.files.clone());
    let srv = TestServer::start_with(config, None).await;
    let bob = srv.user("bob@example.test").await;
    let mut c = SmtpClient::connect(srv.smtp).await;
    let ehlo = c.expect("EHLO client.test", 250).await;
    assert!(ehlo.lines.iter().any(|l| l == "STARTTLS"), "{ehlo:?}");
    c.expect("MAIL FROM:<a@example.test>", 250).await;
    let mut c = starttls(c, &cert.connector, "").await;
    // RFC 3207 4.2: the session starts over; the client must say EHLO again.
    c.expect("RCPT TO:<bob@example.test>", 503).await;
    c.expect("MAIL FROM:<a@example.test>", 503).await;
    let ehlo = c.expect("EHLO client.test", 250).await;
    assert!(!ehlo.lines.iter().any(|l| l == "STARTTLS"), "{ehlo:?}");
    c.expect("STARTTLS", 503).await;
    let r = c
        .mail("alice@example.test", &["bob@example.test"], HELLO)
        .await;
    assert_eq!(r.code, 250, "{r:?}");
    c.expect("QUIT", 221).await;
    let source = newest_source(&srv, &bob).await;
    assert!(source.contains("with ESMTPS;"), "{source}");
    srv.stop().await;
}

#[tokio::test]
async fn plain_text_pipelined_after_starttls_is_dropped() {
    let cert = test_cert();
    let mut config = test_config();
    config.smtp.tls = Some(cert.files.clone());
    let srv = TestServer::start_with(config, None).await;
    let mut c = SmtpClient::connect(srv.smtp).await;
    c.expect("EHLO client.test", 250).await;
    // A man in the middle could add commands after STARTTLS; they must not run inside TLS.
    let mut c = starttls(c, &cert.connector, "MAIL FROM:<injected@example.test>\r\n").await;
    let r = c.expect("EHLO client.test", 250).await;
    assert!(r.lines[0].contains("greets client.test"), "{r:?}");
    c.expect("RCPT TO:<bob@example.test>", 503).await;
    srv.stop().await;
}

#[tokio::test]
async fn a_failed_handshake_costs_only_that_connection() {
    let srv = TestServer::start().await;
    let mut c = SmtpClient::connect(srv.smtp).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("STARTTLS", 220).await;
    c.send("this is not a TLS client hello\r\n").await;
    // The server may answer with a TLS alert; then it closes.
    let mut rest = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut c.io, &mut rest);
    let _ = tokio::time::timeout(TIMEOUT, read)
        .await
        .expect("the server closes the connection");
    let mut next = SmtpClient::connect(srv.smtp).await;
    next.expect("NOOP", 250).await;
    srv.stop().await;
}

#[test]
fn bad_tls_files_stop_start_up_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&key, "not a key").unwrap();
    let mut cmd = serve_cmd(&dir.path().join("data"));
    cmd.arg("--tls-cert")
        .arg(&missing)
        .arg("--tls-key")
        .arg(&key);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("missing-cert.pem") && out.stderr.contains("certificate"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("listening"), "{}", out.stdout);

    let cert = test_cert();
    let mut cmd = serve_cmd(&dir.path().join("data"));
    cmd.arg("--tls-cert")
        .arg(&cert.files.cert)
        .arg("--tls-key")
        .arg(&key);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("key.pem"), "{}", out.stderr);

    let mut cmd = serve_cmd(&dir.path().join("data"));
    cmd.arg("--tls-cert").arg(&cert.files.cert);
    let out = run(cmd);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--tls-cert needs --tls-key: {out:?}"
    );
    assert!(out.stderr.contains("--tls-key"), "{}", out.stderr);
}

// ----- AUTH ----------------------------------------------------------------------------------

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// `AUTH PLAIN` with an initial response for `user` and `password`.
fn auth_plain(user: &str, password: &str) -> String {
    format!("AUTH PLAIN {}", b64(&format!("\0{user}\0{password}")))
}

/// A server with AUTH in `mode`, and alice's account.
async fn with_auth(mode: fakemail::cli::SmtpAuth) -> TestServer {
    let mut config = test_config();
    config.smtp.auth = mode;
    let srv = TestServer::start_with(config, None).await;
    srv.register("alice@example.test").await;
    srv
}

#[tokio::test]
async fn auth_plain_and_login_with_an_account() {
    let srv = with_auth(fakemail::cli::SmtpAuth::Optional).await;
    let mut c = ehlo(&srv).await;
    let plain = b64(&format!("\0alice@example.test\0{PASSWORD}"));
    let r = c.cmd(&format!("AUTH PLAIN {plain}")).await;
    assert_eq!((r.code, r.status()), (235, Some("2.7.0")), "{r:?}");
    c.expect("AUTH PLAIN", 503).await;

    let mut c = ehlo(&srv).await;
    assert_eq!(c.expect("AUTH PLAIN", 334).await.lines, [""]);
    c.expect(&plain, 235).await;

    let mut c = ehlo(&srv).await;
    assert_eq!(c.expect("AUTH LOGIN", 334).await.lines, ["VXNlcm5hbWU6"]);
    // Addresses match in any letter case, as at the REST login.
    assert_eq!(
        c.expect(&b64("ALICE@example.test"), 334).await.lines,
        ["UGFzc3dvcmQ6"]
    );
    c.expect(&b64(PASSWORD), 235).await;
    srv.stop().await;
}

#[tokio::test]
async fn wrong_credentials_get_535_then_454_and_the_session_goes_on() {
    let srv = with_auth(fakemail::cli::SmtpAuth::Optional).await;
    let mut c = ehlo(&srv).await;
    let wrong = c
        .cmd(&auth_plain("alice@example.test", "not the password"))
        .await;
    assert_eq!(
        (wrong.code, wrong.status()),
        (535, Some("5.7.8")),
        "{wrong:?}"
    );
    let unknown = c.cmd(&auth_plain("nobody@example.test", PASSWORD)).await;
    assert_eq!(
        unknown.code, 535,
        "an unknown user answers like a wrong password"
    );
    c.expect("AUTH LOGIN", 334).await;
    c.expect("*", 501).await;
    // The REST login's limit: 5 failures per address in 15 minutes.
    for _ in 0..4 {
        c.expect("AUTH LOGIN", 334).await;
        c.expect(&b64("alice@example.test"), 334).await;
        c.cmd(&b64("wrong password")).await;
    }
    let locked = c.cmd(&auth_plain("alice@example.test", PASSWORD)).await;
    assert_eq!(
        (locked.code, locked.status()),
        (454, Some("4.7.0")),
        "{locked:?}"
    );
    c.expect("NOOP", 250).await;
    c.expect("MAIL FROM:<a@example.test>", 250).await;
    srv.stop().await;
}

#[tokio::test]
async fn required_auth_refuses_mail_before_auth_and_off_hides_it() {
    let srv = with_auth(fakemail::cli::SmtpAuth::Required).await;
    let mut c = ehlo(&srv).await;
    let r = c.cmd("MAIL FROM:<alice@example.test>").await;
    assert_eq!((r.code, r.status()), (530, Some("5.7.0")), "{r:?}");
    c.expect(&auth_plain("alice@example.test", PASSWORD), 235)
        .await;
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    srv.stop().await;

    let srv = with_auth(fakemail::cli::SmtpAuth::Off).await;
    let mut c = SmtpClient::connect(srv.smtp).await;
    let ehlo = c.expect("EHLO client.test", 250).await;
    assert!(
        !ehlo.lines.iter().any(|l| l.starts_with("AUTH")),
        "{ehlo:?}"
    );
    c.expect(&auth_plain("alice@example.test", PASSWORD), 502)
        .await;
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    srv.stop().await;
}

#[tokio::test]
async fn mail_from_an_authenticated_user_lands_in_its_sent_with_the_bcc_list() {
    let srv = with_auth(fakemail::cli::SmtpAuth::Optional).await;
    let alice = srv.login("alice@example.test").await;
    let bob = srv.user("bob@example.test").await;
    let mut c = ehlo(&srv).await;
    c.expect(&auth_plain("alice@example.test", PASSWORD), 235)
        .await;
    let body = "From: Alice <alice@example.test>\r\nTo: bob@example.test\r\n\
                Subject: with a blind copy\r\n\r\nhi\r\n";
    let r = c
        .mail(
            "alice@example.test",
            &["bob@example.test", "hidden@example.test"],
            body,
        )
        .await;
    assert_eq!(r.code, 250);

    let sent = mailbox(&srv, &alice, "sent").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["read"], true);
    let own = full(&srv, &alice, &sent[0]["id"]).await;
    assert_eq!(
        own["bcc"],
        serde_json::json!([{"name": null, "address": "hidden@example.test"}]),
        "only the sender's copy lists the envelope-only recipient: {own}"
    );
    assert!(mailbox(&srv, &alice, "inbox").await.is_empty());
    let source = newest_source(&srv, &bob).await;
    assert!(source.contains("with ESMTPA;"), "{source}");
    assert!(!source.contains("hidden"), "{source}");

    // Without AUTH, nobody's `sent` gets a copy.
    let mut anon = ehlo(&srv).await;
    let r = anon
        .mail("alice@example.test", &["bob@example.test"], body)
        .await;
    assert_eq!(r.code, 250);
    assert_eq!(mailbox(&srv, &alice, "sent").await.len(), 1);
    assert_eq!(inbox(&srv, &bob).await.len(), 2);
    srv.stop().await;
}

// ----- a real client -------------------------------------------------------------------------

#[tokio::test]
async fn lettre_sends_plain_mail() {
    use lettre::{AsyncTransport, Message};
    let srv = TestServer::start().await;
    let bob = srv.user("bob@example.test").await;
    let mailer = lettre_mailer(srv.smtp).build();
    let email = Message::builder()
        .from("Alice <alice@example.test>".parse().unwrap())
        .to("bob@example.test".parse().unwrap())
        .bcc("hidden@example.test".parse().unwrap())
        .subject("From lettre")
        .body(String::from("Sent by a real SMTP client.\n.leading dot\n"))
        .unwrap();
    let response = mailer.send(email).await.expect("lettre sends");
    assert_eq!(response.code().to_string(), "250");
    let m = &inbox(&srv, &bob).await[0];
    assert_eq!(m["subject"], "From lettre");
    let source = raw(&srv, &bob, &m["id"]).await;
    assert!(source.contains("\r\n.leading dot\r\n"), "{source}");
    assert!(!source.contains("hidden"), "{source}");
    let hidden = srv.user("hidden@example.test").await;
    assert_eq!(inbox(&srv, &hidden).await.len(), 1);
    srv.stop().await;
}

#[tokio::test]
async fn lettre_sends_over_starttls_with_the_self_signed_certificate() {
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncTransport, Message};
    let srv = TestServer::start().await;
    let bob = srv.user("bob@example.test").await;
    // The certificate is made at start-up, so no client can know it in advance.
    let tls = TlsParameters::builder("localhost".into())
        .dangerous_accept_invalid_certs(true)
        .build_rustls()
        .unwrap();
    let mailer = lettre_mailer(srv.smtp).tls(Tls::Required(tls)).build();
    let email = Message::builder()
        .from("alice@example.test".parse().unwrap())
        .to("bob@example.test".parse().unwrap())
        .subject("Over TLS")
        .body(String::from("Encrypted on the way.\n"))
        .unwrap();
    mailer
        .send(email)
        .await
        .expect("lettre sends over STARTTLS");
    let source = newest_source(&srv, &bob).await;
    assert!(source.contains("with ESMTPS;"), "{source}");
    srv.stop().await;
}

#[tokio::test]
async fn lettre_authenticates_over_starttls() {
    use lettre::transport::smtp::authentication::{Credentials, Mechanism};
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncTransport, Message};
    let srv = with_auth(fakemail::cli::SmtpAuth::Required).await;
    let alice = srv.login("alice@example.test").await;
    for mechanism in [Mechanism::Plain, Mechanism::Login] {
        let tls = TlsParameters::builder("localhost".into())
            .dangerous_accept_invalid_certs(true)
            .build_rustls()
            .unwrap();
        let mailer = lettre_mailer(srv.smtp)
            .tls(Tls::Required(tls))
            .credentials(Credentials::new(
                "alice@example.test".into(),
                PASSWORD.into(),
            ))
            .authentication(vec![mechanism])
            .build();
        let email = Message::builder()
            .from("alice@example.test".parse().unwrap())
            .to("bob@example.test".parse().unwrap())
            .subject(mechanism.to_string())
            .body(String::from("Authenticated.\n"))
            .unwrap();
        mailer.send(email).await.expect("lettre sends with AUTH");
    }
    let subjects: Vec<_> = mailbox(&srv, &alice, "sent")
        .await
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(subjects, ["LOGIN", "PLAIN"]);
    srv.stop().await;
}

// ----- durability ----------------------------------------------------------------------------

#[tokio::test]
async fn an_acknowledged_message_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let p = Process::start(serve_cmd(dir.path()));
    let mut c = SmtpClient::connect(p.smtp).await;
    c.expect("EHLO client.test", 250).await;
    let r = c
        .mail("a@example.test", &["durable@example.test"], HELLO)
        .await;
    assert_eq!(r.code, 250, "{r:?}");
    // No QUIT, no clean shutdown: the 250 alone must mean the message is on disk.
    p.signal("KILL");
    drop(p);

    let store = fakemail::store::Store::open(dir.path(), 8 << 20).expect("reopen the store");
    assert_eq!(store.message_count().unwrap(), 1);
    drop(store);
    let again = TestServer::start_with(test_config(), Some(dir.path())).await;
    let token = again.user("durable@example.test").await;
    assert_eq!(inbox(&again, &token).await[0]["subject"], "Hello over SMTP");
    again.stop().await;
}

/// Sessions that deliver at the same time share store transactions: every message answered
/// `250` is on disk after `kill -9`, each exactly once, with its own copies.
#[tokio::test]
async fn concurrent_sessions_acknowledged_messages_all_survive_kill_9_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let p = Process::start(serve_cmd(dir.path()));
    let (sessions, each) = (16, 10);
    let clients = (0..sessions).map(|s| async move {
        let mut c = SmtpClient::connect(p.smtp).await;
        c.expect("EHLO client.test", 250).await;
        for i in 0..each {
            let body = format!(
                "From: a@example.test\r\nTo: b@example.test\r\nSubject: s{s} m{i}\r\n\r\nhi\r\n"
            );
            let to = ["b@example.test", "c@example.test"];
            let r = c.mail("a@example.test", &to, &body).await;
            assert_eq!(r.code, 250, "session {s} message {i}: {r:?}");
        }
    });
    futures_util::future::join_all(clients).await;
    p.signal("KILL");
    drop(p);

    let store = fakemail::store::Store::open(dir.path(), 8 << 20).expect("reopen the store");
    let mut subjects: Vec<String> = store
        .messages_newest_first(None)
        .map(|m| {
            let m = m.unwrap();
            assert_eq!(m.entries.len(), 2, "{}", m.subject);
            m.subject
        })
        .collect();
    subjects.sort();
    let mut sent: Vec<String> = (0..sessions)
        .flat_map(|s| (0..each).map(move |i| format!("s{s} m{i}")))
        .collect();
    sent.sort();
    assert_eq!(subjects, sent);
    assert_eq!(store.message_count().unwrap(), sessions * each);
}
