//! The file bodies of a layer being recorded that are still to be read back from the
//! unpacked folder, by path, and which of them a later entry of the same tar would change
//! on unpack: the same path written again, a folder above it replaced by something else (or
//! by a folder where it was a file), a whiteout or opaque marker over it. Those bodies must be
//! read back before that entry is applied and kept inline.

use std::collections::BTreeMap;

/// A body to read back: its record number, size and checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyRef {
    pub ordinal: u64,
    pub size: u64,
    pub sum: u64,
}

/// The bodies still expected in the unpacked folder, by cleaned relative path.
#[derive(Default)]
pub(crate) struct Live {
    refs: BTreeMap<Vec<u8>, BodyRef>,
}

impl Live {
    /// Notes that the body of `path` will be read back from the unpacked folder.
    pub(crate) fn insert(&mut self, path: Vec<u8>, r: BodyRef) {
        self.refs.insert(path, r);
    }

    /// Takes out the bodies an entry at `path` changes when it is applied: the entry's own
    /// path and the files above it always; what lies below it too unless the entry is a
    /// folder (`below` false: a folder entry over an existing folder keeps its content).
    /// Whiteouts pass the path they hide, opaque markers their folder, both with `below`.
    pub(crate) fn take_at_risk(&mut self, path: &[u8], below: bool) -> Vec<(Vec<u8>, BodyRef)> {
        let mut out = Vec::new();
        for (i, b) in path.iter().enumerate() {
            if *b == b'/' {
                if let Some(r) = self.refs.remove(&path[..i]) {
                    out.push((path[..i].to_vec(), r));
                }
            }
        }
        if let Some(r) = self.refs.remove(path) {
            out.push((path.to_vec(), r));
        }
        if below {
            let mut lo = path.to_vec();
            lo.push(b'/');
            let mut hi = path.to_vec();
            hi.push(b'/' + 1);
            let keys: Vec<Vec<u8>> = self.refs.range(lo..hi).map(|(k, _)| k.clone()).collect();
            for k in keys {
                if let Some(r) = self.refs.remove(&k) {
                    out.push((k, r));
                }
            }
        }
        out.sort_by_key(|(_, r)| r.ordinal);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(o: u64) -> BodyRef {
        BodyRef {
            ordinal: o,
            size: 1,
            sum: 0,
        }
    }

    #[test]
    fn finds_same_path_parents_and_children() {
        let mut l = Live::default();
        for (i, p) in ["a", "a/b", "a/b/c", "a/bc", "ab", "x/y"]
            .iter()
            .enumerate()
        {
            l.insert(p.as_bytes().to_vec(), r(i as u64));
        }
        let names = |v: Vec<(Vec<u8>, BodyRef)>| -> Vec<String> {
            v.into_iter()
                .map(|(k, _)| String::from_utf8(k).expect("utf8"))
                .collect()
        };
        // A folder entry at a/b: a (a file above) and a/b (a file replaced by the folder).
        assert_eq!(names(l.take_at_risk(b"a/b", false)), ["a", "a/b"]);
        // A file at x replaces the folder x and all below it.
        assert_eq!(names(l.take_at_risk(b"x", true)), ["x/y"]);
        assert_eq!(names(l.take_at_risk(b"a/b", true)), ["a/b/c"]);
        assert_eq!(names(l.take_at_risk(b"zz", true)), Vec::<String>::new());
        assert_eq!(names(l.take_at_risk(b"ab", true)), ["ab"]);
        assert_eq!(names(l.take_at_risk(b"a", true)), ["a/bc"]);
    }
}
