//! IMAP against the real server on a free port: raw-socket dialogues for the commands, and
//! real clients (the `async-imap` crate, Python's `imaplib`, curl's `imap://`, Debian's
//! `mbsync`). An external client that is not installed skips its test with a printed reason;
//! `FAKEMAIL_REQUIRE_CLIENTS=1` makes that a failure.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const BOB: &str = "bob@example.test";

/// A raw IMAP client: sends tagged commands and collects the responses, literals inlined.
struct Imap {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    n: u32,
}

impl Imap {
    async fn connect(addr: SocketAddr) -> (Imap, String) {
        let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
        let mut c = Imap {
            r: BufReader::new(r),
            w,
            n: 0,
        };
        let greeting = c.line().await;
        (c, greeting)
    }

    /// One response line, with any literal it announces read into it.
    async fn line(&mut self) -> String {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = tokio::time::timeout(TIMEOUT, self.r.read_until(b'\n', &mut line))
                .await
                .expect("a response in time")
                .unwrap();
            assert!(
                n > 0,
                "connection closed; so far: {}",
                String::from_utf8_lossy(&out)
            );
            out.extend_from_slice(&line);
            let text = String::from_utf8_lossy(&line);
            let Some(len) = text
                .trim_end()
                .strip_suffix('}')
                .and_then(|t| t.rsplit_once('{'))
                .and_then(|(_, n)| n.parse::<usize>().ok())
            else {
                break;
            };
            let mut lit = vec![0; len];
            self.r.read_exact(&mut lit).await.unwrap();
            out.extend_from_slice(&lit);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    async fn send(&mut self, raw: &str) {
        self.w.write_all(raw.as_bytes()).await.unwrap();
    }

    /// Sends a command; returns the untagged responses and the tagged one.
    async fn cmd(&mut self, command: &str) -> (Vec<String>, String) {
        self.n += 1;
        let tag = format!("a{}", self.n);
        self.send(&format!("{tag} {command}\r\n")).await;
        let mut untagged = Vec::new();
        loop {
            let line = self.line().await;
            if line.starts_with(&format!("{tag} ")) {
                return (untagged, line);
            }
            untagged.push(line);
        }
    }

    /// Sends a command that must succeed; returns its untagged responses.
    async fn ok(&mut self, command: &str) -> Vec<String> {
        let (untagged, tagged) = self.cmd(command).await;
        assert!(
            tagged.split_whitespace().nth(1) == Some("OK"),
            "{command}: {tagged}{untagged:?}"
        );
        untagged
    }

    async fn login(addr: SocketAddr, user: &str) -> Imap {
        let (mut c, _) = Imap::connect(addr).await;
        c.ok(&format!("LOGIN {user} \"{PASSWORD}\"")).await;
        c
    }
}

fn has(lines: &[String], want: &str) -> bool {
    lines.iter().any(|l| l.contains(want))
}

async fn server_with_mail(n: usize) -> (TestServer, String, SocketAddr) {
    let srv = TestServer::start().await;
    let token = srv.user(BOB).await;
    for i in 0..n {
        let body = format!(
            "Subject: note {i}\r\nFrom: alice@example.test\r\nTo: {BOB}\r\n\r\nhello {i}\r\n"
        );
        send_smtp(&srv, "alice@example.test", &[BOB], &body).await;
    }
    let imap = srv.imap.expect("IMAP is on by default");
    (srv, token, imap)
}

#[tokio::test]
async fn greeting_capability_login_and_bad_input() {
    let (srv, _, addr) = server_with_mail(0).await;
    let (mut c, greeting) = Imap::connect(addr).await;
    assert!(
        greeting
            .to_uppercase()
            .starts_with("* OK [CAPABILITY IMAP4REV1"),
        "{greeting}"
    );
    assert!(
        greeting.contains("STARTTLS") && greeting.contains("AUTH=PLAIN"),
        "{greeting}"
    );
    let caps = c.ok("CAPABILITY").await;
    for cap in [
        "LITERAL+",
        "UIDPLUS",
        "MOVE",
        "IDLE",
        "NAMESPACE",
        "ID",
        "ENABLE",
        "UNSELECT",
    ] {
        assert!(has(&caps, cap), "{cap}: {caps:?}");
    }
    // Before login, mailbox commands are refused; garbage gets BAD and the session goes on.
    let (_, t) = c.cmd("SELECT INBOX").await;
    assert!(t.contains("BAD"), "{t}");
    c.send("this is not imap\r\n").await;
    assert!(c.line().await.contains("BAD"));
    let (_, t) = c.cmd(&format!("LOGIN {BOB} wrong")).await;
    assert!(t.contains("NO [AUTHENTICATIONFAILED]"), "{t}");
    c.ok(&format!("LOGIN {BOB} \"{PASSWORD}\"")).await;
    c.ok("NOOP").await;
    let bye = c.ok("LOGOUT").await;
    assert!(has(&bye, "* BYE"), "{bye:?}");
    // Counted by protocol: one connection; its commands by name, the line that was not one
    // as `unknown`.
    let metrics = srv.reply("GET", "/metrics", None, None).await.text;
    for line in [
        "fakemail_connections_total{protocol=\"imap\"} 1",
        "fakemail_commands_total{protocol=\"imap\",command=\"CAPABILITY\"} 1",
        "fakemail_commands_total{protocol=\"imap\",command=\"SELECT\"} 1",
        "fakemail_commands_total{protocol=\"imap\",command=\"unknown\"} 1",
        "fakemail_commands_total{protocol=\"imap\",command=\"LOGIN\"} 2",
        "fakemail_commands_total{protocol=\"imap\",command=\"NOOP\"} 1",
        "fakemail_commands_total{protocol=\"imap\",command=\"LOGOUT\"} 1",
    ] {
        assert!(
            metrics.contains(&format!("\n{line}\n")),
            "{line}: {metrics}"
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn authenticate_plain_with_and_without_initial_response() {
    use base64::Engine;
    let (srv, _, addr) = server_with_mail(0).await;
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0{BOB}\0{PASSWORD}"));
    let (mut c, _) = Imap::connect(addr).await;
    c.ok(&format!("AUTHENTICATE PLAIN {plain}")).await;
    let (mut c, _) = Imap::connect(addr).await;
    c.send("a1 AUTHENTICATE PLAIN\r\n").await;
    assert!(c.line().await.starts_with('+'));
    c.send(&format!("{plain}\r\n")).await;
    assert!(c.line().await.starts_with("a1 OK"));
    srv.stop().await;
}

#[tokio::test]
async fn list_select_fetch_store_search_expunge() {
    let (srv, token, addr) = server_with_mail(3).await;
    let mut c = Imap::login(addr, BOB).await;
    let list = c.ok("LIST \"\" \"*\"").await;
    assert!(has(&list, "\"/\" INBOX"), "{list:?}");
    assert!(has(&list, "(\\Sent) \"/\" Sent"), "{list:?}");
    assert!(has(&list, "(\\Trash) \"/\" Trash"), "{list:?}");
    assert!(has(&list, "(\\Archive) \"/\" Archive"), "{list:?}");

    let status = c.ok("STATUS INBOX (MESSAGES UNSEEN UIDNEXT)").await;
    assert!(
        has(&status, "MESSAGES 3") && has(&status, "UNSEEN 3") && has(&status, "UIDNEXT 4"),
        "{status:?}"
    );

    let sel = c.ok("SELECT INBOX").await;
    assert!(
        has(&sel, "* 3 EXISTS") && has(&sel, "* 3 RECENT"),
        "{sel:?}"
    );
    assert!(
        has(&sel, "[UIDNEXT 4]") && has(&sel, "[UIDVALIDITY "),
        "{sel:?}"
    );

    let f = c.ok("FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)").await;
    assert_eq!(f.len(), 3, "{f:?}");
    assert!(
        f[0].starts_with("* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE "),
        "{f:?}"
    );

    // The source over IMAP is the source over REST, byte for byte; BODY.PEEK leaves it unread.
    let page = inbox(&srv, &token).await;
    let oldest = page.last().unwrap()["id"].as_str().unwrap().to_owned();
    let (_, _, raw) = get_bytes(&srv, &format!("/api/v1/messages/{oldest}/raw"), &token).await;
    let f = c.ok("UID FETCH 1 (BODY.PEEK[])").await;
    let expected = format!(
        "BODY[] {{{}}}\r\n{}",
        raw.len(),
        String::from_utf8_lossy(&raw)
    );
    assert!(f[0].contains(&expected), "{f:?}");
    let f = c
        .ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT]<0.5>)")
        .await;
    assert!(f[0].contains("Subject: note 0\r\n\r\n"), "{f:?}");
    assert!(f[0].contains("BODY[TEXT]<0> \"hello\""), "{f:?}");
    let s = c.ok("SEARCH UNSEEN").await;
    assert!(has(&s, "* SEARCH 1 2 3"), "{s:?}");

    // BODY[] marks it read, and the REST API sees that.
    let f = c.ok("FETCH 2 BODY[TEXT]").await;
    assert!(f[0].contains("\\Seen"), "{f:?}");
    let s = c.ok("UID SEARCH SEEN").await;
    assert!(has(&s, "* SEARCH 2"), "{s:?}");
    let f = c.ok("STORE 3 +FLAGS (\\Flagged $Important)").await;
    assert!(
        f[0].contains("\\Flagged") && f[0].contains("$Important"),
        "{f:?}"
    );
    let page = inbox(&srv, &token).await;
    assert_eq!(page[0]["starred"], true, "{page:?}");
    assert_eq!(page[1]["read"], true, "{page:?}");
    let s = c.ok("SEARCH OR FLAGGED SUBJECT \"note 0\"").await;
    assert!(has(&s, "* SEARCH 1 3"), "{s:?}");
    let s = c.ok("SEARCH NOT FROM alice LARGER 1").await;
    assert!(has(&s, "* SEARCH\r\n"), "{s:?}");

    // \Deleted then EXPUNGE deletes for good; the others keep their UIDs.
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    let e = c.ok("EXPUNGE").await;
    assert!(has(&e, "* 1 EXPUNGE"), "{e:?}");
    assert_eq!(inbox(&srv, &token).await.len(), 2);
    let f = c.ok("FETCH 1:* (UID)").await;
    assert!(f[0].contains("UID 2") && f[1].contains("UID 3"), "{f:?}");

    // Reselected, the numbering stands, and nothing is \Recent any more.
    let sel = c.ok("EXAMINE INBOX").await;
    assert!(
        has(&sel, "* 2 EXISTS") && has(&sel, "* 0 RECENT") && has(&sel, "[UIDNEXT 4]"),
        "{sel:?}"
    );
    let (_, t) = c.cmd("STORE 1 +FLAGS (\\Deleted)").await;
    assert!(t.contains("NO"), "read-only: {t}");
    c.ok("CLOSE").await;
    let (_, t) = c.cmd("FETCH 1 UID").await;
    assert!(t.contains("BAD"), "{t}");
    srv.stop().await;
}

#[tokio::test]
async fn idle_hears_of_new_mail_and_expunges_made_elsewhere() {
    let (srv, token, addr) = server_with_mail(1).await;
    let mut c = Imap::login(addr, BOB).await;
    c.ok("SELECT INBOX").await;
    c.send("i1 IDLE\r\n").await;
    assert!(c.line().await.starts_with("+ "));
    send_smtp(
        &srv,
        "alice@example.test",
        &[BOB],
        "Subject: late\r\n\r\nlate\r\n",
    )
    .await;
    let exists = tokio::time::timeout(Duration::from_secs(1), c.line())
        .await
        .expect("EXISTS within a second");
    assert_eq!(exists, "* 2 EXISTS\r\n");
    // Both are \Recent for this session: the first session to see them.
    assert_eq!(c.line().await, "* 2 RECENT\r\n");
    // Deleted over REST: EXPUNGE while idling.
    let first = inbox(&srv, &token).await.last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = srv
        .call(
            "DELETE",
            &format!("/api/v1/messages/{first}?permanent=true"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let expunge = tokio::time::timeout(Duration::from_secs(1), c.line())
        .await
        .expect("EXPUNGE within a second");
    assert_eq!(expunge, "* 1 EXPUNGE\r\n");
    c.send("DONE\r\n").await;
    assert!(c.line().await.starts_with("i1 OK"));
    srv.stop().await;
}

/// The next response line within a second: what an idling session is told of a change.
async fn within_a_second(c: &mut Imap, what: &str) -> String {
    tokio::time::timeout(Duration::from_secs(1), c.line())
        .await
        .unwrap_or_else(|_| panic!("{what} within a second"))
}

#[tokio::test]
async fn idle_hears_of_flags_and_moves_made_elsewhere() {
    let (srv, token, addr) = server_with_mail(2).await;
    let ids: Vec<String> = inbox(&srv, &token)
        .await
        .iter()
        .rev()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    let patch = |id: &str, body: serde_json::Value| {
        let path = format!("/api/v1/messages/{id}");
        let (srv, token) = (&srv, &token);
        async move {
            let (s, _) = srv.call("PATCH", &path, Some(token), Some(body)).await;
            assert_eq!(s, 200);
        }
    };
    let mut a = Imap::login(addr, BOB).await;
    a.ok("SELECT INBOX").await;
    let mut b = Imap::login(addr, BOB).await;
    b.ok("SELECT INBOX").await;
    a.send("i1 IDLE\r\n").await;
    assert!(a.line().await.starts_with("+ "));

    // Read over REST: a FETCH with the new flags.
    patch(&ids[0], serde_json::json!({"read": true})).await;
    let fetch = within_a_second(&mut a, "FETCH").await;
    assert_eq!(fetch, "* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))\r\n");

    // STORE from a second session: the idling one hears of it; the storing one, which had
    // its answer, is not told again.
    let stored = b.ok("STORE 2 +FLAGS (\\Flagged)").await;
    assert!(has(&stored, "* 2 FETCH (FLAGS (\\Flagged))"), "{stored:?}");
    let fetch = within_a_second(&mut a, "FETCH").await;
    assert_eq!(fetch, "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))\r\n");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let noop = b.ok("NOOP").await;
    assert!(!has(&noop, "* 2 FETCH"), "{noop:?}");

    // Moved out over REST: EXPUNGE; moved back in: EXISTS.
    patch(&ids[0], serde_json::json!({"mailbox": "archive"})).await;
    assert_eq!(within_a_second(&mut a, "EXPUNGE").await, "* 1 EXPUNGE\r\n");
    patch(&ids[0], serde_json::json!({"mailbox": "inbox"})).await;
    assert_eq!(within_a_second(&mut a, "EXISTS").await, "* 2 EXISTS\r\n");
    assert!(a.line().await.ends_with("RECENT\r\n"));

    // Moved to trash over REST: EXPUNGE too.
    let (s, _) = srv
        .call(
            "DELETE",
            &format!("/api/v1/messages/{}", ids[1]),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(within_a_second(&mut a, "EXPUNGE").await, "* 1 EXPUNGE\r\n");
    a.send("DONE\r\n").await;
    assert!(a.line().await.starts_with("i1 OK"));

    // The second session, not idling, hears of the moves at its next command.
    let noop = b.ok("NOOP").await;
    assert_eq!(
        noop,
        [
            "* 1 EXPUNGE\r\n",
            "* 1 EXPUNGE\r\n",
            "* 1 EXISTS\r\n",
            "* 1 RECENT\r\n"
        ]
    );
    srv.stop().await;
}

#[tokio::test]
async fn users_see_only_their_own_mailboxes() {
    let (srv, _, addr) = server_with_mail(2).await;
    srv.user("carol@example.test").await;
    let mut c = Imap::login(addr, "carol@example.test").await;
    let sel = c.ok("SELECT INBOX").await;
    assert!(has(&sel, "* 0 EXISTS"), "{sel:?}");
    let (_, t) = c.cmd("UID FETCH 1:* (BODY[])").await;
    assert!(t.contains("OK"), "{t}");
    let (_, t) = c.cmd("SELECT \"bob@example.test/INBOX\"").await;
    assert!(t.contains("NO"), "{t}");
    srv.stop().await;
}

#[tokio::test]
async fn shutdown_says_bye() {
    let (srv, _, addr) = server_with_mail(0).await;
    let mut c = Imap::login(addr, BOB).await;
    let stopping = tokio::spawn(srv.stop());
    let bye = c.line().await;
    assert!(bye.starts_with("* BYE"), "{bye}");
    stopping.await.unwrap();
}

// ----- real clients --------------------------------------------------------------------------

/// Skips (or, with `FAKEMAIL_REQUIRE_CLIENTS=1`, fails) for a missing client.
fn missing(what: &str) {
    let msg = format!("{what} is not installed; .ci/run installs it");
    if std::env::var("FAKEMAIL_REQUIRE_CLIENTS").is_ok_and(|v| v == "1") {
        panic!("{msg} (FAKEMAIL_REQUIRE_CLIENTS=1)");
    }
    eprintln!("skipped: {msg}");
}

/// Runs a client to its end; it must succeed. Returns what it printed.
async fn run(program: &str, args: &[&str]) -> Vec<u8> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn found(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok()
}

const IMAPLIB: &str = r#"
import imaplib, sys
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
m = imaplib.IMAP4("127.0.0.1", port)
m.login(user, password)
typ, data = m.select("INBOX")
assert typ == "OK" and data == [b"2"], (typ, data)
typ, data = m.uid("SEARCH", None, "ALL")
assert data == [b"1 2"], data
typ, data = m.uid("FETCH", "2", "(RFC822)")
sys.stdout.buffer.write(data[0][1])
m.store("1", "+FLAGS", "\\Seen")
m.close()
m.logout()
"#;

#[tokio::test]
async fn python_imaplib() {
    if !found("python3") {
        return missing("python3");
    }
    let (srv, token, addr) = server_with_mail(2).await;
    let stdout = run(
        "python3",
        &["-c", IMAPLIB, &addr.port().to_string(), BOB, PASSWORD],
    )
    .await;
    let page = inbox(&srv, &token).await;
    let newest = page[0]["id"].as_str().unwrap();
    let (_, _, raw) = get_bytes(&srv, &format!("/api/v1/messages/{newest}/raw"), &token).await;
    assert_eq!(stdout, raw);
    assert_eq!(page[1]["read"], true);
    srv.stop().await;
}

#[tokio::test]
async fn curl_imap_url() {
    if !found("curl") {
        return missing("curl");
    }
    let (srv, token, addr) = server_with_mail(1).await;
    let url = format!("imap://127.0.0.1:{}/INBOX;UID=1", addr.port());
    let user = format!("{BOB}:{PASSWORD}");
    let stdout = run("curl", &["-sS", "--max-time", "10", "-u", &user, &url]).await;
    let id = inbox(&srv, &token).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, _, raw) = get_bytes(&srv, &format!("/api/v1/messages/{id}/raw"), &token).await;
    assert_eq!(stdout, raw);
    srv.stop().await;
}

#[tokio::test]
async fn envelope_and_bodystructure_from_the_mime_tree() {
    let (srv, _, addr) = server_with_mail(0).await;
    deliver(&srv, fixture("attachments.eml"), &[BOB]).await;
    let mut c = Imap::login(addr, BOB).await;
    c.ok("EXAMINE INBOX").await;
    let f = c.ok("FETCH 1 (ENVELOPE BODYSTRUCTURE BODY)").await;
    let line = &f[0];
    assert!(line.contains("ENVELOPE ("), "{line}");
    assert!(
        line.contains("BODYSTRUCTURE ((\"TEXT\" \"PLAIN\""),
        "{line}"
    );
    assert!(line.contains("\"MIXED\""), "{line}");
    assert!(line.contains("BODY ((\"TEXT\" \"PLAIN\""), "{line}");
    srv.stop().await;
}

#[tokio::test]
async fn append_copy_and_move_with_uidplus() {
    let (srv, token, addr) = server_with_mail(2).await;
    let mut c = Imap::login(addr, BOB).await;
    c.ok("CREATE Projects").await;
    let (_, t) = c.cmd("APPEND Nowhere {3+}\r\nabc").await;
    assert!(t.contains("NO [TRYCREATE]"), "{t}");
    let msg = "Subject: draft\r\n\r\nfrom a client\r\n";
    let (_, t) = c
        .cmd(&format!(
            "APPEND Projects (\\Seen \\Draft) {{{}+}}\r\n{msg}",
            msg.len()
        ))
        .await;
    assert!(t.contains("OK [APPENDUID ") && t.contains(" 1]"), "{t}");
    let projects = mailbox(&srv, &token, "Projects").await;
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0]["read"], true);

    c.ok("SELECT INBOX").await;
    c.ok("STORE 1 +FLAGS ($Label1)").await;
    let (_, t) = c.cmd("UID COPY 1 Projects").await;
    assert!(t.contains("OK [COPYUID ") && t.contains(" 1 2]"), "{t}");
    let m = c.ok("UID MOVE 2 Archive").await;
    assert!(has(&m, "* OK [COPYUID ") && has(&m, "* 2 EXPUNGE"), "{m:?}");
    let (_, t) = c.cmd("MOVE 1 Nowhere").await;
    assert!(t.contains("NO [TRYCREATE]"), "{t}");
    assert_eq!(inbox(&srv, &token).await.len(), 1);
    assert_eq!(mailbox(&srv, &token, "archive").await.len(), 1);
    // The copy keeps its flags, and the mailbox it came from keeps its own copy.
    c.ok("SELECT Projects").await;
    let f = c.ok("UID FETCH 2 FLAGS").await;
    assert!(f[0].contains("$Label1"), "{f:?}");
    let f = c.ok("UID FETCH 1 (FLAGS BODY.PEEK[])").await;
    assert!(
        f[0].contains("\\Draft") && f[0].contains("from a client"),
        "{f:?}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn long_lines_get_bad_and_the_session_goes_on() {
    let (srv, token, addr) = server_with_mail(1).await;
    let mut c = Imap::login(addr, BOB).await;
    c.ok("SELECT INBOX").await;
    // A line over 64 KiB is answered, tagged, without being kept whole.
    let long = "x".repeat(200 * 1024);
    let (_, t) = c.cmd(&format!("SEARCH TEXT {long}")).await;
    assert!(t.contains("BAD") && t.contains("too long"), "{t}");
    c.ok("NOOP").await;
    // A cut command's non-synchronising literal is dropped with it, even when its bytes
    // look like commands.
    let literal = "z1 LOGOUT\r\nzzzzzzz\r\n";
    assert_eq!(literal.len(), 20);
    let (_, t) = c
        .cmd(&format!("APPEND INBOX ({long}) {{20+}}\r\n{literal}"))
        .await;
    assert!(t.contains("BAD") && t.contains("too long"), "{t}");
    c.ok("NOOP").await;
    // A message far over the line limit goes through as a literal, byte for byte.
    let msg = format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(300 * 1024));
    let (_, t) = c
        .cmd(&format!("APPEND INBOX {{{}+}}\r\n{msg}", msg.len()))
        .await;
    assert!(t.contains("OK [APPENDUID "), "{t}");
    let all = inbox(&srv, &token).await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["size"], msg.len());
    // A malformed command gets a BAD with its own tag, so a client waiting for it is answered.
    c.send("q7 FETCH (\r\n").await;
    let t = c.line().await;
    assert!(t.starts_with("q7 BAD "), "{t}");
    c.ok("LOGOUT").await;
    srv.stop().await;
}

#[tokio::test]
async fn an_appended_message_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let p = Process::start(serve_cmd(dir.path()));
    p.user(BOB).await;
    let mut c = Imap::login(p.imap.expect("IMAP is on by default"), BOB).await;
    let msg = "Subject: appended\r\n\r\nkept\r\n";
    let (_, t) = c
        .cmd(&format!("APPEND INBOX {{{}+}}\r\n{msg}", msg.len()))
        .await;
    assert!(t.contains("OK [APPENDUID "), "{t}");
    // The OK alone must mean the message is on disk.
    p.signal("KILL");
    drop(p);

    let again = TestServer::start_with(test_config(), Some(dir.path())).await;
    let token = again.login(BOB).await;
    assert_eq!(inbox(&again, &token).await[0]["subject"], "appended");
    again.stop().await;
}

#[tokio::test]
async fn mbsync_pulls_a_maildir_byte_identical_to_rest_raw() {
    if !found("mbsync") {
        return missing("mbsync (Debian isync)");
    }
    let (srv, token, addr) = server_with_mail(2).await;
    deliver(&srv, fixture("attachments.eml"), &[BOB]).await;
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    std::fs::create_dir_all(&maildir).unwrap();
    let config = dir.path().join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount fm\nHost 127.0.0.1\nPort {port}\nUser {BOB}\nPass \"{PASSWORD}\"\n\
             SSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore fm-remote\nAccount fm\n\n\
             MaildirStore fm-local\nPath {path}/\nInbox {path}/INBOX\n\n\
             Channel fm\nFar :fm-remote:\nNear :fm-local:\nPatterns INBOX\nCreate Near\nSync Pull\n\
             SyncState *\n",
            port = addr.port(),
            path = maildir.display(),
        ),
    )
    .unwrap();
    run("mbsync", &["-c", &config.display().to_string(), "-a"]).await;
    let got: Vec<Vec<u8>> = std::fs::read_dir(maildir.join("INBOX/new"))
        .unwrap()
        .chain(std::fs::read_dir(maildir.join("INBOX/cur")).unwrap())
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    // mbsync keeps a Maildir in the local convention: LF line ends, and its own `X-TUID`
    // header (how it finds a message it stored). Undone, every message is the REST source.
    let mut got: Vec<Vec<u8>> = got
        .into_iter()
        .map(|m| {
            let text = String::from_utf8_lossy(&m).into_owned();
            let lines: Vec<&str> = text
                .split('\n')
                .filter(|l| !l.starts_with("X-TUID: "))
                .collect();
            lines.join("\n").into_bytes()
        })
        .collect();
    let mut want = Vec::new();
    for m in inbox(&srv, &token).await {
        let id = m["id"].as_str().unwrap();
        let raw = get_bytes(&srv, &format!("/api/v1/messages/{id}/raw"), &token)
            .await
            .2;
        want.push(
            String::from_utf8_lossy(&raw)
                .replace("\r\n", "\n")
                .into_bytes(),
        );
    }
    got.sort();
    want.sort();
    assert_eq!(got.len(), 3);
    for (g, w) in got.iter().zip(&want) {
        assert!(
            g == w,
            "the Maildir differs from the REST source:\n{:?}\n---\n{:?}",
            String::from_utf8_lossy(g),
            String::from_utf8_lossy(w)
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn mailbox_names_in_modified_utf7_unless_utf8_is_enabled() {
    let (srv, token, addr) = server_with_mail(0).await;
    let body = serde_json::json!({ "name": "Reçus" });
    let (s, v) = srv
        .call("POST", "/api/v1/mailboxes", Some(&token), Some(body))
        .await;
    assert_eq!(s, 201, "{v}");
    let mut c = Imap::login(addr, BOB).await;
    let list = c.ok("LIST \"\" \"Re*\"").await;
    assert_eq!(list, ["* LIST () \"/\" Re&AOc-us\r\n"]);
    c.ok("APPEND Re&AOc-us {4+}\r\nhi\r\n").await;
    let status = c.ok("STATUS Re&AOc-us (MESSAGES)").await;
    assert!(has(&status, "(MESSAGES 1)"), "{status:?}");
    let select = c.ok("SELECT Re&AOc-us").await;
    assert!(has(&select, "* 1 EXISTS"), "{select:?}");
    c.ok("CREATE \"Tom &- Jerry/&ZeVnLIqe-\"").await;
    c.ok("SUBSCRIBE Re&AOc-us").await;
    let lsub = c.ok("LSUB \"\" \"Re*\"").await;
    assert_eq!(lsub, ["* LSUB () \"/\" Re&AOc-us\r\n"]);
    let (_, t) = c.cmd("SELECT Re&AOc").await;
    assert!(
        t.contains("NO"),
        "malformed modified UTF-7 names no mailbox: {t}"
    );
    // REST keeps UTF-8 names.
    let (s, v) = srv
        .call("GET", "/api/v1/mailboxes", Some(&token), None)
        .await;
    assert_eq!(s, 200);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Reçus"), "{names:?}");
    assert!(names.contains(&"Tom & Jerry/日本語"), "{names:?}");

    // After ENABLE UTF8=ACCEPT, names are UTF-8 both ways.
    let mut c = Imap::login(addr, BOB).await;
    let caps = c.ok("CAPABILITY").await;
    assert!(has(&caps, " UTF8=ACCEPT"), "{caps:?}");
    let enabled = c.ok("ENABLE UTF8=ACCEPT").await;
    assert_eq!(enabled, ["* ENABLED UTF8=ACCEPT\r\n"]);
    let list = c.ok("LIST \"\" \"*\"").await;
    assert!(has(&list, "Reçus"), "{list:?}");
    assert!(has(&list, "Tom & Jerry/日本語"), "{list:?}");
    let select = c.ok("SELECT \"Reçus\"").await;
    assert!(has(&select, "* 1 EXISTS"), "{select:?}");
    srv.stop().await;
}

#[tokio::test]
async fn nested_mailboxes_with_the_slash_delimiter() {
    let (srv, token, addr) = server_with_mail(0).await;
    let mut c = Imap::login(addr, BOB).await;
    c.ok("CREATE Projects/2026/").await;
    let list = c.ok("LIST \"\" \"Projects/%\"").await;
    assert!(has(&list, "\"/\" Projects/2026"), "{list:?}");
    // The level above is made with it (RFC 3501 6.3.3); a trailing delimiter is dropped.
    let list = c.ok("LIST \"\" Projects").await;
    assert!(has(&list, "\"/\" Projects\r\n"), "{list:?}");
    let list = c.ok("LIST \"\" \"%\"").await;
    assert!(
        !has(&list, "Projects/2026"),
        "% stops at the delimiter: {list:?}"
    );
    let (_, t) = c.cmd("CREATE Projects//x").await;
    assert!(t.contains("NO"), "{t}");
    c.ok("SELECT Projects/2026").await;
    // DELETE takes the mail in the mailbox with it (RFC 3501 6.3.4).
    c.ok("APPEND Projects {4+}\r\nhi\r\n").await;
    c.ok("DELETE Projects").await;
    let (s, _) = srv
        .call(
            "GET",
            "/api/v1/mailboxes/Projects/messages",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, 404, "gone over REST too");
    let list = c.ok("LIST \"\" Projects").await;
    assert!(list.is_empty(), "{list:?}");
    // The REST API names it the same, percent-encoded in a path.
    let (s, _) = srv
        .call(
            "GET",
            "/api/v1/mailboxes/Projects%2F2026/messages",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, 200);
    srv.stop().await;
}

#[tokio::test]
async fn admin_sees_all_mail_read_only() {
    let mut config = test_config();
    config.admin_token = Some("imap-admin-token".into());
    let srv = TestServer::start_with(config, None).await;
    srv.user(BOB).await;
    let addr = srv.imap.unwrap();
    send_smtp(
        &srv,
        "alice@example.test",
        &[BOB],
        "Subject: one\r\n\r\nfor bob\r\n",
    )
    .await;
    // An address without an account, and a message to two: each message once.
    let to = ["nobody@example.test", BOB];
    send_smtp(
        &srv,
        "alice@example.test",
        &to,
        "Subject: two\r\n\r\nfor both\r\n",
    )
    .await;
    let (mut c, _) = Imap::connect(addr).await;
    let (_, t) = c.cmd("LOGIN admin wrong-token").await;
    assert!(t.contains("NO"), "{t}");
    c.ok("LOGIN admin imap-admin-token").await;
    let list = c.ok("LIST \"\" *").await;
    assert_eq!(list.len(), 1, "{list:?}");
    let sel = c.ok("SELECT INBOX").await;
    assert!(has(&sel, "* 2 EXISTS"), "{sel:?}");
    let f = c.ok("FETCH 1:* (FLAGS BODY.PEEK[TEXT])").await;
    assert!(
        f[0].contains("for bob") && f[1].contains("for both"),
        "{f:?}"
    );
    for command in [
        "STORE 1 +FLAGS (\\Deleted)",
        "EXPUNGE",
        "CREATE x",
        "COPY 1 INBOX",
    ] {
        let (_, t) = c.cmd(command).await;
        assert!(t.contains("NO"), "{command}: {t}");
    }
    // New mail reaches the operator's view too.
    c.send("i1 IDLE\r\n").await;
    assert!(c.line().await.starts_with("+ "));
    send_smtp(
        &srv,
        "alice@example.test",
        &["carol@example.test"],
        "Subject: 3\r\n\r\nc\r\n",
    )
    .await;
    assert_eq!(c.line().await, "* 3 EXISTS\r\n");
    srv.stop().await;
}

#[tokio::test]
async fn the_async_imap_client() {
    use futures_util::TryStreamExt;
    let (srv, token, addr) = server_with_mail(2).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap().expect("greeting");
    let mut s = client
        .login(BOB, PASSWORD)
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    assert!(s.capabilities().await.unwrap().has_str("UIDPLUS"));
    let names: Vec<String> = s
        .list(Some(""), Some("*"))
        .await
        .unwrap()
        .map_ok(|n| n.name().to_owned())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(names, ["INBOX", "Sent", "Archive", "Trash"]);
    let selected = s.select("INBOX").await.unwrap();
    assert_eq!((selected.exists, selected.uid_next), (2, Some(3)));
    let fetched: Vec<_> = s
        .uid_fetch("1:*", "(UID FLAGS ENVELOPE BODY.PEEK[])")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(fetched.len(), 2);
    let subject = fetched[1]
        .envelope()
        .unwrap()
        .subject
        .as_deref()
        .unwrap()
        .to_vec();
    assert_eq!(subject, b"note 1");
    let newest = inbox_newest(&srv, &token).await;
    assert_eq!(fetched[1].body().unwrap(), newest.as_slice());
    let unseen = s.uid_search("UNSEEN").await.unwrap();
    assert_eq!(unseen.len(), 2);
    let _: Vec<_> = s
        .uid_store("1", "+FLAGS (\\Seen \\Deleted)")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let gone: Vec<_> = s.expunge().await.unwrap().try_collect().await.unwrap();
    assert_eq!(gone, [1]);
    s.append(
        "Archive",
        Some("(\\Seen)"),
        None,
        b"Subject: kept\r\n\r\nkept\r\n",
    )
    .await
    .unwrap();
    s.uid_mv("2", "Trash").await.unwrap();
    assert_eq!(mailbox(&srv, &token, "trash").await.len(), 1);
    assert_eq!(mailbox(&srv, &token, "archive").await.len(), 1);
    assert!(inbox(&srv, &token).await.is_empty());

    // IDLE: a message over SMTP wakes it.
    let mut idle = s.idle();
    idle.init().await.unwrap();
    let (wait, _stop) = idle.wait_with_timeout(Duration::from_secs(5));
    let delivered = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send_smtp(
            &srv,
            "alice@example.test",
            &[BOB],
            "Subject: wake\r\n\r\nup\r\n",
        )
        .await;
    };
    let (woke, ()) = tokio::join!(wait, delivered);
    assert!(
        matches!(
            woke.unwrap(),
            async_imap::extensions::idle::IdleResponse::NewData(_)
        ),
        "EXISTS wakes IDLE"
    );
    let mut s = idle.done().await.unwrap();
    s.logout().await.unwrap();
    srv.stop().await;
}

/// The source of the newest message in bob's inbox, over REST.
async fn inbox_newest(srv: &TestServer, token: &str) -> Vec<u8> {
    let id = inbox(srv, token).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    get_bytes(srv, &format!("/api/v1/messages/{id}/raw"), token)
        .await
        .2
}

#[tokio::test]
async fn subscriptions_are_kept_per_user() {
    let (srv, _, addr) = server_with_mail(0).await;
    let mut c = Imap::login(addr, BOB).await;
    assert!(c.ok("LSUB \"\" *").await.is_empty());
    c.ok("CREATE Work").await;
    c.ok("SUBSCRIBE Work").await;
    c.ok("SUBSCRIBE inbox").await;
    let (_, t) = c.cmd("SUBSCRIBE Later").await;
    assert!(t.contains("NO"), "no such mailbox: {t}");
    c.ok("CREATE Later").await;
    c.ok("SUBSCRIBE Later").await;
    // A subscription outlives its mailbox (RFC 3501 6.3.6).
    c.ok("DELETE Later").await;
    let lsub = c.ok("LSUB \"\" *").await;
    assert_eq!(lsub.len(), 3, "{lsub:?}");
    assert!(
        has(&lsub, "* LSUB () \"/\" INBOX") && has(&lsub, "Later"),
        "{lsub:?}"
    );
    c.ok("UNSUBSCRIBE Later").await;
    let lsub = c.ok("LSUB \"\" W*").await;
    assert_eq!(lsub, ["* LSUB () \"/\" Work\r\n"]);
    srv.stop().await;
}

#[tokio::test]
async fn rename_keeps_the_mail_and_takes_the_levels_below() {
    let (srv, token, addr) = server_with_mail(0).await;
    let mut c = Imap::login(addr, BOB).await;
    c.ok("CREATE Work/2026").await;
    c.ok("APPEND Work/2026 {4+}\r\nhi\r\n").await;
    let before = c.ok("STATUS Work/2026 (UIDVALIDITY UIDNEXT)").await;
    c.ok("RENAME Work Jobs").await;
    let list = c.ok("LIST \"\" *").await;
    assert!(
        has(&list, " Jobs\r\n") && has(&list, " Jobs/2026\r\n"),
        "{list:?}"
    );
    assert!(!has(&list, "Work"), "{list:?}");
    let after = c.ok("STATUS Jobs/2026 (UIDVALIDITY UIDNEXT)").await;
    assert_eq!(before[0].replace("Work", "Jobs"), after[0]);
    assert_eq!(mailbox(&srv, &token, "Jobs%2F2026").await.len(), 1);
    for (command, why) in [
        ("RENAME INBOX Old", "system"),
        ("RENAME Jobs Trash", "system"),
        ("RENAME Nowhere Else", "missing"),
        ("RENAME Jobs/2026 Jobs", "exists"),
    ] {
        let (_, t) = c.cmd(command).await;
        assert!(t.contains("NO"), "{why}: {t}");
    }
    srv.stop().await;
}

const IMAPLIB_STARTTLS: &str = r#"
import imaplib, ssl, sys
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
m = imaplib.IMAP4("127.0.0.1", port)
assert "STARTTLS" in m.capabilities, m.capabilities
# The server's certificate is self-signed: this client takes it as it is.
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
m.starttls(ssl_context=ctx)
m.login(user, password)
typ, data = m.select("INBOX")
assert typ == "OK" and data == [b"1"], (typ, data)
m.logout()
"#;

#[tokio::test]
async fn starttls_with_python_imaplib() {
    if !found("python3") {
        return missing("python3");
    }
    let (srv, _, addr) = server_with_mail(1).await;
    let port = addr.port().to_string();
    run("python3", &["-c", IMAPLIB_STARTTLS, &port, BOB, PASSWORD]).await;
    // After TLS is on, STARTTLS is not offered again; before login, only once.
    let (mut c, _) = Imap::connect(addr).await;
    c.ok(&format!("LOGIN {BOB} \"{PASSWORD}\"")).await;
    let (_, t) = c.cmd("STARTTLS").await;
    assert!(t.contains("BAD"), "{t}");
    srv.stop().await;
}

/// The tests of imapclient's (4.1.0) live suite that fail through the client or the test
/// itself, not the server. Run against Dovecot 2.3.19 on the same machine, the first four
/// fail too:
/// - `test_fetch` (plain and UID): compares its `Envelope`, a dataclass since imapclient 3,
///   with `assertSequenceEqual`, which wants a sequence;
/// - `test_move`: imapclient calls `imaplib`'s `move`, which Python's `imaplib` lacks;
/// - `test_small_read_timeout_fail`: expects a NOOP not to be answered within 10 µs, and a
///   local server answers sooner;
/// - `test_small_connection_timeout_fail`: expects connecting and reading the greeting to take
///   over 1 ms. It passes against Dovecot, whose login process takes longer to greet; fakemail
///   greets within the millisecond.
const IMAPCLIENT_CLIENT_BUGS: [&str; 4] = [
    "test_fetch",
    "test_move",
    "test_small_connection_timeout_fail",
    "test_small_read_timeout_fail",
];

#[tokio::test]
async fn imapclient_live_test_suite() {
    let python = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .join("compat-clients/venv/bin/python");
    let installed = Command::new(&python)
        .args(["-c", "import imapclient"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        return missing("imapclient (PyPI, in the clients' venv)");
    }
    let (srv, _, addr) = server_with_mail(0).await;
    srv.user("live@example.test").await;
    let dir = tempfile::tempdir().unwrap();
    let ini = dir.path().join("livetest.ini");
    std::fs::write(
        &ini,
        format!(
            "[DEFAULT]\nhost = 127.0.0.1\nport = {}\nssl = false\n\
             username = live@example.test\npassword = {PASSWORD}\n",
            addr.port()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "imapclient.livetest"]).arg(&ini);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(report.contains("\nRan "), "{report}");
    let failed: Vec<&str> = report
        .lines()
        .filter_map(|l| {
            l.strip_prefix("ERROR: ")
                .or_else(|| l.strip_prefix("FAIL: "))
        })
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for test in &failed {
        assert!(
            IMAPCLIENT_CLIENT_BUGS.contains(test),
            "{test} failed:\n{report}"
        );
    }
    srv.stop().await;
}
