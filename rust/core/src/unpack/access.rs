//! Unprivileged unpacking into read-only directories.
//!
//! A lower layer may leave a directory without owner write or search permission (`0555`,
//! `0000`); root ignores that, an ordinary user cannot create, delete or look up anything in
//! it. As umoci and rootless containerd do, a denied operation in a directory the user owns
//! is retried once after adding owner `rwx`; the mode the directory had is recorded and put
//! back when the layer is complete (unless the layer set its own mode for it).

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{chmod, fchmod, fstat, openat, FileType, Mode, OFlags, Stat};
use rustix::io::{fcntl_dupfd_cloexec, Errno};

const OWNER_RWX: u32 = 0o700;

/// Directories whose permissions were widened, with the modes to restore.
pub struct Widened {
    /// `None` when widening is off (running as root: nothing is ever denied).
    euid: Option<u32>,
    /// Keyed by (device, inode); the descriptor keeps the directory reachable for the restore.
    dirs: RefCell<HashMap<(u64, u64), (OwnedFd, u32)>>,
}

impl Widened {
    pub fn new() -> Widened {
        Widened {
            euid: None,
            dirs: RefCell::new(HashMap::new()),
        }
    }

    /// Turns widening on for the current effective user.
    pub fn enable(&mut self) {
        self.euid = Some(rustix::process::geteuid().as_raw());
    }

    /// Runs `op` on something inside `dir`; when it is denied, widens `dir` and runs it again.
    pub fn retry<T>(
        &self,
        dir: BorrowedFd<'_>,
        mut op: impl FnMut() -> rustix::io::Result<T>,
    ) -> rustix::io::Result<T> {
        match op() {
            Err(Errno::ACCESS) if self.widen(dir) => op(),
            other => other,
        }
    }

    /// Like `retry`, but the directory to widen is `name` inside `dir` (never a symlink).
    pub fn retry_child<T>(
        &self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        mut op: impl FnMut() -> rustix::io::Result<T>,
    ) -> rustix::io::Result<T> {
        match op() {
            Err(Errno::ACCESS) if self.widen_child(dir, name) => op(),
            other => other,
        }
    }

    /// Whether a denied operation may be worth a retry after widening.
    pub fn enabled(&self) -> bool {
        self.euid.is_some()
    }

    fn widen_child(&self, dir: BorrowedFd<'_>, name: &[u8]) -> bool {
        let open = || {
            openat(
                dir,
                name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
        };
        // Looking `name` up may itself need search permission on `dir`.
        match self.retry(dir, open) {
            Ok(child) => self.widen(child.as_fd()),
            Err(_) => false,
        }
    }

    /// Adds owner `rwx` to the directory `dir` if the user owns it and lacks some of them.
    fn widen(&self, dir: BorrowedFd<'_>) -> bool {
        let Some(euid) = self.euid else {
            return false;
        };
        let Ok(st) = fstat(dir) else {
            return false;
        };
        let mode = st.st_mode & 0o7777;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory
            || st.st_uid != euid
            || mode & OWNER_RWX == OWNER_RWX
        {
            return false;
        }
        let mut dirs = self.dirs.borrow_mut();
        if let Entry::Vacant(slot) = dirs.entry(key(&st)) {
            let Ok(keep) = fcntl_dupfd_cloexec(dir, 0) else {
                return false;
            };
            slot.insert((keep, mode));
        }
        set_mode(dir, mode | OWNER_RWX).is_ok()
    }

    /// The layer set `dir`'s final mode itself: do not restore the recorded one over it.
    pub fn forget(&self, dir: BorrowedFd<'_>) {
        let mut dirs = self.dirs.borrow_mut();
        if dirs.is_empty() {
            return;
        }
        if let Ok(st) = fstat(dir) {
            dirs.remove(&key(&st));
        }
    }

    /// Puts the recorded modes back on the widened directories that still exist.
    pub fn restore(&self) -> io::Result<()> {
        let dirs = std::mem::take(&mut *self.dirs.borrow_mut());
        let mut first_error = None;
        for (fd, mode) in dirs.into_values() {
            // A directory deleted since (a whiteout, a replacement) has no links left.
            match fstat(&fd) {
                Ok(st) if st.st_nlink > 0 => {
                    if let Err(e) = set_mode(fd.as_fd(), mode) {
                        first_error.get_or_insert(e);
                    }
                }
                _ => {}
            }
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

impl Drop for Widened {
    /// A failed layer still leaves the modes as they were.
    fn drop(&mut self) {
        let _ = self.restore();
    }
}

fn key(st: &Stat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

/// Changes the mode of the directory behind any descriptor; `O_PATH` descriptors, which
/// `fchmod` refuses, go through their `/proc/self/fd` link (which names the inode itself, so
/// no path is resolved again).
fn set_mode(fd: BorrowedFd<'_>, mode: u32) -> rustix::io::Result<()> {
    match fchmod(fd, Mode::from_raw_mode(mode)) {
        Err(Errno::BADF) => chmod(
            format!("/proc/self/fd/{}", fd.as_raw_fd()),
            Mode::from_raw_mode(mode),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode_of(path: &std::path::Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn widens_owned_directories_and_restores_their_modes() {
        let base = std::env::temp_dir().join(format!("ocistore-widen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("kept")).unwrap();
        std::fs::create_dir_all(base.join("set-by-layer")).unwrap();
        let open = |name: &str| {
            openat(
                rustix::fs::CWD,
                base.join(name),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .unwrap()
        };
        std::fs::set_permissions(base.join("kept"), PermissionsExt::from_mode(0o500)).unwrap();
        std::fs::set_permissions(base.join("set-by-layer"), PermissionsExt::from_mode(0o000))
            .unwrap();
        let mut widened = Widened::new();
        let kept = open("kept");
        assert!(!widened.widen(kept.as_fd()), "disabled: nothing is widened");
        widened.enable();
        assert!(widened.widen(kept.as_fd()));
        assert_eq!(mode_of(&base.join("kept")), 0o700);
        assert!(!widened.widen(kept.as_fd()), "already writable");
        let set = open("set-by-layer");
        assert!(widened.widen_child(
            rustix::fs::CWD,
            base.join("set-by-layer").to_str().unwrap().as_bytes()
        ));
        assert_eq!(mode_of(&base.join("set-by-layer")), 0o700);
        widened.forget(set.as_fd());
        widened.restore().unwrap();
        assert_eq!(mode_of(&base.join("kept")), 0o500);
        assert_eq!(mode_of(&base.join("set-by-layer")), 0o700);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
