//! seccomp: berth's default profile and its compilation to a BPF filter for the native
//! runtime. The profile follows what Docker's default profile achieves for the syscalls that
//! matter most, as a deny-list: kernel keyrings, new user and other namespaces (`unshare`,
//! namespace flags of `clone`, `clone3` answered ENOSYS so libcs fall back to `clone`), module
//! and kexec loading, `bpf`, `perf_event_open`, `userfaultfd`, `io_uring`, the new mount API,
//! clock setting, ... — each allowed again when the container holds the capability Docker ties
//! it to. It is written into the spec as OCI `linux.seccomp`, so runc applies the same rules.

use serde_json::{json, Value};

/// Syscalls always refused (EPERM).
const ALWAYS: &[&str] = &[
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
];

/// Syscalls refused (EPERM) unless the container has the capability.
const BY_CAP: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "mount",
            "umount2",
            "pivot_root",
            "setns",
            "unshare",
            "bpf",
            "perf_event_open",
            "quotactl",
            "lookup_dcookie",
            "fsopen",
            "fsmount",
            "fsconfig",
            "fspick",
            "move_mount",
            "open_tree",
            "userfaultfd",
            "swapon",
            "swapoff",
        ],
    ),
    (
        "CAP_SYS_MODULE",
        &["init_module", "finit_module", "delete_module"],
    ),
    ("CAP_SYS_BOOT", &["reboot", "kexec_load", "kexec_file_load"]),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_TIME",
        &["clock_settime", "clock_adjtime", "settimeofday"],
    ),
    (
        "CAP_SYS_NICE",
        &["mbind", "set_mempolicy", "move_pages", "migrate_pages"],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_PTRACE",
        &["kcmp", "process_vm_readv", "process_vm_writev"],
    ),
];

/// Namespace flags of `clone` refused without CAP_SYS_ADMIN.
const CLONE_NS_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// The default profile (OCI `linux.seccomp`) for a container holding `caps`.
pub fn default_profile(caps: &[String]) -> Value {
    let has = |c: &str| caps.iter().any(|x| x == c);
    let mut denied: Vec<&str> = ALWAYS.to_vec();
    for (cap, calls) in BY_CAP {
        if !has(cap) {
            denied.extend_from_slice(calls);
        }
    }
    let mut rules = vec![
        json!({"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}),
        json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}),
    ];
    if !has("CAP_SYS_ADMIN") {
        for flag in CLONE_NS_FLAGS {
            rules.push(json!({
                "names": ["clone"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": libc::EPERM,
                "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
            }));
        }
    }
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})
}

fn nr(name: &str) -> Option<libc::c_long> {
    Some(match name {
        "keyctl" => libc::SYS_keyctl,
        "add_key" => libc::SYS_add_key,
        "request_key" => libc::SYS_request_key,
        "io_uring_setup" => libc::SYS_io_uring_setup,
        "io_uring_enter" => libc::SYS_io_uring_enter,
        "io_uring_register" => libc::SYS_io_uring_register,
        "mount" => libc::SYS_mount,
        "umount2" => libc::SYS_umount2,
        "pivot_root" => libc::SYS_pivot_root,
        "setns" => libc::SYS_setns,
        "unshare" => libc::SYS_unshare,
        "bpf" => libc::SYS_bpf,
        "perf_event_open" => libc::SYS_perf_event_open,
        "quotactl" => libc::SYS_quotactl,
        "lookup_dcookie" => libc::SYS_lookup_dcookie,
        "fsopen" => libc::SYS_fsopen,
        "fsmount" => libc::SYS_fsmount,
        "fsconfig" => libc::SYS_fsconfig,
        "fspick" => libc::SYS_fspick,
        "move_mount" => libc::SYS_move_mount,
        "open_tree" => libc::SYS_open_tree,
        "userfaultfd" => libc::SYS_userfaultfd,
        "swapon" => libc::SYS_swapon,
        "swapoff" => libc::SYS_swapoff,
        "init_module" => libc::SYS_init_module,
        "finit_module" => libc::SYS_finit_module,
        "delete_module" => libc::SYS_delete_module,
        "reboot" => libc::SYS_reboot,
        "kexec_load" => libc::SYS_kexec_load,
        "kexec_file_load" => libc::SYS_kexec_file_load,
        "acct" => libc::SYS_acct,
        "clock_settime" => libc::SYS_clock_settime,
        "clock_adjtime" => libc::SYS_clock_adjtime,
        "settimeofday" => libc::SYS_settimeofday,
        "mbind" => libc::SYS_mbind,
        "set_mempolicy" => libc::SYS_set_mempolicy,
        "move_pages" => libc::SYS_move_pages,
        "migrate_pages" => libc::SYS_migrate_pages,
        "syslog" => libc::SYS_syslog,
        "open_by_handle_at" => libc::SYS_open_by_handle_at,
        "vhangup" => libc::SYS_vhangup,
        "kcmp" => libc::SYS_kcmp,
        "process_vm_readv" => libc::SYS_process_vm_readv,
        "process_vm_writev" => libc::SYS_process_vm_writev,
        "clone" => libc::SYS_clone,
        "clone3" => libc::SYS_clone3,
        _ => return None,
    })
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;
/// x32 syscalls on x86_64 carry this bit; they are refused wholesale.
const X32_BIT: u32 = 0x4000_0000;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// One rule of a profile this compiler understands.
struct Rule {
    nr: u32,
    errno: u32,
    /// Refuse only when `args[0] & mask != 0` (a MASKED_EQ rule with value == valueTwo).
    mask: Option<u32>,
}

fn rules(profile: &Value) -> Result<Vec<Rule>, String> {
    if profile["defaultAction"] != "SCMP_ACT_ALLOW" {
        return Err(
            "the native runtime supports seccomp profiles with defaultAction SCMP_ACT_ALLOW only"
                .into(),
        );
    }
    let mut out = Vec::new();
    for r in profile["syscalls"].as_array().cloned().unwrap_or_default() {
        if r["action"] != "SCMP_ACT_ERRNO" {
            return Err(format!("unsupported seccomp action {}", r["action"]));
        }
        let errno = r["errnoRet"].as_u64().unwrap_or(libc::EPERM as u64) as u32 & 0xffff;
        let mask = match r["args"].as_array().map(Vec::as_slice) {
            None | Some([]) => None,
            Some([a])
                if a["index"] == 0
                    && a["op"] == "SCMP_CMP_MASKED_EQ"
                    && a["value"] == a["valueTwo"] =>
            {
                Some(a["value"].as_u64().unwrap_or(0) as u32)
            }
            Some(_) => return Err("unsupported seccomp argument filter".into()),
        };
        for n in r["names"].as_array().cloned().unwrap_or_default() {
            if let Some(nr) = n.as_str().and_then(nr) {
                out.push(Rule {
                    nr: nr as u32,
                    errno,
                    mask,
                });
            }
        }
    }
    Ok(out)
}

/// Compiles `profile` (OCI `linux.seccomp` as [`default_profile`] writes it) to BPF.
pub fn compile(profile: &Value) -> Result<Vec<libc::sock_filter>, String> {
    let mut p = vec![
        stmt(LD_W_ABS, 4),
        // Other architectures (32-bit ABIs) are refused: their numbers differ.
        jump(JEQ_K, AUDIT_ARCH, 1, 0),
        stmt(RET_K, RET_ERRNO | libc::ENOSYS as u32),
        stmt(LD_W_ABS, 0),
    ];
    if cfg!(target_arch = "x86_64") {
        p.push(jump(JGE_K, X32_BIT, 0, 1));
        p.push(stmt(RET_K, RET_ERRNO | libc::ENOSYS as u32));
    }
    for r in rules(profile)? {
        match r.mask {
            None => {
                p.push(jump(JEQ_K, r.nr, 0, 1));
                p.push(stmt(RET_K, RET_ERRNO | r.errno));
            }
            Some(mask) => {
                // nr matches → load args[0] (low half), test the mask, reload nr.
                p.push(jump(JEQ_K, r.nr, 0, 4));
                p.push(stmt(LD_W_ABS, 16));
                p.push(jump(JSET_K, mask, 0, 1));
                p.push(stmt(RET_K, RET_ERRNO | r.errno));
                p.push(stmt(LD_W_ABS, 0));
            }
        }
    }
    p.push(stmt(RET_K, RET_ALLOW));
    Ok(p)
}

/// Installs `profile` on the calling thread (needs CAP_SYS_ADMIN or no_new_privs).
pub fn install(profile: &Value) -> Result<(), String> {
    if profile.is_null() {
        return Ok(());
    }
    let filter = compile(profile)?;
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
        return Err(format!(
            "installing the seccomp filter: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_follows_capabilities() {
        let caps: Vec<String> = crate::caps::DOCKER_DEFAULT
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = default_profile(&caps);
        let denied = p["syscalls"][0]["names"].as_array().expect("names");
        assert!(denied.iter().any(|n| n == "unshare") && denied.iter().any(|n| n == "keyctl"));
        assert_eq!(
            p["syscalls"].as_array().map(Vec::len),
            Some(2 + CLONE_NS_FLAGS.len())
        );
        let mut admin = caps.clone();
        admin.push("CAP_SYS_ADMIN".into());
        let p = default_profile(&admin);
        assert!(!p["syscalls"][0]["names"]
            .as_array()
            .expect("names")
            .iter()
            .any(|n| n == "unshare"));
        let prog = compile(&p).expect("compile");
        assert_eq!(prog.last().map(|i| i.k), Some(RET_ALLOW));
        assert!(compile(&json!({"defaultAction": "SCMP_ACT_ERRNO"})).is_err());
    }
}
