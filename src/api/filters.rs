//! Every route, one function per endpoint. Order inside a route: path, method, auth, body.
//! Each path also answers 405 with an `Allow` header for methods it does not serve.

use std::collections::HashMap;
use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::body::json;
use super::browser;
use super::handlers;
use super::metrics::HttpCounts;
use super::rejection::{self, ApiError};
use super::routes::{self, Route};
use crate::error::Error;
use crate::service::{Service, Session};
use crate::ui::Ui;

/// Limits the routes enforce.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest JSON body of the account and mailbox endpoints, in bytes.
    pub max_body: u64,
    /// Largest JSON body of `POST /api/v1/messages` (the message size limit plus room for
    /// JSON escaping; the built message is checked against the exact limit).
    pub max_send_body: u64,
}

/// All routes, the web UI's too unless `ui` is `None` (`--no-ui`), and the compatibility APIs
/// under their prefixes, with every rejection turned
/// into the JSON error envelope, and every request logged and counted for `GET /metrics`.
pub fn routes(
    svc: Service,
    limits: Limits,
    ui: Option<Ui>,
    compat: super::compat::Compat,
) -> impl Filter<Extract = (impl warp::Reply,), Error = std::convert::Infallible>
+ Clone
+ Send
+ Sync
+ 'static {
    let http = Arc::new(HttpCounts::new(ui.is_some()));
    let api = service_routes(svc.clone())
        .or(register(svc.clone(), limits))
        .unify()
        .or(login(svc.clone(), limits))
        .unify()
        .or(logout(svc.clone()))
        .unify()
        .or(me_routes(svc.clone(), limits))
        .unify()
        .or(change_password(svc.clone(), limits))
        .unify()
        .or(send(svc.clone(), limits))
        .unify()
        .or(message_routes(svc.clone(), limits))
        .unify()
        .or(raw_message(svc.clone()))
        .unify()
        .or(mailbox_routes(svc.clone(), limits))
        .unify()
        .or(delete_mailbox(svc.clone()))
        .unify()
        .or(mailbox_messages(svc.clone()))
        .unify()
        .or(admin_purge(svc.clone(), limits))
        .unify()
        // Boxed: one more level of `Or` over this chain overflows the compiler's recursion
        // limit when it checks the future types in release builds.
        .boxed()
        .or(chaos_routes(svc.clone(), limits))
        .unify()
        .or(browser_routes(svc.clone(), limits))
        .unify()
        .or(harness(svc.clone()))
        .unify()
        .or(metrics(svc, http.clone()))
        .unify()
        // The MailHog and Mailpit APIs under `/mailhog/` and `/mailpit/`.
        .or(compat.mounted())
        .unify()
        .or(crate::ui::routes(ui))
        .unify();
    api.recover(rejection::recover)
        .unify()
        .with(warp::log::custom(move |info| {
            http.count(info.method(), info.path(), info.status());
            tracing::debug!(
                method = %info.method(),
                path = info.path(),
                status = info.status().as_u16(),
                elapsed_ms = info.elapsed().as_secs_f64() * 1000.0,
                "request"
            );
        }))
}

/// Rejects with 405 and `Allow` when the method is not one of the route's; otherwise steps
/// aside (not found), so the real route's own rejection wins.
pub(crate) fn others(
    route: Route,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::method().and_then(move |m: Method| async move {
        if route.methods().any(|a| a == m.as_str()) {
            return Err(warp::reject::not_found());
        }
        let allow = route.allow;
        let mut e = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{m} is not allowed here; allowed: {allow}"),
        );
        e.allow = Some(allow);
        Err(Rejection::from(e))
    })
}

fn with_svc(
    svc: Service,
) -> impl Filter<Extract = (Service,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || svc.clone())
}

/// The token of `Authorization: Bearer <token>`.
///
/// # Errors
/// [`Error::MissingToken`] for another scheme; [`Error::InvalidToken`] for a header that is not
/// visible ASCII (no token of ours: warp's typed header filter would answer a 400
/// `invalid_header` here, but a bad credential is a 401 like any other).
fn bearer(h: &HeaderValue) -> Result<&str, Error> {
    let h = h.to_str().map_err(|_| Error::InvalidToken)?;
    let (scheme, token) = h.trim().split_once(' ').ok_or(Error::MissingToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Error::MissingToken);
    }
    Ok(token.trim())
}

/// The caller's session: from `Authorization: Bearer <token>`, or, when the request has no
/// `Authorization` header, from the `fakemail_session` cookie under the CSRF rules of
/// [`browser`].
fn session(svc: Service) -> impl Filter<Extract = (Session,), Error = Rejection> + Clone {
    warp::method().and(warp::header::headers_cloned()).and_then(
        move |method: Method, headers: HeaderMap| {
            let svc = svc.clone();
            async move {
                let token = match headers.get(header::AUTHORIZATION) {
                    Some(h) => bearer(h)?,
                    None => {
                        let token = browser::cookie(&headers, browser::USER_COOKIE)
                            .ok_or(Error::MissingToken)?;
                        browser::check_csrf(&method, &headers)?;
                        token
                    }
                };
                svc.authenticate(token).await.map_err(Rejection::from)
            }
        },
    )
}

/// Refuses a request that breaks the CSRF rules of [`browser`] whatever authenticates it: for
/// the requests that open a browser session.
fn csrf() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::method()
        .and(warp::header::headers_cloned())
        .and_then(|method: Method, headers: HeaderMap| async move {
            browser::check_csrf(&method, &headers).map_err(Rejection::from)
        })
        .untuple_one()
}

/// Health, readiness and the API document, boxed: one type for the group keeps the route
/// tree small.
fn service_routes(svc: Service) -> BoxedFilter<(Response,)> {
    health()
        .or(ready(svc))
        .unify()
        .or(openapi())
        .unify()
        .boxed()
}

/// GET /api/v1/openapi.json
fn openapi() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "openapi.json").and(
        warp::get()
            .and_then(handlers::openapi)
            .or(others(routes::OPENAPI))
            .unify(),
    )
}

/// GET /healthz (and HEAD, for health checkers that use it)
fn health() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("healthz").and(
        warp::get()
            .or(warp::head())
            .unify()
            .and_then(handlers::health)
            .or(others(routes::HEALTHZ))
            .unify(),
    )
}

/// GET /readyz (and HEAD): 200 once every listener serves, 503 `not_ready` while starting or
/// draining. `/healthz` only says the process answers.
fn ready(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("readyz").and(
        warp::get()
            .or(warp::head())
            .unify()
            .and(with_svc(svc))
            .and_then(handlers::ready)
            .or(others(routes::READYZ))
            .unify(),
    )
}

/// GET /metrics (the Prometheus text format). No token, like /healthz: it shows counts, never
/// an address, a name or a message, and the admin token would let a scraper delete mail.
fn metrics(
    svc: Service,
    http: Arc<HttpCounts>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("metrics").and(
        warp::get()
            .and(with_svc(svc))
            .and(warp::any().map(move || http.clone()))
            .and_then(handlers::metrics)
            .or(others(routes::METRICS))
            .unify(),
    )
}

/// POST /api/v1/auth/register
fn register(
    svc: Service,
    l: Limits,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "auth" / "register").and(
        warp::post()
            .and(with_svc(svc))
            .and(json(l.max_body))
            .and_then(handlers::register)
            .or(others(routes::REGISTER))
            .unify(),
    )
}

/// POST /api/v1/auth/login
fn login(svc: Service, l: Limits) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "auth" / "login").and(
        warp::post()
            .and(with_svc(svc))
            .and(json(l.max_body))
            .and_then(handlers::login)
            .or(others(routes::LOGIN))
            .unify(),
    )
}

/// POST /api/v1/auth/logout
fn logout(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "auth" / "logout").and(
        warp::post()
            .and(with_svc(svc.clone()))
            .and(session(svc))
            .and_then(handlers::logout)
            .or(others(routes::LOGOUT))
            .unify(),
    )
}

/// GET /api/v1/me, PATCH /api/v1/me, DELETE /api/v1/me
fn me_routes(
    svc: Service,
    l: Limits,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "me").and(
        get_me(svc.clone())
            .or(patch_me(svc.clone(), l))
            .unify()
            .or(delete_me(svc, l))
            .unify()
            .or(others(routes::ME))
            .unify(),
    )
}

/// GET /api/v1/me
fn get_me(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::get().and(session(svc)).and_then(handlers::me)
}

/// PATCH /api/v1/me
fn patch_me(
    svc: Service,
    l: Limits,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::patch()
        .and(with_svc(svc.clone()))
        .and(session(svc))
        .and(json(l.max_body))
        .and_then(handlers::update_me)
}

/// DELETE /api/v1/me
fn delete_me(
    svc: Service,
    l: Limits,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::delete()
        .and(with_svc(svc.clone()))
        .and(session(svc))
        .and(json(l.max_body))
        .and_then(handlers::delete_me)
}

/// POST /api/v1/me/password
fn change_password(
    svc: Service,
    l: Limits,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "me" / "password").and(
        warp::post()
            .and(with_svc(svc.clone()))
            .and(session(svc))
            .and(json(l.max_body))
            .and_then(handlers::change_password)
            .or(others(routes::PASSWORD))
            .unify(),
    )
}

/// The admin token of `Authorization: Bearer <token>`, if the header has one. A header that is
/// not visible ASCII holds no token of ours: the same 401 as a wrong token, as on the user
/// endpoints (warp's typed header filter would answer a 400 here).
fn admin_bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|h| bearer(h).ok())
}

/// Requires the admin token, or, when the request has no `Authorization` header, an operator
/// session's `fakemail_admin` cookie under the CSRF rules of [`browser`].
fn admin(svc: Service) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::method()
        .and(warp::header::headers_cloned())
        .and_then(move |method: Method, headers: HeaderMap| {
            let svc = svc.clone();
            async move {
                let cookie = browser::cookie(&headers, browser::ADMIN_COOKIE);
                match cookie {
                    Some(id) if !headers.contains_key(header::AUTHORIZATION) => {
                        browser::check_csrf(&method, &headers)?;
                        svc.check_admin_session(id).map_err(Rejection::from)
                    }
                    _ => svc
                        .check_admin(admin_bearer(&headers))
                        .map_err(Rejection::from),
                }
            }
        })
        .untuple_one()
}

/// Requires the admin token itself (no session cookie): for opening an operator session,
/// which a session must not be able to renew on its own.
fn admin_token(svc: Service) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and_then(move |headers: HeaderMap| {
            let svc = svc.clone();
            async move {
                svc.check_admin(admin_bearer(&headers))
                    .map_err(Rejection::from)
            }
        })
        .untuple_one()
}

/// The operator session id of the `fakemail_admin` cookie, if the request has one.
fn admin_cookie()
-> impl Filter<Extract = (Option<String>,), Error = std::convert::Infallible> + Clone {
    warp::header::headers_cloned().map(|headers: HeaderMap| {
        browser::cookie(&headers, browser::ADMIN_COOKIE).map(str::to_owned)
    })
}

fn query() -> impl Filter<Extract = (HashMap<String, String>,), Error = Rejection> + Clone {
    warp::query::<HashMap<String, String>>()
}

/// POST /api/v1/messages
fn send(svc: Service, l: Limits) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "messages").and(
        warp::post()
            .and(with_svc(svc.clone()))
            .and(session(svc))
            .and(json(l.max_send_body))
            .and_then(handlers::send)
            .or(others(routes::MESSAGES))
            .unify(),
    )
}

/// GET, PATCH and DELETE /api/v1/messages/{id}
fn message_routes(
    svc: Service,
    l: Limits,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let path = || warp::path!("api" / "v1" / "messages" / String);
    get_message(path(), svc.clone())
        .or(patch_message(path(), svc.clone(), l))
        .unify()
        .or(delete_message(path(), svc))
        .unify()
        .or(path().and(others(routes::MESSAGE)).map(|_: String, r| r))
        .unify()
}

/// GET /api/v1/messages/{id}
fn get_message(
    path: impl Filter<Extract = (String,), Error = Rejection> + Clone + Send + Sync + 'static,
    svc: Service,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    path.and(with_svc(svc.clone()))
        .and(warp::get())
        .and(session(svc))
        .and_then(handlers::get_message)
}

/// PATCH /api/v1/messages/{id}
fn patch_message(
    path: impl Filter<Extract = (String,), Error = Rejection> + Clone + Send + Sync + 'static,
    svc: Service,
    l: Limits,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    path.and(with_svc(svc.clone()))
        .and(warp::patch())
        .and(session(svc))
        .and(json(l.max_body))
        .and_then(handlers::patch_message)
}

/// DELETE /api/v1/messages/{id}?permanent=true
fn delete_message(
    path: impl Filter<Extract = (String,), Error = Rejection> + Clone + Send + Sync + 'static,
    svc: Service,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    path.and(with_svc(svc.clone()))
        .and(warp::delete())
        .and(session(svc))
        .and(query())
        .and_then(handlers::delete_message)
}

/// GET /api/v1/messages/{id}/raw
fn raw_message(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let path = || warp::path!("api" / "v1" / "messages" / String / "raw");
    path()
        .and(with_svc(svc.clone()))
        .and(warp::get())
        .and(session(svc))
        .and_then(handlers::raw_message)
        .or(path()
            .and(others(routes::MESSAGE_RAW))
            .map(|_: String, r| r))
        .unify()
}

/// GET /api/v1/messages/{id}/attachments/{index}
fn message_attachment(
    svc: Service,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let path = || warp::path!("api" / "v1" / "messages" / String / "attachments" / String);
    path()
        .and(with_svc(svc.clone()))
        .and(warp::get())
        .and(session(svc))
        .and_then(handlers::message_attachment)
        .or(path()
            .and(others(routes::MESSAGE_ATTACHMENT))
            .map(|_: String, _: String, r| r))
        .unify()
}

/// GET and POST /api/v1/mailboxes
fn mailbox_routes(
    svc: Service,
    l: Limits,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "mailboxes").and(
        list_mailboxes(svc.clone())
            .or(create_mailbox(svc, l))
            .unify()
            .or(others(routes::MAILBOXES))
            .unify(),
    )
}

/// GET /api/v1/mailboxes
fn list_mailboxes(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::get()
        .and(with_svc(svc.clone()))
        .and(session(svc))
        .and_then(handlers::list_mailboxes)
}

/// POST /api/v1/mailboxes
fn create_mailbox(
    svc: Service,
    l: Limits,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::post()
        .and(with_svc(svc.clone()))
        .and(session(svc))
        .and(json(l.max_body))
        .and_then(handlers::create_mailbox)
}

/// DELETE /api/v1/mailboxes/{name}
fn delete_mailbox(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let path = || warp::path!("api" / "v1" / "mailboxes" / String);
    path()
        .and(with_svc(svc.clone()))
        .and(warp::delete())
        .and(session(svc))
        .and_then(handlers::delete_mailbox)
        .or(path().and(others(routes::MAILBOX)).map(|_: String, r| r))
        .unify()
}

/// GET and DELETE /api/v1/mailboxes/{name}/messages
fn mailbox_messages(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let path = || warp::path!("api" / "v1" / "mailboxes" / String / "messages");
    list_messages(path(), svc.clone())
        .or(empty_mailbox(path(), svc))
        .unify()
        .or(path()
            .and(others(routes::MAILBOX_MESSAGES))
            .map(|_: String, r| r))
        .unify()
}

/// GET /api/v1/mailboxes/{name}/messages?limit=&cursor=&unread=&starred=
fn list_messages(
    path: impl Filter<Extract = (String,), Error = Rejection> + Clone + Send + Sync + 'static,
    svc: Service,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    path.and(with_svc(svc.clone()))
        .and(warp::get())
        .and(session(svc))
        .and(query())
        .and_then(handlers::list_messages)
}

/// DELETE /api/v1/mailboxes/{name}/messages
fn empty_mailbox(
    path: impl Filter<Extract = (String,), Error = Rejection> + Clone + Send + Sync + 'static,
    svc: Service,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    path.and(with_svc(svc.clone()))
        .and(warp::delete())
        .and(session(svc))
        .and_then(handlers::empty_mailbox)
}

/// POST /api/v1/admin/purge
fn admin_purge(
    svc: Service,
    l: Limits,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "admin" / "purge").and(
        warp::post()
            .and(admin(svc.clone()))
            .and(with_svc(svc))
            .and(json(l.max_body))
            .and_then(handlers::admin_purge)
            .or(others(routes::ADMIN_PURGE))
            .unify(),
    )
}

/// GET, PUT and DELETE /api/v1/admin/chaos
fn admin_chaos(
    svc: Service,
    l: Limits,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let admin_svc = admin(svc.clone()).and(with_svc(svc));
    warp::path!("api" / "v1" / "admin" / "chaos").and(
        warp::get()
            .and(admin_svc.clone())
            .and_then(handlers::chaos_get)
            .or(warp::put()
                .and(admin_svc.clone())
                .and(json(l.max_body))
                .and_then(handlers::chaos_put))
            .unify()
            .or(warp::delete()
                .and(admin_svc)
                .and_then(handlers::chaos_clear))
            .unify()
            .or(others(routes::ADMIN_CHAOS))
            .unify(),
    )
}

/// POST /api/v1/admin/chaos/rules
fn admin_chaos_rules(
    svc: Service,
    l: Limits,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "admin" / "chaos" / "rules").and(
        warp::post()
            .and(admin(svc.clone()))
            .and(with_svc(svc))
            .and(json(l.max_body))
            .and_then(handlers::chaos_add)
            .or(others(routes::ADMIN_CHAOS_RULES))
            .unify(),
    )
}

/// DELETE /api/v1/admin/chaos/rules/{id}
fn admin_chaos_rule(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let path = warp::path!("api" / "v1" / "admin" / "chaos" / "rules" / String);
    path.and(warp::delete())
        .and(admin(svc.clone()))
        .and(with_svc(svc))
        .and_then(handlers::chaos_remove)
        .or(path
            .and(others(routes::ADMIN_CHAOS_RULE))
            .map(|_: String, r: Response| r))
        .unify()
}

/// PUT /api/v1/admin/messages/{id}/tags
fn admin_message_tags(
    svc: Service,
    l: Limits,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let path = || warp::path!("api" / "v1" / "admin" / "messages" / String / "tags");
    path()
        .and(warp::put())
        .and(admin(svc.clone()))
        .and(with_svc(svc))
        .and(json(l.max_body))
        .and_then(handlers::admin_set_tags)
        .or(path()
            .and(others(routes::ADMIN_MESSAGE_TAGS))
            .map(|_: String, r| r))
        .unify()
}

/// GET /api/v1/admin/tags
fn admin_tags(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "admin" / "tags").and(
        warp::get()
            .and(admin(svc.clone()))
            .and(with_svc(svc))
            .and_then(handlers::admin_tags)
            .or(others(routes::ADMIN_TAGS))
            .unify(),
    )
}

/// PUT|DELETE /api/v1/admin/tags/{tag}
fn admin_tag(
    svc: Service,
    l: Limits,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let path = || warp::path!("api" / "v1" / "admin" / "tags" / String);
    path()
        .and(warp::put())
        .and(admin(svc.clone()))
        .and(with_svc(svc.clone()))
        .and(json(l.max_body))
        .and_then(handlers::admin_rename_tag)
        .or(path()
            .and(warp::delete())
            .and(admin(svc.clone()))
            .and(with_svc(svc))
            .and_then(handlers::admin_delete_tag))
        .unify()
        .or(path().and(others(routes::ADMIN_TAG)).map(|_: String, r| r))
        .unify()
}

/// The fault-injection and tag endpoints, boxed: one type for the group keeps the route tree
/// small.
fn chaos_routes(svc: Service, l: Limits) -> BoxedFilter<(Response,)> {
    admin_message_tags(svc.clone(), l)
        .or(admin_tags(svc.clone()))
        .unify()
        .or(admin_tag(svc.clone(), l))
        .unify()
        .or(admin_chaos(svc.clone(), l))
        .unify()
        .or(admin_chaos_rules(svc.clone(), l))
        .unify()
        .or(admin_chaos_rule(svc))
        .unify()
        .boxed()
}

/// The operator view and the test-harness endpoints, boxed: one type for the whole group
/// keeps the route tree's type, and its compile time, small.
fn harness(svc: Service) -> BoxedFilter<(Response,)> {
    message_attachment(svc.clone())
        .or(admin_messages(svc.clone()))
        .unify()
        .or(admin_message_routes(svc.clone()))
        .unify()
        .or(admin_raw(svc.clone()))
        .unify()
        .or(admin_attachment(svc.clone()))
        .unify()
        .or(admin_stats(svc.clone()))
        .unify()
        .or(admin_wait(svc.clone()))
        .unify()
        .or(mailbox_wait(svc.clone()))
        .unify()
        .or(admin_events(svc.clone()))
        .unify()
        .or(user_events(svc))
        .unify()
        .boxed()
}

/// GET and DELETE /api/v1/admin/messages
fn admin_messages(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "admin" / "messages").and(
        admin_list(svc.clone())
            .or(admin_delete_all(svc))
            .unify()
            .or(others(routes::ADMIN_MESSAGES))
            .unify(),
    )
}

/// GET /api/v1/admin/messages?to=&from=&subject=&q=&limit=&cursor=
fn admin_list(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::get()
        .and(admin(svc.clone()))
        .and(with_svc(svc))
        .and(query())
        .and_then(handlers::admin_list)
}

/// DELETE /api/v1/admin/messages
fn admin_delete_all(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::delete()
        .and(admin(svc.clone()))
        .and(with_svc(svc))
        .and_then(handlers::admin_delete_all)
}

/// GET and DELETE /api/v1/admin/messages/{id}
fn admin_message_routes(
    svc: Service,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let path = || warp::path!("api" / "v1" / "admin" / "messages" / String);
    path()
        .and(warp::get())
        .and(admin(svc.clone()))
        .and(with_svc(svc.clone()))
        .and_then(handlers::admin_message)
        .or(path()
            .and(warp::delete())
            .and(admin(svc.clone()))
            .and(with_svc(svc))
            .and_then(handlers::admin_delete))
        .unify()
        .or(path()
            .and(others(routes::ADMIN_MESSAGE))
            .map(|_: String, r| r))
        .unify()
}

/// GET /api/v1/admin/messages/{id}/raw
fn admin_raw(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let path = || warp::path!("api" / "v1" / "admin" / "messages" / String / "raw");
    path()
        .and(warp::get())
        .and(admin(svc.clone()))
        .and(with_svc(svc))
        .and_then(handlers::admin_raw)
        .or(path()
            .and(others(routes::ADMIN_MESSAGE_RAW))
            .map(|_: String, r| r))
        .unify()
}

/// GET /api/v1/admin/messages/{id}/attachments/{index}
fn admin_attachment(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let path =
        || warp::path!("api" / "v1" / "admin" / "messages" / String / "attachments" / String);
    path()
        .and(warp::get())
        .and(admin(svc.clone()))
        .and(with_svc(svc))
        .and_then(handlers::admin_attachment)
        .or(path()
            .and(others(routes::ADMIN_MESSAGE_ATTACHMENT))
            .map(|_: String, _: String, r| r))
        .unify()
}

/// GET /api/v1/admin/stats
fn admin_stats(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "admin" / "stats").and(
        warp::get()
            .and(admin(svc.clone()))
            .and(with_svc(svc))
            .and_then(handlers::admin_stats)
            .or(others(routes::ADMIN_STATS))
            .unify(),
    )
}

/// GET /api/v1/admin/wait?to=&from=&subject=&after=&timeout=
fn admin_wait(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "admin" / "wait").and(
        warp::get()
            .and(admin(svc.clone()))
            .and(with_svc(svc))
            .and(query())
            .and_then(handlers::admin_wait)
            .or(others(routes::ADMIN_WAIT))
            .unify(),
    )
}

/// GET /api/v1/mailboxes/{name}/wait?to=&from=&subject=&after=&timeout=
fn mailbox_wait(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let path = || warp::path!("api" / "v1" / "mailboxes" / String / "wait");
    path()
        .and(with_svc(svc.clone()))
        .and(warp::get())
        .and(session(svc))
        .and(query())
        .and_then(handlers::mailbox_wait)
        .or(path()
            .and(others(routes::MAILBOX_WAIT))
            .map(|_: String, r| r))
        .unify()
}

/// GET /api/v1/admin/events (Server-Sent Events)
fn admin_events(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "admin" / "events").and(
        warp::get()
            .and(admin(svc.clone()))
            .and(with_svc(svc))
            .and(warp::sse::last_event_id::<String>())
            .and_then(handlers::admin_events)
            .or(others(routes::ADMIN_EVENTS))
            .unify(),
    )
}

/// GET /api/v1/events (Server-Sent Events)
fn user_events(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "events").and(
        warp::get()
            .and(with_svc(svc.clone()))
            .and(session(svc))
            .and(warp::sse::last_event_id::<String>())
            .and_then(handlers::user_events)
            .or(others(routes::EVENTS))
            .unify(),
    )
}

/// The browser's sessions and the HTML of messages, boxed: one type for the group keeps the
/// route tree small.
fn browser_routes(svc: Service, l: Limits) -> BoxedFilter<(Response,)> {
    user_session(svc.clone(), l)
        .or(admin_session(svc.clone()))
        .unify()
        .or(message_html(svc.clone()))
        .unify()
        .or(admin_message_html(svc))
        .unify()
        .boxed()
}

/// POST and DELETE /api/v1/auth/session
fn user_session(
    svc: Service,
    l: Limits,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "auth" / "session").and(
        warp::post()
            .and(csrf())
            .and(with_svc(svc.clone()))
            .and(json(l.max_body))
            .and_then(handlers::open_session)
            .or(warp::delete()
                .and(with_svc(svc.clone()))
                .and(session(svc))
                .and_then(handlers::close_session))
            .unify()
            .or(others(routes::SESSION))
            .unify(),
    )
}

/// POST and DELETE /api/v1/admin/session
fn admin_session(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "admin" / "session").and(
        warp::post()
            .and(admin_token(svc.clone()))
            .and(csrf())
            .and(with_svc(svc.clone()))
            .and_then(handlers::open_admin_session)
            .or(warp::delete()
                .and(admin(svc.clone()))
                .and(with_svc(svc))
                .and(admin_cookie())
                .and_then(handlers::close_admin_session))
            .unify()
            .or(others(routes::ADMIN_SESSION))
            .unify(),
    )
}

/// GET /api/v1/messages/{id}/html?remote=
fn message_html(svc: Service) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let path = || warp::path!("api" / "v1" / "messages" / String / "html");
    path()
        .and(with_svc(svc.clone()))
        .and(warp::get())
        .and(session(svc))
        .and(query())
        .and_then(handlers::message_html)
        .or(path()
            .and(others(routes::MESSAGE_HTML))
            .map(|_: String, r| r))
        .unify()
}

/// GET /api/v1/admin/messages/{id}/html?remote=
fn admin_message_html(
    svc: Service,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let path = || warp::path!("api" / "v1" / "admin" / "messages" / String / "html");
    path()
        .and(warp::get())
        .and(admin(svc.clone()))
        .and(with_svc(svc))
        .and(query())
        .and_then(handlers::admin_message_html)
        .or(path()
            .and(others(routes::ADMIN_MESSAGE_HTML))
            .map(|_: String, r| r))
        .unify()
}
