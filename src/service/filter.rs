//! The filters of the test-harness API (`to`, `from`, `subject`, `q`), shared by the operator
//! listing, wait-for-message and their user counterparts, so that each means the same
//! everywhere.

use super::mime;
use super::search::{Lookup, Search};
use crate::store::Store;
use crate::store::mail::{EntryRecord, Mailbox, MessageRecord};

/// Who is looking: the operator sees the envelope (Bcc recipients included); a user sees only
/// what the headers of their copy show, plus the Bcc list of their own sent copy.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Viewer<'a> {
    Operator,
    Owner(&'a EntryRecord),
}

/// Which messages a query wants. Empty parameters mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    /// An address among the recipients, exactly, in any letter case.
    to: Option<String>,
    /// The sender's address (`From` header or envelope), exactly, in any letter case.
    from: Option<String>,
    /// A substring of the subject, in any letter case.
    subject: Option<String>,
    /// A query in the search grammar.
    search: Search,
}

/// Trims and lower-cases; an empty value is no filter.
fn norm(v: Option<&str>) -> Option<String> {
    v.map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty())
}

fn same_address(a: &str, want: &str) -> bool {
    a.trim().to_lowercase() == want
}

fn any_address(list: &[Mailbox], want: &str) -> bool {
    list.iter().any(|m| same_address(&m.address, want))
}

impl MessageFilter {
    /// A filter from raw query values; `containing` is a phrase taken literally (the search
    /// grammar's bare phrase, without the grammar).
    pub fn new(
        to: Option<&str>,
        from: Option<&str>,
        subject: Option<&str>,
        containing: Option<&str>,
    ) -> Self {
        MessageFilter {
            to: norm(to),
            from: norm(from),
            subject: norm(subject),
            search: containing.map(Search::phrase).unwrap_or_default(),
        }
    }

    /// The filter, and also `search`, instead of any `containing` phrase.
    pub fn with_search(mut self, search: Search) -> Self {
        self.search = search;
        self
    }

    /// Whether the filter has a search (which may read the store to match).
    pub fn has_search(&self) -> bool {
        !self.search.is_empty()
    }

    /// The whole match: the parameters on the record first, then the search, which asks
    /// `look` for what the record does not hold.
    pub(crate) fn matches(&self, m: &MessageRecord, viewer: Viewer<'_>, look: &dyn Lookup) -> bool {
        let bcc: &[String] = match viewer {
            Viewer::Owner(e) => e.bcc.as_deref().unwrap_or_default(),
            Viewer::Operator => &m.envelope_to,
        };
        if let Some(to) = &self.to {
            let hit = any_address(&m.to, to)
                || any_address(&m.cc, to)
                || bcc.iter().any(|a| same_address(a, to));
            if !hit {
                return false;
            }
        }
        if let Some(from) = &self.from
            && !same_address(&m.from.address, from)
            && !same_address(&m.envelope_from, from)
        {
            return false;
        }
        if let Some(s) = &self.subject
            && !m.subject.to_lowercase().contains(s.as_str())
        {
            return false;
        }
        self.search.matches(m, viewer, look)
    }
}

/// What the search asks of the store: the text from the source, the tags, the flags of
/// every copy. Blocking: use it on the blocking pool.
pub(crate) struct StoreLookup<'a>(pub &'a Store);

impl Lookup for StoreLookup<'_> {
    fn text(&self, id: u64) -> Option<String> {
        let raw = self.0.raw(id).ok().flatten()?;
        mime::readable_text(&raw)
    }

    fn tags(&self, id: u64) -> Vec<String> {
        self.0.message_tags(id).unwrap_or_default()
    }

    fn operator_flags(&self, m: &MessageRecord) -> (bool, bool) {
        let (mut read, mut starred) = (false, false);
        for id in &m.entries {
            if let Ok(Some(e)) = self.0.entry(*id) {
                read |= e.read;
                starred |= e.starred;
            }
        }
        (read, starred)
    }
}

/// Which read flag the operator's `is:read` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OperatorRead {
    /// Any user has read a copy (the native operator view, which keeps no flag of its own).
    #[default]
    AnyCopy,
    /// The operator's own read flag (Mailpit's `Read`), kept apart from the users' flags.
    Own,
}

/// [`StoreLookup`] with the operator's own read flag in place of the copies' flags.
pub(crate) struct OwnReadLookup<'a>(pub &'a Store);

impl Lookup for OwnReadLookup<'_> {
    fn text(&self, id: u64) -> Option<String> {
        StoreLookup(self.0).text(id)
    }

    fn tags(&self, id: u64) -> Vec<String> {
        StoreLookup(self.0).tags(id)
    }

    fn operator_flags(&self, m: &MessageRecord) -> (bool, bool) {
        let (_, starred) = StoreLookup(self.0).operator_flags(m);
        (self.0.operator_read(m.id).unwrap_or(false), starred)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::search::NoLookup;
    use crate::time::Timestamp;

    fn record() -> MessageRecord {
        let mb = |name: Option<&str>, address: &str| Mailbox {
            name: name.map(str::to_owned),
            address: address.to_owned(),
        };
        MessageRecord {
            id: 7,
            received_at: Timestamp(0),
            size: 10,
            envelope_from: "bounce@shop.example.test".into(),
            envelope_to: vec!["Bob@Example.test".into(), "secret@example.test".into()],
            from: mb(Some("Shop"), "noreply@shop.example.test"),
            to: vec![mb(Some("Bob"), "bob@example.test")],
            cc: vec![mb(None, "carol@example.test")],
            reply_to: vec![],
            subject: "Your Order Ünïcode".into(),
            snippet: "Thanks for shopping".into(),
            message_id: None,
            has_attachments: false,
            entries: vec![8, 9],
        }
    }

    fn entry(bcc: Option<Vec<String>>) -> EntryRecord {
        EntryRecord {
            id: 8,
            message: 7,
            owner: 1,
            mailbox: 1,
            read: false,
            starred: false,
            bcc,
        }
    }

    #[test]
    fn empty_filter_matches_everything() {
        let f = MessageFilter::new(Some(""), Some("  "), None, Some(""));
        assert_eq!(f, MessageFilter::default());
        assert!(f.matches(&record(), Viewer::Operator, &NoLookup));
    }

    #[test]
    fn addresses_match_exactly_in_any_case() {
        let m = record();
        let e = entry(None);
        for (to, want) in [
            ("BOB@example.test", true),
            ("carol@EXAMPLE.test", true),
            ("bob@example", false),
            ("ob@example.test", false),
        ] {
            let f = MessageFilter::new(Some(to), None, None, None);
            assert_eq!(f.matches(&m, Viewer::Operator, &NoLookup), want, "{to}");
        }
        let f = MessageFilter::new(None, Some("BOUNCE@shop.example.test"), None, None);
        assert!(
            f.matches(&m, Viewer::Owner(&e), &NoLookup),
            "envelope sender"
        );
        let f = MessageFilter::new(None, Some("noreply@shop.example.test "), None, None);
        assert!(f.matches(&m, Viewer::Owner(&e), &NoLookup), "header sender");
    }

    #[test]
    fn only_the_operator_and_the_sender_see_bcc_recipients() {
        let m = record();
        let f = MessageFilter::new(Some("secret@example.test"), None, None, None);
        assert!(f.matches(&m, Viewer::Operator, &NoLookup));
        assert!(!f.matches(&m, Viewer::Owner(&entry(None)), &NoLookup));
        let sent = entry(Some(vec!["secret@example.test".into()]));
        assert!(f.matches(&m, Viewer::Owner(&sent), &NoLookup));
        let q = MessageFilter::new(None, None, None, Some("secret"));
        assert!(!q.matches(&m, Viewer::Owner(&entry(None)), &NoLookup));
        assert!(q.matches(&m, Viewer::Operator, &NoLookup));
    }

    #[test]
    fn subject_and_q_are_case_insensitive_substrings() {
        let m = record();
        let e = entry(None);
        let f = MessageFilter::new(None, None, Some("order ÜNÏ"), None);
        assert!(f.matches(&m, Viewer::Owner(&e), &NoLookup));
        let f = MessageFilter::new(None, None, Some("invoice"), None);
        assert!(!f.matches(&m, Viewer::Owner(&e), &NoLookup));
        for q in ["SHOP", "carol@", "for shopping", "order"] {
            let f = MessageFilter::new(None, None, None, Some(q));
            assert!(f.matches(&m, Viewer::Owner(&e), &NoLookup), "{q}");
        }
        struct Body(&'static str);
        impl Lookup for Body {
            fn text(&self, _: u64) -> Option<String> {
                Some(self.0.into())
            }
            fn tags(&self, _: u64) -> Vec<String> {
                vec![]
            }
            fn operator_flags(&self, _: &MessageRecord) -> (bool, bool) {
                (false, false)
            }
        }
        let f = MessageFilter::new(None, None, None, Some("tracking NUMBER"));
        assert!(
            !f.matches(&m, Viewer::Owner(&e), &NoLookup),
            "needs the body"
        );
        let body = Body("Your tracking number is 1Z999.");
        assert!(f.matches(&m, Viewer::Owner(&e), &body));
        assert!(!f.matches(&m, Viewer::Owner(&e), &Body("nothing")));
    }
}
