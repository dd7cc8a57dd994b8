//! JSON shapes of the REST API. Requests reject unknown fields, so a misspelt field is an
//! error rather than a silent no-op.
//!
//! The doc comments of the types and their fields are the descriptions of their schemas in the
//! OpenAPI document (`super::openapi`), and the `#[schema]` attributes the rules the server
//! enforces on them; a string with rules of its own has its schema, description included,
//! from [`formats`].

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
    #[schema(format = "email", max_length = 254)]
    pub email: String,
    /// 8 to 256 characters; not the email address; not one of the most common passwords.
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
    #[serde(default)]
    #[schema(schema_with = formats::optional_display_name)]
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
    #[schema(schema_with = formats::display_name)]
    pub display_name: String,
}

/// The body of `POST /api/v1/me/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// Under the rules of a new account's password.
    #[schema(min_length = 8, max_length = 256)]
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
/// together, at most `--max-recipients` (100), repeats included. The `bcc` addresses are in no
/// header and in nobody's copy but the sender's.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    #[serde(default)]
    #[schema(schema_with = formats::addresses)]
    pub to: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = formats::addresses)]
    pub cc: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = formats::addresses)]
    pub bcc: Vec<String>,
    /// May be empty; at most 998 characters, no CR or LF.
    #[schema(max_length = 998, pattern = r"^[^\r\n]*$")]
    pub subject: String,
    /// The text body.
    #[serde(default)]
    pub text: Option<String>,
    /// The HTML body; with `text` too, the message is `multipart/alternative`.
    #[serde(default)]
    pub html: Option<String>,
    /// One plain address.
    #[serde(default)]
    #[schema(format = "email", max_length = 254)]
    pub reply_to: Option<String>,
    #[serde(default)]
    #[schema(schema_with = formats::headers)]
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
    #[schema(schema_with = formats::mailbox_name)]
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
    /// The message's tags (shared by every copy): from its `X-Tags` header and set by the
    /// operator.
    pub tags: Vec<String>,
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
            tags: m.tags.clone(),
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
    /// The HTML body refers to `http`/`https` resources a viewer would load: images (`src`,
    /// `srcset`, `background`), CSS `url()` and `@import`, stylesheet links. `.../html` blocks
    /// them unless asked with `remote=true`.
    pub remote_content: bool,
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
            remote_content: c.remote_content,
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
    /// The part's `Content-ID` without angle brackets, or null: the HTML body shows the part
    /// with a `cid:` URL of it (which `.../html` makes a `data:` URI).
    #[schema(required = true)]
    pub content_id: Option<String>,
    /// The part asks to be shown within the body rather than offered as a download:
    /// `Content-Disposition: inline`, or no disposition and a `Content-ID`.
    pub inline: bool,
}

impl From<&AttachmentInfo> for AttachmentDto {
    fn from(a: &AttachmentInfo) -> Self {
        AttachmentDto {
            index: a.index,
            filename: a.filename.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
            content_id: a.content_id.clone(),
            inline: a.inline,
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
    #[schema(schema_with = formats::age)]
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
    /// The message's tags: from its `X-Tags` header and set by the operator.
    pub tags: Vec<String>,
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
            tags: m.tags.clone(),
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

/// The body of `PUT /api/v1/admin/messages/{id}/tags`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagsRequest {
    #[schema(schema_with = formats::tag_list)]
    pub tags: Vec<String>,
}

/// A message's tags, as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagsDto {
    pub tags: Vec<String>,
}

/// A tag in use.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagDto {
    /// As first stored (tags differing only in letter case are one tag).
    pub name: String,
    /// How many messages carry it.
    pub messages: u64,
}

/// The body of `PUT /api/v1/admin/tags/{tag}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameTagRequest {
    /// The new name; where a message already has it, the two become one.
    #[schema(schema_with = formats::tag)]
    pub name: String,
}

/// How many messages a tag change touched.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagChangeDto {
    /// The messages that carried the tag.
    pub messages: u64,
}

/// Every tag in use, in alphabetical order of their lower-cased names.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagListDto {
    pub tags: Vec<TagDto>,
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
///
/// The schema gives the form of each field; which fields a rule needs and allows depends on
/// its stage and action (a reply needs a code, a delay its `delay`, a throttle is for `data`
/// only, a disconnect for SMTP stages only, an enhanced code's class is its code's), which the
/// server checks, answering `invalid_rule` with the field at fault.
// Only a schema: the server reads the service's `RuleJson`.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum ChaosRuleRequest {
    Text(ChaosRuleText),
    Fields(ChaosRuleFields),
}

/// A fault-injection rule as text.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChaosRuleText {
    #[schema(schema_with = formats::rule_text)]
    pub rule: String,
    /// Ignored.
    pub id: Option<u64>,
    /// Ignored.
    pub fired: Option<u64>,
}

/// A fault-injection rule as fields.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChaosRuleFields {
    pub stage: Stage,
    #[schema(inline)]
    pub action: Option<ChaosAction>,
    #[serde(flatten)]
    pub parts: ChaosRuleParts,
    /// Ignored.
    pub id: Option<u64>,
    /// Ignored.
    pub fired: Option<u64>,
}

/// What a fault-injection rule does when it fires: `reply` with `code` (the action when absent
/// and `code` or `max_per_minute` is given); `delay`, then answer as usual; `disconnect`
/// without a reply (SMTP stages); `throttle` DATA to `bytes_per_second` (`data` only).
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChaosAction {
    Reply,
    Delay,
    Disconnect,
    Throttle,
}

/// The fields of a fault-injection rule beside its stage and action, each absent (or null)
/// when it does not apply.
#[derive(ToSchema)]
pub struct ChaosRuleParts {
    /// An SMTP 4xx/5xx reply code (the second digit at most 5), or for `api_send` an HTTP
    /// 4xx/5xx status with the error `injected_fault`.
    pub code: Option<u16>,
    /// The enhanced status code of an SMTP reply, such as `4.3.0`; its class must match the
    /// code's.
    pub enhanced_code: Option<String>,
    /// The reply text: one line of at most 200 bytes.
    pub text: Option<String>,
    /// How long to wait, such as `2s`; at most 10 minutes.
    pub delay: Option<String>,
    /// At least 1.
    pub bytes_per_second: Option<u64>,
    /// Fire with this probability, in percent. At most one of `probability`, `next` and
    /// `max_per_minute`; with none the rule fires every time.
    #[schema(minimum = 0, maximum = 100)]
    pub probability: Option<f64>,
    /// Fire for exactly the next this many matching events, then never.
    #[schema(minimum = 1)]
    pub next: Option<u64>,
    /// Fire only above this many matching events within any minute; with no `code`, the reply
    /// is `421 4.7.0` (HTTP: 429).
    pub max_per_minute: Option<u64>,
    #[schema(schema_with = formats::sender_glob)]
    pub from: Option<String>,
    #[schema(schema_with = formats::recipient_glob)]
    pub to: Option<String>,
    /// The seed of the probability draws: the same seed gives the same sequence of hits and
    /// misses.
    pub seed: Option<u64>,
}

/// The schemas of strings with rules the server enforces: what the service checks, said where
/// a client can see it (and schemathesis can test it), each with its description. Patterns are
/// in the dialect common to ECMA 262, Rust's and Python's regular expressions.
pub(super) mod formats {
    use serde_json::{Value, json};
    use utoipa::openapi::extensions::Extensions;
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    use utoipa::openapi::{Object, SchemaFormat};

    use crate::service::address::MAX_LEN as MAX_ADDRESS;
    use crate::service::chaos::Stage;
    use crate::service::mail::{MAX_MAILBOX_NAME, MAX_SUBJECT};

    /// Unicode's control characters (category Cc), which names may not hold.
    const CONTROL: &str = r"\u0000-\u001F\u007F-\u009F";
    /// What the server trims from both ends of a name (Unicode White_Space).
    const SPACE: &str =
        r"\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

    /// `o` with a JSON Schema keyword utoipa's model has no field for (`not`, or `anyOf` beside
    /// `properties`): its extensions are written into the schema as they are.
    pub fn with_keyword(mut o: Object, keyword: &str, value: Value) -> Object {
        o.extensions
            .get_or_insert_with(Extensions::default)
            .insert(keyword.into(), value);
        o
    }

    fn string(pattern: String, description: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
            .description(Some(description))
    }

    /// `o`, or null.
    fn nullable(mut o: Object) -> Object {
        o.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
        o
    }

    /// `name` in any letter case, as a pattern.
    fn any_case(name: &str) -> String {
        name.chars()
            .map(|c| match (c.to_ascii_lowercase(), c.to_ascii_uppercase()) {
                (l, u) if l != u => format!("[{u}{l}]"),
                _ if c == '-' => r"\-".to_owned(),
                _ => c.to_string(),
            })
            .collect()
    }

    /// A display name: any spaces around at most 100 characters with no control character.
    pub fn display_name() -> Object {
        string(
            format!("^[{SPACE}]*[^{CONTROL}]{{0,100}}[{SPACE}]*$"),
            "Trimmed; at most 100 characters, no control characters.",
        )
        .build()
    }

    /// [`display_name`], or null: none.
    pub fn optional_display_name() -> Object {
        let mut o = nullable(display_name());
        o.default = Some(json!(""));
        o
    }

    /// A new mailbox's name: any spaces around 1 to 64 characters with no control character,
    /// the first and last neither spaces nor `/`, and no level between two `/` blank.
    pub fn mailbox_name() -> Object {
        let inner = format!("[^{CONTROL}]");
        let edge = format!("[^/{CONTROL}{SPACE}]");
        let between = MAX_MAILBOX_NAME - 2;
        let o = string(
            format!("^[{SPACE}]*{edge}(?:{inner}{{0,{between}}}{edge})?[{SPACE}]*$"),
            "Trimmed, then 1 to 64 characters with no control characters; `/` separates levels \
             (`Projects/2026`), none of them blank; unique per user regardless of letter case, \
             system names included.",
        )
        .build();
        with_keyword(o, "not", json!({"pattern": format!("/[{SPACE}]*/")}))
    }

    /// A tag: any spaces around 1 to 100 characters with no comma and no control character,
    /// the first and last not spaces.
    pub fn tag() -> Object {
        let inner = format!("[^,{CONTROL}]");
        let edge = format!("[^,{CONTROL}{SPACE}]");
        let between = crate::service::tags::MAX_TAG_CHARS - 2;
        string(
            format!("^[{SPACE}]*{edge}(?:{inner}{{0,{between}}}{edge})?[{SPACE}]*$"),
            "Trimmed, then 1 to 100 characters with no comma and no control characters; tags \
             differing only in letter case are one tag.",
        )
        .build()
    }

    /// A message's new tags: at most 50.
    pub fn tag_list() -> utoipa::openapi::schema::Array {
        ArrayBuilder::new()
            .items(tag())
            .max_items(Some(crate::service::tags::MAX_TAGS))
            .description(Some(
                "Replaces the message's tags; empty removes them all. A tag already in use \
                 keeps its spelling.",
            ))
            .build()
    }

    /// The name of a mailbox of the user's own: not a system mailbox's, in any letter case,
    /// with any spaces around.
    pub fn custom_mailbox() -> Object {
        let system = ["inbox", "sent", "archive", "trash"]
            .map(any_case)
            .join("|");
        let system = json!({"pattern": format!("^[{SPACE}]*(?:{system})[{SPACE}]*$")});
        let o = ObjectBuilder::new().schema_type(Type::String).build();
        with_keyword(o, "not", system)
    }

    /// Plain addresses.
    pub fn addresses() -> ArrayBuilder {
        ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::Custom("email".into())))
                    .max_length(Some(MAX_ADDRESS)),
            )
            .description(Some(
                "Plain addresses (`bob@example.test`, no display names), each trimmed and checked \
                 like an account's email.",
            ))
            .default(Some(json!([])))
    }

    /// The headers fakemail writes itself, which a send may not set.
    const RESERVED_HEADERS: [&str; 13] = [
        "From",
        "To",
        "Cc",
        "Bcc",
        "Date",
        "Message-ID",
        "Subject",
        "Reply-To",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Sender",
        "Received",
    ];

    /// Extra headers of a send: names of 1 to 76 printable ASCII characters without `:`, none of
    /// those fakemail writes, values of at most 998 characters without CR or LF.
    pub fn headers() -> Object {
        let reserved: Vec<String> = RESERVED_HEADERS.iter().map(|h| any_case(h)).collect();
        let reserved = json!({"pattern": format!("^(?:{})$", reserved.join("|"))});
        let names = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[!-9;-~]{1,76}$"))
            .build();
        let value = ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX_SUBJECT))
            .pattern(Some(r"^[^\r\n]*$"));
        let mut o = ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(value))
            .description(Some(format!(
                "Extra headers: names of 1 to 76 printable ASCII characters without `:`, values \
                 of at most 998 characters with no CR or LF. The headers fakemail writes itself \
                 ({}) are refused.",
                RESERVED_HEADERS.map(|h| format!("`{h}`")).join(", ")
            )))
            .build();
        o.property_names = Some(Box::new(with_keyword(names, "not", reserved).into()));
        o
    }

    /// The units of a duration in whole seconds, as humantime spells them, with the seconds
    /// in one of each.
    const WHOLE_UNITS: [(&str, u64); 7] = [
        ("seconds|second|secs|sec|s", 1),
        ("minutes|minute|mins|min|m", 60),
        ("hours|hour|hrs|hr|h", 3600),
        ("days|day|d", 86_400),
        ("weeks|week|wks|wk|w", 604_800),
        ("months|month|M", 2_630_016),
        ("years|year|yrs|yr|y", 31_557_600),
    ];

    /// The most decimals of an age's fraction the pattern allows: with more, humantime
    /// overflows for some units.
    const MAX_DECIMALS: usize = 8;

    /// The decimals (`.5`) of a number of units, `seconds` each, that come to whole seconds,
    /// as humantime reads them. `x` units are whole seconds when `x` is a multiple of
    /// `1 / (2^a 5^b)`, where `2^a 5^b` is the part of `seconds` that divides a power of ten:
    /// that has `max(a, b)` decimals, of which the first `min(a, b)` are free and the others
    /// a multiple of `5^(a-b)` (or `2^(b-a)`), then zeros.
    fn whole_decimals(seconds: u64) -> String {
        let power = |mut n: u64, p: u64| {
            let mut k = 0u32;
            while n.is_multiple_of(p) {
                n /= p;
                k += 1;
            }
            k
        };
        let (a, b) = (power(seconds, 2), power(seconds, 5));
        let (free, tail) = (a.min(b) as usize, a.abs_diff(b));
        let step = 10u64.pow(tail) / (2u64.pow(a - a.min(b)) * 5u64.pow(b - a.min(b)));
        let mut branches = vec![if free == 0 {
            format!("0{{1,{MAX_DECIMALS}}}")
        } else {
            format!("[0-9]{{1,{free}}}0{{0,{}}}", MAX_DECIMALS - free)
        }];
        for t in (step..10u64.pow(tail)).step_by(step as usize) {
            let digits = format!("{t:0width$}", width = tail as usize);
            let digits = digits.trim_end_matches('0');
            let prefix = if free == 0 {
                String::new()
            } else {
                format!("[0-9]{{{free}}}")
            };
            let zeros = MAX_DECIMALS - free - digits.len();
            branches.push(format!("{prefix}{digits}0{{0,{zeros}}}"));
        }
        format!("\\.(?:{})", branches.join("|"))
    }

    /// An age in whole seconds: `0`, or numbers with units (`90s`, `1h 30m`, `1.5m`, `7d`),
    /// each part a whole number of seconds.
    pub fn age() -> Object {
        let units = WHOLE_UNITS
            .iter()
            .map(|(names, seconds)| {
                format!("[0-9]{{1,9}}(?:{})? ?(?:{names})", whole_decimals(*seconds))
            })
            .collect::<Vec<_>>()
            .join("|");
        let part = format!("(?:{units})");
        string(
            format!("^(?:0|{part}(?: ?{part})*)$"),
            "A duration in whole seconds such as `30s`, `12h`, `1h 30m`, `1.5m` or `7d`, or \
             `0`: each part a whole number of seconds, with at most 8 decimals.",
        )
        .build()
    }

    /// A fault-injection rule's text: a stage first.
    pub fn rule_text() -> Object {
        let stages = Stage::ALL.map(Stage::name).join("|");
        string(
            format!("^[{SPACE}]*(?:{stages})[{SPACE}]*(?::[\\s\\S]*)?$"),
            "The rule's text form, `STAGE:PART[:PART...]`: a stage, then any of a reply code \
             (`451`), an enhanced code (`4.3.0`), `delay=DURATION`, `disconnect`, \
             `throttle=BYTES_PER_SECOND`, `N%`, `next=N`, `max_per_minute=N`, `from=GLOB`, \
             `to=GLOB`, `seed=N`, and last `text=TEXT`.",
        )
        .build()
    }

    fn glob(description: &str) -> Object {
        let o = string(format!("^[^{CONTROL}]+$"), description).max_length(Some(320));
        nullable(o.build())
    }

    /// The sender glob of a fault-injection rule.
    pub fn sender_glob() -> Object {
        glob(
            "Only when the envelope sender matches this glob (`*` any run, `?` one character, any \
             letter case) of 1 to 320 bytes on one line; at the stages that have a sender \
             (`mail`, `rcpt`, `data`, `api_send`).",
        )
    }

    /// The recipient glob of a fault-injection rule.
    pub fn recipient_glob() -> Object {
        glob(
            "Only when a recipient matches this glob: at `rcpt` the one being added, at `data` \
             and `api_send` any of them. Of 1 to 320 bytes on one line, as `from`.",
        )
    }
}
