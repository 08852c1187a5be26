//! Empty isolated tests (default network: a fresh network namespace with `lo` up).
include!("generated.rs");
tests!([#[tinyo::isolated]]);
tinyo::main!();
