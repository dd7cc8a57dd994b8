//! The POP3 protocol state machine (RFC 1939, with CAPA and PIPELINING from RFC 2449, STLS
//! from RFC 2595 and AUTH PLAIN from RFC 5034): it takes command lines and answers what to
//! reply and what the connection does next. It does no I/O, so every dialogue can be tested
//! without a socket; [`super::connection`] drives it over a real one.
//!
//! The maildrop is the user's `inbox` as it was at login: message numbers, sizes and unique
//! ids do not change during the session, whatever arrives meanwhile. `DELE` only marks; the
//! marked messages are deleted for good at `QUIT` (the UPDATE state), never when the
//! connection drops.

use std::sync::Arc;

use super::reply::Reply;
use crate::service::User;
use crate::service::mail::CopySize;
use crate::smtp::auth::{self, Credentials};

/// Longest command line, CRLF included (RFC 2449 4).
pub const MAX_LINE: usize = 255;
/// Longest line while logging in: an AUTH command with its initial response, or the response
/// to a challenge (RFC 5034 4 lifts the 255-octet limit for them).
pub const MAX_AUTH_LINE: usize = 12_288;

/// The mailbox a POP3 session opens.
pub const MAILBOX: &str = "inbox";

/// Every command the session knows, as counted in the metrics.
pub const COMMANDS: [&str; 15] = [
    "CAPA", "STLS", "USER", "PASS", "AUTH", "STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET",
    "NOOP", "QUIT", "APOP",
];

/// What the session needs to know of the server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Whether STLS is offered.
    pub stls: bool,
}

/// What the connection does after a command.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send the reply and read the next command.
    Reply(Reply),
    /// Send the reply and close the connection.
    Close(Reply),
    /// Send the reply (`+OK`), drop any input already buffered (RFC 2595 4: it came in plain
    /// text), do the TLS handshake, then call [`Session::tls_started`].
    StartTls(Reply),
    /// Check these credentials and open the user's maildrop (no reply yet); then call
    /// [`Session::logged_in`].
    Login(Credentials),
    /// Read the source of `user`'s copy `id` and send it after `reply`, whole or, with `top`,
    /// its header and that many body lines. A whole one (RETR) is marked read.
    Send {
        reply: Reply,
        user: User,
        id: u64,
        top: Option<usize>,
    },
    /// QUIT in the TRANSACTION state: delete `user`'s copies `ids` for good, then call
    /// [`Session::updated`] and close with its reply.
    Update { user: User, ids: Vec<u64> },
}

/// A logged-in session's maildrop.
#[derive(Debug, Clone)]
struct Maildrop {
    user: User,
    messages: Vec<CopySize>,
    deleted: Vec<bool>,
}

impl Maildrop {
    /// The message numbered `arg` (from 1), if it exists and is not marked deleted.
    fn get(&self, arg: &str) -> Result<(usize, CopySize), Reply> {
        let n: usize = arg
            .parse()
            .map_err(|_| Reply::err(format!("`{}` is not a message number", shown(arg))))?;
        let i = n.checked_sub(1).filter(|&i| i < self.messages.len());
        match i {
            None => Err(Reply::err(format!("no message {n}"))),
            Some(i) if self.deleted[i] => Err(Reply::err(format!("message {n} is deleted"))),
            Some(i) => Ok((n, self.messages[i])),
        }
    }

    /// The messages not marked deleted, with their numbers.
    fn live(&self) -> impl Iterator<Item = (usize, &CopySize)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted[*i])
            .map(|(i, m)| (i + 1, m))
    }

    fn stat(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(n, octets), (_, m)| (n + 1, octets + m.size))
    }
}

/// Where the session is.
#[derive(Debug, Clone)]
enum State {
    /// Not logged in; `user` is the name of a USER command waiting for its PASS.
    Authorization { user: Option<String> },
    /// After `AUTH PLAIN` without an initial response: the next line is the response.
    AuthPlain,
    /// Logged in.
    Transaction(Box<Maildrop>),
}

/// One POP3 session, from the greeting to QUIT.
#[derive(Debug)]
pub struct Session {
    settings: Arc<Settings>,
    /// Whether the connection is encrypted (after STLS).
    tls: bool,
    state: State,
}

/// The unique id of a copy (RFC 1939 7, UIDL): its id in the store, as the REST API names it,
/// so it stays the same across sessions and restarts.
pub fn unique_id(copy: &CopySize) -> String {
    copy.id.to_string()
}

impl Session {
    /// A new session.
    pub fn new(settings: Arc<Settings>) -> Session {
        Session {
            settings,
            tls: false,
            state: State::Authorization { user: None },
        }
    }

    /// The greeting.
    pub fn greeting(&self) -> Reply {
        Reply::ok("fakemail POP3 server ready")
    }

    /// The longest line to read next, line end included.
    pub fn line_limit(&self) -> usize {
        match self.state {
            State::Transaction(_) => MAX_LINE,
            _ => MAX_AUTH_LINE,
        }
    }

    /// The name a command line is counted under in the metrics: one of [`COMMANDS`], or
    /// `unknown`; `None` for the response to an AUTH challenge, which is no command.
    pub fn verb(&self, line: &[u8]) -> Option<&'static str> {
        if matches!(self.state, State::AuthPlain) {
            return None;
        }
        let word = line.split(|&b| b == b' ').next().unwrap_or_default();
        Some(
            COMMANDS
                .into_iter()
                .find(|c| c.as_bytes().eq_ignore_ascii_case(word))
                .unwrap_or("unknown"),
        )
    }

    /// The answer to a line over the limit.
    pub fn line_too_long(&mut self) -> Action {
        if matches!(self.state, State::AuthPlain) {
            self.state = State::Authorization { user: None };
        }
        Action::Reply(Reply::line_too_long())
    }

    /// The answer to a command line (without its line end).
    pub fn command(&mut self, line: &[u8]) -> Action {
        let Ok(line) = std::str::from_utf8(line) else {
            if matches!(self.state, State::AuthPlain) {
                self.state = State::Authorization { user: None };
            }
            return Action::Reply(Reply::err("commands must be ASCII or UTF-8"));
        };
        if matches!(self.state, State::AuthPlain) {
            self.state = State::Authorization { user: None };
            return plain(line);
        }
        let (verb, args) = match line.split_once(' ') {
            Some((v, a)) => (v, a),
            None => (line, ""),
        };
        let verb = verb.to_ascii_uppercase();
        match (&self.state, verb.as_str()) {
            (_, "CAPA") => Action::Reply(self.capa()),
            (_, "QUIT") => self.quit(),
            (State::Authorization { .. }, "NOOP") | (State::Transaction(_), "NOOP") => {
                Action::Reply(Reply::ok(""))
            }
            (State::Authorization { .. }, _) => self.authorization(&verb, args),
            (State::Transaction(_), _) => self.transaction(&verb, args),
            // Handled above.
            (State::AuthPlain, _) => Action::Reply(Reply::err("unexpected")),
        }
    }

    fn capa(&self) -> Reply {
        let mut caps: Vec<String> = ["TOP", "UIDL", "USER", "PIPELINING", "RESP-CODES"]
            .into_iter()
            .map(String::from)
            .collect();
        caps.push("AUTH-RESP-CODE".into());
        if !matches!(self.state, State::Transaction(_)) {
            caps.push("SASL PLAIN".into());
            if self.settings.stls && !self.tls {
                caps.push("STLS".into());
            }
        }
        caps.push("EXPIRE NEVER".into());
        caps.push(format!(
            "IMPLEMENTATION fakemail-{}",
            env!("CARGO_PKG_VERSION")
        ));
        Reply::multi("capability list follows", caps)
    }

    fn quit(&mut self) -> Action {
        match &self.state {
            State::Transaction(drop) => {
                let ids = drop
                    .messages
                    .iter()
                    .zip(&drop.deleted)
                    .filter(|(_, d)| **d)
                    .map(|(m, _)| m.id)
                    .collect();
                Action::Update {
                    user: drop.user.clone(),
                    ids,
                }
            }
            _ => Action::Close(Reply::ok("fakemail POP3 server signing off")),
        }
    }

    fn authorization(&mut self, verb: &str, args: &str) -> Action {
        let State::Authorization { user } = &mut self.state else {
            return Action::Reply(Reply::err("unexpected"));
        };
        match verb {
            "USER" => {
                let name = args.trim();
                if name.is_empty() {
                    return Action::Reply(Reply::err("USER needs a user name"));
                }
                *user = Some(name.to_owned());
                Action::Reply(Reply::ok("send the password with PASS"))
            }
            // RFC 1939 7: the whole rest of the line, spaces too, is the password.
            "PASS" => match user.take() {
                Some(name) => Action::Login(auth::login(name, args.to_owned())),
                None => Action::Reply(Reply::err("send USER first")),
            },
            "AUTH" => {
                *user = None;
                self.auth(args)
            }
            "STLS" => {
                if !self.settings.stls {
                    Action::Reply(Reply::err("STLS is not offered"))
                } else if self.tls {
                    Action::Reply(Reply::err("TLS is already on"))
                } else {
                    *user = None;
                    Action::StartTls(Reply::ok("begin TLS negotiation"))
                }
            }
            "APOP" => Action::Reply(Reply::err("APOP is not supported; use USER and PASS")),
            "STAT" | "LIST" | "UIDL" | "RETR" | "TOP" | "DELE" | "RSET" => {
                Action::Reply(Reply::log_in_first())
            }
            _ => Action::Reply(unknown(verb)),
        }
    }

    /// AUTH: without an argument, the mechanisms (as clients such as Outlook ask); PLAIN with
    /// or without an initial response.
    fn auth(&mut self, args: &str) -> Action {
        let mut words = args.split_whitespace();
        let Some(mechanism) = words.next() else {
            return Action::Reply(Reply::multi("SASL mechanisms follow", vec!["PLAIN".into()]));
        };
        if !mechanism.eq_ignore_ascii_case("PLAIN") {
            return Action::Reply(Reply::err(format!(
                "the SASL mechanism {} is not supported; use PLAIN",
                shown(mechanism)
            )));
        }
        match (words.next(), words.next()) {
            (None, _) => {
                self.state = State::AuthPlain;
                Action::Reply(Reply::challenge())
            }
            (Some(response), None) => plain(response),
            (Some(_), Some(_)) => Action::Reply(Reply::err("AUTH PLAIN takes one response")),
        }
    }

    fn transaction(&mut self, verb: &str, args: &str) -> Action {
        let State::Transaction(drop) = &mut self.state else {
            return Action::Reply(Reply::err("unexpected"));
        };
        let args: Vec<&str> = args.split_whitespace().collect();
        let reply = match (verb, args.as_slice()) {
            ("STAT", []) => {
                let (n, octets) = drop.stat();
                Reply::ok(format!("{n} {octets}"))
            }
            ("LIST", []) => {
                let (n, octets) = drop.stat();
                let lines = drop
                    .live()
                    .map(|(i, m)| format!("{i} {}", m.size))
                    .collect();
                Reply::multi(format!("{n} messages ({octets} octets)"), lines)
            }
            ("LIST", [arg]) => match drop.get(arg) {
                Ok((n, m)) => Reply::ok(format!("{n} {}", m.size)),
                Err(r) => r,
            },
            ("UIDL", []) => {
                let lines = drop
                    .live()
                    .map(|(i, m)| format!("{i} {}", unique_id(m)))
                    .collect();
                Reply::multi("unique ids follow", lines)
            }
            ("UIDL", [arg]) => match drop.get(arg) {
                Ok((n, m)) => Reply::ok(format!("{n} {}", unique_id(&m))),
                Err(r) => r,
            },
            ("RETR", [arg]) => match drop.get(arg) {
                Ok((_, m)) => {
                    return Action::Send {
                        reply: Reply::ok(format!("{} octets", m.size)),
                        user: drop.user.clone(),
                        id: m.id,
                        top: None,
                    };
                }
                Err(r) => r,
            },
            ("TOP", [arg, lines]) => match (drop.get(arg), lines.parse::<usize>()) {
                (Ok((_, m)), Ok(lines)) => {
                    return Action::Send {
                        reply: Reply::ok("top of message follows"),
                        user: drop.user.clone(),
                        id: m.id,
                        top: Some(lines),
                    };
                }
                (Err(r), _) => r,
                (_, Err(_)) => Reply::err(format!("`{}` is not a number of lines", shown(lines))),
            },
            ("DELE", [arg]) => match drop.get(arg) {
                Ok((n, _)) => {
                    drop.deleted[n - 1] = true;
                    Reply::ok(format!("message {n} deleted"))
                }
                Err(r) => r,
            },
            ("RSET", []) => {
                drop.deleted.iter_mut().for_each(|d| *d = false);
                let (n, octets) = drop.stat();
                Reply::ok(format!("maildrop has {n} messages ({octets} octets)"))
            }
            ("USER" | "PASS" | "AUTH" | "STLS" | "APOP", _) => Reply::err("already logged in"),
            ("STAT" | "LIST" | "UIDL" | "RETR" | "TOP" | "DELE" | "RSET", _) => {
                Reply::err(format!("wrong arguments for {verb}"))
            }
            _ => unknown(verb),
        };
        Action::Reply(reply)
    }

    /// Called after [`Action::StartTls`]'s handshake: the session starts over in the
    /// AUTHORIZATION state, and STLS is no longer offered.
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.state = State::Authorization { user: None };
    }

    /// Called after [`Action::Login`] with the user and their `inbox` as it is now, or the
    /// refusal.
    pub fn logged_in(&mut self, result: Result<(User, Vec<CopySize>), Reply>) -> Reply {
        match result {
            Ok((user, messages)) => {
                let deleted = vec![false; messages.len()];
                let drop = Maildrop {
                    user,
                    messages,
                    deleted,
                };
                let (n, octets) = drop.stat();
                self.state = State::Transaction(Box::new(drop));
                Reply::ok(format!("maildrop has {n} messages ({octets} octets)"))
            }
            Err(r) => {
                self.state = State::Authorization { user: None };
                r
            }
        }
    }

    /// Called after [`Action::Update`] with how many copies were deleted, or the error; the
    /// answer to QUIT, after which the connection closes.
    pub fn updated(&mut self, result: Result<usize, Reply>) -> Reply {
        self.state = State::Authorization { user: None };
        match result {
            Ok(n) => Reply::ok(format!(
                "fakemail POP3 server signing off ({n} messages deleted)"
            )),
            Err(r) => Reply::err(format!("some deleted messages not removed: {}", r.text)),
        }
    }
}

/// The answer to an unknown command.
fn unknown(verb: &str) -> Reply {
    Reply::err(format!("unknown command {}", shown(verb)))
}

/// Client input as quoted in a response: printable ASCII only, at most 20 characters.
fn shown(input: &str) -> String {
    input
        .chars()
        .filter(char::is_ascii_graphic)
        .take(20)
        .collect()
}

/// Credentials from a PLAIN response, or the refusal (`*` cancels).
fn plain(response: &str) -> Action {
    match auth::decode(response).and_then(auth::plain) {
        Ok(credentials) => Action::Login(credentials),
        Err(r) if r.code == 535 => {
            Action::Reply(Reply::err(format!("[AUTH] {}", r.lines.join(" "))))
        }
        Err(r) => Action::Reply(Reply::err(r.lines.join(" "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pop3::reply::Status;
    use crate::time::Timestamp;
    use base64::Engine as _;

    fn is_challenge(reply: &Reply) -> bool {
        reply.status == Status::Challenge
    }

    fn session() -> Session {
        Session::new(Arc::new(Settings { stls: true }))
    }

    fn user() -> User {
        User {
            id: 7,
            email: "alice@x.test".into(),
            display_name: String::new(),
            created_at: Timestamp::now(),
        }
    }

    fn reply(a: Action) -> Reply {
        match a {
            Action::Reply(r) => r,
            other => panic!("not a reply: {other:?}"),
        }
    }

    fn text(a: Action) -> String {
        String::from_utf8(reply(a).to_wire()).unwrap()
    }

    /// A session logged in with three messages (ids 10, 11, 12; sizes 100, 200, 300).
    fn logged_in() -> Session {
        let mut s = session();
        let sizes = [(10, 100), (11, 200), (12, 300)]
            .map(|(id, size)| CopySize { id, size })
            .to_vec();
        assert!(s.logged_in(Ok((user(), sizes))).is_ok());
        s
    }

    #[test]
    fn user_and_pass_ask_for_a_login() {
        let mut s = session();
        assert_eq!(text(s.command(b"PASS x")), "-ERR send USER first\r\n");
        assert!(reply(s.command(b"user alice@x.test")).is_ok());
        match s.command(b"PASS two words ") {
            Action::Login(c) => {
                assert_eq!(c.username, "alice@x.test");
                assert_eq!(c.password(), "two words ");
            }
            other => panic!("{other:?}"),
        }
        let r = s.logged_in(Err(Reply::err("[AUTH] no")));
        assert!(!r.is_ok());
        assert_eq!(text(s.command(b"PASS x")), "-ERR send USER first\r\n");
        assert_eq!(text(s.command(b"STAT")), "-ERR log in first\r\n");
    }

    #[test]
    fn auth_plain_with_and_without_an_initial_response() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("\0alice@x.test\0pw");
        let mut s = session();
        match s.command(format!("AUTH PLAIN {b64}").as_bytes()) {
            Action::Login(c) => assert_eq!(c.password(), "pw"),
            other => panic!("{other:?}"),
        }
        let challenge = reply(s.command(b"AUTH PLAIN"));
        assert!(is_challenge(&challenge));
        assert_eq!(s.verb(b"anything"), None);
        assert!(matches!(s.command(b64.as_bytes()), Action::Login(_)));
        assert!(is_challenge(&reply(s.command(b"auth plain"))));
        assert_eq!(text(s.command(b"*")), "-ERR authentication cancelled\r\n");
        assert!(text(s.command(b"AUTH LOGIN")).starts_with("-ERR"));
        assert!(text(s.command(b"AUTH")).contains("PLAIN\r\n.\r\n"));
        assert!(text(s.command(b"AUTH PLAIN !!!")).starts_with("-ERR"));
    }

    #[test]
    fn capa_before_and_after_login_and_tls() {
        let mut s = session();
        let before = text(s.command(b"CAPA"));
        assert!(
            before.contains("\r\nSTLS\r\n") && before.contains("SASL PLAIN"),
            "{before}"
        );
        assert!(before.ends_with("\r\n.\r\n"));
        assert!(matches!(s.command(b"STLS"), Action::StartTls(_)));
        s.tls_started();
        assert!(!text(s.command(b"CAPA")).contains("STLS"));
        assert_eq!(text(s.command(b"STLS")), "-ERR TLS is already on\r\n");
        let mut s = logged_in();
        let after = text(s.command(b"CAPA"));
        assert!(!after.contains("STLS") && after.contains("UIDL"), "{after}");
        assert_eq!(text(s.command(b"STLS")), "-ERR already logged in\r\n");
    }

    #[test]
    fn stat_list_uidl() {
        let mut s = logged_in();
        assert_eq!(text(s.command(b"STAT")), "+OK 3 600\r\n");
        assert_eq!(
            text(s.command(b"LIST")),
            "+OK 3 messages (600 octets)\r\n1 100\r\n2 200\r\n3 300\r\n.\r\n"
        );
        assert_eq!(text(s.command(b"list 2")), "+OK 2 200\r\n");
        assert_eq!(text(s.command(b"LIST 4")), "-ERR no message 4\r\n");
        assert_eq!(text(s.command(b"LIST 0")), "-ERR no message 0\r\n");
        assert!(text(s.command(b"LIST x")).starts_with("-ERR"));
        assert_eq!(
            text(s.command(b"UIDL")),
            "+OK unique ids follow\r\n1 10\r\n2 11\r\n3 12\r\n.\r\n"
        );
        assert_eq!(text(s.command(b"UIDL 3")), "+OK 3 12\r\n");
        assert!(text(s.command(b"LIST 1 2")).starts_with("-ERR wrong arguments"));
        assert!(text(s.command(b"FROB")).starts_with("-ERR unknown command"));
        assert_eq!(
            text(s.command("RETR 1\u{7}é2".as_bytes())),
            "-ERR `12` is not a message number\r\n"
        );
    }

    #[test]
    fn dele_rset_and_quit() {
        let mut s = logged_in();
        assert_eq!(text(s.command(b"DELE 2")), "+OK message 2 deleted\r\n");
        assert_eq!(text(s.command(b"DELE 2")), "-ERR message 2 is deleted\r\n");
        assert_eq!(text(s.command(b"RETR 2")), "-ERR message 2 is deleted\r\n");
        assert_eq!(text(s.command(b"STAT")), "+OK 2 400\r\n");
        assert!(!text(s.command(b"LIST")).contains("\r\n2 200"));
        assert!(text(s.command(b"RSET")).starts_with("+OK maildrop has 3 messages"));
        s.command(b"DELE 1");
        s.command(b"DELE 3");
        match s.command(b"QUIT") {
            Action::Update { user, ids } => {
                assert_eq!(user.id, 7);
                assert_eq!(ids, [10, 12]);
            }
            other => panic!("{other:?}"),
        }
        assert!(s.updated(Ok(2)).text.contains("2 messages deleted"));
        assert!(matches!(session().command(b"QUIT"), Action::Close(_)));
    }

    #[test]
    fn retr_and_top() {
        let mut s = logged_in();
        match s.command(b"RETR 3") {
            Action::Send { reply, id, top, .. } => {
                assert_eq!(reply.text, "300 octets");
                assert_eq!((id, top), (12, None));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.command(b"TOP 1 0"),
            Action::Send {
                id: 10,
                top: Some(0),
                ..
            }
        ));
        assert!(text(s.command(b"TOP 1")).starts_with("-ERR"));
        assert!(text(s.command(b"TOP 1 -1")).starts_with("-ERR"));
        assert!(text(s.command(b"RETR")).starts_with("-ERR"));
    }

    /// Lines made of command words, numbers and random bytes, in every state: the session
    /// never panics, and every response is well-formed.
    #[test]
    fn random_lines_never_break_the_session() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let words: Vec<&[u8]> = COMMANDS
            .iter()
            .map(|c| c.as_bytes())
            .chain([
                b"".as_slice(),
                b" ",
                b"0",
                b"1",
                b"3",
                b"4",
                b"-1",
                b"18446744073709551616",
                b"PLAIN",
                b"*",
                b"=",
                b"AGFsaWNlAHB3",
                b"\xff\x00",
                b"\t",
            ])
            .collect();
        for round in 0..2_000 {
            let mut s = if round % 2 == 0 {
                session()
            } else {
                logged_in()
            };
            for _ in 0..8 {
                let mut line = Vec::new();
                for i in 0..(next() % 4) {
                    if i > 0 {
                        line.push(b' ');
                    }
                    line.extend_from_slice(words[(next() % words.len() as u64) as usize]);
                }
                let replies = match s.command(&line) {
                    Action::Reply(r) | Action::Close(r) | Action::StartTls(r) => vec![r],
                    Action::Send { reply, .. } => vec![reply],
                    Action::Login(_) => vec![s.logged_in(Err(Reply::err("[AUTH] no")))],
                    Action::Update { .. } => vec![s.updated(Ok(0))],
                };
                for r in replies {
                    let wire = r.to_wire();
                    assert!(wire.ends_with(b"\r\n"), "{line:?}: {r:?}");
                    let first = wire.split(|&b| b == b'\n').next().unwrap();
                    assert!(first.len() <= 512, "{line:?}: {r:?}");
                }
                let _ = s.verb(&line);
            }
        }
    }

    #[test]
    fn bad_input_is_an_error_and_the_session_goes_on() {
        let mut s = session();
        assert!(text(s.command(&[0xff, 0xfe])).starts_with("-ERR"));
        assert!(text(s.command(b"")).starts_with("-ERR"));
        assert_eq!(reply(s.line_too_long()), Reply::line_too_long());
        assert!(text(s.command(b"NOOP")).starts_with("+OK"));
        assert_eq!(s.verb(b"retr 1"), Some("RETR"));
        assert_eq!(s.verb(b"xyzzy"), Some("unknown"));
    }
}
