//! The filters of the test-harness API (`to`, `from`, `subject`, `q`), shared by the operator
//! listing, wait-for-message and their user counterparts, so that each means the same
//! everywhere.

use super::mime;
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
    /// A substring of the subject, an address or name, or the text, in any letter case.
    q: Option<String>,
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
    /// A filter from raw query values.
    pub fn new(
        to: Option<&str>,
        from: Option<&str>,
        subject: Option<&str>,
        q: Option<&str>,
    ) -> Self {
        MessageFilter {
            to: norm(to),
            from: norm(from),
            subject: norm(subject),
            q: norm(q),
        }
    }

    /// Whether matching needs the message body (`q` that the record alone does not satisfy).
    pub fn has_text_query(&self) -> bool {
        self.q.is_some()
    }

    /// Matches what the stored record holds: `to`, `from`, `subject`, and `q` over the subject,
    /// the addresses and names and the snippet. `None` when only the body can tell (`q` not
    /// found in the record): call [`MessageFilter::matches_text`] then.
    pub(crate) fn matches_record(&self, m: &MessageRecord, viewer: Viewer<'_>) -> Option<bool> {
        let bcc: &[String] = match viewer {
            Viewer::Owner(e) => e.bcc.as_deref().unwrap_or_default(),
            Viewer::Operator => &m.envelope_to,
        };
        if let Some(to) = &self.to {
            let hit = any_address(&m.to, to)
                || any_address(&m.cc, to)
                || bcc.iter().any(|a| same_address(a, to));
            if !hit {
                return Some(false);
            }
        }
        if let Some(from) = &self.from
            && !same_address(&m.from.address, from)
            && !same_address(&m.envelope_from, from)
        {
            return Some(false);
        }
        if let Some(s) = &self.subject
            && !m.subject.to_lowercase().contains(s.as_str())
        {
            return Some(false);
        }
        let Some(q) = &self.q else {
            return Some(true);
        };
        let people = std::iter::once(&m.from)
            .chain(&m.to)
            .chain(&m.cc)
            .chain(&m.reply_to)
            .flat_map(|p| [p.name.as_deref().unwrap_or_default(), p.address.as_str()]);
        let found = people
            .chain(bcc.iter().map(String::as_str))
            .chain([m.subject.as_str(), m.snippet.as_str()])
            .any(|s| s.to_lowercase().contains(q.as_str()));
        found.then_some(true)
    }

    /// Matches `q` over the text of the message source (the HTML as text when there is no
    /// text part).
    pub fn matches_text(&self, raw: &[u8]) -> bool {
        let Some(q) = &self.q else { return true };
        mime::readable_text(raw).is_some_and(|t| t.to_lowercase().contains(q.as_str()))
    }

    /// The whole match: the record first, the source (read only if needed) second.
    pub(crate) fn matches(
        &self,
        m: &MessageRecord,
        viewer: Viewer<'_>,
        raw: impl FnOnce() -> Option<Vec<u8>>,
    ) -> bool {
        match self.matches_record(m, viewer) {
            Some(hit) => hit,
            None => raw().is_some_and(|r| self.matches_text(&r)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert!(f.matches(&record(), Viewer::Operator, || None));
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
            assert_eq!(f.matches(&m, Viewer::Operator, || None), want, "{to}");
        }
        let f = MessageFilter::new(None, Some("BOUNCE@shop.example.test"), None, None);
        assert!(f.matches(&m, Viewer::Owner(&e), || None), "envelope sender");
        let f = MessageFilter::new(None, Some("noreply@shop.example.test "), None, None);
        assert!(f.matches(&m, Viewer::Owner(&e), || None), "header sender");
    }

    #[test]
    fn only_the_operator_and_the_sender_see_bcc_recipients() {
        let m = record();
        let f = MessageFilter::new(Some("secret@example.test"), None, None, None);
        assert!(f.matches(&m, Viewer::Operator, || None));
        assert!(!f.matches(&m, Viewer::Owner(&entry(None)), || None));
        let sent = entry(Some(vec!["secret@example.test".into()]));
        assert!(f.matches(&m, Viewer::Owner(&sent), || None));
        let q = MessageFilter::new(None, None, None, Some("secret"));
        assert!(!q.matches(&m, Viewer::Owner(&entry(None)), || None));
        assert!(q.matches(&m, Viewer::Operator, || None));
    }

    #[test]
    fn subject_and_q_are_case_insensitive_substrings() {
        let m = record();
        let e = entry(None);
        let f = MessageFilter::new(None, None, Some("order ÜNÏ"), None);
        assert!(f.matches(&m, Viewer::Owner(&e), || None));
        let f = MessageFilter::new(None, None, Some("invoice"), None);
        assert!(!f.matches(&m, Viewer::Owner(&e), || None));
        for q in ["SHOP", "carol@", "for shopping", "order"] {
            let f = MessageFilter::new(None, None, None, Some(q));
            assert_eq!(f.matches_record(&m, Viewer::Owner(&e)), Some(true), "{q}");
        }
        let f = MessageFilter::new(None, None, None, Some("tracking NUMBER"));
        assert_eq!(
            f.matches_record(&m, Viewer::Owner(&e)),
            None,
            "needs the body"
        );
        let body = b"Subject: x\r\n\r\nYour tracking number is 1Z999.\r\n".to_vec();
        assert!(f.matches(&m, Viewer::Owner(&e), || Some(body)));
        assert!(!f.matches(&m, Viewer::Owner(&e), || Some(b"\r\n\r\nnothing".to_vec())));
        assert!(!f.matches(&m, Viewer::Owner(&e), || None), "no source");
    }
}
