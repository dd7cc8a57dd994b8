//! Durable acknowledgements with group commit: [`Service::flushed`] returns once everything
//! written before the call is on disk. Concurrent callers share flushes: while one flush runs,
//! every caller that arrives waits for the *next* one, which then covers all of them, so N
//! sessions acknowledging at once cost about two `fsync`s rather than N in a row.
//!
//! The flushes run on one blocking thread at a time (sled's `flush`, not `flush_async`: see
//! sled issue 1241), started on demand and ending when nobody waits. The thread holds the
//! service only while it flushes, never when it wakes the callers, so once the last caller
//! is answered and the server stops, the store is released at once (a restart in the same
//! process finds its lock free).

use std::sync::{Arc, Mutex, Weak};

use tokio::sync::watch;
use tracing::error;

use super::{Inner, Service};
use crate::error::{Error, Result};

/// Flush generations: a flush takes the next generation number when it starts, and covers
/// every write finished before that moment.
#[derive(Debug, Default)]
struct State {
    /// The generation of the last flush started.
    started: u64,
    /// The highest generation some caller waits for.
    wanted: u64,
    /// Whether a flushing thread is running (at most one is).
    running: bool,
}

/// The shared flush state of a [`Service`].
#[derive(Debug)]
pub(super) struct GroupFlush {
    state: Mutex<State>,
    /// The last finished generation and whether it succeeded.
    done: watch::Sender<(u64, bool)>,
}

impl Default for GroupFlush {
    fn default() -> Self {
        GroupFlush {
            state: Mutex::default(),
            done: watch::Sender::new((0, true)),
        }
    }
}

/// Marks the flushing thread as gone even if it panics, so later callers start a new one
/// instead of waiting forever; a panicked flush counts as failed.
struct Running<'a>(&'a GroupFlush);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut s = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
            s.running = false;
            self.0.done.send_replace((s.started, false));
        }
    }
}

impl Service {
    /// Waits until every write this process finished before the call is on disk.
    ///
    /// # Errors
    /// [`Error::StorageFull`] when the flush that covers this call failed with an I/O error (a
    /// full or failing disk), [`Error::Internal`] when it failed otherwise (logged either way).
    pub async fn flushed(&self) -> Result<()> {
        let flush = &self.inner.flush;
        let mut done = flush.done.subscribe();
        let need = {
            let mut s = flush.state.lock().unwrap_or_else(|p| p.into_inner());
            // A flush running now may have started before our write: wait for the next one.
            let need = s.started + 1;
            s.wanted = s.wanted.max(need);
            if !s.running {
                s.running = true;
                let (flush, service) = (flush.clone(), Arc::downgrade(&self.inner));
                tokio::task::spawn_blocking(move || flush.flush_while_wanted(&service));
            }
            need
        };
        let (_, ok) = *done
            .wait_for(|(generation, _)| *generation >= need)
            .await
            .map_err(|_| Error::Internal("the flusher is gone".into()))?;
        if ok {
            Ok(())
        } else if self.inner.space.write_failed() {
            Err(Error::StorageFull)
        } else {
            Err(Error::Internal("flushing the store failed".into()))
        }
    }
}

impl GroupFlush {
    /// The flushing thread: flushes until no caller waits for a later generation.
    fn flush_while_wanted(&self, service: &Weak<Inner>) {
        let _running = Running(self);
        loop {
            let generation = {
                let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                if s.wanted <= s.started {
                    s.running = false;
                    return;
                }
                s.started += 1;
                s.started
            };
            // A service already gone has nobody left to answer.
            let ok = service
                .upgrade()
                .is_some_and(|inner| match inner.store.flush() {
                    Ok(()) => true,
                    Err(e) => {
                        match inner.space.write_failure(Error::Store(e)) {
                            // A full or failing disk: the guard logged it, once.
                            Error::StorageFull => {}
                            e => error!(error = %e, "flushing the store failed"),
                        }
                        false
                    }
                });
            self.done.send_replace((generation, ok));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::Store;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_all_return_and_share_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8 << 20).unwrap();
        let svc = Service::new(store, Config::default().service);
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let svc = svc.clone();
            tasks.push(tokio::spawn(async move { svc.flushed().await }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        // The flusher answers the callers first and only then finds nobody waiting: give it a
        // moment to stop.
        let state = || {
            let s = svc.inner.flush.state.lock().unwrap();
            (s.running, s.started)
        };
        for _ in 0..500 {
            if !state().0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let (running, started) = state();
        assert!(!running, "the flusher stops when nobody waits");
        assert!((1..=64).contains(&started), "flushes: {started}");
        // And it starts again for a later caller.
        svc.flushed().await.unwrap();
    }
}
