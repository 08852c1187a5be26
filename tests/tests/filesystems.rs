//! The test's own filesystem: binds, tmpfs mounts, inline files, a read-only root, a
//! working directory. Run by tinyo.

use std::path::Path;

use tinyo::isolated;
use tinyo_tests::guard;

fn errno_of(r: std::io::Result<()>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

#[isolated(bind = "fixtures/data:/srv/data")]
fn a_read_only_bind_from_the_crate() {
    guard();
    assert_eq!(
        std::fs::read_to_string("/srv/data/hello.txt").unwrap(),
        "hello from a fixture\n"
    );
    assert_eq!(
        errno_of(std::fs::write("/srv/data/hello.txt", b"changed")),
        Some(nix::libc::EROFS)
    );
    assert_eq!(
        errno_of(std::fs::write("/srv/data/new", b"x")),
        Some(nix::libc::EROFS)
    );
}

#[isolated(bind = "fixtures/data/hello.txt:/opt/app/greeting")]
fn a_file_bind() {
    guard();
    assert_eq!(
        std::fs::read_to_string("/opt/app/greeting").unwrap(),
        "hello from a fixture\n"
    );
}

#[isolated(tmpfs = "/var/cache", tmpfs = "/srv/scratch")]
fn tmpfs_mounts_are_writable_and_empty() {
    guard();
    for dir in ["/var/cache", "/srv/scratch"] {
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
        std::fs::write(Path::new(dir).join("f"), b"x").unwrap();
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        info.lines()
            .any(|l| l.split(' ').nth(4) == Some("/var/cache") && l.contains(" - tmpfs ")),
        "{info}"
    );
}

#[isolated(file = ("/opt/app/app.conf", "port = 8080\n", 0o600), file = ("/srv/motd", "hi"))]
fn inline_files_appear_with_their_modes() {
    guard();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::read_to_string("/opt/app/app.conf").unwrap(),
        "port = 8080\n"
    );
    assert_eq!(
        std::fs::metadata("/opt/app/app.conf")
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o600
    );
    assert_eq!(
        std::fs::metadata("/srv/motd").unwrap().permissions().mode() & 0o7777,
        0o644
    );
}

#[isolated(readonly_root = true, tmpfs = "/var/lib/state")]
fn a_read_only_root() {
    guard();
    assert_eq!(
        errno_of(std::fs::write("/written-at-the-root", b"x")),
        Some(nix::libc::EROFS)
    );
    assert_eq!(
        errno_of(std::fs::create_dir("/newdir")),
        Some(nix::libc::EROFS)
    );
    // Its own mounts stay writable.
    std::fs::write("/tmp/ok", b"x").unwrap();
    std::fs::write("/var/lib/state/ok", b"x").unwrap();
}

#[isolated(workdir = "/srv/data", bind = "fixtures/data:/srv/data")]
fn a_working_directory() {
    guard();
    assert_eq!(std::env::current_dir().unwrap(), Path::new("/srv/data"));
    assert!(Path::new("hello.txt").exists());
}

tinyo::main!();
