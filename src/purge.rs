//! `fakemail purge`: delete old messages from a stopped store directly, or, when a server holds
//! the store, by asking it over HTTP with the admin token it wrote into `server.json`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::api::dto::{PurgeRequest, PurgeResponse};
use crate::cli::PurgeArgs;
use crate::store::mail::Removed;
use crate::store::{self, Store, StoreError};
use crate::time::Timestamp;
use crate::{client, config, retention, runfile};

/// How the purge was carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The store was opened directly.
    Store,
    /// A running server at this URL did it.
    Server(String),
}

/// Runs the purge. With `progress`, a running total is shown on stderr while it takes long.
///
/// # Errors
/// A sentence for the user: no data dir, a dir without a store, an unreadable store, an
/// unreachable server, a refused token.
pub fn run(args: &PurgeArgs, progress: bool) -> Result<(Removed, Via), String> {
    let dir: PathBuf = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            config::default_data_dir().ok_or_else(|| config::ConfigError::NoDataDir.to_string())?
        }
    };
    if !dir.is_dir() {
        return Err(format!(
            "there is no data dir at {}; nothing to purge",
            dir.display()
        ));
    }
    // Opening would make an empty store in any directory, a mistyped one included.
    if !Store::exists(&dir) {
        return Err(format!(
            "{} holds no store ({} is missing); nothing to purge. Is it the data dir of a fakemail server?",
            dir.display(),
            store::DB_DIR
        ));
    }
    match Store::open(&dir, 16 << 20) {
        Ok(store) => {
            let cutoff = retention::cutoff(Timestamp::now(), args.older_than);
            let started = Instant::now();
            let show = progress && std::io::stderr().is_terminal();
            let mut report = |r: Removed| {
                if show && started.elapsed() > Duration::from_millis(500) {
                    eprint!(
                        "\rpurging: {} messages, {} bytes so far",
                        r.messages, r.bytes
                    );
                }
            };
            let removed =
                retention::purge_older_than(&store, cutoff, args.dry_run, None, &mut report)
                    .map_err(|e| e.to_string())?;
            if show && started.elapsed() > Duration::from_millis(500) {
                eprintln!();
            }
            store.flush().map_err(|e| e.to_string())?;
            Ok((removed, Via::Store))
        }
        Err(StoreError::Locked(_)) => remote(args, &dir),
        Err(e) => Err(e.to_string()),
    }
}

/// The line `fakemail purge` prints, e.g. `deleted 1 message, 291 bytes (through the running
/// server at http://127.0.0.1:8025)`.
pub fn report(removed: Removed, dry_run: bool, via: &Via) -> String {
    let verb = if dry_run { "would delete" } else { "deleted" };
    let via = match via {
        Via::Store => String::new(),
        Via::Server(url) => format!(" (through the running server at {url})"),
    };
    format!(
        "{verb} {}, {}{via}",
        counted(removed.messages, "message"),
        counted(removed.bytes, "byte")
    )
}

/// `1 message`, `0 messages`, `2 messages`.
fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn remote(args: &PurgeArgs, dir: &std::path::Path) -> Result<(Removed, Via), String> {
    let info = runfile::read_server_info(dir).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            "only the server's user can read it: run purge as that user or as root"
        } else {
            "is a fakemail server still starting there?"
        };
        format!(
            "the data dir {} is in use by another process, but its {} cannot be read ({e}); {hint}",
            dir.display(),
            runfile::SERVER_FILE
        )
    })?;
    // Given, it wins; otherwise the token the server says it takes. The admin-token file is
    // only a fallback for a server.json without one: it may be stale (a server started with
    // --admin-token neither reads nor rewrites it).
    let token = match (&args.admin_token, &info.admin_token) {
        (Some(t), _) | (None, Some(t)) => t.clone(),
        (None, None) => runfile::read_admin_token(dir).map_err(|e| {
            format!(
                "cannot read the admin token in {} ({e}); pass --admin-token or set FAKEMAIL_ADMIN_TOKEN",
                runfile::admin_token_path(dir).display()
            )
        })?,
    };
    let body = serde_json::to_string(&PurgeRequest {
        // Exactly as given: cut to whole seconds here, `500ms` would have become `0s`.
        older_than: humantime::format_duration(args.older_than).to_string(),
        dry_run: args.dry_run,
    })
    .map_err(|e| e.to_string())?;
    let url = format!("{}/api/v1/admin/purge", info.http);
    let res = client::request(
        "POST",
        &url,
        Some(&token),
        Some(&body),
        Duration::from_secs(600),
    )
    .map_err(|e| format!("cannot reach the running server at {} ({e})", info.http))?;
    if res.status != 200 {
        let why = serde_json::from_str::<serde_json::Value>(&res.body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or(res.body);
        return Err(format!(
            "the server at {} refused the purge ({}): {why}",
            info.http, res.status
        ));
    }
    let r: PurgeResponse = serde_json::from_str(&res.body)
        .map_err(|e| format!("unexpected answer from the server: {e}"))?;
    Ok((
        Removed {
            messages: r.deleted,
            bytes: r.bytes,
        },
        Via::Server(info.http),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_count_in_the_singular_and_the_plural() {
        let r = |messages, bytes| Removed { messages, bytes };
        assert_eq!(
            report(r(1, 1), false, &Via::Store),
            "deleted 1 message, 1 byte"
        );
        assert_eq!(
            report(r(0, 0), true, &Via::Store),
            "would delete 0 messages, 0 bytes"
        );
        assert_eq!(
            report(
                r(2, 291),
                false,
                &Via::Server("http://127.0.0.1:8025".into())
            ),
            "deleted 2 messages, 291 bytes (through the running server at http://127.0.0.1:8025)"
        );
    }
}
