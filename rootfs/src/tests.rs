use super::*;

fn debian() -> HostFacts {
    HostFacts::new(vec![
        (p("/usr"), EntryKind::Dir),
        (p("/bin"), EntryKind::Symlink(p("usr/bin"))),
        (p("/sbin"), EntryKind::Symlink(p("usr/sbin"))),
        (p("/lib"), EntryKind::Symlink(p("usr/lib"))),
        (p("/lib32"), EntryKind::Absent),
        (p("/lib64"), EntryKind::Symlink(p("usr/lib64"))),
        (p("/etc"), EntryKind::Dir),
    ])
}

fn mount(fstype: FsType, target: &str, flags: MountFlags, data: &str) -> Step {
    Step::Mount {
        fstype,
        target: p(target),
        flags,
        data: data.into(),
    }
}
fn mkdir(path: &str, mode: u32) -> Step {
    Step::Mkdir {
        path: p(path),
        mode,
    }
}
fn symlink(target: &str, link: &str) -> Step {
    Step::Symlink {
        target: p(target),
        link: p(link),
    }
}
fn ro_bind(src: &str, dst: &str, recursive: bool) -> Step {
    Step::Bind {
        src: p(src),
        dst: p(dst),
        recursive,
        readonly: true,
    }
}
const NS: MountFlags = MountFlags::NOSUID;
const ND: MountFlags = MountFlags::NODEV;
const NE: MountFlags = MountFlags::NOEXEC;

/// The steps after the crate directory: /dev, /proc, /sys and the old root's removal.
fn dev_proc_sys_tail(workdir: &str) -> Vec<Step> {
    vec![
        mkdir("/dev", 0o755),
        mount(FsType::Tmpfs, "/dev", NS | NE, "mode=0755"),
        Step::Mknod {
            path: p("/dev/null"),
            major: 1,
            minor: 3,
            mode: 0o666,
        },
        Step::Mknod {
            path: p("/dev/zero"),
            major: 1,
            minor: 5,
            mode: 0o666,
        },
        Step::Mknod {
            path: p("/dev/full"),
            major: 1,
            minor: 7,
            mode: 0o666,
        },
        Step::Mknod {
            path: p("/dev/random"),
            major: 1,
            minor: 8,
            mode: 0o666,
        },
        Step::Mknod {
            path: p("/dev/urandom"),
            major: 1,
            minor: 9,
            mode: 0o666,
        },
        Step::Mknod {
            path: p("/dev/tty"),
            major: 5,
            minor: 0,
            mode: 0o666,
        },
        symlink("/proc/self/fd", "/dev/fd"),
        symlink("/proc/self/fd/0", "/dev/stdin"),
        symlink("/proc/self/fd/1", "/dev/stdout"),
        symlink("/proc/self/fd/2", "/dev/stderr"),
        symlink("pts/ptmx", "/dev/ptmx"),
        mkdir("/dev/pts", 0o755),
        mkdir("/dev/shm", 0o1777),
        mount(
            FsType::Devpts,
            "/dev/pts",
            NS | NE,
            "newinstance,ptmxmode=0666,mode=0620",
        ),
        mount(FsType::Tmpfs, "/dev/shm", NS | ND | NE, "mode=1777"),
        mkdir("/proc", 0o555),
        mount(FsType::Proc, "/proc", NS | ND | NE, ""),
        mkdir("/sys", 0o555),
        mount(FsType::Sysfs, "/sys", NS | ND | NE | MountFlags::RDONLY, ""),
        Step::MakeSlave {
            path: p("/.oldroot"),
        },
        Step::Detach {
            path: p("/.oldroot"),
        },
        Step::RemoveDir {
            path: p("/.oldroot"),
        },
        Step::Chdir { path: p(workdir) },
    ]
}

#[test]
fn default_plan_on_a_merged_usr_host() {
    let config = RootfsConfig::new("db-1").with_crate_dir("/work/app");
    let mut expected = vec![
        Step::MakePrivate { path: p("/") },
        mount(FsType::Tmpfs, "/tmp", NS | ND, "mode=0755"),
        mkdir("/tmp/.oldroot", 0o700),
        Step::PivotRoot {
            new_root: p("/tmp"),
            put_old: p("/tmp/.oldroot"),
        },
        Step::Chdir { path: p("/") },
        mkdir("/usr", 0o755),
        symlink("usr/bin", "/bin"),
        symlink("usr/sbin", "/sbin"),
        symlink("usr/lib", "/lib"),
        symlink("usr/lib64", "/lib64"),
        mkdir("/etc", 0o755),
        ro_bind("/.oldroot/usr", "/usr", true),
        ro_bind("/.oldroot/etc", "/etc", true),
        mkdir("/.tinyo", 0o755),
        Step::WriteFile {
            path: p("/.tinyo/hostname"),
            contents: b"db-1\n".to_vec(),
            mode: 0o644,
        },
        ro_bind("/.tinyo/hostname", "/etc/hostname", false),
        Step::WriteFile {
            path: p("/.tinyo/hosts"),
            contents: etc_hosts("db-1").into_bytes(),
            mode: 0o644,
        },
        ro_bind("/.tinyo/hosts", "/etc/hosts", false),
        Step::RemoveFile {
            path: p("/.tinyo/hostname"),
        },
        Step::RemoveFile {
            path: p("/.tinyo/hosts"),
        },
        Step::RemoveDir { path: p("/.tinyo") },
        mkdir("/tmp", 0o1777),
        mkdir("/work", 0o755),
        mkdir("/work/app", 0o755),
        ro_bind("/.oldroot/work/app", "/work/app", true),
    ];
    expected.extend(dev_proc_sys_tail("/work/app"));
    assert_eq!(plan(&config, &debian()), expected);
}

#[test]
fn split_usr_host_binds_each_directory() {
    let facts = HostFacts::new(vec![
        (p("/usr"), EntryKind::Dir),
        (p("/bin"), EntryKind::Dir),
        (p("/lib"), EntryKind::Dir),
        (p("/lib64"), EntryKind::Absent),
        (p("/etc"), EntryKind::Dir),
    ]);
    let steps = plan(&RootfsConfig::new("t"), &facts);
    let binds: Vec<_> = steps
        .iter()
        .filter(|s| {
            matches!(
                s,
                Step::Bind {
                    recursive: true,
                    ..
                }
            )
        })
        .cloned()
        .collect();
    assert_eq!(
        binds,
        vec![
            ro_bind("/.oldroot/usr", "/usr", true),
            ro_bind("/.oldroot/bin", "/bin", true),
            ro_bind("/.oldroot/lib", "/lib", true),
            ro_bind("/.oldroot/etc", "/etc", true),
        ]
    );
    assert!(!steps
        .iter()
        .any(|s| matches!(s, Step::Mkdir { path, .. } if path == Path::new("/lib64"))));
    assert_eq!(steps.last(), Some(&Step::Chdir { path: p("/") }));
}

#[test]
fn tmp_is_a_directory_of_a_writable_root_and_a_tmpfs_of_its_own_otherwise() {
    let tmpfs = mount(FsType::Tmpfs, "/tmp", NS | ND, "mode=1777");
    let steps = plan(&RootfsConfig::new("t"), &debian());
    assert!(steps.contains(&mkdir("/tmp", 0o1777)));
    assert!(!steps.contains(&tmpfs), "{steps:#?}");
    let mut config = RootfsConfig::new("t");
    config.readonly_root = true;
    assert!(plan(&config, &debian()).contains(&tmpfs));
}

#[test]
fn crate_dir_under_tmp_is_bound_after_the_private_tmp() {
    let mut config = RootfsConfig::new("t").with_crate_dir("/tmp/fixture");
    // A read-only root: /tmp is a tmpfs of its own, which must not hide the crate's bind.
    config.readonly_root = true;
    let steps = plan(&config, &debian());
    let tmp_mount = steps
        .iter()
        .position(|s| *s == mount(FsType::Tmpfs, "/tmp", NS | ND, "mode=1777"));
    let bind = steps
        .iter()
        .position(|s| *s == ro_bind("/.oldroot/tmp/fixture", "/tmp/fixture", true));
    assert!(
        tmp_mount.is_some() && bind.is_some() && tmp_mount < bind,
        "{steps:#?}"
    );
    // /tmp itself is not made twice.
    assert_eq!(
        steps
            .iter()
            .filter(|s| **s == mkdir("/tmp", 0o1777))
            .count(),
        1
    );
}

#[test]
fn crate_dir_inside_a_system_dir_is_not_bound_again() {
    let steps = plan(
        &RootfsConfig::new("t").with_crate_dir("/usr/src/app"),
        &debian(),
    );
    assert!(!steps
        .iter()
        .any(|s| matches!(s, Step::Bind { dst, .. } if dst == Path::new("/usr/src/app"))));
    assert_eq!(
        steps.last(),
        Some(&Step::Chdir {
            path: p("/usr/src/app")
        })
    );
}

#[test]
fn missing_etc_files_are_not_bound() {
    let mut facts = debian();
    facts.etc_hostname = false;
    let steps = plan(&RootfsConfig::new("t"), &facts);
    assert!(!steps
        .iter()
        .any(|s| matches!(s, Step::Bind { dst, .. } if dst == Path::new("/etc/hostname"))));
    assert!(steps
        .iter()
        .any(|s| matches!(s, Step::Bind { dst, .. } if dst == Path::new("/etc/hosts"))));
}

#[test]
fn host_without_etc_gets_generated_files() {
    let facts = HostFacts::new(vec![(p("/usr"), EntryKind::Dir)]);
    let steps = plan(&RootfsConfig::new("box"), &facts);
    assert!(steps.contains(&Step::WriteFile {
        path: p("/etc/hostname"),
        contents: b"box\n".to_vec(),
        mode: 0o644
    }));
}

#[test]
fn rootless_devices_and_sysfs_are_bound_from_the_host() {
    let mut config = RootfsConfig::new("t");
    config.devices = DeviceMode::BindHost;
    config.sysfs = SysfsMode::HostBind;
    let steps = plan(&config, &debian());
    assert!(!steps.iter().any(|s| matches!(s, Step::Mknod { .. })));
    let null = steps.iter().position(|s| {
        *s == Step::CreateFile {
            path: p("/dev/null"),
            mode: 0o666,
        }
    });
    let bind = steps.iter().position(|s| {
        *s == Step::Bind {
            src: p("/.oldroot/dev/null"),
            dst: p("/dev/null"),
            recursive: false,
            readonly: false,
        }
    });
    assert!(null.is_some() && null < bind);
    assert!(steps.contains(&ro_bind("/.oldroot/sys", "/sys", true)));
}

#[test]
fn hosts_file_maps_the_hostname_and_localhost() {
    let hosts = etc_hosts("db-1");
    assert!(hosts.lines().any(|l| l == "127.0.1.1\tdb-1"));
    assert!(hosts.lines().any(|l| l.starts_with("127.0.0.1\tlocalhost")));
    assert!(hosts.lines().any(|l| l.starts_with("::1\tlocalhost")));
}

#[test]
fn mount_flags_debug_lists_names() {
    assert_eq!(format!("{:?}", NS | NE), "NOSUID|NOEXEC");
    assert_eq!(format!("{:?}", MountFlags::NONE), "NONE");
}

#[test]
fn staged_crate_dir_is_bound_from_the_staging_area() {
    let mut config = RootfsConfig::new("t").with_crate_dir("/root/app");
    config.crate_source = Some(p(STAGED_CRATE));
    config.staged = true;
    let steps = plan(&config, &debian());
    assert!(
        steps.contains(&Step::Bind {
            src: p("/.oldroot/.staged/crate"),
            dst: p("/root/app"),
            recursive: true,
            readonly: false
        }),
        "{steps:#?}"
    );
    let sources = [
        StagedSource {
            path: p("/var/out"),
            is_dir: true,
            writable: true,
            image: false,
        },
        StagedSource {
            path: p("/w/image"),
            is_dir: true,
            writable: false,
            image: true,
        },
    ];
    let staging = staging_plan(
        Some(Path::new("/proc/self/fd/7")),
        &["db-1"],
        &debian(),
        &sources,
        Some(Path::new("/proc/self/fd/9")),
    );
    assert!(staging.contains(&Step::Bind {
        src: p("/var/out"),
        dst: p("/tmp/.staged/binds/0"),
        recursive: true,
        readonly: false
    }));
    assert!(staging.contains(&Step::BindIdmapped {
        src: p("/w/image"),
        dst: p("/tmp/.staged/binds/1"),
        userns: p("/proc/self/fd/9")
    }));
    assert_eq!(
        staging[..6],
        [
            Step::MakePrivate { path: p("/") },
            mount(FsType::Tmpfs, "/tmp", NS, "mode=0755"),
            mkdir("/tmp/usr", 0o755),
            ro_bind("/usr", "/tmp/usr", true),
            mkdir("/tmp/etc", 0o755),
            ro_bind("/etc", "/tmp/etc", true),
        ]
    );
    assert!(staging.contains(&Step::Bind {
        src: p("/proc"),
        dst: p("/tmp/proc"),
        recursive: false,
        readonly: false
    }));
    assert!(staging.contains(&Step::Mknod {
        path: p("/tmp/dev/null"),
        major: 1,
        minor: 3,
        mode: 0o666
    }));
    assert!(staging.contains(&symlink("pts/ptmx", "/tmp/dev/ptmx")));
    assert!(staging.contains(&ro_bind("/proc/self/fd/7", "/tmp/.staged/crate", true)));
    assert!(staging.contains(&Step::WriteFile {
        path: p("/tmp/.staged/etc/db-1/hostname"),
        contents: b"db-1\n".to_vec(),
        mode: 0o644
    }));
    assert_eq!(
        staging[staging.len() - 4..],
        [
            Step::Chdir { path: p("/tmp") },
            Step::PivotRoot {
                new_root: p("."),
                put_old: p(".")
            },
            Step::Detach { path: p(".") },
            Step::Chdir { path: p("/") }
        ]
    );
}

#[test]
fn staged_dev_and_etc_are_bound_not_built() {
    let mut config = RootfsConfig::new("db-1");
    config.dev_source = Some(p(STAGED_DEV));
    config.etc_source = Some(p("/.staged/etc/db-1"));
    config.staged = true;
    let steps = plan(&config, &debian());
    let bind = |src: &str, dst: &str, recursive| Step::Bind {
        src: p(src),
        dst: p(dst),
        recursive,
        readonly: false,
    };
    assert!(steps.contains(&bind("/.oldroot/dev", "/dev", false)));
    assert!(steps.contains(&bind(
        "/.oldroot/.staged/etc/db-1/hostname",
        "/etc/hostname",
        false
    )));
    assert!(steps.contains(&bind(
        "/.oldroot/.staged/etc/db-1/hosts",
        "/etc/hosts",
        false
    )));
    assert!(
        steps.contains(&bind("/.oldroot/usr", "/usr", true)),
        "staged sources are read-only already"
    );
    assert!(
        !steps
            .iter()
            .any(|s| matches!(s, Step::MakePrivate { .. } | Step::MakeSlave { .. })),
        "a staged root is private"
    );
    assert!(
        !steps.iter().any(|s| matches!(
            s,
            Step::Mknod { .. } | Step::WriteFile { .. } | Step::CreateFile { .. }
        )),
        "{steps:#?}"
    );
    assert!(steps.contains(&mount(
        FsType::Devpts,
        "/dev/pts",
        NS | NE,
        "newinstance,ptmxmode=0666,mode=0620"
    )));
}

#[test]
fn binds_tmpfs_files_readonly_root_and_workdir() {
    let mut config = RootfsConfig::new("t").with_crate_dir("/w");
    config.binds = vec![
        BindSpec {
            src: p("/w/data"),
            dst: p("/srv/data"),
            writable: false,
            is_dir: true,
        },
        BindSpec {
            src: p("/var/out"),
            dst: p("/out"),
            writable: true,
            is_dir: true,
        },
        BindSpec {
            src: p("/w/app.conf"),
            dst: p("/opt/app/app.conf"),
            writable: false,
            is_dir: false,
        },
    ];
    config.tmpfs = vec![p("/var/cache")];
    config.files = vec![FileSpec {
        path: p("/opt/app/id"),
        contents: b"7".to_vec(),
        mode: 0o600,
    }];
    config.readonly_root = true;
    config.workdir = Some(p("/srv"));
    let steps = plan(&config, &debian());
    let first = steps
        .iter()
        .position(|s| matches!(s, Step::MkdirAll { .. }))
        .unwrap();
    let tail: Vec<Step> = steps[first..].to_vec();
    assert_eq!(
        tail,
        vec![
            Step::MkdirAll {
                path: p("/srv/data"),
                mode: 0o755
            },
            ro_bind("/.oldroot/w/data", "/srv/data", true),
            Step::MkdirAll {
                path: p("/out"),
                mode: 0o755
            },
            Step::Bind {
                src: p("/.oldroot/var/out"),
                dst: p("/out"),
                recursive: true,
                readonly: false
            },
            Step::MkdirAll {
                path: p("/opt/app"),
                mode: 0o755
            },
            Step::CreateFile {
                path: p("/opt/app/app.conf"),
                mode: 0o644
            },
            ro_bind("/.oldroot/w/app.conf", "/opt/app/app.conf", true),
            Step::MkdirAll {
                path: p("/var/cache"),
                mode: 0o755
            },
            mount(FsType::Tmpfs, "/var/cache", NS | ND, "mode=1777"),
            Step::MakeSlave { path: p(OLD_ROOT) },
            Step::Detach { path: p(OLD_ROOT) },
            Step::RemoveDir { path: p(OLD_ROOT) },
            Step::MkdirAll {
                path: p("/opt/app"),
                mode: 0o755
            },
            Step::WriteFile {
                path: p("/opt/app/id"),
                contents: b"7".to_vec(),
                mode: 0o600
            },
            Step::MakeReadOnly {
                path: p("/"),
                recursive: false
            },
            Step::Chdir { path: p("/srv") },
        ]
    );
}

#[test]
fn an_image_root_is_an_overlay_with_a_tmpfs_upper_layer() {
    let mut config = RootfsConfig::new("img").with_crate_dir("/w");
    config.image = Some(p("/.staged/binds/0"));
    let steps = plan(&config, &debian());
    assert_eq!(
        steps[..10],
        [
            Step::MakePrivate { path: p("/") },
            mount(FsType::Tmpfs, "/tmp", NS | ND, "mode=0755"),
            mkdir("/tmp/.upper", 0o755),
            mkdir("/tmp/.work", 0o755),
            mkdir("/tmp/.root", 0o755),
            mount(
                FsType::Overlay,
                "/tmp/.root",
                NS,
                "lowerdir=/.staged/binds/0,upperdir=/tmp/.upper,workdir=/tmp/.work,userxattr"
            ),
            mkdir("/tmp/.root/.oldroot", 0o700),
            Step::PivotRoot {
                new_root: p("/tmp/.root"),
                put_old: p("/tmp/.root/.oldroot")
            },
            Step::Chdir { path: p("/") },
            Step::MkdirAll {
                path: p("/etc"),
                mode: 0o755
            },
        ]
    );
    // No host system directories; the image's own, with the container's /etc files in it.
    assert!(!steps
        .iter()
        .any(|s| matches!(s, Step::Bind { dst, .. } if dst == Path::new("/usr"))));
    assert!(steps.contains(&Step::WriteFile {
        path: p("/etc/hostname"),
        contents: b"img\n".to_vec(),
        mode: 0o644
    }));
    assert!(steps.contains(&Step::MkdirAll {
        path: p("/dev"),
        mode: 0o755
    }));
}
