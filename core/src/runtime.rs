//! The isolation runtime trait: create, start, signal, delete and query a container from an OCI
//! runtime spec (built with `oci-spec`) and a bundle folder — the verbs of the OCI runtime CLI.
//!
//! A runtime is driven by a container's monitor process, which owns the container's stdio; the
//! daemon never calls a runtime for a live container directly.

use crate::error::{DriverError, DriverResult};
use serde::{Deserialize, Serialize};
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

pub use oci_spec::runtime::Spec;

/// Which runtime a container uses, as berthd resolved its name: the plugin library and the
/// driver in it, with the driver's configuration. berthd writes it in the monitor's
/// configuration; the monitor opens it (`berth_plugins::open_runtime`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeChoice {
    /// The name containers ask for (`native`, `runc`, a `runtimes` key).
    pub name: String,
    /// The runtime driver the library exports.
    pub driver: String,
    /// The library's plugin name (its `describe`).
    pub plugin: String,
    /// The library's plugin version.
    pub version: String,
    /// The library file.
    pub library: PathBuf,
    /// The driver's configuration.
    #[serde(default)]
    pub config: serde_json::Value,
}

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
    /// Returns its host PID. A runtime may return before the set-up is over (the native one
    /// returns once the init is cloned); `start` then reports a set-up failure.
    ///
    /// The caller (the container's monitor) is single-threaded and a subreaper: the PID
    /// returned is its child (or its runtime's), reaped by the caller.
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

    /// The pty master of a terminal container (`process.terminal`), once, after `create`:
    /// the caller owns it from then on. Runtimes without terminals return `None`.
    fn take_console(&self, _id: &str) -> Option<OwnedFd> {
        None
    }

    /// Why a container whose first process ended before `start` never got to run its command
    /// (the set-up failure `start` would have reported: [`DriverError::Exec`] with Docker's
    /// exit code for a command not found or not executable), if the runtime knows.
    fn set_up_error(&self, _id: &str) -> Option<DriverError> {
        None
    }
}
