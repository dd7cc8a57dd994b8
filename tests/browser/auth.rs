//! Signing up, out and in through the forms; the session lives in an HttpOnly cookie.

use serde_json::json;

use crate::common::{PASSWORD, TestServer};
use crate::harness::{self, scenario};
use crate::{axe, ui};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_sign_out_and_sign_in() {
    let srv = TestServer::start().await;
    let Some([b]) = harness::open::<1>(&srv.base).await else {
        return;
    };
    let email = "carol@example.test";
    scenario("sign up and sign in", async {
        b.goto("/").await;
        b.until_visible("#signin").await;
        axe::check(&b, "the sign-in form").await;

        b.click("#show-signup").await;
        b.until_visible("#signup").await;
        b.fill("#signup-email", email).await;
        b.fill("#signup-password", PASSWORD).await;
        b.fill("#signup-name", "Carol Example").await;
        axe::check(&b, "the sign-up form").await;
        b.click("#signup-submit").await;
        ui::signed_in(&b, email).await;
        assert!(
            ui::rows(&b).await.is_empty(),
            "a new account's inbox lists mail"
        );
        axe::check(&b, "the empty inbox").await;

        // The account is real, and the browser holds no credential a script could read.
        let (status, me) = srv.try_login(email, PASSWORD).await;
        assert_eq!(status, 200, "the account signed up in the UI: {me}");
        let readable = b
            .js("return [document.cookie,
                         JSON.stringify(Object.entries(localStorage)),
                         JSON.stringify(Object.entries(sessionStorage))]")
            .await;
        assert_eq!(
            readable,
            json!(["", "[]", "[]"]),
            "cookies or storage a script can read"
        );

        // The session survives a reload, and signing out ends it.
        b.client.refresh().await.expect("reload");
        ui::signed_in(&b, email).await;
        b.click("#signout").await;
        b.until_visible("#signin").await;
        b.client.refresh().await.expect("reload");
        b.until_visible("#signin").await;
        assert!(
            !b.visible("#signout").await,
            "still signed in after signing out"
        );

        // A wrong password is refused, readably, and the right one signs in.
        let before = b.text("#status").await;
        ui::submit_sign_in(&b, email, "not the password at all").await;
        b.until_js_with(
            "#status to report the refusal",
            "const t = document.querySelector('#status').textContent.trim();
             return t !== '' && t !== arguments[0]",
            vec![json!(before)],
        )
        .await;
        eprintln!("wrong password: {:?}", b.text("#status").await);
        assert!(
            b.visible("#signin").await,
            "the form went away on a refusal"
        );
        assert!(
            !b.visible("#signout").await,
            "signed in with a wrong password"
        );
        ui::submit_sign_in(&b, email, PASSWORD).await;
        ui::signed_in(&b, email).await;
        b.assert_clean_console("sign-up and sign-in").await;
    })
    .await;
}
