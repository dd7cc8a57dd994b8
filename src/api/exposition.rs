//! The Prometheus text exposition format, version 0.0.4: the one place that writes it. A
//! family is a `# HELP` and a `# TYPE` line, then its samples, one a line:
//! `name{label="value",...} value`. Label values escape `\`, `"` and line feeds; help texts
//! escape `\` and line feeds.

use std::fmt::Write;

/// The `Content-Type` of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The type of a family.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Only goes up (from zero at start-up); the name ends in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
}

/// A sample's value.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Int(n)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Float(x)
    }
}

/// A document being written: families in the order given, each with its samples.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
    family: &'static str,
}

impl Exposition {
    /// Starts a family with its help text; the samples that follow belong to it. A family may
    /// have no samples (a counter by labels nothing has counted yet).
    pub fn family(&mut self, name: &'static str, kind: Kind, help: &str) -> &mut Self {
        debug_assert!(valid_name(name), "metric name {name:?}");
        debug_assert!(
            matches!(kind, Kind::Counter) == name.ends_with("_total"),
            "{name}: counters, and only counters, end in _total"
        );
        self.family = name;
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(self.out, "\n# TYPE {name} {kind}");
        self
    }

    /// A sample of the current family.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl Into<Value>) -> &mut Self {
        debug_assert!(!self.family.is_empty(), "a sample before any family");
        self.out.push_str(self.family);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (name, value)) in labels.iter().enumerate() {
                debug_assert!(
                    valid_name(name) && !name.contains(':') && !name.starts_with("__"),
                    "label name {name:?}"
                );
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(name);
                self.out.push_str("=\"");
                escape_label_value(value, &mut self.out);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        match value.into() {
            Value::Int(n) => {
                let _ = write!(self.out, "{n}");
            }
            Value::Float(x) if x.is_nan() => self.out.push_str("NaN"),
            Value::Float(x) if x.is_infinite() => {
                self.out.push_str(if x > 0.0 { "+Inf" } else { "-Inf" });
            }
            Value::Float(x) => {
                let _ = write!(self.out, "{x}");
            }
        }
        self.out.push('\n');
        self
    }

    /// The document.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Appends `value` escaped for a label value: `\` as `\\`, `"` as `\"`, a line feed as `\n`.
pub fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, the form of metric names (label names also exclude `:`).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(v: &str) -> String {
        let mut out = String::new();
        escape_label_value(v, &mut out);
        out
    }

    #[test]
    fn label_values_escape_backslash_quote_and_line_feed_only() {
        assert_eq!(escaped("plain /api/v1/{id}"), "plain /api/v1/{id}");
        assert_eq!(escaped(r"a\b"), r"a\\b");
        assert_eq!(escaped(r#"say "hi""#), r#"say \"hi\""#);
        assert_eq!(escaped("two\nlines"), r"two\nlines");
        // A backslash before an n stays two characters, not a line feed.
        assert_eq!(escaped(r"\n"), r"\\n");
        assert_eq!(escaped("tab\tand é and \r"), "tab\tand é and \r");
        assert_eq!(escaped(""), "");
    }

    #[test]
    fn families_have_help_and_type_and_samples_follow() {
        let mut e = Exposition::default();
        e.family("x_requests_total", Kind::Counter, "Requests.\nBy \\ path.")
            .sample(&[("path", "/a\"b"), ("code", "200")], 3u64)
            .sample(&[], 0u64);
        e.family("x_up", Kind::Gauge, "Up.")
            .sample(&[], 1.5)
            .sample(&[("k", "v")], f64::INFINITY)
            .sample(&[], f64::NEG_INFINITY)
            .sample(&[], f64::NAN)
            .sample(&[], 2.0);
        e.family("x_empty_total", Kind::Counter, "Nothing yet.");
        assert_eq!(
            e.finish(),
            "# HELP x_requests_total Requests.\\nBy \\\\ path.\n\
             # TYPE x_requests_total counter\n\
             x_requests_total{path=\"/a\\\"b\",code=\"200\"} 3\n\
             x_requests_total 0\n\
             # HELP x_up Up.\n\
             # TYPE x_up gauge\n\
             x_up 1.5\n\
             x_up{k=\"v\"} +Inf\n\
             x_up -Inf\n\
             x_up NaN\n\
             x_up 2\n\
             # HELP x_empty_total Nothing yet.\n\
             # TYPE x_empty_total counter\n"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("fakemail_http_requests_total"));
        assert!(valid_name("_x:y9"));
        for bad in ["", "9x", "a-b", "a b", "é"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "end in _total")]
    fn a_counter_must_end_in_total() {
        Exposition::default().family("x_requests", Kind::Counter, "Requests.");
    }
}
