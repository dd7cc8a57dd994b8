//! JSON shapes of the REST API. Requests reject unknown fields, so a misspelt field is an
//! error rather than a silent no-op.
//!
//! The doc comments of the types and their fields are the descriptions of their schemas in the
//! OpenAPI document (`super::openapi`), and the `#[schema]` attributes the rules the server
//! enforces on them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::service::chaos::{ChaosStats, RuleJson, Stage};
use crate::service::mail::{Compose, FullMessage, MailboxInfo, MessagePatch, MessageView, Page};
use crate::service::mime::{AttachmentInfo, Content};
use crate::service::operator::{AdminMessage, AdminPage, StatsSnapshot};
use crate::service::{Address, LoginOutcome, Message, User};

/// The body of `POST /api/v1/auth/register`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Trimmed; a local part and a domain of host-name labels; at most 254 bytes. Unique
    /// case-insensitively; the case given is kept for display.
    pub email: String,
    /// 8 to 256 characters; not the email address; not one of the most common passwords.
    pub password: String,
    /// Trimmed; at most 100 characters, no control characters.
    #[serde(default)]
    #[schema(default = "")]
    pub display_name: Option<String>,
}

/// The body of `POST /api/v1/auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Matched case-insensitively.
    pub email: String,
    pub password: String,
}

/// The body of `PATCH /api/v1/me`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    /// Trimmed; at most 100 characters, no control characters.
    pub display_name: String,
}

/// The body of `POST /api/v1/me/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// Under the rules of a new account's password.
    pub new_password: String,
}

/// The body of `DELETE /api/v1/me`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccountRequest {
    pub password: String,
}

/// An account; never a password hash or a token.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserDto {
    pub id: String,
    pub email: String,
    pub display_name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&User> for UserDto {
    fn from(u: &User) -> Self {
        UserDto {
            id: u.id.to_string(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            created_at: u.created_at.to_rfc3339(),
        }
    }
}

/// The only kind of token there is.
#[derive(Debug, Serialize, ToSchema)]
pub enum TokenType {
    Bearer,
}

/// The answer to a successful login.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// The bearer token of the new session.
    pub token: String,
    #[schema(inline)]
    pub token_type: TokenType,
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub user: UserDto,
}

impl From<LoginOutcome> for LoginResponse {
    fn from(o: LoginOutcome) -> Self {
        LoginResponse {
            token: o.token,
            token_type: TokenType::Bearer,
            expires_at: o.expires_at.to_rfc3339(),
            user: UserDto::from(&o.user),
        }
    }
}

/// What `GET /healthz` says.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Liveness {
    Ok,
}

/// What `GET /readyz` says.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Readiness {
    Ready,
}

/// The answer of `GET /healthz`: `{"status":"ok"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(inline)]
    pub status: Liveness,
}

/// The answer of `GET /readyz`: `{"status":"ready"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    #[schema(inline)]
    pub status: Readiness,
}

/// The body of `POST /api/v1/messages`. At least one address in `to`, `cc` and `bcc`
/// together, at most `--max-recipients` (100), repeats included.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// Plain addresses (`bob@example.test`, no display names), each trimmed and checked like
    /// an account's email.
    #[serde(default)]
    #[schema(default = json!([]))]
    pub to: Vec<String>,
    /// As `to`.
    #[serde(default)]
    #[schema(default = json!([]))]
    pub cc: Vec<String>,
    /// As `to`; in no header and in nobody's copy but the sender's.
    #[serde(default)]
    #[schema(default = json!([]))]
    pub bcc: Vec<String>,
    /// May be empty; at most 998 characters, no CR or LF.
    pub subject: String,
    /// The text body.
    #[serde(default)]
    pub text: Option<String>,
    /// The HTML body; with `text` too, the message is `multipart/alternative`.
    #[serde(default)]
    pub html: Option<String>,
    /// One plain address.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Extra headers: names of 1 to 76 printable ASCII characters without `:`, values of at
    /// most 998 characters with no CR or LF. The headers fakemail writes itself (`From`, `To`,
    /// `Cc`, `Bcc`, `Date`, `Message-ID`, `Subject`, `Reply-To`, `MIME-Version`,
    /// `Content-Type`, `Content-Transfer-Encoding`, `Sender`, `Received`) are refused.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl From<SendRequest> for Compose {
    fn from(r: SendRequest) -> Self {
        Compose {
            to: r.to,
            cc: r.cc,
            bcc: r.bcc,
            subject: r.subject,
            text: r.text,
            html: r.html,
            reply_to: r.reply_to,
            headers: r.headers,
        }
    }
}

/// The body of `PATCH /api/v1/messages/{id}`: what to change; absent or null, no change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMessageRequest {
    #[serde(default)]
    pub read: Option<bool>,
    #[serde(default)]
    pub starred: Option<bool>,
    /// Move the copy to this mailbox: a system mailbox or one of the user's own, in any letter
    /// case.
    #[serde(default)]
    pub mailbox: Option<String>,
}

impl From<PatchMessageRequest> for MessagePatch {
    fn from(r: PatchMessageRequest) -> Self {
        MessagePatch {
            read: r.read,
            starred: r.starred,
            mailbox: r.mailbox,
        }
    }
}

/// The body of `POST /api/v1/mailboxes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMailboxRequest {
    /// Trimmed, then 1 to 64 characters with no `/` and no control characters; unique per user
    /// regardless of letter case, system names included.
    pub name: String,
}

/// A mailbox with its counts.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Mailbox)]
pub struct MailboxDto {
    pub name: String,
    /// The user's copies in the mailbox.
    pub total: u64,
    pub unread: u64,
}

impl From<MailboxInfo> for MailboxDto {
    fn from(m: MailboxInfo) -> Self {
        MailboxDto {
            name: m.name,
            total: m.total,
            unread: m.unread,
        }
    }
}

/// A name and address.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Address)]
pub struct AddressDto {
    /// The display name; null when the header has none.
    #[schema(required = true)]
    pub name: Option<String>,
    pub address: String,
}

impl From<&Address> for AddressDto {
    fn from(m: &Address) -> Self {
        AddressDto {
            name: m.name.clone(),
            address: m.address.clone(),
        }
    }
}

fn addresses(list: &[Address]) -> Vec<AddressDto> {
    list.iter().map(AddressDto::from).collect()
}

/// A user's copy of a message, in a listing.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Summary)]
pub struct SummaryDto {
    /// The id of this copy.
    pub id: String,
    /// The mailbox this copy is in.
    pub mailbox: String,
    pub from: AddressDto,
    pub to: Vec<AddressDto>,
    pub cc: Vec<AddressDto>,
    /// Decoded.
    pub subject: String,
    /// The start of the text, runs of white space collapsed, at most 160 characters.
    pub snippet: String,
    /// When fakemail stored the message.
    #[schema(format = DateTime)]
    pub received_at: String,
    /// Bytes of the RFC 5322 source.
    pub size: u64,
    pub read: bool,
    pub starred: bool,
    pub has_attachments: bool,
}

impl From<&MessageView> for SummaryDto {
    fn from(v: &MessageView) -> Self {
        let m = &v.message;
        SummaryDto {
            id: v.entry.id.to_string(),
            mailbox: v.mailbox.clone(),
            from: AddressDto::from(&m.from),
            to: addresses(&m.to),
            cc: addresses(&m.cc),
            subject: m.subject.clone(),
            snippet: m.snippet.clone(),
            received_at: m.received_at.to_rfc3339(),
            size: m.size,
            read: v.entry.read,
            starred: v.entry.starred,
            has_attachments: m.has_attachments,
        }
    }
}

/// A user's copy of a message, whole: the fields of a `Summary` and those decoded from the
/// source.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Message)]
pub struct MessageDto {
    #[serde(flatten)]
    pub summary: SummaryDto,
    /// The `Message-ID` without angle brackets, or null.
    #[schema(required = true)]
    pub message_id: Option<String>,
    pub reply_to: Vec<AddressDto>,
    /// Only on the sender's copy (`name` always null); absent on the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub bcc: Option<Vec<AddressDto>>,
    #[serde(flatten)]
    pub body: BodyDto,
}

impl From<FullMessage> for MessageDto {
    fn from(f: FullMessage) -> Self {
        MessageDto {
            summary: SummaryDto::from(&f.view),
            message_id: f.view.message.message_id.clone(),
            reply_to: addresses(&f.view.message.reply_to),
            bcc: f.view.entry.bcc.as_ref().map(|list| {
                list.iter()
                    .map(|a| AddressDto {
                        name: None,
                        address: a.clone(),
                    })
                    .collect()
            }),
            body: BodyDto::from(f.content),
        }
    }
}

/// What a whole message shows beyond its summary, decoded from its source on read.
#[derive(Debug, Serialize, ToSchema)]
pub struct BodyDto {
    /// The `Date` header in RFC 3339 UTC, or null when the message has none or it cannot be
    /// read.
    #[schema(required = true, format = DateTime)]
    pub date: Option<String>,
    /// The decoded text body (quoted-printable and base64 undone, any charset converted to
    /// UTF-8, line breaks `\n`), or null when the message has no text part.
    #[schema(required = true)]
    pub text: Option<String>,
    /// The decoded HTML body, as `text`, or null when the message has no HTML part.
    #[schema(required = true)]
    pub html: Option<String>,
    /// Every top-level header in order, as `[name, value]` pairs with folded lines unfolded.
    #[schema(schema_with = header_pairs)]
    pub headers: Vec<(String, String)>,
    pub attachments: Vec<AttachmentDto>,
    /// Every `http` and `https` URL in the text body, then in the HTML body, each once, in
    /// order.
    pub links: Vec<String>,
    /// One-time codes (4 to 8 digits or capital letters near a word such as `code`, `OTP` or
    /// `verify`) in the subject and the text.
    pub codes: Vec<String>,
}

// The schema of `BodyDto::headers`: serde writes a pair as a two-item array.
fn header_pairs() -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{ArrayBuilder, Type};
    ArrayBuilder::new()
        .items(
            ArrayBuilder::new()
                .items(utoipa::openapi::ObjectBuilder::new().schema_type(Type::String))
                .min_items(Some(2))
                .max_items(Some(2)),
        )
        .description(Some(
            "Every top-level header in order, as `[name, value]` pairs with folded lines unfolded.",
        ))
        .build()
}

impl From<Content> for BodyDto {
    fn from(c: Content) -> Self {
        BodyDto {
            date: c.date.map(|d| d.to_rfc3339()),
            text: c.text,
            html: c.html,
            headers: c.headers,
            attachments: c.attachments.iter().map(AttachmentDto::from).collect(),
            links: c.links,
            codes: c.codes,
        }
    }
}

/// One attachment of a message; its content is at `.../attachments/{index}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Attachment)]
pub struct AttachmentDto {
    /// The position, from 0; `.../attachments/{index}` serves the content.
    pub index: usize,
    #[schema(required = true)]
    pub filename: Option<String>,
    /// `type/subtype`.
    pub content_type: String,
    /// Bytes of the decoded content.
    pub size: u64,
}

impl From<&AttachmentInfo> for AttachmentDto {
    fn from(a: &AttachmentInfo) -> Self {
        AttachmentDto {
            index: a.index,
            filename: a.filename.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
        }
    }
}

/// A page of a mailbox.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Page)]
pub struct PageDto {
    pub messages: Vec<SummaryDto>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl From<Page> for PageDto {
    fn from(p: Page) -> Self {
        PageDto {
            messages: p.messages.iter().map(SummaryDto::from).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

/// The body of `POST /api/v1/admin/purge`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// A duration in whole seconds such as `30s`, `12h` or `7d`.
    pub older_than: String,
    /// Delete nothing; say what would be deleted.
    #[serde(default)]
    #[schema(default = false)]
    pub dry_run: bool,
}

/// What a purge removed (or, for a dry run, would remove).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PurgeResponse {
    /// Messages, each counted once however many copies it had.
    pub deleted: u64,
    /// Bytes of their sources.
    pub bytes: u64,
    pub dry_run: bool,
}

/// A message in the operator view: one per message, whoever holds copies of it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AdminSummary)]
pub struct AdminSummaryDto {
    /// The message's own id (not a copy's).
    pub id: String,
    pub from: AddressDto,
    pub to: Vec<AddressDto>,
    pub cc: Vec<AddressDto>,
    /// Decoded.
    pub subject: String,
    /// The start of the text, runs of white space collapsed, at most 160 characters.
    pub snippet: String,
    /// When fakemail stored the message.
    #[schema(format = DateTime)]
    pub received_at: String,
    /// Bytes of the RFC 5322 source.
    pub size: u64,
    pub has_attachments: bool,
    /// The envelope recipients: every address that got a copy, Bcc ones included.
    pub recipients: Vec<String>,
}

impl From<&Message> for AdminSummaryDto {
    fn from(m: &Message) -> Self {
        AdminSummaryDto {
            id: m.id.to_string(),
            from: AddressDto::from(&m.from),
            to: addresses(&m.to),
            cc: addresses(&m.cc),
            subject: m.subject.clone(),
            snippet: m.snippet.clone(),
            received_at: m.received_at.to_rfc3339(),
            size: m.size,
            has_attachments: m.has_attachments,
            recipients: m.envelope_to.clone(),
        }
    }
}

/// A message in the operator view, whole: the fields of an `AdminSummary` and those decoded
/// from the source. There is no `bcc`: `recipients` holds them.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AdminMessage)]
pub struct AdminMessageDto {
    #[serde(flatten)]
    pub summary: AdminSummaryDto,
    /// The `Message-ID` without angle brackets, or null.
    #[schema(required = true)]
    pub message_id: Option<String>,
    pub reply_to: Vec<AddressDto>,
    #[serde(flatten)]
    pub body: BodyDto,
}

impl From<AdminMessage> for AdminMessageDto {
    fn from(a: AdminMessage) -> Self {
        AdminMessageDto {
            summary: AdminSummaryDto::from(&a.message),
            message_id: a.message.message_id.clone(),
            reply_to: addresses(&a.message.reply_to),
            body: BodyDto::from(a.content),
        }
    }
}

/// A page of the operator listing.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AdminPage)]
pub struct AdminPageDto {
    pub messages: Vec<AdminSummaryDto>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl From<AdminPage> for AdminPageDto {
    fn from(p: AdminPage) -> Self {
        AdminPageDto {
            messages: p.messages.iter().map(AdminSummaryDto::from).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

/// The answer of `GET /api/v1/admin/stats`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Stats)]
pub struct StatsDto {
    /// Messages stored, each once however many copies it has.
    pub messages: u64,
    /// Bytes of their sources.
    pub bytes: u64,
    /// Accounts.
    pub users: u64,
    pub uptime_seconds: u64,
    /// Since start-up.
    #[schema(inline)]
    pub smtp: SmtpStatsDto,
    /// Fault injection: whether `--chaos` is on, the rules set now, and the faults injected
    /// since start-up, in all and by stage.
    #[schema(inline)]
    pub chaos: ChaosStatsDto,
}

/// The SMTP counters of the stats.
#[derive(Debug, Serialize, ToSchema)]
pub struct SmtpStatsDto {
    pub connections: u64,
    /// Messages accepted.
    pub accepted: u64,
    /// Messages refused.
    pub rejected: u64,
}

/// The fault-injection counters of the stats.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChaosStatsDto {
    pub enabled: bool,
    pub rules: usize,
    pub faults: u64,
    /// Every stage, in dialogue order; 0 where none fired.
    #[schema(inline)]
    pub by_stage: ChaosStagesDto,
}

/// Injected faults by stage, in dialogue order.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChaosStagesDto {
    pub connect: u64,
    pub ehlo: u64,
    pub auth: u64,
    pub mail: u64,
    pub rcpt: u64,
    pub data: u64,
    pub api_send: u64,
}

impl From<ChaosStats> for ChaosStatsDto {
    fn from(c: ChaosStats) -> Self {
        let at = |stage: Stage| c.by_stage[stage.index()];
        ChaosStatsDto {
            enabled: c.enabled,
            rules: c.rules,
            faults: c.faults,
            by_stage: ChaosStagesDto {
                connect: at(Stage::Connect),
                ehlo: at(Stage::Ehlo),
                auth: at(Stage::Auth),
                mail: at(Stage::Mail),
                rcpt: at(Stage::Rcpt),
                data: at(Stage::Data),
                api_send: at(Stage::ApiSend),
            },
        }
    }
}

impl From<StatsSnapshot> for StatsDto {
    fn from(s: StatsSnapshot) -> Self {
        StatsDto {
            messages: s.messages,
            bytes: s.bytes,
            users: s.users,
            uptime_seconds: s.uptime.as_secs(),
            smtp: SmtpStatsDto {
                connections: s.smtp.connections,
                accepted: s.smtp.accepted,
                rejected: s.smtp.rejected,
            },
            chaos: s.chaos.into(),
        }
    }
}

/// The answer of a mailbox wait: a `Message`, and the cursor of its place.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WaitedMessage)]
pub struct WaitedMessageDto {
    #[serde(flatten)]
    pub message: MessageDto,
    /// The cursor of the message's place: pass it as `after` to wait for the next one.
    pub cursor: String,
}

/// The answer of an operator wait: an `AdminMessage`, and the cursor of its place.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WaitedAdminMessage)]
pub struct WaitedAdminMessageDto {
    #[serde(flatten)]
    pub message: AdminMessageDto,
    /// The cursor of the message's place: pass it as `after` to wait for the next one.
    pub cursor: String,
}

/// The answer of `GET /api/v1/admin/chaos`: the fault-injection rules.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChaosView {
    pub enabled: bool,
    /// Faults injected since start-up.
    pub faults: u64,
    /// In the order they are tried; the first that fires wins.
    #[schema(value_type = Vec<ChaosRule>)]
    pub rules: Vec<RuleJson>,
}

/// The body of `PUT /api/v1/admin/chaos`: the new rule list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChaosPut {
    #[schema(value_type = Vec<ChaosRuleRequest>)]
    pub rules: Vec<RuleJson>,
}

/// A fault-injection rule as the server holds it: both forms, its `id` and how often it fired.
/// Fields that do not apply are absent.
// Only a schema: the server writes the service's `RuleJson`, whose shape this describes (the
// tests check real answers against it).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ChaosRule {
    #[schema(minimum = 1)]
    pub id: u64,
    /// The rule's text form, `STAGE:PART[:PART...]`.
    pub rule: String,
    pub stage: Stage,
    #[schema(inline)]
    pub action: ChaosAction,
    #[serde(flatten)]
    pub parts: ChaosRuleParts,
    /// How often the rule has fired.
    pub fired: u64,
}

/// A fault-injection rule, either as its text in `rule` (`rcpt:451:4.3.0:50%`) or as fields,
/// not both. `id` and `fired` are ignored, so a rule as `GET` shows it can be sent back.
// Only a schema: the server reads the service's `RuleJson`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ChaosRuleRequest {
    /// The rule's text form, `STAGE:PART[:PART...]`.
    #[schema(required = false)]
    pub rule: String,
    #[schema(required = false)]
    pub stage: Stage,
    #[schema(required = false, inline)]
    pub action: ChaosAction,
    #[serde(flatten)]
    pub parts: ChaosRuleParts,
    /// Ignored.
    #[schema(required = false)]
    pub id: u64,
    /// Ignored.
    #[schema(required = false)]
    pub fired: u64,
}

/// What a fault-injection rule does when it fires: `reply` with `code` (the action when absent
/// and `code` or `max_per_minute` is given); `delay`, then answer as usual; `disconnect`
/// without a reply (SMTP stages); `throttle` DATA to `bytes_per_second` (`data` only).
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ChaosAction {
    Reply,
    Delay,
    Disconnect,
    Throttle,
}

/// The fields of a fault-injection rule beside its stage and action, each absent when it does
/// not apply.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ChaosRuleParts {
    /// An SMTP 4xx/5xx reply code, or for `api_send` an HTTP 4xx/5xx status with the error
    /// `injected_fault`.
    #[schema(required = false, minimum = 400, maximum = 599)]
    pub code: u16,
    /// The enhanced status code of an SMTP reply, such as `4.3.0`; its class must match the
    /// code's.
    #[schema(required = false)]
    pub enhanced_code: String,
    /// The reply text: one line of at most 200 bytes.
    #[schema(required = false)]
    pub text: String,
    /// How long to wait, such as `2s`; at most 10 minutes.
    #[schema(required = false)]
    pub delay: String,
    #[schema(required = false, minimum = 1)]
    pub bytes_per_second: u64,
    /// Fire with this probability, in percent. At most one of `probability`, `next` and
    /// `max_per_minute`; with none the rule fires every time.
    #[schema(required = false, minimum = 0, maximum = 100)]
    pub probability: f64,
    /// Fire for exactly the next this many matching events, then never.
    #[schema(required = false, minimum = 1)]
    pub next: u64,
    /// Fire only above this many matching events within any minute; with no `code`, the reply
    /// is `421 4.7.0` (HTTP: 429).
    #[schema(required = false)]
    pub max_per_minute: u64,
    /// Only when the envelope sender matches this glob (`*` any run, `?` one character, any
    /// letter case).
    #[schema(required = false)]
    pub from: String,
    /// Only when a recipient matches this glob: at `rcpt` the one being added, at `data` and
    /// `api_send` any of them.
    #[schema(required = false)]
    pub to: String,
    /// The seed of the probability draws: the same seed gives the same sequence of hits and
    /// misses.
    #[schema(required = false)]
    pub seed: u64,
}
