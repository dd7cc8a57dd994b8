//! The Mailpit API: its place (`/mailpit/...`, `--mailpit-port`) is reserved; its endpoints
//! are not served yet, and every request is answered with a clear 501.

use warp::http::StatusCode;
use warp::reply::Response;

use super::{Request, error};

/// Answers every request: the Mailpit API is not served yet.
pub fn handle(req: Request) -> Response {
    error(
        StatusCode::NOT_IMPLEMENTED,
        "not_supported",
        format!(
            "the Mailpit API is not served yet ({} /{})",
            req.method,
            req.segments.join("/")
        ),
    )
}
