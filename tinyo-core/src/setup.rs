//! The container's setup, as PID 1 runs it: one linear sequence over the [`Sys`] seam.

use std::os::fd::{BorrowedFd, RawFd};

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use tinyo_rootfs::{MountFlags, Step};

use crate::error::SetupError;
use crate::sys::Sys;

/// The network a container gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NetMode {
    /// A fresh network namespace with `lo` up.
    #[default]
    Loopback,
    /// A fresh network namespace, `lo` left down.
    None,
    /// The host's network namespace.
    Host,
}

/// What PID 1 sets up before the body runs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Spec {
    /// The container's hostname.
    pub hostname: String,
    /// Its network.
    pub net: NetMode,
    /// Its filesystem, from [`tinyo_rootfs::plan`].
    pub rootfs: Vec<Step>,
    /// Resource limits of the body.
    pub limits: Limits,
}

/// Resource limits applied to the test body (as rlimits: `RLIMIT_AS` and `RLIMIT_NPROC`,
/// which the kernel counts per user namespace, so per container).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Limits {
    /// Address-space limit in bytes.
    pub memory: Option<u64>,
    /// Most processes at once, the container's init included.
    pub pids: Option<u64>,
}

impl Limits {
    /// Limits from their parts.
    pub fn new(memory: Option<u64>, pids: Option<u64>) -> Self {
        Self { memory, pids }
    }

    /// How the limits are enforced, for messages.
    pub const MECHANISM: &'static str =
        "enforced as rlimits (RLIMIT_AS, RLIMIT_NPROC); cgroups are not used";
}

impl Spec {
    /// A spec from its parts.
    pub fn new(hostname: impl Into<String>, net: NetMode, rootfs: Vec<Step>) -> Self {
        Self {
            hostname: hostname.into(),
            net,
            rootfs,
            limits: Limits::default(),
        }
    }
}

/// The fds PID 1 inherited, by number, and where they end up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InheritedFds {
    /// Becomes fd 0 (`/dev/null`).
    pub stdin: RawFd,
    /// Becomes fd 1.
    pub stdout: RawFd,
    /// Becomes fd 2.
    pub stderr: RawFd,
    /// Becomes [`REPORT_FD`]; PID 1 alone keeps it (the body closes it first thing).
    pub report: RawFd,
}

/// Where PID 1 keeps its report channel.
pub const REPORT_FD: RawFd = 3;

/// Run the whole setup of PID 1, in order: [`install_fds`], then [`build`]. Returns the
/// umask to restore for the body.
pub fn setup<S: Sys>(
    sys: &S,
    spec: &Spec,
    fds: InheritedFds,
    parent: BorrowedFd<'_>,
) -> Result<Mode, SetupError> {
    install_fds(sys, fds, parent)?;
    build(sys, spec)
}

/// Steps 1–2: arm the death signal, then put stdio at 0–2 and the report channel at
/// [`REPORT_FD`], closing everything else. Until this returns `Ok`, the report channel is
/// still at `fds.report`.
pub fn install_fds<S: Sys>(
    sys: &S,
    fds: InheritedFds,
    parent: BorrowedFd<'_>,
) -> Result<(), SetupError> {
    arm_death_signal(sys, parent)?;
    move_fds(sys, fds)
}

/// Step 1: die with the harness.
pub fn arm_death_signal<S: Sys>(sys: &S, parent: BorrowedFd<'_>) -> Result<(), SetupError> {
    // 1. Die with the harness. The parent that counts is the harness's main thread (the
    //    zygote cloned us with CLONE_PARENT), which lives as long as the harness. The harness
    //    may have died before the signal was armed: check it through its pidfd (getppid() is
    //    0 for a parent outside our PID namespace, so it cannot tell).
    sys.set_pdeathsig(Signal::SIGKILL)
        .map_err(|errno| SetupError::DeathSignal { errno })?;
    match sys.parent_alive(parent) {
        Ok(true) => {}
        Ok(false) => return Err(SetupError::ParentGone),
        Err(errno) => return Err(SetupError::DeathSignal { errno }),
    }
    Ok(())
}

/// Step 2: stdio at 0–2 and the report channel at [`REPORT_FD`], every other fd closed.
pub fn move_fds<S: Sys>(sys: &S, fds: InheritedFds) -> Result<(), SetupError> {
    // 2. stdio and the report channel at 0..=3, every other inherited fd closed (the
    //    zygote's socket, the harness's pidfd, anything the harness had open). First copy
    //    them above 9 so no dup2 clobbers one still needed.
    let fds_err = |syscall| move |errno| SetupError::Fds { syscall, errno };
    let mut high = [0; 4];
    for (slot, fd) in high
        .iter_mut()
        .zip([fds.stdin, fds.stdout, fds.stderr, fds.report])
    {
        *slot = sys.dup_above(fd, 10).map_err(fds_err("fcntl(F_DUPFD)"))?;
    }
    for (target, fd) in high.iter().enumerate() {
        sys.dup2(*fd, target as RawFd).map_err(fds_err("dup2"))?;
    }
    sys.close_from(REPORT_FD + 1)
        .map_err(fds_err("close_range"))?;
    Ok(())
}

/// Steps 3–4: the filesystem, the hostname and the network. Returns the umask to restore.
pub fn build<S: Sys>(sys: &S, spec: &Spec) -> Result<Mode, SetupError> {
    // 3. A network namespace of its own, before sysfs is mounted (sysfs shows the network
    //    of whoever mounts it). Made here, not in the zygote's clone3, so that the costliest
    //    namespace to create is made by each container in parallel.
    if spec.net != NetMode::Host {
        sys.unshare_net().map_err(|errno| SetupError::Unshare {
            namespace: "NET",
            errno,
        })?;
    }

    // 4. The filesystem: modes in the plan are exact, so no umask while applying it.
    let umask = sys.umask(Mode::empty());
    apply(sys, &spec.rootfs)?;

    // 5. Identity and network.
    sys.sethostname(&spec.hostname)
        .map_err(|errno| SetupError::Hostname {
            name: spec.hostname.clone(),
            errno,
        })?;
    if spec.net == NetMode::Loopback {
        sys.loopback_up()
            .map_err(|(syscall, errno)| SetupError::Loopback { syscall, errno })?;
    }
    Ok(umask)
}

fn ms_flags(flags: MountFlags) -> MsFlags {
    let mut ms = MsFlags::empty();
    for (f, m) in [
        (MountFlags::NOSUID, MsFlags::MS_NOSUID),
        (MountFlags::NODEV, MsFlags::MS_NODEV),
        (MountFlags::NOEXEC, MsFlags::MS_NOEXEC),
        (MountFlags::RDONLY, MsFlags::MS_RDONLY),
    ] {
        if flags.contains(f) {
            ms |= m;
        }
    }
    ms
}

/// Apply a rootfs plan, step by step, stopping at the first failure.
pub fn apply<S: Sys>(sys: &S, plan: &[Step]) -> Result<(), SetupError> {
    for step in plan {
        apply_step(sys, step)?;
    }
    Ok(())
}

fn apply_step<S: Sys>(sys: &S, step: &Step) -> Result<(), SetupError> {
    let create = |path: &std::path::Path, syscall| {
        let path = path.to_path_buf();
        move |errno| SetupError::Create {
            path,
            syscall,
            errno,
        }
    };
    match step {
        Step::MakePrivate { path } => sys
            .mount(
                None,
                path,
                None,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None,
            )
            .map_err(|errno| SetupError::MakePrivate {
                path: path.clone(),
                errno,
            }),
        Step::Mount {
            fstype,
            target,
            flags,
            data,
        } => {
            let data = (!data.is_empty()).then_some(data.as_str());
            sys.mount(
                Some(std::path::Path::new(fstype.name())),
                target,
                Some(fstype.name()),
                ms_flags(*flags),
                data,
            )
            .map_err(|errno| SetupError::Mount {
                fstype: fstype.name(),
                target: target.clone(),
                errno,
            })
        }
        Step::Mkdir { path, mode } => sys
            .mkdir(path, Mode::from_bits_truncate(*mode))
            .map_err(create(path, "mkdir")),
        Step::Symlink { target, link } => {
            sys.symlink(target, link).map_err(create(link, "symlink"))
        }
        Step::Mknod {
            path,
            major,
            minor,
            mode,
        } => sys
            .mknod_char(path, Mode::from_bits_truncate(*mode), *major, *minor)
            .map_err(create(path, "mknod")),
        Step::MkdirAll { path, mode } => {
            let mut made = std::path::PathBuf::from("/");
            for comp in path.components().skip(1) {
                made.push(comp);
                match sys.mkdir(&made, Mode::from_bits_truncate(*mode)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(errno) => {
                        return Err(SetupError::Create {
                            path: made,
                            syscall: "mkdir",
                            errno,
                        })
                    }
                }
            }
            Ok(())
        }
        Step::MakeReadOnly { path, recursive } => make_readonly(sys, path, *recursive),
        Step::BindIdmapped { src, dst, userns } => {
            sys.bind_idmapped(src, dst, userns)
                .map_err(|(_, errno)| SetupError::Bind {
                    src: src.clone(),
                    dst: dst.clone(),
                    errno,
                })
        }
        Step::CreateFile { path, mode } => sys
            .write_file(path, &[], Mode::from_bits_truncate(*mode))
            .map_err(|(syscall, errno)| SetupError::Create {
                path: path.clone(),
                syscall,
                errno,
            }),
        Step::WriteFile {
            path,
            contents,
            mode,
        } => sys
            .write_file(path, contents, Mode::from_bits_truncate(*mode))
            .map_err(|(syscall, errno)| SetupError::Create {
                path: path.clone(),
                syscall,
                errno,
            }),
        Step::Bind {
            src,
            dst,
            recursive,
            readonly,
        } => {
            let rec = if *recursive {
                MsFlags::MS_REC
            } else {
                MsFlags::empty()
            };
            sys.mount(Some(src), dst, None, MsFlags::MS_BIND | rec, None)
                .map_err(|errno| SetupError::Bind {
                    src: src.clone(),
                    dst: dst.clone(),
                    errno,
                })?;
            if *readonly {
                make_readonly(sys, dst, *recursive)?;
            }
            Ok(())
        }
        Step::PivotRoot { new_root, put_old } => {
            sys.pivot_root(new_root, put_old)
                .map_err(|errno| SetupError::PivotRoot {
                    new_root: new_root.clone(),
                    put_old: put_old.clone(),
                    errno,
                })
        }
        Step::Chdir { path } => sys.chdir(path).map_err(|errno| SetupError::Chdir {
            path: path.clone(),
            errno,
        }),
        Step::MakeSlave { path } => sys
            .mount(None, path, None, MsFlags::MS_REC | MsFlags::MS_SLAVE, None)
            .map_err(|errno| SetupError::DetachOldRoot {
                path: path.clone(),
                syscall: "mount(MS_SLAVE)",
                errno,
            }),
        Step::Detach { path } => {
            sys.umount_detach(path)
                .map_err(|errno| SetupError::DetachOldRoot {
                    path: path.clone(),
                    syscall: "umount2(MNT_DETACH)",
                    errno,
                })
        }
        Step::RemoveFile { path } => sys.unlink(path).map_err(|errno| SetupError::Remove {
            path: path.clone(),
            syscall: "unlink",
            errno,
        }),
        Step::RemoveDir { path } => sys.rmdir(path).map_err(|errno| SetupError::Remove {
            path: path.clone(),
            syscall: "rmdir",
            errno,
        }),
    }
}

/// Make a bind read-only without dropping the flags the kernel locks on it (`nosuid`,
/// `nodev`, `noexec`, atime): `mount_setattr` changes only the read-only bit, and covers
/// every mount below a recursive bind; kernels before 5.12 get a remount that restates the
/// source's flags (top mount only).
fn make_readonly<S: Sys>(
    sys: &S,
    path: &std::path::Path,
    recursive: bool,
) -> Result<(), SetupError> {
    let err = |syscall| {
        let path = path.to_path_buf();
        move |errno| SetupError::ReadOnly {
            path,
            syscall,
            errno,
        }
    };
    match sys.mount_setattr_readonly(path, recursive) {
        Ok(()) => Ok(()),
        Err(Errno::ENOSYS) => {
            let locked = sys.locked_mount_flags(path).map_err(err("statvfs"))?;
            sys.mount(
                None,
                path,
                None,
                MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | locked,
                None,
            )
            .map_err(err("mount(MS_REMOUNT)"))
        }
        Err(errno) => Err(err("mount_setattr")(errno)),
    }
}

#[cfg(test)]
mod tests;
