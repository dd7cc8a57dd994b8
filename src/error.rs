//! The one domain error type. It knows nothing of HTTP or SMTP: each front-end maps it to its
//! own status or reply code in exactly one place (`api::rejection` for HTTP, `smtp::reply` for
//! SMTP).

use std::time::Duration;

/// Everything that can go wrong below the front-ends.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that is well-formed but breaks a rule; `code` is a stable snake_case identifier
    /// (`invalid_email`, `weak_password`, ...) and `field` names the offending input.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        field: Option<String>,
        message: String,
    },
    /// Registration with an address that already has an account (compared case-insensitively).
    #[error("an account with this email address already exists")]
    EmailTaken,
    /// Wrong email or password. Deliberately the same for both, so addresses cannot be probed.
    #[error("the email address or password is wrong")]
    InvalidCredentials,
    /// Too many failed logins for one address within the window.
    #[error("too many failed login attempts for this account; try again later")]
    TooManyAttempts { retry_after: Duration },
    /// A protected endpoint was called without a session token (bearer or cookie).
    #[error("this endpoint needs an `Authorization: Bearer <token>` header or a session cookie")]
    MissingToken,
    /// The session token (bearer or cookie) is unknown, expired, or was revoked.
    #[error("the session token is invalid, expired or revoked; log in again")]
    InvalidToken,
    /// A mailbox of that name already exists (system names included).
    #[error("a mailbox with this name already exists")]
    MailboxExists,
    /// Only empty mailboxes can be deleted.
    #[error("the mailbox is not empty; move or delete its messages first")]
    MailboxNotEmpty,
    /// A message is larger than `--max-message-size`.
    #[error("the message is {size} bytes, more than the limit of {limit} bytes")]
    MessageTooLarge { size: u64, limit: u64 },
    /// The admin token (or an operator session) is missing or wrong.
    #[error(
        "this endpoint needs the admin token as `Authorization: Bearer <token>`, or an operator \
         session cookie"
    )]
    AdminOnly,
    /// A wait for a message ended without one.
    #[error("no matching message arrived within {}", humantime::format_duration(*.waited))]
    WaitTimeout { waited: Duration },
    /// The server is starting (not every listener serves yet) or shutting down.
    #[error("the server is not ready: it is starting or shutting down")]
    NotReady,
    /// Fault injection was asked for on a server started without `--chaos`.
    #[error("fault injection is off; start the server with --chaos to use it")]
    ChaosDisabled,
    /// A fault-injection rule answered instead of the service (at REST send): the front-end
    /// answers with the rule's reply.
    #[error("{0}")]
    InjectedFault(crate::service::chaos::InjectedReply),
    /// A message's HTML body was asked for, and the message has none.
    #[error("the message has no HTML body; its text is in the message's `text`")]
    NoHtml,
    /// The named thing does not exist (or is not visible to the caller).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// No room for new mail: the data dir's filesystem has less free space than
    /// `--min-free-space`, or a write to the store failed (a full or failing disk). Mail
    /// already stored can still be read; the detail is logged, never shown to clients.
    #[error("the server's disk is full: new mail is refused until space is freed; try again later")]
    StorageFull,
    /// The embedded store failed; the detail is logged, never shown to clients.
    #[error("storage error: {0}")]
    Store(#[from] crate::store::StoreError),
    /// A bug or an environment failure (a blocking task panicked, ...); logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Shorthand used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A validation error with a field name.
    pub fn invalid(
        code: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            code,
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Internal(format!("blocking task failed: {e}"))
    }
}
