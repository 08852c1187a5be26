//! The user namespace every container is in, and whom its root is on the host.
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
//!
//! The fork server makes that namespace once and enters it (see `crate::zygote`), so that
//! a container costs no id-map writes and no handshake; a container that needs its own
//! (a `pids` limit: `RLIMIT_NPROC` counts per user namespace) gets one nested in it, mapped
//! with [`IdMaps::inside`].

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
    /// How many ids the maps map (from 0).
    pub count: u32,
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
                count: CONTAINER_ID_COUNT,
            }
        } else {
            Self {
                uid_map: format!("0 {euid} 1\n"),
                gid_map: format!("0 {egid} 1\n"),
                deny_setgroups: true,
                count: 1,
            }
        }
    }

    /// The maps of a user namespace nested in one made with `self`, written from inside
    /// that one: the same ids, as the identity (`setgroups` stays denied where it was).
    pub fn inside(&self) -> Self {
        let identity = format!("0 0 {}\n", self.count);
        Self {
            uid_map: identity.clone(),
            gid_map: identity,
            deny_setgroups: self.deny_setgroups,
            count: self.count,
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

    #[test]
    fn a_nested_namespace_maps_the_same_ids_as_the_identity() {
        let root = IdMaps::for_caller(0, 0, true).inside();
        assert_eq!(
            (
                root.uid_map.as_str(),
                root.gid_map.as_str(),
                root.deny_setgroups
            ),
            ("0 0 65536\n", "0 0 65536\n", false)
        );
        let user = IdMaps::for_caller(1000, 100, true).inside();
        assert_eq!(
            (
                user.uid_map.as_str(),
                user.gid_map.as_str(),
                user.deny_setgroups
            ),
            ("0 0 1\n", "0 0 1\n", true)
        );
    }
}
