//! Shared by the benchmarks: the real server in-process (temporary store, port 0, its own
//! runtime, as `fakemail serve` runs it), to be driven over real HTTP from a separate client
//! runtime.
#![allow(dead_code)]

use std::net::SocketAddr;

use fakemail::config::{Config, DataDir};
use fakemail::server::{self, Listeners};
use fakemail::service::Service;
use fakemail::store::Store;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// The server, running on its own runtime until dropped.
pub struct Server {
    pub addr: SocketAddr,
    /// The running server's service, for filling the store through the library.
    pub service: Service,
    /// The data dir (a temporary one, removed on drop).
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    runtime: Option<Runtime>,
    handle: Option<tokio::task::JoinHandle<fakemail::Result<()>>>,
}

impl Server {
    /// Starts with the default config as `configure` changes it, on a new temporary data dir.
    pub fn start(configure: impl FnOnce(&mut Config)) -> Server {
        let dir = tempfile::tempdir().expect("temporary dir");
        let mut config = Config::default();
        configure(&mut config);
        config.data = DataDir::Path(dir.path().to_path_buf());
        // As `fakemail serve` does: a default multi-threaded runtime (one worker per core).
        let runtime = Runtime::new().expect("server runtime");
        let store = Store::open(dir.path(), config.cache_size).expect("open store");
        let listeners = runtime
            .block_on(Listeners::bind(&config))
            .expect("bind 127.0.0.1:0");
        let addr = listeners.http_addr().expect("bound address");
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
