//! SMTP replies: a code, an enhanced status code (RFC 3463, advertised as ENHANCEDSTATUSCODES)
//! and text lines, and the one place that turns a domain [`Error`] (or an injected fault)
//! into a reply.

use std::fmt::Write as _;

use tracing::error;

use crate::error::Error;
use crate::service::chaos::{InjectedReply, Stage};

/// One SMTP reply, possibly of several lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code.
    pub code: u16,
    /// The enhanced status code, e.g. `2.1.0`; `None` on the greeting, EHLO/HELO answers and
    /// AUTH challenges, which RFC 2034 and RFC 4954 leave without one.
    pub status: Option<&'static str>,
    /// The text, one entry per line of a multi-line reply.
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply with an enhanced status code.
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Some(status),
            lines: vec![text.into()],
        }
    }

    /// A reply without an enhanced status code.
    pub fn plain(code: u16, lines: Vec<String>) -> Reply {
        Reply {
            code,
            status: None,
            lines,
        }
    }

    /// Whether the reply is a positive completion (2xx) or intermediate (3xx) one.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// The reply on the wire: `250-first`, ..., `250 last`, each line ending in CRLF.
    pub fn to_wire(&self) -> String {
        let mut out = String::new();
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            let _ = match self.status {
                Some(status) => write!(out, "{}{sep}{status} {line}\r\n", self.code),
                None if line.is_empty() => write!(out, "{}{sep}\r\n", self.code),
                None => write!(out, "{}{sep}{line}\r\n", self.code),
            };
        }
        if self.lines.is_empty() {
            let _ = write!(out, "{}\r\n", self.code);
        }
        out
    }

    // ----- the replies the session gives in more than one place ------------------------------

    /// 503: a command out of order.
    pub fn bad_sequence(text: &str) -> Reply {
        Reply::new(503, "5.5.1", text)
    }

    /// 501: a command whose arguments cannot be read.
    pub fn syntax(text: impl Into<String>) -> Reply {
        Reply::new(501, "5.5.4", text)
    }

    /// 500: a line over the length limit.
    pub fn line_too_long() -> Reply {
        Reply::new(500, "5.5.2", "line too long")
    }

    /// 552: a message, or a declared SIZE, over `--max-message-size`.
    pub fn too_big(limit: u64) -> Reply {
        Reply::new(
            552,
            "5.3.4",
            format!("message too big: the limit is {limit} bytes"),
        )
    }

    /// 421: closing the connection because the server stops.
    pub fn shutting_down() -> Reply {
        Reply::new(421, "4.3.2", "server shutting down, closing the connection")
    }
}

/// The SMTP reply for a domain error: the only place that makes that choice. Internal and
/// store failures are logged here with their detail and answered with a temporary failure, so
/// the client keeps the message and tries again.
pub fn for_error(e: &Error) -> Reply {
    match e {
        Error::MessageTooLarge { limit, .. } => Reply::too_big(*limit),
        Error::InvalidCredentials => Reply::new(535, "5.7.8", "authentication credentials invalid"),
        Error::TooManyAttempts { retry_after } => Reply::new(
            454,
            "4.7.0",
            format!(
                "too many failed logins for this account; try again in {} s",
                retry_after.as_secs().max(1)
            ),
        ),
        Error::Invalid { message, .. } => Reply::new(550, "5.1.3", message.clone()),
        Error::InjectedFault(fault) => for_fault(fault),
        // RFC 3463 X.3.1 "mail system full"; a 4xx, so the client keeps the message and tries
        // again. Logged where it was found (the free-space guard), not at every refusal.
        Error::StorageFull => {
            Reply::new(452, "4.3.1", "insufficient system storage; try again later")
        }
        Error::Store(_) | Error::Internal(_) => {
            error!(error = %e, "SMTP: internal error");
            Reply::new(451, "4.3.0", "local error in processing; try again later")
        }
        Error::EmailTaken
        | Error::MissingToken
        | Error::InvalidToken
        | Error::MailboxExists
        | Error::MailboxNotEmpty
        | Error::AdminOnly
        | Error::NotReady
        | Error::ChaosDisabled
        | Error::WaitTimeout { .. }
        | Error::NoHtml
        | Error::NotFound(_) => {
            error!(error = %e, "SMTP: unexpected error");
            Reply::new(451, "4.3.0", "local error in processing; try again later")
        }
    }
}

/// The reply of a fault-injection rule: its code, and its text or one naming the rule.
/// Replies after the greeting carry an enhanced code (ENHANCEDSTATUSCODES): the rule's, or the
/// bare class. It is written into the text: the same line on the wire, and `Reply` keeps its
/// codes static.
pub fn for_fault(fault: &InjectedReply) -> Reply {
    let text = fault.to_string();
    let line = match &fault.enhanced {
        Some(e) => format!("{e} {text}"),
        None if fault.stage == Stage::Connect => text,
        None => format!("{}.0.0 {text}", fault.code / 100),
    };
    Reply::plain(fault.code, vec![line])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multi_line_replies() {
        assert_eq!(Reply::new(250, "2.1.0", "OK").to_wire(), "250 2.1.0 OK\r\n");
        let ehlo = Reply::plain(
            250,
            vec!["host".into(), "PIPELINING".into(), "8BITMIME".into()],
        );
        assert_eq!(
            ehlo.to_wire(),
            "250-host\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        );
        assert_eq!(Reply::plain(334, vec![String::new()]).to_wire(), "334 \r\n");
        assert_eq!(Reply::plain(220, vec![]).to_wire(), "220\r\n");
    }

    #[test]
    fn errors_map_to_codes() {
        let code = |e: Error| for_error(&e).code;
        assert_eq!(code(Error::MessageTooLarge { size: 2, limit: 1 }), 552);
        assert_eq!(code(Error::InvalidCredentials), 535);
        assert_eq!(
            code(Error::TooManyAttempts {
                retry_after: std::time::Duration::from_secs(3)
            }),
            454
        );
        assert_eq!(code(Error::Internal("x".into())), 451);
        assert_eq!(
            for_error(&Error::StorageFull).to_wire(),
            "452 4.3.1 insufficient system storage; try again later\r\n"
        );
    }

    #[test]
    fn an_injected_fault_says_its_code_and_enhanced_code() {
        let fault = |stage, enhanced: Option<&str>| {
            for_error(&Error::InjectedFault(InjectedReply {
                rule: 3,
                stage,
                code: 451,
                enhanced: enhanced.map(str::to_owned),
                text: None,
            }))
            .to_wire()
        };
        assert_eq!(
            fault(Stage::Rcpt, Some("4.3.2")),
            "451 4.3.2 fault injected by chaos rule 3\r\n"
        );
        assert_eq!(
            fault(Stage::Data, None),
            "451 4.0.0 fault injected by chaos rule 3\r\n"
        );
        // The greeting has no enhanced code.
        assert_eq!(
            fault(Stage::Connect, None),
            "451 fault injected by chaos rule 3\r\n"
        );
    }
}
