//! Hostile tests and a dying harness, checked from outside: timeouts take the whole
//! container, the harness's death takes every container, floods are bounded, parallel
//! output never mixes, and limits fail the one test that breaks them.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tinyo_tests::{container_processes, processes_running, run_with, wait_for};

const FIXTURE: &str = env!("CARGO_BIN_EXE_tinyo-fixture");

fn fixture(args: &[&str], env: &[(&str, &str)]) -> (Output, String) {
    run_with(FIXTURE, args, env)
}

/// No process of a container of `harness` remains (the fixture's own processes are told
/// apart from other tests' runs by their parentage: containers of other runs may be alive).
fn containers_of(harness: u32) -> Vec<u32> {
    container_processes(Path::new(FIXTURE))
        .into_iter()
        .filter(|pid| {
            // PID 1 of a container is a child of its harness (CLONE_PARENT); the rest descend from it.
            let mut p = *pid;
            for _ in 0..64 {
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                    return false;
                };
                let Some(ppid) = stat
                    .rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().nth(1))
                    .and_then(|s| s.parse::<u32>().ok())
                else {
                    return false;
                };
                if ppid == harness {
                    return true;
                }
                if ppid <= 1 {
                    return false;
                }
                p = ppid;
            }
            false
        })
        .collect()
}

#[test]
fn a_timeout_takes_the_whole_tree_within_3s() {
    let start = Instant::now();
    let child = Command::new(FIXTURE)
        .args(["--exact", "sleeps_forever"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let harness = child.id();
    // The stubborn children exist while the test runs...
    assert!(
        wait_for(Duration::from_secs(2), || containers_of(harness).len() >= 4),
        "the container never started"
    );
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(text.contains("timed out after 1s"), "{text}");
    // ...and none survive it, not the one ignoring SIGTERM, not the stopped one.
    assert_eq!(containers_of(harness), Vec::<u32>::new());
}

#[test]
fn timeout_flag_and_env_set_the_default() {
    let start = Instant::now();
    let (out, text) = fixture(
        &["--exact", "hangs_a", "--timeout", "300ms"],
        &[("TINYO_FIXTURE_HANG", "1")],
    );
    assert_eq!(out.status.code(), Some(101), "{text}");
    assert!(text.contains("timed out after 300ms"), "{text}");
    let (_, text) = fixture(
        &["--exact", "hangs_a"],
        &[("TINYO_FIXTURE_HANG", "1"), ("TINYO_TIMEOUT", "200ms")],
    );
    assert!(text.contains("timed out after 200ms"), "{text}");
    let (_, text) = fixture(
        &["--exact", "hangs_a", "--timeout=250ms"],
        &[("TINYO_FIXTURE_HANG", "1"), ("TINYO_TIMEOUT", "9s")],
    );
    assert!(
        text.contains("timed out after 250ms"),
        "the flag wins over the environment: {text}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    let (out, text) = fixture(&["--timeout", "later"], &[]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("--timeout `later` is not a duration"),
        "{text}"
    );
}

fn start_two_hanging() -> Child {
    let child = Command::new(FIXTURE)
        .args(["hangs_", "--test-threads", "2"])
        .env("TINYO_FIXTURE_HANG", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let harness = child.id();
    assert!(
        wait_for(Duration::from_secs(5), || containers_of(harness).len() >= 4),
        "two containers never ran: {:?}",
        containers_of(harness)
    );
    child
}

fn harness_death_kills_every_container(signal: Signal) {
    let mut child = start_two_hanging();
    let harness = child.id();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(harness as i32), signal).unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "{signal}: the harness must exit non-zero"
    );
    assert!(
        wait_for(Duration::from_secs(1), || containers_of(harness).is_empty()),
        "{signal}: containers outlived the harness: {:?}",
        containers_of(harness)
    );
    // The zygote too.
    let zygotes: Vec<u32> = processes_running(Path::new(FIXTURE))
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().nth(1))
                    == Some(&harness.to_string())
            })
        })
        .collect();
    assert!(
        wait_for(Duration::from_secs(1), || zygotes
            .iter()
            .all(|z| !Path::new(&format!("/proc/{z}")).exists())),
        "{signal}: the zygote outlived the harness"
    );
}

#[test]
fn sigkill_to_the_harness_kills_its_containers_within_1s() {
    harness_death_kills_every_container(Signal::SIGKILL);
}

#[test]
fn sigterm_to_the_harness_kills_its_containers() {
    harness_death_kills_every_container(Signal::SIGTERM);
}

#[test]
fn sigint_to_the_harness_kills_its_containers() {
    harness_death_kills_every_container(Signal::SIGINT);
}

#[test]
fn a_flood_of_output_is_bounded() {
    let start = Instant::now();
    let (out, text) = fixture(
        &["--exact", "floods_output"],
        &[("TINYO_FIXTURE_FLOOD", "1")],
    );
    assert_eq!(out.status.code(), Some(101));
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    assert!(
        text.contains("FLOOD-START") && text.contains("FLOOD-END"),
        "head and tail are kept"
    );
    assert!(
        text.contains("bytes of output dropped here"),
        "the drop is said"
    );
    assert!(
        text.len() < 4 << 20,
        "the report is bounded: {} bytes",
        text.len()
    );
    // The harness itself stayed small (the largest child this process has waited for).
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    assert!(
        usage.max_rss() < 150 * 1024,
        "max RSS of a child: {} KiB",
        usage.max_rss()
    );
}

fn section<'a>(text: &'a str, name: &str) -> &'a str {
    let start = text
        .find(&format!("---- {name} ----"))
        .unwrap_or_else(|| panic!("no section for {name}:\n{text}"));
    let rest = &text[start + 5..];
    let end = [rest.find("\n---- chatty_"), rest.find("\nfailures:")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn parallel_output_never_mixes() {
    let (out, text) = fixture(
        &["chatty_", "--test-threads", "2"],
        &[("TINYO_FIXTURE_CHATTY", "1")],
    );
    assert_eq!(out.status.code(), Some(101), "{text}");
    for (name, own, other) in [("chatty_a", 'A', 'B'), ("chatty_b", 'B', 'A')] {
        let s = section(&text, name);
        assert!(
            s.lines().filter(|l| l.starts_with(own)).count() >= 4000,
            "{name} lost output"
        );
        assert!(
            !s.lines().any(
                |l| l.starts_with(other) && l[1..].trim_end_matches('e').parse::<u32>().is_ok()
            ),
            "{name} has the other's lines"
        );
    }
}

#[test]
fn a_fork_bomb_under_pids_fails_cleanly() {
    let (out, text) = fixture(&["--exact", "fork_bomb"], &[("TINYO_FIXTURE_BOMB", "1")]);
    assert_eq!(out.status.code(), Some(101), "{text}");
    assert!(text.contains("fork refused: EAGAIN"), "{text}");
    // The host keeps running: this test does, and so do others.
    let (out, text) = fixture(&["--exact", "passes"], &[]);
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn a_memory_hog_fails_with_out_of_memory() {
    let (out, text) = fixture(&["--exact", "memory_hog"], &[("TINYO_FIXTURE_HOG", "1")]);
    assert_eq!(out.status.code(), Some(101), "{text}");
    assert!(text.contains("out of memory (limit 256M)"), "{text}");
    assert!(
        text.contains("RLIMIT_AS"),
        "which mechanism applied is said: {text}"
    );
}
