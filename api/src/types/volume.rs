//! Volume bodies: create request, volume (inspect), list and prune replies, with Docker's
//! field names. Fields default so replies of other daemons parse.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST /volumes/create` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeCreate {
    /// Empty: a random (anonymous) name.
    pub name: String,
    /// `local` or empty.
    pub driver: String,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// A volume (`GET /volumes/{name}`, create reply, list element).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Volume {
    pub created_at: String,
    pub driver: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub mountpoint: String,
    pub name: String,
    pub options: Option<BTreeMap<String, String>>,
    /// `local`.
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_data: Option<UsageData>,
}

/// `UsageData` of a volume (`system df -v`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UsageData {
    pub size: i64,
    pub ref_count: i64,
}

/// `GET /volumes` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeList {
    pub volumes: Option<Vec<Volume>>,
    pub warnings: Option<Vec<String>>,
}

/// `POST /volumes/prune` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumesPruneResponse {
    pub volumes_deleted: Option<Vec<String>>,
    pub space_reclaimed: u64,
}
