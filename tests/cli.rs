//! Process-level tests of the real `fakemail` binary: start-up output, persistence across a
//! restart, signals and draining, start-up failures and their exit statuses, flags and their
//! `FAKEMAIL_*` variables, the temporary store, and what goes into the log files.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::*;
use fakemail::store::Store;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends a JSON request to a running process; returns status and body.
async fn call(
    p: &Process,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    p.call(method, path, token, body).await
}

async fn register(p: &Process, email: &str, password: &str) -> Value {
    let got = call(
        p,
        "POST",
        "/api/v1/auth/register",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await;
    assert_eq!(got.0, 201, "register: {}", got.1);
    got.1
}

async fn login(p: &Process, email: &str, password: &str) -> (u16, Value) {
    call(
        p,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
}

#[track_caller]
fn assert_no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "a panic:\n{stderr}");
}

/// Every file's text in `dir` (log files), concatenated.
fn read_logs(dir: &Path) -> String {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
        .iter()
        .filter(|p| p.is_file())
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

// ----- start, stop, restart ------------------------------------------------------------------

#[tokio::test]
async fn data_survives_a_restart_on_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Process::start(serve_cmd(dir.path()));
    assert_eq!(first.data_dir, dir.path(), "the data dir is printed");
    let user = register(&first, "alice@example.test", PASSWORD).await;
    let (s, body) = login(&first, "alice@example.test", PASSWORD).await;
    assert_eq!(s, 200);
    let token = body["token"].as_str().unwrap().to_owned();
    first.stop_with("TERM");

    let mut second = Process::start(serve_cmd(dir.path()));
    let (s, body) = login(&second, "alice@example.test", PASSWORD).await;
    assert_eq!((s, &body["user"]), (200, &user), "{body}");
    let (s, me) = call(&second, "GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!((s, &me), (200, &user), "the session survived the restart");
    let (s, _) = call(
        &second,
        "POST",
        "/api/v1/auth/register",
        None,
        Some(json!({"email": "ALICE@example.test", "password": PASSWORD})),
    )
    .await;
    assert_eq!(s, 409, "the email index survived too");
    second.stop_with("TERM");
}

#[test]
fn the_pop3_listener_is_printed_written_down_and_can_be_off() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut p = Process::start(serve_cmd(dir.path()));
    let pop3 = p.pop3.expect("a POP3: line");
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("server.json")).unwrap()).unwrap();
    assert_eq!(info["pop3"], pop3.to_string());
    let stream = std::net::TcpStream::connect(pop3).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut greeting = String::new();
    BufReader::new(stream).read_line(&mut greeting).unwrap();
    assert!(greeting.starts_with("+OK"), "{greeting}");
    p.stop_with("TERM");

    let mut cmd = serve_cmd(dir.path());
    cmd.args(["--pop3-port", "off"]);
    let mut p = Process::start(cmd);
    assert_eq!(p.pop3, None);
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("server.json")).unwrap()).unwrap();
    assert!(info.get("pop3").is_none(), "{info}");
    p.stop_with("TERM");
}

#[tokio::test]
async fn sigterm_and_sigint_stop_cleanly_with_status_0() {
    for signal in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Process::start(serve_cmd(dir.path()));
        // A client that keeps an idle keep-alive connection open must not hold up shutdown.
        let client = reqwest::Client::new();
        let r = send(client.get(p.url("/healthz"))).await;
        assert_eq!(r.status, 200);
        p.stop_with(signal);
        let stderr = p.stderr();
        assert!(
            stderr.contains(&format!("SIG{signal} received")),
            "{stderr}"
        );
        assert!(stderr.contains("store flushed"), "{stderr}");
        assert!(
            !stderr.contains("did not finish in time"),
            "an idle connection delayed shutdown:\n{stderr}"
        );
        assert_no_panic(&stderr);
        drop(client);
    }
}

#[tokio::test]
async fn a_signal_right_after_start_up_still_stops_cleanly() {
    // The printed address tells scripts the server is up; a signal sent at once must already
    // be handled, not kill the process.
    for _ in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Process::start(serve_cmd(dir.path()));
        p.stop_with("TERM");
    }
}

#[tokio::test]
async fn shutdown_finishes_a_request_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Process::start(serve_cmd(dir.path()));
    let body = json!({"email": "slow@example.test", "password": PASSWORD}).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let mut conn = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    let request = format!(
        "POST /api/v1/auth/register HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{head}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    // Let the server read the request head first: a connection that has not begun a request
    // is idle, and a graceful shutdown rightly closes idle connections at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.signal("TERM");
    p.wait_for_log("shutting down");
    conn.write_all(tail.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(TIMEOUT, conn.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read the answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 201"),
        "the request in flight was not finished: {answer}"
    );
    let status = p.wait();
    assert_eq!(status.code(), Some(0), "{}", p.stderr());

    // The registration was flushed before the exit.
    let mut again = Process::start(serve_cmd(dir.path()));
    let (s, _) = login(&again, "slow@example.test", PASSWORD).await;
    assert_eq!(s, 200);
    again.stop_with("TERM");
}

// ----- start-up failures ---------------------------------------------------------------------

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Process::start(serve_cmd(dir.path()));
    let second = run(serve_cmd(dir.path()));
    assert_eq!(second.status.code(), Some(1), "{second:?}");
    assert!(
        second.stderr.contains(&dir.path().display().to_string()),
        "names the data dir: {}",
        second.stderr
    );
    assert!(
        second.stderr.contains("locked") || second.stderr.contains("in use"),
        "says why: {}",
        second.stderr
    );
    assert_no_panic(&second.stderr);
    assert!(
        !second.stdout.contains("HTTP API"),
        "it never started: {}",
        second.stdout
    );
    // The first server is unharmed.
    register(&first, "alice@example.test", PASSWORD).await;
    first.stop_with("TERM");
}

#[test]
fn a_busy_port_fails_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = fakemail();
    cmd.args(["serve", "--password-iterations", "1000", "--port"])
        .arg(port.to_string())
        .arg("--data-dir")
        .arg(dir.path());
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{port}")),
        "names the address: {}",
        out.stderr
    );
    assert!(
        out.stderr.to_lowercase().contains("in use"),
        "says why: {}",
        out.stderr
    );
    assert_no_panic(&out.stderr);
    drop(taken);
}

#[test]
fn an_unwritable_log_dir_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let log_dir = file.join("logs");
    let mut cmd = serve_cmd(&dir.path().join("data"));
    cmd.arg("--log-dir").arg(&log_dir);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains(&log_dir.display().to_string()) && out.stderr.contains("log"),
        "names the log dir: {}",
        out.stderr
    );
    assert_no_panic(&out.stderr);
}

#[test]
fn bad_flags_are_usage_errors_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cases: [(&[&str], &str); 9] = [
        (&["--port", "notanumber"], "--port"),
        (&["--port", "65536"], "--port"),
        (&["--password-iterations", "10"], "--password-iterations"),
        (&["--session-ttl", "0s"], "--session-ttl"),
        (&["--session-ttl", "soon"], "--session-ttl"),
        (&["--log-keep", "0"], "--log-keep"),
        (&["--log-format", "xml"], "--log-format"),
        (&["--bind", "localhost:80"], "--bind"),
        (&["--temporary"], "--temporary"),
    ];
    for (args, flag) in cases {
        let mut cmd = fakemail();
        cmd.args(["serve", "--port", "0", "--data-dir"])
            .arg(&data)
            .args(args);
        let out = run(cmd);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(out.stderr.contains(flag), "{args:?}: {}", out.stderr);
        assert_no_panic(&out.stderr);
    }
    assert!(!data.exists(), "nothing was started");
    let mut cmd = fakemail();
    cmd.arg("serve").arg("--no-such-flag");
    assert_eq!(run(cmd).status.code(), Some(2));
    assert_eq!(run(fakemail()).status.code(), Some(2), "no subcommand");
}

#[test]
fn version_and_help() {
    let version = env!("CARGO_PKG_VERSION");
    let mut cmd = fakemail();
    cmd.arg("--version");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, format!("fakemail {version}\n"));
    let mut cmd = fakemail();
    cmd.args(["serve", "--version"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout.starts_with("fakemail") && out.stdout.trim_end().ends_with(version),
        "{}",
        out.stdout
    );
    let mut cmd = fakemail();
    cmd.arg("help");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout.contains("Usage:") && out.stdout.contains("serve"),
        "{}",
        out.stdout
    );
    let mut cmd = fakemail();
    cmd.args(["help", "serve"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.contains("--data-dir"), "{}", out.stdout);
}

/// The long flags `fakemail serve --help` lists, without `--help` and `--version`.
fn serve_flags(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            // `-h, --help` lines start with the short form.
            let l = match l.split_once(", ") {
                Some((short, long)) if short.len() == 2 && short.starts_with('-') => long,
                _ => l,
            };
            let name = l.strip_prefix("--")?.split([' ', '=', '<']).next()?;
            Some(name.to_owned())
        })
        .filter(|f| !f.is_empty() && f != "help" && f != "version")
        .collect()
}

#[test]
fn every_serve_flag_has_a_fakemail_variable() {
    let mut cmd = fakemail();
    cmd.args(["serve", "--help"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0));
    let flags = serve_flags(&out.stdout);
    for expected in ["port", "data-dir", "session-ttl", "log-dir", "temporary"] {
        assert!(flags.contains(expected), "{expected} in {flags:?}");
    }
    for flag in &flags {
        let var = format!("FAKEMAIL_{}", flag.to_uppercase().replace('-', "_"));
        assert!(
            // Secrets (--admin-token) hide their value: `[env: VAR]`.
            out.stdout.contains(&format!("[env: {var}="))
                || out.stdout.contains(&format!("[env: {var}]")),
            "--{flag} has no {var}:\n{}",
            out.stdout
        );
    }
}

// ----- configuration from the environment ----------------------------------------------------

#[tokio::test]
async fn flags_can_come_from_fakemail_variables() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let logs = dir.path().join("elsewhere");
    let mut cmd = fakemail();
    cmd.arg("serve")
        .env("FAKEMAIL_PORT", "0")
        .env("FAKEMAIL_DATA_DIR", &data)
        .env("FAKEMAIL_LOG_DIR", &logs)
        .env("FAKEMAIL_PASSWORD_ITERATIONS", "1000")
        .env("FAKEMAIL_SESSION_TTL", "90s");
    let mut p = Process::start(cmd);
    assert_eq!(p.data_dir, data);
    assert_eq!(p.log_dir, logs);
    let user = register(&p, "alice@example.test", PASSWORD).await;
    let (s, body) = login(&p, "alice@example.test", PASSWORD).await;
    assert_eq!(s, 200);
    let expires = rfc3339(&body["expires_at"]);
    let now = SystemTime::now();
    assert!(
        expires <= now + Duration::from_secs(90) && expires > now + Duration::from_secs(30),
        "the session TTL is not the 90 s from FAKEMAIL_SESSION_TTL: {}",
        body["expires_at"]
    );
    p.stop_with("TERM");
    assert!(
        read_logs(&logs).contains("fakemail started"),
        "logs went to FAKEMAIL_LOG_DIR"
    );
    assert!(!data.join("logs").exists());

    // The data is in FAKEMAIL_DATA_DIR, hashed with FAKEMAIL_PASSWORD_ITERATIONS.
    let store = Store::open(&data, 8 << 20).unwrap();
    let record = store
        .user_by_email("alice@example.test")
        .unwrap()
        .expect("the user is in FAKEMAIL_DATA_DIR");
    assert_eq!(record.id.to_string(), user["id"].as_str().unwrap());
    assert!(
        record.password_hash.starts_with("$pbkdf2-sha256$i=1000,"),
        "{}",
        record.password_hash
    );
}

#[test]
fn flags_override_variables_and_bad_variables_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (from_env, from_flag) = (dir.path().join("env"), dir.path().join("flag"));
    let mut cmd = serve_cmd(&from_flag);
    cmd.env("FAKEMAIL_DATA_DIR", &from_env)
        .env("FAKEMAIL_PORT", "1");
    let mut p = Process::start(cmd);
    assert_eq!(p.data_dir, from_flag);
    assert_ne!(p.addr.port(), 1);
    p.stop_with("TERM");
    assert!(!from_env.exists());

    for (var, value) in [
        ("FAKEMAIL_PORT", "notanumber"),
        ("FAKEMAIL_SESSION_TTL", "0s"),
        ("FAKEMAIL_PASSWORD_ITERATIONS", "10"),
        ("FAKEMAIL_LOG_KEEP", "0"),
    ] {
        let mut cmd = fakemail();
        cmd.arg("serve")
            .env("FAKEMAIL_DATA_DIR", &from_env)
            .env(var, value);
        let out = run(cmd);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {out:?}");
    }
}

#[tokio::test]
async fn a_temporary_store_is_removed_on_exit() {
    let mut cmd = fakemail();
    cmd.args([
        "serve",
        "--temporary",
        "--port",
        "0",
        "--password-iterations",
        "1000",
    ]);
    let mut p = Process::start(cmd);
    let data = p.data_dir.clone();
    assert!(data.is_dir(), "{} exists while running", data.display());
    register(&p, "alice@example.test", PASSWORD).await;
    p.stop_with("TERM");
    assert!(!data.exists(), "{} is still there", data.display());

    // FAKEMAIL_TEMPORARY works the same way.
    let mut cmd = fakemail();
    cmd.arg("serve")
        .env("FAKEMAIL_TEMPORARY", "true")
        .env("FAKEMAIL_PORT", "0");
    let mut p = Process::start(cmd);
    let data = p.data_dir.clone();
    assert!(data.is_dir());
    p.stop_with("INT");
    assert!(!data.exists(), "{} is still there", data.display());
}

// ----- logging -------------------------------------------------------------------------------

#[tokio::test]
async fn log_files_record_operations_but_never_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Process::start(serve_cmd(dir.path()));
    let email = "logged@example.test";
    let password = "first-Secret-7f3a9c";
    let wrong = "wrong-Secret-2b8e1d";
    let changed = "second-Secret-5c4d0e";
    register(&p, email, password).await;
    let (s, _) = login(&p, email, wrong).await;
    assert_eq!(s, 401);
    let (s, body) = login(&p, email, password).await;
    assert_eq!(s, 200);
    let token = body["token"].as_str().unwrap().to_owned();
    let (s, _) = call(
        &p,
        "POST",
        "/api/v1/me/password",
        Some(&token),
        Some(json!({"current_password": password, "new_password": changed})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(&p, "POST", "/api/v1/auth/logout", Some(&token), None).await;
    assert_eq!(s, 204);
    p.stop_with("TERM");

    let logs_dir = dir.path().join("logs");
    assert_eq!(p.log_dir, logs_dir, "logs go to <data-dir>/logs by default");
    let files: Vec<String> = std::fs::read_dir(&logs_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().any(|f| f.starts_with("fakemail.")),
        "{files:?}"
    );
    let logs = read_logs(&logs_dir);
    let line = |needle: &str| {
        logs.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} line in the log files:\n{logs}"))
            .to_owned()
    };
    assert!(line("fakemail started").contains(&p.addr.to_string()));
    assert!(line("registered").contains(email));
    assert!(line("login failed").contains(email));
    line("logged in");
    line("password changed");
    line("logged out");
    line("store flushed");
    let stderr = p.stderr();
    for secret in [password, wrong, changed, token.as_str()] {
        assert!(!logs.contains(secret), "a secret in the log files:\n{logs}");
        assert!(!stderr.contains(secret), "a secret on stderr:\n{stderr}");
    }
    assert!(!logs.contains("pbkdf2"), "a hash in the log files");
}

#[tokio::test]
async fn json_log_format_writes_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = serve_cmd(dir.path());
    cmd.args(["--log-format", "json"]);
    let mut p = Process::start(cmd);
    register(&p, "json@example.test", PASSWORD).await;
    p.stop_with("TERM");
    let logs = read_logs(&p.log_dir);
    let events: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let registered = events
        .iter()
        .find(|e| e["fields"]["message"] == "registered")
        .unwrap_or_else(|| panic!("no registered event in {logs}"));
    assert_eq!(registered["fields"]["email"], "json@example.test");
    assert_eq!(registered["level"], "INFO");
    for line in p.stderr().lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("stderr {e}: {line}"));
    }
}

// ----- defaults and wiring -------------------------------------------------------------------

#[test]
fn the_default_data_dir_follows_xdg_then_home() {
    let dir = tempfile::tempdir().unwrap();
    let xdg = dir.path().join("xdg");
    let home = dir.path().join("home");
    let start = |xdg: Option<&Path>| {
        let mut cmd = fakemail();
        cmd.args(["serve", "--port", "0"]).env("HOME", &home);
        match xdg {
            Some(x) => cmd.env("XDG_DATA_HOME", x),
            None => cmd.env_remove("XDG_DATA_HOME"),
        };
        Process::start(cmd)
    };
    let mut p = start(Some(&xdg));
    assert_eq!(p.data_dir, xdg.join("fakemail"));
    assert_eq!(p.log_dir, xdg.join("fakemail").join("logs"));
    p.stop_with("TERM");
    let mut p = start(None);
    assert_eq!(p.data_dir, home.join(".local/share/fakemail"));
    p.stop_with("TERM");
    // A relative XDG_DATA_HOME is ignored, as the XDG spec says.
    let mut p = start(Some(Path::new("relative/xdg")));
    assert_eq!(p.data_dir, home.join(".local/share/fakemail"));
    p.stop_with("TERM");

    let mut cmd = fakemail();
    cmd.args(["serve", "--port", "0"])
        .env_remove("HOME")
        .env_remove("XDG_DATA_HOME");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("--data-dir"),
        "says what to do: {}",
        out.stderr
    );
    assert_no_panic(&out.stderr);
}

#[tokio::test]
async fn max_body_size_comes_from_the_flag_and_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let mut flag = serve_cmd(&dir.path().join("a"));
    flag.args(["--max-body-size", "1KiB"]);
    let mut var = serve_cmd(&dir.path().join("b"));
    var.env("FAKEMAIL_MAX_BODY_SIZE", "1KiB");
    for cmd in [flag, var] {
        let mut p = Process::start(cmd);
        let padded = |len: usize| {
            let mut body =
                json!({"email": format!("u{len}@example.test"), "password": PASSWORD}).to_string();
            body.push_str(&" ".repeat(len - body.len()));
            body
        };
        let client = reqwest::Client::new();
        let post = |body: String| {
            client
                .post(p.url("/api/v1/auth/register"))
                .header("content-type", "application/json")
                .body(body)
        };
        assert_eq!(send(post(padded(1024))).await.status, 201);
        let r = send(post(padded(1025))).await;
        assert_error(&(r.status, r.json), 413, "payload_too_large");
        p.stop_with("TERM");
    }
}

#[tokio::test]
async fn expired_sessions_are_swept_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let with_ttl = || {
        let mut cmd = serve_cmd(dir.path());
        cmd.args(["--session-ttl", "1s"]);
        cmd
    };
    let mut p = Process::start(with_ttl());
    register(&p, "alice@example.test", PASSWORD).await;
    for _ in 0..2 {
        assert_eq!(login(&p, "alice@example.test", PASSWORD).await.0, 200);
    }
    p.stop_with("TERM");
    tokio::time::sleep(Duration::from_millis(2_100)).await;

    let mut p = Process::start(with_ttl());
    let line = p.wait_for_log("expired sessions removed");
    assert!(line.contains("removed=2"), "{line}");
    p.stop_with("TERM");
    let store = Store::open(dir.path(), 8 << 20).unwrap();
    assert_eq!(store.session_count(), 0);
    assert_eq!(store.user_count().unwrap(), 1, "only the sessions went");
}

#[tokio::test]
async fn a_stalled_request_holds_up_shutdown_only_for_the_drain_bound() {
    assert!(
        TIMEOUT > fakemail::config::DRAIN_TIMEOUT + Duration::from_secs(5),
        "the wait below must outlast the drain bound"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut p = Process::start(serve_cmd(dir.path()));
    let mut conn = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    // A body that never arrives in full.
    conn.write_all(
        b"POST /api/v1/auth/register HTTP/1.1\r\nHost: test\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":",
    )
    .await
    .unwrap();
    // Let the server read the request head first: a connection that has not begun a request
    // is idle, and a graceful shutdown rightly closes idle connections at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.signal("TERM");
    let status = p.wait();
    assert_eq!(status.code(), Some(0), "{}", p.stderr());
    let stderr = p.stderr();
    assert!(stderr.contains("did not finish in time"), "{stderr}");
    assert!(stderr.contains("store flushed"), "{stderr}");
    drop(conn);
}

#[test]
fn a_data_dir_that_is_a_file_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let mut cmd = serve_cmd(&file);
    cmd.arg("--log-dir").arg(dir.path().join("logs"));
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains(&format!("data dir {}", file.display())),
        "names the data dir: {}",
        out.stderr
    );
    assert_no_panic(&out.stderr);
}

#[tokio::test]
async fn access_lines_are_logged_at_debug_only() {
    for (level, logged) in [("info", false), ("debug", true)] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = serve_cmd(dir.path());
        cmd.args(["--log-level", level]);
        let mut p = Process::start(cmd);
        let r = send(reqwest::Client::new().get(p.url("/healthz"))).await;
        assert_eq!(r.status, 200);
        p.stop_with("TERM");
        let logs = read_logs(&p.log_dir);
        assert_eq!(
            logs.lines().any(|l| l.contains("/healthz")),
            logged,
            "--log-level {level}:\n{logs}"
        );
    }
}
