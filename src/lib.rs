//! fakemail: a fake mail server for testing software that sends email.
//!
//! # Layout
//! One path for data, front-ends at the top and the store at the bottom:
//!
//! ```text
//!  HTTP (api/) ──> service/ (accounts, sessions) ──> store/ (sled trees, keys, codec)
//! ```
//!
//! - [`cli`] and [`config`] turn flags and `FAKEMAIL_*` variables into one validated [`config::Config`].
//! - [`logging`] installs the stderr and rotating-file layers once, in `main`.
//! - [`server::run`] takes the config, an opened [`store::Store`], bound listeners and a shutdown
//!   future; it spawns the HTTP front-end and background tasks, then drains them on shutdown.
//! - [`service::Service`] is the only API the front-ends see; [`error::Error`] is its one error type,
//!   mapped to HTTP once in [`api::rejection`].
//! - [`store::Store`] is the only code that touches sled.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod config;
pub mod error;
pub mod logging;
pub mod server;
pub mod service;
pub mod store;
pub mod time;

pub use error::{Error, Result};
