//! Operations: `GET /readyz`, the systemd readiness notification of the real binary,
//! `fakemail ready` and `fakemail completions`.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use fakemail::api::{self, Limits};
use fakemail::client;
use fakemail::server::{self, Listeners};
use fakemail::service::Service;
use fakemail::store::Store;
use serde_json::Value;

fn limits() -> Limits {
    Limits {
        max_body: 1 << 20,
        max_send_body: 11 << 20,
    }
}

// ----- /readyz -------------------------------------------------------------------------------

#[tokio::test]
async fn readyz_answers_503_until_the_server_marks_itself_ready() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 8 << 20).unwrap();
    let svc = Service::new(store, test_config().service);
    // The routes alone, served without `server::run`, which would mark the service ready.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let serving = tokio::spawn(
        warp::serve(api::routes(
            svc.clone(),
            limits(),
            None,
            api::compat::Compat::new(svc.clone(), fakemail::config::CompatAuth::Token, 1 << 20),
        ))
        .incoming(listener)
        .run(),
    );
    let client = reqwest::Client::new();
    let get = |path: &'static str| {
        let req = client.get(format!("{base}{path}"));
        async move {
            let r = send(req).await;
            (r.status, r.json, r.headers)
        }
    };

    let (status, body, headers) = get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "not_ready", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.len() > 10)
    );
    assert_eq!(headers["retry-after"], "1");
    // Liveness does not depend on readiness.
    let (status, body, _) = get("/healthz").await;
    assert_eq!((status, &body["status"]), (200, &Value::from("ok")));

    svc.set_ready(true);
    let (status, body, _) = get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, serde_json::json!({"status": "ready"}));

    svc.set_ready(false);
    assert_eq!(get("/readyz").await.0, 503);
    serving.abort();
}

#[tokio::test]
async fn readyz_is_ready_while_serving_and_not_after_shutdown() {
    let srv = TestServer::start().await;
    let r = srv.reply("GET", "/readyz", None, None).await;
    assert_eq!(
        (r.status, &r.json),
        (200, &serde_json::json!({"status": "ready"}))
    );
    let r = srv.reply("HEAD", "/readyz", None, None).await;
    assert_eq!(r.status, 200);
    let r = srv.reply("POST", "/readyz", None, None).await;
    assert_error(&(r.status, r.json.clone()), 405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    srv.stop().await;

    // The server takes readiness back as soon as shutdown begins.
    let dir = tempfile::tempdir().unwrap();
    let config = test_config();
    let svc = Service::new(
        Store::open(dir.path(), 8 << 20).unwrap(),
        config.service.clone(),
    );
    let listeners = Listeners::bind(&config).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn({
        let svc = svc.clone();
        async move {
            server::run(&config, svc, listeners, async {
                let _ = rx.await;
            })
            .await
        }
    });
    tokio::time::timeout(TIMEOUT, async {
        while svc.check_ready().is_err() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the server marks itself ready");
    tx.send(()).unwrap();
    tokio::time::timeout(TIMEOUT, run)
        .await
        .expect("stops in time")
        .unwrap()
        .unwrap();
    assert!(svc.check_ready().is_err(), "still ready after shutdown");
}

// ----- systemd notification ------------------------------------------------------------------

/// Receives one datagram, failing the test after [`TIMEOUT`].
fn receive(sock: &UnixDatagram, what: &str) -> String {
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no {what} notification: {e}"));
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn the_binary_notifies_ready_only_once_it_serves_and_stopping_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&socket).unwrap();
    let mut cmd = serve_cmd(&dir.path().join("data"));
    cmd.env("NOTIFY_SOCKET", &socket)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn fakemail");
    let stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());

    // Nothing but the notification tells this test where the server listens: the port it
    // names must answer ready at once, with no retry.
    let ready = receive(&sock, "READY=1");
    let mut lines = ready.lines();
    assert_eq!(lines.next(), Some("READY=1"), "{ready:?}");
    let addr = ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS=serving HTTP on "))
        .unwrap_or_else(|| panic!("no address in {ready:?}"));
    let r = client::request("GET", &format!("http://{addr}/readyz"), None, None, TIMEOUT)
        .expect("the HTTP port answers once READY=1 is sent");
    assert_eq!(r.status, 200, "{}", r.body);

    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let stopping = receive(&sock, "STOPPING=1");
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let status = wait_timeout(&mut child, TIMEOUT, "fakemail serve");
    let stderr = stderr.join().unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("cannot notify"), "{stderr}");
}

// ----- fakemail ready ------------------------------------------------------------------------

#[test]
fn ready_exits_0_against_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Process::start(serve_cmd(dir.path()));
    let mut cmd = fakemail();
    cmd.args(["ready", "--wait", "10s", "--url", &p.base]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.contains(&p.base), "{}", out.stdout);

    // Without --url, the data dir's server.json tells where the server is.
    let mut cmd = fakemail();
    cmd.args(["ready", "--wait", "10s"])
        .env("FAKEMAIL_DATA_DIR", dir.path());
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.contains(&p.base), "{}", out.stdout);
    p.stop_with("TERM");
}

#[test]
fn ready_waits_for_a_server_that_starts_later() {
    let dir = tempfile::tempdir().unwrap();
    let mut waiting = fakemail();
    waiting
        .args(["ready", "--wait", "30s", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut waiting = waiting.spawn().expect("spawn fakemail ready");
    // The server picks its port only now; `ready` learns it from server.json.
    std::thread::sleep(Duration::from_millis(300));
    let mut p = Process::start(serve_cmd(dir.path()));
    let status = wait_timeout(&mut waiting, TIMEOUT, "fakemail ready");
    let stdout = std::io::read_to_string(waiting.stdout.take().unwrap()).unwrap();
    let stderr = std::io::read_to_string(waiting.stderr.take().unwrap()).unwrap();
    assert_eq!(status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(&p.base), "{stdout}");
    p.stop_with("TERM");
}

#[test]
fn ready_exits_1_with_a_clear_message_when_nothing_answers() {
    // A port that was free a moment ago: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut cmd = fakemail();
    cmd.args(["ready", "--wait", "1s", "--url", &url]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains(&url) && out.stderr.contains("within 1s"),
        "names the URL and the wait: {}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    let mut cmd = fakemail();
    cmd.args(["ready", "--url", "https://example.test"]);
    assert_eq!(run(cmd).status.code(), Some(2), "not an http:// URL");
}

// ----- fakemail completions ------------------------------------------------------------------

#[test]
fn completions_for_each_shell_know_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let mut cmd = fakemail();
        cmd.args(["completions", shell]);
        let out = run(cmd);
        assert_eq!(out.status.code(), Some(0), "{shell}: {out:?}");
        for word in ["serve", "purge", "ready", "--data-dir"] {
            // fish names a long flag `-l data-dir`.
            let fish = word.strip_prefix("--").map(|long| format!("-l {long}"));
            assert!(
                out.stdout.contains(word) || fish.is_some_and(|f| out.stdout.contains(&f)),
                "{shell}: no {word}:\n{}",
                out.stdout
            );
        }
    }
    let mut cmd = fakemail();
    cmd.args(["completions", "tcsh"]);
    assert_eq!(run(cmd).status.code(), Some(2));
}
