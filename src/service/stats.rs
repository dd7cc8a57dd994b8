//! Counters for `GET /api/v1/admin/stats` and `GET /metrics` that the store does not keep:
//! uptime, what the SMTP front-end counts (connections, messages accepted and refused, replies
//! by code), what the POP3 and IMAP front-ends count (connections, commands) and what
//! retention removed. Lock-free, owned by the [`super::Service`], reset at
//! start-up.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::retention;

/// Live counters of this server process.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    smtp_connections: AtomicU64,
    smtp_accepted: AtomicU64,
    smtp_rejected: AtomicU64,
    /// Replies sent, by code: index `code - 200` for codes 200 to 599.
    smtp_replies: Box<[AtomicU64]>,
    /// The POP3 listener's connections and commands.
    pop3: ProtocolCounters,
    /// The IMAP listener's connections and commands.
    imap: ProtocolCounters,
    /// Shared with the retention sweeper, which runs on the store alone.
    retention: Arc<retention::Counters>,
}

/// What a mail protocol's listener counts: connections (those refused over the limit too),
/// and commands by name. The names are the front-end's own fixed list, so the count of
/// labels is bounded.
#[derive(Debug, Default)]
pub struct ProtocolCounters {
    connections: AtomicU64,
    commands: Mutex<BTreeMap<&'static str, u64>>,
}

impl ProtocolCounters {
    /// Counts a connection accepted.
    pub fn connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a command.
    pub fn command(&self, name: &'static str) {
        let mut commands = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        *commands.entry(name).or_default() += 1;
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Every command received at least once, with how many times, by name.
    pub fn commands(&self) -> Vec<(&'static str, u64)> {
        let commands = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        commands.iter().map(|(k, v)| (*k, *v)).collect()
    }
}

/// The lowest and highest reply codes counted (RFC 5321 4.2: 2yz to 5yz).
const FIRST_CODE: u16 = 200;
const LAST_CODE: u16 = 599;

/// The SMTP counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SmtpCounts {
    /// Connections the SMTP listener accepted, those refused over the limit too.
    pub connections: u64,
    /// Messages acknowledged with `250` after DATA (stored).
    pub accepted: u64,
    /// Messages refused: a 4xx or 5xx answer to MAIL, RCPT or DATA.
    pub rejected: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            smtp_connections: AtomicU64::new(0),
            smtp_accepted: AtomicU64::new(0),
            smtp_rejected: AtomicU64::new(0),
            smtp_replies: (FIRST_CODE..=LAST_CODE)
                .map(|_| AtomicU64::new(0))
                .collect(),
            pop3: ProtocolCounters::default(),
            imap: ProtocolCounters::default(),
            retention: Arc::default(),
        }
    }
}

impl Stats {
    /// How long this server has run.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Counts a connection the SMTP listener accepted.
    pub fn smtp_connection(&self) {
        self.smtp_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a message the SMTP front-end stored and acknowledged.
    pub fn smtp_accepted(&self) {
        self.smtp_accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a message the SMTP front-end refused.
    pub fn smtp_rejected(&self) {
        self.smtp_rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a reply sent to an SMTP client (codes outside 200-599 are not counted; the
    /// server sends none).
    pub fn smtp_reply(&self, code: u16) {
        if let Some(n) = code
            .checked_sub(FIRST_CODE)
            .and_then(|i| self.smtp_replies.get(usize::from(i)))
        {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every reply code sent at least once, with how many times, in code order.
    pub fn smtp_replies(&self) -> Vec<(u16, u64)> {
        (FIRST_CODE..=LAST_CODE)
            .zip(self.smtp_replies.iter())
            .map(|(code, n)| (code, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// What the POP3 listener counts.
    pub fn pop3(&self) -> &ProtocolCounters {
        &self.pop3
    }

    /// What retention removed, and the sweeper's passes; the server hands it to the sweeper.
    pub fn retention(&self) -> &Arc<retention::Counters> {
        &self.retention
    }

    /// What the IMAP listener counts.
    pub fn imap(&self) -> &ProtocolCounters {
        &self.imap
    }

    /// The SMTP counters now.
    pub fn smtp(&self) -> SmtpCounts {
        SmtpCounts {
            connections: self.smtp_connections.load(Ordering::Relaxed),
            accepted: self.smtp_accepted.load(Ordering::Relaxed),
            rejected: self.smtp_rejected.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_zero() {
        let s = Stats::default();
        assert_eq!(s.smtp(), SmtpCounts::default());
        s.smtp_connection();
        s.smtp_connection();
        s.smtp_accepted();
        s.smtp_rejected();
        assert_eq!(
            s.smtp(),
            SmtpCounts {
                connections: 2,
                accepted: 1,
                rejected: 1
            }
        );
        assert!(s.uptime() < Duration::from_secs(3600));
        s.smtp_reply(250);
        s.smtp_reply(250);
        s.smtp_reply(599);
        s.smtp_reply(200);
        s.smtp_reply(199);
        s.smtp_reply(600);
        assert_eq!(s.smtp_replies(), [(200, 1), (250, 2), (599, 1)]);
        s.pop3().connection();
        s.pop3().command("STAT");
        s.pop3().command("RETR");
        s.pop3().command("STAT");
        assert_eq!(s.pop3().connections(), 1);
        assert_eq!(s.pop3().commands(), [("RETR", 1), ("STAT", 2)]);
    }
}
