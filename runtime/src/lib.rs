//! berth-runtime: running a container's processes.
//!
//! - [`spec`] builds an OCI runtime spec with Docker's defaults (capabilities, mounts, masked
//!   and read-only paths, namespaces) from the container's settings;
//! - [`native`] implements `core::Runtime` itself: clone into new namespaces, mount the
//!   container's filesystems, `pivot_root`, drop capabilities, switch user, exec — no external
//!   binary; [`init`] is the code that runs inside the new namespaces, with [`mounts`] (the
//!   filesystem view) and [`process`] (user, capabilities, exec; shared with [`exec`]);
//! - [`oci`] drives an OCI runtime binary (runc, crun, youki) with a bundle;
//! - [`cgroups`] manages cgroup v1 and v2 (limits, freezer, stats, OOM) behind one type;
//! - [`console`] makes a container's terminal inside its own devpts, as runc does;
//! - [`seccomp`] chooses a container's syscall filter (the built-in allow-list or a profile in
//!   Docker's format) and compiles it to BPF for the native runtime and exec;
//! - [`security`] reads `--security-opt` as Docker does;
//! - [`exec`] joins a running container (`docker exec`);
//! - [`memory`] gives start-up memory back in long-lived processes (monitor, berthd);
//! - [`user`] resolves `user[:group]` against the container's `/etc/passwd` and `/etc/group`.

pub mod caps;
pub mod cgroups;
pub mod console;
pub mod devices;
pub mod exec;
pub mod init;
pub mod memory;
pub mod mounts;
pub mod native;
pub mod oci;
pub mod process;
pub mod seccomp;
pub mod security;
pub mod shared_mounts;
pub mod spec;
pub mod sysctl;
pub mod user;

/// A runtime failure.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A syscall failed.
    #[error("{context}: {source}")]
    Sys {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// The command could not be executed (exit code 126/127 semantics).
    #[error("{message}")]
    Exec {
        /// 126 or 127.
        code: i32,
        /// Docker-style message.
        message: String,
    },
    /// Bad configuration.
    #[error("{0}")]
    Invalid(String),
}

impl RuntimeError {
    pub(crate) fn sys(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
        let context = context.into();
        move |source| RuntimeError::Sys { context, source }
    }
    pub(crate) fn errno(context: impl Into<String>) -> impl FnOnce(nix::Error) -> RuntimeError {
        let context = context.into();
        move |e| RuntimeError::Sys {
            context,
            source: std::io::Error::from(e),
        }
    }
}

impl From<RuntimeError> for berth_core::DriverError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::Invalid(m) => berth_core::DriverError::InvalidInput(m),
            RuntimeError::Exec { code, message } => berth_core::DriverError::Exec { code, message },
            other => berth_core::DriverError::Io(other.to_string()),
        }
    }
}
