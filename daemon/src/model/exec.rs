//! An exec instance (`POST /containers/{id}/exec`): kept in memory only, as Docker's.

use berth_api::types::container::ExecConfig;

/// One exec instance.
// Not used yet: `containers::ExecRecord` becomes this one (issue 17, helper "netexec").
#[allow(dead_code)]
#[derive(Debug, Clone, Default)]
pub struct ExecRecord {
    /// 64-hex id.
    pub id: String,
    /// The container's id.
    pub container: String,
    /// What the client asked for.
    pub config: ExecConfig,
    /// Its process runs.
    pub running: bool,
    /// Set once it exited.
    pub exit_code: Option<i64>,
    /// Its host PID while it runs.
    pub pid: i64,
    /// The TTY master berthd holds for a `-t` exec (resizes go to it).
    pub master_fd: Option<i32>,
}
