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

use std::collections::HashMap;
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

// --- Go's net/url, reduced to what url.Parse does for "scheme://..." strings ------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Path,
    Host,
    Zone,
    UserPassword,
    Fragment,
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn unhex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// Go's `shouldEscape` for the modes url.Parse validates with.
fn should_escape(c: u8, mode: Encoding) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if matches!(mode, Encoding::Host | Encoding::Zone)
        && matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
    {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => return false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            Encoding::Path => return c == b'?',
            Encoding::UserPassword => return matches!(c, b'@' | b'/' | b'?' | b':'),
            Encoding::Fragment => return false,
            Encoding::Host | Encoding::Zone => {}
        },
        _ => {}
    }
    if mode == Encoding::Fragment && matches!(c, b'!' | b'(' | b')' | b'*') {
        return false;
    }
    true
}

fn quote(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

/// Go's `unescape`: validates percent escapes (and host characters) and decodes them.
fn unescape(s: &[u8], mode: Encoding) -> Result<Vec<u8>, MatchError> {
    let mut count = 0usize;
    let mut i = 0usize;
    while i < s.len() {
        match s[i] {
            b'%' => {
                count += 1;
                if i + 2 >= s.len() || !is_hex(s[i + 1]) || !is_hex(s[i + 2]) {
                    let end = (i + 3).min(s.len());
                    return Err(MatchError::Url(format!(
                        "invalid URL escape {}",
                        quote(&s[i..end])
                    )));
                }
                let escape = &s[i..i + 3];
                if mode == Encoding::Host && unhex(s[i + 1]) < 8 && escape != b"%25" {
                    return Err(MatchError::Url(format!(
                        "invalid URL escape {}",
                        quote(escape)
                    )));
                }
                if mode == Encoding::Zone {
                    let v = (unhex(s[i + 1]) << 4) | unhex(s[i + 2]);
                    if escape != b"%25" && v != b' ' && should_escape(v, Encoding::Host) {
                        return Err(MatchError::Url(format!(
                            "invalid URL escape {}",
                            quote(escape)
                        )));
                    }
                }
                i += 3;
            }
            c => {
                if matches!(mode, Encoding::Host | Encoding::Zone)
                    && c < 0x80
                    && should_escape(c, mode)
                {
                    return Err(MatchError::Url(format!(
                        "invalid character {} in host name",
                        quote(&s[i..i + 1])
                    )));
                }
                i += 1;
            }
        }
    }
    if count == 0 {
        return Ok(s.to_vec());
    }
    let mut out = Vec::with_capacity(s.len() - 2 * count);
    let mut i = 0usize;
    while i < s.len() {
        if s[i] == b'%' {
            out.push((unhex(s[i + 1]) << 4) | unhex(s[i + 2]));
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn valid_optional_port(port: &[u8]) -> bool {
    match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

fn rfind(s: &[u8], c: u8) -> Option<usize> {
    s.iter().rposition(|&b| b == c)
}

fn find(s: &[u8], c: u8) -> Option<usize> {
    s.iter().position(|&b| b == c)
}

fn find_sub(s: &[u8], needle: &[u8]) -> Option<usize> {
    s.windows(needle.len()).position(|w| w == needle)
}

/// Go's `netip.ParseAddr` accepting only what a bracketed URL host may hold: IPv6, optional zone.
fn is_ipv6_literal(text: &[u8]) -> Result<(), MatchError> {
    let invalid = || MatchError::Url("invalid IP-literal".to_owned());
    let (addr, zone) = match find(text, b'%') {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    if zone.is_some_and(<[u8]>::is_empty) {
        return Err(MatchError::Url(
            "invalid host: zone must be a non-empty string".to_owned(),
        ));
    }
    let addr = std::str::from_utf8(addr).map_err(|_| invalid())?;
    if !addr.contains(':') {
        // netip parses IPv4 (rejected by url.Parse as an IP-literal) or fails.
        return Err(invalid());
    }
    addr.parse::<std::net::Ipv6Addr>()
        .map(|_| ())
        .map_err(|_| MatchError::Url(format!("invalid host: ParseAddr({addr:?}) failed")))
}

/// Go's `parseHost(scheme, host)` for the http(s) schemes (current Go, with CVE-2026-25679).
fn parse_host(host: &[u8]) -> Result<Vec<u8>, MatchError> {
    match rfind(host, b'[') {
        Some(i) if i > 0 => Err(MatchError::Url("invalid IP-literal".to_owned())),
        Some(_) => {
            let close = rfind(host, b']')
                .ok_or_else(|| MatchError::Url("missing ']' in host".to_owned()))?;
            let colon_port = &host[close + 1..];
            if !valid_optional_port(colon_port) {
                return Err(MatchError::Url(format!(
                    "invalid port {} after host",
                    quote(colon_port)
                )));
            }
            let colon_port = unescape(colon_port, Encoding::Host)?;
            let hostname = &host[1..close];
            let unescaped = match find_sub(hostname, b"%25") {
                Some(zone) => {
                    let mut out = unescape(&hostname[..zone], Encoding::Host)?;
                    out.extend(unescape(&hostname[zone..], Encoding::Zone)?);
                    out
                }
                None => unescape(hostname, Encoding::Host)?,
            };
            is_ipv6_literal(&unescaped)?;
            let mut out = Vec::with_capacity(unescaped.len() + colon_port.len() + 2);
            out.push(b'[');
            out.extend(unescaped);
            out.push(b']');
            out.extend(colon_port);
            Ok(out)
        }
        None => {
            // For http and https Go insists that the first colon starts the port.
            if let Some(i) = find(host, b':') {
                let colon_port = &host[i..];
                if !valid_optional_port(colon_port) {
                    return Err(MatchError::Url(format!(
                        "invalid port {} after host",
                        quote(colon_port)
                    )));
                }
            }
            unescape(host, Encoding::Host)
        }
    }
}

fn valid_userinfo(s: &[u8]) -> bool {
    s.iter().all(|&c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b':'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'%'
                    | b'@'
            )
    })
}

/// The parts of a parsed URL that kubelet looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoUrl {
    /// `URL.Host`: decoded, `host[:port]` (IPv6 in brackets).
    pub host: Vec<u8>,
    /// `URL.Path`: decoded.
    pub path: Vec<u8>,
}

/// Go's `url.Parse` for a string that starts with `http://` or `https://`.
pub fn go_url_parse(raw: &[u8]) -> Result<GoUrl, MatchError> {
    let (raw, fragment) = match find(raw, b'#') {
        Some(i) => (&raw[..i], Some(&raw[i + 1..])),
        None => (raw, None),
    };
    if raw.iter().any(|&b| b < b' ' || b == 0x7f) {
        return Err(MatchError::Url(
            "net/url: invalid control character in URL".to_owned(),
        ));
    }
    let rest = if let Some(rest) = raw.strip_prefix(b"https:") {
        rest
    } else if let Some(rest) = raw.strip_prefix(b"http:") {
        rest
    } else {
        return Err(MatchError::Url("unsupported scheme".to_owned()));
    };
    let rest = match find(rest, b'?') {
        Some(i) => &rest[..i],
        None => rest,
    };
    let (host, path): (Vec<u8>, &[u8]) = if let Some(after) = rest.strip_prefix(b"//") {
        let (authority, path) = match find(after, b'/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, &b""[..]),
        };
        let at = rfind(authority, b'@');
        let host = parse_host(match at {
            Some(i) => &authority[i + 1..],
            None => authority,
        })?;
        if let Some(i) = at {
            let userinfo = &authority[..i];
            if !valid_userinfo(userinfo) {
                return Err(MatchError::Url("net/url: invalid userinfo".to_owned()));
            }
            match find(userinfo, b':') {
                Some(c) => {
                    unescape(&userinfo[..c], Encoding::UserPassword)?;
                    unescape(&userinfo[c + 1..], Encoding::UserPassword)?;
                }
                None => {
                    unescape(userinfo, Encoding::UserPassword)?;
                }
            }
        }
        (host, path)
    } else {
        // "https:foo" is an opaque URL: no host, no path.
        return Ok(GoUrl {
            host: Vec::new(),
            path: Vec::new(),
        });
    };
    let path = unescape(path, Encoding::Path)?;
    if let Some(fragment) = fragment {
        unescape(fragment, Encoding::Fragment)?;
    }
    Ok(GoUrl { host, path })
}

/// kubelet's `ParseSchemelessURL`: `url.Parse("https://" + s)`.
pub fn parse_schemeless(s: &[u8]) -> Result<GoUrl, MatchError> {
    let mut raw = Vec::with_capacity(s.len() + 8);
    raw.extend_from_slice(b"https://");
    raw.extend_from_slice(s);
    go_url_parse(&raw)
}

/// Go's `net.SplitHostPort`; `None` where Go returns an error.
fn split_host_port(hostport: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = rfind(hostport, b':')?;
    let (host, j, k) = if hostport.first() == Some(&b'[') {
        let end = find(hostport, b']')?;
        if end + 1 == hostport.len() || end + 1 != i {
            return None;
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..i];
        if find(host, b':').is_some() {
            return None;
        }
        (host, 0, 0)
    };
    if find(&hostport[j..], b'[').is_some() || find(&hostport[k..], b']').is_some() {
        return None;
    }
    Some((host, &hostport[i + 1..]))
}

/// kubelet's `SplitURL`: host labels and port (empty when absent or unparsable).
fn split_url(host: &[u8]) -> (&[u8], &[u8]) {
    split_host_port(host).unwrap_or((host, b""))
}

// --- Go's path.Match ----------------------------------------------------------------------------

const RUNE_ERROR: u32 = 0xFFFD;

/// Go's `utf8.DecodeRune`: (rune, width); invalid input gives (U+FFFD, 1).
fn decode_rune(s: &[u8]) -> (u32, usize) {
    let head = &s[..s.len().min(4)];
    let valid = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(err) => std::str::from_utf8(&head[..err.valid_up_to()]).unwrap_or(""),
    };
    match valid.chars().next() {
        Some(c) => (c as u32, c.len_utf8()),
        None => (RUNE_ERROR, 1),
    }
}

fn scan_chunk(pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut pattern = pattern;
    let mut star = false;
    while let Some(rest) = pattern.strip_prefix(b"*") {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Go's `getEsc`: one possibly escaped character of a class.
fn get_esc(chunk: &[u8]) -> Result<(u32, &[u8]), MatchError> {
    let mut chunk = chunk;
    match chunk.first() {
        None | Some(b'-') | Some(b']') => return Err(MatchError::BadPattern),
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return Err(MatchError::BadPattern);
            }
        }
        Some(_) => {}
    }
    let (r, n) = decode_rune(chunk);
    if r == RUNE_ERROR && n == 1 {
        return Err(MatchError::BadPattern);
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(MatchError::BadPattern);
    }
    Ok((r, rest))
}

/// Go's `matchChunk` (Go >= 1.16: keeps validating the chunk after a mismatch).
fn match_chunk<'a>(chunk: &[u8], s: &'a [u8]) -> Result<Option<&'a [u8]>, MatchError> {
    let mut chunk = chunk;
    let mut s = s;
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c {
            b'[' => {
                let mut r = 0u32;
                if !failed {
                    let (rune, n) = decode_rune(s);
                    r = rune;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let mut negated = false;
                if chunk.first() == Some(&b'^') {
                    negated = true;
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk[0] == b'-' {
                        let (high, rest) = get_esc(&chunk[1..])?;
                        hi = high;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(MatchError::BadPattern);
                    }
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok(if failed { None } else { Some(s) })
}

/// Go's `path.Match(pattern, name)` (which is `filepath.Match` on Unix).
pub fn glob_match(pattern: &[u8], name: &[u8]) -> Result<bool, MatchError> {
    let mut pattern = pattern;
    let mut name = name;
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            return Ok(find(name, b'/').is_none());
        }
        let first = match_chunk(chunk, name);
        if let Ok(Some(t)) = first {
            if t.is_empty() || !pattern.is_empty() {
                name = t;
                continue;
            }
        }
        first?;
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                match match_chunk(chunk, &name[i + 1..])? {
                    Some(t) if pattern.is_empty() && !t.is_empty() => {}
                    Some(t) => {
                        name = t;
                        continue 'pattern;
                    }
                    None => {}
                }
                i += 1;
            }
        }
        // Before answering "no", Go checks that the rest of the pattern is well-formed.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

fn has_glob_meta(label: &[u8]) -> bool {
    label
        .iter()
        .any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
}

// --- URLsMatchStr -----------------------------------------------------------------------------

/// A key or image parsed the way kubelet's matcher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchUrl {
    host: Vec<u8>,
    port: Vec<u8>,
    path: Vec<u8>,
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

    fn labels(&self) -> impl Iterator<Item = &[u8]> {
        self.host.split(|&b| b == b'.')
    }

    fn label_count(&self) -> usize {
        self.host.iter().filter(|&&b| b == b'.').count() + 1
    }
}

/// kubelet's `URLsMatch` on parsed URLs.
fn urls_match_parsed(glob: &MatchUrl, target: &MatchUrl) -> Result<bool, MatchError> {
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

// --- the compiled, indexed matcher ------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;

    fn m(glob: &str, target: &str) -> bool {
        urls_match(glob, target)
    }

    #[test]
    fn kubelet_url_cases() {
        // keyring_test.go TestURLsMatch
        assert!(m("*.kubernetes.io", "prefix.kubernetes.io"));
        assert!(m("prefix.*.io", "prefix.kubernetes.io"));
        assert!(m("prefix.kubernetes.*", "prefix.kubernetes.io"));
        assert!(m("*-good.kubernetes.io", "prefix-good.kubernetes.io"));
        assert!(m("*.kubernetes.io/blah", "prefix.kubernetes.io/blah"));
        assert!(m("prefix.*.io/foo", "prefix.kubernetes.io/foo/bar"));
        assert!(m(
            "*.kubernetes.io:1111/blah",
            "prefix.kubernetes.io:1111/blah"
        ));
        assert!(m(
            "prefix.*.io:1111/foo",
            "prefix.kubernetes.io:1111/foo/bar"
        ));
        assert!(!m("*.kubernetes.io", "kubernetes.io"));
        assert!(!m("*.*.kubernetes.io", "prefix.kubernetes.io"));
        assert!(!m("*.*.kubernetes.io", "kubernetes.io"));
        assert!(!m("*kubernetes.io", "a.kubernetes.io"));
        assert!(m("*kubernetes.io", "kubernetes.io"));
        assert!(m("*.*.*.kubernetes.io", "a.b.c.kubernetes.io"));
        assert!(!m("kubernetes.io", "kubernetes.com"));
        assert!(!m("k*.io", "quay.io"));
        assert!(!m(
            "*.kubernetes.io:1234/blah",
            "prefix.kubernetes.io:1111/blah"
        ));
        assert!(!m("prefix.*.io/foo", "prefix.kubernetes.io:1111/foo/bar"));
    }

    #[test]
    fn path_is_a_string_prefix() {
        assert!(m("bar.example.com/pong", "bar.example.com/pongz"));
        assert!(!m("bar.example.com/pong", "bar.example.com/pin"));
    }

    #[test]
    fn glob_matches_like_go() {
        let ok = |p: &str, n: &str| glob_match(p.as_bytes(), n.as_bytes());
        assert_eq!(ok("abc", "abc"), Ok(true));
        assert_eq!(ok("*", "abc"), Ok(true));
        assert_eq!(ok("*c", "abc"), Ok(true));
        assert_eq!(ok("a*", "a"), Ok(true));
        assert_eq!(ok("a*/b", "abc/b"), Ok(true));
        assert_eq!(ok("a*/b", "a/c/b"), Ok(false));
        assert_eq!(ok("a*b*c*d*e*/f", "axbxcxdxe/f"), Ok(true));
        assert_eq!(ok("a*b?c*x", "abxbbxdbxebxczzx"), Ok(true));
        assert_eq!(ok("a*b?c*x", "abxbbxdbxebxczzy"), Ok(false));
        assert_eq!(ok("ab[c]", "abc"), Ok(true));
        assert_eq!(ok("ab[b-d]", "abc"), Ok(true));
        assert_eq!(ok("ab[e-g]", "abc"), Ok(false));
        assert_eq!(ok("ab[^c]", "abc"), Ok(false));
        assert_eq!(ok("ab[^b-d]", "abc"), Ok(false));
        assert_eq!(ok("ab[^e-g]", "abc"), Ok(true));
        assert_eq!(ok("a\\*b", "a*b"), Ok(true));
        assert_eq!(ok("a\\*b", "ab"), Ok(false));
        assert_eq!(ok("a?b", "a☺b"), Ok(true));
        assert_eq!(ok("a[^a]b", "a☺b"), Ok(true));
        assert_eq!(ok("a???b", "a☺b"), Ok(false));
        assert_eq!(ok("a[^a][^a][^a]b", "a☺b"), Ok(false));
        assert_eq!(ok("[a-ζ]*", "α"), Ok(true));
        assert_eq!(ok("*[a-ζ]", "A"), Ok(false));
        assert_eq!(ok("a?b", "a/b"), Ok(false));
        assert_eq!(ok("a*b", "a/b"), Ok(false));
        assert_eq!(ok("[\\]a]", "]"), Ok(true));
        assert_eq!(ok("[\\-]", "-"), Ok(true));
        assert_eq!(ok("[x\\-]", "x"), Ok(true));
        assert_eq!(ok("[x\\-]", "-"), Ok(true));
        assert_eq!(ok("[x\\-]", "z"), Ok(false));
        assert_eq!(ok("[\\-x]", "x"), Ok(true));
        assert_eq!(ok("[\\-x]", "a"), Ok(false));
        assert_eq!(ok("*x", "xxx"), Ok(true));
        // Go's ErrBadPattern cases
        for bad in [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "a*[",
        ] {
            assert_eq!(ok(bad, "a"), Err(MatchError::BadPattern), "{bad}");
        }
        assert_eq!(ok("a[", "x"), Err(MatchError::BadPattern));
        assert_eq!(ok("*x", "xxx"), Ok(true));
    }

    #[test]
    fn malformed_patterns_never_match() {
        assert!(!m("a[.example.com", "a.example.com"));
        assert_eq!(
            pattern_problem(b"*.exa\\mple.com"),
            Some(MatchError::Url(
                "invalid character \"\\\\\" in host name".to_owned()
            ))
        );
        assert!(pattern_problem(b"*.example.com").is_none());
    }

    #[test]
    fn go_url_parser_limits_host_globs() {
        // `?` starts the query, so `ex?mple.com` is the host `ex`.
        assert!(!m("ex?mple.com", "example.com"));
        // Current Go rejects `[` after the start of a host: no classes in keys.
        assert!(!m("prefix.[a-z].io", "prefix.b.io"));
        assert!(matches!(
            pattern_problem(b"prefix.[a-z].io"),
            Some(MatchError::Url(_))
        ));
        // `^` and `\` are invalid host characters.
        assert!(!m("a^b.io", "a^b.io"));
        // A bracketed IPv6 host with a port is split by SplitHostPort and compared exactly.
        assert!(m("[::1]:5000", "[::1]:5000/foo"));
        assert!(!m("[::1]:5000", "[::2]:5000/foo"));
        assert!(!m("[1.2.3.4]:5000", "[1.2.3.4]:5000/foo"));
        // Two colons outside brackets are rejected for https URLs.
        assert!(!m("a:1:2", "a:1:2"));
    }

    #[test]
    fn config_keys_are_normalized_like_add() {
        let key =
            |s: &str| normalize_config_key(s.as_bytes()).map(|k| String::from_utf8(k).unwrap());
        assert_eq!(
            key("https://index.docker.io/v1/").unwrap(),
            "index.docker.io"
        );
        assert_eq!(key("https://quay.io/v1/").unwrap(), "quay.io");
        assert_eq!(key("http://quay.io/v2/").unwrap(), "quay.io");
        assert_eq!(key("bar.example.com/pong").unwrap(), "bar.example.com/pong");
        assert_eq!(key("https://*.docker.io/v1/").unwrap(), "*.docker.io");
        assert_eq!(
            key("https://*.docker.io/path:1111").unwrap(),
            "*.docker.io/path:1111"
        );
        assert_eq!(key("user:pw@registry.io").unwrap(), "registry.io");
        assert_eq!(key("registry.io/a?b#c").unwrap(), "registry.io/a");
        assert!(key("registry.io:port").is_err());
    }

    #[test]
    fn default_registry_detection() {
        for (image, expected) in [
            ("foo/bar", true),
            ("docker.io/foo/bar", true),
            ("index.docker.io/foo/bar", true),
            ("foo", true),
            ("", false),
            ("registry.tld/foo/bar", false),
            ("registry:5000/foo/bar", false),
            ("myhostdocker.io/foo/bar", false),
        ] {
            assert_eq!(is_default_registry_match(image), expected, "{image}");
        }
    }

    #[test]
    fn matcher_orders_like_kubelet() {
        let keys = [
            "bar.example.com/pong",
            "bar.example.com",
            "https://index.docker.io/v1/",
        ];
        let matcher = Matcher::new(&keys, KeyKind::ConfigKey, true);
        assert_eq!(matcher.lookup("bar.example.com/pong"), vec![0, 1]);
        assert_eq!(matcher.lookup("bar.example.com/pongz"), vec![0, 1]);
        assert_eq!(matcher.lookup("bar.example.com/ping"), vec![1]);
        // No slash: kubelet treats a bare name as a Docker Hub image and falls back.
        assert_eq!(matcher.lookup("example.com"), vec![2]);
        assert!(matcher.lookup("foo.example.com/x").is_empty());
        assert_eq!(matcher.lookup("docker.io/library/nginx"), vec![2]);
        assert_eq!(matcher.lookup("jenkins"), vec![2]);
        assert!(matcher.lookup("world.mesos.org/foo/bar").is_empty());
    }

    #[test]
    fn matcher_agrees_with_linear_scan() {
        let keys = [
            "*.example.com",
            "a.example.com/x",
            "a.example.com",
            "*.*.com",
            "a.example.*",
            "a.example.com:5000",
            "*.example.com:5000/x",
            "a.example.com",
            "[bad.example.com",
            "a.example.com/xy",
        ];
        let matcher = Matcher::new(&keys, KeyKind::Pattern, false);
        for image in [
            "a.example.com/x/y",
            "a.example.com/xy",
            "b.example.com/x",
            "a.example.com:5000/x",
            "a.example.org/x",
            "example.com",
            "a.b.example.com",
        ] {
            assert_eq!(
                matcher.lookup(image),
                matcher.lookup_linear(image),
                "{image}"
            );
        }
        assert_eq!(
            matcher.lookup("a.example.com/xy"),
            vec![9, 1, 2, 7, 4, 0, 3]
        );
    }
}
