//! Retention deletes messages many per transaction: what a sweep, the message cap and
//! `Store::delete_messages` remove must be exactly what one delete per message removed,
//! counters and indexes included. A purge, with an injected cutoff, takes messages received
//! before or at the cutoff and keeps later ones; a dry run measures the same and deletes nothing.

mod common;

use std::path::Path;

use common::stored_message as message;
use fakemail::retention;
use fakemail::store::Store;
use fakemail::store::mail::{INBOX, Removed, SENT};
use fakemail::time::Timestamp;

const CACHE: u64 = 8 << 20;
const OLD: Timestamp = Timestamp(1_700_000_000);
const NEW: Timestamp = Timestamp(1_800_000_000);

fn open(dir: &Path) -> Store {
    Store::open(dir, CACHE).expect("open store")
}

#[test]
fn a_sweep_in_batches_removes_exactly_the_old_messages_with_their_copies() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bob = store.ensure_owner("bob@example.test").unwrap();
    let alice = store.ensure_owner("alice@example.test").unwrap();
    // More than one index batch (512) and not a multiple of the transaction size.
    let old: Vec<u64> = (0..1_037)
        .map(|i| message(&store, OLD, bob, (i % 3 == 0).then_some(alice), 10))
        .collect();
    let new: Vec<u64> = (0..5)
        .map(|_| message(&store, NEW, bob, Some(alice), 7))
        .collect();
    let mut reports = 0;
    let removed =
        retention::purge_older_than(&store, OLD, false, None, &mut |_| reports += 1).unwrap();
    assert_eq!(
        removed,
        Removed {
            messages: 1_037,
            bytes: 10_370
        }
    );
    assert!(reports >= 3, "progress after each index batch");
    assert!(old.iter().all(|id| store.message(*id).unwrap().is_none()));
    assert!(new.iter().all(|id| store.message(*id).unwrap().is_some()));
    assert_eq!(store.message_count().unwrap(), 5);
    assert_eq!(store.message_bytes().unwrap(), 35);
    assert_eq!(store.received_before(NEW, 10_000).unwrap(), new);
    let inbox = store.counts(bob, INBOX).unwrap();
    assert_eq!((inbox.total, inbox.unread), (5, 5));
    assert_eq!(store.counts(alice, SENT).unwrap().total, 5);
    assert_eq!(store.entry_ids(bob, Some(INBOX)).unwrap().len(), 5);
    assert_eq!(store.entry_ids(alice, Some(SENT)).unwrap().len(), 5);
    // Nothing left to sweep.
    let again = retention::purge_older_than(&store, OLD, false, None, &mut |_| {}).unwrap();
    assert_eq!(again, Removed::default());
}

#[test]
fn delete_messages_skips_ids_already_gone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bob = store.ensure_owner("bob@example.test").unwrap();
    let ids: Vec<u64> = (0..4).map(|_| message(&store, OLD, bob, None, 3)).collect();
    assert_eq!(
        store.delete_messages(&[ids[1]]).unwrap().messages,
        1,
        "was there"
    );
    let removed = store
        .delete_messages(&[ids[0], ids[1], ids[2], 999_999, ids[0]])
        .unwrap();
    assert_eq!(
        removed,
        Removed {
            messages: 2,
            bytes: 6
        }
    );
    assert_eq!(store.message_count().unwrap(), 1);
    assert_eq!(store.counts(bob, INBOX).unwrap().total, 1);
    assert_eq!(store.entry_ids(bob, Some(INBOX)).unwrap().len(), 1);
    assert!(store.message(ids[3]).unwrap().is_some());
    assert_eq!(store.delete_messages(&[]).unwrap(), Removed::default());
}

#[test]
fn the_message_cap_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bob = store.ensure_owner("bob@example.test").unwrap();
    let ids: Vec<u64> = (0..40)
        .map(|i| message(&store, Timestamp(OLD.0 + i), bob, None, 1))
        .collect();
    let removed = retention::enforce_cap(&store, 3, None, None).unwrap();
    assert_eq!(removed.messages, 37);
    assert_eq!(store.oldest_messages(100).unwrap(), ids[37..]);
    assert_eq!(store.counts(bob, INBOX).unwrap().total, 3);
}

#[test]
fn a_purge_takes_messages_received_before_or_at_the_cutoff_and_keeps_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bob = store.ensure_owner("bob@example.test").unwrap();
    let alice = store.ensure_owner("alice@example.test").unwrap();
    let now = Timestamp(OLD.0 + 100);
    let age = std::time::Duration::from_secs(100);
    let cutoff = retention::cutoff(now, age);
    assert_eq!(cutoff, OLD);
    let before = message(&store, Timestamp(OLD.0 - 1), bob, Some(alice), 3);
    let at = message(&store, OLD, bob, None, 5);
    let after = message(&store, Timestamp(OLD.0 + 1), bob, Some(alice), 7);

    // A dry run measures exactly what a purge takes, and deletes nothing.
    let expected = Removed {
        messages: 2,
        bytes: 8,
    };
    let dry = retention::purge_older_than(&store, cutoff, true, None, &mut |_| {}).unwrap();
    assert_eq!(dry, expected);
    assert_eq!(store.message_count().unwrap(), 3);
    assert_eq!(store.counts(bob, INBOX).unwrap().total, 3);

    // A cutoff before everything takes nothing.
    let none = retention::purge_older_than(&store, Timestamp(OLD.0 - 2), false, None, &mut |_| {});
    assert_eq!(none.unwrap(), Removed::default());
    assert_eq!(store.message_count().unwrap(), 3);

    let removed = retention::purge_older_than(&store, cutoff, false, None, &mut |_| {}).unwrap();
    assert_eq!(removed, expected);
    assert!(store.message(before).unwrap().is_none());
    assert!(store.message(at).unwrap().is_none());
    assert!(store.message(after).unwrap().is_some());
    assert_eq!(store.message_count().unwrap(), 1);
    assert_eq!(store.message_bytes().unwrap(), 7);
    let inbox = store.counts(bob, INBOX).unwrap();
    assert_eq!((inbox.total, inbox.unread), (1, 1));
    assert_eq!(store.counts(alice, SENT).unwrap().total, 1);
}
