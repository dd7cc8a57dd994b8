//! SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms: decoding what the
//! client sends into credentials. Checking them is the service's job (fakemail accounts, the
//! same password check and failed-login limit as the REST login).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::reply::Reply;

/// The LOGIN mechanism's first challenge: `Username:` in base64.
pub const USERNAME_CHALLENGE: &str = "VXNlcm5hbWU6";
/// The LOGIN mechanism's second challenge: `Password:` in base64.
pub const PASSWORD_CHALLENGE: &str = "UGFzc3dvcmQ6";

/// A user name and password from the client. The password never shows in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    password: String,
}

impl Credentials {
    /// The password, for the check.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// What the session waits for in the middle of an AUTH exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// The PLAIN response, after an empty challenge.
    Plain,
    /// The LOGIN user name.
    Username,
    /// The LOGIN password, for this user name.
    Password(String),
}

/// The text of a client response: base64 (`=` for empty, RFC 4954 4), or `*` to cancel.
///
/// # Errors
/// 501 when the client cancels or the response is not base64.
pub fn decode(response: &str) -> Result<Vec<u8>, Reply> {
    match response.trim() {
        "*" => Err(Reply::new(501, "5.0.0", "authentication cancelled")),
        "=" => Ok(Vec::new()),
        text => STANDARD
            .decode(text)
            .map_err(|_| Reply::new(501, "5.5.2", "the response is not valid base64")),
    }
}

/// Text from a decoded response.
///
/// # Errors
/// 501 when it is not UTF-8.
pub fn text(bytes: Vec<u8>) -> Result<String, Reply> {
    String::from_utf8(bytes)
        .map_err(|_| Reply::new(501, "5.5.2", "user names and passwords must be UTF-8"))
}

/// A decoded PLAIN response: `authzid NUL authcid NUL password`.
///
/// # Errors
/// 501 for a malformed response; 535 for an authorization identity other than the user's
/// own (acting for somebody else is not supported).
pub fn plain(bytes: Vec<u8>) -> Result<Credentials, Reply> {
    let text = text(bytes)?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(username), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reply::new(
            501,
            "5.5.2",
            "a PLAIN response is authzid, NUL, user name, NUL, password",
        ));
    };
    if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(username) {
        return Err(Reply::new(
            535,
            "5.7.8",
            "authentication credentials invalid: cannot act for another user",
        ));
    }
    Ok(Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

/// Credentials from a LOGIN exchange.
pub fn login(username: String, password: String) -> Credentials {
    Credentials { username, password }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn plain_responses() {
        let c = plain(decode(&b64("\0alice@x.test\0s3cret pw")).unwrap()).unwrap();
        assert_eq!(
            (c.username.as_str(), c.password()),
            ("alice@x.test", "s3cret pw")
        );
        let c = plain(decode(&b64("alice@x.test\0alice@x.test\0pw")).unwrap()).unwrap();
        assert_eq!(c.username, "alice@x.test");
        assert_eq!(
            plain(decode(&b64("bob@x.test\0alice@x.test\0pw")).unwrap())
                .unwrap_err()
                .code,
            535
        );
        for bad in ["alice@x.test\0pw", "a\0b\0c\0d", ""] {
            assert_eq!(
                plain(bad.as_bytes().to_vec()).unwrap_err().code,
                501,
                "{bad:?}"
            );
        }
        assert_eq!(plain(vec![0, 0xff, 0, b'p']).unwrap_err().code, 501);
    }

    #[test]
    fn responses_decode_cancel_or_fail() {
        assert_eq!(decode("=").unwrap(), b"");
        assert_eq!(decode(" YWxpY2U= ").unwrap(), b"alice");
        assert_eq!(decode("*").unwrap_err().status, Some("5.0.0"));
        assert_eq!(decode("not base64!").unwrap_err().code, 501);
        assert_eq!(STANDARD.decode(USERNAME_CHALLENGE).unwrap(), b"Username:");
        assert_eq!(STANDARD.decode(PASSWORD_CHALLENGE).unwrap(), b"Password:");
    }

    #[test]
    fn debug_output_hides_the_password() {
        let c = login("alice@x.test".into(), "hunter2-secret".into());
        let shown = format!("{c:?}");
        assert!(
            shown.contains("alice@x.test") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
