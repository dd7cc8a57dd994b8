//! The HTTP front-end (warp): routes, JSON shapes, the one mapping of errors to statuses, and
//! the metrics in the Prometheus text format. It calls the service and never touches the store.

mod body;
pub mod dto;
mod exposition;
mod filters;
mod handlers;
mod metrics;
pub mod rejection;

pub use filters::{Limits, routes};

/// The OpenAPI document of the REST API: served as written at `/api/v1/openapi.json`, and the
/// list of route templates the metrics count requests under.
const OPENAPI: &str = include_str!("openapi.json");
