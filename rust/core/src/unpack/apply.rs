//! Applying tar entries to the root, one at a time, with `*at()` calls relative to descriptors
//! obtained from `root.rs`; nothing is ever resolved by path.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::io::{self, BufRead, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

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
use super::workers::Pool;

/// At most this many skipped entries are listed one by one; the rest are counted.
const MAX_SKIPPED_LISTED: usize = 10_000;
const SETID_BITS: u32 = 0o6000;
const SETGID_BIT: u32 = 0o2000;
/// Regular files up to this size (without xattrs or holes) are written by the worker threads.
const DEFERRED_FILE_MAX: u64 = 1 << 20;
/// Bounds on what waits for the worker threads: file data in memory, and jobs.
const DEFERRED_BYTES_MAX: usize = 16 << 20;
const DEFERRED_JOBS_MAX: usize = 256;
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
    /// A regular file's size (holes included); 0 for the other kinds.
    size: u64,
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
    /// Shared with the file jobs queued in this directory.
    fd: Arc<OwnedFd>,
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
    /// Worker threads to write small files on (0: every entry on the calling thread).
    writers: usize,
    jobs: Option<FileJobs>,
}

/// A small regular file, its data in memory, for a worker thread to create and fill.
struct FileJob {
    meta: Meta,
    data: Vec<u8>,
    /// The entry's parent directory.
    parent: Arc<OwnedFd>,
    /// The mode to create it with (set-id bits already dropped when not root).
    mode: u32,
    owner: Option<(Uid, Gid)>,
    /// Set the mode explicitly (the umask or set-id bits were in the way).
    chmod: bool,
}

/// What a worker did with a file job.
enum JobOutcome {
    Written,
    Failed(UnpackError),
    /// The name exists (or the directory is not writable): the applying thread replaces it,
    /// or widens the directory, as it does for its own entries.
    Retry(FileJob),
}

/// The file jobs handed to the worker threads and not yet settled, numbered by entry.
struct FileJobs {
    pool: Pool<FileJob, JobOutcome>,
    /// Path of every unsettled job -> its number (later entries on that path wait for it).
    paths: HashMap<Vec<u8>, u64>,
    /// Jobs still on a worker: number -> (path, data size).
    running: HashMap<u64, (Vec<u8>, usize)>,
    running_bytes: usize,
    /// Jobs a worker gave back, applied here in entry order at the next barrier.
    retries: BTreeMap<u64, FileJob>,
    /// The failure of the earliest job that failed (later ones are not run).
    failed: Option<(u64, UnpackError)>,
}

impl FileJobs {
    fn record(&mut self, number: u64, outcome: Option<JobOutcome>) {
        if let Some((path, bytes)) = self.running.remove(&number) {
            self.running_bytes -= bytes;
            match outcome {
                Some(JobOutcome::Retry(job)) => {
                    self.retries.insert(number, job);
                    return; // its path stays claimed until it is applied
                }
                Some(JobOutcome::Failed(error)) => self.fail(number, error),
                Some(JobOutcome::Written) | None => {}
            }
            if self.paths.get(&path) == Some(&number) {
                self.paths.remove(&path);
            }
        }
    }

    /// Keeps the failure of the earliest entry; later jobs are not run any more.
    fn fail(&mut self, number: u64, error: UnpackError) {
        if self
            .failed
            .as_ref()
            .is_none_or(|(first, _)| number < *first)
        {
            self.failed = Some((number, error));
            self.pool.stop_after(number);
        }
    }

    /// Whether a job of `bytes` fits the bounds (after recording the jobs that finished).
    fn has_room(&mut self, bytes: u64) -> bool {
        self.collect();
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        self.running.len() < DEFERRED_JOBS_MAX
            && (self.running.is_empty() || self.running_bytes + bytes <= DEFERRED_BYTES_MAX)
    }

    /// Records the jobs that have finished, without waiting.
    fn collect(&mut self) {
        while let Some((number, outcome)) = self.pool.try_recv() {
            self.record(number, outcome);
        }
    }

    /// Waits until job `number` has left its worker.
    fn wait_for(&mut self, number: u64) {
        while self.running.contains_key(&number) {
            let (done, outcome) = self.pool.recv();
            self.record(done, outcome);
        }
    }

    /// Waits until every job has left the workers.
    fn wait_all(&mut self) {
        while !self.running.is_empty() {
            let (done, outcome) = self.pool.recv();
            self.record(done, outcome);
        }
    }

    /// The unsettled job on `path` or on one of its parents, if any.
    fn claiming(&self, path: &[u8]) -> Option<u64> {
        if self.paths.is_empty() {
            return None;
        }
        let ends = path
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'/')
            .map(|(i, _)| i)
            .chain([path.len()]);
        ends.filter_map(|end| self.paths.get(&path[..end]).copied())
            .min()
    }
}

impl<'r> Applier<'r> {
    /// `writers`: worker threads that write the small regular files (0: none).
    pub fn new(
        root: &'r Root,
        limits: UnpackLimits,
        privileges: Privileges,
        writers: usize,
    ) -> Applier<'r> {
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
            writers,
            jobs: None,
        }
    }

    /// Applies one entry. Stream errors inside are reported as `io::Error`s for the caller to
    /// reconcile with the stream's own typed error.
    pub fn apply<R: BufRead>(&mut self, reader: &mut TarReader<R>, entry: Entry) -> Result<()> {
        if let Some(jobs) = &mut self.jobs {
            jobs.collect();
            if jobs.failed.is_some() || !jobs.retries.is_empty() {
                self.settle().map_err(|e| self.first_error(e))?;
            }
        }
        self.apply_entry(reader, entry)
            .map_err(|e| self.first_error(e))
    }

    /// The error the layer fails with when `error` happened at the current entry: the
    /// failure of an earlier entry on a worker thread, if any, comes first.
    pub fn first_error(&mut self, error: UnpackError) -> UnpackError {
        match self.settle() {
            Err(earlier) => earlier,
            Ok(()) => error,
        }
    }

    /// A barrier: waits for every file job and applies those given back, then reports the
    /// first failure among them.
    fn settle(&mut self) -> Result<()> {
        self.drain_jobs();
        match self.jobs.as_mut().and_then(|jobs| jobs.failed.take()) {
            Some((_, error)) => Err(error),
            None => Ok(()),
        }
    }

    /// Waits for every file job and applies those given back, in entry order (failures are
    /// recorded, for `settle` to report).
    fn drain_jobs(&mut self) {
        let Some(jobs) = &mut self.jobs else {
            return;
        };
        jobs.wait_all();
        let retries = std::mem::take(&mut jobs.retries);
        for (number, job) in retries {
            let jobs = self.jobs.as_mut().expect("present");
            jobs.paths.remove(job.meta.path.as_bytes());
            if jobs
                .failed
                .as_ref()
                .is_some_and(|(first, _)| *first < number)
            {
                continue;
            }
            let FileJob {
                meta, data, mode, ..
            } = job;
            let written = self.create_file(&meta, mode, |_, file| {
                file.write_all(&data)
                    .map_err(|e| UnpackError::from_io(Some(&meta.name), e))
            });
            if let Err(error) = written {
                self.jobs.as_mut().expect("present").fail(number, error);
            }
        }
    }

    /// Waits for the job that writes `path` or one of its parents, if there is one.
    fn wait_for_path(&mut self, path: &[u8]) -> Result<()> {
        // Each job waited for leaves `paths` once done (or, given back, once applied).
        while let Some(number) = self.jobs.as_ref().and_then(|jobs| jobs.claiming(path)) {
            let jobs = self.jobs.as_mut().expect("a job claims the path");
            jobs.wait_for(number);
            if jobs.failed.is_some() || !jobs.retries.is_empty() {
                self.settle()?;
            }
        }
        Ok(())
    }

    fn apply_entry<R: BufRead>(&mut self, reader: &mut TarReader<R>, entry: Entry) -> Result<()> {
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
        self.wait_for_path(meta.path.as_bytes())?;
        if meta.kind == Kind::Hardlink {
            if let Ok(target) = RelPath::parse(meta.link.as_deref().unwrap_or_default()) {
                self.wait_for_path(target.as_bytes())?;
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
            Kind::File => self.write_file(reader, meta),
            Kind::Dir => self.make_dir(meta),
            Kind::Symlink => self.make_symlink(&meta),
            Kind::Hardlink => self.make_hardlink(&meta),
            Kind::CharDevice | Kind::BlockDevice | Kind::Fifo => self.make_node(&meta),
        }
    }

    /// Applies the deferred directory attributes; returns the statistics.
    pub fn finish(mut self) -> Result<ApplyStats> {
        self.settle()?;
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
        let mut file_size = 0;
        if kind == Kind::File {
            let size = id("size", entry.size)?;
            file_size = size;
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
            size: file_size,
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
                        fd: Arc::new(fd),
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
        self.settle()?;
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
        self.settle()?;
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
        // Replacing: no file job may still be writing below what is removed.
        self.drain_jobs();
        let parent = self.parent_fd(meta)?;
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

    fn write_file<R: BufRead>(&mut self, reader: &mut TarReader<R>, meta: Meta) -> Result<()> {
        let mode = self.file_mode(&meta);
        // While the workers have all they may hold, this thread writes the file itself (it
        // touches nothing a queued job does: `apply_entry` waited for those on its path).
        if self.writers > 0
            && meta.size <= DEFERRED_FILE_MAX
            && meta.sparse.is_none()
            && meta.xattrs.is_empty()
            && self
                .jobs
                .as_mut()
                .is_none_or(|jobs| jobs.has_room(meta.size))
        {
            return self.defer_file(reader, meta, mode);
        }
        self.create_file(&meta, mode, |this, file| match &meta.sparse {
            None => this.copy_data(reader, &meta, &mut &*file, u64::MAX),
            Some((fragments, size)) => this.write_sparse(reader, &meta, file, fragments, *size),
        })
    }

    /// Creates the entry's file (replacing what is there), lets `fill` write its content, then
    /// sets its owner, xattrs, mode and times.
    fn create_file(
        &mut self,
        meta: &Meta,
        mode: u32,
        fill: impl FnOnce(&mut Self, &mut std::fs::File) -> Result<()>,
    ) -> Result<()> {
        let mut file: Option<OwnedFd> = None;
        self.create_or_fail(meta, |dir, leaf| {
            file = Some(create_regular(dir, leaf, mode)?);
            Ok(())
        })?;
        let owner = self.owner_to_set(meta, self.parent_not_setgid())?;
        let mut fd = std::fs::File::from(file.expect("created"));
        fill(self, &mut fd)?;
        set_owner(fd.as_fd(), &meta.name, owner)?;
        // containerd's order: owner, xattrs, mode, times. A POSIX ACL xattr rewrites the mode;
        // creation applied the umask and chown cleared set-id bits: set the exact mode.
        self.set_xattrs(fd.as_fd(), &meta.name, &meta.xattrs)?;
        let chmod = self.needs_chmod(mode) || !meta.xattrs.is_empty();
        set_mode_and_times(fd.as_fd(), meta, chmod.then_some(mode))?;
        self.layer_paths.insert(&meta.path);
        Ok(())
    }

    /// The owner a file created by us in a parent (set-gid or not) still needs, as root:
    /// created files are ours, with our group unless the parent is set-gid.
    fn owner_to_set(&self, meta: &Meta, parent_not_setgid: bool) -> Result<Option<(Uid, Gid)>> {
        let owned_as_wanted = parent_not_setgid
            && (meta.uid, meta.gid) == (u64::from(self.our_ids.0), u64::from(self.our_ids.1));
        Ok(if self.as_root && !owned_as_wanted {
            Some((uid(meta)?, gid(meta)?))
        } else {
            None
        })
    }

    /// Whether creating with `mode` leaves it wrong (the umask, or set-id bits, in the way).
    fn needs_chmod(&self, mode: u32) -> bool {
        mode & self.umask != 0 || mode & !0o777 != 0
    }

    /// Reads a small file's data and hands the file to a worker thread. Everything the
    /// applying thread decides (the parent, the owner to set, the mode) is decided here.
    fn defer_file<R: BufRead>(
        &mut self,
        reader: &mut TarReader<R>,
        meta: Meta,
        mode: u32,
    ) -> Result<()> {
        if self.jobs.is_none() {
            match Pool::new(self.writers, DEFERRED_JOBS_MAX, run_file_job) {
                Ok(pool) => {
                    self.jobs = Some(FileJobs {
                        pool,
                        paths: HashMap::new(),
                        running: HashMap::new(),
                        running_bytes: 0,
                        retries: BTreeMap::new(),
                        failed: None,
                    })
                }
                Err(_) => {
                    // No threads to be had: write everything here.
                    self.writers = 0;
                    return self.write_file(reader, meta);
                }
            }
        }
        let mut data = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0));
        self.copy_data(reader, &meta, &mut data, u64::MAX)?;
        self.parent_fd(&meta)?;
        let parent = Arc::clone(&self.parents[0].fd);
        let owner = self.owner_to_set(&meta, self.parent_not_setgid())?;
        let chmod = self.needs_chmod(mode);
        self.layer_paths.insert(&meta.path);
        let number = self.stats.entries;
        let (parent_path, _) = meta.path.split_last();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        parent_path.hash(&mut hasher);
        let lane = hasher.finish() as usize;
        let path = meta.path.as_bytes().to_vec();
        let bytes = data.len();
        let jobs = self.jobs.as_mut().expect("started above");
        jobs.paths.insert(path.clone(), number);
        jobs.running.insert(number, (path, bytes));
        jobs.running_bytes += bytes;
        let job = FileJob {
            meta,
            data,
            parent,
            mode,
            owner,
            chmod,
        };
        jobs.pool.submit(lane, number, job);
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
            self.copy_data(reader, meta, &mut &*fd, fragment.length)?;
        }
        fd.set_len(size).map_err(io_err)
    }

    /// Copies at most `limit` bytes of the entry's data to `out` (all of it with `u64::MAX`),
    /// writing straight from the stream's chunks.
    fn copy_data<R: BufRead>(
        &mut self,
        reader: &mut TarReader<R>,
        meta: &Meta,
        out: &mut impl Write,
        limit: u64,
    ) -> Result<()> {
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

/// Creates a regular file that must not exist yet, never through a symlink.
fn create_regular(dir: BorrowedFd<'_>, leaf: &[u8], mode: u32) -> rustix::io::Result<OwnedFd> {
    openat(
        dir,
        leaf,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode & 0o777),
    )
}

fn set_owner(fd: BorrowedFd<'_>, name: &str, owner: Option<(Uid, Gid)>) -> Result<()> {
    if let Some((uid, gid)) = owner {
        fchown(fd, Some(uid), Some(gid)).map_err(|e| UnpackError::from_io(Some(name), e.into()))?;
    }
    Ok(())
}

/// The exact mode (when `mode` is given), then the times, of an open file.
fn set_mode_and_times(fd: BorrowedFd<'_>, meta: &Meta, mode: Option<u32>) -> Result<()> {
    let io_err = |e: Errno| UnpackError::from_io(Some(&meta.name), e.into());
    if let Some(mode) = mode {
        fchmod(fd, Mode::from_raw_mode(mode)).map_err(io_err)?;
    }
    futimens(fd, &times(meta.mtime, meta.atime)).map_err(io_err)
}

/// A worker thread's part of writing a small file: what `Applier::create_file` does when the
/// name is free. A name that exists, or a directory we may not write in, goes back to the
/// applying thread, which knows how to replace or widen.
fn run_file_job(job: FileJob) -> JobOutcome {
    let (_, leaf) = job.meta.path.split_last();
    let fd = match create_regular(job.parent.as_fd(), leaf, job.mode) {
        Ok(fd) => std::fs::File::from(fd),
        Err(Errno::EXIST | Errno::ACCESS) => return JobOutcome::Retry(job),
        Err(e) => return JobOutcome::Failed(UnpackError::from_io(Some(&job.meta.name), e.into())),
    };
    let written = (&fd)
        .write_all(&job.data)
        .map_err(|e| UnpackError::from_io(Some(&job.meta.name), e))
        .and_then(|()| set_owner(fd.as_fd(), &job.meta.name, job.owner))
        .and_then(|()| set_mode_and_times(fd.as_fd(), &job.meta, job.chmod.then_some(job.mode)));
    match written {
        Ok(()) => JobOutcome::Written,
        Err(error) => JobOutcome::Failed(error),
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
