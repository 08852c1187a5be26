//! The one seam to the kernel. Every syscall tinyo makes goes through this module, and all of
//! tinyo's `unsafe` code lives in it (in [`real`], each block with a `// SAFETY:` line).
//!
//! * [`Sys`]: the container setup sequence's syscalls, with typed arguments. [`RealSys`]
//!   makes them; [`fake::RecordingSys`] records them so the exact ordered sequence is tested
//!   without root.
//! * Process control ([`real::SingleThreaded`], `clone3`, `fork`, pidfds, fd passing, the
//!   shared result page): used by the zygote and PID 1, tested end to end.

use std::os::fd::{BorrowedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;

pub mod fake;
pub mod real;

pub use real::RealSys;

/// The syscalls of container setup, one method per operation.
pub trait Sys {
    /// `prctl(PR_SET_PDEATHSIG, signal)`.
    fn set_pdeathsig(&self, signal: Signal) -> Result<(), Errno>;
    /// Whether the process behind `pidfd` is still alive (`poll` on the pidfd, no wait).
    fn parent_alive(&self, pidfd: BorrowedFd<'_>) -> Result<bool, Errno>;
    /// `fcntl(fd, F_DUPFD, min)`: a copy of `fd` at the lowest free number ≥ `min`.
    fn dup_above(&self, fd: RawFd, min: RawFd) -> Result<RawFd, Errno>;
    /// `dup2(old, new)`.
    fn dup2(&self, old: RawFd, new: RawFd) -> Result<(), Errno>;
    /// `close_range(first, ~0, 0)`: close every fd from `first` up.
    fn close_from(&self, first: RawFd) -> Result<(), Errno>;
    /// `umask(mask)`, returning the previous mask.
    fn umask(&self, mask: Mode) -> Mode;
    /// `mount(2)`.
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno>;
    /// `mount_setattr(path, AT_RECURSIVE?, {attr_set: MOUNT_ATTR_RDONLY})`: read-only, every other
    /// attribute (the locked `nosuid`, `nodev`, `noexec`, atime flags) untouched.
    fn mount_setattr_readonly(&self, path: &Path, recursive: bool) -> Result<(), Errno>;
    /// The mount flags of the mount at `path` that a read-only remount must keep (`statvfs`).
    fn locked_mount_flags(&self, path: &Path) -> Result<MsFlags, Errno>;
    /// Bind `src` at `dst` through an id-mapped mount (`open_tree`, `mount_setattr(MOUNT_ATTR_IDMAP)`,
    /// `move_mount`): files show the ids of the user namespace at `userns` (a path such as
    /// `/proc/self/fd/N`). The error names the call.
    fn bind_idmapped(
        &self,
        src: &Path,
        dst: &Path,
        userns: &Path,
    ) -> Result<(), (&'static str, Errno)>;
    /// `umount2(path, MNT_DETACH)`.
    fn umount_detach(&self, path: &Path) -> Result<(), Errno>;
    /// `pivot_root(new_root, put_old)`.
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<(), Errno>;
    /// `chdir(path)`.
    fn chdir(&self, path: &Path) -> Result<(), Errno>;
    /// `mkdir(path, mode)`.
    fn mkdir(&self, path: &Path, mode: Mode) -> Result<(), Errno>;
    /// `symlink(target, link)`.
    fn symlink(&self, target: &Path, link: &Path) -> Result<(), Errno>;
    /// `mknod(path, S_IFCHR | mode, makedev(major, minor))`.
    fn mknod_char(&self, path: &Path, mode: Mode, major: u32, minor: u32) -> Result<(), Errno>;
    /// Create (or truncate) `path` with `contents`; the error names `open` or `write`.
    fn write_file(
        &self,
        path: &Path,
        contents: &[u8],
        mode: Mode,
    ) -> Result<(), (&'static str, Errno)>;
    /// `unlink(path)`.
    fn unlink(&self, path: &Path) -> Result<(), Errno>;
    /// `rmdir(path)`.
    fn rmdir(&self, path: &Path) -> Result<(), Errno>;
    /// `unshare(CLONE_NEWNET)`: a network namespace of the container's own, made by PID 1 in
    /// parallel with other containers rather than serially in the zygote's `clone3`.
    fn unshare_net(&self) -> Result<(), Errno>;
    /// `sethostname(name)`.
    fn sethostname(&self, name: &str) -> Result<(), Errno>;
    /// Set `IFF_UP` on `lo` (`socket` + `ioctl(SIOCGIFFLAGS/SIOCSIFFLAGS)`); the error names the call.
    fn loopback_up(&self) -> Result<(), (&'static str, Errno)>;
}
