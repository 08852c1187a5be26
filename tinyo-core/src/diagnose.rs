//! Why isolation cannot run here, and how to fix it.
//!
//! When the first container of a run fails for a reason of the environment (namespaces
//! refused, id maps refused, `proc` refused), tinyo gathers [`EnvFacts`] once and
//! [`diagnose`]s the failure: a [`Cause`] with the fix. Gathering only reads `/proc`, and
//! happens only on failure, so a working machine pays nothing.

use std::fmt;
use std::path::PathBuf;

use nix::errno::Errno;

/// What was failing when isolation broke down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailedAt {
    /// `clone3` with namespace flags.
    Clone(Errno),
    /// Writing `uid_map`/`gid_map`.
    IdMap(Errno),
    /// The first mounts after the namespaces were made (`proc`, `sysfs`, binds, tmpfs).
    Mount(Errno),
    /// `sethostname` or bringing `lo` up.
    Identity(Errno),
}

impl FailedAt {
    /// The environmental failure behind a spawn error, if it is one.
    pub fn from_spawn(e: &crate::zygote::SpawnError) -> Option<Self> {
        match e {
            crate::zygote::SpawnError::Clone { errno, .. } => Some(Self::Clone(*errno)),
            crate::zygote::SpawnError::IdMap { errno } => Some(Self::IdMap(*errno)),
            _ => None,
        }
    }

    /// The environmental failure behind a failed setup: the kernel refusing (`EPERM`,
    /// `EACCES`) a mount or the hostname, as opposed to a bug or a missing path.
    pub fn from_setup(e: &crate::SetupError) -> Option<Self> {
        use crate::SetupError as E;
        let refused = |e: &Errno| matches!(e, Errno::EPERM | Errno::EACCES);
        match e {
            E::MakePrivate { errno, .. }
            | E::Mount { errno, .. }
            | E::Bind { errno, .. }
            | E::ReadOnly { errno, .. }
            | E::PivotRoot { errno, .. }
            | E::DetachOldRoot { errno, .. }
                if refused(errno) =>
            {
                Some(Self::Mount(*errno))
            }
            E::Hostname { errno, .. } | E::Loopback { errno, .. } if refused(errno) => {
                Some(Self::Identity(*errno))
            }
            E::Unshare { errno, .. } => Some(Self::Clone(*errno)),
            _ => None,
        }
    }

    fn errno(self) -> Errno {
        match self {
            Self::Clone(e) | Self::IdMap(e) | Self::Mount(e) | Self::Identity(e) => e,
        }
    }
}

/// Facts about the environment that explain a refusal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnvFacts {
    /// Effective uid.
    pub euid: u32,
    /// A seccomp filter is installed (`Seccomp: 2` in `/proc/self/status`).
    pub seccomp_filter: bool,
    /// `user.max_user_namespaces`.
    pub max_user_namespaces: Option<u64>,
    /// Debian's `kernel.unprivileged_userns_clone`.
    pub unprivileged_userns_clone: Option<u64>,
    /// Ubuntu's `kernel.apparmor_restrict_unprivileged_userns`.
    pub apparmor_restrict_unprivileged_userns: Option<u64>,
    /// Mounts over paths inside `/proc` or `/sys` that hide part of them (as Docker's masked paths).
    pub masked: Vec<PathBuf>,
    /// `uname -r`.
    pub kernel: String,
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl EnvFacts {
    /// Read the facts from `/proc`.
    pub fn gather() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let seccomp_filter = status
            .lines()
            .any(|l| l.starts_with("Seccomp:") && l.split_whitespace().nth(1) == Some("2"));
        let masked = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let mount_point = *fields.get(4)?;
                let fstype = fields
                    .iter()
                    .position(|f| *f == "-")
                    .and_then(|i| fields.get(i + 1))
                    .copied()
                    .unwrap_or("");
                let inside = (mount_point.starts_with("/proc/")
                    || mount_point.starts_with("/sys/"))
                    && !mount_point.starts_with("/sys/fs/")
                    && !mount_point.starts_with("/sys/kernel/")
                    && !matches!(fstype, "binfmt_misc" | "autofs");
                inside.then(|| PathBuf::from(mount_point))
            })
            .collect();
        Self {
            euid: nix::unistd::geteuid().as_raw(),
            seccomp_filter,
            max_user_namespaces: read_number("/proc/sys/user/max_user_namespaces"),
            unprivileged_userns_clone: read_number("/proc/sys/kernel/unprivileged_userns_clone"),
            apparmor_restrict_unprivileged_userns: read_number(
                "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            ),
            masked,
            kernel: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
}

/// Why isolation is unavailable.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// A sysctl turns user namespaces off.
    UserNamespacesDisabled {
        /// The sysctl.
        sysctl: &'static str,
    },
    /// AppArmor forbids unprivileged user namespaces (Ubuntu 23.10+, GitHub's ubuntu-24.04).
    AppArmor,
    /// A seccomp profile refuses namespace creation (Docker's default profile does).
    Seccomp,
    /// Part of `/proc` or `/sys` is masked, so the kernel refuses a fresh `proc`/`sysfs`.
    Masked {
        /// The masking mounts.
        paths: Vec<PathBuf>,
    },
    /// The namespace limit is reached.
    NamespaceLimit,
    /// The kernel is older than tinyo needs.
    OldKernel {
        /// `uname -r`.
        release: String,
    },
    /// None of the known causes fits.
    Unknown,
}

/// A diagnosis: the cause, the fix, and the failure it explains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnosis {
    /// The cause.
    pub cause: Cause,
    /// The failure, as observed.
    pub failed_at: FailedAt,
}

/// Classify a failure with the facts of the environment.
pub fn diagnose(failed_at: FailedAt, facts: &EnvFacts) -> Diagnosis {
    let errno = failed_at.errno();
    let cause = match failed_at {
        FailedAt::Clone(_) if facts.max_user_namespaces == Some(0) => {
            Cause::UserNamespacesDisabled {
                sysctl: "user.max_user_namespaces",
            }
        }
        FailedAt::Clone(_) if facts.unprivileged_userns_clone == Some(0) && facts.euid != 0 => {
            Cause::UserNamespacesDisabled {
                sysctl: "kernel.unprivileged_userns_clone",
            }
        }
        FailedAt::Clone(Errno::EPERM | Errno::ENOSYS) if facts.seccomp_filter => Cause::Seccomp,
        FailedAt::Clone(Errno::ENOSPC | Errno::EUSERS) => Cause::NamespaceLimit,
        FailedAt::Clone(Errno::ENOSYS) => Cause::OldKernel {
            release: facts.kernel.clone(),
        },
        FailedAt::IdMap(_) | FailedAt::Mount(_) | FailedAt::Identity(_)
            if facts.apparmor_restrict_unprivileged_userns == Some(1) && facts.euid != 0 =>
        {
            Cause::AppArmor
        }
        FailedAt::Mount(Errno::EPERM | Errno::EACCES) if !facts.masked.is_empty() => {
            Cause::Masked {
                paths: facts.masked.clone(),
            }
        }
        _ if facts.seccomp_filter && errno == Errno::EPERM => Cause::Seccomp,
        _ => Cause::Unknown,
    };
    Diagnosis { cause, failed_at }
}

impl Cause {
    /// One line: what is wrong.
    pub fn what(&self) -> String {
        match self {
            Self::UserNamespacesDisabled { sysctl } => format!("user namespaces are disabled by the sysctl {sysctl}"),
            Self::AppArmor => "AppArmor forbids unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1)".into(),
            Self::Seccomp => "a seccomp filter refuses to create namespaces (as Docker's default profile does)".into(),
            Self::Masked { paths } => format!(
                "parts of /proc or /sys are masked ({}), so the kernel refuses a fresh proc or sysfs",
                paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
            Self::NamespaceLimit => "the limit on namespaces is reached".into(),
            Self::OldKernel { release } => format!("the kernel ({release}) lacks clone3 or pidfds"),
            Self::Unknown => "the kernel refused to set up the container".into(),
        }
    }

    /// One line: how to fix it.
    pub fn fix(&self) -> &'static str {
        match self {
            Self::UserNamespacesDisabled { sysctl: "kernel.unprivileged_userns_clone" } => {
                "sudo sysctl -w kernel.unprivileged_userns_clone=1, or run the tests as root"
            }
            Self::UserNamespacesDisabled { .. } => "sudo sysctl -w user.max_user_namespaces=15000 (or any value above 0)",
            Self::AppArmor => {
                "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (on GitHub Actions ubuntu-24.04, as a step before the tests), or give the test binary an AppArmor profile with `userns,`, or run the tests as root"
            }
            Self::Seccomp => "in Docker, run with --privileged or --security-opt seccomp=unconfined (or a profile allowing clone3, clone and unshare with namespace flags)",
            Self::Masked { .. } => "in Docker, run with --privileged or --security-opt systempaths=unconfined, so /proc and /sys are not masked",
            Self::NamespaceLimit => "raise /proc/sys/user/max_*_namespaces, or run fewer tests at once (--test-threads)",
            Self::OldKernel { .. } => "tinyo needs Linux 5.4 or newer",
            Self::Unknown => "run `tinyo doctor` for details",
        }
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (step, errno) = match self.failed_at {
            FailedAt::Clone(e) => ("creating the namespaces (clone3)", e),
            FailedAt::IdMap(e) => ("writing the user id maps", e),
            FailedAt::Mount(e) => ("mounting the container's filesystems", e),
            FailedAt::Identity(e) => ("setting the hostname or network", e),
        };
        write!(
            f,
            "isolation is unavailable here: {}; {step} failed with {errno:?} ({}). Fix: {}",
            self.cause.what(),
            errno.desc(),
            self.cause.fix()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> EnvFacts {
        EnvFacts {
            euid: 1000,
            max_user_namespaces: Some(1000),
            ..EnvFacts::default()
        }
    }

    #[test]
    fn sysctls() {
        let f = EnvFacts {
            max_user_namespaces: Some(0),
            ..facts()
        };
        assert_eq!(
            diagnose(FailedAt::Clone(Errno::ENOSPC), &f).cause,
            Cause::UserNamespacesDisabled {
                sysctl: "user.max_user_namespaces"
            }
        );
        let f = EnvFacts {
            unprivileged_userns_clone: Some(0),
            ..facts()
        };
        assert_eq!(
            diagnose(FailedAt::Clone(Errno::EPERM), &f).cause,
            Cause::UserNamespacesDisabled {
                sysctl: "kernel.unprivileged_userns_clone"
            }
        );
        let root = EnvFacts {
            euid: 0,
            unprivileged_userns_clone: Some(0),
            ..facts()
        };
        assert_eq!(
            diagnose(FailedAt::Clone(Errno::EPERM), &root).cause,
            Cause::Unknown,
            "the Debian sysctl does not bind root"
        );
    }

    #[test]
    fn apparmor_shows_at_the_id_map_or_first_mount() {
        let f = EnvFacts {
            apparmor_restrict_unprivileged_userns: Some(1),
            ..facts()
        };
        assert_eq!(
            diagnose(FailedAt::IdMap(Errno::EPERM), &f).cause,
            Cause::AppArmor
        );
        assert_eq!(
            diagnose(FailedAt::Mount(Errno::EACCES), &f).cause,
            Cause::AppArmor
        );
        let d = diagnose(FailedAt::Mount(Errno::EACCES), &f).to_string();
        assert!(
            d.contains("kernel.apparmor_restrict_unprivileged_userns=0"),
            "{d}"
        );
    }

    #[test]
    fn seccomp_masks_and_limits() {
        let f = EnvFacts {
            seccomp_filter: true,
            ..facts()
        };
        assert_eq!(
            diagnose(FailedAt::Clone(Errno::ENOSYS), &f).cause,
            Cause::Seccomp
        );
        assert_eq!(
            diagnose(FailedAt::Clone(Errno::EPERM), &f).cause,
            Cause::Seccomp
        );
        let f = EnvFacts {
            masked: vec!["/proc/kcore".into()],
            ..facts()
        };
        let d = diagnose(FailedAt::Mount(Errno::EPERM), &f);
        assert!(
            d.to_string().contains("(/proc/kcore)")
                && d.to_string().contains("systempaths=unconfined"),
            "{d}"
        );
        assert_eq!(
            diagnose(FailedAt::Clone(Errno::EUSERS), &facts()).cause,
            Cause::NamespaceLimit
        );
        assert_eq!(
            diagnose(FailedAt::Clone(Errno::ENOSYS), &facts()).cause,
            Cause::OldKernel {
                release: String::new()
            }
        );
    }
}
