//! OCI whiteouts (image-spec `layer.md`): `.wh.<name>` deletes `<name>` from lower layers,
//! `.wh..wh..opq` hides every lower child of its directory. A whiteout never hides what its
//! own layer wrote, wherever the marker sits in the tar, so the layer's paths are remembered.

use std::collections::HashSet;

use super::safe_path::RelPath;

pub const PREFIX: &[u8] = b".wh.";
pub const OPAQUE: &[u8] = b".wh..wh..opq";
/// aufs bookkeeping names (`.wh..wh.plnk`, `.wh..wh.aufs`): never part of the image content.
pub const META_PREFIX: &[u8] = b".wh..wh.";

/// What a tar entry's last component says about whiteouts.
#[derive(Debug, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// An ordinary entry.
    None,
    /// Delete this name (a sibling of the marker) from lower layers.
    Remove(&'a [u8]),
    /// Hide lower-layer children of the marker's directory.
    Opaque,
    /// aufs metadata: skipped.
    Meta,
    /// `.wh.` alone: invalid.
    Bare,
    /// `.wh..` or `.wh...`: would name the directory itself or its parent.
    DotName(&'a [u8]),
}

/// Classifies the last component of an entry's path.
pub fn classify(name: &[u8]) -> Whiteout<'_> {
    if name == OPAQUE {
        return Whiteout::Opaque;
    }
    if name.starts_with(META_PREFIX) {
        return Whiteout::Meta;
    }
    match name.strip_prefix(PREFIX) {
        None => Whiteout::None,
        Some(b"") => Whiteout::Bare,
        Some(target @ (b"." | b"..")) => Whiteout::DotName(target),
        Some(target) => Whiteout::Remove(target),
    }
}

/// The paths the current layer created, with their ancestors.
#[derive(Default)]
pub struct LayerPaths {
    paths: HashSet<Vec<u8>>,
}

impl LayerPaths {
    /// Remembers `path` and (implicitly created or not) its ancestors.
    pub fn insert(&mut self, path: &RelPath) {
        if !self.paths.insert(path.as_bytes().to_vec()) {
            return;
        }
        for ancestor in path.ancestors() {
            if !self.paths.insert(ancestor.to_vec()) {
                break;
            }
        }
    }

    pub fn contains(&self, path: &[u8]) -> bool {
        self.paths.contains(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_markers() {
        assert_eq!(classify(b"file"), Whiteout::None);
        assert_eq!(classify(b".whatever"), Whiteout::None);
        assert_eq!(classify(b".wh.file"), Whiteout::Remove(b"file"));
        assert_eq!(classify(b".wh..hidden"), Whiteout::Remove(b".hidden"));
        assert_eq!(classify(b".wh..wh..opq"), Whiteout::Opaque);
        assert_eq!(classify(b".wh..wh.plnk"), Whiteout::Meta);
        assert_eq!(classify(b".wh."), Whiteout::Bare);
        assert_eq!(classify(b".wh.."), Whiteout::DotName(b"."));
        assert_eq!(classify(b".wh..."), Whiteout::DotName(b".."));
    }

    #[test]
    fn layer_paths_include_ancestors() {
        let mut paths = LayerPaths::default();
        paths.insert(&RelPath::parse(b"a/b/c").unwrap());
        assert!(paths.contains(b"a/b/c") && paths.contains(b"a/b") && paths.contains(b"a"));
        assert!(!paths.contains(b"a/b/d"));
        paths.insert(&RelPath::parse(b"a/x").unwrap());
        assert!(paths.contains(b"a/x"));
    }
}
