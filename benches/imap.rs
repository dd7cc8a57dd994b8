//! IMAP benchmark: `cargo bench --bench imap`.
//!
//! Starts the real server in-process (`benches/common`) and fills one account's `INBOX` with
//! `Store::insert_message` (small messages, one thread per core, not timed but printed) to
//! 1,000, 100,000 and 1,000,000 messages. At each size, over raw IMAP sockets on the loopback
//! interface:
//!
//! - `SELECT INBOX`, [`RUNS`] times in one session: the median is printed;
//! - `FETCH n-49:n (ENVELOPE)` and `UID FETCH <newest 50 UIDs> (ENVELOPE)`, [`RUNS`] times
//!   each: the medians are printed;
//! - the process's resident memory (`VmRSS`, server and clients are one process) with no
//!   session selected, then with 1 and with 10 sessions selected: the growth per selected
//!   session is printed, beside what a session's list of copies takes (16 bytes a copy).
//!
//! Each figure is printed beside the aims of a mailbox of a million messages (SELECT under a
//! second, the fetch of the newest 50 envelopes under 50 ms) and as the ratio of the largest
//! size to the smallest. Nothing is asserted. Set `IMAP_BENCH_MAX` (e.g. `100000`) to stop at
//! a smaller size.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Server, client_runtime, fill_inbox, ms};
use fakemail::config::Config;
use fakemail::service::NewUser;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const USER: &str = "reader@example.test";
const PASSWORD: &str = "correct horse battery";
/// Inbox sizes measured, in order (each fill adds to the last).
const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];
/// Runs of each timed command at each size; the median is printed.
const RUNS: usize = 5;
/// Envelopes fetched, newest first.
const NEWEST: usize = 50;
/// Sessions selected for the memory figure.
const SESSIONS: usize = 10;
/// The aims for a million messages.
const SELECT_AIM: Duration = Duration::from_secs(1);
const FETCH_AIM: Duration = Duration::from_millis(50);

fn raw() -> Vec<u8> {
    format!(
        "From: Load Generator <load@example.test>\r\nTo: {USER}\r\nSubject: Fill message\r\n\
         Date: Tue, 24 Nov 2026 20:00:00 +0000\r\nMessage-ID: <fill@example.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         A message of the fill.\r\n"
    )
    .into_bytes()
}

/// The process's resident memory, in bytes (`VmRSS`; 0 where `/proc` is not there).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// An IMAP client over raw TCP.
struct Client {
    io: BufReader<TcpStream>,
    line: Vec<u8>,
    tag: usize,
}

impl Client {
    /// Connects, reads the greeting and logs in.
    async fn login(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut c = Client {
            io: BufReader::new(stream),
            line: Vec::new(),
            tag: 0,
        };
        c.read_line().await;
        assert!(c.line.starts_with(b"* OK"), "{}", c.shown());
        c.command(&format!("LOGIN \"{USER}\" \"{PASSWORD}\"")).await;
        c
    }

    fn shown(&self) -> String {
        String::from_utf8_lossy(&self.line).into_owned()
    }

    /// Reads one line, and the literals it announces, into `line`.
    async fn read_line(&mut self) {
        self.line.clear();
        loop {
            let n = self
                .io
                .read_until(b'\n', &mut self.line)
                .await
                .expect("read");
            assert!(n > 0, "the server closed the connection");
            let Some(size) = literal(&self.line) else {
                return;
            };
            let start = self.line.len();
            self.line.resize(start + size, 0);
            self.io
                .read_exact(&mut self.line[start..])
                .await
                .expect("read literal");
        }
    }

    /// Sends a command and reads to its tagged `OK`; returns the untagged responses' count and
    /// the time from the write to the tagged `OK`.
    async fn command(&mut self, command: &str) -> (usize, Duration) {
        self.tag += 1;
        let tag = format!("a{} ", self.tag);
        let line = format!("{tag}{command}\r\n");
        let start = Instant::now();
        self.io
            .get_mut()
            .write_all(line.as_bytes())
            .await
            .expect("write");
        let mut untagged = 0;
        loop {
            self.read_line().await;
            if self.line.starts_with(tag.as_bytes()) {
                let took = start.elapsed();
                assert!(
                    self.line[tag.len()..].starts_with(b"OK"),
                    "{command}: {}",
                    self.shown()
                );
                return (untagged, took);
            }
            untagged += 1;
        }
    }

    /// Sends `SELECT INBOX`; returns the time and the `EXISTS` count.
    async fn select(&mut self) -> (Duration, usize) {
        self.tag += 1;
        let tag = format!("a{} ", self.tag);
        let start = Instant::now();
        self.io
            .get_mut()
            .write_all(format!("{tag}SELECT INBOX\r\n").as_bytes())
            .await
            .expect("write");
        let mut exists = 0;
        loop {
            self.read_line().await;
            if self.line.starts_with(tag.as_bytes()) {
                assert!(
                    self.line[tag.len()..].starts_with(b"OK"),
                    "{}",
                    self.shown()
                );
                return (start.elapsed(), exists);
            }
            let text = String::from_utf8_lossy(&self.line);
            if let Some(n) = text
                .strip_prefix("* ")
                .and_then(|t| t.trim_end().strip_suffix(" EXISTS"))
            {
                exists = n.parse().expect("EXISTS count");
            }
        }
    }
}

/// The size of the literal a line ends with (`{n}\r\n` or `{n+}\r\n`), if any.
fn literal(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n")?.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let digits = &line[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// What was measured at one size.
struct Figures {
    size: usize,
    fill: Duration,
    select: Duration,
    fetch: Duration,
    uid_fetch: Duration,
    /// Resident memory with no session selected, and its growth with 1 and 10 selected.
    base: u64,
    one: i64,
    many: i64,
}

fn mb(bytes: i64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn main() {
    let max = std::env::var("IMAP_BENCH_MAX")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    let mut config = Config::default();
    config.service.password_iterations = fakemail::service::password::MIN_ITERATIONS;
    let server = Server::start(config);
    let addr = server.imap.expect("IMAP is on");
    let clients = client_runtime();
    clients
        .block_on(server.service.register(NewUser {
            email: USER.into(),
            password: PASSWORD.into(),
            display_name: None,
        }))
        .expect("register");

    println!(
        "IMAP over a growing INBOX ({RUNS} runs of each command, medians; {} byte messages)",
        raw().len()
    );
    let mut all = Vec::new();
    let mut filled = 0;
    for size in SIZES.into_iter().filter(|&s| s <= max) {
        let start = Instant::now();
        fill_inbox(server.store(), USER, &raw(), size - filled);
        let fill_time = start.elapsed();
        eprintln!("filled to {size} in {:.1} s", (fill_time).as_secs_f64());
        filled = size;
        let figures = clients.block_on(async {
            let mut c = Client::login(addr).await;
            let mut selects = Vec::new();
            for _ in 0..RUNS {
                let (took, exists) = c.select().await;
                assert_eq!(exists, size, "EXISTS");
                selects.push(took);
            }
            // The newest 50 UIDs: UIDs of a fresh mailbox are 1..=size.
            let (from, to) = (size - NEWEST + 1, size);
            let mut fetches = Vec::new();
            let mut uid_fetches = Vec::new();
            for _ in 0..RUNS {
                let (n, took) = c.command(&format!("FETCH {from}:{to} (ENVELOPE)")).await;
                assert_eq!(n, NEWEST, "FETCH answers");
                fetches.push(took);
                let (n, took) = c
                    .command(&format!("UID FETCH {from}:{to} (ENVELOPE)"))
                    .await;
                assert_eq!(n, NEWEST, "UID FETCH answers");
                uid_fetches.push(took);
            }
            c.command("LOGOUT").await;
            drop(c);
            // Memory: sessions logged in first, so that only the selection is counted.
            let mut sessions = Vec::new();
            for _ in 0..SESSIONS {
                sessions.push(Client::login(addr).await);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let base = rss();
            sessions[0].select().await;
            let one = rss() as i64 - base as i64;
            for s in &mut sessions[1..] {
                s.select().await;
            }
            let many = rss() as i64 - base as i64;
            for mut s in sessions {
                s.command("LOGOUT").await;
            }
            Figures {
                size,
                fill: fill_time,
                select: median(selects),
                fetch: median(fetches),
                uid_fetch: median(uid_fetches),
                base,
                one,
                many,
            }
        });
        all.push(figures);
    }

    println!();
    println!(
        "| Messages | Fill | SELECT, median | FETCH n-49:n (ENVELOPE) | UID FETCH newest 50 (ENVELOPE) | RSS, none selected | +1 selected | +{SESSIONS} selected | Per selected session | Copies list (16 B each) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for f in &all {
        println!(
            "| {} | {:.1} s | {} ms | {} ms | {} ms | {} | {} | {} | {} | {} |",
            f.size,
            f.fill.as_secs_f64(),
            ms(f.select),
            ms(f.fetch),
            ms(f.uid_fetch),
            mb(f.base as i64),
            mb(f.one),
            mb(f.many),
            mb(f.many / SESSIONS as i64),
            mb(f.size as i64 * 16),
        );
    }
    let (Some(small), Some(large)) = (all.first(), all.last()) else {
        return;
    };
    if small.size == large.size {
        return;
    }
    let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
    println!();
    println!(
        "At {} messages against {} ({}x the messages):",
        large.size,
        small.size,
        large.size / small.size
    );
    println!(
        "- SELECT: {} ms, {:.0}x (aim at 1,000,000: under {} ms)",
        ms(large.select),
        ratio(small.select, large.select),
        SELECT_AIM.as_millis()
    );
    println!(
        "- FETCH newest {NEWEST} ENVELOPEs: {} ms, {:.1}x; UID FETCH: {} ms, {:.1}x (aim: under {} ms)",
        ms(large.fetch),
        ratio(small.fetch, large.fetch),
        ms(large.uid_fetch),
        ratio(small.uid_fetch, large.uid_fetch),
        FETCH_AIM.as_millis()
    );
    // Below some 100 KB, the growth is lost in what VmRSS shows (it moves in pages, and the
    // allocator keeps freed memory): no ratio then.
    let (small_per, large_per) = (small.many / SESSIONS as i64, large.many / SESSIONS as i64);
    let ratio = match small_per >= 100_000 {
        true => format!("{:.0}x", large_per as f64 / small_per as f64),
        false => format!("at {} too small to see", small.size),
    };
    println!(
        "- Memory per selected session: {} ({ratio}); a list of every copy takes {}",
        mb(large_per),
        mb(large.size as i64 * 16)
    );
}
