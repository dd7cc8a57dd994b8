//! How the UI looks: the screenshots in docs/screenshots/, dark mode, and the layout on a 375 px
//! wide phone.
//!
//! Every run takes the screenshots. They go to docs/screenshots/ when the UI's files have
//! changed since they were last written there (the digest of `src/ui/assets/` differs from
//! `docs/screenshots/ui-assets.sha256`) or `FAKEMAIL_SCREENSHOTS=1` asks for it, so they
//! follow the UI without a run that changes nothing leaving the tree modified (the times
//! they show differ on every run); otherwise to the target dir's `screenshots/`.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use serde_json::Value;

use crate::common::{CHAOS_ADMIN, TestServer};
use crate::harness::{self, Browser, WAIT, scenario, until};
use crate::mail::{self, Mail};
use crate::{axe, ui};

const ALICE: &str = "alice@example.test";

/// The committed screenshots.
fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots")
}

/// The file that holds the digest of the UI's files the committed screenshots show.
const STAMP: &str = "ui-assets.sha256";

/// The SHA-256 of the UI's files, names and contents, in name order, as hex.
fn assets_digest() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/ui/assets");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        h.update(f.file_name().expect("a file name").as_encoded_bytes());
        h.update([0]);
        h.update(std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display())));
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Where this run's screenshots go, and the digest to stamp them with when that is docs/.
fn shots_dir() -> (PathBuf, Option<String>) {
    let digest = assets_digest();
    let stamped = std::fs::read_to_string(docs_dir().join(STAMP)).unwrap_or_default();
    let forced = std::env::var("FAKEMAIL_SCREENSHOTS").is_ok_and(|v| v == "1");
    if forced || stamped.trim() != digest {
        (docs_dir(), Some(digest))
    } else {
        (
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
            None,
        )
    }
}

/// Saves a 1280x800 screenshot named `name` in `dir`, after checking its size.
async fn save(b: &Browser, dir: &std::path::Path, name: &str) {
    let path = dir.join(name);
    b.screenshot(&path).await;
    let png = std::fs::read(&path).unwrap();
    assert_eq!(harness::png_size(&png), (1280, 800), "{name}");
    eprintln!("{}: {} KB", path.display(), png.len() / 1024);
}

/// The relative luminance (0 black .. 1 white) of the page's background: the first of body
/// and html whose background is not transparent.
async fn background_luminance(b: &Browser) -> f64 {
    let v = b
        .js("for (const e of [document.body, document.documentElement]) {
                 const c = getComputedStyle(e).backgroundColor.match(/[\\d.]+/g).map(Number);
                 if (c.length < 4 || c[3] > 0) {
                     const lin = x => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4 };
                     return 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
                 }
             }
             return 1")
        .await;
    v.as_f64().expect("a number")
}

/// Fixed mail for the screenshots.
async fn seed(srv: &TestServer) {
    let order_html = "<!doctype html><html><body style=\"font-family: sans-serif\">\
        <h2>Your order #1042 has shipped</h2>\
        <p>Hi Alice, good news: your parcel is on its way.</p>\
        <table border=1 cellpadding=6 style=\"border-collapse: collapse\">\
        <tr><th>Item</th><th>Qty</th><th>Price</th></tr>\
        <tr><td>Mechanical keyboard</td><td>1</td><td>89.00 EUR</td></tr>\
        <tr><td>USB-C cable</td><td>2</td><td>9.90 EUR</td></tr></table>\
        <p><a href=\"https://shop.example.test/track/1042\">Track your parcel</a></p>\
        </body></html>";
    let mails = [
        Mail::text(
            ALICE,
            "Welcome to Example Shop",
            "Hi Alice,\n\nthanks for signing up. Confirm your address with the code 482913.\n",
        ),
        Mail::text(
            ALICE,
            "Your invoice for order #1042",
            "The invoice is attached.\n",
        )
        .attach(
            "invoice-1042.pdf",
            "application/pdf",
            b"%PDF-1.4\n%fake\n".to_vec(),
        ),
        Mail::text(
            ALICE,
            "Reset your password",
            "Someone asked to reset your password. Use this link within an hour:\n\
             https://shop.example.test/reset?token=4f1c2a\n",
        ),
        Mail::alternative(
            ALICE,
            "Your order #1042 has shipped",
            "Hi Alice, good news: your parcel is on its way.\n",
            order_html,
        ),
        Mail::text(
            "qa-bot@example.test",
            "Nightly report: 212 passed, 0 failed",
            "All green.\n",
        ),
    ];
    for m in &mails {
        mail::send(srv.smtp, m).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_and_dark_mode() {
    let srv = TestServer::start_chaos(false).await;
    ui::account(&srv, ALICE).await;
    seed(&srv).await;
    let Some([b]) = harness::open::<1>(&srv.base).await else {
        return;
    };
    let (dir, stamp) = shots_dir();
    scenario("screenshots", async {
        ui::sign_in(&b, ALICE).await;
        ui::until_row(&b, "Welcome to Example Shop").await;
        assert_eq!(ui::rows(&b).await.len(), 4);
        b.blur().await;
        let light = background_luminance(&b).await;
        save(&b, &dir, "inbox.png").await;

        ui::open_message(&b, "Your order #1042 has shipped").await;
        ui::frame_text(&b, "your parcel is on its way").await;
        // Opening it read it: wait for the count to say so, so the picture is settled.
        until("the unread count to drop to 3", WAIT, async || {
            (ui::unread_count(&b, "inbox").await == "3").then_some(())
        })
        .await;
        save(&b, &dir, "message.png").await;

        b.color_scheme("dark").await;
        let dark = background_luminance(&b).await;
        eprintln!("background luminance: light {light:.3}, dark {dark:.3}");
        assert!(
            light > 0.5 && dark < 0.2,
            "prefers-color-scheme: dark does not darken the page (light {light:.3}, dark {dark:.3})"
        );
        axe::check(&b, "a message in dark mode").await;
        save(&b, &dir, "dark.png").await;
        b.color_scheme("light").await;

        b.open(&format!("/admin#token={CHAOS_ADMIN}")).await;
        ui::until_row(&b, "Nightly report: 212 passed, 0 failed").await;
        assert_eq!(
            ui::rows(&b).await.len(),
            5,
            "the operator sees every message"
        );
        ui::open_message(&b, "Nightly report: 212 passed, 0 failed").await;
        b.until_text("#text-body", "All green.").await;
        b.blur().await;
        save(&b, &dir, "admin.png").await;
        b.assert_clean_console("the screenshots").await;
        if let Some(digest) = &stamp {
            std::fs::write(dir.join(STAMP), format!("{digest}\n")).expect("the stamp");
            eprintln!("screenshots of the current UI written to {}", dir.display());
        }
    })
    .await;
}

/// On a 375 px phone nothing is wider than the screen and the list and a message pass axe; at
/// either width the rows of the list start at the same x.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_layout_and_aligned_rows() {
    let srv = TestServer::start().await;
    ui::account(&srv, ALICE).await;
    seed(&srv).await;
    let Some([b]) = harness::open::<1>(&srv.base).await else {
        return;
    };
    scenario("phone layout", async {
        ui::sign_in(&b, ALICE).await;
        ui::until_row(&b, "Welcome to Example Shop").await;
        rows_aligned(&b, "the inbox at 1280 px").await;

        b.viewport(375, 740, true).await;
        b.client.refresh().await.expect("reload");
        b.ready().await;
        ui::until_row(&b, "Welcome to Example Shop").await;
        phone_fits(&b, "the inbox").await;
        rows_aligned(&b, "the inbox at 375 px").await;
        axe::check(&b, "the inbox at 375 px").await;
        ui::open_message(&b, "Welcome to Example Shop").await;
        b.until_visible("#msg-subject").await;
        phone_fits(&b, "a message").await;
        axe::check(&b, "a message at 375 px").await;
        b.assert_clean_console("the phone layout").await;
    })
    .await;
}

/// Fails unless every listed row's sender and subject start at the same x (the marks and the
/// lengths of the texts must not move them).
async fn rows_aligned(b: &Browser, screen: &str) {
    let v = b
        .js(
            "return [...document.querySelectorAll('#message-list li[data-id]')].map(li =>
                 [li.querySelector('.from'), li.querySelector('.subject')]
                     .map(e => Math.round(e.getBoundingClientRect().left)))",
        )
        .await;
    let lefts: Vec<[i64; 2]> = serde_json::from_value(v).expect("offsets");
    assert!(lefts.len() > 1, "{screen}: too few rows to compare");
    assert!(
        lefts.iter().all(|l| *l == lefts[0]),
        "{screen}: rows start at different x (sender, subject per row): {lefts:?}"
    );
}

/// Fails if the page scrolls sideways at the current (phone) width.
async fn phone_fits(b: &Browser, screen: &str) {
    let v: Value = b
        .js("return [document.documentElement.scrollWidth, innerWidth]")
        .await;
    let (scroll, width) = (v[0].as_u64().unwrap(), v[1].as_u64().unwrap());
    assert_eq!(width, 375, "the viewport");
    assert!(
        scroll <= width,
        "{screen} is {scroll} px wide on a {width} px screen"
    );
}
