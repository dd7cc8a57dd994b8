//! The JSON request body filter: content type, size limit (with or without a Content-Length),
//! and decoding, each failure a precise [`ApiError`] (415, 413, 400 bad JSON, 422 wrong shape).

use bytes::{Buf, BufMut, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use warp::http::{HeaderMap, StatusCode, header};
use warp::{Filter, Rejection};

use super::rejection::ApiError;

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body is larger than the limit of {limit} bytes"),
    )
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Decodes JSON, telling syntax errors (400) from type and shape errors (422, with the path
/// of the offending field).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut *de);
    let value = result.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() {
            let msg = inner.to_string();
            // serde names a missing field only in its message.
            let field = msg
                .strip_prefix("missing field `")
                .and_then(|r| r.split('`').next())
                .map(str::to_owned)
                .unwrap_or(path);
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("the JSON body does not have the expected shape: {msg}"),
            )
            .with_field(field)
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the request body is not valid JSON: {inner}"),
            )
        }
    })?;
    // serde_path_to_error stops after the value; only `end` rejects what follows it.
    de.end().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    Ok(value)
}

/// A JSON body of at most `limit` bytes, decoded into `T`.
pub fn json<T>(limit: u64) -> impl Filter<Extract = (T,), Error = Rejection> + Clone
where
    T: DeserializeOwned + Send + 'static,
{
    warp::header::headers_cloned()
        .and(warp::body::stream())
        .and_then(move |headers, body| read_json(headers, body, limit))
}

async fn read_json<T, S, B>(headers: HeaderMap, body: S, limit: u64) -> Result<T, Rejection>
where
    T: DeserializeOwned,
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    if !is_json(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        )
        .into());
    }
    let buf = read_limited(&headers, body, limit).await?;
    Ok(decode::<T>(&buf)?)
}

/// A body of any type, at most `limit` bytes (a larger one is a 413 `payload_too_large`).
pub fn bytes(limit: u64) -> impl Filter<Extract = (bytes::Bytes,), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and(warp::body::stream())
        .and_then(move |headers: HeaderMap, body| async move {
            read_limited(&headers, body, limit)
                .await
                .map(BytesMut::freeze)
                .map_err(Rejection::from)
        })
}

/// Reads the body, refusing it as soon as it is known to be over `limit`: by its
/// `Content-Length`, or while reading.
async fn read_limited<S, B>(headers: &HeaderMap, body: S, limit: u64) -> Result<BytesMut, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(limit) as usize);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "body_read_error",
                format!("the request body could not be read: {e}"),
            )
        })?;
        if (buf.len() + chunk.remaining()) as u64 > limit {
            return Err(too_large(limit));
        }
        buf.put(chunk);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        email: String,
        n: Option<u32>,
    }

    #[test]
    fn classifies_decode_errors() {
        assert!(decode::<Req>(br#"{"email":"a"}"#).is_ok());
        let e = decode::<Req>(br#"{"email":"a""#).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "malformed_json"));
        let e = decode::<Req>(b"{\"email\":\"\xff\"}").unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code),
            (400, "malformed_json"),
            "invalid UTF-8"
        );
        let e = decode::<Req>(br#"{"email":5}"#).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code, e.field.as_deref()),
            (422, "invalid_body", Some("email"))
        );
        let e = decode::<Req>(br#"{}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("email"));
        let e = decode::<Req>(br#"{"email":"a","n":-1}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("n"));
        let e = decode::<Req>(br#"{"email":"a","extra":1}"#).unwrap_err();
        assert_eq!(e.code, "invalid_body");
        let e = decode::<Req>(br#"{"email":"a"} {"email":"b"}"#).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code),
            (400, "malformed_json"),
            "trailing data"
        );
        assert!(decode::<Req>(b" {\"email\":\"a\"} \r\n").is_ok());
        let e = decode::<Req>(br#"[1]"#).unwrap_err();
        assert_eq!(e.status.as_u16(), 422);
    }

    #[test]
    fn recognises_json_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        for (ct, ok) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            assert_eq!(is_json(&h), ok, "{ct}");
        }
    }
}
