//! The out-of-tree null-network example, opened by the loader from its `.so`, passes the
//! subset of the network conformance suite it claims (no interface: the lifecycle, the
//! typed errors, an untouched namespace). Needs root: the suite makes network namespaces.

mod support;

use berth_plugins::core::network::{NetworkCapabilities, NetworkSpec};
use berth_plugins::Loader;
use serde_json::json;
use std::collections::BTreeMap;
use support::libs;

#[test]
fn null_network_example_passes_network_conformance() {
    let lib = &libs().null;
    let map = BTreeMap::from([("null".to_string(), lib.clone())]);
    let mut loader = Loader::new(map, Vec::new());
    let (driver, info) = loader
        .network("null", &json!({"root": "/nonexistent"}))
        .expect("null loads");
    assert_eq!(&info.library, lib);
    assert_eq!(driver.capabilities(), NetworkCapabilities::default());
    let spec = |i: usize| NetworkSpec {
        id: format!("null-conformance-{}-{i}", std::process::id()),
        name: format!("null{i}"),
        ..NetworkSpec::default()
    };
    berth_net_conformance::run_all(&berth_net_conformance::Harness {
        driver: driver.as_ref(),
        network: &spec,
        subnet_v6: None,
        marks: Vec::new(),
    });
}
