//! Browser tests: the web UI in headless Chromium, driven over WebDriver by chromedriver,
//! against the real server on free ports. Each test has its own server and its own browsers
//! (at most two live at once in this binary). Without `/usr/bin/chromium` and
//! `/usr/bin/chromedriver` (Debian's chromium and chromium-driver) each test says so and
//! passes, unless `FAKEMAIL_REQUIRE_BROWSER=1` (CI) makes that a failure. `FAKEMAIL_AXE` names
//! axe-core's `axe.min.js` for the accessibility checks, skipped likewise without it.
//!
//! # Layout
//! `harness` starts and stops browsers and waits; `ui` is the UI's moves in terms of its DOM
//! contract; `mail` writes and sends the messages; `listener` is a local HTTP server that
//! records what reaches it; `axe` runs axe-core. The scenarios: `auth`, `mailbox`,
//! `hostile`, `compose`, `admin`, `appearance` (which also writes docs/screenshots/).

#[path = "../common/mod.rs"]
mod common;

mod axe;
mod harness;
mod listener;
mod mail;
mod ui;

mod admin;
mod appearance;
mod auth;
mod compose;
mod hostile;
mod mailbox;

use std::time::Duration;

use harness::scenario;
use listener::Listener;
use serde_json::json;

/// The UI's Content-Security-Policy.
const UI_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                      img-src 'self' data:; connect-src 'self'; frame-src 'self'; \
                      form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// What the scenarios rely on, shown on a page of the harness's own served under the UI's
/// policy, so that a browser that behaves differently fails here with a clear message rather
/// than in the scenarios: the page's inline script is blocked and the log reports it, scripts
/// sent over WebDriver (axe's included) still run, the viewport is 1280x800, dark mode can be
/// emulated, and downloads land in the test's directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_assumptions_hold() {
    let page = "<!doctype html><html lang=en><head><title>harness</title></head>\
                <body><main><h1>Harness</h1>\
                <script>document.title = 'inline script ran'</script></main></body></html>";
    let site = Listener::start(Some((page.into(), Some(UI_CSP.into())))).await;
    let Some([b]) = harness::open::<1>(&site.url("")).await else {
        return;
    };
    scenario("harness", async {
        b.goto("/").await;
        assert_eq!(
            b.client.title().await.unwrap(),
            "harness",
            "the inline script ran"
        );
        let log = b.console().await;
        assert!(
            log.iter()
                .any(|e| e.message.contains("Content Security Policy")),
            "the blocked inline script is not in the browser log: {log:?}"
        );
        assert_eq!(
            b.js("return 6 * 7").await,
            42,
            "WebDriver scripts do not run"
        );
        axe::check(&b, "the harness page").await;

        let png = b.client.screenshot().await.expect("screenshot");
        assert_eq!(harness::png_size(&png), (1280, 800));
        assert_eq!(
            b.js("return [innerWidth, innerHeight]").await,
            json!([1280, 800])
        );
        let dark = "return matchMedia('(prefers-color-scheme: dark)').matches";
        assert_eq!(b.js(dark).await, false);
        b.color_scheme("dark").await;
        assert_eq!(b.js(dark).await, true, "dark mode emulation has no effect");

        b.js("const a = document.createElement('a');
              a.href = 'data:application/octet-stream;base64,AAEC/w==';
              a.download = 'bytes.bin';
              document.body.append(a);
              a.click()")
            .await;
        let path = b.download("bytes.bin", Duration::from_secs(10)).await;
        assert_eq!(std::fs::read(path).unwrap(), [0, 1, 2, 255]);
    })
    .await;
}
