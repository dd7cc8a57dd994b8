//! Stored mail as the service shows it to the front-ends: a message, an owner's copy of it,
//! the addresses in its headers. The store keeps its own records (with what only the store
//! needs, such as the list of copies); the service converts them here, so that a front-end
//! never depends on how mail is stored.

use crate::store::mail::{EntryRecord, Mailbox, MessageRecord};
use crate::time::Timestamp;

/// A name and address from a message header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    /// The display name, when there is one.
    pub name: Option<String>,
    /// `local@domain`.
    pub address: String,
}

/// A message: what every copy of it shares, decoded once when it was delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The message id (the operator's; a user names a copy by its [`Entry`] id).
    pub id: u64,
    pub received_at: Timestamp,
    /// Size of the source in bytes.
    pub size: u64,
    pub envelope_from: String,
    /// Every envelope recipient, Bcc ones included: the operator's view.
    pub envelope_to: Vec<String>,
    pub from: Address,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub reply_to: Vec<Address>,
    pub subject: String,
    pub snippet: String,
    /// The `Message-ID` header, without angle brackets.
    pub message_id: Option<String>,
    pub has_attachments: bool,
    /// The message's tags, shared by every copy of it.
    pub tags: Vec<String>,
}

/// One owner's copy of a message: what its owner can change, and what only their copy shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The copy's id: the message id in the user's API.
    pub id: u64,
    pub read: bool,
    pub starred: bool,
    /// Blind-copy recipients: `Some` on the sender's copy only.
    pub bcc: Option<Vec<String>>,
}

impl std::fmt::Display for Address {
    /// `Name <local@domain>`, or the bare address when there is no name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name} <{}>", self.address),
            None => f.write_str(&self.address),
        }
    }
}

impl From<Mailbox> for Address {
    fn from(m: Mailbox) -> Self {
        Address {
            name: m.name,
            address: m.address,
        }
    }
}

fn addresses(list: Vec<Mailbox>) -> Vec<Address> {
    list.into_iter().map(Address::from).collect()
}

impl From<MessageRecord> for Message {
    fn from(m: MessageRecord) -> Self {
        Message {
            id: m.id,
            received_at: m.received_at,
            size: m.size,
            envelope_from: m.envelope_from,
            envelope_to: m.envelope_to,
            from: Address::from(m.from),
            to: addresses(m.to),
            cc: addresses(m.cc),
            reply_to: addresses(m.reply_to),
            subject: m.subject,
            snippet: m.snippet,
            message_id: m.message_id,
            has_attachments: m.has_attachments,
            tags: Vec::new(),
        }
    }
}

impl From<&MessageRecord> for Message {
    fn from(m: &MessageRecord) -> Self {
        Message::from(m.clone())
    }
}

impl From<&EntryRecord> for Entry {
    fn from(e: &EntryRecord) -> Self {
        Entry {
            id: e.id,
            read: e.read,
            starred: e.starred,
            bcc: e.bcc.clone(),
        }
    }
}
