//! The Mailpit API (v1), with Mailpit's JSON shapes (`internal/storage` `Message`,
//! `MessageSummary`, `MessagesSummary`): an adapter over the service's operator calls.
//!
//! Mapping notes:
//! - `ID` is fakemail's message id; `latest` names the newest message.
//! - Read state is the operator's own read flag, kept by the service with the message (each
//!   copy in a user's mailbox has its own flag besides): `GET /message/{ID}` marks it read,
//!   `PUT /messages` sets it, and it lasts across restarts.
//! - A `PartID` is the attachment's index among the message's attachments (as in the native
//!   API); `/part/{PartID}/thumb` serves the image itself, not a thumbnail.
//! - `/search` takes `query` in the service's search grammar (Mailpit's) and `tz` as Mailpit
//!   does (a zone name; also a UTC offset). `is:read` there is this API's read flag.
//! - Tags are the service's: from `X-Tags` at delivery, set, renamed and deleted here.
//! - HTML check, link check, SpamAssassin check and release answer 501 `not_supported`:
//!   fakemail has no such checks and never sends mail out.
//! - Chaos (`/api/v1/chaos`) is fakemail's fault injection (`--chaos`; without it, 403
//!   `chaos_disabled`): the Sender, Recipient and Authentication triggers become rules that
//!   reply with their error code to MAIL, RCPT and AUTH, which `GET /api/v1/admin/chaos` shows.
//! - The websocket `/api/events` sends Mailpit's `{"Type","Data"}` events: `new` (a
//!   `MessageSummary`) and `delete` (`{ID}`) for every message stored and deleted, whatever the
//!   front-end; `truncate` when this API deletes every message; `update` (`{ID, Read}` or
//!   `{ID, Tags}`) when this API changes a read flag or tags; and `stats` (`{Total, Unread,
//!   Version}`) at most four times a second after any of them. A plain `GET` (no upgrade) is
//!   `400`.
//! - OK answers without data are the plain text `ok`, as Mailpit writes them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast;
use warp::ws::{Message as WsMessage, WebSocket};

use serde::{Deserialize, Serialize};
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::{Api, Request, domain_error, error, json, method_not_allowed, not_found};
use crate::error::Error;
use crate::service::Service;
use crate::service::chaos::{Action, RuleSpec, Stage, Trigger};
use crate::service::compose;
use crate::service::events::EventKind;
use crate::service::filter::{MessageFilter, OperatorRead};
use crate::service::mail::{Envelope, Submission};
use crate::service::message::{Address, Message};
use crate::service::search::{Search, Zone};
use crate::service::stream::NoticeItem;
use crate::service::watch::Audience;

/// Mailpit's default page size.
const DEFAULT_LIMIT: usize = 50;
/// The largest page this API returns.
const MAX_LIMIT: usize = 5_000;

/// The Mailpit API's state: its chaos triggers with the ids of the rules they became, and the
/// events it announces itself on its websocket (changes made through it that the service's
/// events hub does not carry). Read flags are the service's: the operator's own, persistent.
#[derive(Clone)]
pub struct Mailpit {
    chaos: Arc<Mutex<Option<ChaosState>>>,
    updates: broadcast::Sender<Arc<str>>,
}

impl Default for Mailpit {
    fn default() -> Self {
        Mailpit {
            chaos: Arc::default(),
            updates: broadcast::Sender::new(UPDATES_CAPACITY),
        }
    }
}

/// Websocket events of this API's own changes buffered per socket before the slowest lags.
const UPDATES_CAPACITY: usize = 256;
/// Quiet time after a change before the websocket sends `stats` (Mailpit's rate: 4 a second).
const STATS_DELAY: Duration = Duration::from_millis(250);
/// How often the websocket pings an idle client, so that proxies keep it open.
const PING_INTERVAL: Duration = Duration::from_secs(30);

/// One websocket event, as Mailpit encodes it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Event<T> {
    #[serde(rename = "Type")]
    kind: &'static str,
    data: T,
}

/// Encodes a websocket event.
fn event(kind: &'static str, data: impl Serialize) -> Arc<str> {
    serde_json::to_string(&Event { kind, data })
        .unwrap_or_default()
        .into()
}

/// The triggers as set, with the ids of the rules they became.
type ChaosState = (Triggers, Vec<u64>);

/// `{ID, Read}` of an `update` event.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ReadUpdate {
    #[serde(rename = "ID")]
    id: String,
    read: bool,
}

/// `{ID, Tags}` of an `update` event.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TagsUpdate {
    #[serde(rename = "ID")]
    id: String,
    tags: Vec<String>,
}

/// `{ID}` of a `delete` event.
#[derive(Serialize)]
struct IdOnly {
    #[serde(rename = "ID")]
    id: String,
}

/// The data of a `stats` event.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Stats {
    total: usize,
    unread: usize,
    version: &'static str,
}

/// Mailpit's `ChaosTrigger`: an SMTP error code (400 to 599) and a chance in percent.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ChaosTrigger {
    pub error_code: u16,
    pub probability: u8,
}

/// Mailpit's `ChaosTriggers`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Triggers {
    pub sender: ChaosTrigger,
    pub recipient: ChaosTrigger,
    pub authentication: ChaosTrigger,
}

impl Triggers {
    /// Mailpit's defaults: 451 to senders and recipients, 535 to logins, never.
    const DEFAULT: Triggers = Triggers {
        sender: ChaosTrigger {
            error_code: 451,
            probability: 0,
        },
        recipient: ChaosTrigger {
            error_code: 451,
            probability: 0,
        },
        authentication: ChaosTrigger {
            error_code: 535,
            probability: 0,
        },
    };

    /// Fills an absent error code with Mailpit's default, then checks the ranges.
    fn validated(mut self) -> Result<Triggers, String> {
        for (t, default) in [
            (&mut self.sender, 451),
            (&mut self.recipient, 451),
            (&mut self.authentication, 535),
        ] {
            if t.error_code == 0 {
                t.error_code = default;
            }
            if !(400..=599).contains(&t.error_code) {
                return Err("error code must be between 400 and 599".into());
            }
            if t.probability > 100 {
                return Err("probability must be between 0 and 100".into());
            }
        }
        Ok(self)
    }

    /// The fault-injection rules that act as the triggers do: a reply with the error code to
    /// MAIL (sender), RCPT (recipient) and AUTH (authentication), at their chance. Every rule
    /// is made, at 0% too, so that the triggers stay set until they are changed.
    pub fn rules(&self) -> Vec<RuleSpec> {
        [
            (Stage::Mail, self.sender, "sender rejected"),
            (Stage::Rcpt, self.recipient, "recipient rejected"),
            (Stage::Auth, self.authentication, "authentication rejected"),
        ]
        .into_iter()
        .map(|(stage, t, text)| RuleSpec {
            stage,
            action: Action::Reply {
                code: t.error_code,
                enhanced: None,
                text: Some(format!("Chaos: {text}")),
            },
            trigger: Trigger::Percent(f64::from(t.probability)),
            from: None,
            to: None,
            seed: None,
        })
        .collect()
    }
}

/// Go's `mail.Address`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct MailAddress {
    name: String,
    address: String,
}

impl From<&Address> for MailAddress {
    fn from(a: &Address) -> Self {
        MailAddress {
            name: a.name.clone().unwrap_or_default(),
            address: a.address.clone(),
        }
    }
}

fn addresses(list: &[Address]) -> Vec<MailAddress> {
    list.iter().map(MailAddress::from).collect()
}

/// `MessageSummary`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct MessageSummary {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "MessageID")]
    message_id: String,
    read: bool,
    from: MailAddress,
    to: Vec<MailAddress>,
    cc: Vec<MailAddress>,
    bcc: Vec<MailAddress>,
    reply_to: Vec<MailAddress>,
    subject: String,
    created: String,
    username: String,
    tags: Vec<String>,
    size: u64,
    attachments: usize,
    snippet: String,
}

/// `MessagesSummary`.
#[derive(Debug, Serialize)]
struct MessagesSummary {
    total: usize,
    unread: usize,
    count: usize,
    messages_count: usize,
    messages_unread: usize,
    start: usize,
    tags: Vec<String>,
    messages: Vec<MessageSummary>,
}

/// `Attachment`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct AttachmentJson {
    #[serde(rename = "PartID")]
    part_id: String,
    file_name: String,
    content_type: String,
    #[serde(rename = "ContentID")]
    content_id: String,
    size: u64,
    checksums: Checksums,
}

/// Mailpit's attachment checksums; fakemail does not compute them, so they are empty.
#[derive(Debug, Default, Serialize)]
struct Checksums {
    #[serde(rename = "MD5")]
    md5: String,
    #[serde(rename = "SHA1")]
    sha1: String,
    #[serde(rename = "SHA256")]
    sha256: String,
}

/// `ListUnsubscribe`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListUnsubscribe {
    header: String,
    links: Vec<String>,
    errors: String,
    header_post: String,
}

/// `Message`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct MessageJson {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "MessageID")]
    message_id: String,
    /// Always `true` (reading the message marks it read): Mailpit sent it until 1.9, and
    /// clients written then (PyPI `mailpit-api-client`) require it.
    read: bool,
    from: MailAddress,
    to: Vec<MailAddress>,
    cc: Vec<MailAddress>,
    bcc: Vec<MailAddress>,
    reply_to: Vec<MailAddress>,
    return_path: String,
    subject: String,
    list_unsubscribe: ListUnsubscribe,
    date: String,
    tags: Vec<String>,
    username: String,
    text: String,
    #[serde(rename = "HTML")]
    html: String,
    size: u64,
    inline: Vec<AttachmentJson>,
    attachments: Vec<AttachmentJson>,
}

/// `PUT /api/v1/messages`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ReadStatus {
    #[serde(rename = "IDs")]
    ids: Vec<String>,
    read: bool,
}

/// `DELETE /api/v1/messages`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Ids {
    #[serde(rename = "IDs")]
    ids: Vec<String>,
}

/// `PUT /api/v1/tags`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct SetTags {
    #[serde(rename = "IDs")]
    ids: Vec<String>,
    tags: Vec<String>,
}

/// `PUT /api/v1/tags/{Tag}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct RenameTag {
    name: String,
}

/// A name and address of `POST /api/v1/send`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct SendAddress {
    name: String,
    email: String,
}

/// An attachment of `POST /api/v1/send`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct SendAttachment {
    filename: String,
}

/// `POST /api/v1/send`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct SendRequest {
    from: SendAddress,
    to: Vec<SendAddress>,
    cc: Vec<SendAddress>,
    bcc: Vec<String>,
    reply_to: Vec<SendAddress>,
    subject: String,
    text: String,
    #[serde(rename = "HTML")]
    html: String,
    attachments: Vec<SendAttachment>,
    tags: Vec<String>,
    headers: BTreeMap<String, String>,
}

/// Mailpit's `start` and `limit`.
fn start_limit(req: &Request) -> (usize, usize) {
    let number = |k: &str| {
        req.query
            .get(k)
            .and_then(|v| v.trim().parse::<usize>().ok())
    };
    let start = number("start").unwrap_or(0);
    let limit = number("limit")
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_LIMIT)
        .min(MAX_LIMIT);
    (start, limit)
}

/// A plain-text `ok`, Mailpit's answer to a change.
fn ok() -> Response {
    let mut res = Response::new("ok".into());
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// A Mailpit 400 with words.
fn bad_request(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// 501 for what fakemail does not do.
fn not_supported(what: &str) -> Response {
    error(
        StatusCode::NOT_IMPLEMENTED,
        "not_supported",
        format!("fakemail does not support {what}"),
    )
}

/// The filter of `/api/v1/search`: `query` in the search grammar, its dates in the zone of
/// `tz` (a zone name, a UTC offset such as `+02:00`, or `UTC`).
fn search_filter(req: &Request, key: &str) -> Result<MessageFilter, Box<Response>> {
    let query = req.query.get(key).map(String::as_str).unwrap_or("");
    if query.trim().is_empty() {
        return Err(Box::new(bad_request("Error: no search query")));
    }
    let zone = match req
        .query
        .get("tz")
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
    {
        None => Zone::utc(),
        Some(tz) => Zone::parse(tz).ok_or_else(|| {
            Box::new(bad_request(format!(
                "unknown tz {tz:?}: a zone name such as Europe/Berlin, a UTC offset such as \
                 +02:00, or UTC"
            )))
        })?,
    };
    let search = Search::parse_at(query, key, &zone).map_err(|e| Box::new(domain_error(&e)))?;
    Ok(MessageFilter::default().with_search(search))
}

/// Parses the ids of a request body.
fn parse_ids(ids: &[String]) -> Result<Vec<u64>, Error> {
    ids.iter()
        .map(|i| i.trim().parse().map_err(|_| Error::NotFound("message")))
        .collect()
}

impl Mailpit {
    /// Answers one request of the Mailpit API.
    pub async fn handle(&self, svc: &Service, req: Request) -> Response {
        match self.route(svc, &req).await {
            Ok(res) => res,
            Err(e) => domain_error(&e),
        }
    }

    /// Announces an event of this API's own on its websockets (none listening is fine); an
    /// empty one asks only for fresh `stats`.
    fn announce(&self, e: Arc<str>) {
        let _ = self.updates.send(e);
    }

    /// Sets read flags and announces those that changed.
    async fn set_read(&self, svc: &Service, ids: Vec<u64>, read: bool) -> Result<(), Error> {
        for id in svc.set_operator_read(ids, read).await? {
            self.announce(event(
                "update",
                ReadUpdate {
                    id: id.to_string(),
                    read,
                },
            ));
        }
        Ok(())
    }

    /// Serves one websocket of `/api/events` until the client leaves or the server stops.
    pub async fn events(&self, svc: Service, socket: WebSocket) {
        let (mut out, mut incoming) = socket.split();
        let Ok(mut stream) = svc.event_stream(Audience::Operator, None).await else {
            return;
        };
        let mut own = self.updates.subscribe();
        let mut stats_due: Option<tokio::time::Instant> = None;
        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.reset();
        loop {
            let stats_timer = async {
                match stats_due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let text = tokio::select! {
                notice = stream.next() => {
                    let Some(notice) = notice else { break };
                    let NoticeItem::Operator(m) = notice.item else { continue };
                    match notice.kind {
                        EventKind::Received => {
                            let read = svc.operator_read(m.id).unwrap_or(false);
                            event("new", self.summary(&m, read))
                        }
                        EventKind::Deleted => event("delete", IdOnly { id: m.id.to_string() }),
                    }
                }
                update = own.recv() => match update {
                    Ok(text) if text.is_empty() => {
                        stats_due.get_or_insert_with(|| tokio::time::Instant::now() + STATS_DELAY);
                        continue;
                    }
                    Ok(text) => text,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                () = stats_timer => {
                    stats_due = None;
                    let Ok(all) = svc
                        .admin_window(&MessageFilter::default(), OperatorRead::Own, 0, 0)
                        .await
                    else {
                        continue;
                    };
                    let stats = Stats { total: all.total, unread: all.unread, version: env!("CARGO_PKG_VERSION") };
                    let text = event("stats", stats);
                    if out.send(WsMessage::text(&*text)).await.is_err() {
                        break;
                    }
                    continue;
                }
                _ = ping.tick() => {
                    if out.send(WsMessage::ping(Vec::new())).await.is_err() {
                        break;
                    }
                    continue;
                }
                msg = incoming.next() => match msg {
                    Some(Ok(m)) if !m.is_close() => continue,
                    _ => break,
                },
            };
            if out.send(WsMessage::text(&*text)).await.is_err() {
                break;
            }
            stats_due.get_or_insert_with(|| tokio::time::Instant::now() + STATS_DELAY);
        }
        let _ = out.send(WsMessage::close()).await;
    }

    /// The message id of a path segment; `latest` is the newest message.
    async fn resolve(&self, svc: &Service, raw: &str) -> Result<u64, Error> {
        if raw == "latest" {
            let window = svc
                .admin_window(&MessageFilter::default(), OperatorRead::Own, 0, 1)
                .await?;
            return window
                .messages
                .first()
                .map(|m| m.id)
                .ok_or(Error::NotFound("message"));
        }
        raw.parse().map_err(|_| Error::NotFound("message"))
    }

    fn summary(&self, m: &Message, read: bool) -> MessageSummary {
        MessageSummary {
            id: m.id.to_string(),
            message_id: m.message_id.clone().unwrap_or_default(),
            read,
            from: MailAddress::from(&m.from),
            to: addresses(&m.to),
            cc: addresses(&m.cc),
            bcc: Vec::new(),
            reply_to: addresses(&m.reply_to),
            subject: m.subject.clone(),
            created: m.received_at.to_rfc3339(),
            username: String::new(),
            tags: m.tags.clone(),
            size: m.size,
            attachments: usize::from(m.has_attachments),
            snippet: m.snippet.clone(),
        }
    }

    /// A page of summaries, with the counts Mailpit gives.
    async fn page(
        &self,
        svc: &Service,
        filter: &MessageFilter,
        start: usize,
        limit: usize,
    ) -> Result<Response, Error> {
        let window = svc
            .admin_window(filter, OperatorRead::Own, start, limit)
            .await?;
        let (total, unread) = if filter == &MessageFilter::default() {
            (window.total, window.unread)
        } else {
            let all = svc
                .admin_window(&MessageFilter::default(), OperatorRead::Own, 0, 0)
                .await?;
            (all.total, all.unread)
        };
        let mut messages = Vec::with_capacity(window.messages.len());
        for m in &window.messages {
            messages.push(self.summary(m, svc.operator_read(m.id)?));
        }
        let (matching, matching_unread) = (window.total, window.unread);
        Ok(json(
            StatusCode::OK,
            &MessagesSummary {
                total,
                unread,
                count: messages.len(),
                messages_count: matching,
                messages_unread: matching_unread,
                start,
                tags: svc.tags().await?.into_iter().map(|t| t.name).collect(),
                messages,
            },
        ))
    }

    async fn route(&self, svc: &Service, req: &Request) -> Result<Response, Error> {
        let path = req.path();
        let method = req.method.as_str();
        match (method, path.as_slice()) {
            ("GET", ["api", "v1", "messages"]) => {
                let (start, limit) = start_limit(req);
                self.page(svc, &MessageFilter::default(), start, limit)
                    .await
            }
            ("PUT", ["api", "v1", "messages"]) => {
                let body: ReadStatus = if req.body.is_empty() {
                    ReadStatus::default()
                } else {
                    match serde_json::from_slice(&req.body) {
                        Ok(b) => b,
                        Err(e) => return Ok(bad_request(e.to_string())),
                    }
                };
                let searched = req
                    .query
                    .get("search")
                    .is_some_and(|q| !q.trim().is_empty());
                if searched && !body.ids.is_empty() {
                    return Ok(bad_request(
                        "You may specify either IDs or a search query, not both",
                    ));
                }
                let ids = if body.ids.is_empty() {
                    // Mailpit's `search`: the messages it matches; else every message.
                    let filter = if searched {
                        match search_filter(req, "search") {
                            Ok(f) => f,
                            Err(res) => return Ok(*res),
                        }
                    } else {
                        MessageFilter::default()
                    };
                    if !searched {
                        svc.set_all_operator_read(body.read).await?;
                        // No event of its own: the counts changed.
                        self.announce(Arc::from(""));
                        return Ok(ok());
                    }
                    svc.admin_matching_ids(&filter, OperatorRead::Own).await?
                } else {
                    parse_ids(&body.ids)?
                };
                self.set_read(svc, ids, body.read).await?;
                Ok(ok())
            }
            ("DELETE", ["api", "v1", "messages"]) => {
                let body: Ids = if req.body.is_empty() {
                    Ids::default()
                } else {
                    match serde_json::from_slice(&req.body) {
                        Ok(b) => b,
                        Err(e) => return Ok(bad_request(e.to_string())),
                    }
                };
                if body.ids.is_empty() {
                    svc.admin_delete_all().await?;
                    self.announce(event("truncate", ()));
                } else {
                    for id in parse_ids(&body.ids)? {
                        match svc.admin_delete(id).await {
                            Ok(()) | Err(Error::NotFound(_)) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                Ok(ok())
            }
            (_, ["api", "v1", "messages"]) => Ok(method_not_allowed("GET, PUT, DELETE")),
            ("GET", ["api", "v1", "search"]) => {
                let filter = match search_filter(req, "query") {
                    Ok(f) => f,
                    Err(res) => return Ok(*res),
                };
                let (start, limit) = start_limit(req);
                self.page(svc, &filter, start, limit).await
            }
            ("DELETE", ["api", "v1", "search"]) => {
                let filter = match search_filter(req, "query") {
                    Ok(f) => f,
                    Err(res) => return Ok(*res),
                };
                for id in svc.admin_matching_ids(&filter, OperatorRead::Own).await? {
                    match svc.admin_delete(id).await {
                        Ok(()) | Err(Error::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(ok())
            }
            (_, ["api", "v1", "search"]) => Ok(method_not_allowed("GET, DELETE")),
            ("GET", ["api", "v1", "tags"]) => {
                let tags: Vec<String> = svc.tags().await?.into_iter().map(|t| t.name).collect();
                Ok(json(StatusCode::OK, &tags))
            }
            ("PUT", ["api", "v1", "tags"]) => {
                let body: SetTags = match serde_json::from_slice(&req.body) {
                    Ok(b) => b,
                    Err(e) => return Ok(bad_request(e.to_string())),
                };
                for id in parse_ids(&body.ids)? {
                    let tags = svc.set_tags(id, &body.tags).await?;
                    self.announce(event(
                        "update",
                        TagsUpdate {
                            id: id.to_string(),
                            tags,
                        },
                    ));
                }
                Ok(ok())
            }
            (_, ["api", "v1", "tags"]) => Ok(method_not_allowed("GET, PUT")),
            ("PUT", ["api", "v1", "tags", tag]) => {
                let body: RenameTag = match serde_json::from_slice(&req.body) {
                    Ok(b) => b,
                    Err(e) => return Ok(bad_request(e.to_string())),
                };
                svc.rename_tag(tag, &body.name).await?;
                Ok(ok())
            }
            ("DELETE", ["api", "v1", "tags", tag]) => {
                svc.delete_tag(tag).await?;
                Ok(ok())
            }
            (_, ["api", "v1", "tags", _]) => Ok(method_not_allowed("PUT, DELETE")),
            ("GET", ["api", "v1", "message", id]) => {
                let id = self.resolve(svc, id).await?;
                let full = svc.admin_message(id).await?;
                self.set_read(svc, vec![id], true).await?;
                Ok(json(StatusCode::OK, &message_json(&full)))
            }
            ("GET", ["api", "v1", "message", id, "headers"]) => {
                let id = self.resolve(svc, id).await?;
                let full = svc.admin_message(id).await?;
                let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for (name, value) in &full.content.headers {
                    headers
                        .entry(canonical(name))
                        .or_default()
                        .push(value.clone());
                }
                Ok(json(StatusCode::OK, &headers))
            }
            ("GET", ["api", "v1", "message", id, "raw"]) => {
                let id = self.resolve(svc, id).await?;
                let raw = svc.admin_raw(id).await?;
                let mut res = Response::new(raw.into());
                let h = res.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                if req.query.get("dl").is_some_and(|v| v == "1")
                    && let Ok(v) =
                        HeaderValue::from_str(&format!("attachment; filename=\"{id}.eml\""))
                {
                    h.insert(header::CONTENT_DISPOSITION, v);
                }
                Ok(res)
            }
            ("GET", ["api", "v1", "message", id, "part", part])
            | ("GET", ["api", "v1", "message", id, "part", part, "thumb"]) => {
                let id = self.resolve(svc, id).await?;
                let index = part.parse().map_err(|_| Error::NotFound("attachment"))?;
                let a = svc.admin_attachment(id, index).await?;
                let mut content_type = a.info.content_type.clone();
                if a.utf8 && content_type.starts_with("text/") {
                    content_type.push_str("; charset=utf-8");
                }
                let name = a
                    .info
                    .filename
                    .clone()
                    .unwrap_or_else(|| format!("part-{part}"));
                let mut res = Response::new(a.data.into());
                let h = res.headers_mut();
                if let Ok(v) = HeaderValue::from_str(&content_type) {
                    h.insert(header::CONTENT_TYPE, v);
                }
                let encoded = percent_encoding::utf8_percent_encode(
                    &name,
                    percent_encoding::NON_ALPHANUMERIC,
                );
                if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{encoded}\"")) {
                    h.insert(header::CONTENT_DISPOSITION, v);
                }
                Ok(res)
            }
            (_, ["api", "v1", "message", _, "html-check"]) => Ok(not_supported("HTML checks")),
            (_, ["api", "v1", "message", _, "link-check"]) => Ok(not_supported("link checks")),
            (_, ["api", "v1", "message", _, "sa-check"]) => {
                Ok(not_supported("SpamAssassin checks"))
            }
            (_, ["api", "v1", "message", _, "release"]) => Ok(not_supported(
                "releasing a message: it never sends mail out to another SMTP server",
            )),
            (_, ["api", "events"]) => Ok(bad_request(
                "/api/events is a websocket: connect with `Upgrade: websocket`",
            )),
            ("POST", ["api", "v1", "send"]) => self.send(svc, req).await,
            ("GET", ["api", "v1", "info"]) => self.info(svc).await,
            ("GET", ["api", "v1", "webui"]) => Ok(json(
                StatusCode::OK,
                &serde_json::json!({
                    "Label": "fakemail",
                    "MessageRelay": {
                        "Enabled": false,
                        "SMTPServer": "",
                        "ReturnPath": "",
                        "AllowedRecipients": "",
                        "BlockedRecipients": "",
                        "OverrideFrom": "",
                        "PreserveMessageIDs": false,
                        "RecipientAllowlist": "",
                    },
                    "SpamAssassin": false,
                    "ChaosEnabled": svc.chaos().enabled(),
                    "DuplicatesIgnored": false,
                    "HideDeleteAllButton": false,
                }),
            )),
            ("GET" | "PUT", ["api", "v1", "chaos"]) => self.chaos(svc, req),
            (_, ["api", "v1", "chaos"]) => Ok(method_not_allowed("GET, PUT")),
            ("GET", ["livez"]) => Ok(ok()),
            ("GET", ["readyz"]) => Ok(match svc.check_ready() {
                Ok(()) => ok(),
                Err(e) => domain_error(&e),
            }),
            ("GET", ["view", file]) => {
                if let Some(id) = file.strip_suffix(".html") {
                    let id = self.resolve(svc, id).await?;
                    let html = svc.admin_message_html(id).await?;
                    Ok(crate::api::handlers::html_reply(html, false))
                } else if let Some(id) = file.strip_suffix(".txt") {
                    let id = self.resolve(svc, id).await?;
                    let full = svc.admin_message(id).await?;
                    let mut res = Response::new(full.content.text.unwrap_or_default().into());
                    res.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    );
                    Ok(res)
                } else {
                    Ok(not_found(Api::Mailpit))
                }
            }
            _ => Ok(not_found(Api::Mailpit)),
        }
    }

    /// `GET|PUT /api/v1/chaos`: the triggers, set as fault-injection rules (`--chaos`).
    fn chaos(&self, svc: &Service, req: &Request) -> Result<Response, Error> {
        let chaos = svc.chaos();
        if !chaos.enabled() {
            return Err(Error::ChaosDisabled);
        }
        let mut state = self.chaos.lock().unwrap_or_else(|p| p.into_inner());
        // The triggers are off once their rules are gone, also when the admin API removed
        // them.
        let live: Vec<u64> = chaos.rules()?.iter().map(|r| r.id).collect();
        if state
            .as_ref()
            .is_some_and(|(_, ids)| !ids.iter().any(|id| live.contains(id)))
        {
            *state = None;
        }
        if req.method == warp::http::Method::PUT {
            let triggers = match serde_json::from_slice::<Triggers>(&req.body)
                .map_err(|e| e.to_string())
                .and_then(Triggers::validated)
            {
                Ok(t) => t,
                Err(e) => return Ok(bad_request(e)),
            };
            if let Some((_, ids)) = state.take() {
                for id in ids {
                    let _ = chaos.remove(id);
                }
            }
            let mut ids = Vec::new();
            for spec in triggers.rules() {
                match chaos.add(spec) {
                    Ok(rule) => ids.push(rule.id),
                    Err(e) => {
                        for id in ids {
                            let _ = chaos.remove(id);
                        }
                        return Err(e);
                    }
                }
            }
            *state = Some((triggers, ids));
        }
        let triggers = state.as_ref().map_or(Triggers::DEFAULT, |(t, _)| *t);
        Ok(json(StatusCode::OK, &triggers))
    }

    /// `GET /api/v1/info`.
    async fn info(&self, svc: &Service) -> Result<Response, Error> {
        let stats = svc.stats_snapshot().await?;
        let all = svc
            .admin_window(&MessageFilter::default(), OperatorRead::Own, 0, 0)
            .await?;
        let (total, unread) = (all.total, all.unread);
        Ok(json(
            StatusCode::OK,
            &serde_json::json!({
                "Version": env!("CARGO_PKG_VERSION"),
                "LatestVersion": "",
                "Database": "",
                "DatabaseSize": stats.bytes,
                "Messages": total,
                "Unread": unread,
                "Tags": {},
                "RuntimeStats": {
                    "Uptime": stats.uptime.as_secs(),
                    "Memory": 0,
                    "MessagesDeleted": 0,
                    "SMTPAccepted": stats.smtp.accepted,
                    "SMTPAcceptedSize": 0,
                    "SMTPRejected": stats.smtp.rejected,
                    "SMTPIgnored": 0,
                },
            }),
        ))
    }

    /// `POST /api/v1/send`: the message is composed and delivered as SMTP mail is.
    async fn send(&self, svc: &Service, req: &Request) -> Result<Response, Error> {
        let body: SendRequest = match serde_json::from_slice(&req.body) {
            Ok(b) => b,
            Err(e) => return Ok(bad_request(e.to_string())),
        };
        if !body.attachments.is_empty() {
            let names: Vec<&str> = body
                .attachments
                .iter()
                .map(|a| a.filename.as_str())
                .collect();
            return Ok(not_supported(&format!(
                "attachments in POST /api/v1/send ({})",
                names.join(", ")
            )));
        }
        if body.from.email.trim().is_empty() {
            return Ok(bad_request("From.Email is required"));
        }
        let mailbox = |a: &SendAddress| compose::mailbox(&a.name, a.email.trim());
        let to: Vec<String> = body.to.iter().map(mailbox).collect();
        let cc: Vec<String> = body.cc.iter().map(mailbox).collect();
        let mut envelope_to: Vec<String> = body
            .to
            .iter()
            .chain(&body.cc)
            .map(|a| a.email.trim().to_owned())
            .collect();
        envelope_to.extend(body.bcc.iter().map(|b| b.trim().to_owned()));
        envelope_to.retain(|a| !a.is_empty());
        if envelope_to.is_empty() {
            return Ok(bad_request("To, Cc or Bcc must name a recipient"));
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        for (name, value) in &body.headers {
            let bad_name =
                name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
            if bad_name || value.contains(['\r', '\n']) {
                return Ok(bad_request(format!("invalid header {name:?}")));
            }
            headers.push((name.clone(), value.clone()));
        }
        if !body.tags.is_empty() {
            headers.push(("X-Tags".to_owned(), body.tags.join(", ")));
        }
        if body.subject.contains(['\r', '\n']) {
            return Ok(bad_request("the subject holds a line break"));
        }
        let reply_to = body.reply_to.first().map(mailbox);
        let from = body.from.email.trim();
        let domain = from.rsplit_once('@').map_or("fakemail.invalid", |(_, d)| d);
        let mut rnd = [0u8; 16];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut rnd);
        let message_id = format!("{}@{domain}", crate::service::token::hex(&rnd));
        let boundary = format!("=_fakemail_{}", crate::service::token::hex(&rnd[..8]));
        let raw = compose::build(&compose::Outgoing {
            from_name: &body.from.name,
            from,
            to: &to,
            cc: &cc,
            reply_to: reply_to.as_deref(),
            subject: &body.subject,
            text: Some(body.text.as_str()).filter(|t| !t.is_empty()),
            html: Some(body.html.as_str()).filter(|t| !t.is_empty()),
            headers: &headers,
            message_id: &message_id,
            date: None,
            boundary: &boundary,
        });
        let delivered = svc
            .submit(Submission {
                raw,
                envelope: Envelope {
                    from: from.to_owned(),
                    to: envelope_to,
                },
                sender: None,
            })
            .await?;
        Ok(json(
            StatusCode::OK,
            &serde_json::json!({ "ID": delivered.message.id.to_string() }),
        ))
    }
}

/// A header name as Go's `textproto.CanonicalMIMEHeaderKey` writes it (`content-type` ->
/// `Content-Type`), as Mailpit's headers map has them.
fn canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if upper {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        upper = c == '-';
    }
    out
}

/// A message in Mailpit's shape.
fn message_json(full: &crate::service::operator::AdminMessage) -> MessageJson {
    let m = &full.message;
    let c = &full.content;
    let header = |name: &str| {
        c.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (mut inline, mut attachments) = (Vec::new(), Vec::new());
    for a in &c.attachments {
        let json = AttachmentJson {
            part_id: a.index.to_string(),
            file_name: a.filename.clone().unwrap_or_default(),
            content_type: a.content_type.clone(),
            content_id: a.content_id.clone().unwrap_or_default(),
            size: a.size,
            checksums: Checksums::default(),
        };
        if a.inline {
            inline.push(json);
        } else {
            attachments.push(json);
        }
    }
    let return_path = header("Return-Path");
    MessageJson {
        id: m.id.to_string(),
        message_id: m.message_id.clone().unwrap_or_default(),
        read: true,
        from: MailAddress::from(&m.from),
        to: addresses(&m.to),
        cc: addresses(&m.cc),
        bcc: Vec::new(),
        reply_to: addresses(&m.reply_to),
        return_path: return_path
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned(),
        subject: m.subject.clone(),
        list_unsubscribe: ListUnsubscribe {
            header: header("List-Unsubscribe"),
            header_post: header("List-Unsubscribe-Post"),
            ..ListUnsubscribe::default()
        },
        date: c.date.unwrap_or(m.received_at).to_rfc3339(),
        tags: m.tags.clone(),
        username: String::new(),
        text: c.text.clone().unwrap_or_default(),
        html: c.html.clone().unwrap_or_default(),
        size: m.size,
        inline,
        attachments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_canonical_as_go_writes_them() {
        assert_eq!(canonical("content-type"), "Content-Type");
        assert_eq!(canonical("MESSAGE-ID"), "Message-Id");
        assert_eq!(canonical("x-tags"), "X-Tags");
    }
}
