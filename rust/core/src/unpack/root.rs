//! Descriptor-based path resolution confined to the root filesystem being built.
//!
//! The root is held as an `O_PATH` directory descriptor. A directory inside it is opened with
//! `openat2(RESOLVE_IN_ROOT)`, so the kernel treats the root as `/` for `..` and for absolute
//! symlinks: nothing can resolve outside it, whatever earlier entries or layers planted. Where
//! `openat2` is missing (Linux < 5.6, seccomp filters) a component-wise walk does the same in
//! userspace: each component is opened with `O_NOFOLLOW`, symlinks are read and re-resolved
//! against the root, and `..` pops our own stack of descriptors instead of asking the kernel.
//! Leaves are then created with `*at()` calls relative to the parent descriptor; no path-based
//! call ever touches something that could be a symlink.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{
    fstat, mkdirat, openat, openat2, readlinkat, unlinkat, AtFlags, Dir, FileType, Mode, OFlags,
    ResolveFlags, CWD,
};
use rustix::io::{fcntl_dupfd_cloexec, Errno};

use super::access::Widened;
use super::safe_path::components;

/// The most symlinks followed while resolving one path (Linux's own limit).
const MAX_SYMLINKS: usize = 40;
/// Mode of directories created implicitly because an entry's parent was missing.
pub const IMPLICIT_DIR_MODE: u32 = 0o755;

/// How directories inside the root are resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolver {
    /// `openat2(RESOLVE_IN_ROOT)`, falling back to the walk when the kernel lacks it.
    Auto,
    /// Always the userspace component-wise walk (tests use it to cover the fallback).
    Walk,
}

/// The root directory of a filesystem being built, as a descriptor.
pub struct Root {
    fd: OwnedFd,
    use_openat2: AtomicBool,
    /// Read-only directories made writable for an unprivileged unpack (see `access.rs`).
    widened: Widened,
}

impl Root {
    /// Opens (creating it and its parents if needed) the destination directory. `dest`
    /// itself is trusted. Something other than a directory there is `ENOTDIR`.
    pub fn open(dest: &Path, resolver: Resolver) -> io::Result<Root> {
        let open = || {
            openat(
                CWD,
                dest,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
        };
        let fd = match open() {
            Err(Errno::NOENT) => {
                std::fs::create_dir_all(dest).map_err(|e| match e.raw_os_error() {
                    // A file where a directory should be (create_dir_all says "exists").
                    Some(code) if code == Errno::EXIST.raw_os_error() => Errno::NOTDIR.into(),
                    _ => e,
                })?;
                open()?
            }
            other => other?,
        };
        Ok(Root {
            fd,
            use_openat2: AtomicBool::new(resolver == Resolver::Auto),
            widened: Widened::new(),
        })
    }

    /// Retry operations denied in read-only directories after widening them (unprivileged).
    pub fn enable_widening(&mut self) {
        self.widened.enable();
    }

    /// The widened directories: retry denied operations, restore their modes at the end.
    pub fn widened(&self) -> &Widened {
        &self.widened
    }

    #[cfg(test)]
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens the directory at `path` (normalised, relative to the root) as an `O_PATH`
    /// descriptor, resolving symlinks as if the root were `/`. With `create`, missing
    /// directories are created (mode 0755), including the target of a dangling symlink.
    pub fn open_dir(&self, path: &[u8], create: bool) -> io::Result<OwnedFd> {
        if path.is_empty() {
            return self.reopen_root();
        }
        if self.use_openat2.load(Ordering::Relaxed) {
            let mut attempts = 0;
            loop {
                let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
                match openat2(
                    &self.fd,
                    path,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                    how,
                ) {
                    Ok(fd) => return Ok(fd),
                    // The kernel asks for a retry when a rename raced with `..` resolution.
                    Err(Errno::AGAIN) if attempts < 8 => attempts += 1,
                    Err(Errno::NOENT) if create => break,
                    Err(Errno::NOSYS | Errno::PERM) => {
                        self.use_openat2.store(false, Ordering::Relaxed);
                        break;
                    }
                    // A directory without search permission: the walk can widen it.
                    Err(Errno::ACCESS) if self.widened.enabled() => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.walk(path, create)
    }

    /// A fresh `O_PATH` descriptor of the root.
    fn reopen_root(&self) -> io::Result<OwnedFd> {
        Ok(openat(
            &self.fd,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    }

    /// The userspace equivalent of `RESOLVE_IN_ROOT`, creating missing directories on request.
    fn walk(&self, path: &[u8], create: bool) -> io::Result<OwnedFd> {
        // Descriptors of the directories below the root on the current path.
        let mut stack: Vec<OwnedFd> = Vec::new();
        // Components still to resolve, last one first.
        let mut pending: Vec<Vec<u8>> = components(path).rev().map(<[u8]>::to_vec).collect();
        let mut symlinks = 0usize;
        let mut creations = 0usize;
        while let Some(name) = pending.pop() {
            match name.as_slice() {
                b"." => continue,
                b".." => {
                    stack.pop(); // at the root, `..` stays at the root
                    continue;
                }
                _ => {}
            }
            let cur = stack.last().map_or(self.fd.as_fd(), |fd| fd.as_fd());
            let open = || {
                openat(
                    cur,
                    name.as_slice(),
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            };
            match self.widened.retry(cur, open) {
                Ok(fd) => match FileType::from_raw_mode(fstat(&fd)?.st_mode) {
                    FileType::Directory => stack.push(fd),
                    FileType::Symlink => {
                        symlinks += 1;
                        if symlinks > MAX_SYMLINKS {
                            return Err(Errno::LOOP.into());
                        }
                        let target = readlinkat(&fd, "", Vec::new())?;
                        let target = target.as_bytes();
                        if target.first() == Some(&b'/') {
                            stack.clear();
                        }
                        pending.extend(components(target).rev().map(<[u8]>::to_vec));
                    }
                    _ => return Err(Errno::NOTDIR.into()),
                },
                Err(Errno::NOENT) if create => {
                    creations += 1;
                    if creations > 4096 {
                        return Err(Errno::LOOP.into());
                    }
                    let mode = Mode::from_raw_mode(IMPLICIT_DIR_MODE);
                    match self
                        .widened
                        .retry(cur, || mkdirat(cur, name.as_slice(), mode))
                    {
                        Ok(()) | Err(Errno::EXIST) => pending.push(name),
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        match stack.pop() {
            Some(fd) => Ok(fd),
            None => self.reopen_root(),
        }
    }

    /// Removes `name` in `dir` whatever it is; a directory goes with all its contents. Never
    /// follows a symlink: the link itself is removed. A missing entry is not an error.
    pub fn remove_all_at(&self, dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
        match self
            .widened
            .retry(dir, || unlinkat(dir, name, AtFlags::empty()))
        {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(Errno::ISDIR) => {
                self.empty_dir_at(dir, name, &mut |_| false)?;
                match self
                    .widened
                    .retry(dir, || unlinkat(dir, name, AtFlags::REMOVEDIR))
                {
                    Ok(()) | Err(Errno::NOENT) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the children of directory `name` in `dir` for which `keep(child_name)` is false.
    pub fn empty_dir_at(
        &self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        keep: &mut dyn FnMut(&[u8]) -> bool,
    ) -> io::Result<()> {
        let open = || {
            openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
        };
        let fd = match self.widened.retry_child(dir, name, open) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for child in list_dir(&fd)? {
            if !keep(&child) {
                self.remove_all_at(fd.as_fd(), &child)?;
            }
        }
        Ok(())
    }
}

/// The names in an open directory, without `.` and `..`.
pub fn list_dir(fd: &OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    // A duplicate, not `Dir::read_from` (which reopens "." and so needs search permission).
    let mut dir = Dir::new(fcntl_dupfd_cloexec(fd, 0)?)?;
    let mut names = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    struct Scratch {
        base: PathBuf,
    }

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let base = std::env::temp_dir().join(format!(
                "ocistore-root-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&base);
            std::fs::create_dir_all(base.join("root")).unwrap();
            std::fs::create_dir_all(base.join("outside")).unwrap();
            Scratch { base }
        }
        fn root(&self) -> PathBuf {
            self.base.join("root")
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }

    /// Creates a marker file through a descriptor from `open_dir` and says where it landed.
    fn land(root: &Root, path: &str) -> io::Result<()> {
        let dir = root.open_dir(path.as_bytes(), true)?;
        openat(
            &dir,
            "marker",
            OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )?;
        Ok(())
    }

    fn both_resolvers(tag: &str, check: impl Fn(&Scratch, &Root)) {
        for resolver in [Resolver::Auto, Resolver::Walk] {
            let scratch = Scratch::new(&format!("{tag}-{resolver:?}"));
            let root = Root::open(&scratch.root(), resolver).unwrap();
            check(&scratch, &root);
        }
    }

    #[test]
    fn absolute_and_dotdot_symlinks_stay_inside_the_root() {
        both_resolvers("escape", |s, root| {
            let outside = s.base.join("outside");
            symlink(&outside, s.root().join("abs")).unwrap();
            symlink("../../outside", s.root().join("rel")).unwrap();
            symlink("/abs", s.root().join("chain")).unwrap();
            for link in ["abs", "rel", "chain", "abs/deeper"] {
                land(root, link).unwrap();
            }
            assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
            // The escapes were re-rooted: /abs → <root>/<outside path>, ../../outside → <root>/outside.
            assert!(s.root().join("outside/marker").exists());
            let rerooted = s.root().join(outside.strip_prefix("/").unwrap());
            assert!(rerooted.join("marker").exists());
            assert!(rerooted.join("deeper/marker").exists());
        });
    }

    #[test]
    fn creates_missing_parents_and_dangling_symlink_targets_inside() {
        both_resolvers("create", |s, root| {
            symlink("/usr/lib", s.root().join("lib")).unwrap();
            land(root, "lib/x86_64").unwrap();
            assert!(s.root().join("usr/lib/x86_64/marker").exists());
            land(root, "a/b/c").unwrap();
            assert!(s.root().join("a/b/c/marker").exists());
        });
    }

    #[test]
    fn symlink_loops_and_file_parents_fail() {
        both_resolvers("loop", |s, root| {
            symlink("loop2", s.root().join("loop1")).unwrap();
            symlink("loop1", s.root().join("loop2")).unwrap();
            let err = root.open_dir(b"loop1", true).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(Errno::LOOP.raw_os_error()));
            std::fs::write(s.root().join("file"), b"x").unwrap();
            let err = root.open_dir(b"file/sub", true).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(Errno::NOTDIR.raw_os_error()));
            assert!(root.open_dir(b"missing", false).is_err());
        });
    }

    #[test]
    fn remove_all_never_follows_symlinks() {
        let s = Scratch::new("remove");
        let root = Root::open(&s.root(), Resolver::Auto).unwrap();
        std::fs::write(s.base.join("outside/keep"), b"x").unwrap();
        std::fs::create_dir_all(s.root().join("d/e")).unwrap();
        symlink(s.base.join("outside"), s.root().join("d/e/link")).unwrap();
        root.remove_all_at(root.fd(), b"d").unwrap();
        assert!(!s.root().join("d").exists());
        assert!(s.base.join("outside/keep").exists());
        root.remove_all_at(root.fd(), b"not-there").unwrap();
    }
}
