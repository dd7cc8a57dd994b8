//! Real POP3 clients against the real server: Python's `poplib` (plain and with STLS), curl's
//! `pop3://` URLs (plain and with STLS), and Debian's `mpop` fetching into a Maildir (plain and
//! with STLS). Every message a client fetches must be byte-identical to its source over REST
//! (`GET /api/v1/messages/{id}/raw`); mpop, which writes Unix line ends into the Maildir, once
//! its LF are CRLF again.
//!
//! A client that is not installed (`python3`, a curl without POP3, `mpop`) makes its test print
//! why and pass; `FAKEMAIL_REQUIRE_CLIENTS=1` (set by `.ci/run`, which installs them) makes
//! that a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Skips (or, with `FAKEMAIL_REQUIRE_CLIENTS=1`, fails) for a missing client.
fn missing(what: &str) {
    let msg = format!("{what} is not installed; .ci/run installs it");
    if std::env::var("FAKEMAIL_REQUIRE_CLIENTS").is_ok_and(|v| v == "1") {
        panic!("{msg} (FAKEMAIL_REQUIRE_CLIENTS=1)");
    }
    eprintln!("skipped: {msg}");
}

/// Whether `program` runs with `arg` and prints `needle` (on stdout).
fn has(program: &str, arg: &str, needle: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(needle))
}

/// Runs `cmd` off the runtime; asserts it succeeds; returns its stdout.
async fn run(mut cmd: Command, what: &str) -> Vec<u8> {
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

const USER: &str = "alice@example.test";

/// Alice with three messages: plain text, one with lines that need dot-stuffing, and a MIME one
/// with 8-bit text and an attachment. Returns her token and the sources over REST, oldest first.
async fn alice(srv: &TestServer) -> (String, Vec<Vec<u8>>) {
    let token = srv.user(USER).await;
    let bodies = [
        "Subject: plain\r\n\r\nHello.\r\n".to_owned(),
        "Subject: dots\r\n\r\n.leading\r\n..two\r\n.\r\nend\r\n".to_owned(),
        "Subject: mime\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Grüße aus Köln\r\n--b\r\nContent-Type: application/octet-stream; name=\"x.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n--b--\r\n"
            .to_owned(),
    ];
    for body in &bodies {
        let full = format!("From: shop@example.test\r\nTo: {USER}\r\n{body}");
        send_smtp(srv, "shop@example.test", &[USER], &full).await;
    }
    let mut ids: Vec<String> = inbox(srv, &token)
        .await
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    ids.reverse();
    let mut sources = Vec::new();
    for id in &ids {
        let (s, _, raw) = get_bytes(srv, &format!("/api/v1/messages/{id}/raw"), &token).await;
        assert_eq!(s, 200);
        sources.push(raw);
    }
    (token, sources)
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

const POPLIB: &str = r#"
import os, poplib, ssl, sys
host, port, user, password, out, stls = sys.argv[1:7]
p = poplib.POP3(host, int(port), timeout=30)
caps = p.capa()
assert "UIDL" in caps and "TOP" in caps and "STLS" in caps, caps
if stls == "1":
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    p.stls(ctx)
    assert "STLS" not in p.capa()
p.user(user)
p.pass_(password)
count, size = p.stat()
assert count == 3, count
_, listing, _ = p.list()
_, uids, _ = p.uidl()
assert len(listing) == 3 and len(uids) == 3, (listing, uids)
for i in range(1, count + 1):
    _, lines, octets = p.retr(i)
    with open(os.path.join(out, "%d" % i), "wb") as f:
        f.write(b"".join(l + b"\r\n" for l in lines))
_, top, _ = p.top(1, 0)
assert top[-1] == b"", top
p.dele(1)
p.rset()
p.dele(2)
p.quit()
print("ok")
"#;

async fn poplib(stls: bool) {
    if !has("python3", "--version", "Python 3") {
        return missing("python3 (for poplib)");
    }
    let srv = TestServer::start().await;
    let (token, sources) = alice(&srv).await;
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(POPLIB)
        .arg("127.0.0.1")
        .arg(srv.pop3.unwrap().port().to_string())
        .args([USER, PASSWORD])
        .arg(out.path())
        .arg(if stls { "1" } else { "0" });
    let stdout = run(cmd, "poplib").await;
    assert!(String::from_utf8_lossy(&stdout).ends_with("ok\n"));
    for (i, source) in sources.iter().enumerate() {
        let got = std::fs::read(out.path().join((i + 1).to_string())).unwrap();
        assert_eq!(&got, source, "message {}", i + 1);
    }
    // DELE 2 took effect at QUIT; DELE 1 was undone by RSET.
    let left = inbox(&srv, &token).await;
    assert_eq!(left.len(), 2);
    srv.stop().await;
}

#[tokio::test]
async fn python_poplib_reads_every_message_byte_for_byte() {
    poplib(false).await;
}

#[tokio::test]
async fn python_poplib_over_stls() {
    poplib(true).await;
}

/// Whether this curl speaks POP3.
fn curl_has_pop3() -> bool {
    has("curl", "--version", "pop3")
}

async fn curl(stls: bool) {
    if !curl_has_pop3() {
        return missing("curl with pop3:// support");
    }
    let srv = TestServer::start().await;
    let (_, sources) = alice(&srv).await;
    let base = format!("pop3://127.0.0.1:{}", srv.pop3.unwrap().port());
    let curl = |path: &str, extra: &[&str]| {
        let mut cmd = Command::new("curl");
        cmd.args(["--silent", "--show-error", "--max-time", "30"])
            .args(["--user", &format!("{USER}:{PASSWORD}")]);
        if stls {
            cmd.args(["--ssl-reqd", "--insecure"]);
        }
        cmd.args(extra).arg(format!("{base}{path}"));
        cmd
    };
    // The URL without a message lists the maildrop (LIST).
    let listing = String::from_utf8(run(curl("/", &[]), "curl LIST").await).unwrap();
    let expected: String = sources
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{} {}\r\n", i + 1, s.len()))
        .collect();
    assert_eq!(listing, expected);
    for (i, source) in sources.iter().enumerate() {
        let got = run(curl(&format!("/{}", i + 1), &[]), "curl RETR").await;
        assert_eq!(&got, source, "message {}", i + 1);
    }
    let uidl =
        String::from_utf8(run(curl("/", &["--request", "UIDL"]), "curl UIDL").await).unwrap();
    assert_eq!(uidl.lines().count(), 3, "{uidl}");
    // A wrong password fails (curl exits 67: login denied).
    let mut bad = Command::new("curl");
    bad.args(["--silent", "--user", &format!("{USER}:wrong")])
        .arg(format!("{base}/1"));
    let status = tokio::task::spawn_blocking(move || bad.status())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(67));
    srv.stop().await;
}

#[tokio::test]
async fn curl_pop3_urls_list_and_retrieve() {
    curl(false).await;
}

#[tokio::test]
async fn curl_pop3_urls_over_stls() {
    curl(true).await;
}

async fn mpop(stls: bool) {
    if !has("mpop", "--version", "mpop") {
        return missing("mpop (Debian: apt-get install mpop)");
    }
    let srv = TestServer::start().await;
    let (token, sources) = alice(&srv).await;
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let tls = if stls {
        "tls on\ntls_starttls on\ntls_certcheck off\n"
    } else {
        "tls off\n"
    };
    let config = format!(
        "defaults\n{tls}\naccount fakemail\nhost 127.0.0.1\nport {port}\nuser {USER}\n\
         password {PASSWORD}\nauth user\ndelivery maildir {maildir}\nuidls_file {uidls}\n\
         received_header off\nkeep on\n",
        port = srv.pop3.unwrap().port(),
        maildir = maildir.display(),
        uidls = dir.path().join("uidls").display(),
    );
    let rc = dir.path().join("mpoprc");
    std::fs::write(&rc, config).unwrap();
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let fetch = || {
        let mut cmd = Command::new("mpop");
        cmd.arg("--file").arg(&rc).arg("--quiet").arg("fakemail");
        cmd
    };
    run(fetch(), "mpop").await;
    let mut got: Vec<Vec<u8>> = files_in(&maildir.join("new"))
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    assert_eq!(got.len(), 3);
    // Maildir file names need not sort by arrival: compare as sets.
    let mut want = sources.clone();
    got.sort();
    want.sort();
    for (g, w) in got.iter().zip(&want) {
        // mpop stores messages with Unix line ends: with CRLF put back, byte for byte.
        assert!(!g.contains(&b'\r'), "mpop wrote LF line ends");
        let crlf = String::from_utf8(g.clone()).unwrap().replace('\n', "\r\n");
        assert_eq!(crlf.as_bytes(), w.as_slice());
    }
    // A second run fetches nothing new: the unique ids are the same.
    run(fetch(), "mpop again").await;
    assert_eq!(files_in(&maildir.join("new")).len(), 3);
    assert_eq!(
        inbox(&srv, &token).await.len(),
        3,
        "keep on: nothing deleted"
    );
    srv.stop().await;
}

#[tokio::test]
async fn mpop_fetches_into_a_maildir() {
    mpop(false).await;
}

#[tokio::test]
async fn mpop_fetches_over_stls() {
    mpop(true).await;
}
