//! The HTTP front-end (warp): routes, JSON shapes, the one mapping of errors to statuses, and
//! the metrics in the Prometheus text format. It calls the service and never touches the store.

mod body;
mod browser;
pub mod compat;
pub mod dto;
mod exposition;
mod filters;
mod handlers;
mod metrics;
pub mod openapi;
pub mod rejection;
pub(crate) mod routes;

pub(crate) use filters::others;
pub use filters::{Limits, routes};
