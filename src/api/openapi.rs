//! The OpenAPI 3.1 document of the REST API, generated from the code and served at
//! `GET /api/v1/openapi.json`: the operations from the handlers' `#[utoipa::path]`, the schemas
//! from the JSON shapes in [`super::dto`] and [`super::rejection`], and from here the parameters,
//! the reusable responses, the security schemes and the document's own text.
//!
//! utoipa writes a `#[serde(flatten)]` as an `allOf` of open schemas; [`SerdeShapes`] turns each
//! into the one closed object serde writes, so that a field no type declares is a schema error
//! in requests and answers alike, as it is for the server.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{Value, json};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, Header, Ref, RefOr, Required};
use utoipa::{IntoParams, Modify, OpenApi, PartialSchema, ToResponse, ToSchema};

use super::dto::formats;
use super::handlers;
use super::routes::ROUTES;
use crate::service::chaos::Stage;

/// The document, built once, as served.
pub fn document() -> &'static str {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("an OpenAPI document always serialises")
    });
    &DOCUMENT
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fakemail",
        description = include_str!("openapi.md"),
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
    servers((url = "/", description = "The server that serves this document.")),
    tags(
        (name = "service", description = "Liveness, readiness, metrics and this document."),
        (name = "accounts", description = "Registration, sessions and the caller's own account."),
        (name = "mail", description = "Sending, reading, flagging, moving and deleting the \
            caller's own copies of messages."),
        (name = "mailboxes", description = "The system mailboxes (inbox, sent, archive, trash) \
            and a user's own."),
        (name = "operator", description = "Every message fakemail holds, whoever its copies \
            belong to (admin token)."),
        (name = "waiting", description = "A request that answers as soon as a matching message \
            is stored."),
        (name = "events", description = "Server-Sent Events of messages received and deleted."),
        (name = "retention", description = "Deleting old mail on demand."),
        (name = "chaos", description = "Fault injection, on a server started with `--chaos`."),
    ),
    paths(
        handlers::health,
        handlers::ready,
        handlers::openapi,
        handlers::metrics,
        handlers::register,
        handlers::login,
        handlers::logout,
        handlers::open_session,
        handlers::close_session,
        handlers::me,
        handlers::update_me,
        handlers::delete_me,
        handlers::change_password,
        handlers::send,
        handlers::get_message,
        handlers::patch_message,
        handlers::delete_message,
        handlers::raw_message,
        handlers::message_html,
        handlers::message_attachment,
        handlers::list_mailboxes,
        handlers::create_mailbox,
        handlers::delete_mailbox,
        handlers::list_messages,
        handlers::empty_mailbox,
        handlers::mailbox_wait,
        handlers::user_events,
        handlers::admin_purge,
        handlers::admin_list,
        handlers::admin_delete_all,
        handlers::admin_message,
        handlers::admin_delete,
        handlers::admin_raw,
        handlers::admin_set_tags,
        handlers::admin_tags,
        handlers::admin_rename_tag,
        handlers::admin_delete_tag,
        handlers::admin_message_html,
        handlers::open_admin_session,
        handlers::close_admin_session,
        handlers::admin_attachment,
        handlers::admin_stats,
        handlers::admin_wait,
        handlers::admin_events,
        handlers::chaos_get,
        handlers::chaos_put,
        handlers::chaos_clear,
        handlers::chaos_add,
        handlers::chaos_remove,
    ),
    components(responses(
        ErrorResponse,
        BadRequest,
        Unauthorized,
        AdminUnauthorized,
        ChaosDisabled,
        Csrf,
        NotFound,
        NoHtml,
        PayloadTooLarge,
        UnsupportedMediaType,
        InvalidBody,
        InvalidQuery,
        InvalidWait,
        Timeout,
        TooManyAttempts,
        NotReady,
        ShuttingDown,
        StorageFull,
        Raw,
        Html,
        Attachment,
        Events,
    )),
    modifiers(&SecuritySchemes, &SerdeShapes, &HeadOperations, &CrossFieldRules),
)]
struct ApiDoc;

/// The credentials: a user's session and the admin token as bearer tokens, and the cookies a
/// browser holds instead (a user's session token; an operator session's id). Every operation
/// that takes a bearer token takes its cookie as well, but for those in [`TOKEN_ONLY`]. An
/// operation that needs no credential says so with an empty `security`.
struct SecuritySchemes;

/// Operations that take the bearer token only, not its cookie: opening an operator session
/// needs the admin token itself.
const TOKEN_ONLY: [&str; 1] = ["adminOpenSession"];

/// What a cookie-authenticated request must do besides, in the description of both cookie
/// schemes.
const CSRF_RULES: &str = "The cookie counts only when the request has no `Authorization` \
    header. A request it authenticates that is not a `GET` or `HEAD` must carry \
    `X-Requested-With: fakemail`, and one whose `Sec-Fetch-Site` header is present must come \
    from `same-origin` (or `none`), else it is refused with 403 `csrf`: strict cookies reach \
    this server from pages of other ports of the same host too.";

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let none: [&str; 0] = [];
        let alternatives = [
            (
                SecurityRequirement::new("session", none),
                SecurityRequirement::new("session_cookie", none),
            ),
            (
                SecurityRequirement::new("admin", none),
                SecurityRequirement::new("admin_cookie", none),
            ),
        ];
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ]
            .into_iter()
            .chain([&mut item.patch, &mut item.head])
            .flatten()
            {
                let token_only = op
                    .operation_id
                    .as_deref()
                    .is_some_and(|id| TOKEN_ONLY.contains(&id));
                let security = op.security.get_or_insert_with(Vec::new);
                for (bearer, cookie) in &alternatives {
                    if !token_only && security.contains(bearer) && !security.contains(cookie) {
                        security.push(cookie.clone());
                    }
                }
            }
        }
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        let cookie = |name: &str, description: &str| {
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                name,
                &format!("{description} {CSRF_RULES}"),
            )))
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            bearer(
                "A session token, the `token` of `POST /api/v1/auth/login`. It stops working at \
                 logout, at a password change (every other token of the user), at account \
                 deletion, or when it expires (`expires_at`).",
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            cookie(
                "fakemail_session",
                "A session token in the cookie `POST /api/v1/auth/session` sets, for the web \
                 UI; it ends as a bearer session token does.",
            ),
        );
        components.add_security_scheme(
            "admin",
            bearer(
                "The admin token: `--admin-token` (`FAKEMAIL_ADMIN_TOKEN`), else the random one \
                 the server keeps in the data dir's `admin-token` file; `server.json` in the data \
                 dir names it too.",
            ),
        );
        components.add_security_scheme(
            "admin_cookie",
            cookie(
                "fakemail_admin",
                "An operator session's id in the cookie `POST /api/v1/admin/session` sets, for \
                 the web UI (not the admin token). It ends with `DELETE /api/v1/admin/session`, \
                 after 12 hours (or `--session-ttl`, when shorter), or when the server \
                 restarts.",
            ),
        );
    }
}

// ----- parameters --------------------------------------------------------------------------
// The handlers read their parameters themselves; these types only describe them to utoipa,
// which never reads their fields (hence `allow(dead_code)`).

/// The `{id}` of the user's message endpoints.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct CopyId {
    /// The id of the caller's copy of a message (every recipient's copy and the sender's have
    /// ids of their own). Somebody else's id answers 404.
    id: String,
}

/// The `{id}` of the operator's message endpoints.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct MessageId {
    /// The id of the message itself, as the operator view gives it (not a copy's).
    id: String,
}

/// The `{tag}` of the tag endpoints (implemented by hand, as [`CustomMailboxName`] is).
pub struct TagName;

impl IntoParams for TagName {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![path_param(
            "tag",
            "A tag in use, percent-encoded where URLs need it; matched in any letter case.",
            formats::tag(),
        )]
    }
}

/// A required path parameter whose schema is built by a function.
fn path_param(name: &str, description: &str, schema: utoipa::openapi::Object) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// The `{index}` of an attachment.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct AttachmentIndex {
    /// The attachment's `index`, from 0; an index past the last answers 404.
    index: u32,
}

/// The `{name}` of a mailbox of the user's own (implemented by hand: utoipa drops a
/// parameter's description and its being required when its schema is a function's).
pub struct CustomMailboxName;

impl IntoParams for CustomMailboxName {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![path_param(
            "name",
            "A mailbox name, percent-encoded where URLs need it (`Receipts%202026`); trimmed, \
             and matched in any letter case. Not a system mailbox (`inbox`, `sent`, `archive`, \
             `trash`).",
            formats::custom_mailbox(),
        )]
    }
}

/// The `{name}` of a mailbox.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct MailboxName {
    /// A mailbox name, percent-encoded where URLs need it (`Receipts%202026`); trimmed, and
    /// matched in any letter case.
    name: String,
}

/// The `{id}` of a fault-injection rule.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct RuleId {
    /// The rule's `id`.
    #[param(minimum = 1)]
    id: u64,
}

/// The header that marks a request as the web UI's own: `X-Requested-With: fakemail`. A page
/// of another origin cannot send it without the server's consent (a CORS preflight, which
/// fakemail never grants).
pub struct RequestedWith;

impl IntoParams for RequestedWith {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let header = ParameterBuilder::new()
            .name("X-Requested-With")
            .parameter_in(ParameterIn::Header)
            .required(Required::True)
            .description(Some(
                "`fakemail`: marks the request as the web UI's own; without it, 403 `csrf`.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["fakemail"])),
            ));
        vec![header.build()]
    }
}

/// Whether a message's HTML may load remote content.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Remote {
    /// `true`: the Content-Security-Policy lets the HTML load images, styles and fonts over
    /// `http:` and `https:` (which tells their senders the message was opened); never scripts.
    /// `1` and `0` mean `true` and `false`.
    #[param(default = false)]
    remote: Option<bool>,
}

/// Paging through a listing.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Paging {
    /// Messages per page.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page: an opaque string (empty: the first page).
    #[param(pattern = "^(?:[0-9A-Fa-f]{16})?$")]
    cursor: Option<String>,
}

/// The flag filters of a mailbox listing.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Flags {
    /// `true`: only unread copies; `false`: only read ones. `1` and `0` mean `true` and
    /// `false`.
    unread: Option<bool>,
    /// `true`: only starred copies; `false`: only the others. `1` and `0` mean `true` and
    /// `false`.
    starred: Option<bool>,
}

/// The `permanent` flag of a deletion.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Permanent {
    /// Delete for good instead of moving to `trash`; `1` and `0` mean `true` and `false`.
    #[param(default = false)]
    permanent: Option<bool>,
}

/// The message filters of the operator listing and the waits.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Filters {
    /// An address, matched exactly in any letter case, among the `To` and `Cc` addresses and
    /// the envelope recipients (for a user, instead of the envelope, the Bcc list of their own
    /// sent copy).
    to: Option<String>,
    /// An address, matched exactly in any letter case, against the `From` address and the
    /// envelope sender.
    from: Option<String>,
    /// A substring of the subject, in any letter case.
    subject: Option<String>,
}

/// The search of the listings and waits.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Search {
    /// A query in the search grammar (docs/api.md, "Search"): terms separated by spaces, all
    /// of which must match. Bare words and `"quoted phrases"` match the sender, recipients,
    /// subject or text; `from:` `to:` `cc:` `bcc:` `reply-to:` `addressed:` `subject:`
    /// `message-id:` `tag:` `is:read` `is:unread` `is:starred` `is:tagged` `has:attachment`
    /// `larger:10K` `smaller:1M` `before:2026-11-24` `after:2026-11-24T17:10:37Z`; `-` or `!`
    /// negates a term; values may be quoted (`subject:"two words"`). Any letter case, in any
    /// script. A malformed query is a 422 `invalid_search` naming the term.
    q: Option<String>,
}

/// Where and how long a wait waits.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Wait {
    /// Where to start: a `cursor` from an earlier wait, the `id` of a `message.received`
    /// event, or an RFC 3339 time (messages stored in that second or later). Absent or empty:
    /// messages stored after the request arrived.
    #[param(pattern = "^(?:|[0-9A-Fa-f]{16}|\
        (?:19[7-9][0-9]|[2-9][0-9]{3})-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|\
        (?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))\
        T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?\
        (?:Z|[+ -](?:[01][0-9]|2[0-3]):[0-5][0-9]))$")]
    after: Option<String>,
    /// How long to wait: a duration (`30s`, `1.5s`, `2m`, `500ms`, `1m 30s`) or whole seconds,
    /// at most `5m`. `0` only looks at what is stored; empty, the default.
    #[param(
        default = "30s",
        pattern = "^(?:|0*(?:[0-9]{1,2}|[12][0-9]{2}|300)|\
            (?:0*(?:[0-9]{1,2}|[12][0-9]{2})(?:\\.[0-9]{1,9})?|0*300(?:\\.0{1,9})?) ?\
            (?:seconds|second|secs|sec|s)|\
            (?:0*(?:[0-9]{1,5}|[12][0-9]{5})(?:\\.[0-9]{1,6})?|0*300000(?:\\.0{1,6})?) ?\
            (?:millis|msec|ms)|\
            (?:0*[0-4](?:\\.[0-9]{1,10})?|0*5(?:\\.0{1,10})?) ?(?:minutes|minute|mins|min|m)|\
            [0-9]{1,8}(?:\\.[0-9]{1,3})? ?(?:usec|us)|[0-9]{1,9} ?(?:nanos|nsec|ns)|\
            0*0 ?(?:minutes|minute|mins|min|m) ?\
            (?:0*(?:[0-9]{1,2}|[12][0-9]{2})(?:\\.[0-9]{1,9})?|0*300(?:\\.0{1,9})?) ?(?:seconds|second|secs|sec|s)|\
            0*1 ?(?:minutes|minute|mins|min|m) ?\
            (?:0*(?:[0-9]{1,2}|1[0-9]{2}|2[0-3][0-9])(?:\\.[0-9]{1,9})?|0*240(?:\\.0{1,9})?) ?(?:seconds|second|secs|sec|s)|\
            0*2 ?(?:minutes|minute|mins|min|m) ?\
            (?:0*(?:[0-9]{1,2}|1[0-7][0-9])(?:\\.[0-9]{1,9})?|0*180(?:\\.0{1,9})?) ?(?:seconds|second|secs|sec|s)|\
            0*3 ?(?:minutes|minute|mins|min|m) ?\
            (?:0*(?:[0-9]{1,2}|1[01][0-9])(?:\\.[0-9]{1,9})?|0*120(?:\\.0{1,9})?) ?(?:seconds|second|secs|sec|s)|\
            0*4 ?(?:minutes|minute|mins|min|m) ?\
            (?:0*(?:[0-5]?[0-9])(?:\\.[0-9]{1,9})?|0*60(?:\\.0{1,9})?) ?(?:seconds|second|secs|sec|s)|\
            0*5 ?(?:minutes|minute|mins|min|m) ?0+(?:\\.0{1,9})? ?(?:seconds|second|secs|sec|s))$"
    )]
    timeout: Option<String>,
}

/// Where a reconnecting event stream resumes.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct LastEventId {
    /// The last event `id` a reconnecting client got: the stream first sends the messages
    /// stored since then, at most 1,000.
    #[param(rename = "Last-Event-ID", nullable = false)]
    last_event_id: Option<String>,
}

// ----- the schema of a stage -----------------------------------------------------------------

impl PartialSchema for Stage {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Stage::ALL.map(Stage::name)))
            .description(Some(
                "Where the rule applies: an SMTP stage (`rcpt` once per recipient), or \
                 `api_send`, REST `POST /api/v1/messages` after its validation.",
            ))
            .into()
    }
}

impl ToSchema for Stage {
    fn name() -> std::borrow::Cow<'static, str> {
        "ChaosStage".into()
    }
}

// ----- reusable responses ------------------------------------------------------------------

/// A response whose body is the `Error` envelope.
fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name("Error"))),
    )
}

/// The `Retry-After` header of a response.
fn retry_after() -> Header {
    let seconds = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1));
    let mut header = Header::new(seconds);
    header.description = Some("Seconds to wait before trying again.".into());
    header
}

/// Declares reusable responses with the `Error` envelope as their body, each named as its type
/// and described by its doc comment; `with retry_after` adds that header.
macro_rules! error_responses {
    ($($(#[doc = $doc:literal])+ $name:ident $(with $header:ident)?;)*) => {$(
        $(#[doc = $doc])+
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                let description = [$($doc),+].map(str::trim).join(" ");
                let response = error_response(&description);
                $(let response = response.header("Retry-After", $header());)?
                (stringify!($name), response.build().into())
            }
        }
    )*};
}

error_responses! {
    /// Any other error, such as 405 `method_not_allowed` (with an `Allow` header listing the
    /// path's methods), 403 `csrf` (a session cookie used without the rules of its security
    /// scheme) or 500 `internal_error` (the details are in the server log, never in the
    /// answer).
    ErrorResponse;
    /// `malformed_json`: the body is not valid JSON (or not UTF-8); `body_read_error`: the body
    /// could not be read.
    BadRequest;
    /// `missing_token`: no `Authorization: Bearer <token>` header; `invalid_token`: the token
    /// is unknown, expired, logged out or revoked.
    Unauthorized;
    /// `admin_token_required`: no admin token, or a wrong one (a user's token too).
    AdminUnauthorized;
    /// `chaos_disabled`: the server was started without `--chaos`.
    ChaosDisabled;
    /// `csrf`: the request lacks `X-Requested-With: fakemail`, or its `Sec-Fetch-Site` says it
    /// comes from another origin.
    Csrf;
    /// `no_html`: the message has no HTML body; `not_found`: no such message among the
    /// caller's own (for the operator, among all).
    NoHtml;
    /// `not_found`: no such message, attachment, mailbox or rule among the caller's own (for
    /// the operator, among all).
    NotFound;
    /// `payload_too_large`: the body is larger than `--max-body-size`.
    PayloadTooLarge;
    /// `unsupported_media_type`: the body is not sent as `application/json`.
    UnsupportedMediaType;
    /// `invalid_body`: valid JSON of the wrong shape, a missing, unknown or mistyped field
    /// (`field` names it).
    InvalidBody;
    /// `invalid_query`: a boolean parameter is not `true`, `false`, `1` or `0` (field names
    /// it).
    InvalidQuery;
    /// `invalid_timeout`, `invalid_after`, `invalid_search` (`q` malformed), or
    /// `invalid_query` for a parameter the endpoint does not take (field names it).
    InvalidWait;
    /// `timeout`: no matching message arrived within `timeout`.
    Timeout;
    /// `too_many_attempts`: too many failed logins for this address.
    TooManyAttempts with retry_after;
    /// `not_ready`: the server is starting or shutting down.
    NotReady with retry_after;
    /// `not_ready`: the server shut down while the request waited.
    ShuttingDown;
    /// `storage_full`: new mail is refused: the data dir's disk has less free space than
    /// `--min-free-space`, or a write to the store failed (then until a restart).
    StorageFull;
}

/// A message's source.
pub struct Raw;

impl<'r> ToResponse<'r> for Raw {
    fn response() -> (&'r str, RefOr<Response>) {
        let response = ResponseBuilder::new()
            .description(
                "The RFC 5322 source, byte for byte as stored, with CRLF line endings. Bcc \
                 recipients are in no copy's headers.",
            )
            .content(
                "message/rfc822",
                Content::new(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        ("Raw", response.build().into())
    }
}

/// A message's HTML.
pub struct Html;

impl<'r> ToResponse<'r> for Html {
    fn response() -> (&'r str, RefOr<Response>) {
        let constant = |value: &str| {
            Header::new(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([value])),
            )
        };
        let policy_schema = ObjectBuilder::new().schema_type(Type::String).pattern(Some(
            "^sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; \
             img-src data:( http: https:)?; style-src 'unsafe-inline'( http: https:)?; \
             font-src data:( http: https:)?; frame-ancestors 'self'; base-uri 'none'; \
             form-action 'none'$",
        ));
        let mut policy = Header::new(policy_schema);
        policy.description = Some(
            "`sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; \
             img-src data:; style-src 'unsafe-inline'; font-src data:; frame-ancestors 'self'; \
             base-uri 'none'; form-action 'none'`, and with `remote=true`, `http: https:` \
             added to `img-src`, `style-src` and `font-src`."
                .into(),
        );
        let response = ResponseBuilder::new()
            .description(
                "The HTML body in UTF-8, `cid:` references made `data:` URIs, with a \
                 `<base target=\"_blank\">` so that its links open in a new tab. The \
                 Content-Security-Policy sandboxes it: show it only in `<iframe sandbox>` \
                 (`allow-popups allow-popups-to-escape-sandbox` for the links, nothing more).",
            )
            .header("Content-Security-Policy", policy)
            .header("X-Content-Type-Options", constant("nosniff"))
            .header("Referrer-Policy", constant("no-referrer"))
            .header("Cache-Control", constant("private, no-cache"))
            .content(
                "text/html",
                Content::new(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        ("Html", response.build().into())
    }
}

/// An attachment's content.
pub struct Attachment;

impl<'r> ToResponse<'r> for Attachment {
    fn response() -> (&'r str, RefOr<Response>) {
        let constant = |value: &str| {
            Header::new(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([value])),
            )
        };
        let mut disposition = Header::default();
        disposition.description = Some(
            "`attachment`, with the file name when there is one: `filename` an ASCII fallback, \
             `filename*` the exact name (RFC 6266)."
                .into(),
        );
        let response = ResponseBuilder::new()
            .description(
                "The attachment's decoded content with its own `Content-Type` (text converted \
                 to UTF-8 says `; charset=utf-8`), served as a download.",
            )
            .header("Content-Disposition", disposition)
            .header("X-Content-Type-Options", constant("nosniff"))
            .header("Content-Security-Policy", constant("sandbox"))
            .content("*/*", Content::default());
        ("Attachment", response.build().into())
    }
}

/// An event stream.
pub struct Events;

impl Events {
    /// One event, its fields as an object: before OpenAPI 3.2's `itemSchema`, the schema of an
    /// event stream is read as each event's (as schemathesis reads it).
    fn event() -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "event",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["message.received", "message.deleted"])),
            )
            .required("event")
            .property(
                "data",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .content_media_type("application/json")
                    .description(Some("The message's summary as JSON.")),
            )
            .required("data")
            .property(
                "id",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[0-9A-Fa-f]{16}$"))
                    .description(Some("`message.received` only: the cursor.")),
            )
    }
}

impl<'r> ToResponse<'r> for Events {
    fn response() -> (&'r str, RefOr<Response>) {
        let response = ResponseBuilder::new()
            .description(
                "Server-Sent Events, a stream that stays open. It starts with the comment \
                 `:listening`; then each event comes as it happens: `event: message.received` \
                 with the summary as JSON `data` and the cursor of the message or copy as `id` \
                 (a wait takes it as `after`), or `event: message.deleted` with the summary the \
                 message had and no `id`. A comment every 15 seconds keeps the connection open \
                 through proxies.",
            )
            .content("text/event-stream", Content::new(Some(Self::event())));
        ("EventStream", response.build().into())
    }
}

// ----- what utoipa cannot say ------------------------------------------------------------------

/// The objects as serde writes and reads them.
///
/// Every component schema that is an `allOf` (utoipa's form of `#[serde(flatten)]`) becomes
/// the one object serde writes: the properties and required fields of every part, in order;
/// the parts that only served the flattening are dropped. Every object with declared
/// properties is closed (`additionalProperties: false`): serde writes a struct's fields and no
/// others, and every request type denies unknown fields.
struct SerdeShapes;

impl Modify for SerdeShapes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let parts = components.schemas.clone();
        for schema in components.schemas.values_mut() {
            *schema = merged(schema, &parts);
            close_objects(schema);
        }
        // Drop what nothing references any more (the flattened parts).
        loop {
            let text = serde_json::to_string(&*openapi).unwrap_or_default();
            let schemas = &mut openapi.components.as_mut().unwrap().schemas;
            let before = schemas.len();
            schemas.retain(|name, _| text.contains(&format!("\"#/components/schemas/{name}\"")));
            if schemas.len() == before {
                break;
            }
        }
    }
}

/// `schema` with every `allOf` of objects (and references to them) in it merged into one
/// object. The description is the `allOf`'s own, else that of a part with no properties (where
/// utoipa puts a field's description), else the first part's.
fn merged(schema: &RefOr<Schema>, parts: &BTreeMap<String, RefOr<Schema>>) -> RefOr<Schema> {
    let all = match schema {
        RefOr::T(Schema::AllOf(all)) => all,
        RefOr::T(Schema::Object(o)) => {
            let mut o = o.clone();
            for property in o.properties.values_mut() {
                *property = merged(property, parts);
            }
            return RefOr::T(Schema::Object(o));
        }
        other => return other.clone(),
    };
    let description = |part: &RefOr<Schema>| match part {
        RefOr::T(Schema::Object(o)) => Some((o.properties.is_empty(), o.description.clone()?)),
        _ => None,
    };
    let descriptions: Vec<(bool, String)> = all.items.iter().filter_map(description).collect();
    let description = all.description.clone().or_else(|| {
        let field = descriptions.iter().find(|(bare, _)| *bare);
        field.or(descriptions.first()).map(|(_, d)| d.clone())
    });
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(description);
    for part in &all.items {
        let part = match part {
            RefOr::Ref(r) => {
                let name = r.ref_location.trim_start_matches("#/components/schemas/");
                merged(&parts[name], parts)
            }
            inline => merged(inline, parts),
        };
        if let RefOr::T(Schema::Object(part)) = part {
            for (name, property) in part.properties {
                object = object.property(name, property);
            }
            for name in part.required {
                object = object.required(name);
            }
        }
    }
    RefOr::T(Schema::Object(object.build()))
}

/// Closes every object with declared properties that does not say otherwise, inside `schema`
/// too.
fn close_objects(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else { return };
    match schema {
        Schema::Object(o) => {
            if !o.properties.is_empty() && o.additional_properties.is_none() {
                o.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
            o.properties.values_mut().for_each(close_objects);
        }
        Schema::Array(a) => {
            if let ArrayItems::RefOrSchema(items) = &mut a.items {
                close_objects(items);
            }
        }
        Schema::OneOf(o) => o.items.iter_mut().for_each(close_objects),
        Schema::AnyOf(o) => o.items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

/// Rules across the fields of an object, which utoipa's attributes cannot say:
/// - a send needs a recipient: an address at least in `to`, `cc` or `bcc`;
/// - a fault-injection rule has at most one trigger: of `probability`, `next` and
///   `max_per_minute`, at most one is given (not null).
struct CrossFieldRules;

impl CrossFieldRules {
    /// Adds `keyword` to the component schema `name`, an object.
    fn add(openapi: &mut utoipa::openapi::OpenApi, name: &str, keyword: &str, value: Value) {
        let schemas = &mut openapi.components.as_mut().expect("components").schemas;
        let Some(RefOr::T(Schema::Object(o))) = schemas.get_mut(name) else {
            panic!("no object schema {name}");
        };
        *o = formats::with_keyword(o.clone(), keyword, value);
    }
}

impl Modify for CrossFieldRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let one_in = |f: &str| json!({"required": [f], "properties": {f: {"minItems": 1}}});
        let recipient = json!([one_in("to"), one_in("cc"), one_in("bcc")]);
        Self::add(openapi, "SendRequest", "anyOf", recipient);

        let given = |f: &str| json!({"required": [f], "properties": {f: {"type": "number"}}});
        let two = |a: &str, b: &str| json!({"allOf": [given(a), given(b)]});
        let triggers = json!({"anyOf": [
            two("probability", "next"),
            two("probability", "max_per_minute"),
            two("next", "max_per_minute"),
        ]});
        Self::add(openapi, "ChaosRuleFields", "not", triggers);
    }
}

/// `HEAD` on the routes that serve it: the `GET` operation's statuses and headers, without
/// bodies, as warp answers a `HEAD` through the `GET` route.
struct HeadOperations;

impl Modify for HeadOperations {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let responses = openapi
            .components
            .as_ref()
            .map(|c| c.responses.clone())
            .unwrap_or_default();
        let heads = ROUTES.iter().filter(|r| r.methods().any(|m| m == "HEAD"));
        for route in heads {
            let Some(item) = openapi.paths.paths.get_mut(route.template) else {
                continue;
            };
            let Some(mut head) = item.get.clone() else {
                continue;
            };
            head.operation_id = head.operation_id.map(|id| format!("{id}Head"));
            head.summary = head.summary.map(|s| format!("{s}, without a body"));
            head.description = None;
            for (status, response) in head.responses.responses.iter_mut() {
                let mut r = match response {
                    RefOr::Ref(r) => {
                        let name = r.ref_location.trim_start_matches("#/components/responses/");
                        match responses.get(name) {
                            Some(RefOr::T(r)) => r.clone(),
                            _ => continue,
                        }
                    }
                    RefOr::T(r) => r.clone(),
                };
                r.content.clear();
                if status == "default" {
                    r.description =
                        "Any error, as its status alone: an answer to `HEAD` has no body.".into();
                }
                *response = RefOr::T(r);
            }
            item.head = Some(head);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;

    /// The operations of the document, as (template, METHOD).
    fn operations(doc: &Value) -> BTreeSet<(String, String)> {
        let mut ops = BTreeSet::new();
        for (template, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                ops.insert((template.clone(), method.to_ascii_uppercase()));
            }
        }
        ops
    }

    /// The bounds the `#[schema]` and `#[param]` attributes write as numbers (they take no
    /// constants) are the service's.
    #[test]
    fn the_documents_bounds_are_the_services() {
        use crate::service::{address, mail, password};
        let doc: Value = serde_json::from_str(document()).unwrap();
        let field =
            |schema: &str, f: &str| doc["components"]["schemas"][schema]["properties"][f].clone();
        for (schema, f) in [
            ("RegisterRequest", "password"),
            ("ChangePasswordRequest", "new_password"),
        ] {
            assert_eq!(
                field(schema, f)["minLength"],
                password::MIN_CHARS,
                "{schema}.{f}"
            );
            assert_eq!(
                field(schema, f)["maxLength"],
                password::MAX_CHARS,
                "{schema}.{f}"
            );
        }
        for (schema, f) in [("RegisterRequest", "email"), ("SendRequest", "reply_to")] {
            assert_eq!(
                field(schema, f)["maxLength"],
                address::MAX_LEN,
                "{schema}.{f}"
            );
        }
        assert_eq!(
            field("SendRequest", "subject")["maxLength"],
            mail::MAX_SUBJECT
        );
        for path in [
            "/api/v1/mailboxes/{name}/messages",
            "/api/v1/admin/messages",
        ] {
            let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
            let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
            assert_eq!(limit["schema"]["maximum"], mail::MAX_PAGE, "{path}");
        }
    }

    /// A validator of the schema of the query parameter `name` of `GET path`.
    fn query_schema(doc: &Value, path: &str, name: &str) -> jsonschema::Validator {
        let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
        let param = params.iter().find(|p| p["name"] == name).unwrap();
        jsonschema::validator_for(&param["schema"]).unwrap()
    }

    /// Asserts that `schema` allows exactly the `values` the service `accepts`.
    fn agree(
        what: &str,
        schema: &jsonschema::Validator,
        accepts: impl Fn(&str) -> bool,
        values: &[&str],
    ) {
        for value in values {
            let (documented, served) = (schema.is_valid(&json!(value)), accepts(value));
            assert_eq!(
                documented, served,
                "{what} {value:?}: the document, the server"
            );
        }
    }

    /// The patterns of the strings the service parses say exactly what it accepts: checked on
    /// values at and around each rule's edges.
    #[test]
    fn the_patterns_accept_what_the_service_accepts() {
        use crate::service::filter::MessageFilter;
        use crate::service::watch::wait_query;
        let doc: Value = serde_json::from_str(document()).unwrap();
        let filter = || MessageFilter::new(None, None, None, None);
        agree(
            "timeout",
            &query_schema(&doc, "/api/v1/admin/wait", "timeout"),
            |v| wait_query(filter(), None, Some(v)).is_ok(),
            &[
                "",
                "0",
                "00",
                "30",
                "300",
                "0300",
                "301",
                "30s",
                "30 s",
                "300s",
                "301s",
                "500ms",
                "300000ms",
                "300001ms",
                "5m",
                "6m",
                "2min",
                "5minutes",
                "999999999ns",
                "1us",
                "1h",
                "-1",
                "1.5s",
                "1m 30s",
                "1m30s",
                "4m 59.5s",
                "4m 60s",
                "4m 60.5s",
                "1m 240s",
                "1m 240.1s",
                "3m 119.9s",
                "3m 121s",
                "0m 300s",
                "5m 0s",
                "5m 0.0s",
                "5m 1s",
                "5m 0.5s",
                "2m 0.000000001s",
                "s",
                "30x",
                "thirty",
            ],
        );
        let cursor = crate::store::keys::encode_cursor(42);
        agree(
            "after",
            &query_schema(&doc, "/api/v1/admin/wait", "after"),
            |v| wait_query(filter(), Some(v), None).is_ok(),
            &[
                "",
                &cursor,
                &cursor.to_uppercase(),
                &cursor[1..],
                "0123456789abcdefg",
                "2026-11-24T17:10:37Z",
                "2026-11-24T17:10:37.25Z",
                "2026-11-24T17:10:37+02:00",
                "2026-11-24T17:10:37 02:00",
                "2026-11-24T17:10:37-05:30",
                "2026-02-28T00:00:00Z",
                "2026-02-30T00:00:00Z",
                "2026-04-31T00:00:00Z",
                "1969-12-31T23:59:59Z",
                "2026-11-24T24:00:00Z",
                "2026-11-24 17:10:37Z",
                "2026-11-24T17:10:37",
                "yesterday",
            ],
        );
        let older_than = &doc["components"]["schemas"]["PurgeRequest"]["properties"]["older_than"];
        agree(
            "older_than",
            &jsonschema::validator_for(older_than).unwrap(),
            |v| crate::time::parse_age(v).is_ok(),
            &[
                "0",
                "7d",
                "30s",
                "12h",
                "1h 30m",
                "1h30m",
                "90 s",
                "2 weeks",
                "1y",
                "500ms",
                "",
                "7",
                "-7d",
                "7 d x",
                "d",
                "1.5m",
                "1.5m 30s",
                "1.05m",
                "0.95m",
                "1.01m",
                "1.5 m",
                "1.0s",
                "1.00000000s",
                "1.5s",
                "1.s",
                ".5m",
                "1.25h",
                "1.0025h",
                "1.0001h",
                "1.5d",
                "0.0003125d",
                "0.0003d",
                "0.5w",
                "0.0078125M",
                "0.007M",
                "0.125y",
                "0.0125y",
                "1.5m 1.5m",
                "1.50000000m",
                "1.500000000m",
            ],
        );
    }

    /// Whether the service took what `call` asked (or refused it for a reason other than its
    /// form). Runs the call to its end from `agree`'s synchronous closure: the test's runtime is
    /// multi-threaded, so this worker may block.
    fn by_form<T>(call: impl std::future::Future<Output = crate::Result<T>>) -> bool {
        let result =
            tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(call));
        !matches!(result, Err(crate::Error::Invalid { .. }))
    }

    /// As [`the_patterns_accept_what_the_service_accepts`], for the names a user gives.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_name_patterns_accept_what_the_service_accepts() {
        let doc: Value = serde_json::from_str(document()).unwrap();
        let property = |schema: &str, f: &str| {
            let s = &doc["components"]["schemas"][schema]["properties"][f];
            jsonschema::validator_for(s).unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let svc = crate::service::test_support::service(dir.path());
        let (email, password) = ("names@example.test", "a password long enough");
        let new = crate::service::NewUser {
            email: email.into(),
            password: password.into(),
            display_name: None,
        };
        let user = svc.register(new).await.unwrap();
        let login = svc.login(email, password).await.unwrap();
        let session = svc.authenticate(&login.token).await.unwrap();
        let (a100, a101) = ("a".repeat(100), "a".repeat(101));
        let spaced = format!(" {a100}\t");
        agree(
            "display_name",
            &property("UpdateProfileRequest", "display_name"),
            |v| by_form(svc.update_profile(&session, v)),
            &[
                "",
                "Alice",
                " Alice ",
                &a100,
                &a101,
                &spaced,
                "a\tb",
                "\tAlice\n",
                "Al\u{7f}ice",
                "Al\u{85}ice",
                "\u{85}Alice",
                "\u{2003}Alice\u{3000}",
                "Alice\u{200b}",
                "Zoë",
            ],
        );
        let (a64, a65) = ("b".repeat(64), "b".repeat(65));
        let spaced = format!("\u{3000}{a64} ");
        agree(
            "name",
            &property("CreateMailboxRequest", "name"),
            |v| by_form(svc.create_mailbox(&user, v)),
            &[
                "Receipts", " Work ", "a/b", "/a", "a/", "a//b", "a/ /b", "", "   ", &a64, &a65,
                &spaced, "x\ny", "\ty\t", "inbox", "Sent", "Zoë's",
            ],
        );
        let custom = formats::custom_mailbox();
        let custom = jsonschema::validator_for(&serde_json::to_value(custom).unwrap()).unwrap();
        agree(
            "name",
            &custom,
            |v| by_form(svc.delete_mailbox(&user, v)),
            &[
                "inbox",
                " INBOX ",
                "Trash",
                "sEnT",
                "\tarchive",
                "inboxes",
                "my inbox",
                "Work",
            ],
        );
    }

    #[test]
    fn the_document_has_the_operations_of_the_route_table() {
        let doc: Value = serde_json::from_str(document()).unwrap();
        let table: BTreeSet<(String, String)> = ROUTES
            .iter()
            .flat_map(|r| r.methods().map(|m| (r.template.to_owned(), m.to_owned())))
            .collect();
        assert_eq!(operations(&doc), table);
    }
}
