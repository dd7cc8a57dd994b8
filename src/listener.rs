//! The accept loop every mail protocol shares (SMTP, POP3, IMAP): a connection limit with a
//! refusal message, one task per connection, a stop signal, and a drain of at most
//! [`DRAIN_TIMEOUT`] before what is left is dropped. A protocol says how it refuses and how it
//! serves through [`Protocol`]; the loop knows nothing of its wire format.
//!
//! [`start_tls`] is the shared half of a STARTTLS-style upgrade (SMTP STARTTLS, POP3 STLS,
//! IMAP STARTTLS): the handshake on a plain stream, with the SMTP listener's certificate.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, error, warn};

use crate::config::DRAIN_TIMEOUT;

/// How long the refusal to a connection over the limit may take to send.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);

/// A protocol served by [`serve`].
pub trait Protocol: Send + Sync + 'static {
    /// Its name in logs: `SMTP`, `POP3`, `IMAP`.
    fn name(&self) -> &'static str;

    /// Called for every connection accepted, those refused over the limit too (to count it).
    fn accepted(&self, peer: SocketAddr);

    /// The bytes sent to a connection over the limit before it is closed (SMTP's 421,
    /// POP3's `-ERR`, IMAP's `* BYE`).
    fn refusal(&self) -> Vec<u8>;

    /// Serves one connection to its end. It should end soon after `stop` turns true, saying
    /// goodbye in its own way; whatever still runs [`DRAIN_TIMEOUT`] after the stop is dropped.
    fn serve(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        stop: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static;
}

/// Accepts connections on `listener` until `stop` turns true, serving at most
/// `max_connections` at once (more get [`Protocol::refusal`] and are closed), then lets the
/// sessions end for at most [`DRAIN_TIMEOUT`] and drops what is left.
pub async fn serve<P: Protocol>(
    listener: TcpListener,
    protocol: Arc<P>,
    max_connections: usize,
    mut stop: watch::Receiver<bool>,
) {
    let name = protocol.name();
    let slots = Arc::new(Semaphore::new(max_connections));
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
                error!(error = %e, "{name}: cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        protocol.accepted(peer);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            warn!(peer = %peer, max = max_connections, "{name}: too many connections; refused");
            sessions.spawn(refuse(stream, protocol.refusal()));
            continue;
        };
        let session = protocol.clone().serve(stream, peer, stop.clone());
        sessions.spawn(async move {
            debug!(peer = %peer, "{name} connection");
            session.await;
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
            "{name} sessions did not finish in time; closing them"
        );
        sessions.shutdown().await;
    }
}

/// Tells a client over the connection limit to come back later, and closes.
async fn refuse(mut stream: TcpStream, refusal: Vec<u8>) {
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        stream.write_all(&refusal).await?;
        stream.shutdown().await
    })
    .await;
}

/// Why a STARTTLS-style handshake gave no TLS stream (for a debug log line).
#[derive(Debug, thiserror::Error)]
pub enum TlsFailed {
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    #[error("TLS handshake timed out")]
    Timeout,
}

/// The server side of a STARTTLS-style upgrade, once the protocol's "go ahead" is sent:
/// the handshake on `plain`, within `timeout`.
///
/// The caller passes the bare stream, not its read buffer: whatever the client sent after
/// the command and before the handshake came in plain text and must be dropped (RFC 3207 5,
/// RFC 2595 3.1, the command injection attack).
///
/// # Errors
/// [`TlsFailed`] when the handshake fails or takes longer than `timeout`.
pub async fn start_tls(
    plain: TcpStream,
    acceptor: &TlsAcceptor,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, TlsFailed> {
    match tokio::time::timeout(timeout, acceptor.accept(plain)).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(e)) => Err(TlsFailed::Handshake(e)),
        Err(_) => Err(TlsFailed::Timeout),
    }
}
