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
    tinyo run [OPTIONS] -- PROGRAM [ARGS...]   run PROGRAM in a fresh container
    tinyo doctor                               check that this machine can isolate tests
    tinyo help                                 this text

Tests use tinyo through the `tinyo` crate: #[tinyo::isolated] and tinyo::main!().";

const RUN_USAGE: &str = "\
tinyo run [OPTIONS] -- PROGRAM [ARGS...]

Run PROGRAM (looked up in the container's PATH) in the kind of container an isolated test
gets, with this terminal's stdin, stdout and stderr. Exits with PROGRAM's exit code, 128 +
the signal that killed it, 124 on timeout, 125 if the container could not be made.

OPTIONS:
    --hostname NAME          the container's hostname (default tinyo)
    --net loopback|none|host its network (default loopback: own namespace, lo up)
    --rootfs DIR             DIR as the root, copy-on-write, instead of the host's system dirs
    --bind SRC:DST[:rw]      bind SRC at DST, read-only unless :rw (repeatable)
    --tmpfs PATH             an empty writable tmpfs at PATH (repeatable)
    --env KEY=VALUE          set KEY in PROGRAM's environment (repeatable)
    --workdir PATH           PROGRAM's working directory (default /)
    --readonly-root          make / read-only
    --user UID[:GID]         run PROGRAM as that user of the container (default 0, root)
    --timeout DURATION       kill the container after DURATION (250ms, 5s, 2m; default 300s)";

fn run(args: &[String]) -> ExitCode {
    let usage = |why: String| {
        eprintln!("error: {why}\n\n{RUN_USAGE}");
        ExitCode::from(2)
    };
    let mut container = tinyo_core::container::Container::new();
    let mut iter = args.iter();
    let mut program = None;
    while let Some(arg) = iter.next() {
        let mut value = |flag: &str| {
            iter.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let step: Result<(), String> = (|| {
            match arg.as_str() {
                "--help" | "-h" => return Err(String::new()),
                "--" => program = Some(()),
                "--hostname" => container = container.clone().hostname(value("--hostname")?),
                "--net" => {
                    let net = match value("--net")?.as_str() {
                        "loopback" => tinyo_core::NetMode::Loopback,
                        "none" => tinyo_core::NetMode::None,
                        "host" => tinyo_core::NetMode::Host,
                        other => {
                            return Err(format!("--net `{other}`: use loopback, none or host"))
                        }
                    };
                    container = container.clone().net(net);
                }
                "--rootfs" => {
                    let dir = std::path::PathBuf::from(value("--rootfs")?);
                    if !dir.is_dir() {
                        return Err(format!("--rootfs `{}` is not a directory", dir.display()));
                    }
                    container = container.clone().rootfs(
                        std::fs::canonicalize(&dir)
                            .map_err(|e| format!("--rootfs `{}`: {e}", dir.display()))?,
                    );
                }
                "--bind" => {
                    let spec = value("--bind")?;
                    let parts: Vec<&str> = spec.split(':').collect();
                    let (src, dst, rw) = match parts.as_slice() {
                        [s, d] => (*s, *d, false),
                        [s, d, "rw"] => (*s, *d, true),
                        [s, d, "ro"] => (*s, *d, false),
                        _ => return Err(format!("--bind `{spec}`: use SRC:DST or SRC:DST:rw")),
                    };
                    if !dst.starts_with('/') {
                        return Err(format!(
                            "--bind `{spec}`: DST must be an absolute path in the container"
                        ));
                    }
                    let src = std::fs::canonicalize(src)
                        .map_err(|e| format!("--bind `{spec}`: the source `{src}`: {e}"))?;
                    container = container.clone().bind(src, dst, rw);
                }
                "--tmpfs" => container = container.clone().tmpfs(value("--tmpfs")?),
                "--env" => {
                    let kv = value("--env")?;
                    let (k, v) = kv
                        .split_once('=')
                        .filter(|(k, _)| !k.is_empty())
                        .ok_or_else(|| format!("--env `{kv}`: use KEY=VALUE"))?;
                    container = container.clone().env(k, v);
                }
                "--workdir" => container = container.clone().workdir(value("--workdir")?),
                "--readonly-root" => container = container.clone().readonly_root(true),
                "--user" => {
                    let u = value("--user")?;
                    let bad = || format!("--user `{u}`: use UID or UID:GID (numbers)");
                    let (uid, gid) = match u.split_once(':') {
                        Some((a, b)) => {
                            (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?)
                        }
                        None => {
                            let id: u32 = u.parse().map_err(|_| bad())?;
                            (id, id)
                        }
                    };
                    container = container.clone().user(uid, gid);
                }
                "--timeout" => {
                    let d = value("--timeout")?;
                    container =
                        container
                            .clone()
                            .timeout(tinyo_harness::parse_duration(&d).ok_or_else(|| {
                                format!("--timeout `{d}` is not a duration (250ms, 5s, 2m)")
                            })?);
                }
                other => {
                    return Err(format!(
                        "unknown option `{other}` (the program goes after `--`)"
                    ))
                }
            }
            Ok(())
        })();
        match step {
            Err(why) if why.is_empty() => {
                println!("{RUN_USAGE}");
                return ExitCode::SUCCESS;
            }
            Err(why) => return usage(why),
            Ok(()) if program.is_some() => break,
            Ok(()) => {}
        }
    }
    let rest: Vec<&String> = iter.collect();
    let Some((prog, prog_args)) = rest.split_first() else {
        return usage("no program given: tinyo run [OPTIONS] -- PROGRAM [ARGS...]".into());
    };
    match container
        .command(prog, prog_args.iter().map(|a| a.as_str()))
        .status()
    {
        Ok(out) => ExitCode::from(u8::try_from(out.code()).unwrap_or(255)),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(125)
        }
    }
}

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
        if real::in_init_userns() {
            "the initial"
        } else {
            "a nested"
        }
    );
    println!(
        "user.max_user_namespaces:   {}",
        yes_no(facts.max_user_namespaces)
    );
    println!(
        "kernel.unprivileged_userns_clone: {}",
        yes_no(facts.unprivileged_userns_clone)
    );
    println!(
        "kernel.apparmor_restrict_unprivileged_userns: {}",
        yes_no(facts.apparmor_restrict_unprivileged_userns)
    );
    println!(
        "seccomp filter:             {}",
        if facts.seccomp_filter { "yes" } else { "no" }
    );
    let masked = facts
        .masked
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>();
    println!(
        "masked /proc or /sys paths: {}",
        if masked.is_empty() {
            "none".to_owned()
        } else {
            masked.join(", ")
        }
    );
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
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["doctor"] => doctor(),
        ["doctor", "--help" | "-h"] => {
            println!("tinyo doctor\n\nPrint what this machine allows (kernel, user namespace sysctls, AppArmor, seccomp,\nmasked paths), make one real container, and if that fails, say why and how to fix it.\nExits 0 when isolation works here, 1 when it does not.");
            ExitCode::SUCCESS
        }
        ["run", ..] => run(&args[1..]),
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
