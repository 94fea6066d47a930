//! Checks of a create body before anything is made, with Docker's texts: the JSON types of
//! every field berth knows (as Go's decoder would refuse them), then the values Docker's
//! daemon refuses (restart policies, CPU and memory limits, security options).
//!
//! [`normalise`] first does what Go's decoder does silently: `null` leaves a field at its
//! zero value, and `Cmd`/`Entrypoint` may be a single string.

use crate::error::ServiceError;
use berth_api::types::container::{ContainerConfig, HostConfig, NetworkingConfig};
use serde_json::{json, Value};

/// Docker's smallest memory limit.
const MIN_MEMORY: i64 = 6 << 20;

/// Drops `null` members (recursively) and turns a string `Cmd`/`Entrypoint` into a list.
pub fn normalise(body: &mut Value) {
    crate::jsonv::drop_nulls(body);
    for k in ["Cmd", "Entrypoint"] {
        if let Some(s) = body[k].as_str() {
            body[k] = json!([s]);
        }
    }
}

/// Checks a normalised create body: field types, then limits and policies. Returns its
/// `Config`, `HostConfig` and `NetworkingConfig`, typed.
pub fn check(
    body: &Value,
) -> Result<(ContainerConfig, HostConfig, NetworkingConfig), ServiceError> {
    let mut config = body.clone();
    if let Some(m) = config.as_object_mut() {
        m.remove("HostConfig");
        m.remove("NetworkingConfig");
    }
    let config = typed::<ContainerConfig>(&config, "")?;
    super::health::check(config.healthcheck.as_ref())?;
    let networking = typed::<NetworkingConfig>(&body["NetworkingConfig"], "NetworkingConfig.")?;
    let hc = typed::<HostConfig>(&body["HostConfig"], "HostConfig.")?;
    check_host_config(&hc)?;
    Ok((config, hc, networking))
}

/// `v` (absent = the default) as a `T`, or a 400 naming the field that has the wrong type.
fn typed<T: serde::de::DeserializeOwned + Default>(
    v: &Value,
    prefix: &str,
) -> Result<T, ServiceError> {
    if v.is_null() {
        return Ok(T::default());
    }
    serde_path_to_error::deserialize(v).map_err(|e| {
        ServiceError::bad_request(format!(
            "json: invalid value for {prefix}{}: {}",
            e.path(),
            e.inner()
        ))
    })
}

/// The values of a `HostConfig` Docker refuses (also what `update` may change).
pub fn check_host_config(hc: &HostConfig) -> Result<(), ServiceError> {
    let rp = &hc.restart_policy;
    match rp.name.as_str() {
        "" | "no" | "always" | "unless-stopped" | "on-failure" => {}
        other => {
            return Err(ServiceError::bad_request(format!(
                "invalid restart policy '{other}'"
            )))
        }
    }
    if rp.maximum_retry_count < 0 {
        return Err(ServiceError::bad_request(
            "maximum retry count cannot be negative",
        ));
    }
    if rp.maximum_retry_count > 0 && rp.name != "on-failure" {
        return Err(ServiceError::bad_request(format!(
            "maximum retry count cannot be used with restart policy '{}'",
            rp.name
        )));
    }
    if hc.nano_cpus != 0 {
        // Asked only when needed: it reads the cgroup and mount tables (~0.5 ms).
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
        if !(10_000_000..=cpus * 1_000_000_000).contains(&hc.nano_cpus) {
            return Err(ServiceError::bad_request(format!(
                "Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
            )));
        }
    }
    if let Some(opts) = &hc.security_opt {
        berth_runtime::security::parse(opts).map_err(ServiceError::bad_request)?;
    }
    if hc.memory != 0 && hc.memory < MIN_MEMORY {
        return Err(ServiceError::bad_request(
            "Minimum memory limit allowed is 6MB",
        ));
    }
    if hc.memory_swap > 0 && hc.memory == 0 {
        return Err(ServiceError::bad_request(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if hc.memory_swap > 0 && hc.memory_swap < hc.memory {
        return Err(ServiceError::bad_request(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: Value) -> String {
        let mut b = body;
        normalise(&mut b);
        match check(&b) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn types_are_checked_with_the_field_path() {
        let e = err(json!({"Image": 5}));
        assert!(
            e.contains("Image") && e.contains("expected a string"),
            "{e}"
        );
        let e = err(json!({"Image": "b", "HostConfig": {"Memory": "lots"}}));
        assert!(e.contains("HostConfig.Memory:"), "{e}");
    }

    #[test]
    fn nulls_and_string_commands_are_accepted() {
        let mut b =
            json!({"Image": "b", "Cmd": "echo", "Env": null, "HostConfig": {"Memory": null}});
        normalise(&mut b);
        assert_eq!(b["Cmd"], json!(["echo"]));
        assert!(check(&b).is_ok());
    }

    #[test]
    fn dockers_limits_and_policies() {
        let hc = |v: Value| err(json!({"Image": "b", "HostConfig": v}));
        assert_eq!(
            hc(json!({"RestartPolicy": {"Name": "sometimes"}})),
            "invalid restart policy 'sometimes'"
        );
        assert_eq!(
            hc(json!({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}})),
            "maximum retry count cannot be used with restart policy 'always'"
        );
        assert!(hc(json!({"NanoCpus": -1})).starts_with("Range of CPUs is from 0.01 to "));
        assert_eq!(
            hc(json!({"Memory": 1 << 20})),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            hc(json!({"Memory": 10 << 20, "MemorySwap": 5 << 20})),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        assert_eq!(
            hc(json!({"Memory": 64 << 20, "MemorySwap": -1, "NanoCpus": 500_000_000})),
            ""
        );
    }
}
