//! Executing a network configuration list (the spec's section on lists): each plugin's
//! configuration gets the list's `name` and `cniVersion`, a `runtimeConfig` with those of the
//! runtime's capability arguments the plugin declares in `capabilities` (e.g.
//! `portMappings` for portmap), and a `prevResult`: on ADD the previous plugin's result (from
//! spec 0.3.0), on DEL the ADD's final result (from 0.4.0; omitted when unknown). ADD runs the
//! plugins in order and, when one fails, DEL undoes the whole list; DEL runs them in reverse.

use crate::config::NetworkList;
use crate::error::{CniError, CniResult};
use crate::exec::Exec;
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A network namespace to attach (or detach): the spec's runtime parameters.
#[derive(Debug, Clone, Default)]
pub struct Attachment {
    /// `CNI_CONTAINERID` (a pod sandbox's ID).
    pub container_id: String,
    /// `CNI_NETNS`: the namespace's path (`None` on DEL once it is gone).
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME` (`eth0`).
    pub ifname: String,
    /// `CNI_ARGS` pairs (a pair containing `;` or `=` cannot be passed and is left out).
    pub args: Vec<(String, String)>,
    /// Capability arguments (`portMappings`, ...), given to the plugins that declare them.
    pub capability_args: Map<String, Value>,
}

/// What ADD gave.
#[derive(Debug, Clone, PartialEq)]
pub struct AddResult {
    /// The last plugin's result, as it wrote it (DEL's `prevResult`).
    pub raw: Value,
    /// The addresses of the sandbox interface, IPv4 first.
    pub ips: Vec<IpAddr>,
}

/// A CNI client: where the plugins are and how long each may run.
#[derive(Debug, Clone)]
pub struct Cni {
    exec: Exec,
}

/// A `major.minor.patch` version as numbers (an empty one is 0.1.0, the spec's first).
fn version(v: &str) -> (u32, u32, u32) {
    if v.is_empty() {
        return (0, 1, 0);
    }
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Add,
    Del,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Add => "ADD",
            Op::Del => "DEL",
        }
    }
}

impl Cni {
    /// A client running plugins from `bin_dirs` (searched in order), each for at most
    /// `timeout`.
    pub fn new(bin_dirs: Vec<PathBuf>, timeout: Duration) -> Cni {
        Cni {
            exec: Exec { bin_dirs, timeout },
        }
    }

    /// Plugin `i`'s configuration for `op`.
    fn plugin_conf(
        list: &NetworkList,
        i: usize,
        at: &Attachment,
        prev: Option<&Value>,
    ) -> Map<String, Value> {
        let mut conf = list.plugins.get(i).cloned().unwrap_or_default();
        conf.insert("name".into(), Value::String(list.name.clone()));
        conf.insert("cniVersion".into(), Value::String(list.cni_version.clone()));
        let declared = conf
            .get("capabilities")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let runtime: Map<String, Value> = at
            .capability_args
            .iter()
            .filter(|(k, _)| declared.get(*k).and_then(Value::as_bool) == Some(true))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !runtime.is_empty() {
            conf.insert("runtimeConfig".into(), Value::Object(runtime));
        }
        if let Some(p) = prev {
            conf.insert("prevResult".into(), p.clone());
        }
        conf
    }

    /// The `CNI_*` variables of `op` for `at`.
    fn env(op: Op, at: &Attachment) -> Vec<(&'static str, String)> {
        let args = at
            .args
            .iter()
            .filter(|(k, v)| !format!("{k}{v}").contains([';', '=', '\0']) && !k.is_empty())
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";");
        vec![
            ("CNI_COMMAND", op.name().to_string()),
            ("CNI_CONTAINERID", at.container_id.clone()),
            (
                "CNI_NETNS",
                at.netns
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            ("CNI_IFNAME", at.ifname.clone()),
            ("CNI_ARGS", args),
        ]
    }

    fn run(
        &self,
        op: Op,
        list: &NetworkList,
        i: usize,
        at: &Attachment,
        prev: Option<&Value>,
    ) -> CniResult<Vec<u8>> {
        let conf = Value::Object(Self::plugin_conf(list, i, at, prev));
        let stdin = serde_json::to_vec(&conf).unwrap_or_default();
        self.exec
            .run(list.plugin_type(i), &Self::env(op, at), stdin)
    }

    /// ADD: attaches `at` to the network `list` describes; on a failure the list's DEL runs
    /// (its own errors ignored) and the ADD's error is answered.
    pub fn add(&self, list: &NetworkList, at: &Attachment) -> CniResult<AddResult> {
        let chained = version(&list.cni_version) >= (0, 3, 0);
        let mut prev: Option<Value> = None;
        for i in 0..list.plugins.len() {
            let step = self
                .run(Op::Add, list, i, at, prev.as_ref().filter(|_| chained))
                .and_then(|out| {
                    serde_json::from_slice::<Value>(&out)
                        .ok()
                        .filter(Value::is_object)
                        .ok_or_else(|| CniError::BadResult {
                            plugin: list.plugin_type(i).to_string(),
                            reason: format!(
                                "not a JSON object: {:?}",
                                String::from_utf8_lossy(&out[..out.len().min(200)])
                            ),
                        })
                });
            match step {
                Ok(result) => prev = Some(result),
                Err(e) => {
                    // Undo everything, each plugin even when another's DEL fails.
                    for j in (0..list.plugins.len()).rev() {
                        let _ = self.run(Op::Del, list, j, at, None);
                    }
                    return Err(e);
                }
            }
        }
        let raw = prev.unwrap_or(Value::Null);
        let ips = crate::result::sandbox_ips(&raw, &at.ifname);
        Ok(AddResult { raw, ips })
    }

    /// DEL: detaches `at` from the network `list` describes, plugins in reverse order, with
    /// the ADD's result `prev` when known. Plugins treat a DEL of what is already gone as
    /// success, so this may be repeated.
    pub fn del(&self, list: &NetworkList, at: &Attachment, prev: Option<&Value>) -> CniResult<()> {
        let prev = prev.filter(|_| version(&list.cni_version) >= (0, 4, 0));
        for i in (0..list.plugins.len()).rev() {
            self.run(Op::Del, list, i, at, prev)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    /// A fake plugin logging its command and stdin to `<dir>/log`, answering `answer`.
    fn plugin(dir: &std::path::Path, name: &str, answer: &str) {
        let p = dir.join(name);
        let log = dir.join("log");
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\nprintf '%s %s ' \"$CNI_COMMAND\" {name} >> {log}\ncat >> {log}\necho >> {log}\n{answer}\n",
                log = log.display()
            ),
        )
        .expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    fn list(types: &[(&str, Value)]) -> NetworkList {
        NetworkList {
            name: "n".into(),
            cni_version: "1.0.0".into(),
            plugins: types
                .iter()
                .map(|(t, extra)| {
                    let mut m = extra.as_object().cloned().unwrap_or_default();
                    m.insert("type".into(), json!(t));
                    m
                })
                .collect(),
            source: PathBuf::new(),
        }
    }

    fn log(dir: &std::path::Path) -> Vec<(String, String, Value)> {
        std::fs::read_to_string(dir.join("log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut parts = l.splitn(3, ' ');
                Some((
                    parts.next()?.to_string(),
                    parts.next()?.to_string(),
                    serde_json::from_str(parts.next()?).ok()?,
                ))
            })
            .collect()
    }

    #[test]
    fn add_chains_results_and_capabilities_and_del_runs_in_reverse() {
        let t = tempfile::tempdir().expect("tempdir");
        let result = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/ns"}],"ips":[{"address":"10.1.2.3/24","interface":0}]}"#;
        plugin(t.path(), "main", &format!("echo '{result}'"));
        plugin(
            t.path(),
            "meta",
            "echo '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.1.2.3/24\"}]}'",
        );
        let cni = Cni::new(vec![t.path().to_path_buf()], Duration::from_secs(20));
        let l = list(&[
            ("main", json!({"cniVersion": "0.1.0", "name": "other"})),
            (
                "meta",
                json!({"capabilities": {"portMappings": true, "bandwidth": false}}),
            ),
        ]);
        let at = Attachment {
            container_id: "c1".into(),
            netns: Some("/ns".into()),
            ifname: "eth0".into(),
            args: vec![
                ("K8S_POD_NAME".into(), "p".into()),
                ("BAD".into(), "a;b".into()),
            ],
            capability_args: json!({"portMappings": [{"hostPort": 8080}], "bandwidth": {}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        };
        let r = cni.add(&l, &at).expect("add");
        assert_eq!(r.ips, vec!["10.1.2.3".parse::<IpAddr>().expect("ip")]);
        cni.del(&l, &at, Some(&r.raw)).expect("del");
        let calls = log(t.path());
        let order: Vec<_> = calls.iter().map(|(c, n, _)| format!("{c} {n}")).collect();
        assert_eq!(order, ["ADD main", "ADD meta", "DEL meta", "DEL main"]);
        let (main_add, meta_add) = (&calls[0].2, &calls[1].2);
        assert_eq!(
            (&main_add["name"], &main_add["cniVersion"]),
            (&json!("n"), &json!("1.0.0"))
        );
        assert!(main_add.get("prevResult").is_none() && main_add.get("runtimeConfig").is_none());
        assert_eq!(meta_add["prevResult"]["ips"][0]["address"], "10.1.2.3/24");
        assert_eq!(
            meta_add["runtimeConfig"],
            json!({"portMappings": [{"hostPort": 8080}]})
        );
        // DEL gets the final ADD result (meta's) for every plugin.
        for (_, _, conf) in &calls[2..] {
            assert_eq!(conf["prevResult"], r.raw);
        }
        assert_eq!(
            Cni::env(Op::Add, &at)[4],
            ("CNI_ARGS", "K8S_POD_NAME=p".to_string())
        );
    }

    #[test]
    fn a_failed_add_is_undone_with_del() {
        let t = tempfile::tempdir().expect("tempdir");
        plugin(t.path(), "ok", "echo '{\"cniVersion\":\"1.0.0\"}'");
        plugin(
            t.path(),
            "bad",
            "echo '{\"code\":11,\"msg\":\"nope\"}'; exit 1",
        );
        let cni = Cni::new(vec![t.path().to_path_buf()], Duration::from_secs(20));
        let l = list(&[("ok", json!({})), ("bad", json!({}))]);
        let e = cni.add(&l, &Attachment::default()).expect_err("fails");
        assert!(matches!(e, CniError::Plugin { code: 11, .. }), "{e}");
        let order: Vec<_> = log(t.path())
            .iter()
            .map(|(c, n, _)| format!("{c} {n}"))
            .collect();
        assert_eq!(order, ["ADD ok", "ADD bad", "DEL bad", "DEL ok"]);
    }
}
