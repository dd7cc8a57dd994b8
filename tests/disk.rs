//! A full disk, end to end against the real server on 127.0.0.1:0: while the data dir's
//! filesystem has less free space than `--min-free-space`, SMTP answers `452 4.3.1`, a REST or
//! Mailpit send `507 storage_full`, IMAP APPEND `NO [OVERQUOTA]` and `/readyz` 507, mail
//! stored before still reads back byte for byte, and new mail is taken again by itself once
//! there is room. On a small tmpfs (where this machine lets the test mount one), the disk is
//! really filled: first below the threshold, then completely, so that the store itself fails
//! to write; a restart then finds every message acknowledged before.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use fakemail::config::Config;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";
const TOKEN: &str = "disk-test-admin-token";

/// The test config with the Mailpit API on a port of its own and a known admin token.
fn config(min_free_space: u64) -> Config {
    let mut c = test_config();
    c.admin_token = Some(TOKEN.into());
    c.compat.mailpit_addr = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    c.service.min_free_space = min_free_space;
    c
}

fn message(subject: &str) -> String {
    format!(
        "From: {ALICE}\r\nTo: {BOB}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.test>\r\n\
         \r\nThe body of {subject}.\r\n"
    )
}

/// Sends `subject` to Bob over SMTP; returns the reply to the end of DATA.
async fn smtp_send(srv: &TestServer, subject: &str) -> SmtpReply {
    let mut c = SmtpClient::connect(srv.smtp).await;
    c.expect("EHLO client.test", 250).await;
    let r = c.mail(ALICE, &[BOB], &message(subject)).await;
    c.expect("QUIT", 221).await;
    r
}

/// Bob's inbox: (subject, source) of each message, newest first.
async fn bobs_mail(srv: &TestServer, bob: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in inbox(srv, bob).await {
        let path = format!("/api/v1/messages/{}/raw", m["id"].as_str().unwrap());
        let r = srv.reply("GET", &path, Some(bob), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        out.push((m["subject"].as_str().unwrap().to_owned(), r.text));
    }
    out
}

/// Every way in of new mail is refused as a full disk, each in its protocol's words; reading
/// goes on.
async fn every_way_in_is_refused(srv: &TestServer, bob: &str) {
    // SMTP: at MAIL, before the client sends anything more.
    let mut c = SmtpClient::connect(srv.smtp).await;
    c.expect("EHLO client.test", 250).await;
    let r = c.expect(&format!("MAIL FROM:<{ALICE}>"), 452).await;
    assert_eq!(r.status(), Some("4.3.1"), "{r:?}");
    c.expect("NOOP", 250).await;
    c.expect("QUIT", 221).await;
    // REST send.
    let body = json!({"to": [BOB], "subject": "refused", "text": "no room"});
    let got = srv
        .call("POST", "/api/v1/messages", Some(bob), Some(body))
        .await;
    assert_error(&got, 507, "storage_full");
    // The Mailpit API's send.
    let mailpit = srv.mailpit.unwrap();
    let r = send(
        srv.client
            .post(format!("http://{mailpit}/api/v1/send"))
            .basic_auth("anyone", Some(TOKEN))
            .json(&json!({"From": {"Email": ALICE}, "To": [{"Email": BOB}], "Subject": "x"})),
    )
    .await;
    assert_error(&(r.status, r.json), 507, "storage_full");
    // IMAP APPEND.
    let t = imap_append(srv.imap.unwrap(), BOB).await;
    assert!(t.starts_with("a2 NO [OVERQUOTA]"), "{t}");
    // Readiness and the metrics say so.
    let got = srv.call("GET", "/readyz", None, None).await;
    assert_error(&got, 507, "storage_full");
    let metrics = srv.reply("GET", "/metrics", None, None).await.text;
    assert!(
        metrics.contains("fakemail_storage_full{reason=\"min_free_space\"} 1\n")
            || metrics.contains("fakemail_storage_full{reason=\"write_failed\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("\nfakemail_ready 0\n"), "{metrics}");
}

/// Logs in as `user` over IMAP and appends a small message to INBOX; returns the tagged
/// answer to the APPEND.
async fn imap_append(addr: SocketAddr, user: &str) -> String {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    tagged(&mut r, "* OK").await;
    w.write_all(format!("a1 LOGIN {user} \"{PASSWORD}\"\r\n").as_bytes())
        .await
        .unwrap();
    let t = tagged(&mut r, "a1 ").await;
    assert!(t.starts_with("a1 OK"), "{t}");
    w.write_all(b"a2 APPEND INBOX {4+}\r\nhi\r\n\r\n")
        .await
        .unwrap();
    tagged(&mut r, "a2 ").await
}

/// Reads IMAP lines until one starts with `start`; returns it.
async fn tagged(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, start: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = tokio::time::timeout(TIMEOUT, r.read_line(&mut line))
            .await
            .expect("an IMAP answer in time")
            .unwrap();
        assert!(n > 0, "IMAP connection closed");
        if line.starts_with(start) {
            return line;
        }
    }
}

#[tokio::test]
async fn a_threshold_above_any_disk_refuses_new_mail_and_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start_with(config(1 << 20), Some(dir.path())).await;
    let bob = srv.user(BOB).await;
    let r = smtp_send(&srv, "before").await;
    assert_eq!(r.code, 250, "{r:?}");
    let before = bobs_mail(&srv, &bob).await;
    assert_eq!(before.len(), 1);
    srv.stop().await;

    // More free space than any disk has.
    let srv = TestServer::start_with(config(u64::MAX), Some(dir.path())).await;
    let bob = srv.login(BOB).await;
    every_way_in_is_refused(&srv, &bob).await;
    assert_eq!(
        bobs_mail(&srv, &bob).await,
        before,
        "stored mail reads back as it was"
    );
    let (s, _) = srv.call("GET", "/healthz", None, None).await;
    assert_eq!(s, 200, "alive, just full");
    srv.stop().await;

    // Without the check, the same store takes mail again.
    let srv = TestServer::start_with(config(0), Some(dir.path())).await;
    let bob = srv.login(BOB).await;
    assert_eq!(smtp_send(&srv, "after").await.code, 250);
    let subjects: Vec<String> = bobs_mail(&srv, &bob)
        .await
        .into_iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(subjects, ["after", "before"]);
    srv.stop().await;
}

// ----- a real, small filesystem ----------------------------------------------------------------

/// A tmpfs mounted for one test; unmounted when dropped, also when the test fails.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `8m`) on a new directory, or says why it cannot.
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?.keep();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir(&dir);
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily, so that a test that failed with the server still running leaves no mount.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Bytes free on the filesystem of `dir`.
fn free_space(dir: &Path) -> u64 {
    let s = rustix::fs::statvfs(dir).unwrap();
    s.f_bavail * s.f_frsize
}

/// Writes a file of zeros at `path` until `free_space(dir)` is at most `leave` bytes, or the
/// disk is full (`leave` 0). Returns the file's size.
fn fill(dir: &Path, path: &Path, leave: u64) -> u64 {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let chunk = vec![0u8; 64 << 10];
    loop {
        let free = free_space(dir);
        if free <= leave {
            break;
        }
        let n = (free - leave).min(chunk.len() as u64) as usize;
        match f.write_all(&chunk[..n]) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    f.sync_all().ok();
    f.metadata().unwrap().len()
}

#[tokio::test]
async fn a_small_disk_filled_below_the_threshold_refuses_mail_and_resumes_by_itself() {
    let fs = match Tmpfs::mount("8m") {
        Ok(fs) => fs,
        Err(why) => {
            println!("skipped: cannot mount a tmpfs here ({why})");
            return;
        }
    };
    let data = fs.0.join("data");
    let filler = fs.0.join("filler");
    let threshold = 1 << 20;
    let srv = TestServer::start_with(config(threshold), Some(&data)).await;
    let bob = srv.user(BOB).await;
    for i in 0..3 {
        assert_eq!(smtp_send(&srv, &format!("before-{i}")).await.code, 250);
    }
    let before = bobs_mail(&srv, &bob).await;

    // Leave half the threshold free: new mail is refused once the guard measures again.
    fill(&fs.0, &filler, threshold / 2);
    wait_until("readiness says the disk is full", || async {
        srv.call("GET", "/readyz", None, None).await.0 == 507
    })
    .await;
    every_way_in_is_refused(&srv, &bob).await;
    // Also at the end of DATA, when the disk fills between MAIL and the final dot: the
    // transaction began with room, the delivery finds none.
    std::fs::remove_file(&filler).unwrap();
    wait_until("readiness says there is room", || async {
        srv.call("GET", "/readyz", None, None).await.0 == 200
    })
    .await;
    let mut c = SmtpClient::connect(srv.smtp).await;
    c.expect("EHLO client.test", 250).await;
    c.expect(&format!("MAIL FROM:<{ALICE}>"), 250).await;
    c.expect(&format!("RCPT TO:<{BOB}>"), 250).await;
    fill(&fs.0, &filler, threshold / 2);
    wait_until("readiness says the disk is full", || async {
        srv.call("GET", "/readyz", None, None).await.0 == 507
    })
    .await;
    c.expect("DATA", 354).await;
    c.send(message("mid-transaction") + ".\r\n").await;
    let r = c.reply().await;
    assert_eq!((r.code, r.status()), (452, Some("4.3.1")), "{r:?}");
    c.expect("QUIT", 221).await;
    assert_eq!(
        bobs_mail(&srv, &bob).await,
        before,
        "nothing stored is damaged"
    );

    // Room again: mail is taken without a restart.
    std::fs::remove_file(&filler).unwrap();
    wait_until("readiness says there is room", || async {
        srv.call("GET", "/readyz", None, None).await.0 == 200
    })
    .await;
    assert_eq!(smtp_send(&srv, "after").await.code, 250);
    let send = json!({"to": [BOB], "subject": "after-rest", "text": "room again"});
    let (s, v) = srv
        .call("POST", "/api/v1/messages", Some(&bob), Some(send))
        .await;
    assert_eq!(s, 201, "{v}");
    let now = bobs_mail(&srv, &bob).await;
    assert_eq!(now[2..], before[..]);
    assert_eq!(
        now[..2].iter().map(|m| m.0.as_str()).collect::<Vec<_>>(),
        ["after-rest", "after"]
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_write_failing_on_a_full_disk_is_a_full_disk_and_a_restart_recovers() {
    let fs = match Tmpfs::mount("8m") {
        Ok(fs) => fs,
        Err(why) => {
            println!("skipped: cannot mount a tmpfs here ({why})");
            return;
        }
    };
    let data = fs.0.join("data");
    let filler = fs.0.join("filler");
    // No threshold: the store itself meets the full disk.
    let srv = TestServer::start_with(config(0), Some(&data)).await;
    let bob = srv.user(BOB).await;
    assert_eq!(smtp_send(&srv, "before").await.code, 250);
    let filled = fill(&fs.0, &filler, 0);
    println!("filler: {filled} bytes; free now: {}", free_space(&fs.0));

    // Send until the store fails to write; every message acknowledged is kept.
    let mut accepted = vec!["before".to_owned()];
    let mut failure = None;
    for i in 0..200 {
        let subject = format!("full-{i:03}");
        let r = smtp_send(&srv, &subject).await;
        match r.code {
            250 => accepted.push(subject),
            _ => {
                failure = Some(r);
                break;
            }
        }
    }
    let r = failure.expect("the store fails to write on a full disk");
    println!(
        "accepted on the full disk: {}; then {r:?}",
        accepted.len() - 1
    );
    assert_eq!((r.code, r.status()), (452, Some("4.3.1")), "{r:?}");
    every_way_in_is_refused(&srv, &bob).await;
    let metrics = srv.reply("GET", "/metrics", None, None).await.text;
    assert!(
        metrics.contains("fakemail_storage_full{reason=\"write_failed\"} 1\n"),
        "{metrics}"
    );
    // Room again does not revive the store that failed: new mail waits for a restart.
    std::fs::remove_file(&filler).unwrap();
    let r = smtp_send_raw(&srv).await;
    assert_eq!(r, 452, "still refused until a restart");
    let reads = inbox(&srv, &bob).await.len();
    println!("messages listed while the store is failed: {reads}");
    // The final flush fails too, and says what to do.
    let stopped = srv.stop_with_result().await;
    println!("the server's run ended with: {stopped:?}");
    let why = stopped
        .expect_err("the final flush fails on the failed store")
        .to_string();
    assert!(why.contains("disk is full or failing"), "{why}");

    let srv = TestServer::start_with(config(0), Some(&data)).await;
    let bob = srv.login(BOB).await;
    let mut subjects: Vec<String> = bobs_mail(&srv, &bob)
        .await
        .into_iter()
        .map(|m| m.0)
        .collect();
    subjects.reverse();
    assert_eq!(subjects, accepted, "every acknowledged message survives");
    for (subject, source) in bobs_mail(&srv, &bob).await {
        assert!(source.ends_with(&message(&subject)), "{subject}: {source}");
    }
    assert_eq!(smtp_send(&srv, "after-restart").await.code, 250);
    srv.stop().await;
}

/// MAIL over SMTP; its reply code.
async fn smtp_send_raw(srv: &TestServer) -> u16 {
    let mut c = SmtpClient::connect(srv.smtp).await;
    c.expect("EHLO client.test", 250).await;
    c.cmd(&format!("MAIL FROM:<{ALICE}>")).await.code
}
