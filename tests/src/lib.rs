//! berth's integration-test harness: real daemons, real kernels, real clients.
//!
//! [`TestDaemon`] runs the `berthd` binary with its own temporary data root, exec root, unix
//! socket, pidfile, bridge name and /24 subnet (from 10.213.0.0/16), and cleans everything up
//! when dropped (even when the test panicked): processes whose command line names its folder
//! (container monitors), mounts, its containers' cgroups, the bridge device and the folders.
//! It drives the daemon with the real docker CLI ([`TestDaemon::docker`]), berth's CLI
//! ([`TestDaemon::berth`]) and the Python SDK ([`TestDaemon::python`]).
//!
//! The binaries are taken from the cargo target folder the test runs from, so build them
//! first: `cargo build --workspace && cargo test -p berth-tests`.
//!
//! ```ignore
//! let d = berth_tests::TestDaemon::builder().storage_driver("vfs").start();
//! d.import_busybox(); // busybox:latest from /bin/busybox (busybox-static)
//! let out = d.docker(&["run", "--rm", "busybox", "echo", "hi"]);
//! assert_eq!(out.ok(), "hi\n");
//! ```

mod cleanup;
mod cmd;
mod cni;
mod cri;
pub mod critest;
mod daemon;
mod engine;
pub mod hostile;
pub mod procs;
mod refusal;
mod registry;
mod sdk;

pub use berth_testimg::busybox_rootfs_tar;
pub use cmd::{Lines, Output};
pub use cni::{CniNet, CNI_BIN_DIR};
pub use cri::{crictl_bin, pod_record, Crictl};
pub use daemon::{free_port, target_dir, Builder, TestDaemon};
pub use engine::RealEngine;
pub use refusal::berthd_refuses;
pub use registry::{have, run_ok, scratch_dir, self_signed, DistRegistry, RegistryAuth};
pub use sdk::{assert_same_members, sdk_json};
