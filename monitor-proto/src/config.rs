//! `monitor.json`: what berthd writes in the state folder before it hands the folder to a
//! monitor (PROTOCOL.md "Files").

use berth_core::runtime::RuntimeChoice;
use serde::{Deserialize, Serialize};

/// The monitor's configuration for one container.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct MonitorConfig {
    /// The container's id.
    pub id: String,
    /// The bundle folder: `config.json` (the OCI runtime spec) and `rootfs/`.
    pub bundle: String,
    /// The runtime plugin to create the container with.
    pub runtime: RuntimeChoice,
    /// Mounted by the monitor onto `bundle/rootfs` before create and unmounted after the
    /// exit; empty: berthd mounted the rootfs already.
    #[serde(default)]
    pub rootfs_mounts: Vec<berth_core::storage::Mount>,
    /// A mount namespace to create the container from instead of berthd's (a path such as
    /// `/proc/<berthd>/fd/N`: berthd's template, which holds no container's rootfs). The
    /// monitor clones berthd's mount of `bundle/rootfs`, enters the template, takes a copy of
    /// it for itself and attaches the clone there; if it cannot, it stays in berthd's.
    #[serde(default)]
    pub mount_ns: Option<String>,
    /// `mount_ns`'s root is a stage (`berth_core::stage`): the creating thread `chroot`s into
    /// its host tree, and the runtime's init makes the rootfs `/` by moving mounts.
    #[serde(default)]
    pub mount_ns_staged: bool,
    /// The json-file log (none: no log).
    #[serde(default)]
    pub log_path: Option<String>,
    /// json-file `max-size`: bytes a log file holds before it is rotated (none: never).
    #[serde(default)]
    pub log_max_size: Option<u64>,
    /// json-file `max-file`: how many log files are kept, the one written included (none: 1).
    #[serde(default)]
    pub log_max_file: Option<u32>,
    /// The container has a terminal.
    #[serde(default)]
    pub tty: bool,
    /// The container's stdin is kept open for attaches.
    #[serde(default)]
    pub open_stdin: bool,
    /// The container's stdin closes when the first attach that writes it half-closes.
    #[serde(default)]
    pub stdin_once: bool,
    /// The terminal's initial size, `[rows, columns]`.
    #[serde(default)]
    pub console_size: Option<[u16; 2]>,
    /// Where to write the init's host pid (none: nowhere).
    #[serde(default)]
    pub pid_file: Option<String>,
    /// The log's format: json-file (Docker's) or the CRI's text lines
    /// (`<RFC 3339 time> <stream> <F|P> <text>`, what kubelet and `crictl logs` read).
    #[serde(default)]
    pub log_format: LogFormat,
}

/// How the monitor writes a container's output to its log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// One JSON object per line (`{"log","stream","time"}`), as Docker's json-file driver.
    #[default]
    JsonFile,
    /// The CRI's format: `2016-10-06T00:17:09.669794202Z stdout F text` (`P` for a line the
    /// container has not ended yet).
    Cri,
}

impl MonitorConfig {
    /// A configuration with the defaults for everything but the container, bundle and
    /// runtime.
    pub fn new(id: impl Into<String>, bundle: impl Into<String>, runtime: RuntimeChoice) -> Self {
        MonitorConfig {
            id: id.into(),
            bundle: bundle.into(),
            runtime,
            rootfs_mounts: Vec::new(),
            mount_ns: None,
            mount_ns_staged: false,
            log_path: None,
            log_max_size: None,
            log_max_file: None,
            tty: false,
            open_stdin: false,
            stdin_once: false,
            console_size: None,
            pid_file: None,
            log_format: LogFormat::JsonFile,
        }
    }
}
