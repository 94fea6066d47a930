//! berth's Kubernetes Container Runtime Interface: the CRI v1 gRPC services (`RuntimeService`,
//! `ImageService`, bindings from the `k8s-cri` crate, served with tonic) over the backend
//! traits of [`backend`], which berthd implements on top of its own image store, container
//! services and events. kubelet and crictl reach it on a unix socket
//! (`unix:///run/berth/cri.sock` by default).
//!
//! The crate has no HTTP or daemon types: a backend speaks in [`backend`]'s plain records and
//! [`CriError`], and [`serve`] turns them into gRPC on the socket. `Exec`, `Attach` and
//! `PortForward` answer URLs of the streaming server in [`stream`].

mod authority;
pub mod backend;
pub mod backend_stats;
pub mod containers;
mod error;
mod huffman;
pub mod image;
pub mod pods;
pub mod runtime;
mod serve;
pub mod stats;
pub mod stream;

pub use backend::{ContainerBackend, ImageBackend, PodBackend, RuntimeBackend};
pub use backend_stats::ResourceBackend;
pub use error::{CriError, CriResult};
pub use serve::{bind, serve};
pub use stream::backend::StreamBackend;

/// Nanoseconds since the epoch, as CRI timestamps are.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
