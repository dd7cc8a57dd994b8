//! Passwords: the rules a new password must pass, and PBKDF2-HMAC-SHA256 hashing to PHC strings.
//!
//! Hashing and verifying are CPU-heavy (about 50 ms at 600,000 iterations in a release build):
//! they are plain blocking functions, and the service runs them on the blocking pool.

use pbkdf2::password_hash::{PasswordHasher, PasswordVerifier};
use pbkdf2::phc::PasswordHash;
use pbkdf2::{Algorithm, Params, Pbkdf2};
use rand::Rng;

use crate::error::Error;

/// Fewest characters (Unicode scalar values, not bytes) in a password.
pub const MIN_CHARS: usize = 8;
/// Most characters in a password.
pub const MAX_CHARS: usize = 256;
/// The OWASP recommendation for PBKDF2-HMAC-SHA256 (2023).
pub const DEFAULT_ITERATIONS: u32 = 600_000;
/// The lowest iteration count that may be configured (for fast test suites only).
pub const MIN_ITERATIONS: u32 = 1_000;

const COMMON: &str = include_str!("common_passwords.txt");

fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    COMMON
        .lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| l == lower)
}

/// Checks a new password against the rules, naming the rule it breaks.
///
/// # Errors
/// [`Error::Invalid`] with code `weak_password`.
pub fn check_rules(password: &str, email: &str, field: &'static str) -> Result<(), Error> {
    let n = password.chars().count();
    let err = |m: &str| Error::invalid("weak_password", field, m);
    if n < MIN_CHARS {
        return Err(err("the password must be at least 8 characters long"));
    }
    if n > MAX_CHARS {
        return Err(err("the password must be at most 256 characters long"));
    }
    // Lower-cased like the email index key, so non-ASCII letters compare case-insensitively too.
    if password.trim().to_lowercase() == email.trim().to_lowercase() {
        return Err(err("the password must not be the email address"));
    }
    if is_common(password) {
        return Err(err(
            "the password is one of the most commonly used passwords; choose another",
        ));
    }
    Ok(())
}

/// Hashes a password with a fresh random 16-byte salt, as a PHC string. Blocking.
pub fn hash(password: &str, iterations: u32) -> Result<String, Error> {
    let params = Params::new(iterations)
        .map_err(|e| Error::Internal(format!("bad PBKDF2 parameters: {e}")))?;
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let hash = Pbkdf2::new(Algorithm::Pbkdf2Sha256, params)
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string. The parameters (iterations, algorithm) come from
/// the string itself, so changing `--password-iterations` never breaks stored hashes. Blocking.
pub fn verify(password: &str, phc: &str) -> bool {
    match phc.parse::<PasswordHash>() {
        Ok(parsed) => Pbkdf2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<(), Error>) -> Option<String> {
        match r {
            Ok(()) => None,
            Err(Error::Invalid { code, message, .. }) => Some(format!("{code}: {message}")),
            Err(e) => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert!(
            code(check_rules("ééééééé", "a@b.c", "password")).is_some(),
            "7 chars"
        );
        assert_eq!(
            code(check_rules("éééééééé", "a@b.c", "password")),
            None,
            "8 chars, 16 bytes"
        );
        assert_eq!(
            code(check_rules(&"ü".repeat(256), "a@b.c", "password")),
            None
        );
        let long = code(check_rules(&"ü".repeat(257), "a@b.c", "password")).unwrap();
        assert!(long.contains("at most 256"), "{long}");
    }

    #[test]
    fn rejects_email_and_common_passwords_naming_the_rule() {
        let e = code(check_rules(
            "Alice@Example.test",
            "alice@example.test",
            "password",
        ))
        .unwrap();
        assert!(e.starts_with("weak_password") && e.contains("email"), "{e}");
        let e = code(check_rules(
            "ZOË@BÜCHER.EXAMPLE",
            "zoë@bücher.example",
            "password",
        ));
        assert!(e.is_some_and(|e| e.contains("email")), "non-ASCII case");
        for p in [
            "password",
            "PassWord1",
            "12345678",
            "qwertyuiop",
            "iloveyou",
        ] {
            let e = code(check_rules(p, "x@y.z", "password")).unwrap();
            assert!(e.contains("commonly used"), "{p}: {e}");
        }
        assert_eq!(
            code(check_rules("correct horse battery", "x@y.z", "password")),
            None
        );
    }

    #[test]
    fn common_list_has_no_comments_or_short_entries_that_matter() {
        let entries: Vec<_> = COMMON.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(entries.len() > 200);
        assert!(
            entries
                .iter()
                .all(|e| e.chars().count() >= MIN_CHARS && *e == e.to_lowercase())
        );
    }

    #[test]
    fn phc_round_trip_and_iteration_changes() {
        let h = hash("correct horse battery", MIN_ITERATIONS).unwrap();
        assert!(h.starts_with("$pbkdf2-sha256$i=1000,"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        // A hash made with other parameters still verifies.
        let h2 = hash("correct horse battery", 2_000).unwrap();
        assert!(h2.starts_with("$pbkdf2-sha256$i=2000,"));
        assert!(verify("correct horse battery", &h2));
        // Random salt: same password, different strings.
        assert_ne!(h, hash("correct horse battery", MIN_ITERATIONS).unwrap());
        assert!(!verify("x", "not a phc string"));
    }
}
