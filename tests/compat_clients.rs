//! Real MailHog and Mailpit client libraries against the real server: the PyPI `mailhog` package
//! (host and port only, so through `--mailhog-port` with `--compat-auth none`), the npm `mailhog`
//! package (through `/mailhog/api` on the HTTP port, with Basic auth), the npm `mailpit-api`
//! package (base URL `/mailpit` on the HTTP port, with Basic auth) and the PyPI
//! `mailpit-api-client` package (base URL `/mailpit` with the credentials in the URL, which it
//! passes on as Basic auth).
//!
//! They are looked for where `.ci/run` installs them, under the target dir's
//! `compat-clients/`: `venv/` (a Python venv with `mailhog` and `mailpit-api-client`) and
//! `npm/node_modules/` (`mailhog`, `mailpit-api`). When one is missing, its test prints why and
//! passes; `FAKEMAIL_REQUIRE_CLIENTS=1` makes that a failure.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;

use common::*;
use fakemail::config::{CompatAuth, Config};

/// The admin token of these tests.
const TOKEN: &str = "clients-test-admin-token";

/// Where `.ci/run` installs the clients: `<target dir>/compat-clients`.
fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .join("compat-clients")
}

/// Skips (or, with `FAKEMAIL_REQUIRE_CLIENTS=1`, fails) for a missing client.
fn missing(what: &str) {
    let msg = format!(
        "{what} is not installed under {}; .ci/run installs it",
        clients_dir().display()
    );
    if std::env::var("FAKEMAIL_REQUIRE_CLIENTS").is_ok_and(|v| v == "1") {
        panic!("{msg} (FAKEMAIL_REQUIRE_CLIENTS=1)");
    }
    eprintln!("skipped: {msg}");
}

fn config(auth: CompatAuth) -> Config {
    let mut c = test_config();
    c.admin_token = Some(TOKEN.into());
    c.compat.auth = auth;
    c.compat.mailhog_addr = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    c.compat.mailpit_addr = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    c
}

/// Sends two messages over SMTP: one to bob with an attachment, one to carol. Bob's carries the
/// headers the PyPI `mailpit-api-client` requires (`Date`, `Delivered-To`, `Message-Id`).
async fn send_two(srv: &TestServer) {
    let to_bob = "From: alice@example.test\r\nTo: bob@example.test\r\nSubject: For Bob\r\n\
        Date: Sat, 05 Dec 2026 10:00:00 +0000\r\nDelivered-To: bob@example.test\r\n\
        Message-ID: <for-bob@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nHello Bob.\r\n\
        --b\r\nContent-Type: text/plain; name=\"notes.txt\"\r\n\
        Content-Disposition: attachment; filename=\"notes.txt\"\r\n\r\nsome notes\r\n--b--\r\n";
    let to_carol =
        "From: alice@example.test\r\nTo: carol@example.test\r\nSubject: For Carol\r\n\r\nHi.\r\n";
    for (to, body) in [
        ("bob@example.test", to_bob),
        ("carol@example.test", to_carol),
    ] {
        let mut c = SmtpClient::connect(srv.smtp).await;
        c.expect("EHLO client.test", 250).await;
        assert_eq!(c.mail("alice@example.test", &[to], body).await.code, 250);
        c.expect("QUIT", 221).await;
    }
}

/// Runs `cmd` off the runtime; asserts it succeeds and printed `ok`.
async fn run_client(mut cmd: Command, what: &str) {
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
}

const PYTHON: &str = r#"
import sys
from mailhog import Mailhog

m = Mailhog(host="127.0.0.1", port=int(sys.argv[1]))
msgs = m.messages()
assert (msgs.total, msgs.count, msgs.start) == (2, 2, 0), msgs
assert [x.get_subject() for x in msgs.items] == ["For Carol", "For Bob"], msgs.items
bob = msgs.items[1]
assert bob.get_sender() == "alice@example.test"
assert bob.get_recipients() == ["bob@example.test"]
assert len(bob.mime.parts) == 3, bob.mime
page = m.messages(start=1, limit=1)
assert (page.total, page.count, page.start) == (2, 1, 1), page
found = m.search("bob@example.test", kind="to")
assert found.total == 1 and found.items[0].get_subject() == "For Bob", found
assert m.search("Hello Bob").total == 1
m.delete(found.items[0])
assert m.messages().total == 1
m.delete_all()
assert m.messages().total == 0
print("ok")
"#;

#[tokio::test]
async fn the_pypi_mailhog_client_works_through_the_mailhog_port() {
    let python = clients_dir().join("venv/bin/python");
    if !python.exists() {
        return missing("the PyPI `mailhog` package (a venv)");
    }
    let srv = TestServer::start_with(config(CompatAuth::None), None).await;
    send_two(&srv).await;
    let mut cmd = Command::new(python);
    cmd.arg("-c")
        .arg(PYTHON)
        .arg(srv.mailhog.unwrap().port().to_string());
    run_client(cmd, "the Python client").await;
    srv.stop().await;
}

const NODE: &str = r#"
const assert = require('assert')
const [port, token] = process.argv.slice(1)
const mailhog = require('mailhog')({
  host: '127.0.0.1', port: Number(port), basePath: '/mailhog/api', auth: 'anyone:' + token
})
;(async () => {
  const all = await mailhog.messages()
  assert.deepStrictEqual([all.total, all.count], [2, 2])
  assert.deepStrictEqual(all.items.map(m => m.subject), ['For Carol', 'For Bob'])
  const bob = await mailhog.latestTo('bob@example.test')
  assert.strictEqual(bob.subject, 'For Bob')
  assert.strictEqual(bob.from, 'alice@example.test')
  assert.strictEqual(bob.text, 'Hello Bob.')
  assert.deepStrictEqual(bob.attachments.map(a => a.name), ['notes.txt'])
  const from = await mailhog.latestFrom('alice@example.test')
  assert.strictEqual(from.subject, 'For Carol')
  const containing = await mailhog.latestContaining('Hello Bob')
  assert.strictEqual(containing.ID, bob.ID)
  const released = await mailhog.releaseMessage(bob.ID, { host: 'smtp.example.test', port: '25', email: 'z@example.test' })
  assert.strictEqual(released.error.code, 'not_supported')
  await mailhog.deleteMessage(bob.ID)
  assert.strictEqual((await mailhog.messages()).total, 1)
  await mailhog.deleteAll()
  assert.strictEqual((await mailhog.messages()).total, 0)
  console.log('ok')
})().catch(e => { console.error(e); process.exit(1) })
"#;

#[tokio::test]
async fn the_npm_mailhog_client_works_under_the_mailhog_prefix_with_basic_auth() {
    let modules = clients_dir().join("npm/node_modules");
    if !modules.join("mailhog").exists() {
        return missing("the npm `mailhog` package");
    }
    if Command::new("node").arg("--version").output().is_err() {
        return missing("node");
    }
    let srv = TestServer::start_with(config(CompatAuth::Token), None).await;
    send_two(&srv).await;
    let mut cmd = Command::new("node");
    cmd.env("NODE_PATH", &modules)
        .arg("-e")
        .arg(NODE)
        .arg(srv.addr.port().to_string())
        .arg(TOKEN);
    run_client(cmd, "the Node client").await;
    srv.stop().await;
}

const MAILPIT_PYTHON: &str = r#"
import sys
import httpx
from mailpit.client.api import API

api = API(sys.argv[1])
msgs = api.get_messages()
assert (msgs.total, msgs.unread, msgs.count, msgs.start) == (2, 2, 2, 0), msgs
assert [m.subject for m in msgs.messages] == ["For Carol", "For Bob"], msgs.messages
carol, bob = msgs.messages
assert bob.from_.address == "alice@example.test", bob
assert [c.address for c in bob.to] == ["bob@example.test"], bob
assert bob.attachments == 1 and carol.attachments == 0, msgs.messages
page = api.get_messages(limit=1, start=1)
assert (page.total, page.count, page.start) == (2, 1, 1), page
assert [m.id for m in page.messages] == [bob.id], page
msg = api.get_message(bob.id)
assert msg.subject == "For Bob" and msg.text.strip() == "Hello Bob.", msg
assert [a.file_name for a in msg.attachments] == ["notes.txt"], msg.attachments
assert api.get_message_attachment(bob.id, msg.attachments[0].part_id) == "some notes"
headers = api.get_message_headers(bob.id)
assert headers.from_ == ["alice@example.test"], headers
assert headers.message_id == ["<for-bob@example.test>"], headers
assert headers.date[0].year == 2026, headers
assert headers.additional["Subject"] == ["For Bob"], headers
assert api.get_messages().unread == 1
# put_messages and delete_messages with IDs send a form, and Mailpit reads JSON: it answers 400
# to the first (as fakemail does) and deletes every message for the second (fakemail: 400).
try:
    api.put_messages([bob.id], "Read", False)
    raise AssertionError("put_messages with a form body succeeded")
except httpx.HTTPStatusError as e:
    assert e.response.status_code == 400, e
api.delete_messages([])
assert api.get_messages().total == 0
print("ok")
"#;

#[tokio::test]
async fn the_pypi_mailpit_client_works_under_the_mailpit_prefix_with_credentials_in_the_url() {
    let python = clients_dir().join("venv/bin/python");
    let has_it = python.exists()
        && Command::new(&python)
            .args(["-c", "import mailpit.client.api"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !has_it {
        return missing("the PyPI `mailpit-api-client` package (in the venv)");
    }
    let srv = TestServer::start_with(config(CompatAuth::Token), None).await;
    send_two(&srv).await;
    let base = format!(
        "http://anyone:{TOKEN}@127.0.0.1:{}/mailpit",
        srv.addr.port()
    );
    let mut cmd = Command::new(python);
    cmd.arg("-c").arg(MAILPIT_PYTHON).arg(base);
    run_client(cmd, "the Python Mailpit client").await;
    srv.stop().await;
}

const MAILPIT_NODE: &str = r#"
const assert = require('assert')
const { MailpitClient } = require('mailpit-api')
const [base, token] = process.argv.slice(1)
const mailpit = new MailpitClient(base, { auth: { username: 'anyone', password: token } })
;(async () => {
  const info = await mailpit.getInfo()
  assert.strictEqual(info.Messages, 2)
  const all = await mailpit.listMessages()
  assert.deepStrictEqual([all.total, all.unread, all.messages_count], [2, 2, 2])
  assert.deepStrictEqual(all.messages.map(m => m.Subject), ['For Carol', 'For Bob'])
  const found = await mailpit.searchMessages({ query: 'to:bob@example.test' })
  assert.strictEqual(found.messages_count, 1)
  const id = found.messages[0].ID
  assert.strictEqual(found.messages[0].Attachments, 1)
  assert.strictEqual((await mailpit.searchMessages({ query: '"Hello Bob"' })).messages_count, 1)
  const bob = await mailpit.getMessageSummary(id)
  assert.strictEqual(bob.Subject, 'For Bob')
  assert.strictEqual(bob.From.Address, 'alice@example.test')
  assert.deepStrictEqual(bob.To.map(t => t.Address), ['bob@example.test'])
  assert.strictEqual(bob.Text.trim(), 'Hello Bob.')
  assert.deepStrictEqual(bob.Attachments.map(a => a.FileName), ['notes.txt'])
  const part = await mailpit.getMessageAttachment(id, bob.Attachments[0].PartID)
  assert.strictEqual(await part.text(), 'some notes')
  const headers = await mailpit.getMessageHeaders(id)
  assert.deepStrictEqual(headers.Subject, ['For Bob'])
  const raw = await mailpit.getMessageSource(id)
  assert.ok(raw.includes('Subject: For Bob\r\n'), raw)
  assert.strictEqual((await mailpit.renderMessageText(id)).trim(), 'Hello Bob.')
  const latest = await mailpit.getMessageSummary()
  assert.strictEqual(latest.Subject, 'For Carol')
  assert.strictEqual((await mailpit.listMessages()).unread, 0)
  await mailpit.setReadStatus({ IDs: [id], Read: false })
  const afterUnread = await mailpit.listMessages()
  assert.deepStrictEqual(afterUnread.messages.map(m => m.Read), [true, false])
  await mailpit.setReadStatus({ IDs: [id], Read: true })
  assert.strictEqual((await mailpit.listMessages()).unread, 0)
  await mailpit.setTags({ IDs: [id], Tags: ['urgent', 'billing'] })
  assert.deepStrictEqual((await mailpit.getTags()).sort(), ['billing', 'urgent'])
  assert.strictEqual((await mailpit.searchMessages({ query: 'tag:urgent' })).messages[0].ID, id)
  await mailpit.renameTag('urgent', 'later')
  assert.deepStrictEqual((await mailpit.getMessageSummary(id)).Tags.sort(), ['billing', 'later'])
  await mailpit.deleteTag('billing')
  assert.deepStrictEqual(await mailpit.getTags(), ['later'])
  const sent = await mailpit.sendMessage({
    From: { Email: 'sender@example.test' }, To: [{ Email: 'dave@example.test' }],
    Subject: 'Welcome', Text: 'Hi Dave', Tags: ['signup']
  })
  assert.ok(sent.ID)
  const welcome = await mailpit.waitForMessage({ query: 'subject:Welcome' }, { timeout: 2000 })
  assert.strictEqual(welcome.ID, sent.ID)
  assert.deepStrictEqual(welcome.Tags, ['signup'])
  assert.strictEqual((await mailpit.renderMessageText(welcome.ID)).trim(), 'Hi Dave')
  await mailpit.deleteMessagesBySearch({ query: 'subject:Welcome' })
  assert.strictEqual((await mailpit.listMessages()).total, 2)
  const waited = await mailpit.waitForMessage({ query: 'subject:"For Carol"' }, { timeout: 2000 })
  assert.strictEqual(waited.Subject, 'For Carol')
  await assert.rejects(mailpit.htmlCheck(id), /Mailpit API Error: \d{3}/)
  await mailpit.deleteMessagesBySearch({ query: 'to:carol@example.test' })
  assert.deepStrictEqual((await mailpit.listMessages()).messages.map(m => m.ID), [id])
  await mailpit.deleteMessages({ IDs: [id] })
  assert.strictEqual((await mailpit.listMessages()).total, 0)
  const wrong = new MailpitClient(base, { auth: { username: 'anyone', password: 'wrong' } })
  await assert.rejects(wrong.listMessages(), /Mailpit API Error: 401/)
  console.log('ok')
})().catch(e => { console.error(e); process.exit(1) })
"#;

#[tokio::test]
async fn the_npm_mailpit_client_works_under_the_mailpit_prefix_with_basic_auth() {
    let modules = clients_dir().join("npm/node_modules");
    if !modules.join("mailpit-api").exists() {
        return missing("the npm `mailpit-api` package");
    }
    if Command::new("node").arg("--version").output().is_err() {
        return missing("node");
    }
    let srv = TestServer::start_with(config(CompatAuth::Token), None).await;
    send_two(&srv).await;
    let mut cmd = Command::new("node");
    cmd.env("NODE_PATH", &modules)
        .arg("-e")
        .arg(MAILPIT_NODE)
        .arg(format!("http://127.0.0.1:{}/mailpit", srv.addr.port()))
        .arg(TOKEN);
    run_client(cmd, "the Node Mailpit client").await;
    srv.stop().await;
}
