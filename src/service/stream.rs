//! Event streams: every delivery and deletion an audience may see, as they happen, for
//! Server-Sent Events. The operator sees each message come and go (a deletion when its last
//! copy goes); a user sees their own copies arrive and be deleted, nobody else's.
//!
//! A stream that falls behind (`Lagged`) reads what arrived meanwhile from the store and
//! sends it (at most [`REPLAY_MAX`] messages); deletions it missed are not recoverable. The
//! same replay serves a client that reconnects with the `Last-Event-ID` it last got.

use std::collections::VecDeque;

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch as watch_channel;
use tracing::warn;

use super::Service;
use super::events::{Change, EventKind, MailEvent};
use super::filter::MessageFilter;
use super::mail::MessageView;
use super::message::Message;
use super::watch::{After, Audience, Hit};
use crate::error::Result;
use crate::store::keys;
use crate::store::mail::EntryRecord;

/// Most messages a stream sends again after it fell behind or reconnected.
pub const REPLAY_MAX: usize = 1_000;

/// One event of a stream.
#[derive(Debug, Clone)]
pub struct Notice {
    pub kind: EventKind,
    pub item: NoticeItem,
    /// The cursor of the message (operator) or copy (user) received: the event's id, for
    /// `Last-Event-ID` and for a wait's `after`. `None` for deletions.
    pub cursor: Option<String>,
}

/// What a notice is about, as its audience sees it.
#[derive(Debug, Clone)]
pub enum NoticeItem {
    Operator(Message),
    User(MessageView),
}

/// The events one audience sees, one at a time. Holds a subscription to the events hub until
/// dropped.
pub struct EventStream {
    svc: Service,
    audience: Audience,
    rx: broadcast::Receiver<MailEvent>,
    closing: watch_channel::Receiver<bool>,
    pending: VecDeque<Notice>,
    /// The highest message or copy id announced to this stream so far: a replay starts here.
    seen: u64,
    /// Replay from here before reading more events.
    replay: Option<u64>,
}

impl Service {
    /// A stream of what `audience` sees from now on; with `last_event_id` (a cursor this
    /// stream family gave out), first what arrived after it.
    ///
    /// # Errors
    /// Store failures.
    pub async fn event_stream(
        &self,
        audience: Audience,
        last_event_id: Option<&str>,
    ) -> Result<EventStream> {
        let rx = self.events().subscribe();
        let seen = self.inner.store.generate_id()?;
        Ok(EventStream {
            svc: self.clone(),
            audience,
            rx,
            closing: self.events().closing(),
            pending: VecDeque::new(),
            seen,
            replay: last_event_id.and_then(keys::decode_cursor),
        })
    }
}

impl EventStream {
    /// The next notice; `None` when the stream ends: the server shuts down, the user's session
    /// ended, or the store failed (logged).
    pub async fn next(&mut self) -> Option<Notice> {
        loop {
            if let Some(n) = self.pending.pop_front() {
                return Some(n);
            }
            if let Some(from) = self.replay.take() {
                match self.replay_from(from).await {
                    Ok(notices) => self.pending.extend(notices),
                    Err(e) => {
                        warn!(error = %e, "event stream: replay failed; closing the stream");
                        return None;
                    }
                }
                continue;
            }
            let event = tokio::select! {
                _ = self.closing.wait_for(|c| *c) => return None,
                r = self.rx.recv() => match r {
                    Ok(event) => event,
                    Err(RecvError::Lagged(_)) => {
                        self.replay = Some(self.seen);
                        continue;
                    }
                    Err(RecvError::Closed) => return None,
                },
            };
            match self.notices(&event).await {
                Ok(Some(notices)) => self.pending.extend(notices),
                Ok(None) => return None,
                Err(e) => {
                    warn!(error = %e, "event stream: store failure; closing the stream");
                    return None;
                }
            }
        }
    }

    /// The notices an event makes for this audience; `None` when a user's session ended.
    async fn notices(&mut self, event: &MailEvent) -> Result<Option<Vec<Notice>>> {
        let Some(kind) = event.kind.reported() else {
            return Ok(Some(Vec::new()));
        };
        let m = &event.message;
        if kind == EventKind::Received {
            let newest = event.entries.iter().map(|e| e.id).chain([m.id]).max();
            self.seen = self.seen.max(newest.unwrap_or(0));
        }
        let cursor =
            |position: u64| (kind == EventKind::Received).then(|| keys::encode_cursor(position));
        // A point read; a deleted message's tags went with it.
        let tags = match kind {
            EventKind::Received => self.svc.inner.store.message_tags(m.id)?,
            EventKind::Deleted => Vec::new(),
        };
        match &self.audience {
            Audience::Operator => Ok(Some(if event.whole {
                vec![Notice {
                    kind,
                    item: NoticeItem::Operator(Message {
                        tags,
                        ..Message::from(&**m)
                    }),
                    cursor: cursor(m.id),
                }]
            } else {
                Vec::new()
            })),
            Audience::User { session, owner, .. } => {
                let own: Vec<&EntryRecord> =
                    event.entries.iter().filter(|e| e.owner == *owner).collect();
                if own.is_empty() {
                    return Ok(Some(Vec::new()));
                }
                if !self.svc.session_valid(session).await? {
                    return Ok(None);
                }
                let custom = self.svc.custom_names(*owner)?;
                Ok(Some(
                    own.into_iter()
                        .map(|e| {
                            let mut view = MessageView::of(e, &**m, &custom);
                            view.message.tags = tags.clone();
                            Notice {
                                kind,
                                item: NoticeItem::User(view),
                                cursor: cursor(e.id),
                            }
                        })
                        .collect(),
                ))
            }
        }
    }

    /// What arrived after `from`, oldest first, as `received` notices (at most
    /// [`REPLAY_MAX`], the newest).
    async fn replay_from(&mut self, from: u64) -> Result<Vec<Notice>> {
        let audience = self.audience.clone();
        let hits = self
            .svc
            .offload(move |svc| {
                let mut hits: Vec<Hit> = Vec::new();
                svc.walk_after(
                    &audience,
                    &MessageFilter::default(),
                    After::Position(from),
                    &mut |hit| {
                        hits.push(hit);
                        hits.len() < REPLAY_MAX
                    },
                )?;
                Ok(hits)
            })
            .await?;
        let mut notices = Vec::with_capacity(hits.len());
        for (m, entry) in hits.into_iter().rev() {
            let event = MailEvent {
                kind: Change::Received,
                message: m.into(),
                entries: entry.into_iter().collect::<Vec<_>>().into(),
                whole: true,
            };
            match self.notices(&event).await? {
                Some(n) => notices.extend(n),
                None => break,
            }
        }
        Ok(notices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::events::CAPACITY;
    use crate::service::test_support::{deliver, service};

    #[tokio::test]
    async fn a_lagging_stream_replays_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let mut stream = svc.event_stream(Audience::Operator, None).await.unwrap();
        let needle = deliver(&svc, "needle");
        let mut junk = svc.inner.store.message(needle).unwrap().unwrap();
        junk.subject = "junk".into();
        for _ in 0..CAPACITY + 10 {
            svc.announce_received(&junk, &[]);
        }
        let first = stream.next().await.unwrap();
        let NoticeItem::Operator(m) = first.item else {
            panic!("the operator's stream");
        };
        assert_eq!((m.id, m.subject.as_str()), (needle, "needle"));
        assert_eq!(first.cursor, Some(keys::encode_cursor(needle)));
        assert_eq!(first.kind, EventKind::Received);
    }

    #[tokio::test]
    async fn a_stream_replays_after_a_last_event_id_and_ends_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let one = deliver(&svc, "one");
        let two = deliver(&svc, "two");
        let three = deliver(&svc, "three");
        let last = keys::encode_cursor(one);
        let mut stream = svc
            .event_stream(Audience::Operator, Some(&last))
            .await
            .unwrap();
        for want in [two, three] {
            let n = stream.next().await.unwrap();
            assert!(matches!(n.item, NoticeItem::Operator(ref m) if m.id == want));
        }
        svc.events().close();
        assert!(stream.next().await.is_none());
        let mut garbage = svc
            .event_stream(Audience::Operator, Some("x"))
            .await
            .unwrap();
        assert!(
            garbage.next().await.is_none(),
            "closed hub: nothing, no replay"
        );
    }
}
