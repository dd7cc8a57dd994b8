//! The POP3 listener end to end, over raw sockets against the real server on port 0: every
//! command and its errors, AUTH PLAIN, STLS with a rustls client, the failed-login limit shared
//! with the REST login, DELE/RSET/QUIT semantics, unique ids stable across a restart, users
//! kept apart, over-long lines, the connection limit, the idle timeout and the shutdown drain.
//! Real clients (Python's `poplib`, curl, mpop) are in `tests/pop3_clients.rs`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A raw POP3 client.
struct Pop<S = TcpStream> {
    io: BufReader<S>,
}

impl Pop {
    /// Connects and checks the greeting.
    async fn connect(addr: SocketAddr) -> Pop {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut p = Pop {
            io: BufReader::new(stream),
        };
        let greeting = p.line().await;
        assert!(greeting.starts_with("+OK"), "{greeting}");
        p
    }

    fn into_inner(self) -> TcpStream {
        assert!(self.io.buffer().is_empty(), "unread input");
        self.io.into_inner()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Pop<S> {
    async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.io.get_mut().write_all(bytes.as_ref()).await.unwrap();
    }

    /// One line, without its CRLF ("" at EOF).
    async fn line(&mut self) -> String {
        let mut line = String::new();
        tokio::time::timeout(TIMEOUT, self.io.read_line(&mut line))
            .await
            .expect("a line in time")
            .expect("read");
        line.trim_end_matches(['\r', '\n']).to_owned()
    }

    /// Sends a command and reads its single-line response.
    async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n")).await;
        self.line().await
    }

    /// Sends a command whose response must be `+OK`.
    async fn ok(&mut self, line: &str) -> String {
        let r = self.cmd(line).await;
        assert!(r.starts_with("+OK"), "{line}: {r}");
        r
    }

    /// Reads a multi-line body to its `.`, unstuffed, as bytes with CRLF line ends.
    async fn body(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            tokio::time::timeout(TIMEOUT, self.io.read_until(b'\n', &mut line))
                .await
                .expect("a line in time")
                .expect("read");
            assert!(line.ends_with(b"\r\n"), "every line ends in CRLF: {line:?}");
            if line == b".\r\n" {
                return out;
            }
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
        }
    }

    /// Sends a command with a multi-line response; returns the first line and the body's
    /// lines.
    async fn multi(&mut self, line: &str) -> (String, Vec<String>) {
        let first = self.ok(line).await;
        let body = String::from_utf8(self.body().await).unwrap();
        (first, body.lines().map(str::to_owned).collect())
    }

    /// Reads until the server closes; returns what came.
    async fn rest(&mut self) -> String {
        let mut out = String::new();
        tokio::time::timeout(TIMEOUT, self.io.read_to_string(&mut out))
            .await
            .expect("the server closes in time")
            .ok();
        out
    }

    async fn login(&mut self, user: &str) -> String {
        self.ok(&format!("USER {user}")).await;
        self.ok(&format!("PASS {PASSWORD}")).await
    }
}

fn pop3(srv: &TestServer) -> SocketAddr {
    srv.pop3.expect("POP3 is on in the test config")
}

/// A message to `to` with a subject and a body, CRLF line ends.
fn message(to: &str, subject: &str, body: &str) -> String {
    format!("From: shop@example.test\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n{body}")
}

/// The REST ids of a user's inbox, oldest first.
async fn inbox_ids(srv: &TestServer, token: &str) -> Vec<String> {
    let mut ids: Vec<String> = inbox(srv, token)
        .await
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    ids.reverse();
    ids
}

async fn raw(srv: &TestServer, token: &str, id: &str) -> Vec<u8> {
    let (s, _, body) = get_bytes(srv, &format!("/api/v1/messages/{id}/raw"), token).await;
    assert_eq!(s, 200);
    body
}

/// Alice with three messages, the second with lines that need dot-stuffing.
async fn alice_with_three(srv: &TestServer) -> String {
    let token = srv.user("alice@example.test").await;
    let to = ["alice@example.test"];
    send_smtp(
        srv,
        "shop@example.test",
        &to,
        &message(to[0], "one", "first\r\n"),
    )
    .await;
    let dots = "..leading dot\r\n.\r\n...\r\nend\r\n";
    send_smtp(srv, "shop@example.test", &to, &message(to[0], "two", dots)).await;
    let body = "line 1\r\nline 2\r\nline 3\r\n";
    send_smtp(
        srv,
        "shop@example.test",
        &to,
        &message(to[0], "three", body),
    )
    .await;
    token
}

#[tokio::test]
async fn a_dialogue_with_every_command() {
    let srv = TestServer::start().await;
    let token = alice_with_three(&srv).await;
    let ids = inbox_ids(&srv, &token).await;
    let sources = [
        raw(&srv, &token, &ids[0]).await,
        raw(&srv, &token, &ids[1]).await,
        raw(&srv, &token, &ids[2]).await,
    ];
    let mut p = Pop::connect(pop3(&srv)).await;

    let (_, caps) = p.multi("CAPA").await;
    for cap in [
        "TOP",
        "UIDL",
        "USER",
        "SASL PLAIN",
        "STLS",
        "PIPELINING",
        "RESP-CODES",
    ] {
        assert!(caps.iter().any(|c| c == cap), "{cap} in {caps:?}");
    }
    assert!(p.cmd("STAT").await.starts_with("-ERR"));
    assert!(p.cmd("PASS x").await.starts_with("-ERR"));
    p.ok("USER alice@example.test").await;
    let wrong = p.cmd("PASS wrong password").await;
    assert!(wrong.starts_with("-ERR [AUTH]"), "{wrong}");
    let opened = p.login("ALICE@example.test").await;
    assert!(opened.contains("3 messages"), "{opened}");

    let total: usize = sources.iter().map(Vec::len).sum();
    assert_eq!(p.ok("STAT").await, format!("+OK 3 {total}"));
    let (first, list) = p.multi("LIST").await;
    assert!(first.contains("3 messages"), "{first}");
    let expected: Vec<String> = (0..3)
        .map(|i| format!("{} {}", i + 1, sources[i].len()))
        .collect();
    assert_eq!(list, expected);
    assert_eq!(p.ok("LIST 2").await, format!("+OK {}", expected[1]));
    assert!(p.cmd("LIST 4").await.starts_with("-ERR"));
    assert!(p.cmd("LIST 0").await.starts_with("-ERR"));
    assert!(p.cmd("LIST two").await.starts_with("-ERR"));

    // Unique ids are the REST ids.
    let (_, uidl) = p.multi("UIDL").await;
    let expected: Vec<String> = (0..3).map(|i| format!("{} {}", i + 1, ids[i])).collect();
    assert_eq!(uidl, expected);
    assert_eq!(p.ok("UIDL 3").await, format!("+OK 3 {}", ids[2]));

    // RETR sends the source byte for byte.
    for (i, source) in sources.iter().enumerate() {
        p.ok(&format!("RETR {}", i + 1)).await;
        assert_eq!(&p.body().await, source, "message {}", i + 1);
    }
    // Sent whole, a message is read; TOP leaves it alone (RETR 1 made the first one read).
    let listed = inbox(&srv, &token).await;
    assert!(listed.iter().all(|m| m["read"] == true), "{listed:?}");

    p.ok("TOP 3 0").await;
    let top = String::from_utf8(p.body().await).unwrap();
    assert!(top.ends_with("Subject: three\r\n\r\n"), "{top}");
    p.ok("TOP 3 2").await;
    let top = String::from_utf8(p.body().await).unwrap();
    assert!(top.ends_with("\r\n\r\nline 1\r\nline 2\r\n"), "{top}");
    assert!(p.cmd("TOP 3").await.starts_with("-ERR"));
    assert!(p.cmd("TOP 9 1").await.starts_with("-ERR"));

    p.ok("NOOP").await;
    assert!(p.cmd("XYZZY").await.starts_with("-ERR"));
    assert!(p.cmd("").await.starts_with("-ERR"));
    assert!(p.cmd("USER bob@example.test").await.starts_with("-ERR"));
    assert!(p.cmd("STLS").await.starts_with("-ERR"));
    assert!(p.cmd("APOP alice x").await.starts_with("-ERR"));

    // DELE marks; RSET unmarks; QUIT deletes what is marked.
    assert_eq!(p.ok("DELE 1").await, "+OK message 1 deleted");
    assert!(p.cmd("DELE 1").await.starts_with("-ERR"));
    assert!(p.cmd("RETR 1").await.starts_with("-ERR"));
    assert!(p.cmd("TOP 1 0").await.starts_with("-ERR"));
    assert!(p.cmd("LIST 1").await.starts_with("-ERR"));
    assert_eq!(
        p.ok("STAT").await,
        format!("+OK 2 {}", total - sources[0].len())
    );
    let (_, list) = p.multi("LIST").await;
    assert_eq!(list.len(), 2);
    assert!(p.ok("RSET").await.contains("3 messages"));
    p.ok("DELE 1").await;
    p.ok("DELE 3").await;
    assert_eq!(
        inbox_ids(&srv, &token).await.len(),
        3,
        "nothing gone before QUIT"
    );
    let bye = p.ok("QUIT").await;
    assert!(bye.contains("2 messages deleted"), "{bye}");
    assert_eq!(p.rest().await, "");

    assert_eq!(inbox_ids(&srv, &token).await, [ids[1].clone()]);
    assert!(
        mailbox(&srv, &token, "trash").await.is_empty(),
        "deleted for good"
    );
}

#[tokio::test]
async fn without_quit_nothing_is_deleted_and_the_maildrop_is_a_snapshot() {
    let srv = TestServer::start().await;
    let token = alice_with_three(&srv).await;
    let mut p = Pop::connect(pop3(&srv)).await;
    p.login("alice@example.test").await;
    p.ok("DELE 1").await;
    p.ok("DELE 2").await;

    // A message that arrives meanwhile waits for the next session.
    let to = ["alice@example.test"];
    send_smtp(
        &srv,
        "shop@example.test",
        &to,
        &message(to[0], "four", "x\r\n"),
    )
    .await;
    assert!(p.ok("STAT").await.starts_with("+OK 1 "));
    assert!(p.cmd("LIST 4").await.starts_with("-ERR"));
    drop(p);

    wait_until("the session ends", || async {
        let mut p = Pop::connect(pop3(&srv)).await;
        let r = p.cmd("USER alice@example.test").await;
        let r2 = p.cmd(&format!("PASS {PASSWORD}")).await;
        r.starts_with("+OK") && r2.starts_with("+OK")
    })
    .await;
    assert_eq!(inbox_ids(&srv, &token).await.len(), 4);
}

#[tokio::test]
async fn a_message_deleted_elsewhere_is_an_error_but_not_the_end() {
    let srv = TestServer::start().await;
    let token = alice_with_three(&srv).await;
    let ids = inbox_ids(&srv, &token).await;
    let mut p = Pop::connect(pop3(&srv)).await;
    p.login("alice@example.test").await;
    let (s, _) = srv
        .call(
            "DELETE",
            &format!("/api/v1/messages/{}?permanent=true", ids[0]),
            Some(&token),
            None,
        )
        .await;
    assert!(s == 204 || s == 200, "{s}");
    assert!(p.cmd("RETR 1").await.starts_with("-ERR"));
    p.ok("RETR 2").await;
    p.body().await;
    p.ok("DELE 1").await;
    assert!(p.ok("QUIT").await.contains("1 messages deleted"));
    assert_eq!(inbox_ids(&srv, &token).await.len(), 2);
}

#[tokio::test]
async fn auth_plain_with_an_initial_response_and_after_a_challenge() {
    let srv = TestServer::start().await;
    srv.user("alice@example.test").await;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let good = b64(&format!("\0alice@example.test\0{PASSWORD}"));

    let mut p = Pop::connect(pop3(&srv)).await;
    p.ok(&format!("AUTH PLAIN {good}")).await;
    p.ok("STAT").await;
    p.ok("QUIT").await;

    let mut p = Pop::connect(pop3(&srv)).await;
    let (_, mechanisms) = p.multi("AUTH").await;
    assert_eq!(mechanisms, ["PLAIN"]);
    assert_eq!(p.cmd("AUTH PLAIN").await, "+ ");
    assert!(p.cmd("*").await.starts_with("-ERR"), "cancelled");
    assert!(p.cmd("AUTH CRAM-MD5").await.starts_with("-ERR"));
    assert!(p.cmd("AUTH PLAIN not-base64!").await.starts_with("-ERR"));
    let other = b64(&format!("bob@example.test\0alice@example.test\0{PASSWORD}"));
    assert!(
        p.cmd(&format!("AUTH PLAIN {other}"))
            .await
            .starts_with("-ERR [AUTH]")
    );
    let wrong = b64("\0alice@example.test\0wrong");
    assert!(
        p.cmd(&format!("AUTH PLAIN {wrong}"))
            .await
            .starts_with("-ERR [AUTH]")
    );
    assert_eq!(p.cmd("AUTH PLAIN").await, "+ ");
    p.ok(&good).await;
    p.ok("STAT").await;
}

#[tokio::test]
async fn failed_logins_share_the_rest_login_limit() {
    let srv = TestServer::start().await;
    srv.register("alice@example.test").await;
    let mut p = Pop::connect(pop3(&srv)).await;
    for _ in 0..5 {
        p.ok("USER alice@example.test").await;
        let r = p.cmd("PASS wrong").await;
        assert!(r.starts_with("-ERR [AUTH] invalid"), "{r}");
    }
    // The right password is refused now, over POP3 and REST alike.
    p.ok("USER alice@example.test").await;
    let r = p.cmd(&format!("PASS {PASSWORD}")).await;
    assert!(r.starts_with("-ERR [AUTH] too many"), "{r}");
    p.ok("NOOP").await;
    let (s, v) = srv.try_login("alice@example.test", PASSWORD).await;
    assert_eq!(s, 429, "{v}");
    // Another address is not affected.
    srv.register("bob@example.test").await;
    Pop::connect(pop3(&srv))
        .await
        .login("bob@example.test")
        .await;
}

#[tokio::test]
async fn users_see_only_their_own_inbox() {
    let srv = TestServer::start().await;
    let alice = alice_with_three(&srv).await;
    let bob = srv.user("bob@example.test").await;
    let to = ["bob@example.test"];
    send_smtp(
        &srv,
        "shop@example.test",
        &to,
        &message(to[0], "bob's", "hi\r\n"),
    )
    .await;
    // Alice's sent and archived mail is not in the maildrop.
    let (s, _) = srv
        .call(
            "POST",
            "/api/v1/messages",
            Some(&alice),
            Some(json!({"to": ["carol@example.test"], "subject": "sent", "text": "x"})),
        )
        .await;
    assert_eq!(s, 201);

    let mut p = Pop::connect(pop3(&srv)).await;
    p.login("bob@example.test").await;
    assert!(p.ok("STAT").await.starts_with("+OK 1 "));
    let (_, uidl) = p.multi("UIDL").await;
    assert_eq!(uidl, [format!("1 {}", inbox_ids(&srv, &bob).await[0])]);
    for n in 2..=4 {
        assert!(p.cmd(&format!("RETR {n}")).await.starts_with("-ERR"));
    }
    p.ok("QUIT").await;

    let mut p = Pop::connect(pop3(&srv)).await;
    assert!(p.login("alice@example.test").await.contains("3 messages"));
    // Two sessions of one user at once: the second is refused, the first goes on.
    let mut q = Pop::connect(pop3(&srv)).await;
    q.ok("USER alice@example.test").await;
    let r = q.cmd(&format!("PASS {PASSWORD}")).await;
    assert!(r.starts_with("-ERR [IN-USE]"), "{r}");
    p.ok("STAT").await;
    // Free again as soon as QUIT is answered: a client may log in again at once.
    p.ok("QUIT").await;
    q.ok("USER alice@example.test").await;
    q.ok(&format!("PASS {PASSWORD}")).await;

    // An unknown user, and an address without an account, are the same failure.
    let mut p = Pop::connect(pop3(&srv)).await;
    p.ok("USER nobody@example.test").await;
    assert!(p.cmd("PASS whatever").await.starts_with("-ERR [AUTH]"));
}

#[tokio::test]
async fn over_long_lines_are_refused_and_the_session_goes_on() {
    let srv = TestServer::start().await;
    srv.user("alice@example.test").await;
    let mut p = Pop::connect(pop3(&srv)).await;
    // Before login, AUTH lines may be long; past 12 KiB they are refused too.
    let huge = "A".repeat(100_000);
    assert_eq!(
        p.cmd(&format!("AUTH PLAIN {huge}")).await,
        "-ERR line too long"
    );
    p.ok("NOOP").await;
    p.login("alice@example.test").await;
    // Logged in, 255 octets with the CRLF is the limit.
    let long = format!("LIST {}", "1".repeat(300));
    assert_eq!(p.cmd(&long).await, "-ERR line too long");
    let at_limit = format!("NOOP{}", " ".repeat(249));
    assert_eq!(at_limit.len() + 2, 255);
    assert!(p.cmd(&at_limit).await.starts_with("+OK"));
    // A line without an end in sight: dropped as it comes, not buffered.
    p.send("X".repeat(2 << 20)).await;
    p.send("\r\nSTAT\r\n").await;
    assert_eq!(p.line().await, "-ERR line too long");
    assert!(p.line().await.starts_with("+OK 0 0"));
    // Bytes that are not UTF-8.
    p.send(b"\xff\xfe\r\n").await;
    assert!(p.line().await.starts_with("-ERR"));
    p.ok("QUIT").await;
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let srv = TestServer::start().await;
    alice_with_three(&srv).await;
    let mut p = Pop::connect(pop3(&srv)).await;
    p.send(format!(
        "USER alice@example.test\r\nPASS {PASSWORD}\r\nSTAT\r\nRETR 1\r\nDELE 1\r\nNOOP\r\nRSET\r\nQUIT\r\n"
    ))
    .await;
    let mut all = p.rest().await;
    assert!(all.starts_with("+OK"), "{all}");
    let lines: Vec<&str> = all.split("\r\n").collect();
    assert!(lines[1].contains("3 messages"), "{all}");
    assert!(lines[2].starts_with("+OK 3 "), "{all}");
    assert!(all.ends_with("+OK fakemail POP3 server signing off (0 messages deleted)\r\n"));
    all.clear();
}

#[tokio::test]
async fn uidl_is_stable_across_sessions_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start_with(test_config(), Some(dir.path())).await;
    alice_with_three(&srv).await;
    let uids = |srv: &TestServer| {
        let addr = pop3(srv);
        async move {
            let mut p = Pop::connect(addr).await;
            p.login("alice@example.test").await;
            let (_, uidl) = p.multi("UIDL").await;
            p.ok("QUIT").await;
            uidl
        }
    };
    let before = uids(&srv).await;
    assert_eq!(before.len(), 3);
    assert_eq!(uids(&srv).await, before);
    // Deleting the first renumbers the rest, but their unique ids stay.
    let mut p = Pop::connect(pop3(&srv)).await;
    p.login("alice@example.test").await;
    p.ok("DELE 1").await;
    p.ok("QUIT").await;
    srv.stop().await;

    let srv = TestServer::start_with(test_config(), Some(dir.path())).await;
    let after = uids(&srv).await;
    let ids = |l: &[String]| -> Vec<String> {
        l.iter()
            .map(|s| s.split_once(' ').unwrap().1.to_owned())
            .collect()
    };
    assert_eq!(ids(&after), ids(&before)[1..]);
    assert!(after[0].starts_with("1 "));
    srv.stop().await;
}

#[tokio::test]
async fn stls_upgrades_with_the_smtp_certificate() {
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
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client));

    let mut config = test_config();
    config.smtp.tls = Some(files);
    let srv = TestServer::start_with(config, None).await;
    alice_with_three(&srv).await;

    let mut p = Pop::connect(pop3(&srv)).await;
    p.ok("USER alice@example.test").await;
    // What follows STLS in the same write came in plain text: it is dropped, not run.
    p.send("STLS\r\nPASS injected\r\n").await;
    assert_eq!(p.line().await, "+OK begin TLS negotiation");
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio::time::timeout(TIMEOUT, connector.connect(name, p.into_inner()))
        .await
        .expect("handshake in time")
        .expect("the server's certificate is the configured one");
    let mut p = Pop {
        io: BufReader::new(tls),
    };
    let (_, caps) = p.multi("CAPA").await;
    assert!(!caps.iter().any(|c| c == "STLS"), "{caps:?}");
    assert!(p.cmd("STLS").await.starts_with("-ERR"));
    // The USER before STLS is forgotten.
    assert!(p.cmd(&format!("PASS {PASSWORD}")).await.starts_with("-ERR"));
    assert!(p.login("alice@example.test").await.contains("3 messages"));
    p.ok("RETR 1").await;
    assert!(!p.body().await.is_empty());
    p.ok("QUIT").await;
}

#[tokio::test]
async fn connections_over_the_limit_are_refused() {
    let mut config = test_config();
    config.pop3.max_connections = 1;
    let srv = TestServer::start_with(config, None).await;
    let mut first = Pop::connect(pop3(&srv)).await;
    let mut second = TcpStream::connect(pop3(&srv)).await.unwrap();
    let mut refusal = String::new();
    tokio::time::timeout(TIMEOUT, second.read_to_string(&mut refusal))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        refusal,
        "-ERR [SYS/TEMP] too many connections; try again later\r\n"
    );
    first.ok("NOOP").await;
    first.ok("QUIT").await;
}

#[tokio::test]
async fn an_idle_client_is_disconnected_and_nothing_is_deleted() {
    let mut config = test_config();
    config.pop3.idle_timeout = Duration::from_millis(500);
    let srv = TestServer::start_with(config, None).await;
    let token = alice_with_three(&srv).await;
    let mut p = Pop::connect(pop3(&srv)).await;
    p.login("alice@example.test").await;
    p.ok("DELE 1").await;
    let bye = p.rest().await;
    assert!(bye.starts_with("-ERR idle for too long"), "{bye}");
    assert_eq!(inbox_ids(&srv, &token).await.len(), 3);
}

#[tokio::test]
async fn shutdown_says_err_and_closes_without_deleting() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start_with(test_config(), Some(dir.path())).await;
    alice_with_three(&srv).await;
    let mut p = Pop::connect(pop3(&srv)).await;
    p.login("alice@example.test").await;
    p.ok("DELE 1").await;
    let started = std::time::Instant::now();
    srv.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no wait for the drain bound"
    );
    let bye = p.rest().await;
    assert!(
        bye.starts_with("-ERR [SYS/TEMP] the server is shutting down"),
        "{bye}"
    );

    let srv = TestServer::start_with(test_config(), Some(dir.path())).await;
    let token = srv.login("alice@example.test").await;
    assert_eq!(inbox_ids(&srv, &token).await.len(), 3);
    srv.stop().await;
}

#[tokio::test]
async fn metrics_count_connections_and_commands() {
    let srv = TestServer::start().await;
    srv.user("alice@example.test").await;
    let mut p = Pop::connect(pop3(&srv)).await;
    p.login("alice@example.test").await;
    p.ok("STAT").await;
    p.ok("STAT").await;
    p.cmd("FROB").await;
    p.ok("QUIT").await;
    let r = srv.reply("GET", "/metrics", None, None).await;
    let text = r.text;
    for sample in [
        "fakemail_connections_total{protocol=\"pop3\"} 1",
        "fakemail_commands_total{protocol=\"pop3\",command=\"STAT\"} 2",
        "fakemail_commands_total{protocol=\"pop3\",command=\"unknown\"} 1",
        "fakemail_commands_total{protocol=\"pop3\",command=\"QUIT\"} 1",
    ] {
        assert!(text.contains(sample), "{sample} in\n{text}");
    }
}

#[tokio::test]
async fn pop3_can_be_off() {
    let mut config = test_config();
    config.pop3.addr = None;
    let srv = TestServer::start_with(config, None).await;
    assert_eq!(srv.pop3, None);
    let (s, _) = srv.call("GET", "/readyz", None, None).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn retr_sends_every_fixture_and_a_large_message_byte_for_byte() {
    let srv = TestServer::start().await;
    let token = srv.user("alice@example.test").await;
    let to = ["alice@example.test"];
    let names = [
        "alternative.eml",
        "attachments.eml",
        "base64.eml",
        "inline_image.eml",
        "latin1.eml",
        "malformed.eml",
        "quoted_printable.eml",
        "rfc2047.eml",
    ];
    for name in names {
        deliver(&srv, fixture(name), &to).await;
    }
    // 2 MiB of long lines, lines of dots and 8-bit bytes.
    let mut big = b"Subject: big\r\nContent-Type: text/plain; charset=latin1\r\n\r\n".to_vec();
    while big.len() < 2 << 20 {
        big.extend_from_slice(&[b'x'; 990]);
        big.extend_from_slice(b"\r\n.\r\n..\r\n\xe9t\xe9\r\n");
    }
    deliver(&srv, big, &to).await;
    let ids = inbox_ids(&srv, &token).await;
    assert_eq!(ids.len(), names.len() + 1);

    let mut p = Pop::connect(pop3(&srv)).await;
    p.login("alice@example.test").await;
    for (i, id) in ids.iter().enumerate() {
        let source = raw(&srv, &token, id).await;
        let first = p.ok(&format!("RETR {}", i + 1)).await;
        assert_eq!(first, format!("+OK {} octets", source.len()));
        assert_eq!(p.body().await, source, "message {}", i + 1);
    }
    p.ok("QUIT").await;
}

#[tokio::test]
async fn a_stuck_client_stalls_nobody_else() {
    let srv = TestServer::start().await;
    alice_with_three(&srv).await;
    let to = ["alice@example.test"];
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    big.resize(4 << 20, b'x');
    big.extend_from_slice(b"\r\n");
    deliver(&srv, big, &to).await;
    srv.user("bob@example.test").await;

    // Alice asks for 4 MiB and never reads them; a third client stops mid-line.
    let mut alice = Pop::connect(pop3(&srv)).await;
    alice.login("alice@example.test").await;
    alice.send("RETR 4\r\n").await;
    let mut half = Pop::connect(pop3(&srv)).await;
    half.send("USER bob@exa").await;

    let bob = async {
        let mut p = Pop::connect(pop3(&srv)).await;
        p.login("bob@example.test").await;
        p.ok("STAT").await;
        p.ok("QUIT").await;
    };
    tokio::time::timeout(Duration::from_secs(5), bob)
        .await
        .expect("bob is served while the others stall");
}
