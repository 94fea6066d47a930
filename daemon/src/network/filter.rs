//! `docker network ls` filters as a predicate over the store's typed records.

use super::PREDEFINED;
use crate::filters::LabelFilter;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
