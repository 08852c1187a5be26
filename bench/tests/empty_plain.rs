//! The same empty tests as plain `#[test]`s: the baselines (in-process, and under nextest).
include!("generated.rs");
tests!([#[test]]);
