//! One headless Chromium per browser a scenario asks for, each behind its own chromedriver on a
//! free port, with a fresh profile and download directory; the waits and probes the scenarios
//! share. Dropping a [`Browser`] kills its chromedriver and the browser's whole process group,
//! so a failing test leaves nothing running.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Debian's launcher of the browser (package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's chromedriver (package `chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Set to `1`, a missing browser (or axe-core) fails the tests instead of skipping them: CI
/// sets it, so the browser tests cannot silently stop running there.
pub const REQUIRE_ENV: &str = "FAKEMAIL_REQUIRE_BROWSER";

/// How long a wait for something the UI should do at once (within about a second) may take
/// before the test fails: generous for a loaded 2-core machine, bounded so a broken UI fails
/// the test rather than hanging it.
pub const WAIT: Duration = Duration::from_secs(5);
/// Bound on a whole scenario, browser start included.
pub const SCENARIO: Duration = Duration::from_secs(180);
/// Live browsers at once in this test binary: each is a handful of processes and a few hundred
/// MB, and CI has two cores.
const LIVE_BROWSERS: u32 = 2;

/// The browser's flags: headless, no sandbox (CI runs as root in a container), and nothing that
/// talks to the network on its own (the tests watch for connections to their listeners).
const FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-crash-reporter",
    "--disable-breakpad",
    "--no-default-browser-check",
    "--lang=en-US",
    "--window-size=1280,800",
];

static SLOTS: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(LIVE_BROWSERS as usize)));

/// Whether [`REQUIRE_ENV`] asks for missing tools to fail the tests.
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// Says why `what` does not run, or fails the test when [`required`].
#[track_caller]
pub fn skip(what: &str, reason: &str) {
    if required() {
        panic!("{what} cannot run: {reason} ({REQUIRE_ENV}=1)");
    }
    // Straight to stderr: the test harness captures `eprintln!` of passing tests, and a skip
    // should be seen.
    let _ = writeln!(std::io::stderr(), "{what} skipped: {reason}");
}

/// Why the browser cannot start here, if it cannot.
fn missing_tools() -> Option<String> {
    [CHROMEDRIVER, CHROMIUM]
        .into_iter()
        .find(|p| !Path::new(p).exists())
        .map(|p| format!("{p} not found; install chromium and chromium-driver"))
}

/// Runs a scenario within [`SCENARIO`], so a hung browser fails the test instead of hanging
/// the run.
pub async fn scenario(what: &str, body: impl Future<Output = ()>) {
    let started = Instant::now();
    tokio::time::timeout(SCENARIO, body)
        .await
        .unwrap_or_else(|_| panic!("{what}: not finished within {SCENARIO:?}"));
    eprintln!("{what}: {:.1} s", started.elapsed().as_secs_f64());
}

/// Starts `N` browsers for one scenario, all showing pages of `base` (`http://host:port`), or
/// `None` (after saying why) when the tools are missing. Waits for free slots first: all `N`
/// at once, so two scenarios that each want two browsers cannot each hold one and wait.
pub async fn open<const N: usize>(base: &str) -> Option<[Browser; N]> {
    if let Some(reason) = missing_tools() {
        skip("browser tests", &reason);
        return None;
    }
    let slot = Arc::new(
        SLOTS
            .clone()
            .acquire_many_owned(N as u32)
            .await
            .expect("the semaphore is never closed"),
    );
    let mut browsers = Vec::with_capacity(N);
    for _ in 0..N {
        browsers.push(Browser::start(base, slot.clone()).await);
    }
    Some(
        browsers
            .try_into()
            .unwrap_or_else(|_| unreachable!("N browsers")),
    )
}

/// Polls `probe` every 50 ms until it gives a value, for at most `limit`; fails the test naming
/// `what` after that. Returns the value and how long it took.
pub async fn until<T>(
    what: &str,
    limit: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> (T, Duration) {
    let started = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return (v, started.elapsed());
        }
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A chromedriver and the browser it starts, as one process group killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts chromedriver on a free port and waits until it answers. Another process may take
    /// the port between choosing and binding it: then chromedriver exits, and this tries again.
    async fn spawn(log: &Path) -> Driver {
        let mut last = String::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, which the browser joins: one kill stops them all.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("start {CHROMEDRIVER}: {e}"));
            let mut driver = Driver { child, port };
            match driver.ready().await {
                Ok(()) => return driver,
                Err(e) => last = e,
            }
        }
        panic!("chromedriver did not start: {last}; its log: {}", tail(log));
    }

    /// Waits (at most 10 s) until this chromedriver answers `/status` as ready.
    async fn ready(&mut self) -> Result<(), String> {
        let client = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Some(status) = self.child.try_wait().expect("poll chromedriver") {
                return Err(format!("chromedriver exited with {status}"));
            }
            let answer = client
                .get(self.url("/status"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if let Ok(res) = answer
                && let Ok(v) = res.json::<Value>().await
                && v["value"]["ready"] == true
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("no answer within 10 s".into())
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        if let Some(group) = rustix::process::Pid::from_raw(pid) {
            // Gone already is fine; anything else leaves processes behind, worth saying.
            if let Err(e) =
                rustix::process::kill_process_group(group, rustix::process::Signal::KILL)
                && e != rustix::io::Errno::SRCH
            {
                eprintln!("kill chromedriver's process group {pid}: {e}");
            }
        }
        let _ = self.child.wait();
    }
}

/// The last lines of a log file, for a failure message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// One browser session showing the UI of one server.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    base: String,
    session: String,
    http: reqwest::Client,
    // Dropped in this order: the session, then the processes, then their directories.
    driver: Driver,
    downloads: TempDir,
    _profile: TempDir,
    _slot: Arc<OwnedSemaphorePermit>,
}

impl Browser {
    async fn start(base: &str, slot: Arc<OwnedSemaphorePermit>) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let downloads = tempfile::tempdir().expect("download dir");
        let log = profile.path().join("chromedriver.log");
        let driver = Driver::spawn(&log).await;
        let mut args: Vec<String> = FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!(
            "--user-data-dir={}",
            profile.path().join("chromium").display()
        ));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                "prefs": {
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                },
            },
            // Every console message, CSP reports included, for Browser::console.
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = tokio::time::timeout(
            Duration::from_secs(60),
            ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(&driver.url("")),
        )
        .await
        .unwrap_or_else(|_| panic!("no browser session within 60 s; log: {}", tail(&log)))
        .unwrap_or_else(|e| panic!("browser session: {e}; log: {}", tail(&log)));
        let session = client
            .session_id()
            .await
            .expect("session id")
            .expect("a session");
        let b = Browser {
            client,
            base: base.trim_end_matches('/').to_owned(),
            session,
            http: reqwest::Client::new(),
            driver,
            downloads,
            _profile: profile,
            _slot: slot,
        };
        b.viewport(1280, 800, false).await;
        // The same clock face on every machine (the screenshots show times).
        b.cdp(
            "Emulation.setTimezoneOverride",
            json!({ "timezoneId": "UTC" }),
        )
        .await;
        b
    }

    /// Sets the page's viewport to `width` x `height` CSS pixels at scale 1 (what screenshots
    /// show), as a phone (`mobile`: touch, meta viewport honoured) or a desktop window. The
    /// window's own size counts the browser's frame, hence the emulation.
    pub async fn viewport(&self, width: u32, height: u32, mobile: bool) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        )
        .await;
    }

    /// Emulates `prefers-color-scheme: dark` (or light) for this tab, across navigations.
    pub async fn color_scheme(&self, scheme: &str) {
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
        )
        .await;
    }

    /// The server's URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The directory downloads land in.
    pub fn downloads(&self) -> &Path {
        self.downloads.path()
    }

    /// Opens `path` of the server.
    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&self.url(path))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// Opens `path` and waits until the UI has rendered its first list
    /// (`body[data-ready="1"]`).
    pub async fn open(&self, path: &str) {
        self.goto(path).await;
        self.ready().await;
    }

    /// Waits until the UI has rendered its first list.
    pub async fn ready(&self) {
        self.until_js(
            "the UI to be ready (body[data-ready=\"1\"])",
            "return document.body && document.body.dataset.ready === '1'",
        )
        .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the current frame.
    pub async fn js_with(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs `script` (a function body) in the current frame and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.js_with(script, Vec::new()).await
    }

    /// Waits until `script` returns a truthy value; returns how long it took.
    pub async fn until_js(&self, what: &str, script: &str) -> Duration {
        self.until_js_within(what, WAIT, script).await
    }

    /// [`Browser::until_js`] with its own bound.
    pub async fn until_js_within(&self, what: &str, limit: Duration, script: &str) -> Duration {
        until(what, limit, async || {
            let v = self.js(script).await;
            truthy(&v).then_some(())
        })
        .await
        .1
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        until(&format!("an element {css}"), WAIT, async || {
            self.client.find(Locator::Css(css)).await.ok()
        })
        .await
        .0
    }

    /// Every element matching `css` now (no wait).
    pub async fn all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"))
    }

    /// Whether an element matches `css` now (no wait).
    pub async fn exists(&self, css: &str) -> bool {
        !self.all(css).await.is_empty()
    }

    /// Whether the first element matching `css` exists and is displayed, now.
    pub async fn visible(&self, css: &str) -> bool {
        match self.all(css).await.first() {
            Some(e) => e.is_displayed().await.unwrap_or(false),
            None => false,
        }
    }

    /// Waits until an element matches `css` and is displayed.
    pub async fn until_visible(&self, css: &str) -> Element {
        until(&format!("{css} to be visible"), WAIT, async || {
            let e = self.client.find(Locator::Css(css)).await.ok()?;
            e.is_displayed().await.ok()?.then_some(e)
        })
        .await
        .0
    }

    /// Waits until nothing matching `css` is displayed (gone, or hidden).
    pub async fn until_hidden(&self, css: &str) {
        until(&format!("{css} to be hidden"), WAIT, async || {
            (!self.visible(css).await).then_some(())
        })
        .await;
    }

    /// Clicks the element matching `css`, once it is visible. The UI re-renders parts of the
    /// page as events arrive, so an element found a moment ago may be gone by the click: then
    /// it finds the new one and clicks again (within [`WAIT`]).
    pub async fn click(&self, css: &str) {
        self.retry(&format!("click {css}"), css, async |e: Element| {
            e.click().await
        })
        .await;
    }

    /// Replaces the value of the input matching `css` by typing `text` (retrying as
    /// [`Browser::click`] does).
    pub async fn fill(&self, css: &str, text: &str) {
        self.retry(&format!("type into {css}"), css, async |e: Element| {
            e.clear().await?;
            e.send_keys(text).await
        })
        .await;
    }

    /// Chooses the option with `value` in the select matching `css` (retrying as
    /// [`Browser::click`] does).
    pub async fn select(&self, css: &str, value: &str) {
        self.retry(
            &format!("choose {value} in {css}"),
            css,
            async |e: Element| e.select_by_value(value).await,
        )
        .await;
    }

    /// Runs `act` on the visible element matching `css` until it succeeds, at most [`WAIT`];
    /// fails the test with the last error after that.
    async fn retry(
        &self,
        what: &str,
        css: &str,
        act: impl AsyncFn(Element) -> Result<(), fantoccini::error::CmdError>,
    ) {
        let started = Instant::now();
        loop {
            let e = self.until_visible(css).await;
            match act(e).await {
                Ok(()) => return,
                Err(err) if started.elapsed() < WAIT => {
                    eprintln!("{what}: {err}; again");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => panic!("{what}: {err}"),
            }
        }
    }

    /// The text (`textContent`, whitespace-trimmed) of the element matching `css`, waiting for
    /// it to exist.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await;
        self.js_with(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : null",
            vec![json!(css)],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// An attribute of the element matching `css` (waiting for it to exist), read in one
    /// script so a re-render in between cannot leave a stale reference.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.find(css).await;
        self.js_with(
            "const e = document.querySelector(arguments[0]); \
             return e ? e.getAttribute(arguments[1]) : null",
            vec![json!(css), json!(name)],
        )
        .await
        .as_str()
        .map(str::to_owned)
    }

    /// Waits until the text of the element matching `css` contains `needle`.
    pub async fn until_text(&self, css: &str, needle: &str) -> Duration {
        self.until_js_with(
            &format!("{css} to contain {needle:?}"),
            "const e = document.querySelector(arguments[0]); \
             return !!e && e.textContent.includes(arguments[1])",
            vec![json!(css), json!(needle)],
        )
        .await
    }

    /// [`Browser::until_js`] with arguments.
    pub async fn until_js_with(&self, what: &str, script: &str, args: Vec<Value>) -> Duration {
        until(what, WAIT, async || {
            let v = self.js_with(script, args.clone()).await;
            truthy(&v).then_some(())
        })
        .await
        .1
    }

    /// Presses `key` (a character, or one of WebDriver's special keys such as `'\u{E007}'`,
    /// Enter) on whatever has the focus, as a user would.
    pub async fn press(&self, key: char) {
        let keys = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
        self.client
            .perform_actions(keys)
            .await
            .unwrap_or_else(|e| panic!("press {key:?}: {e}"));
    }

    /// Moves the focus off any input, so that keys go to the page's shortcuts.
    pub async fn blur(&self) {
        self.js("if (document.activeElement) document.activeElement.blur()")
            .await;
    }

    /// The current URL.
    pub async fn current_url(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("current URL")
            .to_string()
    }

    /// A Chrome DevTools Protocol command, through chromedriver's `goog/cdp/execute`.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.session_post("goog/cdp/execute", json!({ "cmd": cmd, "params": params }))
            .await
    }

    /// The browser's console messages since the last call, CSP reports included (chromedriver
    /// keeps them because of `goog:loggingPrefs`; reading drains them).
    pub async fn console(&self) -> Vec<LogEntry> {
        let v = self
            .session_post("se/log", json!({ "type": "browser" }))
            .await;
        serde_json::from_value(v).expect("log entries")
    }

    /// Fails the test if the browser log since the last read reports a Content-Security-Policy
    /// violation or an uncaught script error of the UI on `screen`. Reports from a mail's own
    /// frame (`/html` of a message: its policy blocks remote content by design) are expected
    /// and left out, as are failed requests (the UI asks who is signed in before anyone is).
    pub async fn assert_clean_console(&self, screen: &str) {
        let bad: Vec<LogEntry> = self
            .console()
            .await
            .into_iter()
            .filter(|e| {
                let csp = e.message.contains("Content Security Policy")
                    || e.message.contains("Content-Security-Policy");
                let script_error = e.level == "SEVERE" && e.source.as_deref() == Some("javascript");
                (csp || script_error) && !from_mail_frame(&e.message)
            })
            .collect();
        assert!(
            bad.is_empty(),
            "the browser log of {screen} reports:\n{}",
            bad.iter()
                .map(|e| format!("- [{}] {}\n", e.level, e.message))
                .collect::<String>()
        );
    }

    /// POSTs to a chromedriver extension endpoint of this session; returns `value`.
    async fn session_post(&self, path: &str, body: Value) -> Value {
        let url = self
            .driver
            .url(&format!("/session/{}/{path}", self.session));
        let res = self
            .http
            .post(&url)
            .json(&body)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = res.status();
        let v: Value = res.json().await.expect("chromedriver answers JSON");
        assert!(status.is_success(), "POST {path} {body}: {status} {v}");
        v["value"].clone()
    }

    /// Saves a PNG of the viewport to `path`, creating its directory.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Waits (at most `limit`) for a finished download named `name`; returns its path.
    pub async fn download(&self, name: &str, limit: Duration) -> PathBuf {
        let path = self.downloads().join(name);
        until(&format!("the download {name}"), limit, async || {
            // Chromium writes `<name>.crdownload` and renames it when complete.
            path.is_file().then(|| path.clone())
        })
        .await
        .0
    }
}

/// One entry of the browser log.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct LogEntry {
    pub level: String,
    pub source: Option<String>,
    pub message: String,
}

/// Whether a log message comes from a message's HTML (`.../messages/<id>/html`), which
/// Chromium names at the start of the message.
fn from_mail_frame(message: &str) -> bool {
    let url = message.split_whitespace().next().unwrap_or("");
    url.contains("/messages/") && url.split('?').next().is_some_and(|u| u.ends_with("/html"))
}

/// JavaScript's truthiness of a JSON value.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// The width and height of a PNG, from its header.
pub fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}
