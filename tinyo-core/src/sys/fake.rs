//! A [`Sys`] that makes no syscall and records each call, in order, for tests.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;

use super::Sys;

/// One recorded call, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Call {
    SetPdeathsig(Signal),
    ParentAlive(RawFd),
    DupAbove {
        fd: RawFd,
        min: RawFd,
    },
    Dup2 {
        old: RawFd,
        new: RawFd,
    },
    CloseFrom(RawFd),
    Umask(u32),
    Mount {
        source: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    MountSetattrReadonly {
        path: PathBuf,
        recursive: bool,
    },
    LockedMountFlags(PathBuf),
    UmountDetach(PathBuf),
    BindIdmapped {
        src: PathBuf,
        dst: PathBuf,
        userns: PathBuf,
    },
    PivotRoot {
        new_root: PathBuf,
        put_old: PathBuf,
    },
    Chdir(PathBuf),
    Mkdir {
        path: PathBuf,
        mode: u32,
    },
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    MknodChar {
        path: PathBuf,
        mode: u32,
        major: u32,
        minor: u32,
    },
    WriteFile {
        path: PathBuf,
        contents: Vec<u8>,
        mode: u32,
    },
    Unlink(PathBuf),
    Rmdir(PathBuf),
    Sethostname(String),
    UnshareNet,
    LoopbackUp,
}

/// Picks the calls a [`RecordingSys`] fails.
pub type CallFilter = fn(&Call) -> bool;

/// Records every call; can be told to fail one kind of call with an errno.
#[derive(Debug, Default)]
pub struct RecordingSys {
    calls: RefCell<Vec<Call>>,
    fail: Option<(CallFilter, Errno)>,
    next_fd: RefCell<RawFd>,
    parent_dead: bool,
    no_mount_setattr: bool,
}

impl RecordingSys {
    /// A fake where every call succeeds.
    pub fn new() -> Self {
        Self {
            next_fd: RefCell::new(100),
            ..Self::default()
        }
    }
    /// Fail the first call matching `which` with `errno` (and every later one).
    pub fn failing(mut self, which: fn(&Call) -> bool, errno: Errno) -> Self {
        self.fail = Some((which, errno));
        self
    }
    /// Report the parent as already dead.
    pub fn with_dead_parent(mut self) -> Self {
        self.parent_dead = true;
        self
    }
    /// Answer `ENOSYS` to `mount_setattr`, as a kernel older than 5.12 does.
    pub fn without_mount_setattr(mut self) -> Self {
        self.no_mount_setattr = true;
        self
    }
    /// The calls so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }
    fn record(&self, call: Call) -> Result<(), Errno> {
        let failed = match &self.fail {
            Some((which, errno)) if which(&call) => Err(*errno),
            _ => Ok(()),
        };
        self.calls.borrow_mut().push(call);
        failed
    }
}

fn pb(p: &Path) -> PathBuf {
    p.to_path_buf()
}

impl Sys for RecordingSys {
    fn set_pdeathsig(&self, signal: Signal) -> Result<(), Errno> {
        self.record(Call::SetPdeathsig(signal))
    }
    fn parent_alive(&self, pidfd: BorrowedFd<'_>) -> Result<bool, Errno> {
        self.record(Call::ParentAlive(pidfd.as_raw_fd()))?;
        Ok(!self.parent_dead)
    }
    fn dup_above(&self, fd: RawFd, min: RawFd) -> Result<RawFd, Errno> {
        self.record(Call::DupAbove { fd, min })?;
        let mut next = self.next_fd.borrow_mut();
        *next += 1;
        Ok(*next)
    }
    fn dup2(&self, old: RawFd, new: RawFd) -> Result<(), Errno> {
        self.record(Call::Dup2 { old, new })
    }
    fn close_from(&self, first: RawFd) -> Result<(), Errno> {
        self.record(Call::CloseFrom(first))
    }
    fn umask(&self, mask: Mode) -> Mode {
        let _ = self.record(Call::Umask(mask.bits()));
        Mode::from_bits_truncate(0o022)
    }
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno> {
        self.record(Call::Mount {
            source: source.map(pb),
            target: pb(target),
            fstype: fstype.map(str::to_owned),
            flags,
            data: data.map(str::to_owned),
        })
    }
    fn mount_setattr_readonly(&self, path: &Path, recursive: bool) -> Result<(), Errno> {
        self.record(Call::MountSetattrReadonly {
            path: pb(path),
            recursive,
        })?;
        if self.no_mount_setattr {
            return Err(Errno::ENOSYS);
        }
        Ok(())
    }
    fn locked_mount_flags(&self, path: &Path) -> Result<MsFlags, Errno> {
        self.record(Call::LockedMountFlags(pb(path)))?;
        Ok(MsFlags::MS_NOSUID | MsFlags::MS_NODEV)
    }
    fn bind_idmapped(
        &self,
        src: &Path,
        dst: &Path,
        userns: &Path,
    ) -> Result<(), (&'static str, Errno)> {
        self.record(Call::BindIdmapped {
            src: pb(src),
            dst: pb(dst),
            userns: pb(userns),
        })
        .map_err(|e| ("open_tree", e))
    }
    fn umount_detach(&self, path: &Path) -> Result<(), Errno> {
        self.record(Call::UmountDetach(pb(path)))
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<(), Errno> {
        self.record(Call::PivotRoot {
            new_root: pb(new_root),
            put_old: pb(put_old),
        })
    }
    fn chdir(&self, path: &Path) -> Result<(), Errno> {
        self.record(Call::Chdir(pb(path)))
    }
    fn mkdir(&self, path: &Path, mode: Mode) -> Result<(), Errno> {
        self.record(Call::Mkdir {
            path: pb(path),
            mode: mode.bits(),
        })
    }
    fn symlink(&self, target: &Path, link: &Path) -> Result<(), Errno> {
        self.record(Call::Symlink {
            target: pb(target),
            link: pb(link),
        })
    }
    fn mknod_char(&self, path: &Path, mode: Mode, major: u32, minor: u32) -> Result<(), Errno> {
        self.record(Call::MknodChar {
            path: pb(path),
            mode: mode.bits(),
            major,
            minor,
        })
    }
    fn write_file(
        &self,
        path: &Path,
        contents: &[u8],
        mode: Mode,
    ) -> Result<(), (&'static str, Errno)> {
        self.record(Call::WriteFile {
            path: pb(path),
            contents: contents.to_vec(),
            mode: mode.bits(),
        })
        .map_err(|e| ("open", e))
    }
    fn unlink(&self, path: &Path) -> Result<(), Errno> {
        self.record(Call::Unlink(pb(path)))
    }
    fn rmdir(&self, path: &Path) -> Result<(), Errno> {
        self.record(Call::Rmdir(pb(path)))
    }
    fn unshare_net(&self) -> Result<(), Errno> {
        self.record(Call::UnshareNet)
    }
    fn sethostname(&self, name: &str) -> Result<(), Errno> {
        self.record(Call::Sethostname(name.to_owned()))
    }
    fn loopback_up(&self) -> Result<(), (&'static str, Errno)> {
        self.record(Call::LoopbackUp)
            .map_err(|e| ("ioctl(SIOCSIFFLAGS)", e))
    }
}
