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
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: Body<'a>,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            code: &'a str,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            field: Option<&'a str>,
        }
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
            Error::WaitTimeout { .. } => {
                ApiError::new(S::REQUEST_TIMEOUT, "timeout", e.to_string())
            }
            Error::NotReady => {
                let mut a = ApiError::new(S::SERVICE_UNAVAILABLE, "not_ready", e.to_string());
                a.retry_after = Some(1);
                a
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
