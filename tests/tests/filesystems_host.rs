//! Filesystem keys seen from outside: a `:rw` bind writes through to the host, and a bind
//! whose source is missing fails its test with the path and the fix.

use std::process::Command;

const FIXTURE: &str = env!("CARGO_BIN_EXE_tinyo-fixture-fs");

#[test]
fn a_rw_bind_writes_through_and_a_missing_source_is_named() {
    let dir = std::path::Path::new("/tmp/tinyo-rw-bind");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir(dir).unwrap();
    // The container's root is an unprivileged host user: let it write here.
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let out = Command::new(FIXTURE).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
    let written = std::fs::read_to_string(dir.join("written-inside"));
    std::fs::remove_dir_all(dir).unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(written.unwrap(), "from the container", "{text}");
    assert_eq!(out.status.code(), Some(101), "{text}");
    assert!(text.contains("1 passed; 1 failed"), "{text}");
    assert!(text.contains("bind = \"does/not/exist:/srv\": the source `"), "{text}");
    assert!(text.contains("/tests/does/not/exist` does not exist; create it or fix the path"), "{text}");
}
