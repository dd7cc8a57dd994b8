//! The only place that chooses an HTTP status: domain [`Error`]s, the API's own input errors
//! ([`ApiError`]) and warp's built-in rejections all become
//! `{"error":{"code":"<snake_case>","message":"...","field"?:"..."}}`.
//!
//! A code always comes with the same status: a request that breaks a rule is a 422 with an
//! `invalid_*` code (`invalid_header`, `invalid_query`, ...), one that cannot be parsed at all a
//! 400 with a `malformed_*` code (`malformed_json`, `malformed_query`, `malformed_header`).

use std::convert::Infallible;

use serde::Serialize;
use tracing::error;
use utoipa::ToSchema;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;
use warp::{Rejection, Reply};

use crate::error::Error;

/// An error the HTTP layer itself finds (bad body, wrong method), ready to send.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
    /// Methods for an `Allow` header (405).
    pub allow: Option<&'static str>,
}

impl warp::reject::Reject for ApiError {}

/// The body of every non-2xx answer.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct Envelope<'a> {
    #[schema(inline)]
    error: Body<'a>,
}

/// What went wrong.
#[derive(Serialize, ToSchema)]
struct Body<'a> {
    #[schema(schema_with = code_schema)]
    code: &'a str,
    /// For humans; may change.
    message: &'a str,
    /// The input at fault, when one is: `password`, `to[1]`, `headers.X-Campaign`,
    /// `rules[2].code`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    field: Option<&'a str>,
}

/// Every error code the API answers with, with its status and when: the one list of them. The
/// OpenAPI document gives it as the `code` of its `Error` schema, and a test checks that it
/// holds exactly the codes the source gives.
pub const CODES: &[(&str, &str, &str)] = &[
    (
        "400",
        "malformed_json",
        "the body is not valid JSON (or not UTF-8)",
    ),
    (
        "400",
        "body_read_error",
        "the body could not be read (connection trouble)",
    ),
    (
        "400",
        "malformed_query",
        "the query string cannot be read at all (a value that can be read but is wrong is a 422 \
         `invalid_query`)",
    ),
    (
        "400",
        "missing_header",
        "a header the endpoint needs is missing (the `Authorization` header of a Bearer \
         endpoint is a 401 `missing_token`)",
    ),
    (
        "400",
        "malformed_header",
        "a header the endpoint reads cannot be read at all (a header value that breaks a rule \
         is a 422 `invalid_header`)",
    ),
    (
        "401",
        "missing_token",
        "no `Authorization: Bearer <token>` header (nor `fakemail_session` cookie) on a user \
         endpoint",
    ),
    (
        "401",
        "invalid_token",
        "the token (bearer or cookie) is unknown, expired, logged out or revoked",
    ),
    (
        "401",
        "invalid_credentials",
        "wrong email or password (the same for both)",
    ),
    (
        "401",
        "admin_token_required",
        "an admin endpoint (`/api/v1/admin/...`) without the admin token, or with a wrong one \
         (a user's token too; also an `Authorization` header that is not valid header text), \
         or with a `fakemail_admin` cookie that is no open operator session",
    ),
    (
        "403",
        "chaos_disabled",
        "a chaos endpoint on a server started without `--chaos`",
    ),
    (
        "403",
        "csrf",
        "a request authenticated by a session cookie that is not a GET or HEAD and lacks \
         `X-Requested-With: fakemail`, or whose `Sec-Fetch-Site` is neither `same-origin` nor \
         `none`; also a `POST` of a session (`/api/v1/auth/session`, `/api/v1/admin/session`) \
         without that header",
    ),
    (
        "404",
        "no_html",
        "the HTML of a message that has no HTML body",
    ),
    (
        "404",
        "not_found",
        "no such endpoint; or no such message, attachment or mailbox among the caller's own \
         (for the operator, among all)",
    ),
    (
        "405",
        "method_not_allowed",
        "the path exists but not with this method; `Allow` lists the methods",
    ),
    (
        "408",
        "timeout",
        "no matching message arrived within a wait's `timeout`",
    ),
    (
        "409",
        "email_taken",
        "an account with this address already exists",
    ),
    (
        "409",
        "mailbox_exists",
        "the user has a mailbox of this name in some letter case, or it is a system mailbox's",
    ),
    (
        "409",
        "mailbox_not_empty",
        "a mailbox to delete still holds messages",
    ),
    (
        "413",
        "payload_too_large",
        "the body is larger than `--max-body-size` (for a send, `--max-message-size` plus \
         `--max-body-size`)",
    ),
    (
        "413",
        "message_too_large",
        "the message built from a send is larger than `--max-message-size`",
    ),
    (
        "415",
        "unsupported_media_type",
        "the body is not sent as `application/json`",
    ),
    (
        "422",
        "invalid_body",
        "valid JSON of the wrong shape: a missing, unknown or mistyped field (`field` names it)",
    ),
    (
        "422",
        "invalid_email",
        "the email address is not acceptable",
    ),
    (
        "422",
        "weak_password",
        "the password breaks a rule; the message names the rule",
    ),
    (
        "422",
        "invalid_display_name",
        "the display name is too long or has control characters",
    ),
    (
        "422",
        "no_recipients",
        "a send with no address in `to`, `cc` and `bcc` (field `to`)",
    ),
    (
        "422",
        "too_many_recipients",
        "a send with more than `--max-recipients` addresses in all (field `to`)",
    ),
    (
        "422",
        "invalid_address",
        "a recipient or `reply_to` is not an acceptable address (field `to[0]`, `cc[1]`, \
         `bcc[2]`, `reply_to`)",
    ),
    (
        "422",
        "invalid_header",
        "a subject or header value with CR or LF or over 998 characters, a bad header name, or \
         a header fakemail sets itself (field `subject` or `headers.<name>`)",
    ),
    (
        "422",
        "invalid_mailbox_name",
        "a mailbox name that is empty, over 64 characters, or has `/` or control characters \
         (field `name`)",
    ),
    (
        "422",
        "system_mailbox",
        "deleting `inbox`, `sent`, `archive` or `trash` (field `name`)",
    ),
    (
        "422",
        "unknown_mailbox",
        "`PATCH` moves a message to a mailbox that does not exist (field `mailbox`)",
    ),
    (
        "422",
        "invalid_limit",
        "`limit` is not a whole number from 1 to 500 (field `limit`)",
    ),
    (
        "422",
        "invalid_cursor",
        "`cursor` is not in the form of the cursors the server gives out (field `cursor`)",
    ),
    (
        "422",
        "invalid_query",
        "`unread`, `starred` or `permanent` is not `true`, `false`, `1` or `0`; or an operator \
         listing or a wait has a parameter it does not take (field names it)",
    ),
    (
        "422",
        "invalid_search",
        "`q` is not a query of the search grammar: an unknown `key:`, an empty value, a bad size \
         or date, an unbalanced quote (field `q`; the message names the term)",
    ),
    (
        "422",
        "invalid_tag",
        "a tag is empty, over 100 characters, holds a comma or a control character, or a \
         message would carry over 50 (field names it)",
    ),
    (
        "422",
        "invalid_duration",
        "the admin purge's `older_than` is not a duration in whole seconds such as `7d` (field \
         `older_than`)",
    ),
    (
        "422",
        "invalid_timeout",
        "a wait's `timeout` is not a duration or whole seconds, or is over 5 minutes (field \
         `timeout`)",
    ),
    (
        "422",
        "invalid_after",
        "a wait's `after` is neither a cursor the server gave out nor an RFC 3339 time (field \
         `after`)",
    ),
    (
        "422",
        "invalid_rule",
        "a fault-injection rule that breaks the grammar (field `stage`, `code`, `probability`, \
         ...; in a `PUT`, `rules[N].field`)",
    ),
    (
        "4xx, 5xx",
        "injected_fault",
        "a fault-injection rule fired at `api_send` with this status",
    ),
    (
        "429",
        "too_many_attempts",
        "too many failed logins for this address; see `Retry-After` (seconds)",
    ),
    (
        "500",
        "internal_error",
        "a bug or a storage failure; the details are in the server log, never in the answer",
    ),
    (
        "503",
        "not_ready",
        "`GET /readyz` while the server starts or shuts down (see `Retry-After`, seconds); a \
         wait open when the server shuts down",
    ),
    (
        "507",
        "storage_full",
        "a send, or `GET /readyz`, while new mail is refused: the data dir's disk has less \
         free space than `--min-free-space`, or a write to the store failed (a full or failing \
         disk; then until a restart)",
    ),
];

/// The schema of an error's `code`: an enum of [`CODES`], with a table of them as its
/// description.
fn code_schema() -> utoipa::openapi::Object {
    use std::fmt::Write as _;
    let mut description = String::from(
        "Stable, for programs; a code always comes with the same status, but for \
         `injected_fault`, whose status the fault-injection rule gives.\n\n\
         | Status | Code | When |\n|---|---|---|\n",
    );
    for (status, code, when) in CODES {
        let _ = writeln!(description, "| {status} | `{code}` | {when} |");
    }
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(CODES.iter().map(|(_, code, _)| *code)))
        .description(Some(description))
        .build()
}
// warp turns any `Reject` into a `Rejection` with `From`, so handlers use `?` on both.
impl warp::reject::Reject for Error {}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
            allow: None,
        }
    }

    /// Adds the name of the offending input.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into()).filter(|f: &String| !f.is_empty() && f != ".");
        self
    }

    /// The response: JSON envelope plus `Retry-After`/`Allow` where they apply.
    pub fn into_response(self) -> Response {
        let body = Envelope {
            error: Body {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        };
        let mut res =
            warp::reply::with_status(warp::reply::json(&body), self.status).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(allow) = self.allow {
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        res
    }
}

impl From<&Error> for ApiError {
    /// The one mapping of domain errors to HTTP.
    fn from(e: &Error) -> Self {
        use StatusCode as S;
        match e {
            Error::Invalid {
                code,
                field,
                message,
            } => {
                let mut a = ApiError::new(S::UNPROCESSABLE_ENTITY, code, message.clone());
                a.field = field.clone();
                a
            }
            Error::EmailTaken => ApiError::new(S::CONFLICT, "email_taken", e.to_string()),
            Error::InvalidCredentials => {
                ApiError::new(S::UNAUTHORIZED, "invalid_credentials", e.to_string())
            }
            Error::TooManyAttempts { retry_after } => {
                let secs = retry_after.as_secs().max(1);
                let mut a = ApiError::new(
                    S::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    format!(
                        "too many failed login attempts for this account; try again in {secs} seconds"
                    ),
                );
                a.retry_after = Some(secs);
                a
            }
            Error::MissingToken => ApiError::new(S::UNAUTHORIZED, "missing_token", e.to_string()),
            Error::InvalidToken => ApiError::new(S::UNAUTHORIZED, "invalid_token", e.to_string()),
            Error::MailboxExists => ApiError::new(S::CONFLICT, "mailbox_exists", e.to_string()),
            Error::MailboxNotEmpty => {
                ApiError::new(S::CONFLICT, "mailbox_not_empty", e.to_string())
            }
            Error::MessageTooLarge { .. } => {
                ApiError::new(S::PAYLOAD_TOO_LARGE, "message_too_large", e.to_string())
            }
            Error::AdminOnly => {
                ApiError::new(S::UNAUTHORIZED, "admin_token_required", e.to_string())
            }
            Error::ChaosDisabled => ApiError::new(S::FORBIDDEN, "chaos_disabled", e.to_string()),
            // The rule's code is the status (rules at `api_send` are checked to be HTTP 4xx
            // or 5xx).
            Error::InjectedFault(reply) => ApiError::new(
                S::from_u16(reply.code).unwrap_or(S::SERVICE_UNAVAILABLE),
                "injected_fault",
                e.to_string(),
            ),
            Error::NotFound(_) => ApiError::new(S::NOT_FOUND, "not_found", e.to_string()),
            Error::NoHtml => ApiError::new(S::NOT_FOUND, "no_html", e.to_string()),
            Error::WaitTimeout { .. } => {
                ApiError::new(S::REQUEST_TIMEOUT, "timeout", e.to_string())
            }
            Error::NotReady => {
                let mut a = ApiError::new(S::SERVICE_UNAVAILABLE, "not_ready", e.to_string());
                a.retry_after = Some(1);
                a
            }
            // Logged where it was found (the free-space guard), not at every refusal.
            Error::StorageFull => {
                ApiError::new(S::INSUFFICIENT_STORAGE, "storage_full", e.to_string())
            }
            Error::Store(_) | Error::Internal(_) => {
                error!(error = %e, "internal error while handling a request");
                ApiError::new(
                    S::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "an internal error occurred; the server log has the details",
                )
            }
        }
    }
}

/// Turns any rejection into the JSON envelope. Our own errors first, then warp's.
pub async fn recover(r: Rejection) -> Result<Response, Infallible> {
    Ok(to_api_error(&r).into_response())
}

fn to_api_error(r: &Rejection) -> ApiError {
    use StatusCode as S;
    if let Some(e) = r.find::<Error>() {
        return ApiError::from(e);
    }
    if let Some(e) = r.find::<ApiError>() {
        return e.clone();
    }
    if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        return ApiError::new(
            S::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        );
    }
    if r.find::<warp::reject::UnsupportedMediaType>().is_some() {
        return ApiError::new(
            S::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        );
    }
    // Syntax, not rules: `invalid_query` and `invalid_header` are the 422s of values that
    // parse but break a rule.
    if let Some(e) = r.find::<warp::reject::InvalidQuery>() {
        return ApiError::new(
            S::BAD_REQUEST,
            "malformed_query",
            format!("the query string cannot be read: {e}"),
        );
    }
    if let Some(e) = r.find::<warp::reject::InvalidHeader>() {
        return ApiError::new(S::BAD_REQUEST, "malformed_header", e.to_string());
    }
    if let Some(e) = r.find::<warp::reject::MissingHeader>() {
        return ApiError::new(S::BAD_REQUEST, "missing_header", e.to_string());
    }
    if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        return ApiError::new(
            S::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this method is not allowed on this path",
        );
    }
    if r.is_not_found() {
        return ApiError::new(
            S::NOT_FOUND,
            "not_found",
            "there is no such endpoint; GET /api/v1/openapi.json lists them all",
        );
    }
    error!(rejection = ?r, "unhandled rejection");
    ApiError::new(
        S::INTERNAL_SERVER_ERROR,
        "internal_error",
        "an internal error occurred; the server log has the details",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::chaos::{InjectedReply, Stage};
    use std::time::Duration;

    #[test]
    fn domain_errors_map_to_statuses_and_codes() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (
                Error::invalid("invalid_email", "email", "x"),
                422,
                "invalid_email",
            ),
            (Error::EmailTaken, 409, "email_taken"),
            (Error::InvalidCredentials, 401, "invalid_credentials"),
            (
                Error::TooManyAttempts {
                    retry_after: Duration::from_secs(90),
                },
                429,
                "too_many_attempts",
            ),
            (Error::MissingToken, 401, "missing_token"),
            (Error::InvalidToken, 401, "invalid_token"),
            (Error::NotFound("message"), 404, "not_found"),
            (Error::NotReady, 503, "not_ready"),
            (Error::StorageFull, 507, "storage_full"),
            (
                Error::WaitTimeout {
                    waited: Duration::from_secs(30),
                },
                408,
                "timeout",
            ),
            (
                Error::Internal("secret detail".into()),
                500,
                "internal_error",
            ),
        ];
        for (e, status, code) in cases {
            let a = ApiError::from(&e);
            assert_eq!((a.status.as_u16(), a.code), (status, code), "{e:?}");
            assert!(
                !a.message.contains("secret"),
                "500 must not leak: {}",
                a.message
            );
        }
        let a = ApiError::from(&Error::TooManyAttempts {
            retry_after: Duration::from_secs(90),
        });
        assert_eq!(a.retry_after, Some(90));
    }

    #[test]
    fn an_injected_fault_answers_with_the_rule_code_as_status() {
        let fault = |code, text: Option<&str>| {
            ApiError::from(&Error::InjectedFault(InjectedReply {
                rule: 7,
                stage: Stage::ApiSend,
                code,
                enhanced: None,
                text: text.map(str::to_owned),
            }))
        };
        let a = fault(429, Some("slow down"));
        assert_eq!(
            (a.status.as_u16(), a.code, a.message.as_str()),
            (429, "injected_fault", "slow down")
        );
        let a = fault(503, None);
        assert_eq!((a.status.as_u16(), a.code), (503, "injected_fault"));
        assert_eq!(
            a.message,
            "fault injected by chaos rule 7; the message was not sent"
        );
    }

    #[tokio::test]
    async fn unparsable_queries_and_headers_are_400s_with_their_own_codes() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Query {
            n: u32,
        }
        let answer = |r: Rejection| {
            let a = to_api_error(&r);
            (a.status.as_u16(), a.code)
        };
        let query = warp::query::<Query>();
        let r = warp::test::request().path("/?n=ten").filter(&query).await;
        assert_eq!(answer(r.unwrap_err()), (400, "malformed_query"));
        let header = warp::header::<u32>("x-number");
        let r = warp::test::request()
            .header("x-number", "ten")
            .filter(&header)
            .await;
        assert_eq!(answer(r.unwrap_err()), (400, "malformed_header"));
        // The same words as rule breaches are 422s.
        for code in ["invalid_query", "invalid_header"] {
            let a = ApiError::from(&Error::invalid(code, "x", "breaks a rule"));
            assert_eq!((a.status.as_u16(), a.code), (422, code));
        }
    }
}
