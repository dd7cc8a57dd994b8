//! What fakemail reads in a message's HTML body: whether it refers to remote resources (which a
//! viewer would fetch, telling the sender the mail was opened), and its `cid:` references to
//! the message's own parts, replaced by `data:` URIs so that a sandboxed viewer shows them
//! without asking the server again.
//!
//! Not an HTML parser: a scan of tags, attributes and CSS good enough for what mail holds. It
//! only informs (a viewer's Content-Security-Policy is what blocks remote content), so a rare
//! miss costs a notice, never safety.

use std::collections::HashMap;

/// Elements whose content is raw text: no tags inside them.
const RAW_TEXT: [&str; 5] = ["script", "textarea", "title", "xmp", "noscript"];

/// Whether `html` refers to `http`/`https` resources a viewer would load: `src` and `srcset` of
/// images, a `background` attribute, CSS `url()` and `@import` (in `style` attributes and
/// elements), a stylesheet `<link>`, a video `poster`, an SVG `<image>`.
pub fn references_remote(html: &str) -> bool {
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        if let Some(comment) = rest.strip_prefix("!--") {
            rest = comment.find("-->").map_or("", |i| &comment[i + 3..]);
            continue;
        }
        if !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            continue;
        }
        let (tag, after) = Tag::parse(rest);
        rest = after;
        if tag.refers_remote() {
            return true;
        }
        let raw_end = |rest: &str| find_ci(rest, &format!("</{}", tag.name)).unwrap_or(rest.len());
        if tag.name == "style" {
            let end = raw_end(rest);
            if css_refers_remote(&rest[..end]) {
                return true;
            }
            rest = &rest[end..];
        } else if RAW_TEXT.contains(&tag.name.as_str()) {
            rest = &rest[raw_end(rest)..];
        }
    }
    false
}

/// A start tag: its name and attributes, names in lower case, values with character
/// references decoded.
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
}

impl Tag {
    /// Reads the tag that `s` starts with (just after its `<`); returns it and what follows
    /// its `>`.
    fn parse(s: &str) -> (Tag, &str) {
        let stop = |c: char| c.is_ascii_whitespace() || c == '/' || c == '>';
        let end = s.find(stop).unwrap_or(s.len());
        let name = s[..end].to_ascii_lowercase();
        let mut rest = &s[end..];
        let mut attrs = Vec::new();
        loop {
            rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
            if rest.is_empty() {
                break;
            }
            if let Some(after) = rest.strip_prefix('>') {
                rest = after;
                break;
            }
            let end = rest
                .char_indices()
                .skip(1)
                .find(|(_, c)| stop(*c) || *c == '=')
                .map_or(rest.len(), |(i, _)| i);
            let attr = rest[..end].to_ascii_lowercase();
            rest = rest[end..].trim_start_matches(|c: char| c.is_ascii_whitespace());
            let mut value = "";
            if let Some(after) = rest.strip_prefix('=') {
                rest = after.trim_start_matches(|c: char| c.is_ascii_whitespace());
                let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'');
                let (v, after) = match quote {
                    Some(q) => {
                        let inner = &rest[1..];
                        let close = inner.find(q).unwrap_or(inner.len());
                        (&inner[..close], inner.get(close + 1..).unwrap_or(""))
                    }
                    None => {
                        let end = rest
                            .find(|c: char| c.is_ascii_whitespace() || c == '>')
                            .unwrap_or(rest.len());
                        rest.split_at(end)
                    }
                };
                value = v;
                rest = after;
            }
            attrs.push((attr, decode_references(value)));
        }
        (Tag { name, attrs }, rest)
    }

    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this tag's own attributes load something remote.
    fn refers_remote(&self) -> bool {
        let remote = |name: &str| self.attr(name).is_some_and(is_remote);
        let remote_set = |name: &str| self.attr(name).is_some_and(srcset_refers_remote);
        if remote("background") || self.attr("style").is_some_and(css_refers_remote) {
            return true;
        }
        match self.name.as_str() {
            "img" => remote("src") || remote_set("srcset") || remote("lowsrc"),
            "source" => remote_set("srcset"),
            "input" => remote("src"),
            "video" => remote("poster"),
            "image" => remote("href") || remote("xlink:href"),
            "link" => {
                let stylesheet = self.attr("rel").is_some_and(|rel| {
                    rel.split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("stylesheet"))
                });
                stylesheet && remote("href")
            }
            _ => false,
        }
    }
}

/// Whether a `srcset` (`url 1x, url 2x`) has a remote candidate.
fn srcset_refers_remote(srcset: &str) -> bool {
    srcset
        .split(',')
        .filter_map(|candidate| candidate.split_ascii_whitespace().next())
        .any(is_remote)
}

/// Whether CSS loads something remote: a `url(...)`, or an `@import` of a string.
fn css_refers_remote(css: &str) -> bool {
    let mut rest = css;
    while let Some(i) = find_ci(rest, "url(") {
        rest = &rest[i + 4..];
        let end = rest.find(')').unwrap_or(rest.len());
        let url = rest[..end].trim().trim_matches(['"', '\'']);
        if is_remote(url) {
            return true;
        }
    }
    let mut rest = css;
    while let Some(i) = find_ci(rest, "@import") {
        rest = rest[i + 7..].trim_start();
        if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
            let inner = &rest[1..];
            if is_remote(&inner[..inner.find(q).unwrap_or(inner.len())]) {
                return true;
            }
        }
    }
    false
}

/// Whether a URL, as a browser reads it, is `http:` or `https:`, or a scheme-relative
/// `//host/...` (which takes the viewer's `http:`). Relative paths are not remote.
fn is_remote(url: &str) -> bool {
    // Browsers drop surrounding spaces and control characters, tabs and newlines anywhere,
    // and read `\` as `/` in http URLs.
    let url: String = url
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase()
        .replace('\\', "/");
    url.starts_with("http:") || url.starts_with("https:") || url.starts_with("//")
}

/// Byte offset of the first ASCII-case-insensitive occurrence of `needle` (ASCII) in `hay`.
fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    let n = needle.as_bytes();
    hay.as_bytes()
        .windows(n.len())
        .position(|w| w.eq_ignore_ascii_case(n))
}

/// Decodes numeric character references and the named ones that can spell a URL's scheme.
fn decode_references(value: &str) -> String {
    if !value.contains('&') {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[1..]
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '#')
            .map_or(rest.len(), |i| i + 1);
        let name = &rest[1..end];
        let decoded = if let Some(num) = name.strip_prefix('#') {
            match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => num.parse().ok(),
            }
            .and_then(char::from_u32)
        } else {
            match name {
                "amp" => Some('&'),
                "colon" => Some(':'),
                "sol" => Some('/'),
                "Tab" => Some('\t'),
                "NewLine" => Some('\n'),
                _ => None,
            }
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = rest[end..].strip_prefix(';').unwrap_or(&rest[end..]);
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

/// What [`links_open_in_new_tab`] puts at the start of a document.
const BASE_TARGET: &str = "<base target=\"_blank\">";

/// `html` with a `<base target="_blank">` before anything but its doctype, so that its links
/// open in a new browsing context (a frame sandboxed with `allow-popups` lets them) rather than
/// in the frame, where nothing would show. The first `<base>` with a target is the one that
/// counts, so a base of the mail's own comes second. Leading whitespace, comments and the
/// doctype stay first: a `<base>` before the doctype would switch the page to quirks mode.
/// A target-only base sets no base URL, so a `base-uri 'none'` policy does not refuse it;
/// `target="_blank"` implies `noopener`, and the answer's `Referrer-Policy` sends no referrer.
pub fn links_open_in_new_tab(html: &str) -> String {
    let mut at = 0;
    loop {
        let rest = &html[at..];
        let trimmed = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '\u{feff}');
        at += rest.len() - trimmed.len();
        let close = if let Some(comment) = trimmed.strip_prefix("<!--") {
            comment.find("-->").map(|i| 4 + i + 3)
        } else if trimmed.starts_with("<?")
            || trimmed
                .get(..9)
                .is_some_and(|d| d.eq_ignore_ascii_case("<!doctype"))
        {
            trimmed.find('>').map(|i| i + 1)
        } else {
            None
        };
        match close {
            Some(len) => at += len,
            None => break,
        }
    }
    let mut out = String::with_capacity(html.len() + BASE_TARGET.len());
    out.push_str(&html[..at]);
    out.push_str(BASE_TARGET);
    out.push_str(&html[at..]);
    out
}

/// Replaces each `cid:` reference in `html` with what `resolve` makes of its content id (the
/// reference percent-decoded, without angle brackets): a `data:` URI, or `None` to leave it.
/// At most `budget` bytes of URIs go in, counted at every use (one large image referred to
/// many times could otherwise make an answer of any size); references past that are left.
pub fn inline_cids(
    html: &str,
    budget: usize,
    mut resolve: impl FnMut(&str) -> Option<String>,
) -> String {
    let mut cache: HashMap<String, Option<String>> = HashMap::new();
    let mut spent = 0usize;
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = find_ci(rest, "cid:") {
        // Only a reference that starts a value: not the end of a word such as `acid:`.
        let starts_value = rest[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric() && !"-_.+".contains(c));
        let tail = &rest[i + 4..];
        let end = tail
            .find(|c: char| c.is_whitespace() || "\"'()<>\\,".contains(c))
            .unwrap_or(tail.len());
        out.push_str(&rest[..i]);
        let id = percent_encoding::percent_decode_str(&tail[..end]).decode_utf8_lossy();
        let id = id.trim_start_matches('<').trim_end_matches('>');
        let uri = match starts_value && !id.is_empty() {
            true => cache
                .entry(id.to_owned())
                .or_insert_with(|| resolve(id))
                .as_deref(),
            false => None,
        };
        match uri {
            Some(uri) if spent + uri.len() <= budget => {
                spent += uri.len();
                out.push_str(uri);
            }
            _ => out.push_str(&rest[i..i + 4 + end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_references_are_found_where_a_browser_loads_them() {
        let remote = [
            r#"<img src="https://t.example/p.gif">"#,
            r#"<IMG SRC='HTTP://t.example/p.gif'>"#,
            r#"<img src=http://t.example/p.gif>"#,
            r#"<img src="//t.example/p.gif">"#,
            r#"<img src=" \\t.example/p.gif">"#,
            r#"<img src="h&#116;tps&colon;//t.example/p.gif">"#,
            r#"<img srcset="a.png 1x, https://t.example/b.png 2x">"#,
            r#"<picture><source srcset="https://t.example/b.webp"></picture>"#,
            r#"<table><td background="https://t.example/bg.png">"#,
            r#"<div style="background:url( 'https://t.example/bg.png' )">"#,
            r#"<style>p { background: URL(http://t.example/x) }</style>"#,
            r#"<style>@import "https://t.example/s.css";</style>"#,
            r#"<link rel="preload stylesheet" href="https://t.example/s.css">"#,
            r#"<video poster="https://t.example/v.jpg"></video>"#,
            r#"<svg><image href="https://t.example/i.png"/></svg>"#,
        ];
        for html in remote {
            assert!(references_remote(html), "{html}");
        }
        let local = [
            "<p>Visit https://example.test today</p>",
            r#"<a href="https://example.test/">a link is not loaded</a>"#,
            r#"<img src="cid:logo@x"><img src="data:image/png;base64,AAAA">"#,
            r#"<img src="/relative.png"><img alt="http://x">"#,
            r#"<link rel="icon" href="https://t.example/favicon.ico">"#,
            r#"<!-- <img src="https://t.example/p.gif"> -->"#,
            r#"<script>var s = '<img src="https://t.example/p.gif">';</script>"#,
            r#"<title><img src="https://t.example/p.gif"></title>"#,
            r#"<p style="color: red">url(https://nope) in text</p>"#,
            "<img src=",
            "<",
            "",
        ];
        for html in local {
            assert!(!references_remote(html), "{html}");
        }
    }

    #[test]
    fn cid_references_become_what_resolve_gives_within_the_budget() {
        let resolve = |id: &str| match id {
            "logo@x" => Some("data:image/png;base64,AAAA".to_owned()),
            "a b" => Some("data:image/gif;base64,BB".to_owned()),
            _ => None,
        };
        let html = concat!(
            r#"<img src="cid:logo@x"><img src=CID:%3Clogo@x%3E>"#,
            r#"<div style="background:url(cid:a%20b)">acid:logo@x cid:unknown"#
        );
        assert_eq!(
            inline_cids(html, 1000, resolve),
            concat!(
                r#"<img src="data:image/png;base64,AAAA"><img src=data:image/png;base64,AAAA>"#,
                r#"<div style="background:url(data:image/gif;base64,BB)">acid:logo@x cid:unknown"#
            )
        );
        // Two uses fit in 52 bytes, not three: the third stays a reference.
        let three = r#"<img src="cid:logo@x"><img src="cid:logo@x"><img src="cid:logo@x">"#;
        let out = inline_cids(three, 52, resolve);
        assert_eq!(out.matches("data:").count(), 2, "{out}");
        assert!(out.ends_with(r#"<img src="cid:logo@x">"#), "{out}");
        let mut calls = 0;
        inline_cids(three, 1000, |id| {
            calls += 1;
            resolve(id)
        });
        assert_eq!(calls, 1, "each id is resolved once");
        assert_eq!(inline_cids("no references", 0, resolve), "no references");
    }

    #[test]
    fn the_base_target_comes_first_after_the_doctype() {
        let cases = [
            ("<p>hi</p>", "<base target=\"_blank\"><p>hi</p>"),
            ("", "<base target=\"_blank\">"),
            (
                "<!DOCTYPE html>\n<html><head><base target=_self></head>",
                "<!DOCTYPE html>\n<base target=\"_blank\"><html><head><base target=_self></head>",
            ),
            (
                " <!-- a -> b --><!doctype html><p>",
                " <!-- a -> b --><!doctype html><base target=\"_blank\"><p>",
            ),
            (
                "<?xml version=\"1.0\"?><!DOCTYPE html PUBLIC \"x\"><html>",
                "<?xml version=\"1.0\"?><!DOCTYPE html PUBLIC \"x\"><base target=\"_blank\"><html>",
            ),
            (
                "<!-- never closed",
                "<base target=\"_blank\"><!-- never closed",
            ),
            ("<!doctype html", "<base target=\"_blank\"><!doctype html"),
        ];
        for (html, want) in cases {
            assert_eq!(links_open_in_new_tab(html), want, "{html:?}");
        }
    }
}
