//! `images` listing with Docker's filters (`dangling`, `label`, `reference`, `before`,
//! `since`, `until`), `history`, and the numbers behind `system df`.

use crate::store::{Image, ImageStore};
use crate::tags::repo_of;
use crate::ImageError;
use std::collections::{BTreeMap, BTreeSet};

/// Filters for [`ImageStore::list_filtered`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Show intermediate images (untagged parents of other images) too.
    pub all: bool,
    /// `dangling=true|false`.
    pub dangling: Option<bool>,
    /// `label=k` / `label=k=v`.
    pub labels: Vec<String>,
    /// `reference=pattern` (Go `path.Match` globs on `name:tag` or `name`).
    pub references: Vec<String>,
    /// `before=image`.
    pub before: Option<String>,
    /// `since=image`.
    pub since: Option<String>,
    /// `until=<unix seconds>`.
    pub until: Option<i64>,
}

/// One `history` row (newest first), as Docker's HistoryResponseItem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryItem {
    /// Image ID for rows that are an image of the chain, else `<missing>`.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// The command that made the step.
    pub created_by: String,
    /// Tags of that image.
    pub tags: Vec<String>,
    /// Size of the step's layer (0 for empty layers).
    pub size: u64,
    /// The step's comment.
    pub comment: String,
}

/// Go's `path.Match` for `*`, `?`, `[...]` and `\` escapes (`*` does not cross `/`).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        let mut i = 1;
        let negate = p.get(i) == Some(&'^');
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while i < p.len() && (p[i] != ']' || first) {
            first = false;
            let lo = p[i];
            if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                matched |= lo <= c && c <= p[i + 2];
                i += 3;
            } else {
                matched |= lo == c;
                i += 1;
            }
        }
        (i < p.len()).then_some((matched != negate, i + 1))
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len())
                .take_while(|&k| k == 0 || n[k - 1] != '/')
                .any(|k| go(&p[1..], &n[k..])),
            Some('?') => n.first().is_some_and(|&c| c != '/') && go(&p[1..], &n[1..]),
            Some('[') => match (n.first(), class(p, n.first().copied().unwrap_or('\0'))) {
                (Some(&c), Some((true, used))) if c != '/' => go(&p[used..], &n[1..]),
                _ => false,
            },
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// Whether a tag key (`busybox:latest`) matches a `reference` filter pattern.
pub fn reference_matches(pattern: &str, key: &str) -> bool {
    glob_match(pattern, key) || glob_match(pattern, &repo_of(key))
}

/// Whether `labels` satisfy every `k` / `k=v` / `!k=v`... filter (all must hold).
pub fn labels_match(labels: &BTreeMap<String, String>, filters: &[String]) -> bool {
    filters.iter().all(|f| {
        if let Some(neg) = f.strip_prefix('!') {
            return !labels_match(labels, &[neg.to_string()]);
        }
        match f.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(f.as_str()),
        }
    })
}

impl ImageStore {
    /// Images as `GET /images/json` shows them; with a `reference` filter only the matching
    /// tags are kept in `repo_tags`. Newest first.
    pub fn list_filtered(&self, f: &ListFilter) -> Result<Vec<Image>, ImageError> {
        let before = f
            .before
            .as_deref()
            .map(|n| self.resolve(n).map(|i| i.created_nanos()))
            .transpose()?;
        let since = f
            .since
            .as_deref()
            .map(|n| self.resolve(n).map(|i| i.created_nanos()))
            .transpose()?;
        let all = self.list();
        let parents: BTreeSet<String> = all.iter().map(|i| i.parent.clone()).collect();
        let mut out = Vec::new();
        for mut img in all {
            let created = img.created_nanos();
            if before.is_some_and(|b| created >= b) || since.is_some_and(|s| created <= s) {
                continue;
            }
            if f.until.is_some_and(|u| img.created_unix() > u) {
                continue;
            }
            if !labels_match(&img.labels(), &f.labels) {
                continue;
            }
            let untagged = img.repo_tags.is_empty() && img.repo_digests.is_empty();
            if !f.references.is_empty() {
                img.repo_tags
                    .retain(|t| f.references.iter().any(|p| reference_matches(p, t)));
                img.repo_digests
                    .retain(|t| f.references.iter().any(|p| reference_matches(p, t)));
                if img.repo_tags.is_empty() && img.repo_digests.is_empty() {
                    continue;
                }
            }
            if untagged {
                if !f.all && parents.contains(&img.id) {
                    continue;
                }
                if f.dangling == Some(false) {
                    continue;
                }
            } else if f.dangling == Some(true) && !img.repo_tags.is_empty() {
                continue;
            }
            out.push(img);
        }
        out.sort_by(|a, b| {
            b.created_nanos()
                .cmp(&a.created_nanos())
                .then(a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// `docker history`: one row per config history entry, newest first; rows of layers that
    /// belong to parent images carry those images' IDs, the others `<missing>`.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>, ImageError> {
        let img = self.resolve(name)?;
        let empty = Vec::new();
        let entries = img
            .config
            .get("history")
            .and_then(|h| h.as_array())
            .unwrap_or(&empty);
        let chains = img.chain_ids();
        let mut layer = 0;
        let mut rows = Vec::new();
        for h in entries {
            let mut size = 0;
            if !h
                .get("empty_layer")
                .and_then(|v| v.as_bool())
                .unwrap_or(false)
            {
                let chain = chains.get(layer).ok_or_else(|| {
                    ImageError::Invalid("too many non-empty layers in History section".into())
                })?;
                size = self.layer(chain).map(|l| l.size).unwrap_or(0);
                layer += 1;
            }
            let text = |k: &str| h.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            rows.push(HistoryItem {
                id: "<missing>".into(),
                created: chrono::DateTime::parse_from_rfc3339(&text("created"))
                    .map(|t| t.timestamp())
                    .unwrap_or(0),
                created_by: text("created_by"),
                tags: Vec::new(),
                size,
                comment: text("comment"),
            });
        }
        rows.reverse();
        // Fill in the IDs of the image and its ancestors, top down.
        let mut cur = Some(img);
        for row in rows.iter_mut() {
            let Some(i) = cur.take() else { break };
            row.id = i.id.clone();
            row.tags = i.repo_tags.clone();
            if !i.parent.is_empty() {
                cur = self.get(&i.parent).ok();
            }
        }
        Ok(rows)
    }

    /// `system df`: the total size of all layers, and per image the size it shares with
    /// other images (layers used by more than one image).
    pub fn disk_usage(&self) -> (u64, Vec<(Image, u64)>) {
        let images = self.list();
        let mut uses: BTreeMap<String, usize> = BTreeMap::new();
        for i in &images {
            for c in i.chain_ids() {
                *uses.entry(c).or_default() += 1;
            }
        }
        let size_of = |c: &str| self.layer(c).map(|l| l.size).unwrap_or(0);
        let total = uses.keys().map(|c| size_of(c)).sum();
        let out = images
            .into_iter()
            .map(|i| {
                let shared = i
                    .chain_ids()
                    .iter()
                    .filter(|c| uses.get(*c).copied().unwrap_or(0) > 1)
                    .map(|c| size_of(c))
                    .sum();
                (i, shared)
            })
            .collect();
        (total, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_go() {
        assert!(glob_match("busy*", "busybox"));
        assert!(!glob_match("busy*", "a/busybox"));
        assert!(glob_match("*/app:*", "127.0.0.1:5000/app:1"));
        assert!(glob_match("b?sybox:[a-m]*", "busybox:latest"));
        assert!(!glob_match("b?sybox:[^a-m]*", "busybox:latest"));
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(!reference_matches("busy", "busybox:latest"));
    }

    #[test]
    fn label_filters() {
        let mut l = BTreeMap::new();
        l.insert("a".to_string(), "1".to_string());
        assert!(labels_match(&l, &["a".into(), "a=1".into()]));
        assert!(!labels_match(&l, &["a=2".into()]));
        assert!(!labels_match(&l, &["b".into()]));
        assert!(labels_match(&l, &["!a=2".into()]));
    }
}
