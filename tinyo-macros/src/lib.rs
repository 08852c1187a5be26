//! The `#[isolated]` attribute of [tinyo](https://docs.rs/tinyo): run a test in its own
//! throw-away Linux container.
//!
//! Use it through the `tinyo` crate, which re-exports it:
//!
//! ```text
//! #[tinyo::isolated(hostname = "db-1", timeout = "2s", net = "loopback")]
//! fn hostname_is_private() {
//!     assert_eq!(std::fs::read_to_string("/etc/hostname").unwrap(), "db-1\n");
//! }
//! tinyo::main!();
//! ```
//!
//! Parsing ([`parse`]) and rendering ([`render`]) are plain modules with their own tests;
//! every error is collected and reported with its span, and on error the original function
//! is emitted unchanged next to the `compile_error!`s so the rest of the crate still checks.

use proc_macro::TokenStream;

mod parse;
mod render;

/// Run this test in fresh PID, mount, UTS, IPC and network namespaces, on a temporary root
/// filesystem. Keys: `hostname = "name"`, `timeout = "250ms" | "5s" | "2m"`,
/// `net = "loopback" | "none" | "host"`.
#[proc_macro_attribute]
pub fn isolated(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item2: proc_macro2::TokenStream = item.clone().into();
    match parse::parse(attr.into(), item2.clone()) {
        Ok(test) => render::render(&test).into(),
        Err(errors) => render::errors(item2, &errors).into(),
    }
}
