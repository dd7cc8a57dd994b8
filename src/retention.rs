//! Retention: deleting old mail. One synchronous function, [`purge_older_than`], serves the
//! background [`sweeper`], `fakemail purge` and the admin purge endpoint; [`enforce_cap`]
//! keeps `--max-messages`. Both read the arrival-time index, so their cost follows what they
//! delete, not the size of the store.

use std::future::Future;
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{error, info};

use crate::error::Result;
use crate::store::Store;
use crate::store::mail::Removed;
use crate::time::Timestamp;

/// Messages read from the arrival index at a time.
const BATCH: usize = 512;
/// Messages deleted per transaction. Every sled transaction writes out the log buffer, so one
/// transaction per message made sweeps I/O-bound (on 2 cores, 100,000 messages took 10 to 14
/// s; 16 per transaction, 5 to 7 s). Much larger transactions gain little and hold sled's
/// global transaction lock longer, stalling deliveries meanwhile.
const TXN: usize = 16;

/// Deletes every message received at or before `cutoff`, with all its copies. With `dry_run`
/// nothing is deleted and the report says what would go. `progress` is called after each
/// batch with the running total. Blocking.
pub fn purge_older_than(
    store: &Store,
    cutoff: Timestamp,
    dry_run: bool,
    progress: &mut dyn FnMut(Removed),
) -> Result<Removed> {
    if dry_run {
        return Ok(store.measure_before(cutoff)?);
    }
    let mut total = Removed::default();
    loop {
        let batch = store.received_before(cutoff, BATCH)?;
        if batch.is_empty() {
            return Ok(total);
        }
        for ids in batch.chunks(TXN) {
            total += store.delete_messages(ids)?;
        }
        progress(total);
    }
}

/// Deletes the oldest messages while more than `max` are stored, but never `keep`: the
/// message a delivery has just stored stays, even when it is stamped older than mail already
/// there (a clock set back). Trims run one at a time ([`Store::trim_guard`]). Blocking.
pub fn enforce_cap(store: &Store, max: u64, keep: Option<u64>) -> Result<Removed> {
    let _one_at_a_time = store.trim_guard();
    let mut total = Removed::default();
    loop {
        let count = store.message_count()?;
        if count <= max {
            return Ok(total);
        }
        let excess = (count - max).min(BATCH as u64) as usize;
        let oldest: Vec<u64> = store
            .oldest_messages(excess + 1)?
            .into_iter()
            .filter(|id| Some(*id) != keep)
            .take(excess)
            .collect();
        if oldest.is_empty() {
            return Ok(total);
        }
        for ids in oldest.chunks(TXN) {
            total += store.delete_messages(ids)?;
        }
    }
}

/// The cutoff for messages older than `age` at `now`.
pub fn cutoff(now: Timestamp, age: Duration) -> Timestamp {
    Timestamp(now.0.saturating_sub(age.as_secs()))
}

/// Runs retention at start-up and then every `interval` (or when `wake` is notified) until
/// `stop` resolves. Each pass runs on the blocking pool and logs what it removed.
pub async fn sweeper(
    store: Store,
    retention: Duration,
    interval: Duration,
    wake: std::sync::Arc<Notify>,
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
        let s = store.clone();
        let pass = tokio::task::spawn_blocking(move || {
            let cut = cutoff(Timestamp::now(), retention);
            purge_older_than(&s, cut, false, &mut |_| {})
        });
        match pass.await {
            Ok(Ok(r)) if r.messages > 0 => {
                info!(messages = r.messages, bytes = r.bytes, retention = %humantime::format_duration(retention), "retention: expired messages removed");
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => error!(error = %e, "retention sweep failed"),
            Err(e) => error!(error = %e, "retention sweep task failed"),
        }
    }
}
