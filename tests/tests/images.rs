//! `rootfs = "dir"`: a directory image as the root, copy-on-write. Needs tinyo to run as
//! root here, because the fixture image belongs to root (rootless, an image must belong to
//! the user running the tests: its files are then the container root's).

use std::path::Path;

use tinyo::isolated;
use tinyo_tests::guard;

#[isolated(rootfs = "fixtures/image")]
fn an_image_is_the_root_and_copy_on_write() {
    guard();
    assert_eq!(
        std::fs::read_to_string("/etc/os-release").unwrap(),
        "NAME=\"tinyo fixture image\"\n"
    );
    assert_eq!(std::fs::read_to_string("/etc/hostname").unwrap(), "tinyo\n");
    assert!(
        !Path::new("/usr").exists(),
        "the host's /usr is not in an image root"
    );
    assert_eq!(
        std::fs::read_to_string("/data/file.txt").unwrap(),
        "original\n"
    );
    std::fs::write("/data/file.txt", b"changed\n").unwrap();
    std::fs::write("/new-at-the-root", b"x").unwrap();
    assert_eq!(
        std::fs::read_to_string("/data/file.txt").unwrap(),
        "changed\n"
    );
}

tinyo::main!();
