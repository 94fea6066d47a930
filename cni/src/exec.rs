//! Running one CNI plugin binary as the spec's execution protocol says: the parameters in
//! `CNI_*` environment variables, the configuration on stdin, the result (or an error object)
//! on stdout, success by exit status 0. Each run is bounded: the plugin (and whatever it
//! starts, e.g. its IPAM plugin: they share a process group) is killed after the timeout, and
//! at most a fixed number of bytes of its stdout and stderr are kept.

use crate::error::{CniError, CniResult};
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The most bytes of a plugin's stdout read (a result is a few KiB).
pub const MAX_STDOUT: usize = 1 << 20;
/// The most bytes of a plugin's stderr kept (for error messages).
const MAX_STDERR: usize = 16 << 10;
/// `PATH` for plugins when berthd has none (portmap runs `iptables`).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where plugins are and how long each may run.
#[derive(Debug, Clone)]
pub struct Exec {
    /// The plugin folders, searched in order (`CNI_PATH`).
    pub bin_dirs: Vec<PathBuf>,
    /// How long one plugin run may take.
    pub timeout: Duration,
}

/// The spec's error object.
#[derive(serde::Deserialize)]
struct ErrorObject {
    #[serde(default)]
    code: u64,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: String,
}

/// What one reader thread collected: the stream (0 stdout, 1 stderr), its bytes, and whether
/// there was more.
type Collected = (usize, Vec<u8>, bool);

/// Reads `from` on a thread, keeping `limit` bytes: stdout (`which` 0) is closed once over
/// the limit (the plugin's writes then fail: its result is refused anyway), stderr drained.
fn collect(
    which: usize,
    mut from: impl Read + Send + 'static,
    limit: usize,
    to: mpsc::Sender<Collected>,
) {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        let mut more = false;
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = limit.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    more |= n > room;
                    if more && which == 0 {
                        break;
                    }
                }
            }
        }
        let _ = to.send((which, kept, more));
    });
}

impl Exec {
    /// `CNI_PATH`: the plugin folders joined with `:`.
    pub fn cni_path(&self) -> String {
        self.bin_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// The binary of plugin type `plugin` (a plain file name, checked at load).
    fn find(&self, plugin: &str) -> CniResult<PathBuf> {
        self.bin_dirs
            .iter()
            .map(|d| d.join(plugin))
            .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
            .ok_or_else(|| CniError::PluginNotFound {
                plugin: plugin.to_string(),
                dirs: self.cni_path(),
            })
    }

    /// Runs plugin `plugin` with the `CNI_*` variables `env` and `stdin`; answers its stdout
    /// on success.
    pub fn run(&self, plugin: &str, env: &[(&str, String)], stdin: Vec<u8>) -> CniResult<Vec<u8>> {
        let bin = self.find(plugin)?;
        let spawn_err = |source| CniError::Spawn {
            plugin: plugin.to_string(),
            source,
        };
        let mut cmd = Command::new(&bin);
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
            )
            .env("CNI_PATH", self.cni_path())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().map_err(spawn_err)?;
        let group = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            collect(0, out, MAX_STDOUT, tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            collect(1, err, MAX_STDERR, tx);
        }
        if let Some(mut input) = child.stdin.take() {
            // On its own thread: a plugin may write before it has read all of stdin.
            std::thread::spawn(move || {
                let _ = input.write_all(&stdin);
            });
        }
        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(1);
        // Waits without reaping (WNOWAIT): while the plugin is an unreaped zombie its PID,
        // the group's ID, cannot be reused, so the group kill below hits only its group.
        let finished = loop {
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
            match waitid(Id::Pid(group), flags) {
                Ok(WaitStatus::StillAlive) if Instant::now() >= deadline => break false,
                Ok(WaitStatus::StillAlive) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Ok(_) | Err(_) => break true,
            }
        };
        // Whatever is left of its group (an IPAM plugin it started) goes with it.
        let _ = killpg(group, Signal::SIGKILL);
        let status = child.wait().map_err(spawn_err)?;
        if !finished {
            return Err(CniError::Timeout {
                plugin: plugin.to_string(),
                secs: self.timeout.as_secs(),
            });
        }
        let mut outputs: [Option<(Vec<u8>, bool)>; 2] = [None, None];
        let grace = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
        for _ in 0..2 {
            match rx.recv_timeout(grace) {
                Ok((which, bytes, more)) => outputs[which.min(1)] = Some((bytes, more)),
                Err(_) => break,
            }
        }
        let [out, err] = outputs;
        let (stdout, too_much) = out.unwrap_or_default();
        let stderr = err.map(|(b, _)| b).unwrap_or_default();
        if too_much {
            return Err(CniError::OutputTooLarge {
                plugin: plugin.to_string(),
                limit: MAX_STDOUT,
            });
        }
        if status.success() {
            return Ok(stdout);
        }
        if let Ok(e) = serde_json::from_slice::<ErrorObject>(&stdout) {
            if !e.msg.is_empty() || e.code != 0 {
                return Err(CniError::Plugin {
                    plugin: plugin.to_string(),
                    code: e.code,
                    msg: e.msg,
                    details: if e.details.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", e.details)
                    },
                });
            }
        }
        Err(CniError::Exit {
            plugin: plugin.to_string(),
            status: status.to_string(),
            stderr: String::from_utf8_lossy(&stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn plugin(dir: &std::path::Path, name: &str, script: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    fn exec(dir: &std::path::Path, timeout: Duration) -> Exec {
        Exec {
            bin_dirs: vec![dir.join("none"), dir.to_path_buf()],
            timeout,
        }
    }

    #[test]
    fn a_plugin_gets_its_parameters_and_its_errors_are_typed() {
        let t = tempfile::tempdir().expect("tempdir");
        plugin(
            t.path(),
            "echo",
            r#"cat; echo "$CNI_COMMAND $CNI_IFNAME $CNI_PATH""#,
        );
        plugin(
            t.path(),
            "fails",
            r#"echo '{"cniVersion":"1.0.0","code":7,"msg":"no","details":"why"}'; exit 1"#,
        );
        plugin(t.path(), "dies", "echo broken >&2; exit 3");
        plugin(t.path(), "sleeps", "sleep 30");
        plugin(t.path(), "floods", "yes");
        let x = exec(t.path(), Duration::from_secs(20));
        let out = x
            .run(
                "echo",
                &[("CNI_COMMAND", "ADD".into()), ("CNI_IFNAME", "eth0".into())],
                b"{}".to_vec(),
            )
            .expect("echo");
        let want = format!("{{}}ADD eth0 {}\n", x.cni_path());
        assert_eq!(String::from_utf8_lossy(&out), want);
        match x.run("fails", &[], Vec::new()) {
            Err(CniError::Plugin {
                code, msg, details, ..
            }) => {
                assert_eq!((code, msg.as_str(), details.as_str()), (7, "no", ": why"))
            }
            other => panic!("{other:?}"),
        }
        match x.run("dies", &[], Vec::new()) {
            Err(CniError::Exit { stderr, .. }) => assert_eq!(stderr, "broken"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            x.run("missing", &[], Vec::new()),
            Err(CniError::PluginNotFound { .. })
        ));
        assert!(matches!(
            x.run("floods", &[], Vec::new()),
            Err(CniError::OutputTooLarge { .. }) | Err(CniError::Exit { .. })
        ));
        let short = exec(t.path(), Duration::from_millis(300));
        assert!(matches!(
            short.run("sleeps", &[], Vec::new()),
            Err(CniError::Timeout { .. })
        ));
    }
}
