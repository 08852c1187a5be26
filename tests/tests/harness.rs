//! The harness's behaviour, seen from outside: run the fixture test binary as a subprocess
//! and check what it prints and how it exits.

use std::process::{Command, Output};

use std::time::{Duration, Instant};
use tinyo_tests::{as_nobody, output_text, run_with, sibling_test_binary};

const FIXTURE: &str = env!("CARGO_BIN_EXE_tinyo-fixture");

fn fixture(args: &[&str]) -> (Output, String) {
    run_with(FIXTURE, args, &[])
}

fn one(name: &str) -> (Output, String) {
    fixture(&["--exact", name])
}

/// With as many test threads as CPUs, each fork server keeps to one CPU (for speed), but
/// a test body gets every CPU the harness has, as under plain `cargo test`.
#[test]
fn a_body_may_use_every_cpu_of_the_harness() {
    let mine = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
    if !(mine.is_set(0).unwrap() && mine.is_set(1).unwrap()) {
        eprintln!("skipped: this check needs CPUs 0 and 1, and this process may not use both");
        return;
    }
    let out = Command::new("taskset")
        .args([
            "-c",
            "0,1",
            FIXTURE,
            "--exact",
            "passes",
            "--test-threads",
            "2",
        ])
        .arg("--nocapture")
        .output()
        .expect("taskset (util-linux) is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("body cpus: 0-1\n"), "{text}");
}

#[test]
fn a_passing_test_passes_and_its_output_is_captured() {
    let (out, text) = one("passes");
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("test passes ... ok"), "{text}");
    assert!(text.contains("1 passed; 0 failed"), "{text}");
    assert!(
        !text.contains("output of a passing test"),
        "captured output of a passing test is not shown: {text}"
    );
}

#[test]
fn nocapture_streams_the_output() {
    let (out, text) = fixture(&["--exact", "passes", "--nocapture"]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("output of a passing test"), "{text}");
}

#[test]
fn a_panic_fails_with_its_message_location_and_output() {
    let (out, text) = one("panics");
    assert_eq!(out.status.code(), Some(101), "{text}");
    assert!(text.contains("test panics ... FAILED"), "{text}");
    assert!(
        text.contains("panicked at tests/src/bin/fixture.rs:"),
        "{text}"
    );
    assert!(text.contains("the expected panic message"), "{text}");
    assert!(text.contains("printed before the panic"), "{text}");
}

#[test]
fn an_abort_fails_naming_sigabrt() {
    let (out, text) = one("aborts");
    assert_eq!(out.status.code(), Some(101), "{text}");
    assert!(text.contains("killed by SIGABRT"), "{text}");
}

#[test]
fn exit_zero_before_the_body_returns_is_a_failure() {
    let (out, text) = one("exits_zero_mid_body");
    assert_eq!(out.status.code(), Some(101), "{text}");
    assert!(
        text.contains("test exits_zero_mid_body ... FAILED"),
        "{text}"
    );
    assert!(
        text.contains("exited with code 0 before the test function returned"),
        "{text}"
    );
}

#[test]
fn a_returned_err_fails_with_its_debug() {
    let (out, text) = one("returns_err");
    assert_eq!(out.status.code(), Some(101), "{text}");
    assert!(
        text.contains("returned Err: \"a returned error\""),
        "{text}"
    );
}

#[test]
fn an_ignored_test_is_ignored_not_passed() {
    let (out, text) = one("ignored_exits_zero");
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("test ignored_exits_zero ... ignored"),
        "{text}"
    );
    assert!(text.contains("0 passed; 0 failed; 1 ignored"), "{text}");
    // Run for real with --ignored it exits 0 mid-body, and that is a failure, not a pass.
    let (out, text) = fixture(&["--exact", "ignored_exits_zero", "--ignored"]);
    assert_eq!(out.status.code(), Some(101), "{text}");
    assert!(text.contains("0 passed; 1 failed"), "{text}");
}

#[test]
fn a_timeout_kills_the_container_and_says_so() {
    let start = Instant::now();
    let (out, text) = one("sleeps_forever");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(out.status.code(), Some(101), "{text}");
    assert!(text.contains("timed out after 1s"), "{text}");
}

#[test]
fn summary_counts_and_exit_code_of_a_whole_run() {
    let (out, text) = fixture(&[]);
    assert_eq!(out.status.code(), Some(101), "{text}");
    assert!(text.contains("running 16 tests"), "{text}");
    assert!(
        text.contains(
            "test result: FAILED. 10 passed; 5 failed; 1 ignored; 0 measured; 0 filtered out"
        ),
        "{text}"
    );
}

#[test]
fn list_shows_every_test_and_runs_none() {
    let (out, text) = fixture(&["--list", "--format", "terse"]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        vec![
            "aborts: test",
            "chatty_a: test",
            "chatty_b: test",
            "detaches_its_root: test",
            "exits_zero_mid_body: test",
            "floods_output: test",
            "fork_bomb: test",
            "hangs_a: test",
            "hangs_b: test",
            "ignored_exits_zero: test",
            "leaves_a_mess: test",
            "memory_hog: test",
            "panics: test",
            "passes: test",
            "returns_err: test",
            "sleeps_forever: test",
        ]
    );
}

#[test]
fn an_invalid_tinyo_timeout_is_an_error() {
    let out = Command::new(FIXTURE)
        .args(["--exact", "passes"])
        .env("TINYO_TIMEOUT", "soon")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("TINYO_TIMEOUT=`soon` is not a duration"),
        "{err}"
    );
}

/// Where namespaces cannot be made, each test fails with the step, the errno and the fix;
/// the harness does not panic and nothing passes. The limit is set to 0 in a user namespace
/// of this test's own (`user.max_user_namespaces` is per namespace), so the host is untouched.
#[test]
fn a_namespace_limit_fails_each_test_precisely() {
    let out = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "sh",
            "-c",
            "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$0\" --exact passes",
            FIXTURE,
        ])
        .output()
        .expect("unshare (util-linux) is installed");
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(101), "{text}");
    assert!(text.contains("test passes ... FAILED"), "{text}");
    assert!(text.contains("clone3(PID|MOUNT|UTS|IPC|USER): ENOSPC (No space left on device); fix: a namespace limit is reached"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

/// Rootless: as an unprivileged user (nobody) the same tests run, in a user namespace
/// whose root is that user.
#[test]
fn unprivileged_users_get_the_same_containers() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!(
            "skipped: this check drops from root to nobody; the suite is not running as root"
        );
        return;
    }
    let out = as_nobody(FIXTURE)
        .args(["--exact", "passes"])
        .output()
        .expect("setpriv (util-linux) is installed");
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("1 passed; 0 failed"), "{text}");
}

/// Rootless: the whole end-to-end suite and every escape attempt, run as nobody, pass the
/// same way (the container's root is then that user on the host).
#[test]
fn the_end_to_end_and_escape_suites_pass_unprivileged() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!(
            "skipped: this check drops from root to nobody; the suite is not running as root"
        );
        return;
    }
    for suite in ["isolated", "escapes", "filesystems"] {
        let bin = sibling_test_binary(suite);
        let out = as_nobody(&bin)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(0), "{suite} as nobody:\n{text}");
        assert!(
            text.contains("0 failed; 0 ignored") && !text.contains(" 0 passed"),
            "{suite}: {text}"
        );
    }
}

/// As root, a crate directory under a directory only root may enter (a `0700` home,
/// `/root`), and under `/tmp` (which the container's root hides), is still bound: the
/// zygote stages it in its own mount namespace first.
#[test]
fn crate_dirs_under_private_directories_and_tmp_are_reachable() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: staging applies to root only; the suite is not running as root");
        return;
    }
    let private = std::env::temp_dir().join(format!("tinyo-private-{}", std::process::id()));
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let crate_dir = private.join("crate");
    std::fs::create_dir(&crate_dir).unwrap();
    let out = Command::new(FIXTURE)
        .args(["--exact", "passes"])
        .env("CARGO_MANIFEST_DIR", &crate_dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&private).unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
}

/// `user = …` needs more than one mapped id: rootless it fails, saying so.
#[test]
fn rootless_user_switching_fails_with_the_reason() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!(
            "skipped: this check drops from root to nobody; the suite is not running as root"
        );
        return;
    }
    let out = as_nobody(sibling_test_binary("users"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(101), "{text}");
    assert!(text.contains("0 passed; 2 failed"), "{text}");
    assert!(
        text.contains("rootless: only the container's root is mapped to your user"),
        "{text}"
    );
}
