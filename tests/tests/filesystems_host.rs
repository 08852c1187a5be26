//! Filesystem keys seen from outside: a `:rw` bind writes through to the host, an image root
//! is never written, and a missing bind source or an image that is not a directory fails its
//! test with the path and the fix.

use std::process::Command;

use tinyo_tests::output_text;

const FIXTURE: &str = env!("CARGO_BIN_EXE_tinyo-fixture-fs");

/// Every file under `dir` with its contents.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_rw_bind_writes_through_and_a_missing_source_is_named() {
    let dir = std::path::Path::new("/tmp/tinyo-rw-bind");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir(dir).unwrap();
    // The container's root is an unprivileged host user: let it write here.
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let image = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/image");
    let before = snapshot(&image);
    let out = Command::new(FIXTURE)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(snapshot(&image), before, "the image directory changed");
    let written = std::fs::read_to_string(dir.join("written-inside"));
    std::fs::remove_dir_all(dir).unwrap();
    let text = output_text(&out);
    assert_eq!(written.unwrap(), "from the container", "{text}");
    assert_eq!(out.status.code(), Some(101), "{text}");
    assert!(text.contains("2 passed; 2 failed"), "{text}");
    assert!(
        text.contains("rootfs = \"fixtures/data/hello.txt\": `"),
        "{text}"
    );
    assert!(
        text.contains("/fixtures/data/hello.txt` is not a directory; give a directory"),
        "{text}"
    );
    assert!(
        text.contains("bind = \"does/not/exist:/srv\": the source `"),
        "{text}"
    );
    assert!(
        text.contains("/tests/does/not/exist` does not exist; create it or fix the path"),
        "{text}"
    );
}
