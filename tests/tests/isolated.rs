//! End-to-end tests of the container a test gets, asserted from inside it. Run by tinyo.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::time::Duration;

use tinyo::isolated;
use tinyo_tests::{exists, guard, open_fds, visible_pids};

#[isolated]
fn default_hostname_is_tinyo() {
    guard();
    assert_eq!(nix::unistd::gethostname().unwrap(), "tinyo");
    assert_eq!(std::fs::read_to_string("/etc/hostname").unwrap(), "tinyo\n");
}

#[isolated(hostname = "db-1")]
fn configured_hostname_and_sethostname_stay_inside() {
    guard();
    assert_eq!(nix::unistd::gethostname().unwrap(), "db-1");
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    assert!(hosts.lines().any(|l| l == "127.0.1.1\tdb-1"), "{hosts}");
    nix::unistd::sethostname("elsewhere").unwrap();
    assert_eq!(nix::unistd::gethostname().unwrap(), "elsewhere");
    // The host's hostname is compared before and after the suite by tests/host.rs.
}

#[isolated]
fn mounts_stay_inside() {
    guard();
    std::fs::create_dir("/tmp/mnt").unwrap();
    nix::mount::mount(
        Some("tinyo-e2e-probe"),
        "/tmp/mnt",
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(info.contains("tinyo-e2e-probe"));
    // The host's mount table is compared before and after by tests/host.rs.
}

#[isolated]
fn proc_shows_only_the_container() {
    guard();
    let pids = visible_pids();
    assert!(pids.contains(&1) && pids.contains(&2), "{pids:?}");
    assert!(
        pids.len() <= 3,
        "more than init, the body and one helper: {pids:?}"
    );
    let child = std::process::Command::new("/bin/sleep")
        .arg("5")
        .spawn()
        .unwrap();
    let pids = visible_pids();
    assert!(pids.contains(&child.id()) && child.id() > 2, "{pids:?}");
    drop(child);
}

#[isolated]
fn only_loopback_and_it_is_up() {
    guard();
    let ifaces: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(ifaces, vec!["lo".to_owned()]);
    let flags = std::fs::read_to_string("/sys/class/net/lo/flags").unwrap();
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is not IFF_UP");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"ping").unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let mut buf = [0; 4];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
}

#[isolated(net = "none")]
fn net_none_leaves_lo_down() {
    guard();
    let flags = std::fs::read_to_string("/sys/class/net/lo/flags").unwrap();
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 0, "lo is up");
    assert!(TcpListener::bind("127.0.0.1:0")
        .and_then(|l| TcpStream::connect(l.local_addr()?))
        .is_err());
}

fn hold_port_8080() {
    guard();
    // Every test binding the same port at the same moment: each has its own network stack.
    let listener = TcpListener::bind("127.0.0.1:8080")
        .expect("port 8080 is taken: the network is not private");
    std::thread::sleep(Duration::from_millis(300));
    drop(listener);
}

#[isolated]
fn same_port_a() {
    hold_port_8080();
}

#[isolated]
fn same_port_b() {
    hold_port_8080();
}

#[isolated]
fn host_private_dirs_are_invisible() {
    guard();
    for dir in ["/home", "/root", "/var", "/opt", "/srv", "/mnt"] {
        assert!(!exists(dir), "{dir} is visible");
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = manifest.parent().unwrap().join("target");
    assert!(
        !exists(&target),
        "the target directory {target:?} is visible"
    );
    assert!(
        !exists(std::env::current_exe().unwrap()),
        "the test binary is visible"
    );
}

/// Each of these two runs in its own container: whichever runs second must not see the
/// first's files.
fn files_vanish() {
    guard();
    for path in ["/tmp/tinyo-e2e-marker", "/tinyo-e2e-marker"] {
        assert!(!exists(path), "{path} survived from another test");
        std::fs::write(path, b"x").unwrap();
        assert!(exists(path));
    }
}

#[isolated]
fn files_vanish_a() {
    files_vanish();
}

#[isolated]
fn files_vanish_b() {
    files_vanish();
}

#[isolated]
fn dev_null_is_the_real_device() {
    guard();
    let meta = std::fs::metadata("/dev/null").unwrap();
    assert!(meta.file_type().is_char_device());
    assert_eq!(
        (
            nix::sys::stat::major(meta.rdev()),
            nix::sys::stat::minor(meta.rdev())
        ),
        (1, 3)
    );
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap()
        .write_all(b"gone")
        .unwrap();
    for node in ["zero", "full", "random", "urandom", "tty"] {
        assert!(
            std::fs::metadata(format!("/dev/{node}"))
                .unwrap()
                .file_type()
                .is_char_device(),
            "{node}"
        );
    }
    for link in ["fd", "stdin", "stdout", "stderr", "ptmx"] {
        assert!(
            std::fs::symlink_metadata(format!("/dev/{link}"))
                .unwrap()
                .file_type()
                .is_symlink(),
            "{link}"
        );
    }
    let mut zero = [1u8; 8];
    std::fs::File::open("/dev/zero")
        .unwrap()
        .read_exact(&mut zero)
        .unwrap();
    assert_eq!(zero, [0; 8]);
}

#[isolated]
fn crate_dir_is_readable_not_writable_and_the_cwd() {
    guard();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(std::env::current_dir().unwrap(), manifest);
    assert!(std::fs::read_to_string(manifest.join("Cargo.toml"))
        .unwrap()
        .contains("tinyo-tests"));
    let err = std::fs::write(manifest.join("written-from-a-container"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(nix::libc::EROFS), "{err}");
}

#[isolated]
fn system_dirs_are_read_only() {
    guard();
    for dir in ["/usr", "/etc"] {
        let err = std::fs::write(Path::new(dir).join("tinyo-probe"), b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::EROFS), "{dir}: {err}");
    }
    assert!(
        std::process::Command::new("/bin/true")
            .status()
            .unwrap()
            .success(),
        "binaries of the host run"
    );
}

#[isolated]
fn only_stdio_is_open() {
    guard();
    assert_eq!(open_fds().into_iter().collect::<Vec<_>>(), vec![0, 1, 2]);
}

#[isolated]
fn sysfs_is_read_only_and_proc_is_fresh() {
    guard();
    assert!(std::fs::write("/sys/kernel/tinyo-probe", b"x").is_err());
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("NSpid:") && l.trim_end().ends_with("\t2")),
        "{status}"
    );
}

#[isolated]
fn returns_ok() -> Result<(), std::io::Error> {
    guard();
    std::fs::write("/tmp/ok", b"fine")?;
    Ok(())
}

#[isolated]
fn root_inside_by_default() {
    guard();
    assert_eq!(nix::unistd::geteuid().as_raw(), 0);
}

tinyo::main!();
