//! fakemail: a fake mail server for testing software that sends email.
//!
//! # Layout
//! One path for data, front-ends at the top and the store at the bottom:
//!
//! ```text
//!  HTTP (api/) ──┐
//!                ├─> service/ (accounts, sessions, mail: one `deliver`) ──> store/ (sled)
//!  SMTP (smtp/) ─┘         │
//!                          └─ retention (sweeper, `fakemail purge`) reads the arrival index
//! ```
//!
//! - [`cli`] and [`config`] turn flags and `FAKEMAIL_*` variables into one validated [`config::Config`].
//! - [`logging`] installs the stderr and rotating-file layers once, in `main`.
//! - [`server::run`] takes the config, an opened [`store::Store`], bound listeners and a shutdown
//!   future; it spawns the HTTP and SMTP front-ends and background tasks, then drains them on
//!   shutdown. [`listener`] is the accept loop (connection limit, drain) the mail protocols share,
//!   [`lines`] the line reading and output pipelining of the text ones.
//! - [`service::Service`] is the only API the front-ends see, in its own types
//!   ([`service::message`]), never the store's records or the command line's; [`error::Error`]
//!   is its one error type, mapped to HTTP once in [`api::rejection`] and to SMTP replies once
//!   in [`smtp::reply`]; [`imap`] serves the same mailboxes to mail clients.
//! - [`store::Store`] is the only code that touches sled.
//! - [`retention`] deletes old mail for the sweeper, `fakemail purge` and the admin endpoint;
//!   [`runfile`] and [`client`] let `purge` and `ready` reach a running server.
//! - [`notify`] tells systemd when the server is ready and when it stops; [`ready`] is
//!   `fakemail ready`, which waits for `/readyz`.
//! - [`server::Server`] is the one start-up (bind, then serve), shared by `main.rs`, the tests and,
//!   behind the `testing` feature, `testing::TestServer`: fakemail in-process for other crates'
//!   tests.
//! - [`ui`] serves the web UI (a user's mail at `/`, the operator's view at `/admin`): files
//!   embedded in the binary, scripts that are clients of the REST API like any other.
//! - `GET /metrics` (`api/metrics.rs`) reads the counters the store, the service and retention
//!   keep, never scanning, and counts HTTP requests by route template as they are answered.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod client;
pub mod config;
pub mod error;
pub mod imap;
pub mod lines;
pub mod listener;
pub mod logging;
pub mod notify;
pub mod pop3;
pub mod purge;
pub mod ready;
pub mod retention;
pub mod runfile;
pub mod server;
pub mod service;
pub mod smtp;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
pub mod ui;

pub use error::{Error, Result};
