//! Authentication benchmark: `cargo bench --bench auth`.
//!
//! Starts the real server in-process (temporary store, port 0, its own runtime, as `fakemail
//! serve` would run it) and drives it over real HTTP from a separate client runtime. It prints:
//!
//! 1. register+login pairs per second at 600,000 and at 1,000 PBKDF2 iterations, with
//!    [`PAIR_CLIENTS`] concurrent clients;
//! 2. `GET /healthz` latency when idle and while [`LOGIN_CLIENTS`] clients log in continuously
//!    at 600,000 iterations. Password hashing runs on the blocking pool, so the async workers
//!    stay free and healthz latency should stay in single-digit milliseconds.
//!
//! Nothing is asserted: timings depend on the machine. Sized to finish in well under a minute
//! on 2 cores.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use support::Server;

const PASSWORD: &str = "correct horse battery";
/// Concurrent clients for the register+login runs.
const PAIR_CLIENTS: usize = 4;
/// Clients logging in continuously during the loaded healthz run.
const LOGIN_CLIENTS: usize = 2;
/// Pairs per run, by iteration count: about 4 s of hashing each on 2 cores.
const RUNS: [(u32, usize); 2] = [(600_000, 48), (1_000, 2_000)];
/// healthz samples per latency run, one every [`SAMPLE_EVERY`].
const SAMPLES: usize = 2_000;
const SAMPLE_EVERY: Duration = Duration::from_millis(4);

/// A client of the server at `base`.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(addr: SocketAddr) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: format!("http://{addr}"),
        }
    }

    async fn post(&self, path: &str, body: serde_json::Value, want: u16) {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        assert_eq!(status, want, "POST {path}: {text}");
    }

    async fn register(&self, email: &str) {
        self.post(
            "/api/v1/auth/register",
            json!({"email": email, "password": PASSWORD}),
            201,
        )
        .await;
    }

    async fn login(&self, email: &str) {
        self.post(
            "/api/v1/auth/login",
            json!({"email": email, "password": PASSWORD}),
            200,
        )
        .await;
    }

    /// One `GET /healthz`, timed from send to the end of the body.
    async fn healthz(&self) -> Duration {
        let t = Instant::now();
        let res = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .expect("healthz");
        assert_eq!(res.status().as_u16(), 200);
        res.bytes().await.expect("healthz body");
        t.elapsed()
    }
}

/// Register+login pairs per second with [`PAIR_CLIENTS`] clients sharing `pairs`.
async fn pairs_per_second(addr: SocketAddr, iterations: u32, pairs: usize) -> (Duration, f64) {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..PAIR_CLIENTS {
        let client = Client::new(addr);
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= pairs {
                    return;
                }
                let email = format!("pair-{iterations}-{i}@example.test");
                client.register(&email).await;
                client.login(&email).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    let elapsed = start.elapsed();
    (elapsed, pairs as f64 / elapsed.as_secs_f64())
}

/// Latency figures of one healthz run.
struct Latency {
    samples: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

/// [`SAMPLES`] sequential healthz requests, one every [`SAMPLE_EVERY`].
async fn sample_healthz(client: &Client) -> Latency {
    for _ in 0..20 {
        client.healthz().await; // open and warm the connection
    }
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut v = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        tick.tick().await;
        v.push(client.healthz().await);
    }
    v.sort();
    // Nearest-rank percentiles.
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Latency {
        samples: v.len(),
        p50: rank(0.50),
        p99: rank(0.99),
        max: v[v.len() - 1],
    }
}

/// healthz latency while [`LOGIN_CLIENTS`] clients log in back to back; also returns the
/// number of logins completed per second meanwhile.
async fn healthz_under_login_load(addr: SocketAddr) -> (Latency, f64) {
    let emails: Vec<String> = (0..LOGIN_CLIENTS)
        .map(|i| format!("load-{i}@example.test"))
        .collect();
    let setup = Client::new(addr);
    for e in &emails {
        setup.register(e).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let logins = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for email in emails {
        let client = Client::new(addr);
        let (stop, logins) = (stop.clone(), logins.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                client.login(&email).await;
                logins.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Let the login clients saturate the hashing pool before sampling.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = logins.load(Ordering::Relaxed);
    let start = Instant::now();
    let latency = sample_healthz(&Client::new(addr)).await;
    let rate = (logins.load(Ordering::Relaxed) - before) as f64 / start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("login task");
    }
    (latency, rate)
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    // The clients get their own runtime so the server's workers serve only the server.
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");
    let started = Instant::now();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "fakemail {} auth benchmark: {cores} cores, server and clients in one process, HTTP over loopback",
        env!("CARGO_PKG_VERSION")
    );
    if cfg!(debug_assertions) {
        println!("warning: debug build; run `cargo bench --bench auth` for meaningful figures");
    }

    println!();
    println!("register + login pairs, {PAIR_CLIENTS} concurrent clients");
    println!(
        "{:>12}  {:>6}  {:>9}  {:>8}",
        "iterations", "pairs", "seconds", "pairs/s"
    );
    for (iterations, pairs) in RUNS {
        let server = Server::start(|c| c.service.password_iterations = iterations);
        let (elapsed, rate) = clients.block_on(pairs_per_second(server.addr, iterations, pairs));
        drop(server);
        println!(
            "{iterations:>12}  {pairs:>6}  {:>9.2}  {rate:>8.1}",
            elapsed.as_secs_f64()
        );
    }

    println!();
    println!("GET /healthz latency, sequential requests every {SAMPLE_EVERY:?} (ms)");
    println!(
        "{:<44}  {:>7}  {:>6}  {:>6}  {:>6}",
        "load", "samples", "p50", "p99", "max"
    );
    let server = Server::start(|c| c.service.password_iterations = 600_000);
    let idle = clients.block_on(async { sample_healthz(&Client::new(server.addr)).await });
    let (loaded, login_rate) = clients.block_on(healthz_under_login_load(server.addr));
    drop(server);
    let row = |load: &str, l: &Latency| {
        println!(
            "{load:<44}  {:>7}  {:>6}  {:>6}  {:>6}",
            l.samples,
            ms(l.p50),
            ms(l.p99),
            ms(l.max)
        );
    };
    row("idle", &idle);
    row(
        &format!("{LOGIN_CLIENTS} clients logging in (600000 iterations)"),
        &loaded,
    );
    println!("  (logins completed meanwhile: {login_rate:.1}/s)");

    println!();
    println!("total time {:.1} s", started.elapsed().as_secs_f64());
}
