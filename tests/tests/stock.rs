//! `#[tinyo::isolated]` under the stock libtest harness (this target has no
//! `harness = false`): each test is re-run in its own process and isolated there.

use tinyo::isolated;
use tinyo_tests::guard;

#[isolated(hostname = "stock-1", env = "TINYO_E2E=stock")]
fn stock_tests_are_isolated_too() {
    guard();
    assert_eq!(nix::unistd::gethostname().unwrap(), "stock-1");
    assert_eq!(std::env::var("TINYO_E2E").as_deref(), Ok("stock"));
    assert!(
        std::env::var_os("TINYO_STOCK_RUN").is_none(),
        "the re-run marker leaked into the body"
    );
    nix::unistd::sethostname("changed").unwrap();
}

#[isolated]
#[should_panic(expected = "inside the container")]
fn stock_should_panic() {
    guard();
    panic!("a panic inside the container");
}

/// Runs alongside the other stock test: both bind the same port.
#[isolated]
fn stock_same_port() {
    guard();
    let _l = std::net::TcpListener::bind("127.0.0.1:8080").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
}

#[isolated]
fn stock_same_port_again() {
    guard();
    let _l = std::net::TcpListener::bind("127.0.0.1:8080").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
}
