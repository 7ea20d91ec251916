//! The compiled matcher: thousands of keys indexed by label count, port, literal host or last
//! label and path prefix, answering in kubelet's order.

use std::collections::HashMap;

use super::pathmatch::{glob_match, has_glob_meta};
use super::urls::{is_default_registry_match, normalize_config_key, urls_match_parsed, MatchUrl};
use super::MatchError;

/// Keys with one path, indexed so a lookup tries only the prefixes the target path has.
#[derive(Default)]
struct PathIndex {
    by_path: HashMap<Vec<u8>, Vec<u32>>,
    lengths: Vec<usize>,
}

impl PathIndex {
    fn insert(&mut self, path: &[u8], entry: u32) {
        self.by_path.entry(path.to_vec()).or_default().push(entry);
        if let Err(at) = self.lengths.binary_search(&path.len()) {
            self.lengths.insert(at, path.len());
        }
    }

    fn collect(&self, target: &[u8], out: &mut Vec<u32>) {
        for &len in &self.lengths {
            if len > target.len() {
                break;
            }
            if let Some(entries) = self.by_path.get(&target[..len]) {
                out.extend_from_slice(entries);
            }
        }
    }
}

/// Keys that share a label count and a port.
#[derive(Default)]
struct Group {
    /// Keys without wildcards, by host, then by path.
    literal_hosts: HashMap<Vec<u8>, PathIndex>,
    /// Wildcard keys by their literal trailing labels (`region.cloud.io` of `*.region.cloud.io`).
    by_suffix: HashMap<Vec<u8>, Vec<u32>>,
    suffix_labels: Vec<usize>,
    /// Wildcard keys by their literal leading labels (`mirror.internal` of `mirror.internal.*`).
    by_prefix: HashMap<Vec<u8>, Vec<u32>>,
    prefix_labels: Vec<usize>,
    /// Wildcards at both ends: checked one by one.
    other: Vec<u32>,
}

fn insert_sorted(lengths: &mut Vec<usize>, length: usize) {
    if let Err(at) = lengths.binary_search(&length) {
        lengths.insert(at, length);
    }
}

impl Group {
    fn insert_glob(&mut self, labels: &[&[u8]], index: u32) {
        let leading = labels.iter().take_while(|l| !has_glob_meta(l)).count();
        let trailing = labels
            .iter()
            .rev()
            .take_while(|l| !has_glob_meta(l))
            .count();
        if trailing > 0 && trailing >= leading {
            let suffix = labels[labels.len() - trailing..].join(&b'.');
            self.by_suffix.entry(suffix).or_default().push(index);
            insert_sorted(&mut self.suffix_labels, trailing);
        } else if leading > 0 {
            let prefix = labels[..leading].join(&b'.');
            self.by_prefix.entry(prefix).or_default().push(index);
            insert_sorted(&mut self.prefix_labels, leading);
        } else {
            self.other.push(index);
        }
    }
}

/// One compiled entry.
struct Entry {
    /// The normalized key (what kubelet sorts and matches), or why it is ignored.
    key: Result<Vec<u8>, MatchError>,
    /// The key parsed for matching, or why it can never match.
    url: Result<MatchUrl, MatchError>,
}

/// How [`Matcher`] reads its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// docker-config keys (`https://index.docker.io/v1/`): normalized as `BasicDockerKeyring.Add`.
    ConfigKey,
    /// Patterns used as written (`matchImages`).
    Pattern,
}

/// A compiled set of keys that answers "which entries match this image?" in kubelet's order.
pub struct Matcher {
    entries: Vec<Entry>,
    rank: Vec<u32>,
    /// Keys grouped by host label count, then port.
    groups: HashMap<usize, HashMap<Vec<u8>, Group>>,
    docker_hub: Vec<u32>,
    docker_hub_fallback: bool,
}

const DEFAULT_REGISTRY_HOST: &[u8] = b"index.docker.io";

impl Matcher {
    /// Compiles `keys`; entry `i` of every answer refers to `keys[i]`.
    pub fn new<S: AsRef<str>>(keys: &[S], kind: KeyKind, docker_hub_fallback: bool) -> Self {
        let entries: Vec<Entry> = keys
            .iter()
            .map(|key| {
                let raw = key.as_ref().as_bytes();
                let key = match kind {
                    KeyKind::ConfigKey => normalize_config_key(raw),
                    KeyKind::Pattern => Ok(raw.to_vec()),
                };
                let url = match &key {
                    Ok(key) => MatchUrl::parse(key),
                    Err(err) => Err(err.clone()),
                };
                Entry { key, url }
            })
            .collect();

        // kubelet's index: reverse byte order of keys; equal keys keep insertion order.
        let mut order: Vec<u32> = (0..entries.len() as u32).collect();
        order.sort_by(|&a, &b| {
            let ka = entries[a as usize].key.as_deref().unwrap_or(b"");
            let kb = entries[b as usize].key.as_deref().unwrap_or(b"");
            kb.cmp(ka).then(a.cmp(&b))
        });
        let mut rank = vec![0u32; entries.len()];
        for (position, &entry) in order.iter().enumerate() {
            rank[entry as usize] = position as u32;
        }

        let mut groups: HashMap<usize, HashMap<Vec<u8>, Group>> = HashMap::new();
        let mut docker_hub = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let index = index as u32;
            if entry.key.as_deref() == Ok(DEFAULT_REGISTRY_HOST) {
                docker_hub.push(index);
            }
            let Ok(url) = &entry.url else { continue };
            let labels: Vec<&[u8]> = url.labels().collect();
            if labels.iter().any(|label| glob_match(label, b"").is_err()) {
                continue; // a malformed glob never matches
            }
            let group = groups
                .entry(labels.len())
                .or_default()
                .entry(url.port.clone())
                .or_default();
            if labels.iter().any(|label| has_glob_meta(label)) {
                group.insert_glob(&labels, index);
            } else {
                group
                    .literal_hosts
                    .entry(url.host.clone())
                    .or_default()
                    .insert(&url.path, index);
            }
        }
        Matcher {
            entries,
            rank,
            groups,
            docker_hub,
            docker_hub_fallback,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The normalized key of entry `i` (`Err` when kubelet ignores the entry).
    pub fn key(&self, i: usize) -> Result<&[u8], &MatchError> {
        self.entries[i].key.as_deref()
    }

    /// Why entry `i` can never match, if it cannot.
    pub fn problem(&self, i: usize) -> Option<MatchError> {
        match &self.entries[i].url {
            Err(err) => Some(err.clone()),
            Ok(url) => url.labels().find_map(|label| glob_match(label, b"").err()),
        }
    }

    fn check(&self, entry: u32, target: &MatchUrl) -> bool {
        match &self.entries[entry as usize].url {
            Ok(url) => urls_match_parsed(url, target).unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Indices of the entries that match `image`, in the order kubelet tries them.
    pub fn lookup(&self, image: &str) -> Vec<u32> {
        let mut found = Vec::new();
        if let Ok(target) = MatchUrl::parse(image.as_bytes()) {
            let count = target.label_count();
            if let Some(group) = self
                .groups
                .get(&count)
                .and_then(|by_port| by_port.get(target.port.as_slice()))
            {
                if let Some(paths) = group.literal_hosts.get(target.host.as_slice()) {
                    paths.collect(&target.path, &mut found);
                }
                let host = target.host.as_slice();
                // Byte offsets where each label starts.
                let starts: Vec<usize> = std::iter::once(0)
                    .chain(
                        host.iter()
                            .enumerate()
                            .filter(|(_, &b)| b == b'.')
                            .map(|(i, _)| i + 1),
                    )
                    .collect();
                for &labels in &group.suffix_labels {
                    let suffix = &host[starts[count - labels]..];
                    if let Some(entries) = group.by_suffix.get(suffix) {
                        found.extend(entries.iter().filter(|&&e| self.check(e, &target)));
                    }
                }
                for &labels in &group.prefix_labels {
                    let prefix = &host[..starts[labels] - 1];
                    if let Some(entries) = group.by_prefix.get(prefix) {
                        found.extend(entries.iter().filter(|&&e| self.check(e, &target)));
                    }
                }
                found.extend(group.other.iter().filter(|&&e| self.check(e, &target)));
            }
        }
        if found.is_empty() {
            if self.docker_hub_fallback && is_default_registry_match(image) {
                return self.docker_hub.clone();
            }
            return found;
        }
        found.sort_unstable_by_key(|&e| self.rank[e as usize]);
        found
    }

    /// The same answer as [`Matcher::lookup`], by checking every entry (the reference).
    pub fn lookup_linear(&self, image: &str) -> Vec<u32> {
        let mut found: Vec<u32> = Vec::new();
        if let Ok(target) = MatchUrl::parse(image.as_bytes()) {
            found = (0..self.entries.len() as u32)
                .filter(|&e| self.check(e, &target))
                .collect();
        }
        if found.is_empty() && self.docker_hub_fallback && is_default_registry_match(image) {
            return self.docker_hub.clone();
        }
        found.sort_unstable_by_key(|&e| self.rank[e as usize]);
        found
    }
}
