//! The server's lifecycle: bind listeners, run the front-ends (HTTP, SMTP, IMAP, POP3) and
//! background tasks, and on shutdown stop accepting, drain in-flight requests and SMTP, IMAP
//! and POP3 sessions within a bound, and flush the store.
//!
//! [`Server`] is the one start-up path: `fakemail serve`, the project's own tests and
//! `fakemail::testing` all bind through [`Server::bind`] and then serve with [`Server::run`]
//! (until a future resolves) or [`Server::spawn`] (in a task, with a [`Running`] handle).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::config::{CompatAuth, Config, DRAIN_TIMEOUT};
use crate::error::{Error, Result};
use crate::service::Service;
use crate::smtp::tls::{Tls, TlsError};
use crate::store::Store;
use crate::time::Timestamp;
use crate::ui::Ui;
use crate::{api, pop3, smtp};

/// How often expired sessions are swept.
pub const SESSION_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The bound sockets the server will serve, with the SMTP listener's TLS identity. Binding is
/// separate from running so that a busy port or an unreadable certificate is a clear start-up
/// error, and tests can bind port 0 and learn the address.
#[derive(Debug)]
pub struct Listeners {
    pub http: TcpListener,
    pub smtp: TcpListener,
    /// The certificate offered to STARTTLS (and to POP3's STLS).
    pub smtp_tls: Tls,
    /// The POP3 listener (`--pop3-port`; `None`: off).
    pub pop3: Option<TcpListener>,
    /// The MailHog API's own listener (`--mailhog-port`).
    pub mailhog: Option<TcpListener>,
    /// The Mailpit API's own listener (`--mailpit-port`).
    pub mailpit: Option<TcpListener>,
    /// The IMAP listener (`--imap-port`; `None` when off).
    pub imap: Option<TcpListener>,
}

/// The server cannot start: a port cannot be bound, or the TLS identity cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A bound listener cannot tell its address (not seen in practice; the OS would have to
    /// fail `getsockname` on a socket it just bound).
    #[error("cannot read the address of the {what} listener: {source}")]
    Address {
        /// `HTTP`, `SMTP` or `POP3`.
        what: &'static str,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// What the SMTP listener is called in a [`BindError`].
const SMTP: &str = "SMTP";
/// What the POP3 listener is called in a [`BindError`].
const POP3: &str = "POP3";
/// What the IMAP listener is called in a [`BindError`].
const IMAP: &str = "IMAP";
/// What the MailHog API's own listener is called in a [`BindError`].
const MAILHOG: &str = "the MailHog API";
/// What the Mailpit API's own listener is called in a [`BindError`].
const MAILPIT: &str = "the Mailpit API";

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
    /// Loads the TLS identity and binds every listener the config asks for.
    ///
    /// # Errors
    /// [`BindError`] naming the address, with a hint when the port is taken; [`TlsError`]
    /// naming the certificate or key file at fault.
    pub async fn bind(config: &Config) -> Result<Listeners, StartError> {
        // Before binding: a start-up that fails should hold no port meanwhile.
        let smtp_tls = Tls::load(config.smtp.tls.as_ref(), config.smtp.addr.ip())?;
        let bind = |what, addr| async move {
            TcpListener::bind(addr).await.map_err(|source| BindError {
                what,
                addr,
                hint: match (source.kind(), what) {
                    (std::io::ErrorKind::AddrInUse, SMTP) => {
                        " (is another server using this port? choose another with --smtp-port, or 0 for any free port)"
                    }
                    (std::io::ErrorKind::AddrInUse, POP3) => {
                        " (is another server using this port? choose another with --pop3-port, 0 for any free port, or off)"
                    }
                    (std::io::ErrorKind::AddrInUse, IMAP) => {
                        " (is another server using this port? choose another with --imap-port, 0 for any free port, or off)"
                    }
                    (std::io::ErrorKind::AddrInUse, MAILHOG) => {
                        " (is another server using this port? choose another with --mailhog-port, or 0 for any free port)"
                    }
                    (std::io::ErrorKind::AddrInUse, MAILPIT) => {
                        " (is another server using this port? choose another with --mailpit-port, or 0 for any free port)"
                    }
                    (std::io::ErrorKind::AddrInUse, _) => {
                        " (is another server using this port? choose another with --port, or 0 for any free port)"
                    }
                    (std::io::ErrorKind::PermissionDenied, _) => {
                        " (ports below 1024 need privileges)"
                    }
                    _ => "",
                },
                source,
            })
        };
        let http = bind("the HTTP API", config.http_addr).await?;
        let smtp = bind(SMTP, config.smtp.addr).await?;
        let pop3 = match config.pop3.addr {
            Some(addr) => Some(bind(POP3, addr).await?),
            None => None,
        };
        let mailhog = match config.compat.mailhog_addr {
            Some(addr) => Some(bind(MAILHOG, addr).await?),
            None => None,
        };
        let mailpit = match config.compat.mailpit_addr {
            Some(addr) => Some(bind(MAILPIT, addr).await?),
            None => None,
        };
        let imap = match config.imap.addr {
            Some(addr) => Some(bind(IMAP, addr).await?),
            None => None,
        };
        Ok(Listeners {
            http,
            smtp,
            smtp_tls,
            pop3,
            mailhog,
            mailpit,
            imap,
        })
    }

    /// The address the HTTP API is bound to.
    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    /// The address the SMTP listener is bound to.
    pub fn smtp_addr(&self) -> std::io::Result<SocketAddr> {
        self.smtp.local_addr()
    }

    /// The address the POP3 listener is bound to, when it is on.
    pub fn pop3_addr(&self) -> std::io::Result<Option<SocketAddr>> {
        self.pop3.as_ref().map(TcpListener::local_addr).transpose()
    }

    /// The addresses of the compatibility APIs' own listeners: MailHog's, Mailpit's.
    pub fn compat_addrs(&self) -> std::io::Result<CompatAddrs> {
        let addr = |l: &Option<TcpListener>| l.as_ref().map(TcpListener::local_addr).transpose();
        Ok(CompatAddrs {
            mailhog: addr(&self.mailhog)?,
            mailpit: addr(&self.mailpit)?,
        })
    }
}

/// Where the compatibility APIs' own listeners are bound, for those that are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompatAddrs {
    /// The MailHog API's (`--mailhog-port`).
    pub mailhog: Option<SocketAddr>,
    /// The Mailpit API's (`--mailpit-port`).
    pub mailpit: Option<SocketAddr>,
}

/// A temporary data dir (`--temporary`, and test servers): removed when the returned guard
/// drops, so the guard must outlive the server's final flush.
///
/// # Errors
/// The directory cannot be created under the system's temporary dir.
pub fn temporary_data_dir() -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("fakemail-").tempdir()
}

/// A server ready to serve: listeners bound, service built over the opened store, the admin
/// token set when the config gives one. Nothing is served until [`Server::run`] or
/// [`Server::spawn`], so the caller can announce the addresses first (print them, write the
/// runfile) and no client can come before that.
pub struct Server {
    config: Config,
    service: Service,
    listeners: Listeners,
    http: SocketAddr,
    smtp: SocketAddr,
    pop3: Option<SocketAddr>,
    imap: Option<SocketAddr>,
    compat: CompatAddrs,
    /// Dropped only once the server has stopped and flushed.
    temp: Option<tempfile::TempDir>,
}

impl Server {
    /// Binds the listeners `config` asks for and builds the service over `store`. With
    /// `config.admin_token` set, the service accepts it; without, the caller sets one (or none)
    /// through [`Server::service`] before serving.
    ///
    /// # Errors
    /// [`StartError`]: a port cannot be bound or the TLS identity cannot be loaded.
    pub async fn bind(config: Config, store: Store) -> Result<Server, StartError> {
        let listeners = Listeners::bind(&config).await?;
        let address = |what, r: std::io::Result<SocketAddr>| {
            r.map_err(|source| StartError::Address { what, source })
        };
        let http = address("HTTP", listeners.http_addr())?;
        let smtp = address(SMTP, listeners.smtp_addr())?;
        let pop3 = listeners
            .pop3_addr()
            .map_err(|source| StartError::Address { what: POP3, source })?;
        let imap = listeners
            .imap
            .as_ref()
            .map(|l| address(IMAP, l.local_addr()))
            .transpose()?;
        let compat = listeners
            .compat_addrs()
            .map_err(|source| StartError::Address {
                what: "compatibility API",
                source,
            })?;
        let service = Service::new(store, config.service.clone());
        if let Some(token) = &config.admin_token {
            service.set_admin_token(token);
        }
        Ok(Server {
            config,
            service,
            listeners,
            http,
            smtp,
            pop3,
            imap,
            compat,
            temp: None,
        })
    }

    /// Hands over the temporary data dir the store lives in, to be removed only after the
    /// server's final flush, however the server stops.
    pub fn with_temp_dir(mut self, dir: tempfile::TempDir) -> Server {
        self.temp = Some(dir);
        self
    }

    /// The address the HTTP API is bound to.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// The address the SMTP listener is bound to.
    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp
    }

    /// The address the POP3 listener is bound to, when it is on.
    pub fn pop3_addr(&self) -> Option<SocketAddr> {
        self.pop3
    }

    /// The address the IMAP listener is bound to; `None` when IMAP is off.
    pub fn imap_addr(&self) -> Option<SocketAddr> {
        self.imap
    }

    /// The addresses of the compatibility APIs' own listeners.
    pub fn compat_addrs(&self) -> CompatAddrs {
        self.compat
    }

    /// The service the front-ends will use.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The config it serves with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The certificate STARTTLS will offer.
    pub fn smtp_tls(&self) -> &Tls {
        &self.listeners.smtp_tls
    }

    /// Serves until `shutdown` resolves, then drains and flushes: see [`run`].
    ///
    /// # Errors
    /// Fails only when the final flush of the store fails.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let result = run(&self.config, self.service, self.listeners, shutdown).await;
        // After the flush: the store's files may go now.
        drop(self.temp);
        result
    }

    /// Serves in a task on the current runtime until [`Running::shutdown`] or the handle's
    /// drop. Must be called within a tokio runtime.
    pub fn spawn(self) -> Running {
        let (stop, stopped) = oneshot::channel::<()>();
        let (http, smtp, pop3, imap, compat, service) = (
            self.http,
            self.smtp,
            self.pop3,
            self.imap,
            self.compat,
            self.service.clone(),
        );
        // A dropped sender also resolves the receiver: dropping the handle stops the server.
        let task = tokio::spawn(self.run(async {
            let _ = stopped.await;
        }));
        Running {
            http,
            smtp,
            pop3,
            imap,
            compat,
            service,
            stop: Some(stop),
            task: Some(task),
        }
    }
}

/// A server serving in a task ([`Server::spawn`]). Dropping it asks the server to stop without
/// waiting: the task drains, flushes and removes a temporary data dir on its own.
/// [`Running::shutdown`] does the same and waits for it.
pub struct Running {
    http: SocketAddr,
    smtp: SocketAddr,
    pop3: Option<SocketAddr>,
    imap: Option<SocketAddr>,
    compat: CompatAddrs,
    service: Service,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<()>>>,
}

impl Running {
    /// The address the HTTP API is bound to.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// The address the SMTP listener is bound to.
    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp
    }

    /// The address the POP3 listener is bound to, when it is on.
    pub fn pop3_addr(&self) -> Option<SocketAddr> {
        self.pop3
    }

    /// The address the IMAP listener is bound to; `None` when IMAP is off.
    pub fn imap_addr(&self) -> Option<SocketAddr> {
        self.imap
    }

    /// The addresses of the compatibility APIs' own listeners.
    pub fn compat_addrs(&self) -> CompatAddrs {
        self.compat
    }

    /// The running server's service.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Stops the server and waits until it has drained (at most [`DRAIN_TIMEOUT`]) and
    /// flushed the store.
    ///
    /// # Errors
    /// The final flush failed, or the server's task panicked.
    pub async fn shutdown(mut self) -> Result<()> {
        self.stop.take();
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("http", &self.http)
            .field("smtp", &self.smtp)
            .field("pop3", &self.pop3)
            .field("imap", &self.imap)
            .field("stopping", &self.stop.is_none())
            .finish_non_exhaustive()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Dropping the sender is the signal; the task is left to finish (it is not aborted,
        // which would skip the flush).
        self.stop.take();
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

    let ui = config
        .ui
        .then(|| Ui::new(listeners.smtp.local_addr().ok().map(|a| a.port())));
    let compat =
        api::compat::Compat::new(service.clone(), config.compat.auth, config.max_body_size);
    let routes = api::routes(
        service.clone(),
        api::Limits {
            max_body: config.max_body_size,
            max_send_body: config.service.max_message_size + config.max_body_size,
        },
        ui,
        compat.clone(),
    );
    if config.compat.auth == CompatAuth::None && !config.http_addr.ip().is_loopback() {
        warn!(
            bind = %config.http_addr.ip(),
            "--compat-auth none on an address that is not a loopback address: anyone who can \
             reach this address can read and delete all mail through the MailHog and Mailpit APIs"
        );
    }
    // The store is open and every listener bound. Marked before the HTTP task exists, so no
    // request can be answered before it.
    service.set_ready(true);
    let http = tokio::spawn(
        warp::serve(routes)
            .incoming(listeners.http)
            .graceful(stopped(stop_rx.clone()))
            .run(),
    );
    // The compatibility APIs' own listeners: each serves its API at the root.
    let own = [
        (listeners.mailhog, api::compat::Api::MailHog),
        (listeners.mailpit, api::compat::Api::Mailpit),
    ];
    let compat_servers: Vec<JoinHandle<()>> = own
        .into_iter()
        .filter_map(|(listener, which)| {
            let listener = listener?;
            if let Ok(addr) = listener.local_addr() {
                info!(api = which.name(), %addr, "serving the {} API at the root", which.name());
            }
            Some(tokio::spawn(
                warp::serve(compat.root(which))
                    .incoming(listener)
                    .graceful(stopped(stop_rx.clone()))
                    .run(),
            ))
        })
        .collect();
    let pop3 = listeners.pop3.map(|listener| {
        tokio::spawn(pop3::serve(
            listener,
            service.clone(),
            pop3::Settings {
                max_connections: config.pop3.max_connections,
                idle_timeout: config.pop3.idle_timeout,
                tls: Some(listeners.smtp_tls.clone()),
            },
            stop_rx.clone(),
        ))
    });
    let imap = listeners.imap.map(|listener| {
        tokio::spawn(crate::imap::serve(
            listener,
            service.clone(),
            crate::imap::Settings {
                max_connections: config.imap.max_connections,
                idle_timeout: config.imap.idle_timeout,
                tls: Some(listeners.smtp_tls.acceptor.clone()),
                max_literal: u32::try_from(config.service.max_message_size).unwrap_or(u32::MAX),
            },
            stop_rx.clone(),
        ))
    });
    let smtp = tokio::spawn(smtp::serve(
        listeners.smtp,
        service.clone(),
        smtp::Settings {
            max_connections: config.smtp.max_connections,
            idle_timeout: config.smtp.idle_timeout,
            tls: Some(listeners.smtp_tls),
            session: Arc::new(smtp::session::Settings {
                hostname: smtp::HOSTNAME.into(),
                max_message_size: config.service.max_message_size,
                max_recipients: config.service.max_recipients,
                starttls: true,
                auth: config.smtp.auth,
            }),
        },
        stop_rx.clone(),
    ));
    let sweeper = tokio::spawn(session_sweeper(service.clone(), stopped(stop_rx.clone())));
    let policy = crate::retention::Policy {
        retention: config.retention,
        max_messages: config.service.max_messages,
    };
    let retention = policy.is_active().then(|| {
        info!(
            retention = %config.retention.map_or("off".into(), |age| humantime::format_duration(age).to_string()),
            max_messages = policy.max_messages,
            every = %humantime::format_duration(config.sweep_interval),
            "retention sweeper started"
        );
        tokio::spawn(crate::retention::sweeper(
            service.store().clone(),
            policy,
            config.sweep_interval,
            Default::default(),
            service.stats().retention().clone(),
            Arc::new(service.clone()),
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
    let drain = async {
        let _ = http.await;
        for server in compat_servers {
            let _ = server.await;
        }
    };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        warn!(timeout = ?DRAIN_TIMEOUT, "in-flight requests did not finish in time; closing them");
    }
    // Bounded by DRAIN_TIMEOUT itself, and drained at the same time as HTTP.
    let _ = smtp.await;
    if let Some(pop3) = pop3 {
        let _ = pop3.await;
    }
    if let Some(imap) = imap {
        let _ = imap.await;
    }
    let _ = sweeper.await;
    if let Some(r) = retention {
        let _ = r.await;
    }
    service.flushed().await.map_err(|e| match e {
        Error::StorageFull => Error::Internal(
            "the final flush of the store failed: its disk is full or failing; every message \
             acknowledged before is kept, and a restart with room on the disk reopens the store"
                .into(),
        ),
        e => e,
    })?;
    info!("store flushed; stopped");
    Ok(())
}

/// Removes expired sessions and reclaims the files of deleted messages' sources, at start-up
/// and then every [`SESSION_SWEEP_INTERVAL`].
async fn session_sweeper(service: Service, stop: impl Future<Output = ()>) {
    let mut stop = std::pin::pin!(stop);
    let mut tick = tokio::time::interval(SESSION_SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        match service.sweep_sessions(Timestamp::now()).await {
            Ok(0) => {}
            Ok(n) => info!(removed = n, "expired sessions removed"),
            Err(e) => error!(error = %e, "session sweep failed"),
        }
        match service.reclaim_bodies().await {
            Ok(r) if r.segments > 0 => info!(
                files = r.segments,
                bytes = r.bytes,
                moved = r.moved,
                "message files of deleted mail removed"
            ),
            Ok(_) => {}
            Err(e) => error!(error = %e, "reclaiming message files failed"),
        }
    }
}
