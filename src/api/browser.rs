//! Browser sessions: the cookies that stand in for a bearer token in the web UI, and the rules
//! that keep other sites from using them (cross-site request forgery).
//!
//! Both cookies are `HttpOnly` (no script reads them) and `SameSite=Strict`. That is not
//! enough on its own: a page on another port of the same host (another app on `localhost`) is
//! the same *site*, so the browser sends it strict cookies all the same. So a request a cookie
//! authenticates must also:
//! - when it may change something (not `GET` or `HEAD`), carry `X-Requested-With: fakemail`:
//!   another origin can only send a custom header after a CORS preflight, which this server
//!   never approves, and a form cannot send one at all;
//! - when the browser says where it comes from (`Sec-Fetch-Site`), come from this origin
//!   (`same-origin`) or from the user (`none`: typed, bookmarked), even to read.
//!
//! A request with an `Authorization` header is judged by that header alone: a browser never
//! adds one on its own, so such a request is no forgery.

use warp::http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use super::rejection::ApiError;

/// The user's session cookie: the session token of `POST /api/v1/auth/session`.
pub const USER_COOKIE: &str = "fakemail_session";
/// Where the user's cookie goes: the whole API (user endpoints live under several prefixes).
pub const USER_COOKIE_PATH: &str = "/api/";
/// The operator's session cookie: a random id, not the admin token.
pub const ADMIN_COOKIE: &str = "fakemail_admin";
/// Where the operator's cookie goes: the admin endpoints only.
pub const ADMIN_COOKIE_PATH: &str = "/api/v1/admin";
/// The header a cookie-authenticated request that may change something must carry, and its
/// value.
pub const CSRF_HEADER: &str = "x-requested-with";
/// The value of [`CSRF_HEADER`].
pub const CSRF_VALUE: &str = "fakemail";

/// The value of the cookie `name` among the request's `Cookie` headers, if it has one that is
/// not empty (the first, when there are several).
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| n.trim() == name)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// Checks the rules above for a request a cookie authenticates (or that opens a session).
///
/// # Errors
/// 403 `csrf` when the request breaks them.
pub fn check_csrf(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    let refuse = |why: &str| {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            format!("refused as a possible cross-site request: {why}"),
        ))
    };
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or_default().trim();
        if !site.eq_ignore_ascii_case("same-origin") && !site.eq_ignore_ascii_case("none") {
            return refuse(
                "`Sec-Fetch-Site` says it comes from another origin; a session cookie works \
                 only for this server's own pages",
            );
        }
    }
    let reads = method == Method::GET || method == Method::HEAD;
    let marked = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(CSRF_VALUE));
    if !reads && !marked {
        return refuse(
            "a request that may change something, when a session cookie authenticates it or \
             it opens a session, needs the header `X-Requested-With: fakemail`",
        );
    }
    Ok(())
}

/// A `Set-Cookie` value for the cookie `name`: `HttpOnly`, `SameSite=Strict`, on `path`, for
/// `max_age` seconds (0 deletes it).
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict"
    ))
    // Our names, paths and values are ASCII letters, digits and `_/`: always a valid header.
    .expect("a cookie of ours is a valid header value")
}

/// A `Set-Cookie` value that deletes the cookie `name` on `path`.
pub fn clear_cookie(name: &str, path: &str) -> HeaderValue {
    set_cookie(name, "", path, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn cookies_are_found_among_others() {
        let h = headers(&[
            ("cookie", "theme=dark; fakemail_session=fm_abc"),
            ("cookie", "fakemail_admin=\"fm_def\""),
        ]);
        assert_eq!(cookie(&h, USER_COOKIE), Some("fm_abc"));
        assert_eq!(cookie(&h, ADMIN_COOKIE), Some("fm_def"));
        assert_eq!(cookie(&h, "fakemail"), None);
        let empty = headers(&[("cookie", "fakemail_session=; x=1")]);
        assert_eq!(cookie(&empty, USER_COOKIE), None);
        assert_eq!(cookie(&HeaderMap::new(), USER_COOKIE), None);
    }

    #[test]
    fn csrf_rules() {
        let ok = |m: Method, pairs: &[(&'static str, &'static str)]| {
            check_csrf(&m, &headers(pairs)).is_ok()
        };
        assert!(ok(Method::GET, &[]));
        assert!(ok(Method::HEAD, &[("sec-fetch-site", "same-origin")]));
        assert!(ok(Method::GET, &[("sec-fetch-site", "none")]));
        assert!(!ok(Method::GET, &[("sec-fetch-site", "same-site")]));
        assert!(!ok(Method::GET, &[("sec-fetch-site", "cross-site")]));
        assert!(!ok(Method::POST, &[]));
        assert!(!ok(
            Method::DELETE,
            &[("x-requested-with", "XMLHttpRequest")]
        ));
        assert!(ok(Method::PATCH, &[("x-requested-with", "fakemail")]));
        assert!(!ok(
            Method::POST,
            &[
                ("x-requested-with", "fakemail"),
                ("sec-fetch-site", "cross-site")
            ]
        ));
        let e = check_csrf(&Method::POST, &HeaderMap::new()).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (403, "csrf"));
    }

    #[test]
    fn set_cookie_has_every_attribute() {
        assert_eq!(
            set_cookie(USER_COOKIE, "fm_x", USER_COOKIE_PATH, 60),
            "fakemail_session=fm_x; Path=/api/; Max-Age=60; HttpOnly; SameSite=Strict"
        );
        assert_eq!(
            clear_cookie(ADMIN_COOKIE, ADMIN_COOKIE_PATH),
            "fakemail_admin=; Path=/api/v1/admin; Max-Age=0; HttpOnly; SameSite=Strict"
        );
    }
}
