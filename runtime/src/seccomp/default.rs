//! berth's built-in seccomp profile, in Docker's profile format: an allow-list with Docker's
//! semantics. Everything not named is refused with EPERM (`defaultErrnoRet` 1); a call newer
//! than berth's syscall tables gets ENOSYS so that libcs fall back (see [`super::bpf`]).
//! Calls tied to a capability (mounts and namespaces to CAP_SYS_ADMIN, `reboot` to
//! CAP_SYS_BOOT, module loading to CAP_SYS_MODULE, ...) are allowed only when the container
//! holds it; without CAP_SYS_ADMIN, `clone` may not create namespaces and `clone3` answers
//! ENOSYS (its flags live in memory a filter cannot read, so libcs must fall back to `clone`);
//! `personality` takes only the usual personas and `socket` refuses AF_VSOCK. Keyrings,
//! kexec, `userfaultfd`, `swapon`, `pivot_root` and the like are simply not on the list.

use super::profile::{Arg, Filter, Profile, Rule};

/// Allowed for every container (the architecture-neutral part of the list).
const ALLOWED: &str = "\
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32 \
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 \
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup \
dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 \
epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat \
faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 \
fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork \
fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate \
ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat \
getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 \
getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority \
getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage \
getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr \
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy \
io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit \
io_uring_enter io_uring_register io_uring_setup ipc kill landlock_add_rule \
landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen \
listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise \
map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat \
mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive \
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget \
msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat \
_newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc \
pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 \
process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink \
readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr \
rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending \
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait \
rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam \
sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval \
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam \
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop \
semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 \
setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority \
setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 \
setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 \
setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask \
sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat \
sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete \
timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create \
timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate \
truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes \
vfork vmsplice wait4 waitid waitpid write writev";

/// Allowed when the container holds the capability.
const BY_CAP: &[(&str, &str)] = &[
    (
        "CAP_SYS_ADMIN",
        "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount \
         mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname \
         sethostname setns syslog umount umount2 unshare",
    ),
    ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
    ("CAP_SYS_BOOT", "reboot"),
    ("CAP_SYS_CHROOT", "chroot"),
    ("CAP_SYS_MODULE", "delete_module init_module finit_module"),
    ("CAP_SYS_PACCT", "acct"),
    (
        "CAP_SYS_PTRACE",
        "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
    ),
    ("CAP_SYS_RAWIO", "iopl ioperm"),
    (
        "CAP_SYS_TIME",
        "settimeofday stime clock_settime clock_settime64",
    ),
    ("CAP_SYS_TTY_CONFIG", "vhangup"),
    (
        "CAP_SYS_NICE",
        "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
    ),
    ("CAP_SYSLOG", "syslog"),
    ("CAP_BPF", "bpf"),
    ("CAP_PERFMON", "perf_event_open"),
];

/// Allowed only on these architectures (Go's names).
const BY_ARCH: &[(&[&str], &str)] = &[
    (&["amd64", "x32"], "arch_prctl"),
    (&["amd64", "x32", "x86"], "modify_ldt"),
    (
        &["arm", "arm64"],
        "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
    ),
];

/// `personality` values allowed: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and
/// the query 0xffffffff.
const PERSONAS: &[u64] = &[0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET.
const CLONE_NS: u64 = 0x7E02_0000;

/// AF_VSOCK: host communication channels a container has no business opening.
const AF_VSOCK: u64 = 40;

fn names(list: &str) -> Vec<String> {
    list.split_whitespace().map(str::to_string).collect()
}

fn caps(list: &[&str]) -> Option<Filter> {
    Some(Filter {
        caps: list.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    })
}

fn arg(index: u32, value: u64, value_two: u64, op: &str) -> Arg {
    Arg {
        index,
        value,
        value_two,
        op: op.into(),
    }
}

/// The built-in profile (Docker's `default` / `builtin`).
pub fn profile() -> Profile {
    let allow = |list: &str| Rule {
        names: names(list),
        action: "SCMP_ACT_ALLOW".into(),
        ..Default::default()
    };
    let mut syscalls = vec![
        allow(ALLOWED),
        Rule {
            args: vec![arg(0, AF_VSOCK, 0, "SCMP_CMP_NE")],
            ..allow("socket")
        },
        Rule {
            includes: Some(Filter {
                min_kernel: Some("4.8".into()),
                ..Default::default()
            }),
            ..allow("process_vm_readv process_vm_writev ptrace")
        },
    ];
    for p in PERSONAS {
        syscalls.push(Rule {
            args: vec![arg(0, *p, 0, "SCMP_CMP_EQ")],
            ..allow("personality")
        });
    }
    for (arches, list) in BY_ARCH {
        syscalls.push(Rule {
            includes: Some(Filter {
                arches: arches.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
            ..allow(list)
        });
    }
    for (cap, list) in BY_CAP {
        syscalls.push(Rule {
            includes: caps(&[cap]),
            ..allow(list)
        });
    }
    syscalls.push(Rule {
        args: vec![arg(0, CLONE_NS, 0, "SCMP_CMP_MASKED_EQ")],
        excludes: caps(&["CAP_SYS_ADMIN"]),
        ..allow("clone")
    });
    syscalls.push(Rule {
        names: names("clone3"),
        action: "SCMP_ACT_ERRNO".into(),
        errno_ret: Some(libc::ENOSYS as u32),
        excludes: caps(&["CAP_SYS_ADMIN"]),
        ..Default::default()
    });
    Profile {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno_ret: Some(libc::EPERM as u32),
        arch_map: vec![
            super::profile::ArchMap {
                architecture: "SCMP_ARCH_X86_64".into(),
                sub_architectures: names("SCMP_ARCH_X86 SCMP_ARCH_X32"),
            },
            super::profile::ArchMap {
                architecture: "SCMP_ARCH_AARCH64".into(),
                sub_architectures: names("SCMP_ARCH_ARM"),
            },
        ],
        syscalls,
        ..Default::default()
    }
}
