//! Shared test harness: the real server, in-process, on 127.0.0.1:0 with a temporary store.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use fakemail::config::{Config, DataDir};
use fakemail::server::{self, Listeners};
use fakemail::service::Service;
use fakemail::store::Store;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Passwords in tests: valid under the rules.
pub const PASSWORD: &str = "correct horse battery";

/// Test config: fast hashing, temporary data, any free port.
pub fn test_config() -> Config {
    let mut c = Config::default();
    c.service.password_iterations = 1_000;
    c
}

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<fakemail::Result<()>>>,
    _temp: Option<tempfile::TempDir>,
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
        let store = Store::open(&data_dir, 16 << 20).expect("open store");
        let listeners = Listeners::bind(&config).await.expect("bind");
        let addr = listeners.http_addr().unwrap();
        let service = Service::new(store, config.service.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            server::run(&config, service, listeners, async {
                let _ = rx.await;
            })
            .await
        });
        TestServer {
            addr,
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            data_dir,
            stop: Some(tx),
            handle: Some(handle),
            _temp: temp,
        }
    }

    /// Stops the server and waits until it has flushed and released the store.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("server task").expect("server run");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request with an optional bearer token and JSON body; returns status and JSON
    /// (Null for an empty body).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method.parse().unwrap(), self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
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

    /// Logs in and returns the token.
    pub async fn login(&self, email: &str) -> String {
        let (s, v) = self
            .call(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(s, 200, "login {email}: {v}");
        v["token"].as_str().unwrap().to_owned()
    }

    /// Registers and logs in; returns the token.
    pub async fn user(&self, email: &str) -> String {
        self.register(email).await;
        self.login(email).await
    }
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
