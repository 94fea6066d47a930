//! Reading the loosely typed JSON documents images, plugins and clients hand berth.

use serde_json::Value;

/// The strings of a JSON array (other elements skipped); empty when `v` is not an array.
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
