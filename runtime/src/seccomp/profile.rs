//! Docker's seccomp profile format (`--security-opt seccomp=profile.json`: `defaultAction`,
//! `defaultErrnoRet`, `architectures` or `archMap`, `syscalls` with `names`, `action`,
//! `errnoRet`, `args` and `includes`/`excludes` on capabilities, architectures and kernel
//! version) and its reduction, for one container, to the OCI `linux.seccomp` object that runc
//! and berth's own filter compiler take: the rules whose conditions hold, the native
//! architecture with its sub-architectures.

use super::syscalls::Arch;
use super::SeccompError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A profile in Docker's format.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Action for calls no rule names.
    pub default_action: String,
    /// errno of an `SCMP_ACT_ERRNO` default action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// Architectures, flat (older format).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    /// Architectures with their sub-architectures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arch_map: Vec<ArchMap>,
    /// The rules.
    #[serde(default)]
    pub syscalls: Vec<Rule>,
}

/// One entry of `archMap`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    /// `SCMP_ARCH_X86_64`, ...
    pub architecture: String,
    /// ABIs the same kernel serves (`SCMP_ARCH_X86`, ...).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub sub_architectures: Vec<String>,
}

/// One rule.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// The system calls.
    #[serde(default)]
    pub names: Vec<String>,
    /// One system call (older format; not together with `names`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `SCMP_ACT_ALLOW`, `SCMP_ACT_ERRNO`, ...
    pub action: String,
    /// errno of an `SCMP_ACT_ERRNO` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// Argument conditions (all must hold).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub args: Vec<Arg>,
    /// The rule applies only when all these hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes: Option<Filter>,
    /// The rule does not apply when any of these holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excludes: Option<Filter>,
}

/// An argument condition.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    /// Which argument (0-5).
    pub index: u32,
    /// The value (the mask for `SCMP_CMP_MASKED_EQ`).
    pub value: u64,
    /// The expected value for `SCMP_CMP_MASKED_EQ`.
    #[serde(default)]
    pub value_two: u64,
    /// `SCMP_CMP_EQ`, `NE`, `LT`, `LE`, `GE`, `GT`, `MASKED_EQ`.
    pub op: String,
}

/// Conditions of `includes`/`excludes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Capabilities (`CAP_SYS_ADMIN`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub caps: Vec<String>,
    /// Architectures in Go's names (`amd64`, `arm64`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub arches: Vec<String>,
    /// A kernel version (`4.8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<String>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Parses a profile as `--security-opt seccomp=` carries it (the file's content).
pub fn parse(text: &str) -> Result<Profile, SeccompError> {
    serde_json::from_str(text).map_err(|e| SeccompError::Decode(e.to_string()))
}

/// `major.minor` of a kernel release (`6.1.0-18-amd64` → (6, 1)).
fn version(release: &str) -> Option<(u32, u32)> {
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// The running kernel's `major.minor` (read once per process: it cannot change).
pub fn running_kernel() -> (u32, u32) {
    static KERNEL: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    *KERNEL.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|r| version(&r))
            .unwrap_or((0, 0))
    })
}

const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_LOG",
    "SCMP_ACT_ALLOW",
];

const OPS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

fn check_action(a: &str) -> Result<(), SeccompError> {
    if ACTIONS.contains(&a) {
        Ok(())
    } else {
        Err(SeccompError::Invalid(format!(
            "unsupported seccomp action {a:?}"
        )))
    }
}

impl Filter {
    /// Whether every condition holds (`includes`).
    fn all(&self, caps: &[String], arch: Arch, kernel: (u32, u32)) -> Result<bool, SeccompError> {
        if !self.arches.is_empty() && !self.arches.iter().any(|a| a == arch.go_name()) {
            return Ok(false);
        }
        if !self.caps.iter().all(|c| caps.contains(c)) {
            return Ok(false);
        }
        if let Some(k) = &self.min_kernel {
            let v = version(k)
                .ok_or_else(|| SeccompError::Invalid(format!("invalid minKernel {k:?}")))?;
            if kernel < v {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether any condition holds (`excludes`).
    fn any(&self, caps: &[String], arch: Arch, kernel: (u32, u32)) -> Result<bool, SeccompError> {
        if self.arches.iter().any(|a| a == arch.go_name()) {
            return Ok(true);
        }
        if self.caps.iter().any(|c| caps.contains(c)) {
            return Ok(true);
        }
        if let Some(k) = &self.min_kernel {
            let v = version(k)
                .ok_or_else(|| SeccompError::Invalid(format!("invalid minKernel {k:?}")))?;
            if kernel >= v {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl Profile {
    /// The OCI `linux.seccomp` object for a container holding `caps` on a kernel `kernel`,
    /// with the rules whose `includes`/`excludes` hold for the native architecture.
    pub fn to_oci(&self, caps: &[String], kernel: (u32, u32)) -> Result<Value, SeccompError> {
        let native = Arch::native();
        check_action(&self.default_action)?;
        if !self.architectures.is_empty() && !self.arch_map.is_empty() {
            return Err(SeccompError::Invalid(
                "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'".into(),
            ));
        }
        let mut arches = self.architectures.clone();
        for m in &self.arch_map {
            if Arch::from_scmp(&m.architecture) == Some(native) {
                arches.push(m.architecture.clone());
                arches.extend(m.sub_architectures.iter().cloned());
            }
        }
        let mut syscalls = Vec::new();
        for r in &self.syscalls {
            check_action(&r.action)?;
            for a in &r.args {
                if !OPS.contains(&a.op.as_str()) {
                    return Err(SeccompError::Invalid(format!(
                        "unsupported seccomp operator {:?}",
                        a.op
                    )));
                }
                if a.index > 5 {
                    return Err(SeccompError::Invalid(format!(
                        "seccomp argument index {} out of range",
                        a.index
                    )));
                }
            }
            let names = match (&r.name, r.names.is_empty()) {
                (Some(_), false) => {
                    return Err(SeccompError::Invalid("use either 'name' or 'names'".into()))
                }
                (Some(n), true) => vec![n.clone()],
                (None, _) => r.names.clone(),
            };
            if let Some(f) = &r.includes {
                if !f.all(caps, native, kernel)? {
                    continue;
                }
            }
            if let Some(f) = &r.excludes {
                if f.any(caps, native, kernel)? {
                    continue;
                }
            }
            let mut s = json!({"names": names, "action": r.action});
            if let Some(e) = r.errno_ret {
                s["errnoRet"] = json!(e);
            }
            if !r.args.is_empty() {
                s["args"] = r
                    .args
                    .iter()
                    .map(|a| json!({"index": a.index, "value": a.value, "valueTwo": a.value_two, "op": a.op}))
                    .collect();
            }
            syscalls.push(s);
        }
        let mut v = json!({"defaultAction": self.default_action, "syscalls": syscalls});
        if let Some(e) = self.default_errno_ret {
            v["defaultErrnoRet"] = json!(e);
        }
        if !arches.is_empty() {
            v["architectures"] = json!(arches);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_excludes_and_arches() {
        let p = parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]},{"architecture":"SCMP_ARCH_AARCH64","subArchitectures":null}],
            "syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},
            {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
            {"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"op":"SCMP_CMP_MASKED_EQ"}],"excludes":{"caps":["CAP_SYS_ADMIN"]}},
            {"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"99.1"}}]}"#,
        )
        .expect("parse");
        let v = p.to_oci(&[], (6, 1)).expect("oci");
        let names: Vec<&str> = v["syscalls"]
            .as_array()
            .expect("syscalls")
            .iter()
            .filter_map(|s| s["names"][0].as_str())
            .collect();
        assert_eq!(names, ["read", "clone"]);
        assert_eq!(v["syscalls"][1]["args"][0]["valueTwo"], 0);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                v["architectures"],
                json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
            );
        }
        let v = p.to_oci(&["CAP_SYS_ADMIN".into()], (6, 1)).expect("oci");
        assert_eq!(v["syscalls"][1]["names"][0], "mount");
        assert!(parse(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#)
            .expect("parse")
            .to_oci(&[], (6, 1))
            .is_err());
        assert_eq!(version("6.18.44-fc-v1272"), Some((6, 18)));
    }
}
