//! Accessibility checks with axe-core: the file named by `FAKEMAIL_AXE` (`axe.min.js`, which
//! `.ci/run` installs from npm) is injected into the page through WebDriver, which Chromium runs
//! outside the page's Content-Security-Policy, and `axe.run` checks what is on screen.

use std::sync::{Once, OnceLock};

use serde_json::{Value, json};

use crate::harness::{Browser, required, skip};

/// The variable naming axe-core's `axe.min.js`.
pub const AXE_ENV: &str = "FAKEMAIL_AXE";

/// The impacts that fail a test.
const FAILING: &[&str] = &["serious", "critical"];

/// axe-core's source, or why there is none (read once per test binary).
fn source() -> &'static Result<String, String> {
    static SOURCE: OnceLock<Result<String, String>> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = std::env::var(AXE_ENV)
            .map_err(|_| format!("{AXE_ENV} is not set (the path of axe-core's axe.min.js)"))?;
        std::fs::read_to_string(&path).map_err(|e| format!("{AXE_ENV}={path}: {e}"))
    })
}

/// Runs axe on the page the browser shows and fails the test on any serious or critical
/// violation, listing them; `screen` names the page in messages. Skips (or fails, when the
/// browser is required) without axe-core.
pub async fn check(b: &Browser, screen: &str) {
    let src = match source() {
        Ok(src) => src,
        Err(reason) => {
            // Said once per run, not once per screen.
            static SAID: Once = Once::new();
            if required() {
                skip(&format!("the axe check of {screen}"), reason);
            }
            SAID.call_once(|| skip("axe checks", reason));
            return;
        }
    };
    let present = b.js("return typeof window.axe === 'object'").await;
    if present != true {
        // As a function body its UMD wrapper sees no `module` and sets `window.axe`.
        b.js(&format!("{src}\n;return typeof window.axe")).await;
        let present = b.js("return typeof window.axe === 'object'").await;
        assert_eq!(present, true, "axe-core did not load into {screen}");
    }
    // Mail HTML is the sender's, in a sandboxed frame where no script (axe's included) runs:
    // axe checks the UI's own document only.
    let violations = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { iframes: false, resultTypes: ['violations'] })
                .then(r => done({ ok: r.violations }), e => done({ err: String(e) }));",
            vec![],
        )
        .await
        .unwrap_or_else(|e| panic!("axe.run on {screen}: {e}"));
    if let Some(err) = violations.get("err") {
        panic!("axe.run on {screen} failed: {err}");
    }
    let failing: Vec<&Value> = violations["ok"]
        .as_array()
        .expect("violations")
        .iter()
        .filter(|v| FAILING.contains(&v["impact"].as_str().unwrap_or("")))
        .collect();
    assert!(
        failing.is_empty(),
        "accessibility violations on {screen}:\n{}",
        failing.iter().map(|v| describe(v)).collect::<String>()
    );
}

/// One violation, readably: rule, impact, help, and each element with axe's summary.
fn describe(v: &Value) -> String {
    let mut out = format!(
        "- {} ({}): {}\n  {}\n",
        v["id"].as_str().unwrap_or("?"),
        v["impact"].as_str().unwrap_or("?"),
        v["help"].as_str().unwrap_or(""),
        v["helpUrl"].as_str().unwrap_or("")
    );
    for node in v["nodes"].as_array().into_iter().flatten() {
        let target = node["target"].as_array().cloned().unwrap_or_default();
        out += &format!(
            "    at {}: {}\n      {}\n",
            json!(target),
            node["html"].as_str().unwrap_or(""),
            node["failureSummary"]
                .as_str()
                .unwrap_or("")
                .replace('\n', "\n      ")
        );
    }
    out
}
