//! Every key and standard attribute together compiles.

/// Doc comments survive.
#[tinyo::isolated(hostname = "db-1", timeout = "250ms", net = "none", env = "A=1", env = "B=2", memory = "512M", pids = 32, user = "nobody", bind = "src:/srv", bind = "/var:/v:rw", tmpfs = "/c", file = ("/f", "x", 0o600), workdir = "/srv", readonly_root = true)]
#[ignore = "slow"]
#[allow(clippy::unit_arg)]
fn everything() {}

#[tinyo::isolated(net = "host")]
#[should_panic(expected = "boom")]
fn panics() {
    panic!("boom");
}

#[should_panic]
#[tinyo::isolated(timeout = "2m")]
fn should_panic_first() {
    panic!("x");
}

#[tinyo::isolated(net = "loopback")]
fn returns_result() -> Result<(), std::io::Error> {
    Ok(())
}

tinyo::main!();
