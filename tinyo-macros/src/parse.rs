//! Attribute and item parsing, with every error collected.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, ItemFn, Lit, LitStr, Meta, MetaNameValue, Token};

/// The keys `#[isolated(...)]` accepts.
pub(crate) const KEYS: &str = "hostname, timeout, net";

/// How the container's network is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Net {
    Loopback,
    None,
    Host,
}

/// A parsed isolated test.
#[derive(Debug)]
pub(crate) struct Test {
    pub(crate) func: ItemFn,
    pub(crate) hostname: Option<String>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) net: Net,
    /// `Some(reason)` when `#[ignore]` or `#[ignore = "reason"]` was given.
    pub(crate) ignore: Option<Option<String>>,
}

pub(crate) fn parse(attr: TokenStream, item: TokenStream) -> Result<Test, Vec<syn::Error>> {
    let mut errors = Vec::new();
    let mut func: ItemFn = match syn::parse2(item) {
        Ok(f) => f,
        Err(e) => {
            errors.push(syn::Error::new(e.span(), "#[isolated] goes on a test function: `fn name() { … }`"));
            return Err(errors);
        }
    };
    let mut test = Test { func: func.clone(), hostname: None, timeout_ms: None, net: Net::Loopback, ignore: None };

    match Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(attr) {
        Err(e) => errors.push(syn::Error::new(e.span(), format!("expected `key = \"value\"` pairs; valid keys: {KEYS}"))),
        Ok(pairs) => {
            let mut seen: Vec<String> = Vec::new();
            for pair in pairs {
                let key = pair.path.get_ident().map(ToString::to_string).unwrap_or_default();
                if seen.contains(&key) {
                    errors.push(syn::Error::new(pair.path.span(), format!("`{key}` is given twice")));
                    continue;
                }
                seen.push(key.clone());
                let value = match string_value(&pair.value) {
                    Some(v) => v,
                    None if matches!(key.as_str(), "hostname" | "timeout" | "net") => {
                        errors.push(syn::Error::new(pair.value.span(), format!("`{key}` takes a string literal, e.g. {key} = \"{}\"", example(&key))));
                        continue;
                    }
                    None => LitStr::new("", pair.value.span()),
                };
                match key.as_str() {
                    "hostname" => match check_hostname(&value.value()) {
                        Ok(()) => test.hostname = Some(value.value()),
                        Err(why) => errors.push(syn::Error::new(value.span(), why)),
                    },
                    "timeout" => match parse_duration_ms(&value.value()) {
                        Ok(ms) => test.timeout_ms = Some(ms),
                        Err(why) => errors.push(syn::Error::new(value.span(), why)),
                    },
                    "net" => match value.value().as_str() {
                        "loopback" => test.net = Net::Loopback,
                        "none" => test.net = Net::None,
                        "host" => test.net = Net::Host,
                        other => errors.push(syn::Error::new(
                            value.span(),
                            format!("unknown net mode `{other}`; valid: \"loopback\" (default), \"none\", \"host\""),
                        )),
                    },
                    _ => errors.push(syn::Error::new(
                        pair.path.span(),
                        format!("unknown key `{}` in #[isolated]; valid keys: {KEYS}", path_text(&pair.path)),
                    )),
                }
            }
        }
    }

    let sig = &func.sig;
    if !sig.inputs.is_empty() {
        errors.push(syn::Error::new(sig.inputs.span(), "an isolated test takes no arguments"));
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new(sig.generics.span(), "an isolated test cannot be generic"));
    }
    if let Some(a) = sig.asyncness {
        errors.push(syn::Error::new(a.span(), "async isolated tests are not supported yet; call a runtime's block_on in the body"));
    }

    // `#[ignore]` keeps its meaning; it is taken off the function (it only applies to `#[test]`).
    let mut kept: Vec<Attribute> = Vec::new();
    for attr in std::mem::take(&mut func.attrs) {
        if attr.path().is_ident("ignore") {
            match &attr.meta {
                Meta::Path(_) => test.ignore = Some(None),
                Meta::NameValue(nv) => match string_value(&nv.value) {
                    Some(reason) => test.ignore = Some(Some(reason.value())),
                    None => errors.push(syn::Error::new(nv.value.span(), "expected #[ignore = \"reason\"]")),
                },
                Meta::List(l) => errors.push(syn::Error::new(l.span(), "expected #[ignore] or #[ignore = \"reason\"]")),
            }
        } else {
            kept.push(attr);
        }
    }
    func.attrs = kept;
    test.func = func;

    if errors.is_empty() {
        Ok(test)
    } else {
        Err(errors)
    }
}

fn example(key: &str) -> &'static str {
    match key {
        "hostname" => "db-1",
        "timeout" => "5s",
        _ => "loopback",
    }
}

fn path_text(path: &syn::Path) -> String {
    path.segments.iter().map(|s| s.ident.to_string()).collect::<Vec<_>>().join("::")
}

fn string_value(expr: &Expr) -> Option<LitStr> {
    match expr {
        Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => Some(s.clone()),
        _ => None,
    }
}

/// An RFC 1123 label: 1–63 of `[A-Za-z0-9-]`, not starting or ending with `-`.
pub(crate) fn check_hostname(name: &str) -> Result<(), String> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if name.is_empty() || name.len() > 63 || !ok_chars || name.starts_with('-') || name.ends_with('-') {
        return Err(format!(
            "invalid hostname `{name}`: use 1 to 63 letters, digits and inner hyphens (an RFC 1123 label), e.g. \"db-1\""
        ));
    }
    Ok(())
}

/// `"250ms"`, `"5s"`, `"2m"` → milliseconds; zero is refused.
pub(crate) fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let bad = || format!("invalid timeout `{text}`: use a whole number with a unit, e.g. \"250ms\", \"5s\", \"2m\"");
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = text.split_at(digits);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        _ => None,
    }
    .ok_or_else(bad)?;
    if ms == 0 {
        return Err(format!("invalid timeout `{text}`: it must be longer than zero"));
    }
    Ok(ms)
}


#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn errors(attr: TokenStream) -> Vec<String> {
        parse(attr, quote!(fn t() {})).err().unwrap_or_default().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn all_keys_parse() {
        let t = parse(quote!(hostname = "db-1", timeout = "2s", net = "none"), quote!(#[ignore = "slow"] #[doc = "x"] fn t() {})).unwrap();
        assert_eq!(t.hostname.as_deref(), Some("db-1"));
        assert_eq!(t.timeout_ms, Some(2000));
        assert_eq!(t.net, Net::None);
        assert_eq!(t.ignore, Some(Some("slow".into())));
        assert_eq!(t.func.attrs.len(), 1, "the doc comment stays, #[ignore] goes");
    }

    #[test]
    fn unknown_key_lists_the_valid_ones() {
        assert_eq!(errors(quote!(hostnme = "x")), vec!["unknown key `hostnme` in #[isolated]; valid keys: hostname, timeout, net"]);
    }

    #[test]
    fn every_error_is_collected() {
        let e = errors(quote!(hostname = "-bad", timeout = "5 s", net = "wifi", timeout = "1s"));
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[0].starts_with("invalid hostname `-bad`"));
        assert!(e[1].starts_with("invalid timeout `5 s`"));
        assert!(e[2].starts_with("unknown net mode `wifi`"));
        assert_eq!(e[3], "`timeout` is given twice");
    }

    #[test]
    fn values_must_be_strings() {
        assert_eq!(errors(quote!(timeout = 5)), vec!["`timeout` takes a string literal, e.g. timeout = \"5s\""]);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert!(parse_duration_ms("0s").is_err());
        assert!(parse_duration_ms("1h").is_err());
        assert!(parse_duration_ms("s").is_err());
    }

    #[test]
    fn hostnames() {
        assert!(check_hostname("a").is_ok());
        assert!(check_hostname(&"a".repeat(63)).is_ok());
        assert!(check_hostname(&"a".repeat(64)).is_err());
        assert!(check_hostname("a.b").is_err());
        assert!(check_hostname("").is_err());
    }

    #[test]
    fn signature_errors() {
        let e = parse(quote!(), quote!(async fn t<T>(x: u8) {})).unwrap_err();
        assert_eq!(e.len(), 3);
    }
}
