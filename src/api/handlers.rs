//! One async function per endpoint: typed inputs in, a reply or a rejection out.

use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::{Response, json, with_status};
use warp::{Rejection, Reply};

use std::collections::HashMap;
use std::sync::Arc;

use super::dto::*;
use super::exposition;
use super::metrics::HttpCounts;
use crate::error::Error;
use crate::service::chaos::{Rule, RuleJson, RuleSpec};
use crate::service::events::EventKind;
use crate::service::filter::MessageFilter;
use crate::service::mail::ListQuery;
use crate::service::mime;
use crate::service::operator::AdminQuery;
use crate::service::stream::{EventStream, Notice, NoticeItem};
use crate::service::watch::{self, Audience, Found, Waited};
use crate::service::{NewUser, Service, Session};

fn created<T: serde::Serialize>(body: &T) -> Response {
    with_status(json(body), StatusCode::CREATED).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub async fn health() -> Result<Response, Rejection> {
    Ok(json(&Health { status: "ok" }).into_response())
}

pub async fn ready(svc: Service) -> Result<Response, Rejection> {
    svc.check_ready()?;
    Ok(json(&Health { status: "ready" }).into_response())
}

pub async fn metrics(svc: Service, http: Arc<HttpCounts>) -> Result<Response, Rejection> {
    let body = super::metrics::render(&svc, &http).await?;
    Ok(
        warp::reply::with_header(body, header::CONTENT_TYPE, exposition::CONTENT_TYPE)
            .into_response(),
    )
}

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

pub async fn login(svc: Service, req: LoginRequest) -> Result<Response, Rejection> {
    let outcome = svc.login(&req.email, &req.password).await?;
    Ok(json(&LoginResponse::from(outcome)).into_response())
}

pub async fn logout(svc: Service, session: Session) -> Result<Response, Rejection> {
    svc.logout(&session).await?;
    Ok(no_content())
}

pub async fn me(session: Session) -> Result<Response, Rejection> {
    Ok(json(&UserDto::from(&session.user)).into_response())
}

pub async fn update_me(
    svc: Service,
    session: Session,
    req: UpdateProfileRequest,
) -> Result<Response, Rejection> {
    let user = svc.update_profile(&session, &req.display_name).await?;
    Ok(json(&UserDto::from(&user)).into_response())
}

pub async fn change_password(
    svc: Service,
    session: Session,
    req: ChangePasswordRequest,
) -> Result<Response, Rejection> {
    svc.change_password(&session, &req.current_password, &req.new_password)
        .await?;
    Ok(no_content())
}

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

pub async fn send(svc: Service, session: Session, req: SendRequest) -> Result<Response, Rejection> {
    let full = svc.send(&session.user, req.into()).await?;
    Ok(created(&MessageDto::from(full)))
}

pub async fn get_message(
    id: String,
    svc: Service,
    session: Session,
) -> Result<Response, Rejection> {
    let full = svc.message(&session.user, message_id(&id)?).await?;
    Ok(json(&MessageDto::from(full)).into_response())
}

pub async fn raw_message(
    id: String,
    svc: Service,
    session: Session,
) -> Result<Response, Rejection> {
    let id = message_id(&id)?;
    let raw = svc.raw(&session.user, id).await?;
    Ok(warp::reply::with_header(raw, "content-type", "message/rfc822").into_response())
}

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

pub async fn list_mailboxes(svc: Service, session: Session) -> Result<Response, Rejection> {
    let list = svc.mailboxes(&session.user).await?;
    let body: Vec<MailboxDto> = list.into_iter().map(MailboxDto::from).collect();
    Ok(json(&body).into_response())
}

pub async fn create_mailbox(
    svc: Service,
    session: Session,
    req: CreateMailboxRequest,
) -> Result<Response, Rejection> {
    let info = svc.create_mailbox(&session.user, &req.name).await?;
    Ok(created(&MailboxDto::from(info)))
}

pub async fn delete_mailbox(
    name: String,
    svc: Service,
    session: Session,
) -> Result<Response, Rejection> {
    let name = segment(&name)?;
    svc.delete_mailbox(&session.user, &name).await?;
    Ok(no_content())
}

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
    };
    let page = svc.list(&session.user, &name, &query).await?;
    Ok(json(&PageDto::from(page)).into_response())
}

pub async fn empty_mailbox(
    name: String,
    svc: Service,
    session: Session,
) -> Result<Response, Rejection> {
    let name = segment(&name)?;
    svc.empty_mailbox(&session.user, &name).await?;
    Ok(no_content())
}

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

/// The `to`, `from`, `subject` and `q` filters.
fn message_filter(q: &HashMap<String, String>) -> MessageFilter {
    let get = |k: &str| q.get(k).map(String::as_str);
    MessageFilter::new(get("to"), get("from"), get("subject"), get("q"))
}

pub async fn admin_list(svc: Service, q: HashMap<String, String>) -> Result<Response, Rejection> {
    only_params(&q, &["to", "from", "subject", "q", "limit", "cursor"])?;
    let query = AdminQuery {
        filter: message_filter(&q),
        limit: query_limit(&q)?,
        cursor: q.get("cursor").cloned(),
    };
    let page = svc.admin_list(&query).await?;
    Ok(json(&AdminPageDto::from(page)).into_response())
}

pub async fn admin_delete_all(svc: Service) -> Result<Response, Rejection> {
    svc.admin_delete_all().await?;
    Ok(no_content())
}

pub async fn admin_message(id: String, svc: Service) -> Result<Response, Rejection> {
    let id = message_id(&id)?;
    let m = svc.admin_message(id).await?;
    Ok(json(&AdminMessageDto::from(m)).into_response())
}

pub async fn admin_delete(id: String, svc: Service) -> Result<Response, Rejection> {
    let id = message_id(&id)?;
    svc.admin_delete(id).await?;
    Ok(no_content())
}

pub async fn admin_raw(id: String, svc: Service) -> Result<Response, Rejection> {
    let id = message_id(&id)?;
    let raw = svc.admin_raw(id).await?;
    Ok(warp::reply::with_header(raw, "content-type", "message/rfc822").into_response())
}

pub async fn admin_attachment(
    id: String,
    index: String,
    svc: Service,
) -> Result<Response, Rejection> {
    let (id, index) = (message_id(&id)?, attachment_index(&index)?);
    let a = svc.admin_attachment(id, index).await?;
    Ok(attachment_reply(a))
}

pub async fn admin_stats(svc: Service) -> Result<Response, Rejection> {
    let stats = svc.stats_snapshot().await?;
    Ok(json(&StatsDto::from(stats)).into_response())
}

// ----- wait-for-message -------------------------------------------------------------------------

/// The parameters of the waits.
const WAIT_PARAMS: [&str; 5] = ["to", "from", "subject", "after", "timeout"];

fn wait_query(q: &HashMap<String, String>) -> Result<watch::WaitQuery, Rejection> {
    only_params(q, &WAIT_PARAMS)?;
    let get = |k: &str| q.get(k).map(String::as_str);
    Ok(watch::wait_query(
        message_filter(q),
        get("after"),
        get("timeout"),
    )?)
}

fn waited_reply(w: Waited) -> Response {
    let cursor = w.cursor;
    match w.found {
        Found::Operator(m) => json(&WaitedDto {
            message: AdminMessageDto::from(m),
            cursor,
        }),
        Found::User(m) => json(&WaitedDto {
            message: MessageDto::from(m),
            cursor,
        }),
    }
    .into_response()
}

pub async fn admin_wait(svc: Service, q: HashMap<String, String>) -> Result<Response, Rejection> {
    let query = wait_query(&q)?;
    Ok(waited_reply(svc.wait(Audience::Operator, query).await?))
}

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

pub async fn admin_events(
    svc: Service,
    last_event_id: Option<String>,
) -> Result<Response, Rejection> {
    let stream = svc
        .event_stream(Audience::Operator, last_event_id.as_deref())
        .await?;
    Ok(sse_reply(stream))
}

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

pub async fn chaos_get(svc: Service) -> Result<Response, Rejection> {
    let rules = svc.chaos().rules()?;
    Ok(json(&chaos_view(&svc, &rules)).into_response())
}

pub async fn chaos_put(svc: Service, req: ChaosPut) -> Result<Response, Rejection> {
    svc.chaos().rules()?;
    let rules = svc.chaos().replace(specs(req.rules)?)?;
    Ok(json(&chaos_view(&svc, &rules)).into_response())
}

pub async fn chaos_clear(svc: Service) -> Result<Response, Rejection> {
    svc.chaos().clear()?;
    Ok(no_content())
}

pub async fn chaos_add(svc: Service, req: RuleJson) -> Result<Response, Rejection> {
    svc.chaos().rules()?;
    let rule = svc.chaos().add(req.into_spec()?)?;
    Ok(created(&rule.to_json()))
}

pub async fn chaos_remove(id: String, svc: Service) -> Result<Response, Rejection> {
    let id: u64 = id.parse().map_err(|_| Error::NotFound("chaos rule"))?;
    svc.chaos().remove(id)?;
    Ok(no_content())
}
