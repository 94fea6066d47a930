//! An exec instance (`POST /containers/{id}/exec`): kept in memory only, as Docker's.

use berth_api::types::container::{ExecConfig, ExecInspect, ExecProcessConfig};

/// One exec instance.
#[derive(Debug, Clone, Default)]
pub struct ExecRecord {
    /// 64-hex id.
    pub id: String,
    /// The container's id.
    pub container: String,
    /// What the client asked for.
    pub config: ExecConfig,
    /// Its process runs.
    pub running: bool,
    /// Set once it exited.
    pub exit_code: Option<i64>,
    /// Its host PID while it runs.
    pub pid: i64,
    /// The TTY master berthd holds for a `-t` exec (resizes go to it).
    pub master_fd: Option<i32>,
    /// The detach sequence the client asked for (`DetachKeys`, parsed; empty: Docker's
    /// default `ctrl-p,ctrl-q`).
    pub detach_keys: Vec<u8>,
}

impl ExecRecord {
    /// `GET /exec/{id}/json`: Docker's shape (`ExitCode` is `null` until it exited).
    pub fn inspect(&self) -> ExecInspect {
        let cfg = &self.config;
        ExecInspect {
            id: self.id.clone(),
            running: self.running,
            exit_code: self.exit_code,
            open_stdin: cfg.attach_stdin,
            open_stderr: cfg.attach_stderr,
            open_stdout: cfg.attach_stdout,
            container_id: self.container.clone(),
            pid: self.pid,
            process_config: ExecProcessConfig {
                tty: cfg.tty,
                entrypoint: cfg.cmd.first().cloned().unwrap_or_default(),
                arguments: cfg.cmd.iter().skip(1).cloned().collect(),
                privileged: cfg.privileged,
                user: cfg.user.clone(),
            },
            can_remove: false,
            // Docker shows the parsed bytes, base64-encoded as Go encodes a `[]byte`.
            detach_keys: if self.detach_keys.is_empty() {
                String::new()
            } else {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(&self.detach_keys)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_splits_the_command_and_hides_the_pty() {
        let config: ExecConfig = serde_json::from_str(
            r#"{"Cmd":["sh","-c","exit 3"],"Tty":true,"User":null,"Env":null,
                "WorkingDir":null,"AttachStdout":true,"Container":"ignored"}"#,
        )
        .expect("a docker-py body parses");
        let e = ExecRecord {
            id: "e1".into(),
            container: "c1".into(),
            config,
            exit_code: Some(3),
            master_fd: Some(9),
            detach_keys: vec![0x18, b'x'],
            ..ExecRecord::default()
        };
        let v = serde_json::to_value(e.inspect()).expect("t");
        assert_eq!(v["ProcessConfig"]["entrypoint"], "sh");
        assert_eq!(
            v["ProcessConfig"]["arguments"],
            serde_json::json!(["-c", "exit 3"])
        );
        assert_eq!(v["ProcessConfig"]["tty"], true);
        assert!(v["ProcessConfig"].get("user").is_none());
        assert_eq!(v["ExitCode"], 3);
        assert_eq!(v["OpenStdout"], true);
        assert_eq!(v["ContainerID"], "c1");
        assert_eq!(v["DetachKeys"], "GHg=", "ctrl-x,x as dockerd shows it");
        assert!(!v.to_string().contains("master"));
    }
}
