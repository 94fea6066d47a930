//! Timing samples and their summary (median, min, max), and the command timer.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::process::{Command, Stdio};
use std::time::Instant;

/// A summary of samples, in the row's unit.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Median.
    pub median: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// Number of samples.
    pub n: usize,
}

impl Stats {
    /// Summarises samples; `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(|a, b| a.total_cmp(b));
        let median = if s.len() % 2 == 1 {
            s[s.len() / 2]
        } else {
            (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
        };
        Some(Stats {
            median,
            min: s[0],
            max: s[s.len() - 1],
            n: s.len(),
        })
    }

    /// One sample.
    pub fn single(v: f64) -> Stats {
        Stats {
            median: v,
            min: v,
            max: v,
            n: 1,
        }
    }
}

/// Runs `cmd` to completion with output discarded, failing on a non-zero exit; returns ms.
pub fn time_ms(cmd: &mut Command) -> Result<f64> {
    let start = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("starting {}", crate::sh::display(cmd)))?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            crate::sh::display(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    Ok(ms)
}

/// Times `f` once in ms.
pub fn time_fn(f: impl FnOnce() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}
