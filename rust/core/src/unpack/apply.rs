//! Applying tar entries to the root, one at a time, with `*at()` calls relative to descriptors
//! obtained from `root.rs`; nothing is ever resolved by path.

use std::collections::HashMap;
use std::io::{self, BufRead, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{
    chmodat, chownat, fchmod, fchown, fsetxattr, fstat, futimens, linkat, lsetxattr, makedev,
    mkdirat, mknodat, openat, statat, symlinkat, utimensat, AtFlags, FileType, Gid, Mode, OFlags,
    Timespec, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;

use super::error::{Result, UnpackError};
use super::limits::{self, UnpackLimits};
use super::root::Root;
use super::safe_path::RelPath;
use super::tar_reader::pax::Time;
use super::tar_reader::sparse::Fragment;
use super::tar_reader::{kind, Entry, TarReader};
use super::whiteout::{self, LayerPaths, Whiteout};

/// At most this many skipped entries are listed one by one; the rest are counted.
const MAX_SKIPPED_LISTED: usize = 10_000;
const SETID_BITS: u32 = 0o6000;
const SETGID_BIT: u32 = 0o2000;
/// xattrs that steer an overlay mounted with `userxattr` (`trusted.*` are never set at all).
const USER_OVERLAY_PREFIX: &[u8] = b"user.overlay.";
/// PAX records that carry xattrs (Schily's, written by GNU tar, bsdtar, Go and Docker).
const XATTR_RECORD_PREFIX: &[u8] = b"SCHILY.xattr.";

/// An xattr from the archive: name and value, both raw bytes.
type XattrRecord = (Vec<u8>, Vec<u8>);

/// What applying the entries produced (the digests are added by the caller).
#[derive(Debug, Default)]
pub struct ApplyStats {
    pub entries: u64,
    pub bytes_written: u64,
    pub whiteouts: u64,
    pub skipped: Vec<(String, String)>,
    skipped_unlisted: u64,
}

impl ApplyStats {
    pub fn into_skipped(mut self) -> Vec<(String, String)> {
        if self.skipped_unlisted > 0 {
            self.skipped.push((
                String::new(),
                format!("{} more skipped entries not listed", self.skipped_unlisted),
            ));
        }
        self.skipped
    }
}

/// Whether ownership, device nodes and set-id bits are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privileges {
    /// Decide from the effective user id.
    Auto,
    Root,
    Unprivileged,
}

impl Privileges {
    /// Whether entries are applied with root's powers.
    pub fn as_root(self) -> bool {
        match self {
            Privileges::Auto => rustix::process::geteuid().is_root(),
            Privileges::Root => true,
            Privileges::Unprivileged => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    CharDevice,
    BlockDevice,
    Fifo,
}

/// An entry's header, read before its data.
struct Meta {
    kind: Kind,
    name: String,
    path: RelPath,
    link: Option<Vec<u8>>,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: Timespec,
    atime: Timespec,
    device: (u32, u32),
    xattrs: Vec<XattrRecord>,
    /// The data fragments of a sparse file (the rest is holes) and its size.
    sparse: Option<(Vec<Fragment>, u64)>,
}

/// Parent directories kept open (a directory tree deeper than this reopens some).
const PARENTS_KEPT: usize = 8;

/// A parent directory kept open for the entries that follow.
struct OpenDir {
    path: Vec<u8>,
    fd: OwnedFd,
    not_setgid: bool,
}

/// Directory attributes, applied when the layer is complete (writing children changes mtimes,
/// and a read-only directory must stay writable until then).
struct DirMeta {
    path: RelPath,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: Timespec,
    atime: Timespec,
    xattrs: Vec<XattrRecord>,
    /// Created by this entry with the wanted owner already (no fchown needed).
    owner_set: bool,
    /// Created by this entry with the wanted mode already (no fchmod needed).
    mode_set: bool,
}

/// Applies the entries of one layer.
pub struct Applier<'r> {
    root: &'r Root,
    limits: UnpackLimits,
    as_root: bool,
    umask: u32,
    stats: ApplyStats,
    layer_paths: LayerPaths,
    dirs: Vec<DirMeta>,
    dir_index: HashMap<Vec<u8>, usize>,
    /// The parent directories opened last, the current entry's first: tar lists a
    /// directory's files together and comes back to it after each subdirectory.
    parents: Vec<OpenDir>,
    /// Effective uid and gid: a file created with them needs no `fchown`.
    our_ids: (u32, u32),
}

impl<'r> Applier<'r> {
    pub fn new(root: &'r Root, limits: UnpackLimits, privileges: Privileges) -> Applier<'r> {
        let as_root = privileges.as_root();
        Applier {
            root,
            limits,
            as_root,
            umask: current_umask(),
            stats: ApplyStats::default(),
            layer_paths: LayerPaths::default(),
            dirs: Vec::new(),
            dir_index: HashMap::new(),
            parents: Vec::with_capacity(PARENTS_KEPT),
            our_ids: (
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
            ),
        }
    }

    /// Applies one entry. Stream errors inside are reported as `io::Error`s for the caller to
    /// reconcile with the stream's own typed error.
    pub fn apply<R: BufRead>(&mut self, reader: &mut TarReader<R>, entry: Entry) -> Result<()> {
        self.stats.entries += 1;
        limits::check("entries", self.limits.max_entries, self.stats.entries, None)?;
        let Some(meta) = self.read_meta(entry)? else {
            return Ok(());
        };
        let (parent, leaf) = meta.path.split_last();
        match whiteout::classify(leaf) {
            Whiteout::None => {}
            Whiteout::Remove(target) => {
                let target = meta.path_parent().join(target);
                return self.remove_lower(&meta.name, &target);
            }
            Whiteout::Opaque => {
                let dir = RelPath::parse(parent).expect("already normalised");
                return self.hide_lower_children(&meta.name, &dir);
            }
            Whiteout::Meta => {
                self.skip(&meta.name, "aufs metadata entry");
                return Ok(());
            }
            Whiteout::Bare => {
                return Err(UnpackError::format(
                    Some(&meta.name),
                    "whiteout without a name",
                ));
            }
            Whiteout::DotName(_) => {
                return Err(UnpackError::unsafe_entry(
                    &meta.name,
                    "whiteout names the directory itself or its parent",
                ));
            }
        }
        if meta.path.is_root() {
            // containerd ignores whatever resolves to the root ("ignored: resolved to root"):
            // `./` is common, and the root's own attributes are the caller's.
            if meta.kind != Kind::Dir {
                self.skip(&meta.name, "entry resolves to the root directory: ignored");
            }
            return Ok(());
        }
        match meta.kind {
            Kind::File => self.write_file(reader, &meta),
            Kind::Dir => self.make_dir(meta),
            Kind::Symlink => self.make_symlink(&meta),
            Kind::Hardlink => self.make_hardlink(&meta),
            Kind::CharDevice | Kind::BlockDevice | Kind::Fifo => self.make_node(&meta),
        }
    }

    /// Applies the deferred directory attributes; returns the statistics.
    pub fn finish(mut self) -> Result<ApplyStats> {
        self.forget_parents();
        let dirs = std::mem::take(&mut self.dirs);
        for dir in dirs.iter().rev() {
            self.finish_dir(dir)?;
        }
        // Last, as lower directories widened above may hold this layer's directories.
        self.root
            .widened()
            .restore()
            .map_err(|e| UnpackError::from_io(None, e))?;
        Ok(self.stats)
    }

    fn skip(&mut self, name: &str, reason: &str) {
        if self.stats.skipped.len() < MAX_SKIPPED_LISTED {
            self.stats
                .skipped
                .push((name.to_owned(), reason.to_owned()));
        } else {
            self.stats.skipped_unlisted += 1;
        }
    }

    // --- headers ----------------------------------------------------------------------

    /// Validates an entry's header; `None` for entries that carry no content.
    fn read_meta(&mut self, entry: Entry) -> Result<Option<Meta>> {
        let name = entry.display_name();
        let fmt = |reason: String| UnpackError::format(Some(&name), reason);
        limits::check(
            "path length",
            self.limits.max_path_length,
            entry.name.len() as u64,
            Some(&name),
        )?;
        let kind = match entry.typeflag {
            // containerd refuses `7` and `S` ("unhandled tar header type"); Go, GNU tar and
            // libarchive read them as regular files, and so do we: every reader agrees on
            // their content.
            kind::REGULAR | kind::CONTIGUOUS | kind::GNU_SPARSE => Kind::File,
            kind::DIR => Kind::Dir,
            kind::SYMLINK => Kind::Symlink,
            kind::HARDLINK => Kind::Hardlink,
            kind::CHAR => Kind::CharDevice,
            kind::BLOCK => Kind::BlockDevice,
            kind::FIFO => Kind::Fifo,
            // Global PAX headers are ignored, as containerd does.
            kind::PAX_GLOBAL => return Ok(None),
            other => {
                return Err(fmt(format!(
                    "unsupported entry type {:?}",
                    char::from(other)
                )))
            }
        };
        let mode = (entry.mode & 0o7777) as u32;
        let id = |what: &str, value: i64| {
            u64::try_from(value).map_err(|_| fmt(format!("negative {what} {value}")))
        };
        let uid = id("uid", entry.uid)?;
        let gid = id("gid", entry.gid)?;
        let device = if matches!(kind, Kind::CharDevice | Kind::BlockDevice) {
            let number = |what: &str, value: i64| {
                u32::try_from(value).map_err(|_| fmt(format!("{what} {value} out of range")))
            };
            (
                number("device major", entry.dev_major)?,
                number("device minor", entry.dev_minor)?,
            )
        } else {
            (0, 0)
        };
        let mut sparse = None;
        if kind == Kind::File {
            let size = id("size", entry.size)?;
            // The apparent size counts, holes included.
            limits::check("file size", self.limits.max_file_size, size, Some(&name))?;
            sparse = entry.sparse.map(|fragments| (fragments, size));
        }
        let has_link = matches!(kind, Kind::Symlink | Kind::Hardlink);
        if has_link {
            limits::check(
                "link target length",
                self.limits.max_path_length,
                entry.link.len() as u64,
                Some(&name),
            )?;
        }
        let xattrs = entry
            .records
            .iter()
            .filter_map(|(key, value)| {
                let attr = key.strip_prefix(XATTR_RECORD_PREFIX)?;
                Some((attr.to_vec(), value.to_vec()))
            })
            .collect();
        let path = RelPath::parse(&entry.name)
            .map_err(|e| UnpackError::unsafe_entry(&name, e.reason()))?;
        // containerd sets atime to the later of atime and mtime, both bounded.
        let atime = entry.atime.map_or(entry.mtime, |a| a.max(entry.mtime));
        Ok(Some(Meta {
            kind,
            name,
            path,
            link: has_link.then_some(entry.link),
            mode,
            uid,
            gid,
            mtime: bound_time(entry.mtime),
            atime: bound_time(atime),
            device,
            xattrs,
            sparse,
        }))
    }

    // --- resolution -------------------------------------------------------------------

    /// The entry's parent directory (created if missing), from the cache of recent ones.
    fn parent_fd(&mut self, meta: &Meta) -> Result<BorrowedFd<'_>> {
        let (parent, _) = meta.path.split_last();
        match self.parents.iter().position(|d| d.path == parent) {
            Some(0) => {}
            Some(i) => self.parents[..=i].rotate_right(1),
            None => {
                let fd = self
                    .root
                    .open_dir(parent, true)
                    .map_err(|e| resolve_error(&meta.name, e))?;
                // One fstat per directory saves an fchown per file (as root) and an fchmod per
                // subdirectory.
                let not_setgid = fstat(&fd).is_ok_and(|st| st.st_mode & SETGID_BIT == 0);
                self.parents.truncate(PARENTS_KEPT - 1);
                self.parents.insert(
                    0,
                    OpenDir {
                        path: parent.to_vec(),
                        fd,
                        not_setgid,
                    },
                );
            }
        }
        Ok(self.parents[0].fd.as_fd())
    }

    /// Whether the last entry's parent is still open and not set-group-ID: what is created in
    /// it gets our own group (and a new directory no set-gid bit).
    fn parent_not_setgid(&self) -> bool {
        self.parents.first().is_some_and(|d| d.not_setgid)
    }

    /// Something was removed: a cached descriptor may now name a detached directory.
    fn forget_parents(&mut self) {
        self.parents.clear();
    }

    // --- whiteouts --------------------------------------------------------------------

    fn remove_lower(&mut self, name: &str, target: &RelPath) -> Result<()> {
        self.stats.whiteouts += 1;
        if self.layer_paths.contains(target.as_bytes()) {
            return Ok(()); // a whiteout never hides its own layer's entries
        }
        let (parent, leaf) = target.split_last();
        let dir = match self.root.open_dir(parent, false) {
            Ok(dir) => dir,
            // Nothing below a missing directory or a file: nothing to delete.
            Err(e) if matches!(errno(&e), Some(Errno::NOENT | Errno::NOTDIR)) => return Ok(()),
            Err(e) => return Err(resolve_error(name, e)),
        };
        self.forget_parents();
        self.root
            .remove_all_at(dir.as_fd(), leaf)
            .map_err(|e| UnpackError::from_io(Some(name), e))
    }

    fn hide_lower_children(&mut self, name: &str, dir: &RelPath) -> Result<()> {
        self.stats.whiteouts += 1;
        let fd = match self.root.open_dir(dir.as_bytes(), false) {
            Ok(fd) => fd,
            Err(e) if matches!(errno(&e), Some(Errno::NOENT | Errno::NOTDIR)) => return Ok(()),
            Err(e) => return Err(resolve_error(name, e)),
        };
        self.forget_parents();
        self.clean_lower(fd.as_fd(), b".", dir)
            .map_err(|e| UnpackError::from_io(Some(name), e))
    }

    /// Removes the children of `dir/name` that this layer did not write, recursing into the
    /// directories it did write (they may still hold lower content).
    fn clean_lower(&self, parent: BorrowedFd<'_>, name: &[u8], path: &RelPath) -> io::Result<()> {
        let mut keep_dirs = Vec::new();
        let layer_paths = &self.layer_paths;
        self.root.empty_dir_at(parent, name, &mut |child| {
            let kept = layer_paths.contains(path.join(child).as_bytes());
            if kept {
                keep_dirs.push(child.to_vec());
            }
            kept
        })?;
        if keep_dirs.is_empty() {
            return Ok(());
        }
        let fd = openat(
            parent,
            name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        for child in keep_dirs {
            match statat(&fd, child.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                    self.clean_lower(fd.as_fd(), &child, &path.join(&child))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    // --- entries ----------------------------------------------------------------------

    /// Runs `create` in the parent; when the name exists, removes it and tries once more.
    /// The outer error is a resolution or removal failure, the inner one `create`'s errno.
    fn create_replacing(
        &mut self,
        meta: &Meta,
        mut create: impl FnMut(BorrowedFd<'_>, &[u8]) -> rustix::io::Result<()>,
    ) -> Result<std::result::Result<(), Errno>> {
        let (_, leaf) = meta.path.split_last();
        let leaf = leaf.to_vec();
        let root = self.root;
        let parent = self.parent_fd(meta)?;
        // A lower layer's read-only directory is widened when we may not write in it.
        match root.widened().retry(parent, || create(parent, &leaf)) {
            Err(Errno::EXIST) => {}
            other => return Ok(other),
        }
        root.remove_all_at(parent, &leaf)
            .map_err(|e| UnpackError::from_io(Some(&meta.name), e))?;
        let result = create(parent, &leaf);
        self.forget_parents();
        Ok(result)
    }

    /// `create_replacing` with `create`'s errors reported as entry errors.
    fn create_or_fail(
        &mut self,
        meta: &Meta,
        create: impl FnMut(BorrowedFd<'_>, &[u8]) -> rustix::io::Result<()>,
    ) -> Result<()> {
        self.create_replacing(meta, create)?
            .map_err(|e| UnpackError::from_io(Some(&meta.name), e.into()))
    }

    fn file_mode(&mut self, meta: &Meta) -> u32 {
        if !self.as_root && meta.mode & SETID_BITS != 0 {
            self.skip(
                &meta.name,
                "setuid/setgid bits removed (not running as root)",
            );
            return meta.mode & !SETID_BITS;
        }
        meta.mode
    }

    fn write_file<R: BufRead>(&mut self, reader: &mut TarReader<R>, meta: &Meta) -> Result<()> {
        let mode = self.file_mode(meta);
        let mut file: Option<OwnedFd> = None;
        self.create_or_fail(meta, |dir, leaf| {
            file = Some(openat(
                dir,
                leaf,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode & 0o777),
            )?);
            Ok(())
        })?;
        // Created by us: owned by our ids, and by our group unless the parent is set-gid.
        let owned_as_wanted = self.parent_not_setgid()
            && (meta.uid, meta.gid) == (u64::from(self.our_ids.0), u64::from(self.our_ids.1));
        let mut fd = std::fs::File::from(file.expect("created"));
        match &meta.sparse {
            None => self.copy_data(reader, meta, &fd, u64::MAX)?,
            Some((fragments, size)) => {
                self.write_sparse(reader, meta, &mut fd, fragments, *size)?
            }
        }
        let io_err = |e: Errno| UnpackError::from_io(Some(&meta.name), e.into());
        if self.as_root && !owned_as_wanted {
            fchown(&fd, Some(uid(meta)?), Some(gid(meta)?)).map_err(io_err)?;
        }
        // containerd's order: owner, xattrs, mode, times. A POSIX ACL xattr rewrites the mode;
        // creation applied the umask and chown cleared set-id bits: set the exact mode.
        self.set_xattrs(fd.as_fd(), &meta.name, &meta.xattrs)?;
        if mode & self.umask != 0 || mode & !0o777 != 0 || !meta.xattrs.is_empty() {
            fchmod(&fd, Mode::from_raw_mode(mode)).map_err(io_err)?;
        }
        futimens(&fd, &times(meta.mtime, meta.atime)).map_err(io_err)?;
        self.layer_paths.insert(&meta.path);
        Ok(())
    }

    /// Writes the fragments of a sparse file where they belong and leaves holes between them
    /// (a seek, not zeros), then sets the apparent size.
    fn write_sparse<R: BufRead>(
        &mut self,
        reader: &mut TarReader<R>,
        meta: &Meta,
        fd: &mut std::fs::File,
        fragments: &[Fragment],
        size: u64,
    ) -> Result<()> {
        let io_err = |e: io::Error| UnpackError::from_io(Some(&meta.name), e);
        for fragment in fragments {
            if fragment.length == 0 {
                continue;
            }
            fd.seek(SeekFrom::Start(fragment.offset)).map_err(io_err)?;
            self.copy_data(reader, meta, fd, fragment.length)?;
        }
        fd.set_len(size).map_err(io_err)
    }

    /// Copies at most `limit` bytes of the entry's data to `fd` (all of it with `u64::MAX`),
    /// writing straight from the stream's chunks.
    fn copy_data<R: BufRead>(
        &mut self,
        reader: &mut TarReader<R>,
        meta: &Meta,
        fd: &std::fs::File,
        limit: u64,
    ) -> Result<()> {
        let mut out = fd;
        let mut left = limit;
        while left > 0 {
            let data = match reader.data_buf() {
                Ok([]) => break,
                Ok(data) => data,
                Err(e) => return Err(StreamFailure(e).into()),
            };
            let n = data.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            out.write_all(&data[..n])
                .map_err(|e| UnpackError::from_io(Some(&meta.name), e))?;
            reader.consume_data(n);
            left -= n as u64;
            self.stats.bytes_written += n as u64;
        }
        Ok(())
    }

    fn make_dir(&mut self, meta: Meta) -> Result<()> {
        let (_, leaf) = meta.path.split_last();
        let leaf = leaf.to_vec();
        // Owner-writable until the layer is done; the real mode is applied by `finish`,
        // unless the directory can be created with it (the common 0755).
        let final_mode_now =
            meta.mode & 0o700 == 0o700 && meta.mode & !0o777 == 0 && meta.mode & self.umask == 0;
        let create_mode = if final_mode_now { meta.mode } else { 0o700 };
        let ours = (meta.uid, meta.gid) == (u64::from(self.our_ids.0), u64::from(self.our_ids.1));
        let parent = self.parent_fd(&meta)?;
        let mut created = false;
        match mkdirat(parent, leaf.as_slice(), Mode::from_raw_mode(create_mode)) {
            Ok(()) => created = true,
            Err(Errno::EXIST) => {
                let st = statat(parent, leaf.as_slice(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| UnpackError::from_io(Some(&meta.name), e.into()))?;
                if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                    // A directory replaces a file or symlink; two directories merge.
                    self.create_or_fail(&meta, |dir, leaf| {
                        mkdirat(dir, leaf, Mode::from_raw_mode(0o700))
                    })?;
                }
            }
            Err(e) => return Err(UnpackError::from_io(Some(&meta.name), e.into())),
        }
        self.layer_paths.insert(&meta.path);
        let dir = DirMeta {
            path: meta.path,
            mode: meta.mode,
            uid: meta.uid,
            gid: meta.gid,
            mtime: meta.mtime,
            atime: meta.atime,
            xattrs: meta.xattrs,
            owner_set: created && ours && self.parent_not_setgid(),
            mode_set: created && final_mode_now && self.parent_not_setgid(),
        };
        match self.dir_index.get(dir.path.as_bytes()) {
            Some(&i) => self.dirs[i] = dir, // a later duplicate entry wins
            None => {
                self.dir_index
                    .insert(dir.path.as_bytes().to_vec(), self.dirs.len());
                self.dirs.push(dir);
            }
        }
        Ok(())
    }

    fn finish_dir(&mut self, dir: &DirMeta) -> Result<()> {
        let name = dir.path.display();
        let (parent, leaf) = dir.path.split_last();
        // Re-resolve: later entries may have replaced the directory (by a symlink, say). The
        // O_NOFOLLOW open guarantees we never change attributes through a symlink.
        let Ok(parent) = self.root.open_dir(parent, false) else {
            return Ok(());
        };
        let open = || {
            openat(
                &parent,
                leaf,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
        };
        // A directory a lower layer left unreadable, re-declared by this one, is widened.
        let Ok(fd) = self.root.widened().retry_child(parent.as_fd(), leaf, open) else {
            return Ok(());
        };
        self.root.widened().forget(fd.as_fd());
        let io_err = |e: Errno| UnpackError::from_io(Some(&name), e.into());
        if self.as_root && !dir.owner_set {
            let (u, g) = (
                to_u32(&name, "uid", dir.uid)?,
                to_u32(&name, "gid", dir.gid)?,
            );
            fchown(&fd, Some(Uid::from_raw(u)), Some(Gid::from_raw(g))).map_err(io_err)?;
        }
        // containerd's order: owner, xattrs, mode (a POSIX ACL xattr rewrites the mode).
        self.set_xattrs(fd.as_fd(), &name, &dir.xattrs)?;
        if !dir.mode_set || !dir.xattrs.is_empty() {
            fchmod(&fd, Mode::from_raw_mode(dir.mode)).map_err(io_err)?;
        }
        futimens(&fd, &times(dir.mtime, dir.atime)).map_err(io_err)?;
        Ok(())
    }

    fn make_symlink(&mut self, meta: &Meta) -> Result<()> {
        let target = match meta.link.as_deref() {
            Some(t) if !t.is_empty() && !t.contains(&0) => t.to_vec(),
            _ => {
                return Err(UnpackError::format(
                    Some(&meta.name),
                    "symlink without a valid target",
                ))
            }
        };
        // The target is stored as written, absolute or not: it is only ever resolved inside
        // the root (by us) or inside the container.
        self.create_or_fail(meta, |dir, leaf| symlinkat(target.as_slice(), dir, leaf))?;
        self.finish_node(meta, false)?;
        self.layer_paths.insert(&meta.path);
        Ok(())
    }

    fn make_hardlink(&mut self, meta: &Meta) -> Result<()> {
        let raw = match meta.link.as_deref() {
            Some(t) if !t.is_empty() => t,
            _ => {
                return Err(UnpackError::format(
                    Some(&meta.name),
                    "hardlink without a target",
                ))
            }
        };
        let target = RelPath::parse(raw).map_err(|e| {
            UnpackError::unsafe_entry(&meta.name, format!("hardlink target: {}", e.reason()))
        })?;
        if target.is_root() {
            return Err(UnpackError::unsafe_entry(
                &meta.name,
                "hardlink to the root directory",
            ));
        }
        if target == meta.path {
            return Err(UnpackError::format(Some(&meta.name), "hardlink to itself"));
        }
        let (target_parent, target_leaf) = target.split_last();
        let target_dir = self
            .root
            .open_dir(target_parent, false)
            .map_err(|e| match errno(&e) {
                Some(Errno::NOENT | Errno::NOTDIR) => {
                    UnpackError::format(Some(&meta.name), "hardlink target does not exist")
                }
                _ => resolve_error(&meta.name, e),
            })?;
        let target_leaf = target_leaf.to_vec();
        // linkat without AT_SYMLINK_FOLLOW links a symlink itself, never what it points to.
        let result = self.create_replacing(meta, |dir, leaf| {
            linkat(
                &target_dir,
                target_leaf.as_slice(),
                dir,
                leaf,
                AtFlags::empty(),
            )
        })?;
        match result {
            Ok(()) => {
                self.layer_paths.insert(&meta.path);
                Ok(())
            }
            Err(Errno::NOENT) => Err(UnpackError::format(
                Some(&meta.name),
                "hardlink target does not exist",
            )),
            Err(Errno::PERM) => Err(UnpackError::unsafe_entry(
                &meta.name,
                "hardlink to a directory or a protected file",
            )),
            Err(e) => Err(UnpackError::from_io(Some(&meta.name), e.into())),
        }
    }

    fn make_node(&mut self, meta: &Meta) -> Result<()> {
        let (file_type, dev) = match meta.kind {
            Kind::Fifo => (FileType::Fifo, 0),
            Kind::CharDevice | Kind::BlockDevice if !self.as_root => {
                self.skip(&meta.name, "device node not created (not running as root)");
                return Ok(());
            }
            Kind::CharDevice => (
                FileType::CharacterDevice,
                makedev(meta.device.0, meta.device.1),
            ),
            _ => (FileType::BlockDevice, makedev(meta.device.0, meta.device.1)),
        };
        let mode = self.file_mode(meta);
        let result = self.create_replacing(meta, |dir, leaf| {
            mknodat(dir, leaf, file_type, Mode::from_raw_mode(mode & 0o777), dev)
        })?;
        match result {
            Ok(()) => {}
            // Root in a user namespace may not create devices.
            Err(Errno::PERM) if file_type != FileType::Fifo => {
                self.skip(&meta.name, "device node not created (permission denied)");
                return Ok(());
            }
            Err(e) => return Err(UnpackError::from_io(Some(&meta.name), e.into())),
        }
        self.finish_node(meta, true)?;
        self.layer_paths.insert(&meta.path);
        Ok(())
    }

    /// Ownership, mode (after chown, which clears set-id bits) and mtime of a non-regular,
    /// non-directory entry, all relative to the parent and never following a symlink.
    fn finish_node(&mut self, meta: &Meta, chmod: bool) -> Result<()> {
        let (_, leaf) = meta.path.split_last();
        let leaf = leaf.to_vec();
        let as_root = self.as_root;
        let umask = self.umask;
        let mode = if chmod { self.file_mode_quiet(meta) } else { 0 };
        let (uid, gid) = if as_root {
            (Some(uid(meta)?), Some(gid(meta)?))
        } else {
            (None, None)
        };
        let io_err = |e: Errno| UnpackError::from_io(Some(&meta.name), e.into());
        if as_root {
            let parent = self.parent_fd(meta)?;
            chownat(parent, leaf.as_slice(), uid, gid, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(io_err)?;
        }
        // containerd's order: owner, xattrs, mode (a POSIX ACL xattr rewrites the mode), times.
        self.set_xattrs_at(meta)?;
        let parent = self.parent_fd(meta)?;
        // A node we have just created: chmodat cannot meet a symlink here.
        let acl_may_have_changed_mode = !meta.xattrs.is_empty();
        if chmod && (mode & umask != 0 || mode & !0o777 != 0 || acl_may_have_changed_mode) {
            chmodat(
                parent,
                leaf.as_slice(),
                Mode::from_raw_mode(mode),
                AtFlags::empty(),
            )
            .map_err(io_err)?;
        }
        utimensat(
            parent,
            leaf.as_slice(),
            &times(meta.mtime, meta.atime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(io_err)?;
        Ok(())
    }

    fn file_mode_quiet(&self, meta: &Meta) -> u32 {
        if self.as_root {
            meta.mode
        } else {
            meta.mode & !SETID_BITS
        }
    }

    /// Sets the entry's xattrs on an open file or directory.
    fn set_xattrs(&mut self, fd: BorrowedFd<'_>, name: &str, xattrs: &[XattrRecord]) -> Result<()> {
        for (attr, value) in xattrs {
            if self.refused_xattr(name, attr) {
                continue;
            }
            let result = fsetxattr(fd, attr.as_slice(), value, XattrFlags::empty());
            self.xattr_outcome(name, attr, result)?;
        }
        Ok(())
    }

    /// Sets the entry's xattrs on `leaf` in its parent without following it (symlinks, devices,
    /// FIFOs, hardlinks), as containerd's `Lsetxattr` does, through the parent's descriptor.
    fn set_xattrs_at(&mut self, meta: &Meta) -> Result<()> {
        if meta.xattrs.is_empty() {
            return Ok(());
        }
        let (_, leaf) = meta.path.split_last();
        let leaf = leaf.to_vec();
        let parent = self.parent_fd(meta)?.as_raw_fd();
        let mut path = format!("/proc/self/fd/{parent}/").into_bytes();
        path.extend_from_slice(&leaf);
        let path = std::ffi::OsStr::from_bytes(&path).to_owned();
        for (attr, value) in &meta.xattrs {
            if self.refused_xattr(&meta.name, attr) {
                continue;
            }
            let result = lsetxattr(
                path.as_os_str(),
                attr.as_slice(),
                value,
                XattrFlags::empty(),
            );
            self.xattr_outcome(&meta.name, attr, result)?;
        }
        Ok(())
    }

    /// Attributes never set from a layer, with a note. `trusted.*`: containerd's `setxattr`
    /// refuses them ("admin attributes from archive not supported", as ENOTSUP, so the layer
    /// goes on without them), root or not; the kernel obeys `trusted.overlay.*`. `user.overlay.*`
    /// (which containerd would set): an overlay mounted with `userxattr` obeys them, and a layer
    /// must not steer its own mount.
    fn refused_xattr(&mut self, name: &str, attr: &[u8]) -> bool {
        let reason = if attr.starts_with(b"trusted.") {
            "admin attributes from archive not supported"
        } else if attr.starts_with(USER_OVERLAY_PREFIX) {
            "refused (overlayfs control)"
        } else {
            return false;
        };
        let attr = String::from_utf8_lossy(attr);
        self.skip(name, &format!("xattr {attr} ignored: {reason}"));
        true
    }

    /// containerd's rules for an xattr it could not set: `security.*` denied (not root) and any
    /// attribute the filesystem does not support are skipped (with a note); any other failure
    /// (a `user.*` xattr on a symlink, a value too large) fails the layer.
    fn xattr_outcome(
        &mut self,
        name: &str,
        attr: &[u8],
        result: rustix::io::Result<()>,
    ) -> Result<()> {
        let attr_text = String::from_utf8_lossy(attr);
        match result {
            Ok(()) => Ok(()),
            Err(Errno::PERM) if attr.starts_with(b"security.") => {
                self.skip(
                    name,
                    &format!("xattr {attr_text} ignored: permission denied"),
                );
                Ok(())
            }
            Err(Errno::NOTSUP) => {
                self.skip(name, &format!("xattr {attr_text} ignored: not supported"));
                Ok(())
            }
            Err(e) => Err(UnpackError::from_io(
                Some(name),
                io::Error::new(
                    io::Error::from(e).kind(),
                    format!("setting xattr {attr_text}: {e}"),
                ),
            )),
        }
    }
}

impl Meta {
    fn path_parent(&self) -> RelPath {
        RelPath::parse(self.path.split_last().0).expect("already normalised")
    }
}

/// An error from reading an entry's data: the stream's own (typed) error takes precedence.
pub struct StreamFailure(pub io::Error);

impl From<StreamFailure> for UnpackError {
    fn from(failure: StreamFailure) -> Self {
        UnpackError::Source(failure.0)
    }
}

fn errno(e: &io::Error) -> Option<Errno> {
    e.raw_os_error().map(Errno::from_raw_os_error)
}

/// Maps a failure to resolve an entry's parent.
fn resolve_error(name: &str, e: io::Error) -> UnpackError {
    match errno(&e) {
        Some(Errno::LOOP) => UnpackError::unsafe_entry(name, "too many levels of symbolic links"),
        Some(Errno::XDEV) => UnpackError::unsafe_entry(name, "path escapes the root"),
        Some(Errno::NOTDIR) => UnpackError::format(Some(name), "a parent is not a directory"),
        _ => UnpackError::from_io(Some(name), e),
    }
}

fn to_u32(name: &str, what: &str, value: u64) -> Result<u32> {
    u32::try_from(value)
        .map_err(|_| UnpackError::format(Some(name), format!("{what} {value} out of range")))
}

fn uid(meta: &Meta) -> Result<Uid> {
    Ok(Uid::from_raw(to_u32(&meta.name, "uid", meta.uid)?))
}

fn gid(meta: &Meta) -> Result<Gid> {
    Ok(Gid::from_raw(to_u32(&meta.name, "gid", meta.gid)?))
}

fn times(mtime: Timespec, atime: Timespec) -> Timestamps {
    Timestamps {
        last_access: atime,
        last_modification: mtime,
    }
}

/// containerd's `boundTime`: a time before 1970 or after what a signed 64-bit nanosecond count
/// holds (2262) is applied as the epoch. GNU tar would apply it as written; containerd decides
/// what a node sees, so we follow it.
fn bound_time(time: Time) -> Timespec {
    const MAX_SECS: i64 = i64::MAX / 1_000_000_000;
    const MAX_NANOS: u32 = (i64::MAX % 1_000_000_000) as u32;
    let in_range = time.secs >= 0 && (time.secs, time.nanos) <= (MAX_SECS, MAX_NANOS);
    if in_range {
        Timespec {
            tv_sec: time.secs,
            tv_nsec: time.nanos.into(),
        }
    } else {
        Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }
    }
}

/// The process umask, read without changing it (umask(2) would race with other threads).
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o777) // unknown: always chmod explicitly
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_outside_containerds_bounds_become_the_epoch() {
        let t = |secs, nanos| {
            let b = bound_time(Time { secs, nanos });
            (b.tv_sec, b.tv_nsec)
        };
        assert_eq!(t(1_700_000_000, 5), (1_700_000_000, 5));
        assert_eq!(t(0, 0), (0, 0));
        assert_eq!(t(-1, 999_999_999), (0, 0));
        assert_eq!(t(9_223_372_036, 854_775_807), (9_223_372_036, 854_775_807));
        assert_eq!(t(9_223_372_036, 854_775_808), (0, 0));
        assert_eq!(t(i64::MAX, 0), (0, 0));
    }
}
