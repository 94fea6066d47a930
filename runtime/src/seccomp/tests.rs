//! Tests of the profiles and their filters, played in forked children.

use super::*;
use serde_json::json;

fn caps(extra: &[&str]) -> Vec<String> {
    crate::caps::DOCKER_DEFAULT
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
}

/// Runs `calls` (number, args) in a child under `profile`; the errno of each (0: success).
fn play(profile: &Value, calls: &[(libc::c_long, [u64; 3])]) -> Vec<i32> {
    let filter = bpf::compile(profile).expect("compile");
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    let (r, w) = nix::unistd::pipe().expect("pipe");
    use std::os::fd::AsRawFd;
    let wfd = w.as_raw_fd();
    // SAFETY: the child makes raw system calls only and ends with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: as above; `prog` and `calls` are in memory the child shares by copy.
        unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                &prog as *const libc::sock_fprog as libc::c_ulong,
                0,
                0,
            ) != 0
            {
                libc::_exit(99);
            }
            for (nr, a) in calls {
                let rc = libc::syscall(*nr, a[0], a[1], a[2]);
                let e: i32 = if rc < 0 { *libc::__errno_location() } else { 0 };
                libc::write(wfd, (&e as *const i32).cast(), 4);
            }
            libc::_exit(0);
        }
    }
    drop(w);
    let mut out = Vec::new();
    let mut f = std::fs::File::from(r);
    let mut b = [0u8; 4];
    use std::io::Read;
    while f.read_exact(&mut b).is_ok() {
        out.push(i32::from_ne_bytes(b));
    }
    let mut st = 0;
    // SAFETY: waiting for our child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    assert_eq!(libc::WEXITSTATUS(st), 0, "child failed");
    out
}

#[test]
fn builtin_profile_allows_the_usual_and_refuses_the_rest() {
    let p = Seccomp::Builtin.oci(false, &caps(&[])).expect("profile");
    let got = play(
        &p,
        &[
            (libc::SYS_getpid, [0; 3]),
            (libc::SYS_unshare, [libc::CLONE_NEWUSER as u64, 0, 0]),
            (libc::SYS_clone3, [0; 3]),
            (libc::SYS_keyctl, [0; 3]),
            (libc::SYS_personality, [0xffff_ffff, 0, 0]),
            (libc::SYS_personality, [0x0040_0000, 0, 0]),
            (libc::SYS_socket, [40, 1, 0]),
            (999, [0; 3]),
            (libc::SYS_kexec_load, [0; 3]),
            (
                libc::SYS_clone,
                [(libc::CLONE_NEWNS | libc::SIGCHLD) as u64, 0, 0],
            ),
        ],
    );
    let (eperm, enosys) = (libc::EPERM, libc::ENOSYS);
    assert_eq!(
        got,
        [0, eperm, enosys, eperm, 0, eperm, eperm, enosys, eperm, eperm]
    );
    // CAP_SYS_ADMIN opens namespaces up (the call then fails for lack of the capability
    // in the test's child, or not at all: anything but the filter's EPERM/ENOSYS answer).
    let p = Seccomp::Builtin
        .oci(false, &caps(&["CAP_SYS_ADMIN"]))
        .expect("profile");
    let names = p["syscalls"].to_string();
    assert!(names.contains("\"unshare\"") && names.contains("\"mount\""));
    assert!(Seccomp::Builtin
        .oci(true, &[])
        .expect("privileged")
        .is_null());
    assert!(Seccomp::Unconfined
        .oci(false, &[])
        .expect("unconfined")
        .is_null());
}

#[test]
fn custom_profiles_and_argument_operators() {
    let text = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
             "args": [{"index": 0, "value": 5, "op": "SCMP_CMP_GT"}]},
            {"names": ["setpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33,
             "args": [{"index": 0, "value": 0x1_0000_0000u64, "op": "SCMP_CMP_LE"},
                      {"index": 1, "value": 7, "op": "SCMP_CMP_NE"}]}
        ]
    })
    .to_string();
    let p = Seccomp::from_value(&text)
        .oci(false, &caps(&[]))
        .expect("profile");
    let dir = c"/nonexistent-berth-dir/x".as_ptr() as u64;
    let got = play(
        &p,
        &[
            (libc::SYS_mkdirat, [libc::AT_FDCWD as u64, dir, 0o755]),
            (libc::SYS_getpriority, [6, 0, 0]),
            (libc::SYS_getpriority, [0x1_0000_0000, 0, 0]),
            (libc::SYS_getpriority, [5, 0, 0]),
            (libc::SYS_setpriority, [99, 0, 0]),
            (libc::SYS_setpriority, [99, 7, 0]),
            (libc::SYS_setpriority, [0x1_0000_0001, 0, 0]),
        ],
    );
    // getpriority(5, 0) is refused by the kernel itself (EINVAL: no such `which`).
    assert_eq!(got[0], libc::EPERM);
    assert_eq!(&got[1..3], [22, 22]);
    assert_eq!(got[3], libc::EINVAL);
    assert_eq!(got[4], 33);
    assert_ne!(got[5], 33);
    assert_ne!(got[6], 33);
    assert!(Seccomp::from_value("{not json").oci(false, &[]).is_err());
    assert!(
        Seccomp::from_value(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#)
            .oci(false, &[])
            .is_err()
    );
}

/// One i386 system call through `int 0x80` (the 32-bit ABI an x86_64 kernel serves).
#[cfg(target_arch = "x86_64")]
fn int80(nr: u32, a: u32) -> i32 {
    let ret: i32;
    // SAFETY: `int 0x80` with eax/ebx as the i386 ABI wants; the clobbered registers are
    // declared, and the calls made here take no pointers.
    unsafe {
        // rbx belongs to LLVM: the argument is swapped into it and back around the call.
        std::arch::asm!(
            "xchg {a}, rbx",
            "int 0x80",
            "xchg {a}, rbx",
            a = inout(reg) a as u64 => _,
            inlateout("eax") nr as i32 => ret,
            lateout("ecx") _,
            lateout("edx") _,
            options(nostack),
        );
    }
    ret
}

#[cfg(target_arch = "x86_64")]
#[test]
fn the_i386_abi_is_filtered_with_its_own_numbers() {
    let p = Seccomp::Builtin.oci(false, &caps(&[])).expect("profile");
    let filter = bpf::compile(&p).expect("compile");
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: the child makes raw system calls only and ends with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: as above.
        unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                &prog as *const libc::sock_fprog as libc::c_ulong,
                0,
                0,
            );
        }
        // i386: getpid is 20, unshare 310, keyctl 288; 999 is unknown.
        let ok = int80(20, 0) > 0
            && int80(310, libc::CLONE_NEWUSER as u32) == -libc::EPERM
            && int80(288, 0) == -libc::EPERM
            && int80(999, 0) == -libc::ENOSYS;
        // SAFETY: ending the child.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut st = 0;
    // SAFETY: waiting for our child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    assert!(libc::WIFEXITED(st), "child died: {st:#x}");
    assert_eq!(
        libc::WEXITSTATUS(st),
        0,
        "i386 calls not filtered as expected"
    );
}
