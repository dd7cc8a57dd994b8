//! `fakemail ready`: poll a server's `GET /readyz` until it answers 200 or the wait runs out,
//! so that a script can start `fakemail serve` in the background and go on once it serves.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cli::ReadyArgs;
use crate::{client, config, runfile};

/// Where `fakemail serve` listens by default.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8025";

/// The longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_millis(250);

/// The longest a single attempt may take (a server that accepts but does not answer).
const MAX_ATTEMPT: Duration = Duration::from_secs(2);

/// Where the server is, and how we know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Base URL, without a trailing slash.
    pub url: String,
    /// Where the URL came from, for messages: `--url`, a `server.json`, or the default.
    pub source: String,
}

/// Polls `<url>/readyz` until it answers 200, for at most `args.wait` (at least one attempt).
/// The URL is looked up again before every attempt, so a server that is still starting and
/// has not yet written its `server.json` is found once it has.
///
/// # Errors
/// A sentence naming the URL, where it came from, and the last answer or connection error.
pub fn wait(args: &ReadyArgs) -> Result<Target, String> {
    let deadline = Instant::now() + args.wait;
    let mut pause = Duration::from_millis(25);
    loop {
        let (shown, last) = match target(args) {
            Ok(target) => {
                let remaining = deadline.saturating_duration_since(Instant::now());
                let timeout = remaining.clamp(Duration::from_millis(200), MAX_ATTEMPT);
                let url = format!("{}/readyz", target.url);
                match client::request("GET", &url, None, None, timeout) {
                    Ok(r) if r.status == 200 => return Ok(target),
                    Ok(r) => (
                        format!("at {} ({})", target.url, target.source),
                        format!("it answered {} {}", r.status, error_code(&r.body)),
                    ),
                    Err(e) => (
                        format!("at {} ({})", target.url, target.source),
                        e.to_string(),
                    ),
                }
            }
            Err(no_file) => (format!("for {}", dir_of(args)), no_file),
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(format!(
                "no server answered ready {shown} within {}; last attempt: {last}",
                humantime::format_duration(args.wait)
            ));
        }
        std::thread::sleep(pause.min(remaining));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

fn dir_of(args: &ReadyArgs) -> String {
    args.data_dir
        .as_deref()
        .map_or_else(String::new, |d| format!("the data dir {}", d.display()))
}

/// The `code` of a JSON error body, or a short excerpt of any other body.
fn error_code(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    match parsed
        .as_ref()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
    {
        Some(code) => format!("({code})"),
        None => {
            let excerpt: String = body.chars().take(80).collect();
            format!("({})", excerpt.trim())
        }
    }
}

/// `--url`; else the `http` of `server.json` in the data dir, when its process still runs.
/// Without `--data-dir` (or `FAKEMAIL_DATA_DIR`), the default data dir is looked at and
/// [`DEFAULT_URL`] is the fallback; a data dir given explicitly has no fallback, so that a
/// server on another data dir is never taken for the one asked about.
///
/// # Errors
/// The explicit data dir has no `server.json` of a running process (yet).
pub fn target(args: &ReadyArgs) -> Result<Target, String> {
    if let Some(url) = &args.url {
        return Ok(Target {
            url: url.clone(),
            source: "from --url".into(),
        });
    }
    let explicit = args.data_dir.is_some();
    let dir: Option<PathBuf> = args.data_dir.clone().or_else(config::default_data_dir);
    if let Some(dir) = &dir {
        if let Some(url) = running_server(dir) {
            return Ok(Target {
                url,
                source: format!("from {}", dir.join(runfile::SERVER_FILE).display()),
            });
        }
        if explicit {
            return Err(format!(
                "no running server has written {}",
                dir.join(runfile::SERVER_FILE).display()
            ));
        }
    }
    Ok(Target {
        url: DEFAULT_URL.into(),
        source: "the default".into(),
    })
}

/// The URL in `dir`'s `server.json`, unless the file is missing, unreadable, or was left
/// behind by a process that no longer runs.
fn running_server(dir: &Path) -> Option<String> {
    let info = runfile::read_server_info(dir).ok()?;
    process_exists(info.pid).then_some(info.http.trim_end_matches('/').to_owned())
}

/// Whether a process with this id exists. Only Linux tells cheaply (through /proc); elsewhere
/// the file is trusted.
fn process_exists(pid: u32) -> bool {
    if cfg!(target_os = "linux") && Path::new("/proc/self").exists() {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: Option<&str>, data_dir: Option<&Path>) -> ReadyArgs {
        ReadyArgs {
            url: url.map(str::to_owned),
            wait: Duration::ZERO,
            data_dir: data_dir.map(Path::to_path_buf),
        }
    }

    #[test]
    fn the_url_comes_from_the_flag_then_a_live_server_json() {
        let dir = tempfile::tempdir().unwrap();
        let none = target(&args(None, Some(dir.path()))).unwrap_err();
        assert!(none.contains("server.json"), "{none}");

        let live = runfile::ServerInfo {
            http: "http://127.0.0.1:4321".into(),
            pid: std::process::id(),
            admin_token: None,
            smtp: None,
            pop3: None,
        };
        runfile::write_server_info(dir.path(), &live).unwrap();
        let found = target(&args(None, Some(dir.path()))).unwrap();
        assert_eq!(found.url, "http://127.0.0.1:4321");
        assert!(found.source.contains("server.json"), "{}", found.source);

        let flag = target(&args(Some("http://127.0.0.1:9"), Some(dir.path()))).unwrap();
        assert_eq!(flag.url, "http://127.0.0.1:9");

        if cfg!(target_os = "linux") {
            // A file left by a process that is gone is ignored. Pids are at most 2^22 on Linux.
            let stale = runfile::ServerInfo {
                http: "http://127.0.0.1:4321".into(),
                pid: u32::MAX - 1,
                admin_token: None,
                smtp: None,
                pop3: None,
            };
            runfile::write_server_info(dir.path(), &stale).unwrap();
            assert!(target(&args(None, Some(dir.path()))).is_err());
        }
    }

    #[test]
    fn error_bodies_are_summarised() {
        assert_eq!(
            error_code(r#"{"error":{"code":"not_ready","message":"x"}}"#),
            "(not_ready)"
        );
        assert_eq!(error_code("Not Found"), "(Not Found)");
    }
}
