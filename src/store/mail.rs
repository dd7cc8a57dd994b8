//! Mail in the store: message bodies stored once, one entry per owner copy, mailbox indexes,
//! per-mailbox counters and the arrival-time index that retention reads.
//!
//! Trees:
//! - `owners`: lower-cased address -> owner id. Mail belongs to addresses, so mail to an address
//!   without an account is kept under it and is there when the account is made.
//! - `messages`: message id -> [`MessageRecord`] (headers summary; the list of its entries)
//! - `body_at`: message id -> where its RFC 5322 source is ([`bodies::Location`]: the
//!   sources themselves are in segment files outside sled, see [`bodies`])
//! - `segments`: segment number -> [`bodies::Live`] (what a segment file still holds)
//! - `raw`: message id -> the source, for messages stored before sources moved out of sled
//!   (read and deleted as before; nothing new is written there)
//! - `received`: received_at ++ message id -> () (retention and the message cap)
//! - `entries`: entry id -> [`EntryRecord`] (one owner's copy: mailbox and flags)
//! - `mailbox_index`, `unread_index`, `starred_index`: owner ++ mailbox ++ entry id -> flags
//!   (one byte; in `mailbox_index` followed by the copy's IMAP UID, 4 bytes big-endian)
//! - `uid_index`: owner ++ mailbox ++ UID -> entry id ++ the copy's [`ImapFlags`] (absent when
//!   none): a mailbox in IMAP UID order. Every copy gets a UID when it is linked into a
//!   mailbox, a moved copy a new one in its new mailbox, so UIDs only grow (RFC 3501 2.3.1.1).
//! - `mailbox_uids`: owner ++ mailbox -> [`UidState`] (UIDVALIDITY, the next UID, the
//!   `\Recent` mark), made with the mailbox's first copy or its first IMAP look
//! - `mailbox_names`: owner ++ lower-cased name -> [`MailboxRecord`] (custom mailboxes)
//! - `mailbox_counts`: owner ++ mailbox -> [`Counts`]. A custom mailbox has its entry exactly
//!   while it exists (made and removed with its name), so that a transaction moving a copy
//!   into it can see, in the same transaction, that it still exists.
//! - `message_tags`: message id -> its tags (`Vec<String>`, in the spelling of [`TagRecord`];
//!   absent when it has none). A tree of its own, so that message records stay as they were.
//! - `tags`: lower-cased tag -> [`TagRecord`] (its spelling and how many messages carry it)
//! - `tag_index`: lower-cased tag ++ 0xFF ++ message id -> () (the messages of a tag, for
//!   renaming and deleting it)
//! - `operator_read`: message id -> () for the messages the operator has read (Mailpit's read
//!   flag: the operator's own, apart from the flags of each user's copy)
//! - `subscriptions`: owner ++ lower-cased name -> the name as subscribed (IMAP SUBSCRIBE; a
//!   name may be subscribed whether or not its mailbox exists, RFC 3501 6.3.6)
//! - `meta`: store-wide counters (`messages`, `bytes`, `operator_read`, and `users`, kept by the
//!   parent module)
//!
//! Every write runs in one transaction over the trees it touches, the counters in `meta` and
//! `mailbox_counts` included: they never disagree with the records they count, even after a
//! crash.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::{Transactional, Tree};

use super::bodies::{self, Live, Location};
use super::{Store, StoreError, abort, codec, keys, txn_error};
use crate::error::Error;
use crate::time::Timestamp;

/// Ids of the system mailboxes, which every owner has and nobody can delete.
pub const INBOX: u64 = 1;
pub const SENT: u64 = 2;
pub const ARCHIVE: u64 = 3;
pub const TRASH: u64 = 4;
/// The system mailboxes in display order.
pub const SYSTEM_MAILBOXES: [(u64, &str); 4] = [
    (INBOX, "inbox"),
    (SENT, "sent"),
    (ARCHIVE, "archive"),
    (TRASH, "trash"),
];
/// Custom mailbox ids start above this.
const FIRST_CUSTOM_MAILBOX: u64 = 16;

/// Whether a mailbox id is a custom mailbox's (not a system one).
fn is_custom(mailbox: u64) -> bool {
    mailbox >= FIRST_CUSTOM_MAILBOX
}

/// The keys of the store-wide counters in `meta`.
const MESSAGES_KEY: &[u8] = b"messages";
const BYTES_KEY: &[u8] = b"bytes";
const OPERATOR_READ_KEY: &[u8] = b"operator_read";
/// Set in `meta` once every custom mailbox of a store made before mailboxes had their
/// `mailbox_counts` entry from the start has one.
const MAILBOX_COUNTS_KEY: &[u8] = b"mailbox_counts";

const FLAG_READ: u8 = 1;
const FLAG_STARRED: u8 = 2;

/// Set in `meta` once every copy of a store made before UIDs has one.
const UIDS_KEY: &[u8] = b"uids";
/// The last UIDVALIDITY handed out, in `meta` (a big-endian u32).
const UIDVALIDITY_KEY: &[u8] = b"uidvalidity";

/// The IMAP numbering of one mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UidState {
    /// UIDVALIDITY: new for every mailbox made, so a mailbox deleted and made again under
    /// the same name never pairs old UIDs with new copies.
    pub validity: u32,
    /// The UID the next copy linked here gets (UIDNEXT).
    pub next: u32,
    /// The highest UID some session has already been shown as `\Recent`.
    pub recent: u32,
}

/// A copy's IMAP flags besides `\Seen` (read) and `\Flagged` (starred), kept with its place
/// in the mailbox, so a moved copy takes them along.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImapFlags {
    pub answered: bool,
    pub deleted: bool,
    pub draft: bool,
    /// Keywords in the spelling they were set with.
    pub keywords: Vec<String>,
}

impl ImapFlags {
    /// The `uid_index` value suffix: nothing for no flags (most copies).
    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        if *self == ImapFlags::default() {
            Ok(Vec::new())
        } else {
            codec::encode(self)
        }
    }

    fn decode(bytes: &[u8]) -> Result<ImapFlags, StoreError> {
        if bytes.is_empty() {
            Ok(ImapFlags::default())
        } else {
            codec::decode(bytes)
        }
    }
}

/// One copy in a mailbox's UID order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UidEntry {
    pub uid: u32,
    pub entry: u64,
}

/// A name and address from a message header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

/// A stored message: what every copy shares. Decoded from the source once, at delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub id: u64,
    pub received_at: Timestamp,
    /// Size of the source in bytes.
    pub size: u64,
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub subject: String,
    pub snippet: String,
    /// The `Message-ID` header, without angle brackets.
    pub message_id: Option<String>,
    pub has_attachments: bool,
    /// The copies that still exist; the message goes when the last one goes.
    pub entries: Vec<u64>,
}

/// A message to store: its record, source, copies and tags, as [`Store::insert_messages`]
/// takes them. `message.entries` must list the ids of `entries`; `tags` must differ from each
/// other in more than letter case.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    pub message: &'a MessageRecord,
    pub raw: &'a [u8],
    pub entries: &'a [EntryRecord],
    pub tags: &'a [String],
}

/// One owner's copy of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryRecord {
    pub id: u64,
    pub message: u64,
    pub owner: u64,
    pub mailbox: u64,
    pub read: bool,
    pub starred: bool,
    /// Blind-copy recipients: `Some` on the sender's copy only.
    pub bcc: Option<Vec<String>>,
}

impl EntryRecord {
    fn flags(&self) -> u8 {
        (if self.read { FLAG_READ } else { 0 }) | (if self.starred { FLAG_STARRED } else { 0 })
    }
}

/// A custom mailbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailboxRecord {
    pub id: u64,
    pub name: String,
    pub created_at: Timestamp,
}

/// A tag in use: how it is spelt (the first spelling stored wins; others in another letter
/// case are the same tag) and how many messages carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRecord {
    pub name: String,
    pub messages: u64,
}

/// Message counts of one mailbox, kept up to date by every write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    pub total: u64,
    pub unread: u64,
}

/// Which entries a listing wants.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListFilter {
    pub read: Option<bool>,
    pub starred: Option<bool>,
}

/// A change to one entry.
#[derive(Debug, Clone, Copy, Default)]
pub struct EntryChange {
    pub read: Option<bool>,
    pub starred: Option<bool>,
    pub mailbox: Option<u64>,
}

/// A message deleted with all its copies: the records as they were, and what it freed.
#[derive(Debug, Clone)]
pub struct Gone {
    pub message: MessageRecord,
    pub entries: Vec<EntryRecord>,
    pub removed: Removed,
}

/// What a removal freed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Whole messages (bodies) removed.
    pub messages: u64,
    /// Bytes of message source removed.
    pub bytes: u64,
}

impl std::ops::AddAssign for Removed {
    fn add_assign(&mut self, o: Removed) {
        self.messages += o.messages;
        self.bytes += o.bytes;
    }
}

impl std::iter::Sum for Removed {
    fn sum<I: Iterator<Item = Removed>>(iter: I) -> Removed {
        iter.fold(Removed::default(), |mut total, r| {
            total += r;
            total
        })
    }
}

/// The mail trees.
#[derive(Clone)]
pub(super) struct MailTrees {
    owners: Tree,
    messages: Tree,
    raw: Tree,
    body_at: Tree,
    segments: Tree,
    received: Tree,
    entries: Tree,
    mailbox_index: Tree,
    unread_index: Tree,
    starred_index: Tree,
    mailbox_names: Tree,
    mailbox_counts: Tree,
    message_tags: Tree,
    tags: Tree,
    tag_index: Tree,
    operator_read: Tree,
    uid_index: Tree,
    mailbox_uids: Tree,
    subscriptions: Tree,
    pub(super) meta: Tree,
}

impl MailTrees {
    /// The highest segment the index counts sources in.
    pub(super) fn last_segment(&self) -> Result<Option<u32>, StoreError> {
        Ok(self
            .segments
            .last()?
            .and_then(|(k, _)| k.as_ref().try_into().ok().map(u32::from_be_bytes)))
    }

    pub(super) fn open(db: &sled::Db) -> Result<Self, sled::Error> {
        Ok(MailTrees {
            owners: db.open_tree("owners")?,
            messages: db.open_tree("messages")?,
            raw: db.open_tree("raw")?,
            body_at: db.open_tree("body_at")?,
            segments: db.open_tree("segments")?,
            received: db.open_tree("received")?,
            entries: db.open_tree("entries")?,
            mailbox_index: db.open_tree("mailbox_index")?,
            unread_index: db.open_tree("unread_index")?,
            starred_index: db.open_tree("starred_index")?,
            mailbox_names: db.open_tree("mailbox_names")?,
            mailbox_counts: db.open_tree("mailbox_counts")?,
            message_tags: db.open_tree("message_tags")?,
            tags: db.open_tree("tags")?,
            tag_index: db.open_tree("tag_index")?,
            operator_read: db.open_tree("operator_read")?,
            uid_index: db.open_tree("uid_index")?,
            mailbox_uids: db.open_tree("mailbox_uids")?,
            subscriptions: db.open_tree("subscriptions")?,
            meta: db.open_tree("meta")?,
        })
    }
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// The transactional view of the trees a mail write touches.
struct Tx<'a> {
    messages: &'a TransactionalTree,
    raw: &'a TransactionalTree,
    body_at: &'a TransactionalTree,
    segments: &'a TransactionalTree,
    received: &'a TransactionalTree,
    entries: &'a TransactionalTree,
    mailbox_index: &'a TransactionalTree,
    unread_index: &'a TransactionalTree,
    starred_index: &'a TransactionalTree,
    mailbox_counts: &'a TransactionalTree,
    message_tags: &'a TransactionalTree,
    tags: &'a TransactionalTree,
    tag_index: &'a TransactionalTree,
    operator_read: &'a TransactionalTree,
    uid_index: &'a TransactionalTree,
    mailbox_uids: &'a TransactionalTree,
    meta: &'a TransactionalTree,
}

/// Counts a source in (`1`) or out of (`-1`) its segment; a segment left with nothing loses
/// its entry.
fn count_body(segments: &TransactionalTree, at: Location, sign: i64) -> TxResult<()> {
    let key = bodies::segment_key(at.segment);
    let mut live = segments
        .get(key)?
        .map_or_else(Live::default, |v| Live::decode(&v));
    let bytes = at.footprint();
    if sign > 0 {
        live.count += 1;
        live.bytes += bytes;
    } else {
        live.count = live.count.saturating_sub(1);
        live.bytes = live.bytes.saturating_sub(bytes);
    }
    if live.count == 0 {
        segments.remove(&key)?;
    } else {
        segments.insert(&key, &live.encode())?;
    }
    Ok(())
}

/// What [`Store::reclaim_bodies`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Segment files deleted.
    pub segments: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Sources moved out of sparse segments first.
    pub moved: u64,
}

/// Sources moved per transaction when a segment is compacted.
const COMPACT_TXN: usize = 64;

/// A copy's place in its mailbox as [`Tx::unlink`] found it: its UID and the encoded
/// [`ImapFlags`].
type Slot = Option<(u32, Vec<u8>)>;

/// A new UIDVALIDITY: the time in seconds, as most servers use, but always above the last
/// one handed out, so two mailboxes made in one second (or a clock set back) never share one.
fn fresh_validity(meta: &TransactionalTree) -> TxResult<u32> {
    let last = meta
        .get(UIDVALIDITY_KEY)?
        .and_then(|v| keys::u32_at(&v, 0))
        .unwrap_or(0);
    let now = u32::try_from(Timestamp::now().0).unwrap_or(u32::MAX);
    let v = now.max(last.saturating_add(1));
    meta.insert(UIDVALIDITY_KEY, &v.to_be_bytes())?;
    Ok(v)
}

/// The UID state of a mailbox, made when it has none.
fn uid_state_in(
    mailbox_uids: &TransactionalTree,
    meta: &TransactionalTree,
    key: &[u8],
) -> TxResult<UidState> {
    match mailbox_uids.get(key)? {
        Some(v) => Ok(abort(codec::decode(&v))?),
        None => {
            let state = UidState {
                validity: fresh_validity(meta)?,
                next: 1,
                recent: 0,
            };
            mailbox_uids.insert(key, abort(codec::encode(&state))?)?;
            Ok(state)
        }
    }
}

impl Tx<'_> {
    fn get<T: serde::de::DeserializeOwned>(
        tree: &TransactionalTree,
        key: &[u8],
    ) -> TxResult<Option<T>> {
        match tree.get(key)? {
            Some(v) => Ok(Some(abort(codec::decode(&v))?)),
            None => Ok(None),
        }
    }

    fn put<T: Serialize>(tree: &TransactionalTree, key: &[u8], value: &T) -> TxResult<()> {
        tree.insert(key, abort(codec::encode(value))?)?;
        Ok(())
    }

    fn entry(&self, id: u64) -> TxResult<Option<EntryRecord>> {
        Self::get(self.entries, &keys::id(id))
    }

    fn message(&self, id: u64) -> TxResult<Option<MessageRecord>> {
        Self::get(self.messages, &keys::id(id))
    }

    /// Changes the store-wide message and byte counters.
    fn bump(&self, messages: i64, bytes: i64) -> TxResult<()> {
        self.bump_keys(&[(MESSAGES_KEY, messages), (BYTES_KEY, bytes)])
    }

    /// Changes store-wide counters in `meta`.
    fn bump_keys(&self, deltas: &[(&[u8], i64)]) -> TxResult<()> {
        for &(key, delta) in deltas {
            if delta != 0 {
                let n = self
                    .meta
                    .get(key)?
                    .and_then(|v| keys::id_at(&v, 0))
                    .unwrap_or(0);
                self.meta
                    .insert(key, &keys::id(n.saturating_add_signed(delta)))?;
            }
        }
        Ok(())
    }

    /// Whether a copy may go into `mailbox` of `owner`: a system mailbox always, a custom one
    /// while it exists.
    fn mailbox_exists(&self, owner: u64, mailbox: u64) -> TxResult<bool> {
        Ok(!is_custom(mailbox)
            || self
                .mailbox_counts
                .get(&keys::mailbox(owner, mailbox)[..])?
                .is_some())
    }

    fn add_counts(&self, owner: u64, mailbox: u64, total: i64, unread: i64) -> TxResult<()> {
        let key = keys::mailbox(owner, mailbox);
        let current: Option<Counts> = Self::get(self.mailbox_counts, &key)?;
        if current.is_none() && is_custom(mailbox) {
            // The mailbox is gone (a copy left in it by a store from before moves checked
            // that): do not make it exist again.
            return Ok(());
        }
        let mut c = current.unwrap_or_default();
        c.total = c.total.saturating_add_signed(total);
        c.unread = c.unread.saturating_add_signed(unread);
        Self::put(self.mailbox_counts, &key, &c)
    }

    /// Adds an entry to its mailbox's indexes and counts (the entry record itself too), at
    /// `slot` in its UID order (a copy changing only its flags), or at the mailbox's next UID
    /// (`None`: a new copy, or one moved in, keeping the IMAP flags of `slot`).
    fn link(&self, e: &EntryRecord, slot: Slot, keep_uid: bool) -> TxResult<u32> {
        let k = keys::mailbox_entry(e.owner, e.mailbox, e.id);
        let flags = [e.flags()];
        let (uid, extra) = match slot {
            Some((uid, extra)) if keep_uid => (uid, extra),
            slot => {
                let key = keys::mailbox(e.owner, e.mailbox);
                let mut state = uid_state_in(self.mailbox_uids, self.meta, &key)?;
                let uid = state.next;
                state.next = state.next.saturating_add(1);
                Self::put(self.mailbox_uids, &key, &state)?;
                (uid, slot.map(|(_, x)| x).unwrap_or_default())
            }
        };
        let mut index_value = flags.to_vec();
        index_value.extend_from_slice(&uid.to_be_bytes());
        self.mailbox_index.insert(&k[..], index_value)?;
        let mut uid_value = keys::id(e.id).to_vec();
        uid_value.extend_from_slice(&extra);
        self.uid_index
            .insert(&keys::mailbox_uid(e.owner, e.mailbox, uid)[..], uid_value)?;
        if !e.read {
            self.unread_index.insert(&k[..], &flags)?;
        }
        if e.starred {
            self.starred_index.insert(&k[..], &flags)?;
        }
        self.add_counts(e.owner, e.mailbox, 1, i64::from(!e.read))?;
        Self::put(self.entries, &keys::id(e.id), e)?;
        Ok(uid)
    }

    /// Removes an entry from its mailbox's indexes and counts (not the entry record), and
    /// returns its place in the UID order.
    fn unlink(&self, e: &EntryRecord) -> TxResult<Slot> {
        let k = keys::mailbox_entry(e.owner, e.mailbox, e.id);
        let old = self.mailbox_index.remove(&k[..])?;
        self.unread_index.remove(&k[..])?;
        self.starred_index.remove(&k[..])?;
        self.add_counts(e.owner, e.mailbox, -1, -i64::from(!e.read))?;
        let Some(uid) = old.and_then(|v| keys::u32_at(&v, 1)) else {
            return Ok(None);
        };
        let extra = self
            .uid_index
            .remove(&keys::mailbox_uid(e.owner, e.mailbox, uid)[..])?
            .map(|v| v.get(8..).unwrap_or_default().to_vec())
            .unwrap_or_default();
        Ok(Some((uid, extra)))
    }

    /// Removes an entry; the message too when it was the last copy.
    fn remove_entry(&self, e: &EntryRecord) -> TxResult<Removed> {
        self.unlink(e)?;
        self.entries.remove(&keys::id(e.id))?;
        let Some(mut m) = self.message(e.message)? else {
            return Ok(Removed::default());
        };
        m.entries.retain(|id| *id != e.id);
        if m.entries.is_empty() {
            self.remove_message_record(&m)
        } else {
            Self::put(self.messages, &keys::id(m.id), &m)?;
            Ok(Removed::default())
        }
    }

    /// Removes a message with every copy of it, and returns them; `None` when it is already
    /// gone.
    fn delete_message(&self, id: u64) -> TxResult<Option<Gone>> {
        let Some(message) = self.message(id)? else {
            return Ok(None);
        };
        let mut entries = Vec::with_capacity(message.entries.len());
        for eid in &message.entries {
            if let Some(e) = self.entry(*eid)? {
                self.unlink(&e)?;
                self.entries.remove(&keys::id(e.id))?;
                entries.push(e);
            }
        }
        let removed = self.remove_message_record(&message)?;
        Ok(Some(Gone {
            message,
            entries,
            removed,
        }))
    }

    /// The tags of a message.
    fn message_tags(&self, id: u64) -> TxResult<Vec<String>> {
        Ok(Self::get(self.message_tags, &keys::id(id))?.unwrap_or_default())
    }

    /// Sets the tags of a message (none: removes them), keeping the tag index and counts in
    /// step; a tag already in use keeps its spelling. Returns the tags as stored.
    fn set_tags(&self, id: u64, tags: &[String]) -> TxResult<Vec<String>> {
        let old = self.message_tags(id)?;
        let same = |a: &str, b: &str| keys::tag(a) == keys::tag(b);
        for t in &old {
            if !tags.iter().any(|n| same(n, t)) {
                self.tag_index.remove(keys::tag_message(t, id))?;
                let key = keys::tag(t);
                if let Some(mut r) = Self::get::<TagRecord>(self.tags, &key)? {
                    r.messages = r.messages.saturating_sub(1);
                    if r.messages == 0 {
                        self.tags.remove(key)?;
                    } else {
                        Self::put(self.tags, &key, &r)?;
                    }
                }
            }
        }
        let mut stored = Vec::with_capacity(tags.len());
        for t in tags {
            let key = keys::tag(t);
            let existing: Option<TagRecord> = Self::get(self.tags, &key)?;
            match old.iter().find(|o| same(o, t)) {
                // Kept: the spelling in use stays.
                Some(o) => stored.push(existing.map_or_else(|| o.clone(), |r| r.name)),
                None => {
                    let mut r = existing.unwrap_or(TagRecord {
                        name: t.clone(),
                        messages: 0,
                    });
                    r.messages += 1;
                    Self::put(self.tags, &key, &r)?;
                    self.tag_index.insert(keys::tag_message(t, id), &[])?;
                    stored.push(r.name);
                }
            }
        }
        if stored.is_empty() {
            self.message_tags.remove(&keys::id(id))?;
        } else {
            Self::put(self.message_tags, &keys::id(id), &stored)?;
        }
        Ok(stored)
    }

    /// Sets or clears the operator's read flag of a message; whether it changed.
    fn set_operator_read(&self, id: u64, read: bool) -> TxResult<bool> {
        let key = keys::id(id);
        let changed = if read {
            self.operator_read.insert(&key, &[])?.is_none()
        } else {
            self.operator_read.remove(&key)?.is_some()
        };
        if changed {
            self.bump_keys(&[(OPERATOR_READ_KEY, if read { 1 } else { -1 })])?;
        }
        Ok(changed)
    }

    /// Writes a new message: its record (`value`, encoded), source, arrival, copies, tags and
    /// the store-wide counters. The one place a message is first written.
    fn insert_new(&self, m: &NewMessage<'_>, value: &[u8], at: Location) -> TxResult<()> {
        let message = m.message;
        self.messages.insert(&keys::id(message.id), value)?;
        self.put_body(message.id, at)?;
        self.received
            .insert(&keys::received(message.received_at, message.id)[..], &[])?;
        for e in m.entries {
            self.link(e, None, false)?;
        }
        if !m.tags.is_empty() {
            self.set_tags(message.id, m.tags)?;
        }
        self.bump(1, message.size as i64)
    }

    fn remove_message_record(&self, m: &MessageRecord) -> TxResult<Removed> {
        self.set_tags(m.id, &[])?;
        self.set_operator_read(m.id, false)?;
        self.messages.remove(&keys::id(m.id))?;
        match self.body_at.remove(&keys::id(m.id))? {
            Some(at) => self.count_body(abort(Location::decode(&at))?, -1)?,
            None => {
                self.raw.remove(&keys::id(m.id))?;
            }
        }
        self.received
            .remove(&keys::received(m.received_at, m.id)[..])?;
        self.bump(-1, -(m.size as i64))?;
        Ok(Removed {
            messages: 1,
            bytes: m.size,
        })
    }

    fn count_body(&self, at: Location, sign: i64) -> TxResult<()> {
        count_body(self.segments, at, sign)
    }

    /// Indexes a message's source at `at`.
    fn put_body(&self, id: u64, at: Location) -> TxResult<()> {
        self.body_at.insert(&keys::id(id), &at.encode())?;
        self.count_body(at, 1)
    }
}

impl Store {
    fn mail_tx<T>(&self, f: impl Fn(&Tx<'_>) -> TxResult<T>) -> Result<T, StoreError> {
        let t = &self.mail;
        // More trees than sled's tuples take (14): a slice, in the order of `Tx`'s fields.
        let trees: [&Tree; 17] = [
            &t.messages,
            &t.raw,
            &t.body_at,
            &t.segments,
            &t.received,
            &t.entries,
            &t.mailbox_index,
            &t.unread_index,
            &t.starred_index,
            &t.mailbox_counts,
            &t.message_tags,
            &t.tags,
            &t.tag_index,
            &t.operator_read,
            &t.uid_index,
            &t.mailbox_uids,
            &t.meta,
        ];
        trees
            .as_slice()
            .transaction(|v: &Vec<TransactionalTree>| {
                f(&Tx {
                    messages: &v[0],
                    raw: &v[1],
                    body_at: &v[2],
                    segments: &v[3],
                    received: &v[4],
                    entries: &v[5],
                    mailbox_index: &v[6],
                    unread_index: &v[7],
                    starred_index: &v[8],
                    mailbox_counts: &v[9],
                    message_tags: &v[10],
                    tags: &v[11],
                    tag_index: &v[12],
                    operator_read: &v[13],
                    uid_index: &v[14],
                    mailbox_uids: &v[15],
                    meta: &v[16],
                })
            })
            .map_err(txn_error)
    }

    fn stat(&self, key: &[u8]) -> Result<u64, StoreError> {
        Ok(self
            .mail
            .meta
            .get(key)?
            .and_then(|v| keys::id_at(&v, 0))
            .unwrap_or(0))
    }

    /// Messages stored (bodies, not copies).
    pub fn message_count(&self) -> Result<u64, StoreError> {
        self.stat(MESSAGES_KEY)
    }

    /// Bytes of message source stored.
    pub fn message_bytes(&self) -> Result<u64, StoreError> {
        self.stat(BYTES_KEY)
    }

    // ----- owners ------------------------------------------------------------------------------

    /// The owner id of an address (case-insensitive), if mail was ever kept for it.
    pub fn owner(&self, address: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .mail
            .owners
            .get(keys::email(address))?
            .and_then(|v| keys::id_at(&v, 0)))
    }

    /// The owner id of an address, made on first use.
    pub fn ensure_owner(&self, address: &str) -> Result<u64, StoreError> {
        let key = keys::email(address);
        if let Some(id) = self.mail.owners.get(&key)?.and_then(|v| keys::id_at(&v, 0)) {
            return Ok(id);
        }
        let id = self.generate_id()?;
        match self.mail.owners.compare_and_swap(
            &key,
            None as Option<&[u8]>,
            Some(&keys::id(id)[..]),
        )? {
            Ok(()) => Ok(id),
            // Someone made it meanwhile: use theirs.
            Err(cas) => cas
                .current
                .and_then(|v| keys::id_at(&v, 0))
                .ok_or_else(|| StoreError::Codec("owner id vanished".into())),
        }
    }

    // ----- messages ----------------------------------------------------------------------------

    /// Stores a message, its source, its entries and its tags atomically. `message.entries`
    /// must list the ids of `entries`; `tags` must differ from each other in more than letter
    /// case. The same as [`Store::insert_messages`] with one message.
    pub fn insert_message(
        &self,
        message: &MessageRecord,
        raw: &[u8],
        entries: &[EntryRecord],
        tags: &[String],
    ) -> Result<(), StoreError> {
        self.insert_messages(&[NewMessage {
            message,
            raw,
            entries,
            tags,
        }])
    }

    /// Stores several new messages in one transaction: all of them or none. One transaction
    /// over the mail trees costs about as much whether it writes one message or a hundred
    /// (sled locks, checks and applies the whole write set at once), so messages that
    /// arrive together are cheaper written together. Each message as in
    /// [`Store::insert_message`]; their ids must differ. A message sees those before it in
    /// `batch` (UIDs follow its order, a tag keeps the spelling an earlier one stored).
    pub fn insert_messages(&self, batch: &[NewMessage<'_>]) -> Result<(), StoreError> {
        // Encoded once, outside the transaction, which sled may run again on a conflict.
        let values = batch
            .iter()
            .map(|m| codec::encode(m.message))
            .collect::<Result<Vec<_>, _>>()?;
        // The sources in one write to the active segment; the gate keeps it from being
        // reclaimed before the transaction has indexed them.
        let _gate = self.bodies.gate();
        let sources: Vec<(u64, &[u8])> = batch.iter().map(|m| (m.message.id, m.raw)).collect();
        let places = self.bodies.append(&sources)?;
        self.mail_tx(|tx| {
            for ((m, value), at) in batch.iter().zip(&values).zip(&places) {
                tx.insert_new(m, value, *at)?;
            }
            Ok(())
        })
    }

    // ----- tags --------------------------------------------------------------------------------

    /// The tags of a message (none for an unknown one).
    pub fn message_tags(&self, id: u64) -> Result<Vec<String>, StoreError> {
        self.mail
            .message_tags
            .get(keys::id(id))?
            .map(|v| codec::decode(&v))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// Sets the tags of a message, replacing its others; `tags` must differ from each other
    /// in more than letter case. Returns the tags as stored (a tag in use keeps its spelling),
    /// or `None` when the message is gone.
    pub fn set_message_tags(
        &self,
        id: u64,
        tags: &[String],
    ) -> Result<Option<Vec<String>>, StoreError> {
        self.mail_tx(|tx| match tx.message(id)? {
            Some(_) => tx.set_tags(id, tags).map(Some),
            None => Ok(None),
        })
    }

    /// Every tag in use, in the order of their lower-cased names.
    pub fn tags(&self) -> Result<Vec<TagRecord>, StoreError> {
        self.mail
            .tags
            .iter()
            .map(|item| codec::decode(&item?.1))
            .collect()
    }

    /// The ids of the messages carrying a tag (in any letter case), oldest first.
    pub fn tagged_messages(&self, tag: &str) -> Result<Vec<u64>, StoreError> {
        let prefix = keys::tag_prefix(tag);
        self.mail
            .tag_index
            .scan_prefix(&prefix)
            .map(|item| Ok(keys::id_at(&item?.0, prefix.len()).unwrap_or_default()))
            .collect()
    }

    /// Changes the tags of several messages in one transaction: `change` gets each message's
    /// tags and returns the new ones. Messages gone meanwhile are skipped.
    pub fn retag_messages(
        &self,
        ids: &[u64],
        change: impl Fn(Vec<String>) -> Vec<String>,
    ) -> Result<(), StoreError> {
        self.mail_tx(|tx| {
            for &id in ids {
                if tx.message(id)?.is_some() {
                    let tags = change(tx.message_tags(id)?);
                    tx.set_tags(id, &tags)?;
                }
            }
            Ok(())
        })
    }

    // ----- the operator's read flags ------------------------------------------------------------

    /// Whether the operator has read a message.
    pub fn operator_read(&self, id: u64) -> Result<bool, StoreError> {
        Ok(self.mail.operator_read.contains_key(keys::id(id))?)
    }

    /// How many stored messages the operator has read: a point read of a counter.
    pub fn operator_read_count(&self) -> Result<u64, StoreError> {
        self.stat(OPERATOR_READ_KEY)
    }

    /// Sets or clears the operator's read flag of several messages in one transaction;
    /// returns the ids whose flag changed (messages gone are not marked read).
    pub fn set_operator_read(&self, ids: &[u64], read: bool) -> Result<Vec<u64>, StoreError> {
        self.mail_tx(|tx| {
            let mut changed = Vec::new();
            for &id in ids {
                if (!read || tx.message(id)?.is_some()) && tx.set_operator_read(id, read)? {
                    changed.push(id);
                }
            }
            Ok(changed)
        })
    }

    /// Up to `n` ids of messages the operator has read, oldest first.
    pub fn operator_read_ids(&self, n: usize) -> Result<Vec<u64>, StoreError> {
        self.mail
            .operator_read
            .iter()
            .keys()
            .take(n)
            .map(|k| Ok(keys::id_at(&k?, 0).unwrap_or_default()))
            .collect()
    }

    /// A message record.
    pub fn message(&self, id: u64) -> Result<Option<MessageRecord>, StoreError> {
        self.mail
            .messages
            .get(keys::id(id))?
            .map(|v| codec::decode(&v))
            .transpose()
    }

    /// Gives the disk of deleted messages back: compacts every closed segment file whose
    /// live sources take less than half of it (they move to the active segment), then
    /// deletes every closed segment holding nothing live, once the deletions that emptied it
    /// are on disk. Its cost follows the segments it touches, not the store. Blocking.
    pub fn reclaim_bodies(&self) -> Result<Reclaimed, StoreError> {
        let active = self.bodies.active();
        let mut closed = bodies::Bodies::list(&self.dir.join(bodies::BODIES_DIR))?;
        closed.retain(|s| *s < active);
        closed.sort_unstable();
        let mut done = Reclaimed::default();
        for &segment in &closed {
            let Some(live) = self.mail.segments.get(bodies::segment_key(segment))? else {
                continue;
            };
            let live = Live::decode(&live);
            if live.bytes.saturating_mul(2) < self.bodies.file_len(segment)? {
                done.moved += self.compact(segment)?;
            }
        }
        // Closed segments stay closed; the gate keeps out inserts whose sources are in one
        // but not yet indexed.
        let _closed = self.bodies.gate_closed();
        let mut empty = Vec::new();
        for segment in closed {
            if !self
                .mail
                .segments
                .contains_key(bodies::segment_key(segment))?
            {
                empty.push(segment);
            }
        }
        if empty.is_empty() {
            return Ok(done);
        }
        // The deletions that emptied them go to disk before the files do.
        self.flush()?;
        for segment in empty {
            done.bytes += self.bodies.file_len(segment)?;
            self.bodies.remove(segment)?;
            done.segments += 1;
        }
        Ok(done)
    }

    /// Moves the live sources of a closed segment to the active one; returns how many moved.
    fn compact(&self, segment: u32) -> Result<u64, StoreError> {
        let mut live = Vec::new();
        self.bodies.scan(segment, &mut |r| {
            if self.mail.body_at.get(keys::id(r.id))?.as_deref() == Some(&r.at.encode()[..]) {
                live.push(r);
            }
            Ok(())
        })?;
        let mut moved = 0;
        for chunk in live.chunks(COMPACT_TXN) {
            let mut sources = Vec::with_capacity(chunk.len());
            for r in chunk {
                match self.bodies.read(r.id, r.at) {
                    Ok(Some(source)) => sources.push((*r, source)),
                    // Deleted meanwhile, or damaged: left where it is.
                    Ok(None) | Err(StoreError::Corrupt { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            let _gate = self.bodies.gate();
            let refs: Vec<(u64, &[u8])> = sources.iter().map(|(r, s)| (r.id, &s[..])).collect();
            let to = self.bodies.append(&refs)?;
            moved += (&self.mail.body_at, &self.mail.segments)
                .transaction(|(body_at, segments)| {
                    let mut n = 0;
                    for ((r, _), to) in sources.iter().zip(&to) {
                        let key = keys::id(r.id);
                        // Only if still there: a message deleted meanwhile stays deleted.
                        if body_at.get(key)?.as_deref() == Some(&r.at.encode()[..]) {
                            body_at.insert(&key, &to.encode())?;
                            count_body(segments, r.at, -1)?;
                            count_body(segments, *to, 1)?;
                            n += 1;
                        }
                    }
                    Ok(n)
                })
                .map_err(txn_error)?;
        }
        Ok(moved)
    }

    /// A message's source.
    pub fn raw(&self, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        // Twice at most: a segment compacted between reading the place and the file moved
        // the source, and the second look finds its new place.
        for _ in 0..2 {
            let Some(at) = self.mail.body_at.get(keys::id(id))? else {
                return Ok(self.mail.raw.get(keys::id(id))?.map(|v| v.to_vec()));
            };
            if let Some(source) = self.bodies.read(id, Location::decode(&at)?)? {
                return Ok(Some(source));
            }
        }
        Err(StoreError::Corrupt {
            path: self.dir.join(bodies::BODIES_DIR),
            detail: format!("the segment file holding message {id} is missing"),
        })
    }

    /// An entry record.
    pub fn entry(&self, id: u64) -> Result<Option<EntryRecord>, StoreError> {
        self.mail
            .entries
            .get(keys::id(id))?
            .map(|v| codec::decode(&v))
            .transpose()
    }

    /// Deletes several messages with every copy of each, in one transaction; ids already gone
    /// are skipped. Retention uses this: every sled transaction writes out the log buffer
    /// (`pin_log` rolls it), so one transaction per batch instead of one per message makes a
    /// sweep several times faster and leaves the global transaction lock free more often.
    pub fn delete_messages(&self, ids: &[u64]) -> Result<Removed, StoreError> {
        let gone = self.delete_messages_returning(ids)?;
        Ok(gone.iter().map(|g| g.removed).sum())
    }

    /// [`Store::delete_messages`], returning every message deleted with its copies (the
    /// records the transaction read anyway, so this costs no more), for whoever must hear of
    /// them.
    pub fn delete_messages_returning(&self, ids: &[u64]) -> Result<Vec<Gone>, StoreError> {
        self.mail_tx(|tx| {
            let mut gone = Vec::with_capacity(ids.len());
            for &id in ids {
                gone.extend(tx.delete_message(id)?);
            }
            Ok(gone)
        })
    }

    /// Deletes one copy; the message goes with its last copy. `None` when the entry is gone.
    pub fn delete_entry(&self, id: u64) -> Result<Option<Removed>, StoreError> {
        self.mail_tx(|tx| match tx.entry(id)? {
            Some(e) => tx.remove_entry(&e).map(Some),
            None => Ok(None),
        })
    }

    /// Applies a change to an entry, keeping indexes and counts in step. `None` when gone.
    ///
    /// # Errors
    /// [`Error::NotFound`]`("mailbox")` when the change moves the copy into a custom mailbox
    /// that no longer exists: checked in the transaction that moves it, so a mailbox deleted
    /// meanwhile never ends up holding a copy nobody can list.
    pub fn update_entry(&self, id: u64, change: EntryChange) -> Result<Option<EntryRecord>, Error> {
        let updated = self.mail_tx(|tx| {
            let Some(old) = tx.entry(id)? else {
                return Ok(Some(None));
            };
            let new = EntryRecord {
                read: change.read.unwrap_or(old.read),
                starred: change.starred.unwrap_or(old.starred),
                mailbox: change.mailbox.unwrap_or(old.mailbox),
                ..old.clone()
            };
            if new.mailbox != old.mailbox && !tx.mailbox_exists(new.owner, new.mailbox)? {
                return Ok(None);
            }
            if new != old {
                let slot = tx.unlink(&old)?;
                tx.link(&new, slot, new.mailbox == old.mailbox)?;
            }
            Ok(Some(Some(new)))
        })?;
        updated.ok_or(Error::NotFound("mailbox"))
    }

    /// One page of a mailbox, newest first: entries with ids below `before` (all when `None`)
    /// that match `filter`, at most `limit`, plus whether more follow. Reads only the page
    /// (and, for `read=false`/`starred=false`, the entries it skips).
    pub fn list_mailbox(
        &self,
        owner: u64,
        mailbox: u64,
        filter: ListFilter,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<(EntryRecord, MessageRecord)>, bool), StoreError> {
        let index = match filter {
            ListFilter {
                read: Some(false), ..
            } => &self.mail.unread_index,
            ListFilter {
                starred: Some(true),
                ..
            } => &self.mail.starred_index,
            _ => &self.mail.mailbox_index,
        };
        let start = keys::mailbox(owner, mailbox);
        let end = match before {
            Some(b) => keys::mailbox_entry(owner, mailbox, b).to_vec(),
            None => keys::mailbox(owner, mailbox.saturating_add(1)).to_vec(),
        };
        let mut page = Vec::with_capacity(limit.min(64));
        for item in index.range(start.as_slice()..end.as_slice()).rev() {
            let (key, flags) = item?;
            let flags = flags.first().copied().unwrap_or(0);
            let read = flags & FLAG_READ != 0;
            let starred = flags & FLAG_STARRED != 0;
            if filter.read.is_some_and(|r| r != read)
                || filter.starred.is_some_and(|s| s != starred)
            {
                continue;
            }
            if page.len() == limit {
                return Ok((page, true));
            }
            let Some(entry_id) = keys::id_at(&key, 16) else {
                continue;
            };
            let Some(entry) = self.entry(entry_id)? else {
                continue;
            };
            let Some(message) = self.message(entry.message)? else {
                continue;
            };
            page.push((entry, message));
        }
        Ok((page, false))
    }

    /// Ids of every entry in one mailbox (`Some`) or in all of an owner's mailboxes (`None`).
    pub fn entry_ids(&self, owner: u64, mailbox: Option<u64>) -> Result<Vec<u64>, StoreError> {
        let prefix = match mailbox {
            Some(m) => keys::mailbox(owner, m).to_vec(),
            None => keys::id(owner).to_vec(),
        };
        self.mail
            .mailbox_index
            .scan_prefix(prefix)
            .keys()
            .map(|k| Ok(keys::id_at(&k?, 16).unwrap_or(0)))
            .collect()
    }

    /// The oldest messages received at or before `cutoff`, at most `limit`, oldest first.
    pub fn received_before(&self, cutoff: Timestamp, limit: usize) -> Result<Vec<u64>, StoreError> {
        self.oldest(Some(cutoff), limit)
    }

    /// The oldest `limit` messages, oldest first.
    pub fn oldest_messages(&self, limit: usize) -> Result<Vec<u64>, StoreError> {
        self.oldest(None, limit)
    }

    fn oldest(&self, cutoff: Option<Timestamp>, limit: usize) -> Result<Vec<u64>, StoreError> {
        let end = cutoff.map_or([0xff; 8], keys::received_end);
        self.mail
            .received
            .range(..end.as_slice())
            .keys()
            .take(limit)
            .map(|k| Ok(keys::id_at(&k?, 8).unwrap_or(0)))
            .collect()
    }

    /// Size of messages received at or before `cutoff` (for a dry run), reading only those.
    pub fn measure_before(&self, cutoff: Timestamp) -> Result<Removed, StoreError> {
        let mut r = Removed::default();
        for k in self
            .mail
            .received
            .range(..keys::received_end(cutoff).as_slice())
            .keys()
        {
            if let Some(m) = keys::id_at(&k?, 8)
                .map(|id| self.message(id))
                .transpose()?
                .flatten()
            {
                r += Removed {
                    messages: 1,
                    bytes: m.size,
                };
            }
        }
        Ok(r)
    }

    // ----- mailboxes ---------------------------------------------------------------------------

    /// Counts of one mailbox.
    pub fn counts(&self, owner: u64, mailbox: u64) -> Result<Counts, StoreError> {
        self.mail
            .mailbox_counts
            .get(keys::mailbox(owner, mailbox))?
            .map(|v| codec::decode(&v))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// The custom mailboxes of an owner, in name order.
    pub fn custom_mailboxes(&self, owner: u64) -> Result<Vec<MailboxRecord>, StoreError> {
        self.mail
            .mailbox_names
            .scan_prefix(keys::id(owner))
            .values()
            .map(|v| codec::decode(&v?))
            .collect()
    }

    /// A custom mailbox by name (case-insensitive).
    pub fn custom_mailbox(
        &self,
        owner: u64,
        name: &str,
    ) -> Result<Option<MailboxRecord>, StoreError> {
        self.mail
            .mailbox_names
            .get(keys::mailbox_name(owner, name))?
            .map(|v| codec::decode(&v))
            .transpose()
    }

    /// Creates a custom mailbox, with its name and its (zero) counts in one transaction.
    ///
    /// # Errors
    /// [`Error::MailboxExists`] when the owner has one of that name (case-insensitively).
    pub fn create_mailbox(&self, owner: u64, name: &str) -> Result<MailboxRecord, Error> {
        let record = MailboxRecord {
            id: FIRST_CUSTOM_MAILBOX + self.generate_id()?,
            name: name.to_owned(),
            created_at: Timestamp::now(),
        };
        let value = codec::encode(&record)?;
        let counts = codec::encode(&Counts::default())?;
        let name_key = keys::mailbox_name(owner, name);
        let counts_key = keys::mailbox(owner, record.id);
        let created = (&self.mail.mailbox_names, &self.mail.mailbox_counts)
            .transaction(|(names, counts_t)| {
                if names.get(name_key.as_slice())?.is_some() {
                    return Ok(false);
                }
                names.insert(name_key.as_slice(), value.as_slice())?;
                counts_t.insert(&counts_key[..], counts.as_slice())?;
                Ok(true)
            })
            .map_err(txn_error)?;
        if created {
            Ok(record)
        } else {
            Err(Error::MailboxExists)
        }
    }

    /// Deletes an empty custom mailbox. The emptiness check is in the transaction that
    /// deletes it, as the existence check is in every move into it (see
    /// [`Store::update_entry`]), so the two serialise: a copy moved in first keeps the mailbox,
    /// one moved after it is gone is refused.
    ///
    /// # Errors
    /// [`Error::MailboxNotEmpty`] when it still holds messages; [`Error::NotFound`] when it is
    /// gone (or was deleted and made again: another mailbox of the same name).
    pub fn delete_mailbox(&self, owner: u64, mailbox: &MailboxRecord) -> Result<(), Error> {
        let name_key = keys::mailbox_name(owner, &mailbox.name);
        let counts_key = keys::mailbox(owner, mailbox.id);
        (
            &self.mail.mailbox_names,
            &self.mail.mailbox_counts,
            &self.mail.mailbox_uids,
        )
            .transaction(|(names, counts, uids)| {
                let current: Option<MailboxRecord> = match names.get(name_key.as_slice())? {
                    Some(v) => Some(abort(codec::decode(&v))?),
                    None => None,
                };
                if current.is_none_or(|b| b.id != mailbox.id) {
                    return Ok(Err(Error::NotFound("mailbox")));
                }
                let c: Counts = match counts.get(counts_key)? {
                    Some(v) => abort(codec::decode(&v))?,
                    None => Counts::default(),
                };
                if c.total > 0 {
                    return Ok(Err(Error::MailboxNotEmpty));
                }
                names.remove(name_key.as_slice())?;
                counts.remove(&counts_key[..])?;
                uids.remove(&counts_key[..])?;
                Ok(Ok(()))
            })
            .map_err(txn_error)?
    }

    /// Renames a custom mailbox: its id, and so its copies, counts and UIDs, stay.
    ///
    /// # Errors
    /// [`Error::MailboxExists`] when the owner has another mailbox of the new name
    /// (case-insensitively); [`Error::NotFound`] when the mailbox is gone.
    pub fn rename_mailbox(
        &self,
        owner: u64,
        mailbox: &MailboxRecord,
        name: &str,
    ) -> Result<MailboxRecord, Error> {
        let old_key = keys::mailbox_name(owner, &mailbox.name);
        let new_key = keys::mailbox_name(owner, name);
        let renamed = MailboxRecord {
            name: name.to_owned(),
            ..mailbox.clone()
        };
        let value = codec::encode(&renamed)?;
        self.mail
            .mailbox_names
            .transaction(|names| {
                let current: Option<MailboxRecord> = match names.get(old_key.as_slice())? {
                    Some(v) => Some(abort(codec::decode(&v))?),
                    None => None,
                };
                if current.is_none_or(|b| b.id != mailbox.id) {
                    return Ok(Err(Error::NotFound("mailbox")));
                }
                if new_key != old_key && names.get(new_key.as_slice())?.is_some() {
                    return Ok(Err(Error::MailboxExists));
                }
                names.remove(old_key.as_slice())?;
                names.insert(new_key.as_slice(), value.as_slice())?;
                Ok(Ok(()))
            })
            .map_err(txn_error)??;
        Ok(renamed)
    }

    /// A store from before custom mailboxes had their counts from the start has mailboxes
    /// without: give them theirs, once, so that moves into them are accepted.
    pub(super) fn count_custom_mailboxes_once(&self) -> Result<(), StoreError> {
        if self.mail.meta.get(MAILBOX_COUNTS_KEY)?.is_some() {
            return Ok(());
        }
        // Our lock on the dir keeps every other writer out while this runs.
        for item in self.mail.mailbox_names.iter() {
            let (key, value) = item?;
            let (Some(owner), Ok(b)) =
                (keys::id_at(&key, 0), codec::decode::<MailboxRecord>(&value))
            else {
                continue;
            };
            let counts_key = keys::mailbox(owner, b.id);
            if self.mail.mailbox_counts.get(counts_key)?.is_none() {
                self.mail
                    .mailbox_counts
                    .insert(counts_key, codec::encode(&Counts::default())?)?;
            }
        }
        self.mail.meta.insert(MAILBOX_COUNTS_KEY, &[])?;
        Ok(())
    }

    /// A store from before UIDs has copies without: number every mailbox's copies in the
    /// order they came (entry ids), once, at open. One pass over `mailbox_index` in batches;
    /// a run cut short is taken up where it stopped (copies that have a UID keep it).
    pub(super) fn assign_uids_once(&self) -> Result<(), StoreError> {
        if self.mail.meta.get(UIDS_KEY)?.is_some() {
            return Ok(());
        }
        // Our lock on the dir keeps every other writer out while this runs.
        const BATCH: usize = 10_000;
        let (mut index, mut uids) = (sled::Batch::default(), sled::Batch::default());
        let mut pending = 0;
        let mut current: Option<([u8; 16], UidState)> = None;
        let mut last_validity = 0u32;
        let finish = |prefix: &[u8; 16], state: &UidState| -> Result<(), StoreError> {
            self.mail
                .mailbox_uids
                .insert(prefix, codec::encode(state)?)?;
            Ok(())
        };
        for item in self.mail.mailbox_index.iter() {
            let (key, value) = item?;
            let (Some(prefix), Some(entry)) = (
                key.get(..16).and_then(|p| <[u8; 16]>::try_from(p).ok()),
                keys::id_at(&key, 16),
            ) else {
                continue;
            };
            if current.as_ref().is_none_or(|(p, _)| *p != prefix) {
                if let Some((p, state)) = &current {
                    finish(p, state)?;
                }
                let now = u32::try_from(Timestamp::now().0).unwrap_or(u32::MAX);
                last_validity = now.max(last_validity.saturating_add(1));
                let state = match self.mail.mailbox_uids.get(prefix)? {
                    Some(v) => codec::decode(&v)?,
                    None => UidState {
                        validity: last_validity,
                        next: 1,
                        recent: 0,
                    },
                };
                current = Some((prefix, state));
            }
            let Some((_, state)) = current.as_mut() else {
                continue;
            };
            if let Some(uid) = keys::u32_at(&value, 1) {
                state.next = state.next.max(uid.saturating_add(1));
                continue;
            }
            let uid = state.next;
            state.next = state.next.saturating_add(1);
            let mut v = value.to_vec();
            v.truncate(1);
            v.extend_from_slice(&uid.to_be_bytes());
            index.insert(key, v);
            let mut uid_key = prefix.to_vec();
            uid_key.extend_from_slice(&uid.to_be_bytes());
            uids.insert(uid_key, &keys::id(entry)[..]);
            pending += 1;
            if pending == BATCH {
                // UIDs first: a copy whose index says it has a UID must be in `uid_index`.
                self.mail.uid_index.apply_batch(std::mem::take(&mut uids))?;
                self.mail
                    .mailbox_index
                    .apply_batch(std::mem::take(&mut index))?;
                pending = 0;
            }
        }
        self.mail.uid_index.apply_batch(uids)?;
        self.mail.mailbox_index.apply_batch(index)?;
        if let Some((p, state)) = &current {
            finish(p, state)?;
        }
        self.mail
            .meta
            .insert(UIDVALIDITY_KEY, &last_validity.to_be_bytes())?;
        self.mail.meta.insert(UIDS_KEY, &[])?;
        Ok(())
    }

    // ----- IMAP numbering ----------------------------------------------------------------------

    /// The UID state of a mailbox, made (with a new UIDVALIDITY) when it has none yet.
    pub fn uid_state(&self, owner: u64, mailbox: u64) -> Result<UidState, StoreError> {
        let key = keys::mailbox(owner, mailbox);
        (&self.mail.mailbox_uids, &self.mail.meta)
            .transaction(|(uids, meta)| uid_state_in(uids, meta, &key))
            .map_err(txn_error)
    }

    /// Opens a mailbox for a session that may change it: returns its UID state as it was, and
    /// marks every copy in it as seen by a session, so the copies above the returned
    /// `recent` are `\Recent` for this session and no other (RFC 3501 2.3.2).
    pub fn take_recent(&self, owner: u64, mailbox: u64) -> Result<UidState, StoreError> {
        let key = keys::mailbox(owner, mailbox);
        (&self.mail.mailbox_uids, &self.mail.meta)
            .transaction(|(uids, meta)| {
                let state = uid_state_in(uids, meta, &key)?;
                let marked = UidState {
                    recent: state.next.saturating_sub(1),
                    ..state
                };
                if marked != state {
                    uids.insert(&key[..], abort(codec::encode(&marked))?)?;
                }
                Ok(state)
            })
            .map_err(txn_error)
    }

    /// Every copy of a mailbox in UID order. Reads keys and entry ids only.
    pub fn uid_entries(&self, owner: u64, mailbox: u64) -> Result<Vec<UidEntry>, StoreError> {
        self.mail
            .uid_index
            .scan_prefix(keys::mailbox(owner, mailbox))
            .map(|item| {
                let (k, v) = item?;
                Ok(UidEntry {
                    uid: keys::u32_at(&k, 16).unwrap_or(0),
                    entry: keys::id_at(&v, 0).unwrap_or(0),
                })
            })
            .collect()
    }

    /// The ids of every message above `after`, oldest (lowest id) first. Reads keys only.
    pub fn message_ids_after(&self, after: u64) -> Result<Vec<u64>, StoreError> {
        let Some(from) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        self.mail
            .messages
            .range(keys::id(from)..)
            .keys()
            .map(|k| Ok(keys::id_at(&k?, 0).unwrap_or(0)))
            .collect()
    }

    /// The UID of a copy in its mailbox; `None` when it is not in that mailbox.
    pub fn uid_of(&self, owner: u64, mailbox: u64, entry: u64) -> Result<Option<u32>, StoreError> {
        Ok(self
            .mail
            .mailbox_index
            .get(keys::mailbox_entry(owner, mailbox, entry))?
            .and_then(|v| keys::u32_at(&v, 1)))
    }

    /// Adds a copy of the message of entry `id` to `mailbox` of the same owner, as entry
    /// `new_id`, with the flags of the original (IMAP COPY); returns it with its UID there, or
    /// `None` when the original is gone.
    ///
    /// # Errors
    /// [`Error::NotFound`]`("mailbox")` when `mailbox` is a custom mailbox that no longer
    /// exists (checked in the transaction, as moves are).
    pub fn copy_entry(
        &self,
        id: u64,
        new_id: u64,
        mailbox: u64,
    ) -> Result<Option<(EntryRecord, u32)>, Error> {
        let copied = self.mail_tx(|tx| {
            let Some(old) = tx.entry(id)? else {
                return Ok(Some(None));
            };
            let Some(mut message) = tx.message(old.message)? else {
                return Ok(Some(None));
            };
            if !tx.mailbox_exists(old.owner, mailbox)? {
                return Ok(None);
            }
            let extra = match tx
                .mailbox_index
                .get(&keys::mailbox_entry(old.owner, old.mailbox, old.id)[..])?
                .and_then(|v| keys::u32_at(&v, 1))
            {
                Some(uid) => tx
                    .uid_index
                    .get(&keys::mailbox_uid(old.owner, old.mailbox, uid)[..])?
                    .map(|v| v.get(8..).unwrap_or_default().to_vec())
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            let new = EntryRecord {
                id: new_id,
                mailbox,
                ..old
            };
            let uid = tx.link(&new, Some((0, extra)), false)?;
            message.entries.push(new_id);
            Tx::put(tx.messages, &keys::id(message.id), &message)?;
            Ok(Some(Some((new, uid))))
        })?;
        copied.ok_or(Error::NotFound("mailbox"))
    }

    /// The copies of a mailbox with UIDs above `after`, in UID order: what arrived since a
    /// session last looked, read from where it stopped.
    pub fn uid_entries_after(
        &self,
        owner: u64,
        mailbox: u64,
        after: u32,
    ) -> Result<Vec<UidEntry>, StoreError> {
        let Some(from) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        let start = keys::mailbox_uid(owner, mailbox, from);
        let end = keys::mailbox(owner, mailbox.saturating_add(1));
        self.mail
            .uid_index
            .range(start.to_vec()..end.to_vec())
            .map(|item| {
                let (k, v) = item?;
                Ok(UidEntry {
                    uid: keys::u32_at(&k, 16).unwrap_or(0),
                    entry: keys::id_at(&v, 0).unwrap_or(0),
                })
            })
            .collect()
    }

    /// The IMAP flags of the copy at `uid` in a mailbox; `None` when no copy is there.
    pub fn imap_flags(
        &self,
        owner: u64,
        mailbox: u64,
        uid: u32,
    ) -> Result<Option<ImapFlags>, StoreError> {
        match self
            .mail
            .uid_index
            .get(keys::mailbox_uid(owner, mailbox, uid))?
        {
            Some(v) => ImapFlags::decode(v.get(8..).unwrap_or_default()).map(Some),
            None => Ok(None),
        }
    }

    /// Changes the flags of the copy at `uid` in a mailbox (its UID stays): `read` and
    /// `starred` when given, and its [`ImapFlags`] through `change`. Returns the copy and its
    /// flags as stored, or `None` when no copy is there any more.
    pub fn set_imap_flags(
        &self,
        owner: u64,
        mailbox: u64,
        uid: u32,
        read: Option<bool>,
        starred: Option<bool>,
        change: impl Fn(ImapFlags) -> ImapFlags,
    ) -> Result<Option<(EntryRecord, ImapFlags)>, StoreError> {
        let uid_key = keys::mailbox_uid(owner, mailbox, uid);
        self.mail_tx(|tx| {
            let Some(v) = tx.uid_index.get(&uid_key[..])? else {
                return Ok(None);
            };
            let Some(old) = keys::id_at(&v, 0)
                .map(|id| tx.entry(id))
                .transpose()?
                .flatten()
            else {
                return Ok(None);
            };
            let flags = change(abort(ImapFlags::decode(v.get(8..).unwrap_or_default()))?);
            let new = EntryRecord {
                read: read.unwrap_or(old.read),
                starred: starred.unwrap_or(old.starred),
                ..old.clone()
            };
            let extra = abort(flags.encode())?;
            if new != old {
                tx.unlink(&old)?;
                tx.link(&new, Some((uid, extra)), true)?;
            } else {
                let mut value = keys::id(old.id).to_vec();
                value.extend_from_slice(&extra);
                tx.uid_index.insert(&uid_key[..], value)?;
            }
            Ok(Some((new, flags)))
        })
    }

    /// Subscribes an owner to a mailbox name (`true`) or unsubscribes it.
    pub fn set_subscribed(&self, owner: u64, name: &str, on: bool) -> Result<(), StoreError> {
        let key = keys::mailbox_name(owner, name);
        if on {
            self.mail.subscriptions.insert(key, name.as_bytes())?;
        } else {
            self.mail.subscriptions.remove(key)?;
        }
        Ok(())
    }

    /// The mailbox names an owner is subscribed to, in the order of their lower-cased forms.
    pub fn subscriptions(&self, owner: u64) -> Result<Vec<String>, StoreError> {
        self.mail
            .subscriptions
            .scan_prefix(keys::id(owner))
            .values()
            .map(|v| Ok(String::from_utf8_lossy(&v?).into_owned()))
            .collect()
    }

    /// Removes an owner's mailboxes, counters and address mapping. Call after its entries are
    /// gone (see [`Store::entry_ids`]).
    pub fn delete_owner(&self, owner: u64, address: &str) -> Result<(), StoreError> {
        for k in self.mail.mailbox_names.scan_prefix(keys::id(owner)).keys() {
            self.mail.mailbox_names.remove(k?)?;
        }
        for tree in [
            &self.mail.mailbox_counts,
            &self.mail.mailbox_uids,
            &self.mail.uid_index,
            &self.mail.subscriptions,
        ] {
            for k in tree.scan_prefix(keys::id(owner)).keys() {
                tree.remove(k?)?;
            }
        }
        self.mail.owners.remove(keys::email(address))?;
        Ok(())
    }
}

// ----- newest-first walks (the operator view, wait-for-message) --------------------------------

impl Store {
    /// Every message with an id below `before` (all when `None`), newest (highest id) first,
    /// read lazily: a caller that stops early reads no further.
    pub fn messages_newest_first(
        &self,
        before: Option<u64>,
    ) -> impl Iterator<Item = Result<MessageRecord, StoreError>> + use<> {
        let end = keys::id(before.unwrap_or(u64::MAX));
        self.mail
            .messages
            .range(..end)
            .rev()
            .map(|item| codec::decode(&item?.1))
    }

    /// The entries of one mailbox with an id below `before` (all when `None`), newest first,
    /// with their messages, read lazily. Entries whose message is gone are skipped.
    pub fn mailbox_newest_first(
        &self,
        owner: u64,
        mailbox: u64,
        before: Option<u64>,
    ) -> impl Iterator<Item = Result<(EntryRecord, MessageRecord), StoreError>> + use<> {
        let start = keys::mailbox(owner, mailbox);
        let end = match before {
            Some(b) => keys::mailbox_entry(owner, mailbox, b).to_vec(),
            None => keys::mailbox(owner, mailbox.saturating_add(1)).to_vec(),
        };
        let store = self.clone();
        self.mail
            .mailbox_index
            .range(start.to_vec()..end)
            .rev()
            .filter_map(move |item| {
                let read = || -> Result<Option<(EntryRecord, MessageRecord)>, StoreError> {
                    let (key, _) = item?;
                    let Some(entry) = keys::id_at(&key, 16)
                        .map(|id| store.entry(id))
                        .transpose()?
                        .flatten()
                    else {
                        return Ok(None);
                    };
                    Ok(store.message(entry.message)?.map(|m| (entry, m)))
                };
                read().transpose()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: u64, entry: u64, owner: u64) -> (MessageRecord, EntryRecord) {
        let m = MessageRecord {
            id,
            received_at: Timestamp(1_700_000_000),
            size: 10,
            envelope_from: "a@example.test".into(),
            envelope_to: vec!["b@example.test".into()],
            from: Mailbox::default(),
            to: vec![],
            cc: vec![],
            reply_to: vec![],
            subject: String::new(),
            snippet: String::new(),
            message_id: None,
            has_attachments: false,
            entries: vec![entry],
        };
        let e = EntryRecord {
            id: entry,
            message: id,
            owner,
            mailbox: INBOX,
            read: false,
            starred: false,
            bcc: None,
        };
        (m, e)
    }

    fn segment_files(dir: &std::path::Path) -> Vec<u32> {
        let mut v = bodies::Bodies::list(&dir.join(bodies::BODIES_DIR)).unwrap();
        v.sort_unstable();
        v
    }

    fn source(id: u64) -> Vec<u8> {
        format!("Subject: {id}\r\n\r\n{}", "x".repeat(200)).into_bytes()
    }

    fn store_sources(store: &Store, owner: u64, n: usize) -> Vec<u64> {
        (0..n)
            .map(|_| {
                let id = store.generate_id().unwrap();
                let (m, e) = message(id, store.generate_id().unwrap(), owner);
                store.insert_message(&m, &source(id), &[e], &[]).unwrap();
                id
            })
            .collect()
    }

    #[test]
    fn segments_emptied_by_deletions_are_deleted_and_sparse_ones_compacted() {
        let dir = tempfile::tempdir().unwrap();
        // About four sources a segment.
        let store = Store::open_with_segments(dir.path(), 1 << 20, 1_000).unwrap();
        let owner = store.ensure_owner("b@example.test").unwrap();
        let ids = store_sources(&store, owner, 40);
        let before = segment_files(dir.path());
        assert!(before.len() >= 10, "{before:?}");
        // Nothing deleted: nothing to reclaim (the active segment is never touched).
        assert_eq!(store.reclaim_bodies().unwrap(), Reclaimed::default());

        // The oldest half, as retention deletes: whole segments empty.
        store.delete_messages(&ids[..20]).unwrap();
        // Most of the rest, as users delete: their segments get sparse.
        let rest = || ids[20..].iter().copied().enumerate();
        let gone: Vec<u64> = rest()
            .filter(|(i, _)| i % 4 != 0)
            .map(|(_, id)| id)
            .collect();
        let kept: Vec<u64> = rest()
            .filter(|(i, _)| i % 4 == 0)
            .map(|(_, id)| id)
            .collect();
        store.delete_messages(&gone).unwrap();
        let active = store.bodies.active();
        let segment_of = |id: u64| {
            let at = store.mail.body_at.get(keys::id(id)).unwrap().unwrap();
            Location::decode(&at).unwrap().segment
        };
        let closed = kept.iter().filter(|id| segment_of(**id) != active).count();
        let r = store.reclaim_bodies().unwrap();
        assert_eq!(r.moved as usize, closed, "{r:?}");
        assert!(kept.iter().all(|id| segment_of(*id) >= active));
        assert!(r.segments as usize >= before.len() - 1, "{r:?}");
        let after = segment_files(dir.path());
        assert!(after.len() <= 3, "{after:?}");
        for &id in &kept {
            assert_eq!(store.raw(id).unwrap().unwrap(), source(id));
        }
        for &id in ids[..20].iter().chain(&gone) {
            assert!(store.raw(id).unwrap().is_none());
        }
        // The index counts exactly what is left, and a reopen reads it all.
        let counted: u64 = store
            .mail
            .segments
            .iter()
            .map(|kv| Live::decode(&kv.unwrap().1).count)
            .sum();
        assert_eq!(counted as usize, kept.len());
        drop(store);
        let store = Store::open_with_segments(dir.path(), 1 << 20, 1_000).unwrap();
        for &id in &kept {
            assert_eq!(store.raw(id).unwrap().unwrap(), source(id));
        }
        // Segments nothing was ever indexed in (left by earlier opens) go too.
        store.reclaim_bodies().unwrap();
        assert!(segment_files(dir.path()).len() <= 3);
    }

    #[test]
    fn a_source_stored_in_sled_by_an_older_version_is_read_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let owner = store.ensure_owner("b@example.test").unwrap();
        let (m, e) = message(store.generate_id().unwrap(), 99, owner);
        let value = codec::encode(&m).unwrap();
        // What an older version wrote: the source in `raw`, no place in `body_at`.
        store
            .mail_tx(|tx| {
                tx.messages.insert(&keys::id(m.id), value.as_slice())?;
                tx.raw.insert(&keys::id(m.id), &b"0123456789"[..])?;
                tx.received
                    .insert(&keys::received(m.received_at, m.id)[..], &[])?;
                tx.link(&e, None, false)?;
                tx.bump(1, 10)
            })
            .unwrap();
        assert_eq!(store.raw(m.id).unwrap().unwrap(), b"0123456789");
        assert_eq!(store.delete_messages(&[m.id]).unwrap().messages, 1);
        assert!(store.raw(m.id).unwrap().is_none());
        assert!(store.mail.raw.is_empty());
        assert!(store.mail.segments.is_empty());
    }

    #[test]
    fn concurrent_inserts_deletes_and_reclaims_lose_no_source() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with_segments(dir.path(), 1 << 20, 2_000).unwrap();
        let owner = store.ensure_owner("b@example.test").unwrap();
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut kept = Vec::new();
                    for round in 0..30 {
                        let ids = store_sources(&store, owner, 6);
                        // Delete all but one of each round.
                        store.delete_messages(&ids[1..]).unwrap();
                        kept.push(ids[0]);
                        if round % 5 == 4 {
                            store.delete_messages(&[kept.remove(0)]).unwrap();
                        }
                    }
                    kept
                })
            })
            .collect();
        let reclaimer = {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    store.reclaim_bodies().unwrap();
                }
            })
        };
        let kept: Vec<u64> = writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        reclaimer.join().unwrap();
        store.reclaim_bodies().unwrap();
        for &id in &kept {
            assert_eq!(store.raw(id).unwrap().unwrap(), source(id), "message {id}");
        }
        assert_eq!(store.message_count().unwrap() as usize, kept.len());
    }

    /// A transaction sees the store as of one moment (sled runs transactions one at a time,
    /// and no other write during one): whenever it looks, the counters must count exactly the
    /// records there, while another thread stores and deletes.
    #[test]
    fn no_moment_shows_the_counters_apart_from_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let owner = store.ensure_owner("b@example.test").unwrap();
        let ids: Vec<u64> = (0..200).map(|_| store.generate_id().unwrap()).collect();
        let writer = {
            let (store, ids) = (store.clone(), ids.clone());
            std::thread::spawn(move || {
                for &id in &ids {
                    let (m, e) = message(id, id + 1_000_000, owner);
                    store.insert_message(&m, b"0123456789", &[e], &[]).unwrap();
                }
                for id in ids {
                    store.delete_messages(&[id]).unwrap();
                }
            })
        };
        let t = &store.mail;
        let mut looks = 0;
        while !writer.is_finished() {
            let (present, counted, bytes) = (&t.messages, &t.meta)
                .transaction(|(messages, meta)| {
                    let mut present = 0;
                    for id in &ids {
                        present += u64::from(messages.get(keys::id(*id))?.is_some());
                    }
                    let read = |key| -> TxResult<u64> {
                        Ok(meta.get(key)?.and_then(|v| keys::id_at(&v, 0)).unwrap_or(0))
                    };
                    Ok((present, read(MESSAGES_KEY)?, read(BYTES_KEY)?))
                })
                .map_err(txn_error)
                .unwrap();
            assert_eq!((counted, bytes), (present, present * 10), "look {looks}");
            looks += 1;
        }
        writer.join().unwrap();
        assert_eq!(store.message_count().unwrap(), 0);
    }

    /// Stores a ten-byte message with one copy in `owner`'s inbox.
    fn store_one(store: &Store, owner: u64) -> EntryRecord {
        let (m, e) = message(
            store.generate_id().unwrap(),
            store.generate_id().unwrap(),
            owner,
        );
        store
            .insert_message(&m, b"0123456789", std::slice::from_ref(&e), &[])
            .unwrap();
        e
    }

    /// A store from before UIDs: its copies get UIDs in arrival order at open, new copies
    /// follow them.
    #[test]
    fn copies_of_an_older_store_get_uids_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let owner = store.ensure_owner("b@example.test").unwrap();
        let mut entries = vec![];
        for _ in 0..3 {
            entries.push(store_one(&store, owner).id);
        }
        // As a store from before: one-byte index values, no UID trees.
        for item in store.mail.mailbox_index.iter() {
            let (k, v) = item.unwrap();
            store.mail.mailbox_index.insert(k, &v[..1]).unwrap();
        }
        store.mail.uid_index.clear().unwrap();
        store.mail.mailbox_uids.clear().unwrap();
        store.mail.meta.remove(UIDS_KEY).unwrap();
        drop(store);

        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let got: Vec<(u32, u64)> = store
            .uid_entries(owner, INBOX)
            .unwrap()
            .into_iter()
            .map(|u| (u.uid, u.entry))
            .collect();
        assert_eq!(got, vec![(1, entries[0]), (2, entries[1]), (3, entries[2])]);
        assert_eq!(store.uid_state(owner, INBOX).unwrap().next, 4);
        // The copies move with their UIDs as any other.
        let moved = EntryChange {
            mailbox: Some(ARCHIVE),
            ..Default::default()
        };
        store.update_entry(entries[0], moved).unwrap().unwrap();
        assert_eq!(store.uid_entries(owner, INBOX).unwrap().len(), 2);
        assert_eq!(store.uid_entries(owner, ARCHIVE).unwrap()[0].uid, 1);
    }

    #[test]
    fn custom_mailboxes_of_an_older_store_get_their_counts_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let owner = store.ensure_owner("b@example.test").unwrap();
        let work = store.create_mailbox(owner, "Work").unwrap();
        // As a store from before: a mailbox that never held mail had no counts.
        let counts_key = keys::mailbox(owner, work.id);
        store.mail.mailbox_counts.remove(counts_key).unwrap();
        store.mail.meta.remove(MAILBOX_COUNTS_KEY).unwrap();
        let e = store_one(&store, owner);
        drop(store);

        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let into_work = EntryChange {
            mailbox: Some(work.id),
            ..Default::default()
        };
        let moved = store.update_entry(e.id, into_work).unwrap().unwrap();
        assert_eq!(moved.mailbox, work.id);
        assert_eq!(store.counts(owner, work.id).unwrap().total, 1);
    }
}
