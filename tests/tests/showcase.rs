//! The showcase: tests that would collide on one machine (the same port, different
//! hostnames, the same file) all pass at once, because each runs in its own container.

use std::net::TcpListener;
use std::time::Duration;

use tinyo::isolated;
use tinyo_tests::guard;

fn serve_on_8080_as(name: &str) {
    guard();
    nix::unistd::sethostname(name).unwrap();
    let listener = TcpListener::bind("127.0.0.1:8080").expect("127.0.0.1:8080 is taken");
    std::fs::write("/tmp/owner", name).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(nix::unistd::gethostname().unwrap(), name);
    assert_eq!(std::fs::read_to_string("/tmp/owner").unwrap(), name);
    drop(listener);
}

#[isolated]
fn web_1_owns_port_8080() {
    serve_on_8080_as("web-1");
}

#[isolated]
fn web_2_owns_port_8080() {
    serve_on_8080_as("web-2");
}

#[isolated]
fn web_3_owns_port_8080() {
    serve_on_8080_as("web-3");
}

#[isolated(hostname = "db-1")]
fn db_sees_its_own_hostname() {
    guard();
    assert_eq!(nix::unistd::gethostname().unwrap(), "db-1");
    assert_eq!(
        tinyo_tests::visible_pids().len(),
        2,
        "init and this test, nothing else"
    );
}

tinyo::main!();
