//! Why a string cannot take part in matching.

use std::fmt;

/// Why a string cannot take part in matching (kubelet treats every one of these as "no match").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchError {
    /// Go's `url.Parse` rejects the string; the message is Go's.
    Url(String),
    /// A host label is not a well-formed `path.Match` pattern.
    BadPattern,
}

impl fmt::Display for MatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatchError::Url(message) => write!(f, "{message}"),
            MatchError::BadPattern => write!(f, "syntax error in pattern"),
        }
    }
}

impl std::error::Error for MatchError {}
