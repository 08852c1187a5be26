//! # tinyo: every Rust test in its own throw-away Linux container
//!
//! `#[tinyo::isolated]` runs a test in fresh PID, mount, UTS, IPC and network namespaces, on
//! a temporary root filesystem (the host's system directories read-only, a private `/tmp`,
//! `/dev`, `/proc` and `/sys`), after `pivot_root`. The test may change the hostname, mount
//! things, bind any port and write anywhere: the host and the other tests see none of it.
//!
//! ```toml
//! [dev-dependencies]
//! tinyo = "0.1"
//!
//! [[test]]
//! name = "isolated"
//! harness = false
//! ```
//!
//! ```text
//! // tests/isolated.rs
//! #[tinyo::isolated(hostname = "db-1", timeout = "5s")]
//! fn hostname_is_private() {
//!     nix::unistd::sethostname("elsewhere").unwrap(); // the host keeps its own
//! }
//!
//! tinyo::main!();
//! ```
//!
//! Results come back as ordinary libtest results: a panic fails with its message and
//! location, a signal names the signal, an exit before the body returned is a failure, a
//! timeout says so, and a container that could not be set up says which step, syscall,
//! path and errno failed, and how to fix it.

pub use tinyo_core::container::Container;
pub use tinyo_core::network::{Host, Network};
pub use tinyo_core::{FailureReason, Namespaces, NetMode, Outcome, SetupError, Termination};
pub use tinyo_macros::isolated;

/// The test binary's `main`: collects every `#[isolated]` test and runs it in its container.
/// Put `tinyo::main!();` at the end of a test target that has `harness = false`.
#[macro_export]
macro_rules! main {
    () => {
        fn main() {
            $crate::__private::run_main(::core::env!("CARGO_MANIFEST_DIR"))
        }
    };
}

#[doc(hidden)]
pub mod __private {
    pub use tinyo_core::NetMode;
    pub use tinyo_harness::{
        linkme, run_main, run_stock, stock_init, IntoTestResult, ShouldPanic, TestRecord, User,
        TESTS,
    };

    /// Run an `async fn` test body on a current-thread tokio runtime, inside the container.
    #[cfg(feature = "tokio")]
    pub fn block_on<F: std::future::Future>(body: F) -> F::Output {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(body),
            Err(e) => panic!("tinyo: could not build the tokio runtime for this async test: {e}"),
        }
    }

    /// Without the `tokio` feature an `async fn` test cannot run; this bound says so.
    #[cfg(not(feature = "tokio"))]
    #[diagnostic::on_unimplemented(
        message = "async isolated tests need tinyo's `tokio` feature",
        label = "this async test body",
        note = "enable it: tinyo = {{ version = \"0.1\", features = [\"tokio\"] }}"
    )]
    pub trait AsyncNeedsTokioFeature {}

    /// Without the `tokio` feature: never callable (its bound is never met).
    #[cfg(not(feature = "tokio"))]
    pub fn block_on<F: std::future::Future + AsyncNeedsTokioFeature>(_body: F) -> F::Output {
        unreachable!("AsyncNeedsTokioFeature has no implementations")
    }
}
