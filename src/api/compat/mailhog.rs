//! The MailHog API (v1 and v2), with MailHog's JSON shapes (`mailhog/data` `Message`): an
//! adapter over the service's operator calls.
//!
//! Mapping notes:
//! - `ID` is fakemail's message id (the operator API's); `Created` is the time received.
//! - `Content.Headers` (one value per name, folded lines joined) and `MIME.Parts` (the body
//!   split at the boundary, preamble and closing `--` pieces included) are built the way
//!   MailHog builds them, so that part indices are MailHog's. MailHog's added `Received`,
//!   `Return-Path` and `Message-ID` headers are not added; `Raw.Helo` is empty (fakemail does
//!   not keep the HELO name).
//! - `GET /api/v2/search`: `from` and `to` match any part of an address or name, in any letter
//!   case (all of Unicode, where MailHog folds none); `containing` matches the subject,
//!   addresses, names and text.
//! - Jim (`/api/v2/jim`) is fakemail's fault injection (`--chaos`): his chances become rules,
//!   which `GET /api/v1/admin/chaos` shows too.
//! - Release answers 501: fakemail never sends mail out.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use warp::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use warp::reply::Response;
use warp::{Reply, sse};

use super::{Api, Request, domain_error, error, json, method_not_allowed, not_found};
use crate::error::Error;
use crate::service::Service;
use crate::service::chaos::{Action, RuleSpec, Stage, Trigger};
use crate::service::events::EventKind;
use crate::service::filter::{MessageFilter, OperatorRead};
use crate::service::message::Message;
use crate::service::search::Search;
use crate::service::stream::NoticeItem;
use crate::service::watch::Audience;

/// MailHog's default page size.
const DEFAULT_LIMIT: usize = 50;
/// MailHog's largest page.
const MAX_LIMIT: usize = 250;
/// What `GET /api/v1/messages` returns at most (MailHog lists the first 1000).
const V1_LIMIT: usize = 1000;

/// The MailHog API's state: Jim's settings while he is on.
#[derive(Clone, Default)]
pub struct MailHog {
    jim: Arc<Mutex<Option<JimState>>>,
}

/// Jim as set, with the ids of the rules he became.
struct JimState {
    jim: Jim,
    rules: Vec<u64>,
}

/// MailHog's chaos monkey: chances from 0 to 1, link speeds in bytes per second.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Jim {
    pub disconnect_chance: f64,
    pub accept_chance: f64,
    pub link_speed_affect: f64,
    pub link_speed_min: f64,
    pub link_speed_max: f64,
    pub reject_sender_chance: f64,
    pub reject_recipient_chance: f64,
    pub reject_auth_chance: f64,
}

impl Jim {
    /// MailHog's defaults (its `-jim-*` flags), taken by a `POST` without a body.
    pub const DEFAULT: Jim = Jim {
        disconnect_chance: 0.005,
        accept_chance: 0.99,
        link_speed_affect: 0.1,
        link_speed_min: 1024.0,
        link_speed_max: 10240.0,
        reject_sender_chance: 0.05,
        reject_recipient_chance: 0.05,
        reject_auth_chance: 0.05,
    };

    /// The fault-injection rules that act as Jim does: a refused connection (`AcceptChance`),
    /// a dropped connection at each command (`DisconnectChance`), a throttled DATA at the
    /// middle of the link speeds (`LinkSpeedAffect`), and 550 to MAIL and RCPT and 535 to AUTH.
    /// Every rule is made, at 0% too, so that Jim stays on until he is deleted.
    pub fn rules(&self) -> Vec<RuleSpec> {
        let percent = |chance: f64| Trigger::Percent((chance * 100.0).clamp(0.0, 100.0));
        let rule = |stage, action, chance| RuleSpec {
            stage,
            action,
            trigger: percent(chance),
            from: None,
            to: None,
            seed: None,
        };
        let reply = |code, enhanced: &str, text: &str| Action::Reply {
            code,
            enhanced: Some(enhanced.to_owned()),
            text: Some(text.to_owned()),
        };
        let speed = ((self.link_speed_min + self.link_speed_max) / 2.0).max(1.0) as u64;
        let mut rules = vec![rule(
            Stage::Connect,
            Action::Disconnect,
            1.0 - self.accept_chance,
        )];
        for stage in [Stage::Ehlo, Stage::Mail, Stage::Rcpt, Stage::Data] {
            rules.push(rule(stage, Action::Disconnect, self.disconnect_chance));
        }
        rules.extend([
            rule(Stage::Data, Action::Throttle(speed), self.link_speed_affect),
            rule(
                Stage::Mail,
                reply(550, "5.1.0", "Jim: sender rejected"),
                self.reject_sender_chance,
            ),
            rule(
                Stage::Rcpt,
                reply(550, "5.1.1", "Jim: recipient rejected"),
                self.reject_recipient_chance,
            ),
            rule(
                Stage::Auth,
                reply(535, "5.7.8", "Jim: authentication rejected"),
                self.reject_auth_chance,
            ),
        ]);
        rules
    }
}

/// `mailhog/data` `Path`: a forward- or reverse-path.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Path {
    relays: Option<Vec<String>>,
    mailbox: String,
    domain: String,
    params: String,
}

impl Path {
    /// MailHog's `PathFromString`.
    fn parse(path: &str) -> Path {
        let (relays, email) = match path.split_once(':') {
            Some((r, e)) => (Some(r.split(',').map(str::to_owned).collect()), e),
            None => (None, path),
        };
        let (mailbox, domain) = email.split_once('@').unwrap_or((email, ""));
        Path {
            relays,
            mailbox: mailbox.to_owned(),
            domain: domain.to_owned(),
            params: String::new(),
        }
    }
}

/// `mailhog/data` `Content`: a message's or a part's headers and encoded body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Content {
    headers: BTreeMap<String, Vec<String>>,
    body: String,
    size: usize,
    #[serde(rename = "MIME")]
    mime: Option<MimeBody>,
}

/// `mailhog/data` `MIMEBody`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct MimeBody {
    parts: Vec<Content>,
}

/// `mailhog/data` `SMTPMessage`: the envelope and source.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Raw {
    from: String,
    to: Vec<String>,
    data: String,
    helo: String,
}

/// `mailhog/data` `Message`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct MessageJson {
    #[serde(rename = "ID")]
    id: String,
    from: Path,
    to: Vec<Path>,
    content: Content,
    created: String,
    #[serde(rename = "MIME")]
    mime: Option<MimeBody>,
    raw: Raw,
}

/// `GET /api/v2/messages` and `/api/v2/search`.
#[derive(Debug, Serialize)]
struct MessagesResult {
    total: usize,
    count: usize,
    start: usize,
    items: Vec<MessageJson>,
}

impl Content {
    /// MailHog's `ContentFromString`: headers up to the first empty line, one value per name
    /// (the last wins), folded lines joined; the rest, as it is, the body.
    fn parse(data: &str) -> Content {
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let Some((head, body)) = data.split_once("\r\n\r\n") else {
            return Content {
                headers,
                body: data.to_owned(),
                size: data.len(),
                mime: None,
            };
        };
        let mut last: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(name) = &last
                && (line.starts_with(' ') || line.starts_with('\t'))
            {
                if let Some(v) = headers.get_mut(name).and_then(|v| v.last_mut()) {
                    v.push_str(line);
                }
            } else if let Some((name, value)) = line.split_once(": ") {
                headers.insert(name.to_owned(), vec![value.to_owned()]);
                last = Some(name.to_owned());
            }
        }
        Content {
            headers,
            body: body.to_owned(),
            size: data.len(),
            mime: None,
        }
    }

    /// Whether `Content-Type` (this spelling, as MailHog looks) is `multipart/...`.
    fn is_mime(&self) -> bool {
        self.headers
            .get("Content-Type")
            .and_then(|v| v.first())
            .is_some_and(|v| v.starts_with("multipart/"))
    }

    /// MailHog's `ParseMIMEBody`: the body split at `--boundary`, each non-empty piece
    /// (CR and LF trimmed) a part, multipart parts split again.
    fn parse_mime(&self) -> MimeBody {
        let boundary = self
            .headers
            .get("Content-Type")
            .and_then(|v| v.first())
            .and_then(|ct| boundary(ct));
        let parts = match boundary {
            Some(b) => self
                .body
                .split(&format!("--{b}"))
                .filter(|s| !s.is_empty())
                .map(|s| {
                    let mut part = Content::parse(s.trim_matches(['\r', '\n']));
                    if part.is_mime() {
                        part.mime = Some(part.parse_mime());
                    }
                    part
                })
                .collect(),
            None => Vec::new(),
        };
        MimeBody { parts }
    }
}

/// The `boundary` parameter of a content type.
fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

/// A message in MailHog's shape, from its record and source.
fn message_json(m: &Message, raw: &[u8]) -> MessageJson {
    let data = String::from_utf8_lossy(raw).into_owned();
    let content = Content::parse(&data);
    let mime = content.is_mime().then(|| content.parse_mime());
    MessageJson {
        id: m.id.to_string(),
        from: Path::parse(&m.envelope_from),
        to: m.envelope_to.iter().map(|t| Path::parse(t)).collect(),
        content,
        created: m.received_at.to_rfc3339(),
        mime,
        raw: Raw {
            from: m.envelope_from.clone(),
            to: m.envelope_to.clone(),
            data,
            helo: String::new(),
        },
    }
}

/// MailHog's `start` and `limit`: a number, else the default; `limit` at most 250.
fn start_limit(req: &Request) -> (usize, usize) {
    let number = |k: &str| {
        req.query
            .get(k)
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
    };
    let start = number("start").unwrap_or(0);
    let limit = number("limit").unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    (start, limit)
}

/// The message id of a path segment: fakemail's id, alone or before an `@` (as MailHog's ids
/// are written).
fn message_id(raw: &str) -> Result<u64, Error> {
    raw.split('@')
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or(Error::NotFound("message"))
}

impl MailHog {
    /// Answers one request of the MailHog API.
    pub async fn handle(&self, svc: &Service, req: Request) -> Response {
        match self.route(svc, &req).await {
            Ok(res) => res,
            Err(e) => domain_error(&e),
        }
    }

    async fn route(&self, svc: &Service, req: &Request) -> Result<Response, Error> {
        let m = &req.method;
        let path = req.path();
        // MailHog answers OPTIONS (CORS preflight) on every route.
        let allow = match path.as_slice() {
            ["api", "v2", "messages"] | ["api", "v2", "search"] | ["api", "v1", "events"] => {
                "GET, OPTIONS"
            }
            ["api", "v2", "jim"] => "GET, POST, PUT, DELETE, OPTIONS",
            ["api", "v1", "messages"] | ["api", "v1", "messages", _] => "GET, DELETE, OPTIONS",
            ["api", "v1", "messages", _, "download"]
            | ["api", "v1", "messages", _, "mime", "part", _, "download"] => "GET, OPTIONS",
            ["api", "v1", "messages", _, "release"] => "POST, OPTIONS",
            _ => return Ok(not_found(Api::MailHog)),
        };
        if m == Method::OPTIONS {
            let mut res = StatusCode::OK.into_response();
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            return Ok(res);
        }
        match (m.as_str(), path.as_slice()) {
            ("GET", ["api", "v2", "messages"]) => {
                let (start, limit) = start_limit(req);
                self.page(svc, &MessageFilter::default(), start, limit)
                    .await
            }
            ("GET", ["api", "v2", "search"]) => {
                let (start, limit) = start_limit(req);
                let query = req.query.get("query").map(String::as_str).unwrap_or("");
                let filter = match req.query.get("kind").map(String::as_str) {
                    _ if query.is_empty() => None,
                    // Any part of an address, as MailHog matches: the search's `from:`
                    // and `to:`, not the whole-address filters.
                    Some("from") => {
                        Some(MessageFilter::default().with_search(Search::from_literal(query)))
                    }
                    Some("to") => {
                        Some(MessageFilter::default().with_search(Search::to_literal(query)))
                    }
                    Some("containing") => Some(MessageFilter::new(None, None, None, Some(query))),
                    _ => None,
                };
                match filter {
                    Some(f) => self.page(svc, &f, start, limit).await,
                    None => Ok(error(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        "search needs `kind` (from, to or containing) and a non-empty `query`",
                    )),
                }
            }
            ("GET", ["api", "v1", "messages"]) => {
                let (items, _) = self
                    .messages(svc, &MessageFilter::default(), 0, V1_LIMIT)
                    .await?;
                Ok(json(StatusCode::OK, &items))
            }
            ("DELETE", ["api", "v1", "messages"]) => {
                svc.admin_delete_all().await?;
                Ok(StatusCode::OK.into_response())
            }
            ("GET", ["api", "v1", "messages", id]) => {
                let id = message_id(id)?;
                let message = svc.admin_message(id).await?.message;
                let raw = svc.admin_raw(id).await?;
                Ok(json(StatusCode::OK, &message_json(&message, &raw)))
            }
            ("DELETE", ["api", "v1", "messages", id]) => {
                svc.admin_delete(message_id(id)?).await?;
                Ok(StatusCode::OK.into_response())
            }
            ("GET", ["api", "v1", "messages", id, "download"]) => {
                let n = message_id(id)?;
                let raw = svc.admin_raw(n).await?;
                let mut res = Response::new(raw.into());
                let h = res.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("message/rfc822"),
                );
                if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{n}.eml\"")) {
                    h.insert(header::CONTENT_DISPOSITION, v);
                }
                Ok(res)
            }
            (
                "GET",
                [
                    "api",
                    "v1",
                    "messages",
                    id,
                    "mime",
                    "part",
                    part,
                    "download",
                ],
            ) => {
                let n = message_id(id)?;
                let message = svc.admin_message(n).await?.message;
                let raw = svc.admin_raw(n).await?;
                Ok(part_download(&message_json(&message, &raw), n, part))
            }
            ("POST", ["api", "v1", "messages", _, "release"]) => Ok(error(
                StatusCode::NOT_IMPLEMENTED,
                "not_supported",
                "fakemail never sends mail out, so it cannot release a message to another SMTP \
                 server; read it with GET /api/v1/messages/{id} instead",
            )),
            ("GET", ["api", "v1", "events"]) => self.events(svc).await,
            (_, ["api", "v2", "jim"]) => self.jim(svc, req),
            _ => Ok(method_not_allowed(allow)),
        }
    }

    /// Messages in MailHog's shape, newest first, with how many match in all. A message
    /// deleted while the page is read is left out.
    async fn messages(
        &self,
        svc: &Service,
        filter: &MessageFilter,
        start: usize,
        limit: usize,
    ) -> Result<(Vec<MessageJson>, usize), Error> {
        let window = svc
            .admin_window(filter, OperatorRead::AnyCopy, start, limit)
            .await?;
        let total = window.total;
        let mut items = Vec::with_capacity(window.messages.len());
        for m in &window.messages {
            match svc.admin_raw(m.id).await {
                Ok(raw) => items.push(message_json(m, &raw)),
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((items, total))
    }

    /// `{total, count, start, items}`.
    async fn page(
        &self,
        svc: &Service,
        filter: &MessageFilter,
        start: usize,
        limit: usize,
    ) -> Result<Response, Error> {
        let (items, total) = self.messages(svc, filter, start, limit).await?;
        Ok(json(
            StatusCode::OK,
            &MessagesResult {
                total,
                count: items.len(),
                start,
                items,
            },
        ))
    }

    /// MailHog's event stream: each new message, in MailHog's shape, as the data of an
    /// unnamed event.
    async fn events(&self, svc: &Service) -> Result<Response, Error> {
        use futures_util::StreamExt;
        let stream = svc.event_stream(Audience::Operator, None).await?;
        let svc = svc.clone();
        let events = futures_util::stream::unfold(stream, move |mut s| {
            let svc = svc.clone();
            async move {
                loop {
                    let notice = s.next().await?;
                    let (EventKind::Received, NoticeItem::Operator(m)) = (notice.kind, notice.item)
                    else {
                        continue;
                    };
                    let Ok(raw) = svc.admin_raw(m.id).await else {
                        continue;
                    };
                    // MailHog writes plain `data:` lines with no event name: browsers see
                    // a `message` event.
                    let event = sse::Event::default()
                        .json_data(message_json(&m, &raw))
                        .unwrap_or_else(|_| sse::Event::default().comment("unencodable"));
                    return Some((Ok::<_, std::convert::Infallible>(event), s));
                }
            }
        });
        let first = futures_util::stream::once(async {
            Ok::<_, std::convert::Infallible>(sse::Event::default().comment("listening"))
        });
        let body = sse::keep_alive()
            .interval(std::time::Duration::from_secs(15))
            .stream(first.chain(events));
        Ok(sse::reply(body).into_response())
    }

    /// `GET|POST|PUT|DELETE /api/v2/jim`, as MailHog answers them: 404 while Jim is off (but
    /// to POST), 400 to a POST while he is on or a PUT with a body that is not Jim.
    fn jim(&self, svc: &Service, req: &Request) -> Result<Response, Error> {
        let chaos = svc.chaos();
        if !chaos.enabled() {
            return Err(Error::ChaosDisabled);
        }
        let mut state = self.jim.lock().unwrap_or_else(|p| p.into_inner());
        // Jim is off once his rules are gone, also when the admin API removed them.
        let live: Vec<u64> = chaos.rules()?.iter().map(|r| r.id).collect();
        if state
            .as_ref()
            .is_some_and(|s| !s.rules.iter().any(|id| live.contains(id)))
        {
            *state = None;
        }
        let off = || {
            error(
                StatusCode::NOT_FOUND,
                "not_found",
                "Jim is off; POST /api/v2/jim turns him on",
            )
        };
        let bad_body = || {
            error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the body is not Jim's settings as JSON",
            )
        };
        let parse = |body: &[u8]| serde_json::from_slice::<Jim>(body);
        match req.method.as_str() {
            "GET" => Ok(match state.as_ref() {
                Some(s) => json(StatusCode::OK, &s.jim),
                None => off(),
            }),
            "POST" => {
                if state.is_some() {
                    return Ok(error(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        "Jim is already on; PUT /api/v2/jim changes his settings",
                    ));
                }
                // As MailHog: the body's settings if it has any, else the defaults.
                let jim = parse(&req.body).unwrap_or(Jim::DEFAULT);
                *state = Some(JimState {
                    jim,
                    rules: add_rules(svc, &jim)?,
                });
                Ok(StatusCode::CREATED.into_response())
            }
            "PUT" => {
                let Some(s) = state.as_mut() else {
                    return Ok(off());
                };
                let Ok(jim) = parse(&req.body) else {
                    return Ok(bad_body());
                };
                remove_rules(svc, &s.rules);
                s.rules = add_rules(svc, &jim)?;
                s.jim = jim;
                Ok(StatusCode::OK.into_response())
            }
            "DELETE" => match state.take() {
                Some(s) => {
                    remove_rules(svc, &s.rules);
                    Ok(StatusCode::OK.into_response())
                }
                None => Ok(off()),
            },
            _ => Ok(method_not_allowed("GET, POST, PUT, DELETE, OPTIONS")),
        }
    }
}

/// Adds Jim's rules; on failure (too many rules), removes those already added.
fn add_rules(svc: &Service, jim: &Jim) -> Result<Vec<u64>, Error> {
    let mut ids = Vec::new();
    for spec in jim.rules() {
        match svc.chaos().add(spec) {
            Ok(rule) => ids.push(rule.id),
            Err(e) => {
                remove_rules(svc, &ids);
                return Err(e);
            }
        }
    }
    Ok(ids)
}

/// Removes Jim's rules; one already removed through the admin API is no error.
fn remove_rules(svc: &Service, ids: &[u64]) {
    for id in ids {
        let _ = svc.chaos().remove(*id);
    }
}

/// `GET /api/v1/messages/{id}/mime/part/{n}/download`, as MailHog answers it: the part's
/// headers as response headers, its body decoded when it is base64.
fn part_download(m: &MessageJson, id: u64, part: &str) -> Response {
    let found = part
        .parse::<usize>()
        .ok()
        .and_then(|n| m.mime.as_ref()?.parts.get(n));
    let Some(p) = found else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("message {id} has no MIME part {part}"),
        );
    };
    let mut encoding = None;
    let mut headers = warp::http::HeaderMap::new();
    for (name, values) in &p.headers {
        let lower = name.to_ascii_lowercase();
        // Framing is the server's own business.
        if matches!(
            lower.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            continue;
        }
        let Ok(h) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        for v in values {
            if lower == "content-transfer-encoding" && encoding.is_none() {
                encoding = Some(v.to_ascii_lowercase());
            }
            if let Ok(v) = HeaderValue::from_str(v) {
                headers.append(h.clone(), v);
            }
        }
    }
    if !headers.contains_key(header::CONTENT_DISPOSITION)
        && let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}-part-{part}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    let body = match encoding.as_deref().map(str::trim) {
        Some("base64") => {
            let compact: String = p.body.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .unwrap_or_else(|_| p.body.clone().into_bytes())
        }
        _ => p.body.clone().into_bytes(),
    };
    let mut res = Response::new(body.into());
    *res.headers_mut() = headers;
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_and_parts_are_split_as_mailhog_splits_them() {
        let data = "From: a@b\r\nContent-Type: multipart/mixed;\r\n boundary=\"xx\"\r\nSubject: s\r\n\r\n\
                    --xx\r\nContent-Type: text/plain\r\n\r\nhello\r\n--xx\r\nContent-Type: application/octet-stream\r\n\
                    Content-Transfer-Encoding: base64\r\n\r\naGk=\r\n--xx--\r\n";
        let c = Content::parse(data);
        assert_eq!(
            c.headers["Content-Type"],
            ["multipart/mixed; boundary=\"xx\""]
        );
        assert_eq!(c.size, data.len());
        assert!(c.is_mime());
        let parts = c.parse_mime().parts;
        assert_eq!(parts.len(), 3, "two parts and the closing `--`");
        assert_eq!(parts[0].body, "hello");
        assert_eq!(parts[1].body, "aGk=");
        assert_eq!(parts[2].body, "--");
    }

    #[test]
    fn paths_are_split_as_mailhog_splits_them() {
        let p = Path::parse("a@b.example");
        assert_eq!((p.mailbox.as_str(), p.domain.as_str()), ("a", "b.example"));
        assert!(p.relays.is_none());
        let p = Path::parse("@r1,@r2:x@y");
        assert_eq!(p.relays.unwrap(), ["@r1", "@r2"]);
        assert_eq!(p.mailbox, "x");
    }
}
