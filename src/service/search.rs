//! The search grammar (Mailpit's): one parser and one matcher, used by every listing and wait
//! that takes a query, whatever the front-end.
//!
//! A query is terms separated by white space, all of which must match: bare words and
//! `"quoted phrases"` (anywhere in the sender, recipients, subject or text), `key:value` terms
//! (`from:`, `to:`, `cc:`, `bcc:`, `reply-to:`, `addressed:`, `subject:`, `message-id:`,
//! `tag:`, `is:read|unread|starred|tagged`, `has:attachment`, `larger:`, `smaller:`,
//! `before:`, `after:`), each negated by a leading `-` or `!`. Values may be quoted. Text is
//! compared after [`fold`]ing both sides, so case never matters, in any script.
//!
//! Matching reads the message record first; what the record does not hold (tags, the flags
//! of other copies, the text) is asked of a [`Lookup`] only when a term needs it, and the text
//! only when no cheaper term has already ruled the message out.

use std::cell::OnceCell;

use super::filter::Viewer;
use crate::error::Error;
use crate::store::mail::{Mailbox, MessageRecord};
use crate::time::Timestamp;

/// A parsed query; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    terms: Vec<Term>,
}

/// One term: what it tests, and whether it is negated.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    negated: bool,
    test: Test,
}

/// What a term tests. Strings are folded.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    /// Anywhere in the sender, recipients, subject or text.
    Text(String),
    From(String),
    To(String),
    Cc(String),
    Bcc(String),
    ReplyTo(String),
    Addressed(String),
    Subject(String),
    MessageId(String),
    Tag(String),
    Read,
    Starred,
    Tagged,
    Attachment,
    Larger(u64),
    Smaller(u64),
    Before(Timestamp),
    After(Timestamp),
}

impl Test {
    /// Whether the test needs the message's text (decoded from its source).
    fn needs_text(&self) -> bool {
        matches!(self, Test::Text(_))
    }
}

/// What matching may need beyond the message record, read only when a term asks.
pub(crate) trait Lookup {
    /// The readable text of a message (the HTML as text when it has no text part).
    fn text(&self, id: u64) -> Option<String>;
    /// The tags of a message.
    fn tags(&self, id: u64) -> Vec<String>;
    /// The operator's `is:read` and `is:starred`: whether any copy of the message is read (or,
    /// where the operator keeps a read flag of their own, whether that is set), and whether
    /// any copy is starred.
    fn operator_flags(&self, m: &MessageRecord) -> (bool, bool);
}

/// A lookup that knows nothing: no text, no tags, no flags.
pub(crate) struct NoLookup;

impl Lookup for NoLookup {
    fn text(&self, _: u64) -> Option<String> {
        None
    }
    fn tags(&self, _: u64) -> Vec<String> {
        Vec::new()
    }
    fn operator_flags(&self, _: &MessageRecord) -> (bool, bool) {
        (false, false)
    }
}

/// Lower-cases for comparison in any script, as full case folding would for the letters
/// where lower-casing alone falls short: `ß` and `ẞ` become `ss`, a final sigma `ς` becomes
/// `σ`, so `STRASSE` finds `Straße` and `ΟΔΟΣ` finds `οδος`.
pub fn fold(s: &str) -> String {
    let lower = s.to_lowercase();
    if lower.contains(['ß', 'ς']) {
        lower.replace('ß', "ss").replace('ς', "σ")
    } else {
        lower
    }
}

/// Multiplier of a size suffix: 1024-based, as Mailpit's.
fn size_unit(suffix: &str) -> Option<u64> {
    Some(match suffix.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" => 1 << 10,
        "M" | "MB" => 1 << 20,
        "G" | "GB" => 1 << 30,
        _ => return None,
    })
}

/// A size: a number (a fraction allowed) with an optional `K`, `M` or `G` (`10K`, `1.5M`).
fn parse_size(v: &str) -> Option<u64> {
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (number, suffix) = v.split_at(split);
    let unit = size_unit(suffix)?;
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    let n: f64 = number.parse().ok()?;
    let bytes = n * unit as f64;
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// The time zone whose midnights bare dates (`before:2026-11-24`) mean.
#[derive(Debug, Clone)]
pub struct Zone(jiff::tz::TimeZone);

impl Zone {
    /// UTC, the zone of a query that names none.
    pub fn utc() -> Zone {
        Zone(jiff::tz::TimeZone::UTC)
    }

    /// A fixed offset, `seconds` east of UTC (within ±25 hours).
    pub fn offset(seconds: i32) -> Option<Zone> {
        let offset = jiff::tz::Offset::from_seconds(seconds).ok()?;
        Some(Zone(jiff::tz::TimeZone::fixed(offset)))
    }

    /// A zone as a client names it: `UTC`, `Z`, an offset (`+02:00`, `-0530`, `+1`) or an
    /// IANA name (`Europe/Berlin`, from the zone rules built into the binary).
    pub fn parse(name: &str) -> Option<Zone> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("utc") || name.eq_ignore_ascii_case("z") {
            return Some(Zone::utc());
        }
        if let Some(seconds) = offset_seconds(name) {
            return Zone::offset(seconds);
        }
        jiff::tz::TimeZone::get(name).ok().map(Zone)
    }

    /// The first second of `date` (`2026-11-24`) here: midnight, or the first time the day
    /// has where a clock change skips midnight.
    fn day_start(&self, date: &str) -> Option<Timestamp> {
        let date: jiff::civil::Date = date.parse().ok()?;
        let start = date.to_zoned_datetime(self.0.clone()).ok()?;
        u64::try_from(start.timestamp().as_second())
            .ok()
            .map(Timestamp)
    }
}

/// Seconds east of UTC of `+HH:MM`, `-HHMM` or `+HH`.
fn offset_seconds(tz: &str) -> Option<i32> {
    let (sign, rest) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        4 => (digits[..2].parse().ok()?, digits[2..].parse().ok()?),
        _ => return None,
    };
    (h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

/// A date (`2026-11-24`: the start of that day in `zone`) or an RFC 3339 time.
fn parse_date(v: &str, zone: &Zone) -> Option<Timestamp> {
    if v.len() == 10 {
        return zone.day_start(v);
    }
    super::watch::parse_time(v)
}

/// A malformed term.
fn bad(term: &str, why: impl std::fmt::Display, field: &str) -> Error {
    Error::invalid(
        "invalid_search",
        field,
        format!("search term `{term}`: {why}"),
    )
}

/// The keys a term may have.
const KEYS: &str = "from, to, cc, bcc, reply-to, addressed, subject, message-id, tag, is, has, \
                    larger, smaller, before, after";

impl Search {
    /// A query of one phrase, taken literally (no grammar): the plain `containing` of the
    /// test harness.
    pub fn phrase(text: &str) -> Search {
        let text = fold(text.trim());
        if text.is_empty() {
            return Search::default();
        }
        Search {
            terms: vec![Term {
                negated: false,
                test: Test::Text(text),
            }],
        }
    }

    /// A query of one `from:` term whose value is taken literally (no grammar): MailHog's
    /// `kind=from` search.
    pub fn from_literal(text: &str) -> Search {
        Search::one(text, Test::From)
    }

    /// A query of one `to:` term whose value is taken literally: MailHog's `kind=to` search.
    pub fn to_literal(text: &str) -> Search {
        Search::one(text, Test::To)
    }

    fn one(text: &str, test: fn(String) -> Test) -> Search {
        let text = fold(text.trim());
        if text.is_empty() {
            return Search::default();
        }
        Search {
            terms: vec![Term {
                negated: false,
                test: test(text),
            }],
        }
    }

    /// Parses a query; `field` names the parameter it came in, for the error.
    ///
    /// # Errors
    /// `invalid_search` ([`Error::Invalid`]) naming the term at fault: an unknown `key:`, an
    /// empty value, a bad size or date, an unknown `is:` or `has:` value, an unbalanced quote,
    /// or a `-` or `!` with nothing to negate.
    pub fn parse(q: &str, field: &str) -> Result<Search, Error> {
        Self::parse_at(q, field, &Zone::utc())
    }

    /// [`Search::parse`], with the days of `before:` and `after:` dates beginning at midnight
    /// in `zone` instead of at midnight UTC (for an API that takes the client's time zone, as
    /// Mailpit's `tz`).
    ///
    /// # Errors
    /// As [`Search::parse`].
    pub fn parse_at(q: &str, field: &str, zone: &Zone) -> Result<Search, Error> {
        let mut terms = Vec::new();
        let mut rest = q;
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                break;
            }
            let start = rest;
            let negated = match rest.strip_prefix(['-', '!']) {
                Some(r) => {
                    rest = r;
                    true
                }
                None => false,
            };
            // A word runs to white space; a quote at its start (or its value's) runs to the
            // closing quote, spaces and all.
            let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let word = &rest[..word_end];
            let (key, body) = match word.split_once(':') {
                Some((k, _)) if !k.is_empty() && !k.starts_with('"') => {
                    (Some(k), &rest[k.len() + 1..])
                }
                _ => (None, rest),
            };
            let (value, quoted, after) = if let Some(r) = body.strip_prefix('"') {
                match r.find('"') {
                    Some(end) => (&r[..end], true, &r[end + 1..]),
                    None => return Err(bad(word, "unbalanced quote", field)),
                }
            } else {
                let end = body.find(char::is_whitespace).unwrap_or(body.len());
                (&body[..end], false, &body[end..])
            };
            let term = &start[..start.len() - after.len()];
            rest = after;
            if !quoted && value.contains('"') {
                return Err(bad(term, "unbalanced quote", field));
            }
            if key.is_none() && !quoted && value.is_empty() {
                return Err(bad(term, "nothing to negate", field));
            }
            let (test, flip) = Self::test(term, key, value, field, zone)?;
            let negated = negated != flip;
            terms.push(Term { negated, test });
        }
        Ok(Search { terms })
    }

    /// The test of one term.
    /// The test of one term, and whether it is the negation of that test (`is:unread` is
    /// `-is:read`).
    fn test(
        term: &str,
        key: Option<&str>,
        value: &str,
        field: &str,
        zone: &Zone,
    ) -> Result<(Test, bool), Error> {
        let Some(key) = key else {
            if value.trim().is_empty() {
                return Err(bad(term, "an empty phrase", field));
            }
            return Ok((Test::Text(fold(value)), false));
        };
        let key_l = key.to_ascii_lowercase();
        if value.trim().is_empty() {
            return Err(bad(term, format!("`{key}:` needs a value"), field));
        }
        let text = || fold(value.trim());
        if key_l == "is" && value.eq_ignore_ascii_case("unread") {
            return Ok((Test::Read, true));
        }
        let test = match key_l.as_str() {
            "from" => Test::From(text()),
            "to" => Test::To(text()),
            "cc" => Test::Cc(text()),
            "bcc" => Test::Bcc(text()),
            "reply-to" => Test::ReplyTo(text()),
            "addressed" => Test::Addressed(text()),
            "subject" => Test::Subject(text()),
            "message-id" => Test::MessageId(fold(value.trim().trim_matches(['<', '>']))),
            "tag" => Test::Tag(text()),
            "is" => match value.to_ascii_lowercase().as_str() {
                "read" => Test::Read,
                "starred" => Test::Starred,
                "tagged" => Test::Tagged,
                _ => {
                    return Err(bad(
                        term,
                        "`is:` takes read, unread, starred or tagged",
                        field,
                    ));
                }
            },
            "has" => match value.to_ascii_lowercase().as_str() {
                "attachment" | "attachments" => Test::Attachment,
                _ => return Err(bad(term, "`has:` takes attachment", field)),
            },
            "larger" | "smaller" => {
                let n = parse_size(value)
                    .ok_or_else(|| bad(term, "not a size such as 500, 10K, 1.5M or 1G", field))?;
                if key_l == "larger" {
                    Test::Larger(n)
                } else {
                    Test::Smaller(n)
                }
            }
            "before" | "after" => {
                let t = parse_date(value, zone).ok_or_else(|| {
                    bad(
                        term,
                        "not a date such as 2026-11-24 or an RFC 3339 time such as \
                         2026-11-24T17:10:37Z",
                        field,
                    )
                })?;
                if key_l == "before" {
                    Test::Before(t)
                } else {
                    Test::After(t)
                }
            }
            _ => {
                return Err(bad(
                    term,
                    format!("unknown key `{key}:`; keys are {KEYS}"),
                    field,
                ));
            }
        };
        Ok((test, false))
    }

    /// Whether the query has no terms (matches everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether matching may read the message text.
    pub fn needs_text(&self) -> bool {
        self.terms.iter().any(|t| t.test.needs_text())
    }

    /// Whether `m`, as `viewer` sees it, matches every term.
    pub(crate) fn matches(&self, m: &MessageRecord, viewer: Viewer<'_>, look: &dyn Lookup) -> bool {
        let cx = Context {
            m,
            viewer,
            look,
            tags: OnceCell::new(),
            flags: OnceCell::new(),
            record_text: OnceCell::new(),
            text: OnceCell::new(),
        };
        // Cheap terms first: the text is read only for messages they all let through.
        self.terms
            .iter()
            .filter(|t| !t.test.needs_text())
            .chain(self.terms.iter().filter(|t| t.test.needs_text()))
            .all(|t| cx.test(&t.test) != t.negated)
    }
}

/// One message being matched, with what was read for it so far.
struct Context<'a> {
    m: &'a MessageRecord,
    viewer: Viewer<'a>,
    look: &'a dyn Lookup,
    tags: OnceCell<Vec<String>>,
    flags: OnceCell<(bool, bool)>,
    /// The sender, recipients and subject, folded, one per line.
    record_text: OnceCell<String>,
    text: OnceCell<Option<String>>,
}

fn in_people(list: &[Mailbox], want: &str) -> bool {
    list.iter().any(|p| in_person(p, want))
}

fn in_person(p: &Mailbox, want: &str) -> bool {
    fold(&p.address).contains(want) || p.name.as_deref().is_some_and(|n| fold(n).contains(want))
}

impl Context<'_> {
    /// Blind-copy recipients this viewer may see: the operator, the envelope recipients not
    /// in `To` or `Cc`; a user, the Bcc list of their own sent copy.
    fn bcc(&self) -> Vec<&str> {
        match self.viewer {
            Viewer::Owner(e) => e.bcc.iter().flatten().map(String::as_str).collect(),
            Viewer::Operator => {
                let shown = |a: &str| {
                    self.m
                        .to
                        .iter()
                        .chain(&self.m.cc)
                        .any(|p| p.address.eq_ignore_ascii_case(a))
                };
                self.m
                    .envelope_to
                    .iter()
                    .map(String::as_str)
                    .filter(|a| !shown(a))
                    .collect()
            }
        }
    }

    fn flags(&self) -> (bool, bool) {
        *self.flags.get_or_init(|| match self.viewer {
            Viewer::Owner(e) => (e.read, e.starred),
            Viewer::Operator => self.look.operator_flags(self.m),
        })
    }

    fn tags(&self) -> &[String] {
        self.tags.get_or_init(|| self.look.tags(self.m.id))
    }

    fn record_text(&self) -> &str {
        self.record_text.get_or_init(|| {
            let m = self.m;
            let mut s = String::new();
            for p in std::iter::once(&m.from)
                .chain(&m.to)
                .chain(&m.cc)
                .chain(&m.reply_to)
            {
                s.push_str(&fold(&p.address));
                s.push('\n');
                if let Some(n) = &p.name {
                    s.push_str(&fold(n));
                    s.push('\n');
                }
            }
            for a in self.bcc() {
                s.push_str(&fold(a));
                s.push('\n');
            }
            s.push_str(&fold(&m.subject));
            s.push('\n');
            s.push_str(&fold(&m.snippet));
            s
        })
    }

    fn text(&self) -> Option<&str> {
        self.text
            .get_or_init(|| self.look.text(self.m.id).map(|t| fold(&t)))
            .as_deref()
    }

    fn test(&self, test: &Test) -> bool {
        let m = self.m;
        match test {
            Test::Text(want) => {
                self.record_text().contains(want.as_str())
                    || self.text().is_some_and(|t| t.contains(want.as_str()))
            }
            Test::From(want) => {
                in_person(&m.from, want) || fold(&m.envelope_from).contains(want.as_str())
            }
            Test::To(want) => in_people(&m.to, want),
            Test::Cc(want) => in_people(&m.cc, want),
            Test::Bcc(want) => self.bcc().iter().any(|a| fold(a).contains(want.as_str())),
            Test::ReplyTo(want) => in_people(&m.reply_to, want),
            Test::Addressed(want) => {
                in_people(&m.to, want)
                    || in_people(&m.cc, want)
                    || self.bcc().iter().any(|a| fold(a).contains(want.as_str()))
            }
            Test::Subject(want) => fold(&m.subject).contains(want.as_str()),
            Test::MessageId(want) => m
                .message_id
                .as_deref()
                .is_some_and(|id| fold(id).contains(want.as_str())),
            Test::Tag(want) => self.tags().iter().any(|t| fold(t) == *want),
            Test::Read => self.flags().0,
            Test::Starred => self.flags().1,
            Test::Tagged => !self.tags().is_empty(),
            Test::Attachment => m.has_attachments,
            Test::Larger(n) => m.size > *n,
            Test::Smaller(n) => m.size < *n,
            Test::Before(t) => m.received_at < *t,
            Test::After(t) => m.received_at >= *t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::mail::EntryRecord;

    fn mb(name: Option<&str>, address: &str) -> Mailbox {
        Mailbox {
            name: name.map(str::to_owned),
            address: address.to_owned(),
        }
    }

    fn record() -> MessageRecord {
        MessageRecord {
            id: 7,
            received_at: Timestamp(1_764_547_200), // 2025-12-01T00:00:00Z
            size: 20 * 1024,
            envelope_from: "bounce@shop.example.test".into(),
            envelope_to: vec!["bob@example.test".into(), "hidden@example.test".into()],
            from: mb(Some("Büro Straße"), "noreply@shop.example.test"),
            to: vec![mb(Some("Bob"), "bob@example.test")],
            cc: vec![mb(None, "carol@example.test")],
            reply_to: vec![mb(None, "help@shop.example.test")],
            subject: "ÉCOLE: your order ΟΔΟΣ".into(),
            snippet: "Thanks for shopping".into(),
            message_id: Some("abc.123@shop.example.test".into()),
            has_attachments: true,
            entries: vec![8],
        }
    }

    fn entry(read: bool, starred: bool) -> EntryRecord {
        EntryRecord {
            id: 8,
            message: 7,
            owner: 1,
            mailbox: 1,
            read,
            starred,
            bcc: None,
        }
    }

    /// A lookup with a body, tags, and copies read and starred as given.
    struct Facts {
        text: Option<&'static str>,
        tags: Vec<String>,
        flags: (bool, bool),
    }

    impl Lookup for Facts {
        fn text(&self, _: u64) -> Option<String> {
            self.text.map(str::to_owned)
        }
        fn tags(&self, _: u64) -> Vec<String> {
            self.tags.clone()
        }
        fn operator_flags(&self, _: &MessageRecord) -> (bool, bool) {
            self.flags
        }
    }

    fn facts() -> Facts {
        Facts {
            text: Some("Your tracking number is 1Z999."),
            tags: vec!["Urgent".into(), "Été".into()],
            flags: (true, false),
        }
    }

    /// Whether `q` matches the operator's view of [`record`].
    fn op(q: &str) -> bool {
        Search::parse(q, "q")
            .unwrap()
            .matches(&record(), Viewer::Operator, &facts())
    }

    #[test]
    fn bare_words_and_phrases_look_everywhere() {
        for q in [
            "order",
            "\"your order\"",
            "noreply@shop",
            "bob",
            "carol",
            "shopping",
            "tracking",
            "\"TRACKING number\"",
        ] {
            assert!(op(q), "{q}");
        }
        assert!(!op("invoice"));
        assert!(!op("\"order your\""));
        assert!(op("order tracking"), "all terms");
        assert!(!op("order invoice"), "all terms must match");
    }

    #[test]
    fn each_key_tests_its_field() {
        let yes = [
            "from:noreply",
            "from:bounce@shop",
            "from:\"büro straße\"",
            "to:bob",
            "cc:carol",
            "bcc:hidden",
            "reply-to:help@",
            "addressed:bob",
            "addressed:carol",
            "addressed:hidden",
            "subject:order",
            "subject:\"your order\"",
            "message-id:abc.123",
            "message-id:<abc.123@shop.example.test>",
            "tag:urgent",
            "tag:ÉTÉ",
            "is:read",
            "is:tagged",
            "has:attachment",
            "larger:10K",
            "smaller:1M",
            "larger:20479",
            "smaller:20481",
            "before:2025-12-02",
            "after:2025-12-01",
            "after:2025-11-30T23:00:00Z",
            "before:2025-12-01T01:00:00+00:30",
        ];
        for q in yes {
            assert!(op(q), "{q}");
        }
        let no = [
            "from:carol",
            "to:carol",
            "cc:bob",
            "bcc:bob",
            "reply-to:noreply",
            "addressed:noreply",
            "subject:tracking",
            "message-id:zzz",
            "tag:urg",
            "tag:other",
            "is:unread",
            "is:starred",
            "larger:20K",
            "smaller:20K",
            "larger:1G",
            "before:2025-12-01",
            "after:2025-12-02",
        ];
        for q in no {
            assert!(!op(q), "{q}");
        }
    }

    #[test]
    fn minus_and_bang_negate_any_term() {
        for q in [
            "-invoice",
            "!invoice",
            "-tag:other",
            "!is:starred",
            "-is:unread",
        ] {
            assert!(op(q), "{q}");
        }
        for q in [
            "-order",
            "!\"your order\"",
            "-from:shop",
            "!has:attachment",
            "-is:read",
        ] {
            assert!(!op(q), "{q}");
        }
        assert!(op("order -invoice !tag:other"));
    }

    #[test]
    fn a_user_sees_their_own_flags_and_no_blind_copies() {
        let m = record();
        let s = |q: &str| Search::parse(q, "q").unwrap();
        let unread = entry(false, true);
        assert!(s("is:unread is:starred").matches(&m, Viewer::Owner(&unread), &facts()));
        assert!(!s("is:read").matches(&m, Viewer::Owner(&unread), &facts()));
        assert!(!s("bcc:hidden").matches(&m, Viewer::Owner(&unread), &facts()));
        assert!(!s("hidden").matches(&m, Viewer::Owner(&unread), &facts()));
        assert!(s("hidden").matches(&m, Viewer::Operator, &facts()));
        let mut sent = entry(true, false);
        sent.bcc = Some(vec!["hidden@example.test".into()]);
        assert!(s("bcc:hidden addressed:hidden").matches(&m, Viewer::Owner(&sent), &facts()));
    }

    #[test]
    fn case_never_matters_in_any_script() {
        for q in [
            "école",
            "ÉCOLE",
            "οδος",
            "ΟΔΟΣ",
            "subject:οδοσ",
            "from:STRASSE",
            "from:straße",
            "BÜRO",
            "FROM:noreply",
            "Subject:ORDER",
            "IS:READ",
            "has:ATTACHMENT",
        ] {
            assert!(op(q), "{q}");
        }
        assert_eq!(fold("ЖУРНАЛ"), "журнал");
        assert_eq!(fold("Straße"), fold("STRASSE"));
    }

    #[test]
    fn the_text_is_read_only_when_cheaper_terms_pass() {
        struct Counting(std::cell::Cell<u32>);
        impl Lookup for Counting {
            fn text(&self, _: u64) -> Option<String> {
                self.0.set(self.0.get() + 1);
                Some(String::new())
            }
            fn tags(&self, _: u64) -> Vec<String> {
                vec![]
            }
            fn operator_flags(&self, _: &MessageRecord) -> (bool, bool) {
                (false, false)
            }
        }
        let look = Counting(std::cell::Cell::new(0));
        let s = Search::parse("nowhere-to-be-found from:carol", "q").unwrap();
        assert!(!s.matches(&record(), Viewer::Operator, &look));
        assert_eq!(look.0.get(), 0);
        let s = Search::parse("nowhere another", "q").unwrap();
        assert!(!s.matches(&record(), Viewer::Operator, &look));
        assert_eq!(look.0.get(), 1, "read once for every term");
    }

    #[test]
    fn an_empty_query_matches_everything() {
        for q in ["", "   ", "\t"] {
            let s = Search::parse(q, "q").unwrap();
            assert!(s.is_empty());
            assert!(s.matches(&record(), Viewer::Operator, &NoLookup));
        }
    }

    #[test]
    fn sizes_and_dates() {
        assert_eq!(parse_size("500"), Some(500));
        assert_eq!(parse_size("10K"), Some(10 * 1024));
        assert_eq!(parse_size("10kb"), Some(10 * 1024));
        assert_eq!(parse_size("1.5M"), Some(1024 * 1024 * 3 / 2));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        for bad in ["", "K", "10X", "1.", ".5K", "1..5", "-1", "1e3"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        let utc = Zone::utc();
        let east = Zone::offset(3600).unwrap();
        assert_eq!(
            parse_date("2025-12-01", &utc),
            Some(Timestamp(1_764_547_200))
        );
        assert_eq!(
            parse_date("2025-12-01", &east),
            Some(Timestamp(1_764_547_200 - 3600)),
            "midnight an hour east of UTC"
        );
        assert_eq!(
            parse_date("2025-12-01T02:00:00+02:00", &east),
            Some(Timestamp(1_764_547_200)),
            "a time says its own offset"
        );
        for bad in ["2025-13-01", "2025-02-30", "yesterday", "2025-12-1"] {
            assert_eq!(parse_date(bad, &utc), None, "{bad}");
        }
        // The message arrived at midnight UTC: 01:00 an hour east, 23:00 the day before
        // an hour west.
        let m = record();
        let at = |q: &str, offset| {
            Search::parse_at(q, "q", &Zone::offset(offset).unwrap())
                .unwrap()
                .matches(&m, Viewer::Operator, &NoLookup)
        };
        assert!(at("after:2025-12-01 before:2025-12-02", 3600));
        assert!(at("after:2025-11-30 before:2025-12-01", -3600));
        assert!(!at("after:2025-12-01", -3600));
    }

    #[test]
    fn zones_by_offset_and_by_name() {
        let start = |zone: &str, date: &str| Zone::parse(zone).unwrap().day_start(date).unwrap();
        assert_eq!(start("UTC", "2025-12-01"), Timestamp(1_764_547_200));
        assert_eq!(
            start("+02:00", "2025-12-01"),
            Timestamp(1_764_547_200 - 7200)
        );
        assert_eq!(
            start("-0530", "2025-12-01"),
            Timestamp(1_764_547_200 + 19800)
        );
        assert_eq!(start("+1", "2025-12-01"), Timestamp(1_764_547_200 - 3600));
        // Berlin is an hour east in winter and two in summer.
        assert_eq!(
            start("Europe/Berlin", "2025-12-01"),
            Timestamp(1_764_547_200 - 3600)
        );
        assert_eq!(
            start("Europe/Berlin", "2025-07-01"),
            Timestamp(1_751_328_000 - 7200)
        );
        // Santiago's clocks skipped midnight on 2025-09-07: the day began at 01:00 -03:00,
        // 04:00 UTC.
        assert_eq!(
            start("America/Santiago", "2025-09-07"),
            Timestamp(1_757_203_200 + 4 * 3600)
        );
        for bad in ["Mars/Olympus", "+99:00", "+1:2:3", "", "Europe/"] {
            assert!(Zone::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_malformed_query_names_its_term() {
        for (q, term) in [
            ("order colour:red", "colour:red"),
            ("from:", "from:"),
            ("-subject:\"\"", "-subject:\"\""),
            ("larger:big", "larger:big"),
            ("smaller:10X", "smaller:10X"),
            ("before:tomorrow", "before:tomorrow"),
            ("after:2025-13-01", "after:2025-13-01"),
            ("is:flagged", "is:flagged"),
            ("has:pictures", "has:pictures"),
            ("\"unbalanced phrase", "\"unbalanced"),
            ("subject:\"open", "subject:\"open"),
            ("wo\"rd", "wo\"rd"),
            ("order -", "-"),
            ("! order", "!"),
            ("\"\"", "\"\""),
            ("http://example.test", "http://example.test"),
        ] {
            match Search::parse(q, "query") {
                Err(Error::Invalid {
                    code: "invalid_search",
                    field,
                    message,
                }) => {
                    assert_eq!(field.as_deref(), Some("query"), "{q}");
                    assert!(message.contains(&format!("`{term}`")), "{q}: {message}");
                }
                other => panic!("{q}: {other:?}"),
            }
        }
    }

    #[test]
    fn quoted_values_keep_their_spaces() {
        let s = Search::parse("subject:\"your order\" -\"no such\" tag:\"Été\"", "q").unwrap();
        assert_eq!(
            s.terms,
            [
                Term {
                    negated: false,
                    test: Test::Subject("your order".into())
                },
                Term {
                    negated: true,
                    test: Test::Text("no such".into())
                },
                Term {
                    negated: false,
                    test: Test::Tag("été".into())
                },
            ]
        );
        assert!(op("subject:\"YOUR ORDER\""));
        assert!(!op("subject:\"order your\""));
    }
}
