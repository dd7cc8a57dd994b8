//! An in-process fakemail for the tests of other Rust projects (feature `testing`): start a
//! server on a temporary store and free ports, point the application under test at its SMTP
//! address, and wait for the mail it sends.
//!
//! ```
//! use std::time::Duration;
//!
//! use fakemail::testing::{Match, TestServer};
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//! use tokio::net::TcpStream;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TestServer::start().await?; // temporary store, free ports, fast password hashing
//!
//! // The application under test sends to server.smtp_addr(); here, a few lines of SMTP do.
//! let mut smtp = BufReader::new(TcpStream::connect(server.smtp_addr()).await?);
//! for line in [
//!     "EHLO app.example.test",
//!     "MAIL FROM:<shop@example.test>",
//!     "RCPT TO:<bob@example.test>",
//!     "DATA",
//!     "Subject: Your order\r\n\r\nYour confirmation code is 482913.\r\n.",
//!     "QUIT",
//! ] {
//!     smtp.get_mut().write_all(format!("{line}\r\n").as_bytes()).await?;
//! }
//! let mut reply = String::new();
//! while smtp.read_line(&mut reply).await? > 0 {} // every reply, until the server closes
//! assert!(reply.contains("250 2.0.0"), "{reply}");
//!
//! let msg = server
//!     .wait_for(Match::to("bob@example.test").subject("Your order"), Duration::from_secs(5))
//!     .await?;
//! assert!(msg.text.as_deref().unwrap_or("").contains("482913"));
//! assert_eq!(msg.codes, ["482913"]);
//!
//! assert_eq!(server.messages().await?.len(), 1);
//! server.clear().await?;
//! assert!(server.messages().await?.is_empty());
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! The server is the real one (`fakemail serve`'s start-up, [`crate::server::Server`]): its
//! HTTP API answers at [`TestServer::http_url`] with [`TestServer::admin_token`], for tests
//! that want accounts, REST sends or event streams. What tests ask most often, the captured
//! mail, waiting for a message, clearing and fault injection, are methods that call the
//! server's service directly, with no HTTP client.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{Config, DataDir};
use crate::server::{self, Running, Server, StartError};
use crate::service::chaos::RuleSpec;
use crate::service::filter::MessageFilter;
use crate::service::operator::{AdminMessage, AdminQuery};
use crate::service::watch::{After, Audience, Found, WaitQuery};
use crate::service::{Service, mail::MAX_PAGE, password, token};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

/// An attachment as [`Message::attachments`] lists it: index, file name, type and size.
pub use crate::service::mime::AttachmentInfo;

/// The longest wait [`TestServer::wait_for`] honours; longer ones are cut to it, so that a
/// `Duration::MAX` cannot overflow the deadline.
const LONGEST_WAIT: Duration = Duration::from_secs(24 * 3600);
/// How many captured messages a timeout error describes.
const DESCRIBED: usize = 5;

/// What can go wrong in [`TestServer`]'s methods.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The temporary data dir cannot be created.
    #[error("cannot create the test server's temporary data dir: {0}")]
    TempDir(#[source] std::io::Error),
    /// The store cannot be opened in the temporary data dir.
    #[error("cannot open the test server's store: {0}")]
    Store(#[from] StoreError),
    /// A listener cannot be bound, or the TLS identity cannot be made.
    #[error("cannot start the test server: {0}")]
    Start(#[from] StartError),
    /// A fault-injection rule does not parse, or the server does not take it (fault injection
    /// is off, or there are too many rules).
    #[error("fault-injection rule `{rule}` refused: {source}")]
    Rule {
        /// The rule as given.
        rule: String,
        /// Why: the parser's or the rule set's error.
        #[source]
        source: crate::Error,
    },
    /// [`TestServer::wait_for`] found no matching message in time. `captured` describes the
    /// newest messages the server does hold, to show what arrived instead.
    #[error(
        "no message matching {filter} arrived within {}; {}",
        humantime::format_duration(*.waited),
        Captured(.captured, *.more)
    )]
    Timeout {
        /// What was waited for (boxed: a `Match` would make every result of this module large).
        filter: Box<Match>,
        /// The timeout given.
        waited: Duration,
        /// The newest messages held when the wait ended, described in a line each (at most 5).
        captured: Vec<String>,
        /// Whether more messages are held than `captured` describes.
        more: bool,
    },
    /// The server's service failed (its store, or the server is stopping).
    #[error("the test server failed: {0}")]
    Service(#[from] crate::Error),
}

/// A test that returns `Result<(), Box<dyn Error>>` prints its error with `{:?}`: make that the
/// sentence, with its causes, rather than a struct dump.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// The `captured` part of a timeout message.
struct Captured<'a>(&'a [String], bool);

impl fmt::Display for Captured<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [] => f.write_str("the server holds no message"),
            list => {
                f.write_str("the server holds ")?;
                if self.1 {
                    write!(f, "more than {} messages, the newest: ", list.len())?;
                } else {
                    f.write_str(if list.len() == 1 {
                        "1 message: "
                    } else {
                        "these messages, newest first: "
                    })?;
                }
                f.write_str(&list.join("; "))
            }
        }
    }
}

/// Shorthand for this module's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which messages [`TestServer::wait_for`] wants: built from [`Match::to`] or [`Match::any`],
/// narrowed by [`Match::from`], [`Match::subject`] and [`Match::containing`]. All given parts
/// must hold, and all compare in any letter case. It shows itself as the code that builds it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Match {
    to: Option<String>,
    from: Option<String>,
    subject: Option<String>,
    containing: Option<String>,
}

impl Match {
    /// Every message.
    pub fn any() -> Match {
        Match::default()
    }

    /// Messages for `address`: in `To` or `Cc`, or a `Bcc` (envelope) recipient. Exact.
    pub fn to(address: impl Into<String>) -> Match {
        Match {
            to: Some(address.into()),
            ..Match::default()
        }
    }

    /// And from `address`: the `From` header or the envelope sender. Exact.
    pub fn from(mut self, address: impl Into<String>) -> Match {
        self.from = Some(address.into());
        self
    }

    /// And whose subject contains `text`.
    pub fn subject(mut self, text: impl Into<String>) -> Match {
        self.subject = Some(text.into());
        self
    }

    /// And with `text` in the subject, an address or name, or the body (the HTML as text when
    /// there is no text part).
    pub fn containing(mut self, text: impl Into<String>) -> Match {
        self.containing = Some(text.into());
        self
    }

    fn filter(&self) -> MessageFilter {
        MessageFilter::new(
            self.to.as_deref(),
            self.from.as_deref(),
            self.subject.as_deref(),
            self.containing.as_deref(),
        )
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.to {
            Some(to) => write!(f, "Match::to({to:?})")?,
            None => f.write_str("Match::any()")?,
        }
        for (name, value) in [
            ("from", &self.from),
            ("subject", &self.subject),
            ("containing", &self.containing),
        ] {
            if let Some(v) = value {
                write!(f, ".{name}({v:?})")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A name and an address, as a header gives them (`Display`: `Name <local@domain>` or the
/// bare address).
pub use crate::service::message::Address;

/// A captured message, decoded: what the operator view of the HTTP API shows
/// (`GET /api/v1/admin/messages/{id}`), plus its source.
#[derive(Clone, PartialEq)]
pub struct Message {
    /// The message's id in the operator view.
    pub id: u64,
    /// When the server stored it (whole seconds).
    pub received_at: SystemTime,
    /// The envelope sender (`MAIL FROM`).
    pub envelope_from: String,
    /// Every envelope recipient (`RCPT TO`), Bcc ones included.
    pub recipients: Vec<String>,
    /// The `From` header (the envelope sender when there is none).
    pub from: Address,
    /// The `To` header's addresses.
    pub to: Vec<Address>,
    /// The `Cc` header's addresses.
    pub cc: Vec<Address>,
    /// The `Reply-To` header's addresses.
    pub reply_to: Vec<Address>,
    /// The decoded `Subject` header (empty when there is none).
    pub subject: String,
    /// The `Message-ID` header, without angle brackets.
    pub message_id: Option<String>,
    /// The `Date` header, when it holds a valid date.
    pub date: Option<SystemTime>,
    /// The text body; line breaks are `\n`.
    pub text: Option<String>,
    /// The HTML body; line breaks are `\n`.
    pub html: Option<String>,
    /// Every top-level header in order: the name as written, the value unfolded.
    pub headers: Vec<(String, String)>,
    /// The attachments' names, types and sizes; their content is in `raw`.
    pub attachments: Vec<AttachmentInfo>,
    /// The `http` and `https` links of the text and HTML bodies, each once, in order.
    pub links: Vec<String>,
    /// One-time codes found near words such as "code" in the subject and text.
    pub codes: Vec<String>,
    /// The source as stored (with the `Received` header the server added).
    pub raw: Vec<u8>,
}

impl Message {
    fn new(a: AdminMessage, raw: Vec<u8>) -> Message {
        let m = a.message;
        let c = a.content;
        Message {
            id: m.id,
            received_at: system_time(m.received_at),
            from: m.from,
            to: m.to,
            cc: m.cc,
            reply_to: m.reply_to,
            envelope_from: m.envelope_from,
            recipients: m.envelope_to,
            subject: m.subject,
            message_id: m.message_id,
            date: c.date.map(system_time),
            text: c.text,
            html: c.html,
            headers: c.headers,
            attachments: c.attachments,
            links: c.links,
            codes: c.codes,
            raw,
        }
    }

    /// A header's value (the first of that name, in any letter case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// One line for error messages: subject, sender and recipients.
    fn describe(&self) -> String {
        format!(
            "{:?} from {} to {}",
            self.subject,
            self.envelope_from,
            self.recipients.join(", ")
        )
    }
}

/// The source is shown as its size: a byte list would bury every other field.
impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("received_at", &self.received_at)
            .field("envelope_from", &self.envelope_from)
            .field("recipients", &self.recipients)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("cc", &self.cc)
            .field("reply_to", &self.reply_to)
            .field("subject", &self.subject)
            .field("message_id", &self.message_id)
            .field("date", &self.date)
            .field("text", &self.text)
            .field("html", &self.html)
            .field("headers", &self.headers)
            .field("attachments", &self.attachments)
            .field("links", &self.links)
            .field("codes", &self.codes)
            .field("raw", &format_args!("<{} bytes>", self.raw.len()))
            .finish()
    }
}

fn system_time(t: Timestamp) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t.0)
}

/// Settings of a [`TestServer`] before it starts: [`TestServer::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    config: Config,
    rules: Vec<String>,
}

impl Builder {
    /// Allows fault injection ([`TestServer::add_rule`]), as `fakemail serve --chaos` does.
    pub fn chaos(mut self, on: bool) -> Builder {
        self.config.service.chaos = on;
        self
    }

    /// A fault-injection rule in force from the start, in the text form of `--chaos-rule`
    /// (see [`TestServer::add_rule`]); turns fault injection on.
    pub fn rule(mut self, rule: impl Into<String>) -> Builder {
        self.rules.push(rule.into());
        self.chaos(true)
    }

    /// The admin token of the HTTP API, instead of a random one.
    pub fn admin_token(mut self, token: impl Into<String>) -> Builder {
        self.config.admin_token = Some(token.into());
        self
    }

    /// Any other setting of `fakemail serve` (limits, SMTP AUTH, retention...). The data dir
    /// stays a new temporary one whatever `config.data` says.
    pub fn configure(mut self, f: impl FnOnce(&mut Config)) -> Builder {
        f(&mut self.config);
        self
    }

    /// Starts the server.
    ///
    /// # Errors
    /// [`Error::Rule`] for a rule that does not parse; [`Error::TempDir`], [`Error::Store`],
    /// [`Error::Start`] when the server cannot start.
    pub async fn start(self) -> Result<TestServer> {
        let Builder { mut config, rules } = self;
        let specs = rules
            .iter()
            .map(|r| {
                RuleSpec::parse(r).map_err(|source| Error::Rule {
                    rule: r.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let temp = server::temporary_data_dir().map_err(Error::TempDir)?;
        let data_dir = temp.path().to_path_buf();
        config.data = DataDir::Path(data_dir.clone());
        let admin_token = config
            .admin_token
            .get_or_insert_with(|| token::generate().0)
            .clone();
        let store = Store::open(temp.path(), config.cache_size)?;
        let server = Server::bind(config, store).await?.with_temp_dir(temp);
        if !specs.is_empty() {
            // Checks their number, as `--chaos-rule` does.
            server
                .service()
                .chaos()
                .replace(specs)
                .map_err(|source| Error::Rule {
                    rule: rules.last().cloned().unwrap_or_default(),
                    source,
                })?;
        }
        let running = server.spawn();
        Ok(TestServer {
            http_url: format!("http://{}", running.http_addr()),
            admin_token,
            data_dir,
            running,
        })
    }
}

/// A fakemail server running in this process, for one test. It stops when dropped (in the
/// background: its task drains, flushes and removes its temporary store) or, waiting for
/// all that, with [`TestServer::shutdown`]. Needs a tokio runtime with the timer and I/O
/// drivers (`#[tokio::test]` has them).
#[derive(Debug)]
pub struct TestServer {
    running: Running,
    http_url: String,
    admin_token: String,
    data_dir: PathBuf,
}

impl TestServer {
    /// Starts a server on a temporary store, on free ports of 127.0.0.1, with fast (and weak)
    /// password hashing, fault injection off and a random admin token.
    ///
    /// # Errors
    /// [`Error::TempDir`], [`Error::Store`], [`Error::Start`].
    pub async fn start() -> Result<TestServer> {
        TestServer::builder().start().await
    }

    /// Settings for a server to start: fault injection, the admin token, the rest of the
    /// config.
    pub fn builder() -> Builder {
        let mut config = Config::default();
        config.service.password_iterations = password::MIN_ITERATIONS;
        Builder {
            config,
            rules: Vec::new(),
        }
    }

    /// Where the application under test sends mail.
    pub fn smtp_addr(&self) -> SocketAddr {
        self.running.smtp_addr()
    }

    /// The IMAP listener's address, for reading a user's mailboxes with an IMAP client
    /// (`None` only when a config turned IMAP off).
    pub fn imap_addr(&self) -> Option<SocketAddr> {
        self.running.imap_addr()
    }

    /// The POP3 listener's address, where a test reads an account's `inbox` with a POP3
    /// client (`None` when the config turned POP3 off).
    pub fn pop3_addr(&self) -> Option<SocketAddr> {
        self.running.pop3_addr()
    }

    /// The HTTP API's address.
    pub fn http_addr(&self) -> SocketAddr {
        self.running.http_addr()
    }

    /// The HTTP API's base URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn http_url(&self) -> &str {
        &self.http_url
    }

    /// The admin token of the HTTP API (`Authorization: Bearer ...`).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The temporary data dir holding the store; removed once the server has stopped.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn service(&self) -> Service {
        self.running.service().clone()
    }

    /// Every message captured, newest first.
    ///
    /// # Errors
    /// [`Error::Service`] when the store fails.
    pub async fn messages(&self) -> Result<Vec<Message>> {
        let svc = self.service();
        let mut out = Vec::new();
        let mut query = AdminQuery {
            limit: Some(MAX_PAGE),
            ..AdminQuery::default()
        };
        loop {
            let page = svc.admin_list(&query).await?;
            for m in page.messages {
                // Gone since the listing (a concurrent clear): not captured any more.
                if let Some(m) = read(&svc, m.id).await? {
                    out.push(m);
                }
            }
            match page.next_cursor {
                Some(c) => query.cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// The first (oldest) captured message that matches, at once when there is one, else the
    /// first to arrive within `timeout` (a zero timeout only looks; more than a day counts as a
    /// day). To wait for a later message that the same filter would match,
    /// [`TestServer::clear`] first or narrow the filter.
    ///
    /// # Errors
    /// [`Error::Timeout`] naming the filter, and describing what the server holds instead;
    /// [`Error::Service`] when the store fails.
    pub async fn wait_for(&self, filter: Match, timeout: Duration) -> Result<Message> {
        let svc = self.service();
        let query = WaitQuery {
            filter: filter.filter(),
            after: Some(After::Position(0)),
            timeout: timeout.min(LONGEST_WAIT),
        };
        match svc.wait(Audience::Operator, query).await {
            Ok(waited) => match waited.found {
                Found::Operator(a) => {
                    let raw = svc.admin_raw(a.message.id).await?;
                    Ok(Message::new(a, raw))
                }
                Found::User(_) => unreachable!("an operator wait answers the operator view"),
            },
            Err(crate::Error::WaitTimeout { .. }) => {
                let (captured, more) = self.describe_newest().await?;
                Err(Error::Timeout {
                    filter: Box::new(filter),
                    waited: timeout,
                    captured,
                    more,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The newest messages, described in a line each, and whether there are more.
    async fn describe_newest(&self) -> Result<(Vec<String>, bool)> {
        let svc = self.service();
        let page = svc
            .admin_list(&AdminQuery {
                limit: Some(DESCRIBED),
                ..AdminQuery::default()
            })
            .await?;
        let mut lines = Vec::new();
        for m in page.messages {
            if let Some(m) = read(&svc, m.id).await? {
                lines.push(m.describe());
            }
        }
        Ok((lines, page.next_cursor.is_some()))
    }

    /// Deletes every captured message; returns how many there were. Accounts stay.
    ///
    /// # Errors
    /// [`Error::Service`] when the store fails.
    pub async fn clear(&self) -> Result<u64> {
        let svc = self.service();
        Ok(svc.admin_delete_all().await?.messages)
    }

    /// Adds a fault-injection rule, tried after those already set; returns its id. The text
    /// form is that of `--chaos-rule` and the API's `rule` strings: `STAGE:PART[:PART...]`,
    /// e.g. `rcpt:451:4.3.0:next=1` (the next recipient is refused with a 451) or
    /// `data:554:to=*@blocked.test`; see [`crate::service::chaos`].
    ///
    /// # Errors
    /// [`Error::Rule`]: the rule does not parse, fault injection is off (start the server with
    /// [`Builder::chaos`]), or 100 rules are already set.
    pub fn add_rule(&self, rule: &str) -> Result<u64> {
        let refused = |source| Error::Rule {
            rule: rule.to_owned(),
            source,
        };
        let spec = RuleSpec::parse(rule).map_err(refused)?;
        let added = self.running.service().chaos().add(spec).map_err(refused)?;
        Ok(added.id)
    }

    /// Removes one fault-injection rule by the id [`TestServer::add_rule`] returned.
    ///
    /// # Errors
    /// [`Error::Service`]: fault injection is off, or no rule has that id.
    pub fn remove_rule(&self, id: u64) -> Result<()> {
        Ok(self.running.service().chaos().remove(id)?)
    }

    /// Removes every fault-injection rule.
    ///
    /// # Errors
    /// [`Error::Service`]: fault injection is off.
    pub fn clear_rules(&self) -> Result<()> {
        Ok(self.running.service().chaos().clear()?)
    }

    /// Stops the server and waits until it has drained its connections (at most 10 seconds)
    /// and flushed its store; then its temporary store is gone.
    ///
    /// # Errors
    /// [`Error::Service`] when the final flush fails.
    pub async fn shutdown(self) -> Result<()> {
        Ok(self.running.shutdown().await?)
    }
}

/// Message `id` with its source, or `None` when it is gone (deleted since it was listed).
async fn read(svc: &Service, id: u64) -> crate::Result<Option<Message>> {
    let a = match svc.admin_message(id).await {
        Ok(a) => a,
        Err(crate::Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    match svc.admin_raw(id).await {
        Ok(raw) => Ok(Some(Message::new(a, raw))),
        Err(crate::Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_match_shows_itself_as_the_code_that_builds_it() {
        assert_eq!(Match::any().to_string(), "Match::any()");
        let m = Match::to("bob@example.test")
            .subject("Your \"order\"")
            .from("shop@example.test")
            .containing("482913");
        assert_eq!(
            m.to_string(),
            r#"Match::to("bob@example.test").from("shop@example.test").subject("Your \"order\"").containing("482913")"#
        );
        assert_eq!(format!("{m:?}"), m.to_string());
    }

    #[test]
    fn a_match_means_what_the_service_filter_means() {
        let m = Match::to(" Bob@Example.test ").subject("ORDER");
        assert_eq!(
            m.filter(),
            MessageFilter::new(Some("bob@example.test"), None, Some("order"), None)
        );
        assert_eq!(Match::any().filter(), MessageFilter::default());
    }

    #[test]
    fn a_timeout_says_what_was_captured_instead() {
        let e = |captured: &[&str], more| Error::Timeout {
            filter: Box::new(Match::to("bob@example.test")),
            waited: Duration::from_millis(1500),
            captured: captured.iter().map(|s| s.to_string()).collect(),
            more,
        };
        assert_eq!(
            e(&[], false).to_string(),
            r#"no message matching Match::to("bob@example.test") arrived within 1s 500ms; the server holds no message"#
        );
        assert!(e(&["a"], false).to_string().ends_with("holds 1 message: a"));
        assert!(
            e(&["a", "b"], false)
                .to_string()
                .ends_with("holds these messages, newest first: a; b")
        );
        assert!(
            e(&["a", "b"], true)
                .to_string()
                .ends_with("holds more than 2 messages, the newest: a; b")
        );
        assert_eq!(format!("{:?}", e(&[], false)), e(&[], false).to_string());
    }
}
