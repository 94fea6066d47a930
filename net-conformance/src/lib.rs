//! The network-driver conformance suite.
//!
//! Every `core::NetworkDriver` — the bridge, the null-network example, or a third party's —
//! runs [`run_all`] as root. It reads the driver's [`NetworkCapabilities`] and checks what is
//! claimed, against the kernel:
//!
//! * always: networks are created and deleted; an endpoint joins a network namespace the
//!   suite made (`ip netns add`) and leaves it; unknown networks and a second delete are
//!   `NotFound`, a second join of one endpoint `AlreadyExists`, deleting a network in use
//!   `Conflict`, leaving an unknown endpoint no error; the answer to `join` is what the
//!   namespace shows (no interface and no routes when the driver claims none); after `leave`
//!   only `lo` is left in the namespace; and once every network is gone nothing the runner
//!   names as the driver's (bridge devices, firewall tables, subnets: [`Harness::marks`])
//!   shows in `ip link`/`ip addr`/`ip route`, `nft list ruleset` or `iptables-save`.
//! * `interface`: the interface, MAC, IPv4 address and prefix and the routes reported are
//!   the ones `ip -j addr`/`ip -j route` show inside; two endpoints on one network reach each
//!   other over TCP; eight concurrent joins get distinct addresses inside the subnet.
//! * `static_ip`: a requested address is the one given.
//! * `ipv6`: a network with [`Harness::subnet_v6`] gives endpoints an IPv6 address in it,
//!   seen inside, and two endpoints reach each other over IPv6.
//!
//! Whatever fails, what the suite made (endpoints, networks, namespaces) is removed.
//!
//! ```ignore
//! #[test]
//! fn conformance() {
//!     let driver = my_driver();
//!     berth_net_conformance::run_all(&berth_net_conformance::Harness {
//!         driver: &driver,
//!         network: &|i| NetworkSpec { id: format!("net{i}"), name: format!("n{i}"), ..Default::default() },
//!         subnet_v6: None,
//!         marks: vec![],
//!     });
//! }
//! ```

mod checks;
pub mod host;

use berth_core::network::{EndpointInfo, EndpointSpec, NetworkCapabilities, NetworkSpec};
use berth_core::{DriverResult, NetworkDriver};
use std::collections::BTreeSet;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Mutex;

/// What the runner supplies.
pub struct Harness<'a> {
    /// The driver under test.
    pub driver: &'a dyn NetworkDriver,
    /// The spec of the suite's `i`-th network (`i` < 4): each with its own id, name and —
    /// for drivers that need them — its own subnet and options (device names) that nothing
    /// else on the host uses.
    pub network: &'a dyn Fn(usize) -> NetworkSpec,
    /// An IPv6 subnet for the IPv6 checks (used only when the driver claims IPv6).
    pub subnet_v6: Option<String>,
    /// Strings that name what the driver put on the host for the suite's networks (device
    /// names, table names, subnets): none may show once every network is deleted.
    pub marks: Vec<String>,
}

/// Endpoints and networks the suite made and has not removed yet (removed on failure).
#[derive(Default)]
pub(crate) struct Made {
    networks: Mutex<BTreeSet<String>>,
    endpoints: Mutex<BTreeSet<(String, String)>>,
}

/// The driver with the bookkeeping that lets the suite clean up after a failed check.
pub(crate) struct Tracked<'a> {
    pub d: &'a dyn NetworkDriver,
    made: Made,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Tracked<'_> {
    pub fn create(&self, spec: &NetworkSpec) -> DriverResult<berth_core::network::NetworkInfo> {
        let r = self.d.create_network(spec);
        if r.is_ok() {
            lock(&self.made.networks).insert(spec.id.clone());
        }
        r
    }

    pub fn delete(&self, id: &str) -> DriverResult<()> {
        let r = self.d.delete_network(id);
        if r.is_ok() {
            lock(&self.made.networks).remove(id);
        }
        r
    }

    pub fn join(&self, spec: &EndpointSpec) -> DriverResult<EndpointInfo> {
        let r = self.d.join(spec);
        if r.is_ok() {
            lock(&self.made.endpoints).insert((spec.network_id.clone(), spec.endpoint_id.clone()));
        }
        r
    }

    pub fn leave(&self, net: &str, ep: &str) -> DriverResult<()> {
        let r = self.d.leave(net, ep);
        if r.is_ok() {
            lock(&self.made.endpoints).remove(&(net.to_string(), ep.to_string()));
        }
        r
    }

    /// Leaves every endpoint and deletes every network still made (errors ignored).
    fn clean_up(&self) {
        let eps: Vec<_> = lock(&self.made.endpoints).iter().cloned().collect();
        for (net, ep) in eps {
            let _ = self.leave(&net, &ep);
        }
        let nets: Vec<_> = lock(&self.made.networks).iter().cloned().collect();
        for net in nets {
            let _ = self.delete(&net);
        }
    }
}

/// An endpoint spec for the suite's endpoint `n` on `network` in namespace `ns`.
pub(crate) fn endpoint(network: &str, n: usize, ns: &host::Netns) -> EndpointSpec {
    EndpointSpec {
        network_id: network.to_string(),
        endpoint_id: format!("conformance-ep{n}"),
        container_id: format!("conformance-c{n}"),
        netns_path: ns.path(),
        ifname: "eth0".into(),
        ..EndpointSpec::default()
    }
}

/// Runs every check the driver's capabilities call for (see the module documentation).
pub fn run_all(h: &Harness<'_>) {
    let caps: NetworkCapabilities = h.driver.capabilities();
    let t = Tracked {
        d: h.driver,
        made: Made::default(),
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        checks::lifecycle_and_errors(&t, h, &caps);
        if caps.interface {
            checks::traffic_and_concurrency(&t, h, &caps);
        }
        if caps.ipv6 {
            checks::ipv6(&t, h);
        }
    }));
    t.clean_up();
    if let Err(p) = outcome {
        resume_unwind(p);
    }
    let left = host::traces(&h.marks);
    assert!(
        left.is_empty(),
        "with every network deleted, the host still shows the driver's traces:\n{}",
        left.join("\n")
    );
}
