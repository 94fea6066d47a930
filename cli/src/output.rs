//! Output helpers matching docker's formatting: tables, human sizes, "x ago", `--format`.

use serde_json::Value;

pub use berth_api::units::{human_duration, human_size};

/// "3 minutes ago" for a unix time.
pub fn ago(unix: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    format!("{} ago", human_duration(now - unix))
}

/// Prints rows as a docker-style table (columns padded, 3 spaces apart).
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                // docker's tabwriter: padding 3, minimum cell width 10.
                s.push_str(&format!("{c:<w$}", w = (widths[i] + 3).max(10)));
            }
        }
        println!("{}", s.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

/// A tiny Go-template subset: `{{.Field}}`, `{{json .}}`, `{{.A.B}}`, `\t`, and a `table`
/// prefix (header row from the field names).
pub fn format(tpl: &str, items: &[Value]) {
    let (table, tpl) = match tpl.strip_prefix("table") {
        Some(t) => (true, t.trim_start()),
        None => (false, tpl),
    };
    let tpl = tpl.replace("\\t", "\t").replace("\\n", "\n");
    if table {
        let header = render(&tpl, &Value::Null, true);
        println!("{header}");
    }
    for it in items {
        println!("{}", render(&tpl, it, false));
    }
}

fn render(tpl: &str, v: &Value, header: bool) -> String {
    let mut out = String::new();
    let mut rest = tpl;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let expr = rest[start + 2..start + end].trim();
        rest = &rest[start + end + 2..];
        if header {
            let name = expr
                .trim_start_matches("json")
                .trim()
                .trim_start_matches('.');
            out.push_str(&name.to_uppercase());
            continue;
        }
        if let Some(arg) = expr.strip_prefix("json") {
            let target = lookup(v, arg.trim());
            out.push_str(&target.to_string());
        } else {
            match lookup(v, expr) {
                Value::String(s) => out.push_str(&s),
                Value::Null => {}
                other => out.push_str(&other.to_string()),
            }
        }
    }
    out.push_str(rest);
    out
}

fn lookup(v: &Value, path: &str) -> Value {
    let path = path.trim();
    if path == "." {
        return v.clone();
    }
    let mut cur = v.clone();
    for p in path.trim_start_matches('.').split('.') {
        cur = cur.get(p).cloned().unwrap_or(Value::Null);
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(2_010_000.0), "2.01MB");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1_234_567_890.0), "1.23GB");
    }
}
