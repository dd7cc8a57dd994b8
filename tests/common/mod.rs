//! Shared test harness: the real server in-process on 127.0.0.1:0 with a temporary store, the
//! MIME fixtures delivered in-process, a reader of event streams, a raw HTTP/1.1 client for
//! requests reqwest will not send, and the real binary as a child process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use fakemail::config::{Config, DataDir};
use fakemail::server::{Running, Server};
use fakemail::service::Service;
use fakemail::service::mail::{Delivery, Envelope};
use fakemail::store::mail::{EntryRecord, INBOX, Mailbox, MessageRecord, SENT};
use fakemail::store::{Store, StoreError};
use fakemail::time::Timestamp;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

/// Passwords in tests: valid under the rules.
pub const PASSWORD: &str = "correct horse battery";

/// Longest a test waits for a server to start, answer, or exit. Generous: CI machines are slow,
/// and a hung server must fail the test, not hang it.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Test config: fast hashing, temporary data, any free port.
pub fn test_config() -> Config {
    let mut c = Config::default();
    c.service.password_iterations = 1_000;
    c
}

/// Opens the store in `dir`, waiting (at most [`TIMEOUT`]) while a server this process has just
/// stopped still holds it: warp's graceful shutdown returns once every connection has
/// finished, but a connection task may drop its handle on the service (and so the store) a
/// moment later.
pub fn open_store(dir: &Path) -> Store {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match Store::open(dir, 16 << 20) {
            Ok(store) => return store,
            Err(StoreError::Locked(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("open the store in {}: {e}", dir.display()),
        }
    }
}

/// A response, with what tests look at.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    /// The raw body.
    pub text: String,
    /// The body as JSON: Null when empty, a JSON string when it is not JSON.
    pub json: Value,
}

impl Reply {
    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Checks what must hold for *every* response: a non-2xx one carries exactly the JSON error
/// envelope, and no response ever shows a password hash.
#[track_caller]
pub fn check_invariants(status: u16, content_type: Option<&str>, text: &str) {
    assert!(
        !text.to_ascii_lowercase().contains("pbkdf2"),
        "a response shows a password hash: {text}"
    );
    if (200..300).contains(&status) {
        return;
    }
    assert!(
        content_type.is_some_and(|ct| ct.starts_with("application/json")),
        "{status} with content type {content_type:?}: {text}"
    );
    let v: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{status} body is not JSON ({e}): {text}"));
    let top = v.as_object().expect("error body is an object");
    assert_eq!(top.len(), 1, "only `error` at the top: {v}");
    let err = v["error"].as_object().expect("`error` is an object");
    for key in err.keys() {
        assert!(
            ["code", "message", "field"].contains(&key.as_str()),
            "unexpected key {key}: {v}"
        );
    }
    let code = err["code"].as_str().expect("`code` is a string");
    assert!(
        !code.is_empty()
            && code
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "code is not snake_case: {code}"
    );
    assert!(
        err["message"].as_str().is_some_and(|m| m.len() > 10),
        "message is not a sentence: {v}"
    );
    if let Some(f) = err.get("field") {
        assert!(f.as_str().is_some_and(|f| !f.is_empty()), "field: {v}");
    }
}

/// A request to a compatibility API under its prefix on the HTTP port (`/mailpit`,
/// `/mailhog`), with `token` as the Basic auth password and `body` as JSON.
pub async fn compat_call(
    srv: &TestServer,
    token: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> Reply {
    let mut req = srv
        .client
        .request(method.parse().unwrap(), srv.url(path))
        .basic_auth("anyone", Some(token));
    if let Some(b) = body {
        req = req.json(&b);
    }
    send(req).await
}

/// Sends a request and checks [`check_invariants`] on the answer.
pub async fn send(req: reqwest::RequestBuilder) -> Reply {
    let res = tokio::time::timeout(TIMEOUT, req.send())
        .await
        .expect("response in time")
        .expect("request");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    check_invariants(
        status,
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        &text,
    );
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
    };
    Reply {
        status,
        headers,
        text,
        json,
    }
}

/// A request to `url` with an optional bearer token and JSON body, not yet sent.
pub fn build_request(
    client: &reqwest::Client,
    method: &str,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::RequestBuilder {
    let mut req = client.request(method.parse().unwrap(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req
}

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The SMTP listener's address.
    pub smtp: SocketAddr,
    /// The POP3 listener's address, when the config has it on.
    pub pop3: Option<SocketAddr>,
    /// The MailHog API's own listener (`--mailhog-port`), when the config asks for one.
    pub mailhog: Option<SocketAddr>,
    /// The Mailpit API's own listener (`--mailpit-port`), when the config asks for one.
    pub mailpit: Option<SocketAddr>,
    /// The IMAP listener, unless the config turns it off.
    pub imap: Option<SocketAddr>,
    pub base: String,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    /// The running server's service, for delivering fixtures in-process and watching state.
    pub service: Service,
    /// Stops the server when dropped; a temporary data dir goes after the final flush.
    running: Running,
}

impl TestServer {
    /// Starts with [`test_config`] on a fresh temporary data dir.
    pub async fn start() -> Self {
        Self::start_with(test_config(), None).await
    }

    /// Starts with `config`, on `dir` if given (else a fresh temporary dir).
    pub async fn start_with(mut config: Config, dir: Option<&Path>) -> Self {
        let temp = match dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().unwrap()),
        };
        let data_dir = dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| temp.as_ref().unwrap().path().to_path_buf());
        config.data = DataDir::Path(data_dir.clone());
        let store = open_store(&data_dir);
        let mut server = Server::bind(config, store).await.expect("bind");
        if let Some(temp) = temp {
            server = server.with_temp_dir(temp);
        }
        let running = server.spawn();
        let addr = running.http_addr();
        TestServer {
            addr,
            smtp: running.smtp_addr(),
            pop3: running.pop3_addr(),
            mailhog: running.compat_addrs().mailhog,
            mailpit: running.compat_addrs().mailpit,
            imap: running.imap_addr(),
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            data_dir,
            service: running.service().clone(),
            running,
        }
    }

    /// Stops the server and waits until it has flushed and released the store.
    pub async fn stop(self) {
        tokio::time::timeout(TIMEOUT, self.running.shutdown())
            .await
            .expect("server stops in time")
            .expect("server run");
    }

    /// Stops the server and waits until it has released the store; returns how its run
    /// ended (an error when the final flush failed), for tests of a failing disk.
    pub async fn stop_with_result(self) -> fakemail::Result<()> {
        tokio::time::timeout(TIMEOUT, self.running.shutdown())
            .await
            .expect("server stops in time")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with an optional bearer token and JSON body, not yet sent.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::RequestBuilder {
        build_request(&self.client, method, self.url(path), token, body)
    }

    /// Sends a request with an optional bearer token and JSON body; returns the whole reply.
    pub async fn reply(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        send(self.request(method, path, token, body)).await
    }

    /// Like [`TestServer::reply`], but only status and JSON (Null for an empty body).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let r = self.reply(method, path, token, body).await;
        (r.status, r.json)
    }

    /// Sends a request and asserts that it answers the error envelope with `status` and `code`.
    pub async fn expect_error(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        status: u16,
        code: &str,
    ) {
        let got = self.call(method, path, token, body).await;
        assert!(
            got.0 == status && got.1["error"]["code"] == code,
            "{method} {path}: expected {status} {code}, got {} {}",
            got.0,
            got.1
        );
        assert_error(&got, status, code);
    }

    /// Registers an account and returns the user JSON.
    pub async fn register(&self, email: &str) -> Value {
        let (s, v) = self
            .call(
                "POST",
                "/api/v1/auth/register",
                None,
                Some(json!({"email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(s, 201, "register {email}: {v}");
        v
    }

    /// Logs in with `password`; returns status and body.
    pub async fn try_login(&self, email: &str, password: &str) -> (u16, Value) {
        self.call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    /// Logs in and returns the token.
    pub async fn login(&self, email: &str) -> String {
        let (s, v) = self.try_login(email, PASSWORD).await;
        assert_eq!(s, 200, "login {email}: {v}");
        v["token"].as_str().unwrap().to_owned()
    }

    /// Registers and logs in; returns the token.
    pub async fn user(&self, email: &str) -> String {
        self.register(email).await;
        self.login(email).await
    }
}

// ----- fault injection ---------------------------------------------------------------------

/// The admin token of [`TestServer::start_chaos`].
pub const CHAOS_ADMIN: &str = "chaos-test-admin-token";

/// The test config with fault injection allowed (`--chaos`) or not, and [`CHAOS_ADMIN`] as
/// the admin token.
pub fn chaos_config(chaos: bool) -> Config {
    let mut config = test_config();
    config.admin_token = Some(CHAOS_ADMIN.into());
    config.service.chaos = chaos;
    config
}

impl TestServer {
    /// Starts with [`chaos_config`].
    pub async fn start_chaos(chaos: bool) -> TestServer {
        TestServer::start_with(chaos_config(chaos), None).await
    }

    /// Calls an admin endpoint with [`CHAOS_ADMIN`].
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, Some(CHAOS_ADMIN), body).await
    }

    /// Adds a fault-injection rule given in its text form; returns it as the API shows it.
    pub async fn add_rule(&self, rule: &str) -> Value {
        let body = json!({ "rule": rule });
        let (s, v) = self
            .admin("POST", "/api/v1/admin/chaos/rules", Some(body))
            .await;
        assert_eq!(s, 201, "add rule {rule}: {v}");
        v
    }

    /// Replaces every fault-injection rule (their counters start afresh); returns the rules
    /// as the API shows them.
    pub async fn set_rules(&self, rules: &[&str]) -> Vec<Value> {
        let rules: Vec<Value> = rules.iter().map(|r| json!({ "rule": r })).collect();
        let body = json!({ "rules": rules });
        let (s, v) = self.admin("PUT", "/api/v1/admin/chaos", Some(body)).await;
        assert_eq!(s, 200, "set rules {rules:?}: {v}");
        v["rules"].as_array().expect("rules").clone()
    }
}

/// Polls `check` until it holds, failing the test after [`TIMEOUT`] twice over: for work the
/// server does in the background (sweeps), whose timing a loaded machine stretches.
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + 2 * TIMEOUT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A user's mailbox, as listed (the first page).
pub async fn mailbox(srv: &TestServer, token: &str, name: &str) -> Vec<Value> {
    let (s, page) = srv
        .call(
            "GET",
            &format!("/api/v1/mailboxes/{name}/messages"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{page}");
    page["messages"].as_array().unwrap().clone()
}

/// A user's inbox, as listed (the first page).
pub async fn inbox(srv: &TestServer, token: &str) -> Vec<Value> {
    mailbox(srv, token, "inbox").await
}

/// The id of the newest message in a user's inbox.
pub async fn newest_in_inbox(srv: &TestServer, token: &str) -> String {
    let (s, page) = srv
        .call(
            "GET",
            "/api/v1/mailboxes/inbox/messages?limit=1",
            Some(token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{page}");
    page["messages"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {page}"))
        .to_owned()
}

/// GET with a token, the body as bytes (sources and attachments, which need not be text).
pub async fn get_bytes(srv: &TestServer, path: &str, token: &str) -> (u16, HeaderMap, Vec<u8>) {
    let res = tokio::time::timeout(
        TIMEOUT,
        srv.client.get(srv.url(path)).bearer_auth(token).send(),
    )
    .await
    .expect("answer in time")
    .expect("request");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.unwrap().to_vec())
}

/// A header that must be there, as a string.
#[track_caller]
pub fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header in {h:?}"))
}

/// Waits until the events hub has `n` subscribers (open waits and event streams).
pub async fn listeners(srv: &TestServer, n: usize) {
    let deadline = Instant::now() + TIMEOUT;
    while srv.service.events().listeners() != n {
        assert!(
            Instant::now() < deadline,
            "{} listeners, not {n}",
            srv.service.events().listeners()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts a GET in the background (a wait, say): (status, JSON).
pub fn spawn_call(srv: &TestServer, path: &str, token: &str) -> JoinHandle<(u16, Value)> {
    let req = srv.request("GET", path, Some(token), None);
    tokio::spawn(async move {
        let r = send(req).await;
        (r.status, r.json)
    })
}

/// Asserts the JSON error envelope with `status` and `code`.
#[track_caller]
pub fn assert_error(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "status; body: {}", got.1);
    assert_eq!(got.1["error"]["code"], code, "code; body: {}", got.1);
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "message: {}",
        got.1
    );
}

/// Asserts the error envelope with `status`, `code` and `field`.
#[track_caller]
pub fn assert_field_error(got: &(u16, Value), status: u16, code: &str, field: &str) {
    assert_error(got, status, code);
    assert_eq!(got.1["error"]["field"], field, "field; body: {}", got.1);
}

/// Parses an RFC 3339 time from the API.
#[track_caller]
pub fn rfc3339(v: &Value) -> std::time::SystemTime {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    assert!(s.ends_with('Z'), "not UTC: {s}");
    humantime::parse_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

// ----- the store -----------------------------------------------------------------------------

/// Stores a message straight into `store`, received at `at`, for `rcpt` (and, with `sender`, a
/// copy in the sender's `sent`), bypassing delivery so that tests choose its arrival time;
/// returns its id.
pub fn stored_message(
    store: &Store,
    at: Timestamp,
    rcpt: u64,
    sender: Option<u64>,
    size: usize,
) -> u64 {
    let id = store.generate_id().unwrap();
    let mut entries = vec![EntryRecord {
        id: store.generate_id().unwrap(),
        message: id,
        owner: rcpt,
        mailbox: INBOX,
        read: false,
        starred: false,
        bcc: None,
    }];
    if let Some(s) = sender {
        entries.push(EntryRecord {
            id: store.generate_id().unwrap(),
            message: id,
            owner: s,
            mailbox: SENT,
            read: true,
            starred: true,
            bcc: Some(vec![]),
        });
    }
    let record = MessageRecord {
        id,
        received_at: at,
        size: size as u64,
        envelope_from: "alice@example.test".into(),
        envelope_to: vec!["bob@example.test".into()],
        from: Mailbox {
            name: None,
            address: "alice@example.test".into(),
        },
        to: vec![],
        cc: vec![],
        reply_to: vec![],
        subject: format!("message {id}"),
        snippet: String::new(),
        message_id: None,
        has_attachments: false,
        entries: entries.iter().map(|e| e.id).collect(),
    };
    store
        .insert_message(&record, &vec![b'x'; size], &entries, &[])
        .unwrap();
    id
}

/// A message of `tests/fixtures`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Sends `body` over SMTP from `from` to `to`, in a session of its own; every reply must be a
/// success.
pub async fn send_smtp(srv: &TestServer, from: &str, to: &[&str], body: &str) {
    let mut c = SmtpClient::connect(srv.smtp).await;
    c.expect("EHLO client.test", 250).await;
    let r = c.mail(from, to, body).await;
    assert_eq!(r.code, 250, "{r:?}");
    c.expect("QUIT", 221).await;
}

/// Delivers `raw` to `to` as SMTP would (no sender copy), through the one delivery path;
/// returns the message's id. For MIME the REST API cannot make.
pub async fn deliver(srv: &TestServer, raw: Vec<u8>, to: &[&str]) -> u64 {
    let d = Delivery {
        raw,
        envelope: Envelope {
            from: "sender@example.test".into(),
            to: to.iter().map(|s| s.to_string()).collect(),
        },
        sender: None,
    };
    srv.service.deliver(d).await.expect("deliver").message.id
}

// ----- event streams -------------------------------------------------------------------------

/// A Server-Sent Events stream being read.
pub struct Sse {
    res: reqwest::Response,
    buf: String,
}

/// One event: its name, id and JSON data.
#[derive(Debug)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: Value,
}

impl Sse {
    /// Opens a stream; returns once the server answered (and so listens).
    pub async fn open(
        srv: &TestServer,
        path: &str,
        token: &str,
        last_event_id: Option<&str>,
    ) -> Sse {
        let mut req = srv.client.get(srv.url(path)).bearer_auth(token);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let res = tokio::time::timeout(TIMEOUT, req.send())
            .await
            .expect("answer in time")
            .expect("request");
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers().get("content-type").unwrap(),
            "text/event-stream"
        );
        Sse {
            res,
            buf: String::new(),
        }
    }

    /// The next event, comments skipped.
    pub async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (None, None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                match event {
                    Some(event) => {
                        let data = serde_json::from_str(&data)
                            .unwrap_or_else(|e| panic!("data is not JSON ({e}): {block}"));
                        return SseEvent { event, id, data };
                    }
                    None => continue,
                }
            }
            let chunk = tokio::time::timeout(TIMEOUT, self.res.chunk())
                .await
                .expect("an event in time")
                .expect("stream read");
            let chunk = chunk.expect("the stream is still open");
            self.buf
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// Reads until the server ends the stream.
    pub async fn ends(mut self) {
        loop {
            match tokio::time::timeout(TIMEOUT, self.res.chunk())
                .await
                .expect("the stream ends in time")
            {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return,
            }
        }
    }
}

// ----- raw HTTP ------------------------------------------------------------------------------

/// Sends `head` (request line and headers, without the blank line) and then `body` over a new
/// connection, reading the answer while still writing, as a server may answer (413) before the
/// body is complete. The request should say `Connection: close`.
pub async fn raw(addr: SocketAddr, head: &str, body: Vec<u8>) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let mut out = format!("{head}\r\n\r\n").into_bytes();
    out.extend(body);
    // The server may close before it has read everything: write errors are expected then.
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&out).await;
        wr
    });
    let mut buf = Vec::new();
    let read = tokio::time::timeout(TIMEOUT, async {
        let mut chunk = [0u8; 8192];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                // A reset after the answer arrived still leaves the answer in `buf`.
                Err(_) => break,
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no complete answer in time: {buf:?}");
    writer.abort();
    parse_response(&buf)
}

fn parse_response(buf: &[u8]) -> Reply {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(buf)));
    let head = std::str::from_utf8(&buf[..end]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line}"));
    let mut headers = HeaderMap::new();
    for line in lines {
        let (k, v) = line.split_once(':').expect("header line");
        headers.append(
            reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
            v.trim().parse().unwrap(),
        );
    }
    let mut body = buf[end + 4..].to_vec();
    if let Some(n) = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        assert!(body.len() >= n, "truncated body: {body:?}");
        body.truncate(n);
    }
    let text = String::from_utf8(body).expect("UTF-8 body");
    check_invariants(
        status,
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        &text,
    );
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
    Reply {
        status,
        headers,
        text,
        json,
    }
}

// ----- the binary as a child process ---------------------------------------------------------

/// `fakemail` with a clean environment: no inherited `FAKEMAIL_*` variable can change a test.
pub fn fakemail() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fakemail"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("FAKEMAIL_") {
            cmd.env_remove(k);
        }
    }
    // Tests run in parallel: none may compete for the default SMTP, IMAP and POP3 ports. A test
    // that wants a port of its own passes --smtp-port, --imap-port or --pop3-port, which win
    // over the variables.
    cmd.env("FAKEMAIL_SMTP_PORT", "0");
    cmd.env("FAKEMAIL_IMAP_PORT", "0");
    cmd.env("FAKEMAIL_POP3_PORT", "0");
    cmd.env("RUST_BACKTRACE", "0").stdin(Stdio::null());
    cmd
}

/// `fakemail serve` on a free port with fast hashing, on `data_dir`.
pub fn serve_cmd(data_dir: &Path) -> Command {
    let mut cmd = fakemail();
    cmd.args(["serve", "--port", "0", "--password-iterations", "1000"])
        .arg("--data-dir")
        .arg(data_dir);
    cmd
}

/// Collects a child's output in the background, so the child never blocks on a full pipe.
fn collect(
    r: impl Read + Send + 'static,
    lines: Option<mpsc::Sender<String>>,
) -> Arc<Mutex<String>> {
    let all = Arc::new(Mutex::new(String::new()));
    let sink = all.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(tx) = &lines {
                let _ = tx.send(line);
            }
        }
    });
    all
}

/// Waits for `child` to exit, killing it and failing the test after `timeout`.
pub fn wait_timeout(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: the process did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A command run to completion.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` until it exits (failing the test after [`TIMEOUT`]).
pub fn run(mut cmd: Command) -> Finished {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fakemail");
    let stdout = collect(child.stdout.take().unwrap(), None);
    let stderr = collect(child.stderr.take().unwrap(), None);
    let status = wait_timeout(&mut child, TIMEOUT, &format!("{cmd:?}"));
    // The readers finish at EOF, which follows the exit closely.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&stdout) + Arc::strong_count(&stderr) > 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = stdout.lock().unwrap().clone();
    let err = stderr.lock().unwrap().clone();
    Finished {
        status,
        stdout: out,
        stderr: err,
    }
}

/// A running `fakemail serve`; killed on drop if still running.
pub struct Process {
    child: Child,
    /// The address printed on the `HTTP API:` line.
    pub addr: SocketAddr,
    /// The address printed on the `SMTP:` line.
    pub smtp: SocketAddr,
    /// The address printed on the `POP3:` line (none: POP3 is off).
    pub pop3: Option<SocketAddr>,
    /// The address printed on the `IMAP:` line (none: IMAP is off).
    pub imap: Option<SocketAddr>,
    pub base: String,
    /// The path printed on the `data dir:` line.
    pub data_dir: PathBuf,
    /// The path printed on the `logs:` line.
    pub log_dir: PathBuf,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// Stderr lines as they come, for waiting on a log line.
    stderr_lines: mpsc::Receiver<String>,
}

impl Process {
    /// Spawns `cmd` and waits until it has printed its address, data dir and log dir.
    pub fn start(mut cmd: Command) -> Process {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn fakemail");
        let (out_tx, out_rx) = mpsc::channel();
        let (err_tx, err_rx) = mpsc::channel();
        let stdout = collect(child.stdout.take().unwrap(), Some(out_tx));
        let stderr = collect(child.stderr.take().unwrap(), Some(err_tx));
        let deadline = Instant::now() + TIMEOUT;
        let (mut addr, mut smtp, mut data_dir, mut log_dir) = (None, None, None, None);
        // Printed before the data dir, when it is on.
        let (mut pop3, mut imap) = (None, None);
        while addr.is_none() || smtp.is_none() || data_dir.is_none() || log_dir.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match out_rx.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "fakemail did not print its address ({e}); stdout:\n{}\nstderr:\n{}",
                        stdout.lock().unwrap(),
                        stderr.lock().unwrap()
                    );
                }
            };
            if let Some(a) = line.strip_prefix("  HTTP API: http://") {
                addr = Some(a.parse::<SocketAddr>().expect("an address"));
            } else if let Some(a) = line.strip_prefix("  SMTP:") {
                smtp = Some(a.trim().parse::<SocketAddr>().expect("an SMTP address"));
            } else if let Some(a) = line.strip_prefix("  POP3:") {
                pop3 = Some(a.trim().parse::<SocketAddr>().expect("a POP3 address"));
            } else if let Some(a) = line.strip_prefix("  IMAP:") {
                imap = Some(a.trim().parse::<SocketAddr>().expect("an IMAP address"));
            } else if let Some(d) = line.strip_prefix("  data dir: ") {
                data_dir = Some(PathBuf::from(d));
            } else if let Some(d) = line.strip_prefix("  logs:") {
                log_dir = Some(PathBuf::from(d.trim_start()));
            }
        }
        let addr = addr.unwrap();
        Process {
            child,
            addr,
            smtp: smtp.unwrap(),
            pop3,
            imap,
            base: format!("http://{addr}"),
            data_dir: data_dir.unwrap(),
            log_dir: log_dir.unwrap(),
            stdout,
            stderr,
            stderr_lines: err_rx,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a JSON request with an optional bearer token; returns status and body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let req = build_request(&reqwest::Client::new(), method, self.url(path), token, body);
        let r = send(req).await;
        (r.status, r.json)
    }

    /// Registers `email` with [`PASSWORD`] and logs in; returns the token.
    pub async fn user(&self, email: &str) -> String {
        let body = json!({"email": email, "password": PASSWORD});
        let (s, v) = self
            .call("POST", "/api/v1/auth/register", None, Some(body.clone()))
            .await;
        assert_eq!(s, 201, "register {email}: {v}");
        let (s, v) = self
            .call("POST", "/api/v1/auth/login", None, Some(body))
            .await;
        assert_eq!(s, 200, "login {email}: {v}");
        v["token"].as_str().unwrap().to_owned()
    }

    /// Sends a signal by name (`TERM`, `INT`) with kill(1).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{name} {}", self.pid());
    }

    /// Waits (at most [`TIMEOUT`]) for a stderr line containing `needle`; returns it.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!(
                    "no log line with {needle:?} ({e}); stderr:\n{}",
                    self.stderr()
                ),
            }
        }
    }

    /// Waits (at most [`TIMEOUT`]) for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        let status = wait_timeout(&mut self.child, TIMEOUT, "fakemail serve");
        // Let the readers reach EOF, so stdout/stderr are complete.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.stdout) + Arc::strong_count(&self.stderr) > 2
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        status
    }

    /// Sends `signal` and waits for the exit; the status must be 0.
    pub fn stop_with(&mut self, signal: &str) {
        self.signal(signal);
        let status = self.wait();
        assert_eq!(
            status.code(),
            Some(0),
            "exit after SIG{signal}: {status}; stderr:\n{}",
            self.stderr()
        );
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ----- raw SMTP ------------------------------------------------------------------------------

/// One SMTP reply.
#[derive(Debug, Clone)]
pub struct SmtpReply {
    pub code: u16,
    /// The text of each line, after the code and the separator.
    pub lines: Vec<String>,
}

impl SmtpReply {
    /// All lines, joined by newlines.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// The enhanced status code of the first line, e.g. `5.5.1`.
    pub fn status(&self) -> Option<&str> {
        let first = self.lines.first()?.split(' ').next()?;
        let parts: Vec<_> = first.split('.').collect();
        (parts.len() == 3 && parts.iter().all(|p| p.parse::<u16>().is_ok())).then_some(first)
    }
}

/// A raw SMTP client over any stream (plain TCP, or TLS after STARTTLS).
pub struct SmtpClient<S = tokio::net::TcpStream> {
    pub io: tokio::io::BufReader<S>,
}

impl SmtpClient {
    /// Connects and reads the greeting, which must be 220.
    pub async fn connect(addr: SocketAddr) -> SmtpClient {
        let mut c = Self::connect_raw(addr).await;
        let greeting = c.reply().await;
        assert_eq!(greeting.code, 220, "{greeting:?}");
        c
    }

    /// Connects without reading anything.
    pub async fn connect_raw(addr: SocketAddr) -> SmtpClient {
        let stream = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        SmtpClient {
            io: tokio::io::BufReader::new(stream),
        }
    }

    /// The stream, for STARTTLS.
    pub fn into_inner(self) -> tokio::net::TcpStream {
        self.io.into_inner()
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> SmtpClient<S> {
    /// A client over an established stream (the server's greeting already read).
    pub fn over(stream: S) -> Self {
        SmtpClient {
            io: tokio::io::BufReader::new(stream),
        }
    }

    /// Writes `text` exactly as given, in one write.
    pub async fn send(&mut self, text: impl AsRef<[u8]>) {
        self.io
            .get_mut()
            .write_all(text.as_ref())
            .await
            .expect("write");
        self.io.get_mut().flush().await.expect("flush");
    }

    /// Reads one reply, checking its form: every line has the same code, `-` on all but the
    /// last, CRLF at the end.
    pub async fn reply(&mut self) -> SmtpReply {
        use tokio::io::AsyncBufReadExt;
        let mut lines = Vec::new();
        let mut code = None;
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(TIMEOUT, self.io.read_line(&mut line))
                .await
                .expect("a reply in time")
                .expect("read a reply");
            assert!(n > 0, "the connection closed; replies so far: {lines:?}");
            assert!(line.ends_with("\r\n"), "no CRLF: {line:?}");
            let line = &line[..line.len() - 2];
            assert!(line.len() >= 3, "short reply line: {line:?}");
            let c: u16 = line[..3]
                .parse()
                .unwrap_or_else(|_| panic!("bad code: {line:?}"));
            assert!(code.is_none_or(|k| k == c), "codes differ: {line:?}");
            code = Some(c);
            let sep = line.as_bytes().get(3).copied();
            lines.push(line.get(4..).unwrap_or("").to_owned());
            match sep {
                Some(b'-') => {}
                Some(b' ') | None => break,
                Some(_) => panic!("bad separator: {line:?}"),
            }
        }
        SmtpReply {
            code: code.unwrap(),
            lines,
        }
    }

    /// Reads one reply per code, asserting each in turn (the answers to pipelined commands).
    pub async fn replies(&mut self, codes: &[u16]) {
        for (i, want) in codes.iter().enumerate() {
            let r = self.reply().await;
            assert_eq!(r.code, *want, "reply {i}: {r:?}");
        }
    }

    /// Sends a command line (CRLF added) and reads the reply.
    pub async fn cmd(&mut self, line: &str) -> SmtpReply {
        self.send(format!("{line}\r\n")).await;
        self.reply().await
    }

    /// Sends a command and asserts the reply code; returns the reply.
    pub async fn expect(&mut self, line: &str, code: u16) -> SmtpReply {
        let r = self.cmd(line).await;
        assert_eq!(r.code, code, "{line}: {r:?}");
        r
    }

    /// Whether the server has closed the connection (reads to the end, within [`TIMEOUT`]).
    pub async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(TIMEOUT, self.io.read_to_end(&mut rest)).await,
            Ok(Ok(_)) | Ok(Err(_))
        ) && rest.is_empty()
    }

    /// Sends a whole message: MAIL, RCPT for each recipient, DATA, the body (dot-stuffed
    /// here) and the final dot; returns the reply to the body.
    pub async fn mail(&mut self, from: &str, to: &[&str], body: &str) -> SmtpReply {
        self.expect(&format!("MAIL FROM:<{from}>"), 250).await;
        for rcpt in to {
            self.expect(&format!("RCPT TO:<{rcpt}>"), 250).await;
        }
        self.expect("DATA", 354).await;
        let mut data = String::new();
        for line in body.split_inclusive('\n') {
            let line = line.trim_end_matches(['\r', '\n']);
            if line.starts_with('.') {
                data.push('.');
            }
            data.push_str(line);
            data.push_str("\r\n");
        }
        data.push_str(".\r\n");
        self.send(data).await;
        self.reply().await
    }
}

// ----- a real SMTP client --------------------------------------------------------------------

/// lettre's SMTP transport to `smtp`, without TLS unless the caller adds it, saying
/// `EHLO client.test` (so the `Received:` header is known in advance).
pub fn lettre_mailer(smtp: SocketAddr) -> lettre::transport::smtp::AsyncSmtpTransportBuilder {
    use lettre::transport::smtp::extension::ClientId;
    lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(smtp.ip().to_string())
        .port(smtp.port())
        .hello_name(ClientId::Domain("client.test".into()))
        .timeout(Some(TIMEOUT))
}
