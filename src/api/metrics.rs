//! `GET /metrics`: the server's counters in the Prometheus text format ([`super::exposition`]),
//! and the count of HTTP requests by route, method and status that the access log feeds.
//!
//! A request is counted under its route's template (`/api/v1/messages/{id}`), never its path:
//! paths hold ids, and a label per id would grow without bound. warp does not say which route
//! answered, so [`route_of`] matches a path against the templates of the route tables (the
//! API's [`ROUTES`] and the web UI's [`PAGES`]) the way warp's path filters do; a test checks
//! that the router answers each template.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

use warp::http::{Method, StatusCode};

use super::exposition::{Exposition, Kind};
use super::routes::{PAGES, ROUTES, Route};
use crate::error::Result;
use crate::retention::Reason;
use crate::service::Service;
use crate::service::chaos::Stage;

/// The `route` label of a request whose path no route serves.
pub const UNMATCHED: &str = "unmatched";

/// The most segments a template of [`TABLE`] has.
const MAX_SEGMENTS: usize = 7;

/// Every route counted, the API's and the web UI's, sorted by template: the order of the
/// `route` labels.
static TABLE: LazyLock<Vec<Route>> = LazyLock::new(|| {
    let mut table: Vec<Route> = ROUTES.iter().chain(&PAGES).copied().collect();
    table.sort_by_key(|r| r.template);
    table
});

/// [`TABLE`] split into segments once: a literal, or `None` for a parameter (`/` has none).
static SEGMENTS: LazyLock<Vec<Vec<Option<&'static str>>>> = LazyLock::new(|| {
    TABLE
        .iter()
        .map(|r| match &r.template[1..] {
            "" => Vec::new(),
            t => t
                .split('/')
                .map(|s| (!s.starts_with('{')).then_some(s))
                .collect(),
        })
        .collect()
});

/// The index in [`TABLE`] of the route whose template matches `path`, if any.
///
/// Segments are taken as warp's path filters take them: one leading `/` skipped, then each
/// segment is the text up to the next `/`, which is skipped too, until nothing is left (so one
/// trailing `/` makes no segment, and `//` an empty one). A literal matches itself; a
/// parameter any segment but an empty one. The path is split once, and a template is passed
/// over on its number of segments or, mostly, on its last one.
pub fn route_of(path: &str) -> Option<usize> {
    let mut segments = [""; MAX_SEGMENTS];
    let mut n = 0;
    let mut rest = path.strip_prefix('/').unwrap_or(path);
    while !rest.is_empty() {
        if n == MAX_SEGMENTS {
            return None;
        }
        let (segment, after) = rest.split_once('/').unwrap_or((rest, ""));
        segments[n] = segment;
        n += 1;
        rest = after;
    }
    let segments = &segments[..n];
    SEGMENTS.iter().position(|template| {
        template.len() == n
            // From the end: the last segments tell routes apart, the first are mostly `api/v1`.
            && template.iter().zip(segments).rev().all(|(want, got)| match want {
                Some(literal) => literal == got,
                None => !got.is_empty(),
            })
    })
}

/// The `method` label values; any other method counts as `other`.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];
const OTHER_METHOD: &str = "other";

/// HTTP requests answered, by route, method and status. Without the web UI (`--no-ui`), its
/// paths count as unmatched, as they are then.
///
/// Per request: [`route_of`], then one lock held for a lookup in a map of the (route, method,
/// status) triples seen so far, a few dozen in practice. Measured at 80 ns a call in all (2
/// cores, optimised, no contention), next to tens of microseconds for the request itself. A
/// fixed array of atomics would need a slot for every status a route might ever answer; the
/// map holds only those seen, already in label order.
#[derive(Debug, Default)]
pub struct HttpCounts {
    /// Whether the web UI's routes are served.
    pages: bool,
    /// Key: route index (`TABLE.len()` for unmatched) << 24 | method index << 16 | status.
    counts: Mutex<BTreeMap<u32, u64>>,
}

impl HttpCounts {
    /// Counts for a router that serves the web UI's pages, or not.
    pub fn new(pages: bool) -> HttpCounts {
        HttpCounts {
            pages,
            counts: Mutex::default(),
        }
    }

    /// Counts one answered request.
    pub fn count(&self, method: &Method, path: &str, status: StatusCode) {
        let route = route_of(path)
            .filter(|&i| self.pages || !PAGES.contains(&TABLE[i]))
            .unwrap_or(TABLE.len()) as u32;
        let method = METHODS
            .iter()
            .position(|m| *m == method.as_str())
            .unwrap_or(METHODS.len()) as u32;
        let key = route << 24 | method << 16 | u32::from(status.as_u16());
        // A panic elsewhere while the lock was held leaves a map of plain counts: go on.
        *self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default() += 1;
    }

    /// Every (route, method, status) counted, with its count, in label order (route templates sorted, unmatched last).
    pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u16, u64)> {
        let counts = self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        counts
            .into_iter()
            .map(|(key, n)| {
                let route = TABLE.get((key >> 24) as usize).map(|r| r.template);
                let route = route.unwrap_or(UNMATCHED);
                let method = METHODS
                    .get((key >> 16 & 0xff) as usize)
                    .copied()
                    .unwrap_or(OTHER_METHOD);
                (route, method, key as u16, n)
            })
            .collect()
    }
}

/// The whole `GET /metrics` document. Reads counters only, never scans the store.
///
/// # Errors
/// Store failures reading the message and user counts.
pub async fn render(svc: &Service, http: &HttpCounts) -> Result<String> {
    use Kind::{Counter, Gauge};
    let stats = svc.stats_snapshot().await?;
    let mut e = Exposition::default();

    e.family(
        "fakemail_build_info",
        Gauge,
        "Always 1; the label is the version of the running server.",
    )
    .sample(&[("version", env!("CARGO_PKG_VERSION"))], 1u64);
    e.family(
        "fakemail_ready",
        Gauge,
        "1 while GET /readyz answers 200: every listener serves and there is room for new mail.",
    )
    .sample(&[], u64::from(svc.check_ready().is_ok()));
    let space = svc.space().status();
    e.family(
        "fakemail_storage_full",
        Gauge,
        "1 while new mail is refused for lack of disk space, by reason: min_free_space (free \
         space below --min-free-space; lifts by itself) or write_failed (a write to the store \
         failed; until a restart).",
    )
    .sample(&[("reason", "min_free_space")], u64::from(space.low))
    .sample(&[("reason", "write_failed")], u64::from(space.write_failed));
    e.family(
        "fakemail_storage_free_bytes",
        Gauge,
        "Bytes free on the data dir's filesystem (for unprivileged users), measured at most \
         every 100 ms.",
    );
    if let Some(free) = space.free {
        e.sample(&[], free);
    }
    e.family(
        "fakemail_uptime_seconds",
        Gauge,
        "Seconds since the server started.",
    )
    .sample(&[], stats.uptime.as_secs_f64());

    e.family(
        "fakemail_messages",
        Gauge,
        "Messages stored, each once however many copies it has.",
    )
    .sample(&[], stats.messages);
    e.family(
        "fakemail_message_bytes",
        Gauge,
        "Bytes of message source stored.",
    )
    .sample(&[], stats.bytes);
    e.family("fakemail_users", Gauge, "Registered accounts.")
        .sample(&[], stats.users);

    e.family(
        "fakemail_smtp_connections_total",
        Counter,
        "SMTP connections accepted, those refused over --smtp-max-connections too.",
    )
    .sample(&[], stats.smtp.connections);
    e.family(
        "fakemail_smtp_messages_total",
        Counter,
        "SMTP messages by result: accepted (250 after DATA: stored) or rejected (a 4xx or 5xx \
         answer to MAIL, RCPT or DATA).",
    )
    .sample(&[("result", "accepted")], stats.smtp.accepted)
    .sample(&[("result", "rejected")], stats.smtp.rejected);
    e.family(
        "fakemail_smtp_replies_total",
        Counter,
        "SMTP replies sent, by reply code.",
    );
    for (code, n) in svc.stats().smtp_replies() {
        e.sample(&[("code", &code.to_string())], n);
    }

    // The mail protocols' listeners, by protocol: SMTP's connections are also in
    // `fakemail_smtp_connections_total`, beside its message and reply counts.
    let (pop3, imap) = (svc.stats().pop3(), svc.stats().imap());
    e.family(
        "fakemail_connections_total",
        Counter,
        "Connections accepted by the mail protocols' listeners, by protocol, those refused over \
         the connection limit too.",
    )
    .sample(&[("protocol", "smtp")], stats.smtp.connections)
    .sample(&[("protocol", "imap")], imap.connections())
    .sample(&[("protocol", "pop3")], pop3.connections());
    e.family(
        "fakemail_commands_total",
        Counter,
        "Commands received by the IMAP and POP3 listeners, by protocol and command (unknown: \
         not a command of the protocol).",
    );
    for (protocol, counters) in [("imap", imap), ("pop3", pop3)] {
        for (command, n) in counters.commands() {
            e.sample(&[("protocol", protocol), ("command", command)], n);
        }
    }

    e.family(
        "fakemail_http_requests_total",
        Counter,
        "HTTP requests answered, by route template (unmatched: no route), method and status.",
    );
    for (route, method, status, n) in http.snapshot() {
        e.sample(
            &[
                ("route", route),
                ("method", method),
                ("status", &status.to_string()),
            ],
            n,
        );
    }

    let retention = svc.stats().retention();
    let (passes, failed) = retention.passes();
    e.family(
        "fakemail_sweeper_runs_total",
        Counter,
        "Passes of the retention sweeper (--retention, --max-messages), failed ones too.",
    )
    .sample(&[], passes);
    e.family(
        "fakemail_sweeper_failures_total",
        Counter,
        "Passes of the retention sweeper that failed (logged at error).",
    )
    .sample(&[], failed);
    e.family(
        "fakemail_retention_deleted_messages_total",
        Counter,
        "Messages deleted by reason: expired (the sweeper, --retention), cap (--max-messages, \
         after a delivery or in the sweeper), purge (POST /api/v1/admin/purge).",
    );
    for reason in Reason::ALL {
        e.sample(
            &[("reason", reason.name())],
            retention.removed_for(reason).messages,
        );
    }
    e.family(
        "fakemail_retention_deleted_bytes_total",
        Counter,
        "Bytes of message source deleted, by the reasons of \
         fakemail_retention_deleted_messages_total.",
    );
    for reason in Reason::ALL {
        e.sample(
            &[("reason", reason.name())],
            retention.removed_for(reason).bytes,
        );
    }

    let chaos = svc.chaos().stats();
    e.family(
        "fakemail_chaos_faults_total",
        Counter,
        "Faults injected by the fault-injection rules (--chaos), by stage.",
    );
    for stage in Stage::ALL {
        e.sample(&[("stage", stage.name())], chaos.by_stage[stage.index()]);
    }
    e.family(
        "fakemail_chaos_rules",
        Gauge,
        "Fault-injection rules in force.",
    )
    .sample(&[], chaos.rules as u64);
    Ok(e.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_template_is_longer_than_the_matcher_reads() {
        assert!(
            TABLE
                .iter()
                .all(|r| r.template.split('/').count() <= MAX_SEGMENTS + 1)
        );
    }

    /// A path for `template`, each parameter a sample value.
    fn sample_path(template: &str) -> String {
        template
            .split('/')
            .map(|s| if s.starts_with('{') { "1" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    }

    #[tokio::test]
    async fn the_router_answers_every_template_with_its_methods() {
        let dir = tempfile::tempdir().unwrap();
        let svc = crate::service::test_support::service(dir.path());
        let limits = super::super::Limits {
            max_body: 1 << 20,
            max_send_body: 1 << 20,
        };
        let ui = Some(crate::ui::Ui::new(None));
        let compat =
            crate::api::compat::Compat::new(svc.clone(), crate::config::CompatAuth::Token, 1 << 20);
        let routes = super::super::routes(svc, limits, ui, compat);
        for (i, route) in TABLE.iter().enumerate() {
            // A method no route serves: a path that exists answers 405 with the methods it
            // serves (an unknown one, 404).
            let path = sample_path(route.template);
            let res = warp::test::request()
                .method("PROPFIND")
                .path(&path)
                .reply(&routes)
                .await;
            assert_eq!(res.status(), 405, "{path}: {:?}", res.body());
            assert_eq!(res.headers()["allow"], route.allow, "{path}");
            assert_eq!(route_of(&path), Some(i), "{path}");
        }
        let res = warp::test::request()
            .path("/api/v1/nothing")
            .reply(&routes)
            .await;
        assert_eq!(res.status(), 404);
    }

    #[test]
    fn paths_match_templates_as_warp_does() {
        assert!(SEGMENTS.iter().all(|t| t.len() <= MAX_SEGMENTS));
        assert!(SEGMENTS.iter().any(|t| t.len() == MAX_SEGMENTS));
        let at = |path: &str| route_of(path).map_or(UNMATCHED, |i| TABLE[i].template);
        assert_eq!(at("/healthz"), "/healthz");
        assert_eq!(at("/"), "/");
        assert_eq!(at("/admin"), "/admin");
        assert_eq!(at("/admin/"), "/admin");
        assert_eq!(at("/ui/app.js"), "/ui/{file}");
        assert_eq!(at("/api/v1/messages"), "/api/v1/messages");
        assert_eq!(at("/api/v1/messages/42"), "/api/v1/messages/{id}");
        assert_eq!(at("/api/v1/messages/42/"), "/api/v1/messages/{id}");
        assert_eq!(
            at("/api/v1/messages/4%2F2/raw"),
            "/api/v1/messages/{id}/raw"
        );
        assert_eq!(
            at("/api/v1/admin/messages/7/attachments/0"),
            "/api/v1/admin/messages/{id}/attachments/{index}"
        );
        assert_eq!(at("/api/v1/admin/chaos/rules"), "/api/v1/admin/chaos/rules");
        assert_eq!(
            at("/api/v1/admin/chaos/rules/3"),
            "/api/v1/admin/chaos/rules/{id}"
        );
        for unmatched in [
            "//",
            "/ui",
            "/ui/",
            "/ui/a/b",
            "/api/v1/messages//raw",
            "/api/v1/messages/1//",
            "/api//v1/messages",
            "/healthz/x",
            "/Healthz",
            "/api/v1/mailboxes/inbox/messages/1",
            "/api/v1/admin/messages/1/attachments/0/x",
            "/api/v1/admin/messages/1/attachments/0/x/y/z/w",
            "/healthz//",
            "//healthz",
            "*",
        ] {
            assert_eq!(at(unmatched), UNMATCHED, "{unmatched:?}");
        }
    }

    #[test]
    fn the_pages_count_as_routes_only_when_served() {
        for pages in [true, false] {
            let c = HttpCounts::new(pages);
            c.count(&Method::GET, "/", StatusCode::OK);
            c.count(&Method::GET, "/ui/app.js", StatusCode::NOT_MODIFIED);
            let want = if pages {
                vec![("/", "GET", 200, 1), ("/ui/{file}", "GET", 304, 1)]
            } else {
                vec![(UNMATCHED, "GET", 200, 1), (UNMATCHED, "GET", 304, 1)]
            };
            assert_eq!(c.snapshot(), want);
        }
    }

    #[test]
    fn requests_are_counted_by_template_method_and_status() {
        let c = HttpCounts::default();
        c.count(&Method::GET, "/api/v1/messages/1", StatusCode::OK);
        c.count(&Method::GET, "/api/v1/messages/2", StatusCode::OK);
        c.count(&Method::GET, "/api/v1/messages/3", StatusCode::NOT_FOUND);
        c.count(&Method::POST, "/healthz", StatusCode::METHOD_NOT_ALLOWED);
        c.count(&Method::GET, "/wp-login.php", StatusCode::NOT_FOUND);
        let odd = Method::from_bytes(b"PROPFIND").unwrap();
        c.count(&odd, "/healthz", StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            c.snapshot(),
            [
                ("/api/v1/messages/{id}", "GET", 200, 2),
                ("/api/v1/messages/{id}", "GET", 404, 1),
                ("/healthz", "POST", 405, 1),
                ("/healthz", OTHER_METHOD, 405, 1),
                (UNMATCHED, "GET", 404, 1),
            ]
        );
    }
}
