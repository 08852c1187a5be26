//! Attribute and item parsing, with every error collected.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, ItemFn, Lit, LitStr, Meta, MetaNameValue, Token};

/// The keys `#[isolated(...)]` accepts.
pub(crate) const KEYS: &str = "hostname, timeout, net, env, memory, pids, user, bind, tmpfs, file, workdir, readonly_root, rootfs";

/// How the container's network is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Net {
    Loopback,
    None,
    Host,
}

/// `user = …`, as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum User {
    Name(String),
    Id(u32),
}

/// `#[should_panic]`, as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ShouldPanic {
    No,
    Yes,
    Expected(String),
}

/// A parsed isolated test.
#[derive(Debug)]
pub(crate) struct Test {
    /// The function, without the attributes tinyo took over (`#[ignore]`, `#[should_panic]`).
    pub(crate) func: ItemFn,
    pub(crate) hostname: Option<String>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) net: Net,
    pub(crate) env: Vec<(String, String)>,
    /// `memory = "256M"`, in bytes.
    pub(crate) memory: Option<u64>,
    /// `pids = 64`.
    pub(crate) pids: Option<u64>,
    /// `user = "nobody"` or `user = 1000`.
    pub(crate) user: Option<User>,
    /// `bind = "src:dst[:rw]"`: (src, dst, writable).
    pub(crate) binds: Vec<(String, String, bool)>,
    /// `tmpfs = "/path"`.
    pub(crate) tmpfs: Vec<String>,
    /// `file = ("/path", "contents"[, mode])`.
    pub(crate) files: Vec<(String, String, u32)>,
    /// `workdir = "/path"`.
    pub(crate) workdir: Option<String>,
    /// `readonly_root = true`.
    pub(crate) readonly_root: bool,
    /// `rootfs = "dir"`.
    pub(crate) rootfs: Option<String>,
    /// `Some(reason)` when `#[ignore]` or `#[ignore = "reason"]` was given.
    pub(crate) ignore: Option<Option<String>>,
    pub(crate) should_panic: ShouldPanic,
}

fn err(span: proc_macro2::Span, msg: impl std::fmt::Display) -> syn::Error {
    syn::Error::new(span, msg)
}

pub(crate) fn parse(attr: TokenStream, item: TokenStream) -> Result<Test, Vec<syn::Error>> {
    let mut errors = Vec::new();
    let mut func: ItemFn = match syn::parse2(item) {
        Ok(f) => f,
        Err(e) => {
            errors.push(err(
                e.span(),
                "#[isolated] goes on a test function: `fn name() { … }`",
            ));
            return Err(errors);
        }
    };
    let mut test = Test {
        func: func.clone(),
        hostname: None,
        timeout_ms: None,
        net: Net::Loopback,
        env: Vec::new(),
        memory: None,
        pids: None,
        user: None,
        binds: Vec::new(),
        tmpfs: Vec::new(),
        files: Vec::new(),
        workdir: None,
        readonly_root: false,
        rootfs: None,
        ignore: None,
        should_panic: ShouldPanic::No,
    };

    match Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(attr) {
        Err(e) => errors.push(err(
            e.span(),
            format!("expected `key = \"value\"` pairs; valid keys: {KEYS}"),
        )),
        Ok(pairs) => {
            let mut seen: Vec<String> = Vec::new();
            for pair in pairs {
                let key = pair
                    .path
                    .get_ident()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let known = matches!(
                    key.as_str(),
                    "hostname"
                        | "timeout"
                        | "net"
                        | "env"
                        | "memory"
                        | "pids"
                        | "user"
                        | "bind"
                        | "tmpfs"
                        | "file"
                        | "workdir"
                        | "readonly_root"
                        | "rootfs"
                );
                if !known {
                    errors.push(err(
                        pair.path.span(),
                        format!(
                            "unknown key `{}` in #[isolated]; valid keys: {KEYS}",
                            path_text(&pair.path)
                        ),
                    ));
                    continue;
                }
                if !matches!(key.as_str(), "env" | "bind" | "tmpfs" | "file") && seen.contains(&key)
                {
                    errors.push(err(pair.path.span(), format!("`{key}` is given twice")));
                    continue;
                }
                seen.push(key.clone());
                if key == "readonly_root" {
                    match &pair.value {
                        Expr::Lit(ExprLit {
                            lit: Lit::Bool(b), ..
                        }) => test.readonly_root = b.value,
                        other => {
                            errors.push(err(other.span(), "`readonly_root` takes true or false"))
                        }
                    }
                    continue;
                }
                if key == "file" {
                    match parse_file(&pair.value) {
                        Ok(f) => test.files.push(f),
                        Err(e) => errors.push(e),
                    }
                    continue;
                }
                if key == "user" {
                    match &pair.value {
                        Expr::Lit(ExprLit {
                            lit: Lit::Int(n), ..
                        }) => match n.base10_parse::<u32>() {
                            Ok(v) if v < 65_536 => test.user = Some(User::Id(v)),
                            _ => errors.push(err(
                                n.span(),
                                "`user` ids go from 0 to 65535 (the ids a container maps)",
                            )),
                        },
                        Expr::Lit(ExprLit {
                            lit: Lit::Str(name),
                            ..
                        }) => {
                            let v = name.value();
                            if v.is_empty()
                                || !v.bytes().all(|b| {
                                    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
                                })
                            {
                                errors.push(err(name.span(), format!("invalid user name `{v}`")));
                            } else {
                                test.user = Some(User::Name(v));
                            }
                        }
                        other => errors.push(err(
                            other.span(),
                            "`user` takes a user name or id, e.g. user = \"nobody\" or user = 1000",
                        )),
                    }
                    continue;
                }
                if key == "pids" {
                    match &pair.value {
                        Expr::Lit(ExprLit {
                            lit: Lit::Int(n), ..
                        }) => match n.base10_parse::<u64>() {
                            Ok(v) if v >= 2 => test.pids = Some(v),
                            _ => errors.push(err(
                                n.span(),
                                "`pids` must be at least 2 (the container's init and the test)",
                            )),
                        },
                        other => errors
                            .push(err(other.span(), "`pids` takes an integer, e.g. pids = 64")),
                    }
                    continue;
                }
                let Some(value) = string_value(&pair.value) else {
                    errors.push(err(
                        pair.value.span(),
                        format!(
                            "`{key}` takes a string literal, e.g. {key} = \"{}\"",
                            example(&key)
                        ),
                    ));
                    continue;
                };
                let text = value.value();
                match key.as_str() {
                    "hostname" => match check_hostname(&text) {
                        Ok(()) => test.hostname = Some(text),
                        Err(why) => errors.push(err(value.span(), why)),
                    },
                    "timeout" => match parse_duration_ms(&text) {
                        Ok(ms) => test.timeout_ms = Some(ms),
                        Err(why) => errors.push(err(value.span(), why)),
                    },
                    "net" => match text.as_str() {
                        "loopback" => test.net = Net::Loopback,
                        "none" => test.net = Net::None,
                        "host" => test.net = Net::Host,
                        other => errors.push(err(value.span(), format!("unknown net mode `{other}`; valid: \"loopback\" (default), \"none\", \"host\""))),
                    },
                    "bind" => match parse_bind(&text) {
                        Ok(b) => test.binds.push(b),
                        Err(why) => errors.push(err(value.span(), why)),
                    },
                    "tmpfs" => match absolute(&text, "tmpfs") {
                        Ok(()) => test.tmpfs.push(text),
                        Err(why) => errors.push(err(value.span(), why)),
                    },
                    "rootfs" if text.is_empty() || text.contains([',', ':', '\0']) => {
                        errors.push(err(value.span(), format!("invalid rootfs `{text}`: a directory, relative to the crate or absolute, without `,` or `:`")))
                    }
                    "rootfs" => test.rootfs = Some(text),
                    "workdir" => match absolute(&text, "workdir") {
                        Ok(()) => test.workdir = Some(text),
                        Err(why) => errors.push(err(value.span(), why)),
                    },
                    "memory" => match parse_size(&text) {
                        Ok(bytes) => test.memory = Some(bytes),
                        Err(why) => errors.push(err(value.span(), why)),
                    },
                    _ => match parse_env(&text) {
                        Ok(kv) => test.env.push(kv),
                        Err(why) => errors.push(err(value.span(), why)),
                    },
                }
            }
        }
    }

    let sig = &func.sig;
    if !sig.inputs.is_empty() {
        errors.push(err(
            sig.inputs.span(),
            "an isolated test takes no arguments",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(err(
            sig.generics.span(),
            "an isolated test cannot be generic",
        ));
    }

    // `#[ignore]` and `#[should_panic]` keep their meaning; tinyo applies them, so they are
    // taken off the function. A stray `#[test]` would register the test twice.
    let mut kept: Vec<Attribute> = Vec::new();
    for attr in std::mem::take(&mut func.attrs) {
        if attr.path().is_ident("ignore") {
            match &attr.meta {
                Meta::Path(_) => test.ignore = Some(None),
                Meta::NameValue(nv) => match string_value(&nv.value) {
                    Some(reason) => test.ignore = Some(Some(reason.value())),
                    None => errors.push(err(nv.value.span(), "expected #[ignore = \"reason\"]")),
                },
                Meta::List(l) => errors.push(err(
                    l.span(),
                    "expected #[ignore] or #[ignore = \"reason\"]",
                )),
            }
        } else if attr.path().is_ident("should_panic") {
            match parse_should_panic(&attr.meta) {
                Ok(sp) => test.should_panic = sp,
                Err(e) => errors.push(e),
            }
        } else if attr.path().is_ident("test") {
            errors.push(err(
                attr.span(),
                "remove #[test]: #[isolated] already makes this a test",
            ));
        } else {
            kept.push(attr);
        }
    }
    if test.should_panic != ShouldPanic::No && !matches!(func.sig.output, syn::ReturnType::Default)
    {
        errors.push(err(
            func.sig.output.span(),
            "functions using #[should_panic] must return `()`",
        ));
    }
    func.attrs = kept;
    test.func = func;

    if errors.is_empty() {
        Ok(test)
    } else {
        Err(errors)
    }
}

fn parse_should_panic(meta: &Meta) -> Result<ShouldPanic, syn::Error> {
    const USAGE: &str =
        "expected #[should_panic] or #[should_panic(expected = \"substring of the message\")]";
    match meta {
        Meta::Path(_) => Ok(ShouldPanic::Yes),
        Meta::NameValue(nv) => string_value(&nv.value)
            .map(|s| ShouldPanic::Expected(s.value()))
            .ok_or_else(|| err(nv.value.span(), USAGE)),
        Meta::List(list) => {
            let nv: MetaNameValue = list.parse_args().map_err(|e| err(e.span(), USAGE))?;
            match (nv.path.is_ident("expected"), string_value(&nv.value)) {
                (true, Some(s)) => Ok(ShouldPanic::Expected(s.value())),
                _ => Err(err(nv.span(), USAGE)),
            }
        }
    }
}

fn example(key: &str) -> &'static str {
    match key {
        "hostname" => "db-1",
        "timeout" => "5s",
        "env" => "KEY=VALUE",
        "memory" => "256M",
        "bind" => "fixtures/data:/srv/data",
        "tmpfs" => "/var/cache",
        "workdir" => "/srv",
        "rootfs" => "fixtures/image",
        _ => "loopback",
    }
}

fn path_text(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

fn string_value(expr: &Expr) -> Option<LitStr> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.clone()),
        _ => None,
    }
}

/// An RFC 1123 label: 1–63 of `[A-Za-z0-9-]`, not starting or ending with `-`.
pub(crate) fn check_hostname(name: &str) -> Result<(), String> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if name.is_empty()
        || name.len() > 63
        || !ok_chars
        || name.starts_with('-')
        || name.ends_with('-')
    {
        return Err(format!(
            "invalid hostname `{name}`: use 1 to 63 letters, digits and inner hyphens (an RFC 1123 label), e.g. \"db-1\""
        ));
    }
    Ok(())
}

/// A path inside the container must be absolute and clean.
fn absolute(path: &str, key: &str) -> Result<(), String> {
    if !path.starts_with('/') || path.split('/').any(|c| c == "..") || path.contains('\0') {
        return Err(format!("`{key}` needs an absolute path in the container without `..`, e.g. \"/var/cache\"; got `{path}`"));
    }
    Ok(())
}

/// `"src:dst"` or `"src:dst:rw"` (or `:ro`): src relative to the crate or absolute, dst absolute.
pub(crate) fn parse_bind(text: &str) -> Result<(String, String, bool), String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (src, dst, writable) = match parts.as_slice() {
        [src, dst] => (*src, *dst, false),
        [src, dst, "rw"] => (*src, *dst, true),
        [src, dst, "ro"] => (*src, *dst, false),
        _ => return Err(format!("invalid bind `{text}`: use \"src:dst\" or \"src:dst:rw\" (src relative to the crate or absolute, dst absolute)")),
    };
    if src.is_empty() {
        return Err(format!("invalid bind `{text}`: the source is empty"));
    }
    absolute(dst, "bind").map_err(|e| format!("invalid bind `{text}`: {e}"))?;
    Ok((src.to_owned(), dst.to_owned(), writable))
}

/// `("/path", "contents")` or `("/path", "contents", 0o600)`.
fn parse_file(expr: &Expr) -> Result<(String, String, u32), syn::Error> {
    const USAGE: &str =
        "`file` takes (\"/path\", \"contents\") or (\"/path\", \"contents\", 0o600)";
    let Expr::Tuple(tuple) = expr else {
        return Err(err(expr.span(), USAGE));
    };
    let items: Vec<&Expr> = tuple.elems.iter().collect();
    let (path, contents, mode) = match items.as_slice() {
        [p, c] => (string_value(p), string_value(c), Some(0o644)),
        [p, c, Expr::Lit(ExprLit {
            lit: Lit::Int(m), ..
        })] => (
            string_value(p),
            string_value(c),
            m.base10_parse::<u32>().ok().filter(|m| *m <= 0o7777),
        ),
        _ => return Err(err(expr.span(), USAGE)),
    };
    match (path, contents, mode) {
        (Some(p), Some(c), Some(m)) => {
            absolute(&p.value(), "file").map_err(|e| err(p.span(), e))?;
            Ok((p.value(), c.value(), m))
        }
        _ => Err(err(expr.span(), USAGE)),
    }
}

/// `"KEY=VALUE"` with a non-empty key of no `=` or NUL.
pub(crate) fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains('\0') && !v.contains('\0') => {
            Ok((k.to_owned(), v.to_owned()))
        }
        _ => Err(format!(
            "invalid env `{text}`: use \"KEY=VALUE\" with a non-empty KEY"
        )),
    }
}

/// `"512K"`, `"256M"`, `"2G"` (or a plain number of bytes) → bytes; at least 1 MiB.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || {
        format!("invalid memory size `{text}`: use a whole number with K, M or G, e.g. \"256M\"")
    };
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = text.split_at(digits);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let shift = match unit {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        _ => return Err(bad()),
    };
    let bytes = n
        .checked_shl(shift)
        .filter(|b| b >> shift == n)
        .ok_or_else(bad)?;
    if bytes < 1 << 20 {
        return Err(format!(
            "invalid memory size `{text}`: a test needs at least 1M"
        ));
    }
    Ok(bytes)
}

/// `"250ms"`, `"5s"`, `"2m"` → milliseconds; zero is refused.
pub(crate) fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let bad = || {
        format!("invalid timeout `{text}`: use a whole number with a unit, e.g. \"250ms\", \"5s\", \"2m\"")
    };
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
        return Err(format!(
            "invalid timeout `{text}`: it must be longer than zero"
        ));
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn errors(attr: TokenStream) -> Vec<String> {
        parse(
            attr,
            quote!(
                fn t() {}
            ),
        )
        .err()
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect()
    }

    #[test]
    fn all_keys_parse() {
        let t = parse(
            quote!(
                hostname = "db-1",
                timeout = "2s",
                net = "none",
                env = "A=1",
                env = "B=x=y"
            ),
            quote!(
                #[ignore = "slow"]
                #[doc = "x"]
                #[should_panic(expected = "boom")]
                fn t() {}
            ),
        )
        .unwrap();
        assert_eq!(t.hostname.as_deref(), Some("db-1"));
        assert_eq!(t.timeout_ms, Some(2000));
        assert_eq!(t.net, Net::None);
        assert_eq!(
            t.env,
            vec![("A".into(), "1".into()), ("B".into(), "x=y".into())]
        );
        assert_eq!(t.ignore, Some(Some("slow".into())));
        assert_eq!(t.should_panic, ShouldPanic::Expected("boom".into()));
        assert_eq!(
            t.func.attrs.len(),
            1,
            "the doc comment stays, #[ignore] and #[should_panic] go"
        );
    }

    #[test]
    fn should_panic_forms() {
        let sp =
            |attrs: TokenStream| parse(quote!(), quote!(#attrs fn t() {})).map(|t| t.should_panic);
        assert_eq!(sp(quote!(#[should_panic])).unwrap(), ShouldPanic::Yes);
        assert_eq!(
            sp(quote!(#[should_panic = "m"])).unwrap(),
            ShouldPanic::Expected("m".into())
        );
        assert!(sp(quote!(#[should_panic(wrong = "m")])).is_err());
        assert!(parse(
            quote!(),
            quote!(
                #[should_panic]
                fn t() -> Result<(), ()> {
                    Ok(())
                }
            )
        )
        .is_err());
    }

    #[test]
    fn unknown_key_lists_the_valid_ones() {
        assert_eq!(errors(quote!(hostnme = "x")), vec!["unknown key `hostnme` in #[isolated]; valid keys: hostname, timeout, net, env, memory, pids, user, bind, tmpfs, file, workdir, readonly_root, rootfs"]);
    }

    #[test]
    fn every_error_is_collected() {
        let e = errors(quote!(
            hostname = "-bad",
            timeout = "5 s",
            net = "wifi",
            timeout = "1s",
            env = "=x"
        ));
        assert_eq!(e.len(), 5, "{e:?}");
        assert!(e[0].starts_with("invalid hostname `-bad`"));
        assert!(e[1].starts_with("invalid timeout `5 s`"));
        assert!(e[2].starts_with("unknown net mode `wifi`"));
        assert_eq!(e[3], "`timeout` is given twice");
        assert!(e[4].starts_with("invalid env `=x`"));
    }

    #[test]
    fn values_must_be_strings() {
        assert_eq!(
            errors(quote!(timeout = 5)),
            vec!["`timeout` takes a string literal, e.g. timeout = \"5s\""]
        );
    }

    #[test]
    fn limits() {
        let t = parse(
            quote!(memory = "256M", pids = 64),
            quote!(
                fn t() {}
            ),
        )
        .unwrap();
        assert_eq!((t.memory, t.pids), (Some(256 << 20), Some(64)));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("12").is_err() && parse_size("1T").is_err());
        assert_eq!(
            errors(quote!(pids = "64")),
            vec!["`pids` takes an integer, e.g. pids = 64"]
        );
        assert_eq!(errors(quote!(pids = 1)).len(), 1);
        let t = parse(
            quote!(user = "nobody"),
            quote!(
                fn t() {}
            ),
        )
        .unwrap();
        assert_eq!(t.user, Some(User::Name("nobody".into())));
        let t = parse(
            quote!(user = 1000),
            quote!(
                fn t() {}
            ),
        )
        .unwrap();
        assert_eq!(t.user, Some(User::Id(1000)));
        assert_eq!(errors(quote!(user = 70000)).len(), 1);
    }

    #[test]
    fn filesystem_keys() {
        let t = parse(
            quote!(
                bind = "fixtures:/srv",
                bind = "/var/out:/out:rw",
                tmpfs = "/var/cache",
                file = ("/etc/app.conf", "x = 1", 0o600),
                file = ("/a", "b"),
                workdir = "/srv",
                readonly_root = true
            ),
            quote!(
                fn t() {}
            ),
        )
        .unwrap();
        assert_eq!(
            t.binds,
            vec![
                ("fixtures".into(), "/srv".into(), false),
                ("/var/out".into(), "/out".into(), true)
            ]
        );
        assert_eq!(t.tmpfs, vec!["/var/cache".to_owned()]);
        assert_eq!(
            t.files,
            vec![
                ("/etc/app.conf".into(), "x = 1".into(), 0o600),
                ("/a".into(), "b".into(), 0o644)
            ]
        );
        assert_eq!(
            (t.workdir.as_deref(), t.readonly_root),
            (Some("/srv"), true)
        );
        assert!(parse_bind("a:relative").is_err());
        assert!(parse_bind("a:/b:rx").is_err());
        assert!(parse_bind(":/b").is_err());
        assert_eq!(errors(quote!(tmpfs = "var")).len(), 1);
        assert_eq!(
            errors(quote!(readonly_root = "yes")),
            vec!["`readonly_root` takes true or false"]
        );
        assert_eq!(errors(quote!(file = "/a")).len(), 1);
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
        let e = parse(
            quote!(),
            quote!(
                fn t<T>(x: u8) {}
            ),
        )
        .unwrap_err();
        assert_eq!(e.len(), 2);
        let e = parse(
            quote!(),
            quote!(
                #[test]
                fn t() {}
            ),
        )
        .unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "remove #[test]: #[isolated] already makes this a test"
        );
    }
}
