use tinyo::isolated;

#[isolated]
fn smoke() {
    println!("hello from {:?}", std::env::current_dir());
    assert_eq!(std::process::id(), 2);
}

#[isolated(hostname = "db-1")]
fn hostname() {
    assert_eq!(nix::unistd::gethostname().unwrap(), "db-1");
}

#[isolated]
fn fails() {
    panic!("boom");
}

tinyo::main!();
