//! `/events` messages, in Docker's JSON shape (`Type`, `Action`, `Actor`, `time`, `timeNano`,
//! plus the legacy `status`/`id`/`from` fields for containers and images).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMessage {
    /// `container`, `image`, `network`, `volume`, `daemon`, `plugin`.
    #[serde(rename = "Type", default)]
    pub typ: String,
    /// `create`, `start`, `die`, `pull`, `tag`, ...
    #[serde(rename = "Action", default)]
    pub action: String,
    /// What the event is about.
    #[serde(rename = "Actor", default)]
    pub actor: Actor,
    /// Always `local`.
    #[serde(default)]
    pub scope: String,
    /// Unix seconds.
    #[serde(default)]
    pub time: i64,
    /// Unix nanoseconds.
    #[serde(rename = "timeNano", default)]
    pub time_nano: i64,
    /// Legacy: the action (containers and images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Legacy: the actor id (containers and images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Legacy: the container's image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// The object an event is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Id (container id, image id or name, network id, volume name).
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Attributes (`name`, `image`, labels, `exitCode`, ...).
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}
