//! Health checks in Docker's shapes: `Config.Healthcheck` ([`HealthConfig`], durations in
//! nanoseconds as Go's `time.Duration`) and `State.Health` ([`Health`]: status, failing
//! streak, the last five probe results), with the rules dockerd applies to a probe's result.

use serde::{Deserialize, Serialize};

/// `starting`: no probe has passed yet since the container started.
pub const STARTING: &str = "starting";
/// `healthy`: the last probe passed.
pub const HEALTHY: &str = "healthy";
/// `unhealthy`: `Retries` probes in a row failed.
pub const UNHEALTHY: &str = "unhealthy";
/// What `ps --filter health=` calls a container without `State.Health`.
pub const NONE: &str = "none";
/// How many probe results `State.Health.Log` keeps (dockerd's `maxLogEntries`).
pub const MAX_LOG_ENTRIES: usize = 5;
/// How much of a probe's output dockerd keeps (`maxOutputLen`).
pub const MAX_OUTPUT_LEN: usize = 4096;

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// `Config.Healthcheck`: the test (`["NONE"]`, `["CMD", args...]`, `["CMD-SHELL", cmd]`;
/// empty: inherit the image's) and its timings; zero means "the default" (inherited from the
/// image at create, else dockerd's defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "super::container::nullable"
    )]
    pub test: Vec<String>,
    /// Between the end of a probe and the start of the next (ns).
    #[serde(skip_serializing_if = "is_zero")]
    pub interval: i64,
    /// A probe running longer has failed (ns).
    #[serde(skip_serializing_if = "is_zero")]
    pub timeout: i64,
    /// Failures in this time after the start do not count (ns).
    #[serde(skip_serializing_if = "is_zero")]
    pub start_period: i64,
    /// The interval during the start period (ns; API 1.44).
    #[serde(skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    /// Failures in a row that make the container unhealthy.
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: i64,
}

impl HealthConfig {
    /// Fills the fields this config leaves unset from `image`'s, as dockerd merges a create
    /// request's health check with its image's.
    pub fn inherit(&mut self, image: &HealthConfig) {
        if self.test.is_empty() {
            self.test = image.test.clone();
        }
        for (mine, theirs) in [
            (&mut self.interval, image.interval),
            (&mut self.timeout, image.timeout),
            (&mut self.start_period, image.start_period),
            (&mut self.start_interval, image.start_interval),
            (&mut self.retries, image.retries),
        ] {
            if *mine == 0 {
                *mine = theirs;
            }
        }
    }

    /// The command a probe runs, and whether it goes through the container's shell
    /// (`CMD-SHELL`); `None` for `NONE`, an empty test or an unknown kind (no probe, as
    /// dockerd's `getProbe`).
    pub fn probe(&self) -> Option<(&[String], bool)> {
        match self.test.split_first() {
            Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some((rest, false)),
            Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => Some((rest, true)),
            _ => None,
        }
    }
}

/// One probe's result in `State.Health.Log`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthcheckResult {
    /// RFC 3339 with nanoseconds.
    pub start: String,
    pub end: String,
    /// 0 healthy, 1 unhealthy, anything else a failure too; -1 when the probe could not run
    /// or ran out of time.
    pub exit_code: i64,
    pub output: String,
}

/// `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Health {
    /// [`STARTING`], [`HEALTHY`] or [`UNHEALTHY`].
    pub status: String,
    pub failing_streak: i64,
    /// The last [`MAX_LOG_ENTRIES`] results, oldest first.
    #[serde(deserialize_with = "super::container::nullable")]
    pub log: Vec<HealthcheckResult>,
}

impl Health {
    /// A (re)start: `starting` with no failures, the log of earlier runs kept (dockerd's
    /// `initHealthMonitor`).
    pub fn restart(&mut self) {
        self.status = STARTING.into();
        self.failing_streak = 0;
    }

    /// Records `result` as dockerd's `handleProbeResult` does: a pass makes the container
    /// healthy; a failure adds to the streak (not while it is still starting within its
    /// start period, `in_start_period`) and `retries` of them (0: 3) make it unhealthy.
    /// Returns whether the status changed.
    pub fn record(
        &mut self,
        result: HealthcheckResult,
        retries: i64,
        in_start_period: bool,
    ) -> bool {
        let before = self.status.clone();
        if self.log.len() >= MAX_LOG_ENTRIES {
            self.log.drain(..=self.log.len() - MAX_LOG_ENTRIES);
        }
        let passed = result.exit_code == 0;
        self.log.push(result);
        if passed {
            self.failing_streak = 0;
            self.status = HEALTHY.into();
        } else if !(self.status == STARTING && in_start_period) {
            self.failing_streak += 1;
            let retries = if retries <= 0 { 3 } else { retries };
            if self.failing_streak >= retries {
                self.status = UNHEALTHY.into();
            }
        }
        self.status != before
    }

    /// `ps`'s suffix: `health: starting`, `healthy`, `unhealthy`.
    pub fn summary(&self) -> String {
        if self.status == STARTING {
            format!("health: {STARTING}")
        } else {
            self.status.clone()
        }
    }
}

/// `output` cut as dockerd's `limitedBuffer`: its first [`MAX_OUTPUT_LEN`] bytes, then `...`
/// when there was more (a cut in a UTF-8 sequence shows as a replacement character).
pub fn capped_output(output: &[u8]) -> String {
    if output.len() <= MAX_OUTPUT_LEN {
        return String::from_utf8_lossy(output).into_owned();
    }
    format!("{}...", String::from_utf8_lossy(&output[..MAX_OUTPUT_LEN]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i64) -> HealthcheckResult {
        HealthcheckResult {
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn results_move_the_status_as_dockerd() {
        let mut h = Health::default();
        h.restart();
        // A failure in the start period leaves the streak alone.
        assert!(!h.record(result(1), 2, true));
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 0));
        assert!(!h.record(result(1), 2, false));
        assert_eq!(h.failing_streak, 1);
        assert!(h.record(result(2), 2, false));
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 2));
        assert!(h.record(result(0), 2, false));
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
        // Once healthy, the start period no longer shields failures.
        assert!(!h.record(result(1), 0, true));
        assert_eq!(h.failing_streak, 1);
        for _ in 0..10 {
            h.record(result(0), 0, false);
        }
        assert_eq!(h.log.len(), MAX_LOG_ENTRIES);
        assert_eq!(h.summary(), "healthy");
        h.restart();
        assert_eq!(h.summary(), "health: starting");
        assert_eq!(h.log.len(), MAX_LOG_ENTRIES);
    }

    #[test]
    fn configs_merge_and_probe_as_dockerd() {
        let image = HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: 5,
            retries: 2,
            ..Default::default()
        };
        let mut mine = HealthConfig {
            interval: 7,
            ..Default::default()
        };
        mine.inherit(&image);
        assert_eq!((mine.interval, mine.retries), (7, 2));
        assert_eq!(mine.probe(), Some((&image.test[1..], true)));
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        assert_eq!(none.probe(), None);
        let v: HealthConfig =
            serde_json::from_str(r#"{"Test":null,"Interval":1000000}"#).expect("parses");
        assert_eq!(
            serde_json::to_string(&v).expect("t"),
            r#"{"Interval":1000000}"#
        );
    }

    #[test]
    fn output_is_capped_as_dockerd() {
        assert_eq!(capped_output(b"ok\n"), "ok\n");
        let long = vec![b'x'; MAX_OUTPUT_LEN + 1];
        let c = capped_output(&long);
        assert_eq!(c.len(), MAX_OUTPUT_LEN + 3);
        assert!(c.ends_with("x..."));
    }
}
