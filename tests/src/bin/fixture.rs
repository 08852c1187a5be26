//! A tinyo test binary whose tests pass and fail in every way the harness must report;
//! `tests/harness.rs` and `tests/host.rs` run it as a subprocess and check what it says.
//! Not part of the suite by itself.

use std::time::Duration;

use tinyo::isolated;
use tinyo_tests::guard;

#[isolated]
fn passes() {
    guard();
    println!("output of a passing test");
    // Which CPUs the body may use (tests/harness.rs checks it has the harness's).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let cpus = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap();
    println!("body cpus: {}", cpus.trim());
}

#[isolated]
fn panics() {
    guard();
    println!("printed before the panic");
    panic!("the expected panic message");
}

#[isolated]
fn aborts() {
    guard();
    std::process::abort();
}

#[isolated]
fn exits_zero_mid_body() {
    guard();
    std::process::exit(0);
}

#[isolated]
fn returns_err() -> Result<(), String> {
    guard();
    Err("a returned error".into())
}

#[isolated]
#[ignore = "not run unless asked"]
fn ignored_exits_zero() {
    guard();
    std::process::exit(0);
}

fn asked(var: &str) -> bool {
    std::env::var_os(var).is_some()
}

/// Fork a child that runs `f` and then sleeps forever.
fn fork_child(f: fn()) {
    // SAFETY: the body is single-threaded when it forks; the child only makes syscalls.
    #[allow(unsafe_code)]
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            f();
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        nix::unistd::ForkResult::Parent { .. } => {}
    }
}

/// The timeout takes the whole tree: a child that ignores SIGTERM and a stopped child too.
#[isolated(timeout = "1s")]
fn sleeps_forever() {
    guard();
    fork_child(|| {
        // SAFETY: setting a signal to SIG_IGN runs no handler code.
        #[allow(unsafe_code)]
        unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGTERM,
                nix::sys::signal::SigHandler::SigIgn,
            )
        }
        .unwrap();
    });
    fork_child(|| nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP).unwrap());
    std::thread::sleep(Duration::from_secs(3600));
}

/// Hang when asked (for timeout and harness-death tests); pass at once otherwise.
#[isolated]
fn hangs_a() {
    guard();
    if asked("TINYO_FIXTURE_HANG") {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[isolated]
fn hangs_b() {
    guard();
    if asked("TINYO_FIXTURE_HANG") {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// 200 MB of output when asked: the harness must keep only the head and the tail.
#[isolated]
fn floods_output() {
    guard();
    if asked("TINYO_FIXTURE_FLOOD") {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "FLOOD-START").unwrap();
        let line = [b'x'; 1023];
        for _ in 0..200 * 1024 {
            out.write_all(&line).unwrap();
            out.write_all(b"\n").unwrap();
        }
        writeln!(out, "FLOOD-END").unwrap();
        drop(out);
        panic!("flooded");
    }
}

fn chatter(tag: &str) {
    guard();
    if asked("TINYO_FIXTURE_CHATTY") {
        for i in 0..2000 {
            println!("{tag}{i}");
            eprintln!("{tag}{i}e");
        }
        panic!("chatty {tag}");
    }
}

#[isolated]
fn chatty_a() {
    chatter("A");
}

#[isolated]
fn chatty_b() {
    chatter("B");
}

/// A fork bomb under `pids = 16`: the 16th process is refused and the test fails cleanly.
#[isolated(pids = 16)]
fn fork_bomb() {
    guard();
    if asked("TINYO_FIXTURE_BOMB") {
        loop {
            // SAFETY: single-threaded; the children only sleep.
            #[allow(unsafe_code)]
            match unsafe { nix::unistd::fork() } {
                Ok(nix::unistd::ForkResult::Child) => loop {
                    std::thread::sleep(Duration::from_secs(60));
                },
                Ok(nix::unistd::ForkResult::Parent { .. }) => {}
                Err(e) => panic!("fork refused: {e}"),
            }
        }
    }
}

/// Allocates 1 GiB under `memory = "256M"` when asked.
#[isolated(memory = "256M")]
fn memory_hog() {
    guard();
    if asked("TINYO_FIXTURE_HOG") {
        let v = vec![1u8; 1 << 30];
        assert_eq!(std::hint::black_box(v)[12345], 1);
    }
}

/// Detaches its own root: harmless to the host (compared by tests/host.rs).
#[isolated]
fn detaches_its_root() {
    guard();
    let _ = nix::mount::umount2("/", nix::mount::MntFlags::MNT_DETACH);
}

/// Leaves behind what a careless test would: a mount, a new hostname, a file in /tmp and a
/// daemon (a fork of this binary that outlives the body). None of it may reach the host.
#[isolated(hostname = "messy")]
fn leaves_a_mess() {
    guard();
    nix::unistd::sethostname("renamed-by-a-test").unwrap();
    std::fs::create_dir_all("/tmp/mnt").unwrap();
    nix::mount::mount(
        Some("tinyo-fixture-mess"),
        "/tmp/mnt",
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    std::fs::write("/tmp/tinyo-fixture-mess", b"x").unwrap();
    // A daemon, the classic way: fork, setsid, fork again, the middle process exits.
    fork_child(|| {
        nix::unistd::setsid().unwrap();
        fork_child(|| {});
        std::process::exit(0);
    });
}

tinyo::main!();
