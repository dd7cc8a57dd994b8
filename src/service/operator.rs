//! The operator view behind the admin token: every message whatever its owner, listed,
//! filtered, read and deleted by its message id, and the server's counters. Test harnesses use
//! it to assert on mail without an account per address.

use tracing::info;

use super::filter::{MessageFilter, OperatorRead, OwnReadLookup, StoreLookup, Viewer};
use super::mail::MAX_PAGE;
use super::message::Message;
use super::{Service, mime};
use crate::error::{Error, Result};
use crate::store::keys;
use crate::store::mail::{MessageRecord, Removed};

/// Messages a listing examines at most per request. A filter that matches rarely would
/// otherwise read the whole store in one request; past this the page ends early, with a
/// `next_cursor` to go on from.
pub const SCAN_BUDGET: usize = 5_000;
/// Messages deleted per store transaction when deleting everything (as retention does).
const DELETE_TXN: usize = 16;
/// Messages read per round when deleting everything.
const DELETE_BATCH: usize = 512;
/// Read flags changed per store transaction.
const READ_TXN: usize = 64;

/// A window of the operator's messages by offset, with the totals it is part of.
#[derive(Debug, Clone)]
pub struct Window {
    pub messages: Vec<Message>,
    /// Messages matching in all.
    pub total: usize,
    /// Of those, the ones the operator has not read (their own flag); 0 for
    /// [`OperatorRead::AnyCopy`] when a filter is given.
    pub unread: usize,
}

/// Query of the operator listing; raw values, validated by [`Service::admin_list`].
#[derive(Debug, Clone, Default)]
pub struct AdminQuery {
    pub filter: MessageFilter,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// One page of the operator listing.
#[derive(Debug, Clone)]
pub struct AdminPage {
    pub messages: Vec<Message>,
    pub next_cursor: Option<String>,
}

/// A whole message as the operator sees it.
#[derive(Debug, Clone)]
pub struct AdminMessage {
    pub message: Message,
    pub content: mime::Content,
}

/// What `GET /api/v1/admin/stats` shows.
#[derive(Debug, Clone)]
pub struct StatsSnapshot {
    pub messages: u64,
    pub bytes: u64,
    pub users: u64,
    pub uptime: std::time::Duration,
    pub smtp: super::stats::SmtpCounts,
    pub chaos: super::chaos::ChaosStats,
}

/// Checks a page size: 1 to [`MAX_PAGE`], 50 when absent.
pub(super) fn page_limit(limit: Option<usize>) -> Result<usize> {
    let limit = limit.unwrap_or(50);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(Error::invalid(
            "invalid_limit",
            "limit",
            "limit must be between 1 and 500",
        ))
    }
}

/// Reads a listing cursor; an empty one is none.
pub(super) fn cursor(raw: Option<&str>, field: &'static str) -> Result<Option<u64>> {
    match raw.filter(|c| !c.is_empty()) {
        Some(c) => keys::decode_cursor(c).map(Some).ok_or_else(|| {
            Error::invalid(
                "invalid_cursor",
                field,
                "the cursor is not one this server returned",
            )
        }),
        None => Ok(None),
    }
}

fn not_found() -> Error {
    Error::NotFound("message")
}

impl Service {
    /// A message as the front-ends see it, with its tags. Blocking (a point read).
    pub(super) fn tagged(&self, m: MessageRecord) -> Result<Message> {
        let tags = self.inner.store.message_tags(m.id)?;
        Ok(Message {
            tags,
            ..Message::from(m)
        })
    }

    /// One page of every message, newest first, filtered. Reads records only, plus the source
    /// of those a `q` must look into; examines at most [`SCAN_BUDGET`] messages.
    ///
    /// # Errors
    /// `invalid_limit`, `invalid_cursor` ([`Error::Invalid`]); store failures.
    pub async fn admin_list(&self, q: &AdminQuery) -> Result<AdminPage> {
        let q = q.clone();
        self.offload(move |svc| svc.admin_list_within(&q, SCAN_BUDGET))
            .await
    }

    fn admin_list_within(&self, q: &AdminQuery, budget: usize) -> Result<AdminPage> {
        let limit = page_limit(q.limit)?;
        let before = cursor(q.cursor.as_deref(), "cursor")?;
        let store = &self.inner.store;
        let mut messages: Vec<Message> = Vec::with_capacity(limit.min(64));
        for (examined, m) in store.messages_newest_first(before).enumerate() {
            let m = m?;
            let id = m.id;
            if q.filter.matches(&m, Viewer::Operator, &StoreLookup(store)) {
                if messages.len() == limit {
                    let next = messages.last().map(|m| keys::encode_cursor(m.id));
                    return Ok(AdminPage {
                        messages,
                        next_cursor: next,
                    });
                }
                messages.push(self.tagged(m)?);
            }
            if examined + 1 == budget {
                // Go on after the last message examined, matched or not.
                return Ok(AdminPage {
                    messages,
                    next_cursor: Some(keys::encode_cursor(id)),
                });
            }
        }
        Ok(AdminPage {
            messages,
            next_cursor: None,
        })
    }

    /// A window of every message that matches `filter`, newest first, by offset: the `limit`
    /// messages after the first `start`, with how many match in all and how many of those
    /// the operator has not read (their own flag). For APIs that page by offset and show
    /// totals (MailHog's, Mailpit's). Without a filter the totals are the store's counters and
    /// the scan stops at the window's end; with one, every record is read, so a late page
    /// costs no more than the first.
    ///
    /// # Errors
    /// Store failures.
    pub async fn admin_window(
        &self,
        filter: &MessageFilter,
        read: OperatorRead,
        start: usize,
        limit: usize,
    ) -> Result<Window> {
        let filter = filter.clone();
        self.offload(move |svc| {
            let store = &svc.inner.store;
            let unfiltered = filter == MessageFilter::default();
            let mut total = 0;
            let mut unread = 0;
            let mut messages = Vec::with_capacity(limit.min(64));
            for m in store.messages_newest_first(None) {
                let m = m?;
                let matched = unfiltered
                    || match read {
                        OperatorRead::AnyCopy => {
                            filter.matches(&m, Viewer::Operator, &StoreLookup(store))
                        }
                        OperatorRead::Own => {
                            filter.matches(&m, Viewer::Operator, &OwnReadLookup(store))
                        }
                    };
                if !matched {
                    continue;
                }
                if total >= start && messages.len() < limit {
                    messages.push(svc.tagged(m)?);
                } else if !unfiltered && read == OperatorRead::Own && !store.operator_read(m.id)? {
                    unread += 1;
                }
                total += 1;
                if unfiltered && messages.len() == limit {
                    break;
                }
            }
            if unfiltered {
                let stored = store.message_count()?;
                let read_count = store.operator_read_count()?;
                return Ok(Window {
                    messages,
                    total: usize::try_from(stored).unwrap_or(usize::MAX),
                    unread: usize::try_from(stored.saturating_sub(read_count))
                        .unwrap_or(usize::MAX),
                });
            }
            for m in &messages {
                if read == OperatorRead::Own && !store.operator_read(m.id)? {
                    unread += 1;
                }
            }
            Ok(Window {
                messages,
                total,
                unread,
            })
        })
        .await
    }

    /// The ids of every message that matches `filter` (`is:read` meaning `read`), newest
    /// first: what a bulk change by search applies to. Reads every record.
    ///
    /// # Errors
    /// Store failures.
    pub async fn admin_matching_ids(
        &self,
        filter: &MessageFilter,
        read: OperatorRead,
    ) -> Result<Vec<u64>> {
        let filter = filter.clone();
        self.offload(move |svc| {
            let store = &svc.inner.store;
            let mut ids = Vec::new();
            for m in store.messages_newest_first(None) {
                let m = m?;
                let matched = match read {
                    OperatorRead::AnyCopy => {
                        filter.matches(&m, Viewer::Operator, &StoreLookup(store))
                    }
                    OperatorRead::Own => {
                        filter.matches(&m, Viewer::Operator, &OwnReadLookup(store))
                    }
                };
                if matched {
                    ids.push(m.id);
                }
            }
            Ok(ids)
        })
        .await
    }

    /// Whether the operator has read a message (their own flag, apart from the users').
    ///
    /// # Errors
    /// Store failures.
    pub fn operator_read(&self, id: u64) -> Result<bool> {
        Ok(self.inner.store.operator_read(id)?)
    }

    /// Sets or clears the operator's read flag of messages; unknown ids are skipped. Returns
    /// the ids whose flag changed.
    ///
    /// # Errors
    /// Store failures.
    pub async fn set_operator_read(&self, ids: Vec<u64>, read: bool) -> Result<Vec<u64>> {
        self.offload(move |svc| {
            let mut changed = Vec::new();
            for chunk in ids.chunks(READ_TXN) {
                changed.extend(svc.inner.store.set_operator_read(chunk, read)?);
            }
            Ok(changed)
        })
        .await
    }

    /// Sets or clears the operator's read flag of every message. Returns how many changed.
    ///
    /// # Errors
    /// Store failures.
    pub async fn set_all_operator_read(&self, read: bool) -> Result<usize> {
        self.offload(move |svc| {
            let store = &svc.inner.store;
            let mut changed = 0;
            if read {
                let bound = store.generate_id()?;
                let mut before = Some(bound);
                loop {
                    let batch = store
                        .messages_newest_first(before)
                        .take(DELETE_BATCH)
                        .map(|m| m.map(|m| m.id))
                        .collect::<Result<Vec<_>, _>>()?;
                    let Some(&last) = batch.last() else { break };
                    for chunk in batch.chunks(READ_TXN) {
                        changed += store.set_operator_read(chunk, true)?.len();
                    }
                    before = Some(last);
                }
            } else {
                loop {
                    let batch = store.operator_read_ids(DELETE_BATCH)?;
                    if batch.is_empty() {
                        break;
                    }
                    for chunk in batch.chunks(READ_TXN) {
                        changed += store.set_operator_read(chunk, false)?.len();
                    }
                }
            }
            Ok(changed)
        })
        .await
    }

    /// A message with its decoded content.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn admin_message(&self, id: u64) -> Result<AdminMessage> {
        self.offload(move |svc| {
            let store = &svc.inner.store;
            let message = store.message(id)?.ok_or_else(not_found)?;
            let raw = store.raw(id)?.ok_or_else(not_found)?;
            Ok(AdminMessage {
                message: svc.tagged(message)?,
                content: mime::content(&raw),
            })
        })
        .await
    }

    /// A message's source.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn admin_raw(&self, id: u64) -> Result<Vec<u8>> {
        self.inner.store.raw(id)?.ok_or_else(not_found)
    }

    /// An attachment of a message.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown message or an index past the last attachment.
    pub async fn admin_attachment(&self, id: u64, index: usize) -> Result<mime::Attachment> {
        let raw = self.admin_raw(id).await?;
        self.offload(move |_| mime::attachment(&raw, index).ok_or(Error::NotFound("attachment")))
            .await
    }

    /// The HTML body of a message, as [`Service::message_html`] gives a user's.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::NoHtml`] when the message has no HTML body.
    pub async fn admin_message_html(&self, id: u64) -> Result<String> {
        let raw = self.admin_raw(id).await?;
        self.html_of(raw).await
    }

    /// Deletes a message with every copy of it, in every mailbox.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn admin_delete(&self, id: u64) -> Result<()> {
        let gone = self
            .offload(move |svc| Ok(svc.inner.store.delete_messages_returning(&[id])?))
            .await?;
        if gone.is_empty() {
            return Err(not_found());
        }
        info!(message = id, "message deleted by the operator");
        self.announce_gone(gone);
        Ok(())
    }

    /// Deletes every message stored when the call begins, with all copies; users and their
    /// mailboxes stay. Mail that arrives meanwhile is kept.
    pub async fn admin_delete_all(&self) -> Result<Removed> {
        self.offload(Service::admin_delete_all_blocking).await
    }

    fn admin_delete_all_blocking(&self) -> Result<Removed> {
        let store = &self.inner.store;
        // Ids only grow: anything stored from now on has a larger one and is left alone.
        let bound = store.generate_id()?;
        let mut total = Removed::default();
        loop {
            let batch = store
                .messages_newest_first(Some(bound))
                .take(DELETE_BATCH)
                .collect::<Result<Vec<_>, _>>()?;
            if batch.is_empty() {
                break;
            }
            for chunk in batch.chunks(DELETE_TXN) {
                let ids: Vec<u64> = chunk.iter().map(|m| m.id).collect();
                let gone = store.delete_messages_returning(&ids)?;
                total += gone.iter().map(|g| g.removed).sum();
                self.announce_gone(gone);
            }
        }
        info!(
            messages = total.messages,
            bytes = total.bytes,
            "all messages deleted by the operator"
        );
        Ok(total)
    }

    /// The counters of `GET /api/v1/admin/stats` and `GET /metrics`: point reads of the counts
    /// the store keeps, whatever its size.
    pub async fn stats_snapshot(&self) -> Result<StatsSnapshot> {
        let store = &self.inner.store;
        Ok(StatsSnapshot {
            messages: store.message_count()?,
            bytes: store.message_bytes()?,
            users: store.user_count()?,
            uptime: self.inner.stats.uptime(),
            smtp: self.inner.stats.smtp(),
            chaos: self.chaos().stats(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::test_support::{deliver, service};

    #[test]
    fn a_page_ends_at_the_scan_budget_with_a_cursor_to_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let wanted = deliver(&svc, "wanted");
        for i in 0..4 {
            deliver(&svc, &format!("other {i}"));
        }
        let mut q = AdminQuery {
            filter: MessageFilter::new(None, None, Some("wanted"), None),
            ..Default::default()
        };
        let mut pages = Vec::new();
        loop {
            let page = svc.admin_list_within(&q, 2).unwrap();
            pages.push(page.messages.iter().map(|m| m.id).collect::<Vec<_>>());
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(pages, [vec![], vec![], vec![wanted]]);
    }

    #[test]
    fn limits_and_cursors_are_checked() {
        assert_eq!(page_limit(None).unwrap(), 50);
        assert!(page_limit(Some(0)).is_err() && page_limit(Some(501)).is_err());
        assert_eq!(cursor(Some(""), "cursor").unwrap(), None);
        assert!(cursor(Some("zz"), "after").is_err());
        let c = keys::encode_cursor(42);
        assert_eq!(cursor(Some(&c), "cursor").unwrap(), Some(42));
    }
}
