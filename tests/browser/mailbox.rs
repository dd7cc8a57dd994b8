//! A user's mail in the UI: live delivery, reading a message, attachments, moving and deleting,
//! the keyboard.

use std::time::{Duration, Instant};

use crate::common::{TestServer, mailbox};
use crate::harness::{self, WAIT, scenario, until};
use crate::mail::{self, Mail};
use crate::{axe, ui};

const ALICE: &str = "alice@example.test";

/// A signed-in user's open inbox shows mail sent over SMTP at once, unread, without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_mail_appears_in_the_open_inbox() {
    let srv = TestServer::start().await;
    ui::account(&srv, ALICE).await;
    let Some([b]) = harness::open::<1>(&srv.base).await else {
        return;
    };
    scenario("live inbox", async {
        ui::sign_in(&b, ALICE).await;
        assert!(ui::rows(&b).await.is_empty());
        assert_eq!(ui::unread_count(&b, "inbox").await, "");
        // A reload would lose this.
        b.js("window.fakemailTestMarker = 'still here'").await;

        let sent = Instant::now();
        mail::send(
            srv.smtp,
            &Mail::text(ALICE, "Live delivery", "Your parcel has shipped."),
        )
        .await;
        let (row, _) = ui::until_row(&b, "Live delivery").await;
        let latency = sent.elapsed();
        eprintln!("SMTP to the open inbox: {latency:?}");
        assert!(row.unread, "a new message is not shown unread: {row:?}");
        assert!(row.from.contains("shop@example.test") || row.from.contains("Example Shop"));
        b.until_text(
            &format!("#message-list li[data-id=\"{}\"] .snippet", row.id),
            "Your parcel has shipped.",
        )
        .await;
        until("the unread count to be 1", WAIT, async || {
            (ui::unread_count(&b, "inbox").await == "1").then_some(())
        })
        .await;

        mail::send(srv.smtp, &Mail::text(ALICE, "Second", "Another one.")).await;
        until("both messages, newest first", WAIT, async || {
            (ui::subjects(&b).await == ["Second", "Live delivery"]).then_some(())
        })
        .await;
        until("the unread count to be 2", WAIT, async || {
            (ui::unread_count(&b, "inbox").await == "2").then_some(())
        })
        .await;
        assert_eq!(
            b.js("return window.fakemailTestMarker").await,
            "still here",
            "the page reloaded"
        );
        axe::check(&b, "the inbox").await;
        b.assert_clean_console("the live inbox").await;
    })
    .await;
}

/// Opening a message shows its headers, its HTML in the sandboxed frame and its text; the read
/// toggle changes the server's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_shows_its_html_and_text() {
    let srv = TestServer::start().await;
    ui::account(&srv, ALICE).await;
    let token = srv.login(ALICE).await;
    mail::send(
        srv.smtp,
        &Mail::alternative(
            ALICE,
            "Your order",
            "Thanks for your order, in plain text.\nOrder 42.\n",
            "<!doctype html><html><body><h1>Order 42</h1>\
             <p>Thanks for your order, <b>in HTML</b>.</p></body></html>",
        ),
    )
    .await;
    let Some([b]) = harness::open::<1>(&srv.base).await else {
        return;
    };
    scenario("reading a message", async {
        ui::sign_in(&b, ALICE).await;
        let row = ui::open_message(&b, "Your order").await;
        assert!(b.text("#msg-from").await.contains("shop@example.test"));
        assert!(b.text("#msg-to").await.contains(ALICE));
        assert!(!b.text("#msg-date").await.is_empty(), "no date shown");

        let sandbox = b
            .attr("iframe#html-frame", "sandbox")
            .await
            .expect("the mail frame has no sandbox attribute");
        assert!(
            !sandbox.contains("allow-scripts") && !sandbox.contains("allow-same-origin"),
            "the mail frame's sandbox lets scripts run or shares the origin: {sandbox:?}"
        );
        let src = b.attr("iframe#html-frame", "src").await.unwrap_or_default();
        assert!(
            src.contains(&format!("/api/v1/messages/{}/html", row.id)),
            "frame src {src:?}"
        );
        let html = ui::frame_text(&b, "Thanks for your order, in HTML.").await;
        assert!(html.contains("Order 42"), "{html:?}");
        axe::check(&b, "a message (HTML)").await;

        b.click("#tab-text").await;
        b.until_visible("#text-body").await;
        b.until_text("#text-body", "Thanks for your order, in plain text.")
            .await;
        b.click("#tab-raw").await;
        b.until_text("#raw-body", "Subject: Your order").await;
        b.click("#tab-headers").await;
        b.until_text("#headers-table", "Subject").await;
        axe::check(&b, "a message (headers)").await;

        // The row, the count and the server agree about the read state, and the toggle flips it.
        let read_on_server = async || {
            mailbox(&srv, &token, "inbox")
                .await
                .iter()
                .find(|m| m["id"] == row.id.as_str())
                .expect("the message is in the inbox")["read"]
                .as_bool()
                .unwrap()
        };
        let shown_unread = async || {
            ui::rows(&b)
                .await
                .into_iter()
                .find(|r| r.id == row.id)
                .expect("the row")
                .unread
        };
        until("the row to agree with the server", WAIT, async || {
            (shown_unread().await != read_on_server().await).then_some(())
        })
        .await;
        let was_read = read_on_server().await;
        eprintln!("read after opening: {was_read}");
        b.click("#action-read").await;
        until("the read toggle to reach the server", WAIT, async || {
            (read_on_server().await != was_read).then_some(())
        })
        .await;
        until("the row to follow the toggle", WAIT, async || {
            (shown_unread().await == was_read).then_some(())
        })
        .await;
        b.assert_clean_console("a message").await;
    })
    .await;
}

/// An attachment downloads byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_downloads_unchanged() {
    let srv = TestServer::start().await;
    ui::account(&srv, ALICE).await;
    // Every byte value, and more than one base64 line.
    let bytes: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 256) as u8).collect();
    mail::send(
        srv.smtp,
        &Mail::text(ALICE, "Your invoice", "The invoice is attached.").attach(
            "invoice-7.bin",
            "application/octet-stream",
            bytes.clone(),
        ),
    )
    .await;
    let Some([b]) = harness::open::<1>(&srv.base).await else {
        return;
    };
    scenario("attachment", async {
        ui::sign_in(&b, ALICE).await;
        let (row, _) = ui::until_row(&b, "Your invoice").await;
        assert!(
            b.exists(&format!(
                "#message-list li[data-id=\"{}\"] .attachment",
                row.id
            ))
            .await,
            "the row has no attachment mark"
        );
        ui::open_message(&b, "Your invoice").await;
        b.until_text("#attachments a[download]", "invoice-7.bin")
            .await;
        b.click("#attachments a[download]").await;
        let path = b.download("invoice-7.bin", Duration::from_secs(10)).await;
        let got = std::fs::read(&path).unwrap();
        assert!(got == bytes, "the download differs: {} bytes", got.len());
        b.assert_clean_console("an attachment").await;
    })
    .await;
}

/// Moving to another mailbox, deleting to the trash, emptying the trash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_delete_and_empty_the_trash() {
    let srv = TestServer::start().await;
    ui::account(&srv, ALICE).await;
    let token = srv.login(ALICE).await;
    for subject in ["Keep me", "Archive me", "Delete me"] {
        mail::send(srv.smtp, &Mail::text(ALICE, subject, "Text.")).await;
    }
    let Some([b]) = harness::open::<1>(&srv.base).await else {
        return;
    };
    scenario("move and delete", async {
        ui::sign_in(&b, ALICE).await;
        ui::until_row(&b, "Keep me").await;
        assert_eq!(
            ui::subjects(&b).await,
            ["Delete me", "Archive me", "Keep me"]
        );

        ui::open_message(&b, "Archive me").await;
        b.select("#move-to", "archive").await;
        b.click("#action-move").await;
        ui::until_no_row(&b, "Archive me").await;

        ui::open_message(&b, "Delete me").await;
        b.click("#action-delete").await;
        ui::until_no_row(&b, "Delete me").await;
        assert_eq!(ui::subjects(&b).await, ["Keep me"]);

        ui::show_mailbox(&b, "archive", &["Archive me"]).await;
        ui::show_mailbox(&b, "trash", &["Delete me"]).await;
        axe::check(&b, "the trash").await;
        // Emptying it asks first; Escape leaves the mail in place.
        b.click("#empty-trash").await;
        ui::until_confirm(&b, "Delete the 1 message in the Trash forever?").await;
        axe::check(&b, "the dialog that asks before emptying the trash").await;
        ui::cancel(&b).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(ui::subjects(&b).await, ["Delete me"]);
        assert_eq!(mailbox(&srv, &token, "trash").await.len(), 1);
        b.click("#empty-trash").await;
        ui::until_confirm(&b, "Delete the 1 message in the Trash forever?").await;
        ui::confirm(&b).await;
        until("the trash to empty", WAIT, async || {
            ui::rows(&b).await.is_empty().then_some(())
        })
        .await;

        // The server agrees.
        let names = async |mb: &str| -> Vec<String> {
            mailbox(&srv, &token, mb)
                .await
                .iter()
                .map(|m| m["subject"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(names("inbox").await, ["Keep me"]);
        assert_eq!(names("archive").await, ["Archive me"]);
        assert!(names("trash").await.is_empty());
        ui::show_mailbox(&b, "inbox", &["Keep me"]).await;
        b.assert_clean_console("move and delete").await;
    })
    .await;
}

/// j and k move through the list, Enter opens, ? shows the keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyboard_moves_opens_and_helps() {
    let srv = TestServer::start().await;
    ui::account(&srv, ALICE).await;
    for subject in ["One", "Two", "Three"] {
        mail::send(srv.smtp, &Mail::text(ALICE, subject, "Text.")).await;
    }
    let Some([b]) = harness::open::<1>(&srv.base).await else {
        return;
    };
    scenario("keyboard", async {
        ui::sign_in(&b, ALICE).await;
        ui::until_row(&b, "One").await;
        assert_eq!(ui::subjects(&b).await, ["Three", "Two", "One"]);
        b.blur().await;
        // Down to the end and one back up: the second row.
        for key in ['j', 'j', 'j', 'j', 'k'] {
            b.press(key).await;
        }
        b.press('\u{E007}').await; // Enter
        b.until_text("#msg-subject", "Two").await;
        // The viewer follows j.
        b.blur().await;
        b.press('j').await;
        b.press('\u{E007}').await;
        b.until_text("#msg-subject", "One").await;

        b.blur().await;
        b.press('?').await;
        b.until_visible("#keys").await;
        axe::check(&b, "the keyboard help").await;
        b.press('\u{E00C}').await; // Escape
        b.until_hidden("#keys").await;
        b.assert_clean_console("the keyboard").await;
    })
    .await;
}

/// The search box filters the mailbox as you type, says what a query still being typed lacks
/// (no error), and shows everything again once cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_box_filters_and_waits_for_a_whole_query() {
    let srv = TestServer::start().await;
    ui::account(&srv, ALICE).await;
    for (subject, text) in [("Invoice 42", "Please pay."), ("Welcome", "Hello there.")] {
        mail::send(srv.smtp, &Mail::text(ALICE, subject, text)).await;
    }
    let Some([b]) = harness::open::<1>(&srv.base).await else {
        return;
    };
    scenario("search", async {
        ui::sign_in(&b, ALICE).await;
        ui::show_mailbox(&b, "inbox", &["Welcome", "Invoice 42"]).await;
        b.fill("#search", "subject:invoice").await;
        until("only the invoice", WAIT, async || {
            (ui::subjects(&b).await == ["Invoice 42"]).then_some(())
        })
        .await;
        // Half-typed: the hint, no error toast, the box marked invalid.
        b.fill("#search", "from:").await;
        b.until_text("#search-hint", "Search not complete").await;
        assert!(ui::rows(&b).await.is_empty());
        assert_eq!(b.attr("#search", "aria-invalid").await.as_deref(), Some("true"));
        let status = b.text("#status").await;
        assert!(
            !status.contains("Could not"),
            "a half-typed query shows an error: {status}"
        );
        axe::check(&b, "a search not complete").await;
        b.fill("#search", "pay").await;
        until("the text search", WAIT, async || {
            (ui::subjects(&b).await == ["Invoice 42"]).then_some(())
        })
        .await;
        assert_eq!(b.attr("#search", "aria-invalid").await, None);
        b.js("const s = document.querySelector('#search'); s.value = ''; s.dispatchEvent(new Event('input'))")
            .await;
        until("everything again", WAIT, async || {
            (ui::subjects(&b).await == ["Welcome", "Invoice 42"]).then_some(())
        })
        .await;
        b.assert_clean_console("search").await;
    })
    .await;
}
