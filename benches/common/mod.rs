//! What the benchmarks share: the real server, started in-process on a temporary store and
//! port 0 with its own runtime, as `fakemail serve` would run it, and stopped (drained and
//! flushed) when dropped.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fakemail::config::{Config, DataDir};
use fakemail::service::{Service, mime};
use fakemail::store::Store;
use fakemail::store::mail::{EntryRecord, INBOX, Mailbox, MessageRecord};
use fakemail::time::Timestamp;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

/// The server, running on its own runtime until dropped.
pub struct Server {
    /// The HTTP API's address.
    pub addr: SocketAddr,
    /// The SMTP listener's address.
    pub smtp: SocketAddr,
    /// The POP3 listener's address (on in the default config).
    pub pop3: Option<SocketAddr>,
    /// The IMAP listener's address (on in the default config).
    pub imap: Option<SocketAddr>,
    /// The running server's service, for work done through the library.
    pub service: Service,
    /// The data dir, removed after the server stops.
    pub dir: tempfile::TempDir,
    running: Option<fakemail::server::Running>,
    runtime: Option<Runtime>,
}

impl Server {
    /// Starts the server with `config` (its data dir replaced by a new temporary one).
    pub fn start(mut config: Config) -> Server {
        let dir = tempfile::tempdir().expect("temporary dir");
        config.data = DataDir::Path(dir.path().to_path_buf());
        // As `fakemail serve` does: a default multi-threaded runtime (one worker per core).
        let runtime = Runtime::new().expect("server runtime");
        let store = Store::open(dir.path(), config.cache_size).expect("open store");
        let server = runtime
            .block_on(fakemail::server::Server::bind(config, store))
            .expect("bind 127.0.0.1:0");
        let running = runtime.block_on(async { server.spawn() });
        Server {
            addr: running.http_addr(),
            smtp: running.smtp_addr(),
            pop3: running.pop3_addr(),
            imap: running.imap_addr(),
            service: running.service().clone(),
            dir,
            running: Some(running),
            runtime: Some(runtime),
        }
    }

    pub fn store(&self) -> &Store {
        self.service.store()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let (Some(rt), Some(running)) = (self.runtime.take(), self.running.take()) {
            rt.block_on(running.shutdown()).expect("server run");
        }
    }
}

/// The cores of this machine (2 where that cannot be told).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Adds `n` copies of the message `raw` to `user`'s inbox with `Store::insert_message`, from
/// one thread per core (not through the service: no events, no filters); flushes.
pub fn fill_inbox(store: &Store, user: &str, raw: &[u8], n: usize) {
    let summary = mime::summarize(raw);
    let owner = store.ensure_owner(user).expect("owner");
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..cores() {
            let (next, summary) = (&next, &summary);
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
                        received_at: Timestamp::now(),
                        size: raw.len() as u64,
                        envelope_from: "load@example.test".into(),
                        envelope_to: vec![user.into()],
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
}

/// The runtime the benchmark's clients run on: their own, so that the server's workers serve
/// only the server.
pub fn client_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime")
}

/// Milliseconds with two decimals, for the tables.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// One SMTP connection of a sending client, over raw TCP: EHLO once, then messages back to back
/// with `MAIL`, `RCPT` and `DATA` in one write (PIPELINING), then the body.
pub struct SmtpSender {
    io: BufReader<TcpStream>,
    line: String,
}

impl SmtpSender {
    /// Connects, reads the greeting and says EHLO.
    pub async fn connect(addr: SocketAddr) -> SmtpSender {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut s = SmtpSender {
            io: BufReader::new(stream),
            line: String::new(),
        };
        s.expect(220).await;
        s.write(b"EHLO bench.test\r\n").await;
        s.expect(250).await;
        s
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.io.get_mut().write_all(bytes).await.expect("write");
    }

    /// Reads one (possibly multi-line) reply and checks its code.
    pub async fn expect(&mut self, code: u16) {
        loop {
            self.line.clear();
            let n = self.io.read_line(&mut self.line).await.expect("read");
            assert!(n > 0, "the server closed the connection");
            assert!(
                self.line.starts_with(&code.to_string()),
                "wanted {code}, got {:?}",
                self.line
            );
            if self.line.as_bytes().get(3) != Some(&b'-') {
                return;
            }
        }
    }

    /// Sends one message to `to`: `body` is dot-stuffed and CRLF-terminated, without the final
    /// dot. Returns when the body was written (before the final dot) and when the `250` to it
    /// was read.
    pub async fn send(&mut self, to: &str, body: &[u8]) -> (Instant, Instant) {
        let commands = format!("MAIL FROM:<sender@example.test>\r\nRCPT TO:<{to}>\r\nDATA\r\n");
        self.write(commands.as_bytes()).await;
        self.expect(250).await;
        self.expect(250).await;
        self.expect(354).await;
        self.write(body).await;
        let written = Instant::now();
        self.write(b".\r\n").await;
        self.expect(250).await;
        (written, Instant::now())
    }
}
