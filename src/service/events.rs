//! The events hub: the service publishes here every message it stores (`deliver`), every
//! copy it deletes (the user and operator delete paths), and every copy whose flags change or
//! that goes to another mailbox (REST and IMAP alike); wait-for-message, the event streams and
//! IMAP sessions subscribe. Waits and streams hear only of deliveries and deletions. It is fed by the service, never by the store, so every front-end's mail
//! (REST send, SMTP) is announced the same way.
//!
//! A `tokio::sync::broadcast` channel: publishing never blocks a delivery, and a subscriber too
//! slow to keep up is told how much it missed (`RecvError::Lagged`) and reads the store again.
//! A subscriber is a `Receiver` held by one request; when the request ends, or its client goes
//! away and the server drops it, the receiver goes with it and costs nothing more.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};
use tracing::warn;

use super::Service;
use crate::store::mail::{EntryRecord, Gone, MessageRecord, Removed};

/// Events buffered per subscriber before the slowest one lags.
pub const CAPACITY: usize = 1024;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A message was stored, with a copy for every entry.
    Received,
    /// Copies of a message were deleted.
    Deleted,
}

/// What happened, as the hub carries it: [`EventKind`]'s deliveries and deletions, which
/// waits and streams report, and the changes only a selected IMAP mailbox hears of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// A message was stored, with a copy for every entry.
    Received,
    /// Copies of a message were deleted.
    Deleted,
    /// The flags of copies changed (`read`, `starred` or the IMAP flags).
    Flagged,
    /// Copies were put in their mailbox: moved from the mailbox `from`, or, with `None`, made
    /// there as new copies (IMAP COPY).
    Filed { from: Option<u64> },
}

impl Change {
    /// The kind waits and event streams report; `None` for the changes they do not.
    pub(crate) fn reported(self) -> Option<EventKind> {
        match self {
            Change::Received => Some(EventKind::Received),
            Change::Deleted => Some(EventKind::Deleted),
            Change::Flagged | Change::Filed { .. } => None,
        }
    }
}

/// One event, shared by every subscriber. It carries the store's records, so it stays inside
/// the service: front-ends get [`super::stream::Notice`]s and [`super::watch::Waited`]s.
#[derive(Debug, Clone)]
pub(crate) struct MailEvent {
    pub kind: Change,
    pub message: Arc<MessageRecord>,
    /// The copies concerned: every copy delivered, the copies deleted, or the copies changed or
    /// filed (as they are now).
    pub entries: Arc<[EntryRecord]>,
    /// The message as a whole came or went: always for `Received`; for `Deleted`, when its
    /// last copy went. The operator sees only these.
    pub whole: bool,
}

/// The publish side, owned by the [`Service`].
#[derive(Debug)]
pub struct Hub {
    tx: broadcast::Sender<MailEvent>,
    closing: watch::Sender<bool>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            tx: broadcast::Sender::new(CAPACITY),
            closing: watch::Sender::new(false),
        }
    }
}

impl Hub {
    /// Sends an event to every subscriber; none listening is fine.
    fn publish(&self, event: MailEvent) {
        let _ = self.tx.send(event);
    }

    /// A new subscriber: it gets every event published from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<MailEvent> {
        self.tx.subscribe()
    }

    /// How many subscribers exist: open waits and event streams.
    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Ends every wait and event stream, now and from now on: the server is shutting down, and
    /// would otherwise wait for them while it drains.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Changes to `true` when [`Hub::close`] is called.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}

impl Service {
    /// The events hub.
    pub fn events(&self) -> &Hub {
        &self.inner.events
    }

    /// Announces a stored message.
    pub(super) fn announce_received(&self, message: &MessageRecord, entries: &[EntryRecord]) {
        // Nobody to tell: skip the copies. A subscriber that comes just after this check
        // still finds the message, already stored, when it then looks in the store.
        if self.inner.events.listeners() == 0 {
            return;
        }
        self.inner.events.publish(MailEvent {
            kind: Change::Received,
            message: Arc::new(message.clone()),
            entries: entries.into(),
            whole: true,
        });
    }

    /// Announces deleted copies; `whole` when the message went with them.
    pub(super) fn announce_deleted(
        &self,
        message: MessageRecord,
        entries: Vec<EntryRecord>,
        whole: bool,
    ) {
        self.inner.events.publish(MailEvent {
            kind: Change::Deleted,
            message: Arc::new(message),
            entries: entries.into(),
            whole,
        });
    }

    /// Announces copies whose flags changed, or (`Filed`) that were put in their mailbox:
    /// only IMAP sessions hear of these. The change is made already: a store failure to read
    /// the message for the event is logged, not returned.
    pub(super) fn announce_changed(&self, kind: Change, entries: Vec<EntryRecord>) {
        let Some(first) = entries.first() else {
            return;
        };
        if self.inner.events.listeners() == 0 {
            return;
        }
        let message = match self.inner.store.message(first.message) {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(e) => {
                warn!(error = %e, "events: the message of a changed copy could not be read");
                return;
            }
        };
        self.inner.events.publish(MailEvent {
            kind,
            message: Arc::new(message),
            entries: entries.into(),
            whole: false,
        });
    }

    /// Announces messages deleted with all their copies.
    pub(super) fn announce_gone(&self, gone: Vec<Gone>) {
        if self.inner.events.listeners() == 0 {
            return;
        }
        for g in gone {
            self.announce_deleted(g.message, g.entries, true);
        }
    }

    /// Deletes one copy (the message too with its last copy) and announces it. `None` when the
    /// copy is already gone.
    pub(super) fn delete_copy(&self, entry: u64) -> crate::Result<Option<Removed>> {
        let store = &self.inner.store;
        let Some(e) = store.entry(entry)? else {
            return Ok(None);
        };
        let message = store.message(e.message)?;
        let removed = store.delete_entry(entry)?;
        if let (Some(r), Some(m)) = (removed, message) {
            self.announce_deleted(m, vec![e], r.messages > 0);
        }
        Ok(removed)
    }
}

/// Retention (the sweeper, the cap, the admin purge) tells waits and event streams of what it
/// deletes, as the user and operator deletions do.
impl crate::retention::Observer for Service {
    fn deleted(&self, gone: Vec<Gone>) {
        self.announce_gone(gone);
    }
}
