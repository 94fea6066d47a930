//! The network record (`<data-root>/network/networks/<id>.json`): Docker's `NetworkResource`
//! plus what berth alone keeps about a network.

use berth_api::types::network::NetworkResource;
use serde::{Deserialize, Serialize};
use std::ops::{Deref, DerefMut};

/// One network as stored. Dereferences to its `NetworkResource`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// What inspect shows (`Containers` is computed when rendering).
    #[serde(flatten)]
    pub resource: NetworkResource,
    /// The id the network's driver knows it by, when it is not `Id` (the default network's
    /// is `bridge`).
    #[serde(
        rename = "DriverNetworkID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub driver_network_id: String,
    /// The user chose the subnet (`--subnet`), so endpoints may ask for fixed addresses.
    #[serde(rename = "BerthUserSubnet", default)]
    pub user_subnet: bool,
}

impl Deref for NetworkRecord {
    type Target = NetworkResource;
    fn deref(&self) -> &NetworkResource {
        &self.resource
    }
}

impl DerefMut for NetworkRecord {
    fn deref_mut(&mut self) -> &mut NetworkResource {
        &mut self.resource
    }
}

impl NetworkRecord {
    /// The id the network's driver knows it by.
    pub fn driver_id(&self) -> &str {
        if self.driver_network_id.is_empty() {
            &self.resource.id
        } else {
            &self.driver_network_id
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_berths_fields_apart_from_dockers() {
        let v1 = r#"{"Name":"bridge","Id":"ab","Driver":"bridge","DriverNetworkID":"bridge",
            "Options":{"com.docker.network.bridge.name":"br0"},"BerthUserSubnet":false}"#;
        let r: NetworkRecord = serde_json::from_str(v1).expect("parses");
        assert_eq!(r.driver_id(), "bridge");
        assert!(r.resource.extra.is_empty());
        let mut user = r.clone();
        user.driver_network_id.clear();
        assert_eq!(user.driver_id(), "ab");
        let back: NetworkRecord =
            serde_json::from_slice(&serde_json::to_vec(&r).expect("t")).expect("t");
        assert_eq!(back, r);
    }
}
