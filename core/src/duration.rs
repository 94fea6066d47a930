//! Go's duration syntax, as Docker reads and writes durations (`HEALTHCHECK --interval=1m30s`,
//! `--health-timeout 500ms`, `Health check exceeded timeout (1s)`): [`parse`] is Go's
//! `time.ParseDuration` and [`format`] its `Duration.String`, both in nanoseconds.

/// Nanoseconds of each unit Go accepts.
const UNITS: &[(&str, f64)] = &[
    ("ns", 1.0),
    ("us", 1e3),
    ("µs", 1e3),
    ("μs", 1e3),
    ("ms", 1e6),
    ("s", 1e9),
    ("m", 60e9),
    ("h", 3600e9),
];

/// `s` in nanoseconds as Go's `time.ParseDuration` reads it (`1h2m3.5s`, `-1.5ms`, `0`);
/// `None` for anything it refuses (no unit, an unknown unit, an overflow).
pub fn parse(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." {
            return None;
        }
        let n: f64 = num.parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let mult = UNITS.iter().find(|(u, _)| *u == unit)?.1;
        total += n * mult;
        rest = &rest[unit_len..];
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let ns = total.round() as i64;
    Some(if neg { -ns } else { ns })
}

/// `ns` as Go's `Duration.String` writes it: `0s`, `1.5µs`, `500ms`, `1s`, `1m30s`, `1h0m0s`.
pub fn format(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let sign = if neg { "-" } else { "" };
    if u < 1_000_000_000 {
        // Under a second: the largest unit that keeps a non-zero integer part.
        let (div, unit) = match u {
            u if u < 1_000 => (1, "ns"),
            u if u < 1_000_000 => (1_000, "µs"),
            _ => (1_000_000, "ms"),
        };
        return format!("{sign}{}{unit}", fraction(u, div));
    }
    let secs = u / 1_000_000_000;
    let sub = u % 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let s = fraction(s * 1_000_000_000 + sub, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{sign}{s}s"),
        (0, m) => format!("{sign}{m}m{s}s"),
        (h, m) => format!("{sign}{h}h{m}m{s}s"),
    }
}

/// `v / div` with its decimals, trailing zeros dropped (`1500, 1000` → `1.5`).
fn fraction(v: u64, div: u64) -> String {
    let (int, rem) = (v / div, v % div);
    if rem == 0 {
        return int.to_string();
    }
    let width = div.ilog10() as usize;
    let dec = format!("{rem:0width$}");
    format!("{int}.{}", dec.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_go() {
        for (s, ns) in [
            ("0", 0),
            ("1s", 1_000_000_000),
            ("500ms", 500_000_000),
            ("1.5s", 1_500_000_000),
            ("1m30s", 90_000_000_000),
            ("1h", 3_600_000_000_000),
            ("-2ms", -2_000_000),
            ("10us", 10_000),
            ("3µs", 3_000),
            ("7ns", 7),
            (".5s", 500_000_000),
        ] {
            assert_eq!(parse(s), Some(ns), "{s}");
        }
        for bad in ["", "1", "s", "1x", "1.2.3s", "-", "1s2"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_as_go() {
        for (ns, s) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (1_000_000, "1ms"),
            (200_000_000, "200ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (-2_000_000, "-2ms"),
        ] {
            assert_eq!(format(ns), s, "{ns}");
        }
    }
}
