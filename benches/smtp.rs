//! SMTP ingest benchmark: `cargo bench --bench smtp`.
//!
//! Starts the real server in-process (`benches/common`: temporary store, port 0, its own
//! runtime, as `fakemail serve` would run it) and sends mail to its SMTP
//! listener over the loopback interface from a separate client runtime. Every message is
//! acknowledged only once it is on disk, so this measures durable ingest: concurrent sessions
//! share flushes (group commit), and throughput should grow with the number of connections
//! while one connection is bound by the time of one flush.
//!
//! For each row, [`Row::connections`] clients each open one connection, say EHLO, and send
//! messages back to back until the row's total is reached: `MAIL`, `RCPT` and `DATA` in one
//! write (PIPELINING), then the body. It prints messages per second and the latency from
//! the end of the body (the final `.`) to the `250`, which includes the flush.
//!
//! Then it measures what fault injection costs when it is allowed but idle: the 16-connection
//! 2 KB row with `--chaos` and no rules against the same row without, over [`CHAOS_ROUNDS`]
//! rounds in the order off-on, on-off, off-on, ... so that neither always runs first and other
//! work on the machine weighs on both alike, and prints the ratio of the median throughputs.
//!
//! Nothing is asserted: timings depend on the machine (above all on how long its disk takes
//! to sync). The default run takes well under a minute on 2 cores.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Server, SmtpSender, ms};
use fakemail::config::Config;

/// One configuration to measure.
struct Row {
    connections: usize,
    /// Bytes of message source as sent (headers and body).
    size: usize,
    messages: usize,
}

/// Small messages at growing concurrency, then the 2 KB, 16-connection case.
const ROWS: [Row; 5] = [
    Row {
        connections: 1,
        size: 300,
        messages: 500,
    },
    Row {
        connections: 4,
        size: 300,
        messages: 2_000,
    },
    Row {
        connections: 16,
        size: 300,
        messages: 4_000,
    },
    Row {
        connections: 64,
        size: 300,
        messages: 4_000,
    },
    Row {
        connections: 16,
        size: 2_048,
        messages: 4_000,
    },
];
/// Untimed messages before each row (connections, caches, file growth).
const WARMUP: usize = 100;
/// Rounds of the `--chaos` comparison, each a run without and one with.
const CHAOS_ROUNDS: usize = 4;

/// A server that takes `connections` SMTP connections at once, with `--chaos` (and no rules)
/// or without.
fn start_server(connections: usize, chaos: bool) -> Server {
    let mut config = Config::default();
    config.smtp.max_connections = connections.max(100);
    config.service.chaos = chaos;
    Server::start(config)
}

/// A message of about `size` bytes, dot-stuffed and CRLF-terminated, without the final dot.
fn message(size: usize) -> Vec<u8> {
    let mut m = String::from(
        "From: Bench <sender@example.test>\r\nTo: rcpt@example.test\r\n\
         Subject: Your verification code\r\nMessage-ID: <bench@example.test>\r\n\r\n",
    );
    let line = "Your code is 493021. It expires in ten minutes; do not share it.\r\n";
    while m.len() + line.len() <= size {
        m.push_str(line);
    }
    while m.len() + 2 < size {
        m.push('x');
    }
    m.push_str("\r\n");
    m.into_bytes()
}

/// What a row measured.
struct Measured {
    elapsed: Duration,
    /// DATA-to-250 latencies, sorted.
    latencies: Vec<Duration>,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// Nearest-rank percentile.
    fn percentile(&self, p: f64) -> Duration {
        let v = &self.latencies;
        v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
    }
}

/// Sends `total` messages over `connections` connections; the clients take messages from a
/// shared count, so all of them stay busy until the end.
async fn run(addr: SocketAddr, connections: usize, size: usize, total: usize) -> Measured {
    let body = Arc::new(message(size));
    let mut senders = Vec::new();
    for _ in 0..connections {
        senders.push(SmtpSender::connect(addr).await);
    }
    let left = Arc::new(AtomicUsize::new(total));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for mut sender in senders {
        let (left, body) = (left.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                let (written, acked) = sender.send("rcpt@example.test", &body).await;
                latencies.push(acked - written);
            }
            sender.write(b"QUIT\r\n").await;
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for t in tasks {
        latencies.extend(t.await.expect("sender task"));
    }
    let elapsed = start.elapsed();
    latencies.sort();
    Measured { elapsed, latencies }
}

/// Measures `row` on a fresh server (so every row starts from the same state).
fn measure(clients: &tokio::runtime::Runtime, row: &Row, chaos: bool) -> Measured {
    let server = start_server(row.connections, chaos);
    clients.block_on(run(server.smtp, row.connections, row.size, WARMUP));
    let m = clients.block_on(run(server.smtp, row.connections, row.size, row.messages));
    drop(server);
    m
}

fn print_header() {
    println!(
        "{:>11}  {:>5}  {:>5}  {:>8}  {:>7}  {:>10}  {:>7}  {:>7}  {:>7}",
        "connections",
        "bytes",
        "chaos",
        "messages",
        "seconds",
        "messages/s",
        "p50 ms",
        "p99 ms",
        "max ms"
    );
}

fn print_row(row: &Row, chaos: bool, m: &Measured) {
    println!(
        "{:>11}  {:>5}  {:>5}  {:>8}  {:>7.2}  {:>10.0}  {:>7}  {:>7}  {:>7}",
        row.connections,
        row.size,
        if chaos { "on" } else { "off" },
        row.messages,
        m.elapsed.as_secs_f64(),
        m.per_second(),
        ms(m.percentile(0.50)),
        ms(m.percentile(0.99)),
        ms(m.percentile(1.0)),
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

fn main() {
    let clients = common::client_runtime();
    let started = Instant::now();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "fakemail {} SMTP ingest benchmark: {cores} cores, server and clients in one process, \
         SMTP over loopback, every 250 after a flush to disk",
        env!("CARGO_PKG_VERSION")
    );
    if cfg!(debug_assertions) {
        println!("warning: debug build; run `cargo bench --bench smtp` for meaningful figures");
    }
    println!();
    print_header();
    for row in &ROWS {
        print_row(row, false, &measure(&clients, row, false));
    }

    println!();
    println!("--chaos with no rules against without, {CHAOS_ROUNDS} rounds:");
    print_header();
    let row = &ROWS[ROWS.len() - 1];
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for round in 0..CHAOS_ROUNDS {
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for chaos in order {
            let m = measure(&clients, row, chaos);
            print_row(row, chaos, &m);
            if chaos { &mut on } else { &mut off }.push(m.per_second());
        }
    }
    let (off, on) = (median(off), median(on));
    println!(
        "median messages/s: {off:.0} without, {on:.0} with --chaos: ratio {:.3}",
        on / off
    );
    println!();
    println!("total time {:.1} s", started.elapsed().as_secs_f64());
}
