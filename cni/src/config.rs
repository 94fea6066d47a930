//! A node's CNI network configuration, found as containerd and CRI-O find it: the files of the
//! configuration folder ending in `.conflist`, `.conf` or `.json`, sorted by name, and the
//! first of them loaded — a network configuration list (`{"cniVersion", "name", "plugins":
//! [...]}`), or a single network configuration (`{"cniVersion", "name", "type", ...}`), which
//! becomes a list of one plugin. Files are read up to [`MAX_CONFIG_BYTES`]; a malformed first
//! file is an error (as containerd), never silently skipped.

use crate::error::{CniError, CniResult};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest configuration file read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// The most candidate files a configuration folder may hold.
pub const MAX_CONFIG_FILES: usize = 4096;
/// The most plugins a list may chain.
pub const MAX_PLUGINS: usize = 64;

/// A network configuration list, ready to run: the list's name and CNI version, and each
/// plugin's configuration as written (each has a string `type`, a plain file name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkList {
    /// The network's name (`name`).
    pub name: String,
    /// The CNI spec version its plugins speak (`cniVersion`).
    pub cni_version: String,
    /// The plugins' configurations, in order.
    pub plugins: Vec<Map<String, Value>>,
    /// The file it came from.
    #[serde(default)]
    pub source: PathBuf,
}

impl NetworkList {
    /// The `type` (the plugin binary's name) of plugin `i`.
    pub fn plugin_type(&self, i: usize) -> &str {
        self.plugins
            .get(i)
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// The candidate files of `dir`, sorted by name.
fn candidates(dir: &Path) -> CniResult<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CniError::ReadDir {
                dir: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut files = Vec::new();
    for e in rd {
        let e = e.map_err(|source| CniError::ReadDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let p = e.path();
        let wanted = p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| matches!(x, "conflist" | "conf" | "json"));
        // Symlinks are followed (installers often link their configuration in).
        if !wanted || !std::fs::metadata(&p).is_ok_and(|m| m.is_file()) {
            continue;
        }
        if files.len() == MAX_CONFIG_FILES {
            return Err(CniError::Invalid {
                path: dir.to_path_buf(),
                reason: format!("more than {MAX_CONFIG_FILES} configuration files"),
            });
        }
        files.push(p);
    }
    files.sort();
    Ok(files)
}

/// Loads the first network configuration of `dir`; `None` when it has none (or does not
/// exist).
pub fn load_first(dir: &Path) -> CniResult<Option<NetworkList>> {
    match candidates(dir)?.first() {
        Some(p) => load_file(p).map(Some),
        None => Ok(None),
    }
}

/// Reads at most [`MAX_CONFIG_BYTES`] of `path`.
fn read_bounded(path: &Path) -> CniResult<Vec<u8>> {
    let read_err = |source| CniError::Read {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    f.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(CniError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_CONFIG_BYTES,
        });
    }
    Ok(bytes)
}

/// Loads one configuration file: a list (`.conflist`, or a `.json` with `plugins`) or a single
/// network configuration.
pub fn load_file(path: &Path) -> CniResult<NetworkList> {
    let bytes = read_bounded(path)?;
    let invalid = |reason: String| CniError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let doc: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("not a JSON object: {e}")))?;
    let is_list = path.extension().is_some_and(|x| x == "conflist")
        || (path.extension().is_some_and(|x| x == "json") && doc.contains_key("plugins"));
    let text = |key: &str| -> CniResult<String> {
        match doc.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(invalid(format!("{key:?} is not a string"))),
        }
    };
    let name = text("name")?;
    let cni_version = text("cniVersion")?;
    let plugins = if is_list {
        let Some(Value::Array(items)) = doc.get("plugins") else {
            return Err(invalid("no \"plugins\" list".into()));
        };
        if items.len() > MAX_PLUGINS {
            return Err(invalid(format!("more than {MAX_PLUGINS} plugins")));
        }
        items
            .iter()
            .map(|p| match p {
                Value::Object(m) => Ok(m.clone()),
                _ => Err(invalid("a plugin is not a JSON object".into())),
            })
            .collect::<CniResult<Vec<_>>>()?
    } else {
        vec![doc.clone()]
    };
    let list = NetworkList {
        name,
        cni_version,
        plugins,
        source: path.to_path_buf(),
    };
    validate(&list).map_err(invalid)?;
    Ok(list)
}

/// Whether `name` is a valid network name (the spec: an alphanumeric character, then
/// alphanumerics, `_`, `.` or `-`).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= 255
}

/// Whether `t` can name a plugin binary inside the plugin folders (a plain file name).
pub fn valid_type(t: &str) -> bool {
    !t.is_empty() && t.len() <= 255 && t != "." && t != ".." && !t.contains(['/', '\0'])
}

fn validate(list: &NetworkList) -> Result<(), String> {
    if !valid_name(&list.name) {
        return Err(format!("invalid network name {:?}", list.name));
    }
    if list.plugins.is_empty() {
        return Err("no plugins".into());
    }
    for (i, p) in list.plugins.iter().enumerate() {
        match p.get("type") {
            Some(Value::String(t)) if valid_type(t) => {}
            Some(Value::String(t)) => return Err(format!("plugin {i} has an invalid type {t:?}")),
            _ => return Err(format!("plugin {i} has no \"type\"")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).expect("write");
    }

    #[test]
    fn the_first_file_by_name_is_loaded_and_a_single_conf_becomes_a_list() {
        let t = tempfile::tempdir().expect("tempdir");
        assert!(load_first(&t.path().join("missing"))
            .expect("missing")
            .is_none());
        assert!(load_first(t.path()).expect("empty").is_none());
        write(t.path(), "README", "not a config");
        write(
            t.path(),
            "20-b.conflist",
            r#"{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}"#,
        );
        let l = load_first(t.path()).expect("load").expect("some");
        assert_eq!((l.name.as_str(), l.plugins.len()), ("b", 2));
        assert_eq!(l.plugin_type(1), "portmap");
        write(
            t.path(),
            "10-a.conf",
            r#"{"cniVersion":"0.4.0","name":"a","type":"bridge","bridge":"x"}"#,
        );
        let l = load_first(t.path()).expect("load").expect("some");
        assert_eq!((l.name.as_str(), l.cni_version.as_str()), ("a", "0.4.0"));
        assert_eq!(l.plugin_type(0), "bridge");
        assert_eq!(l.plugins[0]["bridge"], "x");
    }

    #[test]
    fn bad_files_are_typed_errors() {
        let t = tempfile::tempdir().expect("tempdir");
        let cases = [
            (
                "a.conflist",
                r#"{"name":"n","plugins":[{"type":"../../bin/sh"}]}"#,
            ),
            ("b.conflist", r#"{"name":"n","plugins":[]}"#),
            ("c.conf", r#"{"name":"n"}"#),
            ("d.conf", r#"{"name":"-bad","type":"bridge"}"#),
            ("e.conf", "[1,2]"),
        ];
        for (name, text) in cases {
            write(t.path(), name, text);
            let e = load_file(&t.path().join(name)).expect_err(name);
            assert!(matches!(e, CniError::Invalid { .. }), "{name}: {e}");
        }
        let big = t.path().join("f.conf");
        std::fs::write(&big, vec![b' '; MAX_CONFIG_BYTES as usize + 1]).expect("write");
        assert!(matches!(load_file(&big), Err(CniError::TooLarge { .. })));
        // The first file decides: a malformed one is an error, not skipped.
        assert!(load_first(t.path()).is_err());
    }
}
