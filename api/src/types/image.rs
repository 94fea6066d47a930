//! Image wire types of the Docker Engine API (v1.50 shapes): `GET /images/json`,
//! `GET /images/{name}/json`, `/history`, `DELETE /images/{name}`, `POST /images/prune` and
//! the image part of `GET /system/df`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One entry of `GET /images/json` (and of `system df`'s `Images`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    /// `sha256:<hex>`.
    pub id: String,
    /// Parent image ID or empty.
    pub parent_id: String,
    /// `name:tag` references (empty for dangling images).
    pub repo_tags: Vec<String>,
    /// `name@sha256:...` references.
    pub repo_digests: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    /// Total size of the image's layers.
    pub size: i64,
    /// Size shared with other images, -1 when not computed.
    pub shared_size: i64,
    /// Labels of the image config (null when none).
    pub labels: Option<BTreeMap<String, String>>,
    /// Number of containers using the image, -1 when not computed.
    pub containers: i64,
}

/// `GraphDriver` of an inspect answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GraphDriver {
    /// Driver name (`overlay2`, `vfs`).
    pub name: String,
    /// Driver-specific paths (`MergedDir`, `UpperDir`, ...).
    pub data: Option<BTreeMap<String, String>>,
}

/// `RootFS` of an inspect answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The diff_ids.
    pub layers: Vec<String>,
}

/// `Metadata` of an inspect answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageMetadata {
    /// When a tag last pointed at the image (`0001-01-01T00:00:00Z` if never).
    #[serde(rename = "LastTagTime")]
    pub last_tag_time: String,
}

/// `GET /images/{name}/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    /// `sha256:<hex>`.
    pub id: String,
    /// `name:tag` references.
    pub repo_tags: Vec<String>,
    /// `name@sha256:...` references.
    pub repo_digests: Vec<String>,
    /// Parent image ID or empty.
    pub parent: String,
    /// The image's comment (`Imported from -`, `docker commit -m`).
    pub comment: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// Engine version that built it, if recorded.
    pub docker_version: String,
    /// Author.
    pub author: String,
    /// The container config the image carries (Docker's `Config` shape).
    pub config: Value,
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// CPU variant (`v8`), omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// `linux`.
    pub os: String,
    /// Total size of its layers.
    pub size: i64,
    /// Storage driver data.
    pub graph_driver: GraphDriver,
    /// Layers.
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
    /// Local metadata.
    pub metadata: ImageMetadata,
}

/// One row of `GET /images/{name}/history`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryResponseItem {
    /// Image ID or `<missing>`.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// The step's command.
    pub created_by: String,
    /// Tags of that image (null when none).
    pub tags: Option<Vec<String>>,
    /// Layer size of the step.
    pub size: i64,
    /// The step's comment.
    pub comment: String,
}

/// One entry of `DELETE /images/{name}` and of a prune report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteResponseItem {
    /// A removed tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    /// A removed image or layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

/// `POST /images/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImagePruneReport {
    /// What was removed (null when nothing).
    pub images_deleted: Option<Vec<DeleteResponseItem>>,
    /// Bytes freed.
    pub space_reclaimed: u64,
}
