//! A tinyo test binary whose tests pass and fail in every way the harness must report;
//! `tests/harness.rs` and `tests/host.rs` run it as a subprocess and check what it says.
//! Not part of the suite by itself.


use std::time::Duration;

use tinyo::isolated;
use tinyo_tests::guard;

#[isolated]
fn passes() {
    guard();
    println!("output of a passing test");
}

#[isolated]
fn panics() {
    guard();
    println!("printed before the panic");
    panic!("the expected panic message");
}

#[isolated]
fn aborts() {
    guard();
    std::process::abort();
}

#[isolated]
fn exits_zero_mid_body() {
    guard();
    std::process::exit(0);
}

#[isolated]
fn returns_err() -> Result<(), String> {
    guard();
    Err("a returned error".into())
}

#[isolated]
#[ignore = "not run unless asked"]
fn ignored_exits_zero() {
    guard();
    std::process::exit(0);
}

#[isolated(timeout = "1s")]
fn sleeps_forever() {
    guard();
    std::thread::sleep(Duration::from_secs(3600));
}

/// Leaves behind what a careless test would: a mount, a new hostname, a file in /tmp and a
/// daemon (a fork of this binary that outlives the body). None of it may reach the host.
#[isolated(hostname = "messy")]
fn leaves_a_mess() {
    guard();
    nix::unistd::sethostname("renamed-by-a-test").unwrap();
    std::fs::create_dir_all("/tmp/mnt").unwrap();
    nix::mount::mount(Some("tinyo-fixture-mess"), "/tmp/mnt", Some("tmpfs"), nix::mount::MsFlags::empty(), None::<&str>).unwrap();
    std::fs::write("/tmp/tinyo-fixture-mess", b"x").unwrap();
    // SAFETY: the body is single-threaded here; the child only sleeps.
    #[allow(unsafe_code)]
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => loop {
            std::thread::sleep(Duration::from_secs(60));
        },
        nix::unistd::ForkResult::Parent { .. } => {}
    }
}

tinyo::main!();
