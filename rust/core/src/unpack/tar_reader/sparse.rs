//! GNU sparse files in every form Go reads: old GNU (type `S`, the map in the header and in
//! extension blocks) and PAX 0.0, 0.1 (the map in records) and 1.0 (the map at the start of
//! the data). The result is the list of data fragments; everything between them is a hole,
//! written by seeking, so a tiny layer cannot make us write gigabytes of zeros.

use super::header::{parse_numeric, Block, BLOCK};
use super::pax::{parse_go_int, Records, SPARSE_MAP};

/// A run of real data at `offset` in the file, `length` bytes long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    pub offset: u64,
    pub length: u64,
}

/// At most this many fragments in one file. Go has no bound; a map is held in memory, so we
/// refuse a larger one (1 Mi fragments = 16 MiB) with a stated reason.
pub const MAX_FRAGMENTS: usize = 1 << 20;

/// Why a sparse map was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct BadMap(pub &'static str);

/// Which PAX sparse format the records declare, as Go's `readGNUSparsePAXHeaders` decides.
pub enum PaxSparse {
    /// Not a sparse file (or an unknown version, which Go reads as a plain file).
    None,
    /// 0.0 or 0.1: the map is in the records.
    InRecords,
    /// 1.0: the map starts the data.
    InData,
}

pub fn pax_kind(records: &Records) -> PaxSparse {
    let major = records.get(b"GNU.sparse.major");
    let minor = records.get(b"GNU.sparse.minor");
    match (major, minor) {
        (Some(b"0"), Some(b"0" | b"1")) => PaxSparse::InRecords,
        (Some(b"1"), Some(b"0")) => PaxSparse::InData,
        (Some(_), _) | (_, Some(_)) => PaxSparse::None,
        _ if records.get(SPARSE_MAP).is_some_and(|m| !m.is_empty()) => PaxSparse::InRecords,
        _ => PaxSparse::None,
    }
}

/// The 0.0/0.1 map: `GNU.sparse.numblocks` pairs in `GNU.sparse.map`.
pub fn from_records(records: &Records) -> Result<Vec<Fragment>, BadMap> {
    let count = records
        .get(b"GNU.sparse.numblocks")
        .and_then(parse_go_int)
        .filter(|&n| n >= 0)
        .ok_or(BadMap("bad GNU.sparse.numblocks"))?;
    let map = records.get(SPARSE_MAP).unwrap_or_default();
    let numbers: Vec<&[u8]> = if map.is_empty() {
        Vec::new()
    } else {
        map.split(|&b| b == b',').collect()
    };
    if numbers.len() as u64 != 2 * count as u64 {
        return Err(BadMap("GNU.sparse.map does not match GNU.sparse.numblocks"));
    }
    check_count(count as u64)?;
    numbers
        .chunks(2)
        .map(|pair| fragment(parse_go_int(pair[0]), parse_go_int(pair[1])))
        .collect()
}

/// Reads the 1.0 map from the start of the data, one block at a time: a count, then offset
/// and length pairs, one decimal number per line; the map is padded to whole blocks.
#[derive(Default)]
pub struct MapReader {
    text: Vec<u8>,
    pos: usize,
}

impl MapReader {
    /// The next number, or `None` when another block is needed first.
    pub fn next_number(&mut self) -> Option<&[u8]> {
        let newline = self.text[self.pos..].iter().position(|&b| b == b'\n')?;
        let token = &self.text[self.pos..self.pos + newline];
        self.pos += newline + 1;
        Some(token)
    }

    pub fn feed(&mut self, block: &[u8; BLOCK]) {
        self.text.drain(..self.pos);
        self.pos = 0;
        self.text.extend_from_slice(block);
    }
}

pub fn count_from(token: &[u8]) -> Result<u64, BadMap> {
    let count = parse_go_int(token)
        .filter(|&n| n >= 0)
        .ok_or(BadMap("bad sparse map entry count"))? as u64;
    check_count(count)?;
    Ok(count)
}

pub fn check_count(count: u64) -> Result<(), BadMap> {
    if count > MAX_FRAGMENTS as u64 {
        return Err(BadMap("sparse map has more than 1048576 fragments"));
    }
    Ok(())
}

pub fn fragment(offset: Option<i64>, length: Option<i64>) -> Result<Fragment, BadMap> {
    match (offset, length) {
        (Some(offset), Some(length)) if offset >= 0 && length >= 0 => Ok(Fragment {
            offset: offset as u64,
            length: length as u64,
        }),
        (Some(_), Some(_)) => Err(BadMap("negative sparse offset or length")),
        _ => Err(BadMap("bad number in the sparse map")),
    }
}

/// The old GNU map entries of one block (header or extension): `(fragments, extended)`.
/// As in GNU, BSD and Go tar, an entry whose offset starts with NUL ends the list.
pub fn old_gnu_entries(area: &[u8], out: &mut Vec<Fragment>) -> Result<bool, BadMap> {
    let entries = area.len() / 24;
    for i in 0..entries {
        let entry = &area[i * 24..i * 24 + 24];
        if entry[0] == 0 {
            break;
        }
        let offset = parse_numeric(&entry[..12]).ok();
        let length = parse_numeric(&entry[12..]).ok();
        out.push(fragment(offset, length)?);
        check_count(out.len() as u64)?;
    }
    Ok(area[entries * 24] != 0)
}

/// The map of an old GNU sparse header block.
pub fn header_area<'a>(block: &Block<'a>) -> &'a [u8] {
    block.gnu_sparse()
}

/// Go's `validateSparseEntries`: in order, not overlapping, inside the file.
pub fn validate(fragments: &[Fragment], size: u64) -> Result<(), BadMap> {
    let mut end_of_previous = 0u64;
    for f in fragments {
        let end = f
            .offset
            .checked_add(f.length)
            .filter(|&end| end <= i64::MAX as u64)
            .ok_or(BadMap("sparse fragment overflows"))?;
        if end > size {
            return Err(BadMap("sparse fragment beyond the end of the file"));
        }
        if end_of_previous > f.offset {
            return Err(BadMap("sparse fragments overlap or are out of order"));
        }
        end_of_previous = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(offset: u64, length: u64) -> Fragment {
        Fragment { offset, length }
    }

    #[test]
    fn validation_follows_go() {
        assert!(validate(&[], 0).is_ok());
        assert!(validate(&[frag(0, 5), frag(5, 5)], 10).is_ok());
        assert!(validate(&[frag(0, 0), frag(10, 0)], 10).is_ok());
        assert!(validate(&[frag(0, 5), frag(4, 5)], 10).is_err());
        assert!(validate(&[frag(5, 1), frag(0, 1)], 10).is_err());
        assert!(validate(&[frag(0, 11)], 10).is_err());
        assert!(validate(&[frag(u64::MAX - 1, 5)], u64::MAX).is_err());
    }

    #[test]
    fn map_reader_splits_lines_across_blocks() {
        let mut reader = MapReader::default();
        let mut block = [0u8; BLOCK];
        block[..4].copy_from_slice(b"2\n10");
        reader.feed(&block);
        assert_eq!(reader.next_number(), Some(&b"2"[..]));
        // "10\0\0..." has no newline yet: the rest of the block is padding NULs.
        assert!(reader.next_number().is_none());
    }
}
