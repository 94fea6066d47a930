//! A container's `State` (Docker's inspect shape) and its transitions: the daemon moves a
//! container from state to state only through these methods, so the flags (`Running`,
//! `Paused`, `Restarting`, ...) and `Status` never disagree.

use serde::{Deserialize, Serialize};

/// A zero time as Docker writes it (`StartedAt`/`FinishedAt` of a container never run).
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `State` in inspect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerState {
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`.
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<super::health::Health>,
}

impl Default for ContainerState {
    /// A container just created: never started, both times zero.
    fn default() -> Self {
        ContainerState {
            status: "created".into(),
            running: false,
            paused: false,
            restarting: false,
            oom_killed: false,
            dead: false,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            health: None,
        }
    }
}

impl ContainerState {
    /// Its init runs as `pid` since `started_at`: a fresh run, no exit code, no error.
    pub fn set_running(&mut self, pid: i64, started_at: &str) {
        self.status = "running".into();
        self.running = true;
        self.paused = false;
        self.restarting = false;
        self.oom_killed = false;
        self.dead = false;
        self.pid = pid;
        self.exit_code = 0;
        self.error.clear();
        self.started_at = started_at.into();
    }

    /// Its init exited with `code` at `finished_at` (`oom`: killed for lack of memory).
    pub fn set_exited(&mut self, code: i64, finished_at: &str, oom: bool) {
        self.status = "exited".into();
        self.running = false;
        self.paused = false;
        self.restarting = false;
        self.pid = 0;
        self.exit_code = code;
        self.oom_killed = oom;
        self.finished_at = finished_at.into();
    }

    /// A start that failed with `code` and `error` before the process ran: a container that
    /// had been running becomes `exited`, one never started stays `created` (as Docker's).
    pub fn set_start_failed(&mut self, code: i64, error: &str) {
        if self.status == "running" || self.status == "restarting" {
            self.status = "exited".into();
        }
        self.running = false;
        self.restarting = false;
        self.pid = 0;
        self.exit_code = code;
        self.error = error.into();
    }

    /// A start recorded with [`set_running`](Self::set_running) before the process was let
    /// go, which then did not happen: back to `previous` (the status before that start), not
    /// running. [`set_start_failed`](Self::set_start_failed) records the error.
    pub fn undo_running(&mut self, previous: &str) {
        self.status = previous.into();
        self.running = false;
        self.pid = 0;
    }

    /// Paused (`true`) or running again (`false`).
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        self.status = if paused { "paused" } else { "running" }.into();
    }

    /// Waiting for a restart after an exit with `code` at `finished_at` (Docker shows
    /// `Running` true while it restarts).
    pub fn set_restarting(&mut self, code: i64, finished_at: &str) {
        self.status = "restarting".into();
        self.running = true;
        self.restarting = true;
        self.paused = false;
        self.pid = 0;
        self.exit_code = code;
        self.finished_at = finished_at.into();
    }

    /// A restart that will not happen after all (stopped during the back-off, or berthd
    /// restarted meanwhile): `exited` again with the exit it recorded.
    pub fn cancel_restart(&mut self) {
        if self.restarting {
            let (code, finished, oom) = (self.exit_code, self.finished_at.clone(), self.oom_killed);
            self.set_exited(code, &finished, oom);
        }
    }

    /// Being removed.
    pub fn set_removing(&mut self) {
        self.status = "removing".into();
    }

    /// Its removal failed half-way: only removal is left.
    pub fn set_dead(&mut self) {
        self.status = "dead".into();
        self.dead = true;
        self.running = false;
        self.paused = false;
        self.restarting = false;
        self.pid = 0;
    }

    /// Records an error (kept until the next start).
    pub fn set_error(&mut self, error: &str) {
        self.error = error.into();
    }

    /// `created`/`exited`/... as Docker's `Status`; `created` when unset.
    pub fn status(&self) -> &str {
        if self.status.is_empty() {
            "created"
        } else {
            &self.status
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_keep_flags_and_status_together() {
        let mut s = ContainerState::default();
        assert_eq!(s.status(), "created");
        s.set_running(42, "2026-01-01T00:00:00Z");
        assert!(s.running && s.pid == 42 && s.status == "running");
        s.set_paused(true);
        assert!(s.paused && s.status == "paused");
        s.set_paused(false);
        s.set_exited(3, "2026-01-01T00:00:01Z", false);
        assert!(!s.running && !s.paused && s.pid == 0 && s.exit_code == 3);
        assert_eq!(s.status, "exited");
        s.set_running(7, "2026-01-01T00:00:02Z");
        assert_eq!(s.exit_code, 0);
        s.set_start_failed(127, "not found");
        assert_eq!((s.status.as_str(), s.exit_code), ("exited", 127));
    }

    #[test]
    fn a_failed_first_start_stays_created() {
        let mut s = ContainerState::default();
        let before = s.status.clone();
        s.set_running(9, "2026-01-01T00:00:00Z");
        s.undo_running(&before);
        assert!(!s.running && s.pid == 0);
        s.set_start_failed(126, "permission denied");
        assert_eq!(s.status, "created");
        assert_eq!(s.error, "permission denied");
    }

    #[test]
    fn parses_partial_and_null_fields() {
        let s: ContainerState =
            serde_json::from_str(r#"{"Status":"exited","ExitCode":3,"Unknown":1}"#).expect("t");
        assert_eq!((s.status.as_str(), s.exit_code), ("exited", 3));
        assert_eq!(s.started_at, ZERO_TIME);
    }
}
