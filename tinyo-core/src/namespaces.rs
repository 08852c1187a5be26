//! The set of namespaces a container gets.

use std::fmt;
use std::ops::BitOr;

/// A set of Linux namespaces, as `CLONE_NEW*` flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Namespaces(u32);

impl Namespaces {
    /// `CLONE_NEWPID`: the container's processes see only each other; its PID 1 is ours.
    pub const PID: Self = Self(libc::CLONE_NEWPID as u32);
    /// `CLONE_NEWNS`: a private mount table.
    pub const MOUNT: Self = Self(libc::CLONE_NEWNS as u32);
    /// `CLONE_NEWUTS`: a private hostname.
    pub const UTS: Self = Self(libc::CLONE_NEWUTS as u32);
    /// `CLONE_NEWIPC`: private System V IPC and POSIX message queues.
    pub const IPC: Self = Self(libc::CLONE_NEWIPC as u32);
    /// `CLONE_NEWNET`: a private network stack.
    pub const NET: Self = Self(libc::CLONE_NEWNET as u32);
    /// `CLONE_NEWUSER`: a private user namespace (rootless mode).
    pub const USER: Self = Self(libc::CLONE_NEWUSER as u32);

    /// What every container is cloned into: its own user (so its root is unprivileged on
    /// the host, see `crate::userns`), PID, mount, UTS and IPC namespaces. Its network
    /// namespace, when it has one, its PID 1 makes itself (see `crate::setup`).
    pub const CONTAINER: Self = Self(
        (libc::CLONE_NEWUSER
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNS
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC) as u32,
    );

    /// The empty set.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Whether every namespace of `other` is in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The raw `CLONE_NEW*` bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// The set from raw bits, keeping only known namespaces.
    pub const fn from_bits_truncate(bits: u32) -> Self {
        Self(
            bits & (Self::PID.0
                | Self::MOUNT.0
                | Self::UTS.0
                | Self::IPC.0
                | Self::NET.0
                | Self::USER.0),
        )
    }
}

impl BitOr for Namespaces {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl fmt::Debug for Namespaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all = [
            (Self::PID, "PID"),
            (Self::MOUNT, "MOUNT"),
            (Self::UTS, "UTS"),
            (Self::IPC, "IPC"),
            (Self::NET, "NET"),
            (Self::USER, "USER"),
        ];
        let names: Vec<&str> = all
            .iter()
            .filter(|(n, _)| self.contains(*n))
            .map(|(_, s)| *s)
            .collect();
        f.write_str(&names.join("|"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_and_debug() {
        let ns = Namespaces::PID | Namespaces::NET;
        assert_eq!(Namespaces::from_bits_truncate(ns.bits() | 0x1), ns);
        assert_eq!(format!("{ns:?}"), "PID|NET");
        assert_eq!(
            format!("{:?}", Namespaces::CONTAINER),
            "PID|MOUNT|UTS|IPC|USER"
        );
    }
}
