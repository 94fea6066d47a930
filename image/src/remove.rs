//! `rmi` and `image prune`, with Docker's untag-versus-delete rules and conflict texts.

use crate::store::{Image, ImageStore};
use crate::ImageError;
use serde::Serialize;

/// What the containers area tells the image store about image use.
pub trait ImageUsage: Send + Sync {
    /// IDs of the containers (running or not) created from image `image_id` (`sha256:...`).
    fn containers_using(&self, image_id: &str) -> Vec<String>;
    /// Whether container `id` is running (a running container's image cannot be removed even
    /// with force). The default treats every container as stopped.
    fn is_running(&self, _container_id: &str) -> bool {
        false
    }
}

/// No containers at all (tests, tools).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoContainers;

impl ImageUsage for NoContainers {
    fn containers_using(&self, _: &str) -> Vec<String> {
        Vec::new()
    }
}

/// One line of an `rmi` or prune answer (Docker's ImageDeleteResponseItem).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DeleteItem {
    /// A tag was removed (`busybox:latest`).
    Untagged(String),
    /// An image or layer was removed (`sha256:...`).
    Deleted(String),
}

/// What a prune did.
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    /// Untagged and deleted entries.
    pub deleted: Vec<DeleteItem>,
    /// Bytes freed (sizes of removed layers).
    pub reclaimed: u64,
}

fn short(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

/// A refusal to delete (`hard` ones cannot be forced).
struct Conflict {
    hard: bool,
    used: bool,
    message: String,
}

impl Conflict {
    fn error(&self, id: &str) -> ImageError {
        let how = if self.hard {
            "cannot be forced"
        } else {
            "must be forced"
        };
        ImageError::Conflict(format!(
            "conflict: unable to delete {} ({how}) - {}",
            short(id),
            self.message
        ))
    }
}

const HARD: u8 = 1;
const SOFT_REFS: u8 = 2;
const SOFT_STOPPED: u8 = 4;

/// Whether every tag is in one repository and there is at most one tag.
fn single_reference(tags: &[String]) -> bool {
    match tags {
        [] => false,
        [_] => true,
        _ => false,
    }
}

impl ImageStore {
    fn conflict(&self, img: &Image, mask: u8, usage: &dyn ImageUsage) -> Option<Conflict> {
        if mask & HARD != 0 && !self.children(&img.id).is_empty() {
            return Some(Conflict {
                hard: true,
                used: false,
                message: "image has dependent child images".into(),
            });
        }
        let users = usage.containers_using(&img.id);
        if mask & HARD != 0 {
            if let Some(c) = users.iter().find(|c| usage.is_running(c)) {
                return Some(Conflict {
                    hard: true,
                    used: true,
                    message: format!("image is being used by running container {}", short(c)),
                });
            }
        }
        if mask & SOFT_REFS != 0 && !self.tags.of(&img.id).is_empty() {
            return Some(Conflict {
                hard: false,
                used: false,
                message: "image is referenced in multiple repositories".into(),
            });
        }
        if mask & SOFT_STOPPED != 0 {
            if let Some(c) = users.first() {
                return Some(Conflict {
                    hard: false,
                    used: true,
                    message: format!("image is being used by stopped container {}", short(c)),
                });
            }
        }
        None
    }

    /// `docker rmi NAME`: removes the tag `name` names, and the image itself when nothing
    /// else refers to it (or `force`). `prune` also removes untagged parents.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        prune: bool,
        usage: &dyn ImageUsage,
    ) -> Result<Vec<DeleteItem>, ImageError> {
        let img = self.resolve(name)?;
        let mut out = Vec::new();
        let hex = img.id.trim_start_matches("sha256:");
        let by_id = hex.starts_with(name.trim_start_matches("sha256:"))
            && (name.starts_with("sha256:") || !name.contains(':'))
            && self.is_tag(name).is_none();
        let mut quiet = false;
        if !by_id {
            if !force && single_reference(&img.repo_tags) {
                if let Some(c) = usage.containers_using(&img.id).first() {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                        short(c),
                        short(&img.id)
                    )));
                }
            }
            let key = self
                .is_tag(name)
                .ok_or_else(|| ImageError::NotFound(name.to_string()))?;
            self.untag(&key)?;
            out.push(DeleteItem::Untagged(key));
            if !self.tags.of(&img.id).is_empty() {
                return Ok(out);
            }
            quiet = true;
        } else if single_reference(&img.repo_tags) {
            let mask = if force { HARD } else { HARD | SOFT_STOPPED };
            if let Some(c) = self.conflict(&img, mask, usage) {
                return Err(c.error(&img.id));
            }
            for t in &img.repo_tags {
                self.untag(t)?;
                out.push(DeleteItem::Untagged(t.clone()));
            }
        }
        self.delete_helper(&img.id, &mut out, force, prune, quiet, usage)?;
        Ok(out)
    }

    fn delete_helper(
        &self,
        id: &str,
        out: &mut Vec<DeleteItem>,
        force: bool,
        prune: bool,
        quiet: bool,
        usage: &dyn ImageUsage,
    ) -> Result<(), ImageError> {
        let img = self.get(id)?;
        let mask = if force {
            HARD
        } else {
            HARD | SOFT_REFS | SOFT_STOPPED
        };
        if let Some(c) = self.conflict(&img, mask, usage) {
            let dangling = img.repo_tags.is_empty() && self.children(id).is_empty();
            if quiet && (!dangling || c.used) {
                return Ok(());
            }
            return Err(c.error(id));
        }
        for t in self.tags.of(id) {
            self.untag(&t)?;
            out.push(DeleteItem::Untagged(t));
        }
        let removed = self.delete_record(id)?;
        out.push(DeleteItem::Deleted(id.to_string()));
        out.extend(removed.into_iter().map(DeleteItem::Deleted));
        if prune && !img.parent.is_empty() && self.get(&img.parent).is_ok() {
            return self.delete_helper(&img.parent, out, false, prune, true, usage);
        }
        Ok(())
    }

    /// `docker image prune`: removes dangling images (`all`: tagged ones too) whose labels
    /// satisfy `labels` (`k`, `k=v`, `label!=...` as `!k=v`) and created before `until` (unix
    /// seconds). As Docker's, `all` removes a tagged image's tags one by one (in order) under
    /// `rmi`'s rules: an image a container uses loses every tag but its last.
    pub fn prune(
        &self,
        all: bool,
        labels: &[String],
        until: Option<i64>,
        usage: &dyn ImageUsage,
    ) -> Result<PruneReport, ImageError> {
        let sizes: std::collections::BTreeMap<String, u64> = self
            .layer_chains()
            .into_iter()
            .filter_map(|c| self.layer(&c).map(|l| (c, l.size)))
            .collect();
        let mut report = PruneReport::default();
        for img in self.list() {
            if img.repo_tags.is_empty() && !self.children(&img.id).is_empty() {
                continue;
            }
            if until.is_some_and(|u| img.created_unix() > u) {
                continue;
            }
            if !crate::list::labels_match(&img.labels(), labels) {
                continue;
            }
            if self.get(&img.id).is_err() {
                continue;
            }
            let res = if img.repo_tags.is_empty() {
                if !usage.containers_using(&img.id).is_empty() {
                    continue;
                }
                self.remove(&img.id, false, true, usage)
            } else if all {
                let mut acc = Vec::new();
                let mut tags = img.repo_tags.clone();
                tags.sort();
                for t in &tags {
                    match self.remove(t, false, true, usage) {
                        Ok(v) => acc.extend(v),
                        Err(e) => tracing::debug!("prune: {t}: {e}"),
                    }
                }
                Ok(acc)
            } else {
                continue;
            };
            match res {
                Ok(v) => report.deleted.extend(v),
                Err(e) => tracing::debug!("prune: {}: {e}", img.id),
            }
        }
        for d in &report.deleted {
            if let DeleteItem::Deleted(c) = d {
                report.reclaimed += sizes.get(c).copied().unwrap_or(0);
            }
        }
        Ok(report)
    }
}
