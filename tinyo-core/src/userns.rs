//! The user namespace every container gets, and whom its root is on the host.
//!
//! A container's root must be able to mount, set the hostname and bind low ports inside,
//! and must be nobody outside: it must not write `/proc/sysrq-trigger` or a global sysctl,
//! overwrite the test binary, `mknod` a disk or mount one. Capabilities in a user namespace
//! give the first and a non-root owner on the host gives the second. So:
//!
//! * run as root, the container's ids `0..65536` map to the unprivileged host ids
//!   [`CONTAINER_ID_BASE`]`..+65536` (the parent writes the maps; it has `CAP_SETUID`);
//! * run as a user, the container's root maps to that user (the one mapping a user may
//!   make), `setgroups` denied first as the kernel requires.
//!
//! Either way host root is never mapped, so no inode owned by host root is writable from
//! inside, whatever the capabilities there.

/// The first host uid and gid of a container's ids when tinyo runs as root.
pub const CONTAINER_ID_BASE: u32 = 1_000_000_000;

/// How many ids are mapped when tinyo runs as root.
pub const CONTAINER_ID_COUNT: u32 = 65_536;

/// The contents to write to `/proc/<pid>/{setgroups,uid_map,gid_map}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdMaps {
    /// `uid_map`.
    pub uid_map: String,
    /// `gid_map`.
    pub gid_map: String,
    /// Write `deny` to `setgroups` first (required for an unprivileged `gid_map`).
    pub deny_setgroups: bool,
}

impl IdMaps {
    /// The maps for a caller with these effective ids; `init_userns` when it runs in the
    /// initial user namespace (a root there may map any ids; a root inside some other user
    /// namespace, as in a rootless CI container, may only map itself).
    pub fn for_caller(euid: u32, egid: u32, init_userns: bool) -> Self {
        if euid == 0 && init_userns {
            Self {
                uid_map: format!("0 {CONTAINER_ID_BASE} {CONTAINER_ID_COUNT}\n"),
                gid_map: format!("0 {CONTAINER_ID_BASE} {CONTAINER_ID_COUNT}\n"),
                deny_setgroups: false,
            }
        } else {
            Self {
                uid_map: format!("0 {euid} 1\n"),
                gid_map: format!("0 {egid} 1\n"),
                deny_setgroups: true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_maps_a_range_of_unprivileged_ids() {
        let m = IdMaps::for_caller(0, 0, true);
        assert_eq!(m.uid_map, "0 1000000000 65536\n");
        assert!(!m.deny_setgroups);
        assert_eq!(
            IdMaps::for_caller(0, 0, false).uid_map,
            "0 0 1\n",
            "root of a nested user namespace maps itself"
        );
    }

    #[test]
    fn a_user_maps_only_itself() {
        let m = IdMaps::for_caller(1000, 100, true);
        assert_eq!(
            (m.uid_map.as_str(), m.gid_map.as_str(), m.deny_setgroups),
            ("0 1000 1\n", "0 100 1\n", true)
        );
    }
}
