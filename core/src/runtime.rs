//! The isolation runtime trait: create, start, signal, delete and query a container from an OCI
//! runtime spec (built with `oci-spec`) and a bundle folder — the verbs of the OCI runtime CLI.
//!
//! A runtime is driven by a container's monitor process, which owns the container's stdio; the
//! daemon never calls a runtime for a live container directly.

use crate::error::DriverResult;
use serde::{Deserialize, Serialize};
use std::os::fd::RawFd;
use std::path::Path;

pub use oci_spec::runtime::Spec;

/// The standard streams handed to the container's first process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdioFds {
    /// stdin (a pipe end, a pty slave, or /dev/null).
    pub stdin: RawFd,
    /// stdout.
    pub stdout: RawFd,
    /// stderr.
    pub stderr: RawFd,
}

/// The OCI states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, not started.
    Created,
    /// The process runs.
    Running,
    /// Frozen (`pause`).
    Paused,
    /// The process has exited.
    Stopped,
}

/// A container's state as the runtime reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The container id.
    pub id: String,
    /// Its status.
    pub status: Status,
    /// The host PID of its first process (0 when stopped).
    pub pid: i32,
}

/// An isolation runtime.
pub trait Runtime: Send + Sync {
    /// The runtime's name (`native`, `runc`, ...).
    fn name(&self) -> String;

    /// Creates container `id` from `spec`, rooted in `bundle` (whose `rootfs` is already mounted
    /// or described by the spec's mounts). The first process is set up but waits for `start`.
    /// Returns its host PID.
    fn create(&self, id: &str, bundle: &Path, spec: &Spec, stdio: StdioFds) -> DriverResult<i32>;

    /// Lets the created container's process run.
    fn start(&self, id: &str) -> DriverResult<()>;

    /// Sends `signal` to the container's first process (or all, for `all`).
    fn kill(&self, id: &str, signal: i32, all: bool) -> DriverResult<()>;

    /// Releases what the runtime holds for the stopped container (cgroups, state).
    fn delete(&self, id: &str) -> DriverResult<()>;

    /// The container's state.
    fn state(&self, id: &str) -> DriverResult<State>;

    /// Freezes the container's processes.
    fn pause(&self, id: &str) -> DriverResult<()>;

    /// Thaws the container's processes.
    fn resume(&self, id: &str) -> DriverResult<()>;
}
