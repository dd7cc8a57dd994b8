//! One IMAP connection: imap-next frames the wire (commands with their literals, continuation
//! requests, AUTHENTICATE and IDLE), the [`Session`] answers, and this loop moves bytes, keeps
//! the idle timeout, upgrades to TLS on STARTTLS, passes on the events of the selected
//! mailbox (EXISTS, FETCH and EXPUNGE while idling, at the next command otherwise) and says `* BYE`
//! when the server stops.

use std::net::SocketAddr;
use std::time::Duration;

use imap_next::Interrupt;
use imap_next::State;
use imap_next::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_next::imap_types::command::CommandBody;
use imap_next::imap_types::core::Tag;
use imap_next::imap_types::response::Greeting;
use imap_next::imap_types::response::{CommandContinuationRequest, Response, Status};
use imap_next::server::{Error as ServerError, Event, Options, ResponseHandle, Server};
use imap_next::stream::{Error as StreamError, Stream};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::debug;

use super::Settings;
use super::limit::{LineLimit, MAX_LINE};
use super::session::{After, Session};
use crate::listener::start_tls;
use crate::service::Service;
use crate::service::imap::{FolderChange, FolderRef, FolderWatch};

/// How long a goodbye (`* BYE`) may take to send.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a STARTTLS handshake may take.
const TLS_TIMEOUT: Duration = Duration::from_secs(30);

fn options(settings: &Settings) -> Options {
    let mut o = Options::default();
    o.max_literal_size = settings.max_literal;
    // A command may carry its literal plus the rest of its line; the line alone is bounded
    // by the LineLimit in front.
    o.max_command_size = settings
        .max_literal
        .saturating_add(u32::try_from(MAX_LINE).unwrap_or(u32::MAX));
    o
}

/// imap-next's server, fed through the [`LineLimit`].
struct Limited {
    server: Server,
    limit: LineLimit,
    /// What the limit passed of the latest input.
    passed: Vec<u8>,
}

impl Limited {
    fn new(settings: &Settings, greeting: Greeting<'static>) -> Limited {
        Limited {
            server: Server::new(options(settings), greeting),
            limit: LineLimit::new(MAX_LINE, settings.max_literal),
            passed: Vec::new(),
        }
    }
}

impl State for Limited {
    type Event = Event;
    type Error = ServerError;

    fn enqueue_input(&mut self, bytes: &[u8]) {
        self.passed.clear();
        self.limit.filter(bytes, &mut self.passed);
        self.server.enqueue_input(&self.passed);
        // Do not keep a large read's worth of memory for the connection's life.
        if self.passed.capacity() > MAX_LINE {
            self.passed = Vec::new();
        }
    }

    fn next(&mut self) -> Result<Event, Interrupt<ServerError>> {
        self.server.next()
    }
}

/// The `BAD` for input imap-next could not take, tagged when the input starts with a tag, so
/// that a client waiting for its command's answer gets one; `None` where imap-next has
/// answered itself (a literal over the limit).
fn refusal(e: &ServerError, cut: bool) -> Option<Status<'static>> {
    let bytes = match e {
        ServerError::LiteralTooLong { .. } => return None,
        ServerError::MalformedMessage { discarded_bytes }
        | ServerError::ExpectedCrlfGotLf { discarded_bytes }
        | ServerError::CommandTooLong { discarded_bytes } => discarded_bytes.declassify(),
    };
    let tag = bytes
        .split(|&b| b == b' ')
        .next()
        .and_then(|t| Tag::try_from(t.to_vec()).ok());
    let text = if cut {
        "command line too long (the limit is 64 KiB; send long data as a literal)"
    } else {
        "malformed command"
    };
    Status::bad(tag, None, text).ok()
}

/// Sends what is queued up to and including `last`, within [`GOODBYE_TIMEOUT`].
async fn send_until(stream: &mut Stream, server: &mut Limited, last: ResponseHandle) -> bool {
    let sent = tokio::time::timeout(GOODBYE_TIMEOUT, async {
        loop {
            match stream.next(&mut *server).await {
                Ok(Event::ResponseSent { handle, .. }) if handle == last => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await;
    sent.unwrap_or(false)
}

async fn bye(stream: &mut Stream, server: &mut Limited, text: &'static str) {
    if let Ok(status) = Status::bye(None, text) {
        let handle = server.server.enqueue_status(status);
        send_until(stream, server, handle).await;
    }
}

fn enqueue(server: &mut Limited, responses: Vec<Response<'static>>) -> Option<ResponseHandle> {
    let mut last = None;
    for r in responses {
        last = Some(match r {
            Response::Data(d) => server.server.enqueue_data(d),
            Response::Status(s) => server.server.enqueue_status(s),
            Response::CommandContinuationRequest(c) => {
                server.server.enqueue_continuation_request(c)
            }
        });
    }
    last
}

/// The next change to the watched mailbox; never, when none is selected.
async fn next_change(watch: &mut Option<(FolderRef, FolderWatch)>) -> Option<FolderChange> {
    match watch {
        Some((_, w)) => w.next().await,
        None => std::future::pending().await,
    }
}

/// Serves one connection to its end.
pub async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    service: &Service,
    settings: &Settings,
    mut stop: watch::Receiver<bool>,
) {
    let mut session = Session::new(service.clone(), settings.tls.is_some());
    let mut server = Limited::new(settings, session.greeting());
    let mut stream = Stream::insecure(stream);
    let mut watch: Option<(FolderRef, FolderWatch)> = None;
    let mut idling: Option<Tag<'static>> = None;
    let mut authenticating: Option<Tag<'static>> = None;
    loop {
        let selected = session.selected();
        if watch.as_ref().map(|w| w.0) != selected {
            watch = selected.map(|f| (f, service.watch_folder(f)));
        }
        enum Woke<E> {
            Input(E),
            Change(Option<FolderChange>),
            Stop,
        }
        let woke = tokio::select! {
            event = tokio::time::timeout(settings.idle_timeout, stream.next(&mut server)) => Woke::Input(event),
            change = next_change(&mut watch) => Woke::Change(change),
            _ = stop.wait_for(|s| *s) => Woke::Stop,
        };
        let event = match woke {
            Woke::Input(event) => event,
            Woke::Change(change) => {
                match change {
                    Some(FolderChange::Gone { entry }) => session.note_gone(entry),
                    Some(FolderChange::Flagged { entry }) => session.note_flagged(entry),
                    Some(FolderChange::Lagged) => session.note_lagged(),
                    Some(FolderChange::Arrived) => {}
                    None => watch = None,
                }
                if idling.is_some() {
                    let updates = session.updates(true).await;
                    enqueue(&mut server, updates);
                }
                continue;
            }
            Woke::Stop => {
                bye(&mut stream, &mut server, "server shutting down").await;
                return;
            }
        };
        let command = match &event {
            Ok(Ok(Event::CommandReceived { command })) => Some(command.name()),
            Ok(Ok(Event::CommandAuthenticateReceived { .. })) => Some("AUTHENTICATE"),
            Ok(Ok(Event::IdleCommandReceived { .. })) => Some("IDLE"),
            Ok(Err(StreamError::State(_))) => Some("unknown"),
            _ => None,
        };
        if let Some(name) = command {
            service.stats().imap().command(name);
        }
        let event = match event {
            Err(_) => {
                bye(&mut stream, &mut server, "autologout; idle for too long").await;
                return;
            }
            Ok(Err(StreamError::State(e))) => {
                debug!(peer = %peer, error = %e, "IMAP: malformed input");
                // imap-next has answered a literal too long itself; anything else gets BAD.
                if let Some(s) = refusal(&e, server.limit.take_cut()) {
                    server.server.enqueue_status(s);
                }
                continue;
            }
            Ok(Err(e)) => {
                debug!(peer = %peer, error = %e, "IMAP connection ended");
                return;
            }
            Ok(Ok(event)) => event,
        };
        match event {
            Event::CommandReceived { command } => {
                // SELECT and EXAMINE listen before they open the mailbox, so that nothing
                // happening to it while it opens goes unheard.
                let opens = matches!(
                    command.body,
                    CommandBody::Select { .. } | CommandBody::Examine { .. }
                );
                let early = opens.then(|| service.watch_folder(FolderRef::ALL_MAIL));
                let answer = session.command(command).await;
                if let (Some(early), Some(f)) = (early, session.selected()) {
                    watch = Some((f, early.retarget(f)));
                }
                let mut responses = answer.responses;
                if answer.after == After::Continue {
                    // New mail and (outside FETCH, STORE and SEARCH) expunges come before the
                    // tagged reply.
                    let tagged = responses.pop();
                    responses.extend(session.updates(false).await);
                    responses.extend(tagged);
                }
                let last = enqueue(&mut server, responses);
                match answer.after {
                    After::Continue => {}
                    After::Close => {
                        if let Some(last) = last {
                            send_until(&mut stream, &mut server, last).await;
                        }
                        return;
                    }
                    After::StartTls => {
                        let Some(acceptor) = settings.tls.as_ref() else {
                            return;
                        };
                        if let Some(last) = last
                            && !send_until(&mut stream, &mut server, last).await
                        {
                            return;
                        }
                        // Whatever the client sent before the handshake is dropped with the
                        // plain stream's buffer (RFC 2595 3.1).
                        let plain = TcpStream::from(stream);
                        match start_tls(plain, acceptor, TLS_TIMEOUT).await {
                            Ok(tls) => {
                                stream = Stream::tls(tokio_rustls::TlsStream::Server(tls));
                                session.tls_started();
                                // imap-next always opens with a greeting; after STARTTLS it
                                // is an untagged OK with the new capabilities, which clients
                                // take as any untagged OK.
                                server = Limited::new(settings, session.greeting());
                            }
                            Err(e) => {
                                debug!(peer = %peer, error = %e, "IMAP STARTTLS failed");
                                return;
                            }
                        }
                    }
                }
            }
            Event::CommandAuthenticateReceived {
                command_authenticate,
            } => {
                let tag = command_authenticate.tag;
                if command_authenticate.mechanism != AuthMechanism::Plain {
                    if let Ok(s) = Status::no(Some(tag), None, "only AUTHENTICATE PLAIN") {
                        let _ = server.server.authenticate_finish(s);
                    }
                    continue;
                }
                match command_authenticate.initial_response {
                    Some(r) => {
                        let reply = session.authenticate_plain(tag, r.declassify()).await;
                        if let Response::Status(s) = reply {
                            let _ = server.server.authenticate_finish(s);
                        }
                    }
                    None => {
                        authenticating = Some(tag);
                        let c = CommandContinuationRequest::base64(Vec::new());
                        let _ = server.server.authenticate_continue(c);
                    }
                }
            }
            Event::AuthenticateDataReceived { authenticate_data } => {
                let Some(tag) = authenticating.take() else {
                    continue;
                };
                let reply = match authenticate_data {
                    AuthenticateData::Continue(data) => {
                        session.authenticate_plain(tag, data.declassify()).await
                    }
                    AuthenticateData::Cancel => match Status::bad(Some(tag), None, "cancelled") {
                        Ok(s) => Response::Status(s),
                        Err(_) => continue,
                    },
                };
                if let Response::Status(s) = reply {
                    let _ = server.server.authenticate_finish(s);
                }
            }
            Event::IdleCommandReceived { tag } => {
                if session.selected().is_none() {
                    if let Ok(s) = Status::bad(Some(tag), None, "select a mailbox first") {
                        let _ = server.server.idle_reject(s);
                    }
                    continue;
                }
                if let Ok(c) = CommandContinuationRequest::basic(None, "idling") {
                    let _ = server.server.idle_accept(c);
                }
                idling = Some(tag);
                let updates = session.updates(true).await;
                enqueue(&mut server, updates);
            }
            Event::IdleDoneReceived => {
                if let Some(tag) = idling.take()
                    && let Ok(s) = Status::ok(Some(tag), None, "IDLE done")
                {
                    server.server.enqueue_status(s);
                }
            }
            Event::GreetingSent { .. } | Event::ResponseSent { .. } => {}
        }
    }
}
