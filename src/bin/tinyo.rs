//! The `tinyo` command: `tinyo doctor` tells whether isolation works on this machine, and
//! if not, why and how to fix it.

// A command-line tool: printing is its job.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use tinyo_core::diagnose::{diagnose, EnvFacts};
use tinyo_core::sys::real::{self, SingleThreaded};

const USAGE: &str = "\
tinyo: run Rust tests in throw-away Linux containers

USAGE:
    tinyo doctor     check that this machine can isolate tests; explain what blocks it
    tinyo help       this text

Tests use tinyo through the `tinyo` crate: #[tinyo::isolated] and tinyo::main!().";

fn yes_no(v: Option<u64>) -> String {
    v.map_or_else(|| "absent".to_owned(), |v| v.to_string())
}

fn doctor() -> ExitCode {
    // Facts first: reading them starts no thread.
    let facts = EnvFacts::gather();
    let (euid, _) = real::effective_ids();
    println!("kernel:                     {}", facts.kernel);
    println!(
        "running as:                 uid {euid}{}, {} user namespace",
        if euid == 0 { " (root)" } else { "" },
        if real::in_init_userns() { "the initial" } else { "a nested" }
    );
    println!("user.max_user_namespaces:   {}", yes_no(facts.max_user_namespaces));
    println!("kernel.unprivileged_userns_clone: {}", yes_no(facts.unprivileged_userns_clone));
    println!("kernel.apparmor_restrict_unprivileged_userns: {}", yes_no(facts.apparmor_restrict_unprivileged_userns));
    println!("seccomp filter:             {}", if facts.seccomp_filter { "yes" } else { "no" });
    let masked = facts.masked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>();
    println!("masked /proc or /sys paths: {}", if masked.is_empty() { "none".to_owned() } else { masked.join(", ") });
    let Some(proof) = SingleThreaded::check() else {
        println!("probe:                      not run (the process has several threads)");
        return ExitCode::FAILURE;
    };
    match tinyo_core::probe::probe(&proof) {
        Ok(took) => {
            println!("probe:                      ok: a full container (user, pid, mount, uts, ipc, net namespaces; root filesystem; hostname; lo) in {:.1} ms", took.as_secs_f64() * 1e3);
            println!("\nisolation works here.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("probe:                      FAILED: {e}");
            match e.failed_at() {
                Some(at) => println!("\n{}", diagnose(at, &facts)),
                None => println!("\nthis looks like a bug in tinyo or an unusual setup; please report it with this output"),
            }
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["doctor"] => doctor(),
        [] | ["help"] | ["--help"] | ["-h"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("error: unknown command `{}`\n\n{USAGE}", other.join(" "));
            ExitCode::from(2)
        }
    }
}
