//! Email address syntax: what fakemail accepts as an address, for accounts and (later) mail.
//!
//! Deliberately practical rather than the full RFC 5322 grammar: a dot-atom local part and a
//! domain of dot-separated labels, with non-ASCII letters allowed (SMTPUTF8). Single-label
//! domains such as `localhost` are allowed because test setups use them.

/// Longest address accepted (RFC 5321 path limit less the angle brackets).
pub const MAX_LEN: usize = 254;

/// Characters allowed in a dot-atom besides letters and digits (RFC 5322 `atext`).
const ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";

/// Checks an already-trimmed address. Returns a reason when it is not acceptable.
pub fn check(address: &str) -> Result<(), &'static str> {
    if address.is_empty() {
        return Err("the address is empty");
    }
    if address.len() > MAX_LEN {
        return Err("the address is longer than 254 bytes");
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err("the address has no @");
    };
    if local.is_empty() || local.len() > 64 {
        return Err("the part before @ must be 1 to 64 bytes");
    }
    let atext = |c: char| {
        c.is_alphanumeric()
            || ATEXT_SPECIALS.contains(c)
            || !c.is_ascii() && !c.is_control() && !c.is_whitespace()
    };
    if local
        .split('.')
        .any(|atom| atom.is_empty() || !atom.chars().all(atext))
    {
        return Err("the part before @ has a character or dot that is not allowed");
    }
    if domain.is_empty() {
        return Err("the address has no domain after @");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| {
                c.is_alphanumeric()
                    || c == '-'
                    || !c.is_ascii() && !c.is_control() && !c.is_whitespace()
            })
    };
    if !domain.split('.').all(label_ok) {
        return Err("the domain after @ is not a valid host name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_common_and_test_addresses() {
        for a in [
            "alice@example.test",
            "a.b+tag@sub.example.com",
            "user@localhost",
            "o'brien@example.ie",
            "zoë@bücher.example",
            "x@a-b.c",
        ] {
            assert_eq!(check(a), Ok(()), "{a}");
        }
    }

    #[test]
    fn rejects_malformed_addresses() {
        for a in [
            "",
            "plain",
            "@example.test",
            "alice@",
            "alice@@example.test",
            "al ice@example.test",
            ".alice@example.test",
            "alice.@example.test",
            "al..ice@example.test",
            "alice@-example.test",
            "alice@example..test",
            "alice@exa mple.test",
            "alice\r\n@example.test",
            "alice@example.test\n",
        ] {
            assert!(check(a).is_err(), "{a:?} should be rejected");
        }
        let long_local = format!("{}@example.test", "a".repeat(65));
        assert!(check(&long_local).is_err());
        let long = format!("a@{}.test", "b".repeat(250));
        assert!(check(&long).is_err());
    }
}
