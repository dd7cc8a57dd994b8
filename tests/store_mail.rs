//! The store contract for mail, on a temporary sled: delivery (one body, a copy per owner),
//! mailbox listings page by cursor, moves and flag changes, deletion of copies and messages,
//! the arrival-time index retention reads, custom mailboxes, and the message, byte and
//! per-mailbox counters, which always agree with the records they count. Two races are
//! driven here too: a move into a mailbox deleted at the same time, and (in `store.rs`) a
//! login while its account is deleted.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Barrier};

use fakemail::Error;
use fakemail::store::Store;
use fakemail::store::mail::{
    ARCHIVE, Counts, EntryChange, EntryRecord, INBOX, ListFilter, Mailbox, MessageRecord,
    NewMessage, Removed, SENT, SYSTEM_MAILBOXES, TRASH,
};
use fakemail::time::Timestamp;

const CACHE: u64 = 8 << 20;
const T0: Timestamp = Timestamp(1_700_000_000);

fn open(dir: &Path) -> Store {
    Store::open(dir, CACHE).expect("open store")
}

/// One copy to store: its owner, mailbox and flags.
#[derive(Clone, Copy)]
struct Place {
    owner: u64,
    mailbox: u64,
    read: bool,
    starred: bool,
}

fn unread_in(owner: u64, mailbox: u64) -> Place {
    Place {
        owner,
        mailbox,
        read: false,
        starred: false,
    }
}

/// A read copy in `owner`'s `sent`.
fn sent_by(owner: u64, starred: bool) -> Place {
    Place {
        owner,
        mailbox: SENT,
        read: true,
        starred,
    }
}

/// A new store with two owners: bob and alice.
fn bob_and_alice() -> (tempfile::TempDir, Store, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bob = store.ensure_owner("bob@example.test").unwrap();
    let alice = store.ensure_owner("alice@example.test").unwrap();
    (dir, store, bob, alice)
}

/// Stores a message of `size` bytes received at `at`, with these copies; returns the message
/// and its copies as stored.
fn store_message(
    store: &Store,
    at: Timestamp,
    size: usize,
    copies: &[Place],
) -> (MessageRecord, Vec<EntryRecord>) {
    let id = store.generate_id().unwrap();
    let entries: Vec<EntryRecord> = copies
        .iter()
        .map(|c| EntryRecord {
            id: store.generate_id().unwrap(),
            message: id,
            owner: c.owner,
            mailbox: c.mailbox,
            read: c.read,
            starred: c.starred,
            bcc: (c.mailbox == SENT).then(Vec::new),
        })
        .collect();
    let record = MessageRecord {
        id,
        received_at: at,
        size: size as u64,
        envelope_from: "alice@example.test".into(),
        envelope_to: vec!["bob@example.test".into()],
        from: Mailbox {
            name: Some("Alice".into()),
            address: "alice@example.test".into(),
        },
        to: vec![Mailbox {
            name: None,
            address: "bob@example.test".into(),
        }],
        cc: vec![],
        reply_to: vec![],
        subject: format!("message {id}"),
        snippet: String::new(),
        message_id: Some(format!("{id}@example.test")),
        has_attachments: false,
        entries: entries.iter().map(|e| e.id).collect(),
    };
    store
        .insert_message(&record, &vec![b'x'; size], &entries, &[])
        .unwrap();
    (record, entries)
}

/// Every page of a mailbox, following the cursor (the last id of each page), `limit` a page.
fn all_pages(
    store: &Store,
    owner: u64,
    mailbox: u64,
    filter: ListFilter,
    limit: usize,
) -> Vec<Vec<u64>> {
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let (rows, more) = store
            .list_mailbox(owner, mailbox, filter, before, limit)
            .unwrap();
        assert!(rows.len() <= limit);
        for (e, m) in &rows {
            assert_eq!((e.owner, e.mailbox, e.message), (owner, mailbox, m.id));
        }
        let ids: Vec<u64> = rows.iter().map(|(e, _)| e.id).collect();
        before = ids.last().copied();
        pages.push(ids);
        if !more {
            return pages;
        }
    }
}

/// The copies listed in one mailbox, newest first.
fn listed(store: &Store, owner: u64, mailbox: u64) -> Vec<u64> {
    all_pages(store, owner, mailbox, ListFilter::default(), 500).concat()
}

/// Counts of every mailbox of `owner` made from what the listings show.
fn counted_from_listings(store: &Store, owner: u64) -> BTreeMap<u64, Counts> {
    let custom = store
        .custom_mailboxes(owner)
        .unwrap()
        .into_iter()
        .map(|b| b.id);
    SYSTEM_MAILBOXES
        .iter()
        .map(|(id, _)| *id)
        .chain(custom)
        .map(|mailbox| {
            let rows = store
                .list_mailbox(owner, mailbox, ListFilter::default(), None, 10_000)
                .unwrap()
                .0;
            let counts = Counts {
                total: rows.len() as u64,
                unread: rows.iter().filter(|(e, _)| !e.read).count() as u64,
            };
            (mailbox, counts)
        })
        .collect()
}

/// Checks every counter against the records: the store-wide message and byte counts against
/// a walk of all messages, each mailbox's counts against its listing.
fn assert_counters_match(store: &Store, owners: &[u64]) {
    let messages: Vec<MessageRecord> = store
        .messages_newest_first(None)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(store.message_count().unwrap(), messages.len() as u64);
    assert_eq!(
        store.message_bytes().unwrap(),
        messages.iter().map(|m| m.size).sum::<u64>()
    );
    for &owner in owners {
        for (mailbox, counts) in counted_from_listings(store, owner) {
            assert_eq!(
                store.counts(owner, mailbox).unwrap(),
                counts,
                "owner {owner}, mailbox {mailbox}"
            );
        }
    }
}

#[test]
fn owners_are_made_once_per_address_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.owner("bob@example.test").unwrap(), None);
    let bob = store.ensure_owner("Bob@Example.test").unwrap();
    assert_eq!(store.ensure_owner(" bob@example.test ").unwrap(), bob);
    assert_eq!(store.owner("BOB@EXAMPLE.TEST").unwrap(), Some(bob));
    assert_ne!(store.ensure_owner("alice@example.test").unwrap(), bob);
}

#[test]
fn a_delivery_stores_one_body_and_a_copy_per_owner() {
    let (_dir, store, bob, alice) = bob_and_alice();
    let sent = sent_by(alice, true);
    let (m, entries) = store_message(&store, T0, 120, &[unread_in(bob, INBOX), sent]);

    assert_eq!(store.message(m.id).unwrap(), Some(m.clone()));
    assert_eq!(store.raw(m.id).unwrap(), Some(vec![b'x'; 120]));
    for e in &entries {
        assert_eq!(store.entry(e.id).unwrap().as_ref(), Some(e));
    }
    assert_eq!(listed(&store, bob, INBOX), [entries[0].id]);
    assert_eq!(listed(&store, alice, SENT), [entries[1].id]);
    assert!(listed(&store, alice, INBOX).is_empty());
    assert_eq!(
        store.counts(bob, INBOX).unwrap(),
        Counts {
            total: 1,
            unread: 1
        }
    );
    assert_eq!(
        store.counts(alice, SENT).unwrap(),
        Counts {
            total: 1,
            unread: 0
        }
    );
    assert_eq!(store.message_count().unwrap(), 1);
    assert_eq!(store.message_bytes().unwrap(), 120);
    assert_eq!(store.received_before(T0, 10).unwrap(), [m.id]);
    assert_eq!(store.entry_ids(bob, None).unwrap(), [entries[0].id]);
    assert_eq!(
        store.entry_ids(alice, Some(INBOX)).unwrap(),
        Vec::<u64>::new()
    );
}

#[test]
fn a_mailbox_lists_newest_first_page_by_page_with_its_filters() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bob = store.ensure_owner("bob@example.test").unwrap();
    let carol = store.ensure_owner("carol@example.test").unwrap();
    let mut ids = Vec::new();
    for i in 0..7 {
        let (_, e) = store_message(&store, T0, 10, &[unread_in(bob, INBOX)]);
        ids.push(e[0].id);
        // Mail of others and in other mailboxes is never listed here.
        store_message(&store, T0, 10, &[unread_in(carol, INBOX)]);
        if i % 3 == 0 {
            store_message(&store, T0, 10, &[unread_in(bob, ARCHIVE)]);
        }
    }
    let newest_first: Vec<u64> = ids.iter().rev().copied().collect();
    let pages = all_pages(&store, bob, INBOX, ListFilter::default(), 3);
    assert_eq!(
        pages,
        [
            newest_first[0..3].to_vec(),
            newest_first[3..6].to_vec(),
            newest_first[6..].to_vec()
        ]
    );
    // A page that ends exactly at the last copy says no more follow.
    let (rows, more) = store
        .list_mailbox(bob, INBOX, ListFilter::default(), None, 7)
        .unwrap();
    assert_eq!((rows.len(), more), (7, false));
    // A cursor past everything lists nothing.
    let (rows, more) = store
        .list_mailbox(bob, INBOX, ListFilter::default(), Some(ids[0]), 5)
        .unwrap();
    assert!(rows.is_empty() && !more);

    // Read the even ones, star every third.
    for (i, id) in ids.iter().enumerate() {
        let change = EntryChange {
            read: Some(i % 2 == 0),
            starred: Some(i % 3 == 0),
            mailbox: None,
        };
        store.update_entry(*id, change).unwrap().unwrap();
    }
    let pick = |f: &dyn Fn(usize) -> bool| -> Vec<u64> {
        (0..ids.len())
            .rev()
            .filter(|i| f(*i))
            .map(|i| ids[i])
            .collect()
    };
    let filtered =
        |read, starred| all_pages(&store, bob, INBOX, ListFilter { read, starred }, 2).concat();
    assert_eq!(filtered(Some(false), None), pick(&|i| i % 2 == 1));
    assert_eq!(filtered(Some(true), None), pick(&|i| i % 2 == 0));
    assert_eq!(filtered(None, Some(true)), pick(&|i| i % 3 == 0));
    assert_eq!(filtered(None, Some(false)), pick(&|i| i % 3 != 0));
    assert_eq!(
        filtered(Some(false), Some(true)),
        pick(&|i| i % 2 == 1 && i % 3 == 0)
    );
    assert_eq!(
        store.counts(bob, INBOX).unwrap(),
        Counts {
            total: 7,
            unread: 3
        }
    );
}

#[test]
fn a_move_takes_the_copy_its_index_entries_and_its_counts_along() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bob = store.ensure_owner("bob@example.test").unwrap();
    let (_, e) = store_message(&store, T0, 10, &[unread_in(bob, INBOX)]);
    let id = e[0].id;
    let moved = store
        .update_entry(
            id,
            EntryChange {
                mailbox: Some(ARCHIVE),
                starred: Some(true),
                read: None,
            },
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        (moved.mailbox, moved.starred, moved.read),
        (ARCHIVE, true, false)
    );
    assert_eq!(store.entry(id).unwrap(), Some(moved));
    assert!(listed(&store, bob, INBOX).is_empty());
    assert_eq!(listed(&store, bob, ARCHIVE), [id]);
    let starred = ListFilter {
        starred: Some(true),
        read: None,
    };
    assert_eq!(all_pages(&store, bob, ARCHIVE, starred, 5).concat(), [id]);
    assert_eq!(store.counts(bob, INBOX).unwrap(), Counts::default());
    assert_eq!(
        store.counts(bob, ARCHIVE).unwrap(),
        Counts {
            total: 1,
            unread: 1
        }
    );

    // Into a custom mailbox and out again; it cannot be deleted while it holds the copy.
    let receipts = store.create_mailbox(bob, "Receipts").unwrap();
    assert!(matches!(
        store.create_mailbox(bob, "RECEIPTS"),
        Err(Error::MailboxExists)
    ));
    assert_eq!(
        store.custom_mailbox(bob, "receipts").unwrap(),
        Some(receipts.clone())
    );
    assert_eq!(
        store.custom_mailboxes(bob).unwrap(),
        std::slice::from_ref(&receipts)
    );
    let into = |mailbox| EntryChange {
        mailbox: Some(mailbox),
        read: Some(true),
        starred: None,
    };
    store.update_entry(id, into(receipts.id)).unwrap().unwrap();
    assert_eq!(listed(&store, bob, receipts.id), [id]);
    assert_eq!(
        store.counts(bob, receipts.id).unwrap(),
        Counts {
            total: 1,
            unread: 0
        }
    );
    assert!(matches!(
        store.delete_mailbox(bob, &receipts),
        Err(Error::MailboxNotEmpty)
    ));
    store.update_entry(id, into(TRASH)).unwrap().unwrap();
    store.delete_mailbox(bob, &receipts).unwrap();
    assert_eq!(store.custom_mailbox(bob, "Receipts").unwrap(), None);
    assert_eq!(listed(&store, bob, TRASH), [id]);
    assert_counters_match(&store, &[bob]);

    // A copy that is gone is not changed.
    store.delete_entry(id).unwrap().unwrap();
    assert_eq!(store.update_entry(id, into(INBOX)).unwrap(), None);
}

#[test]
fn a_message_goes_with_its_last_copy() {
    let (_dir, store, bob, alice) = bob_and_alice();
    let (m, e) = store_message(
        &store,
        T0,
        40,
        &[unread_in(bob, INBOX), unread_in(alice, INBOX)],
    );
    let (kept, _) = store_message(&store, T0, 7, &[unread_in(bob, INBOX)]);

    assert_eq!(
        store.delete_entry(e[0].id).unwrap(),
        Some(Removed::default())
    );
    assert_eq!(store.entry(e[0].id).unwrap(), None);
    let still = store.message(m.id).unwrap().expect("alice's copy keeps it");
    assert_eq!(still.entries, [e[1].id]);
    assert_eq!(store.message_count().unwrap(), 2);

    assert_eq!(
        store.delete_entry(e[1].id).unwrap(),
        Some(Removed {
            messages: 1,
            bytes: 40
        })
    );
    assert_eq!(store.delete_entry(e[1].id).unwrap(), None, "already gone");
    assert_eq!(store.message(m.id).unwrap(), None);
    assert_eq!(store.raw(m.id).unwrap(), None);
    assert_eq!(store.received_before(T0, 10).unwrap(), [kept.id]);
    assert_eq!(store.message_count().unwrap(), 1);
    assert_eq!(store.message_bytes().unwrap(), 7);
    assert_eq!(store.counts(alice, INBOX).unwrap(), Counts::default());
    assert_counters_match(&store, &[bob, alice]);
}

#[test]
fn deleting_messages_takes_every_copy_and_returns_what_went() {
    let (_dir, store, bob, alice) = bob_and_alice();
    let sent = sent_by(alice, false);
    let (a, a_copies) = store_message(&store, T0, 5, &[unread_in(bob, INBOX), sent]);
    let (b, _) = store_message(&store, T0, 6, &[unread_in(bob, INBOX)]);
    let (c, _) = store_message(&store, T0, 7, &[unread_in(bob, INBOX)]);

    let gone = store
        .delete_messages_returning(&[a.id, 999_999, b.id])
        .unwrap();
    assert_eq!(gone.len(), 2, "an id already gone is skipped");
    assert_eq!(gone[0].message, a);
    assert_eq!(gone[0].entries, a_copies);
    assert_eq!(
        gone[0].removed,
        Removed {
            messages: 1,
            bytes: 5
        }
    );
    assert_eq!(gone[1].message.id, b.id);
    assert!(listed(&store, alice, SENT).is_empty());
    assert_eq!(listed(&store, bob, INBOX).len(), 1);
    assert_eq!(
        store.delete_messages(&[a.id, c.id]).unwrap(),
        Removed {
            messages: 1,
            bytes: 7
        }
    );
    assert_eq!(store.message_count().unwrap(), 0);
    assert_eq!(store.message_bytes().unwrap(), 0);
    assert_counters_match(&store, &[bob, alice]);
}

#[test]
fn the_arrival_index_gives_exactly_the_messages_at_or_before_a_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bob = store.ensure_owner("bob@example.test").unwrap();
    let at = |s: u64| Timestamp(T0.0 + s);
    // Stored out of time order: the index is in time order, not id order.
    let (late, _) = store_message(&store, at(30), 3, &[unread_in(bob, INBOX)]);
    let (early, _) = store_message(&store, at(10), 1, &[unread_in(bob, INBOX)]);
    let (middle, _) = store_message(&store, at(20), 2, &[unread_in(bob, INBOX)]);
    let (also_middle, _) = store_message(&store, at(20), 4, &[unread_in(bob, INBOX)]);

    assert!(store.received_before(at(9), 10).unwrap().is_empty());
    assert_eq!(store.received_before(at(10), 10).unwrap(), [early.id]);
    assert_eq!(
        store.received_before(at(20), 10).unwrap(),
        [early.id, middle.id, also_middle.id]
    );
    assert_eq!(
        store.received_before(at(29), 2).unwrap(),
        [early.id, middle.id]
    );
    assert_eq!(
        store.oldest_messages(10).unwrap(),
        [early.id, middle.id, also_middle.id, late.id]
    );
    assert_eq!(
        store.measure_before(at(20)).unwrap(),
        Removed {
            messages: 3,
            bytes: 7
        }
    );
    // Deleting takes the message out of the index.
    store.delete_messages(&[middle.id]).unwrap();
    assert_eq!(
        store.received_before(at(20), 10).unwrap(),
        [early.id, also_middle.id]
    );
}

#[test]
fn the_counters_match_the_records_after_every_kind_of_write_and_a_reopen() {
    let (dir, store, bob, alice) = bob_and_alice();
    let owners = [bob, alice];
    let work = store.create_mailbox(bob, "Work").unwrap();
    let mut copies = Vec::new();
    for i in 0..12u64 {
        let mut list = vec![unread_in(bob, INBOX)];
        if i % 2 == 0 {
            list.push(sent_by(alice, i % 4 == 0));
        }
        let (_, e) = store_message(&store, Timestamp(T0.0 + i), 10 + i as usize, &list);
        copies.extend(e);
        assert_counters_match(&store, &owners);
    }
    let change = |mailbox, read| EntryChange {
        mailbox,
        read,
        starred: None,
    };
    for (i, e) in copies.iter().enumerate() {
        let c = match i % 4 {
            // Only bob has `Work`.
            0 if e.owner == bob => change(Some(work.id), None),
            0 => change(Some(INBOX), Some(true)),
            1 => change(None, Some(true)),
            2 => change(Some(ARCHIVE), Some(false)),
            _ => change(Some(TRASH), Some(true)),
        };
        store.update_entry(e.id, c).unwrap().unwrap();
        assert_counters_match(&store, &owners);
    }
    for e in copies.iter().step_by(5) {
        store.delete_entry(e.id).unwrap().unwrap();
        assert_counters_match(&store, &owners);
    }
    let oldest = store.oldest_messages(3).unwrap();
    store.delete_messages(&oldest).unwrap();
    assert_counters_match(&store, &owners);
    store.flush().unwrap();
    drop(store);
    let store = open(dir.path());
    assert!(store.message_count().unwrap() > 0);
    assert_counters_match(&store, &owners);
}

#[test]
fn an_owner_goes_with_its_mailboxes_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bob = store.ensure_owner("bob@example.test").unwrap();
    let work = store.create_mailbox(bob, "Work").unwrap();
    let (_, e) = store_message(&store, T0, 10, &[unread_in(bob, INBOX)]);
    for id in store.entry_ids(bob, None).unwrap() {
        store.delete_entry(id).unwrap();
    }
    assert_eq!(e.len(), 1);
    store.delete_owner(bob, "Bob@example.test").unwrap();
    assert_eq!(store.owner("bob@example.test").unwrap(), None);
    assert!(store.custom_mailboxes(bob).unwrap().is_empty());
    assert_eq!(store.counts(bob, work.id).unwrap(), Counts::default());
    assert_eq!(store.counts(bob, INBOX).unwrap(), Counts::default());
}

// ----- moves and mailbox deletions ------------------------------------------------------------

#[test]
fn a_move_into_a_mailbox_deleted_meanwhile_is_refused_and_the_copy_stays_listed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bob = store.ensure_owner("bob@example.test").unwrap();
    let (_, e) = store_message(&store, T0, 10, &[unread_in(bob, INBOX)]);
    let id = e[0].id;
    // The mover looked the mailbox up, then it was deleted before the move.
    let work = store.create_mailbox(bob, "Work").unwrap();
    store.delete_mailbox(bob, &work).unwrap();
    let into_work = EntryChange {
        mailbox: Some(work.id),
        ..Default::default()
    };
    assert!(matches!(
        store.update_entry(id, into_work),
        Err(Error::NotFound("mailbox"))
    ));
    assert_eq!(store.entry(id).unwrap(), Some(e[0].clone()), "unchanged");
    assert_eq!(listed(&store, bob, INBOX), [id]);
    assert_eq!(store.counts(bob, work.id).unwrap(), Counts::default());
    assert_counters_match(&store, &[bob]);

    // Made again under the same name, it is another mailbox: the old id still does not
    // take copies, and deleting by the old record does not delete the new one.
    let again = store.create_mailbox(bob, "work").unwrap();
    assert_ne!(again.id, work.id);
    assert!(matches!(
        store.update_entry(id, into_work),
        Err(Error::NotFound("mailbox"))
    ));
    assert!(matches!(
        store.delete_mailbox(bob, &work),
        Err(Error::NotFound("mailbox"))
    ));
    assert_eq!(store.custom_mailboxes(bob).unwrap(), [again]);
}

#[test]
fn moves_and_mailbox_deletions_at_once_leave_every_copy_listed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bob = store.ensure_owner("bob@example.test").unwrap();
    let (mut moved, mut deleted) = (0, 0);
    for round in 0..300 {
        let (_, e) = store_message(&store, T0, 10, &[unread_in(bob, INBOX)]);
        let id = e[0].id;
        let target = store.create_mailbox(bob, &format!("box {round}")).unwrap();
        let start = Arc::new(Barrier::new(2));
        let mover = {
            let (store, start) = (store.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let change = EntryChange {
                    mailbox: Some(target.id),
                    ..Default::default()
                };
                store.update_entry(id, change).map(|_| ())
            })
        };
        start.wait();
        let deletion = store.delete_mailbox(bob, &target);
        let moving = mover.join().unwrap();
        let entry = store.entry(id).unwrap().unwrap();
        match (moving, deletion) {
            // The move went first: the mailbox stays, with the copy in it.
            (Ok(()), Err(Error::MailboxNotEmpty)) => {
                moved += 1;
                assert_eq!(entry.mailbox, target.id);
                assert_eq!(listed(&store, bob, target.id), [id]);
                assert!(store.custom_mailbox(bob, &target.name).unwrap().is_some());
                store
                    .update_entry(
                        id,
                        EntryChange {
                            mailbox: Some(ARCHIVE),
                            ..Default::default()
                        },
                    )
                    .unwrap();
                store.delete_mailbox(bob, &target).unwrap();
            }
            // The deletion went first: the move is refused, the copy stays where it was.
            (Err(Error::NotFound("mailbox")), Ok(())) => {
                deleted += 1;
                assert_eq!(entry.mailbox, INBOX);
                assert_eq!(listed(&store, bob, INBOX)[0], id);
            }
            other => panic!("round {round}: {other:?}"),
        }
    }
    assert_counters_match(&store, &[bob]);
    assert_eq!(moved + deleted, 300);
}

/// The tags and their counts, as `Store::tags` lists them.
fn tag_counts(store: &Store) -> Vec<(String, u64)> {
    store
        .tags()
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.messages))
        .collect()
}

#[test]
fn tags_keep_their_index_and_counts_and_go_with_their_message() {
    let (_dir, store, bob, alice) = bob_and_alice();
    let (m1, e1) = store_message(
        &store,
        T0,
        10,
        &[unread_in(bob, INBOX), unread_in(alice, INBOX)],
    );
    let (m2, _) = store_message(&store, T0, 10, &[unread_in(bob, INBOX)]);
    let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    assert_eq!(
        store
            .set_message_tags(m1.id, &tags(&["Urgent", "a"]))
            .unwrap(),
        Some(tags(&["Urgent", "a"]))
    );
    // The spelling in use wins, on another message and on the same one.
    assert_eq!(
        store.set_message_tags(m2.id, &tags(&["URGENT"])).unwrap(),
        Some(tags(&["Urgent"]))
    );
    assert_eq!(
        store
            .set_message_tags(m1.id, &tags(&["urgent", "b"]))
            .unwrap(),
        Some(tags(&["Urgent", "b"]))
    );
    assert_eq!(tag_counts(&store), [("b".into(), 1), ("Urgent".into(), 2)]);
    let mut tagged = store.tagged_messages("uRGENT").unwrap();
    tagged.sort();
    assert_eq!(tagged, [m1.id, m2.id]);
    assert_eq!(
        store.set_message_tags(9_999_999, &tags(&["x"])).unwrap(),
        None
    );

    store
        .retag_messages(&[m1.id, m2.id], |mut t| {
            t.retain(|x| x != "Urgent");
            t
        })
        .unwrap();
    assert_eq!(tag_counts(&store), [("b".into(), 1)]);
    assert!(store.message_tags(m2.id).unwrap().is_empty());

    // The first copy's deletion keeps them; the last one's removes them.
    store.delete_entry(e1[0].id).unwrap();
    assert_eq!(store.message_tags(m1.id).unwrap(), ["b"]);
    store.delete_entry(e1[1].id).unwrap();
    assert!(store.message_tags(m1.id).unwrap().is_empty());
    assert!(tag_counts(&store).is_empty());
    assert!(store.tagged_messages("b").unwrap().is_empty());
}

/// Several messages written in one transaction are stored as one at a time would be: each
/// body, copy and tag, the counters summed, UIDs in the order of the batch (each message sees
/// the writes of those before it in the same transaction).
#[test]
fn a_batch_stores_each_message_as_single_inserts_would() {
    let (_dir, store, bob, alice) = bob_and_alice();
    let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut batch = Vec::new();
    for (i, tag) in ["Urgent", "urgent", "b"].into_iter().enumerate() {
        let id = store.generate_id().unwrap();
        let mut places = vec![unread_in(bob, INBOX)];
        if i != 1 {
            places.push(sent_by(alice, false));
        }
        let entries: Vec<EntryRecord> = places
            .iter()
            .map(|c| EntryRecord {
                id: store.generate_id().unwrap(),
                message: id,
                owner: c.owner,
                mailbox: c.mailbox,
                read: c.read,
                starred: c.starred,
                bcc: None,
            })
            .collect();
        let record = MessageRecord {
            id,
            received_at: T0,
            size: 10 + i as u64,
            envelope_from: "alice@example.test".into(),
            envelope_to: vec!["bob@example.test".into()],
            from: Mailbox::default(),
            to: vec![],
            cc: vec![],
            reply_to: vec![],
            subject: format!("message {id}"),
            snippet: String::new(),
            message_id: None,
            has_attachments: false,
            entries: entries.iter().map(|e| e.id).collect(),
        };
        batch.push((record, vec![b'x'; 10 + i], entries, tags(&[tag])));
    }
    let new: Vec<NewMessage<'_>> = batch
        .iter()
        .map(|(message, raw, entries, tags)| NewMessage {
            message,
            raw,
            entries,
            tags,
        })
        .collect();
    store.insert_messages(&new).unwrap();

    for (m, raw, entries, _) in &batch {
        assert_eq!(store.message(m.id).unwrap().as_ref(), Some(m));
        assert_eq!(store.raw(m.id).unwrap().as_ref(), Some(raw));
        for e in entries {
            assert_eq!(store.entry(e.id).unwrap().as_ref(), Some(e));
        }
    }
    assert_eq!(store.message_count().unwrap(), 3);
    assert_eq!(store.message_bytes().unwrap(), 10 + 11 + 12);
    let bob_copies: Vec<u64> = batch.iter().map(|b| b.2[0].id).collect();
    assert_eq!(
        uids(&store, bob, INBOX),
        vec![(1, bob_copies[0]), (2, bob_copies[1]), (3, bob_copies[2])]
    );
    assert_eq!(uids(&store, alice, SENT).len(), 2);
    assert_eq!(store.uid_state(bob, INBOX).unwrap().next, 4);
    // The second message took the spelling the first one stored in the same transaction.
    assert_eq!(store.message_tags(batch[1].0.id).unwrap(), ["Urgent"]);
    assert_eq!(tag_counts(&store), [("b".into(), 1), ("Urgent".into(), 2)]);
    assert_counters_match(&store, &[bob, alice]);
    let mut received = store.received_before(T0, 10).unwrap();
    received.sort();
    assert_eq!(received, batch.iter().map(|b| b.0.id).collect::<Vec<_>>());
}

// ----- IMAP numbering ------------------------------------------------------------------------

fn uids(store: &Store, owner: u64, mailbox: u64) -> Vec<(u32, u64)> {
    store
        .uid_entries(owner, mailbox)
        .unwrap()
        .into_iter()
        .map(|u| (u.uid, u.entry))
        .collect()
}

#[test]
fn uids_ascend_per_mailbox_and_a_move_gets_a_new_one() {
    let (_dir, store, bob, alice) = bob_and_alice();
    let (_, a) = store_message(
        &store,
        T0,
        5,
        &[unread_in(bob, INBOX), unread_in(alice, INBOX)],
    );
    let (_, b) = store_message(&store, T0, 5, &[unread_in(bob, INBOX)]);
    assert_eq!(uids(&store, bob, INBOX), vec![(1, a[0].id), (2, b[0].id)]);
    assert_eq!(uids(&store, alice, INBOX), vec![(1, a[1].id)]);
    let inbox = store.uid_state(bob, INBOX).unwrap();
    assert_eq!(inbox.next, 3);

    // A flag change keeps the UID; UIDNEXT stays.
    let read = EntryChange {
        read: Some(true),
        ..Default::default()
    };
    store.update_entry(a[0].id, read).unwrap().unwrap();
    assert_eq!(uids(&store, bob, INBOX), vec![(1, a[0].id), (2, b[0].id)]);
    assert_eq!(store.uid_state(bob, INBOX).unwrap(), inbox);

    // Moved out and back: a new, higher UID each time; UIDNEXT of inbox does not go back.
    let to = |mailbox| EntryChange {
        mailbox: Some(mailbox),
        ..Default::default()
    };
    store.update_entry(a[0].id, to(ARCHIVE)).unwrap().unwrap();
    assert_eq!(uids(&store, bob, ARCHIVE), vec![(1, a[0].id)]);
    assert_eq!(uids(&store, bob, INBOX), vec![(2, b[0].id)]);
    store.update_entry(a[0].id, to(INBOX)).unwrap().unwrap();
    assert_eq!(uids(&store, bob, INBOX), vec![(2, b[0].id), (3, a[0].id)]);
    assert!(uids(&store, bob, ARCHIVE).is_empty());
    assert_eq!(store.uid_state(bob, ARCHIVE).unwrap().next, 2);
    assert_eq!(store.uid_state(bob, INBOX).unwrap().next, 4);

    // Deleting keeps UIDNEXT (RFC 3501 2.3.1.1: expunged UIDs are never reused).
    store.delete_entry(b[0].id).unwrap().unwrap();
    let (_, c) = store_message(&store, T0, 5, &[unread_in(bob, INBOX)]);
    assert_eq!(uids(&store, bob, INBOX), vec![(3, a[0].id), (4, c[0].id)]);
}

#[test]
fn imap_flags_stay_with_the_copy_and_flag_changes_keep_the_uid() {
    let (_dir, store, bob, _) = bob_and_alice();
    let (_, a) = store_message(&store, T0, 5, &[unread_in(bob, INBOX)]);
    assert_eq!(
        store.imap_flags(bob, INBOX, 1).unwrap(),
        Some(Default::default())
    );
    let (e, f) = store
        .set_imap_flags(bob, INBOX, 1, Some(true), None, |mut f| {
            f.deleted = true;
            f.keywords.push("$Forwarded".into());
            f
        })
        .unwrap()
        .unwrap();
    assert!(e.read && f.deleted);
    assert_eq!(store.counts(bob, INBOX).unwrap().unread, 0);
    assert_eq!(store.imap_flags(bob, INBOX, 1).unwrap(), Some(f.clone()));
    assert_eq!(uids(&store, bob, INBOX), vec![(1, a[0].id)]);
    let moved = EntryChange {
        mailbox: Some(ARCHIVE),
        ..Default::default()
    };
    store.update_entry(a[0].id, moved).unwrap().unwrap();
    assert_eq!(store.imap_flags(bob, ARCHIVE, 1).unwrap(), Some(f));
    assert_eq!(store.imap_flags(bob, INBOX, 1).unwrap(), None);
    assert!(
        store
            .set_imap_flags(bob, INBOX, 1, None, None, |f| f)
            .unwrap()
            .is_none()
    );
}

#[test]
fn uids_and_uidvalidity_survive_a_restart_and_a_recreated_mailbox_gets_a_new_validity() {
    let dir = tempfile::tempdir().unwrap();
    let (bob, work, validity, entry) = {
        let store = open(dir.path());
        let bob = store.ensure_owner("bob@example.test").unwrap();
        let work = store.create_mailbox(bob, "Work").unwrap();
        let (_, a) = store_message(&store, T0, 5, &[unread_in(bob, work.id)]);
        let state = store.uid_state(bob, work.id).unwrap();
        (bob, work, state.validity, a[0].id)
    };
    let store = open(dir.path());
    assert_eq!(uids(&store, bob, work.id), vec![(1, entry)]);
    assert_eq!(store.uid_state(bob, work.id).unwrap().validity, validity);
    store.delete_entry(entry).unwrap();
    store.delete_mailbox(bob, &work).unwrap();
    let again = store.create_mailbox(bob, "Work").unwrap();
    let state = store.uid_state(bob, again.id).unwrap();
    assert_ne!(state.validity, validity);
    assert_eq!(state.next, 1);
}

#[test]
fn recent_is_shown_to_one_session_only() {
    let (_dir, store, bob, _) = bob_and_alice();
    store_message(&store, T0, 5, &[unread_in(bob, INBOX)]);
    assert_eq!(store.take_recent(bob, INBOX).unwrap().recent, 0);
    assert_eq!(store.take_recent(bob, INBOX).unwrap().recent, 1);
    store_message(&store, T0, 5, &[unread_in(bob, INBOX)]);
    assert_eq!(store.take_recent(bob, INBOX).unwrap().recent, 1);
}
