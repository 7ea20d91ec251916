//! Limits that stop decompression bombs and absurd layers before they fill the disk.

use super::error::{Result, UnpackError};

/// Upper bounds for one layer; `None` means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Uncompressed bytes of the whole tar stream (including padding and trailing data).
    pub max_bytes: Option<u64>,
    /// Tar entries, whiteouts and directories included.
    pub max_entries: Option<u64>,
    /// Size of one file's content.
    pub max_file_size: Option<u64>,
    /// Length in bytes of one entry's path or link target.
    pub max_path_length: Option<u64>,
}

impl UnpackLimits {
    /// Generous defaults: bigger than any real layer, small enough to stop a bomb.
    pub const DEFAULT: UnpackLimits = UnpackLimits {
        max_bytes: Some(64 << 30),
        max_entries: Some(4_000_000),
        max_file_size: Some(32 << 30),
        max_path_length: Some(4096),
    };

    /// No limit at all.
    pub const NONE: UnpackLimits = UnpackLimits {
        max_bytes: None,
        max_entries: None,
        max_file_size: None,
        max_path_length: None,
    };
}

impl Default for UnpackLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Fails with `LayerLimitError` when `actual` exceeds `limit`.
pub(crate) fn check(
    what: &'static str,
    limit: Option<u64>,
    actual: u64,
    entry: Option<&str>,
) -> Result<()> {
    match limit {
        Some(limit) if actual > limit => Err(UnpackError::Limit {
            what,
            limit,
            actual,
            entry: entry.map(str::to_owned),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_allows_up_to_the_limit_and_names_the_excess() {
        assert!(check("entries", Some(3), 3, None).is_ok());
        assert!(check("entries", None, u64::MAX, None).is_ok());
        match check("file size", Some(3), 4, Some("a/b")) {
            Err(UnpackError::Limit {
                what,
                limit,
                actual,
                entry,
            }) => {
                assert_eq!((what, limit, actual), ("file size", 3, 4));
                assert_eq!(entry.as_deref(), Some("a/b"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
