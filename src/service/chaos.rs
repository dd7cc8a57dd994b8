//! Fault injection: rules that make the server fail on purpose, the way real mail servers
//! fail, so that users can test how their own code copes.
//!
//! A [`Rule`] names a [`Stage`] (an SMTP command, the connection, or REST send), an [`Action`]
//! (a reply code, a delay, a disconnect, a throttle), a [`Trigger`] (always, a probability, the
//! next N events, a rate above which it fires) and optional sender and recipient globs. The
//! front-ends ask [`Chaos::check`] at each stage; rules are tried in order and the first that
//! fires wins. With no rules the check is one atomic load, so the hot path costs nothing.
//!
//! Probabilities draw from a per-rule SplitMix64 generator seeded by the rule's `seed`: a
//! documented 64-bit algorithm rather than a library RNG, so that a seed gives the same sequence
//! in every release of fakemail, not just in this build.
//!
//! The text form of a rule, for `--chaos-rule` and the API's `rule` strings, is
//! `STAGE:PART[:PART...]`, where each part is one of: a 3-digit reply code, an enhanced status
//! code (`4.3.0`), `delay=DURATION`, `disconnect`, `throttle=BYTES_PER_SECOND`, `N%`,
//! `next=N`, `max_per_minute=N`, `from=GLOB`, `to=GLOB`, `seed=N`, and last, `text=...`
//! (which takes the rest of the line, colons included).

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The most rules at once: enough for any test, small enough that a scan stays cheap.
pub const MAX_RULES: usize = 100;
/// The longest injected delay.
pub const MAX_DELAY: Duration = Duration::from_secs(600);
/// The window of `max_per_minute`.
const MINUTE: Duration = Duration::from_secs(60);

/// Where a rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// A new SMTP connection, before the greeting.
    Connect,
    /// EHLO or HELO.
    Ehlo,
    /// AUTH.
    Auth,
    /// MAIL FROM.
    Mail,
    /// RCPT TO, once per recipient.
    Rcpt,
    /// DATA: before the 354 for replies, delays and disconnects; while reading for throttles.
    Data,
    /// REST `POST /api/v1/messages`.
    ApiSend,
}

impl Stage {
    /// Every stage, in dialogue order.
    pub const ALL: [Stage; 7] = [
        Stage::Connect,
        Stage::Ehlo,
        Stage::Auth,
        Stage::Mail,
        Stage::Rcpt,
        Stage::Data,
        Stage::ApiSend,
    ];

    /// The snake_case name used in rules, logs and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Ehlo => "ehlo",
            Stage::Auth => "auth",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            Stage::ApiSend => "api_send",
        }
    }

    /// The place of the stage in [`Stage::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.name() == s)
    }

    fn has_sender(self) -> bool {
        matches!(
            self,
            Stage::Mail | Stage::Rcpt | Stage::Data | Stage::ApiSend
        )
    }

    fn has_recipients(self) -> bool {
        matches!(self, Stage::Rcpt | Stage::Data | Stage::ApiSend)
    }
}

/// What a rule does when it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer with this code instead of the real reply: an SMTP 4xx/5xx with an enhanced code
    /// and text, or for `api_send` an HTTP 4xx/5xx with the usual JSON error body.
    Reply {
        code: u16,
        enhanced: Option<String>,
        text: Option<String>,
    },
    /// Wait this long, then answer as usual.
    Delay(Duration),
    /// Close the connection without a reply.
    Disconnect,
    /// Read the DATA section at most this many bytes per second.
    Throttle(u64),
}

/// When a rule fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    /// Every matching event.
    Always,
    /// Each matching event with this probability, in percent (0 to 100).
    Percent(f64),
    /// Exactly the next `n` matching events, then never again.
    Next(u64),
    /// Matching events beyond `n` within any minute.
    MaxPerMinute(u64),
}

/// A rule as written by a user: what [`Chaos`] validates and stores.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub stage: Stage,
    pub action: Action,
    pub trigger: Trigger,
    /// Glob on the envelope sender (`*` any run, `?` one character; case-insensitive).
    pub from: Option<String>,
    /// Glob on a recipient: at `rcpt` the one being added; at `data` and `api_send`, any.
    pub to: Option<String>,
    /// Seed of the probability draws; a random one is chosen when absent.
    pub seed: Option<u64>,
}

/// The rule JSON of the admin API: the fields of [`RuleSpec`] flattened, or a text `rule`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The text form (`rcpt:451:4.3.0:50%`); exclusive with the other fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// `reply`, `delay`, `disconnect` or `throttle`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhanced_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A duration such as `2s` or `150ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_second: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// How often the rule has fired (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired: Option<u64>,
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::invalid("invalid_rule", field, message)
}

fn parse_delay(s: &str, field: &str) -> Result<Duration> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        invalid(
            field,
            format!("`{s}` is not a duration such as 2s or 150ms: {e}"),
        )
    })?;
    if d > MAX_DELAY {
        return Err(invalid(field, "a delay can be at most 10 minutes"));
    }
    Ok(d)
}

impl RuleSpec {
    /// Parses the text form (see the module docs); errors name the offending part as `field`.
    pub fn parse(text: &str) -> Result<RuleSpec> {
        let text = text.trim();
        let (stage, mut rest) = text.split_once(':').unwrap_or((text, ""));
        let mut json = RuleJson {
            stage: Some(stage.trim().to_owned()),
            ..RuleJson::default()
        };
        while !rest.is_empty() {
            if let Some(t) = rest.strip_prefix("text=") {
                json.text = Some(t.to_owned());
                break;
            }
            let (part, tail) = rest.split_once(':').unwrap_or((rest, ""));
            rest = tail;
            let part = part.trim();
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let number = |field: &str| -> Result<u64> {
                value.trim().parse().map_err(|_| {
                    invalid(field, format!("`{part}`: `{value}` is not a whole number"))
                })
            };
            let mut set_action = |a: &str| -> Result<()> {
                match &json.action {
                    Some(prev) if prev != a => Err(invalid(
                        "action",
                        format!(
                            "`{part}`: a rule has one action, and this one already has `{prev}`"
                        ),
                    )),
                    _ => {
                        json.action = Some(a.to_owned());
                        Ok(())
                    }
                }
            };
            match key {
                "delay" => {
                    set_action("delay")?;
                    json.delay = Some(value.to_owned());
                }
                "disconnect" if value.is_empty() => set_action("disconnect")?,
                "throttle" => {
                    set_action("throttle")?;
                    json.bytes_per_second = Some(number("bytes_per_second")?);
                }
                "next" => json.next = Some(number("next")?),
                "max_per_minute" => json.max_per_minute = Some(number("max_per_minute")?),
                "seed" => json.seed = Some(number("seed")?),
                "from" => json.from = Some(value.to_owned()),
                "to" => json.to = Some(value.to_owned()),
                _ if part.len() == 3 && part.bytes().all(|b| b.is_ascii_digit()) => {
                    set_action("reply")?;
                    json.code = part.parse().ok();
                }
                _ if part.ends_with('%') => {
                    let p = part.trim_end_matches('%');
                    json.probability = Some(p.parse().map_err(|_| {
                        invalid("probability", format!("`{part}` is not a percentage"))
                    })?);
                }
                _ if part.contains('.')
                    && part.bytes().all(|b| b.is_ascii_digit() || b == b'.') =>
                {
                    json.enhanced_code = Some(part.to_owned());
                }
                _ => {
                    return Err(invalid(
                        "rule",
                        format!(
                            "`{part}` is not a part of a rule (a reply code, an enhanced code, \
                             delay=, disconnect, throttle=, N%, next=, max_per_minute=, from=, \
                             to=, seed= or text=)"
                        ),
                    ));
                }
            }
        }
        json.into_spec()
    }

    /// The canonical text form, which [`RuleSpec::parse`] reads back to the same rule.
    pub fn text(&self) -> String {
        let mut parts = vec![self.stage.name().to_owned()];
        let mut text = None;
        match &self.action {
            Action::Reply {
                code,
                enhanced,
                text: t,
            } => {
                parts.push(code.to_string());
                parts.extend(enhanced.clone());
                text = t.clone();
            }
            Action::Delay(d) => parts.push(format!("delay={}", humantime::format_duration(*d))),
            Action::Disconnect => parts.push("disconnect".into()),
            Action::Throttle(b) => parts.push(format!("throttle={b}")),
        }
        match self.trigger {
            Trigger::Always => {}
            Trigger::Percent(p) => parts.push(format!("{p}%")),
            Trigger::Next(n) => parts.push(format!("next={n}")),
            Trigger::MaxPerMinute(n) => parts.push(format!("max_per_minute={n}")),
        }
        if let Some(g) = &self.from {
            parts.push(format!("from={g}"));
        }
        if let Some(g) = &self.to {
            parts.push(format!("to={g}"));
        }
        if let Some(s) = self.seed {
            parts.push(format!("seed={s}"));
        }
        if let Some(t) = text {
            parts.push(format!("text={t}"));
        }
        parts.join(":")
    }

    /// The JSON form, as the API shows it.
    pub fn to_json(&self) -> RuleJson {
        let mut j = RuleJson {
            rule: Some(self.text()),
            stage: Some(self.stage.name().to_owned()),
            from: self.from.clone(),
            to: self.to.clone(),
            seed: self.seed,
            ..RuleJson::default()
        };
        match &self.action {
            Action::Reply {
                code,
                enhanced,
                text,
            } => {
                j.action = Some("reply".into());
                j.code = Some(*code);
                j.enhanced_code = enhanced.clone();
                j.text = text.clone();
            }
            Action::Delay(d) => {
                j.action = Some("delay".into());
                j.delay = Some(humantime::format_duration(*d).to_string());
            }
            Action::Disconnect => j.action = Some("disconnect".into()),
            Action::Throttle(b) => {
                j.action = Some("throttle".into());
                j.bytes_per_second = Some(*b);
            }
        }
        match self.trigger {
            Trigger::Always => {}
            Trigger::Percent(p) => j.probability = Some(p),
            Trigger::Next(n) => j.next = Some(n),
            Trigger::MaxPerMinute(n) => j.max_per_minute = Some(n),
        }
        j
    }
}

impl fmt::Display for RuleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl RuleJson {
    /// Validates the JSON (or its `rule` text) into a rule; errors name the field.
    pub fn into_spec(self) -> Result<RuleSpec> {
        if let Some(text) = &self.rule {
            let others = RuleJson {
                rule: None,
                id: None,
                fired: None,
                ..self.clone()
            };
            if others.stage.is_some() || others.action.is_some() {
                return Err(invalid(
                    "rule",
                    "give a rule either as text in `rule` or as fields, not both",
                ));
            }
            return RuleSpec::parse(text);
        }
        let stage_name = self
            .stage
            .as_deref()
            .ok_or_else(|| invalid("stage", "a rule needs a stage"))?;
        let stage = Stage::parse(stage_name.trim()).ok_or_else(|| {
            invalid(
                "stage",
                format!(
                    "`{stage_name}` is not a stage; use one of connect, ehlo, auth, mail, rcpt, \
                     data, api_send"
                ),
            )
        })?;
        let triggers = [
            self.probability.is_some(),
            self.next.is_some(),
            self.max_per_minute.is_some(),
        ];
        if triggers.iter().filter(|t| **t).count() > 1 {
            return Err(invalid(
                "trigger",
                "give at most one of a probability, next and max_per_minute",
            ));
        }
        let trigger = if let Some(p) = self.probability {
            if !(0.0..=100.0).contains(&p) || p.is_nan() {
                return Err(invalid(
                    "probability",
                    format!("a probability is 0 to 100 percent, not {p}"),
                ));
            }
            Trigger::Percent(p)
        } else if let Some(n) = self.next {
            if n == 0 {
                return Err(invalid("next", "next must be at least 1"));
            }
            Trigger::Next(n)
        } else if let Some(n) = self.max_per_minute {
            Trigger::MaxPerMinute(n)
        } else {
            Trigger::Always
        };
        let action_name = match (&self.action, trigger) {
            (Some(a), _) => a.as_str(),
            (None, _) if self.code.is_some() => "reply",
            // A rate limit answers 421 4.7.0 above its figure unless told otherwise.
            (None, Trigger::MaxPerMinute(_)) => "reply",
            (None, _) => return Err(invalid("action", "a rule needs an action")),
        };
        let smtp = stage != Stage::ApiSend;
        let action = match action_name {
            "reply" => {
                let default_rate = matches!(trigger, Trigger::MaxPerMinute(_));
                let code = match self.code {
                    Some(c) => c,
                    None if default_rate => {
                        if smtp {
                            421
                        } else {
                            429
                        }
                    }
                    None => return Err(invalid("code", "a reply needs a code")),
                };
                if !(400..=599).contains(&code) || (smtp && code % 100 / 10 > 5) {
                    return Err(invalid(
                        "code",
                        format!(
                            "{code} is not a failure code; use a 4xx or 5xx {}",
                            if smtp { "SMTP reply" } else { "HTTP status" }
                        ),
                    ));
                }
                let enhanced = match &self.enhanced_code {
                    Some(e) => {
                        if !smtp {
                            return Err(invalid(
                                "enhanced_code",
                                "enhanced status codes are for SMTP stages",
                            ));
                        }
                        Some(check_enhanced(e, code)?)
                    }
                    None if smtp && default_rate && self.code.is_none() => Some("4.7.0".into()),
                    None => None,
                };
                if let Some(t) = &self.text
                    && (t.chars().any(char::is_control) || t.len() > 200)
                {
                    return Err(invalid(
                        "text",
                        "the text must be one line of at most 200 bytes",
                    ));
                }
                Action::Reply {
                    code,
                    enhanced,
                    text: self.text.clone().filter(|t| !t.trim().is_empty()),
                }
            }
            "delay" => Action::Delay(parse_delay(
                self.delay
                    .as_deref()
                    .ok_or_else(|| invalid("delay", "a delay needs a duration"))?,
                "delay",
            )?),
            "disconnect" if smtp => Action::Disconnect,
            "throttle" if stage == Stage::Data => {
                let b = self
                    .bytes_per_second
                    .ok_or_else(|| invalid("bytes_per_second", "a throttle needs a rate"))?;
                if b == 0 {
                    return Err(invalid(
                        "bytes_per_second",
                        "a throttle rate must be above 0",
                    ));
                }
                Action::Throttle(b)
            }
            "disconnect" | "throttle" => {
                return Err(invalid(
                    "action",
                    format!(
                        "`{action_name}` does not apply at stage `{}`{}",
                        stage.name(),
                        if action_name == "throttle" {
                            " (only at data)"
                        } else {
                            " (only at SMTP stages)"
                        }
                    ),
                ));
            }
            other => {
                return Err(invalid(
                    "action",
                    format!("`{other}` is not an action; use reply, delay, disconnect or throttle"),
                ));
            }
        };
        let glob = |g: &Option<String>, field: &str, applies: bool| -> Result<Option<String>> {
            match g {
                None => Ok(None),
                Some(_) if !applies => Err(invalid(
                    field,
                    format!("stage `{}` has no {field} address to match", stage.name()),
                )),
                Some(g) if g.is_empty() || g.len() > 320 || g.chars().any(char::is_control) => {
                    Err(invalid(field, "a glob is 1 to 320 characters on one line"))
                }
                Some(g) => Ok(Some(g.trim().to_ascii_lowercase())),
            }
        };
        Ok(RuleSpec {
            stage,
            from: glob(&self.from, "from", stage.has_sender())?,
            to: glob(&self.to, "to", stage.has_recipients())?,
            action,
            trigger,
            seed: self.seed,
        })
    }
}

/// Checks an enhanced status code `class.subject.detail` against its reply code.
fn check_enhanced(e: &str, code: u16) -> Result<String> {
    let parts: Vec<&str> = e.trim().split('.').collect();
    let ok = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        && parts[0] == (code / 100).to_string();
    if !ok {
        return Err(invalid(
            "enhanced_code",
            format!(
                "`{e}` is not an enhanced status code for {code}; write {}.x.y",
                code / 100
            ),
        ));
    }
    Ok(e.trim().to_owned())
}

/// `*` matches any run of characters, `?` any one; both sides already lower-case.
fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and the same sequence everywhere.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform draw in [0, 100).
    fn percent(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 100.0
    }
}

#[derive(Debug)]
struct RuleState {
    rng: SplitMix64,
    remaining: u64,
    window: VecDeque<Instant>,
}

/// A stored rule with its id and its mutable trigger state.
#[derive(Debug)]
pub struct Rule {
    pub id: u64,
    pub spec: RuleSpec,
    state: Mutex<RuleState>,
    fired: AtomicU64,
}

impl Rule {
    fn new(id: u64, spec: RuleSpec) -> Rule {
        let seed = spec.seed.unwrap_or_else(rand::random);
        let remaining = match spec.trigger {
            Trigger::Next(n) => n,
            _ => 0,
        };
        Rule {
            id,
            spec,
            state: Mutex::new(RuleState {
                rng: SplitMix64(seed),
                remaining,
                window: VecDeque::new(),
            }),
            fired: AtomicU64::new(0),
        }
    }

    /// The API view: the spec, the id and how often it fired.
    pub fn to_json(&self) -> RuleJson {
        RuleJson {
            id: Some(self.id),
            fired: Some(self.fired.load(Ordering::Relaxed)),
            ..self.spec.to_json()
        }
    }

    fn matches(&self, event: &Event<'_>) -> bool {
        if self.spec.stage != event.stage {
            return false;
        }
        if let Some(g) = &self.spec.from
            && !event
                .from
                .is_some_and(|a| glob_match(g, &a.to_ascii_lowercase()))
        {
            return false;
        }
        if let Some(g) = &self.spec.to
            && !event
                .to
                .iter()
                .any(|a| glob_match(g, &a.to_ascii_lowercase()))
        {
            return false;
        }
        true
    }

    /// Whether the trigger fires for one more matching event at `now`.
    fn fires(&self, now: Instant) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match self.spec.trigger {
            Trigger::Always => true,
            Trigger::Percent(p) => st.rng.percent() < p,
            Trigger::Next(_) => {
                if st.remaining == 0 {
                    return false;
                }
                st.remaining -= 1;
                true
            }
            Trigger::MaxPerMinute(n) => {
                while st
                    .window
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= MINUTE)
                {
                    st.window.pop_front();
                }
                if (st.window.len() as u64) < n {
                    st.window.push_back(now);
                    false
                } else {
                    true
                }
            }
        }
    }
}

/// One event a front-end asks about.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub stage: Stage,
    /// The envelope sender, where known.
    pub from: Option<&'a str>,
    /// The recipient being added (at `rcpt`), or all of them (at `data` and `api_send`).
    pub to: &'a [&'a str],
}

impl<'a> Event<'a> {
    /// An event with no addresses (connect, ehlo, auth).
    pub fn at(stage: Stage) -> Event<'a> {
        Event {
            stage,
            from: None,
            to: &[],
        }
    }
}

/// A fault to inject: the rule that fired and what to do.
#[derive(Debug, Clone)]
pub struct Fault {
    pub rule: u64,
    pub stage: Stage,
    pub action: Action,
}

impl Fault {
    /// The reply this fault answers with, when it is one (not a delay, a disconnect or a
    /// throttle).
    pub fn reply(&self) -> Option<InjectedReply> {
        match &self.action {
            Action::Reply {
                code,
                enhanced,
                text,
            } => Some(InjectedReply {
                rule: self.rule,
                stage: self.stage,
                code: *code,
                enhanced: enhanced.clone(),
                text: text.clone(),
            }),
            _ => None,
        }
    }
}

/// A reply a rule injects: the rule, where it fired, and its reply as the rule gives it. Each
/// front-end says it in its own protocol, in its one place for that (an SMTP reply, an HTTP
/// status with the JSON error body), so the domain error that carries it names neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedReply {
    pub rule: u64,
    pub stage: Stage,
    /// The rule's reply code: an SMTP 4xx/5xx, or at `api_send` an HTTP 4xx/5xx.
    pub code: u16,
    /// The rule's enhanced status code (SMTP stages only).
    pub enhanced: Option<String>,
    /// The rule's text, if it gives one.
    pub text: Option<String>,
}

impl fmt::Display for InjectedReply {
    /// The rule's text, or one that names the rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.text {
            Some(text) => f.write_str(text),
            None if self.stage == Stage::ApiSend => write!(
                f,
                "fault injected by chaos rule {}; the message was not sent",
                self.rule
            ),
            None => write!(f, "fault injected by chaos rule {}", self.rule),
        }
    }
}

/// Counts of injected faults, for the stats endpoint.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChaosStats {
    pub enabled: bool,
    pub rules: usize,
    pub faults: u64,
    /// Faults by stage, in the order of [`Stage::ALL`].
    pub by_stage: [u64; Stage::ALL.len()],
}

/// The rule set. Cheap to clone (clones share the rules and counters): the service owns it,
/// and each SMTP session holds a clone while `--chaos` is on.
#[derive(Debug, Clone)]
pub struct Chaos {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    enabled: bool,
    rules: RwLock<Arc<Vec<Arc<Rule>>>>,
    /// Mirrors `rules.len()`, so that a check with no rules reads one atomic and no lock.
    count: AtomicUsize,
    next_id: AtomicU64,
    faults: AtomicU64,
    /// Faults by stage, indexed by [`Stage::index`].
    by_stage: [AtomicU64; Stage::ALL.len()],
}

impl Chaos {
    /// A rule set; `enabled` is `--chaos`, without which no rule can be added. `rules` are
    /// the start-up rules (the config has checked there are at most [`MAX_RULES`]).
    pub fn new(enabled: bool, rules: Vec<RuleSpec>) -> Chaos {
        let rules: Vec<Arc<Rule>> = rules
            .into_iter()
            .zip(1..)
            .map(|(s, id)| Arc::new(Rule::new(id, s)))
            .collect();
        Chaos {
            inner: Arc::new(Inner {
                enabled,
                count: AtomicUsize::new(rules.len()),
                next_id: AtomicU64::new(rules.len() as u64 + 1),
                rules: RwLock::new(Arc::new(rules)),
                faults: AtomicU64::new(0),
                by_stage: Default::default(),
            }),
        }
    }

    /// Whether `--chaos` is on.
    pub fn enabled(&self) -> bool {
        self.inner.enabled
    }

    /// Whether any rule is set: one atomic read, for callers that would otherwise build an
    /// [`Event`] at a cost (a list of recipients) only to hear that nothing fires.
    pub fn has_rules(&self) -> bool {
        self.inner.count.load(Ordering::Acquire) != 0
    }

    fn ensure_enabled(&self) -> Result<()> {
        if self.inner.enabled {
            Ok(())
        } else {
            Err(Error::ChaosDisabled)
        }
    }

    fn snapshot(&self) -> Arc<Vec<Arc<Rule>>> {
        self.inner
            .rules
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn store(&self, rules: Vec<Arc<Rule>>) {
        let mut guard = self.inner.rules.write().unwrap_or_else(|p| p.into_inner());
        self.inner.count.store(rules.len(), Ordering::Release);
        *guard = Arc::new(rules);
    }

    /// The rules, in the order they are tried.
    pub fn rules(&self) -> Result<Vec<Arc<Rule>>> {
        self.ensure_enabled()?;
        Ok(self.snapshot().as_ref().clone())
    }

    /// Replaces every rule (their trigger state starts afresh).
    pub fn replace(&self, specs: Vec<RuleSpec>) -> Result<Vec<Arc<Rule>>> {
        self.ensure_enabled()?;
        if specs.len() > MAX_RULES {
            return Err(invalid("rules", format!("at most {MAX_RULES} rules")));
        }
        let rules: Vec<Arc<Rule>> = specs
            .into_iter()
            .map(|s| {
                Arc::new(Rule::new(
                    self.inner.next_id.fetch_add(1, Ordering::Relaxed),
                    s,
                ))
            })
            .collect();
        self.store(rules.clone());
        Ok(rules)
    }

    /// Appends a rule; returns it with its id.
    pub fn add(&self, spec: RuleSpec) -> Result<Arc<Rule>> {
        self.ensure_enabled()?;
        let mut guard = self.inner.rules.write().unwrap_or_else(|p| p.into_inner());
        if guard.len() >= MAX_RULES {
            return Err(invalid("rules", format!("at most {MAX_RULES} rules")));
        }
        let rule = Arc::new(Rule::new(
            self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            spec,
        ));
        let mut rules = guard.as_ref().clone();
        rules.push(rule.clone());
        self.inner.count.store(rules.len(), Ordering::Release);
        *guard = Arc::new(rules);
        Ok(rule)
    }

    /// Removes one rule.
    pub fn remove(&self, id: u64) -> Result<()> {
        self.ensure_enabled()?;
        let mut guard = self.inner.rules.write().unwrap_or_else(|p| p.into_inner());
        let before = guard.len();
        let rules: Vec<Arc<Rule>> = guard.iter().filter(|r| r.id != id).cloned().collect();
        if rules.len() == before {
            return Err(Error::NotFound("chaos rule"));
        }
        self.inner.count.store(rules.len(), Ordering::Release);
        *guard = Arc::new(rules);
        Ok(())
    }

    /// Removes every rule.
    pub fn clear(&self) -> Result<()> {
        self.ensure_enabled()?;
        self.store(Vec::new());
        Ok(())
    }

    /// The fault to inject for `event`, if a rule fires: rules are tried in order and the
    /// first that fires wins. Logs and counts the fault.
    pub fn check(&self, event: &Event<'_>) -> Option<Fault> {
        if !self.has_rules() {
            return None;
        }
        self.check_at(event, Instant::now())
    }

    fn check_at(&self, event: &Event<'_>, now: Instant) -> Option<Fault> {
        let rules = self.snapshot();
        let rule = rules.iter().find(|r| r.matches(event) && r.fires(now))?;
        rule.fired.fetch_add(1, Ordering::Relaxed);
        self.inner.faults.fetch_add(1, Ordering::Relaxed);
        self.inner.by_stage[event.stage.index()].fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            stage = event.stage.name(),
            rule = rule.id,
            action = %rule.spec,
            "chaos: fault injected"
        );
        Some(Fault {
            rule: rule.id,
            stage: event.stage,
            action: rule.spec.action.clone(),
        })
    }

    /// Counts for `GET /api/v1/admin/stats`.
    pub fn stats(&self) -> ChaosStats {
        ChaosStats {
            enabled: self.inner.enabled,
            rules: self.inner.count.load(Ordering::Relaxed),
            faults: self.inner.faults.load(Ordering::Relaxed),
            by_stage: std::array::from_fn(|i| self.inner.by_stage[i].load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> RuleSpec {
        RuleSpec::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn field_of(s: &str) -> String {
        match RuleSpec::parse(s) {
            Err(Error::Invalid { field, .. }) => field.unwrap_or_default(),
            other => panic!("{s}: expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_examples_of_the_docs() {
        let r = spec("rcpt:451:4.3.0:50%");
        assert_eq!(r.stage, Stage::Rcpt);
        assert_eq!(
            r.action,
            Action::Reply {
                code: 451,
                enhanced: Some("4.3.0".into()),
                text: None
            }
        );
        assert_eq!(r.trigger, Trigger::Percent(50.0));
        assert_eq!(
            spec("data:delay=2s").action,
            Action::Delay(Duration::from_secs(2))
        );
        let d = spec("connect:disconnect:next=3");
        assert_eq!(
            (d.action, d.trigger),
            (Action::Disconnect, Trigger::Next(3))
        );
        let t = spec("data:throttle=1024");
        assert_eq!(t.action, Action::Throttle(1024));
        let m = spec("rcpt:550:5.1.1:to=*@Bounce.test:text=No such user: here");
        assert_eq!(m.to.as_deref(), Some("*@bounce.test"));
        assert_eq!(
            m.action,
            Action::Reply {
                code: 550,
                enhanced: Some("5.1.1".into()),
                text: Some("No such user: here".into())
            }
        );
    }

    #[test]
    fn a_rate_limit_answers_421_by_default() {
        let r = spec("mail:max_per_minute=10");
        assert_eq!(
            r.action,
            Action::Reply {
                code: 421,
                enhanced: Some("4.7.0".into()),
                text: None
            }
        );
        let api = spec("api_send:max_per_minute=10");
        assert!(matches!(
            api.action,
            Action::Reply {
                code: 429,
                enhanced: None,
                ..
            }
        ));
    }

    #[test]
    fn text_form_round_trips() {
        for s in [
            "rcpt:451:4.3.0:50%",
            "data:delay=2s",
            "connect:disconnect:next=3",
            "data:throttle=512:from=*@slow.test",
            "rcpt:550:5.1.1:to=*@bounce.test:seed=7:text=No: such user",
            "api_send:503:12.5%",
            "mail:421:4.7.0:max_per_minute=5",
        ] {
            let r = spec(s);
            assert_eq!(spec(&r.text()), r, "{s} -> {}", r.text());
            assert_eq!(r.to_json().into_spec_via_text(), r);
        }
    }

    impl RuleJson {
        fn into_spec_via_text(self) -> RuleSpec {
            let fields = RuleJson { rule: None, ..self };
            fields.into_spec().expect("the JSON form validates")
        }
    }

    #[test]
    fn rejects_bad_rules_naming_the_field() {
        assert_eq!(field_of("smtp:451"), "stage");
        assert_eq!(field_of("rcpt:250"), "code");
        assert_eq!(field_of("rcpt:600"), "code");
        assert_eq!(field_of("rcpt:461"), "code");
        assert_eq!(field_of("rcpt:451:101%"), "probability");
        assert_eq!(field_of("rcpt:451:5.1.1"), "enhanced_code");
        assert_eq!(field_of("rcpt"), "action");
        assert_eq!(field_of("rcpt:451:delay=1s"), "action");
        assert_eq!(field_of("rcpt:throttle=10"), "action");
        assert_eq!(field_of("api_send:disconnect"), "action");
        assert_eq!(field_of("api_send:503:4.3.0"), "enhanced_code");
        assert_eq!(field_of("connect:421:to=*@x"), "to");
        assert_eq!(field_of("rcpt:451:next=0"), "next");
        assert_eq!(field_of("rcpt:451:next=2:50%"), "trigger");
        assert_eq!(field_of("data:delay=11m"), "delay");
        assert_eq!(field_of("data:delay=soon"), "delay");
        assert_eq!(field_of("rcpt:451:bogus"), "rule");
        assert_eq!(field_of("data:throttle=0"), "bytes_per_second");
    }

    #[test]
    fn globs_match_like_shells() {
        assert!(glob_match("*@bounce.test", "a@bounce.test"));
        assert!(!glob_match("*@bounce.test", "a@bounce.test.org"));
        assert!(glob_match("user?@x", "user1@x"));
        assert!(!glob_match("user?@x", "user@x"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }

    fn chaos(rules: &[&str]) -> Chaos {
        Chaos::new(true, rules.iter().map(|s| spec(s)).collect())
    }

    fn fired(c: &Chaos, stage: Stage, n: usize) -> Vec<bool> {
        (0..n)
            .map(|_| c.check(&Event::at(stage)).is_some())
            .collect()
    }

    #[test]
    fn next_n_fires_exactly_n_times() {
        let c = chaos(&["ehlo:421:next=3"]);
        assert_eq!(
            fired(&c, Stage::Ehlo, 6),
            [true, true, true, false, false, false]
        );
        let stats = c.stats();
        assert_eq!(stats.faults, 3);
        let mut by_stage = [0; Stage::ALL.len()];
        by_stage[Stage::Ehlo.index()] = 3;
        assert_eq!(stats.by_stage, by_stage);
    }

    #[test]
    fn stage_indexes_follow_the_dialogue_order() {
        for (i, stage) in Stage::ALL.into_iter().enumerate() {
            assert_eq!(stage.index(), i, "{stage:?}");
        }
    }

    #[test]
    fn a_seed_gives_the_same_sequence_every_time() {
        let a = fired(&chaos(&["ehlo:421:50%:seed=42"]), Stage::Ehlo, 64);
        let b = fired(&chaos(&["ehlo:421:50%:seed=42"]), Stage::Ehlo, 64);
        let other = fired(&chaos(&["ehlo:421:50%:seed=43"]), Stage::Ehlo, 64);
        assert_eq!(a, b);
        assert_ne!(a, other);
        let hits = a.iter().filter(|f| **f).count();
        assert!((16..=48).contains(&hits), "50% of 64 fired {hits} times");
        // The generator is SplitMix64: its first output for seed 0 is a published constant.
        assert_eq!(SplitMix64(0).next(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn zero_and_hundred_percent_are_never_and_always() {
        assert!(
            fired(&chaos(&["ehlo:421:0%"]), Stage::Ehlo, 50)
                .iter()
                .all(|f| !f)
        );
        assert!(
            fired(&chaos(&["ehlo:421:100%"]), Stage::Ehlo, 50)
                .iter()
                .all(|f| *f)
        );
    }

    #[test]
    fn rate_limit_fires_above_its_figure_within_a_minute() {
        let c = chaos(&["mail:max_per_minute=2"]);
        let t0 = Instant::now();
        let ev = Event::at(Stage::Mail);
        let at = |s: u64| c.check_at(&ev, t0 + Duration::from_secs(s)).is_some();
        assert_eq!([at(0), at(1), at(2), at(30)], [false, false, true, true]);
        // A minute after the first two, there is room again.
        assert!(!at(61));
    }

    #[test]
    fn first_matching_rule_wins_and_globs_select_recipients() {
        let c = chaos(&["rcpt:550:5.1.1:to=*@bounce.test", "rcpt:451:4.3.0"]);
        let to = |a: &str| {
            c.check(&Event {
                stage: Stage::Rcpt,
                from: Some("s@x.test"),
                to: &[a],
            })
            .map(|f| match f.action {
                Action::Reply { code, .. } => code,
                _ => 0,
            })
        };
        assert_eq!(to("u@BOUNCE.test"), Some(550));
        assert_eq!(to("u@ok.test"), Some(451));
        assert!(
            c.check(&Event::at(Stage::Data)).is_none(),
            "other stages untouched"
        );
    }

    #[test]
    fn disabled_chaos_refuses_rules() {
        let c = Chaos::new(false, Vec::new());
        assert!(matches!(c.add(spec("ehlo:421")), Err(Error::ChaosDisabled)));
        assert!(matches!(c.rules(), Err(Error::ChaosDisabled)));
        assert!(c.check(&Event::at(Stage::Ehlo)).is_none());
    }

    #[test]
    fn add_remove_and_clear() {
        let c = chaos(&[]);
        let a = c.add(spec("ehlo:421")).expect("add");
        let b = c.add(spec("mail:451")).expect("add");
        assert_ne!(a.id, b.id);
        c.remove(a.id).expect("remove");
        assert!(matches!(c.remove(a.id), Err(Error::NotFound(_))));
        assert!(c.check(&Event::at(Stage::Ehlo)).is_none());
        assert!(c.check(&Event::at(Stage::Mail)).is_some());
        c.clear().expect("clear");
        assert!(c.check(&Event::at(Stage::Mail)).is_none());
        assert_eq!(c.stats().rules, 0);
    }
}
