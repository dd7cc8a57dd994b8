//! A hostile message: its scripts and handlers never run and its remote content stays unloaded
//! until the user asks for it. A listener the test owns stands in for the attacker's server;
//! it also serves the image once remote content is allowed, which proves it would have seen
//! the rest. And a link in a mail, which opens in a new tab, with no referrer and no way back
//! to the UI.

use std::time::Duration;

use fantoccini::Locator;

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

        // Its `javascript:` link, clicked, runs nothing either, here or in a new tab.
        let ui_window = b.client.window().await.unwrap();
        let frame = b.find("iframe#html-frame").await;
        frame.enter_frame().await.expect("into the frame");
        b.client
            .find(Locator::Css("a"))
            .await
            .expect("the mail's link")
            .click()
            .await
            .expect("click the mail's link");
        b.client
            .enter_parent_frame()
            .await
            .expect("back to the page");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let seen = attacker.seen();
        assert_eq!(seen.connections, 0, "the javascript: link ran: {seen:?}");
        for w in b.client.windows().await.unwrap() {
            if w != ui_window {
                b.client.switch_to_window(w).await.unwrap();
                eprintln!("the javascript: link opened {}", b.current_url().await);
                b.client.close_window().await.unwrap();
            }
        }
        b.client.switch_to_window(ui_window).await.unwrap();
        page_untouched(&b).await;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_in_a_mail_opens_in_a_new_tab() {
    let page = "<!doctype html><html lang=en><head><title>Confirmed</title></head>\
                <body><h1>Address confirmed</h1></body></html>";
    let site = Listener::start(Some((page.into(), None))).await;
    let srv = TestServer::start().await;
    ui::account(&srv, ALICE).await;
    let link = site.url("/?token=4f2a9c");
    let html = format!(
        "<!doctype html><html><head><base target=\"_self\"></head><body>\
         <p>Welcome aboard</p><p><a id=confirm href=\"{link}\">Confirm your address</a></p>\
         </body></html>"
    );
    mail::send(
        srv.smtp,
        &Mail::alternative(ALICE, "Confirm", &format!("Confirm: {link}"), &html),
    )
    .await;
    let Some([b]) = harness::open::<1>(&srv.base).await else {
        return;
    };
    scenario("a link in a mail", async {
        ui::sign_in(&b, ALICE).await;
        b.js("window.fakemailTestMarker = 'still here'").await;
        ui::open_message(&b, "Confirm").await;
        ui::frame_text(&b, "Welcome aboard").await;
        let ui_window = b.client.window().await.unwrap();

        let frame = b.find("iframe#html-frame").await;
        frame.enter_frame().await.expect("into the frame");
        b.client
            .find(Locator::Css("a#confirm"))
            .await
            .expect("the mail's link")
            .click()
            .await
            .expect("click the mail's link");
        b.client
            .enter_parent_frame()
            .await
            .expect("back to the page");

        let (tab, _) = until("a new tab", Duration::from_secs(5), async || {
            let windows = b.client.windows().await.ok()?;
            windows.into_iter().find(|w| *w != ui_window)
        })
        .await;
        let (_, took) = until(
            "the link's page to be asked for",
            Duration::from_secs(5),
            async || {
                site.seen()
                    .requests
                    .iter()
                    .any(|r| r.starts_with("GET /?token=4f2a9c "))
                    .then_some(())
            },
        )
        .await;
        eprintln!("the link's page was asked for {took:?} after the click");
        let referers = site.seen().referers;
        assert!(
            !referers.iter().any(|(line, _)| line.contains("token=")),
            "the link sent a referrer: {referers:?}"
        );

        b.client
            .switch_to_window(tab)
            .await
            .expect("to the new tab");
        b.until_js("the linked page", "return document.title === 'Confirmed'")
            .await;
        assert_eq!(b.current_url().await, link);
        assert_eq!(
            b.js("return window.opener === null").await,
            true,
            "the new tab can reach the UI's window"
        );
        b.client.close_window().await.expect("close the tab");
        b.client
            .switch_to_window(ui_window)
            .await
            .expect("back to the UI");

        // The UI stayed where it was, the mail still in its frame.
        page_untouched(&b).await;
        assert!(b.current_url().await.starts_with(&srv.base));
        ui::frame_text(&b, "Welcome aboard").await;
        b.assert_clean_console("a mail whose link was followed")
            .await;
    })
    .await;
}
