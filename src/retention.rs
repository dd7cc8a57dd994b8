//! Retention: deleting old mail. One synchronous function, [`purge_older_than`], serves the
//! background [`sweeper`], `fakemail purge` and the admin purge endpoint; [`enforce_cap`]
//! keeps `--max-messages`, after each delivery and in the sweeper (so that a lower cap takes
//! effect without waiting for mail). Both read the arrival-time index, so their cost follows
//! what they delete, not the size of the store. [`Counters`] keeps what was removed, and why,
//! for `GET /metrics`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{error, info};

use crate::error::Result;
use crate::store::Store;
use crate::store::mail::{Gone, Removed};
use crate::time::Timestamp;

/// Messages read from the arrival index at a time.
const BATCH: usize = 512;
/// Messages deleted per transaction. Every sled transaction writes out the log buffer, so one
/// transaction per message made sweeps I/O-bound (on 2 cores, 100,000 messages took 10 to 14
/// s; 16 per transaction, 5 to 7 s). Much larger transactions gain little and hold sled's
/// global transaction lock longer, stalling deliveries meanwhile.
const TXN: usize = 16;

/// Who hears of the messages retention deletes: the service, which tells waits and event
/// streams (`message.deleted`). `fakemail purge` of a stopped store has nobody to tell.
pub trait Observer: Send + Sync {
    /// Messages just deleted, with their copies.
    fn deleted(&self, gone: Vec<Gone>);
}

/// Deletes one transaction's worth of messages and tells `observer`.
fn delete(store: &Store, ids: &[u64], observer: Option<&dyn Observer>) -> Result<Removed> {
    let gone = store.delete_messages_returning(ids)?;
    let removed = gone.iter().map(|g| g.removed).sum();
    if let Some(o) = observer {
        o.deleted(gone);
    }
    Ok(removed)
}

/// Deletes every message received at or before `cutoff`, with all its copies, and tells
/// `observer`. With `dry_run` nothing is deleted and the report says what would go.
/// `progress` is called after each batch with the running total. Blocking.
pub fn purge_older_than(
    store: &Store,
    cutoff: Timestamp,
    dry_run: bool,
    observer: Option<&dyn Observer>,
    progress: &mut dyn FnMut(Removed),
) -> Result<Removed> {
    if dry_run {
        return Ok(store.measure_before(cutoff)?);
    }
    let mut total = Removed::default();
    loop {
        let batch = store.received_before(cutoff, BATCH)?;
        if batch.is_empty() {
            if total.messages > 0 {
                reclaim(store)?;
            }
            return Ok(total);
        }
        for ids in batch.chunks(TXN) {
            total += delete(store, ids, observer)?;
        }
        progress(total);
    }
}

/// Gives back the disk of the sources just deleted (the store's segment files), logging what
/// it freed.
fn reclaim(store: &Store) -> Result<()> {
    let r = store.reclaim_bodies()?;
    if r.segments > 0 {
        info!(
            files = r.segments,
            bytes = r.bytes,
            moved = r.moved,
            "message files of deleted mail removed"
        );
    }
    Ok(())
}

/// Deletes the oldest messages while more than `max` are stored, but never `keep`: the
/// message a delivery has just stored stays, even when it is stamped older than mail already
/// there (a clock set back). Trims run one at a time ([`Store::trim_guard`]). Logs what it
/// removed and tells `observer`. Blocking.
pub fn enforce_cap(
    store: &Store,
    max: u64,
    keep: Option<u64>,
    observer: Option<&dyn Observer>,
) -> Result<Removed> {
    let _one_at_a_time = store.trim_guard();
    let mut total = Removed::default();
    loop {
        let count = store.message_count()?;
        if count <= max {
            break;
        }
        let excess = (count - max).min(BATCH as u64) as usize;
        let oldest: Vec<u64> = store
            .oldest_messages(excess + 1)?
            .into_iter()
            .filter(|id| Some(*id) != keep)
            .take(excess)
            .collect();
        if oldest.is_empty() {
            break;
        }
        for ids in oldest.chunks(TXN) {
            total += delete(store, ids, observer)?;
        }
    }
    if total.messages > 0 {
        info!(
            removed = total.messages,
            bytes = total.bytes,
            cap = max,
            "message cap: oldest removed"
        );
    }
    Ok(total)
}

/// The cutoff for messages older than `age` at `now`. Ages count in whole seconds, and a part
/// of a second counts as a whole one, so a cutoff never takes mail younger than asked (the
/// command line and the API refuse such ages anyway; rounded down, `500ms` would be `0s`).
pub fn cutoff(now: Timestamp, age: Duration) -> Timestamp {
    let secs = age.as_secs() + u64::from(age.subsec_nanos() > 0);
    Timestamp(now.0.saturating_sub(secs))
}

/// Why messages were removed: the `reason` label of the retention metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Older than `--retention` (the sweeper).
    Expired,
    /// Beyond `--max-messages` (after a delivery, or in the sweeper).
    Cap,
    /// `POST /api/v1/admin/purge` (which `fakemail purge` uses while the server runs).
    Purge,
}

impl Reason {
    /// Every reason, in the order [`Reason::name`] and [`Counters`] use.
    pub const ALL: [Reason; 3] = [Reason::Expired, Reason::Cap, Reason::Purge];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Expired => "expired",
            Reason::Cap => "cap",
            Reason::Purge => "purge",
        }
    }
}

/// What retention removed in this process, by [`Reason`], and the sweeper passes that ran.
/// Lock-free; shared by the sweeper, deliveries (the cap) and the purge endpoint.
#[derive(Debug, Default)]
pub struct Counters {
    passes: AtomicU64,
    failed_passes: AtomicU64,
    /// Indexed by `Reason as usize`.
    messages: [AtomicU64; 3],
    bytes: [AtomicU64; 3],
}

impl Counters {
    /// Counts what one removal freed.
    pub fn removed(&self, reason: Reason, r: Removed) {
        self.messages[reason as usize].fetch_add(r.messages, Ordering::Relaxed);
        self.bytes[reason as usize].fetch_add(r.bytes, Ordering::Relaxed);
    }

    /// What was removed for `reason` so far.
    pub fn removed_for(&self, reason: Reason) -> Removed {
        Removed {
            messages: self.messages[reason as usize].load(Ordering::Relaxed),
            bytes: self.bytes[reason as usize].load(Ordering::Relaxed),
        }
    }

    /// Counts a finished sweeper pass.
    fn pass(&self, ok: bool) {
        self.passes.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failed_passes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sweeper passes finished, and how many of them failed.
    pub fn passes(&self) -> (u64, u64) {
        (
            self.passes.load(Ordering::Relaxed),
            self.failed_passes.load(Ordering::Relaxed),
        )
    }
}

/// What the [`sweeper`] enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Messages older than this go (`None`: kept forever).
    pub retention: Option<Duration>,
    /// At most this many messages are kept (0: no cap).
    pub max_messages: u64,
}

impl Policy {
    /// Whether there is anything to enforce.
    pub fn is_active(&self) -> bool {
        self.retention.is_some() || self.max_messages > 0
    }
}

/// Applies `policy` at start-up and then every `interval` (or when `wake` is notified) until
/// `stop` resolves: expired messages go, then the oldest beyond the cap. Each pass runs on the
/// blocking pool, logs what it removed and counts it in `counters`.
pub async fn sweeper(
    store: Store,
    policy: Policy,
    interval: Duration,
    wake: Arc<Notify>,
    counters: Arc<Counters>,
    observer: Arc<dyn Observer>,
    stop: impl Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
            _ = wake.notified() => {}
        }
        let (s, c, o) = (store.clone(), counters.clone(), observer.clone());
        let pass = tokio::task::spawn_blocking(move || {
            sweep(&s, policy, Timestamp::now(), &c, o.as_ref())
        });
        let ok = match pass.await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                error!(error = %e, "retention sweep failed");
                false
            }
            Err(e) => {
                error!(error = %e, "retention sweep task failed");
                false
            }
        };
        counters.pass(ok);
    }
}

/// One pass of the sweeper at `now`, logging and counting what it removed. Blocking.
fn sweep(
    store: &Store,
    policy: Policy,
    now: Timestamp,
    counters: &Counters,
    observer: &dyn Observer,
) -> Result<()> {
    if let Some(age) = policy.retention {
        let r = purge_older_than(store, cutoff(now, age), false, Some(observer), &mut |_| {})?;
        counters.removed(Reason::Expired, r);
        if r.messages > 0 {
            info!(messages = r.messages, bytes = r.bytes, retention = %humantime::format_duration(age), "retention: expired messages removed");
        }
    }
    if policy.max_messages > 0 {
        let r = enforce_cap(store, policy.max_messages, None, Some(observer))?;
        counters.removed(Reason::Cap, r);
        // The cap also trims after each delivery: reclaim whatever that freed too.
        reclaim(store)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_count_whole_seconds_and_round_parts_up() {
        let now = Timestamp(1_000);
        assert_eq!(cutoff(now, Duration::ZERO), now);
        assert_eq!(cutoff(now, Duration::from_secs(10)), Timestamp(990));
        assert_eq!(cutoff(now, Duration::from_millis(500)), Timestamp(999));
        assert_eq!(cutoff(now, Duration::from_millis(1_500)), Timestamp(998));
        assert_eq!(cutoff(now, Duration::from_secs(5_000)), Timestamp(0));
    }

    #[test]
    fn counters_keep_each_reason_apart() {
        let c = Counters::default();
        c.removed(
            Reason::Cap,
            Removed {
                messages: 2,
                bytes: 30,
            },
        );
        c.removed(
            Reason::Cap,
            Removed {
                messages: 1,
                bytes: 5,
            },
        );
        c.pass(true);
        c.pass(false);
        assert_eq!(
            c.removed_for(Reason::Cap),
            Removed {
                messages: 3,
                bytes: 35
            }
        );
        assert_eq!(c.removed_for(Reason::Expired), Removed::default());
        assert_eq!(c.passes(), (2, 1));
        let names: Vec<_> = Reason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names, ["expired", "cap", "purge"]);
        assert!(
            Reason::ALL
                .iter()
                .enumerate()
                .all(|(i, r)| *r as usize == i)
        );
    }
}
