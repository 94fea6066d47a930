//! Reading a CNI result: the addresses given to the container's interface. Results of spec
//! 0.3.0 and later (0.4.0, 1.0.0) list `ips` (`{"address": "10.0.0.5/24", "interface": 2}`,
//! the index into `interfaces`); those of 0.1.0/0.2.0 have `ip4`/`ip6` objects (`{"ip": ...}`).
//! The raw result is kept as it came: it is the `prevResult` of later plugins and of `DEL`.

use serde_json::Value;
use std::net::IpAddr;

/// The most addresses taken from one result.
const MAX_IPS: usize = 64;

/// The address of a CIDR (`10.0.0.5/24`) or of a bare address.
fn address(cidr: &str) -> Option<IpAddr> {
    cidr.split('/').next().and_then(|a| a.parse().ok())
}

/// The addresses the result gives the sandbox interface named `ifname`, IPv4 first (as
/// containerd orders a pod's IPs by default); every address when the result does not say
/// which interface an address is on.
pub fn sandbox_ips(result: &Value, ifname: &str) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = Vec::new();
    if let Some(list) = result.get("ips").and_then(Value::as_array) {
        let interfaces = result
            .get("interfaces")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let on_ours = |ip: &Value| match ip.get("interface").and_then(Value::as_u64) {
            None => true,
            Some(i) => usize::try_from(i)
                .ok()
                .and_then(|i| interfaces.get(i))
                .is_some_and(|itf| {
                    itf.get("name").and_then(Value::as_str) == Some(ifname)
                        && itf
                            .get("sandbox")
                            .and_then(Value::as_str)
                            .is_some_and(|s| !s.is_empty())
                }),
        };
        ips.extend(
            list.iter()
                .filter(|ip| on_ours(ip))
                .filter_map(|ip| ip.get("address").and_then(Value::as_str))
                .filter_map(address)
                .take(MAX_IPS),
        );
    } else {
        for key in ["ip4", "ip6"] {
            if let Some(a) = result
                .get(key)
                .and_then(|v| v.get("ip"))
                .and_then(Value::as_str)
                .and_then(address)
            {
                ips.push(a);
            }
        }
    }
    // Stable: IPv4 before IPv6, each in the result's order.
    ips.sort_by_key(|ip| ip.is_ipv6());
    ips.dedup();
    ips
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_sandbox_interface_addresses_are_read_from_each_result_version() {
        let v1 = json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "cni0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/run/ns"}],
            "ips": [
                {"address": "fd00::5/64", "interface": 2},
                {"address": "10.0.0.5/24", "interface": 2, "gateway": "10.0.0.1"},
                {"address": "10.9.9.1/24", "interface": 0}
            ]
        });
        let want: Vec<IpAddr> = vec![
            "10.0.0.5".parse().expect("ip"),
            "fd00::5".parse().expect("ip"),
        ];
        assert_eq!(sandbox_ips(&v1, "eth0"), want);
        let v04 =
            json!({"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.0.0.6/24"}]});
        assert_eq!(
            sandbox_ips(&v04, "eth0"),
            vec!["10.0.0.6".parse::<IpAddr>().expect("ip")]
        );
        let v02 = json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.0.0.7/24"}});
        assert_eq!(
            sandbox_ips(&v02, "eth0"),
            vec!["10.0.0.7".parse::<IpAddr>().expect("ip")]
        );
        assert!(sandbox_ips(&json!({"ips": [{"address": "junk"}]}), "eth0").is_empty());
    }
}
