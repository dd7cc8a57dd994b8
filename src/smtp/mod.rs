//! The SMTP front-end: on the shared accept loop ([`crate::listener`]: a connection limit,
//! a graceful stop on the server's shutdown signal), one task per connection driving a
//! [`session::Session`]. Every accepted message goes to [`Service::submit`], the same `deliver` as REST send.
//!
//! - [`session`]: the protocol state machine, without I/O.
//! - [`auth`]: decoding AUTH PLAIN and LOGIN; the password check is the service's.
//! - [`connection`]: one connection's reads and writes, pipelining, DATA, the idle timeout.
//! - [`codec`]: line limits; DATA bodies (dot-unstuffing, size limit). Lines are read, and
//!   replies held back for pipelining, by [`crate::lines`].
//! - [`reply`]: replies, and the one mapping of domain errors to reply codes.
//! - [`tls`]: the certificate for STARTTLS, from files or self-signed.

pub mod auth;
pub mod codec;
pub mod connection;
pub mod reply;
pub mod session;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::listener::{self, Protocol};
use crate::service::Service;
use reply::Reply;

/// The name the server gives itself in its greeting and in `Received:` headers.
pub const HOSTNAME: &str = "localhost";

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

/// SMTP as the shared accept loop serves it.
struct Smtp {
    ctx: connection::Context,
    session: Arc<session::Settings>,
}

impl Protocol for Smtp {
    fn name(&self) -> &'static str {
        "SMTP"
    }

    fn accepted(&self, _peer: SocketAddr) {
        self.ctx.service.stats().smtp_connection();
    }

    /// RFC 5321 3.8: come back later.
    fn refusal(&self) -> Vec<u8> {
        let reply = Reply::new(421, "4.7.0", "too many connections; try again later");
        self.ctx.service.stats().smtp_reply(reply.code);
        reply.to_wire().into_bytes()
    }

    async fn serve(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        stop: watch::Receiver<bool>,
    ) {
        let session = session::Session::new(self.session.clone(), peer)
            .with_chaos(self.ctx.service.chaos())
            .with_space(self.ctx.service.space());
        let _ = stream.set_nodelay(true);
        connection::run(stream, session, &self.ctx, stop).await;
    }
}

/// Accepts connections on `listener` until `stop` turns true, then lets the sessions end (each
/// gets 421 at its next command; a message being sent is received first) for at most
/// [`crate::config::DRAIN_TIMEOUT`], and drops what is left.
pub async fn serve(
    listener: TcpListener,
    service: Service,
    settings: Settings,
    stop: watch::Receiver<bool>,
) {
    let smtp = Arc::new(Smtp {
        ctx: connection::Context {
            service,
            idle_timeout: settings.idle_timeout,
            tls: settings.tls.as_ref().map(|t| t.acceptor.clone()),
            max_message_size: settings.session.max_message_size,
        },
        session: settings.session,
    });
    listener::serve(listener, smtp, settings.max_connections, stop).await;
}
