//! Wait-for-message: answer with the first matching message stored after a point, at once if
//! one is already there, else as soon as one arrives, else time out. For the operator (all
//! mail) and for a user (their own copies in one mailbox).
//!
//! The order of the steps closes the race between "already there" and "arrives": subscribe to
//! the events hub first, then look in the store, then wait for events. A message stored
//! between the two is found by one or the other (at worst both; the first answer wins). When
//! the subscriber falls behind (`Lagged`), events were dropped for it, so it reads the store
//! again instead of trusting the events: a match is never lost.

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use super::events::{Change, MailEvent};
use super::filter::{MessageFilter, StoreLookup, Viewer};
use super::mail::FullMessage;
use super::operator::AdminMessage;
use super::search::{Lookup, NoLookup};
use super::{Service, Session};
use crate::error::{Error, Result};
use crate::store::keys;
use crate::store::mail::{EntryRecord, MessageRecord};
use crate::time::Timestamp;

/// How long a wait lasts when the request does not say.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// The longest wait a request may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(300);
/// Arrival times are taken just after ids are, so the two orders can differ a little; a
/// newest-first walk looking for times at or after `t` goes on this far past `t`.
const TIME_SLACK: u64 = 10;

/// Where a wait starts: it wants messages stored after this point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// After the message (operator) or copy (user) a cursor names, or after the moment the
    /// request began (a fresh id: every id given out later is larger).
    Position(u64),
    /// At or after this time, in whole seconds.
    Time(Timestamp),
}

impl After {
    /// Whether a message (and, for a user, their copy) lies after this point.
    fn admits(self, m: &MessageRecord, position: u64) -> bool {
        match self {
            After::Position(p) => position > p,
            After::Time(t) => m.received_at >= t,
        }
    }

    /// Whether a newest-first walk has gone far enough back to stop.
    fn passed(self, m: &MessageRecord, position: u64) -> bool {
        match self {
            After::Position(p) => position <= p,
            After::Time(t) => m.received_at.0.saturating_add(TIME_SLACK) < t.0,
        }
    }
}

/// Whose mail a wait sees.
#[derive(Debug, Clone)]
pub enum Audience {
    /// Every message (the admin token); positions are message ids.
    Operator,
    /// One user's copies; positions are copy (entry) ids.
    User {
        session: Session,
        owner: u64,
        /// Only copies in this mailbox; `None`: in any.
        mailbox: Option<u64>,
    },
}

/// A validated wait request.
#[derive(Debug, Clone)]
pub struct WaitQuery {
    pub filter: MessageFilter,
    /// `None`: messages stored after the request began.
    pub after: Option<After>,
    pub timeout: Duration,
}

/// What a wait found.
#[derive(Debug, Clone)]
pub enum Found {
    Operator(AdminMessage),
    User(FullMessage),
}

/// A found message with the cursor of its position, to wait for the next one after it.
#[derive(Debug, Clone)]
pub struct Waited {
    pub found: Found,
    pub cursor: String,
}

/// A match before its content is read: the message and, for a user, their copy.
pub(super) type Hit = (MessageRecord, Option<EntryRecord>);

/// Checks `timeout` (a duration such as `30s` or `2m`, or a whole number of seconds; at most
/// [`MAX_WAIT`]) and `after` (a cursor or an RFC 3339 time).
///
/// # Errors
/// `invalid_timeout`, `invalid_after` ([`Error::Invalid`]).
pub fn wait_query(
    filter: MessageFilter,
    after: Option<&str>,
    timeout: Option<&str>,
) -> Result<WaitQuery> {
    let timeout = match timeout.map(str::trim).filter(|t| !t.is_empty()) {
        None => DEFAULT_WAIT,
        Some(t) => parse_timeout(t)?,
    };
    let after = match after.map(str::trim).filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => Some(parse_after(a)?),
    };
    Ok(WaitQuery {
        filter,
        after,
        timeout,
    })
}

fn parse_timeout(t: &str) -> Result<Duration> {
    let bad = |why: String| Error::invalid("invalid_timeout", "timeout", why);
    let d = match t.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(t).map_err(|e| {
            bad(format!(
                "`{t}` is not a duration ({e}); give seconds or a duration such as 30s or 2m"
            ))
        })?,
    };
    if d > MAX_WAIT {
        return Err(bad(format!(
            "the timeout may be at most {}",
            humantime::format_duration(MAX_WAIT)
        )));
    }
    Ok(d)
}

fn parse_after(a: &str) -> Result<After> {
    if let Some(p) = keys::decode_cursor(a) {
        return Ok(After::Position(p));
    }
    parse_time(a).map(After::Time).ok_or_else(|| {
        Error::invalid(
            "invalid_after",
            "after",
            format!(
                "`{a}` is neither a cursor this server returned nor an RFC 3339 time such as 2026-11-24T17:10:37Z"
            ),
        )
    })
}

/// An RFC 3339 time, `Z` or with an offset (`+02:00`; a `+` that became a space in a query
/// string is read as `+`).
pub(super) fn parse_time(a: &str) -> Option<Timestamp> {
    if let Ok(t) = humantime::parse_rfc3339(a) {
        return Some(Timestamp::from_system(t));
    }
    // humantime knows only `Z`: apply a numeric offset ourselves.
    let (local, offset) = a.split_at_checked(a.len().checked_sub(6)?)?;
    let sign = match offset.as_bytes().first()? {
        b'+' | b' ' => -1i64,
        b'-' => 1,
        _ => return None,
    };
    let (h, m) = offset.get(1..)?.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    let t = humantime::parse_rfc3339(&format!("{local}Z")).ok()?;
    let secs = i64::try_from(Timestamp::from_system(t).0).ok()? + sign * (h * 3600 + m * 60);
    u64::try_from(secs).ok().map(Timestamp)
}

impl Audience {
    /// Every copy of `m` this audience sees, with its position: the message itself for the
    /// operator; the user's own copies (in the mailbox, if one is set) for a user.
    fn sees_all<'a>(
        &self,
        m: &MessageRecord,
        entries: &'a [EntryRecord],
    ) -> Vec<(u64, Option<&'a EntryRecord>)> {
        match self {
            Audience::Operator => vec![(m.id, None)],
            Audience::User { owner, mailbox, .. } => entries
                .iter()
                .filter(|e| e.owner == *owner && mailbox.is_none_or(|b| e.mailbox == b))
                .map(|e| (e.id, Some(e)))
                .collect(),
        }
    }
}

fn viewer(entry: Option<&EntryRecord>) -> Viewer<'_> {
    entry.map_or(Viewer::Operator, Viewer::Owner)
}

impl Service {
    /// A user as the audience of a wait or stream: their copies, in `mailbox` when given.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a mailbox the user does not have.
    pub async fn audience(&self, session: Session, mailbox: Option<&str>) -> Result<Audience> {
        // Made now if the user never had mail, so that the first delivery is recognised.
        let owner = self.inner.store.ensure_owner(&session.user.email)?;
        let mailbox = match mailbox {
            Some(name) => Some(
                self.resolve_mailbox(Some(owner), name)?
                    .ok_or(Error::NotFound("mailbox"))?,
            ),
            None => None,
        };
        Ok(Audience::User {
            session,
            owner,
            mailbox,
        })
    }

    /// Waits for the first message matching `q` stored after its `after` point, as `audience`
    /// sees it.
    ///
    /// # Errors
    /// [`Error::WaitTimeout`] when none arrives in time; [`Error::NotReady`] when the server shuts down;
    /// [`Error::InvalidToken`] when a user's session ended meanwhile; store failures.
    pub async fn wait(&self, audience: Audience, q: WaitQuery) -> Result<Waited> {
        let deadline = tokio::time::Instant::now() + q.timeout;
        // Subscribe before anything else: what is stored from now on is announced to us.
        let mut rx = self.events().subscribe();
        let mut closing = self.events().closing();
        let after = match q.after {
            Some(a) => a,
            None => After::Position(self.inner.store.generate_id()?),
        };
        let mut look_in_store = true;
        loop {
            if look_in_store {
                look_in_store = false;
                let (aud, filter) = (audience.clone(), q.filter.clone());
                let hit = self
                    .offload(move |svc| svc.find(&aud, &filter, after))
                    .await?;
                if let Some(waited) = self.answer(&audience, hit).await? {
                    return Ok(waited);
                }
            }
            let event = tokio::select! {
                _ = closing.wait_for(|c| *c) => return Err(Error::NotReady),
                r = tokio::time::timeout_at(deadline, rx.recv()) => match r {
                    Err(_) => return Err(Error::WaitTimeout { waited: q.timeout }),
                    Ok(Ok(event)) => event,
                    // Events were dropped for us: the store has them all.
                    Ok(Err(RecvError::Lagged(_))) => {
                        look_in_store = true;
                        continue;
                    }
                    Ok(Err(RecvError::Closed)) => return Err(Error::NotReady),
                },
            };
            // A search may read the store (text, tags, flags): off the runtime, then.
            let hit = if q.filter.has_search() {
                let (aud, filter) = (audience.clone(), q.filter.clone());
                self.offload(move |svc| {
                    let look = StoreLookup(&svc.inner.store);
                    Ok(match_event(&aud, &filter, after, &event, &look))
                })
                .await?
            } else {
                match_event(&audience, &q.filter, after, &event, &NoLookup)
            };
            if let Some(waited) = self.answer(&audience, hit).await? {
                return Ok(waited);
            }
        }
    }

    /// The oldest message after `after` that matches, walking the store newest first down to
    /// `after`. Blocking.
    fn find(
        &self,
        audience: &Audience,
        filter: &MessageFilter,
        after: After,
    ) -> Result<Option<Hit>> {
        let mut oldest = None;
        self.walk_after(audience, filter, after, &mut |hit| {
            oldest = Some(hit);
            true
        })?;
        Ok(oldest)
    }

    /// Calls `on_hit` with every match after `after`, newest first, while it returns true.
    /// Reads records (and, for a search, what its terms need), and nothing older than
    /// `after`. Blocking.
    pub(super) fn walk_after(
        &self,
        audience: &Audience,
        filter: &MessageFilter,
        after: After,
        on_hit: &mut dyn FnMut(Hit) -> bool,
    ) -> Result<()> {
        let store = &self.inner.store;
        if let Audience::User {
            owner,
            mailbox: Some(mailbox),
            ..
        } = audience
        {
            for row in store.mailbox_newest_first(*owner, *mailbox, None) {
                let (e, m) = row?;
                if after.passed(&m, e.id) {
                    break;
                }
                if after.admits(&m, e.id)
                    && filter.matches(&m, Viewer::Owner(&e), &StoreLookup(store))
                    && !on_hit((m, Some(e)))
                {
                    break;
                }
            }
            return Ok(());
        }
        for m in store.messages_newest_first(None) {
            let m = m?;
            // A message's copies get their ids just after it, so once the walk is past the
            // point, so are the copies. (Copies of deliveries that interleave with this one
            // may be missed; only event replays walk here for a user.)
            if after.passed(&m, m.id) {
                break;
            }
            let entries = self.entries_of(audience, &m)?;
            for (position, entry) in audience.sees_all(&m, &entries) {
                if after.admits(&m, position)
                    && filter.matches(&m, viewer(entry), &StoreLookup(store))
                    && !on_hit((m.clone(), entry.cloned()))
                {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The copies of `m` an audience may see (none needed for the operator).
    fn entries_of(&self, audience: &Audience, m: &MessageRecord) -> Result<Vec<EntryRecord>> {
        if matches!(audience, Audience::Operator) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for id in &m.entries {
            if let Some(e) = self.inner.store.entry(*id)? {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Reads the content of a hit; `None` when it is gone meanwhile (the wait goes on).
    async fn answer(&self, audience: &Audience, hit: Option<Hit>) -> Result<Option<Waited>> {
        let Some((m, entry)) = hit else {
            return Ok(None);
        };
        let (found, position) = match audience {
            Audience::User { session, .. } => {
                let Some(e) = entry else {
                    return Ok(None);
                };
                // The session may have ended while we waited (logout, password change).
                if !self.session_valid(session).await? {
                    return Err(Error::InvalidToken);
                }
                match self.message(&session.user, e.id).await {
                    Ok(full) => (Found::User(full), e.id),
                    Err(Error::NotFound(_)) => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
            Audience::Operator => match self.admin_message(m.id).await {
                Ok(a) => (Found::Operator(a), m.id),
                Err(Error::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            },
        };
        Ok(Some(Waited {
            found,
            cursor: keys::encode_cursor(position),
        }))
    }
}

/// The hit an event brings, if it is a delivery this audience sees and wants.
fn match_event(
    audience: &Audience,
    filter: &MessageFilter,
    after: After,
    event: &MailEvent,
    look: &dyn Lookup,
) -> Option<Hit> {
    if event.kind != Change::Received {
        return None;
    }
    let m = &event.message;
    audience
        .sees_all(m, &event.entries)
        .into_iter()
        .find(|&(position, entry)| {
            after.admits(m, position) && filter.matches(m, viewer(entry), look)
        })
        .map(|(_, entry)| ((**m).clone(), entry.cloned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::events::CAPACITY;
    use crate::service::test_support::{deliver, service};

    #[tokio::test]
    async fn a_lagging_wait_reads_the_store_again_and_loses_no_match() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let waiting = tokio::spawn({
            let svc = svc.clone();
            async move {
                let filter = MessageFilter::new(None, None, Some("needle"), None);
                let q = wait_query(filter, None, Some("2m")).unwrap();
                svc.wait(Audience::Operator, q).await
            }
        });
        // Let it subscribe and look in the (empty) store, then go on without yielding to it:
        // the match is announced first, then more events than a subscriber can hold.
        while svc.events().listeners() == 0 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let needle = deliver(&svc, "needle");
        let mut junk = svc.inner.store.message(needle).unwrap().unwrap();
        junk.subject = "junk".into();
        for _ in 0..CAPACITY + 10 {
            svc.announce_received(&junk, &[]);
        }
        let waited = waiting.await.unwrap().unwrap();
        let Found::Operator(m) = waited.found else {
            panic!("an operator wait answers the operator view");
        };
        assert_eq!(m.message.id, needle);
        assert_eq!(waited.cursor, keys::encode_cursor(needle));
        assert_eq!(svc.events().listeners(), 0);
    }

    #[test]
    fn find_walks_back_only_to_the_point_and_takes_the_oldest_match() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let first = deliver(&svc, "match 1");
        let second = deliver(&svc, "match 2");
        deliver(&svc, "other");
        let filter = MessageFilter::new(None, None, Some("MATCH"), None);
        let find = |after| {
            svc.find(&Audience::Operator, &filter, after)
                .unwrap()
                .map(|(m, _)| m.id)
        };
        assert_eq!(find(After::Position(0)), Some(first));
        assert_eq!(find(After::Position(first)), Some(second));
        assert_eq!(find(After::Position(second)), None);
        assert_eq!(find(After::Time(Timestamp(0))), Some(first));
        let later = Timestamp::now().after(Duration::from_secs(60));
        assert_eq!(find(After::Time(later)), None);
    }

    #[test]
    fn timeouts_are_durations_or_seconds_up_to_five_minutes() {
        let q = |t: &str| wait_query(MessageFilter::default(), None, Some(t));
        assert_eq!(q("").unwrap().timeout, DEFAULT_WAIT);
        assert_eq!(q("2").unwrap().timeout, Duration::from_secs(2));
        assert_eq!(q("0").unwrap().timeout, Duration::ZERO);
        assert_eq!(q("1m 30s").unwrap().timeout, Duration::from_secs(90));
        assert_eq!(q("250ms").unwrap().timeout, Duration::from_millis(250));
        assert_eq!(q("5m").unwrap().timeout, MAX_WAIT);
        for bad in ["5m1s", "301", "soon", "-1", "1e3"] {
            let e = q(bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::Invalid {
                        code: "invalid_timeout",
                        ..
                    }
                ),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn after_is_a_cursor_or_a_time() {
        let a = |s: &str| wait_query(MessageFilter::default(), Some(s), None).map(|q| q.after);
        assert_eq!(a("").unwrap(), None);
        assert_eq!(
            a(&keys::encode_cursor(42)).unwrap(),
            Some(After::Position(42))
        );
        let t = Timestamp(1_795_000_000);
        assert_eq!(a("2026-11-18T11:06:40Z").unwrap(), Some(After::Time(t)));
        assert_eq!(a("2026-11-18T11:06:40.900Z").unwrap(), Some(After::Time(t)));
        assert_eq!(
            a("2026-11-18T13:06:40+02:00").unwrap(),
            Some(After::Time(t))
        );
        assert_eq!(
            a("2026-11-18T13:06:40 02:00").unwrap(),
            Some(After::Time(t))
        );
        assert_eq!(
            a("2026-11-18T10:06:40-01:00").unwrap(),
            Some(After::Time(t))
        );
        for bad in [
            "yesterday",
            "2026-11-18",
            "2026-11-18T11:06:40+25:00",
            "ü",
            "+00:00",
        ] {
            let e = a(bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::Invalid {
                        code: "invalid_after",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }
}
