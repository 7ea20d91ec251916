//! One 512-byte tar header block: format detection, checksum and field decoding, as Go's
//! `archive/tar` does them (`format.go`, `strconv.go`, `Reader.readHeader`).
//!
//! containerd reads layers with Go's reader, so a node accepts exactly what it accepts. Where
//! GNU tar is stricter or looser than Go, Go is followed and the difference noted here.

pub const BLOCK: usize = 512;

/// The header layouts Go tells apart (only what changes how a block is read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Checksum wrong: not a header at all.
    Unknown,
    /// No magic: Unix v7 (no owner names, devices or prefix).
    V7,
    /// `ustar\0`: POSIX ustar and pax (155-byte prefix).
    Ustar,
    /// `ustar\0` with the `tar\0` trailer: Schily's star (131-byte prefix, atime, ctime).
    Star,
    /// `ustar ` + ` \0`: GNU and old GNU (atime, ctime, sparse map, no prefix).
    Gnu,
}

/// A field that is not a number in any encoding Go reads.
#[derive(Debug, PartialEq, Eq)]
pub struct BadNumber;

/// The bytes before the first NUL (Go's `parser.parseString`).
pub fn parse_string(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == 0) {
        Some(nul) => &field[..nul],
        None => field,
    }
}

/// An octal field: leading and trailing spaces and NULs are ignored, so a blank field (all
/// spaces or all NULs, as Maven's plexus archiver writes) reads as 0, as in Go, GNU tar and
/// libarchive.
pub fn parse_octal(field: &[u8]) -> Result<i64, BadNumber> {
    let trimmed = trim(field, |b| b == b' ' || b == 0);
    let digits = parse_string(trimmed);
    if trimmed.is_empty() {
        return Ok(0);
    }
    // Go: strconv.ParseUint(s, 8, 64): digits only, no sign, no prefix, no overflow.
    if digits.is_empty() {
        return Err(BadNumber);
    }
    let mut value: u64 = 0;
    for &b in digits {
        if !(b'0'..=b'7').contains(&b) {
            return Err(BadNumber);
        }
        value = value
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(BadNumber)?;
    }
    // Go converts with int64(x); a 12-byte field cannot reach 2^63, so this never wraps.
    i64::try_from(value).map_err(|_| BadNumber)
}

/// A numeric field: base-256 when the top bit of the first byte is set (two's complement, so
/// negative times written by GNU tar and Python read as before 1970, not year 2446), octal
/// otherwise.
pub fn parse_numeric(field: &[u8]) -> Result<i64, BadNumber> {
    let Some(&first) = field.first() else {
        return Ok(0);
    };
    if first & 0x80 == 0 {
        return parse_octal(field);
    }
    let invert: u8 = if first & 0x40 != 0 { 0xff } else { 0 };
    let mut value: u64 = 0;
    for (i, &byte) in field.iter().enumerate() {
        let mut c = byte ^ invert;
        if i == 0 {
            c &= 0x7f; // the marker bit is not part of the number
        }
        if value >> 56 != 0 {
            return Err(BadNumber);
        }
        value = value << 8 | u64::from(c);
    }
    if value >> 63 != 0 {
        return Err(BadNumber);
    }
    let value = value as i64;
    Ok(if invert == 0xff { !value } else { value })
}

fn trim(field: &[u8], strip: impl Fn(u8) -> bool) -> &[u8] {
    let start = field.iter().position(|&b| !strip(b)).unwrap_or(field.len());
    let end = field
        .iter()
        .rposition(|&b| !strip(b))
        .map_or(start, |i| i + 1);
    &field[start..end]
}

/// A header block and its decoded fields.
pub struct Block<'a>(pub &'a [u8; BLOCK]);

impl<'a> Block<'a> {
    pub fn name(&self) -> &'a [u8] {
        &self.0[0..100]
    }
    pub fn mode(&self) -> &'a [u8] {
        &self.0[100..108]
    }
    pub fn uid(&self) -> &'a [u8] {
        &self.0[108..116]
    }
    pub fn gid(&self) -> &'a [u8] {
        &self.0[116..124]
    }
    pub fn size(&self) -> &'a [u8] {
        &self.0[124..136]
    }
    pub fn mtime(&self) -> &'a [u8] {
        &self.0[136..148]
    }
    pub fn typeflag(&self) -> u8 {
        self.0[156]
    }
    pub fn link_name(&self) -> &'a [u8] {
        &self.0[157..257]
    }
    pub fn dev_major(&self) -> &'a [u8] {
        &self.0[329..337]
    }
    pub fn dev_minor(&self) -> &'a [u8] {
        &self.0[337..345]
    }
    pub fn ustar_prefix(&self) -> &'a [u8] {
        &self.0[345..500]
    }
    pub fn star_prefix(&self) -> &'a [u8] {
        &self.0[345..476]
    }
    pub fn star_atime(&self) -> &'a [u8] {
        &self.0[476..488]
    }
    pub fn gnu_atime(&self) -> &'a [u8] {
        &self.0[345..357]
    }
    pub fn gnu_ctime(&self) -> &'a [u8] {
        &self.0[357..369]
    }
    /// The old GNU sparse map in the header: 4 entries and the "extended" flag.
    pub fn gnu_sparse(&self) -> &'a [u8] {
        &self.0[386..483]
    }
    pub fn gnu_real_size(&self) -> &'a [u8] {
        &self.0[483..495]
    }

    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }

    /// Go's `block.getFormat`: the checksum must match (unsigned or signed sum, as old Sun tar
    /// wrote), then the magic decides.
    pub fn format(&self) -> Format {
        let Ok(stored) = parse_octal(&self.0[148..156]) else {
            return Format::Unknown;
        };
        let (unsigned, signed) = self.checksums();
        if stored != unsigned && stored != signed {
            return Format::Unknown;
        }
        let magic = &self.0[257..263];
        let version = &self.0[263..265];
        let trailer = &self.0[508..512];
        match (magic, version) {
            (b"ustar\0", _) if trailer == b"tar\0" => Format::Star,
            (b"ustar\0", _) => Format::Ustar,
            (b"ustar ", b" \0") => Format::Gnu,
            _ => Format::V7,
        }
    }

    fn checksums(&self) -> (i64, i64) {
        let (mut unsigned, mut signed) = (0i64, 0i64);
        for (i, &byte) in self.0.iter().enumerate() {
            let c = if (148..156).contains(&i) { b' ' } else { byte };
            unsigned += i64::from(c);
            signed += i64::from(c as i8);
        }
        (unsigned, signed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields_allow_padding_and_blanks() {
        assert_eq!(parse_octal(b"0000644\0"), Ok(0o644));
        assert_eq!(parse_octal(b"  644 \0"), Ok(0o644));
        assert_eq!(parse_octal(b"        "), Ok(0));
        assert_eq!(parse_octal(b"\0\0\0\0\0\0\0\0"), Ok(0));
        assert_eq!(parse_octal(b""), Ok(0));
        assert_eq!(parse_octal(b"12\x0034"), Ok(0o12)); // stops at the first NUL
        assert_eq!(parse_octal(b"12 34"), Err(BadNumber));
        assert_eq!(parse_octal(b"0008"), Err(BadNumber));
        assert_eq!(parse_octal(b"+12"), Err(BadNumber));
        assert_eq!(parse_octal(b"7777777777777777777777"), Err(BadNumber));
    }

    #[test]
    fn base256_fields_are_twos_complement() {
        // -1 and -2 as 12-byte fields (GNU tar writes negative mtimes like this).
        let mut minus_one = [0xffu8; 12];
        assert_eq!(parse_numeric(&minus_one), Ok(-1));
        minus_one[11] = 0xfe;
        assert_eq!(parse_numeric(&minus_one), Ok(-2));
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[4..].copy_from_slice(&(1u64 << 40).to_be_bytes());
        assert_eq!(parse_numeric(&big), Ok(1 << 40));
        // -1e9 (1938) as a 12-byte field.
        let mut old = [0xffu8; 12];
        old[4..].copy_from_slice(&(-1_000_000_000i64).to_be_bytes());
        assert_eq!(parse_numeric(&old), Ok(-1_000_000_000));
        // More than 63 bits overflows.
        let mut huge = [0xffu8; 12];
        huge[0] = 0x80;
        assert_eq!(parse_numeric(&huge), Err(BadNumber));
    }
}
