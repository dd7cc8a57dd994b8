//! Failed-login throttling: at most `max` failures per account address within `window`.
//!
//! An attempt is counted *before* its password is checked and forgiven on success, so a burst
//! of concurrent guesses cannot slip past the limit while their hashes are being computed.
//! Kept in memory: a restart forgets the counts, which is acceptable for a test server.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Per-address sliding-window counter of failed logins.
#[derive(Debug)]
pub struct LoginLimiter {
    max: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    /// At most `max` failures per key within `window`.
    pub fn new(max: usize, window: Duration) -> Self {
        LoginLimiter {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt for `key` at `now`, or refuses it with the time until the oldest
    /// counted failure leaves the window.
    pub fn begin(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let q = map.entry(key.to_owned()).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
        if q.len() >= self.max {
            let oldest = *q.front().expect("max >= 1 entries");
            let wait = self.window.saturating_sub(now.duration_since(oldest));
            return Err(wait.max(Duration::from_secs(1)));
        }
        q.push_back(now);
        Ok(())
    }

    /// Forgets every failure of `key` (after a successful login).
    pub fn succeed(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Drops keys whose failures have all left the window, so memory stays bounded by the
    /// addresses tried in the last window.
    pub fn prune(&self, now: Instant) {
        let window = self.window;
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
    }

    /// Number of addresses currently tracked.
    pub fn tracked(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_max_until_window_passes() {
        let l = LoginLimiter::new(5, Duration::from_secs(900));
        let t0 = Instant::now();
        for i in 0..5 {
            l.begin("a", t0 + Duration::from_secs(i)).unwrap();
        }
        let wait = l.begin("a", t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(890));
        assert!(l.begin("b", t0).is_ok(), "other keys unaffected");
        // The first failure leaves the window at t0 + 900 s.
        assert!(l.begin("a", t0 + Duration::from_secs(900)).is_ok());
    }

    #[test]
    fn success_forgives_and_prune_forgets_old_keys() {
        let l = LoginLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        l.begin("a", t0).unwrap();
        l.begin("a", t0).unwrap();
        assert!(l.begin("a", t0).is_err());
        l.succeed("a");
        assert!(l.begin("a", t0).is_ok());
        l.begin("b", t0).unwrap();
        l.prune(t0 + Duration::from_secs(61));
        assert_eq!(l.tracked(), 0);
    }
}
