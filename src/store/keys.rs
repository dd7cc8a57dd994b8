//! Every key encoding of the store, in one place. Integers are big-endian so that sled's byte
//! order is numeric order, which is what range scans over the index trees rely on.

use crate::time::Timestamp;

/// Length of a session digest (SHA-256).
pub const DIGEST_LEN: usize = 32;

/// A user id.
pub fn user(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// Reads a user id key.
pub fn parse_user(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// The unique-email index key: the address, trimmed and lower-cased, so that lookups and the
/// uniqueness check are case-insensitive.
pub fn email(address: &str) -> Vec<u8> {
    address.trim().to_lowercase().into_bytes()
}

/// `user id ++ digest`: all sessions of one user are one prefix range.
pub fn user_session(user_id: u64, digest: &[u8; DIGEST_LEN]) -> [u8; 8 + DIGEST_LEN] {
    let mut k = [0u8; 8 + DIGEST_LEN];
    k[..8].copy_from_slice(&user_id.to_be_bytes());
    k[8..].copy_from_slice(digest);
    k
}

/// `expires_at ++ digest`: sessions in expiry order, so the sweeper reads only what expired.
pub fn session_expiry(expires_at: Timestamp, digest: &[u8; DIGEST_LEN]) -> [u8; 8 + DIGEST_LEN] {
    let mut k = [0u8; 8 + DIGEST_LEN];
    k[..8].copy_from_slice(&expires_at.0.to_be_bytes());
    k[8..].copy_from_slice(digest);
    k
}

/// The exclusive upper bound of every expiry key at or before `now`.
pub fn session_expiry_end(now: Timestamp) -> [u8; 8] {
    now.0.saturating_add(1).to_be_bytes()
}

/// The digest part of a `user_session` or `session_expiry` key.
pub fn digest_suffix(key: &[u8]) -> Option<[u8; DIGEST_LEN]> {
    key.get(8..)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_keys_sort_numerically() {
        let ids = [0u64, 1, 255, 256, 65_536, u64::MAX];
        for w in ids.windows(2) {
            assert!(user(w[0]) < user(w[1]));
        }
        assert_eq!(parse_user(&user(65_536)), Some(65_536));
        assert_eq!(parse_user(b"short"), None);
    }

    #[test]
    fn email_key_is_case_and_space_insensitive() {
        assert_eq!(email(" Alice@Example.TEST "), email("alice@example.test"));
        assert_ne!(email("alice@example.test"), email("alicia@example.test"));
    }

    #[test]
    fn expiry_keys_sort_by_time_then_digest_and_bound_is_inclusive() {
        let d1 = [1u8; DIGEST_LEN];
        let d2 = [2u8; DIGEST_LEN];
        let a = session_expiry(Timestamp(100), &d2);
        let b = session_expiry(Timestamp(101), &d1);
        assert!(a < b);
        assert!(session_expiry(Timestamp(100), &d1) < a);
        let end = session_expiry_end(Timestamp(100));
        assert!(a.as_slice() < end.as_slice());
        assert!(b.as_slice() >= end.as_slice());
        assert_eq!(digest_suffix(&b), Some(d1));
    }

    #[test]
    fn user_session_prefix_groups_one_user() {
        let d = [9u8; DIGEST_LEN];
        let k = user_session(7, &d);
        assert!(k.starts_with(&user(7)));
        assert!(user_session(7, &[255; DIGEST_LEN]) < user_session(8, &[0; DIGEST_LEN]));
        assert_eq!(digest_suffix(&k), Some(d));
    }
}
