//! berth's daemon ↔ monitor protocol (`monitor/PROTOCOL.md`): every message berthd and a
//! container's `berth-monitor` exchange, as types both sides share.
//!
//! - files in the container's state folder: [`MonitorConfig`] (`monitor.json`, berthd →
//!   monitor), [`StateFile`] (`state.json`) and [`ExitRecord`] (`exit.json`, monitor → berthd);
//! - the ready line on the monitor's ready descriptor: [`Ready`];
//! - one [`Request`] line per socket connection, answered by one [`Reply`] line (a `wait`, or a
//!   `start` that also waits, is answered by an [`ExitRecord`] line at the exit).
//!
//! Every line is one JSON object ended by `\n`, at most [`MAX_LINE`] bytes. Versioning: a
//! request names the version it speaks ([`PROTOCOL_VERSION`]); one without `version` is a
//! version 1 request (what berthd sent before the field existed) and is served the same way,
//! so a new berthd drives the monitors an older one started and the other way round. Fields
//! a side does not know are ignored; a version newer than the monitor's own is refused with
//! a [`Reply::Failure`]. No async runtime, no I/O: the monitor stays tiny and berthd does its
//! own reading and writing.

mod config;
mod error;
mod records;
mod reply;
mod request;

pub use berth_core::runtime::RuntimeChoice;
pub use config::{LogFormat, MonitorConfig};
pub use error::ProtoError;
pub use records::{ExitRecord, StateFile};
pub use reply::{Failure, Ready, Reply, RunStatus};
pub use request::{Command, Request};

/// The protocol version this crate speaks. 1: untyped lines without `version` (berth before
/// this crate); 2: the typed messages, requests carry `version`.
pub const PROTOCOL_VERSION: u32 = 2;

/// The longest line either side accepts (a request, a reply, a record), newline included.
/// Generous: the largest message (an exit record with a runtime's error text) is far smaller.
pub const MAX_LINE: usize = 64 * 1024;

/// Decodes one message (a line without or with its `\n`, or a whole file's content).
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ProtoError> {
    if bytes.len() > MAX_LINE {
        return Err(ProtoError::TooLong { len: bytes.len() });
    }
    serde_json::from_slice(bytes).map_err(|e| ProtoError::Malformed(e.to_string()))
}

/// Encodes one message as its line, `\n` included.
pub fn encode<T: serde::Serialize>(msg: &T) -> Result<Vec<u8>, ProtoError> {
    let mut line = serde_json::to_vec(msg).map_err(|e| ProtoError::Encode(e.to_string()))?;
    line.push(b'\n');
    Ok(line)
}
