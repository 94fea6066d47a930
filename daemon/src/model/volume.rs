//! The volume record (`<data-root>/volumes/<name>/volume.json`) of the `local` driver.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One volume's metadata as stored (its data is the `_data` folder beside it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeRecord {
    /// Its name (also its folder's).
    pub name: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// Labels.
    #[serde(deserialize_with = "nullable_map")]
    pub labels: BTreeMap<String, String>,
    /// Driver options (`type`, `device`, `o`, `size`).
    #[serde(deserialize_with = "nullable_map")]
    pub options: BTreeMap<String, String>,
}

/// Reads `null` as an empty map.
fn nullable_map<'de, D>(d: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_format_1_metadata() {
        let r: VolumeRecord = serde_json::from_str(
            r#"{"Name":"data","CreatedAt":"2026-01-01T00:00:00Z","Labels":{"a":"b"},"Options":null}"#,
        )
        .expect("parses");
        assert_eq!(r.labels["a"], "b");
        assert!(r.options.is_empty());
    }
}
