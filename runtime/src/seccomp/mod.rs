//! seccomp: which profile a container gets, and the filter that enforces it.
//!
//! - [`default`] is berth's built-in profile, an allow-list with Docker's semantics;
//! - [`profile`] reads Docker's profile format (`--security-opt seccomp=profile.json`) and
//!   reduces a profile to the OCI `linux.seccomp` object for one container;
//! - [`bpf`] compiles that object to BPF for the native runtime and `docker exec` (runc gets
//!   the same object in the bundle and compiles it with libseccomp);
//! - [`syscalls`] holds the syscall numbers of the ABIs berth filters.

pub mod bpf;
pub mod default;
pub mod profile;
pub mod syscalls;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A seccomp failure.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile is not valid JSON of the expected shape.
    #[error("decoding seccomp profile failed: {0}")]
    Decode(String),
    /// The profile says something inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// The profile asks for something berth's compiler does not do.
    #[error("unsupported {0}")]
    Unsupported(String),
    /// The kernel refused the filter.
    #[error("installing the seccomp filter: {0}")]
    Install(std::io::Error),
}

/// The container's choice (`--security-opt seccomp=...`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Seccomp {
    /// The built-in profile ([`default`]); `seccomp=builtin` or nothing said.
    #[default]
    Builtin,
    /// No filter (`seccomp=unconfined`).
    Unconfined,
    /// A profile in Docker's format (the JSON text the client sent).
    Custom(String),
}

impl Seccomp {
    /// The value of a `seccomp=` security option.
    pub fn from_value(v: &str) -> Seccomp {
        match v {
            "" | "builtin" | "default" => Seccomp::Builtin,
            "unconfined" => Seccomp::Unconfined,
            json => Seccomp::Custom(json.to_string()),
        }
    }

    /// The OCI `linux.seccomp` object for a container holding `caps` (`Null`: no filter,
    /// as with `unconfined` or `privileged`).
    pub fn oci(&self, privileged: bool, caps: &[String]) -> Result<Value, SeccompError> {
        let kernel = profile::running_kernel();
        match self {
            _ if privileged => Ok(Value::Null),
            Seccomp::Unconfined => Ok(Value::Null),
            Seccomp::Builtin => builtin_oci(caps, kernel),
            Seccomp::Custom(text) => {
                let oci = profile::parse(text)?.to_oci(caps, kernel)?;
                // Refused now, at start, rather than by the container's init.
                bpf::compile(&oci)?;
                Ok(oci)
            }
        }
    }
}

/// The built-in profile reduced for `caps`: made once per capability set seen last (every
/// container with Docker's default capabilities shares it), not on each start and exec.
fn builtin_oci(caps: &[String], kernel: (u32, u32)) -> Result<Value, SeccompError> {
    static LAST: std::sync::Mutex<Option<(Vec<String>, Value)>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((c, v)) = last.as_ref() {
        if c.as_slice() == caps {
            return Ok(v.clone());
        }
    }
    let v = default::profile().to_oci(caps, kernel)?;
    *last = Some((caps.to_vec(), v.clone()));
    Ok(v)
}

/// Installs `profile` (OCI `linux.seccomp`; `Null` installs nothing) on the calling thread.
/// Needs CAP_SYS_ADMIN or no_new_privs.
pub fn install(profile: &Value) -> Result<(), SeccompError> {
    if profile.is_null() {
        return Ok(());
    }
    let filter = bpf::compile(profile)?;
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl with a valid sock_fprog pointing at `filter`, alive for the call.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &prog as *const libc::sock_fprog as libc::c_ulong,
            0,
            0,
        )
    };
    if rc != 0 {
        return Err(SeccompError::Install(std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
