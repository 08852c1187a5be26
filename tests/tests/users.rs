//! `user = …`: the body runs as another user of the container. Needs tinyo to run as root
//! (rootless, only the container's root is mapped; tests/harness.rs checks that message).

use tinyo::isolated;
use tinyo_tests::guard;

#[isolated(user = "nobody")]
fn user_by_name() {
    guard();
    assert_eq!(nix::unistd::geteuid().as_raw(), 65534);
    assert_eq!(nix::unistd::getegid().as_raw(), 65534);
    let err = std::fs::write("/owned-by-root", b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(nix::libc::EACCES), "{err}");
    std::fs::write("/tmp/anyone-may", b"x").unwrap();
}

#[isolated(user = 1000)]
fn user_by_id() {
    guard();
    assert_eq!(
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw()
        ),
        (1000, 1000)
    );
}

tinyo::main!();
