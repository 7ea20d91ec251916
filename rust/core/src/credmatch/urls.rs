//! kubelet's `URLsMatchStr` and the key normalisation of `BasicDockerKeyring.Add`.

use super::gourl::{go_url_parse, parse_schemeless, split_url};
use super::pathmatch::glob_match;
use super::MatchError;

/// A key or image parsed the way kubelet's matcher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchUrl {
    pub(super) host: Vec<u8>,
    pub(super) port: Vec<u8>,
    pub(super) path: Vec<u8>,
}

impl MatchUrl {
    /// Parses a schemeless key, pattern or image name (`ParseSchemelessURL` + `SplitURL`).
    pub fn parse(s: &[u8]) -> Result<Self, MatchError> {
        let url = parse_schemeless(s)?;
        let (host, port) = split_url(&url.host);
        Ok(MatchUrl {
            host: host.to_vec(),
            port: port.to_vec(),
            path: url.path,
        })
    }

    pub(super) fn labels(&self) -> impl Iterator<Item = &[u8]> {
        self.host.split(|&b| b == b'.')
    }

    pub(super) fn label_count(&self) -> usize {
        self.host.iter().filter(|&&b| b == b'.').count() + 1
    }
}

/// kubelet's `URLsMatch` on parsed URLs.
pub(super) fn urls_match_parsed(glob: &MatchUrl, target: &MatchUrl) -> Result<bool, MatchError> {
    if glob.port != target.port
        || glob.label_count() != target.label_count()
        || !target.path.starts_with(&glob.path)
    {
        return Ok(false);
    }
    for (pattern, label) in glob.labels().zip(target.labels()) {
        if !glob_match(pattern, label)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// kubelet's `URLsMatchStr(glob, target)`, errors included.
pub fn urls_match_str(glob: &str, target: &str) -> Result<bool, MatchError> {
    let glob = MatchUrl::parse(glob.as_bytes())?;
    let target = MatchUrl::parse(target.as_bytes())?;
    urls_match_parsed(&glob, &target)
}

/// Whether kubelet would use credentials keyed `pattern` for `image` (errors mean no).
pub fn urls_match(glob: &str, target: &str) -> bool {
    urls_match_str(glob, target).unwrap_or(false)
}

/// Why kubelet can never match with `pattern` (unparsable URL or malformed glob), if it cannot.
pub fn pattern_problem(pattern: &[u8]) -> Option<MatchError> {
    let parsed = match MatchUrl::parse(pattern) {
        Ok(parsed) => parsed,
        Err(err) => return Some(err),
    };
    let problem = parsed
        .labels()
        .find_map(|label| glob_match(label, b"").err());
    problem
}

/// The key `BasicDockerKeyring.Add` files a docker-config entry under: scheme dropped, a leading
/// `/v1/` or `/v2/` reduced to `/`, a bare `/` path dropped. Errors where kubelet ignores the entry.
pub fn normalize_config_key(location: &[u8]) -> Result<Vec<u8>, MatchError> {
    let url = if location.starts_with(b"https://") || location.starts_with(b"http://") {
        go_url_parse(location)?
    } else {
        parse_schemeless(location)?
    };
    let mut path: &[u8] = &url.path;
    if path.starts_with(b"/v2/") || path.starts_with(b"/v1/") {
        path = &path[3..];
    }
    let mut key = url.host;
    if !path.is_empty() && path != b"/" {
        key.extend_from_slice(path);
    }
    Ok(key)
}

/// kubelet's `isDefaultRegistryMatch`: whether an image name would be pulled from Docker Hub.
pub fn is_default_registry_match(image: &str) -> bool {
    let (first, rest) = match image.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (image, None),
    };
    if first.is_empty() {
        return false;
    }
    if rest.is_none() || first == "docker.io" || first == "index.docker.io" {
        return true;
    }
    !first.contains(['.', ':'])
}
