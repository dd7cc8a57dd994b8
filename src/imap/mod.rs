//! The IMAP front-end (IMAP4rev1, RFC 3501, with LITERAL+, UIDPLUS, MOVE, IDLE, UNSELECT,
//! ENABLE with UTF8=ACCEPT, ID and NAMESPACE): the shared accept loop ([`crate::listener`])
//! serves connections, each driving a [`session::Session`] over the service's mailboxes.
//!
//! - [`session`]: the protocol state machine over parsed commands, without I/O.
//! - [`fetch`]: FETCH data items and SEARCH keys over one message.
//! - [`limit`]: the bound on a command line's length, applied before imap-next buffers it.
//! - [`utf7`]: modified UTF-7 mailbox names, for clients without UTF-8 enabled.
//! - [`connection`]: one connection: imap-next's framing (literals, continuations, IDLE,
//!   AUTHENTICATE), STARTTLS, the idle timeout and the selected mailbox's events.

pub mod connection;
pub mod fetch;
pub mod limit;
pub mod session;
pub mod utf7;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::listener::{self, Protocol};
use crate::service::Service;

/// The listener's settings, from the validated config.
#[derive(Clone)]
pub struct Settings {
    /// Connections served at once; more get `* BYE` and are closed.
    pub max_connections: usize,
    /// A client silent this long (idling included) gets `* BYE` and is disconnected.
    pub idle_timeout: Duration,
    /// The acceptor for STARTTLS; `None`: STARTTLS is not offered.
    pub tls: Option<TlsAcceptor>,
    /// Largest literal (an APPEND's message included) a client may send.
    pub max_literal: u32,
}

/// IMAP as the shared accept loop serves it.
struct Imap {
    service: Service,
    settings: Settings,
}

impl Protocol for Imap {
    fn name(&self) -> &'static str {
        "IMAP"
    }

    fn accepted(&self, _peer: SocketAddr) {
        self.service.stats().imap().connection();
    }

    fn refusal(&self) -> Vec<u8> {
        b"* BYE too many connections; try again later\r\n".to_vec()
    }

    async fn serve(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        stop: watch::Receiver<bool>,
    ) {
        let _ = stream.set_nodelay(true);
        connection::run(stream, peer, &self.service, &self.settings, stop).await;
    }
}

/// Accepts connections on `listener` until `stop` turns true, then lets the sessions end
/// (each gets `* BYE`) for at most [`crate::config::DRAIN_TIMEOUT`].
pub async fn serve(
    listener: TcpListener,
    service: Service,
    settings: Settings,
    stop: watch::Receiver<bool>,
) {
    let max = settings.max_connections;
    let imap = Arc::new(Imap { service, settings });
    listener::serve(listener, imap, max, stop).await;
}
