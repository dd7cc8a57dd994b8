//! Modified UTF-7 (RFC 3501 5.1.3): how mailbox names with characters outside printable
//! US-ASCII travel to and from a client that has not enabled UTF-8 (RFC 6855).
//!
//! Printable US-ASCII stands for itself, except `&`, which is `&-`; any other run of
//! characters is `&`, its UTF-16 in base64 with `,` for `/` and no padding, then `-`.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn printable(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// A name in modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    for c in name.chars() {
        if printable(c) {
            flush(&mut run, &mut out);
            match c {
                '&' => out.push_str("&-"),
                c => out.push(c),
            }
        } else {
            run.extend(c.encode_utf16(&mut [0; 2]).iter());
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Writes a run of UTF-16 units as `&base64-`.
fn flush(run: &mut Vec<u16>, out: &mut String) {
    if run.is_empty() {
        return;
    }
    out.push('&');
    let (mut bits, mut n) = (0u32, 0u32);
    for unit in run.drain(..) {
        bits = (bits << 16) | u32::from(unit);
        n += 16;
        while n >= 6 {
            n -= 6;
            out.push(ALPHABET[((bits >> n) & 63) as usize] as char);
        }
        bits &= (1 << n) - 1;
    }
    if n > 0 {
        out.push(ALPHABET[((bits << (6 - n)) & 63) as usize] as char);
    }
    out.push('-');
}

/// A name from modified UTF-7; `None` when it is not well formed (an unterminated or
/// malformed `&...-` run). Characters outside US-ASCII, which a client should not send
/// without UTF-8 enabled, are taken as they are.
pub fn decode(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c != '&' {
            out.push(c);
            continue;
        }
        let (mut bits, mut n, mut units) = (0u32, 0u32, Vec::new());
        let mut empty = true;
        loop {
            let c = chars.next()?;
            if c == '-' {
                break;
            }
            empty = false;
            let v = ALPHABET.iter().position(|a| *a as char == c)? as u32;
            bits = (bits << 6) | v;
            n += 6;
            if n >= 16 {
                n -= 16;
                units.push((bits >> n) as u16);
                bits &= (1 << n) - 1;
            }
        }
        if empty {
            out.push('&');
            continue;
        }
        // What is left over is padding: fewer than 6 bits, all zero.
        if n >= 6 || bits != 0 || units.is_empty() {
            return None;
        }
        for c in char::decode_utf16(units) {
            out.push(c.ok()?);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_examples_and_ours() {
        for (utf8, wire) in [
            ("Reçus", "Re&AOc-us"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("Tom & Jerry", "Tom &- Jerry"),
            ("Projects/2026", "Projects/2026"),
            ("", ""),
            ("😀", "&2D3eAA-"),
            ("a\tb", "a&AAk-b"),
        ] {
            assert_eq!(encode(utf8), wire, "{utf8}");
            assert_eq!(decode(wire).as_deref(), Some(utf8), "{wire}");
        }
    }

    #[test]
    fn malformed_runs_are_refused() {
        for wire in ["&", "&AOc", "&AO-", "&A-", "&*-", "&2D0-", "&AOd-"] {
            assert_eq!(decode(wire), None, "{wire}");
        }
    }

    #[test]
    fn any_name_comes_back() {
        let names = ["ü&ü", "&&", "日本語 & more", "x\u{7f}y", "\u{10ffff}"];
        for n in names {
            assert_eq!(decode(&encode(n)).as_deref(), Some(n), "{n}");
        }
    }
}
