//! Running client commands (docker, berth, python3) and capturing what they printed.

use std::io::Write;
use std::process::{Command, Stdio};

/// What a command did.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit status (-1 when killed by a signal).
    pub status: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Whether the command exited 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// Panics with everything printed unless the command exited 0; returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert!(
            self.success(),
            "command failed with status {}\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        &self.stdout
    }
}

/// Runs `cmd`, feeding `stdin` if given, and collects its output.
pub fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Output {
                status: -1,
                stdout: String::new(),
                stderr: format!("spawning {cmd:?}: {e}"),
            }
        }
    };
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    match child.wait_with_output() {
        Ok(o) => Output {
            status: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        },
        Err(e) => Output {
            status: -1,
            stdout: String::new(),
            stderr: format!("waiting for {cmd:?}: {e}"),
        },
    }
}

/// A running command whose standard output arrives line by line; killed (by PID) and reaped
/// when dropped. For streams that never end by themselves: `docker events`, `logs -f`.
pub struct Lines {
    child: std::process::Child,
    rx: std::sync::mpsc::Receiver<String>,
}

impl Lines {
    /// Spawns `cmd` (stdin and stderr null, stdout read by a thread).
    pub fn spawn(mut cmd: Command) -> std::io::Result<Lines> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let out = child.stdout.take();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let Some(out) = out else { return };
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Lines { child, rx })
    }

    /// The next line, or `None` when none came within `patience` or the output ended.
    pub fn next(&self, patience: std::time::Duration) -> Option<String> {
        self.rx.recv_timeout(patience).ok()
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
