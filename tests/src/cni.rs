//! [`CniNet`]: a private CNI network for one test daemon's pods — a configuration folder
//! holding one `.conflist` (the standard `bridge` plugin on a bridge of its own, `host-local`
//! addresses from a /24 of 10.214.0.0/16 with their state in the test's folder, `portmap` for
//! host ports), to be named in the daemon's `cri` section ([`CniNet::daemon_config`]).
//! Dropping it removes what the plugins left on the host, also after a failed test: the
//! veths on its bridge, the bridge, portmap's iptables rules and chains for its network (and
//! portmap's shared `CNI-HOSTPORT-*` chains once no network uses them), and its folder.

use crate::cleanup::delete_link;
use crate::daemon::pick_subnet;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Where Debian's containernetworking-plugins are.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One test's CNI network.
pub struct CniNet {
    dir: tempfile::TempDir,
    /// The network's name (`berth-test-<bridge>`).
    pub name: String,
    /// Its bridge device.
    pub bridge: String,
    /// `10.214.N`: the /24's first three octets.
    pub prefix: String,
}

impl CniNet {
    /// Whether the plugins are installed (`apt-get install containernetworking-plugins`).
    pub fn available() -> bool {
        ["bridge", "host-local", "portmap"]
            .iter()
            .all(|p| Path::new(CNI_BIN_DIR).join(p).is_file())
    }

    /// A network whose addresses run from `.first` to `.last` of its /24 (the gateway is
    /// `.1`): a short range lets a test prove that a deleted pod's address is reused.
    pub fn new(first: u8, last: u8) -> CniNet {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-cni-")
            .tempdir()
            .expect("creating the CNI network's temp dir");
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let bridge = format!("bcni{:05x}{:x}", pid & 0xfffff, n % 16);
        let prefix = format!("10.214.{}", pick_subnet("10.214", pid, n));
        let name = format!("berth-test-{bridge}");
        let net = CniNet {
            dir,
            name,
            bridge,
            prefix,
        };
        std::fs::create_dir_all(net.conf_dir()).expect("mkdir net.d");
        net.write_config();
        net.first_last(first, last);
        net
    }

    fn first_last(&self, first: u8, last: u8) {
        let mut v: Value =
            serde_json::from_slice(&std::fs::read(self.conf_file()).expect("reading the conflist"))
                .expect("conflist JSON");
        v["plugins"][0]["ipam"]["ranges"][0][0]["rangeStart"] =
            json!(format!("{}.{first}", self.prefix));
        v["plugins"][0]["ipam"]["ranges"][0][0]["rangeEnd"] =
            json!(format!("{}.{last}", self.prefix));
        std::fs::write(self.conf_file(), v.to_string()).expect("writing the conflist");
    }

    fn write_config(&self) {
        let conf = json!({
            "cniVersion": "1.0.0",
            "name": self.name,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": true,
                    "ipMasq": false,
                    "hairpinMode": true,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": format!("{}.0/24", self.prefix)}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": self.ipam_dir(),
                    }
                },
                {"type": "portmap", "capabilities": {"portMappings": true}}
            ]
        });
        std::fs::write(self.conf_file(), conf.to_string()).expect("writing the conflist");
    }

    /// Its folder (configuration, IPAM state, anything a test adds).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration folder (`cni-conf-dir`).
    pub fn conf_dir(&self) -> PathBuf {
        self.dir.path().join("net.d")
    }

    /// The configuration file.
    pub fn conf_file(&self) -> PathBuf {
        self.conf_dir().join("10-berth-test.conflist")
    }

    /// host-local's state: one file per reserved address, under the network's name.
    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.path().join("ipam")
    }

    /// Whether host-local holds `ip` reserved.
    pub fn reserved(&self, ip: &str) -> bool {
        self.ipam_dir().join(&self.name).join(ip).exists()
    }

    /// `{"cri": {"cni-conf-dir": ..., "cni-bin-dir": "/usr/lib/cni"}}` for the daemon's
    /// configuration.
    pub fn daemon_config(&self) -> Value {
        json!({"cri": {"cni-conf-dir": self.conf_dir(), "cni-bin-dir": CNI_BIN_DIR}})
    }

    /// The devices attached to the bridge (the pods' host-side veths).
    pub fn bridge_ports(&self) -> Vec<String> {
        std::fs::read_dir(Path::new("/sys/class/net").join(&self.bridge).join("brif"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The nat rules portmap made for this network (`-S` lines of `CNI-HOSTPORT-DNAT`).
    pub fn portmap_rules(&self) -> Vec<String> {
        let needle = format!("name: \\\"{}\\\"", self.name);
        iptables(&["-t", "nat", "-S", "CNI-HOSTPORT-DNAT"])
            .lines()
            .filter(|l| l.contains(&needle))
            .map(str::to_string)
            .collect()
    }

    fn remove_portmap_rules(&self) {
        let needle = format!("name: \"{}\"", self.name);
        // `-L --line-numbers` shows the comment unescaped; delete from the bottom up.
        let listing = iptables(&[
            "-t",
            "nat",
            "-L",
            "CNI-HOSTPORT-DNAT",
            "-n",
            "--line-numbers",
        ]);
        let mut ours: Vec<(u32, String)> = listing
            .lines()
            .filter(|l| l.contains(&needle))
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let num = f.next()?.parse().ok()?;
                Some((num, f.next()?.to_string()))
            })
            .collect();
        ours.sort_by_key(|o| std::cmp::Reverse(o.0));
        for (num, chain) in ours {
            iptables(&["-t", "nat", "-D", "CNI-HOSTPORT-DNAT", &num.to_string()]);
            if chain.starts_with("CNI-DN-") {
                iptables(&["-t", "nat", "-F", &chain]);
                iptables(&["-t", "nat", "-X", &chain]);
            }
        }
        // portmap's shared chains, once no network's rules are left in them.
        let left = iptables(&["-t", "nat", "-S", "CNI-HOSTPORT-DNAT"]);
        if left.lines().any(|l| l.starts_with("-A ")) {
            return;
        }
        let jump = [
            "-m",
            "addrtype",
            "--dst-type",
            "LOCAL",
            "-j",
            "CNI-HOSTPORT-DNAT",
        ];
        for chain in ["PREROUTING", "OUTPUT"] {
            iptables(&[&["-t", "nat", "-D", chain][..], &jump[..]].concat());
        }
        iptables(&[
            "-t",
            "nat",
            "-D",
            "POSTROUTING",
            "-m",
            "comment",
            "--comment",
            "CNI portfwd requiring masquerade",
            "-j",
            "CNI-HOSTPORT-MASQ",
        ]);
        for chain in [
            "CNI-HOSTPORT-DNAT",
            "CNI-HOSTPORT-SETMARK",
            "CNI-HOSTPORT-MASQ",
        ] {
            iptables(&["-t", "nat", "-F", chain]);
            iptables(&["-t", "nat", "-X", chain]);
        }
        // The nat tables iptables-nft made for them, once empty (only policies left).
        for (tool, family) in [("iptables", "ip"), ("ip6tables", "ip6")] {
            let rules = Command::new(tool)
                .args(["-w", "10", "-t", "nat", "-S"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            if !rules.is_empty() && rules.lines().all(|l| l.starts_with("-P ")) {
                let _ = Command::new("nft")
                    .args(["delete", "table", family, "nat"])
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }
}

/// Runs iptables (the nft-backed one the plugins use); answers stdout, nothing on failure.
fn iptables(args: &[&str]) -> String {
    Command::new("iptables")
        .args(["-w", "10"])
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

impl Drop for CniNet {
    fn drop(&mut self) {
        for port in self.bridge_ports() {
            delete_link(&port);
        }
        delete_link(&self.bridge);
        self.remove_portmap_rules();
    }
}
