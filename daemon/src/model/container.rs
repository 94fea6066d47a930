//! The container record (`<data-root>/containers/<id>/config.v2.json`): Docker's inspect
//! shape ([`ContainerJson`]) plus what berth alone keeps about a container.

use berth_api::types::container::ContainerJson;
use serde::{Deserialize, Serialize};
use std::ops::{Deref, DerefMut};

/// One container as stored. Dereferences to its inspect shape, so `rec.state.set_running(..)`,
/// `rec.host_config.auto_remove`, `rec.config.tty` read and write typed fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// Everything inspect shows (derived fields such as the published ports are filled in
    /// when rendering).
    #[serde(flatten)]
    pub inspect: ContainerJson,
    /// Stopped by a user (`stop`, `kill`): restart policies other than `always` leave it
    /// stopped when berthd starts again. Never shown by inspect.
    #[serde(rename = "ManuallyStopped", default)]
    pub manually_stopped: bool,
    /// The CRI pod sandbox it belongs to, whose namespaces it joins at start. Never shown by
    /// inspect.
    #[serde(rename = "BerthPod", default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodNamespaces>,
    /// Its cgroup path under each hierarchy's root (`<parent>/<id>`), fixed at create; none
    /// (a record from before cgroup parents): `berth/<id>`. Never shown by inspect.
    #[serde(
        rename = "BerthCgroup",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cgroup: Option<String>,
}

/// The namespaces of a CRI pod sandbox (files berthd pinned them to; `None`: the host's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodNamespaces {
    /// The pod sandbox's ID.
    #[serde(rename = "Id")]
    pub id: String,
    /// Its network namespace.
    #[serde(rename = "Net", default)]
    pub net: Option<String>,
    /// Its IPC namespace.
    #[serde(rename = "Ipc", default)]
    pub ipc: Option<String>,
    /// Its UTS namespace (hostname).
    #[serde(rename = "Uts", default)]
    pub uts: Option<String>,
    /// Its PID namespace: none, one of its own; `host`, the host's; `container:<id>`, that
    /// of another container (resolved at start); else the file of the pod's (pinned).
    #[serde(rename = "Pid", default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// The log in the CRI's format kubelet asked for (none: the json-file log only).
    #[serde(rename = "LogPath", default)]
    pub log_path: Option<String>,
}

impl Deref for ContainerRecord {
    type Target = ContainerJson;
    fn deref(&self) -> &ContainerJson {
        &self.inspect
    }
}

impl DerefMut for ContainerRecord {
    fn deref_mut(&mut self) -> &mut ContainerJson {
        &mut self.inspect
    }
}

impl ContainerRecord {
    /// The name without its leading `/`.
    pub fn short_name(&self) -> &str {
        self.inspect.name.trim_start_matches('/')
    }

    /// Its cgroup path under each hierarchy's root (see [`ContainerRecord::cgroup`]).
    pub fn cgroup_path(&self) -> String {
        self.cgroup
            .clone()
            .unwrap_or_else(|| berth_runtime::cgroups::default_path(&self.inspect.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a stored record as the store does (`migrate::parse`).
    fn parse(bytes: &[u8]) -> ContainerRecord {
        crate::model::migrate::parse(bytes).expect("parses")
    }

    /// A record as berthd wrote it before the typed model (format 1), trimmed.
    const V1: &str = r#"{"Id":"abc","Created":"2026-01-01T00:00:00Z","Path":"sleep","Args":["60"],
        "State":{"Status":"running","Running":true,"Paused":false,"Restarting":false,
        "OOMKilled":false,"Dead":false,"Pid":77,"ExitCode":0,"Error":"",
        "StartedAt":"2026-01-01T00:00:01Z","FinishedAt":"0001-01-01T00:00:00Z"},
        "Image":"sha256:11","Name":"/web","RestartCount":0,"Driver":"overlay2",
        "HostConfig":{"NetworkMode":"bridge","RestartPolicy":{"Name":"no","MaximumRetryCount":0},
          "AutoRemove":false,"Binds":null,"PortBindings":{},"MemorySwappiness":-1,
          "LogConfig":{"Type":"json-file","Config":{}}},
        "GraphDriver":{"Name":"overlay2","Data":null},
        "Mounts":[{"Type":"volume","Name":"data","Source":"/v/data/_data","Destination":"/data",
          "Driver":"local","Mode":"z","RW":true,"Propagation":""}],
        "Config":{"Hostname":"abc","Image":"busybox","Cmd":["sleep","60"],"Labels":{"a":"b"},
          "Env":["PATH=/bin"],"MacAddress":"","Volumes":null},
        "NetworkSettings":{"Bridge":"","SandboxID":"","Ports":{"80/tcp":null},
          "Networks":{"n1":{"IPAMConfig":{"IPv4Address":"10.9.0.5"},"Aliases":null,
          "NetworkID":"ff","EndpointID":"abc","IPAddress":"10.9.0.5","IPPrefixLen":24,
          "DNSNames":["web"]}},"IPAddress":"","Gateway":"","MacAddress":"","IPPrefixLen":0},
        "ManuallyStopped":true,"SomethingOld":1}"#;

    #[test]
    fn reads_a_format_1_record() {
        let r = parse(V1.as_bytes());
        assert_eq!(r.short_name(), "web");
        assert_eq!((r.state.status.as_str(), r.state.pid), ("running", 77));
        assert!(r.manually_stopped);
        // Made before cgroup parents: the fixed place.
        assert_eq!(r.cgroup_path(), "berth/abc");
        assert_eq!(
            r.config
                .labels
                .as_ref()
                .and_then(|l| l.get("a"))
                .map(String::as_str),
            Some("b")
        );
        assert_eq!(r.mounts[0].name, "data");
        let ep = &r.network_settings.networks["n1"];
        assert_eq!(
            ep.ipam_config.as_ref().map(|c| c.ipv4_address.as_str()),
            Some("10.9.0.5")
        );
        assert_eq!(
            r.host_config.extra.get("MemorySwappiness"),
            Some(&serde_json::json!(-1))
        );
        assert_eq!(
            r.config.extra.get("MacAddress"),
            Some(&serde_json::json!(""))
        );
    }

    #[test]
    fn round_trips_through_its_own_format() {
        let r = parse(V1.as_bytes());
        let bytes = serde_json::to_vec(&r).expect("serialises");
        let back = parse(&bytes);
        assert_eq!(r, back);
    }

    #[test]
    fn tolerates_a_skeleton() {
        let r = parse(br#"{"Id":"x","State":null,"Config":null}"#);
        assert_eq!(r.state.status(), "created");
        assert!(!r.manually_stopped);
    }
}
