//! The operator's view: every message, with or without an account, signed in by a token in the
//! URL's fragment; fault-injection rules added and removed from the page.

use serde_json::json;

use crate::common::{CHAOS_ADMIN, SmtpClient, TestServer};
use crate::harness::{self, WAIT, scenario, until};
use crate::mail::{self, Mail};
use crate::{axe, ui};

/// Opens `/admin` with the token in the fragment and waits for the first list.
async fn open_admin(b: &harness::Browser) {
    b.open(&format!("/admin#token={CHAOS_ADMIN}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_view_lists_mail_without_an_account() {
    let srv = TestServer::start_chaos(false).await;
    mail::send(
        srv.smtp,
        &Mail::text("nobody@example.test", "Password reset", "Reset it here."),
    )
    .await;
    mail::send(
        srv.smtp,
        &Mail::text("someone@example.test", "Newsletter", "News."),
    )
    .await;
    let Some([b]) = harness::open::<1>(&srv.base).await else {
        return;
    };
    scenario("operator view", async {
        open_admin(&b).await;
        ui::until_row(&b, "Password reset").await;
        ui::until_row(&b, "Newsletter").await;

        // The token went to the server in exchange for a cookie and is gone from the page.
        let url = b.current_url().await;
        assert!(
            !url.contains("token"),
            "the token is still in the URL: {url}"
        );
        assert_eq!(b.js("return location.hash").await, "");
        let readable = b
            .js("return [document.cookie,
                         JSON.stringify(Object.entries(localStorage)),
                         JSON.stringify(Object.entries(sessionStorage)),
                         JSON.stringify(history.state)]")
            .await;
        assert!(
            !readable.to_string().contains(CHAOS_ADMIN),
            "the token is readable by scripts: {readable}"
        );
        // Fault injection is off on this server, and the page says so.
        b.until_visible("#chaos-disabled").await;
        // Its `--chaos` stays on one line, whole.
        let flags = b
            .js(
                "return [...document.querySelectorAll('#chaos-disabled code')]
                     .map(c => [c.textContent, c.getClientRects().length])",
            )
            .await;
        assert_eq!(flags, json!([["--chaos", 1], ["--chaos", 1]]), "{flags}");
        axe::check(&b, "the operator view").await;

        b.fill("#filter-to", "nobody@example.test").await;
        until("the filter to leave one message", WAIT, async || {
            (ui::subjects(&b).await == ["Password reset"]).then_some(())
        })
        .await;
        ui::open_message(&b, "Password reset").await;
        assert!(b.text("#msg-to").await.contains("nobody@example.test"));
        b.until_text("#text-body", "Reset it here.").await;
        axe::check(&b, "a message in the operator view").await;

        // A reload keeps the session (a cookie now, no token in the URL).
        b.client.refresh().await.expect("reload");
        b.ready().await;
        assert!(!b.visible("#admin-login").await, "signed out by a reload");

        // Live: new mail for any address shows up.
        b.fill("#filter-to", "").await;
        mail::send(
            srv.smtp,
            &Mail::text("late@example.test", "Arrived later", "Late."),
        )
        .await;
        let (_, took) = ui::until_row(&b, "Arrived later").await;
        eprintln!("SMTP to the operator's list: {took:?}");

        // Deleting everything says how much and asks first.
        b.click("#delete-all").await;
        ui::until_confirm(&b, "Delete all 3 messages?").await;
        axe::check(&b, "the dialog that asks before deleting all").await;
        ui::confirm(&b).await;
        until("the list to empty", WAIT, async || {
            ui::rows(&b).await.is_empty().then_some(())
        })
        .await;
        let (_, all) = srv.admin("GET", "/api/v1/admin/messages", None).await;
        assert_eq!(all["messages"], json!([]), "{all}");
        b.assert_clean_console("the operator view").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_rule_from_the_ui_answers_smtp() {
    let srv = TestServer::start_chaos(true).await;
    let Some([b]) = harness::open::<1>(&srv.base).await else {
        return;
    };
    let rcpt_reply = async || {
        let mut c = SmtpClient::connect(srv.smtp).await;
        c.expect("EHLO client.test", 250).await;
        c.expect("MAIL FROM:<app@example.test>", 250).await;
        let r = c.cmd("RCPT TO:<user@example.test>").await;
        c.cmd("QUIT").await;
        r
    };
    scenario("chaos rules", async {
        open_admin(&b).await;
        b.until_visible("#chaos").await;
        assert!(
            !b.visible("#chaos-disabled").await,
            "the page says fault injection is off"
        );
        assert_eq!(rcpt_reply().await.code, 250);

        b.fill("#chaos-rule", "rcpt:451:4.3.0").await;
        b.click("#chaos-add").await;
        b.until_visible("#chaos-rules li[data-id]").await;
        b.until_text("#chaos-rules", "rcpt").await;
        let (rules_status, rules) = srv.admin("GET", "/api/v1/admin/chaos", None).await;
        assert_eq!(rules_status, 200);
        assert_eq!(rules["rules"].as_array().unwrap().len(), 1, "{rules}");
        let r = rcpt_reply().await;
        assert_eq!(r.code, 451, "{r:?}");
        assert_eq!(r.status(), Some("4.3.0"), "{r:?}");
        axe::check(&b, "the chaos rules").await;

        b.click("#chaos-rules li[data-id] button.remove").await;
        until("the rule to leave the list", WAIT, async || {
            (!b.exists("#chaos-rules li[data-id]").await).then_some(())
        })
        .await;
        let (_, rules) = srv.admin("GET", "/api/v1/admin/chaos", None).await;
        assert_eq!(rules["rules"], json!([]), "{rules}");
        assert_eq!(rcpt_reply().await.code, 250);
        b.assert_clean_console("the chaos rules").await;
    })
    .await;
}
