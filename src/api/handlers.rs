//! One async function per endpoint: typed inputs in, a reply or a rejection out. Each one's
//! doc comment and `#[utoipa::path]` are its operation in the OpenAPI document: the first line
//! its summary, the rest its description.

use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::{Response, json, with_status};
use warp::{Rejection, Reply};

use std::collections::HashMap;
use std::sync::Arc;

use super::browser;
use super::dto::*;
use super::exposition;
use super::metrics::HttpCounts;
use super::openapi::*;
use super::rejection::Envelope;
use super::routes;
use crate::error::Error;
use crate::service::chaos::{Rule, RuleJson, RuleSpec};
use crate::service::events::EventKind;
use crate::service::filter::MessageFilter;
use crate::service::mail::ListQuery;
use crate::service::mime;
use crate::service::operator::AdminQuery;
use crate::service::search::Search as SearchQuery;
use crate::service::stream::{EventStream, Notice, NoticeItem};
use crate::service::watch::{self, Audience, Found, Waited};
use crate::service::{NewUser, Service, Session};

fn created<T: serde::Serialize>(body: &T) -> Response {
    with_status(json(body), StatusCode::CREATED).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Liveness
///
/// Answers 200 whenever the process answers at all.
#[utoipa::path(
    get, path = routes::HEALTHZ.template, tag = "service",
    operation_id = "health",
    responses(
        (status = 200, description = "The process answers.", body = Health),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn health() -> Result<Response, Rejection> {
    Ok(json(&Health {
        status: Liveness::Ok,
    })
    .into_response())
}

/// Readiness
///
/// 200 only once the store is open and every listener is bound; 503 `not_ready` while the
/// server starts and from the moment shutdown begins, while in-flight requests drain; 507
/// `storage_full` while new mail is refused for lack of disk space. Point load balancers and
/// start-up scripts here.
#[utoipa::path(
    get, path = routes::READYZ.template, tag = "service",
    operation_id = "ready",
    responses(
        (status = 200, description = "The server is ready.", body = Ready),
        (status = 503, response = NotReady),
        (status = 507, response = StorageFull),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn ready(svc: Service) -> Result<Response, Rejection> {
    svc.check_ready()?;
    Ok(json(&Ready {
        status: Readiness::Ready,
    })
    .into_response())
}

/// This document
#[utoipa::path(
    get, path = routes::OPENAPI.template, tag = "service",
    operation_id = "openapi",
    responses(
        (status = 200, description = "The OpenAPI document of the REST API.", body = Object),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn openapi() -> Result<Response, Rejection> {
    Ok(warp::reply::with_header(
        super::openapi::document(),
        header::CONTENT_TYPE,
        "application/json",
    )
    .into_response())
}

/// The server's counters, for Prometheus
///
/// Counters and gauges in the Prometheus text exposition format 0.0.4: messages, bytes, users,
/// SMTP connections and replies by code, HTTP requests by route template, method and status,
/// sweeper runs, deletions by reason, chaos faults. Open like /healthz: it shows counts only,
/// never addresses, subjects or tokens.
#[utoipa::path(
    get, path = routes::METRICS.template, tag = "service",
    operation_id = "metrics",
    responses(
        (status = 200, description = "The metrics.", body = String, content_type = "text/plain"),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn metrics(svc: Service, http: Arc<HttpCounts>) -> Result<Response, Rejection> {
    let body = super::metrics::render(&svc, &http).await?;
    Ok(
        warp::reply::with_header(body, header::CONTENT_TYPE, exposition::CONTENT_TYPE)
            .into_response(),
    )
}

/// Register an account
///
/// Mail already sent to the address is in the new account's inbox.
#[utoipa::path(
    post, path = routes::REGISTER.template, tag = "accounts",
    operation_id = "register",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The new account.", body = UserDto),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 409, description = "`email_taken`: an account with this address already exists \
            (compared case-insensitively).", body = Envelope),
        (status = 422, description = "`invalid_body`, `invalid_email`, `weak_password` (the \
            message names the rule) or `invalid_display_name`.", body = Envelope),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn register(svc: Service, req: RegisterRequest) -> Result<Response, Rejection> {
    let user = svc
        .register(NewUser {
            email: req.email,
            password: req.password,
            display_name: req.display_name,
        })
        .await?;
    Ok(created(&UserDto::from(&user)))
}

/// Log in
///
/// An unknown address and a wrong password get the same answer. After 5 failed attempts for one
/// address within 15 minutes, further attempts get 429 until the oldest failure is 15 minutes
/// old.
#[utoipa::path(
    post, path = routes::LOGIN.template, tag = "accounts",
    operation_id = "login",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "A new session; the token is shown only here.",
            body = LoginResponse),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 401, description = "`invalid_credentials`: wrong email or password (the same for \
            both).", body = Envelope),
        (status = 422, response = InvalidBody),
        (status = 429, response = TooManyAttempts),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn login(svc: Service, req: LoginRequest) -> Result<Response, Rejection> {
    let outcome = svc.login(&req.email, &req.password).await?;
    Ok(json(&LoginResponse::from(outcome)).into_response())
}

/// Log out
#[utoipa::path(
    post, path = routes::LOGOUT.template, tag = "accounts",
    operation_id = "logout", security(("session" = [])),
    responses(
        (status = 204, description = "The token stops working at once."),
        (status = 401, response = Unauthorized),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn logout(svc: Service, session: Session) -> Result<Response, Rejection> {
    svc.logout(&session).await?;
    Ok(no_content())
}

/// Log in from a browser
///
/// `POST /api/v1/auth/login` for the web UI: the same checks and the same limit on failed
/// attempts, but the new session's token goes into a cookie, `fakemail_session` (`HttpOnly`,
/// `SameSite=Strict`, `Path=/api/`), never into the answer. Every user endpoint then takes the
/// cookie when a request has no `Authorization` header, under the CSRF rules of the
/// `session_cookie` security scheme; this request must carry `X-Requested-With: fakemail` too.
#[utoipa::path(
    post, path = routes::SESSION.template, tag = "accounts",
    operation_id = "openSession",
    params(RequestedWith),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "The account; the session is in the cookie.",
            body = UserDto, headers(("Set-Cookie" = String, description = "\
            `fakemail_session=<token>; Path=/api/; Max-Age=<seconds>; HttpOnly; \
            SameSite=Strict`: the session token, for `--session-ttl`."))),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 401, description = "`invalid_credentials`: wrong email or password (the same for \
            both).", body = Envelope),
        (status = 403, response = Csrf),
        (status = 422, response = InvalidBody),
        (status = 429, response = TooManyAttempts),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn open_session(svc: Service, req: LoginRequest) -> Result<Response, Rejection> {
    let outcome = svc.login(&req.email, &req.password).await?;
    let ttl = svc.settings().session_ttl.as_secs();
    let cookie = browser::set_cookie(
        browser::USER_COOKIE,
        &outcome.token,
        browser::USER_COOKIE_PATH,
        ttl,
    );
    Ok(with_cookie(
        json(&UserDto::from(&outcome.user)).into_response(),
        cookie,
    ))
}

/// Log out from a browser
///
/// Ends the session that authenticates the request (a cookie's, or a bearer token's) and
/// deletes the cookie.
#[utoipa::path(
    delete, path = routes::SESSION.template, tag = "accounts",
    operation_id = "closeSession", security(("session" = [])),
    responses(
        (status = 204, description = "The session has ended.", headers(("Set-Cookie" = String,
            description = "`fakemail_session=; Path=/api/; Max-Age=0; HttpOnly; \
            SameSite=Strict`: deletes the cookie."))),
        (status = 401, response = Unauthorized),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn close_session(svc: Service, session: Session) -> Result<Response, Rejection> {
    svc.logout(&session).await?;
    let clear = browser::clear_cookie(browser::USER_COOKIE, browser::USER_COOKIE_PATH);
    Ok(with_cookie(no_content(), clear))
}

/// Adds a `Set-Cookie` header, and keeps the answer out of every cache.
fn with_cookie(mut res: Response, cookie: HeaderValue) -> Response {
    let h = res.headers_mut();
    h.insert(header::SET_COOKIE, cookie);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The caller's account
#[utoipa::path(
    get, path = routes::ME.template, tag = "accounts",
    operation_id = "getMe", security(("session" = [])),
    responses(
        (status = 200, description = "The account.", body = UserDto),
        (status = 401, response = Unauthorized),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn me(session: Session) -> Result<Response, Rejection> {
    Ok(json(&UserDto::from(&session.user)).into_response())
}

/// Change the display name
#[utoipa::path(
    patch, path = routes::ME.template, tag = "accounts",
    operation_id = "updateMe", security(("session" = [])),
    request_body = UpdateProfileRequest,
    responses(
        (status = 200, description = "The changed account.", body = UserDto),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 401, response = Unauthorized),
        (status = 422, description = "`invalid_body` or `invalid_display_name`.", body = Envelope),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn update_me(
    svc: Service,
    session: Session,
    req: UpdateProfileRequest,
) -> Result<Response, Rejection> {
    let user = svc.update_profile(&session, &req.display_name).await?;
    Ok(json(&UserDto::from(&user)).into_response())
}

/// Change the password
///
/// Every other token of the user is revoked. The current-password check counts as a login
/// attempt.
#[utoipa::path(
    post, path = routes::PASSWORD.template, tag = "accounts",
    operation_id = "changePassword", security(("session" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "The password is changed."),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 401, description = "`missing_token`, `invalid_token`, or `invalid_credentials` \
            for a wrong current password.", body = Envelope),
        (status = 422, description = "`invalid_body` or `weak_password`.", body = Envelope),
        (status = 429, response = TooManyAttempts),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn change_password(
    svc: Service,
    session: Session,
    req: ChangePasswordRequest,
) -> Result<Response, Rejection> {
    svc.change_password(&session, &req.current_password, &req.new_password)
        .await?;
    Ok(no_content())
}

/// Delete the account
///
/// The account, its sessions, its mailboxes and its copies of messages are deleted. The
/// password check counts as a login attempt.
#[utoipa::path(
    delete, path = routes::ME.template, tag = "accounts",
    operation_id = "deleteMe", security(("session" = [])),
    request_body = DeleteAccountRequest,
    responses(
        (status = 204, description = "The account is gone."),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 401, description = "`missing_token`, `invalid_token`, or `invalid_credentials` \
            for a wrong password.", body = Envelope),
        (status = 422, response = InvalidBody),
        (status = 429, response = TooManyAttempts),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn delete_me(
    svc: Service,
    session: Session,
    req: DeleteAccountRequest,
) -> Result<Response, Rejection> {
    svc.delete_account(&session, &req.password).await?;
    Ok(no_content())
}

/// Parses a message id from the path; anything else is simply not found.
fn message_id(raw: &str) -> Result<u64, Rejection> {
    raw.parse()
        .map_err(|_| Rejection::from(Error::NotFound("message")))
}

/// Decodes a percent-encoded path segment (mailbox names may hold spaces and non-ASCII).
fn segment(raw: &str) -> Result<String, Rejection> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Rejection::from(Error::NotFound("mailbox")))
}

/// Send a message
///
/// Builds an RFC 5322 message, stores it once, gives every distinct recipient address a copy
/// of its own in its inbox (unread) and the sender a copy in `sent` (read). A recipient needs
/// no account. The JSON body may be at most `--max-message-size` plus `--max-body-size` bytes.
#[utoipa::path(
    post, path = routes::MESSAGES.template, tag = "mail",
    operation_id = "send", security(("session" = [])),
    request_body = SendRequest,
    responses(
        (status = 201, description = "The sender's copy, in `sent`: the only one that lists the \
            Bcc recipients.", body = MessageDto),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, description = "`payload_too_large` (the body) or `message_too_large` (the \
            message built from it is larger than `--max-message-size`).", body = Envelope),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, description = "`invalid_body`, `no_recipients`, `too_many_recipients`, \
            `invalid_address` (field `to[1]`, `cc[0]`, `bcc[2]`, `reply_to`) or `invalid_header` \
            (field `subject` or `headers.<name>`).", body = Envelope),
        (status = 507, response = StorageFull),
        (status = "default", description = "Also `injected_fault`, with the status of a \
            fault-injection rule at `api_send`, and the errors of every endpoint.",
            body = Envelope),
    )
)]
pub async fn send(svc: Service, session: Session, req: SendRequest) -> Result<Response, Rejection> {
    let full = svc.send(&session.user, req.into()).await?;
    Ok(created(&MessageDto::from(full)))
}

/// A whole message
///
/// Reading does not change `read`.
#[utoipa::path(
    get, path = routes::MESSAGE.template, tag = "mail",
    operation_id = "getMessage", security(("session" = [])),
    params(CopyId),
    responses(
        (status = 200, description = "The caller's copy.", body = MessageDto),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn get_message(
    id: String,
    svc: Service,
    session: Session,
) -> Result<Response, Rejection> {
    let full = svc.message(&session.user, message_id(&id)?).await?;
    Ok(json(&MessageDto::from(full)).into_response())
}

/// Rename a tag
///
/// Renames a tag on every message that carries it; a message that already has the new name
/// keeps it once. The new name keeps the spelling given unless it is already in use.
#[utoipa::path(
    put, path = routes::ADMIN_TAG.template, tag = "operator",
    operation_id = "adminRenameTag", security(("admin" = [])),
    params(TagName),
    request_body = RenameTagRequest,
    responses(
        (status = 200, description = "How many messages carried the tag.", body = TagChangeDto),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 401, response = AdminUnauthorized),
        (status = 404, description = "`not_found`: no message carries the tag.", body = Envelope),
        (status = 422, description = "`invalid_body`, or `invalid_tag` (field `tag` or
            `name`).", body = Envelope),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn admin_rename_tag(
    tag: String,
    svc: Service,
    req: RenameTagRequest,
) -> Result<Response, Rejection> {
    let tag = tag_segment(&tag)?;
    let n = svc.rename_tag(&tag, &req.name).await?;
    tag_changed(n)
}

/// Delete a tag
///
/// Removes a tag from every message that carries it.
#[utoipa::path(
    delete, path = routes::ADMIN_TAG.template, tag = "operator",
    operation_id = "adminDeleteTag", security(("admin" = [])),
    params(TagName),
    responses(
        (status = 200, description = "How many messages carried the tag.", body = TagChangeDto),
        (status = 401, response = AdminUnauthorized),
        (status = 404, description = "`not_found`: no message carries the tag.", body = Envelope),
        (status = 422, description = "`invalid_tag` (field `tag`).", body = Envelope),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn admin_delete_tag(tag: String, svc: Service) -> Result<Response, Rejection> {
    let tag = tag_segment(&tag)?;
    let n = svc.delete_tag(&tag).await?;
    tag_changed(n)
}

/// A tag from the path, percent-decoded.
fn tag_segment(raw: &str) -> Result<String, Rejection> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Rejection::from(Error::NotFound("tag")))
}

/// The answer to a tag renamed or deleted on `n` messages: none is a tag not in use.
fn tag_changed(n: usize) -> Result<Response, Rejection> {
    if n == 0 {
        return Err(Error::NotFound("tag").into());
    }
    Ok(json(&TagChangeDto { messages: n as u64 }).into_response())
}

/// A message's source
#[utoipa::path(
    get, path = routes::MESSAGE_RAW.template, tag = "mail",
    operation_id = "getMessageRaw", security(("session" = [])),
    params(CopyId),
    responses(
        (status = 200, response = Raw),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn raw_message(
    id: String,
    svc: Service,
    session: Session,
) -> Result<Response, Rejection> {
    let id = message_id(&id)?;
    let raw = svc.raw(&session.user, id).await?;
    Ok(warp::reply::with_header(raw, "content-type", "message/rfc822").into_response())
}

/// A message's HTML, for a sandboxed frame
///
/// The HTML body, its `cid:` references to the message's own parts (inline images) replaced by
/// `data:` URIs, at most `--max-message-size` bytes of them (references past that stay
/// `cid:`). Served with a Content-Security-Policy that sandboxes it (no script runs, no form
/// is sent, it has no origin of its own) and lets it load no remote image, style or font
/// unless `remote=true`. A `<base target="_blank">` comes first, so that its links open in a
/// new tab. Show it only in `<iframe sandbox="allow-popups allow-popups-to-escape-sandbox">`.
#[utoipa::path(
    get, path = routes::MESSAGE_HTML.template, tag = "mail",
    operation_id = "getMessageHtml", security(("session" = [])),
    params(CopyId, Remote),
    responses(
        (status = 200, response = Html),
        (status = 401, response = Unauthorized),
        (status = 404, response = NoHtml),
        (status = 422, response = InvalidQuery),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn message_html(
    id: String,
    svc: Service,
    session: Session,
    q: HashMap<String, String>,
) -> Result<Response, Rejection> {
    let id = message_id(&id)?;
    let remote = query_bool(&q, "remote")?.unwrap_or(false);
    let html = svc.message_html(&session.user, id).await?;
    Ok(html_reply(html, remote))
}

/// The `Content-Security-Policy` of a message's HTML: sandboxed (no script, form or origin of
/// its own; popups allowed, and unsandboxed, so that its links open in a new tab), nothing but
/// inline styles and `data:` images and fonts, and with `remote`, images, styles and fonts over
/// `http:` and `https:` (never scripts, frames or anything else).
fn html_policy(remote: bool) -> &'static str {
    if remote {
        "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; \
         img-src data: http: https:; style-src 'unsafe-inline' http: https:; \
         font-src data: http: https:; frame-ancestors 'self'; base-uri 'none'; \
         form-action 'none'"
    } else {
        "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; \
         img-src data:; style-src 'unsafe-inline'; font-src data:; frame-ancestors 'self'; \
         base-uri 'none'; form-action 'none'"
    }
}

/// A message's HTML with the headers that confine it.
pub(crate) fn html_reply(html: String, remote: bool) -> Response {
    let mut res = Response::new(html.into());
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(html_policy(remote)),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    res
}

/// An attachment's content
#[utoipa::path(
    get, path = routes::MESSAGE_ATTACHMENT.template, tag = "mail",
    operation_id = "getMessageAttachment", security(("session" = [])),
    params(CopyId, AttachmentIndex),
    responses(
        (status = 200, response = Attachment),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn message_attachment(
    id: String,
    index: String,
    svc: Service,
    session: Session,
) -> Result<Response, Rejection> {
    let (id, index) = (message_id(&id)?, attachment_index(&index)?);
    let a = svc.attachment(&session.user, id, index).await?;
    Ok(attachment_reply(a))
}

/// Parses an attachment index from the path; anything else is simply not found.
fn attachment_index(raw: &str) -> Result<usize, Rejection> {
    raw.parse()
        .map_err(|_| Rejection::from(Error::NotFound("attachment")))
}

/// An attachment as a download: its own content type (text converted to UTF-8 says so), its
/// file name, and headers that stop a browser from running it on this origin.
fn attachment_reply(a: mime::Attachment) -> Response {
    let mut content_type = a.info.content_type.clone();
    if a.utf8 {
        content_type.push_str("; charset=utf-8");
    }
    let mut res = Response::new(a.data.into());
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        content_disposition(a.info.filename.as_deref()),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    res
}

/// Bytes a `filename*` value may hold unencoded: `attr-char` of RFC 5987.
const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename="..."; filename*=UTF-8''...` (RFC 6266): the name without any path,
/// an ASCII fallback with `_` for what cannot be quoted, and the exact name percent-encoded.
fn content_disposition(filename: Option<&str>) -> HeaderValue {
    let name = filename
        .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).trim())
        .filter(|n| !n.is_empty());
    let Some(name) = name else {
        return HeaderValue::from_static("attachment");
    };
    let name: String = name.chars().take(200).collect();
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' ' => ' ',
            '"' | '\\' => '_',
            c if c.is_ascii_graphic() => c,
            _ => '_',
        })
        .collect();
    let exact = percent_encoding::utf8_percent_encode(&name, ATTR_CHAR);
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"
    ))
    .unwrap_or(HeaderValue::from_static("attachment"))
}

/// Flag or move a message
#[utoipa::path(
    patch, path = routes::MESSAGE.template, tag = "mail",
    operation_id = "updateMessage", security(("session" = [])),
    params(CopyId),
    request_body = PatchMessageRequest,
    responses(
        (status = 200, description = "The changed copy.", body = SummaryDto),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, description = "`invalid_body` or `unknown_mailbox` (field `mailbox`).",
            body = Envelope),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn patch_message(
    id: String,
    svc: Service,
    session: Session,
    req: PatchMessageRequest,
) -> Result<Response, Rejection> {
    let id = message_id(&id)?;
    let view = svc.update_message(&session.user, id, req.into()).await?;
    Ok(json(&SummaryDto::from(&view)).into_response())
}

/// Delete a message
///
/// Moves the copy to `trash`, or deletes it for good when it is there already or with
/// `permanent=true`. Only the caller's copy goes; the message itself is removed with its last
/// copy.
#[utoipa::path(
    delete, path = routes::MESSAGE.template, tag = "mail",
    operation_id = "deleteMessage", security(("session" = [])),
    params(CopyId, Permanent),
    responses(
        (status = 204, description = "The copy is in `trash`, or gone."),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, response = InvalidQuery),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn delete_message(
    id: String,
    svc: Service,
    session: Session,
    q: HashMap<String, String>,
) -> Result<Response, Rejection> {
    let id = message_id(&id)?;
    let permanent = query_bool(&q, "permanent")?.unwrap_or(false);
    svc.delete_message(&session.user, id, permanent).await?;
    Ok(no_content())
}

/// The caller's mailboxes
#[utoipa::path(
    get, path = routes::MAILBOXES.template, tag = "mailboxes",
    operation_id = "listMailboxes", security(("session" = [])),
    responses(
        (status = 200, description = "The system mailboxes (`inbox`, `sent`, `archive`, `trash`),
            then the user's own in name order.", body = Vec<MailboxDto>),
        (status = 401, response = Unauthorized),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn list_mailboxes(svc: Service, session: Session) -> Result<Response, Rejection> {
    let list = svc.mailboxes(&session.user).await?;
    let body: Vec<MailboxDto> = list.into_iter().map(MailboxDto::from).collect();
    Ok(json(&body).into_response())
}

/// Make a mailbox
#[utoipa::path(
    post, path = routes::MAILBOXES.template, tag = "mailboxes",
    operation_id = "createMailbox", security(("session" = [])),
    request_body = CreateMailboxRequest,
    responses(
        (status = 201, description = "The new, empty mailbox.", body = MailboxDto),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 401, response = Unauthorized),
        (status = 409, description = "`mailbox_exists`: the user has a mailbox of this name in
            some letter case, or it is a system mailbox's.", body = Envelope),
        (status = 422, description = "`invalid_body` or `invalid_mailbox_name` (field `name`).",
            body = Envelope),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn create_mailbox(
    svc: Service,
    session: Session,
    req: CreateMailboxRequest,
) -> Result<Response, Rejection> {
    let info = svc.create_mailbox(&session.user, &req.name).await?;
    Ok(created(&MailboxDto::from(info)))
}

/// Delete a mailbox
///
/// Only one of the user's own mailboxes, and only when it is empty.
#[utoipa::path(
    delete, path = routes::MAILBOX.template, tag = "mailboxes",
    operation_id = "deleteMailbox", security(("session" = [])),
    params(CustomMailboxName),
    responses(
        (status = 204, description = "The mailbox is gone."),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, description = "`mailbox_not_empty`: the mailbox still holds messages.",
            body = Envelope),
        (status = 422, description = "`system_mailbox`: `inbox`, `sent`, `archive` and `trash`
            cannot be deleted (field `name`).", body = Envelope),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn delete_mailbox(
    name: String,
    svc: Service,
    session: Session,
) -> Result<Response, Rejection> {
    let name = segment(&name)?;
    svc.delete_mailbox(&session.user, &name).await?;
    Ok(no_content())
}

/// A page of a mailbox
///
/// Newest first, by when each copy arrived (moving a copy keeps its place). Keep the same
/// filters while paging. With `q`, a listing examines at most 5,000 copies per request, so a
/// rare match may answer a page with fewer than `limit` messages, even none, and a
/// `next_cursor` to go on from.
#[utoipa::path(
    get, path = routes::MAILBOX_MESSAGES.template, tag = "mailboxes",
    operation_id = "listMessages", security(("session" = [])),
    params(MailboxName, Paging, Flags, Search),
    responses(
        (status = 200, description = "A page.", body = PageDto),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, description = "`invalid_limit`, `invalid_cursor`, `invalid_query`
            (`unread` or `starred` not a boolean) or `invalid_search` (`q` malformed).",
            body = Envelope),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn list_messages(
    name: String,
    svc: Service,
    session: Session,
    q: HashMap<String, String>,
) -> Result<Response, Rejection> {
    let name = segment(&name)?;
    let limit = match q.get("limit") {
        Some(l) => Some(l.parse::<usize>().map_err(|_| {
            Error::invalid(
                "invalid_limit",
                "limit",
                "limit must be a whole number between 1 and 500",
            )
        })?),
        None => None,
    };
    let query = ListQuery {
        limit,
        cursor: q.get("cursor").cloned(),
        unread: query_bool(&q, "unread")?,
        starred: query_bool(&q, "starred")?,
        q: q.get("q").cloned(),
    };
    let page = svc.list(&session.user, &name, &query).await?;
    Ok(json(&PageDto::from(page)).into_response())
}

/// Empty a mailbox
///
/// Moves everything in the mailbox to `trash`, or, for `trash`, deletes it for good.
#[utoipa::path(
    delete, path = routes::MAILBOX_MESSAGES.template, tag = "mailboxes",
    operation_id = "emptyMailbox", security(("session" = [])),
    params(MailboxName),
    responses(
        (status = 204, description = "The mailbox is empty."),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn empty_mailbox(
    name: String,
    svc: Service,
    session: Session,
) -> Result<Response, Rejection> {
    let name = segment(&name)?;
    svc.empty_mailbox(&session.user, &name).await?;
    Ok(no_content())
}

/// Delete old messages
///
/// Deletes every message received at least `older_than` ago, with all its copies, as
/// `fakemail purge` does.
#[utoipa::path(
    post, path = routes::ADMIN_PURGE.template, tag = "retention",
    operation_id = "purge", security(("admin" = [])),
    request_body = PurgeRequest,
    responses(
        (status = 200, description = "What was deleted (with `dry_run`, what would be).",
            body = PurgeResponse),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 401, response = AdminUnauthorized),
        (status = 422, description = "`invalid_body` or `invalid_duration` (field `older_than`).",
            body = Envelope),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn admin_purge(svc: Service, req: PurgeRequest) -> Result<Response, Rejection> {
    let age = crate::time::parse_age(&req.older_than)
        .map_err(|e| Error::invalid("invalid_duration", "older_than", e))?;
    let removed = svc.purge(age, req.dry_run).await?;
    Ok(json(&PurgeResponse {
        deleted: removed.messages,
        bytes: removed.bytes,
        dry_run: req.dry_run,
    })
    .into_response())
}

/// A boolean query parameter: `true`/`false` (also `1`/`0`); anything else is a 422.
fn query_bool(q: &HashMap<String, String>, name: &'static str) -> Result<Option<bool>, Rejection> {
    match q.get(name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(None),
        Some(v) if v == "true" || v == "1" => Ok(Some(true)),
        Some(v) if v == "false" || v == "0" => Ok(Some(false)),
        Some(_) => Err(Error::invalid(
            "invalid_query",
            name,
            format!("`{name}` must be true or false"),
        )
        .into()),
    }
}

// ----- the operator view (admin token) ---------------------------------------------------------

/// Refuses query parameters other than `allowed`: a misspelt filter is an error, not a filter
/// silently ignored.
fn only_params(q: &HashMap<String, String>, allowed: &[&str]) -> Result<(), Rejection> {
    match q.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(Error::invalid(
            "invalid_query",
            k.clone(),
            format!(
                "`{k}` is not a parameter of this endpoint; it takes {}",
                allowed.join(", ")
            ),
        )
        .into()),
    }
}

/// The `limit` parameter, a whole number (its range is the service's to check).
fn query_limit(q: &HashMap<String, String>) -> Result<Option<usize>, Rejection> {
    q.get("limit")
        .map(|l| {
            l.parse::<usize>().map_err(|_| {
                Rejection::from(Error::invalid(
                    "invalid_limit",
                    "limit",
                    "limit must be a whole number between 1 and 500",
                ))
            })
        })
        .transpose()
}

/// The `to`, `from` and `subject` filters, and the `q` search.
fn message_filter(q: &HashMap<String, String>) -> Result<MessageFilter, Rejection> {
    let get = |k: &str| q.get(k).map(String::as_str);
    let search = SearchQuery::parse(get("q").unwrap_or_default(), "q")?;
    Ok(MessageFilter::new(get("to"), get("from"), get("subject"), None).with_search(search))
}

/// Every message
///
/// Newest first, one entry per message whoever holds copies of it. Filters combine with AND;
/// an empty value is no filter. A request examines at most 5,000 messages, so a filter that
/// matches rarely may answer fewer than `limit` messages, even none, and a `next_cursor` to go
/// on from.
#[utoipa::path(
    get, path = routes::ADMIN_MESSAGES.template, tag = "operator",
    operation_id = "adminListMessages", security(("admin" = [])),
    params(Filters, Search, Paging),
    responses(
        (status = 200, description = "A page.", body = AdminPageDto, links(
            ("GetFirst" = (operation_id = "adminGetMessage",
                parameters(("id" = "$response.body#/messages/0/id")))),
            ("GetFirstRaw" = (operation_id = "adminGetMessageRaw",
                parameters(("id" = "$response.body#/messages/0/id")))),
            ("GetFirstAttachment" = (operation_id = "adminGetMessageAttachment",
                parameters(("id" = "$response.body#/messages/0/id"), ("index" = 0)))),
            ("DeleteFirst" = (operation_id = "adminDeleteMessage",
                parameters(("id" = "$response.body#/messages/0/id")))),
        )),
        (status = 401, response = AdminUnauthorized),
        (status = 422, description = "`invalid_limit`, `invalid_cursor`, `invalid_search` (`q`
            malformed), or `invalid_query` for a parameter the endpoint does not take (field
            names it).", body = Envelope),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn admin_list(svc: Service, q: HashMap<String, String>) -> Result<Response, Rejection> {
    only_params(&q, &["to", "from", "subject", "q", "limit", "cursor"])?;
    let query = AdminQuery {
        filter: message_filter(&q)?,
        limit: query_limit(&q)?,
        cursor: q.get("cursor").cloned(),
    };
    let page = svc.admin_list(&query).await?;
    Ok(json(&AdminPageDto::from(page)).into_response())
}

/// Delete every message
///
/// Every message stored when the request begins is deleted, with all its copies; accounts and
/// their mailboxes stay.
#[utoipa::path(
    delete, path = routes::ADMIN_MESSAGES.template, tag = "operator",
    operation_id = "adminDeleteAllMessages", security(("admin" = [])),
    responses(
        (status = 204, description = "The messages are gone."),
        (status = 401, response = AdminUnauthorized),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn admin_delete_all(svc: Service) -> Result<Response, Rejection> {
    svc.admin_delete_all().await?;
    Ok(no_content())
}

/// A whole message
#[utoipa::path(
    get, path = routes::ADMIN_MESSAGE.template, tag = "operator",
    operation_id = "adminGetMessage", security(("admin" = [])),
    params(MessageId),
    responses(
        (status = 200, description = "The message.", body = AdminMessageDto),
        (status = 401, response = AdminUnauthorized),
        (status = 404, response = NotFound),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn admin_message(id: String, svc: Service) -> Result<Response, Rejection> {
    let id = message_id(&id)?;
    let m = svc.admin_message(id).await?;
    Ok(json(&AdminMessageDto::from(m)).into_response())
}

/// Delete a message
///
/// The message is deleted with all its copies, in every mailbox.
#[utoipa::path(
    delete, path = routes::ADMIN_MESSAGE.template, tag = "operator",
    operation_id = "adminDeleteMessage", security(("admin" = [])),
    params(MessageId),
    responses(
        (status = 204, description = "The message is gone."),
        (status = 401, response = AdminUnauthorized),
        (status = 404, response = NotFound),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn admin_delete(id: String, svc: Service) -> Result<Response, Rejection> {
    let id = message_id(&id)?;
    svc.admin_delete(id).await?;
    Ok(no_content())
}

/// Set a message's tags
///
/// Replaces the tags of a message (shared by all its copies); an empty list removes them.
/// Tags differing only in letter case are one tag: a tag already in use keeps its spelling.
#[utoipa::path(
    put, path = routes::ADMIN_MESSAGE_TAGS.template, tag = "operator",
    operation_id = "adminSetMessageTags", security(("admin" = [])),
    params(MessageId),
    request_body = TagsRequest,
    responses(
        (status = 200, description = "The message's tags as stored.", body = TagsDto),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 401, response = AdminUnauthorized),
        (status = 404, response = NotFound),
        (status = 422, description = "`invalid_body`, or `invalid_tag` (field `tags[N]` or
            `tags`).", body = Envelope),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn admin_set_tags(
    id: String,
    svc: Service,
    req: TagsRequest,
) -> Result<Response, Rejection> {
    let id = message_id(&id)?;
    let tags = svc.set_tags(id, &req.tags).await?;
    Ok(json(&TagsDto { tags }).into_response())
}

/// Every tag
///
/// The tags in use, with how many messages carry each.
#[utoipa::path(
    get, path = routes::ADMIN_TAGS.template, tag = "operator",
    operation_id = "adminListTags", security(("admin" = [])),
    responses(
        (status = 200, description = "The tags.", body = TagListDto),
        (status = 401, response = AdminUnauthorized),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn admin_tags(svc: Service) -> Result<Response, Rejection> {
    let tags = svc
        .tags()
        .await?
        .into_iter()
        .map(|t| TagDto {
            name: t.name,
            messages: t.messages,
        })
        .collect();
    Ok(json(&TagListDto { tags }).into_response())
}

/// A message's source
#[utoipa::path(
    get, path = routes::ADMIN_MESSAGE_RAW.template, tag = "operator",
    operation_id = "adminGetMessageRaw", security(("admin" = [])),
    params(MessageId),
    responses(
        (status = 200, response = Raw),
        (status = 401, response = AdminUnauthorized),
        (status = 404, response = NotFound),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn admin_raw(id: String, svc: Service) -> Result<Response, Rejection> {
    let id = message_id(&id)?;
    let raw = svc.admin_raw(id).await?;
    Ok(warp::reply::with_header(raw, "content-type", "message/rfc822").into_response())
}

/// A message's HTML, for a sandboxed frame
///
/// As `GET /api/v1/messages/{id}/html`, for any message.
#[utoipa::path(
    get, path = routes::ADMIN_MESSAGE_HTML.template, tag = "operator",
    operation_id = "adminGetMessageHtml", security(("admin" = [])),
    params(MessageId, Remote),
    responses(
        (status = 200, response = Html),
        (status = 401, response = AdminUnauthorized),
        (status = 404, response = NoHtml),
        (status = 422, response = InvalidQuery),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn admin_message_html(
    id: String,
    svc: Service,
    q: HashMap<String, String>,
) -> Result<Response, Rejection> {
    let id = message_id(&id)?;
    let remote = query_bool(&q, "remote")?.unwrap_or(false);
    let html = svc.admin_message_html(id).await?;
    Ok(html_reply(html, remote))
}

/// Open an operator session for a browser
///
/// Exchanges the admin token for a cookie, `fakemail_admin` (`HttpOnly`, `SameSite=Strict`,
/// `Path=/api/v1/admin`), holding a random session id, not the token, so that a browser need
/// not keep the token. Every admin endpoint then takes the cookie when a request has no
/// `Authorization` header, under the CSRF rules of the `admin_cookie` security scheme. Needs
/// the token itself (a session cannot renew itself) and `X-Requested-With: fakemail`. Sessions
/// live in the server's memory: they end at a restart, after 12 hours (or `--session-ttl`,
/// when shorter), or when more than 1,000 are open, the oldest first.
#[utoipa::path(
    post, path = routes::ADMIN_SESSION.template, tag = "operator",
    operation_id = "adminOpenSession", security(("admin" = [])),
    params(RequestedWith),
    responses(
        (status = 204, description = "The session is open; its id is in the cookie.",
            headers(("Set-Cookie" = String, description = "`fakemail_admin=<id>; \
            Path=/api/v1/admin; Max-Age=<seconds>; HttpOnly; SameSite=Strict`."))),
        (status = 401, response = AdminUnauthorized),
        (status = 403, response = Csrf),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn open_admin_session(svc: Service) -> Result<Response, Rejection> {
    let grant = svc.open_admin_session();
    let cookie = browser::set_cookie(
        browser::ADMIN_COOKIE,
        &grant.id,
        browser::ADMIN_COOKIE_PATH,
        grant.ttl.as_secs(),
    );
    Ok(with_cookie(no_content(), cookie))
}

/// End an operator session
///
/// Forgets the session of the request's `fakemail_admin` cookie, if it has one, and deletes the
/// cookie.
#[utoipa::path(
    delete, path = routes::ADMIN_SESSION.template, tag = "operator",
    operation_id = "adminCloseSession", security(("admin" = [])),
    responses(
        (status = 204, description = "The session has ended.", headers(("Set-Cookie" = String,
            description = "`fakemail_admin=; Path=/api/v1/admin; Max-Age=0; HttpOnly; \
            SameSite=Strict`: deletes the cookie."))),
        (status = 401, response = AdminUnauthorized),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn close_admin_session(
    svc: Service,
    cookie: Option<String>,
) -> Result<Response, Rejection> {
    if let Some(id) = cookie {
        svc.close_admin_session(&id);
    }
    let clear = browser::clear_cookie(browser::ADMIN_COOKIE, browser::ADMIN_COOKIE_PATH);
    Ok(with_cookie(no_content(), clear))
}

/// An attachment's content
#[utoipa::path(
    get, path = routes::ADMIN_MESSAGE_ATTACHMENT.template, tag = "operator",
    operation_id = "adminGetMessageAttachment", security(("admin" = [])),
    params(MessageId, AttachmentIndex),
    responses(
        (status = 200, response = Attachment),
        (status = 401, response = AdminUnauthorized),
        (status = 404, response = NotFound),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn admin_attachment(
    id: String,
    index: String,
    svc: Service,
) -> Result<Response, Rejection> {
    let (id, index) = (message_id(&id)?, attachment_index(&index)?);
    let a = svc.admin_attachment(id, index).await?;
    Ok(attachment_reply(a))
}

/// Counters
#[utoipa::path(
    get, path = routes::ADMIN_STATS.template, tag = "operator",
    operation_id = "adminStats", security(("admin" = [])),
    responses(
        (status = 200, description = "The counters.", body = StatsDto),
        (status = 401, response = AdminUnauthorized),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn admin_stats(svc: Service) -> Result<Response, Rejection> {
    let stats = svc.stats_snapshot().await?;
    Ok(json(&StatsDto::from(stats)).into_response())
}

// ----- wait-for-message -------------------------------------------------------------------------

/// The parameters of the waits.
const WAIT_PARAMS: [&str; 6] = ["to", "from", "subject", "q", "after", "timeout"];

fn wait_query(q: &HashMap<String, String>) -> Result<watch::WaitQuery, Rejection> {
    only_params(q, &WAIT_PARAMS)?;
    let get = |k: &str| q.get(k).map(String::as_str);
    Ok(watch::wait_query(
        message_filter(q)?,
        get("after"),
        get("timeout"),
    )?)
}

fn waited_reply(w: Waited) -> Response {
    let cursor = w.cursor;
    match w.found {
        Found::Operator(m) => json(&WaitedAdminMessageDto {
            message: AdminMessageDto::from(m),
            cursor,
        }),
        Found::User(m) => json(&WaitedMessageDto {
            message: MessageDto::from(m),
            cursor,
        }),
    }
    .into_response()
}

/// Wait for any message
///
/// Answers with the first message that matches the filters and was stored after `after`: at
/// once when one already is, else as soon as one arrives; 408 `timeout` when none has within
/// `timeout`.
#[utoipa::path(
    get, path = routes::ADMIN_WAIT.template, tag = "waiting",
    operation_id = "adminWait", security(("admin" = [])),
    params(Filters, Search, Wait),
    responses(
        (status = 200, description = "The message, with the cursor to pass as `after` to wait for
            the next one.", body = WaitedAdminMessageDto),
        (status = 401, response = AdminUnauthorized),
        (status = 408, response = Timeout),
        (status = 422, response = InvalidWait),
        (status = 503, response = ShuttingDown),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn admin_wait(svc: Service, q: HashMap<String, String>) -> Result<Response, Rejection> {
    let query = wait_query(&q)?;
    Ok(waited_reply(svc.wait(Audience::Operator, query).await?))
}

/// Wait for a message in a mailbox
///
/// Answers with the first of the caller's copies in this mailbox that matches the filters and
/// was stored after `after`: at once when one already is, else as soon as one arrives; 408
/// `timeout` when none has within `timeout`. Never sees anybody else's mail.
#[utoipa::path(
    get, path = routes::MAILBOX_WAIT.template, tag = "waiting",
    operation_id = "waitInMailbox", security(("session" = [])),
    params(MailboxName, Filters, Search, Wait),
    responses(
        (status = 200, description = "The message, with the cursor to pass as `after` to wait for
            the next one.", body = WaitedMessageDto),
        (status = 401, description = "`missing_token` or `invalid_token`; also when the session
            ended while the request waited.", body = Envelope),
        (status = 404, response = NotFound),
        (status = 408, response = Timeout),
        (status = 422, response = InvalidWait),
        (status = 503, response = ShuttingDown),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn mailbox_wait(
    name: String,
    svc: Service,
    session: Session,
    q: HashMap<String, String>,
) -> Result<Response, Rejection> {
    let name = segment(&name)?;
    let query = wait_query(&q)?;
    let audience = svc.audience(session, Some(&name)).await?;
    Ok(waited_reply(svc.wait(audience, query).await?))
}

// ----- event streams ----------------------------------------------------------------------------

/// How often an idle event stream sends a comment: keeps proxies from closing it, and lets the
/// server notice a client that went away.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// A stream as Server-Sent Events: a first comment (so the client knows it is listening),
/// then `message.received` and `message.deleted` events with summary JSON.
fn sse_reply(stream: EventStream) -> Response {
    use futures_util::StreamExt;
    let first = futures_util::stream::once(async {
        Ok::<_, std::convert::Infallible>(warp::sse::Event::default().comment("listening"))
    });
    let events = futures_util::stream::unfold(stream, |mut s| async move {
        let notice = s.next().await?;
        Some((Ok(sse_event(notice)), s))
    });
    let body = warp::sse::keep_alive()
        .interval(KEEP_ALIVE)
        .stream(first.chain(events));
    warp::sse::reply(body).into_response()
}

fn sse_event(n: Notice) -> warp::sse::Event {
    let name = match n.kind {
        EventKind::Received => "message.received",
        EventKind::Deleted => "message.deleted",
    };
    let mut e = warp::sse::Event::default().event(name);
    if let Some(c) = n.cursor {
        e = e.id(c);
    }
    let data = match n.item {
        NoticeItem::Operator(m) => e.json_data(AdminSummaryDto::from(&m)),
        NoticeItem::User(v) => e.json_data(SummaryDto::from(&v)),
    };
    // Our summaries always serialise; should one not, say so rather than fail the stream.
    data.unwrap_or_else(|_| warp::sse::Event::default().comment("an event could not be encoded"))
}

/// Every message's events
///
/// `message.received` and `message.deleted` of every message, with the message's
/// `AdminSummary` as data. A deletion is announced when the operator deletes a message, its
/// owner deletes its last copy, or retention, `--max-messages` or a purge through the server
/// removes it.
#[utoipa::path(
    get, path = routes::ADMIN_EVENTS.template, tag = "events",
    operation_id = "adminEvents", security(("admin" = [])),
    params(LastEventId),
    responses(
        (status = 200, response = Events),
        (status = 401, response = AdminUnauthorized),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn admin_events(
    svc: Service,
    last_event_id: Option<String>,
) -> Result<Response, Rejection> {
    let stream = svc
        .event_stream(Audience::Operator, last_event_id.as_deref())
        .await?;
    Ok(sse_reply(stream))
}

/// The caller's events
///
/// `message.received` and `message.deleted` of the caller's own copies, with the copy's
/// `Summary` as data. A copy deleted for good is announced; one moved to `trash` is not. The
/// stream ends when the server shuts down or the session ends.
#[utoipa::path(
    get, path = routes::EVENTS.template, tag = "events",
    operation_id = "userEvents", security(("session" = [])),
    params(LastEventId),
    responses(
        (status = 200, response = Events),
        (status = 401, response = Unauthorized),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn user_events(
    svc: Service,
    session: Session,
    last_event_id: Option<String>,
) -> Result<Response, Rejection> {
    let audience = svc.audience(session, None).await?;
    let stream = svc.event_stream(audience, last_event_id.as_deref()).await?;
    Ok(sse_reply(stream))
}
fn chaos_view(svc: &Service, rules: &[Arc<Rule>]) -> ChaosView {
    let stats = svc.chaos().stats();
    ChaosView {
        enabled: stats.enabled,
        faults: stats.faults,
        rules: rules.iter().map(|r| r.to_json()).collect(),
    }
}

/// Validates rules from the API; errors name the rule's index (`rules[2].code`).
fn specs(rules: Vec<RuleJson>) -> Result<Vec<RuleSpec>, Error> {
    rules
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.into_spec().map_err(|e| match e {
                Error::Invalid {
                    code,
                    field,
                    message,
                } => Error::Invalid {
                    code,
                    field: Some(format!("rules[{i}].{}", field.unwrap_or_default())),
                    message,
                },
                other => other,
            })
        })
        .collect()
}

/// The fault-injection rules
#[utoipa::path(
    get, path = routes::ADMIN_CHAOS.template, tag = "chaos",
    operation_id = "chaosGet", security(("admin" = [])),
    responses(
        (status = 200, description = "The rules in the order they are tried.", body = ChaosView),
        (status = 401, response = AdminUnauthorized),
        (status = 403, response = ChaosDisabled),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn chaos_get(svc: Service) -> Result<Response, Rejection> {
    let rules = svc.chaos().rules()?;
    Ok(json(&chaos_view(&svc, &rules)).into_response())
}

/// Replace every rule
///
/// Counters and `next` start afresh.
#[utoipa::path(
    put, path = routes::ADMIN_CHAOS.template, tag = "chaos",
    operation_id = "chaosReplace", security(("admin" = [])),
    request_body = ChaosPut,
    responses(
        (status = 200, description = "The new rules, as `GET` shows them.", body = ChaosView),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 401, response = AdminUnauthorized),
        (status = 403, response = ChaosDisabled),
        (status = 422, description = "`invalid_body`, or `invalid_rule` with field
            `rules[N].<field>`.", body = Envelope),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn chaos_put(svc: Service, req: ChaosPut) -> Result<Response, Rejection> {
    svc.chaos().rules()?;
    let rules = svc.chaos().replace(specs(req.rules)?)?;
    Ok(json(&chaos_view(&svc, &rules)).into_response())
}

/// Remove every rule
#[utoipa::path(
    delete, path = routes::ADMIN_CHAOS.template, tag = "chaos",
    operation_id = "chaosClear", security(("admin" = [])),
    responses(
        (status = 204, description = "No rules."),
        (status = 401, response = AdminUnauthorized),
        (status = 403, response = ChaosDisabled),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn chaos_clear(svc: Service) -> Result<Response, Rejection> {
    svc.chaos().clear()?;
    Ok(no_content())
}

/// Add a rule
///
/// The rule is tried after the others.
#[utoipa::path(
    post, path = routes::ADMIN_CHAOS_RULES.template, tag = "chaos",
    operation_id = "chaosAddRule", security(("admin" = [])),
    request_body = ChaosRuleRequest,
    responses(
        (status = 201, description = "The rule, with its `id`.", body = ChaosRule),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 401, response = AdminUnauthorized),
        (status = 403, response = ChaosDisabled),
        (status = 422, description = "`invalid_body`, or `invalid_rule` with the field at fault
            (`stage`, `code`, `probability`, ...).", body = Envelope),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn chaos_add(svc: Service, req: RuleJson) -> Result<Response, Rejection> {
    svc.chaos().rules()?;
    let rule = svc.chaos().add(req.into_spec()?)?;
    Ok(created(&rule.to_json()))
}

/// Remove a rule
#[utoipa::path(
    delete, path = routes::ADMIN_CHAOS_RULE.template, tag = "chaos",
    operation_id = "chaosRemoveRule", security(("admin" = [])),
    params(RuleId),
    responses(
        (status = 204, description = "The rule is gone."),
        (status = 401, response = AdminUnauthorized),
        (status = 403, response = ChaosDisabled),
        (status = 404, response = NotFound),
        (status = "default", response = ErrorResponse),
    )
)]
pub async fn chaos_remove(id: String, svc: Service) -> Result<Response, Rejection> {
    let id: u64 = id.parse().map_err(|_| Error::NotFound("chaos rule"))?;
    svc.chaos().remove(id)?;
    Ok(no_content())
}
