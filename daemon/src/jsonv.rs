//! Small helpers for the loosely typed JSON documents the API and image configs carry
//! (string arrays, `KEY=value` environment lists, `null` members dropped before a typed
//! parse).

use serde_json::Value;

/// The strings of a JSON array (other elements skipped); empty when `v` is not an array.
pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.map(berth_core::json::strings).unwrap_or_default()
}

/// Drops every `null` member of the objects in `v`, recursively (Go's decoder leaves such a
/// field at its zero value; serde's defaults do the same once the member is gone).
pub fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(drop_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// The variable name of a `KEY=value` entry.
pub fn env_key(e: &str) -> &str {
    e.split('=').next().unwrap_or(e)
}

/// `base` with each entry of `over` replacing the entry of the same name or appended, as
/// Docker merges an image's environment with a container's or an exec's.
pub fn merge_env(mut base: Vec<String>, over: &[String]) -> Vec<String> {
    for e in over {
        match base.iter_mut().find(|x| env_key(x) == env_key(e)) {
            Some(slot) => slot.clone_from(e),
            None => base.push(e.clone()),
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_skip_non_strings_and_non_arrays() {
        assert_eq!(strings(Some(&json!(["a", 1, "b"]))), ["a", "b"]);
        assert!(strings(Some(&json!("a"))).is_empty());
        assert!(strings(None).is_empty());
    }

    #[test]
    fn merge_env_replaces_by_name_and_appends() {
        let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let over = ["A=2".to_string(), "B=3".to_string()];
        assert_eq!(merge_env(base, &over), ["PATH=/bin", "A=2", "B=3"]);
    }
}
