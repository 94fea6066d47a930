//! berthd's typed records: what the stores keep on disk, as serde structs in Docker's shapes
//! (the `api` crate's wire types where the shape is Docker's), plus the data root's format
//! version and the migration that brings an older data root up to it.
//!
//! * [`container::ContainerRecord`] — `containers/<id>/config.v2.json`: Docker's inspect
//!   shape (`berth_api::types::container::ContainerJson`) plus berth's own bookkeeping;
//!   its `State` moves only through `ContainerState`'s transition methods.
//! * [`exec::ExecRecord`] — an exec instance (in memory only, as Docker's).
//! * [`network::NetworkRecord`] — `network/networks/<id>.json`: Docker's `NetworkResource`
//!   plus the driver's network id.
//! * [`volume::VolumeRecord`] — `volumes/<name>/volume.json`.
//! * [`format`] — `<data-root>/berth-format.json`; [`migrate`] — start-up conversion of a
//!   data root written by an older berthd.
//!
//! Open-ended objects clients fill (`Config`, `HostConfig`, `NetworkSettings`, endpoints,
//! network resources) keep every field berth does not interpret in a
//! `#[serde(flatten)] extra` map, so inspect gives back what the client sent, as Docker's.

pub mod container;
pub mod exec;
pub mod format;
pub mod migrate;
pub mod network;
pub mod volume;
