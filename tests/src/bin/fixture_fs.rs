//! Filesystem fixture tests checked from outside by `tests/filesystems_host.rs`: a
//! read-write bind whose writes must reach the host, a bind whose source is missing, an image
//! root written all over (the image must not change), and an image that is a file.

use tinyo::isolated;
use tinyo_tests::guard;

#[isolated(bind = "/tmp/tinyo-rw-bind:/out:rw")]
fn writes_through_a_rw_bind() {
    guard();
    std::fs::write("/out/written-inside", b"from the container").unwrap();
}

#[isolated(bind = "does/not/exist:/srv")]
fn binds_a_missing_source() {
    guard();
}

/// Writes all over an image root: none of it may reach the directory (checked from outside).
#[isolated(rootfs = "fixtures/image")]
fn writes_over_an_image() {
    guard();
    std::fs::write("/data/file.txt", b"overwritten").unwrap();
    std::fs::remove_file("/etc/os-release").unwrap();
    std::fs::write("/data/added", b"x").unwrap();
}

#[isolated(rootfs = "fixtures/data/hello.txt")]
fn an_image_that_is_a_file() {
    guard();
}

tinyo::main!();
