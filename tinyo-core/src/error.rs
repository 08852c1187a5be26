//! Why a container could not be set up. Never the test's fault: the harness's or the
//! environment's, and the message says which step, syscall, path and errno, and the fix.

use std::fmt;
use std::path::PathBuf;

use nix::errno::Errno;

/// A failed step of container setup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// `prctl(PR_SET_PDEATHSIG)` failed.
    #[error("arm the parent-death signal: prctl(PR_SET_PDEATHSIG): {}{}", errno_text(*.errno), Fix(*.errno, Kind::Process))]
    DeathSignal {
        /// The error.
        errno: Errno,
    },
    /// The harness exited before the container finished starting.
    #[error("the harness exited while the container was starting")]
    ParentGone,
    /// Installing stdio and the report channel, or closing inherited fds, failed.
    #[error("install stdio and close inherited file descriptors: {syscall}: {}{}", errno_text(*.errno), Fix(*.errno, Kind::Process))]
    Fds {
        /// The failing syscall.
        syscall: &'static str,
        /// The error.
        errno: Errno,
    },
    /// Making a namespace with `unshare` failed.
    #[error("make a {namespace} namespace: unshare: {}{}", errno_text(*.errno), Fix(*.errno, Kind::Process))]
    Unshare {
        /// `NET`.
        namespace: &'static str,
        /// The error.
        errno: Errno,
    },
    /// Making the mount tree private failed.
    #[error("make mounts private: mount(`{}`, MS_REC|MS_PRIVATE): {}{}", .path.display(), errno_text(*.errno), Fix(*.errno, Kind::Mount))]
    MakePrivate {
        /// The mount point.
        path: PathBuf,
        /// The error.
        errno: Errno,
    },
    /// Mounting a fresh filesystem failed.
    #[error("mount {fstype} on `{}`: mount: {}{}", .target.display(), errno_text(*.errno), Fix(*.errno, Kind::Mount))]
    Mount {
        /// `tmpfs`, `proc`, `sysfs`, `devpts`.
        fstype: &'static str,
        /// The mount point.
        target: PathBuf,
        /// The error.
        errno: Errno,
    },
    /// A bind mount failed.
    #[error("bind `{}` on `{}`: mount(MS_BIND): {}{}", .src.display(), .dst.display(), errno_text(*.errno), Fix(*.errno, Kind::Mount))]
    Bind {
        /// Source.
        src: PathBuf,
        /// Destination.
        dst: PathBuf,
        /// The error.
        errno: Errno,
    },
    /// Making a bind read-only failed.
    #[error("make `{}` read-only: {syscall}: {}{}", .path.display(), errno_text(*.errno), Fix(*.errno, Kind::Mount))]
    ReadOnly {
        /// The mount point.
        path: PathBuf,
        /// `mount_setattr`, `statvfs` or `mount(MS_REMOUNT)`.
        syscall: &'static str,
        /// The error.
        errno: Errno,
    },
    /// Creating a directory, link, node or file failed.
    #[error("create `{}`: {syscall}: {}{}", .path.display(), errno_text(*.errno), Fix(*.errno, Kind::File))]
    Create {
        /// The path.
        path: PathBuf,
        /// `mkdir`, `symlink`, `mknod`, `open`, `write`.
        syscall: &'static str,
        /// The error.
        errno: Errno,
    },
    /// Removing a staging file or directory failed.
    #[error("remove `{}`: {syscall}: {}{}", .path.display(), errno_text(*.errno), Fix(*.errno, Kind::File))]
    Remove {
        /// The path.
        path: PathBuf,
        /// `unlink` or `rmdir`.
        syscall: &'static str,
        /// The error.
        errno: Errno,
    },
    /// `pivot_root` failed.
    #[error("pivot_root(`{}`, `{}`): {}{}", .new_root.display(), .put_old.display(), errno_text(*.errno), Fix(*.errno, Kind::Mount))]
    PivotRoot {
        /// The new root.
        new_root: PathBuf,
        /// Where the old root was to go.
        put_old: PathBuf,
        /// The error.
        errno: Errno,
    },
    /// Changing directory failed.
    #[error("chdir(`{}`): {}{}", .path.display(), errno_text(*.errno), Fix(*.errno, Kind::File))]
    Chdir {
        /// The directory.
        path: PathBuf,
        /// The error.
        errno: Errno,
    },
    /// Detaching the old root failed.
    #[error("detach the old root: {syscall}(`{}`): {}{}", .path.display(), errno_text(*.errno), Fix(*.errno, Kind::Mount))]
    DetachOldRoot {
        /// The old root's mount point.
        path: PathBuf,
        /// `mount(MS_SLAVE)` or `umount2(MNT_DETACH)`.
        syscall: &'static str,
        /// The error.
        errno: Errno,
    },
    /// `sethostname` failed.
    #[error("set the hostname to `{name}`: sethostname: {}{}", errno_text(*.errno), Fix(*.errno, Kind::Process))]
    Hostname {
        /// The hostname.
        name: String,
        /// The error.
        errno: Errno,
    },
    /// Bringing the loopback interface up failed.
    #[error("bring `lo` up: {syscall}: {}{}", errno_text(*.errno), Fix(*.errno, Kind::Process))]
    Loopback {
        /// `socket` or `ioctl(SIOCSIFFLAGS)`.
        syscall: &'static str,
        /// The error.
        errno: Errno,
    },
    /// Starting the test body (PID 2) failed.
    #[error("start the test body: {syscall}: {}{}", errno_text(*.errno), Fix(*.errno, Kind::Process))]
    Body {
        /// `mmap` or `fork`.
        syscall: &'static str,
        /// The error.
        errno: Errno,
    },
}

fn errno_text(errno: Errno) -> String {
    format!("{errno:?} ({})", errno.desc())
}

#[derive(Clone, Copy)]
enum Kind {
    Mount,
    File,
    Process,
}

/// The fix for an errno at a kind of step, where the environment is the likely cause.
struct Fix(Errno, Kind);

impl fmt::Display for Fix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fix = match (self.0, self.1) {
            (Errno::EPERM | Errno::EACCES, Kind::Mount) => Some(
                "the kernel refused a mount in the container's user namespace: a masked /proc or /sys (Docker: --security-opt systempaths=unconfined), an AppArmor or seccomp profile, or a bind source the container's root may not reach (make it readable by others); `tinyo doctor` tells which",
            ),
            (Errno::EPERM | Errno::EACCES, Kind::Process | Kind::File) => {
                Some("the kernel refused this in the container's user namespace (an AppArmor or seccomp profile?); `tinyo doctor` tells more")
            }
            (Errno::ENODEV, Kind::Mount) => Some("this kernel lacks the filesystem; enable it (CONFIG_TMPFS, CONFIG_PROC_FS, CONFIG_SYSFS, CONFIG_DEVPTS_FS)"),
            (Errno::ENOSYS, _) => Some("this kernel is too old for tinyo: it needs Linux 5.4 or newer"),
            (Errno::ENOSPC | Errno::ENOMEM, _) => Some("the machine is out of memory or of a namespace or mount limit (see /proc/sys/user/max_*_namespaces and /proc/sys/fs/mount-max)"),
            _ => None,
        };
        match fix {
            Some(fix) => write!(f, "; fix: {fix}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_step_syscall_path_errno_and_fix() {
        let e = SetupError::Mount {
            fstype: "proc",
            target: "/proc".into(),
            errno: Errno::EPERM,
        };
        let msg = e.to_string();
        assert!(
            msg.starts_with("mount proc on `/proc`: mount: EPERM (Operation not permitted); fix: "),
            "{msg}"
        );
        assert!(msg.contains("systempaths=unconfined"), "{msg}");
    }

    #[test]
    fn no_fix_when_none_is_known() {
        let e = SetupError::Chdir {
            path: "/x".into(),
            errno: Errno::ENOENT,
        };
        assert_eq!(
            e.to_string(),
            "chdir(`/x`): ENOENT (No such file or directory)"
        );
    }
}
