//! A port of Go's `net/url` (and `net.SplitHostPort`), reduced to what `url.Parse` does for
//! `scheme://...` strings: kubelet parses every key and image with it, so its corner cases decide
//! which keys can match.

use super::MatchError;

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

pub(super) fn find(s: &[u8], c: u8) -> Option<usize> {
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
pub(super) fn split_url(host: &[u8]) -> (&[u8], &[u8]) {
    split_host_port(host).unwrap_or((host, b""))
}
