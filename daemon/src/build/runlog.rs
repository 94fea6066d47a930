//! A `RUN` step's output shown as it is printed, as Docker streams it: the container's
//! json-file log followed line by line while the container runs, then read to its end once it
//! has exited (the monitor has written everything by then). Lines are handed on one at a time
//! (the monitor cuts them at 16 KiB), so a `RUN` printing gigabytes is never held whole.

use super::{BuildEvent, BuildSink};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

/// How long to wait before looking at the log again when nothing new was there.
const POLL: Duration = Duration::from_millis(25);

/// Largest partial line kept while waiting for its end (a whole line is ≤ 16 KiB).
const MAX_PARTIAL: usize = 1 << 20;

fn emit_line(line: &[u8], out: &dyn BuildSink) {
    if let Ok(v) = serde_json::from_slice::<Value>(line) {
        out.emit(BuildEvent::Output(
            v["log"].as_str().unwrap_or("").to_string(),
        ));
    }
}

/// Follows the log at `log` until `exited()` and the log is read to its end.
pub(crate) fn follow(log: &Path, exited: &dyn Fn() -> bool, out: &dyn BuildSink) {
    let mut reader = None;
    let mut partial: Vec<u8> = Vec::new();
    loop {
        // Checked before reading: what was written before the exit is read in this pass.
        let done = exited();
        if reader.is_none() {
            reader = std::fs::File::open(log).ok().map(BufReader::new);
        }
        let mut progressed = false;
        if let Some(r) = reader.as_mut() {
            loop {
                match r.read_until(b'\n', &mut partial) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if partial.ends_with(b"\n") => {
                        emit_line(&partial, out);
                        partial.clear();
                        progressed = true;
                    }
                    Ok(_) => {
                        if partial.len() > MAX_PARTIAL {
                            partial.clear();
                        }
                    }
                }
            }
        }
        if done {
            if !partial.is_empty() {
                emit_line(&partial, out);
            }
            return;
        }
        if !progressed {
            std::thread::sleep(POLL);
        }
    }
}
