//! The request line that opens every connection to a monitor's socket: a [`Command`] tagged
//! `"cmd"`, with the protocol version the sender speaks.

use crate::{ProtoError, PROTOCOL_VERSION};
use serde::{Deserialize, Serialize};

/// What berthd asks of a monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Command {
    /// Let the init exec the container's command; from now on the monitor outlives berthd.
    /// With `wait` the connection then carries on as a [`Command::Wait`] one.
    Start {
        /// Also wait for the exit on this connection.
        #[serde(default)]
        wait: bool,
    },
    /// Carry the container's streams on this connection after the reply (stdcopy frames out,
    /// raw stdin in).
    Attach {
        /// Forward what the client writes to the container's stdin.
        #[serde(default)]
        stdin: bool,
        /// Send stdout.
        #[serde(default = "yes")]
        stdout: bool,
        /// Send stderr.
        #[serde(default = "yes")]
        stderr: bool,
    },
    /// Set the terminal's size (nothing without a terminal).
    Resize {
        /// Rows.
        #[serde(default = "rows")]
        h: u16,
        /// Columns.
        #[serde(default = "cols")]
        w: u16,
    },
    /// Signal the init, or with `all` every process of the container's cgroup.
    Kill {
        /// The signal number.
        #[serde(default = "sigterm")]
        signal: i32,
        /// Every process of the container.
        #[serde(default)]
        all: bool,
    },
    /// Answer with the [`crate::ExitRecord`] once the container has exited (no reply line
    /// before).
    Wait,
    /// Freeze the container.
    Pause,
    /// Thaw it.
    Resume,
    /// Answer with [`crate::Reply::State`].
    State,
    /// Open the log file afresh at its path (kubelet moved the old one away to rotate it:
    /// the CRI's `ReopenContainerLog`); a monitor without a log file answers a failure.
    /// Monitors older than this command answer it as an unknown one.
    Reopen,
}

fn yes() -> bool {
    true
}
fn rows() -> u16 {
    24
}
fn cols() -> u16 {
    80
}
fn sigterm() -> i32 {
    15
}

impl Command {
    /// Every command's name on the wire (its `"cmd"`).
    pub const NAMES: [&'static str; 9] = [
        "start", "attach", "resize", "kill", "wait", "pause", "resume", "state", "reopen",
    ];

    /// The command's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Start { .. } => "start",
            Command::Attach { .. } => "attach",
            Command::Resize { .. } => "resize",
            Command::Kill { .. } => "kill",
            Command::Wait => "wait",
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::State => "state",
            Command::Reopen => "reopen",
        }
    }
}

/// One request line: `{"version":2,"cmd":"kill","signal":9,"all":true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The protocol version the sender speaks; none: 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// What is asked.
    #[serde(flatten)]
    pub command: Command,
}

/// What every request has, read first so that a wrong version or an unknown command is told
/// as such rather than as a malformed line.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    cmd: Option<String>,
}

impl Request {
    /// A request for `command` in this crate's version.
    pub fn new(command: Command) -> Self {
        Request {
            version: Some(PROTOCOL_VERSION),
            command,
        }
    }

    /// The version the request speaks (1 when it does not say).
    pub fn version(&self) -> u32 {
        self.version.unwrap_or(1)
    }

    /// Reads a request line as a monitor does: versions 1 (no `version`) to
    /// [`PROTOCOL_VERSION`] are served; anything else is a typed error for the reply.
    pub fn decode(line: &[u8]) -> Result<Request, ProtoError> {
        let env: Envelope = crate::decode(line)?;
        match env.version {
            Some(v) if v == 0 || v > PROTOCOL_VERSION => {
                return Err(ProtoError::Version { got: v });
            }
            _ => {}
        }
        let cmd = env
            .cmd
            .ok_or_else(|| ProtoError::Malformed("no \"cmd\"".into()))?;
        if !Command::NAMES.contains(&cmd.as_str()) {
            return Err(ProtoError::UnknownCommand(cmd));
        }
        crate::decode(line)
    }

    /// The request's line, `\n` included.
    pub fn encode(&self) -> Result<Vec<u8>, ProtoError> {
        crate::encode(self)
    }
}
