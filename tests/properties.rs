//! Property-based tests of every parser that reads input from the network or the user: the
//! chaos rule text, durations and sizes, the search grammar, MIME through `deliver`, the SMTP,
//! IMAP and POP3 sessions, and JSON bodies. Each property holds for any input: no panic, no hang, a clear
//! error for what is refused, and a round trip where the format has one.
//!
//! The pure parsers run 256 cases each, the ones that go through the real server (on
//! 127.0.0.1:0, one per property) 48. `PROPTEST_CASES=N` runs N cases of every property:
//! docs/contributing.md gives the command for a long run.

mod common;

use std::sync::LazyLock;
use std::time::Duration;

use common::*;
use fakemail::cli::{parse_positive_duration, parse_size};
use fakemail::error::Error;
use fakemail::service::chaos::RuleSpec;
use fakemail::service::mail::{Envelope, Submission};
use fakemail::service::search::{Search, Zone};
use proptest::prelude::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Cases of a property that goes through a real server, unless `PROPTEST_CASES` says.
fn server_cases() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(48);
    ProptestConfig::with_cases(cases)
}

/// One runtime for the properties that talk to a server: proptest runs cases synchronously.
static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
});

/// Any text: arbitrary Unicode, control characters included.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..64).prop_map(|c| c.into_iter().collect())
}

// ----- chaos rules ----------------------------------------------------------------------------

/// One part of a rule's text form: mostly well-formed, sometimes not.
fn rule_part() -> impl Strategy<Value = String> {
    prop_oneof![
        (100u16..700).prop_map(|c| c.to_string()),
        (2u8..6, 0u8..10, 0u16..1000).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
        (0u64..700_000).prop_map(|ms| format!("delay={ms}ms")),
        Just("disconnect".to_owned()),
        (0u64..100_000).prop_map(|b| format!("throttle={b}")),
        (0u32..120).prop_map(|p| format!("{p}%")),
        (0u64..20).prop_map(|n| format!("next={n}")),
        (0u64..20).prop_map(|n| format!("max_per_minute={n}")),
        "[a-z*?]{0,6}@[a-z.*]{0,8}".prop_map(|g| format!("from={g}")),
        "[a-z*?]{0,6}@[a-z.*]{0,8}".prop_map(|g| format!("to={g}")),
        any::<u64>().prop_map(|s| format!("seed={s}")),
        "[ -~]{0,20}",
    ]
}

fn rule_text() -> impl Strategy<Value = String> {
    let stage = prop_oneof![
        Just("connect"),
        Just("helo"),
        Just("mail"),
        Just("rcpt"),
        Just("data"),
        Just("auth"),
        Just("send"),
        Just("quit"),
        Just("nonsense"),
    ];
    (
        stage,
        proptest::collection::vec(rule_part(), 0..5),
        proptest::option::of("[ -~]{0,30}"),
    )
        .prop_map(|(stage, parts, text)| {
            let mut s = stage.to_owned();
            for p in parts {
                s.push(':');
                s.push_str(&p);
            }
            if let Some(t) = text {
                s.push_str(":text=");
                s.push_str(&t);
            }
            s
        })
}

proptest! {
    /// A rule that parses prints as text that parses to the same rule; one that does not is
    /// `invalid_rule` naming a field.
    #[test]
    fn chaos_rules_round_trip_through_their_text(text in prop_oneof![rule_text(), text()]) {
        match RuleSpec::parse(&text) {
            Ok(spec) => {
                let again = RuleSpec::parse(&spec.to_string());
                prop_assert_eq!(again.as_ref().ok(), Some(&spec), "{} -> {}", text, spec);
            }
            Err(Error::Invalid { code, field, .. }) => {
                prop_assert_eq!(code, "invalid_rule");
                prop_assert!(field.is_some_and(|f| !f.is_empty()));
            }
            Err(e) => prop_assert!(false, "{text:?}: {e:?}"),
        }
    }

    /// A duration prints (humantime) as text that parses to the same duration; any other
    /// text is an error, never a panic.
    #[test]
    fn durations_round_trip(secs in 1u64..10_000_000_000, nanos in 0u32..1_000_000_000, junk in text()) {
        let d = Duration::new(secs, nanos);
        let printed = humantime::format_duration(d).to_string();
        prop_assert_eq!(parse_positive_duration(&printed), Ok(d));
        let _ = parse_positive_duration(&junk);
    }

    /// A size with a unit is the number times the unit's binary multiple, or out of range;
    /// any other text is an error, never a panic.
    #[test]
    fn sizes_multiply_their_units(n in 0u64..u64::MAX, unit in prop_oneof![
        Just(("", 1u64)), Just(("B", 1)), Just(("k", 1 << 10)), Just(("KiB", 1 << 10)),
        Just(("MB", 1 << 20)), Just(("m", 1 << 20)), Just(("GiB", 1 << 30)),
    ], junk in text()) {
        let got = parse_size(&format!("{n}{}", unit.0));
        match n.checked_mul(unit.1).filter(|v| *v > 0) {
            Some(v) => prop_assert_eq!(got, Ok(v)),
            None => prop_assert!(got.is_err()),
        }
        let _ = parse_size(&junk);
    }
}

// ----- the search grammar ---------------------------------------------------------------------

/// A search term: mostly well-formed, in every form the grammar has.
fn term() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("from"),
        Just("to"),
        Just("cc"),
        Just("bcc"),
        Just("reply-to"),
        Just("addressed"),
        Just("subject"),
        Just("message-id"),
        Just("tag"),
    ];
    // A bare word: no colon (that would make it a `key:value`), not a lone `-` or `!`.
    let word = "[^\\s\":!-][^\\s\":]{0,11}";
    let term = prop_oneof![
        word.prop_map(|w| w.to_owned()),
        "[^\"\\s][^\"]{0,19}".prop_map(|p| format!("\"{p}\"")),
        (key.clone(), word).prop_map(|(k, w)| format!("{k}:{w}")),
        (key, "[^\"\\s][^\"]{0,11}").prop_map(|(k, p)| format!("{k}:\"{p}\"")),
        prop_oneof![
            Just("is:read"),
            Just("is:unread"),
            Just("is:starred"),
            Just("is:tagged"),
            Just("has:attachment")
        ]
        .prop_map(str::to_owned),
        (0u32..5000, prop_oneof![Just(""), Just("K"), Just("M")])
            .prop_map(|(n, u)| format!("larger:{n}{u}")),
        (2000u32..2100, 1u32..13, 1u32..29)
            .prop_map(|(y, m, d)| format!("before:{y}-{m:02}-{d:02}")),
    ];
    (prop_oneof![Just(""), Just("-"), Just("!")], term).prop_map(|(neg, t)| format!("{neg}{t}"))
}

proptest! {
    /// Well-formed terms always parse, however they are spaced; any text parses or is a 422
    /// `invalid_search` naming the query's field, never a panic.
    #[test]
    fn the_search_grammar_reads_any_query(terms in proptest::collection::vec(term(), 1..6), junk in text(), gap in "[ \t]{1,3}") {
        let q = terms.join(" ");
        let one = Search::parse(&q, "q");
        prop_assert!(one.is_ok(), "{q:?}: {one:?}");
        let spaced = Search::parse(&format!("{gap}{}{gap}", terms.join(&gap)), "q");
        prop_assert_eq!(one.unwrap(), spaced.unwrap());
        match Search::parse(&junk, "q") {
            Ok(_) => {}
            Err(Error::Invalid { code, field, .. }) => {
                prop_assert_eq!(code, "invalid_search");
                prop_assert_eq!(field.as_deref(), Some("q"));
            }
            Err(e) => prop_assert!(false, "{junk:?}: {e:?}"),
        }
    }

    /// Any zone name is read or refused, never a panic.
    #[test]
    fn any_zone_name_is_read_or_refused(name in prop_oneof![text(), "[A-Za-z_]{1,12}/[A-Za-z_]{1,12}", "[+-][0-9:]{1,6}"]) {
        let _ = Zone::parse(&name);
    }
}

// ----- through the real server -----------------------------------------------------------------

/// The server of the MIME and SMTP properties (started on the shared runtime).
static SERVER: LazyLock<TestServer> = LazyLock::new(|| RT.block_on(TestServer::start_chaos(false)));
/// The server of the JSON property, apart: the bodies it sends may set fault-injection rules.
static JSON_SERVER: LazyLock<TestServer> =
    LazyLock::new(|| RT.block_on(TestServer::start_chaos(true)));

/// A message source: header lines (some malformed, some not UTF-8), then a body that may
/// be MIME, with any bytes.
fn source() -> impl Strategy<Value = Vec<u8>> {
    let header = prop_oneof![
        "(Subject|From|To|Cc|Reply-To|Message-ID|Date|Content-Type|Content-Transfer-Encoding|X-Tags): [ -~]{0,40}",
        Just("Content-Type: multipart/mixed; boundary=\"b\"".to_owned()),
        Just("Content-Type: text/html; charset=utf-8".to_owned()),
        Just("Content-Transfer-Encoding: base64".to_owned()),
        Just("Content-Transfer-Encoding: quoted-printable".to_owned()),
        "[ -~]{0,30}",
    ];
    let body_line = prop_oneof![
        Just(b"--b".to_vec()),
        Just(b"--b--".to_vec()),
        Just(b"Content-Type: text/plain".to_vec()),
        Just(b"=E9t=C3=A9 =\r".to_vec()),
        Just(b"<script>alert(1)</script><img src=x onerror=alert(1)>".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..60),
    ];
    (
        proptest::collection::vec(header, 0..8),
        proptest::collection::vec(body_line, 0..12),
    )
        .prop_map(|(headers, body)| {
            let mut raw = Vec::new();
            for h in headers {
                raw.extend_from_slice(h.as_bytes());
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(b"\r\n");
            for line in body {
                raw.extend_from_slice(&line);
                raw.extend_from_slice(b"\r\n");
            }
            raw
        })
}

proptest! {
    #![proptest_config(server_cases())]

    /// Whatever the source, `deliver` stores it (it is within the size limit) and gives it
    /// back byte for byte; reading it as JSON, HTML and attachments answers without a 5xx.
    #[test]
    fn any_source_is_stored_and_read_back_unchanged(raw in source()) {
        let srv = &*SERVER;
        RT.block_on(async {
            let delivered = srv
                .service
                .submit(Submission {
                    raw: raw.clone(),
                    envelope: Envelope {
                        from: "sender@example.test".into(),
                        to: vec!["prop@example.test".into()],
                    },
                    sender: None,
                })
                .await
                .expect("stored");
            let id = delivered.message.id;
            let back = srv.service.admin_raw(id).await.unwrap();
            assert_eq!(back, raw, "the source changed");
            let admin = CHAOS_ADMIN;
            for path in [
                format!("/api/v1/admin/messages/{id}"),
                format!("/api/v1/admin/messages/{id}/html"),
                format!("/api/v1/admin/messages/{id}/attachments/0"),
            ] {
                let r = srv.reply("GET", &path, Some(admin), None).await;
                assert!(r.status < 500, "{path}: {} {}", r.status, r.text);
            }
        });
    }

    /// Whatever a client sends, the SMTP server answers every line with a well-formed reply,
    /// never hangs, and serves the next client. (Not STARTTLS: after it the server waits, as
    /// it should, for a TLS handshake that plain bytes never begin, until the idle timeout.)
    #[test]
    fn any_smtp_dialogue_gets_well_formed_replies(lines in proptest::collection::vec(
        prop_oneof![
            prop_oneof![
                Just("EHLO c.test"), Just("HELO c.test"), Just("MAIL FROM:<a@b.test>"),
                Just("RCPT TO:<p@example.test>"), Just("DATA"), Just("RSET"), Just("NOOP"),
                Just("AUTH PLAIN"), Just("AUTH LOGIN"), Just("VRFY x"),
                Just("."), Just("BDAT 10"), Just("MAIL FROM:<a@b.test> SIZE=99999999999"),
            ].prop_map(|s| s.as_bytes().to_vec()),
            proptest::collection::vec(any::<u8>().prop_filter("no line ends", |b| *b != b'\n'), 0..80),
        ],
        0..12,
    )) {
        let srv = &*SERVER;
        RT.block_on(async {
            let mut s = tokio::net::TcpStream::connect(srv.smtp).await.unwrap();
            let mut out = Vec::new();
            for line in &lines {
                out.extend_from_slice(line);
                out.extend_from_slice(b"\r\n");
            }
            // End a DATA body the lines may have opened, then leave.
            out.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
            let _ = s.write_all(&out).await;
            let mut replies = Vec::new();
            let read = tokio::time::timeout(TIMEOUT, s.read_to_end(&mut replies)).await;
            assert!(read.is_ok(), "the server neither answered QUIT nor closed");
            let text = String::from_utf8(replies).expect("replies are UTF-8");
            assert!(text.starts_with("220 "), "{text}");
            for reply in text.lines() {
                let ok = reply.len() >= 4
                    && reply.as_bytes()[..3].iter().all(u8::is_ascii_digit)
                    && matches!(reply.as_bytes()[3], b' ' | b'-');
                assert!(ok, "not a reply line: {reply:?} in {text}");
            }
        });
        // The server still serves.
        RT.block_on(async {
            let mut c = SmtpClient::connect(srv.smtp).await;
            c.expect("NOOP", 250).await;
        });
    }

    /// Whatever a POP3 client sends, logged in or not, the server answers, never hangs,
    /// closes after QUIT, and serves the next client. (Not STLS, for the reason SMTP's
    /// property leaves out STARTTLS.)
    #[test]
    fn any_pop3_dialogue_gets_answers(lines in proptest::collection::vec(
        prop_oneof![
            prop_oneof![
                Just("USER pop@example.test"), Just(POP_PASS), Just("STAT"), Just("LIST"),
                Just("LIST 1"), Just("UIDL"), Just("UIDL 9"), Just("RETR 1"), Just("TOP 1 0"),
                Just("TOP 1 99999999999"), Just("DELE 1"), Just("RSET"), Just("NOOP"),
                Just("CAPA"), Just("AUTH PLAIN"), Just("AUTH"), Just("APOP a b"), Just("*"),
            ].prop_map(|s| s.as_bytes().to_vec()),
            proptest::collection::vec(any::<u8>().prop_filter("no line ends", |b| *b != b'\n'), 0..80),
        ],
        0..12,
    )) {
        let srv = &*SERVER;
        let addr = srv.pop3.expect("POP3 is on");
        RT.block_on(async {
            pop_user().await;
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut out = Vec::new();
            for line in &lines {
                out.extend_from_slice(line);
                out.extend_from_slice(b"\r\n");
            }
            // Cancel an AUTH exchange the lines may have begun, then leave.
            out.extend_from_slice(b"*\r\nQUIT\r\n");
            let _ = s.write_all(&out).await;
            let mut replies = Vec::new();
            let read = tokio::time::timeout(TIMEOUT, s.read_to_end(&mut replies)).await;
            assert!(read.is_ok(), "the server neither answered QUIT nor closed");
            let text = String::from_utf8_lossy(&replies);
            assert!(text.starts_with("+OK "), "{text}");
            let last = text.trim_end().lines().last().unwrap_or_default();
            assert!(last.starts_with("+OK") || last.starts_with("-ERR"), "last line: {last:?}");
            let mut next = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut greeting = [0u8; 4];
            tokio::time::timeout(TIMEOUT, next.read_exact(&mut greeting))
                .await
                .expect("a greeting in time")
                .unwrap();
            assert_eq!(&greeting, b"+OK ");
        });
    }

    /// Whatever an IMAP client sends, logged in or not, with literals or without, the server
    /// answers, never hangs, says `* BYE` and closes after LOGOUT, and serves the next client.
    /// (Not STARTTLS, for the reason SMTP's property leaves it out.)
    #[test]
    fn any_imap_dialogue_gets_answers(lines in proptest::collection::vec(
        prop_oneof![
            prop_oneof![
                Just("a LOGIN pop@example.test \"pop3 property test 7\""), Just("a CAPABILITY"),
                Just("a SELECT INBOX"), Just("a EXAMINE Sent"), Just("a LIST \"\" *"),
                Just("a STATUS INBOX (MESSAGES UIDNEXT UNSEEN)"), Just("a FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)"),
                Just("a UID FETCH 1:* (BODY.PEEK[] RFC822.SIZE)"), Just("a FETCH 1 BODY[1.2.3]<0.10>"),
                Just("a SEARCH OR FROM x NOT SEEN"), Just("a UID SEARCH 1:4294967295"),
                Just("a STORE 1 +FLAGS (\\Seen $Custom)"), Just("a COPY 1:* Archive"),
                Just("a MOVE 1 Trash"), Just("a EXPUNGE"), Just("a CREATE Projects/2026"),
                Just("a RENAME Projects Work"), Just("a DELETE Work"), Just("a APPEND INBOX {5+}"),
                Just("hello"), Just("a APPEND INBOX {99999999999}"), Just("a NOOP"), Just("a CLOSE"),
                Just("a UNSELECT"), Just("a ID NIL"), Just("a ENABLE UTF8=ACCEPT"), Just("a NAMESPACE"),
                Just("a AUTHENTICATE PLAIN"), Just("*"), Just("a IDLE"), Just("DONE"),
            ].prop_map(|s| s.as_bytes().to_vec()),
            proptest::collection::vec(any::<u8>().prop_filter("no line ends", |b| *b != b'\n'), 0..80),
        ],
        0..12,
    )) {
        let srv = &*SERVER;
        let addr = srv.imap.expect("IMAP is on");
        RT.block_on(async {
            pop_user().await;
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut out = Vec::new();
            for line in &lines {
                out.extend_from_slice(line);
                out.extend_from_slice(b"\r\n");
            }
            // End an IDLE or an AUTHENTICATE the lines may have begun, then leave.
            out.extend_from_slice(b"DONE\r\n*\r\nz LOGOUT\r\n");
            let _ = s.write_all(&out).await;
            let mut replies = Vec::new();
            let read = tokio::time::timeout(TIMEOUT, s.read_to_end(&mut replies)).await;
            assert!(read.is_ok(), "the server neither answered LOGOUT nor closed");
            let text = String::from_utf8_lossy(&replies);
            assert!(text.starts_with("* OK"), "{text}");
            assert!(text.contains("* BYE"), "no BYE: {text}");
            let mut next = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut greeting = [0u8; 4];
            tokio::time::timeout(TIMEOUT, next.read_exact(&mut greeting))
                .await
                .expect("a greeting in time")
                .unwrap();
            assert_eq!(&greeting, b"* OK");
        });
    }

    /// Any JSON body, of any shape, to the endpoints that read one: never a 5xx, and every
    /// error in the API's envelope (`send` checks both).
    #[test]
    fn any_json_body_gets_a_clear_answer(body in json_value()) {
        let srv = &*JSON_SERVER;
        RT.block_on(async {
            let admin = CHAOS_ADMIN;
            let user = user_token().await;
            for (method, path, token) in [
                ("POST", "/api/v1/auth/register", None),
                ("POST", "/api/v1/auth/login", None),
                ("POST", "/api/v1/messages", Some(user.as_str())),
                ("POST", "/api/v1/mailboxes", Some(user.as_str())),
                ("PATCH", "/api/v1/me", Some(user.as_str())),
                ("PUT", "/api/v1/admin/chaos", Some(admin)),
                ("POST", "/api/v1/admin/chaos/rules", Some(admin)),
            ] {
                let (status, v) = srv.call(method, path, token, Some(body.clone())).await;
                assert!(status < 500, "{method} {path} {body}: {status} {v}");
            }
        });
    }
}

/// The POP3 property's `PASS` line: the password of [`pop_user`].
const POP_PASS: &str = "PASS pop3 property test 7";

/// The POP3 property's account on the shared server, with a message in its inbox, made once.
async fn pop_user() {
    static MADE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    MADE.get_or_init(|| async {
        let body = json!({"email": "pop@example.test", "password": &POP_PASS[5..]});
        let (s, v) = SERVER
            .call("POST", "/api/v1/auth/register", None, Some(body))
            .await;
        assert_eq!(s, 201, "{v}");
        SERVER
            .service
            .submit(Submission {
                raw: b"Subject: for POP3\r\n\r\nHello.\r\n".to_vec(),
                envelope: Envelope {
                    from: "sender@example.test".into(),
                    to: vec!["pop@example.test".into()],
                },
                sender: None,
            })
            .await
            .expect("stored");
    })
    .await;
}

/// A user of the shared server, made once.
async fn user_token() -> String {
    static TOKEN: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    TOKEN
        .get_or_init(|| JSON_SERVER.user("props@example.test"))
        .await
        .clone()
}

/// Any JSON value, nested a little, with the keys the endpoints read among random ones.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("email".to_owned()),
        Just("password".to_owned()),
        Just("to".to_owned()),
        Just("subject".to_owned()),
        Just("text".to_owned()),
        Just("name".to_owned()),
        Just("rules".to_owned()),
        Just("rule".to_owned()),
        Just("stage".to_owned()),
        "[a-z_]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        text().prop_map(Value::String),
        Just(json!("a@example.test")),
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
