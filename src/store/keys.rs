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

/// A message, entry or mailbox id (8 bytes, big-endian).
pub fn id(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// Reads the id at `bytes[at..at + 8]`.
pub fn id_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// `owner ++ mailbox`: the prefix of every index entry of one mailbox.
pub fn mailbox(owner: u64, mailbox: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&owner.to_be_bytes());
    k[8..].copy_from_slice(&mailbox.to_be_bytes());
    k
}

/// `owner ++ mailbox ++ entry`: a mailbox listing is a reverse range over one prefix, newest
/// (highest entry id) first.
pub fn mailbox_entry(owner: u64, mailbox: u64, entry: u64) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..16].copy_from_slice(&self::mailbox(owner, mailbox));
    k[16..].copy_from_slice(&entry.to_be_bytes());
    k
}

/// `owner ++ mailbox ++ uid`: a mailbox's copies in IMAP UID order (UIDs are 32-bit, RFC 3501).
pub fn mailbox_uid(owner: u64, mailbox: u64, uid: u32) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(&self::mailbox(owner, mailbox));
    k[16..].copy_from_slice(&uid.to_be_bytes());
    k
}

/// Reads the 32-bit number at `bytes[at..at + 4]`.
pub fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// `owner ++ lower-cased name`: custom mailbox names, unique per owner case-insensitively.
pub fn mailbox_name(owner: u64, name: &str) -> Vec<u8> {
    let mut k = owner.to_be_bytes().to_vec();
    k.extend_from_slice(name.to_lowercase().as_bytes());
    k
}

/// `received_at ++ message`: messages in arrival order, so retention reads only what is old.
pub fn received(at: Timestamp, message: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&at.0.to_be_bytes());
    k[8..].copy_from_slice(&message.to_be_bytes());
    k
}

/// The exclusive upper bound of every `received` key at or before `cutoff`.
pub fn received_end(cutoff: Timestamp) -> [u8; 8] {
    cutoff.0.saturating_add(1).to_be_bytes()
}

/// A tag's key: its name lower-cased, so that tags differing only in letter case are one.
pub fn tag(name: &str) -> Vec<u8> {
    name.to_lowercase().into_bytes()
}

/// `tag key ++ 0xFF ++ message`: the messages of one tag are one prefix range (UTF-8 never
/// holds the byte 0xFF, so no tag's range takes in another's).
pub fn tag_message(name: &str, message: u64) -> Vec<u8> {
    let mut k = tag_prefix(name);
    k.extend_from_slice(&message.to_be_bytes());
    k
}

/// The prefix of every [`tag_message`] key of one tag.
pub fn tag_prefix(name: &str) -> Vec<u8> {
    let mut k = tag(name);
    k.push(0xFF);
    k
}

/// A mail listing cursor: the opaque form of the last entry id a page returned.
pub fn encode_cursor(entry: u64) -> String {
    // XOR with a constant so clients do not mistake it for an id they can do arithmetic on.
    format!("{:016x}", entry ^ CURSOR_MASK)
}

/// Reads a cursor made by [`encode_cursor`].
pub fn decode_cursor(s: &str) -> Option<u64> {
    if s.len() != 16 {
        return None;
    }
    u64::from_str_radix(s, 16).ok().map(|v| v ^ CURSOR_MASK)
}

const CURSOR_MASK: u64 = 0x5f3a_9c1e_7b20_d4c5;

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
    fn mailbox_keys_group_by_owner_then_mailbox_then_entry() {
        let a = mailbox_entry(1, 1, 500);
        let b = mailbox_entry(1, 1, 501);
        let c = mailbox_entry(1, 2, 0);
        let d = mailbox_entry(2, 1, 0);
        assert!(a < b && b < c && c < d);
        assert!(a.starts_with(&mailbox(1, 1)));
        assert!(!c.starts_with(&mailbox(1, 1)));
        assert_eq!(id_at(&b, 16), Some(501));
        assert_eq!(id_at(&b, 20), None);
    }

    #[test]
    fn mailbox_names_are_case_insensitive_and_owner_scoped() {
        assert_eq!(mailbox_name(1, "Receipts"), mailbox_name(1, "RECEIPTS"));
        assert_ne!(mailbox_name(1, "x"), mailbox_name(2, "x"));
        assert!(mailbox_name(1, "zzz") < mailbox_name(2, ""));
    }

    #[test]
    fn received_keys_sort_by_time_and_bound_is_inclusive() {
        let a = received(Timestamp(10), u64::MAX);
        let b = received(Timestamp(11), 0);
        assert!(a < b);
        let end = received_end(Timestamp(10));
        assert!(a.as_slice() < end.as_slice() && b.as_slice() >= end.as_slice());
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        for id in [0u64, 1, 42, u64::MAX] {
            let c = encode_cursor(id);
            assert_eq!(decode_cursor(&c), Some(id));
            assert_ne!(c, format!("{id:016x}"), "opaque");
        }
        assert_eq!(decode_cursor(""), None);
        assert_eq!(decode_cursor("zzzzzzzzzzzzzzzz"), None);
        assert_eq!(decode_cursor("12"), None);
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
