//! What PID 1 tells the harness when it is done, and what the body tells PID 1.
//!
//! The body (PID 2) records its progress in a page of memory shared with PID 1: it holds
//! no file descriptor of tinyo's, and "exited before finishing" is told apart from "passed"
//! because the page says `Running` until the body returns. PID 1 alone writes the
//! [`Report`] to the harness's pipe, once, after the body is reaped.

use nix::errno::Errno;

use crate::error::SetupError;
use crate::outcome::Termination;
use crate::wire::{Reader, Writer};

/// The body's own account of how far it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyReport {
    /// The body never started (PID 2 died before it).
    NotStarted,
    /// The body started and has not returned (or exited without returning).
    Running,
    /// The body returned normally (`()` or `Ok(())`).
    Passed,
    /// The body panicked.
    Panicked {
        /// The panic message.
        message: String,
        /// `file:line:column`, when known.
        location: Option<String>,
    },
    /// The body returned `Err(e)`; this is `format!("{e:?}")`.
    ReturnedErr(String),
}

/// PID 1's report to the harness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Setup failed before the body could start.
    SetupFailed(SetupError),
    /// The body ran and was reaped.
    Finished {
        /// How PID 2 ended.
        status: Termination,
        /// What the body recorded.
        body: BodyReport,
    },
}

impl BodyReport {
    /// Encode for the shared page.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Self::NotStarted => w.u8(0),
            Self::Running => w.u8(1),
            Self::Passed => w.u8(2),
            Self::Panicked { message, location } => {
                w.u8(3).str(message);
                match location {
                    Some(l) => w.u8(1).str(l),
                    None => w.u8(0),
                }
            }
            Self::ReturnedErr(e) => w.u8(4).str(e),
        };
        w.finish()
    }

    /// Decode; anything unreadable is `NotStarted`.
    pub fn decode(bytes: &[u8]) -> Self {
        Self::read(&mut Reader::new(bytes)).unwrap_or(Self::NotStarted)
    }

    fn read(r: &mut Reader<'_>) -> Option<Self> {
        Some(match r.u8()? {
            0 => Self::NotStarted,
            1 => Self::Running,
            2 => Self::Passed,
            3 => {
                let message = r.string()?;
                let location = if r.u8()? == 1 {
                    Some(r.string()?)
                } else {
                    None
                };
                Self::Panicked { message, location }
            }
            4 => Self::ReturnedErr(r.string()?),
            _ => return None,
        })
    }
}

fn write_termination(w: &mut Writer, t: &Termination) {
    match *t {
        Termination::Exited(code) => w.u8(0).i32(code),
        Termination::Signaled {
            signal,
            core_dumped,
        } => w.u8(1).i32(signal).u8(u8::from(core_dumped)),
    };
}

fn read_termination(r: &mut Reader<'_>) -> Option<Termination> {
    Some(match r.u8()? {
        0 => Termination::Exited(r.i32()?),
        1 => Termination::Signaled {
            signal: r.i32()?,
            core_dumped: r.u8()? == 1,
        },
        _ => return None,
    })
}

impl Report {
    /// Encode for the report pipe.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Self::SetupFailed(e) => {
                w.u8(1);
                write_setup_error(&mut w, e);
            }
            Self::Finished { status, body } => {
                w.u8(2);
                write_termination(&mut w, status);
                w.bytes(&body.encode());
            }
        }
        w.finish()
    }

    /// Decode what was read from the pipe; `None` if it is empty or malformed.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes);
        let report = match r.u8()? {
            1 => Self::SetupFailed(read_setup_error(&mut r)?),
            2 => {
                let status = read_termination(&mut r)?;
                let body = BodyReport::decode(r.bytes()?);
                Self::Finished { status, body }
            }
            _ => return None,
        };
        r.is_empty().then_some(report)
    }
}

fn syscall_id(name: &str) -> u8 {
    SYSCALLS
        .iter()
        .position(|s| *s == name)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(u8::MAX)
}

fn syscall_name(id: u8) -> &'static str {
    SYSCALLS.get(usize::from(id)).copied().unwrap_or("?")
}

/// Every syscall name a [`SetupError`] may carry (they cross the pipe as an index).
const SYSCALLS: [&str; 16] = [
    "mount_setattr",
    "statvfs",
    "mount(MS_REMOUNT)",
    "mkdir",
    "symlink",
    "mknod",
    "open",
    "write",
    "unlink",
    "rmdir",
    "mount(MS_SLAVE)",
    "umount2(MNT_DETACH)",
    "socket",
    "ioctl(SIOCSIFFLAGS)",
    "mmap",
    "fork",
];
const SYSCALLS_FDS: [&str; 3] = ["fcntl(F_DUPFD)", "dup2", "close_range"];
const FSTYPES: [&str; 5] = ["tmpfs", "proc", "sysfs", "devpts", "overlay"];

fn fds_id(name: &str) -> u8 {
    SYSCALLS_FDS
        .iter()
        .position(|s| *s == name)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(u8::MAX)
}

fn write_setup_error(w: &mut Writer, e: &SetupError) {
    match e {
        SetupError::DeathSignal { errno } => w.u8(0).i32(*errno as i32),
        SetupError::ParentGone => w.u8(1),
        SetupError::Fds { syscall, errno } => w.u8(2).u8(fds_id(syscall)).i32(*errno as i32),
        SetupError::MakePrivate { path, errno } => w.u8(3).path(path).i32(*errno as i32),
        SetupError::Mount {
            fstype,
            target,
            errno,
        } => {
            let id = FSTYPES
                .iter()
                .position(|f| f == fstype)
                .and_then(|i| u8::try_from(i).ok())
                .unwrap_or(0);
            w.u8(4).u8(id).path(target).i32(*errno as i32)
        }
        SetupError::Bind { src, dst, errno } => w.u8(5).path(src).path(dst).i32(*errno as i32),
        SetupError::ReadOnly {
            path,
            syscall,
            errno,
        } => w
            .u8(6)
            .path(path)
            .u8(syscall_id(syscall))
            .i32(*errno as i32),
        SetupError::Create {
            path,
            syscall,
            errno,
        } => w
            .u8(7)
            .path(path)
            .u8(syscall_id(syscall))
            .i32(*errno as i32),
        SetupError::Remove {
            path,
            syscall,
            errno,
        } => w
            .u8(8)
            .path(path)
            .u8(syscall_id(syscall))
            .i32(*errno as i32),
        SetupError::PivotRoot {
            new_root,
            put_old,
            errno,
        } => w.u8(9).path(new_root).path(put_old).i32(*errno as i32),
        SetupError::Chdir { path, errno } => w.u8(10).path(path).i32(*errno as i32),
        SetupError::DetachOldRoot {
            path,
            syscall,
            errno,
        } => w
            .u8(11)
            .path(path)
            .u8(syscall_id(syscall))
            .i32(*errno as i32),
        SetupError::Hostname { name, errno } => w.u8(12).str(name).i32(*errno as i32),
        SetupError::Loopback { syscall, errno } => {
            w.u8(13).u8(syscall_id(syscall)).i32(*errno as i32)
        }
        SetupError::Body { syscall, errno } => w.u8(14).u8(syscall_id(syscall)).i32(*errno as i32),
        SetupError::Unshare { errno, .. } => w.u8(15).i32(*errno as i32),
    };
}

fn read_setup_error(r: &mut Reader<'_>) -> Option<SetupError> {
    let errno = |r: &mut Reader<'_>| r.i32().map(Errno::from_raw);
    Some(match r.u8()? {
        0 => SetupError::DeathSignal { errno: errno(r)? },
        1 => SetupError::ParentGone,
        2 => SetupError::Fds {
            syscall: SYSCALLS_FDS
                .get(usize::from(r.u8()?))
                .copied()
                .unwrap_or("?"),
            errno: errno(r)?,
        },
        3 => SetupError::MakePrivate {
            path: r.path()?,
            errno: errno(r)?,
        },
        4 => {
            let fstype = FSTYPES.get(usize::from(r.u8()?)).copied().unwrap_or("?");
            SetupError::Mount {
                fstype,
                target: r.path()?,
                errno: errno(r)?,
            }
        }
        5 => SetupError::Bind {
            src: r.path()?,
            dst: r.path()?,
            errno: errno(r)?,
        },
        6 => SetupError::ReadOnly {
            path: r.path()?,
            syscall: syscall_name(r.u8()?),
            errno: errno(r)?,
        },
        7 => SetupError::Create {
            path: r.path()?,
            syscall: syscall_name(r.u8()?),
            errno: errno(r)?,
        },
        8 => SetupError::Remove {
            path: r.path()?,
            syscall: syscall_name(r.u8()?),
            errno: errno(r)?,
        },
        9 => SetupError::PivotRoot {
            new_root: r.path()?,
            put_old: r.path()?,
            errno: errno(r)?,
        },
        10 => SetupError::Chdir {
            path: r.path()?,
            errno: errno(r)?,
        },
        11 => SetupError::DetachOldRoot {
            path: r.path()?,
            syscall: syscall_name(r.u8()?),
            errno: errno(r)?,
        },
        12 => SetupError::Hostname {
            name: r.string()?,
            errno: errno(r)?,
        },
        13 => SetupError::Loopback {
            syscall: syscall_name(r.u8()?),
            errno: errno(r)?,
        },
        14 => SetupError::Body {
            syscall: syscall_name(r.u8()?),
            errno: errno(r)?,
        },
        15 => SetupError::Unshare {
            namespace: "NET",
            errno: errno(r)?,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(report: Report) {
        assert_eq!(Report::decode(&report.encode()), Some(report));
    }

    #[test]
    fn reports_round_trip() {
        round_trip(Report::Finished {
            status: Termination::Exited(0),
            body: BodyReport::Passed,
        });
        round_trip(Report::Finished {
            status: Termination::Signaled {
                signal: 6,
                core_dumped: true,
            },
            body: BodyReport::Panicked {
                message: "boom".into(),
                location: Some("a.rs:1:2".into()),
            },
        });
        round_trip(Report::Finished {
            status: Termination::Exited(3),
            body: BodyReport::ReturnedErr("E".into()),
        });
        round_trip(Report::Finished {
            status: Termination::Exited(0),
            body: BodyReport::Running,
        });
    }

    #[test]
    fn every_setup_error_round_trips() {
        let e = Errno::EPERM;
        for err in [
            SetupError::DeathSignal { errno: e },
            SetupError::ParentGone,
            SetupError::Fds {
                syscall: "close_range",
                errno: e,
            },
            SetupError::MakePrivate {
                path: "/".into(),
                errno: e,
            },
            SetupError::Mount {
                fstype: "sysfs",
                target: "/sys".into(),
                errno: e,
            },
            SetupError::Bind {
                src: "/a".into(),
                dst: "/b".into(),
                errno: e,
            },
            SetupError::ReadOnly {
                path: "/usr".into(),
                syscall: "mount_setattr",
                errno: e,
            },
            SetupError::Create {
                path: "/dev/null".into(),
                syscall: "mknod",
                errno: e,
            },
            SetupError::Remove {
                path: "/.tinyo".into(),
                syscall: "rmdir",
                errno: e,
            },
            SetupError::PivotRoot {
                new_root: "/tmp".into(),
                put_old: "/tmp/.oldroot".into(),
                errno: e,
            },
            SetupError::Chdir {
                path: "/w".into(),
                errno: e,
            },
            SetupError::DetachOldRoot {
                path: "/.oldroot".into(),
                syscall: "umount2(MNT_DETACH)",
                errno: e,
            },
            SetupError::Hostname {
                name: "h".into(),
                errno: e,
            },
            SetupError::Loopback {
                syscall: "ioctl(SIOCSIFFLAGS)",
                errno: e,
            },
            SetupError::Body {
                syscall: "fork",
                errno: e,
            },
            SetupError::Unshare {
                namespace: "NET",
                errno: e,
            },
        ] {
            round_trip(Report::SetupFailed(err));
        }
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(Report::decode(&[]), None);
        assert_eq!(Report::decode(&[9, 9, 9]), None);
        let mut ok = Report::Finished {
            status: Termination::Exited(0),
            body: BodyReport::Passed,
        }
        .encode();
        ok.push(0);
        assert_eq!(Report::decode(&ok), None, "trailing bytes");
        assert_eq!(BodyReport::decode(&[]), BodyReport::NotStarted);
    }
}
