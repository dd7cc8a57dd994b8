//! Mailboxes as IMAP sees them: a user's folders with their UIDs (per mailbox, only growing,
//! kept across restarts by the store), each copy's flags (`\Seen` is `read`, `\Flagged` is
//! `starred`, the others kept per copy), and the changes a selected mailbox must hear of. The
//! IMAP front-end (`imap/`) translates between these and the wire, nothing more.

use tokio::sync::broadcast;

use super::Service;
use super::auth::User;
use super::events::{Change, MailEvent};
use crate::error::{Error, Result};
use crate::store::mail::{self as m, EntryRecord};
use crate::time::Timestamp;

pub use super::mime::{EnvelopeFields, Shape};
pub use crate::store::mail::{ImapFlags, UidEntry, UidState};

/// A user's folder: its name as the service knows it (`inbox`, `Projects/2026`), and its
/// SPECIAL-USE role (RFC 6154), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub name: String,
    pub special: Option<Special>,
    pub total: u64,
    pub unread: u64,
}

/// The SPECIAL-USE role of a system mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Sent,
    Archive,
    Trash,
}

/// One mailbox of one owner: what a selected IMAP session holds on to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderRef {
    pub owner: u64,
    pub mailbox: u64,
}

impl FolderRef {
    /// The operator's read-only view of all mail: every message once, its UID its id (owner
    /// 0 is nobody's: owner ids start at 1).
    pub const ALL_MAIL: FolderRef = FolderRef {
        owner: 0,
        mailbox: 0,
    };

    fn is_all_mail(self) -> bool {
        self == FolderRef::ALL_MAIL
    }
}

/// The UID of a message in [`FolderRef::ALL_MAIL`]: its id, while that fits.
fn all_mail_entry(id: u64) -> Option<UidEntry> {
    Some(UidEntry {
        uid: u32::try_from(id).ok()?,
        entry: id,
    })
}

/// A mailbox as a session opens it.
#[derive(Debug, Clone)]
pub struct Opened {
    pub folder: FolderRef,
    /// The UID state before this session opened it (`recent` tells which copies are
    /// `\Recent` for this session).
    pub state: UidState,
    /// Every copy, in UID order.
    pub copies: Vec<UidEntry>,
}

/// One copy as FETCH and SEARCH see it.
#[derive(Debug, Clone)]
pub struct Copy {
    pub uid: u32,
    pub received_at: Timestamp,
    pub size: u64,
    pub read: bool,
    pub starred: bool,
    pub flags: ImapFlags,
    /// The source, when asked for.
    pub raw: Option<Vec<u8>>,
    /// The envelope and MIME structure, when asked for.
    pub structure: Option<(EnvelopeFields, Shape)>,
}

/// What [`Service::copies`] reads besides flags and sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Want {
    /// The source.
    pub raw: bool,
    /// The envelope and MIME structure (parsed from the source).
    pub structure: bool,
}

/// A flag change of STORE.
#[derive(Debug, Clone, Default)]
pub struct FlagChange {
    /// `Some` to set or clear `\Seen` / `\Flagged`.
    pub read: Option<bool>,
    pub starred: Option<bool>,
    /// The other flags: replaced (`replace`), or added to / removed from those set.
    pub answered: Option<bool>,
    pub deleted: Option<bool>,
    pub draft: Option<bool>,
    pub add_keywords: Vec<String>,
    pub remove_keywords: Vec<String>,
    /// STORE FLAGS: keywords not in `add_keywords` go.
    pub replace_keywords: bool,
}

/// A change to a watched mailbox, from the service's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderChange {
    /// Something arrived (delivered, moved or copied in): read what lies above the last UID
    /// known.
    Arrived,
    /// A copy was deleted or moved out.
    Gone { entry: u64 },
    /// The flags of a copy changed.
    Flagged { entry: u64 },
    /// Events were missed: read the mailbox again.
    Lagged,
}

/// The service's events, narrowed to one mailbox.
#[derive(Debug)]
pub struct FolderWatch {
    folder: FolderRef,
    rx: broadcast::Receiver<MailEvent>,
}

impl FolderWatch {
    /// The next change to the mailbox; `None` when the service closes.
    pub async fn next(&mut self) -> Option<FolderChange> {
        loop {
            match self.rx.recv().await {
                Ok(e) => {
                    if let Some(change) = self.change(&e) {
                        return Some(change);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => return Some(FolderChange::Lagged),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The same events, from where this watch has got to, narrowed to another mailbox.
    pub fn retarget(self, folder: FolderRef) -> FolderWatch {
        FolderWatch { folder, ..self }
    }

    /// What an event means to the mailbox, if anything.
    fn change(&self, e: &MailEvent) -> Option<FolderChange> {
        let f = self.folder;
        if f.is_all_mail() {
            // The operator's view lists messages, not copies, without flags.
            return match e.kind {
                Change::Received => Some(FolderChange::Arrived),
                Change::Deleted if e.whole => Some(FolderChange::Gone {
                    entry: e.message.id,
                }),
                _ => None,
            };
        }
        let mut own = e.entries.iter().filter(|c| c.owner == f.owner);
        match e.kind {
            Change::Received => own
                .any(|c| c.mailbox == f.mailbox)
                .then_some(FolderChange::Arrived),
            Change::Deleted => own
                .find(|c| c.mailbox == f.mailbox)
                .map(|c| FolderChange::Gone { entry: c.id }),
            Change::Flagged => own
                .find(|c| c.mailbox == f.mailbox)
                .map(|c| FolderChange::Flagged { entry: c.id }),
            Change::Filed { from } => own.find_map(|c| {
                if c.mailbox == f.mailbox {
                    Some(FolderChange::Arrived)
                } else if from == Some(f.mailbox) {
                    Some(FolderChange::Gone { entry: c.id })
                } else {
                    None
                }
            }),
        }
    }
}

const SPECIAL: [(u64, Special); 3] = [
    (m::SENT, Special::Sent),
    (m::ARCHIVE, Special::Archive),
    (m::TRASH, Special::Trash),
];

impl Service {
    /// A user's folders: the system mailboxes, then the user's own, by name.
    pub async fn folders(&self, user: &User) -> Result<Vec<Folder>> {
        Ok(self
            .mailboxes(user)
            .await?
            .into_iter()
            .map(|b| {
                let id = super::mail::system_mailbox(&b.name);
                Folder {
                    special: SPECIAL
                        .iter()
                        .find(|(i, _)| Some(*i) == id)
                        .map(|(_, s)| *s),
                    name: b.name,
                    total: b.total,
                    unread: b.unread,
                }
            })
            .collect())
    }

    /// Resolves a folder name (in any letter case) to the user's mailbox, making the user's
    /// mail owner on first use.
    ///
    /// # Errors
    /// [`Error::NotFound`]`("mailbox")` for a name the user has no mailbox of.
    pub async fn folder(&self, user: &User, name: &str) -> Result<FolderRef> {
        let (user, name) = (user.clone(), name.to_owned());
        self.offload(move |svc| {
            let owner = svc.inner.store.ensure_owner(&user.email)?;
            let mailbox = svc
                .resolve_mailbox(Some(owner), &name)?
                .ok_or(Error::NotFound("mailbox"))?;
            Ok(FolderRef { owner, mailbox })
        })
        .await
    }

    /// Opens a folder for a session: its UID state and every copy in UID order. A session
    /// that may change it (`SELECT`, not `EXAMINE`) takes the `\Recent` mark.
    pub async fn open_folder(&self, folder: FolderRef, read_only: bool) -> Result<Opened> {
        if folder.is_all_mail() {
            let copies = self.copies_after(folder, 0).await?;
            let last = copies.last().map_or(0, |u| u.uid);
            let state = UidState {
                validity: 1,
                next: last.saturating_add(1),
                recent: last,
            };
            return Ok(Opened {
                folder,
                state,
                copies,
            });
        }
        self.offload(move |svc| {
            let store = &svc.inner.store;
            let state = if read_only {
                store.uid_state(folder.owner, folder.mailbox)?
            } else {
                store.take_recent(folder.owner, folder.mailbox)?
            };
            let copies = store.uid_entries(folder.owner, folder.mailbox)?;
            Ok(Opened {
                folder,
                state,
                copies,
            })
        })
        .await
    }

    /// The UID state of a folder (for STATUS).
    pub async fn folder_state(&self, folder: FolderRef) -> Result<UidState> {
        if folder.is_all_mail() {
            return Ok(self.open_folder(folder, true).await?.state);
        }
        Ok(self.inner.store.uid_state(folder.owner, folder.mailbox)?)
    }

    /// The copies of a folder with UIDs above `after`, in UID order.
    pub async fn copies_after(&self, folder: FolderRef, after: u32) -> Result<Vec<UidEntry>> {
        self.offload(move |svc| {
            let store = &svc.inner.store;
            if folder.is_all_mail() {
                return Ok(store
                    .message_ids_after(u64::from(after))?
                    .into_iter()
                    .filter_map(all_mail_entry)
                    .collect());
            }
            Ok(store.uid_entries_after(folder.owner, folder.mailbox, after)?)
        })
        .await
    }

    /// The copies at these places of a folder, with their sources when `raw`; copies gone
    /// meanwhile are left out.
    pub async fn copies(
        &self,
        folder: FolderRef,
        at: Vec<UidEntry>,
        want: Want,
    ) -> Result<Vec<Copy>> {
        self.offload(move |svc| {
            let store = &svc.inner.store;
            let mut out = Vec::with_capacity(at.len());
            if folder.is_all_mail() {
                for u in at {
                    let Some(message) = store.message(u.entry)? else {
                        continue;
                    };
                    let raw = match want.raw || want.structure {
                        true => store.raw(message.id)?,
                        false => None,
                    };
                    out.push(Copy {
                        uid: u.uid,
                        received_at: message.received_at,
                        size: message.size,
                        read: true,
                        starred: false,
                        flags: ImapFlags::default(),
                        structure: raw
                            .as_ref()
                            .filter(|_| want.structure)
                            .and_then(|r| super::mime::structure(r)),
                        raw: raw.filter(|_| want.raw),
                    });
                }
                return Ok(out);
            }
            for u in at {
                let (Some(e), Some(flags)) = (
                    store.entry(u.entry)?,
                    store.imap_flags(folder.owner, folder.mailbox, u.uid)?,
                ) else {
                    continue;
                };
                if e.owner != folder.owner || e.mailbox != folder.mailbox {
                    continue;
                }
                let Some(message) = store.message(e.message)? else {
                    continue;
                };
                let raw = if want.raw || want.structure {
                    store.raw(e.message)?
                } else {
                    None
                };
                let structure = match (&raw, want.structure) {
                    (Some(r), true) => super::mime::structure(r),
                    _ => None,
                };
                let raw = raw.filter(|_| want.raw);
                out.push(Copy {
                    uid: u.uid,
                    received_at: message.received_at,
                    size: message.size,
                    read: e.read,
                    starred: e.starred,
                    flags,
                    raw,
                    structure,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Changes the flags of the copies at these UIDs; returns each copy changed, as stored.
    pub async fn change_flags(
        &self,
        folder: FolderRef,
        uids: Vec<u32>,
        change: FlagChange,
    ) -> Result<Vec<Copy>> {
        self.offload(move |svc| {
            let store = &svc.inner.store;
            let mut out = Vec::with_capacity(uids.len());
            for uid in uids {
                let changed = store.set_imap_flags(
                    folder.owner,
                    folder.mailbox,
                    uid,
                    change.read,
                    change.starred,
                    |mut f| {
                        f.answered = change.answered.unwrap_or(f.answered);
                        f.deleted = change.deleted.unwrap_or(f.deleted);
                        f.draft = change.draft.unwrap_or(f.draft);
                        if change.replace_keywords {
                            f.keywords.clear();
                        }
                        f.keywords.retain(|k| {
                            !change
                                .remove_keywords
                                .iter()
                                .any(|r| r.eq_ignore_ascii_case(k))
                        });
                        for k in &change.add_keywords {
                            if !f.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                                f.keywords.push(k.clone());
                            }
                        }
                        f
                    },
                )?;
                if let Some((e, flags)) = changed {
                    svc.announce_changed(Change::Flagged, vec![e.clone()]);
                    out.push(Copy {
                        uid,
                        received_at: Timestamp(0),
                        size: 0,
                        read: e.read,
                        starred: e.starred,
                        flags,
                        raw: None,
                        structure: None,
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    /// Deletes for good the copies of a folder marked `\Deleted` (among `only`, when given);
    /// returns the entries deleted.
    pub async fn expunge(&self, folder: FolderRef, only: Option<Vec<u32>>) -> Result<Vec<u64>> {
        self.offload(move |svc| {
            let store = &svc.inner.store;
            let mut gone = Vec::new();
            for u in store.uid_entries(folder.owner, folder.mailbox)? {
                if only
                    .as_ref()
                    .is_some_and(|o| o.binary_search(&u.uid).is_err())
                {
                    continue;
                }
                let deleted = store
                    .imap_flags(folder.owner, folder.mailbox, u.uid)?
                    .is_some_and(|f| f.deleted);
                if deleted && svc.delete_copy(u.entry)?.is_some() {
                    gone.push(u.entry);
                }
            }
            Ok(gone)
        })
        .await
    }

    /// Copies (IMAP COPY) or moves (IMAP MOVE) these copies of a folder into the user's
    /// mailbox `to`; returns the destination's UIDVALIDITY and, for each copy, its UID before
    /// and its UID in the destination.
    ///
    /// # Errors
    /// [`Error::NotFound`]`("mailbox")` when the user has no mailbox `to`.
    pub async fn transfer(
        &self,
        folder: FolderRef,
        at: Vec<UidEntry>,
        to: &str,
        keep: bool,
    ) -> Result<(u32, Vec<(u32, u32)>)> {
        let to = to.to_owned();
        self.offload(move |svc| {
            let store = &svc.inner.store;
            let dest = svc
                .resolve_mailbox(Some(folder.owner), &to)?
                .ok_or(Error::NotFound("mailbox"))?;
            let validity = store.uid_state(folder.owner, dest)?.validity;
            let mut pairs = Vec::with_capacity(at.len());
            for u in at {
                let new_uid = if keep {
                    let new_id = store.generate_id()?;
                    let copied = store.copy_entry(u.entry, new_id, dest)?;
                    if let Some((e, _)) = &copied {
                        svc.announce_changed(Change::Filed { from: None }, vec![e.clone()]);
                    }
                    copied.map(|(_, uid)| uid)
                } else {
                    let change = m::EntryChange {
                        mailbox: Some(dest),
                        ..Default::default()
                    };
                    match store.update_entry(u.entry, change)? {
                        Some(e) => {
                            let from = Some(folder.mailbox);
                            svc.announce_changed(Change::Filed { from }, vec![e]);
                            store.uid_of(folder.owner, dest, u.entry)?
                        }
                        None => None,
                    }
                };
                if let Some(n) = new_uid {
                    pairs.push((u.uid, n));
                }
            }
            Ok((validity, pairs))
        })
        .await
    }

    /// Stores a message a client uploads (IMAP APPEND) as a copy in one of its user's
    /// mailboxes, with its flags and, when given, its arrival time; returns the mailbox's
    /// UIDVALIDITY and the copy's UID. The message goes to nobody else: its envelope is its
    /// owner alone.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] over `--max-message-size`; [`Error::StorageFull`] below
    /// `--min-free-space` or when the store cannot write or flush. Returns once the message
    /// is on disk.
    pub async fn append(
        &self,
        folder: FolderRef,
        raw: Vec<u8>,
        flags: FlagChange,
        received_at: Option<Timestamp>,
    ) -> Result<(u32, u32)> {
        let uids = self
            .offload(move |svc| {
                let size = raw.len() as u64;
                let limit = svc.inner.settings.max_message_size;
                if size > limit {
                    return Err(Error::MessageTooLarge { size, limit });
                }
                svc.inner.space.check()?;
                svc.append_blocking(folder, raw, flags, received_at, size)
                    .map_err(|e| svc.inner.space.write_failure(e))
            })
            .await?;
        // Like SMTP's 250 and REST's 201, the OK waits until the message is on disk.
        self.flushed().await?;
        Ok(uids)
    }

    /// The writes of [`Service::append`], once the message is known to fit.
    fn append_blocking(
        &self,
        folder: FolderRef,
        raw: Vec<u8>,
        flags: FlagChange,
        received_at: Option<Timestamp>,
        size: u64,
    ) -> Result<(u32, u32)> {
        let store = &self.inner.store;
        let summary = super::mime::summarize(&raw);
        let id = store.generate_id()?;
        let entry = EntryRecord {
            id: store.generate_id()?,
            message: id,
            owner: folder.owner,
            mailbox: folder.mailbox,
            read: flags.read.unwrap_or(false),
            starred: flags.starred.unwrap_or(false),
            bcc: None,
        };
        let envelope = super::mail::Envelope {
            from: summary
                .from
                .as_ref()
                .map(|f| f.address.clone())
                .unwrap_or_default(),
            to: vec![],
        };
        let (record, tags) = super::mail::new_record(
            id,
            received_at.unwrap_or_else(Timestamp::now),
            size,
            summary,
            &envelope,
            vec![entry.id],
        );
        store.insert_message(&record, &raw, std::slice::from_ref(&entry), &tags)?;
        let uid = store
            .uid_of(folder.owner, folder.mailbox, entry.id)?
            .unwrap_or(0);
        let imap = ImapFlags {
            answered: flags.answered.unwrap_or(false),
            deleted: flags.deleted.unwrap_or(false),
            draft: flags.draft.unwrap_or(false),
            keywords: flags.add_keywords.clone(),
        };
        if imap != ImapFlags::default() {
            store.set_imap_flags(folder.owner, folder.mailbox, uid, None, None, |_| {
                imap.clone()
            })?;
        }
        self.announce_received(&record, std::slice::from_ref(&entry));
        let validity = store.uid_state(folder.owner, folder.mailbox)?.validity;
        Ok((validity, uid))
    }

    /// Deletes one of a user's own mailboxes with the copies in it, for good (IMAP DELETE,
    /// RFC 3501 6.3.4: unlike the REST API, which deletes only an empty mailbox).
    ///
    /// # Errors
    /// As [`Service::delete_mailbox`]: `system_mailbox`, [`Error::NotFound`]; and
    /// [`Error::MailboxNotEmpty`] when mail was moved in while it was being emptied.
    pub async fn delete_folder(&self, user: &User, name: &str) -> Result<()> {
        let folder = self.folder(user, name).await?;
        if super::mail::system_mailbox(name).is_none() {
            let (svc, folder) = (self.clone(), folder);
            self.offload(move |_| {
                for entry in svc
                    .inner
                    .store
                    .entry_ids(folder.owner, Some(folder.mailbox))?
                {
                    svc.delete_copy(entry)?;
                }
                Ok(())
            })
            .await?;
        }
        self.delete_mailbox(user, name).await
    }

    /// Renames one of the user's own folders, and the folders below it (IMAP RENAME, RFC 3501
    /// 6.3.5); their messages and UIDs stay.
    ///
    /// # Errors
    /// `invalid_mailbox_name`; `system_mailbox` for a system folder (either name);
    /// [`Error::MailboxExists`]; [`Error::NotFound`].
    pub async fn rename_folder(&self, user: &User, from: &str, to: &str) -> Result<()> {
        let (user, from, to) = (user.clone(), from.to_owned(), to.to_owned());
        self.offload(move |svc| {
            let to = super::mail::check_mailbox_name(&to)?;
            if super::mail::system_mailbox(&from).is_some()
                || super::mail::system_mailbox(&to).is_some()
            {
                return Err(Error::invalid(
                    "system_mailbox",
                    "name",
                    "system mailboxes cannot be renamed",
                ));
            }
            let store = &svc.inner.store;
            let owner = store
                .owner(&user.email)?
                .ok_or(Error::NotFound("mailbox"))?;
            let from = from.trim();
            let below = format!("{}/", from.to_lowercase());
            let mut renames = Vec::new();
            for b in store.custom_mailboxes(owner)? {
                let lower = b.name.to_lowercase();
                if lower == from.to_lowercase() {
                    renames.insert(0, (b, to.clone()));
                } else if lower.starts_with(&below) {
                    // The levels below `from`, as spelt in this name.
                    let depth = from.split('/').count();
                    let rest = b.name.split('/').skip(depth).collect::<Vec<_>>().join("/");
                    renames.push((b, format!("{to}/{rest}")));
                }
            }
            if renames
                .first()
                .is_none_or(|(b, _)| !b.name.eq_ignore_ascii_case(from))
            {
                return Err(Error::NotFound("mailbox"));
            }
            for (b, name) in renames {
                store.rename_mailbox(owner, &b, &name)?;
            }
            Ok(())
        })
        .await
    }

    /// Subscribes the user to a folder (`on`) or unsubscribes a name (IMAP SUBSCRIBE and
    /// UNSUBSCRIBE). A subscription outlives its folder, as RFC 3501 6.3.6 says, but only a
    /// folder that exists can be subscribed to, as most servers have it.
    ///
    /// # Errors
    /// [`Error::NotFound`]`("mailbox")` when subscribing to a folder the user does not have.
    pub async fn subscribe(&self, user: &User, name: &str, on: bool) -> Result<()> {
        if on {
            self.folder(user, name).await?;
        }
        let owner = self.inner.store.ensure_owner(&user.email)?;
        Ok(self.inner.store.set_subscribed(owner, name.trim(), on)?)
    }

    /// The folder names the user is subscribed to (IMAP LSUB).
    pub async fn subscriptions(&self, user: &User) -> Result<Vec<String>> {
        match self.inner.store.owner(&user.email)? {
            Some(owner) => Ok(self.inner.store.subscriptions(owner)?),
            None => Ok(Vec::new()),
        }
    }

    /// Watches a folder: the service's events about it.
    pub fn watch_folder(&self, folder: FolderRef) -> FolderWatch {
        FolderWatch {
            folder,
            rx: self.inner.events.subscribe(),
        }
    }
}
