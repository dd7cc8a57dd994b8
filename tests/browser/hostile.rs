//! A hostile message: its scripts and handlers never run and its remote content stays unloaded
//! until the user asks for it. A listener the test owns stands in for the attacker's server;
//! it also serves the image once remote content is allowed, which proves it would have seen
//! the rest.

use std::time::Duration;

use crate::common::TestServer;
use crate::harness::{self, scenario, until};
use crate::listener::Listener;
use crate::mail::{self, Mail};
use crate::ui;

const ALICE: &str = "alice@example.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_scripts_do_not_run_and_remote_images_wait() {
    let attacker = Listener::start(None).await;
    let srv = TestServer::start().await;
    ui::account(&srv, ALICE).await;
    let at = |path: &str| attacker.url(path);
    let html = format!(
        "<!doctype html><html><head>\
         <link rel=stylesheet href=\"{css}\">\
         <script>document.title = 'script ran'; fetch('{script}');\
         new Image().src = '{script_img}'; try {{ top.document.title = 'script ran' }} catch (e) {{}}</script>\
         </head><body>\
         <p>Hostile content marker</p>\
         <img src=\"missing.png\" alt=\"\" onerror=\"fetch('{onerror}'); new Image().src = '{onerror_img}'\">\
         <img src=\"{remote}\" alt=\"remote picture\" width=1 height=1>\
         <a href=\"javascript:fetch('{link}')\">a link</a>\
         </body></html>",
        css = at("/style.css"),
        script = at("/script"),
        script_img = at("/script-img"),
        onerror = at("/onerror"),
        onerror_img = at("/onerror-img"),
        remote = at("/remote.png"),
        link = at("/javascript-link"),
    );
    mail::send(
        srv.smtp,
        &Mail::alternative(ALICE, "Hostile", "Plain part.", &html),
    )
    .await;
    let Some([b]) = harness::open::<1>(&srv.base).await else {
        return;
    };
    scenario("hostile mail", async {
        ui::sign_in(&b, ALICE).await;
        // A reload or a navigation would lose this.
        b.js("window.fakemailTestMarker = 'still here'").await;
        ui::open_message(&b, "Hostile").await;
        ui::frame_text(&b, "Hostile content marker").await;
        // The frame has loaded and its (blocked) image has failed: give anything that would
        // run a moment more to reach the listener.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let seen = attacker.seen();
        assert_eq!(
            seen.connections, 0,
            "the mail reached the network before remote content was allowed: {seen:?}"
        );
        page_untouched(&b).await;
        assert!(
            b.current_url().await.starts_with(&srv.base),
            "the page navigated away"
        );
        b.until_visible("#remote-notice").await;
        b.assert_clean_console("a hostile message").await;

        b.click("#load-remote").await;
        let (_, took) = until(
            "the remote image to be fetched",
            Duration::from_secs(5),
            async || {
                attacker
                    .seen()
                    .requests
                    .iter()
                    .any(|r| r.starts_with("GET /remote.png "))
                    .then_some(())
            },
        )
        .await;
        eprintln!("remote image fetched {took:?} after the click");
        let src = b.attr("iframe#html-frame", "src").await.unwrap_or_default();
        assert!(src.contains("remote=true"), "frame src {src:?}");
        // Remote content allowed, still no script.
        ui::frame_text(&b, "Hostile content marker").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let scripted: Vec<String> = attacker
            .seen()
            .requests
            .into_iter()
            .filter(|r| !r.starts_with("GET /remote.png ") && !r.starts_with("GET /style.css "))
            .collect();
        assert!(scripted.is_empty(), "the mail's script ran: {scripted:?}");
        page_untouched(&b).await;
        b.assert_clean_console("a hostile message, remote content loaded")
            .await;
    })
    .await;
}

/// The UI's page is the one the test left: not reloaded, its title not the mail script's.
async fn page_untouched(b: &harness::Browser) {
    let title = b.client.title().await.unwrap();
    assert!(
        !title.contains("script ran"),
        "the mail's script set the title"
    );
    assert_eq!(
        b.js("return window.fakemailTestMarker").await,
        "still here",
        "the page reloaded or navigated"
    );
}
