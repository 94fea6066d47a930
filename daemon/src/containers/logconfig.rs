//! A container's `HostConfig.LogConfig`, as Docker's: the daemon's `log-driver` and
//! `log-opts` (daemon.json) are the default for a container that names no driver (or the
//! same driver, whose options it completes); the drivers are `json-file` and `none`; the
//! json-file options are checked at create with Docker's texts (Docker checks their values
//! at start, as "failed to initialize logging driver: ..."), and `max-size` / `max-file`
//! become the log rotation the container's monitor does (`<id>-json.log`, `.1`, `.2`...).

use berth_api::types::container::LogConfig;
use std::collections::BTreeMap;

/// The options Docker's json-file driver knows.
const JSON_FILE_OPTS: [&str; 8] = [
    "max-file",
    "max-size",
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
];

/// How the monitor rotates a json-file log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Bytes a file may hold before it is rotated (`None`: never rotated).
    pub max_size: Option<u64>,
    /// How many files there are at most, the one written included.
    pub max_file: u32,
}

/// Parses a size as Docker does (`RAMInBytes`): a decimal number with an optional binary
/// unit `k`, `m`, `g`, `t`, `p` (any case, an optional `i` and `b`), `1m` = 1048576.
pub fn parse_size(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid size: '{s}'");
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(split);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.contains("..") {
        return Err(bad());
    }
    let mut rest = rest.strip_prefix(' ').unwrap_or(rest).chars().peekable();
    let shift = match rest.peek().map(char::to_ascii_lowercase) {
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some('p') => 50,
        _ => 0,
    };
    if shift > 0 {
        rest.next();
    }
    rest.next_if(|c| c.eq_ignore_ascii_case(&'i'));
    rest.next_if(|c| c.eq_ignore_ascii_case(&'b'));
    if rest.next().is_some() {
        return Err(bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    Ok((v * (1u64 << shift) as f64) as i64)
}

/// Fills in the daemon's defaults and checks `lc` (a `LogConfig` object); Docker's error text
/// when it is refused.
pub fn merge_and_check(
    lc: &LogConfig,
    default_driver: &str,
    default_opts: &BTreeMap<String, String>,
) -> Result<LogConfig, String> {
    let mut out = lc.clone();
    if out.kind.is_empty() {
        out.kind = default_driver.to_string();
    }
    if out.kind == default_driver {
        for (k, v) in default_opts {
            out.config.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    check(&out.kind, &out.config)?;
    Ok(out)
}

/// Checks a driver and its options (also used for daemon.json's `log-opts`).
pub fn check(driver: &str, opts: &BTreeMap<String, String>) -> Result<(), String> {
    match driver {
        "json-file" => {
            if let Some(k) = opts.keys().find(|k| !JSON_FILE_OPTS.contains(&k.as_str())) {
                return Err(format!("unknown log opt '{k}' for json-file log driver"));
            }
            rotation_of(opts)
                .map(|_| ())
                .map_err(|e| format!("failed to initialize logging driver: {e}"))
        }
        "none" => match opts.keys().next() {
            Some(k) => Err(format!("unknown log opt '{k}' for none log driver")),
            None => Ok(()),
        },
        other => Err(format!(
            "error looking up logging plugin {other}: plugin \"{other}\" not found"
        )),
    }
}

/// The rotation json-file options ask for (Docker's checks and texts).
pub fn rotation_of(opts: &BTreeMap<String, String>) -> Result<Rotation, String> {
    let max_size = match opts.get("max-size") {
        Some(s) => {
            let n = parse_size(s)?;
            if n <= 0 {
                return Err("max-size must be a positive number".into());
            }
            Some(n as u64)
        }
        None => None,
    };
    let max_file = match opts.get("max-file") {
        Some(s) => {
            let n: i64 = s
                .parse()
                .map_err(|_| format!("strconv.Atoi: parsing \"{s}\": invalid syntax"))?;
            if n < 1 {
                return Err("max-file cannot be less than 1".into());
            }
            u32::try_from(n).unwrap_or(u32::MAX)
        }
        None => 1,
    };
    if let Some(c) = opts.get("compress") {
        match c.as_str() {
            "" | "false" | "0" | "f" | "F" | "FALSE" | "False" => {}
            "true" | "1" | "t" | "T" | "TRUE" | "True" => {
                return Err("compress is not supported by berth's json-file log driver".into())
            }
            _ => {
                return Err(format!(
                    "strconv.ParseBool: parsing \"{c}\": invalid syntax"
                ))
            }
        }
    }
    Ok(Rotation { max_size, max_file })
}

/// The rotation of a container record's `HostConfig.LogConfig` (none for other drivers or
/// options that no longer parse).
pub fn rotation(rec: &crate::containers::ContainerRecord) -> Option<Rotation> {
    let lc = &rec.host_config.log_config;
    if lc.kind != "json-file" {
        return None;
    }
    rotation_of(&lc.config).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn typed(v: Value) -> LogConfig {
        serde_json::from_value(v).expect("a LogConfig")
    }

    #[test]
    fn sizes_as_docker() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("1MB"), Ok(1 << 20));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size("abc"), Err("invalid size: 'abc'".into()));
        assert_eq!(parse_size("1x"), Err("invalid size: '1x'".into()));
        assert_eq!(parse_size(""), Err("invalid size: ''".into()));
    }

    #[test]
    fn options_checked_and_defaulted() {
        let mut d = BTreeMap::new();
        d.insert("max-size".to_string(), "1m".to_string());
        let lc = merge_and_check(&typed(json!({"Type": "", "Config": {}})), "json-file", &d)
            .expect("accepted");
        assert_eq!(
            lc,
            typed(json!({"Type": "json-file", "Config": {"max-size": "1m"}}))
        );
        let lc = merge_and_check(
            &typed(json!({"Type": "json-file", "Config": {"max-size": "2k", "max-file": "3"}})),
            "json-file",
            &d,
        )
        .expect("accepted");
        assert_eq!(lc.config["max-size"], "2k");
        let mut rec = crate::containers::ContainerRecord::default();
        rec.host_config.log_config = lc;
        let rot = rotation(&rec).expect("accepted");
        assert_eq!(
            rot,
            Rotation {
                max_size: Some(2048),
                max_file: 3
            }
        );
        // daemon.json's log-driver is the default; its options go only to that driver.
        let none_lc = typed(json!({"Type": "none", "Config": {}}));
        let none = merge_and_check(&typed(json!({})), "none", &BTreeMap::new()).expect("accepted");
        assert_eq!(none, none_lc);
        let other =
            merge_and_check(&typed(json!({"Type": "none"})), "json-file", &d).expect("accepted");
        assert_eq!(other, none_lc);
        let e = |lc: Value| {
            merge_and_check(&typed(lc), "json-file", &BTreeMap::new()).expect_err("refused")
        };
        assert_eq!(
            e(json!({"Type": "syslog"})),
            "error looking up logging plugin syslog: plugin \"syslog\" not found"
        );
        assert_eq!(
            e(json!({"Type": "json-file", "Config": {"foo": "1"}})),
            "unknown log opt 'foo' for json-file log driver"
        );
        assert_eq!(
            e(json!({"Type": "json-file", "Config": {"max-file": "0"}})),
            "failed to initialize logging driver: max-file cannot be less than 1"
        );
        assert_eq!(
            e(json!({"Type": "json-file", "Config": {"max-size": "big"}})),
            "failed to initialize logging driver: invalid size: 'big'"
        );
    }
}
