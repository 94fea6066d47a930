//! The isolation-runtime conformance suite.
//!
//! Every runtime plugin — `native`, `runc` (the OCI plugin), or a third party's — must pass
//! [`run_all`], driven the way users drive it: through berthd and the docker CLI, with
//! `docker run --runtime NAME …`. It checks
//! - lifecycle: create, start, state (`created`, `running`, `exited`), delete;
//! - exit codes: 0, 3, 126 (not executable), 127 (not found), 137 (SIGKILL);
//! - signals: a TERM the container handles (`docker stop`), KILL (`docker kill`);
//! - stdio: stdout and stderr kept apart, stdin reaches the process;
//! - TTY: the process gets a terminal with the size asked for;
//! - exec: exit code, environment, working folder;
//! - limits: the memory and pids limits are in the container's cgroup;
//! - isolation: pid, mount, uts, ipc and net namespaces differ from the host's, the hostname
//!   is set, the root filesystem is the container's (its root writes in the image's
//!   root-owned folders, and its changes show in `docker diff`), and
//!   the container's root is host root or not, as the runtime promises ([`Expect`]).
//!
//! The caller provides a daemon with a `busybox` image (the test image: busybox with its
//! applets) and a [`Docker`] to run the CLI against it; berthd and the test run as root on
//! the same host. Each check panics with what it saw.
//!
//! ```ignore
//! #[test]
//! fn my_runtime_conforms() {
//!     let d = /* berthd with "runtimes": {"mine": {"path": "/…/libmine.so"}} */;
//!     berth_runtime_conformance::run_all(&MyDocker(&d), "mine", Expect::default());
//! }
//! ```

mod checks;
mod isolation;

pub use checks::*;
pub use isolation::{isolation, Expect};

/// What a CLI command did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Its exit status.
    pub status: i32,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// The docker CLI against the daemon under test.
pub trait Docker {
    /// Runs `docker ARGS`, with `stdin` fed to it when given.
    fn docker(&self, args: &[&str], stdin: Option<&[u8]>) -> Outcome;
}

/// A run of the suite against one runtime.
pub struct Suite<'a> {
    /// The CLI.
    pub docker: &'a dyn Docker,
    /// The runtime's name (`--runtime`).
    pub runtime: &'a str,
}

impl Suite<'_> {
    /// `docker ARGS`.
    pub fn cli(&self, args: &[&str]) -> Outcome {
        self.docker.docker(args, None)
    }

    /// `docker ARGS`, which must succeed; its trimmed stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        assert_eq!(
            o.status, 0,
            "[{}] docker {args:?} failed: {} {}",
            self.runtime, o.stdout, o.stderr
        );
        o.stdout.trim().to_string()
    }

    /// `docker run --rm --runtime R --network none ARGS` (a `-` in front of the image ends
    /// the run options); its outcome.
    pub fn run(&self, opts: &[&str], cmd: &[&str]) -> Outcome {
        self.run_stdin(opts, cmd, None)
    }

    /// As [`Suite::run`], with `stdin`.
    pub fn run_stdin(&self, opts: &[&str], cmd: &[&str], stdin: Option<&[u8]>) -> Outcome {
        let mut args = vec!["run", "--rm", "--runtime", self.runtime];
        args.extend(opts);
        args.push("busybox");
        args.extend(cmd);
        self.docker.docker(&args, stdin)
    }

    /// `docker run -d --runtime R OPTS busybox CMD`; the container's id.
    #[track_caller]
    pub fn detached(&self, opts: &[&str], cmd: &[&str]) -> String {
        let mut args = vec!["run", "-d", "--runtime", self.runtime];
        args.extend(opts);
        args.push("busybox");
        args.extend(cmd);
        self.ok(&args)
    }

    /// `docker inspect -f FORMAT ID`.
    #[track_caller]
    pub fn inspect(&self, id: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, id])
    }

    /// Removes a container (forcefully).
    pub fn remove(&self, id: &str) {
        let _ = self.cli(&["rm", "-f", id]);
    }
}

/// Runs every check against `runtime`.
pub fn run_all(docker: &dyn Docker, runtime: &str, expect: Expect) {
    let s = Suite { docker, runtime };
    lifecycle(&s);
    exit_codes(&s);
    signals(&s);
    stdio(&s);
    tty(&s);
    exec(&s);
    limits(&s);
    isolation(&s, expect);
}
