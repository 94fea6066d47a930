//! Docker's `filters` query parameter turned into the domain's typed filters
//! ([`crate::filters`], [`VolumeFilter`], [`NetworkFilter`], [`PruneFilter`]): the keys
//! each list accepts are checked by the handler (`Filters::only`), the values parsed here.

use crate::filters::{truthy, LabelFilter, Labels, PruneFilter};
use crate::network::NetworkFilter;
use crate::server::http::{ApiError, Filters};
use crate::volumes::VolumeFilter;

fn strings(f: &Filters, k: &str) -> Vec<String> {
    f.get(k).to_vec()
}

fn label_filters(f: &Filters, k: &str) -> Vec<LabelFilter> {
    f.get(k).iter().map(|l| LabelFilter::parse(l)).collect()
}

/// `label` and `label!`.
pub fn labels(f: &Filters) -> Labels {
    Labels {
        with: label_filters(f, "label"),
        without: label_filters(f, "label!"),
    }
}

/// `docker volume ls` / `prune`: `name`, `driver`, `label`, `label!`, `dangling`.
pub fn volume(f: &Filters) -> VolumeFilter {
    VolumeFilter {
        names: strings(f, "name"),
        drivers: strings(f, "driver"),
        labels: labels(f),
        dangling: f.get("dangling").iter().map(|d| truthy(d)).collect(),
    }
}

/// `docker network ls`: `driver`, `id`, `name`, `scope`, `type`, `label`, `dangling`.
pub fn network(f: &Filters) -> NetworkFilter {
    NetworkFilter {
        drivers: strings(f, "driver"),
        ids: strings(f, "id"),
        names: strings(f, "name"),
        scopes: strings(f, "scope"),
        builtin: f
            .get("type")
            .iter()
            .map(|t| match t.as_str() {
                "builtin" => Some(true),
                "custom" => Some(false),
                _ => None,
            })
            .collect(),
        labels: label_filters(f, "label"),
        dangling: f
            .get("dangling")
            .iter()
            .map(|d| matches!(d.as_str(), "true" | "1"))
            .collect(),
    }
}

/// `docker container prune` / `network prune`: `label`, `label!`, `until`.
pub fn prune(f: &Filters) -> Result<PruneFilter, ApiError> {
    Ok(PruneFilter {
        labels: labels(f),
        until: until(f)?,
    })
}

/// A prune's `until` filter (Docker's time forms, one value at most) in Unix nanoseconds.
pub fn until(f: &Filters) -> Result<Option<i64>, ApiError> {
    match f.get("until") {
        [] => Ok(None),
        [v] => time(v).map(Some),
        _ => Err(ApiError::bad_request(
            "more than one until filter specified",
        )),
    }
}

/// One time filter value (Docker's forms) in Unix nanoseconds.
pub fn time(v: &str) -> Result<i64, ApiError> {
    crate::filters::timestamp(v, chrono::Utc::now()).ok_or_else(|| {
        ApiError::bad_request(format!("failed to parse value as time or duration: {v:?}"))
    })
}
