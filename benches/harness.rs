//! Test-harness benchmark: `cargo bench --bench harness`.
//!
//! How soon does a waiting test learn of its message? Starts the real server in-process
//! (temporary store, port 0, its own runtime, as `fakemail serve` runs it; the structure of
//! `benches/mail.rs`), opens N concurrent `GET /api/v1/admin/wait` requests over real HTTP from
//! a separate client runtime, delivers one message and measures, for every waiter, the time
//! from the delivery to its wait response arriving (body read). It prints p50 and p99:
//!
//! - with every waiter waiting for that message (fan-out), for N = 1, 10 and 100;
//! - with N waiters of which only one waits for that message (the others wait for other
//!   addresses and are then dropped): the cost of idle waiters to a delivery;
//! - from each [`Source`] of mail: `Service::deliver` in-process (the one delivery path), REST
//!   send over HTTP, and a raw SMTP client on one open connection. "From done" is from the
//!   moment the source reports the message delivered: `deliver` returning, the `201` of the
//!   send arriving, the `250` after DATA read by the SMTP client. A wait can answer before that
//!   moment (the hub is told before `deliver` returns; a send still renders its answer; SMTP
//!   says `250` only after the store is flushed), so those figures are signed, negative when
//!   the wait answered first, and the figures are also given from the moment the delivery
//!   began. Every instant is read from one clock in one process.
//!
//! Nothing is asserted: timings depend on the machine. A default run takes well under a
//! minute on 2 cores.

mod common;

use std::time::{Duration, Instant};

use common::{Server, SmtpSender, ms};
use fakemail::config::Config;
use fakemail::service::Service;
use fakemail::service::mail::{Delivery, Envelope};
use serde_json::json;

const PASSWORD: &str = "correct horse battery";
const ADMIN: &str = "fm_bench_admin_token";
/// Waiters per round.
const WAITERS: [usize; 3] = [1, 10, 100];
/// Latency samples wanted per row (rounds = samples / waiters, at least [`MIN_ROUNDS`]).
const SAMPLES: usize = 1_000;
const MIN_ROUNDS: usize = 20;
/// Rounds of a row where one waiter of many matches (the others reconnect every round).
const IDLE_ROUNDS: usize = 100;
/// Untimed rounds before each row (connections, caches).
const WARMUP_ROUNDS: usize = 5;
/// Longest a round may take before the benchmark gives up.
const ROUND_LIMIT: Duration = Duration::from_secs(60);

/// Where the awaited mail comes from.
enum Source {
    /// `Service::deliver` on the blocking pool: the path REST send and SMTP share.
    Deliver(Service),
    /// `POST /api/v1/messages` as a signed-in user.
    RestSend {
        http: reqwest::Client,
        base: String,
        token: String,
    },
    /// A message over one open SMTP connection (durable: `250` after the flush).
    Smtp(tokio::sync::Mutex<SmtpSender>),
}

/// The message a source delivers to `to`, as SMTP sends it (without the final dot).
fn message(to: &str) -> String {
    format!(
        "From: app@example.test\r\nTo: {to}\r\nSubject: Your code\r\n\r\nYour verification code is 482913.\r\n"
    )
}

impl Source {
    fn name(&self) -> &'static str {
        match self {
            Source::Deliver(_) => "Service::deliver",
            Source::RestSend { .. } => "REST send",
            Source::Smtp(_) => "SMTP",
        }
    }

    /// Delivers one message to `to`; returns when the delivery began and when the source
    /// reported it done.
    async fn deliver(&self, to: &str) -> (Instant, Instant) {
        let began = Instant::now();
        match self {
            Source::Deliver(svc) => {
                let d = Delivery {
                    raw: message(to).into_bytes(),
                    envelope: Envelope {
                        from: "app@example.test".into(),
                        to: vec![to.to_owned()],
                    },
                    sender: None,
                };
                svc.deliver(d).await.expect("deliver");
            }
            Source::RestSend { http, base, token } => {
                let body = json!({"to": [to], "subject": "Your code", "text": "Your verification code is 482913."});
                let res = http
                    .post(format!("{base}/api/v1/messages"))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .expect("send");
                assert_eq!(res.status().as_u16(), 201);
                res.bytes().await.expect("send body");
            }
            Source::Smtp(sender) => {
                let mut sender = sender.lock().await;
                let began = Instant::now();
                let (_, acked) = sender.send(to, message(to).as_bytes()).await;
                return (began, acked);
            }
        }
        (began, Instant::now())
    }
}

/// Registers and signs in a sender; returns its token.
async fn sign_in(http: &reqwest::Client, base: &str) -> String {
    let creds = json!({"email": "app@example.test", "password": PASSWORD});
    for path in ["/api/v1/auth/register", "/api/v1/auth/login"] {
        let res = http
            .post(format!("{base}{path}"))
            .json(&creds)
            .send()
            .await
            .expect("auth");
        assert!(res.status().is_success(), "{path}: {}", res.status());
        if path.ends_with("login") {
            let v: serde_json::Value = res.json().await.expect("login JSON");
            return v["token"].as_str().expect("token").to_owned();
        }
    }
    unreachable!("login returns")
}

/// Waits until the server has `n` open waits.
async fn listeners(svc: &Service, n: usize) {
    let deadline = Instant::now() + ROUND_LIMIT;
    while svc.events().listeners() != n {
        assert!(Instant::now() < deadline, "waits did not open or close");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// One round: `waiters` waits, of which the first `matching` wait for the message delivered;
/// returns the arrival time of each matching answer and the delivery's (began, done).
async fn round(
    http: &reqwest::Client,
    base: &str,
    svc: &Service,
    source: &Source,
    n: usize,
    waiters: usize,
    matching: usize,
) -> (Vec<Instant>, (Instant, Instant)) {
    let target = format!("rcpt-{n}@example.test");
    let mut tasks = Vec::with_capacity(waiters);
    for i in 0..waiters {
        let to = if i < matching {
            target.clone()
        } else {
            format!("idle-{n}-{i}@example.test")
        };
        let req = http
            .get(format!("{base}/api/v1/admin/wait?to={to}&timeout=1m"))
            .bearer_auth(ADMIN);
        tasks.push(tokio::spawn(async move {
            let res = req.send().await.expect("wait");
            assert_eq!(res.status().as_u16(), 200, "wait answer");
            res.bytes().await.expect("wait body");
            Instant::now()
        }));
    }
    listeners(svc, waiters).await;
    let delivered = source.deliver(&target).await;
    let mut arrivals = Vec::with_capacity(matching);
    for (i, t) in tasks.into_iter().enumerate() {
        if i < matching {
            arrivals.push(
                tokio::time::timeout(ROUND_LIMIT, t)
                    .await
                    .expect("answer in time")
                    .expect("wait task"),
            );
        } else {
            // Nothing comes for it: hang up, which ends the wait on the server.
            t.abort();
        }
    }
    listeners(svc, 0).await;
    (arrivals, delivered)
}

/// p50 and p99 of `samples`.
fn percentiles<T: Ord + Copy>(samples: &mut [T]) -> (T, T) {
    samples.sort();
    let rank = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    (rank(0.50), rank(0.99))
}

/// `later - earlier` in nanoseconds, negative when `later` came first.
fn signed_nanos(later: Instant, earlier: Instant) -> i128 {
    match later.checked_duration_since(earlier) {
        Some(d) => d.as_nanos() as i128,
        None => -((earlier - later).as_nanos() as i128),
    }
}

/// Signed nanoseconds as milliseconds with two decimals, for the tables.
fn signed_ms(nanos: i128) -> String {
    format!("{:.2}", nanos as f64 / 1e6)
}

/// One row: latencies from the start and from the end of the delivery.
async fn row(
    http: &reqwest::Client,
    base: &str,
    svc: &Service,
    source: &Source,
    waiters: usize,
    matching: usize,
    next: &mut usize,
) {
    let rounds = if matching < waiters {
        IDLE_ROUNDS
    } else {
        (SAMPLES / matching).max(MIN_ROUNDS)
    };
    let (mut from_start, mut from_done) = (Vec::new(), Vec::new());
    let mut early = 0;
    for r in 0..WARMUP_ROUNDS + rounds {
        *next += 1;
        let (arrivals, (began, done)) =
            round(http, base, svc, source, *next, waiters, matching).await;
        if r < WARMUP_ROUNDS {
            continue;
        }
        for a in arrivals {
            from_start.push(a.saturating_duration_since(began));
            from_done.push(signed_nanos(a, done));
            early += usize::from(a < done);
        }
    }
    let n = from_start.len();
    let (s50, s99) = percentiles(&mut from_start);
    let (d50, d99) = percentiles(&mut from_done);
    println!(
        "{:<17} {:>7} {:>8} {:>7}   {:>8} {:>8}   {:>8} {:>8} {:>6.1}%",
        source.name(),
        waiters,
        matching,
        n,
        ms(s50),
        ms(s99),
        signed_ms(d50),
        signed_ms(d99),
        early as f64 * 100.0 / n as f64
    );
}

fn main() {
    let clients = common::client_runtime();
    println!(
        "fakemail {} harness benchmark: {} cores, server and clients in one process, HTTP and SMTP over loopback",
        env!("CARGO_PKG_VERSION"),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if cfg!(debug_assertions) {
        println!("warning: debug build; run `cargo bench --bench harness` for meaningful figures");
    }
    let server = Server::start({
        let mut config = Config::default();
        config.service.password_iterations = 1_000;
        config
    });
    server.service.set_admin_token(ADMIN);
    let base = format!("http://{}", server.addr);
    let svc = server.service.clone();
    let smtp = server.smtp;
    clients.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .expect("client");
        let token = sign_in(&http, &base).await;
        let sources = [
            Source::Deliver(svc.clone()),
            Source::RestSend {
                http: http.clone(),
                base: base.clone(),
                token,
            },
            Source::Smtp(tokio::sync::Mutex::new(SmtpSender::connect(smtp).await)),
        ];
        println!();
        println!("=== delivery to wait response (GET /api/v1/admin/wait?to=...), milliseconds");
        println!(
            "{:<17} {:>7} {:>8} {:>7}   {:>17}   {:>17} {:>7}",
            "", "", "", "", "from start", "from done", "answered"
        );
        println!(
            "{:<17} {:>7} {:>8} {:>7}   {:>8} {:>8}   {:>8} {:>8} {:>7}",
            "source", "waiters", "matching", "samples", "p50", "p99", "p50", "p99", "before"
        );
        let mut next = 0;
        for source in &sources {
            for waiters in WAITERS {
                row(&http, &base, &svc, source, waiters, waiters, &mut next).await;
            }
            for waiters in WAITERS.into_iter().filter(|&w| w > 1) {
                row(&http, &base, &svc, source, waiters, 1, &mut next).await;
            }
        }
    });
    drop(server);
}
