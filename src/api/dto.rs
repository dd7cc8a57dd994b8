//! JSON shapes of the REST API. Requests reject unknown fields, so a misspelt field is an
//! error rather than a silent no-op.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::service::chaos::{ChaosStats, RuleJson, Stage};
use crate::service::mail::{Compose, FullMessage, MailboxInfo, MessagePatch, MessageView, Page};
use crate::service::mime::{AttachmentInfo, Content};
use crate::service::operator::{AdminMessage, AdminPage, StatsSnapshot};
use crate::service::{Address, LoginOutcome, Message, User};

/// `POST /api/v1/auth/register`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `POST /api/v1/auth/login`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// `PATCH /api/v1/me`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    pub display_name: String,
}

/// `POST /api/v1/me/password`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// `DELETE /api/v1/me`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccountRequest {
    pub password: String,
}

/// A user: never a hash, never a token.
#[derive(Debug, Serialize)]
pub struct UserDto {
    pub id: String,
    pub email: String,
    pub display_name: String,
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

/// The answer to a successful login.
#[derive(Debug, Serialize)]
pub struct LoginResponse {
    pub token: String,
    pub token_type: &'static str,
    pub expires_at: String,
    pub user: UserDto,
}

impl From<LoginOutcome> for LoginResponse {
    fn from(o: LoginOutcome) -> Self {
        LoginResponse {
            token: o.token,
            token_type: "Bearer",
            expires_at: o.expires_at.to_rfc3339(),
            user: UserDto::from(&o.user),
        }
    }
}

/// `GET /healthz` (`{"status":"ok"}`) and `GET /readyz` (`{"status":"ready"}`)
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
}

/// `POST /api/v1/messages`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    #[serde(default)]
    pub bcc: Vec<String>,
    pub subject: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
    #[serde(default)]
    pub reply_to: Option<String>,
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

/// `PATCH /api/v1/messages/{id}`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchMessageRequest {
    #[serde(default)]
    pub read: Option<bool>,
    #[serde(default)]
    pub starred: Option<bool>,
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

/// `POST /api/v1/mailboxes`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateMailboxRequest {
    pub name: String,
}

/// A mailbox with its counts.
#[derive(Debug, Serialize)]
pub struct MailboxDto {
    pub name: String,
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
#[derive(Debug, Serialize)]
pub struct AddressDto {
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

/// A message in a listing.
#[derive(Debug, Serialize)]
pub struct SummaryDto {
    pub id: String,
    pub mailbox: String,
    pub from: AddressDto,
    pub to: Vec<AddressDto>,
    pub cc: Vec<AddressDto>,
    pub subject: String,
    pub snippet: String,
    pub received_at: String,
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

/// A whole message: the summary plus bodies and headers.
#[derive(Debug, Serialize)]
pub struct MessageDto {
    #[serde(flatten)]
    pub summary: SummaryDto,
    pub message_id: Option<String>,
    pub reply_to: Vec<AddressDto>,
    /// Only on the sender's copy.
    #[serde(skip_serializing_if = "Option::is_none")]
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
#[derive(Debug, Serialize)]
pub struct BodyDto {
    /// The `Date` header in RFC 3339 UTC, or null.
    pub date: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub headers: Vec<(String, String)>,
    pub attachments: Vec<AttachmentDto>,
    pub links: Vec<String>,
    pub codes: Vec<String>,
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
#[derive(Debug, Serialize)]
pub struct AttachmentDto {
    pub index: usize,
    pub filename: Option<String>,
    pub content_type: String,
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

/// A page of a listing.
#[derive(Debug, Serialize)]
pub struct PageDto {
    pub messages: Vec<SummaryDto>,
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

/// `POST /api/v1/admin/purge`
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// A duration such as `7d`.
    pub older_than: String,
    #[serde(default)]
    pub dry_run: bool,
}

/// What a purge removed (or, for a dry run, would remove).
#[derive(Debug, Serialize, Deserialize)]
pub struct PurgeResponse {
    pub deleted: u64,
    pub bytes: u64,
    pub dry_run: bool,
}

/// A message in the operator listing: one per message, whoever holds copies of it.
#[derive(Debug, Serialize)]
pub struct AdminSummaryDto {
    /// The message id (not a copy's).
    pub id: String,
    pub from: AddressDto,
    pub to: Vec<AddressDto>,
    pub cc: Vec<AddressDto>,
    pub subject: String,
    pub snippet: String,
    pub received_at: String,
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

/// A whole message in the operator view.
#[derive(Debug, Serialize)]
pub struct AdminMessageDto {
    #[serde(flatten)]
    pub summary: AdminSummaryDto,
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
#[derive(Debug, Serialize)]
pub struct AdminPageDto {
    pub messages: Vec<AdminSummaryDto>,
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

/// `GET /api/v1/admin/stats`
#[derive(Debug, Serialize)]
pub struct StatsDto {
    pub messages: u64,
    pub bytes: u64,
    pub users: u64,
    pub uptime_seconds: u64,
    pub smtp: SmtpStatsDto,
    pub chaos: ChaosStatsDto,
}

/// The SMTP counters of [`StatsDto`].
#[derive(Debug, Serialize)]
pub struct SmtpStatsDto {
    pub connections: u64,
    pub accepted: u64,
    pub rejected: u64,
}

/// The fault-injection counters of [`StatsDto`]: whether `--chaos` is on, the rules set now,
/// and the faults injected since start-up, in all and by stage.
#[derive(Debug, Serialize)]
pub struct ChaosStatsDto {
    pub enabled: bool,
    pub rules: usize,
    pub faults: u64,
    pub by_stage: ChaosStagesDto,
}

/// Injected faults by stage, in dialogue order.
#[derive(Debug, Serialize)]
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

/// The answer of a wait: the message, and the cursor of its place, to pass as `after` to wait
/// for the next one.
#[derive(Debug, Serialize)]
pub struct WaitedDto<T> {
    #[serde(flatten)]
    pub message: T,
    pub cursor: String,
}

/// `GET /api/v1/admin/chaos`: the fault-injection rules in the order they are tried.
#[derive(Debug, Serialize)]
pub struct ChaosView {
    pub enabled: bool,
    /// Faults injected since start-up.
    pub faults: u64,
    pub rules: Vec<RuleJson>,
}

/// `PUT /api/v1/admin/chaos`: the new rule list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosPut {
    pub rules: Vec<RuleJson>,
}
