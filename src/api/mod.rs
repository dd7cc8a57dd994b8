//! The HTTP front-end (warp): routes, JSON shapes and the one mapping of errors to statuses.
//! It calls the service and never touches the store.

mod body;
pub mod dto;
mod filters;
mod handlers;
pub mod rejection;

pub use filters::{Limits, routes};
