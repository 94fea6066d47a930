//! `docker network ls` and `docker network prune` filters as predicates over the store's
//! typed records.

use super::PREDEFINED;
use crate::filters::{LabelFilter, PruneFilter};
use crate::model::network::NetworkRecord;

/// `docker network ls` filters, parsed. Each field is one filter: empty passes everything,
/// otherwise a network passes when any of its values matches.
#[derive(Debug, Clone, Default)]
pub struct NetworkFilter {
    /// `driver`: the driver's name.
    pub drivers: Vec<String>,
    /// `id`: ID prefixes.
    pub ids: Vec<String>,
    /// `name`: substrings of the name.
    pub names: Vec<String>,
    /// `scope` (only `local` matches).
    pub scopes: Vec<String>,
    /// `type`: `Some(true)` builtin, `Some(false)` custom, `None` a value that matches nothing.
    pub builtin: Vec<Option<bool>>,
    /// `label`: `key` or `key=value`.
    pub labels: Vec<LabelFilter>,
    /// `dangling`.
    pub dangling: Vec<bool>,
}

impl NetworkFilter {
    /// Whether `rec` passes; `dangling`: no container is attached to it.
    pub fn matches(&self, rec: &NetworkRecord, dangling: bool) -> bool {
        fn any<T>(vals: &[T], test: impl Fn(&T) -> bool) -> bool {
            vals.is_empty() || vals.iter().any(test)
        }
        let predefined = PREDEFINED.contains(&rec.name.as_str());
        let label = |k: &str| rec.labels.get(k).map(String::as_str);
        any(&self.drivers, |v| rec.driver == *v)
            && any(&self.ids, |v| rec.id.starts_with(v.as_str()))
            && any(&self.names, |v| rec.name.contains(v.as_str()))
            && any(&self.scopes, |v| v == "local")
            && any(&self.builtin, |v| *v == Some(predefined))
            && any(&self.labels, |l| l.matches(label))
            && any(&self.dangling, |want| match want {
                true => dangling && !predefined,
                false => !dangling || predefined,
            })
    }
}

/// Whether `rec` may be pruned by `docker network prune`'s filters `f` (in use or predefined
/// is the caller's).
pub fn prunable(f: &PruneFilter, rec: &NetworkRecord) -> bool {
    f.matches(|k| rec.labels.get(k).map(String::as_str), &rec.created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::Labels;

    fn net(name: &str, driver: &str) -> NetworkRecord {
        let mut r = super::super::record("ab12", name, driver);
        r.labels.insert("team".into(), "a".into());
        r
    }

    #[test]
    fn each_filter_is_an_alternative_and_all_must_hold() {
        let user = net("web-net", "bridge");
        let f = NetworkFilter {
            names: vec!["web".into(), "zzz".into()],
            ids: vec!["ab".into()],
            labels: vec![LabelFilter::parse("team=a")],
            ..Default::default()
        };
        assert!(f.matches(&user, false));
        let f = NetworkFilter {
            drivers: vec!["macvlan".into()],
            ..Default::default()
        };
        assert!(!f.matches(&user, false));
        let custom = NetworkFilter {
            builtin: vec![Some(false)],
            dangling: vec![true],
            ..Default::default()
        };
        assert!(custom.matches(&user, true));
        assert!(!custom.matches(&net("bridge", "bridge"), true));
        assert!(!custom.matches(&user, false));
    }

    #[test]
    fn prune_takes_labels_and_until() {
        let mut old = net("old", "bridge");
        old.created = "2026-01-01T00:00:00.5Z".into();
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .and_then(|t| t.timestamp_nanos_opt())
        };
        let f = |until: &str, label: &str| PruneFilter {
            labels: Labels {
                with: vec![LabelFilter::parse(label)],
                without: Vec::new(),
            },
            until: at(until),
        };
        assert!(prunable(&f("2026-01-01T00:00:00.5Z", "team"), &old));
        assert!(!prunable(&f("2026-01-01T00:00:00Z", "team"), &old));
        assert!(!prunable(&f("2026-02-01T00:00:00Z", "team=b"), &old));
        assert!(prunable(&PruneFilter::default(), &old));
    }
}
