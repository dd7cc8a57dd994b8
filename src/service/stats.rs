//! Counters for `GET /api/v1/admin/stats` that the store does not keep: uptime and what the
//! SMTP front-end counts. Lock-free, owned by the [`super::Service`], reset at start-up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Live counters of this server process.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    smtp_connections: AtomicU64,
    smtp_accepted: AtomicU64,
    smtp_rejected: AtomicU64,
}

/// The SMTP counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SmtpCounts {
    /// Connections accepted by the SMTP listener.
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
    }
}
