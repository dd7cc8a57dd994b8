//! What the benchmarks share: the real server, started in-process on a temporary store and
//! port 0 with its own runtime, as `fakemail serve` would run it, and stopped (drained and
//! flushed) when dropped.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use fakemail::config::{Config, DataDir};
use fakemail::server::{self, Listeners};
use fakemail::service::Service;
use fakemail::store::Store;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// The server, running on its own runtime until dropped.
pub struct Server {
    /// The HTTP API's address.
    pub addr: SocketAddr,
    /// The SMTP listener's address.
    pub smtp: SocketAddr,
    /// The running server's service, for work done through the library.
    pub service: Service,
    /// The data dir, removed after the server stops.
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    runtime: Option<Runtime>,
    handle: Option<tokio::task::JoinHandle<fakemail::Result<()>>>,
}

impl Server {
    /// Starts the server with `config` (its data dir replaced by a new temporary one).
    pub fn start(mut config: Config) -> Server {
        let dir = tempfile::tempdir().expect("temporary dir");
        config.data = DataDir::Path(dir.path().to_path_buf());
        // As `fakemail serve` does: a default multi-threaded runtime (one worker per core).
        let runtime = Runtime::new().expect("server runtime");
        let store = Store::open(dir.path(), config.cache_size).expect("open store");
        let listeners = runtime
            .block_on(Listeners::bind(&config))
            .expect("bind 127.0.0.1:0");
        let addr = listeners.http_addr().expect("bound address");
        let smtp = listeners.smtp_addr().expect("bound address");
        let service = Service::new(store, config.service.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let svc = service.clone();
        let handle = runtime.spawn(async move {
            server::run(&config, svc, listeners, async {
                let _ = rx.await;
            })
            .await
        });
        Server {
            addr,
            smtp,
            service,
            dir,
            stop: Some(tx),
            runtime: Some(runtime),
            handle: Some(handle),
        }
    }

    pub fn store(&self) -> &Store {
        self.service.store()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let (Some(rt), Some(h)) = (self.runtime.take(), self.handle.take()) {
            rt.block_on(h).expect("server task").expect("server run");
        }
    }
}

/// The runtime the benchmark's clients run on: their own, so that the server's workers serve
/// only the server.
pub fn client_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime")
}

/// Milliseconds with two decimals, for the tables.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}
