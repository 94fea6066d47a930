//! List filters as typed predicates: the HTTP side (`api/filters.rs`) parses Docker's
//! `filters` query parameter into these, and the domain applies them to its records without
//! ever seeing the query's JSON. The one label test (`key` present, or `key=value`) lives here
//! for every area.

/// One `label` filter value: `key` (present with any value) or `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    pub key: String,
    pub value: Option<String>,
}

impl LabelFilter {
    /// Parses `key` or `key=value`.
    pub fn parse(s: &str) -> LabelFilter {
        match s.split_once('=') {
            Some((k, v)) => LabelFilter {
                key: k.to_string(),
                value: Some(v.to_string()),
            },
            None => LabelFilter {
                key: s.to_string(),
                value: None,
            },
        }
    }

    /// Whether the labels `get` looks up carry this one (`get(key)`: the label's value).
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        match (&self.value, get(&self.key)) {
            (None, found) => found.is_some(),
            (Some(want), found) => found == Some(want.as_str()),
        }
    }
}

/// The `label` (all must match) and `label!` (none may match) filters of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    pub with: Vec<LabelFilter>,
    pub without: Vec<LabelFilter>,
}

impl Labels {
    /// Whether labels looked up by `get` pass.
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str> + Copy) -> bool {
        self.with.iter().all(|l| l.matches(get)) && !self.without.iter().any(|l| l.matches(get))
    }
}

/// A Docker boolean filter value: anything but `0` and `false` (any case) is true.
pub fn truthy(v: &str) -> bool {
    !matches!(v.to_ascii_lowercase().as_str(), "0" | "false")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn labels_match_like_docker() {
        let mut m = BTreeMap::new();
        m.insert("app".to_string(), "web".to_string());
        m.insert("tier".to_string(), String::new());
        let get = |k: &str| m.get(k).map(String::as_str);
        let f = |with: &[&str], without: &[&str]| Labels {
            with: with.iter().map(|s| LabelFilter::parse(s)).collect(),
            without: without.iter().map(|s| LabelFilter::parse(s)).collect(),
        };
        assert!(f(&[], &[]).matches(get));
        assert!(f(&["app"], &[]).matches(get));
        assert!(f(&["app=web", "tier="], &[]).matches(get));
        assert!(!f(&["app=db"], &[]).matches(get));
        assert!(!f(&["app", "zone"], &[]).matches(get));
        assert!(f(&[], &["app=db", "zone"]).matches(get));
        assert!(!f(&[], &["app"]).matches(get));
        assert!(!f(&[], &["app=web"]).matches(get));
        assert!(truthy("1") && truthy("TRUE") && truthy("yes"));
        assert!(!truthy("0") && !truthy("False"));
    }
}
