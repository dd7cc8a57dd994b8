//! The compatibility APIs: MailHog's and Mailpit's HTTP APIs over the service, so that test
//! suites written against those servers' client libraries work against fakemail by changing
//! only a URL (and credentials).
//!
//! What they share lives here: where they are served (under `/mailhog/` and `/mailpit/` on the
//! HTTP port, and at the root of their own listeners with `--mailhog-port` and
//! `--mailpit-port`), who may use them (`--compat-auth`: the admin token as the password of
//! HTTP Basic auth or as a Bearer token, or no credentials), and how a request reaches them:
//! paths are matched by their non-empty segments, so the doubled slashes some clients build
//! (`//api/v2/messages`) work. Each API is an adapter in its own module that answers a
//! [`Request`] with service calls.
//!
//! These routes are not in the native route table or OpenAPI document (`routes.rs`,
//! `openapi.rs`): their shapes are MailHog's and Mailpit's, documented by those projects.

pub mod mailhog;
mod mailpit;

use std::collections::HashMap;

use base64::Engine as _;
use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use warp::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::body;
use super::rejection::{self, ApiError};
use crate::config::CompatAuth;
use crate::error::Error;
use crate::service::Service;

/// One of the compatibility APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    MailHog,
    Mailpit,
}

impl Api {
    /// The product's name, for logs and messages.
    pub fn name(self) -> &'static str {
        match self {
            Api::MailHog => "MailHog",
            Api::Mailpit => "Mailpit",
        }
    }

    /// The path segment it is served under on the HTTP port.
    fn prefix(self) -> &'static str {
        match self {
            Api::MailHog => "mailhog",
            Api::Mailpit => "mailpit",
        }
    }
}

/// A request as a compatibility API sees it.
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    /// The path's non-empty segments after the API's prefix, percent-decoded.
    pub segments: Vec<String>,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Request {
    /// The segments as string slices, for matching.
    pub fn path(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }
}

/// The compatibility APIs over one service. Cheap to clone: clones share the APIs' state
/// (MailHog's Jim settings, Mailpit's read flags), so the HTTP port's mount and an API's own
/// listener are one API.
#[derive(Clone)]
pub struct Compat {
    svc: Service,
    auth: CompatAuth,
    max_body: u64,
    mailhog: mailhog::MailHog,
    mailpit: mailpit::Mailpit,
}

impl Compat {
    /// The APIs over `svc`, with `auth` and bodies of at most `max_body` bytes.
    pub fn new(svc: Service, auth: CompatAuth, max_body: u64) -> Compat {
        Compat {
            svc,
            auth,
            max_body,
            mailhog: mailhog::MailHog::default(),
            mailpit: mailpit::Mailpit::default(),
        }
    }

    /// Every compatibility API under its prefix (`/mailhog/...`, `/mailpit/...`), for the
    /// HTTP port. Any other path is not found here, so the other routes get it.
    pub fn mounted(&self) -> BoxedFilter<(Response,)> {
        self.filter(None)
    }

    /// One API at the root, for its own listener, every rejection answered as JSON.
    pub fn root(&self, api: Api) -> BoxedFilter<(Response,)> {
        self.filter(Some(api))
            .recover(rejection::recover)
            .unify()
            .boxed()
    }

    /// `root`: the API served at the root; `None`: each API under its prefix.
    fn filter(&self, root: Option<Api>) -> BoxedFilter<(Response,)> {
        self.mailpit_events(root)
            .or(self.requests(root))
            .unify()
            .boxed()
    }

    /// Mailpit's websocket `/api/events` (`/mailpit/api/events` on the HTTP port): a request
    /// that asks for the upgrade. Any other request goes on to [`Compat::requests`].
    fn mailpit_events(&self, root: Option<Api>) -> BoxedFilter<(Response,)> {
        let compat = self.clone();
        warp::path::full()
            .and_then(move |full: FullPath| async move {
                let path = segments(full.as_str());
                let at: &[&str] = match root {
                    Some(Api::Mailpit) => &["api", "events"],
                    None => &["mailpit", "api", "events"],
                    Some(Api::MailHog) => &[],
                };
                if !at.is_empty() && path == at {
                    Ok(())
                } else {
                    Err(warp::reject::not_found())
                }
            })
            .untuple_one()
            .and(warp::ws())
            .and(warp::header::headers_cloned())
            .map(move |ws: warp::ws::Ws, headers: HeaderMap| {
                if !compat.authorized(&headers) {
                    return unauthorized();
                }
                if !same_origin(&headers) {
                    return error(
                        StatusCode::FORBIDDEN,
                        "forbidden",
                        "a websocket may be opened only by a page of this server's own origin",
                    );
                }
                let (svc, mailpit) = (compat.svc.clone(), compat.mailpit.clone());
                ws.on_upgrade(move |socket| async move { mailpit.events(svc, socket).await })
                    .into_response()
            })
            .boxed()
    }

    /// Every other request of the APIs, read whole and answered by [`Compat::dispatch`].
    fn requests(&self, root: Option<Api>) -> BoxedFilter<(Response,)> {
        let compat = self.clone();
        let max_body = self.max_body;
        warp::path::full()
            .and_then(move |full: FullPath| async move {
                let mut segments = segments(full.as_str());
                let api = match root {
                    Some(api) => api,
                    None => {
                        let api = match segments.first().map(String::as_str) {
                            Some("mailhog") => Api::MailHog,
                            Some("mailpit") => Api::Mailpit,
                            _ => return Err(warp::reject::not_found()),
                        };
                        debug_assert_eq!(segments[0], api.prefix());
                        segments.remove(0);
                        api
                    }
                };
                Ok::<_, Rejection>((api, segments))
            })
            .untuple_one()
            .and(warp::method())
            .and(warp::query::<HashMap<String, String>>())
            .and(warp::header::headers_cloned())
            .and(body::bytes(max_body))
            .then(move |api: Api, segments, method, query, headers, body| {
                let compat = compat.clone();
                async move {
                    let req = Request {
                        method,
                        segments,
                        query,
                        headers,
                        body,
                    };
                    compat.dispatch(api, req).await
                }
            })
            .boxed()
    }

    async fn dispatch(&self, api: Api, req: Request) -> Response {
        if !self.authorized(&req.headers) {
            return unauthorized();
        }
        match api {
            Api::MailHog => self.mailhog.handle(&self.svc, req).await,
            Api::Mailpit => self.mailpit.handle(&self.svc, req).await,
        }
    }

    /// Whether the request may go on: always under `--compat-auth none`, else when it
    /// carries the admin token.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        self.auth == CompatAuth::None
            || self.svc.check_admin(credential(headers).as_deref()).is_ok()
    }
}

/// Whether a websocket upgrade comes from a page of this server (or from no page at all: a
/// client that is not a browser sends no `Origin`). Browsers let any page open a websocket
/// to any host, with no CORS check, so without this a page on the web could read the events
/// of a server run with `--compat-auth none` on the user's machine.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest.trim_end_matches('/'));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// The 401 of a missing or wrong credential, asking for Basic auth.
fn unauthorized() -> Response {
    let mut res = error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "this API needs the admin token: as the password of HTTP Basic auth (any user name) or \
         as `Authorization: Bearer <token>`",
    );
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"fakemail\""),
    );
    res
}

/// The path's non-empty segments, percent-decoded (a segment that is not UTF-8 once decoded
/// is kept as it came).
fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|d| d.into_owned())
                .unwrap_or_else(|_| s.to_owned())
        })
        .collect()
}

/// The credential of an `Authorization` header: the password of `Basic` (whatever the user
/// name), or the token of `Bearer`.
fn credential(headers: &HeaderMap) -> Option<String> {
    let h = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, value) = h.trim().split_once(' ')?;
    let value = value.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(value.to_owned())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_user, password) = text.split_once(':')?;
        Some(password.to_owned())
    } else {
        None
    }
}

/// An error answer of a compatibility API, in the native API's JSON envelope
/// (`{"error":{"code","message"}}`): MailHog answers most errors with a bare status, which its
/// clients read; the envelope only adds words for a human.
pub fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    ApiError::new(status, code, message).into_response()
}

/// A domain error, mapped as the native API maps it.
pub fn domain_error(e: &Error) -> Response {
    ApiError::from(e).into_response()
}

/// The answer to a path the API does not have.
pub fn not_found(api: Api) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("the {} API has no such endpoint", api.name()),
    )
}

/// The answer to a known path with a method it does not serve.
pub fn method_not_allowed(allow: &'static str) -> Response {
    let mut res = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("allowed here: {allow}"),
    );
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    res
}

/// A JSON answer with a status.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_by_their_non_empty_segments() {
        assert_eq!(segments("//api/v2//messages/"), ["api", "v2", "messages"]);
        assert_eq!(
            segments("/api/v1/messages/a%40b"),
            ["api", "v1", "messages", "a@b"]
        );
        assert!(segments("/").is_empty());
    }

    #[tokio::test]
    async fn the_mount_takes_only_its_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let svc = crate::service::test_support::service(dir.path());
        let compat = Compat::new(svc, CompatAuth::None, 1 << 20);
        let mounted = compat.mounted();
        for path in ["/api/v2/messages", "/mailhogs/api/v2/messages", "/"] {
            let r = warp::test::request().path(path).filter(&mounted).await;
            assert!(r.is_err_and(|e| e.is_not_found()), "{path}");
        }
        let res = warp::test::request()
            .path("/mailpit//api/v1/info")
            .reply(&mounted)
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let res = warp::test::request()
            .path("//api/v2/messages")
            .reply(&compat.root(Api::MailHog))
            .await;
        assert_eq!(res.status(), StatusCode::OK, "{:?}", res.body());
    }

    #[test]
    fn the_credential_is_the_basic_password_or_the_bearer_token() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            credential(&h)
        };
        let basic = base64::engine::general_purpose::STANDARD.encode("anyone:s3cret:x");
        assert_eq!(with(&format!("Basic {basic}")).as_deref(), Some("s3cret:x"));
        assert_eq!(with("bearer tok").as_deref(), Some("tok"));
        assert_eq!(with("Basic !!!"), None);
        assert_eq!(with("Digest x"), None);
        assert_eq!(credential(&HeaderMap::new()), None);
    }
}
