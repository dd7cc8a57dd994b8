//! POP3 benchmark: `cargo bench --bench pop3`.
//!
//! Starts the real server in-process (`benches/common`) and fills one account's `inbox` with
//! `Store::insert_message` to 1,000, 10,000 and 100,000 messages. At each size a client on
//! its own runtime logs in over the loopback interface, [`LOGINS`] times: the time from `PASS`
//! to its `+OK` is the password check (at the lowest PBKDF2 iteration count, so that the
//! maildrop is what is measured) plus the snapshot of the inbox. Then, once per size: `UIDL`
//! of the whole maildrop, and `RETR` of the 50 newest messages, one after the other. The
//! memory a session's snapshot takes is computed (16 bytes per message for its id and size, 1
//! for its deletion mark), not measured.
//!
//! Nothing is asserted. The default run takes well under a minute on 2 cores.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Server, client_runtime, fill_inbox, ms};
use fakemail::config::Config;
use fakemail::service::NewUser;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const USER: &str = "reader@example.test";
const PASSWORD: &str = "correct horse battery";
/// Inbox sizes measured, in order (each fill adds to the last).
const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
/// Logins timed at each size; the median is printed.
const LOGINS: usize = 5;
/// Messages fetched with RETR at each size.
const RETRS: usize = 50;

fn raw(n: usize) -> Vec<u8> {
    format!(
        "From: Load Generator <load@example.test>\r\nTo: {USER}\r\nSubject: Fill message {n}\r\n\
         Date: Tue, 24 Nov 2026 20:00:00 +0000\r\nMessage-ID: <fill-{n}@example.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Message {n} of the fill, about two kilobytes long.\r\n{}\r\n",
        "x".repeat(1_800)
    )
    .into_bytes()
}

/// A POP3 client over raw TCP.
struct Client {
    io: BufReader<TcpStream>,
    line: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut c = Client {
            io: BufReader::new(stream),
            line: Vec::new(),
        };
        c.ok().await;
        c
    }

    async fn send(&mut self, line: &str) {
        let line = format!("{line}\r\n");
        self.io
            .get_mut()
            .write_all(line.as_bytes())
            .await
            .expect("write");
    }

    async fn ok(&mut self) {
        self.line.clear();
        self.io
            .read_until(b'\n', &mut self.line)
            .await
            .expect("read");
        assert!(
            self.line.starts_with(b"+OK"),
            "{:?}",
            String::from_utf8_lossy(&self.line)
        );
    }

    /// Reads a multi-line body to its `.`; returns its bytes.
    async fn body(&mut self) -> usize {
        let mut bytes = 0;
        loop {
            self.line.clear();
            self.io
                .read_until(b'\n', &mut self.line)
                .await
                .expect("read");
            if self.line == b".\r\n" {
                return bytes;
            }
            bytes += self.line.len();
        }
    }

    /// USER and PASS; returns the time from PASS to its `+OK`.
    async fn login(&mut self) -> Duration {
        self.send(&format!("USER {USER}")).await;
        self.ok().await;
        let start = Instant::now();
        self.send(&format!("PASS {PASSWORD}")).await;
        self.ok().await;
        start.elapsed()
    }
}

fn main() {
    let mut config = Config::default();
    config.service.password_iterations = fakemail::service::password::MIN_ITERATIONS;
    let server = Server::start(config);
    let addr = server.pop3.expect("POP3 is on");
    let clients = client_runtime();
    clients
        .block_on(server.service.register(NewUser {
            email: USER.into(),
            password: PASSWORD.into(),
            display_name: None,
        }))
        .expect("register");

    println!("POP3 over a growing inbox ({LOGINS} logins at each size; 2 KB messages)");
    println!();
    println!(
        "| Messages | Login (PASS to +OK), median | UIDL, whole maildrop | RETR x{RETRS}, newest | Snapshot memory |"
    );
    println!("|---|---|---|---|---|");
    let mut filled = 0;
    for size in SIZES {
        fill_inbox(server.store(), USER, &raw(0), size - filled);
        filled = size;
        let (login, uidl, retr) = clients.block_on(async {
            let mut logins = Vec::new();
            for _ in 0..LOGINS {
                let mut c = Client::connect(addr).await;
                logins.push(c.login().await);
                c.send("QUIT").await;
                c.ok().await;
            }
            logins.sort();
            let mut c = Client::connect(addr).await;
            c.login().await;
            let start = Instant::now();
            c.send("UIDL").await;
            c.ok().await;
            c.body().await;
            let uidl = start.elapsed();
            let start = Instant::now();
            for n in (size - RETRS + 1)..=size {
                c.send(&format!("RETR {n}")).await;
                c.ok().await;
                c.body().await;
            }
            let retr = start.elapsed();
            c.send("QUIT").await;
            c.ok().await;
            (logins[LOGINS / 2], uidl, retr)
        });
        println!(
            "| {size} | {} ms | {} ms | {} ms | {:.2} MB |",
            ms(login),
            ms(uidl),
            ms(retr),
            (size * 17) as f64 / 1e6
        );
    }
}
