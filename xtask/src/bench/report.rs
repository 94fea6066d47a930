//! The benchmark report: a markdown table on stdout and a JSON file for later comparison.

use super::stats::Stats;
use serde::Serialize;
use std::collections::BTreeMap;

/// One measured quantity for every engine that could run it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What was measured.
    pub metric: String,
    /// The unit (`ms`, `MB`, `MB/s`).
    pub unit: String,
    /// Engine name → result (or the error text).
    pub results: BTreeMap<String, Result<Stats, String>>,
    /// The machine's floor for this row, when one applies.
    pub floor: Option<(String, Stats)>,
}

impl Row {
    /// A row with no results yet.
    pub fn new(metric: impl Into<String>, unit: &str) -> Row {
        Row {
            metric: metric.into(),
            unit: unit.to_string(),
            results: BTreeMap::new(),
            floor: None,
        }
    }
}

/// A result as the table shows it; factors (`×`) with two decimals (a growth of 1.10 is a goal).
fn cell(r: Option<&Result<Stats, String>>, unit: &str) -> String {
    match r {
        None => "—".to_string(),
        Some(Ok(s)) if s.n > 1 => format!("{:.1} ({:.1}–{:.1})", s.median, s.min, s.max),
        Some(Ok(s)) if unit == "×" => format!("{:.2}", s.median),
        Some(Ok(s)) => format!("{:.1}", s.median),
        Some(Err(e)) => format!("error: {}", e.chars().take(60).collect::<String>()),
    }
}

/// Renders the markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from("| metric | unit | berth | docker | podman | floor | ratio (docker/berth) | n |\n|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let berth = r.results.get("berth");
        let docker = r.results.get("docker");
        let ratio = match (berth, docker) {
            (Some(Ok(b)), Some(Ok(d))) if b.median > 0.0 => format!("{:.2}×", d.median / b.median),
            _ => "—".to_string(),
        };
        let floor = r
            .floor
            .as_ref()
            .map(|(name, s)| format!("{name} {:.1}", s.median))
            .unwrap_or_else(|| "—".into());
        let n = r
            .results
            .values()
            .filter_map(|x| x.as_ref().ok())
            .map(|s| s.n)
            .max()
            .unwrap_or(0);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.metric,
            r.unit,
            cell(berth, &r.unit),
            cell(docker, &r.unit),
            cell(r.results.get("podman"), &r.unit),
            floor,
            ratio,
            n
        ));
    }
    out
}
