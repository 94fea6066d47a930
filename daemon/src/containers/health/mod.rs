//! Health checks (`HEALTHCHECK`, `--health-*`), as dockerd runs them: the create-time checks
//! of `Config.Healthcheck` ([`check`]), `State.Health` reset at each start ([`init`]), and a
//! prober task per running, unpaused container with a probe ([`start`], [`paused`],
//! [`resume`] after a berthd restart) that runs the test as an exec ([`probe`]) every
//! interval, records each result in the container's record (so it survives a berthd
//! restart) and announces `health_status: …` when the status changes. A container without a
//! health check gets no task and no timer: each hook returns after one look at its config.

mod probe;

use super::{exit, Container, ContainerRecord};
use crate::error::{ServiceError, ServiceResult};
use crate::state::Ctx;
use berth_api::types::health::{Health, HealthConfig, HealthcheckResult, STARTING, UNHEALTHY};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// dockerd's defaults for a zero `Interval`, `Timeout`, `StartPeriod`, `StartInterval`.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
/// The smallest duration dockerd accepts (`MinimumDuration`), in ns.
const MINIMUM_DURATION: i64 = 1_000_000;

/// The prober of one container: cancelled to stop it (a pause, a new start).
#[derive(Default)]
pub struct Slot(Mutex<Option<CancellationToken>>);

impl Slot {
    /// Stops the prober there is, and puts `next` in its place.
    fn replace(&self, next: Option<CancellationToken>) {
        let old = match self.0.lock() {
            Ok(mut s) => std::mem::replace(&mut *s, next),
            Err(e) => std::mem::replace(&mut *e.into_inner(), next),
        };
        if let Some(t) = old {
            t.cancel();
        }
    }
}

/// dockerd's create-time refusals of a health check (400s, with its texts).
pub fn check(hc: Option<&HealthConfig>) -> ServiceResult<()> {
    let Some(hc) = hc else { return Ok(()) };
    let too_short = |v: i64| v != 0 && v < MINIMUM_DURATION;
    for (name, v) in [
        ("Interval", hc.interval),
        ("Timeout", hc.timeout),
        ("StartPeriod", hc.start_period),
        ("StartInterval", hc.start_interval),
    ] {
        if too_short(v) {
            return Err(ServiceError::bad_request(format!(
                "{name} in Healthcheck cannot be less than 1ms"
            )));
        }
        if name == "Timeout" && hc.retries < 0 {
            return Err(ServiceError::bad_request(
                "Retries in Healthcheck cannot be negative",
            ));
        }
    }
    Ok(())
}

/// Whether the record's health check has a probe (not `NONE`, not empty).
fn probes(r: &ContainerRecord) -> bool {
    r.config
        .healthcheck
        .as_ref()
        .is_some_and(|h| h.probe().is_some())
}

/// At a start (in the record's update that marks it running): a container with a probe is
/// `starting` again with no failures, its log kept (dockerd's `initHealthMonitor`; `NONE`
/// gives no `State.Health`).
pub fn init(r: &mut ContainerRecord) {
    if probes(r) {
        r.state.health.get_or_insert_with(Health::default).restart();
    }
}

/// When its prober stops (an exit, a pause; in the record's update): `unhealthy`, as
/// dockerd's `CloseMonitorChannel` leaves it, with no event.
pub fn stopped(r: &mut ContainerRecord) {
    if probes(r) {
        if let Some(h) = r.state.health.as_mut() {
            h.status = UNHEALTHY.into();
        }
    }
}

/// After a start: the prober of a container whose health check has a probe.
pub fn start(ctx: &Ctx, c: &Arc<Container>) {
    if c.view(probes) {
        spawn(ctx, c);
    }
}

/// After a pause (`true`) or unpause: the prober stops, or starts again with a fresh
/// interval (dockerd's `updateHealthMonitor`).
pub fn paused(ctx: &Ctx, c: &Arc<Container>, paused: bool) {
    if paused {
        if c.view(probes) {
            c.health.replace(None);
            c.update(stopped);
            let _ = ctx.containers.save(c);
        }
    } else {
        start(ctx, c);
    }
}

/// After a berthd restart, for a container still running: its prober again, the status it
/// had kept.
pub fn resume(ctx: &Ctx, c: &Arc<Container>) {
    if !c.paused() {
        start(ctx, c);
    }
}

fn spawn(ctx: &Ctx, c: &Arc<Container>) {
    let stop = CancellationToken::new();
    c.health.replace(Some(stop.clone()));
    tokio::spawn(run(ctx.clone(), c.clone(), stop));
}

/// `ns` (0: `default`) as a duration.
fn or_default(ns: i64, default: Duration) -> Duration {
    u64::try_from(ns)
        .ok()
        .filter(|n| *n > 0)
        .map_or(default, Duration::from_nanos)
}

/// How long the container started at `started` has run.
fn since(started: &str) -> Duration {
    chrono::DateTime::parse_from_rfc3339(started)
        .ok()
        .and_then(|s| {
            (chrono::Utc::now() - s.with_timezone(&chrono::Utc))
                .to_std()
                .ok()
        })
        .unwrap_or(Duration::MAX)
}

/// The wait before the next probe: the start interval while the container is still
/// `starting` within its start period, else the interval.
fn next_interval(hc: &HealthConfig, started: &str, status: &str) -> Duration {
    let period = or_default(hc.start_period, Duration::ZERO);
    if since(started) < period && status == STARTING {
        or_default(hc.start_interval, DEFAULT_START_INTERVAL)
    } else {
        or_default(hc.interval, DEFAULT_INTERVAL)
    }
}

/// The prober: one probe after each interval until `stop` is cancelled or the run it was
/// started for ends (an exit, a removal).
async fn run(ctx: Ctx, c: Arc<Container>, stop: CancellationToken) {
    let ended = stop.clone();
    let mut life = c.events.subscribe();
    let exits = life.borrow().exits;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = ended.cancelled() => return,
                changed = life.changed() => {
                    let over = changed.is_err() || {
                        let l = life.borrow();
                        l.removed || l.exits != exits || !l.running
                    };
                    if over {
                        ended.cancel();
                        return;
                    }
                }
            }
        }
    });
    loop {
        let Some((hc, started, status)) = c.view(|r| {
            let status = r.state.health.as_ref().map(|h| h.status.clone());
            Some((
                r.config.healthcheck.clone()?,
                r.state.started_at.clone(),
                status?,
            ))
        }) else {
            return;
        };
        let Some((cmd, shell)) = hc.probe() else {
            return;
        };
        let argv = if shell {
            let mut a = shell_of(&c);
            a.extend(cmd.iter().cloned());
            a
        } else {
            cmd.to_vec()
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(next_interval(&hc, &started, &status)) => {}
        }
        let timeout = or_default(hc.timeout, DEFAULT_TIMEOUT);
        let probe::Outcome { result, ending } = probe::run(&ctx, &c, argv, timeout, &stop).await;
        if let Some(result) = result.filter(|_| !stop.is_cancelled()) {
            record(&ctx, &c, &hc, &started, result);
        }
        if let Some(ending) = ending {
            let _ = ending.await;
        }
        if stop.is_cancelled() {
            return;
        }
    }
}

/// Records a probe's `result` in the run of `c` that started at `started`.
fn record(ctx: &Ctx, c: &Container, hc: &HealthConfig, started: &str, result: HealthcheckResult) {
    let in_start_period = chrono::DateTime::parse_from_rfc3339(&result.start)
        .ok()
        .zip(chrono::DateTime::parse_from_rfc3339(started).ok())
        .and_then(|(s, t)| (s - t).to_std().ok())
        .is_some_and(|d| d < or_default(hc.start_period, Duration::ZERO));
    let changed = c.update(|r| {
        // An exit or pause recorded meanwhile has the last word.
        let same_run = r.state.running && !r.state.paused && r.state.started_at == started;
        let h = r.state.health.as_mut().filter(|_| same_run)?;
        h.record(result, hc.retries, in_start_period)
            .then(|| h.status.clone())
    });
    let _ = ctx.containers.save(c);
    if let Some(status) = changed {
        let action = format!("health_status: {status}");
        ctx.events
            .publish("container", &action, &c.id, exit::attrs(c));
    }
}

/// The shell a `CMD-SHELL` test runs in: the container's `Shell` (`SHELL` in its
/// Dockerfile), else `/bin/sh -c`.
fn shell_of(c: &Container) -> Vec<String> {
    c.view(|r| {
        r.config
            .extra
            .get("Shell")
            .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
            .filter(|s| !s.is_empty())
    })
    .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_checks_have_dockerds_texts() {
        let hc = |f: &dyn Fn(&mut HealthConfig)| {
            let mut h = HealthConfig::default();
            f(&mut h);
            check(Some(&h)).err().map(|e| e.to_string())
        };
        assert_eq!(hc(&|_| {}), None);
        assert_eq!(hc(&|h| h.interval = MINIMUM_DURATION), None);
        assert_eq!(
            hc(&|h| h.interval = 1).as_deref(),
            Some("Interval in Healthcheck cannot be less than 1ms")
        );
        assert_eq!(
            hc(&|h| h.timeout = 5).as_deref(),
            Some("Timeout in Healthcheck cannot be less than 1ms")
        );
        assert_eq!(
            hc(&|h| h.retries = -1).as_deref(),
            Some("Retries in Healthcheck cannot be negative")
        );
        assert_eq!(
            hc(&|h| h.start_period = 999).as_deref(),
            Some("StartPeriod in Healthcheck cannot be less than 1ms")
        );
        assert_eq!(check(None).ok(), Some(()));
    }

    #[test]
    fn intervals_as_dockerd() {
        let hc = HealthConfig {
            interval: 2_000_000_000,
            start_period: 60_000_000_000,
            start_interval: 500_000_000,
            ..Default::default()
        };
        let now = super::super::timestamp();
        assert_eq!(
            next_interval(&hc, &now, STARTING),
            Duration::from_millis(500)
        );
        assert_eq!(next_interval(&hc, &now, "healthy"), Duration::from_secs(2));
        let old = "2020-01-01T00:00:00Z";
        assert_eq!(next_interval(&hc, old, STARTING), Duration::from_secs(2));
        assert_eq!(
            next_interval(&HealthConfig::default(), old, STARTING),
            DEFAULT_INTERVAL
        );
    }
}
