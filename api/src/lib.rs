//! The Docker Engine API wire types and the HTTP client shared by the berth CLI, daemon and tests.
//!
//! - [`types`]: serde structs for request and response bodies, one module per area
//!   (`system`, `events`, and the areas' own modules), in Docker's JSON spelling.
//! - [`client`]: a small blocking HTTP/1.1 client (unix or TCP) with version negotiation,
//!   chunked bodies, JSON message streams and hijacked connections.
//! - [`tls`]: the client's TLS options (docker's `--tls*` flags and environment) and the
//!   TLS transport.
//! - [`detach`]: detach-key lists and the escape proxy watching stdin for them;
//! - [`stdcopy`]: the 8-byte-header framing of multiplexed attach/exec/logs streams.
//! - [`units`]: Docker's human sizes and durations.

pub mod client;
pub mod detach;
pub mod stdcopy;
pub mod tls;
pub mod types;
pub mod units;

pub use client::{Client, ClientError, Response};
pub use tls::TlsOptions;
