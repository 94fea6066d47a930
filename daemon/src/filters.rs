//! List filters as typed predicates: the HTTP side (`api/filters.rs`) parses Docker's
//! `filters` query parameter into these, and the domain applies them to its records without
//! ever seeing the query's JSON. The one label test (`key` present, or `key=value`) lives here
//! for every area.

/// One `label` filter value: `key` (present with any value) or `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    pub key: String,
    pub value: Option<String>,
}

impl LabelFilter {
    /// Parses `key` or `key=value`.
    pub fn parse(s: &str) -> LabelFilter {
        match s.split_once('=') {
            Some((k, v)) => LabelFilter {
                key: k.to_string(),
                value: Some(v.to_string()),
            },
            None => LabelFilter {
                key: s.to_string(),
                value: None,
            },
        }
    }

    /// Whether the labels `get` looks up carry this one (`get(key)`: the label's value).
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        match (&self.value, get(&self.key)) {
            (None, found) => found.is_some(),
            (Some(want), found) => found == Some(want.as_str()),
        }
    }
}

/// The `label` (all must match) and `label!` (none may match) filters of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    pub with: Vec<LabelFilter>,
    pub without: Vec<LabelFilter>,
}

impl Labels {
    /// Whether labels looked up by `get` pass.
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str> + Copy) -> bool {
        self.with.iter().all(|l| l.matches(get)) && !self.without.iter().any(|l| l.matches(get))
    }
}

/// What may be pruned, by Docker's `prune` filters (containers, networks): its labels pass
/// `label`/`label!` and it was created at or before `until` (Unix nanoseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneFilter {
    /// `label`, `label!`.
    pub labels: Labels,
    /// `until`.
    pub until: Option<i64>,
}

impl PruneFilter {
    /// Whether a record with labels looked up by `get` and created at `created` (RFC 3339)
    /// may be pruned (in use, running or predefined is the caller's to say).
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str> + Copy, created: &str) -> bool {
        let created = chrono::DateTime::parse_from_rfc3339(created)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt());
        self.labels.matches(get) && self.until.is_none_or(|u| created.is_some_and(|c| c <= u))
    }
}

/// A Docker boolean filter value: anything but `0` and `false` (any case) is true.
pub fn truthy(v: &str) -> bool {
    !matches!(v.to_ascii_lowercase().as_str(), "0" | "false")
}

/// A time as Docker's filters and `since`/`until` parameters give it (what moby's
/// `GetTimestamp` accepts), in Unix nanoseconds: a Go duration back from `now` (`10m`,
/// `1h30m`, `-5s`), RFC 3339 (`2026-01-02T15:04:05.5Z`, `...+02:00`), a date or date-time
/// without a zone in the daemon's local time (`2026-01-02`, `2026-01-02T15`,
/// `2026-01-02T15:04`, `2026-01-02T15:04:05`), or Unix seconds (`1700000000`, `1.5`).
pub fn timestamp(v: &str, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone};
    let v = v.trim();
    if v != "0" {
        if let Some(d) = go_duration_nanos(v) {
            return now.timestamp_nanos_opt()?.checked_sub(d);
        }
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return t.timestamp_nanos_opt();
    }
    let local = |t: NaiveDateTime| {
        chrono::Local
            .from_local_datetime(&t)
            .earliest()?
            .timestamp_nanos_opt()
    };
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, fmt) {
            return local(t);
        }
    }
    if let Some((day, hour)) = v.split_once('T') {
        let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
        let hour: u32 = hour.parse().ok().filter(|_| hour.len() == 2)?;
        return local(day.and_hms_opt(hour, 0, 0)?);
    }
    if let Ok(day) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return local(day.and_hms_opt(0, 0, 0)?);
    }
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// A Go duration (`300ms`, `-1.5h`, `2h45m`) in nanoseconds; `None` if `v` is not one.
pub fn go_duration_nanos(v: &str) -> Option<i64> {
    let (neg, mut rest) = match v.as_bytes().first()? {
        b'-' => (true, &v[1..]),
        b'+' => (false, &v[1..]),
        _ => (false, v),
    };
    if rest == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&i| i > 0)?;
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit: f64 = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += n * unit;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    Some(if neg { -(total as i64) } else { total as i64 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn labels_match_like_docker() {
        let mut m = BTreeMap::new();
        m.insert("app".to_string(), "web".to_string());
        m.insert("tier".to_string(), String::new());
        let get = |k: &str| m.get(k).map(String::as_str);
        let f = |with: &[&str], without: &[&str]| Labels {
            with: with.iter().map(|s| LabelFilter::parse(s)).collect(),
            without: without.iter().map(|s| LabelFilter::parse(s)).collect(),
        };
        assert!(f(&[], &[]).matches(get));
        assert!(f(&["app"], &[]).matches(get));
        assert!(f(&["app=web", "tier="], &[]).matches(get));
        assert!(!f(&["app=db"], &[]).matches(get));
        assert!(!f(&["app", "zone"], &[]).matches(get));
        assert!(f(&[], &["app=db", "zone"]).matches(get));
        assert!(!f(&[], &["app"]).matches(get));
        assert!(!f(&[], &["app=web"]).matches(get));
        assert!(truthy("1") && truthy("TRUE") && truthy("yes"));
        assert!(!truthy("0") && !truthy("False"));
    }

    #[test]
    fn timestamps_in_dockers_forms() {
        use chrono::TimeZone;
        let now = chrono::Utc
            .timestamp_opt(1_000_000, 0)
            .single()
            .expect("a time");
        let s = |v: &str| timestamp(v, now);
        const NS: i64 = 1_000_000_000;
        assert_eq!(s("10m"), Some((1_000_000 - 600) * NS));
        assert_eq!(s("1h30m"), Some((1_000_000 - 5400) * NS));
        assert_eq!(s("1.5s"), Some(1_000_000 * NS - 1_500_000_000));
        assert_eq!(s("-5s"), Some((1_000_000 + 5) * NS));
        assert_eq!(s("0"), Some(0), "0 is the epoch, not now");
        assert_eq!(s("1.5"), Some(1_500_000_000));
        assert_eq!(s("1700000000"), Some(1_700_000_000 * NS));
        assert_eq!(s("1970-01-01T00:00:02Z"), Some(2 * NS));
        assert_eq!(s("1970-01-01T01:00:02.5+01:00"), Some(2 * NS + NS / 2));
        let local = |y, mo, d, h, mi, se| {
            chrono::Local
                .with_ymd_and_hms(y, mo, d, h, mi, se)
                .earliest()
                .and_then(|t| t.timestamp_nanos_opt())
        };
        assert_eq!(s("2026-01-02"), local(2026, 1, 2, 0, 0, 0));
        assert_eq!(s("2026-01-02T15"), local(2026, 1, 2, 15, 0, 0));
        assert_eq!(s("2026-01-02T15:04"), local(2026, 1, 2, 15, 4, 0));
        assert_eq!(s("2026-01-02T15:04:05"), local(2026, 1, 2, 15, 4, 5));
        for bad in [
            "soon",
            "10x",
            "1.2.3",
            "",
            "h",
            "2026-13-01",
            "1.1234567890",
        ] {
            assert_eq!(s(bad), None, "{bad}");
        }
    }
}
