//! `GET /metrics` against the real server: the exposition is well formed (read back by a small
//! parser of the text format here), open without a token, and its counts are exactly what
//! the test did over REST and SMTP and what retention deleted.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use fakemail::time::Timestamp;
use serde_json::{Value, json};

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";
const ADMIN: &str = "fm_the-admin-token-of-the-metrics-test";

/// One sample: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition.
#[derive(Debug)]
struct Metrics {
    /// Family name -> type.
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Metrics {
    /// The value of the sample with exactly these labels, if there is one.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    /// Like [`Metrics::get`], as a whole number; the sample must exist.
    #[track_caller]
    fn n(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let v = self
            .get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name} {labels:?} in {:#?}", self.samples));
        assert!(v >= 0.0 && v.fract() == 0.0, "{name} {labels:?} = {v}");
        v as u64
    }

    /// Every sample of a family, as (labels, value).
    fn family(&self, name: &str) -> Vec<(BTreeMap<String, String>, u64)> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| (s.labels.clone(), s.value as u64))
            .collect()
    }
}

fn is_name(s: &str, colons: bool) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':'))
}

/// Reads a quoted label value from the start of `s` (after the opening quote), undoing the
/// escapes; returns it with the rest after the closing quote.
#[track_caller]
fn label_value(s: &str) -> (String, &str) {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (out, &s[i + 1..]),
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                other => panic!("bad escape \\{other:?} in {s:?}"),
            },
            '\n' => panic!("raw line feed in a label value: {s:?}"),
            c => out.push(c),
        }
    }
    panic!("unterminated label value: {s:?}")
}

/// Parses the text format 0.0.4 strictly: every line is blank, a comment, or a sample
/// `name{labels} value`; each family has one HELP and then one TYPE line before its samples,
/// which follow it with no other family in between; counters end in `_total`; no sample is
/// given twice.
#[track_caller]
fn parse(text: &str) -> Metrics {
    assert!(text.ends_with('\n'), "the last line ends with a line feed");
    let mut helps = BTreeSet::new();
    let mut types = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut samples: Vec<Sample> = Vec::new();
    let mut seen = BTreeSet::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(is_name(name, true), "{line}");
            assert!(!help.trim().is_empty(), "empty help: {line}");
            assert!(helps.insert(name.to_owned()), "a second HELP: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(helps.contains(name), "TYPE before HELP: {line}");
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "a second TYPE: {line}"
            );
            current = Some(name.to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("no value: {line}"));
        let name = &line[..end];
        assert!(is_name(name, true), "bad name: {line}");
        assert_eq!(
            current.as_deref(),
            Some(name),
            "a sample outside its family: {line}"
        );
        let mut rest = &line[end..];
        let mut labels = BTreeMap::new();
        if let Some(mut l) = rest.strip_prefix('{') {
            loop {
                if let Some(after) = l.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let (label, after) = l.split_once("=\"").expect("label=\"value\"");
                assert!(is_name(label, false), "bad label name: {line}");
                let (value, after) = label_value(after);
                assert!(
                    labels.insert(label.to_owned(), value).is_none(),
                    "label twice: {line}"
                );
                l = after.strip_prefix(',').unwrap_or(after);
            }
        }
        let value = rest.strip_prefix(' ').expect("one space before the value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        assert!(
            seen.insert(format!("{name}{labels:?}")),
            "sample twice: {line}"
        );
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    Metrics { types, samples }
}

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics` with an optional bearer token: 200 in the text format, parsed.
async fn scrape_with(srv: &TestServer, token: Option<&str>) -> (Metrics, String) {
    let r = srv.reply("GET", "/metrics", token, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some(CONTENT_TYPE));
    (parse(&r.text), r.text)
}

async fn scrape(srv: &TestServer) -> Metrics {
    scrape_with(srv, None).await.0
}

/// Every family, with its type.
const FAMILIES: [(&str, &str); 20] = [
    ("fakemail_build_info", "gauge"),
    ("fakemail_ready", "gauge"),
    ("fakemail_storage_full", "gauge"),
    ("fakemail_storage_free_bytes", "gauge"),
    ("fakemail_uptime_seconds", "gauge"),
    ("fakemail_messages", "gauge"),
    ("fakemail_message_bytes", "gauge"),
    ("fakemail_users", "gauge"),
    ("fakemail_smtp_connections_total", "counter"),
    ("fakemail_smtp_messages_total", "counter"),
    ("fakemail_smtp_replies_total", "counter"),
    ("fakemail_connections_total", "counter"),
    ("fakemail_commands_total", "counter"),
    ("fakemail_http_requests_total", "counter"),
    ("fakemail_sweeper_runs_total", "counter"),
    ("fakemail_sweeper_failures_total", "counter"),
    ("fakemail_retention_deleted_messages_total", "counter"),
    ("fakemail_retention_deleted_bytes_total", "counter"),
    ("fakemail_chaos_faults_total", "counter"),
    ("fakemail_chaos_rules", "gauge"),
];

#[tokio::test]
async fn metrics_are_open_well_formed_and_name_no_one() {
    let mut config = test_config();
    config.admin_token = Some(ADMIN.to_owned());
    let srv = TestServer::start_with(config, None).await;
    srv.register(ALICE).await;

    // Open: no token, a wrong one and the admin token all get the same document.
    let (m, text) = scrape_with(&srv, None).await;
    for token in [Some("fm_wrong"), Some(ADMIN)] {
        let (again, _) = scrape_with(&srv, token).await;
        assert_eq!(again.types, m.types);
    }
    let families: BTreeMap<String, String> = FAMILIES
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    assert_eq!(m.types, families);
    assert!(!text.contains("example.test"), "an address in:\n{text}");

    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(m.n("fakemail_build_info", &[("version", version)]), 1);
    assert_eq!(m.n("fakemail_ready", &[]), 1);
    for reason in ["min_free_space", "write_failed"] {
        assert_eq!(m.n("fakemail_storage_full", &[("reason", reason)]), 0);
    }
    assert!(m.n("fakemail_storage_free_bytes", &[]) > 0);
    let up = m.get("fakemail_uptime_seconds", &[]).unwrap();
    assert!((0.0..3600.0).contains(&up), "{up}");
    assert_eq!(m.n("fakemail_users", &[]), 1);
    assert_eq!(m.n("fakemail_messages", &[]), 0);
    assert_eq!(m.n("fakemail_message_bytes", &[]), 0);
    for stage in [
        "connect", "ehlo", "auth", "mail", "rcpt", "data", "api_send",
    ] {
        assert_eq!(m.n("fakemail_chaos_faults_total", &[("stage", stage)]), 0);
    }
    assert_eq!(m.n("fakemail_chaos_rules", &[]), 0);
    // The default --retention sweeps at start-up; nothing to delete.
    assert_eq!(m.n("fakemail_sweeper_failures_total", &[]), 0);
    for reason in ["expired", "cap", "purge"] {
        let r = [("reason", reason)];
        assert_eq!(m.n("fakemail_retention_deleted_messages_total", &r), 0);
        assert_eq!(m.n("fakemail_retention_deleted_bytes_total", &r), 0);
    }
    assert!(m.family("fakemail_smtp_replies_total").is_empty());

    // Only GET.
    srv.expect_error("POST", "/metrics", None, None, 405, "method_not_allowed")
        .await;
    srv.stop().await;
}

#[tokio::test]
async fn counts_are_exactly_what_was_done_over_rest_and_smtp() {
    let srv = TestServer::start().await;
    let first = scrape(&srv).await;
    // The scrape that returns the document is counted after it.
    assert!(first.family("fakemail_http_requests_total").is_empty());
    assert_eq!(first.n("fakemail_smtp_connections_total", &[]), 0);

    srv.register(ALICE).await;
    srv.register(BOB).await;
    let alice = srv.login(ALICE).await;
    let bob = srv.login(BOB).await;
    let body = json!({"to": [BOB], "subject": "over REST", "text": "hello"});
    let (s, v) = srv
        .call("POST", "/api/v1/messages", Some(&alice), Some(body))
        .await;
    assert_eq!(s, 201, "{v}");
    srv.expect_error(
        "POST",
        "/api/v1/messages",
        Some(&alice),
        Some(json!({"subject": "to nobody", "text": "x"})),
        422,
        "no_recipients",
    )
    .await;
    srv.expect_error(
        "GET",
        "/api/v1/messages/999999",
        Some(&alice),
        None,
        404,
        "not_found",
    )
    .await;
    srv.expect_error("GET", "/api/v1/nowhere/42", None, None, 404, "not_found")
        .await;
    srv.expect_error("DELETE", "/metrics", None, None, 405, "method_not_allowed")
        .await;

    let mut c = SmtpClient::connect(srv.smtp).await;
    c.expect("EHLO client.test", 250).await;
    let r = c
        .mail(
            "carol@example.test",
            &[BOB],
            "Subject: over SMTP\r\n\r\nhello\r\n",
        )
        .await;
    assert_eq!(r.code, 250, "{r:?}");
    c.expect("RCPT TO:<bob@example.test>", 503).await;
    c.expect("QUIT", 221).await;

    let (s, inbox) = srv
        .call("GET", "/api/v1/mailboxes/inbox/messages", Some(&bob), None)
        .await;
    assert_eq!(s, 200, "{inbox}");
    let inbox = inbox["messages"].as_array().unwrap();
    assert_eq!(inbox.len(), 2);
    let bytes: u64 = inbox.iter().map(|m| m["size"].as_u64().unwrap()).sum();

    let m = scrape(&srv).await;
    assert_eq!(m.n("fakemail_users", &[]), 2);
    assert_eq!(m.n("fakemail_messages", &[]), 2);
    assert_eq!(m.n("fakemail_message_bytes", &[]), bytes);
    assert_eq!(m.n("fakemail_smtp_connections_total", &[]), 1);
    assert_eq!(
        m.n("fakemail_smtp_messages_total", &[("result", "accepted")]),
        1
    );
    assert_eq!(
        m.n("fakemail_smtp_messages_total", &[("result", "rejected")]),
        1
    );
    let replies: Vec<(String, u64)> = m
        .family("fakemail_smtp_replies_total")
        .into_iter()
        .map(|(l, n)| (l["code"].clone(), n))
        .collect();
    let want = [("220", 1), ("221", 1), ("250", 4), ("354", 1), ("503", 1)];
    let want: Vec<(String, u64)> = want.iter().map(|(c, n)| (c.to_string(), *n)).collect();
    assert_eq!(replies, want);

    let http: BTreeSet<(String, String, String, u64)> = m
        .family("fakemail_http_requests_total")
        .into_iter()
        .map(|(l, n)| {
            assert_eq!(l.len(), 3, "{l:?}");
            (
                l["route"].clone(),
                l["method"].clone(),
                l["status"].clone(),
                n,
            )
        })
        .collect();
    let want: BTreeSet<(String, String, String, u64)> = [
        ("/metrics", "GET", "200", 1),
        ("/metrics", "DELETE", "405", 1),
        ("/api/v1/auth/register", "POST", "201", 2),
        ("/api/v1/auth/login", "POST", "200", 2),
        ("/api/v1/messages", "POST", "201", 1),
        ("/api/v1/messages", "POST", "422", 1),
        ("/api/v1/messages/{id}", "GET", "404", 1),
        ("/api/v1/mailboxes/{name}/messages", "GET", "200", 1),
        ("unmatched", "GET", "404", 1),
    ]
    .iter()
    .map(|(r, me, s, n)| (r.to_string(), me.to_string(), s.to_string(), *n))
    .collect();
    assert_eq!(http, want);

    // The scrape just answered is counted now.
    let again = scrape(&srv).await;
    assert_eq!(
        again.n(
            "fakemail_http_requests_total",
            &[("route", "/metrics"), ("method", "GET"), ("status", "200")]
        ),
        2
    );
    srv.stop().await;
}

/// Sends a text message from `token`'s user to `to`; returns its size.
async fn send_sized(srv: &TestServer, token: &str, to: &str, subject: &str) -> u64 {
    let body = json!({"to": [to], "subject": subject, "text": format!("body of {subject}")});
    let (s, v): (u16, Value) = srv
        .call("POST", "/api/v1/messages", Some(token), Some(body))
        .await;
    assert_eq!(s, 201, "{v}");
    v["size"].as_u64().unwrap()
}

#[tokio::test]
async fn retention_counts_sweeper_runs_and_what_each_reason_deleted() {
    let mut config = test_config();
    config.admin_token = Some(ADMIN.to_owned());
    config.retention = Some(Duration::from_secs(3600));
    config.sweep_interval = Duration::from_millis(200);
    config.service.max_messages = 2;
    let srv = TestServer::start_with(config, None).await;

    // Expired: a message from two hours ago, stored straight into the store.
    let store = srv.service.store();
    let owner = store.ensure_owner(BOB).unwrap();
    let two_hours_ago = Timestamp(Timestamp::now().0 - 7200);
    stored_message(store, two_hours_ago, owner, None, 100);
    wait_until("the sweeper deletes the expired message", || async {
        let m = scrape(&srv).await;
        m.n("fakemail_messages", &[]) == 0 && m.n("fakemail_sweeper_runs_total", &[]) > 0
    })
    .await;
    let m = scrape(&srv).await;
    let expired = [("reason", "expired")];
    assert_eq!(
        m.n("fakemail_retention_deleted_messages_total", &expired),
        1
    );
    assert_eq!(m.n("fakemail_retention_deleted_bytes_total", &expired), 100);
    assert_eq!(m.n("fakemail_sweeper_failures_total", &[]), 0);

    // Cap: the third message sent takes the first one's place.
    let alice = srv.user(ALICE).await;
    let mut sizes = Vec::new();
    for i in 0..3 {
        sizes.push(send_sized(&srv, &alice, BOB, &format!("m{i}")).await);
    }
    let m = scrape(&srv).await;
    let cap = [("reason", "cap")];
    assert_eq!(m.n("fakemail_retention_deleted_messages_total", &cap), 1);
    assert_eq!(
        m.n("fakemail_retention_deleted_bytes_total", &cap),
        sizes[0]
    );
    assert_eq!(m.n("fakemail_messages", &[]), 2);
    assert_eq!(m.n("fakemail_message_bytes", &[]), sizes[1] + sizes[2]);

    // Purge: the admin endpoint takes the rest; a dry run counts nothing.
    for dry_run in [true, false] {
        let (s, v) = srv
            .call(
                "POST",
                "/api/v1/admin/purge",
                Some(ADMIN),
                Some(json!({"older_than": "0s", "dry_run": dry_run})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let m = scrape(&srv).await;
    let purge = [("reason", "purge")];
    assert_eq!(m.n("fakemail_retention_deleted_messages_total", &purge), 2);
    assert_eq!(
        m.n("fakemail_retention_deleted_bytes_total", &purge),
        sizes[1] + sizes[2]
    );
    assert_eq!(m.n("fakemail_messages", &[]), 0);
    assert_eq!(m.n("fakemail_message_bytes", &[]), 0);
    assert_eq!(
        m.n("fakemail_retention_deleted_messages_total", &expired),
        1
    );
    assert_eq!(m.n("fakemail_retention_deleted_messages_total", &cap), 1);
    srv.stop().await;
}

#[test]
fn the_parser_refuses_what_the_format_forbids() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"q\\\"\\\\\\n\"} 1\n";
    let m = parse(ok);
    assert_eq!(m.samples[0].labels["x"], "q\"\\\n");
    for bad in [
        "a_total 1\n",
        "# TYPE a_total counter\na_total 1\n",
        "# HELP a A.\n# TYPE a counter\na 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total  1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1\na_total 2\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"\\q\"} 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\nb_total 1\n",
    ] {
        let r = std::panic::catch_unwind(|| parse(bad));
        assert!(r.is_err(), "accepted: {bad:?}");
    }
}

#[test]
fn the_operations_guide_lists_every_family_with_its_type() {
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .expect("read docs/operations.md");
    // `| `fakemail_users` | gauge | | accounts |` rows.
    let rows: BTreeMap<String, String> = guide
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            name.starts_with("fakemail_")
                .then(|| (name.to_owned(), cells[2].to_string()))
        })
        .collect();
    let families: BTreeMap<String, String> = FAMILIES
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    assert_eq!(rows, families);
}

#[tokio::test]
async fn injected_faults_are_counted_by_stage() {
    let srv = TestServer::start_chaos(true).await;
    srv.add_rule("ehlo:421:next=1").await;
    srv.add_rule("rcpt:451:to=*@bounce.test").await;
    let mut c = SmtpClient::connect(srv.smtp).await;
    c.expect("EHLO client.test", 421).await;
    let mut c = SmtpClient::connect(srv.smtp).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("MAIL FROM:<a@example.test>", 250).await;
    c.expect("RCPT TO:<x@bounce.test>", 451).await;
    c.expect("RCPT TO:<y@bounce.test>", 451).await;
    let m = scrape(&srv).await;
    assert_eq!(m.n("fakemail_chaos_faults_total", &[("stage", "ehlo")]), 1);
    assert_eq!(m.n("fakemail_chaos_faults_total", &[("stage", "rcpt")]), 2);
    assert_eq!(m.n("fakemail_chaos_faults_total", &[("stage", "data")]), 0);
    assert_eq!(m.n("fakemail_chaos_rules", &[]), 2);
    srv.stop().await;
}
