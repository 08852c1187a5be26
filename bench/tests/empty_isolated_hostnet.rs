//! Empty isolated tests sharing the host's network (no network namespace to create).
include!("generated.rs");
tests!([#[tinyo::isolated(net = "host")]]);
tinyo::main!();
