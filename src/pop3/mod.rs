//! The POP3 front-end (RFC 1939 with CAPA, STLS and AUTH PLAIN): on the shared accept loop
//! ([`crate::listener`]), one task per connection driving a [`session::Session`] over the
//! user's `inbox`. It reads and deletes mail through the [`Service`] only, and checks
//! passwords with the same failed-login limit as the REST login.
//!
//! - [`session`]: the protocol state machine, without I/O.
//! - [`connection`]: one connection over [`crate::lines`] (pipelining, the idle timeout), STLS,
//!   and the service calls the session asks for.
//! - [`reply`]: responses, message bodies on the wire, and the one mapping of domain errors to
//!   `-ERR`.

pub mod connection;
pub mod reply;
pub mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::listener::{self, Protocol};
use crate::service::Service;
use crate::smtp::tls::Tls;
use reply::Reply;

/// The listener's settings, from the validated config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Connections served at once; more get `-ERR` and are closed.
    pub max_connections: usize,
    /// A client silent this long gets `-ERR` and is disconnected (RFC 1939 3: at least ten
    /// minutes).
    pub idle_timeout: Duration,
    /// The identity for STLS (the SMTP listener's); `None`: STLS is not offered.
    pub tls: Option<Tls>,
}

/// POP3 as the shared accept loop serves it.
struct Pop3 {
    ctx: connection::Context,
    session: Arc<session::Settings>,
}

impl Protocol for Pop3 {
    fn name(&self) -> &'static str {
        "POP3"
    }

    fn accepted(&self, _peer: SocketAddr) {
        self.ctx.service.stats().pop3().connection();
    }

    fn refusal(&self) -> Vec<u8> {
        Reply::too_many_connections().to_wire()
    }

    async fn serve(
        self: Arc<Self>,
        stream: TcpStream,
        _peer: SocketAddr,
        stop: watch::Receiver<bool>,
    ) {
        let session = session::Session::new(self.session.clone());
        let _ = stream.set_nodelay(true);
        connection::run(stream, session, &self.ctx, stop).await;
    }
}

/// Accepts connections on `listener` until `stop` turns true, then lets the sessions end (each
/// gets `-ERR` at its next command, and no message it marked is deleted) for at most
/// [`crate::config::DRAIN_TIMEOUT`], and drops what is left.
pub async fn serve(
    listener: TcpListener,
    service: Service,
    settings: Settings,
    stop: watch::Receiver<bool>,
) {
    let pop3 = Arc::new(Pop3 {
        ctx: connection::Context {
            service,
            idle_timeout: settings.idle_timeout,
            tls: settings.tls.as_ref().map(|t| t.acceptor.clone()),
            locks: connection::Locks::default(),
        },
        session: Arc::new(session::Settings {
            stls: settings.tls.is_some(),
        }),
    });
    listener::serve(listener, pop3, settings.max_connections, stop).await;
}
