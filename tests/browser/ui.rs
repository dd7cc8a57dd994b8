//! The UI's moves the scenarios share, in terms of its DOM contract (stable element ids).

use std::time::Duration;

use fantoccini::Locator;
use serde::Deserialize;
use serde_json::json;

use crate::common::{PASSWORD, TestServer};
use crate::harness::{Browser, WAIT, until};

/// One row of `#message-list`, as shown.
#[derive(Debug, Clone, Deserialize)]
pub struct Row {
    pub id: String,
    pub subject: String,
    pub from: String,
    pub unread: bool,
}

/// The rows of `#message-list` now, top to bottom.
pub async fn rows(b: &Browser) -> Vec<Row> {
    let v = b
        .js(
            "return [...document.querySelectorAll('#message-list li[data-id]')].map(li => ({
                id: li.dataset.id,
                subject: (li.querySelector('.subject') || {}).textContent || '',
                from: (li.querySelector('.from') || {}).textContent || '',
                unread: li.classList.contains('unread'),
            }))",
        )
        .await;
    let mut rows: Vec<Row> = serde_json::from_value(v).expect("rows");
    for r in &mut rows {
        r.subject = r.subject.trim().to_owned();
        r.from = r.from.trim().to_owned();
    }
    rows
}

/// Waits until a row with `subject` is listed; returns it and how long that took.
pub async fn until_row(b: &Browser, subject: &str) -> (Row, Duration) {
    until(
        &format!("a row {subject:?} in the list"),
        WAIT,
        async || rows(b).await.into_iter().find(|r| r.subject == subject),
    )
    .await
}

/// Waits until no row with `subject` is listed.
pub async fn until_no_row(b: &Browser, subject: &str) {
    until(
        &format!("no row {subject:?} in the list"),
        WAIT,
        async || (!rows(b).await.iter().any(|r| r.subject == subject)).then_some(()),
    )
    .await;
}

/// The subjects listed now, top to bottom.
pub async fn subjects(b: &Browser) -> Vec<String> {
    rows(b).await.into_iter().map(|r| r.subject).collect()
}

/// Registers `email` over the API (with [`PASSWORD`]); the browser then signs in through the
/// form.
pub async fn account(srv: &TestServer, email: &str) {
    srv.register(email).await;
}

/// Signs in through the form at `/` and waits for the inbox.
pub async fn sign_in(b: &Browser, email: &str) {
    b.goto("/").await;
    submit_sign_in(b, email, PASSWORD).await;
    signed_in(b, email).await;
}

/// Fills and submits the sign-in form (shown at `/` when nobody is signed in).
pub async fn submit_sign_in(b: &Browser, email: &str, password: &str) {
    b.until_visible("#signin").await;
    b.fill("#signin-email", email).await;
    b.fill("#signin-password", password).await;
    b.click("#signin-submit").await;
}

/// Waits until `email` is signed in and the first list has rendered.
pub async fn signed_in(b: &Browser, email: &str) {
    b.until_text("#whoami", email).await;
    b.ready().await;
}

/// Shows mailbox `name` from the sidebar and waits until the list holds `expect` (subjects in
/// order; empty for an empty mailbox).
pub async fn show_mailbox(b: &Browser, name: &str, expect: &[&str]) {
    b.click(&format!("nav#mailboxes a[data-mailbox=\"{name}\"]"))
        .await;
    until(
        &format!("mailbox {name} to list {expect:?}"),
        WAIT,
        async || (subjects(b).await == expect).then_some(()),
    )
    .await;
}

/// The unread count the sidebar shows for mailbox `name` ("" for none).
pub async fn unread_count(b: &Browser, name: &str) -> String {
    b.js_with(
        "const c = document.querySelector(`nav#mailboxes a[data-mailbox=\"${arguments[0]}\"] .count`);
         return c ? c.textContent.trim() : null",
        vec![json!(name)],
    )
    .await
    .as_str()
    .unwrap_or_else(|| panic!("no .count for mailbox {name}"))
    .to_owned()
}

/// Opens the listed message with `subject` by clicking its row; waits for the viewer.
pub async fn open_message(b: &Browser, subject: &str) -> Row {
    let (row, _) = until_row(b, subject).await;
    b.click(&format!("#message-list li[data-id=\"{}\"]", row.id))
        .await;
    b.until_text("#msg-subject", subject).await;
    row
}

/// Waits until the HTML frame of the open message has loaded a document whose text contains
/// `needle`; returns that text. Reads it from inside the frame, as a user sees it, then
/// returns to the page.
pub async fn frame_text(b: &Browser, needle: &str) -> String {
    let (text, _) = until(
        &format!("the HTML frame to show {needle:?}"),
        WAIT,
        async || {
            // Found afresh each time: the viewer may have replaced the frame meanwhile.
            let frame = b
                .client
                .find(Locator::Css("iframe#html-frame"))
                .await
                .ok()?;
            frame.enter_frame().await.ok()?;
            let text = b
                .client
                .find(Locator::Css("body"))
                .await
                .ok()?
                .text()
                .await
                .ok();
            b.client
                .enter_parent_frame()
                .await
                .expect("back to the page");
            text.filter(|t| t.contains(needle))
        },
    )
    .await;
    text
}

/// Waits for the `#confirm` dialog that an irreversible action opens, checks that it asks
/// `question` with the focus on Cancel (the safe choice), and returns its text.
pub async fn until_confirm(b: &Browser, question: &str) -> String {
    b.until_visible("dialog#confirm").await;
    let text = b.text("#confirm-text").await;
    assert!(
        text.contains(question) && text.contains("This cannot be undone."),
        "the dialog asks {text:?}"
    );
    assert_eq!(
        b.js("return document.activeElement && document.activeElement.id")
            .await,
        "confirm-cancel",
        "the focus is not on Cancel"
    );
    text
}

/// Confirms the open `#confirm` dialog as a keyboard user would: Tab to its confirm button
/// and Enter.
pub async fn confirm(b: &Browser) {
    b.press('\u{E004}').await; // Tab
    assert_eq!(
        b.js("return document.activeElement && document.activeElement.id")
            .await,
        "confirm-ok",
        "Tab from Cancel does not reach the confirm button"
    );
    b.press('\u{E007}').await; // Enter
    b.until_hidden("dialog#confirm").await;
}

/// Cancels the open `#confirm` dialog with Escape.
pub async fn cancel(b: &Browser) {
    b.press('\u{E00C}').await; // Escape
    b.until_hidden("dialog#confirm").await;
}
