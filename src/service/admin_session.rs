//! The operator's browser sessions: a random id handed out in exchange for the admin token, so
//! that a browser never has to keep the token itself. Kept in memory only, as their SHA-256
//! digests (like user session tokens): a restart ends them all, which is what an operator
//! expects of a test server. Bounded in number, the oldest going first, so a script that opens
//! sessions in a loop cannot grow the server's memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::info;

use super::{Service, token};
use crate::error::{Error, Result};
use crate::store::keys::DIGEST_LEN;

/// Most operator sessions kept at once; opening one more ends the oldest.
pub const MAX_ADMIN_SESSIONS: usize = 1_000;
/// Longest an operator session lasts (shorter when `--session-ttl` is): the admin token opens
/// every message, so a browser's stand-in for it does not outlive a working day.
pub const MAX_ADMIN_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// A new operator session: the id to hand to the browser (shown only here) and how long it
/// lasts.
#[derive(Debug, Clone)]
pub struct AdminGrant {
    pub id: String,
    pub ttl: Duration,
}

/// The set of live operator sessions, by digest, with when each expires.
#[derive(Debug)]
pub(super) struct AdminSessions {
    ttl: Duration,
    max: usize,
    live: Mutex<HashMap<[u8; DIGEST_LEN], Instant>>,
}

impl AdminSessions {
    /// Sessions lasting `ttl`, at most `max` of them.
    pub(super) fn new(ttl: Duration, max: usize) -> Self {
        AdminSessions {
            ttl,
            max,
            live: Mutex::new(HashMap::new()),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; DIGEST_LEN], Instant>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session at `now`; ends expired ones, and the oldest when there are too many.
    pub(super) fn open(&self, now: Instant) -> AdminGrant {
        let (id, digest) = token::generate();
        let mut live = self.live();
        live.retain(|_, expires| *expires > now);
        while live.len() >= self.max {
            // Every session lasts as long, so the first to expire is the oldest.
            let Some(oldest) = live.iter().min_by_key(|(_, e)| **e).map(|(d, _)| *d) else {
                break;
            };
            live.remove(&oldest);
        }
        live.insert(digest, now + self.ttl);
        AdminGrant { id, ttl: self.ttl }
    }

    /// Whether `id` names a session that is still open at `now`.
    pub(super) fn check(&self, id: &str, now: Instant) -> bool {
        let digest = token::digest(id);
        let mut live = self.live();
        match live.get(&digest) {
            Some(expires) if *expires > now => true,
            Some(_) => {
                live.remove(&digest);
                false
            }
            None => false,
        }
    }

    /// Ends the session `id`; whether it was open.
    pub(super) fn close(&self, id: &str) -> bool {
        self.live().remove(&token::digest(id)).is_some()
    }

    /// Forgets expired sessions; returns how many.
    pub(super) fn prune(&self, now: Instant) -> usize {
        let mut live = self.live();
        let before = live.len();
        live.retain(|_, expires| *expires > now);
        before - live.len()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.live().len()
    }
}

impl Service {
    /// Opens an operator session, for a caller that has shown the admin token (the front-end
    /// checks it with [`Service::check_admin`] first). The id is random, not the token.
    pub fn open_admin_session(&self) -> AdminGrant {
        let grant = self.inner.admin_sessions.open(Instant::now());
        info!("operator session opened");
        grant
    }

    /// Checks an operator session id.
    ///
    /// # Errors
    /// [`Error::AdminOnly`] when the id is unknown, expired or ended (or the server restarted
    /// since it was given).
    pub fn check_admin_session(&self, id: &str) -> Result<()> {
        if self.inner.admin_sessions.check(id, Instant::now()) {
            Ok(())
        } else {
            Err(Error::AdminOnly)
        }
    }

    /// Ends an operator session (nothing happens for an id that is not open).
    pub fn close_admin_session(&self, id: &str) {
        if self.inner.admin_sessions.close(id) {
            info!("operator session closed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_works_until_it_expires_or_is_closed() {
        let sessions = AdminSessions::new(Duration::from_secs(60), 10);
        let t0 = Instant::now();
        let a = sessions.open(t0);
        assert!(a.id.len() > 40 && a.ttl == Duration::from_secs(60));
        assert!(sessions.check(&a.id, t0 + Duration::from_secs(59)));
        assert!(!sessions.check(&a.id, t0 + Duration::from_secs(60)));
        assert_eq!(
            sessions.len(),
            0,
            "an expired session is forgotten when seen"
        );
        let b = sessions.open(t0);
        assert!(!sessions.check("fm_not-a-session", t0));
        assert!(sessions.close(&b.id));
        assert!(!sessions.check(&b.id, t0) && !sessions.close(&b.id));
    }

    #[test]
    fn the_oldest_session_goes_beyond_the_bound() {
        let sessions = AdminSessions::new(Duration::from_secs(60), 3);
        let t0 = Instant::now();
        let ids: Vec<String> = (0..5)
            .map(|i| sessions.open(t0 + Duration::from_secs(i)).id)
            .collect();
        assert_eq!(sessions.len(), 3);
        let now = t0 + Duration::from_secs(5);
        let open: Vec<bool> = ids.iter().map(|id| sessions.check(id, now)).collect();
        assert_eq!(open, [false, false, true, true, true]);
        assert_eq!(sessions.prune(t0 + Duration::from_secs(63)), 2);
        assert_eq!(sessions.len(), 1);
    }
}
