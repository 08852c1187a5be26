//! Code generation. Generated code names only `::tinyo::__private::…`.
//!
//! For `#[isolated] fn name() { … }` it emits:
//! * the body as a private fn `__tinyo_isolated_name`, with the user's other attributes;
//! * a static `TestRecord` in tinyo's distributed slice, which `tinyo::main!()` runs;
//! * for the stock libtest harness (`#[cfg(test)]`, so absent under `harness = false`), a
//!   `#[test] fn name` that re-runs the test binary for this one test, isolated there;
//! * an `.init_array` hook that, in that re-run process, sets up the container before
//!   `main` (and so before any thread) and never returns to libtest.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Attribute, Visibility};

use crate::parse::{Net, ShouldPanic, Test};

fn option<T: quote::ToTokens>(value: Option<T>) -> TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

pub(crate) fn render(test: &Test) -> TokenStream {
    let func = &test.func;
    let name = &func.sig.ident;
    let vis = &func.vis;
    let upper = name.to_string().to_uppercase();
    let record = format_ident!("__TINYO_TEST_{}", upper);
    let init = format_ident!("__TINYO_INIT_{}", upper);
    let body_ident = format_ident!("__tinyo_isolated_{}", name);

    // `#[cfg(...)]` applies to everything generated; docs also go on the #[test] wrapper.
    let cfgs: Vec<&Attribute> = func
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .collect();
    let docs: Vec<&Attribute> = func
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .collect();

    let mut body_fn = func.clone();
    body_fn.sig.ident = body_ident.clone();
    body_fn.vis = Visibility::Inherited;

    let call = if func.sig.asyncness.is_some() {
        quote!(::tinyo::__private::block_on(#body_ident()))
    } else {
        quote!(#body_ident())
    };
    let hostname = option(test.hostname.as_ref());
    let timeout_ms = option(test.timeout_ms);
    let net = match test.net {
        Net::Loopback => quote!(::tinyo::__private::NetMode::Loopback),
        Net::None => quote!(::tinyo::__private::NetMode::None),
        Net::Host => quote!(::tinyo::__private::NetMode::Host),
    };
    let env = test.env.iter().map(|(k, v)| quote!((#k, #v)));
    let memory = option(test.memory);
    let pids = option(test.pids);
    let user = match &test.user {
        None => quote!(::core::option::Option::None),
        Some(crate::parse::User::Name(n)) => {
            quote!(::core::option::Option::Some(::tinyo::__private::User::Name(#n)))
        }
        Some(crate::parse::User::Id(id)) => {
            quote!(::core::option::Option::Some(::tinyo::__private::User::Id(#id)))
        }
    };
    let binds = test.binds.iter().map(|(s, d, w)| quote!((#s, #d, #w)));
    let tmpfs = &test.tmpfs;
    let files = test.files.iter().map(|(p, c, m)| quote!((#p, #c, #m)));
    let workdir = option(test.workdir.as_ref());
    let readonly_root = test.readonly_root;
    let rootfs = option(test.rootfs.as_ref());
    let ignored = test.ignore.is_some();
    let ignore_reason = option(test.ignore.as_ref().and_then(Option::as_ref));
    let ignore_attr = match &test.ignore {
        None => quote!(),
        Some(None) => quote!(#[ignore]),
        Some(Some(reason)) => quote!(#[ignore = #reason]),
    };
    let should_panic = match &test.should_panic {
        ShouldPanic::No => quote!(::tinyo::__private::ShouldPanic::No),
        ShouldPanic::Yes => quote!(::tinyo::__private::ShouldPanic::Yes),
        ShouldPanic::Expected(e) => quote!(::tinyo::__private::ShouldPanic::Expected(#e)),
    };

    quote! {
        #[allow(dead_code)]
        #body_fn

        #(#cfgs)*
        #(#docs)*
        #[cfg(test)]
        #[test]
        #ignore_attr
        #vis fn #name() {
            ::tinyo::__private::run_stock(&#record)
        }

        #(#cfgs)*
        #[::tinyo::__private::linkme::distributed_slice(::tinyo::__private::TESTS)]
        #[linkme(crate = ::tinyo::__private::linkme)]
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        static #record: ::tinyo::__private::TestRecord = ::tinyo::__private::TestRecord {
            name: ::core::stringify!(#name),
            module_path: ::core::module_path!(),
            file: ::core::file!(),
            line: ::core::line!(),
            hostname: #hostname,
            timeout_ms: #timeout_ms,
            net: #net,
            env: &[#(#env),*],
            memory: #memory,
            pids: #pids,
            user: #user,
            binds: &[#(#binds),*],
            tmpfs: &[#(#tmpfs),*],
            files: &[#(#files),*],
            workdir: #workdir,
            readonly_root: #readonly_root,
            rootfs: #rootfs,
            ignored: #ignored,
            ignore_reason: #ignore_reason,
            should_panic: #should_panic,
            manifest_dir: ::core::env!("CARGO_MANIFEST_DIR"),
            body: {
                fn __tinyo_body() -> ::core::result::Result<(), ::std::string::String> {
                    ::tinyo::__private::IntoTestResult::into_test_result(#call)
                }
                __tinyo_body
            },
        };

        #(#cfgs)*
        #[used]
        #[doc(hidden)]
        #[allow(unsafe_code, non_upper_case_globals)]
        #[unsafe(link_section = ".init_array")]
        static #init: extern "C" fn() = {
            extern "C" fn __tinyo_init() {
                ::tinyo::__private::stock_init()
            }
            __tinyo_init
        };
    }
}

pub(crate) fn errors(item: TokenStream, errors: &[syn::Error]) -> TokenStream {
    let errors = errors.iter().map(syn::Error::to_compile_error);
    quote! {
        #item
        #(#errors)*
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;
    use crate::parse::parse;

    #[test]
    fn registers_a_record_and_keeps_the_body() {
        let test = parse(
            quote!(hostname = "h", timeout = "1s", env = "A=b"),
            quote!(
                #[ignore]
                #[should_panic]
                fn my_test() {
                    body();
                }
            ),
        )
        .unwrap();
        let out = render(&test).to_string();
        assert!(
            out.contains("fn __tinyo_isolated_my_test () { body () ; }"),
            "{out}"
        );
        assert!(
            out.contains("# [cfg (test)] # [test] # [ignore] fn my_test ()"),
            "{out}"
        );
        assert!(
            out.contains("static __TINYO_TEST_MY_TEST : :: tinyo :: __private :: TestRecord"),
            "{out}"
        );
        assert!(
            out.contains("hostname : :: core :: option :: Option :: Some (\"h\")"),
            "{out}"
        );
        assert!(
            out.contains("timeout_ms : :: core :: option :: Option :: Some (1000u64)"),
            "{out}"
        );
        assert!(out.contains("env : & [(\"A\" , \"b\")]"), "{out}");
        assert!(out.contains("ignored : true"), "{out}");
        assert!(
            out.contains("should_panic : :: tinyo :: __private :: ShouldPanic :: Yes"),
            "{out}"
        );
        assert!(out.contains("link_section = \".init_array\""), "{out}");
    }

    #[test]
    fn async_bodies_go_through_block_on() {
        let test = parse(
            quote!(),
            quote!(
                async fn t() {}
            ),
        )
        .unwrap();
        let out = render(&test).to_string();
        assert!(
            out.contains(":: tinyo :: __private :: block_on (__tinyo_isolated_t ())"),
            "{out}"
        );
    }

    #[test]
    fn cfg_applies_to_everything() {
        let test = parse(
            quote!(),
            quote!(
                #[cfg(unix)]
                fn t() {}
            ),
        )
        .unwrap();
        assert_eq!(
            render(&test).to_string().matches("# [cfg (unix)]").count(),
            4
        );
    }

    #[test]
    fn errors_keep_the_item() {
        let e = vec![syn::Error::new(proc_macro2::Span::call_site(), "nope")];
        let out = errors(
            quote!(
                fn t() {}
            ),
            &e,
        )
        .to_string();
        assert!(out.starts_with("fn t () { }"));
        assert!(out.contains("compile_error"));
    }
}
