//! Writing a message in one user's UI and seeing it arrive in another's.

use crate::common::TestServer;
use crate::harness::{self, scenario};
use crate::{axe, ui};

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_and_send_reaches_the_recipients_open_inbox() {
    let srv = TestServer::start().await;
    ui::account(&srv, ALICE).await;
    ui::account(&srv, BOB).await;
    let Some([alice, bob]) = harness::open::<2>(&srv.base).await else {
        return;
    };
    scenario("compose", async {
        ui::sign_in(&alice, ALICE).await;
        ui::sign_in(&bob, BOB).await;
        assert!(ui::rows(&bob).await.is_empty());

        alice.click("#compose-open").await;
        alice.until_visible("#compose").await;
        alice.fill("#compose-to", BOB).await;
        alice.fill("#compose-subject", "Lunch on Friday?").await;
        alice
            .fill("#compose-text", "Shall we try the new place at noon?")
            .await;
        axe::check(&alice, "the compose dialog").await;
        alice.click("#compose-send").await;
        alice.until_hidden("#compose").await;

        let (row, took) = ui::until_row(&bob, "Lunch on Friday?").await;
        eprintln!("sent in one UI, listed in the other after {took:?}");
        assert!(row.unread, "{row:?}");
        assert!(row.from.contains(ALICE), "{row:?}");
        ui::open_message(&bob, "Lunch on Friday?").await;
        bob.until_text("#text-body", "Shall we try the new place at noon?")
            .await;
        assert!(bob.text("#msg-from").await.contains(ALICE));

        ui::show_mailbox(&alice, "sent", &["Lunch on Friday?"]).await;
        alice.assert_clean_console("compose").await;
        bob.assert_clean_console("the recipient's inbox").await;
    })
    .await;
}
