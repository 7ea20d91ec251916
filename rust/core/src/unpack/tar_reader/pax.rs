//! PAX extended header records (`"%d %s=%s\n"`), parsed by their length prefix as Go's
//! `parsePAXRecord` does: a value may hold any byte, newlines included (binary xattrs such as
//! `security.capability` or `system.posix_acl_access` often do).

/// The records of one `x` (or `g`) header, in order; a key given twice keeps its last value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records(Vec<(Vec<u8>, Vec<u8>)>);

/// Why a PAX header was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct BadRecord(pub &'static str);

const SPARSE_OFFSET: &[u8] = b"GNU.sparse.offset";
const SPARSE_NUMBYTES: &[u8] = b"GNU.sparse.numbytes";
pub const SPARSE_MAP: &[u8] = b"GNU.sparse.map";

impl Records {
    /// Parses a whole extended header. GNU sparse 0.0 repeats `GNU.sparse.offset` and
    /// `GNU.sparse.numbytes` pairs; as in Go they are joined into one `GNU.sparse.map` (0.1).
    pub fn parse(mut data: &[u8]) -> Result<Records, BadRecord> {
        let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut sparse_map: Vec<&[u8]> = Vec::new();
        while !data.is_empty() {
            let (key, value, rest) = parse_record(data)?;
            data = rest;
            if key == SPARSE_OFFSET || key == SPARSE_NUMBYTES {
                let expected = if sparse_map.len().is_multiple_of(2) {
                    SPARSE_OFFSET
                } else {
                    SPARSE_NUMBYTES
                };
                if key != expected || value.contains(&b',') {
                    return Err(BadRecord("GNU sparse 0.0 records out of order"));
                }
                sparse_map.push(value);
            } else {
                records.push((key.to_vec(), value.to_vec()));
            }
        }
        if !sparse_map.is_empty() {
            records.push((SPARSE_MAP.to_vec(), sparse_map.join(&b","[..])));
        }
        // Last value wins (Go stores the records in a map).
        records.reverse();
        let mut seen = std::collections::HashSet::new();
        records.retain(|(k, _)| seen.insert(k.clone()));
        records.reverse();
        Ok(Records(records))
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.0.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }
}

/// One record and what follows it: `(key, value, rest)`.
type Record<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// Parses the first record of `data`.
fn parse_record(data: &[u8]) -> Result<Record<'_>, BadRecord> {
    const MALFORMED: BadRecord = BadRecord("malformed PAX record");
    let space = data.iter().position(|&b| b == b' ').ok_or(MALFORMED)?;
    let length = parse_go_int(&data[..space]).ok_or(MALFORMED)?;
    if length < 5 || length > data.len() as i64 {
        return Err(MALFORMED);
    }
    let length = length as usize;
    if length <= space + 1 {
        return Err(MALFORMED);
    }
    let record = &data[space + 1..length];
    let (body, newline) = record.split_at(record.len() - 1);
    if newline != b"\n" {
        return Err(MALFORMED);
    }
    let equals = body.iter().position(|&b| b == b'=').ok_or(MALFORMED)?;
    let (key, value) = (&body[..equals], &body[equals + 1..]);
    // Go's validPAXRecord: a key; no NUL in names (path, linkpath, uname, gname) or in keys.
    let valid = !key.is_empty()
        && match key {
            b"path" | b"linkpath" | b"uname" | b"gname" => !value.contains(&0),
            _ => !key.contains(&0),
        };
    if !valid {
        return Err(BadRecord("PAX record with an empty key or a NUL byte"));
    }
    Ok((key, value, &data[length..]))
}

/// Go's `strconv.ParseInt(s, 10, 64)`: an optional sign and decimal digits, no overflow.
pub fn parse_go_int(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        let d = i64::from(d - b'0');
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(d)?
        } else {
            value.checked_add(d)?
        };
    }
    Some(value)
}

/// A point in time as seconds and nanoseconds (nanoseconds always in `0..1e9`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time {
    pub secs: i64,
    pub nanos: u32,
}

/// Go's `parsePAXTime`: `[-]seconds[.fraction]`, the fraction cut to nanoseconds.
pub fn parse_time(text: &[u8]) -> Option<Time> {
    let (whole, fraction) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &b""[..]),
    };
    let secs = parse_go_int(whole)?;
    if fraction.is_empty() {
        return Some(Time { secs, nanos: 0 });
    }
    if !fraction.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut nanos: i64 = 0;
    for i in 0..9 {
        nanos = nanos * 10 + fraction.get(i).map_or(0, |d| i64::from(d - b'0'));
    }
    // A negative time's fraction counts backwards from its whole seconds.
    if whole.first() == Some(&b'-') && nanos > 0 {
        return Some(Time {
            secs: secs.checked_sub(1)?,
            nanos: (1_000_000_000 - nanos) as u32,
        });
    }
    Some(Time {
        secs,
        nanos: nanos as u32,
    })
}

/// One record as writers format it: the length prefix counts itself.
#[cfg(test)]
pub fn format_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body_len = key.len() + value.len() + 3;
    let mut len = body_len + 1;
    while len != body_len + len.to_string().len() {
        len = body_len + len.to_string().len();
    }
    let mut out = format!("{len} ").into_bytes();
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &[u8], value: &[u8]) -> Vec<u8> {
        format_record(key, value)
    }

    #[test]
    fn values_may_contain_newlines_and_any_byte() {
        let value: Vec<u8> = (0..=255u8).collect();
        let mut data = record(b"SCHILY.xattr.security.capability", &value);
        data.extend(record(b"path", b"a\nb"));
        let records = Records::parse(&data).unwrap();
        assert_eq!(
            records.get(b"SCHILY.xattr.security.capability"),
            Some(&value[..])
        );
        assert_eq!(records.get(b"path"), Some(&b"a\nb"[..]));
    }

    #[test]
    fn malformed_records_are_refused() {
        for bad in [
            &b"5 a=\n"[..],    // too short for its length prefix? (5 is the minimum)
            b"10 path=abc",    // no newline
            b"x path=a\n",     // no length
            b"6 =ab\n",        // empty key
            b"100 path=a\n",   // longer than the data
            b"11 path=a\0b\n", // NUL in a path
            b"9 pathab\n",     // no equals sign
            b"3 \n",           // below the minimum length
        ] {
            let result = Records::parse(bad);
            if bad == b"5 a=\n" {
                assert!(result.is_ok(), "{bad:?}");
            } else {
                assert!(result.is_err(), "{bad:?}");
            }
        }
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value() {
        let mut data = record(b"path", b"first");
        data.extend(record(b"path", b"second"));
        assert_eq!(
            Records::parse(&data).unwrap().get(b"path"),
            Some(&b"second"[..])
        );
    }

    #[test]
    fn sparse_00_pairs_become_a_map() {
        let mut data = Vec::new();
        for (k, v) in [
            (&b"GNU.sparse.offset"[..], &b"0"[..]),
            (b"GNU.sparse.numbytes", b"5"),
            (b"GNU.sparse.offset", b"10"),
            (b"GNU.sparse.numbytes", b"3"),
        ] {
            data.extend(record(k, v));
        }
        let records = Records::parse(&data).unwrap();
        assert_eq!(records.get(SPARSE_MAP), Some(&b"0,5,10,3"[..]));
        let mut bad = record(b"GNU.sparse.numbytes", b"5");
        bad.extend(record(b"GNU.sparse.offset", b"0"));
        assert!(Records::parse(&bad).is_err());
    }

    #[test]
    fn times_parse_as_go_does() {
        let t = |s: &[u8]| parse_time(s).map(|t| (t.secs, t.nanos));
        assert_eq!(t(b"1700000000.5"), Some((1_700_000_000, 500_000_000)));
        assert_eq!(t(b"-1.25"), Some((-2, 750_000_000)));
        assert_eq!(t(b"-0.5"), Some((-1, 500_000_000)));
        assert_eq!(t(b"12"), Some((12, 0)));
        assert_eq!(t(b"+12"), Some((12, 0)));
        assert_eq!(t(b"1.1234567899"), Some((1, 123_456_789)));
        for bad in [
            &b""[..],
            b"x",
            b"1.x",
            b".5",
            b"1e9",
            b"--1",
            b"99999999999999999999",
        ] {
            assert_eq!(t(bad), None, "{bad:?}");
        }
    }
}
