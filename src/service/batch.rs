//! Group commit of store transactions: deliveries that arrive together are written in one sled
//! transaction, as [`super::durable`] shares one `fsync` among them. A transaction over the
//! mail trees costs about the same for one message as for a hundred (sled takes its locks,
//! checks and applies the whole write set at once, and every waiter on those locks is a futex
//! wait and a thread switch), so the cost of a delivery falls as more arrive at once.
//!
//! A leader/follower combiner on the blocking threads the deliveries already run on: a caller
//! queues its item; if no commit runs it becomes the leader, takes the queue (up to
//! [`MAX_BATCH`] items or [`MAX_BATCH_BYTES`], at least one), commits it in one transaction
//! and hands every caller its own result; otherwise it waits for its result, or for the
//! leader to finish and leave the queue to it. A leader leads until its own item is done, then
//! steps down and wakes the others, one of which leads the items queued meanwhile. No thread
//! of its own: an idle server has no batching thread, and a lone delivery is committed at once
//! by its own caller, with no wait for company.
//!
//! A batch that fails is tried again item by item, so each caller gets its own result: one
//! message that cannot be written (a codec error, a full disk) fails alone, not the others
//! queued with it. Results are posted only once the transaction has returned, so a caller that
//! then waits for [`Service::flushed`](super::Service::flushed) acknowledges a message that is
//! on disk, as before. A leader that panics posts an error for every item it held (the
//! [`Leading`] guard), so no follower waits forever.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};

/// Most items committed in one transaction.
pub(super) const MAX_BATCH: usize = 256;
/// Most bytes (as the caller weighs its items: message sources) committed in one
/// transaction, unless a single item is larger: sled holds a transaction's writes in memory.
pub(super) const MAX_BATCH_BYTES: usize = 4 << 20;

/// One queued item and the number of its caller's ticket.
struct Queued<T> {
    ticket: u64,
    weight: usize,
    item: T,
}

#[derive(Default)]
struct State<T> {
    /// The next ticket number.
    next: u64,
    /// Items waiting for a leader, oldest first.
    queue: VecDeque<Queued<T>>,
    /// Items committed (or failed), by ticket, waiting for their callers to take them back.
    done: HashMap<u64, (T, Result<()>)>,
    /// Whether a leader is committing (at most one is).
    leading: bool,
}

/// Combines the store writes of concurrent callers into shared transactions.
pub(super) struct Batcher<T> {
    state: Mutex<State<T>>,
    /// Signalled when results are posted and when a leader steps down.
    changed: Condvar,
}

impl<T> Default for Batcher<T> {
    fn default() -> Self {
        Batcher {
            state: Mutex::new(State {
                next: 0,
                queue: VecDeque::new(),
                done: HashMap::new(),
                leading: false,
            }),
            changed: Condvar::new(),
        }
    }
}

/// The items a leader holds while it commits them. When the leader panics, its drop posts an
/// error for each (but the leader's own, whose caller is the panicking thread), steps down and
/// wakes the waiters, as [`super::durable`]'s `Running` does for the flusher.
struct Leading<'a, T> {
    batcher: &'a Batcher<T>,
    own: u64,
    batch: Vec<Queued<T>>,
}

impl<T> Drop for Leading<'_, T> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut s = self.batcher.lock();
            for q in self.batch.drain(..) {
                if q.ticket != self.own {
                    let failed = Err(Error::Internal("a batch of store writes panicked".into()));
                    s.done.insert(q.ticket, (q.item, failed));
                }
            }
            s.leading = false;
            drop(s);
            self.batcher.changed.notify_all();
        }
    }
}

impl<T> Batcher<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock; a poisoned one still holds consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Commits `item` with whatever other callers queue at the same time, and returns it with
    /// its own result. `weight` is its size against [`MAX_BATCH_BYTES`]. The leader calls
    /// `commit_all` for a batch of several items (all written or none), and `commit_one` for
    /// each item alone: for a batch of one, and for each item of a batch that failed. Every
    /// caller must pass functions that do the same.
    ///
    /// # Errors
    /// What the single commit returned for this item (a batch that failed is committed again
    /// item by item), or [`Error::Internal`] when the leader that held it panicked.
    pub(super) fn commit(
        &self,
        item: T,
        weight: usize,
        commit_all: impl Fn(&[&T]) -> Result<()>,
        commit_one: impl Fn(&T) -> Result<()>,
    ) -> (T, Result<()>) {
        let mut s = self.lock();
        let own = s.next;
        s.next += 1;
        s.queue.push_back(Queued {
            ticket: own,
            weight,
            item,
        });
        loop {
            if let Some(done) = s.done.remove(&own) {
                return done;
            }
            if s.leading {
                s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Lead: commit batches until this caller's item is done.
            s.leading = true;
            let mut leading = Leading {
                batcher: self,
                own,
                batch: take_batch(&mut s.queue),
            };
            drop(s);
            let results = commit_batch(&leading.batch, &commit_all, &commit_one);
            s = self.lock();
            for (q, r) in leading.batch.drain(..).zip(results) {
                s.done.insert(q.ticket, (q.item, r));
            }
            // Step down: the next turn returns this caller's result, or, when more than a
            // batch was queued ahead of it, leads again (nobody else can take the lock first
            // and lead).
            s.leading = false;
            self.changed.notify_all();
        }
    }
}

/// The oldest queued items, up to [`MAX_BATCH`] and [`MAX_BATCH_BYTES`] (at least one).
fn take_batch<T>(queue: &mut VecDeque<Queued<T>>) -> Vec<Queued<T>> {
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    while let Some(q) = queue.front() {
        if !batch.is_empty()
            && (batch.len() == MAX_BATCH || bytes.saturating_add(q.weight) > MAX_BATCH_BYTES)
        {
            break;
        }
        bytes = bytes.saturating_add(q.weight);
        batch.extend(queue.pop_front());
    }
    batch
}

/// The result of each item of a batch: one transaction for all, or, when that fails (or there
/// is one item), one for each.
fn commit_batch<T>(
    batch: &[Queued<T>],
    commit_all: &impl Fn(&[&T]) -> Result<()>,
    commit_one: &impl Fn(&T) -> Result<()>,
) -> Vec<Result<()>> {
    if batch.len() > 1 {
        let items: Vec<&T> = batch.iter().map(|q| &q.item).collect();
        if commit_all(&items).is_ok() {
            return batch.iter().map(|_| Ok(())).collect();
        }
    }
    batch.iter().map(|q| commit_one(&q.item)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::sync::{Arc, Barrier};

    /// A fake store: remembers what was committed, and in how many transactions.
    #[derive(Default)]
    struct Log {
        committed: Mutex<Vec<u32>>,
        transactions: AtomicUsize,
    }

    impl Log {
        /// Odd items cannot be written: a batch holding one fails whole, as a transaction does.
        fn all(&self, items: &[&u32]) -> Result<()> {
            self.transactions.fetch_add(1, Relaxed);
            if items.iter().any(|i| **i % 2 == 1) {
                return Err(Error::StorageFull);
            }
            self.committed.lock().unwrap().extend(items.iter().copied());
            Ok(())
        }

        fn one(&self, item: &u32) -> Result<()> {
            self.all(&[item])
        }
    }

    /// Runs `callers` threads at once, each committing its own numbers, and returns what each
    /// got back.
    fn run(
        batcher: &Arc<Batcher<u32>>,
        log: &Arc<Log>,
        callers: u32,
        each: u32,
    ) -> Vec<(u32, bool)> {
        let start = Arc::new(Barrier::new(callers as usize));
        let threads: Vec<_> = (0..callers)
            .map(|c| {
                let (batcher, log, start) = (batcher.clone(), log.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    (0..each)
                        .map(|i| {
                            let item = c * each + i;
                            let (back, r) =
                                batcher.commit(item, 1, |b| log.all(b), |one| log.one(one));
                            assert_eq!(back, item, "each caller gets its own item back");
                            (item, r.is_ok())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut got: Vec<(u32, bool)> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        got.sort();
        got
    }

    #[test]
    fn concurrent_callers_each_get_their_own_result_and_a_failed_batch_fails_only_its_culprits() {
        let (batcher, log) = (Arc::new(Batcher::default()), Arc::new(Log::default()));
        let got = run(&batcher, &log, 16, 200);
        assert_eq!(got.len(), 3200);
        for (item, ok) in &got {
            assert_eq!(*ok, item % 2 == 0, "item {item}");
        }
        let mut committed = log.committed.lock().unwrap().clone();
        committed.sort();
        let even: Vec<u32> = (0..3200).filter(|i| i % 2 == 0).collect();
        assert_eq!(committed, even, "every good item once, no other");
        let s = batcher.lock();
        assert!(s.queue.is_empty() && s.done.is_empty() && !s.leading);
    }

    #[test]
    fn callers_that_arrive_during_a_commit_share_the_next_one() {
        let batcher: Arc<Batcher<u32>> = Arc::new(Batcher::default());
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let entered = Arc::new(Barrier::new(2));
        // The first caller commits alone, and slowly: until 15 more have queued behind it.
        let first = {
            let (batcher, sizes, entered) = (batcher.clone(), sizes.clone(), entered.clone());
            std::thread::spawn(move || {
                batcher.commit(
                    0,
                    1,
                    |_| Ok(()),
                    |_| {
                        sizes.lock().unwrap().push(1);
                        entered.wait();
                        while batcher.lock().queue.len() < 15 {
                            std::thread::yield_now();
                        }
                        Ok(())
                    },
                )
            })
        };
        entered.wait();
        let others: Vec<_> = (1..16u32)
            .map(|item| {
                let (batcher, sizes) = (batcher.clone(), sizes.clone());
                std::thread::spawn(move || {
                    let all = |b: &[&u32]| {
                        sizes.lock().unwrap().push(b.len());
                        Ok(())
                    };
                    batcher.commit(item, 1, all, |_| panic!("committed alone"))
                })
            })
            .collect();
        let (back, r) = first.join().unwrap();
        assert!(back == 0 && r.is_ok());
        for (item, t) in (1..16u32).zip(others) {
            let (back, r) = t.join().unwrap();
            assert_eq!(back, item);
            assert!(r.is_ok());
        }
        assert_eq!(
            *sizes.lock().unwrap(),
            [1, 15],
            "one transaction for the 15"
        );
    }

    #[test]
    fn a_leader_that_panics_fails_the_items_it_held_and_leaves_no_one_waiting() {
        let batcher: Arc<Batcher<u32>> = Arc::new(Batcher::default());
        // The first caller commits alone and slowly, until two more have queued behind it;
        // whichever of them leads next holds both, and its transaction panics.
        let entered = Arc::new(Barrier::new(2));
        let first = {
            let (batcher, entered) = (batcher.clone(), entered.clone());
            std::thread::spawn(move || {
                batcher.commit(
                    0,
                    1,
                    |_| Ok(()),
                    |_| {
                        entered.wait();
                        while batcher.lock().queue.len() < 2 {
                            std::thread::yield_now();
                        }
                        Ok(())
                    },
                )
            })
        };
        entered.wait();
        let others: Vec<_> = (1..=2u32)
            .map(|item| {
                let batcher = batcher.clone();
                std::thread::spawn(move || {
                    batcher.commit(item, 1, |_| panic!("a transaction that panics"), |_| Ok(()))
                })
            })
            .collect();
        assert!(first.join().unwrap().1.is_ok());
        let outcomes: Vec<_> = others.into_iter().map(|t| t.join()).collect();
        let panicked = outcomes.iter().filter(|o| o.is_err()).count();
        let failed: Vec<u32> = outcomes
            .into_iter()
            .flatten()
            .map(|(item, r)| {
                assert!(matches!(r, Err(Error::Internal(_))), "{r:?}");
                item
            })
            .collect();
        assert_eq!(panicked, 1, "the leader's own caller sees its panic");
        assert_eq!(failed.len(), 1, "the other gets an error, not a hang");
        // And a later caller is served.
        let (_, r) = batcher.commit(3, 1, |_| Ok(()), |_| Ok(()));
        assert!(r.is_ok());
        let s = batcher.lock();
        assert!(s.queue.is_empty() && s.done.is_empty() && !s.leading);
    }

    #[test]
    fn batches_are_capped_by_count_and_weight_but_take_at_least_one_item() {
        let mut queue: VecDeque<Queued<u32>> = (0..300)
            .map(|i| Queued {
                ticket: i,
                weight: 10,
                item: i as u32,
            })
            .collect();
        assert_eq!(take_batch(&mut queue).len(), MAX_BATCH);
        let mut heavy: VecDeque<Queued<u32>> = (0..3)
            .map(|i| Queued {
                ticket: i,
                weight: MAX_BATCH_BYTES / 2 + 1,
                item: i as u32,
            })
            .collect();
        assert_eq!(take_batch(&mut heavy).len(), 1);
        heavy.front_mut().unwrap().weight = MAX_BATCH_BYTES * 2;
        assert_eq!(take_batch(&mut heavy).len(), 1);
    }
}
