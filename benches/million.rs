//! The million-message figures: `cargo bench --bench million` (and the soak:
//! `cargo bench --bench million -- soak`).
//!
//! Unlike the other benchmarks, this one runs the release `fakemail` binary as a separate
//! process (`fakemail serve` on a temporary data dir and free ports, POP3 and IMAP off, no
//! retention unless a row needs it) and drives it with postfix's `smtp-source` as the SMTP load
//! generator, against postfix's `smtp-sink` (accepts and discards) as the null server of the
//! same machine. `benches/postfix-tools.sh` fetches both into `<target dir>/postfix` without
//! installing postfix; `POSTFIX_ROOT` names another place. Without them, the SMTP loads are
//! sent by a Rust client of this file and the rows that compare with the null server are
//! skipped.
//!
//! Each row prints its figure beside its goal and the ratio, oriented so that >= 1 means the
//! goal is met:
//!
//! - P1: SMTP ingest (2 KB messages, 16 sessions, every `250` once durable) as a fraction of
//!   the null server's rate, three rounds taking turns at going first, medians;
//! - P2: REST send (2 KB of text, 16 clients, every `201` once durable), messages per second;
//! - P4: sweep of 100,000 expired messages (`POST /api/v1/admin/purge`, the function the
//!   sweeper runs) alone, and the REST send rate while it runs next to the rate before it;
//! - P5: resident memory of the server with `MILLION_N` messages stored, after the load and
//!   while the operator view is paged through;
//! - P6: restart (the server stopped with SIGTERM, started again) to `/readyz` 200, at a tenth
//!   of `MILLION_N` and at `MILLION_N`;
//! - P10: disk used by the data dir next to the bytes of message source stored.
//!
//! `MILLION_N` (default 1,000,000) sets the store size; `MILLION_N=100000` makes a quick run.
//! A full run takes about 10 minutes on 2 cores and 6 GB of disk under the target dir.
//!
//! The soak sends 2 KB messages over SMTP at a steady rate (`SOAK_RATE`, default half of the
//! ingest rate measured first) for `SOAK_MINUTES` (default 30) to a server keeping mail for
//! `SOAK_RETENTION` (default 60s) and sweeping every 10 s; it prints the resident memory, the
//! messages stored and the errors every 10 s, and checks that the memory of the second half
//! stays within 10%, that nothing failed and that every accepted message is stored or was
//! deleted by retention. Neither runs in CI: they take long and depend on the machine.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Concurrent SMTP sessions and REST clients.
const SESSIONS: usize = 16;
/// Bytes of the body of every message (smtp-source's `-l`).
const MSG_BYTES: usize = 2_048;
/// The admin token every server of the run is started with.
const ADMIN_TOKEN: &str = "million-bench-admin-token";
/// Expired messages per sweep (fewer when `MILLION_N` is smaller).
const SWEEP: u64 = 100_000;
/// Rounds of the P1 comparison.
const P1_ROUNDS: usize = 3;
/// REST sends per P2 run, and runs.
const P2_SENDS: u64 = 10_000;
const P2_RUNS: usize = 3;
/// Restarts per P6 row.
const RESTARTS: usize = 3;
/// How long P5 pages through the operator view.
const LIST_TIME: Duration = Duration::from_secs(30);
const PASSWORD: &str = "correct horse battery";

fn main() {
    let soak = std::env::args().any(|a| a == "soak");
    let target = target_dir();
    let tools = Tools::find(&target);
    if tools.is_none() {
        println!(
            "postfix's smtp-source and smtp-sink were not found in {}: run \
             benches/postfix-tools.sh (or set POSTFIX_ROOT to where postfix's package is \
             unpacked). The SMTP loads are sent by this bench's own client instead, and P1 \
             (which needs the null server) is skipped.",
            Tools::root(&target).display()
        );
    }
    let work = tempfile::Builder::new()
        .prefix("million-")
        .tempdir_in(&target)
        .expect("work dir under the target dir");
    if soak {
        run_soak(tools.as_ref(), work.path());
    } else {
        run_figures(tools.as_ref(), work.path());
    }
}

// ----- the figures ---------------------------------------------------------------------------

/// One line of the final table.
struct Row {
    id: &'static str,
    measure: String,
    figure: String,
    goal: String,
    /// >= 1 when the goal is met.
    ratio: Option<f64>,
}

fn run_figures(tools: Option<&Tools>, work: &Path) {
    let n: u64 = env_num("MILLION_N", 1_000_000);
    let small = (n / 10).max(1);
    let sweep = SWEEP.min(n);
    let rt = common::client_runtime();
    let mut rows = Vec::new();
    let started = Instant::now();
    println!(
        "million: {n} messages of {MSG_BYTES} B, {SESSIONS} sessions; load average {}",
        loadavg()
    );

    // P4 on a server of its own: purging by age removes everything older, the big store too.
    {
        let mut server = Fakemail::start(&work.join("sweep"), &[]);
        let senders = rt.block_on(senders(server.http));
        load(tools, &server, sweep);
        std::thread::sleep(Duration::from_millis(2_500));
        let t = Instant::now();
        let deleted = purge(&server, 2);
        let alone = t.elapsed();
        assert!(deleted >= sweep, "the sweep deleted {deleted} of {sweep}");
        println!(
            "P4 sweep of {deleted} expired messages alone: {:.2} s",
            alone.as_secs_f64()
        );
        rows.push(Row {
            id: "P4",
            measure: format!("sweep of {sweep} expired messages, alone"),
            figure: format!("{:.2} s", alone.as_secs_f64()),
            goal: "<= 2 s".into(),
            ratio: Some(2.0 / alone.as_secs_f64()),
        });

        // Again, with the senders sending before and during the sweep.
        load(tools, &server, sweep);
        let loaded = Instant::now();
        std::thread::sleep(Duration::from_millis(1_500));
        let (before, during, swept) = rt.block_on(async {
            let stop = Arc::new(AtomicBool::new(false));
            let sent = Arc::new(AtomicU64::new(0));
            let load = tokio::spawn(send_load(senders.clone(), None, stop.clone(), sent.clone()));
            let t0 = Instant::now();
            tokio::time::sleep(Duration::from_secs(5)).await;
            let before = rate(sent.load(Ordering::Relaxed), t0.elapsed());
            // Messages received before `loaded + 1 s` at the latest: the sweep's, and perhaps
            // the first of the sends.
            let age = loaded.elapsed().as_secs() - 1;
            let (s1, t1) = (sent.load(Ordering::Relaxed), Instant::now());
            let port = server.http;
            let deleted = tokio::task::spawn_blocking(move || purge_at(port, age))
                .await
                .expect("purge");
            let swept = t1.elapsed();
            let during = rate(sent.load(Ordering::Relaxed) - s1, swept);
            stop.store(true, Ordering::Relaxed);
            load.await.expect("send load");
            println!(
                "P4 sweep of {deleted} messages while {SESSIONS} clients send: {:.2} s; sends \
                 {before:.0} msg/s before, {during:.0} msg/s during",
                swept.as_secs_f64()
            );
            (before, during, swept)
        });
        rows.push(Row {
            id: "P4",
            measure: format!(
                "REST send rate during that sweep ({:.1} s) / before",
                swept.as_secs_f64()
            ),
            figure: format!("{:.2} ({during:.0} / {before:.0} msg/s)", during / before),
            goal: ">= 0.8".into(),
            ratio: Some(during / before / 0.8),
        });
        server.stop();
    }
    std::fs::remove_dir_all(work.join("sweep")).expect("remove the sweep store");

    // The big store.
    let dir = work.join("store");
    let mut server = Fakemail::start(&dir, &[]);
    let senders = rt.block_on(senders(server.http));
    let mut restart_small = None;
    // P1: the null server and fakemail take turns at going first.
    if let Some(tools) = tools {
        let (mut sink_rates, mut fm_rates) = (Vec::new(), Vec::new());
        for round in 0..P1_ROUNDS {
            for fakemail_turn in [round % 2 == 1, round % 2 == 0] {
                if fakemail_turn {
                    let before = server.metric("fakemail_smtp_messages_total{result=\"accepted\"}");
                    let t = tools.source(server.smtp, small);
                    let after = server.metric("fakemail_smtp_messages_total{result=\"accepted\"}");
                    assert_eq!(
                        (after - before) as u64,
                        small,
                        "fakemail accepted every message"
                    );
                    fm_rates.push(rate(small, t));
                    println!("P1 round {round}: fakemail {:.0} msg/s", rate(small, t));
                    if restart_small.is_none() {
                        // The store holds `small` messages: the small restart row.
                        restart_small = Some(restarts(&mut server));
                    }
                } else {
                    let sink = tools.sink();
                    let t = tools.source(sink.addr, small);
                    println!("P1 round {round}: smtp-sink {:.0} msg/s", rate(small, t));
                    sink_rates.push(rate(small, t));
                }
            }
        }
        let (sink, fm) = (median(&mut sink_rates), median(&mut fm_rates));
        let fraction = fm / sink;
        rows.push(Row {
            id: "P1",
            measure: "SMTP ingest / null sink, 2 KB, 16 sessions, medians".into(),
            figure: format!("{fraction:.2} ({fm:.0} / {sink:.0} msg/s)"),
            goal: ">= 0.5".into(),
            ratio: Some(fraction / 0.5),
        });
    } else {
        println!("P1 skipped: no smtp-source and smtp-sink");
        load(None, &server, small);
        restart_small = Some(restarts(&mut server));
    }

    // P2.
    let mut p2 = Vec::new();
    rt.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        send_load(senders.clone(), Some(500), stop.clone(), Default::default()).await;
        for run in 0..P2_RUNS {
            let (t, sent) = send_load(
                senders.clone(),
                Some(P2_SENDS),
                stop.clone(),
                Default::default(),
            )
            .await;
            println!("P2 run {run}: {:.0} msg/s", rate(sent, t));
            p2.push(rate(sent, t));
        }
    });
    let p2 = median(&mut p2);
    rows.push(Row {
        id: "P2",
        measure: "REST send, 2 KB, 16 clients, 201 once durable (median)".into(),
        figure: format!("{p2:.0} msg/s"),
        goal: ">= 5,000 msg/s".into(),
        ratio: Some(p2 / 5_000.0),
    });

    // Fill to `n`.
    let stored = server.metric("fakemail_messages") as u64;
    if stored < n {
        let t = load(tools, &server, n - stored);
        println!(
            "filled with {} more messages at {:.0} msg/s",
            n - stored,
            rate(n - stored, t)
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    let rss_loaded = server.rss_mib();
    let stored = server.metric("fakemail_messages") as u64;
    println!("P5 resident memory with {stored} messages, after the load: {rss_loaded:.0} MiB");
    rows.push(Row {
        id: "P5",
        measure: format!("resident memory, {stored} messages, after the load"),
        figure: format!("{rss_loaded:.0} MiB"),
        goal: "<= 64 MiB".into(),
        ratio: Some(64.0 / rss_loaded),
    });
    let (pages, rss_listing) = list_pages(&server);
    println!(
        "P5 resident memory while paging through the operator view ({pages} pages of 50): \
         {rss_listing:.0} MiB at most"
    );
    rows.push(Row {
        id: "P5",
        measure: format!("resident memory while {pages} pages are listed (max)"),
        figure: format!("{rss_listing:.0} MiB"),
        goal: "<= 64 MiB".into(),
        ratio: Some(64.0 / rss_listing),
    });

    // P10 with the store flushed and closed, then P6.
    server.stop();
    let raw = server.raw_bytes;
    let disk = du(&dir);
    println!(
        "P10 disk {:.2} GB for {:.2} GB of message source",
        disk as f64 / 1e9,
        raw as f64 / 1e9
    );
    rows.push(Row {
        id: "P10",
        measure: format!("disk used, {stored} messages / raw bytes"),
        figure: format!(
            "{:.2}x ({:.2} GB / {:.2} GB)",
            disk as f64 / raw as f64,
            disk as f64 / 1e9,
            raw as f64 / 1e9
        ),
        goal: "<= 1.5x".into(),
        ratio: Some(1.5 / (disk as f64 / raw as f64)),
    });
    server.start_again();
    let restart_big = restarts(&mut server);
    for (count, ms) in [
        (small, restart_small.expect("measured")),
        (stored, restart_big),
    ] {
        rows.push(Row {
            id: "P6",
            measure: format!("restart to /readyz 200, {count} messages (median of {RESTARTS})"),
            figure: format!("{ms:.0} ms"),
            goal: "<= 100 ms".into(),
            ratio: Some(100.0 / ms),
        });
    }
    server.stop();

    println!(
        "\nmillion: {n} messages, run took {:.0} s; load average {}\n",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
    println!("| # | measure | figure | goal | ratio | |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let (ratio, verdict) = match r.ratio {
            Some(x) => (format!("{x:.2}"), if x >= 1.0 { "met" } else { "not met" }),
            None => ("-".into(), "-"),
        };
        println!(
            "| {} | {} | {} | {} | {ratio} | {verdict} |",
            r.id, r.measure, r.figure, r.goal
        );
    }
}

/// Stops and starts `server` [`RESTARTS`] times; the median milliseconds from the start of
/// the process to the first `/readyz` 200.
fn restarts(server: &mut Fakemail) -> f64 {
    let mut times = Vec::new();
    for _ in 0..RESTARTS {
        server.stop();
        times.push(server.start_again().as_secs_f64() * 1000.0);
    }
    let stored = server.metric("fakemail_messages");
    println!("P6 restart to ready with {stored} messages: {times:.0?} ms");
    median(&mut times)
}

/// Pages through `GET /api/v1/admin/messages?limit=50` for [`LIST_TIME`], following the cursor
/// (from the top again at the end), sampling the server's resident memory; the pages listed
/// and the largest resident size in MiB.
fn list_pages(server: &Fakemail) -> (u64, f64) {
    let deadline = Instant::now() + LIST_TIME;
    let (mut pages, mut max, mut cursor) = (0, server.rss_mib(), None::<String>);
    let mut sampled = Instant::now();
    while Instant::now() < deadline {
        let path = match &cursor {
            Some(c) => format!("/api/v1/admin/messages?limit=50&cursor={c}"),
            None => "/api/v1/admin/messages?limit=50".into(),
        };
        let (status, body) = http(server.http, "GET", &path, Some(ADMIN_TOKEN), None);
        assert_eq!(status, 200, "GET {path}: {body}");
        let v: Value = serde_json::from_str(&body).expect("page JSON");
        cursor = v["next_cursor"].as_str().map(str::to_owned);
        pages += 1;
        if sampled.elapsed() > Duration::from_millis(200) {
            max = max.max(server.rss_mib());
            sampled = Instant::now();
        }
    }
    (pages, max.max(server.rss_mib()))
}

/// `POST /api/v1/admin/purge` of what is older than `age_secs`; the messages deleted.
fn purge(server: &Fakemail, age_secs: u64) -> u64 {
    purge_at(server.http, age_secs)
}

fn purge_at(port: u16, age_secs: u64) -> u64 {
    let body = json!({"older_than": format!("{age_secs}s")}).to_string();
    let (status, text) = http(
        port,
        "POST",
        "/api/v1/admin/purge",
        Some(ADMIN_TOKEN),
        Some(&body),
    );
    assert_eq!(status, 200, "purge: {text}");
    let v: Value = serde_json::from_str(&text).expect("purge JSON");
    v["deleted"].as_u64().expect("deleted")
}

// ----- the soak ------------------------------------------------------------------------------

fn run_soak(tools: Option<&Tools>, work: &Path) {
    let minutes: f64 = env_num("SOAK_MINUTES", 30.0);
    let retention = std::env::var("SOAK_RETENTION").unwrap_or_else(|_| "60s".into());
    let rt = common::client_runtime();
    let mut server = Fakemail::start(
        &work.join("soak"),
        &["--retention", &retention, "--sweep-interval", "10s"],
    );
    let rate: f64 = match std::env::var("SOAK_RATE") {
        Ok(r) => r.parse().expect("SOAK_RATE: messages per second"),
        Err(_) => {
            let t = load(tools, &server, 20_000);
            let measured = rate(20_000, t);
            println!("soak: ingest measured at {measured:.0} msg/s, sending at half");
            measured / 2.0
        }
    };
    println!(
        "soak: {minutes} minutes at {rate:.0} msg/s, retention {retention}, sweep every 10 s\n"
    );
    println!("| s | RSS MiB | stored | accepted | deleted by retention | errors |");
    println!("|---|---|---|---|---|---|");
    let duration = Duration::from_secs_f64(minutes * 60.0);
    let accepted = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let before = server.metric("fakemail_smtp_messages_total{result=\"accepted\"}") as u64;
    let smtp = SocketAddr::from(([127, 0, 0, 1], server.smtp));
    let sending = {
        let (accepted, errors, stop) = (accepted.clone(), errors.clone(), stop.clone());
        rt.spawn(smtp_load(smtp, None, Some(rate), accepted, errors, stop))
    };
    let start = Instant::now();
    let mut samples = Vec::new();
    loop {
        let t = start.elapsed();
        let rss = server.rss_mib();
        let stored = server.metric("fakemail_messages") as u64;
        let deleted =
            server.metric("fakemail_retention_deleted_messages_total{reason=\"expired\"}");
        println!(
            "| {:.0} | {rss:.1} | {stored} | {} | {deleted} | {} |",
            t.as_secs_f64(),
            accepted.load(Ordering::Relaxed),
            errors.load(Ordering::Relaxed)
        );
        samples.push((t, rss));
        if t >= duration {
            break;
        }
        std::thread::sleep(Duration::from_secs(10).min(duration - t + Duration::from_millis(1)));
    }
    stop.store(true, Ordering::Relaxed);
    rt.block_on(sending).expect("soak load");
    // The sweeper counts what a pass deleted when the pass ends, while the gauge of stored
    // messages falls as it goes: count once two passes have ended since the load stopped (the
    // first may have begun before).
    let passes = server.metric("fakemail_sweeper_runs_total");
    let waited = Instant::now();
    while server.metric("fakemail_sweeper_runs_total") < passes + 2.0 {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "no sweeper pass in 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let sent = accepted.load(Ordering::Relaxed);
    let errors = errors.load(Ordering::Relaxed);
    let server_accepted =
        server.metric("fakemail_smtp_messages_total{result=\"accepted\"}") as u64 - before;
    let accepted_total = server.metric("fakemail_smtp_messages_total{result=\"accepted\"}") as u64;
    let stored = server.metric("fakemail_messages") as u64;
    let deleted =
        server.metric("fakemail_retention_deleted_messages_total{reason=\"expired\"}") as u64;
    let half: Vec<f64> = samples
        .iter()
        .filter(|(t, _)| *t >= duration / 2)
        .map(|(_, r)| *r)
        .collect();
    let (lo, hi) = half
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    let flat = hi / lo;
    println!(
        "\nsoak: {sent} messages accepted in {minutes} minutes ({:.0} msg/s), {errors} errors",
        sent as f64 / (minutes * 60.0)
    );
    println!(
        "resident memory in the second half: {lo:.1} to {hi:.1} MiB, max/min {flat:.3} (goal <= 1.10): {}",
        verdict(flat <= 1.10)
    );
    println!("errors: {errors} (goal 0): {}", verdict(errors == 0));
    println!(
        "accounting: the server counted {server_accepted} accepted of the {sent} the client saw \
         answered 250; stored {stored} + deleted by retention {deleted} = {} of {accepted_total} \
         accepted since start: {}",
        stored + deleted,
        verdict(server_accepted == sent && stored + deleted == accepted_total)
    );
    server.stop();
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT MET" }
}

// ----- the server as a process ---------------------------------------------------------------

/// `fakemail serve` on its data dir and fixed free ports, POP3 and IMAP off.
struct Fakemail {
    child: Option<Child>,
    args: Vec<String>,
    dir: PathBuf,
    /// The HTTP port.
    http: u16,
    /// The SMTP address.
    smtp: u16,
    /// `fakemail_message_bytes` when last stopped.
    raw_bytes: u64,
}

impl Fakemail {
    fn start(dir: &Path, extra: &[&str]) -> Fakemail {
        std::fs::create_dir_all(dir).expect("data dir");
        let mut f = Fakemail {
            child: None,
            args: extra.iter().map(|s| s.to_string()).collect(),
            dir: dir.to_owned(),
            http: free_port(),
            smtp: free_port(),
            raw_bytes: 0,
        };
        f.start_again();
        f
    }

    /// Starts the process; returns the time from its start to the first `/readyz` 200.
    fn start_again(&mut self) -> Duration {
        assert!(self.child.is_none());
        let logs = self.dir.with_extension("logs");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fakemail"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("FAKEMAIL_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("--log-dir")
            .arg(&logs)
            .args([
                "--log-level",
                "warn",
                "--pop3-port",
                "off",
                "--imap-port",
                "off",
            ])
            .args([
                "--password-iterations",
                "1000",
                "--admin-token",
                ADMIN_TOKEN,
            ])
            .args(["--port", &self.http.to_string()])
            .args(["--smtp-port", &self.smtp.to_string()])
            .args(["--smtp-max-connections", "1000"]);
        if !self.args.iter().any(|a| a == "--retention") {
            cmd.args(["--retention", "off"]);
        }
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let t = Instant::now();
        self.child = Some(cmd.spawn().expect("spawn fakemail serve"));
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().expect("try_wait") {
                panic!("fakemail serve exited: {status}");
            }
            if let Ok((200, _)) = try_http(self.http, "GET", "/readyz", None, None) {
                return t.elapsed();
            }
            assert!(
                t.elapsed() < Duration::from_secs(600),
                "not ready in 10 min"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// SIGTERM, and waits for the exit (the store flushed).
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        self.raw_bytes = self.metric("fakemail_message_bytes") as u64;
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -TERM");
        let status = child.wait().expect("wait");
        assert!(status.success(), "fakemail serve exited with {status}");
    }

    /// The value of one sample of `GET /metrics`, by its name and labels as printed.
    fn metric(&self, sample: &str) -> f64 {
        let (status, text) = http(self.http, "GET", "/metrics", None, None);
        assert_eq!(status, 200, "metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
            .map(|v| v.trim().parse().expect("a number"))
            .unwrap_or_else(|| panic!("no {sample} in /metrics"))
    }

    /// VmRSS of the process in MiB.
    fn rss_mib(&self) -> f64 {
        let pid = self.child.as_ref().expect("running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        kb / 1024.0
    }
}

impl Drop for Fakemail {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// One HTTP/1.0 request (no chunked replies), its status and body.
fn try_http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    s.write_all(req.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out);
    let status = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.to_owned()))
}

fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    try_http(port, method, path, token, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Bytes of disk the files under `dir` take (allocated blocks, as du counts).
fn du(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("entry");
        let meta = entry.metadata().expect("metadata");
        total += if meta.is_dir() {
            du(&entry.path())
        } else {
            meta.blocks() * 512
        };
    }
    total
}

// ----- load ----------------------------------------------------------------------------------

/// Postfix's tools, unpacked from its Debian package.
struct Tools {
    bin: PathBuf,
    lib: PathBuf,
}

/// A running smtp-sink, killed on drop.
struct Sink {
    child: Child,
    addr: u16,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Tools {
    fn root(target: &Path) -> PathBuf {
        std::env::var_os("POSTFIX_ROOT").map_or_else(|| target.join("postfix"), PathBuf::from)
    }

    fn find(target: &Path) -> Option<Tools> {
        let root = Tools::root(target);
        let t = Tools {
            bin: root.join("usr/sbin"),
            lib: root.join("usr/lib/postfix"),
        };
        let works = |tool: &str| {
            // Without arguments each prints its usage and exits 1; a missing library fails
            // differently (127) and a missing file does not start.
            t.command(tool)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.code() == Some(1))
        };
        (works("smtp-source") && works("smtp-sink")).then_some(t)
    }

    fn command(&self, tool: &str) -> Command {
        let mut c = Command::new(self.bin.join(tool));
        c.env("LD_LIBRARY_PATH", &self.lib).stdin(Stdio::null());
        c
    }

    /// Sends `count` messages of [`MSG_BYTES`] over [`SESSIONS`] sessions to port `port`,
    /// each session sending message after message (`-d`); the time the whole process took.
    fn source(&self, port: u16, count: u64) -> Duration {
        let t = Instant::now();
        let status = self
            .command("smtp-source")
            .args([
                "-d",
                "-s",
                &SESSIONS.to_string(),
                "-l",
                &MSG_BYTES.to_string(),
            ])
            .args(["-m", &count.to_string(), "-M", "bench.test"])
            .args(["-f", "load@example.test", "-t", "rcpt@example.test"])
            .arg(format!("127.0.0.1:{port}"))
            .status()
            .expect("run smtp-source");
        let t = t.elapsed();
        assert!(status.success(), "smtp-source: {status}");
        t
    }

    /// smtp-sink on a free port, accepting and discarding.
    fn sink(&self) -> Sink {
        let port = free_port();
        let mut cmd = self.command("smtp-sink");
        // As root it must be told whose privileges to drop to.
        if Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
        {
            cmd.args(["-u", "nobody"]);
        }
        let child = cmd
            .args(["-m", "1000", &format!("127.0.0.1:{port}"), "1024"])
            .stdout(Stdio::null())
            .spawn()
            .expect("run smtp-sink");
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            std::thread::sleep(Duration::from_millis(5));
        }
        Sink { child, addr: port }
    }
}

/// Sends `count` messages to `server`'s SMTP listener, with smtp-source when there is one, else
/// with [`smtp_load`]; the time it took. Checks that the server accepted every one.
fn load(tools: Option<&Tools>, server: &Fakemail, count: u64) -> Duration {
    let accepted = "fakemail_smtp_messages_total{result=\"accepted\"}";
    let before = server.metric(accepted) as u64;
    let t = match tools {
        Some(tools) => tools.source(server.smtp, count),
        None => {
            let t = Instant::now();
            let errors = Arc::new(AtomicU64::new(0));
            common::client_runtime().block_on(smtp_load(
                SocketAddr::from(([127, 0, 0, 1], server.smtp)),
                Some(count),
                None,
                Default::default(),
                errors.clone(),
                Default::default(),
            ));
            assert_eq!(errors.load(Ordering::Relaxed), 0, "SMTP errors");
            t.elapsed()
        }
    };
    assert_eq!(
        server.metric(accepted) as u64 - before,
        count,
        "the server accepted every message sent"
    );
    t
}

/// [`SESSIONS`] SMTP sessions sending 2 KB messages until `count` went (or `stop` is set), at
/// `rate` messages per second in all when given; counts the `250`s and the errors (a failed
/// session reconnects).
async fn smtp_load(
    addr: SocketAddr,
    count: Option<u64>,
    rate: Option<f64>,
    accepted: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let next = Arc::new(AtomicU64::new(0));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..SESSIONS {
        let (next, accepted, errors, stop) =
            (next.clone(), accepted.clone(), errors.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut session = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if count.is_some_and(|n| i >= n) || stop.load(Ordering::Relaxed) {
                    return;
                }
                if let Some(r) = rate {
                    tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / r)).await;
                }
                if session.is_none() {
                    session = SmtpClient::connect(addr).await.ok();
                }
                let ok = match &mut session {
                    Some(s) => s.send(i).await.is_ok(),
                    None => false,
                };
                if ok {
                    accepted.fetch_add(1, Ordering::Relaxed);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    session = None;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("SMTP session");
    }
}

/// An SMTP session over raw TCP that reports failures instead of panicking.
struct SmtpClient {
    io: BufReader<tokio::net::TcpStream>,
    line: String,
}

impl SmtpClient {
    async fn connect(addr: SocketAddr) -> std::io::Result<SmtpClient> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut s = SmtpClient {
            io: BufReader::new(stream),
            line: String::new(),
        };
        s.expect(b"220").await?;
        s.io.get_mut().write_all(b"EHLO bench.test\r\n").await?;
        s.expect(b"250").await?;
        Ok(s)
    }

    async fn expect(&mut self, code: &[u8]) -> std::io::Result<()> {
        loop {
            self.line.clear();
            if self.io.read_line(&mut self.line).await? == 0 {
                return Err(std::io::Error::other("closed"));
            }
            if !self.line.as_bytes().starts_with(code) {
                return Err(std::io::Error::other(format!("got {:?}", self.line)));
            }
            if self.line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    }

    async fn send(&mut self, i: u64) -> std::io::Result<()> {
        let w = self.io.get_mut();
        w.write_all(b"MAIL FROM:<load@example.test>\r\nRCPT TO:<rcpt@example.test>\r\nDATA\r\n")
            .await?;
        self.expect(b"250").await?;
        self.expect(b"250").await?;
        self.expect(b"354").await?;
        let mut msg = format!(
            "From: <load@example.test>\r\nTo: <rcpt@example.test>\r\nSubject: load {i}\r\n\
             Message-ID: <{i}@bench.test>\r\n\r\n"
        );
        let line = format!("{}\r\n", "x".repeat(78));
        while msg.len() < MSG_BYTES {
            msg.push_str(&line);
        }
        msg.push_str(".\r\n");
        self.io.get_mut().write_all(msg.as_bytes()).await?;
        self.expect(b"250").await
    }
}

/// A REST client signed in as its own sender.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

async fn senders(port: u16) -> Vec<Client> {
    let mut out = Vec::new();
    for i in 0..SESSIONS {
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let creds = json!({"email": format!("sender-{i}@example.test"), "password": PASSWORD});
        let r = http
            .post(format!("{base}/api/v1/auth/register"))
            .json(&creds)
            .send()
            .await
            .expect("register");
        assert_eq!(r.status().as_u16(), 201, "register");
        let v: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&creds)
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("login JSON");
        let token = v["token"].as_str().expect("token").to_owned();
        out.push(Client { http, base, token });
    }
    out
}

/// Every client sends (2 KB of text, one recipient, each must be answered 201) until `count`
/// went or `stop` is set; the time and the number sent.
async fn send_load(
    clients: Vec<Client>,
    count: Option<u64>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> (Duration, u64) {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let line = "The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs.\n";
    let text: Arc<str> = line.repeat(MSG_BYTES / line.len() + 1)[..MSG_BYTES].into();
    let mut tasks = Vec::new();
    for c in clients {
        let (next, stop, sent, text) = (next.clone(), stop.clone(), sent.clone(), text.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if count.is_some_and(|n| i >= n) || stop.load(Ordering::Relaxed) {
                    return n;
                }
                let body = json!({"to": ["rcpt@example.test"], "subject": format!("send {i}"),
                                  "text": &*text});
                let r = c
                    .http
                    .post(format!("{}/api/v1/messages", c.base))
                    .bearer_auth(&c.token)
                    .json(&body)
                    .send()
                    .await
                    .expect("send");
                let status = r.status().as_u16();
                let _ = r.bytes().await;
                assert_eq!(status, 201, "REST send");
                sent.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("sender");
    }
    (start.elapsed(), total)
}

// ----- helpers -------------------------------------------------------------------------------

/// The target dir: the one `CARGO_BIN_EXE_fakemail` is in (`<target>/release/fakemail`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_fakemail"))
        .ancestors()
        .nth(2)
        .expect("target dir")
        .to_owned()
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).map_or(default, |v| {
        v.replace(['_', ','], "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}: a number"))
    })
}

/// The first three fields of /proc/loadavg: what else kept the machine busy.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".into(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

fn rate(n: u64, t: Duration) -> f64 {
    n as f64 / t.as_secs_f64()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
