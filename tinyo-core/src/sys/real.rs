//! The real syscalls. All of tinyo's `unsafe` code is in this file.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io::Write as _;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::mount::{MntFlags, MsFlags};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::stat::{Mode, SFlag};
use nix::sys::statvfs::FsFlags;
use nix::unistd::Pid;

use super::Sys;
use crate::namespaces::Namespaces;
use crate::outcome::Termination;

/// The real kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealSys;

fn cpath(path: &Path) -> Result<CString, Errno> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

impl Sys for RealSys {
    fn set_pdeathsig(&self, signal: Signal) -> Result<(), Errno> {
        nix::sys::prctl::set_pdeathsig(signal)
    }

    fn parent_alive(&self, pidfd: BorrowedFd<'_>) -> Result<bool, Errno> {
        // A pidfd polls readable once its process has exited.
        let mut fds = [PollFd::new(pidfd, PollFlags::POLLIN)];
        let n = nix::poll::poll(&mut fds, PollTimeout::ZERO)?;
        Ok(n == 0)
    }

    fn dup_above(&self, fd: RawFd, min: RawFd) -> Result<RawFd, Errno> {
        // SAFETY: fcntl(F_DUPFD) only reads `fd`; an invalid fd is reported as EBADF.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        nix::fcntl::fcntl(fd, FcntlArg::F_DUPFD(min))
    }

    fn dup2(&self, old: RawFd, new: RawFd) -> Result<(), Errno> {
        // SAFETY: plain syscall on integers; the caller owns the fd table of this process
        // (PID 1, single-threaded) and means to replace `new`.
        Errno::result(unsafe { libc::dup2(old, new) }).map(drop)
    }

    fn close_from(&self, first: RawFd) -> Result<(), Errno> {
        let first = u32::try_from(first).map_err(|_| Errno::EBADF)?;
        // SAFETY: closes fds this single-threaded process no longer uses; no Rust object
        // that owns one of them is used afterwards (the caller forgets them first).
        Errno::result(unsafe { libc::close_range(first, u32::MAX, 0) }).map(drop)
    }

    fn umask(&self, mask: Mode) -> Mode {
        nix::sys::stat::umask(mask)
    }

    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno> {
        nix::mount::mount(source, target, fstype, flags, data)
    }

    fn mount_setattr_readonly(&self, path: &Path, recursive: bool) -> Result<(), Errno> {
        const MOUNT_ATTR_RDONLY: u64 = 1;
        let c = cpath(path)?;
        let flags = if recursive { libc::AT_RECURSIVE } else { 0 } as libc::c_uint;
        mount_setattr(libc::AT_FDCWD, &c, flags, MOUNT_ATTR_RDONLY, 0)
    }

    fn locked_mount_flags(&self, path: &Path) -> Result<MsFlags, Errno> {
        let st = nix::sys::statvfs::statvfs(path)?.flags();
        let mut flags = MsFlags::empty();
        for (fs, ms) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if st.contains(fs) {
                flags |= ms;
            }
        }
        Ok(flags)
    }

    fn bind_idmapped(
        &self,
        src: &Path,
        dst: &Path,
        userns: &Path,
    ) -> Result<(), (&'static str, Errno)> {
        const OPEN_TREE_CLONE: libc::c_uint = 1;
        const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
        const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
        let ns = nix::fcntl::open(userns, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| ("open(userns)", e))?;
        let (c_src, c_dst) = (
            cpath(src).map_err(|e| ("open_tree", e))?,
            cpath(dst).map_err(|e| ("move_mount", e))?,
        );
        // SAFETY: `c_src` is a valid path; the result is a new fd we own.
        let tree = unsafe {
            libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                c_src.as_ptr(),
                OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
            )
        };
        let tree = Errno::result(tree).map_err(|e| ("open_tree", e))?;
        // SAFETY: open_tree returned a fresh fd.
        let tree = unsafe { OwnedFd::from_raw_fd(tree as RawFd) };
        let empty = c"";
        mount_setattr(
            tree.as_raw_fd(),
            empty,
            libc::AT_EMPTY_PATH as libc::c_uint,
            MOUNT_ATTR_IDMAP,
            ns.as_raw_fd() as u64,
        )
        .map_err(|e| ("mount_setattr(MOUNT_ATTR_IDMAP)", e))?;
        // SAFETY: as above; the kernel attaches the detached tree at `c_dst`.
        let r = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                tree.as_raw_fd(),
                empty.as_ptr(),
                libc::AT_FDCWD,
                c_dst.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            )
        };
        Errno::result(r).map(drop).map_err(|e| ("move_mount", e))
    }

    fn umount_detach(&self, path: &Path) -> Result<(), Errno> {
        nix::mount::umount2(path, MntFlags::MNT_DETACH)
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<(), Errno> {
        nix::unistd::pivot_root(new_root, put_old)
    }

    fn chdir(&self, path: &Path) -> Result<(), Errno> {
        nix::unistd::chdir(path)
    }

    fn mkdir(&self, path: &Path, mode: Mode) -> Result<(), Errno> {
        nix::unistd::mkdir(path, mode)
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<(), Errno> {
        nix::unistd::symlinkat(target, nix::fcntl::AT_FDCWD, link)
    }

    fn mknod_char(&self, path: &Path, mode: Mode, major: u32, minor: u32) -> Result<(), Errno> {
        nix::sys::stat::mknod(
            path,
            SFlag::S_IFCHR,
            mode,
            nix::sys::stat::makedev(u64::from(major), u64::from(minor)),
        )
    }

    fn write_file(
        &self,
        path: &Path,
        contents: &[u8],
        mode: Mode,
    ) -> Result<(), (&'static str, Errno)> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC,
            mode,
        )
        .map_err(|e| ("open", e))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(contents).map_err(|e| {
            (
                "write",
                Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            )
        })
    }

    fn unlink(&self, path: &Path) -> Result<(), Errno> {
        nix::unistd::unlink(path)
    }

    fn rmdir(&self, path: &Path) -> Result<(), Errno> {
        let c = cpath(path)?;
        // SAFETY: `c` is a valid NUL-terminated path.
        Errno::result(unsafe { libc::rmdir(c.as_ptr()) }).map(drop)
    }

    fn unshare_net(&self) -> Result<(), Errno> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
    }

    fn sethostname(&self, name: &str) -> Result<(), Errno> {
        nix::unistd::sethostname(name)
    }

    fn loopback_up(&self) -> Result<(), (&'static str, Errno)> {
        // SAFETY: plain socket(2) call; the fd is owned right away.
        let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        let sock = Errno::result(raw).map_err(|e| ("socket", e))?;
        // SAFETY: `sock` was just returned by socket(2) and is owned by nothing else.
        let sock = unsafe { OwnedFd::from_raw_fd(sock) };
        // SAFETY: `ifreq` is plain old data; all-zero is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        // SAFETY: `req` is a valid ifreq naming `lo`; SIOCGIFFLAGS fills ifru_flags.
        Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) })
            .map_err(|e| ("ioctl(SIOCGIFFLAGS)", e))?;
        // SAFETY: the union member written by SIOCGIFFLAGS is `ifru_flags`.
        unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
        // SAFETY: as above; SIOCSIFFLAGS reads the flags from `req`.
        Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) })
            .map_err(|e| ("ioctl(SIOCSIFFLAGS)", e))?;
        Ok(())
    }
}

/// `mount_setattr(dirfd, path, flags, {attr_set, userns_fd})`: set mount attributes, every
/// other attribute untouched.
fn mount_setattr(
    dirfd: RawFd,
    path: &std::ffi::CStr,
    flags: libc::c_uint,
    attr_set: u64,
    userns_fd: u64,
) -> Result<(), Errno> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd,
    };
    // SAFETY: `path` is a valid NUL-terminated string and `attr` a properly laid out
    // `struct mount_attr` whose size we pass; the kernel only reads both.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(r).map(drop)
}

// ---------------------------------------------------------------------------------------
// Process control.

/// Proof that the current process has exactly one thread, so that it may `fork` and go on
/// running Rust code in the child. Neither `Send` nor `Sync`: it cannot leave the thread
/// that obtained it.
#[derive(Debug)]
pub struct SingleThreaded {
    _not_send: PhantomData<*const ()>,
}

impl SingleThreaded {
    /// Check `/proc/self/task`: `Some` only when this process has a single thread.
    pub fn check() -> Option<Self> {
        let tasks = std::fs::read_dir("/proc/self/task").ok()?.count();
        (tasks == 1).then_some(Self {
            _not_send: PhantomData,
        })
    }
}

/// Which side of a fork or clone this is.
#[derive(Debug)]
pub enum Forked<P> {
    /// The new process, single-threaded by construction.
    Child(SingleThreaded),
    /// The caller, with what it learned of the child.
    Parent(P),
}

/// `fork()`.
pub fn fork(_proof: &SingleThreaded) -> Result<Forked<Pid>, Errno> {
    // SAFETY: the process is single-threaded (the proof), so the child may run any code.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => Ok(Forked::Child(SingleThreaded {
            _not_send: PhantomData,
        })),
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
    }
}

/// Whose child a cloned container is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentOf {
    /// The caller's: the zygote's new containers are children of the harness
    /// (`CLONE_PARENT`), which reaps and kills them through their pidfd.
    CallersParent,
    /// The caller's own child (the stock-harness path, which has no zygote).
    Caller,
}

/// `clone3(CLONE_PIDFD | namespaces [| CLONE_PARENT])`: a child in fresh namespaces,
/// returning its pid and a pidfd in the caller.
pub fn clone_into(
    _proof: &SingleThreaded,
    namespaces: Namespaces,
    parent: ParentOf,
) -> Result<Forked<(Pid, OwnedFd)>, Errno> {
    let mut pidfd: RawFd = -1;
    let (parent_flag, exit_signal) = match parent {
        // With CLONE_PARENT the exit signal is inherited from this process (SIGCHLD) and
        // clone3 requires 0 here.
        ParentOf::CallersParent => (libc::CLONE_PARENT as u64, 0),
        ParentOf::Caller => (0, libc::SIGCHLD as u64),
    };
    let args = libc::clone_args {
        flags: u64::from(namespaces.bits()) | parent_flag | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        child_tid: 0,
        parent_tid: 0,
        exit_signal,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: 0,
    };
    // SAFETY: without CLONE_VM and with no stack given, clone3 behaves like fork: the child
    // gets a copy of this single-threaded process (the proof) and returns here with 0.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    let pid = match Errno::result(r) {
        // Seccomp profiles (Docker's) answer ENOSYS to clone3 so that libc falls back to
        // clone; do the same: the legacy call takes the same flags, the exit signal in its
        // low byte, and stores the pidfd through its parent_tid argument.
        Err(Errno::ENOSYS) => {
            let flags = args.flags
                | if parent == ParentOf::Caller {
                    libc::SIGCHLD as u64
                } else {
                    0
                };
            // SAFETY: as above: a fork-like clone (no CLONE_VM, no stack) of a single-threaded process.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_clone,
                    flags,
                    0usize,
                    &mut pidfd as *mut RawFd,
                    0usize,
                    0usize,
                )
            };
            Errno::result(r)?
        }
        other => other?,
    };
    if pid == 0 {
        return Ok(Forked::Child(SingleThreaded {
            _not_send: PhantomData,
        }));
    }
    // SAFETY: the kernel stored a fresh pidfd for the child in `pidfd`; we own it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Forked::Parent((Pid::from_raw(pid as libc::pid_t), pidfd)))
}

/// `unshare(flags)`; only sound while single-threaded for the flags tinyo uses.
pub fn unshare(_proof: &SingleThreaded, namespaces: Namespaces) -> Result<(), Errno> {
    nix::sched::unshare(nix::sched::CloneFlags::from_bits_truncate(
        namespaces.bits() as libc::c_int,
    ))
}

/// Write the id maps of the (waiting) process `pid`: `setgroups` first when asked, then
/// `uid_map`, then `gid_map`. The error names the file.
pub fn write_id_maps(pid: Pid, maps: &crate::userns::IdMaps) -> Result<(), (String, Errno)> {
    let write = |file: &str, contents: &str| {
        let path = format!("/proc/{}/{file}", pid.as_raw());
        let err = |e: Errno| (path.clone(), e);
        let fd = nix::fcntl::open(
            path.as_str(),
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(err)?;
        write_all(fd.as_fd(), contents.as_bytes()).map_err(err)
    };
    if maps.deny_setgroups {
        write("setgroups", "deny")?;
    }
    write("uid_map", &maps.uid_map)?;
    write("gid_map", &maps.gid_map)
}

/// After the id maps are written: take the container's root ids (`setresgid`, then an empty
/// group list unless `setgroups` is denied, then `setresuid`). Until then this process still
/// has the host's ids, which the container's maps may not include.
pub fn become_container_root(deny_setgroups: bool) -> Result<(), (&'static str, Errno)> {
    let root_g = nix::unistd::Gid::from_raw(0);
    let root_u = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresgid(root_g, root_g, root_g).map_err(|e| ("setresgid", e))?;
    if !deny_setgroups {
        nix::unistd::setgroups(&[]).map_err(|e| ("setgroups", e))?;
    }
    nix::unistd::setresuid(root_u, root_u, root_u).map_err(|e| ("setresuid", e))
}

/// Become `uid`/`gid` (no supplementary groups where allowed): the body's `user = …`.
pub fn become_user(uid: u32, gid: u32) -> Result<(), (&'static str, Errno)> {
    let g = nix::unistd::Gid::from_raw(gid);
    let u = nix::unistd::Uid::from_raw(uid);
    let _ = nix::unistd::setgroups(&[]);
    nix::unistd::setresgid(g, g, g).map_err(|e| ("setresgid", e))?;
    nix::unistd::setresuid(u, u, u).map_err(|e| ("setresuid", e))
}

/// Whether this process is in the initial user namespace (its `uid_map` is the identity
/// over every id).
pub fn in_init_userns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
}

/// Apply the body's resource limits (soft and hard).
pub fn apply_limits(limits: &crate::setup::Limits) -> Result<(), Errno> {
    use nix::sys::resource::{setrlimit, Resource};
    if let Some(bytes) = limits.memory {
        setrlimit(Resource::RLIMIT_AS, bytes, bytes)?;
    }
    if let Some(n) = limits.pids {
        setrlimit(Resource::RLIMIT_NPROC, n, n)?;
    }
    Ok(())
}

/// The effective uid and gid of this process.
pub fn effective_ids() -> (u32, u32) {
    (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    )
}

/// Open `path` with `O_PATH | O_DIRECTORY`: a handle that later binds can use through
/// `/proc/self/fd/N` whatever hides or guards the path afterwards.
pub fn open_dir_path(path: &Path) -> Result<OwnedFd, Errno> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// A user namespace with `maps`, held by fd (for id-mapped mounts): a child is cloned into
/// it, mapped, its namespace opened, and the child killed and reaped.
pub fn make_userns_fd(
    proof: &SingleThreaded,
    maps: &crate::userns::IdMaps,
) -> Result<OwnedFd, Errno> {
    let (ready, hold) = pipe()?;
    match clone_into(proof, Namespaces::USER, ParentOf::Caller)? {
        Forked::Child(_) => {
            drop(hold);
            let mut b = [0u8];
            let _ = read(ready.as_fd(), &mut b);
            exit_now(0)
        }
        Forked::Parent((pid, pidfd)) => {
            drop(ready);
            let result = write_id_maps(pid, maps).map_err(|(_, e)| e).and_then(|()| {
                nix::fcntl::open(
                    format!("/proc/{}/ns/user", pid.as_raw()).as_str(),
                    OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
            });
            drop(hold);
            let _ = pidfd_kill(pidfd.as_fd(), Signal::SIGKILL);
            let _ = wait_pidfd(pidfd.as_fd());
            result
        }
    }
}

/// The CPUs this thread may run on (`sched_getaffinity`), in order; empty if unknown.
pub fn allowed_cpus() -> Vec<usize> {
    nix::sched::sched_getaffinity(Pid::from_raw(0)).map_or_else(
        |_| Vec::new(),
        |set| {
            (0..nix::sched::CpuSet::count())
                .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
                .collect()
        },
    )
}

/// `sched_setaffinity` of the calling thread (and what it forks or clones next) to `cpus`.
pub fn set_affinity(cpus: &[usize]) -> Result<(), Errno> {
    let mut set = nix::sched::CpuSet::new();
    for &cpu in cpus {
        set.set(cpu)?;
    }
    nix::sched::sched_setaffinity(Pid::from_raw(0), &set)
}

/// Open `path` (a file or a directory) with `O_PATH`: a handle usable through
/// `/proc/self/fd/N` whatever hides the path later.
pub fn open_path(path: &Path) -> Result<OwnedFd, Errno> {
    nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
}

/// `pidfd_open(pid, 0)`.
pub fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: plain syscall on integers; the result is a new fd we own.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = Errno::result(r)?;
    // SAFETY: `fd` is a fresh pidfd returned by the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_send_signal(pidfd, signal)`: race-free, the pidfd names exactly one process.
pub fn pidfd_kill(pidfd: BorrowedFd<'_>, signal: Signal) -> Result<(), Errno> {
    // SAFETY: plain syscall; a null siginfo is allowed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

/// Map a nix wait status to a [`Termination`]; `None` for stops and continues.
pub fn termination(status: nix::sys::wait::WaitStatus) -> Option<Termination> {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, code) => Some(Termination::Exited(code)),
        WaitStatus::Signaled(_, signal, core_dumped) => Some(Termination::Signaled {
            signal: signal as i32,
            core_dumped,
        }),
        _ => None,
    }
}

/// `waitid(P_PIDFD, pidfd, WEXITED)`: reap the child behind `pidfd`.
pub fn wait_pidfd(pidfd: BorrowedFd<'_>) -> Result<Termination, Errno> {
    use nix::sys::wait::{waitid, Id, WaitPidFlag};
    loop {
        match waitid(Id::PIDFd(pidfd), WaitPidFlag::WEXITED) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(status) => {
                if let Some(t) = termination(status) {
                    return Ok(t);
                }
            }
        }
    }
}

/// `waitpid(-1, 0)`: reap any child; `(pid, how it ended)`.
pub fn wait_any() -> Result<(Pid, Option<Termination>), Errno> {
    let status = nix::sys::wait::waitpid(None::<Pid>, None)?;
    Ok((
        status.pid().unwrap_or(Pid::from_raw(0)),
        termination(status),
    ))
}

/// `waitpid(pid, 0)`.
pub fn wait_pid(pid: Pid) -> Result<Option<Termination>, Errno> {
    loop {
        match nix::sys::wait::waitpid(pid, None) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(status) => return Ok(termination(status)),
        }
    }
}

/// `socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC)`.
pub fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd), Errno> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}

/// `pipe2(O_CLOEXEC)`: `(read, write)`.
pub fn pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC)
}

/// Send `bytes` with `fds` attached (`SCM_RIGHTS`).
pub fn send_with_fds(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<(), Errno> {
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let iov = [std::io::IoSlice::new(bytes)];
    let cmsgs = if raw.is_empty() {
        vec![]
    } else {
        vec![ControlMessage::ScmRights(&raw)]
    };
    loop {
        match nix::sys::socket::sendmsg::<()>(
            sock.as_raw_fd(),
            &iov,
            &cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok(()),
        }
    }
}

/// Receive one message into `buf` with any attached fds; `Ok(None)` at end of stream.
pub fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
) -> Result<Option<(usize, Vec<OwnedFd>)>, Errno> {
    let mut space = nix::cmsg_space!([RawFd; 8]);
    loop {
        let mut iov = [std::io::IoSliceMut::new(buf)];
        let msg = match nix::sys::socket::recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(msg) => msg,
        };
        let mut fds = Vec::new();
        for cmsg in msg.cmsgs().map_err(|_| Errno::EBADMSG)? {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                for fd in raw {
                    // SAFETY: the kernel installed these fds in our table for this message;
                    // nothing else owns them.
                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        let n = msg.bytes;
        if n == 0 && fds.is_empty() {
            return Ok(None);
        }
        return Ok(Some((n, fds)));
    }
}

/// Open `/dev/null` read-write.
pub fn open_devnull() -> Result<OwnedFd, Errno> {
    nix::fcntl::open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
}

/// Leave the process now, without running `atexit` handlers or destructors (they belong to
/// the harness this process was forked from), after flushing Rust's stdout.
pub fn exit_now(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// Keep `keep` as fd 3 and close every other fd above 2 (what a fork inherited: other
/// zygotes' sockets, the harness's files). Returns the kept fd.
pub fn keep_only(keep: OwnedFd) -> Result<OwnedFd, Errno> {
    const AT: RawFd = 3;
    if keep.as_raw_fd() != AT {
        // SAFETY: dup2 onto fd 3 of this single-threaded process; whatever was at 3 is
        // owned by nothing we use again.
        Errno::result(unsafe { libc::dup2(keep.as_raw_fd(), AT) })?;
    }
    // The original number, if not 3, is closed by close_range below: forget it, do not
    // close it twice.
    std::mem::forget(keep);
    // SAFETY: closes inherited fds no Rust object of this process uses afterwards.
    Errno::result(unsafe { libc::close_range(AT as u32 + 1, u32::MAX, 0) })?;
    // SAFETY: fd 3 now holds the kept fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(AT) })
}

/// Make `fd` the owner of nothing: forget it without closing (after `close_from` closed it).
pub fn forget_fd(fd: OwnedFd) {
    std::mem::forget(fd);
}

/// Write all of `bytes` to `fd`.
pub fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => bytes = &bytes[n..],
        }
    }
    Ok(())
}

/// Borrow a raw fd number this process knows to be open for the duration of the borrow.
pub fn borrow_fd<'a>(fd: RawFd) -> BorrowedFd<'a> {
    // SAFETY: callers pass only fd numbers installed by `setup` (0–3) which stay open for
    // the life of the process.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// A page of memory shared between PID 1 and the body it forks: the body writes its
/// [`crate::report::BodyReport`] there, so it needs no file descriptor of tinyo's.
#[derive(Debug)]
pub struct SharedPage {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this struct; concurrent writers from
// several threads of one process are serialised by the `Mutex` callers wrap it in
// (the body's panic hook); across processes only one (the body) writes at a time.
unsafe impl Send for SharedPage {}
// SAFETY: as above.
unsafe impl Sync for SharedPage {}

impl SharedPage {
    /// Map `len` bytes of shared anonymous memory (inherited by `fork`ed children).
    pub fn new(len: usize) -> Result<Self, Errno> {
        let size = std::num::NonZeroUsize::new(len.max(8)).ok_or(Errno::EINVAL)?;
        // SAFETY: a fresh anonymous mapping aliases nothing.
        let ptr = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                size,
                nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                nix::sys::mman::MapFlags::MAP_SHARED,
            )
        }?;
        Ok(Self {
            ptr: ptr.cast(),
            len: size.get(),
        })
    }

    /// Store `bytes` (truncated to fit) behind a length header.
    pub fn store(&self, bytes: &[u8]) {
        let n = bytes.len().min(self.len - 4);
        // SAFETY: the mapping is `self.len` bytes long; we write 4 + n ≤ len bytes. The
        // length is written last so a reader never sees a longer length than was copied.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.as_ptr().add(4), n);
            std::ptr::write_volatile(self.ptr.as_ptr().cast::<u32>(), n as u32);
        }
    }

    /// Read back what was stored.
    pub fn load(&self) -> Vec<u8> {
        // SAFETY: the mapping is valid for `self.len` bytes and the header is clamped to it.
        unsafe {
            let n = (std::ptr::read_volatile(self.ptr.as_ptr().cast::<u32>()) as usize)
                .min(self.len - 4);
            std::slice::from_raw_parts(self.ptr.as_ptr().add(4), n).to_vec()
        }
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no reference into it outlives self.
        let _ = unsafe { nix::sys::mman::munmap(self.ptr.cast(), self.len) };
    }
}

/// Wait until one of `fds` is readable (or hung up), or `timeout_ms` passes (`None`: forever).
/// Returns the readiness of each.
pub fn poll_readable(fds: &[BorrowedFd<'_>], timeout_ms: Option<u64>) -> Result<Vec<bool>, Errno> {
    let mut pfds: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
        .collect();
    let timeout = match timeout_ms {
        None => PollTimeout::NONE,
        Some(ms) => {
            PollTimeout::try_from(ms.min(i32::MAX as u64) as i32).unwrap_or(PollTimeout::MAX)
        }
    };
    loop {
        match nix::poll::poll(&mut pfds, timeout) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    Ok(pfds
        .iter()
        .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
        .collect())
}

/// Observe the host facts the rootfs plan depends on (`lstat`, `readlink` of the system
/// directories; existence of `/etc/hostname` and `/etc/hosts`).
pub fn host_facts() -> tinyo_rootfs::HostFacts {
    use tinyo_rootfs::{EntryKind, HostFacts, SYSTEM_DIRS};
    let system = SYSTEM_DIRS
        .iter()
        .map(|dir| {
            let path = std::path::PathBuf::from(dir);
            let kind = match std::fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => {
                    std::fs::read_link(&path).map_or(EntryKind::Absent, EntryKind::Symlink)
                }
                Ok(m) if m.is_dir() => EntryKind::Dir,
                _ => EntryKind::Absent,
            };
            (path, kind)
        })
        .collect();
    let mut facts = HostFacts::new(system);
    facts.etc_hostname = Path::new("/etc/hostname").is_file();
    facts.etc_hosts = Path::new("/etc/hosts").is_file();
    facts
}

/// Read once from `fd` into `buf`; `Ok(0)` at end of file.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match nix::unistd::read(fd, buf) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// `dup(fd)` with `O_CLOEXEC`.
pub fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    nix::fcntl::fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(0)).map(|raw| {
        // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
        unsafe { OwnedFd::from_raw_fd(raw) }
    })
}
