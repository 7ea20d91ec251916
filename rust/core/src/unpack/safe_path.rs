//! Normalising entry names into paths that can only name something inside the root.
//!
//! The string form never decides where a file lands: `root.rs` resolves it component by
//! component inside the root. This module only refuses what no well-formed layer contains.

/// A normalised path relative to the root: `/`-separated components, none of them empty, `.`
/// or `..`. The empty path is the root itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RelPath(Vec<u8>);

/// Why an entry name was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum PathError {
    DotDot,
    Nul,
}

impl PathError {
    pub fn reason(&self) -> &'static str {
        match self {
            PathError::DotDot => "path contains a '..' component",
            PathError::Nul => "path contains a NUL byte",
        }
    }
}

impl RelPath {
    /// Normalises a tar name: leading `/` and `./` are dropped (absolute names are relative to
    /// the root, as in containerd), empty and `.` components vanish, `..` is refused.
    pub fn parse(raw: &[u8]) -> Result<RelPath, PathError> {
        if raw.contains(&0) {
            return Err(PathError::Nul);
        }
        let mut out = Vec::with_capacity(raw.len());
        for component in raw.split(|&b| b == b'/') {
            match component {
                b"" | b"." => {}
                b".." => return Err(PathError::DotDot),
                name => {
                    if !out.is_empty() {
                        out.push(b'/');
                    }
                    out.extend_from_slice(name);
                }
            }
        }
        Ok(RelPath(out))
    }

    /// The root itself.
    #[cfg(test)]
    pub fn root() -> RelPath {
        RelPath(Vec::new())
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The parent's path and the last component (empty for the root).
    pub fn split_last(&self) -> (&[u8], &[u8]) {
        match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => (&self.0[..i], &self.0[i + 1..]),
            None => (&[], &self.0),
        }
    }

    /// `self/name` (`name` must be one component).
    pub fn join(&self, name: &[u8]) -> RelPath {
        let mut out = Vec::with_capacity(self.0.len() + 1 + name.len());
        out.extend_from_slice(&self.0);
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(name);
        RelPath(out)
    }

    /// Every proper ancestor, nearest first (`a/b/c` → `a/b`, `a`; the root excluded).
    pub fn ancestors(&self) -> impl Iterator<Item = &[u8]> {
        let bytes = &self.0;
        bytes
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, &b)| b == b'/')
            .map(move |(i, _)| &bytes[..i])
    }

    pub fn display(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

/// The components of a normalised path (none for the root).
pub fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> Result<String, PathError> {
        RelPath::parse(raw.as_bytes()).map(|p| p.display())
    }

    #[test]
    fn normalises_dots_slashes_and_absolute_names() {
        assert_eq!(norm("./usr//bin/./env").unwrap(), "usr/bin/env");
        assert_eq!(norm("/etc/passwd").unwrap(), "etc/passwd");
        assert_eq!(norm("dir/").unwrap(), "dir");
        for root in ["", ".", "/", "./", "//./."] {
            assert!(
                RelPath::parse(root.as_bytes()).unwrap().is_root(),
                "{root:?}"
            );
        }
    }

    #[test]
    fn refuses_dotdot_anywhere_and_nul() {
        for bad in ["..", "../x", "a/../b", "a/..", "/../../etc", "a/b/../../.."] {
            assert_eq!(norm(bad), Err(PathError::DotDot), "{bad}");
        }
        assert_eq!(RelPath::parse(b"a\0b"), Err(PathError::Nul));
        // Names that merely contain dots are ordinary.
        assert_eq!(norm("...").unwrap(), "...");
        assert_eq!(norm("..a/b..").unwrap(), "..a/b..");
    }

    #[test]
    fn split_join_and_ancestors() {
        let p = RelPath::parse(b"a/b/c").unwrap();
        assert_eq!(p.split_last(), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(
            RelPath::parse(b"top").unwrap().split_last(),
            (&b""[..], &b"top"[..])
        );
        let ancestors: Vec<&[u8]> = p.ancestors().collect();
        assert_eq!(ancestors, vec![&b"a/b"[..], &b"a"[..]]);
        assert_eq!(RelPath::root().join(b"x").as_bytes(), b"x");
        assert_eq!(p.join(b"d").as_bytes(), b"a/b/c/d");
        assert_eq!(components(b"a/b").count(), 2);
        assert_eq!(components(b"").count(), 0);
    }
}
