//! The MailHog API (v1 and v2): its place (`/mailhog/...`, `--mailhog-port`) and its state;
//! its endpoints are not served yet.

use warp::reply::Response;

use super::{Api, Request, not_found};
use crate::service::Service;

/// The MailHog API's state.
#[derive(Clone, Default)]
pub struct MailHog {}

impl MailHog {
    /// Answers one request of the MailHog API.
    pub async fn handle(&self, _svc: &Service, _req: Request) -> Response {
        not_found(Api::MailHog)
    }
}
