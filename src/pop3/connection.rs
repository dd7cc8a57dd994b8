//! One POP3 connection: reads command lines, feeds them to the [`Session`], writes its
//! responses, carries out what it asks of the service (the login, sending a message,
//! the deletions at QUIT) and switches to TLS on STLS. Responses are held back while the
//! client has more pipelined commands buffered (RFC 2449 6.6), and sent before every read that
//! would wait.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info};

use super::reply::{self, Reply};
use super::session::{Action, MAILBOX, Session};
use crate::error::Error;
use crate::lines::{Line, LineConn, NoLine};
use crate::listener;
use crate::service::mail::{CopySize, MessagePatch};
use crate::service::{Service, User};
use crate::smtp::auth::Credentials;

/// What a connection needs besides its stream.
#[derive(Clone)]
pub struct Context {
    /// Where credentials are checked and mail is read and deleted.
    pub service: Service,
    /// Silence after which the client gets `-ERR` and is disconnected.
    pub idle_timeout: Duration,
    /// Accepts STLS handshakes; `None` when STLS is not offered.
    pub tls: Option<TlsAcceptor>,
    /// The maildrops open in a session.
    pub locks: Locks,
}

/// The users whose maildrop a session holds: RFC 1939 4 gives one session at a time the
/// maildrop, so that two clients cannot delete by message numbers that differ.
#[derive(Debug, Clone, Default)]
pub struct Locks(Arc<Mutex<HashSet<u64>>>);

/// A user's maildrop held by a session; let go when dropped.
#[derive(Debug)]
pub struct Lock {
    locks: Locks,
    user: u64,
}

impl Locks {
    /// Takes `user`'s maildrop, unless another session holds it.
    pub fn take(&self, user: u64) -> Option<Lock> {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        held.insert(user).then(|| Lock {
            locks: self.clone(),
            user,
        })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let mut held = self.locks.0.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(&self.user);
    }
}

/// Why the dialogue ended.
enum Stop {
    /// The client closed the connection or it failed: nothing more to send.
    Gone,
    /// The connection must close after this response.
    Close(Reply),
}

/// What the connection says when it gets no line.
fn stopped(why: NoLine) -> Stop {
    match why {
        NoLine::Gone => Stop::Gone,
        NoLine::Idle => Stop::Close(Reply::idle()),
        NoLine::Stopping => Stop::Close(Reply::shutting_down()),
    }
}

/// Queues a response.
fn respond<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut LineConn<S>, r: &Reply) {
    conn.queue(&r.to_wire());
}

/// Runs `session` over `stream` until QUIT, the client leaving, the idle timeout or shutdown,
/// switching to TLS when the client asks with STLS.
pub async fn run(
    stream: TcpStream,
    mut session: Session,
    ctx: &Context,
    mut stop: watch::Receiver<bool>,
) {
    // Lives as long as the connection: a session that ends any way lets the maildrop go.
    let mut lock = None;
    let mut conn = LineConn::new(stream, ctx.idle_timeout);
    respond(&mut conn, &session.greeting());
    if talk(&mut conn, &mut session, ctx, &mut stop, &mut lock).await != Next::StartTls {
        return;
    }
    let Some(acceptor) = &ctx.tls else { return };
    if conn.flush().await.is_err() {
        return;
    }
    // Whatever the client sent after STLS, before the handshake, is dropped with the read
    // buffer: it came in plain text.
    let plain = conn.io.into_inner();
    let tls = match listener::start_tls(plain, acceptor, ctx.idle_timeout).await {
        Ok(tls) => tls,
        Err(e) => return debug!(error = %e, "POP3: no TLS"),
    };
    session.tls_started();
    let mut conn = LineConn::new(tls, ctx.idle_timeout);
    // The session refuses a second STLS, so this ends the connection.
    talk(&mut conn, &mut session, ctx, &mut stop, &mut lock).await;
}

/// How a stretch of the dialogue over one stream ended.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// The connection is closed.
    Closed,
    /// STLS was accepted and its `+OK` is queued: hand the stream over to TLS.
    StartTls,
}

/// Reads commands and answers them until the connection ends or STLS.
async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut LineConn<S>,
    session: &mut Session,
    ctx: &Context,
    stop: &mut watch::Receiver<bool>,
    lock: &mut Option<Lock>,
) -> Next {
    let stats = ctx.service.stats();
    let why = loop {
        let action = match conn.line(session.line_limit(), Some(&mut *stop)).await {
            Ok(Line::Complete(line)) => {
                if let Some(verb) = session.verb(&line) {
                    stats.pop3().command(verb);
                }
                session.command(&line)
            }
            Ok(_) => session.line_too_long(),
            Err(why) => break stopped(why),
        };
        match action {
            Action::Reply(r) => respond(conn, &r),
            Action::Close(r) => break Stop::Close(r),
            Action::StartTls(r) => {
                respond(conn, &r);
                return Next::StartTls;
            }
            Action::Login(credentials) => {
                let result = login(ctx, &credentials, lock).await;
                respond(conn, &session.logged_in(result));
            }
            Action::Send {
                reply: first,
                user,
                id,
                top,
            } => match ctx.service.raw(&user, id).await {
                Ok(raw) => {
                    respond(conn, &first);
                    conn.queue(&reply::message_body(&raw, top));
                    if top.is_none() {
                        mark_read(&ctx.service, &user, id).await;
                    }
                }
                Err(e) => respond(conn, &reply::for_error(&e)),
            },
            Action::Update { user, ids } => {
                let result = delete(&ctx.service, &user, &ids).await;
                break Stop::Close(session.updated(result));
            }
        }
    };
    // The session is over: let the maildrop go before the last response, so that a client
    // that logs in again as soon as it has read it is not refused.
    *lock = None;
    match why {
        Stop::Close(r) => {
            debug!(ok = r.is_ok(), "POP3 connection closed by the server");
            respond(conn, &r);
            conn.close().await;
        }
        Stop::Gone => debug!("POP3 connection closed by the client"),
    }
    Next::Closed
}

/// Checks the credentials (counting a failure against the address's failed-login limit, as
/// the REST login does), takes the maildrop and reads the `inbox` as it is now.
async fn login(
    ctx: &Context,
    credentials: &Credentials,
    lock: &mut Option<Lock>,
) -> Result<(User, Vec<CopySize>), Reply> {
    let user = (ctx.service)
        .verify_password(&credentials.username, credentials.password())
        .await
        .map_err(|e| reply::for_error(&e))?;
    let Some(held) = ctx.locks.take(user.id) else {
        return Err(Reply::err(
            "[IN-USE] the maildrop is open in another POP3 session",
        ));
    };
    let messages = (ctx.service)
        .mailbox_sizes(&user, MAILBOX)
        .await
        .map_err(|e| reply::for_error(&e))?;
    info!(user = user.id, messages = messages.len(), "POP3 login");
    *lock = Some(held);
    Ok((user, messages))
}

/// Marks a copy sent whole as read, as the web UI does on opening it. A copy deleted
/// meanwhile is no error.
async fn mark_read(service: &Service, user: &User, id: u64) {
    let patch = MessagePatch {
        read: Some(true),
        ..Default::default()
    };
    if let Err(e) = service.update_message(user, id, patch).await
        && !matches!(e, Error::NotFound(_))
    {
        debug!(error = %e, entry = id, "POP3: cannot mark a message read");
    }
}

/// Deletes the copies marked with DELE, for good; those already gone count as deleted.
async fn delete(service: &Service, user: &User, ids: &[u64]) -> Result<usize, Reply> {
    for &id in ids {
        match service.delete_message(user, id, true).await {
            Ok(()) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(reply::for_error(&e)),
        }
    }
    if !ids.is_empty() {
        info!(
            user = user.id,
            deleted = ids.len(),
            "POP3: messages deleted"
        );
    }
    Ok(ids.len())
}
