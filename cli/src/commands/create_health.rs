//! The health-check flags of `run`/`create` (`--health-cmd`, `--health-interval`,
//! `--health-timeout`, `--health-retries`, `--health-start-period`,
//! `--health-start-interval`, `--no-healthcheck`) and the `Healthcheck` they make, with the
//! docker CLI's rules and texts.

use anyhow::{bail, Result};
use clap::Args;
use serde_json::{json, Value};

/// A Go duration flag value (`30s`, `1m30s`, `500ms`), in nanoseconds.
fn duration(s: &str) -> Result<i64, String> {
    berth_core::duration::parse(s).ok_or_else(|| format!("time: invalid duration {s:?}"))
}

/// The health-check flags.
#[derive(Debug, Args, Clone, Default)]
pub struct HealthArgs {
    /// Command to run to check health.
    #[arg(long)]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s).
    #[arg(long, value_parser = duration, allow_hyphen_values = true)]
    pub health_interval: Option<i64>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long, allow_hyphen_values = true)]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries
    /// countdown (ms|s|m|h) (default 0s).
    #[arg(long, value_parser = duration, allow_hyphen_values = true)]
    pub health_start_period: Option<i64>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s).
    #[arg(long, value_parser = duration, allow_hyphen_values = true)]
    pub health_start_interval: Option<i64>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s).
    #[arg(long, value_parser = duration, allow_hyphen_values = true)]
    pub health_timeout: Option<i64>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long)]
    pub no_healthcheck: bool,
}

impl HealthArgs {
    /// The create body's `Healthcheck`: `null` when no flag was given (the image's stays),
    /// `{"Test":["NONE"]}` for `--no-healthcheck`, else the flags' values.
    pub fn config(&self) -> Result<Value> {
        let n = |v: Option<i64>| v.unwrap_or(0);
        let cmd = self.health_cmd.as_deref().unwrap_or("");
        let any = !cmd.is_empty()
            || [
                self.health_interval,
                self.health_timeout,
                self.health_start_period,
                self.health_retries,
                self.health_start_interval,
            ]
            .iter()
            .any(|v| n(*v) != 0);
        if self.no_healthcheck {
            if any {
                bail!("--no-healthcheck conflicts with --health-* options");
            }
            return Ok(json!({"Test": ["NONE"]}));
        }
        if !any {
            return Ok(Value::Null);
        }
        for (flag, v) in [
            ("interval", self.health_interval),
            ("timeout", self.health_timeout),
            ("retries", self.health_retries),
            ("start-period", self.health_start_period),
            ("start-interval", self.health_start_interval),
        ] {
            if n(v) < 0 {
                bail!("--health-{flag} cannot be negative");
            }
        }
        let test = if cmd.is_empty() {
            Value::Null
        } else {
            json!(["CMD-SHELL", cmd])
        };
        Ok(json!({
            "Test": test,
            "Interval": n(self.health_interval),
            "Timeout": n(self.health_timeout),
            "StartPeriod": n(self.health_start_period),
            "StartInterval": n(self.health_start_interval),
            "Retries": n(self.health_retries),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_make_dockers_healthcheck() {
        assert_eq!(HealthArgs::default().config().ok(), Some(Value::Null));
        let none = HealthArgs {
            no_healthcheck: true,
            ..Default::default()
        };
        assert_eq!(none.config().ok(), Some(json!({"Test": ["NONE"]})));
        let both = HealthArgs {
            health_retries: Some(2),
            ..none
        };
        assert!(both.config().is_err());
        let a = HealthArgs {
            health_cmd: Some("true".into()),
            health_interval: duration("1m30s").ok(),
            ..Default::default()
        };
        let v = a.config().expect("valid");
        assert_eq!(v["Test"], json!(["CMD-SHELL", "true"]));
        assert_eq!(v["Interval"], json!(90_000_000_000_i64));
        let neg = HealthArgs {
            health_timeout: duration("-1s").ok(),
            ..Default::default()
        };
        assert_eq!(
            neg.config().err().map(|e| e.to_string()).as_deref(),
            Some("--health-timeout cannot be negative")
        );
        assert!(duration("5").is_err());
    }
}
