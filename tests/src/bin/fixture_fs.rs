//! Filesystem fixture tests checked from outside by `tests/filesystems_host.rs`: a
//! read-write bind whose writes must reach the host, and a bind whose source is missing.

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

tinyo::main!();
