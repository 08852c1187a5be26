//! The filesystem of a tinyo container, as a pure plan.
//!
//! [`plan`] turns a [`RootfsConfig`] and the [`HostFacts`] observed on the machine into an
//! ordered list of [`Step`]s: mount this, bind that, make this directory, write that file.
//! Nothing here touches the system: `tinyo-core` applies the plan, one syscall per step, and
//! this crate is tested by comparing whole plans.
//!
//! The plan builds the new root *in place*: it mounts a tmpfs over a scratch directory
//! ([`SCRATCH`], `/tmp` of the host, hidden only inside the container's private mount
//! namespace), `pivot_root`s into it at once with the old root parked at [`OLD_ROOT`], builds
//! the skeleton there with binds whose sources are read through the parked old root, and
//! finally detaches the old root. One `pivot_root`, and every host path stays reachable as a
//! bind source however the new root shadows it.
//!
//! ```
//! use tinyo_rootfs::{plan, EntryKind, HostFacts, RootfsConfig, Step};
//!
//! let facts = HostFacts::new(vec![("/usr".into(), EntryKind::Dir), ("/bin".into(), EntryKind::Symlink("usr/bin".into()))]);
//! let steps = plan(&RootfsConfig::new("db-1"), &facts);
//! assert!(steps.contains(&Step::Symlink { target: "usr/bin".into(), link: "/bin".into() }));
//! assert!(matches!(steps.last(), Some(Step::Chdir { .. })));
//! ```

use std::fmt;
use std::ops::BitOr;
use std::path::{Component, Path, PathBuf};

/// Where the new root's tmpfs is mounted before `pivot_root` (inside the container's own
/// mount namespace, so the host's directory is untouched).
pub const SCRATCH: &str = "/tmp";

/// Where the old root is parked by `pivot_root` until it is detached.
pub const OLD_ROOT: &str = "/.oldroot";

/// Staging directory for generated files, removed before the body runs.
pub const STAGING: &str = "/.tinyo";

/// Where [`staging_plan`] puts the crate directory, in the zygote's minimal root.
pub const STAGED_CRATE: &str = "/.staged/crate";

/// Where [`staging_plan`] builds the `/dev` template (nodes, links, `pts` and `shm` mount
/// points), in the zygote's minimal root.
pub const STAGED_DEV: &str = "/dev";

/// Where [`staging_plan`] writes `<hostname>/hostname` and `<hostname>/hosts`, in the
/// zygote's minimal root.
pub const STAGED_ETC: &str = "/.staged/etc";

/// The host's system directories a container sees read-only, when they exist.
pub const SYSTEM_DIRS: [&str; 7] = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"];

/// What a host path is, as observed by `lstat`/`readlink` before planning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A real directory: bound read-only.
    Dir,
    /// A symbolic link (merged-usr: `/bin -> usr/bin`): reproduced as the same link.
    Symlink(PathBuf),
    /// Anything else, or nothing: left out.
    Absent,
}

/// Facts about the host that the plan depends on. Gathered by the runtime, so that planning
/// stays pure and testable.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HostFacts {
    /// Each of [`SYSTEM_DIRS`] (or any other top-level system path) and what it is.
    pub system: Vec<(PathBuf, EntryKind)>,
    /// `/etc/hostname` exists on the host (a file can only be bound over an existing file).
    pub etc_hostname: bool,
    /// `/etc/hosts` exists on the host.
    pub etc_hosts: bool,
}

impl HostFacts {
    /// Facts with the given system entries and both `/etc` files present.
    pub fn new(system: Vec<(PathBuf, EntryKind)>) -> Self {
        Self {
            system,
            etc_hostname: true,
            etc_hosts: true,
        }
    }
}

/// Mount flags, as a small set.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct MountFlags(u8);

impl MountFlags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// `MS_NOSUID`.
    pub const NOSUID: Self = Self(1);
    /// `MS_NODEV`.
    pub const NODEV: Self = Self(2);
    /// `MS_NOEXEC`.
    pub const NOEXEC: Self = Self(4);
    /// `MS_RDONLY`.
    pub const RDONLY: Self = Self(8);

    /// Whether every flag of `other` is set in `self`.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for MountFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl fmt::Debug for MountFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::NOSUID, "NOSUID"),
            (Self::NODEV, "NODEV"),
            (Self::NOEXEC, "NOEXEC"),
            (Self::RDONLY, "RDONLY"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(fl, _)| self.contains(*fl))
            .map(|(_, n)| *n)
            .collect();
        if set.is_empty() {
            f.write_str("NONE")
        } else {
            f.write_str(&set.join("|"))
        }
    }
}

/// A filesystem type the plan mounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsType {
    /// `tmpfs`.
    Tmpfs,
    /// `proc` (mounted from inside the new PID namespace, so it shows only the container).
    Proc,
    /// `sysfs`.
    Sysfs,
    /// `devpts`.
    Devpts,
    /// `overlay`: a read-only image under a writable tmpfs layer.
    Overlay,
}

impl FsType {
    /// The name the kernel knows the filesystem by.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tmpfs => "tmpfs",
            Self::Proc => "proc",
            Self::Sysfs => "sysfs",
            Self::Devpts => "devpts",
            Self::Overlay => "overlay",
        }
    }
}

/// How `/sys` is provided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SysfsMode {
    /// A fresh read-only `sysfs` (needs its own network namespace when rootless).
    #[default]
    Fresh,
    /// The host's `/sys`, bound read-only.
    HostBind,
}

/// How device nodes in `/dev` are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DeviceMode {
    /// `mknod` (needs real root).
    #[default]
    Mknod,
    /// Bind the host's nodes over empty files (works in a user namespace).
    BindHost,
}

/// An extra bind mount (`bind = "src:dst[:rw]"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindSpec {
    /// Source, absolute, in the host's view (or the staged root's).
    pub src: PathBuf,
    /// Destination in the container, absolute.
    pub dst: PathBuf,
    /// `:rw`; read-only otherwise.
    pub writable: bool,
    /// The source is a directory (else a file: the destination is made a file).
    pub is_dir: bool,
}

/// A file written into the container's root before the body runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    /// Absolute path in the container.
    pub path: PathBuf,
    /// Contents.
    pub contents: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
}

/// What the container's filesystem should look like.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RootfsConfig {
    /// The hostname written to `/etc/hostname` and `/etc/hosts`.
    pub hostname: String,
    /// The crate directory, bound read-only at its own path and used as the working directory.
    pub crate_dir: Option<PathBuf>,
    /// Where to bind the crate directory from, in the host's view (default: `crate_dir`);
    /// [`STAGED_CRATE`] after [`staging_plan`].
    pub crate_source: Option<PathBuf>,
    /// A prepared `/dev` ([`STAGED_DEV`]) to bind read-only instead of building one.
    pub dev_source: Option<PathBuf>,
    /// A directory with this hostname's `hostname` and `hosts` files ([`STAGED_ETC`]`/<name>`)
    /// to bind instead of writing them.
    pub etc_source: Option<PathBuf>,
    /// Extra bind mounts, after the default view.
    pub binds: Vec<BindSpec>,
    /// Extra empty writable tmpfs mounts.
    pub tmpfs: Vec<PathBuf>,
    /// Files to write (after every mount, so they land in a tmpfs when under one).
    pub files: Vec<FileSpec>,
    /// A directory image to use as the root instead of the host's system directories
    /// (host view): read-only under an overlay whose upper layer is a tmpfs, so the test
    /// writes anywhere and nothing reaches the directory.
    pub image: Option<PathBuf>,
    /// More `/etc/hosts` lines: (name, address), for the hosts of a test network.
    pub extra_hosts: Vec<(String, String)>,
    /// Make `/` itself read-only at the end (mounts below it keep their own modes).
    pub readonly_root: bool,
    /// The body's working directory (default: the crate directory).
    pub workdir: Option<PathBuf>,
    /// The host's view is the zygote's staged minimal root (see [`staging_plan`]): its mounts
    /// are private already and its bind sources read-only, so the binds of them inherit
    /// read-only and no propagation needs changing.
    pub staged: bool,
    /// How `/sys` is provided.
    pub sysfs: SysfsMode,
    /// How device nodes are made.
    pub devices: DeviceMode,
}

impl RootfsConfig {
    /// The default view for a container with this hostname.
    pub fn new(hostname: impl Into<String>) -> Self {
        Self {
            hostname: hostname.into(),
            crate_dir: None,
            crate_source: None,
            dev_source: None,
            etc_source: None,
            staged: false,
            binds: Vec::new(),
            extra_hosts: Vec::new(),
            image: None,
            tmpfs: Vec::new(),
            files: Vec::new(),
            readonly_root: false,
            workdir: None,
            sysfs: SysfsMode::Fresh,
            devices: DeviceMode::Mknod,
        }
    }

    /// Bind this crate directory read-only and start the body there.
    pub fn with_crate_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.crate_dir = Some(dir.into());
        self
    }
}

/// One step of building the container's filesystem. Paths are absolute, as seen by the
/// process applying the plan at that point (before [`Step::PivotRoot`]: the host's view).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// `mount(NULL, path, NULL, MS_REC|MS_PRIVATE)`: no mount event propagates to or from the host.
    MakePrivate {
        /// Usually `/`.
        path: PathBuf,
    },
    /// Mount a fresh filesystem.
    Mount {
        /// Filesystem type.
        fstype: FsType,
        /// Mount point.
        target: PathBuf,
        /// Flags.
        flags: MountFlags,
        /// Filesystem options (`mode=755`, `newinstance`…).
        data: String,
    },
    /// `mkdir`.
    Mkdir {
        /// Directory to create.
        path: PathBuf,
        /// Permission bits (the applier runs with umask 0).
        mode: u32,
    },
    /// `symlink(target, link)`.
    Symlink {
        /// What the link points to.
        target: PathBuf,
        /// The link itself.
        link: PathBuf,
    },
    /// `mknod` a character device.
    Mknod {
        /// Node path.
        path: PathBuf,
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
        /// Permission bits.
        mode: u32,
    },
    /// `mkdir -p`: each missing component, existing ones left alone.
    MkdirAll {
        /// Directory to create.
        path: PathBuf,
        /// Permission bits of the ones created.
        mode: u32,
    },
    /// Bind `src` at `dst` through an id-mapped mount: files show the ids of the user
    /// namespace at `userns` (`/proc/self/fd/N`). Used for image roots, so that the host's
    /// root-owned files are the container root's.
    BindIdmapped {
        /// Source.
        src: PathBuf,
        /// Destination (must exist).
        dst: PathBuf,
        /// The user namespace whose ids the mount shows.
        userns: PathBuf,
    },
    /// Make a mount read-only (`mount_setattr`), without touching its other flags.
    MakeReadOnly {
        /// Mount point.
        path: PathBuf,
        /// And every mount below it.
        recursive: bool,
    },
    /// Create an empty regular file (a mount point for a file bind).
    CreateFile {
        /// File path.
        path: PathBuf,
        /// Permission bits.
        mode: u32,
    },
    /// Create a regular file with these contents.
    WriteFile {
        /// File path.
        path: PathBuf,
        /// Contents.
        contents: Vec<u8>,
        /// Permission bits.
        mode: u32,
    },
    /// Bind `src` at `dst`; read-only binds keep the source's locked flags.
    Bind {
        /// Source path.
        src: PathBuf,
        /// Destination (must exist).
        dst: PathBuf,
        /// `MS_REC`: include the mounts below `src`.
        recursive: bool,
        /// Make the bind (and, when recursive, every mount below it) read-only.
        readonly: bool,
    },
    /// `pivot_root(new_root, put_old)`.
    PivotRoot {
        /// The new root (a mount point).
        new_root: PathBuf,
        /// Where the old root goes (under `new_root`).
        put_old: PathBuf,
    },
    /// `chdir`.
    Chdir {
        /// Directory.
        path: PathBuf,
    },
    /// `mount(NULL, path, NULL, MS_REC|MS_SLAVE)`: the detach below cannot propagate anywhere.
    MakeSlave {
        /// Mount point.
        path: PathBuf,
    },
    /// `umount2(path, MNT_DETACH)`.
    Detach {
        /// Mount point.
        path: PathBuf,
    },
    /// `unlink` a file.
    RemoveFile {
        /// File path.
        path: PathBuf,
    },
    /// `rmdir` an empty directory.
    RemoveDir {
        /// Directory path.
        path: PathBuf,
    },
}

/// The device nodes every container gets: name, major, minor.
pub const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The contents of `/etc/hosts` for a container named `hostname`.
pub fn etc_hosts(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    )
}

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

fn under(base: impl AsRef<Path>, path: &Path) -> PathBuf {
    let rel = path.strip_prefix("/").unwrap_or(path);
    base.as_ref().join(rel)
}

/// Plan the container's filesystem. See the crate docs for the shape of the result.
pub fn plan(config: &RootfsConfig, facts: &HostFacts) -> Vec<Step> {
    let mut steps = Vec::with_capacity(64);
    let old = |path: &Path| under(OLD_ROOT, path);

    // 1. Nothing we mount may propagate back to the host (a staged root is private already).
    if !config.staged {
        steps.push(Step::MakePrivate { path: p("/") });
    }
    // Binds of a staged root's read-only sources inherit read-only.
    let ro = !config.staged;

    // 2. The new root: a tmpfs over the scratch directory, entered at once. The old root is
    //    parked under it so every host path stays reachable as a bind source. With an image,
    //    the root is an overlay of the image under a layer in that tmpfs.
    let in_image = config.image.is_some();
    // Directories the plan makes may already be in an image.
    let mkdir = |path: PathBuf, mode: u32| {
        if in_image {
            Step::MkdirAll { path, mode }
        } else {
            Step::Mkdir { path, mode }
        }
    };
    steps.push(Step::Mount {
        fstype: FsType::Tmpfs,
        target: p(SCRATCH),
        flags: MountFlags::NOSUID | MountFlags::NODEV,
        data: "mode=0755".into(),
    });
    let root = match &config.image {
        None => p(SCRATCH),
        Some(image) => {
            let layer = |name: &str| under(SCRATCH, Path::new(name));
            for dir in ["/.upper", "/.work", "/.root"] {
                steps.push(Step::Mkdir {
                    path: layer(dir),
                    mode: 0o755,
                });
            }
            let data = format!(
                "lowerdir={},upperdir={},workdir={},userxattr",
                image.display(),
                layer("/.upper").display(),
                layer("/.work").display()
            );
            steps.push(Step::Mount {
                fstype: FsType::Overlay,
                target: layer("/.root"),
                flags: MountFlags::NOSUID,
                data,
            });
            layer("/.root")
        }
    };
    steps.push(Step::Mkdir {
        path: under(&root, Path::new(OLD_ROOT)),
        mode: 0o700,
    });
    steps.push(Step::PivotRoot {
        new_root: root.clone(),
        put_old: under(&root, Path::new(OLD_ROOT)),
    });
    steps.push(Step::Chdir { path: p("/") });

    // 3. System directories, read-only; merged-usr symlinks reproduced as symlinks. (An
    //    image brings its own.)
    let mut dirs = Vec::new();
    for (path, kind) in facts.system.iter().filter(|_| !in_image) {
        match kind {
            EntryKind::Dir => {
                steps.push(Step::Mkdir {
                    path: path.clone(),
                    mode: 0o755,
                });
                dirs.push(path.clone());
            }
            EntryKind::Symlink(target) => steps.push(Step::Symlink {
                target: target.clone(),
                link: path.clone(),
            }),
            EntryKind::Absent => {}
        }
    }
    for dir in &dirs {
        steps.push(Step::Bind {
            src: old(dir),
            dst: dir.clone(),
            recursive: true,
            readonly: ro,
        });
    }

    // 4. The container's own /etc/hostname and /etc/hosts: staged in the new root, bound
    //    read-only over the host's files, then unlinked from the staging directory. (In an
    //    image, written in place.)
    let etc_is_bound = dirs.iter().any(|d| d == Path::new("/etc"));
    let mut hosts = etc_hosts(&config.hostname);
    for (name, addr) in &config.extra_hosts {
        hosts.push_str(&format!("{addr}\t{name}\n"));
    }
    let generated = [
        (
            "hostname",
            format!("{}\n", config.hostname),
            facts.etc_hostname,
        ),
        ("hosts", hosts, facts.etc_hosts),
    ];
    if let (true, Some(source)) = (etc_is_bound, &config.etc_source) {
        for (name, _, exists) in &generated {
            if *exists {
                steps.push(Step::Bind {
                    src: old(&source.join(name)),
                    dst: Path::new("/etc").join(name),
                    recursive: false,
                    readonly: ro,
                });
            }
        }
    } else if etc_is_bound {
        let present: Vec<_> = generated.iter().filter(|(_, _, exists)| *exists).collect();
        if !present.is_empty() {
            steps.push(Step::Mkdir {
                path: p(STAGING),
                mode: 0o755,
            });
            for (name, contents, _) in &present {
                let staged = Path::new(STAGING).join(name);
                steps.push(Step::WriteFile {
                    path: staged.clone(),
                    contents: contents.clone().into_bytes(),
                    mode: 0o644,
                });
                steps.push(Step::Bind {
                    src: staged,
                    dst: Path::new("/etc").join(name),
                    recursive: false,
                    readonly: true,
                });
            }
            for (name, _, _) in &present {
                steps.push(Step::RemoveFile {
                    path: Path::new(STAGING).join(name),
                });
            }
            steps.push(Step::RemoveDir { path: p(STAGING) });
        }
    } else if in_image
        || !facts
            .system
            .iter()
            .any(|(d, k)| d == Path::new("/etc") && matches!(k, EntryKind::Symlink(_)))
    {
        // Written in place (an image may bring its own /etc already).
        steps.push(mkdir(p("/etc"), 0o755));
        for (name, contents, _) in &generated {
            steps.push(Step::WriteFile {
                path: Path::new("/etc").join(name),
                contents: contents.clone().into_bytes(),
                mode: 0o644,
            });
        }
    }

    // 5. A private, writable /tmp: a directory of the root's own tmpfs (fresh, private,
    //    nosuid and nodev already; a mount of its own would cost a superblock per
    //    container), or a tmpfs of its own where the root will be read-only or is an image
    //    (which may bring a /tmp with contents).
    steps.push(mkdir(p("/tmp"), 0o1777));
    if config.readonly_root || in_image {
        steps.push(Step::Mount {
            fstype: FsType::Tmpfs,
            target: p("/tmp"),
            flags: MountFlags::NOSUID | MountFlags::NODEV,
            data: "mode=1777".into(),
        });
    }

    // 6. The crate directory, read-only at its own path (unless a system bind already shows it).
    let mut workdir = p("/");
    if let Some(crate_dir) = &config.crate_dir {
        if crate_dir.is_absolute() {
            workdir = crate_dir.clone();
            let covered = facts
                .system
                .iter()
                .any(|(d, kind)| *kind != EntryKind::Absent && crate_dir.starts_with(d));
            if !covered {
                let mut made = p("/");
                for comp in crate_dir.components() {
                    if let Component::Normal(name) = comp {
                        made.push(name);
                        if made != Path::new("/tmp") {
                            steps.push(mkdir(made.clone(), 0o755));
                        }
                    }
                }
                let source = config.crate_source.as_deref().unwrap_or(crate_dir);
                steps.push(Step::Bind {
                    src: old(source),
                    dst: crate_dir.clone(),
                    recursive: true,
                    readonly: ro || config.crate_source.is_none(),
                });
            }
        }
    }

    // 7. /dev: the usual nodes and links, a private devpts and /dev/shm. Either a prepared
    //    template bound read-only (nodes stay writable: a read-only mount does not stop
    //    writes to a device), or built here on a tmpfs.
    steps.push(mkdir(p("/dev"), 0o755));
    match &config.dev_source {
        Some(source) => steps.push(Step::Bind {
            src: old(source),
            dst: p("/dev"),
            recursive: false,
            readonly: ro,
        }),
        None => {
            steps.push(Step::Mount {
                fstype: FsType::Tmpfs,
                target: p("/dev"),
                flags: MountFlags::NOSUID | MountFlags::NOEXEC,
                data: "mode=0755".into(),
            });
            dev_nodes(&mut steps, Path::new("/dev"), config.devices, &old);
            steps.push(Step::Mkdir {
                path: p("/dev/pts"),
                mode: 0o755,
            });
            steps.push(Step::Mkdir {
                path: p("/dev/shm"),
                mode: 0o1777,
            });
        }
    }
    steps.push(Step::Mount {
        fstype: FsType::Devpts,
        target: p("/dev/pts"),
        flags: MountFlags::NOSUID | MountFlags::NOEXEC,
        data: "newinstance,ptmxmode=0666,mode=0620".into(),
    });
    steps.push(Step::Mount {
        fstype: FsType::Tmpfs,
        target: p("/dev/shm"),
        flags: MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        data: "mode=1777".into(),
    });

    // 8. A fresh /proc (this process is PID 1 of the new PID namespace) and a read-only /sys.
    steps.push(mkdir(p("/proc"), 0o555));
    steps.push(Step::Mount {
        fstype: FsType::Proc,
        target: p("/proc"),
        flags: MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        data: String::new(),
    });
    steps.push(mkdir(p("/sys"), 0o555));
    match config.sysfs {
        SysfsMode::Fresh => steps.push(Step::Mount {
            fstype: FsType::Sysfs,
            target: p("/sys"),
            flags: MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC | MountFlags::RDONLY,
            data: String::new(),
        }),
        SysfsMode::HostBind => steps.push(Step::Bind {
            src: old(Path::new("/sys")),
            dst: p("/sys"),
            recursive: true,
            readonly: true,
        }),
    }

    // Then let go of the host (step 10): the old root can no longer propagate, then it is
    // detached and its mount point removed, so nothing of the host is reachable but the binds.
    // 9. The test's own binds and tmpfs mounts, over the default view.
    for bind in &config.binds {
        if bind.is_dir {
            steps.push(Step::MkdirAll {
                path: bind.dst.clone(),
                mode: 0o755,
            });
        } else {
            if let Some(parent) = bind.dst.parent() {
                steps.push(Step::MkdirAll {
                    path: parent.to_path_buf(),
                    mode: 0o755,
                });
            }
            steps.push(Step::CreateFile {
                path: bind.dst.clone(),
                mode: 0o644,
            });
        }
        steps.push(Step::Bind {
            src: old(&bind.src),
            dst: bind.dst.clone(),
            recursive: true,
            readonly: !bind.writable,
        });
    }
    for dir in &config.tmpfs {
        steps.push(Step::MkdirAll {
            path: dir.clone(),
            mode: 0o755,
        });
        steps.push(Step::Mount {
            fstype: FsType::Tmpfs,
            target: dir.clone(),
            flags: MountFlags::NOSUID | MountFlags::NODEV,
            data: "mode=1777".into(),
        });
    }

    // 10. Let go of the host.
    if !config.staged {
        steps.push(Step::MakeSlave { path: p(OLD_ROOT) });
    }
    steps.push(Step::Detach { path: p(OLD_ROOT) });
    steps.push(Step::RemoveDir { path: p(OLD_ROOT) });

    // 11. The test's inline files, then a read-only root if asked.
    for file in &config.files {
        if let Some(parent) = file.path.parent() {
            steps.push(Step::MkdirAll {
                path: parent.to_path_buf(),
                mode: 0o755,
            });
        }
        steps.push(Step::WriteFile {
            path: file.path.clone(),
            contents: file.contents.clone(),
            mode: file.mode,
        });
    }
    if config.readonly_root {
        steps.push(Step::MakeReadOnly {
            path: p("/"),
            recursive: false,
        });
    }

    // 12. Start where `cargo test` starts: in the crate directory (or the test's workdir).
    steps.push(Step::Chdir {
        path: config.workdir.clone().unwrap_or(workdir),
    });
    steps
}

/// A bind source [`staging_plan`] stages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedSource {
    /// Its host path.
    pub path: PathBuf,
    /// A directory (else a file).
    pub is_dir: bool,
    /// Some test binds it `:rw`.
    pub writable: bool,
    /// Some test uses it as a `rootfs` image.
    pub image: bool,
}

/// Where [`staging_plan`] puts the `index`th bind source, in the zygote's minimal root.
pub fn staged_bind(index: usize) -> PathBuf {
    PathBuf::from(format!("/.staged/binds/{index}"))
}

/// The device nodes and `/dev` links, under `dev`.
fn dev_nodes(
    steps: &mut Vec<Step>,
    dev: &Path,
    devices: DeviceMode,
    old: &dyn Fn(&Path) -> PathBuf,
) {
    for (name, major, minor) in DEVICES {
        let path = dev.join(name);
        match devices {
            DeviceMode::Mknod => steps.push(Step::Mknod {
                path,
                major,
                minor,
                mode: 0o666,
            }),
            DeviceMode::BindHost => {
                steps.push(Step::CreateFile {
                    path: path.clone(),
                    mode: 0o666,
                });
                steps.push(Step::Bind {
                    src: old(&Path::new("/dev").join(name)),
                    dst: path,
                    recursive: false,
                    readonly: false,
                });
            }
        }
    }
    for (target, link) in [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ] {
        steps.push(Step::Symlink {
            target: p(target),
            link: dev.join(link),
        });
    }
}

/// Work done once, by real root, in a private mount namespace of its own (the zygote's):
/// build a minimal root on a tmpfs over [`SCRATCH`] and `pivot_root` into it, so that every
/// container cloned from there copies a handful of mounts instead of the host's whole table,
/// and binds read-only sources. It holds:
///
/// * the host's system directories of `facts`, bound read-only, and `/proc` and `/sys`
///   (whole and visible, as the kernel requires before a user namespace mounts its own);
/// * an empty `/tmp`, where each container mounts its own root;
/// * a `/dev` template at [`STAGED_DEV`] with real device nodes (a user namespace may not
///   `mknod`), read-only, instead of six binds per container;
/// * the crate directory at [`STAGED_CRATE`], reached through `handle` (an `O_PATH` fd's
///   `/proc/self/fd/N`, opened before anything was mounted), so that no ancestor of the real
///   path (a `0700` home, `/root`) needs to be traversable by a container's unprivileged root;
/// * `hostname` and `hosts` for each of `hostnames` under [`STAGED_ETC`], read-only.
///
/// Containers then plan with [`RootfsConfig::staged`]. The applier must run with umask 0.
pub fn staging_plan(
    handle: Option<&Path>,
    hostnames: &[&str],
    facts: &HostFacts,
    binds: &[StagedSource],
    idmap: Option<&Path>,
) -> Vec<Step> {
    let at = |path: &str| under(SCRATCH, Path::new(path));
    let mut steps = vec![
        Step::MakePrivate { path: p("/") },
        Step::Mount {
            fstype: FsType::Tmpfs,
            target: p(SCRATCH),
            flags: MountFlags::NOSUID,
            data: "mode=0755".into(),
        },
    ];
    for (path, kind) in &facts.system {
        if *kind == EntryKind::Dir {
            steps.push(Step::Mkdir {
                path: under(SCRATCH, path),
                mode: 0o755,
            });
            steps.push(Step::Bind {
                src: path.clone(),
                dst: under(SCRATCH, path),
                recursive: true,
                readonly: true,
            });
        }
    }
    for fs in ["/proc", "/sys"] {
        steps.push(Step::Mkdir {
            path: at(fs),
            mode: 0o555,
        });
        steps.push(Step::Bind {
            src: p(fs),
            dst: at(fs),
            recursive: false,
            readonly: false,
        });
    }
    steps.push(Step::Mkdir {
        path: at("/tmp"),
        mode: 0o755,
    });
    let dev = at(STAGED_DEV);
    steps.push(Step::Mkdir {
        path: dev.clone(),
        mode: 0o755,
    });
    dev_nodes(&mut steps, &dev, DeviceMode::Mknod, &|path: &Path| {
        path.to_path_buf()
    });
    steps.push(Step::Mkdir {
        path: dev.join("pts"),
        mode: 0o755,
    });
    steps.push(Step::Mkdir {
        path: dev.join("shm"),
        mode: 0o1777,
    });
    steps.push(Step::Bind {
        src: dev.clone(),
        dst: dev,
        recursive: false,
        readonly: true,
    });
    steps.push(Step::Mkdir {
        path: at("/.staged"),
        mode: 0o755,
    });
    if let Some(handle) = handle {
        steps.push(Step::Mkdir {
            path: at(STAGED_CRATE),
            mode: 0o755,
        });
        steps.push(Step::Bind {
            src: handle.to_path_buf(),
            dst: at(STAGED_CRATE),
            recursive: true,
            readonly: true,
        });
    }
    // The tests' bind sources (path, is a directory, bound writable by some test), by index.
    if !binds.is_empty() {
        steps.push(Step::Mkdir {
            path: at("/.staged/binds"),
            mode: 0o755,
        });
    }
    for (i, source) in binds.iter().enumerate() {
        let dst = under(SCRATCH, &staged_bind(i));
        if source.is_dir {
            steps.push(Step::Mkdir {
                path: dst.clone(),
                mode: 0o755,
            });
        } else {
            steps.push(Step::CreateFile {
                path: dst.clone(),
                mode: 0o644,
            });
        }
        match (source.image, idmap) {
            // An image is only ever read (the overlay writes to its own layer): shown with the
            // container's ids, host root's files are the container root's to copy up.
            (true, Some(userns)) => steps.push(Step::BindIdmapped {
                src: source.path.clone(),
                dst,
                userns: userns.to_path_buf(),
            }),
            _ => steps.push(Step::Bind {
                src: source.path.clone(),
                dst,
                recursive: true,
                readonly: !source.writable,
            }),
        }
    }
    let etc = at(STAGED_ETC);
    steps.push(Step::Mkdir {
        path: etc.clone(),
        mode: 0o755,
    });
    for name in hostnames {
        let dir = etc.join(name);
        steps.push(Step::Mkdir {
            path: dir.clone(),
            mode: 0o755,
        });
        steps.push(Step::WriteFile {
            path: dir.join("hostname"),
            contents: format!("{name}\n").into_bytes(),
            mode: 0o644,
        });
        steps.push(Step::WriteFile {
            path: dir.join("hosts"),
            contents: etc_hosts(name).into_bytes(),
            mode: 0o644,
        });
    }
    steps.push(Step::Bind {
        src: etc.clone(),
        dst: etc,
        recursive: false,
        readonly: true,
    });
    // Enter it: pivot_root(".", ".") stacks the old root on the new one; detach it.
    steps.push(Step::Chdir { path: p(SCRATCH) });
    steps.push(Step::PivotRoot {
        new_root: p("."),
        put_old: p("."),
    });
    steps.push(Step::Detach { path: p(".") });
    steps.push(Step::Chdir { path: p("/") });
    steps
}

#[cfg(test)]
mod tests;
