use std::os::fd::AsFd;
use std::path::PathBuf;

use tinyo_rootfs::{plan, EntryKind, HostFacts, RootfsConfig};

use super::*;
use crate::sys::fake::{Call, RecordingSys};

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

const FDS: InheritedFds = InheritedFds {
    stdin: 5,
    stdout: 6,
    stderr: 6,
    report: 7,
};

fn small_plan() -> Vec<Step> {
    let facts = HostFacts::new(vec![
        (p("/usr"), EntryKind::Dir),
        (p("/bin"), EntryKind::Symlink(p("usr/bin"))),
    ]);
    plan(&RootfsConfig::new("db-1").with_crate_dir("/w"), &facts)
}

fn run(sys: &RecordingSys, net: NetMode) -> Result<Mode, SetupError> {
    let devnull = std::fs::File::open("/dev/null").unwrap();
    setup(
        sys,
        &Spec::new("db-1", net, small_plan()),
        FDS,
        devnull.as_fd(),
    )
}

#[test]
fn whole_sequence_in_order() {
    let sys = RecordingSys::new();
    assert_eq!(run(&sys, NetMode::Loopback).unwrap().bits(), 0o022);
    let calls = sys.calls();
    let devnull_fd = match calls[1] {
        Call::ParentAlive(fd) => fd,
        ref other => panic!("{other:?}"),
    };
    let ro = |path: &str, recursive| Call::MountSetattrReadonly {
        path: p(path),
        recursive,
    };
    let bind = |src: &str, dst: &str, rec: bool| Call::Mount {
        source: Some(p(src)),
        target: p(dst),
        fstype: None,
        flags: MsFlags::MS_BIND
            | if rec {
                MsFlags::MS_REC
            } else {
                MsFlags::empty()
            },
        data: None,
    };
    let fresh = |fs: &str, target: &str, flags: MsFlags, data: Option<&str>| Call::Mount {
        source: Some(p(fs)),
        target: p(target),
        fstype: Some(fs.into()),
        flags,
        data: data.map(Into::into),
    };
    let mkdir = |path: &str, mode| Call::Mkdir {
        path: p(path),
        mode,
    };
    let node = |name: &str, major, minor| Call::MknodChar {
        path: p(name),
        mode: 0o666,
        major,
        minor,
    };
    let link = |target: &str, l: &str| Call::Symlink {
        target: p(target),
        link: p(l),
    };
    let (ns, nd, ne) = (MsFlags::MS_NOSUID, MsFlags::MS_NODEV, MsFlags::MS_NOEXEC);
    let expected = vec![
        Call::SetPdeathsig(Signal::SIGKILL),
        Call::ParentAlive(devnull_fd),
        Call::DupAbove { fd: 5, min: 10 },
        Call::DupAbove { fd: 6, min: 10 },
        Call::DupAbove { fd: 6, min: 10 },
        Call::DupAbove { fd: 7, min: 10 },
        Call::Dup2 { old: 101, new: 0 },
        Call::Dup2 { old: 102, new: 1 },
        Call::Dup2 { old: 103, new: 2 },
        Call::Dup2 { old: 104, new: 3 },
        Call::CloseFrom(4),
        Call::UnshareNet,
        Call::Umask(0),
        Call::Mount {
            source: None,
            target: p("/"),
            fstype: None,
            flags: MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            data: None,
        },
        fresh("tmpfs", "/tmp", ns | nd, Some("mode=0755")),
        mkdir("/tmp/.oldroot", 0o700),
        Call::PivotRoot {
            new_root: p("/tmp"),
            put_old: p("/tmp/.oldroot"),
        },
        Call::Chdir(p("/")),
        mkdir("/usr", 0o755),
        link("usr/bin", "/bin"),
        bind("/.oldroot/usr", "/usr", true),
        ro("/usr", true),
        // The fake host has no /etc: the container gets one with just its own two files.
        mkdir("/etc", 0o755),
        Call::WriteFile {
            path: p("/etc/hostname"),
            contents: b"db-1\n".to_vec(),
            mode: 0o644,
        },
        Call::WriteFile {
            path: p("/etc/hosts"),
            contents: tinyo_rootfs::etc_hosts("db-1").into_bytes(),
            mode: 0o644,
        },
        mkdir("/tmp", 0o1777),
        mkdir("/w", 0o755),
        bind("/.oldroot/w", "/w", true),
        ro("/w", true),
        mkdir("/dev", 0o755),
        fresh("tmpfs", "/dev", ns | ne, Some("mode=0755")),
        node("/dev/null", 1, 3),
        node("/dev/zero", 1, 5),
        node("/dev/full", 1, 7),
        node("/dev/random", 1, 8),
        node("/dev/urandom", 1, 9),
        node("/dev/tty", 5, 0),
        link("/proc/self/fd", "/dev/fd"),
        link("/proc/self/fd/0", "/dev/stdin"),
        link("/proc/self/fd/1", "/dev/stdout"),
        link("/proc/self/fd/2", "/dev/stderr"),
        link("pts/ptmx", "/dev/ptmx"),
        mkdir("/dev/pts", 0o755),
        mkdir("/dev/shm", 0o1777),
        fresh(
            "devpts",
            "/dev/pts",
            ns | ne,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        ),
        fresh("tmpfs", "/dev/shm", ns | nd | ne, Some("mode=1777")),
        mkdir("/proc", 0o555),
        fresh("proc", "/proc", ns | nd | ne, None),
        mkdir("/sys", 0o555),
        fresh("sysfs", "/sys", ns | nd | ne | MsFlags::MS_RDONLY, None),
        Call::Mount {
            source: None,
            target: p("/.oldroot"),
            fstype: None,
            flags: MsFlags::MS_REC | MsFlags::MS_SLAVE,
            data: None,
        },
        Call::UmountDetach(p("/.oldroot")),
        Call::Rmdir(p("/.oldroot")),
        Call::Chdir(p("/w")),
        Call::Sethostname("db-1".into()),
        Call::LoopbackUp,
    ];
    assert_eq!(calls, expected);
}

#[test]
fn no_loopback_without_a_private_network() {
    for net in [NetMode::None, NetMode::Host] {
        let sys = RecordingSys::new();
        run(&sys, net).unwrap();
        assert!(!sys.calls().contains(&Call::LoopbackUp));
        assert_eq!(
            sys.calls().contains(&Call::UnshareNet),
            net == NetMode::None
        );
        assert_eq!(sys.calls().last(), Some(&Call::Sethostname("db-1".into())));
    }
}

#[test]
fn dead_parent_stops_before_anything_is_mounted() {
    let sys = RecordingSys::new().with_dead_parent();
    assert_eq!(run(&sys, NetMode::Loopback), Err(SetupError::ParentGone));
    assert_eq!(sys.calls().len(), 2);
}

#[test]
fn first_failure_stops_the_sequence_with_a_precise_error() {
    let sys = RecordingSys::new().failing(
        |c| matches!(c, Call::Mount { fstype: Some(f), .. } if f == "proc"),
        Errno::EPERM,
    );
    let err = run(&sys, NetMode::Loopback).unwrap_err();
    assert_eq!(
        err,
        SetupError::Mount {
            fstype: "proc",
            target: p("/proc"),
            errno: Errno::EPERM
        }
    );
    assert!(matches!(sys.calls().last(), Some(Call::Mount { fstype: Some(f), .. }) if f == "proc"));
    assert!(!sys
        .calls()
        .iter()
        .any(|c| matches!(c, Call::Sethostname(_))));
}

#[test]
fn old_kernels_remount_read_only_keeping_locked_flags() {
    let sys = RecordingSys::new().without_mount_setattr();
    run(&sys, NetMode::Loopback).unwrap();
    let calls = sys.calls();
    let at = calls
        .iter()
        .position(|c| {
            *c == Call::MountSetattrReadonly {
                path: p("/usr"),
                recursive: true,
            }
        })
        .unwrap();
    assert_eq!(calls[at + 1], Call::LockedMountFlags(p("/usr")));
    assert_eq!(
        calls[at + 2],
        Call::Mount {
            source: None,
            target: p("/usr"),
            fstype: None,
            // The fake reports the source as nosuid,nodev: both are restated.
            flags: MsFlags::MS_REMOUNT
                | MsFlags::MS_BIND
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV,
            data: None,
        }
    );
}
