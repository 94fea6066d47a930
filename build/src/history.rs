//! What Docker's classic builder records as a config step's history `created_by`: the shell
//! in effect and `#(nop)`, then the instruction with its words expanded and Go-formatted as
//! moby formats them (`CMD ["a" "b"]` is Go's `%q` of the command, `VOLUME [/a /b]` its
//! `%v`, `HEALTHCHECK &{…}` the `%q` of the health config). `docker history` shows it and
//! the build cache keys on it.

use crate::config::{command, kv_pairs, shell, ConfigError};
use crate::expand::expand_words;
use crate::parse::{Args, Instruction};
use serde_json::{Map, Value};

/// A string as Go's `%q` prints it.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A list of strings as Go's `%q` prints it: `["a" "b"]`.
fn go_quote_list(v: &[String]) -> String {
    let q: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", q.join(" "))
}

/// An integer as Go's `%q` prints it (a quoted rune: `'\x03'`, `'A'`).
fn go_rune(n: i64) -> String {
    match u32::try_from(n).ok().and_then(char::from_u32) {
        Some(c) if (0x20..0x7f).contains(&(c as u32)) && c != '\'' && c != '\\' => {
            format!("'{c}'")
        }
        Some(c) if (c as u32) < 0x100 => format!("'\\x{:02x}'", c as u32),
        Some(c) => format!("'\\u{:04x}'", c as u32),
        None => format!("{n}"),
    }
}

/// A duration in nanoseconds as Go's `time.Duration.String` prints it.
pub fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    let frac = |v: u64, unit: u64| -> String {
        let whole = v / unit;
        let rest = v % unit;
        if rest == 0 {
            return whole.to_string();
        }
        let digits = unit.ilog10() as usize;
        let f = format!("{rest:0digits$}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    };
    if u < 1_000 {
        return format!("{neg}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{neg}{}µs", frac(u, 1_000));
    }
    if u < 1_000_000_000 {
        return format!("{neg}{}ms", frac(u, 1_000_000));
    }
    let secs = u / 1_000_000_000;
    let sub = u % 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let s = frac(s * 1_000_000_000 + sub, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{neg}{s}s"),
        (0, m) => format!("{neg}{m}m{s}s"),
        (h, m) => format!("{neg}{h}h{m}m{s}s"),
    }
}

fn healthcheck(after: &Map<String, Value>) -> String {
    let hc = after.get("Healthcheck").cloned().unwrap_or_default();
    let test: Vec<String> = hc["Test"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let d = |k: &str| go_quote(&go_duration(hc[k].as_i64().unwrap_or(0)));
    format!(
        "&{{{} {} {} {} {}}}",
        go_quote_list(&test),
        d("Interval"),
        d("Timeout"),
        d("StartPeriod"),
        go_rune(hc["Retries"].as_i64().unwrap_or(0))
    )
}

/// `<shell> #(nop)  <text>`: the `created_by` of a step that changes no files.
pub fn nop(cfg: &Map<String, Value>, text: &str) -> String {
    format!("{} #(nop)  {text}", shell(cfg).join(" "))
}

/// The history `created_by` of the config instruction `ins`, which turned the config into
/// `after`; words are expanded with `vars` as [`crate::config::apply_with`] expands them.
pub fn created_by(
    ins: &Instruction,
    after: &Map<String, Value>,
    escape: char,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let words = || {
        expand_words(&ins.text(), vars, escape).map_err(|e| ConfigError::Invalid {
            line: ins.line,
            keyword: ins.keyword.clone(),
            message: e.to_string(),
        })
    };
    let list = |v: Value| berth_core::json::strings(&v);
    let text = match ins.keyword.as_str() {
        "CMD" | "ENTRYPOINT" => {
            format!(
                "{} {}",
                ins.keyword,
                go_quote_list(&list(command(ins, after)))
            )
        }
        "ENV" | "LABEL" => {
            let pairs: Vec<String> = kv_pairs(ins, words()?)?
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{} {}", ins.keyword, pairs.join(" "))
        }
        "EXPOSE" => {
            let mut w = words()?;
            w.sort();
            format!("EXPOSE {}", w.join(" "))
        }
        "VOLUME" => {
            let v = match &ins.args {
                Args::Json(v) => v.clone(),
                Args::Shell(_) => words()?,
            };
            format!("VOLUME [{}]", v.join(" "))
        }
        "SHELL" => format!("SHELL [{}]", shell(after).join(" ")),
        "HEALTHCHECK" => format!("HEALTHCHECK {}", healthcheck(after)),
        "WORKDIR" => {
            let wd = after
                .get("WorkingDir")
                .and_then(Value::as_str)
                .unwrap_or("");
            return Ok(format!("{} #(nop) WORKDIR {wd}", shell(after).join(" ")));
        }
        "USER" | "STOPSIGNAL" => format!("{} {}", ins.keyword, words()?.join(" ")),
        _ => format!("{} {}", ins.keyword, ins.text()),
    };
    Ok(nop(after, &text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(go_duration(30_000_000_000), "30s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_rune(0), "'\\x00'");
        assert_eq!(go_rune(65), "'A'");
        assert_eq!(
            go_quote_list(&["a\"b".into(), "c".into()]),
            "[\"a\\\"b\" \"c\"]"
        );
    }
}
