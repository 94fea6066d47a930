//! The MAC addresses a container asks for with the container-wide `Config.MacAddress`: from
//! API 1.44 it is moved into the main network's endpoint configuration at create (as
//! dockerd); before, it is the first interface's when the container joins.

use super::endpoints::special_mode;
use crate::containers::Container;
use crate::error::ServiceError;
use serde_json::{json, Value};

/// From API 1.44 the container-wide `Config.MacAddress` is the main network's endpoint's
/// (dockerd moves it there at create, with a deprecation warning, and refuses a different
/// one on that endpoint). Returns the warning when it moved one.
pub fn main_mac_from_1_44(body: &mut Value) -> Result<Option<String>, ServiceError> {
    let mac = body["MacAddress"]
        .as_str()
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    let Some(mac) = mac else { return Ok(None) };
    let mode = body["HostConfig"]["NetworkMode"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let mode = if mode.is_empty() || mode == "default" {
        "bridge"
    } else {
        mode.as_str()
    };
    if special_mode(mode) {
        return Ok(None);
    }
    let eps = &mut body["NetworkingConfig"]["EndpointsConfig"];
    if !eps.is_object() {
        *eps = json!({});
    }
    let key = [mode, "default"]
        .into_iter()
        .find(|k| !eps[*k].is_null())
        .unwrap_or(mode)
        .to_string();
    let ep = &mut eps[key.as_str()];
    if !ep.is_object() {
        *ep = json!({});
    }
    match ep["MacAddress"].as_str().filter(|m| !m.is_empty()) {
        Some(m) if !m.eq_ignore_ascii_case(&mac) => Err(ServiceError::bad_request(
            "the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be left empty",
        )),
        _ => {
            ep["MacAddress"] = json!(mac);
            Ok(Some(
                "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead.".into(),
            ))
        }
    }
}

/// The container's `Config.MacAddress` (the API before 1.44 had no per-endpoint one), for
/// its first interface.
pub(super) fn first_mac(c: &Container, ifname: &str) -> Option<String> {
    if ifname != "eth0" {
        return None;
    }
    c.view(|r| {
        r.config
            .extra
            .get("MacAddress")?
            .as_str()
            .map(str::to_string)
    })
    .filter(|m| !m.is_empty())
}
