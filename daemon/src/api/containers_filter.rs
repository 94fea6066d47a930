//! Docker's `GET /containers/json` filters: id, name (Docker's regexp subset: `^`/`$`
//! anchors around a literal, matched against `/name`), status, exited, ancestor, label,
//! before, since, volume, network, health and is-task (accepted; berth runs no swarm
//! tasks), with moby's refusals of unknown keys and bad values.

use crate::containers::{Container, ContainerRecord};
use crate::server::http::{ApiError, Filters};
use crate::state::Ctx;

const KEYS: &[&str] = &[
    "id", "name", "status", "exited", "ancestor", "label", "before", "since", "volume", "network",
    "health", "is-task",
];
const STATES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];
const HEALTH: &[&str] = &["starting", "healthy", "unhealthy", "none"];

/// Filters checked and resolved against the containers they name.
pub struct PsFilter {
    f: Filters,
    /// `Created` of the `before` container.
    before: Option<String>,
    /// `Created` of the `since` container.
    since: Option<String>,
}

impl PsFilter {
    /// Checks `f` as moby does and resolves `before`/`since`.
    pub fn new(ctx: &Ctx, f: Filters) -> Result<PsFilter, ApiError> {
        f.only(KEYS)?;
        for v in f.get("status") {
            if !STATES.contains(&v.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "invalid filter 'status={v}'"
                )));
            }
        }
        for v in f.get("exited") {
            if v.parse::<i64>().is_err() {
                return Err(ApiError::bad_request(format!(
                    "invalid filter 'exited={v}'"
                )));
            }
        }
        for v in f.get("health") {
            if !HEALTH.contains(&v.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "Unrecognised filter value for health: {v}"
                )));
            }
        }
        let created = |k: &str| -> Result<Option<String>, ApiError> {
            match f.get(k).last() {
                Some(v) => Ok(Some(ctx.containers.get(v)?.view(|r| r.created.clone()))),
                None => Ok(None),
            }
        };
        Ok(PsFilter {
            before: created("before")?,
            since: created("since")?,
            f,
        })
    }

    /// Whether a status filter asks for stopped containers too (moby sets `all`).
    pub fn wants_all(&self) -> bool {
        !self.f.get("status").is_empty()
    }

    /// Whether `c` passes every filter.
    pub fn matches(&self, c: &Container) -> bool {
        c.view(|r| self.matches_record(&c.id, r))
    }

    fn matches_record(&self, id: &str, r: &ContainerRecord) -> bool {
        let f = &self.f;
        let name = format!("/{}", r.short_name());
        let status = r.state.status();
        let any = |k: &str, pred: &dyn Fn(&str) -> bool| {
            f.get(k).is_empty() || f.get(k).iter().any(|v| pred(v))
        };
        let none = Default::default();
        let labels = r.config.labels.as_ref().unwrap_or(&none);
        let created = r.created.as_str();
        let health = r
            .state
            .health
            .as_ref()
            .map_or(berth_api::types::health::NONE, |h| h.status.as_str());
        any("id", &|v| id.starts_with(v))
            && any("name", &|v| name_matches(v, &name))
            && any("status", &|v| v == status)
            && any("exited", &|v| {
                status == "exited" && r.state.exit_code.to_string() == v
            })
            && any("ancestor", &|v| r.config.image == v || r.image.contains(v))
            && super::filters::labels(f).matches(|k| labels.get(k).map(String::as_str))
            && self.before.as_deref().is_none_or(|b| created < b)
            && self.since.as_deref().is_none_or(|s| created > s)
            && any("volume", &|v| {
                r.mounts
                    .iter()
                    .any(|m| [&m.name, &m.destination, &m.source].iter().any(|x| *x == v))
            })
            && any("network", &|v| {
                r.network_settings
                    .networks
                    .iter()
                    .any(|(n, ep)| n == v || (!v.is_empty() && ep.network_id.starts_with(v)))
            })
            && any("health", &|v| v == health)
            && any("is-task", &|v| v != "true")
    }
}

/// Docker's name filter is a regexp over `/name`; this covers literals with `^`/`$` anchors.
fn name_matches(pattern: &str, name: &str) -> bool {
    let (start, p) = match pattern.strip_prefix('^') {
        Some(p) => (true, p),
        None => (false, pattern),
    };
    let (end, p) = match p.strip_suffix('$') {
        Some(p) => (true, p),
        None => (false, p),
    };
    match (start, end) {
        (true, true) => name == p,
        (true, false) => name.starts_with(p),
        (false, true) => name.ends_with(p),
        (false, false) => name.contains(p),
    }
}

#[cfg(test)]
mod tests {
    use super::name_matches;

    #[test]
    fn names_as_docker_regexps() {
        assert!(name_matches("sl", "/sl"));
        assert!(name_matches("^/sl$", "/sl"));
        assert!(!name_matches("^/sl$", "/sl2"));
        assert!(name_matches("l2$", "/sl2"));
        assert!(!name_matches("^sl", "/sl"), "the name starts with /");
    }
}
