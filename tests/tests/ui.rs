//! Compile-time errors of `#[isolated]`, checked against committed `.stderr` files
//! (regenerate with `TRYBUILD=overwrite cargo test -p tinyo-tests --test ui`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
