//! Wall-clock timestamps: seconds since the Unix epoch in storage, RFC 3339 UTC on the wire;
//! and the durations given as text (`90s`, `7d`), message ages among them, which count in the
//! same whole seconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, whole seconds since the Unix epoch (UTC).
///
/// Stored big-endian inside index keys so that byte order is time order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self::from_system(SystemTime::now())
    }

    /// Converts a `SystemTime`, clamping times before the epoch to the epoch.
    pub fn from_system(t: SystemTime) -> Self {
        Timestamp(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }

    /// This time plus `d`, saturating at the far future.
    pub fn after(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(d.as_secs()))
    }

    /// How long from `self` until `later` (zero if `later` is not later).
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_secs(later.0.saturating_sub(self.0))
    }

    /// RFC 3339 in UTC with second precision, e.g. `2026-11-24T17:10:37Z`.
    pub fn to_rfc3339(self) -> String {
        let t = UNIX_EPOCH + Duration::from_secs(self.0);
        humantime::format_rfc3339_seconds(t).to_string()
    }
}

/// A humantime duration, zero allowed (`0s`, `90s`, `7d`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30s, 15m, 24h, 7d)"))
}

/// An age of messages: a humantime duration in whole seconds, zero allowed (`0s`, `90s`, `7d`).
/// Messages are stamped to the second, so a part of a second could only be rounded, and
/// `500ms` rounded down would be `0s`: every message.
pub fn parse_age(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.subsec_nanos() != 0 {
        return Err(format!(
            "`{}` is not a whole number of seconds; message ages are counted in whole seconds \
             (examples: 1s, 90s, 12h, 7d)",
            s.trim()
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp(1_795_000_000).to_rfc3339(),
            "2026-11-18T11:06:40Z"
        );
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(
            Timestamp(u64::MAX).after(Duration::from_secs(5)),
            Timestamp(u64::MAX)
        );
        assert_eq!(Timestamp(10).until(Timestamp(4)), Duration::ZERO);
        assert_eq!(Timestamp(4).until(Timestamp(10)), Duration::from_secs(6));
    }
}
