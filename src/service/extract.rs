//! What a test wants out of a message body at once: the links it should follow and the one-time
//! codes it should type. Plain text heuristics over bodies already decoded by [`super::mime`];
//! they never fail and never panic, whatever the input.

use std::collections::HashSet;

/// Words after (or before) which a short token is taken for a one-time code.
const KEYWORDS: [&str; 10] = [
    "code",
    "codes",
    "otp",
    "verification",
    "verify",
    "pin",
    "passcode",
    "passcodes",
    "2fa",
    "mfa",
];
/// How many words after a keyword a code may stand ("your code for example.test is 123456").
const WORDS_AFTER: usize = 8;
/// How many words before a keyword a code may stand ("123456 is your verification code").
const WORDS_BEFORE: usize = 4;
/// Words after a number that make it an amount, not a code.
const CURRENCIES: [&str; 8] = [
    "usd", "eur", "gbp", "chf", "dollars", "euros", "pounds", "cents",
];

/// Every `http://` and `https://` URL in the text body, then in the HTML body (attributes and
/// text alike), each once, in order of appearance.
pub fn links(text: Option<&str>, html: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (body, is_html) in [(text, false), (html, true)] {
        for (start, end) in url_spans(body.unwrap_or_default()) {
            let raw = &body.unwrap_or_default()[start..end];
            let url = if is_html {
                unescape_html(raw)
            } else {
                raw.to_owned()
            };
            if seen.insert(url.clone()) {
                out.push(url);
            }
        }
    }
    out
}

/// Byte ranges of the URLs in `s`.
fn url_spans(s: &str) -> Vec<(usize, usize)> {
    let bytes = s.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let scheme = if starts_with_ignore_case(rest, b"https://") {
            8
        } else if starts_with_ignore_case(rest, b"http://") {
            7
        } else {
            i += 1;
            continue;
        };
        // `xhttp://` is not a URL of ours; `(http://`, `"http://` and `=http://` are.
        let glued = s[..i]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric);
        let end = i + s[i..]
            .char_indices()
            .find(|&(_, c)| ends_url(c))
            .map_or(s.len() - i, |(n, _)| n);
        let end = trim_url_end(s, i, end);
        if !glued && end > i + scheme && !s[i + scheme..end].starts_with('/') {
            spans.push((i, end));
        }
        i = end.max(i + scheme);
    }
    spans
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Characters that cannot be part of a URL in running text or HTML.
fn ends_url(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '<' | '>' | '"' | '\'' | '`' | '{' | '}' | '|' | '\\' | '^'
        )
}

/// Drops punctuation that ends a sentence rather than the URL, and closing brackets that
/// close something opened before the URL.
fn trim_url_end(s: &str, start: usize, mut end: usize) -> usize {
    loop {
        let url = &s[start..end];
        let Some(last) = url.chars().next_back() else {
            return end;
        };
        let unbalanced = |open: char, close: char| {
            last == close && url.matches(open).count() < url.matches(close).count()
        };
        if matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '*')
            || unbalanced('(', ')')
            || unbalanced('[', ']')
        {
            end -= last.len_utf8();
        } else {
            return end;
        }
    }
}

/// Undoes the HTML escapes that appear inside URLs in attributes (`&amp;` above all).
fn unescape_html(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let entity = [
            ("&amp;", '&'),
            ("&#38;", '&'),
            ("&#x26;", '&'),
            ("&quot;", '"'),
            ("&#39;", '\''),
            ("&lt;", '<'),
            ("&gt;", '>'),
        ]
        .into_iter()
        .find(|(e, _)| starts_with_ignore_case(rest.as_bytes(), e.as_bytes()));
        match entity {
            Some((e, c)) => {
                out.push(c);
                rest = &rest[e.len()..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A word of the text: a maximal run of letters and digits, with its byte range.
struct Word<'a> {
    text: &'a str,
    start: usize,
    end: usize,
}

fn words(s: &str) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices().chain(std::iter::once((s.len(), ' '))) {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(st)) => {
                out.push(Word {
                    text: &s[st..i],
                    start: st,
                    end: i,
                });
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// One-time codes in the subject and the text: tokens of 4 to 8 digits or capital letters
/// (mixed or not) within a few words of `code`, `OTP`, `verification`, `PIN`, `passcode` or
/// `one-time`. Each code once, in order of appearance.
///
/// To keep false positives out, a token is not a code when it is part of a URL, an email
/// address or a larger number (`1,250.00`, `555-1234`, `12:30`), follows a currency sign or
/// precedes a currency name, is a year (1900 to 2099), or has lower-case letters (`10am`,
/// `h264`). A token of letters only counts when it directly follows the keyword, as in
/// `code: QWERTY` or `code is QWERTY`, so words such as `BELOW` in `code BELOW` do not.
pub fn codes(subject: &str, text: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for s in [subject, text.unwrap_or_default()] {
        for code in codes_in(s) {
            if !out.contains(&code) {
                out.push(code);
            }
        }
    }
    out
}

fn codes_in(s: &str) -> Vec<String> {
    // URLs are in `links`; a number inside one is no code.
    let mut clean = s.to_owned();
    for (start, end) in url_spans(s) {
        clean.replace_range(start..end, &" ".repeat(end - start));
    }
    let words = words(&clean);
    let lower: Vec<String> = words.iter().map(|w| w.text.to_lowercase()).collect();
    let is_keyword = |i: usize| {
        KEYWORDS.contains(&lower[i].as_str())
            // "one-time password", "one time code"
            || (lower[i] == "time" && i > 0 && lower[i - 1] == "one")
    };
    let keywords: Vec<usize> = (0..words.len()).filter(|&i| is_keyword(i)).collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let near = keywords
            .iter()
            .any(|&k| (k < i && i - k <= WORDS_AFTER) || (k > i && k - i <= WORDS_BEFORE));
        if !near || is_keyword(i) || !looks_like_code(w.text) {
            continue;
        }
        if w.text.chars().all(|c| c.is_ascii_alphabetic())
            && !directly_after_keyword(i, &lower, &is_keyword)
        {
            continue;
        }
        if part_of_something_else(&clean, w) {
            continue;
        }
        if lower
            .get(i + 1)
            .is_some_and(|next| CURRENCIES.contains(&next.as_str()))
        {
            continue;
        }
        out.push(w.text.to_owned());
    }
    out
}

/// 4 to 8 ASCII digits or capital letters, not a year.
fn looks_like_code(t: &str) -> bool {
    let ok_chars = t
        .chars()
        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase());
    let year = t.len() == 4
        && t.chars().all(|c| c.is_ascii_digit())
        && (t.starts_with("19") || t.starts_with("20"));
    (4..=8).contains(&t.len()) && ok_chars && !year
}

/// Word `i` follows a keyword, with at most `is`/`was`/`are` between ("code is", "code:").
fn directly_after_keyword(i: usize, lower: &[String], is_keyword: &dyn Fn(usize) -> bool) -> bool {
    (i >= 1 && is_keyword(i - 1))
        || (i >= 2 && matches!(lower[i - 1].as_str(), "is" | "was" | "are") && is_keyword(i - 2))
}

/// The word is glued to something that makes it part of a number, an amount, an address or
/// an identifier rather than a code of its own.
fn part_of_something_else(s: &str, w: &Word<'_>) -> bool {
    let before: Vec<char> = s[..w.start].chars().rev().take(2).collect();
    let after: Vec<char> = s[w.end..].chars().take(2).collect();
    let glue = |c: Option<&char>| matches!(c, Some('.' | ',' | '-' | ':' | '/'));
    let digit = |c: Option<&char>| c.is_some_and(char::is_ascii_digit);
    let sign = |c: Option<&char>| {
        matches!(
            c,
            Some('$' | '€' | '£' | '¥' | '#' | '@' | '=' | '&' | '%' | '_' | '/' | '\\' | '+')
        )
    };
    let trailing = |c: Option<&char>| matches!(c, Some('@' | '%' | '_' | '/' | '\\' | '='));
    sign(before.first())
        || (glue(before.first()) && digit(before.get(1)))
        || trailing(after.first())
        || (glue(after.first()) && digit(after.get(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_come_from_text_then_html_once_each_in_order() {
        let text = "Confirm: https://app.example.test/confirm?t=abc123.\n\
                    Docs (see https://docs.example.test/a_(b)) and <http://x.example.test/y>,\n\
                    again https://app.example.test/confirm?t=abc123 but not ftp://f.test or xhttp://no.test";
        let html = r#"<a href="https://app.example.test/confirm?t=abc123">x</a>
                      <a href='https://app.example.test/u?a=1&amp;b=2'>y</a><img src="HTTPS://cdn.example.test/p.png">"#;
        assert_eq!(
            links(Some(text), Some(html)),
            [
                "https://app.example.test/confirm?t=abc123",
                "https://docs.example.test/a_(b)",
                "http://x.example.test/y",
                "https://app.example.test/u?a=1&b=2",
                "HTTPS://cdn.example.test/p.png",
            ]
        );
    }

    #[test]
    fn links_need_a_host_and_survive_odd_input() {
        assert!(links(Some("http:// https:/// http://"), None).is_empty());
        assert_eq!(
            links(Some("é https://ü.example.test/ä… done"), None),
            ["https://ü.example.test/ä…"]
        );
        assert_eq!(
            links(Some("[a](https://x.test/p)"), None),
            ["https://x.test/p"]
        );
        assert!(links(None, None).is_empty());
        assert_eq!(unescape_html("a&amp;b&c&#x26;d&"), "a&b&c&d&");
    }

    #[test]
    fn finds_codes_near_keywords() {
        let cases: [(&str, &[&str]); 12] = [
            ("Your verification code is 482913.", &["482913"]),
            ("482913 is your Example code", &["482913"]),
            ("Use code: A7K9QZ to sign in", &["A7K9QZ"]),
            ("Your PIN: 4821", &["4821"]),
            ("Your code: QWERTY", &["QWERTY"]),
            ("Your one-time password is 90210778", &["90210778"]),
            ("OTP\n\n  55 31 99\n\n  553199", &["553199"]),
            ("G-123456 is your Google verification code.", &["123456"]),
            ("Enter the passcode\r\n\r\n<b>7F3K9Q</b>", &["7F3K9Q"]),
            ("Codes: 1111, 2222 and 1111", &["1111", "2222"]),
            ("verification: 0042", &["0042"]),
            (
                "Verify with 918273 or https://x.test/v?code=111111",
                &["918273"],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(codes("", Some(text)), want, "{text:?}");
        }
        assert_eq!(
            codes("Your login code: 551234", Some("Code: 551234")),
            ["551234"]
        );
    }

    #[test]
    fn ignores_years_prices_numbers_and_plain_words() {
        for text in [
            "Order 123456 has shipped",
            "Enter the code below to continue",
            "Your code expires in 2026",
            "Promo code: pay $1234 now",
            "Your code: total 1,250.00 EUR",
            "Your code: 1250 EUR",
            "Code of conduct: call 555-1234 at 12:30",
            "Verify your account before 10am or 15min",
            "Your code is ready, code Ready",
            "Use code at user1234@example.test",
            "PIN 12",
            "verification code 123456789",
            "code 50% off, code 3000%",
            "code h264 mp3s",
        ] {
            assert!(
                codes("", Some(text)).is_empty(),
                "{text:?}: {:?}",
                codes("", Some(text))
            );
        }
        assert!(codes("", None).is_empty());
        let _ = codes(
            "\u{0}\u{ffff}code\u{200b}1234\u{0}",
            Some("\u{10ffff}http://"),
        );
    }
}
