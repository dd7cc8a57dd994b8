//! Search benchmark: `cargo bench --bench search`.
//!
//! Fills a store with `FAKEMAIL_BENCH_SEARCH` (default 100,000) small messages through the
//! library (`Store::insert_message` from one thread per core; one in a hundred tagged), then
//! times the operator listing with a `q` in the search grammar, through the service as the
//! HTTP handler calls it (parse, then the scan on the blocking pool):
//!
//! 1. the first page of 50 for a query that matches early (most messages), with a record
//!    term and with a term that reads each message's text;
//! 2. a query that matches nothing: the first request, which stops at the scan budget (5,000
//!    messages) with a cursor, and the whole walk through the store, request after request,
//!    for a record term (`from:`), a tag and a bare word (which reads every message's text);
//! 3. delivery latency with `Service::deliver` alone and while searches walk the store, to
//!    show that a search holds no lock a delivery waits for.
//!
//! Nothing is asserted: timings depend on the machine.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Server, ms};
use fakemail::config::Config;
use fakemail::service::Service;
use fakemail::service::filter::MessageFilter;
use fakemail::service::mail::{Delivery, Envelope};
use fakemail::service::mime;
use fakemail::service::operator::AdminQuery;
use fakemail::service::search::Search;
use fakemail::store::Store;
use fakemail::store::mail::{EntryRecord, INBOX, MessageRecord};
use fakemail::time::Timestamp;
use tokio::runtime::Runtime;

const RCPT: &str = "bob@example.test";
/// Deliveries timed for the latency rows.
const DELIVERIES: usize = 200;

fn raw(n: usize) -> Vec<u8> {
    format!(
        "From: Shop {n} <shop{n}@example.test>\r\n\
         To: {RCPT}\r\n\
         Subject: Order {n} confirmed\r\n\
         Message-ID: <order-{n}@example.test>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Thank you for order {n}. Your parcel ships tomorrow; track it with code {n}.\r\n"
    )
    .into_bytes()
}

/// Inserts `n` messages from one thread per core; every hundredth is tagged `sample`.
fn fill(store: &Store, n: usize) -> Duration {
    let owner = store.ensure_owner(RCPT).expect("owner");
    let next = AtomicUsize::new(0);
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cores {
            let next = &next;
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    let raw = raw(i);
                    let summary = mime::summarize(&raw);
                    let id = store.generate_id().expect("id");
                    let entry = EntryRecord {
                        id: store.generate_id().expect("id"),
                        message: id,
                        owner,
                        mailbox: INBOX,
                        read: false,
                        starred: false,
                        bcc: None,
                    };
                    let record = MessageRecord {
                        id,
                        received_at: Timestamp::now(),
                        size: raw.len() as u64,
                        envelope_from: "shop@example.test".into(),
                        envelope_to: vec![RCPT.into()],
                        from: summary.from.unwrap_or_default(),
                        to: summary.to,
                        cc: vec![],
                        reply_to: vec![],
                        subject: summary.subject,
                        snippet: summary.snippet,
                        message_id: summary.message_id,
                        has_attachments: false,
                        entries: vec![entry.id],
                    };
                    let tags = if i.is_multiple_of(100) {
                        vec!["sample".to_owned()]
                    } else {
                        vec![]
                    };
                    store
                        .insert_message(&record, &raw, &[entry], &tags)
                        .expect("insert");
                }
            });
        }
    });
    store.flush().expect("flush");
    start.elapsed()
}

fn query(q: &str, cursor: Option<String>) -> AdminQuery {
    AdminQuery {
        filter: MessageFilter::default().with_search(Search::parse(q, "q").expect("query")),
        limit: Some(50),
        cursor,
    }
}

/// The first page: its time, how many it found, and whether it gave a cursor.
fn first_page(rt: &Runtime, svc: &Service, q: &str) -> (Duration, usize) {
    // Best of three: the first run warms the cache.
    let mut best = Duration::MAX;
    let mut found = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let page = rt.block_on(svc.admin_list(&query(q, None))).expect("list");
        best = best.min(start.elapsed());
        found = page.messages.len();
    }
    (best, found)
}

/// Every page, request after request, until no cursor is left: the time and the requests.
fn walk(rt: &Runtime, svc: &Service, q: &str) -> (Duration, usize) {
    let start = Instant::now();
    let (mut cursor, mut requests) = (None, 0);
    loop {
        let page = rt
            .block_on(svc.admin_list(&query(q, cursor.take())))
            .expect("list");
        requests += 1;
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return (start.elapsed(), requests),
        }
    }
}

/// Delivery latencies (p50, max) of [`DELIVERIES`] messages delivered one after another.
fn deliveries(rt: &Runtime, svc: &Service) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(DELIVERIES);
    for i in 0..DELIVERIES {
        let start = Instant::now();
        rt.block_on(svc.deliver(Delivery {
            raw: raw(1_000_000 + i),
            envelope: Envelope {
                from: "shop@example.test".into(),
                to: vec![RCPT.to_owned()],
            },
            sender: None,
        }))
        .expect("deliver");
        times.push(start.elapsed());
    }
    times.sort();
    (times[times.len() / 2], times[times.len() - 1])
}

fn main() {
    let n = std::env::var("FAKEMAIL_BENCH_SEARCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let server = Server::start(Config {
        retention: None,
        ..Config::default()
    });
    let svc = server.service.clone();
    let rt = Runtime::new().expect("runtime");
    println!("filling {n} messages...");
    let took = fill(server.store(), n);
    println!("filled in {:.1} s\n", took.as_secs_f64());

    println!("| operator listing, q, limit=50, {n} messages | ms | found |");
    println!("|---|---|---|");
    for (label, q) in [
        ("first page, record term matching early", "subject:order"),
        (
            "first page, bare phrase matching early (in the snippet)",
            "\"parcel ships\"",
        ),
        (
            "first request, record term matching nothing (stops at the budget)",
            "from:nobody",
        ),
        (
            "first request, text term matching nothing (stops at the budget)",
            "zzzz",
        ),
    ] {
        let (t, found) = first_page(&rt, &svc, q);
        println!("| {label} (`{q}`) | {} | {found} |", ms(t));
    }
    println!();
    println!("| whole walk of a query matching nothing | ms | requests |");
    println!("|---|---|---|");
    for q in ["from:nobody", "tag:nothing", "-is:tagged is:tagged", "zzzz"] {
        let (t, requests) = walk(&rt, &svc, q);
        println!("| `{q}` | {} | {requests} |", ms(t));
    }

    println!();
    let (p50, max) = deliveries(&rt, &svc);
    let searching = AtomicBool::new(true);
    let (busy_p50, busy_max) = std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while searching.load(Ordering::Relaxed) {
                    walk(&rt, &svc, "zzzz");
                }
            });
        }
        let r = deliveries(&rt, &svc);
        searching.store(false, Ordering::Relaxed);
        r
    });
    println!("| Service::deliver, one at a time (ms) | p50 | max |");
    println!("|---|---|---|");
    println!("| alone | {} | {} |", ms(p50), ms(max));
    println!(
        "| while 2 text searches walk the store | {} | {} |",
        ms(busy_p50),
        ms(busy_max)
    );
}
