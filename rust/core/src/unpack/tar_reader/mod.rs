//! A streaming tar reader that reads what Go's `archive/tar` reader reads (containerd applies
//! layers with it), the same way: USTAR, PAX (global headers included), GNU (long names and
//! links, sparse files), old GNU, v7 and star.
//!
//! The rules that decide which files a layer holds are Go's, point by point:
//! - entries with no data (directories, links, devices, FIFOs) never have data, whatever their
//!   size field says: skipping it would hide the entries after them from us but not from a
//!   scanner built on Go or libarchive;
//! - PAX records are read by their length prefix, so values may hold newlines;
//! - of several `x`, `L` or `K` headers before one entry the last one counts; `L`/`K` win over
//!   PAX `path`/`linkpath`; an empty PAX value keeps the header's value;
//! - numeric fields are octal or base-256 two's complement; blank fields read as 0;
//! - the archive ends at two zero blocks, at a clean end of stream where a header would start,
//!   or during the padding after the last entry (GNU tar calls the last two errors).
//!
//! Anything Go would refuse is a `LayerFormatError` naming the entry and the rule.

pub mod header;
pub mod pax;
pub mod sparse;

use std::io::{self, BufRead, Read};

use super::decompress::read_full;
use super::error::{Result, UnpackError};
use header::{parse_numeric, parse_string, BadNumber, Block, Format, BLOCK};
use pax::{parse_go_int, parse_time, Records, Time};
use sparse::{Fragment, MapReader, PaxSparse};

/// Extended headers and long names larger than this are refused (Go's `maxSpecialFileSize`).
const MAX_SPECIAL_SIZE: u64 = 1 << 20;

/// Entry types.
pub mod kind {
    pub const REGULAR: u8 = b'0';
    pub const REGULAR_OLD: u8 = 0;
    pub const HARDLINK: u8 = b'1';
    pub const SYMLINK: u8 = b'2';
    pub const CHAR: u8 = b'3';
    pub const BLOCK: u8 = b'4';
    pub const DIR: u8 = b'5';
    pub const FIFO: u8 = b'6';
    pub const CONTIGUOUS: u8 = b'7';
    pub const PAX: u8 = b'x';
    pub const PAX_GLOBAL: u8 = b'g';
    pub const GNU_LONG_NAME: u8 = b'L';
    pub const GNU_LONG_LINK: u8 = b'K';
    pub const GNU_SPARSE: u8 = b'S';

    /// Types whose size field is never followed by data (Go's `isHeaderOnlyType`).
    pub fn header_only(flag: u8) -> bool {
        matches!(flag, HARDLINK | SYMLINK | CHAR | BLOCK | DIR | FIFO)
    }
}

/// One archive member, its metadata headers merged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The type flag; `\0` is already turned into a directory or a regular file.
    pub typeflag: u8,
    pub name: Vec<u8>,
    pub link: Vec<u8>,
    pub mode: i64,
    pub uid: i64,
    pub gid: i64,
    /// The file's size (for sparse files the real size, holes included).
    pub size: i64,
    pub mtime: Time,
    pub atime: Option<Time>,
    pub dev_major: i64,
    pub dev_minor: i64,
    /// The PAX records of the last `x` header before the entry (xattrs are `SCHILY.xattr.*`).
    pub records: Records,
    /// Data fragments of a sparse file; `None` for a dense one.
    pub sparse: Option<Vec<Fragment>>,
}

impl Entry {
    /// The name for messages.
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// Reads entries one after the other; an entry's data is read before asking for the next.
pub struct TarReader<R> {
    inner: R,
    /// Data bytes of the current entry not read yet.
    remaining: u64,
    /// Padding bytes after the current entry's data.
    padding: u64,
    block: [u8; BLOCK],
    scratch: Vec<u8>,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> TarReader<R> {
        TarReader {
            inner,
            remaining: 0,
            padding: 0,
            block: [0; BLOCK],
            scratch: Vec::new(),
        }
    }

    /// The stream below (to drain it once the archive has ended).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Data bytes of the current entry still to read.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Reads the current entry's data (its stored bytes: for a sparse file, the fragments one
    /// after the other). `Ok(0)` at its end; a stream that ends earlier is an error.
    pub fn read_data(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = loop {
            match self.inner.read(&mut buf[..want]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

impl<R: BufRead> TarReader<R> {
    /// The current entry's next stored bytes, straight from the stream's buffer (no copy):
    /// empty at the entry's end; a stream that ends earlier is an error. Pass how many were
    /// used to `consume_data`.
    pub fn data_buf(&mut self) -> io::Result<&[u8]> {
        if self.remaining == 0 {
            return Ok(&[]);
        }
        let buf = self.inner.fill_buf()?;
        if buf.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let n = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        Ok(&buf[..n])
    }

    /// Marks `n` bytes of the slice `data_buf` returned as read.
    pub fn consume_data(&mut self, n: usize) {
        let n = n.min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        self.inner.consume(n);
        self.remaining -= n as u64;
    }
}

impl<R: Read> TarReader<R> {
    /// The next entry, or `None` at the end of the archive.
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        let mut records: Option<Records> = None;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        loop {
            self.skip_data()?;
            if !self.skip_padding()? || !self.read_header()? {
                return Ok(None);
            }
            let block = self.block;
            let block = Block(&block);
            let mut entry = parse_block(&block)?;
            self.start_data(&entry)?;
            match entry.typeflag {
                kind::PAX | kind::PAX_GLOBAL => {
                    let data = self.read_special(&entry)?;
                    let parsed = Records::parse(&data).map_err(|e| bad(&entry, e.0))?;
                    if entry.typeflag == kind::PAX_GLOBAL {
                        // Returned as an entry of its own (containerd ignores it); it does
                        // not apply to later entries, and earlier `x`/`L`/`K` are dropped.
                        merge_records(&mut entry, parsed)?;
                        return Ok(Some(entry));
                    }
                    records = Some(parsed);
                }
                kind::GNU_LONG_NAME => {
                    long_name = Some(parse_string(&self.read_special(&entry)?).to_vec());
                }
                kind::GNU_LONG_LINK => {
                    long_link = Some(parse_string(&self.read_special(&entry)?).to_vec());
                }
                _ => {
                    if let Some(records) = records.take() {
                        merge_records(&mut entry, records)?;
                    }
                    // GNU long names win over PAX ones (Go applies them after the records).
                    if let Some(name) = long_name.take().filter(|n| !n.is_empty()) {
                        entry.name = name;
                    }
                    if let Some(link) = long_link.take().filter(|l| !l.is_empty()) {
                        entry.link = link;
                    }
                    if entry.typeflag == kind::REGULAR_OLD {
                        // Pre-POSIX archives mark directories with a trailing slash only.
                        entry.typeflag = if entry.name.ends_with(b"/") {
                            kind::DIR
                        } else {
                            kind::REGULAR
                        };
                    }
                    // The records may have changed the size.
                    self.start_data(&entry)?;
                    self.read_sparse_map(&mut entry, &block)?;
                    return Ok(Some(entry));
                }
            }
        }
    }

    /// Sets the data and padding to skip for `entry` (Go's `handleRegularFile`).
    fn start_data(&mut self, entry: &Entry) -> Result<()> {
        let size = if kind::header_only(entry.typeflag) {
            0
        } else {
            u64::try_from(entry.size).map_err(|_| bad(entry, "negative size"))?
        };
        self.remaining = size;
        self.padding = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        Ok(())
    }

    fn skip_data(&mut self) -> Result<()> {
        if self.scratch.is_empty() && self.remaining > 0 {
            self.scratch = vec![0; 64 << 10];
        }
        while self.remaining > 0 {
            let mut scratch = std::mem::take(&mut self.scratch);
            let read = self.read_data(&mut scratch);
            self.scratch = scratch;
            read.map_err(UnpackError::Source)?;
        }
        Ok(())
    }

    /// `false` when the stream ended inside the padding: Go takes that as the archive's end.
    fn skip_padding(&mut self) -> Result<bool> {
        let want = std::mem::take(&mut self.padding) as usize;
        let mut pad = [0u8; BLOCK];
        Ok(read_full(&mut self.inner, &mut pad[..want]).map_err(UnpackError::Source)? == want)
    }

    /// Reads the next header block; `false` at the end of the archive.
    fn read_header(&mut self) -> Result<bool> {
        if !self.read_block()? {
            return Ok(false);
        }
        if !Block(&self.block).is_zero() {
            return Ok(true);
        }
        if !self.read_block()? || Block(&self.block).is_zero() {
            return Ok(false);
        }
        let name = String::from_utf8_lossy(parse_string(Block(&self.block).name())).into_owned();
        Err(UnpackError::format(
            Some(&name),
            "a header follows a zero block (the end-of-archive marker)",
        ))
    }

    /// Reads one block; `false` when the stream ends exactly before it.
    fn read_block(&mut self) -> Result<bool> {
        match read_full(&mut self.inner, &mut self.block).map_err(UnpackError::Source)? {
            0 => Ok(false),
            BLOCK => Ok(true),
            _ => Err(UnpackError::Source(io::ErrorKind::UnexpectedEof.into())),
        }
    }

    /// The whole data of an `x`, `g`, `L` or `K` header.
    fn read_special(&mut self, entry: &Entry) -> Result<Vec<u8>> {
        if self.remaining > MAX_SPECIAL_SIZE {
            return Err(bad(entry, "extended header or long name larger than 1 MiB"));
        }
        let mut data = vec![0u8; self.remaining as usize];
        let mut filled = 0;
        while filled < data.len() {
            filled += self
                .read_data(&mut data[filled..])
                .map_err(UnpackError::Source)?;
        }
        Ok(data)
    }

    /// Go's `handleSparseFile`: the map of an old GNU `S` entry or of a PAX sparse file.
    fn read_sparse_map(&mut self, entry: &mut Entry, block: &Block<'_>) -> Result<()> {
        let fragments = if entry.typeflag == kind::GNU_SPARSE {
            if block.format() != Format::Gnu {
                return Err(bad(entry, "sparse entry type in a non-GNU header"));
            }
            entry.size = parse_numeric(block.gnu_real_size())
                .map_err(|_| bad(entry, "invalid numeric field realsize"))?;
            let mut fragments = Vec::new();
            let mut extended = sparse::old_gnu_entries(block.gnu_sparse(), &mut fragments)
                .map_err(|e| bad(entry, e.0))?;
            while extended {
                // Extension blocks come before the data and are not counted in its size.
                if !self.read_block()? {
                    return Err(UnpackError::Source(io::ErrorKind::UnexpectedEof.into()));
                }
                let area = self.block;
                extended = sparse::old_gnu_entries(&area[..21 * 24 + 1], &mut fragments)
                    .map_err(|e| bad(entry, e.0))?;
            }
            fragments
        } else {
            let in_data = match sparse::pax_kind(&entry.records) {
                PaxSparse::None => return Ok(()),
                PaxSparse::InRecords => false,
                PaxSparse::InData => true,
            };
            if let Some(name) = entry.records.get(b"GNU.sparse.name") {
                if !name.is_empty() {
                    entry.name = name.to_vec();
                }
            }
            let size = entry
                .records
                .get(b"GNU.sparse.size")
                .filter(|s| !s.is_empty())
                .or_else(|| entry.records.get(b"GNU.sparse.realsize"));
            if let Some(size) = size.filter(|s| !s.is_empty()) {
                entry.size = parse_go_int(size).ok_or_else(|| bad(entry, "bad GNU.sparse.size"))?;
            }
            if in_data {
                self.read_map_from_data(entry)?
            } else {
                sparse::from_records(&entry.records).map_err(|e| bad(entry, e.0))?
            }
        };
        if kind::header_only(entry.typeflag) {
            return Err(bad(entry, "sparse map on an entry without data"));
        }
        let size = u64::try_from(entry.size).map_err(|_| bad(entry, "negative size"))?;
        sparse::validate(&fragments, size).map_err(|e| bad(entry, e.0))?;
        // Go fails reading such a file (errMissData / errUnrefData); we fail before writing.
        let stored: u64 = fragments.iter().map(|f| f.length).sum();
        if stored != self.remaining {
            return Err(bad(
                entry,
                "sparse map does not match the stored data (missing or unreferenced data)",
            ));
        }
        entry.sparse = Some(fragments);
        Ok(())
    }

    /// GNU sparse 1.0: the map is the first blocks of the data.
    fn read_map_from_data(&mut self, entry: &Entry) -> Result<Vec<Fragment>> {
        let mut map = MapReader::default();
        let mut next = |reader: &mut Self| -> Result<Vec<u8>> {
            loop {
                if let Some(token) = map.next_number() {
                    return Ok(token.to_vec());
                }
                let mut block = [0u8; BLOCK];
                let mut filled = 0;
                while filled < BLOCK {
                    let read = reader
                        .read_data(&mut block[filled..])
                        .map_err(UnpackError::Source)?;
                    if read == 0 {
                        // Go's mustReadFull: a map cut short by the end of the data is
                        // ErrHeader, never a wait for bytes that cannot come.
                        return Err(bad(entry, "sparse map truncated by the end of the data"));
                    }
                    filled += read;
                }
                map.feed(&block);
            }
        };
        let count = sparse::count_from(&next(self)?).map_err(|e| bad(entry, e.0))?;
        let mut fragments = Vec::with_capacity(count.min(1024) as usize);
        for _ in 0..count {
            let offset = parse_go_int(&next(self)?);
            let length = parse_go_int(&next(self)?);
            fragments.push(sparse::fragment(offset, length).map_err(|e| bad(entry, e.0))?);
        }
        Ok(fragments)
    }
}

fn bad(entry: &Entry, rule: &str) -> UnpackError {
    UnpackError::format(Some(&entry.display_name()), rule)
}

/// Decodes a header block (Go's `readHeader`).
fn parse_block(block: &Block<'_>) -> Result<Entry> {
    let mut name = parse_string(block.name()).to_vec();
    let format = block.format();
    let fail = |rule: String| UnpackError::format(Some(&String::from_utf8_lossy(&name)), rule);
    if format == Format::Unknown {
        return Err(fail("not a tar header (checksum mismatch)".into()));
    }
    let number = |field: &[u8], what: &str| {
        parse_numeric(field).map_err(|BadNumber| fail(format!("invalid numeric field {what}")))
    };
    let mut entry = Entry {
        typeflag: block.typeflag(),
        name: Vec::new(),
        link: parse_string(block.link_name()).to_vec(),
        mode: number(block.mode(), "mode")?,
        uid: number(block.uid(), "uid")?,
        gid: number(block.gid(), "gid")?,
        size: number(block.size(), "size")?,
        mtime: Time {
            secs: number(block.mtime(), "mtime")?,
            nanos: 0,
        },
        atime: None,
        dev_major: 0,
        dev_minor: 0,
        records: Records::default(),
        sparse: None,
    };
    if format != Format::V7 {
        entry.dev_major = number(block.dev_major(), "devmajor")?;
        entry.dev_minor = number(block.dev_minor(), "devminor")?;
        let prefix = match format {
            Format::Ustar => parse_string(block.ustar_prefix()),
            Format::Star => {
                let atime = number(block.star_atime(), "atime")?;
                number(&block.0[488..500], "ctime")?;
                entry.atime = Some(Time {
                    secs: atime,
                    nanos: 0,
                });
                parse_string(block.star_prefix())
            }
            _ => {
                // GNU: atime and ctime, read leniently. Go before 1.8 wrote a USTAR prefix
                // here; when the times do not parse, an ASCII prefix is taken as one.
                let time = |field: &[u8]| match field[0] {
                    0 => Ok(None),
                    _ => parse_numeric(field).map(Some),
                };
                match (time(block.gnu_atime()), time(block.gnu_ctime())) {
                    (Ok(atime), Ok(_)) => {
                        entry.atime = atime.map(|secs| Time { secs, nanos: 0 });
                        &[][..]
                    }
                    _ => {
                        let prefix = parse_string(block.ustar_prefix());
                        if prefix.is_ascii() {
                            prefix
                        } else {
                            &[][..]
                        }
                    }
                }
            }
        };
        if !prefix.is_empty() {
            let mut full = prefix.to_vec();
            full.push(b'/');
            full.extend_from_slice(&name);
            name = full;
        }
    }
    entry.name = name;
    Ok(entry)
}

/// Go's `mergePAX`: the records override the header's fields; an empty value keeps the header's.
fn merge_records(entry: &mut Entry, records: Records) -> Result<()> {
    for (key, value) in records.iter() {
        if value.is_empty() {
            continue;
        }
        let number = || parse_go_int(value);
        let time = || parse_time(value);
        let ok = match key {
            b"path" => {
                entry.name = value.to_vec();
                true
            }
            b"linkpath" => {
                entry.link = value.to_vec();
                true
            }
            b"uid" => number().map(|v| entry.uid = v).is_some(),
            b"gid" => number().map(|v| entry.gid = v).is_some(),
            b"size" => number().map(|v| entry.size = v).is_some(),
            b"mtime" => time().map(|t| entry.mtime = t).is_some(),
            b"atime" => time().map(|t| entry.atime = Some(t)).is_some(),
            b"ctime" => time().is_some(),
            _ => true,
        };
        if !ok {
            let key = String::from_utf8_lossy(key).into_owned();
            return Err(bad(entry, &format!("malformed PAX {key} record")));
        }
    }
    entry.records = records;
    Ok(())
}

#[cfg(test)]
mod tests;
