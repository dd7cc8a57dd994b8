//! A local HTTP listener a test owns, recording every connection and request line: what a
//! mail's remote image, script or handler would reach if it ran. It answers each request with a
//! 1x1 PNG, or with the page it was given for `/` (with or without a query).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A 1x1 transparent PNG.
const PIXEL: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

/// What the listener saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Connections accepted.
    pub connections: usize,
    /// Request lines (`GET /path HTTP/1.1`), in order.
    pub requests: Vec<String>,
    /// Request lines and the `Referer` they carried, for those that carried one.
    pub referers: Vec<(String, String)>,
}

/// The listener; stops when dropped.
pub struct Listener {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl Listener {
    /// Listens on 127.0.0.1 on a free port; `page` is the HTML it serves at `/`, with `csp` as
    /// its Content-Security-Policy if given.
    pub async fn start(page: Option<(String, Option<String>)>) -> Listener {
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = tcp.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let page = Arc::new(page);
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                loop {
                    let Ok((mut conn, _)) = tcp.accept().await else {
                        return;
                    };
                    seen.lock().unwrap().connections += 1;
                    let seen = seen.clone();
                    let page = page.clone();
                    tokio::spawn(async move {
                        let mut head = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                            match conn.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        let head = String::from_utf8_lossy(&head);
                        let line = head.lines().next().unwrap_or("").to_owned();
                        if line.is_empty() {
                            return;
                        }
                        let root = line.starts_with("GET / ") || line.starts_with("GET /?");
                        let referers = head.lines().filter_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("referer")
                                .then(|| (line.clone(), value.trim().to_owned()))
                        });
                        {
                            let mut seen = seen.lock().unwrap();
                            seen.referers.extend(referers);
                            seen.requests.push(line);
                        }
                        let (ctype, csp, body) = match (&*page, root) {
                            (Some((html, csp)), true) => {
                                ("text/html; charset=utf-8", csp.clone(), html.as_bytes())
                            }
                            _ => ("image/png", None, PIXEL),
                        };
                        let mut answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\n\
                             Content-Length: {}\r\nCache-Control: no-store\r\n\
                             Connection: close\r\n",
                            body.len()
                        );
                        if let Some(csp) = csp {
                            answer.push_str(&format!("Content-Security-Policy: {csp}\r\n"));
                        }
                        answer.push_str("\r\n");
                        let _ = conn.write_all(answer.as_bytes()).await;
                        let _ = conn.write_all(body).await;
                        let _ = conn.shutdown().await;
                    });
                }
            }
        });
        Listener { addr, seen, task }
    }

    /// `http://127.0.0.1:port` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What it has seen so far.
    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}
