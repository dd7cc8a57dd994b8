//! The SMTP front-end: a listener that accepts connections up to a limit, one task per
//! connection driving a [`session::Session`], and a graceful stop on the server's shutdown
//! signal. Every accepted message goes to [`Service::submit`], the same `deliver` as REST send.
//!
//! - [`session`]: the protocol state machine, without I/O.
//! - [`auth`]: decoding AUTH PLAIN and LOGIN; the password check is the service's.
//! - [`connection`]: one connection's reads and writes, pipelining, DATA, the idle timeout.
//! - [`codec`]: line reading with a length limit; DATA bodies (dot-unstuffing, size limit).
//! - [`reply`]: replies, and the one mapping of domain errors to reply codes.
//! - [`tls`]: the certificate for STARTTLS, from files or self-signed.

pub mod auth;
pub mod codec;
pub mod connection;
pub mod reply;
pub mod session;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, error, warn};

use crate::config::DRAIN_TIMEOUT;
use crate::service::Service;
use reply::Reply;

/// The name the server gives itself in its greeting and in `Received:` headers.
pub const HOSTNAME: &str = "localhost";

/// How long the 421 to a connection over the limit may take to send.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);

/// The listener's settings, from the validated config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Connections served at once; more get 421 and are closed.
    pub max_connections: usize,
    /// A client silent this long gets 421 and is disconnected.
    pub idle_timeout: Duration,
    /// The identity for STARTTLS; `None`: STARTTLS is not offered.
    pub tls: Option<tls::Tls>,
    /// What every session needs.
    pub session: Arc<session::Settings>,
}

/// Accepts connections on `listener` until `stop` turns true, then lets the sessions end (each
/// gets 421 at its next command; a message being sent is received first) for at most
/// [`DRAIN_TIMEOUT`], and drops what is left.
pub async fn serve(
    listener: TcpListener,
    service: Service,
    settings: Settings,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let ctx = Arc::new(connection::Context {
        service,
        idle_timeout: settings.idle_timeout,
        tls: settings.tls.as_ref().map(|t| t.acceptor.clone()),
        max_message_size: settings.session.max_message_size,
    });
    let mut sessions = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                error!(error = %e, "SMTP: cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        ctx.service.stats().smtp_connection();
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            warn!(peer = %peer, max = settings.max_connections, "SMTP: too many connections; refused");
            sessions.spawn(refuse(stream, ctx.service.clone()));
            continue;
        };
        let session =
            session::Session::new(settings.session.clone(), peer).with_chaos(ctx.service.chaos());
        let ctx = ctx.clone();
        let stop = stop.clone();
        sessions.spawn(async move {
            debug!(peer = %peer, "SMTP connection");
            let _ = stream.set_nodelay(true);
            connection::run(stream, session, &ctx, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            left = sessions.len(),
            "SMTP sessions did not finish in time; closing them"
        );
        sessions.shutdown().await;
    }
}

/// Tells a client over the connection limit to come back later (RFC 5321 3.8).
async fn refuse(mut stream: TcpStream, service: Service) {
    let reply = Reply::new(421, "4.7.0", "too many connections; try again later");
    service.stats().smtp_reply(reply.code);
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        stream.write_all(reply.to_wire().as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}
