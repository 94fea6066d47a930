//! The bridge driver passes the network conformance suite (root only): its own bridge
//! names, nftables table and subnets derived from the test's PID, every one of which the
//! suite checks is gone from the host at the end.

use berth_core::network::NetworkSpec;
use berth_net_bridge::OPT_BRIDGE_NAME;
use std::collections::BTreeMap;

#[test]
fn bridge_passes_network_conformance() {
    let pid = std::process::id();
    let tag = format!("bc{}", pid % 100_000);
    let third = pid % 250;
    let dir = tempfile::tempdir().expect("tempdir");
    // A default bridge the suite never creates: the driver's table is named after it.
    let cfg = serde_json::json!({"root": dir.path(), "bridge": format!("{tag}d")});
    let driver = berth_net_bridge::from_config(&cfg).expect("driver");
    let table = berth_net_bridge::table_for(&format!("{tag}d"));
    let subnet = |i: usize| format!("10.{}.{third}.0/24", 231 + i);
    let spec = |i: usize| NetworkSpec {
        id: format!("{:0>64}", format!("{tag}n{i}")),
        name: format!("conformance{i}"),
        subnet: Some(subnet(i)),
        options: BTreeMap::from([(OPT_BRIDGE_NAME.to_string(), format!("{tag}b{i}"))]),
        ..NetworkSpec::default()
    };
    // The bridge claims IPv6: the suite's IPv6 network gets its own ULA /64.
    let subnet_v6 = format!("fd42:{:x}:{third:x}::/64", 0xbc00 + pid % 256);
    let mut marks: Vec<String> = (0..4).map(|i| format!("{tag}b{i}")).collect();
    marks.extend((0..4).map(subnet));
    marks.push(subnet_v6.trim_end_matches("::/64").to_string());
    marks.push(table.clone());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        berth_net_conformance::run_all(&berth_net_conformance::Harness {
            driver: &driver,
            network: &spec,
            subnet_v6: Some(subnet_v6.clone()),
            marks: marks.clone(),
        })
    }));
    // Whatever happened, nothing of ours stays on the host.
    for m in marks.iter().take(4) {
        let _ = berth_net_conformance::host::run("ip", &["link", "del", m]);
    }
    for family in ["ip", "ip6"] {
        let _ = berth_net_conformance::host::run("nft", &["delete", "table", family, &table]);
    }
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}
