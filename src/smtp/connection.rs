//! One SMTP connection: reads lines, feeds them to the [`Session`], writes its replies, reads
//! DATA bodies and submits them to the service, and switches to TLS on STARTTLS. Replies are held back while the client has
//! more pipelined commands buffered (RFC 2920), and sent before every read that would wait.
//! It also carries out the faults the session injects: it waits out a delay, hangs up on a
//! disconnect, and paces a throttled DATA body.

use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use super::codec::{self, Body, Line};
use super::reply::Reply;
use super::session::{Action, Session};
use crate::listener;
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
    /// An injected disconnect: close after the replies held back, with no reply of its own.
    HangUp,
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

    /// Sends whatever is held back and `last`, if any, then closes.
    async fn close(&mut self, last: Option<&Reply>) {
        if let Some(r) = last {
            self.reply(r);
        }
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
    let greeting = session.connected();
    if talk(&mut conn, &mut session, ctx, &mut stop, Some(greeting)).await != Next::StartTls {
        return;
    }
    let Some(acceptor) = &ctx.tls else { return };
    if conn.flush().await.is_err() {
        return;
    }
    // Whatever the client sent after STARTTLS, before the handshake, is dropped with the
    // read buffer: it came in plain text (RFC 3207 5, the command injection attack).
    let plain = conn.io.into_inner();
    let tls = match listener::start_tls(plain, acceptor, ctx.idle_timeout).await {
        Ok(tls) => tls,
        Err(e) => return debug!(error = %e, "SMTP: no TLS"),
    };
    session.tls_started();
    let mut conn = Conn::new(tls, ctx);
    // The session refuses a second STARTTLS, so this ends the connection.
    talk(&mut conn, &mut session, ctx, &mut stop, None).await;
}

/// How a stretch of the dialogue over one stream ended.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// The connection is closed.
    Closed,
    /// STARTTLS was accepted and its 220 is queued: hand the stream over to TLS.
    StartTls,
}

/// Reads commands and answers them until the connection ends or STARTTLS; `first` is an
/// action to carry out before reading (the answer to the connection itself).
async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    session: &mut Session,
    ctx: &Context,
    stop: &mut watch::Receiver<bool>,
    mut first: Option<Action>,
) -> Next {
    let stats = ctx.service.stats();
    let why = 'talk: loop {
        let (mut action, transaction) = match first.take() {
            Some(action) => (action, false),
            None => match conn.line(session.line_limit(), Some(&mut *stop)).await {
                Ok(Line::Complete(line)) => (session.command(&line), in_transaction(&line)),
                Ok(_) => (session.line_too_long(), false),
                Err(why) => break why,
            },
        };
        while let Action::Delay(delay, then) = action {
            // Only this answer is late: those to earlier pipelined commands go out first.
            if let Err(why) = conn.flush().await {
                break 'talk why;
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop.wait_for(|s| *s) => break 'talk Stop::Close(Reply::shutting_down()),
            }
            action = *then;
        }
        match action {
            Action::Reply(r) => {
                if transaction && r.code >= 400 {
                    stats.smtp_rejected();
                }
                conn.reply(&r);
            }
            Action::Close(r) => {
                if transaction && r.code >= 400 {
                    stats.smtp_rejected();
                }
                break Stop::Close(r);
            }
            Action::Disconnect => break Stop::HangUp,
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
            Action::Data(r, throttle) => {
                conn.reply(&r);
                let body = match read_body(conn, ctx.max_message_size, throttle).await {
                    Ok(body) => body,
                    Err(why) => break why,
                };
                let reply = match session.message(body, SystemTime::now()) {
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
            // Waited out above.
            Action::Delay(..) => {}
        }
    };
    finish(conn, why).await;
    Next::Closed
}

/// Reads a DATA body to its final dot, as [`Body::finish`] gives it (`None`: too big). With a
/// `throttle`, at most that many bytes per second from the 354 on: the reader sleeps after
/// each line until the bytes so far are due, and reads no more from the socket meanwhile, so
/// the client's writes back up as over a slow link.
async fn read_body<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    max_message_size: u64,
    throttle: Option<u64>,
) -> Result<Option<Vec<u8>>, Stop> {
    let mut body = Body::new(max_message_size);
    let started = Instant::now();
    let mut bytes: u64 = 0;
    loop {
        let limit = body.next_line_limit();
        let line = conn.line(limit, None).await?;
        if let Some(rate) = throttle {
            // A line as sent: its text and CRLF; a dropped over-long one, at least the limit.
            bytes += match &line {
                Line::Complete(l) => l.len() as u64 + 2,
                Line::TooLong => limit as u64,
                Line::Eof => 0,
            };
            let due = Duration::from_secs_f64(bytes as f64 / rate.max(1) as f64);
            tokio::time::sleep_until(started + due).await;
        }
        if body.push(line) {
            return Ok(body.finish());
        }
    }
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
            conn.close(Some(&r)).await;
        }
        Stop::HangUp => {
            debug!("SMTP connection dropped by an injected fault");
            conn.close(None).await;
        }
        Stop::Gone => debug!("SMTP connection closed by the client"),
    }
}
