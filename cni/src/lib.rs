//! berth's CNI client: how a container runtime hands a network namespace to the node's
//! Container Network Interface plugins (the CNI spec's runtime side; the plugins are the
//! standard binaries, e.g. Debian's `containernetworking-plugins`).
//!
//! - [`load_first`] finds the node's network configuration (the first `.conflist`, `.conf` or
//!   `.json` of a folder by name, as containerd and CRI-O do) as a [`NetworkList`];
//! - [`Cni::add`] runs its plugins in order for an [`Attachment`] (`ADD`: container ID, netns
//!   path, interface name, `CNI_ARGS`, capability arguments such as `portMappings`), passing
//!   each the previous one's result, and answers the final [`AddResult`] (raw, and the
//!   sandbox interface's addresses); a failed ADD is undone with DEL;
//! - [`Cni::del`] runs them in reverse (`DEL`), with the ADD's result when there is one.
//!
//! Every plugin run is bounded in time and output ([`exec`]); errors are [`CniError`]s.

mod chain;
mod config;
mod error;
pub mod exec;
mod result;

pub use chain::{AddResult, Attachment, Cni};
pub use config::{load_file, load_first, NetworkList, MAX_CONFIG_BYTES};
pub use error::{CniError, CniResult};
pub use result::sandbox_ips;
