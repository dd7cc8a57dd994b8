//! One SMTP connection: reads lines, feeds them to the [`Session`], writes its replies, reads
//! DATA bodies and submits them to the service, and switches to TLS on STARTTLS. Replies are held back while the client has
//! more pipelined commands buffered (RFC 2920), and sent before every read that would wait.

use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use super::codec::{self, Body, Line};
use super::reply::Reply;
use super::session::{Action, Session};
use crate::service::Service;

/// What a connection needs besides its stream.
#[derive(Clone)]
pub struct Context {
    /// Where messages go and credentials are checked.
    pub service: Service,
    /// Silence after which the client gets 421 and is disconnected.
    pub idle_timeout: Duration,
    /// Largest message body accepted (`--max-message-size`).
    pub max_message_size: u64,
    /// Accepts STARTTLS handshakes; `None` when STARTTLS is not offered.
    pub tls: Option<TlsAcceptor>,
}

/// Why a read gave no line.
enum Stop {
    /// The client closed the connection or it failed: nothing more to send.
    Gone,
    /// The connection must close after this reply.
    Close(Reply),
}

/// A stream with its read buffer and the replies not yet sent.
struct Conn<S> {
    io: BufReader<S>,
    pending: Vec<u8>,
    idle: Duration,
    /// Where every reply is counted by its code.
    service: Service,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(stream: S, ctx: &Context) -> Self {
        Conn {
            io: BufReader::new(stream),
            pending: Vec::new(),
            idle: ctx.idle_timeout,
            service: ctx.service.clone(),
        }
    }

    fn reply(&mut self, r: &Reply) {
        self.service.stats().smtp_reply(r.code);
        self.pending.extend_from_slice(r.to_wire().as_bytes());
    }

    /// Sends the held-back replies.
    async fn flush(&mut self) -> Result<(), Stop> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.pending);
        let write = async {
            self.io.write_all(&out).await?;
            self.io.flush().await
        };
        match tokio::time::timeout(self.idle, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(Stop::Gone),
        }
    }

    /// Sends `last` and whatever is held back, then closes.
    async fn close(&mut self, last: &Reply) {
        self.reply(last);
        if self.flush().await.is_ok() {
            let _ = tokio::time::timeout(self.idle, self.io.shutdown()).await;
        }
    }

    /// The next line of at most `max` bytes. Sends held-back replies first when the client
    /// may be waiting for them; gives up after the idle timeout and, when `stop` is given,
    /// when the server shuts down (between commands only: a body being sent is read to its
    /// end).
    async fn line(
        &mut self,
        max: usize,
        stop: Option<&mut watch::Receiver<bool>>,
    ) -> Result<Line, Stop> {
        let buffered = codec::has_line(self.io.buffer());
        if !buffered {
            self.flush().await?;
        }
        let read = tokio::time::timeout(self.idle, codec::read_line(&mut self.io, max));
        let stopping = async {
            match stop {
                // Pipelined commands already received are still answered.
                Some(rx) if !buffered => {
                    let _ = rx.wait_for(|s| *s).await;
                }
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            // Once the server stops, no new command is started, even one that arrived.
            biased;
            () = stopping => Err(Stop::Close(Reply::shutting_down())),
            r = read => match r {
                Ok(Ok(Line::Eof)) | Ok(Err(_)) => Err(Stop::Gone),
                Ok(Ok(line)) => Ok(line),
                Err(_) => Err(Stop::Close(Reply::new(
                    421,
                    "4.4.2",
                    "idle for too long, closing the connection",
                ))),
            },
        }
    }
}

/// Runs `session` over `stream` until QUIT, the client leaving, the idle timeout or shutdown,
/// switching to TLS when the client asks with STARTTLS.
pub async fn run(
    stream: TcpStream,
    mut session: Session,
    ctx: &Context,
    mut stop: watch::Receiver<bool>,
) {
    let mut conn = Conn::new(stream, ctx);
    conn.reply(&session.greeting());
    if talk(&mut conn, &mut session, ctx, &mut stop).await != Next::StartTls {
        return;
    }
    let Some(acceptor) = &ctx.tls else { return };
    if conn.flush().await.is_err() {
        return;
    }
    // Whatever the client sent after STARTTLS, before the handshake, is dropped with the
    // read buffer: it came in plain text (RFC 3207 5, the command injection attack).
    let plain = conn.io.into_inner();
    let tls = match tokio::time::timeout(ctx.idle_timeout, acceptor.accept(plain)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return debug!(error = %e, "SMTP: TLS handshake failed"),
        Err(_) => return debug!("SMTP: TLS handshake timed out"),
    };
    session.tls_started();
    let mut conn = Conn::new(tls, ctx);
    // The session refuses a second STARTTLS, so this ends the connection.
    talk(&mut conn, &mut session, ctx, &mut stop).await;
}

/// How a stretch of the dialogue over one stream ended.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// The connection is closed.
    Closed,
    /// STARTTLS was accepted and its 220 is queued: hand the stream over to TLS.
    StartTls,
}

/// Reads commands and answers them until the connection ends or STARTTLS.
async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    session: &mut Session,
    ctx: &Context,
    stop: &mut watch::Receiver<bool>,
) -> Next {
    let stats = ctx.service.stats();
    let why = loop {
        let (line, transaction) = match conn.line(session.line_limit(), Some(&mut *stop)).await {
            Ok(Line::Complete(line)) => (session.command(&line), in_transaction(&line)),
            Ok(_) => (session.line_too_long(), false),
            Err(why) => break why,
        };
        match line {
            Action::Reply(r) => {
                if transaction && r.code >= 400 {
                    stats.smtp_rejected();
                }
                conn.reply(&r);
            }
            Action::Close(r) => break Stop::Close(r),
            Action::StartTls(r) => {
                conn.reply(&r);
                return Next::StartTls;
            }
            Action::Login(credentials) => {
                // Hashing runs on the service's CPU pool, never on this task's thread.
                let result = (ctx.service)
                    .verify_password(&credentials.username, credentials.password())
                    .await;
                conn.reply(&session.logged_in(result));
            }
            Action::Data(r) => {
                conn.reply(&r);
                let mut body = Body::new(ctx.max_message_size);
                loop {
                    match conn.line(body.next_line_limit(), None).await {
                        Ok(line) => {
                            if body.push(line) {
                                break;
                            }
                        }
                        Err(why) => {
                            finish(conn, why).await;
                            return Next::Closed;
                        }
                    }
                }
                let reply = match session.message(body.finish(), SystemTime::now()) {
                    Ok(submission) => session.delivered(&ctx.service.submit(submission).await),
                    Err(r) => r,
                };
                if reply.code < 400 {
                    stats.smtp_accepted();
                } else {
                    stats.smtp_rejected();
                }
                conn.reply(&reply);
            }
        }
    };
    finish(conn, why).await;
    Next::Closed
}

/// Whether `line` is a command of a mail transaction (MAIL, RCPT, DATA), whose refusal counts
/// as a refused message.
fn in_transaction(line: &[u8]) -> bool {
    let verb = line.get(..4).unwrap_or_default();
    [b"MAIL", b"RCPT", b"DATA"]
        .iter()
        .any(|v| verb.eq_ignore_ascii_case(*v))
}

async fn finish<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Conn<S>, why: Stop) {
    match why {
        Stop::Close(r) => {
            debug!(code = r.code, "SMTP connection closed by the server");
            conn.close(&r).await;
        }
        Stop::Gone => debug!("SMTP connection closed by the client"),
    }
}
