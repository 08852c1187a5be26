//! Escapes tried from inside a container, each of which must fail. Run by tinyo.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use tinyo::isolated;
use tinyo_tests::{exists, guard, root_fstype};

/// Still in the container: tinyo's tmpfs root, nothing of the host's private paths.
fn still_inside() {
    assert_eq!(root_fstype().as_deref(), Some("tmpfs"));
    for path in ["/home", "/root", "/var", "/.oldroot"] {
        assert!(!exists(path), "{path} is reachable");
    }
}

#[isolated]
fn chroot_dot_dot_escape_stays_in_the_container() {
    guard();
    std::fs::create_dir("/tmp/jail").unwrap();
    // The classic escape: chroot into a subdirectory while the cwd stays outside it, walk
    // up, chroot there. Above the container's root there is nothing to walk to.
    nix::unistd::chroot("/tmp/jail").unwrap();
    for _ in 0..64 {
        nix::unistd::chdir("..").unwrap();
    }
    nix::unistd::chroot(".").unwrap();
    nix::unistd::chdir("/").unwrap();
    assert!(exists("/tmp/jail"), "back at the container's own root");
    still_inside();
}

#[isolated]
fn proc_1_root_leads_nowhere_else() {
    guard();
    // tinyo's init is out of the body's reach (non-dumpable): its root cannot even be read;
    // where it can, it is the container's root.
    match std::fs::read_link("/proc/1/root") {
        Err(e) => assert_eq!(e.raw_os_error(), Some(nix::libc::EACCES), "{e}"),
        Ok(root) => assert_eq!(root, Path::new("/")),
    }
    assert!(std::fs::read_dir("/proc/1/root/home").is_err());
    // The body's own /proc/self/root is the container root.
    assert_eq!(
        std::fs::read_link("/proc/self/root").unwrap(),
        Path::new("/")
    );
    still_inside();
}

/// PID 1, tinyo's init, holds the test's result: the test can neither read nor write its
/// memory (it is non-dumpable), so it cannot forge its own report. Whether the container
/// shares the fork server's user namespace (the default) or has one of its own (`pids`).
fn pid_1_is_out_of_reach() {
    for file in ["/proc/1/mem", "/proc/1/environ"] {
        let err = std::fs::File::open(file).map(|_| ()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::EACCES), "{file}: {err}");
    }
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/1/mem")
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(nix::libc::EACCES), "{err}");
}

#[isolated]
fn pid_1_memory_is_out_of_reach() {
    guard();
    pid_1_is_out_of_reach();
    still_inside();
}

#[isolated(pids = 64)]
fn pid_1_memory_is_out_of_reach_with_a_user_namespace_of_its_own() {
    guard();
    pid_1_is_out_of_reach();
    still_inside();
}

/// What a user namespace holds (its `/proc/sys/user` limits here; also its `binfmt_misc`
/// handlers, its keyrings) does not carry over from one test to the next: each container has
/// a user namespace of its own. Three tests each find the limit untouched and then set it to
/// 0: were a user namespace shared by the containers of one fork server (there are at most
/// as many as test threads), two of them would share one and the later would fail.
fn user_namespace_limits_are_the_tests_own() {
    let path = "/proc/sys/user/max_pid_namespaces";
    let before = std::fs::read_to_string(path).unwrap();
    assert_ne!(before.trim(), "0", "a limit set by another test");
    std::fs::write(path, "0").unwrap();
    assert_eq!(std::fs::read_to_string(path).unwrap().trim(), "0");
}

#[isolated]
fn user_namespace_limits_are_the_tests_own_1() {
    guard();
    user_namespace_limits_are_the_tests_own();
}

#[isolated]
fn user_namespace_limits_are_the_tests_own_2() {
    guard();
    user_namespace_limits_are_the_tests_own();
}

#[isolated]
fn user_namespace_limits_are_the_tests_own_3() {
    guard();
    user_namespace_limits_are_the_tests_own();
}

#[isolated]
fn no_old_root_is_left_mounted() {
    guard();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for line in info.lines() {
        let mount_point = line.split(' ').nth(4).unwrap();
        assert!(
            !mount_point.starts_with("/.oldroot") && !mount_point.starts_with("/.tinyo"),
            "{line}"
        );
    }
    still_inside();
}

#[isolated]
fn kill_minus_one_kills_only_the_container() {
    guard();
    let mut child = std::process::Command::new("/bin/sleep")
        .arg("60")
        .spawn()
        .unwrap();
    // Every process this one may signal, except init and itself: only the container's.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(-1),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    // And the harness is alive to receive this test's result.
}

#[isolated]
fn global_sysctls_sysrq_and_sys_are_not_writable() {
    guard();
    for path in [
        "/proc/sys/vm/drop_caches",
        "/proc/sys/kernel/panic",
        "/proc/sysrq-trigger",
        "/sys/kernel/uevent_helper",
    ] {
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map(drop)
            .expect_err(path);
        assert!(
            matches!(
                err.raw_os_error(),
                Some(nix::libc::EACCES | nix::libc::EPERM | nix::libc::EROFS | nix::libc::ENOENT)
            ),
            "{path}: {err}"
        );
    }
    // The namespaced ones are the container's own, through their syscalls.
    nix::unistd::sethostname("mine").unwrap();
    assert_eq!(nix::unistd::gethostname().unwrap(), "mine");
}

#[isolated]
fn the_test_binary_cannot_be_overwritten() {
    guard();
    // CVE-2019-5736 class: /proc/self/exe is the host's test binary.
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/exe")
        .map(drop)
        .expect_err("opened the test binary for writing");
    assert!(
        matches!(
            err.raw_os_error(),
            Some(nix::libc::EACCES | nix::libc::ETXTBSY | nix::libc::EPERM)
        ),
        "{err}"
    );
    let err = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_TRUNC)
        .open("/proc/1/exe")
        .map(drop)
        .expect_err("opened init's binary");
    assert!(
        matches!(
            err.raw_os_error(),
            Some(nix::libc::EACCES | nix::libc::ETXTBSY | nix::libc::EPERM)
        ),
        "{err}"
    );
}

#[isolated]
fn no_host_fd_crosses_into_the_container() {
    guard();
    // CVE-2024-21626 class: a leaked directory fd used as a cwd would reach the host.
    for fd in 3..4096 {
        let r = nix::fcntl::fcntl(unsafe_free_fd(fd), nix::fcntl::FcntlArg::F_GETFD);
        assert_eq!(r, Err(Errno::EBADF), "fd {fd} is open");
    }
    assert_eq!(
        std::fs::read_link("/proc/self/cwd").unwrap(),
        Path::new(env!("CARGO_MANIFEST_DIR"))
    );
}

/// `fcntl` takes a borrowed fd; these numbers are (expected to be) closed, and F_GETFD
/// on a closed number only answers EBADF.
fn unsafe_free_fd(fd: i32) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: the fd is only passed to F_GETFD, which reads nothing through it.
    #[allow(unsafe_code)]
    unsafe {
        std::os::fd::BorrowedFd::borrow_raw(fd)
    }
}

#[isolated]
fn host_files_outside_the_allowed_paths_are_unreachable() {
    guard();
    let exe = std::env::current_exe().unwrap_or_default();
    for path in [
        exe.as_path(),
        Path::new("/var/lib/dpkg/status"),
        Path::new("/root/.cargo"),
        Path::new("/etc/shadow-"),
    ] {
        if path.starts_with("/etc") {
            continue; // /etc is the host's, read-only, by design
        }
        assert!(
            std::fs::metadata(path).is_err(),
            "{} is reachable",
            path.display()
        );
    }
}

#[isolated]
fn devices_and_disks_cannot_be_made_or_mounted() {
    guard();
    let dev = nix::sys::stat::makedev(8, 0);
    let err = nix::sys::stat::mknod(
        "/tmp/sda",
        nix::sys::stat::SFlag::S_IFBLK,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        dev,
    )
    .unwrap_err();
    assert_eq!(err, Errno::EPERM);
    let err = nix::mount::mount(
        Some("/dev/null"),
        "/tmp",
        Some("ext4"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap_err();
    assert!(
        matches!(err, Errno::EPERM | Errno::ENOTBLK | Errno::EACCES),
        "{err}"
    );
}

#[isolated]
fn the_container_root_is_nobody_on_the_host() {
    guard();
    assert_eq!(nix::unistd::geteuid().as_raw(), 0, "root inside");
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap();
    let fields: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(fields[0], "0");
    let host_uid: u64 = fields[1].parse().unwrap();
    let host_is_root = std::fs::metadata("/proc/1/root").is_ok() && fields[2] != "1";
    if host_is_root {
        assert_ne!(host_uid, 0, "the container's root is the host's root");
    }
}

tinyo::main!();
