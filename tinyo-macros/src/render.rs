//! Code generation. Generated code names only `::tinyo::__private::…`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::parse::{Net, Test};

pub(crate) fn render(test: &Test) -> TokenStream {
    let func = &test.func;
    let name = &func.sig.ident;
    let record = format_ident!("__TINYO_TEST_{}", name.to_string().to_uppercase());
    let hostname = match &test.hostname {
        Some(h) => quote!(::core::option::Option::Some(#h)),
        None => quote!(::core::option::Option::None),
    };
    let timeout_ms = match test.timeout_ms {
        Some(ms) => quote!(::core::option::Option::Some(#ms)),
        None => quote!(::core::option::Option::None),
    };
    let net = match test.net {
        Net::Loopback => quote!(::tinyo::__private::NetMode::Loopback),
        Net::None => quote!(::tinyo::__private::NetMode::None),
        Net::Host => quote!(::tinyo::__private::NetMode::Host),
    };
    let ignored = test.ignore.is_some();
    let ignore_reason = match test.ignore.as_ref().and_then(Option::as_ref) {
        Some(r) => quote!(::core::option::Option::Some(#r)),
        None => quote!(::core::option::Option::None),
    };
    quote! {
        #func

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
            ignored: #ignored,
            ignore_reason: #ignore_reason,
            body: {
                fn __tinyo_body() -> ::core::result::Result<(), ::std::string::String> {
                    ::tinyo::__private::IntoTestResult::into_test_result(#name())
                }
                __tinyo_body
            },
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
    fn registers_a_record_and_keeps_the_fn() {
        let test = parse(quote!(hostname = "h", timeout = "1s"), quote!(#[ignore] fn my_test() { body(); })).unwrap();
        let out = render(&test).to_string();
        assert!(out.starts_with("fn my_test () { body () ; }"), "{out}");
        assert!(out.contains("static __TINYO_TEST_MY_TEST : :: tinyo :: __private :: TestRecord"), "{out}");
        assert!(out.contains("hostname : :: core :: option :: Option :: Some (\"h\")"), "{out}");
        assert!(out.contains("timeout_ms : :: core :: option :: Option :: Some (1000u64)"), "{out}");
        assert!(out.contains("ignored : true"), "{out}");
        assert!(!out.contains("# [ignore]"), "{out}");
    }

    #[test]
    fn errors_keep_the_item() {
        let e = vec![syn::Error::new(proc_macro2::Span::call_site(), "nope")];
        let out = errors(quote!(fn t() {}), &e).to_string();
        assert!(out.starts_with("fn t () { }"));
        assert!(out.contains("compile_error"));
    }
}
