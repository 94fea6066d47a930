//! One health probe: the test run as an exec in the container (through the exec path, so it
//! has the container's user, environment, working folder and confinement, and dockerd's
//! `exec_create`/`exec_start`/`exec_die` events), its stdout and stderr kept together up to
//! dockerd's 4 KiB, ended after its timeout as dockerd ends it (SIGTERM, SIGKILL 10 s later)
//! with exit code -1 and "Health check exceeded timeout (…)".

use super::super::{exec, timestamp, Container};
use crate::state::Ctx;
use berth_api::types::container::ExecConfig;
use berth_api::types::health::{capped_output, HealthcheckResult, MAX_OUTPUT_LEN};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// How long a probe's process has after SIGTERM before SIGKILL (dockerd's
/// `termProcessTimeout`).
const TERM_GRACE: Duration = Duration::from_secs(10);
/// How long output left in the pipes is still read once the process has exited (a
/// background child may hold them open).
const DRAIN_MAX: Duration = Duration::from_secs(1);

/// A probe's outcome: its result (`None` when `stop` was cancelled meanwhile: nothing is
/// recorded), and, for a probe that ran out of time or was stopped, the ending of its
/// process, to be awaited once the result is recorded (dockerd records a timeout at once,
/// then waits for the probe to die before the next interval).
pub struct Outcome {
    pub result: Option<HealthcheckResult>,
    pub ending: Option<tokio::task::JoinHandle<()>>,
}

/// Runs `argv` in `c` for at most `timeout`.
pub async fn run(
    ctx: &Ctx,
    c: &Arc<Container>,
    argv: Vec<String>,
    timeout: Duration,
    stop: &CancellationToken,
) -> Outcome {
    let start = timestamp();
    let failed = |output: String| Outcome {
        result: Some(HealthcheckResult {
            start: start.clone(),
            end: timestamp(),
            exit_code: -1,
            output,
        }),
        ending: None,
    };
    let (user, working_dir) = c.view(|r| (r.config.user.clone(), r.config.working_dir.clone()));
    let config = ExecConfig {
        cmd: argv,
        attach_stdout: true,
        attach_stderr: true,
        user,
        working_dir,
        ..ExecConfig::default()
    };
    let id = match exec::create(ctx, c, config) {
        Ok(id) => id,
        Err(e) => return failed(e.to_string()),
    };
    let mut out = match exec::start(ctx, &id, false).await {
        Ok(s) => watch(ctx, c, id, s, timeout, stop).await,
        Err(e) => {
            forget(ctx, &id);
            failed(e.to_string())
        }
    };
    out.result = out.result.map(|r| HealthcheckResult { start, ..r });
    out
}

/// Probes are not kept for `exec inspect` (one every interval would pile up).
fn forget(ctx: &Ctx, id: &str) {
    if let Ok(mut m) = ctx.containers.execs.lock() {
        m.remove(id);
    }
}

/// Reads `r` into `out` (stdout and stderr as they come) until its end, keeping one byte
/// more than dockerd shows, so that [`capped_output`] knows there was more.
fn collect(
    mut r: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    out: Arc<Mutex<Vec<u8>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if let Ok(mut o) = out.lock() {
                let keep = n.min((MAX_OUTPUT_LEN + 1).saturating_sub(o.len()));
                o.extend_from_slice(&buf[..keep]);
            }
        }
    })
}

/// Follows the started probe `s` (exec `id`) to its end, its timeout or `stop`.
async fn watch(
    ctx: &Ctx,
    c: &Arc<Container>,
    id: String,
    s: exec::Spawned,
    timeout: Duration,
    stop: &CancellationToken,
) -> Outcome {
    let mut child = s.child;
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut readers = Vec::new();
    if let Some(o) = child.stdout.take() {
        readers.push(collect(o, out.clone()));
    }
    if let Some(e) = child.stderr.take() {
        readers.push(collect(e, out.clone()));
    }
    let exited = tokio::select! {
        s = child.wait() => Some(s),
        () = tokio::time::sleep(timeout) => None,
        () = stop.cancelled() => None,
    };
    match exited {
        Some(status) => {
            let code = status.ok().and_then(|s| s.code()).unwrap_or(126) as i64;
            let drained = async {
                for r in &mut readers {
                    let _ = r.await;
                }
            };
            let _ = tokio::time::timeout(DRAIN_MAX, drained).await;
            let text = out.lock().map(|o| capped_output(&o)).unwrap_or_default();
            let (code, text) = start_failure(code, text);
            for r in readers {
                r.abort();
            }
            // A command that did not start has no `exec_die`, as dockerd's.
            if code != -1 {
                exec::finish(ctx, c, &id, code);
            }
            forget(ctx, &id);
            Outcome {
                result: Some(HealthcheckResult {
                    end: timestamp(),
                    exit_code: code,
                    output: text,
                    ..Default::default()
                }),
                ending: None,
            }
        }
        None => {
            let timed_out = !stop.is_cancelled();
            let (ctx, c) = (ctx.clone(), c.clone());
            let ending = tokio::spawn(async move {
                let code = end_process(&mut child).await;
                for r in readers {
                    r.abort();
                }
                exec::finish(&ctx, &c, &id, code);
                forget(&ctx, &id);
            });
            let result = timed_out.then(|| HealthcheckResult {
                end: timestamp(),
                exit_code: -1,
                output: format!(
                    "Health check exceeded timeout ({})",
                    berth_core::duration::format(
                        i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX)
                    )
                ),
                ..Default::default()
            });
            Outcome {
                result,
                ending: Some(ending),
            }
        }
    }
}

/// A probe whose command could not start: the exec helper says so on its stdout with 126
/// (as `docker exec` shows it); dockerd's probe gets it as the exec start's error instead
/// and records -1 with that text.
fn start_failure(code: i64, text: String) -> (i64, String) {
    if code == 126 && text.starts_with("OCI runtime exec failed: ") {
        (-1, text.trim_end().to_string())
    } else {
        (code, text)
    }
}

/// Ends a probe that ran out of time, as dockerd ends it: SIGTERM to the command in the
/// container, SIGKILL after [`TERM_GRACE`]; its exit code.
async fn end_process(child: &mut tokio::process::Child) -> i64 {
    crate::containers::exec::signal_command(child.id(), libc::SIGTERM);
    let status = match tokio::time::timeout(TERM_GRACE, child.wait()).await {
        Ok(s) => s,
        Err(_) => {
            crate::containers::exec::signal_command(child.id(), libc::SIGKILL);
            let _ = child.start_kill();
            child.wait().await
        }
    };
    status.ok().and_then(|s| s.code()).unwrap_or(137) as i64
}
