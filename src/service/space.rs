//! Room for new mail: [`Space`] refuses it with [`Error::StorageFull`] while the data dir's
//! filesystem has less free space than `--min-free-space`, and for good once a write to the
//! store has failed.
//!
//! The threshold is Postfix's `queue_minfree`: mail is refused *before* the disk is full, so
//! sled never meets a full disk in the middle of a write, and it is taken again by itself
//! once space comes back, without a restart. That matters because sled (0.34) keeps the
//! first I/O error of its log writer as a global error and fails every later write with it
//! until the store is opened again: after such a failure, only a restart makes the store
//! writable again (what was flushed before is intact, and reads go on working). A failed
//! write of a message file (the sources, outside sled) refuses that message only.
//!
//! Free space is measured with `statvfs` on the data dir, at most every
//! [`CHECK_INTERVAL`] while there is plenty, and at every check once it is within twice the
//! threshold, so a burst cannot write far past it between two measures. A measure costs a
//! system call of about a microsecond.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use crate::error::{Error, Result};
use crate::store::StoreError;

/// How long a measure of free space is trusted while there is more than twice the threshold.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// What [`Space::status`] reports, for `/readyz` and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceStatus {
    /// Bytes free to unprivileged users on the data dir's filesystem at the last measure
    /// (`None`: the filesystem cannot say).
    pub free: Option<u64>,
    /// Whether free space was below the threshold at the last measure.
    pub low: bool,
    /// Whether a write to the store failed (new mail is refused until a restart).
    pub write_failed: bool,
}

impl SpaceStatus {
    /// Whether new mail is refused.
    pub fn full(&self) -> bool {
        self.low || self.write_failed
    }
}

/// The free-space guard of one data dir; cheap to clone (clones share the state).
#[derive(Debug, Clone)]
pub struct Space {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    /// The threshold in bytes; 0: no check.
    min_free: u64,
    /// The origin of the times below.
    start: Instant,
    /// Nanoseconds after `start` from which the last measure is stale.
    due: AtomicU64,
    /// The last measure (`u64::MAX`: none).
    free: AtomicU64,
    low: AtomicBool,
    /// A measure failed (logged once); mail is then taken, as without the check.
    unmeasurable: AtomicBool,
    write_failed: AtomicBool,
}

impl Space {
    /// A guard refusing new mail while `dir`'s filesystem has less than `min_free` bytes free
    /// (0: never for lack of space, only after a failed write).
    pub fn new(dir: &Path, min_free: u64) -> Space {
        Space {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                min_free,
                start: Instant::now(),
                due: AtomicU64::new(0),
                free: AtomicU64::new(u64::MAX),
                low: AtomicBool::new(false),
                unmeasurable: AtomicBool::new(false),
                write_failed: AtomicBool::new(false),
            }),
        }
    }

    /// Whether there is room for new mail; measures free space again when the last measure
    /// is stale.
    ///
    /// # Errors
    /// [`Error::StorageFull`] while free space is below the threshold, or after a failed write.
    pub fn check(&self) -> Result<()> {
        let i = &self.inner;
        if i.write_failed.load(Relaxed) {
            return Err(Error::StorageFull);
        }
        if i.min_free == 0 {
            return Ok(());
        }
        let now = i.start.elapsed().as_nanos() as u64;
        if now >= i.due.load(Relaxed) {
            self.measure(now);
        }
        if i.low.load(Relaxed) {
            Err(Error::StorageFull)
        } else {
            Ok(())
        }
    }

    /// How things stand, measuring again if the last measure is stale (with the check off
    /// too, for the metrics).
    pub fn status(&self) -> SpaceStatus {
        let i = &self.inner;
        let now = i.start.elapsed().as_nanos() as u64;
        if now >= i.due.load(Relaxed) {
            self.measure(now);
        }
        let free = i.free.load(Relaxed);
        SpaceStatus {
            free: (free != u64::MAX).then_some(free),
            low: i.low.load(Relaxed),
            write_failed: i.write_failed.load(Relaxed),
        }
    }

    fn measure(&self, now: u64) {
        let i = &self.inner;
        let free = match available(&i.dir) {
            Ok(free) => free,
            Err(e) => {
                if !i.unmeasurable.swap(true, Relaxed) {
                    warn!(dir = %i.dir.display(), error = %e,
                          "cannot measure free space on the data dir; --min-free-space is not applied");
                }
                i.due
                    .store(now + 10 * CHECK_INTERVAL.as_nanos() as u64, Relaxed);
                return;
            }
        };
        i.free.store(free, Relaxed);
        let low = free < i.min_free;
        match (i.low.swap(low, Relaxed), low) {
            (false, true) => warn!(
                dir = %i.dir.display(), free, min_free = i.min_free,
                "free space on the data dir is below --min-free-space: new mail is refused \
                 (SMTP 452 4.3.1, HTTP 507) until there is room again"
            ),
            (true, false) => info!(
                dir = %i.dir.display(), free, min_free = i.min_free,
                "free space on the data dir is back above --min-free-space: new mail is taken again"
            ),
            _ => {}
        }
        let wait = if free / 2 < i.min_free {
            0
        } else {
            CHECK_INTERVAL.as_nanos() as u64
        };
        i.due.store(now + wait, Relaxed);
    }

    /// Whether a write to the store failed (see [`Space::write_failure`]).
    pub fn write_failed(&self) -> bool {
        self.inner.write_failed.load(Relaxed)
    }

    /// Sorts out a failure of a write of new mail (or of the flush after it): an I/O error of
    /// the store means a full or failing disk, which sled does not recover from while it is
    /// open, so it becomes [`Error::StorageFull`] now and for every later message (logged
    /// once); any other error is returned as it is.
    pub fn write_failure(&self, e: Error) -> Error {
        match &e {
            Error::Store(StoreError::Sled(sled::Error::Io(_))) => {}
            // A message file: unlike sled, it takes the next write as if nothing happened,
            // so only this message is refused.
            Error::Store(StoreError::Body { source, .. }) => {
                warn!(dir = %self.inner.dir.display(), error = %source,
                      "writing a message to the store failed (disk full or failing): it is refused \
                       (SMTP 452 4.3.1, HTTP 507)");
                return Error::StorageFull;
            }
            _ => return e,
        }
        if !self.inner.write_failed.swap(true, Relaxed) {
            error!(dir = %self.inner.dir.display(), error = %e,
                   "a write to the store failed (disk full or failing): new mail is refused \
                    (SMTP 452 4.3.1, HTTP 507) until the server is restarted with room on the disk; \
                    mail stored before is kept and can be read");
        }
        Error::StorageFull
    }
}

/// Bytes free to unprivileged users on the filesystem holding `dir`.
#[cfg(unix)]
fn available(dir: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Elsewhere than Unix the check is off: never below any threshold.
#[cfg(not(unix))]
fn available(_dir: &Path) -> std::io::Result<u64> {
    Ok(u64::MAX - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threshold_above_any_disk_refuses_and_zero_never_does() {
        let dir = tempfile::tempdir().unwrap();
        let full = Space::new(dir.path(), u64::MAX);
        assert!(matches!(full.check(), Err(Error::StorageFull)));
        let s = full.status();
        assert!(s.low && s.full() && s.free.is_some(), "{s:?}");
        let off = Space::new(dir.path(), 0);
        assert!(off.check().is_ok());
        assert!(!off.status().full());
        let small = Space::new(dir.path(), 1);
        assert!(small.check().is_ok());
        assert!(!small.status().full());
    }

    #[test]
    fn an_io_error_of_the_store_refuses_mail_until_restart_and_others_pass() {
        let dir = tempfile::tempdir().unwrap();
        let space = Space::new(dir.path(), 0);
        let other = space.write_failure(Error::Internal("x".into()));
        assert!(matches!(other, Error::Internal(_)));
        assert!(space.check().is_ok());
        let io = std::io::Error::from(std::io::ErrorKind::StorageFull);
        let e = space.write_failure(Error::Store(StoreError::Sled(sled::Error::Io(io))));
        assert!(matches!(e, Error::StorageFull));
        assert!(matches!(space.check(), Err(Error::StorageFull)));
        assert!(space.status().write_failed);
    }
}
