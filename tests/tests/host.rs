//! The host is left as it was found: run the fixture (whose tests mount, rename the host,
//! write to /tmp, leave a daemon behind, time out) over 500 containers, and a run whose
//! every test times out, and compare the host's mount table, network namespaces, hostname,
//! /tmp entries, processes and the harness's fds before and after.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use tinyo_tests::processes_running;

const FIXTURE: &str = env!("CARGO_BIN_EXE_tinyo-fixture");

#[derive(Debug, PartialEq, Eq)]
struct HostState {
    mounts: String,
    hostname: String,
    tmp: BTreeSet<PathBuf>,
    netns: BTreeSet<PathBuf>,
    interfaces: BTreeSet<PathBuf>,
}

fn snapshot() -> HostState {
    // Every network namespace a process of the machine is in, by its inode.
    let netns = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| std::fs::read_link(format!("/proc/{pid}/ns/net")).ok())
        .collect();
    HostState {
        mounts: std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
        hostname: nix::unistd::gethostname().unwrap().into_string().unwrap(),
        tmp: std::fs::read_dir("/tmp")
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect(),
        netns,
        interfaces: std::fs::read_dir("/sys/class/net")
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect(),
    }
}

/// Run the fixture; check its harness held the same fds before and after its tests.
fn run(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(FIXTURE)
        .args(args)
        .envs(env.iter().copied())
        .env("TINYO_DEBUG_FDS", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("tinyo-debug: harness fds"))
        .unwrap_or_else(|| panic!("no fd report:\n{stderr}"));
    let (before, after) = line.split_once(", after: ").unwrap();
    assert_eq!(
        before.rsplit(": ").next(),
        Some(after),
        "the harness leaked fds: {line}"
    );
    stdout
}

#[test]
fn the_host_is_unchanged_by_500_containers_and_by_timeouts() {
    let fixture = Path::new(FIXTURE);
    let before = snapshot();
    assert_eq!(processes_running(fixture), Vec::<u32>::new());
    let mut containers = 0;
    while containers < 500 {
        let text = run(&["--skip", "sleeps_forever"], &[]);
        assert!(
            text.lines()
                .any(|l| l.starts_with("test leaves_a_mess ") && l.ends_with("... ok")),
            "{text}"
        );
        let ran: usize = text
            .lines()
            .filter(|l| l.starts_with("test ") && !l.ends_with("ignored"))
            .count();
        assert!(ran >= 10, "{text}");
        containers += ran;
    }
    // A run whose every test times out.
    let text = run(
        &["hangs_", "--timeout", "100ms"],
        &[("TINYO_FIXTURE_HANG", "1")],
    );
    assert!(text.contains("0 passed; 2 failed"), "{text}");
    assert_eq!(text.matches("timed out after 100ms").count(), 2, "{text}");

    // Test networks (bridges, veths, hosts) live in the tests' own namespaces.
    let networks = tinyo_tests::sibling_test_binary("networks");
    let out = Command::new(&networks)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the networks suite is built (run cargo test --workspace)");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(processes_running(&networks).is_empty());

    // No process of any run remains: PID 1's exit kills its namespace, daemons included.
    assert!(
        tinyo_tests::wait_for(std::time::Duration::from_secs(1), || processes_running(
            fixture
        )
        .is_empty()),
        "{:?}",
        processes_running(fixture)
    );
    let after = snapshot();
    assert_eq!(before.hostname, after.hostname);
    assert_eq!(before.tmp, after.tmp);
    assert_eq!(before.mounts, after.mounts);
    assert!(!after.mounts.contains("tinyo-fixture-mess"));
    // Network namespaces are freed asynchronously by the kernel, but no process holds one.
    assert_eq!(before.netns, after.netns);
    assert_eq!(
        before.interfaces, after.interfaces,
        "no interface of a test network is left"
    );
}
