//! The container index: containers by id (ordered, so an id prefix is found in O(log n)) and
//! names by container (so a name is found, reserved or freed in O(1)), and the containers
//! mounting each volume (so removing a `--rm` container's volumes scans no other container),
//! under one lock.
//!
//! A name is *reserved* for an id before that container exists (create picks and reserves
//! it first, as dockerd's name registrar does), so two creates can never take one name, and
//! a lookup by a name whose container is not inserted yet finds nothing.

use super::Container;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// What a lookup found.
pub enum Found {
    /// One container.
    One(Arc<Container>),
    /// Nothing by that id, name or prefix.
    None,
    /// More than one id starts with the key.
    Ambiguous,
}

/// Containers by id and ids by name.
#[derive(Default)]
pub struct Index {
    by_id: BTreeMap<String, Arc<Container>>,
    /// Name (without its `/`) → the id holding or reserving it.
    by_name: HashMap<String, String>,
    /// Volume name → the ids of the containers whose mounts use it (a record's mounts are
    /// fixed at create).
    by_volume: HashMap<String, BTreeSet<String>>,
}

/// The names of the volumes `c` mounts.
fn volumes(c: &Container) -> Vec<String> {
    c.view(|r| {
        r.mounts
            .iter()
            .filter(|p| p.kind == "volume")
            .map(|p| p.name.clone())
            .collect()
    })
}

impl Index {
    /// Every container, in id order.
    pub fn all(&self) -> Vec<Arc<Container>> {
        self.by_id.values().cloned().collect()
    }

    /// By full id, then name (with or without its `/`), then unique id prefix — dockerd's
    /// order.
    pub fn get(&self, key: &str) -> Found {
        if let Some(c) = self.by_id.get(key) {
            return Found::One(c.clone());
        }
        let name = key.trim_start_matches('/');
        if let Some(c) = self.by_name.get(name).and_then(|id| self.by_id.get(id)) {
            return Found::One(c.clone());
        }
        if key.is_empty() {
            return Found::None;
        }
        let mut from = self
            .by_id
            .range::<str, _>((std::ops::Bound::Included(key), std::ops::Bound::Unbounded))
            .take_while(|(id, _)| id.starts_with(key));
        match (from.next(), from.next()) {
            (Some((_, c)), None) => Found::One(c.clone()),
            (None, _) => Found::None,
            (Some(_), Some(_)) => Found::Ambiguous,
        }
    }

    /// Reserves `name` for `id`; `Err(holder)` when another id holds it.
    pub fn reserve(&mut self, name: &str, id: &str) -> Result<(), String> {
        match self.by_name.get(name) {
            Some(other) if other != id => Err(other.clone()),
            Some(_) => Ok(()),
            None => {
                self.by_name.insert(name.to_string(), id.to_string());
                Ok(())
            }
        }
    }

    /// Frees `name` if `id` holds it.
    pub fn release(&mut self, name: &str, id: &str) {
        if self.by_name.get(name).is_some_and(|h| h == id) {
            self.by_name.remove(name);
        }
    }

    /// Adds a container under its record's name (loaded from disk, or created with the name
    /// reserved).
    pub fn insert(&mut self, c: Arc<Container>) {
        self.by_name.insert(c.name(), c.id.clone());
        for v in volumes(&c) {
            self.by_volume.entry(v).or_default().insert(c.id.clone());
        }
        self.by_id.insert(c.id.clone(), c);
    }

    /// Removes a container and frees its name.
    pub fn remove(&mut self, id: &str) {
        if let Some(c) = self.by_id.remove(id) {
            self.release(&c.name(), id);
            for v in volumes(&c) {
                if let Some(ids) = self.by_volume.get_mut(&v) {
                    ids.remove(id);
                    if ids.is_empty() {
                        self.by_volume.remove(&v);
                    }
                }
            }
        }
    }

    /// The ids of the containers whose mounts use volume `name`.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.by_volume
            .get(name)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::ContainerRecord;

    fn container(id: &str, name: &str) -> Arc<Container> {
        let mut rec = ContainerRecord::default();
        rec.inspect.name = format!("/{name}");
        Container::new(id.to_string(), rec)
    }

    fn found(i: &Index, key: &str) -> Option<String> {
        match i.get(key) {
            Found::One(c) => Some(c.id.clone()),
            Found::None => None,
            Found::Ambiguous => Some("ambiguous".into()),
        }
    }

    #[test]
    fn lookups_by_id_name_and_prefix_as_dockerd() {
        let mut i = Index::default();
        for (id, name) in [("abc1", "web"), ("abc2", "db"), ("abd3", "abc")] {
            i.reserve(name, id).expect("free");
            i.insert(container(id, name));
        }
        assert_eq!(found(&i, "abc1").as_deref(), Some("abc1"));
        // A name wins over an id prefix; with or without its slash.
        assert_eq!(found(&i, "abc").as_deref(), Some("abd3"));
        assert_eq!(found(&i, "/web").as_deref(), Some("abc1"));
        assert_eq!(found(&i, "ab").as_deref(), Some("ambiguous"));
        assert_eq!(found(&i, "abd").as_deref(), Some("abd3"));
        assert_eq!(
            (found(&i, "abe"), found(&i, ""), found(&i, "z")),
            (None, None, None)
        );
    }

    #[test]
    fn names_are_reserved_before_the_container_exists_and_freed_with_it() {
        let mut i = Index::default();
        i.reserve("web", "a1").expect("free");
        // Reserved: another id cannot take it, and no container is found by it yet.
        assert_eq!(i.reserve("web", "b2"), Err("a1".to_string()));
        assert!(i.reserve("web", "a1").is_ok());
        assert_eq!(found(&i, "web"), None);
        i.insert(container("a1", "web"));
        assert_eq!(found(&i, "web").as_deref(), Some("a1"));
        // Only the holder frees it; removal frees it.
        i.release("web", "b2");
        assert!(i.reserve("web", "b2").is_err());
        i.remove("a1");
        assert_eq!(found(&i, "web"), None);
        assert!(i.reserve("web", "b2").is_ok());
    }

    #[test]
    fn volume_users_follow_inserts_and_removals() {
        let with = |id: &str, vols: &[&str]| {
            let c = container(id, id);
            c.update(|r| {
                r.mounts = vols
                    .iter()
                    .map(|v| berth_api::types::container::MountPoint {
                        kind: "volume".into(),
                        name: v.to_string(),
                        ..Default::default()
                    })
                    .collect()
            });
            c
        };
        let mut i = Index::default();
        i.insert(with("a", &["v1", "v2"]));
        i.insert(with("b", &["v1"]));
        assert_eq!(i.volume_users("v1"), ["a", "b"]);
        assert_eq!(i.volume_users("v2"), ["a"]);
        i.remove("a");
        assert_eq!(i.volume_users("v1"), ["b"]);
        assert!(i.volume_users("v2").is_empty());
    }
}
