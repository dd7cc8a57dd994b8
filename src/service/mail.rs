//! Mail: the one `deliver` path that REST send (and SMTP) use, and the mailbox operations of a
//! signed-in user. Every lookup by id checks the owner, and answers "not found" for somebody
//! else's message.

use std::collections::{BTreeMap, HashMap};

use tracing::{debug, info};

use super::events::Change;
use super::filter::{StoreLookup, Viewer};
use super::message::{Entry, Message};
use super::operator::SCAN_BUDGET;
use super::search::Search;
use super::{Service, address, chaos, compose, mime, token};
use crate::error::{Error, Result};
use crate::service::User;
use crate::store::keys;
use crate::store::mail::{
    self as m, EntryChange, EntryRecord, ListFilter, Mailbox, MessageRecord, NewMessage, Removed,
};
use crate::time::Timestamp;

/// Longest mailbox name, in characters.
pub const MAX_MAILBOX_NAME: usize = 64;
/// Largest page of a listing.
pub const MAX_PAGE: usize = 500;
/// Longest subject, in characters (RFC 5322 line limit).
pub const MAX_SUBJECT: usize = 998;

/// The SMTP-level envelope of a message.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub from: String,
    pub to: Vec<String>,
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// RFC 5322 source.
    pub raw: Vec<u8>,
    pub envelope: Envelope,
    /// The signed-in sender, who gets a copy in `sent` (with the Bcc list).
    pub sender: Option<SenderCopy>,
}

/// The sender's own copy.
#[derive(Debug, Clone)]
pub struct SenderCopy {
    pub address: String,
    pub bcc: Vec<String>,
}

/// A message received from a mail client (SMTP): the source as received, its envelope, and
/// the account the client authenticated as, if any.
#[derive(Debug, Clone)]
pub struct Submission {
    /// RFC 5322 source, with any trace headers the front-end adds.
    pub raw: Vec<u8>,
    pub envelope: Envelope,
    /// The authenticated account's address; it gets a copy in `sent`.
    pub sender: Option<String>,
}

/// A new message on its way to the store, through the shared transactions of
/// [`super::batch`]: owned, since another caller's thread may write it, and handed back after.
pub(super) struct Pending {
    record: MessageRecord,
    raw: Vec<u8>,
    entries: Vec<EntryRecord>,
    tags: Vec<String>,
}

impl Pending {
    fn new_message(&self) -> NewMessage<'_> {
        NewMessage {
            message: &self.record,
            raw: &self.raw,
            entries: &self.entries,
            tags: &self.tags,
        }
    }
}

/// What `deliver` stored.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub message: Message,
    /// One per distinct envelope recipient.
    pub entries: Vec<u64>,
    /// The sender's copy as the sender sees it, when there is one.
    pub sender_copy: Option<MessageView>,
}

/// A message composed over the REST API.
#[derive(Debug, Clone, Default)]
pub struct Compose {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub reply_to: Option<String>,
    pub headers: BTreeMap<String, String>,
}

/// One copy of a message as its owner sees it.
#[derive(Debug, Clone)]
pub struct MessageView {
    pub entry: Entry,
    pub message: Message,
    /// The name of the mailbox it is in.
    pub mailbox: String,
}

impl MessageView {
    /// A stored copy and its message, in the mailbox of that id (`custom`: the names of the
    /// owner's custom mailboxes).
    pub(super) fn of(
        entry: &EntryRecord,
        message: impl Into<Message>,
        custom: &HashMap<u64, String>,
    ) -> MessageView {
        MessageView {
            entry: Entry::from(entry),
            message: message.into(),
            mailbox: Service::mailbox_name(entry.mailbox, custom),
        }
    }
}

/// A copy with its decoded bodies and headers.
#[derive(Debug, Clone)]
pub struct FullMessage {
    pub view: MessageView,
    pub content: mime::Content,
}

/// A mailbox with its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    pub name: String,
    pub total: u64,
    pub unread: u64,
}

/// Query of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    pub unread: Option<bool>,
    pub starred: Option<bool>,
    /// A query in the search grammar ([`super::search`]): empty or blank is none.
    pub q: Option<String>,
}

/// A copy in a listing, with its message, as the store reads them.
type Row = (EntryRecord, MessageRecord);

/// A copy in a mailbox and the size of its message's source, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopySize {
    /// The copy's id, as the REST API gives it.
    pub id: u64,
    pub size: u64,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page {
    pub messages: Vec<MessageView>,
    pub next_cursor: Option<String>,
}

/// A change requested by a user.
#[derive(Debug, Clone, Default)]
pub struct MessagePatch {
    pub read: Option<bool>,
    pub starred: Option<bool>,
    pub mailbox: Option<String>,
}

/// Headers that fakemail writes itself and a client may not set.
const RESERVED_HEADERS: [&str; 13] = [
    "from",
    "to",
    "cc",
    "bcc",
    "date",
    "message-id",
    "subject",
    "reply-to",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "sender",
    "received",
];

/// A mailbox name as it is looked up: without surrounding spaces, as names are made (the
/// comparison itself ignores letter case). Every lookup by name goes through here, so that
/// "Work " names the mailbox made as "Work " (stored as "Work") everywhere.
fn lookup_name(name: &str) -> &str {
    name.trim()
}

pub(super) fn system_mailbox(name: &str) -> Option<u64> {
    let name = lookup_name(name);
    m::SYSTEM_MAILBOXES
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|(id, _)| *id)
}

fn check_address(addr: &str, field: String) -> Result<String> {
    let a = addr.trim();
    address::check(a).map_err(|why| {
        Error::invalid(
            "invalid_address",
            field,
            format!("`{a}` is not a valid email address: {why}"),
        )
    })?;
    Ok(a.to_owned())
}

fn check_header_value(value: &str, field: String) -> Result<()> {
    if value.contains(['\r', '\n']) {
        return Err(Error::Invalid {
            code: "invalid_header",
            field: Some(field),
            message: "header values must not contain line breaks (CR or LF)".into(),
        });
    }
    if value.chars().count() > MAX_SUBJECT {
        return Err(Error::Invalid {
            code: "invalid_header",
            field: Some(field),
            message: format!("header values must be at most {MAX_SUBJECT} characters"),
        });
    }
    Ok(())
}

pub(super) fn check_mailbox_name(raw: &str) -> Result<String> {
    let name = lookup_name(raw);
    let n = name.chars().count();
    let bad = |why: &str| Error::invalid("invalid_mailbox_name", "name", why);
    if n == 0 || n > MAX_MAILBOX_NAME {
        return Err(bad("mailbox names must be 1 to 64 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("mailbox names must not contain control characters"));
    }
    // `/` separates levels (`Projects/2026`), as IMAP's hierarchy delimiter: each level must
    // have a name.
    if name.split('/').any(|level| level.trim().is_empty()) {
        return Err(bad(
            "each level of a mailbox name (between `/`) must have a name",
        ));
    }
    Ok(name.to_owned())
}

/// The record of a new message, and its tags, from its summary and envelope.
pub(super) fn new_record(
    id: u64,
    received_at: Timestamp,
    size: u64,
    summary: mime::Summary,
    envelope: &Envelope,
    entries: Vec<u64>,
) -> (MessageRecord, Vec<String>) {
    let from = summary.from.clone().unwrap_or_else(|| Mailbox {
        name: None,
        address: envelope.from.clone(),
    });
    let record = MessageRecord {
        id,
        received_at,
        size,
        envelope_from: envelope.from.clone(),
        envelope_to: envelope.to.clone(),
        from,
        to: summary.to,
        cc: summary.cc,
        reply_to: summary.reply_to,
        subject: summary.subject,
        snippet: summary.snippet,
        message_id: summary.message_id,
        has_attachments: summary.has_attachments,
        entries,
    };
    (record, summary.tags)
}

fn not_found() -> Error {
    Error::NotFound("message")
}

impl Service {
    /// Stores a message for every distinct envelope recipient (their `inbox`) and, when it
    /// comes from a signed-in sender, a copy in the sender's `sent`. The one ingest path of
    /// REST send and SMTP. It does not wait for the disk ([`Service::submit`] and
    /// [`Service::send`] do).
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] over `--max-message-size`; [`Error::StorageFull`] below
    /// `--min-free-space` or when the store cannot write; store failures.
    pub async fn deliver(&self, d: Delivery) -> Result<Delivered> {
        self.offload(move |svc| svc.deliver_blocking(d)).await
    }

    /// [`Service::deliver`], on the caller's thread.
    pub(super) fn deliver_blocking(&self, d: Delivery) -> Result<Delivered> {
        let limit = self.inner.settings.max_message_size;
        let size = d.raw.len() as u64;
        if size > limit {
            return Err(Error::MessageTooLarge { size, limit });
        }
        self.inner.space.check()?;
        self.store_delivery(d, size)
            .map_err(|e| self.inner.space.write_failure(e))
    }

    /// The writes of [`Service::deliver_blocking`], once the message is known to fit.
    fn store_delivery(&self, d: Delivery, size: u64) -> Result<Delivered> {
        let store = &self.inner.store;
        let summary = mime::summarize(&d.raw);
        let message_id = store.generate_id()?;
        let mut seen = std::collections::HashSet::new();
        let mut entries = Vec::new();
        let mut sender_copy = None;
        if let Some(s) = &d.sender {
            let e = EntryRecord {
                id: store.generate_id()?,
                message: message_id,
                owner: store.ensure_owner(&s.address)?,
                mailbox: m::SENT,
                read: true,
                starred: false,
                bcc: Some(s.bcc.clone()),
            };
            sender_copy = Some(e.clone());
            entries.push(e);
        }
        let mut recipient_entries = Vec::new();
        for rcpt in &d.envelope.to {
            if !seen.insert(keys::email(rcpt)) {
                continue;
            }
            let e = EntryRecord {
                id: store.generate_id()?,
                message: message_id,
                owner: store.ensure_owner(rcpt)?,
                mailbox: m::INBOX,
                read: false,
                starred: false,
                bcc: None,
            };
            recipient_entries.push(e.id);
            entries.push(e);
        }
        let (record, tags) = new_record(
            message_id,
            Timestamp::now(),
            size,
            summary,
            &d.envelope,
            entries.iter().map(|e| e.id).collect(),
        );
        // Written in one transaction with the deliveries that arrive at the same time.
        let pending = Pending {
            record,
            raw: d.raw,
            entries,
            tags,
        };
        let weight = pending.raw.len();
        let (pending, stored) = self.inner.batch.commit(
            pending,
            weight,
            |all| {
                let all: Vec<NewMessage<'_>> = all.iter().map(|p| p.new_message()).collect();
                Ok(store.insert_messages(&all)?)
            },
            |one| Ok(store.insert_messages(&[one.new_message()])?),
        );
        stored?;
        let Pending {
            record,
            entries,
            tags,
            ..
        } = pending;
        self.announce_received(&record, &entries);
        info!(
            message_id,
            size,
            recipients = recipient_entries.len(),
            from = %d.envelope.from,
            "delivered"
        );
        let cap = self.inner.settings.max_messages;
        if cap > 0 {
            let removed = crate::retention::enforce_cap(store, cap, Some(message_id), Some(self))?;
            self.inner
                .stats
                .retention()
                .removed(crate::retention::Reason::Cap, removed);
        }
        Ok(Delivered {
            sender_copy: sender_copy.map(|e| {
                let mut v = MessageView::of(&e, &record, &HashMap::new());
                v.message.tags = tags.clone();
                v
            }),
            message: Message {
                tags,
                ..Message::from(record)
            },
            entries: recipient_entries,
        })
    }

    /// Applies a fault-injection rule at `api_send`, after validation (a real server refuses
    /// well-formed mail too): a reply becomes [`Error::InjectedFault`], a delay waits.
    async fn inject_send_fault(&self, from: &str, to: &[String]) -> Result<()> {
        if !self.chaos().has_rules() {
            return Ok(());
        }
        let to: Vec<&str> = to.iter().map(String::as_str).collect();
        let event = chaos::Event {
            stage: chaos::Stage::ApiSend,
            from: Some(from),
            to: &to,
        };
        let Some(fault) = self.chaos().check(&event) else {
            return Ok(());
        };
        if let Some(reply) = fault.reply() {
            return Err(Error::InjectedFault(reply));
        }
        // Validation keeps disconnects and throttles away from this stage.
        if let chaos::Action::Delay(d) = fault.action {
            tokio::time::sleep(d).await;
        }
        Ok(())
    }

    /// Stores a message received from a mail client through [`Service::deliver`] and returns
    /// once it is on disk, so that the client may be told it was accepted. `Bcc` headers are
    /// removed first; the envelope recipients not named in `To` or `Cc` are the sender's Bcc
    /// list (on the sender's copy only).
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`]; [`Error::StorageFull`]; store and flush failures.
    pub async fn submit(&self, s: Submission) -> Result<Delivered> {
        let delivered = self
            .offload(move |svc| {
                let raw = mime::strip_bcc(&s.raw);
                let sender = s.sender.map(|address| {
                    let summary = mime::summarize(&raw);
                    // Named in a header, or already listed: not (again) a Bcc recipient.
                    let mut seen: std::collections::HashSet<Vec<u8>> = summary
                        .to
                        .iter()
                        .chain(&summary.cc)
                        .map(|m| keys::email(&m.address))
                        .collect();
                    let bcc = (s.envelope.to.iter())
                        .filter(|r| seen.insert(keys::email(r)))
                        .cloned()
                        .collect();
                    SenderCopy { address, bcc }
                });
                svc.deliver_blocking(Delivery {
                    raw,
                    envelope: s.envelope,
                    sender,
                })
            })
            .await?;
        self.flushed().await?;
        Ok(delivered)
    }

    /// Validates and sends a message from `user`; returns the sender's copy once the message
    /// is on disk (concurrent sends share flushes, as SMTP sessions do).
    ///
    /// # Errors
    /// `no_recipients`, `too_many_recipients`, `invalid_address`, `invalid_header` (a subject
    /// or header value with CR or LF or too long, or a bad header name) ([`Error::Invalid`]);
    /// [`Error::MessageTooLarge`]; store and flush failures.
    pub async fn send(&self, user: &User, c: Compose) -> Result<FullMessage> {
        let mut all = Vec::new();
        let mut lists: [(Vec<String>, &str); 3] = [(vec![], "to"), (vec![], "cc"), (vec![], "bcc")];
        for (i, src) in [&c.to, &c.cc, &c.bcc].into_iter().enumerate() {
            for (j, a) in src.iter().enumerate() {
                let a = check_address(a, format!("{}[{j}]", lists[i].1))?;
                all.push(a.clone());
                lists[i].0.push(a);
            }
        }
        let [(to, _), (cc, _), (bcc, _)] = lists;
        if all.is_empty() {
            return Err(Error::invalid(
                "no_recipients",
                "to",
                "a message needs at least one recipient in to, cc or bcc",
            ));
        }
        let max = self.inner.settings.max_recipients;
        if all.len() > max {
            return Err(Error::invalid(
                "too_many_recipients",
                "to",
                format!(
                    "a message may have at most {max} recipients in all; this one has {}",
                    all.len()
                ),
            ));
        }
        let reply_to = c
            .reply_to
            .as_deref()
            .map(|r| check_address(r, "reply_to".into()))
            .transpose()?;
        check_header_value(&c.subject, "subject".into())?;
        let mut headers = Vec::new();
        for (name, value) in &c.headers {
            let valid_name = !name.is_empty()
                && name.len() <= 76
                && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
            if !valid_name {
                return Err(Error::Invalid {
                    code: "invalid_header",
                    field: Some(format!("headers.{name}")),
                    message: "header names must be 1 to 76 printable ASCII characters without `:`"
                        .into(),
                });
            }
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(Error::Invalid {
                    code: "invalid_header",
                    field: Some(format!("headers.{name}")),
                    message: format!("`{name}` is set by fakemail; use the message fields instead"),
                });
            }
            check_header_value(value, format!("headers.{name}"))?;
            headers.push((name.clone(), value.clone()));
        }
        self.inject_send_fault(&user.email, &all).await?;
        let domain = user
            .email
            .rsplit_once('@')
            .map_or("fakemail.invalid", |(_, d)| d);
        let mut rnd = [0u8; 16];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut rnd);
        let message_id = format!("{}@{domain}", token::hex(&rnd));
        let boundary = format!("=_fakemail_{}", token::hex(&rnd[..8]));
        let raw = compose::build(&compose::Outgoing {
            from_name: &user.display_name,
            from: &user.email,
            to: &to,
            cc: &cc,
            reply_to: reply_to.as_deref(),
            subject: &c.subject,
            text: c.text.as_deref(),
            html: c.html.as_deref(),
            headers: &headers,
            message_id: &message_id,
            date: None,
            boundary: &boundary,
        });
        let delivery = Delivery {
            raw,
            envelope: Envelope {
                from: user.email.clone(),
                to: all,
            },
            sender: Some(SenderCopy {
                address: user.email.clone(),
                bcc,
            }),
        };
        let sent = self
            .offload(move |svc| {
                let content = mime::content(&delivery.raw);
                let delivered = svc.deliver_blocking(delivery)?;
                // The answer is the copy as stored, not read back: a concurrent delivery's message
                // cap, or a purge, may already have removed it, and the send still succeeded.
                let view = delivered
                    .sender_copy
                    .ok_or_else(|| Error::Internal("no sender copy".into()))?;
                Ok(FullMessage { view, content })
            })
            .await?;
        // As SMTP's 250: a 201 means the message is on disk and survives a crash.
        self.flushed().await?;
        Ok(sent)
    }

    /// The owner id of a user's address; `None` when no mail was ever kept for it.
    fn owner_of(&self, user: &User) -> Result<Option<u64>> {
        Ok(self.inner.store.owner(&user.email)?)
    }

    /// Names of an owner's custom mailboxes by id.
    pub(super) fn custom_names(&self, owner: u64) -> Result<HashMap<u64, String>> {
        Ok(self
            .inner
            .store
            .custom_mailboxes(owner)?
            .into_iter()
            .map(|b| (b.id, b.name))
            .collect())
    }

    pub(super) fn mailbox_name(id: u64, custom: &HashMap<u64, String>) -> String {
        m::SYSTEM_MAILBOXES
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| (*n).to_owned())
            .or_else(|| custom.get(&id).cloned())
            .unwrap_or_else(|| "inbox".to_owned())
    }

    /// Resolves a mailbox name (trimmed, in any letter case) to its id.
    pub(super) fn resolve_mailbox(&self, owner: Option<u64>, name: &str) -> Result<Option<u64>> {
        if let Some(id) = system_mailbox(name) {
            return Ok(Some(id));
        }
        match owner {
            Some(o) => Ok(self.custom_mailbox(o, name)?.map(|b| b.id)),
            None => Ok(None),
        }
    }

    /// An owner's custom mailbox by name (trimmed, in any letter case).
    fn custom_mailbox(&self, owner: u64, name: &str) -> Result<Option<m::MailboxRecord>> {
        Ok(self.inner.store.custom_mailbox(owner, lookup_name(name))?)
    }

    /// The entry `id` if it belongs to `owner`.
    fn owned_entry(&self, owner: Option<u64>, id: u64) -> Result<EntryRecord> {
        let owner = owner.ok_or_else(not_found)?;
        match self.inner.store.entry(id)? {
            Some(e) if e.owner == owner => Ok(e),
            _ => Err(not_found()),
        }
    }

    fn view(&self, entry: EntryRecord, custom: &HashMap<u64, String>) -> Result<MessageView> {
        let message = self
            .inner
            .store
            .message(entry.message)?
            .ok_or_else(not_found)?;
        let mut view = MessageView::of(&entry, message, custom);
        view.message.tags = self.inner.store.message_tags(entry.message)?;
        Ok(view)
    }

    /// A user's copy of a message with bodies and headers. Does not change `read`.
    pub async fn message(&self, user: &User, id: u64) -> Result<FullMessage> {
        let owner = self.owner_of(user)?.ok_or_else(not_found)?;
        self.offload(move |svc| {
            let entry = svc.owned_entry(Some(owner), id)?;
            let view = svc.view(entry, &svc.custom_names(owner)?)?;
            let raw = svc.inner.store.raw(view.message.id)?.unwrap_or_default();
            Ok(FullMessage {
                view,
                content: mime::content(&raw),
            })
        })
        .await
    }

    /// The source of a user's copy of a message.
    pub async fn raw(&self, user: &User, id: u64) -> Result<Vec<u8>> {
        let entry = self.owned_entry(self.owner_of(user)?, id)?;
        self.inner.store.raw(entry.message)?.ok_or_else(not_found)
    }

    /// An attachment of a user's copy of a message, by its index in the full message.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a message that is not the user's or an index past the last.
    pub async fn attachment(&self, user: &User, id: u64, index: usize) -> Result<mime::Attachment> {
        let raw = self.raw(user, id).await?;
        self.offload(move |_| mime::attachment(&raw, index).ok_or(Error::NotFound("attachment")))
            .await
    }

    /// The HTML body of a user's copy of a message, its `cid:` references to the message's
    /// parts made `data:` URIs (at most `--max-message-size` bytes of them).
    ///
    /// # Errors
    /// [`Error::NotFound`] for a message that is not the user's; [`Error::NoHtml`] when it has
    /// no HTML body.
    pub async fn message_html(&self, user: &User, id: u64) -> Result<String> {
        let raw = self.raw(user, id).await?;
        self.html_of(raw).await
    }

    /// The HTML body of a message's source, as [`Service::message_html`] gives it.
    pub(super) async fn html_of(&self, raw: Vec<u8>) -> Result<String> {
        let budget = usize::try_from(self.inner.settings.max_message_size).unwrap_or(usize::MAX);
        self.offload(move |_| mime::html_inlined(&raw, budget).ok_or(Error::NoHtml))
            .await
    }

    /// Changes flags or moves a user's copy.
    ///
    /// # Errors
    /// `unknown_mailbox` for a mailbox that does not exist; [`Error::NotFound`].
    pub async fn update_message(
        &self,
        user: &User,
        id: u64,
        patch: MessagePatch,
    ) -> Result<MessageView> {
        let user = user.clone();
        self.offload(move |svc| svc.update_message_blocking(&user, id, patch))
            .await
    }

    fn update_message_blocking(
        &self,
        user: &User,
        id: u64,
        patch: MessagePatch,
    ) -> Result<MessageView> {
        let owner = self.owner_of(user)?;
        let entry = self.owned_entry(owner, id)?;
        let unknown = |name: &str| {
            Error::invalid(
                "unknown_mailbox",
                "mailbox",
                format!("there is no mailbox named `{name}`"),
            )
        };
        let mailbox = match &patch.mailbox {
            Some(name) => Some(
                self.resolve_mailbox(owner, name)?
                    .ok_or_else(|| unknown(name))?,
            ),
            None => None,
        };
        let change = EntryChange {
            read: patch.read,
            starred: patch.starred,
            mailbox,
        };
        let updated = match self.inner.store.update_entry(entry.id, change) {
            Ok(updated) => updated.ok_or_else(not_found)?,
            // Deleted since it was looked up: as if it had not been there.
            Err(Error::NotFound("mailbox")) => {
                return Err(unknown(patch.mailbox.as_deref().unwrap_or_default()));
            }
            Err(e) => return Err(e),
        };
        if updated.mailbox != entry.mailbox {
            let from = Some(entry.mailbox);
            self.announce_changed(Change::Filed { from }, vec![updated.clone()]);
        }
        if (updated.read, updated.starred) != (entry.read, entry.starred) {
            self.announce_changed(Change::Flagged, vec![updated.clone()]);
        }
        debug!(entry = id, "message updated");
        let custom = self.custom_names(updated.owner)?;
        self.view(updated, &custom)
    }

    /// Moves a user's copy to `trash`, or deletes it for good when it is already there or
    /// `permanent` is set.
    pub async fn delete_message(&self, user: &User, id: u64, permanent: bool) -> Result<()> {
        let user = user.clone();
        self.offload(move |svc| svc.delete_message_blocking(&user, id, permanent))
            .await
    }

    fn delete_message_blocking(&self, user: &User, id: u64, permanent: bool) -> Result<()> {
        let entry = self.owned_entry(self.owner_of(user)?, id)?;
        if permanent || entry.mailbox == m::TRASH {
            self.delete_copy(entry.id)?;
            info!(entry = id, "message deleted");
        } else {
            let moved = self.inner.store.update_entry(
                entry.id,
                EntryChange {
                    mailbox: Some(m::TRASH),
                    ..Default::default()
                },
            )?;
            let from = Some(entry.mailbox);
            self.announce_changed(Change::Filed { from }, moved.into_iter().collect());
            debug!(entry = id, "message moved to trash");
        }
        Ok(())
    }

    /// The user's mailboxes: the system ones, then custom ones by name.
    pub async fn mailboxes(&self, user: &User) -> Result<Vec<MailboxInfo>> {
        let user = user.clone();
        self.offload(move |svc| svc.mailboxes_blocking(&user)).await
    }

    fn mailboxes_blocking(&self, user: &User) -> Result<Vec<MailboxInfo>> {
        let owner = self.owner_of(user)?;
        let store = &self.inner.store;
        let info = |name: String, id: u64| -> Result<MailboxInfo> {
            let c = match owner {
                Some(o) => store.counts(o, id)?,
                None => m::Counts::default(),
            };
            Ok(MailboxInfo {
                name,
                total: c.total,
                unread: c.unread,
            })
        };
        let mut out = Vec::new();
        for (id, name) in m::SYSTEM_MAILBOXES {
            out.push(info(name.to_owned(), id)?);
        }
        if let Some(o) = owner {
            for b in store.custom_mailboxes(o)? {
                out.push(info(b.name, b.id)?);
            }
        }
        Ok(out)
    }

    /// Creates a custom mailbox.
    ///
    /// # Errors
    /// `invalid_mailbox_name`; [`Error::MailboxExists`] (system names included).
    pub async fn create_mailbox(&self, user: &User, name: &str) -> Result<MailboxInfo> {
        let (user, name) = (user.clone(), name.to_owned());
        self.offload(move |svc| svc.create_mailbox_blocking(&user, &name))
            .await
    }

    fn create_mailbox_blocking(&self, user: &User, name: &str) -> Result<MailboxInfo> {
        let name = check_mailbox_name(name)?;
        if system_mailbox(&name).is_some() {
            return Err(Error::MailboxExists);
        }
        let owner = self.inner.store.ensure_owner(&user.email)?;
        let b = self.inner.store.create_mailbox(owner, &name)?;
        info!(user = user.id, mailbox = %b.name, "mailbox created");
        Ok(MailboxInfo {
            name: b.name,
            total: 0,
            unread: 0,
        })
    }

    /// Deletes an empty custom mailbox.
    ///
    /// # Errors
    /// `system_mailbox` for inbox/sent/archive/trash; [`Error::MailboxNotEmpty`];
    /// [`Error::NotFound`].
    pub async fn delete_mailbox(&self, user: &User, name: &str) -> Result<()> {
        let (user, name) = (user.clone(), name.to_owned());
        self.offload(move |svc| svc.delete_mailbox_blocking(&user, &name))
            .await
    }

    fn delete_mailbox_blocking(&self, user: &User, name: &str) -> Result<()> {
        if system_mailbox(name).is_some() {
            return Err(Error::invalid(
                "system_mailbox",
                "name",
                "system mailboxes cannot be deleted",
            ));
        }
        let owner = self.owner_of(user)?.ok_or(Error::NotFound("mailbox"))?;
        let b = self
            .custom_mailbox(owner, name)?
            .ok_or(Error::NotFound("mailbox"))?;
        self.inner.store.delete_mailbox(owner, &b)?;
        info!(user = user.id, mailbox = %b.name, "mailbox deleted");
        Ok(())
    }

    /// Moves everything in a mailbox to `trash`, or deletes it for good when the mailbox is
    /// `trash`.
    pub async fn empty_mailbox(&self, user: &User, name: &str) -> Result<u64> {
        let (user, name) = (user.clone(), name.to_owned());
        self.offload(move |svc| svc.empty_mailbox_blocking(&user, &name))
            .await
    }

    fn empty_mailbox_blocking(&self, user: &User, name: &str) -> Result<u64> {
        let owner = self.owner_of(user)?;
        let id = self
            .resolve_mailbox(owner, name)?
            .ok_or(Error::NotFound("mailbox"))?;
        let Some(owner) = owner else { return Ok(0) };
        let store = &self.inner.store;
        let mut n = 0;
        for entry in store.entry_ids(owner, Some(id))? {
            if id == m::TRASH {
                self.delete_copy(entry)?;
            } else {
                let moved = store.update_entry(
                    entry,
                    EntryChange {
                        mailbox: Some(m::TRASH),
                        ..Default::default()
                    },
                )?;
                let from = Some(id);
                self.announce_changed(Change::Filed { from }, moved.into_iter().collect());
            }
            n += 1;
        }
        info!(
            user = user.id,
            mailbox = name,
            messages = n,
            "mailbox emptied"
        );
        Ok(n)
    }

    /// One page of a mailbox, newest first. Costs O(page); with a `q`, what the search
    /// examines (at most [`SCAN_BUDGET`] copies).
    ///
    /// # Errors
    /// `invalid_limit`, `invalid_cursor`, `invalid_search` ([`Error::Invalid`]);
    /// [`Error::NotFound`] for an unknown mailbox.
    pub async fn list(&self, user: &User, mailbox: &str, q: &ListQuery) -> Result<Page> {
        let (user, mailbox, q) = (user.clone(), mailbox.to_owned(), q.clone());
        self.offload(move |svc| svc.list_blocking(&user, &mailbox, &q))
            .await
    }

    fn list_blocking(&self, user: &User, mailbox: &str, q: &ListQuery) -> Result<Page> {
        let limit = q.limit.unwrap_or(50);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(Error::invalid(
                "invalid_limit",
                "limit",
                "limit must be between 1 and 500",
            ));
        }
        let before = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => Some(keys::decode_cursor(c).ok_or_else(|| {
                Error::invalid(
                    "invalid_cursor",
                    "cursor",
                    "the cursor is not one this server returned",
                )
            })?),
            None => None,
        };
        let owner = self.owner_of(user)?;
        let id = self
            .resolve_mailbox(owner, mailbox)?
            .ok_or(Error::NotFound("mailbox"))?;
        let Some(owner) = owner else {
            return Ok(Page {
                messages: vec![],
                next_cursor: None,
            });
        };
        let filter = ListFilter {
            read: q.unread.map(|u| !u),
            starred: q.starred,
        };
        let search = Search::parse(q.q.as_deref().unwrap_or_default(), "q")?;
        let (rows, next_cursor) = if !search.is_empty() {
            self.search_mailbox(owner, id, filter, &search, before, limit)?
        } else {
            let (rows, more) = self
                .inner
                .store
                .list_mailbox(owner, id, filter, before, limit)?;
            let next = more
                .then(|| rows.last().map(|(e, _)| keys::encode_cursor(e.id)))
                .flatten();
            (rows, next)
        };
        let custom = self.custom_names(owner)?;
        let messages = rows
            .into_iter()
            .map(|(entry, message)| {
                let mut view = MessageView::of(&entry, message, &custom);
                view.message.tags = self.inner.store.message_tags(entry.message)?;
                Ok(view)
            })
            .collect::<Result<_>>()?;
        Ok(Page {
            messages,
            next_cursor,
        })
    }

    /// Every copy in one of a user's mailboxes, oldest first, with the size of its source: the
    /// maildrop a POP3 session opens at login. Costs O(copies in the mailbox).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown mailbox.
    pub async fn mailbox_sizes(&self, user: &User, mailbox: &str) -> Result<Vec<CopySize>> {
        let (user, mailbox) = (user.clone(), mailbox.to_owned());
        self.offload(move |svc| {
            let owner = svc.owner_of(&user)?;
            let id = svc
                .resolve_mailbox(owner, &mailbox)?
                .ok_or(Error::NotFound("mailbox"))?;
            let Some(owner) = owner else {
                return Ok(Vec::new());
            };
            let mut all = Vec::new();
            let mut before = None;
            loop {
                let (rows, more) = svc.inner.store.list_mailbox(
                    owner,
                    id,
                    ListFilter::default(),
                    before,
                    MAX_PAGE,
                )?;
                before = rows.last().map(|(e, _)| e.id);
                all.extend(rows.into_iter().map(|(e, m)| CopySize {
                    id: e.id,
                    size: m.size,
                }));
                if !more || before.is_none() {
                    break;
                }
            }
            all.reverse();
            Ok(all)
        })
        .await
    }

    /// A page of one mailbox's copies that match `search` (and the flags of `filter`), newest
    /// first, with the cursor to go on from. Reads records, plus the source of those the
    /// record alone does not settle; examines at most [`SCAN_BUDGET`] copies, as the operator
    /// listing does, so a rare match may take several pages, some of them empty.
    fn search_mailbox(
        &self,
        owner: u64,
        mailbox: u64,
        filter: ListFilter,
        search: &Search,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<Row>, Option<String>)> {
        let store = &self.inner.store;
        let mut rows: Vec<Row> = Vec::with_capacity(limit.min(64));
        for (examined, row) in store
            .mailbox_newest_first(owner, mailbox, before)
            .enumerate()
        {
            let (entry, message) = row?;
            let id = entry.id;
            let flags = filter.read.is_none_or(|r| r == entry.read)
                && filter.starred.is_none_or(|s| s == entry.starred);
            if flags && search.matches(&message, Viewer::Owner(&entry), &StoreLookup(store)) {
                if rows.len() == limit {
                    let next = rows.last().map(|(e, _)| keys::encode_cursor(e.id));
                    return Ok((rows, next));
                }
                rows.push((entry, message));
            }
            if examined + 1 == SCAN_BUDGET {
                // Go on after the last copy examined, matched or not.
                return Ok((rows, Some(keys::encode_cursor(id))));
            }
        }
        Ok((rows, None))
    }

    /// Removes all mail of an address (every copy it owns, bodies whose last copy that was,
    /// its mailboxes). Blocking.
    pub(super) fn delete_mail_of(&self, address: &str) -> Result<Removed> {
        let store = &self.inner.store;
        let mut removed = Removed::default();
        if let Some(owner) = store.owner(address)? {
            for entry in store.entry_ids(owner, None)? {
                if let Some(r) = self.delete_copy(entry)? {
                    removed += r;
                }
            }
            store.delete_owner(owner, address)?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_names() {
        assert_eq!(check_mailbox_name(" Receipts ").unwrap(), "Receipts");
        assert!(check_mailbox_name("").is_err());
        assert!(check_mailbox_name(&"x".repeat(65)).is_err());
        assert!(check_mailbox_name(&"é".repeat(64)).is_ok());
        assert_eq!(
            check_mailbox_name("Projects/2026").unwrap(),
            "Projects/2026"
        );
        assert!(check_mailbox_name("/a").is_err());
        assert!(check_mailbox_name("a/").is_err());
        assert!(check_mailbox_name("a//b").is_err());
        assert!(check_mailbox_name("a/ /b").is_err());
        assert!(check_mailbox_name("a\tb").is_err());
        assert_eq!(system_mailbox("INBOX"), Some(m::INBOX));
        assert_eq!(system_mailbox("Trash"), Some(m::TRASH));
        assert_eq!(system_mailbox("receipts"), None);
        assert_eq!(system_mailbox(" inbox "), Some(m::INBOX));
    }

    #[test]
    fn header_values_reject_injection() {
        assert!(check_header_value("fine", "subject".into()).is_ok());
        for bad in ["a\r\nBcc: x@y.z", "a\nb", "a\rb"] {
            assert!(
                check_header_value(bad, "subject".into()).is_err(),
                "{bad:?}"
            );
        }
        assert!(check_header_value(&"s".repeat(999), "subject".into()).is_err());
    }
}
