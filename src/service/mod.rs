//! The service layer: the only API the front-ends see. It owns the rules (validation, password
//! policy, sessions) and calls the store; it knows nothing of HTTP or SMTP.
//!
//! What a front-end sees is uniform: its own types ([`message`], [`mail`], [`operator`], ...),
//! never the store's records; one error type, [`crate::Error`]; and every method that may touch
//! the store is `async`, moving its blocking work (scans, transactions over several trees,
//! message parsing, password hashing) to the blocking pool itself, so a front-end just
//! `.await`s. Methods that only read memory (the chaos rules, the counters) stay plain.

pub mod address;
mod admin_session;
mod auth;
mod batch;
pub mod chaos;
pub mod compose;
mod durable;
pub mod events;
pub mod extract;
pub mod filter;
pub mod html;
pub mod imap;
pub mod limiter;
pub mod mail;
pub mod message;
pub mod mime;
pub mod operator;
pub mod password;
pub mod search;
pub mod space;
pub mod stats;
pub mod stream;
pub mod tags;
pub mod token;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OnceCell, Semaphore};

use crate::error::{Error, Result};
use crate::store::Store;
use limiter::LoginLimiter;

/// What a removal freed (messages and bytes), as purges and retention report it.
pub use crate::store::mail::Removed;
pub use admin_session::{AdminGrant, MAX_ADMIN_SESSION_TTL, MAX_ADMIN_SESSIONS};
pub use auth::{LoginOutcome, NewUser, Session, User};
pub use message::{Address, Entry, Message};

/// Failed logins allowed per address within [`LOGIN_WINDOW`].
pub const LOGIN_MAX_FAILURES: usize = 5;
/// The window for [`LOGIN_MAX_FAILURES`].
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Settings the service needs, taken from the validated config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a login token stays valid.
    pub session_ttl: Duration,
    /// PBKDF2 iterations for new password hashes.
    pub password_iterations: u32,
    /// Most recipients (to + cc + bcc) of one message.
    pub max_recipients: usize,
    /// Largest message source, in bytes.
    pub max_message_size: u64,
    /// Most messages kept; the oldest go beyond it (0: no cap).
    pub max_messages: u64,
    /// New mail is refused while the data dir's filesystem has less free space, in bytes
    /// (0: no check).
    pub min_free_space: u64,
    /// Whether fault injection may be used (`--chaos`).
    pub chaos: bool,
    /// Fault-injection rules to start with (`--chaos-rule`).
    pub chaos_rules: Vec<chaos::RuleSpec>,
}

/// A cheap-to-clone handle to the service; clones share the store and state.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    settings: Settings,
    limiter: LoginLimiter,
    /// A hash of a random password, verified against when a login names an unknown address so
    /// that both failures take the same time. Made on first use, with the current iterations.
    dummy_hash: OnceCell<String>,
    /// Bounds concurrent hashes to the number of cores, so a login storm queues instead of
    /// starving everything else of CPU.
    hashing: Semaphore,
    /// SHA-256 of the admin token, set once at start-up.
    admin_digest: std::sync::OnceLock<[u8; 32]>,
    /// The operator's browser sessions, in memory only.
    admin_sessions: admin_session::AdminSessions,
    /// Where deliveries and deletions are announced to waits and event streams.
    events: events::Hub,
    /// Uptime, the SMTP counters and what retention removed.
    stats: stats::Stats,
    /// Whether every listener serves (`/readyz`); false while starting and draining.
    ready: std::sync::atomic::AtomicBool,
    /// Fault-injection rules, asked by the front-ends at every stage.
    chaos: chaos::Chaos,
    /// Shared transactions for deliveries that arrive together.
    batch: batch::Batcher<mail::Pending>,
    /// Shared flushes for durable acknowledgements.
    flush: Arc<durable::GroupFlush>,
    /// Whether there is room for new mail (`--min-free-space`, failed writes).
    space: space::Space,
}

impl Service {
    /// A service over an opened store.
    pub fn new(store: Store, settings: Settings) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chaos = chaos::Chaos::new(settings.chaos, settings.chaos_rules.clone());
        let admin_ttl = settings.session_ttl.min(MAX_ADMIN_SESSION_TTL);
        let space = space::Space::new(store.dir(), settings.min_free_space);
        Service {
            inner: Arc::new(Inner {
                chaos,
                store,
                settings,
                limiter: LoginLimiter::new(LOGIN_MAX_FAILURES, LOGIN_WINDOW),
                dummy_hash: OnceCell::new(),
                hashing: Semaphore::new(cores),
                admin_digest: std::sync::OnceLock::new(),
                admin_sessions: admin_session::AdminSessions::new(admin_ttl, MAX_ADMIN_SESSIONS),
                events: events::Hub::default(),
                stats: stats::Stats::default(),
                ready: std::sync::atomic::AtomicBool::new(false),
                batch: batch::Batcher::default(),
                flush: Arc::default(),
                space,
            }),
        }
    }

    /// The store under this service (for the server's lifecycle: flush on shutdown).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Uptime, the SMTP counters and the retention counters; the SMTP front-end counts
    /// through it.
    pub fn stats(&self) -> &stats::Stats {
        &self.inner.stats
    }

    /// The fault-injection rules.
    pub fn chaos(&self) -> &chaos::Chaos {
        &self.inner.chaos
    }

    /// The free-space guard: the SMTP front-end asks it at MAIL, the service before every new
    /// message, `/readyz` and the metrics for how things stand.
    pub fn space(&self) -> &space::Space {
        &self.inner.space
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Runs CPU-heavy work (password hashing) on the blocking pool, at most one per core.
    async fn cpu<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .inner
            .hashing
            .acquire()
            .await
            .map_err(|_| Error::Internal("hashing pool closed".into()))?;
        Ok(tokio::task::spawn_blocking(f).await?)
    }

    /// Runs blocking work of the service (store scans, transactions over several trees,
    /// parsing messages) on the blocking pool. Every method that may do such work is `async`
    /// and offloads it here itself, so a front-end only ever `.await`s and never needs to
    /// know which calls block; point reads run inline (they cost about as much as the hop).
    async fn offload<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Service) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let svc = self.clone();
        tokio::task::spawn_blocking(move || f(&svc)).await?
    }

    /// Sets the admin token (once; later calls are ignored). Only its digest is kept.
    pub fn set_admin_token(&self, token: &str) {
        let _ = self.inner.admin_digest.set(token::digest(token));
    }

    /// Checks a bearer token against the admin token, comparing digests in constant time.
    ///
    /// # Errors
    /// [`Error::AdminOnly`] when no admin token is set or it does not match.
    pub fn check_admin(&self, bearer: Option<&str>) -> Result<()> {
        let (Some(want), Some(got)) = (self.inner.admin_digest.get(), bearer) else {
            return Err(Error::AdminOnly);
        };
        let got = token::digest(got);
        let diff = want
            .iter()
            .zip(got.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            Ok(())
        } else {
            Err(Error::AdminOnly)
        }
    }

    /// Marks the server ready (set by the server once every listener serves) or not (set when
    /// it begins to drain).
    pub fn set_ready(&self, ready: bool) {
        self.inner
            .ready
            .store(ready, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the server is ready for clients: serving, and with room for new mail.
    ///
    /// # Errors
    /// [`Error::NotReady`] while it starts or drains; [`Error::StorageFull`] while new mail is
    /// refused for lack of space or after a failed write.
    pub fn check_ready(&self) -> Result<()> {
        if !self.inner.ready.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::NotReady);
        }
        self.inner.space.check()
    }

    /// Deletes (or with `dry_run` measures) every message older than `age`.
    pub async fn purge(&self, age: Duration, dry_run: bool) -> Result<Removed> {
        let cutoff = crate::retention::cutoff(crate::time::Timestamp::now(), age);
        let removed = self
            .offload(move |svc| {
                crate::retention::purge_older_than(
                    &svc.inner.store,
                    cutoff,
                    dry_run,
                    Some(svc),
                    &mut |_| {},
                )
            })
            .await?;
        if !dry_run {
            self.inner
                .stats
                .retention()
                .removed(crate::retention::Reason::Purge, removed);
        }
        tracing::info!(
            messages = removed.messages,
            bytes = removed.bytes,
            older_than = %humantime::format_duration(age),
            dry_run,
            "purge requested over the API"
        );
        Ok(removed)
    }

    /// Periodic housekeeping: removes expired sessions (the operator's too) and forgets stale
    /// login failures. Returns the number of user sessions removed.
    pub async fn sweep_sessions(&self, now: crate::time::Timestamp) -> Result<usize> {
        self.inner.limiter.prune(std::time::Instant::now());
        self.inner.admin_sessions.prune(std::time::Instant::now());
        self.offload(move |svc| Ok(svc.inner.store.purge_expired_sessions(now)?))
            .await
    }

    /// Periodic housekeeping: gives back the disk of deleted messages' sources (see
    /// [`Store::reclaim_bodies`](crate::store::Store::reclaim_bodies)), for deletions made
    /// other than by retention, which reclaims after each pass.
    pub async fn reclaim_bodies(&self) -> Result<crate::store::mail::Reclaimed> {
        self.offload(move |svc| Ok(svc.inner.store.reclaim_bodies()?))
            .await
    }
}

/// A service on a temporary store, and deliveries into it, for the unit tests of this layer.
#[cfg(test)]
pub(crate) mod test_support {
    use super::Service;
    use super::mail::{Delivery, Envelope};
    use crate::store::Store;

    /// A service over a new store in `dir`, with the default settings.
    pub fn service(dir: &std::path::Path) -> Service {
        let store = Store::open(dir, 1 << 20).unwrap();
        Service::new(store, crate::config::Config::default().service)
    }

    /// Delivers a small message with `subject` to `b@example.test`; returns its message id.
    pub fn deliver(svc: &Service, subject: &str) -> u64 {
        let raw = format!(
            "From: a@example.test\r\nTo: b@example.test\r\nSubject: {subject}\r\n\r\nHi\r\n"
        );
        svc.deliver_blocking(Delivery {
            raw: raw.into_bytes(),
            envelope: Envelope {
                from: "a@example.test".into(),
                to: vec!["b@example.test".into()],
            },
            sender: None,
        })
        .unwrap()
        .message
        .id
    }
}
