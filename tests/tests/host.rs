//! The host is left as it was found: run the fixture (whose tests mount, rename the host,
//! write to /tmp, leave a daemon behind, time out) and compare the host's mount table,
//! hostname, /tmp entries and processes before and after.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

const FIXTURE: &str = env!("CARGO_BIN_EXE_tinyo-fixture");

#[derive(Debug, PartialEq, Eq)]
struct HostState {
    mounts: String,
    hostname: String,
    tmp: BTreeSet<PathBuf>,
}

fn snapshot() -> HostState {
    HostState {
        mounts: std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
        hostname: nix::unistd::gethostname().unwrap().into_string().unwrap(),
        tmp: std::fs::read_dir("/tmp").unwrap().map(|e| e.unwrap().path()).collect(),
    }
}

/// Processes running the fixture binary (the daemon a test leaves is a fork of it).
fn fixture_processes() -> Vec<u32> {
    let fixture = std::fs::canonicalize(FIXTURE).unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == fixture))
        .collect()
}

#[test]
fn the_host_is_unchanged_by_a_run() {
    let before = snapshot();
    assert_eq!(fixture_processes(), Vec::<u32>::new());
    for _ in 0..3 {
        let out = Command::new(FIXTURE).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(101), "{text}");
        assert!(text.lines().any(|l| l.starts_with("test leaves_a_mess ") && l.ends_with("... ok")), "{text}");
    }
    // The run is over: no process of it may remain (PID 1's exit kills its namespace).
    assert_eq!(fixture_processes(), Vec::<u32>::new(), "a container process outlived the run");
    let after = snapshot();
    assert_eq!(before.hostname, after.hostname);
    assert_eq!(before.tmp, after.tmp);
    assert_eq!(before.mounts, after.mounts);
    assert!(!after.mounts.contains("tinyo-fixture-mess"));
}
