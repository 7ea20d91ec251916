//! Kubernetes' credential-key matching, as kubelet does it (`pkg/credentialprovider/keyring.go`).
//!
//! `URLsMatchStr(glob, target)` parses both strings with Go's `url.Parse("https://" + s)`, splits
//! the host with `net.SplitHostPort`, requires equal ports and an equal number of dot-separated
//! host labels, requires the glob's path to be a plain string prefix of the target's path, and
//! matches each label with Go's `path.Match`. Every one of those Go functions is reproduced here
//! byte for byte, because their corner cases decide what a node does:
//!
//! * Go's URL parser rejects `\`, `^`, `{`, `|`, `}`, `` ` `` and spaces in hosts, and since the
//!   2026 security fix (CVE-2026-25679) any `[` that does not open a valid IPv6 literal; `?` starts
//!   a query. So in kubelet's keys only `*` is a usable wildcard, although `path.Match` would
//!   accept classes and escapes. A key the parser rejects never matches.
//! * A malformed glob (`path.ErrBadPattern`) never matches either: kubelet ignores the error.
//!
//! [`Matcher`] compiles thousands of keys into an index (by label count, port, literal host or
//! literal last label, and path prefix) and returns matches in kubelet's order: keys in reverse
//! byte order, equal keys in insertion order, then the Docker Hub fallback.

mod error;
mod gourl;
mod matcher;
mod pathmatch;
mod urls;

#[cfg(test)]
mod tests;

pub use error::MatchError;
pub use gourl::{go_url_parse, parse_schemeless, GoUrl};
pub use matcher::{KeyKind, Matcher};
pub use pathmatch::glob_match;
pub use urls::{
    is_default_registry_match, normalize_config_key, pattern_problem, urls_match, urls_match_str,
    MatchUrl,
};
