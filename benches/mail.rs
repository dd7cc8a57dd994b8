//! Mail benchmark: `cargo bench --bench mail`.
//!
//! Starts the real server in-process (temporary store, port 0, its own runtime, as `fakemail
//! serve` would run it; the structure of `benches/auth.rs`) and drives it over real HTTP from a
//! separate client runtime. It prints:
//!
//! 1. REST send throughput: `POST /api/v1/messages` with a 2 KB text body and one recipient,
//!    [`SEND_CLIENTS`] concurrent clients, each signed in as its own sender;
//! 2. list-page latency of `GET /api/v1/mailboxes/inbox/messages?limit=50` (the first page, a
//!    page half-way down reached by cursor, and pages at random cursors) with [`SMALL`] and
//!    with `FAKEMAIL_BENCH_LARGE` (default 1,000,000) messages in one mailbox, and the ratio
//!    large/small, which should stay near 1 because a page costs O(page);
//! 3. the time to sweep `FAKEMAIL_BENCH_SWEEP` (default 100,000) expired messages with
//!    [`retention::purge_older_than`], alone and while [`SEND_CLIENTS`] clients send, and the
//!    send throughput meanwhile next to the one without a sweep;
//! 4. the resident set size of the process during and after the large fill, with the default
//!    default sled cache (`--cache-size`), and at the end of the run, after the send and sweep runs.
//!
//! Mailboxes are filled through the library, not over HTTP (a million HTTP sends would take
//! too long): the list stores with `Service::deliver` (the path REST and SMTP share) from one
//! thread per core; the expired messages with `Store::insert_message` and a back-dated
//! arrival time, so that the sweep removes exactly them and never the mail sent meanwhile.
//!
//! `FAKEMAIL_BENCH_LARGE=0` skips the large store; a smaller value makes a quick run. Nothing
//! is asserted: timings depend on the machine. The default run takes a few minutes on 2 cores
//! and about 2 GB of disk in the temporary dir.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Server, ms};
use fakemail::config::Config;
use fakemail::retention;
use fakemail::service::Service;
use fakemail::service::mail::{Delivery, Envelope};
use fakemail::service::mime;
use fakemail::store::Store;
use fakemail::store::keys;
use fakemail::store::mail::{EntryRecord, INBOX, Mailbox, MessageRecord};
use fakemail::time::Timestamp;
use serde_json::json;
use tokio::runtime::Runtime;

const PASSWORD: &str = "correct horse battery";
/// PBKDF2 iterations: accounts are only set-up here, so make them cheap.
const ITERATIONS: u32 = 1_000;
/// Concurrent sending clients.
const SEND_CLIENTS: usize = 16;
/// Messages per timed send run.
const SENDS: usize = 3_000;
/// Untimed sends before the first timed run (connections, caches).
const WARMUP_SENDS: usize = 200;
/// Characters of the text body of a REST send.
const TEXT_BYTES: usize = 2_048;
/// Messages in the small list mailbox.
const SMALL: usize = 1_000;
/// Default messages in the large list mailbox (`FAKEMAIL_BENCH_LARGE`).
const LARGE: usize = 1_000_000;
/// Default expired messages per sweep (`FAKEMAIL_BENCH_SWEEP`).
const SWEEP: usize = 100_000;
/// Listing page size.
const PAGE: usize = 50;
/// Timed requests per list-latency row.
const LIST_SAMPLES: usize = 1_000;
/// The address the list mailboxes belong to.
const LIST_OWNER: &str = "bob@example.test";
/// The one recipient of every REST send.
const SEND_RCPT: &str = "rcpt@example.test";
/// The captured address the expired messages were sent to.
const EXPIRED_RCPT: &str = "expired@example.test";

/// The server, with cheap hashing and no retention sweeper of its own.
fn start_server() -> Server {
    let mut config = Config::default();
    config.service.password_iterations = ITERATIONS;
    // The benchmark sweeps at times of its choosing; the server's own sweeper (default
    // retention 7 days) would otherwise race it for the back-dated messages.
    config.retention = None;
    Server::start(config)
}

/// A client of the server at `base`, signed in when `token` is set.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(addr: SocketAddr) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: format!("http://{addr}"),
            token: String::new(),
        }
    }

    async fn post(&self, path: &str, body: &serde_json::Value, want: u16) -> bytes::Bytes {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        let body = res.bytes().await.expect("body");
        assert_eq!(
            status,
            want,
            "POST {path}: {}",
            String::from_utf8_lossy(&body)
        );
        body
    }

    /// Registers `email` and returns a client signed in as it.
    async fn signed_in(addr: SocketAddr, email: &str) -> Client {
        let mut c = Client::new(addr);
        let creds = json!({"email": email, "password": PASSWORD});
        c.post("/api/v1/auth/register", &creds, 201).await;
        let body = c.post("/api/v1/auth/login", &creds, 200).await;
        let v: serde_json::Value = serde_json::from_slice(&body).expect("login JSON");
        c.token = v["token"].as_str().expect("token").to_owned();
        c
    }

    /// One `GET /api/v1/mailboxes/inbox/messages?limit=50`, timed from send to the end of the
    /// body; also returns the number of messages and the next cursor.
    async fn list(&self, cursor: Option<&str>) -> (Duration, usize, Option<String>) {
        let mut url = format!("{}/api/v1/mailboxes/inbox/messages?limit={PAGE}", self.base);
        if let Some(c) = cursor {
            url.push_str("&cursor=");
            url.push_str(c);
        }
        let t = Instant::now();
        let res = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("list");
        let status = res.status().as_u16();
        let body = res.bytes().await.expect("list body");
        let elapsed = t.elapsed();
        assert_eq!(status, 200, "GET {url}: {}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).expect("page JSON");
        let n = v["messages"].as_array().map_or(0, Vec::len);
        let next = v["next_cursor"].as_str().map(str::to_owned);
        (elapsed, n, next)
    }
}

/// The senders of the send runs, one per client.
async fn senders(addr: SocketAddr) -> Vec<Client> {
    let mut out = Vec::new();
    for i in 0..SEND_CLIENTS {
        out.push(Client::signed_in(addr, &format!("sender-{i}@example.test")).await);
    }
    out
}

/// The body of a REST send: about 2 KB of text, one recipient.
fn send_body(n: usize) -> serde_json::Value {
    let line = "The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs.\n";
    let text: String = line.repeat(TEXT_BYTES / line.len() + 1)[..TEXT_BYTES].to_owned();
    json!({"to": [SEND_RCPT], "subject": format!("Benchmark message {n}"), "text": text})
}

/// Sends from every client until `count` messages went (`Some`) or until `stop` is set;
/// returns the elapsed time and the number sent.
async fn send_load(
    clients: &[Client],
    count: Option<usize>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
) -> (Duration, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in clients {
        let (c, next, stop, sent) = (c.clone(), next.clone(), stop.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if count.is_some_and(|n| i >= n) || stop.load(Ordering::Relaxed) {
                    return;
                }
                c.post("/api/v1/messages", &send_body(i), 201).await;
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("send task");
    }
    (start.elapsed(), sent.load(Ordering::Relaxed))
}

/// Messages per second of one fixed-count send run.
async fn send_rate(clients: &[Client], count: usize) -> f64 {
    let (elapsed, n) = send_load(
        clients,
        Some(count),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    )
    .await;
    n as f64 / elapsed.as_secs_f64()
}

/// A small message (about 300 bytes of source) for the library fills.
fn small_raw(to: &str, n: usize) -> Vec<u8> {
    format!(
        "From: Load Generator <load@example.test>\r\n\
         To: {to}\r\n\
         Subject: Fill message {n}\r\n\
         Date: Tue, 24 Nov 2026 20:00:00 +0000\r\n\
         Message-ID: <fill-{n}@example.test>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Message {n} of the fill. Short enough to keep a million on disk small.\r\n"
    )
    .into_bytes()
}

/// Delivers `n` small messages to `to` with `Service::deliver` from one thread per core (each
/// waiting on `rt` for its delivery), then
/// flushes (so that sled's background writes do not spill into what is measured next).
/// Calls `progress(done)` from the first thread every `every` of its messages. Returns the
/// elapsed time, flush included, and the lowest and highest entry id delivered.
fn fill_deliver(
    rt: &tokio::runtime::Handle,
    service: &Service,
    to: &str,
    n: usize,
    every: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> (Duration, u64, u64) {
    let threads = cores();
    let next = AtomicUsize::new(0);
    let lo = AtomicU64::new(u64::MAX);
    let hi = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (next, lo, hi) = (&next, &lo, &hi);
            s.spawn(move || {
                let mut mine = 0;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    let d = rt
                        .block_on(service.deliver(Delivery {
                            raw: small_raw(to, i),
                            envelope: Envelope {
                                from: "load@example.test".into(),
                                to: vec![to.to_owned()],
                            },
                            sender: None,
                        }))
                        .expect("deliver");
                    lo.fetch_min(d.entries[0], Ordering::Relaxed);
                    hi.fetch_max(d.entries[0], Ordering::Relaxed);
                    mine += 1;
                    if t == 0 && mine % every == 0 {
                        progress(next.load(Ordering::Relaxed).min(n));
                    }
                }
            });
        }
    });
    service.store().flush().expect("flush");
    (
        start.elapsed(),
        lo.load(Ordering::Relaxed),
        hi.load(Ordering::Relaxed),
    )
}

/// Inserts `n` small messages to [`EXPIRED_RCPT`] that arrived `age` ago, with
/// `Store::insert_message` from one thread per core, then flushes. Returns the elapsed time,
/// flush included.
fn fill_expired(store: &Store, n: usize, age: Duration) -> Duration {
    let raw = small_raw(EXPIRED_RCPT, 0);
    let summary = mime::summarize(&raw);
    let owner = store.ensure_owner(EXPIRED_RCPT).expect("owner");
    let received_at = Timestamp(Timestamp::now().0 - age.as_secs());
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cores() {
            let (next, raw, summary) = (&next, &raw, &summary);
            s.spawn(move || {
                while next.fetch_add(1, Ordering::Relaxed) < n {
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
                        received_at,
                        size: raw.len() as u64,
                        envelope_from: "load@example.test".into(),
                        envelope_to: vec![EXPIRED_RCPT.into()],
                        from: summary.from.clone().unwrap_or(Mailbox::default()),
                        to: summary.to.clone(),
                        cc: vec![],
                        reply_to: vec![],
                        subject: summary.subject.clone(),
                        snippet: summary.snippet.clone(),
                        message_id: summary.message_id.clone(),
                        has_attachments: false,
                        entries: vec![entry.id],
                    };
                    store
                        .insert_message(&record, raw, &[entry], &[])
                        .expect("insert");
                }
            });
        }
    });
    store.flush().expect("flush");
    start.elapsed()
}

/// Sweeps every message older than a day, as the retention sweeper would with `--retention
/// 1d`; returns the elapsed time and the number of messages removed.
fn sweep(store: &Store) -> (Duration, u64) {
    let cutoff = retention::cutoff(Timestamp::now(), Duration::from_secs(86_400));
    let start = Instant::now();
    let removed =
        retention::purge_older_than(store, cutoff, false, None, &mut |_| {}).expect("purge");
    (start.elapsed(), removed.messages)
}

/// Latency figures of one list run.
#[derive(Clone, Copy)]
struct Latency {
    p50: Duration,
    p99: Duration,
}

/// Which page a list run asks for.
#[derive(Clone, Copy)]
enum Which {
    First,
    /// Always the same page, half-way down the mailbox.
    Middle,
    /// A page at a random place each time.
    Random,
}

const WHICH: [(Which, &str); 3] = [
    (Which::First, "first page"),
    (Which::Middle, "page half-way down (cursor)"),
    (Which::Random, "page at a random cursor"),
];

/// [`LIST_SAMPLES`] sequential list requests for the page `which` of a mailbox whose entry ids
/// span `lo..=hi`. Cursors are opaque to clients; the benchmark makes them with the server's
/// own encoding so it can jump deep into a mailbox without paging there.
async fn sample_list(client: &Client, which: Which, lo: u64, hi: u64) -> Latency {
    let mut rng = SplitMix(0x5eed);
    let cursor = |rng: &mut SplitMix| match which {
        Which::First => None,
        Which::Middle => Some(keys::encode_cursor(lo + (hi - lo) / 2)),
        // At least a page above the lowest id, so every page is full.
        Which::Random => Some(keys::encode_cursor(
            lo + PAGE as u64 * 4 + rng.next() % (hi - lo - PAGE as u64 * 4 + 1),
        )),
    };
    for _ in 0..50 {
        client.list(cursor(&mut rng).as_deref()).await; // open and warm the connection
    }
    let mut v = Vec::with_capacity(LIST_SAMPLES);
    for _ in 0..LIST_SAMPLES {
        let (t, n, _) = client.list(cursor(&mut rng).as_deref()).await;
        assert_eq!(n, PAGE, "a full page");
        v.push(t);
    }
    v.sort();
    // Nearest-rank percentiles.
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Latency {
        p50: rank(0.50),
        p99: rank(0.99),
    }
}

/// A deterministic pseudo-random sequence (SplitMix64), so every run asks for the same pages.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Fills a fresh server's [`LIST_OWNER`] inbox with `n` messages and measures every list row.
fn list_run(clients: &Runtime, n: usize, label: &str) -> ListRun {
    let server = start_server();
    let owner = clients.block_on(Client::signed_in(server.addr, LIST_OWNER));
    let rss_before = rss();
    let every = (n / 10 / cores()).max(1);
    let fill_start = Instant::now();
    let progress = |done: usize| {
        if n >= 100_000 {
            let s = fill_start.elapsed().as_secs_f64();
            println!(
                "  {label}: {done:>9} delivered  {s:>6.1} s  {:>7.0} msg/s  RSS {}",
                done as f64 / s,
                mib(rss())
            );
        }
    };
    let (fill, lo, hi) = fill_deliver(
        clients.handle(),
        &server.service,
        LIST_OWNER,
        n,
        every,
        &progress,
    );
    let rss_after = rss();
    let mut rows = Vec::new();
    for (which, _) in WHICH {
        rows.push(clients.block_on(sample_list(&owner, which, lo, hi)));
    }
    let disk = dir_size(server.dir.path());
    let counted = server.store().message_count().expect("count");
    drop(server);
    ListRun {
        messages: counted,
        fill,
        rss_before,
        rss_after,
        rss_listed: rss(),
        disk,
        rows,
    }
}

/// What one list run measured.
struct ListRun {
    messages: u64,
    fill: Duration,
    rss_before: u64,
    rss_after: u64,
    rss_listed: u64,
    disk: u64,
    rows: Vec<Latency>,
}

/// A status line of `/proc/self/status`, in bytes (0 when unavailable).
fn proc_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn rss() -> u64 {
    proc_status("VmRSS:")
}

/// Bytes of the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn mib(b: u64) -> String {
    format!("{:.0} MiB", b as f64 / f64::from(1 << 20))
}

/// A count from the environment (`_` and `,` allowed as separators), or `default`.
fn env_count(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v.replace(['_', ','], "").parse().unwrap_or_else(|_| {
            panic!("{name} must be a whole number, not `{v}`");
        }),
        Err(_) => default,
    }
}

/// What the send and sweep runs measured.
struct SendRun {
    /// msg/s on a store holding only the mail sent so far.
    empty: f64,
    /// Seconds to insert the first batch of expired messages.
    expired_fill: Duration,
    /// msg/s with the expired messages stored and no sweep running.
    waiting: f64,
    sweep_alone: (Duration, u64),
    sweep_loaded: (Duration, u64),
    /// msg/s while the second sweep ran.
    during: f64,
}

/// Send throughput, then the sweep alone and under send load, on one server.
fn send_run(clients: &Runtime, sweep_n: usize) -> SendRun {
    let server = start_server();
    let store = server.store().clone();
    let senders = clients.block_on(senders(server.addr));
    clients.block_on(send_rate(&senders, WARMUP_SENDS));
    let empty = clients.block_on(send_rate(&senders, SENDS));
    println!("  send, empty store: {empty:.0} msg/s");
    let expired_fill = fill_expired(&store, sweep_n, Duration::from_secs(30 * 86_400));
    println!(
        "  {sweep_n} expired messages inserted in {:.1} s",
        expired_fill.as_secs_f64()
    );
    let waiting = clients.block_on(send_rate(&senders, SENDS));
    println!("  send, expired messages waiting: {waiting:.0} msg/s");
    let sweep_alone = sweep(&store);
    println!(
        "  sweep alone: {} messages in {:.2} s",
        sweep_alone.1,
        sweep_alone.0.as_secs_f64()
    );
    fill_expired(&store, sweep_n, Duration::from_secs(30 * 86_400));
    let (sweep_loaded, during) = clients.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let load = tokio::spawn({
            let (senders, stop, sent) = (senders.clone(), stop.clone(), sent.clone());
            async move { send_load(&senders, None, stop, sent).await }
        });
        // Let the clients reach full speed before the sweep starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = sent.load(Ordering::Relaxed);
        let s = store.clone();
        let swept = tokio::task::spawn_blocking(move || sweep(&s))
            .await
            .expect("sweep task");
        let during = sent.load(Ordering::Relaxed) - before;
        stop.store(true, Ordering::Relaxed);
        load.await.expect("load task");
        (swept, during as f64 / swept.0.as_secs_f64())
    });
    println!(
        "  sweep under load: {} messages in {:.2} s, {during:.0} msg/s sent meanwhile",
        sweep_loaded.1,
        sweep_loaded.0.as_secs_f64()
    );
    SendRun {
        empty,
        expired_fill,
        waiting,
        sweep_alone,
        sweep_loaded,
        during,
    }
}

fn main() {
    let large = env_count("FAKEMAIL_BENCH_LARGE", LARGE);
    let sweep_n = env_count("FAKEMAIL_BENCH_SWEEP", SWEEP);
    let clients = common::client_runtime();
    let started = Instant::now();
    let arenas = std::env::var("MALLOC_ARENA_MAX")
        .map_or_else(|_| String::new(), |v| format!(", MALLOC_ARENA_MAX={v}"));
    println!(
        "fakemail {} mail benchmark: {} cores, server and clients in one process, HTTP over loopback{arenas}",
        env!("CARGO_PKG_VERSION"),
        cores()
    );
    if cfg!(debug_assertions) {
        println!("warning: debug build; run `cargo bench --bench mail` for meaningful figures");
    }

    // The large store first, so that the RSS measured after its fill belongs to it and not to
    // what earlier runs left in the allocator.
    println!();
    println!(
        "filling one mailbox through Service::deliver ({} threads)",
        cores()
    );
    let big = (large > 0).then(|| list_run(&clients, large, "large"));
    let small = list_run(&clients, SMALL, "small");
    println!();
    println!(
        "POST /api/v1/messages, {TEXT_BYTES}-byte text, 1 recipient, {SEND_CLIENTS} clients, {SENDS} per run"
    );
    let send = send_run(&clients, sweep_n);
    let rss_end = rss();

    println!();
    println!(
        "=== send throughput and retention sweep ({SEND_CLIENTS} clients, 1 recipient, {TEXT_BYTES}-byte text)"
    );
    println!("{:<58}  {:>9}  {:>7}", "", "msg/s", "x");
    let row = |name: &str, rate: f64| {
        println!("{name:<58}  {rate:>9.0}  {:>7.2}", rate / send.waiting);
    };
    row("send, store holding only the mail sent", send.empty);
    row(
        &format!("send, {sweep_n} expired messages stored, no sweep"),
        send.waiting,
    );
    row(
        &format!(
            "send while {} expired messages are swept",
            send.sweep_loaded.1
        ),
        send.during,
    );
    println!("{:<58}  {:>9}  {:>7}", "", "seconds", "msg/s");
    let sweep_row = |name: &str, (t, n): (Duration, u64)| {
        println!(
            "{name:<58}  {:>9.2}  {:>7.0}",
            t.as_secs_f64(),
            n as f64 / t.as_secs_f64()
        );
    };
    sweep_row(
        &format!(
            "sweep {} expired messages, nothing else running",
            send.sweep_alone.1
        ),
        send.sweep_alone,
    );
    sweep_row(
        &format!(
            "sweep {} expired messages, {SEND_CLIENTS} clients sending",
            send.sweep_loaded.1
        ),
        send.sweep_loaded,
    );
    sweep_row(
        &format!("(insert {sweep_n} expired messages, Store::insert_message)"),
        (send.expired_fill, sweep_n as u64),
    );

    println!();
    println!(
        "=== GET /api/v1/mailboxes/inbox/messages?limit={PAGE}, {LIST_SAMPLES} sequential requests per row (ms)"
    );
    let cols = match &big {
        Some(b) => format!("{} messages", b.messages),
        None => "(large skipped)".into(),
    };
    println!(
        "{:<30}  {:>17}  {cols:>17}  {:>15}",
        "",
        format!("{} messages", small.messages),
        "large / small"
    );
    println!(
        "{:<30}  {:>8} {:>8}  {:>8} {:>8}  {:>7} {:>7}",
        "page", "p50", "p99", "p50", "p99", "p50", "p99"
    );
    for (i, (_, name)) in WHICH.iter().enumerate() {
        let s = small.rows[i];
        match &big {
            Some(b) => {
                let l = b.rows[i];
                let x = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
                println!(
                    "{name:<30}  {:>8} {:>8}  {:>8} {:>8}  {:>7.2} {:>7.2}",
                    ms(s.p50),
                    ms(s.p99),
                    ms(l.p50),
                    ms(l.p99),
                    x(l.p50, s.p50),
                    x(l.p99, s.p99)
                );
            }
            None => println!("{name:<30}  {:>8} {:>8}", ms(s.p50), ms(s.p99)),
        }
    }

    if let Some(b) = &big {
        println!();
        println!(
            "=== the large store (sled cache {}, the default --cache-size)",
            mib(Config::default().cache_size)
        );
        let line = |name: &str, value: String| println!("{name:<48}  {value:>12}");
        line(
            &format!("fill: Service::deliver, {} threads, then flush", cores()),
            format!("{:.1} s", b.fill.as_secs_f64()),
        );
        line(
            "fill rate",
            format!("{:.0} msg/s", b.messages as f64 / b.fill.as_secs_f64()),
        );
        line("store on disk", mib(b.disk));
        line("RSS before the fill", mib(b.rss_before));
        line("RSS after the fill", mib(b.rss_after));
        line("RSS after the list runs", mib(b.rss_listed));
    }
    println!(
        "{:<48}  {:>12}  (peak {})",
        "RSS at the end, all servers stopped",
        mib(rss_end),
        mib(proc_status("VmHWM:"))
    );

    println!();
    println!("total time {:.1} s", started.elapsed().as_secs_f64());
}
