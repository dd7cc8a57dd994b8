//! The server's lifecycle: bind listeners, run the front-ends and background tasks, and on
//! shutdown stop accepting, drain in-flight requests within a bound, and flush the store.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::api;
use crate::config::{Config, DRAIN_TIMEOUT};
use crate::error::Result;
use crate::service::Service;
use crate::time::Timestamp;

/// How often expired sessions are swept.
pub const SESSION_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The bound sockets the server will serve. Binding is separate from running so that a busy
/// port is a clear start-up error and tests can bind port 0 and learn the address.
#[derive(Debug)]
pub struct Listeners {
    pub http: TcpListener,
}

/// A listener could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for {what}: {source}{hint}")]
pub struct BindError {
    pub what: &'static str,
    pub addr: SocketAddr,
    pub source: std::io::Error,
    hint: &'static str,
}

impl Listeners {
    /// Binds every listener the config asks for.
    ///
    /// # Errors
    /// [`BindError`] naming the address, with a hint when the port is taken.
    pub async fn bind(config: &Config) -> Result<Listeners, BindError> {
        let bind = |what, addr| async move {
            TcpListener::bind(addr).await.map_err(|source| BindError {
                what,
                addr,
                hint: match source.kind() {
                    std::io::ErrorKind::AddrInUse => {
                        " (is another server using this port? choose another with --port, or 0 for any free port)"
                    }
                    std::io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges)",
                    _ => "",
                },
                source,
            })
        };
        Ok(Listeners {
            http: bind("the HTTP API", config.http_addr).await?,
        })
    }

    /// The address the HTTP API is bound to.
    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }
}

/// Serves until `shutdown` resolves, then drains (at most [`DRAIN_TIMEOUT`]) and flushes.
/// It marks the service ready (`/readyz`) as it spawns the front-ends and tells systemd
/// (`READY=1`, see [`crate::notify`]) once all are spawned; when `shutdown` resolves, it takes
/// both back first.
///
/// # Errors
/// Fails only when the final flush of the store fails.
pub async fn run(
    config: &Config,
    service: Service,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let status = match listeners.http.local_addr() {
        Ok(addr) => format!("serving HTTP on {addr}"),
        Err(_) => "serving".to_owned(),
    };
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let routes = api::routes(
        service.clone(),
        api::Limits {
            max_body: config.max_body_size,
            max_send_body: config.service.max_message_size + config.max_body_size,
        },
    );
    // The store is open and every listener bound. Marked before the HTTP task exists, so no
    // request can be answered before it.
    service.set_ready(true);
    let http = tokio::spawn(
        warp::serve(routes)
            .incoming(listeners.http)
            .graceful(stopped(stop_rx.clone()))
            .run(),
    );
    let sweeper = tokio::spawn(session_sweeper(service.clone(), stopped(stop_rx.clone())));
    let retention = config.retention.map(|age| {
        info!(retention = %humantime::format_duration(age), every = %humantime::format_duration(config.sweep_interval), "retention sweeper started");
        tokio::spawn(crate::retention::sweeper(
            service.store().clone(),
            age,
            config.sweep_interval,
            Default::default(),
            stopped(stop_rx.clone()),
        ))
    });

    // Every front-end is spawned on a listener bound before `run`: tell systemd.
    crate::notify::ready(&status);

    shutdown.await;
    service.set_ready(false);
    crate::notify::stopping();
    info!("shutting down: no new connections; draining in-flight requests");
    let _ = stop_tx.send(true);
    // Waits and event streams would hold the drain for their whole length: end them now.
    service.events().close();
    if tokio::time::timeout(DRAIN_TIMEOUT, http).await.is_err() {
        warn!(timeout = ?DRAIN_TIMEOUT, "in-flight requests did not finish in time; closing them");
    }
    let _ = sweeper.await;
    if let Some(r) = retention {
        let _ = r.await;
    }
    service.blocking(|store| Ok(store.flush()?)).await?;
    info!("store flushed; stopped");
    Ok(())
}

/// Removes expired sessions at start-up and then every [`SESSION_SWEEP_INTERVAL`].
async fn session_sweeper(service: Service, stop: impl Future<Output = ()>) {
    let mut stop = std::pin::pin!(stop);
    let mut tick = tokio::time::interval(SESSION_SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        let svc = service.clone();
        match tokio::task::spawn_blocking(move || svc.sweep_sessions(Timestamp::now())).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => info!(removed = n, "expired sessions removed"),
            Ok(Err(e)) => error!(error = %e, "session sweep failed"),
            Err(e) => error!(error = %e, "session sweep task failed"),
        }
    }
}
