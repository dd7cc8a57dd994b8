//! Session tokens: 256 random bits from the OS-seeded CSPRNG, shown to the client once and
//! stored only as their SHA-256 digest.

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::store::keys::DIGEST_LEN;

/// Every token starts with this, so secret scanners and humans can tell what it is.
pub const PREFIX: &str = "fm_";

/// A new random token and its digest.
pub fn generate() -> (String, [u8; DIGEST_LEN]) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{PREFIX}{}", hex(&bytes));
    let d = digest(&token);
    (token, d)
}

/// The digest under which a token's session is stored.
pub fn digest(token: &str) -> [u8; DIGEST_LEN] {
    Sha256::digest(token.as_bytes()).into()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_unique_and_digested() {
        let (t1, d1) = generate();
        let (t2, d2) = generate();
        assert!(t1.starts_with(PREFIX));
        assert_eq!(t1.len(), PREFIX.len() + 64, "256 bits as hex");
        assert_ne!(t1, t2);
        assert_ne!(d1, d2);
        assert_eq!(digest(&t1), d1);
        assert!(!hex(&d1).contains(&t1[PREFIX.len()..]));
    }

    #[test]
    fn digest_is_sha256() {
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            hex(&digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
