//! Registry mirrors: where a pull looks before the registry an image is named after. Docker's
//! `registry-mirrors` (URLs) are tried for Docker Hub images; berth's `registry-mirror-map`
//! (`{"registry.k8s.io": ["http://127.0.0.1:5000"]}`, like containerd's `hosts.toml` or CRI-O's
//! `registries.conf`) names mirrors for any registry, so a node can take `registry.k8s.io/…`
//! or `gcr.io/…` from a local registry. A mirror holds the same repository paths; the image
//! is recorded under its own name, and the named registry is tried last.

use crate::config::Config;
use berth_core::reference::Reference;

/// `http://host:port/` → `host:port` (a mirror is a registry host; a path is not used).
fn host(entry: &str) -> Option<String> {
    let rest = entry
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let h = rest.split('/').next().unwrap_or("");
    (!h.is_empty()).then(|| h.to_string())
}

/// Where to fetch `r` from, in order: its registry's mirrors, then the registry itself.
pub fn sources(cfg: &Config, r: &Reference) -> Vec<Reference> {
    let mut entries: Vec<&String> = Vec::new();
    if r.domain == "docker.io" {
        entries.extend(&cfg.registry_mirrors);
    }
    if let Some(list) = cfg.registry_mirror_map.get(&r.domain) {
        entries.extend(list);
    }
    let mut out: Vec<Reference> = Vec::new();
    for h in entries.iter().filter_map(|e| host(e)) {
        if h != r.domain && !out.iter().any(|o| o.domain == h) {
            out.push(Reference {
                domain: h,
                ..r.clone()
            });
        }
    }
    out.push(r.clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_come_first_and_keep_the_path() {
        assert_eq!(
            host("http://127.0.0.1:5000/"),
            Some("127.0.0.1:5000".into())
        );
        assert_eq!(host("https://m.example/v2"), Some("m.example".into()));
        assert_eq!(host(" "), None);
        let r = Reference::parse("registry.k8s.io/e2e-test-images/busybox:1.29-2").expect("ref");
        let s: Vec<String> = [
            Reference {
                domain: "127.0.0.1:5000".into(),
                ..r.clone()
            },
            r.clone(),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        assert_eq!(s[0], "127.0.0.1:5000/e2e-test-images/busybox:1.29-2");
        assert_eq!(s[1], "registry.k8s.io/e2e-test-images/busybox:1.29-2");
    }
}
